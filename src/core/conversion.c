/*  conversion - conversion entry bodies and the rules that decide them.
    Part of gokart-exchange; MIT licence.

    Bodies are packed by hand in sorted key order and decoded with
    gkx_codec_decode, which already holds the bytes to the canonical rules
    (sorted unique keys, smallest integers, UTF-8, no floats); this file
    then checks the schema: exactly the known keys, each value's type and
    rule. One checker per field serves both encode (GKX_EINVAL) and decode
    (GKX_EBODY), so the two cannot disagree on what is valid.

    Country and currency codes are checked against the offer module's ISO
    tables (gkx_offer_is_country, gkx_offer_is_currency), so a conversion
    accepts exactly the codes an offer does.

    The decision reads the offer's terms from its canonical internal form
    (gkx_offer_encode), the same bytes the state digest covers, and is then
    plain integer arithmetic.
*/
#include <gkx/alloc.h>
#include <gkx/calendar.h>
#include <gkx/codec.h>
#include <gkx/conversion.h>
#include <gkx/error.h>
#include <gkx/hlc.h>
#include <gkx/offer.h>
#include <gkx/postback.h>

#include <assert.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include <msgpack.h>

/* Micro-units per unit. */
#define S_MICRO 1000000LL
/* A percentage in micro-units is divided by this to apply it: 100 * 10^6. */
#define S_PERCENT_DIVISOR (100LL * S_MICRO)
/* Longest part of a value quoted in a message. */
#define S_SHOW_MAX 40
/* Buffer for a quoted value: S_SHOW_MAX bytes, "...", NUL. */
#define S_SHOW_BYTES (S_SHOW_MAX + 4)
/* Buffer for "YYYY-MM-DDTHH:MM:SSZ" with room for the NUL. */
#define S_TIME_TEXT_BYTES 24
/* Days from 1969-12-29 (a Monday) to 1970-01-01 (a Thursday). */
#define S_EPOCH_WEEKDAY_OFFSET 3
/* Days of a week. */
#define S_WEEK_DAYS 7
/* Months of a year. */
#define S_YEAR_MONTHS 12
/* Seconds of an hour and of a minute. */
#define S_HOUR_SECONDS 3600
#define S_MINUTE_SECONDS 60
/* Milliseconds of a second. */
#define S_SECOND_MS 1000
/* First and last year of a day accepted by gkx_conversion_day_parse. */
#define S_YEAR_MIN 2000
#define S_YEAR_MAX 9999
/* Keys of a conversion body, in canonical (bytewise) order. */
#define S_CONVERSION_KEYS 12
/* Keys of a status change body. */
#define S_CHANGE_KEYS 3

/* The body carries the postback module's dedupe key as it is. */
_Static_assert (GKX_CONVERSION_DEDUPE_BYTES == GKX_POSTBACK_DEDUPE_BYTES,
                "a conversion's dedupe is a postback dedupe key");

/* Status words, indexed by gkx_conversion_status_t. */
static const char *const s_status_words[] = {NULL, "approved", "pending", "rejected",
                                             "reversed"};

/* Platform words, as the offer's targeting.platforms; NULL-terminated. */
static const char *const s_platform_words[] = {"ios", "android", "web", "other", NULL};

/* Fields of a conversion body, in canonical key order. */
typedef enum {
    S_F_CLICK_ID = 0,
    S_F_CLICK_TIME,
    S_F_COUNTRY,
    S_F_CURRENCY,
    S_F_DEDUPE,
    S_F_EVENT,
    S_F_PAYOUT,
    S_F_PLATFORM,
    S_F_REASON,
    S_F_STATUS,
    S_F_SUB,
    S_F_TIME,
} s_field_t;

/* Keys of a conversion body in canonical order, indexed by s_field_t. */
static const char *const s_keys[S_CONVERSION_KEYS] = {
    "click_id", "click_time", "country", "currency", "dedupe", "event",
    "payout",   "platform",   "reason",  "status",   "sub",    "time",
};

/* Keys of the "sub" map, indexed like gkx_conversion_t's sub. */
static const char *const s_sub_keys[GKX_CONVERSION_SUB_COUNT] = {"sub1", "sub2", "sub3",
                                                                 "sub4", "sub5"};

/* Keys of a status change body in canonical order. */
static const char *const s_change_keys[S_CHANGE_KEYS] = {"conversion", "reason", "status"};

/* Allowed status changes: s_transitions[from][to]. */
static const bool s_transitions[5][5] = {
    [GKX_CONVERSION_PENDING] = {[GKX_CONVERSION_APPROVED] = true,
                                [GKX_CONVERSION_REJECTED] = true},
    [GKX_CONVERSION_APPROVED] = {[GKX_CONVERSION_REJECTED] = true,
                                 [GKX_CONVERSION_REVERSED] = true},
    [GKX_CONVERSION_REJECTED] = {[GKX_CONVERSION_APPROVED] = true,
                                 [GKX_CONVERSION_PENDING] = true},
};

/* ---------------------------------------------------------------------- */
/* Small helpers                                                            */

/* Writes a value for a message: at most S_SHOW_MAX bytes, anything but
   printable ASCII (and quotes and backslashes) shown as "?", so a message
   is always short, ASCII and safe to put in JSON or a log. */
static void
s_show (char out[S_SHOW_BYTES], const char *text, size_t len)
{
    size_t n = len > S_SHOW_MAX ? S_SHOW_MAX : len;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char) text[i];
        out[i] = (c < 0x20 || c > 0x7e || c == '"' || c == '\\') ? '?' : (char) c;
    }
    if (len > S_SHOW_MAX) {
        memcpy (out + n, "...", 3);
        n += 3;
    }
    out[n] = '\0';
}

/* Whether text (len bytes) equals the C string word. */
static bool
s_is (const char *text, size_t len, const char *word)
{
    return strlen (word) == len && memcmp (text, word, len) == 0;
}

/* Index of text in a NULL-terminated word list, or -1. */
static int
s_word_index (const char *const *words, const char *text, size_t len)
{
    for (int i = 0; words[i]; i++) {
        if (s_is (text, len, words[i])) {
            return i;
        }
    }
    return -1;
}

/* Whether c may appear in an event name (as in offer event names). */
static bool
s_is_name_char (char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')
           || c == '_' || c == '.' || c == ':' || c == '-';
}

/* Whether text is 1 to max bytes of UTF-8 without control characters. */
static bool
s_is_line (const char *text, size_t len, size_t max)
{
    if (len < 1 || len > max || !gkx_codec_is_utf8 (text, len)) {
        return false;
    }
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char) text[i];
        if (c < 0x20 || c == 0x7f) {
            return false;
        }
    }
    return true;
}

/* Whether text is width upper-case ASCII letters. */
static bool
s_is_upper (const char *text, size_t len, size_t width)
{
    if (len != width) {
        return false;
    }
    for (size_t i = 0; i < len; i++) {
        if (text[i] < 'A' || text[i] > 'Z') {
            return false;
        }
    }
    return true;
}

/* Whether text is an ISO 3166-1 alpha-2 code the offer accepts. */
static bool
s_is_country (const char *text, size_t len)
{
    char code[3];
    if (!s_is_upper (text, len, 2)) {
        return false;
    }
    memcpy (code, text, 2);
    code[2] = '\0';
    return gkx_offer_is_country (code);
}

/* Whether text is an ISO 4217 code the offer accepts. */
static bool
s_is_currency (const char *text, size_t len)
{
    char code[4];
    if (!s_is_upper (text, len, 3)) {
        return false;
    }
    memcpy (code, text, 3);
    code[3] = '\0';
    return gkx_offer_is_currency (code);
}

/* Adds b >= 0 to a, saturating at INT64_MAX. */
static int64_t
s_add_saturating (int64_t a, int64_t b)
{
    return a > INT64_MAX - b ? INT64_MAX : a + b;
}

/* Copies len bytes of text into a C string buffer known to be larger. */
static void
s_copy (char *out, size_t out_size, const char *text, size_t len)
{
    assert (len < out_size);
    memcpy (out, text, len);
    out[len] = '\0';
}

/* ---------------------------------------------------------------------- */
/* Calendar (UTC, proleptic Gregorian; H. Hinnant's algorithms)             */


/* Civil date of a day count since 1970-01-01 (day >= 0). */
static void
s_civil_from_days (uint64_t day, unsigned *y_p, unsigned *m_p, unsigned *d_p)
{
    int64_t y;
    gkx_calendar_civil_from_days ((int64_t) day, &y, m_p, d_p);
    *y_p = (unsigned) y;
}

/* Writes v as exactly n decimal digits (the low ones). */
static void
s_digits (char *out, unsigned v, int n)
{
    for (int i = n - 1; i >= 0; i--) {
        out[i] = (char) ('0' + v % 10);
        v /= 10;
    }
}

/* Writes a day as "YYYY-MM-DD" (10 bytes, no NUL). */
static void
s_day_chars (char out[10], uint64_t day)
{
    unsigned y, m, d;
    s_civil_from_days (day, &y, &m, &d);
    s_digits (out, y, 4);
    out[4] = '-';
    s_digits (out + 5, m, 2);
    out[7] = '-';
    s_digits (out + 8, d, 2);
}

/* Writes Unix seconds as "YYYY-MM-DDTHH:MM:SSZ". */
static void
s_time_text (char out[S_TIME_TEXT_BYTES], uint64_t time)
{
    unsigned rem = (unsigned) (time % GKX_CONVERSION_DAY_SECONDS);
    s_day_chars (out, time / GKX_CONVERSION_DAY_SECONDS);
    out[10] = 'T';
    s_digits (out + 11, rem / S_HOUR_SECONDS, 2);
    out[13] = ':';
    s_digits (out + 14, rem / S_MINUTE_SECONDS % S_MINUTE_SECONDS, 2);
    out[16] = ':';
    s_digits (out + 17, rem % S_MINUTE_SECONDS, 2);
    out[19] = 'Z';
    out[20] = '\0';
}

void
gkx_conversion_periods (gkx_conversion_periods_t *periods, uint64_t time)
{
    assert (periods);
    unsigned y, m, d;
    periods->day = time / GKX_CONVERSION_DAY_SECONDS;
    periods->week = (periods->day + S_EPOCH_WEEKDAY_OFFSET) / S_WEEK_DAYS;
    s_civil_from_days (periods->day, &y, &m, &d);
    periods->month = (uint64_t) y * S_YEAR_MONTHS + m - 1;
}

void
gkx_conversion_day_text (char text[GKX_CONVERSION_DAY_TEXT_BYTES], uint64_t day)
{
    assert (text);
    s_day_chars (text, day);
    text[10] = '\0';
}

int
gkx_conversion_day_parse (uint64_t *day_p, const char *text, char *errbuf)
{
    assert (day_p && text);
    static const unsigned mdays[] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    unsigned v[3] = {0, 0, 0};
    static const size_t width[3] = {4, 2, 2};
    const char *p = text;
    bool ok = strlen (text) == 10;
    for (size_t part = 0; ok && part < 3; part++) {
        for (size_t i = 0; i < width[part]; i++, p++) {
            ok = ok && *p >= '0' && *p <= '9';
            v[part] = v[part] * 10 + (unsigned) (*p - '0');
        }
        ok = ok && (part == 2 || *p++ == '-');
    }
    unsigned y = v[0];
    unsigned m = v[1];
    unsigned d = v[2];
    bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    ok = ok && y >= S_YEAR_MIN && y <= S_YEAR_MAX && m >= 1 && m <= S_YEAR_MONTHS && d >= 1
         && d <= mdays[m - 1] && !(m == 2 && d == 29 && !leap);
    if (!ok) {
        char shown[S_SHOW_BYTES];
        s_show (shown, text, strlen (text));
        return gkx_fail (errbuf, GKX_EINVAL,
                         "date: \"%s\" is not a date YYYY-MM-DD from 2000-01-01 to 9999-12-31",
                         shown);
    }
    *day_p = (uint64_t) gkx_calendar_days_from_civil (y, m, d);
    return GKX_OK;
}

/* ---------------------------------------------------------------------- */
/* Field rules, shared by encode (GKX_EINVAL) and decode (GKX_EBODY)        */

/* Checks a click id: 1 to 128 printable ASCII characters without spaces. */
static int
s_check_click_id (const char *text, size_t len, const char *path, int code, char *errbuf)
{
    bool ok = len >= 1 && len <= GKX_CONVERSION_CLICK_ID_MAX;
    for (size_t i = 0; ok && i < len; i++) {
        ok = text[i] > 0x20 && text[i] < 0x7f;
    }
    if (!ok) {
        return gkx_fail (errbuf, code,
                         "%s: must be 1 to %d printable ASCII characters without spaces", path,
                         GKX_CONVERSION_CLICK_ID_MAX);
    }
    return GKX_OK;
}

/* Checks an ISO 3166-1 alpha-2 country code. */
static int
s_check_country (const char *text, size_t len, const char *path, int code, char *errbuf)
{
    if (!s_is_country (text, len)) {
        char shown[S_SHOW_BYTES];
        s_show (shown, text, len);
        return gkx_fail (errbuf, code, "%s: \"%s\" is not an ISO 3166-1 country code", path,
                         shown);
    }
    return GKX_OK;
}

/* Checks an ISO 4217 currency code. */
static int
s_check_currency (const char *text, size_t len, const char *path, int code, char *errbuf)
{
    if (!s_is_currency (text, len)) {
        char shown[S_SHOW_BYTES];
        s_show (shown, text, len);
        return gkx_fail (errbuf, code, "%s: \"%s\" is not an ISO 4217 currency code", path,
                         shown);
    }
    return GKX_OK;
}

/* Checks an event name: 1 to 64 of A-Z a-z 0-9 _ . : - */
static int
s_check_event (const char *text, size_t len, const char *path, int code, char *errbuf)
{
    bool ok = len >= 1 && len <= GKX_CONVERSION_EVENT_MAX;
    for (size_t i = 0; ok && i < len; i++) {
        ok = s_is_name_char (text[i]);
    }
    if (!ok) {
        char shown[S_SHOW_BYTES];
        s_show (shown, text, len);
        return gkx_fail (errbuf, code,
                         "%s: \"%s\" is not a name of 1 to 64 letters, digits or \"_.:-\"", path,
                         shown);
    }
    return GKX_OK;
}

/* Checks a platform word. */
static int
s_check_platform (const char *text, size_t len, const char *path, int code, char *errbuf)
{
    if (s_word_index (s_platform_words, text, len) < 0) {
        char shown[S_SHOW_BYTES];
        s_show (shown, text, len);
        return gkx_fail (errbuf, code, "%s: \"%s\" is not one of ios, android, web, other",
                         path, shown);
    }
    return GKX_OK;
}

/* Checks a reason or a sub-parameter value: 1 to max bytes of text
   without control characters. */
static int
s_check_line (const char *text, size_t len, size_t max, const char *path, int code,
              char *errbuf)
{
    if (!s_is_line (text, len, max)) {
        return gkx_fail (errbuf, code,
                         "%s: must be 1 to %zu bytes of UTF-8 text without control characters",
                         path, max);
    }
    return GKX_OK;
}

/* Checks a status word, allowing statuses 1 to last; sets *status_p. */
static int
s_check_status (const char *text, size_t len, int last, const char *path, int code,
                int *status_p, char *errbuf)
{
    for (int s = GKX_CONVERSION_APPROVED; s <= last; s++) {
        if (s_is (text, len, s_status_words[s])) {
            *status_p = s;
            return GKX_OK;
        }
    }
    char shown[S_SHOW_BYTES];
    s_show (shown, text, len);
    return gkx_fail (errbuf, code, "%s: \"%s\" is not one of %s", path, shown,
                     last == GKX_CONVERSION_REVERSED ? "approved, pending, rejected, reversed"
                                                     : "approved, pending, rejected");
}

/* Checks a payout: an integer of micro-units from 0 to AMOUNT_MAX. */
static int
s_check_payout (int64_t payout, const char *path, int code, char *errbuf)
{
    if (payout < 0 || payout > GKX_CONVERSION_AMOUNT_MAX) {
        return gkx_fail (errbuf, code, "%s: must be an integer from 0 to %lld micro-units",
                         path, GKX_CONVERSION_AMOUNT_MAX);
    }
    return GKX_OK;
}

/* Checks an event time in Unix seconds. */
static int
s_check_time (uint64_t time, const char *path, int code, char *errbuf)
{
    if (time < GKX_CONVERSION_TIME_MIN || time > GKX_CONVERSION_TIME_MAX) {
        return gkx_fail (errbuf, code,
                         "%s: must be a time from 2000-01-01T00:00:00Z to "
                         "9999-12-31T23:59:59Z",
                         path);
    }
    return GKX_OK;
}

/* Checks that a known click time (0: unknown) is not after the event: the
   click window is counted from the click, so a click after its own
   conversion would be a clock error that could stretch the window. */
static int
s_check_click_order (uint64_t click_time, uint64_t time, const char *path, int code, char *errbuf)
{
    if (click_time > time) {
        return gkx_fail (errbuf, code, "%s: must not be after conversion.time", path);
    }
    return GKX_OK;
}

/* Checks that the reason fits the status: none when approved, one when
   rejected. */
static int
s_check_reason_fits (int status, size_t reason_len, const char *path, int code, char *errbuf)
{
    if (status == GKX_CONVERSION_APPROVED && reason_len > 0) {
        return gkx_fail (errbuf, code, "%s: must be nil when the status is approved", path);
    }
    if (status == GKX_CONVERSION_REJECTED && reason_len == 0) {
        return gkx_fail (errbuf, code, "%s: is required when the status is rejected", path);
    }
    return GKX_OK;
}

/* Length of a C string held in an array of size bytes; size when it is not
   terminated there, which every rule then refuses as too long. */
static size_t
s_len (const char *text, size_t size)
{
    return strnlen (text, size);
}

/* Checks every field of a conversion struct, in key order. */
static int
s_check_conversion (const gkx_conversion_t *c, int code, char *errbuf)
{
    char path[GKX_ERRBUF_BYTES];
    int rc = s_check_click_id (c->click_id, s_len (c->click_id, sizeof (c->click_id)),
                               "conversion.click_id", code, errbuf);
    if (!rc && c->click_time != 0) {
        rc = s_check_time (c->click_time, "conversion.click_time", code, errbuf);
    }
    size_t len = s_len (c->country, sizeof (c->country));
    if (!rc && len > 0) {
        rc = s_check_country (c->country, len, "conversion.country", code, errbuf);
    }
    if (!rc) {
        rc = s_check_currency (c->currency, s_len (c->currency, sizeof (c->currency)),
                               "conversion.currency", code, errbuf);
    }
    if (!rc) {
        rc = s_check_event (c->event, s_len (c->event, sizeof (c->event)), "conversion.event",
                            code, errbuf);
    }
    if (!rc) {
        rc = s_check_payout (c->payout, "conversion.payout", code, errbuf);
    }
    len = s_len (c->platform, sizeof (c->platform));
    if (!rc && len > 0) {
        rc = s_check_platform (c->platform, len, "conversion.platform", code, errbuf);
    }
    size_t reason_len = s_len (c->reason, sizeof (c->reason));
    if (!rc && reason_len > 0) {
        rc = s_check_line (c->reason, reason_len, GKX_CONVERSION_REASON_MAX,
                           "conversion.reason", code, errbuf);
    }
    if (!rc && (c->status < GKX_CONVERSION_APPROVED || c->status > GKX_CONVERSION_REJECTED)) {
        rc = gkx_fail (errbuf, code,
                       "conversion.status: must be approved, pending or rejected");
    }
    for (int i = 0; !rc && i < GKX_CONVERSION_SUB_COUNT; i++) {
        len = s_len (c->sub[i], sizeof (c->sub[i]));
        if (len > 0) {
            snprintf (path, sizeof (path), "conversion.sub.%s", s_sub_keys[i]);
            rc = s_check_line (c->sub[i], len, GKX_CONVERSION_SUB_MAX, path, code, errbuf);
        }
    }
    if (!rc) {
        rc = s_check_time (c->time, "conversion.time", code, errbuf);
    }
    if (!rc) {
        rc = s_check_click_order (c->click_time, c->time, "conversion.click_time", code, errbuf);
    }
    if (!rc) {
        rc = s_check_reason_fits (c->status, reason_len, "conversion.reason", code, errbuf);
    }
    return rc;
}

/* Checks every field of a status change struct, in key order. */
static int
s_check_change (const gkx_conversion_change_t *c, int code, char *errbuf)
{
    size_t len = s_len (c->reason, sizeof (c->reason));
    if (len > 0) {
        int rc = s_check_line (c->reason, len, GKX_CONVERSION_REASON_MAX,
                               "conversion_status.reason", code, errbuf);
        if (rc) {
            return rc;
        }
    }
    if (c->status < GKX_CONVERSION_APPROVED || c->status > GKX_CONVERSION_REVERSED) {
        return gkx_fail (errbuf, code,
                         "conversion_status.status: must be approved, pending, rejected or "
                         "reversed");
    }
    return GKX_OK;
}

/* ---------------------------------------------------------------------- */
/* Names                                                                    */

const char *
gkx_conversion_status_name (int status)
{
    if (status < GKX_CONVERSION_APPROVED || status > GKX_CONVERSION_REVERSED) {
        return NULL;
    }
    return s_status_words[status];
}

int
gkx_conversion_status_parse (const char *text, int *status_p)
{
    assert (text && status_p);
    for (int s = GKX_CONVERSION_APPROVED; s <= GKX_CONVERSION_REVERSED; s++) {
        if (strcmp (text, s_status_words[s]) == 0) {
            *status_p = s;
            return GKX_OK;
        }
    }
    return GKX_EINVAL;
}

/* ---------------------------------------------------------------------- */
/* Bodies                                                                   */

/* Packs a C string, or nil when it is empty. */
static void
s_pack_cstr_or_nil (msgpack_packer *pk, const char *text)
{
    if (text[0]) {
        gkx_codec_pack_cstr (pk, text);
    }
    else {
        msgpack_pack_nil (pk);
    }
}

/* Copies a packed buffer out to the caller. */
static void
s_sbuffer_out (msgpack_sbuffer *sbuf, uint8_t **body_p, size_t *len_p)
{
    *body_p = gkx_memdup (sbuf->data, sbuf->size);
    *len_p = sbuf->size;
    msgpack_sbuffer_destroy (sbuf);
}

int
gkx_conversion_encode (uint8_t **body_p, size_t *len_p, const gkx_conversion_t *conversion,
                       char *errbuf)
{
    assert (body_p && len_p && conversion);
    const gkx_conversion_t *c = conversion;
    int rc = s_check_conversion (c, GKX_EINVAL, errbuf);
    if (rc) {
        return rc;
    }
    msgpack_sbuffer sbuf;
    msgpack_packer pk;
    msgpack_sbuffer_init (&sbuf);
    msgpack_packer_init (&pk, &sbuf, msgpack_sbuffer_write);
    msgpack_pack_map (&pk, S_CONVERSION_KEYS);
    gkx_codec_pack_cstr (&pk, s_keys[S_F_CLICK_ID]);
    gkx_codec_pack_cstr (&pk, c->click_id);
    gkx_codec_pack_cstr (&pk, s_keys[S_F_CLICK_TIME]);
    if (c->click_time) {
        msgpack_pack_uint64 (&pk, c->click_time);
    }
    else {
        msgpack_pack_nil (&pk);
    }
    gkx_codec_pack_cstr (&pk, s_keys[S_F_COUNTRY]);
    s_pack_cstr_or_nil (&pk, c->country);
    gkx_codec_pack_cstr (&pk, s_keys[S_F_CURRENCY]);
    gkx_codec_pack_cstr (&pk, c->currency);
    gkx_codec_pack_cstr (&pk, s_keys[S_F_DEDUPE]);
    gkx_codec_pack_bin (&pk, c->dedupe, GKX_CONVERSION_DEDUPE_BYTES);
    gkx_codec_pack_cstr (&pk, s_keys[S_F_EVENT]);
    gkx_codec_pack_cstr (&pk, c->event);
    gkx_codec_pack_cstr (&pk, s_keys[S_F_PAYOUT]);
    msgpack_pack_uint64 (&pk, (uint64_t) c->payout);
    gkx_codec_pack_cstr (&pk, s_keys[S_F_PLATFORM]);
    s_pack_cstr_or_nil (&pk, c->platform);
    gkx_codec_pack_cstr (&pk, s_keys[S_F_REASON]);
    s_pack_cstr_or_nil (&pk, c->reason);
    gkx_codec_pack_cstr (&pk, s_keys[S_F_STATUS]);
    gkx_codec_pack_cstr (&pk, s_status_words[c->status]);
    gkx_codec_pack_cstr (&pk, s_keys[S_F_SUB]);
    size_t subs = 0;
    for (int i = 0; i < GKX_CONVERSION_SUB_COUNT; i++) {
        subs += c->sub[i][0] != '\0';
    }
    msgpack_pack_map (&pk, subs);
    for (int i = 0; i < GKX_CONVERSION_SUB_COUNT; i++) {
        if (c->sub[i][0]) {
            gkx_codec_pack_cstr (&pk, s_sub_keys[i]);
            gkx_codec_pack_cstr (&pk, c->sub[i]);
        }
    }
    gkx_codec_pack_cstr (&pk, s_keys[S_F_TIME]);
    msgpack_pack_uint64 (&pk, c->time);
    s_sbuffer_out (&sbuf, body_p, len_p);
    return GKX_OK;
}

/* Reads a string field; nil is allowed when nullable and reads as NULL
   with length 0. */
static int
s_get_str (const msgpack_object *o, bool nullable, const char **text_p, size_t *len_p,
           const char *path, char *errbuf)
{
    *text_p = NULL;
    *len_p = 0;
    if (nullable && o->type == MSGPACK_OBJECT_NIL) {
        return GKX_OK;
    }
    if (o->type != MSGPACK_OBJECT_STR) {
        return gkx_fail (errbuf, GKX_EBODY, "%s: must be a string%s", path,
                         nullable ? " or nil" : "");
    }
    *text_p = o->via.str.size ? o->via.str.ptr : "";
    *len_p = o->via.str.size;
    return GKX_OK;
}

/* Reads a non-negative integer field. */
static int
s_get_uint (const msgpack_object *o, uint64_t *value_p, const char *path, char *errbuf)
{
    if (o->type != MSGPACK_OBJECT_POSITIVE_INTEGER) {
        return gkx_fail (errbuf, GKX_EBODY, "%s: must be a non-negative integer", path);
    }
    *value_p = o->via.u64;
    return GKX_OK;
}

/* Finds the fields of a decoded map: values[i] for keys[i], NULL when
   absent. Refuses a non-map, an unknown key and a missing one. */
static int
s_fields (const msgpack_object *root, const char *const *keys, size_t count,
          const msgpack_object **values, const char *what, char *errbuf)
{
    if (root->type != MSGPACK_OBJECT_MAP) {
        return gkx_fail (errbuf, GKX_EBODY, "%s: must be a map", what);
    }
    for (size_t i = 0; i < count; i++) {
        values[i] = NULL;
    }
    for (uint32_t i = 0; i < root->via.map.size; i++) {
        const msgpack_object *k = &root->via.map.ptr[i].key;
        size_t found = count;
        for (size_t j = 0; j < count; j++) {
            if (s_is (k->via.str.ptr, k->via.str.size, keys[j])) {
                found = j;
            }
        }
        if (found == count) {
            char shown[S_SHOW_BYTES];
            s_show (shown, k->via.str.ptr, k->via.str.size);
            return gkx_fail (errbuf, GKX_EBODY, "%s.%s: unknown field", what, shown);
        }
        values[found] = &root->via.map.ptr[i].val;
    }
    for (size_t j = 0; j < count; j++) {
        if (!values[j]) {
            return gkx_fail (errbuf, GKX_EBODY, "%s.%s: is required", what, keys[j]);
        }
    }
    return GKX_OK;
}

/* Reads the "sub" map into c->sub. */
static int
s_decode_sub (gkx_conversion_t *c, const msgpack_object *o, char *errbuf)
{
    char path[GKX_ERRBUF_BYTES];
    if (o->type != MSGPACK_OBJECT_MAP) {
        return gkx_fail (errbuf, GKX_EBODY, "conversion.sub: must be a map");
    }
    for (uint32_t i = 0; i < o->via.map.size; i++) {
        const msgpack_object *k = &o->via.map.ptr[i].key;
        const msgpack_object *v = &o->via.map.ptr[i].val;
        int index = -1;
        for (int j = 0; j < GKX_CONVERSION_SUB_COUNT; j++) {
            if (s_is (k->via.str.ptr, k->via.str.size, s_sub_keys[j])) {
                index = j;
            }
        }
        if (index < 0) {
            char shown[S_SHOW_BYTES];
            s_show (shown, k->via.str.ptr, k->via.str.size);
            return gkx_fail (errbuf, GKX_EBODY, "conversion.sub.%s: unknown field", shown);
        }
        snprintf (path, sizeof (path), "conversion.sub.%s", s_sub_keys[index]);
        const char *text;
        size_t len;
        int rc = s_get_str (v, false, &text, &len, path, errbuf);
        if (!rc) {
            rc = s_check_line (text, len, GKX_CONVERSION_SUB_MAX, path, GKX_EBODY, errbuf);
        }
        if (rc) {
            return rc;
        }
        s_copy (c->sub[index], sizeof (c->sub[index]), text, len);
    }
    return GKX_OK;
}

/* Reads one string field of a conversion body with its rule and copies it
   into out (size bytes). */
static int
s_decode_text (const msgpack_object *o, bool nullable,
               int (*check) (const char *, size_t, const char *, int, char *), char *out,
               size_t size, const char *path, char *errbuf)
{
    const char *text;
    size_t len;
    int rc = s_get_str (o, nullable, &text, &len, path, errbuf);
    if (!rc && text) {
        rc = check (text, len, path, GKX_EBODY, errbuf);
    }
    if (!rc) {
        s_copy (out, size, text ? text : "", len);
    }
    return rc;
}

/* Checks a reason (the rule shared by both bodies) with s_decode_text's
   signature. */
static int
s_check_reason (const char *text, size_t len, const char *path, int code, char *errbuf)
{
    return s_check_line (text, len, GKX_CONVERSION_REASON_MAX, path, code, errbuf);
}

/* Decodes the body's fields into c, in key order. */
static int
s_decode_conversion (gkx_conversion_t *c, const msgpack_object *root, char *errbuf)
{
    const msgpack_object *v[S_CONVERSION_KEYS];
    int rc = s_fields (root, s_keys, S_CONVERSION_KEYS, v, "conversion", errbuf);
    if (!rc) {
        const char *text;
        size_t len;
        rc = s_get_str (v[S_F_CLICK_ID], false, &text, &len, "conversion.click_id", errbuf);
        if (!rc) {
            rc = s_check_click_id (text, len, "conversion.click_id", GKX_EBODY, errbuf);
        }
        if (!rc) {
            s_copy (c->click_id, sizeof (c->click_id), text, len);
        }
    }
    if (!rc && v[S_F_CLICK_TIME]->type != MSGPACK_OBJECT_NIL) {
        /* nil is the one encoding of an unknown click time, so 0 is refused
           as a time like any other out of range */
        if (v[S_F_CLICK_TIME]->type != MSGPACK_OBJECT_POSITIVE_INTEGER) {
            rc = gkx_fail (errbuf, GKX_EBODY,
                           "conversion.click_time: must be a non-negative integer or nil");
        }
        else {
            c->click_time = v[S_F_CLICK_TIME]->via.u64;
            rc = s_check_time (c->click_time, "conversion.click_time", GKX_EBODY, errbuf);
        }
    }
    if (!rc) {
        rc = s_decode_text (v[S_F_COUNTRY], true, s_check_country, c->country,
                            sizeof (c->country), "conversion.country", errbuf);
    }
    if (!rc) {
        rc = s_decode_text (v[S_F_CURRENCY], false, s_check_currency, c->currency,
                            sizeof (c->currency), "conversion.currency", errbuf);
    }
    if (!rc) {
        const msgpack_object *o = v[S_F_DEDUPE];
        if (o->type != MSGPACK_OBJECT_BIN || o->via.bin.size != GKX_CONVERSION_DEDUPE_BYTES) {
            rc = gkx_fail (errbuf, GKX_EBODY, "conversion.dedupe: must be a %d-byte bin",
                           GKX_CONVERSION_DEDUPE_BYTES);
        }
        else {
            memcpy (c->dedupe, o->via.bin.ptr, GKX_CONVERSION_DEDUPE_BYTES);
        }
    }
    if (!rc) {
        rc = s_decode_text (v[S_F_EVENT], false, s_check_event, c->event, sizeof (c->event),
                            "conversion.event", errbuf);
    }
    if (!rc) {
        const msgpack_object *o = v[S_F_PAYOUT];
        if (o->type != MSGPACK_OBJECT_POSITIVE_INTEGER
            && o->type != MSGPACK_OBJECT_NEGATIVE_INTEGER) {
            rc = gkx_fail (errbuf, GKX_EBODY, "conversion.payout: must be an integer");
        }
        else if (o->type == MSGPACK_OBJECT_NEGATIVE_INTEGER
                 || o->via.u64 > (uint64_t) GKX_CONVERSION_AMOUNT_MAX) {
            rc = s_check_payout (-1, "conversion.payout", GKX_EBODY, errbuf);
        }
        else {
            c->payout = (int64_t) o->via.u64;
        }
    }
    if (!rc) {
        rc = s_decode_text (v[S_F_PLATFORM], true, s_check_platform, c->platform,
                            sizeof (c->platform), "conversion.platform", errbuf);
    }
    if (!rc) {
        rc = s_decode_text (v[S_F_REASON], true, s_check_reason, c->reason,
                            sizeof (c->reason), "conversion.reason", errbuf);
    }
    if (!rc) {
        const char *text;
        size_t len;
        rc = s_get_str (v[S_F_STATUS], false, &text, &len, "conversion.status", errbuf);
        if (!rc) {
            rc = s_check_status (text, len, GKX_CONVERSION_REJECTED, "conversion.status",
                                 GKX_EBODY, &c->status, errbuf);
        }
    }
    if (!rc) {
        rc = s_decode_sub (c, v[S_F_SUB], errbuf);
    }
    if (!rc) {
        rc = s_get_uint (v[S_F_TIME], &c->time, "conversion.time", errbuf);
    }
    if (!rc) {
        rc = s_check_time (c->time, "conversion.time", GKX_EBODY, errbuf);
    }
    if (!rc) {
        rc = s_check_click_order (c->click_time, c->time, "conversion.click_time", GKX_EBODY,
                                  errbuf);
    }
    if (!rc) {
        rc = s_check_reason_fits (c->status, strlen (c->reason), "conversion.reason",
                                  GKX_EBODY, errbuf);
    }
    return rc;
}

/* Decodes canonical msgpack with the codec, mapping its codes to
   GKX_EBODY (its message already names what and where). */
static int
s_decode_root (msgpack_object *root, msgpack_zone *zone, const uint8_t *body, size_t len,
               const char *what, char *errbuf)
{
    int rc = gkx_codec_decode (root, zone, body ? body : (const uint8_t *) "", len, what,
                               errbuf);
    return rc ? GKX_EBODY : GKX_OK;
}

int
gkx_conversion_decode (gkx_conversion_t *conversion, const uint8_t *body, size_t len,
                       char *errbuf)
{
    assert (conversion);
    msgpack_zone zone;
    msgpack_object root;
    msgpack_zone_init (&zone, MSGPACK_ZONE_CHUNK_SIZE);
    gkx_conversion_t c;
    memset (&c, 0, sizeof (c));
    int rc = s_decode_root (&root, &zone, body, len, "conversion", errbuf);
    if (!rc) {
        rc = s_decode_conversion (&c, &root, errbuf);
    }
    if (!rc) {
        *conversion = c;
    }
    msgpack_zone_destroy (&zone);
    return rc;
}

int
gkx_conversion_change_encode (uint8_t **body_p, size_t *len_p,
                              const gkx_conversion_change_t *change, char *errbuf)
{
    assert (body_p && len_p && change);
    int rc = s_check_change (change, GKX_EINVAL, errbuf);
    if (rc) {
        return rc;
    }
    msgpack_sbuffer sbuf;
    msgpack_packer pk;
    msgpack_sbuffer_init (&sbuf);
    msgpack_packer_init (&pk, &sbuf, msgpack_sbuffer_write);
    msgpack_pack_map (&pk, S_CHANGE_KEYS);
    gkx_codec_pack_cstr (&pk, s_change_keys[0]);
    gkx_codec_pack_bin (&pk, change->conversion, GKX_CONVERSION_ID_BYTES);
    gkx_codec_pack_cstr (&pk, s_change_keys[1]);
    s_pack_cstr_or_nil (&pk, change->reason);
    gkx_codec_pack_cstr (&pk, s_change_keys[2]);
    gkx_codec_pack_cstr (&pk, s_status_words[change->status]);
    s_sbuffer_out (&sbuf, body_p, len_p);
    return GKX_OK;
}

int
gkx_conversion_change_decode (gkx_conversion_change_t *change, const uint8_t *body, size_t len,
                              char *errbuf)
{
    assert (change);
    msgpack_zone zone;
    msgpack_object root;
    const msgpack_object *v[S_CHANGE_KEYS];
    gkx_conversion_change_t c;
    memset (&c, 0, sizeof (c));
    msgpack_zone_init (&zone, MSGPACK_ZONE_CHUNK_SIZE);
    int rc = s_decode_root (&root, &zone, body, len, "conversion_status", errbuf);
    if (!rc) {
        rc = s_fields (&root, s_change_keys, S_CHANGE_KEYS, v, "conversion_status", errbuf);
    }
    if (!rc) {
        if (v[0]->type != MSGPACK_OBJECT_BIN || v[0]->via.bin.size != GKX_CONVERSION_ID_BYTES) {
            rc = gkx_fail (errbuf, GKX_EBODY,
                           "conversion_status.conversion: must be a %d-byte entry hash",
                           GKX_CONVERSION_ID_BYTES);
        }
        else {
            memcpy (c.conversion, v[0]->via.bin.ptr, GKX_CONVERSION_ID_BYTES);
        }
    }
    if (!rc) {
        rc = s_decode_text (v[1], true, s_check_reason, c.reason, sizeof (c.reason),
                            "conversion_status.reason", errbuf);
    }
    if (!rc) {
        const char *text;
        size_t slen;
        rc = s_get_str (v[2], false, &text, &slen, "conversion_status.status", errbuf);
        if (!rc) {
            rc = s_check_status (text, slen, GKX_CONVERSION_REVERSED,
                                 "conversion_status.status", GKX_EBODY, &c.status, errbuf);
        }
    }
    if (!rc) {
        *change = c;
    }
    msgpack_zone_destroy (&zone);
    return rc;
}

/* ---------------------------------------------------------------------- */
/* Terms and counters                                                       */

/* Returns an integer field of an offer, or GKX_CONVERSION_NONE for null.
   Read from the offer's tree: encoding the offer to read eight numbers was a
   quarter of a conversion's cost. */
static int64_t
s_term_int (const gkx_offer_t *offer, const char *path)
{
    const json_t *v = gkx_offer_value (offer, path);
    assert (v);
    if (json_is_null (v)) {
        return GKX_CONVERSION_NONE;
    }
    assert (json_is_integer (v) && json_integer_value (v) >= 0);
    return (int64_t) json_integer_value (v);
}

/* Whether a string field of an offer equals word. */
static bool
s_term_is (const gkx_offer_t *offer, const char *path, const char *word)
{
    const json_t *v = gkx_offer_value (offer, path);
    assert (v && json_is_string (v));
    return strcmp (json_string_value (v), word) == 0;
}

void
gkx_conversion_terms_read (gkx_conversion_terms_t *terms, const gkx_offer_t *offer)
{
    assert (terms && offer);
    memset (terms, 0, sizeof (*terms));
    terms->paused = s_term_is (offer, "status", "paused");
    terms->revshare = s_term_is (offer, "payout.model", "revshare");
    const json_t *currency = gkx_offer_value (offer, "payout.currency");
    assert (currency && json_is_string (currency) && json_string_length (currency) == 3);
    s_copy (terms->currency, sizeof (terms->currency), json_string_value (currency), 3);
    terms->schedule_start = s_term_int (offer, "schedule.start");
    terms->schedule_end = s_term_int (offer, "schedule.end");
    terms->cap_daily = s_term_int (offer, "caps.daily");
    terms->cap_weekly = s_term_int (offer, "caps.weekly");
    terms->cap_monthly = s_term_int (offer, "caps.monthly");
    terms->cap_total = s_term_int (offer, "caps.total");
    terms->budget_daily = s_term_int (offer, "budget.daily");
    terms->budget_monthly = s_term_int (offer, "budget.monthly");
    terms->budget_total = s_term_int (offer, "budget.total");
    terms->manual = s_term_is (offer, "conversion_policy.approval", "manual");
    terms->hold_days = (uint32_t) s_term_int (offer, "conversion_policy.hold_days");
    terms->click_window_days = (uint32_t) s_term_int (offer, "attribution.click_window_days");
}

void
gkx_conversion_counters_init (gkx_conversion_counters_t *self, uint64_t time)
{
    assert (self);
    memset (self, 0, sizeof (*self));
    gkx_conversion_periods (&self->periods, time);
}

void
gkx_conversion_counters_add (gkx_conversion_counters_t *self, uint64_t time, int status,
                             int64_t payout)
{
    assert (self && payout >= 0);
    if (status != GKX_CONVERSION_APPROVED && status != GKX_CONVERSION_PENDING) {
        return;
    }
    gkx_conversion_periods_t p;
    gkx_conversion_periods (&p, time);
    self->total_count++;
    self->total_payout = s_add_saturating (self->total_payout, payout);
    if (p.day == self->periods.day) {
        self->day_count++;
        self->day_payout = s_add_saturating (self->day_payout, payout);
    }
    if (p.week == self->periods.week) {
        self->week_count++;
    }
    if (p.month == self->periods.month) {
        self->month_count++;
        self->month_payout = s_add_saturating (self->month_payout, payout);
    }
}

/* ---------------------------------------------------------------------- */
/* The decision                                                             */

/* Whether a count has reached a cap (GKX_CONVERSION_NONE: no cap). */
static bool
s_cap_reached (int64_t cap, uint64_t count)
{
    return cap != GKX_CONVERSION_NONE && count >= (uint64_t) cap;
}

/* Whether spent plus payout would go over a budget (NONE: no budget). */
static bool
s_budget_over (int64_t budget, int64_t spent, int64_t payout)
{
    return budget != GKX_CONVERSION_NONE && (spent > budget || payout > budget - spent);
}

/* Applies a revshare percentage (micro-units of a percent) to revenue,
   rounding down, without overflow: revenue is split by the divisor so
   each product stays below 10^16. */
static int64_t
s_revshare (int64_t revenue, int64_t percent)
{
    int64_t whole = revenue / S_PERCENT_DIVISOR;
    int64_t rest = revenue % S_PERCENT_DIVISOR;
    return whole * percent + rest * percent / S_PERCENT_DIVISOR;
}

/* Whether the click came before the pause and the event within the click
   window: the pause did not stop that click, and what it brings within the
   window the offer promised still converts. A click time or a pause time
   that is unknown (0) never qualifies; a click in the very second the
   pause was written does not either, since the order inside that second
   is not known. */
static bool
s_is_before_pause (const gkx_conversion_terms_t *t, const gkx_conversion_counters_t *n,
                   uint64_t time, uint64_t click_time)
{
    uint64_t window = (uint64_t) t->click_window_days * GKX_CONVERSION_DAY_SECONDS;
    return click_time != 0 && click_time < n->paused_since && time <= click_time + window;
}

/* Applies the status rules in their order of precedence. */
static void
s_decide (gkx_conversion_decision_t *d, const gkx_conversion_terms_t *t,
          const gkx_conversion_counters_t *n, uint64_t time, uint64_t click_time, bool mmp_rejected,
          const char *mmp_reason, int64_t payout)
{
    const char *reason = NULL;
    d->payout = payout;
    d->status = GKX_CONVERSION_REJECTED;
    d->reason[0] = '\0';
    if (mmp_rejected && mmp_reason && mmp_reason[0]) {
        snprintf (d->reason, sizeof (d->reason), "%s%s", GKX_CONVERSION_REASON_MMP_PREFIX,
                  mmp_reason);
        return;
    }
    if (mmp_rejected) {
        snprintf (d->reason, sizeof (d->reason), "%s", GKX_CONVERSION_REASON_MMP);
        return;
    }
    if (t->paused && !s_is_before_pause (t, n, time, click_time)) {
        reason = GKX_CONVERSION_REASON_PAUSED;
    }
    else if ((t->schedule_end != GKX_CONVERSION_NONE && (uint64_t) t->schedule_end < time)
             || (t->schedule_start != GKX_CONVERSION_NONE
                 && (uint64_t) t->schedule_start > time)) {
        reason = GKX_CONVERSION_REASON_EXPIRED;
    }
    else if (s_cap_reached (t->cap_daily, n->day_count)
             || s_cap_reached (t->cap_weekly, n->week_count)
             || s_cap_reached (t->cap_monthly, n->month_count)
             || s_cap_reached (t->cap_total, n->total_count)) {
        reason = GKX_CONVERSION_REASON_CAP;
    }
    else if (s_budget_over (t->budget_daily, n->day_payout, payout)
             || s_budget_over (t->budget_monthly, n->month_payout, payout)
             || s_budget_over (t->budget_total, n->total_payout, payout)) {
        reason = GKX_CONVERSION_REASON_BUDGET;
    }
    if (reason) {
        snprintf (d->reason, sizeof (d->reason), "%s", reason);
        return;
    }
    d->status = t->manual ? GKX_CONVERSION_PENDING : GKX_CONVERSION_APPROVED;
}

/* Checks the facts of a postback. */
static int
s_check_facts (const gkx_conversion_facts_t *f, char *errbuf)
{
    if (!f->event) {
        return gkx_fail (errbuf, GKX_EINVAL, "conversion.event: is required");
    }
    int rc = s_check_event (f->event, strlen (f->event), "conversion.event", GKX_EINVAL,
                            errbuf);
    if (!rc && f->country) {
        rc = s_check_country (f->country, strlen (f->country), "conversion.country",
                              GKX_EINVAL, errbuf);
    }
    if (!rc && f->platform) {
        rc = s_check_platform (f->platform, strlen (f->platform), "conversion.platform",
                               GKX_EINVAL, errbuf);
    }
    if (!rc) {
        rc = s_check_time (f->time, "conversion.time", GKX_EINVAL, errbuf);
    }
    if (!rc && f->click_time != 0) {
        rc = s_check_time (f->click_time, "conversion.click_time", GKX_EINVAL, errbuf);
    }
    if (!rc) {
        rc = s_check_click_order (f->click_time, f->time, "conversion.click_time", GKX_EINVAL,
                                  errbuf);
    }
    size_t room = GKX_CONVERSION_REASON_MAX - strlen (GKX_CONVERSION_REASON_MMP_PREFIX);
    if (!rc && f->mmp_rejected && f->mmp_reason && f->mmp_reason[0]
        && !s_is_line (f->mmp_reason, strlen (f->mmp_reason), room)) {
        rc = gkx_fail (errbuf, GKX_EINVAL,
                       "mmp_reason: must be at most %zu bytes of UTF-8 text without control "
                       "characters",
                       room);
    }
    if (!rc && f->has_revenue && (f->revenue < 0 || f->revenue > GKX_CONVERSION_AMOUNT_MAX)) {
        rc = gkx_fail (errbuf, GKX_EINVAL, "revenue: must be an integer from 0 to %lld micro-units",
                       GKX_CONVERSION_AMOUNT_MAX);
    }
    return rc;
}

/* Asserts that counters were started for the conversion's time. */
static void
s_assert_periods (const gkx_conversion_counters_t *counters, uint64_t time)
{
    gkx_conversion_periods_t p;
    gkx_conversion_periods (&p, time);
    assert (p.day == counters->periods.day && p.week == counters->periods.week
            && p.month == counters->periods.month);
    (void) p;
}

int
gkx_conversion_decide (gkx_conversion_decision_t *decision, const gkx_offer_t *offer,
                       const gkx_conversion_counters_t *counters,
                       const gkx_conversion_facts_t *facts, char *errbuf)
{
    assert (decision && offer && counters && facts);
    int rc = s_check_facts (facts, errbuf);
    if (rc) {
        return rc;
    }
    s_assert_periods (counters, facts->time);
    gkx_conversion_terms_t terms;
    gkx_conversion_terms_read (&terms, offer);
    int64_t payout = gkx_offer_payout (offer, facts->event, facts->country, facts->platform);
    if (terms.revshare) {
        payout = facts->has_revenue ? s_revshare (facts->revenue, payout) : 0;
    }
    s_decide (decision, &terms, counters, facts->time, facts->click_time, facts->mmp_rejected != 0,
              facts->mmp_reason, payout);
    return GKX_OK;
}

/* Writes a status and reason for a message: `rejected "cap"` or `approved`. */
static void
s_outcome_text (char *out, size_t size, int status, const char *reason)
{
    char shown[S_SHOW_BYTES];
    s_show (shown, reason, strlen (reason));
    if (reason[0]) {
        snprintf (out, size, "%s \"%s\"", s_status_words[status], shown);
    }
    else {
        snprintf (out, size, "%s", s_status_words[status]);
    }
}

int
gkx_conversion_verify (const gkx_conversion_t *conversion, const gkx_offer_t *offer,
                       const gkx_conversion_counters_t *counters, char *errbuf)
{
    assert (offer);
    gkx_conversion_terms_t terms;
    gkx_conversion_terms_read (&terms, offer);
    return gkx_conversion_verify_terms (conversion, offer, &terms, counters, errbuf);
}

int
gkx_conversion_verify_terms (const gkx_conversion_t *conversion, const gkx_offer_t *offer,
                             const gkx_conversion_terms_t *terms_read,
                             const gkx_conversion_counters_t *counters, char *errbuf)
{
    assert (conversion && offer && terms_read && counters);
    const gkx_conversion_t *c = conversion;
    assert (c->status >= GKX_CONVERSION_APPROVED && c->status <= GKX_CONVERSION_REJECTED);
    s_assert_periods (counters, c->time);
    const gkx_conversion_terms_t terms = *terms_read;
    if (strcmp (c->currency, terms.currency) != 0) {
        char shown[S_SHOW_BYTES];
        s_show (shown, c->currency, strlen (c->currency));
        return gkx_fail (errbuf, GKX_EPOLICY,
                         "conversion.currency: \"%s\" written, the offer pays in \"%s\"", shown,
                         terms.currency);
    }
    /* only the advertiser sees the MMP: its verdict is taken from the entry */
    bool mmp_rejected = strcmp (c->reason, GKX_CONVERSION_REASON_MMP) == 0;
    const char *mmp_reason = NULL;
    size_t prefix = strlen (GKX_CONVERSION_REASON_MMP_PREFIX);
    if (strncmp (c->reason, GKX_CONVERSION_REASON_MMP_PREFIX, prefix) == 0
        && c->reason[prefix] != '\0') {
        mmp_rejected = true;
        mmp_reason = c->reason + prefix;
    }
    int64_t payout = c->payout;
    if (!terms.revshare) {
        payout = gkx_offer_payout (offer, c->event, c->country[0] ? c->country : NULL,
                                   c->platform[0] ? c->platform : NULL);
    }
    gkx_conversion_decision_t d;
    s_decide (&d, &terms, counters, c->time, c->click_time, mmp_rejected, mmp_reason, payout);
    if (d.status != c->status || strcmp (d.reason, c->reason) != 0) {
        char written[GKX_ERRBUF_BYTES / 2];
        char expected[GKX_ERRBUF_BYTES / 2];
        s_outcome_text (written, sizeof (written), c->status, c->reason);
        s_outcome_text (expected, sizeof (expected), d.status, d.reason);
        return gkx_fail (errbuf, GKX_EPOLICY, "conversion.status: %s written, the terms give %s",
                         written, expected);
    }
    if (d.payout != c->payout) {
        return gkx_fail (errbuf, GKX_EPOLICY,
                         "conversion.payout: %" PRId64 " written, the terms give %" PRId64,
                         c->payout, d.payout);
    }
    return GKX_OK;
}

/* ---------------------------------------------------------------------- */
/* Status changes                                                           */

int
gkx_conversion_is_transition (int from, int to)
{
    if (from < GKX_CONVERSION_APPROVED || from > GKX_CONVERSION_REVERSED
        || to < GKX_CONVERSION_APPROVED || to > GKX_CONVERSION_REVERSED) {
        return 0;
    }
    return s_transitions[from][to];
}

uint64_t
gkx_conversion_lock_time (uint64_t time, uint32_t hold_days)
{
    return time + (uint64_t) hold_days * GKX_CONVERSION_DAY_SECONDS;
}

int
gkx_conversion_change_check (const gkx_conversion_state_t *state, int status, uint64_t hlc,
                             char *errbuf)
{
    assert (state);
    assert (gkx_conversion_status_name (state->status) && gkx_conversion_status_name (status));
    if (hlc <= state->hlc) {
        return gkx_fail (errbuf, GKX_EPOLICY,
                         "conversion_status: the change does not come after the conversion");
    }
    if (status == state->status) {
        return gkx_fail (errbuf, GKX_EPOLICY, "conversion_status.status: already %s",
                         s_status_words[status]);
    }
    if (!gkx_conversion_is_transition (state->status, status)) {
        return gkx_fail (errbuf, GKX_EPOLICY,
                         "conversion_status.status: %s -> %s is not allowed",
                         s_status_words[state->status], s_status_words[status]);
    }
    uint64_t lock = gkx_conversion_lock_time (state->time, state->hold_days);
    uint64_t at = gkx_hlc_ms (hlc) / S_SECOND_MS;
    if (state->status == GKX_CONVERSION_APPROVED && at > lock) {
        char lock_text[S_TIME_TEXT_BYTES];
        char at_text[S_TIME_TEXT_BYTES];
        s_time_text (lock_text, lock);
        s_time_text (at_text, at);
        return gkx_fail (errbuf, GKX_EPOLICY,
                         "conversion_status: the conversion is approved and locked since %s "
                         "(hold of %" PRIu32 " days); a change at %s is refused",
                         lock_text, state->hold_days, at_text);
    }
    return GKX_OK;
}
