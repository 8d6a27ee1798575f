/*  netmask - a list of IPv4 and IPv6 networks, and whether an address is in it.
    Part of gokart-exchange; MIT licence.

    Each network is kept as its address bytes in network order (4 for IPv4,
    16 for IPv6) and a prefix length; a test compares the first prefix bits.
    Lists are a handful of entries long, so a linear scan is all it needs.
*/
#include <gkx/alloc.h>
#include <gkx/netmask.h>

#include <arpa/inet.h>
#include <assert.h>
#include <netinet/in.h>
#include <stdint.h>
#include <string.h>

/* Bytes of an IPv4 and of an IPv6 address. */
#define S_V4_BYTES 4
#define S_V6_BYTES 16
/* Bits of an IPv4 and of an IPv6 address. */
#define S_V4_BITS (8 * S_V4_BYTES)
#define S_V6_BITS (8 * S_V6_BYTES)
/* Most digits in a prefix length. */
#define S_PREFIX_DIGITS 3
/* Longest piece of a bad word quoted in a message. */
#define S_QUOTE_MAX 64
/* Offset of the IPv4 address inside an IPv4-mapped IPv6 address, and the
   prefix length of ::ffff:0:0/96. */
#define S_MAPPED_OFFSET (S_V6_BYTES - S_V4_BYTES)
#define S_MAPPED_BITS (8 * S_MAPPED_OFFSET)

/* One network. */
typedef struct {
    int family;                /* AF_INET or AF_INET6 */
    uint8_t bytes[S_V6_BYTES]; /* the network's address; S_V4_BYTES used for AF_INET */
    unsigned prefix;           /* leading bits that must match */
} s_net_t;

struct gkx_netmask {
    s_net_t *nets; /* the networks, in the order added */
    size_t count;  /* entries in nets */
};

/* The first 12 bytes of every IPv4-mapped IPv6 address. */
static const uint8_t s_mapped_head[S_MAPPED_OFFSET] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

gkx_netmask_t *
gkx_netmask_new (void)
{
    return gkx_zalloc (sizeof (gkx_netmask_t));
}

void
gkx_netmask_destroy (gkx_netmask_t **self_p)
{
    if (!self_p || !*self_p) {
        return;
    }
    gkx_free ((*self_p)->nets);
    gkx_free (*self_p);
    *self_p = NULL;
}

/* Returns 1 when the first bits of a and b agree. */
static int
s_prefix_equal (const uint8_t *a, const uint8_t *b, unsigned bits)
{
    size_t whole = bits / 8;
    if (memcmp (a, b, whole) != 0) {
        return 0;
    }
    unsigned rest = bits % 8;
    if (rest == 0) {
        return 1;
    }
    uint8_t mask = (uint8_t) (0xff << (8 - rest));
    return (a[whole] & mask) == (b[whole] & mask);
}

/* Clears every bit of bytes (len of them) past the first bits; returns 1
   when any was set. */
static int
s_clear_host_bits (uint8_t *bytes, size_t len, unsigned bits)
{
    int any = 0;
    for (size_t i = 0; i < len; i++) {
        unsigned keep = bits >= 8 * (i + 1) ? 8 : bits > 8 * i ? bits - 8 * (unsigned) i : 0;
        uint8_t mask = (uint8_t) (keep == 0 ? 0 : 0xff << (8 - keep));
        if (bytes[i] & (uint8_t)~mask) {
            any = 1;
        }
        bytes[i] &= mask;
    }
    return any;
}

int
gkx_netmask_add (gkx_netmask_t *self, const char *word, char *errbuf)
{
    assert (self);
    assert (word);
    if (*word == '\0') {
        return gkx_fail (errbuf, GKX_EINVAL, "an empty network: write ADDRESS or ADDRESS/PREFIX");
    }
    const char *slash = strchr (word, '/');
    size_t address_len = slash ? (size_t) (slash - word) : strlen (word);
    char address[INET6_ADDRSTRLEN];
    s_net_t net;
    memset (&net, 0, sizeof net);
    int parsed = 0;
    if (address_len < sizeof address) {
        memcpy (address, word, address_len);
        address[address_len] = '\0';
        if (inet_pton (AF_INET, address, net.bytes) == 1) {
            net.family = AF_INET;
            parsed = 1;
        }
        else if (inet_pton (AF_INET6, address, net.bytes) == 1) {
            net.family = AF_INET6;
            parsed = 1;
        }
    }
    if (!parsed) {
        return gkx_fail (errbuf, GKX_EINVAL, "\"%.*s\" is not an IPv4 or IPv6 address%s",
                         S_QUOTE_MAX, word, slash ? " before the '/'" : "");
    }
    unsigned bits = net.family == AF_INET ? S_V4_BITS : S_V6_BITS;
    net.prefix = bits;
    if (slash) {
        const char *digits = slash + 1;
        size_t count = strspn (digits, "0123456789");
        unsigned prefix = 0;
        for (size_t i = 0; i < count && i < S_PREFIX_DIGITS; i++) {
            prefix = prefix * 10 + (unsigned) (digits[i] - '0');
        }
        if (count == 0 || count > S_PREFIX_DIGITS || digits[count] != '\0' || prefix > bits) {
            return gkx_fail (errbuf, GKX_EINVAL,
                             "\"%.*s\": the prefix length after '/' must be a number from 0 "
                             "to %u for %s",
                             S_QUOTE_MAX, word, bits, net.family == AF_INET ? "IPv4" : "IPv6");
        }
        net.prefix = prefix;
    }
    size_t len = net.family == AF_INET ? S_V4_BYTES : S_V6_BYTES;
    uint8_t masked[S_V6_BYTES];
    memcpy (masked, net.bytes, sizeof masked);
    if (s_clear_host_bits (masked, len, net.prefix)) {
        char meant[INET6_ADDRSTRLEN];
        inet_ntop (net.family, masked, meant, sizeof meant);
        return gkx_fail (errbuf, GKX_EINVAL, "\"%s\" has host bits set; did you mean %s/%u?", word,
                         meant, net.prefix);
    }
    /* ::ffff:a.b.c.d/96+n is the IPv4 network a.b.c.d/n. */
    if (net.family == AF_INET6 && net.prefix >= S_MAPPED_BITS
        && memcmp (net.bytes, s_mapped_head, sizeof s_mapped_head) == 0) {
        memmove (net.bytes, net.bytes + S_MAPPED_OFFSET, S_V4_BYTES);
        memset (net.bytes + S_V4_BYTES, 0, S_V6_BYTES - S_V4_BYTES);
        net.family = AF_INET;
        net.prefix -= S_MAPPED_BITS;
    }
    self->nets = gkx_realloc (self->nets, (self->count + 1) * sizeof *self->nets);
    self->nets[self->count++] = net;
    return GKX_OK;
}

size_t
gkx_netmask_count (const gkx_netmask_t *self)
{
    assert (self);
    return self->count;
}

int
gkx_netmask_contains (const gkx_netmask_t *self, const struct sockaddr *sa)
{
    assert (self);
    assert (sa);
    int family;
    const uint8_t *bytes;
    if (sa->sa_family == AF_INET) {
        family = AF_INET;
        bytes = (const uint8_t *)&((const struct sockaddr_in *)sa)->sin_addr;
    }
    else if (sa->sa_family == AF_INET6) {
        family = AF_INET6;
        bytes = (const uint8_t *)&((const struct sockaddr_in6 *)sa)->sin6_addr;
        if (memcmp (bytes, s_mapped_head, sizeof s_mapped_head) == 0) {
            family = AF_INET;
            bytes += S_MAPPED_OFFSET;
        }
    }
    else {
        return 0;
    }
    for (size_t i = 0; i < self->count; i++) {
        const s_net_t *net = &self->nets[i];
        if (net->family == family && s_prefix_equal (net->bytes, bytes, net->prefix)) {
            return 1;
        }
    }
    return 0;
}
