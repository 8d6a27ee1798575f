/*  test_vectors - the published entry test vectors (tests/vectors/entries-v1.json).
    Part of gokart-exchange; MIT licence.

    The vector file gives keys (as Ed25519 seeds), every field of a few
    entries, and the expected encoding, hash and signature. This test
    rebuilds each entry from its fields and compares byte for byte, then
    decodes and verifies the expected bytes, so another implementation can
    check itself against the same file. GKX_VECTORS_WRITE=FILE writes the
    file from the same inputs instead (for a deliberate format change).
*/
#include "testutil.h"

#include <gkx/codec.h>
#include <gkx/entry.h>
#include <gkx/identity.h>

#include <jansson.h>
#include <sodium.h>

/* Number of entries in the vector file. */
#define S_ENTRIES 3

/* One vector's inputs. */
typedef struct {
    const char *name;
    int author;                 /* 0 advertiser, 1 publisher */
    int kind;
    uint64_t seq;
    uint64_t hlc;
} s_input_t;

/* The fixed inputs: genesis, the publisher's ack, the advertiser's edit. */
static const s_input_t s_inputs[S_ENTRIES] = {
    {"genesis", 0, GKX_KIND_GENESIS, 1, (1795491556923ULL << 16)},
    {"publisher-ack", 1, GKX_KIND_ACK, 1, (1795491557000ULL << 16)},
    {"advertiser-edit", 0, GKX_KIND_EDIT, 2, (1795491557000ULL << 16) | 1},
};

/* Hex of bytes as a new JSON string. */
static json_t *
s_hex (const uint8_t *bytes, size_t len)
{
    char *text = malloc (2 * len + 1);
    sodium_bin2hex (text, 2 * len + 1, bytes, len);
    json_t *json = json_string (text);
    free (text);
    return json;
}

/* Identity of member m from its fixed seed (all bytes m+1). */
static gkx_identity_t *
s_identity (int m, uint8_t seed[32])
{
    uint8_t pk[32];
    uint8_t sk[64];
    uint8_t curve[32];
    memset (seed, m + 1, 32);
    memset (curve, 0x40 + m, 32);
    crypto_sign_seed_keypair (pk, sk, seed);
    gkx_identity_t *identity = NULL;
    ck_assert_int_eq (gkx_identity_open (&identity, sk, curve), GKX_OK);
    sodium_memzero (sk, sizeof sk);
    return identity;
}

/* The edit entry's body: {"ops": [{"op": "set", "path": "status", "value": "paused"}]}. */
static void
s_edit_body (msgpack_sbuffer *sbuf)
{
    msgpack_packer pk;
    msgpack_packer_init (&pk, sbuf, msgpack_sbuffer_write);
    msgpack_pack_map (&pk, 1);
    gkx_codec_pack_cstr (&pk, "ops");
    msgpack_pack_array (&pk, 1);
    msgpack_pack_map (&pk, 3);
    gkx_codec_pack_cstr (&pk, "op");
    gkx_codec_pack_cstr (&pk, "set");
    gkx_codec_pack_cstr (&pk, "path");
    gkx_codec_pack_cstr (&pk, "status");
    gkx_codec_pack_cstr (&pk, "value");
    gkx_codec_pack_cstr (&pk, "paused");
}

/* Builds the vector entries in order; entries[i] are the caller's. */
static json_t *
s_build (gkx_entry_t *entries[S_ENTRIES])
{
    uint8_t seeds[2][32];
    gkx_identity_t *ids[2] = {s_identity (0, seeds[0]), s_identity (1, seeds[1])};
    uint8_t nonce[GKX_NONCE_BYTES];
    uint8_t pid[GKX_ID_BYTES];
    memset (nonce, 0x5a, sizeof nonce);
    gkx_partnership_id (pid, gkx_identity_id (ids[0]), gkx_identity_id (ids[1]), nonce);
    json_t *vectors = json_array ();
    for (int i = 0; i < S_ENTRIES; i++) {
        const s_input_t *in = &s_inputs[i];
        msgpack_sbuffer body;
        msgpack_sbuffer_init (&body);
        gkx_entry_draft_t d;
        memset (&d, 0, sizeof d);
        memcpy (d.pid, pid, GKX_ID_BYTES);
        memcpy (d.author, gkx_identity_id (ids[in->author]), GKX_ID_BYTES);
        d.seq = in->seq;
        d.hlc = in->hlc;
        d.kind = in->kind;
        if (in->kind == GKX_KIND_GENESIS) {
            gkx_genesis_body_encode (&body, gkx_identity_id (ids[0]), gkx_identity_id (ids[1]),
                                     nonce, NULL, 0, NULL, 0);
        }
        else if (in->kind == GKX_KIND_ACK) {
            d.seen_seq = 1;
            memcpy (d.seen_hash, gkx_entry_hash (entries[0]), GKX_HASH_BYTES);
            msgpack_sbuffer_write (&body, (const char *) gkx_ack_body, sizeof gkx_ack_body);
        }
        else {
            memcpy (d.prev_hash, gkx_entry_hash (entries[0]), GKX_HASH_BYTES);
            d.seen_seq = 1;
            memcpy (d.seen_hash, gkx_entry_hash (entries[1]), GKX_HASH_BYTES);
            s_edit_body (&body);
        }
        d.body = (const uint8_t *) body.data;
        d.body_len = body.size;
        char errbuf[GKX_ERRBUF_BYTES] = "";
        ck_assert_msg (gkx_entry_sign (&entries[i], &d, ids[in->author], errbuf) == GKX_OK,
                       "%s: %s", in->name, errbuf);
        size_t len;
        const uint8_t *bytes = gkx_entry_bytes (entries[i], &len);
        json_array_append_new (vectors, json_pack (
            "{s:s, s:o, s:o, s:I, s:o, s:I, s:o, s:I, s:i, s:o, s:o, s:o, s:o}",
            "name", in->name, "pid", s_hex (pid, GKX_ID_BYTES), "author",
            s_hex (d.author, GKX_ID_BYTES), "seq", (json_int_t) d.seq, "prev_hash",
            s_hex (d.prev_hash, GKX_HASH_BYTES), "seen_seq", (json_int_t) d.seen_seq,
            "seen_hash", s_hex (d.seen_hash, GKX_HASH_BYTES), "hlc", (json_int_t) d.hlc,
            "kind", d.kind, "body", s_hex (d.body, d.body_len), "bytes", s_hex (bytes, len),
            "hash", s_hex (gkx_entry_hash (entries[i]), GKX_HASH_BYTES), "signature",
            s_hex (gkx_entry_signature (entries[i]), GKX_SIGNATURE_BYTES)));
        msgpack_sbuffer_destroy (&body);
    }
    json_t *doc = json_pack (
        "{s:s, s:s, s:s, s:s, s:o, s:o, s:o, s:o}",
        "description", "gokart-exchange entry format v1 test vectors (docs/log-format.md)",
        "signature", "Ed25519 over \"GKX-ENTRY-V1\" || bytes[0 : len - 66]",
        "hash", "BLAKE2b-256 (crypto_generichash, no key) of bytes",
        "keys", "Ed25519 seed keypairs; advertiser seed = 32 x 0x01, publisher seed = 32 x 0x02",
        "advertiser_seed", s_hex (seeds[0], 32), "publisher_seed", s_hex (seeds[1], 32),
        "nonce", s_hex (nonce, sizeof nonce), "entries", vectors);
    gkx_identity_destroy (&ids[0]);
    gkx_identity_destroy (&ids[1]);
    return doc;
}

/* Decodes a hex string of a JSON object into a new buffer. */
static uint8_t *
s_unhex (const json_t *obj, const char *key, size_t *len_p)
{
    const char *text = json_string_value (json_object_get (obj, key));
    ck_assert_msg (text != NULL, "vector field %s missing", key);
    size_t max = strlen (text) / 2 + 1;
    uint8_t *out = malloc (max);
    ck_assert_int_eq (sodium_hex2bin (out, max, text, strlen (text), NULL, len_p, NULL), 0);
    return out;
}

/* Rebuilding every entry gives the published bytes, hash and signature. */
START_TEST (test_vectors_match)
{
    gkx_entry_t *entries[S_ENTRIES] = {NULL};
    json_t *built = s_build (entries);
    const char *write_to = getenv ("GKX_VECTORS_WRITE");
    if (write_to) {
        ck_assert_int_eq (json_dump_file (built, write_to, JSON_INDENT (2) | JSON_ENSURE_ASCII), 0);
    }
    char path[PATH_MAX];
    snprintf (path, sizeof path, "%s/tests/vectors/entries-v1.json", GKX_SRCDIR);
    json_error_t error;
    json_t *published = json_load_file (path, 0, &error);
    ck_assert_msg (published != NULL, "%s: %s", path, error.text);
    ck_assert_msg (json_equal (built, published), "rebuilt vectors differ from %s", path);
    json_decref (published);
    json_decref (built);
    for (int i = 0; i < S_ENTRIES; i++) {
        gkx_entry_destroy (&entries[i]);
    }
}
END_TEST

/* The published bytes decode, verify and hash to the published values. */
START_TEST (test_vectors_decode_and_verify)
{
    char path[PATH_MAX];
    snprintf (path, sizeof path, "%s/tests/vectors/entries-v1.json", GKX_SRCDIR);
    json_t *doc = json_load_file (path, 0, NULL);
    ck_assert (doc != NULL);
    size_t i;
    json_t *v;
    json_array_foreach (json_object_get (doc, "entries"), i, v) {
        size_t len;
        size_t hash_len;
        size_t sig_len;
        uint8_t *bytes = s_unhex (v, "bytes", &len);
        uint8_t *hash = s_unhex (v, "hash", &hash_len);
        uint8_t *sig = s_unhex (v, "signature", &sig_len);
        gkx_entry_t *entry = NULL;
        char errbuf[GKX_ERRBUF_BYTES] = "";
        ck_assert_msg (gkx_entry_decode (&entry, bytes, len, errbuf) == GKX_OK, "%s", errbuf);
        ck_assert_int_eq (gkx_entry_verify (entry), GKX_OK);
        ck_assert_mem_eq (gkx_entry_hash (entry), hash, GKX_HASH_BYTES);
        ck_assert_mem_eq (gkx_entry_signature (entry), sig, GKX_SIGNATURE_BYTES);
        ck_assert_int_eq (gkx_entry_seq (entry), json_integer_value (json_object_get (v, "seq")));
        ck_assert_int_eq (gkx_entry_kind (entry), json_integer_value (json_object_get (v, "kind")));
        gkx_entry_destroy (&entry);
        free (bytes);
        free (hash);
        free (sig);
    }
    json_decref (doc);
}
END_TEST

int
main (void)
{
    Suite *s = suite_create ("vectors");
    TCase *tc = tcase_create ("vectors");
    tcase_add_test (tc, test_vectors_match);
    tcase_add_test (tc, test_vectors_decode_and_verify);
    suite_add_tcase (s, tc);
    return gkx_test_run (s);
}
