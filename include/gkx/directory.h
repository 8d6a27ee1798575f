/*  directory - partner discovery: a node as a directory, and as its client.
    Part of gokart-exchange; MIT licence.

    A directory lists the signed tenant cards nodes publish to it, so an
    advertiser can find publishers (docs/protocol.md, "Directory"). It can
    drop a card but cannot forge one: every card is verified where it is
    stored and again where it is listed.

    The serving side, with [directory] serve = true: a ROUTER bound at
    [directory] listen, CURVE server with the node's transport key (so the
    directory's address is that endpoint and the node's transport key), in
    the ZAP domain GKX_DIRECTORY_ZAP_DOMAIN, which admits any client key.
    It keeps the newest card per id and the owners' withdrawals in the store
    (gkx_store_directory_*), and answers publish, list and withdraw.

    The client side, with [directory] publish_to: a DEALER to each directory
    on the node's loop publishes the node's card at start, again when it
    changes and every GKX_DIRECTORY_REFRESH_MS, and retries with backoff
    while a directory does not answer. gkx card withdraw sends a signed
    withdrawal instead, and the node publishes no more (also after a
    restart) until gkx card publish. Listing runs on the caller's thread
    with sockets of its own, so the loop never waits for a directory.

    Threads: open and close run on gkxd's main thread around gkx_node_run;
    gkx_directory_list on any thread but the loop's; the others on the loop
    (inside gkx_node_call).
*/
#ifndef GKX_DIRECTORY_H_INCLUDED
#define GKX_DIRECTORY_H_INCLUDED

#include <gkx/dirmsg.h>
#include <gkx/error.h>
#include <gkx/node.h>

#include <jansson.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The ZAP domain of a directory's ROUTER: any CURVE client is admitted. */
#define GKX_DIRECTORY_ZAP_DOMAIN "gkx-directory"
/* How long a listing waits for the directories' answers (ms). */
#define GKX_DIRECTORY_LIST_TIMEOUT_MS 3000
/* How long the loop waits for a directory's answer before it counts the
   attempt as failed and retries (ms). */
#define GKX_DIRECTORY_ANSWER_TIMEOUT_MS 3000
/* How often a directory that answered is sent the card again, so that a
   directory which lost its store lists the node again (ms). */
#define GKX_DIRECTORY_REFRESH_MS (10 * 60 * 1000)
/* Most cards a directory holds; a card of a new id is refused past it. */
#define GKX_DIRECTORY_MAX_CARDS 10000
/* Most cards a node keeps from its listings, for gkx share. */
#define GKX_DIRECTORY_FETCHED_MAX 4096
/* Fewest hex digits of an id prefix gkx_directory_resolve takes. */
#define GKX_DIRECTORY_PREFIX_MIN 8

typedef struct gkx_directory gkx_directory_t;

/* Opens the directory parts the node's configuration asks for (none is
   fine: the module then lists nothing and resolves full ids only) and
   registers their sockets and timer on the node's loop. Call from gkxd's
   main after gkx_node_open and before gkx_node_run. Returns GKX_OK,
   GKX_EIO (the directory cannot bind its endpoint, or a socket cannot be
   made), GKX_ECONFIG (a publish_to address the configuration should have
   refused) or GKX_ESTORE, with errbuf saying what; *self_p is set only on
   success. */
GKX_NODISCARD int gkx_directory_open (gkx_directory_t **self_p, gkx_node_t *node,
                                      char *errbuf);

/* Takes the sockets and the timer off the loop and closes them. Call after
   gkx_node_run returned and the API is closed, before gkx_node_close.
   Accepts NULL; sets *self_p to NULL. */
void gkx_directory_close (gkx_directory_t **self_p);

/* From any thread but the loop's: asks every directory of publish_to for
   the cards matching filter, waits for the answers at most
   GKX_DIRECTORY_LIST_TIMEOUT_MS, verifies each card's signature and the
   filter again, and keeps the newest card per id. The loop then keeps the
   cards for gkx_directory_resolve. Returns a new JSON object (the
   caller's): {"cards": [card JSON (gkx_card_to_json)...] sorted by name,
   "directories": [{"address", "ok", "cards", "refused", "truncated",
   "error"}...]}, where refused counts the cards that did not verify or
   match, truncated says the directory holds more matches than one answer
   carries (GKX_DIRMSG_MAX_CARDS), and error is null or why the directory
   gave no list. */
json_t *gkx_directory_list (gkx_directory_t *self, const gkx_dirmsg_filter_t *filter);

/* On the loop: withdraws this node's card: signs a withdrawal at the
   current time, records it in the store (so the node publishes its card
   no more, also after a restart) and sends it to every directory, again
   until each answers. Returns GKX_OK or GKX_ESTORE; *time_p (may be NULL)
   gets the withdrawal's time. */
int gkx_directory_withdraw (gkx_directory_t *self, uint64_t *time_p, char *errbuf);

/* On the loop: lists this node again after a withdrawal: clears it in the
   store, issues a card later than it, and publishes that card to every
   directory. Returns GKX_OK, GKX_EINVAL (the configuration no longer makes
   a valid card) or GKX_ESTORE. */
int gkx_directory_publish (gkx_directory_t *self, char *errbuf);

/* On the loop: 1 while a directory has neither answered the current
   message (card or withdrawal) nor failed a try at it yet, else 0. */
int gkx_directory_is_pending (gkx_directory_t *self);

/* On the loop: the client side's state as a new JSON object: {"listed":
   bool, "withdrawn": time or null, "directories": [{"address", "state":
   "pending" | "done", "ok": bool, "error": text or null}...]}. */
json_t *gkx_directory_state_json (gkx_directory_t *self);

/* On the loop: finds the publisher text names, a node id (64 hex digits)
   or a unique prefix of at least GKX_DIRECTORY_PREFIX_MIN hex digits of an
   id among the node's peers and the cards its listings fetched, and writes
   its id. A card fetched from a directory, of a node not yet a peer or
   newer than the peer's, is added as a peer (gkx_node_peer_add) first.
   self may be NULL (no directory module): then only a full id is taken, as
   it is. Returns GKX_OK, GKX_EINVAL (not an id or prefix, an ambiguous
   prefix, or a card that cannot be a peer) or GKX_ENOTFOUND, with errbuf
   saying which. */
int gkx_directory_resolve (gkx_directory_t *self, gkx_node_t *node, const char *text,
                           uint8_t id[GKX_ID_BYTES], char *errbuf);

#ifdef __cplusplus
}
#endif

#endif
