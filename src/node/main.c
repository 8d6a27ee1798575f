/*  gkxd - the tenant node.
    Part of gokart-exchange; MIT licence.

    Parses the arguments, opens the node (node.h) and its tenant API
    (api.h on the http module), runs the event loop until SIGTERM or SIGINT,
    then closes the API before the node so no handler outlives the store.
*/
#include <gkx/api.h>
#include <gkx/config.h>
#include <gkx/directory.h>
#include <gkx/intake.h>
#include <gkx/kind.h>
#include <gkx/node.h>
#include <gkx/notifier.h>
#include <gkx/webhook.h>

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Largest API token file read, in bytes. */
#define S_TOKEN_MAX 256

/* The node the signal handler stops. */
static gkx_node_t *s_node;

/* Asks the node to stop; async-signal-safe (it sets a flag). */
static void
s_on_signal (int sig)
{
    (void) sig;
    if (s_node) {
        gkx_node_stop (s_node);
    }
}

/* Prints usage to out. */
static void
s_usage (FILE *out)
{
    fprintf (out, "usage: gkxd --dir DIR\n\n"
                  "Runs the node of DIR (created by 'gkx init') in the foreground until\n"
                  "SIGTERM or SIGINT. GKX_DIR may stand for --dir. Logs go to stderr.\n");
}

/* Reads the API token (first line of DIR/api.token). */
static int
s_read_token (const char *dir, char *token, size_t size)
{
    char path[4096];
    snprintf (path, sizeof path, "%s/%s", dir, GKX_TOKEN_NAME);
    FILE *file = fopen (path, "r");
    if (!file) {
        return -1;
    }
    int ok = fgets (token, (int) size, file) != NULL;
    fclose (file);
    token[strcspn (token, "\r\n")] = '\0';
    return ok && token[0] ? 0 : -1;
}

int
main (int argc, char **argv)
{
    const char *dir = getenv ("GKX_DIR");
    for (int i = 1; i < argc; i++) {
        /* --dir DIR and --dir=DIR, --help and -h, as gkx takes them. */
        if (strcmp (argv[i], "--dir") == 0 && i + 1 < argc) {
            dir = argv[++i];
        }
        else if (strncmp (argv[i], "--dir=", 6) == 0) {
            dir = argv[i] + 6;
        }
        else if (strcmp (argv[i], "--dir") == 0) {
            fprintf (stderr, "gkxd: --dir needs a directory\n\n");
            s_usage (stderr);
            return 2;
        }
        else if (strcmp (argv[i], "--help") == 0 || strcmp (argv[i], "-h") == 0) {
            s_usage (stdout);
            return 0;
        }
        else {
            fprintf (stderr, "gkxd: unknown argument '%s'\n\n", argv[i]);
            s_usage (stderr);
            return 2;
        }
    }
    if (!dir || !*dir) {
        s_usage (stderr);
        return 2;
    }
    char errbuf[GKX_ERRBUF_BYTES] = "";
    char token[S_TOKEN_MAX];
    gkx_node_t *node = NULL;
    gkx_http_t *api = NULL;
    gkx_notifier_t *notifier = NULL;
    gkx_intake_t *intake = NULL;
    gkx_webhook_t *webhook = NULL;
    gkx_directory_t *directory = NULL;
    int rc = 1;
    if (gkx_node_open (&node, dir, errbuf) != GKX_OK) {
        fprintf (stderr, "gkxd: error: %s\n", errbuf);
        return 1;
    }
    if (s_read_token (dir, token, sizeof token) != 0) {
        fprintf (stderr, "gkxd: error: cannot read the API token in %s/%s\n", dir, GKX_TOKEN_NAME);
        goto cleanup;
    }
    size_t routes_count = 0;
    const gkx_http_route_t *routes = gkx_api_routes (&routes_count);
    gkx_http_options_t options;
    memset (&options, 0, sizeof options);
    options.address = gkx_node_config (node)->api_listen;
    options.token = token;
    options.routes = routes;
    options.routes_count = routes_count;
    options.user = node;
    if (gkx_http_open (&api, &options, errbuf) != GKX_OK) {
        fprintf (stderr, "gkxd: error: tenant API: %s\n", errbuf);
        goto cleanup;
    }
    memset (token, 0, sizeof token);
    fprintf (stderr, "gkxd: info: tenant API on %s\n", options.address);
    const gkx_config_t *config = gkx_node_config (node);
    if (config->role == GKX_ROLE_ADVERTISER && config->postback_listen) {
        if (gkx_intake_open (&intake, node, errbuf) != GKX_OK) {
            fprintf (stderr, "gkxd: error: postback endpoint: %s\n", errbuf);
            goto cleanup;
        }
        gkx_node_set_intake (node, intake);
        fprintf (stderr, "gkxd: info: postbacks on %s\n", config->postback_listen);
    }
    if (config->notify_on) {
        if (gkx_notifier_start (&notifier, node, errbuf) != GKX_OK) {
            fprintf (stderr, "gkxd: error: e-mail notifications: %s\n", errbuf);
            goto cleanup;
        }
        gkx_node_set_notifier (node, notifier);
        fprintf (stderr, "gkxd: info: e-mail notifications to %zu address%s\n",
                 config->notify_to_count, config->notify_to_count == 1 ? "" : "es");
    }
    if (config->role == GKX_ROLE_PUBLISHER && config->webhook_url) {
        if (gkx_webhook_start (&webhook, node, config->webhook_url, config->webhook_secret,
                               errbuf) != GKX_OK) {
            fprintf (stderr, "gkxd: error: webhook: %s\n", errbuf);
            goto cleanup;
        }
        gkx_node_set_webhook (node, webhook);
        fprintf (stderr, "gkxd: info: webhook deliveries to %s\n", config->webhook_url);
    }
    if (gkx_directory_open (&directory, node, errbuf) != GKX_OK) {
        fprintf (stderr, "gkxd: error: %s\n", errbuf);
        goto cleanup;
    }
    gkx_node_set_directory (node, directory);
    s_node = node;
    struct sigaction sa;
    memset (&sa, 0, sizeof sa);
    sa.sa_handler = s_on_signal;
    sigaction (SIGTERM, &sa, NULL);
    sigaction (SIGINT, &sa, NULL);
    signal (SIGPIPE, SIG_IGN);
    rc = gkx_node_run (node) == GKX_OK ? 0 : 1;
cleanup:
    if (node) {
        gkx_node_set_intake (node, NULL);
    }
    gkx_intake_close (&intake);
    gkx_webhook_stop (&webhook);
    if (node) {
        gkx_node_set_notifier (node, NULL);
    }
    gkx_notifier_stop (&notifier);
    if (node) {
        gkx_node_set_webhook (node, NULL);
    }
    gkx_http_close (&api);
    if (node) {
        gkx_node_set_directory (node, NULL);
    }
    gkx_directory_close (&directory);
    s_node = NULL;
    gkx_node_close (&node);
    return rc;
}
