/*  cmd_node - gkx status, peer, share and partnerships: the running node.
    Part of gokart-exchange; MIT licence.

    These verbs, and those of cmd_offer.c, talk to the running gkxd through
    its tenant API (client.h); docs/api.md describes each request. This file
    also holds what those verbs share: option parsing, partnership ids, JSON
    output for scripts and tables for people. Every verb prints a table (or a
    few lines) by default and the API's JSON with --json, exits 0 on success,
    1 with one line on stderr on failure and 2 on a usage error.
*/
#include "cli.h"
#include "client.h"

#include <gkx/alloc.h>
#include <gkx/export.h>

#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

/* Largest JSON file read (a card, an offer, a policy): the API's body limit. */
#define S_JSON_FILE_MAX (1024 * 1024)
/* Longest text of one table cell, in bytes; longer cells are cut. */
#define S_CELL_BYTES 160
/* Columns between two table columns. */
#define S_TABLE_GAP 2
/* Most options a verb takes, with --help and the terminator. */
#define S_OPTIONS_MAX 8
/* Length of the short id shown in tables. */
#define S_SHORT_ID 12
/* Fewest hex digits of a publisher id prefix gkx share takes. */
#define S_PUBLISHER_PREFIX_MIN 8

int
cli_args_parse (cli_args_t *out, const cli_spec_t *spec, int argc, char **argv)
{
    struct option options[S_OPTIONS_MAX];
    size_t n = 0;
    memset (out, 0, sizeof *out);
    memset (options, 0, sizeof options);
    options[n++] = (struct option) {"help", no_argument, NULL, 'h'};
    if (spec->options & CLI_OPT_JSON) {
        options[n++] = (struct option) {"json", no_argument, NULL, 'j'};
    }
    if (spec->options & CLI_OPT_DIGEST) {
        options[n++] = (struct option) {"digest", no_argument, NULL, 'd'};
    }
    if (spec->options & CLI_OPT_SHARE) {
        options[n++] = (struct option) {"publisher", required_argument, NULL, 'p'};
        options[n++] = (struct option) {"offer", required_argument, NULL, 'o'};
        options[n++] = (struct option) {"policy", required_argument, NULL, 'y'};
    }
    optind = 0;
    for (;;) {
        int opt = getopt_long (argc, argv, ":", options, NULL);
        if (opt == -1) {
            break;
        }
        switch (opt) {
            case 'h': fputs (spec->usage, stdout); return CLI_HELP;
            case 'j': out->json = 1; break;
            case 'd': out->digest = 1; break;
            case 'p': out->publisher = optarg; break;
            case 'o': out->offer = optarg; break;
            case 'y': out->policy = optarg; break;
            case ':':
                fprintf (stderr, "gkx %s: option '%s' needs a value\n\n", spec->name,
                         argv[optind - 1]);
                fputs (spec->usage, stderr);
                return CLI_USAGE;
            default:
                fprintf (stderr, "gkx %s: unknown option '%s'\n\n", spec->name,
                         argv[optind - 1]);
                fputs (spec->usage, stderr);
                return CLI_USAGE;
        }
    }
    out->args = argv + optind;
    out->count = argc - optind;
    if (out->count < spec->min_args) {
        fprintf (stderr, "gkx %s: missing arguments\n\n", spec->name);
        fputs (spec->usage, stderr);
        return CLI_USAGE;
    }
    if (spec->max_args >= 0 && out->count > spec->max_args) {
        fprintf (stderr, "gkx %s: unexpected argument '%s'\n\n", spec->name,
                 out->args[spec->max_args]);
        fputs (spec->usage, stderr);
        return CLI_USAGE;
    }
    return CLI_OK;
}

int
cli_pid_parse (char out[GKX_ID_TEXT_BYTES], const cli_spec_t *spec, const char *text)
{
    uint8_t pid[GKX_ID_BYTES];
    char errbuf[GKX_ERRBUF_BYTES];
    if (gkx_id_parse (pid, text, errbuf) != GKX_OK) {
        fprintf (stderr, "gkx %s: partnership %s\n", spec->name, errbuf);
        return CLI_USAGE;
    }
    gkx_id_format (out, pid);
    return CLI_OK;
}

int
cli_api (const char *dir, const char *method, const char *path, const json_t *body,
         json_t **reply_p)
{
    if (!dir) {
        return cli_fail ("no node directory: pass --dir DIR or set GKX_DIR");
    }
    return cli_client_call (dir, method, path, body, reply_p, NULL);
}

void
cli_json_print (const json_t *json)
{
    json_dumpf (json, stdout, JSON_INDENT (2) | JSON_SORT_KEYS | JSON_ENCODE_ANY);
    fputc ('\n', stdout);
}

const char *
cli_printable (char *out, size_t size, const char *text)
{
    size_t i = 0;
    for (; text && text[i] && i < size - 1; i++) {
        unsigned char c = (unsigned char) text[i];
        out[i] = c < 0x20 || c == 0x7f ? ' ' : (char) c;
    }
    /* Never end inside a UTF-8 sequence. */
    if (text && text[i]) {
        while (i > 0 && ((unsigned char) out[i] & 0xc0) == 0x80) {
            i--;
        }
    }
    out[i] = '\0';
    return out;
}

/* A table for people. */
struct cli_table {
    size_t columns;             /* cells per row */
    size_t rows;                /* rows held, the header included */
    char **cells;               /* rows * columns texts, ours */
};

/* Appends one row of the table's column count from args. The last column
   is kept whole (nothing follows it); the others are cut at S_CELL_BYTES. */
static void
s_table_row (cli_table_t *self, va_list args)
{
    self->cells = gkx_realloc (self->cells, (self->rows + 1) * self->columns * sizeof (char *));
    for (size_t c = 0; c < self->columns; c++) {
        const char *text = va_arg (args, const char *);
        text = text ? text : "-";
        size_t len = strlen (text);
        int is_cut = c + 1 < self->columns && len >= S_CELL_BYTES;
        size_t size = is_cut ? S_CELL_BYTES + 4 : len + 1;
        char *cell = gkx_zalloc (size);
        cli_printable (cell, is_cut ? S_CELL_BYTES : size, text);
        if (is_cut) {
            memcpy (cell + strlen (cell), "...", 4);
        }
        self->cells[self->rows * self->columns + c] = cell;
    }
    self->rows++;
}

cli_table_t *
cli_table_new (size_t columns, ...)
{
    cli_table_t *self = gkx_zalloc (sizeof *self);
    self->columns = columns;
    va_list args;
    va_start (args, columns);
    s_table_row (self, args);
    va_end (args);
    return self;
}

void
cli_table_add (cli_table_t *self, ...)
{
    va_list args;
    va_start (args, self);
    s_table_row (self, args);
    va_end (args);
}

/* Returns the number of characters (UTF-8 code points) of text. */
static size_t
s_width (const char *text)
{
    size_t width = 0;
    for (const unsigned char *p = (const unsigned char *) text; *p; p++) {
        width += (*p & 0xc0) != 0x80;
    }
    return width;
}

void
cli_table_print (const cli_table_t *self)
{
    size_t *widths = gkx_zalloc (self->columns * sizeof *widths);
    for (size_t r = 0; r < self->rows; r++) {
        for (size_t c = 0; c < self->columns; c++) {
            size_t w = s_width (self->cells[r * self->columns + c]);
            widths[c] = w > widths[c] ? w : widths[c];
        }
    }
    for (size_t r = 0; r < self->rows; r++) {
        for (size_t c = 0; c < self->columns; c++) {
            const char *cell = self->cells[r * self->columns + c];
            fputs (cell, stdout);
            if (c + 1 < self->columns) {
                printf ("%*s", (int) (widths[c] - s_width (cell) + S_TABLE_GAP), "");
            }
        }
        fputc ('\n', stdout);
    }
    gkx_free (widths);
}

void
cli_table_destroy (cli_table_t **self_p)
{
    if (!self_p || !*self_p) {
        return;
    }
    cli_table_t *self = *self_p;
    for (size_t i = 0; i < self->rows * self->columns; i++) {
        gkx_free (self->cells[i]);
    }
    gkx_free (self->cells);
    gkx_free (self);
    *self_p = NULL;
}

/* Reads a JSON file into *json_p (the caller's); what names it in messages. */
static int
s_json_file (json_t **json_p, const char *path, const char *what)
{
    uint8_t *data = NULL;
    size_t len = 0;
    char errbuf[GKX_ERRBUF_BYTES];
    if (gkx_file_read (path, S_JSON_FILE_MAX, &data, &len, errbuf) != GKX_OK) {
        return cli_fail ("cannot read the %s file: %s", what, errbuf);
    }
    json_error_t error;
    *json_p = json_loadb ((const char *) data, len, JSON_REJECT_DUPLICATES, &error);
    gkx_free (data);
    if (!*json_p) {
        return cli_fail ("%s %s: not JSON: line %d, column %d: %s", what, path, error.line,
                         error.column, error.text);
    }
    if (!json_is_object (*json_p)) {
        json_decref (*json_p);
        *json_p = NULL;
        return cli_fail ("%s %s: must be a JSON object", what, path);
    }
    return CLI_OK;
}

/* The string member key of object, or "" when absent. */
static const char *
s_str (const json_t *object, const char *key)
{
    const char *text = json_string_value (json_object_get (object, key));
    return text ? text : "";
}

/* Writes the first S_SHORT_ID characters of an id into out. */
static const char *
s_short (char out[S_SHORT_ID + 1], const char *id)
{
    snprintf (out, S_SHORT_ID + 1, "%s", id);
    return out;
}

/* Adds the peers of an API reply to a new table; full ids when is_full. */
static cli_table_t *
s_peers_table (const json_t *peers, int is_full)
{
    cli_table_t *table = is_full ? cli_table_new (7, "PEER", "NAME", "ROLE", "ENDPOINT",
                                                  "CONNECTED", "LAG", "LAST SEEN")
                                 : cli_table_new (6, "PEER", "NAME", "ROLE", "CONNECTED",
                                                  "LAG", "LAST SEEN");
    size_t i;
    json_t *peer;
    json_array_foreach (peers, i, peer) {
        char lag[64];
        char seen[32] = "never";
        char id[S_SHORT_ID + 1];
        const json_t *ago = json_object_get (peer, "last_seen_seconds_ago");
        long long entries = (long long) json_integer_value (json_object_get (peer, "lag_entries"));
        snprintf (lag, sizeof lag, "%lld", entries);
        if (entries > 0) {
            snprintf (lag, sizeof lag, "%lld (%.1f s)", entries,
                      json_number_value (json_object_get (peer, "lag_seconds")));
        }
        if (json_is_integer (ago)) {
            snprintf (seen, sizeof seen, "%lld s ago", (long long) json_integer_value (ago));
        }
        const char *connected = json_is_true (json_object_get (peer, "connected")) ? "yes" : "no";
        if (is_full) {
            cli_table_add (table, s_str (peer, "id"), s_str (peer, "name"), s_str (peer, "role"),
                           s_str (peer, "endpoint"), connected, lag, seen);
        }
        else {
            cli_table_add (table, s_short (id, s_str (peer, "id")), s_str (peer, "name"),
                           s_str (peer, "role"), connected, lag, seen);
        }
    }
    return table;
}

/* Usage of gkx status. */
static const cli_spec_t s_status_spec = {
    "status",
    "usage: gkx status [--json]\n\n"
    "Asks the running node who it is (id, role, name, addresses), how long it\n"
    "has run, how many partnerships it holds by status, the conversions of\n"
    "today (UTC), what waits in its outboxes (webhook deliveries, e-mails), and\n"
    "its peers: connected or not, and how many of this node's entries each has\n"
    "not acknowledged yet (LAG), with the age of the oldest of them.\n",
    CLI_OPT_JSON, 0, 0};

/* Writes a duration in seconds the way people read it: "42 s", "5 min 3 s",
   "2 h 5 min", "3 d 4 h". */
static const char *
s_duration (char *out, size_t size, long long seconds)
{
    const long long minute = 60;
    const long long hour = 60 * minute;
    const long long day = 24 * hour;
    if (seconds < minute) {
        snprintf (out, size, "%lld s", seconds < 0 ? 0 : seconds);
    }
    else if (seconds < hour) {
        snprintf (out, size, "%lld min %lld s", seconds / minute, seconds % minute);
    }
    else if (seconds < day) {
        snprintf (out, size, "%lld h %lld min", seconds / hour, seconds % hour / minute);
    }
    else {
        snprintf (out, size, "%lld d %lld h", seconds / day, seconds % day / hour);
    }
    return out;
}

int
cli_status (int argc, char **argv, const char *dir)
{
    cli_args_t args;
    int rc = cli_args_parse (&args, &s_status_spec, argc, argv);
    if (rc != CLI_OK) {
        return rc == CLI_HELP ? CLI_OK : rc;
    }
    json_t *reply = NULL;
    if (cli_api (dir, "GET", "/v1/status", NULL, &reply) != CLI_OK) {
        return CLI_FAIL;
    }
    if (args.json) {
        cli_json_print (reply);
        json_decref (reply);
        return CLI_OK;
    }
    const json_t *counts = json_object_get (reply, "partnerships");
    const json_t *peers = json_object_get (reply, "peers");
    char name[S_CELL_BYTES];
    printf ("id:            %s\n", s_str (reply, "id"));
    printf ("role:          %s\n", s_str (reply, "role"));
    printf ("name:          %s\n", cli_printable (name, sizeof name, s_str (reply, "name")));
    printf ("replication:   %s\n", s_str (reply, "listen"));
    printf ("api:           %s\n", s_str (reply, "api"));
    char uptime[S_CELL_BYTES];
    printf ("uptime:        %s\n",
            s_duration (uptime, sizeof uptime,
                        (long long) json_integer_value (json_object_get (reply, "uptime_seconds"))));
    printf ("partnerships:  %lld (%lld active, %lld paused, %lld frozen)\n",
            (long long) json_integer_value (json_object_get (counts, "total")),
            (long long) json_integer_value (json_object_get (counts, "active")),
            (long long) json_integer_value (json_object_get (counts, "paused")),
            (long long) json_integer_value (json_object_get (counts, "frozen")));
    const json_t *outbox = json_object_get (reply, "outbox");
    printf ("conversions:   %lld today (UTC)\n",
            (long long) json_integer_value (json_object_get (reply, "conversions_today")));
    printf ("outbox:        %lld webhook deliveries, %lld e-mails waiting\n",
            (long long) json_integer_value (json_object_get (outbox, "deliveries_pending")),
            (long long) json_integer_value (json_object_get (outbox, "emails_pending")));
    if (json_array_size (peers) == 0) {
        printf ("peers:         none (add one with: gkx peer add CARD_FILE)\n");
    }
    else {
        printf ("peers:         %zu\n\n", json_array_size (peers));
        cli_table_t *table = s_peers_table (peers, 0);
        cli_table_print (table);
        cli_table_destroy (&table);
    }
    json_decref (reply);
    return CLI_OK;
}

/* Usage of gkx peer. */
static const cli_spec_t s_peer_spec = {
    "peer",
    "usage: gkx peer add CARD_FILE [--json]\n"
    "       gkx peer list [--json]\n\n"
    "add   verifies a partner's signed tenant card (the output of 'gkx card --json'\n"
    "      on the partner's node) and adds the partner to the running node, which\n"
    "      connects to it at once\n"
    "list  the peers: id, name, role, endpoint, whether connected, and LAG, how many\n"
    "      of this node's entries the peer has not acknowledged yet (and the age of\n"
    "      the oldest of them)\n",
    CLI_OPT_JSON, 1, 2};

/* gkx peer add CARD_FILE. */
static int
s_peer_add (const cli_args_t *args, const char *dir)
{
    json_t *card_json = NULL;
    gkx_card_t *card = NULL;
    json_t *reply = NULL;
    char errbuf[GKX_ERRBUF_BYTES];
    const char *path = args->args[1];
    if (s_json_file (&card_json, path, "card") != CLI_OK) {
        return CLI_FAIL;
    }
    if (gkx_card_from_json (&card, card_json, errbuf) != GKX_OK) {
        json_decref (card_json);
        return cli_fail ("card %s: not a valid signed tenant card: %s", path, errbuf);
    }
    gkx_card_destroy (&card);
    int rc = cli_api (dir, "POST", "/v1/peers", card_json, &reply);
    json_decref (card_json);
    if (rc != CLI_OK) {
        return CLI_FAIL;
    }
    if (args->json) {
        cli_json_print (reply);
    }
    else {
        char name[S_CELL_BYTES];
        printf ("added peer \"%s\" (%s) %s\n",
                cli_printable (name, sizeof name, s_str (reply, "name")), s_str (reply, "role"),
                s_str (reply, "id"));
    }
    json_decref (reply);
    return CLI_OK;
}

/* gkx peer list. */
static int
s_peer_list (const cli_args_t *args, const char *dir)
{
    json_t *reply = NULL;
    if (cli_api (dir, "GET", "/v1/peers", NULL, &reply) != CLI_OK) {
        return CLI_FAIL;
    }
    const json_t *peers = json_object_get (reply, "peers");
    if (args->json) {
        cli_json_print (peers);
    }
    else if (json_array_size (peers) == 0) {
        printf ("no peers; add one with: gkx peer add CARD_FILE\n");
    }
    else {
        cli_table_t *table = s_peers_table (peers, 1);
        cli_table_print (table);
        cli_table_destroy (&table);
    }
    json_decref (reply);
    return CLI_OK;
}

int
cli_peer (int argc, char **argv, const char *dir)
{
    cli_args_t args;
    int rc = cli_args_parse (&args, &s_peer_spec, argc, argv);
    if (rc != CLI_OK) {
        return rc == CLI_HELP ? CLI_OK : rc;
    }
    const char *verb = args.args[0];
    int is_add = strcmp (verb, "add") == 0;
    int is_list = strcmp (verb, "list") == 0;
    if ((!is_add && !is_list) || args.count != (is_add ? 2 : 1)) {
        fprintf (stderr, "gkx peer: %s\n\n",
                 is_add || is_list ? "wrong number of arguments" : "expected add or list");
        fputs (s_peer_spec.usage, stderr);
        return CLI_USAGE;
    }
    return is_add ? s_peer_add (&args, dir) : s_peer_list (&args, dir);
}

/* Usage of gkx share. */
static const cli_spec_t s_share_spec = {
    "share",
    "usage: gkx share --publisher ID --offer OFFER.json [--policy POLICY.json] [--json]\n\n"
    "Shares an offer with a publisher peer (advertiser nodes only): writes the\n"
    "partnership's genesis entry and prints the new partnership id. Within a second\n"
    "the offer is on the publisher's node. ID is a peer's id or one 'gkx publishers'\n"
    "listed (the node then adds the publisher as a peer), or a unique prefix of at\n"
    "least 8 of its digits. OFFER.json is the offer's JSON form\n"
    "(docs/offer-schema.md); POLICY.json says who may change which field, e.g.\n"
    "{\"payout\": \"advertiser\", \"caps\": \"propose\"}; without it both sides may\n"
    "change everything.\n",
    CLI_OPT_SHARE | CLI_OPT_JSON, 0, 0};

int
cli_share (int argc, char **argv, const char *dir)
{
    cli_args_t args;
    int rc = cli_args_parse (&args, &s_share_spec, argc, argv);
    if (rc != CLI_OK) {
        return rc == CLI_HELP ? CLI_OK : rc;
    }
    if (!args.publisher || !args.offer) {
        fprintf (stderr, "gkx share: --publisher and --offer are required\n\n");
        fputs (s_share_spec.usage, stderr);
        return CLI_USAGE;
    }
    /* A full id, or a prefix the node resolves among its peers and the
       cards of its last directory listing. */
    size_t publisher_len = strlen (args.publisher);
    if (publisher_len < S_PUBLISHER_PREFIX_MIN || publisher_len > GKX_ID_TEXT_BYTES - 1
        || strspn (args.publisher, "0123456789abcdefABCDEF") != publisher_len) {
        fprintf (stderr,
                 "gkx share: --publisher: expected a node id (64 hex digits) or a unique prefix "
                 "of at least %d (see gkx peer list, gkx publishers)\n",
                 S_PUBLISHER_PREFIX_MIN);
        return CLI_USAGE;
    }
    json_t *offer = NULL;
    json_t *policy = NULL;
    json_t *reply = NULL;
    if (s_json_file (&offer, args.offer, "offer") != CLI_OK
        || (args.policy && s_json_file (&policy, args.policy, "policy") != CLI_OK)) {
        json_decref (offer);
        return CLI_FAIL;
    }
    json_t *body = json_pack ("{s:s, s:o}", "publisher", args.publisher, "offer", offer);
    if (policy) {
        json_object_set_new (body, "policy", policy);
    }
    rc = cli_api (dir, "POST", "/v1/partnerships", body, &reply);
    json_decref (body);
    if (rc != CLI_OK) {
        return CLI_FAIL;
    }
    if (args.json) {
        cli_json_print (reply);
    }
    else {
        printf ("%s\n", s_str (reply, "id"));
    }
    json_decref (reply);
    return CLI_OK;
}

/* Usage of gkx partnerships. */
static const cli_spec_t s_partnerships_spec = {
    "partnerships",
    "usage: gkx partnerships [--json]\n\n"
    "Lists the partnerships of the running node: id, counterparty, this node's\n"
    "role, status (active, paused, or frozen after equivocation) and offer name.\n"
    "--json adds each partnership's chain heads and offer digest.\n",
    CLI_OPT_JSON, 0, 0};

int
cli_partnerships (int argc, char **argv, const char *dir)
{
    cli_args_t args;
    int rc = cli_args_parse (&args, &s_partnerships_spec, argc, argv);
    if (rc != CLI_OK) {
        return rc == CLI_HELP ? CLI_OK : rc;
    }
    json_t *reply = NULL;
    if (cli_api (dir, "GET", "/v1/partnerships", NULL, &reply) != CLI_OK) {
        return CLI_FAIL;
    }
    const json_t *rows = json_object_get (reply, "partnerships");
    if (args.json) {
        cli_json_print (rows);
    }
    else if (json_array_size (rows) == 0) {
        printf ("no partnerships\n");
    }
    else {
        cli_table_t *table = cli_table_new (5, "PARTNERSHIP", "COUNTERPARTY", "ROLE", "STATUS",
                                            "OFFER");
        size_t i;
        json_t *row;
        json_array_foreach (rows, i, row) {
            cli_table_add (table, s_str (row, "id"),
                           s_str (json_object_get (row, "counterparty"), "name"),
                           s_str (row, "role"), s_str (row, "status"), s_str (row, "offer_name"));
        }
        cli_table_print (table);
        cli_table_destroy (&table);
    }
    json_decref (reply);
    return CLI_OK;
}
