/*  test_hlc - the hybrid logical clock.
    Part of gokart-exchange; MIT licence.
*/
#include "testutil.h"

#include <gkx/hlc.h>

/* Milliseconds of a fixed moment used throughout. */
#define T0 1795491556923ULL

START_TEST (test_send_takes_wall_clock_when_ahead)
{
    uint64_t h = gkx_hlc_send (0, T0);
    ck_assert_uint_eq (gkx_hlc_ms (h), T0);
    ck_assert_uint_eq (gkx_hlc_counter (h), 0);
}
END_TEST

START_TEST (test_send_counts_within_one_millisecond)
{
    uint64_t a = gkx_hlc_send (0, T0);
    uint64_t b = gkx_hlc_send (a, T0);
    uint64_t c = gkx_hlc_send (b, T0);
    ck_assert_uint_eq (gkx_hlc_ms (c), T0);
    ck_assert_uint_eq (gkx_hlc_counter (c), 2);
    ck_assert (a < b && b < c);
}
END_TEST

START_TEST (test_send_is_monotonic_when_wall_clock_goes_back)
{
    uint64_t a = gkx_hlc_send (0, T0);
    uint64_t b = gkx_hlc_send (a, T0 - 5000);
    ck_assert (b > a);
    ck_assert_uint_eq (gkx_hlc_ms (b), T0);
}
END_TEST

START_TEST (test_counter_overflow_carries_into_milliseconds)
{
    uint64_t last = (T0 << GKX_HLC_COUNTER_BITS) | 0xffff;
    uint64_t next = gkx_hlc_send (last, T0);
    ck_assert (next > last);
    ck_assert_uint_eq (gkx_hlc_ms (next), T0 + 1);
    ck_assert_uint_eq (gkx_hlc_counter (next), 0);
}
END_TEST

START_TEST (test_recv_passes_remote_clock_ahead)
{
    uint64_t local = gkx_hlc_send (0, T0);
    uint64_t remote = gkx_hlc_send (0, T0 + 60000);
    uint64_t after = gkx_hlc_recv (local, remote, T0);
    ck_assert (after > remote && after > local);
    /* Every later local event orders after what was received. */
    ck_assert (gkx_hlc_send (after, T0) > remote);
}
END_TEST

START_TEST (test_recv_takes_wall_clock_when_ahead)
{
    uint64_t after = gkx_hlc_recv (1, 2, T0);
    ck_assert_uint_eq (after, T0 << GKX_HLC_COUNTER_BITS);
}
END_TEST

START_TEST (test_format_is_iso8601_utc)
{
    char text[GKX_HLC_TEXT_BYTES];
    gkx_hlc_format (text, sizeof text, (T0 << GKX_HLC_COUNTER_BITS) | 7);
    ck_assert_str_eq (text, "2026-11-24T03:39:16.923Z");
}
END_TEST

int
main (void)
{
    Suite *s = suite_create ("hlc");
    TCase *tc = tcase_create ("hlc");
    tcase_add_test (tc, test_send_takes_wall_clock_when_ahead);
    tcase_add_test (tc, test_send_counts_within_one_millisecond);
    tcase_add_test (tc, test_send_is_monotonic_when_wall_clock_goes_back);
    tcase_add_test (tc, test_counter_overflow_carries_into_milliseconds);
    tcase_add_test (tc, test_recv_passes_remote_clock_ahead);
    tcase_add_test (tc, test_recv_takes_wall_clock_when_ahead);
    tcase_add_test (tc, test_format_is_iso8601_utc);
    suite_add_tcase (s, tc);
    return gkx_test_run (s);
}
