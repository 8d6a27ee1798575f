/*  test_withdrawal - a node's signed request to drop its card from directories.
    Part of gokart-exchange; MIT licence.

    A golden vector fixes the byte form and the signature of a withdrawal by
    a key from a fixed seed. Each decoder rejection is its own case, with the
    exact code and message.
*/
#include "testutil.h"

#include <gkx/card.h>
#include <gkx/codec.h>
#include <gkx/kind.h>
#include <gkx/withdrawal.h>

#include <sodium.h>

/* Asserts that an int expression equals a GKX_* code, naming both. */
#define ck_assert_rc(expr, code)                                                   \
    do {                                                                           \
        int rc_ = (expr);                                                          \
        ck_assert_msg (rc_ == (code), "got %s, expected %s", gkx_errname (rc_),    \
                       gkx_errname (code));                                        \
    } while (0)

/* When the fixture's withdrawal was made, in milliseconds. */
#define TS 1795491556923ULL

/* The golden withdrawal: the key of seed 0x01 * 32 withdraws at TS. */
static const char *s_golden_hex =
    "93c4208a88e3dd7409f195fd52db2d3cba5d72ca6709bf1d94121bf3748801b40f6f5c"
    "cf000001a20ba2ee3b"
    "c44018b45d69c0819b2dff59e55a02283f37e5ca7c7fa10fbb1e544a924e4e8a771bd1da3a69e8146da"
    "ab9ef52e89ea2b77b9364ca3cdf9caa12889d92e7065d9e09";

static gkx_identity_t *s_identity;

/* Identity from the fixed seed (all bytes 0x01). */
static gkx_identity_t *
s_fixed_identity (void)
{
    uint8_t seed[32];
    uint8_t pk[32];
    uint8_t sk[64];
    uint8_t curve[32];
    memset (seed, 0x01, sizeof seed);
    memset (curve, 0x40, sizeof curve);
    crypto_sign_seed_keypair (pk, sk, seed);
    gkx_identity_t *identity = NULL;
    ck_assert_int_eq (gkx_identity_open (&identity, sk, curve), GKX_OK);
    sodium_memzero (sk, sizeof sk);
    return identity;
}

static void
s_setup (void)
{
    s_identity = gkx_identity_new ();
}

static void
s_teardown (void)
{
    gkx_identity_destroy (&s_identity);
}

/* Decodes a hex string into a new buffer; returns its length. */
static size_t
s_unhex (uint8_t **out, const char *hex)
{
    size_t len = strlen (hex) / 2;
    *out = malloc (len ? len : 1);
    size_t bin_len = 0;
    ck_assert_int_eq (sodium_hex2bin (*out, len, hex, strlen (hex), " ", &bin_len, NULL), 0);
    return bin_len;
}

/* Issues a card of identity at timestamp ts. */
static gkx_card_t *
s_card (const gkx_identity_t *identity, uint64_t ts)
{
    gkx_card_info_t info = {GKX_ROLE_PUBLISHER, "Pixel", "tcp://127.0.0.1:7710", "", NULL, 0,
                            NULL, 0, ts};
    gkx_card_t *card = NULL;
    ck_assert_int_eq (gkx_card_issue (&card, identity, &info, NULL), GKX_OK);
    return card;
}

/* new signs a withdrawal whose accessors say what was asked. */
START_TEST (test_new_and_accessors)
{
    gkx_withdrawal_t *w = gkx_withdrawal_new (s_identity, TS);
    ck_assert_mem_eq (gkx_withdrawal_id (w), gkx_identity_id (s_identity), GKX_ID_BYTES);
    ck_assert_uint_eq (gkx_withdrawal_time (w), TS);
    size_t len = 0;
    const uint8_t *bytes = gkx_withdrawal_bytes (w, &len);
    /* [bin32, uint64, bin64]: 1 + 34 + 9 + 66 bytes. */
    ck_assert_uint_eq (len, 110);
    ck_assert_uint_le (len, GKX_WITHDRAWAL_MAX_BYTES);
    ck_assert_uint_eq (bytes[0], 0x93);
    ck_assert_uint_eq (bytes[1], 0xc4);
    ck_assert_uint_eq (bytes[2], GKX_ID_BYTES);
    ck_assert_mem_eq (bytes + 3, gkx_identity_id (s_identity), GKX_ID_BYTES);
    gkx_withdrawal_destroy (&w);
    ck_assert_ptr_null (w);
    gkx_withdrawal_destroy (&w);
    gkx_withdrawal_destroy (NULL);
}
END_TEST

/* A withdrawal decodes to what was signed, and keeps its bytes. */
START_TEST (test_decode_round_trip)
{
    gkx_withdrawal_t *w = gkx_withdrawal_new (s_identity, TS);
    size_t len = 0;
    const uint8_t *bytes = gkx_withdrawal_bytes (w, &len);
    gkx_withdrawal_t *copy = NULL;
    char errbuf[GKX_ERRBUF_BYTES] = "";
    ck_assert_rc (gkx_withdrawal_decode (&copy, bytes, len, errbuf), GKX_OK);
    ck_assert_str_eq (errbuf, "");
    ck_assert_mem_eq (gkx_withdrawal_id (copy), gkx_identity_id (s_identity), GKX_ID_BYTES);
    ck_assert_uint_eq (gkx_withdrawal_time (copy), TS);
    size_t copy_len = 0;
    const uint8_t *copy_bytes = gkx_withdrawal_bytes (copy, &copy_len);
    ck_assert_uint_eq (copy_len, len);
    ck_assert_mem_eq (copy_bytes, bytes, len);
    gkx_withdrawal_destroy (&copy);
    gkx_withdrawal_destroy (&w);
}
END_TEST

/* The byte form and signature of a fixed key's withdrawal never change. */
START_TEST (test_golden_vector)
{
    gkx_identity_t *identity = s_fixed_identity ();
    gkx_withdrawal_t *w = gkx_withdrawal_new (identity, TS);
    size_t len = 0;
    const uint8_t *bytes = gkx_withdrawal_bytes (w, &len);
    char hex[2 * GKX_WITHDRAWAL_MAX_BYTES + 1];
    sodium_bin2hex (hex, sizeof hex, bytes, len);
    ck_assert_str_eq (hex, s_golden_hex);
    gkx_withdrawal_t *copy = NULL;
    ck_assert_rc (gkx_withdrawal_decode (&copy, bytes, len, NULL), GKX_OK);
    gkx_withdrawal_destroy (&copy);
    gkx_withdrawal_destroy (&w);
    gkx_identity_destroy (&identity);
}
END_TEST

/* A withdrawal covers the cards of its id issued at or before it. */
START_TEST (test_is_covering)
{
    gkx_withdrawal_t *w = gkx_withdrawal_new (s_identity, TS);
    gkx_identity_t *other = gkx_identity_new ();
    gkx_card_t *older = s_card (s_identity, TS - 1);
    gkx_card_t *same = s_card (s_identity, TS);
    gkx_card_t *newer = s_card (s_identity, TS + 1);
    gkx_card_t *stranger = s_card (other, TS - 1);
    ck_assert_int_eq (gkx_withdrawal_is_covering (w, older), 1);
    ck_assert_int_eq (gkx_withdrawal_is_covering (w, same), 1);
    ck_assert_int_eq (gkx_withdrawal_is_covering (w, newer), 0);
    ck_assert_int_eq (gkx_withdrawal_is_covering (w, stranger), 0);
    gkx_card_destroy (&older);
    gkx_card_destroy (&same);
    gkx_card_destroy (&newer);
    gkx_card_destroy (&stranger);
    gkx_identity_destroy (&other);
    gkx_withdrawal_destroy (&w);
}
END_TEST

/* Decodes hex and checks the code and the message of the refusal. */
static void
s_expect_refused (const char *hex, int code, const char *message)
{
    uint8_t *buf = NULL;
    size_t len = s_unhex (&buf, hex);
    gkx_withdrawal_t *w = NULL;
    char errbuf[GKX_ERRBUF_BYTES] = "";
    ck_assert_rc (gkx_withdrawal_decode (&w, buf, len, errbuf), code);
    ck_assert_ptr_null (w);
    ck_assert_str_eq (errbuf, message);
    free (buf);
}

/* More bytes than any withdrawal takes are refused before decoding. */
START_TEST (test_decode_rejects_oversize)
{
    uint8_t buf[GKX_WITHDRAWAL_MAX_BYTES + 1];
    memset (buf, 0x90, sizeof buf);
    gkx_withdrawal_t *w = NULL;
    char errbuf[GKX_ERRBUF_BYTES] = "";
    ck_assert_rc (gkx_withdrawal_decode (&w, buf, sizeof buf, errbuf), GKX_ETOOBIG);
    ck_assert_str_eq (errbuf, "withdrawal: 129 bytes exceeds 128");
    ck_assert_ptr_null (w);
}
END_TEST

/* Bytes that are not canonical msgpack are refused by the codec. */
START_TEST (test_decode_rejects_codec_errors)
{
    s_expect_refused ("", GKX_EDECODE, "withdrawal: truncated at byte 0");
    s_expect_refused ("c1", GKX_EDECODE, "withdrawal: invalid msgpack byte 0xc1 at 0");
    s_expect_refused ("9000", GKX_ETRAILING, "withdrawal: 1 trailing bytes after the value");
}
END_TEST

/* Each wrong shape is refused with the expected layout in the message. */
START_TEST (test_decode_rejects_wrong_shape)
{
    static const char *message = "withdrawal: expected [id bin32, time, signature bin64]";
    static const char *id = "c420" "1111111111111111111111111111111111111111111111111111111111111111";
    static const char *sig = "c440"
        "22222222222222222222222222222222222222222222222222222222222222222222222222222222"
        "222222222222222222222222222222222222222222222222";
    char hex[1024];
    s_expect_refused ("80", GKX_ETYPE, message);
    snprintf (hex, sizeof hex, "92%s01", id);
    s_expect_refused (hex, GKX_ETYPE, message);
    snprintf (hex, sizeof hex, "93c41f%.62s01%s", id + 4, sig);
    s_expect_refused (hex, GKX_ETYPE, message);
    snprintf (hex, sizeof hex, "93%sff%s", id, sig);
    s_expect_refused (hex, GKX_ETYPE, message);
    snprintf (hex, sizeof hex, "93%s01c43f%.126s", id, sig + 4);
    s_expect_refused (hex, GKX_ETYPE, message);
    snprintf (hex, sizeof hex, "93%sa130%s", id, sig);
    s_expect_refused (hex, GKX_ETYPE, message);
}
END_TEST

/* A time past INT64_MAX is refused (JSON carries times as signed). */
START_TEST (test_decode_rejects_time_out_of_range)
{
    static const char *id = "c420" "1111111111111111111111111111111111111111111111111111111111111111";
    static const char *sig = "c440"
        "22222222222222222222222222222222222222222222222222222222222222222222222222222222"
        "222222222222222222222222222222222222222222222222";
    char hex[1024];
    snprintf (hex, sizeof hex, "93%scf8000000000000000%s", id, sig);
    s_expect_refused (hex, GKX_EINVAL, "withdrawal.time: out of range");
}
END_TEST

/* A changed time, or a signature by another key, does not verify. */
START_TEST (test_decode_rejects_bad_signature)
{
    gkx_withdrawal_t *w = gkx_withdrawal_new (s_identity, TS);
    size_t len = 0;
    const uint8_t *bytes = gkx_withdrawal_bytes (w, &len);
    uint8_t copy[GKX_WITHDRAWAL_MAX_BYTES];
    memcpy (copy, bytes, len);
    /* The time's last byte: the uint64 follows the array and id headers. */
    copy[1 + 2 + GKX_ID_BYTES + 8] ^= 0x01;
    gkx_withdrawal_t *forged = NULL;
    char errbuf[GKX_ERRBUF_BYTES] = "";
    ck_assert_rc (gkx_withdrawal_decode (&forged, copy, len, errbuf), GKX_ESIGNATURE);
    ck_assert_str_eq (errbuf, "withdrawal: signature does not verify for its id");
    ck_assert_ptr_null (forged);
    /* Another node's key over the same id. */
    gkx_identity_t *other = gkx_identity_new ();
    gkx_withdrawal_t *theirs = gkx_withdrawal_new (other, TS);
    size_t theirs_len = 0;
    const uint8_t *theirs_bytes = gkx_withdrawal_bytes (theirs, &theirs_len);
    memcpy (copy, bytes, len);
    memcpy (copy + len - GKX_SIGNATURE_BYTES, theirs_bytes + theirs_len - GKX_SIGNATURE_BYTES,
            GKX_SIGNATURE_BYTES);
    ck_assert_rc (gkx_withdrawal_decode (&forged, copy, len, errbuf), GKX_ESIGNATURE);
    ck_assert_ptr_null (forged);
    gkx_withdrawal_destroy (&theirs);
    gkx_identity_destroy (&other);
    gkx_withdrawal_destroy (&w);
}
END_TEST

int
main (void)
{
    Suite *s = suite_create ("withdrawal");
    TCase *tc = tcase_create ("withdrawal");
    tcase_add_checked_fixture (tc, s_setup, s_teardown);
    tcase_add_test (tc, test_new_and_accessors);
    tcase_add_test (tc, test_decode_round_trip);
    tcase_add_test (tc, test_golden_vector);
    tcase_add_test (tc, test_is_covering);
    tcase_add_test (tc, test_decode_rejects_oversize);
    tcase_add_test (tc, test_decode_rejects_codec_errors);
    tcase_add_test (tc, test_decode_rejects_wrong_shape);
    tcase_add_test (tc, test_decode_rejects_time_out_of_range);
    tcase_add_test (tc, test_decode_rejects_bad_signature);
    suite_add_tcase (s, tc);
    return gkx_test_run (s);
}
