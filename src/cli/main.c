/*  gkx - the command line a tenant uses.
    Part of gokart-exchange; MIT licence.

    Finds the node directory (--dir DIR before or after the verb, or GKX_DIR)
    and hands the rest of the arguments to the verb.
*/
#include "cli.h"

#include <gkx/alloc.h>
#include <gkx/identity.h>
#include <gkx/keyfile.h>

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* The verbs, in the order usage lists them. */
static const struct {
    const char *name;
    cli_verb_fn *fn;
    const char *summary;
} s_verbs[] = {
    {"init", cli_init, "create a node directory: keys, configuration, API token, store"},
    {"card", cli_card, "print this node's signed tenant card; card withdraw, card publish"},
    {"directory-address", cli_directory_address, "the address of the directory this node serves"},
    {"log", cli_log, "offline access to the local log: list, export, import, rebuild"},
    {"status", cli_status, "the running node: id, role, partnerships, peers and their lag"},
    {"peer", cli_peer, "add a partner's card (peer add CARD_FILE), list peers (peer list)"},
    {"publishers", cli_publishers, "the publishers your directories list, cards verified"},
    {"share", cli_share, "share an offer with a publisher: opens a partnership"},
    {"partnerships", cli_partnerships, "list partnerships: counterparty, role, status, offer"},
    {"offer", cli_offer, "a partnership's offer: offer show, offer set, offer propose"},
    {"pause", cli_pause, "pause a partnership's offer"},
    {"resume", cli_resume, "resume a paused offer"},
    {"changes", cli_changes, "a partnership's change log"},
    {"proposals", cli_proposals, "a partnership's proposals and their answers"},
    {"accept", cli_accept, "accept the other side's proposal"},
    {"decline", cli_decline, "decline the other side's proposal"},
    {"withdraw", cli_withdraw, "withdraw a proposal of this node"},
    {"export", cli_export, "writes a partnership's log, fetched from the running node, to a file"},
    {"conversions", cli_conversions, "a partnership's conversions: event, payout, status"},
    {"conversion", cli_conversion, "change a conversion's status (conversion status ...)"},
    {"report", cli_report, "conversion counts and payouts by day, event, status or country"},
    {"postback-url", cli_postback_url, "the postback URL to paste into an MMP"},
    {"deliveries", cli_deliveries, "webhook deliveries to the publisher; replay one"},
    {"notifications", cli_notifications, "the e-mail outbox: the other side's changes, mailed"},
};

/* Prints the top-level usage to out. */
static void
s_usage (FILE *out)
{
    fprintf (out, "usage: gkx [--dir DIR] VERB [OPTIONS]\n\n"
                  "The node directory comes from --dir (before or after the verb) or GKX_DIR.\n\n"
                  "verbs:\n");
    for (size_t i = 0; i < sizeof s_verbs / sizeof s_verbs[0]; i++) {
        fprintf (out, "  %-17s %s\n", s_verbs[i].name, s_verbs[i].summary);
    }
    fprintf (out, "\nRun 'gkx VERB --help' for a verb's options.\n");
}

int
cli_fail (const char *fmt, ...)
{
    va_list args;
    fputs ("gkx: ", stderr);
    va_start (args, fmt);
    vfprintf (stderr, fmt, args);
    va_end (args);
    fputc ('\n', stderr);
    return CLI_FAIL;
}

unsigned long long
cli_now_ms (void)
{
    struct timespec ts;
    clock_gettime (CLOCK_REALTIME, &ts);
    return (unsigned long long) ts.tv_sec * 1000 + (unsigned long long) ts.tv_nsec / 1000000;
}

int
cli_node_open (const char *dir, gkx_config_t **config_p, gkx_identity_t **identity_p)
{
    char errbuf[GKX_ERRBUF_BYTES];
    if (!dir) {
        return cli_fail ("no node directory: pass --dir DIR or set GKX_DIR");
    }
    if (gkx_config_load (config_p, dir, errbuf) != GKX_OK) {
        return cli_fail ("%s", errbuf);
    }
    if (gkx_keyfile_load (identity_p, dir, errbuf) != GKX_OK) {
        gkx_config_destroy (config_p);
        return cli_fail ("%s", errbuf);
    }
    return CLI_OK;
}

int
main (int argc, char **argv)
{
    const char *dir = getenv ("GKX_DIR");
    char **rest = gkx_zalloc ((size_t) (argc + 1) * sizeof *rest);
    int count = 0;
    int rc = CLI_USAGE;
    /* --dir may stand anywhere, so it is taken out before the verb parses. */
    for (int i = 1; i < argc; i++) {
        if (strcmp (argv[i], "--dir") == 0) {
            if (i + 1 >= argc) {
                fprintf (stderr, "gkx: --dir needs a directory\n");
                goto cleanup;
            }
            dir = argv[++i];
        }
        else if (strncmp (argv[i], "--dir=", 6) == 0) {
            dir = argv[i] + 6;
        }
        else {
            rest[count++] = argv[i];
        }
    }
    if (count == 0 || strcmp (rest[0], "--help") == 0 || strcmp (rest[0], "-h") == 0
        || strcmp (rest[0], "help") == 0) {
        s_usage (count == 0 ? stderr : stdout);
        rc = count == 0 ? CLI_USAGE : CLI_OK;
        goto cleanup;
    }
    if (dir && *dir == '\0') {
        dir = NULL;
    }
    for (size_t v = 0; v < sizeof s_verbs / sizeof s_verbs[0]; v++) {
        if (strcmp (rest[0], s_verbs[v].name) == 0) {
            rc = s_verbs[v].fn (count, rest, dir);
            goto cleanup;
        }
    }
    fprintf (stderr, "gkx: unknown verb '%s'\n\n", rest[0]);
    s_usage (stderr);
cleanup:
    gkx_free (rest);
    return rc;
}
