/*  client - the gkx command line's client for its node's HTTP JSON API.
    Part of gokart-exchange; MIT licence.

    One libcurl easy handle per process, made on the first call (after
    curl_global_init) and reset between calls, so connections to the node
    are reused. Proxies from the environment are switched off: the bearer
    token goes straight to the node's own address and nowhere else. Copies
    of the token on the stack and in the header list are wiped before they
    are freed.
*/
#include "client.h"

#include <gkx/alloc.h>
#include <gkx/config.h>

#include <assert.h>
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

/* Longest token accepted, in bytes. */
#define S_TOKEN_BYTES 1024
/* Longest path or URL built. */
#define S_PATH_BYTES 4096
/* Longest error message quoted from a reply. */
#define S_MESSAGE_BYTES 512
/* "Authorization: Bearer " and its token. */
#define S_AUTH_BYTES (S_TOKEN_BYTES + 32)

/* The process's libcurl handle; NULL until the first call. */
static CURL *s_curl;
/* Milliseconds a call waits for its answer. */
static long s_timeout_ms = CLI_CLIENT_TIMEOUT_MS;

/* A reply being received. */
typedef struct {
    char *data;         /* bytes so far */
    size_t len;         /* bytes in data */
    int too_big;        /* the reply went past CLI_CLIENT_REPLY_MAX */
} s_reply_t;

/* Prints "gkx: " and a formatted message to stderr; returns CLI_FAIL. */
static int
s_fail (const char *fmt, ...) __attribute__ ((format (printf, 1, 2)));

/* Prints "gkx: " and a formatted message to stderr; returns CLI_FAIL. */
static int
s_fail (const char *fmt, ...)
{
    va_list args;
    fputs ("gkx: ", stderr);
    va_start (args, fmt);
    vfprintf (stderr, fmt, args);
    va_end (args);
    fputc ('\n', stderr);
    return CLI_FAIL;
}

/* Releases the handle and libcurl at exit. */
static void
s_cleanup (void)
{
    curl_easy_cleanup (s_curl);
    s_curl = NULL;
    curl_global_cleanup ();
}

/* Returns the process's handle, reset for a new request; NULL when libcurl
   cannot start. */
static CURL *
s_handle (void)
{
    if (s_curl) {
        curl_easy_reset (s_curl);
        return s_curl;
    }
    if (curl_global_init (CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        return NULL;
    }
    s_curl = curl_easy_init ();
    if (!s_curl) {
        curl_global_cleanup ();
        return NULL;
    }
    atexit (s_cleanup);
    return s_curl;
}

/* libcurl write callback: appends to the reply up to its limit. */
static size_t
s_write (char *data, size_t size, size_t count, void *user)
{
    s_reply_t *reply = user;
    size_t len = size * count;
    if (len > CLI_CLIENT_REPLY_MAX - reply->len) {
        reply->too_big = 1;
        return 0;
    }
    reply->data = gkx_realloc (reply->data, reply->len + len + 1);
    memcpy (reply->data + reply->len, data, len);
    reply->len += len;
    reply->data[reply->len] = '\0';
    return len;
}

/* Reads the first line of DIR/api.token, trimmed, into token (S_TOKEN_BYTES);
   refuses a file that group or others may read. */
static int
s_token_read (char *token, const char *dir)
{
    char path[S_PATH_BYTES];
    if ((size_t) snprintf (path, sizeof path, "%s/%s", dir, GKX_TOKEN_NAME) >= sizeof path) {
        return s_fail ("%s: directory name too long", dir);
    }
    int fd = open (path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        return s_fail ("api token %s: %s (is %s a node directory? see gkx init)", path,
                       strerror (errno), dir);
    }
    struct stat st;
    if (fstat (fd, &st) != 0) {
        close (fd);
        return s_fail ("api token %s: %s", path, strerror (errno));
    }
    if (st.st_mode & (S_IRWXG | S_IRWXO)) {
        close (fd);
        return s_fail ("api token %s: mode %03o lets others read it; chmod 600 it", path,
                       (unsigned) (st.st_mode & 0777));
    }
    char text[S_TOKEN_BYTES + 2];
    size_t len = 0;
    ssize_t got = 1;
    while (got > 0 && len < sizeof text - 1) {
        got = read (fd, text + len, sizeof text - 1 - len);
        len += got > 0 ? (size_t) got : 0;
    }
    close (fd);
    if (got < 0) {
        sodium_memzero (text, sizeof text);
        return s_fail ("api token %s: %s", path, strerror (errno));
    }
    text[len] = '\0';
    size_t start = strspn (text, " \t");
    size_t end = start + strcspn (text + start, "\r\n");
    while (end > start && (text[end - 1] == ' ' || text[end - 1] == '\t')) {
        end--;
    }
    int ok = end > start && end - start < S_TOKEN_BYTES;
    for (size_t i = start; ok && i < end; i++) {
        ok = text[i] > 0x20 && text[i] < 0x7f;
    }
    if (ok) {
        memcpy (token, text + start, end - start);
        token[end - start] = '\0';
    }
    sodium_memzero (text, sizeof text);
    return ok ? CLI_OK
              : s_fail ("api token %s: the first line must be the token (printable, no spaces)",
                        path);
}

/* Copies text for the terminal: control bytes become '?'. */
static void
s_printable (char *out, size_t size, const char *text)
{
    size_t i = 0;
    for (; text[i] && i < size - 1; i++) {
        unsigned char c = (unsigned char) text[i];
        out[i] = c < 0x20 || c == 0x7f ? '?' : (char) c;
    }
    out[i] = '\0';
}

/* Parses a reply body: JSON, or text (text/plain, text/csv) as a JSON
   string; NULL when it is neither. */
static json_t *
s_parse (const s_reply_t *reply, const char *type)
{
    if (type && strncasecmp (type, "text/", 5) == 0) {
        return json_stringn (reply->data ? reply->data : "", reply->len);
    }
    if (!reply->data) {
        return NULL;
    }
    return json_loadb (reply->data, reply->len, JSON_DECODE_ANY, NULL);
}

/* Prints the error a reply carries; returns CLI_FAIL. */
static int
s_reply_error (const json_t *json, long status, const char *dir)
{
    const char *message = json_string_value (
        json_object_get (json_object_get (json, "error"), "message"));
    char text[S_MESSAGE_BYTES];
    if (!message) {
        return s_fail ("the node in %s answered HTTP %ld", dir, status);
    }
    s_printable (text, sizeof text, message);
    if (status == 401) {
        return s_fail ("%s (%s/%s does not hold the running node's token)", text, dir,
                       GKX_TOKEN_NAME);
    }
    return s_fail ("%s", text);
}

/* Sends the request; on a 2xx reply, hands back the parsed JSON in *reply_p
   or, when bytes_p is set, the body's bytes in *bytes_p and *len_p. */
static int
s_call (const char *dir, const char *method, const char *path, const json_t *body,
        json_t **reply_p, long *status_p, uint8_t **bytes_p, size_t *len_p)
{
    assert (dir);
    assert (method);
    assert (path && path[0] == '/');
    char errbuf[GKX_ERRBUF_BYTES];
    char token[S_TOKEN_BYTES];
    char auth[S_AUTH_BYTES];
    char url[S_PATH_BYTES];
    char curl_error[CURL_ERROR_SIZE] = "";
    gkx_config_t *config = NULL;
    struct curl_slist *headers = NULL;
    char *payload = NULL;
    s_reply_t reply = {NULL, 0, 0};
    json_t *json = NULL;
    long status = 0;
    int rc = CLI_FAIL;
    if (status_p) {
        *status_p = 0;
    }
    if (gkx_config_load (&config, dir, errbuf) != GKX_OK) {
        return s_fail ("%s", errbuf);
    }
    const char *address = config->api_listen;
    if ((size_t) snprintf (url, sizeof url, "http://%s%s", address, path) >= sizeof url) {
        rc = s_fail ("request path too long");
        goto cleanup;
    }
    if (s_token_read (token, dir) != CLI_OK) {
        goto cleanup;
    }
    snprintf (auth, sizeof auth, "Authorization: Bearer %s", token);
    sodium_memzero (token, sizeof token);
    CURL *curl = s_handle ();
    if (!curl) {
        rc = s_fail ("libcurl failed to initialise");
        goto cleanup;
    }
    headers = curl_slist_append (headers, auth);
    headers = curl_slist_append (headers, "Accept: application/json");
    /* No "Expect: 100-continue" round trip for large bodies. */
    headers = curl_slist_append (headers, "Expect:");
    if (body) {
        payload = json_dumps (body, JSON_COMPACT | JSON_ENCODE_ANY);
        headers = curl_slist_append (headers, "Content-Type: application/json");
    }
    if (!headers || (body && !payload)) {
        rc = s_fail ("cannot prepare the request to the node");
        goto cleanup;
    }
    curl_easy_setopt (curl, CURLOPT_URL, url);
    curl_easy_setopt (curl, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt (curl, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt (curl, CURLOPT_TIMEOUT_MS, s_timeout_ms);
    curl_easy_setopt (curl, CURLOPT_PROXY, "");
    curl_easy_setopt (curl, CURLOPT_NOPROXY, "*");
    curl_easy_setopt (curl, CURLOPT_PROTOCOLS_STR, "http");
    curl_easy_setopt (curl, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt (curl, CURLOPT_USERAGENT, "gkx");
    curl_easy_setopt (curl, CURLOPT_ERRORBUFFER, curl_error);
    curl_easy_setopt (curl, CURLOPT_WRITEFUNCTION, s_write);
    curl_easy_setopt (curl, CURLOPT_WRITEDATA, &reply);
    if (strcmp (method, "GET") == 0 && !body) {
        curl_easy_setopt (curl, CURLOPT_HTTPGET, 1L);
    }
    else {
        curl_easy_setopt (curl, CURLOPT_POSTFIELDS, payload ? payload : "");
        curl_easy_setopt (curl, CURLOPT_POSTFIELDSIZE_LARGE,
                          (curl_off_t) (payload ? strlen (payload) : 0));
        curl_easy_setopt (curl, CURLOPT_CUSTOMREQUEST, method);
    }
    CURLcode code = curl_easy_perform (curl);
    /* Forget the token's copies before anything else can fail. */
    curl_easy_setopt (curl, CURLOPT_HTTPHEADER, NULL);
    if (code == CURLE_COULDNT_CONNECT) {
        rc = s_fail ("the node in %s is not running (no answer on %s); "
                     "start it with: gkxd --dir %s",
                     dir, address, dir);
        goto cleanup;
    }
    if (code == CURLE_OPERATION_TIMEDOUT) {
        int whole = s_timeout_ms % 1000 == 0;
        rc = s_fail ("the node in %s did not answer on %s within %ld %s", dir, address,
                     whole ? s_timeout_ms / 1000 : s_timeout_ms, whole ? "s" : "ms");
        goto cleanup;
    }
    if (code == CURLE_WRITE_ERROR && reply.too_big) {
        rc = s_fail ("the node's reply is over %d bytes", CLI_CLIENT_REPLY_MAX);
        goto cleanup;
    }
    if (code != CURLE_OK) {
        rc = s_fail ("cannot talk to the node in %s on %s: %s", dir, address,
                     curl_error[0] ? curl_error : curl_easy_strerror (code));
        goto cleanup;
    }
    char *type = NULL;
    curl_easy_getinfo (curl, CURLINFO_RESPONSE_CODE, &status);
    curl_easy_getinfo (curl, CURLINFO_CONTENT_TYPE, &type);
    if (status_p) {
        *status_p = status;
    }
    json = s_parse (&reply, type);
    if (status < 200 || status > 299) {
        rc = s_reply_error (json, status, dir);
        goto cleanup;
    }
    if (bytes_p) {
        *bytes_p = reply.data ? (uint8_t *) reply.data : gkx_zalloc (1);
        *len_p = reply.len;
        reply.data = NULL;
        rc = CLI_OK;
        goto cleanup;
    }
    if (!json) {
        rc = s_fail ("the node in %s sent a reply that is not JSON (HTTP %ld)", dir, status);
        goto cleanup;
    }
    if (reply_p) {
        *reply_p = json;
        json = NULL;
    }
    rc = CLI_OK;
cleanup:
    for (struct curl_slist *h = headers; h; h = h->next) {
        sodium_memzero (h->data, strlen (h->data));
    }
    curl_slist_free_all (headers);
    sodium_memzero (auth, sizeof auth);
    sodium_memzero (token, sizeof token);
    free (payload);
    gkx_free (reply.data);
    json_decref (json);
    gkx_config_destroy (&config);
    return rc;
}

int
cli_client_call (const char *dir, const char *method, const char *path, const json_t *body,
                 json_t **reply_p, long *status_p)
{
    return s_call (dir, method, path, body, reply_p, status_p, NULL, NULL);
}

int
cli_client_fetch (const char *dir, const char *path, uint8_t **bytes_p, size_t *len_p)
{
    assert (bytes_p && len_p);
    return s_call (dir, "GET", path, NULL, NULL, NULL, bytes_p, len_p);
}

void
cli_client_set_timeout (long timeout_ms)
{
    assert (timeout_ms > 0);
    s_timeout_ms = timeout_ms;
}
