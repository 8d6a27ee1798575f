/*  test_conversion - conversion bodies, the decision rules and status changes.
    Part of gokart-exchange; MIT licence.

    One case per decoder rejection (a loop test over a table, each row
    asserting the exact code and message), the golden bytes of both
    bodies, the calendar against libc's ISO weeks, the terms read from an
    offer, the counters, every rule of the decision with its boundaries and
    precedence, the publisher's verification, and status changes with hold
    and lock, each called the way a caller should.
*/
#include "testutil.h"

#include <gkx/alloc.h>
#include <gkx/conversion.h>
#include <gkx/error.h>
#include <gkx/hlc.h>
#include <gkx/offer.h>
#include <gkx/postback.h>

#include <inttypes.h>
#include <msgpack.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdint.h>
#include <time.h>

/* 2026-12-01T00:00:00Z, a Tuesday. */
#define DEC1 1796083200ULL
/* Seconds of a day. */
#define DAY 86400ULL
/* An event time used throughout: 2026-12-01T01:00:00Z. */
#define T0 (DEC1 + 3600)
/* Micro-units per unit. */
#define M 1000000LL

/* A small valid offer: cpi 2.50 USD, purchase 10.00, two rules for CA. */
static const char *s_offer_text
    = "{\"name\": \"Puzzle Quest\", \"payout\": {\"model\": \"cpi\", \"amount\": \"2.50\","
      " \"currency\": \"USD\", \"events\": {\"purchase\": \"10.00\"},"
      " \"rules\": [{\"id\": \"ca-android\", \"when\": {\"countries\": [\"CA\"],"
      " \"platforms\": [\"android\"], \"event\": \"install\"}, \"amount\": \"1.80\"},"
      " {\"id\": \"ca\", \"when\": {\"countries\": [\"CA\"]}, \"amount\": \"1.50\"}]}}";

/* Returns the offer with CLI edits applied, the NULL-terminated list
   after first (which may itself be NULL). */
static gkx_offer_t *
s_offer (const char *first, ...)
{
    gkx_offer_t *offer = NULL;
    char err[GKX_ERRBUF_BYTES] = "";
    ck_assert_int_eq (gkx_offer_from_text (&offer, s_offer_text, err), GKX_OK);
    gkx_offer_ops_t *ops = gkx_offer_ops_new ();
    va_list args;
    va_start (args, first);
    for (const char *edit = first; edit; edit = va_arg (args, const char *)) {
        ck_assert_msg (gkx_offer_ops_parse_edit (ops, offer, edit, err) == GKX_OK, "%s", err);
    }
    va_end (args);
    for (size_t i = 0; i < gkx_offer_ops_size (ops); i++) {
        ck_assert_msg (gkx_offer_apply (offer, ops, i, NULL, NULL, err) == GKX_OK, "%s", err);
    }
    gkx_offer_ops_destroy (&ops);
    return offer;
}

/* Returns a valid conversion: an approved install from the US on iOS. */
static gkx_conversion_t
s_conversion (void)
{
    gkx_conversion_t c;
    memset (&c, 0, sizeof (c));
    snprintf (c.click_id, sizeof (c.click_id), "clk-1");
    snprintf (c.country, sizeof (c.country), "US");
    snprintf (c.currency, sizeof (c.currency), "USD");
    gkx_postback_dedupe_key (c.dedupe, "tx-1", "install");
    snprintf (c.event, sizeof (c.event), "install");
    c.payout = 2500000;
    snprintf (c.platform, sizeof (c.platform), "ios");
    c.status = GKX_CONVERSION_APPROVED;
    snprintf (c.sub[0], sizeof (c.sub[0]), "src-7");
    snprintf (c.sub[2], sizeof (c.sub[2]), "banner");
    c.time = T0;
    return c;
}

/* Asserts that two conversions hold the same fields (padding aside). */
static void
s_assert_conversion_eq (const gkx_conversion_t *a, const gkx_conversion_t *b)
{
    ck_assert_str_eq (a->click_id, b->click_id);
    ck_assert_uint_eq (a->click_time, b->click_time);
    ck_assert_str_eq (a->country, b->country);
    ck_assert_str_eq (a->currency, b->currency);
    ck_assert_mem_eq (a->dedupe, b->dedupe, sizeof (a->dedupe));
    ck_assert_str_eq (a->event, b->event);
    ck_assert_int_eq (a->payout, b->payout);
    ck_assert_str_eq (a->platform, b->platform);
    ck_assert_str_eq (a->reason, b->reason);
    ck_assert_int_eq (a->status, b->status);
    for (int i = 0; i < GKX_CONVERSION_SUB_COUNT; i++) {
        ck_assert_str_eq (a->sub[i], b->sub[i]);
    }
    ck_assert_uint_eq (a->time, b->time);
}

/* Asserts that two status changes hold the same fields. */
static void
s_assert_change_eq (const gkx_conversion_change_t *a, const gkx_conversion_change_t *b)
{
    ck_assert_mem_eq (a->conversion, b->conversion, sizeof (a->conversion));
    ck_assert_str_eq (a->reason, b->reason);
    ck_assert_int_eq (a->status, b->status);
}

/* Writes bytes as lowercase hex into a new string (gkx_free). */
static char *
s_hex (const uint8_t *bytes, size_t len)
{
    char *hex = gkx_zalloc (2 * len + 1);
    sodium_bin2hex (hex, 2 * len + 1, bytes, len);
    return hex;
}

/* ---------------------------------------------------------------------- */
/* Bodies                                                                   */

START_TEST (test_conversion_round_trip_and_golden_bytes)
{
    gkx_conversion_t c = s_conversion ();
    uint8_t *body = NULL;
    size_t len = 0;
    char err[GKX_ERRBUF_BYTES] = "";
    ck_assert_int_eq (gkx_conversion_encode (&body, &len, &c, err), GKX_OK);
    char *hex = s_hex (body, len);
    ck_assert_str_eq (hex, "8c"
                           "a8636c69636b5f6964a5636c6b2d31"           /* click_id */
                           "aa636c69636b5f74696d65c0"                 /* click_time */
                           "a7636f756e747279a25553"                   /* country */
                           "a863757272656e6379a3555344"               /* currency */
                           "a6646564757065c41074a58fc3d3a4dd60875a357fa1a5b99b"
                           "a56576656e74a7696e7374616c6c"             /* event */
                           "a67061796f7574ce002625a0"                 /* payout */
                           "a8706c6174666f726da3696f73"               /* platform */
                           "a6726561736f6ec0"                         /* reason */
                           "a6737461747573a8617070726f766564"         /* status */
                           "a373756282a473756231a57372632d37a473756233a662616e6e6572"
                           "a474696d65ce6b0e1c10");                   /* time */
    gkx_free (hex);
    gkx_conversion_t back;
    memset (&back, 0xee, sizeof (back));
    ck_assert_int_eq (gkx_conversion_decode (&back, body, len, err), GKX_OK);
    s_assert_conversion_eq (&back, &c);
    uint8_t *again = NULL;
    size_t again_len = 0;
    ck_assert_int_eq (gkx_conversion_encode (&again, &again_len, &back, err), GKX_OK);
    ck_assert_uint_eq (again_len, len);
    ck_assert_mem_eq (again, body, len);
    gkx_free (again);
    gkx_free (body);

    /* nil country, platform and reason; no sub-parameters; pending */
    c.country[0] = '\0';
    c.platform[0] = '\0';
    memset (c.sub, 0, sizeof (c.sub));
    c.status = GKX_CONVERSION_PENDING;
    ck_assert_int_eq (gkx_conversion_encode (&body, &len, &c, err), GKX_OK);
    ck_assert_int_eq (gkx_conversion_decode (&back, body, len, err), GKX_OK);
    s_assert_conversion_eq (&back, &c);
    gkx_free (body);
}
END_TEST

START_TEST (test_conversion_click_time_round_trip)
{
    char err[GKX_ERRBUF_BYTES] = "";
    uint8_t *body = NULL;
    size_t len = 0;
    gkx_conversion_t back;
    /* a click a day before the event: a uint in the body, right after click_id */
    gkx_conversion_t c = s_conversion ();
    c.click_time = T0 - DAY;
    ck_assert_int_eq (gkx_conversion_encode (&body, &len, &c, err), GKX_OK);
    char *hex = s_hex (body, 32);
    ck_assert_str_eq (hex, "8ca8636c69636b5f6964a5636c6b2d31aa636c69636b5f74696d65ce6b0cca90");
    gkx_free (hex);
    memset (&back, 0xee, sizeof (back));
    ck_assert_int_eq (gkx_conversion_decode (&back, body, len, err), GKX_OK);
    s_assert_conversion_eq (&back, &c);
    ck_assert_uint_eq (back.click_time, T0 - DAY);
    gkx_free (body);
    /* the click in the event's own second, and the first second accepted */
    c.click_time = T0;
    ck_assert_int_eq (gkx_conversion_encode (&body, &len, &c, err), GKX_OK);
    ck_assert_int_eq (gkx_conversion_decode (&back, body, len, err), GKX_OK);
    ck_assert_uint_eq (back.click_time, T0);
    gkx_free (body);
    c.click_time = GKX_CONVERSION_TIME_MIN;
    ck_assert_int_eq (gkx_conversion_encode (&body, &len, &c, err), GKX_OK);
    ck_assert_int_eq (gkx_conversion_decode (&back, body, len, err), GKX_OK);
    ck_assert_uint_eq (back.click_time, GKX_CONVERSION_TIME_MIN);
    gkx_free (body);
    /* unknown: nil, decoded as 0 */
    c.click_time = 0;
    ck_assert_int_eq (gkx_conversion_encode (&body, &len, &c, err), GKX_OK);
    memset (&back, 0xee, sizeof (back));
    ck_assert_int_eq (gkx_conversion_decode (&back, body, len, err), GKX_OK);
    ck_assert_uint_eq (back.click_time, 0);
    gkx_free (body);
}
END_TEST

START_TEST (test_change_round_trip_and_golden_bytes)
{
    gkx_conversion_change_t change;
    memset (&change, 0, sizeof (change));
    memset (change.conversion, 0xab, sizeof (change.conversion));
    change.status = GKX_CONVERSION_REVERSED;
    snprintf (change.reason, sizeof (change.reason), "chargeback");
    uint8_t *body = NULL;
    size_t len = 0;
    char err[GKX_ERRBUF_BYTES] = "";
    ck_assert_int_eq (gkx_conversion_change_encode (&body, &len, &change, err), GKX_OK);
    char *hex = s_hex (body, len);
    ck_assert_str_eq (hex, "83aa636f6e76657273696f6ec420"
                           "abababababababababababababababababababababababababababababababab"
                           "a6726561736f6eaa6368617267656261636b"
                           "a6737461747573a8726576657273656"
                           "4");
    gkx_free (hex);
    gkx_conversion_change_t back;
    memset (&back, 0xee, sizeof (back));
    ck_assert_int_eq (gkx_conversion_change_decode (&back, body, len, err), GKX_OK);
    s_assert_change_eq (&back, &change);
    gkx_free (body);

    change.reason[0] = '\0';
    change.status = GKX_CONVERSION_APPROVED;
    ck_assert_int_eq (gkx_conversion_change_encode (&body, &len, &change, err), GKX_OK);
    ck_assert_int_eq (gkx_conversion_change_decode (&back, body, len, err), GKX_OK);
    s_assert_change_eq (&back, &change);
    gkx_free (body);
}
END_TEST

/* Value kinds of a test body field. */
typedef enum {
    V_STR = 1, /* text, or "@N": N times "a" */
    V_NIL,     /* nil */
    V_INT,     /* num, packed as the smallest integer */
    V_BIN,     /* num bytes of 0x11 */
    V_FLOAT,   /* a double */
    V_SUB,     /* a map: {} when text is NULL, else {text: text2}, or {text: num} */
    V_ARRAY,   /* an empty array */
} s_vkind_t;

/* One value of a test body. */
typedef struct {
    s_vkind_t kind;
    const char *text;
    const char *text2;
    int64_t num;
} s_val_t;

/* One key and value of a test body. */
typedef struct {
    const char *key;
    s_val_t val;
} s_kv_t;

/* How a rejection case changes the base body. */
typedef enum {
    C_SET = 1, /* replace the key's value */
    C_DEL,     /* remove the key */
    C_ADD,     /* add a new key */
} s_change_mode_t;

/* One decoder rejection: a change to the base body and what it gives. */
typedef struct {
    const char *key;
    int mode;
    s_val_t val;
    int code;
    const char *message;
} s_reject_t;

/* The base conversion body as key/values, sorted. */
static const s_kv_t s_base_body[] = {
    {"click_id", {V_STR, "clk-1", NULL, 0}},
    {"click_time", {V_NIL, NULL, NULL, 0}},
    {"country", {V_STR, "US", NULL, 0}},
    {"currency", {V_STR, "USD", NULL, 0}},
    {"dedupe", {V_BIN, NULL, NULL, 16}},
    {"event", {V_STR, "install", NULL, 0}},
    {"payout", {V_INT, NULL, NULL, 2500000}},
    {"platform", {V_STR, "ios", NULL, 0}},
    {"reason", {V_NIL, NULL, NULL, 0}},
    {"status", {V_STR, "approved", NULL, 0}},
    {"sub", {V_SUB, "sub1", "src-7", 0}},
    {"time", {V_INT, NULL, NULL, (int64_t) T0}},
};

/* The base status change body as key/values, sorted. */
static const s_kv_t s_base_change[] = {
    {"conversion", {V_BIN, NULL, NULL, 32}},
    {"reason", {V_STR, "chargeback", NULL, 0}},
    {"status", {V_STR, "reversed", NULL, 0}},
};

#define S_BASE_BODY_COUNT (sizeof (s_base_body) / sizeof (s_base_body[0]))
#define S_BASE_CHANGE_COUNT (sizeof (s_base_change) / sizeof (s_base_change[0]))

/* Orders key/values bytewise by key, for qsort. */
static int
s_kv_compare (const void *a, const void *b)
{
    return strcmp (((const s_kv_t *) a)->key, ((const s_kv_t *) b)->key);
}

/* Packs one string, expanding "@N" to N times "a". */
static void
s_pack_text (msgpack_packer *pk, const char *text)
{
    if (text[0] == '@') {
        size_t n = (size_t) strtoul (text + 1, NULL, 10);
        char *s = gkx_zalloc (n + 1);
        memset (s, 'a', n);
        msgpack_pack_str (pk, n);
        msgpack_pack_str_body (pk, s, n);
        gkx_free (s);
        return;
    }
    msgpack_pack_str (pk, strlen (text));
    msgpack_pack_str_body (pk, text, strlen (text));
}

/* Packs one test value. */
static void
s_pack_val (msgpack_packer *pk, const s_val_t *v)
{
    uint8_t bin[64];
    switch (v->kind) {
    case V_STR:
        s_pack_text (pk, v->text);
        break;
    case V_NIL:
        msgpack_pack_nil (pk);
        break;
    case V_INT:
        msgpack_pack_int64 (pk, v->num);
        break;
    case V_BIN:
        memset (bin, 0x11, sizeof (bin));
        msgpack_pack_bin (pk, (size_t) v->num);
        msgpack_pack_bin_body (pk, bin, (size_t) v->num);
        break;
    case V_FLOAT:
        msgpack_pack_double (pk, 1.5);
        break;
    case V_SUB:
        msgpack_pack_map (pk, v->text ? 1 : 0);
        if (v->text) {
            s_pack_text (pk, v->text);
            if (v->text2) {
                s_pack_text (pk, v->text2);
            }
            else {
                msgpack_pack_int64 (pk, v->num);
            }
        }
        break;
    case V_ARRAY:
        msgpack_pack_array (pk, 0);
        break;
    }
}

/* Packs a base body with one case's change applied, keys sorted. */
static void
s_pack_case (msgpack_sbuffer *sbuf, const s_kv_t *base, size_t count, const s_reject_t *rc)
{
    s_kv_t kvs[16];
    size_t n = 0;
    for (size_t i = 0; i < count; i++) {
        if (rc && strcmp (rc->key, base[i].key) == 0 && rc->mode == C_DEL) {
            continue;
        }
        kvs[n] = base[i];
        if (rc && strcmp (rc->key, base[i].key) == 0 && rc->mode == C_SET) {
            kvs[n].val = rc->val;
        }
        n++;
    }
    if (rc && rc->mode == C_ADD) {
        kvs[n].key = rc->key;
        kvs[n].val = rc->val;
        n++;
    }
    qsort (kvs, n, sizeof (kvs[0]), s_kv_compare);
    msgpack_packer pk;
    msgpack_packer_init (&pk, sbuf, msgpack_sbuffer_write);
    msgpack_pack_map (&pk, n);
    for (size_t i = 0; i < n; i++) {
        msgpack_pack_str (&pk, strlen (kvs[i].key));
        msgpack_pack_str_body (&pk, kvs[i].key, strlen (kvs[i].key));
        s_pack_val (&pk, &kvs[i].val);
    }
}

/* Shorthands for the tables. */
#define STR(t) {V_STR, t, NULL, 0}
#define NIL {V_NIL, NULL, NULL, 0}
#define INT(n) {V_INT, NULL, NULL, n}
#define BIN(n) {V_BIN, NULL, NULL, n}
#define SUB(k, v) {V_SUB, k, v, 0}
#define SUBINT(k, n) {V_SUB, k, NULL, n}
#define NOVAL {0, NULL, NULL, 0}

/* Every rejection of a conversion body; the first row is the valid base. */
static const s_reject_t s_conversion_rejects[] = {
    {"click_id", C_SET, STR ("clk-1"), GKX_OK, ""},
    {"zone", C_ADD, STR ("x"), GKX_EBODY, "conversion.zone: unknown field"},
    {"a\x01", C_ADD, STR ("x"), GKX_EBODY, "conversion.a?: unknown field"},
    {"click_id", C_DEL, NOVAL, GKX_EBODY, "conversion.click_id: is required"},
    {"time", C_DEL, NOVAL, GKX_EBODY, "conversion.time: is required"},
    {"sub", C_DEL, NOVAL, GKX_EBODY, "conversion.sub: is required"},
    {"click_id", C_SET, INT (1), GKX_EBODY, "conversion.click_id: must be a string"},
    {"click_id", C_SET, NIL, GKX_EBODY, "conversion.click_id: must be a string"},
    {"click_id", C_SET, STR (""), GKX_EBODY,
     "conversion.click_id: must be 1 to 128 printable ASCII characters without spaces"},
    {"click_id", C_SET, STR ("@129"), GKX_EBODY,
     "conversion.click_id: must be 1 to 128 printable ASCII characters without spaces"},
    {"click_id", C_SET, STR ("a b"), GKX_EBODY,
     "conversion.click_id: must be 1 to 128 printable ASCII characters without spaces"},
    {"click_id", C_SET, STR ("caf\xc3\xa9"), GKX_EBODY,
     "conversion.click_id: must be 1 to 128 printable ASCII characters without spaces"},
    {"click_time", C_SET, INT ((int64_t) T0), GKX_OK, ""},
    {"click_time", C_SET, INT (946684800), GKX_OK, ""},
    {"click_time", C_DEL, NOVAL, GKX_EBODY, "conversion.click_time: is required"},
    {"click_time", C_SET, INT (0), GKX_EBODY,
     "conversion.click_time: must be a time from 2000-01-01T00:00:00Z to "
     "9999-12-31T23:59:59Z"},
    {"click_time", C_SET, INT (946684799), GKX_EBODY,
     "conversion.click_time: must be a time from 2000-01-01T00:00:00Z to "
     "9999-12-31T23:59:59Z"},
    {"click_time", C_SET, INT (253402300800LL), GKX_EBODY,
     "conversion.click_time: must be a time from 2000-01-01T00:00:00Z to "
     "9999-12-31T23:59:59Z"},
    {"click_time", C_SET, INT ((int64_t) T0 + 1), GKX_EBODY,
     "conversion.click_time: must not be after conversion.time"},
    {"click_time", C_SET, INT (-5), GKX_EBODY,
     "conversion.click_time: must be a non-negative integer or nil"},
    {"click_time", C_SET, STR ("2026-12-01T00:00:00Z"), GKX_EBODY,
     "conversion.click_time: must be a non-negative integer or nil"},
    {"click_time", C_SET, {V_FLOAT, NULL, NULL, 0}, GKX_EBODY,
     "conversion.click_time: floats are not allowed in signed data"},
    {"country", C_SET, STR ("XX"), GKX_EBODY,
     "conversion.country: \"XX\" is not an ISO 3166-1 country code"},
    {"country", C_SET, STR ("us"), GKX_EBODY,
     "conversion.country: \"us\" is not an ISO 3166-1 country code"},
    {"country", C_SET, STR (""), GKX_EBODY,
     "conversion.country: \"\" is not an ISO 3166-1 country code"},
    {"country", C_SET, STR ("USA"), GKX_EBODY,
     "conversion.country: \"USA\" is not an ISO 3166-1 country code"},
    {"country", C_SET, INT (840), GKX_EBODY, "conversion.country: must be a string or nil"},
    {"currency", C_SET, STR ("XXX"), GKX_EBODY,
     "conversion.currency: \"XXX\" is not an ISO 4217 currency code"},
    {"currency", C_SET, STR ("XAU"), GKX_EBODY,
     "conversion.currency: \"XAU\" is not an ISO 4217 currency code"},
    {"currency", C_SET, STR ("usd"), GKX_EBODY,
     "conversion.currency: \"usd\" is not an ISO 4217 currency code"},
    {"currency", C_SET, STR (""), GKX_EBODY,
     "conversion.currency: \"\" is not an ISO 4217 currency code"},
    {"currency", C_SET, NIL, GKX_EBODY, "conversion.currency: must be a string"},
    {"dedupe", C_SET, BIN (15), GKX_EBODY, "conversion.dedupe: must be a 16-byte bin"},
    {"dedupe", C_SET, BIN (32), GKX_EBODY, "conversion.dedupe: must be a 16-byte bin"},
    {"dedupe", C_SET, STR ("@16"), GKX_EBODY, "conversion.dedupe: must be a 16-byte bin"},
    {"event", C_SET, STR (""), GKX_EBODY,
     "conversion.event: \"\" is not a name of 1 to 64 letters, digits or \"_.:-\""},
    {"event", C_SET, STR ("in stall"), GKX_EBODY,
     "conversion.event: \"in stall\" is not a name of 1 to 64 letters, digits or \"_.:-\""},
    {"event", C_SET, STR ("@65"), GKX_EBODY,
     "conversion.event: \"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa...\" is not a name of 1 to "
     "64 letters, digits or \"_.:-\""},
    {"event", C_SET, STR ("a\"b"), GKX_EBODY,
     "conversion.event: \"a?b\" is not a name of 1 to 64 letters, digits or \"_.:-\""},
    {"event", C_SET, NIL, GKX_EBODY, "conversion.event: must be a string"},
    {"payout", C_SET, INT (-1), GKX_EBODY,
     "conversion.payout: must be an integer from 0 to 1000000000000000 micro-units"},
    {"payout", C_SET, INT (1000000000000001LL), GKX_EBODY,
     "conversion.payout: must be an integer from 0 to 1000000000000000 micro-units"},
    {"payout", C_SET, STR ("2.50"), GKX_EBODY, "conversion.payout: must be an integer"},
    {"payout", C_SET, NIL, GKX_EBODY, "conversion.payout: must be an integer"},
    {"payout", C_SET, {V_FLOAT, NULL, NULL, 0}, GKX_EBODY,
     "conversion.payout: floats are not allowed in signed data"},
    {"platform", C_SET, STR ("tv"), GKX_EBODY,
     "conversion.platform: \"tv\" is not one of ios, android, web, other"},
    {"platform", C_SET, STR ("iOS"), GKX_EBODY,
     "conversion.platform: \"iOS\" is not one of ios, android, web, other"},
    {"platform", C_SET, INT (1), GKX_EBODY, "conversion.platform: must be a string or nil"},
    {"reason", C_SET, STR (""), GKX_EBODY,
     "conversion.reason: must be 1 to 256 bytes of UTF-8 text without control characters"},
    {"reason", C_SET, STR ("@257"), GKX_EBODY,
     "conversion.reason: must be 1 to 256 bytes of UTF-8 text without control characters"},
    {"reason", C_SET, STR ("a\nb"), GKX_EBODY,
     "conversion.reason: must be 1 to 256 bytes of UTF-8 text without control characters"},
    {"reason", C_SET, STR ("bad \xff"), GKX_EBODY,
     "conversion.reason: string is not valid UTF-8"},
    {"reason", C_SET, STR ("cap"), GKX_EBODY,
     "conversion.reason: must be nil when the status is approved"},
    {"reason", C_SET, INT (3), GKX_EBODY, "conversion.reason: must be a string or nil"},
    {"status", C_SET, STR ("rejected"), GKX_EBODY,
     "conversion.reason: is required when the status is rejected"},
    {"status", C_SET, STR ("reversed"), GKX_EBODY,
     "conversion.status: \"reversed\" is not one of approved, pending, rejected"},
    {"status", C_SET, STR ("Approved"), GKX_EBODY,
     "conversion.status: \"Approved\" is not one of approved, pending, rejected"},
    {"status", C_SET, INT (1), GKX_EBODY, "conversion.status: must be a string"},
    {"sub", C_SET, STR ("x"), GKX_EBODY, "conversion.sub: must be a map"},
    {"sub", C_SET, {V_ARRAY, NULL, NULL, 0}, GKX_EBODY, "conversion.sub: must be a map"},
    {"sub", C_SET, SUB ("sub6", "x"), GKX_EBODY, "conversion.sub.sub6: unknown field"},
    {"sub", C_SET, SUB ("sub0", "x"), GKX_EBODY, "conversion.sub.sub0: unknown field"},
    {"sub", C_SET, SUB ("sub2", ""), GKX_EBODY,
     "conversion.sub.sub2: must be 1 to 256 bytes of UTF-8 text without control characters"},
    {"sub", C_SET, SUB ("sub3", "@257"), GKX_EBODY,
     "conversion.sub.sub3: must be 1 to 256 bytes of UTF-8 text without control characters"},
    {"sub", C_SET, SUB ("sub4", "a\tb"), GKX_EBODY,
     "conversion.sub.sub4: must be 1 to 256 bytes of UTF-8 text without control characters"},
    {"sub", C_SET, SUBINT ("sub5", 5), GKX_EBODY, "conversion.sub.sub5: must be a string"},
    {"time", C_SET, INT (0), GKX_EBODY,
     "conversion.time: must be a time from 2000-01-01T00:00:00Z to 9999-12-31T23:59:59Z"},
    {"time", C_SET, INT (946684799), GKX_EBODY,
     "conversion.time: must be a time from 2000-01-01T00:00:00Z to 9999-12-31T23:59:59Z"},
    {"time", C_SET, INT (253402300800LL), GKX_EBODY,
     "conversion.time: must be a time from 2000-01-01T00:00:00Z to 9999-12-31T23:59:59Z"},
    {"time", C_SET, INT (-5), GKX_EBODY, "conversion.time: must be a non-negative integer"},
    {"time", C_SET, STR ("2026-12-01T00:00:00Z"), GKX_EBODY,
     "conversion.time: must be a non-negative integer"},
};

#define S_CONVERSION_REJECT_COUNT (sizeof (s_conversion_rejects) / sizeof (s_conversion_rejects[0]))

START_TEST (test_conversion_decode_rejects)
{
    const s_reject_t *rc = &s_conversion_rejects[_i];
    msgpack_sbuffer sbuf;
    msgpack_sbuffer_init (&sbuf);
    s_pack_case (&sbuf, s_base_body, S_BASE_BODY_COUNT, rc);
    gkx_conversion_t c;
    memset (&c, 0x5a, sizeof (c));
    gkx_conversion_t untouched = c;
    char err[GKX_ERRBUF_BYTES] = "";
    int code = gkx_conversion_decode (&c, (const uint8_t *) sbuf.data, sbuf.size, err);
    ck_assert_msg (code == rc->code, "row %d: code %d, message %s", _i, code, err);
    ck_assert_str_eq (err, rc->message);
    if (rc->code) {
        ck_assert_mem_eq (&c, &untouched, sizeof (c));
    }
    msgpack_sbuffer_destroy (&sbuf);
}
END_TEST

/* Every rejection of a status change body; the first row is the base. */
static const s_reject_t s_change_rejects[] = {
    {"reason", C_SET, STR ("chargeback"), GKX_OK, ""},
    {"zone", C_ADD, STR ("x"), GKX_EBODY, "conversion_status.zone: unknown field"},
    {"conversion", C_DEL, NOVAL, GKX_EBODY, "conversion_status.conversion: is required"},
    {"reason", C_DEL, NOVAL, GKX_EBODY, "conversion_status.reason: is required"},
    {"status", C_DEL, NOVAL, GKX_EBODY, "conversion_status.status: is required"},
    {"conversion", C_SET, BIN (31), GKX_EBODY,
     "conversion_status.conversion: must be a 32-byte entry hash"},
    {"conversion", C_SET, STR ("@32"), GKX_EBODY,
     "conversion_status.conversion: must be a 32-byte entry hash"},
    {"reason", C_SET, STR (""), GKX_EBODY,
     "conversion_status.reason: must be 1 to 256 bytes of UTF-8 text without control "
     "characters"},
    {"reason", C_SET, STR ("@257"), GKX_EBODY,
     "conversion_status.reason: must be 1 to 256 bytes of UTF-8 text without control "
     "characters"},
    {"reason", C_SET, INT (1), GKX_EBODY, "conversion_status.reason: must be a string or nil"},
    {"status", C_SET, STR ("cancelled"), GKX_EBODY,
     "conversion_status.status: \"cancelled\" is not one of approved, pending, rejected, "
     "reversed"},
    {"status", C_SET, NIL, GKX_EBODY, "conversion_status.status: must be a string"},
};

#define S_CHANGE_REJECT_COUNT (sizeof (s_change_rejects) / sizeof (s_change_rejects[0]))

START_TEST (test_change_decode_rejects)
{
    const s_reject_t *rc = &s_change_rejects[_i];
    msgpack_sbuffer sbuf;
    msgpack_sbuffer_init (&sbuf);
    s_pack_case (&sbuf, s_base_change, S_BASE_CHANGE_COUNT, rc);
    gkx_conversion_change_t c;
    memset (&c, 0x5a, sizeof (c));
    gkx_conversion_change_t untouched = c;
    char err[GKX_ERRBUF_BYTES] = "";
    int code = gkx_conversion_change_decode (&c, (const uint8_t *) sbuf.data, sbuf.size, err);
    ck_assert_msg (code == rc->code, "row %d: code %d, message %s", _i, code, err);
    ck_assert_str_eq (err, rc->message);
    if (rc->code) {
        ck_assert_mem_eq (&c, &untouched, sizeof (c));
    }
    msgpack_sbuffer_destroy (&sbuf);
}
END_TEST

START_TEST (test_decode_rejects_non_canonical_msgpack)
{
    gkx_conversion_t c = s_conversion ();
    gkx_conversion_change_t change;
    uint8_t *body = NULL;
    size_t len = 0;
    char err[GKX_ERRBUF_BYTES] = "";
    ck_assert_int_eq (gkx_conversion_encode (&body, &len, &c, err), GKX_OK);

    ck_assert_int_eq (gkx_conversion_decode (&c, body, len - 1, err), GKX_EBODY);
    ck_assert_str_eq (err, "conversion: truncated at byte 174");
    uint8_t *longer = gkx_zalloc (len + 1);
    memcpy (longer, body, len);
    ck_assert_int_eq (gkx_conversion_decode (&c, longer, len + 1, err), GKX_EBODY);
    ck_assert_str_eq (err, "conversion: 1 trailing bytes after the value");
    ck_assert_int_eq (gkx_conversion_decode (&c, NULL, 0, err), GKX_EBODY);
    ck_assert_str_eq (err, "conversion: truncated at byte 0");
    /* the time as a uint64 instead of a uint32: well formed, not canonical */
    uint8_t *wide = gkx_zalloc (len + 4);
    memcpy (wide, body, len - 5);
    static const uint8_t time64[] = {0xcf, 0, 0, 0, 0, 0x6b, 0x0e, 0x1c, 0x10};
    memcpy (wide + len - 5, time64, sizeof (time64));
    ck_assert_int_eq (gkx_conversion_decode (&c, wide, len + 4, err), GKX_EBODY);
    ck_assert_str_eq (err, "conversion: not the canonical encoding (an integer, string or "
                           "container header is longer than needed)");
    gkx_free (wide);
    gkx_free (longer);
    gkx_free (body);

    msgpack_sbuffer sbuf;
    msgpack_packer pk;
    msgpack_sbuffer_init (&sbuf);
    msgpack_packer_init (&pk, &sbuf, msgpack_sbuffer_write);
    msgpack_pack_array (&pk, 0);
    ck_assert_int_eq (gkx_conversion_decode (&c, (uint8_t *) sbuf.data, sbuf.size, err),
                      GKX_EBODY);
    ck_assert_str_eq (err, "conversion: must be a map");
    ck_assert_int_eq (gkx_conversion_change_decode (&change, (uint8_t *) sbuf.data, sbuf.size,
                                                    err),
                      GKX_EBODY);
    ck_assert_str_eq (err, "conversion_status: must be a map");
    msgpack_sbuffer_clear (&sbuf);
    /* keys out of order */
    msgpack_pack_map (&pk, 2);
    msgpack_pack_str (&pk, 6);
    msgpack_pack_str_body (&pk, "status", 6);
    msgpack_pack_nil (&pk);
    msgpack_pack_str (&pk, 6);
    msgpack_pack_str_body (&pk, "reason", 6);
    msgpack_pack_nil (&pk);
    ck_assert_int_eq (gkx_conversion_change_decode (&change, (uint8_t *) sbuf.data, sbuf.size,
                                                    err),
                      GKX_EBODY);
    ck_assert_str_eq (err, "conversion_status: map key \"reason\" is out of sorted order");
    msgpack_sbuffer_destroy (&sbuf);
}
END_TEST

START_TEST (test_encode_rejects)
{
    uint8_t *body = (uint8_t *) "unchanged";
    size_t len = 7;
    char err[GKX_ERRBUF_BYTES] = "";
    gkx_conversion_t c = s_conversion ();
    snprintf (c.country, sizeof (c.country), "XX");
    ck_assert_int_eq (gkx_conversion_encode (&body, &len, &c, err), GKX_EINVAL);
    ck_assert_str_eq (err, "conversion.country: \"XX\" is not an ISO 3166-1 country code");
    c = s_conversion ();
    c.status = GKX_CONVERSION_REVERSED;
    ck_assert_int_eq (gkx_conversion_encode (&body, &len, &c, err), GKX_EINVAL);
    ck_assert_str_eq (err, "conversion.status: must be approved, pending or rejected");
    c = s_conversion ();
    memset (c.click_id, 'a', sizeof (c.click_id));
    ck_assert_int_eq (gkx_conversion_encode (&body, &len, &c, err), GKX_EINVAL);
    ck_assert_str_eq (err, "conversion.click_id: must be 1 to 128 printable ASCII characters "
                           "without spaces");
    c = s_conversion ();
    c.click_id[0] = '\0';
    ck_assert_int_eq (gkx_conversion_encode (&body, &len, &c, err), GKX_EINVAL);
    c = s_conversion ();
    c.payout = -1;
    ck_assert_int_eq (gkx_conversion_encode (&body, &len, &c, err), GKX_EINVAL);
    ck_assert_str_eq (err,
                      "conversion.payout: must be an integer from 0 to 1000000000000000 "
                      "micro-units");
    c = s_conversion ();
    c.status = GKX_CONVERSION_REJECTED;
    ck_assert_int_eq (gkx_conversion_encode (&body, &len, &c, err), GKX_EINVAL);
    ck_assert_str_eq (err, "conversion.reason: is required when the status is rejected");
    c = s_conversion ();
    snprintf (c.sub[4], sizeof (c.sub[4]), "tab\there");
    ck_assert_int_eq (gkx_conversion_encode (&body, &len, &c, err), GKX_EINVAL);
    ck_assert_str_eq (err, "conversion.sub.sub5: must be 1 to 256 bytes of UTF-8 text without "
                           "control characters");
    c = s_conversion ();
    c.time = 1;
    ck_assert_int_eq (gkx_conversion_encode (&body, &len, &c, err), GKX_EINVAL);
    ck_assert_str_eq (err, "conversion.time: must be a time from 2000-01-01T00:00:00Z to "
                           "9999-12-31T23:59:59Z");
    c = s_conversion ();
    c.click_time = 5;
    ck_assert_int_eq (gkx_conversion_encode (&body, &len, &c, err), GKX_EINVAL);
    ck_assert_str_eq (err, "conversion.click_time: must be a time from 2000-01-01T00:00:00Z to "
                           "9999-12-31T23:59:59Z");
    c = s_conversion ();
    c.click_time = c.time + 1;
    ck_assert_int_eq (gkx_conversion_encode (&body, &len, &c, err), GKX_EINVAL);
    ck_assert_str_eq (err, "conversion.click_time: must not be after conversion.time");
    ck_assert_str_eq ((char *) body, "unchanged");
    ck_assert_uint_eq (len, 7);

    gkx_conversion_change_t change;
    memset (&change, 0, sizeof (change));
    ck_assert_int_eq (gkx_conversion_change_encode (&body, &len, &change, err), GKX_EINVAL);
    ck_assert_str_eq (err, "conversion_status.status: must be approved, pending, rejected or "
                           "reversed");
    change.status = GKX_CONVERSION_REJECTED;
    snprintf (change.reason, sizeof (change.reason), "bad\x7f");
    ck_assert_int_eq (gkx_conversion_change_encode (&body, &len, &change, err), GKX_EINVAL);
    ck_assert_str_eq (err, "conversion_status.reason: must be 1 to 256 bytes of UTF-8 text "
                           "without control characters");
}
END_TEST

START_TEST (test_status_names)
{
    int status = 0;
    ck_assert_str_eq (gkx_conversion_status_name (GKX_CONVERSION_APPROVED), "approved");
    ck_assert_str_eq (gkx_conversion_status_name (GKX_CONVERSION_REVERSED), "reversed");
    ck_assert_ptr_null (gkx_conversion_status_name (0));
    ck_assert_ptr_null (gkx_conversion_status_name (5));
    ck_assert_int_eq (gkx_conversion_status_parse ("pending", &status), GKX_OK);
    ck_assert_int_eq (status, GKX_CONVERSION_PENDING);
    ck_assert_int_eq (gkx_conversion_status_parse ("Pending", &status), GKX_EINVAL);
    ck_assert_int_eq (status, GKX_CONVERSION_PENDING);
}
END_TEST

/* ---------------------------------------------------------------------- */
/* Calendar                                                                 */

START_TEST (test_periods_match_libc_iso_weeks_and_months)
{
    gkx_conversion_periods_t prev;
    gkx_conversion_periods (&prev, GKX_CONVERSION_TIME_MIN);
    struct tm prev_tm;
    time_t t0 = (time_t) GKX_CONVERSION_TIME_MIN;
    gmtime_r (&t0, &prev_tm);
    /* every day from 2000 to 2100 at noon, against strftime's %G-%V */
    for (uint64_t day = 1; day < 36600; day++) {
        uint64_t t = GKX_CONVERSION_TIME_MIN + day * DAY + 43200;
        gkx_conversion_periods_t p;
        gkx_conversion_periods (&p, t);
        time_t tt = (time_t) t;
        struct tm tm;
        gmtime_r (&tt, &tm);
        char week[16];
        char prev_week[16];
        strftime (week, sizeof (week), "%G-%V", &tm);
        strftime (prev_week, sizeof (prev_week), "%G-%V", &prev_tm);
        ck_assert_uint_eq (p.day, t / DAY);
        ck_assert_int_eq (p.week == prev.week, strcmp (week, prev_week) == 0);
        ck_assert_int_eq (p.month == prev.month, tm.tm_mon == prev_tm.tm_mon);
        ck_assert_uint_eq (p.month, (uint64_t) (tm.tm_year + 1900) * 12 + (uint64_t) tm.tm_mon);
        char text[GKX_CONVERSION_DAY_TEXT_BYTES];
        char libc[GKX_CONVERSION_DAY_TEXT_BYTES];
        gkx_conversion_day_text (text, p.day);
        strftime (libc, sizeof (libc), "%Y-%m-%d", &tm);
        ck_assert_str_eq (text, libc);
        uint64_t back = 0;
        ck_assert_int_eq (gkx_conversion_day_parse (&back, text, NULL), GKX_OK);
        ck_assert_uint_eq (back, p.day);
        prev = p;
        prev_tm = tm;
    }
}
END_TEST

START_TEST (test_period_boundaries)
{
    gkx_conversion_periods_t a, b;
    /* Monday 2026-11-30 00:00:00 and Sunday 2026-12-06 23:59:59: one ISO week */
    gkx_conversion_periods (&a, DEC1 - DAY);
    gkx_conversion_periods (&b, DEC1 + 6 * DAY - 1);
    ck_assert_uint_eq (a.week, b.week);
    ck_assert_uint_ne (a.month, b.month);
    gkx_conversion_periods (&b, DEC1 + 6 * DAY);
    ck_assert_uint_eq (b.week, a.week + 1);
    gkx_conversion_periods (&a, DEC1 - DAY - 1);
    gkx_conversion_periods (&b, DEC1 - DAY);
    ck_assert_uint_eq (b.week, a.week + 1);
    gkx_conversion_periods (&a, DEC1 - 1);
    gkx_conversion_periods (&b, DEC1);
    ck_assert_uint_eq (b.day, a.day + 1);
    ck_assert_uint_eq (b.month, a.month + 1);
    /* 1970-01-01 was a Thursday: week 0 runs from Monday 1969-12-29 */
    gkx_conversion_periods (&a, 0);
    gkx_conversion_periods (&b, 4 * DAY - 1);
    ck_assert_uint_eq (a.week, 0);
    ck_assert_uint_eq (b.week, 0);
    gkx_conversion_periods (&b, 4 * DAY);
    ck_assert_uint_eq (b.week, 1);
}
END_TEST

START_TEST (test_day_parse)
{
    uint64_t day = 7;
    char err[GKX_ERRBUF_BYTES] = "";
    ck_assert_int_eq (gkx_conversion_day_parse (&day, "2026-12-01", err), GKX_OK);
    ck_assert_uint_eq (day, DEC1 / DAY);
    ck_assert_int_eq (gkx_conversion_day_parse (&day, "2028-02-29", err), GKX_OK);
    ck_assert_uint_eq (day, 1835395200ULL / DAY);
    ck_assert_int_eq (gkx_conversion_day_parse (&day, "2000-01-01", err), GKX_OK);
    ck_assert_int_eq (gkx_conversion_day_parse (&day, "9999-12-31", err), GKX_OK);
    static const char *const bad[] = {
        "2027-02-29", "2026-13-01", "2026-00-10", "2026-04-31", "2026-1-01", "1999-12-31",
        "2026-12-01x", "", "2026/12/01", "20261201", "2026-12-0a", "+026-12-01",
    };
    for (size_t i = 0; i < sizeof (bad) / sizeof (bad[0]); i++) {
        day = 7;
        ck_assert_int_eq (gkx_conversion_day_parse (&day, bad[i], err), GKX_EINVAL);
        ck_assert_uint_eq (day, 7);
    }
    ck_assert_int_eq (gkx_conversion_day_parse (&day, "2026-13-01", err), GKX_EINVAL);
    ck_assert_str_eq (err, "date: \"2026-13-01\" is not a date YYYY-MM-DD from 2000-01-01 to "
                           "9999-12-31");
}
END_TEST

/* ---------------------------------------------------------------------- */
/* Terms and counters                                                       */

START_TEST (test_terms_read)
{
    gkx_conversion_terms_t t;
    gkx_offer_t *offer = s_offer (NULL);
    gkx_conversion_terms_read (&t, offer);
    ck_assert_int_eq (t.paused, 0);
    ck_assert_int_eq (t.revshare, 0);
    ck_assert_str_eq (t.currency, "USD");
    ck_assert_int_eq (t.schedule_start, GKX_CONVERSION_NONE);
    ck_assert_int_eq (t.schedule_end, GKX_CONVERSION_NONE);
    ck_assert_int_eq (t.cap_daily, GKX_CONVERSION_NONE);
    ck_assert_int_eq (t.cap_total, GKX_CONVERSION_NONE);
    ck_assert_int_eq (t.budget_monthly, GKX_CONVERSION_NONE);
    ck_assert_int_eq (t.manual, 0);
    ck_assert_uint_eq (t.hold_days, 0);
    ck_assert_uint_eq (t.click_window_days, 7);
    gkx_offer_destroy (&offer);
    offer = s_offer ("status=paused", "payout.model=revshare", "payout.amount=30",
                     "payout.events-=purchase", "payout.rules=null", "payout.currency=EUR",
                     "schedule.start=2026-12-01T00:00:00Z", "schedule.end=2026-12-31T00:00:00Z",
                     "caps.daily=1", "caps.weekly=2", "caps.monthly=3", "caps.total=4",
                     "budget.daily=5.00", "budget.monthly=6.000001", "budget.total=7",
                     "conversion_policy.approval=manual", "conversion_policy.hold_days=7",
                     "attribution.click_window_days=30", NULL);
    gkx_conversion_terms_read (&t, offer);
    ck_assert_int_eq (t.paused, 1);
    ck_assert_int_eq (t.revshare, 1);
    ck_assert_str_eq (t.currency, "EUR");
    ck_assert_int_eq (t.schedule_start, (int64_t) DEC1);
    ck_assert_int_eq (t.schedule_end, (int64_t) (DEC1 + 30 * DAY));
    ck_assert_int_eq (t.cap_daily, 1);
    ck_assert_int_eq (t.cap_weekly, 2);
    ck_assert_int_eq (t.cap_monthly, 3);
    ck_assert_int_eq (t.cap_total, 4);
    ck_assert_int_eq (t.budget_daily, 5 * M);
    ck_assert_int_eq (t.budget_monthly, 6 * M + 1);
    ck_assert_int_eq (t.budget_total, 7 * M);
    ck_assert_int_eq (t.manual, 1);
    ck_assert_uint_eq (t.hold_days, 7);
    ck_assert_uint_eq (t.click_window_days, 30);
    gkx_offer_destroy (&offer);
}
END_TEST

START_TEST (test_counters)
{
    gkx_conversion_counters_t n;
    memset (&n, 0x5a, sizeof (n));
    /* deciding a conversion on Tuesday 2026-12-01 */
    gkx_conversion_counters_init (&n, DEC1 + 100);
    ck_assert_uint_eq (n.paused_since, 0);
    ck_assert_uint_eq (n.total_count, 0);
    gkx_conversion_counters_add (&n, DEC1, GKX_CONVERSION_APPROVED, 1 * M);
    gkx_conversion_counters_add (&n, DEC1 + DAY - 1, GKX_CONVERSION_PENDING, 2 * M);
    gkx_conversion_counters_add (&n, DEC1 + 50, GKX_CONVERSION_REJECTED, 100 * M);
    gkx_conversion_counters_add (&n, DEC1 + 60, GKX_CONVERSION_REVERSED, 100 * M);
    /* Monday 2026-11-30: same week, other day and month */
    gkx_conversion_counters_add (&n, DEC1 - 1, GKX_CONVERSION_APPROVED, 4 * M);
    /* Wednesday 2026-12-02: same week and month */
    gkx_conversion_counters_add (&n, DEC1 + DAY, GKX_CONVERSION_APPROVED, 8 * M);
    /* Monday 2026-12-07: same month, next week */
    gkx_conversion_counters_add (&n, DEC1 + 6 * DAY, GKX_CONVERSION_APPROVED, 16 * M);
    /* Sunday 2026-11-29: the week before, the month before */
    gkx_conversion_counters_add (&n, DEC1 - DAY - 1, GKX_CONVERSION_APPROVED, 32 * M);
    ck_assert_uint_eq (n.day_count, 2);
    ck_assert_uint_eq (n.week_count, 4);
    ck_assert_uint_eq (n.month_count, 4);
    ck_assert_uint_eq (n.total_count, 6);
    ck_assert_int_eq (n.day_payout, 3 * M);
    ck_assert_int_eq (n.month_payout, 27 * M);
    ck_assert_int_eq (n.total_payout, 63 * M);
    /* sums saturate instead of wrapping */
    for (int i = 0; i < 10000; i++) {
        gkx_conversion_counters_add (&n, DEC1, GKX_CONVERSION_APPROVED,
                                     GKX_CONVERSION_AMOUNT_MAX);
    }
    ck_assert_int_eq (n.total_payout, INT64_MAX);
    ck_assert_int_eq (n.day_payout, INT64_MAX);
    ck_assert_uint_eq (n.day_count, 10002);
}
END_TEST

/* ---------------------------------------------------------------------- */
/* The decision                                                             */

/* Facts of an install from the US on iOS at T0 that the MMP accepted. */
static gkx_conversion_facts_t
s_facts (void)
{
    gkx_conversion_facts_t f;
    memset (&f, 0, sizeof (f));
    f.event = "install";
    f.country = "US";
    f.platform = "ios";
    f.time = T0;
    return f;
}

/* Decides facts on offer with counters from prior conversions (times,
   all approved, payout 2.50) and checks status, reason and payout. */
static void
s_expect (const gkx_offer_t *offer, const gkx_conversion_facts_t *f, const uint64_t *prior,
          size_t prior_count, int status, const char *reason, int64_t payout)
{
    gkx_conversion_counters_t n;
    gkx_conversion_counters_init (&n, f->time);
    for (size_t i = 0; i < prior_count; i++) {
        gkx_conversion_counters_add (&n, prior[i], GKX_CONVERSION_APPROVED, 2500000);
    }
    gkx_conversion_decision_t d;
    char err[GKX_ERRBUF_BYTES] = "";
    ck_assert_msg (gkx_conversion_decide (&d, offer, &n, f, err) == GKX_OK, "%s", err);
    ck_assert_str_eq (gkx_conversion_status_name (d.status), gkx_conversion_status_name (status));
    ck_assert_str_eq (d.reason, reason);
    ck_assert_int_eq (d.payout, payout);
}

START_TEST (test_decide_payout_precedence)
{
    gkx_offer_t *offer = s_offer (NULL);
    gkx_conversion_facts_t f = s_facts ();
    /* default amount */
    s_expect (offer, &f, NULL, 0, GKX_CONVERSION_APPROVED, "", 2500000);
    /* the event's own amount */
    f.event = "purchase";
    s_expect (offer, &f, NULL, 0, GKX_CONVERSION_APPROVED, "", 10000000);
    /* a rule beats the event's amount; the most specific rule wins */
    f.country = "CA";
    s_expect (offer, &f, NULL, 0, GKX_CONVERSION_APPROVED, "", 1500000);
    f.event = "install";
    f.platform = "android";
    s_expect (offer, &f, NULL, 0, GKX_CONVERSION_APPROVED, "", 1800000);
    /* unknown country and platform match no rule */
    f.country = NULL;
    f.platform = NULL;
    s_expect (offer, &f, NULL, 0, GKX_CONVERSION_APPROVED, "", 2500000);
    /* revenue means nothing outside revshare */
    f.has_revenue = 1;
    f.revenue = 99 * M;
    s_expect (offer, &f, NULL, 0, GKX_CONVERSION_APPROVED, "", 2500000);
    gkx_offer_destroy (&offer);
}
END_TEST

START_TEST (test_decide_revshare)
{
    gkx_offer_t *offer = s_offer ("payout.model=revshare", "payout.amount=30",
                                  "payout.events.purchase=100", "payout.rules=null", NULL);
    gkx_conversion_facts_t f = s_facts ();
    /* no revenue: nothing to share */
    s_expect (offer, &f, NULL, 0, GKX_CONVERSION_APPROVED, "", 0);
    f.has_revenue = 1;
    f.revenue = 10 * M;
    s_expect (offer, &f, NULL, 0, GKX_CONVERSION_APPROVED, "", 3 * M);
    /* rounded down to the micro-unit: 30% of 3.333333 is 0.9999999 */
    f.revenue = 3333333;
    s_expect (offer, &f, NULL, 0, GKX_CONVERSION_APPROVED, "", 999999);
    f.revenue = 3;
    s_expect (offer, &f, NULL, 0, GKX_CONVERSION_APPROVED, "", 0);
    f.revenue = 0;
    s_expect (offer, &f, NULL, 0, GKX_CONVERSION_APPROVED, "", 0);
    /* the largest revenue at 100% and 30% without overflow */
    f.event = "purchase";
    f.revenue = GKX_CONVERSION_AMOUNT_MAX;
    s_expect (offer, &f, NULL, 0, GKX_CONVERSION_APPROVED, "", GKX_CONVERSION_AMOUNT_MAX);
    f.event = "install";
    s_expect (offer, &f, NULL, 0, GKX_CONVERSION_APPROVED, "", 300000000000000LL);
    gkx_offer_destroy (&offer);
    /* a percentage with micro-units: 12.345678% of 1000.00 */
    offer = s_offer ("payout.model=revshare", "payout.amount=12.345678",
                     "payout.events-=purchase", "payout.rules=null", NULL);
    f.revenue = 1000 * M;
    s_expect (offer, &f, NULL, 0, GKX_CONVERSION_APPROVED, "", 123456780);
    gkx_offer_destroy (&offer);
}
END_TEST

START_TEST (test_decide_mmp_paused_expired)
{
    gkx_offer_t *offer = s_offer (NULL);
    gkx_conversion_facts_t f = s_facts ();
    f.mmp_rejected = 1;
    f.mmp_reason = "blocked install (click flooding)";
    s_expect (offer, &f, NULL, 0, GKX_CONVERSION_REJECTED,
              "mmp: blocked install (click flooding)", 2500000);
    /* a rejection without a reason (AppsFlyer's is_rejected=1 alone) */
    f.mmp_reason = NULL;
    s_expect (offer, &f, NULL, 0, GKX_CONVERSION_REJECTED, "mmp", 2500000);
    f.mmp_reason = "";
    s_expect (offer, &f, NULL, 0, GKX_CONVERSION_REJECTED, "mmp", 2500000);
    /* a reason without the rejection flag means nothing */
    f.mmp_rejected = 0;
    f.mmp_reason = "bots";
    s_expect (offer, &f, NULL, 0, GKX_CONVERSION_APPROVED, "", 2500000);
    f.mmp_rejected = 1;
    gkx_offer_destroy (&offer);

    offer = s_offer ("status=paused", "caps.daily=0", NULL);
    f.mmp_rejected = 0;
    s_expect (offer, &f, NULL, 0, GKX_CONVERSION_REJECTED, "paused", 2500000);
    /* the MMP's verdict comes first, then paused, then cap */
    f.mmp_rejected = 1;
    f.mmp_reason = "fraud";
    s_expect (offer, &f, NULL, 0, GKX_CONVERSION_REJECTED, "mmp: fraud", 2500000);
    gkx_offer_destroy (&offer);

    offer = s_offer ("status=paused", "schedule.end=2026-11-01T00:00:00Z", NULL);
    f.mmp_rejected = 0;
    s_expect (offer, &f, NULL, 0, GKX_CONVERSION_REJECTED, "paused", 2500000);
    gkx_offer_destroy (&offer);

    /* the schedule includes its start and end seconds */
    offer = s_offer ("schedule.start=2026-12-01T01:00:00Z", "schedule.end=2026-12-02T00:00:00Z",
                     "caps.daily=0", NULL);
    f.time = T0 - 1;
    s_expect (offer, &f, NULL, 0, GKX_CONVERSION_REJECTED, "expired", 2500000);
    f.time = T0;
    s_expect (offer, &f, NULL, 0, GKX_CONVERSION_REJECTED, "cap", 2500000);
    f.time = DEC1 + DAY;
    s_expect (offer, &f, NULL, 0, GKX_CONVERSION_REJECTED, "cap", 2500000);
    f.time = DEC1 + DAY + 1;
    s_expect (offer, &f, NULL, 0, GKX_CONVERSION_REJECTED, "expired", 2500000);
    gkx_offer_destroy (&offer);
    offer = s_offer ("schedule.start=2026-12-01T01:00:00Z", "schedule.end=2026-12-02T00:00:00Z",
                     NULL);
    f.time = T0;
    s_expect (offer, &f, NULL, 0, GKX_CONVERSION_APPROVED, "", 2500000);
    f.time = DEC1 + DAY;
    s_expect (offer, &f, NULL, 0, GKX_CONVERSION_APPROVED, "", 2500000);
    gkx_offer_destroy (&offer);
    /* only an end, or only a start */
    offer = s_offer ("schedule.end=2026-12-01T00:59:59Z", NULL);
    f.time = T0;
    s_expect (offer, &f, NULL, 0, GKX_CONVERSION_REJECTED, "expired", 2500000);
    gkx_offer_destroy (&offer);
    offer = s_offer ("schedule.start=2026-12-01T01:00:01Z", NULL);
    s_expect (offer, &f, NULL, 0, GKX_CONVERSION_REJECTED, "expired", 2500000);
    gkx_offer_destroy (&offer);
}
END_TEST

START_TEST (test_decide_caps_at_period_boundaries)
{
    gkx_conversion_facts_t f = s_facts ();
    /* deciding at 2026-12-01T01:00:00Z, a Tuesday */
    gkx_offer_t *offer = s_offer ("caps.daily=2", NULL);
    const uint64_t same_day[] = {DEC1, DEC1 + DAY - 1};
    const uint64_t other_days[] = {DEC1 - 1, DEC1 + DAY, DEC1 + DAY + 5};
    /* the 2nd conversion of the day is exactly at the cap; the 3rd is over */
    s_expect (offer, &f, same_day, 1, GKX_CONVERSION_APPROVED, "", 2500000);
    s_expect (offer, &f, same_day, 2, GKX_CONVERSION_REJECTED, "cap", 2500000);
    s_expect (offer, &f, other_days, 3, GKX_CONVERSION_APPROVED, "", 2500000);
    gkx_offer_destroy (&offer);

    offer = s_offer ("caps.weekly=2", NULL);
    /* Monday 00:00:00 and Sunday 23:59:59 bound the ISO week */
    const uint64_t same_week[] = {DEC1 - DAY, DEC1 + 6 * DAY - 1};
    const uint64_t other_weeks[] = {DEC1 - DAY - 1, DEC1 + 6 * DAY, DEC1 - 8 * DAY};
    s_expect (offer, &f, same_week, 1, GKX_CONVERSION_APPROVED, "", 2500000);
    s_expect (offer, &f, same_week, 2, GKX_CONVERSION_REJECTED, "cap", 2500000);
    s_expect (offer, &f, other_weeks, 3, GKX_CONVERSION_APPROVED, "", 2500000);
    gkx_offer_destroy (&offer);

    offer = s_offer ("caps.monthly=2", NULL);
    const uint64_t same_month[] = {DEC1, DEC1 + 31 * DAY - 1};
    const uint64_t other_months[] = {DEC1 - 1, DEC1 + 31 * DAY, DEC1 + 365 * DAY};
    s_expect (offer, &f, same_month, 1, GKX_CONVERSION_APPROVED, "", 2500000);
    s_expect (offer, &f, same_month, 2, GKX_CONVERSION_REJECTED, "cap", 2500000);
    s_expect (offer, &f, other_months, 3, GKX_CONVERSION_APPROVED, "", 2500000);
    gkx_offer_destroy (&offer);

    offer = s_offer ("caps.total=3", NULL);
    s_expect (offer, &f, other_months, 2, GKX_CONVERSION_APPROVED, "", 2500000);
    s_expect (offer, &f, other_months, 3, GKX_CONVERSION_REJECTED, "cap", 2500000);
    gkx_offer_destroy (&offer);

    /* a cap of 0 refuses every conversion */
    offer = s_offer ("caps.total=0", NULL);
    s_expect (offer, &f, NULL, 0, GKX_CONVERSION_REJECTED, "cap", 2500000);
    gkx_offer_destroy (&offer);

    /* rejected and reversed conversions do not count */
    offer = s_offer ("caps.daily=1", NULL);
    gkx_conversion_counters_t n;
    gkx_conversion_counters_init (&n, T0);
    gkx_conversion_counters_add (&n, T0, GKX_CONVERSION_REJECTED, 2500000);
    gkx_conversion_counters_add (&n, T0, GKX_CONVERSION_REVERSED, 2500000);
    gkx_conversion_decision_t d;
    ck_assert_int_eq (gkx_conversion_decide (&d, offer, &n, &f, NULL), GKX_OK);
    ck_assert_int_eq (d.status, GKX_CONVERSION_APPROVED);
    gkx_conversion_counters_add (&n, T0, GKX_CONVERSION_PENDING, 2500000);
    ck_assert_int_eq (gkx_conversion_decide (&d, offer, &n, &f, NULL), GKX_OK);
    ck_assert_int_eq (d.status, GKX_CONVERSION_REJECTED);
    ck_assert_str_eq (d.reason, "cap");
    gkx_offer_destroy (&offer);
}
END_TEST

START_TEST (test_decide_budgets)
{
    gkx_conversion_facts_t f = s_facts ();
    const uint64_t same_day[] = {DEC1, DEC1 + 10};
    const uint64_t same_month[] = {DEC1 + 2 * DAY, DEC1 + 3 * DAY};
    const uint64_t earlier[] = {DEC1 - 400 * DAY, DEC1 - 40 * DAY};
    /* 5.00 a day: one prior 2.50 leaves room for exactly 2.50 more */
    gkx_offer_t *offer = s_offer ("budget.daily=5.00", NULL);
    s_expect (offer, &f, same_day, 1, GKX_CONVERSION_APPROVED, "", 2500000);
    s_expect (offer, &f, same_day, 2, GKX_CONVERSION_REJECTED, "budget", 2500000);
    s_expect (offer, &f, same_month, 2, GKX_CONVERSION_APPROVED, "", 2500000);
    gkx_offer_destroy (&offer);
    /* one micro-unit less and the second conversion no longer fits */
    offer = s_offer ("budget.daily=4.999999", NULL);
    s_expect (offer, &f, same_day, 1, GKX_CONVERSION_REJECTED, "budget", 2500000);
    gkx_offer_destroy (&offer);

    offer = s_offer ("budget.monthly=5.00", NULL);
    s_expect (offer, &f, same_month, 1, GKX_CONVERSION_APPROVED, "", 2500000);
    s_expect (offer, &f, same_month, 2, GKX_CONVERSION_REJECTED, "budget", 2500000);
    s_expect (offer, &f, earlier, 2, GKX_CONVERSION_APPROVED, "", 2500000);
    gkx_offer_destroy (&offer);

    offer = s_offer ("budget.total=7.50", NULL);
    s_expect (offer, &f, earlier, 2, GKX_CONVERSION_APPROVED, "", 2500000);
    const uint64_t three[] = {DEC1 - 400 * DAY, DEC1 - 40 * DAY, DEC1};
    s_expect (offer, &f, three, 3, GKX_CONVERSION_REJECTED, "budget", 2500000);
    /* a cheaper event still fits what is left */
    f.country = "CA";
    s_expect (offer, &f, earlier, 2, GKX_CONVERSION_APPROVED, "", 1500000);
    f.country = "US";
    gkx_offer_destroy (&offer);

    /* a budget of 0 still takes conversions that pay nothing */
    offer = s_offer ("budget.total=0", "payout.amount=0", NULL);
    s_expect (offer, &f, NULL, 0, GKX_CONVERSION_APPROVED, "", 0);
    f.event = "purchase";
    s_expect (offer, &f, NULL, 0, GKX_CONVERSION_REJECTED, "budget", 10000000);
    f.event = "install";
    gkx_offer_destroy (&offer);

    /* a cap comes before a budget */
    offer = s_offer ("budget.daily=2.50", "caps.daily=1", NULL);
    s_expect (offer, &f, same_day, 1, GKX_CONVERSION_REJECTED, "cap", 2500000);
    gkx_offer_destroy (&offer);
    /* saturated counters still refuse */
    offer = s_offer ("budget.total=1000000000", NULL);
    gkx_conversion_counters_t n;
    gkx_conversion_counters_init (&n, T0);
    n.total_payout = INT64_MAX;
    gkx_conversion_decision_t d;
    ck_assert_int_eq (gkx_conversion_decide (&d, offer, &n, &f, NULL), GKX_OK);
    ck_assert_str_eq (d.reason, "budget");
    gkx_offer_destroy (&offer);
}
END_TEST

START_TEST (test_decide_manual_approval)
{
    gkx_conversion_facts_t f = s_facts ();
    gkx_offer_t *offer = s_offer ("conversion_policy.approval=manual", "caps.daily=1", NULL);
    s_expect (offer, &f, NULL, 0, GKX_CONVERSION_PENDING, "", 2500000);
    const uint64_t one[] = {T0};
    s_expect (offer, &f, one, 1, GKX_CONVERSION_REJECTED, "cap", 2500000);
    f.mmp_rejected = 1;
    f.mmp_reason = "rejected by MMP";
    s_expect (offer, &f, NULL, 0, GKX_CONVERSION_REJECTED, "mmp: rejected by MMP", 2500000);
    gkx_offer_destroy (&offer);
}
END_TEST

START_TEST (test_decide_rejects_bad_facts)
{
    gkx_offer_t *offer = s_offer (NULL);
    gkx_conversion_counters_t n;
    gkx_conversion_counters_init (&n, T0);
    gkx_conversion_decision_t d;
    memset (&d, 0x5a, sizeof (d));
    gkx_conversion_decision_t untouched = d;
    char err[GKX_ERRBUF_BYTES] = "";
    gkx_conversion_facts_t f = s_facts ();
    f.event = NULL;
    ck_assert_int_eq (gkx_conversion_decide (&d, offer, &n, &f, err), GKX_EINVAL);
    ck_assert_str_eq (err, "conversion.event: is required");
    f = s_facts ();
    f.event = "a b";
    ck_assert_int_eq (gkx_conversion_decide (&d, offer, &n, &f, err), GKX_EINVAL);
    ck_assert_str_eq (err, "conversion.event: \"a b\" is not a name of 1 to 64 letters, digits "
                           "or \"_.:-\"");
    f = s_facts ();
    f.country = "ZZ";
    ck_assert_int_eq (gkx_conversion_decide (&d, offer, &n, &f, err), GKX_EINVAL);
    ck_assert_str_eq (err, "conversion.country: \"ZZ\" is not an ISO 3166-1 country code");
    f = s_facts ();
    f.platform = "tv";
    ck_assert_int_eq (gkx_conversion_decide (&d, offer, &n, &f, err), GKX_EINVAL);
    ck_assert_str_eq (err, "conversion.platform: \"tv\" is not one of ios, android, web, other");
    f = s_facts ();
    f.time = 5;
    ck_assert_int_eq (gkx_conversion_decide (&d, offer, &n, &f, err), GKX_EINVAL);
    ck_assert_str_eq (err, "conversion.time: must be a time from 2000-01-01T00:00:00Z to "
                           "9999-12-31T23:59:59Z");
    f = s_facts ();
    f.click_time = 5;
    ck_assert_int_eq (gkx_conversion_decide (&d, offer, &n, &f, err), GKX_EINVAL);
    ck_assert_str_eq (err, "conversion.click_time: must be a time from 2000-01-01T00:00:00Z to "
                           "9999-12-31T23:59:59Z");
    f = s_facts ();
    f.click_time = T0 + 1;
    ck_assert_int_eq (gkx_conversion_decide (&d, offer, &n, &f, err), GKX_EINVAL);
    ck_assert_str_eq (err, "conversion.click_time: must not be after conversion.time");
    ck_assert_mem_eq (&d, &untouched, sizeof (d));
    f = s_facts ();
    f.mmp_rejected = 1;
    f.mmp_reason = "bad\nline";
    ck_assert_int_eq (gkx_conversion_decide (&d, offer, &n, &f, err), GKX_EINVAL);
    ck_assert_str_eq (err, "mmp_reason: must be at most 251 bytes of UTF-8 text without "
                           "control characters");
    char long_reason[253];
    memset (long_reason, 'r', sizeof (long_reason) - 1);
    long_reason[252] = '\0';
    f.mmp_reason = long_reason;
    ck_assert_int_eq (gkx_conversion_decide (&d, offer, &n, &f, err), GKX_EINVAL);
    long_reason[251] = '\0';
    ck_assert_int_eq (gkx_conversion_decide (&d, offer, &n, &f, err), GKX_OK);
    ck_assert_uint_eq (strlen (d.reason), GKX_CONVERSION_REASON_MAX);
    d = untouched;
    f = s_facts ();
    f.has_revenue = 1;
    f.revenue = -1;
    ck_assert_int_eq (gkx_conversion_decide (&d, offer, &n, &f, err), GKX_EINVAL);
    ck_assert_str_eq (err, "revenue: must be an integer from 0 to 1000000000000000 micro-units");
    ck_assert_mem_eq (&d, &untouched, sizeof (d));
    gkx_offer_destroy (&offer);
}
END_TEST

/* Builds the conversion the advertiser would write for facts. */
static gkx_conversion_t
s_written (const gkx_offer_t *offer, const gkx_conversion_counters_t *n,
           const gkx_conversion_facts_t *f)
{
    gkx_conversion_decision_t d;
    gkx_conversion_terms_t terms;
    ck_assert_int_eq (gkx_conversion_decide (&d, offer, n, f, NULL), GKX_OK);
    gkx_conversion_terms_read (&terms, offer);
    gkx_conversion_t c = s_conversion ();
    snprintf (c.currency, sizeof (c.currency), "%s", terms.currency);
    snprintf (c.event, sizeof (c.event), "%s", f->event);
    snprintf (c.country, sizeof (c.country), "%s", f->country ? f->country : "");
    snprintf (c.platform, sizeof (c.platform), "%s", f->platform ? f->platform : "");
    c.time = f->time;
    c.click_time = f->click_time;
    c.status = d.status;
    c.payout = d.payout;
    snprintf (c.reason, sizeof (c.reason), "%s", d.reason);
    return c;
}

START_TEST (test_verify)
{
    gkx_offer_t *offer = s_offer ("caps.daily=1", NULL);
    gkx_conversion_counters_t n;
    gkx_conversion_counters_init (&n, T0);
    gkx_conversion_facts_t f = s_facts ();
    char err[GKX_ERRBUF_BYTES] = "";
    gkx_conversion_t c = s_written (offer, &n, &f);
    ck_assert_int_eq (gkx_conversion_verify (&c, offer, &n, err), GKX_OK);
    /* what the publisher catches */
    c.payout = 2000000;
    ck_assert_int_eq (gkx_conversion_verify (&c, offer, &n, err), GKX_EPOLICY);
    ck_assert_str_eq (err, "conversion.payout: 2000000 written, the terms give 2500000");
    c = s_written (offer, &n, &f);
    snprintf (c.currency, sizeof (c.currency), "EUR");
    ck_assert_int_eq (gkx_conversion_verify (&c, offer, &n, err), GKX_EPOLICY);
    ck_assert_str_eq (err, "conversion.currency: \"EUR\" written, the offer pays in \"USD\"");
    c = s_written (offer, &n, &f);
    c.status = GKX_CONVERSION_REJECTED;
    snprintf (c.reason, sizeof (c.reason), "cap");
    ck_assert_int_eq (gkx_conversion_verify (&c, offer, &n, err), GKX_EPOLICY);
    ck_assert_str_eq (err, "conversion.status: rejected \"cap\" written, the terms give approved");
    /* an over-cap conversion written as approved */
    gkx_conversion_counters_add (&n, T0, GKX_CONVERSION_APPROVED, 2500000);
    c = s_written (offer, &n, &f);
    ck_assert_int_eq (gkx_conversion_verify (&c, offer, &n, err), GKX_OK);
    c.status = GKX_CONVERSION_APPROVED;
    c.reason[0] = '\0';
    ck_assert_int_eq (gkx_conversion_verify (&c, offer, &n, err), GKX_EPOLICY);
    ck_assert_str_eq (err, "conversion.status: approved written, the terms give rejected \"cap\"");
    c.status = GKX_CONVERSION_REJECTED;
    snprintf (c.reason, sizeof (c.reason), "budget");
    ck_assert_int_eq (gkx_conversion_verify (&c, offer, &n, err), GKX_EPOLICY);
    ck_assert_str_eq (err,
                      "conversion.status: rejected \"budget\" written, the terms give rejected "
                      "\"cap\"");
    /* the MMP's verdict is read from the entry */
    snprintf (c.reason, sizeof (c.reason), "mmp: fraud");
    ck_assert_int_eq (gkx_conversion_verify (&c, offer, &n, err), GKX_OK);
    snprintf (c.reason, sizeof (c.reason), "mmp");
    ck_assert_int_eq (gkx_conversion_verify (&c, offer, &n, err), GKX_OK);
    snprintf (c.reason, sizeof (c.reason), "mmpx");
    ck_assert_int_eq (gkx_conversion_verify (&c, offer, &n, err), GKX_EPOLICY);
    snprintf (c.reason, sizeof (c.reason), "mmp: ");
    ck_assert_int_eq (gkx_conversion_verify (&c, offer, &n, err), GKX_EPOLICY);
    ck_assert_str_eq (err, "conversion.status: rejected \"mmp: \" written, the terms give "
                           "rejected \"cap\"");
    c.status = GKX_CONVERSION_PENDING;
    snprintf (c.reason, sizeof (c.reason), "mmp: fraud");
    ck_assert_int_eq (gkx_conversion_verify (&c, offer, &n, err), GKX_EPOLICY);
    gkx_offer_destroy (&offer);

    /* revshare: the revenue stays with the advertiser, the payout is taken
       as written and still counts against the budget */
    offer = s_offer ("payout.model=revshare", "payout.amount=30", "payout.events-=purchase",
                     "payout.rules=null", "budget.daily=10.00", NULL);
    gkx_conversion_counters_init (&n, T0);
    f.has_revenue = 1;
    f.revenue = 20 * M;
    c = s_written (offer, &n, &f);
    ck_assert_int_eq (c.payout, 6 * M);
    ck_assert_int_eq (gkx_conversion_verify (&c, offer, &n, err), GKX_OK);
    c.payout = 9 * M;
    ck_assert_int_eq (gkx_conversion_verify (&c, offer, &n, err), GKX_OK);
    c.payout = 11 * M;
    ck_assert_int_eq (gkx_conversion_verify (&c, offer, &n, err), GKX_EPOLICY);
    ck_assert_str_eq (err, "conversion.status: approved written, the terms give rejected "
                           "\"budget\"");
    gkx_offer_destroy (&offer);
}
END_TEST

/* Decides facts with counters whose only content is paused_since, checks
   the outcome, and checks that the publisher's verification of what the
   advertiser would write agrees, from the same causal past. */
static void
s_expect_paused (const gkx_offer_t *offer, const gkx_conversion_facts_t *f, uint64_t paused_since,
                 int status, const char *reason)
{
    gkx_conversion_counters_t n;
    gkx_conversion_counters_init (&n, f->time);
    n.paused_since = paused_since;
    gkx_conversion_decision_t d;
    char err[GKX_ERRBUF_BYTES] = "";
    ck_assert_msg (gkx_conversion_decide (&d, offer, &n, f, err) == GKX_OK, "%s", err);
    ck_assert_str_eq (gkx_conversion_status_name (d.status), gkx_conversion_status_name (status));
    ck_assert_str_eq (d.reason, reason);
    gkx_conversion_t c = s_written (offer, &n, f);
    ck_assert_msg (gkx_conversion_verify (&c, offer, &n, err) == GKX_OK, "%s", err);
    /* the body carries the click time the publisher's check reads */
    uint8_t *body = NULL;
    size_t len = 0;
    ck_assert_msg (gkx_conversion_encode (&body, &len, &c, err) == GKX_OK, "%s", err);
    gkx_conversion_t back;
    ck_assert_msg (gkx_conversion_decode (&back, body, len, err) == GKX_OK, "%s", err);
    ck_assert_msg (gkx_conversion_verify (&back, offer, &n, err) == GKX_OK, "%s", err);
    gkx_free (body);
}

/* A pause written after the click does not reject what the click brings
   within the click window; everything else about a paused offer is as
   before. Pause at T0 - 1 day; the default window is 7 days. */
START_TEST (test_decide_paused_click_before_pause)
{
    const uint64_t pause = T0 - DAY;
    gkx_offer_t *offer = s_offer ("status=paused", NULL);
    gkx_conversion_facts_t f = s_facts ();
    /* click before the pause, event within the window: the other rules decide */
    f.click_time = T0 - 2 * DAY;
    s_expect_paused (offer, &f, pause, GKX_CONVERSION_APPROVED, "");
    f.click_time = pause - 1;
    s_expect_paused (offer, &f, pause, GKX_CONVERSION_APPROVED, "");
    /* the window includes its last second: event exactly 7 days after the click */
    f.click_time = T0 - 7 * DAY;
    s_expect_paused (offer, &f, pause, GKX_CONVERSION_APPROVED, "");
    /* click before the pause, event one second past the window */
    f.click_time = T0 - 7 * DAY - 1;
    s_expect_paused (offer, &f, pause, GKX_CONVERSION_REJECTED, "paused");
    /* click after the pause, or in the second it was written */
    f.click_time = pause + 10;
    s_expect_paused (offer, &f, pause, GKX_CONVERSION_REJECTED, "paused");
    f.click_time = pause;
    s_expect_paused (offer, &f, pause, GKX_CONVERSION_REJECTED, "paused");
    /* no click time */
    f.click_time = 0;
    s_expect_paused (offer, &f, pause, GKX_CONVERSION_REJECTED, "paused");
    /* paused by the genesis, or a pause time not known: nothing is before it */
    f.click_time = T0 - 2 * DAY;
    s_expect_paused (offer, &f, 0, GKX_CONVERSION_REJECTED, "paused");
    /* the MMP's verdict still comes first */
    f.mmp_rejected = 1;
    f.mmp_reason = "bots";
    s_expect_paused (offer, &f, pause, GKX_CONVERSION_REJECTED, "mmp: bots");
    f.mmp_rejected = 0;
    f.mmp_reason = NULL;
    gkx_offer_destroy (&offer);

    /* the window is the offer's attribution.click_window_days */
    offer = s_offer ("status=paused", "attribution.click_window_days=2", NULL);
    f.click_time = T0 - 2 * DAY;
    s_expect_paused (offer, &f, pause, GKX_CONVERSION_APPROVED, "");
    f.click_time = T0 - 2 * DAY - 1;
    s_expect_paused (offer, &f, pause, GKX_CONVERSION_REJECTED, "paused");
    gkx_offer_destroy (&offer);

    /* past the pause, the schedule, caps, budgets and manual approval decide */
    f.click_time = T0 - 2 * DAY;
    offer = s_offer ("status=paused", "schedule.end=2026-11-30T00:00:00Z", NULL);
    s_expect_paused (offer, &f, pause, GKX_CONVERSION_REJECTED, "expired");
    gkx_offer_destroy (&offer);
    offer = s_offer ("status=paused", "caps.daily=0", NULL);
    s_expect_paused (offer, &f, pause, GKX_CONVERSION_REJECTED, "cap");
    gkx_offer_destroy (&offer);
    offer = s_offer ("status=paused", "budget.total=1.00", NULL);
    s_expect_paused (offer, &f, pause, GKX_CONVERSION_REJECTED, "budget");
    gkx_offer_destroy (&offer);
    offer = s_offer ("status=paused", "conversion_policy.approval=manual", NULL);
    s_expect_paused (offer, &f, pause, GKX_CONVERSION_PENDING, "");
    gkx_offer_destroy (&offer);

    /* an active offer ignores both times */
    offer = s_offer (NULL);
    f.click_time = T0;
    s_expect_paused (offer, &f, T0 - 8 * DAY, GKX_CONVERSION_APPROVED, "");
    f.click_time = 0;
    s_expect_paused (offer, &f, 0, GKX_CONVERSION_APPROVED, "");
    gkx_offer_destroy (&offer);
}
END_TEST

/* The publisher catches a paused offer's conversion written the wrong way
   round, whichever way it is. */
START_TEST (test_verify_paused_click_time)
{
    gkx_offer_t *offer = s_offer ("status=paused", NULL);
    gkx_conversion_counters_t n;
    gkx_conversion_counters_init (&n, T0);
    n.paused_since = T0 - DAY;
    gkx_conversion_facts_t f = s_facts ();
    char err[GKX_ERRBUF_BYTES] = "";
    /* a click after the pause written as approved */
    f.click_time = T0 - 1;
    gkx_conversion_t c = s_written (offer, &n, &f);
    ck_assert_str_eq (c.reason, "paused");
    c.status = GKX_CONVERSION_APPROVED;
    c.reason[0] = '\0';
    ck_assert_int_eq (gkx_conversion_verify (&c, offer, &n, err), GKX_EPOLICY);
    ck_assert_str_eq (err, "conversion.status: approved written, the terms give rejected "
                           "\"paused\"");
    /* the same body with its click moved before the pause is fine */
    c.click_time = T0 - 2 * DAY;
    ck_assert_int_eq (gkx_conversion_verify (&c, offer, &n, err), GKX_OK);
    /* a click before the pause written as paused */
    c.status = GKX_CONVERSION_REJECTED;
    snprintf (c.reason, sizeof (c.reason), "paused");
    ck_assert_int_eq (gkx_conversion_verify (&c, offer, &n, err), GKX_EPOLICY);
    ck_assert_str_eq (err, "conversion.status: rejected \"paused\" written, the terms give "
                           "approved");
    /* and without a click time it is paused again */
    c.click_time = 0;
    ck_assert_int_eq (gkx_conversion_verify (&c, offer, &n, err), GKX_OK);
    gkx_offer_destroy (&offer);
}
END_TEST

/* ---------------------------------------------------------------------- */
/* Status changes                                                           */

/* Returns the hlc of a Unix time in seconds plus ms milliseconds. */
static uint64_t
s_hlc (uint64_t seconds, uint64_t ms)
{
    return (seconds * 1000 + ms) << GKX_HLC_COUNTER_BITS;
}

START_TEST (test_transitions)
{
    static const int allowed[5][5] = {
        [GKX_CONVERSION_APPROVED] = {0, 0, 0, 1, 1},
        [GKX_CONVERSION_PENDING] = {0, 1, 0, 1, 0},
        [GKX_CONVERSION_REJECTED] = {0, 1, 1, 0, 0},
        [GKX_CONVERSION_REVERSED] = {0, 0, 0, 0, 0},
    };
    for (int from = 0; from <= 5; from++) {
        for (int to = 0; to <= 5; to++) {
            int want = from < 5 && to < 5 ? allowed[from][to] : 0;
            ck_assert_msg (gkx_conversion_is_transition (from, to) == want, "%d -> %d", from,
                           to);
        }
    }
}
END_TEST

START_TEST (test_change_check_and_lock)
{
    char err[GKX_ERRBUF_BYTES] = "";
    gkx_conversion_state_t s = {GKX_CONVERSION_APPROVED, T0, s_hlc (T0 + 60, 0), 7};
    uint64_t lock = T0 + 7 * DAY;
    ck_assert_uint_eq (gkx_conversion_lock_time (T0, 7), lock);
    ck_assert_uint_eq (gkx_conversion_lock_time (T0, 0), T0);
    /* on hold: may still be reversed, up to and including the lock second */
    ck_assert_int_eq (gkx_conversion_change_check (&s, GKX_CONVERSION_REVERSED,
                                                   s_hlc (T0 + 61, 0), err),
                      GKX_OK);
    ck_assert_int_eq (gkx_conversion_change_check (&s, GKX_CONVERSION_REVERSED,
                                                   s_hlc (lock, 999) | 0xffff, err),
                      GKX_OK);
    ck_assert_int_eq (gkx_conversion_change_check (&s, GKX_CONVERSION_REJECTED,
                                                   s_hlc (lock + 1, 0), err),
                      GKX_EPOLICY);
    ck_assert_str_eq (err,
                      "conversion_status: the conversion is approved and locked since "
                      "2026-12-08T01:00:00Z (hold of 7 days); a change at 2026-12-08T01:00:01Z "
                      "is refused");
    /* no hold: an approved conversion locks at its own time */
    s.hold_days = 0;
    ck_assert_int_eq (gkx_conversion_change_check (&s, GKX_CONVERSION_REVERSED,
                                                   s_hlc (T0 + 61, 0), err),
                      GKX_EPOLICY);
    /* the lock concerns approved conversions only */
    s.status = GKX_CONVERSION_REJECTED;
    ck_assert_int_eq (gkx_conversion_change_check (&s, GKX_CONVERSION_APPROVED,
                                                   s_hlc (T0 + 400 * DAY, 0), err),
                      GKX_OK);
    s.status = GKX_CONVERSION_PENDING;
    ck_assert_int_eq (gkx_conversion_change_check (&s, GKX_CONVERSION_APPROVED,
                                                   s_hlc (T0 + 400 * DAY, 0), err),
                      GKX_OK);
    /* transitions */
    ck_assert_int_eq (gkx_conversion_change_check (&s, GKX_CONVERSION_PENDING,
                                                   s_hlc (T0 + 61, 0), err),
                      GKX_EPOLICY);
    ck_assert_str_eq (err, "conversion_status.status: already pending");
    ck_assert_int_eq (gkx_conversion_change_check (&s, GKX_CONVERSION_REVERSED,
                                                   s_hlc (T0 + 61, 0), err),
                      GKX_EPOLICY);
    ck_assert_str_eq (err, "conversion_status.status: pending -> reversed is not allowed");
    s.status = GKX_CONVERSION_REVERSED;
    s.hold_days = 60;
    ck_assert_int_eq (gkx_conversion_change_check (&s, GKX_CONVERSION_APPROVED,
                                                   s_hlc (T0 + 61, 0), err),
                      GKX_EPOLICY);
    ck_assert_str_eq (err, "conversion_status.status: reversed -> approved is not allowed");
    /* a change must come after the conversion */
    s.status = GKX_CONVERSION_PENDING;
    ck_assert_int_eq (gkx_conversion_change_check (&s, GKX_CONVERSION_APPROVED, s.hlc, err),
                      GKX_EPOLICY);
    ck_assert_str_eq (err, "conversion_status: the change does not come after the conversion");
    ck_assert_int_eq (gkx_conversion_change_check (&s, GKX_CONVERSION_APPROVED, s.hlc + 1, err),
                      GKX_OK);
}
END_TEST

int
main (void)
{
    Suite *suite = suite_create ("conversion");
    TCase *tc = tcase_create ("bodies");
    tcase_add_test (tc, test_conversion_round_trip_and_golden_bytes);
    tcase_add_test (tc, test_conversion_click_time_round_trip);
    tcase_add_test (tc, test_change_round_trip_and_golden_bytes);
    tcase_add_loop_test (tc, test_conversion_decode_rejects, 0, (int) S_CONVERSION_REJECT_COUNT);
    tcase_add_loop_test (tc, test_change_decode_rejects, 0, (int) S_CHANGE_REJECT_COUNT);
    tcase_add_test (tc, test_decode_rejects_non_canonical_msgpack);
    tcase_add_test (tc, test_encode_rejects);
    tcase_add_test (tc, test_status_names);
    suite_add_tcase (suite, tc);
    tc = tcase_create ("calendar");
    tcase_add_test (tc, test_periods_match_libc_iso_weeks_and_months);
    tcase_add_test (tc, test_period_boundaries);
    tcase_add_test (tc, test_day_parse);
    suite_add_tcase (suite, tc);
    tc = tcase_create ("decision");
    tcase_add_test (tc, test_terms_read);
    tcase_add_test (tc, test_counters);
    tcase_add_test (tc, test_decide_payout_precedence);
    tcase_add_test (tc, test_decide_revshare);
    tcase_add_test (tc, test_decide_mmp_paused_expired);
    tcase_add_test (tc, test_decide_caps_at_period_boundaries);
    tcase_add_test (tc, test_decide_budgets);
    tcase_add_test (tc, test_decide_manual_approval);
    tcase_add_test (tc, test_decide_rejects_bad_facts);
    tcase_add_test (tc, test_verify);
    tcase_add_test (tc, test_decide_paused_click_before_pause);
    tcase_add_test (tc, test_verify_paused_click_time);
    suite_add_tcase (suite, tc);
    tc = tcase_create ("status");
    tcase_add_test (tc, test_transitions);
    tcase_add_test (tc, test_change_check_and_lock);
    suite_add_tcase (suite, tc);
    return gkx_test_run (suite);
}
