/*  fuzz_sync - libFuzzer target: the replication messages a node receives,
    and the store's ingest they drive.
    Part of gokart-exchange; MIT licence.

    Input: a stream of ZeroMQ frames split at GKX_FUZZ_FRAME_SEP (fuzz.h),
    read as the node's ROUTER reads them (src/node/node.c, s_on_router):
    a header frame (gkx_sync_decode), then for ["entries", pid, count] the
    next count frames, for ["card"] the next frame, then the next header.
    Each input runs against two fresh stores in a temporary directory (in
    $GKX_FUZZ_TMPDIR, else on /dev/shm when there is one): the advertiser's node receiving from the
    publisher, then the publisher's receiving from the advertiser, both
    fixed identities (fuzz.h), so that the partnership a genesis in the
    input creates is one the receiving node is a member of.

    What the node does with each message, this does with the store:
    entries go through gkx_store_ingest_batch with the sender as the
    connection's peer (decode, membership, signature, chain, clock,
    cross-link, equivocation, the merge and the conversion ledger); heads
    read the partnership and heads, and the range the node would send back;
    a card is decoded and kept as a peer. The signature is Ed25519, which a
    fuzzer cannot forge: an entry of one of the two identities whose
    signature does not verify is re-signed before it is sent in, unless its
    signature starts with a zero byte (those keep testing the refusal).

    Invariants: a header decodes only from its canonical encoding; every
    refusal has a code and a message; an entry reported appended is read
    back byte for byte; rebuilding a partnership's derived state from its
    entries alone changes nothing (the incremental merge equals the fold).
*/
#include "fuzz.h"

#include <gkx/alloc.h>
#include <gkx/card.h>
#include <gkx/entry.h>
#include <gkx/kind.h>
#include <gkx/store.h>
#include <gkx/sync.h>

#include <ftw.h>
#include <unistd.h>

/* Room for a path. */
#define S_PATH_BYTES 4096
/* Initial map of each store: small, so that inputs also grow it. */
#define S_MAP_BYTES ((size_t) 1 << 20)
/* The stores' wall clock: fixed, so runs repeat (2024-06-01T00:00:00Z). */
#define S_CLOCK_MS 1717200000000ULL
/* Most entries read back for one head of a heads message (as one batch). */
#define S_RANGE_MAX GKX_SYNC_MAX_BATCH

/* The two members, and the directory the stores live in. */
static gkx_identity_t *s_advertiser;
static gkx_identity_t *s_publisher;
static char s_dir[S_PATH_BYTES / 2];

/* The stores' clock. */
static uint64_t
s_clock (void *arg)
{
    (void) arg;
    return S_CLOCK_MS;
}

/* Removes one file or directory of a tree (nftw callback). */
static int
s_remove_one (const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void) st;
    (void) flag;
    (void) ftw;
    remove (path);
    return 0;
}

/* Removes the stores' directory at exit. */
static void
s_cleanup (void)
{
    if (s_dir[0]) {
        nftw (s_dir, s_remove_one, 16, FTW_DEPTH | FTW_PHYS);
    }
    gkx_identity_destroy (&s_advertiser);
    gkx_identity_destroy (&s_publisher);
}

int
LLVMFuzzerInitialize (int *argc, char ***argv)
{
    (void) argc;
    (void) argv;
    s_advertiser = gkx_fuzz_identity (1);
    s_publisher = gkx_fuzz_identity (2);
    /* scripts/fuzz names a directory it removes even when a run is cut short. */
    const char *tmp = getenv ("GKX_FUZZ_TMPDIR");
    if (!tmp || !*tmp) {
        tmp = access ("/dev/shm", W_OK) == 0 ? "/dev/shm" : getenv ("TMPDIR");
    }
    snprintf (s_dir, sizeof s_dir, "%s/gkx-fuzz-sync-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp (s_dir)) {
        perror ("fuzz_sync: mkdtemp");
        abort ();
    }
    atexit (s_cleanup);
    return 0;
}

/* Re-signs an entry of a fixed identity (see the file comment); bytes is
   the caller's copy of the frame. */
static void
s_resign (uint8_t *bytes, size_t len)
{
    gkx_entry_t *entry = NULL;
    if (gkx_entry_decode (&entry, bytes, len, NULL) != GKX_OK) {
        return;
    }
    const gkx_identity_t *author = NULL;
    if (memcmp (gkx_entry_author (entry), gkx_identity_id (s_advertiser), GKX_ID_BYTES) == 0) {
        author = s_advertiser;
    }
    else if (memcmp (gkx_entry_author (entry), gkx_identity_id (s_publisher), GKX_ID_BYTES) == 0) {
        author = s_publisher;
    }
    if (author && gkx_entry_signature (entry)[0] != 0 && gkx_entry_verify (entry) != GKX_OK) {
        gkx_identity_sign (author, bytes + len - GKX_SIGNATURE_BYTES, GKX_ENTRY_SIGN_PREFIX,
                           bytes, len - GKX_ENTRY_SIGNATURE_FIELD_BYTES);
    }
    gkx_entry_destroy (&entry);
}

/* Checks that a decoded header is the canonical encoding of its fields. */
static void
s_check_header (const gkx_sync_header_t *h, const gkx_fuzz_frame_t *frame)
{
    msgpack_sbuffer sbuf;
    msgpack_sbuffer_init (&sbuf);
    if (h->type == GKX_SYNC_HEADS) {
        gkx_sync_heads_encode (&sbuf, h->resync, h->heads, h->heads_count);
    }
    else if (h->type == GKX_SYNC_ENTRIES) {
        GKX_FUZZ_CHECK (h->count >= 1 && h->count <= GKX_SYNC_MAX_BATCH, "count %zu", h->count);
        gkx_sync_entries_encode (&sbuf, h->pid, h->count);
    }
    else {
        GKX_FUZZ_CHECK (h->type == GKX_SYNC_CARD, "sync: type %d", h->type);
        gkx_sync_card_encode (&sbuf);
    }
    GKX_FUZZ_CHECK (sbuf.size == frame->size && memcmp (sbuf.data, frame->data, sbuf.size) == 0,
                    "sync: a header that is not its canonical encoding was accepted");
    msgpack_sbuffer_destroy (&sbuf);
}

/* An entries message: ingests its frames as one batch from peer. */
static void
s_on_entries (gkx_store_t *store, const uint8_t *peer, const gkx_fuzz_frame_t *frames,
              size_t count)
{
    gkx_store_ingest_item_t *items = gkx_zalloc ((count ? count : 1) * sizeof *items);
    uint8_t **copies = gkx_zalloc ((count ? count : 1) * sizeof *copies);
    for (size_t i = 0; i < count; i++) {
        /* An empty frame (the input ends with a separator) sits at the input's
           end: nothing of it may be read. */
        copies[i] = frames[i].size ? gkx_memdup (frames[i].data, frames[i].size)
                                   : gkx_zalloc (1);
        s_resign (copies[i], frames[i].size);
        items[i].bytes = copies[i];
        items[i].len = frames[i].size;
    }
    char errbuf[GKX_ERRBUF_BYTES] = "";
    int rc = gkx_store_ingest_batch (store, items, count, peer, errbuf);
    GKX_FUZZ_CHECK (rc == GKX_OK, "ingest batch: store error %s: %s", gkx_errname (rc), errbuf);
    for (size_t i = 0; i < count; i++) {
        gkx_store_ingest_item_t *item = &items[i];
        GKX_FUZZ_SAY ("sync: entry %zu/%zu: %s %s", i + 1, count, gkx_errname (item->rc),
                      item->rc == GKX_OK ? (item->result == GKX_INGEST_APPENDED ? "appended"
                                                                               : "duplicate")
                                         : item->errbuf);
        if (item->rc == GKX_OK) {
            GKX_FUZZ_CHECK (item->entry != NULL, "ingest: no entry for an accepted one");
            GKX_FUZZ_CHECK (item->result == GKX_INGEST_APPENDED
                                || item->result == GKX_INGEST_DUPLICATE,
                            "ingest: result %d", item->result);
            gkx_partnership_t p;
            GKX_FUZZ_CHECK (gkx_store_partnership (store, gkx_entry_pid (item->entry), &p)
                                == GKX_OK,
                            "ingest: accepted an entry of an unknown partnership");
            int role = memcmp (gkx_entry_author (item->entry), p.advertiser, GKX_ID_BYTES) == 0
                           ? GKX_ROLE_ADVERTISER
                           : GKX_ROLE_PUBLISHER;
            gkx_entry_t *held = NULL;
            GKX_FUZZ_CHECK (gkx_store_get (store, gkx_entry_pid (item->entry), role,
                                           gkx_entry_seq (item->entry), &held)
                                == GKX_OK,
                            "ingest: an accepted entry cannot be read back");
            size_t a_len = 0;
            size_t b_len = 0;
            const uint8_t *a = gkx_entry_bytes (held, &a_len);
            const uint8_t *b = gkx_entry_bytes (item->entry, &b_len);
            /* A duplicate may differ only when it is equivocation, which is refused. */
            GKX_FUZZ_CHECK (a_len == b_len && memcmp (a, b, a_len) == 0,
                            "ingest: the entry held differs from the one accepted");
            gkx_entry_destroy (&held);
        }
        else {
            GKX_FUZZ_CHECK_REFUSAL (item->rc, item->errbuf, "ingest");
        }
        gkx_entry_destroy (&item->entry);
        gkx_free (copies[i]);
    }
    gkx_free (copies);
    gkx_free (items);
}

/* A heads message: the reads the node makes to answer it. */
static void
s_on_heads (gkx_store_t *store, const gkx_sync_header_t *h)
{
    for (size_t i = 0; i < h->heads_count; i++) {
        const gkx_sync_head_t *head = &h->heads[i];
        gkx_partnership_t p;
        if (gkx_store_partnership (store, head->pid, &p) != GKX_OK) {
            continue;
        }
        int other = p.self_role == GKX_ROLE_ADVERTISER ? GKX_ROLE_PUBLISHER : GKX_ROLE_ADVERTISER;
        gkx_head_t theirs;
        gkx_head_t own;
        GKX_FUZZ_CHECK (gkx_store_head (store, head->pid, other, &theirs) == GKX_OK
                            && gkx_store_head (store, head->pid, p.self_role, &own) == GKX_OK,
                        "heads: a partnership without heads");
        /* The range the node sends back: theirs it holds beyond own_seq, and
           its own beyond your_seq, a batch at most. */
        for (uint64_t seq = head->own_seq + 1;
             seq > head->own_seq && seq <= theirs.seq && seq <= head->own_seq + S_RANGE_MAX;
             seq++) {
            gkx_entry_t *entry = NULL;
            GKX_FUZZ_CHECK (gkx_store_get (store, head->pid, other, seq, &entry) == GKX_OK,
                            "heads: entry %llu below the head is missing",
                            (unsigned long long) seq);
            gkx_entry_destroy (&entry);
        }
        for (uint64_t seq = head->your_seq + 1;
             seq > head->your_seq && seq <= own.seq && seq <= head->your_seq + S_RANGE_MAX;
             seq++) {
            gkx_entry_t *entry = NULL;
            GKX_FUZZ_CHECK (gkx_store_get (store, head->pid, p.self_role, seq, &entry) == GKX_OK,
                            "heads: own entry %llu below the head is missing",
                            (unsigned long long) seq);
            gkx_entry_destroy (&entry);
        }
    }
}

/* A card message: a peer introduces itself. */
static void
s_on_card (gkx_store_t *store, const uint8_t *peer, const gkx_fuzz_frame_t *frame)
{
    char errbuf[GKX_ERRBUF_BYTES] = "";
    gkx_card_t *card = NULL;
    int rc = gkx_card_decode (&card, frame->data, frame->size, errbuf);
    GKX_FUZZ_SAY ("sync: card: %s %s", gkx_errname (rc), errbuf);
    if (rc != GKX_OK) {
        GKX_FUZZ_CHECK_REFUSAL (rc, errbuf, "card");
        return;
    }
    if (memcmp (gkx_card_id (card), peer, GKX_ID_BYTES) == 0) {
        rc = gkx_store_peer_put (store, card, errbuf);
        GKX_FUZZ_CHECK (rc == GKX_OK, "card: peer_put %s: %s", gkx_errname (rc), errbuf);
        gkx_card_t *held = NULL;
        GKX_FUZZ_CHECK (gkx_store_peer_get (store, peer, &held) == GKX_OK, "card: not kept");
        gkx_card_destroy (&held);
    }
    gkx_card_destroy (&card);
}

/* Checks that the derived state of a partnership is the fold of its entries. */
static int
s_check_rebuild (const gkx_partnership_t *p, void *arg)
{
    gkx_store_t *store = arg;
    int changed = 0;
    char errbuf[GKX_ERRBUF_BYTES] = "";
    int rc = gkx_store_rebuild (store, p->pid, &changed, errbuf);
    GKX_FUZZ_CHECK (rc == GKX_OK, "rebuild: %s: %s", gkx_errname (rc), errbuf);
    GKX_FUZZ_CHECK (!changed, "rebuild: the incremental state differs from the fold");
    return 0;
}

/* Runs the frames into a fresh store of node self receiving from peer. */
static void
s_run (const gkx_identity_t *self, const gkx_identity_t *peer, const gkx_fuzz_frame_t *frames,
       size_t n)
{
    char dir[S_PATH_BYTES];
    snprintf (dir, sizeof dir, "%s/store", s_dir);
    nftw (dir, s_remove_one, 16, FTW_DEPTH | FTW_PHYS);
    gkx_store_options_t options = {.map_bytes = S_MAP_BYTES, .clock_ms = s_clock,
                                   .deliveries = 1, .notices = 1};
    gkx_store_t *store = NULL;
    char errbuf[GKX_ERRBUF_BYTES] = "";
    if (gkx_store_open (&store, dir, gkx_identity_id (self), &options, errbuf) != GKX_OK) {
        fprintf (stderr, "fuzz_sync: store: %s\n", errbuf);
        abort ();
    }
    const uint8_t *peer_id = gkx_identity_id (peer);
    size_t i = 0;
    while (i < n) {
        const gkx_fuzz_frame_t *frame = &frames[i++];
        gkx_sync_header_t h;
        errbuf[0] = '\0';
        int rc = gkx_sync_decode (&h, frame->data, frame->size, errbuf);
        GKX_FUZZ_SAY ("sync: %s header: %s %s", gkx_identity_id (self) == gkx_identity_id (s_advertiser)
                      ? "advertiser" : "publisher", gkx_errname (rc), errbuf);
        if (rc != GKX_OK) {
            GKX_FUZZ_CHECK_REFUSAL (rc, errbuf, "sync");
            GKX_FUZZ_CHECK (h.heads == NULL, "sync: heads left on failure");
            continue;
        }
        s_check_header (&h, frame);
        if (h.type == GKX_SYNC_ENTRIES) {
            size_t count = h.count < n - i ? h.count : n - i;
            s_on_entries (store, peer_id, &frames[i], count);
            i += count;
        }
        else if (h.type == GKX_SYNC_HEADS) {
            s_on_heads (store, &h);
        }
        else if (i < n) {
            s_on_card (store, peer_id, &frames[i++]);
        }
        gkx_sync_header_clear (&h);
        gkx_sync_header_clear (&h);
    }
    gkx_store_partnerships (store, s_check_rebuild, store);
    gkx_store_close (&store);
    gkx_store_close (&store);
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
    if (!s_advertiser) {
        LLVMFuzzerInitialize (NULL, NULL);
    }
    static gkx_fuzz_frame_t frames[GKX_FUZZ_FRAMES_MAX];
    size_t n = gkx_fuzz_split (frames, GKX_FUZZ_FRAMES_MAX, data, size);
    s_run (s_advertiser, s_publisher, frames, n);
    s_run (s_publisher, s_advertiser, frames, n);
    return 0;
}
