/*  fuzz_postback - libFuzzer target: the MMP postback parser and the
    conversion it becomes.
    Part of gokart-exchange; MIT licence.

    Input: the MMP name, a newline, then the raw query string, as the
    advertiser's postback endpoint passes them to gkx_postback_parse (the
    path segment of /postback/MMP and the bytes after "?"); both are C
    strings there, so each is cut at its first NUL. An input without a
    newline is a query for the generic template.

    An accepted postback must hold only what docs/postbacks.md promises
    (each field within its limits and alphabet). It then goes the way the
    node's intake takes it (src/node/intake.c, s_item_fill, and
    gkx_store_convert): the conversion rules decide it against a fixed offer
    with per-event payouts, rules and caps, the conversion body is encoded,
    decoded back to the same bytes, and the publisher's check of the
    decision (gkx_conversion_verify) must agree with the advertiser's.
*/
#include "fuzz.h"

#include <gkx/alloc.h>
#include <gkx/conversion.h>
#include <gkx/offer.h>
#include <gkx/postback.h>

/* The offer the conversions are decided against. */
#define S_OFFER_JSON                                                                        \
    "{\"name\": \"Puzzle Quest iOS US\", \"status\": \"active\", \"payout\": {\"model\": "  \
    "\"cpi\", \"amount\": \"2.50\", \"currency\": \"USD\", \"events\": {\"purchase\": "     \
    "\"10.00\"}, \"rules\": [{\"id\": \"gb-android\", \"when\": {\"countries\": [\"GB\"], " \
    "\"platforms\": [\"android\"]}, \"amount\": \"3.25\"}]}, \"caps\": {\"daily\": 200}, " \
    "\"targeting\": {\"countries\": [\"US\", \"CA\", \"GB\"], \"platforms\": [\"ios\", "   \
    "\"android\"]}, \"attribution\": {\"click_window_days\": 7}}"
/* The time of receipt written when the MMP sends none (fixed, so runs repeat). */
#define S_NOW 1717200000ULL

/* The offer, built once. */
static gkx_offer_t *s_offer;

/* Frees the offer at exit. */
static void
s_cleanup (void)
{
    gkx_offer_destroy (&s_offer);
}

int
LLVMFuzzerInitialize (int *argc, char ***argv)
{
    (void) argc;
    (void) argv;
    if (sodium_init () < 0) {
        abort ();
    }
    char errbuf[GKX_ERRBUF_BYTES] = "";
    if (gkx_offer_from_text (&s_offer, S_OFFER_JSON, errbuf) != GKX_OK) {
        fprintf (stderr, "fuzz_postback: offer: %s\n", errbuf);
        abort ();
    }
    atexit (s_cleanup);
    return 0;
}

/* Whether s is 1 to max bytes, each one of the characters of set or, when
   set is NULL, printable ASCII but space. */
static int
s_is_word (const char *s, size_t max, const char *set)
{
    size_t len = strlen (s);
    if (len == 0 || len > max) {
        return 0;
    }
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char) s[i];
        if (set ? !strchr (set, c) : (c <= ' ' || c > '~')) {
            return 0;
        }
    }
    return 1;
}

/* Whether s is exactly n upper-case ASCII letters. */
static int
s_is_upper (const char *s, size_t n)
{
    if (strlen (s) != n) {
        return 0;
    }
    for (size_t i = 0; i < n; i++) {
        if (s[i] < 'A' || s[i] > 'Z') {
            return 0;
        }
    }
    return 1;
}

/* Checks what docs/postbacks.md promises of an accepted postback. */
static void
s_check_fields (const gkx_postback_t *pb)
{
    static const char *const key_set
        = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~";
    static const char *const event_set
        = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.:-";
    const char *canonical = NULL;
    GKX_FUZZ_CHECK (pb->mmp && gkx_postback_mmp_find (&canonical, pb->mmp, NULL) == GKX_OK
                        && canonical == pb->mmp,
                    "postback: mmp is not a canonical name");
    GKX_FUZZ_CHECK (s_is_word (pb->short_id, GKX_POSTBACK_KEY_MAX, key_set), "short id");
    GKX_FUZZ_CHECK (s_is_word (pb->token, GKX_POSTBACK_KEY_MAX, key_set), "token");
    GKX_FUZZ_CHECK (s_is_word (pb->click_id, GKX_POSTBACK_CLICK_ID_MAX, NULL), "click id \"%s\"",
                    pb->click_id);
    GKX_FUZZ_CHECK (pb->transaction_id && pb->transaction_id[0]
                        && strlen (pb->transaction_id) <= GKX_POSTBACK_ID_MAX,
                    "transaction id");
    GKX_FUZZ_CHECK (s_is_word (pb->event, GKX_POSTBACK_EVENT_MAX, event_set), "event \"%s\"",
                    pb->event);
    GKX_FUZZ_CHECK (!pb->has_revenue
                        || (pb->revenue_micros >= 0
                            && pb->revenue_micros <= GKX_POSTBACK_AMOUNT_MAX),
                    "revenue %lld", (long long) pb->revenue_micros);
    GKX_FUZZ_CHECK (!pb->has_payout
                        || (pb->payout_micros >= 0 && pb->payout_micros <= GKX_POSTBACK_AMOUNT_MAX),
                    "payout %lld", (long long) pb->payout_micros);
    GKX_FUZZ_CHECK (!pb->currency[0] || s_is_upper (pb->currency, 3), "currency \"%s\"",
                    pb->currency);
    GKX_FUZZ_CHECK (!pb->country[0] || s_is_upper (pb->country, 2), "country \"%s\"",
                    pb->country);
    GKX_FUZZ_CHECK (pb->time == 0
                        || (pb->time >= (int64_t) GKX_CONVERSION_TIME_MIN
                            && pb->time <= (int64_t) GKX_CONVERSION_TIME_MAX),
                    "time %lld", (long long) pb->time);
    GKX_FUZZ_CHECK (pb->click_time == 0
                        || (pb->click_time >= (int64_t) GKX_CONVERSION_TIME_MIN
                            && pb->click_time <= (int64_t) GKX_CONVERSION_TIME_MAX),
                    "click time %lld", (long long) pb->click_time);
    GKX_FUZZ_CHECK (!pb->platform || strcmp (pb->platform, "ios") == 0
                        || strcmp (pb->platform, "android") == 0
                        || strcmp (pb->platform, "web") == 0
                        || strcmp (pb->platform, "other") == 0,
                    "platform \"%s\"", pb->platform);
    for (int i = 0; i < GKX_POSTBACK_SUBS; i++) {
        GKX_FUZZ_CHECK (!pb->sub[i] || strlen (pb->sub[i]) <= GKX_POSTBACK_ID_MAX, "sub%d", i + 1);
    }
    GKX_FUZZ_CHECK (pb->n_params <= GKX_POSTBACK_PARAMS_MAX && pb->n_unknown <= pb->n_params
                        && pb->n_unreplaced <= pb->n_params,
                    "parameter counts %zu %zu %zu", pb->n_params, pb->n_unknown,
                    pb->n_unreplaced);
}

/* Decides, encodes and verifies the conversion of an accepted postback,
   as the intake and the store do. */
static void
s_convert (const gkx_postback_t *pb)
{
    gkx_conversion_t *draft = gkx_zalloc (sizeof *draft);
    snprintf (draft->click_id, sizeof draft->click_id, "%s", pb->click_id);
    snprintf (draft->event, sizeof draft->event, "%s", pb->event);
    snprintf (draft->country, sizeof draft->country, "%s", pb->country);
    snprintf (draft->platform, sizeof draft->platform, "%s", pb->platform ? pb->platform : "");
    for (int i = 0; i < GKX_CONVERSION_SUB_COUNT && i < GKX_POSTBACK_SUBS; i++) {
        snprintf (draft->sub[i], sizeof draft->sub[i], "%s", pb->sub[i] ? pb->sub[i] : "");
    }
    draft->time = pb->time > 0 ? (uint64_t) pb->time : S_NOW;
    draft->click_time = pb->click_time > 0 && (uint64_t) pb->click_time <= draft->time
        ? (uint64_t) pb->click_time : 0;
    gkx_postback_dedupe_key (draft->dedupe, pb->transaction_id, pb->event);
    gkx_conversion_facts_t facts = {
        .event = draft->event,
        .country = draft->country[0] ? draft->country : NULL,
        .platform = draft->platform[0] ? draft->platform : NULL,
        .time = draft->time,
        .click_time = draft->click_time,
        .mmp_rejected = pb->rejected,
        .mmp_reason = pb->reason,
        .has_revenue = pb->has_revenue && (!pb->currency[0] || strcmp (pb->currency, "USD") == 0),
        .revenue = pb->revenue_micros,
    };
    gkx_conversion_counters_t counters;
    gkx_conversion_counters_init (&counters, draft->time);
    gkx_conversion_decision_t decision;
    char errbuf[GKX_ERRBUF_BYTES] = "";
    int rc = gkx_conversion_decide (&decision, s_offer, &counters, &facts, errbuf);
    GKX_FUZZ_SAY ("postback: decide: %s %s", gkx_errname (rc), errbuf);
    if (rc != GKX_OK) {
        GKX_FUZZ_CHECK_REFUSAL (rc, errbuf, "decide");
        gkx_free (draft);
        return;
    }
    snprintf (draft->currency, sizeof draft->currency, "%s", "USD");
    draft->payout = decision.payout;
    draft->status = decision.status;
    snprintf (draft->reason, sizeof draft->reason, "%s", decision.reason);
    uint8_t *body = NULL;
    size_t len = 0;
    rc = gkx_conversion_encode (&body, &len, draft, errbuf);
    GKX_FUZZ_SAY ("postback: encode: %s %s", gkx_errname (rc), errbuf);
    if (rc != GKX_OK) {
        /* The intake answers 400 with the message: a refusal, not a crash. */
        GKX_FUZZ_CHECK_REFUSAL (rc, errbuf, "conversion encode");
        gkx_free (draft);
        return;
    }
    gkx_conversion_t *decoded = gkx_zalloc (sizeof *decoded);
    rc = gkx_conversion_decode (decoded, body, len, errbuf);
    GKX_FUZZ_CHECK (rc == GKX_OK, "conversion: an encoded body does not decode: %s", errbuf);
    uint8_t *again = NULL;
    size_t again_len = 0;
    GKX_FUZZ_CHECK (gkx_conversion_encode (&again, &again_len, decoded, errbuf) == GKX_OK
                        && again_len == len && memcmp (again, body, len) == 0,
                    "conversion: decoding and encoding again gives other bytes");
    rc = gkx_conversion_verify (decoded, s_offer, &counters, errbuf);
    GKX_FUZZ_CHECK (rc == GKX_OK, "conversion: the publisher's check disagrees: %s", errbuf);
    gkx_free (again);
    gkx_free (decoded);
    gkx_free (body);
    gkx_free (draft);
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
    if (!s_offer) {
        LLVMFuzzerInitialize (NULL, NULL);
    }
    const uint8_t *newline = memchr (data, '\n', size);
    char *mmp = newline ? gkx_fuzz_text (data, (size_t) (newline - data)) : strdup ("generic");
    char *query = newline ? gkx_fuzz_text (newline + 1, size - (size_t) (newline - data) - 1)
                          : gkx_fuzz_text (data, size);
    gkx_postback_t pb;
    memset (&pb, 0, sizeof pb);
    char errbuf[GKX_ERRBUF_BYTES] = "";
    int rc = gkx_postback_parse (&pb, mmp, query, errbuf);
    GKX_FUZZ_SAY ("postback: %s: %s %s", mmp, gkx_errname (rc), errbuf);
    if (rc == GKX_OK) {
        s_check_fields (&pb);
        uint8_t key[GKX_POSTBACK_DEDUPE_BYTES];
        gkx_postback_dedupe_key (key, pb.transaction_id, pb.event);
        s_convert (&pb);
        gkx_postback_clear (&pb);
        gkx_postback_clear (&pb);
    }
    else {
        GKX_FUZZ_CHECK_REFUSAL (rc, errbuf, "postback");
        /* *out is written only on success. */
        GKX_FUZZ_CHECK (pb.token == NULL, "postback: *out written on failure");
    }
    free (mmp);
    free (query);
    return 0;
}
