/*  cmd_conversion - gkx conversions, conversion status, report, postback-url,
    deliveries and notifications: the conversions a partnership records, and
    the outboxes that tell the tenant's systems and people about them.
    Part of gokart-exchange; MIT licence.

    An advertiser's node turns each postback of its MMP into a conversion
    entry of the partnership (gkx postback-url prints the URL to paste into
    the MMP); both members list the conversions (gkx conversions), the
    advertiser changes their status (gkx conversion status), both compute
    the same report and its digest (gkx report), and a publisher's node
    delivers each of them to the publisher's webhook (gkx deliveries); every
    node can e-mail its tenant about the other side's changes (gkx
    notifications). Each verb sends one request to the running node's tenant
    API (docs/api.md).

    These verbs take options with values, which cli_args_parse does not
    know: s_options_take takes them out of argv first, then cli_args_parse
    reads --help, --json, --digest and the positional arguments as for every
    other verb. Arguments are checked here before any request, so a mistake
    exits 2 naming the argument even when the node is down. A partnership
    may be named by a unique prefix of its id (cli_pid_resolve).
*/
#include "cli.h"

#include <gkx/calendar.h>
#include <gkx/conversion.h>
#include <gkx/postback.h>
#include <gkx/report.h>

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Longest request path built, query included. */
#define S_URL_BYTES 1024
/* Length of the short ids shown in tables. */
#define S_SHORT_ID 12
/* The hex digits, either case. */
#define S_HEX_DIGITS "0123456789abcdefABCDEF"
/* Hex digits of a full id. */
#define S_ID_HEX (GKX_ID_TEXT_BYTES - 1)
/* Fewest hex digits of a conversion id prefix (the API's rule). */
#define S_CONVERSION_MIN 8
/* Most rows a --limit asks for (the API's maximum). */
#define S_LIMIT_MAX 100000
/* Longest --since value: an ISO 8601 time with fraction and offset fits. */
#define S_SINCE_MAX 40
/* A --from or --to date: YYYY-MM-DD. */
#define S_DATE_LEN 10
/* Years a report date may name: days before 1970 are not reportable. */
#define S_YEAR_MIN 1970
#define S_YEAR_MAX 9999
/* Partnerships an ambiguous prefix message lists. */
#define S_AMBIGUOUS_SHOWN 3
/* Longest cell text copied for the terminal. */
#define S_TEXT_BYTES 256

/* An option with a value, or a flag, that cli_args_parse does not know. */
typedef struct {
    const char *name;           /* as typed, "--since" */
    int has_value;              /* takes a value (--name VALUE or --name=VALUE) */
    const char *value;          /* the value given (the name for a flag), NULL when absent */
} s_option_t;

/* The string member key of object, or "" when absent. */
static const char *
s_str (const json_t *object, const char *key)
{
    const char *text = json_string_value (json_object_get (object, key));
    return text ? text : "";
}

/* The string member key of object, or NULL when absent or null. */
static const char *
s_str_or_null (const json_t *object, const char *key)
{
    return json_string_value (json_object_get (object, key));
}

/* Writes the first S_SHORT_ID characters of an id into out. */
static const char *
s_short (char out[S_SHORT_ID + 1], const char *id)
{
    snprintf (out, S_SHORT_ID + 1, "%s", id);
    return out;
}

/* Writes the integer member key of object as text into out (size bytes),
   or "-" when it is absent or null. */
static const char *
s_int (char *out, size_t size, const json_t *object, const char *key)
{
    const json_t *value = json_object_get (object, key);
    if (!json_is_integer (value)) {
        snprintf (out, size, "-");
    }
    else {
        snprintf (out, size, "%lld", (long long) json_integer_value (value));
    }
    return out;
}

/* Prints "gkx VERB: " and a message on stderr, then the verb's usage when
   with_usage; returns CLI_USAGE. */
static int
s_misuse (const cli_spec_t *spec, int with_usage, const char *fmt, ...)
    __attribute__ ((format (printf, 3, 4)));

/* Prints "gkx VERB: " and a message on stderr, then the verb's usage when
   with_usage; returns CLI_USAGE. */
static int
s_misuse (const cli_spec_t *spec, int with_usage, const char *fmt, ...)
{
    va_list args;
    fprintf (stderr, "gkx %s: ", spec->name);
    va_start (args, fmt);
    vfprintf (stderr, fmt, args);
    va_end (args);
    fputc ('\n', stderr);
    if (with_usage) {
        fputc ('\n', stderr);
        fputs (spec->usage, stderr);
    }
    return CLI_USAGE;
}

/* Takes options (count of them) out of argv, keeping the other arguments
   in order in argv[0 .. *argc_p), as cli_args_parse then reads them; "--"
   ends the options. Returns CLI_OK, CLI_HELP after printing the usage when
   --help is among the arguments, or CLI_USAGE after printing the problem
   (an option without its value). */
static int
s_options_take (const cli_spec_t *spec, s_option_t *options, size_t count, int *argc_p,
                char **argv)
{
    int argc = *argc_p;
    for (int i = 1; i < argc && strcmp (argv[i], "--") != 0; i++) {
        if (strcmp (argv[i], "--help") == 0) {
            fputs (spec->usage, stdout);
            return CLI_HELP;
        }
    }
    int kept = 1;
    int is_done = 0;
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i];
        s_option_t *option = NULL;
        const char *value = NULL;
        is_done |= strcmp (arg, "--") == 0;
        for (size_t o = 0; !is_done && !option && o < count; o++) {
            size_t len = strlen (options[o].name);
            if (strcmp (arg, options[o].name) == 0) {
                option = &options[o];
            }
            else if (options[o].has_value && strncmp (arg, options[o].name, len) == 0
                     && arg[len] == '=') {
                option = &options[o];
                value = arg + len + 1;
            }
        }
        if (!option) {
            argv[kept++] = argv[i];
            continue;
        }
        if (!option->has_value) {
            option->value = option->name;
            continue;
        }
        if (!value && i + 1 >= argc) {
            return s_misuse (spec, 1, "option '%s' needs a value", option->name);
        }
        option->value = value ? value : argv[++i];
    }
    argv[kept] = NULL;
    *argc_p = kept;
    return CLI_OK;
}

/* Parses argv as spec says, with options (count of them) beside those
   cli_args_parse knows. Returns as cli_args_parse. */
static int
s_args_parse (cli_args_t *args, const cli_spec_t *spec, s_option_t *options, size_t count,
              int argc, char **argv)
{
    int rc = s_options_take (spec, options, count, &argc, argv);
    return rc == CLI_OK ? cli_args_parse (args, spec, argc, argv) : rc;
}

/* Checks that text is hex digits only, min to max of them, and writes it
   in lower case into out (max + 1 bytes); what names the argument. Prints
   the problem and returns CLI_USAGE when it is not. */
static int
s_hex_parse (char *out, const cli_spec_t *spec, const char *what, const char *text, size_t min,
             size_t max)
{
    size_t len = strlen (text);
    if (len < min || len > max || strspn (text, S_HEX_DIGITS) != len) {
        return s_misuse (spec, 0, "%s \"%.80s\": expected %zu to %zu hex digits", what, text, min,
                         max);
    }
    for (size_t i = 0; i <= len; i++) {
        out[i] = (char) tolower ((unsigned char) text[i]);
    }
    return CLI_OK;
}

/* Parses a --limit value (1 to S_LIMIT_MAX) into *limit_p; prints the
   problem and returns CLI_USAGE when it is not one. */
static int
s_limit_parse (long *limit_p, const cli_spec_t *spec, const char *text)
{
    size_t len = strlen (text);
    long limit = 0;
    if (len > 0 && len < 8 && strspn (text, "0123456789") == len) {
        limit = strtol (text, NULL, 10);
    }
    if (limit < 1 || limit > S_LIMIT_MAX) {
        return s_misuse (spec, 0, "--limit \"%.80s\": expected a whole number from 1 to %d", text,
                         S_LIMIT_MAX);
    }
    *limit_p = limit;
    return CLI_OK;
}

/* Checks the shape of a --since value: Unix seconds, or an ISO 8601 time
   starting YYYY-MM-DD (the node checks the rest). Prints the problem and
   returns CLI_USAGE when it is neither. */
static int
s_since_check (const cli_spec_t *spec, const char *text)
{
    size_t len = strlen (text);
    int is_seconds = len > 0 && strspn (text, "0123456789") == len;
    int is_iso = len >= S_DATE_LEN && strspn (text, "0123456789") == 4 && text[4] == '-'
                 && strspn (text + 5, "0123456789") == 2 && text[7] == '-'
                 && strspn (text + 8, "0123456789") >= 2
                 && strspn (text, "0123456789-:.+TZtz") == len;
    if (len > S_SINCE_MAX || (!is_seconds && !is_iso)) {
        return s_misuse (spec, 0,
                         "--since \"%.80s\": expected an ISO 8601 time "
                         "(2026-11-30 or 2026-11-30T10:00:00Z) or Unix seconds",
                         text);
    }
    return CLI_OK;
}

/* Parses a --from or --to date (YYYY-MM-DD, a real day from S_YEAR_MIN)
   into *day_p (days since 1970-01-01); option names it. Prints the problem
   and returns CLI_USAGE when it is not one. */
static int
s_date_parse (int64_t *day_p, const cli_spec_t *spec, const char *option, const char *text)
{
    int is_shaped = strlen (text) == S_DATE_LEN && strspn (text, "0123456789") == 4
                    && text[4] == '-' && strspn (text + 5, "0123456789") == 2 && text[7] == '-'
                    && strspn (text + 8, "0123456789") == 2;
    if (!is_shaped) {
        return s_misuse (spec, 0, "%s \"%.80s\": expected a date YYYY-MM-DD, e.g. 2026-11-30",
                         option, text);
    }
    int64_t year = strtol (text, NULL, 10);
    unsigned month = (unsigned) strtoul (text + 5, NULL, 10);
    unsigned day = (unsigned) strtoul (text + 8, NULL, 10);
    int64_t days = gkx_calendar_days_from_civil (year, month, day);
    int64_t back_year = 0;
    unsigned back_month = 0;
    unsigned back_day = 0;
    gkx_calendar_civil_from_days (days, &back_year, &back_month, &back_day);
    if (month < 1 || month > 12 || day < 1 || back_year != year || back_month != month
        || back_day != day) {
        return s_misuse (spec, 0, "%s \"%s\": no such day", option, text);
    }
    if (year < S_YEAR_MIN || year > S_YEAR_MAX) {
        return s_misuse (spec, 0, "%s \"%s\": expected a year from %d to %d", option, text,
                         S_YEAR_MIN, S_YEAR_MAX);
    }
    *day_p = days;
    return CLI_OK;
}

/* Appends "?NAME=VALUE" (or "&NAME=VALUE" after the first) to url (S_URL_BYTES),
   VALUE %-encoded but for RFC 3986's unreserved characters. Returns
   CLI_OK, or CLI_FAIL after printing the problem when url is full. */
static int
s_query_add (char url[S_URL_BYTES], const char *name, const char *value)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t len = strlen (url);
    int n = snprintf (url + len, S_URL_BYTES - len, "%c%s=", strchr (url, '?') ? '&' : '?', name);
    len += n > 0 ? (size_t) n : 0;
    for (const unsigned char *p = (const unsigned char *) value; *p && len < S_URL_BYTES; p++) {
        if (isalnum (*p) || strchr ("-._~", *p)) {
            url[len++] = (char) *p;
        }
        else if (len + 3 < S_URL_BYTES) {
            url[len++] = '%';
            url[len++] = hex[*p >> 4];
            url[len++] = hex[*p & 0x0f];
        }
        else {
            len = S_URL_BYTES;
        }
    }
    if (len >= S_URL_BYTES) {
        url[0] = '\0';
        return cli_fail ("request too long: %s is %zu bytes", name, strlen (value));
    }
    url[len] = '\0';
    return CLI_OK;
}

int
cli_pid_resolve (char out[GKX_ID_TEXT_BYTES], const cli_spec_t *spec, const char *dir,
                 const char *text)
{
    size_t len = strlen (text);
    if (len == S_ID_HEX) {
        return cli_pid_parse (out, spec, text);
    }
    if (len < CLI_PID_PREFIX_MIN || len > S_ID_HEX || strspn (text, S_HEX_DIGITS) != len) {
        return s_misuse (spec, 0,
                         "partnership \"%.80s\": expected its id (64 hex digits) or a unique "
                         "prefix of at least %d (see gkx partnerships)",
                         text, CLI_PID_PREFIX_MIN);
    }
    char prefix[GKX_ID_TEXT_BYTES];
    for (size_t i = 0; i <= len; i++) {
        prefix[i] = (char) tolower ((unsigned char) text[i]);
    }
    json_t *reply = NULL;
    if (cli_api (dir, "GET", "/v1/partnerships", NULL, &reply) != CLI_OK) {
        return CLI_FAIL;
    }
    char shown[S_AMBIGUOUS_SHOWN][S_SHORT_ID + 1];
    size_t matches = 0;
    size_t i;
    json_t *row;
    json_array_foreach (json_object_get (reply, "partnerships"), i, row) {
        const char *id = s_str (row, "id");
        if (strlen (id) != S_ID_HEX || strncmp (id, prefix, len) != 0) {
            continue;
        }
        if (matches == 0) {
            memcpy (out, id, GKX_ID_TEXT_BYTES);
        }
        if (matches < S_AMBIGUOUS_SHOWN) {
            s_short (shown[matches], id);
        }
        matches++;
    }
    json_decref (reply);
    if (matches == 0) {
        return cli_fail ("no partnership on this node starts with %s (see gkx partnerships)",
                         prefix);
    }
    if (matches > 1) {
        return cli_fail ("partnership prefix %s is ambiguous: it matches %zu partnerships (%s, "
                         "%s%s); give more digits",
                         prefix, matches, shown[0], shown[1], matches > 2 ? ", ..." : "");
    }
    return CLI_OK;
}

/* Usage of gkx conversions. */
static const cli_spec_t s_conversions_spec = {
    "conversions",
    "usage: gkx conversions PID [--since TIME] [--limit N] [--json]\n\n"
    "The partnership's conversions in log order: id, event time, event, click id,\n"
    "payout, current status and reason, and FLAG, what the publisher's node found\n"
    "wrong when it verified the conversion (shown only when a row has one).\n"
    "PID is the partnership id or a unique prefix of at least 8 digits.\n\n"
    "--since TIME  only conversions whose event time is at or after TIME: ISO 8601\n"
    "              (2026-11-30T10:00:00Z) or Unix seconds\n"
    "--limit N     at most N conversions (1 to 100000; the node's default is 1000)\n"
    "--json        the conversion records as the API gives them\n",
    CLI_OPT_JSON, 1, 1};

int
cli_conversions (int argc, char **argv, const char *dir)
{
    cli_args_t args;
    s_option_t options[] = {{"--since", 1, NULL}, {"--limit", 1, NULL}};
    enum { SINCE, LIMIT };
    const cli_spec_t *spec = &s_conversions_spec;
    int rc = s_args_parse (&args, spec, options, 2, argc, argv);
    if (rc != CLI_OK) {
        return rc == CLI_HELP ? CLI_OK : rc;
    }
    long limit = 0;
    if ((options[SINCE].value && s_since_check (spec, options[SINCE].value) != CLI_OK)
        || (options[LIMIT].value && s_limit_parse (&limit, spec, options[LIMIT].value) != CLI_OK)) {
        return CLI_USAGE;
    }
    char pid[GKX_ID_TEXT_BYTES];
    rc = cli_pid_resolve (pid, spec, dir, args.args[0]);
    if (rc != CLI_OK) {
        return rc;
    }
    char url[S_URL_BYTES];
    char number[32];
    snprintf (url, sizeof url, "/v1/partnerships/%s/conversions", pid);
    snprintf (number, sizeof number, "%ld", limit);
    if ((options[SINCE].value && s_query_add (url, "since", options[SINCE].value) != CLI_OK)
        || (limit && s_query_add (url, "limit", number) != CLI_OK)) {
        return CLI_FAIL;
    }
    json_t *reply = NULL;
    if (cli_api (dir, "GET", url, NULL, &reply) != CLI_OK) {
        return CLI_FAIL;
    }
    const json_t *rows = json_object_get (reply, "conversions");
    if (args.json) {
        cli_json_print (rows);
        json_decref (reply);
        return CLI_OK;
    }
    size_t i;
    json_t *row;
    int has_flag = 0;
    json_array_foreach (rows, i, row) {
        has_flag |= s_str_or_null (row, "flag") != NULL;
    }
    if (json_array_size (rows) > 0) {
        cli_table_t *table = has_flag ? cli_table_new (8, "ID", "TIME", "EVENT", "CLICK",
                                                       "PAYOUT", "STATUS", "REASON", "FLAG")
                                      : cli_table_new (7, "ID", "TIME", "EVENT", "CLICK",
                                                       "PAYOUT", "STATUS", "REASON");
        json_array_foreach (rows, i, row) {
            char id[S_SHORT_ID + 1];
            char payout[64];
            snprintf (payout, sizeof payout, "%s %s", s_str (row, "payout"),
                      s_str (row, "currency"));
            s_short (id, s_str (row, "id"));
            if (has_flag) {
                cli_table_add (table, id, s_str (row, "time"), s_str (row, "event"),
                               s_str (row, "click_id"), payout, s_str (row, "status"),
                               s_str_or_null (row, "reason"), s_str_or_null (row, "flag"));
            }
            else {
                cli_table_add (table, id, s_str (row, "time"), s_str (row, "event"),
                               s_str (row, "click_id"), payout, s_str (row, "status"),
                               s_str_or_null (row, "reason"));
            }
        }
        cli_table_print (table);
        cli_table_destroy (&table);
    }
    size_t count = json_array_size (rows);
    printf ("%zu conversion%s\n", count, count == 1 ? "" : "s");
    json_decref (reply);
    return CLI_OK;
}

/* Usage of gkx conversion. */
static const cli_spec_t s_conversion_spec = {
    "conversion",
    "usage: gkx conversion status PID CONVERSION_ID STATUS [--reason TEXT] [--json]\n\n"
    "Changes a conversion's status (advertiser nodes only): STATUS is approved,\n"
    "pending, rejected or reversed. The change is an entry of the partnership, so\n"
    "the publisher sees it too; a conversion is locked once its hold days are over,\n"
    "and a change the rules do not allow is refused.\n"
    "PID is the partnership id or a unique prefix of at least 8 digits;\n"
    "CONVERSION_ID the id gkx conversions shows, or its first 8 or more digits.\n\n"
    "--reason TEXT  why (up to 256 bytes), shown with the status on both nodes\n"
    "--json         the conversion record after the change\n",
    CLI_OPT_JSON, 1, 4};

int
cli_conversion (int argc, char **argv, const char *dir)
{
    cli_args_t args;
    s_option_t options[] = {{"--reason", 1, NULL}};
    const cli_spec_t *spec = &s_conversion_spec;
    int rc = s_args_parse (&args, spec, options, 1, argc, argv);
    if (rc != CLI_OK) {
        return rc == CLI_HELP ? CLI_OK : rc;
    }
    if (strcmp (args.args[0], "status") != 0) {
        return s_misuse (spec, 1, "unknown action '%.80s'; expected status", args.args[0]);
    }
    if (args.count != 4) {
        return s_misuse (spec, 1, "status takes PID CONVERSION_ID STATUS");
    }
    char conversion[S_ID_HEX + 1];
    int status = 0;
    const char *reason = options[0].value;
    if (s_hex_parse (conversion, spec, "conversion id", args.args[2], S_CONVERSION_MIN, S_ID_HEX)
        != CLI_OK) {
        return CLI_USAGE;
    }
    if (gkx_conversion_status_parse (args.args[3], &status) != GKX_OK) {
        return s_misuse (spec, 0,
                         "status \"%.80s\": expected approved, pending, rejected or reversed",
                         args.args[3]);
    }
    json_t *body = json_pack ("{s:s}", "status", gkx_conversion_status_name (status));
    json_t *reason_json = reason ? json_string (reason) : NULL;
    if (reason && (!reason_json || strlen (reason) > GKX_CONVERSION_REASON_MAX)) {
        json_decref (body);
        json_decref (reason_json);
        return s_misuse (spec, 0, "--reason: expected up to %d bytes of UTF-8 text",
                         GKX_CONVERSION_REASON_MAX);
    }
    if (reason_json) {
        json_object_set_new (body, "reason", reason_json);
    }
    char pid[GKX_ID_TEXT_BYTES];
    rc = cli_pid_resolve (pid, spec, dir, args.args[1]);
    if (rc != CLI_OK) {
        json_decref (body);
        return rc;
    }
    char url[S_URL_BYTES];
    json_t *reply = NULL;
    snprintf (url, sizeof url, "/v1/partnerships/%s/conversions/%s/status", pid, conversion);
    rc = cli_api (dir, "POST", url, body, &reply);
    json_decref (body);
    if (rc != CLI_OK) {
        return CLI_FAIL;
    }
    if (args.json) {
        cli_json_print (reply);
    }
    else {
        char text[S_TEXT_BYTES];
        const char *now_reason = s_str_or_null (reply, "reason");
        /* The status it had just before this change, not the first one. */
        printf ("conversion %s: %s -> %s", s_str (reply, "id"), s_str (reply, "previous_status"),
                s_str (reply, "status"));
        if (now_reason) {
            printf (" (%s)", cli_printable (text, sizeof text, now_reason));
        }
        fputc ('\n', stdout);
    }
    json_decref (reply);
    return CLI_OK;
}

/* Usage of gkx report. */
static const cli_spec_t s_report_spec = {
    "report",
    "usage: gkx report [--partnership PID] [--from DATE] [--to DATE]\n"
    "                  [--by day|event|status|country] [--json | --csv | --digest]\n\n"
    "Counts the conversions and sums their payouts, one row per group and\n"
    "currency, then the totals per currency. Only approved and pending conversions\n"
    "add their payout; rejected and reversed ones are counted and add nothing.\n"
    "Both members of a partnership compute the same report: equal digests mean\n"
    "equal numbers.\n\n"
    "--partnership PID  one partnership (its id or a unique prefix of at least 8\n"
    "                   digits); without it, every partnership of the node together\n"
    "--from DATE        first day (UTC, YYYY-MM-DD) of the conversions' event time\n"
    "--to DATE          last day, included; without --from or --to the range is open\n"
    "--by WORD          group by day (the default), event, status or country\n"
    "--json             the report as the API gives it\n"
    "--csv              the report as CSV (RFC 4180, CRLF line ends)\n"
    "--digest           only the report's digest\n",
    CLI_OPT_JSON | CLI_OPT_DIGEST, 0, 0};

/* Prints the report reply for people: rows, totals, digest. */
static void
s_report_print (const json_t *reply)
{
    const json_t *rows = json_object_get (reply, "rows");
    const json_t *totals = json_object_get (reply, "totals");
    if (json_array_size (rows) == 0) {
        printf ("no conversions\n");
    }
    else {
        cli_table_t *table = cli_table_new (4, "KEY", "CURRENCY", "COUNT", "PAYOUT");
        size_t i;
        json_t *row;
        char count[32];
        json_array_foreach (rows, i, row) {
            const char *key = s_str_or_null (row, "key");
            cli_table_add (table, key ? key : "(none)", s_str (row, "currency"),
                           s_int (count, sizeof count, row, "count"), s_str (row, "payout"));
        }
        /* Event names, statuses, days and countries never hold parentheses. */
        json_array_foreach (totals, i, row) {
            cli_table_add (table, "(total)", s_str (row, "currency"),
                           s_int (count, sizeof count, row, "count"), s_str (row, "payout"));
        }
        cli_table_print (table);
        cli_table_destroy (&table);
    }
    printf ("digest: %s\n", s_str (reply, "digest"));
}

int
cli_report (int argc, char **argv, const char *dir)
{
    cli_args_t args;
    s_option_t options[] = {{"--partnership", 1, NULL}, {"--from", 1, NULL},
                            {"--to", 1, NULL},          {"--by", 1, NULL},
                            {"--csv", 0, NULL}};
    enum { PARTNERSHIP, FROM, TO, BY, CSV };
    const cli_spec_t *spec = &s_report_spec;
    int rc = s_args_parse (&args, spec, options, 5, argc, argv);
    if (rc != CLI_OK) {
        return rc == CLI_HELP ? CLI_OK : rc;
    }
    int is_csv = options[CSV].value != NULL;
    if (args.json + args.digest + is_csv > 1) {
        return s_misuse (spec, 1, "give at most one of --json, --csv and --digest");
    }
    int64_t from = GKX_REPORT_OPEN;
    int64_t to = GKX_REPORT_OPEN;
    int by = GKX_REPORT_BY_DAY;
    char errbuf[GKX_ERRBUF_BYTES];
    if ((options[FROM].value && s_date_parse (&from, spec, "--from", options[FROM].value) != CLI_OK)
        || (options[TO].value && s_date_parse (&to, spec, "--to", options[TO].value) != CLI_OK)) {
        return CLI_USAGE;
    }
    if (from != GKX_REPORT_OPEN && to != GKX_REPORT_OPEN && from > to) {
        return s_misuse (spec, 0, "--from %s is after --to %s", options[FROM].value,
                         options[TO].value);
    }
    if (options[BY].value && gkx_report_by_parse (options[BY].value, &by, errbuf) != GKX_OK) {
        return s_misuse (spec, 0, "--by \"%.80s\": expected day, event, status or country",
                         options[BY].value);
    }
    char pid[GKX_ID_TEXT_BYTES] = "";
    if (options[PARTNERSHIP].value) {
        rc = cli_pid_resolve (pid, spec, dir, options[PARTNERSHIP].value);
        if (rc != CLI_OK) {
            return rc;
        }
    }
    char url[S_URL_BYTES] = "/v1/report";
    if ((options[PARTNERSHIP].value && s_query_add (url, "partnership", pid) != CLI_OK)
        || (options[FROM].value && s_query_add (url, "from", options[FROM].value) != CLI_OK)
        || (options[TO].value && s_query_add (url, "to", options[TO].value) != CLI_OK)
        || s_query_add (url, "by", gkx_report_by_name (by)) != CLI_OK
        || s_query_add (url, "format", is_csv ? "csv" : "json") != CLI_OK) {
        return CLI_FAIL;
    }
    json_t *reply = NULL;
    if (cli_api (dir, "GET", url, NULL, &reply) != CLI_OK) {
        return CLI_FAIL;
    }
    rc = CLI_OK;
    if (is_csv) {
        if (json_is_string (reply)) {
            fwrite (json_string_value (reply), 1, json_string_length (reply), stdout);
        }
        else {
            rc = cli_fail ("the node answered JSON where CSV was asked for");
        }
    }
    else if (args.json) {
        cli_json_print (reply);
    }
    else if (args.digest) {
        printf ("%s\n", s_str (reply, "digest"));
    }
    else {
        s_report_print (reply);
    }
    json_decref (reply);
    return rc;
}

/* Usage of gkx postback-url. */
static const cli_spec_t s_postback_url_spec = {
    "postback-url",
    "usage: gkx postback-url PID --mmp NAME [--json]\n\n"
    "Prints the postback URL to paste into the MMP's partner settings for this\n"
    "partnership (advertiser nodes only), alone on its line. The MMP fills its\n"
    "macros for each install or event, and the node records a conversion. The URL\n"
    "holds the node's postback token: share it only with the MMP.\n"
    "PID is the partnership id or a unique prefix of at least 8 digits.\n\n"
    "--mmp NAME  appsflyer, adjust, branch, singular, kochava or generic\n"
    "--json      {\"mmp\", \"url\"}\n",
    CLI_OPT_JSON, 1, 1};

int
cli_postback_url (int argc, char **argv, const char *dir)
{
    cli_args_t args;
    s_option_t options[] = {{"--mmp", 1, NULL}};
    const cli_spec_t *spec = &s_postback_url_spec;
    int rc = s_args_parse (&args, spec, options, 1, argc, argv);
    if (rc != CLI_OK) {
        return rc == CLI_HELP ? CLI_OK : rc;
    }
    if (!options[0].value) {
        return s_misuse (spec, 1, "--mmp is required");
    }
    const char *mmp = NULL;
    char errbuf[GKX_ERRBUF_BYTES];
    if (gkx_postback_mmp_find (&mmp, options[0].value, errbuf) != GKX_OK) {
        return s_misuse (spec, 0, "--mmp: %s", errbuf);
    }
    char pid[GKX_ID_TEXT_BYTES];
    rc = cli_pid_resolve (pid, spec, dir, args.args[0]);
    if (rc != CLI_OK) {
        return rc;
    }
    char url[S_URL_BYTES];
    snprintf (url, sizeof url, "/v1/partnerships/%s/postback-url", pid);
    json_t *reply = NULL;
    if (s_query_add (url, "mmp", mmp) != CLI_OK
        || cli_api (dir, "GET", url, NULL, &reply) != CLI_OK) {
        return CLI_FAIL;
    }
    if (args.json) {
        cli_json_print (reply);
    }
    else {
        printf ("%s\n", s_str (reply, "url"));
    }
    json_decref (reply);
    return CLI_OK;
}

/* Usage of gkx deliveries. */
static const cli_spec_t s_deliveries_spec = {
    "deliveries",
    "usage: gkx deliveries [--limit N] [--json]\n"
    "       gkx deliveries replay ID [--json]\n\n"
    "A publisher's node POSTs each conversion and status change of its\n"
    "partnerships to [webhook] url (Standard Webhooks signatures) and retries\n"
    "until it answers 2xx, waiting 1 s, 2 s, 4 s ... up to 300 s between tries.\n\n"
    "(none)     the deliveries, newest first: id, partnership, entry seq, type,\n"
    "           attempts, HTTP status (or error) of the last attempt, and when it\n"
    "           was delivered or the next attempt is due\n"
    "replay ID  queues delivery ID again now, even one already delivered\n\n"
    "--limit N  at most N deliveries (1 to 100000)\n"
    "--json     the delivery records as the API gives them\n",
    CLI_OPT_JSON, 0, 2};

/* gkx deliveries replay ID. */
static int
s_deliveries_replay (const cli_args_t *args, const char *dir)
{
    const cli_spec_t *spec = &s_deliveries_spec;
    const char *text = args->args[1];
    size_t len = strlen (text);
    unsigned long long id = 0;
    errno = 0;
    if (len > 0 && strspn (text, "0123456789") == len) {
        id = strtoull (text, NULL, 10);
    }
    if (id == 0 || errno == ERANGE) {
        return s_misuse (spec, 0, "delivery id \"%.80s\": expected a whole number from 1 "
                                  "(see gkx deliveries)",
                         text);
    }
    char url[S_URL_BYTES];
    json_t *reply = NULL;
    snprintf (url, sizeof url, "/v1/deliveries/%llu/replay", id);
    if (cli_api (dir, "POST", url, NULL, &reply) != CLI_OK) {
        return CLI_FAIL;
    }
    if (args->json) {
        cli_json_print (reply);
    }
    else {
        char pid[S_SHORT_ID + 1];
        char seq[32];
        printf ("delivery %llu queued again: %s of partnership %s seq %s\n", id,
                s_str (reply, "event_type"), s_short (pid, s_str (reply, "partnership")),
                s_int (seq, sizeof seq, reply, "seq"));
    }
    json_decref (reply);
    return CLI_OK;
}

/* gkx deliveries [--limit N]. */
static int
s_deliveries_list (const cli_args_t *args, const char *dir, long limit)
{
    char url[S_URL_BYTES] = "/v1/deliveries";
    char number[32];
    snprintf (number, sizeof number, "%ld", limit);
    json_t *reply = NULL;
    if ((limit && s_query_add (url, "limit", number) != CLI_OK)
        || cli_api (dir, "GET", url, NULL, &reply) != CLI_OK) {
        return CLI_FAIL;
    }
    const json_t *rows = json_object_get (reply, "deliveries");
    if (args->json) {
        cli_json_print (rows);
    }
    else if (json_array_size (rows) == 0) {
        printf ("no webhook deliveries\n");
    }
    else {
        cli_table_t *table = cli_table_new (7, "ID", "PARTNERSHIP", "SEQ", "TYPE", "ATTEMPTS",
                                            "LAST STATUS", "DELIVERED/NEXT");
        size_t i;
        json_t *row;
        json_array_foreach (rows, i, row) {
            char id[32];
            char pid[S_SHORT_ID + 1];
            char seq[32];
            char attempts[32];
            char last[S_TEXT_BYTES];
            char when[64];
            const char *error = s_str_or_null (row, "last_error");
            const char *delivered = s_str_or_null (row, "delivered");
            const char *next = s_str_or_null (row, "next_attempt");
            s_int (last, sizeof last, row, "last_status");
            if (strcmp (last, "-") == 0 && error) {
                snprintf (last, sizeof last, "%s", error);
            }
            if (delivered || next) {
                snprintf (when, sizeof when, "%s %s", delivered ? "delivered" : "next",
                          delivered ? delivered : next);
            }
            else {
                snprintf (when, sizeof when, "-");
            }
            cli_table_add (table, s_int (id, sizeof id, row, "id"),
                           s_short (pid, s_str (row, "partnership")),
                           s_int (seq, sizeof seq, row, "seq"), s_str (row, "event_type"),
                           s_int (attempts, sizeof attempts, row, "attempts"), last, when);
        }
        cli_table_print (table);
        cli_table_destroy (&table);
    }
    json_decref (reply);
    return CLI_OK;
}

int
cli_deliveries (int argc, char **argv, const char *dir)
{
    cli_args_t args;
    s_option_t options[] = {{"--limit", 1, NULL}};
    const cli_spec_t *spec = &s_deliveries_spec;
    int rc = s_args_parse (&args, spec, options, 1, argc, argv);
    if (rc != CLI_OK) {
        return rc == CLI_HELP ? CLI_OK : rc;
    }
    if (args.count > 0 && strcmp (args.args[0], "replay") != 0) {
        return s_misuse (spec, 1, "unknown action '%.80s'; expected replay or nothing",
                         args.args[0]);
    }
    if (args.count == 1) {
        return s_misuse (spec, 1, "replay takes a delivery ID");
    }
    if (args.count == 2) {
        if (options[0].value) {
            return s_misuse (spec, 1, "--limit goes with the list, not with replay");
        }
        return s_deliveries_replay (&args, dir);
    }
    long limit = 0;
    if (options[0].value && s_limit_parse (&limit, spec, options[0].value) != CLI_OK) {
        return CLI_USAGE;
    }
    return s_deliveries_list (&args, dir, limit);
}

/* Usage of gkx notifications. */
static const cli_spec_t s_notifications_spec = {
    "notifications",
    "usage: gkx notifications [--limit N] [--json]\n\n"
    "The e-mail outbox: with [smtp] url and [notify] to in its configuration, the\n"
    "node e-mails [notify] to about every change the other side of a partnership\n"
    "makes, the changes of [notify] window_seconds in one message, and retries a\n"
    "failed message after 1 s, 2 s, 4 s ... up to 300 s (docs/notifications.md).\n\n"
    "Lists the messages, newest first: id, partnership, state (pending, sent, or\n"
    "failed and waiting for its next attempt), changes, attempts, when it was\n"
    "sent or is tried next, the subject, and the SMTP error of the last attempt.\n\n"
    "--limit N  at most N messages (1 to 100000)\n"
    "--json     the message records as the API gives them\n",
    CLI_OPT_JSON, 0, 0};

/* Prints the outbox as a table. */
static void
s_notifications_print (const json_t *rows)
{
    cli_table_t *table = cli_table_new (8, "ID", "PARTNERSHIP", "STATE", "CHANGES", "ATTEMPTS",
                                        "SENT/NEXT", "SUBJECT", "LAST ERROR");
    size_t i;
    json_t *row;
    json_array_foreach (rows, i, row) {
        char id[32];
        char pid[S_SHORT_ID + 1];
        char changes[32];
        char attempts[32];
        char when[64];
        char subject[S_TEXT_BYTES];
        char error[S_TEXT_BYTES];
        const char *sent = s_str_or_null (row, "sent");
        const char *next = s_str_or_null (row, "next_attempt");
        const char *last_error = s_str_or_null (row, "last_error");
        if (sent || next) {
            snprintf (when, sizeof when, "%s %s", sent ? "sent" : "next", sent ? sent : next);
        }
        else {
            snprintf (when, sizeof when, "-");
        }
        cli_table_add (table, s_int (id, sizeof id, row, "id"),
                       s_short (pid, s_str (row, "partnership")), s_str (row, "state"),
                       s_int (changes, sizeof changes, row, "changes"),
                       s_int (attempts, sizeof attempts, row, "attempts"), when,
                       cli_printable (subject, sizeof subject, s_str (row, "subject")),
                       last_error ? cli_printable (error, sizeof error, last_error) : NULL);
    }
    cli_table_print (table);
    cli_table_destroy (&table);
}

int
cli_notifications (int argc, char **argv, const char *dir)
{
    cli_args_t args;
    s_option_t options[] = {{"--limit", 1, NULL}};
    const cli_spec_t *spec = &s_notifications_spec;
    int rc = s_args_parse (&args, spec, options, 1, argc, argv);
    if (rc != CLI_OK) {
        return rc == CLI_HELP ? CLI_OK : rc;
    }
    long limit = 0;
    if (options[0].value && s_limit_parse (&limit, spec, options[0].value) != CLI_OK) {
        return CLI_USAGE;
    }
    char url[S_URL_BYTES] = "/v1/notifications";
    char number[32];
    snprintf (number, sizeof number, "%ld", limit);
    json_t *reply = NULL;
    if ((limit && s_query_add (url, "limit", number) != CLI_OK)
        || cli_api (dir, "GET", url, NULL, &reply) != CLI_OK) {
        return CLI_FAIL;
    }
    const json_t *rows = json_object_get (reply, "notifications");
    if (args.json) {
        cli_json_print (rows);
    }
    else if (json_array_size (rows) == 0) {
        printf ("no e-mail notifications (the node sends them once [smtp] url and [notify] to "
                "are set: docs/notifications.md)\n");
    }
    else {
        s_notifications_print (rows);
    }
    json_decref (reply);
    return CLI_OK;
}
