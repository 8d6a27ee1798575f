/*  client - the gkx command line's client for its node's HTTP JSON API.
    Part of gokart-exchange; MIT licence.

    Every verb that needs the running node calls cli_client_call: it finds
    the API address in DIR/gkx.conf ([api] listen) and the bearer token in
    DIR/api.token, sends one request with libcurl and hands back the parsed
    JSON reply. Every failure is printed once, as one line on stderr that
    starts with "gkx: ", so a verb only has to return the code. The token
    is never printed.
*/
#ifndef GKX_CLI_CLIENT_H_INCLUDED
#define GKX_CLI_CLIENT_H_INCLUDED

#include "cli.h"

#include <jansson.h>
#include <stdint.h>

/* Default milliseconds a call waits for the whole answer. */
#define CLI_CLIENT_TIMEOUT_MS 10000L
/* Largest reply read from the node. */
#define CLI_CLIENT_REPLY_MAX (64 * 1024 * 1024)

/* Sends METHOD PATH (PATH starts with '/', its segments already URL-encoded)
   to the node of DIR, with body as JSON when not NULL. Returns CLI_OK on a
   2xx reply, with the parsed reply in *reply_p (the caller's; a text reply,
   text/plain or text/csv, comes as a JSON string of its bytes; reply_p may
   be NULL). Otherwise prints one
   line on stderr and returns CLI_FAIL: the node is not running (no answer on
   its address; *status_p is 0), it did not answer in time (*status_p 0), or
   it answered an HTTP error (*status_p is the status; the line is the
   error's message). status_p may be NULL. */
int cli_client_call (const char *dir, const char *method, const char *path, const json_t *body,
                     json_t **reply_p, long *status_p);

/* Sends GET PATH to the node of DIR like cli_client_call, for a reply that
   is not JSON (an export): on a 2xx reply returns CLI_OK with the body's
   bytes in *bytes_p (the caller's, gkx_free it; NUL-terminated past *len_p)
   and its length in *len_p; otherwise prints one line on stderr and returns
   CLI_FAIL. */
int cli_client_fetch (const char *dir, const char *path, uint8_t **bytes_p, size_t *len_p);

/* Sets how long later calls wait for an answer, in milliseconds (> 0);
   the default is CLI_CLIENT_TIMEOUT_MS. */
void cli_client_set_timeout (long timeout_ms);

#endif
