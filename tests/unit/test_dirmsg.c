/*  test_dirmsg - the directory protocol's messages, filters and addresses.
    Part of gokart-exchange; MIT licence.

    Every header round-trips through its encoder and the decoder; each
    malformed header is refused with its own code and message, as are bad
    filters and addresses.
*/
#include "testutil.h"

#include <gkx/card.h>
#include <gkx/dirmsg.h>
#include <gkx/kind.h>

#include <sodium.h>

/* Asserts that an int expression equals a GKX_* code, naming both. */
#define ck_assert_rc(expr, code)                                                   \
    do {                                                                           \
        int rc_ = (expr);                                                          \
        ck_assert_msg (rc_ == (code), "got %s, expected %s", gkx_errname (rc_),    \
                       gkx_errname (code));                                        \
    } while (0)

/* Decodes sbuf's bytes into m, returning the code; frees sbuf. */
static int
s_decode (msgpack_sbuffer *sbuf, gkx_dirmsg_t *m, char *errbuf)
{
    int rc = gkx_dirmsg_decode (m, (const uint8_t *) sbuf->data, sbuf->size, errbuf);
    msgpack_sbuffer_destroy (sbuf);
    return rc;
}

/* Decodes a header given in hex (spaces allowed) and checks the refusal. */
static void
s_expect_refused (const char *hex, int code, const char *message)
{
    uint8_t buf[2 * GKX_DIRMSG_MAX_HEADER_BYTES];
    size_t len = 0;
    ck_assert_int_eq (sodium_hex2bin (buf, sizeof buf, hex, strlen (hex), " ", &len, NULL), 0);
    gkx_dirmsg_t m;
    char errbuf[GKX_ERRBUF_BYTES] = "";
    ck_assert_rc (gkx_dirmsg_decode (&m, buf, len, errbuf), code);
    ck_assert_str_eq (errbuf, message);
    ck_assert_int_eq (m.type, 0);
}

/* Issues a card with the given role, verticals and countries. */
static gkx_card_t *
s_card (int role, const char **verticals, size_t nv, const char **countries, size_t nc)
{
    gkx_identity_t *identity = gkx_identity_new ();
    gkx_card_info_t info = {role, "Pixel", "tcp://127.0.0.1:7710", "", verticals, nv,
                            countries, nc, 1795491556923ULL};
    gkx_card_t *card = NULL;
    ck_assert_int_eq (gkx_card_issue (&card, identity, &info, NULL), GKX_OK);
    gkx_identity_destroy (&identity);
    return card;
}

/* publish, withdraw and ok carry only their rid. */
START_TEST (test_plain_round_trip)
{
    static const uint64_t rids[] = {0, 1, 0xffffffffu, UINT64_MAX};
    for (size_t i = 0; i < sizeof rids / sizeof rids[0]; i++) {
        msgpack_sbuffer sbuf;
        gkx_dirmsg_t m;
        char errbuf[GKX_ERRBUF_BYTES] = "";
        msgpack_sbuffer_init (&sbuf);
        gkx_dirmsg_publish_encode (&sbuf, rids[i]);
        ck_assert_rc (s_decode (&sbuf, &m, errbuf), GKX_OK);
        ck_assert_int_eq (m.type, GKX_DIRMSG_PUBLISH);
        ck_assert_uint_eq (m.rid, rids[i]);
        msgpack_sbuffer_init (&sbuf);
        gkx_dirmsg_withdraw_encode (&sbuf, rids[i]);
        ck_assert_rc (s_decode (&sbuf, &m, errbuf), GKX_OK);
        ck_assert_int_eq (m.type, GKX_DIRMSG_WITHDRAW);
        ck_assert_uint_eq (m.rid, rids[i]);
        msgpack_sbuffer_init (&sbuf);
        gkx_dirmsg_ok_encode (&sbuf, rids[i]);
        ck_assert_rc (s_decode (&sbuf, &m, errbuf), GKX_OK);
        ck_assert_int_eq (m.type, GKX_DIRMSG_OK);
        ck_assert_uint_eq (m.rid, rids[i]);
    }
}
END_TEST

/* The publish header's bytes are fixed: ["publish", 7]. */
START_TEST (test_publish_bytes)
{
    msgpack_sbuffer sbuf;
    msgpack_sbuffer_init (&sbuf);
    gkx_dirmsg_publish_encode (&sbuf, 7);
    static const uint8_t expected[] = {0x92, 0xa7, 'p', 'u', 'b', 'l', 'i', 's', 'h', 0x07};
    ck_assert_uint_eq (sbuf.size, sizeof expected);
    ck_assert_mem_eq (sbuf.data, expected, sizeof expected);
    msgpack_sbuffer_destroy (&sbuf);
}
END_TEST

/* list carries its filter; an empty filter round-trips as empty. */
START_TEST (test_list_round_trip)
{
    gkx_dirmsg_filter_t filter;
    char errbuf[GKX_ERRBUF_BYTES] = "";
    ck_assert_rc (gkx_dirmsg_filter_parse (&filter, "publisher", "Motorsport", "fr", errbuf),
                  GKX_OK);
    msgpack_sbuffer sbuf;
    msgpack_sbuffer_init (&sbuf);
    gkx_dirmsg_list_encode (&sbuf, 42, &filter);
    gkx_dirmsg_t m;
    ck_assert_rc (s_decode (&sbuf, &m, errbuf), GKX_OK);
    ck_assert_int_eq (m.type, GKX_DIRMSG_LIST);
    ck_assert_uint_eq (m.rid, 42);
    ck_assert_int_eq (m.filter.role, GKX_ROLE_PUBLISHER);
    ck_assert_str_eq (m.filter.vertical, "Motorsport");
    ck_assert_str_eq (m.filter.country, "FR");
    ck_assert_rc (gkx_dirmsg_filter_parse (&filter, NULL, NULL, NULL, errbuf), GKX_OK);
    msgpack_sbuffer_init (&sbuf);
    gkx_dirmsg_list_encode (&sbuf, 43, &filter);
    ck_assert_rc (s_decode (&sbuf, &m, errbuf), GKX_OK);
    ck_assert_int_eq (m.filter.role, 0);
    ck_assert_str_eq (m.filter.vertical, "");
    ck_assert_str_eq (m.filter.country, "");
}
END_TEST

/* error carries the code's name and the message. */
START_TEST (test_error_round_trip)
{
    msgpack_sbuffer sbuf;
    msgpack_sbuffer_init (&sbuf);
    gkx_dirmsg_error_encode (&sbuf, 9, GKX_ESIGNATURE, "card: signature does not verify");
    gkx_dirmsg_t m;
    char errbuf[GKX_ERRBUF_BYTES] = "";
    ck_assert_rc (s_decode (&sbuf, &m, errbuf), GKX_OK);
    ck_assert_int_eq (m.type, GKX_DIRMSG_ERROR);
    ck_assert_uint_eq (m.rid, 9);
    ck_assert_str_eq (m.code, "GKX_ESIGNATURE");
    ck_assert_str_eq (m.message, "card: signature does not verify");
}
END_TEST

/* A long message is cut at the limit, never inside a UTF-8 sequence; a
   message that is not UTF-8 is replaced by the code's text. */
START_TEST (test_error_message_limits)
{
    char message[400];
    memset (message, 'a', sizeof message);
    /* "é" (2 bytes) straddling the limit: it must go whole. */
    message[GKX_DIRMSG_MESSAGE_MAX_BYTES - 1] = (char) 0xc3;
    message[GKX_DIRMSG_MESSAGE_MAX_BYTES] = (char) 0xa9;
    message[sizeof message - 1] = '\0';
    msgpack_sbuffer sbuf;
    msgpack_sbuffer_init (&sbuf);
    gkx_dirmsg_error_encode (&sbuf, 1, GKX_EINVAL, message);
    gkx_dirmsg_t m;
    char errbuf[GKX_ERRBUF_BYTES] = "";
    ck_assert_rc (s_decode (&sbuf, &m, errbuf), GKX_OK);
    ck_assert_uint_eq (strlen (m.message), GKX_DIRMSG_MESSAGE_MAX_BYTES - 1);
    msgpack_sbuffer_init (&sbuf);
    gkx_dirmsg_error_encode (&sbuf, 1, GKX_EINVAL, "bad \xff byte");
    ck_assert_rc (s_decode (&sbuf, &m, errbuf), GKX_OK);
    ck_assert_str_eq (m.message, gkx_strerror (GKX_EINVAL));
}
END_TEST

/* cards carries the count and the truncated flag. */
START_TEST (test_cards_round_trip)
{
    msgpack_sbuffer sbuf;
    msgpack_sbuffer_init (&sbuf);
    gkx_dirmsg_cards_encode (&sbuf, 5, GKX_DIRMSG_MAX_CARDS, 1);
    gkx_dirmsg_t m;
    char errbuf[GKX_ERRBUF_BYTES] = "";
    ck_assert_rc (s_decode (&sbuf, &m, errbuf), GKX_OK);
    ck_assert_int_eq (m.type, GKX_DIRMSG_CARDS);
    ck_assert_uint_eq (m.rid, 5);
    ck_assert_uint_eq (m.count, GKX_DIRMSG_MAX_CARDS);
    ck_assert_int_eq (m.truncated, 1);
    msgpack_sbuffer_init (&sbuf);
    gkx_dirmsg_cards_encode (&sbuf, 6, 0, 0);
    ck_assert_rc (s_decode (&sbuf, &m, errbuf), GKX_OK);
    ck_assert_uint_eq (m.count, 0);
    ck_assert_int_eq (m.truncated, 0);
}
END_TEST

/* A header over the limit is refused before it is decoded. */
START_TEST (test_decode_rejects_oversize)
{
    uint8_t buf[GKX_DIRMSG_MAX_HEADER_BYTES + 1];
    memset (buf, 0x90, sizeof buf);
    gkx_dirmsg_t m;
    char errbuf[GKX_ERRBUF_BYTES] = "";
    ck_assert_rc (gkx_dirmsg_decode (&m, buf, sizeof buf, errbuf), GKX_ETOOBIG);
    ck_assert_str_eq (errbuf, "directory: header of 1025 bytes exceeds 1024");
}
END_TEST

/* Bytes that are not canonical msgpack are refused by the codec. */
START_TEST (test_decode_rejects_codec_errors)
{
    s_expect_refused ("", GKX_EDECODE, "directory: truncated at byte 0");
    s_expect_refused ("c1", GKX_EDECODE, "directory: invalid msgpack byte 0xc1 at 0");
    s_expect_refused ("92a26f6b0100", GKX_ETRAILING,
                      "directory: 1 trailing bytes after the value");
    /* rid 1 as a uint16: not the smallest form. */
    s_expect_refused ("92a26f6bcd0001", GKX_ENONCANON,
                      "directory: not the canonical encoding (an integer, string or container header is "
                      "longer than needed)");
}
END_TEST

/* Each wrong shape is refused with its own message. */
START_TEST (test_decode_rejects_wrong_shape)
{
    s_expect_refused ("a26f6b", GKX_ETYPE, "directory: expected [type, rid, ...]");
    s_expect_refused ("91a26f6b", GKX_ETYPE, "directory: expected [type, rid, ...]");
    s_expect_refused ("920101", GKX_ETYPE, "directory: expected [type, rid, ...]");
    s_expect_refused ("92a36e6f7401", GKX_ETYPE, "directory: unknown message type");
    s_expect_refused ("93a26f6b0101", GKX_ETYPE, "directory ok: expected 2 fields, got 3");
    s_expect_refused ("92a26f6bff", GKX_ETYPE, "directory ok.rid: expected an unsigned integer");
    s_expect_refused ("92a26f6ba131", GKX_ETYPE,
                      "directory ok.rid: expected an unsigned integer");
    s_expect_refused ("94a56361726473010101", GKX_ETYPE,
                      "directory cards: expected [\"cards\", rid, count, truncated]");
    s_expect_refused ("94a563617264730101ff", GKX_ETYPE,
                      "directory cards: expected [\"cards\", rid, count, truncated]");
    s_expect_refused ("94a5657272 6f72 01 01 a0", GKX_ETYPE,
                      "directory error.code: expected a string");
    s_expect_refused ("94a5657272 6f72 01 a0 01", GKX_ETYPE,
                      "directory error.message: expected a string");
    s_expect_refused ("95a46c697374 01 01 a0 a0", GKX_ETYPE,
                      "directory list.role: expected a string");
    s_expect_refused ("95a46c697374 01 a0 01 a0", GKX_ETYPE,
                      "directory list.vertical: expected a string");
    s_expect_refused ("95a46c697374 01 a0 a0 01", GKX_ETYPE,
                      "directory list.country: expected a string");
}
END_TEST

/* Counts and strings over their limits, and NUL bytes, are refused. */
START_TEST (test_decode_rejects_limits)
{
    /* 257 cards. */
    s_expect_refused ("94a5636172647301cd0101c2", GKX_ETOOBIG,
                      "directory cards: more than 256 cards");
    /* A code of 33 bytes. */
    char hex[2048];
    snprintf (hex, sizeof hex, "94a56572726f7201d921%066d a0", 0);
    s_expect_refused (hex, GKX_ETOOBIG, "directory error.code: 33 bytes exceeds 32");
    /* A vertical of 257 bytes. */
    int n = snprintf (hex, sizeof hex, "95a46c69737401a0da0101");
    for (int i = 0; i < 257; i++) {
        n += snprintf (hex + n, sizeof hex - (size_t) n, "61");
    }
    snprintf (hex + n, sizeof hex - (size_t) n, "a0");
    s_expect_refused (hex, GKX_ETOOBIG, "directory list.vertical: 257 bytes exceeds 256");
    /* A country of 3 bytes. */
    s_expect_refused ("95a46c69737401a0a0a3465252", GKX_ETOOBIG,
                      "directory list.country: 3 bytes exceeds 2");
    /* A NUL byte in a code. */
    s_expect_refused ("94a56572726f7201a24100a0", GKX_EINVAL,
                      "directory error.code: contains a NUL byte");
}
END_TEST

/* A list header whose filter is bad is refused with the filter's message. */
START_TEST (test_decode_rejects_bad_filter)
{
    /* role "admin" */
    s_expect_refused ("95a46c69737401a561646d696ea0a0", GKX_EINVAL,
                      "role: must be advertiser or publisher");
    /* country "F1" */
    s_expect_refused ("95a46c69737401a0a0a24631", GKX_EINVAL,
                      "country: \"F1\" is not an ISO 3166-1 alpha-2 code");
}
END_TEST

/* filter_parse takes text as people type it and refuses what is wrong. */
START_TEST (test_filter_parse)
{
    gkx_dirmsg_filter_t filter;
    char errbuf[GKX_ERRBUF_BYTES] = "";
    ck_assert_rc (gkx_dirmsg_filter_parse (&filter, "advertiser", "", "de", errbuf), GKX_OK);
    ck_assert_int_eq (filter.role, GKX_ROLE_ADVERTISER);
    ck_assert_str_eq (filter.country, "DE");
    ck_assert_rc (gkx_dirmsg_filter_parse (&filter, "agency", NULL, NULL, errbuf), GKX_EINVAL);
    ck_assert_str_eq (errbuf, "role: must be advertiser or publisher");
    ck_assert_rc (gkx_dirmsg_filter_parse (&filter, NULL, NULL, "FRA", errbuf), GKX_EINVAL);
    ck_assert_str_eq (errbuf, "country: \"FRA\" is not an ISO 3166-1 alpha-2 code");
    ck_assert_rc (gkx_dirmsg_filter_parse (&filter, NULL, NULL, "F", errbuf), GKX_EINVAL);
    ck_assert_rc (gkx_dirmsg_filter_parse (&filter, NULL, "\xc3(", NULL, errbuf), GKX_EINVAL);
    ck_assert_str_eq (errbuf, "vertical: not valid UTF-8");
    char vertical[GKX_CARD_TEXT_MAX_BYTES + 2];
    memset (vertical, 'v', sizeof vertical - 1);
    vertical[sizeof vertical - 1] = '\0';
    ck_assert_rc (gkx_dirmsg_filter_parse (&filter, NULL, vertical, NULL, errbuf), GKX_EINVAL);
    ck_assert_str_eq (errbuf, "vertical: 257 bytes exceeds 256");
}
END_TEST

/* A card matches when role, a vertical (any case) and a country match. */
START_TEST (test_filter_is_matching)
{
    const char *verticals[] = {"Motorsport", "events"};
    const char *countries[] = {"FR", "DE"};
    gkx_card_t *card = s_card (GKX_ROLE_PUBLISHER, verticals, 2, countries, 2);
    gkx_card_t *bare = s_card (GKX_ROLE_PUBLISHER, NULL, 0, NULL, 0);
    gkx_dirmsg_filter_t f;
    ck_assert_rc (gkx_dirmsg_filter_parse (&f, NULL, NULL, NULL, NULL), GKX_OK);
    ck_assert_int_eq (gkx_dirmsg_filter_is_matching (&f, card), 1);
    ck_assert_int_eq (gkx_dirmsg_filter_is_matching (&f, bare), 1);
    ck_assert_rc (gkx_dirmsg_filter_parse (&f, "publisher", "motorSPORT", "de", NULL), GKX_OK);
    ck_assert_int_eq (gkx_dirmsg_filter_is_matching (&f, card), 1);
    ck_assert_int_eq (gkx_dirmsg_filter_is_matching (&f, bare), 0);
    ck_assert_rc (gkx_dirmsg_filter_parse (&f, "advertiser", NULL, NULL, NULL), GKX_OK);
    ck_assert_int_eq (gkx_dirmsg_filter_is_matching (&f, card), 0);
    ck_assert_rc (gkx_dirmsg_filter_parse (&f, NULL, "motor", NULL, NULL), GKX_OK);
    ck_assert_int_eq (gkx_dirmsg_filter_is_matching (&f, card), 0);
    ck_assert_rc (gkx_dirmsg_filter_parse (&f, NULL, NULL, "US", NULL), GKX_OK);
    ck_assert_int_eq (gkx_dirmsg_filter_is_matching (&f, card), 0);
    gkx_card_destroy (&card);
    gkx_card_destroy (&bare);
}
END_TEST

/* An address splits into endpoint and key, and formats back the same. */
START_TEST (test_address_round_trip)
{
    static const char *text = "tcp://127.0.0.1:7790@"
                              "cb20780c00112233445566778899aabbccddeeff00112233445566778899a419";
    char endpoint[GKX_DIRMSG_ENDPOINT_BYTES];
    uint8_t key[GKX_CURVE_KEY_BYTES];
    char errbuf[GKX_ERRBUF_BYTES] = "";
    ck_assert_rc (gkx_dirmsg_address_parse (endpoint, key, text, errbuf), GKX_OK);
    ck_assert_str_eq (endpoint, "tcp://127.0.0.1:7790");
    ck_assert_uint_eq (key[0], 0xcb);
    ck_assert_uint_eq (key[GKX_CURVE_KEY_BYTES - 1], 0x19);
    char out[GKX_DIRMSG_ADDRESS_BYTES];
    gkx_dirmsg_address_format (out, endpoint, key);
    ck_assert_str_eq (out, text);
    /* Upper-case hex is read too. */
    ck_assert_rc (gkx_dirmsg_address_parse (endpoint, key,
                                            "tcp://dir.example:1@"
                                            "CB20780C00112233445566778899AABBCCDDEEFF00112233445566778899A419",
                                            errbuf),
                  GKX_OK);
    ck_assert_str_eq (endpoint, "tcp://dir.example:1");
}
END_TEST

/* Each bad address is refused with what is wrong. */
START_TEST (test_address_rejections)
{
    static const char *key = "cb20780c00112233445566778899aabbccddeeff00112233445566778899a419";
    static const char *bad_endpoints[] = {
        "http://127.0.0.1:7790", "tcp://127.0.0.1", "tcp://:7790", "tcp://127.0.0.1:0",
        "tcp://127.0.0.1:65536", "tcp://127.0.0.1:77a0", "tcp://127.0.0.1:", "tcp://a b:1",
    };
    char endpoint[GKX_DIRMSG_ENDPOINT_BYTES];
    uint8_t bin[GKX_CURVE_KEY_BYTES];
    char errbuf[GKX_ERRBUF_BYTES] = "";
    char text[512];
    char expected[GKX_ERRBUF_BYTES];
    for (size_t i = 0; i < sizeof bad_endpoints / sizeof bad_endpoints[0]; i++) {
        snprintf (text, sizeof text, "%s@%s", bad_endpoints[i], key);
        ck_assert_rc (gkx_dirmsg_address_parse (endpoint, bin, text, errbuf), GKX_EINVAL);
        snprintf (expected, sizeof expected,
                  "directory address \"%.80s\": the endpoint before '@' must be tcp://host:port",
                  text);
        ck_assert_str_eq (errbuf, expected);
    }
    ck_assert_rc (gkx_dirmsg_address_parse (endpoint, bin, "tcp://127.0.0.1:7790", errbuf),
                  GKX_EINVAL);
    ck_assert_str_eq (errbuf, "directory address \"tcp://127.0.0.1:7790\": expected "
                              "tcp://host:port@KEY (KEY: the directory's 64 hex digit key)");
    ck_assert_rc (gkx_dirmsg_address_parse (endpoint, bin, "tcp://127.0.0.1:7790@cb20", errbuf),
                  GKX_EINVAL);
    ck_assert_str_eq (errbuf, "directory address \"tcp://127.0.0.1:7790@cb20\": the key after "
                              "'@' must be 64 hex digits");
    snprintf (text, sizeof text, "tcp://127.0.0.1:7790@%.63sg", key);
    ck_assert_rc (gkx_dirmsg_address_parse (endpoint, bin, text, errbuf), GKX_EINVAL);
    char long_host[400];
    memset (long_host, 'h', sizeof long_host);
    snprintf (text, sizeof text, "tcp://%.300s:1@%s", long_host, key);
    ck_assert_rc (gkx_dirmsg_address_parse (endpoint, bin, text, errbuf), GKX_EINVAL);
}
END_TEST

/* An endpoint is tcp://host:port, within the size limit. */
START_TEST (test_endpoint_check)
{
    char errbuf[GKX_ERRBUF_BYTES] = "";
    ck_assert_rc (gkx_dirmsg_endpoint_check ("tcp://127.0.0.1:7790", errbuf), GKX_OK);
    ck_assert_rc (gkx_dirmsg_endpoint_check ("tcp://*:7790", errbuf), GKX_OK);
    ck_assert_rc (gkx_dirmsg_endpoint_check ("tcp://[::1]:7790", errbuf), GKX_OK);
    ck_assert_rc (gkx_dirmsg_endpoint_check ("tcp://127.0.0.1", errbuf), GKX_EINVAL);
    ck_assert_str_eq (errbuf, "\"tcp://127.0.0.1\" is not of the form tcp://host:port");
    ck_assert_rc (gkx_dirmsg_endpoint_check ("udp://127.0.0.1:1", errbuf), GKX_EINVAL);
    ck_assert_rc (gkx_dirmsg_endpoint_check ("tcp://h:123456", errbuf), GKX_EINVAL);
    ck_assert_rc (gkx_dirmsg_endpoint_check ("tcp://h:1 ", errbuf), GKX_EINVAL);
}
END_TEST

int
main (void)
{
    Suite *s = suite_create ("dirmsg");
    TCase *tc = tcase_create ("dirmsg");
    tcase_add_test (tc, test_plain_round_trip);
    tcase_add_test (tc, test_publish_bytes);
    tcase_add_test (tc, test_list_round_trip);
    tcase_add_test (tc, test_error_round_trip);
    tcase_add_test (tc, test_error_message_limits);
    tcase_add_test (tc, test_cards_round_trip);
    tcase_add_test (tc, test_decode_rejects_oversize);
    tcase_add_test (tc, test_decode_rejects_codec_errors);
    tcase_add_test (tc, test_decode_rejects_wrong_shape);
    tcase_add_test (tc, test_decode_rejects_limits);
    tcase_add_test (tc, test_decode_rejects_bad_filter);
    tcase_add_test (tc, test_filter_parse);
    tcase_add_test (tc, test_filter_is_matching);
    tcase_add_test (tc, test_endpoint_check);
    tcase_add_test (tc, test_address_round_trip);
    tcase_add_test (tc, test_address_rejections);
    suite_add_tcase (s, tc);
    return gkx_test_run (s);
}
