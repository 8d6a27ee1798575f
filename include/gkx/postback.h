/*  postback - MMP postback templates, query parsing and the dedupe key.
    Part of gokart-exchange; MIT licence.

    An advertiser's node learns of conversions from its mobile measurement
    partner (MMP) by HTTP postback: a GET whose query string carries the
    click id the publisher's click brought, the MMP's transaction or install
    id, the event, revenue, time, the attributed click's time, country,
    platform and sub-parameters. Each
    MMP fills a URL template with its own macros ({clickid} for AppsFlyer,
    {label} for Adjust, ${(name)!} for Branch, ...). This module holds one
    template per MMP (appsflyer, adjust, branch, singular, kochava) plus a
    generic one, prints the URL a user pastes into the MMP, and turns the
    query string of a received postback into normalised fields, refusing
    anything malformed with an errbuf that names the parameter.

    The URL is BASE/MMP?p=SHORT_ID&t=TOKEN&NAME=MACRO...: the partnership's
    short id and the node's postback token are literal, the other parameters
    carry the MMP's macros. The HTTP layer routes /postback/MMP to
    gkx_postback_parse with that MMP's name, checks the token in constant
    time and looks the partnership up by its short id; docs/postbacks.md is
    the user's guide. Nothing here does I/O.
*/
#ifndef GKX_POSTBACK_H_INCLUDED
#define GKX_POSTBACK_H_INCLUDED

#include <gkx/error.h>

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Longest query string accepted, in bytes, before decoding. */
#define GKX_POSTBACK_QUERY_MAX 8192
/* Longest parameter name or value accepted, in bytes, after decoding. */
#define GKX_POSTBACK_VALUE_MAX 1024
/* Most parameters one query may carry. */
#define GKX_POSTBACK_PARAMS_MAX 256
/* Longest click id (printable ASCII without spaces), in bytes. */
#define GKX_POSTBACK_CLICK_ID_MAX 128
/* Longest transaction id, with its "@" qualifier, or sub-parameter, in bytes. */
#define GKX_POSTBACK_ID_MAX 256
/* Longest event name (the offer's payout.events key rule). */
#define GKX_POSTBACK_EVENT_MAX 64
/* Longest rejection reason, with its detail. */
#define GKX_POSTBACK_REASON_MAX 128
/* Longest short id or token (characters A-Z a-z 0-9 - . _ ~). */
#define GKX_POSTBACK_KEY_MAX 128
/* Longest base URL given to gkx_postback_url. */
#define GKX_POSTBACK_BASE_URL_MAX 2048
/* Largest revenue or payout: one billion units, in micro-units. */
#define GKX_POSTBACK_AMOUNT_MAX 1000000000000000LL
/* Number of sub-parameters (sub1..sub5). */
#define GKX_POSTBACK_SUBS 5
/* Size of a currency code buffer ("USD" and the NUL). */
#define GKX_POSTBACK_CURRENCY_BYTES 4
/* Size of a country code buffer ("US" and the NUL). */
#define GKX_POSTBACK_COUNTRY_BYTES 3
/* Size of a dedupe key (BLAKE2b-128). */
#define GKX_POSTBACK_DEDUPE_BYTES 16
/* Domain-separation prefix of the dedupe key. */
#define GKX_POSTBACK_DEDUPE_PREFIX "GKX-DEDUPE-V1"
/* Parameter names of the short id and the token, the same in every template. */
#define GKX_POSTBACK_PARAM_SHORT_ID "p"
#define GKX_POSTBACK_PARAM_TOKEN "t"

/* What a template parameter carries. A template names the query parameter
   and the MMP macro for each role it supports (gkx_postback_param and
   gkx_postback_macro); parameters without a macro are not printed in the
   URL but are read when the MMP appends them (AppsFlyer's is_rejected).
   The values are only indexes of the templates and the order in which
   gkx_postback_url prints the parameters; nothing stores or sends them,
   so a role may be inserted where its parameter reads best. */
typedef enum {
    GKX_POSTBACK_CLICK_ID = 0,   /* the publisher's click id (required) */
    GKX_POSTBACK_TXID,           /* the MMP's transaction or install id (required) */
    GKX_POSTBACK_EVENT,          /* the event name */
    GKX_POSTBACK_ACTIVITY,       /* the activity kind (Adjust): event when none, rejection */
    GKX_POSTBACK_TIME,           /* the event time */
    GKX_POSTBACK_TIME_ALT,       /* a second time (install time) used when TIME is absent */
    GKX_POSTBACK_CLICK_TIME,     /* the time of the attributed click */
    GKX_POSTBACK_REVENUE,        /* the advertiser's revenue, a decimal */
    GKX_POSTBACK_CURRENCY,       /* the revenue's ISO 4217 currency */
    GKX_POSTBACK_PAYOUT,         /* a payout that overrides the offer's, a decimal */
    GKX_POSTBACK_COUNTRY,        /* ISO 3166-1 alpha-2 country */
    GKX_POSTBACK_PLATFORM,       /* the MMP's platform or OS word */
    GKX_POSTBACK_SUB1,           /* sub-parameters 1 to 5 */
    GKX_POSTBACK_SUB2,
    GKX_POSTBACK_SUB3,
    GKX_POSTBACK_SUB4,
    GKX_POSTBACK_SUB5,
    GKX_POSTBACK_REJECTED,       /* 1/true/yes when the MMP rejected the conversion */
    GKX_POSTBACK_REASON,         /* the MMP's rejection reason */
    GKX_POSTBACK_REASON_DETAIL,  /* a value qualifying the reason (AppsFlyer) */
    GKX_POSTBACK_TXID_QUALIFIER, /* appended to TXID after "@" to tell repeated events apart */
    GKX_POSTBACK_FIELD_COUNT     /* number of roles; not a role */
} gkx_postback_field_t;

/* A parsed postback. Every pointer member is owned by the struct and freed
   by gkx_postback_clear, except mmp and platform, which point to static
   strings. Absent optional fields are NULL, "" or false as noted. */
typedef struct {
    const char *mmp;        /* canonical template name, e.g. "appsflyer" */
    char *short_id;         /* "p": the partnership's short id */
    char *token;            /* "t": the postback token; a secret, wiped on clear */
    char *click_id;         /* the publisher's click id */
    char *transaction_id;   /* the MMP's id, "ID@QUALIFIER" when the template has one */
    char *event;            /* the event name, e.g. "install", "purchase" */
    bool has_revenue;       /* whether revenue_micros holds a value */
    int64_t revenue_micros; /* revenue in micro-units (1.50 -> 1500000) */
    char currency[GKX_POSTBACK_CURRENCY_BYTES]; /* revenue currency, "" when absent */
    bool has_payout;        /* whether payout_micros holds a value */
    int64_t payout_micros;  /* payout override in micro-units */
    int64_t time;           /* event time in Unix seconds, 0 when absent */
    int64_t click_time;     /* the attributed click's time in Unix seconds, 0 when absent */
    char country[GKX_POSTBACK_COUNTRY_BYTES]; /* upper case, "" when absent */
    const char *platform;   /* "ios", "android", "web", "other", or NULL */
    char *sub[GKX_POSTBACK_SUBS]; /* sub1..sub5, NULL when absent */
    bool rejected;          /* the MMP rejected the conversion (fraud, validation) */
    char *reason;           /* the MMP's reason ("bots", "site_blacklist:123"), or NULL */
    size_t n_params;        /* parameters in the query */
    size_t n_unknown;       /* parameters the template does not read (ignored) */
    size_t n_unreplaced;    /* optional parameters still holding a macro (ignored) */
} gkx_postback_t;

/* Returns the number of templates (6). */
size_t gkx_postback_mmp_count (void);

/* Returns the canonical name of template index (0 to count - 1): "appsflyer",
   "adjust", "branch", "singular", "kochava", "generic"; NULL past the end.
   The string is static. */
const char *gkx_postback_mmp_name (size_t index);

/* Looks a template up by name, ignoring ASCII case, and sets *name_p to its
   canonical (static) name. Returns GKX_OK, or GKX_ENOTFOUND with errbuf
   naming the MMP and listing the known ones; *name_p is set only on
   success. */
int gkx_postback_mmp_find (const char **name_p, const char *mmp, char *errbuf) GKX_NODISCARD;

/* Returns the query parameter that carries field (a gkx_postback_field_t)
   in template mmp (any case), e.g. "clickid" for appsflyer and
   GKX_POSTBACK_CLICK_ID; NULL when the template does not carry the field or
   mmp is unknown. The string is static. */
const char *gkx_postback_param (const char *mmp, int field);

/* Returns the macro template mmp puts in that parameter, e.g. "{clickid}";
   NULL when the parameter is read but not printed (sent by the MMP on its
   own, like AppsFlyer's is_rejected) or not carried. The string is static. */
const char *gkx_postback_macro (const char *mmp, int field);

/* Returns the URL to paste into MMP mmp for the partnership with short id
   short_pid: base_url (http:// or https://, no query or fragment, a trailing
   "/" dropped), "/", the canonical MMP name, then ?p=SHORT_ID&t=TOKEN and
   one NAME=MACRO per parameter with a macro, in gkx_postback_field_t order.
   short_pid and token must be 1 to GKX_POSTBACK_KEY_MAX characters of
   A-Z a-z 0-9 - . _ ~ (so nothing needs percent-encoding). The caller frees
   the result with gkx_free. Returns NULL on failure with errbuf naming the
   argument: an unknown MMP, a malformed base_url, short id or token (the
   token itself is never written to errbuf). */
char *gkx_postback_url (const char *mmp, const char *base_url, const char *short_pid,
                        const char *token, char *errbuf);

/* Parses the query string of a postback (the bytes after "?", not NUL
   included) received for template mmp into *out.

   The query is split on "&" (empty pieces are skipped) and each piece on
   its first "="; names and values are percent-decoded ("+" is a space,
   %XX needs two hex digits, %00 is refused) and must be UTF-8 without
   control characters. Every parameter name may appear once. Parameters the
   template does not read are ignored and counted in n_unknown. Empty
   values, and values still holding a macro ("{x}", "${...}", "(x)"), count
   as absent for optional fields.

   Returns GKX_OK, or (errbuf naming the parameter and the rule):
   - GKX_ENOTFOUND: mmp is not a template;
   - GKX_ETOOBIG: the query is longer than GKX_POSTBACK_QUERY_MAX, has more
     than GKX_POSTBACK_PARAMS_MAX parameters, a name or value is longer than
     GKX_POSTBACK_VALUE_MAX, or a field is longer than its own limit;
   - GKX_EUTF8: a name or value is not UTF-8;
   - GKX_EINVAL: bad percent-encoding, a control character, a duplicate, a
     missing or empty required parameter (p, t, click id, transaction id,
     event), an unreplaced macro in one, or a malformed value: click id
     (printable ASCII without spaces), revenue and payout (decimals with at
     most 6 decimals, not negative, at most one billion), time and click
     time (Unix seconds or milliseconds, ISO 8601, from 2000 to 9999; the
     click time is not compared with the event time here, see
     docs/postbacks.md section 7), currency (three letters),
     country (two letters), event name (1 to 64 of A-Z a-z 0-9 _ . : -),
     short id or token, rejection flag.
   *out is written only on success; it then owns its strings and the caller
   releases them with gkx_postback_clear. */
int gkx_postback_parse (gkx_postback_t *out, const char *mmp, const char *query,
                        char *errbuf) GKX_NODISCARD;

/* Frees what a parsed postback owns, wiping the token, and zeroes *self.
   Accepts a zeroed struct and may be called twice. */
void gkx_postback_clear (gkx_postback_t *self);

/* Writes the dedupe key of a conversion: BLAKE2b-128 (crypto_generichash,
   16 bytes) of GKX_POSTBACK_DEDUPE_PREFIX || transaction_id || 0x00 ||
   event, the prefix and strings without their NULs. Postbacks with the same
   key are the same conversion; a retry yields the same key. */
void gkx_postback_dedupe_key (uint8_t key[GKX_POSTBACK_DEDUPE_BYTES],
                              const char *transaction_id, const char *event);

#ifdef __cplusplus
}
#endif

#endif
