/*  kind - entry kinds and member roles shared by every module.
    Part of gokart-exchange; MIT licence.
*/
#include <gkx/error.h>
#include <gkx/kind.h>

#include <stddef.h>
#include <string.h>

/* Indexed by kind; index 0 is unused because kinds start at 1. */
static const char *s_kind_names[] = {
    NULL, "genesis", "edit", "propose", "answer",
    "conversion", "conversion_status", "ack", "close",
};

const char *
gkx_kind_name (int kind)
{
    if (kind < GKX_KIND_MIN || kind > GKX_KIND_MAX) {
        return NULL;
    }
    return s_kind_names[kind];
}

const char *
gkx_role_name (int role)
{
    if (role == GKX_ROLE_ADVERTISER) {
        return "advertiser";
    }
    if (role == GKX_ROLE_PUBLISHER) {
        return "publisher";
    }
    return NULL;
}

int
gkx_role_parse (const char *text, int *role_p)
{
    if (strcmp (text, "advertiser") == 0) {
        *role_p = GKX_ROLE_ADVERTISER;
        return GKX_OK;
    }
    if (strcmp (text, "publisher") == 0) {
        *role_p = GKX_ROLE_PUBLISHER;
        return GKX_OK;
    }
    return GKX_EINVAL;
}
