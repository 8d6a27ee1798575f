/*  fuzz_config - libFuzzer target: the node's configuration file.
    Part of gokart-exchange; MIT licence.

    Input: the text of a gkx.conf, read by gkx_config_parse exactly as
    gkx_config_load reads DIR/gkx.conf (inih through the module's own line
    reader). A refusal names the line; an accepted configuration holds what
    include/gkx/config.h documents: a role and a name, lists within their
    limits, the sections of the other role dropped, keys that go together
    together, and every address and network in a form the node's modules
    take (gkx_dirmsg_address_parse, gkx_netmask_add), so that a file that
    loads never fails later, when gkxd starts its services.
*/
#include "fuzz.h"

#include <gkx/config.h>
#include <gkx/dirmsg.h>
#include <gkx/kind.h>
#include <gkx/netmask.h>

/* Checks what config.h documents of a loaded configuration. */
static void
s_check (const gkx_config_t *c)
{
    GKX_FUZZ_CHECK (c->role == GKX_ROLE_ADVERTISER || c->role == GKX_ROLE_PUBLISHER, "role %d",
                    c->role);
    GKX_FUZZ_CHECK (c->name && c->name[0], "name");
    GKX_FUZZ_CHECK (c->email && c->listen && c->api_listen, "email, listen, api listen");
    GKX_FUZZ_CHECK (c->verticals_count <= GKX_CONFIG_LIST_MAX
                        && c->countries_count <= GKX_CONFIG_LIST_MAX
                        && c->allow_from_count <= GKX_CONFIG_LIST_MAX
                        && c->notify_to_count <= GKX_CONFIG_LIST_MAX
                        && c->directory_publish_to_count <= GKX_CONFIG_DIRECTORIES_MAX,
                    "list counts");
    for (size_t i = 0; i < c->verticals_count; i++) {
        GKX_FUZZ_CHECK (c->verticals[i] && c->verticals[i][0], "verticals[%zu]", i);
    }
    for (size_t i = 0; i < c->countries_count; i++) {
        GKX_FUZZ_CHECK (c->countries[i] && c->countries[i][0], "countries[%zu]", i);
    }
    char errbuf[GKX_ERRBUF_BYTES] = "";
    if (c->directory_serve) {
        GKX_FUZZ_CHECK (c->directory_listen, "directory serve without listen");
    }
    if (c->directory_listen) {
        GKX_FUZZ_CHECK (gkx_dirmsg_endpoint_check (c->directory_listen, errbuf) == GKX_OK,
                        "directory listen \"%s\": %s", c->directory_listen, errbuf);
        GKX_FUZZ_CHECK (strcmp (c->directory_listen, c->listen) != 0, "directory listen");
    }
    for (size_t i = 0; i < c->directory_publish_to_count; i++) {
        char endpoint[GKX_DIRMSG_ENDPOINT_BYTES];
        uint8_t key[GKX_CURVE_KEY_BYTES];
        GKX_FUZZ_CHECK (gkx_dirmsg_address_parse (endpoint, key, c->directory_publish_to[i],
                                                  errbuf)
                            == GKX_OK,
                        "publish_to \"%s\": %s", c->directory_publish_to[i], errbuf);
    }
    if (c->role == GKX_ROLE_ADVERTISER) {
        GKX_FUZZ_CHECK (!c->webhook_url && !c->webhook_secret, "webhook on an advertiser");
        GKX_FUZZ_CHECK (!c->postback_listen == !c->postback_base_url, "postback base url");
        GKX_FUZZ_CHECK (!c->postback_listen || strcmp (c->postback_listen, c->api_listen) != 0,
                        "postback listen is the API's");
        gkx_netmask_t *mask = gkx_netmask_new ();
        for (size_t i = 0; i < c->allow_from_count; i++) {
            GKX_FUZZ_CHECK (gkx_netmask_add (mask, c->allow_from[i], errbuf) == GKX_OK,
                            "allow_from \"%s\": %s", c->allow_from[i], errbuf);
        }
        gkx_netmask_destroy (&mask);
    }
    else {
        GKX_FUZZ_CHECK (!c->postback_listen && !c->postback_base_url && c->allow_from_count == 0,
                        "postback on a publisher");
        GKX_FUZZ_CHECK (!c->webhook_url == !c->webhook_secret, "webhook url without secret");
    }
    if (c->webhook_secret) {
        GKX_FUZZ_CHECK (strncmp (c->webhook_secret, GKX_CONFIG_WEBHOOK_PREFIX,
                                 strlen (GKX_CONFIG_WEBHOOK_PREFIX))
                            == 0,
                        "webhook secret prefix");
    }
    GKX_FUZZ_CHECK (!c->smtp_user == !c->smtp_password_file, "smtp user and password file");
    GKX_FUZZ_CHECK (c->notify_on == (c->smtp_url && c->notify_to_count > 0), "notify_on");
    GKX_FUZZ_CHECK (!c->notify_on || c->smtp_from, "notifications without a sender");
    GKX_FUZZ_CHECK (c->notify_window_seconds >= 0
                        && c->notify_window_seconds <= GKX_CONFIG_NOTIFY_WINDOW_MAX,
                    "window %d", c->notify_window_seconds);
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
    char errbuf[GKX_ERRBUF_BYTES] = "";
    gkx_config_t *config = NULL;
    int rc = gkx_config_parse (&config, (const char *) data, size, "gkx.conf", errbuf);
    GKX_FUZZ_SAY ("config: %s %s", gkx_errname (rc), errbuf);
    if (rc == GKX_OK) {
        s_check (config);
        gkx_config_destroy (&config);
        gkx_config_destroy (&config);
    }
    else {
        GKX_FUZZ_CHECK_REFUSAL (rc, errbuf, "config");
        GKX_FUZZ_CHECK (rc == GKX_ECONFIG, "config: %s", gkx_errname (rc));
        GKX_FUZZ_CHECK (config == NULL, "config: set on failure");
    }
    return 0;
}
