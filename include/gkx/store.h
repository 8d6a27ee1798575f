/*  store - a node's partnerships and their logs, in LMDB.
    Part of gokart-exchange; MIT licence.

    One LMDB environment per node (DIR/store/). Named databases hold the
    entries of every chain, each chain's head, the partnerships, equivocation
    evidence and metadata (format version, the node's own id, its hybrid
    clock). Every writing call is one write transaction: all of it happens or
    none of it does. When the map fills, the transaction is aborted, the map
    doubled and the call run again, so a growing store never fails for size.

    append writes a local entry (seq, prev_hash, seen fields and clock set
    here, then signed); ingest takes a counterparty's entry and applies every
    ingest rule of the log (docs/log-format.md): membership, signature, seq
    and prev_hash continuity, clock and cross-link checks. An entry already
    held is a no-op; a different entry at a held seq is equivocation: both
    are kept as evidence and the partnership is frozen.

    A store is used from one thread at a time (the node's event loop owns
    it); reads inside a call use short read-only transactions.
*/
#ifndef GKX_STORE_H_INCLUDED
#define GKX_STORE_H_INCLUDED

#include <gkx/card.h>
#include <gkx/conversion.h>
#include <gkx/entry.h>
#include <gkx/error.h>
#include <gkx/identity.h>
#include <gkx/merge.h>
#include <gkx/withdrawal.h>

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Version of the store's layout; a store of another version is refused. */
#define GKX_STORE_FORMAT 1
/* Initial LMDB map size; it doubles whenever it fills. */
#define GKX_STORE_MAP_BYTES ((size_t) 64 << 20)

typedef struct gkx_store gkx_store_t;

/* Options for gkx_store_open; zero means the default. */
typedef struct {
    size_t map_bytes;                    /* initial map size */
    uint64_t (*clock_ms) (void *arg);    /* wall clock in ms since the epoch */
    void *clock_arg;
    int deliveries;                      /* queue a webhook delivery for each
                                            counterparty conversion and status
                                            entry ingested */
    int notices;                         /* queue a notice (for e-mail) for each
                                            counterparty change ingested and each
                                            partnership frozen */
} gkx_store_options_t;

/* What the store knows of one partnership. */
typedef struct {
    uint8_t pid[GKX_ID_BYTES];
    uint8_t advertiser[GKX_ID_BYTES];
    uint8_t publisher[GKX_ID_BYTES];
    int self_role;          /* this node's role in it: GKX_ROLE_* */
    int is_frozen;          /* 1 once equivocation was seen */
    uint64_t created_hlc;   /* the genesis entry's clock */
    uint64_t claimed_seq;   /* the highest seq of our own chain the counterparty said it has
                               seen (0: none); appends wait while it is above our head */
} gkx_partnership_t;

/* The newest entry of one chain. */
typedef struct {
    uint64_t seq;                   /* 0 when the chain is empty */
    uint8_t hash[GKX_HASH_BYTES];   /* zeros when empty */
    uint64_t hlc;
    uint64_t seen_seq;
} gkx_head_t;

/* What gkx_store_ingest did with an entry. */
typedef enum {
    GKX_INGEST_APPENDED = 1,    /* new entry, stored */
    GKX_INGEST_DUPLICATE = 2,   /* already held, nothing changed */
} gkx_ingest_result_t;

/* Opens or creates the store of node self_id in directory dir (created with
   mode 0700 when missing). options may be NULL. Returns GKX_OK, GKX_EFORMAT
   (another store version), GKX_EINVAL (a store of another node id), GKX_EIO
   or GKX_ESTORE, with errbuf saying which. */
GKX_NODISCARD int gkx_store_open (gkx_store_t **self_p, const char *dir,
                                  const uint8_t self_id[GKX_ID_BYTES],
                                  const gkx_store_options_t *options, char *errbuf);

/* Closes the environment; accepts NULL; sets *self_p to NULL. */
void gkx_store_close (gkx_store_t **self_p);

/* The store's current map size in bytes (grows when it fills). */
size_t gkx_store_map_bytes (const gkx_store_t *self);

/* The bytes the store's data take: the pages in use in its data file
   (DIR/store/data.mdb) as of the last commit, never more than the map.
   0 when LMDB cannot tell. */
uint64_t gkx_store_used_bytes (const gkx_store_t *self);

/* Creates a partnership as its advertiser (identity) with publisher: draws
   the nonce, writes and signs the genesis entry. offer and policy are
   canonical msgpack maps or NULL for empty ones. On success pid holds the
   new partnership id and, if entry_p is not NULL, *entry_p the genesis entry
   (the caller's). */
GKX_NODISCARD int gkx_store_share (gkx_store_t *self, const gkx_identity_t *identity,
                                   const uint8_t publisher[GKX_ID_BYTES],
                                   const uint8_t *offer, size_t offer_len,
                                   const uint8_t *policy, size_t policy_len,
                                   uint8_t pid[GKX_ID_BYTES], gkx_entry_t **entry_p,
                                   char *errbuf);

/* Appends a local entry of kind with body (a canonical msgpack map) to this
   node's chain of partnership pid. Returns GKX_OK, GKX_ENOTFOUND (no such
   partnership), GKX_EFROZEN, GKX_EAHEAD (the counterparty holds entries of
   ours that we lack: take them back first), or the entry layer's rejection
   of the body. *entry_p, if not NULL, receives the entry (the caller's). */
GKX_NODISCARD int gkx_store_append (gkx_store_t *self, const gkx_identity_t *identity,
                                    const uint8_t pid[GKX_ID_BYTES], int kind,
                                    const uint8_t *body, size_t body_len,
                                    gkx_entry_t **entry_p, char *errbuf);

/* One partnership of gkx_store_append_each. */
typedef struct {
    const uint8_t *pid;             /* in: the partnership */
    int rc;                         /* out: as gkx_store_append returns for it */
    char errbuf[GKX_ERRBUF_BYTES];  /* out: why it was not written */
} gkx_store_append_item_t;

/* Appends one local entry of kind with body to each partnership of items,
   as gkx_store_append would one by one, but in one write transaction: one
   durable commit for all (a node writes the acks due in many partnerships
   at once). Each runs in a nested transaction, so one refused changes
   nothing and the others still go in. Returns GKX_OK when it committed
   (each item's rc says what became of it), else a store error for all. */
GKX_NODISCARD int gkx_store_append_each (gkx_store_t *self, const gkx_identity_t *identity,
                                         int kind, const uint8_t *body, size_t body_len,
                                         gkx_store_append_item_t *items, size_t count,
                                         char *errbuf);

/* Ingests one encoded entry received from peer (the connection's
   authenticated node id, or NULL when the source is not a connection, as
   for an import). A genesis entry for an unknown partnership creates it
   when this node is its publisher. Returns GKX_OK with *result_p set, or the
   rule broken: a decode code, GKX_ESIGNATURE, GKX_ENOTMEMBER, GKX_ENOTFOUND,
   GKX_EFROZEN, GKX_EGAP, GKX_EPREV, GKX_ECLOCK, GKX_ECROSSLINK, GKX_EAHEAD,
   or GKX_EEQUIVOCATION (evidence kept and partnership frozen, committed);
   errbuf names it. Nothing but evidence is written on failure. */
GKX_NODISCARD int gkx_store_ingest (gkx_store_t *self, const uint8_t *bytes, size_t len,
                                    const uint8_t *peer, int *result_p, char *errbuf);

/* One entry of gkx_store_ingest_batch. */
typedef struct {
    const uint8_t *bytes;           /* in: the encoded entry */
    size_t len;
    int rc;                         /* out: as gkx_store_ingest returns for it */
    int result;                     /* out: a gkx_ingest_result_t when rc is GKX_OK */
    char errbuf[GKX_ERRBUF_BYTES];  /* out: why it was refused */
    gkx_entry_t *entry;             /* out: the decoded entry (the caller's), or NULL when
                                       it did not decode or verify */
} gkx_store_ingest_item_t;

/* Ingests entries received together, in order, as gkx_store_ingest would
   one by one, but in one write transaction: one durable commit for all.
   Each entry runs in a nested transaction, so a refused one changes
   nothing (but its evidence) and the others still go in; signatures are
   verified before the transaction. Returns GKX_OK when it committed (each
   item's rc says what became of it), else a store error for all. */
GKX_NODISCARD int gkx_store_ingest_batch (gkx_store_t *self, gkx_store_ingest_item_t *items,
                                          size_t count, const uint8_t *peer, char *errbuf);

/* Reads a partnership. Returns GKX_OK or GKX_ENOTFOUND. */
GKX_NODISCARD int gkx_store_partnership (gkx_store_t *self, const uint8_t pid[GKX_ID_BYTES],
                                         gkx_partnership_t *out);

/* Forgets the counterparty's claim to have seen more of our chain than we
   hold (claimed_seq), so appends go on: the node calls it when the claim was
   not backed by the entries it names (docs/protocol.md). GKX_OK, or
   GKX_ENOTFOUND or a store error. */
GKX_NODISCARD int gkx_store_claim_drop (gkx_store_t *self, const uint8_t pid[GKX_ID_BYTES],
                                        char *errbuf);

/* Partnerships by status: frozen (equivocation evidence held), else paused
   or active as their offer says. */
typedef struct {
    size_t active;
    size_t paused;
    size_t frozen;
} gkx_store_partnership_counts_t;

/* Counts the partnerships by status from their records and an index kept
   with the materialised offers: no offer is read. Returns GKX_OK or
   GKX_ESTORE. */
GKX_NODISCARD int gkx_store_partnership_counts (gkx_store_t *self,
                                                gkx_store_partnership_counts_t *out);

/* Calls fn for every partnership in pid order; stops early when fn returns
   non-zero and returns that value, else GKX_OK (or GKX_ESTORE). */
int gkx_store_partnerships (gkx_store_t *self,
                            int (*fn) (const gkx_partnership_t *p, void *arg), void *arg);

/* Reads the head of one chain (role GKX_ROLE_*). An empty chain has seq 0.
   Returns GKX_OK or GKX_ENOTFOUND (no such partnership). */
GKX_NODISCARD int gkx_store_head (gkx_store_t *self, const uint8_t pid[GKX_ID_BYTES], int role,
                                  gkx_head_t *out);

/* Reads the entry at seq of one chain into *entry_p (the caller's). Returns
   GKX_OK or GKX_ENOTFOUND. */
GKX_NODISCARD int gkx_store_get (gkx_store_t *self, const uint8_t pid[GKX_ID_BYTES], int role,
                                 uint64_t seq, gkx_entry_t **entry_p);

/* Calls fn for the entries of one chain from seq from_seq on, in order; the
   entry is borrowed for the call. Stops early when fn returns non-zero and
   returns that value; else GKX_OK or GKX_ESTORE. */
int gkx_store_iterate (gkx_store_t *self, const uint8_t pid[GKX_ID_BYTES], int role,
                       uint64_t from_seq,
                       int (*fn) (const gkx_entry_t *entry, void *arg), void *arg);

/* Sets *found_p to 1 when the chain of role holds, from seq from_seq on, an
   entry whose kind is not kind, else 0; reads each entry's kind only, not
   the entry (a node at start asks this of every partnership: are there
   entries other than acks to acknowledge?). Returns GKX_OK or GKX_ESTORE. */
GKX_NODISCARD int gkx_store_holds_other_than (gkx_store_t *self,
                                              const uint8_t pid[GKX_ID_BYTES], int role,
                                              uint64_t from_seq, int kind, int *found_p);

/* Calls fn for every evidence entry of a partnership (pairs of entries at
   one author and seq), borrowed for the call. Returns as gkx_store_iterate. */
int gkx_store_evidence (gkx_store_t *self, const uint8_t pid[GKX_ID_BYTES],
                        int (*fn) (const gkx_entry_t *entry, void *arg), void *arg);

/* Returns in *state_p a copy of the partnership's offer merge state (the
   caller's: gkx_merge_destroy), from which the offer, its digest, the change
   log and the proposals are read. Returns GKX_OK, GKX_ENOTFOUND or
   GKX_ESTORE. */
GKX_NODISCARD int gkx_store_merge (gkx_store_t *self, const uint8_t pid[GKX_ID_BYTES],
                                   gkx_merge_t **state_p);

/* Like gkx_store_merge, but borrows the store's own cached state instead of
   building a copy: fast, and valid only until the next call that writes to
   this store (the same thread must not write meanwhile). Never destroy it
   or apply entries to it. Returns GKX_OK, GKX_ENOTFOUND or GKX_ESTORE. */
GKX_NODISCARD int gkx_store_merge_borrow (gkx_store_t *self, const uint8_t pid[GKX_ID_BYTES],
                                          gkx_merge_t **state_p);

/* Reads the materialised offer (the caller's: gkx_offer_destroy) and, when
   digest is not NULL, its state digest: one read, no replay of the log.
   Returns GKX_OK, GKX_ENOTFOUND or GKX_ESTORE. */
GKX_NODISCARD int gkx_store_offer (gkx_store_t *self, const uint8_t pid[GKX_ID_BYTES],
                                   gkx_offer_t **offer_p, uint8_t *digest);

/* Reads the materialised offer's state digest. Returns GKX_OK or
   GKX_ENOTFOUND. */
GKX_NODISCARD int gkx_store_digest (gkx_store_t *self, const uint8_t pid[GKX_ID_BYTES],
                                    uint8_t digest[GKX_OFFER_DIGEST_BYTES]);

/* Recomputes the partnership's derived records (the offer's merge state and
   the materialised offer) from its entries alone and stores them. *changed_p
   (may be NULL) is set to 1 when they differed from what was stored.
   Returns GKX_OK, GKX_ENOTFOUND, or an error naming the entry that could not
   be applied. */
GKX_NODISCARD int gkx_store_rebuild (gkx_store_t *self, const uint8_t pid[GKX_ID_BYTES],
                                     int *changed_p, char *errbuf);

/* Keeps a peer's verified card, replacing an older card of the same id (a
   card older than the one held is ignored). Returns GKX_OK or GKX_ESTORE. */
GKX_NODISCARD int gkx_store_peer_put (gkx_store_t *self, const gkx_card_t *card, char *errbuf);

/* Reads the card of peer id into *card_p (the caller's). Returns GKX_OK,
   GKX_ENOTFOUND or GKX_ESTORE. */
GKX_NODISCARD int gkx_store_peer_get (gkx_store_t *self, const uint8_t id[GKX_ID_BYTES],
                                      gkx_card_t **card_p);

/* Calls fn for every peer's card (borrowed for the call) in id order; stops
   early when fn returns non-zero and returns that value. */
int gkx_store_peers (gkx_store_t *self, int (*fn) (const gkx_card_t *card, void *arg),
                     void *arg);

/* A directory's records (docs/protocol.md, "Directory"), for a node that
   serves as one: the newest card published for each id, and the owners'
   withdrawals, kept so that an older card cannot bring a listing back. */

/* Keeps a published, verified card unless it is stale. Returns GKX_OK when
   it is stored (replacing an older card of its id) or was held already
   (the same bytes); GKX_EPOLICY when its owner withdrew its cards at or
   after the card's timestamp; GKX_EEXIST when a card of its id issued at
   the same time or later is held; or GKX_ESTORE. errbuf says which. */
GKX_NODISCARD int gkx_store_directory_put (gkx_store_t *self, const gkx_card_t *card,
                                           char *errbuf);

/* Keeps a verified withdrawal and, in the same transaction, drops the card
   of its id when the withdrawal covers it (gkx_withdrawal_is_covering).
   Returns GKX_OK (also when a withdrawal of the same time is held
   already), GKX_EEXIST when a later withdrawal of its id is held, or
   GKX_ESTORE. */
GKX_NODISCARD int gkx_store_directory_withdraw (gkx_store_t *self, const gkx_withdrawal_t *w,
                                                char *errbuf);

/* Calls fn for every card the directory holds (borrowed for the call) in
   id order; stops early when fn returns non-zero and returns that value,
   else GKX_OK or GKX_ESTORE. */
int gkx_store_directory_cards (gkx_store_t *self,
                               int (*fn) (const gkx_card_t *card, void *arg), void *arg);

/* This node's own listing: 0 while its card is to be published to the
   directories of its configuration, else when it was withdrawn (ms). */
uint64_t gkx_store_directory_withdrawn (gkx_store_t *self);

/* Records this node's own withdrawal time, or 0 to be listed again.
   Returns GKX_OK or GKX_ESTORE. */
GKX_NODISCARD int gkx_store_directory_set_withdrawn (gkx_store_t *self, uint64_t time_ms,
                                                     char *errbuf);

/* Finds the conversion of partnership pid whose dedupe key (16 bytes,
   gkx_postback_dedupe_key) is dedupe, writing its entry hash (the
   conversion id) into hash. Returns GKX_OK, GKX_ENOTFOUND or GKX_ESTORE. */
GKX_NODISCARD int gkx_store_conversion_find (gkx_store_t *self, const uint8_t pid[GKX_ID_BYTES],
                                             const uint8_t dedupe[16],
                                             uint8_t hash[GKX_HASH_BYTES]);

/* Characters of a partnership's short id: the first 16 hex digits of its
   id, which the postback URL's p= parameter carries. */
#define GKX_STORE_SHORT_ID_CHARS 16

/* Writes the short id of pid (16 lowercase hex digits and a NUL). */
void gkx_store_short_id (char out[GKX_STORE_SHORT_ID_CHARS + 1], const uint8_t pid[GKX_ID_BYTES]);

/* Finds the partnership whose short id is text (16 hex digits, any case).
   Returns GKX_OK with pid set, GKX_EINVAL when text is not 16 hex digits,
   GKX_ENOTFOUND, or GKX_ESTORE. */
GKX_NODISCARD int gkx_store_short_find (gkx_store_t *self, const char *text,
                                        uint8_t pid[GKX_ID_BYTES]);

/* What the store keeps of one conversion, beside its entry. */
typedef struct {
    uint8_t id[GKX_HASH_BYTES];  /* the conversion entry's hash */
    uint64_t seq;                /* its seq in the advertiser's chain */
    uint64_t hlc;                /* its hybrid clock */
    uint64_t time;               /* the event time, Unix seconds */
    int64_t payout;              /* micro-units */
    uint32_t hold_days;          /* conversion_policy.hold_days in its causal past */
    int initial_status;          /* the status the entry carries */
    int status;                  /* the status after its status changes */
    char reason[GKX_CONVERSION_REASON_MAX + 1]; /* the reason of the last change, or the entry's */
    char flag[GKX_ERRBUF_BYTES]; /* publisher: what verification found wrong, "" when none */
} gkx_store_conversion_t;

/* Reads what the store keeps of conversion id of partnership pid. Returns
   GKX_OK, GKX_ENOTFOUND or GKX_ESTORE. */
GKX_NODISCARD int gkx_store_conversion (gkx_store_t *self, const uint8_t pid[GKX_ID_BYTES],
                                        const uint8_t id[GKX_HASH_BYTES],
                                        gkx_store_conversion_t *out);

/* One postback to turn into a conversion: the inputs the caller fills, the
   outputs gkx_store_convert writes. */
typedef struct {
    /* in */
    uint8_t pid[GKX_ID_BYTES];
    gkx_conversion_t draft;         /* click_id, click_time, event, country, platform,
                                       sub, time, dedupe; currency, payout, status and
                                       reason are decided here */
    gkx_conversion_facts_t facts;   /* for gkx_conversion_decide; event, country,
                                       platform and time must match draft */
    char revenue_currency[4];       /* the currency of facts.revenue, or "": revenue
                                       in another currency than the offer's counts
                                       as unknown */
    /* out */
    int rc;                         /* GKX_OK, or why this one was not written */
    char errbuf[GKX_ERRBUF_BYTES];  /* the error's message */
    int duplicate;                  /* an earlier conversion had the same dedupe key */
    gkx_store_conversion_t conversion; /* the conversion written, or the earlier one */
    char currency[4];               /* its currency */
    int budget_spent;               /* the offer's total budget is now spent */
    gkx_entry_t *entry;             /* the new entry (the caller's), NULL for duplicates */
} gkx_store_convert_t;

/* Writes conversions for postbacks, all in one write transaction (one
   durable commit for the lot). For each item in order: an earlier
   conversion with the same dedupe key in the partnership makes it a
   duplicate (nothing written, the earlier conversion returned); else the
   offer in force and the counters of the partnership decide it
   (gkx_conversion_decide) and it is appended as a conversion entry. An
   item whose partnership is unknown (GKX_ENOTFOUND), frozen, not this
   node's as advertiser (GKX_EPOLICY) or whose facts are invalid
   (GKX_EINVAL) gets its own rc and changes nothing; the others still
   commit. Returns GKX_OK when the transaction committed (each item's rc
   then says what happened to it), or a store error when nothing was
   written. */
GKX_NODISCARD int gkx_store_convert (gkx_store_t *self, const gkx_identity_t *identity,
                                     gkx_store_convert_t *items, size_t count, char *errbuf);

/* Slots of the counts by status: indexed by gkx_conversion_status_t, slot 0
   unused. */
#define GKX_STORE_STATUS_SLOTS (GKX_CONVERSION_REVERSED + 1)

/* Conversions counted over every partnership of the store (advertiser and
   publisher alike: each member holds the same conversions). */
typedef struct {
    uint64_t day;                               /* with an event time in the UTC day
                                                   asked, whatever their status */
    uint64_t recorded[GKX_STORE_STATUS_SLOTS];  /* ever, by the status their entry
                                                   carries (never reversed) */
    uint64_t current[GKX_STORE_STATUS_SLOTS];   /* by their status now, after the
                                                   status changes */
} gkx_store_conversion_counts_t;

/* Counts the conversions of every partnership into *out: those of UTC day
   day (days since 1970-01-01, as gkx_conversion_periods numbers them), and
   those of each status. The store keeps these counts in the transaction of
   each conversion and status entry (and builds them once, at open, for a
   store written before it kept them), so this reads a few records per
   partnership, never the conversions. Returns GKX_OK or GKX_ESTORE (*out
   is then untouched). */
GKX_NODISCARD int gkx_store_conversion_counts (gkx_store_t *self, uint64_t day,
                                               gkx_store_conversion_counts_t *out);

/* One webhook delivery: a counterparty conversion or status entry to POST
   to the tenant's own system. */
typedef struct {
    uint64_t id;                    /* from 1, in the order they were queued */
    uint8_t pid[GKX_ID_BYTES];
    uint64_t seq;                   /* the advertiser entry's seq */
    uint32_t attempts;
    int last_status;                /* HTTP status of the last attempt; 0: none or no answer */
    char last_error[GKX_ERRBUF_BYTES]; /* "" when none */
    uint64_t created_ms;
    uint64_t last_attempt_ms;       /* 0 before the first attempt */
    uint64_t next_attempt_ms;       /* when it is due; 0 once delivered */
    uint64_t delivered_ms;          /* 0 until a 2xx answer */
} gkx_delivery_t;

/* Calls fn for the deliveries due at now_ms (a next_attempt_ms set and
   <= now_ms: undelivered ones, and delivered ones queued again by a
   replay), oldest first, at most limit of them. Scans the pending index,
   which holds exactly the deliveries with a next attempt. Returns as
   gkx_store_iterate. */
int gkx_store_deliveries_due (gkx_store_t *self, uint64_t now_ms, size_t limit,
                              int (*fn) (const gkx_delivery_t *d, void *arg), void *arg);

/* Calls fn for every delivery, newest first, at most limit of them. */
int gkx_store_deliveries (gkx_store_t *self, size_t limit,
                          int (*fn) (const gkx_delivery_t *d, void *arg), void *arg);

/* Counts into *count_p the deliveries waiting for an attempt (due now or
   later, replays included): the entries of the pending index, without
   reading them. Returns GKX_OK or GKX_ESTORE. */
GKX_NODISCARD int gkx_store_deliveries_pending (gkx_store_t *self, uint64_t *count_p);

/* Reads delivery id. Returns GKX_OK, GKX_ENOTFOUND or GKX_ESTORE. */
GKX_NODISCARD int gkx_store_delivery_get (gkx_store_t *self, uint64_t id, gkx_delivery_t *out);

/* Replaces delivery d->id with *d: an attempt's result, or a replay
   (next_attempt_ms set again; delivered_ms may stay). A delivery with a
   next_attempt_ms is kept in the pending index, one without leaves it.
   Returns GKX_OK, GKX_ENOTFOUND or GKX_ESTORE. */
GKX_NODISCARD int gkx_store_delivery_put (gkx_store_t *self, const gkx_delivery_t *d,
                                          char *errbuf);

/* The kind of a notice for a frozen partnership; other notices carry the
   kind of their entry (GKX_KIND_*), which never takes this value. */
#define GKX_NOTICE_FROZEN 255

/* One notice: a change the counterparty made, queued for e-mail in the
   write transaction that applied it. Queued (with options.notices) for
   each counterparty entry of kind genesis (a new partnership), edit,
   propose, answer or conversion status ingested, and for each partnership
   frozen by equivocation. */
typedef struct {
    uint64_t id;                    /* from 1, in the order they were queued */
    uint8_t pid[GKX_ID_BYTES];
    int role;                       /* the entry author's role; for GKX_NOTICE_FROZEN,
                                       the role that signed two entries at one seq */
    int kind;                       /* the entry's GKX_KIND_*, or GKX_NOTICE_FROZEN */
    uint64_t seq;                   /* the entry's seq, or the equivocating seq */
    int prior;                      /* a conversion status change: the conversion's
                                       status before it (gkx_conversion_status_t), 0 when
                                       the store did not hold it; else 0 */
    uint64_t queued_ms;             /* when it was queued */
} gkx_notice_t;

/* Most notices one message groups, and the room for its subject. */
#define GKX_MESSAGE_NOTICES_MAX 64
#define GKX_MESSAGE_SUBJECT_BYTES 512

/* Where a message is: not tried yet, sent, or its last attempt failed
   (it is tried again at next_attempt_ms). */
typedef enum {
    GKX_MESSAGE_PENDING = 1,
    GKX_MESSAGE_SENT = 2,
    GKX_MESSAGE_FAILED = 3,
} gkx_message_state_t;

/* One e-mail message: notices of one partnership grouped together, with
   the outcome of its attempts. Its text and HTML bodies are kept beside
   it (gkx_store_message_body), so every attempt sends the same message. */
typedef struct {
    uint64_t id;                    /* from 1, in the order they were made */
    uint8_t pid[GKX_ID_BYTES];
    int state;                      /* a gkx_message_state_t */
    uint32_t attempts;
    uint64_t created_ms;
    uint64_t last_attempt_ms;       /* 0 before the first attempt */
    uint64_t next_attempt_ms;       /* when it is due; 0 once sent */
    uint64_t sent_ms;               /* 0 until sent */
    char subject[GKX_MESSAGE_SUBJECT_BYTES];    /* UTF-8, one line */
    char last_error[GKX_ERRBUF_BYTES];          /* "" when none */
    size_t notice_count;            /* 1 to GKX_MESSAGE_NOTICES_MAX */
    uint64_t notices[GKX_MESSAGE_NOTICES_MAX];  /* its notice ids, oldest first */
} gkx_message_t;

/* Calls fn for the notices that no message holds yet, oldest first, at
   most limit of them. Returns as gkx_store_iterate. */
int gkx_store_notices_waiting (gkx_store_t *self, size_t limit,
                               int (*fn) (const gkx_notice_t *notice, void *arg), void *arg);

/* Reads notice id. Returns GKX_OK, GKX_ENOTFOUND or GKX_ESTORE. */
GKX_NODISCARD int gkx_store_notice_get (gkx_store_t *self, uint64_t id, gkx_notice_t *out);

/* Makes message *m (every field but id set by the caller: state pending,
   next_attempt_ms when it is due) with bodies text and html (UTF-8; html
   may be ""), taking its notices out of the waiting ones, all in one write
   transaction. Sets m->id. Returns GKX_OK, GKX_EINVAL (no notices, or a
   notice that is not waiting: nothing written) or GKX_ESTORE. */
GKX_NODISCARD int gkx_store_message_add (gkx_store_t *self, gkx_message_t *m, const char *text,
                                         const char *html, char *errbuf);

/* Replaces message m->id's record with *m (an attempt's outcome; its
   bodies and notices stay). A message not sent stays in the due index,
   a sent one leaves it. Returns GKX_OK, GKX_ENOTFOUND or GKX_ESTORE. */
GKX_NODISCARD int gkx_store_message_put (gkx_store_t *self, const gkx_message_t *m,
                                         char *errbuf);

/* Reads message id. Returns GKX_OK, GKX_ENOTFOUND or GKX_ESTORE. */
GKX_NODISCARD int gkx_store_message_get (gkx_store_t *self, uint64_t id, gkx_message_t *out);

/* Copies the bodies of message id into *text_p and *html_p (the caller's:
   gkx_free). Returns GKX_OK, GKX_ENOTFOUND or GKX_ESTORE. */
GKX_NODISCARD int gkx_store_message_body (gkx_store_t *self, uint64_t id, char **text_p,
                                          char **html_p);

/* Calls fn for every message, newest first, at most limit of them.
   Returns as gkx_store_iterate. */
int gkx_store_messages (gkx_store_t *self, size_t limit,
                        int (*fn) (const gkx_message_t *m, void *arg), void *arg);

/* Counts into *count_p the messages not sent yet (due now or later): the
   entries of the due index, without reading them. Returns GKX_OK or
   GKX_ESTORE. */
GKX_NODISCARD int gkx_store_messages_pending (gkx_store_t *self, uint64_t *count_p);

/* Calls fn for the messages not sent whose next attempt is due at now_ms,
   oldest first, at most limit of them; scans the due index, which holds
   exactly the messages not sent. Returns as gkx_store_iterate. */
int gkx_store_messages_due (gkx_store_t *self, uint64_t now_ms, size_t limit,
                            int (*fn) (const gkx_message_t *m, void *arg), void *arg);

/* The store's hybrid clock: the last value used or received. */
uint64_t gkx_store_hlc (gkx_store_t *self);

#ifdef __cplusplus
}
#endif

#endif
