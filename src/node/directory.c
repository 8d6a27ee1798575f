/*  directory - partner discovery: a node as a directory, and as its client.
    Part of gokart-exchange; MIT licence.

    Serving: the ROUTER's reader takes one request per call, so a flood of
    requests interleaves with replication instead of holding the loop. A
    request is read frame by frame and at most S_REQUEST_FRAMES are kept;
    the rest of an oversized message is read and dropped, so no client can
    make the node hold more than a few frames of GKX_DIRMSG_MAX_FRAME_BYTES
    (ZMQ_MAXMSGSIZE drops larger frames before they are read). The cards
    are also kept in memory, verified once when loaded or published, so a
    listing filters memory and never re-verifies the whole store.

    Publishing: the node wants one message delivered to every directory,
    its card or its withdrawal. Each link (one directory of publish_to) has
    at most one request in flight, named by a random request id; an answer
    with another id is late and ignored. A request unanswered for
    GKX_DIRECTORY_ANSWER_TIMEOUT_MS is sent again after a backoff that
    doubles from S_BACKOFF_MIN_MS to S_BACKOFF_MAX_MS. A DEALER queues
    while its directory is down; its small send queue (S_LINK_HWM) keeps
    retries from piling up, and a full queue only counts as a failed try.
*/
#include <gkx/alloc.h>
#include <gkx/directory.h>
#include <gkx/kind.h>
#include <gkx/withdrawal.h>

#include <assert.h>
#include <czmq.h>
#include <sodium.h>
#include <stdarg.h>
#include <string.h>
#include <time.h>

/* Interval of the publishing timer (ms). */
#define S_TICK_MS 200
/* First and longest wait before a directory that did not answer is tried
   again (ms). */
#define S_BACKOFF_MIN_MS 1000
#define S_BACKOFF_MAX_MS 60000
/* Most frames of a request kept: routing id, header, one payload. */
#define S_REQUEST_FRAMES 3
/* Most frames of an answer kept: header and the cards. */
#define S_ANSWER_FRAMES (1 + GKX_DIRMSG_MAX_CARDS)
/* Messages a DEALER to a directory queues before sends fail, and holds
   received: a directory that floods answers fills only this much memory. */
#define S_LINK_HWM 4
/* Messages the directory queues per client: answers to a client that does
   not read them are dropped past S_ANSWER_HWM (a list answer may be
   GKX_DIRMSG_MAX_CARDS cards), requests wait in ZeroMQ (and TCP) past
   S_REQUEST_HWM. */
#define S_ANSWER_HWM 16
#define S_REQUEST_HWM 64
/* ZeroMQ heartbeat interval and timeout of the directory's sockets (ms). */
#define S_HEARTBEAT_IVL_MS 1000
#define S_HEARTBEAT_TIMEOUT_MS 5000
/* Refusals logged per second at most; the rest are counted. */
#define S_LOG_PER_SECOND 5

/* One directory of publish_to, as the loop publishes to it. */
typedef struct {
    char address[GKX_DIRMSG_ADDRESS_BYTES];     /* tcp://host:port@KEY */
    char endpoint[GKX_DIRMSG_ENDPOINT_BYTES];   /* tcp://host:port */
    uint8_t key[GKX_CURVE_KEY_BYTES];           /* the directory's CURVE key */
    zsock_t *dealer;            /* the loop's connection to it */
    uint64_t rid;               /* the request in flight, 0 when none */
    uint64_t sent_ms;           /* when it was sent */
    uint64_t next_ms;           /* when the next try (or refresh) is due */
    uint32_t failures;          /* tries in a row without an answer */
    int answered;               /* it answered the current message */
    int ok;                     /* its answer was ok */
    char error[GKX_ERRBUF_BYTES];   /* its refusal or why no answer came, "" */
} s_link_t;

/* The node's directory parts. */
struct gkx_directory {
    gkx_node_t *node;
    zloop_t *loop;              /* the node's loop, where our sockets are */
    /* Serving (NULL router when [directory] serve is false). */
    zsock_t *router;
    gkx_card_t **cards;         /* the cards held, verified, as in the store */
    size_t cards_count;
    uint64_t log_second;        /* the second of the refusals being counted */
    uint32_t log_count;         /* refusals logged in that second */
    uint64_t log_dropped;       /* refusals not logged */
    /* Publishing. */
    s_link_t *links;            /* the directories of publish_to */
    size_t links_count;
    int timer_id;               /* the publishing timer, or -1 */
    int want_type;              /* GKX_DIRMSG_PUBLISH or GKX_DIRMSG_WITHDRAW */
    uint8_t *want;              /* the card or withdrawal to deliver */
    size_t want_len;
    gkx_card_t *listing;        /* the card published, NULL while withdrawn */
    uint64_t withdrawn_ms;      /* when this node withdrew its card, or 0 */
    /* Listing. */
    gkx_card_t **fetched;       /* cards from the last listings, newest per id */
    size_t fetched_count;
};

/* Milliseconds since the epoch. */
static uint64_t
s_now_ms (void)
{
    struct timespec ts;
    clock_gettime (CLOCK_REALTIME, &ts);
    return (uint64_t) ts.tv_sec * 1000 + (uint64_t) ts.tv_nsec / 1000000;
}

/* Logs one line to stderr with a level; never given secrets. Control
   characters (a card's name is its owner's text) become '?', so that no
   input can forge a log line. */
__attribute__ ((format (printf, 2, 3))) static void
s_log (const char *level, const char *fmt, ...)
{
    char line[1024];
    va_list args;
    va_start (args, fmt);
    vsnprintf (line, sizeof line, fmt, args);
    va_end (args);
    for (char *p = line; *p; p++) {
        if ((unsigned char) *p < 0x20 || *p == 0x7f) {
            *p = '?';
        }
    }
    fprintf (stderr, "gkxd: %s: directory: %s\n", level, line);
}

/* Starts a new second of refusal logging once the current one is over,
   saying how many refusals went unlogged in it. */
static void
s_log_roll (gkx_directory_t *self, uint64_t second)
{
    if (second == self->log_second) {
        return;
    }
    if (self->log_dropped) {
        s_log ("warning", "%llu more requests refused", (unsigned long long) self->log_dropped);
    }
    self->log_second = second;
    self->log_count = 0;
    self->log_dropped = 0;
}

/* Logs a refused request, at most S_LOG_PER_SECOND a second, so that a
   flood of bad input cannot flood the log. */
__attribute__ ((format (printf, 2, 3))) static void
s_log_refusal (gkx_directory_t *self, const char *fmt, ...)
{
    s_log_roll (self, s_now_ms () / 1000);
    if (self->log_count >= S_LOG_PER_SECOND) {
        self->log_dropped++;
        return;
    }
    self->log_count++;
    char line[GKX_ERRBUF_BYTES + 64];
    va_list args;
    va_start (args, fmt);
    vsnprintf (line, sizeof line, fmt, args);
    va_end (args);
    s_log ("warning", "%s", line);
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

/* A request id: random, never 0 (0 answers requests that could not be read). */
static uint64_t
s_rid (void)
{
    uint64_t rid = 0;
    while (rid == 0) {
        randombytes_buf (&rid, sizeof rid);
    }
    return rid;
}

/* Receives one message frame by frame: keeps the first max frames in
   frames, reads and drops the rest. Returns how many were kept; *excess_p
   is set to 1 when some were dropped. */
static size_t
s_recv_bounded (zsock_t *sock, zframe_t **frames, size_t max, int *excess_p)
{
    size_t count = 0;
    *excess_p = 0;
    for (;;) {
        zframe_t *frame = zframe_recv (sock);
        if (!frame) {
            break;
        }
        int more = zframe_more (frame);
        if (count < max) {
            frames[count++] = frame;
        }
        else {
            zframe_destroy (&frame);
            *excess_p = 1;
        }
        if (!more) {
            break;
        }
    }
    return count;
}

/* Destroys count frames. */
static void
s_frames_destroy (zframe_t **frames, size_t count)
{
    for (size_t i = 0; i < count; i++) {
        zframe_destroy (&frames[i]);
    }
}

/* Copies a verified card (its bytes decode again; they were verified). */
static gkx_card_t *
s_card_copy (const gkx_card_t *card)
{
    size_t len;
    const uint8_t *bytes = gkx_card_bytes (card, &len);
    gkx_card_t *copy = NULL;
    int rc = gkx_card_decode (&copy, bytes, len, NULL);
    assert (rc == GKX_OK);
    (void) rc;
    return copy;
}

/* Finds the card of id in a list; returns its index or count. */
static size_t
s_cards_find (gkx_card_t *const *cards, size_t count, const uint8_t id[GKX_ID_BYTES])
{
    for (size_t i = 0; i < count; i++) {
        if (memcmp (gkx_card_id (cards[i]), id, GKX_ID_BYTES) == 0) {
            return i;
        }
    }
    return count;
}

/* Puts a copy of card into a list, replacing an older card of its id (a
   newer one held stays). */
static void
s_cards_put (gkx_card_t ***cards_p, size_t *count_p, const gkx_card_t *card)
{
    size_t i = s_cards_find (*cards_p, *count_p, gkx_card_id (card));
    if (i < *count_p) {
        if (gkx_card_timestamp ((*cards_p)[i]) < gkx_card_timestamp (card)) {
            gkx_card_destroy (&(*cards_p)[i]);
            (*cards_p)[i] = s_card_copy (card);
        }
        return;
    }
    *cards_p = gkx_realloc (*cards_p, (*count_p + 1) * sizeof **cards_p);
    (*cards_p)[(*count_p)++] = s_card_copy (card);
}

/* Drops the card at index i of a list. */
static void
s_cards_drop (gkx_card_t **cards, size_t *count_p, size_t i)
{
    gkx_card_destroy (&cards[i]);
    cards[i] = cards[--*count_p];
}

/* Frees a list of cards. */
static void
s_cards_free (gkx_card_t ***cards_p, size_t *count_p)
{
    for (size_t i = 0; i < *count_p; i++) {
        gkx_card_destroy (&(*cards_p)[i]);
    }
    gkx_free (*cards_p);
    *cards_p = NULL;
    *count_p = 0;
}

/* Sends header and, when payload is not NULL, one more frame to a ROUTER
   peer (routing id first) or a DEALER (routing NULL). Never blocks: a full
   queue drops the message. Returns 0 when sent. */
static int
s_send (zsock_t *sock, zframe_t *routing, const msgpack_sbuffer *header, const uint8_t *payload,
        size_t payload_len)
{
    zmsg_t *msg = zmsg_new ();
    if (routing) {
        zframe_t *copy = zframe_dup (routing);
        zmsg_append (msg, &copy);
    }
    zmsg_addmem (msg, header->data, header->size);
    if (payload) {
        zmsg_addmem (msg, payload, payload_len);
    }
    int rc = zmsg_send (&msg, sock);
    zmsg_destroy (&msg);
    return rc;
}

/* Answers a request with ok. */
static void
s_answer_ok (gkx_directory_t *self, zframe_t *routing, uint64_t rid)
{
    msgpack_sbuffer header;
    msgpack_sbuffer_init (&header);
    gkx_dirmsg_ok_encode (&header, rid);
    s_send (self->router, routing, &header, NULL, 0);
    msgpack_sbuffer_destroy (&header);
}

/* Answers a request with an error, and logs the refusal. */
static void
s_answer_error (gkx_directory_t *self, zframe_t *routing, uint64_t rid, int code,
                const char *message)
{
    s_log_refusal (self, "request refused: %s: %s", gkx_errname (code), message);
    msgpack_sbuffer header;
    msgpack_sbuffer_init (&header);
    gkx_dirmsg_error_encode (&header, rid, code, message);
    s_send (self->router, routing, &header, NULL, 0);
    msgpack_sbuffer_destroy (&header);
}

/* Serves publish: verifies the card and keeps it unless it is stale. */
static void
s_serve_publish (gkx_directory_t *self, zframe_t *routing, uint64_t rid, zframe_t *payload)
{
    char errbuf[GKX_ERRBUF_BYTES] = "";
    gkx_card_t *card = NULL;
    if (!payload) {
        s_answer_error (self, routing, rid, GKX_ETYPE, "publish: expected one frame: a card");
        return;
    }
    int rc = gkx_card_decode (&card, zframe_data (payload), zframe_size (payload), errbuf);
    if (rc != GKX_OK) {
        s_answer_error (self, routing, rid, rc, errbuf);
        return;
    }
    size_t i = s_cards_find (self->cards, self->cards_count, gkx_card_id (card));
    size_t len;
    const uint8_t *bytes = gkx_card_bytes (card, &len);
    size_t held_len = 0;
    const uint8_t *held = i < self->cards_count ? gkx_card_bytes (self->cards[i], &held_len)
                                                : NULL;
    if (held && held_len == len && memcmp (held, bytes, len) == 0) {
        /* The same card again (a retry): nothing to write. */
        s_answer_ok (self, routing, rid);
        gkx_card_destroy (&card);
        return;
    }
    if (!held && self->cards_count >= GKX_DIRECTORY_MAX_CARDS) {
        s_answer_error (self, routing, rid, GKX_ETOOBIG, "the directory is full");
        gkx_card_destroy (&card);
        return;
    }
    rc = gkx_store_directory_put (gkx_node_store (self->node), card, errbuf);
    if (rc == GKX_OK) {
        char id[13];
        s_log ("info", "card of %s (%s %s) %s", gkx_card_name (card),
               gkx_role_name (gkx_card_role (card)), s_short (gkx_card_id (card), id),
               held ? "renewed" : "listed");
        s_cards_put (&self->cards, &self->cards_count, card);
        s_answer_ok (self, routing, rid);
    }
    else {
        s_answer_error (self, routing, rid, rc, errbuf);
    }
    gkx_card_destroy (&card);
}

/* Serves withdraw: verifies the withdrawal, keeps it, drops the card. */
static void
s_serve_withdraw (gkx_directory_t *self, zframe_t *routing, uint64_t rid, zframe_t *payload)
{
    char errbuf[GKX_ERRBUF_BYTES] = "";
    gkx_withdrawal_t *w = NULL;
    if (!payload) {
        s_answer_error (self, routing, rid, GKX_ETYPE,
                        "withdraw: expected one frame: a withdrawal");
        return;
    }
    int rc = gkx_withdrawal_decode (&w, zframe_data (payload), zframe_size (payload), errbuf);
    if (rc == GKX_OK) {
        rc = gkx_store_directory_withdraw (gkx_node_store (self->node), w, errbuf);
    }
    if (rc != GKX_OK) {
        s_answer_error (self, routing, rid, rc, errbuf);
        gkx_withdrawal_destroy (&w);
        return;
    }
    size_t i = s_cards_find (self->cards, self->cards_count, gkx_withdrawal_id (w));
    if (i < self->cards_count && gkx_withdrawal_is_covering (w, self->cards[i])) {
        char id[13];
        s_log ("info", "card of %s (%s) withdrawn by its owner", gkx_card_name (self->cards[i]),
               s_short (gkx_withdrawal_id (w), id));
        s_cards_drop (self->cards, &self->cards_count, i);
    }
    s_answer_ok (self, routing, rid);
    gkx_withdrawal_destroy (&w);
}

/* Serves list: the cards matching the filter, at most GKX_DIRMSG_MAX_CARDS. */
static void
s_serve_list (gkx_directory_t *self, zframe_t *routing, const gkx_dirmsg_t *request)
{
    zmsg_t *msg = zmsg_new ();
    size_t count = 0;
    int truncated = 0;
    for (size_t i = 0; i < self->cards_count; i++) {
        if (!gkx_dirmsg_filter_is_matching (&request->filter, self->cards[i])) {
            continue;
        }
        if (count == GKX_DIRMSG_MAX_CARDS) {
            truncated = 1;
            break;
        }
        size_t len;
        const uint8_t *bytes = gkx_card_bytes (self->cards[i], &len);
        zmsg_addmem (msg, bytes, len);
        count++;
    }
    msgpack_sbuffer header;
    msgpack_sbuffer_init (&header);
    gkx_dirmsg_cards_encode (&header, request->rid, count, truncated);
    zmsg_pushmem (msg, header.data, header.size);
    zframe_t *copy = zframe_dup (routing);
    zmsg_prepend (msg, &copy);
    msgpack_sbuffer_destroy (&header);
    if (zmsg_send (&msg, self->router) != 0) {
        zmsg_destroy (&msg);
    }
}

/* Reader of the directory's ROUTER: one request. */
static int
s_on_router (zloop_t *loop, zsock_t *reader, void *arg)
{
    (void) loop;
    gkx_directory_t *self = arg;
    zframe_t *frames[S_REQUEST_FRAMES] = {NULL};
    int excess = 0;
    size_t count = s_recv_bounded (reader, frames, S_REQUEST_FRAMES, &excess);
    if (count < 2) {
        /* Only a routing id, or nothing: no one to answer. */
        s_frames_destroy (frames, count);
        return 0;
    }
    zframe_t *routing = frames[0];
    zframe_t *payload = count == 3 ? frames[2] : NULL;
    gkx_dirmsg_t request;
    char errbuf[GKX_ERRBUF_BYTES] = "";
    int rc = gkx_dirmsg_decode (&request, zframe_data (frames[1]), zframe_size (frames[1]),
                                errbuf);
    if (rc != GKX_OK) {
        s_answer_error (self, routing, 0, rc, errbuf);
    }
    else if (excess) {
        s_answer_error (self, routing, request.rid, GKX_ETOOBIG,
                        "a request has at most one frame after its header");
    }
    else if (request.type == GKX_DIRMSG_PUBLISH) {
        s_serve_publish (self, routing, request.rid, payload);
    }
    else if (request.type == GKX_DIRMSG_WITHDRAW) {
        s_serve_withdraw (self, routing, request.rid, payload);
    }
    else if (request.type == GKX_DIRMSG_LIST && !payload) {
        s_serve_list (self, routing, &request);
    }
    else {
        s_answer_error (self, routing, request.rid, GKX_ETYPE,
                        request.type == GKX_DIRMSG_LIST ? "list: expected no frame after the header"
                                                        : "not a request: publish, list or withdraw");
    }
    s_frames_destroy (frames, count);
    return 0;
}

/* Loads one stored card into memory at open. */
static int
s_load_card (const gkx_card_t *card, void *arg)
{
    gkx_directory_t *self = arg;
    s_cards_put (&self->cards, &self->cards_count, card);
    return 0;
}

/* Sets the message every directory must get, and starts delivering it. */
static void
s_want (gkx_directory_t *self, int type, const uint8_t *bytes, size_t len)
{
    gkx_free (self->want);
    self->want = gkx_memdup (bytes, len);
    self->want_len = len;
    self->want_type = type;
    for (size_t i = 0; i < self->links_count; i++) {
        s_link_t *link = &self->links[i];
        link->rid = 0;
        link->next_ms = 0;
        link->failures = 0;
        link->answered = 0;
        link->ok = 0;
        link->error[0] = '\0';
    }
}

/* Wants the listing card delivered. */
static void
s_want_listing (gkx_directory_t *self)
{
    size_t len;
    const uint8_t *bytes = gkx_card_bytes (self->listing, &len);
    s_want (self, GKX_DIRMSG_PUBLISH, bytes, len);
}

/* Counts a failed try at a directory: the next one waits S_BACKOFF_MIN_MS,
   doubling with each failure in a row up to S_BACKOFF_MAX_MS. */
static void
s_link_failed (s_link_t *link, uint64_t now, const char *why)
{
    link->rid = 0;
    link->failures++;
    uint64_t wait = S_BACKOFF_MIN_MS;
    for (uint32_t i = 1; i < link->failures && wait < S_BACKOFF_MAX_MS; i++) {
        wait *= 2;
    }
    link->next_ms = now + (wait < S_BACKOFF_MAX_MS ? wait : S_BACKOFF_MAX_MS);
    snprintf (link->error, sizeof link->error, "%s", why);
}

/* Sends the wanted message to one directory. */
static void
s_link_send (gkx_directory_t *self, s_link_t *link, uint64_t now)
{
    msgpack_sbuffer header;
    msgpack_sbuffer_init (&header);
    uint64_t rid = s_rid ();
    if (self->want_type == GKX_DIRMSG_PUBLISH) {
        gkx_dirmsg_publish_encode (&header, rid);
    }
    else {
        gkx_dirmsg_withdraw_encode (&header, rid);
    }
    int rc = s_send (link->dealer, NULL, &header, self->want, self->want_len);
    msgpack_sbuffer_destroy (&header);
    link->sent_ms = now;
    link->rid = rid;
    if (rc != 0) {
        /* The queue is full: the directory has been down for a while. */
        s_link_failed (link, now, "not reachable");
    }
}

/* Publishing timer: the card when it changed, retries and refreshes. */
static int
s_on_tick (zloop_t *loop, int timer_id, void *arg)
{
    (void) loop;
    (void) timer_id;
    gkx_directory_t *self = arg;
    uint64_t now = s_now_ms ();
    s_log_roll (self, now / 1000);
    const gkx_card_t *card = gkx_node_card (self->node);
    if (self->listing && gkx_card_timestamp (card) > gkx_card_timestamp (self->listing)) {
        gkx_card_destroy (&self->listing);
        self->listing = s_card_copy (card);
        s_want_listing (self);
    }
    for (size_t i = 0; self->want && i < self->links_count; i++) {
        s_link_t *link = &self->links[i];
        if (link->rid && now - link->sent_ms >= GKX_DIRECTORY_ANSWER_TIMEOUT_MS) {
            char why[64];
            snprintf (why, sizeof why, "no answer within %d ms", GKX_DIRECTORY_ANSWER_TIMEOUT_MS);
            s_link_failed (link, now, why);
            if (link->failures == 1) {
                s_log ("warning", "%s does not answer; retrying", link->endpoint);
            }
        }
        if (link->answered && now >= link->next_ms) {
            link->answered = 0;
        }
        if (!link->answered && !link->rid && now >= link->next_ms) {
            s_link_send (self, link, now);
        }
    }
    return 0;
}

/* Reader of a DEALER to a directory: its answer. */
static int
s_on_answer (zloop_t *loop, zsock_t *reader, void *arg)
{
    (void) loop;
    gkx_directory_t *self = arg;
    s_link_t *link = NULL;
    for (size_t i = 0; i < self->links_count; i++) {
        if (self->links[i].dealer == reader) {
            link = &self->links[i];
        }
    }
    zframe_t *frames[2] = {NULL, NULL};
    int excess = 0;
    size_t count = s_recv_bounded (reader, frames, 2, &excess);
    gkx_dirmsg_t answer;
    char errbuf[GKX_ERRBUF_BYTES] = "";
    if (!link || count == 0
        || gkx_dirmsg_decode (&answer, zframe_data (frames[0]), zframe_size (frames[0]), errbuf)
               != GKX_OK
        || answer.rid == 0 || answer.rid != link->rid
        || (answer.type != GKX_DIRMSG_OK && answer.type != GKX_DIRMSG_ERROR)) {
        /* Late, or not an answer to what we sent: ignored. */
        s_frames_destroy (frames, count);
        return 0;
    }
    uint64_t now = s_now_ms ();
    link->rid = 0;
    link->failures = 0;
    link->answered = 1;
    link->next_ms = now + GKX_DIRECTORY_REFRESH_MS;
    const char *what = self->want_type == GKX_DIRMSG_PUBLISH ? "card" : "withdrawal";
    if (answer.type == GKX_DIRMSG_OK) {
        if (!link->ok) {
            s_log ("info", "%s %s by %s", what,
                   self->want_type == GKX_DIRMSG_PUBLISH ? "listed" : "taken",
                   link->endpoint);
        }
        link->ok = 1;
        link->error[0] = '\0';
    }
    else {
        link->ok = 0;
        /* The directory's text is untrusted: printable ASCII only in logs. */
        snprintf (link->error, sizeof link->error, "%s: %.200s", answer.code, answer.message);
        for (char *p = link->error; *p; p++) {
            *p = (unsigned char) *p < 0x20 || (unsigned char) *p > 0x7e ? '?' : *p;
        }
        s_log ("warning", "%s refused by %s: %s", what, link->endpoint, link->error);
    }
    s_frames_destroy (frames, count);
    return 0;
}

/* Makes a CURVE client DEALER to a directory, with this node's keys. */
static zsock_t *
s_dealer_new (gkx_node_t *node, const char *endpoint, const uint8_t key[GKX_CURVE_KEY_BYTES])
{
    const gkx_identity_t *identity = gkx_node_identity (node);
    zsock_t *dealer = zsock_new (ZMQ_DEALER);
    if (!dealer) {
        return NULL;
    }
    zsock_set_curve_serverkey_bin (dealer, key);
    zsock_set_curve_publickey_bin (dealer, gkx_identity_curve_public (identity));
    zsock_set_curve_secretkey_bin (dealer, gkx_identity_curve_secret (identity));
    zsock_set_maxmsgsize (dealer, GKX_DIRMSG_MAX_FRAME_BYTES);
    zsock_set_linger (dealer, 0);
    zsock_set_sndhwm (dealer, S_LINK_HWM);
    zsock_set_rcvhwm (dealer, S_LINK_HWM);
    zsock_set_sndtimeo (dealer, 0);
    zsock_set_reconnect_ivl (dealer, 100);
    zsock_set_reconnect_ivl_max (dealer, S_BACKOFF_MAX_MS);
    zsock_set_heartbeat_ivl (dealer, S_HEARTBEAT_IVL_MS);
    zsock_set_heartbeat_timeout (dealer, S_HEARTBEAT_TIMEOUT_MS);
    if (zsock_connect (dealer, "%s", endpoint) != 0) {
        zsock_destroy (&dealer);
    }
    return dealer;
}

/* Binds the directory's ROUTER and loads the cards held. */
static int
s_serve_open (gkx_directory_t *self, char *errbuf)
{
    const gkx_config_t *config = gkx_node_config (self->node);
    const gkx_identity_t *identity = gkx_node_identity (self->node);
    self->router = zsock_new (ZMQ_ROUTER);
    if (!self->router) {
        return gkx_fail (errbuf, GKX_EIO, "directory: cannot make a socket");
    }
    zsock_set_zap_domain (self->router, GKX_DIRECTORY_ZAP_DOMAIN);
    zsock_set_curve_server (self->router, 1);
    zsock_set_curve_publickey_bin (self->router, gkx_identity_curve_public (identity));
    zsock_set_curve_secretkey_bin (self->router, gkx_identity_curve_secret (identity));
    zsock_set_maxmsgsize (self->router, GKX_DIRMSG_MAX_FRAME_BYTES);
    zsock_set_sndhwm (self->router, S_ANSWER_HWM);
    zsock_set_rcvhwm (self->router, S_REQUEST_HWM);
    zsock_set_linger (self->router, 0);
    zsock_set_sndtimeo (self->router, 0);
    zsock_set_heartbeat_ivl (self->router, S_HEARTBEAT_IVL_MS);
    zsock_set_heartbeat_timeout (self->router, S_HEARTBEAT_TIMEOUT_MS);
    if (zsock_bind (self->router, "%s", config->directory_listen) < 0) {
        return gkx_fail (errbuf, GKX_EIO, "directory: cannot listen on %s: %s",
                         config->directory_listen, zmq_strerror (zmq_errno ()));
    }
    int rc = gkx_store_directory_cards (gkx_node_store (self->node), s_load_card, self);
    if (rc != GKX_OK) {
        return gkx_fail (errbuf, rc, "directory: cannot read the cards held: %s",
                         gkx_strerror (rc));
    }
    zloop_reader (self->loop, self->router, s_on_router, self);
    char address[GKX_DIRMSG_ADDRESS_BYTES];
    gkx_dirmsg_address_format (address, config->directory_listen,
                               gkx_identity_curve_public (identity));
    s_log ("info", "serving %zu cards at %s", self->cards_count, address);
    return GKX_OK;
}

/* Connects to the directories of publish_to and wants the card (or the
   withdrawal the store remembers) delivered. */
static int
s_publish_open (gkx_directory_t *self, char *errbuf)
{
    const gkx_config_t *config = gkx_node_config (self->node);
    self->links = gkx_zalloc ((config->directory_publish_to_count + 1) * sizeof *self->links);
    for (size_t i = 0; i < config->directory_publish_to_count; i++) {
        s_link_t *link = &self->links[self->links_count];
        const char *address = config->directory_publish_to[i];
        if (gkx_dirmsg_address_parse (link->endpoint, link->key, address, errbuf) != GKX_OK) {
            return GKX_ECONFIG;
        }
        snprintf (link->address, sizeof link->address, "%s", address);
        link->dealer = s_dealer_new (self->node, link->endpoint, link->key);
        if (!link->dealer) {
            return gkx_fail (errbuf, GKX_EIO, "directory: cannot connect to %s", link->endpoint);
        }
        zloop_reader (self->loop, link->dealer, s_on_answer, self);
        self->links_count++;
    }
    self->withdrawn_ms = gkx_store_directory_withdrawn (gkx_node_store (self->node));
    if (self->withdrawn_ms) {
        /* Signatures are deterministic: the same withdrawal, byte for byte. */
        gkx_withdrawal_t *w = gkx_withdrawal_new (gkx_node_identity (self->node),
                                                  self->withdrawn_ms);
        size_t len;
        const uint8_t *bytes = gkx_withdrawal_bytes (w, &len);
        s_want (self, GKX_DIRMSG_WITHDRAW, bytes, len);
        gkx_withdrawal_destroy (&w);
    }
    else {
        self->listing = s_card_copy (gkx_node_card (self->node));
        s_want_listing (self);
    }
    self->timer_id = zloop_timer (self->loop, S_TICK_MS, 0, s_on_tick, self);
    return GKX_OK;
}

int
gkx_directory_open (gkx_directory_t **self_p, gkx_node_t *node, char *errbuf)
{
    assert (self_p && node);
    gkx_directory_t *self = gkx_zalloc (sizeof *self);
    self->node = node;
    self->loop = gkx_node_loop (node);
    self->timer_id = -1;
    const gkx_config_t *config = gkx_node_config (node);
    int rc = GKX_OK;
    if (config->directory_serve) {
        rc = s_serve_open (self, errbuf);
    }
    if (rc == GKX_OK) {
        rc = s_publish_open (self, errbuf);
    }
    if (rc != GKX_OK) {
        gkx_directory_close (&self);
        return rc;
    }
    *self_p = self;
    return GKX_OK;
}

void
gkx_directory_close (gkx_directory_t **self_p)
{
    if (!self_p || !*self_p) {
        return;
    }
    gkx_directory_t *self = *self_p;
    if (self->timer_id >= 0) {
        zloop_timer_end (self->loop, self->timer_id);
    }
    for (size_t i = 0; i < self->links_count; i++) {
        zloop_reader_end (self->loop, self->links[i].dealer);
        zsock_destroy (&self->links[i].dealer);
    }
    gkx_free (self->links);
    if (self->router) {
        zloop_reader_end (self->loop, self->router);
        zsock_destroy (&self->router);
    }
    s_cards_free (&self->cards, &self->cards_count);
    s_cards_free (&self->fetched, &self->fetched_count);
    gkx_card_destroy (&self->listing);
    gkx_free (self->want);
    gkx_free (self);
    *self_p = NULL;
}

/* One directory asked by a listing. */
typedef struct {
    zsock_t *dealer;
    uint64_t rid;
    int done;               /* answered, or gave up */
    size_t cards;           /* cards that verified and matched */
    size_t refused;         /* cards that did not */
    int truncated;          /* the directory holds more matches than it sent */
    char error[GKX_ERRBUF_BYTES];   /* why no list came, "" */
} s_ask_t;

/* What a listing hands to the loop: the cards to keep. */
typedef struct {
    gkx_directory_t *self;
    gkx_card_t **cards;
    size_t count;
} s_keep_t;

/* On the loop: keeps the cards of a listing for gkx_directory_resolve. */
static int
s_keep_fn (gkx_node_t *node, void *arg)
{
    (void) node;
    s_keep_t *keep = arg;
    gkx_directory_t *self = keep->self;
    if (self->fetched_count + keep->count > GKX_DIRECTORY_FETCHED_MAX) {
        s_cards_free (&self->fetched, &self->fetched_count);
    }
    for (size_t i = 0; i < keep->count && self->fetched_count < GKX_DIRECTORY_FETCHED_MAX; i++) {
        s_cards_put (&self->fetched, &self->fetched_count, keep->cards[i]);
    }
    return GKX_OK;
}

/* Reads one directory's answer to a listing into the merged cards. */
static void
s_ask_read (s_ask_t *ask, const gkx_dirmsg_filter_t *filter, gkx_card_t ***cards_p,
            size_t *count_p)
{
    zframe_t **frames = gkx_zalloc (S_ANSWER_FRAMES * sizeof *frames);
    int excess = 0;
    size_t count = s_recv_bounded (ask->dealer, frames, S_ANSWER_FRAMES, &excess);
    gkx_dirmsg_t answer;
    char errbuf[GKX_ERRBUF_BYTES] = "";
    int rc = count > 0 ? gkx_dirmsg_decode (&answer, zframe_data (frames[0]),
                                            zframe_size (frames[0]), errbuf)
                       : GKX_EDECODE;
    if (rc != GKX_OK || answer.rid != ask->rid) {
        /* Not the answer to this listing: keep waiting. */
        s_frames_destroy (frames, count);
        gkx_free (frames);
        return;
    }
    ask->done = 1;
    ask->truncated = answer.type == GKX_DIRMSG_CARDS && answer.truncated;
    if (answer.type == GKX_DIRMSG_ERROR) {
        snprintf (ask->error, sizeof ask->error, "%s: %.200s", answer.code, answer.message);
    }
    else if (answer.type != GKX_DIRMSG_CARDS || answer.count != count - 1 || excess) {
        snprintf (ask->error, sizeof ask->error, "the directory's answer is malformed");
    }
    for (size_t i = 1; i < count && !ask->error[0]; i++) {
        gkx_card_t *card = NULL;
        if (gkx_card_decode (&card, zframe_data (frames[i]), zframe_size (frames[i]), NULL)
                != GKX_OK
            || !gkx_dirmsg_filter_is_matching (filter, card)) {
            ask->refused++;
        }
        else {
            ask->cards++;
            s_cards_put (cards_p, count_p, card);
        }
        gkx_card_destroy (&card);
    }
    for (char *p = ask->error; *p; p++) {
        *p = (unsigned char) *p < 0x20 || (unsigned char) *p == 0x7f ? ' ' : *p;
    }
    s_frames_destroy (frames, count);
    gkx_free (frames);
}

/* Orders cards by name, then id. */
static int
s_card_compare (const void *a, const void *b)
{
    const gkx_card_t *x = *(gkx_card_t *const *) a;
    const gkx_card_t *y = *(gkx_card_t *const *) b;
    int c = strcmp (gkx_card_name (x), gkx_card_name (y));
    return c ? c : memcmp (gkx_card_id (x), gkx_card_id (y), GKX_ID_BYTES);
}

json_t *
gkx_directory_list (gkx_directory_t *self, const gkx_dirmsg_filter_t *filter)
{
    assert (self && filter);
    size_t n = self->links_count;
    s_ask_t *asks = gkx_zalloc ((n ? n : 1) * sizeof *asks);
    zmq_pollitem_t *items = gkx_zalloc ((n ? n : 1) * sizeof *items);
    msgpack_sbuffer header;
    for (size_t i = 0; i < n; i++) {
        s_ask_t *ask = &asks[i];
        ask->rid = s_rid ();
        ask->dealer = s_dealer_new (self->node, self->links[i].endpoint, self->links[i].key);
        msgpack_sbuffer_init (&header);
        gkx_dirmsg_list_encode (&header, ask->rid, filter);
        if (!ask->dealer || s_send (ask->dealer, NULL, &header, NULL, 0) != 0) {
            ask->done = 1;
            snprintf (ask->error, sizeof ask->error, "cannot connect");
        }
        msgpack_sbuffer_destroy (&header);
        items[i].socket = ask->dealer ? zsock_resolve (ask->dealer) : NULL;
        items[i].events = ZMQ_POLLIN;
    }
    gkx_card_t **cards = NULL;
    size_t count = 0;
    uint64_t deadline = s_now_ms () + GKX_DIRECTORY_LIST_TIMEOUT_MS;
    for (;;) {
        size_t waiting = 0;
        for (size_t i = 0; i < n; i++) {
            items[i].events = asks[i].done ? 0 : ZMQ_POLLIN;
            items[i].revents = 0;
            waiting += !asks[i].done;
        }
        uint64_t now = s_now_ms ();
        if (waiting == 0 || now >= deadline) {
            break;
        }
        if (zmq_poll (items, (int) n, (long) (deadline - now)) < 0 && zmq_errno () != EINTR) {
            break;
        }
        for (size_t i = 0; i < n; i++) {
            if (items[i].revents & ZMQ_POLLIN) {
                s_ask_read (&asks[i], filter, &cards, &count);
            }
        }
    }
    if (count > 1) {
        qsort (cards, count, sizeof *cards, s_card_compare);
    }
    json_t *rows = json_array ();
    for (size_t i = 0; i < count; i++) {
        json_array_append_new (rows, gkx_card_to_json (cards[i]));
    }
    json_t *directories = json_array ();
    for (size_t i = 0; i < n; i++) {
        s_ask_t *ask = &asks[i];
        if (!ask->done) {
            snprintf (ask->error, sizeof ask->error, "no answer within %d ms",
                      GKX_DIRECTORY_LIST_TIMEOUT_MS);
        }
        json_t *row = json_pack ("{s:s, s:b, s:I, s:I, s:b}", "address", self->links[i].address,
                                 "ok", !ask->error[0], "cards", (json_int_t) ask->cards,
                                 "refused", (json_int_t) ask->refused, "truncated",
                                 ask->truncated);
        json_object_set_new (row, "error", ask->error[0] ? json_string (ask->error) : json_null ());
        json_array_append_new (directories, row);
        zsock_destroy (&ask->dealer);
    }
    s_keep_t keep = {self, cards, count};
    if (count > 0) {
        /* The node may be stopping: then the cards are simply not kept. */
        (void) gkx_node_call (self->node, s_keep_fn, &keep);
    }
    s_cards_free (&cards, &count);
    gkx_free (items);
    gkx_free (asks);
    return json_pack ("{s:o, s:o}", "cards", rows, "directories", directories);
}

int
gkx_directory_withdraw (gkx_directory_t *self, uint64_t *time_p, char *errbuf)
{
    assert (self);
    /* Later than the card listed, even if the clock went back. */
    uint64_t now = s_now_ms ();
    if (self->listing && now <= gkx_card_timestamp (self->listing)) {
        now = gkx_card_timestamp (self->listing) + 1;
    }
    if (now <= self->withdrawn_ms) {
        now = self->withdrawn_ms + 1;
    }
    int rc = gkx_store_directory_set_withdrawn (gkx_node_store (self->node), now, errbuf);
    if (rc != GKX_OK) {
        return rc;
    }
    self->withdrawn_ms = now;
    gkx_card_destroy (&self->listing);
    gkx_withdrawal_t *w = gkx_withdrawal_new (gkx_node_identity (self->node), now);
    size_t len;
    const uint8_t *bytes = gkx_withdrawal_bytes (w, &len);
    s_want (self, GKX_DIRMSG_WITHDRAW, bytes, len);
    gkx_withdrawal_destroy (&w);
    s_log ("info", "card withdrawn; sending the withdrawal to %zu directories",
           self->links_count);
    s_on_tick (self->loop, self->timer_id, self);
    if (time_p) {
        *time_p = now;
    }
    return GKX_OK;
}

int
gkx_directory_publish (gkx_directory_t *self, char *errbuf)
{
    assert (self);
    const gkx_config_t *c = gkx_node_config (self->node);
    /* A card later than the withdrawal, so that directories take it. */
    uint64_t now = s_now_ms ();
    if (now <= self->withdrawn_ms) {
        now = self->withdrawn_ms + 1;
    }
    if (self->listing && now <= gkx_card_timestamp (self->listing)) {
        now = gkx_card_timestamp (self->listing) + 1;
    }
    gkx_card_info_t info = {c->role, c->name, c->advertise, c->email,
                            (const char **) c->verticals, c->verticals_count,
                            (const char **) c->countries, c->countries_count, now};
    gkx_card_t *card = NULL;
    int rc = gkx_card_issue (&card, gkx_node_identity (self->node), &info, errbuf);
    if (rc == GKX_OK) {
        rc = gkx_store_directory_set_withdrawn (gkx_node_store (self->node), 0, errbuf);
    }
    if (rc != GKX_OK) {
        gkx_card_destroy (&card);
        return rc;
    }
    self->withdrawn_ms = 0;
    gkx_card_destroy (&self->listing);
    self->listing = card;
    s_want_listing (self);
    s_log ("info", "card listed again; publishing to %zu directories", self->links_count);
    s_on_tick (self->loop, self->timer_id, self);
    return GKX_OK;
}

int
gkx_directory_is_pending (gkx_directory_t *self)
{
    for (size_t i = 0; i < self->links_count; i++) {
        if (!self->links[i].answered && self->links[i].failures == 0) {
            return 1;
        }
    }
    return 0;
}

json_t *
gkx_directory_state_json (gkx_directory_t *self)
{
    json_t *rows = json_array ();
    for (size_t i = 0; i < self->links_count; i++) {
        const s_link_t *link = &self->links[i];
        json_t *row = json_pack ("{s:s, s:s, s:b}", "address", link->address, "state",
                                 link->answered ? "done" : "pending", "ok",
                                 link->answered && link->ok);
        json_object_set_new (row, "error",
                             link->error[0] ? json_string (link->error) : json_null ());
        json_array_append_new (rows, row);
    }
    json_t *state = json_pack ("{s:b, s:o}", "listed", self->withdrawn_ms == 0, "directories",
                               rows);
    json_object_set_new (state, "withdrawn",
                         self->withdrawn_ms ? json_integer ((json_int_t) self->withdrawn_ms)
                                            : json_null ());
    return state;
}

/* Collects the peers whose ids start with a prefix. */
typedef struct {
    const char *prefix;         /* lowercase hex */
    size_t prefix_len;
    uint8_t id[GKX_ID_BYTES];   /* the first match */
    size_t matches;             /* 0, 1, or 2 for two distinct ids or more */
} s_match_t;

/* Notes an id that starts with the prefix: the first one is kept, and any
   other id makes the prefix ambiguous (the same id seen again, as a peer
   and in a listing, does not). */
static void
s_match_id (s_match_t *match, const uint8_t id[GKX_ID_BYTES])
{
    char text[GKX_ID_TEXT_BYTES];
    gkx_id_format (text, id);
    if (strncmp (text, match->prefix, match->prefix_len) != 0) {
        return;
    }
    if (match->matches == 0) {
        memcpy (match->id, id, GKX_ID_BYTES);
        match->matches = 1;
    }
    else if (memcmp (match->id, id, GKX_ID_BYTES) != 0) {
        match->matches = 2;
    }
}

/* Visits a peer's card for a prefix match. */
static int
s_match_peer (const gkx_card_t *card, void *arg)
{
    s_match_id (arg, gkx_card_id (card));
    return 0;
}

int
gkx_directory_resolve (gkx_directory_t *self, gkx_node_t *node, const char *text,
                       uint8_t id[GKX_ID_BYTES], char *errbuf)
{
    assert (node && text && id);
    size_t len = strlen (text);
    int is_hex = len > 0 && strspn (text, "0123456789abcdefABCDEF") == len;
    if (len == 2 * GKX_ID_BYTES && is_hex) {
        int rc = gkx_id_parse (id, text, errbuf);
        if (rc != GKX_OK) {
            return rc;
        }
    }
    else if (!self || !is_hex || len < GKX_DIRECTORY_PREFIX_MIN || len > 2 * GKX_ID_BYTES) {
        return gkx_fail (errbuf, GKX_EINVAL,
                         "publisher \"%.80s\": expected a node id (64 hex digits)%s", text,
                         self ? " or a prefix of at least 8 of them (gkx publishers)" : "");
    }
    else {
        char prefix[GKX_ID_TEXT_BYTES];
        for (size_t i = 0; i <= len; i++) {
            prefix[i] = (char) (text[i] >= 'A' && text[i] <= 'F' ? text[i] - 'A' + 'a' : text[i]);
        }
        s_match_t match = {prefix, len, {0}, 0};
        gkx_store_peers (gkx_node_store (node), s_match_peer, &match);
        for (size_t i = 0; i < self->fetched_count; i++) {
            s_match_id (&match, gkx_card_id (self->fetched[i]));
        }
        if (match.matches == 0) {
            return gkx_fail (errbuf, GKX_ENOTFOUND,
                             "no publisher %s among the peers or the last listing (gkx "
                             "publishers)",
                             prefix);
        }
        if (match.matches > 1) {
            return gkx_fail (errbuf, GKX_EINVAL,
                             "publisher %s: the prefix names more than one node; give more "
                             "digits",
                             prefix);
        }
        memcpy (id, match.id, GKX_ID_BYTES);
    }
    if (!self) {
        return GKX_OK;
    }
    size_t i = s_cards_find (self->fetched, self->fetched_count, id);
    if (i == self->fetched_count) {
        return GKX_OK;
    }
    /* The node keeps the newer of a peer's card and the fetched one. */
    gkx_card_t *peer = NULL;
    int known = gkx_store_peer_get (gkx_node_store (node), id, &peer) == GKX_OK;
    int newer = !known || gkx_card_timestamp (peer) < gkx_card_timestamp (self->fetched[i]);
    gkx_card_destroy (&peer);
    if (newer) {
        int rc = gkx_node_peer_add (node, self->fetched[i], errbuf);
        if (rc != GKX_OK) {
            return rc;
        }
        char short_id[13];
        s_log ("info", "peer %s (%s) added from a directory's card",
               gkx_card_name (self->fetched[i]), s_short (id, short_id));
    }
    return GKX_OK;
}
