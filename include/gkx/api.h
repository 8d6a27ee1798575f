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

#ifdef __cplusplus
}
#endif

#endif
