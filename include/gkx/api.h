/*  api - the tenant's HTTP JSON API of gkxd (docs/api.md).
    Part of gokart-exchange; MIT licence.

    The route table that gkxd serves with the http module on [api] listen,
    behind the bearer token of DIR/api.token. Handlers get the gkx_node_t
    as their user pointer; they parse and validate on their own thread and
    run everything that touches the store through gkx_node_call.
*/
#ifndef GKX_API_H_INCLUDED
#define GKX_API_H_INCLUDED

#include <gkx/http.h>
#include <gkx/node.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Returns the API's routes (a static table) and their number. */
const gkx_http_route_t *gkx_api_routes (size_t *count_p);

/* On the loop: the JSON record of conversion id of partnership pid, as
   GET /v1/partnerships/{id}/conversions lists it (docs/api.md), a new
   reference the caller owns; NULL when the node holds no such conversion. */
json_t *gkx_api_conversion_json (gkx_node_t *node, const uint8_t pid[GKX_ID_BYTES],
                                 const uint8_t id[GKX_HASH_BYTES]);

#ifdef __cplusplus
}
#endif

#endif
