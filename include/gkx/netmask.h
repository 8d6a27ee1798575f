/*  netmask - a list of IPv4 and IPv6 networks, and whether an address is in it.
    Part of gokart-exchange; MIT licence.

    The postback endpoint's allow list ([postback] allow_from): networks in
    CIDR notation ("10.0.0.0/8", "2001:db8::/32") or bare addresses
    ("192.168.1.7" is 192.168.1.7/32, "::1" is ::1/128). Addresses are parsed
    with inet_pton only. A network with bits set past its prefix is refused
    rather than silently widened or narrowed, since "10.0.0.1/8" is as likely a
    typo for 10.0.0.1/32 as for 10.0.0.0/8. An IPv4-mapped IPv6 address
    (::ffff:a.b.c.d, what an IPv6 socket reports for an IPv4 client) is
    matched against the IPv4 networks, and a network written inside
    ::ffff:0:0/96 is kept as the IPv4 network it stands for, so the two
    spellings always agree.
*/
#ifndef GKX_NETMASK_H_INCLUDED
#define GKX_NETMASK_H_INCLUDED

#include <gkx/error.h>

#include <stddef.h>
#include <sys/socket.h>

#ifdef __cplusplus
extern "C" {
#endif

/* A list of networks. */
typedef struct gkx_netmask gkx_netmask_t;

/* Returns a new, empty list (which contains no address). */
gkx_netmask_t *gkx_netmask_new (void);

/* Frees; accepts NULL; sets *self_p to NULL. */
void gkx_netmask_destroy (gkx_netmask_t **self_p);

/* Parses one word, "ADDRESS" or "ADDRESS/PREFIX" (IPv4 prefix 0-32, IPv6
   0-128), and appends the network to the list. Returns GKX_OK, or GKX_EINVAL
   with errbuf quoting the word and saying why: not an IPv4 or IPv6 address,
   a prefix length out of range, or host bits set (with the network meant,
   e.g. "10.0.0.1/8" has host bits set; did you mean 10.0.0.0/8?). The list
   is unchanged on failure. */
GKX_NODISCARD int gkx_netmask_add (gkx_netmask_t *self, const char *word, char *errbuf);

/* Returns the number of networks in the list. */
size_t gkx_netmask_count (const gkx_netmask_t *self);

/* Returns 1 when the address sa (AF_INET or AF_INET6; the port is ignored)
   lies in one of the list's networks, else 0 (also for other families). An
   IPv4-mapped IPv6 address is matched as the IPv4 address it carries. */
int gkx_netmask_contains (const gkx_netmask_t *self, const struct sockaddr *sa);

#ifdef __cplusplus
}
#endif

#endif
