/*  notifier - e-mail to the tenant about every change the other side makes.
    Part of gokart-exchange; MIT licence.

    The store queues the notices (include/gkx/store.h); this module groups
    them into messages and sends them. Its thread repeats one round: on the
    loop (gkx_node_call), group the waiting notices by partnership and make
    a message of each group whose oldest notice is window_seconds old
    (s_compose: the digest of its changes read from the store, rendered,
    and kept with the message in one write), then fetch up to
    GKX_NOTIFIER_BATCH_MAX due messages with their bodies; off the loop,
    send them one by one with libcurl's SMTP; after each, on the loop
    again, record the attempt (sent, or due again after the back-off). Then
    it sleeps until the next group is ready or S_IDLE_MS, whichever comes
    first.

    A message's subject and bodies are made once, when its notices are
    grouped; each attempt formats them again with the same headers (the
    Date is the message's creation, the Message-ID names the message), so
    every attempt sends the same bytes.

    The changes of an edit, a proposal or an answer are the records of the
    merge change log (gkx_merge_changes) that the notice's entry carried or
    made take effect; a conversion status change is read from its entry's
    body, with the status before it that the notice kept; a new
    partnership from its genesis entry.

    The SMTP transaction runs on a curl multi handle polled in steps of at
    most S_STEP_MS, and gkx_notifier_stop wakes that poll, so stopping never
    waits for a slow server. A transaction abandoned that way is not
    recorded: the message stays due and goes again.
*/
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include <gkx/alloc.h>
#include <gkx/calendar.h>
#include <gkx/conversion.h>
#include <gkx/hlc.h>
#include <gkx/kind.h>
#include <gkx/notifier.h>
#include <gkx/offer.h>
#include <gkx/store.h>

#include <assert.h>
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* Buffer for "YYYY-MM-DDTHH:MM:SS.mmmZ" with room to spare. */
#define S_TIME_TEXT_BYTES 40
/* Buffer for a Date header value, "Mon, 30 Nov 2026 07:07:30 +0000". */
#define S_DATE_BYTES 40
/* Buffer for a Message-ID: times, ids and the sender's domain. */
#define S_MESSAGE_ID_BYTES 400
/* Room for a change described in words: a proposal's operations
   (GKX_NOTIFIER_VALUE_MAX and "...") and the words around them. */
#define S_CHANGE_TEXT_BYTES 1024
/* Room for a status name and the words around a reason. */
#define S_STATUS_NAME_BYTES 64
/* Characters of the conversion ids shown in a change line. */
#define S_CONVERSION_SHORT_CHARS 16
/* Bytes of the hash a MIME boundary is made of. */
#define S_BOUNDARY_HASH_BYTES 12
/* Base64 characters per line of a MIME part (RFC 2045: at most 76). */
#define S_BASE64_LINE 76
/* Longest line that holds RFC 2047 encoded words (RFC 2047 section 2),
   and the characters of "=?UTF-8?B?" and "?=" around each word's base64. */
#define S_WORD_LINE 76
#define S_WORD_FRAME 12
/* Most bytes of UTF-8 text in one encoded word: its base64 fits a
   continuation line, after the space that starts it. */
#define S_WORD_BYTES ((S_WORD_LINE - 1 - S_WORD_FRAME) / 4 * 3)
/* Longest header line kept unencoded (RFC 5322 allows 998). */
#define S_HEADER_PLAIN_MAX 900
/* Largest password file read. */
#define S_PASSWORD_FILE_MAX 4096
/* Room for a path inside a node directory. */
#define S_PATH_BYTES 4096
/* How long a connection may take to open (ms). */
#define S_CONNECT_TIMEOUT_MS 10000
/* Longest wait of the SMTP poll between checks of the stop flag (ms). */
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
/* 1970-01-01 was a Thursday: day 0's index in s_weekdays. */
#define S_EPOCH_WEEKDAY 4
#define S_WEEK_DAYS 7

/* A growing string. */
typedef struct {
    char *data; /* NUL-terminated, never NULL once something was added */
    size_t len; /* bytes before the NUL */
} s_buf_t;

/* One message of a round: fetched with its bodies, formatted, attempted,
   recorded. */
typedef struct {
    gkx_message_t message;        /* as the store held it when fetched */
    char *mail;                   /* the formatted message, NULL when not built */
    size_t mail_len;              /* its bytes */
    size_t sent_len;              /* bytes libcurl has read of it */
    char error[GKX_ERRBUF_BYTES]; /* the attempt's error, "" when it was sent */
    uint64_t done_ms;             /* when the attempt ended */
    uint64_t next_ms;             /* when it is due again as recorded, 0 for never */
    int ran;                      /* the loop ran the record call */
} s_item_t;

/* A round's work, filled on the loop. */
typedef struct {
    uint64_t now_ms;                        /* the time the round looks at */
    uint64_t ready_ms;                      /* when the next group is ready, or UINT64_MAX */
    s_item_t items[GKX_NOTIFIER_BATCH_MAX]; /* the due messages, oldest first */
    size_t count;                           /* items used */
    int ran;                                /* the loop ran the fetch */
} s_round_t;

/* Notices copied out of the store, oldest first. */
typedef struct {
    gkx_notice_t *items;
    size_t count;
} s_notices_t;

/* Messages copied out of the store for a listing. */
typedef struct {
    gkx_message_t *items; /* newest first */
    size_t count;
} s_list_t;

struct gkx_notifier {
    gkx_node_t *node;     /* whose store holds the outbox */
    char *url;            /* the SMTP server */
    char *user;           /* its login, or NULL */
    char *password;       /* sodium_malloc'd, read-only; NULL without a login */
    int require_tls;      /* TLS or STARTTLS is a must (smtps://, or a login) */
    char *from;           /* the sender address */
    char *from_name;      /* the sender's display name: the node's name */
    char **to;            /* the recipients */
    size_t to_count;      /* entries in to */
    uint64_t window_ms;   /* how long the notices of a partnership gather */
    int curl_ready;       /* curl_global_init succeeded */
    CURLM *multi;         /* runs the transaction; stop wakes its poll */
    CURL *curl;           /* the one transaction handle */
    pthread_t thread;     /* the e-mail thread */
    int thread_started;   /* thread is running and must be joined */
    pthread_mutex_t lock; /* guards the wake-up of stopping */
    pthread_cond_t wake;  /* signals the stop (CLOCK_MONOTONIC) */
    atomic_int stopping;  /* gkx_notifier_stop was called */
    atomic_uint_least64_t sent;   /* messages sent since the start */
    atomic_uint_least64_t failed; /* attempts failed since the start */
    int failing;          /* the last attempt failed (thread only, for logs) */
};

/* Logs one line to stderr as gkxd does; never given the password. */
__attribute__ ((format (printf, 2, 3))) static void
s_log (const char *level, const char *fmt, ...)
{
    char line[1024];
    va_list args;
    va_start (args, fmt);
    vsnprintf (line, sizeof line, fmt, args);
    va_end (args);
    fprintf (stderr, "gkxd: %s: notifier: %s\n", level, line);
}

/* Appends formatted text to buf. */
__attribute__ ((format (printf, 2, 3))) static void
s_buf_add (s_buf_t *buf, const char *fmt, ...)
{
    va_list args;
    va_start (args, fmt);
    int need = vsnprintf (NULL, 0, fmt, args);
    va_end (args);
    assert (need >= 0);
    buf->data = gkx_realloc (buf->data, buf->len + (size_t) need + 1);
    va_start (args, fmt);
    vsnprintf (buf->data + buf->len, (size_t) need + 1, fmt, args);
    va_end (args);
    buf->len += (size_t) need;
}

/* Appends len bytes of text to buf. */
static void
s_buf_put (s_buf_t *buf, const char *text, size_t len)
{
    buf->data = gkx_realloc (buf->data, buf->len + len + 1);
    memcpy (buf->data + buf->len, text, len);
    buf->len += len;
    buf->data[buf->len] = '\0';
}

/* Appends text to buf with the HTML specials escaped. */
static void
s_buf_html (s_buf_t *buf, const char *text)
{
    for (const char *p = text; *p; p++) {
        switch (*p) {
            case '&': s_buf_put (buf, "&amp;", 5); break;
            case '<': s_buf_put (buf, "&lt;", 4); break;
            case '>': s_buf_put (buf, "&gt;", 4); break;
            case '"': s_buf_put (buf, "&quot;", 6); break;
            default: s_buf_put (buf, p, 1); break;
        }
    }
}

/* Takes buf's string (the caller's), "" when nothing was added. */
static char *
s_buf_take (s_buf_t *buf)
{
    char *data = buf->data ? buf->data : gkx_strdup ("");
    buf->data = NULL;
    buf->len = 0;
    return data;
}

uint64_t
gkx_notifier_backoff_ms (uint32_t attempts)
{
    assert (attempts >= 1);
    uint64_t delay = GKX_NOTIFIER_BACKOFF_MIN_MS;
    for (uint32_t i = 1; i < attempts && delay < GKX_NOTIFIER_BACKOFF_MAX_MS; i++) {
        delay *= 2;
    }
    return delay < GKX_NOTIFIER_BACKOFF_MAX_MS ? delay : GKX_NOTIFIER_BACKOFF_MAX_MS;
}

/* The string member key of object, or "" when absent. */
static const char *
s_str (const json_t *object, const char *key)
{
    const char *text = json_string_value (json_object_get (object, key));
    return text ? text : "";
}

/* Copies text into out (size bytes) on one line: control characters become
   spaces, and a cut never splits a UTF-8 character. */
static void
s_line_copy (char *out, size_t size, const char *text)
{
    size_t i = 0;
    for (; text[i] && i < size - 1; i++) {
        unsigned char c = (unsigned char) text[i];
        out[i] = c < 0x20 || c == 0x7f ? ' ' : (char) c;
    }
    /* A cut inside a character drops its first bytes too. */
    while (text[i] && i > 0 && ((unsigned char) text[i] & 0xc0) == 0x80) {
        i--;
    }
    out[i] = '\0';
}

/* Writes the text form of a change's value into a new string (the
   caller's): a string as it is, null as "(none)", anything else as compact
   JSON; at most GKX_NOTIFIER_VALUE_MAX bytes, then "...". */
static char *
s_value_text (const json_t *value)
{
    char *text = NULL;
    if (!value || json_is_null (value)) {
        text = gkx_strdup ("(none)");
    }
    else if (json_is_string (value)) {
        text = gkx_strdup (json_string_value (value));
    }
    else {
        char *dumped = json_dumps (value, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY);
        text = gkx_strdup (dumped ? dumped : "?");
        free (dumped);
    }
    if (strlen (text) > GKX_NOTIFIER_VALUE_MAX) {
        char cut[GKX_NOTIFIER_VALUE_MAX + 1];
        s_line_copy (cut, sizeof cut, text);
        gkx_free (text);
        size_t len = strlen (cut);
        text = gkx_zalloc (len + 4);
        memcpy (text, cut, len);
        memcpy (text + len, "...", 3);
    }
    for (char *p = text; *p; p++) {
        if ((unsigned char) *p < 0x20 || *p == 0x7f) {
            *p = ' ';
        }
    }
    return text;
}

/* Writes an ISO 8601 UTC time as people read it, "2026-11-30 10:00:02 UTC"
   (its fraction dropped), into out; other text is copied as it is. */
static void
s_when_text (char out[S_TIME_TEXT_BYTES], const char *iso)
{
    size_t len = strlen (iso);
    if (len >= 20 && iso[10] == 'T' && iso[len - 1] == 'Z') {
        snprintf (out, S_TIME_TEXT_BYTES, "%.10s %.8s UTC", iso, iso + 11);
    }
    else {
        s_line_copy (out, S_TIME_TEXT_BYTES, iso);
    }
}

/* Whether a change is a set of the offer's status to value. */
static int
s_is_status_set (const json_t *change, const char *value)
{
    const char *field = json_string_value (json_object_get (change, "field"));
    const char *now = json_string_value (json_object_get (change, "new"));
    return field && now && strcmp (field, "status") == 0 && strcmp (now, value) == 0
           && !json_object_get (change, "rejected");
}

/* Appends to buf one part of the summary, "; " after the first: fmt with
   count, then "s" when count is not 1. */
static void
s_summary_part (s_buf_t *buf, const char *fmt, size_t count)
{
    if (buf->len > 0) {
        s_buf_add (buf, "; ");
    }
    s_buf_add (buf, fmt, count, count == 1 ? "" : "s");
}

/* Builds the summary of changes: what the counterparty did, in a few
   words, without its name (a new string). */
static char *
s_summary (const json_t *changes)
{
    size_t genesis = 0, proposals = 0, answers = 0, conversions = 0, frozen = 0;
    int paused = 0, resumed = 0;
    s_buf_t fields = {NULL, 0};
    json_t *seen = json_object ();
    size_t i;
    json_t *change;
    json_array_foreach (changes, i, change) {
        const char *kind = s_str (change, "kind");
        const char *field = json_string_value (json_object_get (change, "field"));
        if (strcmp (kind, "conversion_status") == 0) {
            conversions++;
        }
        else if (s_is_status_set (change, "paused")) {
            paused = 1;
        }
        else if (s_is_status_set (change, "active")) {
            resumed = 1;
        }
        else if (field) {
            if (!json_object_get (seen, field)) {
                json_object_set_new (seen, field, json_true ());
                s_buf_add (&fields, "%s%s", fields.len ? ", " : "", field);
            }
        }
        else if (strcmp (kind, "genesis") == 0) {
            genesis++;
        }
        else if (strcmp (kind, "propose") == 0) {
            proposals++;
        }
        else if (strcmp (kind, "answer") == 0) {
            answers++;
        }
        else if (strcmp (kind, "frozen") == 0) {
            frozen++;
        }
    }
    json_decref (seen);
    s_buf_t out = {NULL, 0};
    if (genesis) {
        s_summary_part (&out, "shared %zu new offer%s with you", genesis);
    }
    if (fields.len) {
        s_buf_add (&out, "%schanged %s", out.len ? "; " : "", fields.data);
    }
    if (paused) {
        s_buf_add (&out, "%spaused the offer", out.len ? "; " : "");
    }
    if (resumed) {
        s_buf_add (&out, "%sresumed the offer", out.len ? "; " : "");
    }
    if (proposals) {
        s_summary_part (&out, "made %zu proposal%s", proposals);
    }
    if (answers) {
        s_summary_part (&out, "answered %zu proposal%s", answers);
    }
    if (conversions) {
        s_summary_part (&out, "changed the status of %zu conversion%s", conversions);
    }
    if (frozen) {
        s_buf_add (&out, "%ssigned two different entries at one place in its log: the "
                         "partnership is frozen",
                   out.len ? "; " : "");
    }
    gkx_free (fields.data);
    return s_buf_take (&out);
}

/* Whether any change of the digest is of kind. */
static int
s_has_kind (const json_t *changes, const char *kind)
{
    size_t i;
    json_t *change;
    json_array_foreach (changes, i, change) {
        if (strcmp (s_str (change, "kind"), kind) == 0) {
            return 1;
        }
    }
    return 0;
}

/* The subject of a digest (a new string, one line, cut to fit a message
   record). */
static char *
s_subject (const json_t *digest, const json_t *changes)
{
    const char *pid = s_str (digest, "partnership");
    const char *offer = s_str (digest, "offer");
    const char *counterparty = s_str (digest, "counterparty");
    size_t count = json_array_size (changes);
    s_buf_t buf = {NULL, 0};
    if (s_has_kind (changes, "frozen")) {
        s_buf_add (&buf, "[gkx] Frozen partnership: %s (%.16s) with %s", offer, pid, counterparty);
    }
    else if (s_has_kind (changes, "genesis")) {
        s_buf_add (&buf, "[gkx] New partnership: %s (%.16s) from %s", offer, pid, counterparty);
    }
    else {
        s_buf_add (&buf, "[gkx] %s (%.16s): %zu change%s by %s", offer, pid, count,
                   count == 1 ? "" : "s", counterparty);
    }
    char line[GKX_MESSAGE_SUBJECT_BYTES];
    s_line_copy (line, sizeof line, buf.data);
    gkx_free (buf.data);
    return gkx_strdup (line);
}

/* A change's label: its field, with the key of a set element or a
   collection entry ("creatives[banner-1]"). */
static char *
s_field_label (const json_t *change)
{
    const char *key = json_string_value (json_object_get (change, "key"));
    s_buf_t buf = {NULL, 0};
    s_buf_add (&buf, "%s", s_str (change, "field"));
    if (key) {
        s_buf_add (&buf, "[%s]", key);
    }
    char *label = s_buf_take (&buf);
    for (char *p = label; *p; p++) {
        if ((unsigned char) *p < 0x20 || *p == 0x7f) {
            *p = ' ';
        }
    }
    return label;
}

/* Appends one change to the text body and one row to the HTML table. */
static void
s_render_change (s_buf_t *text, s_buf_t *html, const json_t *change)
{
    char when[S_TIME_TEXT_BYTES];
    char by[GKX_MESSAGE_SUBJECT_BYTES];
    s_when_text (when, s_str (change, "time"));
    s_line_copy (by, sizeof by, s_str (change, "by"));
    const char *rejected = json_string_value (json_object_get (change, "rejected"));
    if (json_object_get (change, "field")) {
        char *label = s_field_label (change);
        char *old_value = s_value_text (json_object_get (change, "old"));
        char *new_value = s_value_text (json_object_get (change, "new"));
        s_buf_add (text, "* %s: %s -> %s", label, old_value, new_value);
        s_buf_add (html, "<tr><td><code>");
        s_buf_html (html, label);
        s_buf_add (html, "</code></td><td>");
        s_buf_html (html, old_value);
        s_buf_add (html, "</td><td>");
        s_buf_html (html, new_value);
        gkx_free (label);
        gkx_free (old_value);
        gkx_free (new_value);
    }
    else {
        char what[S_CHANGE_TEXT_BYTES];
        s_line_copy (what, sizeof what, s_str (change, "text"));
        s_buf_add (text, "* %s", what);
        s_buf_add (html, "<tr><td colspan=\"3\">");
        s_buf_html (html, what);
    }
    if (rejected) {
        char reason[GKX_ERRBUF_BYTES];
        s_line_copy (reason, sizeof reason, rejected);
        s_buf_add (text, " (rejected: %s)", reason);
        s_buf_add (html, " <em>(rejected: ");
        s_buf_html (html, reason);
        s_buf_add (html, ")</em>");
    }
    s_buf_add (text, "\n  by %s, %s\n", by, when);
    s_buf_add (html, "</td><td>");
    s_buf_html (html, by);
    s_buf_add (html, "</td><td>");
    s_buf_html (html, when);
    s_buf_add (html, "</td></tr>\n");
}

int
gkx_notifier_render (const json_t *digest, char **subject_p, char **text_p, char **html_p)
{
    assert (digest);
    assert (subject_p && text_p && html_p);
    const json_t *changes = json_object_get (digest, "changes");
    if (!json_is_array (changes)) {
        return GKX_EINVAL;
    }
    char offer[GKX_MESSAGE_SUBJECT_BYTES];
    char counterparty[GKX_MESSAGE_SUBJECT_BYTES];
    char node[GKX_MESSAGE_SUBJECT_BYTES];
    char pid[GKX_ID_TEXT_BYTES];
    s_line_copy (offer, sizeof offer, s_str (digest, "offer"));
    s_line_copy (counterparty, sizeof counterparty, s_str (digest, "counterparty"));
    s_line_copy (node, sizeof node, s_str (digest, "node"));
    s_line_copy (pid, sizeof pid, s_str (digest, "partnership"));
    const char *role = s_str (digest, "counterparty_role");
    char *summary = s_summary (changes);
    s_buf_t text = {NULL, 0};
    s_buf_t html = {NULL, 0};
    s_buf_add (&text, "%s (%s): %s.\n\n", counterparty, role, summary);
    s_buf_add (&text, "Partnership: %s (%s)\nCounterparty: %s (%s)\n\n", offer, pid, counterparty,
               role);
    s_buf_add (&html, "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"></head><body>\n<p>");
    s_buf_html (&html, counterparty);
    s_buf_add (&html, " (%s): ", role);
    s_buf_html (&html, summary);
    s_buf_add (&html, ".</p>\n<p>Partnership: <b>");
    s_buf_html (&html, offer);
    s_buf_add (&html, "</b> (<code>%s</code>)<br>\nCounterparty: ", pid);
    s_buf_html (&html, counterparty);
    s_buf_add (&html, " (%s)</p>\n", role);
    size_t count = json_array_size (changes);
    s_buf_add (&text, "%s:\n", count == 1 ? "The change" : "The changes, oldest first");
    s_buf_add (&html, "<table border=\"1\" cellpadding=\"4\" cellspacing=\"0\">\n"
                      "<tr><th>Change</th><th>Old</th><th>New</th><th>By</th><th>When</th></tr>\n");
    size_t i;
    json_t *change;
    json_array_foreach (changes, i, change) {
        s_render_change (&text, &html, change);
    }
    s_buf_add (&text, "\n-- \nSent by gkxd for %s. The whole change log: gkx changes %s\n", node,
               pid);
    s_buf_add (&html, "</table>\n<p style=\"color:#666\">Sent by gkxd for ");
    s_buf_html (&html, node);
    s_buf_add (&html, ". The whole change log: <code>gkx changes %s</code></p>\n"
                      "</body></html>\n",
               pid);
    gkx_free (summary);
    *subject_p = s_subject (digest, changes);
    *text_p = s_buf_take (&text);
    *html_p = s_buf_take (&html);
    return GKX_OK;
}

/* Whether text is all printable ASCII (spaces included). */
static int
s_is_plain (const char *text)
{
    for (const unsigned char *p = (const unsigned char *) text; *p; p++) {
        if (*p < 0x20 || *p > 0x7e) {
            return 0;
        }
    }
    return 1;
}

/* Whether a header's text goes as encoded words: it is not plain ASCII, or
   too long for one line. */
static int
s_needs_words (const char *text)
{
    return !s_is_plain (text) || strlen (text) > S_HEADER_PLAIN_MAX;
}

/* Appends text to buf as RFC 2047 encoded words (UTF-8, base64), folded
   onto continuation lines so that no line passes S_WORD_LINE characters;
   column is where the first word starts on its line. Never splits a UTF-8
   character between words. */
static void
s_encoded_words (s_buf_t *buf, const char *text, size_t column)
{
    size_t len = strlen (text);
    size_t at = 0;
    int first = 1;
    while (at < len) {
        size_t room = S_WORD_BYTES;
        if (first && column + S_WORD_FRAME < S_WORD_LINE) {
            size_t fits = (S_WORD_LINE - column - S_WORD_FRAME) / 4 * 3;
            room = fits > 0 && fits < room ? fits : room;
        }
        size_t take = len - at < room ? len - at : room;
        while (take > 1 && at + take < len
               && ((unsigned char) text[at + take] & 0xc0) == 0x80) {
            take--;
        }
        char word[sodium_base64_ENCODED_LEN (S_WORD_BYTES, sodium_base64_VARIANT_ORIGINAL)];
        sodium_bin2base64 (word, sizeof word, (const unsigned char *) text + at, take,
                           sodium_base64_VARIANT_ORIGINAL);
        s_buf_add (buf, "%s=?UTF-8?B?%s?=", first ? "" : "\r\n ", word);
        first = 0;
        at += take;
    }
}

/* Appends a header's text, which starts at column: as it is when it is
   plain ASCII of a sane length, else as encoded words. */
static void
s_header_text (s_buf_t *buf, const char *text, size_t column)
{
    if (s_needs_words (text)) {
        s_encoded_words (buf, text, column);
    }
    else {
        s_buf_add (buf, "%s", text);
    }
}

/* Appends a display name, which starts at column, as a quoted string, or
   encoded words when it is not plain ASCII. */
static void
s_display_name (s_buf_t *buf, const char *name, size_t column)
{
    if (s_needs_words (name)) {
        s_encoded_words (buf, name, column);
        return;
    }
    s_buf_put (buf, "\"", 1);
    for (const char *p = name; *p; p++) {
        if (*p == '"' || *p == '\\') {
            s_buf_put (buf, "\\", 1);
        }
        s_buf_put (buf, p, 1);
    }
    s_buf_put (buf, "\"", 1);
}

/* Writes the Date header value of ms since the epoch (UTC). */
static void
s_date_text (char out[S_DATE_BYTES], uint64_t ms)
{
    static const char *const weekdays[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
    static const char *const months[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                         "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
    uint64_t secs = ms / S_SECOND_MS;
    uint64_t days = secs / S_DAY_SECONDS;
    uint64_t rem = secs % S_DAY_SECONDS;
    int64_t y;
    unsigned m, d;
    gkx_calendar_civil_from_days ((int64_t) days, &y, &m, &d);
    snprintf (out, S_DATE_BYTES, "%s, %u %s %04" PRId64 " %02u:%02u:%02u +0000",
              weekdays[(days + S_EPOCH_WEEKDAY) % S_WEEK_DAYS], d, months[m - 1], y,
              (unsigned) (rem / S_HOUR_SECONDS),
              (unsigned) (rem % S_HOUR_SECONDS / S_MINUTE_SECONDS),
              (unsigned) (rem % S_MINUTE_SECONDS));
}

/* Appends one MIME part: its headers, then text in its canonical form
   (lines end in CRLF, RFC 2045) in base64 lines. */
static void
s_mime_part (s_buf_t *buf, const char *boundary, const char *type, const char *text)
{
    s_buf_add (buf,
               "--%s\r\nContent-Type: %s; charset=utf-8\r\n"
               "Content-Transfer-Encoding: base64\r\n\r\n",
               boundary, type);
    s_buf_t canonical = {NULL, 0};
    for (const char *p = text; *p; p++) {
        if (*p == '\n' && (p == text || p[-1] != '\r')) {
            s_buf_put (&canonical, "\r", 1);
        }
        s_buf_put (&canonical, p, 1);
    }
    char *body = s_buf_take (&canonical);
    size_t len = strlen (body);
    size_t encoded_size = sodium_base64_ENCODED_LEN (len, sodium_base64_VARIANT_ORIGINAL);
    char *encoded = gkx_zalloc (encoded_size);
    sodium_bin2base64 (encoded, encoded_size, (const unsigned char *) body, len,
                       sodium_base64_VARIANT_ORIGINAL);
    gkx_free (body);
    size_t total = strlen (encoded);
    for (size_t at = 0; at < total; at += S_BASE64_LINE) {
        size_t take = total - at < S_BASE64_LINE ? total - at : S_BASE64_LINE;
        s_buf_put (buf, encoded + at, take);
        s_buf_put (buf, "\r\n", 2);
    }
    gkx_free (encoded);
}

char *
gkx_notifier_mail_format (const gkx_notifier_mail_t *mail)
{
    assert (mail);
    assert (mail->from && mail->to && mail->to_count > 0);
    assert (mail->subject && mail->message_id && mail->text && mail->html);
    /* The boundary is a hash of the content, so the same mail gives the
       same bytes; "=_" never starts a base64 line. */
    crypto_generichash_state state;
    uint8_t hash[S_BOUNDARY_HASH_BYTES];
    crypto_generichash_init (&state, NULL, 0, sizeof hash);
    crypto_generichash_update (&state, (const unsigned char *) mail->message_id,
                               strlen (mail->message_id) + 1);
    crypto_generichash_update (&state, (const unsigned char *) mail->text, strlen (mail->text) + 1);
    crypto_generichash_update (&state, (const unsigned char *) mail->html, strlen (mail->html));
    crypto_generichash_final (&state, hash, sizeof hash);
    char boundary[2 * S_BOUNDARY_HASH_BYTES + 8];
    char hex[2 * S_BOUNDARY_HASH_BYTES + 1];
    sodium_bin2hex (hex, sizeof hex, hash, sizeof hash);
    snprintf (boundary, sizeof boundary, "=_gkx_%s", hex);
    char date[S_DATE_BYTES];
    s_date_text (date, mail->date_ms);

    s_buf_t buf = {NULL, 0};
    s_buf_add (&buf, "Date: %s\r\nFrom: ", date);
    if (mail->from_name && mail->from_name[0]) {
        s_display_name (&buf, mail->from_name, strlen ("From: "));
        /* After encoded words, the address goes on a line of its own. */
        s_buf_add (&buf, "%s", s_needs_words (mail->from_name) ? "\r\n " : " ");
    }
    s_buf_add (&buf, "<%s>\r\nTo: ", mail->from);
    for (size_t i = 0; i < mail->to_count; i++) {
        s_buf_add (&buf, "%s<%s>", i == 0 ? "" : ",\r\n ", mail->to[i]);
    }
    s_buf_add (&buf, "\r\nSubject: ");
    s_header_text (&buf, mail->subject, strlen ("Subject: "));
    s_buf_add (&buf,
               "\r\nMessage-ID: <%s>\r\nMIME-Version: 1.0\r\nAuto-Submitted: auto-generated\r\n"
               "Content-Type: multipart/alternative; boundary=\"%s\"\r\n\r\n"
               "This is a message in MIME format: a text part and an HTML part.\r\n\r\n",
               mail->message_id, boundary);
    s_mime_part (&buf, boundary, "text/plain", mail->text);
    s_mime_part (&buf, boundary, "text/html", mail->html);
    s_buf_add (&buf, "--%s--\r\n", boundary);
    return s_buf_take (&buf);
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
              (unsigned) (rem / S_HOUR_SECONDS),
              (unsigned) (rem % S_HOUR_SECONDS / S_MINUTE_SECONDS),
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

/* A JSON string of text, or null when text is empty (or not UTF-8). */
static json_t *
s_text_json (const char *text)
{
    json_t *json = text && text[0] ? json_string (text) : NULL;
    return json ? json : json_null ();
}

/* The lowercase hex of an id as a new JSON string. */
static json_t *
s_id_json (const uint8_t id[GKX_ID_BYTES])
{
    char hex[GKX_ID_TEXT_BYTES];
    sodium_bin2hex (hex, sizeof hex, id, GKX_ID_BYTES);
    return json_string (hex);
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

/* On the loop: the name node knows for member id, or the first 16 hex
   digits of the id when it knows none (a new JSON string). */
static json_t *
s_member_json (gkx_node_t *node, const uint8_t id[GKX_ID_BYTES])
{
    const char *name = gkx_node_member_name (node, id);
    if (name && name[0]) {
        json_t *json = json_string (name);
        if (json) {
            return json;
        }
    }
    char hex[GKX_ID_TEXT_BYTES];
    sodium_bin2hex (hex, sizeof hex, id, GKX_ID_BYTES);
    hex[GKX_STORE_SHORT_ID_CHARS] = '\0';
    return json_string (hex);
}

/* Whether a change record's entry reference ref is role's entry at seq. */
static int
s_is_entry (const json_t *ref, const char *role, uint64_t seq)
{
    return ref && strcmp (s_str (ref, "role"), role) == 0
           && json_integer_value (json_object_get (ref, "seq")) == (json_int_t) seq;
}

/* A change of a field, from a change log record, for the digest. */
static json_t *
s_field_change (const char *kind, const json_t *record)
{
    json_t *change = json_pack ("{s:s, s:O, s:O, s:O, s:O, s:O}", "kind", kind, "field",
                                json_object_get (record, "field"), "old",
                                json_object_get (record, "old"), "new",
                                json_object_get (record, "new"), "by",
                                json_object_get (record, "author_name"), "time",
                                json_object_get (record, "time"));
    if (!change) {
        return NULL;
    }
    json_t *key = json_object_get (record, "key");
    if (key) {
        json_object_set (change, "key", key);
    }
    json_t *reason = json_object_get (record, "reason");
    if (json_is_true (json_object_get (record, "rejected"))) {
        json_object_set_new (change, "rejected",
                             json_is_string (reason) ? json_copy (reason) : json_string ("?"));
    }
    return change;
}

/* A change described by text, for the digest. */
static json_t *
s_text_change (const char *kind, const char *text, json_t *by, const char *time)
{
    return json_pack ("{s:s, s:s, s:o, s:s}", "kind", kind, "text", text, "by", by, "time", time);
}

/* Appends to out the changes of an edit, propose or answer notice: the
   change log records its entry carried (an edit's operations, a proposal,
   an answer) or made take effect (the operations of an accepted
   proposal). */
static void
s_log_changes (json_t *out, const json_t *log, const gkx_notice_t *n)
{
    const char *role = gkx_role_name (n->role);
    size_t i;
    json_t *record;
    json_array_foreach (log, i, record) {
        const char *op = s_str (record, "op");
        int own = s_is_entry (json_object_get (record, "entry"), role, n->seq);
        int made = s_is_entry (json_object_get (record, "accepted_by"), role, n->seq);
        int is_op = strcmp (op, "set") == 0 || strcmp (op, "add") == 0
                    || strcmp (op, "remove") == 0;
        json_t *change = NULL;
        if (n->kind == GKX_KIND_EDIT && own && is_op) {
            change = s_field_change ("edit", record);
        }
        else if (n->kind == GKX_KIND_ANSWER && made && is_op) {
            change = s_field_change ("answer", record);
        }
        else if ((n->kind == GKX_KIND_PROPOSE || n->kind == GKX_KIND_ANSWER) && own && !is_op) {
            int proposed = strcmp (op, "propose") == 0;
            char *ops = proposed ? s_value_text (json_object_get (record, "ops")) : NULL;
            char text[S_CHANGE_TEXT_BYTES];
            snprintf (text, sizeof text, "%s proposal %.16s%s%s", proposed ? "new" : op,
                      s_str (record, "proposal"), ops ? ": " : "", ops ? ops : "");
            gkx_free (ops);
            change = s_text_change (n->kind == GKX_KIND_PROPOSE ? "propose" : "answer", text,
                                    json_copy (json_object_get (record, "author_name")),
                                    s_str (record, "time"));
            json_t *reason = json_object_get (record, "reason");
            if (change && json_is_true (json_object_get (record, "rejected"))) {
                json_object_set_new (change, "rejected",
                                     json_is_string (reason) ? json_copy (reason)
                                                             : json_string ("?"));
            }
        }
        if (change) {
            json_array_append_new (out, change);
        }
    }
}

/* The change of a conversion status notice, read from its entry. */
static json_t *
s_status_change (gkx_node_t *node, const gkx_notice_t *n, const gkx_entry_t *entry)
{
    size_t len;
    const uint8_t *body = gkx_entry_body (entry, &len);
    gkx_conversion_change_t change;
    char errbuf[GKX_ERRBUF_BYTES];
    char time[GKX_HLC_TEXT_BYTES];
    gkx_hlc_format (time, sizeof time, gkx_entry_hlc (entry));
    json_t *by = s_member_json (node, gkx_entry_author (entry));
    if (gkx_conversion_change_decode (&change, body, len, errbuf) != GKX_OK) {
        char text[2 * GKX_ERRBUF_BYTES];
        snprintf (text, sizeof text, "a conversion status change that cannot be read: %s",
                  errbuf);
        return s_text_change ("conversion_status", text, by, time);
    }
    char hex[2 * GKX_CONVERSION_ID_BYTES + 1];
    sodium_bin2hex (hex, sizeof hex, change.conversion, sizeof change.conversion);
    char field[GKX_ERRBUF_BYTES];
    snprintf (field, sizeof field, "conversion %.*s", S_CONVERSION_SHORT_CHARS, hex);
    const char *before = n->prior ? gkx_conversion_status_name (n->prior) : "unknown";
    const char *after = gkx_conversion_status_name (change.status);
    json_t *json = json_pack ("{s:s, s:s, s:o, s:o, s:o, s:s}", "kind", "conversion_status",
                              "field", field, "old", before ? json_string (before) : json_null (),
                              "new", json_string (after ? after : "?"), "by", by, "time", time);
    if (json && change.reason[0]) {
        char reason[GKX_CONVERSION_REASON_MAX + S_STATUS_NAME_BYTES];
        snprintf (reason, sizeof reason, "%s (reason: %s)", after ? after : "?", change.reason);
        json_object_set_new (json, "new", s_text_json (reason));
    }
    return json;
}

/* The change of a new partnership notice: the genesis's offer, in brief. */
static json_t *
s_genesis_change (gkx_node_t *node, const gkx_entry_t *entry)
{
    char time[GKX_HLC_TEXT_BYTES];
    gkx_hlc_format (time, sizeof time, gkx_entry_hlc (entry));
    json_t *by = s_member_json (node, gkx_entry_author (entry));
    msgpack_sbuffer offer_bytes;
    msgpack_sbuffer policy_bytes;
    msgpack_sbuffer_init (&offer_bytes);
    msgpack_sbuffer_init (&policy_bytes);
    gkx_offer_t *offer = NULL;
    char errbuf[GKX_ERRBUF_BYTES];
    json_t *json = NULL;
    if (gkx_genesis_values (entry, &offer_bytes, &policy_bytes) == GKX_OK
        && gkx_offer_decode (&offer, (const uint8_t *) offer_bytes.data, offer_bytes.size, errbuf)
               == GKX_OK) {
        json = gkx_offer_to_json (offer);
    }
    const json_t *payout = json_object_get (json, "payout");
    char text[GKX_ERRBUF_BYTES];
    snprintf (text, sizeof text, "new partnership: the offer \"%.200s\", payout %s %s (%s)",
              s_str (json, "name"), s_str (payout, "amount"), s_str (payout, "currency"),
              s_str (payout, "model"));
    json_decref (json);
    gkx_offer_destroy (&offer);
    msgpack_sbuffer_destroy (&offer_bytes);
    msgpack_sbuffer_destroy (&policy_bytes);
    return s_text_change ("genesis", text, by, time);
}

/* The change of a frozen partnership notice. */
static json_t *
s_frozen_change (gkx_node_t *node, const gkx_partnership_t *p, const gkx_notice_t *n)
{
    const uint8_t *who = n->role == GKX_ROLE_ADVERTISER ? p->advertiser : p->publisher;
    char time[S_TIME_TEXT_BYTES];
    s_time_text (time, n->queued_ms);
    char text[GKX_ERRBUF_BYTES];
    snprintf (text, sizeof text,
              "partnership frozen: the %s signed two different entries at seq %" PRIu64
              "; both are kept as evidence, and no change is taken any more",
              gkx_role_name (n->role), n->seq);
    return s_text_change ("frozen", text, s_member_json (node, who), time);
}

/* On the loop: the digest of notices (all of one partnership, oldest
   first) for gkx_notifier_render; NULL when the partnership is gone. */
static json_t *
s_digest (gkx_node_t *node, const gkx_notice_t *notices, size_t count)
{
    gkx_store_t *store = gkx_node_store (node);
    const uint8_t *pid = notices[0].pid;
    gkx_partnership_t p;
    if (gkx_store_partnership (store, pid, &p) != GKX_OK) {
        return NULL;
    }
    int other = p.self_role == GKX_ROLE_ADVERTISER ? GKX_ROLE_PUBLISHER : GKX_ROLE_ADVERTISER;
    const uint8_t *counterparty = other == GKX_ROLE_ADVERTISER ? p.advertiser : p.publisher;
    json_t *digest = json_object ();
    json_object_set_new (digest, "partnership", s_id_json (pid));
    json_object_set_new (digest, "counterparty", s_member_json (node, counterparty));
    json_object_set_new (digest, "counterparty_role", json_string (gkx_role_name (other)));
    json_object_set_new (digest, "node", s_text_json (gkx_node_config (node)->name));
    json_t *changes = json_array ();
    json_t *log = NULL;
    gkx_merge_t *merge = NULL;
    if (gkx_store_merge_borrow (store, pid, &merge) == GKX_OK) {
        json_t *offer = gkx_offer_to_json (gkx_merge_offer (merge));
        json_object_set_new (digest, "offer", s_text_json (s_str (offer, "name")));
        json_decref (offer);
        json_t *advertiser = s_member_json (node, p.advertiser);
        json_t *publisher = s_member_json (node, p.publisher);
        log = gkx_merge_changes (merge, json_string_value (advertiser),
                                 json_string_value (publisher));
        json_decref (advertiser);
        json_decref (publisher);
    }
    for (size_t i = 0; i < count; i++) {
        const gkx_notice_t *n = &notices[i];
        gkx_entry_t *entry = NULL;
        if (n->kind == GKX_NOTICE_FROZEN) {
            json_array_append_new (changes, s_frozen_change (node, &p, n));
        }
        else if (n->kind == GKX_KIND_EDIT || n->kind == GKX_KIND_PROPOSE
                 || n->kind == GKX_KIND_ANSWER) {
            if (log) {
                s_log_changes (changes, log, n);
            }
        }
        else if (gkx_store_get (store, pid, n->role, n->seq, &entry) == GKX_OK) {
            json_t *change = n->kind == GKX_KIND_GENESIS ? s_genesis_change (node, entry)
                                                        : s_status_change (node, n, entry);
            if (change) {
                json_array_append_new (changes, change);
            }
        }
        gkx_entry_destroy (&entry);
    }
    json_decref (log);
    json_object_set_new (digest, "changes", changes);
    return digest;
}

/* gkx_store_notices_waiting callback: copies a notice. */
static int
s_notice_add (const gkx_notice_t *n, void *arg)
{
    s_notices_t *list = arg;
    list->items = gkx_realloc (list->items, (list->count + 1) * sizeof *list->items);
    list->items[list->count++] = *n;
    return 0;
}

/* On the loop: makes one message of notices (one partnership's, at most
   GKX_MESSAGE_NOTICES_MAX); logs and returns the store's code. A group
   whose entries show no change (an edit the merge log does not list, for
   example) still becomes a message, so that its notices leave the queue;
   it says so. */
static int
s_make_message (gkx_node_t *node, const gkx_notice_t *notices, size_t count, uint64_t now_ms)
{
    json_t *digest = s_digest (node, notices, count);
    char *subject = NULL;
    char *text = NULL;
    char *html = NULL;
    if (!digest) {
        digest = json_pack ("{s:o, s:[]}", "partnership", s_id_json (notices[0].pid), "changes");
    }
    if (json_array_size (json_object_get (digest, "changes")) == 0) {
        char time[S_TIME_TEXT_BYTES];
        s_time_text (time, notices[0].queued_ms);
        json_array_append_new (json_object_get (digest, "changes"),
                               s_text_change ("edit", "a change that left no trace in the offer",
                                              json_string (""), time));
    }
    int rc = gkx_notifier_render (digest, &subject, &text, &html);
    json_decref (digest);
    if (rc != GKX_OK) {
        return rc;
    }
    gkx_message_t m;
    memset (&m, 0, sizeof m);
    memcpy (m.pid, notices[0].pid, GKX_ID_BYTES);
    m.state = GKX_MESSAGE_PENDING;
    m.created_ms = now_ms;
    m.next_attempt_ms = now_ms;
    snprintf (m.subject, sizeof m.subject, "%s", subject);
    m.notice_count = count;
    for (size_t i = 0; i < count; i++) {
        m.notices[i] = notices[i].id;
    }
    char errbuf[GKX_ERRBUF_BYTES] = "";
    rc = gkx_store_message_add (gkx_node_store (node), &m, text, html, errbuf);
    if (rc != GKX_OK) {
        s_log ("warning", "cannot keep a message of %zu notices: %s", count, errbuf);
    }
    gkx_free (subject);
    gkx_free (text);
    gkx_free (html);
    return rc;
}

/* On the loop: groups the waiting notices by partnership and makes a
   message of each group whose oldest notice has waited window_ms; sets
   round->ready_ms to when the next group will be ready. */
static int
s_compose (gkx_notifier_t *self, gkx_node_t *node, s_round_t *round)
{
    s_notices_t list = {NULL, 0};
    int rc = gkx_store_notices_waiting (gkx_node_store (node), GKX_NOTIFIER_NOTICES_MAX,
                                        s_notice_add, &list);
    gkx_notice_t *group = gkx_zalloc ((list.count + 1) * sizeof *group);
    uint8_t *taken = gkx_zalloc (list.count + 1);
    for (size_t i = 0; rc == GKX_OK && i < list.count; i++) {
        if (taken[i]) {
            continue;
        }
        /* The first notice of a partnership is its oldest. */
        uint64_t ready = list.items[i].queued_ms + self->window_ms;
        size_t count = 0;
        for (size_t j = i; j < list.count && count < GKX_MESSAGE_NOTICES_MAX; j++) {
            if (!taken[j] && memcmp (list.items[j].pid, list.items[i].pid, GKX_ID_BYTES) == 0) {
                taken[j] = 1;
                group[count++] = list.items[j];
            }
        }
        if (ready > round->now_ms) {
            round->ready_ms = ready < round->ready_ms ? ready : round->ready_ms;
            continue;
        }
        rc = s_make_message (node, group, count, round->now_ms);
    }
    gkx_free (taken);
    gkx_free (group);
    gkx_free (list.items);
    return rc;
}

/* gkx_store_messages_due callback: copies a due message into the round. */
static int
s_collect (const gkx_message_t *m, void *arg)
{
    s_round_t *round = arg;
    if (round->count < GKX_NOTIFIER_BATCH_MAX) {
        round->items[round->count++].message = *m;
    }
    return 0;
}

/* The thread's notifier, for the loop functions of a round. */
typedef struct {
    gkx_notifier_t *self;
    s_round_t *round;
} s_fetch_t;

/* Makes the Message-ID of a message: its creation time, its id, the
   partnership's short id, at the sender's domain. */
static void
s_message_id (char out[S_MESSAGE_ID_BYTES], const gkx_message_t *m, const char *from)
{
    char short_id[GKX_STORE_SHORT_ID_CHARS + 1];
    gkx_store_short_id (short_id, m->pid);
    const char *at = strrchr (from, '@');
    snprintf (out, S_MESSAGE_ID_BYTES, "gkx.%" PRIu64 ".%" PRIu64 ".%s@%s", m->created_ms, m->id,
              short_id, at ? at + 1 : "gkx.invalid");
}

/* On the loop: makes the messages that are ready, then fetches the due
   ones and formats each with its bodies. */
static int
s_fetch (gkx_node_t *node, void *arg)
{
    s_fetch_t *fetch = arg;
    gkx_notifier_t *self = fetch->self;
    s_round_t *round = fetch->round;
    round->ran = 1;
    int rc = s_compose (self, node, round);
    if (rc != GKX_OK) {
        s_log ("warning", "cannot group the waiting notices: %s", gkx_strerror (rc));
    }
    gkx_store_t *store = gkx_node_store (node);
    rc = gkx_store_messages_due (store, round->now_ms, GKX_NOTIFIER_BATCH_MAX, s_collect, round);
    for (size_t i = 0; i < round->count; i++) {
        s_item_t *item = &round->items[i];
        char *text = NULL;
        char *html = NULL;
        if (gkx_store_message_body (store, item->message.id, &text, &html) != GKX_OK) {
            snprintf (item->error, sizeof item->error, "the message's bodies cannot be read");
            continue;
        }
        char message_id[S_MESSAGE_ID_BYTES];
        s_message_id (message_id, &item->message, self->from);
        gkx_notifier_mail_t mail = {self->from,
                                    self->from_name,
                                    (const char *const *) self->to,
                                    self->to_count,
                                    item->message.subject,
                                    message_id,
                                    item->message.created_ms,
                                    text,
                                    html};
        item->mail = gkx_notifier_mail_format (&mail);
        item->mail_len = strlen (item->mail);
        gkx_free (text);
        gkx_free (html);
    }
    return rc;
}

/* On the loop: records item's attempt on its message as the store holds it
   now. */
static int
s_record (gkx_node_t *node, void *arg)
{
    s_item_t *item = arg;
    item->ran = 1;
    gkx_store_t *store = gkx_node_store (node);
    gkx_message_t m;
    int rc = gkx_store_message_get (store, item->message.id, &m);
    if (rc != GKX_OK) {
        return rc;
    }
    int sent = item->error[0] == '\0';
    if (m.attempts < UINT32_MAX) {
        m.attempts++;
    }
    m.last_attempt_ms = item->done_ms;
    snprintf (m.last_error, sizeof m.last_error, "%s", item->error);
    if (sent) {
        m.state = GKX_MESSAGE_SENT;
        m.sent_ms = item->done_ms;
        m.next_attempt_ms = 0;
    }
    else {
        uint64_t delay = gkx_notifier_backoff_ms (m.attempts);
        uint64_t jitter = randombytes_uniform ((uint32_t) (delay / S_JITTER_DIVISOR) + 1);
        m.state = GKX_MESSAGE_FAILED;
        m.next_attempt_ms = item->done_ms + delay + jitter;
    }
    item->next_ms = m.next_attempt_ms;
    char errbuf[GKX_ERRBUF_BYTES] = "";
    rc = gkx_store_message_put (store, &m, errbuf);
    if (rc != GKX_OK) {
        s_log ("warning", "message %" PRIu64 ": attempt not recorded: %s", m.id, errbuf);
    }
    return rc;
}

/* libcurl read callback: the next bytes of the formatted message. */
static size_t
s_read (char *buffer, size_t size, size_t count, void *user)
{
    s_item_t *item = user;
    size_t room = size * count;
    size_t left = item->mail_len - item->sent_len;
    size_t take = left < room ? left : room;
    memcpy (buffer, item->mail + item->sent_len, take);
    item->sent_len += take;
    return take;
}

/* Sends item's message by SMTP; sets its error and done_ms. Returns 0, or
   1 when stop abandoned the transaction (nothing is set). */
static int
s_send (gkx_notifier_t *self, s_item_t *item)
{
    char curl_error[CURL_ERROR_SIZE] = "";
    char from[GKX_ERRBUF_BYTES];
    snprintf (from, sizeof from, "<%s>", self->from);
    struct curl_slist *recipients = NULL;
    for (size_t i = 0; i < self->to_count; i++) {
        char to[GKX_ERRBUF_BYTES];
        snprintf (to, sizeof to, "<%s>", self->to[i]);
        struct curl_slist *more = curl_slist_append (recipients, to);
        if (!more) {
            curl_slist_free_all (recipients);
            snprintf (item->error, sizeof item->error, "out of memory for the recipients");
            item->done_ms = s_now_ms ();
            return 0;
        }
        recipients = more;
    }
    item->sent_len = 0;
    CURL *curl = self->curl;
    curl_easy_reset (curl);
    curl_easy_setopt (curl, CURLOPT_URL, self->url);
    curl_easy_setopt (curl, CURLOPT_PROTOCOLS_STR, "smtp,smtps");
    curl_easy_setopt (curl, CURLOPT_USE_SSL,
                      (long) (self->require_tls ? CURLUSESSL_ALL : CURLUSESSL_TRY));
    if (self->user) {
        curl_easy_setopt (curl, CURLOPT_USERNAME, self->user);
        curl_easy_setopt (curl, CURLOPT_PASSWORD, self->password);
    }
    curl_easy_setopt (curl, CURLOPT_MAIL_FROM, from);
    curl_easy_setopt (curl, CURLOPT_MAIL_RCPT, recipients);
    curl_easy_setopt (curl, CURLOPT_UPLOAD, 1L);
    curl_easy_setopt (curl, CURLOPT_READFUNCTION, s_read);
    curl_easy_setopt (curl, CURLOPT_READDATA, item);
    curl_easy_setopt (curl, CURLOPT_INFILESIZE_LARGE, (curl_off_t) item->mail_len);
    curl_easy_setopt (curl, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt (curl, CURLOPT_TIMEOUT_MS, (long) GKX_NOTIFIER_TIMEOUT_MS);
    curl_easy_setopt (curl, CURLOPT_CONNECTTIMEOUT_MS, (long) S_CONNECT_TIMEOUT_MS);
    curl_easy_setopt (curl, CURLOPT_ERRORBUFFER, curl_error);
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
    curl_slist_free_all (recipients);
    if (abandoned) {
        return 1;
    }
    item->done_ms = s_now_ms ();
    if (mcode != CURLM_OK) {
        s_printable (item->error, sizeof item->error, curl_multi_strerror (mcode));
    }
    else if (code != CURLE_OK) {
        s_printable (item->error, sizeof item->error,
                     curl_error[0] ? curl_error : curl_easy_strerror (code));
    }
    return 0;
}

/* Sleeps up to wait_ms, less when stopped. */
static void
s_wait (gkx_notifier_t *self, uint64_t wait_ms)
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
    while (wait_ms > 0 && !atomic_load (&self->stopping)) {
        if (pthread_cond_timedwait (&self->wake, &self->lock, &deadline) == ETIMEDOUT) {
            break;
        }
    }
    pthread_mutex_unlock (&self->lock);
}

/* Attempts and records one item; returns 0 when recorded, else 1. */
static int
s_deliver (gkx_notifier_t *self, s_item_t *item)
{
    if (item->mail) {
        if (s_send (self, item) != 0) {
            return 1;
        }
    }
    else {
        item->done_ms = s_now_ms ();
    }
    if (item->error[0] && !self->failing) {
        s_log ("warning", "message %" PRIu64 " failed: %s; retrying with back-off",
               item->message.id, item->error);
    }
    else if (!item->error[0] && self->failing) {
        s_log ("info", "message %" PRIu64 " sent; e-mail resumes", item->message.id);
    }
    self->failing = item->error[0] != '\0';
    atomic_fetch_add (self->failing ? &self->failed : &self->sent, 1);
    int rc = gkx_node_call (self->node, s_record, item);
    return item->ran && rc == GKX_OK ? 0 : 1;
}

/* The e-mail thread: rounds of grouping, sending and recording until
   stopped. */
static void *
s_run (void *arg)
{
    gkx_notifier_t *self = arg;
    s_round_t *round = gkx_zalloc (sizeof *round);
    while (!atomic_load (&self->stopping)) {
        memset (round, 0, sizeof *round);
        round->now_ms = s_now_ms ();
        round->ready_ms = UINT64_MAX;
        s_fetch_t fetch = {self, round};
        int rc = gkx_node_call (self->node, s_fetch, &fetch);
        uint64_t wait_ms = S_IDLE_MS;
        if (!round->ran) {
            /* The loop does not run yet (or any more). */
            wait_ms = S_LOOP_WAIT_MS;
        }
        else if (rc != GKX_OK) {
            s_log ("warning", "cannot read the due messages: %s", gkx_strerror (rc));
        }
        int unrecorded = 0;
        for (size_t i = 0; i < round->count && !atomic_load (&self->stopping); i++) {
            unrecorded |= s_deliver (self, &round->items[i]);
        }
        uint64_t now = s_now_ms ();
        if (round->count == GKX_NOTIFIER_BATCH_MAX && !unrecorded) {
            /* A full round: more may be due already. */
            wait_ms = 0;
        }
        else if (round->ready_ms != UINT64_MAX) {
            uint64_t until = round->ready_ms > now ? round->ready_ms - now : 0;
            wait_ms = until < wait_ms ? until : wait_ms;
        }
        for (size_t i = 0; i < round->count; i++) {
            gkx_free (round->items[i].mail);
        }
        s_wait (self, wait_ms);
    }
    gkx_free (round);
    return NULL;
}

/* Reads the first line of the password file path (relative to dir unless
   absolute) into guarded memory at *password_p. The file must be a regular
   file that group and others cannot read. Messages name the file, never
   its content. */
static int
s_password_read (char **password_p, const char *dir, const char *path, char *errbuf)
{
    char full[S_PATH_BYTES];
    if ((size_t) snprintf (full, sizeof full, "%s%s%s", path[0] == '/' ? "" : dir,
                           path[0] == '/' ? "" : "/", path)
        >= sizeof full) {
        return gkx_fail (errbuf, GKX_EINVAL, "smtp.password_file: path too long");
    }
    int fd = open (full, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        return gkx_fail (errbuf, GKX_EINVAL, "smtp.password_file %s: %s", full, strerror (errno));
    }
    struct stat st;
    int rc = GKX_OK;
    if (fstat (fd, &st) != 0 || !S_ISREG (st.st_mode)) {
        rc = gkx_fail (errbuf, GKX_EINVAL, "smtp.password_file %s: not a regular file", full);
    }
    else if (st.st_mode & (S_IRWXG | S_IRWXO)) {
        rc = gkx_fail (errbuf, GKX_EINVAL,
                       "smtp.password_file %s: mode %03o lets others read it; chmod 600 it", full,
                       (unsigned) (st.st_mode & 0777));
    }
    char *text = sodium_malloc (S_PASSWORD_FILE_MAX + 1);
    if (rc == GKX_OK && !text) {
        rc = gkx_fail (errbuf, GKX_EIO, "smtp.password_file: no guarded memory");
    }
    size_t len = 0;
    ssize_t got = 1;
    while (rc == GKX_OK && got > 0 && len < S_PASSWORD_FILE_MAX) {
        got = read (fd, text + len, S_PASSWORD_FILE_MAX - len);
        len += got > 0 ? (size_t) got : 0;
    }
    close (fd);
    if (rc == GKX_OK && got < 0) {
        rc = gkx_fail (errbuf, GKX_EINVAL, "smtp.password_file %s: cannot read it", full);
    }
    if (rc == GKX_OK) {
        text[len] = '\0';
        text[strcspn (text, "\r\n")] = '\0';
        if (!text[0]) {
            rc = gkx_fail (errbuf, GKX_EINVAL, "smtp.password_file %s: its first line is empty",
                           full);
        }
    }
    if (rc != GKX_OK) {
        if (text) {
            sodium_free (text);
        }
        return rc;
    }
    sodium_mprotect_readonly (text);
    *password_p = text;
    return GKX_OK;
}

/* Checks an SMTP url: smtp:// or smtps:// with a host. */
static int
s_url_check (const char *url, char *errbuf)
{
    CURLU *parsed = curl_url ();
    char *scheme = NULL;
    char *host = NULL;
    int rc = GKX_OK;
    if (!parsed) {
        return gkx_fail (errbuf, GKX_EIO, "smtp.url: libcurl cannot parse URLs");
    }
    CURLUcode code = curl_url_set (parsed, CURLUPART_URL, url, CURLU_NON_SUPPORT_SCHEME);
    if (code != CURLUE_OK) {
        rc = gkx_fail (errbuf, GKX_EINVAL, "smtp.url: not a URL (%s)", curl_url_strerror (code));
    }
    else if (curl_url_get (parsed, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK
             || (strcmp (scheme, "smtp") != 0 && strcmp (scheme, "smtps") != 0)) {
        rc = gkx_fail (errbuf, GKX_EINVAL, "smtp.url: must start with smtp:// or smtps://");
    }
    else if (curl_url_get (parsed, CURLUPART_HOST, &host, 0) != CURLUE_OK || !host[0]) {
        rc = gkx_fail (errbuf, GKX_EINVAL, "smtp.url: names no host");
    }
    if (rc == GKX_OK) {
        curl_version_info_data *info = curl_version_info (CURLVERSION_NOW);
        int found = 0;
        for (const char *const *p = info->protocols; p && *p; p++) {
            found |= strcmp (*p, scheme) == 0;
        }
        if (!found) {
            rc = gkx_fail (errbuf, GKX_EIO, "smtp.url: this libcurl does not speak %s", scheme);
        }
    }
    curl_free (scheme);
    curl_free (host);
    curl_url_cleanup (parsed);
    return rc;
}

/* Stops the thread if it runs and frees everything. */
static void
s_destroy (gkx_notifier_t **self_p)
{
    gkx_notifier_t *self = *self_p;
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
    if (self->password) {
        sodium_free (self->password);
    }
    for (size_t i = 0; i < self->to_count; i++) {
        gkx_free (self->to[i]);
    }
    gkx_free (self->to);
    gkx_free (self->url);
    gkx_free (self->user);
    gkx_free (self->from);
    gkx_free (self->from_name);
    pthread_cond_destroy (&self->wake);
    pthread_mutex_destroy (&self->lock);
    gkx_free (self);
    *self_p = NULL;
}

int
gkx_notifier_start (gkx_notifier_t **self_p, gkx_node_t *node, char *errbuf)
{
    assert (self_p);
    assert (node);
    const gkx_config_t *config = gkx_node_config (node);
    assert (config->notify_on && config->smtp_url && config->smtp_from);
    if (sodium_init () < 0) {
        return gkx_fail (errbuf, GKX_EIO, "notifier: libsodium failed to initialise");
    }
    if (curl_global_init (CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        return gkx_fail (errbuf, GKX_EIO, "notifier: libcurl failed to initialise");
    }
    gkx_notifier_t *self = gkx_zalloc (sizeof *self);
    self->curl_ready = 1;
    self->node = node;
    pthread_mutex_init (&self->lock, NULL);
    pthread_condattr_t attr;
    pthread_condattr_init (&attr);
    pthread_condattr_setclock (&attr, CLOCK_MONOTONIC);
    pthread_cond_init (&self->wake, &attr);
    pthread_condattr_destroy (&attr);
    self->url = gkx_strdup (config->smtp_url);
    self->from = gkx_strdup (config->smtp_from);
    self->from_name = gkx_strdup (config->name);
    self->window_ms = (uint64_t) config->notify_window_seconds * S_SECOND_MS;
    self->to = gkx_zalloc (config->notify_to_count * sizeof *self->to);
    for (size_t i = 0; i < config->notify_to_count; i++) {
        self->to[self->to_count++] = gkx_strdup (config->notify_to[i]);
    }
    self->require_tls = strncmp (config->smtp_url, "smtps://", strlen ("smtps://")) == 0;
    int rc = s_url_check (config->smtp_url, errbuf);
    if (rc == GKX_OK && config->smtp_user) {
        self->user = gkx_strdup (config->smtp_user);
        /* A password never crosses the network in the clear. */
        self->require_tls = 1;
        rc = s_password_read (&self->password, gkx_node_dir (node), config->smtp_password_file,
                              errbuf);
    }
    if (rc != GKX_OK) {
        goto cleanup;
    }
    self->multi = curl_multi_init ();
    self->curl = curl_easy_init ();
    if (!self->multi || !self->curl) {
        rc = gkx_fail (errbuf, GKX_EIO, "notifier: libcurl cannot make a transfer handle");
        goto cleanup;
    }
    int error = pthread_create (&self->thread, NULL, s_run, self);
    if (error != 0) {
        rc = gkx_fail (errbuf, GKX_EIO, "notifier: cannot start the e-mail thread: %s",
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
gkx_notifier_stats (gkx_notifier_t *self, gkx_notifier_stats_t *out)
{
    assert (self && out);
    out->sent = atomic_load (&self->sent);
    out->failed = atomic_load (&self->failed);
}

void
gkx_notifier_stop (gkx_notifier_t **self_p)
{
    if (!self_p || !*self_p) {
        return;
    }
    s_destroy (self_p);
}

/* The M record of a message (docs/api.md). */
static json_t *
s_message_json (const gkx_config_t *config, const gkx_message_t *m)
{
    static const char *const states[] = {NULL, "pending", "sent", "failed"};
    json_t *to = json_array ();
    for (size_t i = 0; i < config->notify_to_count; i++) {
        json_array_append_new (to, json_string (config->notify_to[i]));
    }
    json_t *json = json_object ();
    json_object_set_new (json, "id", json_integer ((json_int_t) m->id));
    json_object_set_new (json, "partnership", s_id_json (m->pid));
    json_object_set_new (json, "subject", s_text_json (m->subject));
    json_object_set_new (json, "to", to);
    json_object_set_new (json, "changes", json_integer ((json_int_t) m->notice_count));
    json_object_set_new (json, "state",
                         m->state >= GKX_MESSAGE_PENDING && m->state <= GKX_MESSAGE_FAILED
                             ? json_string (states[m->state])
                             : json_null ());
    json_object_set_new (json, "attempts", json_integer ((json_int_t) m->attempts));
    json_object_set_new (json, "last_error", s_text_json (m->last_error));
    json_object_set_new (json, "queued", s_time_json (m->created_ms));
    json_object_set_new (json, "next_attempt", s_time_json (m->next_attempt_ms));
    json_object_set_new (json, "sent", s_time_json (m->sent_ms));
    return json;
}

/* gkx_store_messages callback: copies a message into the list. */
static int
s_list_add (const gkx_message_t *m, void *arg)
{
    s_list_t *list = arg;
    list->items = gkx_realloc (list->items, (list->count + 1) * sizeof *list->items);
    list->items[list->count++] = *m;
    return 0;
}

json_t *
gkx_notifier_messages_json (gkx_node_t *node, size_t limit)
{
    assert (node);
    s_list_t list = {NULL, 0};
    int rc = gkx_store_messages (gkx_node_store (node), limit, s_list_add, &list);
    json_t *messages = NULL;
    if (rc == GKX_OK) {
        messages = json_array ();
        for (size_t i = 0; i < list.count; i++) {
            json_array_append_new (messages, s_message_json (gkx_node_config (node),
                                                             &list.items[i]));
        }
    }
    gkx_free (list.items);
    return messages ? json_pack ("{s:o}", "notifications", messages) : NULL;
}
