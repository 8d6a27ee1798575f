/*  report - conversion reports computed from the log.
    Part of gokart-exchange; MIT licence.

    A report aggregator (gkx_report_t) is fed a partnership's conversion
    entries and conversion status entries, in any order and with any
    duplicates. It folds each conversion's status changes in their
    canonical order (hlc, then entry hash), refusing those that
    gkx_conversion_change_check refuses, so both members agree on every
    conversion's status. A table (gkx_report_table_t) is then computed for
    a date range and a grouping: one row per group and currency with the
    number of conversions and the sum of their payouts, plus totals per
    currency, rendered as JSON, as CSV and as a digest. Two aggregators fed
    the same entries give byte-identical JSON, CSV and digests, which is
    how both members prove they report the same numbers.

    Payout sums are exact integers of micro-units, shown as decimals with 2
    to 6 decimals ("12.50", "0.000001"); only approved and pending
    conversions owe their payout, so rejected and reversed ones count in
    `count` and add nothing to `payout`. docs/conversions.md gives the
    formats and the digest's bytes. An aggregator is not thread-safe:
    gkx_report_status and gkx_report_table_open refold statuses in place, so
    one thread at a time may use it; tables are independent of it. Nothing
    here does I/O.
*/
#ifndef GKX_REPORT_H_INCLUDED
#define GKX_REPORT_H_INCLUDED

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include <gkx/conversion.h>
#include <gkx/error.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Size of a report digest (BLAKE2b-256) and of its hex text with the NUL. */
#define GKX_REPORT_DIGEST_BYTES 32
#define GKX_REPORT_DIGEST_HEX_BYTES 65

/* Buffer size of an amount's decimal text, with its NUL. */
#define GKX_REPORT_AMOUNT_TEXT_BYTES 32
/* The "format" value inside the digested bytes; changes with the format. */
#define GKX_REPORT_FORMAT "gkx-report-v1"

/* A date range bound that is not set: the range is open on that side. */
#define GKX_REPORT_OPEN (-1)

/* The key column of the CSV total lines; no group key can be "*". */
#define GKX_REPORT_CSV_TOTAL "*"

/* How rows are grouped. */
typedef enum {
    GKX_REPORT_BY_DAY = 1,     /* UTC day of the event time, "YYYY-MM-DD" */
    GKX_REPORT_BY_EVENT = 2,   /* event name */
    GKX_REPORT_BY_STATUS = 3,  /* status after the status changes */
    GKX_REPORT_BY_COUNTRY = 4, /* country code, or none */
} gkx_report_by_t;

/* What a table covers. */
typedef struct {
    int by;          /* a gkx_report_by_t */
    int64_t from_day; /* first UTC day (days since 1970-01-01), or GKX_REPORT_OPEN */
    int64_t to_day;   /* last UTC day, included, or GKX_REPORT_OPEN */
} gkx_report_query_t;

/* One row or total of a table; strings are borrowed from the table. */
typedef struct {
    const char *key;      /* group key; NULL for "no country" and for totals */
    const char *currency; /* ISO 4217 code of the payouts */
    uint64_t count;       /* conversions, whatever their status */
    int64_t payout;       /* micro-units owed: approved and pending payouts */
} gkx_report_row_t;

/* A report aggregator. */
typedef struct gkx_report gkx_report_t;

/* A computed report table. */
typedef struct gkx_report_table gkx_report_table_t;

/* Writes micro-units (not negative) as a decimal with 2 to 6 decimals:
   2500000 is "2.50", 1 is "0.000001". */
void gkx_report_amount_text (char out[GKX_REPORT_AMOUNT_TEXT_BYTES], int64_t micro);

/* Returns "day", "event", "status", "country", or NULL for an unknown
   grouping. */
const char *gkx_report_by_name (int by);

/* Parses a grouping word; returns GKX_OK, or GKX_EINVAL with errbuf. */
int gkx_report_by_parse (const char *text, int *by_p, char *errbuf) GKX_NODISCARD;

/* Returns a new, empty aggregator. */
gkx_report_t *gkx_report_new (void);

/* Destroys an aggregator; accepts NULL and sets *self_p to NULL. */
void gkx_report_destroy (gkx_report_t **self_p);

/* Adds a conversion entry: its entry hash (the conversion id), hybrid
   clock, the conversion_policy.hold_days in force in its causal past and
   its body. Adding an id already held with the same contents is a no-op.
   Returns GKX_OK, GKX_EBODY with errbuf for a malformed body, or
   GKX_EEXIST with errbuf when the id is held with other contents; on error
   nothing changes. */
int gkx_report_add_conversion (gkx_report_t *self, const uint8_t id[GKX_CONVERSION_ID_BYTES],
                               uint64_t hlc, uint32_t hold_days, const uint8_t *body,
                               size_t len, char *errbuf) GKX_NODISCARD;

/* Adds a conversion status entry: its entry hash, hybrid clock and body.
   It may come before or after the conversion it names; one naming a
   conversion never added has no effect. Returns as
   gkx_report_add_conversion. */
int gkx_report_add_change (gkx_report_t *self, const uint8_t hash[GKX_CONVERSION_ID_BYTES],
                           uint64_t hlc, const uint8_t *body, size_t len,
                           char *errbuf) GKX_NODISCARD;

/* Returns the number of conversions held. */
size_t gkx_report_size (const gkx_report_t *self);

/* Writes a held conversion's status after its status changes. Returns
   GKX_OK or GKX_ENOTFOUND. */
int gkx_report_status (gkx_report_t *self, const uint8_t id[GKX_CONVERSION_ID_BYTES],
                       int *status_p) GKX_NODISCARD;

/* Computes the table of a query over what the aggregator holds; the table
   is the caller's and does not refer to the aggregator. Rows are sorted by
   key (bytewise, no country first), then currency; totals by currency.
   Returns GKX_OK, GKX_EINVAL with errbuf for a bad query (unknown grouping,
   negative day, from after to), or GKX_ETOOBIG when a payout sum would
   pass INT64_MAX micro-units; *table_p is set only on success. */
int gkx_report_table_open (gkx_report_table_t **table_p, gkx_report_t *report,
                           const gkx_report_query_t *query, char *errbuf) GKX_NODISCARD;

/* Destroys a table; accepts NULL and sets *self_p to NULL. */
void gkx_report_table_destroy (gkx_report_table_t **self_p);

/* Returns the number of rows. */
size_t gkx_report_table_size (const gkx_report_table_t *self);

/* Describes row index (< size); strings live as long as the table. */
void gkx_report_table_row (const gkx_report_table_t *self, size_t index,
                           gkx_report_row_t *row);

/* Returns the number of totals: one per currency. */
size_t gkx_report_table_totals_size (const gkx_report_table_t *self);

/* Describes total index (< totals size), key NULL; strings live as long
   as the table. */
void gkx_report_table_total (const gkx_report_table_t *self, size_t index,
                             gkx_report_row_t *row);

/* Returns the table as JSON, a new reference the caller owns:
   {"by", "digest", "from", "rows": [{"count", "currency", "key",
   "payout"}], "to", "totals": [{"count", "currency", "payout"}]}, payouts
   as decimal strings. Dump it with GKX_OFFER_JSON_FLAGS for the one
   byte-exact text. */
json_t *gkx_report_table_to_json (const gkx_report_table_t *self);

/* Returns the table as RFC 4180 CSV (CRLF line ends) in a new string the
   caller frees with gkx_free: a header "<by>,currency,count,payout", the
   rows, then one total line per currency with key GKX_REPORT_CSV_TOTAL.
   No country is an empty field. A field that a spreadsheet would read as
   a formula (starting with = + - @, tab or CR) is prefixed with ' ;
   fields with a comma, quote, CR or LF are quoted with quotes doubled. */
char *gkx_report_table_to_csv (const gkx_report_table_t *self);

/* Writes the report digest: BLAKE2b-256 of the canonical msgpack
   {"by", "format": GKX_REPORT_FORMAT, "from", "rows": [{"count",
   "currency", "key", "payout"}], "to"} (docs/conversions.md), and
   optionally its lowercase hex (hex may be NULL). */
void gkx_report_table_digest (const gkx_report_table_t *self,
                              uint8_t digest[GKX_REPORT_DIGEST_BYTES],
                              char hex[GKX_REPORT_DIGEST_HEX_BYTES]);

#ifdef __cplusplus
}
#endif

#endif
