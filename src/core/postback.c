/*  postback - MMP postback templates, query parsing and the dedupe key.
    Part of gokart-exchange; MIT licence.

    s_templates is the whole knowledge of the MMPs: for each, the query
    parameter and the macro behind every role (gkx_postback_field_t), plus
    three quirks: a fixed revenue currency (Adjust's revenue_usd), an event
    used when none is sent (AppsFlyer and Singular install postbacks carry no
    event name) and an alias for the install event (Kochava's "_install").
    docs/postbacks.md explains each row and where its macros come from.

    Parsing works on a private decoded copy of the query: s_split decodes
    every name and value once into one buffer (so nothing is decoded twice
    and every check sees the bytes the fields will hold), s_map then reads
    the template's parameters from it. The copy holds the token, so it is
    wiped before it is freed.
*/
#include <gkx/alloc.h>
#include <gkx/calendar.h>
#include <gkx/codec.h>
#include <gkx/error.h>
#include <gkx/postback.h>

#include <assert.h>
#include <stdio.h>
#include <string.h>

#include <sodium.h>

/* Micro-units per unit. */
#define S_MICRO 1000000LL
/* Decimals an amount may carry. */
#define S_AMOUNT_DECIMALS 6
/* Integer digits of an amount that cannot overflow int64 in micro-units. */
#define S_AMOUNT_INT_DIGITS 12
/* Times accepted: 2000-01-01T00:00:00Z to 9999-12-31T23:59:59Z. */
#define S_TIME_MIN 946684800LL
#define S_TIME_MAX 253402300799LL
/* Digits from which a Unix time is in milliseconds (10^12 ms is 2001-09-09). */
#define S_TIME_MS_DIGITS 13
/* Most digits of a Unix time in seconds or milliseconds we read. */
#define S_TIME_MAX_DIGITS 16
/* Most digits of a fraction of a second we read. */
#define S_TIME_FRACTION_DIGITS 9
/* Seconds per day, hour and minute. */
#define S_DAY 86400LL
#define S_HOUR 3600LL
#define S_MINUTE 60LL
/* Bytes of a value quoted in an error message. */
#define S_QUOTE 48
/* Prefix of an Adjust activity kind that marks a rejection. */
#define S_REJECTED_PREFIX "rejected_"
/* Activity kind whose event name is in the event parameter (Adjust). */
#define S_ACTIVITY_EVENT "event"

/* The parameter and macro of one role in one template. */
typedef struct {
    /* query parameter name; NULL when the template lacks the role */
    const char *param;
    /* what the printed URL puts in it; NULL when not printed */
    const char *macro;
} s_slot_t;

/* One MMP's template. */
typedef struct {
    /* canonical lower-case name, the last path segment of the URL */
    const char *name;
    /* the role table, indexed by gkx_postback_field_t */
    s_slot_t slots[GKX_POSTBACK_FIELD_COUNT];
    /* currency of the revenue when the template has no currency parameter */
    const char *fixed_currency;
    /* event used when neither an event nor an activity is sent */
    const char *default_event;
    /* the MMP's own name of the install event, normalised to "install" */
    const char *install_alias;
} s_template_t;

/* The templates, in the order gkx_postback_mmp_name lists them. Where the
   MMP appends a parameter by itself (AppsFlyer's rejected-attribution
   parameters) or a sender fills one only when it applies (the generic
   rejected=1&reason=...), the slot has a name and no macro. */
static const s_template_t s_templates[] = {
    {
        "appsflyer",
        {
            [GKX_POSTBACK_CLICK_ID] = {"clickid", "{clickid}"},
            [GKX_POSTBACK_TXID] = {"appsflyer_id", "{appsflyer_id}"},
            [GKX_POSTBACK_EVENT] = {"event_name", "{event_name}"},
            [GKX_POSTBACK_TIME] = {"event_time", "{event_time}"},
            [GKX_POSTBACK_TIME_ALT] = {"install_unix_ts", "{install_unix_ts}"},
            [GKX_POSTBACK_CLICK_TIME] = {"attributed_touch_time", "{attributed_touch_time}"},
            [GKX_POSTBACK_REVENUE] = {"event_revenue", "{event_revenue}"},
            [GKX_POSTBACK_CURRENCY] = {"event_revenue_currency", "{event_revenue_currency}"},
            [GKX_POSTBACK_COUNTRY] = {"country_code", "{country_code}"},
            [GKX_POSTBACK_PLATFORM] = {"platform", "{platform}"},
            [GKX_POSTBACK_SUB1] = {"af_sub1", "{af_sub1}"},
            [GKX_POSTBACK_SUB2] = {"af_sub2", "{af_sub2}"},
            [GKX_POSTBACK_SUB3] = {"af_sub3", "{af_sub3}"},
            [GKX_POSTBACK_SUB4] = {"af_sub4", "{af_sub4}"},
            [GKX_POSTBACK_SUB5] = {"af_sub5", "{af_sub5}"},
            [GKX_POSTBACK_REJECTED] = {"is_rejected", NULL},
            [GKX_POSTBACK_REASON] = {"reject_reason", NULL},
            [GKX_POSTBACK_REASON_DETAIL] = {"reject_reason_value", NULL},
            [GKX_POSTBACK_TXID_QUALIFIER] = {"event_time", NULL},
        },
        NULL,
        "install",
        NULL,
    },
    {
        "adjust",
        {
            [GKX_POSTBACK_CLICK_ID] = {"label", "{label}"},
            [GKX_POSTBACK_TXID] = {"adid", "{adid}"},
            [GKX_POSTBACK_EVENT] = {"event_name", "{event_name}"},
            [GKX_POSTBACK_ACTIVITY] = {"activity_kind", "{activity_kind}"},
            [GKX_POSTBACK_TIME] = {"created_at", "{created_at}"},
            [GKX_POSTBACK_CLICK_TIME] = {"click_time", "{click_time}"},
            [GKX_POSTBACK_REVENUE] = {"revenue_usd", "{revenue_usd}"},
            [GKX_POSTBACK_COUNTRY] = {"country", "{country}"},
            [GKX_POSTBACK_PLATFORM] = {"os_name", "{os_name}"},
            [GKX_POSTBACK_REASON] = {"rejection_reason", "{rejection_reason}"},
            [GKX_POSTBACK_TXID_QUALIFIER] = {"created_at", NULL},
        },
        "USD",
        NULL,
        NULL,
    },
    {
        "branch",
        {
            [GKX_POSTBACK_CLICK_ID] = {"click_id",
                                       "${(last_attributed_touch_data_tilde_click_id)!}"},
            [GKX_POSTBACK_TXID] = {"event_id", "${(id)!}"},
            [GKX_POSTBACK_EVENT] = {"event", "${(name)!}"},
            [GKX_POSTBACK_TIME] = {"timestamp", "${(event_timestamp)!}"},
            [GKX_POSTBACK_CLICK_TIME] = {"click_timestamp",
                                         "${(last_attributed_touch_timestamp)!}"},
            [GKX_POSTBACK_REVENUE] = {"revenue", "${(event_data_revenue)!}"},
            [GKX_POSTBACK_CURRENCY] = {"currency", "${(event_data_currency)!}"},
            [GKX_POSTBACK_COUNTRY] = {"country", "${(user_data_geo_country_code)!}"},
            [GKX_POSTBACK_PLATFORM] = {"os", "${(user_data_os)!}"},
            [GKX_POSTBACK_REJECTED] = {"rejected", NULL},
            [GKX_POSTBACK_REASON] = {"reason", NULL},
        },
        NULL,
        NULL,
        NULL,
    },
    {
        "singular",
        {
            [GKX_POSTBACK_CLICK_ID] = {"clickid", "{cl?NETWORK_NAME}"},
            [GKX_POSTBACK_TXID] = {"singular_click_id", "{CLID}"},
            [GKX_POSTBACK_EVENT] = {"event", "{EVTNAME}"},
            [GKX_POSTBACK_TIME] = {"timestamp", "{UTCM}"},
            [GKX_POSTBACK_CLICK_TIME] = {"click_time", "{click_utc_timestamp}"},
            [GKX_POSTBACK_REVENUE] = {"amount", "{AMOUNT}"},
            [GKX_POSTBACK_REJECTED] = {"rejected", NULL},
            [GKX_POSTBACK_REASON] = {"reason", NULL},
            [GKX_POSTBACK_TXID_QUALIFIER] = {"timestamp", NULL},
        },
        NULL,
        "install",
        NULL,
    },
    {
        "kochava",
        {
            [GKX_POSTBACK_CLICK_ID] = {"click_id", "{click_id}"},
            [GKX_POSTBACK_TXID] = {"kochava_device_id", "{kochava_device_id}"},
            [GKX_POSTBACK_EVENT] = {"event_name", "{event_name}"},
            [GKX_POSTBACK_CLICK_TIME] = {"click_date", "{click_date}"},
            [GKX_POSTBACK_REVENUE] = {"revenue", "{revenue}"},
            [GKX_POSTBACK_CURRENCY] = {"currency", "{currency}"},
            [GKX_POSTBACK_COUNTRY] = {"country", "{country}"},
            [GKX_POSTBACK_PLATFORM] = {"platform", "{platform}"},
            [GKX_POSTBACK_REJECTED] = {"rejected", NULL},
            [GKX_POSTBACK_REASON] = {"reason", NULL},
        },
        NULL,
        NULL,
        "_install",
    },
    {
        "generic",
        {
            [GKX_POSTBACK_CLICK_ID] = {"click_id", "{click_id}"},
            [GKX_POSTBACK_TXID] = {"txid", "{txid}"},
            [GKX_POSTBACK_EVENT] = {"event", "{event}"},
            [GKX_POSTBACK_TIME] = {"time", "{time}"},
            [GKX_POSTBACK_CLICK_TIME] = {"click_time", "{click_time}"},
            [GKX_POSTBACK_REVENUE] = {"revenue", "{revenue}"},
            [GKX_POSTBACK_CURRENCY] = {"currency", "{currency}"},
            [GKX_POSTBACK_PAYOUT] = {"payout", "{payout}"},
            [GKX_POSTBACK_COUNTRY] = {"country", "{country}"},
            [GKX_POSTBACK_PLATFORM] = {"platform", "{platform}"},
            [GKX_POSTBACK_SUB1] = {"sub1", "{sub1}"},
            [GKX_POSTBACK_SUB2] = {"sub2", "{sub2}"},
            [GKX_POSTBACK_SUB3] = {"sub3", "{sub3}"},
            [GKX_POSTBACK_SUB4] = {"sub4", "{sub4}"},
            [GKX_POSTBACK_SUB5] = {"sub5", "{sub5}"},
            [GKX_POSTBACK_REJECTED] = {"rejected", "{rejected}"},
            [GKX_POSTBACK_REASON] = {"reason", "{reason}"},
        },
        NULL,
        NULL,
        NULL,
    },
};

/* Number of templates. */
#define S_TEMPLATES (sizeof (s_templates) / sizeof (s_templates[0]))

/* Known MMP names for error messages, in table order. */
#define S_KNOWN "appsflyer, adjust, branch, singular, kochava, generic"

/* Platform words: an MMP value (any case) and the offer's platform word. */
static const struct {
    /* what the MMP sends */
    const char *value;
    /* the offer's platform word */
    const char *platform;
} s_platforms[] = {
    {"ios", "ios"},    {"iphone", "ios"},    {"ipad", "ios"},
    {"ipados", "ios"}, {"iphone os", "ios"}, {"android", "android"},
    {"web", "web"},    {"desktop", "web"},   {"browser", "web"},
};

/* The offer's platform word for anything else the MMP sends. */
static const char s_platform_other[] = "other";

/* One decoded query parameter, pointing into the decode buffer. */
typedef struct {
    /* NUL-terminated decoded name */
    const char *name;
    /* NUL-terminated decoded value ("" when the piece had no "=") */
    const char *value;
    /* length of value in bytes */
    size_t value_len;
    /* whether the template read it */
    bool used;
} s_pair_t;

/* The decoded query. */
typedef struct {
    /* decoded names and values, each NUL-terminated */
    char *buf;
    /* bytes allocated for buf */
    size_t buf_size;
    /* the parameters in query order */
    s_pair_t pairs[GKX_POSTBACK_PARAMS_MAX];
    /* how many are used */
    size_t count;
} s_query_t;

/* How a slot's value was found. */
typedef enum {
    S_ABSENT = 0,   /* the template lacks the role, or the parameter was not sent */
    S_EMPTY,        /* sent with an empty value */
    S_UNREPLACED,   /* sent still holding a macro */
    S_PRESENT,      /* sent with a value */
} s_state_t;

/* Compares two strings ignoring ASCII case, as strcmp does. */
static int
s_casecmp (const char *a, const char *b)
{
    for (;; a++, b++) {
        int ca = (unsigned char) *a;
        int cb = (unsigned char) *b;
        if (ca >= 'A' && ca <= 'Z') {
            ca += 'a' - 'A';
        }
        if (cb >= 'A' && cb <= 'Z') {
            cb += 'a' - 'A';
        }
        if (ca != cb || ca == 0) {
            return ca - cb;
        }
    }
}

/* Finds a template by name in any ASCII case. */
static const s_template_t *
s_template_find (const char *mmp)
{
    for (size_t i = 0; i < S_TEMPLATES; i++) {
        if (s_casecmp (s_templates[i].name, mmp) == 0) {
            return &s_templates[i];
        }
    }
    return NULL;
}

/* Fails with GKX_ENOTFOUND for an unknown MMP name. */
static int
s_unknown_mmp (const char *mmp, char *errbuf)
{
    return gkx_fail (errbuf, GKX_ENOTFOUND, "unknown MMP \"%.*s\" (known: %s)", S_QUOTE, mmp,
                     S_KNOWN);
}

size_t
gkx_postback_mmp_count (void)
{
    return S_TEMPLATES;
}

const char *
gkx_postback_mmp_name (size_t index)
{
    return index < S_TEMPLATES ? s_templates[index].name : NULL;
}

int
gkx_postback_mmp_find (const char **name_p, const char *mmp, char *errbuf)
{
    assert (name_p);
    assert (mmp);
    const s_template_t *tpl = s_template_find (mmp);
    if (!tpl) {
        return s_unknown_mmp (mmp, errbuf);
    }
    *name_p = tpl->name;
    return GKX_OK;
}

/* Returns a template's slot for field, or NULL for an unknown MMP or field. */
static const s_slot_t *
s_slot_of (const char *mmp, int field)
{
    assert (mmp);
    const s_template_t *tpl = s_template_find (mmp);
    if (!tpl || field < 0 || field >= GKX_POSTBACK_FIELD_COUNT) {
        return NULL;
    }
    return &tpl->slots[field];
}

const char *
gkx_postback_param (const char *mmp, int field)
{
    const s_slot_t *slot = s_slot_of (mmp, field);
    return slot ? slot->param : NULL;
}

const char *
gkx_postback_macro (const char *mmp, int field)
{
    const s_slot_t *slot = s_slot_of (mmp, field);
    return slot && slot->param ? slot->macro : NULL;
}

/* Whether c is an RFC 3986 unreserved character. */
static bool
s_is_unreserved (char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9')
           || c == '-' || c == '.' || c == '_' || c == '~';
}

/* Whether s is a short id or token: 1 to GKX_POSTBACK_KEY_MAX unreserved
   characters, so it goes into a URL as it is. */
static bool
s_is_key (const char *s)
{
    size_t len = strlen (s);
    if (len == 0 || len > GKX_POSTBACK_KEY_MAX) {
        return false;
    }
    for (size_t i = 0; i < len; i++) {
        if (!s_is_unreserved (s[i])) {
            return false;
        }
    }
    return true;
}

/* Checks a base URL: http(s)://host..., visible ASCII, no query or fragment.
   Sets *len_p to its length without trailing slashes. */
static int
s_check_base_url (const char *url, size_t *len_p, char *errbuf)
{
    size_t len = strnlen (url, GKX_POSTBACK_BASE_URL_MAX + 1);
    if (len > GKX_POSTBACK_BASE_URL_MAX) {
        return gkx_fail (errbuf, GKX_EINVAL, "base_url: longer than %d bytes",
                         GKX_POSTBACK_BASE_URL_MAX);
    }
    size_t scheme;
    if (strncmp (url, "https://", 8) == 0) {
        scheme = 8;
    }
    else if (strncmp (url, "http://", 7) == 0) {
        scheme = 7;
    }
    else {
        return gkx_fail (errbuf, GKX_EINVAL, "base_url: must start with http:// or https://");
    }
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char) url[i];
        if (c <= 0x20 || c >= 0x7f) {
            return gkx_fail (errbuf, GKX_EINVAL,
                             "base_url: byte %zu is a space, control or non-ASCII character",
                             i);
        }
        if (c == '?' || c == '#') {
            return gkx_fail (errbuf, GKX_EINVAL, "base_url: must not hold a query or fragment");
        }
    }
    while (len > scheme && url[len - 1] == '/') {
        len--;
    }
    if (len == scheme || url[scheme] == '/') {
        return gkx_fail (errbuf, GKX_EINVAL, "base_url: has no host");
    }
    *len_p = len;
    return GKX_OK;
}

/* Appends len bytes of s at *pos in dst; with dst NULL only counts. */
static void
s_emit (char *dst, size_t *pos, const char *s, size_t len)
{
    if (dst) {
        memcpy (dst + *pos, s, len);
    }
    *pos += len;
}

/* Appends a NUL-terminated string, as s_emit. */
static void
s_emits (char *dst, size_t *pos, const char *s)
{
    s_emit (dst, pos, s, strlen (s));
}

/* Writes the URL into dst (or only measures it with dst NULL); returns its
   length without the NUL. */
static size_t
s_url_write (char *dst, const s_template_t *tpl, const char *base, size_t base_len,
             const char *short_pid, const char *token)
{
    size_t pos = 0;
    s_emit (dst, &pos, base, base_len);
    s_emits (dst, &pos, "/");
    s_emits (dst, &pos, tpl->name);
    s_emits (dst, &pos, "?" GKX_POSTBACK_PARAM_SHORT_ID "=");
    s_emits (dst, &pos, short_pid);
    s_emits (dst, &pos, "&" GKX_POSTBACK_PARAM_TOKEN "=");
    s_emits (dst, &pos, token);
    for (int f = 0; f < GKX_POSTBACK_FIELD_COUNT; f++) {
        const s_slot_t *slot = &tpl->slots[f];
        if (slot->param && slot->macro) {
            s_emits (dst, &pos, "&");
            s_emits (dst, &pos, slot->param);
            s_emits (dst, &pos, "=");
            s_emits (dst, &pos, slot->macro);
        }
    }
    return pos;
}

char *
gkx_postback_url (const char *mmp, const char *base_url, const char *short_pid,
                  const char *token, char *errbuf)
{
    assert (mmp);
    assert (base_url);
    assert (short_pid);
    assert (token);
    const s_template_t *tpl = s_template_find (mmp);
    if (!tpl) {
        s_unknown_mmp (mmp, errbuf);
        return NULL;
    }
    size_t base_len = 0;
    if (s_check_base_url (base_url, &base_len, errbuf) != GKX_OK) {
        return NULL;
    }
    if (!s_is_key (short_pid)) {
        gkx_fail (errbuf, GKX_EINVAL,
                  "short_pid: \"%.*s\" is not 1 to %d of A-Z a-z 0-9 - . _ ~", S_QUOTE,
                  short_pid, GKX_POSTBACK_KEY_MAX);
        return NULL;
    }
    if (!s_is_key (token)) {
        gkx_fail (errbuf, GKX_EINVAL, "token: not 1 to %d of A-Z a-z 0-9 - . _ ~",
                  GKX_POSTBACK_KEY_MAX);
        return NULL;
    }
    size_t len = s_url_write (NULL, tpl, base_url, base_len, short_pid, token);
    char *url = gkx_zalloc (len + 1);
    s_url_write (url, tpl, base_url, base_len, short_pid, token);
    return url;
}

/* Value of one hex digit, or -1. */
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

/* Percent-decodes len bytes of src into dst (room for len bytes), "+" as a
   space, and sets *out_len. what names the piece in messages. */
static int
s_decode (char *dst, size_t *out_len, const char *src, size_t len, const char *what,
          char *errbuf)
{
    size_t n = 0;
    for (size_t i = 0; i < len; i++) {
        char c = src[i];
        if (c == '+') {
            c = ' ';
        }
        else if (c == '%') {
            if (len - i < 3) {
                return gkx_fail (errbuf, GKX_EINVAL, "%s: truncated percent-encoding \"%.*s\"",
                                 what, (int) (len - i), src + i);
            }
            int hi = s_hex (src[i + 1]);
            int lo = s_hex (src[i + 2]);
            if (hi < 0 || lo < 0) {
                return gkx_fail (errbuf, GKX_EINVAL, "%s: bad percent-encoding \"%.3s\"", what,
                                 src + i);
            }
            c = (char) (hi * 16 + lo);
            if (c == '\0') {
                return gkx_fail (errbuf, GKX_EINVAL, "%s: %%00 (NUL) is not allowed", what);
            }
            i += 2;
        }
        dst[n++] = c;
    }
    *out_len = n;
    return GKX_OK;
}

/* Checks one decoded name or value: length, control characters, UTF-8. */
static int
s_check_text (const char *s, size_t len, const char *what, char *errbuf)
{
    if (len > GKX_POSTBACK_VALUE_MAX) {
        return gkx_fail (errbuf, GKX_ETOOBIG, "%s: longer than %d bytes", what,
                         GKX_POSTBACK_VALUE_MAX);
    }
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char) s[i];
        if (c < 0x20 || c == 0x7f) {
            return gkx_fail (errbuf, GKX_EINVAL, "%s: control character U+%04X is not allowed",
                             what, c);
        }
    }
    if (!gkx_codec_is_utf8 (s, len)) {
        return gkx_fail (errbuf, GKX_EUTF8, "%s: not valid UTF-8", what);
    }
    return GKX_OK;
}

/* Decodes one "name=value" piece (len > 0 bytes) into the next pair. */
static int
s_split_piece (s_query_t *q, size_t *used, const char *piece, size_t len, char *errbuf)
{
    if (q->count == GKX_POSTBACK_PARAMS_MAX) {
        return gkx_fail (errbuf, GKX_ETOOBIG, "query: more than %d parameters",
                         GKX_POSTBACK_PARAMS_MAX);
    }
    const char *eq = memchr (piece, '=', len);
    size_t name_len = eq ? (size_t) (eq - piece) : len;
    char what[GKX_ERRBUF_BYTES];
    snprintf (what, sizeof what, "parameter #%zu name", q->count + 1);
    if (name_len == 0) {
        return gkx_fail (errbuf, GKX_EINVAL, "parameter #%zu: empty name", q->count + 1);
    }
    char *name = q->buf + *used;
    size_t n;
    int rc = s_decode (name, &n, piece, name_len, what, errbuf);
    if (rc == GKX_OK) {
        rc = s_check_text (name, n, what, errbuf);
    }
    if (rc != GKX_OK) {
        return rc;
    }
    name[n] = '\0';
    *used += n + 1;

    snprintf (what, sizeof what, "parameter \"%.*s\"", S_QUOTE, name);
    char *value = q->buf + *used;
    size_t value_len = 0;
    if (eq) {
        rc = s_decode (value, &value_len, eq + 1, len - name_len - 1, what, errbuf);
        if (rc == GKX_OK) {
            rc = s_check_text (value, value_len, what, errbuf);
        }
        if (rc != GKX_OK) {
            return rc;
        }
    }
    value[value_len] = '\0';
    *used += value_len + 1;

    for (size_t i = 0; i < q->count; i++) {
        if (strcmp (q->pairs[i].name, name) == 0) {
            return gkx_fail (errbuf, GKX_EINVAL, "duplicate parameter \"%.*s\"", S_QUOTE, name);
        }
    }
    q->pairs[q->count].name = name;
    q->pairs[q->count].value = value;
    q->pairs[q->count].value_len = value_len;
    q->pairs[q->count].used = false;
    q->count++;
    return GKX_OK;
}

/* Splits and decodes a query of len bytes into q, which the caller wipes
   with s_query_wipe whatever this returns. */
static int
s_split (s_query_t *q, const char *query, size_t len, char *errbuf)
{
    /* A piece of k bytes decodes to at most k + 2 bytes with its two NULs,
       and k + 1 bytes of query hold it with its "&", so twice the query
       length plus two always suffice. */
    q->buf_size = 2 * len + 2;
    q->buf = gkx_zalloc (q->buf_size);
    q->count = 0;
    size_t used = 0;
    size_t start = 0;
    while (start <= len) {
        const char *amp = memchr (query + start, '&', len - start);
        size_t end = amp ? (size_t) (amp - query) : len;
        if (end > start) {
            int rc = s_split_piece (q, &used, query + start, end - start, errbuf);
            if (rc != GKX_OK) {
                return rc;
            }
        }
        start = end + 1;
    }
    return GKX_OK;
}

/* Wipes and frees the decode buffer. */
static void
s_query_wipe (s_query_t *q)
{
    if (q->buf) {
        sodium_memzero (q->buf, q->buf_size);
        gkx_free (q->buf);
        q->buf = NULL;
    }
}

/* Returns the pair named name, marking it used, or NULL. */
static s_pair_t *
s_query_get (s_query_t *q, const char *name)
{
    for (size_t i = 0; i < q->count; i++) {
        if (strcmp (q->pairs[i].name, name) == 0) {
            q->pairs[i].used = true;
            return &q->pairs[i];
        }
    }
    return NULL;
}

/* Whether a value still holds a macro the MMP did not replace: "{x}",
   "${x}" or AppsFlyer's legacy "(x)". */
static bool
s_is_macro (const char *v, size_t len)
{
    if (len >= 2 && v[0] == '{' && v[len - 1] == '}') {
        return true;
    }
    if (len >= 2 && v[0] == '$' && v[1] == '{') {
        return true;
    }
    return len >= 2 && v[0] == '(' && v[len - 1] == ')';
}

/* Parsing context: the template, the decoded query and the result. */
typedef struct {
    /* the MMP's template */
    const s_template_t *tpl;
    /* the decoded query */
    s_query_t *q;
    /* the result being filled */
    gkx_postback_t *res;
} s_ctx_t;

/* Looks up the parameter of field; sets *pair_p when it was sent. */
static s_state_t
s_get (s_ctx_t *ctx, int field, const s_pair_t **pair_p)
{
    const char *param = ctx->tpl->slots[field].param;
    *pair_p = NULL;
    if (!param) {
        return S_ABSENT;
    }
    const s_pair_t *pair = s_query_get (ctx->q, param);
    if (!pair) {
        return S_ABSENT;
    }
    *pair_p = pair;
    if (pair->value_len == 0) {
        return S_EMPTY;
    }
    if (s_is_macro (pair->value, pair->value_len)) {
        return S_UNREPLACED;
    }
    return S_PRESENT;
}

/* Looks up an optional field: empty and unreplaced values count as absent
   (the latter counted). Returns the value or NULL. */
static const s_pair_t *
s_optional (s_ctx_t *ctx, int field)
{
    const s_pair_t *pair;
    s_state_t state = s_get (ctx, field, &pair);
    if (state == S_UNREPLACED) {
        ctx->res->n_unreplaced++;
    }
    return state == S_PRESENT ? pair : NULL;
}

/* Fails for a required parameter in the given state. */
static int
s_fail_required (const char *param, s_state_t state, const s_pair_t *pair, char *errbuf)
{
    if (state == S_EMPTY) {
        return gkx_fail (errbuf, GKX_EINVAL, "parameter \"%s\" is empty", param);
    }
    if (state == S_UNREPLACED) {
        return gkx_fail (errbuf, GKX_EINVAL, "parameter \"%s\": macro \"%.*s\" was not replaced",
                         param, S_QUOTE, pair->value);
    }
    return gkx_fail (errbuf, GKX_EINVAL, "missing parameter \"%s\"", param);
}

/* Looks up a required field; fails when it is not present with a value. */
static int
s_required (s_ctx_t *ctx, int field, const s_pair_t **pair_p, char *errbuf)
{
    s_state_t state = s_get (ctx, field, pair_p);
    if (state != S_PRESENT) {
        return s_fail_required (ctx->tpl->slots[field].param, state, *pair_p, errbuf);
    }
    return GKX_OK;
}

/* Copies a text value of at most max bytes into a new string. */
static int
s_text (char **dst, const char *param, const s_pair_t *pair, size_t max, char *errbuf)
{
    if (pair->value_len > max) {
        return gkx_fail (errbuf, GKX_ETOOBIG, "parameter \"%s\": longer than %zu bytes", param,
                         max);
    }
    *dst = gkx_strdup (pair->value);
    return GKX_OK;
}

/* Reads the short id and the token, which every template carries. */
static int
s_map_keys (s_ctx_t *ctx, char *errbuf)
{
    const s_pair_t *pid = s_query_get (ctx->q, GKX_POSTBACK_PARAM_SHORT_ID);
    if (!pid) {
        return gkx_fail (errbuf, GKX_EINVAL, "missing parameter \"" GKX_POSTBACK_PARAM_SHORT_ID
                                             "\"");
    }
    if (!s_is_key (pid->value)) {
        return gkx_fail (errbuf, GKX_EINVAL,
                         "parameter \"" GKX_POSTBACK_PARAM_SHORT_ID
                         "\": \"%.*s\" is not 1 to %d of A-Z a-z 0-9 - . _ ~",
                         S_QUOTE, pid->value, GKX_POSTBACK_KEY_MAX);
    }
    const s_pair_t *token = s_query_get (ctx->q, GKX_POSTBACK_PARAM_TOKEN);
    if (!token) {
        return gkx_fail (errbuf, GKX_EINVAL, "missing parameter \"" GKX_POSTBACK_PARAM_TOKEN
                                             "\"");
    }
    /* The token is a secret: the message never quotes it. */
    if (!s_is_key (token->value)) {
        return gkx_fail (errbuf, GKX_EINVAL,
                         "parameter \"" GKX_POSTBACK_PARAM_TOKEN
                         "\": not 1 to %d of A-Z a-z 0-9 - . _ ~",
                         GKX_POSTBACK_KEY_MAX);
    }
    ctx->res->short_id = gkx_strdup (pid->value);
    ctx->res->token = gkx_strdup (token->value);
    return GKX_OK;
}

/* Reads the click id: 1 to GKX_POSTBACK_CLICK_ID_MAX printable ASCII
   characters without spaces, the conversion's rule. */
static int
s_map_click_id (s_ctx_t *ctx, const s_pair_t *click, char *errbuf)
{
    const char *param = ctx->tpl->slots[GKX_POSTBACK_CLICK_ID].param;
    int rc = s_text (&ctx->res->click_id, param, click, GKX_POSTBACK_CLICK_ID_MAX, errbuf);
    for (size_t i = 0; rc == GKX_OK && i < click->value_len; i++) {
        unsigned char c = (unsigned char) click->value[i];
        if (c <= 0x20 || c >= 0x7f) {
            rc = gkx_fail (errbuf, GKX_EINVAL,
                           "parameter \"%s\": byte %zu is not printable ASCII without spaces",
                           param, i);
        }
    }
    return rc;
}

/* Reads the transaction id, qualified by "@" and the qualifier's value when
   the template has one and it was sent. */
static int
s_map_txid (s_ctx_t *ctx, char *errbuf)
{
    const char *param = ctx->tpl->slots[GKX_POSTBACK_TXID].param;
    const s_pair_t *txid;
    int rc = s_required (ctx, GKX_POSTBACK_TXID, &txid, errbuf);
    if (rc != GKX_OK) {
        return rc;
    }
    if (txid->value_len > GKX_POSTBACK_ID_MAX) {
        return gkx_fail (errbuf, GKX_ETOOBIG, "parameter \"%s\": longer than %d bytes", param,
                         GKX_POSTBACK_ID_MAX);
    }
    const s_pair_t *qual = s_optional (ctx, GKX_POSTBACK_TXID_QUALIFIER);
    if (!qual) {
        ctx->res->transaction_id = gkx_strdup (txid->value);
        return GKX_OK;
    }
    if (txid->value_len + 1 + qual->value_len > GKX_POSTBACK_ID_MAX) {
        return gkx_fail (errbuf, GKX_ETOOBIG,
                         "parameters \"%s\" and \"%s\": transaction id longer than %d bytes",
                         param, ctx->tpl->slots[GKX_POSTBACK_TXID_QUALIFIER].param,
                         GKX_POSTBACK_ID_MAX);
    }
    char *id = gkx_zalloc (txid->value_len + 1 + qual->value_len + 1);
    memcpy (id, txid->value, txid->value_len);
    id[txid->value_len] = '@';
    memcpy (id + txid->value_len + 1, qual->value, qual->value_len);
    ctx->res->transaction_id = id;
    return GKX_OK;
}

/* Whether s is an event name: 1 to GKX_POSTBACK_EVENT_MAX of
   A-Z a-z 0-9 _ . : - (the offer's payout.events key rule). */
static bool
s_is_event_name (const char *s)
{
    size_t len = strlen (s);
    if (len == 0 || len > GKX_POSTBACK_EVENT_MAX) {
        return false;
    }
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9')
                  || c == '_' || c == '.' || c == ':' || c == '-';
        if (!ok) {
            return false;
        }
    }
    return true;
}

/* Reads the event: the event parameter, else the activity kind (less its
   "rejected_" prefix, which marks a rejection), else the template's
   default. The MMP's install alias becomes "install". */
static int
s_map_event (s_ctx_t *ctx, char *errbuf)
{
    const s_template_t *tpl = ctx->tpl;
    const char *event_param = tpl->slots[GKX_POSTBACK_EVENT].param;
    const char *activity_param = tpl->slots[GKX_POSTBACK_ACTIVITY].param;
    const s_pair_t *event_pair;
    s_state_t event_state = s_get (ctx, GKX_POSTBACK_EVENT, &event_pair);
    const s_pair_t *activity = s_optional (ctx, GKX_POSTBACK_ACTIVITY);

    const char *from_activity = NULL;
    if (activity) {
        const char *kind = activity->value;
        size_t prefix = strlen (S_REJECTED_PREFIX);
        if (strncmp (kind, S_REJECTED_PREFIX, prefix) == 0) {
            ctx->res->rejected = true;
            kind += prefix;
        }
        if (!s_is_event_name (kind)) {
            return gkx_fail (errbuf, GKX_EINVAL,
                             "parameter \"%s\": \"%.*s\" is not an activity kind",
                             activity_param, S_QUOTE, activity->value);
        }
        /* An "event" activity names its event in the event parameter. */
        if (strcmp (kind, S_ACTIVITY_EVENT) != 0) {
            from_activity = kind;
        }
    }

    /* An unreplaced event macro is refused even where a default exists:
       counting a misconfigured in-app postback as an install would be
       silently wrong. */
    const char *event;
    const char *param = event_param;
    if (event_state == S_PRESENT) {
        event = event_pair->value;
    }
    else if (event_state != S_UNREPLACED && from_activity) {
        event = from_activity;
        param = activity_param;
    }
    else if (event_state != S_UNREPLACED && tpl->default_event) {
        event = tpl->default_event;
    }
    else {
        return s_fail_required (event_param, event_state, event_pair, errbuf);
    }
    if (tpl->install_alias && strcmp (event, tpl->install_alias) == 0) {
        event = "install";
    }
    if (!s_is_event_name (event)) {
        return gkx_fail (errbuf, GKX_EINVAL,
                         "parameter \"%s\": \"%.*s\" is not an event name"
                         " (1 to %d of A-Z a-z 0-9 _ . : -)",
                         param, S_QUOTE, event, GKX_POSTBACK_EVENT_MAX);
    }
    ctx->res->event = gkx_strdup (event);
    return GKX_OK;
}

/* Parses a decimal with up to 6 decimals into micro-units; negative values
   and values above GKX_POSTBACK_AMOUNT_MAX are refused. */
static int
s_amount (int64_t *micro_p, const char *param, const char *text, char *errbuf)
{
    if (text[0] == '-') {
        return gkx_fail (errbuf, GKX_EINVAL, "parameter \"%s\": negative amount \"%.*s\" refused",
                         param, S_QUOTE, text);
    }
    const char *p = text;
    int64_t whole = 0;
    size_t digits = 0;
    while (*p >= '0' && *p <= '9' && digits <= S_AMOUNT_INT_DIGITS) {
        whole = whole * 10 + (*p - '0');
        digits++;
        p++;
    }
    int64_t frac = 0;
    size_t decimals = 0;
    bool ok = digits > 0 && digits <= S_AMOUNT_INT_DIGITS;
    if (ok && *p == '.') {
        p++;
        while (*p >= '0' && *p <= '9' && decimals <= S_AMOUNT_DECIMALS) {
            frac = frac * 10 + (*p - '0');
            decimals++;
            p++;
        }
        ok = decimals > 0 && decimals <= S_AMOUNT_DECIMALS;
    }
    if (!ok || *p != '\0') {
        return gkx_fail (errbuf, GKX_EINVAL,
                         "parameter \"%s\": \"%.*s\" is not a decimal with up to %d decimals",
                         param, S_QUOTE, text, S_AMOUNT_DECIMALS);
    }
    for (size_t i = decimals; i < S_AMOUNT_DECIMALS; i++) {
        frac *= 10;
    }
    int64_t micro = whole * S_MICRO + frac;
    if (micro > GKX_POSTBACK_AMOUNT_MAX) {
        return gkx_fail (errbuf, GKX_EINVAL, "parameter \"%s\": \"%.*s\" exceeds %lld", param,
                         S_QUOTE, text, GKX_POSTBACK_AMOUNT_MAX / S_MICRO);
    }
    *micro_p = micro;
    return GKX_OK;
}

/* Copies n ASCII letters of text into dst upper-cased, with a NUL; false
   when text is not exactly n letters. */
static bool
s_letters_upper (char *dst, const char *text, size_t n)
{
    if (strlen (text) != n) {
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        char c = text[i];
        if (c >= 'a' && c <= 'z') {
            c = (char) (c - 'a' + 'A');
        }
        if (c < 'A' || c > 'Z') {
            return false;
        }
        dst[i] = c;
    }
    dst[n] = '\0';
    return true;
}

/* Reads revenue, its currency and the payout override. */
static int
s_map_money (s_ctx_t *ctx, char *errbuf)
{
    const s_template_t *tpl = ctx->tpl;
    gkx_postback_t *res = ctx->res;
    const s_pair_t *revenue = s_optional (ctx, GKX_POSTBACK_REVENUE);
    if (revenue) {
        int rc = s_amount (&res->revenue_micros, tpl->slots[GKX_POSTBACK_REVENUE].param,
                           revenue->value, errbuf);
        if (rc != GKX_OK) {
            return rc;
        }
        res->has_revenue = true;
    }
    const s_pair_t *currency = s_optional (ctx, GKX_POSTBACK_CURRENCY);
    if (currency) {
        if (!s_letters_upper (res->currency, currency->value, GKX_POSTBACK_CURRENCY_BYTES - 1)) {
            return gkx_fail (errbuf, GKX_EINVAL,
                             "parameter \"%s\": \"%.*s\" is not a three-letter currency code",
                             tpl->slots[GKX_POSTBACK_CURRENCY].param, S_QUOTE, currency->value);
        }
    }
    else if (revenue && tpl->fixed_currency) {
        memcpy (res->currency, tpl->fixed_currency, GKX_POSTBACK_CURRENCY_BYTES);
    }
    const s_pair_t *payout = s_optional (ctx, GKX_POSTBACK_PAYOUT);
    if (payout) {
        int rc = s_amount (&res->payout_micros, tpl->slots[GKX_POSTBACK_PAYOUT].param,
                           payout->value, errbuf);
        if (rc != GKX_OK) {
            return rc;
        }
        res->has_payout = true;
    }
    return GKX_OK;
}


/* Reads exactly n decimal digits at p. */
static bool
s_digits (const char *p, size_t n, unsigned *value_p)
{
    unsigned v = 0;
    for (size_t i = 0; i < n; i++) {
        if (p[i] < '0' || p[i] > '9') {
            return false;
        }
        v = v * 10 + (unsigned) (p[i] - '0');
    }
    *value_p = v;
    return true;
}

/* Skips a "." and 1 to 9 digits at *p, if there; false when "." has none. */
static bool
s_skip_fraction (const char **p)
{
    if (**p != '.') {
        return true;
    }
    (*p)++;
    size_t n = 0;
    while (**p >= '0' && **p <= '9' && n <= S_TIME_FRACTION_DIGITS) {
        (*p)++;
        n++;
    }
    return n > 0 && n <= S_TIME_FRACTION_DIGITS;
}

/* Parses a Unix time: digits, seconds below 13 digits and milliseconds from
   13, with an optional fraction that is dropped. */
static bool
s_time_unix (const char *text, int64_t *secs_p)
{
    const char *p = text;
    int64_t v = 0;
    size_t digits = 0;
    while (*p >= '0' && *p <= '9' && digits <= S_TIME_MAX_DIGITS) {
        v = v * 10 + (*p - '0');
        digits++;
        p++;
    }
    if (digits == 0 || digits > S_TIME_MAX_DIGITS || !s_skip_fraction (&p) || *p != '\0') {
        return false;
    }
    *secs_p = digits >= S_TIME_MS_DIGITS ? v / 1000 : v;
    return true;
}

/* Parses ISO 8601 "YYYY-MM-DD(T| )HH:MM:SS[.f][Z|+HH:MM|-HH:MM|+HHMM|-HHMM]";
   without a zone the time is UTC. */
static bool
s_time_iso (const char *text, int64_t *secs_p)
{
    unsigned y, mo, d, h, mi, s;
    if (strlen (text) < 19 || text[4] != '-' || text[7] != '-'
        || (text[10] != 'T' && text[10] != ' ') || text[13] != ':' || text[16] != ':') {
        return false;
    }
    if (!s_digits (text, 4, &y) || !s_digits (text + 5, 2, &mo) || !s_digits (text + 8, 2, &d)
        || !s_digits (text + 11, 2, &h) || !s_digits (text + 14, 2, &mi)
        || !s_digits (text + 17, 2, &s)) {
        return false;
    }
    static const unsigned mdays[] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    if (mo < 1 || mo > 12 || d < 1 || d > mdays[mo - 1] || (mo == 2 && d == 29 && !leap)
        || h > 23 || mi > 59 || s > 59) {
        return false;
    }
    const char *p = text + 19;
    if (!s_skip_fraction (&p)) {
        return false;
    }
    int64_t offset = 0;
    if (*p == 'Z') {
        p++;
    }
    else if (*p == '+' || *p == '-') {
        int sign = *p == '+' ? 1 : -1;
        unsigned oh, om;
        p++;
        if (!s_digits (p, 2, &oh)) {
            return false;
        }
        p += 2;
        if (*p == ':') {
            p++;
        }
        if (!s_digits (p, 2, &om) || oh > 23 || om > 59) {
            return false;
        }
        p += 2;
        offset = sign * ((int64_t) oh * S_HOUR + (int64_t) om * S_MINUTE);
    }
    if (*p != '\0') {
        return false;
    }
    *secs_p = gkx_calendar_days_from_civil (y, mo, d) * S_DAY + (int64_t) h * S_HOUR
              + (int64_t) mi * S_MINUTE + s - offset;
    return true;
}

/* Parses a time parameter into Unix seconds. */
static int
s_time (int64_t *secs_p, const char *param, const char *text, char *errbuf)
{
    int64_t secs;
    if (!s_time_unix (text, &secs) && !s_time_iso (text, &secs)) {
        return gkx_fail (errbuf, GKX_EINVAL,
                         "parameter \"%s\": \"%.*s\" is not a Unix time or an ISO 8601 time",
                         param, S_QUOTE, text);
    }
    if (secs < S_TIME_MIN || secs > S_TIME_MAX) {
        return gkx_fail (errbuf, GKX_EINVAL,
                         "parameter \"%s\": \"%.*s\" is outside 2000-01-01 to 9999-12-31", param,
                         S_QUOTE, text);
    }
    *secs_p = secs;
    return GKX_OK;
}

/* Reads the time: TIME, else TIME_ALT; each one sent must be well formed.
   Then the attributed click's time, by the same rules. It is not compared
   with the event time: the two often come from different clocks (the
   MMP's server for the click, the device for an install), and refusing
   the postback would lose the conversion, since MMPs do not retry a 4xx. */
static int
s_map_time (s_ctx_t *ctx, char *errbuf)
{
    static const int fields[] = {GKX_POSTBACK_TIME, GKX_POSTBACK_TIME_ALT};
    for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++) {
        const s_pair_t *pair = s_optional (ctx, fields[i]);
        if (!pair) {
            continue;
        }
        int64_t secs = 0;
        int rc = s_time (&secs, ctx->tpl->slots[fields[i]].param, pair->value, errbuf);
        if (rc != GKX_OK) {
            return rc;
        }
        if (ctx->res->time == 0) {
            ctx->res->time = secs;
        }
    }
    const s_pair_t *click = s_optional (ctx, GKX_POSTBACK_CLICK_TIME);
    if (click) {
        return s_time (&ctx->res->click_time, ctx->tpl->slots[GKX_POSTBACK_CLICK_TIME].param,
                       click->value, errbuf);
    }
    return GKX_OK;
}

/* Returns the offer's platform word for an MMP's platform value. */
static const char *
s_platform (const char *value)
{
    for (size_t i = 0; i < sizeof s_platforms / sizeof s_platforms[0]; i++) {
        if (s_casecmp (s_platforms[i].value, value) == 0) {
            return s_platforms[i].platform;
        }
    }
    return s_platform_other;
}

/* Reads country, platform and the sub-parameters. */
static int
s_map_context (s_ctx_t *ctx, char *errbuf)
{
    gkx_postback_t *res = ctx->res;
    const s_pair_t *country = s_optional (ctx, GKX_POSTBACK_COUNTRY);
    if (country && !s_letters_upper (res->country, country->value,
                                     GKX_POSTBACK_COUNTRY_BYTES - 1)) {
        return gkx_fail (errbuf, GKX_EINVAL,
                         "parameter \"%s\": \"%.*s\" is not a two-letter country code",
                         ctx->tpl->slots[GKX_POSTBACK_COUNTRY].param, S_QUOTE, country->value);
    }
    const s_pair_t *platform = s_optional (ctx, GKX_POSTBACK_PLATFORM);
    if (platform) {
        res->platform = s_platform (platform->value);
    }
    for (int i = 0; i < GKX_POSTBACK_SUBS; i++) {
        int field = GKX_POSTBACK_SUB1 + i;
        const s_pair_t *sub = s_optional (ctx, field);
        if (sub) {
            int rc = s_text (&res->sub[i], ctx->tpl->slots[field].param, sub,
                             GKX_POSTBACK_ID_MAX, errbuf);
            if (rc != GKX_OK) {
                return rc;
            }
        }
    }
    return GKX_OK;
}

/* Reads a rejection flag: 1/true/yes or 0/false/no in any case. */
static int
s_flag (bool *flag_p, const char *param, const char *text, char *errbuf)
{
    static const char *const yes[] = {"1", "true", "yes"};
    static const char *const no[] = {"0", "false", "no"};
    for (size_t i = 0; i < sizeof yes / sizeof yes[0]; i++) {
        if (s_casecmp (text, yes[i]) == 0) {
            *flag_p = true;
            return GKX_OK;
        }
        if (s_casecmp (text, no[i]) == 0) {
            *flag_p = false;
            return GKX_OK;
        }
    }
    return gkx_fail (errbuf, GKX_EINVAL,
                     "parameter \"%s\": \"%.*s\" is not 1, 0, true, false, yes or no", param,
                     S_QUOTE, text);
}

/* Reads the rejection: the flag when sent, else rejected when a reason is
   sent (or the activity said so); the reason is "REASON" or
   "REASON:DETAIL". */
static int
s_map_rejection (s_ctx_t *ctx, char *errbuf)
{
    const s_template_t *tpl = ctx->tpl;
    gkx_postback_t *res = ctx->res;
    const s_pair_t *flag = s_optional (ctx, GKX_POSTBACK_REJECTED);
    const s_pair_t *reason = s_optional (ctx, GKX_POSTBACK_REASON);
    const s_pair_t *detail = s_optional (ctx, GKX_POSTBACK_REASON_DETAIL);
    if (flag) {
        bool rejected = false;
        int rc = s_flag (&rejected, tpl->slots[GKX_POSTBACK_REJECTED].param, flag->value,
                         errbuf);
        if (rc != GKX_OK) {
            return rc;
        }
        res->rejected = res->rejected || rejected;
    }
    else if (reason) {
        res->rejected = true;
    }
    if (!reason) {
        return GKX_OK;
    }
    size_t len = reason->value_len + (detail ? 1 + detail->value_len : 0);
    if (len > GKX_POSTBACK_REASON_MAX) {
        return gkx_fail (errbuf, GKX_ETOOBIG, "parameter \"%s\": longer than %d bytes",
                         tpl->slots[detail ? GKX_POSTBACK_REASON_DETAIL : GKX_POSTBACK_REASON]
                             .param,
                         GKX_POSTBACK_REASON_MAX);
    }
    char *text = gkx_zalloc (len + 1);
    memcpy (text, reason->value, reason->value_len);
    if (detail) {
        text[reason->value_len] = ':';
        memcpy (text + reason->value_len + 1, detail->value, detail->value_len);
    }
    res->reason = text;
    return GKX_OK;
}

/* Maps the decoded query onto the result, field by field. */
static int
s_map (s_ctx_t *ctx, char *errbuf)
{
    int rc = s_map_keys (ctx, errbuf);
    const s_pair_t *click = NULL;
    if (rc == GKX_OK) {
        rc = s_required (ctx, GKX_POSTBACK_CLICK_ID, &click, errbuf);
    }
    if (rc == GKX_OK) {
        rc = s_map_click_id (ctx, click, errbuf);
    }
    if (rc == GKX_OK) {
        rc = s_map_txid (ctx, errbuf);
    }
    if (rc == GKX_OK) {
        rc = s_map_event (ctx, errbuf);
    }
    if (rc == GKX_OK) {
        rc = s_map_money (ctx, errbuf);
    }
    if (rc == GKX_OK) {
        rc = s_map_time (ctx, errbuf);
    }
    if (rc == GKX_OK) {
        rc = s_map_context (ctx, errbuf);
    }
    if (rc == GKX_OK) {
        rc = s_map_rejection (ctx, errbuf);
    }
    return rc;
}

int
gkx_postback_parse (gkx_postback_t *out, const char *mmp, const char *query, char *errbuf)
{
    assert (out);
    assert (mmp);
    assert (query);
    const s_template_t *tpl = s_template_find (mmp);
    if (!tpl) {
        return s_unknown_mmp (mmp, errbuf);
    }
    size_t len = strnlen (query, GKX_POSTBACK_QUERY_MAX + 1);
    if (len > GKX_POSTBACK_QUERY_MAX) {
        return gkx_fail (errbuf, GKX_ETOOBIG, "query: longer than %d bytes",
                         GKX_POSTBACK_QUERY_MAX);
    }
    s_query_t *q = gkx_zalloc (sizeof *q);
    gkx_postback_t res;
    memset (&res, 0, sizeof res);
    res.mmp = tpl->name;
    s_ctx_t ctx = {tpl, q, &res};

    int rc = s_split (q, query, len, errbuf);
    if (rc == GKX_OK) {
        rc = s_map (&ctx, errbuf);
    }
    if (rc == GKX_OK) {
        res.n_params = q->count;
        for (size_t i = 0; i < q->count; i++) {
            res.n_unknown += q->pairs[i].used ? 0 : 1;
        }
        *out = res;
    }
    else {
        gkx_postback_clear (&res);
    }
    s_query_wipe (q);
    gkx_free (q);
    return rc;
}

void
gkx_postback_clear (gkx_postback_t *self)
{
    assert (self);
    if (self->token) {
        sodium_memzero (self->token, strlen (self->token));
    }
    gkx_free (self->short_id);
    gkx_free (self->token);
    gkx_free (self->click_id);
    gkx_free (self->transaction_id);
    gkx_free (self->event);
    for (int i = 0; i < GKX_POSTBACK_SUBS; i++) {
        gkx_free (self->sub[i]);
    }
    gkx_free (self->reason);
    memset (self, 0, sizeof *self);
}

void
gkx_postback_dedupe_key (uint8_t key[GKX_POSTBACK_DEDUPE_BYTES], const char *transaction_id,
                         const char *event)
{
    assert (key);
    assert (transaction_id);
    assert (event);
    static const uint8_t separator = 0x00;
    crypto_generichash_state state;
    crypto_generichash_init (&state, NULL, 0, GKX_POSTBACK_DEDUPE_BYTES);
    crypto_generichash_update (&state, (const uint8_t *) GKX_POSTBACK_DEDUPE_PREFIX,
                               strlen (GKX_POSTBACK_DEDUPE_PREFIX));
    crypto_generichash_update (&state, (const uint8_t *) transaction_id,
                               strlen (transaction_id));
    crypto_generichash_update (&state, &separator, 1);
    crypto_generichash_update (&state, (const uint8_t *) event, strlen (event));
    crypto_generichash_final (&state, key, GKX_POSTBACK_DEDUPE_BYTES);
}
