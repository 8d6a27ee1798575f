/*  test_http - the JSON-over-HTTP server frame and the CLI's API client.
    Part of gokart-exchange; MIT licence.

    Every case starts a real server on 127.0.0.1 with a free port and talks
    to it the way clients will: libcurl for ordinary requests, raw sockets
    where a client must misbehave (stall, announce a body and never send
    it). The CLI client is driven against the same server from a temporary
    node directory, with stderr captured to check its one-line messages.
*/
#include "testutil.h"

#include "client.h"

#include <gkx/http.h>

#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdatomic.h>
#include <pthread.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>

/* The bearer token of the test server. */
#define S_TOKEN "s3cret-token-0123456789abcdef"
/* Milliseconds the slow handler sleeps. */
#define S_SLOW_MS 200
/* Concurrent requests of the concurrency case. */
#define S_PARALLEL 8
/* Connections that stall in the stalled-client case. */
#define S_STALLED 8
/* Body limit of the test server, and the body sent over it. */
#define S_LIMIT (1024 * 1024)
#define S_OVER (2 * 1024 * 1024)
/* Room for the response headers a case looks at. */
#define S_HEADERS_BYTES 4096
/* Room for a URL, past the longest request target the server takes. */
#define S_URL_BYTES (2 * GKX_HTTP_TARGET_MAX_BYTES)
/* A postback's largest query: parameters and bytes. */
#define S_POSTBACK_PARAMS 256
#define S_POSTBACK_QUERY_BYTES 8192

/* A reply as the test sees it. */
typedef struct {
    long status;                        /* HTTP status, 0 when none */
    CURLcode code;                      /* libcurl's result */
    char *body;                         /* reply body, NUL-terminated */
    size_t len;                         /* bytes in body */
    char headers[S_HEADERS_BYTES];      /* raw response headers */
    size_t headers_len;                 /* bytes in headers */
    json_t *json;                       /* body parsed, NULL when not JSON */
} s_reply_t;

/* What a request sends. */
typedef struct {
    const char *method;                 /* "GET" */
    const char *path;                   /* path and query, as sent */
    const char *token;                  /* bearer token, NULL for none */
    const char *type;                   /* Content-Type, NULL for application/json */
    const char *body;                   /* body bytes, NULL for none */
    size_t len;                         /* bytes in body */
    int chunked;                        /* send the body chunked */
} s_ask_t;

/* Handler: GET /v1/ping. */
static json_t *
s_ping (gkx_http_request_t *request, void *user, int *status_p)
{
    (void) request;
    (void) user;
    (void) status_p;
    return json_pack ("{s:b}", "pong", 1);
}

/* Handler: POST and PATCH /v1/echo return the body, 201. */
static json_t *
s_echo (gkx_http_request_t *request, void *user, int *status_p)
{
    (void) user;
    json_t *body = gkx_http_body (request);
    *status_p = 201;
    return body ? json_incref (body) : json_pack ("{s:b}", "empty", 1);
}

/* Handler: GET /v1/items/{} returns the id and the query parameter q. */
static json_t *
s_item (gkx_http_request_t *request, void *user, int *status_p)
{
    (void) user;
    (void) status_p;
    const char *q = gkx_http_query (request, "q");
    return json_pack ("{s:s, s:o, s:i, s:s}", "id", gkx_http_segment (request, 0), "q",
                      q ? json_string (q) : json_null (), "count",
                      (int) gkx_http_segment_count (request), "method",
                      gkx_http_method (request));
}

/* Handler: GET /v1/items/{}/parts/{} returns both segments. */
static json_t *
s_part (gkx_http_request_t *request, void *user, int *status_p)
{
    (void) user;
    (void) status_p;
    ck_assert_ptr_null (gkx_http_segment (request, 2));
    return json_pack ("{s:s, s:s, s:s}", "id", gkx_http_segment (request, 0), "part",
                      gkx_http_segment (request, 1), "path", gkx_http_path (request));
}

/* Handler: GET /metrics answers text. */
static json_t *
s_metrics (gkx_http_request_t *request, void *user, int *status_p)
{
    (void) user;
    (void) status_p;
    static const char text[] = "gkx_up 1\n";
    return gkx_http_reply_text (request, text, sizeof text - 1);
}

/* Handler: GET /v1/typed answers text of its own type. */
static json_t *
s_typed (gkx_http_request_t *request, void *user, int *status_p)
{
    (void) user;
    *status_p = 203;
    static const char text[] = "# TYPE gkx_up gauge\ngkx_up 1\n";
    return gkx_http_reply_typed (request, "text/plain; version=0.0.4; charset=utf-8", text,
                                 sizeof text - 1);
}

/* Set by the slow handler when it starts. */
static atomic_int s_slow_started;

/* Handler: GET /v1/slow sleeps, then answers. */
static json_t *
s_slow (gkx_http_request_t *request, void *user, int *status_p)
{
    (void) request;
    (void) user;
    (void) status_p;
    atomic_store (&s_slow_started, 1);
    struct timespec pause = {0, S_SLOW_MS * 1000000L};
    nanosleep (&pause, NULL);
    return json_pack ("{s:b}", "slow", 1);
}

/* Handler: GET /v1/null gives no reply. */
static json_t *
s_null (gkx_http_request_t *request, void *user, int *status_p)
{
    (void) request;
    (void) user;
    (void) status_p;
    return NULL;
}

/* Handler: GET /v1/teapot answers an error of its own. */
static json_t *
s_teapot (gkx_http_request_t *request, void *user, int *status_p)
{
    (void) request;
    ck_assert_str_eq (user, "user");
    return gkx_http_error (status_p, 418, "teapot", "short and %s", "stout");
}

/* Handler: GET and POST /v1/raw return the raw query, how many parameters
   the frame decoded (counted through gkx_http_query for p0, p1, ...), the
   value of q, whether there was a body, and the client's address. */
static json_t *
s_raw (gkx_http_request_t *request, void *user, int *status_p)
{
    (void) user;
    (void) status_p;
    size_t params = 0;
    for (;; params++) {
        char name[32];
        snprintf (name, sizeof name, "p%zu", params);
        if (!gkx_http_query (request, name)) {
            break;
        }
    }
    const char *q = gkx_http_query (request, "q");
    struct sockaddr_storage ss;
    socklen_t len = 0;
    json_t *client = json_null ();
    if (gkx_http_client_addr (request, &ss, &len) == GKX_OK) {
        char text[INET6_ADDRSTRLEN] = "";
        unsigned port = 0;
        if (ss.ss_family == AF_INET) {
            const struct sockaddr_in *in4 = (const struct sockaddr_in *) &ss;
            ck_assert_uint_eq (len, sizeof *in4);
            inet_ntop (AF_INET, &in4->sin_addr, text, sizeof text);
            port = ntohs (in4->sin_port);
        }
        else {
            const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *) &ss;
            ck_assert_int_eq (ss.ss_family, AF_INET6);
            ck_assert_uint_eq (len, sizeof *in6);
            inet_ntop (AF_INET6, &in6->sin6_addr, text, sizeof text);
            port = ntohs (in6->sin6_port);
        }
        client = json_pack ("{s:s, s:i, s:s}", "address", text, "port", (int) port, "text",
                            gkx_http_client_text (request));
    }
    return json_pack ("{s:s, s:i, s:o, s:b, s:o}", "raw", gkx_http_raw_query (request), "params",
                      (int) params, "q", q ? json_string (q) : json_null (), "body",
                      gkx_http_body (request) != NULL, "client", client);
}

/* The test server's routes. */
static const gkx_http_route_t s_routes[] = {
    {"GET /v1/ping", s_ping},
    {"POST /v1/echo", s_echo},
    {"PATCH /v1/echo", s_echo},
    {"GET /v1/items/{}", s_item},
    {"GET /v1/items/{}/parts/{}", s_part},
    {"GET /metrics", s_metrics},
    {"GET /v1/typed", s_typed},
    {"GET /v1/slow", s_slow},
    {"GET /v1/null", s_null},
    {"GET /v1/teapot", s_teapot},
    {"GET /v1/raw", s_raw},
    {"POST /v1/raw", s_raw},
};

/* The handlers' user pointer. */
static char s_user[] = "user";

/* Returns the options of a test server with the test routes on address. */
static gkx_http_options_t
s_options (const char *address, const char *token, unsigned timeout_s)
{
    gkx_http_options_t options = {0};
    options.address = address;
    options.token = token;
    options.routes = s_routes;
    options.routes_count = sizeof s_routes / sizeof s_routes[0];
    options.user = s_user;
    options.body_max = S_LIMIT;
    options.timeout_s = timeout_s;
    return options;
}

/* Starts a server with options; fails the test when it cannot. */
static gkx_http_t *
s_start_with (const gkx_http_options_t *options)
{
    gkx_http_t *server = NULL;
    char errbuf[GKX_ERRBUF_BYTES] = "";
    ck_assert_msg (gkx_http_open (&server, options, errbuf) == GKX_OK, "open: %s", errbuf);
    ck_assert_uint_gt (gkx_http_port (server), 0);
    return server;
}

/* Starts a server with the test routes; timeout_s 0 for the default. */
static gkx_http_t *
s_start (const char *token, unsigned timeout_s)
{
    gkx_http_options_t options = s_options ("127.0.0.1:0", token, timeout_s);
    return s_start_with (&options);
}

/* libcurl write callback: collects the body. */
static size_t
s_on_body (char *data, size_t size, size_t count, void *user)
{
    s_reply_t *reply = user;
    size_t len = size * count;
    reply->body = realloc (reply->body, reply->len + len + 1);
    memcpy (reply->body + reply->len, data, len);
    reply->len += len;
    reply->body[reply->len] = '\0';
    return len;
}

/* libcurl header callback: collects the headers. */
static size_t
s_on_header (char *data, size_t size, size_t count, void *user)
{
    s_reply_t *reply = user;
    size_t len = size * count;
    if (reply->headers_len + len < sizeof reply->headers) {
        memcpy (reply->headers + reply->headers_len, data, len);
        reply->headers_len += len;
        reply->headers[reply->headers_len] = '\0';
    }
    return len;
}

/* Returns a new easy handle set up for one request to host (and its header
   list in *headers_p, the caller's). */
static CURL *
s_easy_to (const char *host, unsigned port, const s_ask_t *ask, s_reply_t *reply,
           struct curl_slist **headers_p)
{
    char url[S_URL_BYTES];
    char auth[256];
    char type[256];
    int url_len = snprintf (url, sizeof url, "http://%s:%u%s", host, port, ask->path);
    ck_assert_int_lt (url_len, (int) sizeof url);
    CURL *curl = curl_easy_init ();
    ck_assert_ptr_nonnull (curl);
    struct curl_slist *headers = NULL;
    if (ask->token) {
        snprintf (auth, sizeof auth, "Authorization: Bearer %s", ask->token);
        headers = curl_slist_append (headers, auth);
    }
    if (ask->body || ask->type) {
        snprintf (type, sizeof type, "Content-Type:%s%s", ask->type && !*ask->type ? "" : " ",
                  ask->type ? ask->type : "application/json");
        headers = curl_slist_append (headers, type);
    }
    if (ask->chunked) {
        headers = curl_slist_append (headers, "Transfer-Encoding: chunked");
    }
    curl_easy_setopt (curl, CURLOPT_URL, url);
    curl_easy_setopt (curl, CURLOPT_PATH_AS_IS, 1L);
    curl_easy_setopt (curl, CURLOPT_PROXY, "");
    curl_easy_setopt (curl, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt (curl, CURLOPT_TIMEOUT_MS, 5000L);
    curl_easy_setopt (curl, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt (curl, CURLOPT_WRITEFUNCTION, s_on_body);
    curl_easy_setopt (curl, CURLOPT_WRITEDATA, reply);
    curl_easy_setopt (curl, CURLOPT_HEADERFUNCTION, s_on_header);
    curl_easy_setopt (curl, CURLOPT_HEADERDATA, reply);
    if (ask->body) {
        curl_easy_setopt (curl, CURLOPT_POSTFIELDS, ask->body);
        curl_easy_setopt (curl, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t) ask->len);
    }
    curl_easy_setopt (curl, CURLOPT_CUSTOMREQUEST, ask->method);
    *headers_p = headers;
    return curl;
}

/* Returns a new easy handle set up for one request to 127.0.0.1. */
static CURL *
s_easy (unsigned port, const s_ask_t *ask, s_reply_t *reply, struct curl_slist **headers_p)
{
    return s_easy_to ("127.0.0.1", port, ask, reply, headers_p);
}

/* Reads the result of a finished handle into reply. */
static void
s_finish (CURL *curl, CURLcode code, s_reply_t *reply)
{
    reply->code = code;
    curl_easy_getinfo (curl, CURLINFO_RESPONSE_CODE, &reply->status);
    reply->json = reply->body ? json_loads (reply->body, JSON_DECODE_ANY, NULL) : NULL;
}

/* Sends one request to host and waits for the reply. */
static void
s_ask_to (const char *host, unsigned port, const s_ask_t *ask, s_reply_t *reply)
{
    memset (reply, 0, sizeof *reply);
    struct curl_slist *headers = NULL;
    CURL *curl = s_easy_to (host, port, ask, reply, &headers);
    s_finish (curl, curl_easy_perform (curl), reply);
    curl_easy_cleanup (curl);
    curl_slist_free_all (headers);
}

/* Sends one request to 127.0.0.1 and waits for the reply. */
static void
s_ask (unsigned port, const s_ask_t *ask, s_reply_t *reply)
{
    s_ask_to ("127.0.0.1", port, ask, reply);
}

/* Sends GET path with the right token. */
static void
s_get (unsigned port, const char *path, s_reply_t *reply)
{
    s_ask_t ask = {"GET", path, S_TOKEN, NULL, NULL, 0, 0};
    s_ask (port, &ask, reply);
}

/* Frees what a reply holds. */
static void
s_reply_free (s_reply_t *reply)
{
    free (reply->body);
    json_decref (reply->json);
    memset (reply, 0, sizeof *reply);
}

/* Returns the value of a response header (case-insensitive name), copied
   into out, or NULL when absent. */
static const char *
s_header (const s_reply_t *reply, const char *name, char *out, size_t size)
{
    size_t name_len = strlen (name);
    const char *line = reply->headers;
    while (line && *line) {
        if (strncasecmp (line, name, name_len) == 0 && line[name_len] == ':') {
            const char *value = line + name_len + 1;
            value += strspn (value, " ");
            size_t len = strcspn (value, "\r\n");
            len = len < size - 1 ? len : size - 1;
            memcpy (out, value, len);
            out[len] = '\0';
            return out;
        }
        line = strchr (line, '\n');
        line = line ? line + 1 : NULL;
    }
    return NULL;
}

/* Asserts a JSON error reply: status, code and the headers every reply has. */
static void
s_assert_error (const s_reply_t *reply, long status, const char *code)
{
    char value[256];
    ck_assert_msg (reply->status == status, "status %ld, wanted %ld; body %s", reply->status,
                   status, reply->body ? reply->body : "(none)");
    ck_assert_ptr_nonnull (reply->json);
    ck_assert_str_eq (json_string_value (json_object_get (
                          json_object_get (reply->json, "error"), "code")),
                      code);
    ck_assert_ptr_nonnull (json_string_value (
        json_object_get (json_object_get (reply->json, "error"), "message")));
    ck_assert_str_eq (s_header (reply, "Content-Type", value, sizeof value), "application/json");
    ck_assert_str_eq (s_header (reply, "Cache-Control", value, sizeof value), "no-store");
}

/* Returns the error message of a JSON error reply. */
static const char *
s_message (const s_reply_t *reply)
{
    return json_string_value (
        json_object_get (json_object_get (reply->json, "error"), "message"));
}

/* Milliseconds of a monotonic clock. */
static long
s_now_ms (void)
{
    struct timespec ts;
    clock_gettime (CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000L + ts.tv_nsec / 1000000L;
}

/* Opens a TCP connection to the server. */
static int
s_connect (unsigned port)
{
    int fd = socket (AF_INET, SOCK_STREAM, 0);
    ck_assert_int_ge (fd, 0);
    struct sockaddr_in addr;
    memset (&addr, 0, sizeof addr);
    addr.sin_family = AF_INET;
    addr.sin_port = htons ((uint16_t) port);
    addr.sin_addr.s_addr = htonl (INADDR_LOOPBACK);
    ck_assert_int_eq (connect (fd, (struct sockaddr *) &addr, sizeof addr), 0);
    return fd;
}

/* Sends a whole string on a socket. */
static void
s_send_text (int fd, const char *text)
{
    size_t len = strlen (text);
    ck_assert_int_eq (send (fd, text, len, MSG_NOSIGNAL), (ssize_t) len);
}

/* Reads from a socket until the peer closes or timeout_ms pass; returns the
   bytes read (into out, NUL-terminated) and sets *closed_p. */
static size_t
s_read_until_closed (int fd, char *out, size_t size, long timeout_ms, int *closed_p)
{
    size_t len = 0;
    long deadline = s_now_ms () + timeout_ms;
    *closed_p = 0;
    while (s_now_ms () < deadline) {
        struct pollfd pfd = {fd, POLLIN, 0};
        int ready = poll (&pfd, 1, (int) (deadline - s_now_ms ()));
        if (ready <= 0) {
            continue;
        }
        char scratch[4096];
        ssize_t got = recv (fd, scratch, sizeof scratch, 0);
        if (got <= 0) {
            *closed_p = 1;
            break;
        }
        size_t keep = (size_t) got < size - 1 - len ? (size_t) got : size - 1 - len;
        memcpy (out + len, scratch, keep);
        len += keep;
    }
    out[len] = '\0';
    return len;
}

START_TEST (test_ping_answers_json_with_no_store)
{
    gkx_http_t *server = s_start (S_TOKEN, 0);
    s_reply_t reply;
    char value[256];
    s_get (gkx_http_port (server), "/v1/ping", &reply);
    ck_assert_int_eq (reply.status, 200);
    ck_assert_str_eq (reply.body, "{\"pong\":true}\n");
    ck_assert_str_eq (s_header (&reply, "Content-Type", value, sizeof value), "application/json");
    ck_assert_str_eq (s_header (&reply, "Cache-Control", value, sizeof value), "no-store");
    s_reply_free (&reply);
    gkx_http_close (&server);
    ck_assert_ptr_null (server);
    gkx_http_close (&server);
    gkx_http_close (NULL);
}
END_TEST

START_TEST (test_echo_returns_the_parsed_body)
{
    gkx_http_t *server = s_start (S_TOKEN, 0);
    static const char body[] = "{\"payout\": 1.5, \"name\": \"caf\xc3\xa9\"}";
    s_ask_t ask = {"POST", "/v1/echo", S_TOKEN, "application/json; charset=UTF-8", body,
                   sizeof body - 1, 0};
    s_reply_t reply;
    s_ask (gkx_http_port (server), &ask, &reply);
    ck_assert_int_eq (reply.status, 201);
    ck_assert_str_eq (json_string_value (json_object_get (reply.json, "name")), "caf\xc3\xa9");
    s_reply_free (&reply);
    /* No body: the handler sees NULL. */
    s_ask_t empty = {"POST", "/v1/echo", S_TOKEN, NULL, "", 0, 0};
    s_ask (gkx_http_port (server), &empty, &reply);
    ck_assert_int_eq (reply.status, 201);
    ck_assert (json_is_true (json_object_get (reply.json, "empty")));
    s_reply_free (&reply);
    /* A chunked body under the limit is read whole. */
    s_ask_t chunked = {"PATCH", "/v1/echo", S_TOKEN, NULL, "[1,2,3]", 7, 1};
    s_ask (gkx_http_port (server), &chunked, &reply);
    ck_assert_int_eq (reply.status, 201);
    ck_assert_str_eq (reply.body, "[1,2,3]\n");
    s_reply_free (&reply);
    gkx_http_close (&server);
}
END_TEST

START_TEST (test_segments_and_query_are_decoded)
{
    gkx_http_t *server = s_start (S_TOKEN, 0);
    unsigned port = gkx_http_port (server);
    s_reply_t reply;
    s_get (port, "/v1/items/ab%20c%C3%A9?q=a+b%2Bc&other=1", &reply);
    ck_assert_int_eq (reply.status, 200);
    ck_assert_str_eq (json_string_value (json_object_get (reply.json, "id")), "ab c\xc3\xa9");
    ck_assert_str_eq (json_string_value (json_object_get (reply.json, "q")), "a b+c");
    ck_assert_int_eq (json_integer_value (json_object_get (reply.json, "count")), 1);
    ck_assert_str_eq (json_string_value (json_object_get (reply.json, "method")), "GET");
    s_reply_free (&reply);
    s_get (port, "/v1/items/x", &reply);
    ck_assert (json_is_null (json_object_get (reply.json, "q")));
    s_reply_free (&reply);
    s_get (port, "/v1/items/x?q", &reply);
    ck_assert_str_eq (json_string_value (json_object_get (reply.json, "q")), "");
    s_reply_free (&reply);
    s_get (port, "/v1/items/p-1/parts/7", &reply);
    ck_assert_int_eq (reply.status, 200);
    ck_assert_str_eq (json_string_value (json_object_get (reply.json, "part")), "7");
    ck_assert_str_eq (json_string_value (json_object_get (reply.json, "path")),
                      "/v1/items/p-1/parts/7");
    s_reply_free (&reply);
    /* A literal segment matches in its encoded form too. */
    s_get (port, "/v1/p%69ng", &reply);
    ck_assert_int_eq (reply.status, 200);
    s_reply_free (&reply);
    gkx_http_close (&server);
}
END_TEST

START_TEST (test_missing_token_is_401)
{
    gkx_http_t *server = s_start (S_TOKEN, 0);
    s_ask_t ask = {"GET", "/v1/ping", NULL, NULL, NULL, 0, 0};
    s_reply_t reply;
    char value[256];
    s_ask (gkx_http_port (server), &ask, &reply);
    s_assert_error (&reply, 401, "unauthorized");
    ck_assert_ptr_nonnull (s_header (&reply, "WWW-Authenticate", value, sizeof value));
    ck_assert_int_eq (strncmp (value, "Bearer", 6), 0);
    ck_assert_ptr_nonnull (strstr (s_message (&reply), "missing bearer token"));
    s_reply_free (&reply);
    /* Unknown paths are not told to strangers. */
    ask.path = "/v1/nope";
    s_ask (gkx_http_port (server), &ask, &reply);
    s_assert_error (&reply, 401, "unauthorized");
    s_reply_free (&reply);
    gkx_http_close (&server);
}
END_TEST

START_TEST (test_wrong_token_is_401)
{
    gkx_http_t *server = s_start (S_TOKEN, 0);
    unsigned port = gkx_http_port (server);
    const char *wrong[] = {"not-the-token", "s3cret-token", S_TOKEN "x",
                           "s3cret-token-0123456789abcdeF"};
    s_reply_t reply;
    char value[256];
    for (size_t i = 0; i < sizeof wrong / sizeof wrong[0]; i++) {
        s_ask_t ask = {"GET", "/v1/ping", wrong[i], NULL, NULL, 0, 0};
        s_ask (port, &ask, &reply);
        s_assert_error (&reply, 401, "unauthorized");
        ck_assert_str_eq (s_message (&reply), "wrong bearer token");
        ck_assert_ptr_nonnull (s_header (&reply, "WWW-Authenticate", value, sizeof value));
        ck_assert_int_eq (strncmp (value, "Bearer", 6), 0);
        s_reply_free (&reply);
    }
    gkx_http_close (&server);
}
END_TEST

START_TEST (test_no_token_configured_serves_everyone)
{
    gkx_http_t *server = s_start (NULL, 0);
    s_ask_t ask = {"GET", "/v1/ping", NULL, NULL, NULL, 0, 0};
    s_reply_t reply;
    s_ask (gkx_http_port (server), &ask, &reply);
    ck_assert_int_eq (reply.status, 200);
    s_reply_free (&reply);
    gkx_http_close (&server);
}
END_TEST

START_TEST (test_unknown_path_is_404_naming_it)
{
    gkx_http_t *server = s_start (S_TOKEN, 0);
    unsigned port = gkx_http_port (server);
    const char *paths[] = {"/v1/nope", "/v1/ping/", "/v1/items", "/", "/v1/items/a/b/c/d/e"};
    s_reply_t reply;
    for (size_t i = 0; i < sizeof paths / sizeof paths[0]; i++) {
        s_get (port, paths[i], &reply);
        s_assert_error (&reply, 404, "not_found");
        ck_assert_ptr_nonnull (strstr (s_message (&reply), paths[i]));
        s_reply_free (&reply);
    }
    gkx_http_close (&server);
}
END_TEST

START_TEST (test_wrong_method_is_405_with_allow)
{
    gkx_http_t *server = s_start (S_TOKEN, 0);
    s_reply_t reply;
    char value[256];
    s_get (gkx_http_port (server), "/v1/echo", &reply);
    s_assert_error (&reply, 405, "method_not_allowed");
    ck_assert_str_eq (s_header (&reply, "Allow", value, sizeof value), "POST, PATCH");
    ck_assert_str_eq (s_message (&reply), "GET is not allowed on /v1/echo; use POST, PATCH");
    s_reply_free (&reply);
    s_ask_t ask = {"DELETE", "/v1/ping", S_TOKEN, NULL, NULL, 0, 0};
    s_ask (gkx_http_port (server), &ask, &reply);
    s_assert_error (&reply, 405, "method_not_allowed");
    ck_assert_str_eq (s_header (&reply, "Allow", value, sizeof value), "GET");
    s_reply_free (&reply);
    gkx_http_close (&server);
}
END_TEST

START_TEST (test_malformed_json_is_400_naming_line_and_column)
{
    gkx_http_t *server = s_start (S_TOKEN, 0);
    static const char body[] = "{\"a\": 1,\n \"b\": }";
    s_ask_t ask = {"POST", "/v1/echo", S_TOKEN, NULL, body, sizeof body - 1, 0};
    s_reply_t reply;
    s_ask (gkx_http_port (server), &ask, &reply);
    s_assert_error (&reply, 400, "malformed_json");
    ck_assert_msg (strstr (s_message (&reply), "line 2, column 7"), "message: %s",
                   s_message (&reply));
    s_reply_free (&reply);
    /* Trailing bytes and duplicate keys are malformed too. */
    static const char trailing[] = "{} x";
    s_ask_t ask2 = {"POST", "/v1/echo", S_TOKEN, NULL, trailing, sizeof trailing - 1, 0};
    s_ask (gkx_http_port (server), &ask2, &reply);
    s_assert_error (&reply, 400, "malformed_json");
    s_reply_free (&reply);
    static const char twice[] = "{\"a\":1,\"a\":2}";
    s_ask_t ask3 = {"POST", "/v1/echo", S_TOKEN, NULL, twice, sizeof twice - 1, 0};
    s_ask (gkx_http_port (server), &ask3, &reply);
    s_assert_error (&reply, 400, "malformed_json");
    ck_assert_ptr_nonnull (strstr (s_message (&reply), "duplicate"));
    s_reply_free (&reply);
    gkx_http_close (&server);
}
END_TEST

START_TEST (test_invalid_utf8_is_400)
{
    gkx_http_t *server = s_start (S_TOKEN, 0);
    unsigned port = gkx_http_port (server);
    const char *bodies[] = {"{\"a\":\"\xff\"}", "{\"a\":\"\xc0\xaf\"}", "{\"a\":\"\xed\xa0\x80\"}",
                            "{\"a\":\"\xe2\x82\"}"};
    s_reply_t reply;
    for (size_t i = 0; i < sizeof bodies / sizeof bodies[0]; i++) {
        s_ask_t ask = {"POST", "/v1/echo", S_TOKEN, NULL, bodies[i], strlen (bodies[i]), 0};
        s_ask (port, &ask, &reply);
        s_assert_error (&reply, 400, "invalid_utf8");
        ck_assert_str_eq (s_message (&reply), "the body is not valid UTF-8 (byte 6)");
        s_reply_free (&reply);
    }
    gkx_http_close (&server);
}
END_TEST

START_TEST (test_body_over_the_limit_is_413)
{
    gkx_http_t *server = s_start (S_TOKEN, 0);
    unsigned port = gkx_http_port (server);
    char *big = malloc (S_OVER);
    memset (big, ' ', S_OVER);
    big[0] = '[';
    big[S_OVER - 1] = ']';
    s_ask_t ask = {"POST", "/v1/echo", S_TOKEN, NULL, big, S_OVER, 0};
    s_reply_t reply;
    s_ask (port, &ask, &reply);
    s_assert_error (&reply, 413, "payload_too_large");
    ck_assert_ptr_nonnull (strstr (s_message (&reply), "2097152 bytes"));
    s_reply_free (&reply);
    /* Exactly the limit is accepted. */
    ask.len = S_LIMIT;
    big[S_LIMIT - 1] = ']';
    s_ask (port, &ask, &reply);
    ck_assert_int_eq (reply.status, 201);
    s_reply_free (&reply);
    free (big);
    /* The refusal comes from the headers alone: none of the body is sent. */
    int fd = s_connect (port);
    s_send_text (fd, "PATCH /v1/echo HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer " S_TOKEN
                     "\r\nContent-Type: application/json\r\nContent-Length: 2097152\r\n\r\n");
    char answer[8192];
    int closed;
    s_read_until_closed (fd, answer, sizeof answer, 3000, &closed);
    close (fd);
    ck_assert_msg (strncmp (answer, "HTTP/1.1 413", 12) == 0, "answer: %s", answer);
    ck_assert_ptr_nonnull (strstr (answer, "payload_too_large"));
    ck_assert_int_eq (closed, 1);
    gkx_http_stats_t stats;
    gkx_http_stats (server, &stats);
    ck_assert_uint_eq (stats.status_4xx, 2);
    gkx_http_close (&server);
}
END_TEST

START_TEST (test_chunked_body_over_the_limit_is_cut_off)
{
    gkx_http_t *server = s_start (S_TOKEN, 0);
    size_t size = 2 * S_OVER;
    char *big = malloc (size);
    memset (big, ' ', size);
    big[0] = '[';
    big[size - 1] = ']';
    /* Up to twice the limit, the rest is dropped and the end answered 413. */
    s_ask_t ask = {"POST", "/v1/echo", S_TOKEN, NULL, big, S_LIMIT + S_LIMIT / 2, 1};
    s_reply_t reply;
    s_ask (gkx_http_port (server), &ask, &reply);
    s_assert_error (&reply, 413, "payload_too_large");
    ck_assert_str_eq (s_message (&reply), "the chunked body is over the limit of 1048576 bytes");
    s_reply_free (&reply);
    /* Past that, the connection is closed without reading on. */
    ask.len = size;
    s_ask (gkx_http_port (server), &ask, &reply);
    ck_assert_int_ne (reply.status, 201);
    s_reply_free (&reply);
    free (big);
    gkx_http_stats_t stats;
    gkx_http_stats (server, &stats);
    ck_assert_uint_eq (stats.status_2xx, 0);
    ck_assert_uint_eq (stats.status_4xx, 1);
    ck_assert_uint_eq (stats.aborted, 1);
    gkx_http_close (&server);
}
END_TEST

START_TEST (test_bad_segment_is_400)
{
    gkx_http_t *server = s_start (S_TOKEN, 0);
    unsigned port = gkx_http_port (server);
    const char *paths[] = {"/v1/items/%2e%2e%2f",   "/v1/items/..",     "/v1/items/a%2Fb",
                           "/v1/items/%00",         "/v1/items/%zz",    "/v1/items/%ff",
                           "/v1/items/a%0Ab",       "/v1/items/",       "/v1/items/a%5Cb",
                           "/v1/items/x/parts/..%2F..%2Fetc"};
    s_reply_t reply;
    for (size_t i = 0; i < sizeof paths / sizeof paths[0]; i++) {
        s_get (port, paths[i], &reply);
        s_assert_error (&reply, 400, "bad_segment");
        s_reply_free (&reply);
    }
    s_get (port, "/v1/items/%2e%2e%2f", &reply);
    ck_assert_str_eq (s_message (&reply),
                      "path segment 3 of /v1/items/%2e%2e%2f is not a safe token: it contains "
                      "\"..\"");
    s_reply_free (&reply);
    /* 256 bytes is the longest segment. */
    char path[600];
    snprintf (path, sizeof path, "/v1/items/%0256d", 7);
    s_get (port, path, &reply);
    ck_assert_int_eq (reply.status, 200);
    s_reply_free (&reply);
    snprintf (path, sizeof path, "/v1/items/%0257d", 7);
    s_get (port, path, &reply);
    s_assert_error (&reply, 400, "bad_segment");
    s_reply_free (&reply);
    gkx_http_close (&server);
}
END_TEST

START_TEST (test_bad_query_is_400)
{
    gkx_http_t *server = s_start (S_TOKEN, 0);
    unsigned port = gkx_http_port (server);
    /* Each refusal names the parameter and what is wrong with it. */
    static const char *const cases[][2] = {
        {"/v1/items/x?q=%ff", "parameter \"q\": not valid UTF-8"},
        {"/v1/items/x?q=a%00", "parameter \"q\": %00 (NUL) is not allowed"},
        {"/v1/items/x?q=%zz", "parameter \"q\": bad percent-encoding \"%zz\""},
        {"/v1/items/x?q=%4", "parameter \"q\": truncated percent-encoding \"%4\""},
        {"/v1/items/x?a=1&%c0%af=1", "parameter #2 name: not valid UTF-8"},
        {"/v1/items/x?q=1&q=2", "duplicate parameter \"q\""},
        {"/v1/items/x?q=1&%71=2", "duplicate parameter \"q\""},
        {"/v1/items/x?q&q", "duplicate parameter \"q\""},
    };
    s_reply_t reply;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        s_get (port, cases[i][0], &reply);
        s_assert_error (&reply, 400, "bad_query");
        ck_assert_str_eq (s_message (&reply), cases[i][1]);
        s_reply_free (&reply);
    }
    /* Empty pieces are no parameters, so no duplicates either. */
    s_get (port, "/v1/items/x?q=1&&a=2&&", &reply);
    ck_assert_int_eq (reply.status, 200);
    ck_assert_str_eq (json_string_value (json_object_get (reply.json, "q")), "1");
    s_reply_free (&reply);
    gkx_http_close (&server);
}
END_TEST

START_TEST (test_dot_segments_are_400)
{
    gkx_http_t *server = s_start (S_TOKEN, 0);
    unsigned port = gkx_http_port (server);
    static const char *const cases[][2] = {
        {"/v1/../v1/ping", "path segment 2 of /v1/../v1/ping is \"..\": dot segments are not "
                           "accepted"},
        {"/v1/./ping", "path segment 2 of /v1/./ping is \".\": dot segments are not accepted"},
        {"/v1/%2e%2E/ping", "path segment 2 of /v1/%2e%2E/ping is \"..\": dot segments are not "
                            "accepted"},
        {"/v1/items/%2e", "path segment 3 of /v1/items/%2e is \".\": dot segments are not "
                          "accepted"},
        {"/v1/ping/%zz", "path segment 3 of /v1/ping/%zz is badly encoded: bad percent-encoding "
                         "\"%zz\""},
    };
    s_reply_t reply;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        s_get (port, cases[i][0], &reply);
        s_assert_error (&reply, 400, "bad_segment");
        ck_assert_str_eq (s_message (&reply), cases[i][1]);
        s_reply_free (&reply);
    }
    gkx_http_close (&server);
}
END_TEST

/* Sends raw request text on a new connection and returns the status of the
   answer (0 when the connection closed without one); the answer in out. */
static int
s_raw_status (unsigned port, const char *text, char *out, size_t size)
{
    int fd = s_connect (port);
    /* The server may close before it has read it all. */
    ssize_t sent = send (fd, text, strlen (text), MSG_NOSIGNAL);
    (void) sent;
    int closed;
    s_read_until_closed (fd, out, size, 5000, &closed);
    close (fd);
    int status = 0;
    return sscanf (out, "HTTP/1.1 %d", &status) == 1 ? status : 0;
}

START_TEST (test_ambiguous_or_oversized_headers_are_refused)
{
    gkx_http_t *server = s_start (S_TOKEN, 0);
    unsigned port = gkx_http_port (server);
    static const char *const cases[][3] = {
        {"POST /v1/echo HTTP/1.1\r\nHost: t\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\n{}",
         "400", "the header Content-Length is given 2 times; send it once"},
        {"POST /v1/echo HTTP/1.1\r\nHost: t\r\nContent-Length: 2\r\n"
         "Transfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n",
         "400", "both Content-Length and Transfer-Encoding are given; send one"},
        {"POST /v1/echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
         "400", "Transfer-Encoding \\\"gzip, chunked\\\" is not accepted"},
        {"GET /v1/ping HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer " S_TOKEN
         "\r\nAuthorization: Bearer x\r\n\r\n",
         "400", "the header Authorization is given 2 times; send it once"},
        {"GET /v1/ping HTTP/1.1\r\nHost: t\r\nHost: u\r\n\r\n", "400",
         "the header Host is given 2 times"},
    };
    char out[8192];
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        ck_assert_int_eq (s_raw_status (port, cases[i][0], out, sizeof out), atoi (cases[i][1]));
        ck_assert_msg (strstr (out, "\"bad_header\"") && strstr (out, cases[i][2]), "%s", out);
    }
    /* Header lines over the limit: our own JSON 431 (libmicrohttpd answers
       past what its buffer holds). */
    size_t pad = GKX_HTTP_HEADERS_MAX_BYTES + 1;
    char *text = malloc (pad + 256);
    int len = snprintf (text, pad + 256, "GET /v1/ping HTTP/1.1\r\nHost: t\r\nX-Pad: ");
    memset (text + len, 'p', pad);
    strcpy (text + len + pad, "\r\n\r\n");
    ck_assert_int_eq (s_raw_status (port, text, out, sizeof out), 431);
    ck_assert_msg (strstr (out, "\"headers_too_large\"") && strstr (out, "limit of 16384 bytes"),
                   "%s", out);
    free (text);
    gkx_http_close (&server);
}
END_TEST

START_TEST (test_slow_requests_are_cut)
{
    /* A one-second timeout: a request line, then the rest of the request,
       must each come within it, however often a byte arrives. */
    gkx_http_t *server = s_start (S_TOKEN, 1);
    unsigned port = gkx_http_port (server);
    int fds[3];
    fds[0] = s_connect (port);
    s_send_text (fds[0], "GET /v1/ping HTTP/1.1\r\nHost: t\r\n");
    fds[1] = s_connect (port);
    s_send_text (fds[1], "G");
    fds[2] = s_connect (port);
    s_send_text (fds[2], "POST /v1/echo HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer " S_TOKEN
                         "\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n[");
    long start = s_now_ms ();
    int open = 3;
    int cut[3] = {0, 0, 0};
    s_reply_t reply;
    while (open > 0 && s_now_ms () - start < 5000) {
        for (int i = 0; i < 3; i++) {
            if (!cut[i] && send (fds[i], i == 2 ? " " : "X", 1, MSG_NOSIGNAL) != 1) {
                cut[i] = 1;
                open--;
            }
        }
        /* Others are served meanwhile. */
        s_get (port, "/v1/ping", &reply);
        ck_assert_int_eq (reply.status, 200);
        s_reply_free (&reply);
        usleep (100 * 1000);
    }
    long took = s_now_ms () - start;
    ck_assert_msg (open == 0, "%d slow connections still open after %ld ms", open, took);
    ck_assert_msg (took >= 900, "cut after %ld ms", took);
    for (int i = 0; i < 3; i++) {
        close (fds[i]);
    }
    gkx_http_stats_t stats;
    gkx_http_stats (server, &stats);
    ck_assert_uint_eq (stats.cut, 3);
    gkx_http_close (&server);
}
END_TEST

START_TEST (test_connections_per_address_are_limited)
{
    gkx_http_options_t options = s_options ("127.0.0.1:0", S_TOKEN, 0);
    options.per_ip_max = 2;
    gkx_http_t *server = s_start_with (&options);
    unsigned port = gkx_http_port (server);
    int held[2] = {s_connect (port), s_connect (port)};
    /* A third from the same address is closed at once, unanswered. */
    char out[1024];
    long start = s_now_ms ();
    ck_assert_int_eq (s_raw_status (port, "GET /v1/ping HTTP/1.1\r\nHost: t\r\n\r\n", out,
                                    sizeof out),
                      0);
    ck_assert_int_lt (s_now_ms () - start, 2000);
    close (held[0]);
    close (held[1]);
    /* Once they are gone, the address is served again. */
    s_reply_t reply;
    for (int tries = 0; tries < 50; tries++) {
        s_get (port, "/v1/ping", &reply);
        if (reply.status == 200) {
            break;
        }
        s_reply_free (&reply);
        usleep (20 * 1000);
    }
    ck_assert_int_eq (reply.status, 200);
    s_reply_free (&reply);
    gkx_http_close (&server);
}
END_TEST

START_TEST (test_non_json_content_type_is_415)
{
    gkx_http_t *server = s_start (S_TOKEN, 0);
    unsigned port = gkx_http_port (server);
    const char *types[] = {"text/plain", "application/x-www-form-urlencoded",
                           "application/json; charset=latin1", "application/jsonp", ""};
    s_reply_t reply;
    for (size_t i = 0; i < sizeof types / sizeof types[0]; i++) {
        s_ask_t ask = {"POST", "/v1/echo", S_TOKEN, types[i], "{}", 2, 0};
        s_ask (port, &ask, &reply);
        s_assert_error (&reply, 415, "unsupported_media_type");
        s_reply_free (&reply);
    }
    s_ask_t quoted = {"POST", "/v1/echo", S_TOKEN, "Application/JSON;charset=\"utf-8\"", "{}", 2,
                      0};
    s_ask (port, &quoted, &reply);
    ck_assert_int_eq (reply.status, 201);
    s_reply_free (&reply);
    gkx_http_close (&server);
}
END_TEST

START_TEST (test_handler_without_reply_is_500)
{
    gkx_http_t *server = s_start (S_TOKEN, 0);
    s_reply_t reply;
    s_get (gkx_http_port (server), "/v1/null", &reply);
    s_assert_error (&reply, 500, "internal");
    ck_assert_str_eq (s_message (&reply), "the handler of GET /v1/null gave no reply");
    s_reply_free (&reply);
    s_get (gkx_http_port (server), "/v1/teapot", &reply);
    s_assert_error (&reply, 418, "teapot");
    ck_assert_str_eq (s_message (&reply), "short and stout");
    s_reply_free (&reply);
    gkx_http_close (&server);
}
END_TEST

START_TEST (test_text_reply_for_metrics)
{
    gkx_http_t *server = s_start (S_TOKEN, 0);
    s_reply_t reply;
    char value[256];
    s_get (gkx_http_port (server), "/metrics", &reply);
    ck_assert_int_eq (reply.status, 200);
    ck_assert_str_eq (reply.body, "gkx_up 1\n");
    ck_assert_str_eq (s_header (&reply, "Content-Type", value, sizeof value),
                      "text/plain; charset=utf-8");
    ck_assert_str_eq (s_header (&reply, "Cache-Control", value, sizeof value), "no-store");
    s_reply_free (&reply);
    gkx_http_close (&server);
}
END_TEST

START_TEST (test_typed_reply_has_its_type)
{
    gkx_http_t *server = s_start (S_TOKEN, 0);
    s_reply_t reply;
    char value[256];
    s_get (gkx_http_port (server), "/v1/typed", &reply);
    ck_assert_int_eq (reply.status, 203);
    ck_assert_str_eq (reply.body, "# TYPE gkx_up gauge\ngkx_up 1\n");
    ck_assert_str_eq (s_header (&reply, "Content-Type", value, sizeof value),
                      "text/plain; version=0.0.4; charset=utf-8");
    ck_assert_str_eq (s_header (&reply, "Cache-Control", value, sizeof value), "no-store");
    s_reply_free (&reply);
    /* The type belongs to that reply only. */
    s_get (gkx_http_port (server), "/metrics", &reply);
    ck_assert_str_eq (s_header (&reply, "Content-Type", value, sizeof value),
                      "text/plain; charset=utf-8");
    s_reply_free (&reply);
    gkx_http_close (&server);
}
END_TEST

START_TEST (test_slow_handlers_run_in_parallel)
{
    gkx_http_t *server = s_start (S_TOKEN, 0);
    CURLM *multi = curl_multi_init ();
    CURL *easy[S_PARALLEL];
    struct curl_slist *headers[S_PARALLEL];
    s_reply_t replies[S_PARALLEL];
    s_ask_t ask = {"GET", "/v1/slow", S_TOKEN, NULL, NULL, 0, 0};
    long start = s_now_ms ();
    for (int i = 0; i < S_PARALLEL; i++) {
        memset (&replies[i], 0, sizeof replies[i]);
        easy[i] = s_easy (gkx_http_port (server), &ask, &replies[i], &headers[i]);
        curl_multi_add_handle (multi, easy[i]);
    }
    int running = 1;
    while (running) {
        curl_multi_perform (multi, &running);
        if (running) {
            curl_multi_poll (multi, NULL, 0, 100, NULL);
        }
    }
    long elapsed = s_now_ms () - start;
    int done = 0;
    int left = 0;
    CURLMsg *msg = curl_multi_info_read (multi, &left);
    while (msg) {
        for (int i = 0; i < S_PARALLEL; i++) {
            if (msg->msg == CURLMSG_DONE && msg->easy_handle == easy[i]) {
                s_finish (easy[i], msg->data.result, &replies[i]);
                done += replies[i].status == 200;
            }
        }
        msg = curl_multi_info_read (multi, &left);
    }
    for (int i = 0; i < S_PARALLEL; i++) {
        curl_multi_remove_handle (multi, easy[i]);
        curl_easy_cleanup (easy[i]);
        curl_slist_free_all (headers[i]);
        s_reply_free (&replies[i]);
    }
    curl_multi_cleanup (multi);
    ck_assert_int_eq (done, S_PARALLEL);
    /* One after the other would take 8 times the handler's time; four
       handler threads take twice; four times leaves room for a busy host. */
    ck_assert_msg (elapsed < 4 * S_SLOW_MS, "%d slow requests took %ld ms", S_PARALLEL, elapsed);
    gkx_http_close (&server);
}
END_TEST

START_TEST (test_stalled_clients_block_nobody)
{
    gkx_http_t *server = s_start (S_TOKEN, 1);
    unsigned port = gkx_http_port (server);
    int stalled[S_STALLED];
    for (int i = 0; i < S_STALLED; i++) {
        stalled[i] = s_connect (port);
        /* Half stop inside the headers, half after them, inside the body. */
        s_send_text (stalled[i], i % 2 ? "POST /v1/echo HTTP/1.1\r\nHost: t\r\n"
                                       : "POST /v1/echo HTTP/1.1\r\nHost: t\r\nAuthorization: "
                                         "Bearer " S_TOKEN "\r\nContent-Type: application/json"
                                         "\r\nContent-Length: 100\r\n\r\n{\"a\"");
    }
    s_reply_t reply;
    for (int i = 0; i < 2 * GKX_HTTP_THREADS_DEFAULT; i++) {
        long start = s_now_ms ();
        s_get (port, "/v1/ping", &reply);
        ck_assert_int_eq (reply.status, 200);
        ck_assert_int_lt (s_now_ms () - start, 1000);
        s_reply_free (&reply);
    }
    /* The idle timeout closes the stalled connections. */
    for (int i = 0; i < S_STALLED; i++) {
        char answer[1024];
        int closed;
        s_read_until_closed (stalled[i], answer, sizeof answer, 4000, &closed);
        ck_assert_msg (closed, "stalled connection %d still open", i);
        close (stalled[i]);
    }
    /* The watchdog may shut a stalled socket down a moment before
       libmicrohttpd sees it and counts the request aborted. */
    gkx_http_stats_t stats;
    long start = s_now_ms ();
    do {
        usleep (10 * 1000);
        gkx_http_stats (server, &stats);
    } while (stats.aborted < S_STALLED / 2 && s_now_ms () - start < 3000);
    ck_assert_uint_eq (stats.requests, 2 * GKX_HTTP_THREADS_DEFAULT);
    ck_assert_uint_eq (stats.aborted, S_STALLED / 2);
    gkx_http_close (&server);
}
END_TEST

/* Thread body: one slow request, its reply into the argument. */
static void *
s_slow_request (void *arg)
{
    s_reply_t *reply = arg;
    unsigned port = (unsigned) reply->status;
    s_get (port, "/v1/slow", reply);
    return NULL;
}

START_TEST (test_close_waits_for_running_handlers)
{
    gkx_http_t *server = s_start (S_TOKEN, 0);
    s_reply_t reply;
    memset (&reply, 0, sizeof reply);
    reply.status = (long) gkx_http_port (server);
    pthread_t thread;
    atomic_store (&s_slow_started, 0);
    ck_assert_int_eq (pthread_create (&thread, NULL, s_slow_request, &reply), 0);
    struct timespec pause = {0, 1000000L};
    for (int i = 0; i < 5000 && !atomic_load (&s_slow_started); i++) {
        nanosleep (&pause, NULL);
    }
    ck_assert (atomic_load (&s_slow_started));
    long start = s_now_ms ();
    gkx_http_close (&server);
    long elapsed = s_now_ms () - start;
    pthread_join (thread, NULL);
    /* The handler ran to its end; the client got its reply or a closed
       connection, never a hang. */
    ck_assert_int_ge (elapsed, S_SLOW_MS / 2);
    ck_assert (reply.status == 200 || reply.status == 0);
    s_reply_free (&reply);
}
END_TEST

START_TEST (test_stats_count_by_status_class)
{
    gkx_http_t *server = s_start (S_TOKEN, 0);
    unsigned port = gkx_http_port (server);
    gkx_http_stats_t stats;
    gkx_http_stats (server, &stats);
    ck_assert_uint_eq (stats.requests, 0);
    s_reply_t reply;
    s_get (port, "/v1/ping", &reply);
    s_reply_free (&reply);
    s_get (port, "/v1/ping", &reply);
    s_reply_free (&reply);
    s_get (port, "/v1/nope", &reply);
    s_reply_free (&reply);
    s_get (port, "/v1/null", &reply);
    s_reply_free (&reply);
    gkx_http_stats (server, &stats);
    ck_assert_uint_eq (stats.requests, 4);
    ck_assert_uint_eq (stats.status_2xx, 2);
    ck_assert_uint_eq (stats.status_3xx, 0);
    ck_assert_uint_eq (stats.status_4xx, 1);
    ck_assert_uint_eq (stats.status_5xx, 1);
    ck_assert_uint_eq (stats.aborted, 0);
    gkx_http_close (&server);
}
END_TEST

START_TEST (test_raw_query_is_byte_exact)
{
    gkx_http_t *server = s_start (S_TOKEN, 0);
    unsigned port = gkx_http_port (server);
    /* Escapes keep their case and '+' stays a '+'; a second '?' and '=' in
       a value, an empty name and a name without value are all kept as
       sent, while gkx_http_query still decodes. */
    static const char *const queries[] = {
        "q=a+b%2Bc%2b%20d&sig=Ab%2F%3D%3d&p0=%E2%82%AC",
        "q=x?y=z&&=v&flag&p0",
        "q=%7Eunreserved~-._&redirect=https%3A%2F%2Fexample.com%2F%3Fa%3D1%26b%3D2",
    };
    static const char *const decoded[] = {"a b+c+ d", "x?y=z", "~unreserved~-._"};
    s_reply_t reply;
    for (size_t i = 0; i < sizeof queries / sizeof queries[0]; i++) {
        char path[512];
        snprintf (path, sizeof path, "/v1/raw?%s", queries[i]);
        s_get (port, path, &reply);
        ck_assert_msg (reply.status == 200, "%s: %s", path, reply.body);
        ck_assert_str_eq (json_string_value (json_object_get (reply.json, "raw")), queries[i]);
        ck_assert_str_eq (json_string_value (json_object_get (reply.json, "q")), decoded[i]);
        s_reply_free (&reply);
    }
    /* No query, or an empty one: "". */
    s_get (port, "/v1/raw", &reply);
    ck_assert_int_eq (reply.status, 200);
    ck_assert_str_eq (json_string_value (json_object_get (reply.json, "raw")), "");
    s_reply_free (&reply);
    s_get (port, "/v1/raw?", &reply);
    ck_assert_int_eq (reply.status, 200);
    ck_assert_str_eq (json_string_value (json_object_get (reply.json, "raw")), "");
    s_reply_free (&reply);
    /* The path's own escapes do not leak into the query. */
    s_get (port, "/v1/r%61w?q=1", &reply);
    ck_assert_int_eq (reply.status, 200);
    ck_assert_str_eq (json_string_value (json_object_get (reply.json, "raw")), "q=1");
    s_reply_free (&reply);
    gkx_http_close (&server);
}
END_TEST

START_TEST (test_raw_query_of_requests_on_one_connection)
{
    /* Two requests on one kept-alive connection each see their own query. */
    gkx_http_t *server = s_start (NULL, 0);
    int fd = s_connect (gkx_http_port (server));
    s_send_text (fd, "GET /v1/raw?first=1%2B1 HTTP/1.1\r\nHost: x\r\n\r\n"
                     "GET /v1/raw HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    char got[8192];
    int closed = 0;
    s_read_until_closed (fd, got, sizeof got, 5000, &closed);
    close (fd);
    ck_assert (closed);
    const char *first = strstr (got, "\"raw\":\"first=1%2B1\"");
    ck_assert_msg (first != NULL, "%s", got);
    ck_assert_msg (strstr (first + 1, "\"raw\":\"\""), "%s", got);
    gkx_http_close (&server);
}
END_TEST

/* Appends "p<i>=<value>" parameters to out until count of them (value
   padded so the whole query has exactly bytes bytes); returns out. */
static char *
s_long_query (size_t count, size_t bytes)
{
    char *out = calloc (1, bytes + 1);
    ck_assert_ptr_nonnull (out);
    size_t len = 0;
    for (size_t i = 0; i < count; i++) {
        int n = snprintf (out + len, bytes + 1 - len, "%sp%zu=v%%2B", i ? "&" : "", i);
        ck_assert_int_gt (n, 0);
        len += (size_t) n;
    }
    ck_assert_uint_le (len, bytes);
    /* Pad the last value with letters. */
    memset (out + len, 'x', bytes - len);
    out[bytes] = '\0';
    return out;
}

/* Sends GET /v1/raw?query and checks that it is answered in full. */
static void
s_long_query_passes (unsigned port, const char *query, size_t params)
{
    size_t len = strlen (query);
    char *path = malloc (len + 16);
    ck_assert_ptr_nonnull (path);
    snprintf (path, len + 16, "/v1/raw?%s", query);
    s_reply_t reply;
    s_get (port, path, &reply);
    ck_assert_msg (reply.status == 200, "status %ld: %.300s", reply.status, reply.body);
    ck_assert_str_eq (json_string_value (json_object_get (reply.json, "raw")), query);
    ck_assert_int_eq (json_integer_value (json_object_get (reply.json, "params")), (int) params);
    s_reply_free (&reply);
    free (path);
}

START_TEST (test_long_postback_query_passes_with_query_max)
{
    gkx_http_options_t options = s_options ("127.0.0.1:0", NULL, 0);
    options.query_max = S_POSTBACK_PARAMS;
    gkx_http_t *server = s_start_with (&options);
    unsigned port = gkx_http_port (server);
    /* 200 parameters in 6000 bytes. */
    char *query = s_long_query (200, 6000);
    s_long_query_passes (port, query, 200);
    free (query);
    /* A postback's limits: 256 parameters in 8192 bytes. */
    query = s_long_query (S_POSTBACK_PARAMS, S_POSTBACK_QUERY_BYTES);
    s_long_query_passes (port, query, S_POSTBACK_PARAMS);
    free (query);
    /* One more parameter than query_max is refused, naming both counts. */
    query = s_long_query (S_POSTBACK_PARAMS + 1, S_POSTBACK_QUERY_BYTES);
    char path[S_POSTBACK_QUERY_BYTES + 16];
    snprintf (path, sizeof path, "/v1/raw?%s", query);
    s_reply_t reply;
    s_get (port, path, &reply);
    s_assert_error (&reply, 400, "bad_query");
    ck_assert_str_eq (s_message (&reply),
                      "the query string has 257 parameters, more than the 256 allowed");
    s_reply_free (&reply);
    free (query);
    gkx_http_close (&server);
}
END_TEST

START_TEST (test_query_max_defaults_to_64)
{
    gkx_http_t *server = s_start (S_TOKEN, 0);
    unsigned port = gkx_http_port (server);
    char *query = s_long_query (GKX_HTTP_QUERY_MAX, 2000);
    char path[2048];
    snprintf (path, sizeof path, "/v1/raw?%s", query);
    free (query);
    s_reply_t reply;
    s_get (port, path, &reply);
    ck_assert_int_eq (reply.status, 200);
    ck_assert_int_eq (json_integer_value (json_object_get (reply.json, "params")),
                      GKX_HTTP_QUERY_MAX);
    s_reply_free (&reply);
    query = s_long_query (200, 6000);
    char *long_path = malloc (6100);
    snprintf (long_path, 6100, "/v1/raw?%s", query);
    free (query);
    s_get (port, long_path, &reply);
    free (long_path);
    s_assert_error (&reply, 400, "bad_query");
    ck_assert_str_eq (s_message (&reply),
                      "the query string has 200 parameters, more than the 64 allowed");
    s_reply_free (&reply);
    gkx_http_close (&server);
}
END_TEST

START_TEST (test_request_target_over_the_limit_is_414)
{
    gkx_http_options_t options = s_options ("127.0.0.1:0", NULL, 0);
    options.query_max = S_POSTBACK_PARAMS;
    gkx_http_t *server = s_start_with (&options);
    unsigned port = gkx_http_port (server);
    /* A target of exactly the limit is served ("/v1/raw?" is 8 bytes). */
    char *query = s_long_query (10, GKX_HTTP_TARGET_MAX_BYTES - 8);
    s_long_query_passes (port, query, 10);
    free (query);
    /* One byte more is refused with our own JSON 414. */
    query = s_long_query (10, GKX_HTTP_TARGET_MAX_BYTES - 7);
    char *path = malloc (GKX_HTTP_TARGET_MAX_BYTES + 16);
    snprintf (path, GKX_HTTP_TARGET_MAX_BYTES + 16, "/v1/raw?%s", query);
    free (query);
    s_reply_t reply;
    s_get (port, path, &reply);
    free (path);
    s_assert_error (&reply, 414, "uri_too_long");
    ck_assert_str_eq (s_message (&reply),
                      "the request target of 16385 bytes is over the limit of 16384 bytes");
    s_reply_free (&reply);
    gkx_http_stats_t stats;
    gkx_http_stats (server, &stats);
    ck_assert_uint_eq (stats.status_4xx, 1);
    ck_assert_uint_eq (stats.aborted, 0);
    gkx_http_close (&server);
}
END_TEST

START_TEST (test_client_address_is_loopback)
{
    gkx_http_t *server = s_start (S_TOKEN, 0);
    s_reply_t reply;
    s_get (gkx_http_port (server), "/v1/raw", &reply);
    ck_assert_int_eq (reply.status, 200);
    json_t *client = json_object_get (reply.json, "client");
    ck_assert_str_eq (json_string_value (json_object_get (client, "address")), "127.0.0.1");
    ck_assert_str_eq (json_string_value (json_object_get (client, "text")), "127.0.0.1");
    ck_assert_int_gt (json_integer_value (json_object_get (client, "port")), 0);
    ck_assert_int_ne (json_integer_value (json_object_get (client, "port")),
                      (json_int_t) gkx_http_port (server));
    s_reply_free (&reply);
    gkx_http_close (&server);
    /* On IPv6 loopback, where the machine has it. */
    gkx_http_options_t options = s_options ("[::1]:0", S_TOKEN, 0);
    char errbuf[GKX_ERRBUF_BYTES] = "";
    if (gkx_http_open (&server, &options, errbuf) != GKX_OK) {
        return;
    }
    s_ask_t ask = {"GET", "/v1/raw", S_TOKEN, NULL, NULL, 0, 0};
    s_ask_to ("[::1]", gkx_http_port (server), &ask, &reply);
    ck_assert_int_eq (reply.status, 200);
    client = json_object_get (reply.json, "client");
    ck_assert_str_eq (json_string_value (json_object_get (client, "address")), "::1");
    ck_assert_str_eq (json_string_value (json_object_get (client, "text")), "::1");
    s_reply_free (&reply);
    gkx_http_close (&server);
}
END_TEST

START_TEST (test_body_discard_takes_any_body)
{
    gkx_http_options_t options = s_options ("127.0.0.1:0", NULL, 0);
    options.body_discard = 1;
    gkx_http_t *server = s_start_with (&options);
    unsigned port = gkx_http_port (server);
    /* A form body, as some senders POST a postback: dropped, query kept. */
    static const char form[] = "click_id=abc&payout=1.50";
    s_ask_t ask = {"POST", "/v1/raw?q=a%2Bb", NULL, "application/x-www-form-urlencoded", form,
                   sizeof form - 1, 0};
    s_reply_t reply;
    s_ask (port, &ask, &reply);
    ck_assert_msg (reply.status == 200, "%s", reply.body);
    ck_assert_str_eq (json_string_value (json_object_get (reply.json, "raw")), "q=a%2Bb");
    ck_assert (json_is_false (json_object_get (reply.json, "body")));
    s_reply_free (&reply);
    /* Chunked, and not UTF-8: dropped too. */
    s_ask_t chunked = {"POST", "/v1/raw", NULL, "text/plain", "\xff\xfe", 2, 1};
    s_ask (port, &chunked, &reply);
    ck_assert_int_eq (reply.status, 200);
    ck_assert (json_is_false (json_object_get (reply.json, "body")));
    s_reply_free (&reply);
    /* The size limit still holds. */
    char *big = malloc (S_OVER);
    memset (big, 'a', S_OVER);
    s_ask_t over = {"POST", "/v1/raw", NULL, "text/plain", big, S_OVER, 0};
    s_ask (port, &over, &reply);
    s_assert_error (&reply, 413, "payload_too_large");
    s_reply_free (&reply);
    free (big);
    gkx_http_close (&server);
}
END_TEST

/* Tries to open a server; returns the code and leaves the message in errbuf. */
static int
s_open_fails (const char *address, const gkx_http_route_t *routes, size_t count, char *errbuf)
{
    gkx_http_options_t options = {0};
    options.address = address;
    options.routes = routes;
    options.routes_count = count;
    gkx_http_t *server = NULL;
    int rc = gkx_http_open (&server, &options, errbuf);
    ck_assert_ptr_null (server);
    return rc;
}

START_TEST (test_open_refuses_bad_addresses_and_routes)
{
    char errbuf[GKX_ERRBUF_BYTES];
    ck_assert_int_eq (s_open_fails ("127.0.0.1", s_routes, 1, errbuf), GKX_EINVAL);
    ck_assert_ptr_nonnull (strstr (errbuf, "host:port"));
    ck_assert_int_eq (s_open_fails ("127.0.0.1:65536", s_routes, 1, errbuf), GKX_EINVAL);
    ck_assert_int_eq (s_open_fails ("127.0.0.1:x", s_routes, 1, errbuf), GKX_EINVAL);
    ck_assert_int_eq (s_open_fails (":80", s_routes, 1, errbuf), GKX_EINVAL);
    ck_assert_int_eq (s_open_fails ("::1:80", s_routes, 1, errbuf), GKX_EINVAL);
    ck_assert_int_eq (s_open_fails (NULL, s_routes, 1, errbuf), GKX_EINVAL);
    const gkx_http_route_t bad[][2] = {
        {{"get /x", s_ping}, {NULL, NULL}},     {{"GET x", s_ping}, {NULL, NULL}},
        {{"GET /x/", s_ping}, {NULL, NULL}},    {{"GET /x//y", s_ping}, {NULL, NULL}},
        {{"GET /x/{id}", s_ping}, {NULL, NULL}}, {{"GET /x", NULL}, {NULL, NULL}},
        {{"GET /x/{}", s_ping}, {"GET /x/{}", s_item}},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        size_t count = bad[i][1].pattern ? 2 : 1;
        ck_assert_int_eq (s_open_fails ("127.0.0.1:0", bad[i], count, errbuf), GKX_EINVAL);
        ck_assert_ptr_nonnull (strstr (errbuf, "http: route"));
    }
    /* A port in use cannot be bound twice. */
    gkx_http_t *server = s_start (S_TOKEN, 0);
    char address[64];
    snprintf (address, sizeof address, "127.0.0.1:%u", gkx_http_port (server));
    ck_assert_int_eq (s_open_fails (address, s_routes, 1, errbuf), GKX_EIO);
    ck_assert_msg (strstr (errbuf, "cannot listen on") && strstr (errbuf, "in use"), "errbuf: %s",
                   errbuf);
    gkx_http_close (&server);
}
END_TEST

/* A temporary node directory for the client, with the server's port. */
typedef struct {
    char dir[PATH_MAX];             /* the directory */
    char err_path[PATH_MAX + 16];   /* where stderr is captured */
    char err[1024];                 /* what the last call printed */
} s_node_t;

/* Writes a file in the node directory with a mode. */
static void
s_node_write (const s_node_t *node, const char *name, const char *text, mode_t mode)
{
    char path[PATH_MAX + 32];
    snprintf (path, sizeof path, "%s/%s", node->dir, name);
    unlink (path);
    int fd = open (path, O_WRONLY | O_CREAT | O_EXCL, mode);
    ck_assert_int_ge (fd, 0);
    ck_assert_int_eq (write (fd, text, strlen (text)), (ssize_t) strlen (text));
    close (fd);
    ck_assert_int_eq (chmod (path, mode), 0);
}

/* Makes a node directory pointing at port. */
static void
s_node_make (s_node_t *node, unsigned port)
{
    char conf[256];
    gkx_test_tmpdir (node->dir);
    snprintf (node->err_path, sizeof node->err_path, "%s/stderr", node->dir);
    snprintf (conf, sizeof conf,
              "[node]\nrole = advertiser\nname = T\n[api]\nlisten = 127.0.0.1:%u\n", port);
    s_node_write (node, "gkx.conf", conf, 0644);
    s_node_write (node, "api.token", S_TOKEN "\n", 0600);
}

/* Calls the client with stderr captured into node->err; returns its code. */
static int
s_node_call (s_node_t *node, const char *method, const char *path, const json_t *body,
             json_t **reply_p, long *status_p)
{
    fflush (stderr);
    int saved = dup (2);
    int fd = open (node->err_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    ck_assert_int_ge (fd, 0);
    dup2 (fd, 2);
    close (fd);
    int rc = cli_client_call (node->dir, method, path, body, reply_p, status_p);
    fflush (stderr);
    dup2 (saved, 2);
    close (saved);
    FILE *file = fopen (node->err_path, "r");
    size_t len = fread (node->err, 1, sizeof node->err - 1, file);
    node->err[len] = '\0';
    fclose (file);
    return rc;
}

START_TEST (test_client_calls_the_node)
{
    gkx_http_t *server = s_start (S_TOKEN, 0);
    s_node_t node;
    s_node_make (&node, gkx_http_port (server));
    json_t *reply = NULL;
    long status = -1;
    ck_assert_int_eq (s_node_call (&node, "GET", "/v1/ping", NULL, &reply, &status), CLI_OK);
    ck_assert_int_eq (status, 200);
    ck_assert (json_is_true (json_object_get (reply, "pong")));
    ck_assert_str_eq (node.err, "");
    json_decref (reply);
    json_t *body = json_pack ("{s:s}", "offer", "summer");
    ck_assert_int_eq (s_node_call (&node, "PATCH", "/v1/echo", body, &reply, &status), CLI_OK);
    ck_assert_int_eq (status, 201);
    ck_assert (json_equal (reply, body));
    json_decref (reply);
    json_decref (body);
    ck_assert_int_eq (s_node_call (&node, "POST", "/v1/echo", NULL, NULL, NULL), CLI_OK);
    ck_assert_int_eq (s_node_call (&node, "GET", "/metrics", NULL, &reply, NULL), CLI_OK);
    ck_assert_str_eq (json_string_value (reply), "gkx_up 1\n");
    json_decref (reply);
    gkx_http_close (&server);
    gkx_test_rmtree (node.dir);
}
END_TEST

START_TEST (test_client_prints_the_error_message)
{
    gkx_http_t *server = s_start (S_TOKEN, 0);
    s_node_t node;
    s_node_make (&node, gkx_http_port (server));
    json_t *reply = NULL;
    long status = 0;
    ck_assert_int_eq (s_node_call (&node, "GET", "/v1/teapot", NULL, &reply, &status), CLI_FAIL);
    ck_assert_ptr_null (reply);
    ck_assert_int_eq (status, 418);
    ck_assert_str_eq (node.err, "gkx: short and stout\n");
    ck_assert_int_eq (s_node_call (&node, "GET", "/v1/nope", NULL, &reply, &status), CLI_FAIL);
    ck_assert_str_eq (node.err, "gkx: no such path: /v1/nope\n");
    /* A token that does not match says where the token comes from. */
    s_node_write (&node, "api.token", "other-token\n", 0600);
    ck_assert_int_eq (s_node_call (&node, "GET", "/v1/ping", NULL, &reply, &status), CLI_FAIL);
    ck_assert_int_eq (status, 401);
    ck_assert_ptr_nonnull (strstr (node.err, "gkx: wrong bearer token ("));
    ck_assert_ptr_null (strstr (node.err, "other-token"));
    gkx_http_close (&server);
    gkx_test_rmtree (node.dir);
}
END_TEST

START_TEST (test_client_says_the_node_is_not_running)
{
    gkx_http_t *server = s_start (S_TOKEN, 0);
    unsigned port = gkx_http_port (server);
    s_node_t node;
    s_node_make (&node, port);
    ck_assert_int_eq (s_node_call (&node, "GET", "/v1/ping", NULL, NULL, NULL), CLI_OK);
    gkx_http_close (&server);
    long status = -1;
    json_t *reply = NULL;
    ck_assert_int_eq (s_node_call (&node, "GET", "/v1/ping", NULL, &reply, &status), CLI_FAIL);
    ck_assert_int_eq (status, 0);
    ck_assert_ptr_null (reply);
    char want[2 * PATH_MAX + 128];
    snprintf (want, sizeof want,
              "gkx: the node in %s is not running (no answer on 127.0.0.1:%u); start it with: "
              "gkxd --dir %s\n",
              node.dir, port, node.dir);
    ck_assert_str_eq (node.err, want);
    gkx_test_rmtree (node.dir);
}
END_TEST

START_TEST (test_client_says_when_the_node_is_slow)
{
    gkx_http_t *server = s_start (S_TOKEN, 0);
    s_node_t node;
    s_node_make (&node, gkx_http_port (server));
    cli_client_set_timeout (S_SLOW_MS / 4);
    long status = -1;
    ck_assert_int_eq (s_node_call (&node, "GET", "/v1/slow", NULL, NULL, &status), CLI_FAIL);
    cli_client_set_timeout (CLI_CLIENT_TIMEOUT_MS);
    ck_assert_int_eq (status, 0);
    ck_assert_msg (strstr (node.err, "did not answer on 127.0.0.1:") != NULL, "stderr: %s",
                   node.err);
    gkx_http_close (&server);
    gkx_test_rmtree (node.dir);
}
END_TEST

START_TEST (test_client_refuses_a_readable_token)
{
    s_node_t node;
    s_node_make (&node, 9);
    s_node_write (&node, "api.token", S_TOKEN "\n", 0644);
    ck_assert_int_eq (s_node_call (&node, "GET", "/v1/ping", NULL, NULL, NULL), CLI_FAIL);
    ck_assert_ptr_nonnull (strstr (node.err, "mode 644 lets others read it; chmod 600 it"));
    ck_assert_ptr_null (strstr (node.err, S_TOKEN));
    s_node_write (&node, "api.token", "\n", 0600);
    ck_assert_int_eq (s_node_call (&node, "GET", "/v1/ping", NULL, NULL, NULL), CLI_FAIL);
    ck_assert_ptr_nonnull (strstr (node.err, "the first line must be the token"));
    s_node_write (&node, "gkx.conf", "[node]\nrole = nobody\n", 0644);
    ck_assert_int_eq (s_node_call (&node, "GET", "/v1/ping", NULL, NULL, NULL), CLI_FAIL);
    ck_assert_ptr_nonnull (strstr (node.err, "gkx: "));
    ck_assert_ptr_nonnull (strstr (node.err, "role"));
    gkx_test_rmtree (node.dir);
}
END_TEST

int
main (void)
{
    curl_global_init (CURL_GLOBAL_DEFAULT);
    Suite *s = suite_create ("http");
    TCase *tc = tcase_create ("http");
    /* Generous for valgrind; the whole program runs in a few seconds. */
    tcase_set_timeout (tc, 60);
    tcase_add_test (tc, test_ping_answers_json_with_no_store);
    tcase_add_test (tc, test_echo_returns_the_parsed_body);
    tcase_add_test (tc, test_segments_and_query_are_decoded);
    tcase_add_test (tc, test_missing_token_is_401);
    tcase_add_test (tc, test_wrong_token_is_401);
    tcase_add_test (tc, test_no_token_configured_serves_everyone);
    tcase_add_test (tc, test_unknown_path_is_404_naming_it);
    tcase_add_test (tc, test_wrong_method_is_405_with_allow);
    tcase_add_test (tc, test_malformed_json_is_400_naming_line_and_column);
    tcase_add_test (tc, test_invalid_utf8_is_400);
    tcase_add_test (tc, test_body_over_the_limit_is_413);
    tcase_add_test (tc, test_chunked_body_over_the_limit_is_cut_off);
    tcase_add_test (tc, test_bad_segment_is_400);
    tcase_add_test (tc, test_bad_query_is_400);
    tcase_add_test (tc, test_dot_segments_are_400);
    tcase_add_test (tc, test_ambiguous_or_oversized_headers_are_refused);
    tcase_add_test (tc, test_slow_requests_are_cut);
    tcase_add_test (tc, test_connections_per_address_are_limited);
    tcase_add_test (tc, test_non_json_content_type_is_415);
    tcase_add_test (tc, test_handler_without_reply_is_500);
    tcase_add_test (tc, test_text_reply_for_metrics);
    tcase_add_test (tc, test_typed_reply_has_its_type);
    tcase_add_test (tc, test_slow_handlers_run_in_parallel);
    tcase_add_test (tc, test_stalled_clients_block_nobody);
    tcase_add_test (tc, test_close_waits_for_running_handlers);
    tcase_add_test (tc, test_stats_count_by_status_class);
    tcase_add_test (tc, test_open_refuses_bad_addresses_and_routes);
    tcase_add_test (tc, test_raw_query_is_byte_exact);
    tcase_add_test (tc, test_raw_query_of_requests_on_one_connection);
    tcase_add_test (tc, test_long_postback_query_passes_with_query_max);
    tcase_add_test (tc, test_query_max_defaults_to_64);
    tcase_add_test (tc, test_request_target_over_the_limit_is_414);
    tcase_add_test (tc, test_client_address_is_loopback);
    tcase_add_test (tc, test_body_discard_takes_any_body);
    tcase_add_test (tc, test_client_calls_the_node);
    tcase_add_test (tc, test_client_prints_the_error_message);
    tcase_add_test (tc, test_client_says_the_node_is_not_running);
    tcase_add_test (tc, test_client_says_when_the_node_is_slow);
    tcase_add_test (tc, test_client_refuses_a_readable_token);
    suite_add_tcase (s, tc);
    int rc = gkx_test_run (s);
    curl_global_cleanup ();
    return rc;
}
