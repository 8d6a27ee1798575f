/*  cmd_directory - gkx publishers and gkx directory-address: partner discovery.
    Part of gokart-exchange; MIT licence.

    gkx publishers asks the running node, which asks the directories of its
    [directory] publish_to and checks every card's signature (GET
    /v1/publishers); the ids it prints are what gkx share --publisher takes.
    gkx directory-address reads the node directory alone, so the operator
    of a directory can hand its address to tenants with the node stopped.
*/
#include "cli.h"

#include <gkx/dirmsg.h>
#include <gkx/kind.h>

#include <ctype.h>
#include <getopt.h>
#include <stdio.h>
#include <string.h>

/* Room for the request path with its query. */
#define S_URL_BYTES 1024
/* Length of the short id shown in tables: enough to type it back. */
#define S_SHORT_ID 16
/* Room for a cell listing verticals or countries. */
#define S_LIST_BYTES 256

/* Usage of gkx publishers. */
static const char *s_publishers_usage =
    "usage: gkx publishers [--vertical TEXT] [--country CC] [--json]\n\n"
    "Lists the publishers the directories of [directory] publish_to know, each\n"
    "card's signature checked by this node. --vertical keeps those with that\n"
    "vertical (any case), --country those with that ISO 3166-1 country. The node\n"
    "keeps the cards it fetched: 'gkx share --publisher ID' then takes an ID (or\n"
    "its first 8 or more digits) from this list and adds the publisher as a peer.\n"
    "A directory that does not answer is named on stderr.\n";

/* Appends "?NAME=VALUE" (or "&NAME=VALUE") to url (S_URL_BYTES), VALUE
   %-encoded but for RFC 3986's unreserved characters. Returns CLI_OK, or
   CLI_FAIL after printing the problem when url is full. */
static int
s_query_add (char url[S_URL_BYTES], const char *name, const char *value)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t len = strlen (url);
    int n = snprintf (url + len, S_URL_BYTES - len, "%c%s=", strchr (url, '?') ? '&' : '?', name);
    len += n > 0 ? (size_t) n : 0;
    for (const unsigned char *p = (const unsigned char *) value; *p && len + 3 < S_URL_BYTES;
         p++) {
        if (isalnum (*p) || strchr ("-._~", *p)) {
            url[len++] = (char) *p;
        }
        else {
            url[len++] = '%';
            url[len++] = hex[*p >> 4];
            url[len++] = hex[*p & 0x0f];
        }
    }
    if (len + 3 >= S_URL_BYTES) {
        url[0] = '\0';
        return cli_fail ("request too long: %s is %zu bytes", name, strlen (value));
    }
    url[len] = '\0';
    return CLI_OK;
}

/* Joins the strings of a JSON array with ", " into out (S_LIST_BYTES). */
static const char *
s_join (char out[S_LIST_BYTES], const json_t *array)
{
    size_t len = 0;
    size_t i;
    json_t *item;
    out[0] = '\0';
    json_array_foreach (array, i, item) {
        const char *text = json_string_value (item);
        int n = snprintf (out + len, S_LIST_BYTES - len, "%s%s", i ? ", " : "",
                          text ? text : "");
        if (n < 0 || (size_t) n >= S_LIST_BYTES - len) {
            break;
        }
        len += (size_t) n;
    }
    return out;
}

/* The string member key of object, or "" when absent. */
static const char *
s_str (const json_t *object, const char *key)
{
    const char *text = json_string_value (json_object_get (object, key));
    return text ? text : "";
}

/* Names on stderr each directory that gave no list. */
static void
s_directories_report (const json_t *directories)
{
    size_t i;
    json_t *row;
    json_array_foreach (directories, i, row) {
        if (!json_is_true (json_object_get (row, "ok"))) {
            char error[GKX_ERRBUF_BYTES];
            fprintf (stderr, "gkx publishers: directory %s: %s\n", s_str (row, "address"),
                     cli_printable (error, sizeof error, s_str (row, "error")));
        }
        if (json_is_true (json_object_get (row, "truncated"))) {
            fprintf (stderr,
                     "gkx publishers: directory %s: more publishers match than one answer "
                     "holds; narrow the filter\n",
                     s_str (row, "address"));
        }
        if (json_integer_value (json_object_get (row, "refused")) > 0) {
            fprintf (stderr,
                     "gkx publishers: directory %s: %lld cards did not verify or match, "
                     "left out\n",
                     s_str (row, "address"),
                     (long long) json_integer_value (json_object_get (row, "refused")));
        }
    }
}

int
cli_publishers (int argc, char **argv, const char *dir)
{
    static const struct option options[] = {
        {"vertical", required_argument, NULL, 'v'}, {"country", required_argument, NULL, 'c'},
        {"json", no_argument, NULL, 'j'}, {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0}};
    const char *vertical = NULL;
    const char *country = NULL;
    int as_json = 0;
    int opt;
    optind = 0;
    while ((opt = getopt_long (argc, argv, ":", options, NULL)) != -1) {
        switch (opt) {
            case 'v': vertical = optarg; break;
            case 'c': country = optarg; break;
            case 'j': as_json = 1; break;
            case 'h': fputs (s_publishers_usage, stdout); return CLI_OK;
            default:
                fprintf (stderr, "gkx publishers: %s '%s'\n\n",
                         opt == ':' ? "missing value for" : "unknown option", argv[optind - 1]);
                fputs (s_publishers_usage, stderr);
                return CLI_USAGE;
        }
    }
    if (optind < argc) {
        fprintf (stderr, "gkx publishers: unexpected argument '%s'\n\n", argv[optind]);
        fputs (s_publishers_usage, stderr);
        return CLI_USAGE;
    }
    gkx_dirmsg_filter_t filter;
    char errbuf[GKX_ERRBUF_BYTES];
    if (gkx_dirmsg_filter_parse (&filter, NULL, vertical, country, errbuf) != GKX_OK) {
        fprintf (stderr, "gkx publishers: --%s\n", errbuf);
        return CLI_USAGE;
    }
    char url[S_URL_BYTES] = "/v1/publishers";
    if ((vertical && s_query_add (url, "vertical", vertical) != CLI_OK)
        || (country && s_query_add (url, "country", filter.country) != CLI_OK)) {
        return CLI_FAIL;
    }
    json_t *reply = NULL;
    if (cli_api (dir, "GET", url, NULL, &reply) != CLI_OK) {
        return CLI_FAIL;
    }
    const json_t *publishers = json_object_get (reply, "publishers");
    const json_t *directories = json_object_get (reply, "directories");
    if (as_json) {
        cli_json_print (reply);
    }
    else if (json_array_size (directories) == 0) {
        printf ("no directories: add one to [directory] publish_to in gkx.conf\n");
    }
    else if (json_array_size (publishers) == 0) {
        printf ("no publishers%s\n", vertical || country ? " match" : " listed");
    }
    else {
        cli_table_t *table = cli_table_new (5, "PUBLISHER", "NAME", "VERTICALS", "COUNTRIES",
                                            "EMAIL");
        size_t i;
        json_t *card;
        json_array_foreach (publishers, i, card) {
            char id[S_SHORT_ID + 1];
            char verticals[S_LIST_BYTES];
            char countries[S_LIST_BYTES];
            snprintf (id, sizeof id, "%s", s_str (card, "id"));
            cli_table_add (table, id, s_str (card, "name"),
                           s_join (verticals, json_object_get (card, "verticals")),
                           s_join (countries, json_object_get (card, "countries")),
                           s_str (card, "email"));
        }
        cli_table_print (table);
        cli_table_destroy (&table);
    }
    s_directories_report (directories);
    json_decref (reply);
    return CLI_OK;
}

/* What gkx directory-address takes. */
static const cli_spec_t s_address_spec = {
    "directory-address",
    "usage: gkx directory-address\n\n"
    "Prints the address of the directory this node serves ([directory] serve = true):\n"
    "tcp://HOST:PORT@KEY, its [directory] listen endpoint and its CURVE public key.\n"
    "Tenants put it in their [directory] publish_to. Reads the node directory only;\n"
    "the node need not run. When listen binds every interface (0.0.0.0 or *), put\n"
    "the host name tenants reach instead.\n",
    0, 0, 0,
};

int
cli_directory_address (int argc, char **argv, const char *dir)
{
    cli_args_t args;
    int parsed = cli_args_parse (&args, &s_address_spec, argc, argv);
    if (parsed != CLI_OK) {
        return parsed == CLI_HELP ? CLI_OK : parsed;
    }
    gkx_config_t *config = NULL;
    gkx_identity_t *identity = NULL;
    if (cli_node_open (dir, &config, &identity) != CLI_OK) {
        return CLI_FAIL;
    }
    int rc = CLI_OK;
    if (!config->directory_serve || !config->directory_listen) {
        rc = cli_fail ("%s serves no directory: set [directory] serve = true and listen = "
                       "tcp://HOST:PORT in %s",
                       dir, GKX_CONFIG_NAME);
    }
    else {
        char address[GKX_DIRMSG_ADDRESS_BYTES];
        gkx_dirmsg_address_format (address, config->directory_listen,
                                   gkx_identity_curve_public (identity));
        printf ("%s\n", address);
        if (strstr (config->directory_listen, "//0.0.0.0:") || strstr (config->directory_listen,
                                                                          "//*:")) {
            fprintf (stderr, "gkx directory-address: listen binds every interface; give "
                             "tenants the host name they reach instead of %s\n",
                     config->directory_listen);
        }
    }
    gkx_identity_destroy (&identity);
    gkx_config_destroy (&config);
    return rc;
}
