/*  test_netmask - tests of the IPv4/IPv6 network lists (postback allow_from).
    Part of gokart-exchange; MIT licence.

    Lists are built the way the configuration builds them, one word at a
    time, and asked about socket addresses made with inet_pton, as
    libmicrohttpd hands them over: IPv4, IPv6 and IPv4-mapped IPv6. Each
    refusal has its own case checking the exact code and message.
*/
#include "testutil.h"

#include <gkx/error.h>
#include <gkx/netmask.h>

#include <arpa/inet.h>
#include <netinet/in.h>

/* Fills *out with the address text (IPv4 or IPv6) and a port; fails the
   test when it does not parse. */
static const struct sockaddr *
s_addr (struct sockaddr_storage *out, const char *text)
{
    memset (out, 0, sizeof *out);
    struct sockaddr_in *in4 = (struct sockaddr_in *)out;
    struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)out;
    if (inet_pton (AF_INET, text, &in4->sin_addr) == 1) {
        in4->sin_family = AF_INET;
        in4->sin_port = htons (40000);
    }
    else {
        ck_assert_int_eq (inet_pton (AF_INET6, text, &in6->sin6_addr), 1);
        in6->sin6_family = AF_INET6;
        in6->sin6_port = htons (40000);
    }
    return (const struct sockaddr *)out;
}

/* Returns whether list contains the address text. */
static int
s_has (const gkx_netmask_t *list, const char *text)
{
    struct sockaddr_storage ss;
    return gkx_netmask_contains (list, s_addr (&ss, text));
}

/* Returns a list of the words; fails the test when one is refused. */
static gkx_netmask_t *
s_list (const char *const *words, size_t count)
{
    gkx_netmask_t *list = gkx_netmask_new ();
    for (size_t i = 0; i < count; i++) {
        char errbuf[GKX_ERRBUF_BYTES] = "";
        int rc = gkx_netmask_add (list, words[i], errbuf);
        ck_assert_msg (rc == GKX_OK, "%s: %s", words[i], errbuf);
    }
    ck_assert_uint_eq (gkx_netmask_count (list), count);
    return list;
}

/* Asserts that word is refused with GKX_EINVAL and exactly message, and
   leaves a list unchanged. */
static void
s_refused (const char *word, const char *message)
{
    gkx_netmask_t *list = gkx_netmask_new ();
    char errbuf[GKX_ERRBUF_BYTES] = "";
    ck_assert_int_eq (gkx_netmask_add (list, word, errbuf), GKX_EINVAL);
    ck_assert_str_eq (errbuf, message);
    ck_assert_uint_eq (gkx_netmask_count (list), 0);
    gkx_netmask_destroy (&list);
}

START_TEST (test_ipv4_networks_and_bare_addresses)
{
    static const char *const words[] = {"10.0.0.0/8", "192.168.1.7", "172.16.0.0/12"};
    gkx_netmask_t *list = s_list (words, 3);
    ck_assert (s_has (list, "10.0.0.0"));
    ck_assert (s_has (list, "10.255.255.255"));
    ck_assert (s_has (list, "192.168.1.7"));
    ck_assert (s_has (list, "172.31.255.1"));
    ck_assert (!s_has (list, "11.0.0.1"));
    ck_assert (!s_has (list, "9.255.255.255"));
    ck_assert (!s_has (list, "192.168.1.8"));
    ck_assert (!s_has (list, "192.168.1.6"));
    ck_assert (!s_has (list, "172.32.0.0"));
    /* An IPv4 network never matches a native IPv6 address. */
    ck_assert (!s_has (list, "::a00:1"));
    ck_assert (!s_has (list, "2001:db8::1"));
    gkx_netmask_destroy (&list);
    ck_assert_ptr_null (list);
    gkx_netmask_destroy (&list);
    gkx_netmask_destroy (NULL);
}
END_TEST

START_TEST (test_ipv6_networks_and_bare_addresses)
{
    static const char *const words[] = {"2001:db8::/32", "::1", "fe80::/10"};
    gkx_netmask_t *list = s_list (words, 3);
    ck_assert (s_has (list, "2001:db8::"));
    ck_assert (s_has (list, "2001:db8:ffff:ffff:ffff:ffff:ffff:ffff"));
    ck_assert (s_has (list, "::1"));
    ck_assert (s_has (list, "fe80::1"));
    ck_assert (s_has (list, "febf::1"));
    ck_assert (!s_has (list, "fec0::1"));
    ck_assert (!s_has (list, "2001:db9::1"));
    ck_assert (!s_has (list, "::2"));
    ck_assert (!s_has (list, "127.0.0.1"));
    gkx_netmask_destroy (&list);
}
END_TEST

START_TEST (test_prefix_lengths_at_the_edges)
{
    static const char *const any4[] = {"0.0.0.0/0"};
    gkx_netmask_t *list = s_list (any4, 1);
    ck_assert (s_has (list, "1.2.3.4"));
    ck_assert (s_has (list, "255.255.255.255"));
    ck_assert (s_has (list, "::ffff:1.2.3.4"));
    ck_assert (!s_has (list, "2001:db8::1"));
    gkx_netmask_destroy (&list);
    static const char *const any6[] = {"::/0"};
    list = s_list (any6, 1);
    ck_assert (s_has (list, "2001:db8::1"));
    ck_assert (!s_has (list, "1.2.3.4"));
    gkx_netmask_destroy (&list);
    /* Prefixes that do not end on a byte. */
    static const char *const odd[] = {"192.168.4.0/22", "2001:db8:8000::/33", "1.2.3.4/32",
                                      "2001:db8::5/128"};
    list = s_list (odd, 4);
    ck_assert (s_has (list, "192.168.7.255"));
    ck_assert (!s_has (list, "192.168.8.0"));
    ck_assert (!s_has (list, "192.168.3.255"));
    ck_assert (s_has (list, "2001:db8:ffff::1"));
    ck_assert (!s_has (list, "2001:db8:7fff::1"));
    ck_assert (s_has (list, "1.2.3.4"));
    ck_assert (!s_has (list, "1.2.3.5"));
    ck_assert (s_has (list, "2001:db8::5"));
    ck_assert (!s_has (list, "2001:db8::4"));
    gkx_netmask_destroy (&list);
}
END_TEST

START_TEST (test_ipv4_mapped_addresses_match_ipv4_networks)
{
    static const char *const words[] = {"10.0.0.0/8", "192.168.1.7"};
    gkx_netmask_t *list = s_list (words, 2);
    ck_assert (s_has (list, "::ffff:10.1.2.3"));
    ck_assert (s_has (list, "::ffff:192.168.1.7"));
    ck_assert (!s_has (list, "::ffff:11.1.2.3"));
    ck_assert (!s_has (list, "::ffff:192.168.1.8"));
    /* The IPv4-compatible form (::a.b.c.d) is not a mapped address. */
    ck_assert (!s_has (list, "::10.1.2.3"));
    gkx_netmask_destroy (&list);
    /* A network written in the mapped form is the IPv4 network. */
    static const char *const mapped[] = {"::ffff:10.0.0.0/104", "::ffff:192.168.1.7"};
    list = s_list (mapped, 2);
    ck_assert (s_has (list, "10.9.8.7"));
    ck_assert (s_has (list, "::ffff:10.9.8.7"));
    ck_assert (s_has (list, "192.168.1.7"));
    ck_assert (!s_has (list, "11.0.0.1"));
    ck_assert (!s_has (list, "192.168.1.8"));
    gkx_netmask_destroy (&list);
}
END_TEST

START_TEST (test_empty_list_contains_nothing)
{
    gkx_netmask_t *list = gkx_netmask_new ();
    ck_assert_uint_eq (gkx_netmask_count (list), 0);
    ck_assert (!s_has (list, "127.0.0.1"));
    ck_assert (!s_has (list, "::1"));
    /* Families other than IPv4 and IPv6 are never contained. */
    struct sockaddr_storage ss;
    memset (&ss, 0, sizeof ss);
    ss.ss_family = AF_UNIX;
    ck_assert (!gkx_netmask_contains (list, (const struct sockaddr *)&ss));
    gkx_netmask_destroy (&list);
}
END_TEST

START_TEST (test_host_bits_set_is_refused_with_the_network_meant)
{
    s_refused ("10.0.0.1/8", "\"10.0.0.1/8\" has host bits set; did you mean 10.0.0.0/8?");
    s_refused ("192.168.1.7/24",
               "\"192.168.1.7/24\" has host bits set; did you mean 192.168.1.0/24?");
    s_refused ("10.0.0.0/0", "\"10.0.0.0/0\" has host bits set; did you mean 0.0.0.0/0?");
    s_refused ("2001:db8::1/32",
               "\"2001:db8::1/32\" has host bits set; did you mean 2001:db8::/32?");
    s_refused ("2001:db8:8000::/31",
               "\"2001:db8:8000::/31\" has host bits set; did you mean 2001:db8::/31?");
    s_refused ("::ffff:10.0.0.1/104",
               "\"::ffff:10.0.0.1/104\" has host bits set; did you mean ::ffff:10.0.0.0/104?");
}
END_TEST

START_TEST (test_bad_address_is_refused)
{
    s_refused ("10.0.0.256", "\"10.0.0.256\" is not an IPv4 or IPv6 address");
    s_refused ("10.0.0", "\"10.0.0\" is not an IPv4 or IPv6 address");
    s_refused ("localhost", "\"localhost\" is not an IPv4 or IPv6 address");
    s_refused ("2001:db8:::1", "\"2001:db8:::1\" is not an IPv4 or IPv6 address");
    s_refused ("fe80::1%eth0", "\"fe80::1%eth0\" is not an IPv4 or IPv6 address");
    s_refused (" 10.0.0.1", "\" 10.0.0.1\" is not an IPv4 or IPv6 address");
    s_refused ("/8", "\"/8\" is not an IPv4 or IPv6 address before the '/'");
    s_refused ("10.0.0.0 /8", "\"10.0.0.0 /8\" is not an IPv4 or IPv6 address before the '/'");
    s_refused ("", "an empty network: write ADDRESS or ADDRESS/PREFIX");
    /* A long word is quoted in part. */
    char word[200];
    memset (word, '1', sizeof word - 1);
    word[sizeof word - 1] = '\0';
    char expected[GKX_ERRBUF_BYTES];
    snprintf (expected, sizeof expected, "\"%.64s\" is not an IPv4 or IPv6 address", word);
    s_refused (word, expected);
}
END_TEST

START_TEST (test_bad_prefix_is_refused)
{
    s_refused ("10.0.0.0/33",
               "\"10.0.0.0/33\": the prefix length after '/' must be a number from 0 to 32 for "
               "IPv4");
    s_refused ("2001:db8::/129",
               "\"2001:db8::/129\": the prefix length after '/' must be a number from 0 to 128 "
               "for IPv6");
    s_refused ("10.0.0.0/", "\"10.0.0.0/\": the prefix length after '/' must be a number from 0 "
                            "to 32 for IPv4");
    s_refused ("10.0.0.0/8/8", "\"10.0.0.0/8/8\": the prefix length after '/' must be a number "
                               "from 0 to 32 for IPv4");
    s_refused ("10.0.0.0/-8", "\"10.0.0.0/-8\": the prefix length after '/' must be a number "
                              "from 0 to 32 for IPv4");
    s_refused ("10.0.0.0/+8", "\"10.0.0.0/+8\": the prefix length after '/' must be a number "
                              "from 0 to 32 for IPv4");
    s_refused ("10.0.0.0/0008", "\"10.0.0.0/0008\": the prefix length after '/' must be a "
                                "number from 0 to 32 for IPv4");
    s_refused ("10.0.0.0/8 ", "\"10.0.0.0/8 \": the prefix length after '/' must be a number "
                              "from 0 to 32 for IPv4");
}
END_TEST

START_TEST (test_a_refused_word_leaves_the_list_as_it_was)
{
    static const char *const words[] = {"10.0.0.0/8"};
    gkx_netmask_t *list = s_list (words, 1);
    char errbuf[GKX_ERRBUF_BYTES] = "";
    ck_assert_int_eq (gkx_netmask_add (list, "11.0.0.1/8", errbuf), GKX_EINVAL);
    ck_assert_uint_eq (gkx_netmask_count (list), 1);
    ck_assert (s_has (list, "10.0.0.1"));
    ck_assert (!s_has (list, "11.0.0.1"));
    gkx_netmask_destroy (&list);
}
END_TEST

int
main (void)
{
    Suite *s = suite_create ("netmask");
    TCase *tc = tcase_create ("netmask");
    tcase_add_test (tc, test_ipv4_networks_and_bare_addresses);
    tcase_add_test (tc, test_ipv6_networks_and_bare_addresses);
    tcase_add_test (tc, test_prefix_lengths_at_the_edges);
    tcase_add_test (tc, test_ipv4_mapped_addresses_match_ipv4_networks);
    tcase_add_test (tc, test_empty_list_contains_nothing);
    tcase_add_test (tc, test_host_bits_set_is_refused_with_the_network_meant);
    tcase_add_test (tc, test_bad_address_is_refused);
    tcase_add_test (tc, test_bad_prefix_is_refused);
    tcase_add_test (tc, test_a_refused_word_leaves_the_list_as_it_was);
    suite_add_tcase (s, tc);
    return gkx_test_run (s);
}
