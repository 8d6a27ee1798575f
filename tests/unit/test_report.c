/*  test_report - conversion reports computed from the log.
    Part of gokart-exchange; MIT licence.

    Each grouping on a small fixed log with its exact JSON and CSV, date
    ranges and their bounds, status changes folded in canonical order with
    the hold and lock rule, duplicates and conflicts, CSV escaping, the
    digest rebuilt from its documented bytes, overflow, and a seeded
    property test: aggregators fed the same entries in different orders,
    with duplicates, give byte-identical JSON, CSV and digests. GKX_SEED
    replays a run; GKX_ITERATIONS changes its length.
*/
#include "testutil.h"

#include <gkx/alloc.h>
#include <gkx/conversion.h>
#include <gkx/error.h>
#include <gkx/hlc.h>
#include <gkx/offer.h>
#include <gkx/report.h>

#include <inttypes.h>
#include <msgpack.h>
#include <sodium.h>
#include <stdint.h>
#include <time.h>

/* 2026-12-01T00:00:00Z. */
#define DEC1 1796083200ULL
/* Seconds of a day and of an hour. */
#define DAY 86400ULL
#define HOUR 3600ULL
/* Micro-units per unit. */
#define M 1000000LL
/* Cases of the property test, unless GKX_ITERATIONS says otherwise. */
#define S_PROPERTY_CASES 3000
/* Seed of the property test, unless GKX_SEED says otherwise. */
#define S_PROPERTY_SEED 0x5eed2026c0ffeeULL

/* Returns the hlc of a Unix time in seconds (milliseconds 0, counter 0). */
static uint64_t
s_hlc (uint64_t seconds)
{
    return (seconds * 1000) << GKX_HLC_COUNTER_BITS;
}

/* Writes a deterministic, hash-like id for n. */
static void
s_id (uint8_t id[GKX_CONVERSION_ID_BYTES], unsigned n)
{
    uint8_t seed[4] = {(uint8_t) n, (uint8_t) (n >> 8), (uint8_t) (n >> 16), (uint8_t) (n >> 24)};
    crypto_generichash (id, GKX_CONVERSION_ID_BYTES, seed, sizeof (seed), NULL, 0);
}

/* Encodes a conversion body (caller frees with gkx_free). country may be
   NULL; reason is "" for none. */
static uint8_t *
s_conversion (size_t *len_p, const char *event, const char *country, const char *currency,
              int status, const char *reason, int64_t payout, uint64_t time)
{
    gkx_conversion_t c;
    memset (&c, 0, sizeof (c));
    snprintf (c.click_id, sizeof (c.click_id), "clk-%" PRIu64, time);
    snprintf (c.country, sizeof (c.country), "%s", country ? country : "");
    snprintf (c.currency, sizeof (c.currency), "%s", currency);
    snprintf (c.event, sizeof (c.event), "%s", event);
    snprintf (c.reason, sizeof (c.reason), "%s", reason);
    c.payout = payout;
    c.status = status;
    c.time = time;
    uint8_t *body = NULL;
    char err[GKX_ERRBUF_BYTES] = "";
    ck_assert_msg (gkx_conversion_encode (&body, len_p, &c, err) == GKX_OK, "%s", err);
    return body;
}

/* Adds conversion n to a report. */
static void
s_add (gkx_report_t *report, unsigned n, uint64_t hlc, uint32_t hold_days, const char *event,
       const char *country, const char *currency, int status, const char *reason,
       int64_t payout, uint64_t time)
{
    uint8_t id[GKX_CONVERSION_ID_BYTES];
    size_t len;
    char err[GKX_ERRBUF_BYTES] = "";
    s_id (id, n);
    uint8_t *body = s_conversion (&len, event, country, currency, status, reason, payout, time);
    ck_assert_msg (gkx_report_add_conversion (report, id, hlc, hold_days, body, len, err)
                       == GKX_OK,
                   "%s", err);
    gkx_free (body);
}

/* Encodes a status change of conversion n (caller frees with gkx_free). */
static uint8_t *
s_change (size_t *len_p, unsigned n, int status)
{
    gkx_conversion_change_t change;
    memset (&change, 0, sizeof (change));
    s_id (change.conversion, n);
    change.status = status;
    uint8_t *body = NULL;
    ck_assert_int_eq (gkx_conversion_change_encode (&body, len_p, &change, NULL), GKX_OK);
    return body;
}

/* Adds status change number m of conversion n to a report. */
static void
s_add_change (gkx_report_t *report, unsigned m, unsigned n, uint64_t hlc, int status)
{
    uint8_t hash[GKX_CONVERSION_ID_BYTES];
    size_t len;
    char err[GKX_ERRBUF_BYTES] = "";
    s_id (hash, 1000000 + m);
    uint8_t *body = s_change (&len, n, status);
    ck_assert_msg (gkx_report_add_change (report, hash, hlc, body, len, err) == GKX_OK, "%s",
                   err);
    gkx_free (body);
}

/* Returns the report of the fixed log used by several tests:
   - 12-01: install US 2.50 approved, purchase US 10.00 approved;
   - 12-02: install CA 1.50 rejected (cap), install (no country) 2.50 pending;
   - 12-03: purchase DE 8.00 EUR approved, install US 2.50 approved then
     reversed. */
static gkx_report_t *
s_fixed_report (void)
{
    gkx_report_t *r = gkx_report_new ();
    s_add (r, 1, s_hlc (DEC1 + 2 * HOUR), 7, "install", "US", "USD", GKX_CONVERSION_APPROVED,
           "", 2500000, DEC1 + HOUR);
    s_add (r, 2, s_hlc (DEC1 + 3 * HOUR), 7, "purchase", "US", "USD", GKX_CONVERSION_APPROVED,
           "", 10 * M, DEC1 + 2 * HOUR);
    s_add (r, 3, s_hlc (DEC1 + DAY + 2 * HOUR), 7, "install", "CA", "USD",
           GKX_CONVERSION_REJECTED, "cap", 1500000, DEC1 + DAY + HOUR);
    s_add (r, 4, s_hlc (DEC1 + DAY + 3 * HOUR), 7, "install", NULL, "USD",
           GKX_CONVERSION_PENDING, "", 2500000, DEC1 + DAY + 2 * HOUR);
    s_add (r, 5, s_hlc (DEC1 + 2 * DAY + HOUR), 7, "purchase", "DE", "EUR",
           GKX_CONVERSION_APPROVED, "", 8 * M, DEC1 + 2 * DAY);
    s_add (r, 6, s_hlc (DEC1 + 2 * DAY + 2 * HOUR), 7, "install", "US", "USD",
           GKX_CONVERSION_APPROVED, "", 2500000, DEC1 + 2 * DAY + 1);
    s_add_change (r, 1, 6, s_hlc (DEC1 + 3 * DAY), GKX_CONVERSION_REVERSED);
    return r;
}

/* Opens the table of a query, asserting success. */
static gkx_report_table_t *
s_table (gkx_report_t *report, int by, int64_t from, int64_t to)
{
    gkx_report_query_t q = {by, from, to};
    gkx_report_table_t *table = NULL;
    char err[GKX_ERRBUF_BYTES] = "";
    ck_assert_msg (gkx_report_table_open (&table, report, &q, err) == GKX_OK, "%s", err);
    return table;
}

/* Returns a table's JSON text (caller frees with free()). */
static char *
s_json_text (const gkx_report_table_t *table)
{
    json_t *json = gkx_report_table_to_json (table);
    char *text = json_dumps (json, GKX_OFFER_JSON_FLAGS);
    json_decref (json);
    return text;
}

/* Returns a table's JSON text without its digest (caller frees). */
static char *
s_json_no_digest (const gkx_report_table_t *table)
{
    json_t *json = gkx_report_table_to_json (table);
    json_object_del (json, "digest");
    char *text = json_dumps (json, GKX_OFFER_JSON_FLAGS);
    json_decref (json);
    return text;
}

/* Asserts a table's CSV text. */
static void
s_assert_csv (const gkx_report_table_t *table, const char *expect)
{
    char *csv = gkx_report_table_to_csv (table);
    ck_assert_str_eq (csv, expect);
    gkx_free (csv);
}

START_TEST (test_by_day)
{
    gkx_report_t *r = s_fixed_report ();
    ck_assert_uint_eq (gkx_report_size (r), 6);
    gkx_report_table_t *t = s_table (r, GKX_REPORT_BY_DAY, GKX_REPORT_OPEN, GKX_REPORT_OPEN);
    char *text = s_json_no_digest (t);
    ck_assert_str_eq (text,
                      "{\"by\":\"day\",\"from\":null,\"rows\":["
                      "{\"count\":2,\"currency\":\"USD\",\"key\":\"2026-12-01\","
                      "\"payout\":\"12.50\"},"
                      "{\"count\":2,\"currency\":\"USD\",\"key\":\"2026-12-02\","
                      "\"payout\":\"2.50\"},"
                      "{\"count\":1,\"currency\":\"EUR\",\"key\":\"2026-12-03\","
                      "\"payout\":\"8.00\"},"
                      "{\"count\":1,\"currency\":\"USD\",\"key\":\"2026-12-03\","
                      "\"payout\":\"0.00\"}],"
                      "\"to\":null,\"totals\":["
                      "{\"count\":1,\"currency\":\"EUR\",\"payout\":\"8.00\"},"
                      "{\"count\":5,\"currency\":\"USD\",\"payout\":\"15.00\"}]}");
    free (text);
    /* the example of docs/conversions.md */
    char hex[GKX_REPORT_DIGEST_HEX_BYTES];
    uint8_t digest[GKX_REPORT_DIGEST_BYTES];
    gkx_report_table_digest (t, digest, hex);
    ck_assert_str_eq (hex, "0309044c81203ed75b240aa33c90ee2bf9d3dbf8b390b137f08fa303d7a85849");
    s_assert_csv (t, "day,currency,count,payout\r\n"
                     "2026-12-01,USD,2,12.50\r\n"
                     "2026-12-02,USD,2,2.50\r\n"
                     "2026-12-03,EUR,1,8.00\r\n"
                     "2026-12-03,USD,1,0.00\r\n"
                     "*,EUR,1,8.00\r\n"
                     "*,USD,5,15.00\r\n");
    ck_assert_uint_eq (gkx_report_table_size (t), 4);
    ck_assert_uint_eq (gkx_report_table_totals_size (t), 2);
    gkx_report_row_t row;
    gkx_report_table_row (t, 0, &row);
    ck_assert_str_eq (row.key, "2026-12-01");
    ck_assert_str_eq (row.currency, "USD");
    ck_assert_uint_eq (row.count, 2);
    ck_assert_int_eq (row.payout, 12500000);
    gkx_report_table_total (t, 1, &row);
    ck_assert_ptr_null (row.key);
    ck_assert_str_eq (row.currency, "USD");
    ck_assert_uint_eq (row.count, 5);
    ck_assert_int_eq (row.payout, 15 * M);
    gkx_report_table_destroy (&t);
    gkx_report_table_destroy (&t);
    ck_assert_ptr_null (t);
    gkx_report_destroy (&r);
    gkx_report_destroy (&r);
    ck_assert_ptr_null (r);
}
END_TEST

START_TEST (test_by_event_status_country)
{
    gkx_report_t *r = s_fixed_report ();
    gkx_report_table_t *t = s_table (r, GKX_REPORT_BY_EVENT, GKX_REPORT_OPEN, GKX_REPORT_OPEN);
    s_assert_csv (t, "event,currency,count,payout\r\n"
                     "install,USD,4,5.00\r\n"
                     "purchase,EUR,1,8.00\r\n"
                     "purchase,USD,1,10.00\r\n"
                     "*,EUR,1,8.00\r\n"
                     "*,USD,5,15.00\r\n");
    gkx_report_table_destroy (&t);
    t = s_table (r, GKX_REPORT_BY_STATUS, GKX_REPORT_OPEN, GKX_REPORT_OPEN);
    s_assert_csv (t, "status,currency,count,payout\r\n"
                     "approved,EUR,1,8.00\r\n"
                     "approved,USD,2,12.50\r\n"
                     "pending,USD,1,2.50\r\n"
                     "rejected,USD,1,0.00\r\n"
                     "reversed,USD,1,0.00\r\n"
                     "*,EUR,1,8.00\r\n"
                     "*,USD,5,15.00\r\n");
    gkx_report_table_destroy (&t);
    t = s_table (r, GKX_REPORT_BY_COUNTRY, GKX_REPORT_OPEN, GKX_REPORT_OPEN);
    s_assert_csv (t, "country,currency,count,payout\r\n"
                     ",USD,1,2.50\r\n"
                     "CA,USD,1,0.00\r\n"
                     "DE,EUR,1,8.00\r\n"
                     "US,USD,3,12.50\r\n"
                     "*,EUR,1,8.00\r\n"
                     "*,USD,5,15.00\r\n");
    char *text = s_json_no_digest (t);
    ck_assert_str_eq (text,
                      "{\"by\":\"country\",\"from\":null,\"rows\":["
                      "{\"count\":1,\"currency\":\"USD\",\"key\":null,\"payout\":\"2.50\"},"
                      "{\"count\":1,\"currency\":\"USD\",\"key\":\"CA\",\"payout\":\"0.00\"},"
                      "{\"count\":1,\"currency\":\"EUR\",\"key\":\"DE\",\"payout\":\"8.00\"},"
                      "{\"count\":3,\"currency\":\"USD\",\"key\":\"US\",\"payout\":\"12.50\"}],"
                      "\"to\":null,\"totals\":["
                      "{\"count\":1,\"currency\":\"EUR\",\"payout\":\"8.00\"},"
                      "{\"count\":5,\"currency\":\"USD\",\"payout\":\"15.00\"}]}");
    free (text);
    gkx_report_row_t row;
    gkx_report_table_row (t, 0, &row);
    ck_assert_ptr_null (row.key);
    gkx_report_table_destroy (&t);
    gkx_report_destroy (&r);
}
END_TEST

START_TEST (test_by_names)
{
    int by = 0;
    char err[GKX_ERRBUF_BYTES] = "";
    ck_assert_str_eq (gkx_report_by_name (GKX_REPORT_BY_DAY), "day");
    ck_assert_str_eq (gkx_report_by_name (GKX_REPORT_BY_COUNTRY), "country");
    ck_assert_ptr_null (gkx_report_by_name (0));
    ck_assert_ptr_null (gkx_report_by_name (5));
    ck_assert_int_eq (gkx_report_by_parse ("status", &by, err), GKX_OK);
    ck_assert_int_eq (by, GKX_REPORT_BY_STATUS);
    ck_assert_int_eq (gkx_report_by_parse ("week", &by, err), GKX_EINVAL);
    ck_assert_str_eq (err, "by: must be day, event, status or country");
    ck_assert_int_eq (by, GKX_REPORT_BY_STATUS);
}
END_TEST

START_TEST (test_date_ranges)
{
    gkx_report_t *r = s_fixed_report ();
    int64_t d1 = (int64_t) (DEC1 / DAY);
    /* one day, both bounds included */
    gkx_report_table_t *t = s_table (r, GKX_REPORT_BY_DAY, d1 + 1, d1 + 1);
    s_assert_csv (t, "day,currency,count,payout\r\n"
                     "2026-12-02,USD,2,2.50\r\n"
                     "*,USD,2,2.50\r\n");
    char *text = s_json_no_digest (t);
    ck_assert_str_eq (text, "{\"by\":\"day\",\"from\":\"2026-12-02\",\"rows\":["
                            "{\"count\":2,\"currency\":\"USD\",\"key\":\"2026-12-02\","
                            "\"payout\":\"2.50\"}],\"to\":\"2026-12-02\",\"totals\":["
                            "{\"count\":2,\"currency\":\"USD\",\"payout\":\"2.50\"}]}");
    free (text);
    gkx_report_table_destroy (&t);
    /* open on one side */
    t = s_table (r, GKX_REPORT_BY_EVENT, d1 + 1, GKX_REPORT_OPEN);
    s_assert_csv (t, "event,currency,count,payout\r\n"
                     "install,USD,3,2.50\r\n"
                     "purchase,EUR,1,8.00\r\n"
                     "*,EUR,1,8.00\r\n"
                     "*,USD,3,2.50\r\n");
    gkx_report_table_destroy (&t);
    t = s_table (r, GKX_REPORT_BY_EVENT, GKX_REPORT_OPEN, d1);
    s_assert_csv (t, "event,currency,count,payout\r\n"
                     "install,USD,1,2.50\r\n"
                     "purchase,USD,1,10.00\r\n"
                     "*,USD,2,12.50\r\n");
    gkx_report_table_destroy (&t);
    /* a range with nothing in it */
    t = s_table (r, GKX_REPORT_BY_STATUS, d1 + 3, d1 + 30);
    s_assert_csv (t, "status,currency,count,payout\r\n");
    text = s_json_no_digest (t);
    ck_assert_str_eq (text, "{\"by\":\"status\",\"from\":\"2026-12-04\",\"rows\":[],"
                            "\"to\":\"2026-12-31\",\"totals\":[]}");
    free (text);
    ck_assert_uint_eq (gkx_report_table_size (t), 0);
    gkx_report_table_destroy (&t);
    /* a day is 00:00:00 to 23:59:59 UTC */
    gkx_report_t *edge = gkx_report_new ();
    s_add (edge, 1, s_hlc (DEC1 + DAY), 0, "install", "US", "USD", GKX_CONVERSION_APPROVED, "",
           1, DEC1 - 1);
    s_add (edge, 2, s_hlc (DEC1 + DAY), 0, "install", "US", "USD", GKX_CONVERSION_APPROVED, "",
           2, DEC1);
    s_add (edge, 3, s_hlc (DEC1 + DAY), 0, "install", "US", "USD", GKX_CONVERSION_APPROVED, "",
           4, DEC1 + DAY - 1);
    s_add (edge, 4, s_hlc (DEC1 + DAY), 0, "install", "US", "USD", GKX_CONVERSION_APPROVED, "",
           8, DEC1 + DAY);
    t = s_table (edge, GKX_REPORT_BY_DAY, d1, d1);
    s_assert_csv (t, "day,currency,count,payout\r\n"
                     "2026-12-01,USD,2,0.000006\r\n"
                     "*,USD,2,0.000006\r\n");
    gkx_report_table_destroy (&t);
    gkx_report_destroy (&edge);

    /* bad queries */
    gkx_report_query_t q = {GKX_REPORT_BY_DAY, d1 + 1, d1};
    char err[GKX_ERRBUF_BYTES] = "";
    ck_assert_int_eq (gkx_report_table_open (&t, r, &q, err), GKX_EINVAL);
    ck_assert_str_eq (err, "report: from 2026-12-02 is after to 2026-12-01");
    ck_assert_ptr_null (t);
    q.by = 0;
    ck_assert_int_eq (gkx_report_table_open (&t, r, &q, err), GKX_EINVAL);
    ck_assert_str_eq (err, "by: must be day, event, status or country");
    q.by = GKX_REPORT_BY_DAY;
    q.from_day = -2;
    ck_assert_int_eq (gkx_report_table_open (&t, r, &q, err), GKX_EINVAL);
    ck_assert_str_eq (err, "report: a day must be a date or open");
    ck_assert_ptr_null (t);
    gkx_report_destroy (&r);
}
END_TEST

/* Asserts the status a report holds for conversion n. */
static void
s_assert_status (gkx_report_t *r, unsigned n, int status)
{
    uint8_t id[GKX_CONVERSION_ID_BYTES];
    int got = 0;
    s_id (id, n);
    ck_assert_int_eq (gkx_report_status (r, id, &got), GKX_OK);
    ck_assert_str_eq (gkx_conversion_status_name (got), gkx_conversion_status_name (status));
}

START_TEST (test_status_changes)
{
    gkx_report_t *r = gkx_report_new ();
    uint64_t t0 = DEC1 + HOUR;
    /* a change may arrive before its conversion */
    s_add_change (r, 1, 1, s_hlc (t0 + DAY), GKX_CONVERSION_APPROVED);
    s_add (r, 1, s_hlc (t0 + 60), 2, "install", "US", "USD", GKX_CONVERSION_PENDING, "", 3 * M,
           t0);
    s_assert_status (r, 1, GKX_CONVERSION_APPROVED);
    /* approved -> pending is not allowed and has no effect; the later
       reversal within the 2-day hold applies */
    s_add_change (r, 2, 1, s_hlc (t0 + DAY + 10), GKX_CONVERSION_PENDING);
    s_add_change (r, 3, 1, s_hlc (t0 + 2 * DAY), GKX_CONVERSION_REVERSED);
    s_assert_status (r, 1, GKX_CONVERSION_REVERSED);

    /* a change after the lock has no effect */
    s_add (r, 2, s_hlc (t0 + 60), 2, "install", "US", "USD", GKX_CONVERSION_APPROVED, "", 3 * M,
           t0);
    s_add_change (r, 4, 2, s_hlc (t0 + 2 * DAY + 1), GKX_CONVERSION_REVERSED);
    s_assert_status (r, 2, GKX_CONVERSION_APPROVED);

    /* a change that does not come after its conversion has no effect */
    s_add (r, 3, s_hlc (t0 + 60), 2, "install", "US", "USD", GKX_CONVERSION_PENDING, "", 3 * M,
           t0);
    s_add_change (r, 5, 3, s_hlc (t0 + 60), GKX_CONVERSION_APPROVED);
    s_assert_status (r, 3, GKX_CONVERSION_PENDING);

    /* changes at one hlc count in hash order. Pending with a 2-day hold:
       approved then rejected ends rejected (still on hold), rejected then
       approved ends approved; so the change with the larger hash wins */
    s_add (r, 4, s_hlc (t0 + 60), 2, "install", "US", "USD", GKX_CONVERSION_PENDING, "", 3 * M,
           t0);
    s_add_change (r, 6, 4, s_hlc (t0 + 100), GKX_CONVERSION_APPROVED);
    s_add_change (r, 7, 4, s_hlc (t0 + 100), GKX_CONVERSION_REJECTED);
    uint8_t h6[GKX_CONVERSION_ID_BYTES], h7[GKX_CONVERSION_ID_BYTES];
    s_id (h6, 1000006);
    s_id (h7, 1000007);
    int last = memcmp (h6, h7, sizeof (h6)) < 0 ? GKX_CONVERSION_REJECTED
                                                  : GKX_CONVERSION_APPROVED;
    s_assert_status (r, 4, last);

    /* a change naming no held conversion changes nothing */
    s_add_change (r, 8, 99, s_hlc (t0 + DAY), GKX_CONVERSION_REJECTED);
    uint8_t id[GKX_CONVERSION_ID_BYTES];
    int status = 0;
    s_id (id, 99);
    ck_assert_int_eq (gkx_report_status (r, id, &status), GKX_ENOTFOUND);
    ck_assert_uint_eq (gkx_report_size (r), 4);

    gkx_report_table_t *t = s_table (r, GKX_REPORT_BY_STATUS, GKX_REPORT_OPEN, GKX_REPORT_OPEN);
    s_assert_csv (t, "status,currency,count,payout\r\n"
                     "approved,USD,1,3.00\r\n"
                     "pending,USD,1,3.00\r\n"
                     "rejected,USD,1,0.00\r\n"
                     "reversed,USD,1,0.00\r\n"
                     "*,USD,4,6.00\r\n");
    gkx_report_table_destroy (&t);
    gkx_report_destroy (&r);
}
END_TEST

START_TEST (test_duplicates_and_conflicts)
{
    gkx_report_t *r = gkx_report_new ();
    uint8_t id[GKX_CONVERSION_ID_BYTES];
    size_t len, other_len;
    char err[GKX_ERRBUF_BYTES] = "";
    s_id (id, 1);
    uint8_t *body = s_conversion (&len, "install", "US", "USD", GKX_CONVERSION_APPROVED, "",
                                  M, DEC1);
    uint8_t *other = s_conversion (&other_len, "install", "US", "USD",
                                   GKX_CONVERSION_APPROVED, "", 2 * M, DEC1);
    ck_assert_int_eq (gkx_report_add_conversion (r, id, 5, 0, body, len, err), GKX_OK);
    ck_assert_int_eq (gkx_report_add_conversion (r, id, 5, 0, body, len, err), GKX_OK);
    ck_assert_uint_eq (gkx_report_size (r), 1);
    ck_assert_int_eq (gkx_report_add_conversion (r, id, 5, 0, other, other_len, err),
                      GKX_EEXIST);
    ck_assert_str_eq (err, "report: conversion e12c22d4f162d9a0... is held with other "
                           "contents");
    ck_assert_int_eq (gkx_report_add_conversion (r, id, 6, 0, body, len, err), GKX_EEXIST);
    ck_assert_int_eq (gkx_report_add_conversion (r, id, 5, 1, body, len, err), GKX_EEXIST);
    ck_assert_int_eq (gkx_report_add_conversion (r, id, 5, 0, body, len - 1, err), GKX_EBODY);
    ck_assert_str_eq (err, "conversion: truncated at byte 157");
    gkx_free (other);
    gkx_free (body);

    uint8_t hash[GKX_CONVERSION_ID_BYTES];
    s_id (hash, 2);
    body = s_change (&len, 1, GKX_CONVERSION_REVERSED);
    other = s_change (&other_len, 1, GKX_CONVERSION_REJECTED);
    ck_assert_int_eq (gkx_report_add_change (r, hash, 9, body, len, err), GKX_OK);
    ck_assert_int_eq (gkx_report_add_change (r, hash, 9, body, len, err), GKX_OK);
    ck_assert_int_eq (gkx_report_add_change (r, hash, 9, other, other_len, err), GKX_EEXIST);
    ck_assert_str_eq (err, "report: status change 7b0aa1735e5ba58d... is held with other "
                           "contents");
    ck_assert_int_eq (gkx_report_add_change (r, hash, 10, body, len, err), GKX_EEXIST);
    ck_assert_int_eq (gkx_report_add_change (r, hash, 9, body, 3, err), GKX_EBODY);
    /* a conversion body is not a status change body */
    gkx_free (other);
    other = s_conversion (&other_len, "install", "US", "USD", GKX_CONVERSION_APPROVED, "", M,
                          DEC1);
    ck_assert_int_eq (gkx_report_add_change (r, id, 9, other, other_len, err), GKX_EBODY);
    ck_assert_str_eq (err, "conversion_status.click_id: unknown field");
    s_assert_status (r, 1, GKX_CONVERSION_REVERSED);
    gkx_free (other);
    gkx_free (body);
    gkx_report_destroy (&r);
}
END_TEST

START_TEST (test_csv_escaping)
{
    gkx_report_t *r = gkx_report_new ();
    /* "-" can start an event name; a spreadsheet would read it as a formula */
    s_add (r, 1, s_hlc (DEC1 + DAY), 0, "-refund", NULL, "USD", GKX_CONVERSION_APPROVED, "", M,
           DEC1);
    s_add (r, 2, s_hlc (DEC1 + DAY), 0, "level:2", "FR", "EUR", GKX_CONVERSION_PENDING, "",
           1234567, DEC1);
    s_add (r, 3, s_hlc (DEC1 + DAY), 0, "a.b_c-d", "FR", "EUR", GKX_CONVERSION_REJECTED,
           "mmp: fraud, \"clicks\"", 5, DEC1);
    gkx_report_table_t *t = s_table (r, GKX_REPORT_BY_EVENT, GKX_REPORT_OPEN, GKX_REPORT_OPEN);
    s_assert_csv (t, "event,currency,count,payout\r\n"
                     "\"'-refund\",USD,1,1.00\r\n"
                     "a.b_c-d,EUR,1,0.00\r\n"
                     "level:2,EUR,1,1.234567\r\n"
                     "*,EUR,2,1.234567\r\n"
                     "*,USD,1,1.00\r\n");
    gkx_report_table_destroy (&t);
    t = s_table (r, GKX_REPORT_BY_COUNTRY, GKX_REPORT_OPEN, GKX_REPORT_OPEN);
    s_assert_csv (t, "country,currency,count,payout\r\n"
                     ",USD,1,1.00\r\n"
                     "FR,EUR,2,1.234567\r\n"
                     "*,EUR,2,1.234567\r\n"
                     "*,USD,1,1.00\r\n");
    /* JSON keeps the event as it is */
    gkx_report_table_destroy (&t);
    t = s_table (r, GKX_REPORT_BY_EVENT, GKX_REPORT_OPEN, GKX_REPORT_OPEN);
    gkx_report_row_t row;
    gkx_report_table_row (t, 0, &row);
    ck_assert_str_eq (row.key, "-refund");
    gkx_report_table_destroy (&t);
    gkx_report_destroy (&r);
}
END_TEST

/* Packs a C string, or nil for NULL. */
static void
s_pack_str (msgpack_packer *pk, const char *text)
{
    if (!text) {
        msgpack_pack_nil (pk);
        return;
    }
    msgpack_pack_str (pk, strlen (text));
    msgpack_pack_str_body (pk, text, strlen (text));
}

START_TEST (test_digest_format_and_stability)
{
    gkx_report_t *r = s_fixed_report ();
    int64_t d1 = (int64_t) (DEC1 / DAY);
    gkx_report_table_t *t = s_table (r, GKX_REPORT_BY_COUNTRY, d1, GKX_REPORT_OPEN);
    /* rebuild the digested bytes as docs/conversions.md describes them */
    msgpack_sbuffer sbuf;
    msgpack_packer pk;
    msgpack_sbuffer_init (&sbuf);
    msgpack_packer_init (&pk, &sbuf, msgpack_sbuffer_write);
    msgpack_pack_map (&pk, 5);
    s_pack_str (&pk, "by");
    s_pack_str (&pk, "country");
    s_pack_str (&pk, "format");
    s_pack_str (&pk, "gkx-report-v1");
    s_pack_str (&pk, "from");
    s_pack_str (&pk, "2026-12-01");
    s_pack_str (&pk, "rows");
    static const struct {
        uint64_t count;
        const char *currency;
        const char *key;
        uint64_t payout;
    } rows[] = {
        {1, "USD", NULL, 2500000},
        {1, "USD", "CA", 0},
        {1, "EUR", "DE", 8000000},
        {3, "USD", "US", 12500000},
    };
    msgpack_pack_array (&pk, 4);
    for (size_t i = 0; i < 4; i++) {
        msgpack_pack_map (&pk, 4);
        s_pack_str (&pk, "count");
        msgpack_pack_uint64 (&pk, rows[i].count);
        s_pack_str (&pk, "currency");
        s_pack_str (&pk, rows[i].currency);
        s_pack_str (&pk, "key");
        s_pack_str (&pk, rows[i].key);
        s_pack_str (&pk, "payout");
        msgpack_pack_uint64 (&pk, rows[i].payout);
    }
    s_pack_str (&pk, "to");
    s_pack_str (&pk, NULL);
    uint8_t expect[GKX_REPORT_DIGEST_BYTES];
    crypto_generichash (expect, sizeof (expect), (const uint8_t *) sbuf.data, sbuf.size, NULL, 0);
    msgpack_sbuffer_destroy (&sbuf);
    uint8_t digest[GKX_REPORT_DIGEST_BYTES];
    char hex[GKX_REPORT_DIGEST_HEX_BYTES];
    gkx_report_table_digest (t, digest, hex);
    ck_assert_mem_eq (digest, expect, sizeof (digest));
    /* the golden value, so that any change of format is seen */
    ck_assert_str_eq (hex, "367e0e8334361f873bb4059992782d4f494cf7af165f657f8fd5b52e57b5f4cd");
    gkx_report_table_digest (t, digest, NULL);
    ck_assert_mem_eq (digest, expect, sizeof (digest));
    char *text = s_json_text (t);
    ck_assert_ptr_nonnull (strstr (text, "\"digest\":\"367e0e8334361f87"));
    free (text);
    gkx_report_table_destroy (&t);

    /* the same rows under another query digest differently */
    t = s_table (r, GKX_REPORT_BY_COUNTRY, d1 - 1, GKX_REPORT_OPEN);
    gkx_report_table_digest (t, digest, NULL);
    ck_assert_mem_ne (digest, expect, sizeof (digest));
    gkx_report_table_destroy (&t);
    /* and any change to the numbers changes it */
    s_add_change (r, 2, 2, s_hlc (DEC1 + DAY), GKX_CONVERSION_REVERSED);
    t = s_table (r, GKX_REPORT_BY_COUNTRY, d1, GKX_REPORT_OPEN);
    gkx_report_table_digest (t, digest, NULL);
    ck_assert_mem_ne (digest, expect, sizeof (digest));
    gkx_report_table_destroy (&t);
    gkx_report_destroy (&r);
}
END_TEST

START_TEST (test_payout_sum_overflow)
{
    gkx_report_t *r = gkx_report_new ();
    uint8_t id[GKX_CONVERSION_ID_BYTES];
    size_t len;
    uint8_t *body = s_conversion (&len, "install", "US", "USD", GKX_CONVERSION_APPROVED, "",
                                  GKX_CONVERSION_AMOUNT_MAX, DEC1);
    /* 9223 of the largest payout fit in int64; 9224 do not */
    for (unsigned i = 0; i < 9223; i++) {
        s_id (id, i);
        ck_assert_int_eq (gkx_report_add_conversion (r, id, 1, 0, body, len, NULL), GKX_OK);
    }
    gkx_report_table_t *t = s_table (r, GKX_REPORT_BY_DAY, GKX_REPORT_OPEN, GKX_REPORT_OPEN);
    s_assert_csv (t, "day,currency,count,payout\r\n"
                     "2026-12-01,USD,9223,9223000000000.00\r\n"
                     "*,USD,9223,9223000000000.00\r\n");
    gkx_report_table_destroy (&t);
    s_id (id, 9223);
    ck_assert_int_eq (gkx_report_add_conversion (r, id, 1, 0, body, len, NULL), GKX_OK);
    gkx_report_query_t q = {GKX_REPORT_BY_DAY, GKX_REPORT_OPEN, GKX_REPORT_OPEN};
    char err[GKX_ERRBUF_BYTES] = "";
    ck_assert_int_eq (gkx_report_table_open (&t, r, &q, err), GKX_ETOOBIG);
    ck_assert_str_eq (err, "report: a payout sum exceeds 9223372036854775807 micro-units");
    ck_assert_ptr_null (t);
    /* rejected conversions owe nothing, so the sum fits again */
    s_id (id, 9224);
    gkx_free (body);
    body = s_conversion (&len, "install", "US", "USD", GKX_CONVERSION_REJECTED, "cap",
                         GKX_CONVERSION_AMOUNT_MAX, DEC1);
    gkx_report_t *r2 = gkx_report_new ();
    ck_assert_int_eq (gkx_report_add_conversion (r2, id, 1, 0, body, len, NULL), GKX_OK);
    t = s_table (r2, GKX_REPORT_BY_DAY, GKX_REPORT_OPEN, GKX_REPORT_OPEN);
    gkx_report_table_destroy (&t);
    gkx_report_destroy (&r2);
    gkx_free (body);
    gkx_report_destroy (&r);
}
END_TEST

/* ---------------------------------------------------------------------- */
/* Property: any order, any duplicates, the same bytes                      */

/* splitmix64: a small seeded generator, the same on every machine. */
static uint64_t
s_next (uint64_t *state)
{
    uint64_t z = (*state += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

/* Returns a number in [0, n). */
static uint64_t
s_below (uint64_t *state, uint64_t n)
{
    return s_next (state) % n;
}

/* One generated entry. */
typedef struct {
    bool is_change;
    uint8_t hash[GKX_CONVERSION_ID_BYTES];
    uint64_t hlc;
    uint32_t hold_days;
    uint8_t *body;
    size_t len;
} s_item_t;

/* Feeds items to a report, asserting success. */
static void
s_feed (gkx_report_t *r, const s_item_t *item)
{
    char err[GKX_ERRBUF_BYTES] = "";
    int rc = item->is_change
                 ? gkx_report_add_change (r, item->hash, item->hlc, item->body, item->len, err)
                 : gkx_report_add_conversion (r, item->hash, item->hlc, item->hold_days,
                                              item->body, item->len, err);
    ck_assert_msg (rc == GKX_OK, "%s", err);
}

START_TEST (test_any_order_same_bytes)
{
    static const char *const events[] = {"install", "purchase", "-refund", "level:2"};
    static const char *const countries[] = {"US", "CA", "DE", NULL};
    static const char *const currencies[] = {"USD", "EUR"};
    static const char *const reasons[] = {"", "", "cap"};
    const char *seed_env = getenv ("GKX_SEED");
    const char *iter_env = getenv ("GKX_ITERATIONS");
    uint64_t seed = seed_env ? strtoull (seed_env, NULL, 0) : S_PROPERTY_SEED;
    long cases = iter_env ? strtol (iter_env, NULL, 10) : S_PROPERTY_CASES;
    uint64_t base_ms = (DEC1 - 3 * DAY) * 1000;
    size_t total_rows = 0;
    for (long c = 0; c < cases; c++) {
        size_t nconv = (size_t) s_below (&seed, 25);
        size_t nchg = (size_t) s_below (&seed, 17);
        s_item_t *items = gkx_zalloc ((nconv + nchg) * sizeof (s_item_t));
        uint64_t in_range = 0;
        gkx_report_query_t q;
        q.by = 1 + (int) s_below (&seed, 4);
        int64_t d0 = (int64_t) (DEC1 / DAY) - 3;
        q.from_day = s_below (&seed, 3) ? GKX_REPORT_OPEN : d0 + (int64_t) s_below (&seed, 8);
        q.to_day = s_below (&seed, 3) ? GKX_REPORT_OPEN
                                      : (q.from_day == GKX_REPORT_OPEN ? d0 : q.from_day)
                                            + (int64_t) s_below (&seed, 8);
        for (size_t i = 0; i < nconv; i++) {
            s_item_t *it = &items[i];
            for (size_t k = 0; k < GKX_CONVERSION_ID_BYTES; k += 8) {
                uint64_t x = s_next (&seed);
                memcpy (it->hash + k, &x, 8);
            }
            uint64_t time = DEC1 - 3 * DAY + s_below (&seed, 12 * DAY);
            int status = 1 + (int) s_below (&seed, 3);
            it->hlc = ((time * 1000 + s_below (&seed, 5000)) << GKX_HLC_COUNTER_BITS)
                      | s_below (&seed, 3);
            it->hold_days = (uint32_t) s_below (&seed, 3);
            it->body = s_conversion (&it->len, events[s_below (&seed, 4)],
                                     countries[s_below (&seed, 4)],
                                     currencies[s_below (&seed, 2)], status,
                                     status == GKX_CONVERSION_REJECTED
                                         ? "cap"
                                         : reasons[s_below (&seed, 2)],
                                     s_below (&seed, 4) ? (int64_t) s_below (&seed, 20 * M) : 0,
                                     time);
            int64_t day = (int64_t) (time / DAY);
            in_range += (q.from_day == GKX_REPORT_OPEN || day >= q.from_day)
                        && (q.to_day == GKX_REPORT_OPEN || day <= q.to_day);
        }
        for (size_t i = 0; i < nchg; i++) {
            s_item_t *it = &items[nconv + i];
            it->is_change = true;
            for (size_t k = 0; k < GKX_CONVERSION_ID_BYTES; k += 8) {
                uint64_t x = s_next (&seed);
                memcpy (it->hash + k, &x, 8);
            }
            gkx_conversion_change_t change;
            memset (&change, 0, sizeof (change));
            if (nconv && s_below (&seed, 5)) {
                memcpy (change.conversion, items[s_below (&seed, nconv)].hash,
                        GKX_CONVERSION_ID_BYTES);
            }
            else {
                memset (change.conversion, 0x42, GKX_CONVERSION_ID_BYTES);
            }
            change.status = 1 + (int) s_below (&seed, 4);
            /* few distinct clock values, so ties between changes happen */
            it->hlc = ((base_ms + s_below (&seed, 8) * DAY * 1000) << GKX_HLC_COUNTER_BITS);
            ck_assert_int_eq (gkx_conversion_change_encode (&it->body, &it->len, &change, NULL),
                              GKX_OK);
        }
        /* A in generation order; B shuffled, with duplicates */
        gkx_report_t *a = gkx_report_new ();
        gkx_report_t *b = gkx_report_new ();
        size_t n = nconv + nchg;
        for (size_t i = 0; i < n; i++) {
            s_feed (a, &items[i]);
        }
        size_t *order = gkx_zalloc ((2 * n + 1) * sizeof (size_t));
        size_t m = 0;
        for (size_t i = 0; i < n; i++) {
            order[m++] = i;
            if (s_below (&seed, 3) == 0) {
                order[m++] = i;
            }
        }
        for (size_t i = m; i > 1; i--) {
            size_t j = (size_t) s_below (&seed, i);
            size_t tmp = order[i - 1];
            order[i - 1] = order[j];
            order[j] = tmp;
        }
        for (size_t i = 0; i < m; i++) {
            s_feed (b, &items[order[i]]);
            /* reading in the middle must not change what comes out at the end */
            if (i == m / 2) {
                gkx_report_table_t *mid = s_table (b, q.by, q.from_day, q.to_day);
                gkx_report_table_destroy (&mid);
            }
        }
        gkx_report_table_t *ta = s_table (a, q.by, q.from_day, q.to_day);
        gkx_report_table_t *tb = s_table (b, q.by, q.from_day, q.to_day);
        char *ja = s_json_text (ta);
        char *jb = s_json_text (tb);
        ck_assert_str_eq (ja, jb);
        char *ca = gkx_report_table_to_csv (ta);
        char *cb = gkx_report_table_to_csv (tb);
        ck_assert_str_eq (ca, cb);
        uint8_t da[GKX_REPORT_DIGEST_BYTES], db[GKX_REPORT_DIGEST_BYTES];
        gkx_report_table_digest (ta, da, NULL);
        gkx_report_table_digest (tb, db, NULL);
        ck_assert_mem_eq (da, db, sizeof (da));
        /* rows add up to the totals, and every conversion in range counts once */
        uint64_t row_count = 0, total_count = 0;
        int64_t row_payout = 0, total_payout = 0;
        gkx_report_row_t row;
        for (size_t i = 0; i < gkx_report_table_size (ta); i++) {
            gkx_report_table_row (ta, i, &row);
            row_count += row.count;
            row_payout += row.payout;
        }
        for (size_t i = 0; i < gkx_report_table_totals_size (ta); i++) {
            gkx_report_table_total (ta, i, &row);
            total_count += row.count;
            total_payout += row.payout;
        }
        ck_assert_uint_eq (row_count, in_range);
        ck_assert_uint_eq (total_count, in_range);
        ck_assert_int_eq (row_payout, total_payout);
        total_rows += gkx_report_table_size (ta);
        for (size_t i = 0; i < nconv; i++) {
            int sa = 0, sb = 0;
            ck_assert_int_eq (gkx_report_status (a, items[i].hash, &sa), GKX_OK);
            ck_assert_int_eq (gkx_report_status (b, items[i].hash, &sb), GKX_OK);
            ck_assert_int_eq (sa, sb);
        }
        free (ja);
        free (jb);
        gkx_free (ca);
        gkx_free (cb);
        gkx_report_table_destroy (&ta);
        gkx_report_table_destroy (&tb);
        gkx_report_destroy (&a);
        gkx_report_destroy (&b);
        gkx_free (order);
        for (size_t i = 0; i < n; i++) {
            gkx_free (items[i].body);
        }
        gkx_free (items);
    }
    /* the generator reaches real reports, not only empty ones */
    ck_assert_uint_gt (total_rows, (uint64_t) cases);
}
END_TEST

int
main (void)
{
    Suite *suite = suite_create ("report");
    TCase *tc = tcase_create ("tables");
    tcase_add_test (tc, test_by_day);
    tcase_add_test (tc, test_by_event_status_country);
    tcase_add_test (tc, test_by_names);
    tcase_add_test (tc, test_date_ranges);
    tcase_add_test (tc, test_status_changes);
    tcase_add_test (tc, test_duplicates_and_conflicts);
    tcase_add_test (tc, test_csv_escaping);
    tcase_add_test (tc, test_digest_format_and_stability);
    tcase_add_test (tc, test_payout_sum_overflow);
    suite_add_tcase (suite, tc);
    tc = tcase_create ("property");
    tcase_set_timeout (tc, 60);
    tcase_add_test (tc, test_any_order_same_bytes);
    suite_add_tcase (suite, tc);
    return gkx_test_run (suite);
}
