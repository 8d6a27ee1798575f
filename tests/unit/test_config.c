/*  test_config - tests of a node's configuration file and its postback token.
    Part of gokart-exchange; MIT licence.

    Each case writes a gkx.conf into a fresh temporary directory and loads
    it as gkx and gkxd do; refusals check the exact message, which names the
    file, the line and the key (and never a secret). The files gkx init
    writes are loaded back for both roles, and the postback token file is
    created, read again, and refused when others may read it or it is
    damaged.
*/
#include "testutil.h"

#include <gkx/config.h>
#include <gkx/error.h>
#include <gkx/kind.h>

#include <dirent.h>
#include <fcntl.h>
#include <sodium.h>
#include <sys/stat.h>

/* The [node] section of an advertiser and of a publisher (2 lines each, so
   the first key after them is on line 3). */
#define ADVERTISER "[node]\nrole = advertiser\nname = A\n"
#define PUBLISHER "[node]\nrole = publisher\nname = P\n"
/* A webhook secret: whsec_ and the base64 of 32 bytes. */
#define SECRET "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSwc2VjcmV0LWtleS0zMg=="

/* A temporary node directory. */
typedef struct {
    char dir[PATH_MAX];       /* the directory */
    char conf[PATH_MAX + 16]; /* its gkx.conf */
} s_dir_t;

/* Makes a temporary directory. */
static void
s_dir_make (s_dir_t *d)
{
    gkx_test_tmpdir (d->dir);
    snprintf (d->conf, sizeof d->conf, "%s/%s", d->dir, GKX_CONFIG_NAME);
}

/* Writes text as the directory's gkx.conf. */
static void
s_conf_write (const s_dir_t *d, const char *text)
{
    FILE *file = fopen (d->conf, "w");
    ck_assert_ptr_nonnull (file);
    ck_assert_int_eq (fputs (text, file) >= 0, 1);
    ck_assert_int_eq (fclose (file), 0);
}

/* Loads text as a configuration; fails the test unless it loads. */
static gkx_config_t *
s_load_ok (const s_dir_t *d, const char *text)
{
    s_conf_write (d, text);
    gkx_config_t *config = NULL;
    char errbuf[GKX_ERRBUF_BYTES] = "";
    int rc = gkx_config_load (&config, d->dir, errbuf);
    ck_assert_msg (rc == GKX_OK, "%s: %s", gkx_errname (rc), errbuf);
    ck_assert_ptr_nonnull (config);
    return config;
}

/* Asserts that text is refused with GKX_ECONFIG and the message
   "DIR/gkx.conf line LINE: REST". */
static void
s_load_refused (const s_dir_t *d, const char *text, int line, const char *rest)
{
    s_conf_write (d, text);
    gkx_config_t *config = NULL;
    char errbuf[GKX_ERRBUF_BYTES] = "";
    ck_assert_int_eq (gkx_config_load (&config, d->dir, errbuf), GKX_ECONFIG);
    ck_assert_ptr_null (config);
    char expected[GKX_ERRBUF_BYTES + PATH_MAX];
    snprintf (expected, sizeof expected, "%s line %d: %s", d->conf, line, rest);
    ck_assert_str_eq (errbuf, expected);
}

/* Removes the directory and what is in it. */
static void
s_dir_remove (const s_dir_t *d)
{
    gkx_test_rmtree (d->dir);
}

START_TEST (test_advertiser_postback_defaults)
{
    s_dir_t d;
    s_dir_make (&d);
    gkx_config_t *config = s_load_ok (&d, ADVERTISER);
    ck_assert_int_eq (config->role, GKX_ROLE_ADVERTISER);
    ck_assert_str_eq (config->postback_listen, GKX_CONFIG_DEFAULT_POSTBACK);
    ck_assert_str_eq (config->postback_listen, "127.0.0.1:7702");
    ck_assert_str_eq (config->postback_base_url, "http://127.0.0.1:7702/postback");
    ck_assert_uint_eq (config->allow_from_count, 0);
    ck_assert_ptr_null (config->webhook_url);
    ck_assert_ptr_null (config->webhook_secret);
    gkx_config_destroy (&config);
    ck_assert_ptr_null (config);
    gkx_config_destroy (&config);
    gkx_config_destroy (NULL);
    /* The default base_url follows listen. */
    config = s_load_ok (&d, ADVERTISER "[postback]\nlisten = [::1]:9000\n");
    ck_assert_str_eq (config->postback_listen, "[::1]:9000");
    ck_assert_str_eq (config->postback_base_url, "http://[::1]:9000/postback");
    gkx_config_destroy (&config);
    s_dir_remove (&d);
}
END_TEST

START_TEST (test_advertiser_postback_keys)
{
    s_dir_t d;
    s_dir_make (&d);
    gkx_config_t *config =
        s_load_ok (&d, ADVERTISER "[postback]\n"
                                  "listen = 0.0.0.0:7802\n"
                                  "base_url = https://pb.example.com:8443/gkx/postback/\n"
                                  "allow_from = 10.0.0.0/8 192.168.1.7, 2001:db8::/32\t::1\n");
    ck_assert_str_eq (config->postback_listen, "0.0.0.0:7802");
    /* A trailing '/' is dropped: MMP names follow it. */
    ck_assert_str_eq (config->postback_base_url, "https://pb.example.com:8443/gkx/postback");
    ck_assert_uint_eq (config->allow_from_count, 4);
    ck_assert_str_eq (config->allow_from[0], "10.0.0.0/8");
    ck_assert_str_eq (config->allow_from[1], "192.168.1.7");
    ck_assert_str_eq (config->allow_from[2], "2001:db8::/32");
    ck_assert_str_eq (config->allow_from[3], "::1");
    gkx_config_destroy (&config);
    /* allow_from lines add up, so a long list can take several; an empty
       one adds nothing. */
    config = s_load_ok (&d, ADVERTISER "[postback]\nallow_from = 10.0.0.0/8\nallow_from =\n"
                                       "allow_from = 192.168.0.0/16,172.16.0.0/12\n");
    ck_assert_uint_eq (config->allow_from_count, 3);
    ck_assert_str_eq (config->allow_from[2], "172.16.0.0/12");
    gkx_config_destroy (&config);
    config = s_load_ok (&d, ADVERTISER "[postback]\nallow_from =\n");
    ck_assert_uint_eq (config->allow_from_count, 0);
    gkx_config_destroy (&config);
    s_dir_remove (&d);
}
END_TEST

START_TEST (test_postback_listen_off)
{
    s_dir_t d;
    s_dir_make (&d);
    gkx_config_t *config = s_load_ok (
        &d, ADVERTISER "[postback]\nlisten = off\nbase_url = https://pb.example.com/postback\n");
    ck_assert_ptr_null (config->postback_listen);
    ck_assert_ptr_null (config->postback_base_url);
    gkx_config_destroy (&config);
    s_dir_remove (&d);
}
END_TEST

START_TEST (test_bad_postback_listen_is_refused)
{
    s_dir_t d;
    s_dir_make (&d);
    static const char *const bad[] = {
        "7702",          "localhost", "::1:7702", ":7702", "127.0.0.1:",      "127.0.0.1:65536",
        "127.0.0.1:77x", "[::1]7702", "[]:7702",  "Off",   "127.0.0.1:123456"};
    static const char *const why[] = {"must be host:port (or [v6-address]:port)",
                                      "must be host:port (or [v6-address]:port)",
                                      "must be host:port (or [v6-address]:port)",
                                      "must be host:port (or [v6-address]:port)",
                                      "must end in a port from 0 to 65535",
                                      "must end in a port from 0 to 65535",
                                      "must end in a port from 0 to 65535",
                                      "must be [v6-address]:port",
                                      "must be [v6-address]:port",
                                      "must be host:port (or [v6-address]:port)",
                                      "must end in a port from 0 to 65535"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char text[256];
        char rest[256];
        snprintf (text, sizeof text, ADVERTISER "[postback]\nlisten = %s\n", bad[i]);
        snprintf (rest, sizeof rest, "[postback] listen: %s", why[i]);
        s_load_refused (&d, text, 5, rest);
    }
    /* [api] listen follows the same rules. */
    s_load_refused (&d, ADVERTISER "[api]\nlisten = 8080\n", 5,
                    "[api] listen: must be host:port (or [v6-address]:port)");
    /* The two endpoints cannot share an address. */
    s_load_refused (&d,
                    ADVERTISER "[api]\nlisten = 127.0.0.1:9000\n"
                               "[postback]\nlisten = 127.0.0.1:9000\n",
                    7, "[postback] listen: must differ from [api] listen");
    s_dir_remove (&d);
}
END_TEST

START_TEST (test_bad_base_url_is_refused)
{
    s_dir_t d;
    s_dir_make (&d);
    static const char *const bad[] = {"ftp://pb.example.com/postback",
                                      "pb.example.com/postback",
                                      "http://pb.example.com/postback?a=1",
                                      "http://pb.example.com/postback#top",
                                      "http:///postback",
                                      "https://pb.example.com/post back",
                                      "HTTP://pb.example.com",
                                      "https://pb.example.com/caf\xc3\xa9"};
    static const char *const why[] = {
        "must start with http:// or https://",
        "must start with http:// or https://",
        "must not have a ?query (the postback parameters are added to it)",
        "must not have a #fragment",
        "has no host after the scheme",
        "must be printable ASCII without spaces (%-escape the rest)",
        "must start with http:// or https://",
        "must be printable ASCII without spaces (%-escape the rest)"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char text[256];
        char rest[256];
        snprintf (text, sizeof text, ADVERTISER "[postback]\nbase_url = %s\n", bad[i]);
        snprintf (rest, sizeof rest, "[postback] base_url: %s", why[i]);
        s_load_refused (&d, text, 5, rest);
    }
    s_dir_remove (&d);
}
END_TEST

START_TEST (test_bad_allow_from_names_the_word)
{
    s_dir_t d;
    s_dir_make (&d);
    s_load_refused (&d, ADVERTISER "[postback]\nlisten = 127.0.0.1:7702\nallow_from = 10.0.0.1/8\n",
                    6,
                    "[postback] allow_from: \"10.0.0.1/8\" has host bits set; did you mean "
                    "10.0.0.0/8?");
    s_load_refused (&d, ADVERTISER "[postback]\nallow_from = 192.168.1.7 10.0.0.0/33\n", 5,
                    "[postback] allow_from: \"10.0.0.0/33\": the prefix length after '/' must be "
                    "a number from 0 to 32 for IPv4");
    s_load_refused (&d, ADVERTISER "[postback]\nallow_from = mmp.example.com\n", 5,
                    "[postback] allow_from: \"mmp.example.com\" is not an IPv4 or IPv6 address");
    /* At most GKX_CONFIG_LIST_MAX networks, over 5 lines of 13 here. */
    char text[4096];
    size_t len = (size_t) snprintf (text, sizeof text, ADVERTISER "[postback]\n");
    for (int i = 0; i <= GKX_CONFIG_LIST_MAX; i++) {
        len += (size_t) snprintf (text + len, sizeof text - len, "%s10.0.%d.0/24%s",
                                 i % 13 == 0 ? "allow_from = " : " ", i, i % 13 == 12 ? "\n" : "");
    }
    s_load_refused (&d, text, 9, "[postback] allow_from: more than 64 networks");
    /* A line longer than inih reads is an error, never a list cut short. */
    len = (size_t) snprintf (text, sizeof text, ADVERTISER "[postback]\nallow_from =");
    for (int i = 0; i < 20; i++) {
        len += (size_t) snprintf (text + len, sizeof text - len, " 10.0.%d.0/24", i);
    }
    snprintf (text + len, sizeof text - len, "\nlisten = nope\n");
    s_load_refused (&d, text, 5,
                    "longer than 199 characters (a long allow_from can go on several allow_from "
                    "lines)");
    /* A line of 199 characters is read whole: its last word is not cut. */
    size_t start = (size_t) snprintf (text, sizeof text, ADVERTISER "[postback]\n");
    len = start + (size_t) snprintf (text + start, sizeof text - start, "allow_from =");
    for (int i = 0; len - start < 180; i++) {
        len += (size_t) snprintf (text + len, sizeof text - len, " 10.0.%d.0/24", i);
    }
    while (len - start < 199 - 4) {
        text[len++] = ' ';
    }
    len += (size_t) snprintf (text + len, sizeof text - len, " ::1");
    ck_assert_uint_eq (len - start, 199);
    snprintf (text + len, sizeof text - len, "\n");
    gkx_config_t *config = s_load_ok (&d, text);
    ck_assert_str_eq (config->allow_from[config->allow_from_count - 1], "::1");
    gkx_config_destroy (&config);
    s_dir_remove (&d);
}
END_TEST

START_TEST (test_postback_is_ignored_on_a_publisher)
{
    s_dir_t d;
    s_dir_make (&d);
    gkx_config_t *config = s_load_ok (&d, PUBLISHER "[postback]\nlisten = 127.0.0.1:7702\n"
                                                    "allow_from = 10.0.0.0/8\n");
    ck_assert_int_eq (config->role, GKX_ROLE_PUBLISHER);
    ck_assert_ptr_null (config->postback_listen);
    ck_assert_ptr_null (config->postback_base_url);
    ck_assert_uint_eq (config->allow_from_count, 0);
    gkx_config_destroy (&config);
    /* Ignored, but still checked: a typo is never silent. */
    s_load_refused (&d, PUBLISHER "[postback]\nallow_from = 10.0.0.1/8\n", 5,
                    "[postback] allow_from: \"10.0.0.1/8\" has host bits set; did you mean "
                    "10.0.0.0/8?");
    s_load_refused (&d, PUBLISHER "[postback]\nlisten_on = 1\n", 5,
                    "[postback] listen_on: unknown key");
    s_dir_remove (&d);
}
END_TEST

START_TEST (test_publisher_webhook)
{
    s_dir_t d;
    s_dir_make (&d);
    gkx_config_t *config = s_load_ok (&d, PUBLISHER);
    ck_assert_ptr_null (config->webhook_url);
    ck_assert_ptr_null (config->webhook_secret);
    ck_assert_ptr_null (config->postback_listen);
    gkx_config_destroy (&config);
    config = s_load_ok (&d, PUBLISHER "[webhook]\nurl = https://publisher.example/hooks/gkx?k=1\n"
                                      "secret = " SECRET "\n");
    ck_assert_str_eq (config->webhook_url, "https://publisher.example/hooks/gkx?k=1");
    ck_assert_str_eq (config->webhook_secret, SECRET);
    gkx_config_destroy (&config);
    /* The smallest and largest keys: 24 and 64 bytes. */
    uint8_t key[64];
    memset (key, 7, sizeof key);
    size_t sizes[] = {24, 64};
    for (size_t i = 0; i < 2; i++) {
        char b64[100];
        sodium_bin2base64 (b64, sizeof b64, key, sizes[i], sodium_base64_VARIANT_ORIGINAL);
        char text[300];
        snprintf (text, sizeof text,
                  PUBLISHER "[webhook]\nurl = http://127.0.0.1:9/h\n"
                            "secret = whsec_%s\n",
                  b64);
        config = s_load_ok (&d, text);
        ck_assert_ptr_nonnull (config->webhook_secret);
        gkx_config_destroy (&config);
    }
    s_dir_remove (&d);
}
END_TEST

START_TEST (test_bad_webhook_is_refused_without_the_secret)
{
    s_dir_t d;
    s_dir_make (&d);
    /* 23 and 65 bytes decode to the wrong size; 67 bytes are refused by the
       length of their text alone. */
    uint8_t key[67];
    memset (key, 9, sizeof key);
    char b64[3][100];
    size_t sizes[] = {23, 65, 67};
    char secrets[3][sizeof b64 + 8];
    for (size_t i = 0; i < 3; i++) {
        sodium_bin2base64 (b64[i], sizeof b64[i], key, sizes[i], sodium_base64_VARIANT_ORIGINAL);
        snprintf (secrets[i], sizeof secrets[i], "whsec_%s", b64[i]);
    }
    const char *bad[] = {
        "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSwc2VjcmV0LWtleS0zMg==",
        "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSwc2VjcmV0LWtleS0zMg",
        "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw-2VjcmV0LWtleS0zMg==",
        "whsec_",
        secrets[0],
        secrets[1],
        secrets[2],
    };
    static const char *const why[] = {
        "must be whsec_ followed by the base64 of 24 to 64 random bytes",
        "what follows whsec_ must be standard base64 (A-Z a-z 0-9 + /, = padding)",
        "what follows whsec_ must be standard base64 (A-Z a-z 0-9 + /, = padding)",
        "must decode to 24 to 64 bytes (32 to 88 base64 characters after whsec_)",
        "must decode to 24 to 64 bytes (32 to 88 base64 characters after whsec_)",
        "must decode to 24 to 64 bytes (32 to 88 base64 characters after whsec_)",
        "is longer than the base64 of 64 bytes (at most 88 characters after whsec_)",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char text[400];
        char rest[256];
        snprintf (text, sizeof text,
                  PUBLISHER "[webhook]\nurl = https://p.example/h\nsecret = %s\n", bad[i]);
        snprintf (rest, sizeof rest, "[webhook] secret: %s", why[i]);
        s_load_refused (&d, text, 6, rest);
    }
    s_load_refused (&d, PUBLISHER "[webhook]\nurl = mailto:ops@p.example\nsecret = " SECRET "\n", 5,
                    "[webhook] url: must start with http:// or https://");
    s_load_refused (&d, PUBLISHER "[webhook]\nurl = https://p.example/h#x\nsecret = " SECRET "\n",
                    5, "[webhook] url: must not have a #fragment");
    /* url and secret go together. */
    s_load_refused (&d, PUBLISHER "[webhook]\nurl = https://p.example/h\n", 5,
                    "[webhook] url: needs a secret (secret = whsec_...) to sign the deliveries");
    s_load_refused (&d, PUBLISHER "[webhook]\nsecret = " SECRET "\n", 5,
                    "[webhook] secret: needs a url to deliver to");
    s_dir_remove (&d);
}
END_TEST

START_TEST (test_webhook_is_ignored_on_an_advertiser)
{
    s_dir_t d;
    s_dir_make (&d);
    gkx_config_t *config =
        s_load_ok (&d, ADVERTISER "[webhook]\nurl = https://p.example/h\nsecret = " SECRET "\n");
    ck_assert_ptr_null (config->webhook_url);
    ck_assert_ptr_null (config->webhook_secret);
    ck_assert_ptr_nonnull (config->postback_listen);
    gkx_config_destroy (&config);
    s_load_refused (&d, ADVERTISER "[webhook]\nurl = https://p.example/h\nsecret = whsec_x\n", 6,
                    "[webhook] secret: what follows whsec_ must be standard base64 (A-Z a-z 0-9 "
                    "+ /, = padding)");
    s_dir_remove (&d);
}
END_TEST

/* Returns a new string with the contents of path. */
static char *
s_slurp (const char *path)
{
    FILE *file = fopen (path, "r");
    ck_assert_ptr_nonnull (file);
    char *text = calloc (1, 1 << 16);
    size_t len = fread (text, 1, (1 << 16) - 1, file);
    text[len] = '\0';
    fclose (file);
    return text;
}

START_TEST (test_written_files_load_for_both_roles)
{
    s_dir_t d;
    s_dir_make (&d);
    gkx_config_init_t init = {GKX_ROLE_ADVERTISER, "Acme", "ops@acme.test", NULL, NULL, NULL, NULL};
    char errbuf[GKX_ERRBUF_BYTES] = "";
    ck_assert_int_eq (gkx_config_write (d.dir, &init, errbuf), GKX_OK);
    char *text = s_slurp (d.conf);
    ck_assert_ptr_nonnull (strstr (text, "\n[postback]\n"));
    ck_assert_ptr_nonnull (strstr (text, "\nlisten = 127.0.0.1:7702\n"));
    ck_assert_ptr_nonnull (strstr (text, "\n# base_url = "));
    ck_assert_ptr_nonnull (strstr (text, "\nallow_from =\n"));
    ck_assert_ptr_null (strstr (text, "webhook"));
    free (text);
    gkx_config_t *config = NULL;
    ck_assert_int_eq (gkx_config_load (&config, d.dir, errbuf), GKX_OK);
    ck_assert_str_eq (config->postback_listen, "127.0.0.1:7702");
    ck_assert_str_eq (config->postback_base_url, "http://127.0.0.1:7702/postback");
    ck_assert_uint_eq (config->allow_from_count, 0);
    gkx_config_destroy (&config);
    ck_assert_int_eq (gkx_config_write (d.dir, &init, errbuf), GKX_EEXIST);
    unlink (d.conf);
    gkx_config_init_t pub = {GKX_ROLE_PUBLISHER, "Pub", NULL, NULL, NULL, NULL, NULL};
    ck_assert_int_eq (gkx_config_write (d.dir, &pub, errbuf), GKX_OK);
    text = s_slurp (d.conf);
    ck_assert_ptr_nonnull (strstr (text, "\n# [webhook]\n# url = "));
    ck_assert_ptr_nonnull (strstr (text, "\n# secret = whsec_"));
    ck_assert_ptr_null (strstr (text, "[postback]"));
    free (text);
    ck_assert_int_eq (gkx_config_load (&config, d.dir, errbuf), GKX_OK);
    ck_assert_ptr_null (config->webhook_url);
    ck_assert_ptr_null (config->postback_listen);
    gkx_config_destroy (&config);
    s_dir_remove (&d);
}
END_TEST

/* gkx_config_parse reads a text exactly as gkx_config_load reads the file
   (the fuzz target tests/fuzz/fuzz_config.c loads configurations this way). */
START_TEST (test_parse_reads_text_as_the_file)
{
    s_dir_t d;
    s_dir_make (&d);
    gkx_config_init_t init = {.role = GKX_ROLE_ADVERTISER, .name = "Acme", .email = "ops@acme.test"};
    char errbuf[GKX_ERRBUF_BYTES] = "";
    ck_assert_int_eq (gkx_config_write (d.dir, &init, errbuf), GKX_OK);
    char *text = s_slurp (d.conf);
    gkx_config_t *from_file = NULL;
    gkx_config_t *from_text = NULL;
    ck_assert_int_eq (gkx_config_load (&from_file, d.dir, errbuf), GKX_OK);
    ck_assert_int_eq (gkx_config_parse (&from_text, text, strlen (text), "mem.conf", errbuf),
                      GKX_OK);
    ck_assert_int_eq (from_text->role, from_file->role);
    ck_assert_str_eq (from_text->name, from_file->name);
    ck_assert_str_eq (from_text->email, from_file->email);
    ck_assert_str_eq (from_text->listen, from_file->listen);
    ck_assert_str_eq (from_text->api_listen, from_file->api_listen);
    ck_assert_str_eq (from_text->postback_base_url, from_file->postback_base_url);
    gkx_config_destroy (&from_file);
    gkx_config_destroy (&from_text);
    free (text);
    /* A refusal names the text by the name given, and the line. */
    static const char bad[] = "[node]\nrole = advertiser\nname = A\ncolour = blue\n";
    ck_assert_int_eq (gkx_config_parse (&from_text, bad, strlen (bad), "mem.conf", errbuf),
                      GKX_ECONFIG);
    ck_assert_ptr_null (from_text);
    ck_assert_ptr_nonnull (strstr (errbuf, "mem.conf line 4: "));
    ck_assert_int_eq (gkx_config_parse (&from_text, "", 0, "mem.conf", errbuf), GKX_ECONFIG);
    ck_assert_str_eq (errbuf, "mem.conf: [node] role is required");
    /* A NUL byte is refused with its line, not read as the end of the line
       (the rest would be dropped) nor as a cut long line. */
    static const char nul[] = "[node]\nrole = adv\0ertiser\nname = A\n";
    ck_assert_int_eq (gkx_config_parse (&from_text, nul, sizeof nul - 1, "mem.conf", errbuf),
                      GKX_ECONFIG);
    ck_assert_str_eq (errbuf, "mem.conf line 2: holds a NUL byte");
    static const char nul_first[] = "[node]\nrole = publisher\nname = P\n\0[x]\ny = 1\n";
    ck_assert_int_eq (gkx_config_parse (&from_text, nul_first, sizeof nul_first - 1, "mem.conf",
                                        errbuf),
                      GKX_ECONFIG);
    ck_assert_str_eq (errbuf, "mem.conf line 4: holds a NUL byte");
    /* Only len bytes are read: the text need not end with a NUL. */
    static const char cut[] = "[node]\nrole = publisher\nname = P\n[junk";
    ck_assert_int_eq (gkx_config_parse (&from_text, cut, strlen (cut) - 5, "mem.conf", errbuf),
                      GKX_OK);
    ck_assert_str_eq (from_text->name, "P");
    gkx_config_destroy (&from_text);
    s_dir_remove (&d);
}
END_TEST

/* Returns the number of entries in dir, without . and .. */
static int
s_entries (const char *dir)
{
    DIR *handle = opendir (dir);
    ck_assert_ptr_nonnull (handle);
    int count = 0;
    struct dirent *entry;
    while ((entry = readdir (handle)) != NULL) {
        count += strcmp (entry->d_name, ".") != 0 && strcmp (entry->d_name, "..") != 0;
    }
    closedir (handle);
    return count;
}

START_TEST (test_postback_token_is_made_once_and_read_back)
{
    s_dir_t d;
    s_dir_make (&d);
    char path[PATH_MAX + 32];
    snprintf (path, sizeof path, "%s/%s", d.dir, GKX_POSTBACK_TOKEN_NAME);
    char token[GKX_POSTBACK_TOKEN_BUF_BYTES];
    char errbuf[GKX_ERRBUF_BYTES] = "";
    /* Missing, and not to be made. */
    ck_assert_int_eq (gkx_config_postback_token (d.dir, token, 0, errbuf), GKX_ENOTFOUND);
    ck_assert_ptr_nonnull (strstr (errbuf, path));
    ck_assert_ptr_nonnull (strstr (errbuf, "missing"));
    ck_assert_int_eq (s_entries (d.dir), 0);
    /* Made: 43 characters of base64url for 32 bytes, mode 0600, a newline. */
    ck_assert_int_eq (gkx_config_postback_token (d.dir, token, 1, errbuf), GKX_OK);
    ck_assert_uint_eq (strlen (token), GKX_POSTBACK_TOKEN_CHARS);
    ck_assert_uint_eq (strspn (token, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
                                      "0123456789-_"),
                       GKX_POSTBACK_TOKEN_CHARS);
    uint8_t raw[GKX_POSTBACK_TOKEN_RANDOM_BYTES];
    size_t raw_len = 0;
    ck_assert_int_eq (sodium_base642bin (raw, sizeof raw, token, strlen (token), NULL, &raw_len,
                                         NULL, sodium_base64_VARIANT_URLSAFE_NO_PADDING),
                      0);
    ck_assert_uint_eq (raw_len, 32);
    struct stat st;
    ck_assert_int_eq (stat (path, &st), 0);
    ck_assert_uint_eq (st.st_mode & 0777, 0600);
    char *text = s_slurp (path);
    char line[GKX_POSTBACK_TOKEN_BUF_BYTES + 1];
    snprintf (line, sizeof line, "%s\n", token);
    ck_assert_str_eq (text, line);
    free (text);
    /* No temporary file is left behind. */
    ck_assert_int_eq (s_entries (d.dir), 1);
    /* Read back, and never made again. */
    char again[GKX_POSTBACK_TOKEN_BUF_BYTES];
    ck_assert_int_eq (gkx_config_postback_token (d.dir, again, 0, errbuf), GKX_OK);
    ck_assert_str_eq (again, token);
    ck_assert_int_eq (gkx_config_postback_token (d.dir, again, 1, errbuf), GKX_OK);
    ck_assert_str_eq (again, token);
    /* Another node's token is different. */
    s_dir_t other;
    s_dir_make (&other);
    ck_assert_int_eq (gkx_config_postback_token (other.dir, again, 1, errbuf), GKX_OK);
    ck_assert_str_ne (again, token);
    s_dir_remove (&other);
    s_dir_remove (&d);
}
END_TEST

/* Writes text to path with mode. */
static void
s_file_write (const char *path, const char *text, mode_t mode)
{
    unlink (path);
    int fd = open (path, O_WRONLY | O_CREAT | O_EXCL, mode);
    ck_assert_int_ge (fd, 0);
    ck_assert_int_eq (write (fd, text, strlen (text)), (ssize_t) strlen (text));
    close (fd);
    ck_assert_int_eq (chmod (path, mode), 0);
}

START_TEST (test_postback_token_file_is_checked)
{
    s_dir_t d;
    s_dir_make (&d);
    char path[PATH_MAX + 32];
    snprintf (path, sizeof path, "%s/%s", d.dir, GKX_POSTBACK_TOKEN_NAME);
    char token[GKX_POSTBACK_TOKEN_BUF_BYTES];
    char errbuf[GKX_ERRBUF_BYTES] = "";
    static const char good[] = "q1Ew7Xz8Jm2pR4tV6yB0cD3fG5hK9nL_sA-uE1iO2wQ";
    char expected[GKX_ERRBUF_BYTES + PATH_MAX];
    /* Good, with or without the newline. */
    s_file_write (path, good, 0600);
    ck_assert_int_eq (gkx_config_postback_token (d.dir, token, 0, errbuf), GKX_OK);
    ck_assert_str_eq (token, good);
    /* Readable by others: refused, and not replaced even with create. */
    char line[64];
    snprintf (line, sizeof line, "%s\n", good);
    s_file_write (path, line, 0644);
    ck_assert_int_eq (gkx_config_postback_token (d.dir, token, 1, errbuf), GKX_EPERM);
    snprintf (expected, sizeof expected,
              "postback token %s: mode 644 lets others read it; chmod 600 it", path);
    ck_assert_str_eq (errbuf, expected);
    /* Not a token: too short, too long, a second line, padding, other bytes. */
    static const char *const damaged[] = {
        "q1Ew7Xz8Jm2pR4tV6yB0cD3fG5hK9nL_sA-uE1iO2w\n",
        "q1Ew7Xz8Jm2pR4tV6yB0cD3fG5hK9nL_sA-uE1iO2wQQ\n",
        "q1Ew7Xz8Jm2pR4tV6yB0cD3fG5hK9nL_sA-uE1iO2wQ\n\n",
        "q1Ew7Xz8Jm2pR4tV6yB0cD3fG5hK9nL_sA-uE1iO2wQ=\n",
        "q1Ew7Xz8Jm2pR4tV6yB0cD3fG5hK9nL/sA+uE1iO2wQ\n",
        "",
    };
    snprintf (expected, sizeof expected,
              "postback token %s: must be one line of 43 base64url characters (delete the file "
              "to make a new token, then update your MMPs)",
              path);
    for (size_t i = 0; i < sizeof damaged / sizeof damaged[0]; i++) {
        s_file_write (path, damaged[i], 0600);
        ck_assert_int_eq (gkx_config_postback_token (d.dir, token, 1, errbuf), GKX_EINVAL);
        ck_assert_str_eq (errbuf, expected);
    }
    /* A directory that does not exist. */
    char missing[PATH_MAX + 32];
    snprintf (missing, sizeof missing, "%s/nope", d.dir);
    ck_assert_int_eq (gkx_config_postback_token (missing, token, 1, errbuf), GKX_EIO);
    s_dir_remove (&d);
}
END_TEST

/* A key of 64 hex digits, for directory addresses. */
#define DIRECTORY_KEY "cb20780c00112233445566778899aabbccddeeff00112233445566778899a419"

/* [directory]: off by default; serve, listen and publish_to (several lines
   add up) are read. */
START_TEST (test_directory_keys)
{
    s_dir_t d;
    s_dir_make (&d);
    gkx_config_t *config = s_load_ok (&d, PUBLISHER);
    ck_assert_int_eq (config->directory_serve, 0);
    ck_assert_ptr_null (config->directory_listen);
    ck_assert_uint_eq (config->directory_publish_to_count, 0);
    gkx_config_destroy (&config);
    config = s_load_ok (&d, PUBLISHER "[directory]\nserve = true\nlisten = tcp://127.0.0.1:7790\n"
                                      "publish_to = tcp://a.example:1@" DIRECTORY_KEY
                                      " tcp://b.example:2@" DIRECTORY_KEY "\n"
                                      "publish_to = tcp://c.example:3@" DIRECTORY_KEY "\n");
    ck_assert_int_eq (config->directory_serve, 1);
    ck_assert_str_eq (config->directory_listen, "tcp://127.0.0.1:7790");
    ck_assert_uint_eq (config->directory_publish_to_count, 3);
    ck_assert_str_eq (config->directory_publish_to[0], "tcp://a.example:1@" DIRECTORY_KEY);
    ck_assert_str_eq (config->directory_publish_to[2], "tcp://c.example:3@" DIRECTORY_KEY);
    gkx_config_destroy (&config);
    config = s_load_ok (&d, ADVERTISER "[directory]\nserve = false\n");
    ck_assert_int_eq (config->directory_serve, 0);
    gkx_config_destroy (&config);
    s_dir_remove (&d);
}
END_TEST

/* Each bad [directory] value is refused naming its line and key. */
START_TEST (test_bad_directory_is_refused)
{
    s_dir_t d;
    s_dir_make (&d);
    s_load_refused (&d, PUBLISHER "[directory]\nserve = yes\n", 5,
                    "[directory] serve: serve must be true or false");
    s_load_refused (&d, PUBLISHER "[directory]\nlisten = 127.0.0.1:7790\n", 5,
                    "[directory] listen: listen must be tcp://host:port");
    s_load_refused (&d, PUBLISHER "[directory]\npublish_to = tcp://a.example:1\n", 5,
                    "[directory] publish_to: directory address \"tcp://a.example:1\": expected "
                    "tcp://host:port@KEY (KEY: the directory's 64 hex digit key)");
    s_load_refused (&d, PUBLISHER "[directory]\npublish_to = tcp://a.example:1@cb20\n", 5,
                    "[directory] publish_to: directory address \"tcp://a.example:1@cb20\": the "
                    "key after '@' must be 64 hex digits");
    char text[4096];
    int n = snprintf (text, sizeof text, PUBLISHER "[directory]\n");
    for (int i = 0; i <= GKX_CONFIG_DIRECTORIES_MAX; i++) {
        n += snprintf (text + n, sizeof text - (size_t) n, "publish_to = tcp://h:%d@%s\n", i + 1,
                       DIRECTORY_KEY);
    }
    s_load_refused (&d, text, 5 + GKX_CONFIG_DIRECTORIES_MAX,
                    "[directory] publish_to: more than 16 directories");
    s_load_refused (&d, PUBLISHER "[directory]\nserve = true\n", 5,
                    "[directory] serve: needs listen = tcp://host:port (where the directory "
                    "binds)");
    s_load_refused (&d, PUBLISHER "listen = tcp://127.0.0.1:7700\n[directory]\nserve = true\n"
                                  "listen = tcp://127.0.0.1:7700\n",
                    7, "[directory] listen: must differ from [node] listen");
    s_dir_remove (&d);
}
END_TEST

/* gkx init's file explains [directory], commented out. */
START_TEST (test_written_file_has_directory)
{
    s_dir_t d;
    s_dir_make (&d);
    gkx_config_init_t init = {GKX_ROLE_PUBLISHER, "Pub", NULL, NULL, NULL, NULL, NULL};
    char errbuf[GKX_ERRBUF_BYTES] = "";
    ck_assert_int_eq (gkx_config_write (d.dir, &init, errbuf), GKX_OK);
    char *text = s_slurp (d.conf);
    ck_assert_ptr_nonnull (strstr (text, "\n# [directory]\n# publish_to = tcp://"));
    ck_assert_ptr_nonnull (strstr (text, "\n# serve = false\n# listen = tcp://0.0.0.0:7790\n"));
    ck_assert_ptr_nonnull (strstr (text, "'gkx directory-address'"));
    free (text);
    gkx_config_t *config = NULL;
    ck_assert_int_eq (gkx_config_load (&config, d.dir, errbuf), GKX_OK);
    ck_assert_int_eq (config->directory_serve, 0);
    gkx_config_destroy (&config);
    s_dir_remove (&d);
}
END_TEST

/* [node] advertise: the card's endpoint; listen when not given (the default
   listen, or the one in the file); gkx init writes it, or leaves it
   commented. */
START_TEST (test_advertise)
{
    s_dir_t d;
    s_dir_make (&d);
    gkx_config_t *config = s_load_ok (&d, PUBLISHER);
    ck_assert_str_eq (config->advertise, GKX_CONFIG_DEFAULT_LISTEN);
    gkx_config_destroy (&config);
    config = s_load_ok (&d, PUBLISHER "listen = tcp://0.0.0.0:7800\n");
    ck_assert_str_eq (config->listen, "tcp://0.0.0.0:7800");
    ck_assert_str_eq (config->advertise, "tcp://0.0.0.0:7800");
    gkx_config_destroy (&config);
    config = s_load_ok (&d, PUBLISHER "listen = tcp://0.0.0.0:7800\n"
                                      "advertise = tcp://node.example.com:17800\n");
    ck_assert_str_eq (config->listen, "tcp://0.0.0.0:7800");
    ck_assert_str_eq (config->advertise, "tcp://node.example.com:17800");
    gkx_config_destroy (&config);
    unlink (d.conf);
    char errbuf[GKX_ERRBUF_BYTES] = "";
    gkx_config_init_t init = {GKX_ROLE_PUBLISHER, "Pub", NULL, "tcp://127.0.0.1:7800", NULL, NULL,
                              "tcp://127.0.0.1:17800"};
    ck_assert_int_eq (gkx_config_write (d.dir, &init, errbuf), GKX_OK);
    char *text = s_slurp (d.conf);
    ck_assert_ptr_nonnull (strstr (text, "\nlisten = tcp://127.0.0.1:7800\n"));
    ck_assert_ptr_nonnull (strstr (text, "\nadvertise = tcp://127.0.0.1:17800\n"));
    free (text);
    ck_assert_int_eq (gkx_config_load (&config, d.dir, errbuf), GKX_OK);
    ck_assert_str_eq (config->advertise, "tcp://127.0.0.1:17800");
    gkx_config_destroy (&config);
    unlink (d.conf);
    init.advertise = NULL;
    ck_assert_int_eq (gkx_config_write (d.dir, &init, errbuf), GKX_OK);
    text = s_slurp (d.conf);
    ck_assert_ptr_nonnull (strstr (text, "\n# advertise = tcp://"));
    free (text);
    ck_assert_int_eq (gkx_config_load (&config, d.dir, errbuf), GKX_OK);
    ck_assert_str_eq (config->advertise, "tcp://127.0.0.1:7800");
    gkx_config_destroy (&config);
    s_dir_remove (&d);
}
END_TEST

/* A bad advertise names the key and what is wrong; nothing is loaded. */
START_TEST (test_bad_advertise_is_refused)
{
    s_dir_t d;
    s_dir_make (&d);
    static const char *const bad[] = {"127.0.0.1:7700", "tcp://127.0.0.1", "tcp://:7700",
                                      "tcp://127.0.0.1:0", "tcp://127.0.0.1:65536",
                                      "tcp://host name:7700", ""};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char text[256];
        snprintf (text, sizeof text, PUBLISHER "advertise = %s\n", bad[i]);
        s_load_refused (&d, text, 4, "[node] advertise: must be tcp://host:port");
    }
    static const char *const wildcard[] = {"tcp://0.0.0.0:7700", "tcp://*:7700", "tcp://[::]:7700",
                                           "tcp://:::7700"};
    for (size_t i = 0; i < sizeof wildcard / sizeof wildcard[0]; i++) {
        char text[256];
        snprintf (text, sizeof text, PUBLISHER "advertise = %s\n", wildcard[i]);
        s_load_refused (&d, text, 4,
                        "[node] advertise: must name a host partners can reach, not one that "
                        "binds every interface");
    }
    ck_assert_ptr_null (gkx_config_advertise_problem ("tcp://[::1]:7700"));
    ck_assert_ptr_null (gkx_config_advertise_problem ("tcp://10.0.0.7:7700"));
    s_dir_remove (&d);
}
END_TEST

/* [smtp] and [notify]: both url and to turn notifications on, on either
   role; from defaults to [node] email; to lines add up; the window has a
   default. */
START_TEST (test_notify_keys)
{
    s_dir_t d;
    s_dir_make (&d);
    gkx_config_t *config = s_load_ok (&d, PUBLISHER);
    ck_assert_int_eq (config->notify_on, 0);
    ck_assert_ptr_null (config->smtp_url);
    ck_assert_int_eq (config->notify_window_seconds, 30);
    gkx_config_destroy (&config);
    config = s_load_ok (&d, PUBLISHER "[smtp]\nurl = smtp://127.0.0.1:2525\n");
    ck_assert_int_eq (config->notify_on, 0);
    gkx_config_destroy (&config);
    config = s_load_ok (&d, ADVERTISER "email = ops@a.example\n"
                                       "[smtp]\nurl = smtps://smtp.example.com:465\n"
                                       "user = alerts@a.example\npassword_file = smtp.password\n"
                                       "[notify]\nto = x@a.example, y@a.example\n"
                                       "to = z@a.example\nwindow_seconds = 0\n");
    ck_assert_int_eq (config->notify_on, 1);
    ck_assert_str_eq (config->smtp_url, "smtps://smtp.example.com:465");
    ck_assert_str_eq (config->smtp_user, "alerts@a.example");
    ck_assert_str_eq (config->smtp_password_file, "smtp.password");
    ck_assert_str_eq (config->smtp_from, "ops@a.example");
    ck_assert_uint_eq (config->notify_to_count, 3);
    ck_assert_str_eq (config->notify_to[0], "x@a.example");
    ck_assert_str_eq (config->notify_to[2], "z@a.example");
    ck_assert_int_eq (config->notify_window_seconds, 0);
    gkx_config_destroy (&config);
    config = s_load_ok (&d, PUBLISHER "[smtp]\nurl = smtp://mail.p.example\nfrom = gkx@p.example\n"
                                      "[notify]\nto = ops@p.example\nwindow_seconds = 3600\n");
    ck_assert_int_eq (config->notify_on, 1);
    ck_assert_str_eq (config->smtp_from, "gkx@p.example");
    ck_assert_int_eq (config->notify_window_seconds, 3600);
    gkx_config_destroy (&config);
    s_dir_remove (&d);
}
END_TEST

/* Each [smtp] and [notify] rejection names its line, its key and the
   rule. */
START_TEST (test_bad_notify_is_refused)
{
    s_dir_t d;
    s_dir_make (&d);
    s_load_refused (&d, PUBLISHER "[smtp]\nurl = http://mail.p.example\n", 5,
                    "[smtp] url: must start with smtp:// or smtps://");
    s_load_refused (&d, PUBLISHER "[smtp]\nurl = smtp://\n", 5,
                    "[smtp] url: has no host after the scheme");
    s_load_refused (&d, PUBLISHER "[smtp]\nurl = smtp://mail.p.example/?x=1\n", 5,
                    "[smtp] url: must not have a ?query or #fragment");
    s_load_refused (&d, PUBLISHER "[smtp]\nfrom = Ops <ops@p.example>\n", 5,
                    "[smtp] from: an e-mail address must be bare (ops@example.com), without "
                    "spaces, quotes, brackets or a display name");
    s_load_refused (&d, PUBLISHER "[notify]\nto = ops@p.example ops.p.example\n", 5,
                    "[notify] to: \"ops.p.example\": an e-mail address is local@domain, with one "
                    "@");
    s_load_refused (&d, PUBLISHER "[notify]\nwindow_seconds = 3601\n", 5,
                    "[notify] window_seconds: must be a whole number of seconds from 0 to 3600");
    s_load_refused (&d, PUBLISHER "[notify]\nwindow_seconds = -1\n", 5,
                    "[notify] window_seconds: must be a whole number of seconds from 0 to 3600");
    s_load_refused (&d, PUBLISHER "[notify]\nsubject = x\n", 5, "[notify] subject: unknown key");
    s_load_refused (&d, PUBLISHER "[smtp]\nurl = smtp://mail.p.example\nuser = u\n", 6,
                    "[smtp] user: needs a password_file (a file of mode 0600 whose first line "
                    "is the password)");
    s_load_refused (&d, PUBLISHER "[smtp]\nurl = smtp://mail.p.example\npassword_file = pw\n", 6,
                    "[smtp] password_file: needs a user");
    s_load_refused (&d,
                    PUBLISHER "[smtp]\nurl = smtp://mail.p.example\n[notify]\nto = o@p.example\n",
                    5,
                    "[smtp] url: needs a sender: set [smtp] from (or [node] email to a bare "
                    "address)");
    s_dir_remove (&d);
}
END_TEST

/* gkx init's file explains [smtp] and [notify] for both roles, commented
   out; uncommented, they load. */
START_TEST (test_written_file_has_notify)
{
    int roles[] = {GKX_ROLE_ADVERTISER, GKX_ROLE_PUBLISHER};
    for (size_t i = 0; i < sizeof roles / sizeof roles[0]; i++) {
        s_dir_t d;
        s_dir_make (&d);
        gkx_config_init_t init = {roles[i], "N", "ops@n.example", NULL, NULL, "off", NULL};
        char errbuf[GKX_ERRBUF_BYTES] = "";
        ck_assert_int_eq (gkx_config_write (d.dir, &init, errbuf), GKX_OK);
        char *text = s_slurp (d.conf);
        const char *at = strstr (text, "\n# [smtp]\n");
        ck_assert_ptr_nonnull (at);
        ck_assert_ptr_nonnull (strstr (at, "\n# [notify]\n# Where the e-mails go"));
        /* Uncommenting the example lines gives a configuration that loads. */
        char *copy = strdup (text);
        char *out = copy;
        for (const char *p = text; *p;) {
            const char *eol = strchr (p, '\n');
            size_t len = eol ? (size_t) (eol - p + 1) : strlen (p);
            int example = p > at && strncmp (p, "# ", 2) == 0
                          && (p[2] == '[' || memchr (p, '=', len) != NULL);
            /* A login would need a password file: they stay comments. */
            if (example && strncmp (p, "# user =", 8) != 0
                && strncmp (p, "# password_file =", 17) != 0) {
                memcpy (out, p + 2, len - 2);
                out += len - 2;
            }
            else {
                memcpy (out, p, len);
                out += len;
            }
            p += len;
        }
        *out = '\0';
        s_conf_write (&d, copy);
        gkx_config_t *config = NULL;
        ck_assert_msg (gkx_config_load (&config, d.dir, errbuf) == GKX_OK, "%s", errbuf);
        ck_assert_int_eq (config->notify_on, 1);
        ck_assert_str_eq (config->smtp_url, "smtps://smtp.example.com:465");
        ck_assert_str_eq (config->notify_to[0], "ops@example.com");
        gkx_config_destroy (&config);
        free (copy);
        free (text);
        s_dir_remove (&d);
    }
}
END_TEST

int
main (void)
{
    Suite *s = suite_create ("config");
    TCase *tc = tcase_create ("config");
    tcase_add_test (tc, test_advertiser_postback_defaults);
    tcase_add_test (tc, test_advertiser_postback_keys);
    tcase_add_test (tc, test_postback_listen_off);
    tcase_add_test (tc, test_bad_postback_listen_is_refused);
    tcase_add_test (tc, test_bad_base_url_is_refused);
    tcase_add_test (tc, test_bad_allow_from_names_the_word);
    tcase_add_test (tc, test_postback_is_ignored_on_a_publisher);
    tcase_add_test (tc, test_publisher_webhook);
    tcase_add_test (tc, test_bad_webhook_is_refused_without_the_secret);
    tcase_add_test (tc, test_webhook_is_ignored_on_an_advertiser);
    tcase_add_test (tc, test_notify_keys);
    tcase_add_test (tc, test_bad_notify_is_refused);
    tcase_add_test (tc, test_written_file_has_notify);
    tcase_add_test (tc, test_directory_keys);
    tcase_add_test (tc, test_bad_directory_is_refused);
    tcase_add_test (tc, test_written_file_has_directory);
    tcase_add_test (tc, test_advertise);
    tcase_add_test (tc, test_bad_advertise_is_refused);
    tcase_add_test (tc, test_written_files_load_for_both_roles);
    tcase_add_test (tc, test_parse_reads_text_as_the_file);
    tcase_add_test (tc, test_postback_token_is_made_once_and_read_back);
    tcase_add_test (tc, test_postback_token_file_is_checked);
    suite_add_tcase (s, tc);
    return gkx_test_run (s);
}
