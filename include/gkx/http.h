/*  http - a small, hardened JSON-over-HTTP server (libmicrohttpd + jansson).
    Part of gokart-exchange; MIT licence.

    The frame of gkxd's tenant API and postback endpoint. It knows nothing of
    offers: the caller gives a route table ("GET /v1/partnerships/{}/offer")
    and handlers, and the server does everything around them the same way
    for every route: header lines limited in size (431) and the ones that
    frame or authorise a request allowed once (400), bearer-token check in
    constant time, the request target limited in length (414) and its query
    in parameters (400, a parameter given twice included), routing (404, 405
    with Allow), path segments decoded and checked to be safe tokens (dot
    segments refused), the body size-limited (413 before a byte of it is read
    when Content-Length says so, at its end when it is chunked), its content
    type checked (415), its UTF-8 and JSON checked (400 naming line and
    column), and every reply sent as JSON with Cache-Control: no-store.
    Errors have one shape:
        {"error": {"code": "unauthorized", "message": "..."}}
    Handlers run on a pool of handler threads and may block: the connection
    waits suspended meanwhile, and libmicrohttpd's event-loop thread goes on
    serving every other connection. A slow client holds a socket, never a
    thread: idle connections time out, a request must arrive within a
    deadline however often its bytes trickle in, and one address may hold
    only so many connections. A handler also sees the raw query
    string and the client's address, which the postback endpoint needs for
    signatures and allow lists.
*/
#ifndef GKX_HTTP_H_INCLUDED
#define GKX_HTTP_H_INCLUDED

#include <gkx/error.h>

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Default largest request body accepted (1 MiB). */
#define GKX_HTTP_BODY_MAX_DEFAULT (1024 * 1024)
/* Default number of handler threads. */
#define GKX_HTTP_THREADS_DEFAULT 4
/* Default seconds a connection may stay idle before it is closed; also the
   time a request line has to arrive in, and then the rest of the request
   (headers and body), so a client sending a byte now and then cannot hold a
   connection for long. */
#define GKX_HTTP_TIMEOUT_DEFAULT 10
/* Default most connections open at once. */
#define GKX_HTTP_CONNECTIONS_DEFAULT 256
/* Default most connections open at once from one client address. */
#define GKX_HTTP_PER_IP_DEFAULT 64
/* Most bytes of request header lines (names and values); more gets 431. */
#define GKX_HTTP_HEADERS_MAX_BYTES (16 * 1024)
/* Longest path segment a route captures, in bytes after URL decoding. */
#define GKX_HTTP_SEGMENT_MAX_BYTES 256
/* Most segments in a route pattern or a request path. */
#define GKX_HTTP_SEGMENTS_MAX 16
/* Default most query parameters in one request. */
#define GKX_HTTP_QUERY_MAX 64
/* Longest request target (path and query, as sent) accepted; longer ones get
   414. Room for a postback's 8 KiB query twice over. */
#define GKX_HTTP_TARGET_MAX_BYTES (16 * 1024)

/* A running server. */
typedef struct gkx_http gkx_http_t;
/* One request, as a handler sees it; lives until the handler returns. */
typedef struct gkx_http_request gkx_http_request_t;

/* A handler: answers one request. *status_p is 200 on entry; the handler may
   set another status (100-599). It returns the reply body, which the server
   sends and releases (one reference is taken over), or the placeholder from
   gkx_http_reply_text. Returning NULL sends 500. user is the options' user
   pointer. Runs on one of the handler threads, at most options.threads at
   once, and may block (gkx_http_close waits for it). */
typedef json_t *(gkx_http_handler_fn) (gkx_http_request_t *request, void *user, int *status_p);

/* One route: "METHOD /path/with/{}/placeholders" and its handler. A {}
   stands for one whole path segment. A request takes the first route of the
   table that matches its method and path. */
typedef struct {
    const char *pattern;            /* e.g. "GET /v1/partnerships/{}/offer" */
    gkx_http_handler_fn *handler;   /* called for matching requests */
} gkx_http_route_t;

/* What gkx_http_open needs. Zero values take the defaults. */
typedef struct {
    const char *address;            /* "host:port" or "[v6]:port"; port 0 picks a free port */
    const char *token;              /* bearer token; NULL serves without authentication */
    const gkx_http_route_t *routes; /* route table, copied at open */
    size_t routes_count;            /* entries in routes */
    void *user;                     /* passed to every handler */
    size_t body_max;                /* largest body in bytes; 0 for GKX_HTTP_BODY_MAX_DEFAULT */
    unsigned threads;               /* handler threads; 0 for GKX_HTTP_THREADS_DEFAULT */
    unsigned timeout_s;             /* idle seconds; 0 for GKX_HTTP_TIMEOUT_DEFAULT */
    unsigned connections_max;       /* 0 for GKX_HTTP_CONNECTIONS_DEFAULT */
    unsigned per_ip_max;            /* connections from one address; 0 for
                                       GKX_HTTP_PER_IP_DEFAULT */
    size_t query_max;               /* most query parameters; 0 for GKX_HTTP_QUERY_MAX */
    int body_discard;               /* 1: a body of any type is read (up to body_max) and
                                       dropped, and handlers see none; 0: JSON bodies only */
} gkx_http_options_t;

/* Request counters since open, read atomically one by one. */
typedef struct {
    uint64_t requests;              /* replies sent */
    uint64_t status_2xx;            /* replies with a 2xx status */
    uint64_t status_3xx;            /* replies with a 3xx status */
    uint64_t status_4xx;            /* replies with a 4xx status */
    uint64_t status_5xx;            /* replies with a 5xx status */
    uint64_t aborted;               /* requests closed without a reply (timeout,
                                       client gone, chunked body far over the limit) */
    uint64_t cut;                   /* connections closed because a request line or
                                       the rest of a request came too slowly */
} gkx_http_stats_t;

/* Binds options->address and starts serving the routes. The token and the
   route table are copied; options may go once this returns. Sets *self_p
   (the caller's, for gkx_http_close) only on success. Returns GKX_OK,
   GKX_EINVAL (bad address, token or route pattern, or a route given twice)
   or GKX_EIO (cannot listen, or cannot start a thread), with errbuf naming
   the problem. */
GKX_NODISCARD int gkx_http_open (gkx_http_t **self_p, const gkx_http_options_t *options,
                                 char *errbuf);

/* Stops serving: runs the handlers of requests already received (requests
   completing meanwhile get 503), then closes every connection and the
   listening socket, and frees. Accepts NULL; sets *self_p to NULL. */
void gkx_http_close (gkx_http_t **self_p);

/* Returns the port the server listens on (the chosen one when 0 was asked). */
unsigned gkx_http_port (const gkx_http_t *self);

/* Copies the request counters into *out. */
void gkx_http_stats (const gkx_http_t *self, gkx_http_stats_t *out);

/* Returns the request's method ("GET"); borrowed for the handler's call. */
const char *gkx_http_method (const gkx_http_request_t *request);

/* Returns the request's path as sent, without the query; borrowed for the
   handler's call. */
const char *gkx_http_path (const gkx_http_request_t *request);

/* Returns the number of segments the route's {} captured. */
size_t gkx_http_segment_count (const gkx_http_request_t *request);

/* Returns the index-th captured segment, URL-decoded: non-empty, at most
   GKX_HTTP_SEGMENT_MAX_BYTES, valid UTF-8, without '/', '\', ".." or control
   bytes. NULL when index is out of range. Borrowed for the handler's call. */
const char *gkx_http_segment (const gkx_http_request_t *request, size_t index);

/* Returns the URL-decoded value of the first query parameter named name, ""
   for a name without a value, NULL when absent. Borrowed for the handler's
   call. */
const char *gkx_http_query (const gkx_http_request_t *request, const char *name);

/* Returns the query string exactly as the client sent it: the bytes after
   the first '?' of the request target, not decoded ("" when there is none).
   Borrowed for the handler's call. */
const char *gkx_http_raw_query (const gkx_http_request_t *request);

/* Copies the client's address (AF_INET or AF_INET6, with its port) into *out
   and its length into *len_p, for gkx_netmask_contains and the like. A
   client on an IPv6 socket may show as an IPv4-mapped address
   (::ffff:a.b.c.d). Returns GKX_OK, or GKX_ENOTFOUND when libmicrohttpd did
   not tell it (then *out and *len_p are untouched). */
int gkx_http_client_addr (const gkx_http_request_t *request, struct sockaddr_storage *out,
                          socklen_t *len_p);

/* Returns the client's address as text, without the port ("127.0.0.1",
   "2001:db8::1"), for messages and logs; "" when unknown. Borrowed for the
   handler's call. */
const char *gkx_http_client_text (const gkx_http_request_t *request);

/* Returns the parsed JSON body (an object or an array), or NULL when the
   request had no body. Borrowed for the handler's call; json_incref it to
   keep or return it. */
json_t *gkx_http_body (const gkx_http_request_t *request);

/* Makes the reply a text/plain (UTF-8) body of len bytes copied from text,
   for a handler to return:
       return gkx_http_reply_text (request, text, len);
   Returns a placeholder (JSON null) that the handler returns; the text is
   sent with *status_p, and any other JSON the handler returns instead is
   released unsent. */
json_t *gkx_http_reply_text (gkx_http_request_t *request, const char *text, size_t len);

/* Like gkx_http_reply_text, with the Content-Type type (printable ASCII,
   copied) instead of text/plain, for example the Prometheus text format's
   "text/plain; version=0.0.4; charset=utf-8". */
json_t *gkx_http_reply_typed (gkx_http_request_t *request, const char *type, const char *text,
                              size_t len);

/* Returns a new error body {"error": {"code": code, "message": ...}} with the
   message formatted from fmt, and sets *status_p to status, for a handler to
   return. */
json_t *gkx_http_error (int *status_p, int status, const char *code, const char *fmt, ...)
    __attribute__ ((format (printf, 4, 5)));

#ifdef __cplusplus
}
#endif

#endif
