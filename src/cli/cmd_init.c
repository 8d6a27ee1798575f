/*  cmd_init - gkx init: create a node directory.
    Part of gokart-exchange; MIT licence.

    A node directory holds secret.key (0600), gkx.conf, api.token (0600),
    card.json and store/. init refuses to touch a directory that already
    holds a node, so an identity is never overwritten by accident.
*/
#include "cli.h"

#include <gkx/kind.h>
#include <gkx/keyfile.h>
#include <gkx/store.h>

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <sodium.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Bytes of randomness in the API bearer token. */
#define S_TOKEN_BYTES 32

/* Prints init's usage. */
static void
s_usage (FILE *out)
{
    fprintf (out,
             "usage: gkx init --dir DIR --role advertiser|publisher --name NAME\n"
             "                [--listen tcp://HOST:PORT] [--api HOST:PORT] [--email ADDRESS]\n"
             "                [--postback HOST:PORT|off]  (advertiser: the MMPs' postback endpoint)\n"
             "                [--advertise tcp://HOST:PORT]  (partners' address for --listen)\n\n"
             "Creates a node directory: secret keys (mode 0600), gkx.conf with every key\n"
             "commented, the tenant API token in api.token (mode 0600), the signed tenant\n"
             "card and an empty store. Refuses to overwrite an existing node.\n");
}

/* Writes a fresh API token to DIR/api.token with mode 0600. */
static int
s_write_token (const char *dir)
{
    char path[4096];
    snprintf (path, sizeof path, "%s/%s", dir, GKX_TOKEN_NAME);
    uint8_t raw[S_TOKEN_BYTES];
    char hex[2 * S_TOKEN_BYTES + 2];
    randombytes_buf (raw, sizeof raw);
    sodium_bin2hex (hex, sizeof hex - 1, raw, sizeof raw);
    hex[2 * S_TOKEN_BYTES] = '\n';
    hex[2 * S_TOKEN_BYTES + 1] = '\0';
    sodium_memzero (raw, sizeof raw);
    int fd = open (path, O_WRONLY | O_CREAT | O_EXCL, 0600);
    if (fd < 0) {
        sodium_memzero (hex, sizeof hex);
        return cli_fail ("%s: %s", path, strerror (errno));
    }
    size_t len = strlen (hex);
    int ok = write (fd, hex, len) == (ssize_t) len && fsync (fd) == 0;
    close (fd);
    sodium_memzero (hex, sizeof hex);
    return ok ? CLI_OK : cli_fail ("%s: write failed", path);
}

/* Whether DIR already holds any part of a node. */
static int
s_is_node (const char *dir)
{
    static const char *const parts[] = {GKX_KEYFILE_NAME, GKX_CONFIG_NAME, GKX_TOKEN_NAME,
                                        CLI_CARD_NAME, "store"};
    for (size_t i = 0; i < sizeof parts / sizeof parts[0]; i++) {
        char path[4096];
        struct stat st;
        snprintf (path, sizeof path, "%s/%s", dir, parts[i]);
        if (stat (path, &st) == 0) {
            return 1;
        }
    }
    return 0;
}

int
cli_init (int argc, char **argv, const char *dir)
{
    static const struct option options[] = {
        {"role", required_argument, NULL, 'r'}, {"name", required_argument, NULL, 'n'},
        {"listen", required_argument, NULL, 'l'}, {"api", required_argument, NULL, 'a'},
        {"email", required_argument, NULL, 'e'}, {"postback", required_argument, NULL, 'p'},
        {"advertise", required_argument, NULL, 'A'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0}};
    gkx_config_init_t init = {0, NULL, NULL, NULL, NULL, NULL, NULL};
    const char *role = NULL;
    int opt;
    optind = 0;
    while ((opt = getopt_long (argc, argv, ":", options, NULL)) != -1) {
        switch (opt) {
            case 'r': role = optarg; break;
            case 'n': init.name = optarg; break;
            case 'l': init.listen = optarg; break;
            case 'a': init.api_listen = optarg; break;
            case 'e': init.email = optarg; break;
            case 'p': init.postback_listen = optarg; break;
            case 'A': init.advertise = optarg; break;
            case 'h': s_usage (stdout); return CLI_OK;
            default:
                fprintf (stderr, "gkx init: %s '%s'\n\n",
                         opt == ':' ? "missing value for" : "unknown option", argv[optind - 1]);
                s_usage (stderr);
                return CLI_USAGE;
        }
    }
    if (optind < argc || !dir || !role || !init.name) {
        fprintf (stderr, "gkx init: %s\n\n", optind < argc ? "unexpected argument"
                 : !dir ? "--dir DIR is required" : !role ? "--role is required"
                 : "--name is required");
        s_usage (stderr);
        return CLI_USAGE;
    }
    if (gkx_role_parse (role, &init.role) != GKX_OK) {
        fprintf (stderr, "gkx init: --role must be advertiser or publisher, not '%s'\n", role);
        return CLI_USAGE;
    }
    const char *api = init.api_listen ? init.api_listen : GKX_CONFIG_DEFAULT_API;
    const char *port = strrchr (api, ':');
    if (!port || port == api || port[1] == '\0' || strspn (port + 1, "0123456789") != strlen (port + 1)) {
        fprintf (stderr, "gkx init: --api must be HOST:PORT, not '%s'\n", api);
        return CLI_USAGE;
    }
    if (init.postback_listen && init.role != GKX_ROLE_ADVERTISER) {
        fprintf (stderr, "gkx init: --postback is for an advertiser node (MMPs post to it)\n");
        return CLI_USAGE;
    }
    const char *postback = init.postback_listen;
    const char *pport = postback ? strrchr (postback, ':') : NULL;
    if (postback && strcmp (postback, "off") != 0
        && (!pport || pport == postback || pport[1] == '\0'
            || strspn (pport + 1, "0123456789") != strlen (pport + 1))) {
        fprintf (stderr, "gkx init: --postback must be HOST:PORT or off, not '%s'\n", postback);
        return CLI_USAGE;
    }
    if (init.advertise && gkx_config_advertise_problem (init.advertise)) {
        fprintf (stderr, "gkx init: --advertise '%s': %s\n", init.advertise,
                 gkx_config_advertise_problem (init.advertise));
        return CLI_USAGE;
    }
    if (postback && strcmp (postback, api) == 0) {
        fprintf (stderr, "gkx init: --postback must differ from --api (%s)\n", api);
        return CLI_USAGE;
    }
    /* Issuing a throwaway card checks name, e-mail and endpoint before
       anything is written, so a refused init leaves no half-made node. */
    char errbuf[GKX_ERRBUF_BYTES];
    gkx_identity_t *identity = gkx_identity_new ();
    gkx_card_t *card = NULL;
    gkx_card_info_t probe = {init.role, init.name,
                             init.advertise ? init.advertise
                             : init.listen ? init.listen : GKX_CONFIG_DEFAULT_LISTEN,
                             init.email ? init.email : "", NULL, 0, NULL, 0, 0};
    if (gkx_card_issue (&card, identity, &probe, errbuf) != GKX_OK) {
        gkx_identity_destroy (&identity);
        fprintf (stderr, "gkx init: %s\n", errbuf);
        return CLI_USAGE;
    }
    gkx_card_destroy (&card);
    if (mkdir (dir, 0700) != 0 && errno != EEXIST) {
        gkx_identity_destroy (&identity);
        return cli_fail ("cannot create %s: %s", dir, strerror (errno));
    }
    if (s_is_node (dir)) {
        gkx_identity_destroy (&identity);
        return cli_fail ("%s already holds a node; refusing to overwrite it", dir);
    }
    gkx_config_t *config = NULL;
    gkx_store_t *store = NULL;
    char store_dir[4096];
    snprintf (store_dir, sizeof store_dir, "%s/store", dir);
    int rc = CLI_FAIL;
    if (gkx_keyfile_save (identity, dir, errbuf) != GKX_OK
        || gkx_config_write (dir, &init, errbuf) != GKX_OK
        || gkx_config_load (&config, dir, errbuf) != GKX_OK) {
        cli_fail ("%s", errbuf);
        goto cleanup;
    }
    if (s_write_token (dir) != CLI_OK || cli_card_current (dir, config, identity, &card) != CLI_OK) {
        goto cleanup;
    }
    /* An advertiser's postback URLs carry this token (DIR/postback.token). */
    if (init.role == GKX_ROLE_ADVERTISER) {
        char postback_token[GKX_POSTBACK_TOKEN_BUF_BYTES];
        int made = gkx_config_postback_token (dir, postback_token, 1, errbuf);
        sodium_memzero (postback_token, sizeof postback_token);
        if (made != GKX_OK) {
            cli_fail ("%s", errbuf);
            goto cleanup;
        }
    }
    if (gkx_store_open (&store, store_dir, gkx_identity_id (identity), NULL, errbuf) != GKX_OK) {
        cli_fail ("%s", errbuf);
        goto cleanup;
    }
    char id[GKX_ID_TEXT_BYTES];
    gkx_id_format (id, gkx_identity_id (identity));
    printf ("initialised %s node \"%s\" in %s\nid: %s\n", role, init.name, dir, id);
    rc = CLI_OK;
cleanup:
    gkx_store_close (&store);
    gkx_card_destroy (&card);
    gkx_config_destroy (&config);
    gkx_identity_destroy (&identity);
    return rc;
}
