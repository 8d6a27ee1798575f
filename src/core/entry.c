/*  entry - one signed entry of a partnership's log.
    Part of gokart-exchange; MIT licence.

    An entry keeps its encoded bytes and offsets into them, so what is
    verified, hashed, stored and sent is always the same byte string. Every
    accessor reads fields decoded once at construction.
*/
#include <gkx/alloc.h>
#include <gkx/codec.h>
#include <gkx/entry.h>

#include <assert.h>
#include <stdbool.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

/* Number of fields in the entry array. */
#define S_FIELDS 11

/* A decoded (or freshly signed) entry. */
struct gkx_entry {
    uint8_t *bytes;                     /* the canonical encoding */
    size_t len;
    uint8_t hash[GKX_HASH_BYTES];       /* BLAKE2b-256 of bytes */
    uint8_t pid[GKX_ID_BYTES];
    uint8_t author[GKX_ID_BYTES];
    uint64_t seq;
    uint8_t prev_hash[GKX_HASH_BYTES];
    uint64_t seen_seq;
    uint8_t seen_hash[GKX_HASH_BYTES];
    uint64_t hlc;
    int kind;
    size_t body_offset;                 /* body's bytes within bytes */
    size_t body_len;
    uint8_t signature[GKX_SIGNATURE_BYTES];
};

const uint8_t gkx_ack_body[1] = {0x80};

/* Zero bytes, to compare hashes and ids against "none". */
static const uint8_t s_zero[GKX_HASH_BYTES];

void
gkx_partnership_id (uint8_t pid[GKX_ID_BYTES], const uint8_t advertiser[GKX_ID_BYTES],
                    const uint8_t publisher[GKX_ID_BYTES],
                    const uint8_t nonce[GKX_NONCE_BYTES])
{
    crypto_generichash_state state;
    crypto_generichash_init (&state, NULL, 0, GKX_ID_BYTES);
    crypto_generichash_update (&state, (const uint8_t *) GKX_PID_PREFIX,
                               strlen (GKX_PID_PREFIX));
    crypto_generichash_update (&state, advertiser, GKX_ID_BYTES);
    crypto_generichash_update (&state, publisher, GKX_ID_BYTES);
    crypto_generichash_update (&state, nonce, GKX_NONCE_BYTES);
    crypto_generichash_final (&state, pid, GKX_ID_BYTES);
}

void
gkx_genesis_body_encode (msgpack_sbuffer *sbuf, const uint8_t advertiser[GKX_ID_BYTES],
                         const uint8_t publisher[GKX_ID_BYTES],
                         const uint8_t nonce[GKX_NONCE_BYTES], const uint8_t *offer,
                         size_t offer_len, const uint8_t *policy, size_t policy_len)
{
    msgpack_packer pk;
    msgpack_packer_init (&pk, sbuf, msgpack_sbuffer_write);
    msgpack_pack_map (&pk, 5);
    gkx_codec_pack_cstr (&pk, "advertiser");
    gkx_codec_pack_bin (&pk, advertiser, GKX_ID_BYTES);
    gkx_codec_pack_cstr (&pk, "nonce");
    gkx_codec_pack_bin (&pk, nonce, GKX_NONCE_BYTES);
    gkx_codec_pack_cstr (&pk, "offer");
    if (offer) {
        msgpack_sbuffer_write (sbuf, (const char *) offer, offer_len);
    }
    else {
        msgpack_pack_map (&pk, 0);
    }
    gkx_codec_pack_cstr (&pk, "policy");
    if (policy) {
        msgpack_sbuffer_write (sbuf, (const char *) policy, policy_len);
    }
    else {
        msgpack_pack_map (&pk, 0);
    }
    gkx_codec_pack_cstr (&pk, "publisher");
    gkx_codec_pack_bin (&pk, publisher, GKX_ID_BYTES);
}

/* Reads a bin field of exactly size bytes. */
static int
s_field_bin (const msgpack_object *obj, const char *name, uint8_t *out, size_t size,
             char *errbuf)
{
    if (obj->type != MSGPACK_OBJECT_BIN) {
        return gkx_fail (errbuf, GKX_ETYPE, "entry.%s: expected bin of %zu bytes", name, size);
    }
    if (obj->via.bin.size != size) {
        return gkx_fail (errbuf, obj->via.bin.size > size ? GKX_ETOOBIG : GKX_ETYPE,
                         "entry.%s: %u bytes, expected %zu", name, obj->via.bin.size, size);
    }
    memcpy (out, obj->via.bin.ptr, size);
    return GKX_OK;
}

/* Reads an unsigned integer field. */
static int
s_field_uint (const msgpack_object *obj, const char *name, uint64_t *out, char *errbuf)
{
    if (obj->type != MSGPACK_OBJECT_POSITIVE_INTEGER) {
        return gkx_fail (errbuf, GKX_ETYPE, "entry.%s: expected an unsigned integer", name);
    }
    *out = obj->via.u64;
    return GKX_OK;
}

/* Checks a genesis entry: position, members, nonce and the derived pid. */
static int
s_check_genesis (const gkx_entry_t *self, const msgpack_object *body, char *errbuf)
{
    uint8_t advertiser[GKX_ID_BYTES];
    uint8_t publisher[GKX_ID_BYTES];
    uint8_t nonce[GKX_NONCE_BYTES];
    uint8_t pid[GKX_ID_BYTES];
    static const char *const keys[] = {"advertiser", "nonce", "offer", "policy", "publisher"};

    if (self->seq != 1 || self->seen_seq != 0) {
        return gkx_fail (errbuf, GKX_EBODY, "entry: a genesis entry must have seq 1 and seen_seq 0");
    }
    if (body->via.map.size != 5) {
        return gkx_fail (errbuf, GKX_EBODY, "entry.body: a genesis body has exactly the keys "
                         "advertiser, nonce, offer, policy, publisher");
    }
    for (size_t i = 0; i < 5; i++) {
        const msgpack_object *key = &body->via.map.ptr[i].key;
        if (key->via.str.size != strlen (keys[i])
            || memcmp (key->via.str.ptr, keys[i], key->via.str.size) != 0) {
            return gkx_fail (errbuf, GKX_EBODY, "entry.body: a genesis body has exactly the keys "
                             "advertiser, nonce, offer, policy, publisher");
        }
    }
    const msgpack_object_kv *kv = body->via.map.ptr;
    if (kv[0].val.type != MSGPACK_OBJECT_BIN || kv[0].val.via.bin.size != GKX_ID_BYTES
        || kv[4].val.type != MSGPACK_OBJECT_BIN || kv[4].val.via.bin.size != GKX_ID_BYTES) {
        return gkx_fail (errbuf, GKX_EBODY, "entry.body.advertiser/publisher: expected bin of %d bytes",
                         GKX_ID_BYTES);
    }
    if (kv[1].val.type != MSGPACK_OBJECT_BIN || kv[1].val.via.bin.size != GKX_NONCE_BYTES) {
        return gkx_fail (errbuf, GKX_EBODY, "entry.body.nonce: expected bin of %d bytes",
                         GKX_NONCE_BYTES);
    }
    if (kv[2].val.type != MSGPACK_OBJECT_MAP || kv[3].val.type != MSGPACK_OBJECT_MAP) {
        return gkx_fail (errbuf, GKX_EBODY, "entry.body.offer/policy: expected maps");
    }
    memcpy (advertiser, kv[0].val.via.bin.ptr, GKX_ID_BYTES);
    memcpy (nonce, kv[1].val.via.bin.ptr, GKX_NONCE_BYTES);
    memcpy (publisher, kv[4].val.via.bin.ptr, GKX_ID_BYTES);
    if (memcmp (advertiser, self->author, GKX_ID_BYTES) != 0) {
        return gkx_fail (errbuf, GKX_EBODY, "entry.body.advertiser: must be the genesis author");
    }
    if (memcmp (advertiser, publisher, GKX_ID_BYTES) == 0) {
        return gkx_fail (errbuf, GKX_EBODY, "entry.body.publisher: must differ from the advertiser");
    }
    gkx_partnership_id (pid, advertiser, publisher, nonce);
    if (memcmp (pid, self->pid, GKX_ID_BYTES) != 0) {
        return gkx_fail (errbuf, GKX_EBODY,
                         "entry.pid: does not derive from the genesis members and nonce");
    }
    return GKX_OK;
}

/* Checks what the entry layer knows about bodies and chain positions. */
static int
s_check_semantics (const gkx_entry_t *self, const msgpack_object *body, char *errbuf)
{
    if (self->seq == 0) {
        return gkx_fail (errbuf, GKX_EINVAL, "entry.seq: must be at least 1");
    }
    if (self->seq == 1 && memcmp (self->prev_hash, s_zero, GKX_HASH_BYTES) != 0) {
        return gkx_fail (errbuf, GKX_EINVAL, "entry.prev_hash: must be zeros at seq 1");
    }
    if ((self->seen_seq == 0) != (memcmp (self->seen_hash, s_zero, GKX_HASH_BYTES) == 0)) {
        return gkx_fail (errbuf, GKX_EINVAL,
                         "entry.seen_hash: must be zeros exactly when seen_seq is 0");
    }
    if (body->type != MSGPACK_OBJECT_MAP) {
        return gkx_fail (errbuf, GKX_EBODY, "entry.body: expected a map");
    }
    if (self->kind == GKX_KIND_GENESIS) {
        return s_check_genesis (self, body, errbuf);
    }
    if (self->seq == 1 && self->seen_seq == 0) {
        return gkx_fail (errbuf, GKX_EBODY,
                         "entry: only a genesis entry may start a chain without a cross-link");
    }
    if (self->kind == GKX_KIND_ACK && body->via.map.size != 0) {
        return gkx_fail (errbuf, GKX_EBODY, "entry.body: an ack body is an empty map");
    }
    if (self->kind == GKX_KIND_ACK && self->seen_seq == 0) {
        return gkx_fail (errbuf, GKX_EBODY, "entry.seen_seq: an ack must acknowledge an entry");
    }
    return GKX_OK;
}

/* Fills self's fields from the decoded array; bytes and len are set. */
static int
s_read_fields (gkx_entry_t *self, const msgpack_object *root, msgpack_object *body_out,
               char *errbuf)
{
    static const char *const names[S_FIELDS] = {
        "version", "pid", "author", "seq", "prev_hash", "seen_seq",
        "seen_hash", "hlc", "kind", "body", "signature"};
    if (root->type != MSGPACK_OBJECT_ARRAY || root->via.array.size != S_FIELDS) {
        return gkx_fail (errbuf, GKX_ETYPE, "entry: expected an array of %d fields", S_FIELDS);
    }
    const msgpack_object *f = root->via.array.ptr;
    uint64_t version = 0;
    uint64_t kind = 0;
    int rc = s_field_uint (&f[0], names[0], &version, errbuf);
    if (rc != GKX_OK) {
        return rc;
    }
    if (version != GKX_ENTRY_VERSION) {
        return gkx_fail (errbuf, GKX_EVERSION, "entry.version: %llu is not a known version (%d)",
                         (unsigned long long) version, GKX_ENTRY_VERSION);
    }
    rc = s_field_bin (&f[1], names[1], self->pid, GKX_ID_BYTES, errbuf);
    if (rc == GKX_OK) {
        rc = s_field_bin (&f[2], names[2], self->author, GKX_ID_BYTES, errbuf);
    }
    if (rc == GKX_OK) {
        rc = s_field_uint (&f[3], names[3], &self->seq, errbuf);
    }
    if (rc == GKX_OK) {
        rc = s_field_bin (&f[4], names[4], self->prev_hash, GKX_HASH_BYTES, errbuf);
    }
    if (rc == GKX_OK) {
        rc = s_field_uint (&f[5], names[5], &self->seen_seq, errbuf);
    }
    if (rc == GKX_OK) {
        rc = s_field_bin (&f[6], names[6], self->seen_hash, GKX_HASH_BYTES, errbuf);
    }
    if (rc == GKX_OK) {
        rc = s_field_uint (&f[7], names[7], &self->hlc, errbuf);
    }
    if (rc == GKX_OK) {
        rc = s_field_uint (&f[8], names[8], &kind, errbuf);
    }
    if (rc == GKX_OK) {
        rc = s_field_bin (&f[10], names[10], self->signature, GKX_SIGNATURE_BYTES, errbuf);
    }
    if (rc != GKX_OK) {
        return rc;
    }
    if (kind < GKX_KIND_MIN || kind > GKX_KIND_MAX) {
        return gkx_fail (errbuf, GKX_EKIND, "entry.kind: %llu is not a known kind",
                         (unsigned long long) kind);
    }
    self->kind = (int) kind;
    *body_out = f[9];
    return GKX_OK;
}

/* Finds the body's byte range: it ends where the signature field begins,
   and starts after the nine fields before it, which follow the array's
   one-byte header (the encoding is canonical and checked). */
static void
s_locate_body (gkx_entry_t *self)
{
    size_t pos = 1;
    for (int i = 0; i < 9; i++) {
        size_t value_len = 0;
        int rc = gkx_codec_value_length (self->bytes + pos, self->len - pos, &value_len,
                                         "entry", NULL);
        assert (rc == GKX_OK);
        (void) rc;
        pos += value_len;
    }
    self->body_offset = pos;
    self->body_len = self->len - GKX_ENTRY_SIGNATURE_FIELD_BYTES - pos;
}

/* Decodes bytes into a new entry, taking ownership of bytes. */
static int
s_decode_owned (gkx_entry_t **self_p, uint8_t *bytes, size_t len, char *errbuf)
{
    gkx_entry_t *self = gkx_zalloc (sizeof *self);
    self->bytes = bytes;
    self->len = len;
    msgpack_zone zone;
    msgpack_zone_init (&zone, 4096);
    msgpack_object root;
    msgpack_object body;
    memset (&body, 0, sizeof body);
    int rc = gkx_codec_decode (&root, &zone, bytes, len, "entry", errbuf);
    if (rc == GKX_OK) {
        rc = s_read_fields (self, &root, &body, errbuf);
    }
    if (rc == GKX_OK) {
        rc = s_check_semantics (self, &body, errbuf);
    }
    if (rc == GKX_OK) {
        s_locate_body (self);
        crypto_generichash (self->hash, GKX_HASH_BYTES, bytes, len, NULL, 0);
        *self_p = self;
    }
    else {
        gkx_entry_destroy (&self);
    }
    msgpack_zone_destroy (&zone);
    return rc;
}

int
gkx_entry_decode (gkx_entry_t **self_p, const uint8_t *buf, size_t len, char *errbuf)
{
    assert (self_p);
    if (len > GKX_ENTRY_MAX_BYTES) {
        return gkx_fail (errbuf, GKX_ETOOBIG, "entry: %zu bytes exceeds %d", len,
                         GKX_ENTRY_MAX_BYTES);
    }
    return s_decode_owned (self_p, gkx_memdup (buf, len), len, errbuf);
}

int
gkx_entry_sign (gkx_entry_t **self_p, const gkx_entry_draft_t *draft,
                const gkx_identity_t *identity, char *errbuf)
{
    assert (self_p && draft && identity);
    assert (memcmp (gkx_identity_id (identity), draft->author, GKX_ID_BYTES) == 0);
    msgpack_sbuffer sbuf;
    msgpack_packer pk;
    msgpack_sbuffer_init (&sbuf);
    msgpack_packer_init (&pk, &sbuf, msgpack_sbuffer_write);
    msgpack_pack_array (&pk, S_FIELDS);
    msgpack_pack_uint64 (&pk, GKX_ENTRY_VERSION);
    gkx_codec_pack_bin (&pk, draft->pid, GKX_ID_BYTES);
    gkx_codec_pack_bin (&pk, draft->author, GKX_ID_BYTES);
    msgpack_pack_uint64 (&pk, draft->seq);
    gkx_codec_pack_bin (&pk, draft->prev_hash, GKX_HASH_BYTES);
    msgpack_pack_uint64 (&pk, draft->seen_seq);
    gkx_codec_pack_bin (&pk, draft->seen_hash, GKX_HASH_BYTES);
    msgpack_pack_uint64 (&pk, draft->hlc);
    msgpack_pack_uint64 (&pk, (uint64_t) (draft->kind < 0 ? 0 : draft->kind));
    msgpack_sbuffer_write (&sbuf, (const char *) draft->body, draft->body_len);
    uint8_t signature[GKX_SIGNATURE_BYTES];
    gkx_identity_sign (identity, signature, GKX_ENTRY_SIGN_PREFIX,
                       (const uint8_t *) sbuf.data, sbuf.size);
    gkx_codec_pack_bin (&pk, signature, GKX_SIGNATURE_BYTES);
    size_t len = sbuf.size;
    int rc;
    if (len > GKX_ENTRY_MAX_BYTES) {
        rc = gkx_fail (errbuf, GKX_ETOOBIG, "entry: %zu bytes exceeds %d", len,
                       GKX_ENTRY_MAX_BYTES);
        msgpack_sbuffer_destroy (&sbuf);
        return rc;
    }
    /* Decoding what we wrote applies every rule a receiver applies, so a
       node can never sign an entry its counterparty would refuse. */
    uint8_t *bytes = (uint8_t *) msgpack_sbuffer_release (&sbuf);
    rc = s_decode_owned (self_p, bytes, len, errbuf);
    msgpack_sbuffer_destroy (&sbuf);
    return rc;
}

int
gkx_entry_verify (const gkx_entry_t *self)
{
    return gkx_signature_verify (self->signature, GKX_ENTRY_SIGN_PREFIX, self->bytes,
                                 self->len - GKX_ENTRY_SIGNATURE_FIELD_BYTES, self->author);
}

/* Whether next is the entry after prev in the same author's chain. */
static bool
s_is_next (const gkx_entry_t *prev, const gkx_entry_t *next)
{
    return memcmp (prev->pid, next->pid, GKX_ID_BYTES) == 0
           && memcmp (prev->author, next->author, GKX_ID_BYTES) == 0
           && next->seq == prev->seq + 1
           && memcmp (next->prev_hash, prev->hash, GKX_HASH_BYTES) == 0;
}

size_t
gkx_entry_verify_batch (gkx_entry_t *const *entries, size_t count, int *rcs)
{
    assert ((entries && rcs) || count == 0);
    size_t checked = 0;
    size_t i = 0;
    while (i < count) {
        if (!entries[i]) {
            i++;
            continue;
        }
        size_t end = i + 1;   /* one past the run's last entry */
        while (end < count && entries[end] && s_is_next (entries[end - 1], entries[end])) {
            end++;
        }
        checked++;
        int rc = gkx_entry_verify (entries[end - 1]);
        rcs[end - 1] = rc;
        for (size_t k = i; k + 1 < end; k++) {
            if (rc == GKX_OK) {
                rcs[k] = GKX_OK;
            }
            else {
                rcs[k] = gkx_entry_verify (entries[k]);
                checked++;
            }
        }
        i = end;
    }
    return checked;
}

gkx_entry_t *
gkx_entry_dup (const gkx_entry_t *self)
{
    gkx_entry_t *copy = gkx_memdup (self, sizeof *self);
    copy->bytes = gkx_memdup (self->bytes, self->len);
    return copy;
}

void
gkx_entry_destroy (gkx_entry_t **self_p)
{
    if (!self_p || !*self_p) {
        return;
    }
    gkx_free ((*self_p)->bytes);
    gkx_free (*self_p);
    *self_p = NULL;
}

int
gkx_genesis_members (const gkx_entry_t *self, uint8_t advertiser[GKX_ID_BYTES],
                     uint8_t publisher[GKX_ID_BYTES])
{
    if (self->kind != GKX_KIND_GENESIS) {
        return GKX_EKIND;
    }
    msgpack_zone zone;
    msgpack_zone_init (&zone, 1024);
    msgpack_object body;
    size_t off = 0;
    msgpack_unpack ((const char *) self->bytes + self->body_offset, self->body_len, &off,
                    &zone, &body);
    memcpy (advertiser, gkx_codec_map_get (&body, "advertiser")->via.bin.ptr, GKX_ID_BYTES);
    memcpy (publisher, gkx_codec_map_get (&body, "publisher")->via.bin.ptr, GKX_ID_BYTES);
    msgpack_zone_destroy (&zone);
    return GKX_OK;
}

int
gkx_genesis_values (const gkx_entry_t *self, msgpack_sbuffer *offer, msgpack_sbuffer *policy)
{
    if (self->kind != GKX_KIND_GENESIS) {
        return GKX_EKIND;
    }
    msgpack_zone zone;
    msgpack_zone_init (&zone, 1024);
    msgpack_object body;
    size_t off = 0;
    msgpack_unpack ((const char *) self->bytes + self->body_offset, self->body_len, &off,
                    &zone, &body);
    /* The body is canonical, so packing a value again gives its exact bytes. */
    msgpack_packer pk;
    msgpack_packer_init (&pk, offer, msgpack_sbuffer_write);
    msgpack_pack_object (&pk, *gkx_codec_map_get (&body, "offer"));
    msgpack_packer_init (&pk, policy, msgpack_sbuffer_write);
    msgpack_pack_object (&pk, *gkx_codec_map_get (&body, "policy"));
    msgpack_zone_destroy (&zone);
    return GKX_OK;
}

const uint8_t *
gkx_entry_bytes (const gkx_entry_t *self, size_t *len_p)
{
    *len_p = self->len;
    return self->bytes;
}

const uint8_t *
gkx_entry_hash (const gkx_entry_t *self)
{
    return self->hash;
}

const uint8_t *
gkx_entry_pid (const gkx_entry_t *self)
{
    return self->pid;
}

const uint8_t *
gkx_entry_author (const gkx_entry_t *self)
{
    return self->author;
}

uint64_t
gkx_entry_seq (const gkx_entry_t *self)
{
    return self->seq;
}

const uint8_t *
gkx_entry_prev_hash (const gkx_entry_t *self)
{
    return self->prev_hash;
}

uint64_t
gkx_entry_seen_seq (const gkx_entry_t *self)
{
    return self->seen_seq;
}

const uint8_t *
gkx_entry_seen_hash (const gkx_entry_t *self)
{
    return self->seen_hash;
}

uint64_t
gkx_entry_hlc (const gkx_entry_t *self)
{
    return self->hlc;
}

int
gkx_entry_kind (const gkx_entry_t *self)
{
    return self->kind;
}

/* Index of the kind in the entry array. */
#define S_KIND_FIELD 8

int
gkx_entry_peek_kind (const uint8_t *buf, size_t len, int *kind_p)
{
    assert (kind_p);
    if (len < 1 || buf[0] != (0x90 | S_FIELDS)) {
        return GKX_EDECODE;
    }
    size_t pos = 1;
    for (int field = 0; field < S_KIND_FIELD; field++) {
        size_t field_len;
        if (gkx_codec_value_length (buf + pos, len - pos, &field_len, "entry", NULL) != GKX_OK) {
            return GKX_EDECODE;
        }
        pos += field_len;
    }
    /* A decodable entry's kind is a small uint, so a positive fixint. */
    if (pos >= len || buf[pos] > 0x7f) {
        return GKX_EDECODE;
    }
    *kind_p = buf[pos];
    return GKX_OK;
}

const uint8_t *
gkx_entry_body (const gkx_entry_t *self, size_t *len_p)
{
    *len_p = self->body_len;
    return self->bytes + self->body_offset;
}

const uint8_t *
gkx_entry_signature (const gkx_entry_t *self)
{
    return self->signature;
}
