/*  gkxd - the tenant node.
    Part of gokart-exchange; MIT licence.

    This version opens and checks the node: configuration, keys, tenant card
    and store, then stays up until SIGTERM or SIGINT and closes the store
    cleanly. Replication, the tenant API, postbacks and notifications are
    added as modules beside this file.
*/
#include <gkx/config.h>
#include <gkx/identity.h>
#include <gkx/kind.h>
#include <gkx/keyfile.h>
#include <gkx/store.h>

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Set by the signal handler; the main loop exits when it is set. */
static volatile sig_atomic_t s_stop;

/* Records a stop request. */
static void
s_on_signal (int sig)
{
    (void) sig;
    s_stop = 1;
}

/* Prints usage to out. */
static void
s_usage (FILE *out)
{
    fprintf (out, "usage: gkxd --dir DIR\n\n"
                  "Runs the node of DIR (created by 'gkx init') in the foreground until\n"
                  "SIGTERM or SIGINT. GKX_DIR may stand for --dir.\n");
}

int
main (int argc, char **argv)
{
    const char *dir = getenv ("GKX_DIR");
    for (int i = 1; i < argc; i++) {
        if (strcmp (argv[i], "--dir") == 0 && i + 1 < argc) {
            dir = argv[++i];
        }
        else if (strcmp (argv[i], "--help") == 0) {
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
    char errbuf[GKX_ERRBUF_BYTES];
    gkx_config_t *config = NULL;
    gkx_identity_t *identity = NULL;
    gkx_store_t *store = NULL;
    char store_dir[4096];
    snprintf (store_dir, sizeof store_dir, "%s/store", dir);
    int rc = 1;
    if (gkx_config_load (&config, dir, errbuf) != GKX_OK
        || gkx_keyfile_load (&identity, dir, errbuf) != GKX_OK
        || gkx_store_open (&store, store_dir, gkx_identity_id (identity), NULL, errbuf) != GKX_OK) {
        fprintf (stderr, "gkxd: error: %s\n", errbuf);
        goto cleanup;
    }
    struct sigaction sa;
    memset (&sa, 0, sizeof sa);
    sa.sa_handler = s_on_signal;
    sigaction (SIGTERM, &sa, NULL);
    sigaction (SIGINT, &sa, NULL);
    char id[GKX_ID_TEXT_BYTES];
    gkx_id_format (id, gkx_identity_id (identity));
    fprintf (stderr, "gkxd: info: node %s (%s \"%s\") ready, store %s\n", id,
             gkx_role_name (config->role), config->name, store_dir);
    while (!s_stop) {
        pause ();
    }
    fprintf (stderr, "gkxd: info: stopping\n");
    rc = 0;
cleanup:
    gkx_store_close (&store);
    gkx_identity_destroy (&identity);
    gkx_config_destroy (&config);
    return rc;
}
