/*  entry - one signed entry of a partnership's log.
    Part of gokart-exchange; MIT licence.

    An entry is the canonical msgpack array
        [version, pid, author, seq, prev_hash, seen_seq, seen_hash, hlc, kind,
         body, signature]
    (docs/log-format.md). The signature is Ed25519 by the author over
    "GKX-ENTRY-V1" || the entry's bytes up to the signature field, that is the
    array header and the first ten fields exactly as stored; the entry hash is
    BLAKE2b-256 of all the bytes. Nothing is re-encoded to verify or to hash.

    Decoding is strict (codec.h) and checks each field's type and size, the
    kind, and what the entry layer knows of bodies: the genesis entry's
    members, nonce and partnership id, the ack's empty body. Whether an entry
    fits a chain (seq, prev_hash, cross-links) is the store's business.
*/
#ifndef GKX_ENTRY_H_INCLUDED
#define GKX_ENTRY_H_INCLUDED

#include <gkx/error.h>
#include <gkx/identity.h>
#include <gkx/kind.h>

#include <msgpack.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The entry format version this library writes and reads. */
#define GKX_ENTRY_VERSION 1
/* Domain-separation prefix of entry signatures. */
#define GKX_ENTRY_SIGN_PREFIX "GKX-ENTRY-V1"
/* Domain-separation prefix of the partnership id derivation. */
#define GKX_PID_PREFIX "GKX-PID-V1"
/* Largest encoded entry, in bytes. */
#define GKX_ENTRY_MAX_BYTES 65536
/* Bytes of the random nonce in a genesis entry. */
#define GKX_NONCE_BYTES 16
/* Bytes of an entry hash. */
#define GKX_HASH_BYTES 32
/* Bytes the signature field takes at the end of an entry (bin8 header). */
#define GKX_ENTRY_SIGNATURE_FIELD_BYTES (2 + GKX_SIGNATURE_BYTES)

/* The fields of an entry before it is signed. */
typedef struct {
    uint8_t pid[GKX_ID_BYTES];          /* partnership id */
    uint8_t author[GKX_ID_BYTES];       /* author's node id */
    uint64_t seq;                       /* 1-based position in the author's chain */
    uint8_t prev_hash[GKX_HASH_BYTES];  /* hash of entry seq-1; zeros for seq 1 */
    uint64_t seen_seq;                  /* newest counterparty entry held; 0 for none */
    uint8_t seen_hash[GKX_HASH_BYTES];  /* its hash; zeros for none */
    uint64_t hlc;                       /* hybrid logical clock */
    int kind;                           /* GKX_KIND_* */
    const uint8_t *body;                /* canonical msgpack map; borrowed */
    size_t body_len;
} gkx_entry_draft_t;

typedef struct gkx_entry gkx_entry_t;

/* Encodes and signs draft with identity (which must be the draft's author).
   Returns GKX_OK, or the entry layer's rejection of the draft (bad body,
   kind, size) with errbuf naming it. The entry is the caller's. */
GKX_NODISCARD int gkx_entry_sign (gkx_entry_t **self_p, const gkx_entry_draft_t *draft,
                                  const gkx_identity_t *identity, char *errbuf);

/* Decodes an entry strictly; does not check the signature. Returns GKX_OK
   or GKX_EDECODE, GKX_ENONCANON, GKX_ETRAILING, GKX_ETOOBIG, GKX_EUTF8,
   GKX_EFLOAT, GKX_EMAPKEY, GKX_ETYPE, GKX_EVERSION, GKX_EKIND, GKX_EBODY,
   GKX_EINVAL, with errbuf naming the field. The entry is the caller's and
   holds its own copy of the bytes. */
GKX_NODISCARD int gkx_entry_decode (gkx_entry_t **self_p, const uint8_t *buf, size_t len,
                                    char *errbuf);

/* Checks the author's signature. Returns GKX_OK or GKX_ESIGNATURE. */
GKX_NODISCARD int gkx_entry_verify (const gkx_entry_t *self);

/* Checks the signatures of entries received together, in their order, and
   sets rcs[i] to GKX_OK or GKX_ESIGNATURE for each entry that is not NULL
   (rcs[i] is left alone for a NULL entry). A run in which each entry is the
   next of the same author's chain (same partnership and author, seq one more,
   prev_hash the hash of the entry before) is authentic when the signature of
   its last entry verifies: that signature covers the last entry's prev_hash,
   which fixes every byte of the entry before it, signature included, and so
   on back to the run's first entry (docs/protocol.md, "Verifying a batch").
   Only when a run's last signature fails is each of its entries checked on
   its own, so one bad entry refuses no good one. Returns the number of
   signatures checked. */
size_t gkx_entry_verify_batch (gkx_entry_t *const *entries, size_t count, int *rcs);

/* Returns a new copy of the entry. */
gkx_entry_t *gkx_entry_dup (const gkx_entry_t *self);

/* Frees; accepts NULL; sets *self_p to NULL. */
void gkx_entry_destroy (gkx_entry_t **self_p);

/* The encoded entry; borrowed for the entry's life. */
const uint8_t *gkx_entry_bytes (const gkx_entry_t *self, size_t *len_p);

/* The entry hash; borrowed for the entry's life. */
const uint8_t *gkx_entry_hash (const gkx_entry_t *self);

/* Field accessors; pointers are borrowed for the entry's life. */
const uint8_t *gkx_entry_pid (const gkx_entry_t *self);
const uint8_t *gkx_entry_author (const gkx_entry_t *self);
uint64_t gkx_entry_seq (const gkx_entry_t *self);
const uint8_t *gkx_entry_prev_hash (const gkx_entry_t *self);
uint64_t gkx_entry_seen_seq (const gkx_entry_t *self);
const uint8_t *gkx_entry_seen_hash (const gkx_entry_t *self);
uint64_t gkx_entry_hlc (const gkx_entry_t *self);
int gkx_entry_kind (const gkx_entry_t *self);
const uint8_t *gkx_entry_body (const gkx_entry_t *self, size_t *len_p);
const uint8_t *gkx_entry_signature (const gkx_entry_t *self);

/* Reads the kind of the entry encoded in buf (len bytes) without decoding
   or checking it: for walks over entries already checked when stored, which
   want only some kinds. Returns GKX_OK, or GKX_EDECODE when buf does not
   have an entry's shape as far as the kind (decode it to learn why). */
GKX_NODISCARD int gkx_entry_peek_kind (const uint8_t *buf, size_t len, int *kind_p);

/* Derives a partnership id: BLAKE2b-256 of GKX_PID_PREFIX || advertiser ||
   publisher || nonce. */
void gkx_partnership_id (uint8_t pid[GKX_ID_BYTES], const uint8_t advertiser[GKX_ID_BYTES],
                         const uint8_t publisher[GKX_ID_BYTES],
                         const uint8_t nonce[GKX_NONCE_BYTES]);

/* Encodes a genesis body {advertiser, nonce, offer, policy, publisher} into
   sbuf (initialised by the caller). offer and policy are canonical msgpack
   maps (NULL for an empty map). */
void gkx_genesis_body_encode (msgpack_sbuffer *sbuf, const uint8_t advertiser[GKX_ID_BYTES],
                              const uint8_t publisher[GKX_ID_BYTES],
                              const uint8_t nonce[GKX_NONCE_BYTES], const uint8_t *offer,
                              size_t offer_len, const uint8_t *policy, size_t policy_len);

/* For a genesis entry, copies out the members (advertiser, publisher).
   Returns GKX_OK or GKX_EKIND when the entry is not a genesis entry. */
int gkx_genesis_members (const gkx_entry_t *self, uint8_t advertiser[GKX_ID_BYTES],
                         uint8_t publisher[GKX_ID_BYTES]);

/* For a genesis entry, appends the canonical bytes of its "offer" and
   "policy" values to the two buffers (initialised by the caller). Returns
   GKX_OK or GKX_EKIND when the entry is not a genesis entry. */
int gkx_genesis_values (const gkx_entry_t *self, msgpack_sbuffer *offer,
                        msgpack_sbuffer *policy);

/* The body of an ack entry: an empty map. */
extern const uint8_t gkx_ack_body[1];

#ifdef __cplusplus
}
#endif

#endif
