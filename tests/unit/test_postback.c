/*  test_postback - tests of the MMP postback templates, parsing and dedupe key.
    Part of gokart-exchange; MIT licence.

    Every template round-trips: its URL is compared byte for byte with the
    one docs/postbacks.md shows, the MMP's macros are replaced by example
    values the way the MMP sends them, and the parsed fields are checked one
    by one. Then one table row per rejection rule asserts the exact code and
    message, and further cases cover percent-decoding, limits, time formats,
    platform words, rejected postbacks and the dedupe key.
*/
#include "testutil.h"

#include <gkx/alloc.h>
#include <gkx/error.h>
#include <gkx/postback.h>

#include <sodium.h>

/* Base URL, short id and token of every URL test. */
#define BASE "https://node.example.com:7702/postback"
#define PID "3fa9c2d1"
#define TOKEN "9c1be0d27a4f4e1b8d3c6a5f0e2b7d41"
/* The time of most examples: 2024-05-20T09:41:28Z. */
#define T0 1716198088
/* A generic query with every required parameter. */
#define G "p=pid1&t=tok1&click_id=c1&txid=tx1&event=purchase"
/* An AppsFlyer query with every required parameter. */
#define AF "p=pid1&t=tok1&clickid=c1&appsflyer_id=af1"
/* An Adjust query with every required parameter but the event. */
#define AD "p=pid1&t=tok1&label=c1&adid=ad1"

/* Parses query with mmp and fails the test unless it succeeds. */
static void
s_parse_ok (gkx_postback_t *pb, const char *mmp, const char *query)
{
    char errbuf[GKX_ERRBUF_BYTES] = "";
    int rc = gkx_postback_parse (pb, mmp, query, errbuf);
    ck_assert_msg (rc == GKX_OK, "%s: %s for %.200s", gkx_errname (rc), errbuf, query);
}

/* Returns a new string: s with every occurrence of from replaced by to. */
static char *
s_replace (const char *s, const char *from, const char *to)
{
    size_t from_len = strlen (from);
    size_t to_len = strlen (to);
    size_t len = strlen (s);
    char *out = gkx_zalloc (len * (to_len + 1) + 1);
    size_t n = 0;
    for (size_t i = 0; i < len;) {
        if (strncmp (s + i, from, from_len) == 0) {
            memcpy (out + n, to, to_len);
            n += to_len;
            i += from_len;
        }
        else {
            out[n++] = s[i++];
        }
    }
    return out;
}

/* One macro and the value an MMP puts in its place, percent-encoded. */
typedef struct {
    /* the macro as the URL prints it */
    const char *macro;
    /* what the MMP puts in its place */
    const char *value;
} s_sub_t;

/* Builds the URL of mmp, replaces the macros as subs says, checks nothing
   is left of any macro, parses the query and returns the result in *pb. */
static void
s_round_trip (gkx_postback_t *pb, const char *mmp, const s_sub_t *subs, size_t n_subs)
{
    char errbuf[GKX_ERRBUF_BYTES] = "";
    char *url = gkx_postback_url (mmp, BASE, PID, TOKEN, errbuf);
    ck_assert_msg (url != NULL, "%s", errbuf);
    for (size_t i = 0; i < n_subs; i++) {
        ck_assert_msg (strstr (url, subs[i].macro) != NULL, "%s lacks %s", url, subs[i].macro);
        char *next = s_replace (url, subs[i].macro, subs[i].value);
        gkx_free (url);
        url = next;
    }
    ck_assert_msg (strchr (url, '{') == NULL, "macro left in %s", url);
    const char *query = strchr (url, '?');
    ck_assert_ptr_nonnull (query);
    s_parse_ok (pb, mmp, query + 1);
    ck_assert_str_eq (pb->short_id, PID);
    ck_assert_str_eq (pb->token, TOKEN);
    gkx_free (url);
}

/* Number of elements of an array. */
#define S_COUNT(a) (sizeof (a) / sizeof ((a)[0]))

START_TEST (test_mmp_names_and_lookup)
{
    static const char *const names[] = {"appsflyer", "adjust", "branch",
                                        "singular",  "kochava", "generic"};
    ck_assert_uint_eq (gkx_postback_mmp_count (), S_COUNT (names));
    for (size_t i = 0; i < S_COUNT (names); i++) {
        ck_assert_str_eq (gkx_postback_mmp_name (i), names[i]);
    }
    ck_assert_ptr_null (gkx_postback_mmp_name (S_COUNT (names)));

    char errbuf[GKX_ERRBUF_BYTES] = "";
    const char *name = NULL;
    ck_assert_int_eq (gkx_postback_mmp_find (&name, "AppsFlyer", errbuf), GKX_OK);
    ck_assert_str_eq (name, "appsflyer");
    ck_assert_int_eq (gkx_postback_mmp_find (&name, "KOCHAVA", errbuf), GKX_OK);
    ck_assert_str_eq (name, "kochava");
    name = NULL;
    ck_assert_int_eq (gkx_postback_mmp_find (&name, "tune", errbuf), GKX_ENOTFOUND);
    ck_assert_ptr_null (name);
    ck_assert_str_eq (errbuf, "unknown MMP \"tune\" (known: appsflyer, adjust, branch, "
                              "singular, kochava, generic)");
}
END_TEST

START_TEST (test_param_and_macro)
{
    ck_assert_str_eq (gkx_postback_param ("appsflyer", GKX_POSTBACK_CLICK_ID), "clickid");
    ck_assert_str_eq (gkx_postback_macro ("appsflyer", GKX_POSTBACK_CLICK_ID), "{clickid}");
    ck_assert_str_eq (gkx_postback_param ("Adjust", GKX_POSTBACK_CLICK_ID), "label");
    ck_assert_str_eq (gkx_postback_macro ("adjust", GKX_POSTBACK_PLATFORM), "{os_name}");
    ck_assert_str_eq (gkx_postback_macro ("branch", GKX_POSTBACK_EVENT), "${(name)!}");
    ck_assert_str_eq (gkx_postback_macro ("singular", GKX_POSTBACK_REVENUE), "{AMOUNT}");
    ck_assert_str_eq (gkx_postback_param ("kochava", GKX_POSTBACK_TXID), "kochava_device_id");
    ck_assert_str_eq (gkx_postback_param ("generic", GKX_POSTBACK_SUB5), "sub5");
    /* The attributed click's time, in every template. */
    ck_assert_str_eq (gkx_postback_macro ("appsflyer", GKX_POSTBACK_CLICK_TIME),
                      "{attributed_touch_time}");
    ck_assert_str_eq (gkx_postback_param ("adjust", GKX_POSTBACK_CLICK_TIME), "click_time");
    ck_assert_str_eq (gkx_postback_macro ("adjust", GKX_POSTBACK_CLICK_TIME), "{click_time}");
    ck_assert_str_eq (gkx_postback_macro ("branch", GKX_POSTBACK_CLICK_TIME),
                      "${(last_attributed_touch_timestamp)!}");
    ck_assert_str_eq (gkx_postback_macro ("singular", GKX_POSTBACK_CLICK_TIME),
                      "{click_utc_timestamp}");
    ck_assert_str_eq (gkx_postback_param ("kochava", GKX_POSTBACK_CLICK_TIME), "click_date");
    ck_assert_str_eq (gkx_postback_param ("generic", GKX_POSTBACK_CLICK_TIME), "click_time");
    /* Read but not printed: AppsFlyer appends it on rejected postbacks. */
    ck_assert_str_eq (gkx_postback_param ("appsflyer", GKX_POSTBACK_REJECTED), "is_rejected");
    ck_assert_ptr_null (gkx_postback_macro ("appsflyer", GKX_POSTBACK_REJECTED));
    /* Not carried, unknown field, unknown MMP. */
    ck_assert_ptr_null (gkx_postback_param ("adjust", GKX_POSTBACK_CURRENCY));
    ck_assert_ptr_null (gkx_postback_macro ("adjust", GKX_POSTBACK_SUB1));
    ck_assert_ptr_null (gkx_postback_param ("generic", GKX_POSTBACK_FIELD_COUNT));
    ck_assert_ptr_null (gkx_postback_param ("generic", -1));
    ck_assert_ptr_null (gkx_postback_param ("tune", GKX_POSTBACK_CLICK_ID));
}
END_TEST

/* The URL of each template, as docs/postbacks.md shows it. */
static const struct {
    /* the template */
    const char *mmp;
    /* its URL for BASE, PID and TOKEN */
    const char *url;
} s_golden_urls[] = {
    {"appsflyer",
     BASE "/appsflyer?p=" PID "&t=" TOKEN
          "&clickid={clickid}&appsflyer_id={appsflyer_id}&event_name={event_name}"
          "&event_time={event_time}&install_unix_ts={install_unix_ts}"
          "&attributed_touch_time={attributed_touch_time}"
          "&event_revenue={event_revenue}&event_revenue_currency={event_revenue_currency}"
          "&country_code={country_code}&platform={platform}&af_sub1={af_sub1}"
          "&af_sub2={af_sub2}&af_sub3={af_sub3}&af_sub4={af_sub4}&af_sub5={af_sub5}"},
    {"adjust",
     BASE "/adjust?p=" PID "&t=" TOKEN
          "&label={label}&adid={adid}&event_name={event_name}&activity_kind={activity_kind}"
          "&created_at={created_at}&click_time={click_time}&revenue_usd={revenue_usd}"
          "&country={country}&os_name={os_name}&rejection_reason={rejection_reason}"},
    {"branch",
     BASE "/branch?p=" PID "&t=" TOKEN
          "&click_id=${(last_attributed_touch_data_tilde_click_id)!}&event_id=${(id)!}"
          "&event=${(name)!}&timestamp=${(event_timestamp)!}"
          "&click_timestamp=${(last_attributed_touch_timestamp)!}"
          "&revenue=${(event_data_revenue)!}&currency=${(event_data_currency)!}"
          "&country=${(user_data_geo_country_code)!}&os=${(user_data_os)!}"},
    {"singular",
     BASE "/singular?p=" PID "&t=" TOKEN
          "&clickid={cl?NETWORK_NAME}&singular_click_id={CLID}&event={EVTNAME}"
          "&timestamp={UTCM}&click_time={click_utc_timestamp}&amount={AMOUNT}"},
    {"kochava",
     BASE "/kochava?p=" PID "&t=" TOKEN
          "&click_id={click_id}&kochava_device_id={kochava_device_id}"
          "&event_name={event_name}&click_date={click_date}&revenue={revenue}"
          "&currency={currency}&country={country}&platform={platform}"},
    {"generic",
     BASE "/generic?p=" PID "&t=" TOKEN
          "&click_id={click_id}&txid={txid}&event={event}&time={time}"
          "&click_time={click_time}&revenue={revenue}&currency={currency}&payout={payout}"
          "&country={country}&platform={platform}"
          "&sub1={sub1}&sub2={sub2}&sub3={sub3}&sub4={sub4}&sub5={sub5}"
          "&rejected={rejected}&reason={reason}"},
};

START_TEST (test_url_golden)
{
    const char *mmp = s_golden_urls[_i].mmp;
    char errbuf[GKX_ERRBUF_BYTES] = "";
    char *url = gkx_postback_url (mmp, BASE, PID, TOKEN, errbuf);
    ck_assert_msg (url != NULL, "%s: %s", mmp, errbuf);
    ck_assert_str_eq (url, s_golden_urls[_i].url);
    gkx_free (url);
}
END_TEST

START_TEST (test_url_normalises_name_and_trailing_slash)
{
    char errbuf[GKX_ERRBUF_BYTES] = "";
    char *url = gkx_postback_url ("Generic", "http://10.0.0.5:7702/pb//", "a-b.c_d~e", "f00d",
                                  errbuf);
    ck_assert_msg (url != NULL, "%s", errbuf);
    ck_assert_str_eq (url, "http://10.0.0.5:7702/pb/generic?p=a-b.c_d~e&t=f00d"
                           "&click_id={click_id}&txid={txid}&event={event}&time={time}"
                           "&click_time={click_time}&revenue={revenue}&currency={currency}"
                           "&payout={payout}"
                           "&country={country}&platform={platform}&sub1={sub1}&sub2={sub2}"
                           "&sub3={sub3}&sub4={sub4}&sub5={sub5}&rejected={rejected}"
                           "&reason={reason}");
    gkx_free (url);
}
END_TEST

/* One refused gkx_postback_url call. */
typedef struct {
    /* the arguments */
    const char *mmp;
    const char *base;
    const char *pid;
    const char *token;
    /* the errbuf expected */
    const char *message;
} s_url_case_t;

/* The rules of gkx_postback_url, one row each. */
static const s_url_case_t s_url_cases[] = {
    {"tune", BASE, PID, TOKEN,
     "unknown MMP \"tune\" (known: appsflyer, adjust, branch, singular, kochava, generic)"},
    {"generic", "ftp://node.example.com/postback", PID, TOKEN,
     "base_url: must start with http:// or https://"},
    {"generic", "node.example.com/postback", PID, TOKEN,
     "base_url: must start with http:// or https://"},
    {"generic", "https://", PID, TOKEN, "base_url: has no host"},
    {"generic", "https:///postback", PID, TOKEN, "base_url: has no host"},
    {"generic", "https://node.example.com/pb?x=1", PID, TOKEN,
     "base_url: must not hold a query or fragment"},
    {"generic", "https://node.example.com/pb#x", PID, TOKEN,
     "base_url: must not hold a query or fragment"},
    {"generic", "https://node example.com", PID, TOKEN,
     "base_url: byte 12 is a space, control or non-ASCII character"},
    {"generic", "https://n\xc3\xa9.example.com", PID, TOKEN,
     "base_url: byte 9 is a space, control or non-ASCII character"},
    {"generic", BASE, "a b", TOKEN,
     "short_pid: \"a b\" is not 1 to 128 of A-Z a-z 0-9 - . _ ~"},
    {"generic", BASE, "", TOKEN, "short_pid: \"\" is not 1 to 128 of A-Z a-z 0-9 - . _ ~"},
    {"generic", BASE, "a&t=x", TOKEN,
     "short_pid: \"a&t=x\" is not 1 to 128 of A-Z a-z 0-9 - . _ ~"},
    {"generic", BASE, PID, "sec/ret", "token: not 1 to 128 of A-Z a-z 0-9 - . _ ~"},
    {"generic", BASE, PID, "", "token: not 1 to 128 of A-Z a-z 0-9 - . _ ~"},
};

START_TEST (test_url_rejects)
{
    const s_url_case_t *c = &s_url_cases[_i];
    char errbuf[GKX_ERRBUF_BYTES] = "";
    char *url = gkx_postback_url (c->mmp, c->base, c->pid, c->token, errbuf);
    ck_assert_ptr_null (url);
    ck_assert_str_eq (errbuf, c->message);
}
END_TEST

START_TEST (test_url_limits)
{
    char errbuf[GKX_ERRBUF_BYTES] = "";
    char pid[GKX_POSTBACK_KEY_MAX + 2];
    memset (pid, 'a', sizeof pid - 1);
    pid[sizeof pid - 1] = '\0';
    ck_assert_ptr_null (gkx_postback_url ("generic", BASE, pid, TOKEN, errbuf));
    ck_assert_str_eq (errbuf, "short_pid: \"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\" "
                              "is not 1 to 128 of A-Z a-z 0-9 - . _ ~");
    pid[GKX_POSTBACK_KEY_MAX] = '\0';
    char *url = gkx_postback_url ("generic", BASE, pid, pid, errbuf);
    ck_assert_ptr_nonnull (url);
    gkx_free (url);

    char base[GKX_POSTBACK_BASE_URL_MAX + 2];
    memcpy (base, "https://", 8);
    memset (base + 8, 'h', sizeof base - 9);
    base[sizeof base - 1] = '\0';
    ck_assert_ptr_null (gkx_postback_url ("generic", base, PID, TOKEN, errbuf));
    ck_assert_str_eq (errbuf, "base_url: longer than 2048 bytes");
    base[GKX_POSTBACK_BASE_URL_MAX] = '\0';
    url = gkx_postback_url ("generic", base, PID, TOKEN, errbuf);
    ck_assert_ptr_nonnull (url);
    gkx_free (url);
}
END_TEST

START_TEST (test_round_trip_appsflyer)
{
    static const s_sub_t subs[] = {
        {"{clickid}", "ck-7f3a9"},
        {"{appsflyer_id}", "1716198000000-1234567"},
        {"{event_name}", "af_purchase"},
        {"{event_time}", "2024-05-20%2009%3A41%3A28.123"},
        {"{install_unix_ts}", "1716190000"},
        {"{attributed_touch_time}", "2024-05-20%2009%3A11%3A28.500"},
        {"{event_revenue}", "4.99"},
        {"{event_revenue_currency}", "EUR"},
        {"{country_code}", "DE"},
        {"{platform}", "iOS"},
        {"{af_sub1}", "spring%20sale"},
        {"{af_sub2}", "s2"},
        {"{af_sub3}", "s3"},
        {"{af_sub4}", "s4"},
        {"{af_sub5}", "s%C3%A9"},
    };
    gkx_postback_t pb;
    s_round_trip (&pb, "appsflyer", subs, S_COUNT (subs));
    ck_assert_str_eq (pb.mmp, "appsflyer");
    ck_assert_str_eq (pb.click_id, "ck-7f3a9");
    ck_assert_str_eq (pb.transaction_id, "1716198000000-1234567@2024-05-20 09:41:28.123");
    ck_assert_str_eq (pb.event, "af_purchase");
    ck_assert (pb.has_revenue);
    ck_assert_int_eq (pb.revenue_micros, 4990000);
    ck_assert_str_eq (pb.currency, "EUR");
    ck_assert (!pb.has_payout);
    ck_assert_int_eq (pb.time, T0);
    ck_assert_int_eq (pb.click_time, T0 - 1800);
    ck_assert_str_eq (pb.country, "DE");
    ck_assert_str_eq (pb.platform, "ios");
    ck_assert_str_eq (pb.sub[0], "spring sale");
    ck_assert_str_eq (pb.sub[1], "s2");
    ck_assert_str_eq (pb.sub[2], "s3");
    ck_assert_str_eq (pb.sub[3], "s4");
    ck_assert_str_eq (pb.sub[4], "s\xc3\xa9");
    ck_assert (!pb.rejected);
    ck_assert_ptr_null (pb.reason);
    ck_assert_uint_eq (pb.n_params, 17);
    ck_assert_uint_eq (pb.n_unknown, 0);
    ck_assert_uint_eq (pb.n_unreplaced, 0);
    gkx_postback_clear (&pb);
}
END_TEST

START_TEST (test_round_trip_appsflyer_install)
{
    /* An install postback: AppsFlyer has no event name or event time for it. */
    static const s_sub_t subs[] = {
        {"{clickid}", "ck-1"},
        {"{appsflyer_id}", "1716198000000-1234567"},
        {"{event_name}", ""},
        {"{event_time}", ""},
        {"{install_unix_ts}", "1716198088"},
        {"{attributed_touch_time}", ""},
        {"{event_revenue}", ""},
        {"{event_revenue_currency}", ""},
        {"{country_code}", "us"},
        {"{platform}", "android"},
        {"{af_sub1}", ""},
        {"{af_sub2}", ""},
        {"{af_sub3}", ""},
        {"{af_sub4}", ""},
        {"{af_sub5}", ""},
    };
    gkx_postback_t pb;
    s_round_trip (&pb, "appsflyer", subs, S_COUNT (subs));
    ck_assert_str_eq (pb.click_id, "ck-1");
    ck_assert_str_eq (pb.transaction_id, "1716198000000-1234567");
    ck_assert_str_eq (pb.event, "install");
    ck_assert (!pb.has_revenue);
    ck_assert_str_eq (pb.currency, "");
    ck_assert_int_eq (pb.time, T0);
    ck_assert_int_eq (pb.click_time, 0);
    ck_assert_str_eq (pb.country, "US");
    ck_assert_str_eq (pb.platform, "android");
    for (int i = 0; i < GKX_POSTBACK_SUBS; i++) {
        ck_assert_ptr_null (pb.sub[i]);
    }
    ck_assert (!pb.rejected);
    gkx_postback_clear (&pb);
}
END_TEST

START_TEST (test_round_trip_adjust_install)
{
    static const s_sub_t subs[] = {
        {"{label}", "ck-adj-1"},
        {"{adid}", "18546f6171f67e29d1cb983322ad1329"},
        {"{event_name}", ""},
        {"{activity_kind}", "install"},
        {"{created_at}", "1404214665"},
        {"{click_time}", "1404214600"},
        {"{revenue_usd}", ""},
        {"{country}", "de"},
        {"{os_name}", "android"},
        {"{rejection_reason}", ""},
    };
    gkx_postback_t pb;
    s_round_trip (&pb, "adjust", subs, S_COUNT (subs));
    ck_assert_str_eq (pb.click_id, "ck-adj-1");
    ck_assert_str_eq (pb.transaction_id, "18546f6171f67e29d1cb983322ad1329@1404214665");
    ck_assert_str_eq (pb.event, "install");
    ck_assert (!pb.has_revenue);
    ck_assert_str_eq (pb.currency, "");
    ck_assert_int_eq (pb.time, 1404214665);
    ck_assert_int_eq (pb.click_time, 1404214600);
    ck_assert_str_eq (pb.country, "DE");
    ck_assert_str_eq (pb.platform, "android");
    ck_assert (!pb.rejected);
    ck_assert_ptr_null (pb.reason);
    gkx_postback_clear (&pb);
}
END_TEST

START_TEST (test_round_trip_adjust_event)
{
    static const s_sub_t subs[] = {
        {"{label}", "ck-adj-2"},
        {"{adid}", "18546f6171f67e29d1cb983322ad1329"},
        {"{event_name}", "purchase_100_coins"},
        {"{activity_kind}", "event"},
        {"{created_at}", "1716198088"},
        /* Adjust drops a placeholder it has no value for */
        {"&click_time={click_time}", ""},
        {"{revenue_usd}", "0.99"},
        {"{country}", "us"},
        {"{os_name}", "ios"},
        {"{rejection_reason}", ""},
    };
    gkx_postback_t pb;
    s_round_trip (&pb, "adjust", subs, S_COUNT (subs));
    ck_assert_str_eq (pb.event, "purchase_100_coins");
    ck_assert_str_eq (pb.transaction_id, "18546f6171f67e29d1cb983322ad1329@1716198088");
    ck_assert (pb.has_revenue);
    ck_assert_int_eq (pb.revenue_micros, 990000);
    ck_assert_str_eq (pb.currency, "USD");
    ck_assert_int_eq (pb.time, T0);
    ck_assert_int_eq (pb.click_time, 0);
    ck_assert_str_eq (pb.country, "US");
    ck_assert_str_eq (pb.platform, "ios");
    ck_assert (!pb.rejected);
    gkx_postback_clear (&pb);
}
END_TEST

START_TEST (test_round_trip_branch)
{
    static const s_sub_t subs[] = {
        {"${(last_attributed_touch_data_tilde_click_id)!}", "ck-br-9"},
        {"${(id)!}", "1234567890123456789"},
        {"${(name)!}", "purchase"},
        {"${(event_timestamp)!}", "1716198088123"},
        {"${(last_attributed_touch_timestamp)!}", "1716196288999"},
        {"${(event_data_revenue)!}", "12.5"},
        {"${(event_data_currency)!}", "USD"},
        {"${(user_data_geo_country_code)!}", "US"},
        {"${(user_data_os)!}", "IOS"},
    };
    gkx_postback_t pb;
    s_round_trip (&pb, "branch", subs, S_COUNT (subs));
    ck_assert_str_eq (pb.click_id, "ck-br-9");
    ck_assert_str_eq (pb.transaction_id, "1234567890123456789");
    ck_assert_str_eq (pb.event, "purchase");
    ck_assert (pb.has_revenue);
    ck_assert_int_eq (pb.revenue_micros, 12500000);
    ck_assert_str_eq (pb.currency, "USD");
    ck_assert_int_eq (pb.time, T0);
    ck_assert_int_eq (pb.click_time, T0 - 1800);
    ck_assert_str_eq (pb.country, "US");
    ck_assert_str_eq (pb.platform, "ios");
    ck_assert (!pb.rejected);
    gkx_postback_clear (&pb);
}
END_TEST

START_TEST (test_round_trip_singular)
{
    static const s_sub_t subs[] = {
        {"{cl?NETWORK_NAME}", "ck-sg-1"},
        {"{CLID}", "a1b2c3d4"},
        {"{EVTNAME}", "purchase"},
        {"{UTCM}", "1716198088"},
        {"{click_utc_timestamp}", "1716196288"},
        {"{AMOUNT}", "3.5"},
    };
    gkx_postback_t pb;
    s_round_trip (&pb, "singular", subs, S_COUNT (subs));
    ck_assert_str_eq (pb.click_id, "ck-sg-1");
    ck_assert_str_eq (pb.transaction_id, "a1b2c3d4@1716198088");
    ck_assert_str_eq (pb.event, "purchase");
    ck_assert (pb.has_revenue);
    ck_assert_int_eq (pb.revenue_micros, 3500000);
    ck_assert_str_eq (pb.currency, "");
    ck_assert_int_eq (pb.time, T0);
    ck_assert_int_eq (pb.click_time, T0 - 1800);
    ck_assert_str_eq (pb.country, "");
    ck_assert_ptr_null (pb.platform);
    gkx_postback_clear (&pb);

    /* The install postback carries no event name. */
    static const s_sub_t install[] = {
        {"{cl?NETWORK_NAME}", "ck-sg-2"},
        {"{CLID}", "e5f6"},
        {"{EVTNAME}", ""},
        {"{UTCM}", "1716198088"},
        {"{click_utc_timestamp}", ""},
        {"{AMOUNT}", ""},
    };
    s_round_trip (&pb, "singular", install, S_COUNT (install));
    ck_assert_str_eq (pb.event, "install");
    ck_assert_str_eq (pb.transaction_id, "e5f6@1716198088");
    ck_assert (!pb.has_revenue);
    gkx_postback_clear (&pb);
}
END_TEST

START_TEST (test_round_trip_kochava)
{
    static const s_sub_t subs[] = {
        {"{click_id}", "ck-ko-1"},
        {"{kochava_device_id}", "KA12345"},
        {"{event_name}", "_install"},
        {"{click_date}", "2024-05-20%2009:11:28"},
        {"{revenue}", ""},
        {"{currency}", ""},
        {"{country}", "us"},
        {"{platform}", "android"},
    };
    gkx_postback_t pb;
    s_round_trip (&pb, "kochava", subs, S_COUNT (subs));
    ck_assert_str_eq (pb.click_id, "ck-ko-1");
    ck_assert_str_eq (pb.transaction_id, "KA12345");
    ck_assert_str_eq (pb.event, "install");
    ck_assert (!pb.has_revenue);
    ck_assert_int_eq (pb.time, 0);
    ck_assert_int_eq (pb.click_time, T0 - 1800);
    ck_assert_str_eq (pb.country, "US");
    ck_assert_str_eq (pb.platform, "android");
    gkx_postback_clear (&pb);

    static const s_sub_t purchase[] = {
        {"{click_id}", "ck-ko-2"},
        {"{kochava_device_id}", "KA12345"},
        {"{event_name}", "Purchase"},
        /* a macro name Kochava does not know comes back unreplaced */
        {"{click_date}", "(click_date)"},
        {"{revenue}", "9.99"},
        {"{currency}", "gbp"},
        {"{country}", "GB"},
        {"{platform}", "ios"},
    };
    s_round_trip (&pb, "kochava", purchase, S_COUNT (purchase));
    ck_assert_str_eq (pb.event, "Purchase");
    ck_assert_int_eq (pb.revenue_micros, 9990000);
    ck_assert_str_eq (pb.currency, "GBP");
    ck_assert_int_eq (pb.click_time, 0);
    ck_assert_uint_eq (pb.n_unreplaced, 1);
    gkx_postback_clear (&pb);
}
END_TEST

START_TEST (test_round_trip_generic)
{
    static const s_sub_t subs[] = {
        {"{click_id}", "ck%2Bplus"},
        {"{txid}", "order-991"},
        {"{event}", "purchase"},
        {"{time}", "2024-05-20T09%3A41%3A28Z"},
        {"{click_time}", "1716196288"},
        {"{revenue}", "20.00"},
        {"{currency}", "usd"},
        {"{payout}", "1.500000"},
        {"{country}", "fr"},
        {"{platform}", "web"},
        {"{sub1}", "a=b"},
        {"{sub2}", "x+y"},
        {"{sub3}", "3"},
        {"{sub4}", "4"},
        {"{sub5}", "5"},
        {"{rejected}", "0"},
        {"{reason}", ""},
    };
    gkx_postback_t pb;
    s_round_trip (&pb, "generic", subs, S_COUNT (subs));
    ck_assert_str_eq (pb.mmp, "generic");
    ck_assert_str_eq (pb.click_id, "ck+plus");
    ck_assert_str_eq (pb.transaction_id, "order-991");
    ck_assert_str_eq (pb.event, "purchase");
    ck_assert (pb.has_revenue);
    ck_assert_int_eq (pb.revenue_micros, 20000000);
    ck_assert_str_eq (pb.currency, "USD");
    ck_assert (pb.has_payout);
    ck_assert_int_eq (pb.payout_micros, 1500000);
    ck_assert_int_eq (pb.time, T0);
    ck_assert_int_eq (pb.click_time, T0 - 1800);
    ck_assert_str_eq (pb.country, "FR");
    ck_assert_str_eq (pb.platform, "web");
    ck_assert_str_eq (pb.sub[0], "a=b");
    ck_assert_str_eq (pb.sub[1], "x y");
    ck_assert_str_eq (pb.sub[2], "3");
    ck_assert_str_eq (pb.sub[3], "4");
    ck_assert_str_eq (pb.sub[4], "5");
    ck_assert (!pb.rejected);
    ck_assert_ptr_null (pb.reason);
    ck_assert_uint_eq (pb.n_params, 19);
    ck_assert_uint_eq (pb.n_unknown, 0);
    gkx_postback_clear (&pb);
}
END_TEST

/* One refused query. */
typedef struct {
    /* the template */
    const char *mmp;
    /* the query string */
    const char *query;
    /* the code and errbuf expected */
    int code;
    const char *message;
} s_case_t;

/* Every rule of gkx_postback_parse that a short literal query can break. */
static const s_case_t s_cases[] = {
    {"tune", G, GKX_ENOTFOUND,
     "unknown MMP \"tune\" (known: appsflyer, adjust, branch, singular, kochava, generic)"},
    /* short id and token */
    {"generic", "t=tok1&click_id=c1&txid=tx1&event=purchase", GKX_EINVAL,
     "missing parameter \"p\""},
    {"generic", "p=pid1&click_id=c1&txid=tx1&event=purchase", GKX_EINVAL,
     "missing parameter \"t\""},
    {"generic", "p=a%20b&t=tok1&click_id=c1&txid=tx1&event=e", GKX_EINVAL,
     "parameter \"p\": \"a b\" is not 1 to 128 of A-Z a-z 0-9 - . _ ~"},
    {"generic", "p=&t=tok1&click_id=c1&txid=tx1&event=e", GKX_EINVAL,
     "parameter \"p\": \"\" is not 1 to 128 of A-Z a-z 0-9 - . _ ~"},
    {"generic", "p=pid1&t=sec%2Fret&click_id=c1&txid=tx1&event=e", GKX_EINVAL,
     "parameter \"t\": not 1 to 128 of A-Z a-z 0-9 - . _ ~"},
    /* required fields */
    {"appsflyer", "p=pid1&t=tok1&appsflyer_id=af1", GKX_EINVAL,
     "missing parameter \"clickid\""},
    {"appsflyer", "p=pid1&t=tok1&clickid=&appsflyer_id=af1", GKX_EINVAL,
     "parameter \"clickid\" is empty"},
    {"appsflyer", "p=pid1&t=tok1&clickid={clickid}&appsflyer_id=af1", GKX_EINVAL,
     "parameter \"clickid\": macro \"{clickid}\" was not replaced"},
    {"singular", "p=pid1&t=tok1&clickid={cl?NETWORK_NAME}&singular_click_id=x", GKX_EINVAL,
     "parameter \"clickid\": macro \"{cl?NETWORK_NAME}\" was not replaced"},
    {"branch", "p=pid1&t=tok1&click_id=${(x)!}&event_id=1&event=install", GKX_EINVAL,
     "parameter \"click_id\": macro \"${(x)!}\" was not replaced"},
    {"appsflyer", "p=pid1&t=tok1&clickid=c1", GKX_EINVAL, "missing parameter \"appsflyer_id\""},
    {"appsflyer", "p=pid1&t=tok1&clickid=c1&appsflyer_id=(appsflyer-id)", GKX_EINVAL,
     "parameter \"appsflyer_id\": macro \"(appsflyer-id)\" was not replaced"},
    {"adjust", "p=pid1&t=tok1&adid=ad1&activity_kind=install", GKX_EINVAL,
     "missing parameter \"label\""},
    {"generic", "p=pid1&t=tok1&click_id=c1&txid=tx1", GKX_EINVAL, "missing parameter \"event\""},
    {"generic", "p=pid1&t=tok1&click_id=c1&txid=tx1&event=", GKX_EINVAL,
     "parameter \"event\" is empty"},
    {"branch", "p=pid1&t=tok1&click_id=c1&event_id=1", GKX_EINVAL,
     "missing parameter \"event\""},
    {"kochava", "p=pid1&t=tok1&click_id=c1&kochava_device_id=k1", GKX_EINVAL,
     "missing parameter \"event_name\""},
    {"adjust", AD, GKX_EINVAL, "missing parameter \"event_name\""},
    {"adjust", AD "&activity_kind=event", GKX_EINVAL, "missing parameter \"event_name\""},
    {"appsflyer", AF "&event_name={event_name}", GKX_EINVAL,
     "parameter \"event_name\": macro \"{event_name}\" was not replaced"},
    /* event names and activity kinds */
    {"generic", "p=pid1&t=tok1&click_id=c1&txid=tx1&event=Sign%20Up", GKX_EINVAL,
     "parameter \"event\": \"Sign Up\" is not an event name (1 to 64 of A-Z a-z 0-9 _ . : -)"},
    {"generic", "p=pid1&t=tok1&click_id=c1&txid=tx1&event=purchase%2Fbig", GKX_EINVAL,
     "parameter \"event\": \"purchase/big\" is not an event name"
     " (1 to 64 of A-Z a-z 0-9 _ . : -)"},
    {"adjust", AD "&activity_kind=rejected_", GKX_EINVAL,
     "parameter \"activity_kind\": \"rejected_\" is not an activity kind"},
    {"adjust", AD "&activity_kind=re%20install", GKX_EINVAL,
     "parameter \"activity_kind\": \"re install\" is not an activity kind"},
    /* percent-encoding, control characters, UTF-8 */
    {"generic", "p=pid1&t=tok1&click_id=c%zz1&txid=tx1&event=e", GKX_EINVAL,
     "parameter \"click_id\": bad percent-encoding \"%zz\""},
    {"generic", "p=pid1&t=tok1&click_id=c%4&txid=tx1&event=e", GKX_EINVAL,
     "parameter \"click_id\": truncated percent-encoding \"%4\""},
    {"generic", "p=pid1&t=tok1&click_id=c1&txid=tx1&event=e%", GKX_EINVAL,
     "parameter \"event\": truncated percent-encoding \"%\""},
    {"generic", "p=pid1&t=tok1&click_id=c1&txid=tx1&event=e%4", GKX_EINVAL,
     "parameter \"event\": truncated percent-encoding \"%4\""},
    {"generic", "p=pid1&t=tok1&click_id=c%001&txid=tx1&event=e", GKX_EINVAL,
     "parameter \"click_id\": %00 (NUL) is not allowed"},
    {"generic", "p=pid1&t=tok1&click_id=c%0A1&txid=tx1&event=e", GKX_EINVAL,
     "parameter \"click_id\": control character U+000A is not allowed"},
    {"generic", "p=pid1&t=tok1&click_id=c\t1&txid=tx1&event=e", GKX_EINVAL,
     "parameter \"click_id\": control character U+0009 is not allowed"},
    {"generic", "p=pid1&t=tok1&click_id=c%7f1&txid=tx1&event=e", GKX_EINVAL,
     "parameter \"click_id\": control character U+007F is not allowed"},
    {"generic", "p=pid1&t=tok1&click_id=c%C3%28&txid=tx1&event=e", GKX_EUTF8,
     "parameter \"click_id\": not valid UTF-8"},
    {"generic", "p=pid1&t=tok1&click_id=%C0%AF&txid=tx1&event=e", GKX_EUTF8,
     "parameter \"click_id\": not valid UTF-8"},
    {"generic", "p=pid1&t=tok1&click_id=%ED%A0%80&txid=tx1&event=e", GKX_EUTF8,
     "parameter \"click_id\": not valid UTF-8"},
    {"generic", "p=pid1&t=tok1&click_id=a+b&txid=tx1&event=e", GKX_EINVAL,
     "parameter \"click_id\": byte 1 is not printable ASCII without spaces"},
    {"appsflyer", "p=pid1&t=tok1&clickid=%C3%A9&appsflyer_id=af1", GKX_EINVAL,
     "parameter \"clickid\": byte 0 is not printable ASCII without spaces"},
    {"generic", "p=pid1&t=tok1&cl%zzick=1&click_id=c1&txid=tx1&event=e", GKX_EINVAL,
     "parameter #3 name: bad percent-encoding \"%zz\""},
    {"generic", "p=pid1&t=tok1&x%0Ay=1&click_id=c1&txid=tx1&event=e", GKX_EINVAL,
     "parameter #3 name: control character U+000A is not allowed"},
    {"generic", "p=pid1&t=tok1&%FF=1&click_id=c1&txid=tx1&event=e", GKX_EUTF8,
     "parameter #3 name: not valid UTF-8"},
    {"generic", "p=pid1&t=tok1&=x&click_id=c1&txid=tx1&event=e", GKX_EINVAL,
     "parameter #3: empty name"},
    /* duplicates */
    {"generic", G "&click_id=c2", GKX_EINVAL, "duplicate parameter \"click_id\""},
    {"generic", G "&foo=1&foo=2", GKX_EINVAL, "duplicate parameter \"foo\""},
    {"generic", G "&click%5Fid=c2", GKX_EINVAL, "duplicate parameter \"click_id\""},
    {"generic", "p=pid1&p=pid2&t=tok1", GKX_EINVAL, "duplicate parameter \"p\""},
    /* revenue and payout */
    {"generic", G "&revenue=-1.00", GKX_EINVAL,
     "parameter \"revenue\": negative amount \"-1.00\" refused"},
    {"generic", G "&revenue=1.1234567", GKX_EINVAL,
     "parameter \"revenue\": \"1.1234567\" is not a decimal with up to 6 decimals"},
    {"generic", G "&revenue=1%2C5", GKX_EINVAL,
     "parameter \"revenue\": \"1,5\" is not a decimal with up to 6 decimals"},
    {"generic", G "&revenue=.5", GKX_EINVAL,
     "parameter \"revenue\": \".5\" is not a decimal with up to 6 decimals"},
    {"generic", G "&revenue=1.", GKX_EINVAL,
     "parameter \"revenue\": \"1.\" is not a decimal with up to 6 decimals"},
    {"generic", G "&revenue=1e3", GKX_EINVAL,
     "parameter \"revenue\": \"1e3\" is not a decimal with up to 6 decimals"},
    {"generic", G "&revenue=%2B1", GKX_EINVAL,
     "parameter \"revenue\": \"+1\" is not a decimal with up to 6 decimals"},
    {"generic", G "&revenue=+1", GKX_EINVAL,
     "parameter \"revenue\": \" 1\" is not a decimal with up to 6 decimals"},
    {"generic", G "&revenue=ten", GKX_EINVAL,
     "parameter \"revenue\": \"ten\" is not a decimal with up to 6 decimals"},
    {"generic", G "&revenue=9999999999999", GKX_EINVAL,
     "parameter \"revenue\": \"9999999999999\" is not a decimal with up to 6 decimals"},
    {"generic", G "&revenue=1000000000.000001", GKX_EINVAL,
     "parameter \"revenue\": \"1000000000.000001\" exceeds 1000000000"},
    {"appsflyer", AF "&event_revenue=-0.5", GKX_EINVAL,
     "parameter \"event_revenue\": negative amount \"-0.5\" refused"},
    {"adjust", AD "&activity_kind=install&revenue_usd=1.0845312345", GKX_EINVAL,
     "parameter \"revenue_usd\": \"1.0845312345\" is not a decimal with up to 6 decimals"},
    {"generic", G "&payout=-2", GKX_EINVAL, "parameter \"payout\": negative amount \"-2\" refused"},
    {"generic", G "&payout=2.5x", GKX_EINVAL,
     "parameter \"payout\": \"2.5x\" is not a decimal with up to 6 decimals"},
    /* currency and country */
    {"generic", G "&revenue=1&currency=US", GKX_EINVAL,
     "parameter \"currency\": \"US\" is not a three-letter currency code"},
    {"generic", G "&revenue=1&currency=USDX", GKX_EINVAL,
     "parameter \"currency\": \"USDX\" is not a three-letter currency code"},
    {"generic", G "&revenue=1&currency=U1D", GKX_EINVAL,
     "parameter \"currency\": \"U1D\" is not a three-letter currency code"},
    {"appsflyer", AF "&event_revenue_currency=%E2%82%AC", GKX_EINVAL,
     "parameter \"event_revenue_currency\": \"\xe2\x82\xac\" is not a three-letter currency"
     " code"},
    {"generic", G "&country=USA", GKX_EINVAL,
     "parameter \"country\": \"USA\" is not a two-letter country code"},
    {"generic", G "&country=U5", GKX_EINVAL,
     "parameter \"country\": \"U5\" is not a two-letter country code"},
    {"appsflyer", AF "&country_code=--", GKX_EINVAL,
     "parameter \"country_code\": \"--\" is not a two-letter country code"},
    /* times */
    {"generic", G "&time=yesterday", GKX_EINVAL,
     "parameter \"time\": \"yesterday\" is not a Unix time or an ISO 8601 time"},
    {"generic", G "&time=-5", GKX_EINVAL,
     "parameter \"time\": \"-5\" is not a Unix time or an ISO 8601 time"},
    {"generic", G "&time=1716198088.", GKX_EINVAL,
     "parameter \"time\": \"1716198088.\" is not a Unix time or an ISO 8601 time"},
    {"generic", G "&time=12345678901234567", GKX_EINVAL,
     "parameter \"time\": \"12345678901234567\" is not a Unix time or an ISO 8601 time"},
    {"generic", G "&time=2024-13-01T00:00:00Z", GKX_EINVAL,
     "parameter \"time\": \"2024-13-01T00:00:00Z\" is not a Unix time or an ISO 8601 time"},
    {"generic", G "&time=2024-02-30T00:00:00Z", GKX_EINVAL,
     "parameter \"time\": \"2024-02-30T00:00:00Z\" is not a Unix time or an ISO 8601 time"},
    {"generic", G "&time=2023-02-29T00:00:00Z", GKX_EINVAL,
     "parameter \"time\": \"2023-02-29T00:00:00Z\" is not a Unix time or an ISO 8601 time"},
    {"generic", G "&time=2024-05-20T24:00:00Z", GKX_EINVAL,
     "parameter \"time\": \"2024-05-20T24:00:00Z\" is not a Unix time or an ISO 8601 time"},
    {"generic", G "&time=2024-05-20T09:41:28+02:00", GKX_EINVAL,
     "parameter \"time\": \"2024-05-20T09:41:28 02:00\" is not a Unix time or an ISO 8601"
     " time"},
    {"generic", G "&time=2024-05-20T09:41:28Zjunk", GKX_EINVAL,
     "parameter \"time\": \"2024-05-20T09:41:28Zjunk\" is not a Unix time or an ISO 8601"
     " time"},
    {"generic", G "&time=2024-05-20T09:41:28.", GKX_EINVAL,
     "parameter \"time\": \"2024-05-20T09:41:28.\" is not a Unix time or an ISO 8601 time"},
    {"generic", G "&time=2024-05-20T09:41:28%2B2", GKX_EINVAL,
     "parameter \"time\": \"2024-05-20T09:41:28+2\" is not a Unix time or an ISO 8601 time"},
    {"generic", G "&time=2024-05-20", GKX_EINVAL,
     "parameter \"time\": \"2024-05-20\" is not a Unix time or an ISO 8601 time"},
    {"generic", G "&time=99", GKX_EINVAL,
     "parameter \"time\": \"99\" is outside 2000-01-01 to 9999-12-31"},
    {"generic", G "&time=1999-12-31T23:59:59Z", GKX_EINVAL,
     "parameter \"time\": \"1999-12-31T23:59:59Z\" is outside 2000-01-01 to 9999-12-31"},
    {"appsflyer", AF "&event_time=2024-05-20%2009:41:28&install_unix_ts=now", GKX_EINVAL,
     "parameter \"install_unix_ts\": \"now\" is not a Unix time or an ISO 8601 time"},
    /* the attributed click's time follows the same rules */
    {"generic", G "&click_time=yesterday", GKX_EINVAL,
     "parameter \"click_time\": \"yesterday\" is not a Unix time or an ISO 8601 time"},
    {"generic", G "&time=1716198088&click_time=99", GKX_EINVAL,
     "parameter \"click_time\": \"99\" is outside 2000-01-01 to 9999-12-31"},
    {"appsflyer", AF "&attributed_touch_time=2024-02-30%2000:00:00", GKX_EINVAL,
     "parameter \"attributed_touch_time\": \"2024-02-30 00:00:00\" is not a Unix time or an "
     "ISO 8601 time"},
    {"branch", "p=pid1&t=tok1&click_id=c1&event_id=1&event=install&click_timestamp=-1",
     GKX_EINVAL, "parameter \"click_timestamp\": \"-1\" is not a Unix time or an ISO 8601 time"},
    /* rejection flag */
    {"generic", G "&rejected=maybe", GKX_EINVAL,
     "parameter \"rejected\": \"maybe\" is not 1, 0, true, false, yes or no"},
    {"appsflyer", AF "&is_rejected=2", GKX_EINVAL,
     "parameter \"is_rejected\": \"2\" is not 1, 0, true, false, yes or no"},
};

START_TEST (test_parse_rejects)
{
    const s_case_t *c = &s_cases[_i];
    char errbuf[GKX_ERRBUF_BYTES] = "";
    gkx_postback_t pb;
    gkx_postback_t before;
    memset (&pb, 0xab, sizeof pb);
    memcpy (&before, &pb, sizeof pb);
    int rc = gkx_postback_parse (&pb, c->mmp, c->query, errbuf);
    ck_assert_msg (rc == c->code, "%s: got %s (%s), want %s", c->query, gkx_errname (rc), errbuf,
                   gkx_errname (c->code));
    ck_assert_str_eq (errbuf, c->message);
    /* The output is written only on success. */
    ck_assert (memcmp (&pb, &before, sizeof pb) == 0);
}
END_TEST

START_TEST (test_token_never_in_messages)
{
    char errbuf[GKX_ERRBUF_BYTES] = "";
    gkx_postback_t pb;
    int rc = gkx_postback_parse (&pb, "generic", "p=pid1&t=s3cr3t%21&click_id=c1", errbuf);
    ck_assert_int_eq (rc, GKX_EINVAL);
    ck_assert_ptr_null (strstr (errbuf, "s3cr3t"));
    char *url = gkx_postback_url ("generic", BASE, PID, "s3cr3t!", errbuf);
    ck_assert_ptr_null (url);
    ck_assert_ptr_null (strstr (errbuf, "s3cr3t"));
}
END_TEST

START_TEST (test_percent_decoding)
{
    gkx_postback_t pb;
    s_parse_ok (&pb, "generic",
                "p=pid1&t=tok1&click_id=a%2Bb%2bc&txid=%C3%A9t%C3%A9&event=buy"
                "&sub1=%7Bnot%20a%20macro&sub2=x%3Dy%26z&sub3=%25&sub4=a+b%20c");
    ck_assert_str_eq (pb.click_id, "a+b+c");
    ck_assert_str_eq (pb.transaction_id, "\xc3\xa9t\xc3\xa9");
    ck_assert_str_eq (pb.sub[0], "{not a macro");
    ck_assert_str_eq (pb.sub[1], "x=y&z");
    ck_assert_str_eq (pb.sub[2], "%");
    ck_assert_str_eq (pb.sub[3], "a b c");
    gkx_postback_clear (&pb);

    /* Encoded names, empty pieces, a piece without "=", "=" in a value. */
    s_parse_ok (&pb, "generic",
                "&&p=pid1&t=tok1&&click%5Fid=c1&txid=tx1&event=e&flag&sub1=a=b&");
    ck_assert_str_eq (pb.click_id, "c1");
    ck_assert_str_eq (pb.sub[0], "a=b");
    ck_assert_uint_eq (pb.n_params, 7);
    ck_assert_uint_eq (pb.n_unknown, 1);
    gkx_postback_clear (&pb);
}
END_TEST

START_TEST (test_unknown_and_unreplaced_are_counted)
{
    gkx_postback_t pb;
    s_parse_ok (&pb, "appsflyer",
                AF "&idfa=ABC&af_siteid=site7&event_revenue={event_revenue}"
                   "&country_code=(country-code)&platform=${(os)!}&af_sub1=");
    ck_assert_uint_eq (pb.n_params, 10);
    ck_assert_uint_eq (pb.n_unknown, 2);
    ck_assert_uint_eq (pb.n_unreplaced, 3);
    ck_assert (!pb.has_revenue);
    ck_assert_str_eq (pb.country, "");
    ck_assert_ptr_null (pb.platform);
    ck_assert_ptr_null (pb.sub[0]);
    ck_assert_str_eq (pb.event, "install");
    gkx_postback_clear (&pb);
}
END_TEST

/* A generic query of exactly len bytes: G, then "&pad=" and "x"s. */
static char *
s_padded_query (size_t len)
{
    char *q = gkx_zalloc (len + 1);
    size_t head = strlen (G "&pad=");
    memcpy (q, G "&pad=", head);
    memset (q + head, 'x', len - head);
    return q;
}

START_TEST (test_size_limits)
{
    char errbuf[GKX_ERRBUF_BYTES] = "";
    gkx_postback_t pb;

    /* The query: 8192 bytes pass, 8193 do not; the padding is split into
       parameters so that no value reaches its own limit. */
    char *q = gkx_zalloc (GKX_POSTBACK_QUERY_MAX + 2);
    size_t n = strlen (G);
    memcpy (q, G, n);
    for (int i = 0; GKX_POSTBACK_QUERY_MAX - n > 100; i++) {
        n += (size_t) snprintf (q + n, 8, "&x%03d=", i);
        memset (q + n, 'v', 60);
        n += 60;
    }
    memcpy (q + n, "&y=", 3);
    n += 3;
    memset (q + n, 'v', GKX_POSTBACK_QUERY_MAX - n);
    ck_assert_uint_eq (strlen (q), GKX_POSTBACK_QUERY_MAX);
    s_parse_ok (&pb, "generic", q);
    gkx_postback_clear (&pb);
    q[GKX_POSTBACK_QUERY_MAX] = 'v';
    ck_assert_int_eq (gkx_postback_parse (&pb, "generic", q, errbuf), GKX_ETOOBIG);
    ck_assert_str_eq (errbuf, "query: longer than 8192 bytes");
    gkx_free (q);

    /* A value: 1024 bytes pass, 1025 do not. */
    q = s_padded_query (strlen (G "&pad=") + GKX_POSTBACK_VALUE_MAX);
    s_parse_ok (&pb, "generic", q);
    gkx_postback_clear (&pb);
    gkx_free (q);
    q = s_padded_query (strlen (G "&pad=") + GKX_POSTBACK_VALUE_MAX + 1);
    ck_assert_int_eq (gkx_postback_parse (&pb, "generic", q, errbuf), GKX_ETOOBIG);
    ck_assert_str_eq (errbuf, "parameter \"pad\": longer than 1024 bytes");
    gkx_free (q);

    /* A name of 1025 bytes. */
    q = gkx_zalloc (strlen (G) + 1 + GKX_POSTBACK_VALUE_MAX + 1 + 3);
    n = strlen (G);
    memcpy (q, G "&", n + 1);
    memset (q + n + 1, 'n', GKX_POSTBACK_VALUE_MAX + 1);
    memcpy (q + n + 2 + GKX_POSTBACK_VALUE_MAX, "=1", 2);
    ck_assert_int_eq (gkx_postback_parse (&pb, "generic", q, errbuf), GKX_ETOOBIG);
    ck_assert_str_eq (errbuf, "parameter #6 name: longer than 1024 bytes");
    gkx_free (q);

    /* 256 parameters pass, 257 do not. */
    q = gkx_zalloc (GKX_POSTBACK_QUERY_MAX);
    n = strlen (G);
    memcpy (q, G, n);
    for (int i = 5; i < GKX_POSTBACK_PARAMS_MAX; i++) {
        n += (size_t) snprintf (q + n, GKX_POSTBACK_QUERY_MAX - n, "&k%d", i);
    }
    s_parse_ok (&pb, "generic", q);
    ck_assert_uint_eq (pb.n_params, GKX_POSTBACK_PARAMS_MAX);
    ck_assert_uint_eq (pb.n_unknown, GKX_POSTBACK_PARAMS_MAX - 5);
    gkx_postback_clear (&pb);
    memcpy (q + n, "&one", 5);
    ck_assert_int_eq (gkx_postback_parse (&pb, "generic", q, errbuf), GKX_ETOOBIG);
    ck_assert_str_eq (errbuf, "query: more than 256 parameters");
    gkx_free (q);
}
END_TEST

/* Parses G with one more parameter NAME=VALUE of len "x"s; returns the code. */
static int
s_parse_long (const char *mmp, const char *prefix, const char *name, size_t len, char *errbuf)
{
    size_t head = strlen (prefix) + 1 + strlen (name) + 1;
    char *q = gkx_zalloc (head + len + 1);
    snprintf (q, head + 1, "%s&%s=", prefix, name);
    memset (q + head, 'x', len);
    gkx_postback_t pb;
    int rc = gkx_postback_parse (&pb, mmp, q, errbuf);
    if (rc == GKX_OK) {
        gkx_postback_clear (&pb);
    }
    gkx_free (q);
    return rc;
}

START_TEST (test_field_limits)
{
    char errbuf[GKX_ERRBUF_BYTES] = "";
    const char *base = "p=pid1&t=tok1&txid=tx1&event=e";
    ck_assert_int_eq (s_parse_long ("generic", base, "click_id", 128, errbuf), GKX_OK);
    ck_assert_int_eq (s_parse_long ("generic", base, "click_id", 129, errbuf), GKX_ETOOBIG);
    ck_assert_str_eq (errbuf, "parameter \"click_id\": longer than 128 bytes");

    base = "p=pid1&t=tok1&click_id=c1&event=e";
    ck_assert_int_eq (s_parse_long ("generic", base, "txid", 256, errbuf), GKX_OK);
    ck_assert_int_eq (s_parse_long ("generic", base, "txid", 257, errbuf), GKX_ETOOBIG);
    ck_assert_str_eq (errbuf, "parameter \"txid\": longer than 256 bytes");

    ck_assert_int_eq (s_parse_long ("generic", G, "sub3", 256, errbuf), GKX_OK);
    ck_assert_int_eq (s_parse_long ("generic", G, "sub3", 257, errbuf), GKX_ETOOBIG);
    ck_assert_str_eq (errbuf, "parameter \"sub3\": longer than 256 bytes");

    ck_assert_int_eq (s_parse_long ("generic", G, "reason", 128, errbuf), GKX_OK);
    ck_assert_int_eq (s_parse_long ("generic", G, "reason", 129, errbuf), GKX_ETOOBIG);
    ck_assert_str_eq (errbuf, "parameter \"reason\": longer than 128 bytes");

    /* AppsFlyer's reason and its value share the limit: "bots" ":" 123. */
    ck_assert_int_eq (
        s_parse_long ("appsflyer", AF "&reject_reason=bots", "reject_reason_value", 123, errbuf),
        GKX_OK);
    ck_assert_int_eq (
        s_parse_long ("appsflyer", AF "&reject_reason=bots", "reject_reason_value", 124, errbuf),
        GKX_ETOOBIG);
    ck_assert_str_eq (errbuf, "parameter \"reject_reason_value\": longer than 128 bytes");

    /* Adjust's transaction id with its "@created_at" qualifier: 245 + 1 + 10
       bytes pass, 246 + 1 + 10 do not. */
    char prefix[512];
    for (size_t len = 245; len <= 246; len++) {
        int n = snprintf (prefix, sizeof prefix, "p=pid1&t=tok1&label=c1&activity_kind=install"
                                                 "&created_at=1716198088&adid=");
        memset (prefix + n, 'a', len);
        prefix[(size_t) n + len] = '\0';
        ck_assert_int_eq (s_parse_long ("adjust", prefix, "x", 1, errbuf),
                          len == 245 ? GKX_OK : GKX_ETOOBIG);
    }
    ck_assert_str_eq (errbuf, "parameters \"adid\" and \"created_at\": transaction id longer "
                              "than 256 bytes");

    /* Event names: 64 pass, 65 do not. */
    base = "p=pid1&t=tok1&click_id=c1&txid=tx1";
    ck_assert_int_eq (s_parse_long ("generic", base, "event", 64, errbuf), GKX_OK);
    ck_assert_int_eq (s_parse_long ("generic", base, "event", 65, errbuf), GKX_EINVAL);
    ck_assert_str_eq (errbuf, "parameter \"event\": \"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
                              "xxxx\" is not an event name (1 to 64 of A-Z a-z 0-9 _ . : -)");
}
END_TEST

/* One accepted time and the Unix seconds it means. */
static const struct {
    /* the value sent, percent-encoded */
    const char *text;
    /* the Unix seconds it means */
    int64_t secs;
} s_times[] = {
    {"1716198088", T0},
    {"1716198088123", T0},
    {"1716198088999", T0},
    {"1716198088.75", T0},
    {"946684800", 946684800},
    {"2024-05-20T09:41:28Z", T0},
    {"2024-05-20T09:41:28", T0},
    {"2024-05-20T11:41:28%2B02:00", T0},
    {"2024-05-20T11:41:28%2B0200", T0},
    {"2024-05-20T04:41:28-05:00", T0},
    {"2024-05-20T04:41:28-0500", T0},
    {"2024-05-20%2009:41:28.123", T0},
    {"2024-05-20+09:41:28", T0},
    {"2024-05-20T09:41:28.123456789Z", T0},
    {"2024-02-29T00:00:00Z", 1709164800},
    {"9999-12-31T23:59:59Z", 253402300799LL},
};

START_TEST (test_time_formats)
{
    char query[256];
    snprintf (query, sizeof query, G "&time=%s", s_times[_i].text);
    gkx_postback_t pb;
    s_parse_ok (&pb, "generic", query);
    ck_assert_int_eq (pb.time, s_times[_i].secs);
    gkx_postback_clear (&pb);
}
END_TEST

START_TEST (test_time_prefers_event_time)
{
    gkx_postback_t pb;
    s_parse_ok (&pb, "appsflyer",
                AF "&event_time=2024-05-20%2009:41:28&install_unix_ts=1404214665");
    ck_assert_int_eq (pb.time, T0);
    gkx_postback_clear (&pb);
    s_parse_ok (&pb, "appsflyer", AF "&event_time=&install_unix_ts=1404214665");
    ck_assert_int_eq (pb.time, 1404214665);
    gkx_postback_clear (&pb);
    s_parse_ok (&pb, "generic", G);
    ck_assert_int_eq (pb.time, 0);
    gkx_postback_clear (&pb);
}
END_TEST

START_TEST (test_click_time)
{
    gkx_postback_t pb;
    /* every time format of the event time */
    for (size_t i = 0; i < S_COUNT (s_times); i++) {
        char query[256];
        snprintf (query, sizeof query, G "&click_time=%s", s_times[i].text);
        s_parse_ok (&pb, "generic", query);
        ck_assert_int_eq (pb.click_time, s_times[i].secs);
        ck_assert_int_eq (pb.time, 0);
        gkx_postback_clear (&pb);
    }
    /* absent, empty or unreplaced: 0, the last one counted */
    s_parse_ok (&pb, "generic", G);
    ck_assert_int_eq (pb.click_time, 0);
    gkx_postback_clear (&pb);
    s_parse_ok (&pb, "generic", G "&click_time=");
    ck_assert_int_eq (pb.click_time, 0);
    ck_assert_uint_eq (pb.n_unreplaced, 0);
    gkx_postback_clear (&pb);
    s_parse_ok (&pb, "adjust", AD "&activity_kind=install&click_time={click_time}");
    ck_assert_int_eq (pb.click_time, 0);
    ck_assert_uint_eq (pb.n_unreplaced, 1);
    gkx_postback_clear (&pb);
    /* kept as sent even after the event time: the two clocks differ, and
       the conversion rules, not the parser, decide what that means */
    s_parse_ok (&pb, "generic", G "&time=1716198088&click_time=1716198100");
    ck_assert_int_eq (pb.time, T0);
    ck_assert_int_eq (pb.click_time, T0 + 12);
    gkx_postback_clear (&pb);
    /* it never stands in for the event time */
    s_parse_ok (&pb, "appsflyer", AF "&attributed_touch_time=1716196288");
    ck_assert_int_eq (pb.time, 0);
    ck_assert_int_eq (pb.click_time, T0 - 1800);
    gkx_postback_clear (&pb);
}
END_TEST

/* One platform value and the offer's word for it (NULL: absent). */
static const struct {
    /* the value sent, percent-encoded */
    const char *value;
    /* the platform word expected */
    const char *platform;
} s_platform_cases[] = {
    {"ios", "ios"},         {"iOS", "ios"},         {"IOS", "ios"},
    {"iPhone", "ios"},      {"iPadOS", "ios"},      {"iPhone%20OS", "ios"},
    {"android", "android"}, {"Android", "android"}, {"ANDROID", "android"},
    {"web", "web"},         {"Desktop", "web"},     {"browser", "web"},
    {"windows", "other"},   {"tvOS", "other"},      {"unknown", "other"},
    {"", NULL},             {"{platform}", NULL},   {"(platform)", NULL},
};

START_TEST (test_platform_mapping)
{
    char query[256];
    snprintf (query, sizeof query, G "&platform=%s", s_platform_cases[_i].value);
    gkx_postback_t pb;
    s_parse_ok (&pb, "generic", query);
    if (s_platform_cases[_i].platform) {
        ck_assert_str_eq (pb.platform, s_platform_cases[_i].platform);
    }
    else {
        ck_assert_ptr_null (pb.platform);
    }
    gkx_postback_clear (&pb);
}
END_TEST

START_TEST (test_amounts)
{
    static const struct {
        /* the decimal sent */
        const char *text;
        /* its micro-units */
        int64_t micros;
    } amounts[] = {
        {"0", 0},
        {"0.99", 990000},
        {"10", 10000000},
        {"1.123456", 1123456},
        {"007.5", 7500000},
        {"1000000000", 1000000000000000LL},
        {"1000000000.000000", 1000000000000000LL},
    };
    for (size_t i = 0; i < S_COUNT (amounts); i++) {
        char query[256];
        snprintf (query, sizeof query, G "&revenue=%s&payout=%s", amounts[i].text,
                  amounts[i].text);
        gkx_postback_t pb;
        s_parse_ok (&pb, "generic", query);
        ck_assert (pb.has_revenue);
        ck_assert_int_eq (pb.revenue_micros, amounts[i].micros);
        ck_assert (pb.has_payout);
        ck_assert_int_eq (pb.payout_micros, amounts[i].micros);
        /* No currency sent, none fixed: the currency stays unknown. */
        ck_assert_str_eq (pb.currency, "");
        gkx_postback_clear (&pb);
    }
}
END_TEST

START_TEST (test_rejected_appsflyer)
{
    gkx_postback_t pb;
    s_parse_ok (&pb, "appsflyer",
                AF "&is_rejected=1&reject_reason=site_blacklist&reject_reason_value=1123456");
    ck_assert (pb.rejected);
    ck_assert_str_eq (pb.reason, "site_blacklist:1123456");
    ck_assert_str_eq (pb.event, "install");
    ck_assert_uint_eq (pb.n_unknown, 0);
    gkx_postback_clear (&pb);

    /* The single-endpoint form: a reason without is_rejected. */
    s_parse_ok (&pb, "appsflyer", AF "&event_name=af_purchase&reject_reason=bots");
    ck_assert (pb.rejected);
    ck_assert_str_eq (pb.reason, "bots");
    ck_assert_str_eq (pb.event, "af_purchase");
    gkx_postback_clear (&pb);

    s_parse_ok (&pb, "appsflyer", AF "&is_rejected=true&reject_reason_value=12");
    ck_assert (pb.rejected);
    ck_assert_ptr_null (pb.reason);
    gkx_postback_clear (&pb);

    s_parse_ok (&pb, "appsflyer", AF "&is_rejected=0");
    ck_assert (!pb.rejected);
    ck_assert_ptr_null (pb.reason);
    gkx_postback_clear (&pb);
}
END_TEST

START_TEST (test_rejected_adjust)
{
    gkx_postback_t pb;
    s_parse_ok (&pb, "adjust",
                AD "&activity_kind=rejected_install&rejection_reason=anonymous_traffic"
                   "&created_at=1404214665");
    ck_assert (pb.rejected);
    ck_assert_str_eq (pb.event, "install");
    ck_assert_str_eq (pb.reason, "anonymous_traffic");
    ck_assert_str_eq (pb.transaction_id, "ad1@1404214665");
    gkx_postback_clear (&pb);

    /* Unavailable placeholders are dropped by Adjust: no reason at all. */
    s_parse_ok (&pb, "adjust", AD "&activity_kind=rejected_reattribution");
    ck_assert (pb.rejected);
    ck_assert_str_eq (pb.event, "reattribution");
    ck_assert_ptr_null (pb.reason);
    gkx_postback_clear (&pb);

    s_parse_ok (&pb, "adjust", AD "&activity_kind=reattribution");
    ck_assert (!pb.rejected);
    ck_assert_str_eq (pb.event, "reattribution");
    gkx_postback_clear (&pb);
}
END_TEST

START_TEST (test_rejected_generic_parameters)
{
    static const char *const mmps[] = {"generic", "branch", "singular", "kochava"};
    static const char *const queries[] = {
        G "&rejected=1&reason=fraud_score",
        "p=pid1&t=tok1&click_id=c1&event_id=1&event=install&rejected=yes&reason=fraud_score",
        "p=pid1&t=tok1&clickid=c1&singular_click_id=1&rejected=TRUE&reason=fraud_score",
        ("p=pid1&t=tok1&click_id=c1&kochava_device_id=1&event_name=_install&rejected=1"
         "&reason=fraud_score"),
    };
    for (size_t i = 0; i < S_COUNT (mmps); i++) {
        gkx_postback_t pb;
        s_parse_ok (&pb, mmps[i], queries[i]);
        ck_assert_msg (pb.rejected, "%s", mmps[i]);
        ck_assert_str_eq (pb.reason, "fraud_score");
        gkx_postback_clear (&pb);
    }
    gkx_postback_t pb;
    s_parse_ok (&pb, "generic", G "&reason=duplicate_device");
    ck_assert (pb.rejected);
    ck_assert_str_eq (pb.reason, "duplicate_device");
    gkx_postback_clear (&pb);
    s_parse_ok (&pb, "generic", G "&rejected=no&reason=");
    ck_assert (!pb.rejected);
    ck_assert_ptr_null (pb.reason);
    gkx_postback_clear (&pb);
}
END_TEST

START_TEST (test_clear_is_idempotent)
{
    gkx_postback_t pb;
    memset (&pb, 0, sizeof pb);
    gkx_postback_clear (&pb);
    s_parse_ok (&pb, "generic", G "&sub2=x&reason=r");
    gkx_postback_clear (&pb);
    ck_assert_ptr_null (pb.token);
    ck_assert_ptr_null (pb.sub[1]);
    ck_assert_ptr_null (pb.mmp);
    gkx_postback_clear (&pb);
}
END_TEST

/* Hex of a dedupe key. */
static void
s_hex (char out[2 * GKX_POSTBACK_DEDUPE_BYTES + 1], const uint8_t key[GKX_POSTBACK_DEDUPE_BYTES])
{
    sodium_bin2hex (out, 2 * GKX_POSTBACK_DEDUPE_BYTES + 1, key, GKX_POSTBACK_DEDUPE_BYTES);
}

START_TEST (test_dedupe_key)
{
    /* Golden vectors: Python's hashlib.blake2b(prefix + txid + b"\0" +
       event, digest_size=16). */
    uint8_t key[GKX_POSTBACK_DEDUPE_BYTES];
    char hex[2 * GKX_POSTBACK_DEDUPE_BYTES + 1];
    gkx_postback_dedupe_key (key, "abc-123", "install");
    s_hex (hex, key);
    ck_assert_str_eq (hex, "bf9a64dc4e6fd7a8e6c97ce803c4013c");
    gkx_postback_dedupe_key (key, "a", "bc");
    s_hex (hex, key);
    ck_assert_str_eq (hex, "566ea7dc4777fffef4430dea08144573");
    /* The separator keeps ("a", "bc") and ("ab", "c") apart. */
    gkx_postback_dedupe_key (key, "ab", "c");
    s_hex (hex, key);
    ck_assert_str_eq (hex, "3292f07e67681caf8732a8e65bb878f5");

    /* A retried postback gives the same key; another event does not. */
    gkx_postback_t a, b, c;
    s_parse_ok (&a, "generic", "p=pid1&t=tok1&click_id=c1&txid=abc-123&event=install");
    s_parse_ok (&b, "generic", "event=install&txid=abc-123&click_id=c1&t=tok1&p=pid1&x=1");
    s_parse_ok (&c, "generic", "p=pid1&t=tok1&click_id=c1&txid=abc-123&event=purchase");
    uint8_t ka[GKX_POSTBACK_DEDUPE_BYTES], kb[GKX_POSTBACK_DEDUPE_BYTES],
        kc[GKX_POSTBACK_DEDUPE_BYTES];
    gkx_postback_dedupe_key (ka, a.transaction_id, a.event);
    gkx_postback_dedupe_key (kb, b.transaction_id, b.event);
    gkx_postback_dedupe_key (kc, c.transaction_id, c.event);
    s_hex (hex, ka);
    ck_assert_str_eq (hex, "bf9a64dc4e6fd7a8e6c97ce803c4013c");
    ck_assert (memcmp (ka, kb, sizeof ka) == 0);
    ck_assert (memcmp (ka, kc, sizeof ka) != 0);
    gkx_postback_clear (&a);
    gkx_postback_clear (&b);
    gkx_postback_clear (&c);
}
END_TEST

int
main (void)
{
    if (sodium_init () < 0) {
        return 99;
    }
    Suite *s = suite_create ("postback");
    TCase *tc = tcase_create ("postback");
    tcase_add_test (tc, test_mmp_names_and_lookup);
    tcase_add_test (tc, test_param_and_macro);
    tcase_add_loop_test (tc, test_url_golden, 0, (int) S_COUNT (s_golden_urls));
    tcase_add_test (tc, test_url_normalises_name_and_trailing_slash);
    tcase_add_loop_test (tc, test_url_rejects, 0, (int) S_COUNT (s_url_cases));
    tcase_add_test (tc, test_url_limits);
    tcase_add_test (tc, test_round_trip_appsflyer);
    tcase_add_test (tc, test_round_trip_appsflyer_install);
    tcase_add_test (tc, test_round_trip_adjust_install);
    tcase_add_test (tc, test_round_trip_adjust_event);
    tcase_add_test (tc, test_round_trip_branch);
    tcase_add_test (tc, test_round_trip_singular);
    tcase_add_test (tc, test_round_trip_kochava);
    tcase_add_test (tc, test_round_trip_generic);
    tcase_add_loop_test (tc, test_parse_rejects, 0, (int) S_COUNT (s_cases));
    tcase_add_test (tc, test_token_never_in_messages);
    tcase_add_test (tc, test_percent_decoding);
    tcase_add_test (tc, test_unknown_and_unreplaced_are_counted);
    tcase_add_test (tc, test_size_limits);
    tcase_add_test (tc, test_field_limits);
    tcase_add_loop_test (tc, test_time_formats, 0, (int) S_COUNT (s_times));
    tcase_add_test (tc, test_time_prefers_event_time);
    tcase_add_test (tc, test_click_time);
    tcase_add_loop_test (tc, test_platform_mapping, 0, (int) S_COUNT (s_platform_cases));
    tcase_add_test (tc, test_amounts);
    tcase_add_test (tc, test_rejected_appsflyer);
    tcase_add_test (tc, test_rejected_adjust);
    tcase_add_test (tc, test_rejected_generic_parameters);
    tcase_add_test (tc, test_clear_is_idempotent);
    tcase_add_test (tc, test_dedupe_key);
    suite_add_tcase (s, tc);
    return gkx_test_run (s);
}
