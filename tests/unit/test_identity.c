/*  test_identity - node key pairs, signatures, ids and the key file.
    Part of gokart-exchange; MIT licence.
*/
#include "testutil.h"

#include <gkx/card.h>
#include <gkx/entry.h>
#include <gkx/identity.h>
#include <gkx/keyfile.h>

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <sodium.h>

/* Asserts that an int expression equals a GKX_* code, naming both. */
#define ck_assert_rc(expr, code)                                                   \
    do {                                                                           \
        int rc_ = (expr);                                                          \
        ck_assert_msg (rc_ == (code), "got %s, expected %s", gkx_errname (rc_),    \
                       gkx_errname (code));                                        \
    } while (0)

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

/* Asserts two identities hold the same keys. */
static void
s_assert_same_identity (const gkx_identity_t *a, const gkx_identity_t *b)
{
    ck_assert (memcmp (gkx_identity_id (a), gkx_identity_id (b), GKX_ID_BYTES) == 0);
    ck_assert (memcmp (gkx_identity_curve_public (a), gkx_identity_curve_public (b),
                       GKX_CURVE_KEY_BYTES) == 0);
    ck_assert (memcmp (gkx_identity_sign_secret (a), gkx_identity_sign_secret (b),
                       GKX_SIGN_SECRET_BYTES) == 0);
    ck_assert (memcmp (gkx_identity_curve_secret (a), gkx_identity_curve_secret (b),
                       GKX_CURVE_KEY_BYTES) == 0);
}

/* The id is the Ed25519 public key held in the secret key; the curve public
   key belongs to the curve secret; two identities share nothing. */
START_TEST (test_new_gives_consistent_keys)
{
    gkx_identity_t *a = gkx_identity_new ();
    gkx_identity_t *b = gkx_identity_new ();
    uint8_t derived[GKX_ID_BYTES];
    crypto_sign_ed25519_sk_to_pk (derived, gkx_identity_sign_secret (a));
    ck_assert (memcmp (derived, gkx_identity_id (a), GKX_ID_BYTES) == 0);
    crypto_scalarmult_base (derived, gkx_identity_curve_secret (a));
    ck_assert (memcmp (derived, gkx_identity_curve_public (a), GKX_CURVE_KEY_BYTES) == 0);
    /* The two key pairs are separate keys, not one key in two forms. */
    ck_assert (memcmp (gkx_identity_id (a), gkx_identity_curve_public (a), GKX_ID_BYTES) != 0);

    ck_assert (memcmp (gkx_identity_id (a), gkx_identity_id (b), GKX_ID_BYTES) != 0);
    ck_assert (memcmp (gkx_identity_curve_public (a), gkx_identity_curve_public (b),
                       GKX_CURVE_KEY_BYTES) != 0);
    gkx_identity_destroy (&a);
    gkx_identity_destroy (&b);
    ck_assert_ptr_null (a);
}
END_TEST

/* Opening an identity from its two secrets gives back the same identity. */
START_TEST (test_open_round_trip)
{
    gkx_identity_t *original = gkx_identity_new ();
    gkx_identity_t *opened = NULL;
    ck_assert_rc (gkx_identity_open (&opened, gkx_identity_sign_secret (original),
                                     gkx_identity_curve_secret (original)),
                  GKX_OK);
    ck_assert_ptr_nonnull (opened);
    s_assert_same_identity (opened, original);

    /* And it signs as the original does. */
    static const uint8_t msg[] = "offer 42";
    uint8_t sig[GKX_SIGNATURE_BYTES];
    gkx_identity_sign (opened, sig, "T", msg, sizeof msg);
    ck_assert_rc (gkx_signature_verify (sig, "T", msg, sizeof msg, gkx_identity_id (original)),
                  GKX_OK);
    gkx_identity_destroy (&opened);
    gkx_identity_destroy (&original);
}
END_TEST

/* A signing secret whose seed or public half was damaged is refused, and
   nothing is returned. */
START_TEST (test_open_rejects_damaged_signing_secret)
{
    gkx_identity_t *original = gkx_identity_new ();
    uint8_t sign_secret[GKX_SIGN_SECRET_BYTES];
    static const size_t positions[] = {0, 31, 32, GKX_SIGN_SECRET_BYTES - 1};
    for (size_t i = 0; i < sizeof positions / sizeof positions[0]; i++) {
        memcpy (sign_secret, gkx_identity_sign_secret (original), sizeof sign_secret);
        sign_secret[positions[i]] ^= 0x01;
        gkx_identity_t *opened = NULL;
        ck_assert_rc (gkx_identity_open (&opened, sign_secret,
                                         gkx_identity_curve_secret (original)),
                      GKX_EINVAL);
        ck_assert_ptr_null (opened);
    }
    sodium_memzero (sign_secret, sizeof sign_secret);
    gkx_identity_destroy (&original);
}
END_TEST

START_TEST (test_destroy_accepts_null)
{
    gkx_identity_t *identity = NULL;
    gkx_identity_destroy (&identity);
    gkx_identity_destroy (NULL);
    identity = gkx_identity_new ();
    gkx_identity_destroy (&identity);
    gkx_identity_destroy (&identity);
    ck_assert_ptr_null (identity);
}
END_TEST

/* A signature is Ed25519 over prefix || msg; it verifies for that prefix,
   message and key only. */
START_TEST (test_sign_and_verify)
{
    gkx_identity_t *signer = gkx_identity_new ();
    gkx_identity_t *other = gkx_identity_new ();
    static const uint8_t msg[] = {'p', 'a', 'y', ' ', '1', '0'};
    uint8_t sig[GKX_SIGNATURE_BYTES];
    gkx_identity_sign (signer, sig, "GKX-TEST-V1", msg, sizeof msg);

    uint8_t joined[11 + sizeof msg];
    memcpy (joined, "GKX-TEST-V1", 11);
    memcpy (joined + 11, msg, sizeof msg);
    ck_assert_int_eq (crypto_sign_verify_detached (sig, joined, sizeof joined,
                                                   gkx_identity_id (signer)),
                      0);

    const uint8_t *id = gkx_identity_id (signer);
    ck_assert_rc (gkx_signature_verify (sig, "GKX-TEST-V1", msg, sizeof msg, id), GKX_OK);
    ck_assert_rc (gkx_signature_verify (sig, "GKX-TEST-V1", msg, sizeof msg - 1, id),
                  GKX_ESIGNATURE);
    ck_assert_rc (gkx_signature_verify (sig, "GKX-TEST-V1", msg, sizeof msg,
                                        gkx_identity_id (other)),
                  GKX_ESIGNATURE);
    uint8_t changed[sizeof msg];
    memcpy (changed, msg, sizeof msg);
    changed[5] = '9';
    ck_assert_rc (gkx_signature_verify (sig, "GKX-TEST-V1", changed, sizeof changed, id),
                  GKX_ESIGNATURE);
    sig[0] ^= 0x01;
    ck_assert_rc (gkx_signature_verify (sig, "GKX-TEST-V1", msg, sizeof msg, id),
                  GKX_ESIGNATURE);

    /* An empty message is signed as the prefix alone. */
    gkx_identity_sign (signer, sig, "GKX-TEST-V1", NULL, 0);
    ck_assert_rc (gkx_signature_verify (sig, "GKX-TEST-V1", NULL, 0, id), GKX_OK);
    ck_assert_rc (gkx_signature_verify (sig, "GKX-TEST-V2", NULL, 0, id), GKX_ESIGNATURE);
    gkx_identity_destroy (&other);
    gkx_identity_destroy (&signer);
}
END_TEST

/* A signature under prefix "A" does not verify under "B", nor without one. */
START_TEST (test_sign_prefix_separates_domains)
{
    gkx_identity_t *signer = gkx_identity_new ();
    const uint8_t *id = gkx_identity_id (signer);
    static const uint8_t msg[] = {0x92, 0x01, 0x02};
    uint8_t sig[GKX_SIGNATURE_BYTES];
    gkx_identity_sign (signer, sig, "A", msg, sizeof msg);
    ck_assert_rc (gkx_signature_verify (sig, "A", msg, sizeof msg, id), GKX_OK);
    ck_assert_rc (gkx_signature_verify (sig, "B", msg, sizeof msg, id), GKX_ESIGNATURE);
    ck_assert_rc (gkx_signature_verify (sig, "", msg, sizeof msg, id), GKX_ESIGNATURE);
    ck_assert_rc (gkx_signature_verify (sig, GKX_ENTRY_SIGN_PREFIX, msg, sizeof msg, id),
                  GKX_ESIGNATURE);
    gkx_identity_destroy (&signer);
}
END_TEST

/* The prefix is joined to the message with no separator, so domains stay
   apart only while no prefix in use starts another: check the ones
   libgkx signs and hashes under. */
START_TEST (test_library_prefixes_are_prefix_free)
{
    static const char *const prefixes[] = {
        GKX_ENTRY_SIGN_PREFIX, GKX_CARD_SIGN_PREFIX, GKX_PID_PREFIX};
    size_t count = sizeof prefixes / sizeof prefixes[0];
    for (size_t i = 0; i < count; i++) {
        for (size_t j = 0; j < count; j++) {
            if (i != j) {
                ck_assert_msg (strncmp (prefixes[i], prefixes[j], strlen (prefixes[i])) != 0,
                               "\"%s\" starts \"%s\"", prefixes[i], prefixes[j]);
            }
        }
    }
}
END_TEST

/* The text form is 64 lowercase hex digits and parses back. */
START_TEST (test_id_format_and_parse)
{
    uint8_t id[GKX_ID_BYTES];
    for (size_t i = 0; i < GKX_ID_BYTES; i++) {
        id[i] = (uint8_t) (0xe0 + i);
    }
    char text[GKX_ID_TEXT_BYTES];
    gkx_id_format (text, id);
    ck_assert_str_eq (text, "e0e1e2e3e4e5e6e7e8e9eaebecedeeeff0f1f2f3f4f5f6f7f8f9fafbfcfdfeff");

    uint8_t parsed[GKX_ID_BYTES];
    char errbuf[GKX_ERRBUF_BYTES] = "";
    ck_assert_rc (gkx_id_parse (parsed, text, errbuf), GKX_OK);
    ck_assert (memcmp (parsed, id, GKX_ID_BYTES) == 0);
    ck_assert_str_eq (errbuf, "");

    gkx_identity_t *identity = gkx_identity_new ();
    gkx_id_format (text, gkx_identity_id (identity));
    ck_assert_uint_eq (strlen (text), 2 * GKX_ID_BYTES);
    ck_assert_rc (gkx_id_parse (parsed, text, errbuf), GKX_OK);
    ck_assert (memcmp (parsed, gkx_identity_id (identity), GKX_ID_BYTES) == 0);
    gkx_identity_destroy (&identity);
}
END_TEST

START_TEST (test_id_parse_accepts_upper_case)
{
    uint8_t parsed[GKX_ID_BYTES];
    char errbuf[GKX_ERRBUF_BYTES];
    ck_assert_rc (gkx_id_parse (parsed,
                                "E0E1E2E3E4E5E6E7E8E9EAEBECEDEEEFf0f1f2f3f4f5f6f7f8f9fafbfcfdfeff",
                                errbuf),
                  GKX_OK);
    for (size_t i = 0; i < GKX_ID_BYTES; i++) {
        ck_assert_uint_eq (parsed[i], 0xe0 + i);
    }
}
END_TEST

START_TEST (test_id_parse_rejects_wrong_length)
{
    uint8_t parsed[GKX_ID_BYTES];
    char errbuf[GKX_ERRBUF_BYTES];
    ck_assert_rc (gkx_id_parse (parsed, "abc", errbuf), GKX_EINVAL);
    ck_assert_str_eq (errbuf, "id \"abc\": expected 64 hex digits, got 3");
    ck_assert_rc (gkx_id_parse (parsed, "", errbuf), GKX_EINVAL);
    ck_assert_str_eq (errbuf, "id \"\": expected 64 hex digits, got 0");

    /* 65 and 63 digits. */
    char text[2 * GKX_ID_BYTES + 2];
    char expected[GKX_ERRBUF_BYTES];
    memset (text, 'a', sizeof text - 1);
    text[sizeof text - 1] = '\0';
    ck_assert_rc (gkx_id_parse (parsed, text, errbuf), GKX_EINVAL);
    s_expect (expected, "id \"%s\": expected 64 hex digits, got 65", text);
    ck_assert_str_eq (errbuf, expected);
    text[2 * GKX_ID_BYTES - 1] = '\0';
    ck_assert_rc (gkx_id_parse (parsed, text, errbuf), GKX_EINVAL);
    s_expect (expected, "id \"%s\": expected 64 hex digits, got 63", text);
    ck_assert_str_eq (errbuf, expected);

    /* A long argument is cut to 80 characters in the message. */
    char long_text[201];
    memset (long_text, 'b', 200);
    long_text[200] = '\0';
    ck_assert_rc (gkx_id_parse (parsed, long_text, errbuf), GKX_EINVAL);
    s_expect (expected, "id \"%.80s\": expected 64 hex digits, got 200", long_text);
    ck_assert_str_eq (errbuf, expected);
}
END_TEST

START_TEST (test_id_parse_rejects_non_hex)
{
    static const char *const cases[] = {
        "g0e1e2e3e4e5e6e7e8e9eaebecedeeeff0f1f2f3f4f5f6f7f8f9fafbfcfdfeff",
        "e0e1e2e3e4e5e6e7e8e9eaebecedeeeff0f1f2f3f4f5f6f7f8f9fafbfcfdfez0",
        "e0e1e2e3e4e5e6e7e8e9eaeb cedeeeff0f1f2f3f4f5f6f7f8f9fafbfcfdfeff",
        "0xe1e2e3e4e5e6e7e8e9eaebecedeeeff0f1f2f3f4f5f6f7f8f9fafbfcfdfeff",
    };
    uint8_t parsed[GKX_ID_BYTES];
    char errbuf[GKX_ERRBUF_BYTES];
    char expected[GKX_ERRBUF_BYTES];
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        ck_assert_uint_eq (strlen (cases[i]), 2 * GKX_ID_BYTES);
        ck_assert_rc (gkx_id_parse (parsed, cases[i], errbuf), GKX_EINVAL);
        s_expect (expected, "id \"%s\": not hexadecimal", cases[i]);
        ck_assert_str_eq (errbuf, expected);
    }
}
END_TEST

/* Builds DIR/name into out. */
static void
s_path (char out[PATH_MAX], const char *dir, const char *name)
{
    int n = snprintf (out, PATH_MAX, "%s/%s", dir, name);
    ck_assert (n > 0 && n < PATH_MAX);
}

/* Replaces a file's content, keeping mode 0600. */
static void
s_write_file (const char *path, const char *text)
{
    int fd = open (path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    ck_assert_msg (fd >= 0, "open %s: %s", path, strerror (errno));
    ck_assert_int_eq (fchmod (fd, 0600), 0);
    size_t len = strlen (text);
    ck_assert_int_eq (write (fd, text, len), (ssize_t) len);
    ck_assert_int_eq (close (fd), 0);
}

/* Reads a whole small file into out (NUL-terminated). */
static void
s_read_file (const char *path, char *out, size_t out_len)
{
    FILE *file = fopen (path, "r");
    ck_assert_msg (file != NULL, "fopen %s: %s", path, strerror (errno));
    size_t n = fread (out, 1, out_len - 1, file);
    out[n] = '\0';
    fclose (file);
}

/* Saved keys load back as the same identity; the file is 0600, holds both
   secrets in base64 under [keys], and no temporary file is left. */
START_TEST (test_keyfile_save_and_load)
{
    char dir[PATH_MAX];
    char path[PATH_MAX];
    char tmp[PATH_MAX];
    gkx_test_tmpdir (dir);
    s_path (path, dir, GKX_KEYFILE_NAME);
    s_path (tmp, dir, GKX_KEYFILE_NAME ".tmp");

    gkx_identity_t *identity = gkx_identity_new ();
    char errbuf[GKX_ERRBUF_BYTES] = "";
    ck_assert_rc (gkx_keyfile_save (identity, dir, errbuf), GKX_OK);
    ck_assert_str_eq (errbuf, "");

    struct stat st;
    ck_assert_int_eq (stat (path, &st), 0);
    ck_assert (S_ISREG (st.st_mode));
    ck_assert_uint_eq (st.st_mode & 07777, 0600);
    ck_assert_int_ne (stat (tmp, &st), 0);

    char text[1024];
    char b64[128];
    char line[160];
    s_read_file (path, text, sizeof text);
    ck_assert_ptr_nonnull (strstr (text, "[keys]\n"));
    sodium_bin2base64 (b64, sizeof b64, gkx_identity_sign_secret (identity),
                       GKX_SIGN_SECRET_BYTES, sodium_base64_VARIANT_ORIGINAL);
    snprintf (line, sizeof line, "\nsign = %s\n", b64);
    ck_assert_ptr_nonnull (strstr (text, line));
    sodium_bin2base64 (b64, sizeof b64, gkx_identity_curve_secret (identity),
                       GKX_CURVE_KEY_BYTES, sodium_base64_VARIANT_ORIGINAL);
    snprintf (line, sizeof line, "\ncurve = %s\n", b64);
    ck_assert_ptr_nonnull (strstr (text, line));
    sodium_memzero (text, sizeof text);
    sodium_memzero (b64, sizeof b64);
    sodium_memzero (line, sizeof line);

    gkx_identity_t *loaded = NULL;
    ck_assert_rc (gkx_keyfile_load (&loaded, dir, errbuf), GKX_OK);
    ck_assert_ptr_nonnull (loaded);
    s_assert_same_identity (loaded, identity);
    gkx_identity_destroy (&loaded);
    gkx_identity_destroy (&identity);
    gkx_test_rmtree (dir);
}
END_TEST

/* A second save never replaces the node's keys. */
START_TEST (test_keyfile_refuses_overwrite)
{
    char dir[PATH_MAX];
    char path[PATH_MAX];
    char tmp[PATH_MAX];
    gkx_test_tmpdir (dir);
    s_path (path, dir, GKX_KEYFILE_NAME);
    s_path (tmp, dir, GKX_KEYFILE_NAME ".tmp");

    gkx_identity_t *first = gkx_identity_new ();
    gkx_identity_t *second = gkx_identity_new ();
    char errbuf[GKX_ERRBUF_BYTES];
    ck_assert_rc (gkx_keyfile_save (first, dir, errbuf), GKX_OK);
    ck_assert_rc (gkx_keyfile_save (second, dir, errbuf), GKX_EEXIST);
    char expected[GKX_ERRBUF_BYTES];
    s_expect (expected, "key file %s exists already; not overwritten", path);
    ck_assert_str_eq (errbuf, expected);
    struct stat st;
    ck_assert_int_ne (stat (tmp, &st), 0);

    gkx_identity_t *loaded = NULL;
    ck_assert_rc (gkx_keyfile_load (&loaded, dir, errbuf), GKX_OK);
    s_assert_same_identity (loaded, first);
    gkx_identity_destroy (&loaded);
    gkx_identity_destroy (&second);
    gkx_identity_destroy (&first);
    gkx_test_rmtree (dir);
}
END_TEST

/* A key file that group or others may read is refused with its mode. */
START_TEST (test_keyfile_refuses_open_mode)
{
    char dir[PATH_MAX];
    char path[PATH_MAX];
    gkx_test_tmpdir (dir);
    s_path (path, dir, GKX_KEYFILE_NAME);
    gkx_identity_t *identity = gkx_identity_new ();
    char errbuf[GKX_ERRBUF_BYTES];
    ck_assert_rc (gkx_keyfile_save (identity, dir, errbuf), GKX_OK);

    static const mode_t modes[] = {0644, 0640, 0604, 0610, 0601};
    static const char *const texts[] = {"644", "640", "604", "610", "601"};
    char expected[GKX_ERRBUF_BYTES];
    for (size_t i = 0; i < sizeof modes / sizeof modes[0]; i++) {
        ck_assert_int_eq (chmod (path, modes[i]), 0);
        gkx_identity_t *loaded = NULL;
        ck_assert_rc (gkx_keyfile_load (&loaded, dir, errbuf), GKX_EPERM);
        ck_assert_ptr_null (loaded);
        s_expect (expected, "key file %s: mode %s lets others read it; chmod 600 it", path,
                  texts[i]);
        ck_assert_str_eq (errbuf, expected);
    }

    /* Tighter than 0600 is fine. */
    ck_assert_int_eq (chmod (path, 0400), 0);
    gkx_identity_t *loaded = NULL;
    ck_assert_rc (gkx_keyfile_load (&loaded, dir, errbuf), GKX_OK);
    s_assert_same_identity (loaded, identity);
    gkx_identity_destroy (&loaded);
    gkx_identity_destroy (&identity);
    gkx_test_rmtree (dir);
}
END_TEST

/* Garbage, a short key, a missing key, an unknown key or section, and a
   signing key whose halves do not match are all refused as damaged. */
START_TEST (test_keyfile_refuses_damaged_file)
{
    char dir[PATH_MAX];
    char path[PATH_MAX];
    gkx_test_tmpdir (dir);
    s_path (path, dir, GKX_KEYFILE_NAME);
    gkx_identity_t *identity = gkx_identity_new ();
    char sign_b64[128];
    char curve_b64[128];
    sodium_bin2base64 (sign_b64, sizeof sign_b64, gkx_identity_sign_secret (identity),
                       GKX_SIGN_SECRET_BYTES, sodium_base64_VARIANT_ORIGINAL);
    sodium_bin2base64 (curve_b64, sizeof curve_b64, gkx_identity_curve_secret (identity),
                       GKX_CURVE_KEY_BYTES, sodium_base64_VARIANT_ORIGINAL);

    char texts[6][512];
    snprintf (texts[0], sizeof texts[0], "this is not a key file\n");
    snprintf (texts[1], sizeof texts[1], "[keys]\nsign = %.40s\ncurve = %s\n", sign_b64,
              curve_b64);
    snprintf (texts[2], sizeof texts[2], "[keys]\nsign = %s\n", sign_b64);
    snprintf (texts[3], sizeof texts[3], "[keys]\nsign = %s\ncurve = %s\nextra = 1\n",
              sign_b64, curve_b64);
    snprintf (texts[4], sizeof texts[4], "[other]\nsign = %s\ncurve = %s\n", sign_b64,
              curve_b64);
    snprintf (texts[5], sizeof texts[5], "[keys]\nsign = %s!\ncurve = %s\n", sign_b64,
              curve_b64);
    char expected[GKX_ERRBUF_BYTES];
    s_expect (expected,
              "key file %s: damaged; [keys] must hold exactly a valid sign and curve key",
              path);
    char errbuf[GKX_ERRBUF_BYTES];
    for (size_t i = 0; i < 6; i++) {
        s_write_file (path, texts[i]);
        gkx_identity_t *loaded = NULL;
        ck_assert_msg (gkx_keyfile_load (&loaded, dir, errbuf) == GKX_EINVAL, "case %zu", i);
        ck_assert_ptr_null (loaded);
        ck_assert_str_eq (errbuf, expected);
    }

    /* Valid base64 of 64 bytes whose public half is not the seed's. */
    uint8_t sign_secret[GKX_SIGN_SECRET_BYTES];
    memcpy (sign_secret, gkx_identity_sign_secret (identity), sizeof sign_secret);
    sign_secret[GKX_SIGN_SECRET_BYTES - 1] ^= 0x01;
    sodium_bin2base64 (sign_b64, sizeof sign_b64, sign_secret, sizeof sign_secret,
                       sodium_base64_VARIANT_ORIGINAL);
    snprintf (texts[0], sizeof texts[0], "[keys]\nsign = %s\ncurve = %s\n", sign_b64,
              curve_b64);
    s_write_file (path, texts[0]);
    gkx_identity_t *loaded = NULL;
    ck_assert_rc (gkx_keyfile_load (&loaded, dir, errbuf), GKX_EINVAL);
    ck_assert_ptr_null (loaded);
    s_expect (expected, "key file %s: the signing key is damaged", path);
    ck_assert_str_eq (errbuf, expected);

    sodium_memzero (sign_secret, sizeof sign_secret);
    sodium_memzero (sign_b64, sizeof sign_b64);
    sodium_memzero (curve_b64, sizeof curve_b64);
    sodium_memzero (texts, sizeof texts);
    gkx_identity_destroy (&identity);
    gkx_test_rmtree (dir);
}
END_TEST

START_TEST (test_keyfile_missing)
{
    char dir[PATH_MAX];
    char path[PATH_MAX];
    gkx_test_tmpdir (dir);
    s_path (path, dir, GKX_KEYFILE_NAME);
    gkx_identity_t *loaded = NULL;
    char errbuf[GKX_ERRBUF_BYTES];
    ck_assert_rc (gkx_keyfile_load (&loaded, dir, errbuf), GKX_EIO);
    ck_assert_ptr_null (loaded);
    char expected[GKX_ERRBUF_BYTES];
    s_expect (expected, "key file %s: No such file or directory", path);
    ck_assert_str_eq (errbuf, expected);
    gkx_test_rmtree (dir);
}
END_TEST

/* Saving into a directory that does not exist fails with the path. */
START_TEST (test_keyfile_save_into_missing_directory)
{
    char dir[PATH_MAX];
    char missing[PATH_MAX];
    gkx_test_tmpdir (dir);
    s_path (missing, dir, "absent");
    gkx_identity_t *identity = gkx_identity_new ();
    char errbuf[GKX_ERRBUF_BYTES];
    ck_assert_rc (gkx_keyfile_save (identity, missing, errbuf), GKX_EIO);
    char expected[GKX_ERRBUF_BYTES];
    s_expect (expected, "key file %s/%s.tmp: No such file or directory",
              missing, GKX_KEYFILE_NAME);
    ck_assert_str_eq (errbuf, expected);
    gkx_identity_destroy (&identity);
    gkx_test_rmtree (dir);
}
END_TEST

int
main (void)
{
    Suite *s = suite_create ("identity");
    TCase *tc = tcase_create ("identity");
    tcase_add_test (tc, test_new_gives_consistent_keys);
    tcase_add_test (tc, test_open_round_trip);
    tcase_add_test (tc, test_open_rejects_damaged_signing_secret);
    tcase_add_test (tc, test_destroy_accepts_null);
    tcase_add_test (tc, test_sign_and_verify);
    tcase_add_test (tc, test_sign_prefix_separates_domains);
    tcase_add_test (tc, test_library_prefixes_are_prefix_free);
    tcase_add_test (tc, test_id_format_and_parse);
    tcase_add_test (tc, test_id_parse_accepts_upper_case);
    tcase_add_test (tc, test_id_parse_rejects_wrong_length);
    tcase_add_test (tc, test_id_parse_rejects_non_hex);
    suite_add_tcase (s, tc);

    TCase *tk = tcase_create ("keyfile");
    tcase_add_test (tk, test_keyfile_save_and_load);
    tcase_add_test (tk, test_keyfile_refuses_overwrite);
    tcase_add_test (tk, test_keyfile_refuses_open_mode);
    tcase_add_test (tk, test_keyfile_refuses_damaged_file);
    tcase_add_test (tk, test_keyfile_missing);
    tcase_add_test (tk, test_keyfile_save_into_missing_directory);
    suite_add_tcase (s, tk);
    return gkx_test_run (s);
}
