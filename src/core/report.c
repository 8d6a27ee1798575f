/*  report - conversion reports computed from the log.
    Part of gokart-exchange; MIT licence.

    The aggregator keeps, per conversion, only what reports need (day,
    event, country, currency, payout, status and what the lock rule needs)
    and every status change, each in an array with a hash index on its
    entry hash for duplicates. Statuses are folded lazily: adding marks
    them stale; the next reader sorts the changes by (conversion, hlc,
    hash) and replays them from each conversion's written status. Tables
    sort their items, so nothing depends on the order entries came in.
*/
#include <gkx/alloc.h>
#include <gkx/codec.h>
#include <gkx/conversion.h>
#include <gkx/error.h>
#include <gkx/report.h>

#include <assert.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <msgpack.h>
#include <sodium.h>

/* Micro-units per unit. */
#define S_MICRO ((int64_t) 1000000)
/* Decimals of a micro-unit amount. */
#define S_DECIMALS 6
/* Fewest decimals shown, as offer amounts ("2.50"). */
#define S_DECIMALS_MIN 2
/* Buffer for an amount's text: 19 digits, point, 6 decimals, NUL. */
/* Longest group key (an event name) with its NUL. */
#define S_KEY_BYTES (GKX_CONVERSION_EVENT_MAX + 1)
/* Slots of a new hash index; always a power of two. */
#define S_INDEX_MIN 64
/* Bytes of an id shown in messages, in hex digits. */
#define S_ID_SHOWN 16
/* First allocation of the conversion and change arrays, in elements. */
#define S_ARRAY_MIN 16
/* First allocation of a CSV text, in bytes. */
#define S_TEXT_MIN 256
/* Buffer for a count's decimal text: 20 digits and the NUL, with room. */
#define S_COUNT_TEXT_BYTES 24

/* Grouping words, indexed by gkx_report_by_t. */
static const char *const s_by_words[] = {NULL, "day", "event", "status", "country"};

/* One conversion, as reports need it. */
typedef struct {
    /* entry hash: the conversion id */
    uint8_t id[GKX_CONVERSION_ID_BYTES];
    /* the entry's hybrid clock */
    uint64_t hlc;
    /* event time, Unix seconds */
    uint64_t time;
    /* hold_days in force when it was written */
    uint32_t hold_days;
    /* status written in the entry */
    int written;
    /* status after the status changes; valid when the report is fresh */
    int status;
    /* payout, micro-units */
    int64_t payout;
    /* ISO 4217 code */
    char currency[4];
    /* event name */
    char event[GKX_CONVERSION_EVENT_MAX + 1];
    /* ISO 3166-1 code, or "" */
    char country[3];
} s_conversion_t;

/* One status change. */
typedef struct {
    /* entry hash of the status entry */
    uint8_t hash[GKX_CONVERSION_ID_BYTES];
    /* the conversion it changes */
    uint8_t conversion[GKX_CONVERSION_ID_BYTES];
    /* the entry's hybrid clock */
    uint64_t hlc;
    /* the new status */
    int status;
} s_change_t;

/* A hash index from 32-byte entry hashes to array positions; entry hashes
   are BLAKE2b outputs, so their first bytes are a good hash already. */
typedef struct {
    /* position + 1 per slot, 0 when empty */
    size_t *slots;
    /* number of slots, a power of two */
    size_t size;
    /* number of used slots */
    size_t used;
} s_index_t;

/* The aggregator. */
struct gkx_report {
    /* held conversions */
    s_conversion_t *conversions;
    /* how many */
    size_t count;
    /* how many allocated */
    size_t alloc;
    /* conversion id -> position in conversions */
    s_index_t by_id;
    /* held status changes */
    s_change_t *changes;
    /* how many */
    size_t change_count;
    /* how many allocated */
    size_t change_alloc;
    /* change hash -> position in changes */
    s_index_t by_hash;
    /* whether every conversion's status reflects every held change */
    bool fresh;
};

/* One row or total of a table. */
typedef struct {
    /* group key, valid when has_key */
    char key[S_KEY_BYTES];
    /* false for "no country" and for totals */
    bool has_key;
    /* ISO 4217 code */
    char currency[4];
    /* conversions */
    uint64_t count;
    /* micro-units owed */
    int64_t payout;
} s_row_t;

/* A computed table. */
struct gkx_report_table {
    /* the query it answers */
    gkx_report_query_t query;
    /* rows in key, currency order */
    s_row_t *rows;
    /* how many */
    size_t row_count;
    /* totals in currency order */
    s_row_t *totals;
    /* how many */
    size_t total_count;
    /* report digest */
    uint8_t digest[GKX_REPORT_DIGEST_BYTES];
};

/* A growing text buffer for CSV. */
typedef struct {
    /* the text, NUL-terminated */
    char *data;
    /* its length */
    size_t len;
    /* bytes allocated */
    size_t alloc;
} s_text_t;

/* ---------------------------------------------------------------------- */
/* Hash index                                                               */

/* Hashes an entry hash to a slot start. */
static size_t
s_slot_of (const uint8_t key[GKX_CONVERSION_ID_BYTES], size_t size)
{
    uint64_t h;
    memcpy (&h, key, sizeof (h));
    return (size_t) (h & (size - 1));
}

/* Finds key; returns its position in array (elements of stride bytes,
   each starting with its 32-byte key), or SIZE_MAX. */
static size_t
s_index_find (const s_index_t *index, const void *array, size_t stride,
              const uint8_t key[GKX_CONVERSION_ID_BYTES])
{
    if (index->size == 0) {
        return SIZE_MAX;
    }
    for (size_t i = s_slot_of (key, index->size);; i = (i + 1) & (index->size - 1)) {
        size_t pos = index->slots[i];
        if (pos == 0) {
            return SIZE_MAX;
        }
        /* the key is the first member of both indexed structs */
        const uint8_t *held = (const uint8_t *) array + (pos - 1) * stride;
        if (memcmp (held, key, GKX_CONVERSION_ID_BYTES) == 0) {
            return pos - 1;
        }
    }
}

/* Inserts position pos whose key is not held; grows at half load. */
static void
s_index_put (s_index_t *index, const void *array, size_t stride, size_t pos)
{
    if (2 * (index->used + 1) > index->size) {
        s_index_t grown;
        grown.size = index->size ? 2 * index->size : S_INDEX_MIN;
        grown.slots = gkx_zalloc (grown.size * sizeof (size_t));
        grown.used = 0;
        for (size_t i = 0; i < index->size; i++) {
            if (index->slots[i]) {
                s_index_put (&grown, array, stride, index->slots[i] - 1);
            }
        }
        gkx_free (index->slots);
        *index = grown;
    }
    const uint8_t *key = (const uint8_t *) array + pos * stride;
    size_t i = s_slot_of (key, index->size);
    while (index->slots[i]) {
        i = (i + 1) & (index->size - 1);
    }
    index->slots[i] = pos + 1;
    index->used++;
}

/* ---------------------------------------------------------------------- */
/* Helpers                                                                  */

void
gkx_report_amount_text (char out[GKX_REPORT_AMOUNT_TEXT_BYTES], int64_t micro)
{
    assert (micro >= 0);
    char frac[S_DECIMALS + 1];
    int64_t rest = micro % S_MICRO;
    for (int i = S_DECIMALS - 1; i >= 0; i--) {
        frac[i] = (char) ('0' + rest % 10);
        rest /= 10;
    }
    int keep = S_DECIMALS;
    while (keep > S_DECIMALS_MIN && frac[keep - 1] == '0') {
        keep--;
    }
    frac[keep] = '\0';
    snprintf (out, GKX_REPORT_AMOUNT_TEXT_BYTES, "%" PRId64 ".%s", micro / S_MICRO, frac);
}

/* Writes the first bytes of an id as hex, for messages. */
static void
s_id_text (char out[S_ID_SHOWN + 1], const uint8_t id[GKX_CONVERSION_ID_BYTES])
{
    sodium_bin2hex (out, S_ID_SHOWN + 1, id, S_ID_SHOWN / 2);
}

/* Appends len bytes to a text buffer. */
static void
s_text_add (s_text_t *t, const char *data, size_t len)
{
    if (t->len + len + 1 > t->alloc) {
        size_t want = t->alloc ? 2 * t->alloc : S_TEXT_MIN;
        while (want < t->len + len + 1) {
            want *= 2;
        }
        t->data = gkx_realloc (t->data, want);
        t->alloc = want;
    }
    memcpy (t->data + t->len, data, len);
    t->len += len;
    t->data[t->len] = '\0';
}

/* Appends a C string to a text buffer. */
static void
s_text_str (s_text_t *t, const char *text)
{
    s_text_add (t, text, strlen (text));
}

/* Appends one CSV field: ' before a would-be formula, quotes around a
   field with a comma, quote, CR, LF or that prefix, quotes doubled. */
static void
s_csv_field (s_text_t *t, const char *text)
{
    bool formula = text[0] && strchr ("=+-@\t\r", text[0]);
    bool quote = formula || strpbrk (text, ",\"\r\n") != NULL;
    if (!quote) {
        s_text_str (t, text);
        return;
    }
    s_text_add (t, "\"", 1);
    if (formula) {
        s_text_add (t, "'", 1);
    }
    for (const char *p = text; *p; p++) {
        s_text_add (t, p, 1);
        if (*p == '"') {
            s_text_add (t, "\"", 1);
        }
    }
    s_text_add (t, "\"", 1);
}

/* Orders two rows by key (no key first), then currency. */
static int
s_row_compare (const void *a, const void *b)
{
    const s_row_t *x = a;
    const s_row_t *y = b;
    if (x->has_key != y->has_key) {
        return x->has_key ? 1 : -1;
    }
    int cmp = x->has_key ? strcmp (x->key, y->key) : 0;
    return cmp ? cmp : strcmp (x->currency, y->currency);
}

/* Orders status changes by conversion, hlc, then hash. */
static int
s_change_compare (const void *a, const void *b)
{
    const s_change_t *x = *(const s_change_t *const *) a;
    const s_change_t *y = *(const s_change_t *const *) b;
    int cmp = memcmp (x->conversion, y->conversion, GKX_CONVERSION_ID_BYTES);
    if (cmp) {
        return cmp;
    }
    if (x->hlc != y->hlc) {
        return x->hlc < y->hlc ? -1 : 1;
    }
    return memcmp (x->hash, y->hash, GKX_CONVERSION_ID_BYTES);
}

/* ---------------------------------------------------------------------- */
/* The aggregator                                                           */

const char *
gkx_report_by_name (int by)
{
    if (by < GKX_REPORT_BY_DAY || by > GKX_REPORT_BY_COUNTRY) {
        return NULL;
    }
    return s_by_words[by];
}

int
gkx_report_by_parse (const char *text, int *by_p, char *errbuf)
{
    assert (text && by_p);
    for (int by = GKX_REPORT_BY_DAY; by <= GKX_REPORT_BY_COUNTRY; by++) {
        if (strcmp (text, s_by_words[by]) == 0) {
            *by_p = by;
            return GKX_OK;
        }
    }
    return gkx_fail (errbuf, GKX_EINVAL, "by: must be day, event, status or country");
}

gkx_report_t *
gkx_report_new (void)
{
    gkx_report_t *self = gkx_zalloc (sizeof (*self));
    self->fresh = true;
    return self;
}

void
gkx_report_destroy (gkx_report_t **self_p)
{
    if (self_p && *self_p) {
        gkx_report_t *self = *self_p;
        gkx_free (self->conversions);
        gkx_free (self->by_id.slots);
        gkx_free (self->changes);
        gkx_free (self->by_hash.slots);
        gkx_free (self);
        *self_p = NULL;
    }
}

/* Whether two held conversions say the same. */
static bool
s_conversion_same (const s_conversion_t *a, const s_conversion_t *b)
{
    return a->hlc == b->hlc && a->time == b->time && a->hold_days == b->hold_days
           && a->written == b->written && a->payout == b->payout
           && strcmp (a->currency, b->currency) == 0 && strcmp (a->event, b->event) == 0
           && strcmp (a->country, b->country) == 0;
}

int
gkx_report_add_conversion (gkx_report_t *self, const uint8_t id[GKX_CONVERSION_ID_BYTES],
                           uint64_t hlc, uint32_t hold_days, const uint8_t *body, size_t len,
                           char *errbuf)
{
    assert (self && id);
    gkx_conversion_t c;
    int rc = gkx_conversion_decode (&c, body, len, errbuf);
    if (rc) {
        return rc;
    }
    s_conversion_t item;
    memset (&item, 0, sizeof (item));
    memcpy (item.id, id, GKX_CONVERSION_ID_BYTES);
    item.hlc = hlc;
    item.time = c.time;
    item.hold_days = hold_days;
    item.written = c.status;
    item.status = c.status;
    item.payout = c.payout;
    memcpy (item.currency, c.currency, sizeof (item.currency));
    memcpy (item.event, c.event, sizeof (item.event));
    memcpy (item.country, c.country, sizeof (item.country));
    size_t pos = s_index_find (&self->by_id, self->conversions, sizeof (s_conversion_t), id);
    if (pos != SIZE_MAX) {
        if (s_conversion_same (&self->conversions[pos], &item)) {
            return GKX_OK;
        }
        char shown[S_ID_SHOWN + 1];
        s_id_text (shown, id);
        return gkx_fail (errbuf, GKX_EEXIST,
                         "report: conversion %s... is held with other contents", shown);
    }
    if (self->count == self->alloc) {
        self->alloc = self->alloc ? 2 * self->alloc : S_ARRAY_MIN;
        self->conversions = gkx_realloc (self->conversions,
                                         self->alloc * sizeof (s_conversion_t));
    }
    self->conversions[self->count] = item;
    s_index_put (&self->by_id, self->conversions, sizeof (s_conversion_t), self->count);
    self->count++;
    self->fresh = false;
    return GKX_OK;
}

int
gkx_report_add_change (gkx_report_t *self, const uint8_t hash[GKX_CONVERSION_ID_BYTES],
                       uint64_t hlc, const uint8_t *body, size_t len, char *errbuf)
{
    assert (self && hash);
    gkx_conversion_change_t c;
    int rc = gkx_conversion_change_decode (&c, body, len, errbuf);
    if (rc) {
        return rc;
    }
    s_change_t item;
    memset (&item, 0, sizeof (item));
    memcpy (item.hash, hash, GKX_CONVERSION_ID_BYTES);
    memcpy (item.conversion, c.conversion, GKX_CONVERSION_ID_BYTES);
    item.hlc = hlc;
    item.status = c.status;
    size_t pos = s_index_find (&self->by_hash, self->changes, sizeof (s_change_t), hash);
    if (pos != SIZE_MAX) {
        const s_change_t *held = &self->changes[pos];
        if (held->hlc == item.hlc && held->status == item.status
            && memcmp (held->conversion, item.conversion, GKX_CONVERSION_ID_BYTES) == 0) {
            return GKX_OK;
        }
        char shown[S_ID_SHOWN + 1];
        s_id_text (shown, hash);
        return gkx_fail (errbuf, GKX_EEXIST,
                         "report: status change %s... is held with other contents", shown);
    }
    if (self->change_count == self->change_alloc) {
        self->change_alloc = self->change_alloc ? 2 * self->change_alloc : S_ARRAY_MIN;
        self->changes = gkx_realloc (self->changes, self->change_alloc * sizeof (s_change_t));
    }
    self->changes[self->change_count] = item;
    s_index_put (&self->by_hash, self->changes, sizeof (s_change_t), self->change_count);
    self->change_count++;
    self->fresh = false;
    return GKX_OK;
}

size_t
gkx_report_size (const gkx_report_t *self)
{
    assert (self);
    return self->count;
}

/* Replays every conversion's status changes in canonical order. */
static void
s_refresh (gkx_report_t *self)
{
    if (self->fresh) {
        return;
    }
    for (size_t i = 0; i < self->count; i++) {
        self->conversions[i].status = self->conversions[i].written;
    }
    size_t n = self->change_count;
    const s_change_t **order = gkx_zalloc ((n ? n : 1) * sizeof (*order));
    for (size_t i = 0; i < n; i++) {
        order[i] = &self->changes[i];
    }
    qsort (order, n, sizeof (*order), s_change_compare);
    for (size_t i = 0; i < n; i++) {
        const s_change_t *change = order[i];
        size_t pos = s_index_find (&self->by_id, self->conversions, sizeof (s_conversion_t),
                                   change->conversion);
        if (pos == SIZE_MAX) {
            continue;
        }
        s_conversion_t *conv = &self->conversions[pos];
        gkx_conversion_state_t state = {conv->status, conv->time, conv->hlc, conv->hold_days};
        if (gkx_conversion_change_check (&state, change->status, change->hlc, NULL)
            == GKX_OK) {
            conv->status = change->status;
        }
    }
    gkx_free (order);
    self->fresh = true;
}

int
gkx_report_status (gkx_report_t *self, const uint8_t id[GKX_CONVERSION_ID_BYTES],
                   int *status_p)
{
    assert (self && id && status_p);
    size_t pos = s_index_find (&self->by_id, self->conversions, sizeof (s_conversion_t), id);
    if (pos == SIZE_MAX) {
        return GKX_ENOTFOUND;
    }
    s_refresh (self);
    *status_p = self->conversions[pos].status;
    return GKX_OK;
}

/* ---------------------------------------------------------------------- */
/* Tables                                                                   */

/* Writes a conversion's group key into row. */
static void
s_group_key (s_row_t *row, const s_conversion_t *c, int by)
{
    row->has_key = true;
    switch (by) {
    case GKX_REPORT_BY_DAY:
        gkx_conversion_day_text (row->key, c->time / GKX_CONVERSION_DAY_SECONDS);
        break;
    case GKX_REPORT_BY_EVENT:
        snprintf (row->key, sizeof (row->key), "%s", c->event);
        break;
    case GKX_REPORT_BY_STATUS:
        snprintf (row->key, sizeof (row->key), "%s", gkx_conversion_status_name (c->status));
        break;
    default:
        row->has_key = c->country[0] != '\0';
        snprintf (row->key, sizeof (row->key), "%s", c->country);
        break;
    }
}

/* Merges runs of sorted items with equal key and currency into rows, in
   place; returns the number of rows, or SIZE_MAX when a sum overflows. */
static size_t
s_merge_runs (s_row_t *items, size_t n)
{
    size_t out = 0;
    for (size_t i = 0; i < n; i++) {
        if (out > 0 && s_row_compare (&items[out - 1], &items[i]) == 0) {
            s_row_t *row = &items[out - 1];
            if (row->payout > INT64_MAX - items[i].payout) {
                return SIZE_MAX;
            }
            row->count += items[i].count;
            row->payout += items[i].payout;
        }
        else {
            items[out++] = items[i];
        }
    }
    return out;
}

/* Packs a day bound as "YYYY-MM-DD", or nil when open. */
static void
s_pack_day (msgpack_packer *pk, int64_t day)
{
    if (day == GKX_REPORT_OPEN) {
        msgpack_pack_nil (pk);
        return;
    }
    char text[GKX_CONVERSION_DAY_TEXT_BYTES];
    gkx_conversion_day_text (text, (uint64_t) day);
    gkx_codec_pack_cstr (pk, text);
}

/* Computes the digest of a table from its query and rows. */
static void
s_digest (gkx_report_table_t *t)
{
    msgpack_sbuffer sbuf;
    msgpack_packer pk;
    msgpack_sbuffer_init (&sbuf);
    msgpack_packer_init (&pk, &sbuf, msgpack_sbuffer_write);
    msgpack_pack_map (&pk, 5);
    gkx_codec_pack_cstr (&pk, "by");
    gkx_codec_pack_cstr (&pk, s_by_words[t->query.by]);
    gkx_codec_pack_cstr (&pk, "format");
    gkx_codec_pack_cstr (&pk, GKX_REPORT_FORMAT);
    gkx_codec_pack_cstr (&pk, "from");
    s_pack_day (&pk, t->query.from_day);
    gkx_codec_pack_cstr (&pk, "rows");
    msgpack_pack_array (&pk, t->row_count);
    for (size_t i = 0; i < t->row_count; i++) {
        const s_row_t *row = &t->rows[i];
        msgpack_pack_map (&pk, 4);
        gkx_codec_pack_cstr (&pk, "count");
        msgpack_pack_uint64 (&pk, row->count);
        gkx_codec_pack_cstr (&pk, "currency");
        gkx_codec_pack_cstr (&pk, row->currency);
        gkx_codec_pack_cstr (&pk, "key");
        if (row->has_key) {
            gkx_codec_pack_cstr (&pk, row->key);
        }
        else {
            msgpack_pack_nil (&pk);
        }
        gkx_codec_pack_cstr (&pk, "payout");
        msgpack_pack_uint64 (&pk, (uint64_t) row->payout);
    }
    gkx_codec_pack_cstr (&pk, "to");
    s_pack_day (&pk, t->query.to_day);
    crypto_generichash (t->digest, GKX_REPORT_DIGEST_BYTES, (const uint8_t *) sbuf.data,
                        sbuf.size, NULL, 0);
    msgpack_sbuffer_destroy (&sbuf);
}

/* Checks a query. */
static int
s_check_query (const gkx_report_query_t *q, char *errbuf)
{
    if (!gkx_report_by_name (q->by)) {
        return gkx_fail (errbuf, GKX_EINVAL, "by: must be day, event, status or country");
    }
    if (q->from_day < GKX_REPORT_OPEN || q->to_day < GKX_REPORT_OPEN) {
        return gkx_fail (errbuf, GKX_EINVAL, "report: a day must be a date or open");
    }
    if (q->from_day != GKX_REPORT_OPEN && q->to_day != GKX_REPORT_OPEN
        && q->from_day > q->to_day) {
        char from[GKX_CONVERSION_DAY_TEXT_BYTES];
        char to[GKX_CONVERSION_DAY_TEXT_BYTES];
        gkx_conversion_day_text (from, (uint64_t) q->from_day);
        gkx_conversion_day_text (to, (uint64_t) q->to_day);
        return gkx_fail (errbuf, GKX_EINVAL, "report: from %s is after to %s", from, to);
    }
    return GKX_OK;
}

/* Whether a conversion's day is in the query's range. */
static bool
s_in_range (const gkx_report_query_t *q, const s_conversion_t *c)
{
    int64_t day = (int64_t) (c->time / GKX_CONVERSION_DAY_SECONDS);
    return (q->from_day == GKX_REPORT_OPEN || day >= q->from_day)
           && (q->to_day == GKX_REPORT_OPEN || day <= q->to_day);
}

int
gkx_report_table_open (gkx_report_table_t **table_p, gkx_report_t *report,
                       const gkx_report_query_t *query, char *errbuf)
{
    assert (table_p && report && query);
    int rc = s_check_query (query, errbuf);
    if (rc) {
        return rc;
    }
    s_refresh (report);
    s_row_t *rows = gkx_zalloc ((report->count ? report->count : 1) * sizeof (s_row_t));
    size_t n = 0;
    for (size_t i = 0; i < report->count; i++) {
        const s_conversion_t *c = &report->conversions[i];
        if (!s_in_range (query, c)) {
            continue;
        }
        s_row_t *row = &rows[n++];
        s_group_key (row, c, query->by);
        memcpy (row->currency, c->currency, sizeof (row->currency));
        row->count = 1;
        bool owed = c->status == GKX_CONVERSION_APPROVED || c->status == GKX_CONVERSION_PENDING;
        row->payout = owed ? c->payout : 0;
    }
    qsort (rows, n, sizeof (s_row_t), s_row_compare);
    size_t row_count = s_merge_runs (rows, n);
    s_row_t *totals = NULL;
    size_t total_count = 0;
    if (row_count != SIZE_MAX) {
        totals = gkx_zalloc ((row_count ? row_count : 1) * sizeof (s_row_t));
        for (size_t i = 0; i < row_count; i++) {
            totals[i] = rows[i];
            totals[i].has_key = false;
            totals[i].key[0] = '\0';
        }
        qsort (totals, row_count, sizeof (s_row_t), s_row_compare);
        total_count = s_merge_runs (totals, row_count);
    }
    if (row_count == SIZE_MAX || total_count == SIZE_MAX) {
        gkx_free (rows);
        gkx_free (totals);
        return gkx_fail (errbuf, GKX_ETOOBIG,
                         "report: a payout sum exceeds %" PRId64 " micro-units", INT64_MAX);
    }
    gkx_report_table_t *self = gkx_zalloc (sizeof (*self));
    self->query = *query;
    self->rows = rows;
    self->row_count = row_count;
    self->totals = totals;
    self->total_count = total_count;
    s_digest (self);
    *table_p = self;
    return GKX_OK;
}

void
gkx_report_table_destroy (gkx_report_table_t **self_p)
{
    if (self_p && *self_p) {
        gkx_free ((*self_p)->rows);
        gkx_free ((*self_p)->totals);
        gkx_free (*self_p);
        *self_p = NULL;
    }
}

size_t
gkx_report_table_size (const gkx_report_table_t *self)
{
    assert (self);
    return self->row_count;
}

/* Describes an internal row. */
static void
s_row_info (const s_row_t *r, gkx_report_row_t *row)
{
    row->key = r->has_key ? r->key : NULL;
    row->currency = r->currency;
    row->count = r->count;
    row->payout = r->payout;
}

void
gkx_report_table_row (const gkx_report_table_t *self, size_t index, gkx_report_row_t *row)
{
    assert (self && row && index < self->row_count);
    s_row_info (&self->rows[index], row);
}

size_t
gkx_report_table_totals_size (const gkx_report_table_t *self)
{
    assert (self);
    return self->total_count;
}

void
gkx_report_table_total (const gkx_report_table_t *self, size_t index, gkx_report_row_t *row)
{
    assert (self && row && index < self->total_count);
    s_row_info (&self->totals[index], row);
}

/* Returns a day bound as a JSON string, or null when open. */
static json_t *
s_day_json (int64_t day)
{
    if (day == GKX_REPORT_OPEN) {
        return json_null ();
    }
    char text[GKX_CONVERSION_DAY_TEXT_BYTES];
    gkx_conversion_day_text (text, (uint64_t) day);
    return json_string (text);
}

/* Returns one row or total as a JSON object. */
static json_t *
s_row_json (const s_row_t *r, bool with_key)
{
    char amount[GKX_REPORT_AMOUNT_TEXT_BYTES];
    gkx_report_amount_text (amount, r->payout);
    json_t *obj = json_object ();
    json_object_set_new (obj, "count", json_integer ((json_int_t) r->count));
    json_object_set_new (obj, "currency", json_string (r->currency));
    if (with_key) {
        json_object_set_new (obj, "key", r->has_key ? json_string (r->key) : json_null ());
    }
    json_object_set_new (obj, "payout", json_string (amount));
    return obj;
}

json_t *
gkx_report_table_to_json (const gkx_report_table_t *self)
{
    assert (self);
    char hex[GKX_REPORT_DIGEST_HEX_BYTES];
    sodium_bin2hex (hex, sizeof (hex), self->digest, GKX_REPORT_DIGEST_BYTES);
    json_t *rows = json_array ();
    for (size_t i = 0; i < self->row_count; i++) {
        json_array_append_new (rows, s_row_json (&self->rows[i], true));
    }
    json_t *totals = json_array ();
    for (size_t i = 0; i < self->total_count; i++) {
        json_array_append_new (totals, s_row_json (&self->totals[i], false));
    }
    json_t *out = json_object ();
    json_object_set_new (out, "by", json_string (s_by_words[self->query.by]));
    json_object_set_new (out, "digest", json_string (hex));
    json_object_set_new (out, "from", s_day_json (self->query.from_day));
    json_object_set_new (out, "rows", rows);
    json_object_set_new (out, "to", s_day_json (self->query.to_day));
    json_object_set_new (out, "totals", totals);
    return out;
}

/* Appends one CSV line: key (NULL: empty), currency, count, payout. */
static void
s_csv_line (s_text_t *t, const char *key, const s_row_t *r)
{
    char count[S_COUNT_TEXT_BYTES];
    char amount[GKX_REPORT_AMOUNT_TEXT_BYTES];
    snprintf (count, sizeof (count), "%" PRIu64, r->count);
    gkx_report_amount_text (amount, r->payout);
    s_csv_field (t, key ? key : "");
    s_text_add (t, ",", 1);
    s_csv_field (t, r->currency);
    s_text_add (t, ",", 1);
    s_text_str (t, count);
    s_text_add (t, ",", 1);
    s_text_str (t, amount);
    s_text_add (t, "\r\n", 2);
}

char *
gkx_report_table_to_csv (const gkx_report_table_t *self)
{
    assert (self);
    s_text_t t = {NULL, 0, 0};
    s_text_str (&t, s_by_words[self->query.by]);
    s_text_str (&t, ",currency,count,payout\r\n");
    for (size_t i = 0; i < self->row_count; i++) {
        const s_row_t *r = &self->rows[i];
        s_csv_line (&t, r->has_key ? r->key : NULL, r);
    }
    for (size_t i = 0; i < self->total_count; i++) {
        s_csv_line (&t, GKX_REPORT_CSV_TOTAL, &self->totals[i]);
    }
    return t.data;
}

void
gkx_report_table_digest (const gkx_report_table_t *self, uint8_t digest[GKX_REPORT_DIGEST_BYTES],
                         char hex[GKX_REPORT_DIGEST_HEX_BYTES])
{
    assert (self && digest);
    memcpy (digest, self->digest, GKX_REPORT_DIGEST_BYTES);
    if (hex) {
        sodium_bin2hex (hex, GKX_REPORT_DIGEST_HEX_BYTES, self->digest,
                        GKX_REPORT_DIGEST_BYTES);
    }
}
