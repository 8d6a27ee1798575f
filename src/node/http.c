/*  http - a small, hardened JSON-over-HTTP server (libmicrohttpd + jansson).
    Part of gokart-exchange; MIT licence.

    libmicrohttpd calls s_access several times per request: once when the
    headers are in (s_begin: token, route, path, query, announced body size
    and type; a refusal here is sent before a byte of the body is read, and
    libmicrohttpd then closes the connection), once per piece of body
    (s_receive: appended to a buffer bounded by the limit), once at the end
    (s_finish: the body's type, then the request goes to a worker, which
    checks UTF-8 and JSON and calls the handler in s_run) and once more when
    the worker is done (s_respond: the reply).

    Handlers run on our own worker threads, not in libmicrohttpd's event
    loop: a loop thread serves many connections, so a handler blocking there
    would stall every connection that thread holds (with epoll it accepts up
    to ten at once; eight 200 ms handlers on a pool of four took 1.6 s). The
    connection is suspended while its handler runs and resumed by the worker,
    so the loop keeps serving everyone else, and a slow client holds only its
    socket, never a thread. The workers drain the queue before close stops
    libmicrohttpd, which must not be stopped with a connection suspended.

    A watchdog thread cuts connections whose request comes too slowly (see
    s_watch_t); libmicrohttpd's connection notices keep its list.

    The URL is taken raw (an unescape callback that does nothing), so that
    "%2f" inside a segment cannot turn into a separator: the path is split
    first and each segment decoded and checked on its own. The request is
    created in libmicrohttpd's URI log callback, the one place that sees the
    request target whole before the query is cut into parameters, so that a
    handler can have the query string byte for byte (a postback's signature
    may cover it exactly as the sender wrote it).
*/
#include <gkx/alloc.h>
#include <gkx/http.h>

#include <arpa/inet.h>
#include <assert.h>
#include <errno.h>
#include <limits.h>
#include <microhttpd.h>
#include <netdb.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>

/* Per-connection memory of libmicrohttpd: request line, headers, the
   parsed query parameters and buffers. libmicrohttpd first gives half of it
   to the read buffer, which must hold the request line and the headers, and
   answers 414 or 431 itself when they do not fit; the margin keeps that
   behind our own, JSON, 414 for a target over GKX_HTTP_TARGET_MAX_BYTES. */
#define S_CONNECTION_MEMORY (128 * 1024)
_Static_assert (S_CONNECTION_MEMORY >= 4 * GKX_HTTP_TARGET_MAX_BYTES,
                "the connection memory must hold the longest request target with room to spare");
/* Longest method name in a route pattern, with its NUL. */
#define S_METHOD_BYTES 16
/* Longest bearer token accepted at open. */
#define S_TOKEN_MAX_BYTES 1024
/* Longest error message sent in a reply. */
#define S_MESSAGE_BYTES 512
/* Longest piece of client text (path, method, type) quoted in a message. */
#define S_QUOTE_BYTES 160
/* Room for an Allow header listing methods. */
#define S_ALLOW_BYTES 256
/* First size of a body buffer when the length is not announced. */
#define S_BODY_INITIAL_BYTES 16384
/* Longest host name in an address. */
#define S_HOST_BYTES 256
/* Content types of replies. */
#define S_TYPE_JSON "application/json"
#define S_TYPE_TEXT "text/plain; charset=utf-8"
/* What 401 replies challenge with. */
#define S_CHALLENGE "Bearer realm=\"gkx\""
#define S_CHALLENGE_INVALID "Bearer realm=\"gkx\", error=\"invalid_token\""

/* A compiled route. */
typedef struct {
    char method[S_METHOD_BYTES];                /* "GET" */
    char *pattern;                              /* the pattern as given, for messages */
    char *segments[GKX_HTTP_SEGMENTS_MAX];      /* literal segments; NULL for {} */
    size_t segments_count;                      /* segments in the path */
    gkx_http_handler_fn *handler;               /* called on a match */
} s_route_t;

/* Turns a macro's value into a string literal. */
#define S_STR(x) S_STR_ (x)
#define S_STR_(x) #x

/* Number of status classes counted (index = status / 100). */
#define S_CLASSES 6
/* Milliseconds between two rounds of the watchdog. */
#define S_WATCH_TICK_MS 250

/* What an open connection is doing, for the watchdog. */
typedef enum {
    S_PHASE_WAIT,       /* waiting for a request line: since open or the last reply */
    S_PHASE_READ,       /* the request line is in; headers and body are arriving */
    S_PHASE_BUSY        /* handled or answering: no deadline but the idle timeout */
} s_phase_t;

/* An open connection, known from libmicrohttpd's connection notices. A
   client that sends a byte now and then is never idle, so libmicrohttpd's
   idle timeout would let it hold its connection for as long as it likes
   (slowloris); the watchdog cuts a connection whose request line, or the
   rest of whose request, takes longer than the deadline. */
typedef struct s_watch {
    int fd;                                     /* the connection's socket */
    s_phase_t phase;                            /* what it is doing */
    uint64_t since_ms;                          /* when that began */
    int cut;                                    /* the watchdog has shut it down */
    struct s_watch *prev;                       /* in gkx_http's list */
    struct s_watch *next;
} s_watch_t;

struct gkx_http {
    struct MHD_Daemon *daemon;                  /* libmicrohttpd and its event-loop thread */
    s_route_t *routes;                          /* compiled route table */
    size_t routes_count;                        /* entries in routes */
    void *user;                                 /* handlers' user pointer */
    uint8_t *token_hash;                        /* the token's hash, sodium_malloc'd;
                                                   NULL for no auth */
    size_t body_max;                            /* largest body accepted */
    int body_discard;                           /* bodies of any type are read and dropped */
    size_t query_max;                           /* most query parameters in a request */
    unsigned port;                              /* bound port */
    pthread_t *workers;                         /* handler threads */
    unsigned workers_count;                     /* handler threads running */
    pthread_mutex_t lock;                       /* guards queue and stopping */
    pthread_cond_t wake;                        /* signals work or stop to workers */
    gkx_http_request_t *queue_head;             /* requests waiting for a worker */
    gkx_http_request_t *queue_tail;             /* last of them */
    int stopping;                               /* close has begun; queue no more */
    _Atomic uint64_t requests;                  /* replies sent */
    _Atomic uint64_t classes[S_CLASSES];        /* replies by status / 100 */
    _Atomic uint64_t aborted;                   /* requests ended without a reply */
    _Atomic uint64_t cut;                       /* connections cut for slowness */
    uint64_t deadline_ms;                       /* time for a request line, then the rest */
    pthread_mutex_t watch_lock;                 /* guards watches and watchdog_stop */
    pthread_cond_t watch_wake;                  /* wakes the watchdog to stop */
    s_watch_t *watches;                         /* open connections */
    pthread_t watchdog;                         /* cuts connections of slow requests */
    int watchdog_running;                       /* watchdog was started */
    int watchdog_stop;                          /* the watchdog is to end */
    atomic_int started;                         /* libmicrohttpd is running; logs are dropped */
    pthread_mutex_t log_lock;                   /* guards log_message */
    char log_message[GKX_ERRBUF_BYTES];         /* last libmicrohttpd message while starting */
};

struct gkx_http_request {
    gkx_http_t *server;                         /* the server it came to */
    struct MHD_Connection *connection;          /* libmicrohttpd's connection */
    const char *method;                         /* borrowed from libmicrohttpd */
    const char *path;                           /* raw path, borrowed from libmicrohttpd */
    char *target;                               /* the request target as sent (path?query) */
    size_t target_len;                          /* bytes in target */
    const char *raw_query;                      /* after target's first '?', or "" */
    int begun;                                  /* the access handler has seen the headers */
    struct sockaddr_storage client;             /* the client's address */
    socklen_t client_len;                       /* bytes of client; 0 when unknown */
    char client_text[INET6_ADDRSTRLEN];         /* the client's address as text, "" when unknown */
    const s_route_t *route;                     /* the matched route */
    char *segments[GKX_HTTP_SEGMENTS_MAX];      /* captured, decoded segments */
    size_t segments_count;                      /* entries in segments */
    char **query_names;                         /* decoded query names */
    char **query_values;                        /* decoded query values */
    size_t query_count;                         /* entries in the query arrays */
    size_t query_cap;                           /* room in the query arrays */
    int query_bad;                              /* a query parameter did not decode */
    char query_problem[S_MESSAGE_BYTES];        /* what was wrong with it */
    size_t body_dropped;                        /* bytes read past the limit (chunked) */
    uint8_t *body;                              /* received body bytes */
    size_t body_len;                            /* bytes in body */
    size_t body_cap;                            /* bytes allocated for body */
    json_t *json;                               /* parsed body, NULL when none */
    char *text;                                 /* text reply set by gkx_http_reply_text */
    size_t text_len;                            /* bytes in text */
    char *text_type;                            /* its Content-Type; NULL for S_TYPE_TEXT */
    int has_text;                               /* the reply is text */
    json_t *reply;                              /* the handler's reply */
    int status;                                 /* the handler's status */
    gkx_http_request_t *next;                   /* next in the worker queue */
    int queued;                                 /* handed to a worker */
    atomic_int handled;                         /* the worker has run the handler */
    int replied;                                /* a response was queued */
};

/* Copies client text into out for a message: printable ASCII only (others
   become '?'), cut with "..." when long, so a reply is always valid UTF-8. */
static void
s_quote (char *out, size_t size, const char *text)
{
    size_t len = strlen (text);
    size_t keep = len < size - 1 ? len : size - 4;
    for (size_t i = 0; i < keep; i++) {
        unsigned char c = (unsigned char) text[i];
        out[i] = c >= 0x20 && c < 0x7f ? (char) c : '?';
    }
    if (keep < len) {
        memcpy (out + keep, "...", 3);
        keep += 3;
    }
    out[keep] = '\0';
}

/* Returns a new error body; message need not be valid UTF-8. */
static json_t *
s_error_body (const char *code, const char *message)
{
    json_t *text = json_string (message);
    if (!text) {
        char safe[S_MESSAGE_BYTES];
        s_quote (safe, sizeof safe, message);
        text = json_string (safe);
    }
    json_t *error = json_object ();
    json_object_set_new (error, "code", json_string (code));
    json_object_set_new (error, "message", text);
    json_t *body = json_object ();
    json_object_set_new (body, "error", error);
    return body;
}

/* Counts a reply by its status class. */
static void
s_count (gkx_http_t *self, int status)
{
    atomic_fetch_add_explicit (&self->requests, 1, memory_order_relaxed);
    atomic_fetch_add_explicit (&self->classes[status / 100 % S_CLASSES], 1,
                               memory_order_relaxed);
}

/* Milliseconds of the monotonic clock. */
static uint64_t
s_now_ms (void)
{
    struct timespec ts;
    clock_gettime (CLOCK_MONOTONIC, &ts);
    return (uint64_t) ts.tv_sec * 1000u + (uint64_t) ts.tv_nsec / 1000000u;
}

/* Moves a connection's watch to phase, from now. On libmicrohttpd's
   thread; a connection it has already closed has no watch. */
static void
s_watch_phase (gkx_http_t *self, struct MHD_Connection *connection, s_phase_t phase)
{
    const union MHD_ConnectionInfo *info =
        MHD_get_connection_info (connection, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    s_watch_t *watch = info ? info->socket_context : NULL;
    if (!watch) {
        return;
    }
    pthread_mutex_lock (&self->watch_lock);
    watch->phase = phase;
    watch->since_ms = s_now_ms ();
    pthread_mutex_unlock (&self->watch_lock);
}

/* libmicrohttpd connection notice: keeps the list of open connections for
   the watchdog. libmicrohttpd sends the closing notice before it closes the
   socket, so a socket in the list is always this connection's. */
static void
s_notify (void *cls, struct MHD_Connection *connection, void **socket_context,
          enum MHD_ConnectionNotificationCode toe)
{
    gkx_http_t *self = cls;
    if (toe == MHD_CONNECTION_NOTIFY_STARTED) {
        const union MHD_ConnectionInfo *info =
            MHD_get_connection_info (connection, MHD_CONNECTION_INFO_CONNECTION_FD);
        s_watch_t *watch = gkx_zalloc (sizeof *watch);
        watch->fd = info ? info->connect_fd : -1;
        watch->phase = S_PHASE_WAIT;
        watch->since_ms = s_now_ms ();
        pthread_mutex_lock (&self->watch_lock);
        watch->next = self->watches;
        if (self->watches) {
            self->watches->prev = watch;
        }
        self->watches = watch;
        pthread_mutex_unlock (&self->watch_lock);
        *socket_context = watch;
        return;
    }
    s_watch_t *watch = *socket_context;
    if (!watch) {
        return;
    }
    pthread_mutex_lock (&self->watch_lock);
    if (watch->prev) {
        watch->prev->next = watch->next;
    }
    else {
        self->watches = watch->next;
    }
    if (watch->next) {
        watch->next->prev = watch->prev;
    }
    pthread_mutex_unlock (&self->watch_lock);
    gkx_free (watch);
    *socket_context = NULL;
}

/* Watchdog thread: every tick, shuts down the socket of each connection
   whose request line, or the rest of whose request, is late; libmicrohttpd
   then sees the connection end and closes it. Handled requests and replies
   being sent are left to the idle timeout. */
static void *
s_watchdog (void *arg)
{
    gkx_http_t *self = arg;
    pthread_mutex_lock (&self->watch_lock);
    while (!self->watchdog_stop) {
        uint64_t now = s_now_ms ();
        for (s_watch_t *watch = self->watches; watch; watch = watch->next) {
            if (watch->phase != S_PHASE_BUSY && !watch->cut && watch->fd >= 0
                && now - watch->since_ms > self->deadline_ms) {
                shutdown (watch->fd, SHUT_RDWR);
                watch->cut = 1;
                atomic_fetch_add_explicit (&self->cut, 1, memory_order_relaxed);
            }
        }
        struct timespec until;
        clock_gettime (CLOCK_REALTIME, &until);
        until.tv_nsec += S_WATCH_TICK_MS * 1000000L;
        if (until.tv_nsec >= 1000000000L) {
            until.tv_sec++;
            until.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait (&self->watch_wake, &self->watch_lock, &until);
    }
    pthread_mutex_unlock (&self->watch_lock);
    return NULL;
}

/* Stops the watchdog and waits for it. */
static void
s_watchdog_stop (gkx_http_t *self)
{
    if (!self->watchdog_running) {
        return;
    }
    pthread_mutex_lock (&self->watch_lock);
    self->watchdog_stop = 1;
    pthread_cond_signal (&self->watch_wake);
    pthread_mutex_unlock (&self->watch_lock);
    pthread_join (self->watchdog, NULL);
    self->watchdog_running = 0;
}

/* Queues a reply of len bytes at data with the headers every reply has and
   one optional extra header; returns libmicrohttpd's verdict. */
static enum MHD_Result
s_send (gkx_http_request_t *request, int status, const char *type, const char *data, size_t len,
        const char *header, const char *value)
{
    struct MHD_Response *response =
        MHD_create_response_from_buffer (len, (void *) data, MHD_RESPMEM_MUST_COPY);
    if (!response) {
        return MHD_NO;
    }
    int ok = MHD_add_response_header (response, MHD_HTTP_HEADER_CONTENT_TYPE, type) == MHD_YES
        && MHD_add_response_header (response, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store") == MHD_YES
        && MHD_add_response_header (response, "X-Content-Type-Options", "nosniff") == MHD_YES
        && (!header || MHD_add_response_header (response, header, value) == MHD_YES)
        && MHD_queue_response (request->connection, (unsigned) status, response) == MHD_YES;
    MHD_destroy_response (response);
    if (!ok) {
        return MHD_NO;
    }
    request->replied = 1;
    s_count (request->server, status);
    s_watch_phase (request->server, request->connection, S_PHASE_BUSY);
    return MHD_YES;
}

/* Sends a JSON reply and releases body (which may be NULL: then 500). */
static enum MHD_Result
s_send_json (gkx_http_request_t *request, int status, json_t *body, const char *header,
             const char *value)
{
    size_t flags = JSON_COMPACT | JSON_ENCODE_ANY;
    size_t len = body ? json_dumpb (body, NULL, 0, flags) : 0;
    if (len == 0) {
        json_decref (body);
        body = s_error_body ("internal", "the reply could not be encoded as JSON");
        len = json_dumpb (body, NULL, 0, flags);
        status = MHD_HTTP_INTERNAL_SERVER_ERROR;
        header = NULL;
    }
    /* A final newline, so the reply reads well on a terminal. */
    char *line = gkx_zalloc (len + 1);
    json_dumpb (body, line, len, flags);
    json_decref (body);
    line[len] = '\n';
    enum MHD_Result result = s_send (request, status, S_TYPE_JSON, line, len + 1, header, value);
    gkx_free (line);
    return result;
}

/* Sends a JSON error reply with a formatted message. */
static enum MHD_Result
s_reject (gkx_http_request_t *request, int status, const char *code, const char *header,
          const char *value, const char *fmt, ...) __attribute__ ((format (printf, 6, 7)));

/* Sends a JSON error reply with a formatted message. */
static enum MHD_Result
s_reject (gkx_http_request_t *request, int status, const char *code, const char *header,
          const char *value, const char *fmt, ...)
{
    char message[S_MESSAGE_BYTES];
    va_list args;
    va_start (args, fmt);
    vsnprintf (message, sizeof message, fmt, args);
    va_end (args);
    return s_send_json (request, status, s_error_body (code, message), header, value);
}

/* Returns the offset of the first byte that breaks UTF-8 (no overlongs,
   surrogates or code points past U+10FFFF), or len when all is valid. */
static size_t
s_utf8_bad (const uint8_t *s, size_t len)
{
    size_t i = 0;
    while (i < len) {
        uint8_t c = s[i];
        size_t n;
        uint32_t cp;
        if (c < 0x80) {
            i++;
            continue;
        }
        else if (c >= 0xc2 && c <= 0xdf) {
            n = 1;
            cp = c & 0x1f;
        }
        else if (c >= 0xe0 && c <= 0xef) {
            n = 2;
            cp = c & 0x0f;
        }
        else if (c >= 0xf0 && c <= 0xf4) {
            n = 3;
            cp = c & 0x07;
        }
        else {
            return i;
        }
        if (len - i <= n) {
            return i;
        }
        for (size_t k = 1; k <= n; k++) {
            if ((s[i + k] & 0xc0) != 0x80) {
                return i;
            }
            cp = (cp << 6) | (s[i + k] & 0x3f);
        }
        if ((n == 2 && cp < 0x800) || (n == 3 && cp < 0x10000) || cp > 0x10ffff
            || (cp >= 0xd800 && cp <= 0xdfff)) {
            return i;
        }
        i += n + 1;
    }
    return len;
}

/* Returns the value of one hex digit, or -1. */
static int
s_hex (char c)
{
    if (c >= '0' && c <= '9') {
        return c - '0';
    }
    if (c >= 'a' && c <= 'f') {
        return c - 'a' + 10;
    }
    if (c >= 'A' && c <= 'F') {
        return c - 'A' + 10;
    }
    return -1;
}

/* Decodes %XX escapes (and '+' as a space when plus is set) of len bytes at
   in into a new string at *out_p. Returns GKX_OK, or GKX_EINVAL for a bad
   escape, a NUL byte or invalid UTF-8 (then *out_p is untouched and problem,
   of size bytes, says which, in the words of docs/postbacks.md). */
static int
s_decode (char **out_p, const char *in, size_t len, int plus, char *problem, size_t size)
{
    char *out = gkx_zalloc (len + 1);
    size_t o = 0;
    for (size_t i = 0; i < len; i++) {
        char c = in[i];
        if (c == '%') {
            int hi = i + 1 < len ? s_hex (in[i + 1]) : -1;
            int lo = hi >= 0 && i + 2 < len ? s_hex (in[i + 2]) : -1;
            if (lo < 0) {
                char escape[8];
                size_t n = len - i < 3 ? len - i : 3;
                memcpy (escape, in + i, n);
                escape[n] = '\0';
                char quoted[sizeof escape];
                s_quote (quoted, sizeof quoted, escape);
                snprintf (problem, size, "%s percent-encoding \"%s\"",
                          n < 3 && (hi >= 0 || i + 1 == len) ? "truncated" : "bad", quoted);
                gkx_free (out);
                return GKX_EINVAL;
            }
            c = (char) (hi * 16 + lo);
            i += 2;
        }
        else if (c == '+' && plus) {
            c = ' ';
        }
        if (c == '\0') {
            snprintf (problem, size, "%%00 (NUL) is not allowed");
            gkx_free (out);
            return GKX_EINVAL;
        }
        out[o++] = c;
    }
    if (s_utf8_bad ((const uint8_t *) out, o) != o) {
        snprintf (problem, size, "not valid UTF-8");
        gkx_free (out);
        return GKX_EINVAL;
    }
    *out_p = out;
    return GKX_OK;
}

/* Returns NULL when a captured segment is a safe token, else what is wrong. */
static const char *
s_segment_problem (const char *segment)
{
    size_t len = strlen (segment);
    if (len == 0) {
        return "it is empty";
    }
    if (len > GKX_HTTP_SEGMENT_MAX_BYTES) {
        return "it is longer than " S_STR (GKX_HTTP_SEGMENT_MAX_BYTES) " bytes";
    }
    if (strstr (segment, "..")) {
        return "it contains \"..\"";
    }
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char) segment[i];
        if (c == '/' || c == '\\') {
            return "it contains a slash";
        }
        if (c < 0x20 || c == 0x7f) {
            return "it contains a control byte";
        }
    }
    return NULL;
}

/* Returns 1 when a Content-Type names JSON, with at most a UTF-8 charset. */
static int
s_is_json_type (const char *type)
{
    static const char json[] = "application/json";
    static const char charset[] = "charset=";
    if (!type) {
        return 0;
    }
    const char *p = type + strspn (type, " \t");
    if (strncasecmp (p, json, sizeof json - 1) != 0) {
        return 0;
    }
    p += sizeof json - 1;
    p += strspn (p, " \t");
    if (*p == '\0') {
        return 1;
    }
    if (*p != ';') {
        return 0;
    }
    p++;
    p += strspn (p, " \t");
    if (strncasecmp (p, charset, sizeof charset - 1) != 0) {
        return 0;
    }
    p += sizeof charset - 1;
    int quoted = *p == '"';
    p += quoted;
    if (strncasecmp (p, "utf-8", 5) != 0) {
        return 0;
    }
    p += 5;
    if (quoted) {
        if (*p != '"') {
            return 0;
        }
        p++;
    }
    p += strspn (p, " \t");
    return *p == '\0';
}

/* Returns a new request of connection to self; target is the request
   target as sent (NULL when unknown). */
static gkx_http_request_t *
s_request_new (gkx_http_t *self, struct MHD_Connection *connection, const char *target)
{
    gkx_http_request_t *request = gkx_zalloc (sizeof *request);
    request->server = self;
    request->connection = connection;
    request->raw_query = "";
    if (target) {
        request->target_len = strlen (target);
        request->target = gkx_memdup (target, request->target_len + 1);
        char *mark = strchr (request->target, '?');
        if (mark) {
            request->raw_query = mark + 1;
        }
    }
    return request;
}

/* Copies the client's address into the request, on libmicrohttpd's thread
   (a handler's worker may not ask libmicrohttpd about the connection). */
static void
s_client_note (gkx_http_request_t *request)
{
    const union MHD_ConnectionInfo *info =
        MHD_get_connection_info (request->connection, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    const struct sockaddr *sa = info ? info->client_addr : NULL;
    if (!sa) {
        return;
    }
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *in4 = (const struct sockaddr_in *) sa;
        memcpy (&request->client, in4, sizeof *in4);
        request->client_len = sizeof *in4;
        inet_ntop (AF_INET, &in4->sin_addr, request->client_text, sizeof request->client_text);
    }
    else if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *) sa;
        memcpy (&request->client, in6, sizeof *in6);
        request->client_len = sizeof *in6;
        inet_ntop (AF_INET6, &in6->sin6_addr, request->client_text,
                   sizeof request->client_text);
    }
}

/* Frees a request and everything it holds. */
static void
s_request_destroy (gkx_http_request_t **request_p)
{
    gkx_http_request_t *request = *request_p;
    if (!request) {
        return;
    }
    for (size_t i = 0; i < request->segments_count; i++) {
        gkx_free (request->segments[i]);
    }
    for (size_t i = 0; i < request->query_count; i++) {
        gkx_free (request->query_names[i]);
        gkx_free (request->query_values[i]);
    }
    gkx_free (request->query_names);
    gkx_free (request->query_values);
    gkx_free (request->target);
    gkx_free (request->body);
    json_decref (request->json);
    json_decref (request->reply);
    gkx_free (request->text);
    gkx_free (request->text_type);
    gkx_free (request);
    *request_p = NULL;
}

/* Frees decoded path segments. */
static void
s_segments_free (char **segments, size_t count)
{
    for (size_t i = 0; i < count; i++) {
        gkx_free (segments[i]);
    }
}

/* Hashes a token, so that comparing two takes the same time whatever their
   lengths and contents. */
static void
s_token_hash (uint8_t out[crypto_generichash_BYTES], const char *token, size_t len)
{
    crypto_generichash (out, crypto_generichash_BYTES, (const uint8_t *) token, len, NULL, 0);
}

/* Headers that must come at most once: two of them leave the request's
   framing, type or credentials open to a guess (and a proxy may guess
   otherwise: request smuggling). */
static const char *const s_single_headers[] = {
    MHD_HTTP_HEADER_AUTHORIZATION, MHD_HTTP_HEADER_CONTENT_LENGTH, MHD_HTTP_HEADER_CONTENT_TYPE,
    MHD_HTTP_HEADER_TRANSFER_ENCODING, MHD_HTTP_HEADER_HOST};
#define S_SINGLE_COUNT (sizeof s_single_headers / sizeof s_single_headers[0])

/* What the header walk found. */
typedef struct {
    size_t bytes;                               /* bytes of names and values */
    unsigned counts[S_SINGLE_COUNT];            /* times each single header came */
} s_header_walk_t;

/* libmicrohttpd iterator: sizes and counts the request's header lines. */
static enum MHD_Result
s_header_walk (void *cls, enum MHD_ValueKind kind, const char *key, const char *value)
{
    (void) kind;
    s_header_walk_t *walk = cls;
    /* ": " and CRLF, as a client sends them. */
    walk->bytes += strlen (key) + (value ? strlen (value) : 0) + 4;
    for (size_t i = 0; i < S_SINGLE_COUNT; i++) {
        if (strcasecmp (key, s_single_headers[i]) == 0) {
            walk->counts[i]++;
        }
    }
    return MHD_YES;
}

/* Checks the headers' size and framing; sends 431 or 400 and returns 0
   when they are not right. */
static int
s_headers_sound (gkx_http_request_t *request)
{
    s_header_walk_t walk;
    memset (&walk, 0, sizeof walk);
    MHD_get_connection_values (request->connection, MHD_HEADER_KIND, s_header_walk, &walk);
    if (walk.bytes > GKX_HTTP_HEADERS_MAX_BYTES) {
        s_reject (request, MHD_HTTP_REQUEST_HEADER_FIELDS_TOO_LARGE, "headers_too_large", NULL,
                  NULL, "the request headers of %zu bytes are over the limit of %d bytes",
                  walk.bytes, GKX_HTTP_HEADERS_MAX_BYTES);
        return 0;
    }
    for (size_t i = 0; i < S_SINGLE_COUNT; i++) {
        if (walk.counts[i] > 1) {
            s_reject (request, MHD_HTTP_BAD_REQUEST, "bad_header", NULL, NULL,
                      "the header %s is given %u times; send it once", s_single_headers[i],
                      walk.counts[i]);
            return 0;
        }
    }
    const char *chunked = MHD_lookup_connection_value (request->connection, MHD_HEADER_KIND,
                                                       MHD_HTTP_HEADER_TRANSFER_ENCODING);
    if (chunked && strcasecmp (chunked, "chunked") != 0) {
        char quoted[S_QUOTE_BYTES];
        s_quote (quoted, sizeof quoted, chunked);
        s_reject (request, MHD_HTTP_BAD_REQUEST, "bad_header", NULL, NULL,
                  "Transfer-Encoding \"%s\" is not accepted; send chunked or a "
                  "Content-Length", quoted);
        return 0;
    }
    if (chunked && MHD_lookup_connection_value (request->connection, MHD_HEADER_KIND,
                                                MHD_HTTP_HEADER_CONTENT_LENGTH)) {
        s_reject (request, MHD_HTTP_BAD_REQUEST, "bad_header", NULL, NULL,
                  "both Content-Length and Transfer-Encoding are given; send one");
        return 0;
    }
    return 1;
}

/* Checks the bearer token; sends 401 and returns 0 when it is not right. */
static int
s_authorised (gkx_http_request_t *request)
{
    gkx_http_t *self = request->server;
    if (!self->token_hash) {
        return 1;
    }
    const char *header = MHD_lookup_connection_value (request->connection, MHD_HEADER_KIND,
                                                      MHD_HTTP_HEADER_AUTHORIZATION);
    if (!header) {
        s_reject (request, MHD_HTTP_UNAUTHORIZED, "unauthorized", MHD_HTTP_HEADER_WWW_AUTHENTICATE,
                  S_CHALLENGE, "missing bearer token: send Authorization: Bearer TOKEN");
        return 0;
    }
    if (strncasecmp (header, "Bearer ", 7) != 0) {
        s_reject (request, MHD_HTTP_UNAUTHORIZED, "unauthorized", MHD_HTTP_HEADER_WWW_AUTHENTICATE,
                  S_CHALLENGE, "the Authorization header is not a bearer token");
        return 0;
    }
    const char *given = header + 7;
    given += strspn (given, " ");
    size_t len = strlen (given);
    while (len > 0 && given[len - 1] == ' ') {
        len--;
    }
    /* Hashes of equal length, compared in constant time: the time tells
       neither the token's bytes nor its length. */
    uint8_t hash[crypto_generichash_BYTES];
    s_token_hash (hash, given, len);
    if (sodium_memcmp (hash, self->token_hash, sizeof hash) != 0) {
        s_reject (request, MHD_HTTP_UNAUTHORIZED, "unauthorized", MHD_HTTP_HEADER_WWW_AUTHENTICATE,
                  S_CHALLENGE_INVALID, "wrong bearer token");
        return 0;
    }
    return 1;
}

/* Finds the route for the request, capturing its segments; sends 400, 404
   or 405 and returns 0 when there is none. */
static int
s_route (gkx_http_request_t *request)
{
    gkx_http_t *self = request->server;
    char quoted[S_QUOTE_BYTES];
    s_quote (quoted, sizeof quoted, request->path);
    if (request->path[0] != '/') {
        s_reject (request, MHD_HTTP_NOT_FOUND, "not_found", NULL, NULL, "no such path: %s",
                  quoted);
        return 0;
    }
    char *segments[GKX_HTTP_SEGMENTS_MAX];
    size_t count = 0;
    int too_many = 0;
    const char *p = request->path + 1;
    /* "/" has no segments; "/a/" has two, the second empty. */
    int more = *p != '\0';
    while (more) {
        const char *end = strchr (p, '/');
        size_t len = end ? (size_t) (end - p) : strlen (p);
        if (count == GKX_HTTP_SEGMENTS_MAX) {
            too_many = 1;
            break;
        }
        char problem[S_QUOTE_BYTES];
        if (s_decode (&segments[count], p, len, 0, problem, sizeof problem) != GKX_OK) {
            s_segments_free (segments, count);
            s_reject (request, MHD_HTTP_BAD_REQUEST, "bad_segment", NULL, NULL,
                      "path segment %zu of %s is badly encoded: %s", count + 1, quoted, problem);
            return 0;
        }
        /* No route has one, and a proxy or a client library may resolve
           them where this server does not: refused, not just unmatched. */
        if (strcmp (segments[count], ".") == 0 || strcmp (segments[count], "..") == 0) {
            s_reject (request, MHD_HTTP_BAD_REQUEST, "bad_segment", NULL, NULL,
                      "path segment %zu of %s is \"%s\": dot segments are not accepted",
                      count + 1, quoted, segments[count]);
            s_segments_free (segments, count + 1);
            return 0;
        }
        count++;
        more = end != NULL;
        if (more) {
            p = end + 1;
        }
    }
    const s_route_t *found = NULL;
    char allow[S_ALLOW_BYTES] = "";
    size_t allow_len = 0;
    for (size_t r = 0; !too_many && r < self->routes_count; r++) {
        const s_route_t *route = &self->routes[r];
        int same = route->segments_count == count;
        for (size_t i = 0; same && i < count; i++) {
            same = !route->segments[i] || strcmp (route->segments[i], segments[i]) == 0;
        }
        if (!same) {
            continue;
        }
        if (strcmp (route->method, request->method) == 0) {
            found = route;
            break;
        }
        size_t mlen = strlen (route->method);
        if (!strstr (allow, route->method) && allow_len + mlen + 3 < sizeof allow) {
            if (allow_len) {
                memcpy (allow + allow_len, ", ", 2);
                allow_len += 2;
            }
            memcpy (allow + allow_len, route->method, mlen + 1);
            allow_len += mlen;
        }
    }
    if (!found) {
        s_segments_free (segments, count);
        if (allow_len) {
            char method[S_METHOD_BYTES + 4];
            s_quote (method, sizeof method, request->method);
            s_reject (request, MHD_HTTP_METHOD_NOT_ALLOWED, "method_not_allowed",
                      MHD_HTTP_HEADER_ALLOW, allow, "%s is not allowed on %s; use %s", method,
                      quoted, allow);
        }
        else {
            s_reject (request, MHD_HTTP_NOT_FOUND, "not_found", NULL, NULL, "no such path: %s",
                      quoted);
        }
        return 0;
    }
    request->route = found;
    for (size_t i = 0; i < count; i++) {
        if (found->segments[i]) {
            gkx_free (segments[i]);
            continue;
        }
        const char *problem = s_segment_problem (segments[i]);
        if (problem) {
            /* Those before i are kept or freed already; the rest are ours. */
            s_segments_free (segments + i, count - i);
            s_reject (request, MHD_HTTP_BAD_REQUEST, "bad_segment", NULL, NULL,
                      "path segment %zu of %s is not a safe token: %s", i + 1, quoted, problem);
            return 0;
        }
        request->segments[request->segments_count++] = segments[i];
    }
    return 1;
}

/* libmicrohttpd iterator: decodes one query parameter into the request;
   stops at the first that is badly encoded or given twice, noting why. */
static enum MHD_Result
s_query_add (void *cls, enum MHD_ValueKind kind, const char *key, const char *value)
{
    (void) kind;
    gkx_http_request_t *request = cls;
    char *name = NULL;
    char *text = NULL;
    char problem[S_QUOTE_BYTES];
    char quoted[S_QUOTE_BYTES];
    if (request->query_count == request->query_cap) {
        request->query_bad = 1;
        snprintf (request->query_problem, sizeof request->query_problem,
                  "the query string changed while it was read");
        return MHD_NO;
    }
    if (s_decode (&name, key, strlen (key), 1, problem, sizeof problem) != GKX_OK) {
        request->query_bad = 1;
        snprintf (request->query_problem, sizeof request->query_problem,
                  "parameter #%zu name: %s", request->query_count + 1, problem);
        return MHD_NO;
    }
    s_quote (quoted, sizeof quoted, name);
    if (s_decode (&text, value ? value : "", value ? strlen (value) : 0, 1, problem,
                  sizeof problem) != GKX_OK) {
        gkx_free (name);
        request->query_bad = 1;
        snprintf (request->query_problem, sizeof request->query_problem,
                  "parameter \"%s\": %s", quoted, problem);
        return MHD_NO;
    }
    /* Which of two values a handler would read is not for the client to
       guess (or for a proxy to decide differently); empty names, from
       "a=1&&b=2", are no parameters at all. */
    for (size_t i = 0; name[0] && i < request->query_count; i++) {
        if (strcmp (request->query_names[i], name) == 0) {
            gkx_free (name);
            gkx_free (text);
            request->query_bad = 1;
            snprintf (request->query_problem, sizeof request->query_problem,
                      "duplicate parameter \"%s\"", quoted);
            return MHD_NO;
        }
    }
    request->query_names[request->query_count] = name;
    request->query_values[request->query_count] = text;
    request->query_count++;
    return MHD_YES;
}

/* First call of a request, headers in: every check that needs no body. */
static enum MHD_Result
s_begin (gkx_http_request_t *request)
{
    gkx_http_t *self = request->server;
    s_client_note (request);
    if (!s_headers_sound (request) || !s_authorised (request)) {
        return request->replied ? MHD_YES : MHD_NO;
    }
    if (request->target_len > GKX_HTTP_TARGET_MAX_BYTES) {
        return s_reject (request, MHD_HTTP_URI_TOO_LONG, "uri_too_long", NULL, NULL,
                         "the request target of %zu bytes is over the limit of %d bytes",
                         request->target_len, GKX_HTTP_TARGET_MAX_BYTES);
    }
    if (!s_route (request)) {
        return request->replied ? MHD_YES : MHD_NO;
    }
    int count = MHD_get_connection_values (request->connection, MHD_GET_ARGUMENT_KIND, NULL,
                                           NULL);
    if (count < 0 || (size_t) count > self->query_max) {
        return s_reject (request, MHD_HTTP_BAD_REQUEST, "bad_query", NULL, NULL,
                         "the query string has %d parameters, more than the %zu allowed", count,
                         self->query_max);
    }
    if (count > 0) {
        request->query_cap = (size_t) count;
        request->query_names = gkx_zalloc (request->query_cap * sizeof *request->query_names);
        request->query_values = gkx_zalloc (request->query_cap * sizeof *request->query_values);
        MHD_get_connection_values (request->connection, MHD_GET_ARGUMENT_KIND, s_query_add,
                                   request);
    }
    if (request->query_bad) {
        return s_reject (request, MHD_HTTP_BAD_REQUEST, "bad_query", NULL, NULL, "%s",
                         request->query_problem);
    }
    const char *length = MHD_lookup_connection_value (request->connection, MHD_HEADER_KIND,
                                                      MHD_HTTP_HEADER_CONTENT_LENGTH);
    const char *chunked = MHD_lookup_connection_value (request->connection, MHD_HEADER_KIND,
                                                       MHD_HTTP_HEADER_TRANSFER_ENCODING);
    unsigned long long announced = 0;
    if (length) {
        /* libmicrohttpd has checked the syntax; a value past the limit is
           refused before any of the body is read. */
        errno = 0;
        announced = strtoull (length, NULL, 10);
        if (errno != 0 || announced > self->body_max) {
            return s_reject (request, MHD_HTTP_CONTENT_TOO_LARGE, "payload_too_large", NULL,
                             NULL, "the body of %llu bytes is over the limit of %zu bytes",
                             errno ? ULLONG_MAX : announced, self->body_max);
        }
    }
    if ((announced > 0 || chunked) && !self->body_discard) {
        const char *type = MHD_lookup_connection_value (request->connection, MHD_HEADER_KIND,
                                                        MHD_HTTP_HEADER_CONTENT_TYPE);
        if (!s_is_json_type (type)) {
            char quoted[S_QUOTE_BYTES];
            s_quote (quoted, sizeof quoted, type ? type : "none");
            return s_reject (request, MHD_HTTP_UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type",
                             NULL, NULL,
                             "the body must be application/json (UTF-8); Content-Type is %s",
                             quoted);
        }
        request->body_cap = announced > 0 ? (size_t) announced
                                          : (self->body_max < S_BODY_INITIAL_BYTES
                                                 ? self->body_max
                                                 : S_BODY_INITIAL_BYTES);
        request->body = gkx_zalloc (request->body_cap);
    }
    return MHD_YES;
}

/* A piece of the body: appended while it fits under the limit. */
static enum MHD_Result
s_receive (gkx_http_request_t *request, const char *data, size_t *size_p)
{
    gkx_http_t *self = request->server;
    size_t size = *size_p;
    if (request->body_dropped > 0 || size > self->body_max - request->body_len) {
        /* Only a chunked body gets here (a Content-Length over the limit was
           refused at the headers), and libmicrohttpd queues no reply
           mid-body: the rest is read and dropped so that the end can be
           answered 413, up to the limit once more; past that the
           connection is closed instead of reading on. */
        if (size > self->body_max - request->body_dropped) {
            return MHD_NO;
        }
        request->body_dropped += size;
        gkx_free (request->body);
        request->body = NULL;
        request->body_cap = 0;
        *size_p = 0;
        return MHD_YES;
    }
    if (self->body_discard) {
        request->body_len += size;
        *size_p = 0;
        return MHD_YES;
    }
    if (request->body_len + size > request->body_cap) {
        size_t cap = request->body_cap ? request->body_cap : S_BODY_INITIAL_BYTES;
        cap = cap < self->body_max ? cap : self->body_max;
        while (cap < request->body_len + size) {
            cap = cap > self->body_max / 2 ? self->body_max : cap * 2;
        }
        request->body = gkx_realloc (request->body, cap);
        request->body_cap = cap;
    }
    memcpy (request->body + request->body_len, data, size);
    request->body_len += size;
    *size_p = 0;
    return MHD_YES;
}

/* Whole request in: checks its type and hands it to a worker. */
static enum MHD_Result
s_finish (gkx_http_request_t *request)
{
    gkx_http_t *self = request->server;
    if (request->body_dropped > 0) {
        return s_reject (request, MHD_HTTP_CONTENT_TOO_LARGE, "payload_too_large", NULL, NULL,
                         "the chunked body is over the limit of %zu bytes", self->body_max);
    }
    if (request->body_len > 0 && !self->body_discard) {
        const char *type = MHD_lookup_connection_value (request->connection, MHD_HEADER_KIND,
                                                        MHD_HTTP_HEADER_CONTENT_TYPE);
        if (!s_is_json_type (type)) {
            char quoted[S_QUOTE_BYTES];
            s_quote (quoted, sizeof quoted, type ? type : "none");
            return s_reject (request, MHD_HTTP_UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type",
                             NULL, NULL,
                             "the body must be application/json (UTF-8); Content-Type is %s",
                             quoted);
        }
    }
    /* Suspended before it is queued, so the worker's resume cannot come
       first; nothing is queued once close has begun. */
    pthread_mutex_lock (&self->lock);
    int stopping = self->stopping;
    if (!stopping) {
        s_watch_phase (self, request->connection, S_PHASE_BUSY);
        MHD_suspend_connection (request->connection);
        request->queued = 1;
        if (self->queue_tail) {
            self->queue_tail->next = request;
        }
        else {
            self->queue_head = request;
        }
        self->queue_tail = request;
        pthread_cond_signal (&self->wake);
    }
    pthread_mutex_unlock (&self->lock);
    if (stopping) {
        return s_reject (request, MHD_HTTP_SERVICE_UNAVAILABLE, "unavailable", NULL, NULL,
                         "the server is stopping");
    }
    return MHD_YES;
}

/* The handler has run (connection resumed): sends what it gave. */
static enum MHD_Result
s_respond (gkx_http_request_t *request)
{
    int status = request->status;
    json_t *reply = request->reply;
    request->reply = NULL;
    if (status < 100 || status > 599) {
        json_decref (reply);
        return s_reject (request, MHD_HTTP_INTERNAL_SERVER_ERROR, "internal", NULL, NULL,
                         "the handler of %s gave the invalid status %d", request->route->pattern,
                         status);
    }
    if (request->has_text) {
        json_decref (reply);
        return s_send (request, status, request->text_type ? request->text_type : S_TYPE_TEXT,
                       request->text, request->text_len, NULL, NULL);
    }
    if (!reply) {
        return s_reject (request, MHD_HTTP_INTERNAL_SERVER_ERROR, "internal", NULL, NULL,
                         "the handler of %s gave no reply", request->route->pattern);
    }
    return s_send_json (request, status, reply, NULL, NULL);
}

/* On a worker: checks and parses the body, then calls the handler; the
   reply and status are left in the request. */
static void
s_run (gkx_http_request_t *request)
{
    gkx_http_t *self = request->server;
    request->status = MHD_HTTP_OK;
    if (request->body_len > 0 && !self->body_discard) {
        size_t bad = s_utf8_bad (request->body, request->body_len);
        if (bad != request->body_len) {
            request->reply = gkx_http_error (&request->status, MHD_HTTP_BAD_REQUEST,
                                             "invalid_utf8",
                                             "the body is not valid UTF-8 (byte %zu)", bad);
            return;
        }
        json_error_t error;
        request->json = json_loadb ((const char *) request->body, request->body_len,
                                    JSON_REJECT_DUPLICATES, &error);
        if (!request->json) {
            request->reply = gkx_http_error (&request->status, MHD_HTTP_BAD_REQUEST,
                                             "malformed_json",
                                             "malformed JSON at line %d, column %d: %s",
                                             error.line, error.column, error.text);
            return;
        }
    }
    request->reply = request->route->handler (request, self->user, &request->status);
}

/* Handler thread: runs queued requests' handlers until close, then ends
   once the queue is empty. */
static void *
s_worker (void *arg)
{
    gkx_http_t *self = arg;
    for (;;) {
        pthread_mutex_lock (&self->lock);
        while (!self->queue_head && !self->stopping) {
            pthread_cond_wait (&self->wake, &self->lock);
        }
        gkx_http_request_t *request = self->queue_head;
        if (request) {
            self->queue_head = request->next;
            if (!self->queue_head) {
                self->queue_tail = NULL;
            }
        }
        pthread_mutex_unlock (&self->lock);
        if (!request) {
            return NULL;
        }
        s_run (request);
        atomic_store_explicit (&request->handled, 1, memory_order_release);
        MHD_resume_connection (request->connection);
    }
}

/* libmicrohttpd access handler: called at the headers, per body piece and
   at the end of each request. */
static enum MHD_Result
s_access (void *cls, struct MHD_Connection *connection, const char *url, const char *method,
          const char *version, const char *upload_data, size_t *upload_data_size, void **con_cls)
{
    (void) version;
    gkx_http_request_t *request = *con_cls;
    if (!request) {
        /* s_uri_log made it, unless libmicrohttpd ever skips that call. */
        request = s_request_new (cls, connection, NULL);
        *con_cls = request;
    }
    if (!request->begun) {
        request->begun = 1;
        request->method = method;
        request->path = url;
        return s_begin (request);
    }
    if (request->replied) {
        /* libmicrohttpd does not call after a reply; if it ever did, the
           rest of the request is not wanted. */
        return MHD_NO;
    }
    if (atomic_load_explicit (&request->handled, memory_order_acquire)) {
        return s_respond (request);
    }
    if (request->queued) {
        /* Not called while suspended; if it were, wait for the worker. */
        return MHD_YES;
    }
    if (*upload_data_size > 0) {
        return s_receive (request, upload_data, upload_data_size);
    }
    return s_finish (request);
}

/* libmicrohttpd completion callback: counts requests left unanswered and
   frees the request. */
static void
s_completed (void *cls, struct MHD_Connection *connection, void **con_cls,
             enum MHD_RequestTerminationCode toe)
{
    (void) toe;
    gkx_http_t *self = cls;
    /* A kept-alive connection now waits for its next request line. */
    s_watch_phase (self, connection, S_PHASE_WAIT);
    gkx_http_request_t *request = *con_cls;
    if (!request) {
        return;
    }
    /* A request libmicrohttpd refused itself before the headers were in
       (a bad request line, headers too large) was answered by it. */
    if (request->begun && !request->replied) {
        atomic_fetch_add_explicit (&self->aborted, 1, memory_order_relaxed);
    }
    s_request_destroy (&request);
    *con_cls = NULL;
}

/* libmicrohttpd URI log callback, called once per request with the request
   target as sent, before the query is cut off and split: makes the request,
   which libmicrohttpd then hands to s_access and s_completed. */
static void *
s_uri_log (void *cls, const char *uri, struct MHD_Connection *connection)
{
    /* The request line is in; the rest of the request has its own time. */
    s_watch_phase (cls, connection, S_PHASE_READ);
    return s_request_new (cls, connection, uri);
}

/* libmicrohttpd unescape callback that leaves the URL raw (see the top). */
static size_t
s_unescape_none (void *cls, struct MHD_Connection *connection, char *s)
{
    (void) cls;
    (void) connection;
    return strlen (s);
}

/* libmicrohttpd logger: while starting, keeps the last message, which
   tells why starting failed; once running, drops them (every failure a
   client can cause is answered or counted instead). */
static void
s_log (void *cls, const char *fmt, va_list args)
{
    gkx_http_t *self = cls;
    if (atomic_load (&self->started)) {
        return;
    }
    pthread_mutex_lock (&self->log_lock);
    vsnprintf (self->log_message, sizeof self->log_message, fmt, args);
    size_t len = strlen (self->log_message);
    while (len > 0 && (self->log_message[len - 1] == '\n' || self->log_message[len - 1] == ' ')) {
        self->log_message[--len] = '\0';
    }
    pthread_mutex_unlock (&self->log_lock);
}

/* Parses "host:port" or "[v6]:port" into a socket address. */
static int
s_address_parse (struct sockaddr_storage *out, const char *address, char *errbuf)
{
    if (!address || !*address) {
        return gkx_fail (errbuf, GKX_EINVAL, "http: no listen address (host:port)");
    }
    const char *host = address;
    size_t host_len;
    const char *colon;
    if (address[0] == '[') {
        const char *close = strchr (address, ']');
        if (!close || close[1] != ':') {
            return gkx_fail (errbuf, GKX_EINVAL, "http: address %s: use [v6-address]:port",
                             address);
        }
        host = address + 1;
        host_len = (size_t) (close - host);
        colon = close + 1;
    }
    else {
        colon = strchr (address, ':');
        if (!colon || strchr (colon + 1, ':')) {
            return gkx_fail (errbuf, GKX_EINVAL,
                             "http: address %s: use host:port (or [v6-address]:port)", address);
        }
        host_len = (size_t) (colon - address);
    }
    const char *port = colon + 1;
    size_t digits = strspn (port, "0123456789");
    if (host_len == 0 || host_len >= S_HOST_BYTES || digits == 0 || digits > 5
        || port[digits] != '\0' || strtoul (port, NULL, 10) > 65535) {
        return gkx_fail (errbuf, GKX_EINVAL,
                         "http: address %s: needs a host and a port from 0 to 65535", address);
    }
    char name[S_HOST_BYTES];
    memcpy (name, host, host_len);
    name[host_len] = '\0';
    struct addrinfo hints;
    memset (&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_NUMERICSERV;
    struct addrinfo *found = NULL;
    int gai = getaddrinfo (name, port, &hints, &found);
    if (gai != 0) {
        return gkx_fail (errbuf, GKX_EINVAL, "http: address %s: %s", address, gai_strerror (gai));
    }
    memset (out, 0, sizeof *out);
    memcpy (out, found->ai_addr, found->ai_addrlen);
    freeaddrinfo (found);
    return GKX_OK;
}

/* Frees a compiled route's strings. */
static void
s_route_free (s_route_t *route)
{
    gkx_free (route->pattern);
    for (size_t i = 0; i < route->segments_count; i++) {
        gkx_free (route->segments[i]);
    }
}

/* Compiles "METHOD /a/{}/b" into route. */
static int
s_route_compile (s_route_t *route, const gkx_http_route_t *given, char *errbuf)
{
    const char *pattern = given->pattern;
    if (!pattern) {
        return gkx_fail (errbuf, GKX_EINVAL, "http: route without a pattern");
    }
    if (!given->handler) {
        return gkx_fail (errbuf, GKX_EINVAL, "http: route \"%s\" has no handler", pattern);
    }
    route->pattern = gkx_strdup (pattern);
    route->handler = given->handler;
    size_t mlen = strspn (pattern, "ABCDEFGHIJKLMNOPQRSTUVWXYZ");
    if (mlen == 0 || mlen >= S_METHOD_BYTES || pattern[mlen] != ' ' || pattern[mlen + 1] != '/') {
        return gkx_fail (errbuf, GKX_EINVAL, "http: route \"%s\": use \"METHOD /path\"", pattern);
    }
    memcpy (route->method, pattern, mlen);
    route->method[mlen] = '\0';
    const char *p = pattern + mlen + 2;
    while (*p) {
        const char *end = strchr (p, '/');
        size_t len = end ? (size_t) (end - p) : strlen (p);
        if (route->segments_count == GKX_HTTP_SEGMENTS_MAX) {
            return gkx_fail (errbuf, GKX_EINVAL, "http: route \"%s\": more than %d segments",
                             pattern, GKX_HTTP_SEGMENTS_MAX);
        }
        int placeholder = len == 2 && p[0] == '{' && p[1] == '}';
        char *literal = gkx_zalloc (len + 1);
        memcpy (literal, p, len);
        int bad = len == 0 || (!placeholder && strpbrk (literal, "{}%?# \t"));
        if (bad) {
            gkx_free (literal);
            return gkx_fail (errbuf, GKX_EINVAL,
                             "http: route \"%s\": segment %zu must be text or {}", pattern,
                             route->segments_count + 1);
        }
        if (placeholder) {
            gkx_free (literal);
            literal = NULL;
        }
        route->segments[route->segments_count++] = literal;
        if (!end) {
            break;
        }
        p = end + 1;
        if (!*p) {
            return gkx_fail (errbuf, GKX_EINVAL, "http: route \"%s\": ends with '/'", pattern);
        }
    }
    return GKX_OK;
}

/* Returns 1 when two compiled routes answer the same requests. */
static int
s_route_same (const s_route_t *a, const s_route_t *b)
{
    if (strcmp (a->method, b->method) != 0 || a->segments_count != b->segments_count) {
        return 0;
    }
    for (size_t i = 0; i < a->segments_count; i++) {
        if (!a->segments[i] != !b->segments[i]
            || (a->segments[i] && strcmp (a->segments[i], b->segments[i]) != 0)) {
            return 0;
        }
    }
    return 1;
}

/* Lets the workers drain the queue and end; waits for them. */
static void
s_workers_stop (gkx_http_t *self)
{
    pthread_mutex_lock (&self->lock);
    self->stopping = 1;
    pthread_cond_broadcast (&self->wake);
    pthread_mutex_unlock (&self->lock);
    for (unsigned i = 0; i < self->workers_count; i++) {
        pthread_join (self->workers[i], NULL);
    }
    self->workers_count = 0;
}

/* Frees a server whose libmicrohttpd is stopped or was never started. */
static void
s_destroy (gkx_http_t **self_p)
{
    gkx_http_t *self = *self_p;
    s_workers_stop (self);
    s_watchdog_stop (self);
    gkx_free (self->workers);
    /* libmicrohttpd says every connection closed as it stops; should one
       be left, it is freed here. */
    while (self->watches) {
        s_watch_t *watch = self->watches;
        self->watches = watch->next;
        gkx_free (watch);
    }
    pthread_cond_destroy (&self->wake);
    pthread_cond_destroy (&self->watch_wake);
    pthread_mutex_destroy (&self->lock);
    pthread_mutex_destroy (&self->log_lock);
    pthread_mutex_destroy (&self->watch_lock);
    for (size_t i = 0; i < self->routes_count; i++) {
        s_route_free (&self->routes[i]);
    }
    gkx_free (self->routes);
    if (self->token_hash) {
        sodium_free (self->token_hash);
    }
    gkx_free (self);
    *self_p = NULL;
}

int
gkx_http_open (gkx_http_t **self_p, const gkx_http_options_t *options, char *errbuf)
{
    assert (self_p);
    assert (options);
    assert (options->routes || options->routes_count == 0);
    struct sockaddr_storage address;
    int rc = s_address_parse (&address, options->address, errbuf);
    if (rc != GKX_OK) {
        return rc;
    }
    /* jansson seeds its hash function on first use, racily; seed it before
       any thread of ours creates JSON (a no-op once seeded). */
    json_object_seed (0);
    gkx_http_t *self = gkx_zalloc (sizeof *self);
    pthread_mutex_init (&self->lock, NULL);
    pthread_mutex_init (&self->log_lock, NULL);
    pthread_mutex_init (&self->watch_lock, NULL);
    pthread_cond_init (&self->wake, NULL);
    pthread_cond_init (&self->watch_wake, NULL);
    self->user = options->user;
    self->body_max = options->body_max ? options->body_max : GKX_HTTP_BODY_MAX_DEFAULT;
    self->body_discard = options->body_discard;
    self->query_max = options->query_max ? options->query_max : GKX_HTTP_QUERY_MAX;
    self->routes = gkx_zalloc ((options->routes_count + 1) * sizeof *self->routes);
    for (size_t i = 0; i < options->routes_count; i++) {
        rc = s_route_compile (&self->routes[i], &options->routes[i], errbuf);
        self->routes_count++;
        for (size_t k = 0; rc == GKX_OK && k < i; k++) {
            if (s_route_same (&self->routes[k], &self->routes[i])) {
                rc = gkx_fail (errbuf, GKX_EINVAL, "http: route \"%s\" is given twice",
                               options->routes[i].pattern);
            }
        }
        if (rc != GKX_OK) {
            goto cleanup;
        }
    }
    if (options->token) {
        size_t len = strlen (options->token);
        if (len == 0 || len > S_TOKEN_MAX_BYTES) {
            rc = gkx_fail (errbuf, GKX_EINVAL, "http: the token must have 1 to %d bytes",
                           S_TOKEN_MAX_BYTES);
            goto cleanup;
        }
        if (sodium_init () < 0) {
            rc = gkx_fail (errbuf, GKX_EIO, "http: libsodium failed to initialise");
            goto cleanup;
        }
        self->token_hash = sodium_malloc (crypto_generichash_BYTES);
        if (!self->token_hash) {
            rc = gkx_fail (errbuf, GKX_EIO, "http: no guarded memory for the token");
            goto cleanup;
        }
        s_token_hash (self->token_hash, options->token, len);
    }
    unsigned threads = options->threads ? options->threads : GKX_HTTP_THREADS_DEFAULT;
    self->workers = gkx_zalloc (threads * sizeof *self->workers);
    for (unsigned i = 0; i < threads; i++) {
        int error = pthread_create (&self->workers[i], NULL, s_worker, self);
        if (error != 0) {
            rc = gkx_fail (errbuf, GKX_EIO, "http: cannot start a handler thread: %s",
                           strerror (error));
            goto cleanup;
        }
        self->workers_count++;
    }
    /* One event-loop thread does all the socket work; handlers run on the
       workers, so it never blocks. */
    unsigned flags = MHD_USE_AUTO_INTERNAL_THREAD | MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ERROR_LOG;
    if (address.ss_family == AF_INET6) {
        flags |= MHD_USE_IPv6;
    }
    unsigned timeout = options->timeout_s ? options->timeout_s : GKX_HTTP_TIMEOUT_DEFAULT;
    unsigned connections =
        options->connections_max ? options->connections_max : GKX_HTTP_CONNECTIONS_DEFAULT;
    unsigned per_ip = options->per_ip_max ? options->per_ip_max : GKX_HTTP_PER_IP_DEFAULT;
    self->deadline_ms = (uint64_t) timeout * 1000u;
    int error = pthread_create (&self->watchdog, NULL, s_watchdog, self);
    if (error != 0) {
        rc = gkx_fail (errbuf, GKX_EIO, "http: cannot start the watchdog thread: %s",
                       strerror (error));
        goto cleanup;
    }
    self->watchdog_running = 1;
    /* The port is also given apart, only for libmicrohttpd's messages. */
    uint16_t port = address.ss_family == AF_INET6
        ? ntohs (((const struct sockaddr_in6 *) &address)->sin6_port)
        : ntohs (((const struct sockaddr_in *) &address)->sin_port);
    errno = 0;
    self->daemon = MHD_start_daemon (
        flags, port, NULL, NULL, s_access, self,
        MHD_OPTION_SOCK_ADDR, (const struct sockaddr *) &address,
        MHD_OPTION_CONNECTION_TIMEOUT, timeout,
        MHD_OPTION_CONNECTION_LIMIT, connections,
        MHD_OPTION_PER_IP_CONNECTION_LIMIT, per_ip,
        MHD_OPTION_NOTIFY_CONNECTION, s_notify, self,
        MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t) S_CONNECTION_MEMORY,
        MHD_OPTION_NOTIFY_COMPLETED, s_completed, self,
        MHD_OPTION_URI_LOG_CALLBACK, s_uri_log, self,
        MHD_OPTION_UNESCAPE_CALLBACK, s_unescape_none, self,
        MHD_OPTION_EXTERNAL_LOGGER, s_log, self,
        MHD_OPTION_STRICT_FOR_CLIENT, (int) 1,
        MHD_OPTION_END);
    if (!self->daemon) {
        rc = gkx_fail (errbuf, GKX_EIO, "http: cannot listen on %s: %s", options->address,
                       self->log_message[0] ? self->log_message
                       : errno              ? strerror (errno)
                                            : "libmicrohttpd failed to start");
        goto cleanup;
    }
    atomic_store (&self->started, 1);
    const union MHD_DaemonInfo *info = MHD_get_daemon_info (self->daemon,
                                                            MHD_DAEMON_INFO_BIND_PORT);
    self->port = info ? info->port : 0;
    *self_p = self;
    return GKX_OK;
cleanup:
    s_destroy (&self);
    return rc;
}

void
gkx_http_close (gkx_http_t **self_p)
{
    if (!self_p || !*self_p) {
        return;
    }
    gkx_http_t *self = *self_p;
    /* Every queued request is handled and resumed before libmicrohttpd
       stops; requests completing meanwhile get 503. */
    s_workers_stop (self);
    s_watchdog_stop (self);
    if (self->daemon) {
        MHD_stop_daemon (self->daemon);
        self->daemon = NULL;
    }
    s_destroy (self_p);
}

unsigned
gkx_http_port (const gkx_http_t *self)
{
    assert (self);
    return self->port;
}

void
gkx_http_stats (const gkx_http_t *self, gkx_http_stats_t *out)
{
    assert (self);
    assert (out);
    out->requests = atomic_load_explicit (&self->requests, memory_order_relaxed);
    out->status_2xx = atomic_load_explicit (&self->classes[2], memory_order_relaxed);
    out->status_3xx = atomic_load_explicit (&self->classes[3], memory_order_relaxed);
    out->status_4xx = atomic_load_explicit (&self->classes[4], memory_order_relaxed);
    out->status_5xx = atomic_load_explicit (&self->classes[5], memory_order_relaxed);
    out->aborted = atomic_load_explicit (&self->aborted, memory_order_relaxed);
    out->cut = atomic_load_explicit (&self->cut, memory_order_relaxed);
}

const char *
gkx_http_method (const gkx_http_request_t *request)
{
    assert (request);
    return request->method;
}

const char *
gkx_http_path (const gkx_http_request_t *request)
{
    assert (request);
    return request->path;
}

size_t
gkx_http_segment_count (const gkx_http_request_t *request)
{
    assert (request);
    return request->segments_count;
}

const char *
gkx_http_segment (const gkx_http_request_t *request, size_t index)
{
    assert (request);
    return index < request->segments_count ? request->segments[index] : NULL;
}

const char *
gkx_http_query (const gkx_http_request_t *request, const char *name)
{
    assert (request);
    assert (name);
    for (size_t i = 0; i < request->query_count; i++) {
        if (strcmp (request->query_names[i], name) == 0) {
            return request->query_values[i];
        }
    }
    return NULL;
}

const char *
gkx_http_raw_query (const gkx_http_request_t *request)
{
    assert (request);
    return request->raw_query;
}

int
gkx_http_client_addr (const gkx_http_request_t *request, struct sockaddr_storage *out,
                      socklen_t *len_p)
{
    assert (request);
    assert (out);
    assert (len_p);
    if (request->client_len == 0) {
        return GKX_ENOTFOUND;
    }
    memset (out, 0, sizeof *out);
    memcpy (out, &request->client, request->client_len);
    *len_p = request->client_len;
    return GKX_OK;
}

const char *
gkx_http_client_text (const gkx_http_request_t *request)
{
    assert (request);
    return request->client_text;
}

json_t *
gkx_http_body (const gkx_http_request_t *request)
{
    assert (request);
    return request->json;
}

json_t *
gkx_http_reply_text (gkx_http_request_t *request, const char *text, size_t len)
{
    assert (request);
    assert (text || len == 0);
    gkx_free (request->text);
    request->text = gkx_memdup (len ? text : "", len);
    request->text_len = len;
    request->has_text = 1;
    gkx_free (request->text_type);
    request->text_type = NULL;
    return json_null ();
}

json_t *
gkx_http_reply_typed (gkx_http_request_t *request, const char *type, const char *text,
                      size_t len)
{
    assert (request);
    /* A header value: printable ASCII only, so no line break can end it. */
    assert (type && type[0]);
    for (const char *p = type; *p; p++) {
        assert (*p >= 0x20 && *p < 0x7f);
    }
    json_t *placeholder = gkx_http_reply_text (request, text, len);
    request->text_type = gkx_strdup (type);
    return placeholder;
}

json_t *
gkx_http_error (int *status_p, int status, const char *code, const char *fmt, ...)
{
    assert (status_p);
    assert (code);
    assert (fmt);
    char message[S_MESSAGE_BYTES];
    va_list args;
    va_start (args, fmt);
    vsnprintf (message, sizeof message, fmt, args);
    va_end (args);
    *status_p = status;
    return s_error_body (code, message);
}
