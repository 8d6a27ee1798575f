/*  test_metrics - tests of the Prometheus text exposition writer.
    Part of gokart-exchange; MIT licence.

    Expositions are compared byte for byte with the text the format
    prescribes: HELP and TYPE lines, labels, escapes in label values and
    help texts, and numbers that read back as the same double. Names the
    format forbids are programming errors: those cases expect the abort of
    a failed assertion.
*/
#include "testutil.h"

#include <gkx/metrics.h>

#include <math.h>
#include <signal.h>

/* Samples written by the growth case: more than the first buffer holds. */
#define S_MANY 1000

/* A new exposition starts empty. */
START_TEST (test_new_is_empty)
{
    gkx_metrics_t *m = gkx_metrics_new ();
    size_t len = 99;
    ck_assert_str_eq (gkx_metrics_text (m, &len), "");
    ck_assert_uint_eq (len, 0);
    gkx_metrics_destroy (&m);
    ck_assert_ptr_null (m);
    gkx_metrics_destroy (&m);
    gkx_metrics_destroy (NULL);
}
END_TEST

/* A counter with labelled samples and a gauge without labels, exactly as
   the format writes them. */
START_TEST (test_families_and_samples)
{
    gkx_metrics_t *m = gkx_metrics_new ();
    gkx_metrics_family (m, "gkx_postbacks_total", GKX_METRICS_COUNTER, "Postbacks by result.");
    gkx_metrics_label_t committed = {"result", "committed"};
    gkx_metrics_label_t refused = {"result", "refused"};
    gkx_metrics_sample (m, &committed, 1, 12);
    gkx_metrics_sample (m, &refused, 1, 0);
    gkx_metrics_family (m, "gkx_uptime_seconds", GKX_METRICS_GAUGE, "Seconds since start.");
    gkx_metrics_sample (m, NULL, 0, 3600);
    gkx_metrics_label_t two[] = {{"peer", "ab12"}, {"role", "publisher"}};
    gkx_metrics_family (m, "gkx:lag_entries", GKX_METRICS_GAUGE, "Lag.");
    gkx_metrics_sample (m, two, 2, 3);
    size_t len = 0;
    const char *text = gkx_metrics_text (m, &len);
    ck_assert_str_eq (text, "# HELP gkx_postbacks_total Postbacks by result.\n"
                            "# TYPE gkx_postbacks_total counter\n"
                            "gkx_postbacks_total{result=\"committed\"} 12\n"
                            "gkx_postbacks_total{result=\"refused\"} 0\n"
                            "# HELP gkx_uptime_seconds Seconds since start.\n"
                            "# TYPE gkx_uptime_seconds gauge\n"
                            "gkx_uptime_seconds 3600\n"
                            "# HELP gkx:lag_entries Lag.\n"
                            "# TYPE gkx:lag_entries gauge\n"
                            "gkx:lag_entries{peer=\"ab12\",role=\"publisher\"} 3\n");
    ck_assert_uint_eq (len, strlen (text));
    gkx_metrics_destroy (&m);
}
END_TEST

/* Label values escape backslash, double quote and newline; help texts
   escape backslash and newline but keep double quotes; UTF-8 passes. */
START_TEST (test_escapes)
{
    gkx_metrics_t *m = gkx_metrics_new ();
    gkx_metrics_family (m, "gkx_node_info", GKX_METRICS_GAUGE, "A \"name\" with \\ and\nmore.");
    gkx_metrics_label_t name = {"name", "Acme \"Ads\" \\ Co\nl\xc3\xa9"};
    gkx_metrics_sample (m, &name, 1, 1);
    ck_assert_str_eq (gkx_metrics_text (m, NULL),
                      "# HELP gkx_node_info A \"name\" with \\\\ and\\nmore.\n"
                      "# TYPE gkx_node_info gauge\n"
                      "gkx_node_info{name=\"Acme \\\"Ads\\\" \\\\ Co\\nl\xc3\xa9\"} 1\n");
    gkx_metrics_destroy (&m);
}
END_TEST

/* Returns the value text of the exposition's last sample. */
static const char *
s_last_value (const gkx_metrics_t *m)
{
    size_t len = 0;
    const char *text = gkx_metrics_text (m, &len);
    ck_assert_uint_gt (len, 1);
    const char *p = text + len - 1;
    while (p > text && p[-1] != ' ') {
        p--;
    }
    return p;
}

/* Whole numbers are integers, fractions round-trip in the fewest digits,
   and NaN and the infinities have their names. */
START_TEST (test_numbers)
{
    static const struct {
        double value;
        const char *text;
    } cases[] = {
        {0, "0\n"},
        {42, "42\n"},
        {-3, "-3\n"},
        {1.5, "1.5\n"},
        {0.1, "0.1\n"},
        {1.234, "1.234\n"},
        {1e300, "1e+300\n"},
        {9007199254740992.0, "9007199254740992\n"},
        {18446744073709551615.0, "1.8446744073709552e+19\n"},
        {1.0 / 3.0, "0.33333333333333331\n"},
    };
    gkx_metrics_t *m = gkx_metrics_new ();
    gkx_metrics_family (m, "gkx_test_value", GKX_METRICS_GAUGE, "Values.");
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        gkx_metrics_sample (m, NULL, 0, cases[i].value);
        ck_assert_str_eq (s_last_value (m), cases[i].text);
        ck_assert (strtod (s_last_value (m), NULL) == cases[i].value);
    }
    gkx_metrics_sample (m, NULL, 0, NAN);
    ck_assert_str_eq (s_last_value (m), "NaN\n");
    gkx_metrics_sample (m, NULL, 0, INFINITY);
    ck_assert_str_eq (s_last_value (m), "+Inf\n");
    gkx_metrics_sample (m, NULL, 0, -INFINITY);
    ck_assert_str_eq (s_last_value (m), "-Inf\n");
    gkx_metrics_destroy (&m);
}
END_TEST

/* Many samples grow the buffer; every line is still whole. */
START_TEST (test_grows)
{
    gkx_metrics_t *m = gkx_metrics_new ();
    gkx_metrics_family (m, "gkx_replication_lag_entries", GKX_METRICS_GAUGE, "Lag.");
    char peer[32];
    for (int i = 0; i < S_MANY; i++) {
        snprintf (peer, sizeof peer, "peer-%04d", i);
        gkx_metrics_label_t label = {"peer", peer};
        gkx_metrics_sample (m, &label, 1, i);
    }
    size_t len = 0;
    const char *text = gkx_metrics_text (m, &len);
    ck_assert_uint_eq (len, strlen (text));
    ck_assert_ptr_nonnull (strstr (text, "gkx_replication_lag_entries{peer=\"peer-0999\"} 999\n"));
    size_t lines = 0;
    for (const char *p = text; *p; p++) {
        lines += *p == '\n';
    }
    ck_assert_uint_eq (lines, S_MANY + 2);
    gkx_metrics_destroy (&m);
}
END_TEST

/* A counter must end in _total. */
START_TEST (test_counter_without_total_aborts)
{
    gkx_metrics_t *m = gkx_metrics_new ();
    gkx_metrics_family (m, "gkx_postbacks", GKX_METRICS_COUNTER, "Postbacks.");
}
END_TEST

/* A metric name starts with a letter, '_' or ':'. */
START_TEST (test_bad_metric_name_aborts)
{
    gkx_metrics_t *m = gkx_metrics_new ();
    gkx_metrics_family (m, "9lives", GKX_METRICS_GAUGE, "Lives.");
}
END_TEST

/* Label names starting with "__" are reserved. */
START_TEST (test_reserved_label_aborts)
{
    gkx_metrics_t *m = gkx_metrics_new ();
    gkx_metrics_family (m, "gkx_up", GKX_METRICS_GAUGE, "Up.");
    gkx_metrics_label_t label = {"__name__", "x"};
    gkx_metrics_sample (m, &label, 1, 1);
}
END_TEST

/* Label names take no colon. */
START_TEST (test_label_with_colon_aborts)
{
    gkx_metrics_t *m = gkx_metrics_new ();
    gkx_metrics_family (m, "gkx_up", GKX_METRICS_GAUGE, "Up.");
    gkx_metrics_label_t label = {"a:b", "x"};
    gkx_metrics_sample (m, &label, 1, 1);
}
END_TEST

/* A sample needs its family's HELP and TYPE first. */
START_TEST (test_sample_before_family_aborts)
{
    gkx_metrics_t *m = gkx_metrics_new ();
    gkx_metrics_sample (m, NULL, 0, 1);
}
END_TEST

int
main (void)
{
    Suite *s = suite_create ("metrics");
    TCase *tc = tcase_create ("metrics");
    tcase_add_test (tc, test_new_is_empty);
    tcase_add_test (tc, test_families_and_samples);
    tcase_add_test (tc, test_escapes);
    tcase_add_test (tc, test_numbers);
    tcase_add_test (tc, test_grows);
    /* An abort can only be expected of a forked test; valgrind runs the
       tests unforked (CK_FORK=no), and the other runs cover these. */
    const char *fork_mode = getenv ("CK_FORK");
    if (!fork_mode || strcmp (fork_mode, "no") != 0) {
        tcase_add_test_raise_signal (tc, test_counter_without_total_aborts, SIGABRT);
        tcase_add_test_raise_signal (tc, test_bad_metric_name_aborts, SIGABRT);
        tcase_add_test_raise_signal (tc, test_reserved_label_aborts, SIGABRT);
        tcase_add_test_raise_signal (tc, test_label_with_colon_aborts, SIGABRT);
        tcase_add_test_raise_signal (tc, test_sample_before_family_aborts, SIGABRT);
    }
    suite_add_tcase (s, tc);
    return gkx_test_run (s);
}
