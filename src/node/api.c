/*  api - the tenant's HTTP JSON API of gkxd (docs/api.md).
    Part of gokart-exchange; MIT licence.

    Each handler validates its input on the HTTP worker thread, then does
    its store work inside gkx_node_call on the node's loop, where writes are
    serialised and replication pushes follow each commit.
*/
#include <gkx/alloc.h>
#include <gkx/api.h>
#include <gkx/kind.h>
#include <gkx/merge.h>
#include <gkx/offer.h>

#include <string.h>

/* What GET /v1/status gathers on the loop. */
typedef struct {
    json_t *reply;
} s_status_t;

/* Collects the node's status on the loop. */
static int
s_status_fn (gkx_node_t *node, void *arg)
{
    s_status_t *ctx = arg;
    char id[GKX_ID_TEXT_BYTES];
    gkx_id_format (id, gkx_identity_id (gkx_node_identity (node)));
    const gkx_config_t *config = gkx_node_config (node);
    ctx->reply = json_pack ("{s:s, s:s, s:s, s:s, s:o}", "id", id, "role",
                            gkx_role_name (config->role), "name", config->name, "listen",
                            config->listen, "peers", gkx_node_peers_json (node));
    return GKX_OK;
}

/* GET /v1/status: node id, role and peers with their connection state. */
static json_t *
s_status (gkx_http_request_t *request, void *user, int *status_p)
{
    (void) request;
    s_status_t ctx = {NULL};
    if (gkx_node_call (user, s_status_fn, &ctx) != GKX_OK) {
        return gkx_http_error (status_p, 503, "unavailable", "the node is stopping");
    }
    return ctx.reply;
}

/* What POST /v1/peers hands to the loop. */
typedef struct {
    gkx_card_t *card;
    char errbuf[GKX_ERRBUF_BYTES];
} s_peer_add_t;

/* Adds a peer on the loop. */
static int
s_peer_add_fn (gkx_node_t *node, void *arg)
{
    s_peer_add_t *ctx = arg;
    return gkx_node_peer_add (node, ctx->card, ctx->errbuf);
}

/* POST /v1/peers {card}: adds a partner from its signed tenant card. */
static json_t *
s_peers_post (gkx_http_request_t *request, void *user, int *status_p)
{
    s_peer_add_t ctx = {NULL, ""};
    json_t *body = gkx_http_body (request);
    if (!body) {
        return gkx_http_error (status_p, 400, "bad_request", "the body must be a tenant card");
    }
    if (gkx_card_from_json (&ctx.card, body, ctx.errbuf) != GKX_OK) {
        return gkx_http_error (status_p, 400, "bad_card", "%s", ctx.errbuf);
    }
    int rc = gkx_node_call (user, s_peer_add_fn, &ctx);
    json_t *reply;
    if (rc == GKX_OK) {
        char id[GKX_ID_TEXT_BYTES];
        gkx_id_format (id, gkx_card_id (ctx.card));
        *status_p = 201;
        reply = json_pack ("{s:s, s:s, s:s}", "id", id, "name", gkx_card_name (ctx.card), "role",
                           gkx_role_name (gkx_card_role (ctx.card)));
    }
    else {
        reply = gkx_http_error (status_p, rc == GKX_EINVAL ? 400 : 500,
                                rc == GKX_EINVAL ? "bad_peer" : "internal", "%s", ctx.errbuf);
    }
    gkx_card_destroy (&ctx.card);
    return reply;
}

/* What POST /v1/partnerships hands to the loop. */
typedef struct {
    uint8_t publisher[GKX_ID_BYTES];
    uint8_t *offer;
    size_t offer_len;
    uint8_t *policy;
    size_t policy_len;
    uint8_t pid[GKX_ID_BYTES];
    char errbuf[GKX_ERRBUF_BYTES];
} s_share_t;

/* Shares on the loop. */
static int
s_share_fn (gkx_node_t *node, void *arg)
{
    s_share_t *ctx = arg;
    return gkx_node_share (node, ctx->publisher, ctx->offer, ctx->offer_len, ctx->policy,
                           ctx->policy_len, ctx->pid, ctx->errbuf);
}

/* POST /v1/partnerships {"publisher": ID, "offer": {...}, "policy": {...}}:
   shares an offer with a publisher; answers the partnership id. */
static json_t *
s_partnerships_post (gkx_http_request_t *request, void *user, int *status_p)
{
    s_share_t ctx;
    memset (&ctx, 0, sizeof ctx);
    json_t *body = gkx_http_body (request);
    const char *publisher = json_string_value (json_object_get (body, "publisher"));
    json_t *offer_json = json_object_get (body, "offer");
    if (!publisher || !json_is_object (offer_json)) {
        return gkx_http_error (status_p, 400, "bad_request",
                               "expected {\"publisher\": ID, \"offer\": {...}}");
    }
    if (gkx_id_parse (ctx.publisher, publisher, ctx.errbuf) != GKX_OK) {
        return gkx_http_error (status_p, 400, "bad_request", "publisher: %s", ctx.errbuf);
    }
    gkx_offer_t *offer = NULL;
    if (gkx_offer_from_json (&offer, offer_json, ctx.errbuf) != GKX_OK) {
        return gkx_http_error (status_p, 400, "invalid_offer", "offer.%s", ctx.errbuf);
    }
    gkx_offer_encode (offer, &ctx.offer, &ctx.offer_len);
    gkx_offer_destroy (&offer);
    json_t *policy = json_object_get (body, "policy");
    if (gkx_merge_policy_encode (&ctx.policy, &ctx.policy_len, policy, ctx.errbuf) != GKX_OK) {
        gkx_free (ctx.offer);
        return gkx_http_error (status_p, 400, "invalid_policy", "policy: %s", ctx.errbuf);
    }
    int rc = gkx_node_call (user, s_share_fn, &ctx);
    gkx_free (ctx.offer);
    gkx_free (ctx.policy);
    if (rc != GKX_OK) {
        int status = rc == GKX_ENOTFOUND ? 404 : rc == GKX_EINVAL ? 400 : 500;
        return gkx_http_error (status_p, status, gkx_errname (rc), "%s", ctx.errbuf);
    }
    char pid[GKX_ID_TEXT_BYTES];
    gkx_id_format (pid, ctx.pid);
    *status_p = 201;
    return json_pack ("{s:s}", "id", pid);
}

/* The routes, first match wins. */
static const gkx_http_route_t s_routes[] = {
    {"GET /v1/status", s_status},
    {"POST /v1/peers", s_peers_post},
    {"POST /v1/partnerships", s_partnerships_post},
};

const gkx_http_route_t *
gkx_api_routes (size_t *count_p)
{
    *count_p = sizeof s_routes / sizeof s_routes[0];
    return s_routes;
}
