/*  node - gkxd's core: the event loop that owns the store and the links.
    Part of gokart-exchange; MIT licence.

    One thread, the node's event loop (CZMQ zloop), owns the store, the
    replication sockets and the timers. Every write to the store happens on
    it: an HTTP handler thread that needs the store hands a function to the
    loop with gkx_node_call and waits for its result, so LMDB sees one
    writer and replication pushes happen right after each commit.

    Replication (docs/protocol.md): the node binds one ROUTER (CURVE server,
    ZAP handler that admits only known peers' transport keys) and connects a
    DEALER (CURVE client) to each peer. It pushes its own chain entries,
    acknowledges what it receives with its heads, catches up on connect and
    appends ack entries a moment after new counterparty entries arrive.
*/
#ifndef GKX_NODE_H_INCLUDED
#define GKX_NODE_H_INCLUDED

#include <gkx/card.h>
#include <gkx/config.h>
#include <gkx/error.h>
#include <gkx/identity.h>
#include <gkx/store.h>

#include <czmq.h>
#include <jansson.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct gkx_node gkx_node_t;

/* Opens the node of directory dir: configuration, keys, card, store,
   replication sockets. Does not start the loop. Returns GKX_OK, or the
   failing part's code with errbuf saying what (for example a port in use). */
GKX_NODISCARD int gkx_node_open (gkx_node_t **self_p, const char *dir, char *errbuf);

/* Runs the event loop until gkx_node_stop (or SIGTERM/SIGINT, which main
   turns into gkx_node_stop). Returns GKX_OK after a clean stop. */
int gkx_node_run (gkx_node_t *self);

/* Asks the loop to stop after the work in hand; safe from any thread and
   from a signal handler. */
void gkx_node_stop (gkx_node_t *self);

/* Closes sockets and the store; accepts NULL; sets *self_p to NULL. */
void gkx_node_close (gkx_node_t **self_p);

/* A function run on the loop thread by gkx_node_call. */
typedef int (gkx_node_fn) (gkx_node_t *node, void *arg);

/* Runs fn (node, arg) on the loop thread and returns its result; the
   caller's thread waits as long as the loop takes. Safe from any thread
   (on the loop's own it simply calls fn). A call made before gkx_node_run
   starts the loop waits for it up to 5 seconds. Returns GKX_ESTORE if the
   loop has ended, does not start in time, or stops before it starts the
   call; fn then never runs. */
int gkx_node_call (gkx_node_t *self, gkx_node_fn *fn, void *arg);

/* The node's parts. The store may be used only on the loop thread (inside
   gkx_node_call); the others are read-only after open. */
gkx_store_t *gkx_node_store (gkx_node_t *self);
const gkx_identity_t *gkx_node_identity (gkx_node_t *self);
const gkx_config_t *gkx_node_config (gkx_node_t *self);
const gkx_card_t *gkx_node_card (gkx_node_t *self);
const char *gkx_node_dir (gkx_node_t *self);

/* On the loop: appends a local entry and pushes it to the counterparty.
   Returns as gkx_store_append. *entry_p (may be NULL) gets the entry. */
int gkx_node_append (gkx_node_t *self, const uint8_t pid[GKX_ID_BYTES], int kind,
                     const uint8_t *body, size_t body_len, gkx_entry_t **entry_p,
                     char *errbuf);

/* On the loop: shares an offer (canonical offer and policy values) with a
   known publisher peer, writing the genesis, and pushes it. Returns
   GKX_OK with pid set, GKX_ENOTFOUND (not a known peer), GKX_EINVAL (the
   peer is not a publisher, or this node is not an advertiser), or as
   gkx_store_share. */
int gkx_node_share (gkx_node_t *self, const uint8_t publisher[GKX_ID_BYTES],
                    const uint8_t *offer, size_t offer_len, const uint8_t *policy,
                    size_t policy_len, uint8_t pid[GKX_ID_BYTES], char *errbuf);

/* On the loop: adds or replaces a peer from its verified card and connects
   to it. Returns GKX_OK, GKX_EINVAL (the card is this node's own, or of the
   same role) or a store error. */
int gkx_node_peer_add (gkx_node_t *self, const gkx_card_t *card, char *errbuf);

/* From any thread: writes the conversion of one postback (item filled as
   gkx_store_convert documents) and waits until it is committed, together
   with the postbacks other threads hand over meanwhile (group commit),
   then pushes it to the publisher. A total budget spent pauses the offer.
   Returns GKX_OK when the batch committed (item->rc then says what
   happened to this postback), else an error: nothing was written, and a
   retry is safe. */
int gkx_node_convert (gkx_node_t *self, gkx_store_convert_t *item);

/* The webhook delivery thread (include/gkx/webhook.h), set by gkxd's main
   before the loop runs and cleared after it stopped; NULL when the node
   has no [webhook] url. The loop kicks it when conversions arrive. */
typedef struct gkx_webhook gkx_webhook_t;
void gkx_node_set_webhook (gkx_node_t *self, gkx_webhook_t *webhook);
gkx_webhook_t *gkx_node_webhook (gkx_node_t *self);

/* The directory module (include/gkx/directory.h), set by gkxd's main before
   the loop runs and cleared before it closes the module; the API lists
   publishers and withdraws the card through it. NULL when not set. */
typedef struct gkx_directory gkx_directory_t;
void gkx_node_set_directory (gkx_node_t *self, gkx_directory_t *directory);
gkx_directory_t *gkx_node_directory (gkx_node_t *self);

/* The postback endpoint (include/gkx/intake.h), set by gkxd's main before
   the loop runs and cleared before it closes the endpoint; NULL when the
   node serves no postbacks. Read on the loop: GET /metrics counts the
   postbacks by the answers it gave. */
typedef struct gkx_intake gkx_intake_t;
void gkx_node_set_intake (gkx_node_t *self, gkx_intake_t *intake);
gkx_intake_t *gkx_node_intake (gkx_node_t *self);

/* The e-mail thread (include/gkx/notifier.h), set by gkxd's main before
   the loop runs and cleared before it stops the thread; NULL when the node
   sends no e-mail. Read on the loop: GET /metrics counts its attempts. */
typedef struct gkx_notifier gkx_notifier_t;
void gkx_node_set_notifier (gkx_node_t *self, gkx_notifier_t *notifier);
gkx_notifier_t *gkx_node_notifier (gkx_node_t *self);

/* The node's event loop, for modules that add their own sockets and
   timers (a directory, a notifier's timer). Register from gkxd's main
   before gkx_node_run, or from the loop itself (inside gkx_node_call);
   handlers then run on the loop thread, which owns the store. */
zloop_t *gkx_node_loop (gkx_node_t *self);

/* When the node opened, in milliseconds since the epoch. */
uint64_t gkx_node_started_ms (gkx_node_t *self);

/* On the loop: replication counters as JSON: entries appended and
   ingested, duplicates, bad frames, and refusals by GKX_E* name. */
json_t *gkx_node_stats_json (gkx_node_t *self);

/* On the loop: the peers as JSON, [{"id", "name", "role", "endpoint",
   "connected", "lag_entries", "lag_seconds", "last_seen_seconds_ago"},
   ...] (the caller's). lag_entries counts this node's entries the peer has
   not acknowledged; lag_seconds is the age of the oldest of them, 0 when
   there is none. */
json_t *gkx_node_peers_json (gkx_node_t *self);

/* On the loop: the name the node knows for member id (its own name, or the
   peer's card name), or "" when unknown. Borrowed until the next call. */
const char *gkx_node_member_name (gkx_node_t *self, const uint8_t id[GKX_ID_BYTES]);

#ifdef __cplusplus
}
#endif

#endif
