/*  merge - the deterministic merge of a partnership's offer edits.
    Part of gokart-exchange; MIT licence.

    A merge state holds what the genesis fixed (the two members, the initial
    offer, the editing policy) and every edit, propose and answer entry of
    the partnership. The offer is the fold of their operations in the
    canonical order (hlc, author id, seq, entry hash, operation index): every
    scalar field is a last-writer-wins register, every set element and keyed
    entry has its own last-writer-wins presence, an accepted proposal's
    operations take effect at the accepting entry's key, and an operation the
    policy or the schema forbids is kept in the change log as rejected, never
    dropped. Because the result depends only on the set of entries, two
    members that hold the same entries, received in any order and with any
    duplicates, get byte-identical offers, digests, change logs and
    serialised states. Nothing here does I/O.
*/
#ifndef GKX_MERGE_H_INCLUDED
#define GKX_MERGE_H_INCLUDED

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include <gkx/error.h>
#include <gkx/offer.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Size of a member id (Ed25519 public key) and of an entry hash. */
#define GKX_MERGE_ID_BYTES 32
#define GKX_MERGE_HASH_BYTES 32

/* Format version written by gkx_merge_encode. */
#define GKX_MERGE_FORMAT 1

/* What an answer entry says about a proposal. */
typedef enum {
    GKX_MERGE_ACCEPT = 1,   /* the other side accepts: the ops take effect */
    GKX_MERGE_DECLINE = 2,  /* the other side declines: nothing changes */
    GKX_MERGE_WITHDRAW = 3, /* the proposer withdraws: nothing changes */
} gkx_merge_answer_t;

/* A merge state. */
typedef struct gkx_merge gkx_merge_t;

/* One entry as the merge sees it; every pointer is borrowed for the call. */
typedef struct {
    int kind;              /* a gkx_kind_t */
    int role;              /* the author's gkx_role_t */
    const uint8_t *author; /* GKX_MERGE_ID_BYTES: the author's id */
    uint64_t seq;          /* the author's chain position, from 1 */
    uint64_t seen_seq;     /* the entry's seen_seq: newest counterparty seq held */
    uint64_t hlc;          /* 48 bits of milliseconds << 16 | counter */
    const uint8_t *hash;   /* GKX_MERGE_HASH_BYTES: the entry hash */
    const uint8_t *body;   /* the canonical msgpack body */
    size_t body_len;       /* its length */
} gkx_merge_entry_t;

/* Validates a policy in JSON form, {"payout": "propose", "caps.daily":
   "advertiser", ...} (keys: field paths or groups; values: both, advertiser,
   publisher, propose), and writes its canonical msgpack, the genesis
   "policy" value, into a new buffer the caller frees with gkx_free. NULL or
   {} means every field is "both". Returns GKX_OK or GKX_EINVAL with errbuf. */
int gkx_merge_policy_encode (uint8_t **bytes_p, size_t *len_p, const json_t *policy,
                             char *errbuf) GKX_NODISCARD;

/* Decodes a genesis "policy" value into its JSON form (caller owns).
   Returns GKX_OK or GKX_EBODY with errbuf. */
int gkx_merge_policy_decode (json_t **policy_p, const uint8_t *bytes, size_t len,
                             char *errbuf) GKX_NODISCARD;

/* Writes the canonical body of an answer entry, {"answer": "accept" |
   "decline" | "withdraw", "proposal": <32-byte entry hash of the propose
   entry>}, into a new buffer the caller frees with gkx_free. Returns GKX_OK
   or GKX_EINVAL for an unknown answer. */
int gkx_merge_answer_encode (uint8_t **body_p, size_t *len_p, int answer,
                             const uint8_t proposal[GKX_MERGE_HASH_BYTES]) GKX_NODISCARD;

/* Decodes and validates an answer body. Returns GKX_OK or GKX_EBODY with
   errbuf naming the field. */
int gkx_merge_answer_decode (int *answer_p, uint8_t proposal[GKX_MERGE_HASH_BYTES],
                             const uint8_t *body, size_t len, char *errbuf) GKX_NODISCARD;

/* Creates the state of a new partnership from its genesis: the two member
   ids, the canonical "offer" value and the canonical "policy" value (NULL
   and 0 for the all-"both" policy). Returns GKX_OK and sets *self_p, or
   GKX_EBODY with errbuf when a value is malformed. */
int gkx_merge_open (gkx_merge_t **self_p, const uint8_t advertiser[GKX_MERGE_ID_BYTES],
                    const uint8_t publisher[GKX_MERGE_ID_BYTES], const uint8_t *offer,
                    size_t offer_len, const uint8_t *policy, size_t policy_len,
                    char *errbuf) GKX_NODISCARD;

/* Destroys a state; accepts NULL and sets *self_p to NULL. */
void gkx_merge_destroy (gkx_merge_t **self_p);

/* Applies one entry, in any order relative to the others. Edit, propose and
   answer entries are merged; other kinds are ignored (GKX_OK). An entry
   already held (same hash) is a no-op returning GKX_OK. Returns GKX_ENOTMEMBER
   when author and role are not a member of the partnership, GKX_EBODY with
   errbuf when the body is malformed for its kind, GKX_EEQUIVOCATION when a
   different entry with the same author and seq is held; on any error the
   state is unchanged. Operations the policy or the schema forbid are not
   errors: they are recorded as rejected. */
int gkx_merge_apply (gkx_merge_t *self, const gkx_merge_entry_t *entry,
                     char *errbuf) GKX_NODISCARD;

/* Returns the number of edit, propose and answer entries held. */
size_t gkx_merge_size (const gkx_merge_t *self);

/* Returns the current offer, borrowed until the next gkx_merge_apply or
   gkx_merge_destroy. */
const gkx_offer_t *gkx_merge_offer (gkx_merge_t *self);

/* Returns the hybrid clock of the entry whose operation gave the current
   offer's "status" its value: the edit's own hlc, or for an accepted
   proposal the accepting answer's hlc (the key the operation took in the
   fold). A later set to the value already in force does not move it, so
   for a paused offer it is when the pause began. 0 while the genesis's
   status is in force. The conversion rules read it, as whole seconds
   (gkx_hlc_ms / 1000), for gkx_conversion_counters_t's paused_since. */
uint64_t gkx_merge_status_hlc (gkx_merge_t *self);

/* Writes into *offer_p (the caller's: gkx_offer_destroy) the offer as it
   stands after folding only the entries inside a causal cut: the
   advertiser's entries with seq <= advertiser_seq and the publisher's
   with seq <= publisher_seq (the genesis is always inside). This is the
   offer "in force in the causal past" of an entry whose own chain
   position and seen_seq give the cut. The fold has the same order and
   rules as gkx_merge_offer (policy rejections; a proposal counts only when
   it and its accept are both inside), so the result equals the offer of a
   state holding only those entries. When status_hlc_p is not NULL it
   receives what gkx_merge_status_hlc would give for that state. Costs a
   fold from the genesis over every held entry, O(n) with n =
   gkx_merge_size, each call; the state and its current offer are left as
   they were. Returns GKX_OK. */
int gkx_merge_offer_at (gkx_merge_t *self, uint64_t advertiser_seq, uint64_t publisher_seq,
                        gkx_offer_t **offer_p, uint64_t *status_hlc_p) GKX_NODISCARD;

/* Returns the highest seq of the held edit, propose and answer entries of
   role (0 when none): an entry whose causal cut reaches it sees every one
   of them, so its offer in force is the current one (no fold needed). */
uint64_t gkx_merge_last_seq (const gkx_merge_t *self, int role);

/* Writes the state digest: BLAKE2b-256 of the canonical msgpack of the
   current offer, and optionally its lowercase hex (hex may be NULL). */
void gkx_merge_digest (gkx_merge_t *self, uint8_t digest[GKX_OFFER_DIGEST_BYTES],
                       char hex[GKX_OFFER_DIGEST_HEX_BYTES]);

/* Returns the change log, a JSON array the caller owns, one record per
   operation and per proposal event in canonical order (docs/offer-schema.md
   describes the record). The names are shown as author_name; NULL gives "". */
json_t *gkx_merge_changes (gkx_merge_t *self, const char *advertiser_name,
                           const char *publisher_name);

/* Returns the proposals with their status, operations and answers, a JSON
   array the caller owns, in canonical order. */
json_t *gkx_merge_proposals (gkx_merge_t *self, const char *advertiser_name,
                             const char *publisher_name);

/* Checks, before an entry is written, that ops of kind GKX_KIND_EDIT or
   GKX_KIND_PROPOSE by role would apply on top of the current state. Returns
   GKX_OK, GKX_EPOLICY (errbuf: the field and who may change it) or
   GKX_EINVAL (errbuf: the rule an operation would break, or no changes). */
int gkx_merge_check (gkx_merge_t *self, int kind, int role, const gkx_offer_ops_t *ops,
                     char *errbuf) GKX_NODISCARD;

/* Checks, before an answer entry is written, that role may give answer to
   the proposal now. Returns GKX_OK, GKX_ENOTFOUND (no such proposal),
   GKX_EPOLICY (wrong side) or GKX_EINVAL (already answered), with errbuf. */
int gkx_merge_check_answer (gkx_merge_t *self, int role, int answer,
                            const uint8_t proposal[GKX_MERGE_HASH_BYTES],
                            char *errbuf) GKX_NODISCARD;

/* Finds the proposal whose id (hex entry hash) starts with prefix (at least
   8 hex digits). Returns GKX_OK and writes its hash, GKX_ENOTFOUND, or
   GKX_EINVAL when the prefix is too short, not hex or ambiguous. */
int gkx_merge_proposal_find (gkx_merge_t *self, uint8_t proposal[GKX_MERGE_HASH_BYTES],
                             const char *prefix, char *errbuf) GKX_NODISCARD;

/* Serialises the whole state (genesis and entries in canonical order) as
   canonical msgpack into a new buffer the caller frees with gkx_free; equal
   sets of entries give equal bytes. */
void gkx_merge_encode (const gkx_merge_t *self, uint8_t **bytes_p, size_t *len_p);

/* Restores a state from gkx_merge_encode's bytes, re-deriving everything.
   Returns GKX_OK, GKX_EFORMAT for another format version, or GKX_EDECODE
   with errbuf when the bytes are malformed. */
int gkx_merge_decode (gkx_merge_t **self_p, const uint8_t *bytes, size_t len,
                      char *errbuf) GKX_NODISCARD;

#ifdef __cplusplus
}
#endif

#endif
