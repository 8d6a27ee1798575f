/*  store - a node's partnerships and their logs, in LMDB.
    Part of gokart-exchange; MIT licence.

    Layout (all integers big-endian, so keys sort in chain order):
      meta          "format" -> u32, "self" -> node id, "hlc" -> u64
      partnerships  pid -> s_prec_t fields (see s_prec_encode)
      heads         pid || role -> seq, hash, hlc, seen_seq
      entries       pid || role || seq -> hash || hlc || entry bytes
      evidence      pid || role || seq || hash -> entry bytes
      offers        pid -> state digest || the offer's canonical msgpack
      peers         node id -> the peer's signed tenant card (msgpack)
      dedupe        pid || conversion dedupe key (16) -> the conversion's entry hash
      conversions   pid || conversion id -> status, payout, time, hold, reason, flag
      tallies       pid || period tag || period -> count and payout sum of the
                    counted (approved or pending) conversions in that UTC day
                    ('d'), ISO week ('w'), month ('m') or ever ('t', period 0);
                    and, whatever their status, of the conversions of a UTC
                    day ('a'), by the status their entry carries ('i', the
                    status as period) and by their status now ('s')
      deliveries    delivery id -> partnership, seq, attempts and their outcome
      pending       delivery id -> nothing: the deliveries with a next attempt
      notices       notice id -> partnership, role, kind, seq, prior status, queued time
      waiting       notice id -> nothing: the notices no message holds yet
      messages      message id -> state, attempts and their outcome, subject, notice
                    ids, then the text and HTML bodies
      outbox        message id -> nothing: the messages not sent yet
    Every write goes through s_write, which runs one function inside one
    write transaction and, when LMDB reports the map full, aborts, doubles
    the map and runs it again: the function must depend only on the
    transaction's view, which the abort rolls back.

    The materialised offer is derived in the same transaction as the entry
    that changes it (s_derive), so the offer never disagrees with the log.
    The merge state behind it (registers, proposals, change log) is derived
    from the stored entries: built on first use by replaying the
    partnership's chains, then kept in a small cache and updated with each
    entry. An aborted transaction empties the cache, since its states may
    hold the aborted work.
*/
#include <gkx/alloc.h>
#include <gkx/conversion.h>
#include <gkx/hlc.h>
#include <gkx/kind.h>
#include <gkx/merge.h>
#include <gkx/store.h>

#include <assert.h>
#include <errno.h>
#include <lmdb.h>
#include <sodium.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

/* Internal result of a transaction body: the map is full, grow and retry. */
#define S_MAP_FULL (-1)
/* Readers LMDB admits at once (HTTP pool threads and tools). */
#define S_MAX_READERS 512
/* Named databases in the environment. */
#define S_MAX_DBS 32
/* Bytes of keys and fixed records. */
#define S_HEAD_KEY_BYTES (GKX_ID_BYTES + 1)
#define S_ENTRY_KEY_BYTES (GKX_ID_BYTES + 1 + 8)
#define S_EVIDENCE_KEY_BYTES (S_ENTRY_KEY_BYTES + GKX_HASH_BYTES)
#define S_HEAD_VALUE_BYTES (8 + GKX_HASH_BYTES + 8 + 8)
#define S_ENTRY_PREFIX_BYTES (GKX_HASH_BYTES + 8)
#define S_PREC_BYTES (3 + 2 * GKX_ID_BYTES + 8 + 8)
/* Version byte of a partnership record. */
#define S_PREC_VERSION 1
/* Conversion records: the fixed part before the reason and the flag. */
#define S_CONV_VERSION 1
#define S_CONV_FIXED_BYTES 40
/* Tally keys: pid, period tag, period number. */
#define S_TALLY_KEY_BYTES (GKX_ID_BYTES + 1 + 8)
/* Delivery records: the fixed part before the last error. */
#define S_DELIVERY_FIXED_BYTES (GKX_ID_BYTES + 58)
/* Notice records: version, role, kind, prior status, pid, seq, queued time. */
#define S_NOTICE_VERSION 1
#define S_NOTICE_BYTES (4 + GKX_ID_BYTES + 16)
/* Message records: version, state, pid, attempts (4 bytes), four times;
   then two-byte lengths before the subject, the last error and the notice
   ids, and four-byte lengths before the text and the HTML. */
#define S_MESSAGE_VERSION 1
#define S_MESSAGE_FIXED_BYTES (2 + GKX_ID_BYTES + 4 + 32)
#define S_MESSAGE_BODY_MAX ((size_t) UINT32_MAX)
/* Merge states kept decoded between calls. */
#define S_CACHE_SLOTS 64

/* One decoded merge state in the cache. */
typedef struct {
    uint8_t pid[GKX_ID_BYTES];
    gkx_merge_t *state;     /* NULL when the slot is free */
    uint64_t used;          /* cache clock at last use, for eviction */
} s_cache_slot_t;

/* An open store. */
struct gkx_store {
    MDB_env *env;
    MDB_dbi meta;
    MDB_dbi partnerships;
    MDB_dbi heads;
    MDB_dbi entries;
    MDB_dbi evidence;
    MDB_dbi offers;
    MDB_dbi peers;
    MDB_dbi directory;      /* a directory's cards ('c' || id) and withdrawals ('w' || id) */
    MDB_dbi dedupe;
    MDB_dbi conversions;
    MDB_dbi tallies;
    MDB_dbi deliveries;
    MDB_dbi pending;
    MDB_dbi notices;                        /* notice records */
    MDB_dbi waiting;                        /* notices no message holds yet */
    MDB_dbi messages;                       /* e-mail messages */
    MDB_dbi outbox;                         /* messages not sent yet */
    MDB_dbi paused;                         /* pids whose materialised offer is paused */
    s_cache_slot_t cache[S_CACHE_SLOTS];    /* decoded merge states */
    uint64_t cache_clock;
    uint8_t self_id[GKX_ID_BYTES];          /* this node */
    uint64_t (*clock_ms) (void *arg);       /* wall clock */
    int deliveries_on;                      /* queue webhook deliveries */
    int notices_on;                         /* queue notices of counterparty changes */
    void *clock_arg;
    char path[512];                         /* for messages */
};

/* A partnership record as stored. */
typedef struct {
    gkx_partnership_t pub;          /* what callers see */
    uint64_t claimed_seq;           /* own seq the counterparty has seen */
} s_prec_t;

/* Writes a big-endian u64. */
static void
s_put_be64 (uint8_t *p, uint64_t v)
{
    for (int i = 7; i >= 0; i--) {
        p[i] = (uint8_t) v;
        v >>= 8;
    }
}

/* Reads a big-endian u64. */
static uint64_t
s_get_be64 (const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++) {
        v = (v << 8) | p[i];
    }
    return v;
}

/* The wall clock, unless the caller supplied one. */
static uint64_t
s_default_clock (void *arg)
{
    struct timespec ts;
    clock_gettime (CLOCK_REALTIME, &ts);
    return (uint64_t) ts.tv_sec * 1000 + (uint64_t) ts.tv_nsec / 1000000;
}

/* Maps an LMDB code to GKX_ESTORE (or S_MAP_FULL), writing its text. */
static int
s_mdb_fail (char *errbuf, int mdb_rc, const char *what)
{
    if (mdb_rc == MDB_MAP_FULL) {
        return S_MAP_FULL;
    }
    return gkx_fail (errbuf, GKX_ESTORE, "store: %s: %s", what, mdb_strerror (mdb_rc));
}

/* Builds the heads key of one chain. */
static void
s_head_key (uint8_t key[S_HEAD_KEY_BYTES], const uint8_t pid[GKX_ID_BYTES], int role)
{
    memcpy (key, pid, GKX_ID_BYTES);
    key[GKX_ID_BYTES] = (uint8_t) role;
}

/* Builds the entries key of one entry. */
static void
s_entry_key (uint8_t key[S_ENTRY_KEY_BYTES], const uint8_t pid[GKX_ID_BYTES], int role,
             uint64_t seq)
{
    s_head_key (key, pid, role);
    s_put_be64 (key + S_HEAD_KEY_BYTES, seq);
}

/* Encodes a partnership record. */
static void
s_prec_encode (uint8_t out[S_PREC_BYTES], const s_prec_t *rec)
{
    out[0] = S_PREC_VERSION;
    out[1] = (uint8_t) rec->pub.self_role;
    out[2] = (uint8_t) (rec->pub.is_frozen ? 1 : 0);
    memcpy (out + 3, rec->pub.advertiser, GKX_ID_BYTES);
    memcpy (out + 3 + GKX_ID_BYTES, rec->pub.publisher, GKX_ID_BYTES);
    s_put_be64 (out + 3 + 2 * GKX_ID_BYTES, rec->pub.created_hlc);
    s_put_be64 (out + 3 + 2 * GKX_ID_BYTES + 8, rec->claimed_seq);
}

/* Decodes a partnership record; returns GKX_ESTORE when it is damaged. */
static int
s_prec_decode (s_prec_t *rec, const uint8_t pid[GKX_ID_BYTES], const MDB_val *val)
{
    const uint8_t *p = val->mv_data;
    if (val->mv_size != S_PREC_BYTES || p[0] != S_PREC_VERSION) {
        return GKX_ESTORE;
    }
    memset (rec, 0, sizeof *rec);
    memcpy (rec->pub.pid, pid, GKX_ID_BYTES);
    rec->pub.self_role = p[1];
    rec->pub.is_frozen = p[2];
    memcpy (rec->pub.advertiser, p + 3, GKX_ID_BYTES);
    memcpy (rec->pub.publisher, p + 3 + GKX_ID_BYTES, GKX_ID_BYTES);
    rec->pub.created_hlc = s_get_be64 (p + 3 + 2 * GKX_ID_BYTES);
    rec->claimed_seq = s_get_be64 (p + 3 + 2 * GKX_ID_BYTES + 8);
    rec->pub.claimed_seq = rec->claimed_seq;
    return GKX_OK;
}

/* Reads a partnership record in txn. */
static int
s_prec_get (gkx_store_t *self, MDB_txn *txn, const uint8_t pid[GKX_ID_BYTES], s_prec_t *rec,
            char *errbuf)
{
    MDB_val key = {GKX_ID_BYTES, (void *) pid};
    MDB_val val;
    int rc = mdb_get (txn, self->partnerships, &key, &val);
    if (rc == MDB_NOTFOUND) {
        return gkx_fail (errbuf, GKX_ENOTFOUND, "store: unknown partnership");
    }
    if (rc != 0) {
        return s_mdb_fail (errbuf, rc, "reading a partnership");
    }
    if (s_prec_decode (rec, pid, &val) != GKX_OK) {
        return gkx_fail (errbuf, GKX_ESTORE, "store: damaged partnership record");
    }
    return GKX_OK;
}

/* Writes a partnership record in txn. */
static int
s_prec_put (gkx_store_t *self, MDB_txn *txn, const s_prec_t *rec, char *errbuf)
{
    uint8_t buf[S_PREC_BYTES];
    s_prec_encode (buf, rec);
    MDB_val key = {GKX_ID_BYTES, (void *) rec->pub.pid};
    MDB_val val = {sizeof buf, buf};
    int rc = mdb_put (txn, self->partnerships, &key, &val, 0);
    return rc == 0 ? GKX_OK : s_mdb_fail (errbuf, rc, "writing a partnership");
}

/* Reads a chain head in txn; an absent head is the empty chain. */
static int
s_head_get (gkx_store_t *self, MDB_txn *txn, const uint8_t pid[GKX_ID_BYTES], int role,
            gkx_head_t *head, char *errbuf)
{
    uint8_t kbuf[S_HEAD_KEY_BYTES];
    s_head_key (kbuf, pid, role);
    MDB_val key = {sizeof kbuf, kbuf};
    MDB_val val;
    memset (head, 0, sizeof *head);
    int rc = mdb_get (txn, self->heads, &key, &val);
    if (rc == MDB_NOTFOUND) {
        return GKX_OK;
    }
    if (rc != 0) {
        return s_mdb_fail (errbuf, rc, "reading a head");
    }
    if (val.mv_size != S_HEAD_VALUE_BYTES) {
        return gkx_fail (errbuf, GKX_ESTORE, "store: damaged head record");
    }
    const uint8_t *p = val.mv_data;
    head->seq = s_get_be64 (p);
    memcpy (head->hash, p + 8, GKX_HASH_BYTES);
    head->hlc = s_get_be64 (p + 8 + GKX_HASH_BYTES);
    head->seen_seq = s_get_be64 (p + 16 + GKX_HASH_BYTES);
    return GKX_OK;
}

/* Stores an entry and moves its chain's head to it. */
static int
s_entry_put (gkx_store_t *self, MDB_txn *txn, const gkx_entry_t *entry, int role,
             char *errbuf)
{
    size_t len;
    const uint8_t *bytes = gkx_entry_bytes (entry, &len);
    uint8_t kbuf[S_ENTRY_KEY_BYTES];
    s_entry_key (kbuf, gkx_entry_pid (entry), role, gkx_entry_seq (entry));
    MDB_val key = {sizeof kbuf, kbuf};
    MDB_val val = {S_ENTRY_PREFIX_BYTES + len, NULL};
    int rc = mdb_put (txn, self->entries, &key, &val, MDB_RESERVE);
    if (rc != 0) {
        return s_mdb_fail (errbuf, rc, "writing an entry");
    }
    uint8_t *out = val.mv_data;
    memcpy (out, gkx_entry_hash (entry), GKX_HASH_BYTES);
    s_put_be64 (out + GKX_HASH_BYTES, gkx_entry_hlc (entry));
    memcpy (out + S_ENTRY_PREFIX_BYTES, bytes, len);

    uint8_t hbuf[S_HEAD_VALUE_BYTES];
    s_put_be64 (hbuf, gkx_entry_seq (entry));
    memcpy (hbuf + 8, gkx_entry_hash (entry), GKX_HASH_BYTES);
    s_put_be64 (hbuf + 8 + GKX_HASH_BYTES, gkx_entry_hlc (entry));
    s_put_be64 (hbuf + 16 + GKX_HASH_BYTES, gkx_entry_seen_seq (entry));
    uint8_t hkey[S_HEAD_KEY_BYTES];
    s_head_key (hkey, gkx_entry_pid (entry), role);
    MDB_val hk = {sizeof hkey, hkey};
    MDB_val hv = {sizeof hbuf, hbuf};
    rc = mdb_put (txn, self->heads, &hk, &hv, 0);
    return rc == 0 ? GKX_OK : s_mdb_fail (errbuf, rc, "writing a head");
}

/* Reads the hash and clock of a held entry; GKX_ENOTFOUND when absent. */
static int
s_entry_meta (gkx_store_t *self, MDB_txn *txn, const uint8_t pid[GKX_ID_BYTES], int role,
              uint64_t seq, uint8_t hash[GKX_HASH_BYTES], uint64_t *hlc, char *errbuf)
{
    uint8_t kbuf[S_ENTRY_KEY_BYTES];
    s_entry_key (kbuf, pid, role, seq);
    MDB_val key = {sizeof kbuf, kbuf};
    MDB_val val;
    int rc = mdb_get (txn, self->entries, &key, &val);
    if (rc == MDB_NOTFOUND) {
        return GKX_ENOTFOUND;
    }
    if (rc != 0) {
        return s_mdb_fail (errbuf, rc, "reading an entry");
    }
    if (val.mv_size < S_ENTRY_PREFIX_BYTES) {
        return gkx_fail (errbuf, GKX_ESTORE, "store: damaged entry record");
    }
    memcpy (hash, val.mv_data, GKX_HASH_BYTES);
    *hlc = s_get_be64 ((const uint8_t *) val.mv_data + GKX_HASH_BYTES);
    return GKX_OK;
}

/* Reads a u64 from meta; 0 when absent. */
static int
s_meta_u64 (gkx_store_t *self, MDB_txn *txn, const char *name, uint64_t *out, char *errbuf)
{
    MDB_val key = {strlen (name), (void *) name};
    MDB_val val;
    *out = 0;
    int rc = mdb_get (txn, self->meta, &key, &val);
    if (rc == MDB_NOTFOUND) {
        return GKX_OK;
    }
    if (rc != 0 || val.mv_size != 8) {
        return rc ? s_mdb_fail (errbuf, rc, "reading metadata")
                  : gkx_fail (errbuf, GKX_ESTORE, "store: damaged metadata %s", name);
    }
    *out = s_get_be64 (val.mv_data);
    return GKX_OK;
}

/* Writes a u64 to meta. */
static int
s_meta_put_u64 (gkx_store_t *self, MDB_txn *txn, const char *name, uint64_t value,
                char *errbuf)
{
    uint8_t buf[8];
    s_put_be64 (buf, value);
    MDB_val key = {strlen (name), (void *) name};
    MDB_val val = {8, buf};
    int rc = mdb_put (txn, self->meta, &key, &val, 0);
    return rc == 0 ? GKX_OK : s_mdb_fail (errbuf, rc, "writing metadata");
}

/* Drops every cached merge state. */
static void
s_cache_clear (gkx_store_t *self)
{
    for (int i = 0; i < S_CACHE_SLOTS; i++) {
        gkx_merge_destroy (&self->cache[i].state);
    }
}

/* Finds the cache slot of pid, or NULL. */
static s_cache_slot_t *
s_cache_find (gkx_store_t *self, const uint8_t pid[GKX_ID_BYTES])
{
    for (int i = 0; i < S_CACHE_SLOTS; i++) {
        if (self->cache[i].state && memcmp (self->cache[i].pid, pid, GKX_ID_BYTES) == 0) {
            self->cache[i].used = ++self->cache_clock;
            return &self->cache[i];
        }
    }
    return NULL;
}

/* Puts a state in the cache (taking it), evicting the least recently used. */
static gkx_merge_t *
s_cache_put (gkx_store_t *self, const uint8_t pid[GKX_ID_BYTES], gkx_merge_t **state_p)
{
    s_cache_slot_t *slot = s_cache_find (self, pid);
    for (int i = 0; !slot && i < S_CACHE_SLOTS; i++) {
        if (!self->cache[i].state) {
            slot = &self->cache[i];
        }
    }
    if (!slot) {
        slot = &self->cache[0];
        for (int i = 1; i < S_CACHE_SLOTS; i++) {
            if (self->cache[i].used < slot->used) {
                slot = &self->cache[i];
            }
        }
    }
    gkx_merge_destroy (&slot->state);
    memcpy (slot->pid, pid, GKX_ID_BYTES);
    slot->state = *state_p;
    slot->used = ++self->cache_clock;
    *state_p = NULL;
    return slot->state;
}

/* Builds a partnership's merge state by replaying its chains (defined below). */
static int s_build_state (gkx_store_t *self, MDB_txn *txn, const uint8_t pid[GKX_ID_BYTES],
                          gkx_merge_t **state_p, char *errbuf);

/* Returns the merge state of pid for use inside txn (borrowed from the cache). */
static int
s_state_get (gkx_store_t *self, MDB_txn *txn, const uint8_t pid[GKX_ID_BYTES],
             gkx_merge_t **state_p, char *errbuf)
{
    s_cache_slot_t *slot = s_cache_find (self, pid);
    if (slot) {
        *state_p = slot->state;
        return GKX_OK;
    }
    gkx_merge_t *state = NULL;
    int rc = s_build_state (self, txn, pid, &state, errbuf);
    if (rc != GKX_OK) {
        return rc;
    }
    *state_p = s_cache_put (self, pid, &state);
    return GKX_OK;
}

/* Records in the paused index whether offer, pid's materialised offer, is
   paused, so counting partnerships by status reads no offer (GET /metrics
   and /v1/status at 10,000 partnerships decoded 10,000 offers). Returns an
   LMDB code. */
static int
s_paused_put (gkx_store_t *self, MDB_txn *txn, const uint8_t pid[GKX_ID_BYTES],
              const gkx_offer_t *offer)
{
    gkx_conversion_terms_t terms;
    gkx_conversion_terms_read (&terms, offer);
    MDB_val key = {GKX_ID_BYTES, (void *) pid};
    if (terms.paused) {
        MDB_val none = {0, NULL};
        return mdb_put (txn, self->paused, &key, &none, 0);
    }
    int rc = mdb_del (txn, self->paused, &key, NULL);
    return rc == MDB_NOTFOUND ? 0 : rc;
}

/* Fills the paused index of a store written before it existed, from every
   materialised offer. Returns an LMDB code. */
static int
s_paused_fill (gkx_store_t *self, MDB_txn *txn)
{
    MDB_cursor *cursor;
    int rc = mdb_cursor_open (txn, self->offers, &cursor);
    if (rc != 0) {
        return rc;
    }
    MDB_val key;
    MDB_val val;
    int mrc = mdb_cursor_get (cursor, &key, &val, MDB_FIRST);
    while (rc == 0 && mrc == 0) {
        gkx_offer_t *offer = NULL;
        if (key.mv_size != GKX_ID_BYTES || val.mv_size <= GKX_OFFER_DIGEST_BYTES
            || gkx_offer_decode (&offer, (const uint8_t *) val.mv_data + GKX_OFFER_DIGEST_BYTES,
                                 val.mv_size - GKX_OFFER_DIGEST_BYTES, NULL) != GKX_OK) {
            rc = MDB_CORRUPTED;
            break;
        }
        rc = s_paused_put (self, txn, key.mv_data, offer);
        gkx_offer_destroy (&offer);
        mrc = mdb_cursor_get (cursor, &key, &val, MDB_NEXT);
    }
    mdb_cursor_close (cursor);
    return rc != 0 ? rc : mrc == MDB_NOTFOUND ? 0 : mrc;
}

/* Writes the materialised offer with its digest. */
static int
s_state_put (gkx_store_t *self, MDB_txn *txn, const uint8_t pid[GKX_ID_BYTES],
             gkx_merge_t *state, char *errbuf)
{
    uint8_t *bytes = NULL;
    size_t len = 0;
    const gkx_offer_t *offer = gkx_merge_offer (state);
    gkx_offer_encode (offer, &bytes, &len);
    MDB_val key = {GKX_ID_BYTES, (void *) pid};
    MDB_val val = {GKX_OFFER_DIGEST_BYTES + len, NULL};
    int rc = mdb_put (txn, self->offers, &key, &val, MDB_RESERVE);
    if (rc == 0) {
        gkx_offer_digest (offer, val.mv_data);
        memcpy ((uint8_t *) val.mv_data + GKX_OFFER_DIGEST_BYTES, bytes, len);
        rc = s_paused_put (self, txn, pid, offer);
    }
    gkx_free (bytes);
    return rc == 0 ? GKX_OK : s_mdb_fail (errbuf, rc, "writing the offer");
}

/* Encodes a delivery record: pid, seq, attempts, last status, the four
   times, then the last error with a two-byte length. */
static size_t
s_delivery_encode (uint8_t *out, const gkx_delivery_t *d)
{
    size_t err_len = strlen (d->last_error);
    memcpy (out, d->pid, GKX_ID_BYTES);
    uint8_t *p = out + GKX_ID_BYTES;
    s_put_be64 (p, d->seq);
    s_put_be64 (p + 8, d->attempts);
    s_put_be64 (p + 16, (uint64_t) (int64_t) d->last_status);
    s_put_be64 (p + 24, d->created_ms);
    s_put_be64 (p + 32, d->last_attempt_ms);
    s_put_be64 (p + 40, d->next_attempt_ms);
    s_put_be64 (p + 48, d->delivered_ms);
    p[56] = (uint8_t) (err_len >> 8);
    p[57] = (uint8_t) err_len;
    memcpy (p + 58, d->last_error, err_len);
    return S_DELIVERY_FIXED_BYTES + err_len;
}

/* Decodes a delivery record; GKX_ESTORE when it is damaged. */
static int
s_delivery_decode (gkx_delivery_t *d, const MDB_val *key, const MDB_val *val)
{
    const uint8_t *p = val->mv_data;
    if (key->mv_size != 8 || val->mv_size < S_DELIVERY_FIXED_BYTES) {
        return GKX_ESTORE;
    }
    memset (d, 0, sizeof *d);
    d->id = s_get_be64 (key->mv_data);
    memcpy (d->pid, p, GKX_ID_BYTES);
    p += GKX_ID_BYTES;
    d->seq = s_get_be64 (p);
    d->attempts = (uint32_t) s_get_be64 (p + 8);
    d->last_status = (int) (int64_t) s_get_be64 (p + 16);
    d->created_ms = s_get_be64 (p + 24);
    d->last_attempt_ms = s_get_be64 (p + 32);
    d->next_attempt_ms = s_get_be64 (p + 40);
    d->delivered_ms = s_get_be64 (p + 48);
    size_t err_len = (size_t) p[56] << 8 | p[57];
    if (err_len >= sizeof d->last_error || S_DELIVERY_FIXED_BYTES + err_len != val->mv_size) {
        return GKX_ESTORE;
    }
    memcpy (d->last_error, p + 58, err_len);
    return GKX_OK;
}

/* Writes a delivery and keeps the due index: a delivery with a next
   attempt is in it, a delivered one without is not. */
static int
s_delivery_write (gkx_store_t *self, MDB_txn *txn, const gkx_delivery_t *d, char *errbuf)
{
    uint8_t kbuf[8];
    s_put_be64 (kbuf, d->id);
    uint8_t vbuf[S_DELIVERY_FIXED_BYTES + sizeof d->last_error];
    MDB_val key = {sizeof kbuf, kbuf};
    MDB_val val = {s_delivery_encode (vbuf, d), vbuf};
    int rc = mdb_put (txn, self->deliveries, &key, &val, 0);
    if (rc != 0) {
        return s_mdb_fail (errbuf, rc, "writing a delivery");
    }
    if (d->next_attempt_ms) {
        MDB_val none = {0, NULL};
        rc = mdb_put (txn, self->pending, &key, &none, 0);
    }
    else {
        rc = mdb_del (txn, self->pending, &key, NULL);
        rc = rc == MDB_NOTFOUND ? 0 : rc;
    }
    return rc == 0 ? GKX_OK : s_mdb_fail (errbuf, rc, "indexing a delivery");
}

/* Encodes a conversion record: version, initial status, status, hold
   days, seq, hlc, time, payout, then the reason and the flag, each with a
   two-byte length. */
static size_t
s_conv_encode (uint8_t *out, size_t size, const gkx_store_conversion_t *c)
{
    size_t reason_len = strlen (c->reason);
    size_t flag_len = strlen (c->flag);
    size_t need = S_CONV_FIXED_BYTES + 2 + reason_len + 2 + flag_len;
    if (need > size) {
        return 0;
    }
    out[0] = S_CONV_VERSION;
    out[1] = (uint8_t) c->initial_status;
    out[2] = (uint8_t) c->status;
    out[3] = 0;
    out[4] = (uint8_t) (c->hold_days >> 24);
    out[5] = (uint8_t) (c->hold_days >> 16);
    out[6] = (uint8_t) (c->hold_days >> 8);
    out[7] = (uint8_t) c->hold_days;
    s_put_be64 (out + 8, c->seq);
    s_put_be64 (out + 16, c->hlc);
    s_put_be64 (out + 24, c->time);
    s_put_be64 (out + 32, (uint64_t) c->payout);
    uint8_t *p = out + S_CONV_FIXED_BYTES;
    p[0] = (uint8_t) (reason_len >> 8);
    p[1] = (uint8_t) reason_len;
    memcpy (p + 2, c->reason, reason_len);
    p += 2 + reason_len;
    p[0] = (uint8_t) (flag_len >> 8);
    p[1] = (uint8_t) flag_len;
    memcpy (p + 2, c->flag, flag_len);
    return need;
}

/* Decodes a conversion record; GKX_ESTORE when it is damaged. */
static int
s_conv_decode (gkx_store_conversion_t *c, const uint8_t id[GKX_HASH_BYTES], const MDB_val *val)
{
    const uint8_t *p = val->mv_data;
    size_t size = val->mv_size;
    if (size < S_CONV_FIXED_BYTES + 4 || p[0] != S_CONV_VERSION) {
        return GKX_ESTORE;
    }
    memset (c, 0, sizeof *c);
    memcpy (c->id, id, GKX_HASH_BYTES);
    c->initial_status = p[1];
    c->status = p[2];
    c->hold_days = (uint32_t) p[4] << 24 | (uint32_t) p[5] << 16 | (uint32_t) p[6] << 8 | p[7];
    c->seq = s_get_be64 (p + 8);
    c->hlc = s_get_be64 (p + 16);
    c->time = s_get_be64 (p + 24);
    c->payout = (int64_t) s_get_be64 (p + 32);
    size_t pos = S_CONV_FIXED_BYTES;
    size_t reason_len = (size_t) p[pos] << 8 | p[pos + 1];
    if (reason_len >= sizeof c->reason || pos + 2 + reason_len + 2 > size) {
        return GKX_ESTORE;
    }
    memcpy (c->reason, p + pos + 2, reason_len);
    pos += 2 + reason_len;
    size_t flag_len = (size_t) p[pos] << 8 | p[pos + 1];
    if (flag_len >= sizeof c->flag || pos + 2 + flag_len != size) {
        return GKX_ESTORE;
    }
    memcpy (c->flag, p + pos + 2, flag_len);
    return GKX_OK;
}

/* Reads a conversion record in txn; GKX_ENOTFOUND when absent. */
static int
s_conv_get (gkx_store_t *self, MDB_txn *txn, const uint8_t pid[GKX_ID_BYTES],
            const uint8_t id[GKX_HASH_BYTES], gkx_store_conversion_t *out, char *errbuf)
{
    uint8_t kbuf[GKX_ID_BYTES + GKX_HASH_BYTES];
    memcpy (kbuf, pid, GKX_ID_BYTES);
    memcpy (kbuf + GKX_ID_BYTES, id, GKX_HASH_BYTES);
    MDB_val key = {sizeof kbuf, kbuf};
    MDB_val val;
    int rc = mdb_get (txn, self->conversions, &key, &val);
    if (rc == MDB_NOTFOUND) {
        return GKX_ENOTFOUND;
    }
    if (rc != 0) {
        return s_mdb_fail (errbuf, rc, "reading a conversion");
    }
    if (s_conv_decode (out, id, &val) != GKX_OK) {
        return gkx_fail (errbuf, GKX_ESTORE, "store: damaged conversion record");
    }
    return GKX_OK;
}

/* Writes a conversion record in txn. */
static int
s_conv_put (gkx_store_t *self, MDB_txn *txn, const uint8_t pid[GKX_ID_BYTES],
            const gkx_store_conversion_t *c, char *errbuf)
{
    uint8_t kbuf[GKX_ID_BYTES + GKX_HASH_BYTES];
    memcpy (kbuf, pid, GKX_ID_BYTES);
    memcpy (kbuf + GKX_ID_BYTES, c->id, GKX_HASH_BYTES);
    uint8_t vbuf[S_CONV_FIXED_BYTES + 4 + sizeof c->reason + sizeof c->flag];
    size_t len = s_conv_encode (vbuf, sizeof vbuf, c);
    assert (len > 0);
    MDB_val key = {sizeof kbuf, kbuf};
    MDB_val val = {len, vbuf};
    int rc = mdb_put (txn, self->conversions, &key, &val, 0);
    return rc == 0 ? GKX_OK : s_mdb_fail (errbuf, rc, "writing a conversion");
}

/* Builds the key of one tally: pid, period tag, period number. */
static void
s_tally_key (uint8_t key[S_TALLY_KEY_BYTES], const uint8_t pid[GKX_ID_BYTES], uint8_t tag,
             uint64_t period)
{
    memcpy (key, pid, GKX_ID_BYTES);
    key[GKX_ID_BYTES] = tag;
    s_put_be64 (key + GKX_ID_BYTES + 1, period);
}

/* Reads one tally (count, payout sum); zeros when absent. */
static int
s_tally_get (gkx_store_t *self, MDB_txn *txn, const uint8_t key[S_TALLY_KEY_BYTES],
             uint64_t *count, int64_t *payout, char *errbuf)
{
    MDB_val k = {S_TALLY_KEY_BYTES, (void *) key};
    MDB_val val;
    *count = 0;
    *payout = 0;
    int rc = mdb_get (txn, self->tallies, &k, &val);
    if (rc == MDB_NOTFOUND) {
        return GKX_OK;
    }
    if (rc != 0) {
        return s_mdb_fail (errbuf, rc, "reading a tally");
    }
    if (val.mv_size != 16) {
        return gkx_fail (errbuf, GKX_ESTORE, "store: damaged tally record");
    }
    *count = s_get_be64 (val.mv_data);
    *payout = (int64_t) s_get_be64 ((const uint8_t *) val.mv_data + 8);
    return GKX_OK;
}

/* The periods a tally is kept for, in the order of the counters. */
static const uint8_t s_tally_tags[] = {'d', 'w', 'm', 't'};

/* The period number of tag for a time's periods. */
static uint64_t
s_tally_period (const gkx_conversion_periods_t *periods, uint8_t tag)
{
    switch (tag) {
        case 'd': return periods->day;
        case 'w': return periods->week;
        case 'm': return periods->month;
        default: return 0;
    }
}

/* Reads the counters of partnership pid for deciding a conversion at time:
   the conversions counted so far in each of its periods. */
static int
s_counters_read (gkx_store_t *self, MDB_txn *txn, const uint8_t pid[GKX_ID_BYTES],
                 uint64_t time, gkx_conversion_counters_t *counters, char *errbuf)
{
    gkx_conversion_counters_init (counters, time);
    uint64_t count[4];
    int64_t payout[4];
    for (size_t i = 0; i < sizeof s_tally_tags; i++) {
        uint8_t key[S_TALLY_KEY_BYTES];
        s_tally_key (key, pid, s_tally_tags[i],
                     s_tally_period (&counters->periods, s_tally_tags[i]));
        int rc = s_tally_get (self, txn, key, &count[i], &payout[i], errbuf);
        if (rc != GKX_OK) {
            return rc;
        }
    }
    counters->day_count = count[0];
    counters->day_payout = payout[0];
    counters->week_count = count[1];
    counters->month_count = count[2];
    counters->month_payout = payout[2];
    counters->total_count = count[3];
    counters->total_payout = payout[3];
    return GKX_OK;
}

/* Adds a payout to a sum, saturating at INT64_MAX as the counters do;
   a saturated sum stays saturated, so both members agree on it. */
static int64_t
s_sum_add (int64_t sum, int64_t payout, int sign)
{
    if (sum == INT64_MAX) {
        return sum;
    }
    if (sign > 0) {
        return payout > INT64_MAX - sum ? INT64_MAX : sum + payout;
    }
    return sum - payout;
}

/* Counts one conversion of payout in (sign 1) or out of (sign -1) the
   tally of tag and period. A count never goes below 0. */
static int
s_tally_step (gkx_store_t *self, MDB_txn *txn, const uint8_t pid[GKX_ID_BYTES], uint8_t tag,
              uint64_t period, int64_t payout, int sign, char *errbuf)
{
    uint8_t key[S_TALLY_KEY_BYTES];
    s_tally_key (key, pid, tag, period);
    uint64_t count;
    int64_t sum;
    int rc = s_tally_get (self, txn, key, &count, &sum, errbuf);
    if (rc != GKX_OK || (sign < 0 && count == 0)) {
        return rc;
    }
    count = sign > 0 ? count + 1 : count - 1;
    sum = s_sum_add (sum, payout, sign);
    uint8_t vbuf[16];
    s_put_be64 (vbuf, count);
    s_put_be64 (vbuf + 8, (uint64_t) sum);
    MDB_val k = {sizeof key, key};
    MDB_val val = {sizeof vbuf, vbuf};
    rc = mdb_put (txn, self->tallies, &k, &val, 0);
    return rc == 0 ? GKX_OK : s_mdb_fail (errbuf, rc, "writing a tally");
}

/* Counts a conversion in (sign 1) or out of (sign -1) its periods' tallies. */
static int
s_tally_add (gkx_store_t *self, MDB_txn *txn, const uint8_t pid[GKX_ID_BYTES], uint64_t time,
             int64_t payout, int sign, char *errbuf)
{
    gkx_conversion_periods_t periods;
    gkx_conversion_periods (&periods, time);
    for (size_t i = 0; i < sizeof s_tally_tags; i++) {
        int rc = s_tally_step (self, txn, pid, s_tally_tags[i],
                               s_tally_period (&periods, s_tally_tags[i]), payout, sign, errbuf);
        if (rc != GKX_OK) {
            return rc;
        }
    }
    return GKX_OK;
}

/* Tally tags of the conversion counts (gkx_store_conversion_counts): every
   conversion by the UTC day of its event time, by the status its entry
   carries, and by its status now. */
#define S_COUNT_DAY 'a'
#define S_COUNT_RECORDED 'i'
#define S_COUNT_CURRENT 's'

/* Counts a new conversion record in the conversion counts. */
static int
s_counts_add (gkx_store_t *self, MDB_txn *txn, const uint8_t pid[GKX_ID_BYTES],
              const gkx_store_conversion_t *record, char *errbuf)
{
    gkx_conversion_periods_t periods;
    gkx_conversion_periods (&periods, record->time);
    int rc = s_tally_step (self, txn, pid, S_COUNT_DAY, periods.day, record->payout, 1, errbuf);
    if (rc == GKX_OK) {
        rc = s_tally_step (self, txn, pid, S_COUNT_RECORDED, (uint64_t) record->initial_status,
                           record->payout, 1, errbuf);
    }
    if (rc == GKX_OK) {
        rc = s_tally_step (self, txn, pid, S_COUNT_CURRENT, (uint64_t) record->status,
                           record->payout, 1, errbuf);
    }
    return rc;
}

/* Moves a conversion record from its status to status in the counts. */
static int
s_counts_move (gkx_store_t *self, MDB_txn *txn, const uint8_t pid[GKX_ID_BYTES],
               const gkx_store_conversion_t *record, int status, char *errbuf)
{
    int rc = s_tally_step (self, txn, pid, S_COUNT_CURRENT, (uint64_t) record->status,
                           record->payout, -1, errbuf);
    if (rc == GKX_OK) {
        rc = s_tally_step (self, txn, pid, S_COUNT_CURRENT, (uint64_t) status, record->payout, 1,
                           errbuf);
    }
    return rc;
}

/* Whether a conversion in this status counts against caps and budgets. */
static int
s_is_counted (int status)
{
    return status == GKX_CONVERSION_APPROVED || status == GKX_CONVERSION_PENDING;
}

/* Unix seconds of a hybrid clock (0 stays 0). */
static uint64_t
s_hlc_seconds (uint64_t hlc)
{
    return gkx_hlc_ms (hlc) / 1000;
}

/* The offer in force in the causal past of an advertiser entry at seq that
   has seen publisher seq seen, with the clock of the write that set its
   status. Borrowed (*offer_p points into the state) when the cut holds
   every offer entry the state holds, else built into *owned_p. */
static int
s_offer_at (gkx_merge_t *state, uint64_t seq, uint64_t seen, const gkx_offer_t **offer_p,
            gkx_offer_t **owned_p, uint64_t *status_hlc_p)
{
    *owned_p = NULL;
    if (gkx_merge_last_seq (state, GKX_ROLE_ADVERTISER) < seq
        && gkx_merge_last_seq (state, GKX_ROLE_PUBLISHER) <= seen) {
        *offer_p = gkx_merge_offer (state);
        *status_hlc_p = gkx_merge_status_hlc (state);
        return GKX_OK;
    }
    int rc = gkx_merge_offer_at (state, seq - 1, seen, owned_p, status_hlc_p);
    *offer_p = *owned_p;
    return rc;
}

/* Queues a webhook delivery of a counterparty entry. */
static int
s_delivery_queue (gkx_store_t *self, MDB_txn *txn, const gkx_entry_t *entry, char *errbuf)
{
    uint64_t last;
    int rc = s_meta_u64 (self, txn, "delivery", &last, errbuf);
    if (rc != GKX_OK) {
        return rc;
    }
    gkx_delivery_t d;
    memset (&d, 0, sizeof d);
    d.id = last + 1;
    memcpy (d.pid, gkx_entry_pid (entry), GKX_ID_BYTES);
    d.seq = gkx_entry_seq (entry);
    d.created_ms = self->clock_ms (self->clock_arg);
    d.next_attempt_ms = d.created_ms;
    rc = s_delivery_write (self, txn, &d, errbuf);
    if (rc == GKX_OK) {
        rc = s_meta_put_u64 (self, txn, "delivery", d.id, errbuf);
    }
    return rc;
}

/* Encodes a notice record: version, role, kind, prior status, pid, seq,
   queued time. */
static void
s_notice_encode (uint8_t out[S_NOTICE_BYTES], const gkx_notice_t *n)
{
    out[0] = S_NOTICE_VERSION;
    out[1] = (uint8_t) n->role;
    out[2] = (uint8_t) n->kind;
    out[3] = (uint8_t) n->prior;
    memcpy (out + 4, n->pid, GKX_ID_BYTES);
    s_put_be64 (out + 4 + GKX_ID_BYTES, n->seq);
    s_put_be64 (out + 12 + GKX_ID_BYTES, n->queued_ms);
}

/* Decodes a notice record; GKX_ESTORE when it is damaged. */
static int
s_notice_decode (gkx_notice_t *n, const MDB_val *key, const MDB_val *val)
{
    const uint8_t *p = val->mv_data;
    if (key->mv_size != 8 || val->mv_size != S_NOTICE_BYTES || p[0] != S_NOTICE_VERSION) {
        return GKX_ESTORE;
    }
    memset (n, 0, sizeof *n);
    n->id = s_get_be64 (key->mv_data);
    n->role = p[1];
    n->kind = p[2];
    n->prior = p[3];
    memcpy (n->pid, p + 4, GKX_ID_BYTES);
    n->seq = s_get_be64 (p + 4 + GKX_ID_BYTES);
    n->queued_ms = s_get_be64 (p + 12 + GKX_ID_BYTES);
    return GKX_OK;
}

/* Queues a notice in txn: its record, and its place among the waiting. */
static int
s_notice_queue (gkx_store_t *self, MDB_txn *txn, const uint8_t pid[GKX_ID_BYTES], int role,
                int kind, uint64_t seq, int prior, char *errbuf)
{
    uint64_t last;
    int rc = s_meta_u64 (self, txn, "notice", &last, errbuf);
    if (rc != GKX_OK) {
        return rc;
    }
    gkx_notice_t n;
    memset (&n, 0, sizeof n);
    n.id = last + 1;
    memcpy (n.pid, pid, GKX_ID_BYTES);
    n.role = role;
    n.kind = kind;
    n.seq = seq;
    n.prior = prior;
    n.queued_ms = self->clock_ms (self->clock_arg);
    uint8_t kbuf[8];
    uint8_t vbuf[S_NOTICE_BYTES];
    s_put_be64 (kbuf, n.id);
    s_notice_encode (vbuf, &n);
    MDB_val key = {sizeof kbuf, kbuf};
    MDB_val val = {sizeof vbuf, vbuf};
    MDB_val none = {0, NULL};
    rc = mdb_put (txn, self->notices, &key, &val, 0);
    if (rc == 0) {
        rc = mdb_put (txn, self->waiting, &key, &none, 0);
    }
    if (rc != 0) {
        return s_mdb_fail (errbuf, rc, "queueing a notice");
    }
    return s_meta_put_u64 (self, txn, "notice", n.id, errbuf);
}

/* Whether a counterparty entry of kind is a change worth a notice. */
static int
s_is_noticed (int kind)
{
    return kind == GKX_KIND_GENESIS || kind == GKX_KIND_EDIT || kind == GKX_KIND_PROPOSE
           || kind == GKX_KIND_ANSWER || kind == GKX_KIND_CONVERSION_STATUS;
}

/* Reads, before a counterparty status change is derived, the status it
   changes, for its notice; 0 when the body does not decode or the
   conversion is not held (deriving the entry then refuses or ignores it). */
static int
s_notice_prior (gkx_store_t *self, MDB_txn *txn, const gkx_entry_t *entry, int *prior_p,
                char *errbuf)
{
    *prior_p = 0;
    if (gkx_entry_kind (entry) != GKX_KIND_CONVERSION_STATUS) {
        return GKX_OK;
    }
    size_t body_len;
    const uint8_t *body = gkx_entry_body (entry, &body_len);
    gkx_conversion_change_t change;
    char cerr[GKX_ERRBUF_BYTES];
    if (gkx_conversion_change_decode (&change, body, body_len, cerr) != GKX_OK) {
        return GKX_OK;
    }
    gkx_store_conversion_t record;
    int rc = s_conv_get (self, txn, gkx_entry_pid (entry), change.conversion, &record, errbuf);
    if (rc == GKX_OK) {
        *prior_p = record.status;
    }
    return rc == GKX_ENOTFOUND ? GKX_OK : rc;
}

/* Queues the notice of an ingested entry, when the counterparty wrote it
   and it is a change worth one. */
static int
s_notice_entry (gkx_store_t *self, MDB_txn *txn, const gkx_entry_t *entry, int role, int prior,
                char *errbuf)
{
    if (memcmp (gkx_entry_author (entry), self->self_id, GKX_ID_BYTES) == 0
        || !s_is_noticed (gkx_entry_kind (entry))) {
        return GKX_OK;
    }
    return s_notice_queue (self, txn, gkx_entry_pid (entry), role, gkx_entry_kind (entry),
                           gkx_entry_seq (entry), prior, errbuf);
}

/* Bytes of the encoded message record of m before its bodies. */
static size_t
s_message_head_bytes (const gkx_message_t *m)
{
    return S_MESSAGE_FIXED_BYTES + 2 + strlen (m->subject) + 2 + strlen (m->last_error) + 2
           + 8 * m->notice_count;
}

/* Writes a two-byte big-endian length; returns the byte after it. */
static uint8_t *
s_put_len16 (uint8_t *p, size_t len)
{
    p[0] = (uint8_t) (len >> 8);
    p[1] = (uint8_t) len;
    return p + 2;
}

/* Encodes the head of a message record into out (s_message_head_bytes). */
static void
s_message_head_encode (uint8_t *out, const gkx_message_t *m)
{
    size_t subject_len = strlen (m->subject);
    size_t error_len = strlen (m->last_error);
    out[0] = S_MESSAGE_VERSION;
    out[1] = (uint8_t) m->state;
    memcpy (out + 2, m->pid, GKX_ID_BYTES);
    uint8_t *p = out + 2 + GKX_ID_BYTES;
    p[0] = (uint8_t) (m->attempts >> 24);
    p[1] = (uint8_t) (m->attempts >> 16);
    p[2] = (uint8_t) (m->attempts >> 8);
    p[3] = (uint8_t) m->attempts;
    s_put_be64 (p + 4, m->created_ms);
    s_put_be64 (p + 12, m->last_attempt_ms);
    s_put_be64 (p + 20, m->next_attempt_ms);
    s_put_be64 (p + 28, m->sent_ms);
    p = s_put_len16 (p + 36, subject_len);
    memcpy (p, m->subject, subject_len);
    p = s_put_len16 (p + subject_len, error_len);
    memcpy (p, m->last_error, error_len);
    p = s_put_len16 (p + error_len, m->notice_count);
    for (size_t i = 0; i < m->notice_count; i++) {
        s_put_be64 (p + 8 * i, m->notices[i]);
    }
}

/* Reads a length of width bytes at *p within end; advances *p. Returns
   SIZE_MAX when the record ends first. */
static size_t
s_get_len (const uint8_t **p, const uint8_t *end, size_t width)
{
    if ((size_t) (end - *p) < width) {
        return SIZE_MAX;
    }
    size_t len = 0;
    for (size_t i = 0; i < width; i++) {
        len = len << 8 | (*p)[i];
    }
    *p += width;
    return len <= (size_t) (end - *p) ? len : SIZE_MAX;
}

/* Decodes a message record; *body_p and *body_len_p (may be NULL) get the
   bodies' part of the value, borrowed from it. GKX_ESTORE when damaged. */
static int
s_message_decode (gkx_message_t *m, const MDB_val *key, const MDB_val *val,
                  const uint8_t **body_p, size_t *body_len_p)
{
    const uint8_t *p = val->mv_data;
    const uint8_t *end = p + val->mv_size;
    if (key->mv_size != 8 || val->mv_size < S_MESSAGE_FIXED_BYTES || p[0] != S_MESSAGE_VERSION) {
        return GKX_ESTORE;
    }
    memset (m, 0, sizeof *m);
    m->id = s_get_be64 (key->mv_data);
    m->state = p[1];
    memcpy (m->pid, p + 2, GKX_ID_BYTES);
    p += 2 + GKX_ID_BYTES;
    m->attempts = (uint32_t) p[0] << 24 | (uint32_t) p[1] << 16 | (uint32_t) p[2] << 8 | p[3];
    m->created_ms = s_get_be64 (p + 4);
    m->last_attempt_ms = s_get_be64 (p + 12);
    m->next_attempt_ms = s_get_be64 (p + 20);
    m->sent_ms = s_get_be64 (p + 28);
    p += 36;
    size_t len = s_get_len (&p, end, 2);
    if (len >= sizeof m->subject) {
        return GKX_ESTORE;
    }
    memcpy (m->subject, p, len);
    p += len;
    len = s_get_len (&p, end, 2);
    if (len >= sizeof m->last_error) {
        return GKX_ESTORE;
    }
    memcpy (m->last_error, p, len);
    p += len;
    size_t count = s_get_len (&p, end, 2);
    if (count == SIZE_MAX || count > GKX_MESSAGE_NOTICES_MAX || (size_t) (end - p) < 8 * count) {
        return GKX_ESTORE;
    }
    m->notice_count = count;
    for (size_t i = 0; i < count; i++) {
        m->notices[i] = s_get_be64 (p + 8 * i);
    }
    p += 8 * count;
    if (body_p) {
        *body_p = p;
        *body_len_p = (size_t) (end - p);
    }
    return GKX_OK;
}

/* Writes message m with its bodies' part (body_len bytes, as encoded) and
   keeps the due index: a message not sent is in it, a sent one is not. */
static int
s_message_write (gkx_store_t *self, MDB_txn *txn, const gkx_message_t *m, const uint8_t *body,
                 size_t body_len, char *errbuf)
{
    uint8_t kbuf[8];
    s_put_be64 (kbuf, m->id);
    size_t head = s_message_head_bytes (m);
    MDB_val key = {sizeof kbuf, kbuf};
    MDB_val val = {head + body_len, NULL};
    int rc = mdb_put (txn, self->messages, &key, &val, MDB_RESERVE);
    if (rc != 0) {
        return s_mdb_fail (errbuf, rc, "writing a message");
    }
    s_message_head_encode (val.mv_data, m);
    memcpy ((uint8_t *) val.mv_data + head, body, body_len);
    if (m->state != GKX_MESSAGE_SENT) {
        MDB_val none = {0, NULL};
        rc = mdb_put (txn, self->outbox, &key, &none, 0);
    }
    else {
        rc = mdb_del (txn, self->outbox, &key, NULL);
        rc = rc == MDB_NOTFOUND ? 0 : rc;
    }
    return rc == 0 ? GKX_OK : s_mdb_fail (errbuf, rc, "indexing a message");
}

/* Derives a conversion entry: indexes it by dedupe key, keeps its record
   and counts it. On the publisher's side, it is checked against the rules
   in its causal past; a mismatch is kept as the record's flag rather than
   refused, since refusing would stop the advertiser's chain for good. */
static int
s_derive_conversion (gkx_store_t *self, MDB_txn *txn, const gkx_entry_t *entry,
                     const gkx_conversion_t *conversion, int local, char *errbuf)
{
    const uint8_t *pid = gkx_entry_pid (entry);
    uint8_t kbuf[GKX_ID_BYTES + GKX_CONVERSION_DEDUPE_BYTES];
    memcpy (kbuf, pid, GKX_ID_BYTES);
    memcpy (kbuf + GKX_ID_BYTES, conversion->dedupe, GKX_CONVERSION_DEDUPE_BYTES);
    MDB_val key = {sizeof kbuf, kbuf};
    MDB_val val = {GKX_HASH_BYTES, (void *) gkx_entry_hash (entry)};
    int rc = mdb_put (txn, self->dedupe, &key, &val, MDB_NOOVERWRITE);
    if (rc != 0 && rc != MDB_KEYEXIST) {
        return s_mdb_fail (errbuf, rc, "indexing a conversion");
    }
    gkx_merge_t *state = NULL;
    rc = s_state_get (self, txn, pid, &state, errbuf);
    if (rc != GKX_OK) {
        return rc;
    }
    const gkx_offer_t *offer = NULL;
    gkx_offer_t *owned = NULL;
    uint64_t status_hlc = 0;
    rc = s_offer_at (state, gkx_entry_seq (entry), gkx_entry_seen_seq (entry), &offer, &owned,
                     &status_hlc);
    if (rc != GKX_OK) {
        return gkx_fail (errbuf, rc, "store: the offer at a conversion's causal cut");
    }
    gkx_conversion_terms_t terms;
    gkx_conversion_terms_read (&terms, offer);
    gkx_store_conversion_t record;
    memset (&record, 0, sizeof record);
    memcpy (record.id, gkx_entry_hash (entry), GKX_HASH_BYTES);
    record.seq = gkx_entry_seq (entry);
    record.hlc = gkx_entry_hlc (entry);
    record.time = conversion->time;
    record.payout = conversion->payout;
    record.hold_days = terms.hold_days;
    record.initial_status = conversion->status;
    record.status = conversion->status;
    snprintf (record.reason, sizeof record.reason, "%s", conversion->reason);
    if (!local) {
        gkx_conversion_counters_t counters;
        rc = s_counters_read (self, txn, pid, conversion->time, &counters, errbuf);
        if (rc != GKX_OK) {
            gkx_offer_destroy (&owned);
            return rc;
        }
        counters.paused_since = s_hlc_seconds (status_hlc);
        if (gkx_conversion_verify_terms (conversion, offer, &terms, &counters, record.flag) != GKX_OK
            && !record.flag[0]) {
            snprintf (record.flag, sizeof record.flag, "the terms give another decision");
        }
    }
    gkx_offer_destroy (&owned);
    rc = s_conv_put (self, txn, pid, &record, errbuf);
    if (rc == GKX_OK && s_is_counted (record.status)) {
        rc = s_tally_add (self, txn, pid, record.time, record.payout, 1, errbuf);
    }
    if (rc == GKX_OK) {
        rc = s_counts_add (self, txn, pid, &record, errbuf);
    }
    return rc;
}

/* Derives a status change: the conversion's record and tallies follow it.
   A change the rules refuse is refused when this node writes it; received
   from the advertiser it is held in the log but changes nothing, as in
   every report (gkx_report_add_change). */
static int
s_derive_change (gkx_store_t *self, MDB_txn *txn, const gkx_entry_t *entry,
                 const gkx_conversion_change_t *change, int local, char *errbuf)
{
    const uint8_t *pid = gkx_entry_pid (entry);
    gkx_store_conversion_t record;
    int rc = s_conv_get (self, txn, pid, change->conversion, &record, errbuf);
    if (rc == GKX_ENOTFOUND) {
        return local ? gkx_fail (errbuf, GKX_ENOTFOUND, "store: no such conversion") : GKX_OK;
    }
    if (rc != GKX_OK) {
        return rc;
    }
    gkx_conversion_state_t cs = {record.status, record.time, record.hlc, record.hold_days};
    char cerr[GKX_ERRBUF_BYTES] = "";
    if (gkx_conversion_change_check (&cs, change->status, gkx_entry_hlc (entry), cerr) != GKX_OK) {
        return local ? gkx_fail (errbuf, GKX_EPOLICY, "%s", cerr) : GKX_OK;
    }
    int was = s_is_counted (record.status);
    int is = s_is_counted (change->status);
    if (was != is) {
        rc = s_tally_add (self, txn, pid, record.time, record.payout, is ? 1 : -1, errbuf);
        if (rc != GKX_OK) {
            return rc;
        }
    }
    rc = s_counts_move (self, txn, pid, &record, change->status, errbuf);
    if (rc != GKX_OK) {
        return rc;
    }
    record.status = change->status;
    snprintf (record.reason, sizeof record.reason, "%s", change->reason);
    return s_conv_put (self, txn, pid, &record, errbuf);
}

/* Derives a conversion or status-change entry; only the advertiser writes
   them. */
static int
s_derive_ledger (gkx_store_t *self, MDB_txn *txn, const gkx_entry_t *entry, int role,
                 char *errbuf)
{
    int kind = gkx_entry_kind (entry);
    uint64_t seq = gkx_entry_seq (entry);
    int local = memcmp (gkx_entry_author (entry), self->self_id, GKX_ID_BYTES) == 0;
    if (role != GKX_ROLE_ADVERTISER) {
        return gkx_fail (errbuf, GKX_EPOLICY, "%s seq %llu: a %s is written by the advertiser only",
                         gkx_role_name (role), (unsigned long long) seq, gkx_kind_name (kind));
    }
    size_t body_len;
    const uint8_t *body = gkx_entry_body (entry, &body_len);
    char cerr[GKX_ERRBUF_BYTES] = "";
    int rc;
    if (kind == GKX_KIND_CONVERSION_STATUS) {
        gkx_conversion_change_t change;
        rc = gkx_conversion_change_decode (&change, body, body_len, cerr);
        if (rc == GKX_OK) {
            rc = s_derive_change (self, txn, entry, &change, local, errbuf);
        }
    }
    else {
        gkx_conversion_t *conversion = gkx_zalloc (sizeof *conversion);
        rc = gkx_conversion_decode (conversion, body, body_len, cerr);
        if (rc == GKX_OK) {
            rc = s_derive_conversion (self, txn, entry, conversion, local, errbuf);
        }
        gkx_free (conversion);
    }
    if (cerr[0]) {
        return gkx_fail (errbuf, GKX_EBODY, "%s seq %llu: %s", gkx_role_name (role),
                         (unsigned long long) seq, cerr);
    }
    if (rc == GKX_OK && !local && self->deliveries_on) {
        rc = s_delivery_queue (self, txn, entry, errbuf);
    }
    return rc;
}

/* Updates what an entry derives (the offer's merge state) inside txn.
   A body the merge cannot read refuses the entry (GKX_EBODY). */
static int
s_derive (gkx_store_t *self, MDB_txn *txn, const gkx_entry_t *entry, int role,
          const uint8_t advertiser[GKX_ID_BYTES], const uint8_t publisher[GKX_ID_BYTES],
          char *errbuf)
{
    int kind = gkx_entry_kind (entry);
    const uint8_t *pid = gkx_entry_pid (entry);
    gkx_merge_t *state = NULL;
    char merr[GKX_ERRBUF_BYTES] = "";
    int rc;
    if (kind == GKX_KIND_GENESIS) {
        msgpack_sbuffer offer;
        msgpack_sbuffer policy;
        msgpack_sbuffer_init (&offer);
        msgpack_sbuffer_init (&policy);
        gkx_genesis_values (entry, &offer, &policy);
        rc = gkx_merge_open (&state, advertiser, publisher, (const uint8_t *) offer.data,
                             offer.size, (const uint8_t *) policy.data, policy.size, merr);
        msgpack_sbuffer_destroy (&offer);
        msgpack_sbuffer_destroy (&policy);
        if (rc != GKX_OK) {
            return gkx_fail (errbuf, GKX_EBODY, "genesis: %s", merr);
        }
        return s_state_put (self, txn, pid, s_cache_put (self, pid, &state), errbuf);
    }
    if (kind == GKX_KIND_CONVERSION || kind == GKX_KIND_CONVERSION_STATUS) {
        return s_derive_ledger (self, txn, entry, role, errbuf);
    }
    if (kind != GKX_KIND_EDIT && kind != GKX_KIND_PROPOSE && kind != GKX_KIND_ANSWER) {
        return GKX_OK;
    }
    rc = s_state_get (self, txn, pid, &state, errbuf);
    if (rc != GKX_OK) {
        return rc;
    }
    size_t body_len;
    const uint8_t *body = gkx_entry_body (entry, &body_len);
    gkx_merge_entry_t me = {kind, role, gkx_entry_author (entry), gkx_entry_seq (entry),
                            gkx_entry_seen_seq (entry), gkx_entry_hlc (entry),
                            gkx_entry_hash (entry), body, body_len};
    rc = gkx_merge_apply (state, &me, merr);
    if (rc != GKX_OK) {
        return gkx_fail (errbuf, rc == GKX_EBODY ? GKX_EBODY : rc, "%s seq %llu: %s",
                         gkx_role_name (role), (unsigned long long) gkx_entry_seq (entry), merr);
    }
    return s_state_put (self, txn, pid, state, errbuf);
}

/* Doubles the map; only called with no transaction open. */
static int
s_grow (gkx_store_t *self, char *errbuf)
{
    MDB_envinfo info;
    mdb_env_info (self->env, &info);
    int rc = mdb_env_set_mapsize (self->env, info.me_mapsize * 2);
    return rc == 0 ? GKX_OK : s_mdb_fail (errbuf, rc, "growing the map");
}

/* A transaction body: returns GKX_OK, a GKX_E* code or S_MAP_FULL. */
typedef int (s_txn_fn) (gkx_store_t *self, MDB_txn *txn, void *ctx, char *errbuf);

/* Codes whose writes (evidence, claims) are committed although the call fails. */
static int
s_commits_on_error (int rc)
{
    return rc == GKX_EEQUIVOCATION || rc == GKX_EAHEAD;
}

/* Runs fn in one write transaction, growing the map and retrying when full. */
static int
s_write (gkx_store_t *self, s_txn_fn *fn, void *ctx, char *errbuf)
{
    for (;;) {
        MDB_txn *txn = NULL;
        int rc = mdb_txn_begin (self->env, NULL, 0, &txn);
        if (rc == MDB_MAP_RESIZED) {
            rc = mdb_env_set_mapsize (self->env, 0);
            if (rc == 0) {
                continue;
            }
        }
        if (rc != 0) {
            return s_mdb_fail (errbuf, rc, "beginning a write transaction");
        }
        int result = fn (self, txn, ctx, errbuf);
        if (result == S_MAP_FULL) {
            mdb_txn_abort (txn);
            s_cache_clear (self);
            rc = s_grow (self, errbuf);
            if (rc != GKX_OK) {
                return rc;
            }
            continue;
        }
        if (result != GKX_OK && !s_commits_on_error (result)) {
            mdb_txn_abort (txn);
            s_cache_clear (self);
            return result;
        }
        rc = mdb_txn_commit (txn);
        if (rc != 0) {
            s_cache_clear (self);
        }
        if (rc == MDB_MAP_FULL) {
            rc = s_grow (self, errbuf);
            if (rc != GKX_OK) {
                return rc;
            }
            continue;
        }
        if (rc != 0) {
            return s_mdb_fail (errbuf, rc, "committing");
        }
        return result;
    }
}

/* Begins a read-only transaction. */
static int
s_read_begin (gkx_store_t *self, MDB_txn **txn, char *errbuf)
{
    int rc = mdb_txn_begin (self->env, NULL, MDB_RDONLY, txn);
    if (rc == MDB_MAP_RESIZED) {
        mdb_env_set_mapsize (self->env, 0);
        rc = mdb_txn_begin (self->env, NULL, MDB_RDONLY, txn);
    }
    return rc == 0 ? GKX_OK : s_mdb_fail (errbuf, rc, "beginning a read transaction");
}

/* Context of the open transaction: creates or checks the metadata. */
typedef struct {
    int format_found;
    uint32_t format;
} s_open_ctx_t;

/* Records format and node id in a new store, or checks them in an old one. */
static int
s_open_txn (gkx_store_t *self, MDB_txn *txn, void *arg, char *errbuf)
{
    (void) arg;
    int rc = mdb_dbi_open (txn, "meta", MDB_CREATE, &self->meta);
    if (rc == 0) {
        rc = mdb_dbi_open (txn, "partnerships", MDB_CREATE, &self->partnerships);
    }
    if (rc == 0) {
        rc = mdb_dbi_open (txn, "heads", MDB_CREATE, &self->heads);
    }
    if (rc == 0) {
        rc = mdb_dbi_open (txn, "entries", MDB_CREATE, &self->entries);
    }
    if (rc == 0) {
        rc = mdb_dbi_open (txn, "evidence", MDB_CREATE, &self->evidence);
    }
    if (rc == 0) {
        rc = mdb_dbi_open (txn, "offers", MDB_CREATE, &self->offers);
    }
    if (rc == 0) {
        rc = mdb_dbi_open (txn, "peers", MDB_CREATE, &self->peers);
    }
    if (rc == 0) {
        rc = mdb_dbi_open (txn, "directory", MDB_CREATE, &self->directory);
    }
    if (rc == 0) {
        rc = mdb_dbi_open (txn, "dedupe", MDB_CREATE, &self->dedupe);
    }
    if (rc == 0) {
        rc = mdb_dbi_open (txn, "conversions", MDB_CREATE, &self->conversions);
    }
    if (rc == 0) {
        rc = mdb_dbi_open (txn, "tallies", MDB_CREATE, &self->tallies);
    }
    if (rc == 0) {
        rc = mdb_dbi_open (txn, "deliveries", MDB_CREATE, &self->deliveries);
    }
    if (rc == 0) {
        rc = mdb_dbi_open (txn, "pending", MDB_CREATE, &self->pending);
    }
    if (rc == 0) {
        rc = mdb_dbi_open (txn, "notices", MDB_CREATE, &self->notices);
    }
    if (rc == 0) {
        rc = mdb_dbi_open (txn, "waiting", MDB_CREATE, &self->waiting);
    }
    if (rc == 0) {
        rc = mdb_dbi_open (txn, "messages", MDB_CREATE, &self->messages);
    }
    if (rc == 0) {
        rc = mdb_dbi_open (txn, "outbox", MDB_CREATE, &self->outbox);
    }
    if (rc == 0) {
        rc = mdb_dbi_open (txn, "paused", 0, &self->paused);
        if (rc == MDB_NOTFOUND) {
            rc = mdb_dbi_open (txn, "paused", MDB_CREATE, &self->paused);
            if (rc == 0) {
                rc = s_paused_fill (self, txn);
            }
        }
    }
    if (rc != 0) {
        return s_mdb_fail (errbuf, rc, "opening databases");
    }
    MDB_val key = {6, "format"};
    MDB_val val;
    rc = mdb_get (txn, self->meta, &key, &val);
    if (rc == MDB_NOTFOUND) {
        uint8_t fbuf[4] = {0, 0, 0, GKX_STORE_FORMAT};
        MDB_val fval = {4, fbuf};
        MDB_val skey = {4, "self"};
        MDB_val sval = {GKX_ID_BYTES, self->self_id};
        rc = mdb_put (txn, self->meta, &key, &fval, 0);
        if (rc == 0) {
            rc = mdb_put (txn, self->meta, &skey, &sval, 0);
        }
        return rc == 0 ? GKX_OK : s_mdb_fail (errbuf, rc, "writing metadata");
    }
    if (rc != 0) {
        return s_mdb_fail (errbuf, rc, "reading metadata");
    }
    const uint8_t *f = val.mv_data;
    uint32_t format = val.mv_size == 4
        ? ((uint32_t) f[0] << 24 | (uint32_t) f[1] << 16 | (uint32_t) f[2] << 8 | f[3]) : 0;
    if (format != GKX_STORE_FORMAT) {
        return gkx_fail (errbuf, GKX_EFORMAT,
                         "store %s has format version %u; this build reads version %d",
                         self->path, format, GKX_STORE_FORMAT);
    }
    MDB_val skey = {4, "self"};
    rc = mdb_get (txn, self->meta, &skey, &val);
    if (rc != 0 || val.mv_size != GKX_ID_BYTES) {
        return gkx_fail (errbuf, GKX_ESTORE, "store %s: node id missing", self->path);
    }
    if (memcmp (val.mv_data, self->self_id, GKX_ID_BYTES) != 0) {
        return gkx_fail (errbuf, GKX_EINVAL, "store %s belongs to another node id", self->path);
    }
    return GKX_OK;
}

/* Builds, once, the conversion counts of a store written before they were
   kept, from its conversion records; meta "counts" says they are whole. */
static int
s_counts_txn (gkx_store_t *self, MDB_txn *txn, void *arg, char *errbuf)
{
    (void) arg;
    uint64_t whole = 0;
    int rc = s_meta_u64 (self, txn, "counts", &whole, errbuf);
    if (rc != GKX_OK || whole) {
        return rc;
    }
    MDB_cursor *cursor;
    int mrc = mdb_cursor_open (txn, self->conversions, &cursor);
    if (mrc != 0) {
        return s_mdb_fail (errbuf, mrc, "reading conversions");
    }
    MDB_val key;
    MDB_val val;
    mrc = mdb_cursor_get (cursor, &key, &val, MDB_FIRST);
    while (rc == GKX_OK && mrc == 0) {
        gkx_store_conversion_t record;
        uint8_t pid[GKX_ID_BYTES];
        if (key.mv_size != GKX_ID_BYTES + GKX_HASH_BYTES
            || s_conv_decode (&record, (const uint8_t *) key.mv_data + GKX_ID_BYTES, &val)
                   != GKX_OK) {
            rc = gkx_fail (errbuf, GKX_ESTORE, "store: damaged conversion record");
            break;
        }
        memcpy (pid, key.mv_data, GKX_ID_BYTES);
        rc = s_counts_add (self, txn, pid, &record, errbuf);
        mrc = mdb_cursor_get (cursor, &key, &val, MDB_NEXT);
    }
    mdb_cursor_close (cursor);
    if (rc == GKX_OK && mrc != MDB_NOTFOUND) {
        rc = s_mdb_fail (errbuf, mrc, "reading conversions");
    }
    return rc == GKX_OK ? s_meta_put_u64 (self, txn, "counts", 1, errbuf) : rc;
}

int
gkx_store_open (gkx_store_t **self_p, const char *dir, const uint8_t self_id[GKX_ID_BYTES],
                const gkx_store_options_t *options, char *errbuf)
{
    assert (self_p && dir && self_id);
    if (mkdir (dir, 0700) != 0 && errno != EEXIST) {
        return gkx_fail (errbuf, GKX_EIO, "store %s: cannot create: %s", dir, strerror (errno));
    }
    gkx_store_t *self = gkx_zalloc (sizeof *self);
    snprintf (self->path, sizeof self->path, "%s", dir);
    memcpy (self->self_id, self_id, GKX_ID_BYTES);
    self->clock_ms = options && options->clock_ms ? options->clock_ms : s_default_clock;
    self->clock_arg = options ? options->clock_arg : NULL;
    self->deliveries_on = options ? options->deliveries : 0;
    self->notices_on = options ? options->notices : 0;
    size_t map_bytes = options && options->map_bytes ? options->map_bytes : GKX_STORE_MAP_BYTES;

    int rc = mdb_env_create (&self->env);
    if (rc == 0) {
        rc = mdb_env_set_maxdbs (self->env, S_MAX_DBS);
    }
    if (rc == 0) {
        rc = mdb_env_set_maxreaders (self->env, S_MAX_READERS);
    }
    if (rc == 0) {
        rc = mdb_env_set_mapsize (self->env, map_bytes);
    }
    if (rc == 0) {
        rc = mdb_env_open (self->env, dir, MDB_NOTLS, 0600);
    }
    if (rc != 0) {
        rc = gkx_fail (errbuf, rc == ENOENT || rc == EACCES ? GKX_EIO : GKX_ESTORE,
                       "store %s: cannot open: %s", dir, mdb_strerror (rc));
        gkx_store_close (&self);
        return rc;
    }
    /* A previous map may be larger than asked for; take whichever is larger. */
    MDB_envinfo info;
    mdb_env_info (self->env, &info);
    if (info.me_mapsize < map_bytes) {
        mdb_env_set_mapsize (self->env, map_bytes);
    }
    int dead = 0;
    mdb_reader_check (self->env, &dead);
    rc = s_write (self, s_open_txn, NULL, errbuf);
    if (rc == GKX_OK) {
        rc = s_write (self, s_counts_txn, NULL, errbuf);
    }
    if (rc != GKX_OK) {
        gkx_store_close (&self);
        return rc;
    }
    *self_p = self;
    return GKX_OK;
}

void
gkx_store_close (gkx_store_t **self_p)
{
    if (!self_p || !*self_p) {
        return;
    }
    s_cache_clear (*self_p);
    if ((*self_p)->env) {
        mdb_env_close ((*self_p)->env);
    }
    gkx_free (*self_p);
    *self_p = NULL;
}

size_t
gkx_store_map_bytes (const gkx_store_t *self)
{
    MDB_envinfo info;
    mdb_env_info (self->env, &info);
    return info.me_mapsize;
}

uint64_t
gkx_store_used_bytes (const gkx_store_t *self)
{
    assert (self);
    MDB_envinfo info;
    MDB_stat stat;
    if (mdb_env_info (self->env, &info) != 0 || mdb_env_stat (self->env, &stat) != 0) {
        return 0;
    }
    return ((uint64_t) info.me_last_pgno + 1) * stat.ms_psize;
}

/* Role of author in a partnership, or 0 when not a member. */
static int
s_role_of (const s_prec_t *rec, const uint8_t author[GKX_ID_BYTES])
{
    if (memcmp (author, rec->pub.advertiser, GKX_ID_BYTES) == 0) {
        return GKX_ROLE_ADVERTISER;
    }
    if (memcmp (author, rec->pub.publisher, GKX_ID_BYTES) == 0) {
        return GKX_ROLE_PUBLISHER;
    }
    return 0;
}

/* The other member's role. */
static int
s_other_role (int role)
{
    return role == GKX_ROLE_ADVERTISER ? GKX_ROLE_PUBLISHER : GKX_ROLE_ADVERTISER;
}

/* Context of an append or a share. */
typedef struct {
    const gkx_identity_t *identity;
    const uint8_t *pid;
    int kind;
    const uint8_t *body;
    size_t body_len;
    gkx_entry_t *entry;         /* out: the entry written */
    /* share only */
    const uint8_t *publisher;
    const uint8_t *nonce;
} s_append_ctx_t;

/* Builds, signs and stores the next local entry of a chain. */
static int
s_append_entry (gkx_store_t *self, MDB_txn *txn, s_append_ctx_t *ctx, const s_prec_t *rec,
                char *errbuf)
{
    gkx_head_t own;
    gkx_head_t other;
    uint64_t last_hlc;
    int role = rec->pub.self_role;
    int rc = s_head_get (self, txn, ctx->pid, role, &own, errbuf);
    if (rc == GKX_OK) {
        rc = s_head_get (self, txn, ctx->pid, s_other_role (role), &other, errbuf);
    }
    if (rc == GKX_OK) {
        rc = s_meta_u64 (self, txn, "hlc", &last_hlc, errbuf);
    }
    if (rc != GKX_OK) {
        return rc;
    }
    if (own.seq < rec->claimed_seq) {
        return gkx_fail (errbuf, GKX_EAHEAD,
                         "store: the counterparty holds our entries up to seq %llu but we "
                         "hold %llu; take them back before appending",
                         (unsigned long long) rec->claimed_seq, (unsigned long long) own.seq);
    }
    gkx_entry_draft_t draft;
    memset (&draft, 0, sizeof draft);
    memcpy (draft.pid, ctx->pid, GKX_ID_BYTES);
    memcpy (draft.author, gkx_identity_id (ctx->identity), GKX_ID_BYTES);
    draft.seq = own.seq + 1;
    memcpy (draft.prev_hash, own.hash, GKX_HASH_BYTES);
    draft.seen_seq = other.seq;
    memcpy (draft.seen_hash, other.hash, GKX_HASH_BYTES);
    draft.hlc = gkx_hlc_send (last_hlc, self->clock_ms (self->clock_arg));
    draft.kind = ctx->kind;
    draft.body = ctx->body;
    draft.body_len = ctx->body_len;
    gkx_entry_destroy (&ctx->entry);
    rc = gkx_entry_sign (&ctx->entry, &draft, ctx->identity, errbuf);
    if (rc == GKX_OK) {
        rc = s_derive (self, txn, ctx->entry, role, rec->pub.advertiser, rec->pub.publisher,
                       errbuf);
    }
    if (rc == GKX_OK) {
        rc = s_entry_put (self, txn, ctx->entry, role, errbuf);
    }
    if (rc == GKX_OK) {
        rc = s_meta_put_u64 (self, txn, "hlc", draft.hlc, errbuf);
    }
    return rc;
}

/* Transaction body of gkx_store_append. */
static int
s_append_txn (gkx_store_t *self, MDB_txn *txn, void *arg, char *errbuf)
{
    s_append_ctx_t *ctx = arg;
    s_prec_t rec;
    int rc = s_prec_get (self, txn, ctx->pid, &rec, errbuf);
    if (rc != GKX_OK) {
        return rc;
    }
    if (rec.pub.is_frozen) {
        return gkx_fail (errbuf, GKX_EFROZEN, "store: the partnership is frozen (equivocation)");
    }
    if (ctx->kind == GKX_KIND_GENESIS) {
        return gkx_fail (errbuf, GKX_EKIND, "store: a genesis entry is written by share only");
    }
    return s_append_entry (self, txn, ctx, &rec, errbuf);
}

int
gkx_store_append (gkx_store_t *self, const gkx_identity_t *identity,
                  const uint8_t pid[GKX_ID_BYTES], int kind, const uint8_t *body,
                  size_t body_len, gkx_entry_t **entry_p, char *errbuf)
{
    assert (self && identity && pid && body);
    assert (memcmp (gkx_identity_id (identity), self->self_id, GKX_ID_BYTES) == 0);
    s_append_ctx_t ctx = {identity, pid, kind, body, body_len, NULL, NULL, NULL};
    int rc = s_write (self, s_append_txn, &ctx, errbuf);
    if (rc == GKX_OK && entry_p) {
        *entry_p = ctx.entry;
        ctx.entry = NULL;
    }
    gkx_entry_destroy (&ctx.entry);
    return rc;
}

/* Ends the nested transaction of one item of a batch whose body returned
   rc: aborted when the map is full (S_MAP_FULL: the whole transaction is
   retried after the map grows), committed when keep, else aborted with the
   cached merge states dropped, since they may hold its work. Returns GKX_OK,
   S_MAP_FULL or an LMDB failure. */
static int
s_child_end (gkx_store_t *self, MDB_txn *child, int rc, int keep, char *errbuf)
{
    if (rc == S_MAP_FULL) {
        mdb_txn_abort (child);
        return S_MAP_FULL;
    }
    if (!keep) {
        mdb_txn_abort (child);
        s_cache_clear (self);
        return GKX_OK;
    }
    int mrc = mdb_txn_commit (child);
    if (mrc != 0) {
        s_cache_clear (self);
        return s_mdb_fail (errbuf, mrc, "committing a nested transaction");
    }
    return GKX_OK;
}

/* Context of gkx_store_append_each. */
typedef struct {
    const gkx_identity_t *identity;
    int kind;
    const uint8_t *body;
    size_t body_len;
    gkx_store_append_item_t *items;
    size_t count;
} s_append_each_ctx_t;

/* Transaction body of gkx_store_append_each: each append in a nested
   transaction of its own. */
static int
s_append_each_txn (gkx_store_t *self, MDB_txn *txn, void *arg, char *errbuf)
{
    s_append_each_ctx_t *each = arg;
    for (size_t i = 0; i < each->count; i++) {
        gkx_store_append_item_t *item = &each->items[i];
        MDB_txn *child = NULL;
        int mrc = mdb_txn_begin (self->env, txn, 0, &child);
        if (mrc != 0) {
            return s_mdb_fail (errbuf, mrc, "beginning a nested transaction");
        }
        s_append_ctx_t ctx = {each->identity, item->pid, each->kind, each->body,
                              each->body_len, NULL, NULL, NULL};
        item->errbuf[0] = '\0';
        int rc = s_append_txn (self, child, &ctx, item->errbuf);
        gkx_entry_destroy (&ctx.entry);
        int end = s_child_end (self, child, rc, rc == GKX_OK, errbuf);
        if (end != GKX_OK) {
            return end;
        }
        item->rc = rc;
    }
    return GKX_OK;
}

int
gkx_store_append_each (gkx_store_t *self, const gkx_identity_t *identity, int kind,
                       const uint8_t *body, size_t body_len, gkx_store_append_item_t *items,
                       size_t count, char *errbuf)
{
    assert (self && identity && body && (items || count == 0));
    assert (memcmp (gkx_identity_id (identity), self->self_id, GKX_ID_BYTES) == 0);
    assert (kind != GKX_KIND_GENESIS);
    s_append_each_ctx_t ctx = {identity, kind, body, body_len, items, count};
    int rc = s_write (self, s_append_each_txn, &ctx, errbuf);
    if (rc != GKX_OK) {
        for (size_t i = 0; i < count; i++) {
            items[i].rc = rc;
            snprintf (items[i].errbuf, sizeof items[i].errbuf, "%s", errbuf ? errbuf : "");
        }
    }
    return rc;
}

/* Transaction body of gkx_store_share: the partnership and its genesis. */
static int
s_share_txn (gkx_store_t *self, MDB_txn *txn, void *arg, char *errbuf)
{
    s_append_ctx_t *ctx = arg;
    s_prec_t rec;
    memset (&rec, 0, sizeof rec);
    memcpy (rec.pub.pid, ctx->pid, GKX_ID_BYTES);
    memcpy (rec.pub.advertiser, self->self_id, GKX_ID_BYTES);
    memcpy (rec.pub.publisher, ctx->publisher, GKX_ID_BYTES);
    rec.pub.self_role = GKX_ROLE_ADVERTISER;
    int rc = s_append_entry (self, txn, ctx, &rec, errbuf);
    if (rc != GKX_OK) {
        return rc;
    }
    rec.pub.created_hlc = gkx_entry_hlc (ctx->entry);
    return s_prec_put (self, txn, &rec, errbuf);
}

int
gkx_store_share (gkx_store_t *self, const gkx_identity_t *identity,
                 const uint8_t publisher[GKX_ID_BYTES], const uint8_t *offer, size_t offer_len,
                 const uint8_t *policy, size_t policy_len, uint8_t pid[GKX_ID_BYTES],
                 gkx_entry_t **entry_p, char *errbuf)
{
    assert (self && identity && publisher && pid);
    if (memcmp (publisher, self->self_id, GKX_ID_BYTES) == 0) {
        return gkx_fail (errbuf, GKX_EINVAL, "share: the publisher must be another node");
    }
    if (!offer || offer_len == 0) {
        return gkx_fail (errbuf, GKX_EINVAL, "share: an offer is required");
    }
    uint8_t nonce[GKX_NONCE_BYTES];
    if (sodium_init () < 0) {
        return gkx_fail (errbuf, GKX_EIO, "libsodium failed to initialise");
    }
    randombytes_buf (nonce, sizeof nonce);
    gkx_partnership_id (pid, self->self_id, publisher, nonce);
    msgpack_sbuffer body;
    msgpack_sbuffer_init (&body);
    gkx_genesis_body_encode (&body, self->self_id, publisher, nonce, offer, offer_len, policy,
                             policy_len);
    s_append_ctx_t ctx = {identity, pid, GKX_KIND_GENESIS, (const uint8_t *) body.data,
                          body.size, NULL, publisher, nonce};
    int rc = s_write (self, s_share_txn, &ctx, errbuf);
    msgpack_sbuffer_destroy (&body);
    if (rc == GKX_OK && entry_p) {
        *entry_p = ctx.entry;
        ctx.entry = NULL;
    }
    gkx_entry_destroy (&ctx.entry);
    return rc;
}

/* Context of an ingest. */
typedef struct {
    const gkx_entry_t *entry;
    const uint8_t *peer;
    int result;
} s_ingest_ctx_t;

/* Keeps an entry as equivocation evidence. */
static int
s_evidence_put (gkx_store_t *self, MDB_txn *txn, const uint8_t *pid, int role, uint64_t seq,
                const uint8_t *hash, const uint8_t *bytes, size_t len, char *errbuf)
{
    uint8_t kbuf[S_EVIDENCE_KEY_BYTES];
    s_entry_key (kbuf, pid, role, seq);
    memcpy (kbuf + S_ENTRY_KEY_BYTES, hash, GKX_HASH_BYTES);
    MDB_val key = {sizeof kbuf, kbuf};
    MDB_val val = {len, (void *) bytes};
    int rc = mdb_put (txn, self->evidence, &key, &val, 0);
    return rc == 0 ? GKX_OK : s_mdb_fail (errbuf, rc, "writing evidence");
}

/* Records equivocation: both entries as evidence, the partnership frozen. */
static int
s_equivocation (gkx_store_t *self, MDB_txn *txn, s_prec_t *rec, int role,
                const gkx_entry_t *entry, char *errbuf)
{
    const uint8_t *pid = gkx_entry_pid (entry);
    uint64_t seq = gkx_entry_seq (entry);
    uint8_t kbuf[S_ENTRY_KEY_BYTES];
    s_entry_key (kbuf, pid, role, seq);
    MDB_val key = {sizeof kbuf, kbuf};
    MDB_val held;
    int rc = mdb_get (txn, self->entries, &key, &held);
    if (rc != 0) {
        return s_mdb_fail (errbuf, rc, "reading the held entry");
    }
    size_t len;
    const uint8_t *bytes = gkx_entry_bytes (entry, &len);
    rc = s_evidence_put (self, txn, pid, role, seq, held.mv_data,
                         (const uint8_t *) held.mv_data + S_ENTRY_PREFIX_BYTES,
                         held.mv_size - S_ENTRY_PREFIX_BYTES, errbuf);
    if (rc == GKX_OK) {
        rc = s_evidence_put (self, txn, pid, role, seq, gkx_entry_hash (entry), bytes, len,
                             errbuf);
    }
    if (rc == GKX_OK) {
        rec->pub.is_frozen = 1;
        rc = s_prec_put (self, txn, rec, errbuf);
    }
    if (rc == GKX_OK && self->notices_on) {
        rc = s_notice_queue (self, txn, pid, role, GKX_NOTICE_FROZEN, seq, 0, errbuf);
    }
    if (rc != GKX_OK) {
        return rc;
    }
    return gkx_fail (errbuf, GKX_EEQUIVOCATION,
                     "ingest: the %s signed two different entries at seq %llu; both kept as "
                     "evidence and the partnership frozen",
                     gkx_role_name (role), (unsigned long long) seq);
}

/* Finds the partnership of an entry, creating it from a genesis entry. */
static int
s_ingest_partnership (gkx_store_t *self, MDB_txn *txn, const gkx_entry_t *entry, s_prec_t *rec,
                      char *errbuf)
{
    int rc = s_prec_get (self, txn, gkx_entry_pid (entry), rec, errbuf);
    if (rc != GKX_ENOTFOUND) {
        return rc;
    }
    if (gkx_entry_kind (entry) != GKX_KIND_GENESIS) {
        return gkx_fail (errbuf, GKX_ENOTFOUND,
                         "ingest: unknown partnership (its genesis entry has not arrived)");
    }
    memset (rec, 0, sizeof *rec);
    memcpy (rec->pub.pid, gkx_entry_pid (entry), GKX_ID_BYTES);
    gkx_genesis_members (entry, rec->pub.advertiser, rec->pub.publisher);
    rec->pub.self_role = s_role_of (rec, self->self_id);
    rec->pub.created_hlc = gkx_entry_hlc (entry);
    if (rec->pub.self_role == 0) {
        return gkx_fail (errbuf, GKX_ENOTMEMBER,
                         "ingest: this node is not a member of the genesis's partnership");
    }
    return s_prec_put (self, txn, rec, errbuf);
}

/* Checks an entry's cross-link against the counterparty chain we hold. */
static int
s_check_crosslink (gkx_store_t *self, MDB_txn *txn, s_prec_t *rec, int role,
                   const gkx_head_t *head, const gkx_entry_t *entry, char *errbuf)
{
    uint64_t seen = gkx_entry_seen_seq (entry);
    int other = s_other_role (role);
    if (seen < head->seen_seq) {
        return gkx_fail (errbuf, GKX_ECROSSLINK,
                         "ingest: seen_seq %llu goes back from %llu of the previous entry",
                         (unsigned long long) seen, (unsigned long long) head->seen_seq);
    }
    if (seen == 0) {
        return GKX_OK;
    }
    uint8_t hash[GKX_HASH_BYTES];
    uint64_t hlc = 0;
    int rc = s_entry_meta (self, txn, gkx_entry_pid (entry), other, seen, hash, &hlc, errbuf);
    if (rc == GKX_ENOTFOUND) {
        /* The author has seen more of the other chain than we hold. When that
           chain is ours, we lost entries (a restored backup): remember the
           claim so that append refuses until they are taken back (the node
           drops a claim the counterparty does not back: gkx_store_claim_drop). */
        if (other == rec->pub.self_role && seen > rec->claimed_seq) {
            rec->claimed_seq = seen;
            rc = s_prec_put (self, txn, rec, errbuf);
            if (rc != GKX_OK) {
                return rc;
            }
        }
        return gkx_fail (errbuf, GKX_EAHEAD,
                         "ingest: the entry has seen %s seq %llu, which this node does not hold",
                         gkx_role_name (other), (unsigned long long) seen);
    }
    if (rc != GKX_OK) {
        return rc;
    }
    if (memcmp (hash, gkx_entry_seen_hash (entry), GKX_HASH_BYTES) != 0) {
        return gkx_fail (errbuf, GKX_ECROSSLINK,
                         "ingest: seen_hash differs from the held %s entry at seq %llu",
                         gkx_role_name (other), (unsigned long long) seen);
    }
    if (gkx_entry_hlc (entry) <= hlc) {
        return gkx_fail (errbuf, GKX_ECLOCK,
                         "ingest: hlc does not advance past the entry it has seen");
    }
    return GKX_OK;
}

/* Transaction body of gkx_store_ingest: every ingest rule, then the write. */
static int
s_ingest_txn (gkx_store_t *self, MDB_txn *txn, void *arg, char *errbuf)
{
    s_ingest_ctx_t *ctx = arg;
    const gkx_entry_t *entry = ctx->entry;
    const uint8_t *pid = gkx_entry_pid (entry);
    uint64_t seq = gkx_entry_seq (entry);
    s_prec_t rec;
    int rc = s_ingest_partnership (self, txn, entry, &rec, errbuf);
    if (rc != GKX_OK) {
        return rc;
    }
    int role = s_role_of (&rec, gkx_entry_author (entry));
    if (role == 0) {
        return gkx_fail (errbuf, GKX_ENOTMEMBER,
                         "ingest: the author is not a member of the partnership");
    }
    /* Our own entries may come back only from the counterparty, which holds
       them (taking them back after a restore from an old copy). */
    if (ctx->peer && memcmp (ctx->peer, gkx_entry_author (entry), GKX_ID_BYTES) != 0
        && s_role_of (&rec, ctx->peer) != s_other_role (role)) {
        return gkx_fail (errbuf, GKX_ENOTMEMBER,
                         "ingest: the entry's author is not the connection's peer");
    }
    if (rec.pub.is_frozen) {
        return gkx_fail (errbuf, GKX_EFROZEN, "ingest: the partnership is frozen (equivocation)");
    }
    if ((role == GKX_ROLE_ADVERTISER && seq == 1) != (gkx_entry_kind (entry) == GKX_KIND_GENESIS)) {
        return gkx_fail (errbuf, GKX_EBODY,
                         "ingest: the advertiser's chain, and only it, starts with the genesis");
    }
    gkx_head_t head;
    rc = s_head_get (self, txn, pid, role, &head, errbuf);
    if (rc != GKX_OK) {
        return rc;
    }
    if (seq <= head.seq) {
        uint8_t hash[GKX_HASH_BYTES];
        uint64_t hlc;
        rc = s_entry_meta (self, txn, pid, role, seq, hash, &hlc, errbuf);
        if (rc != GKX_OK) {
            return rc == GKX_ENOTFOUND ? gkx_fail (errbuf, GKX_ESTORE, "store: chain has a hole") : rc;
        }
        if (memcmp (hash, gkx_entry_hash (entry), GKX_HASH_BYTES) == 0) {
            ctx->result = GKX_INGEST_DUPLICATE;
            return GKX_OK;
        }
        return s_equivocation (self, txn, &rec, role, entry, errbuf);
    }
    if (seq > head.seq + 1) {
        return gkx_fail (errbuf, GKX_EGAP, "ingest: %s seq %llu, but the next expected is %llu",
                         gkx_role_name (role), (unsigned long long) seq,
                         (unsigned long long) head.seq + 1);
    }
    if (memcmp (gkx_entry_prev_hash (entry), head.hash, GKX_HASH_BYTES) != 0) {
        return gkx_fail (errbuf, GKX_EPREV,
                         "ingest: %s seq %llu: prev_hash is not the hash of seq %llu",
                         gkx_role_name (role), (unsigned long long) seq,
                         (unsigned long long) head.seq);
    }
    if (seq > 1 && gkx_entry_hlc (entry) <= head.hlc) {
        return gkx_fail (errbuf, GKX_ECLOCK, "ingest: %s seq %llu: hlc does not advance",
                         gkx_role_name (role), (unsigned long long) seq);
    }
    rc = s_check_crosslink (self, txn, &rec, role, &head, entry, errbuf);
    if (rc != GKX_OK) {
        return rc;
    }
    uint64_t last_hlc;
    int prior = 0;
    if (self->notices_on) {
        rc = s_notice_prior (self, txn, entry, &prior, errbuf);
        if (rc != GKX_OK) {
            return rc;
        }
    }
    rc = s_derive (self, txn, entry, role, rec.pub.advertiser, rec.pub.publisher, errbuf);
    if (rc == GKX_OK) {
        rc = s_entry_put (self, txn, entry, role, errbuf);
    }
    if (rc == GKX_OK && self->notices_on) {
        rc = s_notice_entry (self, txn, entry, role, prior, errbuf);
    }
    if (rc == GKX_OK) {
        rc = s_meta_u64 (self, txn, "hlc", &last_hlc, errbuf);
    }
    if (rc == GKX_OK) {
        rc = s_meta_put_u64 (self, txn, "hlc",
                             gkx_hlc_recv (last_hlc, gkx_entry_hlc (entry),
                                           self->clock_ms (self->clock_arg)),
                             errbuf);
    }
    ctx->result = GKX_INGEST_APPENDED;
    return rc;
}

int
gkx_store_ingest (gkx_store_t *self, const uint8_t *bytes, size_t len, const uint8_t *peer,
                  int *result_p, char *errbuf)
{
    assert (self && bytes && result_p);
    gkx_entry_t *entry = NULL;
    int rc = gkx_entry_decode (&entry, bytes, len, errbuf);
    if (rc != GKX_OK) {
        return rc;
    }
    if (peer && memcmp (peer, gkx_entry_author (entry), GKX_ID_BYTES) != 0
        && memcmp (self->self_id, gkx_entry_author (entry), GKX_ID_BYTES) != 0) {
        gkx_entry_destroy (&entry);
        return gkx_fail (errbuf, GKX_ENOTMEMBER,
                         "ingest: the entry's author is not the connection's peer");
    }
    rc = gkx_entry_verify (entry);
    if (rc != GKX_OK) {
        gkx_entry_destroy (&entry);
        return gkx_fail (errbuf, rc, "ingest: the signature does not verify for the author");
    }
    s_ingest_ctx_t ctx = {entry, peer, 0};
    rc = s_write (self, s_ingest_txn, &ctx, errbuf);
    gkx_entry_destroy (&entry);
    if (rc == GKX_OK) {
        *result_p = ctx.result;
    }
    return rc;
}

/* Context of gkx_store_ingest_batch. */
typedef struct {
    gkx_store_ingest_item_t *items;
    size_t count;
    const uint8_t *peer;
    int *checked;                   /* per item: the rc of the checks made outside */
} s_batch_ctx_t;

/* Ingests every checked entry of a batch in one nested transaction, the
   common case: nothing is refused, and a nested transaction per entry (with
   its own copies of the pages it touches) cost more than the entries. Returns
   GKX_OK when each entry went in or was refused by a rule whose writes are
   kept, S_EACH when an entry was refused after writing what must not stay (the
   caller then takes the entries one by one), S_MAP_FULL, or an LMDB failure. */
#define S_EACH (-2)
static int
s_ingest_batch_all (gkx_store_t *self, MDB_txn *txn, s_batch_ctx_t *ctx, char *errbuf)
{
    MDB_txn *child = NULL;
    int mrc = mdb_txn_begin (self->env, txn, 0, &child);
    if (mrc != 0) {
        return s_mdb_fail (errbuf, mrc, "beginning a nested transaction");
    }
    for (size_t i = 0; i < ctx->count; i++) {
        gkx_store_ingest_item_t *item = &ctx->items[i];
        item->rc = ctx->checked[i];
        item->result = 0;
        if (item->rc != GKX_OK) {
            continue;
        }
        s_ingest_ctx_t one = {item->entry, ctx->peer, 0};
        item->errbuf[0] = '\0';
        int rc = s_ingest_txn (self, child, &one, item->errbuf);
        if (rc != GKX_OK && !s_commits_on_error (rc)) {
            mdb_txn_abort (child);
            /* Cached merge states may hold the aborted entries' work. */
            s_cache_clear (self);
            return rc == S_MAP_FULL ? S_MAP_FULL : S_EACH;
        }
        item->rc = rc;
        item->result = one.result;
    }
    mrc = mdb_txn_commit (child);
    if (mrc != 0) {
        s_cache_clear (self);
        return s_mdb_fail (errbuf, mrc, "committing a nested transaction");
    }
    return GKX_OK;
}

/* Transaction body of gkx_store_ingest_batch: all entries at once when none
   is refused; otherwise each entry in its own nested transaction, so a
   refused entry leaves no trace while the others share the one durable
   commit. */
static int
s_ingest_batch_txn (gkx_store_t *self, MDB_txn *txn, void *arg, char *errbuf)
{
    s_batch_ctx_t *ctx = arg;
    int all = s_ingest_batch_all (self, txn, ctx, errbuf);
    if (all != S_EACH) {
        return all;
    }
    for (size_t i = 0; i < ctx->count; i++) {
        gkx_store_ingest_item_t *item = &ctx->items[i];
        item->rc = ctx->checked[i];
        item->result = 0;
        if (item->rc != GKX_OK) {
            continue;
        }
        MDB_txn *child = NULL;
        int mrc = mdb_txn_begin (self->env, txn, 0, &child);
        if (mrc != 0) {
            return s_mdb_fail (errbuf, mrc, "beginning a nested transaction");
        }
        s_ingest_ctx_t one = {item->entry, ctx->peer, 0};
        item->errbuf[0] = '\0';
        int rc = s_ingest_txn (self, child, &one, item->errbuf);
        int end = s_child_end (self, child, rc, rc == GKX_OK || s_commits_on_error (rc), errbuf);
        if (end != GKX_OK) {
            return end;
        }
        item->rc = rc;
        item->result = one.result;
    }
    return GKX_OK;
}

int
gkx_store_ingest_batch (gkx_store_t *self, gkx_store_ingest_item_t *items, size_t count,
                        const uint8_t *peer, char *errbuf)
{
    assert (self && (items || count == 0));
    int *checked = gkx_zalloc ((count ? count : 1) * sizeof *checked);
    for (size_t i = 0; i < count; i++) {
        gkx_store_ingest_item_t *item = &items[i];
        item->entry = NULL;
        item->errbuf[0] = '\0';
        int rc = gkx_entry_decode (&item->entry, item->bytes, item->len, item->errbuf);
        if (rc == GKX_OK && peer && memcmp (peer, gkx_entry_author (item->entry), GKX_ID_BYTES) != 0
            && memcmp (self->self_id, gkx_entry_author (item->entry), GKX_ID_BYTES) != 0) {
            rc = gkx_fail (item->errbuf, GKX_ENOTMEMBER,
                           "ingest: the entry's author is not the connection's peer");
        }
        if (rc != GKX_OK) {
            gkx_entry_destroy (&item->entry);
        }
        checked[i] = rc;
        item->rc = rc;
    }
    /* One signature per run of a chain's entries: gkx_entry_verify_batch. */
    gkx_entry_t **entries = gkx_zalloc ((count ? count : 1) * sizeof *entries);
    for (size_t i = 0; i < count; i++) {
        entries[i] = items[i].entry;
    }
    gkx_entry_verify_batch (entries, count, checked);
    gkx_free (entries);
    for (size_t i = 0; i < count; i++) {
        gkx_store_ingest_item_t *item = &items[i];
        if (item->entry && checked[i] != GKX_OK) {
            checked[i] = gkx_fail (item->errbuf, GKX_ESIGNATURE,
                                   "ingest: the signature does not verify for the author");
            gkx_entry_destroy (&item->entry);
        }
        item->rc = checked[i];
    }
    s_batch_ctx_t ctx = {items, count, peer, checked};
    int rc = s_write (self, s_ingest_batch_txn, &ctx, errbuf);
    if (rc != GKX_OK) {
        for (size_t i = 0; i < count; i++) {
            items[i].rc = rc;
            items[i].result = 0;
            snprintf (items[i].errbuf, sizeof items[i].errbuf, "%s", errbuf ? errbuf : "");
        }
    }
    gkx_free (checked);
    return rc;
}

int
gkx_store_partnership (gkx_store_t *self, const uint8_t pid[GKX_ID_BYTES],
                       gkx_partnership_t *out)
{
    MDB_txn *txn;
    s_prec_t rec;
    int rc = s_read_begin (self, &txn, NULL);
    if (rc != GKX_OK) {
        return rc;
    }
    rc = s_prec_get (self, txn, pid, &rec, NULL);
    mdb_txn_abort (txn);
    if (rc == GKX_OK) {
        *out = rec.pub;
    }
    return rc == S_MAP_FULL ? GKX_ESTORE : rc;
}

/* Transaction body of gkx_store_claim_drop. */
static int
s_claim_drop_txn (gkx_store_t *self, MDB_txn *txn, void *arg, char *errbuf)
{
    s_prec_t rec;
    int rc = s_prec_get (self, txn, arg, &rec, errbuf);
    if (rc != GKX_OK || rec.claimed_seq == 0) {
        return rc;
    }
    rec.claimed_seq = 0;
    return s_prec_put (self, txn, &rec, errbuf);
}

int
gkx_store_claim_drop (gkx_store_t *self, const uint8_t pid[GKX_ID_BYTES], char *errbuf)
{
    assert (self && pid);
    return s_write (self, s_claim_drop_txn, (void *) pid, errbuf);
}

/* Visits one record of a walk; returns 0 to go on, else the walk's result. */
typedef int (s_visit_fn) (const MDB_val *key, const MDB_val *val, void *arg);

/* Walks the records of dbi in key order, from start (NULL: the first) for
   as long as keys begin with prefix (prefix_len 0: all), in one short read
   transaction. Returns the first non-zero visit result, else GKX_OK. */
static int
s_walk (gkx_store_t *self, MDB_dbi dbi, const uint8_t *prefix, size_t prefix_len,
        const uint8_t *start, size_t start_len, s_visit_fn *visit, void *arg)
{
    MDB_txn *txn;
    MDB_cursor *cursor;
    int rc = s_read_begin (self, &txn, NULL);
    if (rc != GKX_OK) {
        return rc;
    }
    if (mdb_cursor_open (txn, dbi, &cursor) != 0) {
        mdb_txn_abort (txn);
        return GKX_ESTORE;
    }
    MDB_val key = {start_len, (void *) start};
    MDB_val val;
    int result = GKX_OK;
    int mrc = mdb_cursor_get (cursor, &key, &val, start ? MDB_SET_RANGE : MDB_FIRST);
    while (mrc == 0 && key.mv_size >= prefix_len
           && (prefix_len == 0 || memcmp (key.mv_data, prefix, prefix_len) == 0)) {
        result = visit (&key, &val, arg);
        if (result != 0) {
            break;
        }
        mrc = mdb_cursor_get (cursor, &key, &val, MDB_NEXT);
    }
    mdb_cursor_close (cursor);
    mdb_txn_abort (txn);
    return result;
}

/* A caller's function and argument, for the typed walks below. */
typedef struct {
    int (*partnership_fn) (const gkx_partnership_t *p, void *arg);
    int (*entry_fn) (const gkx_entry_t *entry, void *arg);
    int (*card_fn) (const gkx_card_t *card, void *arg);
    void *arg;
    size_t value_skip;      /* entries: bytes before the entry in each value */
} s_walk_ctx_t;

/* Visits a partnership record. */
static int
s_visit_partnership (const MDB_val *key, const MDB_val *val, void *arg)
{
    s_walk_ctx_t *ctx = arg;
    s_prec_t rec;
    if (key->mv_size != GKX_ID_BYTES || s_prec_decode (&rec, key->mv_data, val) != GKX_OK) {
        return GKX_ESTORE;
    }
    return ctx->partnership_fn (&rec.pub, ctx->arg);
}

/* Visits a stored entry. */
static int
s_visit_entry (const MDB_val *key, const MDB_val *val, void *arg)
{
    (void) key;
    s_walk_ctx_t *ctx = arg;
    gkx_entry_t *entry = NULL;
    if (val->mv_size < ctx->value_skip
        || gkx_entry_decode (&entry, (const uint8_t *) val->mv_data + ctx->value_skip,
                             val->mv_size - ctx->value_skip, NULL) != GKX_OK) {
        return GKX_ESTORE;
    }
    int result = ctx->entry_fn (entry, ctx->arg);
    gkx_entry_destroy (&entry);
    return result;
}

/* Visits a peer's card. */
static int
s_visit_peer (const MDB_val *key, const MDB_val *val, void *arg)
{
    (void) key;
    s_walk_ctx_t *ctx = arg;
    gkx_card_t *card = NULL;
    if (gkx_card_decode (&card, val->mv_data, val->mv_size, NULL) != GKX_OK) {
        return GKX_ESTORE;
    }
    int result = ctx->card_fn (card, ctx->arg);
    gkx_card_destroy (&card);
    return result;
}

int
gkx_store_partnerships (gkx_store_t *self,
                        int (*fn) (const gkx_partnership_t *p, void *arg), void *arg)
{
    s_walk_ctx_t ctx = {fn, NULL, NULL, arg, 0};
    return s_walk (self, self->partnerships, NULL, 0, NULL, 0, s_visit_partnership, &ctx);
}

/* Calls fn for every partnership record, in pid order, inside one read
   transaction that fn may read further in; stops at the first result other
   than GKX_OK and returns it, else GKX_OK (GKX_ESTORE for a damaged key). */
static int
s_each_partnership (gkx_store_t *self,
                    int (*fn) (gkx_store_t *self, MDB_txn *txn, const MDB_val *key,
                               const MDB_val *val, void *arg),
                    void *arg)
{
    MDB_txn *txn;
    MDB_cursor *cursor;
    int rc = s_read_begin (self, &txn, NULL);
    if (rc != GKX_OK) {
        return rc;
    }
    if (mdb_cursor_open (txn, self->partnerships, &cursor) != 0) {
        mdb_txn_abort (txn);
        return GKX_ESTORE;
    }
    MDB_val key;
    MDB_val val;
    int mrc = mdb_cursor_get (cursor, &key, &val, MDB_FIRST);
    while (rc == GKX_OK && mrc == 0) {
        rc = key.mv_size == GKX_ID_BYTES ? fn (self, txn, &key, &val, arg) : GKX_ESTORE;
        mrc = mdb_cursor_get (cursor, &key, &val, MDB_NEXT);
    }
    mdb_cursor_close (cursor);
    mdb_txn_abort (txn);
    return rc == GKX_OK && mrc != MDB_NOTFOUND ? GKX_ESTORE : rc;
}

/* Counts one partnership by status, for gkx_store_partnership_counts. */
static int
s_count_status (gkx_store_t *self, MDB_txn *txn, const MDB_val *key, const MDB_val *val,
                void *arg)
{
    gkx_store_partnership_counts_t *out = arg;
    s_prec_t rec;
    MDB_val none;
    if (s_prec_decode (&rec, key->mv_data, val) != GKX_OK) {
        return GKX_ESTORE;
    }
    if (rec.pub.is_frozen) {
        out->frozen++;
    }
    else if (mdb_get (txn, self->paused, (MDB_val *) key, &none) == 0) {
        out->paused++;
    }
    else {
        out->active++;
    }
    return GKX_OK;
}

int
gkx_store_partnership_counts (gkx_store_t *self, gkx_store_partnership_counts_t *out)
{
    memset (out, 0, sizeof *out);
    return s_each_partnership (self, s_count_status, out);
}

int
gkx_store_head (gkx_store_t *self, const uint8_t pid[GKX_ID_BYTES], int role,
                gkx_head_t *out)
{
    MDB_txn *txn;
    s_prec_t rec;
    int rc = s_read_begin (self, &txn, NULL);
    if (rc != GKX_OK) {
        return rc;
    }
    rc = s_prec_get (self, txn, pid, &rec, NULL);
    if (rc == GKX_OK) {
        rc = s_head_get (self, txn, pid, role, out, NULL);
    }
    mdb_txn_abort (txn);
    return rc == S_MAP_FULL ? GKX_ESTORE : rc;
}

/* Decodes a stored entry value (hash || hlc || bytes). */
static int
s_decode_value (const MDB_val *val, gkx_entry_t **entry_p)
{
    if (val->mv_size < S_ENTRY_PREFIX_BYTES) {
        return GKX_ESTORE;
    }
    int rc = gkx_entry_decode (entry_p, (const uint8_t *) val->mv_data + S_ENTRY_PREFIX_BYTES,
                               val->mv_size - S_ENTRY_PREFIX_BYTES, NULL);
    return rc == GKX_OK ? GKX_OK : GKX_ESTORE;
}

int
gkx_store_get (gkx_store_t *self, const uint8_t pid[GKX_ID_BYTES], int role, uint64_t seq,
               gkx_entry_t **entry_p)
{
    MDB_txn *txn;
    int rc = s_read_begin (self, &txn, NULL);
    if (rc != GKX_OK) {
        return rc;
    }
    uint8_t kbuf[S_ENTRY_KEY_BYTES];
    s_entry_key (kbuf, pid, role, seq);
    MDB_val key = {sizeof kbuf, kbuf};
    MDB_val val;
    int mrc = mdb_get (txn, self->entries, &key, &val);
    if (mrc == 0) {
        rc = s_decode_value (&val, entry_p);
    }
    else {
        rc = mrc == MDB_NOTFOUND ? GKX_ENOTFOUND : GKX_ESTORE;
    }
    mdb_txn_abort (txn);
    return rc;
}

int
gkx_store_iterate (gkx_store_t *self, const uint8_t pid[GKX_ID_BYTES], int role,
                   uint64_t from_seq, int (*fn) (const gkx_entry_t *entry, void *arg),
                   void *arg)
{
    uint8_t start[S_ENTRY_KEY_BYTES];
    s_entry_key (start, pid, role, from_seq);
    s_walk_ctx_t ctx = {NULL, fn, NULL, arg, S_ENTRY_PREFIX_BYTES};
    return s_walk (self, self->entries, start, S_HEAD_KEY_BYTES, start, sizeof start,
                   s_visit_entry, &ctx);
}

/* Visits a stored entry for gkx_store_holds_other_than: -1 (stop: found)
   when its kind is not the one asked about, or cannot be read without a
   decode. */
static int
s_visit_other_kind (const MDB_val *key, const MDB_val *val, void *arg)
{
    (void) key;
    int kind;
    int other = val->mv_size <= S_ENTRY_PREFIX_BYTES
                || gkx_entry_peek_kind ((const uint8_t *) val->mv_data + S_ENTRY_PREFIX_BYTES,
                                        val->mv_size - S_ENTRY_PREFIX_BYTES, &kind) != GKX_OK
                || kind != *(const int *) arg;
    return other ? -1 : 0;
}

int
gkx_store_holds_other_than (gkx_store_t *self, const uint8_t pid[GKX_ID_BYTES], int role,
                            uint64_t from_seq, int kind, int *found_p)
{
    uint8_t start[S_ENTRY_KEY_BYTES];
    s_entry_key (start, pid, role, from_seq);
    int rc = s_walk (self, self->entries, start, S_HEAD_KEY_BYTES, start, sizeof start,
                     s_visit_other_kind, &kind);
    *found_p = rc == -1;
    return rc == -1 ? GKX_OK : rc;
}

int
gkx_store_evidence (gkx_store_t *self, const uint8_t pid[GKX_ID_BYTES],
                    int (*fn) (const gkx_entry_t *entry, void *arg), void *arg)
{
    s_walk_ctx_t ctx = {NULL, fn, NULL, arg, 0};
    return s_walk (self, self->evidence, pid, GKX_ID_BYTES, pid, GKX_ID_BYTES, s_visit_entry,
                   &ctx);
}

int
gkx_store_merge (gkx_store_t *self, const uint8_t pid[GKX_ID_BYTES], gkx_merge_t **state_p)
{
    MDB_txn *txn;
    int rc = s_read_begin (self, &txn, NULL);
    if (rc != GKX_OK) {
        return rc;
    }
    rc = s_build_state (self, txn, pid, state_p, NULL);
    mdb_txn_abort (txn);
    return rc == S_MAP_FULL ? GKX_ESTORE : rc;
}

int
gkx_store_merge_borrow (gkx_store_t *self, const uint8_t pid[GKX_ID_BYTES],
                        gkx_merge_t **state_p)
{
    MDB_txn *txn;
    gkx_partnership_t p;
    int rc = gkx_store_partnership (self, pid, &p);
    if (rc != GKX_OK) {
        return rc;
    }
    rc = s_read_begin (self, &txn, NULL);
    if (rc != GKX_OK) {
        return rc;
    }
    rc = s_state_get (self, txn, pid, state_p, NULL);
    mdb_txn_abort (txn);
    return rc == S_MAP_FULL ? GKX_ESTORE : rc;
}

int
gkx_store_offer (gkx_store_t *self, const uint8_t pid[GKX_ID_BYTES], gkx_offer_t **offer_p,
                 uint8_t *digest)
{
    MDB_txn *txn;
    int rc = s_read_begin (self, &txn, NULL);
    if (rc != GKX_OK) {
        return rc;
    }
    MDB_val key = {GKX_ID_BYTES, (void *) pid};
    MDB_val val;
    int mrc = mdb_get (txn, self->offers, &key, &val);
    if (mrc == 0 && val.mv_size > GKX_OFFER_DIGEST_BYTES) {
        const uint8_t *bytes = val.mv_data;
        rc = gkx_offer_decode (offer_p, bytes + GKX_OFFER_DIGEST_BYTES,
                               val.mv_size - GKX_OFFER_DIGEST_BYTES, NULL) == GKX_OK
            ? GKX_OK : GKX_ESTORE;
        if (rc == GKX_OK && digest) {
            memcpy (digest, bytes, GKX_OFFER_DIGEST_BYTES);
        }
    }
    else {
        rc = mrc == MDB_NOTFOUND ? GKX_ENOTFOUND : GKX_ESTORE;
    }
    mdb_txn_abort (txn);
    return rc;
}

int
gkx_store_digest (gkx_store_t *self, const uint8_t pid[GKX_ID_BYTES],
                  uint8_t digest[GKX_OFFER_DIGEST_BYTES])
{
    MDB_txn *txn;
    int rc = s_read_begin (self, &txn, NULL);
    if (rc != GKX_OK) {
        return rc;
    }
    MDB_val key = {GKX_ID_BYTES, (void *) pid};
    MDB_val val;
    int mrc = mdb_get (txn, self->offers, &key, &val);
    if (mrc == 0 && val.mv_size >= GKX_OFFER_DIGEST_BYTES) {
        memcpy (digest, val.mv_data, GKX_OFFER_DIGEST_BYTES);
    }
    else {
        rc = mrc == MDB_NOTFOUND ? GKX_ENOTFOUND : GKX_ESTORE;
    }
    mdb_txn_abort (txn);
    return rc;
}

/* Context of a rebuild. */
typedef struct {
    const uint8_t *pid;
    int changed;
} s_rebuild_ctx_t;

/* Whether entries of kind change the offer's merge state. */
static int
s_kind_merges (int kind)
{
    return kind == GKX_KIND_GENESIS || kind == GKX_KIND_EDIT || kind == GKX_KIND_PROPOSE
           || kind == GKX_KIND_ANSWER;
}

/* Applies every stored entry of one chain that changes the offer to state,
   in seq order. */
static int
s_rebuild_chain (gkx_store_t *self, MDB_txn *txn, const s_prec_t *rec, int role,
                 gkx_merge_t **state, char *errbuf)
{
    MDB_cursor *cursor;
    uint8_t start[S_ENTRY_KEY_BYTES];
    s_entry_key (start, rec->pub.pid, role, 1);
    int mrc = mdb_cursor_open (txn, self->entries, &cursor);
    if (mrc != 0) {
        return s_mdb_fail (errbuf, mrc, "opening a cursor");
    }
    MDB_val key = {sizeof start, start};
    MDB_val val;
    int rc = GKX_OK;
    mrc = mdb_cursor_get (cursor, &key, &val, MDB_SET_RANGE);
    while (rc == GKX_OK && mrc == 0 && key.mv_size == S_ENTRY_KEY_BYTES
           && memcmp (key.mv_data, start, S_HEAD_KEY_BYTES) == 0) {
        /* Conversions and acks, most of a chain, leave the offer as it is:
           skipped unread, a rebuild costs the edits, not the conversions
           (with more partnerships busy than the cache holds, each
           conversion rebuilt its partnership's state from the whole
           chain: 47 % of the advertiser's time at 10,000 partnerships). */
        int peeked;
        if (val.mv_size > S_ENTRY_PREFIX_BYTES
            && gkx_entry_peek_kind ((const uint8_t *) val.mv_data + S_ENTRY_PREFIX_BYTES,
                                    val.mv_size - S_ENTRY_PREFIX_BYTES, &peeked) == GKX_OK
            && !s_kind_merges (peeked)) {
            mrc = mdb_cursor_get (cursor, &key, &val, MDB_NEXT);
            continue;
        }
        gkx_entry_t *entry = NULL;
        rc = s_decode_value (&val, &entry);
        if (rc != GKX_OK) {
            rc = gkx_fail (errbuf, GKX_ESTORE, "rebuild: a stored entry does not decode");
            break;
        }
        int kind = gkx_entry_kind (entry);
        char merr[GKX_ERRBUF_BYTES] = "";
        if (kind == GKX_KIND_GENESIS) {
            msgpack_sbuffer offer;
            msgpack_sbuffer policy;
            msgpack_sbuffer_init (&offer);
            msgpack_sbuffer_init (&policy);
            gkx_genesis_values (entry, &offer, &policy);
            rc = gkx_merge_open (state, rec->pub.advertiser, rec->pub.publisher,
                                 (const uint8_t *) offer.data, offer.size,
                                 (const uint8_t *) policy.data, policy.size, merr);
            msgpack_sbuffer_destroy (&offer);
            msgpack_sbuffer_destroy (&policy);
        }
        else if (*state) {
            size_t body_len;
            const uint8_t *body = gkx_entry_body (entry, &body_len);
            gkx_merge_entry_t me = {kind, role, gkx_entry_author (entry), gkx_entry_seq (entry),
                                    gkx_entry_seen_seq (entry), gkx_entry_hlc (entry),
                                    gkx_entry_hash (entry), body, body_len};
            rc = gkx_merge_apply (*state, &me, merr);
        }
        if (rc != GKX_OK) {
            gkx_fail (errbuf, rc, "rebuild: %s seq %llu: %s", gkx_role_name (role),
                      (unsigned long long) gkx_entry_seq (entry), merr);
        }
        gkx_entry_destroy (&entry);
        mrc = mdb_cursor_get (cursor, &key, &val, MDB_NEXT);
    }
    mdb_cursor_close (cursor);
    return rc;
}

static int
s_build_state (gkx_store_t *self, MDB_txn *txn, const uint8_t pid[GKX_ID_BYTES],
               gkx_merge_t **state_p, char *errbuf)
{
    s_prec_t rec;
    gkx_merge_t *state = NULL;
    int rc = s_prec_get (self, txn, pid, &rec, errbuf);
    if (rc == GKX_OK) {
        rc = s_rebuild_chain (self, txn, &rec, GKX_ROLE_ADVERTISER, &state, errbuf);
    }
    if (rc == GKX_OK && !state) {
        rc = gkx_fail (errbuf, GKX_ESTORE, "store: the genesis entry is missing");
    }
    if (rc == GKX_OK) {
        rc = s_rebuild_chain (self, txn, &rec, GKX_ROLE_PUBLISHER, &state, errbuf);
    }
    if (rc != GKX_OK) {
        gkx_merge_destroy (&state);
        return rc;
    }
    *state_p = state;
    return GKX_OK;
}

/* Transaction body of gkx_store_rebuild: a fresh state replaces the cached
   one and the materialised offer. */
static int
s_rebuild_txn (gkx_store_t *self, MDB_txn *txn, void *arg, char *errbuf)
{
    s_rebuild_ctx_t *ctx = arg;
    gkx_merge_t *state = NULL;
    int rc = s_build_state (self, txn, ctx->pid, &state, errbuf);
    if (rc != GKX_OK) {
        return rc;
    }
    uint8_t digest[GKX_OFFER_DIGEST_BYTES];
    gkx_offer_digest (gkx_merge_offer (state), digest);
    MDB_val key = {GKX_ID_BYTES, (void *) ctx->pid};
    MDB_val val;
    int mrc = mdb_get (txn, self->offers, &key, &val);
    ctx->changed = mrc != 0 || val.mv_size < GKX_OFFER_DIGEST_BYTES
        || memcmp (val.mv_data, digest, GKX_OFFER_DIGEST_BYTES) != 0;
    return s_state_put (self, txn, ctx->pid, s_cache_put (self, ctx->pid, &state), errbuf);
}

int
gkx_store_rebuild (gkx_store_t *self, const uint8_t pid[GKX_ID_BYTES], int *changed_p,
                   char *errbuf)
{
    s_rebuild_ctx_t ctx = {pid, 0};
    int rc = s_write (self, s_rebuild_txn, &ctx, errbuf);
    if (rc == GKX_OK && changed_p) {
        *changed_p = ctx.changed;
    }
    return rc;
}

/* Transaction body of gkx_store_peer_put. */
static int
s_peer_put_txn (gkx_store_t *self, MDB_txn *txn, void *arg, char *errbuf)
{
    const gkx_card_t *card = arg;
    MDB_val key = {GKX_ID_BYTES, (void *) gkx_card_id (card)};
    MDB_val val;
    int rc = mdb_get (txn, self->peers, &key, &val);
    if (rc == 0) {
        gkx_card_t *held = NULL;
        if (gkx_card_decode (&held, val.mv_data, val.mv_size, NULL) == GKX_OK) {
            int newer = gkx_card_timestamp (held) > gkx_card_timestamp (card);
            gkx_card_destroy (&held);
            if (newer) {
                return GKX_OK;
            }
        }
    }
    size_t len;
    const uint8_t *bytes = gkx_card_bytes (card, &len);
    MDB_val put = {len, (void *) bytes};
    rc = mdb_put (txn, self->peers, &key, &put, 0);
    return rc == 0 ? GKX_OK : s_mdb_fail (errbuf, rc, "writing a peer");
}

int
gkx_store_peer_put (gkx_store_t *self, const gkx_card_t *card, char *errbuf)
{
    return s_write (self, s_peer_put_txn, (void *) card, errbuf);
}

int
gkx_store_peer_get (gkx_store_t *self, const uint8_t id[GKX_ID_BYTES], gkx_card_t **card_p)
{
    MDB_txn *txn;
    int rc = s_read_begin (self, &txn, NULL);
    if (rc != GKX_OK) {
        return rc;
    }
    MDB_val key = {GKX_ID_BYTES, (void *) id};
    MDB_val val;
    int mrc = mdb_get (txn, self->peers, &key, &val);
    if (mrc == 0) {
        rc = gkx_card_decode (card_p, val.mv_data, val.mv_size, NULL) == GKX_OK ? GKX_OK
                                                                             : GKX_ESTORE;
    }
    else {
        rc = mrc == MDB_NOTFOUND ? GKX_ENOTFOUND : GKX_ESTORE;
    }
    mdb_txn_abort (txn);
    return rc;
}

int
gkx_store_peers (gkx_store_t *self, int (*fn) (const gkx_card_t *card, void *arg), void *arg)
{
    s_walk_ctx_t ctx = {NULL, NULL, fn, arg, 0};
    return s_walk (self, self->peers, NULL, 0, NULL, 0, s_visit_peer, &ctx);
}

/* Metadata key of this node's own withdrawal time (gkx_store_directory_withdrawn). */
#define S_META_WITHDRAWN "withdrawn"

/* Writes the directory key of a record: its tag ('c' card, 'w' withdrawal)
   and the id. */
static void
s_directory_key (uint8_t key[1 + GKX_ID_BYTES], uint8_t tag, const uint8_t id[GKX_ID_BYTES])
{
    key[0] = tag;
    memcpy (key + 1, id, GKX_ID_BYTES);
}

/* Reads the withdrawal of id the directory holds into *w_p (NULL when none). */
static int
s_directory_withdrawal (gkx_store_t *self, MDB_txn *txn, const uint8_t id[GKX_ID_BYTES],
                        gkx_withdrawal_t **w_p, char *errbuf)
{
    uint8_t kbuf[1 + GKX_ID_BYTES];
    s_directory_key (kbuf, 'w', id);
    MDB_val key = {sizeof kbuf, kbuf};
    MDB_val val;
    *w_p = NULL;
    int rc = mdb_get (txn, self->directory, &key, &val);
    if (rc == MDB_NOTFOUND) {
        return GKX_OK;
    }
    if (rc != 0) {
        return s_mdb_fail (errbuf, rc, "reading a withdrawal");
    }
    if (gkx_withdrawal_decode (w_p, val.mv_data, val.mv_size, NULL) != GKX_OK) {
        return gkx_fail (errbuf, GKX_ESTORE, "store: damaged withdrawal record");
    }
    return GKX_OK;
}

/* Reads the card of id the directory holds into *card_p (NULL when none). */
static int
s_directory_card (gkx_store_t *self, MDB_txn *txn, const uint8_t id[GKX_ID_BYTES],
                  gkx_card_t **card_p, char *errbuf)
{
    uint8_t kbuf[1 + GKX_ID_BYTES];
    s_directory_key (kbuf, 'c', id);
    MDB_val key = {sizeof kbuf, kbuf};
    MDB_val val;
    *card_p = NULL;
    int rc = mdb_get (txn, self->directory, &key, &val);
    if (rc == MDB_NOTFOUND) {
        return GKX_OK;
    }
    if (rc != 0) {
        return s_mdb_fail (errbuf, rc, "reading a directory card");
    }
    if (gkx_card_decode (card_p, val.mv_data, val.mv_size, NULL) != GKX_OK) {
        return gkx_fail (errbuf, GKX_ESTORE, "store: damaged directory card");
    }
    return GKX_OK;
}

/* Transaction body of gkx_store_directory_put. */
static int
s_directory_put_txn (gkx_store_t *self, MDB_txn *txn, void *arg, char *errbuf)
{
    const gkx_card_t *card = arg;
    gkx_withdrawal_t *w = NULL;
    gkx_card_t *held = NULL;
    size_t len;
    const uint8_t *bytes = gkx_card_bytes (card, &len);
    int rc = s_directory_withdrawal (self, txn, gkx_card_id (card), &w, errbuf);
    if (rc == GKX_OK && w && gkx_withdrawal_is_covering (w, card)) {
        rc = gkx_fail (errbuf, GKX_EPOLICY,
                       "card of %s: withdrawn by its owner at %llu, and issued at %llu",
                       gkx_card_name (card), (unsigned long long) gkx_withdrawal_time (w),
                       (unsigned long long) gkx_card_timestamp (card));
    }
    if (rc == GKX_OK) {
        rc = s_directory_card (self, txn, gkx_card_id (card), &held, errbuf);
    }
    size_t held_len = 0;
    const uint8_t *held_bytes = held ? gkx_card_bytes (held, &held_len) : NULL;
    int same = held && held_len == len && memcmp (held_bytes, bytes, len) == 0;
    if (rc == GKX_OK && held && !same && gkx_card_timestamp (held) >= gkx_card_timestamp (card)) {
        rc = gkx_fail (errbuf, GKX_EEXIST,
                       "card of %s: issued at %llu, not after the card held (issued at %llu)",
                       gkx_card_name (card), (unsigned long long) gkx_card_timestamp (card),
                       (unsigned long long) gkx_card_timestamp (held));
    }
    if (rc == GKX_OK && !same) {
        uint8_t kbuf[1 + GKX_ID_BYTES];
        s_directory_key (kbuf, 'c', gkx_card_id (card));
        MDB_val key = {sizeof kbuf, kbuf};
        MDB_val val = {len, (void *) bytes};
        int mrc = mdb_put (txn, self->directory, &key, &val, 0);
        rc = mrc == 0 ? GKX_OK : s_mdb_fail (errbuf, mrc, "writing a directory card");
    }
    gkx_card_destroy (&held);
    gkx_withdrawal_destroy (&w);
    return rc;
}

int
gkx_store_directory_put (gkx_store_t *self, const gkx_card_t *card, char *errbuf)
{
    assert (self && card);
    return s_write (self, s_directory_put_txn, (void *) card, errbuf);
}

/* Transaction body of gkx_store_directory_withdraw. */
static int
s_directory_withdraw_txn (gkx_store_t *self, MDB_txn *txn, void *arg, char *errbuf)
{
    const gkx_withdrawal_t *w = arg;
    const uint8_t *id = gkx_withdrawal_id (w);
    gkx_withdrawal_t *held = NULL;
    gkx_card_t *card = NULL;
    int rc = s_directory_withdrawal (self, txn, id, &held, errbuf);
    if (rc == GKX_OK && held && gkx_withdrawal_time (held) >= gkx_withdrawal_time (w)) {
        /* The same withdrawal sent again is done already; an older one is stale. */
        rc = gkx_withdrawal_time (held) == gkx_withdrawal_time (w)
            ? GKX_OK
            : gkx_fail (errbuf, GKX_EEXIST,
                        "withdrawal made at %llu, before the one held (made at %llu)",
                        (unsigned long long) gkx_withdrawal_time (w),
                        (unsigned long long) gkx_withdrawal_time (held));
        gkx_withdrawal_destroy (&held);
        return rc;
    }
    gkx_withdrawal_destroy (&held);
    uint8_t kbuf[1 + GKX_ID_BYTES];
    if (rc == GKX_OK) {
        rc = s_directory_card (self, txn, id, &card, errbuf);
    }
    if (rc == GKX_OK && card && gkx_withdrawal_is_covering (w, card)) {
        s_directory_key (kbuf, 'c', id);
        MDB_val key = {sizeof kbuf, kbuf};
        int mrc = mdb_del (txn, self->directory, &key, NULL);
        rc = mrc == 0 ? GKX_OK : s_mdb_fail (errbuf, mrc, "dropping a directory card");
    }
    if (rc == GKX_OK) {
        size_t len;
        const uint8_t *bytes = gkx_withdrawal_bytes (w, &len);
        s_directory_key (kbuf, 'w', id);
        MDB_val key = {sizeof kbuf, kbuf};
        MDB_val val = {len, (void *) bytes};
        int mrc = mdb_put (txn, self->directory, &key, &val, 0);
        rc = mrc == 0 ? GKX_OK : s_mdb_fail (errbuf, mrc, "writing a withdrawal");
    }
    gkx_card_destroy (&card);
    return rc;
}

int
gkx_store_directory_withdraw (gkx_store_t *self, const gkx_withdrawal_t *w, char *errbuf)
{
    assert (self && w);
    return s_write (self, s_directory_withdraw_txn, (void *) w, errbuf);
}

int
gkx_store_directory_cards (gkx_store_t *self, int (*fn) (const gkx_card_t *card, void *arg),
                           void *arg)
{
    static const uint8_t tag = 'c';
    s_walk_ctx_t ctx = {NULL, NULL, fn, arg, 0};
    return s_walk (self, self->directory, &tag, 1, &tag, 1, s_visit_peer, &ctx);
}

uint64_t
gkx_store_directory_withdrawn (gkx_store_t *self)
{
    MDB_txn *txn;
    uint64_t time_ms = 0;
    if (s_read_begin (self, &txn, NULL) == GKX_OK) {
        if (s_meta_u64 (self, txn, S_META_WITHDRAWN, &time_ms, NULL) != GKX_OK) {
            time_ms = 0;
        }
        mdb_txn_abort (txn);
    }
    return time_ms;
}

/* Transaction body of gkx_store_directory_set_withdrawn. */
static int
s_set_withdrawn_txn (gkx_store_t *self, MDB_txn *txn, void *arg, char *errbuf)
{
    return s_meta_put_u64 (self, txn, S_META_WITHDRAWN, *(const uint64_t *) arg, errbuf);
}

int
gkx_store_directory_set_withdrawn (gkx_store_t *self, uint64_t time_ms, char *errbuf)
{
    assert (self);
    return s_write (self, s_set_withdrawn_txn, &time_ms, errbuf);
}

int
gkx_store_conversion_find (gkx_store_t *self, const uint8_t pid[GKX_ID_BYTES],
                           const uint8_t dedupe[16], uint8_t hash[GKX_HASH_BYTES])
{
    MDB_txn *txn;
    int rc = s_read_begin (self, &txn, NULL);
    if (rc != GKX_OK) {
        return rc;
    }
    uint8_t kbuf[GKX_ID_BYTES + GKX_CONVERSION_DEDUPE_BYTES];
    memcpy (kbuf, pid, GKX_ID_BYTES);
    memcpy (kbuf + GKX_ID_BYTES, dedupe, GKX_CONVERSION_DEDUPE_BYTES);
    MDB_val key = {sizeof kbuf, kbuf};
    MDB_val val;
    int mrc = mdb_get (txn, self->dedupe, &key, &val);
    if (mrc == 0 && val.mv_size == GKX_HASH_BYTES) {
        memcpy (hash, val.mv_data, GKX_HASH_BYTES);
    }
    else {
        rc = mrc == MDB_NOTFOUND ? GKX_ENOTFOUND : GKX_ESTORE;
    }
    mdb_txn_abort (txn);
    return rc;
}

uint64_t
gkx_store_hlc (gkx_store_t *self)
{
    MDB_txn *txn;
    uint64_t hlc = 0;
    if (s_read_begin (self, &txn, NULL) == GKX_OK) {
        if (s_meta_u64 (self, txn, "hlc", &hlc, NULL) != GKX_OK) {
            hlc = 0;
        }
        mdb_txn_abort (txn);
    }
    return hlc;
}

void
gkx_store_short_id (char out[GKX_STORE_SHORT_ID_CHARS + 1], const uint8_t pid[GKX_ID_BYTES])
{
    sodium_bin2hex (out, GKX_STORE_SHORT_ID_CHARS + 1, pid, GKX_STORE_SHORT_ID_CHARS / 2);
}

int
gkx_store_short_find (gkx_store_t *self, const char *text, uint8_t pid[GKX_ID_BYTES])
{
    uint8_t prefix[GKX_STORE_SHORT_ID_CHARS / 2];
    size_t bin_len = 0;
    const char *end = NULL;
    if (strlen (text) != GKX_STORE_SHORT_ID_CHARS
        || sodium_hex2bin (prefix, sizeof prefix, text, GKX_STORE_SHORT_ID_CHARS, NULL, &bin_len,
                           &end) != 0
        || bin_len != sizeof prefix || *end != '\0') {
        return GKX_EINVAL;
    }
    MDB_txn *txn;
    MDB_cursor *cursor;
    int rc = s_read_begin (self, &txn, NULL);
    if (rc != GKX_OK) {
        return rc;
    }
    if (mdb_cursor_open (txn, self->partnerships, &cursor) != 0) {
        mdb_txn_abort (txn);
        return GKX_ESTORE;
    }
    MDB_val key = {sizeof prefix, prefix};
    MDB_val val;
    int mrc = mdb_cursor_get (cursor, &key, &val, MDB_SET_RANGE);
    rc = GKX_ENOTFOUND;
    if (mrc == 0 && key.mv_size == GKX_ID_BYTES
        && memcmp (key.mv_data, prefix, sizeof prefix) == 0) {
        memcpy (pid, key.mv_data, GKX_ID_BYTES);
        rc = GKX_OK;
        /* Two partnerships sharing 64 bits of a random id: name neither. */
        mrc = mdb_cursor_get (cursor, &key, &val, MDB_NEXT);
        if (mrc == 0 && memcmp (key.mv_data, prefix, sizeof prefix) == 0) {
            rc = GKX_ENOTFOUND;
        }
    }
    else if (mrc != 0 && mrc != MDB_NOTFOUND) {
        rc = GKX_ESTORE;
    }
    mdb_cursor_close (cursor);
    mdb_txn_abort (txn);
    return rc;
}

int
gkx_store_conversion (gkx_store_t *self, const uint8_t pid[GKX_ID_BYTES],
                      const uint8_t id[GKX_HASH_BYTES], gkx_store_conversion_t *out)
{
    MDB_txn *txn;
    int rc = s_read_begin (self, &txn, NULL);
    if (rc != GKX_OK) {
        return rc;
    }
    rc = s_conv_get (self, txn, pid, id, out, NULL);
    mdb_txn_abort (txn);
    return rc == S_MAP_FULL ? GKX_ESTORE : rc;
}

/* Context of gkx_store_convert. */
typedef struct {
    const gkx_identity_t *identity;
    gkx_store_convert_t *items;
    size_t count;
} s_convert_ctx_t;

/* Resets an item's outputs, for the first run or a retry after the map grew. */
static void
s_convert_reset (gkx_store_convert_t *item)
{
    item->rc = GKX_OK;
    item->errbuf[0] = '\0';
    item->duplicate = 0;
    memset (&item->conversion, 0, sizeof item->conversion);
    item->currency[0] = '\0';
    item->budget_spent = 0;
    gkx_entry_destroy (&item->entry);
}

/* Checks that the partnership of an item takes a conversion from this node. */
static int
s_convert_check (gkx_store_t *self, MDB_txn *txn, gkx_store_convert_t *item)
{
    s_prec_t rec;
    int rc = s_prec_get (self, txn, item->pid, &rec, item->errbuf);
    if (rc != GKX_OK) {
        return rc;
    }
    if (rec.pub.self_role != GKX_ROLE_ADVERTISER) {
        return gkx_fail (item->errbuf, GKX_EPOLICY,
                         "conversions are written by the partnership's advertiser only");
    }
    if (rec.pub.is_frozen) {
        return gkx_fail (item->errbuf, GKX_EFROZEN, "the partnership is frozen (equivocation)");
    }
    gkx_head_t own;
    rc = s_head_get (self, txn, item->pid, GKX_ROLE_ADVERTISER, &own, item->errbuf);
    if (rc == GKX_OK && own.seq < rec.claimed_seq) {
        return gkx_fail (item->errbuf, GKX_EAHEAD,
                         "the node is taking back its own entries; try again shortly");
    }
    return rc;
}

/* Decides one postback's conversion and appends it. Returns GKX_OK (the
   item's rc says whether it was written) or a store error for the lot. */
static int
s_convert_one (gkx_store_t *self, MDB_txn *txn, s_convert_ctx_t *ctx, gkx_store_convert_t *item,
               char *errbuf)
{
    item->rc = s_convert_check (self, txn, item);
    if (item->rc == GKX_ESTORE || item->rc == S_MAP_FULL) {
        return item->rc;
    }
    if (item->rc != GKX_OK) {
        return GKX_OK;
    }
    uint8_t kbuf[GKX_ID_BYTES + GKX_CONVERSION_DEDUPE_BYTES];
    memcpy (kbuf, item->pid, GKX_ID_BYTES);
    memcpy (kbuf + GKX_ID_BYTES, item->draft.dedupe, GKX_CONVERSION_DEDUPE_BYTES);
    MDB_val key = {sizeof kbuf, kbuf};
    MDB_val val;
    int rc = mdb_get (txn, self->dedupe, &key, &val);
    gkx_merge_t *state = NULL;
    if (rc == 0 && val.mv_size == GKX_HASH_BYTES) {
        item->duplicate = 1;
        rc = s_conv_get (self, txn, item->pid, val.mv_data, &item->conversion, errbuf);
        if (rc == GKX_OK) {
            rc = s_state_get (self, txn, item->pid, &state, errbuf);
        }
        if (rc == GKX_OK) {
            gkx_conversion_terms_t terms;
            gkx_conversion_terms_read (&terms, gkx_merge_offer (state));
            snprintf (item->currency, sizeof item->currency, "%s", terms.currency);
        }
        return rc;
    }
    if (rc != MDB_NOTFOUND) {
        return s_mdb_fail (errbuf, rc, "reading the dedupe index");
    }
    rc = s_state_get (self, txn, item->pid, &state, errbuf);
    if (rc != GKX_OK) {
        return rc;
    }
    /* The causal past of the entry about to be written is everything this
       node holds, so the offer in force is the current one. */
    const gkx_offer_t *offer = gkx_merge_offer (state);
    gkx_conversion_terms_t terms;
    gkx_conversion_terms_read (&terms, offer);
    gkx_conversion_counters_t counters;
    rc = s_counters_read (self, txn, item->pid, item->facts.time, &counters, errbuf);
    if (rc != GKX_OK) {
        return rc;
    }
    counters.paused_since = s_hlc_seconds (gkx_merge_status_hlc (state));
    if (item->revenue_currency[0] && strcmp (item->revenue_currency, terms.currency) != 0) {
        item->facts.has_revenue = 0;
    }
    gkx_conversion_decision_t decision;
    item->rc = gkx_conversion_decide (&decision, offer, &counters, &item->facts, item->errbuf);
    if (item->rc != GKX_OK) {
        return GKX_OK;
    }
    gkx_conversion_t *draft = &item->draft;
    snprintf (draft->currency, sizeof draft->currency, "%s", terms.currency);
    draft->payout = decision.payout;
    draft->status = decision.status;
    snprintf (draft->reason, sizeof draft->reason, "%s", decision.reason);
    uint8_t *body = NULL;
    size_t body_len = 0;
    item->rc = gkx_conversion_encode (&body, &body_len, draft, item->errbuf);
    if (item->rc != GKX_OK) {
        return GKX_OK;
    }
    s_prec_t rec;
    rc = s_prec_get (self, txn, item->pid, &rec, errbuf);
    s_append_ctx_t actx = {ctx->identity, item->pid, GKX_KIND_CONVERSION, body, body_len,
                           NULL, NULL, NULL};
    if (rc == GKX_OK) {
        rc = s_append_entry (self, txn, &actx, &rec, errbuf);
    }
    gkx_free (body);
    if (rc == GKX_OK) {
        item->entry = actx.entry;
        actx.entry = NULL;
        rc = s_conv_get (self, txn, item->pid, gkx_entry_hash (item->entry), &item->conversion,
                         errbuf);
    }
    gkx_entry_destroy (&actx.entry);
    if (rc != GKX_OK) {
        return rc;
    }
    snprintf (item->currency, sizeof item->currency, "%s", terms.currency);
    /* Spent: the sum reached the budget, or this payout would pass it. */
    if (terms.budget_total != GKX_CONVERSION_NONE) {
        int64_t spent = counters.total_payout;
        if (s_is_counted (decision.status)) {
            spent = s_sum_add (spent, decision.payout, 1);
        }
        item->budget_spent = spent >= terms.budget_total
            || (strcmp (decision.reason, GKX_CONVERSION_REASON_BUDGET) == 0
                && s_sum_add (counters.total_payout, decision.payout, 1) > terms.budget_total);
    }
    return GKX_OK;
}

/* Transaction body of gkx_store_convert. */
static int
s_convert_txn (gkx_store_t *self, MDB_txn *txn, void *arg, char *errbuf)
{
    s_convert_ctx_t *ctx = arg;
    for (size_t i = 0; i < ctx->count; i++) {
        s_convert_reset (&ctx->items[i]);
    }
    for (size_t i = 0; i < ctx->count; i++) {
        int rc = s_convert_one (self, txn, ctx, &ctx->items[i], errbuf);
        if (rc != GKX_OK) {
            return rc;
        }
    }
    return GKX_OK;
}

int
gkx_store_convert (gkx_store_t *self, const gkx_identity_t *identity,
                   gkx_store_convert_t *items, size_t count, char *errbuf)
{
    assert (self && identity && (items || count == 0));
    assert (memcmp (gkx_identity_id (identity), self->self_id, GKX_ID_BYTES) == 0);
    s_convert_ctx_t ctx = {identity, items, count};
    int rc = s_write (self, s_convert_txn, &ctx, errbuf);
    if (rc != GKX_OK) {
        for (size_t i = 0; i < count; i++) {
            gkx_entry_destroy (&items[i].entry);
            items[i].rc = rc;
            snprintf (items[i].errbuf, sizeof items[i].errbuf, "%s", errbuf ? errbuf : "");
        }
    }
    return rc;
}

int
gkx_store_notices_waiting (gkx_store_t *self, size_t limit,
                           int (*fn) (const gkx_notice_t *notice, void *arg), void *arg)
{
    assert (self && fn);
    MDB_txn *txn;
    MDB_cursor *cursor;
    int rc = s_read_begin (self, &txn, NULL);
    if (rc != GKX_OK) {
        return rc;
    }
    if (mdb_cursor_open (txn, self->waiting, &cursor) != 0) {
        mdb_txn_abort (txn);
        return GKX_ESTORE;
    }
    MDB_val key;
    MDB_val val;
    int result = GKX_OK;
    int mrc = mdb_cursor_get (cursor, &key, &val, MDB_FIRST);
    while (mrc == 0 && limit-- > 0) {
        MDB_val nval;
        gkx_notice_t n;
        if (mdb_get (txn, self->notices, &key, &nval) != 0
            || s_notice_decode (&n, &key, &nval) != GKX_OK) {
            result = GKX_ESTORE;
            break;
        }
        result = fn (&n, arg);
        if (result != 0) {
            break;
        }
        mrc = mdb_cursor_get (cursor, &key, &val, MDB_NEXT);
    }
    mdb_cursor_close (cursor);
    mdb_txn_abort (txn);
    return result;
}

int
gkx_store_notice_get (gkx_store_t *self, uint64_t id, gkx_notice_t *out)
{
    assert (self && out);
    MDB_txn *txn;
    int rc = s_read_begin (self, &txn, NULL);
    if (rc != GKX_OK) {
        return rc;
    }
    uint8_t kbuf[8];
    s_put_be64 (kbuf, id);
    MDB_val key = {sizeof kbuf, kbuf};
    MDB_val val;
    int mrc = mdb_get (txn, self->notices, &key, &val);
    if (mrc == 0) {
        rc = s_notice_decode (out, &key, &val);
    }
    else {
        rc = mrc == MDB_NOTFOUND ? GKX_ENOTFOUND : GKX_ESTORE;
    }
    mdb_txn_abort (txn);
    return rc;
}

/* A message to make: the record (its id set here) and its bodies. */
typedef struct {
    gkx_message_t *m;
    const char *text;
    const char *html;
} s_message_add_t;

/* Transaction body of gkx_store_message_add. */
static int
s_message_add_txn (gkx_store_t *self, MDB_txn *txn, void *arg, char *errbuf)
{
    s_message_add_t *ctx = arg;
    gkx_message_t *m = ctx->m;
    for (size_t i = 0; i < m->notice_count; i++) {
        uint8_t kbuf[8];
        s_put_be64 (kbuf, m->notices[i]);
        MDB_val key = {sizeof kbuf, kbuf};
        int rc = mdb_del (txn, self->waiting, &key, NULL);
        if (rc == MDB_NOTFOUND) {
            return gkx_fail (errbuf, GKX_EINVAL, "store: notice %llu is not waiting",
                             (unsigned long long) m->notices[i]);
        }
        if (rc != 0) {
            return s_mdb_fail (errbuf, rc, "taking a notice");
        }
    }
    uint64_t last;
    int rc = s_meta_u64 (self, txn, "message", &last, errbuf);
    if (rc != GKX_OK) {
        return rc;
    }
    m->id = last + 1;
    size_t text_len = strlen (ctx->text);
    size_t html_len = strlen (ctx->html);
    size_t body_len = 4 + text_len + 4 + html_len;
    uint8_t *body = gkx_zalloc (body_len);
    uint8_t *p = body;
    for (int i = 0; i < 4; i++) {
        p[i] = (uint8_t) (text_len >> (24 - 8 * i));
        p[4 + text_len + (size_t) i] = (uint8_t) (html_len >> (24 - 8 * i));
    }
    memcpy (p + 4, ctx->text, text_len);
    memcpy (p + 8 + text_len, ctx->html, html_len);
    rc = s_message_write (self, txn, m, body, body_len, errbuf);
    gkx_free (body);
    if (rc == GKX_OK) {
        rc = s_meta_put_u64 (self, txn, "message", m->id, errbuf);
    }
    return rc;
}

int
gkx_store_message_add (gkx_store_t *self, gkx_message_t *m, const char *text, const char *html,
                       char *errbuf)
{
    assert (self && m && text && html);
    assert (memchr (m->subject, '\0', sizeof m->subject));
    assert (memchr (m->last_error, '\0', sizeof m->last_error));
    if (m->notice_count == 0 || m->notice_count > GKX_MESSAGE_NOTICES_MAX) {
        return gkx_fail (errbuf, GKX_EINVAL, "store: a message holds 1 to %d notices, not %zu",
                         GKX_MESSAGE_NOTICES_MAX, m->notice_count);
    }
    if (strlen (text) > S_MESSAGE_BODY_MAX || strlen (html) > S_MESSAGE_BODY_MAX) {
        return gkx_fail (errbuf, GKX_EINVAL, "store: a message body is too large");
    }
    s_message_add_t ctx = {m, text, html};
    return s_write (self, s_message_add_txn, &ctx, errbuf);
}

/* Transaction body of gkx_store_message_put: the new record, the bodies
   kept. */
static int
s_message_put_txn (gkx_store_t *self, MDB_txn *txn, void *arg, char *errbuf)
{
    const gkx_message_t *m = arg;
    uint8_t kbuf[8];
    s_put_be64 (kbuf, m->id);
    MDB_val key = {sizeof kbuf, kbuf};
    MDB_val val;
    int rc = mdb_get (txn, self->messages, &key, &val);
    if (rc == MDB_NOTFOUND) {
        return gkx_fail (errbuf, GKX_ENOTFOUND, "store: no message %llu",
                         (unsigned long long) m->id);
    }
    if (rc != 0) {
        return s_mdb_fail (errbuf, rc, "reading a message");
    }
    gkx_message_t held;
    const uint8_t *body = NULL;
    size_t body_len = 0;
    if (s_message_decode (&held, &key, &val, &body, &body_len) != GKX_OK) {
        return gkx_fail (errbuf, GKX_ESTORE, "store: damaged message record");
    }
    /* The value lives in the map until this write replaces it: copy. */
    uint8_t *copy = gkx_zalloc (body_len + 1);
    memcpy (copy, body, body_len);
    gkx_message_t next = *m;
    next.notice_count = held.notice_count;
    memcpy (next.notices, held.notices, sizeof next.notices);
    rc = s_message_write (self, txn, &next, copy, body_len, errbuf);
    gkx_free (copy);
    return rc;
}

int
gkx_store_message_put (gkx_store_t *self, const gkx_message_t *m, char *errbuf)
{
    assert (self && m);
    assert (memchr (m->subject, '\0', sizeof m->subject));
    assert (memchr (m->last_error, '\0', sizeof m->last_error));
    return s_write (self, s_message_put_txn, (void *) m, errbuf);
}

/* Reads message id in a short read transaction; copies its bodies into
   *text_p and *html_p when text_p is not NULL. */
static int
s_message_read (gkx_store_t *self, uint64_t id, gkx_message_t *out, char **text_p,
                char **html_p)
{
    MDB_txn *txn;
    int rc = s_read_begin (self, &txn, NULL);
    if (rc != GKX_OK) {
        return rc;
    }
    uint8_t kbuf[8];
    s_put_be64 (kbuf, id);
    MDB_val key = {sizeof kbuf, kbuf};
    MDB_val val;
    const uint8_t *body = NULL;
    size_t body_len = 0;
    int mrc = mdb_get (txn, self->messages, &key, &val);
    if (mrc == 0) {
        rc = s_message_decode (out, &key, &val, &body, &body_len);
    }
    else {
        rc = mrc == MDB_NOTFOUND ? GKX_ENOTFOUND : GKX_ESTORE;
    }
    if (rc == GKX_OK && text_p) {
        const uint8_t *end = body + body_len;
        size_t text_len = s_get_len (&body, end, 4);
        const uint8_t *text = body;
        body += text_len == SIZE_MAX ? 0 : text_len;
        size_t html_len = text_len == SIZE_MAX ? SIZE_MAX : s_get_len (&body, end, 4);
        if (html_len == SIZE_MAX || body + html_len != end) {
            rc = GKX_ESTORE;
        }
        else {
            *text_p = gkx_zalloc (text_len + 1);
            memcpy (*text_p, text, text_len);
            *html_p = gkx_zalloc (html_len + 1);
            memcpy (*html_p, body, html_len);
        }
    }
    mdb_txn_abort (txn);
    return rc;
}

int
gkx_store_message_get (gkx_store_t *self, uint64_t id, gkx_message_t *out)
{
    assert (self && out);
    return s_message_read (self, id, out, NULL, NULL);
}

int
gkx_store_message_body (gkx_store_t *self, uint64_t id, char **text_p, char **html_p)
{
    assert (self && text_p && html_p);
    gkx_message_t m;
    return s_message_read (self, id, &m, text_p, html_p);
}

int
gkx_store_messages (gkx_store_t *self, size_t limit,
                    int (*fn) (const gkx_message_t *m, void *arg), void *arg)
{
    assert (self && fn);
    MDB_txn *txn;
    MDB_cursor *cursor;
    int rc = s_read_begin (self, &txn, NULL);
    if (rc != GKX_OK) {
        return rc;
    }
    if (mdb_cursor_open (txn, self->messages, &cursor) != 0) {
        mdb_txn_abort (txn);
        return GKX_ESTORE;
    }
    MDB_val key;
    MDB_val val;
    int result = GKX_OK;
    int mrc = mdb_cursor_get (cursor, &key, &val, MDB_LAST);
    while (mrc == 0 && limit-- > 0) {
        gkx_message_t m;
        if (s_message_decode (&m, &key, &val, NULL, NULL) != GKX_OK) {
            result = GKX_ESTORE;
            break;
        }
        result = fn (&m, arg);
        if (result != 0) {
            break;
        }
        mrc = mdb_cursor_get (cursor, &key, &val, MDB_PREV);
    }
    mdb_cursor_close (cursor);
    mdb_txn_abort (txn);
    return result;
}

int
gkx_store_messages_pending (gkx_store_t *self, uint64_t *count_p)
{
    assert (self && count_p);
    MDB_txn *txn;
    MDB_stat stat;
    int rc = s_read_begin (self, &txn, NULL);
    if (rc != GKX_OK) {
        return rc;
    }
    rc = mdb_stat (txn, self->outbox, &stat) == 0 ? GKX_OK : GKX_ESTORE;
    mdb_txn_abort (txn);
    if (rc == GKX_OK) {
        *count_p = stat.ms_entries;
    }
    return rc;
}

int
gkx_store_messages_due (gkx_store_t *self, uint64_t now_ms, size_t limit,
                        int (*fn) (const gkx_message_t *m, void *arg), void *arg)
{
    assert (self && fn);
    MDB_txn *txn;
    MDB_cursor *cursor;
    int rc = s_read_begin (self, &txn, NULL);
    if (rc != GKX_OK) {
        return rc;
    }
    if (mdb_cursor_open (txn, self->outbox, &cursor) != 0) {
        mdb_txn_abort (txn);
        return GKX_ESTORE;
    }
    MDB_val key;
    MDB_val val;
    int result = GKX_OK;
    int mrc = mdb_cursor_get (cursor, &key, &val, MDB_FIRST);
    while (mrc == 0 && limit > 0) {
        MDB_val mval;
        gkx_message_t m;
        if (mdb_get (txn, self->messages, &key, &mval) != 0
            || s_message_decode (&m, &key, &mval, NULL, NULL) != GKX_OK) {
            result = GKX_ESTORE;
            break;
        }
        if (m.next_attempt_ms <= now_ms) {
            limit--;
            result = fn (&m, arg);
            if (result != 0) {
                break;
            }
        }
        mrc = mdb_cursor_get (cursor, &key, &val, MDB_NEXT);
    }
    mdb_cursor_close (cursor);
    mdb_txn_abort (txn);
    return result;
}

/* Walk state of the delivery listings. */
typedef struct {
    int (*fn) (const gkx_delivery_t *d, void *arg);
    void *arg;
    uint64_t now_ms;
    size_t left;
} s_delivery_walk_t;

int
gkx_store_deliveries_due (gkx_store_t *self, uint64_t now_ms, size_t limit,
                          int (*fn) (const gkx_delivery_t *d, void *arg), void *arg)
{
    MDB_txn *txn;
    MDB_cursor *cursor;
    int rc = s_read_begin (self, &txn, NULL);
    if (rc != GKX_OK) {
        return rc;
    }
    if (mdb_cursor_open (txn, self->pending, &cursor) != 0) {
        mdb_txn_abort (txn);
        return GKX_ESTORE;
    }
    MDB_val key;
    MDB_val val;
    int result = GKX_OK;
    int mrc = mdb_cursor_get (cursor, &key, &val, MDB_FIRST);
    while (mrc == 0 && limit > 0) {
        MDB_val dval;
        gkx_delivery_t d;
        if (mdb_get (txn, self->deliveries, &key, &dval) != 0
            || s_delivery_decode (&d, &key, &dval) != GKX_OK) {
            result = GKX_ESTORE;
            break;
        }
        if (d.next_attempt_ms && d.next_attempt_ms <= now_ms) {
            limit--;
            result = fn (&d, arg);
            if (result != 0) {
                break;
            }
        }
        mrc = mdb_cursor_get (cursor, &key, &val, MDB_NEXT);
    }
    mdb_cursor_close (cursor);
    mdb_txn_abort (txn);
    return result;
}

int
gkx_store_deliveries (gkx_store_t *self, size_t limit,
                      int (*fn) (const gkx_delivery_t *d, void *arg), void *arg)
{
    MDB_txn *txn;
    MDB_cursor *cursor;
    int rc = s_read_begin (self, &txn, NULL);
    if (rc != GKX_OK) {
        return rc;
    }
    if (mdb_cursor_open (txn, self->deliveries, &cursor) != 0) {
        mdb_txn_abort (txn);
        return GKX_ESTORE;
    }
    MDB_val key;
    MDB_val val;
    int result = GKX_OK;
    int mrc = mdb_cursor_get (cursor, &key, &val, MDB_LAST);
    while (mrc == 0 && limit-- > 0) {
        gkx_delivery_t d;
        if (s_delivery_decode (&d, &key, &val) != GKX_OK) {
            result = GKX_ESTORE;
            break;
        }
        result = fn (&d, arg);
        if (result != 0) {
            break;
        }
        mrc = mdb_cursor_get (cursor, &key, &val, MDB_PREV);
    }
    mdb_cursor_close (cursor);
    mdb_txn_abort (txn);
    return result;
}

int
gkx_store_deliveries_pending (gkx_store_t *self, uint64_t *count_p)
{
    assert (self && count_p);
    MDB_txn *txn;
    MDB_stat stat;
    int rc = s_read_begin (self, &txn, NULL);
    if (rc != GKX_OK) {
        return rc;
    }
    rc = mdb_stat (txn, self->pending, &stat) == 0 ? GKX_OK : GKX_ESTORE;
    mdb_txn_abort (txn);
    if (rc == GKX_OK) {
        *count_p = stat.ms_entries;
    }
    return rc;
}

/* Adds the conversion counts of partnership pid, read in txn, to *out. */
static int
s_counts_read (gkx_store_t *self, MDB_txn *txn, const uint8_t pid[GKX_ID_BYTES], uint64_t day,
               gkx_store_conversion_counts_t *out)
{
    uint8_t key[S_TALLY_KEY_BYTES];
    uint64_t count;
    int64_t sum;
    s_tally_key (key, pid, S_COUNT_DAY, day);
    int rc = s_tally_get (self, txn, key, &count, &sum, NULL);
    out->day += count;
    for (int status = 1; rc == GKX_OK && status < GKX_STORE_STATUS_SLOTS; status++) {
        s_tally_key (key, pid, S_COUNT_RECORDED, (uint64_t) status);
        rc = s_tally_get (self, txn, key, &count, &sum, NULL);
        out->recorded[status] += count;
        if (rc == GKX_OK) {
            s_tally_key (key, pid, S_COUNT_CURRENT, (uint64_t) status);
            rc = s_tally_get (self, txn, key, &count, &sum, NULL);
            out->current[status] += count;
        }
    }
    return rc == GKX_OK ? GKX_OK : GKX_ESTORE;
}

/* Context of gkx_store_conversion_counts. */
typedef struct {
    uint64_t day;
    gkx_store_conversion_counts_t counts;
} s_conversion_counts_ctx_t;

/* Adds one partnership's counts, for gkx_store_conversion_counts. */
static int
s_count_conversions (gkx_store_t *self, MDB_txn *txn, const MDB_val *key, const MDB_val *val,
                     void *arg)
{
    (void) val;
    s_conversion_counts_ctx_t *ctx = arg;
    uint8_t pid[GKX_ID_BYTES];
    memcpy (pid, key->mv_data, GKX_ID_BYTES);
    return s_counts_read (self, txn, pid, ctx->day, &ctx->counts);
}

int
gkx_store_conversion_counts (gkx_store_t *self, uint64_t day, gkx_store_conversion_counts_t *out)
{
    assert (self && out);
    s_conversion_counts_ctx_t ctx;
    memset (&ctx, 0, sizeof ctx);
    ctx.day = day;
    int rc = s_each_partnership (self, s_count_conversions, &ctx);
    if (rc == GKX_OK) {
        *out = ctx.counts;
    }
    return rc;
}

int
gkx_store_delivery_get (gkx_store_t *self, uint64_t id, gkx_delivery_t *out)
{
    MDB_txn *txn;
    int rc = s_read_begin (self, &txn, NULL);
    if (rc != GKX_OK) {
        return rc;
    }
    uint8_t kbuf[8];
    s_put_be64 (kbuf, id);
    MDB_val key = {sizeof kbuf, kbuf};
    MDB_val val;
    int mrc = mdb_get (txn, self->deliveries, &key, &val);
    if (mrc == 0) {
        rc = s_delivery_decode (out, &key, &val);
    }
    else {
        rc = mrc == MDB_NOTFOUND ? GKX_ENOTFOUND : GKX_ESTORE;
    }
    mdb_txn_abort (txn);
    return rc;
}

/* Transaction body of gkx_store_delivery_put. */
static int
s_delivery_put_txn (gkx_store_t *self, MDB_txn *txn, void *arg, char *errbuf)
{
    const gkx_delivery_t *d = arg;
    uint8_t kbuf[8];
    s_put_be64 (kbuf, d->id);
    MDB_val key = {sizeof kbuf, kbuf};
    MDB_val val;
    int rc = mdb_get (txn, self->deliveries, &key, &val);
    if (rc == MDB_NOTFOUND) {
        return gkx_fail (errbuf, GKX_ENOTFOUND, "store: no delivery %llu",
                         (unsigned long long) d->id);
    }
    if (rc != 0) {
        return s_mdb_fail (errbuf, rc, "reading a delivery");
    }
    return s_delivery_write (self, txn, d, errbuf);
}

int
gkx_store_delivery_put (gkx_store_t *self, const gkx_delivery_t *d, char *errbuf)
{
    assert (self && d);
    return s_write (self, s_delivery_put_txn, (void *) d, errbuf);
}
