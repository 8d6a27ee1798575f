/*  intake - the advertiser node's postback endpoint (docs/postbacks.md).
    Part of gokart-exchange; MIT licence.

    Everything that needs no store runs on the HTTP handler thread: the
    source check, the query parse, the token. The partnership's short id is
    resolved through the loop once and then kept (partnerships are never
    removed). The conversion itself is written by gkx_node_convert, which
    batches every postback waiting into one durable commit.
*/
#include <gkx/alloc.h>
#include <gkx/config.h>
#include <gkx/conversion.h>
#include <gkx/http.h>
#include <gkx/intake.h>
#include <gkx/netmask.h>
#include <gkx/postback.h>
#include <gkx/report.h>

#include <assert.h>
#include <pthread.h>
#include <sodium.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

/* Handler threads: each waits for its postback's commit, so these many
   postbacks can share one commit. */
#define S_THREADS 32
/* Short ids kept after a lookup. */
#define S_SHORT_CACHE_MAX 4096

/* A short id the loop resolved. */
typedef struct {
    char text[GKX_STORE_SHORT_ID_CHARS + 1];
    uint8_t pid[GKX_ID_BYTES];
} s_short_t;

struct gkx_intake {
    gkx_node_t *node;
    gkx_http_t *http;
    gkx_netmask_t *allow;           /* empty: every source */
    uint8_t token_hash[crypto_generichash_BYTES];
    pthread_mutex_t lock;           /* guards shorts */
    s_short_t *shorts;
    size_t short_count;
    atomic_uint_fast64_t committed;
    atomic_uint_fast64_t duplicates;
    atomic_uint_fast64_t refused;
    atomic_uint_fast64_t failed;
};

/* Hashes a token, so that comparing two never depends on their lengths. */
static void
s_token_hash (uint8_t out[crypto_generichash_BYTES], const char *token)
{
    crypto_generichash (out, crypto_generichash_BYTES, (const uint8_t *) token, strlen (token),
                        NULL, 0);
}

/* A short id lookup handed to the loop. */
typedef struct {
    const char *text;
    uint8_t pid[GKX_ID_BYTES];
} s_lookup_t;

/* On the loop: finds the partnership of a short id. */
static int
s_lookup_fn (gkx_node_t *node, void *arg)
{
    s_lookup_t *lookup = arg;
    return gkx_store_short_find (gkx_node_store (node), lookup->text, lookup->pid);
}

/* Finds the partnership of a short id: in the cache, else through the loop.
   Returns GKX_OK, GKX_ENOTFOUND, GKX_EINVAL or GKX_ESTORE (loop gone). */
static int
s_short_find (gkx_intake_t *self, const char *text, uint8_t pid[GKX_ID_BYTES])
{
    char lower[GKX_STORE_SHORT_ID_CHARS + 1];
    size_t len = strlen (text);
    if (len != GKX_STORE_SHORT_ID_CHARS) {
        return GKX_EINVAL;
    }
    for (size_t i = 0; i <= len; i++) {
        char c = text[i];
        lower[i] = c >= 'A' && c <= 'Z' ? (char) (c - 'A' + 'a') : c;
    }
    pthread_mutex_lock (&self->lock);
    for (size_t i = 0; i < self->short_count; i++) {
        if (memcmp (self->shorts[i].text, lower, GKX_STORE_SHORT_ID_CHARS) == 0) {
            memcpy (pid, self->shorts[i].pid, GKX_ID_BYTES);
            pthread_mutex_unlock (&self->lock);
            return GKX_OK;
        }
    }
    pthread_mutex_unlock (&self->lock);
    s_lookup_t lookup = {lower, {0}};
    int rc = gkx_node_call (self->node, s_lookup_fn, &lookup);
    if (rc != GKX_OK) {
        return rc;
    }
    memcpy (pid, lookup.pid, GKX_ID_BYTES);
    pthread_mutex_lock (&self->lock);
    if (self->short_count < S_SHORT_CACHE_MAX) {
        if (!self->shorts) {
            self->shorts = gkx_zalloc (S_SHORT_CACHE_MAX * sizeof *self->shorts);
        }
        s_short_t *slot = &self->shorts[self->short_count++];
        memcpy (slot->text, lower, sizeof slot->text);
        memcpy (slot->pid, lookup.pid, GKX_ID_BYTES);
    }
    pthread_mutex_unlock (&self->lock);
    return GKX_OK;
}

/* Seconds since the epoch. */
static uint64_t
s_now_s (void)
{
    return (uint64_t) time (NULL);
}

/* Fills a conversion item from a parsed postback. */
static void
s_item_fill (gkx_store_convert_t *item, const gkx_postback_t *pb, const uint8_t pid[GKX_ID_BYTES])
{
    memset (item, 0, sizeof *item);
    memcpy (item->pid, pid, GKX_ID_BYTES);
    gkx_conversion_t *draft = &item->draft;
    snprintf (draft->click_id, sizeof draft->click_id, "%s", pb->click_id);
    snprintf (draft->event, sizeof draft->event, "%s", pb->event);
    snprintf (draft->country, sizeof draft->country, "%s", pb->country);
    snprintf (draft->platform, sizeof draft->platform, "%s", pb->platform ? pb->platform : "");
    for (int i = 0; i < GKX_CONVERSION_SUB_COUNT && i < GKX_POSTBACK_SUBS; i++) {
        snprintf (draft->sub[i], sizeof draft->sub[i], "%s", pb->sub[i] ? pb->sub[i] : "");
    }
    /* Without the MMP's time, the time of receipt is written: the entry
       carries it, so both members decide with the same value. */
    draft->time = pb->time > 0 ? (uint64_t) pb->time : s_now_s ();
    draft->click_time = pb->click_time > 0 && (uint64_t) pb->click_time <= draft->time
        ? (uint64_t) pb->click_time : 0;
    gkx_postback_dedupe_key (draft->dedupe, pb->transaction_id, pb->event);
    gkx_conversion_facts_t *facts = &item->facts;
    facts->event = draft->event;
    facts->country = draft->country[0] ? draft->country : NULL;
    facts->platform = draft->platform[0] ? draft->platform : NULL;
    facts->time = draft->time;
    facts->click_time = draft->click_time;
    facts->mmp_rejected = pb->rejected;
    facts->mmp_reason = pb->reason;
    facts->has_revenue = pb->has_revenue;
    facts->revenue = pb->revenue_micros;
    snprintf (item->revenue_currency, sizeof item->revenue_currency, "%s", pb->currency);
}

/* The answer to a committed postback, new or repeated. */
static json_t *
s_answer (const gkx_store_convert_t *item)
{
    char id[2 * GKX_HASH_BYTES + 1];
    char pid[2 * GKX_ID_BYTES + 1];
    char payout[GKX_REPORT_AMOUNT_TEXT_BYTES];
    sodium_bin2hex (id, sizeof id, item->conversion.id, GKX_HASH_BYTES);
    sodium_bin2hex (pid, sizeof pid, item->pid, GKX_ID_BYTES);
    gkx_report_amount_text (payout, item->conversion.payout);
    return json_pack ("{s:s, s:s, s:s, s:o, s:s, s:s, s:s, s:b}", "conversion", id,
                      "partnership", pid, "status",
                      gkx_conversion_status_name (item->conversion.status), "reason",
                      item->conversion.reason[0] ? json_string (item->conversion.reason)
                                                 : json_null (),
                      "payout", payout, "currency", item->currency, "event", item->draft.event,
                      "duplicate", item->duplicate);
}

/* GET or POST /postback/{mmp}?p=SHORT_ID&t=TOKEN&... */
static json_t *
s_postback (gkx_http_request_t *request, void *user, int *status_p)
{
    gkx_intake_t *self = user;
    if (gkx_netmask_count (self->allow) > 0) {
        struct sockaddr_storage addr;
        socklen_t len = sizeof addr;
        if (gkx_http_client_addr (request, &addr, &len) != GKX_OK
            || !gkx_netmask_contains (self->allow, (const struct sockaddr *) &addr)) {
            atomic_fetch_add (&self->refused, 1);
            return gkx_http_error (status_p, 403, "forbidden",
                                   "source address %s is not in [postback] allow_from",
                                   gkx_http_client_text (request));
        }
    }
    /* No token is no credential: 401 like a wrong one, before the query's
       fields are read (the frame has decoded it and refused duplicates). */
    const char *token = gkx_http_query (request, "t");
    if (!token || !token[0]) {
        atomic_fetch_add (&self->refused, 1);
        return gkx_http_error (status_p, 401, "unauthorized",
                               "missing parameter \"t\": the postback token (gkx postback-url "
                               "prints the URL with it)");
    }
    gkx_postback_t pb;
    char errbuf[GKX_ERRBUF_BYTES] = "";
    int rc = gkx_postback_parse (&pb, gkx_http_segment (request, 0),
                                 gkx_http_raw_query (request), errbuf);
    if (rc != GKX_OK) {
        atomic_fetch_add (&self->refused, 1);
        return rc == GKX_ENOTFOUND ? gkx_http_error (status_p, 404, "not_found", "%s", errbuf)
                                   : gkx_http_error (status_p, 400, "invalid", "%s", errbuf);
    }
    uint8_t given[crypto_generichash_BYTES];
    s_token_hash (given, pb.token);
    json_t *reply = NULL;
    uint8_t pid[GKX_ID_BYTES];
    if (sodium_memcmp (given, self->token_hash, sizeof given) != 0) {
        reply = gkx_http_error (status_p, 401, "unauthorized",
                                "parameter \"t\": the postback token does not match this node's");
    }
    else if ((rc = s_short_find (self, pb.short_id, pid)) != GKX_OK) {
        reply = rc == GKX_ESTORE
            ? gkx_http_error (status_p, 503, "unavailable", "the node is stopping; retry")
            : gkx_http_error (status_p, 404, "not_found",
                              "parameter \"p\": no partnership has short id \"%s\"", pb.short_id);
    }
    if (reply) {
        atomic_fetch_add (*status_p >= 500 ? &self->failed : &self->refused, 1);
        gkx_postback_clear (&pb);
        return reply;
    }
    gkx_store_convert_t *item = gkx_zalloc (sizeof *item);
    s_item_fill (item, &pb, pid);
    gkx_postback_clear (&pb);
    rc = gkx_node_convert (self->node, item);
    if (rc != GKX_OK) {
        reply = gkx_http_error (status_p, 503, "unavailable",
                                "the conversion was not committed; retry: %s",
                                item->errbuf[0] ? item->errbuf : gkx_strerror (rc));
    }
    else if (item->rc == GKX_EAHEAD) {
        reply = gkx_http_error (status_p, 503, "catching_up", "%s", item->errbuf);
    }
    else if (item->rc == GKX_EFROZEN) {
        reply = gkx_http_error (status_p, 409, "frozen", "%s", item->errbuf);
    }
    else if (item->rc == GKX_ENOTFOUND || item->rc == GKX_EPOLICY) {
        reply = gkx_http_error (status_p, 404, "not_found",
                                "parameter \"p\": the partnership takes no postbacks here: %s",
                                item->errbuf);
    }
    else if (item->rc != GKX_OK) {
        reply = gkx_http_error (status_p, 400, "invalid", "%s", item->errbuf);
    }
    else {
        reply = s_answer (item);
    }
    atomic_fetch_add (*status_p >= 500                 ? &self->failed
                      : *status_p >= 400               ? &self->refused
                      : item->duplicate                ? &self->duplicates
                                                       : &self->committed,
                      1);
    gkx_free (item);
    return reply;
}

static const gkx_http_route_t s_routes[] = {
    {"GET /postback/{}", s_postback},
    {"POST /postback/{}", s_postback},
};

int
gkx_intake_open (gkx_intake_t **self_p, gkx_node_t *node, char *errbuf)
{
    assert (self_p && node);
    const gkx_config_t *config = gkx_node_config (node);
    assert (config->postback_listen);
    gkx_intake_t *self = gkx_zalloc (sizeof *self);
    self->node = node;
    pthread_mutex_init (&self->lock, NULL);
    self->allow = gkx_netmask_new ();
    int rc = GKX_OK;
    for (size_t i = 0; rc == GKX_OK && i < config->allow_from_count; i++) {
        rc = gkx_netmask_add (self->allow, config->allow_from[i], errbuf);
    }
    char token[GKX_POSTBACK_TOKEN_BUF_BYTES];
    if (rc == GKX_OK) {
        rc = gkx_config_postback_token (gkx_node_dir (node), token, 1, errbuf);
    }
    if (rc == GKX_OK) {
        s_token_hash (self->token_hash, token);
        sodium_memzero (token, sizeof token);
        gkx_http_options_t options;
        memset (&options, 0, sizeof options);
        options.address = config->postback_listen;
        options.routes = s_routes;
        options.routes_count = sizeof s_routes / sizeof s_routes[0];
        options.user = self;
        options.threads = S_THREADS;
        options.query_max = GKX_POSTBACK_PARAMS_MAX;
        /* An MMP may send from a few addresses over many connections at
           once (bench/conversions uses 64). */
        options.per_ip_max = 2 * GKX_HTTP_PER_IP_DEFAULT;
        /* Some MMPs POST with a form body; the query carries everything. */
        options.body_max = 64 * 1024;
        options.body_discard = 1;
        rc = gkx_http_open (&self->http, &options, errbuf);
    }
    if (rc != GKX_OK) {
        gkx_intake_close (&self);
        return rc;
    }
    *self_p = self;
    return GKX_OK;
}

void
gkx_intake_close (gkx_intake_t **self_p)
{
    if (!self_p || !*self_p) {
        return;
    }
    gkx_intake_t *self = *self_p;
    gkx_http_close (&self->http);
    gkx_netmask_destroy (&self->allow);
    pthread_mutex_destroy (&self->lock);
    gkx_free (self->shorts);
    sodium_memzero (self->token_hash, sizeof self->token_hash);
    gkx_free (self);
    *self_p = NULL;
}

unsigned
gkx_intake_port (const gkx_intake_t *self)
{
    return gkx_http_port (self->http);
}

void
gkx_intake_stats (const gkx_intake_t *self, gkx_intake_stats_t *out)
{
    out->committed = atomic_load (&((gkx_intake_t *) self)->committed);
    out->duplicates = atomic_load (&((gkx_intake_t *) self)->duplicates);
    out->refused = atomic_load (&((gkx_intake_t *) self)->refused);
    out->failed = atomic_load (&((gkx_intake_t *) self)->failed);
}
