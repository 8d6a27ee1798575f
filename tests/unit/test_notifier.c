/*  test_notifier - tests of the notifier module: back-off, rendering, mail
    format, start refusals, the thread and the outbox listing.
    Part of gokart-exchange; MIT licence.

    Rendering is compared byte for byte with a golden text. The mail format
    is taken apart again here (headers, encoded words, base64 parts) and
    must give back what went in, the same bytes each time.

    The test builds src/node/notifier.c itself and stands in for the five
    functions of gkxd it calls outside libgkx (gkx_node_call,
    gkx_node_store, gkx_node_config, gkx_node_dir, gkx_node_member_name): a
    stand-in node holds a real publisher store with notices on, and its
    "loop" is a mutex that the e-mail thread and the test take in turn. The
    thread case lets the notifier group real notices into a message and try
    to send it to a port where no SMTP server listens, then checks what the
    store recorded. Sending to a real server is test_notify.sh's part.
*/
#include "testutil.h"

#include "fixtures.h"

#include <gkx/config.h>
#include <gkx/error.h>
#include <gkx/identity.h>
#include <gkx/kind.h>
#include <gkx/notifier.h>
#include <gkx/store.h>

#include <fcntl.h>
#include <jansson.h>
#include <pthread.h>
#include <sodium.h>
#include <stdint.h>
#include <time.h>

/* Number of elements of a static array. */
#define S_COUNT(a) (sizeof (a) / sizeof ((a)[0]))
/* A port on 127.0.0.1 where nothing listens (discard, never served here). */
#define S_CLOSED_URL "smtp://127.0.0.1:9"
/* How long the thread case waits for a failed attempt (ms). */
#define S_WAIT_MS 10000

/* The test's stand-in for gkxd's node. */
struct gkx_node {
    pthread_mutex_t lock;                 /* the "loop": held while a call runs */
    int running;                          /* calls run; else they fail as when stopped */
    int calls;                            /* calls asked for */
    gkx_store_t *store;                   /* the publisher's store */
    gkx_config_t *config;                 /* its configuration */
    const char *dir;                      /* its directory */
    uint8_t advertiser[GKX_ID_BYTES];     /* named "acme" */
    uint8_t publisher[GKX_ID_BYTES];      /* named "pixel" */
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

const gkx_config_t *
gkx_node_config (gkx_node_t *self)
{
    return self->config;
}

const char *
gkx_node_dir (gkx_node_t *self)
{
    return self->dir;
}

const char *
gkx_node_member_name (gkx_node_t *self, const uint8_t id[GKX_ID_BYTES])
{
    if (memcmp (id, self->advertiser, GKX_ID_BYTES) == 0) {
        return "acme";
    }
    return memcmp (id, self->publisher, GKX_ID_BYTES) == 0 ? "pixel" : "";
}

/* Milliseconds of a monotonic clock. */
static uint64_t
s_clock_ms (void)
{
    struct timespec ts;
    clock_gettime (CLOCK_MONOTONIC, &ts);
    return (uint64_t) ts.tv_sec * 1000 + (uint64_t) ts.tv_nsec / 1000000;
}

/* A configuration with notifications on, sending to url. */
static gkx_config_t *
s_config (const char *url)
{
    gkx_config_t *c = gkx_zalloc (sizeof *c);
    c->name = gkx_strdup ("pixel");
    c->email = gkx_strdup ("");
    c->smtp_url = gkx_strdup (url);
    c->smtp_from = gkx_strdup ("gkx@pixel.example");
    c->notify_to[c->notify_to_count++] = gkx_strdup ("ops@pixel.example");
    c->notify_window_seconds = 0;
    c->notify_on = 1;
    return c;
}

/* Frees what s_config made (and a login the test added); sets *c_p to
   NULL. */
static void
s_config_destroy (gkx_config_t **c_p)
{
    gkx_config_t *c = *c_p;
    gkx_free (c->name);
    gkx_free (c->email);
    gkx_free (c->smtp_url);
    gkx_free (c->smtp_from);
    gkx_free (c->smtp_user);
    gkx_free (c->smtp_password_file);
    for (size_t i = 0; i < c->notify_to_count; i++) {
        gkx_free (c->notify_to[i]);
    }
    gkx_free (c);
    *c_p = NULL;
}

/* Back-off after each number of failed attempts. */
static const struct {
    uint32_t attempts;
    uint64_t ms;
} s_backoffs[] = {{1, 1000}, {2, 2000}, {3, 4000}, {9, 256000}, {10, 300000}, {UINT32_MAX, 300000}};

START_TEST (test_backoff)
{
    ck_assert_uint_eq (gkx_notifier_backoff_ms (s_backoffs[_i].attempts), s_backoffs[_i].ms);
}
END_TEST

/* A digest with every sort of change line. */
static const char *s_digest_text =
    "{\"partnership\": \"1db6d4d9a0c3e5f7000000000000000000000000000000000000000000000000\","
    " \"offer\": \"Puzzle <Quest> & Co\", \"counterparty\": \"acme\","
    " \"counterparty_role\": \"advertiser\", \"node\": \"pixel\", \"changes\": ["
    "{\"kind\": \"edit\", \"field\": \"payout.amount\", \"old\": \"2.50\", \"new\": \"2.75\","
    " \"by\": \"acme\", \"time\": \"2026-11-30T10:00:02.001Z\"},"
    "{\"kind\": \"edit\", \"field\": \"targeting.countries\", \"key\": \"FR\","
    " \"old\": [\"CA\", \"US\"], \"new\": [\"CA\", \"FR\", \"US\"],"
    " \"by\": \"acme\", \"time\": \"2026-11-30T10:00:02.001Z\"},"
    "{\"kind\": \"edit\", \"field\": \"status\", \"old\": \"active\", \"new\": \"paused\","
    " \"by\": \"acme\", \"time\": \"2026-11-30T10:00:03.500Z\"},"
    "{\"kind\": \"edit\", \"field\": \"caps.daily\", \"old\": null, \"new\": 5,"
    " \"rejected\": \"the publisher alone may change caps.daily\","
    " \"by\": \"acme\", \"time\": \"2026-11-30T10:00:04.000Z\"},"
    "{\"kind\": \"propose\", \"text\": \"new proposal 0123456789abcdef: []\","
    " \"by\": \"acme\", \"time\": \"2026-11-30T10:00:05.000Z\"},"
    "{\"kind\": \"conversion_status\", \"field\": \"conversion 00aa00aa00aa00aa\","
    " \"old\": \"approved\", \"new\": \"reversed (reason: chargeback)\","
    " \"by\": \"acme\", \"time\": \"2026-11-30T10:00:06.000Z\"}]}";

/* What s_digest_text renders to. */
static const char *s_golden_text =
    "acme (advertiser): changed payout.amount, targeting.countries, caps.daily; paused the "
    "offer; made 1 proposal; changed the status of 1 conversion.\n"
    "\n"
    "Partnership: Puzzle <Quest> & Co "
    "(1db6d4d9a0c3e5f7000000000000000000000000000000000000000000000000)\n"
    "Counterparty: acme (advertiser)\n"
    "\n"
    "The changes, oldest first:\n"
    "* payout.amount: 2.50 -> 2.75\n"
    "  by acme, 2026-11-30 10:00:02 UTC\n"
    "* targeting.countries[FR]: [\"CA\",\"US\"] -> [\"CA\",\"FR\",\"US\"]\n"
    "  by acme, 2026-11-30 10:00:02 UTC\n"
    "* status: active -> paused\n"
    "  by acme, 2026-11-30 10:00:03 UTC\n"
    "* caps.daily: (none) -> 5 (rejected: the publisher alone may change caps.daily)\n"
    "  by acme, 2026-11-30 10:00:04 UTC\n"
    "* new proposal 0123456789abcdef: []\n"
    "  by acme, 2026-11-30 10:00:05 UTC\n"
    "* conversion 00aa00aa00aa00aa: approved -> reversed (reason: chargeback)\n"
    "  by acme, 2026-11-30 10:00:06 UTC\n"
    "\n"
    "-- \n"
    "Sent by gkxd for pixel. The whole change log: gkx changes "
    "1db6d4d9a0c3e5f7000000000000000000000000000000000000000000000000\n";

/* Renders text (a digest) and checks it succeeds. */
static void
s_render (const char *text, char **subject, char **body, char **html)
{
    json_error_t error;
    json_t *digest = json_loads (text, 0, &error);
    ck_assert_msg (digest != NULL, "digest: %s", error.text);
    ck_assert_int_eq (gkx_notifier_render (digest, subject, body, html), GKX_OK);
    json_decref (digest);
}

START_TEST (test_render_changes)
{
    char *subject = NULL;
    char *text = NULL;
    char *html = NULL;
    s_render (s_digest_text, &subject, &text, &html);
    ck_assert_str_eq (subject, "[gkx] Puzzle <Quest> & Co (1db6d4d9a0c3e5f7): 6 changes by acme");
    ck_assert_str_eq (text, s_golden_text);
    /* The HTML part has every value, escaped, in a table row. */
    ck_assert_ptr_nonnull (strstr (html, "<p>acme (advertiser): changed payout.amount, "));
    ck_assert_ptr_nonnull (strstr (html, "<b>Puzzle &lt;Quest&gt; &amp; Co</b>"));
    ck_assert_ptr_nonnull (strstr (html, "<tr><td><code>payout.amount</code></td><td>2.50</td>"
                                         "<td>2.75</td><td>acme</td>"
                                         "<td>2026-11-30 10:00:02 UTC</td></tr>"));
    ck_assert_ptr_nonnull (strstr (html, "<td>[&quot;CA&quot;,&quot;US&quot;]</td>"));
    ck_assert_ptr_nonnull (strstr (html, " <em>(rejected: the publisher alone may change "
                                         "caps.daily)</em>"));
    ck_assert_ptr_nonnull (strstr (html, "<tr><td colspan=\"3\">new proposal 0123456789abcdef: "
                                         "[]</td>"));
    ck_assert_ptr_null (strstr (html, "<Quest>"));
    gkx_free (subject);
    gkx_free (text);
    gkx_free (html);
}
END_TEST

/* The subject of each sort of message, and the summary of a few. */
static const struct {
    const char *changes;
    const char *subject;
    const char *summary;
} s_subjects[] = {
    {"{\"kind\": \"genesis\", \"text\": \"new partnership\"}",
     "[gkx] New partnership: Quest (1db6d4d9a0c3e5f7) from acme",
     "acme (advertiser): shared 1 new offer with you.\n"},
    {"{\"kind\": \"frozen\", \"text\": \"partnership frozen\"}",
     "[gkx] Frozen partnership: Quest (1db6d4d9a0c3e5f7) with acme",
     "acme (advertiser): signed two different entries at one place in its log: the partnership "
     "is frozen.\n"},
    {"{\"kind\": \"edit\", \"field\": \"status\", \"old\": \"paused\", \"new\": \"active\"}",
     "[gkx] Quest (1db6d4d9a0c3e5f7): 1 change by acme", "acme (advertiser): resumed the offer.\n"},
    {"{\"kind\": \"answer\", \"text\": \"accept proposal 0123\"}, {\"kind\": \"answer\", "
     "\"field\": \"payout.amount\", \"old\": \"1\", \"new\": \"2\"}",
     "[gkx] Quest (1db6d4d9a0c3e5f7): 2 changes by acme",
     "acme (advertiser): changed payout.amount; answered 1 proposal.\n"},
};

START_TEST (test_render_subjects)
{
    char digest[1024];
    snprintf (digest, sizeof digest,
              "{\"partnership\": \"1db6d4d9a0c3e5f7\", \"offer\": \"Quest\", "
              "\"counterparty\": \"acme\", \"counterparty_role\": \"advertiser\", "
              "\"changes\": [%s]}",
              s_subjects[_i].changes);
    char *subject = NULL;
    char *text = NULL;
    char *html = NULL;
    s_render (digest, &subject, &text, &html);
    ck_assert_str_eq (subject, s_subjects[_i].subject);
    ck_assert_msg (strncmp (text, s_subjects[_i].summary, strlen (s_subjects[_i].summary)) == 0,
                   "text: %s", text);
    gkx_free (subject);
    gkx_free (text);
    gkx_free (html);
}
END_TEST

/* A digest without changes is refused and the outputs are left alone; a
   long value is cut at a character's start; control characters in names
   never reach a header or a line. */
START_TEST (test_render_edges)
{
    json_t *digest = json_pack ("{s:s}", "offer", "Quest");
    char *subject = (char *) "untouched";
    char *text = subject;
    char *html = subject;
    ck_assert_int_eq (gkx_notifier_render (digest, &subject, &text, &html), GKX_EINVAL);
    ck_assert_str_eq (subject, "untouched");
    ck_assert_str_eq (text, "untouched");
    ck_assert_str_eq (html, "untouched");
    json_decref (digest);

    /* 299 ASCII bytes, then two-byte characters: the cut falls inside one. */
    char value[512];
    memset (value, 'a', 299);
    size_t at = 299;
    while (at + 2 < sizeof value) {
        value[at++] = (char) 0xc3;
        value[at++] = (char) 0xa4;
    }
    value[at] = '\0';
    digest = json_pack ("{s:s, s:s, s:[{s:s, s:s, s:s, s:s}]}", "offer", "Q\nX-Evil: 1",
                        "counterparty", "ac\r\nme", "changes", "kind", "edit", "field",
                        "settings.note", "old", "x", "new", value);
    ck_assert_ptr_nonnull (digest);
    ck_assert_int_eq (gkx_notifier_render (digest, &subject, &text, &html), GKX_OK);
    ck_assert_ptr_null (strchr (subject, '\n'));
    ck_assert_ptr_null (strchr (subject, '\r'));
    ck_assert_ptr_nonnull (strstr (subject, "Q X-Evil: 1"));
    char want[400];
    memset (want, 'a', 299);
    snprintf (want + 299, sizeof want - 299, "...\n");
    ck_assert_msg (strstr (text, want) != NULL, "text: %s", text);
    ck_assert_ptr_nonnull (strstr (text, "ac  me (): changed settings.note."));
    gkx_free (subject);
    gkx_free (text);
    gkx_free (html);
    json_decref (digest);
}
END_TEST

/* Decodes a base64 MIME body (CRLF lines) into a new string. */
static char *
s_base64_decode (const char *encoded, size_t len)
{
    char *out = gkx_zalloc (len + 1);
    size_t out_len = 0;
    ck_assert_int_eq (sodium_base642bin ((unsigned char *) out, len, encoded, len, "\r\n",
                                         &out_len, NULL, sodium_base64_VARIANT_ORIGINAL),
                      0);
    out[out_len] = '\0';
    return out;
}

/* Decodes a header of RFC 2047 encoded words (folded) into a new string;
   checks each word fits in 75 characters. */
static char *
s_words_decode (const char *header)
{
    char *out = gkx_zalloc (strlen (header) + 1);
    size_t out_len = 0;
    const char *p = header;
    while (*p) {
        ck_assert_msg (strncmp (p, "=?UTF-8?B?", 10) == 0, "not an encoded word: %s", p);
        const char *end = strstr (p + 10, "?=");
        ck_assert_ptr_nonnull (end);
        ck_assert_int_le (end + 2 - p, 75);
        size_t got = 0;
        ck_assert_int_eq (sodium_base642bin ((unsigned char *) out + out_len, strlen (header),
                                             p + 10, (size_t) (end - (p + 10)), NULL, &got,
                                             NULL, sodium_base64_VARIANT_ORIGINAL),
                          0);
        out_len += got;
        p = end + 2;
        if (*p) {
            ck_assert_msg (strncmp (p, "\r\n ", 3) == 0, "not folded: %s", p);
            p += 3;
        }
    }
    out[out_len] = '\0';
    return out;
}

/* Returns a new copy of the value of header name in mail (up to the next
   line that does not start with a space). */
static char *
s_header (const char *mail, const char *name)
{
    char prefix[64];
    snprintf (prefix, sizeof prefix, "\r\n%s: ", name);
    const char *at = strncmp (mail, prefix + 2, strlen (prefix) - 2) == 0 ? mail - 2
                                                                         : strstr (mail, prefix);
    ck_assert_msg (at != NULL, "no %s header", name);
    const char *start = at + strlen (prefix);
    const char *end = start;
    while (!(end[0] == '\r' && end[1] == '\n' && end[2] != ' ')) {
        end++;
    }
    char *value = gkx_zalloc ((size_t) (end - start) + 1);
    memcpy (value, start, (size_t) (end - start));
    return value;
}

/* Returns the decoded body of the part of content type type. */
static char *
s_part (const char *mail, const char *type)
{
    char head[128];
    snprintf (head, sizeof head, "Content-Type: %s; charset=utf-8\r\n"
                                 "Content-Transfer-Encoding: base64\r\n\r\n", type);
    const char *start = strstr (mail, head);
    ck_assert_msg (start != NULL, "no %s part", type);
    start += strlen (head);
    const char *end = strstr (start, "--=_gkx_");
    ck_assert_ptr_nonnull (end);
    return s_base64_decode (start, (size_t) (end - start));
}

START_TEST (test_mail_format)
{
    const char *to[] = {"ops@pixel.example", "cfo@pixel.example"};
    const char *subject = "[gkx] Änderungen an „Puzzle Quest iOS US“ (1db6d4d9a0c3e5f7): 3 "
                          "changes by ACME Grüße GmbH und weitere Zeichen, die lang sind";
    gkx_notifier_mail_t mail = {"gkx@pixel.example", "Pixel \"Ads\" Ltd", to, 2, subject,
                                "gkx.1796032805000.7.1db6d4d9a0c3e5f7@pixel.example",
                                1796032805000ULL, "Zeile eins\nÄ\n", "<p>Ä &amp; B</p>\n"};
    char *text = gkx_notifier_mail_format (&mail);
    char *again = gkx_notifier_mail_format (&mail);
    ck_assert_str_eq (text, again);
    ck_assert_msg (strncmp (text, "Date: Mon, 30 Nov 2026 10:00:05 +0000\r\n", 39) == 0, "%s",
                   text);
    char *from = s_header (text, "From");
    ck_assert_str_eq (from, "\"Pixel \\\"Ads\\\" Ltd\" <gkx@pixel.example>");
    char *to_header = s_header (text, "To");
    ck_assert_str_eq (to_header, "<ops@pixel.example>,\r\n <cfo@pixel.example>");
    char *encoded = s_header (text, "Subject");
    char *decoded = s_words_decode (encoded);
    ck_assert_str_eq (decoded, subject);
    char *id = s_header (text, "Message-ID");
    ck_assert_str_eq (id, "<gkx.1796032805000.7.1db6d4d9a0c3e5f7@pixel.example>");
    char *version = s_header (text, "MIME-Version");
    ck_assert_str_eq (version, "1.0");
    char *auto_submitted = s_header (text, "Auto-Submitted");
    ck_assert_str_eq (auto_submitted, "auto-generated");
    char *type = s_header (text, "Content-Type");
    ck_assert_msg (strncmp (type, "multipart/alternative; boundary=\"=_gkx_", 39) == 0, "%s", type);
    char *plain = s_part (text, "text/plain");
    ck_assert_str_eq (plain, "Zeile eins\r\nÄ\r\n");
    char *html = s_part (text, "text/html");
    ck_assert_str_eq (html, "<p>Ä &amp; B</p>\r\n");
    /* Every line ends in CRLF and fits in 78 characters. */
    for (const char *p = text; *p;) {
        const char *eol = strstr (p, "\r\n");
        ck_assert_ptr_nonnull (eol);
        ck_assert_int_le (eol - p, 78);
        ck_assert_ptr_null (memchr (p, '\n', (size_t) (eol - p)));
        p = eol + 2;
    }
    /* The last boundary closes the body. */
    char closing[64];
    const char *boundary = strchr (type, '"') + 1;
    snprintf (closing, sizeof closing, "--%.*s--\r\n", (int) strcspn (boundary, "\""), boundary);
    ck_assert_ptr_nonnull (strstr (text, closing));
    /* Another message, another boundary; plain ASCII stays as it is. */
    mail.message_id = "gkx.1.8.1db6d4d9a0c3e5f7@pixel.example";
    mail.subject = "[gkx] Quest (1db6d4d9a0c3e5f7): 1 change by acme";
    mail.from_name = NULL;
    char *other = gkx_notifier_mail_format (&mail);
    char *other_type = s_header (other, "Content-Type");
    ck_assert_str_ne (other_type, type);
    char *plain_subject = s_header (other, "Subject");
    ck_assert_str_eq (plain_subject, mail.subject);
    char *bare_from = s_header (other, "From");
    ck_assert_str_eq (bare_from, "<gkx@pixel.example>");
    gkx_free (text);
    gkx_free (again);
    gkx_free (from);
    gkx_free (to_header);
    gkx_free (encoded);
    gkx_free (decoded);
    gkx_free (id);
    gkx_free (version);
    gkx_free (auto_submitted);
    gkx_free (type);
    gkx_free (plain);
    gkx_free (html);
    gkx_free (other);
    gkx_free (other_type);
    gkx_free (plain_subject);
    gkx_free (bare_from);
}
END_TEST

/* Writes a password file of mode into dir/name. */
static void
s_password_file (const char *dir, const char *name, const char *content, mode_t mode)
{
    char path[PATH_MAX + 64];
    snprintf (path, sizeof path, "%s/%s", dir, name);
    int fd = open (path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    ck_assert_int_ge (fd, 0);
    ck_assert_int_eq (write (fd, content, strlen (content)), (ssize_t) strlen (content));
    ck_assert_int_eq (fchmod (fd, mode), 0);
    close (fd);
}

/* Starts with config and expects code and a message starting with message
   (with "DIR" standing for the node directory); the node is never called. */
static void
s_start_refused (gkx_config_t *config, const char *dir, int code, const char *message)
{
    struct gkx_node node;
    memset (&node, 0, sizeof node);
    pthread_mutex_init (&node.lock, NULL);
    node.config = config;
    node.dir = dir;
    gkx_notifier_t *notifier = NULL;
    char errbuf[GKX_ERRBUF_BYTES] = "";
    ck_assert_int_eq (gkx_notifier_start (&notifier, &node, errbuf), code);
    ck_assert_ptr_null (notifier);
    char want[GKX_ERRBUF_BYTES + PATH_MAX];
    const char *mark = strstr (message, "DIR");
    if (mark) {
        snprintf (want, sizeof want, "%.*s%s%s", (int) (mark - message), message, dir, mark + 3);
    }
    else {
        snprintf (want, sizeof want, "%s", message);
    }
    ck_assert_msg (strncmp (errbuf, want, strlen (want)) == 0, "message: %s", errbuf);
    ck_assert_int_eq (node.calls, 0);
    pthread_mutex_destroy (&node.lock);
}

START_TEST (test_start_refusals)
{
    char dir[PATH_MAX];
    gkx_test_tmpdir (dir);
    gkx_config_t *config = s_config ("smtp://");
    s_start_refused (config, dir, GKX_EINVAL, "smtp.url: ");
    s_config_destroy (&config);
    config = s_config ("http://mail.example");
    s_start_refused (config, dir, GKX_EINVAL, "smtp.url: must start with smtp:// or smtps://");
    s_config_destroy (&config);

    config = s_config ("smtps://mail.example:465");
    config->smtp_user = gkx_strdup ("alerts@pixel.example");
    config->smtp_password_file = gkx_strdup ("smtp.password");
    s_start_refused (config, dir, GKX_EINVAL,
                     "smtp.password_file DIR/smtp.password: No such file or directory");
    s_password_file (dir, "smtp.password", "s3cret\n", 0640);
    s_start_refused (config, dir, GKX_EINVAL,
                     "smtp.password_file DIR/smtp.password: mode 640 lets others read it; "
                     "chmod 600 it");
    s_password_file (dir, "smtp.password", "\ns3cret\n", 0600);
    s_start_refused (config, dir, GKX_EINVAL,
                     "smtp.password_file DIR/smtp.password: its first line is empty");
    /* A good file starts; the message never holds the password. */
    s_password_file (dir, "smtp.password", "s3cret\nignored\n", 0600);
    struct gkx_node node;
    memset (&node, 0, sizeof node);
    pthread_mutex_init (&node.lock, NULL);
    node.config = config;
    node.dir = dir;
    gkx_notifier_t *notifier = NULL;
    char errbuf[GKX_ERRBUF_BYTES] = "";
    ck_assert_int_eq (gkx_notifier_start (&notifier, &node, errbuf), GKX_OK);
    uint64_t start = s_clock_ms ();
    gkx_notifier_stop (&notifier);
    ck_assert_uint_lt (s_clock_ms () - start, 1000);
    ck_assert_ptr_null (notifier);
    gkx_notifier_stop (&notifier);
    gkx_notifier_stop (NULL);
    pthread_mutex_destroy (&node.lock);
    s_config_destroy (&config);
    char path[PATH_MAX + 64];
    snprintf (path, sizeof path, "%s/smtp.password", dir);
    unlink (path);
    gkx_test_rmtree (dir);
}
END_TEST

/* Reads message 1 of store into *m; returns 1 when it has failed at least
   once. */
static int
s_first_failed (struct gkx_node *node, gkx_message_t *m)
{
    pthread_mutex_lock (&node->lock);
    int rc = gkx_store_message_get (node->store, 1, m);
    pthread_mutex_unlock (&node->lock);
    return rc == GKX_OK && m->state == GKX_MESSAGE_FAILED;
}

/* The thread groups a partnership's notices (a new partnership, then an
   edit) into one message with a subject, a summary and each change, tries
   to send it to a server that is not there, and records the failure with
   the error and a next attempt after the back-off. The outbox listing
   shows it. */
START_TEST (test_thread_composes_and_retries)
{
    char root[PATH_MAX];
    char dir_a[PATH_MAX + 8];
    char dir_b[PATH_MAX + 8];
    gkx_test_tmpdir (root);
    snprintf (dir_a, sizeof dir_a, "%s/a", root);
    snprintf (dir_b, sizeof dir_b, "%s/b", root);
    gkx_identity_t *a = gkx_identity_new ();
    gkx_identity_t *b = gkx_identity_new ();
    gkx_store_t *store_a = NULL;
    struct gkx_node node;
    memset (&node, 0, sizeof node);
    pthread_mutex_init (&node.lock, NULL);
    node.config = s_config (S_CLOSED_URL);
    node.dir = root;
    memcpy (node.advertiser, gkx_identity_id (a), GKX_ID_BYTES);
    memcpy (node.publisher, gkx_identity_id (b), GKX_ID_BYTES);
    gkx_store_options_t options;
    memset (&options, 0, sizeof options);
    options.notices = 1;
    char errbuf[GKX_ERRBUF_BYTES] = "";
    ck_assert_int_eq (gkx_store_open (&store_a, dir_a, gkx_identity_id (a), NULL, errbuf), GKX_OK);
    ck_assert_int_eq (gkx_store_open (&node.store, dir_b, gkx_identity_id (b), &options, errbuf),
                      GKX_OK);
    uint8_t pid[GKX_ID_BYTES];
    gkx_entry_t *genesis = NULL;
    ck_assert_int_eq (gkx_store_share (store_a, a, gkx_identity_id (b), GKX_TEST_OFFER, NULL, 0,
                                       pid, &genesis, errbuf),
                      GKX_OK);
    msgpack_sbuffer body;
    gkx_test_edit_body (&body, "payout.amount=2.75");
    gkx_entry_t *edit = NULL;
    ck_assert_int_eq (gkx_store_append (store_a, a, pid, GKX_KIND_EDIT,
                                        (const uint8_t *) body.data, body.size, &edit, errbuf),
                      GKX_OK);
    msgpack_sbuffer_destroy (&body);
    const gkx_entry_t *entries[] = {genesis, edit};
    for (size_t i = 0; i < S_COUNT (entries); i++) {
        size_t len;
        const uint8_t *bytes = gkx_entry_bytes (entries[i], &len);
        int result = 0;
        ck_assert_msg (gkx_store_ingest (node.store, bytes, len, gkx_identity_id (a), &result,
                                         errbuf)
                           == GKX_OK,
                       "%s", errbuf);
    }

    node.running = 1;
    gkx_notifier_t *notifier = NULL;
    ck_assert_int_eq (gkx_notifier_start (&notifier, &node, errbuf), GKX_OK);
    gkx_message_t m;
    uint64_t deadline = s_clock_ms () + S_WAIT_MS;
    while (!s_first_failed (&node, &m) && s_clock_ms () < deadline) {
        usleep (20000);
    }
    gkx_notifier_stop (&notifier);
    ck_assert_int_eq (m.state, GKX_MESSAGE_FAILED);
    ck_assert_uint_ge (m.attempts, 1);
    ck_assert_msg (strstr (m.last_error, "onnect") != NULL, "error: %s", m.last_error);
    ck_assert_uint_ge (m.next_attempt_ms, m.last_attempt_ms + 1000);
    ck_assert_uint_eq (m.notice_count, 2);
    ck_assert_uint_eq (m.notices[0], 1);
    ck_assert_uint_eq (m.notices[1], 2);
    char short_id[GKX_STORE_SHORT_ID_CHARS + 1];
    gkx_store_short_id (short_id, pid);
    char subject[128];
    snprintf (subject, sizeof subject, "[gkx] New partnership: Puzzle Quest iOS US (%s) from acme",
              short_id);
    ck_assert_str_eq (m.subject, subject);
    char *text = NULL;
    char *html = NULL;
    ck_assert_int_eq (gkx_store_message_body (node.store, 1, &text, &html), GKX_OK);
    ck_assert_msg (strncmp (text, "acme (advertiser): shared 1 new offer with you; changed "
                                  "payout.amount.\n",
                            70) == 0,
                   "text: %s", text);
    ck_assert_ptr_nonnull (strstr (text, "* new partnership: the offer \"Puzzle Quest iOS US\", "
                                         "payout 2.50 USD (cpi)\n  by acme, "));
    ck_assert_ptr_nonnull (strstr (text, "* payout.amount: 2.50 -> 2.75\n  by acme, "));
    ck_assert_ptr_nonnull (strstr (html, "<td><code>payout.amount</code></td>"));
    gkx_free (text);
    gkx_free (html);

    node.running = 1;
    json_t *listing = gkx_notifier_messages_json (&node, 10);
    ck_assert_ptr_nonnull (listing);
    json_t *rows = json_object_get (listing, "notifications");
    ck_assert_uint_eq (json_array_size (rows), 1);
    json_t *row = json_array_get (rows, 0);
    ck_assert_int_eq (json_integer_value (json_object_get (row, "id")), 1);
    ck_assert_str_eq (json_string_value (json_object_get (row, "state")), "failed");
    ck_assert_str_eq (json_string_value (json_object_get (row, "subject")), subject);
    ck_assert_int_eq (json_integer_value (json_object_get (row, "changes")), 2);
    ck_assert_str_eq (json_string_value (json_array_get (json_object_get (row, "to"), 0)),
                      "ops@pixel.example");
    ck_assert_ptr_nonnull (json_string_value (json_object_get (row, "last_error")));
    ck_assert_ptr_nonnull (json_string_value (json_object_get (row, "next_attempt")));
    ck_assert (json_is_null (json_object_get (row, "sent")));
    ck_assert_uint_eq (json_object_size (row), 11);
    json_decref (listing);

    gkx_entry_destroy (&genesis);
    gkx_entry_destroy (&edit);
    gkx_store_close (&store_a);
    gkx_store_close (&node.store);
    s_config_destroy (&node.config);
    gkx_identity_destroy (&a);
    gkx_identity_destroy (&b);
    pthread_mutex_destroy (&node.lock);
    gkx_test_rmtree (root);
}
END_TEST

int
main (void)
{
    Suite *s = suite_create ("notifier");
    TCase *tc = tcase_create ("pure");
    tcase_add_loop_test (tc, test_backoff, 0, (int) S_COUNT (s_backoffs));
    tcase_add_test (tc, test_render_changes);
    tcase_add_loop_test (tc, test_render_subjects, 0, (int) S_COUNT (s_subjects));
    tcase_add_test (tc, test_render_edges);
    tcase_add_test (tc, test_mail_format);
    suite_add_tcase (s, tc);
    TCase *thread = tcase_create ("thread");
    tcase_set_timeout (thread, 30);
    tcase_add_test (thread, test_start_refusals);
    tcase_add_test (thread, test_thread_composes_and_retries);
    suite_add_tcase (s, thread);
    return gkx_test_run (s);
}
