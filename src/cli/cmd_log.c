/*  cmd_log - gkx log: offline access to the local log.
    Part of gokart-exchange; MIT licence.

    These verbs open the store directly (LMDB allows a second process beside
    a running gkxd) so an operator can list, export and import partnership
    logs even when the node is down.
*/
#include "cli.h"

#include <gkx/export.h>
#include <gkx/kind.h>
#include <gkx/store.h>

#include <jansson.h>
#include <stdio.h>
#include <string.h>

/* What gkx log takes. */
static const cli_spec_t s_log_spec = {
    "log",
    "usage: gkx log list [--json]\n"
    "       gkx log export PID FILE\n"
    "       gkx log import FILE\n"
    "       gkx log rebuild PID\n\n"
    "list     partnerships in the local store with both chains' heads\n"
    "export   write a partnership's log to FILE, the format gkx-audit reads\n"
    "import   ingest an export's entries under every ingest rule\n"
    "rebuild  recompute the shared offer from the entries alone and compare\n"
    "         its digest with the stored one\n",
    CLI_OPT_JSON, 1, 3,
};

/* Opens the node's store. */
static int
s_open (const char *dir, gkx_identity_t **identity_p, gkx_store_t **store_p)
{
    gkx_config_t *config = NULL;
    if (cli_node_open (dir, &config, identity_p) != CLI_OK) {
        return CLI_FAIL;
    }
    gkx_config_destroy (&config);
    char path[4096];
    char errbuf[GKX_ERRBUF_BYTES];
    snprintf (path, sizeof path, "%s/store", dir);
    if (gkx_store_open (store_p, path, gkx_identity_id (*identity_p), NULL, errbuf) != GKX_OK) {
        gkx_identity_destroy (identity_p);
        return cli_fail ("%s", errbuf);
    }
    return CLI_OK;
}

/* State of a listing. */
typedef struct {
    gkx_store_t *store;
    json_t *rows;
} s_list_t;

/* Adds one partnership to the listing. */
static int
s_list_one (const gkx_partnership_t *p, void *arg)
{
    s_list_t *list = arg;
    gkx_head_t adv;
    gkx_head_t pub;
    char pid[GKX_ID_TEXT_BYTES];
    char a[GKX_ID_TEXT_BYTES];
    char b[GKX_ID_TEXT_BYTES];
    if (gkx_store_head (list->store, p->pid, GKX_ROLE_ADVERTISER, &adv) != GKX_OK
        || gkx_store_head (list->store, p->pid, GKX_ROLE_PUBLISHER, &pub) != GKX_OK) {
        return GKX_ESTORE;
    }
    gkx_id_format (pid, p->pid);
    gkx_id_format (a, p->advertiser);
    gkx_id_format (b, p->publisher);
    json_array_append_new (list->rows,
                           json_pack ("{s:s, s:s, s:s, s:s, s:s, s:I, s:I}", "pid", pid,
                                      "role", gkx_role_name (p->self_role), "advertiser", a,
                                      "publisher", b, "status", p->is_frozen ? "frozen" : "open",
                                      "advertiser_seq", (json_int_t) adv.seq,
                                      "publisher_seq", (json_int_t) pub.seq));
    return GKX_OK;
}

int
cli_log (int argc, char **argv, const char *dir)
{
    cli_args_t parsed;
    int prc = cli_args_parse (&parsed, &s_log_spec, argc, argv);
    if (prc != CLI_OK) {
        return prc == CLI_HELP ? CLI_OK : prc;
    }
    int as_json = parsed.json;
    int nargs = parsed.count;
    char **args = parsed.args;
    const char *verb = nargs > 0 ? args[0] : "";
    int arity = strcmp (verb, "list") == 0 ? 1 : strcmp (verb, "export") == 0 ? 3
        : strcmp (verb, "import") == 0 || strcmp (verb, "rebuild") == 0 ? 2 : -1;
    if (arity < 0 || nargs != arity) {
        fprintf (stderr, "gkx log: %s\n\n", arity < 0 ? "expected list, export, import or rebuild"
                 : "wrong number of arguments");
        fputs (s_log_spec.usage, stderr);
        return CLI_USAGE;
    }
    char errbuf[GKX_ERRBUF_BYTES];
    uint8_t pid[GKX_ID_BYTES];
    if ((strcmp (verb, "export") == 0 || strcmp (verb, "rebuild") == 0)
        && gkx_id_parse (pid, args[1], errbuf) != GKX_OK) {
        fprintf (stderr, "gkx log %s: partnership %s\n", verb, errbuf);
        return CLI_USAGE;
    }
    gkx_identity_t *identity = NULL;
    gkx_store_t *store = NULL;
    if (s_open (dir, &identity, &store) != CLI_OK) {
        return CLI_FAIL;
    }
    int rc = CLI_OK;
    if (strcmp (verb, "list") == 0) {
        s_list_t list = {store, json_array ()};
        if (gkx_store_partnerships (store, s_list_one, &list) != GKX_OK) {
            rc = cli_fail ("the store could not be read");
        }
        else if (as_json) {
            json_dumpf (list.rows, stdout, JSON_INDENT (2));
            fputc ('\n', stdout);
        }
        else {
            printf ("%-64s  %-10s  %-6s  %8s  %8s\n", "PARTNERSHIP", "ROLE", "STATUS",
                    "ADV SEQ", "PUB SEQ");
            size_t i;
            json_t *row;
            json_array_foreach (list.rows, i, row) {
                printf ("%-64s  %-10s  %-6s  %8lld  %8lld\n",
                        json_string_value (json_object_get (row, "pid")),
                        json_string_value (json_object_get (row, "role")),
                        json_string_value (json_object_get (row, "status")),
                        (long long) json_integer_value (json_object_get (row, "advertiser_seq")),
                        (long long) json_integer_value (json_object_get (row, "publisher_seq")));
            }
        }
        json_decref (list.rows);
    }
    else if (strcmp (verb, "export") == 0) {
        if (gkx_export_write (store, pid, gkx_identity_id (identity), cli_now_ms (), args[2],
                              errbuf) != GKX_OK) {
            rc = cli_fail ("%s", errbuf);
        }
        else {
            printf ("exported %s to %s\n", args[1], args[2]);
        }
    }
    else if (strcmp (verb, "rebuild") == 0) {
        uint8_t before[GKX_OFFER_DIGEST_BYTES];
        uint8_t after[GKX_OFFER_DIGEST_BYTES];
        char hex[GKX_ID_TEXT_BYTES];
        int changed = 0;
        if (gkx_store_digest (store, pid, before) != GKX_OK) {
            rc = cli_fail ("no such partnership %s", args[1]);
        }
        else if (gkx_store_rebuild (store, pid, &changed, errbuf) != GKX_OK
                 || gkx_store_digest (store, pid, after) != GKX_OK) {
            rc = cli_fail ("rebuild failed: %s", errbuf);
        }
        else {
            gkx_id_format (hex, after);
            printf ("digest %s\n%s\n", hex, changed
                    ? "the stored offer differed from the entries and was replaced"
                    : "the stored offer matches the entries");
        }
    }
    else {
        gkx_import_result_t result;
        if (gkx_export_import (store, args[1], &result, errbuf) != GKX_OK) {
            rc = cli_fail ("%s", errbuf);
        }
        else {
            printf ("imported %zu new entries, %zu already held, %zu refused\n",
                    result.appended, result.duplicates, result.refused);
            if (result.refused) {
                rc = cli_fail ("first refusal: %s", result.first_message);
            }
        }
    }
    gkx_store_close (&store);
    gkx_identity_destroy (&identity);
    return rc;
}
