/*  config - a node's INI configuration (DIR/gkx.conf).
    Part of gokart-exchange; MIT licence.

    The handler records the first problem with its line number and keeps
    reading, so the message names the line a person must fix.
*/
#include <gkx/alloc.h>
#include <gkx/config.h>
#include <gkx/kind.h>

#include <errno.h>
#include <fcntl.h>
#include <ini.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

/* Parser state: the config being filled and the first error. */
typedef struct {
    gkx_config_t *config;
    int error;
    char message[GKX_ERRBUF_BYTES];
    const char *path;
    FILE *file;
    int line;       /* line last handed to inih */
} s_parse_t;

/* inih reader that counts lines: Debian's inih passes no line number to the
   handler, and the handler runs right after the reader returns its line. */
static char *
s_reader (char *str, int num, void *stream)
{
    s_parse_t *parse = stream;
    char *line = fgets (str, num, parse->file);
    if (line) {
        parse->line++;
    }
    return line;
}

/* Replaces an owned string. */
static void
s_set (char **field, const char *value)
{
    gkx_free (*field);
    *field = gkx_strdup (value);
}

/* Splits a comma-separated list into owned, trimmed strings. */
static int
s_split (char **items, size_t *count, const char *value)
{
    for (size_t i = 0; i < *count; i++) {
        gkx_free (items[i]);
    }
    *count = 0;
    const char *p = value;
    while (*p) {
        while (*p == ' ' || *p == ',') {
            p++;
        }
        const char *start = p;
        while (*p && *p != ',') {
            p++;
        }
        const char *end = p;
        while (end > start && end[-1] == ' ') {
            end--;
        }
        if (end > start) {
            if (*count == GKX_CONFIG_LIST_MAX) {
                return GKX_ECONFIG;
            }
            items[*count] = gkx_zalloc ((size_t) (end - start) + 1);
            memcpy (items[*count], start, (size_t) (end - start));
            (*count)++;
        }
    }
    return GKX_OK;
}

/* inih handler: one key at a time. */
static int
s_handler (void *user, const char *section, const char *name, const char *value)
{
    s_parse_t *parse = user;
    int lineno = parse->line;
    gkx_config_t *c = parse->config;
    int rc = GKX_OK;
    const char *problem = "unknown key";
    if (strcmp (section, "node") == 0 && strcmp (name, "role") == 0) {
        rc = gkx_role_parse (value, &c->role);
        problem = "role must be advertiser or publisher";
    }
    else if (strcmp (section, "node") == 0 && strcmp (name, "name") == 0) {
        s_set (&c->name, value);
    }
    else if (strcmp (section, "node") == 0 && strcmp (name, "email") == 0) {
        s_set (&c->email, value);
    }
    else if (strcmp (section, "node") == 0 && strcmp (name, "listen") == 0) {
        s_set (&c->listen, value);
        rc = strncmp (value, "tcp://", 6) == 0 ? GKX_OK : GKX_ECONFIG;
        problem = "listen must be tcp://host:port";
    }
    else if (strcmp (section, "node") == 0 && strcmp (name, "verticals") == 0) {
        rc = s_split (c->verticals, &c->verticals_count, value);
        problem = "too many verticals";
    }
    else if (strcmp (section, "node") == 0 && strcmp (name, "countries") == 0) {
        rc = s_split (c->countries, &c->countries_count, value);
        problem = "too many countries";
    }
    else if (strcmp (section, "node") == 0 && strcmp (name, "accept") == 0) {
        c->accept_any = strcmp (value, "any") == 0;
        rc = c->accept_any || strcmp (value, "listed") == 0 ? GKX_OK : GKX_ECONFIG;
        problem = "accept must be any or listed";
    }
    else if (strcmp (section, "api") == 0 && strcmp (name, "listen") == 0) {
        s_set (&c->api_listen, value);
        rc = strchr (value, ':') ? GKX_OK : GKX_ECONFIG;
        problem = "api listen must be host:port";
    }
    else {
        rc = GKX_ECONFIG;
    }
    if (rc != GKX_OK && parse->error == GKX_OK) {
        parse->error = GKX_ECONFIG;
        snprintf (parse->message, sizeof parse->message, "%s line %d: [%s] %s: %s",
                  parse->path, lineno, section, name, problem);
    }
    return 1;
}

int
gkx_config_load (gkx_config_t **self_p, const char *dir, char *errbuf)
{
    char path[4096];
    snprintf (path, sizeof path, "%s/%s", dir, GKX_CONFIG_NAME);
    FILE *file = fopen (path, "r");
    if (!file) {
        return gkx_fail (errbuf, GKX_EIO, "%s: %s (is %s a node directory? see gkx init)", path,
                         strerror (errno), dir);
    }
    gkx_config_t *config = gkx_zalloc (sizeof *config);
    config->name = gkx_strdup ("");
    config->email = gkx_strdup ("");
    config->listen = gkx_strdup (GKX_CONFIG_DEFAULT_LISTEN);
    config->api_listen = gkx_strdup (GKX_CONFIG_DEFAULT_API);
    s_parse_t parse = {config, GKX_OK, "", path, file, 0};
    int line = ini_parse_stream (s_reader, &parse, s_handler, &parse);
    fclose (file);
    int rc = GKX_OK;
    if (line != 0 && parse.error == GKX_OK) {
        rc = gkx_fail (errbuf, GKX_ECONFIG, "%s line %d: not valid INI", path, line);
    }
    else if (parse.error != GKX_OK) {
        rc = gkx_fail (errbuf, parse.error, "%s", parse.message);
    }
    else if (config->role == 0) {
        rc = gkx_fail (errbuf, GKX_ECONFIG, "%s: [node] role is required", path);
    }
    else if (config->name[0] == '\0') {
        rc = gkx_fail (errbuf, GKX_ECONFIG, "%s: [node] name is required", path);
    }
    if (rc != GKX_OK) {
        gkx_config_destroy (&config);
        return rc;
    }
    *self_p = config;
    return GKX_OK;
}

void
gkx_config_destroy (gkx_config_t **self_p)
{
    if (!self_p || !*self_p) {
        return;
    }
    gkx_config_t *c = *self_p;
    gkx_free (c->name);
    gkx_free (c->email);
    gkx_free (c->listen);
    gkx_free (c->api_listen);
    for (size_t i = 0; i < c->verticals_count; i++) {
        gkx_free (c->verticals[i]);
    }
    for (size_t i = 0; i < c->countries_count; i++) {
        gkx_free (c->countries[i]);
    }
    gkx_free (c);
    *self_p = NULL;
}

int
gkx_config_write (const char *dir, const gkx_config_init_t *init, char *errbuf)
{
    char path[4096];
    snprintf (path, sizeof path, "%s/%s", dir, GKX_CONFIG_NAME);
    int fd = open (path, O_WRONLY | O_CREAT | O_EXCL, 0644);
    if (fd < 0) {
        return errno == EEXIST
            ? gkx_fail (errbuf, GKX_EEXIST, "%s exists already; not overwritten", path)
            : gkx_fail (errbuf, GKX_EIO, "%s: %s", path, strerror (errno));
    }
    FILE *file = fdopen (fd, "w");
    if (!file) {
        close (fd);
        return gkx_fail (errbuf, GKX_EIO, "%s: %s", path, strerror (errno));
    }
    fprintf (file,
             "# gokart-exchange node configuration (docs/config.md lists every key).\n"
             "# Written by gkx init. Lines starting with # or ; are comments.\n"
             "\n"
             "[node]\n"
             "# This node's side in its partnerships: advertiser or publisher.\n"
             "role = %s\n"
             "# Display name shown to partners on the tenant card and in e-mails.\n"
             "name = %s\n"
             "# Contact address printed on the tenant card; may be empty.\n"
             "email = %s\n"
             "# Replication endpoint (ZeroMQ ROUTER with CURVE), as partners reach it.\n"
             "listen = %s\n"
             "# Publishers: which advertisers may open partnerships with this node:\n"
             "# listed (only peers added with 'gkx peer add') or any.\n"
             "accept = listed\n"
             "# Optional, comma-separated: verticals and ISO 3166-1 countries for the card.\n"
             "verticals =\n"
             "countries =\n"
             "\n"
             "[api]\n"
             "# Tenant HTTP JSON API, host:port; keep it on a local address. The bearer\n"
             "# token is in api.token beside this file (mode 0600).\n"
             "listen = %s\n",
             gkx_role_name (init->role), init->name, init->email ? init->email : "",
             init->listen ? init->listen : GKX_CONFIG_DEFAULT_LISTEN,
             init->api_listen ? init->api_listen : GKX_CONFIG_DEFAULT_API);
    int ok = fflush (file) == 0 && fsync (fd) == 0;
    fclose (file);
    return ok ? GKX_OK : gkx_fail (errbuf, GKX_EIO, "%s: write failed", path);
}
