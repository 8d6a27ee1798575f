/*  api - the tenant's HTTP JSON API of gkxd (docs/api.md).
    Part of gokart-exchange; MIT licence.

    Each handler validates its input on the HTTP worker thread, then does
    its store work inside gkx_node_call on the node's loop, where writes are
    serialised and replication pushes follow each commit. A write (an edit,
    a proposal, an answer) reads the current merge state, checks the
    operations against it and appends the entry in that one call, so the
    check and the append see the same state.

    The work handed to the loop is an s_job_t: the inputs the worker thread
    validated, and on return either the reply or the error's status, code
    and message. Errors are answered with one status per cause (docs/api.md
    lists them): 400 bad input, 403 the policy forbids it, 404 no such
    partnership or proposal, 409 frozen or already answered, 503 the node is
    stopping or catching up.
*/
#include <gkx/alloc.h>
#include <gkx/api.h>
#include <gkx/directory.h>
#include <gkx/export.h>
#include <gkx/hlc.h>
#include <gkx/intake.h>
#include <gkx/kind.h>
#include <gkx/merge.h>
#include <gkx/notifier.h>
#include <gkx/metrics.h>
#include <gkx/offer.h>
#include <gkx/postback.h>
#include <gkx/report.h>
#include <gkx/webhook.h>

#include <assert.h>
#include <errno.h>
#include <limits.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

/* Longest export path accepted, with its NUL. */
#define S_PATH_BYTES PATH_MAX
/* The directory, in the node's, that POST .../export may write into. */
#define S_EXPORT_DIR "exports"
/* Content type of an export sent as a reply. */
#define S_EXPORT_TYPE "application/octet-stream"

/* Work handed to the loop, and what the loop leaves for the reply. */
typedef struct {
    uint8_t pid[GKX_ID_BYTES];      /* the partnership named by the path */
    int kind;                       /* GKX_KIND_EDIT or GKX_KIND_PROPOSE for writes */
    const json_t *patch;            /* a merge patch (borrowed), or NULL */
    const char **edits;             /* CLI edits (borrowed strings), or NULL */
    size_t edits_count;             /* entries in edits */
    const char *noop_message;       /* message when the edits change nothing */
    int answer;                     /* a gkx_merge_answer_t for answers */
    const char *proposal;           /* proposal id or prefix (borrowed) */
    const char *path;               /* absolute export path (borrowed) */
    const char *conversion;         /* conversion id or prefix (borrowed) */
    int conversion_status;          /* the status a change sets */
    const char *reason;             /* its reason, or NULL (borrowed) */
    uint64_t since;                 /* conversions from this event time on */
    uint64_t after;                 /* conversions after this advertiser seq */
    size_t limit;                   /* most records listed */
    uint64_t delivery;              /* a webhook delivery's id */
    int all;                        /* a report over every partnership */
    gkx_report_query_t query;       /* a report's grouping and range */
    int csv;                        /* answer a report as CSV */
    char *text;                     /* a text reply (ours) */
    size_t text_len;                /* its bytes, when it is binary (an export) */
    int ran;                        /* the loop ran the job */
    json_t *reply;                  /* the reply on success */
    int status;                     /* the status: of the reply, or of the error */
    const char *code;               /* the error's code; NULL maps the result code */
    char errbuf[GKX_ERRBUF_BYTES];  /* the error's message */
} s_job_t;

/* Answers a job's error: the status and code it set, else the ones of rc. */
static json_t *
s_job_error (int *status_p, const s_job_t *job, int rc)
{
    if (!job->ran) {
        return gkx_http_error (status_p, 503, "unavailable", "the node is stopping");
    }
    const char *message = job->errbuf[0] ? job->errbuf : gkx_strerror (rc);
    if (job->code) {
        return gkx_http_error (status_p, job->status, job->code, "%s", message);
    }
    switch (rc) {
        case GKX_EINVAL: return gkx_http_error (status_p, 400, "bad_request", "%s", message);
        case GKX_EPOLICY: return gkx_http_error (status_p, 403, "forbidden", "%s", message);
        case GKX_ENOTFOUND: return gkx_http_error (status_p, 404, "not_found", "%s", message);
        case GKX_EFROZEN: return gkx_http_error (status_p, 409, "frozen", "%s", message);
        case GKX_EAHEAD:
            return gkx_http_error (status_p, 503, "catching_up", "%s", message);
        default: return gkx_http_error (status_p, 500, "internal", "%s", message);
    }
}

/* Runs fn on the loop and answers its reply or its error. */
static json_t *
s_job_run (gkx_node_t *node, gkx_node_fn *fn, s_job_t *job, int *status_p)
{
    int rc = gkx_node_call (node, fn, job);
    if (job->ran && rc == GKX_OK) {
        *status_p = job->status ? job->status : 200;
        return job->reply;
    }
    json_decref (job->reply);
    job->reply = NULL;
    return s_job_error (status_p, job, rc);
}

/* On the loop: records an error with its status and code; returns rc. */
__attribute__ ((format (printf, 5, 6))) static int
s_job_fail (s_job_t *job, int rc, int status, const char *code, const char *fmt, ...)
{
    va_list args;
    va_start (args, fmt);
    vsnprintf (job->errbuf, sizeof job->errbuf, fmt, args);
    va_end (args);
    job->status = status;
    job->code = code;
    return rc;
}

/* Parses the partnership id of the path (segment 0) into job->pid; on
   failure returns the 400 reply, else NULL. */
static json_t *
s_job_pid (s_job_t *job, gkx_http_request_t *request, int *status_p)
{
    memset (job, 0, sizeof *job);
    const char *text = gkx_http_segment (request, 0);
    char errbuf[GKX_ERRBUF_BYTES];
    if (!text || gkx_id_parse (job->pid, text, errbuf) != GKX_OK) {
        return gkx_http_error (status_p, 400, "bad_partnership_id", "partnership %s",
                               text ? errbuf : "id missing");
    }
    return NULL;
}

/* Returns 1 when the body is absent or an empty object. */
static int
s_body_is_empty (const json_t *body)
{
    return !body || (json_is_object (body) && json_object_size (body) == 0);
}

/* Returns the lowercase hex of a 32-byte id or hash as a new JSON string. */
static json_t *
s_hex_json (const uint8_t *bytes, size_t len)
{
    char hex[2 * GKX_HASH_BYTES + 1];
    assert (len <= GKX_HASH_BYTES);
    sodium_bin2hex (hex, sizeof hex, bytes, len);
    return json_string (hex);
}

/* Returns {"role", "seq", "hash"} of an entry, the shape of the change log's
   entry references. */
static json_t *
s_entry_ref (const gkx_entry_t *entry, int role)
{
    return json_pack ("{s:s, s:I, s:o}", "role", gkx_role_name (role), "seq",
                      (json_int_t) gkx_entry_seq (entry), "hash",
                      s_hex_json (gkx_entry_hash (entry), GKX_HASH_BYTES));
}

/* Milliseconds since the epoch. */
static uint64_t
s_now_ms (void)
{
    struct timespec ts;
    clock_gettime (CLOCK_REALTIME, &ts);
    return (uint64_t) ts.tv_sec * 1000 + (uint64_t) ts.tv_nsec / 1000000;
}

/* The partnership of a job and its merge state, read on the loop. */
typedef struct {
    gkx_partnership_t p;            /* what the store knows of it */
    gkx_head_t heads[2];            /* the advertiser's and the publisher's chain heads */
    gkx_merge_t *merge;             /* its offer merge state, borrowed from the store's
                                       cache: valid on the loop until a write fails */
} s_view_t;

/* On the loop: reads the job's partnership, heads and merge state into
   view. Returns GKX_OK, or the job's error (404 for an unknown id). */
static int
s_view_open (s_view_t *view, gkx_node_t *node, s_job_t *job)
{
    gkx_store_t *store = gkx_node_store (node);
    memset (view, 0, sizeof *view);
    int rc = gkx_store_partnership (store, job->pid, &view->p);
    if (rc == GKX_ENOTFOUND) {
        char pid[GKX_ID_TEXT_BYTES];
        gkx_id_format (pid, job->pid);
        return s_job_fail (job, rc, 404, "not_found", "no partnership %s on this node", pid);
    }
    if (rc == GKX_OK) {
        rc = gkx_store_head (store, job->pid, GKX_ROLE_ADVERTISER, &view->heads[0]);
    }
    if (rc == GKX_OK) {
        rc = gkx_store_head (store, job->pid, GKX_ROLE_PUBLISHER, &view->heads[1]);
    }
    if (rc == GKX_OK) {
        rc = gkx_store_merge_borrow (store, job->pid, &view->merge);
    }
    if (rc != GKX_OK) {
        return s_job_fail (job, rc, 500, "internal", "the store failed: %s", gkx_strerror (rc));
    }
    return GKX_OK;
}

/* Releases a view; may be called twice. The state belongs to the store. */
static void
s_view_close (s_view_t *view)
{
    view->merge = NULL;
}

/* Returns 1 when the entry of role at seq is final: the other member's
   chain acknowledges it (its head's seen_seq reaches seq). */
static int
s_view_is_final (const s_view_t *view, int role, uint64_t seq)
{
    const gkx_head_t *other = &view->heads[role == GKX_ROLE_ADVERTISER ? 1 : 0];
    return seq > 0 && seq <= other->seen_seq;
}

/* Returns 1 when a change-log entry reference {"role", "seq"} is final. */
static int
s_ref_is_final (const s_view_t *view, const json_t *ref)
{
    int role = 0;
    const char *name = json_string_value (json_object_get (ref, "role"));
    json_int_t seq = json_integer_value (json_object_get (ref, "seq"));
    if (!name || gkx_role_parse (name, &role) != GKX_OK || seq <= 0) {
        return 0;
    }
    return s_view_is_final (view, role, (uint64_t) seq);
}

/* Adds "final" to each record of a change log or proposal list: true when
   its entry, and the accept entry that applied it if any, are final. */
static void
s_mark_final (const s_view_t *view, json_t *records)
{
    size_t i;
    json_t *record;
    json_array_foreach (records, i, record) {
        json_t *accepted = json_object_get (record, "accepted_by");
        int final = s_ref_is_final (view, json_object_get (record, "entry"))
                    && (!accepted || s_ref_is_final (view, accepted));
        json_object_set_new (record, "final", json_boolean (final));
    }
}

/* Returns the display names of both members, copied (the caller frees both). */
static void
s_view_names (const s_view_t *view, gkx_node_t *node, char **advertiser_p, char **publisher_p)
{
    *advertiser_p = gkx_strdup (gkx_node_member_name (node, view->p.advertiser));
    *publisher_p = gkx_strdup (gkx_node_member_name (node, view->p.publisher));
}

/* On the loop: the summary of a partnership, as GET /v1/partnerships lists
   it, from its record, heads and materialised offer with its digest. */
static json_t *
s_summary (gkx_node_t *node, const gkx_partnership_t *p, const gkx_head_t heads[2],
           const gkx_offer_t *offer, const uint8_t digest_raw[GKX_OFFER_DIGEST_BYTES])
{
    const uint8_t *other = p->self_role == GKX_ROLE_ADVERTISER ? p->publisher : p->advertiser;
    int other_role = p->self_role == GKX_ROLE_ADVERTISER ? GKX_ROLE_PUBLISHER
                                                         : GKX_ROLE_ADVERTISER;
    char pid[GKX_ID_TEXT_BYTES];
    char other_id[GKX_ID_TEXT_BYTES];
    char digest[GKX_OFFER_DIGEST_HEX_BYTES];
    char created[GKX_HLC_TEXT_BYTES];
    gkx_id_format (pid, p->pid);
    gkx_id_format (other_id, other);
    sodium_bin2hex (digest, sizeof digest, digest_raw, GKX_OFFER_DIGEST_BYTES);
    gkx_hlc_format (created, sizeof created, p->created_hlc);
    const char *status = p->is_frozen ? "frozen"
                                      : json_string_value (gkx_offer_value (offer, "status"));
    return json_pack (
        "{s:s, s:s, s:{s:s, s:s, s:s}, s:s, s:s, s:s, s:{s:I, s:I, s:I, s:I}, s:s}", "id", pid,
        "role", gkx_role_name (p->self_role), "counterparty", "id", other_id, "name",
        gkx_node_member_name (node, other), "role", gkx_role_name (other_role), "status",
        status ? status : "active", "offer_name",
        json_string_value (gkx_offer_value (offer, "name")), "digest", digest, "heads",
        "advertiser_seq", (json_int_t) heads[0].seq, "publisher_seq",
        (json_int_t) heads[1].seq, "advertiser_acked_seq", (json_int_t) heads[1].seen_seq,
        "publisher_acked_seq", (json_int_t) heads[0].seen_seq, "created", created);
}

/* On the loop: the summary of one partnership whose record is p. Reads the
   heads and the materialised offer, not the merge state: a listing of
   every partnership must not replay every log (the merge states are a
   cache of 64, and cold after a start). */
static int
s_summary_read (gkx_node_t *node, s_job_t *job, const gkx_partnership_t *p, json_t **row_p)
{
    gkx_store_t *store = gkx_node_store (node);
    gkx_head_t heads[2];
    gkx_offer_t *offer = NULL;
    uint8_t digest[GKX_OFFER_DIGEST_BYTES];
    int rc = gkx_store_head (store, p->pid, GKX_ROLE_ADVERTISER, &heads[0]);
    if (rc == GKX_OK) {
        rc = gkx_store_head (store, p->pid, GKX_ROLE_PUBLISHER, &heads[1]);
    }
    if (rc == GKX_OK) {
        rc = gkx_store_offer (store, p->pid, &offer, digest);
    }
    if (rc != GKX_OK) {
        return s_job_fail (job, rc, 500, "internal", "the store failed: %s", gkx_strerror (rc));
    }
    *row_p = s_summary (node, p, heads, offer, digest);
    gkx_offer_destroy (&offer);
    return GKX_OK;
}

/* On the loop: {"offer": ..., "digest": hex} of a view's current offer. */
static json_t *
s_view_offer (const s_view_t *view)
{
    char digest[GKX_OFFER_DIGEST_HEX_BYTES];
    uint8_t raw[GKX_OFFER_DIGEST_BYTES];
    gkx_merge_digest (view->merge, raw, digest);
    return json_pack ("{s:o, s:s}", "offer", gkx_offer_to_json (gkx_merge_offer (view->merge)),
                      "digest", digest);
}

/* On the loop: the reply of a write whose entry is committed: the new offer
   and digest (the store folded the entry into the borrowed state in the
   append's transaction), and the entry. */
static json_t *
s_view_written (s_view_t *view, const gkx_entry_t *entry)
{
    json_t *reply = s_view_offer (view);
    json_object_set_new (reply, "entry", s_entry_ref (entry, view->p.self_role));
    return reply;
}

/* Partnerships gathered for a listing. */
typedef struct {
    gkx_partnership_t *items;       /* the partnerships, in id order */
    size_t count;                   /* entries in items */
} s_list_t;

/* Adds one partnership to a listing. */
static int
s_list_add (const gkx_partnership_t *p, void *arg)
{
    s_list_t *list = arg;
    list->items = gkx_realloc (list->items, (list->count + 1) * sizeof *list->items);
    list->items[list->count++] = *p;
    return GKX_OK;
}

/* On the loop: the summaries of every partnership, as a JSON array. */
static int
s_summaries (gkx_node_t *node, s_job_t *job, json_t **rows_p)
{
    s_list_t list = {NULL, 0};
    int rc = gkx_store_partnerships (gkx_node_store (node), s_list_add, &list);
    json_t *rows = json_array ();
    for (size_t i = 0; rc == GKX_OK && i < list.count; i++) {
        json_t *row = NULL;
        rc = s_summary_read (node, job, &list.items[i], &row);
        if (rc == GKX_OK) {
            json_array_append_new (rows, row);
        }
    }
    gkx_free (list.items);
    if (rc != GKX_OK) {
        json_decref (rows);
        return job->code ? rc
                         : s_job_fail (job, rc, 500, "internal", "the store failed: %s",
                                       gkx_strerror (rc));
    }
    *rows_p = rows;
    return GKX_OK;
}

/* Milliseconds of a second, and of a UTC day. */
#define S_SECOND_MS 1000
#define S_DAY_MS ((uint64_t) GKX_CONVERSION_DAY_SECONDS * S_SECOND_MS)

/* On the loop: the e-mails waiting in the notifier's outbox (0 when the
   store cannot count them). */
static uint64_t
s_emails_pending (gkx_node_t *node)
{
    uint64_t count = 0;
    if (gkx_store_messages_pending (gkx_node_store (node), &count) != GKX_OK) {
        count = 0;
    }
    return count;
}

/* On the loop: the e-mails the notifier sent, and the attempts that
   failed, since it started, for GET /metrics (0 without a notifier). */
static void
s_emails_counts (gkx_node_t *node, uint64_t *sent_p, uint64_t *failed_p)
{
    gkx_notifier_stats_t stats = {0, 0};
    if (gkx_node_notifier (node)) {
        gkx_notifier_stats (gkx_node_notifier (node), &stats);
    }
    *sent_p = stats.sent;
    *failed_p = stats.failed;
}

/* On the loop: what the ledger and the outboxes add to the status: the
   conversions of today (UTC) and the deliveries and e-mails waiting. */
static int
s_status_ledger (gkx_node_t *node, s_job_t *job, uint64_t now_ms)
{
    gkx_store_t *store = gkx_node_store (node);
    gkx_store_conversion_counts_t counts;
    uint64_t deliveries = 0;
    int rc = gkx_store_conversion_counts (store, now_ms / S_DAY_MS, &counts);
    if (rc == GKX_OK) {
        rc = gkx_store_deliveries_pending (store, &deliveries);
    }
    if (rc != GKX_OK) {
        return s_job_fail (job, rc, 500, "internal", "the store failed: %s", gkx_strerror (rc));
    }
    json_object_set_new (job->reply, "conversions_today", json_integer ((json_int_t) counts.day));
    json_object_set_new (job->reply, "outbox",
                         json_pack ("{s:I, s:I}", "deliveries_pending", (json_int_t) deliveries,
                                    "emails_pending", (json_int_t) s_emails_pending (node)));
    return GKX_OK;
}

/* Collects the node's status on the loop. */
static int
s_status_fn (gkx_node_t *node, void *arg)
{
    s_job_t *job = arg;
    job->ran = 1;
    gkx_store_partnership_counts_t counts;
    int rc = gkx_store_partnership_counts (gkx_node_store (node), &counts);
    if (rc != GKX_OK) {
        return s_job_fail (job, rc, 500, "internal", "the store failed: %s", gkx_strerror (rc));
    }
    char id[GKX_ID_TEXT_BYTES];
    gkx_id_format (id, gkx_identity_id (gkx_node_identity (node)));
    const gkx_config_t *config = gkx_node_config (node);
    job->reply = json_pack ("{s:s, s:s, s:s, s:s, s:s, s:{s:I, s:I, s:I, s:I}, s:o}", "id", id,
                            "role", gkx_role_name (config->role), "name", config->name, "listen",
                            config->listen, "api", config->api_listen, "partnerships", "total",
                            (json_int_t) (counts.active + counts.paused + counts.frozen),
                            "active", (json_int_t) counts.active, "paused",
                            (json_int_t) counts.paused, "frozen", (json_int_t) counts.frozen, "peers", gkx_node_peers_json (node));
    struct timespec now;
    clock_gettime (CLOCK_REALTIME, &now);
    uint64_t now_ms = (uint64_t) now.tv_sec * 1000 + (uint64_t) now.tv_nsec / 1000000;
    json_object_set_new (job->reply, "uptime_seconds",
                         json_integer ((json_int_t) ((now_ms - gkx_node_started_ms (node)) / 1000)));
    json_object_set_new (job->reply, "replication", gkx_node_stats_json (node));
    return s_status_ledger (node, job, now_ms);
}

/* GET /v1/status: node id, role, uptime, partnership counts, peers with
   their connection state and lag, conversions today and the outboxes. */
static json_t *
s_status (gkx_http_request_t *request, void *user, int *status_p)
{
    (void) request;
    s_job_t job;
    memset (&job, 0, sizeof job);
    return s_job_run (user, s_status_fn, &job, status_p);
}

/* Lists the peers on the loop. */
static int
s_peers_fn (gkx_node_t *node, void *arg)
{
    s_job_t *job = arg;
    job->ran = 1;
    job->reply = json_pack ("{s:o}", "peers", gkx_node_peers_json (node));
    return GKX_OK;
}

/* GET /v1/peers: the known peers, whether each is connected, and its lag. */
static json_t *
s_peers_get (gkx_http_request_t *request, void *user, int *status_p)
{
    (void) request;
    s_job_t job;
    memset (&job, 0, sizeof job);
    return s_job_run (user, s_peers_fn, &job, status_p);
}

/* What POST /v1/peers hands to the loop. */
typedef struct {
    gkx_card_t *card;
    char errbuf[GKX_ERRBUF_BYTES];
} s_peer_add_t;

/* Adds a peer on the loop. */
static int
s_peer_add_fn (gkx_node_t *node, void *arg)
{
    s_peer_add_t *ctx = arg;
    return gkx_node_peer_add (node, ctx->card, ctx->errbuf);
}

/* POST /v1/peers {card}: adds a partner from its signed tenant card. */
static json_t *
s_peers_post (gkx_http_request_t *request, void *user, int *status_p)
{
    s_peer_add_t ctx = {NULL, ""};
    json_t *body = gkx_http_body (request);
    if (!json_is_object (body)) {
        return gkx_http_error (status_p, 400, "bad_request", "the body must be a tenant card");
    }
    if (gkx_card_from_json (&ctx.card, body, ctx.errbuf) != GKX_OK) {
        return gkx_http_error (status_p, 400, "bad_card", "%s", ctx.errbuf);
    }
    int rc = gkx_node_call (user, s_peer_add_fn, &ctx);
    json_t *reply;
    if (rc == GKX_OK) {
        char id[GKX_ID_TEXT_BYTES];
        gkx_id_format (id, gkx_card_id (ctx.card));
        *status_p = 201;
        reply = json_pack ("{s:s, s:s, s:s}", "id", id, "name", gkx_card_name (ctx.card), "role",
                           gkx_role_name (gkx_card_role (ctx.card)));
    }
    else if (rc == GKX_EINVAL) {
        reply = gkx_http_error (status_p, 400, "bad_peer", "%s", ctx.errbuf);
    }
    else {
        reply = gkx_http_error (status_p, 500, "internal", "%s",
                                ctx.errbuf[0] ? ctx.errbuf : gkx_strerror (rc));
    }
    gkx_card_destroy (&ctx.card);
    return reply;
}

/* GET /v1/publishers?vertical=TEXT&country=CC: the publishers the
   directories of [directory] publish_to list, each card verified here
   again; the node keeps them, so that a share can name one by its id. */
static json_t *
s_publishers_get (gkx_http_request_t *request, void *user, int *status_p)
{
    gkx_directory_t *directory = gkx_node_directory (user);
    gkx_dirmsg_filter_t filter;
    char errbuf[GKX_ERRBUF_BYTES] = "";
    if (gkx_dirmsg_filter_parse (&filter, "publisher", gkx_http_query (request, "vertical"),
                                 gkx_http_query (request, "country"), errbuf)
        != GKX_OK) {
        return gkx_http_error (status_p, 400, "bad_filter", "%s", errbuf);
    }
    if (!directory) {
        return gkx_http_error (status_p, 503, "unavailable", "the node is stopping");
    }
    json_t *listing = gkx_directory_list (directory, &filter);
    json_t *reply = json_pack ("{s:O, s:O}", "publishers", json_object_get (listing, "cards"),
                               "directories", json_object_get (listing, "directories"));
    json_decref (listing);
    *status_p = 200;
    return reply;
}

/* What POST /v1/card/withdraw and /publish hand to the loop. */
typedef struct {
    int publish;                    /* 1: list again, 0: withdraw */
    json_t *state;                  /* the directories' state, on return */
    int pending;                    /* a directory has not answered yet */
    char errbuf[GKX_ERRBUF_BYTES];
} s_card_job_t;

/* On the loop: withdraws or publishes the card. */
static int
s_card_listing_fn (gkx_node_t *node, void *arg)
{
    s_card_job_t *job = arg;
    gkx_directory_t *directory = gkx_node_directory (node);
    if (!directory) {
        return gkx_fail (job->errbuf, GKX_ESTORE, "the node is stopping");
    }
    return job->publish ? gkx_directory_publish (directory, job->errbuf)
                        : gkx_directory_withdraw (directory, NULL, job->errbuf);
}

/* On the loop: the directories' state, and whether one still owes an answer. */
static int
s_card_state_fn (gkx_node_t *node, void *arg)
{
    s_card_job_t *job = arg;
    gkx_directory_t *directory = gkx_node_directory (node);
    if (!directory) {
        return GKX_ESTORE;
    }
    json_decref (job->state);
    job->state = gkx_directory_state_json (directory);
    job->pending = gkx_directory_is_pending (directory);
    return GKX_OK;
}

/* POST /v1/card/withdraw and /v1/card/publish: the work, then a wait of at
   most GKX_DIRECTORY_ANSWER_TIMEOUT_MS for the directories' answers (the
   node keeps trying those that did not answer). */
static json_t *
s_card_listing (void *user, int publish, int *status_p)
{
    s_card_job_t job;
    memset (&job, 0, sizeof job);
    job.publish = publish;
    int rc = gkx_node_call (user, s_card_listing_fn, &job);
    if (rc != GKX_OK) {
        return rc == GKX_EINVAL
            ? gkx_http_error (status_p, 400, "bad_card", "%s", job.errbuf)
            : gkx_http_error (status_p, 500, "internal", "%s",
                              job.errbuf[0] ? job.errbuf : gkx_strerror (rc));
    }
    uint64_t deadline = s_now_ms () + GKX_DIRECTORY_ANSWER_TIMEOUT_MS;
    struct timespec pause = {0, 50 * 1000 * 1000};
    for (;;) {
        rc = gkx_node_call (user, s_card_state_fn, &job);
        if (rc != GKX_OK || !job.pending || s_now_ms () >= deadline) {
            break;
        }
        nanosleep (&pause, NULL);
    }
    if (rc != GKX_OK) {
        json_decref (job.state);
        return gkx_http_error (status_p, 503, "unavailable", "the node is stopping");
    }
    *status_p = 200;
    return job.state;
}

/* POST /v1/card/withdraw: drops this node's card from every directory. */
static json_t *
s_card_withdraw (gkx_http_request_t *request, void *user, int *status_p)
{
    (void) request;
    return s_card_listing (user, 0, status_p);
}

/* POST /v1/card/publish: lists this node's card again after a withdrawal. */
static json_t *
s_card_publish (gkx_http_request_t *request, void *user, int *status_p)
{
    (void) request;
    return s_card_listing (user, 1, status_p);
}

/* What POST /v1/partnerships hands to the loop. */
typedef struct {
    const char *publisher_text;     /* a node id, or a prefix (borrowed) */
    uint8_t publisher[GKX_ID_BYTES];
    uint8_t *offer;
    size_t offer_len;
    uint8_t *policy;
    size_t policy_len;
    uint8_t pid[GKX_ID_BYTES];
    char errbuf[GKX_ERRBUF_BYTES];
} s_share_t;

/* Shares on the loop. */
static int
s_share_fn (gkx_node_t *node, void *arg)
{
    s_share_t *ctx = arg;
    /* An id from a directory's listing adds its card as a peer first. */
    int rc = gkx_directory_resolve (gkx_node_directory (node), node, ctx->publisher_text,
                                    ctx->publisher, ctx->errbuf);
    if (rc != GKX_OK) {
        return rc;
    }
    return gkx_node_share (node, ctx->publisher, ctx->offer, ctx->offer_len, ctx->policy,
                           ctx->policy_len, ctx->pid, ctx->errbuf);
}

/* POST /v1/partnerships {"publisher": ID, "offer": {...}, "policy": {...}}:
   shares an offer with a publisher; answers the partnership id. */
static json_t *
s_partnerships_post (gkx_http_request_t *request, void *user, int *status_p)
{
    s_share_t ctx;
    memset (&ctx, 0, sizeof ctx);
    json_t *body = gkx_http_body (request);
    const char *publisher = json_string_value (json_object_get (body, "publisher"));
    json_t *offer_json = json_object_get (body, "offer");
    if (!publisher || !json_is_object (offer_json)) {
        return gkx_http_error (status_p, 400, "bad_request",
                               "expected {\"publisher\": ID, \"offer\": {...}}");
    }
    ctx.publisher_text = publisher;
    gkx_offer_t *offer = NULL;
    if (gkx_offer_from_json (&offer, offer_json, ctx.errbuf) != GKX_OK) {
        return gkx_http_error (status_p, 400, "invalid_offer", "offer.%s", ctx.errbuf);
    }
    gkx_offer_encode (offer, &ctx.offer, &ctx.offer_len);
    gkx_offer_destroy (&offer);
    json_t *policy = json_object_get (body, "policy");
    if (gkx_merge_policy_encode (&ctx.policy, &ctx.policy_len, policy, ctx.errbuf) != GKX_OK) {
        gkx_free (ctx.offer);
        return gkx_http_error (status_p, 400, "invalid_policy", "policy: %s", ctx.errbuf);
    }
    int rc = gkx_node_call (user, s_share_fn, &ctx);
    gkx_free (ctx.offer);
    gkx_free (ctx.policy);
    if (rc != GKX_OK) {
        int status = rc == GKX_ENOTFOUND ? 404 : rc == GKX_EINVAL ? 400 : 500;
        const char *code = rc == GKX_ENOTFOUND ? "not_found"
                           : rc == GKX_EINVAL  ? "bad_request"
                                               : "internal";
        return gkx_http_error (status_p, status, code, "%s",
                               ctx.errbuf[0] ? ctx.errbuf : gkx_strerror (rc));
    }
    char pid[GKX_ID_TEXT_BYTES];
    gkx_id_format (pid, ctx.pid);
    *status_p = 201;
    return json_pack ("{s:s}", "id", pid);
}

/* Lists the partnerships on the loop. */
static int
s_partnerships_fn (gkx_node_t *node, void *arg)
{
    s_job_t *job = arg;
    job->ran = 1;
    json_t *rows = NULL;
    int rc = s_summaries (node, job, &rows);
    if (rc == GKX_OK) {
        job->reply = json_pack ("{s:o}", "partnerships", rows);
    }
    return rc;
}

/* GET /v1/partnerships: every partnership with its counterparty, status,
   offer name, heads and digest. */
static json_t *
s_partnerships_get (gkx_http_request_t *request, void *user, int *status_p)
{
    (void) request;
    s_job_t job;
    memset (&job, 0, sizeof job);
    return s_job_run (user, s_partnerships_fn, &job, status_p);
}

/* Reads one partnership's summary on the loop. */
static int
s_partnership_fn (gkx_node_t *node, void *arg)
{
    s_job_t *job = arg;
    job->ran = 1;
    gkx_partnership_t p;
    int rc = gkx_store_partnership (gkx_node_store (node), job->pid, &p);
    if (rc == GKX_ENOTFOUND) {
        char pid[GKX_ID_TEXT_BYTES];
        gkx_id_format (pid, job->pid);
        return s_job_fail (job, rc, 404, "not_found", "no partnership %s on this node", pid);
    }
    if (rc != GKX_OK) {
        return s_job_fail (job, rc, 500, "internal", "the store failed: %s", gkx_strerror (rc));
    }
    return s_summary_read (node, job, &p, &job->reply);
}

/* GET /v1/partnerships/{id}: one partnership's summary. */
static json_t *
s_partnership_get (gkx_http_request_t *request, void *user, int *status_p)
{
    s_job_t job;
    json_t *error = s_job_pid (&job, request, status_p);
    return error ? error : s_job_run (user, s_partnership_fn, &job, status_p);
}

/* Reads the offer on the loop. */
static int
s_offer_fn (gkx_node_t *node, void *arg)
{
    s_job_t *job = arg;
    job->ran = 1;
    s_view_t view;
    int rc = s_view_open (&view, node, job);
    if (rc == GKX_OK) {
        job->reply = s_view_offer (&view);
    }
    s_view_close (&view);
    return rc;
}

/* GET /v1/partnerships/{id}/offer[?digest=1]: the offer and its state
   digest, or only the digest. */
static json_t *
s_offer_get (gkx_http_request_t *request, void *user, int *status_p)
{
    s_job_t job;
    json_t *error = s_job_pid (&job, request, status_p);
    if (error) {
        return error;
    }
    const char *digest_only = gkx_http_query (request, "digest");
    if (digest_only && strcmp (digest_only, "0") != 0 && strcmp (digest_only, "1") != 0
        && strcmp (digest_only, "") != 0) {
        return gkx_http_error (status_p, 400, "bad_query", "digest: expected 1 or 0");
    }
    json_t *reply = s_job_run (user, s_offer_fn, &job, status_p);
    if (*status_p == 200 && digest_only && strcmp (digest_only, "0") != 0) {
        json_object_del (reply, "offer");
    }
    return reply;
}

/* Returns 1 when applying every operation of ops to offer changes nothing. */
static int
s_ops_is_noop (const gkx_offer_t *offer, const gkx_offer_ops_t *ops)
{
    char errbuf[GKX_ERRBUF_BYTES];
    gkx_offer_t *copy = gkx_offer_dup (offer);
    for (size_t i = 0; i < gkx_offer_ops_size (ops); i++) {
        if (gkx_offer_apply (copy, ops, i, NULL, NULL, errbuf) != GKX_OK) {
            gkx_offer_destroy (&copy);
            return 0;
        }
    }
    int same = gkx_offer_is_equal (copy, offer);
    gkx_offer_destroy (&copy);
    return same;
}

/* On the loop: turns the job's patch or edits into operations on the
   current offer and checks them. Returns GKX_OK with *ops_p (ours), or the
   job's error. */
static int
s_ops_build (s_job_t *job, s_view_t *view, gkx_offer_ops_t **ops_p)
{
    const gkx_offer_t *current = gkx_merge_offer (view->merge);
    gkx_offer_ops_t *ops = gkx_offer_ops_new ();
    char errbuf[GKX_ERRBUF_BYTES] = "";
    int rc = GKX_OK;
    if (job->patch) {
        rc = gkx_offer_ops_from_patch (ops, current, job->patch, errbuf);
    }
    for (size_t i = 0; rc == GKX_OK && i < job->edits_count; i++) {
        rc = gkx_offer_ops_parse_edit (ops, current, job->edits[i], errbuf);
    }
    if (rc != GKX_OK) {
        gkx_offer_ops_destroy (&ops);
        return s_job_fail (job, rc, 400, "invalid_edit", "%s", errbuf);
    }
    if (gkx_offer_ops_size (ops) == 0 || s_ops_is_noop (current, ops)) {
        gkx_offer_ops_destroy (&ops);
        return s_job_fail (job, GKX_EINVAL, 400, "no_changes", "%s",
                           job->noop_message ? job->noop_message
                                             : "no changes: the offer already has these values");
    }
    rc = gkx_merge_check (view->merge, job->kind, view->p.self_role, ops, errbuf);
    if (rc == GKX_EPOLICY) {
        gkx_offer_ops_destroy (&ops);
        return s_job_fail (job, rc, 403, "forbidden", "%s", errbuf);
    }
    if (rc != GKX_OK) {
        gkx_offer_ops_destroy (&ops);
        return s_job_fail (job, rc, 400, "invalid_edit", "%s", errbuf);
    }
    *ops_p = ops;
    return GKX_OK;
}

/* On the loop: appends an entry of this node to the job's partnership.
   Returns GKX_OK with *entry_p (ours), or the job's error. */
static int
s_append (gkx_node_t *node, s_job_t *job, int kind, const uint8_t *body, size_t len,
          gkx_entry_t **entry_p)
{
    char errbuf[GKX_ERRBUF_BYTES] = "";
    int rc = gkx_node_append (node, job->pid, kind, body, len, entry_p, errbuf);
    if (rc == GKX_OK) {
        return GKX_OK;
    }
    if (rc == GKX_EPOLICY) {
        return s_job_fail (job, rc, 403, "forbidden", "%s", errbuf);
    }
    if (rc == GKX_EFROZEN) {
        return s_job_fail (job, rc, 409, "frozen",
                           "the partnership is frozen (equivocation seen): %s", errbuf);
    }
    if (rc == GKX_EAHEAD) {
        return s_job_fail (job, rc, 503, "catching_up",
                           "the counterparty holds entries of ours that this node lacks; "
                           "retry once they are taken back: %s",
                           errbuf);
    }
    return s_job_fail (job, rc, 500, "internal", "the entry was not written: %s",
                       errbuf[0] ? errbuf : gkx_strerror (rc));
}

/* On the loop: refuses writes to a frozen partnership. */
static int
s_view_writable (const s_view_t *view, s_job_t *job)
{
    if (view->p.is_frozen) {
        return s_job_fail (job, GKX_EFROZEN, 409, "frozen",
                           "the partnership is frozen: equivocation was seen; nothing more can "
                           "be written to it");
    }
    return GKX_OK;
}

/* Edits or proposes on the loop: build, check and append in one call. */
static int
s_write_fn (gkx_node_t *node, void *arg)
{
    s_job_t *job = arg;
    job->ran = 1;
    s_view_t view;
    gkx_offer_ops_t *ops = NULL;
    gkx_entry_t *entry = NULL;
    uint8_t *body = NULL;
    size_t len = 0;
    char errbuf[GKX_ERRBUF_BYTES] = "";
    int rc = s_view_open (&view, node, job);
    if (rc == GKX_OK) {
        rc = s_view_writable (&view, job);
    }
    if (rc == GKX_OK) {
        rc = s_ops_build (job, &view, &ops);
    }
    if (rc == GKX_OK && gkx_offer_ops_encode (ops, &body, &len, errbuf) != GKX_OK) {
        rc = s_job_fail (job, GKX_EINVAL, 400, "invalid_edit", "%s", errbuf);
    }
    if (rc == GKX_OK) {
        rc = s_append (node, job, job->kind, body, len, &entry);
    }
    if (rc == GKX_OK && job->kind == GKX_KIND_PROPOSE) {
        job->reply = json_pack ("{s:o, s:o, s:o}", "proposal",
                                s_hex_json (gkx_entry_hash (entry), GKX_HASH_BYTES), "entry",
                                s_entry_ref (entry, view.p.self_role), "ops",
                                gkx_offer_ops_to_json (ops));
        job->status = 201;
    }
    else if (rc == GKX_OK) {
        job->reply = s_view_written (&view, entry);
    }
    gkx_entry_destroy (&entry);
    gkx_free (body);
    gkx_offer_ops_destroy (&ops);
    s_view_close (&view);
    return rc;
}

/* Reads {"patch": {...}} or {"edits": ["PATH=VALUE", ...]} into the job
   (the strings stay borrowed from body); on failure returns the 400 reply,
   else NULL. */
static json_t *
s_job_edits (s_job_t *job, const json_t *body, int *status_p)
{
    if (!json_is_object (body)) {
        return gkx_http_error (status_p, 400, "bad_request",
                               "expected {\"edits\": [\"PATH=VALUE\", ...]} or "
                               "{\"patch\": {...}}");
    }
    const char *name;
    json_t *value;
    json_object_foreach ((json_t *) body, name, value) {
        if (strcmp (name, "edits") != 0 && strcmp (name, "patch") != 0) {
            return gkx_http_error (status_p, 400, "bad_request",
                                   "unknown member \"%.64s\"; expected \"edits\" or \"patch\"",
                                   name);
        }
    }
    const json_t *patch = json_object_get (body, "patch");
    const json_t *edits = json_object_get (body, "edits");
    if (!patch == !edits) {
        return gkx_http_error (status_p, 400, "bad_request",
                               "give exactly one of \"edits\" and \"patch\"");
    }
    if (patch) {
        if (!json_is_object (patch)) {
            return gkx_http_error (status_p, 400, "bad_request",
                                   "patch: must be an object (an RFC 7386 merge patch of the "
                                   "offer)");
        }
        job->patch = patch;
        return NULL;
    }
    size_t count = json_array_size (edits);
    if (!json_is_array (edits) || count == 0 || count > GKX_OFFER_OPS_MAX) {
        return gkx_http_error (status_p, 400, "bad_request",
                               "edits: must be an array of 1 to %d strings", GKX_OFFER_OPS_MAX);
    }
    job->edits = gkx_zalloc (count * sizeof *job->edits);
    for (size_t i = 0; i < count; i++) {
        const json_t *edit = json_array_get (edits, i);
        job->edits[i] = json_string_value (edit);
        if (!job->edits[i] || strlen (job->edits[i]) != json_string_length (edit)) {
            gkx_free (job->edits);
            job->edits = NULL;
            return gkx_http_error (status_p, 400, "bad_request",
                                   "edits[%zu]: must be a string PATH=VALUE without NUL", i);
        }
    }
    job->edits_count = count;
    return NULL;
}

/* Runs an edit or proposal of kind from the request body. */
static json_t *
s_write (gkx_http_request_t *request, void *user, int *status_p, int kind)
{
    s_job_t job;
    json_t *error = s_job_pid (&job, request, status_p);
    if (!error) {
        error = s_job_edits (&job, gkx_http_body (request), status_p);
    }
    if (error) {
        return error;
    }
    job.kind = kind;
    json_t *reply = s_job_run (user, s_write_fn, &job, status_p);
    gkx_free (job.edits);
    return reply;
}

/* PATCH /v1/partnerships/{id}/offer {"edits": [...]} or {"patch": {...}}:
   edits the offer; answers the new offer and digest. */
static json_t *
s_offer_patch (gkx_http_request_t *request, void *user, int *status_p)
{
    return s_write (request, user, status_p, GKX_KIND_EDIT);
}

/* POST /v1/partnerships/{id}/proposals {"edits": [...]} or {"patch":
   {...}}: proposes a change; answers the proposal id. */
static json_t *
s_proposals_post (gkx_http_request_t *request, void *user, int *status_p)
{
    return s_write (request, user, status_p, GKX_KIND_PROPOSE);
}

/* Runs the one edit status=VALUE, for pause and resume. */
static json_t *
s_set_status (gkx_http_request_t *request, void *user, int *status_p, const char *edit,
              const char *noop_message)
{
    s_job_t job;
    json_t *error = s_job_pid (&job, request, status_p);
    if (error) {
        return error;
    }
    if (!s_body_is_empty (gkx_http_body (request))) {
        return gkx_http_error (status_p, 400, "bad_request", "this request takes no body");
    }
    const char *edits[] = {edit};
    job.kind = GKX_KIND_EDIT;
    job.edits = edits;
    job.edits_count = 1;
    job.noop_message = noop_message;
    return s_job_run (user, s_write_fn, &job, status_p);
}

/* POST /v1/partnerships/{id}/pause: the edit status=paused. */
static json_t *
s_pause (gkx_http_request_t *request, void *user, int *status_p)
{
    return s_set_status (request, user, status_p, "status=paused",
                         "no changes: the offer is already paused");
}

/* POST /v1/partnerships/{id}/resume: the edit status=active. */
static json_t *
s_resume (gkx_http_request_t *request, void *user, int *status_p)
{
    return s_set_status (request, user, status_p, "status=active",
                         "no changes: the offer is already active");
}

/* Reads the change log (job->kind GKX_KIND_EDIT) or the proposals
   (GKX_KIND_PROPOSE) on the loop, with each record's finality. */
static int
s_records_fn (gkx_node_t *node, void *arg)
{
    s_job_t *job = arg;
    job->ran = 1;
    s_view_t view;
    int rc = s_view_open (&view, node, job);
    if (rc == GKX_OK) {
        char *advertiser = NULL;
        char *publisher = NULL;
        int proposals = job->kind == GKX_KIND_PROPOSE;
        s_view_names (&view, node, &advertiser, &publisher);
        json_t *records = proposals ? gkx_merge_proposals (view.merge, advertiser, publisher)
                                    : gkx_merge_changes (view.merge, advertiser, publisher);
        s_mark_final (&view, records);
        job->reply = json_pack ("{s:o}", proposals ? "proposals" : "changes", records);
        gkx_free (advertiser);
        gkx_free (publisher);
    }
    s_view_close (&view);
    return rc;
}

/* GET /v1/partnerships/{id}/changes: the change log. */
static json_t *
s_changes_get (gkx_http_request_t *request, void *user, int *status_p)
{
    s_job_t job;
    json_t *error = s_job_pid (&job, request, status_p);
    job.kind = GKX_KIND_EDIT;
    return error ? error : s_job_run (user, s_records_fn, &job, status_p);
}

/* GET /v1/partnerships/{id}/proposals: the proposals and their answers. */
static json_t *
s_proposals_get (gkx_http_request_t *request, void *user, int *status_p)
{
    s_job_t job;
    json_t *error = s_job_pid (&job, request, status_p);
    job.kind = GKX_KIND_PROPOSE;
    return error ? error : s_job_run (user, s_records_fn, &job, status_p);
}

/* Returns the status of proposal id in a proposal list, or "unknown". */
static const char *
s_proposal_status (const json_t *proposals, const char *id)
{
    size_t i;
    json_t *record;
    json_array_foreach (proposals, i, record) {
        const char *rid = json_string_value (json_object_get (record, "id"));
        if (rid && strcmp (rid, id) == 0) {
            return json_string_value (json_object_get (record, "status"));
        }
    }
    return "unknown";
}

/* Answers a proposal on the loop: find, check and append in one call. */
static int
s_answer_fn (gkx_node_t *node, void *arg)
{
    s_job_t *job = arg;
    job->ran = 1;
    s_view_t view;
    uint8_t proposal[GKX_MERGE_HASH_BYTES];
    uint8_t *body = NULL;
    size_t len = 0;
    gkx_entry_t *entry = NULL;
    char errbuf[GKX_ERRBUF_BYTES] = "";
    int rc = s_view_open (&view, node, job);
    if (rc == GKX_OK) {
        rc = s_view_writable (&view, job);
    }
    if (rc == GKX_OK) {
        rc = gkx_merge_proposal_find (view.merge, proposal, job->proposal, errbuf);
        if (rc == GKX_ENOTFOUND) {
            s_job_fail (job, rc, 404, "not_found", "%s", errbuf);
        }
        else if (rc != GKX_OK) {
            s_job_fail (job, rc, 400, "bad_proposal_id", "%s", errbuf);
        }
    }
    if (rc == GKX_OK) {
        rc = gkx_merge_check_answer (view.merge, view.p.self_role, job->answer, proposal, errbuf);
        if (rc == GKX_EPOLICY) {
            s_job_fail (job, rc, 403, "forbidden", "%s", errbuf);
        }
        else if (rc == GKX_ENOTFOUND) {
            s_job_fail (job, rc, 404, "not_found", "%s", errbuf);
        }
        else if (rc != GKX_OK) {
            s_job_fail (job, rc, 409, "conflict", "%s", errbuf);
        }
    }
    if (rc == GKX_OK
        && gkx_merge_answer_encode (&body, &len, job->answer, proposal) != GKX_OK) {
        rc = s_job_fail (job, GKX_EINVAL, 500, "internal", "the answer could not be encoded");
    }
    if (rc == GKX_OK) {
        rc = s_append (node, job, GKX_KIND_ANSWER, body, len, &entry);
    }
    if (rc == GKX_OK) {
        static const char *const words[] = {"", "accept", "decline", "withdraw"};
        json_t *id = s_hex_json (proposal, GKX_MERGE_HASH_BYTES);
        job->reply = s_view_written (&view, entry);
        json_t *proposals = gkx_merge_proposals (view.merge, NULL, NULL);
        json_object_set_new (job->reply, "proposal_status",
                             json_string (s_proposal_status (proposals, json_string_value (id))));
        json_object_set_new (job->reply, "proposal", id);
        json_object_set_new (job->reply, "answer", json_string (words[job->answer]));
        json_decref (proposals);
    }
    gkx_entry_destroy (&entry);
    gkx_free (body);
    s_view_close (&view);
    return rc;
}

/* Answers proposal {proposal} of partnership {id} with answer. */
static json_t *
s_answer (gkx_http_request_t *request, void *user, int *status_p, int answer)
{
    s_job_t job;
    json_t *error = s_job_pid (&job, request, status_p);
    if (error) {
        return error;
    }
    if (!s_body_is_empty (gkx_http_body (request))) {
        return gkx_http_error (status_p, 400, "bad_request", "this request takes no body");
    }
    job.proposal = gkx_http_segment (request, 1);
    job.answer = answer;
    return s_job_run (user, s_answer_fn, &job, status_p);
}

/* POST /v1/partnerships/{id}/proposals/{proposal}/accept. */
static json_t *
s_accept (gkx_http_request_t *request, void *user, int *status_p)
{
    return s_answer (request, user, status_p, GKX_MERGE_ACCEPT);
}

/* POST /v1/partnerships/{id}/proposals/{proposal}/decline. */
static json_t *
s_decline (gkx_http_request_t *request, void *user, int *status_p)
{
    return s_answer (request, user, status_p, GKX_MERGE_DECLINE);
}

/* POST /v1/partnerships/{id}/proposals/{proposal}/withdraw. */
static json_t *
s_withdraw (gkx_http_request_t *request, void *user, int *status_p)
{
    return s_answer (request, user, status_p, GKX_MERGE_WITHDRAW);
}

/* Writes the export on the loop. */
static int
s_export_fn (gkx_node_t *node, void *arg)
{
    s_job_t *job = arg;
    job->ran = 1;
    char errbuf[GKX_ERRBUF_BYTES] = "";
    uint64_t now = s_now_ms ();
    int rc = gkx_export_write (gkx_node_store (node), job->pid,
                               gkx_identity_id (gkx_node_identity (node)), now, job->path,
                               errbuf);
    if (rc == GKX_ENOTFOUND) {
        char pid[GKX_ID_TEXT_BYTES];
        gkx_id_format (pid, job->pid);
        return s_job_fail (job, rc, 404, "not_found", "no partnership %s on this node", pid);
    }
    if (rc != GKX_OK) {
        return s_job_fail (job, rc, 500, "io_error", "%s",
                           errbuf[0] ? errbuf : gkx_strerror (rc));
    }
    char pid[GKX_ID_TEXT_BYTES];
    char when[GKX_HLC_TEXT_BYTES];
    gkx_id_format (pid, job->pid);
    gkx_hlc_format (when, sizeof when, now << GKX_HLC_COUNTER_BITS);
    job->reply = json_pack ("{s:s, s:s, s:s}", "partnership", pid, "path", job->path,
                            "exported_at", when);
    return GKX_OK;
}

/* On the loop: the export, in memory, into job->text and job->text_len. */
static int
s_export_bytes_fn (gkx_node_t *node, void *arg)
{
    s_job_t *job = arg;
    job->ran = 1;
    char errbuf[GKX_ERRBUF_BYTES] = "";
    char *data = NULL;
    size_t len = 0;
    FILE *out = open_memstream (&data, &len);
    if (!out) {
        return s_job_fail (job, GKX_EIO, 500, "io_error", "export: %s", strerror (errno));
    }
    int rc = gkx_export_stream (gkx_node_store (node), job->pid,
                                gkx_identity_id (gkx_node_identity (node)), s_now_ms (), out,
                                errbuf);
    fclose (out);
    if (rc == GKX_OK) {
        job->text = gkx_memdup (data, len);
        job->text_len = len;
    }
    free (data);
    if (rc == GKX_ENOTFOUND) {
        char pid[GKX_ID_TEXT_BYTES];
        gkx_id_format (pid, job->pid);
        return s_job_fail (job, rc, 404, "not_found", "no partnership %s on this node", pid);
    }
    if (rc != GKX_OK) {
        return s_job_fail (job, rc, 500, "io_error", "%s", errbuf[0] ? errbuf : gkx_strerror (rc));
    }
    return GKX_OK;
}

/* GET /v1/partnerships/{id}/export: the partnership's log as the reply's
   body, for the client to keep where it likes (gkx export PID FILE). */
static json_t *
s_export_get (gkx_http_request_t *request, void *user, int *status_p)
{
    s_job_t job;
    json_t *error = s_job_pid (&job, request, status_p);
    if (error) {
        return error;
    }
    json_t *reply = s_job_run (user, s_export_bytes_fn, &job, status_p);
    if (job.text) {
        json_decref (reply);
        reply = gkx_http_reply_typed (request, S_EXPORT_TYPE, job.text, job.text_len);
        gkx_free (job.text);
    }
    return reply;
}

/* Returns NULL when dir (a real path) is the node's export directory,
   made on first use, else the 403 reply. The node writes with its own
   rights, so a path anywhere would let the token's holder replace any file
   the node's user may write (its keys, its store, a shell's profile). */
static json_t *
s_export_dir_check (gkx_node_t *node, const char *dir, const char *path, int *status_p)
{
    char exports[S_PATH_BYTES];
    int len = snprintf (exports, sizeof exports, "%s/" S_EXPORT_DIR, gkx_node_dir (node));
    if (len < 0 || (size_t) len >= sizeof exports) {
        return gkx_http_error (status_p, 400, "bad_path", "path: the node directory is too long");
    }
    if (mkdir (exports, 0700) != 0 && errno != EEXIST) {
        return gkx_http_error (status_p, 500, "io_error", "export directory %.200s: %s",
                               exports, strerror (errno));
    }
    char *real_exports = realpath (exports, NULL);
    char *real_dir = realpath (dir, NULL);
    int inside = real_exports && real_dir && strcmp (real_exports, real_dir) == 0;
    json_t *reply = inside ? NULL
        : gkx_http_error (status_p, 403, "forbidden",
                          "path: %.200s is outside the node's export directory %.200s; the node "
                          "writes exports only there (GET the export to keep it elsewhere)",
                          path, real_exports ? real_exports : exports);
    free (real_exports);
    free (real_dir);
    return reply;
}

/* POST /v1/partnerships/{id}/export {"path": "/abs/file"}: the node writes
   the partnership's log to that file (replaced atomically), which must be in
   the node's export directory DIR/exports. */
static json_t *
s_export (gkx_http_request_t *request, void *user, int *status_p)
{
    s_job_t job;
    json_t *error = s_job_pid (&job, request, status_p);
    if (error) {
        return error;
    }
    const json_t *path = json_object_get (gkx_http_body (request), "path");
    const char *text = json_string_value (path);
    if (!text || strlen (text) != json_string_length (path)) {
        return gkx_http_error (status_p, 400, "bad_request",
                               "expected {\"path\": \"/absolute/file\"} (a string without NUL)");
    }
    if (text[0] != '/') {
        return gkx_http_error (status_p, 400, "bad_path",
                               "path: \"%.128s\" is relative; give an absolute path", text);
    }
    size_t len = strlen (text);
    const char *slash = strrchr (text, '/');
    if (len >= S_PATH_BYTES || slash[1] == '\0') {
        return gkx_http_error (status_p, 400, "bad_path", "path: must name a file%s",
                               len >= S_PATH_BYTES ? " (too long)" : "");
    }
    char dir[S_PATH_BYTES];
    size_t dir_len = slash == text ? 1 : (size_t) (slash - text);
    memcpy (dir, text, dir_len);
    dir[dir_len] = '\0';
    if (strcmp (slash + 1, ".") == 0 || strcmp (slash + 1, "..") == 0) {
        return gkx_http_error (status_p, 400, "bad_path", "path: must name a file");
    }
    /* Before anything else is looked at, so a refused path tells nothing of
       the file system either. */
    error = s_export_dir_check (user, dir, text, status_p);
    if (error) {
        return error;
    }
    struct stat st;
    if (stat (dir, &st) != 0) {
        return gkx_http_error (status_p, 400, "bad_path", "path: directory %.200s: %s", dir,
                               strerror (errno));
    }
    if (!S_ISDIR (st.st_mode)) {
        return gkx_http_error (status_p, 400, "bad_path", "path: %.200s is not a directory",
                               dir);
    }
    job.path = text;
    return s_job_run (user, s_export_fn, &job, status_p);
}

/* ---------------------------------------------------------------------- */
/* Conversions, reports and the postback URL                               */

/* Default and largest number of conversions listed at once. */
#define S_LIST_DEFAULT 1000
#define S_LIST_MAX 100000
/* Shortest conversion id prefix accepted. */
#define S_CONVERSION_PREFIX_MIN 8

/* Writes Unix seconds as an ISO 8601 UTC time. */
static void
s_iso_time (char out[32], uint64_t seconds)
{
    time_t t = (time_t) seconds;
    struct tm tm;
    gmtime_r (&t, &tm);
    strftime (out, 32, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

/* Returns a text as a JSON string, or null for "". */
static json_t *
s_text_or_null (const char *text)
{
    return text && text[0] ? json_string (text) : json_null ();
}

/* Returns an amount of micro-units as its decimal text. */
static json_t *
s_amount_json (int64_t micro)
{
    char text[GKX_REPORT_AMOUNT_TEXT_BYTES];
    gkx_report_amount_text (text, micro);
    return json_string (text);
}

/* Returns the JSON record of a conversion entry and what the store keeps
   of it (docs/api.md). */
static json_t *
s_conversion_json (const gkx_entry_t *entry, const gkx_store_conversion_t *record)
{
    size_t len;
    const uint8_t *body = gkx_entry_body (entry, &len);
    gkx_conversion_t *c = gkx_zalloc (sizeof *c);
    if (gkx_conversion_decode (c, body, len, NULL) != GKX_OK) {
        gkx_free (c);
        return NULL;
    }
    char time[32];
    char recorded[GKX_HLC_TEXT_BYTES];
    char locks[32];
    s_iso_time (time, c->time);
    gkx_hlc_format (recorded, sizeof recorded, gkx_entry_hlc (entry));
    s_iso_time (locks, gkx_conversion_lock_time (c->time, record->hold_days));
    json_t *sub = json_object ();
    for (int i = 0; i < GKX_CONVERSION_SUB_COUNT; i++) {
        if (c->sub[i][0]) {
            char name[8];
            snprintf (name, sizeof name, "sub%d", i + 1);
            json_object_set_new (sub, name, json_string (c->sub[i]));
        }
    }
    json_t *click_time = json_null ();
    if (c->click_time) {
        char text[32];
        s_iso_time (text, c->click_time);
        json_decref (click_time);
        click_time = json_string (text);
    }
    json_t *out = json_pack (
        "{s:o, s:I, s:s, s:s, s:s, s:s, s:o, s:o, s:o, s:o, s:o, s:s, s:s, s:o, s:s, s:o, "
        "s:I, s:s, s:o}",
        "id", s_hex_json (record->id, GKX_HASH_BYTES), "seq", (json_int_t) record->seq,
        "time", time, "recorded", recorded, "event", c->event, "click_id", c->click_id,
        "click_time", click_time, "country", s_text_or_null (c->country), "platform",
        s_text_or_null (c->platform), "sub", sub, "payout", s_amount_json (record->payout),
        "currency", c->currency, "status", gkx_conversion_status_name (record->status),
        "reason", s_text_or_null (record->reason), "initial_status",
        gkx_conversion_status_name (record->initial_status), "initial_reason",
        s_text_or_null (c->reason), "hold_days", (json_int_t) record->hold_days, "locks", locks,
        "flag", s_text_or_null (record->flag));
    gkx_free (c);
    return out;
}

json_t *
gkx_api_conversion_json (gkx_node_t *node, const uint8_t pid[GKX_ID_BYTES],
                         const uint8_t id[GKX_HASH_BYTES])
{
    gkx_store_t *store = gkx_node_store (node);
    gkx_store_conversion_t record;
    gkx_entry_t *entry = NULL;
    if (gkx_store_conversion (store, pid, id, &record) != GKX_OK
        || gkx_store_get (store, pid, GKX_ROLE_ADVERTISER, record.seq, &entry) != GKX_OK) {
        return NULL;
    }
    json_t *out = s_conversion_json (entry, &record);
    gkx_entry_destroy (&entry);
    return out;
}

/* Walk state of a conversion listing or lookup. */
typedef struct {
    gkx_node_t *node;
    s_job_t *job;
    json_t *rows;                       /* listing: the records */
    const char *prefix;                 /* lookup: the id prefix sought */
    size_t matches;                     /* lookup: ids matching it */
    uint8_t id[GKX_HASH_BYTES];         /* lookup: the first one */
    gkx_report_t *report;               /* report: the aggregator fed */
    int rc;                             /* a failure inside the walk */
} s_ledger_walk_t;

/* Lists one advertiser entry when it is a conversion from job->since on. */
static int
s_list_one (const gkx_entry_t *entry, void *arg)
{
    s_ledger_walk_t *walk = arg;
    if (gkx_entry_kind (entry) != GKX_KIND_CONVERSION) {
        return 0;
    }
    gkx_store_conversion_t record;
    int rc = gkx_store_conversion (gkx_node_store (walk->node), gkx_entry_pid (entry),
                                   gkx_entry_hash (entry), &record);
    if (rc != GKX_OK) {
        walk->rc = rc;
        return 1;
    }
    if (record.time < walk->job->since) {
        return 0;
    }
    json_t *row = s_conversion_json (entry, &record);
    if (!row) {
        walk->rc = GKX_ESTORE;
        return 1;
    }
    json_array_append_new (walk->rows, row);
    return json_array_size (walk->rows) >= walk->job->limit;
}

/* On the loop: the partnership's conversions. */
static int
s_conversions_fn (gkx_node_t *node, void *arg)
{
    s_job_t *job = arg;
    job->ran = 1;
    s_view_t view;
    int rc = s_view_open (&view, node, job);
    if (rc != GKX_OK) {
        return rc;
    }
    s_ledger_walk_t walk = {node, job, json_array (), NULL, 0, {0}, NULL, GKX_OK};
    rc = gkx_store_iterate (gkx_node_store (node), job->pid, GKX_ROLE_ADVERTISER, job->after + 1,
                            s_list_one, &walk);
    if (walk.rc != GKX_OK || (rc != GKX_OK && rc != 1)) {
        json_decref (walk.rows);
        return s_job_fail (job, GKX_ESTORE, 500, "internal", "the store failed reading conversions");
    }
    job->reply = json_pack ("{s:o, s:I, s:o}", "partnership",
                            s_hex_json (job->pid, GKX_ID_BYTES), "count",
                            (json_int_t) json_array_size (walk.rows), "conversions", walk.rows);
    return GKX_OK;
}

/* Parses a time given as Unix seconds, YYYY-MM-DD or YYYY-MM-DDTHH:MM:SSZ. */
static int
s_time_parse (const char *text, uint64_t *seconds_p)
{
    char *end = NULL;
    if (text[0] >= '0' && text[0] <= '9' && strlen (text) <= 12
        && strspn (text, "0123456789") == strlen (text)) {
        *seconds_p = strtoull (text, &end, 10);
        return GKX_OK;
    }
    uint64_t day = 0;
    if (strlen (text) == 10 && gkx_conversion_day_parse (&day, text, NULL) == GKX_OK) {
        *seconds_p = day * GKX_CONVERSION_DAY_SECONDS;
        return GKX_OK;
    }
    struct tm tm;
    memset (&tm, 0, sizeof tm);
    end = strptime (text, "%Y-%m-%dT%H:%M:%SZ", &tm);
    if (!end || *end || strlen (text) != 20) {
        return GKX_EINVAL;
    }
    time_t t = timegm (&tm);
    if (t < 0) {
        return GKX_EINVAL;
    }
    *seconds_p = (uint64_t) t;
    return GKX_OK;
}

/* Reads ?limit=N (1 to S_LIST_MAX) into job->limit; NULL or the 400. */
static json_t *
s_job_limit (s_job_t *job, gkx_http_request_t *request, int *status_p)
{
    const char *limit = gkx_http_query (request, "limit");
    job->limit = S_LIST_DEFAULT;
    if (limit) {
        char *end = NULL;
        unsigned long long n = strtoull (limit, &end, 10);
        if (!limit[0] || *end || limit[0] == '-' || n < 1 || n > S_LIST_MAX) {
            return gkx_http_error (status_p, 400, "bad_query",
                                   "limit: \"%.32s\" is not a number from 1 to %d", limit,
                                   S_LIST_MAX);
        }
        job->limit = (size_t) n;
    }
    return NULL;
}

/* GET /v1/partnerships/{id}/conversions?since=TIME&after=SEQ&limit=N */
static json_t *
s_conversions_get (gkx_http_request_t *request, void *user, int *status_p)
{
    s_job_t job;
    json_t *error = s_job_pid (&job, request, status_p);
    if (!error) {
        error = s_job_limit (&job, request, status_p);
    }
    if (error) {
        return error;
    }
    const char *since = gkx_http_query (request, "since");
    if (since && s_time_parse (since, &job.since) != GKX_OK) {
        return gkx_http_error (status_p, 400, "bad_query",
                               "since: \"%.64s\" is not Unix seconds, YYYY-MM-DD or "
                               "YYYY-MM-DDTHH:MM:SSZ",
                               since);
    }
    /* after=SEQ lists only what came since an earlier listing's last seq,
       without walking the conversions before it. */
    const char *after = gkx_http_query (request, "after");
    if (after) {
        char *end = NULL;
        job.after = strtoull (after, &end, 10);
        if (!after[0] || *end || after[0] == '-' || strlen (after) > 19) {
            return gkx_http_error (status_p, 400, "bad_query",
                                   "after: \"%.32s\" is not an entry seq", after);
        }
    }
    return s_job_run (user, s_conversions_fn, &job, status_p);
}

/* Notes one advertiser conversion whose id starts with the prefix sought. */
static int
s_find_one (const gkx_entry_t *entry, void *arg)
{
    s_ledger_walk_t *walk = arg;
    if (gkx_entry_kind (entry) != GKX_KIND_CONVERSION) {
        return 0;
    }
    char hex[2 * GKX_HASH_BYTES + 1];
    sodium_bin2hex (hex, sizeof hex, gkx_entry_hash (entry), GKX_HASH_BYTES);
    if (strncmp (hex, walk->prefix, strlen (walk->prefix)) == 0) {
        if (walk->matches++ == 0) {
            memcpy (walk->id, gkx_entry_hash (entry), GKX_HASH_BYTES);
        }
    }
    return 0;
}

/* On the loop: a status change of one conversion, written by the advertiser. */
static int
s_conversion_status_fn (gkx_node_t *node, void *arg)
{
    s_job_t *job = arg;
    job->ran = 1;
    s_view_t view;
    int rc = s_view_open (&view, node, job);
    if (rc == GKX_OK) {
        rc = s_view_writable (&view, job);
    }
    if (rc != GKX_OK) {
        return rc;
    }
    if (view.p.self_role != GKX_ROLE_ADVERTISER) {
        return s_job_fail (job, GKX_EPOLICY, 403, "forbidden",
                           "only the advertiser changes a conversion's status");
    }
    s_ledger_walk_t walk = {node, job, NULL, job->conversion, 0, {0}, NULL, GKX_OK};
    rc = gkx_store_iterate (gkx_node_store (node), job->pid, GKX_ROLE_ADVERTISER, 1, s_find_one,
                            &walk);
    if (rc != GKX_OK) {
        return s_job_fail (job, rc, 500, "internal", "the store failed reading conversions");
    }
    if (walk.matches != 1) {
        return s_job_fail (job, GKX_ENOTFOUND, walk.matches ? 400 : 404,
                           walk.matches ? "bad_request" : "not_found",
                           walk.matches ? "conversion id prefix %s matches %zu conversions"
                                        : "no conversion %s in this partnership",
                           job->conversion, walk.matches);
    }
    gkx_store_conversion_t before;
    rc = gkx_store_conversion (gkx_node_store (node), job->pid, walk.id, &before);
    if (rc != GKX_OK) {
        return s_job_fail (job, rc, 500, "internal", "the store failed reading the conversion");
    }
    gkx_conversion_change_t change;
    memset (&change, 0, sizeof change);
    memcpy (change.conversion, walk.id, GKX_HASH_BYTES);
    change.status = job->conversion_status;
    snprintf (change.reason, sizeof change.reason, "%s", job->reason ? job->reason : "");
    uint8_t *body = NULL;
    size_t len = 0;
    char errbuf[GKX_ERRBUF_BYTES] = "";
    rc = gkx_conversion_change_encode (&body, &len, &change, errbuf);
    if (rc != GKX_OK) {
        return s_job_fail (job, rc, 400, "bad_request", "%s", errbuf);
    }
    if (before.status == change.status) {
        gkx_free (body);
        return s_job_fail (job, GKX_EINVAL, 400, "no_changes",
                           "no changes: the conversion is already %s",
                           gkx_conversion_status_name (before.status));
    }
    rc = s_append (node, job, GKX_KIND_CONVERSION_STATUS, body, len, NULL);
    gkx_free (body);
    if (rc != GKX_OK) {
        return rc;
    }
    job->reply = gkx_api_conversion_json (node, job->pid, walk.id);
    if (job->reply) {
        json_object_set_new (job->reply, "previous_status",
                             json_string (gkx_conversion_status_name (before.status)));
    }
    return job->reply ? GKX_OK : s_job_fail (job, GKX_ESTORE, 500, "internal",
                                              "the conversion could not be read back");
}

/* POST /v1/partnerships/{id}/conversions/{cid}/status {"status", "reason"} */
static json_t *
s_conversion_status (gkx_http_request_t *request, void *user, int *status_p)
{
    s_job_t job;
    json_t *error = s_job_pid (&job, request, status_p);
    if (error) {
        return error;
    }
    job.conversion = gkx_http_segment (request, 1);
    size_t id_len = job.conversion ? strlen (job.conversion) : 0;
    if (id_len < S_CONVERSION_PREFIX_MIN || id_len > 2 * GKX_HASH_BYTES
        || strspn (job.conversion, "0123456789abcdef") != id_len) {
        return gkx_http_error (status_p, 400, "bad_request",
                               "conversion id: expected %d to %d lowercase hex digits",
                               S_CONVERSION_PREFIX_MIN, 2 * GKX_HASH_BYTES);
    }
    const json_t *body = gkx_http_body (request);
    const char *name;
    json_t *value;
    if (!json_is_object (body)) {
        return gkx_http_error (status_p, 400, "bad_request",
                               "expected {\"status\": \"approved|pending|rejected|reversed\", "
                               "\"reason\": \"...\"}");
    }
    json_object_foreach ((json_t *) body, name, value) {
        if (strcmp (name, "status") != 0 && strcmp (name, "reason") != 0) {
            return gkx_http_error (status_p, 400, "bad_request",
                                   "unknown member \"%.64s\"; expected \"status\" and "
                                   "\"reason\"",
                                   name);
        }
    }
    const char *status = json_string_value (json_object_get (body, "status"));
    if (!status || gkx_conversion_status_parse (status, &job.conversion_status) != GKX_OK) {
        return gkx_http_error (status_p, 400, "bad_request",
                               "status: expected approved, pending, rejected or reversed");
    }
    const json_t *reason = json_object_get (body, "reason");
    if (reason && !json_is_null (reason)) {
        job.reason = json_string_value (reason);
        if (!job.reason || strlen (job.reason) != json_string_length (reason)
            || strlen (job.reason) > GKX_CONVERSION_REASON_MAX) {
            return gkx_http_error (status_p, 400, "bad_request",
                                   "reason: expected a text of at most %d bytes without NUL",
                                   GKX_CONVERSION_REASON_MAX);
        }
    }
    return s_job_run (user, s_conversion_status_fn, &job, status_p);
}

/* Feeds one advertiser entry of a partnership to the report. */
static int
s_report_one (const gkx_entry_t *entry, void *arg)
{
    s_ledger_walk_t *walk = arg;
    int kind = gkx_entry_kind (entry);
    size_t len;
    const uint8_t *body = gkx_entry_body (entry, &len);
    int rc = GKX_OK;
    if (kind == GKX_KIND_CONVERSION) {
        gkx_store_conversion_t record;
        rc = gkx_store_conversion (gkx_node_store (walk->node), gkx_entry_pid (entry),
                                   gkx_entry_hash (entry), &record);
        if (rc == GKX_OK) {
            rc = gkx_report_add_conversion (walk->report, gkx_entry_hash (entry),
                                            gkx_entry_hlc (entry), record.hold_days, body, len,
                                            NULL);
        }
    }
    else if (kind == GKX_KIND_CONVERSION_STATUS) {
        rc = gkx_report_add_change (walk->report, gkx_entry_hash (entry), gkx_entry_hlc (entry),
                                    body, len, NULL);
    }
    if (rc != GKX_OK) {
        walk->rc = rc;
        return 1;
    }
    return 0;
}

/* Feeds every partnership's conversions to the report. */
static int
s_report_partnership (const gkx_partnership_t *p, void *arg)
{
    s_ledger_walk_t *walk = arg;
    int rc = gkx_store_iterate (gkx_node_store (walk->node), p->pid, GKX_ROLE_ADVERTISER, 1,
                                s_report_one, walk);
    return rc != GKX_OK ? 1 : 0;
}

/* On the loop: a report over one partnership or all of them. */
static int
s_report_fn (gkx_node_t *node, void *arg)
{
    s_job_t *job = arg;
    job->ran = 1;
    s_ledger_walk_t walk = {node, job, NULL, NULL, 0, {0}, gkx_report_new (), GKX_OK};
    int rc;
    if (job->all) {
        rc = gkx_store_partnerships (gkx_node_store (node), s_report_partnership, &walk);
    }
    else {
        s_view_t view;
        rc = s_view_open (&view, node, job);
        if (rc != GKX_OK) {
            gkx_report_destroy (&walk.report);
            return rc;
        }
        rc = gkx_store_iterate (gkx_node_store (node), job->pid, GKX_ROLE_ADVERTISER, 1,
                                s_report_one, &walk);
    }
    if (rc != GKX_OK || walk.rc != GKX_OK) {
        gkx_report_destroy (&walk.report);
        return s_job_fail (job, GKX_ESTORE, 500, "internal", "the store failed reading conversions");
    }
    gkx_report_table_t *table = NULL;
    char errbuf[GKX_ERRBUF_BYTES] = "";
    rc = gkx_report_table_open (&table, walk.report, &job->query, errbuf);
    gkx_report_destroy (&walk.report);
    if (rc != GKX_OK) {
        return s_job_fail (job, rc, rc == GKX_EINVAL ? 400 : 500,
                           rc == GKX_EINVAL ? "bad_query" : "internal", "%s", errbuf);
    }
    if (job->csv) {
        job->text = gkx_report_table_to_csv (table);
    }
    else {
        job->reply = gkx_report_table_to_json (table);
        json_object_set_new (job->reply, "partnership",
                             job->all ? json_null () : s_hex_json (job->pid, GKX_ID_BYTES));
    }
    gkx_report_table_destroy (&table);
    return GKX_OK;
}

/* GET /v1/report?partnership=ID&from=DAY&to=DAY&by=day|event|status|country&format=json|csv */
static json_t *
s_report_get (gkx_http_request_t *request, void *user, int *status_p)
{
    s_job_t job;
    memset (&job, 0, sizeof job);
    char errbuf[GKX_ERRBUF_BYTES] = "";
    const char *pid = gkx_http_query (request, "partnership");
    if (pid && gkx_id_parse (job.pid, pid, errbuf) != GKX_OK) {
        return gkx_http_error (status_p, 400, "bad_partnership_id", "partnership %s", errbuf);
    }
    job.all = pid == NULL;
    job.query.by = GKX_REPORT_BY_DAY;
    job.query.from_day = GKX_REPORT_OPEN;
    job.query.to_day = GKX_REPORT_OPEN;
    const char *by = gkx_http_query (request, "by");
    if (by && gkx_report_by_parse (by, &job.query.by, errbuf) != GKX_OK) {
        return gkx_http_error (status_p, 400, "bad_query", "by: %s", errbuf);
    }
    const char *names[2] = {"from", "to"};
    int64_t *days[2] = {&job.query.from_day, &job.query.to_day};
    for (int i = 0; i < 2; i++) {
        const char *text = gkx_http_query (request, names[i]);
        uint64_t day = 0;
        if (text && gkx_conversion_day_parse (&day, text, errbuf) != GKX_OK) {
            return gkx_http_error (status_p, 400, "bad_query", "%s: %s", names[i], errbuf);
        }
        if (text) {
            *days[i] = (int64_t) day;
        }
    }
    const char *format = gkx_http_query (request, "format");
    if (format && strcmp (format, "json") != 0 && strcmp (format, "csv") != 0) {
        return gkx_http_error (status_p, 400, "bad_query",
                               "format: \"%.32s\" is not json or csv", format);
    }
    job.csv = format && strcmp (format, "csv") == 0;
    json_t *reply = s_job_run (user, s_report_fn, &job, status_p);
    if (job.text) {
        json_decref (reply);
        reply = gkx_http_reply_typed (request, "text/csv; charset=utf-8", job.text,
                                      strlen (job.text));
        gkx_free (job.text);
    }
    return reply;
}

/* On the loop: checks that the job's partnership is this advertiser's. */
static int
s_advertiser_fn (gkx_node_t *node, void *arg)
{
    s_job_t *job = arg;
    job->ran = 1;
    s_view_t view;
    int rc = s_view_open (&view, node, job);
    if (rc == GKX_OK && view.p.self_role != GKX_ROLE_ADVERTISER) {
        rc = s_job_fail (job, GKX_EPOLICY, 403, "forbidden",
                         "postbacks go to the advertiser's node; this node is the publisher");
    }
    if (rc == GKX_OK) {
        job->reply = json_object ();
    }
    return rc;
}

/* GET /v1/partnerships/{id}/postback-url?mmp=NAME: the URL to paste into
   the MMP. */
static json_t *
s_postback_url (gkx_http_request_t *request, void *user, int *status_p)
{
    s_job_t job;
    json_t *error = s_job_pid (&job, request, status_p);
    if (error) {
        return error;
    }
    gkx_node_t *node = user;
    const gkx_config_t *config = gkx_node_config (node);
    const char *mmp = gkx_http_query (request, "mmp");
    char errbuf[GKX_ERRBUF_BYTES] = "";
    const char *name = NULL;
    if (!mmp) {
        return gkx_http_error (status_p, 400, "bad_query",
                               "mmp: missing; give appsflyer, adjust, branch, singular, kochava "
                               "or generic");
    }
    if (gkx_postback_mmp_find (&name, mmp, errbuf) != GKX_OK) {
        return gkx_http_error (status_p, 404, "not_found", "%s", errbuf);
    }
    if (!config->postback_listen) {
        return gkx_http_error (status_p, 409, "postbacks_off",
                               "this node serves no postback endpoint ([postback] listen = off)");
    }
    json_t *reply = s_job_run (user, s_advertiser_fn, &job, status_p);
    if (*status_p != 200) {
        return reply;
    }
    char token[GKX_POSTBACK_TOKEN_BUF_BYTES];
    if (gkx_config_postback_token (gkx_node_dir (node), token, 0, errbuf) != GKX_OK) {
        json_decref (reply);
        return gkx_http_error (status_p, 500, "internal", "%s", errbuf);
    }
    char short_id[GKX_STORE_SHORT_ID_CHARS + 1];
    gkx_store_short_id (short_id, job.pid);
    char *url = gkx_postback_url (name, config->postback_base_url, short_id, token, errbuf);
    sodium_memzero (token, sizeof token);
    if (!url) {
        json_decref (reply);
        return gkx_http_error (status_p, 500, "internal", "%s", errbuf);
    }
    json_object_set_new (reply, "mmp", json_string (name));
    json_object_set_new (reply, "short_id", json_string (short_id));
    json_object_set_new (reply, "url", json_string (url));
    gkx_free (url);
    return reply;
}

/* On the loop: the webhook's deliveries. */
static int
s_deliveries_fn (gkx_node_t *node, void *arg)
{
    s_job_t *job = arg;
    job->ran = 1;
    job->reply = gkx_webhook_deliveries_json (node, job->limit);
    return job->reply ? GKX_OK
                      : s_job_fail (job, GKX_ESTORE, 500, "internal",
                                    "the store failed reading deliveries");
}

/* GET /v1/deliveries?limit=N */
static json_t *
s_deliveries_get (gkx_http_request_t *request, void *user, int *status_p)
{
    s_job_t job;
    memset (&job, 0, sizeof job);
    json_t *error = s_job_limit (&job, request, status_p);
    return error ? error : s_job_run (user, s_deliveries_fn, &job, status_p);
}

/* On the loop: the e-mail outbox. */
static int
s_notifications_fn (gkx_node_t *node, void *arg)
{
    s_job_t *job = arg;
    job->ran = 1;
    job->reply = gkx_notifier_messages_json (node, job->limit);
    return job->reply ? GKX_OK
                      : s_job_fail (job, GKX_ESTORE, 500, "internal",
                                    "the store failed reading the e-mail outbox");
}

/* GET /v1/notifications?limit=N */
static json_t *
s_notifications_get (gkx_http_request_t *request, void *user, int *status_p)
{
    s_job_t job;
    memset (&job, 0, sizeof job);
    json_t *error = s_job_limit (&job, request, status_p);
    return error ? error : s_job_run (user, s_notifications_fn, &job, status_p);
}

/* On the loop: queues one delivery again. */
static int
s_replay_fn (gkx_node_t *node, void *arg)
{
    s_job_t *job = arg;
    job->ran = 1;
    char errbuf[GKX_ERRBUF_BYTES] = "";
    int rc = gkx_webhook_replay (node, gkx_node_webhook (node), job->delivery, &job->reply, errbuf);
    if (rc == GKX_ENOTFOUND) {
        return s_job_fail (job, rc, 404, "not_found", "%s", errbuf);
    }
    if (rc == GKX_EINVAL) {
        return s_job_fail (job, rc, 409, "no_webhook", "%s", errbuf);
    }
    if (rc != GKX_OK) {
        return s_job_fail (job, rc, 500, "internal", "%s", errbuf);
    }
    job->status = 202;
    return GKX_OK;
}

/* POST /v1/deliveries/{id}/replay */
static json_t *
s_replay (gkx_http_request_t *request, void *user, int *status_p)
{
    s_job_t job;
    memset (&job, 0, sizeof job);
    const char *text = gkx_http_segment (request, 0);
    char *end = NULL;
    unsigned long long id = text && text[0] >= '1' && text[0] <= '9' ? strtoull (text, &end, 10)
                                                                     : 0;
    if (id == 0 || *end || strlen (text) > 19) {
        return gkx_http_error (status_p, 400, "bad_request",
                               "delivery id: expected a whole number from 1");
    }
    if (!s_body_is_empty (gkx_http_body (request))) {
        return gkx_http_error (status_p, 400, "bad_request", "this request takes no body");
    }
    job.delivery = id;
    return s_job_run (user, s_replay_fn, &job, status_p);
}

/* Writes a family of one sample without labels. */
static void
s_metric (gkx_metrics_t *m, const char *name, gkx_metrics_type_t type, const char *help,
          double value)
{
    gkx_metrics_family (m, name, type, help);
    gkx_metrics_sample (m, NULL, 0, value);
}

/* Writes one sample with one label. */
static void
s_metric_labelled (gkx_metrics_t *m, const char *label, const char *value, double number)
{
    gkx_metrics_label_t one = {label, value};
    gkx_metrics_sample (m, &one, 1, number);
}

/* Returns 1 for the codes of the ingest rules (gkx_store_ingest), which
   GET /metrics lists as refusal reasons even while they count 0. */
static int
s_is_ingest_rule (int code)
{
    static const int rules[] = {GKX_ESIGNATURE, GKX_ENOTMEMBER, GKX_EGAP,          GKX_EPREV,
                                GKX_ECROSSLINK, GKX_EAHEAD,     GKX_ECLOCK,        GKX_EFROZEN,
                                GKX_EPOLICY,    GKX_EDECODE,    GKX_EEQUIVOCATION};
    for (size_t i = 0; i < sizeof rules / sizeof rules[0]; i++) {
        if (rules[i] == code) {
            return 1;
        }
    }
    return 0;
}

/* Writes the replication families: entries, refusals, peers and their lag. */
static void
s_metrics_replication (gkx_metrics_t *m, gkx_node_t *node)
{
    json_t *stats = gkx_node_stats_json (node);
    json_t *peers = gkx_node_peers_json (node);
    size_t i;
    s_metric (m, "gkx_entries_appended_total", GKX_METRICS_COUNTER,
              "Entries this node wrote to its own chains since it started.",
              (double) json_integer_value (json_object_get (stats, "entries_appended")));
    s_metric (m, "gkx_entries_ingested_total", GKX_METRICS_COUNTER,
              "Counterparty entries received and stored since the node started.",
              (double) json_integer_value (json_object_get (stats, "entries_ingested")));
    s_metric (m, "gkx_entries_duplicate_total", GKX_METRICS_COUNTER,
              "Entries received again that the store held already, since the node started.",
              (double) json_integer_value (json_object_get (stats, "duplicates")));
    gkx_metrics_family (m, "gkx_entries_refused_total", GKX_METRICS_COUNTER,
                        "Entries and messages refused since the node started, by the rule "
                        "broken (the GKX_E* code).");
    json_t *refused = json_object_get (stats, "refused");
    for (int code = 1; code < GKX_ECODE_COUNT; code++) {
        json_t *count = json_object_get (refused, gkx_errname (code));
        if (count || s_is_ingest_rule (code)) {
            s_metric_labelled (m, "reason", gkx_errname (code), (double) json_integer_value (count));
        }
    }
    s_metric (m, "gkx_frames_malformed_total", GKX_METRICS_COUNTER,
              "Replication messages that did not decode, since the node started.",
              (double) json_integer_value (json_object_get (stats, "bad_frames")));
    json_t *peer;
    double connected = 0;
    json_array_foreach (peers, i, peer) {
        connected += json_is_true (json_object_get (peer, "connected"));
    }
    s_metric (m, "gkx_peers", GKX_METRICS_GAUGE, "Peers known to the node.",
              (double) json_array_size (peers));
    s_metric (m, "gkx_peers_connected", GKX_METRICS_GAUGE,
              "Peers heard from in the last 3.5 seconds.", connected);
    gkx_metrics_family (m, "gkx_replication_lag_entries", GKX_METRICS_GAUGE,
                        "Entries of this node that the peer has not acknowledged yet.");
    json_array_foreach (peers, i, peer) {
        s_metric_labelled (m, "peer", json_string_value (json_object_get (peer, "id")),
                           (double) json_integer_value (json_object_get (peer, "lag_entries")));
    }
    gkx_metrics_family (m, "gkx_replication_lag_seconds", GKX_METRICS_GAUGE,
                        "Age of the oldest entry of this node that the peer has not "
                        "acknowledged, 0 when it has them all.");
    json_array_foreach (peers, i, peer) {
        s_metric_labelled (m, "peer", json_string_value (json_object_get (peer, "id")),
                           json_number_value (json_object_get (peer, "lag_seconds")));
    }
    json_decref (peers);
    json_decref (stats);
}

/* Writes the postback families: the answers of the postback endpoint (the
   node's own counts when it serves none). */
static void
s_metrics_postbacks (gkx_metrics_t *m, gkx_node_t *node)
{
    gkx_intake_stats_t answers = {0, 0, 0, 0};
    gkx_intake_t *intake = gkx_node_intake (node);
    if (intake) {
        gkx_intake_stats (intake, &answers);
    }
    else {
        json_t *stats = gkx_node_stats_json (node);
        json_t *postbacks = json_object_get (stats, "postbacks");
        answers.committed = (uint64_t) json_integer_value (json_object_get (postbacks, "committed"));
        answers.duplicates =
            (uint64_t) json_integer_value (json_object_get (postbacks, "duplicates"));
        answers.refused = (uint64_t) json_integer_value (json_object_get (postbacks, "refused"));
        answers.failed = (uint64_t) json_integer_value (json_object_get (postbacks, "failed"));
        json_decref (stats);
    }
    gkx_metrics_family (m, "gkx_postbacks_total", GKX_METRICS_COUNTER,
                        "Postbacks answered since the node started: committed (a new "
                        "conversion), duplicate (a retry), refused (4xx), failed (5xx, "
                        "nothing committed).");
    s_metric_labelled (m, "result", "committed", (double) answers.committed);
    s_metric_labelled (m, "result", "duplicate", (double) answers.duplicates);
    s_metric_labelled (m, "result", "refused", (double) answers.refused);
    s_metric_labelled (m, "result", "failed", (double) answers.failed);
}

/* Writes the conversion and partnership families. */
static void
s_metrics_ledger (gkx_metrics_t *m, const gkx_store_conversion_counts_t *counts,
                  const gkx_store_partnership_counts_t *partnerships)
{
    gkx_metrics_family (m, "gkx_partnerships", GKX_METRICS_GAUGE,
                        "Partnerships held, by status.");
    s_metric_labelled (m, "status", "active", (double) partnerships->active);
    s_metric_labelled (m, "status", "paused", (double) partnerships->paused);
    s_metric_labelled (m, "status", "frozen", (double) partnerships->frozen);
    gkx_metrics_family (m, "gkx_conversions_total", GKX_METRICS_COUNTER,
                        "Conversions recorded in the store, by the status their entry "
                        "carries.");
    for (int status = GKX_CONVERSION_APPROVED; status <= GKX_CONVERSION_REJECTED; status++) {
        s_metric_labelled (m, "status", gkx_conversion_status_name (status),
                           (double) counts->recorded[status]);
    }
    gkx_metrics_family (m, "gkx_conversions", GKX_METRICS_GAUGE,
                        "Conversions in the store, by their status now.");
    for (int status = GKX_CONVERSION_APPROVED; status < GKX_STORE_STATUS_SLOTS; status++) {
        s_metric_labelled (m, "status", gkx_conversion_status_name (status),
                           (double) counts->current[status]);
    }
    s_metric (m, "gkx_conversions_today", GKX_METRICS_GAUGE,
              "Conversions whose event time falls in the current UTC day, any status.",
              (double) counts->day);
}

/* On the loop: the node's metrics (docs/api.md lists them) into job->text. */
static int
s_metrics_fn (gkx_node_t *node, void *arg)
{
    s_job_t *job = arg;
    job->ran = 1;
    gkx_store_t *store = gkx_node_store (node);
    uint64_t now_ms = s_now_ms ();
    gkx_store_conversion_counts_t counts;
    gkx_store_partnership_counts_t partnerships;
    uint64_t deliveries = 0;
    int rc = gkx_store_conversion_counts (store, now_ms / S_DAY_MS, &counts);
    if (rc == GKX_OK) {
        rc = gkx_store_deliveries_pending (store, &deliveries);
    }
    if (rc == GKX_OK) {
        rc = gkx_store_partnership_counts (gkx_node_store (node), &partnerships);
    }
    if (rc != GKX_OK) {
        return s_job_fail (job, rc, 500, "internal", "the store failed: %s", gkx_strerror (rc));
    }
    const gkx_config_t *config = gkx_node_config (node);
    char id[GKX_ID_TEXT_BYTES];
    gkx_id_format (id, gkx_identity_id (gkx_node_identity (node)));
    gkx_metrics_t *m = gkx_metrics_new ();
    gkx_metrics_family (m, "gkx_node_info", GKX_METRICS_GAUGE,
                        "The node: its id, role and name (the value is always 1).");
    gkx_metrics_label_t info[] = {
        {"id", id}, {"role", gkx_role_name (config->role)}, {"name", config->name}};
    gkx_metrics_sample (m, info, sizeof info / sizeof info[0], 1);
    uint64_t started = gkx_node_started_ms (node);
    s_metric (m, "gkx_uptime_seconds", GKX_METRICS_GAUGE, "Seconds since gkxd opened the node.",
              (double) (now_ms > started ? now_ms - started : 0) / S_SECOND_MS);
    s_metrics_replication (m, node);
    s_metrics_postbacks (m, node);
    s_metrics_ledger (m, &counts, &partnerships);
    gkx_webhook_stats_t hooks = {0, 0};
    if (gkx_node_webhook (node)) {
        gkx_webhook_stats (gkx_node_webhook (node), &hooks);
    }
    gkx_metrics_family (m, "gkx_webhook_deliveries_total", GKX_METRICS_COUNTER,
                        "Webhook delivery attempts since the node started: delivered (a 2xx "
                        "answer) or failed.");
    s_metric_labelled (m, "result", "delivered", (double) hooks.delivered);
    s_metric_labelled (m, "result", "failed", (double) hooks.failed);
    s_metric (m, "gkx_webhook_deliveries_pending", GKX_METRICS_GAUGE,
              "Webhook deliveries waiting for an attempt.", (double) deliveries);
    uint64_t sent = 0;
    uint64_t failed = 0;
    s_emails_counts (node, &sent, &failed);
    s_metric (m, "gkx_emails_sent_total", GKX_METRICS_COUNTER,
              "E-mail messages sent by the notifier.", (double) sent);
    s_metric (m, "gkx_emails_failed_total", GKX_METRICS_COUNTER,
              "E-mail attempts of the notifier that failed (each is retried).", (double) failed);
    s_metric (m, "gkx_emails_pending", GKX_METRICS_GAUGE,
              "E-mail messages waiting to be sent.", (double) s_emails_pending (node));
    s_metric (m, "gkx_store_bytes", GKX_METRICS_GAUGE,
              "Bytes of the store's data: the pages in use in its LMDB data file.",
              (double) gkx_store_used_bytes (store));
    s_metric (m, "gkx_store_map_bytes", GKX_METRICS_GAUGE,
              "Bytes of the store's LMDB map (it doubles when the data fill it).",
              (double) gkx_store_map_bytes (store));
    job->text = gkx_strdup (gkx_metrics_text (m, NULL));
    gkx_metrics_destroy (&m);
    return GKX_OK;
}

/* GET /metrics: the Prometheus text format (docs/api.md). */
static json_t *
s_metrics (gkx_http_request_t *request, void *user, int *status_p)
{
    s_job_t job;
    memset (&job, 0, sizeof job);
    json_t *reply = s_job_run (user, s_metrics_fn, &job, status_p);
    if (job.text) {
        json_decref (reply);
        reply = gkx_http_reply_typed (request, GKX_METRICS_CONTENT_TYPE, job.text,
                                      strlen (job.text));
        gkx_free (job.text);
    }
    return reply;
}

/* The routes, first match wins. */
static const gkx_http_route_t s_routes[] = {
    {"GET /v1/status", s_status},
    {"GET /metrics", s_metrics},
    {"GET /v1/peers", s_peers_get},
    {"POST /v1/peers", s_peers_post},
    {"GET /v1/publishers", s_publishers_get},
    {"POST /v1/card/withdraw", s_card_withdraw},
    {"POST /v1/card/publish", s_card_publish},
    {"GET /v1/partnerships", s_partnerships_get},
    {"POST /v1/partnerships", s_partnerships_post},
    {"GET /v1/partnerships/{}", s_partnership_get},
    {"GET /v1/partnerships/{}/offer", s_offer_get},
    {"PATCH /v1/partnerships/{}/offer", s_offer_patch},
    {"POST /v1/partnerships/{}/pause", s_pause},
    {"POST /v1/partnerships/{}/resume", s_resume},
    {"GET /v1/partnerships/{}/changes", s_changes_get},
    {"GET /v1/partnerships/{}/proposals", s_proposals_get},
    {"POST /v1/partnerships/{}/proposals", s_proposals_post},
    {"POST /v1/partnerships/{}/proposals/{}/accept", s_accept},
    {"POST /v1/partnerships/{}/proposals/{}/decline", s_decline},
    {"POST /v1/partnerships/{}/proposals/{}/withdraw", s_withdraw},
    {"POST /v1/partnerships/{}/export", s_export},
    {"GET /v1/partnerships/{}/export", s_export_get},
    {"GET /v1/partnerships/{}/conversions", s_conversions_get},
    {"POST /v1/partnerships/{}/conversions/{}/status", s_conversion_status},
    {"GET /v1/partnerships/{}/postback-url", s_postback_url},
    {"GET /v1/report", s_report_get},
    {"GET /v1/deliveries", s_deliveries_get},
    {"GET /v1/notifications", s_notifications_get},
    {"POST /v1/deliveries/{}/replay", s_replay},
};

const gkx_http_route_t *
gkx_api_routes (size_t *count_p)
{
    *count_p = sizeof s_routes / sizeof s_routes[0];
    return s_routes;
}
