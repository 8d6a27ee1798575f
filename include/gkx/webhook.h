/*  webhook - a publisher node's deliveries to its own system (Standard Webhooks).
    Part of gokart-exchange; MIT licence.

    When the advertiser's conversion and status entries reach a publisher
    node whose configuration has a [webhook] url, the store queues one
    delivery per entry in the transaction that ingests it, so none is lost
    across restarts. One thread per node turns each due delivery into an
    HTTP POST to that url, signed the Standard Webhooks way (webhook-id,
    webhook-timestamp and webhook-signature headers: docs/webhooks.md), and
    records every attempt in the store: a 2xx answer delivers it, anything
    else schedules it again after a back-off that doubles from 1 s to 300 s,
    forever. The thread reads and writes the store only through
    gkx_node_call; the HTTP request runs off the loop.

    The signing functions are pure (no I/O, no node) and usable on their
    own, for example by a test receiver.
*/
#ifndef GKX_WEBHOOK_H_INCLUDED
#define GKX_WEBHOOK_H_INCLUDED

#include <gkx/error.h>
#include <gkx/node.h>

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* What a secret's text starts with. */
#define GKX_WEBHOOK_SECRET_PREFIX "whsec_"
/* Fewest and most bytes of a secret key (after base64 decoding). */
#define GKX_WEBHOOK_KEY_MIN_BYTES 24
#define GKX_WEBHOOK_KEY_MAX_BYTES 64
/* Buffer size of a signature: "v1," and the base64 of an HMAC-SHA256, NUL. */
#define GKX_WEBHOOK_SIGNATURE_BYTES 48
/* Deliveries fetched from the store at a time. */
#define GKX_WEBHOOK_BATCH_MAX 32
/* Back-off after the first failed attempt, and its ceiling (ms). */
#define GKX_WEBHOOK_BACKOFF_MIN_MS 1000
#define GKX_WEBHOOK_BACKOFF_MAX_MS 300000
/* How long one POST may take, all in (ms). */
#define GKX_WEBHOOK_TIMEOUT_MS 10000
/* Event types, the body's "type". */
#define GKX_WEBHOOK_TYPE_CREATED "conversion.created"
#define GKX_WEBHOOK_TYPE_STATUS "conversion.status_changed"

typedef struct gkx_webhook gkx_webhook_t;

/* Decodes a Standard Webhooks secret, "whsec_" followed by the standard
   base64 (with padding) of 24 to 64 bytes, into key (room for
   GKX_WEBHOOK_KEY_MAX_BYTES) and *len_p. Returns GKX_OK, or GKX_EINVAL with
   errbuf naming the rule broken; the outputs are written only on success,
   and no message ever quotes the secret. */
GKX_NODISCARD int gkx_webhook_secret_parse (uint8_t key[GKX_WEBHOOK_KEY_MAX_BYTES], size_t *len_p,
                                            const char *text, char *errbuf);

/* Writes into out (out_size bytes, at least GKX_WEBHOOK_SIGNATURE_BYTES)
   the Standard Webhooks signature "v1,BASE64" of a message: HMAC-SHA256
   under key (any length) of msg_id "." timestamp (decimal Unix seconds)
   "." body. Returns GKX_OK, or GKX_ETOOBIG when out is too small (out is
   then left as it was). */
GKX_NODISCARD int gkx_webhook_sign (char *out, size_t out_size, const uint8_t *key, size_t key_len,
                                    const char *msg_id, uint64_t timestamp, const char *body,
                                    size_t body_len);

/* Returns the delay before the next attempt of a delivery that has failed
   after attempts attempts (at least 1): 1 s doubling per attempt, at most
   300 s. The worker adds up to a tenth more at random, so that many
   deliveries failing together do not come back together. */
uint64_t gkx_webhook_backoff_ms (uint32_t attempts);

/* Starts the delivery thread of node: POSTs to url (http:// or https://)
   signed with secret (as gkx_webhook_secret_parse reads it). Call it after
   gkx_node_open, before or after the loop starts: the thread waits for the
   loop to run before its first delivery. The node must outlive it.
   Returns GKX_OK with *self_p set, GKX_EINVAL (the url or the secret; errbuf
   says which, never quoting the secret) or GKX_EIO (libcurl or the thread
   cannot start). */
GKX_NODISCARD int gkx_webhook_start (gkx_webhook_t **self_p, gkx_node_t *node, const char *url,
                                     const char *secret, char *errbuf);

/* Tells the thread that deliveries were queued (or replayed), so that it
   looks for due ones now rather than at its next check. Cheap and safe from
   any thread, the loop's included. */
void gkx_webhook_kick (gkx_webhook_t *self);

/* Attempts made since the thread started: answered with a 2xx
   (delivered), or failed (another status, or no answer). An attempt that
   gkx_webhook_stop abandons is not counted. */
typedef struct {
    uint64_t delivered;
    uint64_t failed;
} gkx_webhook_stats_t;

/* Copies the attempt counters into *out. Safe from any thread. */
void gkx_webhook_stats (gkx_webhook_t *self, gkx_webhook_stats_t *out);

/* Stops the thread, abandoning a request in flight (the delivery stays due,
   so it is sent again later: deliveries are at least once), waits for it
   and frees everything. Returns within about a second. Call it from any
   thread but the node's loop (the thread may be waiting for the loop),
   typically after gkx_node_run returned. Accepts NULL; sets *self_p to
   NULL. */
void gkx_webhook_stop (gkx_webhook_t **self_p);

/* On the loop: the deliveries of node's store, newest first, at most limit
   of them, as GET /v1/deliveries answers: {"deliveries": [D...]} with D =
   {"id", "partnership", "seq", "event_type", "conversion", "attempts",
   "last_status", "last_error", "created", "last_attempt", "next_attempt",
   "delivered"} (docs/api.md). A new reference the caller owns, or NULL when
   the store fails. */
json_t *gkx_webhook_deliveries_json (gkx_node_t *node, size_t limit);

/* On the loop: queues delivery id again, due now, even if it was
   delivered already (its "delivered" time stays the first delivery's), and
   kicks the thread self. *delivery_p gets its D record (the caller's).
   Returns GKX_OK, GKX_ENOTFOUND (no such delivery), GKX_EINVAL (self is
   NULL: the node has no [webhook] url) or GKX_ESTORE, with errbuf. */
GKX_NODISCARD int gkx_webhook_replay (gkx_node_t *node, gkx_webhook_t *self, uint64_t id,
                                      json_t **delivery_p, char *errbuf);

#ifdef __cplusplus
}
#endif

#endif
