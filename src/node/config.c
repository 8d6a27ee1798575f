/*  config - a node's INI configuration (DIR/gkx.conf).
    Part of gokart-exchange; MIT licence.

    The handler records the first problem with its line number and keeps
    reading, so the message names the line a person must fix. Checks that
    need the whole file (defaults that follow other keys, keys that go
    together) run after it, naming the line of the key they concern.
*/
#include <gkx/alloc.h>
#include <gkx/config.h>
#include <gkx/dirmsg.h>
#include <gkx/kind.h>
#include <gkx/netmask.h>

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <ini.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Room for a path inside a node directory. */
#define S_PATH_BYTES 4096
/* Room for a problem described in a message. */
#define S_PROBLEM_BYTES 160
/* Most digits of a port. */
#define S_PORT_DIGITS 5
/* Largest port. */
#define S_PORT_MAX 65535
/* Longest base64 text of a webhook secret: GKX_CONFIG_WEBHOOK_SECRET_MAX_BYTES
   in base64 with padding. */
#define S_SECRET_TEXT_MAX (4 * ((GKX_CONFIG_WEBHOOK_SECRET_MAX_BYTES + 2) / 3))
/* Bytes of a token file read: the token, a newline and enough more to tell
   a longer file. */
#define S_TOKEN_FILE_BYTES (GKX_POSTBACK_TOKEN_BUF_BYTES + 2)
/* Characters that separate the words of allow_from and [notify] to. */
#define S_LIST_SEPARATORS " \t,"
/* Longest e-mail address (RFC 5321's path limit, less the angle brackets). */
#define S_ADDRESS_MAX 254
/* Characters an e-mail address written in the configuration may not hold:
   the ones that would need quoting in a header or an SMTP command. */
#define S_ADDRESS_SPECIALS "<>()[]\\,;:\"\r\n\t "

/* Parser state: the config being filled and the first error. */
typedef struct {
    gkx_config_t *config;
    int error;
    char message[GKX_ERRBUF_BYTES];
    const char *path;
    FILE *file;     /* NULL for an empty text */
    int line;       /* line last handed to inih */
    int directory_serve_line;   /* line of [directory] serve; 0 when not given */
    int directory_listen_line;  /* line of [directory] listen; 0 when not given */
    int postback_listen_line;   /* line of [postback] listen; 0 when not given */
    int webhook_url_line;       /* line of [webhook] url; 0 when not given */
    int webhook_secret_line;    /* line of [webhook] secret; 0 when not given */
    int smtp_url_line;          /* line of [smtp] url; 0 when not given */
    int smtp_user_line;         /* line of [smtp] user; 0 when not given */
    int smtp_password_line;     /* line of [smtp] password_file; 0 when not given */
} s_parse_t;

/* inih reader that counts lines: Debian's inih passes no line number to the
   handler, and the handler runs right after the reader returns its line.
   inih would read the rest of a line longer than its buffer as lines of
   their own, so that a cut list could silently mean something else: such a
   line is an error, and its rest is skipped to keep the count right. A NUL
   byte would end a line early for inih, silently dropping what follows
   it: such a line is an error too. */
static char *
s_reader (char *str, int num, void *stream)
{
    s_parse_t *parse = stream;
    if (!parse->file) {
        return NULL;
    }
    long start = ftell (parse->file);
    char *line = fgets (str, num, parse->file);
    if (!line) {
        return NULL;
    }
    parse->line++;
    size_t len = strlen (line);
    long end = ftell (parse->file);
    if (start >= 0 && end > start && (size_t) (end - start) != len) {
        if (str[end - start - 1] != '\n') {
            int c = getc (parse->file);
            while (c != EOF && c != '\n') {
                c = getc (parse->file);
            }
        }
        if (parse->error == GKX_OK) {
            parse->error = GKX_ECONFIG;
            snprintf (parse->message, sizeof parse->message, "%s line %d: holds a NUL byte",
                      parse->path, parse->line);
        }
        line[0] = '\0';
        return line;
    }
    if (len > 0 && line[len - 1] != '\n') {
        int c = getc (parse->file);
        if (c != EOF && c != '\n') {
            while (c != EOF && c != '\n') {
                c = getc (parse->file);
            }
            if (parse->error == GKX_OK) {
                parse->error = GKX_ECONFIG;
                snprintf (parse->message, sizeof parse->message,
                          "%s line %d: longer than %d characters (a long allow_from can go on "
                          "several allow_from lines)",
                          parse->path, parse->line, num - 1);
            }
        }
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

/* Frees the strings of a list and empties it. */
static void
s_list_clear (char **items, size_t *count)
{
    for (size_t i = 0; i < *count; i++) {
        gkx_free (items[i]);
        items[i] = NULL;
    }
    *count = 0;
}

/* Replaces the webhook secret with a copy of value in guarded memory. */
static void
s_secret_set (char **field, const char *value)
{
    if (*field) {
        sodium_free (*field);
    }
    size_t len = strlen (value);
    *field = sodium_malloc (len + 1);
    if (!*field) {
        fprintf (stderr, "gkx: out of guarded memory for the webhook secret\n");
        abort ();
    }
    memcpy (*field, value, len + 1);
}

/* Returns NULL when value is "host:port" or "[v6-address]:port" (port 0 to
   65535), else what is wrong. */
static const char *
s_host_port_problem (const char *value)
{
    const char *colon;
    if (value[0] == '[') {
        const char *close = strchr (value, ']');
        if (!close || close == value + 1 || close[1] != ':') {
            return "must be [v6-address]:port";
        }
        colon = close + 1;
    }
    else {
        colon = strchr (value, ':');
        if (!colon || colon == value || strchr (colon + 1, ':')) {
            return "must be host:port (or [v6-address]:port)";
        }
    }
    const char *port = colon + 1;
    size_t digits = strspn (port, "0123456789");
    if (digits == 0 || digits > S_PORT_DIGITS || port[digits] != '\0'
        || strtoul (port, NULL, 10) > S_PORT_MAX) {
        return "must end in a port from 0 to 65535";
    }
    if (strpbrk (value, " \t")) {
        return "must not contain spaces";
    }
    return NULL;
}

/* Returns NULL when value starts with one of the two schemes ("http://"),
   then a host, all in printable ASCII without spaces; else what is wrong,
   with the messages given for a missing scheme and for other bytes. */
static const char *
s_url_start_problem (const char *value, const char *const schemes[2], const char *no_scheme,
                     const char *not_printable)
{
    size_t scheme = 0;
    for (size_t i = 0; i < 2; i++) {
        if (strncmp (value, schemes[i], strlen (schemes[i])) == 0) {
            scheme = strlen (schemes[i]);
        }
    }
    if (scheme == 0) {
        return no_scheme;
    }
    for (const char *p = value; *p; p++) {
        unsigned char c = (unsigned char) *p;
        if (c <= 0x20 || c >= 0x7f) {
            return not_printable;
        }
    }
    if (strcspn (value + scheme, "/?#") == 0) {
        return "has no host after the scheme";
    }
    return NULL;
}

/* Returns NULL when value is an http:// or https:// URL with a host, of
   printable ASCII without spaces, and (when bare) without a query; never a
   fragment. Else what is wrong. */
static const char *
s_url_problem (const char *value, int bare)
{
    static const char *const schemes[2] = {"http://", "https://"};
    const char *problem = s_url_start_problem (
        value, schemes, "must start with http:// or https://",
        "must be printable ASCII without spaces (%-escape the rest)");
    if (problem) {
        return problem;
    }
    if (strchr (value, '#')) {
        return "must not have a #fragment";
    }
    if (bare && strchr (value, '?')) {
        return "must not have a ?query (the postback parameters are added to it)";
    }
    return NULL;
}

/* Returns NULL when value is "whsec_" and the standard base64 (with
   padding) of GKX_CONFIG_WEBHOOK_SECRET_MIN_BYTES to _MAX_BYTES bytes, else
   what is wrong; never quotes the secret. */
static const char *
s_secret_problem (const char *value)
{
    size_t prefix = strlen (GKX_CONFIG_WEBHOOK_PREFIX);
    if (strncmp (value, GKX_CONFIG_WEBHOOK_PREFIX, prefix) != 0) {
        return "must be whsec_ followed by the base64 of 24 to 64 random bytes";
    }
    const char *base64 = value + prefix;
    size_t len = strlen (base64);
    if (len > S_SECRET_TEXT_MAX) {
        return "is longer than the base64 of 64 bytes (at most 88 characters after whsec_)";
    }
    /* Room past the largest key, to tell "too long" from "not base64". */
    uint8_t bin[GKX_CONFIG_WEBHOOK_SECRET_MAX_BYTES + 3];
    size_t bin_len = 0;
    int bad = sodium_base642bin (bin, sizeof bin, base64, len, NULL, &bin_len, NULL,
                                 sodium_base64_VARIANT_ORIGINAL)
              != 0;
    sodium_memzero (bin, sizeof bin);
    if (bad) {
        return "what follows whsec_ must be standard base64 (A-Z a-z 0-9 + /, = padding)";
    }
    if (bin_len < GKX_CONFIG_WEBHOOK_SECRET_MIN_BYTES
        || bin_len > GKX_CONFIG_WEBHOOK_SECRET_MAX_BYTES) {
        return "must decode to 24 to 64 bytes (32 to 88 base64 characters after whsec_)";
    }
    return NULL;
}

/* Returns NULL when value is an smtp:// or smtps:// URL with a host, of
   printable ASCII without spaces, query or fragment; else what is wrong. */
static const char *
s_smtp_url_problem (const char *value)
{
    static const char *const schemes[2] = {"smtp://", "smtps://"};
    const char *problem = s_url_start_problem (value, schemes,
                                               "must start with smtp:// or smtps://",
                                               "must be printable ASCII without spaces");
    if (problem) {
        return problem;
    }
    if (strpbrk (value, "?#")) {
        return "must not have a ?query or #fragment";
    }
    return NULL;
}

/* Returns NULL when value is a bare e-mail address, local@domain, that
   needs no quoting in a header or an SMTP command; else what is wrong. */
static const char *
s_address_problem (const char *value)
{
    size_t len = strlen (value);
    const char *at = strchr (value, '@');
    if (len == 0 || len > S_ADDRESS_MAX) {
        return "an e-mail address has 3 to 254 characters";
    }
    for (const char *p = value; *p; p++) {
        unsigned char c = (unsigned char) *p;
        if (c < 0x20 || c == 0x7f || strchr (S_ADDRESS_SPECIALS, c)) {
            return "an e-mail address must be bare (ops@example.com), without spaces, "
                   "quotes, brackets or a display name";
        }
    }
    if (!at || at == value || !at[1] || strchr (at + 1, '@')) {
        return "an e-mail address is local@domain, with one @";
    }
    return NULL;
}

/* Checks each word of value (separated by spaces or commas) as an e-mail
   address and adds them to the config's notify_to (several to lines add
   up); returns GKX_ECONFIG with problem (S_PROBLEM_BYTES) saying why when
   one is refused. */
static int
s_notify_to_add (gkx_config_t *c, const char *value, char *problem)
{
    const char *p = value;
    while (*p) {
        p += strspn (p, S_LIST_SEPARATORS);
        size_t len = strcspn (p, S_LIST_SEPARATORS);
        if (len == 0) {
            break;
        }
        if (c->notify_to_count == GKX_CONFIG_LIST_MAX) {
            snprintf (problem, S_PROBLEM_BYTES, "more than %d addresses", GKX_CONFIG_LIST_MAX);
            return GKX_ECONFIG;
        }
        char *word = gkx_zalloc (len + 1);
        memcpy (word, p, len);
        const char *why = s_address_problem (word);
        if (why) {
            snprintf (problem, S_PROBLEM_BYTES, "\"%.60s\": %s", word, why);
            gkx_free (word);
            return GKX_ECONFIG;
        }
        c->notify_to[c->notify_to_count++] = word;
        p += len;
    }
    return GKX_OK;
}

/* Parses a whole number from 0 to max into *out; returns GKX_ECONFIG when
   value is anything else. */
static int
s_uint_parse (int *out, const char *value, int max)
{
    size_t digits = strspn (value, "0123456789");
    if (digits == 0 || digits > S_PORT_DIGITS || value[digits] != '\0') {
        return GKX_ECONFIG;
    }
    unsigned long number = strtoul (value, NULL, 10);
    if (number > (unsigned long) max) {
        return GKX_ECONFIG;
    }
    *out = (int) number;
    return GKX_OK;
}

/* Checks each word of value (separated by spaces or commas) as a network
   and adds them to the config's allow_from (so that a long list can take
   several lines); returns GKX_ECONFIG with problem (S_PROBLEM_BYTES) saying
   why when one is refused. */
static int
s_allow_from_add (gkx_config_t *c, const char *value, char *problem)
{
    gkx_netmask_t *list = gkx_netmask_new ();
    int rc = GKX_OK;
    const char *p = value;
    while (rc == GKX_OK && *p) {
        p += strspn (p, S_LIST_SEPARATORS);
        size_t len = strcspn (p, S_LIST_SEPARATORS);
        if (len == 0) {
            break;
        }
        if (c->allow_from_count == GKX_CONFIG_LIST_MAX) {
            snprintf (problem, S_PROBLEM_BYTES, "more than %d networks", GKX_CONFIG_LIST_MAX);
            rc = GKX_ECONFIG;
            break;
        }
        char *word = gkx_zalloc (len + 1);
        memcpy (word, p, len);
        char errbuf[GKX_ERRBUF_BYTES];
        if (gkx_netmask_add (list, word, errbuf) != GKX_OK) {
            snprintf (problem, S_PROBLEM_BYTES, "%.*s", S_PROBLEM_BYTES - 1, errbuf);
            gkx_free (word);
            rc = GKX_ECONFIG;
            break;
        }
        c->allow_from[c->allow_from_count++] = word;
        p += len;
    }
    gkx_netmask_destroy (&list);
    return rc;
}

/* Checks each word of value (separated by spaces or commas) as a directory
   address and adds them to the config's directory_publish_to (several
   publish_to lines add up); returns GKX_ECONFIG with problem
   (S_PROBLEM_BYTES) saying why when one is refused. */
static int
s_publish_to_add (gkx_config_t *c, const char *value, char *problem)
{
    const char *p = value;
    while (*p) {
        p += strspn (p, S_LIST_SEPARATORS);
        size_t len = strcspn (p, S_LIST_SEPARATORS);
        if (len == 0) {
            break;
        }
        if (c->directory_publish_to_count == GKX_CONFIG_DIRECTORIES_MAX) {
            snprintf (problem, S_PROBLEM_BYTES, "more than %d directories",
                      GKX_CONFIG_DIRECTORIES_MAX);
            return GKX_ECONFIG;
        }
        char *word = gkx_zalloc (len + 1);
        memcpy (word, p, len);
        char endpoint[GKX_DIRMSG_ENDPOINT_BYTES];
        uint8_t key[GKX_CURVE_KEY_BYTES];
        char errbuf[GKX_ERRBUF_BYTES];
        if (gkx_dirmsg_address_parse (endpoint, key, word, errbuf) != GKX_OK) {
            snprintf (problem, S_PROBLEM_BYTES, "%.*s", S_PROBLEM_BYTES - 1, errbuf);
            gkx_free (word);
            return GKX_ECONFIG;
        }
        c->directory_publish_to[c->directory_publish_to_count++] = word;
        p += len;
    }
    return GKX_OK;
}

const char *
gkx_config_advertise_problem (const char *value)
{
    static const char *const wildcards[] = {"*", "0.0.0.0", "::", "[::]"};
    if (gkx_dirmsg_endpoint_check (value, NULL) != GKX_OK) {
        return "must be tcp://host:port";
    }
    const char *host = value + strlen ("tcp://");
    size_t len = (size_t) (strrchr (value, ':') - host);
    for (size_t i = 0; i < sizeof wildcards / sizeof wildcards[0]; i++) {
        if (strlen (wildcards[i]) == len && strncmp (host, wildcards[i], len) == 0) {
            return "must name a host partners can reach, not one that binds every interface";
        }
    }
    return NULL;
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
    char detail[S_PROBLEM_BYTES];
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
    else if (strcmp (section, "node") == 0 && strcmp (name, "advertise") == 0) {
        s_set (&c->advertise, value);
        problem = gkx_config_advertise_problem (value);
        rc = problem ? GKX_ECONFIG : GKX_OK;
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
    else if (strcmp (section, "directory") == 0 && strcmp (name, "serve") == 0) {
        parse->directory_serve_line = lineno;
        c->directory_serve = strcmp (value, "true") == 0;
        rc = c->directory_serve || strcmp (value, "false") == 0 ? GKX_OK : GKX_ECONFIG;
        problem = "serve must be true or false";
    }
    else if (strcmp (section, "directory") == 0 && strcmp (name, "listen") == 0) {
        parse->directory_listen_line = lineno;
        s_set (&c->directory_listen, value);
        rc = gkx_dirmsg_endpoint_check (value, NULL);
        problem = "listen must be tcp://host:port";
    }
    else if (strcmp (section, "directory") == 0 && strcmp (name, "publish_to") == 0) {
        rc = s_publish_to_add (c, value, detail);
        problem = detail;
    }
    else if (strcmp (section, "api") == 0 && strcmp (name, "listen") == 0) {
        s_set (&c->api_listen, value);
        problem = s_host_port_problem (value);
        rc = problem ? GKX_ECONFIG : GKX_OK;
    }
    else if (strcmp (section, "postback") == 0 && strcmp (name, "listen") == 0) {
        parse->postback_listen_line = lineno;
        gkx_free (c->postback_listen);
        c->postback_listen = NULL;
        if (strcmp (value, "off") != 0) {
            c->postback_listen = gkx_strdup (value);
            problem = s_host_port_problem (value);
            rc = problem ? GKX_ECONFIG : GKX_OK;
        }
    }
    else if (strcmp (section, "postback") == 0 && strcmp (name, "base_url") == 0) {
        problem = s_url_problem (value, 1);
        rc = problem ? GKX_ECONFIG : GKX_OK;
        s_set (&c->postback_base_url, value);
        /* base_url/MMP is the endpoint; a trailing '/' would double it. */
        size_t len = strlen (c->postback_base_url);
        while (len > 0 && c->postback_base_url[len - 1] == '/') {
            c->postback_base_url[--len] = '\0';
        }
    }
    else if (strcmp (section, "postback") == 0 && strcmp (name, "allow_from") == 0) {
        rc = s_allow_from_add (c, value, detail);
        problem = detail;
    }
    else if (strcmp (section, "webhook") == 0 && strcmp (name, "url") == 0) {
        parse->webhook_url_line = lineno;
        s_set (&c->webhook_url, value);
        problem = s_url_problem (value, 0);
        rc = problem ? GKX_ECONFIG : GKX_OK;
    }
    else if (strcmp (section, "webhook") == 0 && strcmp (name, "secret") == 0) {
        parse->webhook_secret_line = lineno;
        s_secret_set (&c->webhook_secret, value);
        problem = s_secret_problem (value);
        rc = problem ? GKX_ECONFIG : GKX_OK;
    }
    else if (strcmp (section, "smtp") == 0 && strcmp (name, "url") == 0) {
        parse->smtp_url_line = lineno;
        s_set (&c->smtp_url, value);
        problem = s_smtp_url_problem (value);
        rc = problem ? GKX_ECONFIG : GKX_OK;
    }
    else if (strcmp (section, "smtp") == 0 && strcmp (name, "user") == 0) {
        parse->smtp_user_line = lineno;
        s_set (&c->smtp_user, value);
        problem = "must not be empty (remove the line for no login)";
        rc = value[0] ? GKX_OK : GKX_ECONFIG;
    }
    else if (strcmp (section, "smtp") == 0 && strcmp (name, "password_file") == 0) {
        parse->smtp_password_line = lineno;
        s_set (&c->smtp_password_file, value);
        problem = "must name a file";
        rc = value[0] ? GKX_OK : GKX_ECONFIG;
    }
    else if (strcmp (section, "smtp") == 0 && strcmp (name, "from") == 0) {
        s_set (&c->smtp_from, value);
        problem = s_address_problem (value);
        rc = problem ? GKX_ECONFIG : GKX_OK;
    }
    else if (strcmp (section, "notify") == 0 && strcmp (name, "to") == 0) {
        rc = s_notify_to_add (c, value, detail);
        problem = detail;
    }
    else if (strcmp (section, "notify") == 0 && strcmp (name, "window_seconds") == 0) {
        rc = s_uint_parse (&c->notify_window_seconds, value, GKX_CONFIG_NOTIFY_WINDOW_MAX);
        problem = "must be a whole number of seconds from 0 to 3600";
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

/* The checks of [smtp] and [notify] that need the whole file: a login
   needs its password file and the other way round, and notifications
   (on when both url and to are given) need a sender address. */
static int
s_finish_notify (gkx_config_t *c, const s_parse_t *parse, char *errbuf)
{
    if (c->smtp_user && !c->smtp_password_file) {
        return gkx_fail (errbuf, GKX_ECONFIG,
                         "%s line %d: [smtp] user: needs a password_file (a file of mode 0600 "
                         "whose first line is the password)",
                         parse->path, parse->smtp_user_line);
    }
    if (c->smtp_password_file && !c->smtp_user) {
        return gkx_fail (errbuf, GKX_ECONFIG, "%s line %d: [smtp] password_file: needs a user",
                         parse->path, parse->smtp_password_line);
    }
    c->notify_on = c->smtp_url && c->notify_to_count > 0;
    if (c->notify_on && !c->smtp_from) {
        if (!c->email[0] || s_address_problem (c->email)) {
            return gkx_fail (errbuf, GKX_ECONFIG,
                             "%s line %d: [smtp] url: needs a sender: set [smtp] from (or "
                             "[node] email to a bare address)",
                             parse->path, parse->smtp_url_line);
        }
        c->smtp_from = gkx_strdup (c->email);
    }
    return GKX_OK;
}

/* The checks of [directory] that need the whole file: a directory needs
   its own endpoint, apart from the replication one. */
static int
s_finish_directory (const gkx_config_t *c, const s_parse_t *parse, char *errbuf)
{
    if (c->directory_serve && !c->directory_listen) {
        return gkx_fail (errbuf, GKX_ECONFIG,
                         "%s line %d: [directory] serve: needs listen = tcp://host:port (where "
                         "the directory binds)",
                         parse->path, parse->directory_serve_line);
    }
    if (c->directory_listen && strcmp (c->directory_listen, c->listen) == 0) {
        return gkx_fail (errbuf, GKX_ECONFIG,
                         "%s line %d: [directory] listen: must differ from [node] listen",
                         parse->path, parse->directory_listen_line);
    }
    return GKX_OK;
}

/* The checks that need the whole file, and the defaults that follow other
   keys; drops the section the node's role does not use. */
static int
s_finish (gkx_config_t *c, const s_parse_t *parse, char *errbuf)
{
    const char *path = parse->path;
    int rc = s_finish_directory (c, parse, errbuf);
    if (rc != GKX_OK) {
        return rc;
    }
    if (!c->advertise) {
        c->advertise = gkx_strdup (c->listen);
    }
    if (c->role == GKX_ROLE_ADVERTISER) {
        if (c->postback_listen && strcmp (c->postback_listen, c->api_listen) == 0) {
            return gkx_fail (errbuf, GKX_ECONFIG,
                             "%s line %d: [postback] listen: must differ from [api] listen",
                             path, parse->postback_listen_line);
        }
        if (c->postback_listen && !c->postback_base_url) {
            size_t size = strlen ("http://") + strlen (c->postback_listen)
                        + strlen (GKX_CONFIG_POSTBACK_PATH) + 1;
            c->postback_base_url = gkx_zalloc (size);
            snprintf (c->postback_base_url, size, "http://%s%s", c->postback_listen,
                      GKX_CONFIG_POSTBACK_PATH);
        }
        if (!c->postback_listen) {
            gkx_free (c->postback_base_url);
            c->postback_base_url = NULL;
        }
    }
    else {
        gkx_free (c->postback_listen);
        c->postback_listen = NULL;
        gkx_free (c->postback_base_url);
        c->postback_base_url = NULL;
        s_list_clear (c->allow_from, &c->allow_from_count);
    }
    if (c->role == GKX_ROLE_PUBLISHER) {
        if (c->webhook_url && !c->webhook_secret) {
            return gkx_fail (errbuf, GKX_ECONFIG,
                             "%s line %d: [webhook] url: needs a secret (secret = whsec_...) "
                             "to sign the deliveries",
                             path, parse->webhook_url_line);
        }
        if (c->webhook_secret && !c->webhook_url) {
            return gkx_fail (errbuf, GKX_ECONFIG,
                             "%s line %d: [webhook] secret: needs a url to deliver to", path,
                             parse->webhook_secret_line);
        }
    }
    else {
        gkx_free (c->webhook_url);
        c->webhook_url = NULL;
        if (c->webhook_secret) {
            sodium_free (c->webhook_secret);
            c->webhook_secret = NULL;
        }
    }
    return s_finish_notify (c, parse, errbuf);
}

/* Reads a configuration from file (NULL: an empty one), named path in
   messages; closes file. */
static int
s_load (gkx_config_t **self_p, FILE *file, const char *path, char *errbuf)
{
    gkx_config_t *config = gkx_zalloc (sizeof *config);
    config->name = gkx_strdup ("");
    config->email = gkx_strdup ("");
    config->listen = gkx_strdup (GKX_CONFIG_DEFAULT_LISTEN);
    config->api_listen = gkx_strdup (GKX_CONFIG_DEFAULT_API);
    config->postback_listen = gkx_strdup (GKX_CONFIG_DEFAULT_POSTBACK);
    config->notify_window_seconds = GKX_CONFIG_NOTIFY_WINDOW_DEFAULT;
    s_parse_t parse = {.config = config, .error = GKX_OK, .path = path, .file = file};
    int line = ini_parse_stream (s_reader, &parse, s_handler, &parse);
    if (file) {
        fclose (file);
    }
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
    else {
        rc = s_finish (config, &parse, errbuf);
    }
    if (rc != GKX_OK) {
        gkx_config_destroy (&config);
        return rc;
    }
    *self_p = config;
    return GKX_OK;
}

int
gkx_config_load (gkx_config_t **self_p, const char *dir, char *errbuf)
{
    if (sodium_init () < 0) {
        return gkx_fail (errbuf, GKX_EIO, "config: libsodium failed to initialise");
    }
    char path[S_PATH_BYTES];
    snprintf (path, sizeof path, "%s/%s", dir, GKX_CONFIG_NAME);
    FILE *file = fopen (path, "r");
    if (!file) {
        return gkx_fail (errbuf, GKX_EIO, "%s: %s (is %s a node directory? see gkx init)", path,
                         strerror (errno), dir);
    }
    return s_load (self_p, file, path, errbuf);
}

int
gkx_config_parse (gkx_config_t **self_p, const char *text, size_t len, const char *name,
                  char *errbuf)
{
    assert (self_p && (text || len == 0) && name);
    if (sodium_init () < 0) {
        return gkx_fail (errbuf, GKX_EIO, "config: libsodium failed to initialise");
    }
    /* fmemopen may refuse a size of 0; no file reads as an empty one. */
    FILE *file = len ? fmemopen ((void *) text, len, "r") : NULL;
    if (len && !file) {
        return gkx_fail (errbuf, GKX_EIO, "%s: %s", name, strerror (errno));
    }
    return s_load (self_p, file, name, errbuf);
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
    gkx_free (c->advertise);
    gkx_free (c->api_listen);
    gkx_free (c->directory_listen);
    for (size_t i = 0; i < c->directory_publish_to_count; i++) {
        gkx_free (c->directory_publish_to[i]);
    }
    for (size_t i = 0; i < c->verticals_count; i++) {
        gkx_free (c->verticals[i]);
    }
    for (size_t i = 0; i < c->countries_count; i++) {
        gkx_free (c->countries[i]);
    }
    gkx_free (c->postback_listen);
    gkx_free (c->postback_base_url);
    s_list_clear (c->allow_from, &c->allow_from_count);
    gkx_free (c->webhook_url);
    if (c->webhook_secret) {
        sodium_free (c->webhook_secret);
    }
    gkx_free (c->smtp_url);
    gkx_free (c->smtp_user);
    gkx_free (c->smtp_password_file);
    gkx_free (c->smtp_from);
    s_list_clear (c->notify_to, &c->notify_to_count);
    gkx_free (c);
    *self_p = NULL;
}

int
gkx_config_write (const char *dir, const gkx_config_init_t *init, char *errbuf)
{
    char path[S_PATH_BYTES];
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
             "# Where the replication endpoint (ZeroMQ ROUTER with CURVE) binds.\n"
             "listen = %s\n"
             "# The endpoint partners connect to, written into the card; listen when not\n"
             "# given. Set it behind NAT or a proxy, or when listen binds 0.0.0.0.\n"
             "%sadvertise = %s\n"
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
             init->advertise ? "" : "# ",
             init->advertise ? init->advertise : "tcp://node.example.com:7700",
             init->api_listen ? init->api_listen : GKX_CONFIG_DEFAULT_API);
    fprintf (file,
             "\n"
             "# Optional: partner discovery (docs/protocol.md, \"Directory\"). This node's\n"
             "# signed card is published to each directory of publish_to, named by its\n"
             "# address tcp://host:port@KEY ('gkx directory-address' on the directory's\n"
             "# node prints it); an advertiser lists publishers with 'gkx publishers'.\n"
             "# serve = true makes this node a directory too, bound at listen.\n"
             "# Remove the '# ' to enable.\n"
             "# [directory]\n"
             "# publish_to = tcp://directory.example.com:7790@KEY\n"
             "# serve = false\n"
             "# listen = tcp://0.0.0.0:7790\n");
    if (init->role == GKX_ROLE_ADVERTISER) {
        fprintf (file,
                 "\n"
                 "[postback]\n"
                 "# Where your MMP (AppsFlyer, Adjust, Branch, ...) sends conversions,\n"
                 "# host:port, or off. Keep it local behind a TLS reverse proxy, or bind it\n"
                 "# where the MMP can reach it. Each URL carries the token in\n"
                 "# postback.token beside this file (mode 0600); gkx postback-url prints it.\n"
                 "listen = %s\n"
                 "# The endpoint's URL as the MMP reaches it, without a query; the default is\n"
                 "# http://LISTEN%s. Set it when a proxy or another name stands in front:\n"
                 "# base_url = https://postbacks.example.com%s\n"
                 "# Optional: the networks postbacks may come from, CIDR or bare addresses\n"
                 "# separated by spaces (10.0.0.0/8 192.168.1.7 2001:db8::/32); empty lets\n"
                 "# every address in. Ask your MMP for the addresses it sends from.\n"
                 "allow_from =\n",
                 init->postback_listen ? init->postback_listen : GKX_CONFIG_DEFAULT_POSTBACK,
                 GKX_CONFIG_POSTBACK_PATH, GKX_CONFIG_POSTBACK_PATH);
    }
    else {
        fprintf (file,
                 "\n"
                 "# Optional: a URL that receives each conversion of your partnerships and each\n"
                 "# change of its status, signed the Standard Webhooks way with secret: whsec_\n"
                 "# and the base64 of 24 to 64 random bytes, e.g. whsec_ and the output of\n"
                 "# 'openssl rand -base64 32'. Give the same secret to the receiver, and keep\n"
                 "# this file mode 0600 once it holds one. Remove the '# ' to enable.\n"
                 "# [webhook]\n"
                 "# url = https://publisher.example/hooks/gkx\n"
                 "# secret = whsec_BASE64-OF-24-TO-64-RANDOM-BYTES\n");
    }
    fprintf (file,
             "\n"
             "# Optional: e-mail about every change the other side of a partnership makes\n"
             "# (offer edits, pause and resume, proposals and answers, conversion status\n"
             "# changes, a new partnership, a frozen one), sent through an SMTP server.\n"
             "# Both url and to turn it on (docs/notifications.md). Remove the '# ' to enable.\n"
             "# [smtp]\n"
             "# smtp:// (STARTTLS when the server offers it) or smtps:// (TLS), host[:port].\n"
             "# url = smtps://smtp.example.com:465\n"
             "# The login, and a file of mode 0600 whose first line is the password\n"
             "# (relative to this directory unless absolute).\n"
             "# user = alerts@example.com\n"
             "# password_file = smtp.password\n"
             "# The sender address; [node] email when not given.\n"
             "# from = alerts@example.com\n"
             "# [notify]\n"
             "# Where the e-mails go: one or more addresses, separated by spaces.\n"
             "# to = ops@example.com\n"
             "# Changes to one partnership within this many seconds (0 to 3600, default\n"
             "# 30) go out as one message.\n"
             "# window_seconds = 30\n");
    int ok = fflush (file) == 0 && fsync (fd) == 0;
    fclose (file);
    return ok ? GKX_OK : gkx_fail (errbuf, GKX_EIO, "%s: write failed", path);
}

/* Checks that text (len bytes) is a postback token: GKX_POSTBACK_TOKEN_CHARS
   of base64url that decode to GKX_POSTBACK_TOKEN_RANDOM_BYTES. */
static int
s_token_valid (const char *text, size_t len)
{
    if (len != GKX_POSTBACK_TOKEN_CHARS) {
        return 0;
    }
    uint8_t bin[GKX_POSTBACK_TOKEN_RANDOM_BYTES];
    size_t bin_len = 0;
    int ok = sodium_base642bin (bin, sizeof bin, text, len, NULL, &bin_len, NULL,
                                sodium_base64_VARIANT_URLSAFE_NO_PADDING)
                 == 0
             && bin_len == sizeof bin;
    sodium_memzero (bin, sizeof bin);
    return ok;
}

/* Reads the token file at path into token; GKX_ENOTFOUND when missing. */
static int
s_token_read (char token[GKX_POSTBACK_TOKEN_BUF_BYTES], const char *path, char *errbuf)
{
    int fd = open (path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0) {
        return errno == ENOENT
            ? gkx_fail (errbuf, GKX_ENOTFOUND,
                        "postback token %s: missing (gkx init makes it on an advertiser, and "
                        "gkxd on its first start)",
                        path)
            : gkx_fail (errbuf, GKX_EIO, "postback token %s: %s", path, strerror (errno));
    }
    struct stat st;
    if (fstat (fd, &st) != 0) {
        int error = errno;
        close (fd);
        return gkx_fail (errbuf, GKX_EIO, "postback token %s: %s", path, strerror (error));
    }
    if (!S_ISREG (st.st_mode)) {
        close (fd);
        return gkx_fail (errbuf, GKX_EINVAL, "postback token %s: not a regular file", path);
    }
    if (st.st_mode & (S_IRWXG | S_IRWXO)) {
        close (fd);
        return gkx_fail (errbuf, GKX_EPERM,
                         "postback token %s: mode %03o lets others read it; chmod 600 it", path,
                         (unsigned) (st.st_mode & 0777));
    }
    char text[S_TOKEN_FILE_BYTES];
    size_t len = 0;
    ssize_t got = 1;
    while (got > 0 && len < sizeof text) {
        got = read (fd, text + len, sizeof text - len);
        len += got > 0 ? (size_t) got : 0;
    }
    int error = errno;
    close (fd);
    int rc = GKX_OK;
    if (got < 0) {
        rc = gkx_fail (errbuf, GKX_EIO, "postback token %s: %s", path, strerror (error));
    }
    else {
        size_t end = len;
        if (end > 0 && text[end - 1] == '\n') {
            end--;
        }
        if (!s_token_valid (text, end)) {
            rc = gkx_fail (errbuf, GKX_EINVAL,
                           "postback token %s: must be one line of %d base64url characters "
                           "(delete the file to make a new token, then update your MMPs)",
                           path, GKX_POSTBACK_TOKEN_CHARS);
        }
        else {
            memcpy (token, text, end);
            token[end] = '\0';
        }
    }
    sodium_memzero (text, sizeof text);
    return rc;
}

/* Writes a new token file at path: a temporary file of mode 0600, synced,
   then linked to path, so that it appears whole or not at all, and never
   replaces a token another process made first. Returns GKX_OK also when
   path exists already. */
static int
s_token_create (const char *dir, const char *path, char *errbuf)
{
    char tmp[S_PATH_BYTES];
    if ((size_t) snprintf (tmp, sizeof tmp, "%s.XXXXXX", path) >= sizeof tmp) {
        return gkx_fail (errbuf, GKX_EIO, "postback token %s: path too long", path);
    }
    int fd = mkstemp (tmp);
    if (fd < 0) {
        return gkx_fail (errbuf, GKX_EIO, "postback token %s: %s", tmp, strerror (errno));
    }
    uint8_t raw[GKX_POSTBACK_TOKEN_RANDOM_BYTES];
    char text[GKX_POSTBACK_TOKEN_BUF_BYTES];
    randombytes_buf (raw, sizeof raw);
    sodium_bin2base64 (text, sizeof text, raw, sizeof raw,
                       sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    sodium_memzero (raw, sizeof raw);
    size_t len = strlen (text);
    text[len++] = '\n';
    int ok = fchmod (fd, 0600) == 0 && write (fd, text, len) == (ssize_t) len && fsync (fd) == 0;
    int error = errno;
    sodium_memzero (text, sizeof text);
    if (close (fd) != 0 && ok) {
        ok = 0;
        error = errno;
    }
    if (!ok) {
        unlink (tmp);
        return gkx_fail (errbuf, GKX_EIO, "postback token %s: write failed: %s", tmp,
                         strerror (error));
    }
    int linked = link (tmp, path) == 0 || errno == EEXIST;
    error = errno;
    unlink (tmp);
    if (!linked) {
        return gkx_fail (errbuf, GKX_EIO, "postback token %s: %s", path, strerror (error));
    }
    /* The new name lasts only once the directory is synced. */
    int dir_fd = open (dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dir_fd >= 0) {
        fsync (dir_fd);
        close (dir_fd);
    }
    return GKX_OK;
}

int
gkx_config_postback_token (const char *dir, char token[GKX_POSTBACK_TOKEN_BUF_BYTES], int create,
                           char *errbuf)
{
    assert (dir);
    assert (token);
    if (sodium_init () < 0) {
        return gkx_fail (errbuf, GKX_EIO, "postback token: libsodium failed to initialise");
    }
    char path[S_PATH_BYTES];
    if ((size_t) snprintf (path, sizeof path, "%s/%s", dir, GKX_POSTBACK_TOKEN_NAME)
        >= sizeof path) {
        return gkx_fail (errbuf, GKX_EIO, "postback token: directory name too long: %s", dir);
    }
    int rc = s_token_read (token, path, errbuf);
    if (rc == GKX_ENOTFOUND && create) {
        rc = s_token_create (dir, path, errbuf);
        if (rc == GKX_OK) {
            rc = s_token_read (token, path, errbuf);
        }
    }
    return rc;
}
