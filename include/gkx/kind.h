/*  kind - entry kinds and member roles shared by every module.
    Part of gokart-exchange; MIT licence.

    The numeric values are part of the signed wire format (docs/log-format.md):
    never renumber, only add.
*/
#ifndef GKX_KIND_H_INCLUDED
#define GKX_KIND_H_INCLUDED

#ifdef __cplusplus
extern "C" {
#endif

/* What an entry does; its body's schema depends on it. */
typedef enum {
    GKX_KIND_GENESIS = 1,           /* creates the partnership: members, offer, policy */
    GKX_KIND_EDIT = 2,              /* offer operations that apply at once */
    GKX_KIND_PROPOSE = 3,           /* offer operations that wait for the other side */
    GKX_KIND_ANSWER = 4,            /* accept, decline or withdraw a proposal */
    GKX_KIND_CONVERSION = 5,        /* a conversion, written by the advertiser */
    GKX_KIND_CONVERSION_STATUS = 6, /* a conversion's status changes */
    GKX_KIND_ACK = 7,               /* countersigns the counterparty's chain */
    GKX_KIND_CLOSE = 8,             /* ends the partnership */
} gkx_kind_t;

/* Lowest and highest kind this version knows; others are rejected. */
#define GKX_KIND_MIN GKX_KIND_GENESIS
#define GKX_KIND_MAX GKX_KIND_CLOSE

/* Which side of a partnership a member is. */
typedef enum {
    GKX_ROLE_ADVERTISER = 1,
    GKX_ROLE_PUBLISHER = 2,
} gkx_role_t;

/* Returns "genesis", "edit", ... or NULL for an unknown kind. */
const char *gkx_kind_name (int kind);

/* Returns "advertiser", "publisher" or NULL for an unknown role. */
const char *gkx_role_name (int role);

/* Parses "advertiser" or "publisher"; returns GKX_OK or GKX_EINVAL. */
int gkx_role_parse (const char *text, int *role_p);

#ifdef __cplusplus
}
#endif

#endif
