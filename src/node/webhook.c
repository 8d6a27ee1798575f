/*  webhook - a publisher node's deliveries to its own system (Standard Webhooks).
    Part of gokart-exchange; MIT licence.

    The store queues a delivery for each advertiser conversion and status
    entry it ingests (include/gkx/store.h); this module sends them. Its
    thread repeats one round: on the loop (gkx_node_call), fetch up to
    GKX_WEBHOOK_BATCH_MAX due deliveries, oldest first, and build each one's
    body from the store; off the loop, POST them one by one with libcurl;
    after each, on the loop again, record the attempt (delivered, or due
    again after the back-off). Then it sleeps until the earliest retry it
    knows of, a kick (new deliveries) or S_IDLE_MS, whichever comes first:
    the idle check finds retries scheduled before a restart. A delivery
    that keeps failing never holds up the others: once attempted it is not
    due again for a while, so the next rounds take the later ones.

    Bodies are built again at each attempt from what the store holds then,
    so a retried conversion.created shows the conversion's status as of the
    attempt; each webhook-id (partnership short id "-" entry seq) names one
    entry, which is what receivers deduplicate on.

    The request runs on a curl multi handle polled in steps of at most
    S_STEP_MS, and gkx_webhook_stop wakes that poll (curl_multi_wakeup), so
    stopping never waits for a slow receiver. A request abandoned that way
    is not recorded: the delivery stays due and is sent again (at least
    once, never lost).

    The first functions (secret, signature, back-off) are pure; the unit
    test calls them without a node.
*/
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include <gkx/alloc.h>
#include <gkx/api.h>
#include <gkx/calendar.h>
#include <gkx/conversion.h>
#include <gkx/hlc.h>
#include <gkx/kind.h>
#include <gkx/store.h>
#include <gkx/webhook.h>

#include <assert.h>
#include <curl/curl.h>
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#ifndef PACKAGE_VERSION
#define PACKAGE_VERSION "unknown"
#endif

/* What each request's User-Agent says. */
#define S_USER_AGENT "gkxd/" PACKAGE_VERSION
/* Longest base64 text of a secret: that of GKX_WEBHOOK_KEY_MAX_BYTES. */
#define S_SECRET_TEXT_MAX                                                                          \
    (sodium_base64_ENCODED_LEN (GKX_WEBHOOK_KEY_MAX_BYTES, sodium_base64_VARIANT_ORIGINAL) - 1)
/* "v1," before the base64 of a signature. */
#define S_SIGNATURE_PREFIX "v1,"
/* A webhook-id: short id, "-", a decimal seq, NUL. */
#define S_MSG_ID_BYTES (GKX_STORE_SHORT_ID_CHARS + 1 + 20 + 1)
/* One header line: the longest name, ": ", a signature. */
#define S_HEADER_BYTES 128
/* Buffer for "YYYY-MM-DDTHH:MM:SS.mmmZ" with room to spare. */
#define S_TIME_TEXT_BYTES 40
/* How long a connection may take to open (ms); the whole request is
   bounded by GKX_WEBHOOK_TIMEOUT_MS. */
#define S_CONNECT_TIMEOUT_MS 5000
/* Longest wait of the request poll between checks of the stop flag (ms). */
#define S_STEP_MS 250
/* Longest sleep between two looks at the store (ms). */
#define S_IDLE_MS 1000
/* Sleep while the node's loop is not running yet (ms). */
#define S_LOOP_WAIT_MS 100
/* The part of the back-off added at random: one in S_JITTER_DIVISOR. */
#define S_JITTER_DIVISOR 10
/* Units of time. */
#define S_SECOND_MS 1000
#define S_MS_NS 1000000L
#define S_SECOND_NS 1000000000L
#define S_MINUTE_SECONDS 60
#define S_HOUR_SECONDS 3600
#define S_DAY_SECONDS 86400
/* The "." timestamp "." between the parts of a signed message: 20 digits. */
#define S_STAMP_BYTES 24

/* What a delivery's entry is about. */
typedef struct {
    int kind;                                    /* GKX_KIND_CONVERSION or _STATUS */
    const char *type;                            /* GKX_WEBHOOK_TYPE_* */
    uint8_t conversion[GKX_CONVERSION_ID_BYTES]; /* the conversion's id */
    gkx_conversion_change_t change;              /* the change, for the status type */
    uint64_t hlc;                                /* the entry's clock */
} s_event_t;

/* One delivery of a round: fetched, built, attempted, recorded. */
typedef struct {
    gkx_delivery_t delivery;      /* as the store held it when fetched */
    char msg_id[S_MSG_ID_BYTES];  /* its webhook-id */
    char *body;                   /* the JSON body (jansson's), NULL when not built */
    size_t body_len;              /* bytes of body */
    char error[GKX_ERRBUF_BYTES]; /* the attempt's error, "" when it got a 2xx */
    int status;                   /* the attempt's HTTP status, 0 for no answer */
    uint64_t done_ms;             /* when the attempt ended */
    uint64_t next_ms;             /* when it is due again as recorded, 0 for never */
    int ran;                      /* the loop ran the record call */
} s_item_t;

/* A round's deliveries, filled on the loop. */
typedef struct {
    uint64_t now_ms;                       /* the time they are due at */
    s_item_t items[GKX_WEBHOOK_BATCH_MAX]; /* the due deliveries, oldest first */
    size_t count;                          /* items used */
    int ran;                               /* the loop ran the fetch */
} s_batch_t;

/* Deliveries copied out of the store for a listing. */
typedef struct {
    gkx_delivery_t *items; /* newest first */
    size_t count;          /* items used */
} s_list_t;

struct gkx_webhook {
    gkx_node_t *node;     /* whose store holds the deliveries */
    char *url;            /* where to POST */
    uint8_t *key;         /* the secret key, sodium_malloc'd, read-only */
    size_t key_len;       /* bytes of key */
    int curl_ready;       /* curl_global_init succeeded */
    CURLM *multi;         /* runs the request; stop wakes its poll */
    CURL *curl;           /* the one request, reused so connections stay open */
    pthread_t thread;     /* the delivery thread */
    int thread_started;   /* thread is running and must be joined */
    pthread_mutex_t lock; /* guards kicked and the writes of stopping */
    pthread_cond_t wake;  /* signals a kick or the stop (CLOCK_MONOTONIC) */
    int kicked;           /* deliveries were queued since the last look */
    atomic_int stopping;  /* gkx_webhook_stop was called */
    int failing;          /* the last attempt failed (thread only, for logs) */
    atomic_uint_fast64_t delivered; /* attempts answered 2xx since start */
    atomic_uint_fast64_t failed;    /* attempts that failed since start */
};

/* Logs one line to stderr as gkxd does; never given the secret or the url,
   which may carry credentials. */
__attribute__ ((format (printf, 2, 3))) static void
s_log (const char *level, const char *fmt, ...)
{
    char line[1024];
    va_list args;
    va_start (args, fmt);
    vsnprintf (line, sizeof line, fmt, args);
    va_end (args);
    fprintf (stderr, "gkxd: %s: webhook: %s\n", level, line);
}

int
gkx_webhook_secret_parse (uint8_t key[GKX_WEBHOOK_KEY_MAX_BYTES], size_t *len_p, const char *text,
                          char *errbuf)
{
    assert (key);
    assert (len_p);
    assert (text);
    size_t prefix_len = strlen (GKX_WEBHOOK_SECRET_PREFIX);
    if (strncmp (text, GKX_WEBHOOK_SECRET_PREFIX, prefix_len) != 0) {
        return gkx_fail (errbuf, GKX_EINVAL, "webhook.secret: must start with \"%s\"",
                         GKX_WEBHOOK_SECRET_PREFIX);
    }
    const char *base64 = text + prefix_len;
    size_t base64_len = strlen (base64);
    if (base64_len > S_SECRET_TEXT_MAX) {
        return gkx_fail (errbuf, GKX_EINVAL,
                         "webhook.secret: longer than the base64 of %d bytes (%zu characters "
                         "after \"%s\", at most %zu)",
                         GKX_WEBHOOK_KEY_MAX_BYTES, base64_len, GKX_WEBHOOK_SECRET_PREFIX,
                         (size_t) S_SECRET_TEXT_MAX);
    }
    /* Room for a little more than the largest key, so that a short text
       that decodes to too many bytes is told apart from bad base64. */
    uint8_t bin[GKX_WEBHOOK_KEY_MAX_BYTES + 3];
    size_t len = 0;
    int rc = GKX_OK;
    if (sodium_base642bin (bin, sizeof bin, base64, base64_len, NULL, &len, NULL,
                           sodium_base64_VARIANT_ORIGINAL) != 0) {
        rc = gkx_fail (errbuf, GKX_EINVAL,
                       "webhook.secret: what follows \"%s\" is not standard base64 "
                       "(A-Z a-z 0-9 + /, with = padding)",
                       GKX_WEBHOOK_SECRET_PREFIX);
    }
    else if (len < GKX_WEBHOOK_KEY_MIN_BYTES || len > GKX_WEBHOOK_KEY_MAX_BYTES) {
        rc = gkx_fail (errbuf, GKX_EINVAL, "webhook.secret: decodes to %zu bytes, not %d to %d",
                       len, GKX_WEBHOOK_KEY_MIN_BYTES, GKX_WEBHOOK_KEY_MAX_BYTES);
    }
    else {
        memcpy (key, bin, len);
        *len_p = len;
    }
    sodium_memzero (bin, sizeof bin);
    return rc;
}

int
gkx_webhook_sign (char *out, size_t out_size, const uint8_t *key, size_t key_len,
                  const char *msg_id, uint64_t timestamp, const char *body, size_t body_len)
{
    assert (out);
    assert (key || key_len == 0);
    assert (msg_id);
    assert (body || body_len == 0);
    if (out_size < GKX_WEBHOOK_SIGNATURE_BYTES) {
        return GKX_ETOOBIG;
    }
    char stamp[S_STAMP_BYTES];
    int stamp_len = snprintf (stamp, sizeof stamp, ".%" PRIu64 ".", timestamp);
    crypto_auth_hmacsha256_state state;
    uint8_t mac[crypto_auth_hmacsha256_BYTES];
    crypto_auth_hmacsha256_init (&state, key, key_len);
    crypto_auth_hmacsha256_update (&state, (const uint8_t *) msg_id, strlen (msg_id));
    crypto_auth_hmacsha256_update (&state, (const uint8_t *) stamp, (size_t) stamp_len);
    crypto_auth_hmacsha256_update (&state, (const uint8_t *) body, body_len);
    crypto_auth_hmacsha256_final (&state, mac);
    size_t prefix_len = strlen (S_SIGNATURE_PREFIX);
    memcpy (out, S_SIGNATURE_PREFIX, prefix_len);
    sodium_bin2base64 (out + prefix_len, out_size - prefix_len, mac, sizeof mac,
                       sodium_base64_VARIANT_ORIGINAL);
    /* The state holds the key's inner and outer pads. */
    sodium_memzero (&state, sizeof state);
    return GKX_OK;
}

uint64_t
gkx_webhook_backoff_ms (uint32_t attempts)
{
    uint64_t delay = GKX_WEBHOOK_BACKOFF_MIN_MS;
    for (uint32_t i = 1; i < attempts && delay < GKX_WEBHOOK_BACKOFF_MAX_MS; i++) {
        delay *= 2;
    }
    return delay < GKX_WEBHOOK_BACKOFF_MAX_MS ? delay : GKX_WEBHOOK_BACKOFF_MAX_MS;
}

/* Milliseconds since the epoch. */
static uint64_t
s_now_ms (void)
{
    struct timespec ts;
    clock_gettime (CLOCK_REALTIME, &ts);
    return (uint64_t) ts.tv_sec * S_SECOND_MS + (uint64_t) ts.tv_nsec / S_MS_NS;
}

/* Writes milliseconds since the epoch as "YYYY-MM-DDTHH:MM:SS.mmmZ". */
static void
s_time_text (char out[S_TIME_TEXT_BYTES], uint64_t ms)
{
    uint64_t secs = ms / S_SECOND_MS;
    int64_t y;
    unsigned m, d;
    gkx_calendar_civil_from_days ((int64_t) (secs / S_DAY_SECONDS), &y, &m, &d);
    uint64_t rem = secs % S_DAY_SECONDS;
    snprintf (out, S_TIME_TEXT_BYTES, "%04" PRId64 "-%02u-%02uT%02u:%02u:%02u.%03uZ", y, m, d,
              (unsigned) (rem / S_HOUR_SECONDS), (unsigned) (rem % S_HOUR_SECONDS / S_MINUTE_SECONDS),
              (unsigned) (rem % S_MINUTE_SECONDS), (unsigned) (ms % S_SECOND_MS));
}

/* A JSON time for milliseconds since the epoch, or null for 0. */
static json_t *
s_time_json (uint64_t ms)
{
    char text[S_TIME_TEXT_BYTES];
    if (ms == 0) {
        return json_null ();
    }
    s_time_text (text, ms);
    return json_string (text);
}

/* The lowercase hex of len bytes as a new JSON string. */
static json_t *
s_hex_json (const uint8_t *bytes, size_t len)
{
    char hex[2 * GKX_HASH_BYTES + 1];
    assert (len <= GKX_HASH_BYTES);
    sodium_bin2hex (hex, sizeof hex, bytes, len);
    return json_string (hex);
}

/* A JSON string of text, or null when text is empty (or not UTF-8). */
static json_t *
s_text_json (const char *text)
{
    json_t *json = text && text[0] ? json_string (text) : NULL;
    return json ? json : json_null ();
}

/* Copies text into out (size bytes) for a record and a log: bytes outside
   printable ASCII become '?'. */
static void
s_printable (char *out, size_t size, const char *text)
{
    size_t i = 0;
    for (; text[i] && i < size - 1; i++) {
        unsigned char c = (unsigned char) text[i];
        out[i] = c < 0x20 || c >= 0x7f ? '?' : (char) c;
    }
    out[i] = '\0';
}

/* Reads the advertiser entry of delivery d and what it is about. Returns
   GKX_OK, or the reason with errbuf. */
static int
s_event_read (s_event_t *event, gkx_store_t *store, const gkx_delivery_t *d, char *errbuf)
{
    gkx_entry_t *entry = NULL;
    int rc = gkx_store_get (store, d->pid, GKX_ROLE_ADVERTISER, d->seq, &entry);
    if (rc != GKX_OK) {
        return gkx_fail (errbuf, rc, "payload: entry %" PRIu64 " of the advertiser's chain: %s",
                         d->seq, gkx_strerror (rc));
    }
    memset (event, 0, sizeof *event);
    event->hlc = gkx_entry_hlc (entry);
    int kind = gkx_entry_kind (entry);
    event->kind = kind;
    if (kind == GKX_KIND_CONVERSION) {
        event->type = GKX_WEBHOOK_TYPE_CREATED;
        memcpy (event->conversion, gkx_entry_hash (entry), GKX_CONVERSION_ID_BYTES);
    }
    else if (kind == GKX_KIND_CONVERSION_STATUS) {
        size_t len;
        const uint8_t *body = gkx_entry_body (entry, &len);
        char reason[GKX_ERRBUF_BYTES] = "";
        rc = gkx_conversion_change_decode (&event->change, body, len, reason);
        if (rc == GKX_OK) {
            event->type = GKX_WEBHOOK_TYPE_STATUS;
            memcpy (event->conversion, event->change.conversion, GKX_CONVERSION_ID_BYTES);
        }
        else {
            rc = gkx_fail (errbuf, rc, "payload: entry %" PRIu64 ": %s", d->seq, reason);
        }
    }
    else {
        const char *name = gkx_kind_name (kind);
        rc = gkx_fail (errbuf, GKX_EKIND,
                       "payload: entry %" PRIu64 " is a%s %s entry, not a conversion's", d->seq,
                       name && name[0] == 'a' ? "n" : "", name ? name : "unknown");
    }
    gkx_entry_destroy (&entry);
    return rc;
}

/* On the loop: builds item's webhook-id and body. A delivery whose body
   cannot be built keeps body NULL and the reason in error; its attempt
   fails with that reason, and it is tried again like any other. */
static void
s_payload (gkx_node_t *node, s_item_t *item)
{
    gkx_store_t *store = gkx_node_store (node);
    const gkx_delivery_t *d = &item->delivery;
    char short_id[GKX_STORE_SHORT_ID_CHARS + 1];
    gkx_store_short_id (short_id, d->pid);
    snprintf (item->msg_id, sizeof item->msg_id, "%s-%" PRIu64, short_id, d->seq);
    s_event_t event;
    if (s_event_read (&event, store, d, item->error) != GKX_OK) {
        return;
    }
    json_t *data = gkx_api_conversion_json (node, d->pid, event.conversion);
    if (!data) {
        char hex[2 * GKX_CONVERSION_ID_BYTES + 1];
        sodium_bin2hex (hex, sizeof hex, event.conversion, sizeof event.conversion);
        snprintf (item->error, sizeof item->error,
                  "payload: conversion %s of entry %" PRIu64 " is not in the store", hex, d->seq);
        return;
    }
    if (event.kind == GKX_KIND_CONVERSION_STATUS) {
        json_t *change = json_object ();
        json_object_set_new (change, "status",
                             s_text_json (gkx_conversion_status_name (event.change.status)));
        json_object_set_new (change, "reason", s_text_json (event.change.reason));
        json_object_set_new (data, "change", change);
        json_object_set_new (data, "conversion",
                             s_hex_json (event.conversion, sizeof event.conversion));
    }
    /* "seq" is the delivered entry's: the status entry's for a change. */
    json_object_set_new (data, "partnership", s_hex_json (d->pid, GKX_ID_BYTES));
    json_object_set_new (data, "seq", json_integer ((json_int_t) d->seq));
    char stamp[GKX_HLC_TEXT_BYTES];
    gkx_hlc_format (stamp, sizeof stamp, event.hlc);
    json_t *body = json_object ();
    json_object_set_new (body, "type", json_string (event.type));
    json_object_set_new (body, "timestamp", json_string (stamp));
    json_object_set_new (body, "data", data);
    item->body = json_dumps (body, JSON_COMPACT | JSON_SORT_KEYS);
    json_decref (body);
    if (!item->body) {
        snprintf (item->error, sizeof item->error, "payload: the body cannot be encoded as JSON");
        return;
    }
    item->body_len = strlen (item->body);
}

/* gkx_store_deliveries_due callback: copies a due delivery into the batch
   (the store gives at most GKX_WEBHOOK_BATCH_MAX; more would be ignored). */
static int
s_collect (const gkx_delivery_t *d, void *arg)
{
    s_batch_t *batch = arg;
    if (batch->count < GKX_WEBHOOK_BATCH_MAX) {
        batch->items[batch->count++].delivery = *d;
    }
    return 0;
}

/* On the loop: fetches the due deliveries, then builds their bodies (after
   the walk, so that no read is made inside another). */
static int
s_fetch (gkx_node_t *node, void *arg)
{
    s_batch_t *batch = arg;
    batch->ran = 1;
    int rc = gkx_store_deliveries_due (gkx_node_store (node), batch->now_ms, GKX_WEBHOOK_BATCH_MAX,
                                       s_collect, batch);
    for (size_t i = 0; i < batch->count; i++) {
        s_payload (node, &batch->items[i]);
    }
    return rc;
}

/* On the loop: records item's attempt on its delivery as the store holds it
   now. A replay that came while the request was in flight is kept: the
   delivery stays due, and goes again. */
static int
s_record (gkx_node_t *node, void *arg)
{
    s_item_t *item = arg;
    item->ran = 1;
    gkx_store_t *store = gkx_node_store (node);
    gkx_delivery_t d;
    int rc = gkx_store_delivery_get (store, item->delivery.id, &d);
    if (rc != GKX_OK) {
        return rc;
    }
    int replayed = d.next_attempt_ms != item->delivery.next_attempt_ms;
    int delivered = item->status >= 200 && item->status <= 299 && !item->error[0];
    if (d.attempts < UINT32_MAX) {
        d.attempts++;
    }
    d.last_status = item->status;
    snprintf (d.last_error, sizeof d.last_error, "%s", item->error);
    d.last_attempt_ms = item->done_ms;
    if (delivered && d.delivered_ms == 0) {
        d.delivered_ms = item->done_ms;
    }
    if (!replayed) {
        uint64_t delay = gkx_webhook_backoff_ms (d.attempts);
        uint64_t jitter = randombytes_uniform ((uint32_t) (delay / S_JITTER_DIVISOR) + 1);
        d.next_attempt_ms = delivered ? 0 : item->done_ms + delay + jitter;
    }
    item->next_ms = d.next_attempt_ms;
    char errbuf[GKX_ERRBUF_BYTES] = "";
    rc = gkx_store_delivery_put (store, &d, errbuf);
    if (rc != GKX_OK) {
        s_log ("warning", "delivery %" PRIu64 ": attempt not recorded: %s", d.id, errbuf);
    }
    return rc;
}

/* libcurl write callback: the receiver's answer is not kept. */
static size_t
s_discard (char *data, size_t size, size_t count, void *user)
{
    (void) data;
    (void) user;
    return size * count;
}

/* POSTs item's body, signed now; sets its status, error and done_ms.
   Returns 0, or 1 when stop abandoned the request (nothing is set). */
static int
s_post (gkx_webhook_t *self, s_item_t *item)
{
    char signature[GKX_WEBHOOK_SIGNATURE_BYTES];
    char id_header[S_HEADER_BYTES];
    char time_header[S_HEADER_BYTES];
    char signature_header[S_HEADER_BYTES];
    char curl_error[CURL_ERROR_SIZE] = "";
    uint64_t timestamp = s_now_ms () / S_SECOND_MS;
    int rc = gkx_webhook_sign (signature, sizeof signature, self->key, self->key_len, item->msg_id,
                               timestamp, item->body, item->body_len);
    assert (rc == GKX_OK);
    snprintf (id_header, sizeof id_header, "webhook-id: %s", item->msg_id);
    snprintf (time_header, sizeof time_header, "webhook-timestamp: %" PRIu64, timestamp);
    snprintf (signature_header, sizeof signature_header, "webhook-signature: %s", signature);
    struct curl_slist *headers = NULL;
    const char *lines[] = {id_header, time_header, signature_header,
                           "Content-Type: application/json",
                           /* No "Expect: 100-continue" round trip for large bodies. */
                           "Expect:"};
    for (size_t i = 0; i < sizeof lines / sizeof lines[0]; i++) {
        struct curl_slist *more = curl_slist_append (headers, lines[i]);
        if (!more) {
            curl_slist_free_all (headers);
            snprintf (item->error, sizeof item->error, "out of memory for the headers");
            item->done_ms = s_now_ms ();
            return 0;
        }
        headers = more;
    }
    CURL *curl = self->curl;
    curl_easy_reset (curl);
    curl_easy_setopt (curl, CURLOPT_URL, self->url);
    curl_easy_setopt (curl, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt (curl, CURLOPT_POSTFIELDS, item->body);
    curl_easy_setopt (curl, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t) item->body_len);
    curl_easy_setopt (curl, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt (curl, CURLOPT_TIMEOUT_MS, (long) GKX_WEBHOOK_TIMEOUT_MS);
    curl_easy_setopt (curl, CURLOPT_CONNECTTIMEOUT_MS, (long) S_CONNECT_TIMEOUT_MS);
    curl_easy_setopt (curl, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt (curl, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt (curl, CURLOPT_USERAGENT, S_USER_AGENT);
    curl_easy_setopt (curl, CURLOPT_ERRORBUFFER, curl_error);
    curl_easy_setopt (curl, CURLOPT_WRITEFUNCTION, s_discard);
    curl_multi_add_handle (self->multi, curl);
    int running = 1;
    int abandoned = 0;
    CURLcode code = CURLE_OK;
    CURLMcode mcode = CURLM_OK;
    while (running) {
        mcode = curl_multi_perform (self->multi, &running);
        if (mcode != CURLM_OK || !running) {
            break;
        }
        if (atomic_load (&self->stopping)) {
            abandoned = 1;
            break;
        }
        mcode = curl_multi_poll (self->multi, NULL, 0, S_STEP_MS, NULL);
        if (mcode != CURLM_OK) {
            break;
        }
    }
    if (!running && mcode == CURLM_OK) {
        int left;
        CURLMsg *message;
        while ((message = curl_multi_info_read (self->multi, &left)) != NULL) {
            if (message->msg == CURLMSG_DONE) {
                code = message->data.result;
            }
        }
    }
    curl_multi_remove_handle (self->multi, curl);
    curl_slist_free_all (headers);
    if (abandoned) {
        return 1;
    }
    item->done_ms = s_now_ms ();
    long status = 0;
    if (mcode != CURLM_OK) {
        s_printable (item->error, sizeof item->error, curl_multi_strerror (mcode));
    }
    else if (code != CURLE_OK) {
        s_printable (item->error, sizeof item->error,
                     curl_error[0] ? curl_error : curl_easy_strerror (code));
    }
    else {
        curl_easy_getinfo (curl, CURLINFO_RESPONSE_CODE, &status);
        item->status = (int) status;
        if (status < 200 || status > 299) {
            snprintf (item->error, sizeof item->error, "HTTP %ld", status);
        }
    }
    return 0;
}

/* Sleeps up to wait_ms, less when kicked or stopped; clears the kick. */
static void
s_wait (gkx_webhook_t *self, uint64_t wait_ms)
{
    struct timespec deadline;
    clock_gettime (CLOCK_MONOTONIC, &deadline);
    deadline.tv_sec += (time_t) (wait_ms / S_SECOND_MS);
    deadline.tv_nsec += (long) (wait_ms % S_SECOND_MS) * S_MS_NS;
    if (deadline.tv_nsec >= S_SECOND_NS) {
        deadline.tv_sec++;
        deadline.tv_nsec -= S_SECOND_NS;
    }
    pthread_mutex_lock (&self->lock);
    while (wait_ms > 0 && !self->kicked && !atomic_load (&self->stopping)) {
        if (pthread_cond_timedwait (&self->wake, &self->lock, &deadline) == ETIMEDOUT) {
            break;
        }
    }
    self->kicked = 0;
    pthread_mutex_unlock (&self->lock);
}

/* Attempts and records one item; returns the time it is due again (0 for
   never), or UINT64_MAX when it was not recorded. */
static uint64_t
s_deliver (gkx_webhook_t *self, s_item_t *item)
{
    if (item->body) {
        if (s_post (self, item) != 0) {
            return UINT64_MAX;
        }
    }
    else {
        item->done_ms = s_now_ms ();
    }
    if (item->error[0] && !self->failing) {
        s_log ("warning", "delivery %" PRIu64 " (webhook-id %s) failed: %s; retrying with back-off",
               item->delivery.id, item->msg_id, item->error);
    }
    else if (!item->error[0] && self->failing) {
        s_log ("info", "delivery %" PRIu64 " (webhook-id %s) succeeded; deliveries resume",
               item->delivery.id, item->msg_id);
    }
    self->failing = item->error[0] != '\0';
    atomic_fetch_add (self->failing ? &self->failed : &self->delivered, 1);
    int rc = gkx_node_call (self->node, s_record, item);
    return item->ran && rc == GKX_OK ? item->next_ms : UINT64_MAX;
}

/* The delivery thread: rounds of fetch, POST and record until stopped. */
static void *
s_run (void *arg)
{
    gkx_webhook_t *self = arg;
    s_batch_t *batch = gkx_zalloc (sizeof *batch);
    while (!atomic_load (&self->stopping)) {
        memset (batch, 0, sizeof *batch);
        batch->now_ms = s_now_ms ();
        int rc = gkx_node_call (self->node, s_fetch, batch);
        uint64_t wait_ms = S_IDLE_MS;
        if (!batch->ran) {
            /* The loop does not run yet (or any more). */
            wait_ms = S_LOOP_WAIT_MS;
        }
        else if (rc != GKX_OK) {
            s_log ("warning", "cannot read the due deliveries: %s", gkx_strerror (rc));
        }
        uint64_t earliest = UINT64_MAX;
        int unrecorded = 0;
        for (size_t i = 0; i < batch->count && !atomic_load (&self->stopping); i++) {
            uint64_t next = s_deliver (self, &batch->items[i]);
            unrecorded |= next == UINT64_MAX;
            if (next != 0 && next < earliest) {
                earliest = next;
            }
        }
        uint64_t now = s_now_ms ();
        if (batch->count == GKX_WEBHOOK_BATCH_MAX && !unrecorded) {
            /* A full round: more may be due already. */
            wait_ms = 0;
        }
        else if (!unrecorded && earliest != UINT64_MAX) {
            uint64_t until = earliest > now ? earliest - now : 0;
            wait_ms = until < wait_ms ? until : wait_ms;
        }
        for (size_t i = 0; i < batch->count; i++) {
            free (batch->items[i].body);
        }
        s_wait (self, wait_ms);
    }
    gkx_free (batch);
    return NULL;
}

/* Checks a webhook url: an http:// or https:// URL with a host. Messages
   do not quote it (it may hold credentials). */
static int
s_url_check (const char *url, char *errbuf)
{
    CURLU *parsed = curl_url ();
    char *scheme = NULL;
    char *host = NULL;
    int rc = GKX_OK;
    if (!parsed) {
        return gkx_fail (errbuf, GKX_EIO, "webhook.url: libcurl cannot parse URLs");
    }
    CURLUcode code = curl_url_set (parsed, CURLUPART_URL, url, CURLU_NON_SUPPORT_SCHEME);
    if (code != CURLUE_OK) {
        rc = gkx_fail (errbuf, GKX_EINVAL, "webhook.url: not a URL (%s)", curl_url_strerror (code));
    }
    else if (curl_url_get (parsed, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
             (strcmp (scheme, "http") != 0 && strcmp (scheme, "https") != 0)) {
        rc = gkx_fail (errbuf, GKX_EINVAL, "webhook.url: must start with http:// or https://");
    }
    else if (curl_url_get (parsed, CURLUPART_HOST, &host, 0) != CURLUE_OK || !host[0]) {
        rc = gkx_fail (errbuf, GKX_EINVAL, "webhook.url: names no host");
    }
    curl_free (scheme);
    curl_free (host);
    curl_url_cleanup (parsed);
    return rc;
}

/* Stops the thread if it runs and frees everything. */
static void
s_destroy (gkx_webhook_t **self_p)
{
    gkx_webhook_t *self = *self_p;
    if (self->thread_started) {
        pthread_mutex_lock (&self->lock);
        atomic_store (&self->stopping, 1);
        pthread_cond_signal (&self->wake);
        pthread_mutex_unlock (&self->lock);
        /* Ends a poll in progress at once; else the next one returns at once. */
        curl_multi_wakeup (self->multi);
        pthread_join (self->thread, NULL);
    }
    if (self->multi) {
        curl_multi_cleanup (self->multi);
    }
    if (self->curl) {
        curl_easy_cleanup (self->curl);
    }
    if (self->curl_ready) {
        curl_global_cleanup ();
    }
    if (self->key) {
        sodium_free (self->key);
    }
    gkx_free (self->url);
    pthread_cond_destroy (&self->wake);
    pthread_mutex_destroy (&self->lock);
    gkx_free (self);
    *self_p = NULL;
}

int
gkx_webhook_start (gkx_webhook_t **self_p, gkx_node_t *node, const char *url, const char *secret,
                   char *errbuf)
{
    assert (self_p);
    assert (node);
    assert (url);
    assert (secret);
    if (sodium_init () < 0) {
        return gkx_fail (errbuf, GKX_EIO, "webhook: libsodium failed to initialise");
    }
    if (curl_global_init (CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        return gkx_fail (errbuf, GKX_EIO, "webhook: libcurl failed to initialise");
    }
    gkx_webhook_t *self = gkx_zalloc (sizeof *self);
    self->curl_ready = 1;
    self->node = node;
    pthread_mutex_init (&self->lock, NULL);
    pthread_condattr_t attr;
    pthread_condattr_init (&attr);
    pthread_condattr_setclock (&attr, CLOCK_MONOTONIC);
    pthread_cond_init (&self->wake, &attr);
    pthread_condattr_destroy (&attr);
    uint8_t key[GKX_WEBHOOK_KEY_MAX_BYTES];
    size_t key_len = 0;
    int rc = s_url_check (url, errbuf);
    if (rc == GKX_OK) {
        rc = gkx_webhook_secret_parse (key, &key_len, secret, errbuf);
    }
    if (rc == GKX_OK) {
        self->key = sodium_malloc (key_len);
        if (self->key) {
            memcpy (self->key, key, key_len);
            self->key_len = key_len;
            sodium_mprotect_readonly (self->key);
        }
        else {
            rc = gkx_fail (errbuf, GKX_EIO, "webhook: no guarded memory for the secret");
        }
    }
    sodium_memzero (key, sizeof key);
    if (rc != GKX_OK) {
        goto cleanup;
    }
    self->url = gkx_strdup (url);
    self->multi = curl_multi_init ();
    self->curl = curl_easy_init ();
    if (!self->multi || !self->curl) {
        rc = gkx_fail (errbuf, GKX_EIO, "webhook: libcurl cannot make a request handle");
        goto cleanup;
    }
    int error = pthread_create (&self->thread, NULL, s_run, self);
    if (error != 0) {
        rc = gkx_fail (errbuf, GKX_EIO, "webhook: cannot start the delivery thread: %s",
                       strerror (error));
        goto cleanup;
    }
    self->thread_started = 1;
    *self_p = self;
    return GKX_OK;
cleanup:
    s_destroy (&self);
    return rc;
}

void
gkx_webhook_kick (gkx_webhook_t *self)
{
    assert (self);
    pthread_mutex_lock (&self->lock);
    self->kicked = 1;
    pthread_cond_signal (&self->wake);
    pthread_mutex_unlock (&self->lock);
}

void
gkx_webhook_stats (gkx_webhook_t *self, gkx_webhook_stats_t *out)
{
    assert (self && out);
    out->delivered = atomic_load (&self->delivered);
    out->failed = atomic_load (&self->failed);
}

void
gkx_webhook_stop (gkx_webhook_t **self_p)
{
    if (!self_p || !*self_p) {
        return;
    }
    s_destroy (self_p);
}

/* The D record of a delivery (docs/api.md); event_type and conversion are
   null when its entry cannot be read. */
static json_t *
s_delivery_json (gkx_store_t *store, const gkx_delivery_t *d)
{
    s_event_t event;
    char errbuf[GKX_ERRBUF_BYTES];
    int known = s_event_read (&event, store, d, errbuf) == GKX_OK;
    json_t *json = json_object ();
    json_object_set_new (json, "id", json_integer ((json_int_t) d->id));
    json_object_set_new (json, "partnership", s_hex_json (d->pid, GKX_ID_BYTES));
    json_object_set_new (json, "seq", json_integer ((json_int_t) d->seq));
    json_object_set_new (json, "event_type", known ? json_string (event.type) : json_null ());
    json_object_set_new (json, "conversion",
                         known ? s_hex_json (event.conversion, sizeof event.conversion)
                               : json_null ());
    json_object_set_new (json, "attempts", json_integer ((json_int_t) d->attempts));
    json_object_set_new (json, "last_status",
                         d->last_status ? json_integer (d->last_status) : json_null ());
    json_object_set_new (json, "last_error", s_text_json (d->last_error));
    json_object_set_new (json, "created", s_time_json (d->created_ms));
    json_object_set_new (json, "last_attempt", s_time_json (d->last_attempt_ms));
    json_object_set_new (json, "next_attempt", s_time_json (d->next_attempt_ms));
    json_object_set_new (json, "delivered", s_time_json (d->delivered_ms));
    return json;
}

/* gkx_store_deliveries callback: copies a delivery into the list. */
static int
s_list_add (const gkx_delivery_t *d, void *arg)
{
    s_list_t *list = arg;
    list->items = gkx_realloc (list->items, (list->count + 1) * sizeof *list->items);
    list->items[list->count++] = *d;
    return 0;
}

json_t *
gkx_webhook_deliveries_json (gkx_node_t *node, size_t limit)
{
    assert (node);
    gkx_store_t *store = gkx_node_store (node);
    s_list_t list = {NULL, 0};
    int rc = gkx_store_deliveries (store, limit, s_list_add, &list);
    json_t *deliveries = NULL;
    if (rc == GKX_OK) {
        deliveries = json_array ();
        for (size_t i = 0; i < list.count; i++) {
            json_array_append_new (deliveries, s_delivery_json (store, &list.items[i]));
        }
    }
    gkx_free (list.items);
    return deliveries ? json_pack ("{s:o}", "deliveries", deliveries) : NULL;
}

int
gkx_webhook_replay (gkx_node_t *node, gkx_webhook_t *self, uint64_t id, json_t **delivery_p,
                    char *errbuf)
{
    assert (node);
    assert (delivery_p);
    if (!self) {
        return gkx_fail (errbuf, GKX_EINVAL,
                         "this node has no [webhook] url: nothing would send delivery %" PRIu64,
                         id);
    }
    gkx_store_t *store = gkx_node_store (node);
    gkx_delivery_t d;
    int rc = gkx_store_delivery_get (store, id, &d);
    if (rc == GKX_ENOTFOUND) {
        return gkx_fail (errbuf, rc, "no delivery has id %" PRIu64, id);
    }
    if (rc != GKX_OK) {
        return gkx_fail (errbuf, rc, "delivery %" PRIu64 ": %s", id, gkx_strerror (rc));
    }
    /* Due now, delivered or not; "delivered" keeps the first delivery's time. */
    d.next_attempt_ms = s_now_ms ();
    rc = gkx_store_delivery_put (store, &d, errbuf);
    if (rc != GKX_OK) {
        return rc;
    }
    *delivery_p = s_delivery_json (store, &d);
    gkx_webhook_kick (self);
    return GKX_OK;
}
