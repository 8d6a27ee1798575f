/*  cmd_card - gkx card: the node's signed tenant card.
    Part of gokart-exchange; MIT licence.

    The card is kept in DIR/card.json. It is issued again, with a new
    timestamp, only when the configuration no longer matches it, so the
    same card (and signature) is shown until something on it changes.
*/
#include "cli.h"

#include <gkx/alloc.h>
#include <gkx/export.h>
#include <gkx/hlc.h>
#include <gkx/kind.h>

#include <errno.h>
#include <sodium.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

/* Largest card file read. */
#define S_CARD_FILE_MAX 65536

/* Whether a stored card still says what the configuration says. */
static int
s_card_matches (const gkx_card_t *card, const gkx_config_t *config,
                const gkx_identity_t *identity)
{
    json_t *json = gkx_card_to_json (card);
    json_t *verticals = json_object_get (json, "verticals");
    json_t *countries = json_object_get (json, "countries");
    int same = memcmp (gkx_card_id (card), gkx_identity_id (identity), GKX_ID_BYTES) == 0
        && memcmp (gkx_card_transport_key (card), gkx_identity_curve_public (identity),
                   GKX_CURVE_KEY_BYTES) == 0
        && gkx_card_role (card) == config->role
        && strcmp (gkx_card_name (card), config->name) == 0
        && strcmp (gkx_card_endpoint (card), config->advertise) == 0
        && strcmp (gkx_card_email (card), config->email) == 0
        && json_array_size (verticals) == config->verticals_count
        && json_array_size (countries) == config->countries_count;
    for (size_t i = 0; same && i < config->verticals_count; i++) {
        same = strcmp (json_string_value (json_array_get (verticals, i)), config->verticals[i]) == 0;
    }
    for (size_t i = 0; same && i < config->countries_count; i++) {
        same = strcmp (json_string_value (json_array_get (countries, i)), config->countries[i]) == 0;
    }
    json_decref (json);
    return same;
}

/* Reads and verifies DIR/card.json; returns NULL when absent or invalid. */
static gkx_card_t *
s_card_load (const char *path)
{
    uint8_t *data = NULL;
    size_t len = 0;
    gkx_card_t *card = NULL;
    if (gkx_file_read (path, S_CARD_FILE_MAX, &data, &len, NULL) != GKX_OK) {
        return NULL;
    }
    json_t *json = json_loadb ((const char *) data, len, 0, NULL);
    gkx_free (data);
    if (json && gkx_card_from_json (&card, json, NULL) != GKX_OK) {
        card = NULL;
    }
    json_decref (json);
    return card;
}

int
cli_card_current (const char *dir, const gkx_config_t *config, const gkx_identity_t *identity,
                  gkx_card_t **card_p)
{
    char path[4096];
    char tmp[4096];
    snprintf (path, sizeof path, "%s/%s", dir, CLI_CARD_NAME);
    snprintf (tmp, sizeof tmp, "%s/%s.tmp", dir, CLI_CARD_NAME);
    gkx_card_t *card = s_card_load (path);
    if (card && s_card_matches (card, config, identity)) {
        *card_p = card;
        return CLI_OK;
    }
    gkx_card_destroy (&card);
    gkx_card_info_t info = {config->role, config->name, config->advertise, config->email,
                            (const char **) config->verticals, config->verticals_count,
                            (const char **) config->countries, config->countries_count,
                            cli_now_ms ()};
    char errbuf[GKX_ERRBUF_BYTES];
    if (gkx_card_issue (&card, identity, &info, errbuf) != GKX_OK) {
        return cli_fail ("%s/%s: %s", dir, GKX_CONFIG_NAME, errbuf);
    }
    json_t *json = gkx_card_to_json (card);
    int written = json_dump_file (json, tmp, JSON_INDENT (2)) == 0 && rename (tmp, path) == 0;
    json_decref (json);
    if (!written) {
        unlink (tmp);
        gkx_card_destroy (&card);
        return cli_fail ("%s: cannot write: %s", path, strerror (errno));
    }
    *card_p = card;
    return CLI_OK;
}

/* What gkx card takes. */
static const cli_spec_t s_card_spec = {
    "card",
    "usage: gkx card [--json]\n"
    "       gkx card withdraw [--json]\n"
    "       gkx card publish [--json]\n\n"
    "Prints this node's signed tenant card: what partners and directories see.\n"
    "--json prints the card itself, the form 'gkx peer add' takes.\n\n"
    "withdraw  the running node sends a signed withdrawal to every directory of\n"
    "          [directory] publish_to: they drop the card, and the node publishes\n"
    "          it no more, also after a restart\n"
    "publish   lists the card again after a withdrawal\n",
    CLI_OPT_JSON, 0, 1,
};

/* gkx card withdraw and gkx card publish: the running node does it and
   says what each directory answered. */
static int
s_card_listing (const char *dir, const char *verb, int as_json)
{
    char path[64];
    snprintf (path, sizeof path, "/v1/card/%s", verb);
    json_t *reply = NULL;
    if (cli_api (dir, "POST", path, NULL, &reply) != CLI_OK) {
        return CLI_FAIL;
    }
    const json_t *directories = json_object_get (reply, "directories");
    if (as_json) {
        cli_json_print (reply);
        json_decref (reply);
        return CLI_OK;
    }
    int publish = strcmp (verb, "publish") == 0;
    printf ("card %s; %zu %s:\n", publish ? "listed again" : "withdrawn",
            json_array_size (directories),
            json_array_size (directories) == 1 ? "directory" : "directories");
    size_t i;
    json_t *row;
    json_array_foreach (directories, i, row) {
        char error[GKX_ERRBUF_BYTES];
        const char *address = json_string_value (json_object_get (row, "address"));
        const char *text = json_string_value (json_object_get (row, "error"));
        const char *state = json_string_value (json_object_get (row, "state"));
        if (json_is_true (json_object_get (row, "ok"))) {
            printf ("  %s: done\n", address ? address : "");
        }
        else if (state && strcmp (state, "pending") == 0) {
            printf ("  %s: no answer yet%s%s; the node keeps trying\n", address ? address : "",
                    text ? ": " : "", text ? cli_printable (error, sizeof error, text) : "");
        }
        else {
            printf ("  %s: refused: %s\n", address ? address : "",
                    cli_printable (error, sizeof error, text ? text : ""));
        }
    }
    json_decref (reply);
    return CLI_OK;
}

int
cli_card (int argc, char **argv, const char *dir)
{
    cli_args_t args;
    int parsed = cli_args_parse (&args, &s_card_spec, argc, argv);
    if (parsed != CLI_OK) {
        return parsed == CLI_HELP ? CLI_OK : parsed;
    }
    int as_json = args.json;
    if (args.count == 1) {
        const char *verb = args.args[0];
        if (strcmp (verb, "withdraw") != 0 && strcmp (verb, "publish") != 0) {
            fprintf (stderr, "gkx card: expected withdraw or publish, not '%s'\n\n", verb);
            fputs (s_card_spec.usage, stderr);
            return CLI_USAGE;
        }
        return s_card_listing (dir, verb, as_json);
    }
    gkx_config_t *config = NULL;
    gkx_identity_t *identity = NULL;
    gkx_card_t *card = NULL;
    if (cli_node_open (dir, &config, &identity) != CLI_OK) {
        return CLI_FAIL;
    }
    int rc = cli_card_current (dir, config, identity, &card);
    if (rc == CLI_OK) {
        json_t *json = gkx_card_to_json (card);
        if (as_json) {
            json_dumpf (json, stdout, JSON_INDENT (2));
            fputc ('\n', stdout);
        }
        else {
            char issued[GKX_HLC_TEXT_BYTES];
            gkx_hlc_format (issued, sizeof issued, gkx_card_timestamp (card) << GKX_HLC_COUNTER_BITS);
            printf ("id:            %s\n", json_string_value (json_object_get (json, "id")));
            printf ("role:          %s\n", gkx_role_name (gkx_card_role (card)));
            printf ("name:          %s\n", gkx_card_name (card));
            printf ("endpoint:      %s\n", gkx_card_endpoint (card));
            printf ("email:         %s\n", gkx_card_email (card));
            printf ("transport key: %s\n",
                    json_string_value (json_object_get (json, "transport_key")));
            printf ("issued:        %s\n", issued);
            printf ("signature:     verified\n");
        }
        json_decref (json);
    }
    gkx_card_destroy (&card);
    gkx_identity_destroy (&identity);
    gkx_config_destroy (&config);
    return rc;
}
