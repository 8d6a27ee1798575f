/*  test_store - the LMDB store: open, share, append, the ingest rules,
    equivocation, map growth, crash safety and the hybrid clock.
    Part of gokart-exchange; MIT licence.

    Every case runs real LMDB environments in temporary directories. The
    usual cast is two nodes, A the advertiser and B the publisher, each with
    its own identity and store; entries travel between them as their encoded
    bytes, the way a replication link carries them. Malicious entries are
    built by hand with gkx_entry_sign and the right author's key, so each
    refusal is the store's, not the entry layer's.
*/
#include "testutil.h"
#include "fixtures.h"

#include <gkx/codec.h>
#include <gkx/conversion.h>
#include <gkx/postback.h>
#include <gkx/entry.h>
#include <gkx/hlc.h>
#include <gkx/identity.h>
#include <gkx/kind.h>
#include <gkx/store.h>

#include <assert.h>
#include <errno.h>
#include <lmdb.h>
#include <signal.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>

/* Milliseconds of a fixed moment for tests that set the clock by hand. */
#define T0 1795491556923ULL
/* A small initial map, so that a few thousand entries must grow it. */
#define S_SMALL_MAP_BYTES ((size_t) 64 << 10)
/* Entries appended by the map growth test, and the padding of each body. */
#define S_GROWTH_ENTRIES 2500
#define S_PAD_BYTES 1000
/* Rounds of the crash test, and how many committed appends the parent
   waits for in each before it kills the writer (base + random part). */
#define S_CRASH_ROUNDS 5
#define S_CRASH_MIN_SEQS 100
#define S_CRASH_EXTRA_SEQS 200
/* Longest random pause before the kill, in microseconds. */
#define S_CRASH_MAX_DELAY_US 3000

/* A wall clock that the test sets by hand. */
typedef struct {
    uint64_t now_ms;
} s_clock_t;

/* One node under test. */
typedef struct {
    gkx_identity_t *identity;       /* its keys */
    gkx_store_t *store;             /* its open store, or NULL */
    gkx_store_options_t options;    /* what the store is opened with */
    char root[PATH_MAX];            /* temporary directory, removed at the end */
    char dir[PATH_MAX + 16];        /* the store's directory, root/store */
} s_node_t;

/* Reads the hand-set clock. */
static uint64_t
s_clock_read (void *arg)
{
    return ((const s_clock_t *) arg)->now_ms;
}

/* Opens (or reopens) a node's store, asserting success. */
static void
s_node_reopen (s_node_t *node)
{
    char errbuf[GKX_ERRBUF_BYTES] = "";
    gkx_store_close (&node->store);
    int rc = gkx_store_open (&node->store, node->dir, gkx_identity_id (node->identity),
                             &node->options, errbuf);
    ck_assert_msg (rc == GKX_OK, "open %s: %s (%s)", node->dir, gkx_errname (rc), errbuf);
}

/* Creates a node with a fresh identity and an open store in a new
   temporary directory; options may be NULL. */
static void
s_node_open (s_node_t *node, const gkx_store_options_t *options)
{
    memset (node, 0, sizeof *node);
    node->identity = gkx_identity_new ();
    if (options) {
        node->options = *options;
    }
    gkx_test_tmpdir (node->root);
    snprintf (node->dir, sizeof node->dir, "%s/store", node->root);
    s_node_reopen (node);
}

/* Closes the store, removes the temporary directory, frees the keys. */
static void
s_node_destroy (s_node_t *node)
{
    gkx_store_close (&node->store);
    gkx_test_rmtree (node->root);
    gkx_identity_destroy (&node->identity);
}

/* Copies one file. */
static void
s_copy_file (const char *from, const char *to)
{
    FILE *in = fopen (from, "rb");
    ck_assert_msg (in != NULL, "cannot read %s", from);
    FILE *out = fopen (to, "wb");
    ck_assert_msg (out != NULL, "cannot write %s", to);
    char buf[65536];
    for (;;) {
        size_t n = fread (buf, 1, sizeof buf, in);
        if (n == 0) {
            break;
        }
        ck_assert (fwrite (buf, 1, n, out) == n);
    }
    ck_assert (ferror (in) == 0);
    fclose (in);
    ck_assert (fclose (out) == 0);
}

/* Makes copy a second node with the same identity and a copy of node's
   store as it is now (taken with the store closed, like a backup). */
static void
s_node_clone (s_node_t *copy, s_node_t *node)
{
    memset (copy, 0, sizeof *copy);
    ck_assert (gkx_identity_open (&copy->identity, gkx_identity_sign_secret (node->identity),
                                  gkx_identity_curve_secret (node->identity))
               == GKX_OK);
    copy->options = node->options;
    gkx_test_tmpdir (copy->root);
    snprintf (copy->dir, sizeof copy->dir, "%s/store", copy->root);
    ck_assert (mkdir (copy->dir, 0700) == 0);

    gkx_store_close (&node->store);
    char from[PATH_MAX + 32];
    char to[PATH_MAX + 32];
    snprintf (from, sizeof from, "%s/data.mdb", node->dir);
    snprintf (to, sizeof to, "%s/data.mdb", copy->dir);
    s_copy_file (from, to);
    s_node_reopen (node);
    s_node_reopen (copy);
}

/* Writes into sbuf (initialised here) the body of an edit that sets the
   offer's setting key to value, a real edit the store's merge accepts. */
static void
s_body_uint (msgpack_sbuffer *sbuf, const char *key, uint64_t value)
{
    char edit[128];
    snprintf (edit, sizeof edit, "settings.%s=n%llu", key, (unsigned long long) value);
    gkx_test_edit_body (sbuf, edit);
}

/* Writes into sbuf (initialised here) the body of an edit that sets the
   setting "pad" to pad_len characters that depend on n. */
static void
s_body_pad (msgpack_sbuffer *sbuf, uint64_t n, size_t pad_len)
{
    char edit[S_PAD_BYTES + 32];
    assert (pad_len <= S_PAD_BYTES);
    int head = snprintf (edit, sizeof edit, "settings.pad=");
    memset (edit + head, 'a' + (int) (n % 26), pad_len);
    edit[head + (int) pad_len] = '\0';
    gkx_test_edit_body (sbuf, edit);
}

/* Appends an entry of kind with body to node's chain, asserting success;
   returns the entry (the caller's). */
static gkx_entry_t *
s_append (s_node_t *node, const uint8_t pid[GKX_ID_BYTES], int kind, const uint8_t *body,
          size_t body_len)
{
    char errbuf[GKX_ERRBUF_BYTES] = "";
    gkx_entry_t *entry = NULL;
    int rc = gkx_store_append (node->store, node->identity, pid, kind, body, body_len, &entry,
                               errbuf);
    ck_assert_msg (rc == GKX_OK, "append: %s (%s)", gkx_errname (rc), errbuf);
    ck_assert (entry != NULL);
    return entry;
}

/* Appends the edit {"payout": amount}; returns the entry (the caller's). */
static gkx_entry_t *
s_edit (s_node_t *node, const uint8_t pid[GKX_ID_BYTES], uint64_t amount)
{
    msgpack_sbuffer body;
    s_body_uint (&body, "payout", amount);
    gkx_entry_t *entry = s_append (node, pid, GKX_KIND_EDIT, (const uint8_t *) body.data,
                                   body.size);
    msgpack_sbuffer_destroy (&body);
    return entry;
}

/* Appends an ack; returns the entry (the caller's). */
static gkx_entry_t *
s_ack (s_node_t *node, const uint8_t pid[GKX_ID_BYTES])
{
    return s_append (node, pid, GKX_KIND_ACK, gkx_ack_body, sizeof gkx_ack_body);
}

/* Ships an entry's bytes to node as received from peer; returns the ingest
   code, *result_p the outcome (0 when refused). */
static int
s_ship (s_node_t *to, const gkx_entry_t *entry, const uint8_t *peer, int *result_p,
        char *errbuf)
{
    size_t len;
    const uint8_t *bytes = gkx_entry_bytes (entry, &len);
    *result_p = 0;
    return gkx_store_ingest (to->store, bytes, len, peer, result_p, errbuf);
}

/* Ships an entry from its author and asserts it is stored as new. */
static void
s_deliver (s_node_t *to, const gkx_entry_t *entry)
{
    char errbuf[GKX_ERRBUF_BYTES] = "";
    int result;
    int rc = s_ship (to, entry, gkx_entry_author (entry), &result, errbuf);
    ck_assert_msg (rc == GKX_OK, "ingest seq %llu: %s (%s)",
                   (unsigned long long) gkx_entry_seq (entry), gkx_errname (rc), errbuf);
    ck_assert_int_eq (result, GKX_INGEST_APPENDED);
}

/* Ships an entry from its author and asserts it is refused with code and
   a message containing text; the chain's head must not move. */
static void
s_refuse (s_node_t *to, const gkx_entry_t *entry, int code, const char *text)
{
    char errbuf[GKX_ERRBUF_BYTES] = "";
    int result;
    gkx_head_t before;
    gkx_head_t after;
    const uint8_t *pid = gkx_entry_pid (entry);
    int known = gkx_store_head (to->store, pid, GKX_ROLE_ADVERTISER, &before) == GKX_OK;
    int rc = s_ship (to, entry, gkx_entry_author (entry), &result, errbuf);
    ck_assert_msg (rc == code, "ingest seq %llu: expected %s, got %s (%s)",
                   (unsigned long long) gkx_entry_seq (entry), gkx_errname (code),
                   gkx_errname (rc), errbuf);
    ck_assert_int_eq (result, 0);
    ck_assert_msg (strstr (errbuf, text) != NULL, "message '%s' lacks '%s'", errbuf, text);
    if (known) {
        ck_assert (gkx_store_head (to->store, pid, GKX_ROLE_ADVERTISER, &after) == GKX_OK);
        ck_assert_uint_eq (after.seq, before.seq);
        ck_assert_mem_eq (after.hash, before.hash, GKX_HASH_BYTES);
    }
}

/* A shares an offer with B and B ingests the genesis; pid receives the
   partnership id. Returns the genesis entry (the caller's). */
static gkx_entry_t *
s_partner (s_node_t *a, s_node_t *b, uint8_t pid[GKX_ID_BYTES])
{
    char errbuf[GKX_ERRBUF_BYTES] = "";
    gkx_entry_t *genesis = NULL;
    int rc = gkx_store_share (a->store, a->identity, gkx_identity_id (b->identity), GKX_TEST_OFFER,
                              NULL, 0, pid, &genesis, errbuf);
    ck_assert_msg (rc == GKX_OK, "share: %s (%s)", gkx_errname (rc), errbuf);
    s_deliver (b, genesis);
    return genesis;
}

/* Fills draft as the honest successor of prev in its author's chain: same
   partnership and cross-link, next seq, linked by hash, clock one tick on,
   an edit with body. Tests then break one field. */
static void
s_draft_next (gkx_entry_draft_t *draft, const gkx_entry_t *prev, const msgpack_sbuffer *body)
{
    memset (draft, 0, sizeof *draft);
    memcpy (draft->pid, gkx_entry_pid (prev), GKX_ID_BYTES);
    memcpy (draft->author, gkx_entry_author (prev), GKX_ID_BYTES);
    draft->seq = gkx_entry_seq (prev) + 1;
    memcpy (draft->prev_hash, gkx_entry_hash (prev), GKX_HASH_BYTES);
    draft->seen_seq = gkx_entry_seen_seq (prev);
    memcpy (draft->seen_hash, gkx_entry_seen_hash (prev), GKX_HASH_BYTES);
    draft->hlc = gkx_entry_hlc (prev) + 1;
    draft->kind = GKX_KIND_EDIT;
    draft->body = (const uint8_t *) body->data;
    draft->body_len = body->size;
}

/* Signs a hand-made draft with identity, asserting the entry layer takes
   it; returns the entry (the caller's). */
static gkx_entry_t *
s_craft (const gkx_identity_t *identity, const gkx_entry_draft_t *draft)
{
    char errbuf[GKX_ERRBUF_BYTES] = "";
    gkx_entry_t *entry = NULL;
    int rc = gkx_entry_sign (&entry, draft, identity, errbuf);
    ck_assert_msg (rc == GKX_OK, "sign: %s (%s)", gkx_errname (rc), errbuf);
    return entry;
}

/* Asserts that two stores hold the same head of one chain. */
static void
s_assert_same_head (s_node_t *x, s_node_t *y, const uint8_t pid[GKX_ID_BYTES], int role)
{
    gkx_head_t hx;
    gkx_head_t hy;
    ck_assert (gkx_store_head (x->store, pid, role, &hx) == GKX_OK);
    ck_assert (gkx_store_head (y->store, pid, role, &hy) == GKX_OK);
    ck_assert_uint_eq (hx.seq, hy.seq);
    ck_assert_mem_eq (hx.hash, hy.hash, GKX_HASH_BYTES);
    ck_assert_uint_eq (hx.hlc, hy.hlc);
    ck_assert_uint_eq (hx.seen_seq, hy.seen_seq);
}

/* What an iteration saw: each entry's seq and hash, and when to stop. */
typedef struct {
    uint64_t seqs[64];
    uint8_t hashes[64][GKX_HASH_BYTES];
    size_t count;
    size_t stop_after;              /* return 7 after this many; 0 = never */
} s_seen_t;

/* Iteration callback recording what it is given. */
static int
s_collect (const gkx_entry_t *entry, void *arg)
{
    s_seen_t *seen = arg;
    if (seen->count < 64) {
        seen->seqs[seen->count] = gkx_entry_seq (entry);
        memcpy (seen->hashes[seen->count], gkx_entry_hash (entry), GKX_HASH_BYTES);
    }
    seen->count++;
    return seen->stop_after && seen->count == seen->stop_after ? 7 : 0;
}

/* Evidence collected from a store: copies of its entries. */
typedef struct {
    gkx_entry_t *entries[8];
    size_t count;
} s_evidence_t;

/* Evidence callback keeping a copy of each entry. */
static int
s_keep (const gkx_entry_t *entry, void *arg)
{
    s_evidence_t *evidence = arg;
    ck_assert (evidence->count < 8);
    evidence->entries[evidence->count++] = gkx_entry_dup (entry);
    return 0;
}

/* Frees collected evidence. */
static void
s_evidence_clear (s_evidence_t *evidence)
{
    for (size_t i = 0; i < evidence->count; i++) {
        gkx_entry_destroy (&evidence->entries[i]);
    }
    evidence->count = 0;
}

/* Whether the evidence holds an entry with this hash. */
static int
s_evidence_has (const s_evidence_t *evidence, const gkx_entry_t *entry)
{
    for (size_t i = 0; i < evidence->count; i++) {
        if (memcmp (gkx_entry_hash (evidence->entries[i]), gkx_entry_hash (entry),
                    GKX_HASH_BYTES) == 0) {
            return 1;
        }
    }
    return 0;
}

/* Counts partnerships. */
static int
s_count_partnership (const gkx_partnership_t *p, void *arg)
{
    (void) p;
    (*(int *) arg)++;
    return 0;
}

/* State of a walk that checks a whole chain: decode, signature, links. */
typedef struct {
    uint64_t expected;                  /* next seq */
    uint8_t prev_hash[GKX_HASH_BYTES];  /* hash of the previous entry */
    uint64_t bad_seq;                   /* first entry that failed, or 0 */
    const char *why;                    /* and why */
} s_chain_walk_t;

/* Chain walk callback: every entry verifies and links to the one before. */
static int
s_check_link (const gkx_entry_t *entry, void *arg)
{
    s_chain_walk_t *walk = arg;
    uint64_t seq = gkx_entry_seq (entry);
    const char *why = NULL;
    if (seq != walk->expected) {
        why = "seq out of order";
    }
    else if (gkx_entry_verify (entry) != GKX_OK) {
        why = "signature";
    }
    else if (memcmp (gkx_entry_prev_hash (entry), walk->prev_hash, GKX_HASH_BYTES) != 0) {
        why = "prev_hash";
    }
    if (why) {
        walk->bad_seq = seq;
        walk->why = why;
        return 1;
    }
    memcpy (walk->prev_hash, gkx_entry_hash (entry), GKX_HASH_BYTES);
    walk->expected++;
    return 0;
}

/* Walks one chain of a store from seq 1 and asserts it is whole and ends
   at the head; returns the head seq. */
static uint64_t
s_assert_chain_whole (gkx_store_t *store, const uint8_t pid[GKX_ID_BYTES], int role)
{
    gkx_head_t head;
    ck_assert (gkx_store_head (store, pid, role, &head) == GKX_OK);
    s_chain_walk_t walk;
    memset (&walk, 0, sizeof walk);
    walk.expected = 1;
    int rc = gkx_store_iterate (store, pid, role, 1, s_check_link, &walk);
    ck_assert_msg (rc == GKX_OK, "chain broken at seq %llu: %s",
                   (unsigned long long) walk.bad_seq, walk.why ? walk.why : gkx_errname (rc));
    ck_assert_uint_eq (walk.expected - 1, head.seq);
    ck_assert_mem_eq (walk.prev_hash, head.hash, GKX_HASH_BYTES);
    return head.seq;
}

/* Open creates the store directory and its LMDB files; the store reopens;
   the same directory opened as another node is refused with GKX_EINVAL and
   a message that says why. */
START_TEST (test_open_creates_and_reopens)
{
    char root[PATH_MAX];
    char dir[PATH_MAX + 16];
    char file[PATH_MAX + 32];
    char errbuf[GKX_ERRBUF_BYTES] = "";
    struct stat st;
    gkx_test_tmpdir (root);
    snprintf (dir, sizeof dir, "%s/store", root);
    ck_assert (stat (dir, &st) != 0);

    gkx_identity_t *a = gkx_identity_new ();
    gkx_identity_t *b = gkx_identity_new ();
    gkx_store_t *store = NULL;
    ck_assert (gkx_store_open (&store, dir, gkx_identity_id (a), NULL, errbuf) == GKX_OK);
    ck_assert (store != NULL);
    ck_assert (stat (dir, &st) == 0 && S_ISDIR (st.st_mode));
    ck_assert_uint_eq (st.st_mode & 0777, 0700);
    snprintf (file, sizeof file, "%s/data.mdb", dir);
    ck_assert (stat (file, &st) == 0);
    ck_assert_uint_ge (gkx_store_map_bytes (store), GKX_STORE_MAP_BYTES);
    gkx_store_close (&store);
    ck_assert (store == NULL);
    gkx_store_close (&store);

    ck_assert (gkx_store_open (&store, dir, gkx_identity_id (a), NULL, errbuf) == GKX_OK);
    gkx_store_close (&store);

    int rc = gkx_store_open (&store, dir, gkx_identity_id (b), NULL, errbuf);
    ck_assert_int_eq (rc, GKX_EINVAL);
    ck_assert (store == NULL);
    ck_assert_msg (strstr (errbuf, "another node id") != NULL, "message: %s", errbuf);

    /* The refusal changed nothing: the owner still opens it. */
    ck_assert (gkx_store_open (&store, dir, gkx_identity_id (a), NULL, errbuf) == GKX_OK);
    gkx_store_close (&store);

    gkx_identity_destroy (&a);
    gkx_identity_destroy (&b);
    gkx_test_rmtree (root);
}
END_TEST

/* A store whose recorded format version is not this build's is refused
   with GKX_EFORMAT and a message naming both versions. */
START_TEST (test_open_refuses_other_format)
{
    char root[PATH_MAX];
    char dir[PATH_MAX + 16];
    char errbuf[GKX_ERRBUF_BYTES] = "";
    gkx_test_tmpdir (root);
    snprintf (dir, sizeof dir, "%s/store", root);
    gkx_identity_t *a = gkx_identity_new ();
    gkx_store_t *store = NULL;
    ck_assert (gkx_store_open (&store, dir, gkx_identity_id (a), NULL, errbuf) == GKX_OK);
    gkx_store_close (&store);

    /* Rewrite meta "format" as a future store would have it. */
    MDB_env *env = NULL;
    MDB_txn *txn = NULL;
    MDB_dbi meta;
    ck_assert_int_eq (mdb_env_create (&env), 0);
    ck_assert_int_eq (mdb_env_set_maxdbs (env, 16), 0);
    ck_assert_int_eq (mdb_env_open (env, dir, 0, 0600), 0);
    ck_assert_int_eq (mdb_txn_begin (env, NULL, 0, &txn), 0);
    ck_assert_int_eq (mdb_dbi_open (txn, "meta", 0, &meta), 0);
    uint8_t format[4] = {0, 0, 0, 99};
    MDB_val key = {6, "format"};
    MDB_val val = {sizeof format, format};
    ck_assert_int_eq (mdb_put (txn, meta, &key, &val, 0), 0);
    ck_assert_int_eq (mdb_txn_commit (txn), 0);
    mdb_env_close (env);

    int rc = gkx_store_open (&store, dir, gkx_identity_id (a), NULL, errbuf);
    ck_assert_int_eq (rc, GKX_EFORMAT);
    ck_assert (store == NULL);
    ck_assert_msg (strstr (errbuf, "format version 99") != NULL, "message: %s", errbuf);
    ck_assert_msg (strstr (errbuf, "reads version 1") != NULL, "message: %s", errbuf);

    gkx_identity_destroy (&a);
    gkx_test_rmtree (root);
}
END_TEST

/* share creates the partnership record (advertiser side, both members, not
   frozen) and the genesis entry at seq 1 of the advertiser's chain; the
   publisher's chain is empty; sharing with oneself is refused. */
START_TEST (test_share_creates_partnership)
{
    s_node_t a;
    s_node_t b;
    s_node_open (&a, NULL);
    s_node_open (&b, NULL);
    char errbuf[GKX_ERRBUF_BYTES] = "";
    uint8_t pid[GKX_ID_BYTES];
    gkx_entry_t *genesis = NULL;
    int rc = gkx_store_share (a.store, a.identity, gkx_identity_id (b.identity), GKX_TEST_OFFER, NULL,
                              0, pid, &genesis, errbuf);
    ck_assert_msg (rc == GKX_OK, "share: %s", errbuf);

    ck_assert_mem_eq (gkx_entry_pid (genesis), pid, GKX_ID_BYTES);
    ck_assert_mem_eq (gkx_entry_author (genesis), gkx_identity_id (a.identity), GKX_ID_BYTES);
    ck_assert_int_eq (gkx_entry_kind (genesis), GKX_KIND_GENESIS);
    ck_assert_uint_eq (gkx_entry_seq (genesis), 1);
    ck_assert_uint_eq (gkx_entry_seen_seq (genesis), 0);
    ck_assert_int_eq (gkx_entry_verify (genesis), GKX_OK);
    uint8_t adv[GKX_ID_BYTES];
    uint8_t pub[GKX_ID_BYTES];
    ck_assert_int_eq (gkx_genesis_members (genesis, adv, pub), GKX_OK);
    ck_assert_mem_eq (adv, gkx_identity_id (a.identity), GKX_ID_BYTES);
    ck_assert_mem_eq (pub, gkx_identity_id (b.identity), GKX_ID_BYTES);

    gkx_partnership_t p;
    ck_assert_int_eq (gkx_store_partnership (a.store, pid, &p), GKX_OK);
    ck_assert_mem_eq (p.pid, pid, GKX_ID_BYTES);
    ck_assert_mem_eq (p.advertiser, gkx_identity_id (a.identity), GKX_ID_BYTES);
    ck_assert_mem_eq (p.publisher, gkx_identity_id (b.identity), GKX_ID_BYTES);
    ck_assert_int_eq (p.self_role, GKX_ROLE_ADVERTISER);
    ck_assert_int_eq (p.is_frozen, 0);
    ck_assert_uint_eq (p.created_hlc, gkx_entry_hlc (genesis));

    gkx_head_t head;
    ck_assert_int_eq (gkx_store_head (a.store, pid, GKX_ROLE_ADVERTISER, &head), GKX_OK);
    ck_assert_uint_eq (head.seq, 1);
    ck_assert_mem_eq (head.hash, gkx_entry_hash (genesis), GKX_HASH_BYTES);
    ck_assert_uint_eq (head.hlc, gkx_entry_hlc (genesis));
    ck_assert_int_eq (gkx_store_head (a.store, pid, GKX_ROLE_PUBLISHER, &head), GKX_OK);
    ck_assert_uint_eq (head.seq, 0);
    ck_assert_uint_eq (gkx_store_hlc (a.store), gkx_entry_hlc (genesis));

    int count = 0;
    ck_assert_int_eq (gkx_store_partnerships (a.store, s_count_partnership, &count), GKX_OK);
    ck_assert_int_eq (count, 1);

    uint8_t other[GKX_ID_BYTES];
    rc = gkx_store_share (a.store, a.identity, gkx_identity_id (a.identity), GKX_TEST_OFFER, NULL, 0,
                          other, NULL, errbuf);
    ck_assert_int_eq (rc, GKX_EINVAL);

    gkx_entry_destroy (&genesis);
    s_node_destroy (&a);
    s_node_destroy (&b);
}
END_TEST

/* The genesis ingested at the publisher creates the partnership there, as
   publisher, with the same members, head and clock, and advances B's
   hybrid clock past the genesis. */
START_TEST (test_genesis_creates_partnership_at_publisher)
{
    s_node_t a;
    s_node_t b;
    s_node_open (&a, NULL);
    s_node_open (&b, NULL);
    uint8_t pid[GKX_ID_BYTES];
    gkx_entry_t *genesis = s_partner (&a, &b, pid);

    gkx_partnership_t p;
    ck_assert_int_eq (gkx_store_partnership (b.store, pid, &p), GKX_OK);
    ck_assert_int_eq (p.self_role, GKX_ROLE_PUBLISHER);
    ck_assert_int_eq (p.is_frozen, 0);
    ck_assert_mem_eq (p.advertiser, gkx_identity_id (a.identity), GKX_ID_BYTES);
    ck_assert_mem_eq (p.publisher, gkx_identity_id (b.identity), GKX_ID_BYTES);
    ck_assert_uint_eq (p.created_hlc, gkx_entry_hlc (genesis));
    s_assert_same_head (&a, &b, pid, GKX_ROLE_ADVERTISER);
    s_assert_same_head (&a, &b, pid, GKX_ROLE_PUBLISHER);
    ck_assert_uint_gt (gkx_store_hlc (b.store), gkx_entry_hlc (genesis));

    gkx_entry_destroy (&genesis);
    s_node_destroy (&a);
    s_node_destroy (&b);
}
END_TEST

/* A genesis that names another publisher is refused with GKX_ENOTMEMBER
   and creates nothing. */
START_TEST (test_genesis_for_third_node_refused)
{
    s_node_t a;
    s_node_t b;
    s_node_open (&a, NULL);
    s_node_open (&b, NULL);
    gkx_identity_t *c = gkx_identity_new ();
    char errbuf[GKX_ERRBUF_BYTES] = "";
    uint8_t pid[GKX_ID_BYTES];
    gkx_entry_t *genesis = NULL;
    ck_assert (gkx_store_share (a.store, a.identity, gkx_identity_id (c), GKX_TEST_OFFER, NULL, 0, pid,
                                &genesis, errbuf)
               == GKX_OK);

    s_refuse (&b, genesis, GKX_ENOTMEMBER, "not a member");
    gkx_partnership_t p;
    ck_assert_int_eq (gkx_store_partnership (b.store, pid, &p), GKX_ENOTFOUND);
    int count = 0;
    ck_assert_int_eq (gkx_store_partnerships (b.store, s_count_partnership, &count), GKX_OK);
    ck_assert_int_eq (count, 0);

    gkx_entry_destroy (&genesis);
    gkx_identity_destroy (&c);
    s_node_destroy (&a);
    s_node_destroy (&b);
}
END_TEST

/* Appends on both sides set seq, prev_hash, the cross-link and the clock
   right; both stores end with the same heads; get, iterate (in order, from
   a seq, stopping early) and head read them back. */
START_TEST (test_append_cross_links)
{
    s_node_t a;
    s_node_t b;
    s_node_open (&a, NULL);
    s_node_open (&b, NULL);
    uint8_t pid[GKX_ID_BYTES];
    gkx_entry_t *a1 = s_partner (&a, &b, pid);

    /* A2: nothing of B's seen yet. */
    gkx_entry_t *a2 = s_edit (&a, pid, 1500000);
    ck_assert_uint_eq (gkx_entry_seq (a2), 2);
    ck_assert_mem_eq (gkx_entry_prev_hash (a2), gkx_entry_hash (a1), GKX_HASH_BYTES);
    ck_assert_uint_eq (gkx_entry_seen_seq (a2), 0);
    ck_assert_uint_gt (gkx_entry_hlc (a2), gkx_entry_hlc (a1));
    s_deliver (&b, a2);

    /* B1: starts B's chain, seeing A2. */
    gkx_entry_t *b1 = s_edit (&b, pid, 1600000);
    ck_assert_uint_eq (gkx_entry_seq (b1), 1);
    ck_assert_mem_eq (gkx_entry_author (b1), gkx_identity_id (b.identity), GKX_ID_BYTES);
    uint8_t zeros[GKX_HASH_BYTES];
    memset (zeros, 0, sizeof zeros);
    ck_assert_mem_eq (gkx_entry_prev_hash (b1), zeros, GKX_HASH_BYTES);
    ck_assert_uint_eq (gkx_entry_seen_seq (b1), 2);
    ck_assert_mem_eq (gkx_entry_seen_hash (b1), gkx_entry_hash (a2), GKX_HASH_BYTES);
    ck_assert_uint_gt (gkx_entry_hlc (b1), gkx_entry_hlc (a2));
    s_deliver (&a, b1);

    /* A3 acknowledges B1; B2 acknowledges A3. */
    gkx_entry_t *a3 = s_ack (&a, pid);
    ck_assert_uint_eq (gkx_entry_seq (a3), 3);
    ck_assert_int_eq (gkx_entry_kind (a3), GKX_KIND_ACK);
    ck_assert_mem_eq (gkx_entry_prev_hash (a3), gkx_entry_hash (a2), GKX_HASH_BYTES);
    ck_assert_uint_eq (gkx_entry_seen_seq (a3), 1);
    ck_assert_mem_eq (gkx_entry_seen_hash (a3), gkx_entry_hash (b1), GKX_HASH_BYTES);
    ck_assert_uint_gt (gkx_entry_hlc (a3), gkx_entry_hlc (b1));
    s_deliver (&b, a3);
    gkx_entry_t *b2 = s_ack (&b, pid);
    ck_assert_uint_eq (gkx_entry_seq (b2), 2);
    ck_assert_mem_eq (gkx_entry_prev_hash (b2), gkx_entry_hash (b1), GKX_HASH_BYTES);
    ck_assert_uint_eq (gkx_entry_seen_seq (b2), 3);
    ck_assert_mem_eq (gkx_entry_seen_hash (b2), gkx_entry_hash (a3), GKX_HASH_BYTES);
    s_deliver (&a, b2);

    s_assert_same_head (&a, &b, pid, GKX_ROLE_ADVERTISER);
    s_assert_same_head (&a, &b, pid, GKX_ROLE_PUBLISHER);
    gkx_head_t head;
    ck_assert_int_eq (gkx_store_head (b.store, pid, GKX_ROLE_PUBLISHER, &head), GKX_OK);
    ck_assert_uint_eq (head.seq, 2);
    ck_assert_mem_eq (head.hash, gkx_entry_hash (b2), GKX_HASH_BYTES);
    ck_assert_uint_eq (head.hlc, gkx_entry_hlc (b2));
    ck_assert_uint_eq (head.seen_seq, 3);

    /* get returns the exact bytes, on either side. */
    gkx_entry_t *got = NULL;
    ck_assert_int_eq (gkx_store_get (a.store, pid, GKX_ROLE_PUBLISHER, 1, &got), GKX_OK);
    size_t len_got;
    size_t len_b1;
    const uint8_t *bytes_got = gkx_entry_bytes (got, &len_got);
    const uint8_t *bytes_b1 = gkx_entry_bytes (b1, &len_b1);
    ck_assert_uint_eq (len_got, len_b1);
    ck_assert_mem_eq (bytes_got, bytes_b1, len_b1);
    gkx_entry_destroy (&got);
    ck_assert_int_eq (gkx_store_get (b.store, pid, GKX_ROLE_ADVERTISER, 3, &got), GKX_OK);
    ck_assert_mem_eq (gkx_entry_hash (got), gkx_entry_hash (a3), GKX_HASH_BYTES);
    gkx_entry_destroy (&got);
    ck_assert_int_eq (gkx_store_get (b.store, pid, GKX_ROLE_ADVERTISER, 4, &got),
                      GKX_ENOTFOUND);
    ck_assert (got == NULL);

    /* iterate: in order, from a seq, and stopping when asked. */
    s_seen_t seen;
    memset (&seen, 0, sizeof seen);
    ck_assert_int_eq (gkx_store_iterate (b.store, pid, GKX_ROLE_ADVERTISER, 1, s_collect,
                                         &seen),
                      GKX_OK);
    ck_assert_uint_eq (seen.count, 3);
    ck_assert_uint_eq (seen.seqs[0], 1);
    ck_assert_uint_eq (seen.seqs[1], 2);
    ck_assert_uint_eq (seen.seqs[2], 3);
    ck_assert_mem_eq (seen.hashes[0], gkx_entry_hash (a1), GKX_HASH_BYTES);
    ck_assert_mem_eq (seen.hashes[1], gkx_entry_hash (a2), GKX_HASH_BYTES);
    ck_assert_mem_eq (seen.hashes[2], gkx_entry_hash (a3), GKX_HASH_BYTES);
    memset (&seen, 0, sizeof seen);
    ck_assert_int_eq (gkx_store_iterate (a.store, pid, GKX_ROLE_ADVERTISER, 2, s_collect,
                                         &seen),
                      GKX_OK);
    ck_assert_uint_eq (seen.count, 2);
    ck_assert_uint_eq (seen.seqs[0], 2);
    memset (&seen, 0, sizeof seen);
    ck_assert_int_eq (gkx_store_iterate (a.store, pid, GKX_ROLE_PUBLISHER, 1, s_collect,
                                         &seen),
                      GKX_OK);
    ck_assert_uint_eq (seen.count, 2);
    ck_assert_uint_eq (seen.seqs[1], 2);
    memset (&seen, 0, sizeof seen);
    seen.stop_after = 1;
    ck_assert_int_eq (gkx_store_iterate (a.store, pid, GKX_ROLE_ADVERTISER, 1, s_collect,
                                         &seen),
                      7);
    ck_assert_uint_eq (seen.count, 1);

    /* Unknown partnerships, and genesis written by append. */
    uint8_t unknown[GKX_ID_BYTES];
    memset (unknown, 0x5a, sizeof unknown);
    ck_assert_int_eq (gkx_store_head (a.store, unknown, GKX_ROLE_ADVERTISER, &head),
                      GKX_ENOTFOUND);
    char errbuf[GKX_ERRBUF_BYTES] = "";
    gkx_entry_t *none = NULL;
    ck_assert_int_eq (gkx_store_append (a.store, a.identity, unknown, GKX_KIND_ACK, gkx_ack_body,
                                        sizeof gkx_ack_body, &none, errbuf),
                      GKX_ENOTFOUND);
    ck_assert_int_eq (gkx_store_append (a.store, a.identity, pid, GKX_KIND_GENESIS, gkx_ack_body,
                                        sizeof gkx_ack_body, &none, errbuf),
                      GKX_EKIND);
    ck_assert (none == NULL);

    gkx_entry_destroy (&a1);
    gkx_entry_destroy (&a2);
    gkx_entry_destroy (&a3);
    gkx_entry_destroy (&b1);
    gkx_entry_destroy (&b2);
    s_node_destroy (&a);
    s_node_destroy (&b);
}
END_TEST

/* An entry already held is a no-op: GKX_OK with GKX_INGEST_DUPLICATE, and
   neither the head nor the clock moves. */
START_TEST (test_ingest_replay_is_noop)
{
    s_node_t a;
    s_node_t b;
    s_node_open (&a, NULL);
    s_node_open (&b, NULL);
    uint8_t pid[GKX_ID_BYTES];
    gkx_entry_t *a1 = s_partner (&a, &b, pid);
    gkx_entry_t *a2 = s_edit (&a, pid, 10);
    s_deliver (&b, a2);

    gkx_head_t before;
    gkx_head_t after;
    ck_assert_int_eq (gkx_store_head (b.store, pid, GKX_ROLE_ADVERTISER, &before), GKX_OK);
    uint64_t hlc = gkx_store_hlc (b.store);
    char errbuf[GKX_ERRBUF_BYTES] = "";
    int result;
    ck_assert_int_eq (s_ship (&b, a2, gkx_identity_id (a.identity), &result, errbuf), GKX_OK);
    ck_assert_int_eq (result, GKX_INGEST_DUPLICATE);
    ck_assert_int_eq (s_ship (&b, a1, gkx_identity_id (a.identity), &result, errbuf), GKX_OK);
    ck_assert_int_eq (result, GKX_INGEST_DUPLICATE);
    ck_assert_int_eq (gkx_store_head (b.store, pid, GKX_ROLE_ADVERTISER, &after), GKX_OK);
    ck_assert_uint_eq (after.seq, before.seq);
    ck_assert_mem_eq (after.hash, before.hash, GKX_HASH_BYTES);
    ck_assert_uint_eq (gkx_store_hlc (b.store), hlc);
    gkx_partnership_t p;
    ck_assert_int_eq (gkx_store_partnership (b.store, pid, &p), GKX_OK);
    ck_assert_int_eq (p.is_frozen, 0);

    gkx_entry_destroy (&a1);
    gkx_entry_destroy (&a2);
    s_node_destroy (&a);
    s_node_destroy (&b);
}
END_TEST

/* seq 3 before seq 2 is a gap: GKX_EGAP naming the expected seq; once 2
   arrives, 3 goes in. */
START_TEST (test_ingest_gap)
{
    s_node_t a;
    s_node_t b;
    s_node_open (&a, NULL);
    s_node_open (&b, NULL);
    uint8_t pid[GKX_ID_BYTES];
    gkx_entry_t *a1 = s_partner (&a, &b, pid);
    gkx_entry_t *a2 = s_edit (&a, pid, 20);
    gkx_entry_t *a3 = s_edit (&a, pid, 30);

    s_refuse (&b, a3, GKX_EGAP, "next expected is 2");
    s_deliver (&b, a2);
    s_deliver (&b, a3);
    s_assert_same_head (&a, &b, pid, GKX_ROLE_ADVERTISER);

    gkx_entry_destroy (&a1);
    gkx_entry_destroy (&a2);
    gkx_entry_destroy (&a3);
    s_node_destroy (&a);
    s_node_destroy (&b);
}
END_TEST

/* An entry whose author is not the connection's peer is refused with
   GKX_ENOTMEMBER, whoever the peer is; without a peer (an import) it goes
   in. */
START_TEST (test_ingest_peer_must_be_author)
{
    s_node_t a;
    s_node_t b;
    s_node_open (&a, NULL);
    s_node_open (&b, NULL);
    gkx_identity_t *c = gkx_identity_new ();
    uint8_t pid[GKX_ID_BYTES];
    gkx_entry_t *a1 = s_partner (&a, &b, pid);
    gkx_entry_t *a2 = s_edit (&a, pid, 40);
    char errbuf[GKX_ERRBUF_BYTES] = "";
    int result;

    int rc = s_ship (&b, a2, gkx_identity_id (c), &result, errbuf);
    ck_assert_int_eq (rc, GKX_ENOTMEMBER);
    ck_assert_msg (strstr (errbuf, "not the connection's peer") != NULL, "message: %s", errbuf);
    rc = s_ship (&b, a2, gkx_identity_id (b.identity), &result, errbuf);
    ck_assert_int_eq (rc, GKX_ENOTMEMBER);
    gkx_head_t head;
    ck_assert_int_eq (gkx_store_head (b.store, pid, GKX_ROLE_ADVERTISER, &head), GKX_OK);
    ck_assert_uint_eq (head.seq, 1);

    rc = s_ship (&b, a2, NULL, &result, errbuf);
    ck_assert_int_eq (rc, GKX_OK);
    ck_assert_int_eq (result, GKX_INGEST_APPENDED);

    gkx_entry_destroy (&a1);
    gkx_entry_destroy (&a2);
    gkx_identity_destroy (&c);
    s_node_destroy (&a);
    s_node_destroy (&b);
}
END_TEST

/* One flipped byte inside the signature field of a valid entry: the entry
   still decodes, and ingest refuses it with GKX_ESIGNATURE. */
START_TEST (test_ingest_bad_signature)
{
    s_node_t a;
    s_node_t b;
    s_node_open (&a, NULL);
    s_node_open (&b, NULL);
    uint8_t pid[GKX_ID_BYTES];
    gkx_entry_t *a1 = s_partner (&a, &b, pid);
    gkx_entry_t *a2 = s_edit (&a, pid, 50);
    size_t len;
    const uint8_t *bytes = gkx_entry_bytes (a2, &len);
    uint8_t *copy = malloc (len);
    ck_assert (copy != NULL);
    memcpy (copy, bytes, len);
    copy[len - GKX_SIGNATURE_BYTES / 2] ^= 0x01;

    char errbuf[GKX_ERRBUF_BYTES] = "";
    gkx_entry_t *decoded = NULL;
    ck_assert_int_eq (gkx_entry_decode (&decoded, copy, len, errbuf), GKX_OK);
    gkx_entry_destroy (&decoded);
    int result = 0;
    int rc = gkx_store_ingest (b.store, copy, len, gkx_identity_id (a.identity), &result, errbuf);
    ck_assert_int_eq (rc, GKX_ESIGNATURE);
    ck_assert_msg (strstr (errbuf, "signature") != NULL, "message: %s", errbuf);
    gkx_head_t head;
    ck_assert_int_eq (gkx_store_head (b.store, pid, GKX_ROLE_ADVERTISER, &head), GKX_OK);
    ck_assert_uint_eq (head.seq, 1);
    s_deliver (&b, a2);

    free (copy);
    gkx_entry_destroy (&a1);
    gkx_entry_destroy (&a2);
    s_node_destroy (&a);
    s_node_destroy (&b);
}
END_TEST

/* A non-genesis entry of a partnership the node does not know is refused
   with GKX_ENOTFOUND and creates nothing. */
START_TEST (test_ingest_unknown_partnership)
{
    s_node_t a;
    s_node_t b;
    s_node_open (&a, NULL);
    s_node_open (&b, NULL);
    char errbuf[GKX_ERRBUF_BYTES] = "";
    uint8_t pid[GKX_ID_BYTES];
    gkx_entry_t *a1 = NULL;
    ck_assert (gkx_store_share (a.store, a.identity, gkx_identity_id (b.identity), GKX_TEST_OFFER, NULL,
                                0, pid, &a1, errbuf)
               == GKX_OK);
    gkx_entry_t *a2 = s_edit (&a, pid, 60);

    s_refuse (&b, a2, GKX_ENOTFOUND, "genesis entry has not arrived");
    gkx_partnership_t p;
    ck_assert_int_eq (gkx_store_partnership (b.store, pid, &p), GKX_ENOTFOUND);

    gkx_entry_destroy (&a1);
    gkx_entry_destroy (&a2);
    s_node_destroy (&a);
    s_node_destroy (&b);
}
END_TEST

/* An entry whose clock does not advance past its predecessor's is refused
   with GKX_ECLOCK; the same entry one tick later goes in. */
START_TEST (test_ingest_clock_must_advance)
{
    s_node_t a;
    s_node_t b;
    s_node_open (&a, NULL);
    s_node_open (&b, NULL);
    uint8_t pid[GKX_ID_BYTES];
    gkx_entry_t *a1 = s_partner (&a, &b, pid);
    msgpack_sbuffer body;
    s_body_uint (&body, "payout", 70);
    gkx_entry_draft_t draft;
    s_draft_next (&draft, a1, &body);

    draft.hlc = gkx_entry_hlc (a1);
    gkx_entry_t *stale = s_craft (a.identity, &draft);
    s_refuse (&b, stale, GKX_ECLOCK, "hlc does not advance");
    draft.hlc = gkx_entry_hlc (a1) + 1;
    gkx_entry_t *fresh = s_craft (a.identity, &draft);
    s_deliver (&b, fresh);

    gkx_entry_destroy (&stale);
    gkx_entry_destroy (&fresh);
    msgpack_sbuffer_destroy (&body);
    gkx_entry_destroy (&a1);
    s_node_destroy (&a);
    s_node_destroy (&b);
}
END_TEST

/* An entry whose clock is not past the counterparty entry it claims to
   have seen is refused with GKX_ECLOCK. */
START_TEST (test_ingest_clock_must_pass_seen_entry)
{
    s_node_t a;
    s_node_t b;
    s_node_open (&a, NULL);
    s_node_open (&b, NULL);
    uint8_t pid[GKX_ID_BYTES];
    gkx_entry_t *a1 = s_partner (&a, &b, pid);
    gkx_entry_t *b1 = s_edit (&b, pid, 80);
    s_deliver (&a, b1);
    ck_assert_uint_gt (gkx_entry_hlc (b1), gkx_entry_hlc (a1) + 1);

    msgpack_sbuffer body;
    s_body_uint (&body, "payout", 81);
    gkx_entry_draft_t draft;
    s_draft_next (&draft, a1, &body);
    draft.seen_seq = 1;
    memcpy (draft.seen_hash, gkx_entry_hash (b1), GKX_HASH_BYTES);
    draft.hlc = gkx_entry_hlc (b1);
    gkx_entry_t *stale = s_craft (a.identity, &draft);
    s_refuse (&b, stale, GKX_ECLOCK, "past the entry it has seen");
    draft.hlc = gkx_entry_hlc (b1) + 1;
    gkx_entry_t *fresh = s_craft (a.identity, &draft);
    s_deliver (&b, fresh);

    gkx_entry_destroy (&stale);
    gkx_entry_destroy (&fresh);
    msgpack_sbuffer_destroy (&body);
    gkx_entry_destroy (&a1);
    gkx_entry_destroy (&b1);
    s_node_destroy (&a);
    s_node_destroy (&b);
}
END_TEST

/* An entry that has seen an entry of the receiver's chain the receiver
   does not hold is refused with GKX_EAHEAD; the claim is kept, so the
   receiver then refuses to append (it may have lost entries). */
START_TEST (test_ingest_crosslink_ahead)
{
    s_node_t a;
    s_node_t b;
    s_node_open (&a, NULL);
    s_node_open (&b, NULL);
    uint8_t pid[GKX_ID_BYTES];
    gkx_entry_t *a1 = s_partner (&a, &b, pid);
    msgpack_sbuffer body;
    s_body_uint (&body, "payout", 90);
    gkx_entry_draft_t draft;
    s_draft_next (&draft, a1, &body);
    draft.seen_seq = 1;
    memset (draft.seen_hash, 0x42, GKX_HASH_BYTES);
    gkx_entry_t *ahead = s_craft (a.identity, &draft);

    s_refuse (&b, ahead, GKX_EAHEAD, "has seen publisher seq 1");
    char errbuf[GKX_ERRBUF_BYTES] = "";
    gkx_entry_t *none = NULL;
    int rc = gkx_store_append (b.store, b.identity, pid, GKX_KIND_ACK, gkx_ack_body,
                               sizeof gkx_ack_body, &none, errbuf);
    ck_assert_int_eq (rc, GKX_EAHEAD);
    ck_assert (none == NULL);
    ck_assert_msg (strstr (errbuf, "up to seq 1") != NULL, "message: %s", errbuf);

    /* The claim shows, and once the node drops it (the counterparty never
       backed it: node.c), appends go on. */
    gkx_partnership_t p;
    ck_assert_int_eq (gkx_store_partnership (b.store, pid, &p), GKX_OK);
    ck_assert_uint_eq (p.claimed_seq, 1);
    ck_assert_int_eq (gkx_store_claim_drop (b.store, pid, errbuf), GKX_OK);
    ck_assert_int_eq (gkx_store_partnership (b.store, pid, &p), GKX_OK);
    ck_assert_uint_eq (p.claimed_seq, 0);
    rc = gkx_store_append (b.store, b.identity, pid, GKX_KIND_ACK, gkx_ack_body,
                           sizeof gkx_ack_body, &none, errbuf);
    ck_assert_msg (rc == GKX_OK, "append after the claim was dropped: %s", errbuf);
    gkx_entry_destroy (&none);

    gkx_entry_destroy (&ahead);
    msgpack_sbuffer_destroy (&body);
    gkx_entry_destroy (&a1);
    s_node_destroy (&a);
    s_node_destroy (&b);
}
END_TEST

/* A cross-link whose seen_hash is not the hash of the held entry, or whose
   seen_seq goes back, is refused with GKX_ECROSSLINK. */
START_TEST (test_ingest_crosslink_wrong_hash)
{
    s_node_t a;
    s_node_t b;
    s_node_open (&a, NULL);
    s_node_open (&b, NULL);
    uint8_t pid[GKX_ID_BYTES];
    gkx_entry_t *a1 = s_partner (&a, &b, pid);
    gkx_entry_t *b1 = s_edit (&b, pid, 100);
    s_deliver (&a, b1);

    msgpack_sbuffer body;
    s_body_uint (&body, "payout", 101);
    gkx_entry_draft_t draft;
    s_draft_next (&draft, a1, &body);
    draft.seen_seq = 1;
    memcpy (draft.seen_hash, gkx_entry_hash (b1), GKX_HASH_BYTES);
    draft.seen_hash[7] ^= 0x80;
    draft.hlc = gkx_entry_hlc (b1) + 1;
    gkx_entry_t *forged = s_craft (a.identity, &draft);
    s_refuse (&b, forged, GKX_ECROSSLINK, "seen_hash differs");

    /* The honest A2, then an A3 whose seen_seq goes back to 0. */
    memcpy (draft.seen_hash, gkx_entry_hash (b1), GKX_HASH_BYTES);
    gkx_entry_t *a2 = s_craft (a.identity, &draft);
    s_deliver (&b, a2);
    s_draft_next (&draft, a2, &body);
    draft.seen_seq = 0;
    memset (draft.seen_hash, 0, GKX_HASH_BYTES);
    gkx_entry_t *back = s_craft (a.identity, &draft);
    s_refuse (&b, back, GKX_ECROSSLINK, "goes back");

    gkx_entry_destroy (&forged);
    gkx_entry_destroy (&back);
    gkx_entry_destroy (&a2);
    msgpack_sbuffer_destroy (&body);
    gkx_entry_destroy (&a1);
    gkx_entry_destroy (&b1);
    s_node_destroy (&a);
    s_node_destroy (&b);
}
END_TEST

/* An entry whose prev_hash is not the hash of the held predecessor is
   refused with GKX_EPREV. */
START_TEST (test_ingest_wrong_prev)
{
    s_node_t a;
    s_node_t b;
    s_node_open (&a, NULL);
    s_node_open (&b, NULL);
    uint8_t pid[GKX_ID_BYTES];
    gkx_entry_t *a1 = s_partner (&a, &b, pid);
    msgpack_sbuffer body;
    s_body_uint (&body, "payout", 110);
    gkx_entry_draft_t draft;
    s_draft_next (&draft, a1, &body);
    draft.prev_hash[0] ^= 0x01;
    gkx_entry_t *forged = s_craft (a.identity, &draft);

    s_refuse (&b, forged, GKX_EPREV, "prev_hash is not the hash of seq 1");

    gkx_entry_destroy (&forged);
    msgpack_sbuffer_destroy (&body);
    gkx_entry_destroy (&a1);
    s_node_destroy (&a);
    s_node_destroy (&b);
}
END_TEST

/* Two different valid entries by A at seq 2 (from a store cloned before
   the append): the second is GKX_EEQUIVOCATION, both are kept as evidence,
   the partnership is frozen, further ingest and append are GKX_EFROZEN, and
   all of it survives a reopen. */
START_TEST (test_equivocation_freezes)
{
    s_node_t a;
    s_node_t b;
    s_node_t twin;
    s_node_open (&a, NULL);
    s_node_open (&b, NULL);
    uint8_t pid[GKX_ID_BYTES];
    gkx_entry_t *a1 = s_partner (&a, &b, pid);
    s_node_clone (&twin, &a);

    gkx_entry_t *first = s_edit (&a, pid, 1000);
    gkx_entry_t *second = s_edit (&twin, pid, 2000);
    ck_assert_uint_eq (gkx_entry_seq (first), 2);
    ck_assert_uint_eq (gkx_entry_seq (second), 2);
    ck_assert (memcmp (gkx_entry_hash (first), gkx_entry_hash (second), GKX_HASH_BYTES) != 0);
    s_deliver (&b, first);

    char errbuf[GKX_ERRBUF_BYTES] = "";
    int result;
    int rc = s_ship (&b, second, gkx_identity_id (a.identity), &result, errbuf);
    ck_assert_int_eq (rc, GKX_EEQUIVOCATION);
    ck_assert_msg (strstr (errbuf, "two different entries at seq 2") != NULL, "message: %s",
                   errbuf);

    gkx_entry_t *a3 = s_edit (&a, pid, 3000);
    for (int round = 0; round < 2; round++) {
        gkx_partnership_t p;
        ck_assert_int_eq (gkx_store_partnership (b.store, pid, &p), GKX_OK);
        ck_assert_int_eq (p.is_frozen, 1);
        gkx_store_partnership_counts_t counts;
        ck_assert_int_eq (gkx_store_partnership_counts (b.store, &counts), GKX_OK);
        ck_assert_uint_eq (counts.frozen, 1);
        ck_assert_uint_eq (counts.active + counts.paused, 0);
        s_evidence_t evidence;
        memset (&evidence, 0, sizeof evidence);
        ck_assert_int_eq (gkx_store_evidence (b.store, pid, s_keep, &evidence), GKX_OK);
        ck_assert_uint_eq (evidence.count, 2);
        ck_assert (s_evidence_has (&evidence, first));
        ck_assert (s_evidence_has (&evidence, second));
        for (size_t i = 0; i < evidence.count; i++) {
            ck_assert_uint_eq (gkx_entry_seq (evidence.entries[i]), 2);
            ck_assert_int_eq (gkx_entry_verify (evidence.entries[i]), GKX_OK);
        }
        s_evidence_clear (&evidence);

        /* The chain keeps the entry held first; nothing else gets in. */
        gkx_head_t head;
        ck_assert_int_eq (gkx_store_head (b.store, pid, GKX_ROLE_ADVERTISER, &head), GKX_OK);
        ck_assert_uint_eq (head.seq, 2);
        ck_assert_mem_eq (head.hash, gkx_entry_hash (first), GKX_HASH_BYTES);
        s_refuse (&b, a3, GKX_EFROZEN, "frozen");
        s_refuse (&b, second, GKX_EFROZEN, "frozen");
        gkx_entry_t *none = NULL;
        rc = gkx_store_append (b.store, b.identity, pid, GKX_KIND_ACK, gkx_ack_body,
                               sizeof gkx_ack_body, &none, errbuf);
        ck_assert_int_eq (rc, GKX_EFROZEN);
        ck_assert (none == NULL);
        s_node_reopen (&b);
    }

    gkx_entry_destroy (&a1);
    gkx_entry_destroy (&first);
    gkx_entry_destroy (&second);
    gkx_entry_destroy (&a3);
    s_node_destroy (&twin);
    s_node_destroy (&a);
    s_node_destroy (&b);
}
END_TEST

/* Never equivocate by accident: A restored from an old backup learns from
   B's entry that B holds A entries it lacks; append refuses with
   GKX_EAHEAD until A has taken its own entries back from B's copy, then
   continues the chain after them, and B takes the new entry without any
   equivocation. */
START_TEST (test_restored_node_takes_back_before_appending)
{
    s_node_t a;
    s_node_t b;
    s_node_t old;
    s_node_open (&a, NULL);
    s_node_open (&b, NULL);
    uint8_t pid[GKX_ID_BYTES];
    gkx_entry_t *a1 = s_partner (&a, &b, pid);
    s_node_clone (&old, &a);            /* the backup: A with the genesis only */

    gkx_entry_t *a2 = s_edit (&a, pid, 1);
    gkx_entry_t *a3 = s_edit (&a, pid, 2);
    s_deliver (&b, a2);
    s_deliver (&b, a3);
    gkx_entry_t *b1 = s_ack (&b, pid);
    ck_assert_uint_eq (gkx_entry_seen_seq (b1), 3);
    gkx_store_close (&a.store);         /* A's disk is lost; old takes over */

    char errbuf[GKX_ERRBUF_BYTES] = "";
    int result;
    s_refuse (&old, b1, GKX_EAHEAD, "has seen advertiser seq 3");
    gkx_entry_t *none = NULL;
    int rc = gkx_store_append (old.store, old.identity, pid, GKX_KIND_ACK, gkx_ack_body,
                               sizeof gkx_ack_body, &none, errbuf);
    ck_assert_int_eq (rc, GKX_EAHEAD);
    ck_assert_msg (strstr (errbuf, "up to seq 3 but we hold 1") != NULL, "message: %s", errbuf);
    ck_assert (none == NULL);

    /* The claim survives a restart. */
    s_node_reopen (&old);
    rc = gkx_store_append (old.store, old.identity, pid, GKX_KIND_ACK, gkx_ack_body,
                           sizeof gkx_ack_body, &none, errbuf);
    ck_assert_int_eq (rc, GKX_EAHEAD);

    /* Take back A2 from B's copy: still one short. */
    gkx_entry_t *copy = NULL;
    ck_assert_int_eq (gkx_store_get (b.store, pid, GKX_ROLE_ADVERTISER, 2, &copy), GKX_OK);
    ck_assert_int_eq (s_ship (&old, copy, NULL, &result, errbuf), GKX_OK);
    ck_assert_int_eq (result, GKX_INGEST_APPENDED);
    gkx_entry_destroy (&copy);
    rc = gkx_store_append (old.store, old.identity, pid, GKX_KIND_ACK, gkx_ack_body,
                           sizeof gkx_ack_body, &none, errbuf);
    ck_assert_int_eq (rc, GKX_EAHEAD);

    /* Take back A3; then B1 goes in and A appends at seq 4. */
    ck_assert_int_eq (gkx_store_get (b.store, pid, GKX_ROLE_ADVERTISER, 3, &copy), GKX_OK);
    ck_assert_int_eq (s_ship (&old, copy, NULL, &result, errbuf), GKX_OK);
    ck_assert_int_eq (result, GKX_INGEST_APPENDED);
    gkx_entry_destroy (&copy);
    s_deliver (&old, b1);
    gkx_entry_t *a4 = s_ack (&old, pid);
    ck_assert_uint_eq (gkx_entry_seq (a4), 4);
    ck_assert_mem_eq (gkx_entry_prev_hash (a4), gkx_entry_hash (a3), GKX_HASH_BYTES);
    ck_assert_uint_eq (gkx_entry_seen_seq (a4), 1);
    ck_assert_mem_eq (gkx_entry_seen_hash (a4), gkx_entry_hash (b1), GKX_HASH_BYTES);
    s_deliver (&b, a4);

    gkx_partnership_t p;
    ck_assert_int_eq (gkx_store_partnership (b.store, pid, &p), GKX_OK);
    ck_assert_int_eq (p.is_frozen, 0);
    s_evidence_t evidence;
    memset (&evidence, 0, sizeof evidence);
    ck_assert_int_eq (gkx_store_evidence (b.store, pid, s_keep, &evidence), GKX_OK);
    ck_assert_uint_eq (evidence.count, 0);
    s_assert_same_head (&old, &b, pid, GKX_ROLE_ADVERTISER);
    s_assert_same_head (&old, &b, pid, GKX_ROLE_PUBLISHER);

    gkx_entry_destroy (&a1);
    gkx_entry_destroy (&a2);
    gkx_entry_destroy (&a3);
    gkx_entry_destroy (&a4);
    gkx_entry_destroy (&b1);
    s_node_destroy (&old);
    s_node_destroy (&a);
    s_node_destroy (&b);
}
END_TEST

/* A store opened with a 64 KiB map takes a few thousand 1 KiB entries:
   every append succeeds, the map grows, and everything reads back and
   verifies, also after a reopen with the small map asked for again. */
START_TEST (test_map_grows)
{
    gkx_store_options_t options;
    memset (&options, 0, sizeof options);
    options.map_bytes = S_SMALL_MAP_BYTES;
    s_node_t a;
    s_node_t b;
    s_node_open (&a, &options);
    s_node_open (&b, NULL);
    ck_assert_uint_eq (gkx_store_map_bytes (a.store), S_SMALL_MAP_BYTES);
    uint8_t pid[GKX_ID_BYTES];
    gkx_entry_t *a1 = s_partner (&a, &b, pid);
    gkx_entry_destroy (&a1);

    for (uint64_t i = 0; i < S_GROWTH_ENTRIES; i++) {
        msgpack_sbuffer body;
        s_body_pad (&body, i, S_PAD_BYTES);
        gkx_entry_t *entry = s_append (&a, pid, GKX_KIND_EDIT, (const uint8_t *) body.data,
                                       body.size);
        ck_assert_uint_eq (gkx_entry_seq (entry), i + 2);
        gkx_entry_destroy (&entry);
        msgpack_sbuffer_destroy (&body);
    }
    size_t grown = gkx_store_map_bytes (a.store);
    ck_assert_uint_ge (grown, (size_t) S_GROWTH_ENTRIES * S_PAD_BYTES);
    ck_assert_uint_eq (s_assert_chain_whole (a.store, pid, GKX_ROLE_ADVERTISER),
                       S_GROWTH_ENTRIES + 1);

    s_node_reopen (&a);
    ck_assert_uint_ge (gkx_store_map_bytes (a.store), (size_t) S_GROWTH_ENTRIES * S_PAD_BYTES);
    ck_assert_uint_eq (s_assert_chain_whole (a.store, pid, GKX_ROLE_ADVERTISER),
                       S_GROWTH_ENTRIES + 1);
    gkx_entry_t *last = NULL;
    ck_assert_int_eq (gkx_store_get (a.store, pid, GKX_ROLE_ADVERTISER, S_GROWTH_ENTRIES + 1,
                                     &last),
                      GKX_OK);
    size_t body_len;
    const uint8_t *body = gkx_entry_body (last, &body_len);
    msgpack_sbuffer expected;
    s_body_pad (&expected, S_GROWTH_ENTRIES - 1, S_PAD_BYTES);
    ck_assert_uint_eq (body_len, expected.size);
    ck_assert_mem_eq (body, expected.data, expected.size);
    msgpack_sbuffer_destroy (&expected);
    gkx_entry_destroy (&last);
    gkx_entry_t *more = s_edit (&a, pid, 1);
    ck_assert_uint_eq (gkx_entry_seq (more), S_GROWTH_ENTRIES + 2);
    gkx_entry_destroy (&more);

    s_node_destroy (&a);
    s_node_destroy (&b);
}
END_TEST

/* Reads exactly len bytes from fd; returns 0 at end of file. */
static int
s_read_full (int fd, void *buf, size_t len)
{
    size_t got = 0;
    while (got < len) {
        ssize_t n = read (fd, (char *) buf + got, len - got);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            return 0;
        }
        got += (size_t) n;
    }
    return 1;
}

/* The writer of the crash test, in its own process: opens the store (its
   own environment, never the parent's), appends forever and reports each
   seq on fd once gkx_store_append has returned (committed). */
static void
s_crash_writer (const char *dir, const gkx_identity_t *identity,
                const uint8_t pid[GKX_ID_BYTES], int fd)
{
    gkx_store_t *store = NULL;
    if (gkx_store_open (&store, dir, gkx_identity_id (identity), NULL, NULL) != GKX_OK) {
        _exit (3);
    }
    for (uint64_t i = 0;; i++) {
        msgpack_sbuffer body;
        s_body_pad (&body, i, S_PAD_BYTES);
        gkx_entry_t *entry = NULL;
        int rc = gkx_store_append (store, identity, pid, GKX_KIND_EDIT,
                                   (const uint8_t *) body.data, body.size, &entry, NULL);
        msgpack_sbuffer_destroy (&body);
        if (rc != GKX_OK) {
            _exit (4);
        }
        uint64_t seq = gkx_entry_seq (entry);
        gkx_entry_destroy (&entry);
        if (write (fd, &seq, sizeof seq) != (ssize_t) sizeof seq) {
            _exit (5);
        }
    }
}

/* A writer killed with SIGKILL at a random moment between (or inside)
   appends, five times over: on reopen the head is at least the last seq
   the writer reported committed, every entry from 1 to the head decodes,
   verifies and links by prev_hash, and the store appends on from there. */
START_TEST (test_crash_keeps_committed_entries)
{
    const char *seed_env = getenv ("GKX_TEST_SEED");
    unsigned seed = seed_env && *seed_env ? (unsigned) strtoul (seed_env, NULL, 10)
                                          : (unsigned) time (NULL) ^ (unsigned) getpid ();
    fprintf (stderr, "# test_crash_keeps_committed_entries: seed %u (GKX_TEST_SEED)\n", seed);
    srand (seed);

    s_node_t a;
    s_node_t b;
    s_node_open (&a, NULL);
    s_node_open (&b, NULL);
    uint8_t pid[GKX_ID_BYTES];
    gkx_entry_t *a1 = s_partner (&a, &b, pid);
    gkx_entry_destroy (&a1);

    for (int round = 0; round < S_CRASH_ROUNDS; round++) {
        gkx_head_t start;
        ck_assert_int_eq (gkx_store_head (a.store, pid, GKX_ROLE_ADVERTISER, &start), GKX_OK);
        gkx_store_close (&a.store);     /* never open across fork () */
        fflush (NULL);

        int fds[2];
        ck_assert_int_eq (pipe (fds), 0);
        pid_t child = fork ();
        ck_assert_int_ge (child, 0);
        if (child == 0) {
            close (fds[0]);
            s_crash_writer (a.dir, a.identity, pid, fds[1]);
            _exit (6);
        }
        close (fds[1]);

        uint64_t target = S_CRASH_MIN_SEQS + (uint64_t) (rand () % S_CRASH_EXTRA_SEQS);
        uint64_t reported = 0;
        uint64_t last = start.seq;
        uint64_t seq;
        int monotonic = 1;
        while (reported < target && s_read_full (fds[0], &seq, sizeof seq)) {
            monotonic = monotonic && seq == last + 1;
            last = seq;
            reported++;
        }
        struct timespec pause = {0, (long) (rand () % S_CRASH_MAX_DELAY_US) * 1000L};
        nanosleep (&pause, NULL);
        kill (child, SIGKILL);
        int status = 0;
        while (waitpid (child, &status, 0) < 0 && errno == EINTR) {
        }
        /* Seqs reported between the last read and the kill were committed too. */
        while (s_read_full (fds[0], &seq, sizeof seq)) {
            monotonic = monotonic && seq == last + 1;
            last = seq;
            reported++;
        }
        close (fds[0]);
        ck_assert_msg (WIFSIGNALED (status) && WTERMSIG (status) == SIGKILL,
                       "round %d: the writer ended by itself (exit %d) after %llu appends",
                       round, WIFEXITED (status) ? WEXITSTATUS (status) : -1,
                       (unsigned long long) reported);
        ck_assert_msg (monotonic, "round %d: the writer reported seqs out of order", round);
        ck_assert_uint_ge (reported, target);

        s_node_reopen (&a);
        uint64_t head = s_assert_chain_whole (a.store, pid, GKX_ROLE_ADVERTISER);
        fprintf (stderr, "# round %d: last seq reported %llu, head after reopen %llu\n", round,
                 (unsigned long long) last, (unsigned long long) head);
        ck_assert_msg (head >= last, "round %d: head %llu lost committed seq %llu", round,
                       (unsigned long long) head, (unsigned long long) last);
        ck_assert_uint_le (head, last + 1);
        gkx_entry_t *beyond = NULL;
        ck_assert_int_eq (gkx_store_get (a.store, pid, GKX_ROLE_ADVERTISER, head + 1, &beyond),
                          GKX_ENOTFOUND);
        gkx_entry_t *next = s_edit (&a, pid, head);
        ck_assert_uint_eq (gkx_entry_seq (next), head + 1);
        gkx_entry_destroy (&next);
    }

    s_node_destroy (&a);
    s_node_destroy (&b);
}
END_TEST

/* The store's hybrid clock never goes back: not across a reopen with a
   wall clock an hour behind, and local entries keep ordering after it. */
START_TEST (test_hlc_monotonic_across_reopen)
{
    s_clock_t clock = {T0};
    gkx_store_options_t options;
    memset (&options, 0, sizeof options);
    options.clock_ms = s_clock_read;
    options.clock_arg = &clock;
    s_node_t a;
    s_node_t b;
    s_node_open (&a, &options);
    s_node_open (&b, NULL);
    ck_assert_uint_eq (gkx_store_hlc (a.store), 0);
    uint8_t pid[GKX_ID_BYTES];
    gkx_entry_t *a1 = s_partner (&a, &b, pid);
    ck_assert_uint_eq (gkx_entry_hlc (a1), gkx_hlc_send (0, T0));
    gkx_entry_t *a2 = s_edit (&a, pid, 1);
    gkx_entry_t *a3 = s_edit (&a, pid, 2);
    ck_assert_uint_eq (gkx_hlc_ms (gkx_entry_hlc (a3)), T0);
    ck_assert_uint_eq (gkx_hlc_counter (gkx_entry_hlc (a3)), 2);
    uint64_t before = gkx_store_hlc (a.store);
    ck_assert_uint_eq (before, gkx_entry_hlc (a3));

    clock.now_ms = T0 - 3600 * 1000;
    s_node_reopen (&a);
    ck_assert_uint_eq (gkx_store_hlc (a.store), before);
    gkx_entry_t *a4 = s_edit (&a, pid, 3);
    ck_assert_uint_gt (gkx_entry_hlc (a4), before);
    ck_assert_uint_eq (gkx_store_hlc (a.store), gkx_entry_hlc (a4));
    s_deliver (&b, a2);
    s_deliver (&b, a3);
    s_deliver (&b, a4);

    gkx_entry_destroy (&a1);
    gkx_entry_destroy (&a2);
    gkx_entry_destroy (&a3);
    gkx_entry_destroy (&a4);
    s_node_destroy (&a);
    s_node_destroy (&b);
}
END_TEST

/* Appends an edit made of one CLI edit; returns the entry (the caller's). */
static gkx_entry_t *
s_edit_text (s_node_t *node, const uint8_t pid[GKX_ID_BYTES], const char *edit)
{
    msgpack_sbuffer body;
    gkx_test_edit_body (&body, edit);
    gkx_entry_t *entry = s_append (node, pid, GKX_KIND_EDIT, (const uint8_t *) body.data,
                                   body.size);
    msgpack_sbuffer_destroy (&body);
    return entry;
}

/* Returns the offer's JSON text as a node derives it (the caller frees). */
static char *
s_offer_text (s_node_t *node, const uint8_t pid[GKX_ID_BYTES])
{
    gkx_merge_t *state = NULL;
    ck_assert_int_eq (gkx_store_merge (node->store, pid, &state), GKX_OK);
    char *text = gkx_offer_to_text (gkx_merge_offer (state));
    gkx_merge_destroy (&state);
    return text;
}

/* Both members derive the same offer and digest from the same entries, and
   the materialised offer moves in the transaction of the entry. */
/* Asks a's store whether b's chain holds, from seq from on, anything but acks. */
static int
s_other_than_acks (s_node_t *a, const uint8_t pid[GKX_ID_BYTES], int role, uint64_t from)
{
    int found = -1;
    ck_assert_int_eq (gkx_store_holds_other_than (a->store, pid, role, from, GKX_KIND_ACK,
                                                  &found), GKX_OK);
    ck_assert (found == 0 || found == 1);
    return found;
}

/* holds_other_than finds entries other than acks by their kind alone. */
START_TEST (test_holds_other_than)
{
    s_node_t a;
    s_node_t b;
    uint8_t pid[GKX_ID_BYTES];
    s_node_open (&a, NULL);
    s_node_open (&b, NULL);
    gkx_entry_t *genesis = s_partner (&a, &b, pid);
    ck_assert_int_eq (s_other_than_acks (&a, pid, GKX_ROLE_ADVERTISER, 1), 1);
    ck_assert_int_eq (s_other_than_acks (&a, pid, GKX_ROLE_ADVERTISER, 2), 0);
    ck_assert_int_eq (s_other_than_acks (&a, pid, GKX_ROLE_PUBLISHER, 1), 0);
    gkx_entry_t *entries[3];
    entries[0] = s_ack (&b, pid);
    entries[1] = s_edit (&b, pid, 300);
    entries[2] = s_ack (&b, pid);
    for (int i = 0; i < 3; i++) {
        s_deliver (&a, entries[i]);
    }
    ck_assert_int_eq (s_other_than_acks (&a, pid, GKX_ROLE_PUBLISHER, 1), 1);
    ck_assert_int_eq (s_other_than_acks (&a, pid, GKX_ROLE_PUBLISHER, 2), 1);
    ck_assert_int_eq (s_other_than_acks (&a, pid, GKX_ROLE_PUBLISHER, 3), 0);
    ck_assert_int_eq (s_other_than_acks (&a, pid, GKX_ROLE_PUBLISHER, 99), 0);
    for (int i = 0; i < 3; i++) {
        gkx_entry_destroy (&entries[i]);
    }
    gkx_entry_destroy (&genesis);
    s_node_destroy (&a);
    s_node_destroy (&b);
}
END_TEST

/* Asserts a node's partnership counts by status. */
static void
s_assert_status_counts (s_node_t *node, size_t active, size_t paused, size_t frozen)
{
    gkx_store_partnership_counts_t counts;
    ck_assert_int_eq (gkx_store_partnership_counts (node->store, &counts), GKX_OK);
    ck_assert_uint_eq (counts.active, active);
    ck_assert_uint_eq (counts.paused, paused);
    ck_assert_uint_eq (counts.frozen, frozen);
}

/* Closes a node's store and deletes its paused index, as a store written
   before the index existed has none. */
static void
s_drop_paused_index (s_node_t *node)
{
    gkx_store_close (&node->store);
    MDB_env *env = NULL;
    MDB_txn *txn = NULL;
    MDB_dbi paused;
    ck_assert_int_eq (mdb_env_create (&env), 0);
    ck_assert_int_eq (mdb_env_set_maxdbs (env, 32), 0);
    ck_assert_int_eq (mdb_env_open (env, node->dir, 0, 0600), 0);
    ck_assert_int_eq (mdb_txn_begin (env, NULL, 0, &txn), 0);
    ck_assert_int_eq (mdb_dbi_open (txn, "paused", 0, &paused), 0);
    ck_assert_int_eq (mdb_drop (txn, paused, 1), 0);
    ck_assert_int_eq (mdb_txn_commit (txn), 0);
    mdb_env_close (env);
}

START_TEST (test_offer_derived_on_both_sides)
{
    s_node_t a;
    s_node_t b;
    uint8_t pid[GKX_ID_BYTES];
    s_node_open (&a, NULL);
    s_node_open (&b, NULL);
    gkx_entry_t *genesis = s_partner (&a, &b, pid);
    uint8_t da[GKX_OFFER_DIGEST_BYTES];
    uint8_t db[GKX_OFFER_DIGEST_BYTES];
    uint8_t before[GKX_OFFER_DIGEST_BYTES];
    ck_assert_int_eq (gkx_store_digest (a.store, pid, before), GKX_OK);
    ck_assert_int_eq (gkx_store_digest (b.store, pid, db), GKX_OK);
    ck_assert_mem_eq (before, db, GKX_OFFER_DIGEST_BYTES);

    gkx_entry_t *ack = s_ack (&b, pid);
    s_deliver (&a, ack);
    gkx_entry_t *raise = s_edit_text (&a, pid, "payout.amount=2.75");
    ck_assert_int_eq (gkx_store_digest (a.store, pid, da), GKX_OK);
    ck_assert_mem_ne (da, before, GKX_OFFER_DIGEST_BYTES);
    s_deliver (&b, raise);
    gkx_entry_t *pause = s_edit_text (&b, pid, "status=paused");
    s_deliver (&a, pause);
    ck_assert_int_eq (gkx_store_digest (a.store, pid, da), GKX_OK);
    ck_assert_int_eq (gkx_store_digest (b.store, pid, db), GKX_OK);
    ck_assert_mem_eq (da, db, GKX_OFFER_DIGEST_BYTES);

    s_assert_status_counts (&a, 0, 1, 0);
    s_assert_status_counts (&b, 0, 1, 0);

    char *text_a = s_offer_text (&a, pid);
    char *text_b = s_offer_text (&b, pid);
    ck_assert_str_eq (text_a, text_b);
    ck_assert_ptr_nonnull (strstr (text_a, "\"amount\":\"2.75\""));
    ck_assert_ptr_nonnull (strstr (text_a, "\"status\":\"paused\""));
    free (text_a);
    free (text_b);

    /* A cold start derives the state again from the entries alone. */
    s_node_reopen (&a);
    uint8_t reopened[GKX_OFFER_DIGEST_BYTES];
    ck_assert_int_eq (gkx_store_digest (a.store, pid, reopened), GKX_OK);
    ck_assert_mem_eq (reopened, db, GKX_OFFER_DIGEST_BYTES);
    gkx_merge_t *state = NULL;
    ck_assert_int_eq (gkx_store_merge (a.store, pid, &state), GKX_OK);
    json_t *changes = gkx_merge_changes (state, "A", "B");
    ck_assert_uint_eq (json_array_size (changes), 2);
    json_decref (changes);
    gkx_merge_destroy (&state);

    /* A store from before the paused index builds it when opened. */
    s_drop_paused_index (&a);
    s_node_reopen (&a);
    s_assert_status_counts (&a, 0, 1, 0);
    gkx_entry_t *resume = s_edit_text (&a, pid, "status=active");
    s_assert_status_counts (&a, 1, 0, 0);
    s_deliver (&b, resume);
    s_assert_status_counts (&b, 1, 0, 0);
    gkx_entry_destroy (&resume);

    gkx_entry_destroy (&genesis);
    gkx_entry_destroy (&ack);
    gkx_entry_destroy (&raise);
    gkx_entry_destroy (&pause);
    s_node_destroy (&a);
    s_node_destroy (&b);
}
END_TEST

/* rebuild recomputes the offer from the entries alone: the same digest. */
START_TEST (test_rebuild_yields_same_digest)
{
    s_node_t a;
    s_node_t b;
    uint8_t pid[GKX_ID_BYTES];
    s_node_open (&a, NULL);
    s_node_open (&b, NULL);
    gkx_entry_t *genesis = s_partner (&a, &b, pid);
    gkx_entry_t *ack = s_ack (&b, pid);
    s_deliver (&a, ack);
    gkx_entry_t *e1 = s_edit_text (&a, pid, "targeting.countries+=FR");
    gkx_entry_t *e2 = s_edit_text (&a, pid, "caps.daily=200");
    uint8_t before[GKX_OFFER_DIGEST_BYTES];
    uint8_t after[GKX_OFFER_DIGEST_BYTES];
    ck_assert_int_eq (gkx_store_digest (a.store, pid, before), GKX_OK);
    int changed = -1;
    char errbuf[GKX_ERRBUF_BYTES] = "";
    ck_assert_msg (gkx_store_rebuild (a.store, pid, &changed, errbuf) == GKX_OK, "%s", errbuf);
    ck_assert_int_eq (changed, 0);
    ck_assert_int_eq (gkx_store_digest (a.store, pid, after), GKX_OK);
    ck_assert_mem_eq (before, after, GKX_OFFER_DIGEST_BYTES);
    uint8_t unknown[GKX_ID_BYTES] = {0};
    ck_assert_int_eq (gkx_store_rebuild (a.store, unknown, NULL, errbuf), GKX_ENOTFOUND);
    gkx_entry_destroy (&genesis);
    gkx_entry_destroy (&ack);
    gkx_entry_destroy (&e1);
    gkx_entry_destroy (&e2);
    s_node_destroy (&a);
    s_node_destroy (&b);
}
END_TEST

/* An edit body the offer cannot read is refused at ingest and at append:
   nothing is written. */
START_TEST (test_malformed_edit_refused)
{
    s_node_t a;
    s_node_t b;
    uint8_t pid[GKX_ID_BYTES];
    s_node_open (&a, NULL);
    s_node_open (&b, NULL);
    gkx_entry_t *genesis = s_partner (&a, &b, pid);
    msgpack_sbuffer body;
    msgpack_sbuffer_init (&body);
    msgpack_packer pk;
    msgpack_packer_init (&pk, &body, msgpack_sbuffer_write);
    msgpack_pack_map (&pk, 1);
    gkx_codec_pack_cstr (&pk, "payout");
    msgpack_pack_uint64 (&pk, 7);
    char errbuf[GKX_ERRBUF_BYTES] = "";
    gkx_entry_t *entry = NULL;
    int rc = gkx_store_append (a.store, a.identity, pid, GKX_KIND_EDIT, (const uint8_t *) body.data,
                               body.size, &entry, errbuf);
    ck_assert_int_eq (rc, GKX_EBODY);
    ck_assert_ptr_null (entry);
    gkx_head_t head;
    ck_assert_int_eq (gkx_store_head (a.store, pid, GKX_ROLE_ADVERTISER, &head), GKX_OK);
    ck_assert_uint_eq (head.seq, 1);

    /* The same body signed by hand and shipped: refused by the receiver. */
    gkx_entry_draft_t draft;
    memset (&draft, 0, sizeof draft);
    memcpy (draft.pid, pid, GKX_ID_BYTES);
    memcpy (draft.author, gkx_identity_id (a.identity), GKX_ID_BYTES);
    draft.seq = 2;
    memcpy (draft.prev_hash, gkx_entry_hash (genesis), GKX_HASH_BYTES);
    draft.hlc = gkx_entry_hlc (genesis) + 1;
    draft.kind = GKX_KIND_EDIT;
    draft.body = (const uint8_t *) body.data;
    draft.body_len = body.size;
    ck_assert_int_eq (gkx_entry_sign (&entry, &draft, a.identity, errbuf), GKX_OK);
    size_t len;
    const uint8_t *bytes = gkx_entry_bytes (entry, &len);
    int result = 0;
    ck_assert_int_eq (gkx_store_ingest (b.store, bytes, len, gkx_identity_id (a.identity),
                                        &result, errbuf), GKX_EBODY);
    ck_assert_ptr_nonnull (strstr (errbuf, "advertiser seq 2"));
    ck_assert_int_eq (gkx_store_head (b.store, pid, GKX_ROLE_ADVERTISER, &head), GKX_OK);
    ck_assert_uint_eq (head.seq, 1);
    msgpack_sbuffer_destroy (&body);
    gkx_entry_destroy (&entry);
    gkx_entry_destroy (&genesis);
    s_node_destroy (&a);
    s_node_destroy (&b);
}
END_TEST

/* A genesis whose offer is missing or breaks the schema is refused. */
START_TEST (test_share_needs_valid_offer)
{
    s_node_t a;
    s_node_t b;
    uint8_t pid[GKX_ID_BYTES];
    s_node_open (&a, NULL);
    s_node_open (&b, NULL);
    char errbuf[GKX_ERRBUF_BYTES] = "";
    ck_assert_int_eq (gkx_store_share (a.store, a.identity, gkx_identity_id (b.identity), NULL, 0,
                                       NULL, 0, pid, NULL, errbuf), GKX_EINVAL);
    ck_assert_str_eq (errbuf, "share: an offer is required");
    static const uint8_t empty_map[] = {0x80};
    ck_assert_int_eq (gkx_store_share (a.store, a.identity, gkx_identity_id (b.identity),
                                       empty_map, sizeof empty_map, NULL, 0, pid, NULL, errbuf),
                      GKX_EBODY);
    ck_assert_ptr_nonnull (strstr (errbuf, "genesis: "));
    ck_assert_int_eq (gkx_store_partnership (a.store, pid, &(gkx_partnership_t) {0}), GKX_ENOTFOUND);
    s_node_destroy (&a);
    s_node_destroy (&b);
}
END_TEST

/* Fills a valid conversion for the test offer (USD), with dedupe key from
   the transaction id. */
static void
s_conversion (gkx_conversion_t *c, const char *transaction)
{
    memset (c, 0, sizeof *c);
    snprintf (c->click_id, sizeof c->click_id, "click-%s", transaction);
    snprintf (c->currency, sizeof c->currency, "USD");
    snprintf (c->event, sizeof c->event, "install");
    gkx_postback_dedupe_key (c->dedupe, transaction, "install");
    c->payout = 2500000;
    c->status = GKX_CONVERSION_APPROVED;
    c->time = 1795491556;
}

/* A conversion is indexed by its dedupe key on both members, in the
   transaction that stores it; an unknown key is not found. */
START_TEST (test_conversion_indexed_by_dedupe)
{
    s_node_t a;
    s_node_t b;
    uint8_t pid[GKX_ID_BYTES];
    s_node_open (&a, NULL);
    s_node_open (&b, NULL);
    gkx_entry_t *genesis = s_partner (&a, &b, pid);
    gkx_conversion_t *c = malloc (sizeof *c);
    s_conversion (c, "txn-1");
    uint8_t *body = NULL;
    size_t len = 0;
    char errbuf[GKX_ERRBUF_BYTES] = "";
    ck_assert_msg (gkx_conversion_encode (&body, &len, c, errbuf) == GKX_OK, "%s", errbuf);
    gkx_entry_t *entry = s_append (&a, pid, GKX_KIND_CONVERSION, body, len);
    s_deliver (&b, entry);
    uint8_t hash[GKX_HASH_BYTES];
    ck_assert_int_eq (gkx_store_conversion_find (a.store, pid, c->dedupe, hash), GKX_OK);
    ck_assert_mem_eq (hash, gkx_entry_hash (entry), GKX_HASH_BYTES);
    ck_assert_int_eq (gkx_store_conversion_find (b.store, pid, c->dedupe, hash), GKX_OK);
    ck_assert_mem_eq (hash, gkx_entry_hash (entry), GKX_HASH_BYTES);
    uint8_t other[16];
    gkx_postback_dedupe_key (other, "txn-2", "install");
    ck_assert_int_eq (gkx_store_conversion_find (b.store, pid, other, hash), GKX_ENOTFOUND);
    gkx_free (body);
    free (c);
    gkx_entry_destroy (&entry);
    gkx_entry_destroy (&genesis);
    s_node_destroy (&a);
    s_node_destroy (&b);
}
END_TEST

/* Conversion and status bodies that do not decode are refused. */
START_TEST (test_conversion_bodies_checked)
{
    s_node_t a;
    s_node_t b;
    uint8_t pid[GKX_ID_BYTES];
    s_node_open (&a, NULL);
    s_node_open (&b, NULL);
    gkx_entry_t *genesis = s_partner (&a, &b, pid);
    static const uint8_t empty_map[] = {0x80};
    char errbuf[GKX_ERRBUF_BYTES] = "";
    gkx_entry_t *entry = NULL;
    ck_assert_int_eq (gkx_store_append (a.store, a.identity, pid, GKX_KIND_CONVERSION, empty_map,
                                        sizeof empty_map, &entry, errbuf), GKX_EBODY);
    ck_assert_ptr_nonnull (strstr (errbuf, "advertiser seq 2"));
    ck_assert_int_eq (gkx_store_append (a.store, a.identity, pid, GKX_KIND_CONVERSION_STATUS,
                                        empty_map, sizeof empty_map, &entry, errbuf), GKX_EBODY);
    gkx_head_t head;
    ck_assert_int_eq (gkx_store_head (a.store, pid, GKX_ROLE_ADVERTISER, &head), GKX_OK);
    ck_assert_uint_eq (head.seq, 1);
    gkx_entry_destroy (&genesis);
    s_node_destroy (&a);
    s_node_destroy (&b);
}
END_TEST

/* Fills a postback item for partnership pid: an install at a fixed time. */
static void
s_item (gkx_store_convert_t *item, const uint8_t pid[GKX_ID_BYTES], const char *transaction)
{
    memset (item, 0, sizeof *item);
    memcpy (item->pid, pid, GKX_ID_BYTES);
    snprintf (item->draft.click_id, sizeof item->draft.click_id, "click-%s", transaction);
    snprintf (item->draft.event, sizeof item->draft.event, "install");
    item->draft.time = 1795491556;
    gkx_postback_dedupe_key (item->draft.dedupe, transaction, "install");
    item->facts.event = item->draft.event;
    item->facts.time = item->draft.time;
}

/* Converts items on a and ships the new entries to b. */
static void
s_convert_ship (s_node_t *a, s_node_t *b, gkx_store_convert_t *items, size_t count)
{
    char errbuf[GKX_ERRBUF_BYTES] = "";
    ck_assert_msg (gkx_store_convert (a->store, a->identity, items, count, errbuf) == GKX_OK, "%s",
                   errbuf);
    for (size_t i = 0; i < count; i++) {
        if (items[i].entry) {
            s_deliver (b, items[i].entry);
            gkx_entry_destroy (&items[i].entry);
        }
    }
}

/* One transaction writes a batch: new conversions are decided from the
   offer (payout 2.50 USD), a repeated dedupe key in the same batch or a
   later one answers the first conversion, and the publisher's node holds
   the same records without a flag. */
START_TEST (test_convert_batch_dedupes)
{
    s_node_t a;
    s_node_t b;
    uint8_t pid[GKX_ID_BYTES];
    s_node_open (&a, NULL);
    s_node_open (&b, NULL);
    gkx_entry_t *genesis = s_partner (&a, &b, pid);
    gkx_store_convert_t *items = calloc (3, sizeof *items);
    s_item (&items[0], pid, "t1");
    s_item (&items[1], pid, "t2");
    s_item (&items[2], pid, "t1");
    s_convert_ship (&a, &b, items, 3);
    ck_assert_int_eq (items[0].rc, GKX_OK);
    ck_assert_int_eq (items[0].duplicate, 0);
    ck_assert_int_eq (items[0].conversion.status, GKX_CONVERSION_APPROVED);
    ck_assert_int_eq (items[0].conversion.payout, 2500000);
    ck_assert_str_eq (items[0].currency, "USD");
    ck_assert_int_eq (items[1].duplicate, 0);
    ck_assert_int_eq (items[2].duplicate, 1);
    ck_assert_mem_eq (items[2].conversion.id, items[0].conversion.id, GKX_HASH_BYTES);
    s_item (&items[0], pid, "t2");
    s_convert_ship (&a, &b, items, 1);
    ck_assert_int_eq (items[0].duplicate, 1);
    ck_assert_mem_eq (items[0].conversion.id, items[1].conversion.id, GKX_HASH_BYTES);
    gkx_store_conversion_t held;
    ck_assert_int_eq (gkx_store_conversion (b.store, pid, items[1].conversion.id, &held), GKX_OK);
    ck_assert_int_eq (held.status, GKX_CONVERSION_APPROVED);
    ck_assert_int_eq (held.payout, 2500000);
    ck_assert_str_eq (held.flag, "");
    gkx_head_t head;
    ck_assert_int_eq (gkx_store_head (b.store, pid, GKX_ROLE_ADVERTISER, &head), GKX_OK);
    ck_assert_uint_eq (head.seq, 3);
    free (items);
    gkx_entry_destroy (&genesis);
    s_node_destroy (&a);
    s_node_destroy (&b);
}
END_TEST

/* A daily cap counts approved conversions of the day: the third of a cap
   of 2 is rejected "cap"; reversing one frees its place; a reversed
   conversion cannot come back. */
START_TEST (test_convert_cap_and_status)
{
    s_node_t a;
    s_node_t b;
    uint8_t pid[GKX_ID_BYTES];
    s_node_open (&a, NULL);
    s_node_open (&b, NULL);
    gkx_entry_t *genesis = s_partner (&a, &b, pid);
    /* A hold of 60 days keeps approved conversions open to changes. */
    const char *edits[] = {"caps.daily=2", "conversion_policy.hold_days=60"};
    gkx_entry_t *entry = NULL;
    for (size_t i = 0; i < 2; i++) {
        msgpack_sbuffer edit;
        gkx_test_edit_body (&edit, edits[i]);
        entry = s_append (&a, pid, GKX_KIND_EDIT, (const uint8_t *) edit.data, edit.size);
        s_deliver (&b, entry);
        gkx_entry_destroy (&entry);
        msgpack_sbuffer_destroy (&edit);
    }
    gkx_store_convert_t *items = calloc (3, sizeof *items);
    s_item (&items[0], pid, "c1");
    s_item (&items[1], pid, "c2");
    s_item (&items[2], pid, "c3");
    s_convert_ship (&a, &b, items, 3);
    ck_assert_int_eq (items[1].conversion.status, GKX_CONVERSION_APPROVED);
    ck_assert_int_eq (items[2].conversion.status, GKX_CONVERSION_REJECTED);
    ck_assert_str_eq (items[2].conversion.reason, "cap");
    gkx_store_conversion_t held;
    ck_assert_int_eq (gkx_store_conversion (b.store, pid, items[2].conversion.id, &held), GKX_OK);
    ck_assert_str_eq (held.reason, "cap");
    ck_assert_str_eq (held.flag, "");

    gkx_conversion_change_t change;
    memset (&change, 0, sizeof change);
    memcpy (change.conversion, items[0].conversion.id, GKX_HASH_BYTES);
    change.status = GKX_CONVERSION_REVERSED;
    snprintf (change.reason, sizeof change.reason, "chargeback");
    uint8_t *body = NULL;
    size_t len = 0;
    char errbuf[GKX_ERRBUF_BYTES] = "";
    ck_assert_int_eq (gkx_conversion_change_encode (&body, &len, &change, errbuf), GKX_OK);
    entry = s_append (&a, pid, GKX_KIND_CONVERSION_STATUS, body, len);
    s_deliver (&b, entry);
    gkx_entry_destroy (&entry);
    ck_assert_int_eq (gkx_store_conversion (b.store, pid, items[0].conversion.id, &held), GKX_OK);
    ck_assert_int_eq (held.status, GKX_CONVERSION_REVERSED);
    ck_assert_str_eq (held.reason, "chargeback");
    /* The reversed conversion no longer counts: one more fits the cap. */
    s_item (&items[0], pid, "c4");
    s_convert_ship (&a, &b, items, 1);
    ck_assert_int_eq (items[0].conversion.status, GKX_CONVERSION_APPROVED);
    /* Reversed is final: the advertiser's own node refuses the change. */
    change.status = GKX_CONVERSION_APPROVED;
    gkx_free (body);
    ck_assert_int_eq (gkx_conversion_change_encode (&body, &len, &change, errbuf), GKX_OK);
    ck_assert_int_eq (gkx_store_append (a.store, a.identity, pid, GKX_KIND_CONVERSION_STATUS, body,
                                        len, NULL, errbuf), GKX_EPOLICY);
    gkx_free (body);
    free (items);
    gkx_entry_destroy (&genesis);
    s_node_destroy (&a);
    s_node_destroy (&b);
}
END_TEST

/* The publisher's node checks each conversion against the terms of its
   causal past: a wrong payout is kept, with a flag naming it. A conversion
   written by the publisher is refused on its own node. */
START_TEST (test_conversion_verified_by_publisher)
{
    s_node_t a;
    s_node_t b;
    uint8_t pid[GKX_ID_BYTES];
    s_node_open (&a, NULL);
    s_node_open (&b, NULL);
    gkx_entry_t *genesis = s_partner (&a, &b, pid);
    gkx_conversion_t *c = malloc (sizeof *c);
    s_conversion (c, "txn-9");
    c->payout = 9000000;
    uint8_t *body = NULL;
    size_t len = 0;
    char errbuf[GKX_ERRBUF_BYTES] = "";
    ck_assert_int_eq (gkx_conversion_encode (&body, &len, c, errbuf), GKX_OK);
    gkx_entry_t *entry = s_append (&a, pid, GKX_KIND_CONVERSION, body, len);
    s_deliver (&b, entry);
    gkx_store_conversion_t held;
    ck_assert_int_eq (gkx_store_conversion (b.store, pid, gkx_entry_hash (entry), &held), GKX_OK);
    ck_assert_msg (strstr (held.flag, "payout") != NULL, "flag: %s", held.flag);
    ck_assert_int_eq (gkx_store_conversion (a.store, pid, gkx_entry_hash (entry), &held), GKX_OK);
    ck_assert_str_eq (held.flag, "");
    ck_assert_int_eq (gkx_store_append (b.store, b.identity, pid, GKX_KIND_CONVERSION, body, len,
                                        NULL, errbuf), GKX_EPOLICY);
    ck_assert_ptr_nonnull (strstr (errbuf, "advertiser only"));
    gkx_free (body);
    free (c);
    gkx_entry_destroy (&entry);
    gkx_entry_destroy (&genesis);
    s_node_destroy (&a);
    s_node_destroy (&b);
}
END_TEST

/* Collects deliveries. */
static int
s_delivery_collect (const gkx_delivery_t *d, void *arg)
{
    gkx_delivery_t *out = arg;
    while (out->id) {
        out++;
    }
    *out = *d;
    return 0;
}

/* With deliveries on, each counterparty conversion is queued for the
   webhook in its ingest's transaction; a delivered one leaves the due
   list but stays in the listing; a short id finds its partnership. */
START_TEST (test_deliveries_queued)
{
    s_node_t a;
    s_node_t b;
    uint8_t pid[GKX_ID_BYTES];
    gkx_store_options_t options;
    memset (&options, 0, sizeof options);
    options.deliveries = 1;
    s_node_open (&a, NULL);
    s_node_open (&b, &options);
    gkx_entry_t *genesis = s_partner (&a, &b, pid);
    gkx_store_convert_t *items = calloc (2, sizeof *items);
    s_item (&items[0], pid, "d1");
    s_item (&items[1], pid, "d2");
    s_convert_ship (&a, &b, items, 2);
    gkx_delivery_t found[4];
    memset (found, 0, sizeof found);
    ck_assert_int_eq (gkx_store_deliveries_due (b.store, UINT64_MAX, 10, s_delivery_collect, found),
                      GKX_OK);
    ck_assert_uint_eq (found[0].id, 1);
    ck_assert_uint_eq (found[0].seq, 2);
    ck_assert_uint_eq (found[1].id, 2);
    ck_assert_uint_eq (found[2].id, 0);
    uint64_t pending = 0;
    ck_assert_int_eq (gkx_store_deliveries_pending (b.store, &pending), GKX_OK);
    ck_assert_uint_eq (pending, 2);
    found[0].attempts = 1;
    found[0].last_status = 200;
    found[0].delivered_ms = found[0].last_attempt_ms = 1000;
    found[0].next_attempt_ms = 0;
    char errbuf[GKX_ERRBUF_BYTES] = "";
    ck_assert_int_eq (gkx_store_delivery_put (b.store, &found[0], errbuf), GKX_OK);
    ck_assert_int_eq (gkx_store_deliveries_pending (b.store, &pending), GKX_OK);
    ck_assert_uint_eq (pending, 1);
    ck_assert_int_eq (gkx_store_deliveries_pending (a.store, &pending), GKX_OK);
    ck_assert_uint_eq (pending, 0);
    gkx_delivery_t due[4];
    memset (due, 0, sizeof due);
    ck_assert_int_eq (gkx_store_deliveries_due (b.store, UINT64_MAX, 10, s_delivery_collect, due),
                      GKX_OK);
    ck_assert_uint_eq (due[0].id, 2);
    ck_assert_uint_eq (due[1].id, 0);
    memset (due, 0, sizeof due);
    ck_assert_int_eq (gkx_store_deliveries (b.store, 10, s_delivery_collect, due), GKX_OK);
    ck_assert_uint_eq (due[0].id, 2);
    ck_assert_uint_eq (due[1].id, 1);
    ck_assert_uint_eq (due[1].delivered_ms, 1000);
    gkx_delivery_t one;
    ck_assert_int_eq (gkx_store_delivery_get (b.store, 1, &one), GKX_OK);
    ck_assert_int_eq (one.last_status, 200);
    ck_assert_int_eq (gkx_store_delivery_get (b.store, 9, &one), GKX_ENOTFOUND);
    memset (due, 0, sizeof due);
    ck_assert_int_eq (gkx_store_deliveries (a.store, 10, s_delivery_collect, due), GKX_OK);
    ck_assert_uint_eq (due[0].id, 0);

    char short_id[GKX_STORE_SHORT_ID_CHARS + 1];
    uint8_t found_pid[GKX_ID_BYTES];
    gkx_store_short_id (short_id, pid);
    ck_assert_int_eq (gkx_store_short_find (b.store, short_id, found_pid), GKX_OK);
    ck_assert_mem_eq (found_pid, pid, GKX_ID_BYTES);
    ck_assert_int_eq (gkx_store_short_find (b.store, "00000000000000zz", found_pid), GKX_EINVAL);
    ck_assert_int_eq (gkx_store_short_find (b.store, "abc", found_pid), GKX_EINVAL);
    short_id[0] = short_id[0] == '0' ? '1' : '0';
    ck_assert_int_eq (gkx_store_short_find (b.store, short_id, found_pid), GKX_ENOTFOUND);
    free (items);
    gkx_entry_destroy (&genesis);
    s_node_destroy (&a);
    s_node_destroy (&b);
}
END_TEST

/* Issues a publisher card of identity at ts, named name. */
static gkx_card_t *
s_directory_card (const gkx_identity_t *identity, uint64_t ts, const char *name)
{
    gkx_card_info_t info = {GKX_ROLE_PUBLISHER, name, "tcp://127.0.0.1:7710", "", NULL, 0,
                            NULL, 0, ts};
    gkx_card_t *card = NULL;
    ck_assert_int_eq (gkx_card_issue (&card, identity, &info, NULL), GKX_OK);
    return card;
}

/* Collects the timestamps of the directory's cards, in id order. */
typedef struct {
    uint64_t ts[8];
    size_t count;
} s_directory_list_t;

/* Adds one card to a s_directory_list_t. */
static int
s_directory_collect (const gkx_card_t *card, void *arg)
{
    s_directory_list_t *list = arg;
    ck_assert_uint_lt (list->count, 8);
    list->ts[list->count++] = gkx_card_timestamp (card);
    return 0;
}

/* Lists the directory's cards of node into list. */
static void
s_directory_list (s_node_t *node, s_directory_list_t *list)
{
    memset (list, 0, sizeof *list);
    ck_assert_int_eq (gkx_store_directory_cards (node->store, s_directory_collect, list), GKX_OK);
}

/* The directory keeps the newest card per id; the same card again is a
   no-op, an older or equally old other card is refused. */
START_TEST (test_directory_keeps_newest)
{
    s_node_t d;
    s_node_open (&d, NULL);
    gkx_identity_t *p = gkx_identity_new ();
    gkx_identity_t *q = gkx_identity_new ();
    gkx_card_t *card = s_directory_card (p, T0, "Pixel");
    gkx_card_t *older = s_directory_card (p, T0 - 1, "Pixel");
    gkx_card_t *twin = s_directory_card (p, T0, "Pixel Media");
    gkx_card_t *newer = s_directory_card (p, T0 + 1, "Pixel Media");
    gkx_card_t *other = s_directory_card (q, T0 - 100, "Quill");
    char errbuf[GKX_ERRBUF_BYTES] = "";
    s_directory_list_t list;
    s_directory_list (&d, &list);
    ck_assert_uint_eq (list.count, 0);
    ck_assert_int_eq (gkx_store_directory_put (d.store, card, errbuf), GKX_OK);
    ck_assert_int_eq (gkx_store_directory_put (d.store, card, errbuf), GKX_OK);
    ck_assert_int_eq (gkx_store_directory_put (d.store, older, errbuf), GKX_EEXIST);
    ck_assert_str_eq (errbuf, "card of Pixel: issued at 1795491556922, not after the card held "
                              "(issued at 1795491556923)");
    ck_assert_int_eq (gkx_store_directory_put (d.store, twin, errbuf), GKX_EEXIST);
    s_directory_list (&d, &list);
    ck_assert_uint_eq (list.count, 1);
    ck_assert_uint_eq (list.ts[0], T0);
    ck_assert_int_eq (gkx_store_directory_put (d.store, newer, errbuf), GKX_OK);
    ck_assert_int_eq (gkx_store_directory_put (d.store, other, errbuf), GKX_OK);
    s_node_reopen (&d);
    s_directory_list (&d, &list);
    ck_assert_uint_eq (list.count, 2);
    int p_first = memcmp (gkx_identity_id (p), gkx_identity_id (q), GKX_ID_BYTES) < 0;
    ck_assert_uint_eq (list.ts[p_first ? 0 : 1], T0 + 1);
    ck_assert_uint_eq (list.ts[p_first ? 1 : 0], T0 - 100);
    /* The peers are another matter: a directory's cards are not peers. */
    ck_assert_int_eq (gkx_store_peer_get (d.store, gkx_identity_id (p), &card), GKX_ENOTFOUND);
    gkx_card_destroy (&card);
    gkx_card_destroy (&older);
    gkx_card_destroy (&twin);
    gkx_card_destroy (&newer);
    gkx_card_destroy (&other);
    gkx_identity_destroy (&p);
    gkx_identity_destroy (&q);
    s_node_destroy (&d);
}
END_TEST

/* A withdrawal drops the card it covers and keeps older cards out; a
   later card lists the owner again; an older withdrawal is refused and a
   replayed one drops no newer card. */
START_TEST (test_directory_withdrawal)
{
    s_node_t d;
    s_node_open (&d, NULL);
    gkx_identity_t *p = gkx_identity_new ();
    gkx_card_t *card = s_directory_card (p, T0, "Pixel");
    gkx_card_t *at_withdrawal = s_directory_card (p, T0 + 5, "Pixel");
    gkx_card_t *later = s_directory_card (p, T0 + 6, "Pixel");
    gkx_card_t *latest = s_directory_card (p, T0 + 20, "Pixel");
    gkx_withdrawal_t *w = gkx_withdrawal_new (p, T0 + 5);
    gkx_withdrawal_t *w_older = gkx_withdrawal_new (p, T0 + 3);
    gkx_withdrawal_t *w_newer = gkx_withdrawal_new (p, T0 + 10);
    char errbuf[GKX_ERRBUF_BYTES] = "";
    s_directory_list_t list;
    ck_assert_int_eq (gkx_store_directory_put (d.store, card, errbuf), GKX_OK);
    ck_assert_int_eq (gkx_store_directory_withdraw (d.store, w, errbuf), GKX_OK);
    s_directory_list (&d, &list);
    ck_assert_uint_eq (list.count, 0);
    ck_assert_int_eq (gkx_store_directory_put (d.store, card, errbuf), GKX_EPOLICY);
    ck_assert_str_eq (errbuf, "card of Pixel: withdrawn by its owner at 1795491556928, and "
                              "issued at 1795491556923");
    ck_assert_int_eq (gkx_store_directory_put (d.store, at_withdrawal, errbuf), GKX_EPOLICY);
    ck_assert_int_eq (gkx_store_directory_withdraw (d.store, w, errbuf), GKX_OK);
    ck_assert_int_eq (gkx_store_directory_withdraw (d.store, w_older, errbuf), GKX_EEXIST);
    ck_assert_str_eq (errbuf, "withdrawal made at 1795491556926, before the one held (made at "
                              "1795491556928)");
    ck_assert_int_eq (gkx_store_directory_put (d.store, later, errbuf), GKX_OK);
    s_directory_list (&d, &list);
    ck_assert_uint_eq (list.count, 1);
    ck_assert_uint_eq (list.ts[0], T0 + 6);
    ck_assert_int_eq (gkx_store_directory_withdraw (d.store, w_newer, errbuf), GKX_OK);
    s_directory_list (&d, &list);
    ck_assert_uint_eq (list.count, 0);
    /* A card issued after the withdrawal; the same withdrawal sent again
       leaves it listed. */
    ck_assert_int_eq (gkx_store_directory_put (d.store, latest, errbuf), GKX_OK);
    ck_assert_int_eq (gkx_store_directory_withdraw (d.store, w_newer, errbuf), GKX_OK);
    s_node_reopen (&d);
    s_directory_list (&d, &list);
    ck_assert_uint_eq (list.count, 1);
    ck_assert_uint_eq (list.ts[0], T0 + 20);
    gkx_withdrawal_destroy (&w);
    gkx_withdrawal_destroy (&w_older);
    gkx_withdrawal_destroy (&w_newer);
    gkx_card_destroy (&card);
    gkx_card_destroy (&at_withdrawal);
    gkx_card_destroy (&later);
    gkx_card_destroy (&latest);
    gkx_identity_destroy (&p);
    s_node_destroy (&d);
}
END_TEST

/* The node's own withdrawal time is kept across a reopen, and cleared. */
START_TEST (test_directory_own_withdrawn)
{
    s_node_t a;
    s_node_open (&a, NULL);
    char errbuf[GKX_ERRBUF_BYTES] = "";
    ck_assert_uint_eq (gkx_store_directory_withdrawn (a.store), 0);
    ck_assert_int_eq (gkx_store_directory_set_withdrawn (a.store, T0, errbuf), GKX_OK);
    s_node_reopen (&a);
    ck_assert_uint_eq (gkx_store_directory_withdrawn (a.store), T0);
    ck_assert_int_eq (gkx_store_directory_set_withdrawn (a.store, 0, errbuf), GKX_OK);
    ck_assert_uint_eq (gkx_store_directory_withdrawn (a.store), 0);
    s_node_destroy (&a);
}
END_TEST

/* Collects notices into an array ended by a zero id. */
static int
s_notice_collect (const gkx_notice_t *n, void *arg)
{
    gkx_notice_t *out = arg;
    while (out->id) {
        out++;
    }
    *out = *n;
    return 0;
}

/* Collects messages into an array ended by a zero id. */
static int
s_message_collect (const gkx_message_t *m, void *arg)
{
    gkx_message_t *out = arg;
    while (out->id) {
        out++;
    }
    *out = *m;
    return 0;
}

/* Reads the waiting notices of node (at most 8) into out, zeroed first;
   returns how many. */
static size_t
s_waiting (s_node_t *node, gkx_notice_t out[9])
{
    memset (out, 0, 9 * sizeof *out);
    ck_assert_int_eq (gkx_store_notices_waiting (node->store, 8, s_notice_collect, out), GKX_OK);
    size_t count = 0;
    while (out[count].id) {
        count++;
    }
    return count;
}

/* Asserts a notice's fields. */
static void
s_assert_notice (const gkx_notice_t *n, uint64_t id, const uint8_t pid[GKX_ID_BYTES], int role,
                 int kind, uint64_t seq, int prior)
{
    ck_assert_uint_eq (n->id, id);
    ck_assert_mem_eq (n->pid, pid, GKX_ID_BYTES);
    ck_assert_int_eq (n->role, role);
    ck_assert_int_eq (n->kind, kind);
    ck_assert_uint_eq (n->seq, seq);
    ck_assert_int_eq (n->prior, prior);
    ck_assert_uint_eq (n->queued_ms, T0);
}

/* With notices on, each change the counterparty makes is queued in its
   ingest's transaction: a new partnership, edits (a pause among them), a
   conversion status change with the status it changes; nothing for the
   node's own entries, acks or conversions, and nothing without the
   option. */
START_TEST (test_notices_queued)
{
    s_clock_t clock = {T0};
    gkx_store_options_t options;
    memset (&options, 0, sizeof options);
    options.notices = 1;
    options.clock_ms = s_clock_read;
    options.clock_arg = &clock;
    s_node_t a;
    s_node_t b;
    s_node_t quiet;
    s_node_open (&a, &options);
    s_node_open (&b, &options);
    /* The same publisher, its store opened without notices. */
    s_node_clone (&quiet, &b);
    quiet.options.notices = 0;
    s_node_reopen (&quiet);
    uint8_t pid[GKX_ID_BYTES];
    gkx_entry_t *genesis = s_partner (&a, &b, pid);
    s_deliver (&quiet, genesis);
    gkx_notice_t found[9];
    ck_assert_uint_eq (s_waiting (&a, found), 0);
    ck_assert_uint_eq (s_waiting (&b, found), 1);
    s_assert_notice (&found[0], 1, pid, GKX_ROLE_ADVERTISER, GKX_KIND_GENESIS, 1, 0);

    /* The advertiser's edits. */
    const char *edits[] = {"conversion_policy.hold_days=60", "payout.amount=2.75"};
    for (size_t i = 0; i < 2; i++) {
        gkx_entry_t *edit = s_edit_text (&a, pid, edits[i]);
        s_deliver (&b, edit);
        s_deliver (&quiet, edit);
        gkx_entry_destroy (&edit);
    }

    /* A conversion is not a notice; its status change is, with the status
       before it. Then the publisher acknowledges and pauses the offer. */
    gkx_store_convert_t *items = calloc (1, sizeof *items);
    s_item (&items[0], pid, "n1");
    s_convert_ship (&a, &b, items, 1);
    ck_assert_int_eq (items[0].conversion.status, GKX_CONVERSION_APPROVED);
    gkx_conversion_change_t change;
    memset (&change, 0, sizeof change);
    memcpy (change.conversion, items[0].conversion.id, GKX_HASH_BYTES);
    change.status = GKX_CONVERSION_REVERSED;
    snprintf (change.reason, sizeof change.reason, "chargeback");
    uint8_t *body = NULL;
    size_t len = 0;
    char errbuf[GKX_ERRBUF_BYTES] = "";
    ck_assert_int_eq (gkx_conversion_change_encode (&body, &len, &change, errbuf), GKX_OK);
    gkx_entry_t *status = s_append (&a, pid, GKX_KIND_CONVERSION_STATUS, body, len);
    s_deliver (&b, status);
    gkx_entry_t *ack = s_ack (&b, pid);
    s_deliver (&a, ack);
    gkx_entry_t *pause = s_edit_text (&b, pid, "status=paused");
    s_deliver (&a, pause);
    ck_assert_uint_eq (s_waiting (&a, found), 1);
    s_assert_notice (&found[0], 1, pid, GKX_ROLE_PUBLISHER, GKX_KIND_EDIT, 2, 0);
    ck_assert_uint_eq (s_waiting (&b, found), 4);
    s_assert_notice (&found[1], 2, pid, GKX_ROLE_ADVERTISER, GKX_KIND_EDIT, 2, 0);
    s_assert_notice (&found[2], 3, pid, GKX_ROLE_ADVERTISER, GKX_KIND_EDIT, 3, 0);
    s_assert_notice (&found[3], 4, pid, GKX_ROLE_ADVERTISER, GKX_KIND_CONVERSION_STATUS,
                     gkx_entry_seq (status), GKX_CONVERSION_APPROVED);
    ck_assert_uint_eq (s_waiting (&quiet, found), 0);

    /* A duplicate is no new notice; the queue outlives a restart. */
    int result;
    ck_assert_int_eq (s_ship (&b, status, gkx_entry_author (status), &result, errbuf), GKX_OK);
    ck_assert_int_eq (result, GKX_INGEST_DUPLICATE);
    s_node_reopen (&b);
    ck_assert_uint_eq (s_waiting (&b, found), 4);
    gkx_notice_t one;
    ck_assert_int_eq (gkx_store_notice_get (b.store, 4, &one), GKX_OK);
    ck_assert_int_eq (one.prior, GKX_CONVERSION_APPROVED);
    ck_assert_int_eq (gkx_store_notice_get (b.store, 5, &one), GKX_ENOTFOUND);
    /* The listing stops at its limit, oldest first. */
    memset (found, 0, sizeof found);
    ck_assert_int_eq (gkx_store_notices_waiting (b.store, 2, s_notice_collect, found), GKX_OK);
    ck_assert_uint_eq (found[1].id, 2);
    ck_assert_uint_eq (found[2].id, 0);

    gkx_free (body);
    free (items);
    gkx_entry_destroy (&genesis);
    gkx_entry_destroy (&ack);
    gkx_entry_destroy (&pause);
    gkx_entry_destroy (&status);
    s_node_destroy (&a);
    s_node_destroy (&b);
    s_node_destroy (&quiet);
}
END_TEST

/* Equivocation freezes the partnership and queues a notice naming the
   chain and the seq, committed with the evidence. */
START_TEST (test_notice_of_frozen_partnership)
{
    s_clock_t clock = {T0};
    gkx_store_options_t options;
    memset (&options, 0, sizeof options);
    options.clock_ms = s_clock_read;
    options.clock_arg = &clock;
    s_node_t a;
    s_node_t b;
    s_node_t twin;
    s_node_open (&a, &options);
    options.notices = 1;
    s_node_open (&b, &options);
    uint8_t pid[GKX_ID_BYTES];
    gkx_entry_t *genesis = s_partner (&a, &b, pid);
    s_node_clone (&twin, &a);
    gkx_entry_t *first = s_edit (&a, pid, 1000);
    gkx_entry_t *second = s_edit (&twin, pid, 2000);
    s_deliver (&b, first);
    char errbuf[GKX_ERRBUF_BYTES] = "";
    int result;
    ck_assert_int_eq (s_ship (&b, second, gkx_identity_id (a.identity), &result, errbuf),
                      GKX_EEQUIVOCATION);
    gkx_notice_t found[9];
    ck_assert_uint_eq (s_waiting (&b, found), 3);
    s_assert_notice (&found[1], 2, pid, GKX_ROLE_ADVERTISER, GKX_KIND_EDIT, 2, 0);
    s_assert_notice (&found[2], 3, pid, GKX_ROLE_ADVERTISER, GKX_NOTICE_FROZEN, 2, 0);
    /* Refused entries of a frozen partnership queue nothing. */
    ck_assert_int_eq (s_ship (&b, second, gkx_identity_id (a.identity), &result, errbuf),
                      GKX_EFROZEN);
    ck_assert_uint_eq (s_waiting (&b, found), 3);
    gkx_entry_destroy (&genesis);
    gkx_entry_destroy (&first);
    gkx_entry_destroy (&second);
    s_node_destroy (&twin);
    s_node_destroy (&a);
    s_node_destroy (&b);
}
END_TEST

/* Fills a pending message of pid holding notices ids, due at due_ms. */
static void
s_message (gkx_message_t *m, const uint8_t pid[GKX_ID_BYTES], const uint64_t *ids, size_t count,
           uint64_t due_ms)
{
    memset (m, 0, sizeof *m);
    memcpy (m->pid, pid, GKX_ID_BYTES);
    m->state = GKX_MESSAGE_PENDING;
    m->created_ms = T0;
    m->next_attempt_ms = due_ms;
    snprintf (m->subject, sizeof m->subject, "Änderung: %zu", count);
    m->notice_count = count;
    memcpy (m->notices, ids, count * sizeof *ids);
}

/* A message takes its notices out of the waiting ones in one transaction
   (a notice not waiting refuses the whole message), keeps its bodies
   through every update, is due until it is sent, and the listing shows
   every message newest first. */
START_TEST (test_messages_outbox)
{
    s_clock_t clock = {T0};
    gkx_store_options_t options;
    memset (&options, 0, sizeof options);
    options.notices = 1;
    options.clock_ms = s_clock_read;
    options.clock_arg = &clock;
    s_node_t a;
    s_node_t b;
    s_node_open (&a, NULL);
    s_node_open (&b, &options);
    uint8_t pid[GKX_ID_BYTES];
    gkx_entry_t *genesis = s_partner (&a, &b, pid);
    for (uint64_t amount = 1; amount <= 3; amount++) {
        gkx_entry_t *edit = s_edit (&a, pid, amount);
        s_deliver (&b, edit);
        gkx_entry_destroy (&edit);
    }
    gkx_notice_t found[9];
    ck_assert_uint_eq (s_waiting (&b, found), 4);

    char errbuf[GKX_ERRBUF_BYTES] = "";
    gkx_message_t m;
    uint64_t first_ids[] = {1, 2};
    s_message (&m, pid, first_ids, 2, T0);
    ck_assert_msg (gkx_store_message_add (b.store, &m, "text one\n", "<p>one</p>", errbuf)
                       == GKX_OK,
                   "%s", errbuf);
    ck_assert_uint_eq (m.id, 1);
    ck_assert_uint_eq (s_waiting (&b, found), 2);
    ck_assert_uint_eq (found[0].id, 3);

    /* Notice 2 is taken, notice 9 does not exist: nothing is written. */
    uint64_t bad_ids[] = {3, 2};
    s_message (&m, pid, bad_ids, 2, T0);
    ck_assert_int_eq (gkx_store_message_add (b.store, &m, "x", "", errbuf), GKX_EINVAL);
    ck_assert_str_eq (errbuf, "store: notice 2 is not waiting");
    uint64_t unknown_ids[] = {9};
    s_message (&m, pid, unknown_ids, 1, T0);
    ck_assert_int_eq (gkx_store_message_add (b.store, &m, "x", "", errbuf), GKX_EINVAL);
    s_message (&m, pid, unknown_ids, 0, T0);
    ck_assert_int_eq (gkx_store_message_add (b.store, &m, "x", "", errbuf), GKX_EINVAL);
    ck_assert_str_eq (errbuf, "store: a message holds 1 to 64 notices, not 0");
    ck_assert_uint_eq (s_waiting (&b, found), 2);

    uint64_t second_ids[] = {3, 4};
    s_message (&m, pid, second_ids, 2, T0 + 5000);
    ck_assert_int_eq (gkx_store_message_add (b.store, &m, "text two", "", errbuf), GKX_OK);
    ck_assert_uint_eq (m.id, 2);
    ck_assert_uint_eq (s_waiting (&b, found), 0);

    /* Due: the first now, both later. */
    gkx_message_t due[4];
    memset (due, 0, sizeof due);
    ck_assert_int_eq (gkx_store_messages_due (b.store, T0, 10, s_message_collect, due), GKX_OK);
    ck_assert_uint_eq (due[0].id, 1);
    ck_assert_uint_eq (due[1].id, 0);
    memset (due, 0, sizeof due);
    ck_assert_int_eq (gkx_store_messages_due (b.store, UINT64_MAX, 10, s_message_collect, due),
                      GKX_OK);
    ck_assert_uint_eq (due[1].id, 2);

    /* A failed attempt, then the message sent: it leaves the due index. */
    gkx_message_t held;
    ck_assert_int_eq (gkx_store_message_get (b.store, 1, &held), GKX_OK);
    ck_assert_str_eq (held.subject, "Änderung: 2");
    ck_assert_uint_eq (held.notice_count, 2);
    ck_assert_uint_eq (held.notices[1], 2);
    held.state = GKX_MESSAGE_FAILED;
    held.attempts = 1;
    held.last_attempt_ms = T0 + 1;
    held.next_attempt_ms = T0 + 1001;
    snprintf (held.last_error, sizeof held.last_error, "Couldn't connect to server");
    ck_assert_int_eq (gkx_store_message_put (b.store, &held, errbuf), GKX_OK);
    memset (due, 0, sizeof due);
    ck_assert_int_eq (gkx_store_messages_due (b.store, T0 + 1000, 10, s_message_collect, due),
                      GKX_OK);
    ck_assert_uint_eq (due[0].id, 0);
    held.state = GKX_MESSAGE_SENT;
    held.attempts = 2;
    held.sent_ms = held.last_attempt_ms = T0 + 1001;
    held.next_attempt_ms = 0;
    held.last_error[0] = '\0';
    ck_assert_int_eq (gkx_store_message_put (b.store, &held, errbuf), GKX_OK);
    memset (due, 0, sizeof due);
    ck_assert_int_eq (gkx_store_messages_due (b.store, UINT64_MAX, 10, s_message_collect, due),
                      GKX_OK);
    ck_assert_uint_eq (due[0].id, 2);
    ck_assert_uint_eq (due[1].id, 0);

    /* Reopened: the listing, newest first, and the bodies as written. */
    s_node_reopen (&b);
    memset (due, 0, sizeof due);
    ck_assert_int_eq (gkx_store_messages (b.store, 10, s_message_collect, due), GKX_OK);
    ck_assert_uint_eq (due[0].id, 2);
    ck_assert_int_eq (due[0].state, GKX_MESSAGE_PENDING);
    ck_assert_uint_eq (due[1].id, 1);
    ck_assert_int_eq (due[1].state, GKX_MESSAGE_SENT);
    ck_assert_uint_eq (due[1].attempts, 2);
    ck_assert_uint_eq (due[1].sent_ms, T0 + 1001);
    ck_assert_str_eq (due[1].last_error, "");
    memset (due, 0, sizeof due);
    ck_assert_int_eq (gkx_store_messages (b.store, 1, s_message_collect, due), GKX_OK);
    ck_assert_uint_eq (due[1].id, 0);
    char *text = NULL;
    char *html = NULL;
    ck_assert_int_eq (gkx_store_message_body (b.store, 1, &text, &html), GKX_OK);
    ck_assert_str_eq (text, "text one\n");
    ck_assert_str_eq (html, "<p>one</p>");
    gkx_free (text);
    gkx_free (html);
    ck_assert_int_eq (gkx_store_message_body (b.store, 2, &text, &html), GKX_OK);
    ck_assert_str_eq (text, "text two");
    ck_assert_str_eq (html, "");
    gkx_free (text);
    gkx_free (html);
    ck_assert_int_eq (gkx_store_message_body (b.store, 3, &text, &html), GKX_ENOTFOUND);
    ck_assert_int_eq (gkx_store_message_get (b.store, 3, &held), GKX_ENOTFOUND);
    held.id = 3;
    ck_assert_int_eq (gkx_store_message_put (b.store, &held, errbuf), GKX_ENOTFOUND);
    ck_assert_str_eq (errbuf, "store: no message 3");
    gkx_entry_destroy (&genesis);
    s_node_destroy (&a);
    s_node_destroy (&b);
}
END_TEST

/* Checks the conversion counts of a store: 3 conversions on day, of
   which 2 recorded approved and 1 rejected; now 1 approved, 1 rejected and
   1 reversed. */
static void
s_assert_counts (gkx_store_t *store, uint64_t day)
{
    gkx_store_conversion_counts_t counts;
    ck_assert_int_eq (gkx_store_conversion_counts (store, day, &counts), GKX_OK);
    ck_assert_uint_eq (counts.day, 3);
    ck_assert_uint_eq (counts.recorded[GKX_CONVERSION_APPROVED], 2);
    ck_assert_uint_eq (counts.recorded[GKX_CONVERSION_PENDING], 0);
    ck_assert_uint_eq (counts.recorded[GKX_CONVERSION_REJECTED], 1);
    ck_assert_uint_eq (counts.recorded[GKX_CONVERSION_REVERSED], 0);
    ck_assert_uint_eq (counts.current[GKX_CONVERSION_APPROVED], 1);
    ck_assert_uint_eq (counts.current[GKX_CONVERSION_PENDING], 0);
    ck_assert_uint_eq (counts.current[GKX_CONVERSION_REJECTED], 1);
    ck_assert_uint_eq (counts.current[GKX_CONVERSION_REVERSED], 1);
    ck_assert_int_eq (gkx_store_conversion_counts (store, day + 1, &counts), GKX_OK);
    ck_assert_uint_eq (counts.day, 0);
    ck_assert_uint_eq (counts.recorded[GKX_CONVERSION_APPROVED], 2);
}

/* Deletes the conversion counts of the store in dir (closed) and the mark
   that they are whole, as in a store written before they were kept. */
static void
s_counts_forget (const char *dir)
{
    MDB_env *env;
    MDB_txn *txn;
    MDB_dbi meta;
    MDB_dbi tallies;
    MDB_cursor *cursor;
    ck_assert_int_eq (mdb_env_create (&env), 0);
    ck_assert_int_eq (mdb_env_set_maxdbs (env, 64), 0);
    ck_assert_int_eq (mdb_env_open (env, dir, 0, 0600), 0);
    ck_assert_int_eq (mdb_txn_begin (env, NULL, 0, &txn), 0);
    ck_assert_int_eq (mdb_dbi_open (txn, "meta", 0, &meta), 0);
    ck_assert_int_eq (mdb_dbi_open (txn, "tallies", 0, &tallies), 0);
    MDB_val key = {6, "counts"};
    ck_assert_int_eq (mdb_del (txn, meta, &key, NULL), 0);
    ck_assert_int_eq (mdb_cursor_open (txn, tallies, &cursor), 0);
    MDB_val val;
    int deleted = 0;
    int rc = mdb_cursor_get (cursor, &key, &val, MDB_FIRST);
    while (rc == 0) {
        char tag = ((const char *) key.mv_data)[GKX_ID_BYTES];
        if (tag == 'a' || tag == 'i' || tag == 's') {
            /* MDB_NEXT after a delete takes the record that followed. */
            ck_assert_int_eq (mdb_cursor_del (cursor, 0), 0);
            deleted++;
        }
        rc = mdb_cursor_get (cursor, &key, &val, MDB_NEXT);
    }
    mdb_cursor_close (cursor);
    ck_assert_int_gt (deleted, 0);
    ck_assert_int_eq (mdb_txn_commit (txn), 0);
    mdb_env_close (env);
}

/* The store counts conversions by day and by status, recorded and now,
   on both members, in the transactions of their entries; a store without
   these counts gets them back at open; the data's size is known. */
START_TEST (test_conversion_counts)
{
    s_node_t a;
    s_node_t b;
    uint8_t pid[GKX_ID_BYTES];
    s_node_open (&a, NULL);
    s_node_open (&b, NULL);
    gkx_entry_t *genesis = s_partner (&a, &b, pid);
    gkx_store_conversion_counts_t counts;
    ck_assert_int_eq (gkx_store_conversion_counts (a.store, 0, &counts), GKX_OK);
    ck_assert_uint_eq (counts.day, 0);
    ck_assert_uint_eq (counts.current[GKX_CONVERSION_APPROVED], 0);
    const char *edits[] = {"caps.daily=2", "conversion_policy.hold_days=60"};
    for (size_t i = 0; i < 2; i++) {
        msgpack_sbuffer edit;
        gkx_test_edit_body (&edit, edits[i]);
        gkx_entry_t *entry = s_append (&a, pid, GKX_KIND_EDIT, (const uint8_t *) edit.data,
                                       edit.size);
        s_deliver (&b, entry);
        gkx_entry_destroy (&entry);
        msgpack_sbuffer_destroy (&edit);
    }
    gkx_store_convert_t *items = calloc (3, sizeof *items);
    s_item (&items[0], pid, "n1");
    s_item (&items[1], pid, "n2");
    s_item (&items[2], pid, "n3");
    s_convert_ship (&a, &b, items, 3);
    ck_assert_int_eq (items[2].conversion.status, GKX_CONVERSION_REJECTED);
    gkx_conversion_change_t change;
    memset (&change, 0, sizeof change);
    memcpy (change.conversion, items[0].conversion.id, GKX_HASH_BYTES);
    change.status = GKX_CONVERSION_REVERSED;
    uint8_t *body = NULL;
    size_t len = 0;
    char errbuf[GKX_ERRBUF_BYTES] = "";
    ck_assert_int_eq (gkx_conversion_change_encode (&body, &len, &change, errbuf), GKX_OK);
    gkx_entry_t *entry = s_append (&a, pid, GKX_KIND_CONVERSION_STATUS, body, len);
    s_deliver (&b, entry);
    gkx_entry_destroy (&entry);
    gkx_conversion_periods_t periods;
    gkx_conversion_periods (&periods, items[0].draft.time);
    s_assert_counts (a.store, periods.day);
    s_assert_counts (b.store, periods.day);
    /* A duplicate postback is no new conversion. */
    s_item (&items[0], pid, "n2");
    s_convert_ship (&a, &b, items, 1);
    ck_assert_int_eq (items[0].duplicate, 1);
    s_assert_counts (a.store, periods.day);
    /* Counts lost (an older store) are built again at open, once. */
    gkx_store_close (&b.store);
    s_counts_forget (b.dir);
    s_node_reopen (&b);
    s_assert_counts (b.store, periods.day);
    s_node_reopen (&b);
    s_assert_counts (b.store, periods.day);
    uint64_t used = gkx_store_used_bytes (b.store);
    ck_assert_uint_gt (used, 0);
    ck_assert_uint_le (used, gkx_store_map_bytes (b.store));
    gkx_free (body);
    free (items);
    gkx_entry_destroy (&genesis);
    s_node_destroy (&a);
    s_node_destroy (&b);
}
END_TEST

/* A batch ingests in order with one commit; a refused entry (a gap, bad
   bytes) changes nothing and the rest still go in. */
START_TEST (test_ingest_batch)
{
    s_node_t a;
    s_node_t b;
    uint8_t pid[GKX_ID_BYTES];
    s_node_open (&a, NULL);
    s_node_open (&b, NULL);
    gkx_entry_t *genesis = s_partner (&a, &b, pid);
    gkx_entry_t *e[3];
    for (int i = 0; i < 3; i++) {
        e[i] = s_edit (&a, pid, 3000000 + (uint64_t) i);
    }
    static const uint8_t garbage[] = {0x93, 0x01, 0x02};
    gkx_store_ingest_item_t items[5];
    memset (items, 0, sizeof items);
    const gkx_entry_t *order[4] = {e[0], e[2], e[1], e[2]};
    for (int i = 0; i < 4; i++) {
        items[i].bytes = gkx_entry_bytes (order[i], &items[i].len);
    }
    items[4].bytes = garbage;
    items[4].len = sizeof garbage;
    char errbuf[GKX_ERRBUF_BYTES] = "";
    ck_assert_int_eq (gkx_store_ingest_batch (b.store, items, 5, gkx_identity_id (a.identity),
                                              errbuf), GKX_OK);
    ck_assert_int_eq (items[0].rc, GKX_OK);
    ck_assert_int_eq (items[0].result, GKX_INGEST_APPENDED);
    ck_assert_int_eq (items[1].rc, GKX_EGAP);
    ck_assert_int_eq (items[2].rc, GKX_OK);
    ck_assert_int_eq (items[3].rc, GKX_OK);
    ck_assert_int_eq (items[3].result, GKX_INGEST_APPENDED);
    ck_assert_int_ne (items[4].rc, GKX_OK);
    ck_assert_ptr_null (items[4].entry);
    for (int i = 0; i < 5; i++) {
        gkx_entry_destroy (&items[i].entry);
    }
    s_assert_same_head (&a, &b, pid, GKX_ROLE_ADVERTISER);
    uint8_t da[GKX_OFFER_DIGEST_BYTES];
    uint8_t db[GKX_OFFER_DIGEST_BYTES];
    ck_assert_int_eq (gkx_store_digest (a.store, pid, da), GKX_OK);
    ck_assert_int_eq (gkx_store_digest (b.store, pid, db), GKX_OK);
    ck_assert_mem_eq (da, db, sizeof da);
    for (int i = 0; i < 3; i++) {
        gkx_entry_destroy (&e[i]);
    }
    gkx_entry_destroy (&genesis);
    s_node_destroy (&a);
    s_node_destroy (&b);
}
END_TEST

/* append_each writes one entry to each partnership in one commit; one it
   refuses (unknown, or frozen) changes nothing and the others go in. */
START_TEST (test_append_each)
{
    s_node_t a;
    s_node_t b;
    uint8_t pids[2][GKX_ID_BYTES];
    s_node_open (&a, NULL);
    s_node_open (&b, NULL);
    gkx_entry_t *g1 = s_partner (&a, &b, pids[0]);
    gkx_entry_t *g2 = s_partner (&a, &b, pids[1]);
    /* an ack acknowledges something: one publisher entry each */
    for (int i = 0; i < 2; i++) {
        gkx_entry_t *edit = s_edit (&b, pids[i], 2000000 + (uint64_t) i);
        s_deliver (&a, edit);
        gkx_entry_destroy (&edit);
    }
    uint8_t unknown[GKX_ID_BYTES];
    memset (unknown, 0x5a, sizeof unknown);
    gkx_store_append_item_t items[3];
    memset (items, 0, sizeof items);
    items[0].pid = pids[0];
    items[1].pid = unknown;
    items[2].pid = pids[1];
    char errbuf[GKX_ERRBUF_BYTES] = "";
    ck_assert_int_eq (gkx_store_append_each (a.store, a.identity, GKX_KIND_ACK, gkx_ack_body,
                                             sizeof gkx_ack_body, items, 3, errbuf),
                      GKX_OK);
    ck_assert_int_eq (items[0].rc, GKX_OK);
    ck_assert_int_eq (items[1].rc, GKX_ENOTFOUND);
    ck_assert_str_ne (items[1].errbuf, "");
    ck_assert_int_eq (items[2].rc, GKX_OK);
    for (int i = 0; i < 2; i++) {
        gkx_head_t head;
        ck_assert_int_eq (gkx_store_head (a.store, pids[i], GKX_ROLE_ADVERTISER, &head), GKX_OK);
        ck_assert_uint_eq (head.seq, 2);
        gkx_entry_t *ack = NULL;
        ck_assert_int_eq (gkx_store_get (a.store, pids[i], GKX_ROLE_ADVERTISER, 2, &ack), GKX_OK);
        ck_assert_int_eq (gkx_entry_kind (ack), GKX_KIND_ACK);
        ck_assert_int_eq (gkx_entry_verify (ack), GKX_OK);
        /* the counterparty takes it like any other entry */
        s_deliver (&b, ack);
        gkx_entry_destroy (&ack);
    }
    s_assert_same_head (&a, &b, pids[0], GKX_ROLE_ADVERTISER);
    s_assert_same_head (&a, &b, pids[1], GKX_ROLE_ADVERTISER);
    ck_assert_int_eq (gkx_store_append_each (a.store, a.identity, GKX_KIND_ACK, gkx_ack_body,
                                             sizeof gkx_ack_body, items, 0, errbuf),
                      GKX_OK);
    gkx_entry_destroy (&g1);
    gkx_entry_destroy (&g2);
    s_node_destroy (&a);
    s_node_destroy (&b);
}
END_TEST

int
main (void)
{
    Suite *s = suite_create ("store");
    TCase *tc = tcase_create ("store");
    tcase_set_timeout (tc, 30);
    tcase_add_test (tc, test_open_creates_and_reopens);
    tcase_add_test (tc, test_open_refuses_other_format);
    tcase_add_test (tc, test_directory_keeps_newest);
    tcase_add_test (tc, test_directory_withdrawal);
    tcase_add_test (tc, test_directory_own_withdrawn);
    tcase_add_test (tc, test_share_creates_partnership);
    tcase_add_test (tc, test_genesis_creates_partnership_at_publisher);
    tcase_add_test (tc, test_genesis_for_third_node_refused);
    tcase_add_test (tc, test_append_cross_links);
    tcase_add_test (tc, test_ingest_replay_is_noop);
    tcase_add_test (tc, test_ingest_gap);
    tcase_add_test (tc, test_ingest_peer_must_be_author);
    tcase_add_test (tc, test_ingest_bad_signature);
    tcase_add_test (tc, test_ingest_unknown_partnership);
    tcase_add_test (tc, test_ingest_clock_must_advance);
    tcase_add_test (tc, test_ingest_clock_must_pass_seen_entry);
    tcase_add_test (tc, test_ingest_crosslink_ahead);
    tcase_add_test (tc, test_ingest_crosslink_wrong_hash);
    tcase_add_test (tc, test_ingest_wrong_prev);
    tcase_add_test (tc, test_equivocation_freezes);
    tcase_add_test (tc, test_restored_node_takes_back_before_appending);
    tcase_add_test (tc, test_map_grows);
    tcase_add_test (tc, test_crash_keeps_committed_entries);
    tcase_add_test (tc, test_hlc_monotonic_across_reopen);
    tcase_add_test (tc, test_offer_derived_on_both_sides);
    tcase_add_test (tc, test_rebuild_yields_same_digest);
    tcase_add_test (tc, test_malformed_edit_refused);
    tcase_add_test (tc, test_share_needs_valid_offer);
    tcase_add_test (tc, test_conversion_indexed_by_dedupe);
    tcase_add_test (tc, test_conversion_bodies_checked);
    tcase_add_test (tc, test_convert_batch_dedupes);
    tcase_add_test (tc, test_convert_cap_and_status);
    tcase_add_test (tc, test_conversion_verified_by_publisher);
    tcase_add_test (tc, test_deliveries_queued);
    tcase_add_test (tc, test_ingest_batch);
    tcase_add_test (tc, test_append_each);
    tcase_add_test (tc, test_holds_other_than);
    tcase_add_test (tc, test_conversion_counts);
    tcase_add_test (tc, test_notices_queued);
    tcase_add_test (tc, test_notice_of_frozen_partnership);
    tcase_add_test (tc, test_messages_outbox);
    suite_add_tcase (s, tc);
    return gkx_test_run (s);
}
