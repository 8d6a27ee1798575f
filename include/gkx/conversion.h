/*  conversion - conversion entry bodies and the rules that decide them.
    Part of gokart-exchange; MIT licence.

    A conversion is a signed entry of kind GKX_KIND_CONVERSION in the
    advertiser's chain; its id is its entry hash. A later entry of kind
    GKX_KIND_CONVERSION_STATUS changes its status. This module holds the
    bodies of both kinds (canonical msgpack maps, encoded from and strictly
    decoded into plain C structs) and the pure rules around them:

    - the decision: from the offer in force in the conversion's causal past,
      the conversions already counted there and the facts of the postback,
      the conversion's status, reason and payout. The advertiser's node
      decides with it before writing; the publisher's node checks what was
      written with gkx_conversion_verify, which runs the same rules;
    - the counters those rules need (per UTC day, ISO week, UTC month and in
      total), and the calendar that puts a time in those periods;
    - status changes: which changes are allowed and when an approved
      conversion is locked after its hold.

    Every rule is integer arithmetic on the entries' own values; nothing
    reads a clock or the local time zone, so both members reach the same
    verdict. docs/conversions.md describes the bodies and every rule.
    Nothing here does I/O.
*/
#ifndef GKX_CONVERSION_H_INCLUDED
#define GKX_CONVERSION_H_INCLUDED

#include <stddef.h>
#include <stdint.h>

#include <gkx/error.h>
#include <gkx/offer.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Bytes of a conversion id: the entry hash of the conversion entry. */
#define GKX_CONVERSION_ID_BYTES 32
/* Bytes of the dedupe value: gkx_postback_dedupe_key's BLAKE2b-128. */
#define GKX_CONVERSION_DEDUPE_BYTES 16
/* Longest click id: printable ASCII without spaces. */
#define GKX_CONVERSION_CLICK_ID_MAX 128
/* Longest event name: letters, digits and "_.:-", as offer event names. */
#define GKX_CONVERSION_EVENT_MAX 64
/* Sub-parameters sub1 to sub5. */
#define GKX_CONVERSION_SUB_COUNT 5
/* Longest sub-parameter value, in bytes. */
#define GKX_CONVERSION_SUB_MAX 256
/* Longest reason, in bytes. */
#define GKX_CONVERSION_REASON_MAX 256
/* Largest payout and revenue: one billion units, in micro-units. */
#define GKX_CONVERSION_AMOUNT_MAX 1000000000000000LL
/* Event times: 2000-01-01T00:00:00Z to 9999-12-31T23:59:59Z. */
#define GKX_CONVERSION_TIME_MIN 946684800ULL
#define GKX_CONVERSION_TIME_MAX 253402300799ULL
/* Seconds of a UTC day. */
#define GKX_CONVERSION_DAY_SECONDS 86400
/* Buffer size of a day's text "YYYY-MM-DD" with its NUL. */
#define GKX_CONVERSION_DAY_TEXT_BYTES 11
/* Value of a cap, budget or schedule bound that is not set (null). */
#define GKX_CONVERSION_NONE (-1)

/* The reasons the decision writes. An MMP's rejection is "mmp: " and the
   MMP's own text, or "mmp" alone when the MMP gave none. */
#define GKX_CONVERSION_REASON_PAUSED "paused"
#define GKX_CONVERSION_REASON_EXPIRED "expired"
#define GKX_CONVERSION_REASON_CAP "cap"
#define GKX_CONVERSION_REASON_BUDGET "budget"
#define GKX_CONVERSION_REASON_MMP "mmp"
#define GKX_CONVERSION_REASON_MMP_PREFIX "mmp: "

/* A conversion's status. A conversion entry carries one of the first
   three; reversed is reached only by a status change. */
typedef enum {
    GKX_CONVERSION_APPROVED = 1, /* counted and payable */
    GKX_CONVERSION_PENDING = 2,  /* counted, waiting for the advertiser */
    GKX_CONVERSION_REJECTED = 3, /* not counted, not payable */
    GKX_CONVERSION_REVERSED = 4, /* was approved, then taken back */
} gkx_conversion_status_t;

/* The body of a conversion entry. Text fields are NUL-terminated; an empty
   country, platform or reason and a click_time of 0 are nil in the body, an
   empty sub value is absent from the "sub" map. */
typedef struct {
    char click_id[GKX_CONVERSION_CLICK_ID_MAX + 1];  /* the publisher's click id */
    uint64_t click_time;                             /* the click's time, Unix seconds, or 0
                                                        when unknown; not after time */
    char country[3];                                 /* ISO 3166-1 alpha-2, or "" */
    char currency[4];                                /* ISO 4217: the offer's */
    uint8_t dedupe[GKX_CONVERSION_DEDUPE_BYTES];     /* gkx_postback_dedupe_key */
    char event[GKX_CONVERSION_EVENT_MAX + 1];        /* event name */
    int64_t payout;                                  /* micro-units, 0 to AMOUNT_MAX */
    char platform[8];                                /* ios, android, web, other, or "" */
    char reason[GKX_CONVERSION_REASON_MAX + 1];      /* why rejected or pending, or "" */
    int status;                                      /* approved, pending or rejected */
    char sub[GKX_CONVERSION_SUB_COUNT][GKX_CONVERSION_SUB_MAX + 1]; /* sub1..sub5, or "" */
    uint64_t time;                                   /* event time, Unix seconds */
} gkx_conversion_t;

/* The body of a conversion status entry. */
typedef struct {
    uint8_t conversion[GKX_CONVERSION_ID_BYTES];  /* entry hash of the conversion */
    char reason[GKX_CONVERSION_REASON_MAX + 1];   /* why, or "" for nil */
    int status;                                   /* any gkx_conversion_status_t */
} gkx_conversion_change_t;

/* The offer's terms that decide conversions, read from an offer. */
typedef struct {
    int paused;                 /* status is "paused" */
    int revshare;               /* payout.model is "revshare": amounts are percentages */
    char currency[4];           /* payout.currency */
    int64_t schedule_start;     /* Unix seconds, or GKX_CONVERSION_NONE */
    int64_t schedule_end;       /* Unix seconds, or GKX_CONVERSION_NONE */
    int64_t cap_daily;          /* conversions, or GKX_CONVERSION_NONE */
    int64_t cap_weekly;         /* conversions, or GKX_CONVERSION_NONE */
    int64_t cap_monthly;        /* conversions, or GKX_CONVERSION_NONE */
    int64_t cap_total;          /* conversions, or GKX_CONVERSION_NONE */
    int64_t budget_daily;       /* micro-units, or GKX_CONVERSION_NONE */
    int64_t budget_monthly;     /* micro-units, or GKX_CONVERSION_NONE */
    int64_t budget_total;       /* micro-units, or GKX_CONVERSION_NONE */
    int manual;                 /* conversion_policy.approval is "manual" */
    uint32_t hold_days;         /* conversion_policy.hold_days */
    uint32_t click_window_days; /* attribution.click_window_days */
} gkx_conversion_terms_t;

/* The periods a time falls in, as integers that compare equal exactly when
   two times share the period. */
typedef struct {
    uint64_t day;   /* UTC days since 1970-01-01 */
    uint64_t week;  /* ISO weeks (Monday to Sunday, UTC) since the week of 1970-01-01 */
    uint64_t month; /* year * 12 + month - 1, UTC */
} gkx_conversion_periods_t;

/* The conversions already counted in a conversion's causal past: those
   whose status there is approved or pending. Counts and payout sums are
   for the periods of the conversion being decided; sums saturate at
   INT64_MAX, which is above every budget. paused_since comes from the same
   causal past: the offer's status_hlc there (gkx_merge_offer_at), as Unix
   seconds gkx_hlc_ms (hlc) / 1000. */
typedef struct {
    gkx_conversion_periods_t periods; /* periods of the conversion being decided */
    uint64_t day_count;               /* counted conversions in its UTC day */
    uint64_t week_count;              /* ... in its ISO week */
    uint64_t month_count;             /* ... in its UTC month */
    uint64_t total_count;             /* ... ever */
    int64_t day_payout;               /* their payouts in its UTC day, micro-units */
    int64_t month_payout;             /* ... in its UTC month */
    int64_t total_payout;             /* ... ever */
    uint64_t paused_since;            /* Unix seconds at which the status in force in the
                                         causal past was written (hlc milliseconds / 1000,
                                         that is (hlc >> 16) / 1000); 0 when unknown or set
                                         by the genesis. Init sets 0; callers set it */
} gkx_conversion_counters_t;

/* What the postback says about one conversion; borrowed for the call. */
typedef struct {
    const char *event;      /* event name; required */
    const char *country;    /* ISO 3166-1 alpha-2, or NULL when unknown */
    const char *platform;   /* ios, android, web, other, or NULL when unknown */
    uint64_t time;          /* event time, Unix seconds */
    uint64_t click_time;    /* the attributed click's time, Unix seconds, or 0 when unknown */
    int mmp_rejected;       /* whether the MMP rejected it (fraud, validation) */
    const char *mmp_reason; /* the MMP's reason when it rejected, or NULL (or "") for none */
    int has_revenue;        /* whether revenue is known */
    int64_t revenue;        /* micro-units of the offer's currency (revshare only) */
} gkx_conversion_facts_t;

/* What the rules give for one conversion. */
typedef struct {
    int status;                                  /* approved, pending or rejected */
    char reason[GKX_CONVERSION_REASON_MAX + 1];  /* "" or the reason */
    int64_t payout;                              /* micro-units */
} gkx_conversion_decision_t;

/* A conversion's state, as a status change is checked against it. */
typedef struct {
    int status;          /* current status */
    uint64_t time;       /* the conversion's event time, Unix seconds */
    uint64_t hlc;        /* the conversion entry's hybrid clock */
    uint32_t hold_days;  /* conversion_policy.hold_days in force when it was written */
} gkx_conversion_state_t;

/* Returns "approved", "pending", "rejected", "reversed", or NULL for an
   unknown status. */
const char *gkx_conversion_status_name (int status);

/* Parses a status word; returns GKX_OK or GKX_EINVAL. */
int gkx_conversion_status_parse (const char *text, int *status_p) GKX_NODISCARD;

/* Validates a conversion and writes its canonical body into a new buffer
   in *body_p (caller frees with gkx_free) of *len_p bytes. Returns GKX_OK,
   or GKX_EINVAL with errbuf naming the field, e.g.
   `conversion.country: "XX" is not an ISO 3166-1 country code` or
   `conversion.click_time: must not be after conversion.time`; the outputs
   are set only on success. */
int gkx_conversion_encode (uint8_t **body_p, size_t *len_p,
                           const gkx_conversion_t *conversion,
                           char *errbuf) GKX_NODISCARD;

/* Decodes and validates a conversion entry's body into *conversion,
   written only on success. Returns GKX_OK, or GKX_EBODY with errbuf naming
   the field and the rule (malformed or non-canonical msgpack, unknown or
   missing fields, a value breaking its rule). */
int gkx_conversion_decode (gkx_conversion_t *conversion, const uint8_t *body,
                           size_t len, char *errbuf) GKX_NODISCARD;

/* Validates a status change and writes its canonical body into a new
   buffer (caller frees with gkx_free). Returns GKX_OK, or GKX_EINVAL with
   errbuf naming the field; the outputs are set only on success. */
int gkx_conversion_change_encode (uint8_t **body_p, size_t *len_p,
                                  const gkx_conversion_change_t *change,
                                  char *errbuf) GKX_NODISCARD;

/* Decodes and validates a conversion status entry's body into *change,
   written only on success. Returns GKX_OK or GKX_EBODY with errbuf. */
int gkx_conversion_change_decode (gkx_conversion_change_t *change, const uint8_t *body,
                                  size_t len, char *errbuf) GKX_NODISCARD;

/* Puts a time (Unix seconds) in its UTC day, ISO week and UTC month. */
void gkx_conversion_periods (gkx_conversion_periods_t *periods, uint64_t time);

/* Writes a UTC day (days since 1970-01-01) as "YYYY-MM-DD". */
void gkx_conversion_day_text (char text[GKX_CONVERSION_DAY_TEXT_BYTES], uint64_t day);

/* Parses "YYYY-MM-DD" (a real date from 2000-01-01 to 9999-12-31) into a
   UTC day. Returns GKX_OK, or GKX_EINVAL with errbuf. */
int gkx_conversion_day_parse (uint64_t *day_p, const char *text, char *errbuf) GKX_NODISCARD;

/* Reads the conversion terms of a valid offer. Cannot fail. */
void gkx_conversion_terms_read (gkx_conversion_terms_t *terms, const gkx_offer_t *offer);

/* Starts counters for deciding a conversion at time: zero counts, the
   periods of time, paused_since 0 (the caller sets it). */
void gkx_conversion_counters_init (gkx_conversion_counters_t *self, uint64_t time);

/* Adds one conversion of the causal past, with its status there (after the
   status changes in that past) and payout. Only approved and pending
   conversions count; each counts in the periods it shares with the
   conversion being decided, and in the total. */
void gkx_conversion_counters_add (gkx_conversion_counters_t *self, uint64_t time, int status,
                                  int64_t payout);

/* Decides a conversion from the offer in force in its causal past, the
   counters of that past (initialised for facts->time) and the postback's
   facts. Payout: gkx_offer_payout (offer, event, country, platform); for a
   revshare offer that is a percentage, and the payout is revenue * pct /
   100 rounded down to the micro-unit, or 0 when revenue is unknown. Status,
   first rule that holds: rejected "mmp: TEXT" (or "mmp" without a text)
   when the MMP rejected it;
   rejected "paused" when the offer is paused, unless the click came before
   the pause and the event within the click window (facts->click_time is
   known, click_time < counters->paused_since, and time <= click_time +
   attribution.click_window_days days), in which case the pause does not
   decide and the rules below do; rejected "expired" outside
   the schedule; rejected "cap" when a daily, weekly, monthly or total cap
   is already reached; rejected "budget" when the payout would take a daily,
   monthly or total budget over; pending (no reason) under manual approval;
   else approved (no reason). Returns GKX_OK, or GKX_EINVAL with errbuf for
   invalid facts (a click_time, when known, must be a valid time not after
   time); *decision is written only on success. */
int gkx_conversion_decide (gkx_conversion_decision_t *decision, const gkx_offer_t *offer,
                           const gkx_conversion_counters_t *counters,
                           const gkx_conversion_facts_t *facts, char *errbuf) GKX_NODISCARD;

/* Checks, on the publisher's side, a decoded conversion (counters
   initialised for its time) against the same rules: its currency is the
   offer's, and status, reason and payout are what gkx_conversion_decide
   gives with the MMP's verdict read from the reason ("mmp" or "mmp: TEXT")
   and the click time read from the body (the caller sets the counters'
   paused_since as the advertiser did, from the same causal past).
   The advertiser's revenue is not shared, so for a revshare offer the
   written payout is taken as given (and still counts against budgets).
   Returns GKX_OK, or GKX_EPOLICY with errbuf naming the first field that
   differs, e.g. `conversion.payout: 2000000 written, the terms give
   2500000`. */
int gkx_conversion_verify (const gkx_conversion_t *conversion, const gkx_offer_t *offer,
                           const gkx_conversion_counters_t *counters,
                           char *errbuf) GKX_NODISCARD;

/* gkx_conversion_verify with the offer's terms already read by
   gkx_conversion_terms_read from the same offer (reading them is a good
   part of a conversion's cost on the publisher). */
int gkx_conversion_verify_terms (const gkx_conversion_t *conversion, const gkx_offer_t *offer,
                                 const gkx_conversion_terms_t *terms,
                                 const gkx_conversion_counters_t *counters,
                                 char *errbuf) GKX_NODISCARD;

/* Returns 1 when a status change from `from` to `to` is allowed at all:
   pending -> approved | rejected; approved -> rejected | reversed;
   rejected -> approved | pending; reversed is final. Else 0. */
int gkx_conversion_is_transition (int from, int to);

/* Returns when an approved conversion locks: time + hold_days days, in
   Unix seconds. */
uint64_t gkx_conversion_lock_time (uint64_t time, uint32_t hold_days);

/* Checks a status change to `status`, carried by an entry with hybrid
   clock hlc, against the conversion's state. Returns GKX_OK, or
   GKX_EPOLICY with errbuf when the change is not after the conversion,
   the transition is not allowed, or the conversion is approved and locked
   (the change's time, hlc milliseconds / 1000, is after the lock time). */
int gkx_conversion_change_check (const gkx_conversion_state_t *state, int status, uint64_t hlc,
                                 char *errbuf) GKX_NODISCARD;

#ifdef __cplusplus
}
#endif

#endif
