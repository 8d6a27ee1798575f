/*  node - gkxd's core: the event loop that owns the store and the links.
    Part of gokart-exchange; MIT licence.

    Everything that writes runs on one zloop: replication messages from the
    ROUTER, ZAP requests, calls handed over by HTTP threads, and timers (ack
    entries, keepalive heads, the stop check). Each peer has a DEALER we send
    on and a flow record per shared partnership: how far we have sent our
    own chain (sent) and how far the peer says it holds it (acked). We send
    while sent < our head and sent - acked < S_WINDOW, and while the entries
    in flight to that peer over all its partnerships stay under
    S_PEER_IN_FLIGHT, so a slow peer gets a bounded amount in flight and
    nothing is dropped: whatever is not acknowledged is sent again after the
    next resync. A flow the peer's budget holds back waits in the peer's
    queue, first come first served, until acknowledgements free the budget;
    the budget lets out whole batches only.

    Peers are known by the CURVE key they authenticated with (the ZAP
    handler accepts any key and names it as the User-Id); a key is mapped to
    a peer only through the peer's verified tenant card. An unknown key may
    send only its card, which a publisher with accept = any takes.
*/
#include <gkx/alloc.h>
#include <gkx/conversion.h>
#include <gkx/directory.h>
#include <gkx/hlc.h>
#include <gkx/keyfile.h>
#include <gkx/kind.h>
#include <gkx/node.h>
#include <gkx/offer.h>
#include <gkx/sync.h>
#include <gkx/webhook.h>

#include <czmq.h>
#include <fcntl.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif
#include <unistd.h>
#include <pthread.h>
#include <signal.h>
#include <sodium.h>
#include <stdarg.h>
#include <string.h>
#include <time.h>

/* Most of our own entries in flight to one peer per partnership. Two of
   the receiver's commits' worth (it ingests up to S_DRAIN_ENTRIES queued
   entries in one), so one commits while the next arrives: bench/catchup,
   one partnership, 256 gave 22,700 entries/s, 1,024 28,500, 2,048 36,400
   and 4,096 31,700. */
#define S_WINDOW 2048
/* Most entries of each chain given back at a time to a peer that lost its
   own (s_give_back); small, since any peer can claim to have lost them. */
#define S_GIVE_BACK 256
/* Most of our own entries in flight to one peer over all partnerships.
   Without it, a peer sharing 1,000 partnerships got up to 256,000 entries
   queued at once, and every window without progress for S_RETRANSMIT_MS
   (behind the others' in the queue) sent again: 3.7 GiB of queued messages
   on the receiving node during a flood. */
#define S_PEER_IN_FLIGHT 4096
/* Most entries messages, and entries, ingested with one commit: more
   would keep the loop from its other work for too long. */
#define S_DRAIN_MAX 64
#define S_DRAIN_ENTRIES 1024
/* How long after new counterparty entries an ack entry is written (ms). */
#define S_ACK_DELAY_MS 500
/* How long a call made before the loop starts waits for it. */
#define S_START_WAIT_MS 5000
/* Most postbacks committed in one store transaction. */
#define S_CONVERT_BATCH_MAX 256
/* Keepalive: heads are sent to a peer not written to for this long (ms). */
#define S_KEEPALIVE_MS 1000
/* A peer not heard from for this long counts as disconnected (ms). */
#define S_CONNECTED_MS 3500
/* Interval of the housekeeping timer (ms). */
#define S_TICK_MS 100
/* How often freed heap memory is given back to the system (ms). */
#define S_TRIM_MS 10000
/* Largest frame the ROUTER accepts: the largest heads header. */
#define S_MAX_FRAME_BYTES (GKX_SYNC_MAX_HEADER_BYTES + 1024)
/* ZeroMQ heartbeat interval and timeout (ms). */
#define S_HEARTBEAT_IVL_MS 1000
#define S_HEARTBEAT_TIMEOUT_MS 5000
/* A handshake not done in this time (ms) is given up, and the DEALER connects
   again: a connection opened while the link was dead (a blackhole, a frozen
   peer) would otherwise hold the DEALER for ZeroMQ's default of 30 s after
   the link is back (tests/partition). */
#define S_HANDSHAKE_IVL_MS 5000
/* A TCP connect not answered in this time (ms) is given up and tried again:
   where a firewall drops the connection request itself, the operating
   system's own timeout (a minute or more) would hold the link down. */
#define S_CONNECT_TIMEOUT_MS 5000
/* Least time between two resyncs honoured for one peer (ms): a flood of
   resync heads must not make the node resend its window again and again. */
#define S_RESYNC_MIN_MS 200
/* Entries sent but not acknowledged for this long are sent again (ms). */
#define S_RETRANSMIT_MS 2000
/* How long a counterparty's claim to hold more of our chain than we do may
   stop our appends without the entries it names coming back (ms). An honest
   counterparty sends them at once on our heads. */
#define S_CLAIM_MS 10000
/* Milliseconds of a second, for lags shown in seconds. */
#define S_SECOND_MS 1000.0

/* One partnership's flow to a peer. */
typedef struct {
    uint8_t pid[GKX_ID_BYTES];
    uint64_t sent;          /* own seq sent on this connection */
    uint64_t acked;         /* own seq the peer says it holds */
    uint64_t ack_due_ms;    /* when to write an ack entry, or 0 */
    uint64_t progress_ms;   /* when acked last moved, or sending last started */
    uint64_t given_from;    /* the peer's own seq it held when we last gave some back */
    uint64_t given;         /* the last of its own seqs we gave back then */
    uint64_t given_ms;      /* when */
    uint64_t claim_since_ms;    /* when the peer's claim (claimed_seq) was seen, or 0 */
    uint64_t claim_own;     /* our head then: the claim is being backed while it grows */
    int claims_dropped;     /* the peer left a claim unbacked: its claims are dropped */
    int waiting;            /* in the peer's queue, held back by its budget */
    int probing;            /* sent again without progress: one batch until acked moves */
} s_flow_t;

/* A peer: its card, our connection to it, and the flows. */
typedef struct {
    gkx_card_t *card;
    zsock_t *dealer;        /* we send on it; the peer's ROUTER receives */
    char key_hex[2 * GKX_CURVE_KEY_BYTES + 1];  /* its CURVE key, as ZAP names it */
    uint64_t last_heard_ms;
    uint64_t last_sent_ms;
    uint64_t last_resync_ms;    /* when a resync from this peer was last honoured */
    s_flow_t *flows;
    size_t flow_count;
    uint64_t in_flight;     /* sum over flows of sent - acked */
    uint8_t (*waiting)[GKX_ID_BYTES];   /* flows held back by in_flight, oldest first */
    size_t waiting_count;
} s_peer_t;

/* A call handed to the loop by another thread. It lives on the caller's
   stack: the loop touches it only while it is queued or running, under
   calls_lock, and the caller returns only once it is done or the caller has
   taken it off the queue itself (the loop stopped before reaching it). */
typedef struct s_call {
    gkx_node_fn *fn;
    void *arg;
    int result;
    int done;                   /* set by the loop under calls_lock */
    pthread_cond_t cond;        /* signalled when done */
    struct s_call *next;        /* queue link */
} s_call_t;

/* What became of a postback handed to the loop. */
typedef enum {
    S_POSTBACK_COMMITTED = 0,   /* a new conversion was written */
    S_POSTBACK_DUPLICATE = 1,   /* an earlier conversion answered it */
    S_POSTBACK_REFUSED = 2,     /* refused for its partnership or facts */
    S_POSTBACK_FAILED = 3,      /* the store failed: nothing committed */
} s_postback_result_t;

/* Counters, for logs and metrics. */
typedef struct {
    uint64_t appended;
    uint64_t ingested;
    uint64_t duplicates;
    uint64_t bad_frames;
    uint64_t refused[GKX_ECODE_COUNT];
    uint64_t postbacks[4];      /* by s_postback_result_t */
} s_stats_t;

/* The node. */
struct gkx_node {
    char *dir;
    gkx_config_t *config;
    gkx_identity_t *identity;
    gkx_card_t *card;
    gkx_store_t *store;
    zloop_t *loop;
    zsock_t *router;            /* replication in */
    zsock_t *zap;               /* ZAP handler */
    pthread_mutex_t calls_lock; /* guards the call queue and running */
    s_call_t *calls_head;       /* calls waiting for the loop, oldest first */
    s_call_t *calls_tail;
    int wake[2];                /* a byte on wake[1] tells the loop calls wait */
    zmq_pollitem_t wake_item;   /* wake[0] in the loop */
    s_peer_t *peers;
    size_t peer_count;
    pthread_t loop_thread;
    int running;                /* the loop runs calls */
    int stopped;                /* the loop ran and ended: calls are refused */
    volatile sig_atomic_t stop_requested;
    s_stats_t stats;
    uint64_t started_ms;
    uint64_t trimmed_ms;        /* when freed heap memory was last given back */
    gkx_webhook_t *webhook;     /* the delivery thread, or NULL */
    gkx_directory_t *directory; /* the directory module, or NULL */
    gkx_intake_t *intake;       /* the postback endpoint, or NULL */
    gkx_notifier_t *notifier;   /* the e-mail thread, or NULL */
};

/* Milliseconds since the epoch. */
static uint64_t
s_now_ms (void)
{
    struct timespec ts;
    clock_gettime (CLOCK_REALTIME, &ts);
    return (uint64_t) ts.tv_sec * 1000 + (uint64_t) ts.tv_nsec / 1000000;
}

/* Logs one line to stderr with a level; never given secrets. */
__attribute__ ((format (printf, 2, 3))) static void
s_log (const char *level, const char *fmt, ...)
{
    char line[1024];
    va_list args;
    va_start (args, fmt);
    vsnprintf (line, sizeof line, fmt, args);
    va_end (args);
    fprintf (stderr, "gkxd: %s: %s\n", level, line);
}

/* Short text of an id for logs (first 12 hex digits). */
static const char *
s_short (const uint8_t *id, char out[13])
{
    char full[GKX_ID_TEXT_BYTES];
    gkx_id_format (full, id);
    memcpy (out, full, 12);
    out[12] = '\0';
    return out;
}

/* Finds a peer by node id. */
static s_peer_t *
s_peer_by_id (gkx_node_t *self, const uint8_t id[GKX_ID_BYTES])
{
    for (size_t i = 0; i < self->peer_count; i++) {
        if (memcmp (gkx_card_id (self->peers[i].card), id, GKX_ID_BYTES) == 0) {
            return &self->peers[i];
        }
    }
    return NULL;
}

/* Finds a peer by the hex CURVE key ZAP reported. */
static s_peer_t *
s_peer_by_key (gkx_node_t *self, const char *key_hex)
{
    for (size_t i = 0; key_hex && i < self->peer_count; i++) {
        if (strcmp (self->peers[i].key_hex, key_hex) == 0) {
            return &self->peers[i];
        }
    }
    return NULL;
}

/* Finds or adds the flow of pid to a peer. */
static s_flow_t *
s_flow (s_peer_t *peer, const uint8_t pid[GKX_ID_BYTES])
{
    /* The flows are kept sorted by pid: a node sharing thousands of
       partnerships with a peer looks one up for every message. */
    size_t lo = 0;
    size_t hi = peer->flow_count;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int cmp = memcmp (peer->flows[mid].pid, pid, GKX_ID_BYTES);
        if (cmp == 0) {
            return &peer->flows[mid];
        }
        if (cmp < 0) {
            lo = mid + 1;
        }
        else {
            hi = mid;
        }
    }
    peer->flows = gkx_realloc (peer->flows, (peer->flow_count + 1) * sizeof *peer->flows);
    memmove (&peer->flows[lo + 1], &peer->flows[lo], (peer->flow_count - lo) * sizeof *peer->flows);
    peer->flow_count++;
    s_flow_t *flow = &peer->flows[lo];
    memset (flow, 0, sizeof *flow);
    memcpy (flow->pid, pid, GKX_ID_BYTES);
    return flow;
}

/* Own entries of a flow sent and not acknowledged. */
static uint64_t
s_outstanding (const s_flow_t *flow)
{
    return flow->sent > flow->acked ? flow->sent - flow->acked : 0;
}

/* Sets what a flow has sent and the peer acknowledged, keeping the peer's
   in_flight the sum of its flows' outstanding entries. */
static void
s_flow_set (s_peer_t *peer, s_flow_t *flow, uint64_t sent, uint64_t acked)
{
    peer->in_flight -= s_outstanding (flow);
    flow->sent = sent;
    flow->acked = acked;
    peer->in_flight += s_outstanding (flow);
}

/* Queues a flow the peer's budget holds back. */
static void
s_flow_wait (s_peer_t *peer, s_flow_t *flow)
{
    if (flow->waiting) {
        return;
    }
    flow->waiting = 1;
    peer->waiting = gkx_realloc (peer->waiting, (peer->waiting_count + 1) * sizeof *peer->waiting);
    memcpy (peer->waiting[peer->waiting_count++], flow->pid, GKX_ID_BYTES);
}

/* The counterparty of a partnership. */
static const uint8_t *
s_counterparty (const gkx_partnership_t *p)
{
    return p->self_role == GKX_ROLE_ADVERTISER ? p->publisher : p->advertiser;
}

/* The other role. */
static int
s_other (int role)
{
    return role == GKX_ROLE_ADVERTISER ? GKX_ROLE_PUBLISHER : GKX_ROLE_ADVERTISER;
}

/* Sends a multipart message to a peer; a peer's queue never blocks the loop. */
static void
s_send (s_peer_t *peer, zmsg_t **msg_p)
{
    if (zmsg_send (msg_p, peer->dealer) != 0) {
        zmsg_destroy (msg_p);
    }
    peer->last_sent_ms = s_now_ms ();
}

/* Sends our card to a peer, so it can admit us (accept = any). */
static void
s_send_card (gkx_node_t *self, s_peer_t *peer)
{
    msgpack_sbuffer header;
    msgpack_sbuffer_init (&header);
    gkx_sync_card_encode (&header);
    zmsg_t *msg = zmsg_new ();
    zmsg_addmem (msg, header.data, header.size);
    size_t len;
    const uint8_t *bytes = gkx_card_bytes (self->card, &len);
    zmsg_addmem (msg, bytes, len);
    msgpack_sbuffer_destroy (&header);
    s_send (peer, &msg);
}

/* Collects the heads of the partnerships shared with one peer. */
typedef struct {
    gkx_node_t *node;
    const uint8_t *peer_id;
    const uint8_t *only_pid;    /* NULL for all */
    gkx_sync_head_t *heads;
    size_t count;
} s_heads_ctx_t;

/* Adds one partnership's heads when it is shared with the peer. */
static int
s_heads_one (const gkx_partnership_t *p, void *arg)
{
    s_heads_ctx_t *ctx = arg;
    if (memcmp (s_counterparty (p), ctx->peer_id, GKX_ID_BYTES) != 0
        || (ctx->only_pid && memcmp (p->pid, ctx->only_pid, GKX_ID_BYTES) != 0)
        || ctx->count == GKX_SYNC_MAX_HEADS) {
        return 0;
    }
    gkx_head_t own;
    gkx_head_t theirs;
    if (gkx_store_head (ctx->node->store, p->pid, p->self_role, &own) != GKX_OK
        || gkx_store_head (ctx->node->store, p->pid, s_other (p->self_role), &theirs) != GKX_OK) {
        return 0;
    }
    ctx->heads = gkx_realloc (ctx->heads, (ctx->count + 1) * sizeof *ctx->heads);
    gkx_sync_head_t *h = &ctx->heads[ctx->count++];
    memcpy (h->pid, p->pid, GKX_ID_BYTES);
    h->own_seq = own.seq;
    h->your_seq = theirs.seq;
    return 0;
}

/* Sends our heads for the partnerships shared with a peer (or just pid). */
static void
s_send_heads (gkx_node_t *self, s_peer_t *peer, int resync, const uint8_t *pid)
{
    s_heads_ctx_t ctx = {self, gkx_card_id (peer->card), pid, NULL, 0};
    gkx_partnership_t p;
    if (!pid) {
        gkx_store_partnerships (self->store, s_heads_one, &ctx);
    }
    else if (gkx_store_partnership (self->store, pid, &p) == GKX_OK) {
        /* One partnership's heads answer each entries message: walking every
           partnership for it made a catch-up over 10,000 of them crawl. */
        s_heads_one (&p, &ctx);
    }
    msgpack_sbuffer header;
    msgpack_sbuffer_init (&header);
    gkx_sync_heads_encode (&header, resync, ctx.heads, ctx.count);
    zmsg_t *msg = zmsg_new ();
    zmsg_addmem (msg, header.data, header.size);
    msgpack_sbuffer_destroy (&header);
    gkx_free (ctx.heads);
    s_send (peer, &msg);
}

/* Sends entries [from, to] of one chain of pid to a peer, in batches. */
static void
s_send_range (gkx_node_t *self, s_peer_t *peer, const uint8_t pid[GKX_ID_BYTES], int role,
              uint64_t from, uint64_t to)
{
    while (from <= to) {
        uint64_t last = to - from + 1 > GKX_SYNC_MAX_BATCH ? from + GKX_SYNC_MAX_BATCH - 1 : to;
        zmsg_t *msg = zmsg_new ();
        msgpack_sbuffer header;
        msgpack_sbuffer_init (&header);
        gkx_sync_entries_encode (&header, pid, (size_t) (last - from + 1));
        zmsg_addmem (msg, header.data, header.size);
        msgpack_sbuffer_destroy (&header);
        for (uint64_t seq = from; seq <= last; seq++) {
            gkx_entry_t *entry = NULL;
            if (gkx_store_get (self->store, pid, role, seq, &entry) != GKX_OK) {
                zmsg_destroy (&msg);
                return;
            }
            size_t len;
            const uint8_t *bytes = gkx_entry_bytes (entry, &len);
            zmsg_addmem (msg, bytes, len);
            gkx_entry_destroy (&entry);
        }
        s_send (peer, &msg);
        from = last + 1;
    }
}

/* The clock of entry seq of a chain, or UINT64_MAX when it cannot be read. */
static uint64_t
s_hlc_at (gkx_node_t *self, const uint8_t pid[GKX_ID_BYTES], int role, uint64_t seq)
{
    gkx_entry_t *entry = NULL;
    if (gkx_store_get (self->store, pid, role, seq, &entry) != GKX_OK) {
        return UINT64_MAX;
    }
    uint64_t hlc = gkx_entry_hlc (entry);
    gkx_entry_destroy (&entry);
    return hlc;
}

/* Gives a peer back entries [from, to] of its own chain of p, which it lost
   (restored from an old copy), at most a window of them, with the entries
   of ours from our_from it lacks interleaved in clock order. An entry's
   clock is above those of the entries it has seen, so the peer takes every
   one in the order sent, and need not wait for the other chain's entries
   it refused for want of these, and these for want of those. Returns the
   last of its seqs given. */
static uint64_t
s_give_back (gkx_node_t *self, s_peer_t *peer, const gkx_partnership_t *p, uint64_t from,
             uint64_t to, uint64_t our_from)
{
    int their_role = s_other (p->self_role);
    gkx_head_t own;
    uint64_t our_to = 0;
    if (gkx_store_head (self->store, p->pid, p->self_role, &own) == GKX_OK) {
        our_to = own.seq;
    }
    if (to - from >= S_GIVE_BACK) {
        to = from + S_GIVE_BACK - 1;
    }
    if (our_to >= our_from && our_to - our_from >= S_GIVE_BACK) {
        our_to = our_from + S_GIVE_BACK - 1;
    }
    uint64_t i = from;
    uint64_t j = our_from;
    while (i <= to) {
        uint64_t hlc_i = s_hlc_at (self, p->pid, their_role, i);
        uint64_t j_end = j;
        while (j_end <= our_to && s_hlc_at (self, p->pid, p->self_role, j_end) < hlc_i) {
            j_end++;
        }
        if (j_end > j) {
            s_send_range (self, peer, p->pid, p->self_role, j, j_end - 1);
            j = j_end;
        }
        uint64_t hlc_j = j <= our_to ? s_hlc_at (self, p->pid, p->self_role, j) : UINT64_MAX;
        uint64_t i_end = i + 1;
        while (i_end <= to && s_hlc_at (self, p->pid, their_role, i_end) < hlc_j) {
            i_end++;
        }
        s_send_range (self, peer, p->pid, their_role, i, i_end - 1);
        i = i_end;
    }
    return to;
}

/* Entries the peer's budget still lets out. */
static uint64_t
s_budget (const s_peer_t *peer)
{
    return peer->in_flight < S_PEER_IN_FLIGHT ? S_PEER_IN_FLIGHT - peer->in_flight : 0;
}

/* Sends our own entries of pid to the peer while the window allows. */
static void
s_pump (gkx_node_t *self, s_peer_t *peer, const gkx_partnership_t *p)
{
    gkx_head_t own;
    if (gkx_store_head (self->store, p->pid, p->self_role, &own) != GKX_OK) {
        return;
    }
    s_flow_t *flow = s_flow (peer, p->pid);
    if (flow->sent < flow->acked) {
        s_flow_set (peer, flow, flow->acked, flow->acked);
    }
    /* A flow sent again for want of progress (its peer refuses it, or the
       link lost it) sends one batch, not its window, until the peer
       acknowledges: a stuck flow must not hold the peer's budget. */
    uint64_t limit = flow->acked + (flow->probing ? GKX_SYNC_MAX_BATCH : S_WINDOW);
    uint64_t to = own.seq < limit ? own.seq : limit;
    uint64_t budget = s_budget (peer);
    if (to > flow->sent && to - flow->sent > budget) {
        /* Whole batches only: given what was left of the budget, often a
           few entries, a flow behind by thousands went out in as many
           pieces, each a message to handle and, at the receiver, an ack
           entry to write (bench/footprint --full: 971,508 acks for
           1,000,000 conversions over 10,000 partnerships). */
        to = flow->sent + budget / GKX_SYNC_MAX_BATCH * GKX_SYNC_MAX_BATCH;
        s_flow_wait (peer, flow);
    }
    if (flow->sent < to) {
        if (flow->sent == flow->acked) {
            flow->progress_ms = s_now_ms ();
        }
        s_send_range (self, peer, p->pid, p->self_role, flow->sent + 1, to);
        s_flow_set (peer, flow, to, flow->acked);
    }
}

/* Pumps one partnership to its counterparty, if that peer is known. */
static void
s_pump_pid (gkx_node_t *self, const uint8_t pid[GKX_ID_BYTES])
{
    gkx_partnership_t p;
    if (gkx_store_partnership (self->store, pid, &p) != GKX_OK) {
        return;
    }
    s_peer_t *peer = s_peer_by_id (self, s_counterparty (&p));
    if (peer && p.is_frozen) {
        /* Nothing more goes out: what it had in flight frees the budget. */
        s_flow_t *flow = s_flow (peer, pid);
        s_flow_set (peer, flow, flow->acked, flow->acked);
    }
    else if (peer) {
        s_pump (self, peer, &p);
    }
}

/* Pumps the flows waiting for the peer's budget, oldest first, while it
   lasts; a flow still held back queues again at the end. */
static void
s_pump_waiting (gkx_node_t *self, s_peer_t *peer)
{
    size_t count = peer->waiting_count;
    size_t done = 0;
    while (done < count && s_budget (peer) >= GKX_SYNC_MAX_BATCH) {
        uint8_t pid[GKX_ID_BYTES];
        memcpy (pid, peer->waiting[done++], GKX_ID_BYTES);
        s_flow (peer, pid)->waiting = 0;
        s_pump_pid (self, pid);
    }
    /* The pumps above may have queued flows again at the end. */
    if (done > 0) {
        memmove (peer->waiting, peer->waiting + done,
                 (peer->waiting_count - done) * sizeof *peer->waiting);
        peer->waiting_count -= done;
    }
}

/* Collects the partnerships shared with one peer, for s_pump_peer. */
typedef struct {
    gkx_node_t *node;
    s_peer_t *peer;
} s_pump_ctx_t;

/* Pumps one partnership if its counterparty is the context's peer. */
static int
s_pump_one (const gkx_partnership_t *p, void *arg)
{
    s_pump_ctx_t *ctx = arg;
    if (!p->is_frozen
        && memcmp (s_counterparty (p), gkx_card_id (ctx->peer->card), GKX_ID_BYTES) == 0) {
        s_pump (ctx->node, ctx->peer, p);
    }
    return 0;
}

/* Pumps every partnership shared with a peer, including those the peer
   does not know yet (a genesis written while it was away). */
static void
s_pump_peer (gkx_node_t *self, s_peer_t *peer)
{
    s_pump_ctx_t ctx = {self, peer};
    gkx_store_partnerships (self->store, s_pump_one, &ctx);
}

/* Creates the DEALER to a peer's endpoint. */
static int
s_connect (gkx_node_t *self, s_peer_t *peer)
{
    const char *endpoint = gkx_card_endpoint (peer->card);
    if (!*endpoint) {
        return GKX_OK;
    }
    peer->dealer = zsock_new (ZMQ_DEALER);
    if (!peer->dealer) {
        return GKX_EIO;
    }
    zsock_set_curve_serverkey_bin (peer->dealer, gkx_card_transport_key (peer->card));
    zsock_set_curve_publickey_bin (peer->dealer, gkx_identity_curve_public (self->identity));
    zsock_set_curve_secretkey_bin (peer->dealer, gkx_identity_curve_secret (self->identity));
    zsock_set_linger (peer->dealer, 0);
    zsock_set_sndhwm (peer->dealer, 0);
    zsock_set_sndtimeo (peer->dealer, 0);
    zsock_set_reconnect_ivl (peer->dealer, 100);
    zsock_set_heartbeat_ivl (peer->dealer, S_HEARTBEAT_IVL_MS);
    zsock_set_heartbeat_timeout (peer->dealer, S_HEARTBEAT_TIMEOUT_MS);
    zsock_set_handshake_ivl (peer->dealer, S_HANDSHAKE_IVL_MS);
    zsock_set_connect_timeout (peer->dealer, S_CONNECT_TIMEOUT_MS);
    if (zsock_connect (peer->dealer, "%s", endpoint) != 0) {
        zsock_destroy (&peer->dealer);
        return GKX_EINVAL;
    }
    s_send_card (self, peer);
    s_send_heads (self, peer, 1, NULL);
    return GKX_OK;
}

/* Adds a peer from a verified card (no store write); returns it. */
static s_peer_t *
s_peer_add (gkx_node_t *self, const gkx_card_t *card)
{
    s_peer_t *peer = s_peer_by_id (self, gkx_card_id (card));
    if (peer) {
        if (gkx_card_timestamp (card) < gkx_card_timestamp (peer->card)) {
            return peer;
        }
        zsock_destroy (&peer->dealer);
        gkx_card_destroy (&peer->card);
    }
    else {
        self->peers = gkx_realloc (self->peers, (self->peer_count + 1) * sizeof *self->peers);
        peer = &self->peers[self->peer_count++];
        memset (peer, 0, sizeof *peer);
    }
    size_t len;
    const uint8_t *bytes = gkx_card_bytes (card, &len);
    if (gkx_card_decode (&peer->card, bytes, len, NULL) != GKX_OK) {
        self->peer_count--;
        return NULL;
    }
    sodium_bin2hex (peer->key_hex, sizeof peer->key_hex, gkx_card_transport_key (card),
                    GKX_CURVE_KEY_BYTES);
    if (s_connect (self, peer) != GKX_OK) {
        char id[13];
        s_log ("warning", "peer %s: cannot connect to %s", s_short (gkx_card_id (card), id),
               gkx_card_endpoint (card));
    }
    return peer;
}

/* Whether an ingest refusal may clear when the peer resends from our heads. */
static int
s_is_recoverable (int rc)
{
    return rc == GKX_EGAP || rc == GKX_EAHEAD || rc == GKX_ENOTFOUND;
}

/* A counterparty's claim to have seen more of our chain than we hold (the
   store's claimed_seq, left by an entry refused with GKX_EAHEAD) stops our
   appends, so that a node restored from an old copy never signs a second
   entry at a seq it used; the counterparty, which holds those entries, gives
   them back at once on our heads. A claim they do not back within
   S_CLAIM_MS (our head has not moved towards it) is dropped, and so is any
   later claim of that peer in that partnership, at once: otherwise a member
   could stop our appends for ever with one forged entry. */
static void
s_check_claim (gkx_node_t *self, s_peer_t *peer, const uint8_t pid[GKX_ID_BYTES], uint64_t now)
{
    gkx_partnership_t p;
    gkx_head_t own;
    if (gkx_store_partnership (self->store, pid, &p) != GKX_OK
        || memcmp (s_counterparty (&p), gkx_card_id (peer->card), GKX_ID_BYTES) != 0
        || gkx_store_head (self->store, pid, p.self_role, &own) != GKX_OK) {
        return;
    }
    s_flow_t *flow = s_flow (peer, pid);
    if (p.claimed_seq <= own.seq) {
        flow->claim_since_ms = 0;
        return;
    }
    if (!flow->claims_dropped && (!flow->claim_since_ms || own.seq > flow->claim_own)) {
        flow->claim_since_ms = now;
        flow->claim_own = own.seq;
        return;
    }
    if (!flow->claims_dropped && now - flow->claim_since_ms < S_CLAIM_MS) {
        return;
    }
    char errbuf[GKX_ERRBUF_BYTES] = "";
    char id[13];
    char pid_text[13];
    if (gkx_store_claim_drop (self->store, pid, errbuf) != GKX_OK) {
        s_log ("error", "partnership %s: claim not dropped: %s", s_short (pid, pid_text), errbuf);
        flow->claim_since_ms = now;     /* the tick tries again */
        return;
    }
    s_log ("warning",
           "peer %s: partnership %s: its claim to hold our entries up to seq %llu (we hold %llu) "
           "was not backed by them; dropped, appends go on",
           s_short (gkx_card_id (peer->card), id), s_short (pid, pid_text),
           (unsigned long long) p.claimed_seq, (unsigned long long) own.seq);
    flow->claims_dropped = 1;
    flow->claim_since_ms = 0;
}

/* An entries message received, waiting to be ingested with the others
   queued behind it. */
typedef struct {
    zmsg_t *msg;                /* the entry frames (the header popped) */
    gkx_sync_header_t h;
} s_inbound_t;

/* What became of one entries message's items (items[0..n)): counts them,
   answers with our heads and pumps the partnership. */
static void
s_entries_done (gkx_node_t *self, s_peer_t *peer, const gkx_sync_header_t *h,
                gkx_store_ingest_item_t *items, size_t n, uint64_t now)
{
    char id[13];
    int resync = 0;
    int acknowledge = 0;
    int ledger = 0;
    for (size_t i = 0; i < n; i++) {
        gkx_store_ingest_item_t *item = &items[i];
        gkx_entry_t *entry = item->entry;
        int rc = item->rc;
        if (rc == GKX_OK && item->result == GKX_INGEST_APPENDED && entry) {
            self->stats.ingested++;
            /* Acks are not acknowledged, or two nodes would ack forever. */
            int theirs = memcmp (gkx_entry_author (entry), gkx_card_id (peer->card),
                                 GKX_ID_BYTES) == 0;
            acknowledge |= theirs && gkx_entry_kind (entry) != GKX_KIND_ACK;
            ledger |= gkx_entry_kind (entry) == GKX_KIND_CONVERSION
                      || gkx_entry_kind (entry) == GKX_KIND_CONVERSION_STATUS;
            if (gkx_entry_kind (entry) == GKX_KIND_GENESIS) {
                char pid[13];
                s_log ("info", "new partnership %s shared by %s",
                       s_short (gkx_entry_pid (entry), pid), gkx_card_name (peer->card));
            }
        }
        else if (rc == GKX_OK) {
            self->stats.duplicates++;
        }
        else {
            self->stats.refused[rc > 0 && rc < GKX_ECODE_COUNT ? rc : 0]++;
            resync |= s_is_recoverable (rc);
            if (rc == GKX_EAHEAD && entry) {
                s_check_claim (self, peer, gkx_entry_pid (entry), now);
            }
            if (!s_is_recoverable (rc)) {
                s_log ("warning", "peer %s: entry refused: %s: %s",
                       s_short (gkx_card_id (peer->card), id), gkx_errname (rc), item->errbuf);
            }
        }
        gkx_entry_destroy (&item->entry);
    }
    if (ledger && self->webhook) {
        gkx_webhook_kick (self->webhook);
    }
    /* Answered only for a partnership of this peer: the header may name
       any other one, whose heads and entries it must never get. */
    gkx_partnership_t p;
    if (gkx_store_partnership (self->store, h->pid, &p) == GKX_OK
        && memcmp (s_counterparty (&p), gkx_card_id (peer->card), GKX_ID_BYTES) == 0) {
        s_flow_t *flow = s_flow (peer, h->pid);
        if (acknowledge && !flow->ack_due_ms) {
            flow->ack_due_ms = now + S_ACK_DELAY_MS;
        }
        s_send_heads (self, peer, resync, h->pid);
        s_pump (self, peer, &p);
    }
}

/* Ingests entries messages from one authenticated peer, in order, with one
   durable commit for all of them: a peer sharing many partnerships sends
   each one's entries in a message of its own, and a commit per message
   was the bound of a live flood. */
static void
s_on_entries (gkx_node_t *self, s_peer_t *peer, s_inbound_t *inbound, size_t count)
{
    char id[13];
    uint64_t now = s_now_ms ();
    size_t total = 0;
    for (size_t m = 0; m < count; m++) {
        total += zmsg_size (inbound[m].msg);
    }
    gkx_store_ingest_item_t *items = gkx_zalloc ((total ? total : 1) * sizeof *items);
    size_t n = 0;
    for (size_t m = 0; m < count; m++) {
        zmsg_t *msg = inbound[m].msg;
        for (zframe_t *frame = zmsg_first (msg); frame; frame = zmsg_next (msg)) {
            items[n].bytes = zframe_data (frame);
            items[n].len = zframe_size (frame);
            n++;
        }
    }
    char errbuf[GKX_ERRBUF_BYTES] = "";
    if (gkx_store_ingest_batch (self->store, items, n, gkx_card_id (peer->card), errbuf)
        != GKX_OK) {
        s_log ("error", "peer %s: %zu entries not stored: %s",
               s_short (gkx_card_id (peer->card), id), n, errbuf);
    }
    size_t at = 0;
    for (size_t m = 0; m < count; m++) {
        size_t k = zmsg_size (inbound[m].msg);
        s_entries_done (self, peer, &inbound[m].h, items + at, k, now);
        at += k;
    }
    gkx_free (items);
}

/* Handles a heads message from an authenticated peer. */
static void
s_on_heads (gkx_node_t *self, s_peer_t *peer, const gkx_sync_header_t *h)
{
    uint64_t now = s_now_ms ();
    int resync = h->resync && now - peer->last_resync_ms >= S_RESYNC_MIN_MS;
    if (resync) {
        peer->last_resync_ms = now;
    }
    for (size_t i = 0; i < h->heads_count; i++) {
        const gkx_sync_head_t *head = &h->heads[i];
        gkx_partnership_t p;
        if (gkx_store_partnership (self->store, head->pid, &p) != GKX_OK
            || memcmp (s_counterparty (&p), gkx_card_id (peer->card), GKX_ID_BYTES) != 0) {
            continue;
        }
        s_flow_t *flow = s_flow (peer, head->pid);
        if (head->your_seq > flow->acked) {
            s_flow_set (peer, flow, flow->sent, head->your_seq);
            flow->progress_ms = now;
            flow->probing = 0;
        }
        if (resync) {
            s_flow_set (peer, flow, head->your_seq, head->your_seq);
            flow->given_ms = 0;
        }
        gkx_head_t theirs;
        if (gkx_store_head (self->store, head->pid, s_other (p.self_role), &theirs) == GKX_OK
            && head->own_seq < theirs.seq) {
            /* The peer lost entries of its own chain (restored from an old
               copy): give them back before it writes anything new, a window
               at a time, ours interleaved (s_give_back). The next window
               goes once its heads show it holds this one; the same again
               only after S_RESYNC_MIN_MS: each heads of a flood that says
               the same would otherwise make us send its whole chain. */
            int again = now - flow->given_ms >= S_RESYNC_MIN_MS
                        || (head->own_seq >= flow->given && flow->given > flow->given_from);
            if (again) {
                flow->given_from = head->own_seq;
                uint64_t our_from = head->your_seq < UINT64_MAX ? head->your_seq + 1 : UINT64_MAX;
                flow->given = s_give_back (self, peer, &p, head->own_seq + 1, theirs.seq, our_from);
                flow->given_ms = now;
            }
        }
        s_pump (self, peer, &p);
    }
    if (resync) {
        s_pump_peer (self, peer);
        s_send_heads (self, peer, 0, NULL);
    }
    s_pump_waiting (self, peer);
}

/* Handles a card message: a peer introduces itself (or renews its card). */
static void
s_on_card (gkx_node_t *self, const char *key_hex, zmsg_t *msg)
{
    zframe_t *frame = zmsg_first (msg);
    gkx_card_t *card = NULL;
    char errbuf[GKX_ERRBUF_BYTES] = "";
    if (!frame || zmsg_size (msg) != 1
        || gkx_card_decode (&card, zframe_data (frame), zframe_size (frame), errbuf) != GKX_OK) {
        self->stats.bad_frames++;
        s_log ("warning", "a card that does not verify was refused: %s", errbuf);
        return;
    }
    char card_key[2 * GKX_CURVE_KEY_BYTES + 1];
    sodium_bin2hex (card_key, sizeof card_key, gkx_card_transport_key (card), GKX_CURVE_KEY_BYTES);
    s_peer_t *known = s_peer_by_id (self, gkx_card_id (card));
    int role_ok = gkx_card_role (card) != self->config->role;
    int allowed = known || (self->config->accept_any && self->config->role == GKX_ROLE_PUBLISHER);
    if (strcmp (card_key, key_hex) != 0 || !role_ok || !allowed
        || memcmp (gkx_card_id (card), gkx_identity_id (self->identity), GKX_ID_BYTES) == 0) {
        char id[13];
        s_log ("warning", "card of %s (%s) refused: %s", s_short (gkx_card_id (card), id),
               gkx_card_name (card),
               strcmp (card_key, key_hex) != 0 ? "its transport key is not the connection's"
               : !role_ok ? "same role as this node" : "not a listed peer (accept = listed)");
        self->stats.refused[GKX_EPOLICY]++;
        gkx_card_destroy (&card);
        return;
    }
    if (!known || gkx_card_timestamp (card) > gkx_card_timestamp (known->card)) {
        if (gkx_store_peer_put (self->store, card, errbuf) == GKX_OK) {
            if (!known) {
                s_log ("info", "new peer %s (%s) admitted", gkx_card_name (card),
                       gkx_role_name (gkx_card_role (card)));
            }
            s_peer_add (self, card);
        }
    }
    gkx_card_destroy (&card);
}

/* Reader of the ROUTER: one replication message. */
static int
s_on_router (zloop_t *loop, zsock_t *reader, void *arg)
{
    (void) loop;
    gkx_node_t *self = arg;
    /* Entries messages of one peer already queued behind this one go in
       together (s_on_entries); any other message ends the run first. */
    s_inbound_t run[S_DRAIN_MAX];
    size_t queued = 0;
    size_t queued_entries = 0;
    s_peer_t *run_peer = NULL;
    do {
        zmsg_t *msg = zmsg_recv (reader);
        if (!msg) {
            break;
        }
        zframe_t *routing = zmsg_pop (msg);
        zframe_t *head = zmsg_pop (msg);
        const char *key_hex = head ? zframe_meta (head, "User-Id") : NULL;
        gkx_sync_header_t h;
        char errbuf[GKX_ERRBUF_BYTES] = "";
        if (!head
            || gkx_sync_decode (&h, zframe_data (head), zframe_size (head), errbuf) != GKX_OK) {
            self->stats.bad_frames++;
            s_log ("warning", "bad replication frame dropped: %s",
                   errbuf[0] ? errbuf : "empty");
            zframe_destroy (&routing);
            zframe_destroy (&head);
            zmsg_destroy (&msg);
            continue;
        }
        s_peer_t *peer = h.type == GKX_SYNC_CARD ? NULL : s_peer_by_key (self, key_hex);
        if (peer) {
            peer->last_heard_ms = s_now_ms ();
        }
        int joins = peer && h.type == GKX_SYNC_ENTRIES && zmsg_size (msg) == h.count
                    && (queued == 0 || peer == run_peer);
        if (queued > 0 && !joins) {
            s_on_entries (self, run_peer, run, queued);
            for (size_t i = 0; i < queued; i++) {
                zmsg_destroy (&run[i].msg);
                gkx_sync_header_clear (&run[i].h);
            }
            queued = 0;
            queued_entries = 0;
        }
        if (joins) {
            run[queued].msg = msg;
            run[queued].h = h;
            run_peer = peer;
            queued++;
            queued_entries += h.count;
            msg = NULL;
        }
        else if (h.type == GKX_SYNC_CARD) {
            s_on_card (self, key_hex ? key_hex : "", msg);
        }
        else if (!peer) {
            self->stats.refused[GKX_ENOTMEMBER]++;
        }
        else if (h.type == GKX_SYNC_HEADS) {
            s_on_heads (self, peer, &h);
        }
        else if (h.type == GKX_SYNC_ENTRIES) {
            char id[13];
            self->stats.bad_frames++;
            s_log ("warning", "peer %s: entries message announces %zu entries, holds %zu",
                   s_short (gkx_card_id (peer->card), id), h.count, zmsg_size (msg));
        }
        if (msg) {
            gkx_sync_header_clear (&h);
        }
        zframe_destroy (&routing);
        zframe_destroy (&head);
        zmsg_destroy (&msg);
    } while (queued < S_DRAIN_MAX && queued_entries < S_DRAIN_ENTRIES
             && (zsock_events (reader) & ZMQ_POLLIN));
    if (queued > 0) {
        s_on_entries (self, run_peer, run, queued);
        for (size_t i = 0; i < queued; i++) {
            zmsg_destroy (&run[i].msg);
            gkx_sync_header_clear (&run[i].h);
        }
    }
    return 0;
}

/* Reader of the ZAP socket: admits every CURVE client of the replication
   ROUTER (domain "gkx") and of a directory's (GKX_DIRECTORY_ZAP_DOMAIN),
   and names its key; the handlers decide what each key may do. */
static int
s_on_zap (zloop_t *loop, zsock_t *reader, void *arg)
{
    (void) loop;
    (void) arg;
    zmsg_t *request = zmsg_recv (reader);
    if (!request) {
        return 0;
    }
    char *version = zmsg_popstr (request);
    char *request_id = zmsg_popstr (request);
    char *domain = zmsg_popstr (request);
    char *address = zmsg_popstr (request);
    char *identity = zmsg_popstr (request);
    char *mechanism = zmsg_popstr (request);
    zframe_t *key = zmsg_pop (request);
    char key_hex[2 * GKX_CURVE_KEY_BYTES + 1] = "";
    int ok = mechanism && strcmp (mechanism, "CURVE") == 0 && key
        && zframe_size (key) == GKX_CURVE_KEY_BYTES && domain
        && (strcmp (domain, "gkx") == 0 || strcmp (domain, GKX_DIRECTORY_ZAP_DOMAIN) == 0);
    if (ok) {
        sodium_bin2hex (key_hex, sizeof key_hex, zframe_data (key), GKX_CURVE_KEY_BYTES);
    }
    zmsg_t *reply = zmsg_new ();
    zmsg_addstr (reply, "1.0");
    zmsg_addstr (reply, request_id ? request_id : "");
    zmsg_addstr (reply, ok ? "200" : "400");
    zmsg_addstr (reply, ok ? "OK" : "CURVE required");
    zmsg_addstr (reply, key_hex);
    zmsg_addmem (reply, NULL, 0);
    zmsg_send (&reply, reader);
    zstr_free (&version);
    zstr_free (&request_id);
    zstr_free (&domain);
    zstr_free (&address);
    zstr_free (&identity);
    zstr_free (&mechanism);
    zframe_destroy (&key);
    zmsg_destroy (&request);
    return 0;
}

/* Pauses the offer of pid with an ordinary edit once its total budget is
   spent, so the publisher sees why conversions stopped. */
static void
s_pause_spent (gkx_node_t *self, const uint8_t pid[GKX_ID_BYTES])
{
    gkx_offer_t *offer = NULL;
    if (gkx_store_offer (self->store, pid, &offer, NULL) != GKX_OK) {
        return;
    }
    gkx_conversion_terms_t terms;
    gkx_conversion_terms_read (&terms, offer);
    gkx_offer_ops_t *ops = gkx_offer_ops_new ();
    uint8_t *body = NULL;
    size_t len = 0;
    char errbuf[GKX_ERRBUF_BYTES] = "";
    char id[13];
    if (!terms.paused && gkx_offer_ops_parse_edit (ops, offer, "status=paused", errbuf) == GKX_OK
        && gkx_offer_ops_encode (ops, &body, &len, errbuf) == GKX_OK
        && gkx_node_append (self, pid, GKX_KIND_EDIT, body, len, NULL, errbuf) == GKX_OK) {
        s_log ("info", "partnership %s: total budget spent, offer paused", s_short (pid, id));
    }
    else if (!terms.paused) {
        s_log ("warning", "partnership %s: total budget spent, but pausing failed: %s",
               s_short (pid, id), errbuf);
    }
    gkx_free (body);
    gkx_offer_ops_destroy (&ops);
    gkx_offer_destroy (&offer);
}

/* Runs a batch of conversion calls as one store transaction (group
   commit: one durable commit for every postback waiting), then pushes
   the new entries and pauses offers whose budget is spent. */
static void
s_convert_batch (gkx_node_t *self, s_call_t **calls, size_t count)
{
    gkx_store_convert_t *items = gkx_zalloc (count * sizeof *items);
    for (size_t i = 0; i < count; i++) {
        items[i] = *(gkx_store_convert_t *) calls[i]->arg;
        items[i].entry = NULL;
    }
    char errbuf[GKX_ERRBUF_BYTES] = "";
    int rc = gkx_store_convert (self->store, self->identity, items, count, errbuf);
    if (rc != GKX_OK) {
        s_log ("error", "%zu postbacks not committed: %s", count, errbuf);
    }
    for (size_t i = 0; i < count; i++) {
        gkx_store_convert_t *item = &items[i];
        self->stats.postbacks[rc != GKX_OK ? S_POSTBACK_FAILED
                              : item->rc != GKX_OK ? S_POSTBACK_REFUSED
                              : item->duplicate ? S_POSTBACK_DUPLICATE
                                                : S_POSTBACK_COMMITTED]++;
        if (item->entry) {
            self->stats.appended++;
            s_pump_pid (self, item->pid);
            gkx_entry_destroy (&item->entry);
        }
        if (item->rc == GKX_OK && item->budget_spent && !item->duplicate) {
            s_pause_spent (self, item->pid);
        }
        *(gkx_store_convert_t *) calls[i]->arg = *item;
        calls[i]->result = rc;
    }
    gkx_free (items);
}

/* Calls of gkx_node_convert carry this function; the loop batches them. */
static int
s_convert_marker (gkx_node_t *node, void *arg)
{
    (void) node;
    (void) arg;
    return GKX_ESTORE;
}

/* Runs a batch of conversion calls and wakes their callers. */
static void
s_convert_flush (gkx_node_t *self, s_call_t **calls, size_t count)
{
    s_convert_batch (self, calls, count);
    pthread_mutex_lock (&self->calls_lock);
    for (size_t i = 0; i < count; i++) {
        calls[i]->done = 1;
        pthread_cond_signal (&calls[i]->cond);
    }
    pthread_mutex_unlock (&self->calls_lock);
}

/* Poller of the wake pipe: runs every call handed over by other threads,
   the conversions among them as one batch. */
static int
s_on_call (zloop_t *loop, zmq_pollitem_t *item, void *arg)
{
    (void) loop;
    gkx_node_t *self = arg;
    char drain[256];
    while (read (item->fd, drain, sizeof drain) > 0) {
    }
    for (;;) {
        pthread_mutex_lock (&self->calls_lock);
        s_call_t *list = self->calls_head;
        self->calls_head = self->calls_tail = NULL;
        pthread_mutex_unlock (&self->calls_lock);
        if (!list) {
            return 0;
        }
        s_call_t *converts[S_CONVERT_BATCH_MAX];
        size_t convert_count = 0;
        for (s_call_t *call = list, *next; call; call = next) {
            next = call->next;
            if (call->fn == s_convert_marker) {
                converts[convert_count++] = call;
                if (convert_count == S_CONVERT_BATCH_MAX) {
                    s_convert_flush (self, converts, convert_count);
                    convert_count = 0;
                }
                continue;
            }
            int result = call->fn (self, call->arg);
            pthread_mutex_lock (&self->calls_lock);
            call->result = result;
            call->done = 1;
            pthread_cond_signal (&call->cond);
            pthread_mutex_unlock (&self->calls_lock);
        }
        if (convert_count > 0) {
            s_convert_flush (self, converts, convert_count);
        }
    }
}

static void
s_write_acks (gkx_node_t *self, s_peer_t *peer, uint64_t now)
{
    gkx_store_append_item_t *items = NULL;
    uint8_t (*pids)[GKX_ID_BYTES] = NULL;   /* copies: pumping may move the flows */
    size_t count = 0;
    for (size_t i = 0; i < peer->flow_count; i++) {
        s_flow_t *flow = &peer->flows[i];
        if (!flow->ack_due_ms || flow->ack_due_ms > now) {
            continue;
        }
        flow->ack_due_ms = 0;
        gkx_partnership_t p;
        gkx_head_t own;
        gkx_head_t theirs;
        if (gkx_store_partnership (self->store, flow->pid, &p) != GKX_OK || p.is_frozen
            || gkx_store_head (self->store, flow->pid, p.self_role, &own) != GKX_OK
            || gkx_store_head (self->store, flow->pid, s_other (p.self_role), &theirs) != GKX_OK
            || own.seen_seq >= theirs.seq) {
            continue;
        }
        items = gkx_realloc (items, (count + 1) * sizeof *items);
        pids = gkx_realloc (pids, (count + 1) * sizeof *pids);
        memcpy (pids[count], flow->pid, GKX_ID_BYTES);
        count++;
    }
    if (count == 0) {
        return;
    }
    for (size_t i = 0; i < count; i++) {
        memset (&items[i], 0, sizeof *items);
        items[i].pid = pids[i];
    }
    /* One durable commit for every ack due: with a thousand partnerships
       live, an ack each every S_ACK_DELAY_MS, each its own commit, took
       more than the machine's commits per second. */
    char errbuf[GKX_ERRBUF_BYTES] = "";
    int rc = gkx_store_append_each (self->store, self->identity, GKX_KIND_ACK, gkx_ack_body,
                                    sizeof gkx_ack_body, items, count, errbuf);
    if (rc != GKX_OK) {
        s_log ("warning", "acks not written: %s", errbuf);
    }
    for (size_t i = 0; rc == GKX_OK && i < count; i++) {
        if (items[i].rc != GKX_OK) {
            s_log ("warning", "ack not written: %s", items[i].errbuf);
            continue;
        }
        self->stats.appended++;
        s_pump_pid (self, pids[i]);
    }
    gkx_free (items);
    gkx_free (pids);
}

/* At start: owes an ack for a partnership whose counterparty chain holds
   entries, other than acks, that our chain does not acknowledge yet. The
   ack of entries received is written S_ACK_DELAY_MS later, so a run killed
   in between forgot it, and nothing would set it again until the
   counterparty wrote more: their last entries would never become final. */
static int
s_owe_ack (const gkx_partnership_t *p, void *arg)
{
    gkx_node_t *self = arg;
    s_peer_t *peer = s_peer_by_id (self, s_counterparty (p));
    gkx_head_t own;
    int unacknowledged = 0;
    if (peer && !p->is_frozen
        && gkx_store_head (self->store, p->pid, p->self_role, &own) == GKX_OK
        && gkx_store_holds_other_than (self->store, p->pid, s_other (p->self_role),
                                       own.seen_seq + 1, GKX_KIND_ACK, &unacknowledged) == GKX_OK
        && unacknowledged) {
        s_flow (peer, p->pid)->ack_due_ms = s_now_ms () + S_ACK_DELAY_MS;
    }
    return 0;
}

/* Gives freed heap memory back to the system every S_TRIM_MS. glibc keeps
   what is freed in the arena of the thread that allocated it (the HTTP
   workers', the loop's) and returns little of it by itself: after a flood
   of 1,000,000 postbacks over 10,000 partnerships the advertiser held
   764 MiB of anonymous memory, 65 MiB of it live. */
static void
s_trim (gkx_node_t *self, uint64_t now)
{
#ifdef __GLIBC__
    if (now - self->trimmed_ms >= S_TRIM_MS) {
        malloc_trim (0);
        self->trimmed_ms = s_now_ms ();
    }
#else
    (void) self;
    (void) now;
#endif
}

/* Housekeeping: stop requests, acks and keepalives. */
static int
s_on_tick (zloop_t *loop, int timer_id, void *arg)
{
    (void) loop;
    (void) timer_id;
    gkx_node_t *self = arg;
    if (self->stop_requested) {
        return -1;
    }
    uint64_t now = s_now_ms ();
    for (size_t i = 0; i < self->peer_count; i++) {
        s_peer_t *peer = &self->peers[i];
        s_write_acks (self, peer, now);
        for (size_t f = 0; f < peer->flow_count; f++) {
            s_flow_t *flow = &peer->flows[f];
            if (flow->claim_since_ms) {
                uint8_t pid[GKX_ID_BYTES];
                memcpy (pid, flow->pid, GKX_ID_BYTES);  /* s_flow may move the flows */
                s_check_claim (self, peer, pid, now);
                flow = &peer->flows[f];
            }
            /* Unacknowledged for too long: lost, or refused; send again. */
            if (flow->sent > flow->acked && now - flow->progress_ms >= S_RETRANSMIT_MS) {
                uint8_t pid[GKX_ID_BYTES];
                memcpy (pid, flow->pid, GKX_ID_BYTES);  /* s_flow may move the flows */
                s_flow_set (peer, flow, flow->acked, flow->acked);
                flow->probing = 1;
                s_pump_pid (self, pid);
            }
        }
        s_pump_waiting (self, peer);
        if (peer->dealer && now - peer->last_sent_ms >= S_KEEPALIVE_MS) {
            /* A peer we have not heard from may have restarted: resync. */
            int silent = now - peer->last_heard_ms >= S_CONNECTED_MS;
            if (silent) {
                s_send_card (self, peer);
            }
            s_send_heads (self, peer, silent, NULL);
        }
    }
    s_trim (self, now);
    return 0;
}

/* Loads the known peers from the store at start. */
static int
s_load_peer (const gkx_card_t *card, void *arg)
{
    s_peer_add (arg, card);
    return 0;
}

/* Watches a claim an earlier run left in the store unbacked (s_check_claim). */
static int
s_watch_claim (const gkx_partnership_t *p, void *arg)
{
    gkx_node_t *self = arg;
    s_peer_t *peer = s_peer_by_id (self, s_counterparty (p));
    if (p->claimed_seq && peer) {
        s_check_claim (self, peer, p->pid, s_now_ms ());
    }
    return 0;
}

int
gkx_node_open (gkx_node_t **self_p, const char *dir, char *errbuf)
{
    zsys_handler_set (NULL);
    gkx_node_t *self = gkx_zalloc (sizeof *self);
    pthread_mutex_init (&self->calls_lock, NULL);
    self->wake[0] = self->wake[1] = -1;
    self->dir = gkx_strdup (dir);
    self->started_ms = s_now_ms ();
    char path[4096];
    snprintf (path, sizeof path, "%s/store", dir);
    int rc = gkx_config_load (&self->config, dir, errbuf);
    if (rc == GKX_OK) {
        rc = gkx_keyfile_load (&self->identity, dir, errbuf);
    }
    if (rc == GKX_OK) {
        /* A publisher with a webhook queues a delivery in the transaction
           of each conversion it ingests, so none is lost to a crash. */
        gkx_store_options_t options;
        memset (&options, 0, sizeof options);
        options.deliveries = self->config->role == GKX_ROLE_PUBLISHER && self->config->webhook_url;
        /* With e-mail configured, each counterparty change is queued as a
           notice in the transaction that applies it (include/gkx/notifier.h). */
        options.notices = self->config->notify_on;
        rc = gkx_store_open (&self->store, path, gkx_identity_id (self->identity), &options,
                             errbuf);
    }
    if (rc == GKX_OK) {
        const gkx_config_t *c = self->config;
        gkx_card_info_t info = {c->role, c->name, c->advertise, c->email,
                                (const char **) c->verticals, c->verticals_count,
                                (const char **) c->countries, c->countries_count, s_now_ms ()};
        rc = gkx_card_issue (&self->card, self->identity, &info, errbuf);
    }
    if (rc != GKX_OK) {
        gkx_node_close (&self);
        return rc;
    }
    self->zap = zsock_new (ZMQ_REP);
    if (!self->zap || zsock_bind (self->zap, "inproc://zeromq.zap.01") != 0) {
        gkx_node_close (&self);
        return gkx_fail (errbuf, GKX_EIO, "cannot start the ZAP handler");
    }
    self->router = zsock_new (ZMQ_ROUTER);
    zsock_set_zap_domain (self->router, "gkx");
    zsock_set_curve_server (self->router, 1);
    zsock_set_curve_publickey_bin (self->router, gkx_identity_curve_public (self->identity));
    zsock_set_curve_secretkey_bin (self->router, gkx_identity_curve_secret (self->identity));
    zsock_set_maxmsgsize (self->router, S_MAX_FRAME_BYTES);
    zsock_set_rcvhwm (self->router, 0);
    zsock_set_linger (self->router, 0);
    zsock_set_heartbeat_ivl (self->router, S_HEARTBEAT_IVL_MS);
    zsock_set_heartbeat_timeout (self->router, S_HEARTBEAT_TIMEOUT_MS);
    zsock_set_handshake_ivl (self->router, S_HANDSHAKE_IVL_MS);
    if (zsock_bind (self->router, "%s", self->config->listen) < 0) {
        rc = gkx_fail (errbuf, GKX_EIO, "cannot listen on %s: %s", self->config->listen,
                       zmq_strerror (zmq_errno ()));
        gkx_node_close (&self);
        return rc;
    }
    if (pipe2 (self->wake, O_NONBLOCK | O_CLOEXEC) != 0) {
        self->wake[0] = self->wake[1] = -1;
        gkx_node_close (&self);
        return gkx_fail (errbuf, GKX_EIO, "cannot start the call bridge");
    }
    self->loop = zloop_new ();
    zloop_reader (self->loop, self->zap, s_on_zap, self);
    zloop_reader (self->loop, self->router, s_on_router, self);
    self->wake_item.fd = self->wake[0];
    self->wake_item.events = ZMQ_POLLIN;
    zloop_poller (self->loop, &self->wake_item, s_on_call, self);
    zloop_timer (self->loop, S_TICK_MS, 0, s_on_tick, self);
    zloop_set_nonstop (self->loop, true);
    gkx_store_peers (self->store, s_load_peer, self);
    gkx_store_partnerships (self->store, s_watch_claim, self);
    *self_p = self;
    return GKX_OK;
}

int
gkx_node_run (gkx_node_t *self)
{
    self->loop_thread = pthread_self ();
    pthread_mutex_lock (&self->calls_lock);
    self->running = 1;
    pthread_mutex_unlock (&self->calls_lock);
    gkx_store_partnerships (self->store, s_owe_ack, self);
    char id[GKX_ID_TEXT_BYTES];
    gkx_id_format (id, gkx_identity_id (self->identity));
    s_log ("info", "node %s (%s \"%s\") ready: replication on %s, %zu peers", id,
           gkx_role_name (self->config->role), self->config->name, self->config->listen,
           self->peer_count);
    zloop_start (self->loop);
    pthread_mutex_lock (&self->calls_lock);
    self->running = 0;
    self->stopped = 1;
    for (s_call_t *call = self->calls_head; call; call = call->next) {
        pthread_cond_signal (&call->cond);
    }
    pthread_mutex_unlock (&self->calls_lock);
    s_log ("info", "stopping");
    return GKX_OK;
}

void
gkx_node_stop (gkx_node_t *self)
{
    self->stop_requested = 1;
}

void
gkx_node_close (gkx_node_t **self_p)
{
    if (!self_p || !*self_p) {
        return;
    }
    gkx_node_t *self = *self_p;
    zloop_destroy (&self->loop);
    for (size_t i = 0; i < self->peer_count; i++) {
        zsock_destroy (&self->peers[i].dealer);
        gkx_card_destroy (&self->peers[i].card);
        gkx_free (self->peers[i].flows);
        gkx_free (self->peers[i].waiting);
    }
    gkx_free (self->peers);
    if (self->wake[0] >= 0) {
        close (self->wake[0]);
        close (self->wake[1]);
    }
    pthread_mutex_destroy (&self->calls_lock);
    zsock_destroy (&self->router);
    zsock_destroy (&self->zap);
    gkx_store_close (&self->store);
    gkx_card_destroy (&self->card);
    gkx_identity_destroy (&self->identity);
    gkx_config_destroy (&self->config);
    gkx_free (self->dir);
    gkx_free (self);
    *self_p = NULL;
}

int
gkx_node_call (gkx_node_t *self, gkx_node_fn *fn, void *arg)
{
    if (pthread_equal (pthread_self (), self->loop_thread) && self->running) {
        return fn (self, arg);
    }
    s_call_t call = {fn, arg, GKX_ESTORE, 0, PTHREAD_COND_INITIALIZER, NULL};
    pthread_mutex_lock (&self->calls_lock);
    if (self->stopped) {
        pthread_mutex_unlock (&self->calls_lock);
        return GKX_ESTORE;
    }
    if (self->calls_tail) {
        self->calls_tail->next = &call;
    }
    else {
        self->calls_head = &call;
    }
    self->calls_tail = &call;
    pthread_mutex_unlock (&self->calls_lock);
    /* A full pipe already holds a wake-up byte, so a failed write is fine. */
    ssize_t wrote = write (self->wake[1], "c", 1);
    (void) wrote;
    pthread_mutex_lock (&self->calls_lock);
    /* A call made while the node starts (its API and postback servers
       listen before the loop runs) waits for the loop a while rather than
       being refused; one made after the loop ended is refused. */
    uint64_t waited_ms = 0;
    while (!call.done && !self->stopped) {
        if (self->running) {
            pthread_cond_wait (&call.cond, &self->calls_lock);
            continue;
        }
        if (waited_ms >= S_START_WAIT_MS) {
            break;
        }
        struct timespec until;
        clock_gettime (CLOCK_REALTIME, &until);
        until.tv_nsec += 100 * 1000000L;
        if (until.tv_nsec >= 1000000000L) {
            until.tv_sec++;
            until.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait (&call.cond, &self->calls_lock, &until);
        waited_ms += 100;
    }
    if (!call.done) {
        /* The loop stopped before reaching the call: take it off the queue. */
        s_call_t **link = &self->calls_head;
        s_call_t *prev = NULL;
        while (*link && *link != &call) {
            prev = *link;
            link = &(*link)->next;
        }
        if (*link) {
            *link = call.next;
            if (self->calls_tail == &call) {
                self->calls_tail = prev;
            }
        }
    }
    int result = call.done ? call.result : GKX_ESTORE;
    pthread_mutex_unlock (&self->calls_lock);
    pthread_cond_destroy (&call.cond);
    return result;
}

int
gkx_node_convert (gkx_node_t *self, gkx_store_convert_t *item)
{
    if (pthread_equal (pthread_self (), self->loop_thread) && self->running) {
        s_call_t call = {s_convert_marker, item, GKX_ESTORE, 0, PTHREAD_COND_INITIALIZER, NULL};
        s_call_t *calls[1] = {&call};
        s_convert_batch (self, calls, 1);
        return call.result;
    }
    return gkx_node_call (self, s_convert_marker, item);
}

zloop_t *
gkx_node_loop (gkx_node_t *self)
{
    return self->loop;
}

void
gkx_node_set_webhook (gkx_node_t *self, gkx_webhook_t *webhook)
{
    self->webhook = webhook;
}

gkx_webhook_t *
gkx_node_webhook (gkx_node_t *self)
{
    return self->webhook;
}

void
gkx_node_set_directory (gkx_node_t *self, gkx_directory_t *directory)
{
    self->directory = directory;
}

gkx_directory_t *
gkx_node_directory (gkx_node_t *self)
{
    return self->directory;
}

void
gkx_node_set_intake (gkx_node_t *self, gkx_intake_t *intake)
{
    self->intake = intake;
}

gkx_intake_t *
gkx_node_intake (gkx_node_t *self)
{
    return self->intake;
}

void
gkx_node_set_notifier (gkx_node_t *self, gkx_notifier_t *notifier)
{
    self->notifier = notifier;
}

gkx_notifier_t *
gkx_node_notifier (gkx_node_t *self)
{
    return self->notifier;
}

uint64_t
gkx_node_started_ms (gkx_node_t *self)
{
    return self->started_ms;
}

json_t *
gkx_node_stats_json (gkx_node_t *self)
{
    json_t *refused = json_object ();
    for (int code = 1; code < GKX_ECODE_COUNT; code++) {
        if (self->stats.refused[code]) {
            json_object_set_new (refused, gkx_errname (code),
                                 json_integer ((json_int_t) self->stats.refused[code]));
        }
    }
    const uint64_t *pb = self->stats.postbacks;
    json_t *postbacks = json_pack ("{s:I, s:I, s:I, s:I}", "committed",
                                   (json_int_t) pb[S_POSTBACK_COMMITTED], "duplicates",
                                   (json_int_t) pb[S_POSTBACK_DUPLICATE], "refused",
                                   (json_int_t) pb[S_POSTBACK_REFUSED], "failed",
                                   (json_int_t) pb[S_POSTBACK_FAILED]);
    return json_pack ("{s:I, s:I, s:I, s:I, s:o, s:o}", "entries_appended",
                      (json_int_t) self->stats.appended, "entries_ingested",
                      (json_int_t) self->stats.ingested, "duplicates",
                      (json_int_t) self->stats.duplicates, "bad_frames",
                      (json_int_t) self->stats.bad_frames, "refused", refused, "postbacks",
                      postbacks);
}

gkx_store_t *
gkx_node_store (gkx_node_t *self)
{
    return self->store;
}

const gkx_identity_t *
gkx_node_identity (gkx_node_t *self)
{
    return self->identity;
}

const gkx_config_t *
gkx_node_config (gkx_node_t *self)
{
    return self->config;
}

const gkx_card_t *
gkx_node_card (gkx_node_t *self)
{
    return self->card;
}

const char *
gkx_node_dir (gkx_node_t *self)
{
    return self->dir;
}

int
gkx_node_append (gkx_node_t *self, const uint8_t pid[GKX_ID_BYTES], int kind,
                 const uint8_t *body, size_t body_len, gkx_entry_t **entry_p, char *errbuf)
{
    int rc = gkx_store_append (self->store, self->identity, pid, kind, body, body_len, entry_p,
                               errbuf);
    if (rc == GKX_OK) {
        self->stats.appended++;
        s_pump_pid (self, pid);
    }
    return rc;
}

int
gkx_node_share (gkx_node_t *self, const uint8_t publisher[GKX_ID_BYTES], const uint8_t *offer,
                size_t offer_len, const uint8_t *policy, size_t policy_len,
                uint8_t pid[GKX_ID_BYTES], char *errbuf)
{
    if (self->config->role != GKX_ROLE_ADVERTISER) {
        return gkx_fail (errbuf, GKX_EINVAL, "only an advertiser node shares offers");
    }
    s_peer_t *peer = s_peer_by_id (self, publisher);
    if (!peer) {
        return gkx_fail (errbuf, GKX_ENOTFOUND,
                         "the publisher is not a known peer; add its card with gkx peer add");
    }
    if (gkx_card_role (peer->card) != GKX_ROLE_PUBLISHER) {
        return gkx_fail (errbuf, GKX_EINVAL, "peer %s is not a publisher",
                         gkx_card_name (peer->card));
    }
    int rc = gkx_store_share (self->store, self->identity, publisher, offer, offer_len, policy,
                              policy_len, pid, NULL, errbuf);
    if (rc == GKX_OK) {
        self->stats.appended++;
        s_pump_pid (self, pid);
    }
    return rc;
}

int
gkx_node_peer_add (gkx_node_t *self, const gkx_card_t *card, char *errbuf)
{
    if (memcmp (gkx_card_id (card), gkx_identity_id (self->identity), GKX_ID_BYTES) == 0) {
        return gkx_fail (errbuf, GKX_EINVAL, "that is this node's own card");
    }
    if (gkx_card_role (card) == self->config->role) {
        return gkx_fail (errbuf, GKX_EINVAL, "%s is also %s %s; partners have opposite roles",
                         gkx_card_name (card),
                         self->config->role == GKX_ROLE_ADVERTISER ? "an" : "a",
                         gkx_role_name (self->config->role));
    }
    int rc = gkx_store_peer_put (self->store, card, errbuf);
    if (rc == GKX_OK) {
        s_peer_add (self, card);
    }
    return rc;
}

/* Sums the entries of ours a peer has not acknowledged yet; *age_ms_p
   gets the age at now of the oldest of them (by its clock), 0 for none. */
static uint64_t
s_lag (gkx_node_t *self, s_peer_t *peer, uint64_t now, uint64_t *age_ms_p)
{
    uint64_t lag = 0;
    *age_ms_p = 0;
    for (size_t i = 0; i < peer->flow_count; i++) {
        gkx_partnership_t p;
        gkx_head_t own;
        gkx_entry_t *oldest = NULL;
        if (gkx_store_partnership (self->store, peer->flows[i].pid, &p) == GKX_OK
            && gkx_store_head (self->store, p.pid, p.self_role, &own) == GKX_OK
            && own.seq > peer->flows[i].acked) {
            lag += own.seq - peer->flows[i].acked;
            if (gkx_store_get (self->store, p.pid, p.self_role, peer->flows[i].acked + 1, &oldest)
                == GKX_OK) {
                uint64_t written = gkx_hlc_ms (gkx_entry_hlc (oldest));
                if (now > written && now - written > *age_ms_p) {
                    *age_ms_p = now - written;
                }
                gkx_entry_destroy (&oldest);
            }
        }
    }
    return lag;
}

json_t *
gkx_node_peers_json (gkx_node_t *self)
{
    json_t *peers = json_array ();
    uint64_t now = s_now_ms ();
    for (size_t i = 0; i < self->peer_count; i++) {
        s_peer_t *peer = &self->peers[i];
        char id[GKX_ID_TEXT_BYTES];
        gkx_id_format (id, gkx_card_id (peer->card));
        uint64_t age_ms = 0;
        uint64_t lag = s_lag (self, peer, now, &age_ms);
        json_t *row = json_pack ("{s:s, s:s, s:s, s:s, s:b, s:I, s:f}", "id", id, "name",
                                 gkx_card_name (peer->card), "role",
                                 gkx_role_name (gkx_card_role (peer->card)), "endpoint",
                                 gkx_card_endpoint (peer->card), "connected",
                                 peer->last_heard_ms && now - peer->last_heard_ms < S_CONNECTED_MS,
                                 "lag_entries", (json_int_t) lag, "lag_seconds",
                                 (double) age_ms / S_SECOND_MS);
        json_object_set_new (row, "last_seen_seconds_ago",
                             peer->last_heard_ms
                                 ? json_integer ((json_int_t) ((now - peer->last_heard_ms) / 1000))
                                 : json_null ());
        json_array_append_new (peers, row);
    }
    return peers;
}

const char *
gkx_node_member_name (gkx_node_t *self, const uint8_t id[GKX_ID_BYTES])
{
    if (memcmp (id, gkx_identity_id (self->identity), GKX_ID_BYTES) == 0) {
        return self->config->name;
    }
    s_peer_t *peer = s_peer_by_id (self, id);
    return peer ? gkx_card_name (peer->card) : "";
}
