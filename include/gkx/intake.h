/*  intake - the advertiser node's postback endpoint.
    Part of gokart-exchange; MIT licence.

    An MMP on the internet calls GET /postback/MMP?p=SHORT_ID&t=TOKEN&...
    on [postback] listen, a server of its own beside the tenant API. The
    intake checks, in this order, the source address ([postback]
    allow_from), the query (gkx_postback_parse), the token (constant time)
    and the partnership's short id, then hands the postback to the node's
    loop (gkx_node_convert), which commits it with every other postback
    waiting in one durable transaction before the answer is sent. A 5xx
    answer means nothing was committed, so the MMP's retry is safe; a retry
    of a committed postback gets the same answer and conversion id.
    docs/postbacks.md is the user's guide.
*/
#ifndef GKX_INTAKE_H_INCLUDED
#define GKX_INTAKE_H_INCLUDED

#include <gkx/error.h>
#include <gkx/node.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct gkx_intake gkx_intake_t;

/* Starts serving postbacks for node on its configuration's [postback]
   listen address, with the token of DIR/postback.token (created when
   missing). Sets *self_p only on success. Returns GKX_OK, or GKX_EIO /
   GKX_EINVAL with errbuf naming the problem (a port in use). */
GKX_NODISCARD int gkx_intake_open (gkx_intake_t **self_p, gkx_node_t *node, char *errbuf);

/* Stops serving (requests in flight are answered first) and frees.
   Accepts NULL; sets *self_p to NULL. */
void gkx_intake_close (gkx_intake_t **self_p);

/* Returns the port the endpoint listens on. */
unsigned gkx_intake_port (const gkx_intake_t *self);

/* Copies the answers given so far into out: postbacks committed as new
   conversions, answered as duplicates, refused with a 4xx, failed with a
   5xx. */
typedef struct {
    uint64_t committed;
    uint64_t duplicates;
    uint64_t refused;
    uint64_t failed;
} gkx_intake_stats_t;
void gkx_intake_stats (const gkx_intake_t *self, gkx_intake_stats_t *out);

#ifdef __cplusplus
}
#endif

#endif
