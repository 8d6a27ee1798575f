/*  test_examples - the example node configurations load as the node loads them.
    Part of gokart-exchange; MIT licence.

    examples/advertiser.conf and examples/publisher.conf are read with
    gkx_config_parse, the loader gkx and gkxd use, exactly as shipped, and
    their values checked: every section is in force on its role (the
    postback endpoint behind its proxy, the directory, the webhook, e-mail
    notifications). Each key line the files leave commented out ("# key =
    value" inside a section) still loads once uncommented, so a commented
    example cannot rot either. tests/integration/test_examples.sh checks
    that every key the loader knows is in each file, and runs gkxd on both.
*/
#include "testutil.h"

#include <gkx/alloc.h>
#include <gkx/config.h>
#include <gkx/error.h>
#include <gkx/kind.h>

#include <ctype.h>

/* Largest example file read. */
#define S_FILE_MAX 65536

/* Reads examples/NAME from the source tree; the caller frees it. */
static char *
s_example_read (const char *name, size_t *len_p)
{
    char path[PATH_MAX];
    snprintf (path, sizeof path, "%s/examples/%s", GKX_SRCDIR, name);
    FILE *file = fopen (path, "r");
    ck_assert_msg (file != NULL, "cannot open %s", path);
    char *text = gkx_zalloc (S_FILE_MAX + 1);
    size_t len = fread (text, 1, S_FILE_MAX, file);
    ck_assert_msg (feof (file), "%s is larger than %d bytes", path, S_FILE_MAX);
    fclose (file);
    *len_p = len;
    return text;
}

/* Parses text as the file name; fails the test with the loader's message
   unless it loads. */
static gkx_config_t *
s_parse_ok (const char *text, size_t len, const char *name)
{
    gkx_config_t *config = NULL;
    char errbuf[GKX_ERRBUF_BYTES] = "";
    int rc = gkx_config_parse (&config, text, len, name, errbuf);
    ck_assert_msg (rc == GKX_OK, "%s does not load: %s", name, errbuf);
    return config;
}

/* Whether line (up to its newline) is a commented-out key line: "#", then
   spaces, then a lower-case key, " = ". */
static int
s_commented_key (const char *line)
{
    if (line[0] != '#') {
        return 0;
    }
    const char *p = line + 1;
    while (*p == ' ') {
        p++;
    }
    const char *key = p;
    while (islower ((unsigned char) *p) || *p == '_') {
        p++;
    }
    return p > key && strncmp (p, " = ", 3) == 0;
}

/* Loads the file with each commented-out key line of a section uncommented,
   one at a time; returns how many there were. */
static int
s_uncommented_load (const char *text, size_t len, const char *name)
{
    int count = 0;
    int in_section = 0;
    for (size_t at = 0; at < len;) {
        const char *line = text + at;
        size_t line_len = strcspn (line, "\n");
        in_section = in_section || line[0] == '[';
        if (in_section && s_commented_key (line)) {
            /* The same text without the "#" and the spaces after it. */
            size_t cut = 1 + strspn (line + 1, " ");
            char *copy = gkx_zalloc (len);
            memcpy (copy, text, at);
            memcpy (copy + at, line + cut, len - at - cut);
            char label[PATH_MAX];
            snprintf (label, sizeof label, "%s with \"%.*s\" uncommented", name,
                      (int) line_len, line);
            gkx_config_t *config = s_parse_ok (copy, len - cut, label);
            gkx_config_destroy (&config);
            gkx_free (copy);
            count++;
        }
        at += line_len + 1;
    }
    return count;
}

START_TEST (test_advertiser_example_loads)
{
    size_t len = 0;
    char *text = s_example_read ("advertiser.conf", &len);
    gkx_config_t *c = s_parse_ok (text, len, "examples/advertiser.conf");
    ck_assert_int_eq (c->role, GKX_ROLE_ADVERTISER);
    ck_assert_str_eq (c->name, "Acme Games");
    ck_assert_str_eq (c->listen, "tcp://127.0.0.1:7700");
    ck_assert_str_eq (c->advertise, "tcp://127.0.0.1:7700");
    ck_assert_str_eq (c->api_listen, "127.0.0.1:7701");
    ck_assert_uint_eq (c->verticals_count, 2);
    ck_assert_str_eq (c->verticals[1], "Puzzle");
    ck_assert_uint_eq (c->countries_count, 3);
    /* Its own directory, which it also reads the publishers from. */
    ck_assert_int_eq (c->directory_serve, 1);
    ck_assert_str_eq (c->directory_listen, "tcp://127.0.0.1:7790");
    ck_assert_uint_eq (c->directory_publish_to_count, 1);
    ck_assert_int_eq (strncmp (c->directory_publish_to[0], "tcp://127.0.0.1:7790@", 21), 0);
    /* The postback endpoint, local behind its TLS proxy. */
    ck_assert_str_eq (c->postback_listen, "127.0.0.1:7702");
    ck_assert_str_eq (c->postback_base_url, "https://postbacks.acme.example/postback");
    ck_assert_uint_eq (c->allow_from_count, 2);
    ck_assert_ptr_null (c->webhook_url);
    /* E-mail notifications are on, through a relay with a login. */
    ck_assert_int_eq (c->notify_on, 1);
    ck_assert_str_eq (c->smtp_password_file, "smtp.password");
    ck_assert_str_eq (c->smtp_from, "gkx-alerts@acme.example");
    ck_assert_uint_eq (c->notify_to_count, 2);
    ck_assert_int_eq (c->notify_window_seconds, 60);
    gkx_config_destroy (&c);
    s_uncommented_load (text, len, "examples/advertiser.conf");
    gkx_free (text);
}
END_TEST

START_TEST (test_publisher_example_loads)
{
    size_t len = 0;
    char *text = s_example_read ("publisher.conf", &len);
    gkx_config_t *c = s_parse_ok (text, len, "examples/publisher.conf");
    ck_assert_int_eq (c->role, GKX_ROLE_PUBLISHER);
    ck_assert_str_eq (c->name, "Pixel Pubs");
    ck_assert_str_eq (c->listen, "tcp://127.0.0.1:7710");
    ck_assert_str_eq (c->api_listen, "127.0.0.1:7711");
    ck_assert_int_eq (c->accept_any, 0);
    ck_assert_int_eq (c->directory_serve, 0);
    ck_assert_ptr_null (c->directory_listen);
    /* It publishes its card to the advertiser's directory. */
    ck_assert_uint_eq (c->directory_publish_to_count, 1);
    ck_assert_int_eq (strncmp (c->directory_publish_to[0], "tcp://127.0.0.1:7790@", 21), 0);
    ck_assert_ptr_null (c->postback_listen);
    ck_assert_str_eq (c->webhook_url, "http://127.0.0.1:8088/hooks/gkx");
    ck_assert_int_eq (strncmp (c->webhook_secret, GKX_CONFIG_WEBHOOK_PREFIX, 6), 0);
    ck_assert_int_eq (c->notify_on, 1);
    ck_assert_str_eq (c->smtp_url, "smtps://smtp.pixelpubs.example:465");
    ck_assert_uint_eq (c->notify_to_count, 1);
    ck_assert_int_eq (c->notify_window_seconds, GKX_CONFIG_NOTIFY_WINDOW_DEFAULT);
    gkx_config_destroy (&c);
    /* The directory's listen, left commented out while serve = false. */
    ck_assert_int_ge (s_uncommented_load (text, len, "examples/publisher.conf"), 1);
    gkx_free (text);
}
END_TEST

int
main (void)
{
    Suite *s = suite_create ("examples");
    TCase *tc = tcase_create ("examples");
    tcase_add_test (tc, test_advertiser_example_loads);
    tcase_add_test (tc, test_publisher_example_loads);
    suite_add_tcase (s, tc);
    return gkx_test_run (s);
}
