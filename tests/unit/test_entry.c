/*  test_entry - signed, hash-chained log entries.
    Part of gokart-exchange; MIT licence.

    A fixture holds one small partnership: the advertiser's genesis, the
    publisher's ack of it and the advertiser's edit after that, all made with
    gkx_entry_sign. Invalid entries are packed by hand (s_craft) and given a
    valid signature by their author, so each is refused for the one rule it
    breaks and for nothing else.
*/
#include "testutil.h"

#include <gkx/alloc.h>
#include <gkx/codec.h>
#include <gkx/entry.h>

#include <sodium.h>

/* Asserts that an int expression equals a GKX_* code, naming both. */
#define ck_assert_rc(expr, code)                                                   \
    do {                                                                           \
        int rc_ = (expr);                                                          \
        ck_assert_msg (rc_ == (code), "got %s, expected %s", gkx_errname (rc_),    \
                       gkx_errname (code));                                        \
    } while (0)

/* A fixed hybrid clock value: milliseconds shifted past the counter. */
#define T0 (1795491556923ULL << 16)

/* The message of every genesis body whose key set is wrong. */
#define GENESIS_KEYS_MSG "entry.body: a genesis body has exactly the keys advertiser, nonce, " \
                         "offer, policy, publisher"

/* Field names in entry order, for failure messages. */
static const char *const s_field_names[11] = {
    "version", "pid", "author", "seq", "prev_hash", "seen_seq",
    "seen_hash", "hlc", "kind", "body", "signature"};

/* One small partnership, rebuilt for every test. */
static gkx_identity_t *s_advertiser;
static gkx_identity_t *s_publisher;
static uint8_t s_nonce[GKX_NONCE_BYTES];
static uint8_t s_pid[GKX_ID_BYTES];
static msgpack_sbuffer s_genesis_body;
static msgpack_sbuffer s_edit_body;
static gkx_entry_draft_t s_genesis_draft;
static gkx_entry_draft_t s_ack_draft;
static gkx_entry_draft_t s_edit_draft;
static gkx_entry_t *s_genesis;
static gkx_entry_t *s_ack;
static gkx_entry_t *s_edit;

/* Starts a packer writing into a fresh sbuffer. */
static void
s_packer (msgpack_sbuffer *sbuf, msgpack_packer *pk)
{
    msgpack_sbuffer_init (sbuf);
    msgpack_packer_init (pk, sbuf, msgpack_sbuffer_write);
}

/* Signs draft, which must be valid, and returns the entry. */
static gkx_entry_t *
s_sign (const gkx_entry_draft_t *draft, const gkx_identity_t *identity)
{
    gkx_entry_t *entry = NULL;
    char errbuf[GKX_ERRBUF_BYTES] = "";
    int rc = gkx_entry_sign (&entry, draft, identity, errbuf);
    ck_assert_msg (rc == GKX_OK, "sign: %s: %s", gkx_errname (rc), errbuf);
    return entry;
}

/* Builds the partnership: genesis (advertiser, seq 1), ack (publisher,
   seq 1, sees the genesis), edit (advertiser, seq 2, sees the ack). */
static void
s_setup (void)
{
    s_advertiser = gkx_identity_new ();
    s_publisher = gkx_identity_new ();
    for (size_t i = 0; i < GKX_NONCE_BYTES; i++) {
        s_nonce[i] = (uint8_t) (i + 1);
    }
    gkx_partnership_id (s_pid, gkx_identity_id (s_advertiser), gkx_identity_id (s_publisher),
                        s_nonce);
    msgpack_sbuffer_init (&s_genesis_body);
    gkx_genesis_body_encode (&s_genesis_body, gkx_identity_id (s_advertiser),
                             gkx_identity_id (s_publisher), s_nonce, NULL, 0, NULL, 0);

    memset (&s_genesis_draft, 0, sizeof s_genesis_draft);
    memcpy (s_genesis_draft.pid, s_pid, GKX_ID_BYTES);
    memcpy (s_genesis_draft.author, gkx_identity_id (s_advertiser), GKX_ID_BYTES);
    s_genesis_draft.seq = 1;
    s_genesis_draft.hlc = T0;
    s_genesis_draft.kind = GKX_KIND_GENESIS;
    s_genesis_draft.body = (const uint8_t *) s_genesis_body.data;
    s_genesis_draft.body_len = s_genesis_body.size;
    s_genesis = s_sign (&s_genesis_draft, s_advertiser);

    memset (&s_ack_draft, 0, sizeof s_ack_draft);
    memcpy (s_ack_draft.pid, s_pid, GKX_ID_BYTES);
    memcpy (s_ack_draft.author, gkx_identity_id (s_publisher), GKX_ID_BYTES);
    s_ack_draft.seq = 1;
    s_ack_draft.seen_seq = 1;
    memcpy (s_ack_draft.seen_hash, gkx_entry_hash (s_genesis), GKX_HASH_BYTES);
    s_ack_draft.hlc = T0 + 1;
    s_ack_draft.kind = GKX_KIND_ACK;
    s_ack_draft.body = gkx_ack_body;
    s_ack_draft.body_len = sizeof gkx_ack_body;
    s_ack = s_sign (&s_ack_draft, s_publisher);

    msgpack_packer pk;
    s_packer (&s_edit_body, &pk);
    msgpack_pack_map (&pk, 2);
    gkx_codec_pack_cstr (&pk, "field");
    gkx_codec_pack_cstr (&pk, "title");
    gkx_codec_pack_cstr (&pk, "value");
    gkx_codec_pack_cstr (&pk, "Karting day");

    memset (&s_edit_draft, 0, sizeof s_edit_draft);
    memcpy (s_edit_draft.pid, s_pid, GKX_ID_BYTES);
    memcpy (s_edit_draft.author, gkx_identity_id (s_advertiser), GKX_ID_BYTES);
    s_edit_draft.seq = 2;
    memcpy (s_edit_draft.prev_hash, gkx_entry_hash (s_genesis), GKX_HASH_BYTES);
    s_edit_draft.seen_seq = 1;
    memcpy (s_edit_draft.seen_hash, gkx_entry_hash (s_ack), GKX_HASH_BYTES);
    s_edit_draft.hlc = T0 + 2;
    s_edit_draft.kind = GKX_KIND_EDIT;
    s_edit_draft.body = (const uint8_t *) s_edit_body.data;
    s_edit_draft.body_len = s_edit_body.size;
    s_edit = s_sign (&s_edit_draft, s_advertiser);
}

static void
s_teardown (void)
{
    gkx_entry_destroy (&s_edit);
    gkx_entry_destroy (&s_ack);
    gkx_entry_destroy (&s_genesis);
    msgpack_sbuffer_destroy (&s_edit_body);
    msgpack_sbuffer_destroy (&s_genesis_body);
    gkx_identity_destroy (&s_publisher);
    gkx_identity_destroy (&s_advertiser);
}

/* Signs prefix || msg with the raw libsodium call, independently of
   gkx_identity_sign, so the tests pin the documented signed message. */
static void
s_sign_raw (uint8_t sig[GKX_SIGNATURE_BYTES], const gkx_identity_t *signer, const char *prefix,
            const uint8_t *msg, size_t msg_len)
{
    size_t prefix_len = strlen (prefix);
    uint8_t *joined = malloc (prefix_len + msg_len);
    ck_assert_ptr_nonnull (joined);
    memcpy (joined, prefix, prefix_len);
    memcpy (joined + prefix_len, msg, msg_len);
    crypto_sign_detached (sig, NULL, joined, prefix_len + msg_len,
                          gkx_identity_sign_secret (signer));
    free (joined);
}

/* The fields of an entry to be packed by hand. */
typedef struct {
    uint64_t version;
    const uint8_t *pid;
    size_t pid_len;
    const uint8_t *author;
    uint64_t seq;
    const uint8_t *prev_hash;
    uint64_t seen_seq;
    const uint8_t *seen_hash;
    uint64_t hlc;
    uint64_t kind;
    const uint8_t *body;
    size_t body_len;
    size_t signature_len;       /* bytes of the signature field's bin */
    int raw_index;              /* field written as raw bytes, or -1 */
    const uint8_t *raw;         /* its msgpack encoding */
    size_t raw_len;
} s_fields_t;

/* Copies an entry's fields (borrowed from the entry) for s_craft. */
static void
s_fields_of (s_fields_t *f, const gkx_entry_t *entry)
{
    memset (f, 0, sizeof *f);
    f->version = GKX_ENTRY_VERSION;
    f->pid = gkx_entry_pid (entry);
    f->pid_len = GKX_ID_BYTES;
    f->author = gkx_entry_author (entry);
    f->seq = gkx_entry_seq (entry);
    f->prev_hash = gkx_entry_prev_hash (entry);
    f->seen_seq = gkx_entry_seen_seq (entry);
    f->seen_hash = gkx_entry_seen_hash (entry);
    f->hlc = gkx_entry_hlc (entry);
    f->kind = (uint64_t) gkx_entry_kind (entry);
    f->body = gkx_entry_body (entry, &f->body_len);
    f->signature_len = GKX_SIGNATURE_BYTES;
    f->raw_index = -1;
}

/* Packs the 11-field array by hand and signs its first ten fields with
   signer, as an author would. */
static void
s_craft (msgpack_sbuffer *sbuf, const s_fields_t *f, const gkx_identity_t *signer)
{
    msgpack_packer pk;
    s_packer (sbuf, &pk);
    msgpack_pack_array (&pk, 11);
    for (int i = 0; i < 10; i++) {
        if (i == f->raw_index) {
            msgpack_sbuffer_write (sbuf, (const char *) f->raw, f->raw_len);
            continue;
        }
        switch (i) {
            case 0: msgpack_pack_uint64 (&pk, f->version); break;
            case 1: gkx_codec_pack_bin (&pk, f->pid, f->pid_len); break;
            case 2: gkx_codec_pack_bin (&pk, f->author, GKX_ID_BYTES); break;
            case 3: msgpack_pack_uint64 (&pk, f->seq); break;
            case 4: gkx_codec_pack_bin (&pk, f->prev_hash, GKX_HASH_BYTES); break;
            case 5: msgpack_pack_uint64 (&pk, f->seen_seq); break;
            case 6: gkx_codec_pack_bin (&pk, f->seen_hash, GKX_HASH_BYTES); break;
            case 7: msgpack_pack_uint64 (&pk, f->hlc); break;
            case 8: msgpack_pack_uint64 (&pk, f->kind); break;
            default:
                msgpack_sbuffer_write (sbuf, (const char *) f->body, f->body_len);
                break;
        }
    }
    uint8_t sig[GKX_SIGNATURE_BYTES];
    s_sign_raw (sig, signer, GKX_ENTRY_SIGN_PREFIX, (const uint8_t *) sbuf->data, sbuf->size);
    gkx_codec_pack_bin (&pk, sig, f->signature_len);
}

/* Decodes buf, frees what was decoded, returns the code. */
static int
s_decode (const uint8_t *buf, size_t len, char *errbuf)
{
    gkx_entry_t *entry = NULL;
    errbuf[0] = '\0';
    int rc = gkx_entry_decode (&entry, buf, len, errbuf);
    ck_assert ((rc == GKX_OK) == (entry != NULL));
    gkx_entry_destroy (&entry);
    return rc;
}

/* Crafts f signed by signer and returns the decoder's verdict. */
static int
s_craft_decode (const s_fields_t *f, const gkx_identity_t *signer, char *errbuf)
{
    msgpack_sbuffer sbuf;
    s_craft (&sbuf, f, signer);
    int rc = s_decode ((const uint8_t *) sbuf.data, sbuf.size, errbuf);
    msgpack_sbuffer_destroy (&sbuf);
    return rc;
}

/* Asserts every accessor of entry returns what draft held. */
static void
s_assert_matches_draft (const gkx_entry_t *entry, const gkx_entry_draft_t *draft)
{
    size_t body_len = 0;
    const uint8_t *body = gkx_entry_body (entry, &body_len);
    ck_assert (memcmp (gkx_entry_pid (entry), draft->pid, GKX_ID_BYTES) == 0);
    ck_assert (memcmp (gkx_entry_author (entry), draft->author, GKX_ID_BYTES) == 0);
    ck_assert_uint_eq (gkx_entry_seq (entry), draft->seq);
    ck_assert (memcmp (gkx_entry_prev_hash (entry), draft->prev_hash, GKX_HASH_BYTES) == 0);
    ck_assert_uint_eq (gkx_entry_seen_seq (entry), draft->seen_seq);
    ck_assert (memcmp (gkx_entry_seen_hash (entry), draft->seen_hash, GKX_HASH_BYTES) == 0);
    ck_assert_uint_eq (gkx_entry_hlc (entry), draft->hlc);
    ck_assert_int_eq (gkx_entry_kind (entry), draft->kind);
    ck_assert_uint_eq (body_len, draft->body_len);
    ck_assert (memcmp (body, draft->body, body_len) == 0);
}

/* Signing, then decoding the bytes, gives back every field of the draft. */
START_TEST (test_sign_decode_round_trip)
{
    const gkx_entry_t *signed_entries[] = {s_genesis, s_ack, s_edit};
    const gkx_entry_draft_t *drafts[] = {&s_genesis_draft, &s_ack_draft, &s_edit_draft};
    for (size_t i = 0; i < 3; i++) {
        const gkx_entry_t *original = signed_entries[i];
        s_assert_matches_draft (original, drafts[i]);
        ck_assert_rc (gkx_entry_verify (original), GKX_OK);

        size_t len = 0;
        const uint8_t *bytes = gkx_entry_bytes (original, &len);
        gkx_entry_t *decoded = NULL;
        char errbuf[GKX_ERRBUF_BYTES] = "";
        ck_assert_rc (gkx_entry_decode (&decoded, bytes, len, errbuf), GKX_OK);
        ck_assert_str_eq (errbuf, "");
        s_assert_matches_draft (decoded, drafts[i]);

        size_t decoded_len = 0;
        const uint8_t *decoded_bytes = gkx_entry_bytes (decoded, &decoded_len);
        ck_assert_uint_eq (decoded_len, len);
        ck_assert (memcmp (decoded_bytes, bytes, len) == 0);
        /* The entry holds its own copy of the bytes. */
        ck_assert_ptr_ne (decoded_bytes, bytes);
        ck_assert (memcmp (gkx_entry_hash (decoded), gkx_entry_hash (original),
                           GKX_HASH_BYTES) == 0);
        ck_assert (memcmp (gkx_entry_signature (decoded), gkx_entry_signature (original),
                           GKX_SIGNATURE_BYTES) == 0);
        ck_assert_rc (gkx_entry_verify (decoded), GKX_OK);
        gkx_entry_destroy (&decoded);
        ck_assert_ptr_null (decoded);
    }
}
END_TEST

/* peek_kind reads the kind of every entry without decoding it, and refuses
   anything cut before the kind or not shaped as an entry. */
START_TEST (test_peek_kind)
{
    const gkx_entry_t *entries[] = {s_genesis, s_ack, s_edit};
    for (size_t i = 0; i < 3; i++) {
        size_t len = 0;
        const uint8_t *bytes = gkx_entry_bytes (entries[i], &len);
        int kind = -1;
        ck_assert_rc (gkx_entry_peek_kind (bytes, len, &kind), GKX_OK);
        ck_assert_int_eq (kind, gkx_entry_kind (entries[i]));
        /* Cut anywhere up to and including the kind: refused, never read past. */
        size_t cut = 0;
        while (cut < len && gkx_entry_peek_kind (bytes, cut, &kind) == GKX_EDECODE) {
            cut++;
        }
        ck_assert_uint_gt (cut, 100);   /* the kind follows the ids and hashes */
        ck_assert_uint_lt (cut, len);
    }
    const uint8_t map[] = {0x80};
    const uint8_t short_array[] = {0x93, 0x01, 0x02, 0x03};
    int kind = -1;
    ck_assert_rc (gkx_entry_peek_kind (map, sizeof map, &kind), GKX_EDECODE);
    ck_assert_rc (gkx_entry_peek_kind (short_array, sizeof short_array, &kind), GKX_EDECODE);
    ck_assert_rc (gkx_entry_peek_kind (map, 0, &kind), GKX_EDECODE);
    ck_assert_int_eq (kind, -1);
}
END_TEST

/* The entry hash is BLAKE2b-256 of exactly the stored bytes. */
START_TEST (test_hash_is_blake2b_of_bytes)
{
    const gkx_entry_t *entries[] = {s_genesis, s_ack, s_edit};
    for (size_t i = 0; i < 3; i++) {
        size_t len = 0;
        const uint8_t *bytes = gkx_entry_bytes (entries[i], &len);
        uint8_t expected[GKX_HASH_BYTES];
        crypto_generichash (expected, sizeof expected, bytes, len, NULL, 0);
        ck_assert (memcmp (gkx_entry_hash (entries[i]), expected, GKX_HASH_BYTES) == 0);
    }
    ck_assert (memcmp (gkx_entry_hash (s_genesis), gkx_entry_hash (s_edit),
                       GKX_HASH_BYTES) != 0);
}
END_TEST

/* The signature is the last field, a bin8 of 64 bytes, by the author over
   "GKX-ENTRY-V1" || every byte before that field. */
START_TEST (test_signature_covers_prefix_and_stored_bytes)
{
    size_t len = 0;
    const uint8_t *bytes = gkx_entry_bytes (s_edit, &len);
    size_t signed_len = len - GKX_ENTRY_SIGNATURE_FIELD_BYTES;
    ck_assert_uint_eq (bytes[0], 0x9b);
    ck_assert_uint_eq (bytes[signed_len], 0xc4);
    ck_assert_uint_eq (bytes[signed_len + 1], GKX_SIGNATURE_BYTES);
    ck_assert (memcmp (bytes + signed_len + 2, gkx_entry_signature (s_edit),
                       GKX_SIGNATURE_BYTES) == 0);

    size_t prefix_len = strlen (GKX_ENTRY_SIGN_PREFIX);
    uint8_t *message = malloc (prefix_len + signed_len);
    ck_assert_ptr_nonnull (message);
    memcpy (message, GKX_ENTRY_SIGN_PREFIX, prefix_len);
    memcpy (message + prefix_len, bytes, signed_len);
    ck_assert_int_eq (crypto_sign_verify_detached (gkx_entry_signature (s_edit), message,
                                                   prefix_len + signed_len,
                                                   gkx_identity_id (s_advertiser)),
                      0);
    free (message);

    /* The body sits just before the signature field, as stored. */
    size_t body_len = 0;
    const uint8_t *body = gkx_entry_body (s_edit, &body_len);
    ck_assert_ptr_eq (body + body_len, bytes + signed_len);
}
END_TEST

/* Packing an entry's fields by hand and signing them gives the very bytes
   gkx_entry_sign wrote (Ed25519 is deterministic), so crafted entries
   below differ from a valid one only in what each test changes. */
START_TEST (test_craft_reproduces_signed_bytes)
{
    const gkx_entry_t *entries[] = {s_genesis, s_ack, s_edit};
    const gkx_identity_t *authors[] = {s_advertiser, s_publisher, s_advertiser};
    for (size_t i = 0; i < 3; i++) {
        s_fields_t f;
        s_fields_of (&f, entries[i]);
        msgpack_sbuffer sbuf;
        s_craft (&sbuf, &f, authors[i]);
        size_t len = 0;
        const uint8_t *bytes = gkx_entry_bytes (entries[i], &len);
        ck_assert_uint_eq (sbuf.size, len);
        ck_assert (memcmp (sbuf.data, bytes, len) == 0);
        msgpack_sbuffer_destroy (&sbuf);
    }
}
END_TEST

/* A signature by another key over the same message decodes (it is just 64
   bytes) but does not verify. */
START_TEST (test_verify_rejects_wrong_key)
{
    size_t len = 0;
    const uint8_t *bytes = gkx_entry_bytes (s_edit, &len);
    size_t signed_len = len - GKX_ENTRY_SIGNATURE_FIELD_BYTES;
    uint8_t *forged = malloc (len);
    ck_assert_ptr_nonnull (forged);
    memcpy (forged, bytes, len);
    s_sign_raw (forged + len - GKX_SIGNATURE_BYTES, s_publisher, GKX_ENTRY_SIGN_PREFIX, bytes,
                signed_len);

    gkx_entry_t *entry = NULL;
    char errbuf[GKX_ERRBUF_BYTES];
    ck_assert_rc (gkx_entry_decode (&entry, forged, len, errbuf), GKX_OK);
    ck_assert_rc (gkx_entry_verify (entry), GKX_ESIGNATURE);
    gkx_entry_destroy (&entry);
    free (forged);
}
END_TEST

/* The author's own signature under another domain (a card's) does not
   verify as an entry signature. */
START_TEST (test_verify_rejects_other_domain)
{
    size_t len = 0;
    const uint8_t *bytes = gkx_entry_bytes (s_edit, &len);
    size_t signed_len = len - GKX_ENTRY_SIGNATURE_FIELD_BYTES;
    uint8_t *forged = malloc (len);
    ck_assert_ptr_nonnull (forged);
    memcpy (forged, bytes, len);
    s_sign_raw (forged + len - GKX_SIGNATURE_BYTES, s_advertiser, "GKX-CARD-V1", bytes,
                signed_len);

    gkx_entry_t *entry = NULL;
    char errbuf[GKX_ERRBUF_BYTES];
    ck_assert_rc (gkx_entry_decode (&entry, forged, len, errbuf), GKX_OK);
    ck_assert_rc (gkx_entry_verify (entry), GKX_ESIGNATURE);
    gkx_entry_destroy (&entry);
    free (forged);
}
END_TEST

/* Every single-byte change anywhere in an entry is detected: the decoder
   refuses it or the signature fails. A change that both decoded and
   verified would be a forgery, whatever its hash. Three masks per byte:
   the low bit, the high bit, and all eight. */
START_TEST (test_flipped_byte_always_detected)
{
    static const uint8_t masks[] = {0x01, 0x80, 0xff};
    const gkx_entry_t *entries[] = {s_genesis, s_ack, s_edit};
    for (size_t e = 0; e < 3; e++) {
        size_t len = 0;
        const uint8_t *bytes = gkx_entry_bytes (entries[e], &len);

        /* Field boundaries, to name the field a failure sits in. */
        size_t starts[12];
        size_t pos = 1;
        char errbuf[GKX_ERRBUF_BYTES];
        for (int i = 0; i < 11; i++) {
            size_t field_len = 0;
            ck_assert_rc (gkx_codec_value_length (bytes + pos, len - pos, &field_len, "field",
                                                  errbuf),
                          GKX_OK);
            starts[i] = pos;
            pos += field_len;
        }
        starts[11] = pos;
        ck_assert_uint_eq (pos, len);

        uint8_t *copy = malloc (len);
        ck_assert_ptr_nonnull (copy);
        int field = -1;
        size_t signature_rejections = 0;
        for (size_t at = 0; at < len; at++) {
            while (field < 10 && at >= starts[field + 1]) {
                field++;
            }
            for (size_t m = 0; m < sizeof masks; m++) {
                memcpy (copy, bytes, len);
                copy[at] ^= masks[m];
                gkx_entry_t *entry = NULL;
                int decoded = gkx_entry_decode (&entry, copy, len, errbuf);
                if (decoded != GKX_OK) {
                    ck_assert_ptr_null (entry);
                    continue;
                }
                ck_assert_msg (gkx_entry_verify (entry) == GKX_ESIGNATURE,
                               "entry %zu: flip 0x%02x at byte %zu (%s) went undetected", e,
                               masks[m], at, field < 0 ? "array header" : s_field_names[field]);
                ck_assert (memcmp (gkx_entry_hash (entry), gkx_entry_hash (entries[e]),
                                   GKX_HASH_BYTES) != 0);
                if (field == 10) {
                    signature_rejections++;
                }
                gkx_entry_destroy (&entry);
            }
        }
        /* A flip in the signature's 64 bytes always decodes, so the loop
           really reached the signature check. */
        ck_assert_uint_eq (signature_rejections, GKX_SIGNATURE_BYTES * sizeof masks);
        free (copy);
    }
}
END_TEST

/* A duplicate outlives its original and is equal to it. */
/* A copy of entry with the last byte of its signature flipped. */
static gkx_entry_t *
s_with_bad_signature (const gkx_entry_t *entry)
{
    size_t len;
    const uint8_t *bytes = gkx_entry_bytes (entry, &len);
    uint8_t *copy = gkx_memdup (bytes, len);
    copy[len - 1] ^= 0x01;
    gkx_entry_t *bad = NULL;
    ck_assert_rc (gkx_entry_decode (&bad, copy, len, NULL), GKX_OK);
    gkx_free (copy);
    return bad;
}

START_TEST (test_verify_batch_one_signature_per_run)
{
    int rcs[3] = {-1, -1, -1};
    gkx_entry_t *run[] = {s_genesis, s_edit};
    /* the edit's signature covers its prev_hash, the genesis' hash */
    ck_assert_uint_eq (gkx_entry_verify_batch (run, 2, rcs), 1);
    ck_assert_rc (rcs[0], GKX_OK);
    ck_assert_rc (rcs[1], GKX_OK);

    /* another author's entry in between ends the run */
    gkx_entry_t *mixed[] = {s_genesis, s_ack, s_edit};
    ck_assert_uint_eq (gkx_entry_verify_batch (mixed, 3, rcs), 3);
    ck_assert (rcs[0] == GKX_OK && rcs[1] == GKX_OK && rcs[2] == GKX_OK);

    /* a missing (undecodable) entry ends it too and keeps its code */
    gkx_entry_t *holed[] = {s_genesis, NULL, s_edit};
    rcs[1] = GKX_EDECODE;
    ck_assert_uint_eq (gkx_entry_verify_batch (holed, 3, rcs), 2);
    ck_assert_rc (rcs[1], GKX_EDECODE);
    ck_assert_uint_eq (gkx_entry_verify_batch (NULL, 0, NULL), 0);
}
END_TEST

START_TEST (test_verify_batch_bad_signature_refuses_only_its_entry)
{
    int rcs[2];
    /* a bad last signature: each entry of the run is checked on its own */
    gkx_entry_t *bad_edit = s_with_bad_signature (s_edit);
    gkx_entry_t *run[] = {s_genesis, bad_edit};
    ck_assert_uint_eq (gkx_entry_verify_batch (run, 2, rcs), 2);
    ck_assert_rc (rcs[0], GKX_OK);
    ck_assert_rc (rcs[1], GKX_ESIGNATURE);

    /* a bad earlier signature changes its hash, so the chain breaks there */
    gkx_entry_t *bad_genesis = s_with_bad_signature (s_genesis);
    gkx_entry_t *broken[] = {bad_genesis, s_edit};
    ck_assert_uint_eq (gkx_entry_verify_batch (broken, 2, rcs), 2);
    ck_assert_rc (rcs[0], GKX_ESIGNATURE);
    ck_assert_rc (rcs[1], GKX_OK);
    gkx_entry_destroy (&bad_edit);
    gkx_entry_destroy (&bad_genesis);
}
END_TEST

START_TEST (test_dup)
{
    size_t len = 0;
    const uint8_t *bytes = gkx_entry_bytes (s_edit, &len);
    uint8_t *saved = malloc (len);
    ck_assert_ptr_nonnull (saved);
    memcpy (saved, bytes, len);

    gkx_entry_t *copy = gkx_entry_dup (s_edit);
    ck_assert_ptr_nonnull (copy);
    ck_assert_ptr_ne (gkx_entry_bytes (copy, &len), bytes);
    gkx_entry_destroy (&s_edit);

    const uint8_t *copy_bytes = gkx_entry_bytes (copy, &len);
    ck_assert (memcmp (copy_bytes, saved, len) == 0);
    s_assert_matches_draft (copy, &s_edit_draft);
    uint8_t expected[GKX_HASH_BYTES];
    crypto_generichash (expected, sizeof expected, saved, len, NULL, 0);
    ck_assert (memcmp (gkx_entry_hash (copy), expected, GKX_HASH_BYTES) == 0);
    ck_assert_rc (gkx_entry_verify (copy), GKX_OK);
    gkx_entry_destroy (&copy);
    free (saved);
}
END_TEST

START_TEST (test_destroy_accepts_null)
{
    gkx_entry_t *entry = NULL;
    gkx_entry_destroy (&entry);
    gkx_entry_destroy (NULL);
    entry = gkx_entry_dup (s_ack);
    gkx_entry_destroy (&entry);
    ck_assert_ptr_null (entry);
    gkx_entry_destroy (&entry);
}
END_TEST

START_TEST (test_genesis_members)
{
    uint8_t advertiser[GKX_ID_BYTES];
    uint8_t publisher[GKX_ID_BYTES];
    ck_assert_rc (gkx_genesis_members (s_genesis, advertiser, publisher), GKX_OK);
    ck_assert (memcmp (advertiser, gkx_identity_id (s_advertiser), GKX_ID_BYTES) == 0);
    ck_assert (memcmp (publisher, gkx_identity_id (s_publisher), GKX_ID_BYTES) == 0);
    ck_assert_rc (gkx_genesis_members (s_ack, advertiser, publisher), GKX_EKIND);
    ck_assert_rc (gkx_genesis_members (s_edit, advertiser, publisher), GKX_EKIND);
}
END_TEST

/* The pid is BLAKE2b-256 of "GKX-PID-V1" || advertiser || publisher ||
   nonce: the members' order and the nonce both matter. */
START_TEST (test_partnership_id)
{
    const uint8_t *a = gkx_identity_id (s_advertiser);
    const uint8_t *p = gkx_identity_id (s_publisher);
    uint8_t input[10 + 2 * GKX_ID_BYTES + GKX_NONCE_BYTES];
    memcpy (input, GKX_PID_PREFIX, 10);
    memcpy (input + 10, a, GKX_ID_BYTES);
    memcpy (input + 10 + GKX_ID_BYTES, p, GKX_ID_BYTES);
    memcpy (input + 10 + 2 * GKX_ID_BYTES, s_nonce, GKX_NONCE_BYTES);
    uint8_t expected[GKX_ID_BYTES];
    crypto_generichash (expected, sizeof expected, input, sizeof input, NULL, 0);
    ck_assert_uint_eq (strlen (GKX_PID_PREFIX), 10);
    ck_assert (memcmp (s_pid, expected, GKX_ID_BYTES) == 0);

    uint8_t swapped[GKX_ID_BYTES];
    gkx_partnership_id (swapped, p, a, s_nonce);
    ck_assert (memcmp (swapped, s_pid, GKX_ID_BYTES) != 0);
    uint8_t other_nonce[GKX_NONCE_BYTES] = {0};
    uint8_t renonced[GKX_ID_BYTES];
    gkx_partnership_id (renonced, a, p, other_nonce);
    ck_assert (memcmp (renonced, s_pid, GKX_ID_BYTES) != 0);
}
END_TEST

/* The genesis body is the canonical map of its five keys in sorted order;
   offer and policy are written verbatim, or as empty maps. */
START_TEST (test_genesis_body_encode)
{
    const uint8_t *a = gkx_identity_id (s_advertiser);
    const uint8_t *p = gkx_identity_id (s_publisher);
    static const uint8_t offer[] = {0x81, 0xa5, 't', 'i', 't', 'l', 'e', 0xa2, 'G', 'o'};
    static const uint8_t policy[] = {0x81, 0xa1, 'x', 0x01};
    msgpack_sbuffer sbuf;
    msgpack_sbuffer_init (&sbuf);
    gkx_genesis_body_encode (&sbuf, a, p, s_nonce, offer, sizeof offer, policy, sizeof policy);

    msgpack_sbuffer expected;
    msgpack_packer pk;
    s_packer (&expected, &pk);
    msgpack_pack_map (&pk, 5);
    gkx_codec_pack_cstr (&pk, "advertiser");
    gkx_codec_pack_bin (&pk, a, GKX_ID_BYTES);
    gkx_codec_pack_cstr (&pk, "nonce");
    gkx_codec_pack_bin (&pk, s_nonce, GKX_NONCE_BYTES);
    gkx_codec_pack_cstr (&pk, "offer");
    msgpack_sbuffer_write (&expected, (const char *) offer, sizeof offer);
    gkx_codec_pack_cstr (&pk, "policy");
    msgpack_sbuffer_write (&expected, (const char *) policy, sizeof policy);
    gkx_codec_pack_cstr (&pk, "publisher");
    gkx_codec_pack_bin (&pk, p, GKX_ID_BYTES);
    ck_assert_uint_eq (sbuf.size, expected.size);
    ck_assert (memcmp (sbuf.data, expected.data, sbuf.size) == 0);

    msgpack_zone zone;
    msgpack_zone_init (&zone, 1024);
    msgpack_object obj;
    char errbuf[GKX_ERRBUF_BYTES];
    ck_assert_rc (gkx_codec_decode (&obj, &zone, (const uint8_t *) sbuf.data, sbuf.size,
                                    "body", errbuf),
                  GKX_OK);
    msgpack_zone_destroy (&zone);
    msgpack_sbuffer_destroy (&expected);
    msgpack_sbuffer_destroy (&sbuf);

    /* Without offer and policy, both are empty maps (0x80). */
    size_t len = s_genesis_body.size;
    const uint8_t *body = (const uint8_t *) s_genesis_body.data;
    ck_assert_uint_eq (len, 1 + 11 + 34 + 6 + 18 + 6 + 1 + 7 + 1 + 10 + 34);
    ck_assert_uint_eq (body[1 + 11 + 34 + 6 + 18 + 6], 0x80);
    ck_assert_uint_eq (body[1 + 11 + 34 + 6 + 18 + 6 + 1 + 7], 0x80);
}
END_TEST

/* gkx_entry_sign applies the decoder's rules to what it wrote: a bad draft
   is refused and no entry is returned. */
START_TEST (test_sign_rejects_bad_draft)
{
    static const uint8_t noncanonical_body[] = {0xde, 0x00, 0x00};
    static const uint8_t ack_body_with_key[] = {0x81, 0xa1, 'a', 0x01};
    gkx_entry_t *entry = NULL;
    char errbuf[GKX_ERRBUF_BYTES];
    gkx_entry_draft_t draft = s_edit_draft;

    draft.kind = 9;
    ck_assert_rc (gkx_entry_sign (&entry, &draft, s_advertiser, errbuf), GKX_EKIND);
    ck_assert_str_eq (errbuf, "entry.kind: 9 is not a known kind");
    ck_assert_ptr_null (entry);

    draft.kind = -1;
    ck_assert_rc (gkx_entry_sign (&entry, &draft, s_advertiser, errbuf), GKX_EKIND);
    ck_assert_str_eq (errbuf, "entry.kind: 0 is not a known kind");
    ck_assert_ptr_null (entry);

    draft = s_edit_draft;
    draft.body = noncanonical_body;
    draft.body_len = sizeof noncanonical_body;
    ck_assert_rc (gkx_entry_sign (&entry, &draft, s_advertiser, errbuf), GKX_ENONCANON);
    ck_assert_str_eq (errbuf, "entry: not the canonical encoding (an integer, string or "
                              "container header is longer than needed)");
    ck_assert_ptr_null (entry);

    draft = s_ack_draft;
    draft.body = ack_body_with_key;
    draft.body_len = sizeof ack_body_with_key;
    ck_assert_rc (gkx_entry_sign (&entry, &draft, s_publisher, errbuf), GKX_EBODY);
    ck_assert_str_eq (errbuf, "entry.body: an ack body is an empty map");
    ck_assert_ptr_null (entry);
}
END_TEST

/* Packs an edit body of four strings "a".."d" whose lengths add up to
   total (each string a str16). */
static void
s_pack_big_body (msgpack_sbuffer *sbuf, size_t total)
{
    msgpack_packer pk;
    s_packer (sbuf, &pk);
    char *text = malloc (GKX_CODEC_MAX_STRING_BYTES);
    ck_assert_ptr_nonnull (text);
    memset (text, 'k', GKX_CODEC_MAX_STRING_BYTES);
    msgpack_pack_map (&pk, 4);
    static const char *const keys[] = {"a", "b", "c", "d"};
    for (int i = 0; i < 4; i++) {
        size_t n = i < 3 ? GKX_CODEC_MAX_STRING_BYTES : total - 3 * GKX_CODEC_MAX_STRING_BYTES;
        ck_assert (n >= 256 && n <= GKX_CODEC_MAX_STRING_BYTES);
        gkx_codec_pack_cstr (&pk, keys[i]);
        msgpack_pack_str (&pk, n);
        msgpack_pack_str_body (&pk, text, n);
    }
    free (text);
}

/* An entry of exactly GKX_ENTRY_MAX_BYTES is signed and decoded; one byte
   more is refused by the signer. */
START_TEST (test_sign_size_limit)
{
    size_t edit_len = 0;
    gkx_entry_bytes (s_edit, &edit_len);
    size_t overhead = edit_len - s_edit_body.size;
    /* Body: fixmap header, then per key 2 bytes of key and 3 of str16 header. */
    size_t strings = GKX_ENTRY_MAX_BYTES - overhead - 1 - 4 * (2 + 3);

    msgpack_sbuffer body;
    s_pack_big_body (&body, strings);
    gkx_entry_draft_t draft = s_edit_draft;
    draft.body = (const uint8_t *) body.data;
    draft.body_len = body.size;
    gkx_entry_t *entry = NULL;
    char errbuf[GKX_ERRBUF_BYTES];
    ck_assert_rc (gkx_entry_sign (&entry, &draft, s_advertiser, errbuf), GKX_OK);
    size_t len = 0;
    const uint8_t *bytes = gkx_entry_bytes (entry, &len);
    ck_assert_uint_eq (len, GKX_ENTRY_MAX_BYTES);
    ck_assert_rc (s_decode (bytes, len, errbuf), GKX_OK);
    gkx_entry_destroy (&entry);
    msgpack_sbuffer_destroy (&body);

    s_pack_big_body (&body, strings + 1);
    draft.body = (const uint8_t *) body.data;
    draft.body_len = body.size;
    ck_assert_rc (gkx_entry_sign (&entry, &draft, s_advertiser, errbuf), GKX_ETOOBIG);
    ck_assert_str_eq (errbuf, "entry: 65537 bytes exceeds 65536");
    ck_assert_ptr_null (entry);
    msgpack_sbuffer_destroy (&body);
}
END_TEST

/* The decoder refuses oversize input before looking at it. */
START_TEST (test_reject_oversize)
{
    uint8_t *buf = calloc (1, GKX_ENTRY_MAX_BYTES + 1);
    ck_assert_ptr_nonnull (buf);
    size_t len = 0;
    memcpy (buf, gkx_entry_bytes (s_edit, &len), len);
    char errbuf[GKX_ERRBUF_BYTES];
    ck_assert_rc (s_decode (buf, GKX_ENTRY_MAX_BYTES + 1, errbuf), GKX_ETOOBIG);
    ck_assert_str_eq (errbuf, "entry: 65537 bytes exceeds 65536");
    free (buf);
}
END_TEST

START_TEST (test_reject_trailing_bytes)
{
    size_t len = 0;
    const uint8_t *bytes = gkx_entry_bytes (s_edit, &len);
    uint8_t *buf = malloc (len + 1);
    ck_assert_ptr_nonnull (buf);
    memcpy (buf, bytes, len);
    buf[len] = 0x00;
    char errbuf[GKX_ERRBUF_BYTES];
    ck_assert_rc (s_decode (buf, len + 1, errbuf), GKX_ETRAILING);
    ck_assert_str_eq (errbuf, "entry: 1 trailing bytes after the value");
    /* Cut short by one byte, the signature's 64 bytes no longer fit after
       its two-byte header. */
    char expected[GKX_ERRBUF_BYTES];
    snprintf (expected, sizeof expected, "entry: truncated at byte %zu",
              len - GKX_SIGNATURE_BYTES);
    ck_assert_rc (s_decode (buf, len - 1, errbuf), GKX_EDECODE);
    ck_assert_str_eq (errbuf, expected);
    free (buf);
}
END_TEST

/* Ten or twelve fields, or a map, are not an entry. */
START_TEST (test_reject_wrong_array_size)
{
    size_t len = 0;
    const uint8_t *bytes = gkx_entry_bytes (s_edit, &len);
    uint8_t *buf = malloc (len + 1);
    ck_assert_ptr_nonnull (buf);
    char errbuf[GKX_ERRBUF_BYTES];

    /* Without the signature field. */
    memcpy (buf, bytes, len);
    buf[0] = 0x9a;
    ck_assert_rc (s_decode (buf, len - GKX_ENTRY_SIGNATURE_FIELD_BYTES, errbuf), GKX_ETYPE);
    ck_assert_str_eq (errbuf, "entry: expected an array of 11 fields");

    /* With a nil after the signature. */
    buf[0] = 0x9c;
    buf[len] = 0xc0;
    ck_assert_rc (s_decode (buf, len + 1, errbuf), GKX_ETYPE);
    ck_assert_str_eq (errbuf, "entry: expected an array of 11 fields");
    free (buf);

    static const uint8_t map[] = {0x81, 0xa1, 'a', 0x01};
    ck_assert_rc (s_decode (map, sizeof map, errbuf), GKX_ETYPE);
    ck_assert_str_eq (errbuf, "entry: expected an array of 11 fields");
}
END_TEST

START_TEST (test_reject_unknown_version)
{
    s_fields_t f;
    char errbuf[GKX_ERRBUF_BYTES];
    s_fields_of (&f, s_edit);
    f.version = 2;
    ck_assert_rc (s_craft_decode (&f, s_advertiser, errbuf), GKX_EVERSION);
    ck_assert_str_eq (errbuf, "entry.version: 2 is not a known version (1)");
    f.version = 0;
    ck_assert_rc (s_craft_decode (&f, s_advertiser, errbuf), GKX_EVERSION);
    ck_assert_str_eq (errbuf, "entry.version: 0 is not a known version (1)");
}
END_TEST

/* Each unsigned field refuses another type. */
START_TEST (test_reject_uint_field_of_wrong_type)
{
    static const uint8_t text[] = {0xa1, '1'};
    static const uint8_t negative[] = {0xff};
    static const int fields[] = {0, 3, 5, 7, 8};
    s_fields_t f;
    char errbuf[GKX_ERRBUF_BYTES];
    char expected[GKX_ERRBUF_BYTES];
    for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++) {
        s_fields_of (&f, s_edit);
        f.raw_index = fields[i];
        f.raw = i % 2 ? negative : text;
        f.raw_len = i % 2 ? sizeof negative : sizeof text;
        snprintf (expected, sizeof expected, "entry.%s: expected an unsigned integer",
                  s_field_names[fields[i]]);
        ck_assert_rc (s_craft_decode (&f, s_advertiser, errbuf), GKX_ETYPE);
        ck_assert_str_eq (errbuf, expected);
    }
}
END_TEST

/* Each bin field refuses a string of the right length. */
START_TEST (test_reject_bin_field_of_wrong_type)
{
    static const int fields[] = {1, 2, 4, 6};
    uint8_t text[2 + GKX_ID_BYTES];
    text[0] = 0xd9;
    text[1] = GKX_ID_BYTES;
    memset (text + 2, 'a', GKX_ID_BYTES);
    s_fields_t f;
    char errbuf[GKX_ERRBUF_BYTES];
    char expected[GKX_ERRBUF_BYTES];
    for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++) {
        s_fields_of (&f, s_edit);
        f.raw_index = fields[i];
        f.raw = text;
        f.raw_len = sizeof text;
        snprintf (expected, sizeof expected, "entry.%s: expected bin of 32 bytes",
                  s_field_names[fields[i]]);
        ck_assert_rc (s_craft_decode (&f, s_advertiser, errbuf), GKX_ETYPE);
        ck_assert_str_eq (errbuf, expected);
    }
}
END_TEST

START_TEST (test_reject_unknown_kind_0)
{
    s_fields_t f;
    char errbuf[GKX_ERRBUF_BYTES];
    s_fields_of (&f, s_edit);
    f.kind = 0;
    ck_assert_rc (s_craft_decode (&f, s_advertiser, errbuf), GKX_EKIND);
    ck_assert_str_eq (errbuf, "entry.kind: 0 is not a known kind");
}
END_TEST

START_TEST (test_reject_unknown_kind_9)
{
    s_fields_t f;
    char errbuf[GKX_ERRBUF_BYTES];
    s_fields_of (&f, s_edit);
    f.kind = 9;
    ck_assert_rc (s_craft_decode (&f, s_advertiser, errbuf), GKX_EKIND);
    ck_assert_str_eq (errbuf, "entry.kind: 9 is not a known kind");
    f.kind = UINT64_MAX;
    ck_assert_rc (s_craft_decode (&f, s_advertiser, errbuf), GKX_EKIND);
    ck_assert_str_eq (errbuf, "entry.kind: 18446744073709551615 is not a known kind");
}
END_TEST

START_TEST (test_reject_pid_31_bytes)
{
    s_fields_t f;
    char errbuf[GKX_ERRBUF_BYTES];
    s_fields_of (&f, s_edit);
    f.pid_len = GKX_ID_BYTES - 1;
    ck_assert_rc (s_craft_decode (&f, s_advertiser, errbuf), GKX_ETYPE);
    ck_assert_str_eq (errbuf, "entry.pid: 31 bytes, expected 32");
}
END_TEST

START_TEST (test_reject_pid_33_bytes)
{
    uint8_t pid[GKX_ID_BYTES + 1];
    memcpy (pid, s_pid, GKX_ID_BYTES);
    pid[GKX_ID_BYTES] = 0x00;
    s_fields_t f;
    char errbuf[GKX_ERRBUF_BYTES];
    s_fields_of (&f, s_edit);
    f.pid = pid;
    f.pid_len = sizeof pid;
    ck_assert_rc (s_craft_decode (&f, s_advertiser, errbuf), GKX_ETOOBIG);
    ck_assert_str_eq (errbuf, "entry.pid: 33 bytes, expected 32");
}
END_TEST

/* A signature field of 63 or 65 bytes. */
START_TEST (test_reject_signature_wrong_size)
{
    s_fields_t f;
    char errbuf[GKX_ERRBUF_BYTES];
    s_fields_of (&f, s_edit);
    f.signature_len = GKX_SIGNATURE_BYTES - 1;
    ck_assert_rc (s_craft_decode (&f, s_advertiser, errbuf), GKX_ETYPE);
    ck_assert_str_eq (errbuf, "entry.signature: 63 bytes, expected 64");
}
END_TEST

START_TEST (test_reject_seq_0)
{
    s_fields_t f;
    char errbuf[GKX_ERRBUF_BYTES];
    s_fields_of (&f, s_edit);
    f.seq = 0;
    ck_assert_rc (s_craft_decode (&f, s_advertiser, errbuf), GKX_EINVAL);
    ck_assert_str_eq (errbuf, "entry.seq: must be at least 1");
}
END_TEST

START_TEST (test_reject_prev_hash_at_seq_1)
{
    s_fields_t f;
    char errbuf[GKX_ERRBUF_BYTES];
    s_fields_of (&f, s_ack);
    f.prev_hash = gkx_entry_hash (s_genesis);
    ck_assert_rc (s_craft_decode (&f, s_publisher, errbuf), GKX_EINVAL);
    ck_assert_str_eq (errbuf, "entry.prev_hash: must be zeros at seq 1");
}
END_TEST

/* seen_hash is zeros exactly when seen_seq is 0, both ways round. */
START_TEST (test_reject_seen_hash_mismatch)
{
    static const uint8_t zeros[GKX_HASH_BYTES];
    s_fields_t f;
    char errbuf[GKX_ERRBUF_BYTES];
    s_fields_of (&f, s_edit);
    f.seen_hash = zeros;
    ck_assert_rc (s_craft_decode (&f, s_advertiser, errbuf), GKX_EINVAL);
    ck_assert_str_eq (errbuf, "entry.seen_hash: must be zeros exactly when seen_seq is 0");

    s_fields_of (&f, s_edit);
    f.seen_seq = 0;
    ck_assert_rc (s_craft_decode (&f, s_advertiser, errbuf), GKX_EINVAL);
    ck_assert_str_eq (errbuf, "entry.seen_hash: must be zeros exactly when seen_seq is 0");
}
END_TEST

START_TEST (test_reject_body_not_a_map)
{
    static const uint8_t array[] = {0x90};
    static const uint8_t nil[] = {0xc0};
    s_fields_t f;
    char errbuf[GKX_ERRBUF_BYTES];
    s_fields_of (&f, s_edit);
    f.body = array;
    f.body_len = sizeof array;
    ck_assert_rc (s_craft_decode (&f, s_advertiser, errbuf), GKX_EBODY);
    ck_assert_str_eq (errbuf, "entry.body: expected a map");
    f.body = nil;
    f.body_len = sizeof nil;
    ck_assert_rc (s_craft_decode (&f, s_advertiser, errbuf), GKX_EBODY);
    ck_assert_str_eq (errbuf, "entry.body: expected a map");
}
END_TEST

/* Codec rules apply inside the entry, with the path of the value. */
START_TEST (test_reject_codec_rules_in_body)
{
    static const uint8_t float_body[] = {0x81, 0xa1, 'x', 0xcb, 0x3f, 0xf8, 0, 0, 0, 0, 0, 0};
    static const uint8_t unsorted_body[] = {0x82, 0xa1, 'b', 0x01, 0xa1, 'a', 0x02};
    static const uint8_t utf8_body[] = {0x81, 0xa1, 'k', 0xa2, 0xc0, 0x80};
    static const uint8_t long_seq[] = {0xcc, 0x02};
    s_fields_t f;
    char errbuf[GKX_ERRBUF_BYTES];
    s_fields_of (&f, s_edit);
    f.body = float_body;
    f.body_len = sizeof float_body;
    ck_assert_rc (s_craft_decode (&f, s_advertiser, errbuf), GKX_EFLOAT);
    ck_assert_str_eq (errbuf, "entry[9].x: floats are not allowed in signed data");

    f.body = unsorted_body;
    f.body_len = sizeof unsorted_body;
    ck_assert_rc (s_craft_decode (&f, s_advertiser, errbuf), GKX_EMAPKEY);
    ck_assert_str_eq (errbuf, "entry[9]: map key \"a\" is out of sorted order");

    f.body = utf8_body;
    f.body_len = sizeof utf8_body;
    ck_assert_rc (s_craft_decode (&f, s_advertiser, errbuf), GKX_EUTF8);
    ck_assert_str_eq (errbuf, "entry[9].k: string is not valid UTF-8");

    s_fields_of (&f, s_edit);
    f.raw_index = 3;
    f.raw = long_seq;
    f.raw_len = sizeof long_seq;
    ck_assert_rc (s_craft_decode (&f, s_advertiser, errbuf), GKX_ENONCANON);
    ck_assert_str_eq (errbuf, "entry: not the canonical encoding (an integer, string or "
                              "container header is longer than needed)");
}
END_TEST

START_TEST (test_reject_ack_with_body)
{
    static const uint8_t body[] = {0x81, 0xa4, 'n', 'o', 't', 'e', 0xa2, 'h', 'i'};
    s_fields_t f;
    char errbuf[GKX_ERRBUF_BYTES];
    s_fields_of (&f, s_ack);
    f.body = body;
    f.body_len = sizeof body;
    ck_assert_rc (s_craft_decode (&f, s_publisher, errbuf), GKX_EBODY);
    ck_assert_str_eq (errbuf, "entry.body: an ack body is an empty map");
}
END_TEST

/* An ack later in a chain that acknowledges nothing. */
START_TEST (test_reject_ack_without_seen)
{
    static const uint8_t zeros[GKX_HASH_BYTES];
    s_fields_t f;
    char errbuf[GKX_ERRBUF_BYTES];
    s_fields_of (&f, s_edit);
    f.kind = GKX_KIND_ACK;
    f.body = gkx_ack_body;
    f.body_len = sizeof gkx_ack_body;
    f.seen_seq = 0;
    f.seen_hash = zeros;
    ck_assert_rc (s_craft_decode (&f, s_advertiser, errbuf), GKX_EBODY);
    ck_assert_str_eq (errbuf, "entry.seen_seq: an ack must acknowledge an entry");
}
END_TEST

/* The publisher's first entry must cross-link to the genesis. */
START_TEST (test_reject_chain_start_without_cross_link)
{
    static const uint8_t zeros[GKX_HASH_BYTES];
    static const uint8_t empty_map[] = {0x80};
    s_fields_t f;
    char errbuf[GKX_ERRBUF_BYTES];
    s_fields_of (&f, s_ack);
    f.kind = GKX_KIND_EDIT;
    f.body = empty_map;
    f.body_len = sizeof empty_map;
    f.seen_seq = 0;
    f.seen_hash = zeros;
    ck_assert_rc (s_craft_decode (&f, s_publisher, errbuf), GKX_EBODY);
    ck_assert_str_eq (errbuf, "entry: only a genesis entry may start a chain without a "
                              "cross-link");
}
END_TEST

/* A genesis entry sits at seq 1 and sees nothing. */
START_TEST (test_reject_genesis_position)
{
    s_fields_t f;
    char errbuf[GKX_ERRBUF_BYTES];
    s_fields_of (&f, s_genesis);
    f.seq = 2;
    f.prev_hash = gkx_entry_hash (s_ack);
    ck_assert_rc (s_craft_decode (&f, s_advertiser, errbuf), GKX_EBODY);
    ck_assert_str_eq (errbuf, "entry: a genesis entry must have seq 1 and seen_seq 0");

    s_fields_of (&f, s_genesis);
    f.seen_seq = 1;
    f.seen_hash = gkx_entry_hash (s_ack);
    ck_assert_rc (s_craft_decode (&f, s_advertiser, errbuf), GKX_EBODY);
    ck_assert_str_eq (errbuf, "entry: a genesis entry must have seq 1 and seen_seq 0");
}
END_TEST

/* Which genesis body keys to write, and how. */
typedef struct {
    int skip;                   /* index of a key left out, or -1 */
    const char *rename;         /* replacement for key 2 ("offer"), or NULL */
    int extra;                  /* write a sixth key "zzz" */
    const uint8_t *advertiser;
    size_t advertiser_len;
    size_t nonce_len;
    int offer_not_map;
    const uint8_t *publisher;
    size_t publisher_len;
} s_genesis_spec_t;

/* A spec for the valid genesis body of the fixture. */
static s_genesis_spec_t
s_genesis_spec (void)
{
    s_genesis_spec_t spec = {
        .skip = -1,
        .advertiser = gkx_identity_id (s_advertiser),
        .advertiser_len = GKX_ID_BYTES,
        .nonce_len = GKX_NONCE_BYTES,
        .publisher = gkx_identity_id (s_publisher),
        .publisher_len = GKX_ID_BYTES,
    };
    return spec;
}

/* Packs a genesis body by spec, keys in sorted order. */
static void
s_pack_genesis (msgpack_sbuffer *sbuf, const s_genesis_spec_t *spec)
{
    msgpack_packer pk;
    s_packer (sbuf, &pk);
    msgpack_pack_map (&pk, 5 - (spec->skip >= 0) + (spec->extra != 0));
    for (int i = 0; i < 5; i++) {
        if (i == spec->skip) {
            continue;
        }
        switch (i) {
            case 0:
                gkx_codec_pack_cstr (&pk, "advertiser");
                gkx_codec_pack_bin (&pk, spec->advertiser, spec->advertiser_len);
                break;
            case 1:
                gkx_codec_pack_cstr (&pk, "nonce");
                gkx_codec_pack_bin (&pk, s_nonce, spec->nonce_len);
                break;
            case 2:
                gkx_codec_pack_cstr (&pk, spec->rename ? spec->rename : "offer");
                if (spec->offer_not_map) {
                    msgpack_pack_array (&pk, 0);
                }
                else {
                    msgpack_pack_map (&pk, 0);
                }
                break;
            case 3:
                gkx_codec_pack_cstr (&pk, "policy");
                msgpack_pack_map (&pk, 0);
                break;
            default:
                gkx_codec_pack_cstr (&pk, "publisher");
                gkx_codec_pack_bin (&pk, spec->publisher, spec->publisher_len);
                break;
        }
    }
    if (spec->extra) {
        gkx_codec_pack_cstr (&pk, "zzz");
        msgpack_pack_nil (&pk);
    }
}

/* Crafts a genesis entry (author, pid) with the body of spec and returns the
   decoder's verdict. */
static int
s_genesis_decode (const s_genesis_spec_t *spec, const gkx_identity_t *author,
                  const uint8_t *pid, char *errbuf)
{
    msgpack_sbuffer body;
    s_pack_genesis (&body, spec);
    s_fields_t f;
    s_fields_of (&f, s_genesis);
    f.author = gkx_identity_id (author);
    f.pid = pid;
    f.body = (const uint8_t *) body.data;
    f.body_len = body.size;
    int rc = s_craft_decode (&f, author, errbuf);
    msgpack_sbuffer_destroy (&body);
    return rc;
}

/* The spec packer reproduces the fixture's valid genesis. */
START_TEST (test_genesis_spec_is_valid)
{
    s_genesis_spec_t spec = s_genesis_spec ();
    msgpack_sbuffer body;
    s_pack_genesis (&body, &spec);
    ck_assert_uint_eq (body.size, s_genesis_body.size);
    ck_assert (memcmp (body.data, s_genesis_body.data, body.size) == 0);
    msgpack_sbuffer_destroy (&body);
    char errbuf[GKX_ERRBUF_BYTES];
    ck_assert_rc (s_genesis_decode (&spec, s_advertiser, s_pid, errbuf), GKX_OK);
}
END_TEST

START_TEST (test_reject_genesis_missing_key)
{
    char errbuf[GKX_ERRBUF_BYTES];
    for (int skip = 0; skip < 5; skip++) {
        s_genesis_spec_t spec = s_genesis_spec ();
        spec.skip = skip;
        ck_assert_rc (s_genesis_decode (&spec, s_advertiser, s_pid, errbuf), GKX_EBODY);
        ck_assert_str_eq (errbuf, GENESIS_KEYS_MSG);
    }
}
END_TEST

/* Five keys, one of them not a genesis key; or a sixth key. */
START_TEST (test_reject_genesis_unknown_key)
{
    char errbuf[GKX_ERRBUF_BYTES];
    s_genesis_spec_t spec = s_genesis_spec ();
    spec.rename = "offers";
    ck_assert_rc (s_genesis_decode (&spec, s_advertiser, s_pid, errbuf), GKX_EBODY);
    ck_assert_str_eq (errbuf, GENESIS_KEYS_MSG);

    spec = s_genesis_spec ();
    spec.extra = 1;
    ck_assert_rc (s_genesis_decode (&spec, s_advertiser, s_pid, errbuf), GKX_EBODY);
    ck_assert_str_eq (errbuf, GENESIS_KEYS_MSG);
}
END_TEST

START_TEST (test_reject_genesis_member_size)
{
    char errbuf[GKX_ERRBUF_BYTES];
    s_genesis_spec_t spec = s_genesis_spec ();
    spec.advertiser_len = GKX_ID_BYTES - 1;
    ck_assert_rc (s_genesis_decode (&spec, s_advertiser, s_pid, errbuf), GKX_EBODY);
    ck_assert_str_eq (errbuf, "entry.body.advertiser/publisher: expected bin of 32 bytes");

    spec = s_genesis_spec ();
    spec.publisher_len = GKX_ID_BYTES - 1;
    ck_assert_rc (s_genesis_decode (&spec, s_advertiser, s_pid, errbuf), GKX_EBODY);
    ck_assert_str_eq (errbuf, "entry.body.advertiser/publisher: expected bin of 32 bytes");
}
END_TEST

START_TEST (test_reject_genesis_nonce_size)
{
    char errbuf[GKX_ERRBUF_BYTES];
    s_genesis_spec_t spec = s_genesis_spec ();
    spec.nonce_len = GKX_NONCE_BYTES - 1;
    ck_assert_rc (s_genesis_decode (&spec, s_advertiser, s_pid, errbuf), GKX_EBODY);
    ck_assert_str_eq (errbuf, "entry.body.nonce: expected bin of 16 bytes");
}
END_TEST

START_TEST (test_reject_genesis_offer_not_map)
{
    char errbuf[GKX_ERRBUF_BYTES];
    s_genesis_spec_t spec = s_genesis_spec ();
    spec.offer_not_map = 1;
    ck_assert_rc (s_genesis_decode (&spec, s_advertiser, s_pid, errbuf), GKX_EBODY);
    ck_assert_str_eq (errbuf, "entry.body.offer/policy: expected maps");
}
END_TEST

/* The publisher cannot write a genesis naming the advertiser. */
START_TEST (test_reject_genesis_advertiser_not_author)
{
    char errbuf[GKX_ERRBUF_BYTES];
    s_genesis_spec_t spec = s_genesis_spec ();
    ck_assert_rc (s_genesis_decode (&spec, s_publisher, s_pid, errbuf), GKX_EBODY);
    ck_assert_str_eq (errbuf, "entry.body.advertiser: must be the genesis author");
}
END_TEST

/* A partnership of a node with itself, even with its pid derived right. */
START_TEST (test_reject_genesis_publisher_is_advertiser)
{
    const uint8_t *a = gkx_identity_id (s_advertiser);
    uint8_t pid[GKX_ID_BYTES];
    gkx_partnership_id (pid, a, a, s_nonce);
    char errbuf[GKX_ERRBUF_BYTES];
    s_genesis_spec_t spec = s_genesis_spec ();
    spec.publisher = a;
    ck_assert_rc (s_genesis_decode (&spec, s_advertiser, pid, errbuf), GKX_EBODY);
    ck_assert_str_eq (errbuf, "entry.body.publisher: must differ from the advertiser");
}
END_TEST

/* The pid must derive from these members and this nonce. */
START_TEST (test_reject_genesis_pid_not_derived)
{
    char errbuf[GKX_ERRBUF_BYTES];
    s_genesis_spec_t spec = s_genesis_spec ();
    uint8_t pid[GKX_ID_BYTES];
    uint8_t other_nonce[GKX_NONCE_BYTES] = {0};
    gkx_partnership_id (pid, gkx_identity_id (s_advertiser), gkx_identity_id (s_publisher),
                        other_nonce);
    ck_assert_rc (s_genesis_decode (&spec, s_advertiser, pid, errbuf), GKX_EBODY);
    ck_assert_str_eq (errbuf, "entry.pid: does not derive from the genesis members and nonce");

    gkx_partnership_id (pid, gkx_identity_id (s_publisher), gkx_identity_id (s_advertiser),
                        s_nonce);
    ck_assert_rc (s_genesis_decode (&spec, s_advertiser, pid, errbuf), GKX_EBODY);
    ck_assert_str_eq (errbuf, "entry.pid: does not derive from the genesis members and nonce");
}
END_TEST

int
main (void)
{
    Suite *s = suite_create ("entry");
    TCase *tc = tcase_create ("entry");
    tcase_add_checked_fixture (tc, s_setup, s_teardown);
    tcase_add_test (tc, test_sign_decode_round_trip);
    tcase_add_test (tc, test_peek_kind);
    tcase_add_test (tc, test_hash_is_blake2b_of_bytes);
    tcase_add_test (tc, test_signature_covers_prefix_and_stored_bytes);
    tcase_add_test (tc, test_craft_reproduces_signed_bytes);
    tcase_add_test (tc, test_verify_rejects_wrong_key);
    tcase_add_test (tc, test_verify_rejects_other_domain);
    tcase_add_test (tc, test_flipped_byte_always_detected);
    tcase_add_test (tc, test_verify_batch_one_signature_per_run);
    tcase_add_test (tc, test_verify_batch_bad_signature_refuses_only_its_entry);
    tcase_add_test (tc, test_dup);
    tcase_add_test (tc, test_destroy_accepts_null);
    tcase_add_test (tc, test_genesis_members);
    tcase_add_test (tc, test_partnership_id);
    tcase_add_test (tc, test_genesis_body_encode);
    tcase_add_test (tc, test_sign_rejects_bad_draft);
    tcase_add_test (tc, test_sign_size_limit);
    tcase_add_test (tc, test_reject_oversize);
    tcase_add_test (tc, test_reject_trailing_bytes);
    tcase_add_test (tc, test_reject_wrong_array_size);
    tcase_add_test (tc, test_reject_unknown_version);
    tcase_add_test (tc, test_reject_uint_field_of_wrong_type);
    tcase_add_test (tc, test_reject_bin_field_of_wrong_type);
    tcase_add_test (tc, test_reject_unknown_kind_0);
    tcase_add_test (tc, test_reject_unknown_kind_9);
    tcase_add_test (tc, test_reject_pid_31_bytes);
    tcase_add_test (tc, test_reject_pid_33_bytes);
    tcase_add_test (tc, test_reject_signature_wrong_size);
    tcase_add_test (tc, test_reject_seq_0);
    tcase_add_test (tc, test_reject_prev_hash_at_seq_1);
    tcase_add_test (tc, test_reject_seen_hash_mismatch);
    tcase_add_test (tc, test_reject_body_not_a_map);
    tcase_add_test (tc, test_reject_codec_rules_in_body);
    tcase_add_test (tc, test_reject_ack_with_body);
    tcase_add_test (tc, test_reject_ack_without_seen);
    tcase_add_test (tc, test_reject_chain_start_without_cross_link);
    tcase_add_test (tc, test_reject_genesis_position);
    tcase_add_test (tc, test_genesis_spec_is_valid);
    tcase_add_test (tc, test_reject_genesis_missing_key);
    tcase_add_test (tc, test_reject_genesis_unknown_key);
    tcase_add_test (tc, test_reject_genesis_member_size);
    tcase_add_test (tc, test_reject_genesis_nonce_size);
    tcase_add_test (tc, test_reject_genesis_offer_not_map);
    tcase_add_test (tc, test_reject_genesis_advertiser_not_author);
    tcase_add_test (tc, test_reject_genesis_publisher_is_advertiser);
    tcase_add_test (tc, test_reject_genesis_pid_not_derived);
    suite_add_tcase (s, tc);
    return gkx_test_run (s);
}
