/*  codec - strict canonical msgpack for signed data.
    Part of gokart-exchange; MIT licence.

    msgpack-c allocates an array's or map's slots from the count in its
    header before it reads the elements, so a 5-byte header could ask for
    gigabytes. s_prescan walks the headers first and refuses counts that
    the remaining bytes cannot hold, and nesting deeper than the limit;
    only then does msgpack-c decode. The same walk notes any header longer
    than msgpack-c's packer would write (the canonical form: the shortest
    encoding of each integer, length and count); re-encoding every value to
    compare bytes cost more than decoding it.
*/
#include <gkx/codec.h>

#include <stdbool.h>
#include <stdio.h>
#include <string.h>

/* Reads a big-endian unsigned integer of n bytes. */
static uint64_t
s_read_be (const uint8_t *p, size_t n)
{
    uint64_t value = 0;
    for (size_t i = 0; i < n; i++) {
        value = (value << 8) | p[i];
    }
    return value;
}

/* Whether value (an unsigned integer, or the length or count a header
   holds) is written with tag by msgpack-c's packer, which takes the
   shortest form. Signed integers: s_signed_is_shortest. */
static bool
s_is_shortest (uint8_t tag, uint64_t value)
{
    switch (tag) {
        case 0xcc: return value > 0x7f;                 /* else a positive fixint */
        case 0xd9: return value > 0x1f;                 /* else a fixstr */
        case 0xdc: case 0xde: return value > 0x0f;      /* else a fixarray, fixmap */
        case 0xcd: case 0xc5: case 0xda: return value > 0xff;
        case 0xce: case 0xc6: case 0xdb: case 0xdd: case 0xdf: return value > 0xffff;
        case 0xcf: return value > 0xffffffffULL;
        default: return true;                           /* bin 8 and one-byte forms */
    }
}

/* Whether the signed integer of tag (0xd0..0xd3) at p is negative and
   needs that width: msgpack-c packs a value >= 0 as unsigned, and a
   negative one in the fewest bytes. */
static bool
s_signed_is_shortest (uint8_t tag, const uint8_t *p)
{
    size_t n = (size_t) 1 << (tag - 0xd0);
    uint64_t raw = s_read_be (p, n);
    int64_t v = n == 8 ? (int64_t) raw : (int64_t) (raw | (~(uint64_t) 0 << (8 * n)));
    if (!(raw >> (8 * n - 1) & 1)) {
        return false;   /* not negative */
    }
    switch (tag) {
        case 0xd0: return v < -32;
        case 0xd1: return v < -128;
        case 0xd2: return v < -32768;
        default: return v < -2147483648LL;
    }
}

/* Walks one value's headers at buf[*pos], bounding counts and depth. Sets
   *longer (when not NULL and not yet set) to 1 + the offset of the first
   header longer than its canonical form. */
static int
s_prescan (const uint8_t *buf, size_t len, size_t *pos, int depth, size_t *longer,
           const char *what, char *errbuf)
{
    if (depth > GKX_CODEC_MAX_DEPTH) {
        return gkx_fail (errbuf, GKX_ETOOBIG, "%s: nested deeper than %d levels",
                         what, GKX_CODEC_MAX_DEPTH);
    }
    if (*pos >= len) {
        return gkx_fail (errbuf, GKX_EDECODE, "%s: truncated at byte %zu", what, *pos);
    }
    uint8_t tag = buf[(*pos)++];
    size_t head = 0;     /* bytes of length/count after the tag */
    uint64_t items = 0;  /* elements that follow (map: 2 per pair) */
    uint64_t payload = 0;/* raw bytes that follow */

    if (tag <= 0x7f || tag >= 0xe0 || tag == 0xc0 || tag == 0xc2 || tag == 0xc3) {
        return GKX_OK;
    }
    if ((tag & 0xf0) == 0x80) {
        items = 2 * (uint64_t) (tag & 0x0f);
    }
    else if ((tag & 0xf0) == 0x90) {
        items = tag & 0x0f;
    }
    else if ((tag & 0xe0) == 0xa0) {
        payload = tag & 0x1f;
    }
    else {
        switch (tag) {
            case 0xc4: case 0xd9: head = 1; break;
            case 0xc5: case 0xda: head = 2; break;
            case 0xc6: case 0xdb: head = 4; break;
            case 0xcc: case 0xd0: payload = 1; break;
            case 0xcd: case 0xd1: payload = 2; break;
            case 0xca: case 0xce: case 0xd2: payload = 4; break;
            case 0xcb: case 0xcf: case 0xd3: payload = 8; break;
            case 0xdc: case 0xde: head = 2; break;
            case 0xdd: case 0xdf: head = 4; break;
            case 0xd4: payload = 2; break;
            case 0xd5: payload = 3; break;
            case 0xd6: payload = 5; break;
            case 0xd7: payload = 9; break;
            case 0xd8: payload = 17; break;
            case 0xc7: case 0xc8: case 0xc9:
                return gkx_fail (errbuf, GKX_ETYPE, "%s: ext types are not allowed", what);
            default:
                return gkx_fail (errbuf, GKX_EDECODE, "%s: invalid msgpack byte 0x%02x at %zu",
                                 what, tag, *pos - 1);
        }
        if (head) {
            if (len - *pos < head) {
                return gkx_fail (errbuf, GKX_EDECODE, "%s: truncated at byte %zu", what, *pos);
            }
            uint64_t count = s_read_be (buf + *pos, head);
            *pos += head;
            if (tag == 0xdc || tag == 0xdd) {
                items = count;
            }
            else if (tag == 0xde || tag == 0xdf) {
                items = 2 * count;
            }
            else {
                payload = count;
            }
        }
    }
    if (payload > len - *pos) {
        return gkx_fail (errbuf, GKX_EDECODE, "%s: truncated at byte %zu", what, *pos);
    }
    if (longer && !*longer) {
        bool shortest = true;
        if (head) {
            shortest = s_is_shortest (tag, s_read_be (buf + *pos - head, head));
        }
        else if (tag >= 0xcc && tag <= 0xcf) {
            shortest = s_is_shortest (tag, s_read_be (buf + *pos, payload));
        }
        else if (tag >= 0xd0 && tag <= 0xd3) {
            shortest = s_signed_is_shortest (tag, buf + *pos);
        }
        if (!shortest) {
            *longer = *pos - head;   /* 1 + the tag's offset */
        }
    }
    *pos += payload;
    if (items > len - *pos) {
        return gkx_fail (errbuf, GKX_EDECODE, "%s: %llu elements cannot fit in %zu bytes",
                         what, (unsigned long long) items, len - *pos);
    }
    for (uint64_t i = 0; i < items; i++) {
        int rc = s_prescan (buf, len, pos, depth + 1, longer, what, errbuf);
        if (rc != GKX_OK) {
            return rc;
        }
    }
    return GKX_OK;
}

int
gkx_codec_is_utf8 (const char *s, size_t len)
{
    const uint8_t *p = (const uint8_t *) s;
    size_t i = 0;
    while (i < len) {
        uint8_t c = p[i];
        if (c < 0x80) {
            i++;
            continue;
        }
        size_t n;
        uint32_t cp;
        uint32_t min;
        if ((c & 0xe0) == 0xc0) {
            n = 2; cp = c & 0x1f; min = 0x80;
        }
        else if ((c & 0xf0) == 0xe0) {
            n = 3; cp = c & 0x0f; min = 0x800;
        }
        else if ((c & 0xf8) == 0xf0) {
            n = 4; cp = c & 0x07; min = 0x10000;
        }
        else {
            return 0;
        }
        if (len - i < n) {
            return 0;
        }
        for (size_t k = 1; k < n; k++) {
            if ((p[i + k] & 0xc0) != 0x80) {
                return 0;
            }
            cp = (cp << 6) | (p[i + k] & 0x3f);
        }
        if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) {
            return 0;
        }
        i += n;
    }
    return 1;
}

int
gkx_codec_key_compare (const char *a, size_t a_len, const char *b, size_t b_len)
{
    size_t common = a_len < b_len ? a_len : b_len;
    int cmp = common ? memcmp (a, b, common) : 0;
    if (cmp != 0) {
        return cmp;
    }
    return (a_len > b_len) - (a_len < b_len);
}

/* Where a value sits, as a chain of stack frames: the path text ("entry.body[3].name") is only
   built when a check fails, since formatting it for every value cost more than the check itself. */
typedef struct s_where {
    const struct s_where *parent;
    const char *root;       /* the caller's path; set in the outermost frame only */
    const char *key;        /* map key, or NULL for an array index */
    size_t key_len;
    uint32_t index;
} s_where_t;

/* Writes the path of `where` to out (at most out_len bytes with the NUL), truncating safely. */
static size_t
s_path (const s_where_t *where, char *out, size_t out_len)
{
    size_t used = where->parent ? s_path (where->parent, out, out_len) : 0;
    size_t room = out_len > used ? out_len - used : 0;
    int n;
    if (!where->parent) {
        n = snprintf (out, out_len, "%s", where->root);
    }
    else if (where->key) {
        int klen = where->key_len > 64 ? 64 : (int) where->key_len;
        n = snprintf (out + used, room, ".%.*s", klen, where->key);
    }
    else {
        n = snprintf (out + used, room, "[%u]", where->index);
    }
    size_t end = used + (n > 0 ? (size_t) n : 0);
    return end < out_len ? end : (out_len ? out_len - 1 : 0);
}

/* Checks one value at a nesting depth; see gkx_codec_check. */
static int
s_check (const msgpack_object *obj, const s_where_t *where, int depth, char *errbuf)
{
    char path[GKX_ERRBUF_BYTES];
#define S_PATH (s_path (where, path, sizeof path), path)
    if (depth > GKX_CODEC_MAX_DEPTH) {
        return gkx_fail (errbuf, GKX_ETOOBIG, "%s: nested deeper than %d levels", S_PATH,
                         GKX_CODEC_MAX_DEPTH);
    }
    switch (obj->type) {
        case MSGPACK_OBJECT_NIL:
        case MSGPACK_OBJECT_BOOLEAN:
        case MSGPACK_OBJECT_POSITIVE_INTEGER:
        case MSGPACK_OBJECT_NEGATIVE_INTEGER:
            return GKX_OK;
        case MSGPACK_OBJECT_FLOAT32:
        case MSGPACK_OBJECT_FLOAT64:
            return gkx_fail (errbuf, GKX_EFLOAT, "%s: floats are not allowed in signed data", S_PATH);
        case MSGPACK_OBJECT_STR:
            if (obj->via.str.size > GKX_CODEC_MAX_STRING_BYTES) {
                return gkx_fail (errbuf, GKX_ETOOBIG, "%s: string of %u bytes exceeds %d",
                                 S_PATH, obj->via.str.size, GKX_CODEC_MAX_STRING_BYTES);
            }
            if (!gkx_codec_is_utf8 (obj->via.str.ptr, obj->via.str.size)) {
                return gkx_fail (errbuf, GKX_EUTF8, "%s: string is not valid UTF-8", S_PATH);
            }
            return GKX_OK;
        case MSGPACK_OBJECT_BIN:
            if (obj->via.bin.size > GKX_CODEC_MAX_STRING_BYTES) {
                return gkx_fail (errbuf, GKX_ETOOBIG, "%s: bin of %u bytes exceeds %d",
                                 S_PATH, obj->via.bin.size, GKX_CODEC_MAX_STRING_BYTES);
            }
            return GKX_OK;
        case MSGPACK_OBJECT_ARRAY:
            if (obj->via.array.size > GKX_CODEC_MAX_ITEMS) {
                return gkx_fail (errbuf, GKX_ETOOBIG, "%s: array of %u elements exceeds %d",
                                 S_PATH, obj->via.array.size, GKX_CODEC_MAX_ITEMS);
            }
            for (uint32_t i = 0; i < obj->via.array.size; i++) {
                s_where_t child = {where, NULL, NULL, 0, i};
                int rc = s_check (&obj->via.array.ptr[i], &child, depth + 1, errbuf);
                if (rc != GKX_OK) {
                    return rc;
                }
            }
            return GKX_OK;
        case MSGPACK_OBJECT_MAP:
            if (obj->via.map.size > GKX_CODEC_MAX_ITEMS) {
                return gkx_fail (errbuf, GKX_ETOOBIG, "%s: map of %u entries exceeds %d",
                                 S_PATH, obj->via.map.size, GKX_CODEC_MAX_ITEMS);
            }
            for (uint32_t i = 0; i < obj->via.map.size; i++) {
                const msgpack_object_kv *kv = &obj->via.map.ptr[i];
                if (kv->key.type != MSGPACK_OBJECT_STR) {
                    return gkx_fail (errbuf, GKX_EMAPKEY, "%s: map key %u is not a string", S_PATH, i);
                }
                const char *key = kv->key.via.str.ptr;
                size_t key_len = kv->key.via.str.size;
                if (!gkx_codec_is_utf8 (key, key_len)) {
                    return gkx_fail (errbuf, GKX_EUTF8, "%s: map key %u is not valid UTF-8", S_PATH, i);
                }
                if (i > 0) {
                    const msgpack_object *prev = &obj->via.map.ptr[i - 1].key;
                    int cmp = gkx_codec_key_compare (prev->via.str.ptr, prev->via.str.size,
                                                     key, key_len);
                    if (cmp >= 0) {
                        return gkx_fail (errbuf, GKX_EMAPKEY, "%s: map key \"%.*s\" is %s",
                                         S_PATH, (int) (key_len > 64 ? 64 : key_len), key,
                                         cmp == 0 ? "duplicated" : "out of sorted order");
                    }
                }
                s_where_t child = {where, NULL, key, key_len, 0};
                int rc = s_check (&kv->val, &child, depth + 1, errbuf);
                if (rc != GKX_OK) {
                    return rc;
                }
            }
            return GKX_OK;
        default:
            return gkx_fail (errbuf, GKX_ETYPE, "%s: ext types are not allowed", S_PATH);
    }
#undef S_PATH
}

int
gkx_codec_check (const msgpack_object *obj, const char *path, char *errbuf)
{
    s_where_t root = {NULL, path, NULL, 0, 0};
    return s_check (obj, &root, 0, errbuf);
}

int
gkx_codec_decode (msgpack_object *obj, msgpack_zone *zone, const uint8_t *buf,
                  size_t len, const char *what, char *errbuf)
{
    size_t pos = 0;
    size_t longer = 0;
    int rc = s_prescan (buf, len, &pos, 0, &longer, what, errbuf);
    if (rc != GKX_OK) {
        return rc;
    }
    if (pos != len) {
        return gkx_fail (errbuf, GKX_ETRAILING, "%s: %zu trailing bytes after the value",
                         what, len - pos);
    }
    size_t off = 0;
    msgpack_unpack_return ret =
        msgpack_unpack ((const char *) buf, len, &off, zone, obj);
    if (ret != MSGPACK_UNPACK_SUCCESS) {
        return gkx_fail (errbuf, GKX_EDECODE, "%s: not well-formed msgpack", what);
    }
    rc = gkx_codec_check (obj, what, errbuf);
    if (rc != GKX_OK) {
        return rc;
    }
    if (longer) {
        return gkx_fail (errbuf, GKX_ENONCANON,
                         "%s: not the canonical encoding (an integer, string or "
                         "container header is longer than needed)", what);
    }
    return GKX_OK;
}

int
gkx_codec_value_length (const uint8_t *buf, size_t len, size_t *value_len, const char *what,
                        char *errbuf)
{
    size_t pos = 0;
    int rc = s_prescan (buf, len, &pos, 0, NULL, what, errbuf);
    if (rc == GKX_OK) {
        *value_len = pos;
    }
    return rc;
}

const msgpack_object *
gkx_codec_map_get (const msgpack_object *map, const char *key)
{
    if (map->type != MSGPACK_OBJECT_MAP) {
        return NULL;
    }
    size_t key_len = strlen (key);
    for (uint32_t i = 0; i < map->via.map.size; i++) {
        const msgpack_object *k = &map->via.map.ptr[i].key;
        if (k->type == MSGPACK_OBJECT_STR && k->via.str.size == key_len
            && memcmp (k->via.str.ptr, key, key_len) == 0) {
            return &map->via.map.ptr[i].val;
        }
    }
    return NULL;
}

void
gkx_codec_pack_cstr (msgpack_packer *pk, const char *s)
{
    size_t len = strlen (s);
    msgpack_pack_str (pk, len);
    msgpack_pack_str_body (pk, s, len);
}

void
gkx_codec_pack_bin (msgpack_packer *pk, const void *data, size_t len)
{
    msgpack_pack_bin (pk, len);
    msgpack_pack_bin_body (pk, data, len);
}
