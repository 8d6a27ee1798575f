/*  notifier - e-mail to the tenant about every change the other side makes.
    Part of gokart-exchange; MIT licence.

    With [smtp] url and [notify] to in its configuration, a node's store
    queues a notice for each change the counterparty of a partnership makes
    (a new partnership, offer edits, pause and resume, proposals and
    answers, conversion status changes) and for each partnership frozen by
    equivocation, in the transaction that applies it (include/gkx/store.h).
    One thread per node turns them into e-mail: once the oldest waiting
    notice of a partnership is [notify] window_seconds old, the notices of
    that partnership become one message (a subject naming the partnership
    and the counterparty; a summary line, then each change as field, old
    value -> new value, who, when; text and HTML parts), kept in the store
    with its bodies; then the message goes out through the SMTP server
    (libcurl), and is marked sent in the store. A failed attempt is tried
    again after a back-off that doubles from 1 s to 300 s, forever; a
    restart resumes the outbox. Every attempt of a message sends the same
    bytes under the same Message-ID, so a resend after a crash between
    sending and marking (the only way a message can go twice) is
    recognisable. docs/notifications.md is the user's guide.

    The thread reads and writes the store only through gkx_node_call; SMTP
    runs off the loop. The rendering and formatting functions are pure (no
    I/O, no node), for tests and tools.
*/
#ifndef GKX_NOTIFIER_H_INCLUDED
#define GKX_NOTIFIER_H_INCLUDED

#include <gkx/error.h>
#include <gkx/node.h>

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Messages sent per round, and waiting notices grouped per round. */
#define GKX_NOTIFIER_BATCH_MAX 16
#define GKX_NOTIFIER_NOTICES_MAX 4096
/* Back-off after the first failed attempt, and its ceiling (ms). */
#define GKX_NOTIFIER_BACKOFF_MIN_MS 1000
#define GKX_NOTIFIER_BACKOFF_MAX_MS 300000
/* How long one SMTP transaction may take, all in (ms). */
#define GKX_NOTIFIER_TIMEOUT_MS 30000
/* Longest value shown in a change line, in bytes; a longer one is cut and
   ends in "...". */
#define GKX_NOTIFIER_VALUE_MAX 300

typedef struct gkx_notifier gkx_notifier_t;

/* One e-mail to format: every string borrowed, UTF-8. */
typedef struct {
    const char *from;              /* the sender, a bare address */
    const char *from_name;         /* its display name, or NULL */
    const char *const *to;         /* the recipients, bare addresses */
    size_t to_count;               /* at least 1 */
    const char *subject;           /* one line */
    const char *message_id;        /* without the angle brackets */
    uint64_t date_ms;              /* the Date header, ms since the epoch */
    const char *text;              /* the text/plain part */
    const char *html;              /* the text/html part */
} gkx_notifier_mail_t;

/* Returns the delay before the next attempt of a message that has failed
   after attempts attempts (at least 1): 1 s doubling per attempt, at most
   300 s. The thread adds up to a tenth more at random. */
uint64_t gkx_notifier_backoff_ms (uint32_t attempts);

/* Renders one message from its digest, a JSON object the thread builds on
   the loop from the store:
     {"partnership": 64 hex digits, "offer": the offer's name,
      "counterparty": its name, "counterparty_role": "advertiser" |
      "publisher", "node": this node's name,
      "changes": [{"kind": "genesis" | "edit" | "propose" | "answer" |
                   "conversion_status" | "frozen",
                   "field": a field path, "key": a set or collection key
                   (optional), "old": JSON, "new": JSON, "rejected": the
                   reason (optional) -- for a field's change; or
                   "text": what happened -- for any other,
                   "by": who, "time": ISO 8601 UTC}, ...]}
   Writes into new strings the caller frees with gkx_free: *subject_p, one
   line naming the partnership (offer name and short id) and the
   counterparty; *text_p, a summary line, then each change as "field: old
   -> new" with who and when; *html_p, the same as an HTML document. Pure.
   Returns GKX_OK, or GKX_EINVAL when digest has no "changes" array (the
   outputs are then untouched). */
GKX_NODISCARD int gkx_notifier_render (const json_t *digest, char **subject_p, char **text_p,
                                       char **html_p);

/* Formats mail as an RFC 5322 message with CRLF line ends: Date, From, To,
   Subject (RFC 2047 encoded when not ASCII), Message-ID, MIME-Version and
   Auto-Submitted headers, then a multipart/alternative body of the text
   and HTML parts (UTF-8, lines ending in CRLF, base64). The boundary
   derives from the content, so the same mail always gives the same bytes.
   Returns a new string the caller frees with gkx_free. Pure. */
char *gkx_notifier_mail_format (const gkx_notifier_mail_t *mail);

/* Starts the e-mail thread of node, configured by its [smtp] and [notify]
   sections (gkx_node_config; notify_on must be 1): reads the password
   file, when there is one, and checks the url. Call it after
   gkx_node_open, before or after the loop starts: the thread waits for
   the loop to run. The node must outlive it. Returns GKX_OK with *self_p
   set, GKX_EINVAL (the url, or the password file: missing, readable by
   others or empty; errbuf names the file, never the password) or GKX_EIO
   (libcurl or the thread cannot start). */
GKX_NODISCARD int gkx_notifier_start (gkx_notifier_t **self_p, gkx_node_t *node, char *errbuf);

/* Stops the thread, abandoning an SMTP transaction in flight (the message
   stays due and goes again later), waits for it and frees everything.
   Returns within about a second. Call it from any thread but the node's
   loop, typically after gkx_node_run returned. Accepts NULL; sets *self_p
   to NULL. */
void gkx_notifier_stop (gkx_notifier_t **self_p);

/* Attempts made since the thread started: messages sent, and attempts
   that failed (each is tried again). An attempt that gkx_notifier_stop
   abandons is not counted. */
typedef struct {
    uint64_t sent;
    uint64_t failed;
} gkx_notifier_stats_t;

/* Copies the attempt counters into *out. Safe from any thread. */
void gkx_notifier_stats (gkx_notifier_t *self, gkx_notifier_stats_t *out);

/* On the loop: the messages of node's store, newest first, at most limit
   of them, as GET /v1/notifications answers: {"notifications": [M...]}
   with M = {"id", "partnership", "subject", "to", "changes", "state",
   "attempts", "last_error", "queued", "next_attempt", "sent"}
   (docs/api.md). A new reference the caller owns, or NULL when the store
   fails. */
json_t *gkx_notifier_messages_json (gkx_node_t *node, size_t limit);

#ifdef __cplusplus
}
#endif

#endif
