/*  codec - strict canonical msgpack for signed data.
    Part of gokart-exchange; MIT licence.

    Everything that is signed (entries, cards) is msgpack in exactly one byte
    form per value, so a hash or a signature means one thing only. The codec
    decodes with msgpack-c and then holds the bytes to these rules:
    - one value and nothing after it;
    - no floats; strings valid UTF-8; map keys unique strings sorted bytewise
      (memcmp on the common length, then shorter first);
    - sizes within the GKX_CODEC_* limits, checked before msgpack-c allocates;
    - the bytes equal msgpack-c's own re-encoding of what was read (smallest
      integer, string, array and map headers).
    Canonical maps are written in sorted key order by the gkx_codec_pack_*
    helpers' callers; gkx_codec_sort_map puts a decoded map in that order.
*/
#ifndef GKX_CODEC_H_INCLUDED
#define GKX_CODEC_H_INCLUDED

#include <gkx/error.h>

#include <msgpack.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Deepest nesting of arrays and maps accepted. */
#define GKX_CODEC_MAX_DEPTH 16
/* Longest string or bin accepted, in bytes. */
#define GKX_CODEC_MAX_STRING_BYTES 16384
/* Most elements of one array or map accepted. */
#define GKX_CODEC_MAX_ITEMS 4096

/* Decodes exactly one canonical value from buf into obj, whose memory lives
   in zone (the caller's; msgpack_zone_init / msgpack_zone_destroy). `what`
   names the value in messages ("entry", "card"). Returns GKX_OK, or
   GKX_EDECODE (malformed, truncated), GKX_ETRAILING, GKX_ETOOBIG, GKX_EFLOAT,
   GKX_EUTF8, GKX_EMAPKEY, GKX_ENONCANON with errbuf naming the path. */
GKX_NODISCARD int gkx_codec_decode (msgpack_object *obj, msgpack_zone *zone,
                                    const uint8_t *buf, size_t len,
                                    const char *what, char *errbuf);

/* Finds the length of the one msgpack value at the start of buf (len bytes)
   without decoding it, bounding counts and depth as gkx_codec_decode does.
   Returns GKX_OK with *value_len set, or GKX_EDECODE, GKX_ETOOBIG, GKX_ETYPE. */
GKX_NODISCARD int gkx_codec_value_length (const uint8_t *buf, size_t len, size_t *value_len,
                                          const char *what, char *errbuf);

/* Checks a decoded value against the rules above except byte equality (for
   values built in memory before they are packed). path names the value in
   messages. Returns as gkx_codec_decode. */
GKX_NODISCARD int gkx_codec_check (const msgpack_object *obj, const char *path,
                                   char *errbuf);

/* Returns 1 when s (len bytes) is valid UTF-8 without overlongs, surrogates
   or code points above U+10FFFF, else 0. */
int gkx_codec_is_utf8 (const char *s, size_t len);

/* Orders two map keys the canonical way; returns <0, 0 or >0 like memcmp. */
int gkx_codec_key_compare (const char *a, size_t a_len, const char *b,
                           size_t b_len);

/* Looks up key in a map object; returns the value or NULL. */
const msgpack_object *gkx_codec_map_get (const msgpack_object *map,
                                         const char *key);

/* Packs a NUL-terminated string. */
void gkx_codec_pack_cstr (msgpack_packer *pk, const char *s);

/* Packs len bytes as bin. */
void gkx_codec_pack_bin (msgpack_packer *pk, const void *data, size_t len);

#ifdef __cplusplus
}
#endif

#endif
