/*  dirmsg - the directory protocol's messages, filters and addresses.
    Part of gokart-exchange; MIT licence.

    Headers go through the strict codec like the replication headers do
    (sync.c): a client or a directory cannot make the other allocate or
    parse more than the frame's bytes allow, and every field is checked for
    its type and size before it is copied into the fixed-size header.
*/
#include <gkx/codec.h>
#include <gkx/dirmsg.h>
#include <gkx/kind.h>

#include <assert.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Longest port, in digits, and the largest port. */
#define S_PORT_DIGITS 5
#define S_PORT_MAX 65535

/* Starts a header: an array of count fields, the type name and the rid. */
static void
s_begin (msgpack_packer *pk, msgpack_sbuffer *sbuf, size_t count, const char *type,
         uint64_t rid)
{
    msgpack_packer_init (pk, sbuf, msgpack_sbuffer_write);
    msgpack_pack_array (pk, count);
    gkx_codec_pack_cstr (pk, type);
    msgpack_pack_uint64 (pk, rid);
}

void
gkx_dirmsg_publish_encode (msgpack_sbuffer *sbuf, uint64_t rid)
{
    msgpack_packer pk;
    s_begin (&pk, sbuf, 2, "publish", rid);
}

void
gkx_dirmsg_list_encode (msgpack_sbuffer *sbuf, uint64_t rid, const gkx_dirmsg_filter_t *filter)
{
    msgpack_packer pk;
    s_begin (&pk, sbuf, 5, "list", rid);
    const char *role = filter->role ? gkx_role_name (filter->role) : "";
    gkx_codec_pack_cstr (&pk, role ? role : "");
    gkx_codec_pack_cstr (&pk, filter->vertical);
    gkx_codec_pack_cstr (&pk, filter->country);
}

void
gkx_dirmsg_withdraw_encode (msgpack_sbuffer *sbuf, uint64_t rid)
{
    msgpack_packer pk;
    s_begin (&pk, sbuf, 2, "withdraw", rid);
}

void
gkx_dirmsg_ok_encode (msgpack_sbuffer *sbuf, uint64_t rid)
{
    msgpack_packer pk;
    s_begin (&pk, sbuf, 2, "ok", rid);
}

void
gkx_dirmsg_error_encode (msgpack_sbuffer *sbuf, uint64_t rid, int code, const char *message)
{
    assert (message);
    msgpack_packer pk;
    s_begin (&pk, sbuf, 4, "error", rid);
    gkx_codec_pack_cstr (&pk, gkx_errname (code));
    size_t len = strlen (message);
    if (len > GKX_DIRMSG_MESSAGE_MAX_BYTES) {
        len = GKX_DIRMSG_MESSAGE_MAX_BYTES;
        /* Never cut inside a UTF-8 sequence. */
        while (len > 0 && ((unsigned char) message[len] & 0xc0) == 0x80) {
            len--;
        }
    }
    /* The decoder on the other side refuses a header that is not UTF-8. */
    if (!gkx_codec_is_utf8 (message, len)) {
        message = gkx_strerror (code);
        len = strlen (message);
    }
    msgpack_pack_str (&pk, len);
    msgpack_pack_str_body (&pk, message, len);
}

void
gkx_dirmsg_cards_encode (msgpack_sbuffer *sbuf, uint64_t rid, size_t count, int truncated)
{
    assert (count <= GKX_DIRMSG_MAX_CARDS);
    msgpack_packer pk;
    s_begin (&pk, sbuf, 4, "cards", rid);
    msgpack_pack_uint64 (&pk, count);
    if (truncated) {
        msgpack_pack_true (&pk);
    }
    else {
        msgpack_pack_false (&pk);
    }
}

/* Whether obj is the string s. */
static int
s_is_str (const msgpack_object *obj, const char *s)
{
    return obj->type == MSGPACK_OBJECT_STR && obj->via.str.size == strlen (s)
        && memcmp (obj->via.str.ptr, s, obj->via.str.size) == 0;
}

/* Copies a string field of at most max bytes, without NUL bytes, into out
   (max + 1 bytes). */
static int
s_copy_str (char *out, size_t max, const msgpack_object *obj, const char *field, char *errbuf)
{
    if (obj->type != MSGPACK_OBJECT_STR) {
        return gkx_fail (errbuf, GKX_ETYPE, "directory %s: expected a string", field);
    }
    if (obj->via.str.size > max) {
        return gkx_fail (errbuf, GKX_ETOOBIG, "directory %s: %u bytes exceeds %zu", field,
                         obj->via.str.size, max);
    }
    if (memchr (obj->via.str.ptr, '\0', obj->via.str.size)) {
        return gkx_fail (errbuf, GKX_EINVAL, "directory %s: contains a NUL byte", field);
    }
    memcpy (out, obj->via.str.ptr, obj->via.str.size);
    out[obj->via.str.size] = '\0';
    return GKX_OK;
}

/* Reads the fields of a list header after the rid. */
static int
s_read_list (gkx_dirmsg_t *out, const msgpack_object *f, char *errbuf)
{
    char role[16];
    char vertical[GKX_CARD_TEXT_MAX_BYTES + 1];
    char country[3];
    int rc = s_copy_str (role, sizeof role - 1, &f[2], "list.role", errbuf);
    if (rc == GKX_OK) {
        rc = s_copy_str (vertical, sizeof vertical - 1, &f[3], "list.vertical", errbuf);
    }
    if (rc == GKX_OK) {
        rc = s_copy_str (country, sizeof country - 1, &f[4], "list.country", errbuf);
    }
    if (rc == GKX_OK) {
        rc = gkx_dirmsg_filter_parse (&out->filter, role, vertical, country, errbuf);
    }
    return rc;
}

/* Reads the fields of a reply or request after the rid, by type. */
static int
s_read_fields (gkx_dirmsg_t *out, const msgpack_object *root, char *errbuf)
{
    const msgpack_object *f = root->via.array.ptr;
    size_t size = root->via.array.size;
    static const struct {
        const char *name;
        int type;
        size_t fields;
    } types[] = {
        {"publish", GKX_DIRMSG_PUBLISH, 2}, {"list", GKX_DIRMSG_LIST, 5},
        {"withdraw", GKX_DIRMSG_WITHDRAW, 2}, {"ok", GKX_DIRMSG_OK, 2},
        {"error", GKX_DIRMSG_ERROR, 4}, {"cards", GKX_DIRMSG_CARDS, 4},
    };
    for (size_t i = 0; i < sizeof types / sizeof types[0]; i++) {
        if (!s_is_str (&f[0], types[i].name)) {
            continue;
        }
        if (size != types[i].fields) {
            return gkx_fail (errbuf, GKX_ETYPE, "directory %s: expected %zu fields, got %zu",
                             types[i].name, types[i].fields, size);
        }
        out->type = types[i].type;
        if (f[1].type != MSGPACK_OBJECT_POSITIVE_INTEGER) {
            return gkx_fail (errbuf, GKX_ETYPE, "directory %s.rid: expected an unsigned integer",
                             types[i].name);
        }
        out->rid = f[1].via.u64;
        switch (out->type) {
            case GKX_DIRMSG_LIST: return s_read_list (out, f, errbuf);
            case GKX_DIRMSG_ERROR: {
                int rc = s_copy_str (out->code, GKX_DIRMSG_CODE_MAX_BYTES, &f[2], "error.code",
                                     errbuf);
                return rc == GKX_OK ? s_copy_str (out->message, GKX_DIRMSG_MESSAGE_MAX_BYTES,
                                                  &f[3], "error.message", errbuf)
                                    : rc;
            }
            case GKX_DIRMSG_CARDS:
                if (f[2].type != MSGPACK_OBJECT_POSITIVE_INTEGER
                    || f[3].type != MSGPACK_OBJECT_BOOLEAN) {
                    return gkx_fail (errbuf, GKX_ETYPE,
                                     "directory cards: expected [\"cards\", rid, count, "
                                     "truncated]");
                }
                if (f[2].via.u64 > GKX_DIRMSG_MAX_CARDS) {
                    return gkx_fail (errbuf, GKX_ETOOBIG, "directory cards: more than %d cards",
                                     GKX_DIRMSG_MAX_CARDS);
                }
                out->count = (size_t) f[2].via.u64;
                out->truncated = f[3].via.boolean;
                return GKX_OK;
            default: return GKX_OK;
        }
    }
    return gkx_fail (errbuf, GKX_ETYPE, "directory: unknown message type");
}

int
gkx_dirmsg_decode (gkx_dirmsg_t *out, const uint8_t *buf, size_t len, char *errbuf)
{
    assert (out);
    memset (out, 0, sizeof *out);
    if (len > GKX_DIRMSG_MAX_HEADER_BYTES) {
        return gkx_fail (errbuf, GKX_ETOOBIG, "directory: header of %zu bytes exceeds %d", len,
                         GKX_DIRMSG_MAX_HEADER_BYTES);
    }
    msgpack_zone zone;
    msgpack_zone_init (&zone, 1024);
    msgpack_object root;
    int rc = gkx_codec_decode (&root, &zone, buf, len, "directory", errbuf);
    if (rc == GKX_OK
        && (root.type != MSGPACK_OBJECT_ARRAY || root.via.array.size < 2
            || root.via.array.ptr[0].type != MSGPACK_OBJECT_STR)) {
        rc = gkx_fail (errbuf, GKX_ETYPE, "directory: expected [type, rid, ...]");
    }
    if (rc == GKX_OK) {
        rc = s_read_fields (out, &root, errbuf);
    }
    msgpack_zone_destroy (&zone);
    if (rc != GKX_OK) {
        memset (out, 0, sizeof *out);
    }
    return rc;
}

int
gkx_dirmsg_filter_parse (gkx_dirmsg_filter_t *filter, const char *role, const char *vertical,
                         const char *country, char *errbuf)
{
    assert (filter);
    memset (filter, 0, sizeof *filter);
    role = role ? role : "";
    vertical = vertical ? vertical : "";
    country = country ? country : "";
    if (*role && gkx_role_parse (role, &filter->role) != GKX_OK) {
        return gkx_fail (errbuf, GKX_EINVAL, "role: must be advertiser or publisher");
    }
    size_t len = strlen (vertical);
    if (len > GKX_CARD_TEXT_MAX_BYTES) {
        return gkx_fail (errbuf, GKX_EINVAL, "vertical: %zu bytes exceeds %d", len,
                         GKX_CARD_TEXT_MAX_BYTES);
    }
    if (!gkx_codec_is_utf8 (vertical, len)) {
        return gkx_fail (errbuf, GKX_EINVAL, "vertical: not valid UTF-8");
    }
    memcpy (filter->vertical, vertical, len + 1);
    if (*country) {
        int letters = strlen (country) == 2;
        for (size_t i = 0; letters && i < 2; i++) {
            char c = country[i];
            letters = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z');
            filter->country[i] = (char) (c >= 'a' ? c - 'a' + 'A' : c);
        }
        if (!letters) {
            memset (filter, 0, sizeof *filter);
            return gkx_fail (errbuf, GKX_EINVAL,
                             "country: \"%.16s\" is not an ISO 3166-1 alpha-2 code", country);
        }
    }
    return GKX_OK;
}

/* Compares two strings ignoring ASCII case; 1 when equal. */
static int
s_is_same_folded (const char *a, const char *b)
{
    for (; *a && *b; a++, b++) {
        char x = *a >= 'A' && *a <= 'Z' ? (char) (*a - 'A' + 'a') : *a;
        char y = *b >= 'A' && *b <= 'Z' ? (char) (*b - 'A' + 'a') : *b;
        if (x != y) {
            return 0;
        }
    }
    return *a == *b;
}

int
gkx_dirmsg_filter_is_matching (const gkx_dirmsg_filter_t *filter, const gkx_card_t *card)
{
    if (filter->role && gkx_card_role (card) != filter->role) {
        return 0;
    }
    int found = filter->vertical[0] == '\0';
    for (size_t i = 0; !found && i < gkx_card_verticals_count (card); i++) {
        found = s_is_same_folded (gkx_card_vertical (card, i), filter->vertical);
    }
    if (!found) {
        return 0;
    }
    found = filter->country[0] == '\0';
    for (size_t i = 0; !found && i < gkx_card_countries_count (card); i++) {
        found = strcmp (gkx_card_country (card, i), filter->country) == 0;
    }
    return found;
}

int
gkx_dirmsg_endpoint_check (const char *endpoint, char *errbuf)
{
    assert (endpoint);
    size_t len = strlen (endpoint);
    const char *colon = strrchr (endpoint, ':');
    const char *port = colon ? colon + 1 : "";
    size_t digits = strspn (port, "0123456789");
    if (len >= GKX_DIRMSG_ENDPOINT_BYTES || strncmp (endpoint, "tcp://", 6) != 0 || !colon
        || colon < endpoint + 7 || digits == 0 || digits > S_PORT_DIGITS || port[digits] != '\0'
        || atoi (port) < 1 || atoi (port) > S_PORT_MAX || strpbrk (endpoint, " \t")) {
        return gkx_fail (errbuf, GKX_EINVAL, "\"%.80s\" is not of the form tcp://host:port",
                         endpoint);
    }
    return GKX_OK;
}

int
gkx_dirmsg_address_parse (char endpoint[GKX_DIRMSG_ENDPOINT_BYTES],
                          uint8_t key[GKX_CURVE_KEY_BYTES], const char *text, char *errbuf)
{
    assert (endpoint && key && text);
    const char *at = strrchr (text, '@');
    if (!at) {
        return gkx_fail (errbuf, GKX_EINVAL,
                         "directory address \"%.80s\": expected tcp://host:port@KEY (KEY: the "
                         "directory's 64 hex digit key)",
                         text);
    }
    size_t endpoint_len = (size_t) (at - text);
    const char *hex = at + 1;
    size_t bin_len = 0;
    const char *end = NULL;
    if (strlen (hex) != 2 * GKX_CURVE_KEY_BYTES
        || sodium_hex2bin (key, GKX_CURVE_KEY_BYTES, hex, strlen (hex), NULL, &bin_len, &end) != 0
        || bin_len != GKX_CURVE_KEY_BYTES || *end != '\0') {
        return gkx_fail (errbuf, GKX_EINVAL,
                         "directory address \"%.80s\": the key after '@' must be 64 hex digits",
                         text);
    }
    if (endpoint_len >= GKX_DIRMSG_ENDPOINT_BYTES) {
        return gkx_fail (errbuf, GKX_EINVAL,
                         "directory address \"%.80s\": the endpoint before '@' must be "
                         "tcp://host:port",
                         text);
    }
    memcpy (endpoint, text, endpoint_len);
    endpoint[endpoint_len] = '\0';
    if (gkx_dirmsg_endpoint_check (endpoint, NULL) != GKX_OK) {
        endpoint[0] = '\0';
        return gkx_fail (errbuf, GKX_EINVAL,
                         "directory address \"%.80s\": the endpoint before '@' must be "
                         "tcp://host:port",
                         text);
    }
    return GKX_OK;
}

void
gkx_dirmsg_address_format (char out[GKX_DIRMSG_ADDRESS_BYTES], const char *endpoint,
                           const uint8_t key[GKX_CURVE_KEY_BYTES])
{
    char hex[2 * GKX_CURVE_KEY_BYTES + 1];
    sodium_bin2hex (hex, sizeof hex, key, GKX_CURVE_KEY_BYTES);
    snprintf (out, GKX_DIRMSG_ADDRESS_BYTES, "%.*s@%s", GKX_DIRMSG_ENDPOINT_BYTES - 1, endpoint,
              hex);
}
