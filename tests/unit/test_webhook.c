/*  test_webhook - tests of the webhook module: secrets, signatures, back-off, the thread.
    Part of gokart-exchange; MIT licence.

    Signatures are compared byte for byte with golden values: the Standard
    Webhooks specification's published example, and vectors made with
    Python's hmac module (HMAC-SHA256, base64) for keys of other lengths.
    Each secret rejection has its own case with the exact code and message,
    and none of the messages may quote the secret.

    The test builds src/node/webhook.c itself and stands in for the three
    functions of gkxd it calls outside libgkx (gkx_node_call,
    gkx_node_store, gkx_api_conversion_json): a stand-in node holds a real
    publisher store, and its "loop" is a mutex that the delivery thread and
    the test take in turn. The worker cases queue real deliveries (an
    advertiser store converts, the publisher store ingests), let the thread
    POST them to a small HTTP receiver on 127.0.0.1 that checks nothing and
    records everything, and then check the requests, the signatures, the
    retries and what the store recorded.
*/
#include "testutil.h"

#include "fixtures.h"

#include <gkx/api.h>
#include <gkx/conversion.h>
#include <gkx/error.h>
#include <gkx/identity.h>
#include <gkx/kind.h>
#include <gkx/postback.h>
#include <gkx/store.h>
#include <gkx/webhook.h>

#include <arpa/inet.h>
#include <jansson.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <sodium.h>
#include <stdint.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>

/* Number of elements of a static array. */
#define S_COUNT(a) (sizeof (a) / sizeof ((a)[0]))

/* The Standard Webhooks specification's example. */
#define SPEC_SECRET "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
#define SPEC_ID "msg_p5jXN8AQM9LWM0D4loKWxJek"
#define SPEC_TIMESTAMP 1614265330
#define SPEC_BODY "{\"test\": 2432232314}"
#define SPEC_SIGNATURE "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="

/* The test's stand-in for gkxd's node. */
struct gkx_node {
    pthread_mutex_t lock; /* the "loop": held while a call runs */
    int running;          /* calls run; else they fail as when the loop is not running */
    int calls;            /* calls asked for */
    gkx_store_t *store;   /* the publisher's store */
};

int
gkx_node_call (gkx_node_t *self, gkx_node_fn *fn, void *arg)
{
    pthread_mutex_lock (&self->lock);
    self->calls++;
    int rc = self->running ? fn (self, arg) : GKX_ESTORE;
    pthread_mutex_unlock (&self->lock);
    return rc;
}

gkx_store_t *
gkx_node_store (gkx_node_t *self)
{
    ck_assert_ptr_nonnull (self->store);
    return self->store;
}

/* A short stand-in for the API's conversion record: its id, a "seq" the
   webhook must replace with the delivered entry's, and its status. */
json_t *
gkx_api_conversion_json (gkx_node_t *node, const uint8_t pid[GKX_ID_BYTES],
                         const uint8_t id[GKX_HASH_BYTES])
{
    gkx_store_conversion_t record;
    if (gkx_store_conversion (gkx_node_store (node), pid, id, &record) != GKX_OK) {
        return NULL;
    }
    char hex[2 * GKX_HASH_BYTES + 1];
    sodium_bin2hex (hex, sizeof hex, id, GKX_HASH_BYTES);
    return json_pack ("{s:s, s:i, s:s}", "id", hex, "seq", -1, "status",
                      gkx_conversion_status_name (record.status));
}

/* Milliseconds of a monotonic clock. */
static uint64_t
s_clock_ms (void)
{
    struct timespec ts;
    clock_gettime (CLOCK_MONOTONIC, &ts);
    return (uint64_t) ts.tv_sec * 1000 + (uint64_t) ts.tv_nsec / 1000000;
}

/* Parses text and fails the test unless it is a key of len bytes. */
static void
s_parse_ok (uint8_t key[GKX_WEBHOOK_KEY_MAX_BYTES], const char *text, size_t len)
{
    char errbuf[GKX_ERRBUF_BYTES] = "";
    size_t got = 0;
    int rc = gkx_webhook_secret_parse (key, &got, text, errbuf);
    ck_assert_msg (rc == GKX_OK, "%s: %s", gkx_errname (rc), errbuf);
    ck_assert_uint_eq (got, len);
}

START_TEST (test_sign_spec_example)
{
    uint8_t key[GKX_WEBHOOK_KEY_MAX_BYTES];
    s_parse_ok (key, SPEC_SECRET, 24);
    char out[GKX_WEBHOOK_SIGNATURE_BYTES];
    ck_assert_int_eq (gkx_webhook_sign (out, sizeof out, key, 24, SPEC_ID, SPEC_TIMESTAMP,
                                        SPEC_BODY, strlen (SPEC_BODY)),
                      GKX_OK);
    ck_assert_str_eq (out, SPEC_SIGNATURE);
    ck_assert_uint_eq (strlen (out) + 1, GKX_WEBHOOK_SIGNATURE_BYTES);
}
END_TEST

/* Golden signatures from Python's hmac module, for other key lengths. */
static const struct {
    const char *secret;
    size_t key_len;
    const char *msg_id;
    uint64_t timestamp;
    const char *body;
    const char *signature;
} s_vectors[] = {
    {"whsec_AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8gISIjJCUmJygpKissLS4vMDEyMzQ1Njc4OTo7PD0"
     "+Pw==",
     64, "0123456789abcdef-42", 1764496800,
     "{\"data\":{\"seq\":42},\"type\":\"conversion.created\"}",
     "v1,midyZRSRm1dXkYDLEBRAAdvsFb0B7UUNCEMUzl85F94="},
    {"whsec_ZGVmZ2hpamtsbW5vcHFyc3R1dnd4eXp7", 24, "x", 0, "",
     "v1,ivw2VXHzx2mvgPznIPAlKFr4OH62f/6MthSvy5kkjaw="},
    {"whsec_AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8gISIjJCUmJygpKissLS4vMDEyMzQ1Njc4OTo7PD0"
     "+Pw==",
     64, "a", UINT64_MAX, "body", "v1,EZG1SjmixpI+AyAg3X/hzMbgLbKwcERl+nufxYRIwus="},
};

START_TEST (test_sign_vectors)
{
    uint8_t key[GKX_WEBHOOK_KEY_MAX_BYTES];
    s_parse_ok (key, s_vectors[_i].secret, s_vectors[_i].key_len);
    char out[GKX_WEBHOOK_SIGNATURE_BYTES];
    ck_assert_int_eq (gkx_webhook_sign (out, sizeof out, key, s_vectors[_i].key_len,
                                        s_vectors[_i].msg_id, s_vectors[_i].timestamp,
                                        s_vectors[_i].body, strlen (s_vectors[_i].body)),
                      GKX_OK);
    ck_assert_str_eq (out, s_vectors[_i].signature);
}
END_TEST

START_TEST (test_sign_each_part_counts)
{
    uint8_t key[GKX_WEBHOOK_KEY_MAX_BYTES];
    s_parse_ok (key, SPEC_SECRET, 24);
    char base[GKX_WEBHOOK_SIGNATURE_BYTES];
    char other[GKX_WEBHOOK_SIGNATURE_BYTES];
    ck_assert_int_eq (gkx_webhook_sign (base, sizeof base, key, 24, "id", 1, "{}", 2), GKX_OK);
    ck_assert_int_eq (gkx_webhook_sign (other, sizeof other, key, 24, "iD", 1, "{}", 2), GKX_OK);
    ck_assert_str_ne (base, other);
    ck_assert_int_eq (gkx_webhook_sign (other, sizeof other, key, 24, "id", 2, "{}", 2), GKX_OK);
    ck_assert_str_ne (base, other);
    ck_assert_int_eq (gkx_webhook_sign (other, sizeof other, key, 24, "id", 1, "{} ", 3), GKX_OK);
    ck_assert_str_ne (base, other);
    /* Only body_len bytes of the body count. */
    ck_assert_int_eq (gkx_webhook_sign (other, sizeof other, key, 24, "id", 1, "{}xyz", 2), GKX_OK);
    ck_assert_str_eq (base, other);
    key[0] ^= 1;
    ck_assert_int_eq (gkx_webhook_sign (other, sizeof other, key, 24, "id", 1, "{}", 2), GKX_OK);
    ck_assert_str_ne (base, other);
}
END_TEST

START_TEST (test_sign_buffer_too_small)
{
    uint8_t key[GKX_WEBHOOK_KEY_MAX_BYTES];
    s_parse_ok (key, SPEC_SECRET, 24);
    char out[GKX_WEBHOOK_SIGNATURE_BYTES] = "untouched";
    ck_assert_int_eq (gkx_webhook_sign (out, sizeof out - 1, key, 24, SPEC_ID, SPEC_TIMESTAMP,
                                        SPEC_BODY, strlen (SPEC_BODY)),
                      GKX_ETOOBIG);
    ck_assert_str_eq (out, "untouched");
}
END_TEST

START_TEST (test_secret_sizes)
{
    uint8_t key[GKX_WEBHOOK_KEY_MAX_BYTES];
    s_parse_ok (key, SPEC_SECRET, 24);
    static const uint8_t spec_key_head[] = {0x31, 0xf2, 0x90, 0xf6};
    ck_assert_mem_eq (key, spec_key_head, sizeof spec_key_head);
    /* 64 bytes 0, 1, ... 63. */
    s_parse_ok (key, s_vectors[0].secret, 64);
    for (int i = 0; i < 64; i++) {
        ck_assert_uint_eq (key[i], (unsigned) i);
    }
}
END_TEST

/* Eight and eighty base64 digits of zero bytes. */
#define A8 "AAAAAAAA"
#define A80 A8 A8 A8 A8 A8 A8 A8 A8 A8 A8

/* Secrets refused, with the exact message. */
static const struct {
    const char *text;
    const char *message;
} s_bad_secrets[] = {
    {"", "webhook.secret: must start with \"whsec_\""},
    {"MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "webhook.secret: must start with \"whsec_\""},
    {"WHSEC_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "webhook.secret: must start with \"whsec_\""},
    {"whsec_", "webhook.secret: decodes to 0 bytes, not 24 to 64"},
    /* 23 zero bytes. */
    {"whsec_" A8 A8 A8 "AAAAAAA=", "webhook.secret: decodes to 23 bytes, not 24 to 64"},
    /* 65 and 66 zero bytes: 88 characters, as for 64. */
    {"whsec_" A80 "AAAAAAA=", "webhook.secret: decodes to 65 bytes, not 24 to 64"},
    {"whsec_" A80 A8, "webhook.secret: decodes to 66 bytes, not 24 to 64"},
    /* 67 zero bytes: 92 characters. */
    {"whsec_" A80 A8 "AA==",
     "webhook.secret: longer than the base64 of 64 bytes (92 characters after \"whsec_\", at "
     "most 88)"},
    /* base64url, not standard base64. */
    {"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2La_-Sw",
     "webhook.secret: what follows \"whsec_\" is not standard base64 (A-Z a-z 0-9 + /, with = "
     "padding)"},
    /* Padding left out. */
    {"whsec_" A8 A8 A8 "AAAAAAA",
     "webhook.secret: what follows \"whsec_\" is not standard base64 (A-Z a-z 0-9 + /, with = "
     "padding)"},
    /* Spaces are not skipped. */
    {"whsec_MfKQ9r8GKYqrTwjU PD8ILPZIo2LaLaSw",
     "webhook.secret: what follows \"whsec_\" is not standard base64 (A-Z a-z 0-9 + /, with = "
     "padding)"},
    {"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw\n",
     "webhook.secret: what follows \"whsec_\" is not standard base64 (A-Z a-z 0-9 + /, with = "
     "padding)"},
};

START_TEST (test_secret_rejections)
{
    uint8_t key[GKX_WEBHOOK_KEY_MAX_BYTES];
    memset (key, 0xa5, sizeof key);
    size_t len = 777;
    char errbuf[GKX_ERRBUF_BYTES] = "";
    int rc = gkx_webhook_secret_parse (key, &len, s_bad_secrets[_i].text, errbuf);
    ck_assert_msg (rc == GKX_EINVAL, "%s accepted", s_bad_secrets[_i].text);
    ck_assert_str_eq (errbuf, s_bad_secrets[_i].message);
    ck_assert_uint_eq (len, 777);
    for (size_t i = 0; i < sizeof key; i++) {
        ck_assert_uint_eq (key[i], 0xa5);
    }
    /* The message never quotes the secret, nor a long piece of it. */
    const char *base64 = strchr (s_bad_secrets[_i].text, '_');
    base64 = base64 ? base64 + 1 : s_bad_secrets[_i].text;
    for (size_t i = 0; i + 8 <= strlen (base64); i++) {
        char piece[9];
        memcpy (piece, base64 + i, 8);
        piece[8] = '\0';
        ck_assert_msg (strstr (errbuf, piece) == NULL, "message quotes the secret: %s", errbuf);
    }
}
END_TEST

/* The back-off after n failed attempts. */
static const struct {
    uint32_t attempts;
    uint64_t delay_ms;
} s_backoffs[] = {
    {0, 1000},    {1, 1000},    {2, 2000},    {3, 4000},      {4, 8000},
    {5, 16000},   {6, 32000},   {7, 64000},   {8, 128000},    {9, 256000},
    {10, 300000}, {11, 300000}, {64, 300000}, {1000, 300000}, {UINT32_MAX, 300000},
};

START_TEST (test_backoff)
{
    ck_assert_uint_eq (gkx_webhook_backoff_ms (s_backoffs[_i].attempts), s_backoffs[_i].delay_ms);
}
END_TEST

/* Starts with url and secret; fails the test unless refused with a message
   that starts with message (libcurl's own words follow some). */
static void
s_start_refused (const char *url, const char *secret, const char *message)
{
    struct gkx_node node = {PTHREAD_MUTEX_INITIALIZER, 0, 0, NULL};
    gkx_webhook_t *webhook = NULL;
    char errbuf[GKX_ERRBUF_BYTES] = "";
    ck_assert_int_eq (gkx_webhook_start (&webhook, &node, url, secret, errbuf), GKX_EINVAL);
    ck_assert_ptr_null (webhook);
    ck_assert_msg (strncmp (errbuf, message, strlen (message)) == 0, "message: %s", errbuf);
    ck_assert_int_eq (node.calls, 0);
}

START_TEST (test_start_refusals)
{
    s_start_refused ("ftp://example.com/hook", SPEC_SECRET,
                     "webhook.url: must start with http:// or https://");
    s_start_refused ("file:///etc/passwd", SPEC_SECRET,
                     "webhook.url: must start with http:// or https://");
    s_start_refused ("example.com/hook", SPEC_SECRET, "webhook.url: not a URL (");
    s_start_refused ("", SPEC_SECRET, "webhook.url: not a URL (");
    s_start_refused ("https://user:pw@/hook", SPEC_SECRET, "webhook.url: ");
    s_start_refused ("https://hooks.example/gkx", "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2La_-Sw",
                     "webhook.secret: what follows \"whsec_\" is not standard base64 (A-Z a-z 0-9 "
                     "+ /, with = padding)");
}
END_TEST

START_TEST (test_start_kick_stop)
{
    struct gkx_node node = {PTHREAD_MUTEX_INITIALIZER, 0, 0, NULL};
    gkx_webhook_t *webhook = NULL;
    char errbuf[GKX_ERRBUF_BYTES] = "";
    int rc = gkx_webhook_start (&webhook, &node, "http://127.0.0.1:9/hook", SPEC_SECRET, errbuf);
    ck_assert_msg (rc == GKX_OK, "%s: %s", gkx_errname (rc), errbuf);
    ck_assert_ptr_nonnull (webhook);
    /* The loop is not running: the thread keeps asking, a few times a second. */
    uint64_t deadline = s_clock_ms () + 5000;
    int calls = 0;
    while (calls < 3 && s_clock_ms () < deadline) {
        gkx_webhook_kick (webhook);
        usleep (20000);
        pthread_mutex_lock (&node.lock);
        calls = node.calls;
        pthread_mutex_unlock (&node.lock);
    }
    ck_assert_int_ge (calls, 3);
    uint64_t start = s_clock_ms ();
    gkx_webhook_stop (&webhook);
    ck_assert_uint_lt (s_clock_ms () - start, 1000);
    ck_assert_ptr_null (webhook);
    gkx_webhook_stop (&webhook);
    gkx_webhook_stop (NULL);
}
END_TEST

START_TEST (test_replay_without_webhook)
{
    struct gkx_node node = {PTHREAD_MUTEX_INITIALIZER, 0, 0, NULL};
    json_t *delivery = NULL;
    char errbuf[GKX_ERRBUF_BYTES] = "";
    ck_assert_int_eq (gkx_webhook_replay (&node, NULL, 7, &delivery, errbuf), GKX_EINVAL);
    ck_assert_str_eq (errbuf, "this node has no [webhook] url: nothing would send delivery 7");
    ck_assert_ptr_null (delivery);
}
END_TEST

/* Most requests a receiver records. */
#define S_REQUESTS_MAX 64
/* Largest request a receiver reads. */
#define S_REQUEST_BYTES 65536

/* One request the receiver got. */
typedef struct {
    char id[64];         /* webhook-id */
    char timestamp[32];  /* webhook-timestamp */
    char signature[128]; /* webhook-signature */
    char type[64];       /* Content-Type */
    char agent[64];      /* User-Agent */
    char line[128];      /* the request line */
    char *body;          /* the body, NUL-terminated */
    size_t body_len;     /* bytes of body */
    uint64_t at_ms;      /* when it was read in full (monotonic) */
    int status;          /* what it was answered */
} s_request_t;

/* A small HTTP receiver on 127.0.0.1: one connection at a time, answers
   500 to the first fail_first requests and 200 to the others, or never
   answers when hang is set. */
typedef struct {
    int fd;                               /* listening socket */
    int port;                             /* its port */
    pthread_t thread;                     /* serves the connections */
    pthread_mutex_t lock;                 /* guards what follows */
    int fail_first;                       /* requests answered 500 */
    int hang;                             /* never answer */
    int stop;                             /* the thread must end */
    s_request_t requests[S_REQUESTS_MAX]; /* what came, in order */
    size_t count;                         /* requests used */
} s_receiver_t;

/* Copies the value of header name (case-insensitive) found in head into
   out, or "" when absent. */
static void
s_header (char *out, size_t size, const char *head, const char *name)
{
    size_t name_len = strlen (name);
    out[0] = '\0';
    for (const char *line = strstr (head, "\r\n"); line; line = strstr (line, "\r\n")) {
        line += 2;
        if (strncasecmp (line, name, name_len) == 0 && line[name_len] == ':') {
            const char *value = line + name_len + 1;
            value += strspn (value, " ");
            size_t len = strcspn (value, "\r\n");
            len = len < size - 1 ? len : size - 1;
            memcpy (out, value, len);
            out[len] = '\0';
            return;
        }
    }
}

/* Waits for fd to be readable while the receiver runs; returns 1 when it
   is, 0 when the receiver stops. */
static int
s_readable (s_receiver_t *self, int fd)
{
    for (;;) {
        pthread_mutex_lock (&self->lock);
        int stop = self->stop;
        pthread_mutex_unlock (&self->lock);
        if (stop) {
            return 0;
        }
        struct pollfd item = {fd, POLLIN, 0};
        if (poll (&item, 1, 20) > 0) {
            return 1;
        }
    }
}

/* Reads one request from a connection and records it; returns 0 when the
   connection ended first. */
static int
s_receive (s_receiver_t *self, int fd, s_request_t *request)
{
    char *buf = malloc (S_REQUEST_BYTES + 1);
    size_t len = 0;
    char *end = NULL;
    size_t want = 0;
    while (!end || len < want) {
        if (len == S_REQUEST_BYTES || !s_readable (self, fd)) {
            free (buf);
            return 0;
        }
        ssize_t got = read (fd, buf + len, S_REQUEST_BYTES - len);
        if (got <= 0) {
            free (buf);
            return 0;
        }
        len += (size_t) got;
        buf[len] = '\0';
        if (!end && (end = strstr (buf, "\r\n\r\n")) != NULL) {
            *end = '\0';
            char length[32];
            s_header (length, sizeof length, buf, "Content-Length");
            want = (size_t) (end + 4 - buf) + (size_t) strtoul (length, NULL, 10);
        }
    }
    memset (request, 0, sizeof *request);
    snprintf (request->line, sizeof request->line, "%.*s", (int) strcspn (buf, "\r\n"), buf);
    s_header (request->id, sizeof request->id, buf, "webhook-id");
    s_header (request->timestamp, sizeof request->timestamp, buf, "webhook-timestamp");
    s_header (request->signature, sizeof request->signature, buf, "webhook-signature");
    s_header (request->type, sizeof request->type, buf, "Content-Type");
    s_header (request->agent, sizeof request->agent, buf, "User-Agent");
    request->body_len = want - (size_t) (end + 4 - buf);
    request->body = gkx_memdup (end + 4, request->body_len + 1);
    request->body[request->body_len] = '\0';
    request->at_ms = s_clock_ms ();
    free (buf);
    return 1;
}

/* The receiver's thread. */
static void *
s_receiver_run (void *arg)
{
    s_receiver_t *self = arg;
    while (s_readable (self, self->fd)) {
        int fd = accept (self->fd, NULL, NULL);
        if (fd < 0) {
            continue;
        }
        s_request_t request;
        while (s_receive (self, fd, &request)) {
            pthread_mutex_lock (&self->lock);
            int hang = self->hang;
            request.status = self->count < (size_t) self->fail_first ? 500 : 200;
            if (self->count < S_REQUESTS_MAX) {
                self->requests[self->count++] = request;
            }
            else {
                gkx_free (request.body);
            }
            pthread_mutex_unlock (&self->lock);
            if (hang) {
                s_readable (self, -1);
                break;
            }
            char reply[128];
            int n =
                snprintf (reply, sizeof reply, "HTTP/1.1 %d %s\r\nContent-Length: 2\r\n\r\nok",
                          request.status, request.status == 200 ? "OK" : "Internal Server Error");
            ck_assert_int_eq (write (fd, reply, (size_t) n), n);
        }
        close (fd);
    }
    return NULL;
}

/* Starts a receiver on a free port of 127.0.0.1. */
static void
s_receiver_start (s_receiver_t *self, int fail_first, int hang)
{
    memset (self, 0, sizeof *self);
    pthread_mutex_init (&self->lock, NULL);
    self->fail_first = fail_first;
    self->hang = hang;
    self->fd = socket (AF_INET, SOCK_STREAM, 0);
    ck_assert_int_ge (self->fd, 0);
    struct sockaddr_in address;
    memset (&address, 0, sizeof address);
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl (INADDR_LOOPBACK);
    ck_assert_int_eq (bind (self->fd, (struct sockaddr *) &address, sizeof address), 0);
    ck_assert_int_eq (listen (self->fd, 16), 0);
    socklen_t len = sizeof address;
    ck_assert_int_eq (getsockname (self->fd, (struct sockaddr *) &address, &len), 0);
    self->port = ntohs (address.sin_port);
    ck_assert_int_eq (pthread_create (&self->thread, NULL, s_receiver_run, self), 0);
}

/* Stops a receiver and frees what it recorded. */
static void
s_receiver_stop (s_receiver_t *self)
{
    pthread_mutex_lock (&self->lock);
    self->stop = 1;
    pthread_mutex_unlock (&self->lock);
    pthread_join (self->thread, NULL);
    close (self->fd);
    for (size_t i = 0; i < self->count; i++) {
        gkx_free (self->requests[i].body);
    }
    pthread_mutex_destroy (&self->lock);
}

/* Returns the number of requests a receiver got. */
static size_t
s_receiver_count (s_receiver_t *self)
{
    pthread_mutex_lock (&self->lock);
    size_t count = self->count;
    pthread_mutex_unlock (&self->lock);
    return count;
}

/* Waits up to 10 s for a receiver to have count requests. */
static void
s_receiver_wait (s_receiver_t *self, size_t count)
{
    uint64_t deadline = s_clock_ms () + 10000;
    while (s_receiver_count (self) < count && s_clock_ms () < deadline) {
        usleep (10000);
    }
    ck_assert_uint_ge (s_receiver_count (self), count);
}

/* An advertiser's store and a publisher's that queues deliveries, sharing
   one partnership; both in one temporary directory. */
typedef struct {
    char root[PATH_MAX];                         /* temporary directory */
    gkx_identity_t *advertiser;                  /* the advertiser's keys */
    gkx_identity_t *publisher;                   /* the publisher's keys */
    gkx_store_t *a;                              /* the advertiser's store */
    uint8_t pid[GKX_ID_BYTES];                   /* the partnership */
    char short_id[GKX_STORE_SHORT_ID_CHARS + 1]; /* its short id */
    struct gkx_node node;                        /* the publisher's stand-in node */
} s_pair_t;

/* Ingests an advertiser entry into the publisher's store, as its loop would. */
static void
s_pair_ship (s_pair_t *pair, const gkx_entry_t *entry)
{
    size_t len;
    const uint8_t *bytes = gkx_entry_bytes (entry, &len);
    char errbuf[GKX_ERRBUF_BYTES] = "";
    int result = 0;
    pthread_mutex_lock (&pair->node.lock);
    int rc = gkx_store_ingest (pair->node.store, bytes, len, gkx_identity_id (pair->advertiser),
                               &result, errbuf);
    pthread_mutex_unlock (&pair->node.lock);
    ck_assert_msg (rc == GKX_OK, "ingest: %s (%s)", gkx_errname (rc), errbuf);
    ck_assert_int_eq (result, GKX_INGEST_APPENDED);
}

/* Opens both stores and shares the test offer. */
static void
s_pair_open (s_pair_t *pair)
{
    memset (pair, 0, sizeof *pair);
    pthread_mutex_init (&pair->node.lock, NULL);
    pair->node.running = 1;
    gkx_test_tmpdir (pair->root);
    pair->advertiser = gkx_identity_new ();
    pair->publisher = gkx_identity_new ();
    char dir[PATH_MAX + 8];
    char errbuf[GKX_ERRBUF_BYTES] = "";
    snprintf (dir, sizeof dir, "%s/a", pair->root);
    ck_assert_msg (
        gkx_store_open (&pair->a, dir, gkx_identity_id (pair->advertiser), NULL, errbuf) == GKX_OK,
        "%s", errbuf);
    gkx_store_options_t options;
    memset (&options, 0, sizeof options);
    options.deliveries = 1;
    snprintf (dir, sizeof dir, "%s/p", pair->root);
    ck_assert_msg (gkx_store_open (&pair->node.store, dir, gkx_identity_id (pair->publisher),
                                   &options, errbuf) == GKX_OK,
                   "%s", errbuf);
    gkx_entry_t *genesis = NULL;
    ck_assert_msg (gkx_store_share (pair->a, pair->advertiser, gkx_identity_id (pair->publisher),
                                    GKX_TEST_OFFER, NULL, 0, pair->pid, &genesis, errbuf) == GKX_OK,
                   "%s", errbuf);
    s_pair_ship (pair, genesis);
    gkx_entry_destroy (&genesis);
    gkx_store_short_id (pair->short_id, pair->pid);
}

/* Closes both stores and removes the directory. */
static void
s_pair_close (s_pair_t *pair)
{
    gkx_store_close (&pair->a);
    gkx_store_close (&pair->node.store);
    gkx_identity_destroy (&pair->advertiser);
    gkx_identity_destroy (&pair->publisher);
    pthread_mutex_destroy (&pair->node.lock);
    gkx_test_rmtree (pair->root);
}

/* The advertiser converts an install (transaction names it) and the
   publisher ingests it; id receives the conversion id. */
static void
s_pair_convert (s_pair_t *pair, const char *transaction, uint8_t id[GKX_HASH_BYTES])
{
    gkx_store_convert_t *item = gkx_zalloc (sizeof *item);
    memcpy (item->pid, pair->pid, GKX_ID_BYTES);
    snprintf (item->draft.click_id, sizeof item->draft.click_id, "click-%s", transaction);
    snprintf (item->draft.event, sizeof item->draft.event, "install");
    /* Ahead of now: with the test offer's hold of 0 days, an approved
       conversion locks at its event time, and the status tests change it. */
    item->draft.time = (uint64_t) time (NULL) + 600;
    gkx_postback_dedupe_key (item->draft.dedupe, transaction, "install");
    item->facts.event = item->draft.event;
    item->facts.time = item->draft.time;
    char errbuf[GKX_ERRBUF_BYTES] = "";
    ck_assert_msg (gkx_store_convert (pair->a, pair->advertiser, item, 1, errbuf) == GKX_OK, "%s",
                   errbuf);
    ck_assert_msg (item->rc == GKX_OK && item->entry, "%s", item->errbuf);
    memcpy (id, item->conversion.id, GKX_HASH_BYTES);
    s_pair_ship (pair, item->entry);
    gkx_entry_destroy (&item->entry);
    gkx_free (item);
}

/* The advertiser changes conversion id's status and the publisher ingests it. */
static void
s_pair_change (s_pair_t *pair, const uint8_t id[GKX_HASH_BYTES], int status, const char *reason)
{
    gkx_conversion_change_t change;
    memset (&change, 0, sizeof change);
    memcpy (change.conversion, id, GKX_HASH_BYTES);
    change.status = status;
    snprintf (change.reason, sizeof change.reason, "%s", reason);
    uint8_t *body = NULL;
    size_t len = 0;
    char errbuf[GKX_ERRBUF_BYTES] = "";
    ck_assert_msg (gkx_conversion_change_encode (&body, &len, &change, errbuf) == GKX_OK, "%s",
                   errbuf);
    gkx_entry_t *entry = NULL;
    ck_assert_msg (gkx_store_append (pair->a, pair->advertiser, pair->pid,
                                     GKX_KIND_CONVERSION_STATUS, body, len, &entry,
                                     errbuf) == GKX_OK,
                   "%s", errbuf);
    s_pair_ship (pair, entry);
    gkx_entry_destroy (&entry);
    gkx_free (body);
}

/* Reads delivery id from the publisher's store, as the loop would. */
static gkx_delivery_t
s_pair_delivery (s_pair_t *pair, uint64_t id)
{
    gkx_delivery_t d;
    pthread_mutex_lock (&pair->node.lock);
    int rc = gkx_store_delivery_get (pair->node.store, id, &d);
    pthread_mutex_unlock (&pair->node.lock);
    ck_assert_int_eq (rc, GKX_OK);
    return d;
}

/* Waits up to 10 s for delivery id to have attempts attempts and no next
   attempt; returns it. */
static gkx_delivery_t
s_pair_settled (s_pair_t *pair, uint64_t id, uint32_t attempts)
{
    uint64_t deadline = s_clock_ms () + 10000;
    gkx_delivery_t d = s_pair_delivery (pair, id);
    while ((d.attempts < attempts || d.next_attempt_ms != 0) && s_clock_ms () < deadline) {
        usleep (10000);
        d = s_pair_delivery (pair, id);
    }
    ck_assert_uint_eq (d.attempts, attempts);
    ck_assert_uint_eq (d.next_attempt_ms, 0);
    return d;
}

/* Starts the delivery thread of pair's node towards a receiver. */
static gkx_webhook_t *
s_pair_start (s_pair_t *pair, const s_receiver_t *receiver)
{
    char url[64];
    snprintf (url, sizeof url, "http://127.0.0.1:%d/hooks/gkx", receiver->port);
    gkx_webhook_t *webhook = NULL;
    char errbuf[GKX_ERRBUF_BYTES] = "";
    int rc = gkx_webhook_start (&webhook, &pair->node, url, SPEC_SECRET, errbuf);
    ck_assert_msg (rc == GKX_OK, "%s: %s", gkx_errname (rc), errbuf);
    return webhook;
}

/* Checks a request's headers and signature (with the spec's secret); returns
   its parsed body (the caller's). */
static json_t *
s_request_check (const s_request_t *request)
{
    ck_assert_str_eq (request->line, "POST /hooks/gkx HTTP/1.1");
    ck_assert_str_eq (request->type, "application/json");
    ck_assert_msg (strncmp (request->agent, "gkxd/", 5) == 0, "User-Agent: %s", request->agent);
    uint64_t timestamp = strtoull (request->timestamp, NULL, 10);
    uint64_t now = (uint64_t) time (NULL);
    ck_assert_msg (timestamp + 5 >= now && timestamp <= now + 5, "webhook-timestamp %s",
                   request->timestamp);
    uint8_t key[GKX_WEBHOOK_KEY_MAX_BYTES];
    s_parse_ok (key, SPEC_SECRET, 24);
    char expected[GKX_WEBHOOK_SIGNATURE_BYTES];
    ck_assert_int_eq (gkx_webhook_sign (expected, sizeof expected, key, 24, request->id, timestamp,
                                        request->body, request->body_len),
                      GKX_OK);
    ck_assert_str_eq (request->signature, expected);
    json_error_t error;
    json_t *body = json_loadb (request->body, request->body_len, 0, &error);
    ck_assert_msg (body != NULL, "body: %s", error.text);
    /* Compact, with sorted keys: what json_dumps gives back. */
    char *again = json_dumps (body, JSON_COMPACT | JSON_SORT_KEYS);
    ck_assert_str_eq (again, request->body);
    free (again);
    return body;
}

/* Four deliveries (three conversions and a status change) to a receiver
   that fails the first two requests: all arrive, signed; the two failures
   come back after the first back-off step; the store records each attempt. */
START_TEST (test_worker_delivers_and_retries)
{
    s_pair_t pair;
    s_pair_open (&pair);
    uint8_t ids[3][GKX_HASH_BYTES];
    s_pair_convert (&pair, "t1", ids[0]);
    s_pair_convert (&pair, "t2", ids[1]);
    s_pair_convert (&pair, "t3", ids[2]);
    s_pair_change (&pair, ids[0], GKX_CONVERSION_REJECTED, "fraud");
    s_receiver_t receiver;
    s_receiver_start (&receiver, 2, 0);
    gkx_webhook_t *webhook = s_pair_start (&pair, &receiver);
    /* Deliveries 1 and 2 fail once each, then succeed. */
    s_receiver_wait (&receiver, 6);
    gkx_delivery_t d1 = s_pair_settled (&pair, 1, 2);
    gkx_delivery_t d2 = s_pair_settled (&pair, 2, 2);
    gkx_delivery_t d3 = s_pair_settled (&pair, 3, 1);
    gkx_delivery_t d4 = s_pair_settled (&pair, 4, 1);
    ck_assert_int_eq (d1.last_status, 200);
    ck_assert_str_eq (d1.last_error, "");
    ck_assert_uint_ne (d1.delivered_ms, 0);
    ck_assert_uint_ge (d1.delivered_ms, d1.created_ms);
    ck_assert_uint_eq (d1.delivered_ms, d1.last_attempt_ms);
    ck_assert_int_eq (d2.last_status, 200);
    ck_assert_uint_ne (d3.delivered_ms, 0);
    ck_assert_uint_ne (d4.delivered_ms, 0);
    /* Nothing more is sent once all are delivered. */
    usleep (300000);
    ck_assert_uint_eq (s_receiver_count (&receiver), 6);
    char expected_ids[4][64];
    for (int i = 0; i < 4; i++) {
        snprintf (expected_ids[i], sizeof expected_ids[i], "%s-%d", pair.short_id, i + 2);
    }
    /* First round, oldest first: 1 (500), 2 (500), 3, 4; then 1 and 2 again,
       in the order their random share of the back-off gives. */
    int order[] = {0, 1, 2, 3, 0, 1};
    if (strcmp (receiver.requests[4].id, expected_ids[1]) == 0) {
        order[4] = 1;
        order[5] = 0;
    }
    static const int statuses[] = {500, 500, 200, 200, 200, 200};
    char pid_hex[2 * GKX_ID_BYTES + 1];
    sodium_bin2hex (pid_hex, sizeof pid_hex, pair.pid, GKX_ID_BYTES);
    for (int i = 0; i < 6; i++) {
        const s_request_t *request = &receiver.requests[i];
        ck_assert_str_eq (request->id, expected_ids[order[i]]);
        ck_assert_int_eq (request->status, statuses[i]);
        json_t *body = s_request_check (request);
        json_t *data = json_object_get (body, "data");
        ck_assert_str_eq (json_string_value (json_object_get (data, "partnership")), pid_hex);
        ck_assert_int_eq (json_integer_value (json_object_get (data, "seq")), order[i] + 2);
        const char *stamp = json_string_value (json_object_get (body, "timestamp"));
        ck_assert_msg (stamp && strlen (stamp) == 24 && stamp[23] == 'Z', "timestamp %s", stamp);
        char id_hex[2 * GKX_HASH_BYTES + 1];
        sodium_bin2hex (id_hex, sizeof id_hex, ids[order[i] == 3 ? 0 : order[i]], GKX_HASH_BYTES);
        ck_assert_str_eq (json_string_value (json_object_get (data, "id")), id_hex);
        if (order[i] < 3) {
            ck_assert_str_eq (json_string_value (json_object_get (body, "type")),
                              "conversion.created");
            ck_assert_ptr_null (json_object_get (data, "change"));
        }
        else {
            ck_assert_str_eq (json_string_value (json_object_get (body, "type")),
                              "conversion.status_changed");
            ck_assert_str_eq (json_string_value (json_object_get (data, "conversion")), id_hex);
            json_t *change = json_object_get (data, "change");
            ck_assert_str_eq (json_string_value (json_object_get (change, "status")), "rejected");
            ck_assert_str_eq (json_string_value (json_object_get (change, "reason")), "fraud");
            ck_assert_str_eq (json_string_value (json_object_get (data, "status")), "rejected");
        }
        json_decref (body);
    }
    /* The retries waited for the first back-off step (1 s, a tenth more at most). */
    for (int i = 4; i < 6; i++) {
        uint64_t gap = receiver.requests[i].at_ms - receiver.requests[order[i]].at_ms;
        ck_assert_msg (gap >= 950 && gap < 3000, "retry after %llu ms", (unsigned long long) gap);
    }
    gkx_webhook_stats_t stats;
    gkx_webhook_stats (webhook, &stats);
    ck_assert_uint_eq (stats.delivered, 4);
    ck_assert_uint_eq (stats.failed, 2);
    gkx_webhook_stop (&webhook);
    s_receiver_stop (&receiver);
    s_pair_close (&pair);
}
END_TEST

/* The listing, newest first, in the API's shape; a replay of a delivered
   delivery sends it again and keeps its first delivery time. */
START_TEST (test_worker_list_and_replay)
{
    s_pair_t pair;
    s_pair_open (&pair);
    uint8_t id[GKX_HASH_BYTES];
    s_pair_convert (&pair, "t1", id);
    s_pair_change (&pair, id, GKX_CONVERSION_REJECTED, "");
    s_receiver_t receiver;
    s_receiver_start (&receiver, 0, 0);
    gkx_webhook_t *webhook = s_pair_start (&pair, &receiver);
    s_receiver_wait (&receiver, 2);
    gkx_delivery_t before = s_pair_settled (&pair, 1, 1);
    s_pair_settled (&pair, 2, 1);
    pthread_mutex_lock (&pair.node.lock);
    json_t *list = gkx_webhook_deliveries_json (&pair.node, 10);
    pthread_mutex_unlock (&pair.node.lock);
    ck_assert_ptr_nonnull (list);
    json_t *deliveries = json_object_get (list, "deliveries");
    ck_assert_uint_eq (json_array_size (deliveries), 2);
    json_t *newest = json_array_get (deliveries, 0);
    json_t *oldest = json_array_get (deliveries, 1);
    ck_assert_int_eq (json_integer_value (json_object_get (newest, "id")), 2);
    ck_assert_str_eq (json_string_value (json_object_get (newest, "event_type")),
                      "conversion.status_changed");
    ck_assert_int_eq (json_integer_value (json_object_get (oldest, "id")), 1);
    ck_assert_str_eq (json_string_value (json_object_get (oldest, "event_type")),
                      "conversion.created");
    char id_hex[2 * GKX_HASH_BYTES + 1];
    sodium_bin2hex (id_hex, sizeof id_hex, id, GKX_HASH_BYTES);
    ck_assert_str_eq (json_string_value (json_object_get (newest, "conversion")), id_hex);
    ck_assert_str_eq (json_string_value (json_object_get (oldest, "conversion")), id_hex);
    ck_assert_int_eq (json_integer_value (json_object_get (oldest, "seq")), 2);
    ck_assert_int_eq (json_integer_value (json_object_get (oldest, "attempts")), 1);
    ck_assert_int_eq (json_integer_value (json_object_get (oldest, "last_status")), 200);
    ck_assert (json_is_null (json_object_get (oldest, "last_error")));
    ck_assert (json_is_null (json_object_get (oldest, "next_attempt")));
    ck_assert (json_is_string (json_object_get (oldest, "created")));
    ck_assert (json_is_string (json_object_get (oldest, "last_attempt")));
    ck_assert (json_is_string (json_object_get (oldest, "delivered")));
    ck_assert_uint_eq (json_object_size (oldest), 12);
    json_decref (list);
    pthread_mutex_lock (&pair.node.lock);
    list = gkx_webhook_deliveries_json (&pair.node, 1);
    pthread_mutex_unlock (&pair.node.lock);
    ck_assert_uint_eq (json_array_size (json_object_get (list, "deliveries")), 1);
    json_decref (list);
    /* Replay: due again at once, the first delivery time kept. */
    json_t *replayed = NULL;
    char errbuf[GKX_ERRBUF_BYTES] = "";
    pthread_mutex_lock (&pair.node.lock);
    int rc = gkx_webhook_replay (&pair.node, webhook, 1, &replayed, errbuf);
    pthread_mutex_unlock (&pair.node.lock);
    ck_assert_msg (rc == GKX_OK, "%s", errbuf);
    ck_assert (json_is_string (json_object_get (replayed, "next_attempt")));
    ck_assert (json_is_string (json_object_get (replayed, "delivered")));
    json_decref (replayed);
    s_receiver_wait (&receiver, 3);
    gkx_delivery_t after = s_pair_settled (&pair, 1, 2);
    ck_assert_uint_eq (after.delivered_ms, before.delivered_ms);
    ck_assert_uint_gt (after.last_attempt_ms, before.last_attempt_ms);
    ck_assert_str_eq (receiver.requests[2].id, receiver.requests[0].id);
    json_decref (s_request_check (&receiver.requests[2]));
    /* An unknown id. */
    pthread_mutex_lock (&pair.node.lock);
    rc = gkx_webhook_replay (&pair.node, webhook, 99, &replayed, errbuf);
    pthread_mutex_unlock (&pair.node.lock);
    ck_assert_int_eq (rc, GKX_ENOTFOUND);
    ck_assert_str_eq (errbuf, "no delivery has id 99");
    gkx_webhook_stop (&webhook);
    s_receiver_stop (&receiver);
    s_pair_close (&pair);
}
END_TEST

/* Stop returns at once while a receiver holds the request, and the
   abandoned attempt is not recorded: the delivery stays due. */
START_TEST (test_worker_stops_mid_request)
{
    s_pair_t pair;
    s_pair_open (&pair);
    uint8_t id[GKX_HASH_BYTES];
    s_pair_convert (&pair, "t1", id);
    s_receiver_t receiver;
    s_receiver_start (&receiver, 0, 1);
    gkx_webhook_t *webhook = s_pair_start (&pair, &receiver);
    s_receiver_wait (&receiver, 1);
    usleep (100000);
    uint64_t start = s_clock_ms ();
    gkx_webhook_stop (&webhook);
    ck_assert_uint_lt (s_clock_ms () - start, 1000);
    gkx_delivery_t d = s_pair_delivery (&pair, 1);
    ck_assert_uint_eq (d.attempts, 0);
    ck_assert_uint_ne (d.next_attempt_ms, 0);
    ck_assert_uint_eq (d.delivered_ms, 0);
    s_receiver_stop (&receiver);
    s_pair_close (&pair);
}
END_TEST

/* A receiver that is not there: the attempt records curl's error and no
   status, and the delivery is due again after the back-off. */
START_TEST (test_worker_records_transport_errors)
{
    s_pair_t pair;
    s_pair_open (&pair);
    uint8_t id[GKX_HASH_BYTES];
    s_pair_convert (&pair, "t1", id);
    s_receiver_t receiver;
    s_receiver_start (&receiver, 0, 0);
    s_receiver_stop (&receiver);
    /* Nothing listens on the port now. */
    gkx_webhook_t *webhook = s_pair_start (&pair, &receiver);
    uint64_t deadline = s_clock_ms () + 10000;
    gkx_delivery_t d = s_pair_delivery (&pair, 1);
    while (d.attempts == 0 && s_clock_ms () < deadline) {
        usleep (10000);
        d = s_pair_delivery (&pair, 1);
    }
    gkx_webhook_stats_t stats;
    gkx_webhook_stats (webhook, &stats);
    gkx_webhook_stop (&webhook);
    ck_assert_uint_eq (stats.delivered, 0);
    ck_assert_uint_ge (stats.failed, 1);
    ck_assert_uint_eq (d.attempts, 1);
    ck_assert_int_eq (d.last_status, 0);
    ck_assert_msg (d.last_error[0] != '\0', "no error recorded");
    ck_assert_uint_eq (d.delivered_ms, 0);
    ck_assert_uint_ge (d.next_attempt_ms, d.last_attempt_ms + 1000);
    ck_assert_uint_le (d.next_attempt_ms, d.last_attempt_ms + 1100);
    s_pair_close (&pair);
}
END_TEST

int
main (void)
{
    if (sodium_init () < 0) {
        return 99;
    }
    Suite *s = suite_create ("webhook");
    TCase *tc = tcase_create ("core");
    tcase_add_test (tc, test_sign_spec_example);
    tcase_add_loop_test (tc, test_sign_vectors, 0, (int) S_COUNT (s_vectors));
    tcase_add_test (tc, test_sign_each_part_counts);
    tcase_add_test (tc, test_sign_buffer_too_small);
    tcase_add_test (tc, test_secret_sizes);
    tcase_add_loop_test (tc, test_secret_rejections, 0, (int) S_COUNT (s_bad_secrets));
    tcase_add_loop_test (tc, test_backoff, 0, (int) S_COUNT (s_backoffs));
    tcase_add_test (tc, test_start_refusals);
    tcase_add_test (tc, test_start_kick_stop);
    tcase_add_test (tc, test_replay_without_webhook);
    suite_add_tcase (s, tc);
    TCase *worker = tcase_create ("worker");
    tcase_set_timeout (worker, 30);
    tcase_add_test (worker, test_worker_delivers_and_retries);
    tcase_add_test (worker, test_worker_list_and_replay);
    tcase_add_test (worker, test_worker_stops_mid_request);
    tcase_add_test (worker, test_worker_records_transport_errors);
    suite_add_tcase (s, worker);
    return gkx_test_run (s);
}
