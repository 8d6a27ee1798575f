/*  test_card - the self-signed tenant card.
    Part of gokart-exchange; MIT licence.

    A fixture issues one advertiser card. Invalid cards for the decoder are
    packed by hand (s_craft) and signed by the card's own key, so each is
    refused for the one rule it breaks and not for its signature.
*/
#include "testutil.h"

#include <gkx/card.h>
#include <gkx/codec.h>
#include <gkx/kind.h>

#include <sodium.h>
#include <stdarg.h>

/* Asserts that an int expression equals a GKX_* code, naming both. */
#define ck_assert_rc(expr, code)                                                   \
    do {                                                                           \
        int rc_ = (expr);                                                          \
        ck_assert_msg (rc_ == (code), "got %s, expected %s", gkx_errname (rc_),    \
                       gkx_errname (code));                                        \
    } while (0)

/* When the fixture card was issued, in milliseconds. */
#define TS 1795491556923ULL

/* The message of every card whose signature fails. */
#define SIGNATURE_MSG "card: signature does not verify for its id"

/* The card of the fixture, rebuilt for every test. */
static const char *s_verticals[] = {"motorsport", "events"};
static const char *s_countries[] = {"FR", "DE"};
static gkx_identity_t *s_identity;
static gkx_identity_t *s_other;
static gkx_card_info_t s_info;
static gkx_card_t *s_card;

/* Formats an expected message the way gkx_fail does: into an errbuf-sized
   buffer, cut at GKX_ERRBUF_BYTES - 1 characters. */
static void
s_expect (char out[GKX_ERRBUF_BYTES], const char *fmt, ...)
    __attribute__ ((format (printf, 2, 3)));

static void
s_expect (char out[GKX_ERRBUF_BYTES], const char *fmt, ...)
{
    va_list args;
    va_start (args, fmt);
    vsnprintf (out, GKX_ERRBUF_BYTES, fmt, args);
    va_end (args);
}

/* Returns the fixture's card info: an advertiser with every field set. */
static gkx_card_info_t
s_valid_info (void)
{
    gkx_card_info_t info = {
        .role = GKX_ROLE_ADVERTISER,
        .name = "Gokart Paris",
        .endpoint = "tcp://127.0.0.1:7001",
        .email = "ops@gokart.example",
        .verticals = s_verticals,
        .verticals_count = 2,
        .countries = s_countries,
        .countries_count = 2,
        .timestamp_ms = TS,
    };
    return info;
}

static void
s_setup (void)
{
    s_identity = gkx_identity_new ();
    s_other = gkx_identity_new ();
    s_info = s_valid_info ();
    s_card = NULL;
    char errbuf[GKX_ERRBUF_BYTES] = "";
    int rc = gkx_card_issue (&s_card, s_identity, &s_info, errbuf);
    ck_assert_msg (rc == GKX_OK, "issue: %s: %s", gkx_errname (rc), errbuf);
}

static void
s_teardown (void)
{
    gkx_card_destroy (&s_card);
    gkx_identity_destroy (&s_other);
    gkx_identity_destroy (&s_identity);
}

/* Issues info with the fixture's identity; returns the code, destroys any
   card. */
static int
s_issue (const gkx_card_info_t *info, char *errbuf)
{
    gkx_card_t *card = NULL;
    errbuf[0] = '\0';
    int rc = gkx_card_issue (&card, s_identity, info, errbuf);
    ck_assert ((rc == GKX_OK) == (card != NULL));
    gkx_card_destroy (&card);
    return rc;
}

/* Decodes buf; returns the code, destroys any card. */
static int
s_decode (const uint8_t *buf, size_t len, char *errbuf)
{
    gkx_card_t *card = NULL;
    errbuf[0] = '\0';
    int rc = gkx_card_decode (&card, buf, len, errbuf);
    ck_assert ((rc == GKX_OK) == (card != NULL));
    gkx_card_destroy (&card);
    return rc;
}

/* Reads JSON; returns the code, destroys any card. */
static int
s_from_json (const json_t *json, char *errbuf)
{
    gkx_card_t *card = NULL;
    errbuf[0] = '\0';
    int rc = gkx_card_from_json (&card, json, errbuf);
    ck_assert ((rc == GKX_OK) == (card != NULL));
    gkx_card_destroy (&card);
    return rc;
}

/* Asserts a card holds the fixture's identity and info. */
static void
s_assert_fixture_card (const gkx_card_t *card)
{
    ck_assert (memcmp (gkx_card_id (card), gkx_identity_id (s_identity), GKX_ID_BYTES) == 0);
    ck_assert (memcmp (gkx_card_transport_key (card), gkx_identity_curve_public (s_identity),
                       GKX_CURVE_KEY_BYTES) == 0);
    ck_assert_int_eq (gkx_card_role (card), GKX_ROLE_ADVERTISER);
    ck_assert_str_eq (gkx_card_name (card), "Gokart Paris");
    ck_assert_str_eq (gkx_card_endpoint (card), "tcp://127.0.0.1:7001");
    ck_assert_str_eq (gkx_card_email (card), "ops@gokart.example");
    ck_assert_uint_eq (gkx_card_timestamp (card), TS);
}

/* Signs prefix || msg with the raw libsodium call, independently of
   gkx_identity_sign, so the tests pin the documented signed message. */
static void
s_sign_raw (uint8_t sig[GKX_SIGNATURE_BYTES], const gkx_identity_t *signer,
            const uint8_t *msg, size_t msg_len)
{
    size_t prefix_len = strlen (GKX_CARD_SIGN_PREFIX);
    uint8_t *joined = malloc (prefix_len + msg_len);
    ck_assert_ptr_nonnull (joined);
    memcpy (joined, GKX_CARD_SIGN_PREFIX, prefix_len);
    memcpy (joined + prefix_len, msg, msg_len);
    crypto_sign_detached (sig, NULL, joined, prefix_len + msg_len,
                          gkx_identity_sign_secret (signer));
    free (joined);
}

/* Keys of the card's field map, in canonical order. */
static const char *const s_keys[9] = {
    "countries", "email", "endpoint", "id", "name", "role", "timestamp",
    "transport_key", "verticals"};

/* How to pack a card by hand: the fixture's fields, with one value
   replaced by raw msgpack and optionally "email" renamed. */
typedef struct {
    const char *replace;        /* key whose value is raw, or NULL */
    const uint8_t *raw;
    size_t raw_len;
    const char *email_key;      /* the key written for "email" */
    size_t signature_len;       /* bytes of the signature bin */
} s_craft_t;

/* A spec that reproduces the fixture card. */
static s_craft_t
s_craft_spec (void)
{
    s_craft_t spec = {
        .email_key = "email",
        .signature_len = GKX_SIGNATURE_BYTES,
    };
    return spec;
}

/* Packs a list of C strings. */
static void
s_pack_list (msgpack_packer *pk, const char *const *items, size_t count)
{
    msgpack_pack_array (pk, count);
    for (size_t i = 0; i < count; i++) {
        gkx_codec_pack_cstr (pk, items[i]);
    }
}

/* Packs the fields map by spec into fields. */
static void
s_pack_fields (msgpack_sbuffer *fields, const s_craft_t *spec)
{
    msgpack_packer pk;
    msgpack_sbuffer_init (fields);
    msgpack_packer_init (&pk, fields, msgpack_sbuffer_write);
    msgpack_pack_map (&pk, 9);
    for (int i = 0; i < 9; i++) {
        gkx_codec_pack_cstr (&pk, i == 1 ? spec->email_key : s_keys[i]);
        if (spec->replace && strcmp (spec->replace, s_keys[i]) == 0) {
            msgpack_sbuffer_write (fields, (const char *) spec->raw, spec->raw_len);
            continue;
        }
        switch (i) {
            case 0: s_pack_list (&pk, s_countries, 2); break;
            case 1: gkx_codec_pack_cstr (&pk, s_info.email); break;
            case 2: gkx_codec_pack_cstr (&pk, s_info.endpoint); break;
            case 3: gkx_codec_pack_bin (&pk, gkx_identity_id (s_identity), GKX_ID_BYTES); break;
            case 4: gkx_codec_pack_cstr (&pk, s_info.name); break;
            case 5: gkx_codec_pack_cstr (&pk, "advertiser"); break;
            case 6: msgpack_pack_uint64 (&pk, TS); break;
            case 7:
                gkx_codec_pack_bin (&pk, gkx_identity_curve_public (s_identity),
                                    GKX_CURVE_KEY_BYTES);
                break;
            default: s_pack_list (&pk, s_verticals, 2); break;
        }
    }
}

/* Packs [fields, signature] into card, the signature by signer over
   "GKX-CARD-V1" || signed_fields (the fields themselves when NULL). */
static void
s_pack_card (msgpack_sbuffer *card, const msgpack_sbuffer *fields,
             const msgpack_sbuffer *signed_fields, const gkx_identity_t *signer,
             size_t signature_len)
{
    if (!signed_fields) {
        signed_fields = fields;
    }
    uint8_t sig[GKX_SIGNATURE_BYTES + 1] = {0};
    s_sign_raw (sig, signer, (const uint8_t *) signed_fields->data, signed_fields->size);
    msgpack_packer pk;
    msgpack_sbuffer_init (card);
    msgpack_packer_init (&pk, card, msgpack_sbuffer_write);
    msgpack_pack_array (&pk, 2);
    msgpack_sbuffer_write (card, fields->data, fields->size);
    gkx_codec_pack_bin (&pk, sig, signature_len);
}

/* Crafts a card by spec, signed by the fixture's key, and returns the
   decoder's verdict. */
static int
s_craft_decode (const s_craft_t *spec, char *errbuf)
{
    msgpack_sbuffer fields;
    msgpack_sbuffer card;
    s_pack_fields (&fields, spec);
    s_pack_card (&card, &fields, NULL, s_identity, spec->signature_len);
    int rc = s_decode ((const uint8_t *) card.data, card.size, errbuf);
    msgpack_sbuffer_destroy (&card);
    msgpack_sbuffer_destroy (&fields);
    return rc;
}

/* An issued card holds what it was given, with the identity's two keys. */
START_TEST (test_issue_and_accessors)
{
    s_assert_fixture_card (s_card);
    size_t len = 0;
    const uint8_t *bytes = gkx_card_bytes (s_card, &len);
    ck_assert_ptr_nonnull (bytes);
    ck_assert_uint_gt (len, GKX_SIGNATURE_BYTES);
    ck_assert_uint_le (len, GKX_CARD_MAX_BYTES);

    /* A publisher with no endpoint, e-mail or lists is a card too. */
    gkx_card_info_t info = {.role = GKX_ROLE_PUBLISHER, .name = "Blog"};
    gkx_card_t *card = NULL;
    char errbuf[GKX_ERRBUF_BYTES];
    ck_assert_rc (gkx_card_issue (&card, s_other, &info, errbuf), GKX_OK);
    ck_assert_int_eq (gkx_card_role (card), GKX_ROLE_PUBLISHER);
    ck_assert_str_eq (gkx_card_endpoint (card), "");
    ck_assert_str_eq (gkx_card_email (card), "");
    bytes = gkx_card_bytes (card, &len);
    gkx_card_t *decoded = NULL;
    ck_assert_rc (gkx_card_decode (&decoded, bytes, len, errbuf), GKX_OK);
    ck_assert_str_eq (gkx_card_name (decoded), "Blog");
    gkx_card_destroy (&decoded);
    gkx_card_destroy (&card);
    gkx_card_destroy (&card);
    ck_assert_ptr_null (card);
}
END_TEST

/* The verticals and countries read back in order, also after decoding. */
START_TEST (test_list_accessors)
{
    ck_assert_uint_eq (gkx_card_verticals_count (s_card), 2);
    ck_assert_str_eq (gkx_card_vertical (s_card, 0), "motorsport");
    ck_assert_str_eq (gkx_card_vertical (s_card, 1), "events");
    ck_assert_uint_eq (gkx_card_countries_count (s_card), 2);
    ck_assert_str_eq (gkx_card_country (s_card, 0), "FR");
    ck_assert_str_eq (gkx_card_country (s_card, 1), "DE");
    size_t len = 0;
    const uint8_t *bytes = gkx_card_bytes (s_card, &len);
    gkx_card_t *decoded = NULL;
    ck_assert_rc (gkx_card_decode (&decoded, bytes, len, NULL), GKX_OK);
    ck_assert_uint_eq (gkx_card_verticals_count (decoded), 2);
    ck_assert_str_eq (gkx_card_vertical (decoded, 1), "events");
    ck_assert_str_eq (gkx_card_country (decoded, 0), "FR");
    gkx_card_destroy (&decoded);
}
END_TEST

/* The msgpack form is [canonical map of 9 fields, bin8 signature]; the
   signature is the id's over "GKX-CARD-V1" || the map's bytes. */
START_TEST (test_msgpack_layout)
{
    size_t len = 0;
    const uint8_t *bytes = gkx_card_bytes (s_card, &len);
    ck_assert_uint_eq (bytes[0], 0x92);
    ck_assert_uint_eq (bytes[1], 0x89);
    ck_assert_uint_eq (bytes[len - GKX_SIGNATURE_BYTES - 2], 0xc4);
    ck_assert_uint_eq (bytes[len - GKX_SIGNATURE_BYTES - 1], GKX_SIGNATURE_BYTES);

    size_t fields_len = len - 1 - 2 - GKX_SIGNATURE_BYTES;
    size_t prefix_len = strlen (GKX_CARD_SIGN_PREFIX);
    uint8_t *message = malloc (prefix_len + fields_len);
    ck_assert_ptr_nonnull (message);
    memcpy (message, GKX_CARD_SIGN_PREFIX, prefix_len);
    memcpy (message + prefix_len, bytes + 1, fields_len);
    ck_assert_int_eq (crypto_sign_verify_detached (bytes + len - GKX_SIGNATURE_BYTES, message,
                                                   prefix_len + fields_len,
                                                   gkx_identity_id (s_identity)),
                      0);
    free (message);

    /* The hand packer used below writes the same bytes. */
    s_craft_t spec = s_craft_spec ();
    msgpack_sbuffer fields;
    msgpack_sbuffer card;
    s_pack_fields (&fields, &spec);
    s_pack_card (&card, &fields, NULL, s_identity, GKX_SIGNATURE_BYTES);
    ck_assert_uint_eq (card.size, len);
    ck_assert (memcmp (card.data, bytes, len) == 0);
    msgpack_sbuffer_destroy (&card);
    msgpack_sbuffer_destroy (&fields);
}
END_TEST

START_TEST (test_msgpack_round_trip)
{
    size_t len = 0;
    const uint8_t *bytes = gkx_card_bytes (s_card, &len);
    gkx_card_t *decoded = NULL;
    char errbuf[GKX_ERRBUF_BYTES] = "";
    ck_assert_rc (gkx_card_decode (&decoded, bytes, len, errbuf), GKX_OK);
    ck_assert_str_eq (errbuf, "");
    s_assert_fixture_card (decoded);
    size_t decoded_len = 0;
    const uint8_t *decoded_bytes = gkx_card_bytes (decoded, &decoded_len);
    ck_assert_uint_eq (decoded_len, len);
    ck_assert (memcmp (decoded_bytes, bytes, len) == 0);
    gkx_card_destroy (&decoded);
}
END_TEST

/* The JSON form carries every field, survives text, and reads back to the
   same card, byte for byte. */
START_TEST (test_json_round_trip)
{
    json_t *json = gkx_card_to_json (s_card);
    ck_assert_ptr_nonnull (json);
    char id[GKX_ID_TEXT_BYTES];
    gkx_id_format (id, gkx_identity_id (s_identity));
    ck_assert_str_eq (json_string_value (json_object_get (json, "id")), id);
    ck_assert_str_eq (json_string_value (json_object_get (json, "role")), "advertiser");
    ck_assert_str_eq (json_string_value (json_object_get (json, "name")), "Gokart Paris");
    ck_assert_str_eq (json_string_value (json_object_get (json, "endpoint")),
                      "tcp://127.0.0.1:7001");
    ck_assert_str_eq (json_string_value (json_object_get (json, "email")),
                      "ops@gokart.example");
    ck_assert_uint_eq (strlen (json_string_value (json_object_get (json, "signature"))),
                       2 * GKX_SIGNATURE_BYTES);
    ck_assert_uint_eq (strlen (json_string_value (json_object_get (json, "transport_key"))),
                       2 * GKX_CURVE_KEY_BYTES);
    ck_assert_int_eq (json_integer_value (json_object_get (json, "timestamp")), (json_int_t) TS);
    const json_t *verticals = json_object_get (json, "verticals");
    ck_assert_uint_eq (json_array_size (verticals), 2);
    ck_assert_str_eq (json_string_value (json_array_get (verticals, 1)), "events");
    const json_t *countries = json_object_get (json, "countries");
    ck_assert_uint_eq (json_array_size (countries), 2);
    ck_assert_str_eq (json_string_value (json_array_get (countries, 0)), "FR");

    char *text = json_dumps (json, JSON_COMPACT);
    ck_assert_ptr_nonnull (text);
    json_decref (json);
    json_error_t error;
    json = json_loads (text, 0, &error);
    ck_assert_ptr_nonnull (json);
    free (text);

    gkx_card_t *card = NULL;
    char errbuf[GKX_ERRBUF_BYTES] = "";
    ck_assert_rc (gkx_card_from_json (&card, json, errbuf), GKX_OK);
    s_assert_fixture_card (card);
    size_t len = 0;
    size_t original_len = 0;
    const uint8_t *bytes = gkx_card_bytes (card, &len);
    const uint8_t *original = gkx_card_bytes (s_card, &original_len);
    ck_assert_uint_eq (len, original_len);
    ck_assert (memcmp (bytes, original, len) == 0);
    gkx_card_destroy (&card);
    json_decref (json);
}
END_TEST

START_TEST (test_issue_rejects_empty_name)
{
    char errbuf[GKX_ERRBUF_BYTES];
    gkx_card_info_t info = s_valid_info ();
    info.name = "";
    ck_assert_rc (s_issue (&info, errbuf), GKX_EINVAL);
    ck_assert_str_eq (errbuf, "card.name: must not be empty");
    info.name = NULL;
    ck_assert_rc (s_issue (&info, errbuf), GKX_EINVAL);
    ck_assert_str_eq (errbuf, "card.name: must not be empty");
}
END_TEST

/* 256 bytes is the longest name; 257 is refused. */
START_TEST (test_issue_rejects_long_name)
{
    char name[GKX_CARD_TEXT_MAX_BYTES + 2];
    memset (name, 'n', sizeof name - 1);
    name[sizeof name - 1] = '\0';
    char errbuf[GKX_ERRBUF_BYTES];
    gkx_card_info_t info = s_valid_info ();
    info.name = name;
    ck_assert_rc (s_issue (&info, errbuf), GKX_EINVAL);
    ck_assert_str_eq (errbuf, "card.name: 257 bytes exceeds 256");
    name[GKX_CARD_TEXT_MAX_BYTES] = '\0';
    ck_assert_rc (s_issue (&info, errbuf), GKX_OK);
}
END_TEST

START_TEST (test_issue_rejects_name_not_utf8)
{
    char errbuf[GKX_ERRBUF_BYTES];
    gkx_card_info_t info = s_valid_info ();
    info.name = "Caf\xe9";
    ck_assert_rc (s_issue (&info, errbuf), GKX_EUTF8);
    ck_assert_str_eq (errbuf, "card.name: not valid UTF-8");
    info.name = "Caf\xc3\xa9";
    ck_assert_rc (s_issue (&info, errbuf), GKX_OK);
}
END_TEST

/* Each endpoint that is not empty and not tcp://host:port. */
START_TEST (test_issue_rejects_bad_endpoints)
{
    static const char *const bad[] = {
        "127.0.0.1:7001",         /* no scheme */
        "http://127.0.0.1:7001",  /* another scheme */
        "tcp://",                 /* nothing */
        "tcp://host",             /* no port */
        "tcp://:7001",            /* no host */
        "tcp://host:",            /* empty port */
        "tcp://host:70a1",        /* port not digits */
        "tcp://host:-1",
        "tcp://host:123456",      /* port too long */
        "tcp://host:0",           /* port out of range */
        "tcp://host:99999",
        "tcp://host:7001 ",
    };
    char errbuf[GKX_ERRBUF_BYTES];
    char expected[GKX_ERRBUF_BYTES];
    gkx_card_info_t info = s_valid_info ();
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        info.endpoint = bad[i];
        ck_assert_msg (s_issue (&info, errbuf) == GKX_EINVAL, "endpoint \"%s\"", bad[i]);
        s_expect (expected, "card.endpoint: \"%s\" is not of the form tcp://host:port", bad[i]);
        ck_assert_str_eq (errbuf, expected);
    }
}
END_TEST

START_TEST (test_issue_accepts_good_endpoints)
{
    static const char *const good[] = {
        "", "tcp://127.0.0.1:7001", "tcp://gokart.example:1", "tcp://[::1]:65535",
    };
    char errbuf[GKX_ERRBUF_BYTES];
    gkx_card_info_t info = s_valid_info ();
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        info.endpoint = good[i];
        ck_assert_msg (s_issue (&info, errbuf) == GKX_OK, "endpoint \"%s\": %s", good[i],
                       errbuf);
    }
    info.endpoint = NULL;
    ck_assert_rc (s_issue (&info, errbuf), GKX_OK);
}
END_TEST

/* An endpoint longer than the text limit is refused for its length. */
START_TEST (test_issue_rejects_long_endpoint)
{
    char endpoint[GKX_CARD_TEXT_MAX_BYTES + 16];
    memset (endpoint, 'h', sizeof endpoint);
    memcpy (endpoint, "tcp://", 6);
    memcpy (endpoint + sizeof endpoint - 6, ":7001", 6);
    char errbuf[GKX_ERRBUF_BYTES];
    gkx_card_info_t info = s_valid_info ();
    info.endpoint = endpoint;
    ck_assert_rc (s_issue (&info, errbuf), GKX_EINVAL);
    ck_assert_str_eq (errbuf, "card.endpoint: 271 bytes exceeds 256");
}
END_TEST

START_TEST (test_issue_rejects_bad_email)
{
    char email[GKX_CARD_TEXT_MAX_BYTES + 2];
    memset (email, 'e', sizeof email - 1);
    email[sizeof email - 1] = '\0';
    char errbuf[GKX_ERRBUF_BYTES];
    gkx_card_info_t info = s_valid_info ();
    info.email = email;
    ck_assert_rc (s_issue (&info, errbuf), GKX_EINVAL);
    ck_assert_str_eq (errbuf, "card.email: 257 bytes exceeds 256");
    info.email = "ops\xff@gokart.example";
    ck_assert_rc (s_issue (&info, errbuf), GKX_EUTF8);
    ck_assert_str_eq (errbuf, "card.email: not valid UTF-8");
    info.email = "";
    ck_assert_rc (s_issue (&info, errbuf), GKX_OK);
}
END_TEST

/* Countries are two upper-case ASCII letters; the message names the index. */
START_TEST (test_issue_rejects_bad_country_codes)
{
    static const char *const bad[] = {"fr", "FRA", "F", "", "F1", "Fr", "\xc3\x89S"};
    const char *countries[2] = {"FR", NULL};
    char errbuf[GKX_ERRBUF_BYTES];
    char expected[GKX_ERRBUF_BYTES];
    gkx_card_info_t info = s_valid_info ();
    info.countries = countries;
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        countries[1] = bad[i];
        ck_assert_msg (s_issue (&info, errbuf) == GKX_EINVAL, "country \"%s\"", bad[i]);
        s_expect (expected, "card.countries[1]: \"%s\" is not an ISO 3166-1 alpha-2 code",
                  bad[i]);
        ck_assert_str_eq (errbuf, expected);
    }
}
END_TEST

START_TEST (test_issue_rejects_bad_role)
{
    static const int bad[] = {0, 3, -1};
    char errbuf[GKX_ERRBUF_BYTES];
    gkx_card_info_t info = s_valid_info ();
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        info.role = bad[i];
        ck_assert_rc (s_issue (&info, errbuf), GKX_EINVAL);
        ck_assert_str_eq (errbuf, "card.role: must be advertiser or publisher");
    }
}
END_TEST

/* Lists hold at most GKX_CARD_LIST_MAX items, verticals none empty. */
START_TEST (test_issue_rejects_bad_lists)
{
    const char *many[GKX_CARD_LIST_MAX + 1];
    for (size_t i = 0; i < GKX_CARD_LIST_MAX + 1; i++) {
        many[i] = "FR";
    }
    char errbuf[GKX_ERRBUF_BYTES];
    gkx_card_info_t info = s_valid_info ();
    info.verticals = many;
    info.verticals_count = GKX_CARD_LIST_MAX + 1;
    ck_assert_rc (s_issue (&info, errbuf), GKX_EINVAL);
    ck_assert_str_eq (errbuf, "card: more than 64 verticals or countries");
    info.verticals_count = GKX_CARD_LIST_MAX;
    ck_assert_rc (s_issue (&info, errbuf), GKX_OK);

    info = s_valid_info ();
    info.countries = many;
    info.countries_count = GKX_CARD_LIST_MAX + 1;
    ck_assert_rc (s_issue (&info, errbuf), GKX_EINVAL);
    ck_assert_str_eq (errbuf, "card: more than 64 verticals or countries");

    static const char *empty_vertical[] = {"motorsport", ""};
    info = s_valid_info ();
    info.verticals = empty_vertical;
    ck_assert_rc (s_issue (&info, errbuf), GKX_EINVAL);
    ck_assert_str_eq (errbuf, "card.verticals[]: must not be empty");
}
END_TEST

/* Changing any signed field of the JSON form breaks the signature. */
START_TEST (test_json_tampered_field)
{
    char errbuf[GKX_ERRBUF_BYTES];
    char other_key[2 * GKX_CURVE_KEY_BYTES + 1];
    sodium_bin2hex (other_key, sizeof other_key, gkx_identity_curve_public (s_other),
                    GKX_CURVE_KEY_BYTES);
    static const char *const fields[] = {
        "name", "role", "endpoint", "email", "timestamp", "transport_key", "verticals",
        "countries"};
    for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++) {
        json_t *json = gkx_card_to_json (s_card);
        json_t *value = NULL;
        switch (i) {
            case 0: value = json_string ("Mallory Karts"); break;
            case 1: value = json_string ("publisher"); break;
            case 2: value = json_string ("tcp://203.0.113.9:7001"); break;
            case 3: value = json_string ("mallory@evil.example"); break;
            case 4: value = json_integer ((json_int_t) TS + 1); break;
            case 5: value = json_string (other_key); break;
            case 6: value = json_pack ("[s]", "motorsport"); break;
            default: value = json_pack ("[s, s, s]", "FR", "DE", "IT"); break;
        }
        ck_assert_int_eq (json_object_set_new (json, fields[i], value), 0);
        ck_assert_msg (s_from_json (json, errbuf) == GKX_ESIGNATURE, "field %s", fields[i]);
        ck_assert_str_eq (errbuf, SIGNATURE_MSG);
        json_decref (json);
    }
}
END_TEST

/* A JSON card claiming another id keeps this id's signature: refused. */
START_TEST (test_json_other_id)
{
    char id[GKX_ID_TEXT_BYTES];
    gkx_id_format (id, gkx_identity_id (s_other));
    json_t *json = gkx_card_to_json (s_card);
    json_object_set_new (json, "id", json_string (id));
    char errbuf[GKX_ERRBUF_BYTES];
    ck_assert_rc (s_from_json (json, errbuf), GKX_ESIGNATURE);
    ck_assert_str_eq (errbuf, SIGNATURE_MSG);
    json_decref (json);
}
END_TEST

/* Each JSON shape error, with its code and message. */
START_TEST (test_json_rejections)
{
    char errbuf[GKX_ERRBUF_BYTES];
    json_t *array = json_array ();
    ck_assert_rc (s_from_json (array, errbuf), GKX_ETYPE);
    ck_assert_str_eq (errbuf, "card: expected a JSON object");
    json_decref (array);

    static const struct {
        const char *key;        /* field changed */
        const char *value;      /* JSON text of its new value, NULL to remove it */
        int code;
        const char *message;
    } cases[] = {
        {"id", NULL, GKX_ETYPE, "card.id: expected 64 hex digits"},
        {"id", "\"abcd\"", GKX_ETYPE, "card.id: expected 64 hex digits"},
        {"transport_key", "7", GKX_ETYPE, "card.transport_key: expected 64 hex digits"},
        {"signature", "\"zz\"", GKX_ETYPE, "card.signature: expected 128 hex digits"},
        {"name", NULL, GKX_ETYPE, "card.name: missing or not a string"},
        {"endpoint", "null", GKX_ETYPE, "card.endpoint: missing or not a string"},
        {"email", "[]", GKX_ETYPE, "card.email: missing or not a string"},
        {"verticals", "\"motorsport\"", GKX_ETYPE, "card.verticals: missing or not an array"},
        {"countries", "[\"FR\", 1]", GKX_ETYPE, "card.countries[1]: not a string"},
        {"role", "\"owner\"", GKX_EINVAL, "card.role: must be advertiser or publisher"},
        {"role", NULL, GKX_ETYPE, "card.role: missing or not a string"},
        {"timestamp", "-1", GKX_ETYPE, "card.timestamp: missing or not a non-negative integer"},
        {"timestamp", "\"1\"", GKX_ETYPE,
         "card.timestamp: missing or not a non-negative integer"},
        {"timestamp", NULL, GKX_ETYPE, "card.timestamp: missing or not a non-negative integer"},
        /* Field rules are checked before the signature. */
        {"name", "\"\"", GKX_EINVAL, "card.name: must not be empty"},
        {"countries", "[\"fr\"]", GKX_EINVAL,
         "card.countries[0]: \"fr\" is not an ISO 3166-1 alpha-2 code"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        json_t *json = gkx_card_to_json (s_card);
        if (cases[i].value) {
            json_error_t error;
            json_t *value = json_loads (cases[i].value, JSON_DECODE_ANY, &error);
            ck_assert_ptr_nonnull (value);
            json_object_set_new (json, cases[i].key, value);
        }
        else {
            json_object_del (json, cases[i].key);
        }
        ck_assert_msg (s_from_json (json, errbuf) == cases[i].code, "case %zu: %s", i, errbuf);
        ck_assert_str_eq (errbuf, cases[i].message);
        json_decref (json);
    }

    /* More list items than a card holds. */
    json_t *json = gkx_card_to_json (s_card);
    json_t *many = json_array ();
    for (int i = 0; i < GKX_CARD_LIST_MAX + 1; i++) {
        json_array_append_new (many, json_string ("karting"));
    }
    json_object_set_new (json, "verticals", many);
    ck_assert_rc (s_from_json (json, errbuf), GKX_EINVAL);
    ck_assert_str_eq (errbuf, "card.verticals: more than 64 items");
    json_decref (json);
}
END_TEST

/* Changing one letter of the name in the msgpack form breaks the
   signature. */
START_TEST (test_msgpack_tampered_name)
{
    size_t len = 0;
    const uint8_t *bytes = gkx_card_bytes (s_card, &len);
    uint8_t *copy = malloc (len);
    ck_assert_ptr_nonnull (copy);
    memcpy (copy, bytes, len);
    size_t at = 0;
    while (at + 12 <= len && memcmp (copy + at, "Gokart Paris", 12) != 0) {
        at++;
    }
    ck_assert_uint_le (at + 12, len);
    copy[at] = 'J';
    char errbuf[GKX_ERRBUF_BYTES];
    ck_assert_rc (s_decode (copy, len, errbuf), GKX_ESIGNATURE);
    ck_assert_str_eq (errbuf, SIGNATURE_MSG);
    free (copy);
}
END_TEST

/* Every single-byte change anywhere in the msgpack form is refused. */
START_TEST (test_msgpack_flipped_byte_rejected)
{
    static const uint8_t masks[] = {0x01, 0x80, 0xff};
    size_t len = 0;
    const uint8_t *bytes = gkx_card_bytes (s_card, &len);
    uint8_t *copy = malloc (len);
    ck_assert_ptr_nonnull (copy);
    char errbuf[GKX_ERRBUF_BYTES];
    size_t signature_rejections = 0;
    for (size_t at = 0; at < len; at++) {
        for (size_t m = 0; m < sizeof masks; m++) {
            memcpy (copy, bytes, len);
            copy[at] ^= masks[m];
            int rc = s_decode (copy, len, errbuf);
            ck_assert_msg (rc != GKX_OK, "flip 0x%02x at byte %zu of %zu was accepted",
                           masks[m], at, len);
            if (rc == GKX_ESIGNATURE) {
                signature_rejections++;
            }
        }
    }
    /* At least the signature's own bytes reached the signature check. */
    ck_assert_uint_ge (signature_rejections, GKX_SIGNATURE_BYTES * sizeof masks);
    free (copy);
}
END_TEST

/* The same fields signed by another key: refused. */
START_TEST (test_decode_signature_by_other_key)
{
    s_craft_t spec = s_craft_spec ();
    msgpack_sbuffer fields;
    msgpack_sbuffer card;
    s_pack_fields (&fields, &spec);
    s_pack_card (&card, &fields, NULL, s_other, GKX_SIGNATURE_BYTES);
    char errbuf[GKX_ERRBUF_BYTES];
    ck_assert_rc (s_decode ((const uint8_t *) card.data, card.size, errbuf), GKX_ESIGNATURE);
    ck_assert_str_eq (errbuf, SIGNATURE_MSG);
    msgpack_sbuffer_destroy (&card);
    msgpack_sbuffer_destroy (&fields);
}
END_TEST

/* A NUL byte inside a list item would let the same signed card travel as
   another byte string ("FR" signed, "FR\0x" sent): refused. */
START_TEST (test_decode_rejects_nul_in_list_item)
{
    static const uint8_t countries[] = {0x92, 0xa4, 'F', 'R', 0x00, 'x', 0xa2, 'D', 'E'};
    static const uint8_t verticals[] = {
        0x92, 0xaa, 'm', 'o', 't', 'o', 'r', 's', 'p', 'o', 'r', 't',
        0xa7, 'e', 'v', 'e', 'n', 't', 's', 0x00};
    s_craft_t valid = s_craft_spec ();
    msgpack_sbuffer signed_fields;
    s_pack_fields (&signed_fields, &valid);
    char errbuf[GKX_ERRBUF_BYTES];
    for (int i = 0; i < 2; i++) {
        s_craft_t spec = s_craft_spec ();
        spec.replace = i == 0 ? "countries" : "verticals";
        spec.raw = i == 0 ? countries : verticals;
        spec.raw_len = i == 0 ? sizeof countries : sizeof verticals;
        msgpack_sbuffer fields;
        msgpack_sbuffer card;
        s_pack_fields (&fields, &spec);
        /* Signed over the valid fields, as the node issued them. */
        s_pack_card (&card, &fields, &signed_fields, s_identity, GKX_SIGNATURE_BYTES);
        ck_assert_rc (s_decode ((const uint8_t *) card.data, card.size, errbuf), GKX_EINVAL);
        ck_assert_str_eq (errbuf, i == 0 ? "card.countries[0]: contains a NUL byte"
                                         : "card.verticals[1]: contains a NUL byte");
        msgpack_sbuffer_destroy (&card);
        msgpack_sbuffer_destroy (&fields);
    }
    msgpack_sbuffer_destroy (&signed_fields);
}
END_TEST

START_TEST (test_decode_rejects_oversize)
{
    uint8_t *buf = calloc (1, GKX_CARD_MAX_BYTES + 1);
    ck_assert_ptr_nonnull (buf);
    char errbuf[GKX_ERRBUF_BYTES];
    ck_assert_rc (s_decode (buf, GKX_CARD_MAX_BYTES + 1, errbuf), GKX_ETOOBIG);
    ck_assert_str_eq (errbuf, "card: 16385 bytes exceeds 16384");
    free (buf);
}
END_TEST

/* Codec rules hold for cards: trailing bytes, non-canonical forms. */
START_TEST (test_decode_rejects_codec_errors)
{
    size_t len = 0;
    const uint8_t *bytes = gkx_card_bytes (s_card, &len);
    uint8_t *copy = malloc (len + 1);
    ck_assert_ptr_nonnull (copy);
    memcpy (copy, bytes, len);
    copy[len] = 0xc0;
    char errbuf[GKX_ERRBUF_BYTES];
    ck_assert_rc (s_decode (copy, len + 1, errbuf), GKX_ETRAILING);
    ck_assert_str_eq (errbuf, "card: 1 trailing bytes after the value");
    ck_assert_rc (s_decode (copy, len - 1, errbuf), GKX_EDECODE);
    free (copy);

    static const uint8_t timestamp_uint64[] = {0xcf, 0, 0, 0, 0, 0, 0, 0, 0x07};
    s_craft_t spec = s_craft_spec ();
    spec.replace = "timestamp";
    spec.raw = timestamp_uint64;
    spec.raw_len = sizeof timestamp_uint64;
    ck_assert_rc (s_craft_decode (&spec, errbuf), GKX_ENONCANON);
    ck_assert_str_eq (errbuf, "card: not the canonical encoding (an integer, string or "
                              "container header is longer than needed)");
}
END_TEST

/* Not [map of 9, bin of 64]: refused for its shape. */
START_TEST (test_decode_rejects_wrong_shape)
{
    static const uint8_t not_array[] = {0x80};
    static const uint8_t empty_pair[] = {0x92, 0x80, 0xc4, 0x00};
    char errbuf[GKX_ERRBUF_BYTES];
    ck_assert_rc (s_decode (not_array, sizeof not_array, errbuf), GKX_ETYPE);
    ck_assert_str_eq (errbuf, "card: expected [map of 9 fields, bin of 64 bytes]");
    ck_assert_rc (s_decode (empty_pair, sizeof empty_pair, errbuf), GKX_ETYPE);
    ck_assert_str_eq (errbuf, "card: expected [map of 9 fields, bin of 64 bytes]");

    s_craft_t spec = s_craft_spec ();
    spec.signature_len = GKX_SIGNATURE_BYTES - 1;
    ck_assert_rc (s_craft_decode (&spec, errbuf), GKX_ETYPE);
    ck_assert_str_eq (errbuf, "card: expected [map of 9 fields, bin of 64 bytes]");
}
END_TEST

/* Each field of a crafted, validly signed card with the wrong type or
   value, with its code and message. */
START_TEST (test_decode_rejects_bad_fields)
{
    static const uint8_t uint_one[] = {0x01};
    static const uint8_t bin31[33] = {0xc4, 31};
    static const uint8_t str32[34] = {0xd9, 32, 'k'};
    static const uint8_t nul_name[] = {0xa3, 'a', 0x00, 'b'};
    static const uint8_t empty_str[] = {0xa0};
    static const uint8_t owner[] = {0xa5, 'o', 'w', 'n', 'e', 'r'};
    static const uint8_t minus_one[] = {0xff};
    static const uint8_t list_with_int[] = {0x92, 0xa1, 'x', 0x01};
    static const uint8_t lower_country[] = {0x91, 0xa2, 'f', 'r'};
    static const uint8_t bad_endpoint[] = {0xa4, 'h', 'o', 's', 't'};
    static const struct {
        const char *key;
        const uint8_t *raw;
        size_t raw_len;
        int code;
        const char *message;
    } cases[] = {
        {"id", bin31, sizeof bin31, GKX_ETYPE, "card.id: expected bin of 32 bytes"},
        {"transport_key", str32, sizeof str32, GKX_ETYPE,
         "card.transport_key: expected bin of 32 bytes"},
        {"name", uint_one, sizeof uint_one, GKX_ETYPE, "card.name: missing or not a string"},
        {"name", nul_name, sizeof nul_name, GKX_EINVAL, "card.name: contains a NUL byte"},
        {"name", empty_str, sizeof empty_str, GKX_EINVAL, "card.name: must not be empty"},
        {"endpoint", bad_endpoint, sizeof bad_endpoint, GKX_EINVAL,
         "card.endpoint: \"host\" is not of the form tcp://host:port"},
        {"verticals", uint_one, sizeof uint_one, GKX_ETYPE,
         "card.verticals: missing or not an array"},
        {"verticals", list_with_int, sizeof list_with_int, GKX_ETYPE,
         "card.verticals[1]: not a string"},
        {"countries", lower_country, sizeof lower_country, GKX_EINVAL,
         "card.countries[0]: \"fr\" is not an ISO 3166-1 alpha-2 code"},
        {"role", owner, sizeof owner, GKX_EINVAL, "card.role: must be advertiser or publisher"},
        {"role", uint_one, sizeof uint_one, GKX_ETYPE, "card.role: missing or not a string"},
        {"timestamp", minus_one, sizeof minus_one, GKX_ETYPE,
         "card.timestamp: missing or not an unsigned integer"},
    };
    char errbuf[GKX_ERRBUF_BYTES];
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        s_craft_t spec = s_craft_spec ();
        spec.replace = cases[i].key;
        spec.raw = cases[i].raw;
        spec.raw_len = cases[i].raw_len;
        ck_assert_msg (s_craft_decode (&spec, errbuf) == cases[i].code, "case %zu: %s", i,
                       errbuf);
        ck_assert_str_eq (errbuf, cases[i].message);
    }
}
END_TEST

/* Nine keys, one of them unknown in place of "email": a missing field. */
START_TEST (test_decode_rejects_missing_field)
{
    s_craft_t spec = s_craft_spec ();
    spec.email_key = "emailx";
    char errbuf[GKX_ERRBUF_BYTES];
    ck_assert_rc (s_craft_decode (&spec, errbuf), GKX_ETYPE);
    ck_assert_str_eq (errbuf, "card.email: missing or not a string");
}
END_TEST

/* A list longer than a card holds is refused before its items are read. */
START_TEST (test_decode_rejects_long_list)
{
    uint8_t raw[3 + 3 * (GKX_CARD_LIST_MAX + 1)];
    raw[0] = 0xdc;
    raw[1] = 0x00;
    raw[2] = GKX_CARD_LIST_MAX + 1;
    for (size_t i = 0; i < GKX_CARD_LIST_MAX + 1; i++) {
        raw[3 + 3 * i] = 0xa2;
        raw[4 + 3 * i] = 'F';
        raw[5 + 3 * i] = 'R';
    }
    s_craft_t spec = s_craft_spec ();
    spec.replace = "countries";
    spec.raw = raw;
    spec.raw_len = sizeof raw;
    char errbuf[GKX_ERRBUF_BYTES];
    ck_assert_rc (s_craft_decode (&spec, errbuf), GKX_EINVAL);
    ck_assert_str_eq (errbuf, "card.countries: more than 64 items");
}
END_TEST

int
main (void)
{
    Suite *s = suite_create ("card");
    TCase *tc = tcase_create ("card");
    tcase_add_checked_fixture (tc, s_setup, s_teardown);
    tcase_add_test (tc, test_issue_and_accessors);
    tcase_add_test (tc, test_list_accessors);
    tcase_add_test (tc, test_msgpack_layout);
    tcase_add_test (tc, test_msgpack_round_trip);
    tcase_add_test (tc, test_json_round_trip);
    tcase_add_test (tc, test_issue_rejects_empty_name);
    tcase_add_test (tc, test_issue_rejects_long_name);
    tcase_add_test (tc, test_issue_rejects_name_not_utf8);
    tcase_add_test (tc, test_issue_rejects_bad_endpoints);
    tcase_add_test (tc, test_issue_accepts_good_endpoints);
    tcase_add_test (tc, test_issue_rejects_long_endpoint);
    tcase_add_test (tc, test_issue_rejects_bad_email);
    tcase_add_test (tc, test_issue_rejects_bad_country_codes);
    tcase_add_test (tc, test_issue_rejects_bad_role);
    tcase_add_test (tc, test_issue_rejects_bad_lists);
    tcase_add_test (tc, test_json_tampered_field);
    tcase_add_test (tc, test_json_other_id);
    tcase_add_test (tc, test_json_rejections);
    tcase_add_test (tc, test_msgpack_tampered_name);
    tcase_add_test (tc, test_msgpack_flipped_byte_rejected);
    tcase_add_test (tc, test_decode_signature_by_other_key);
    tcase_add_test (tc, test_decode_rejects_nul_in_list_item);
    tcase_add_test (tc, test_decode_rejects_oversize);
    tcase_add_test (tc, test_decode_rejects_codec_errors);
    tcase_add_test (tc, test_decode_rejects_wrong_shape);
    tcase_add_test (tc, test_decode_rejects_bad_fields);
    tcase_add_test (tc, test_decode_rejects_missing_field);
    tcase_add_test (tc, test_decode_rejects_long_list);
    suite_add_tcase (s, tc);
    return gkx_test_run (s);
}
