/*  test_codec - strict canonical msgpack for signed data.
    Part of gokart-exchange; MIT licence.

    Every rejection of the codec has its own case that checks the exact code
    and the exact message; the positive cases show how a caller decodes,
    checks and packs values.
*/
#include "testutil.h"

#include <gkx/codec.h>

/* Asserts that an int expression equals a GKX_* code, naming both. */
#define ck_assert_rc(expr, code)                                                   \
    do {                                                                           \
        int rc_ = (expr);                                                          \
        ck_assert_msg (rc_ == (code), "got %s, expected %s", gkx_errname (rc_),    \
                       gkx_errname (code));                                        \
    } while (0)

/* The message of every ENONCANON rejection of a value named "x". */
#define NONCANON_MSG "x: not the canonical encoding (an integer, string or container " \
                     "header is longer than needed)"

/* Decodes buf as a value named "x" in a zone of its own; returns the code and
   leaves errbuf as the codec wrote it ("" when untouched). */
static int
s_decode (const uint8_t *buf, size_t len, char *errbuf)
{
    msgpack_zone zone;
    msgpack_zone_init (&zone, 1024);
    msgpack_object obj;
    errbuf[0] = '\0';
    int rc = gkx_codec_decode (&obj, &zone, buf, len, "x", errbuf);
    msgpack_zone_destroy (&zone);
    return rc;
}

/* Starts a packer writing into a fresh sbuffer. */
static void
s_packer (msgpack_sbuffer *sbuf, msgpack_packer *pk)
{
    msgpack_sbuffer_init (sbuf);
    msgpack_packer_init (pk, sbuf, msgpack_sbuffer_write);
}

/* Packs n nested arrays; the innermost holds a nil when with_leaf. */
static void
s_pack_nested_arrays (msgpack_sbuffer *sbuf, int n, int with_leaf)
{
    msgpack_packer pk;
    s_packer (sbuf, &pk);
    for (int i = 0; i < n; i++) {
        msgpack_pack_array (&pk, i == n - 1 && !with_leaf ? 0 : 1);
    }
    if (with_leaf) {
        msgpack_pack_nil (&pk);
    }
}

/* A canonical nested map decodes and reads back as written. */
START_TEST (test_decode_canonical_nested_map)
{
    static const uint8_t blob[2] = {0xde, 0xad};
    msgpack_sbuffer sbuf;
    msgpack_packer pk;
    s_packer (&sbuf, &pk);
    msgpack_pack_map (&pk, 2);
    gkx_codec_pack_cstr (&pk, "a");
    msgpack_pack_array (&pk, 6);
    msgpack_pack_uint64 (&pk, 1);
    msgpack_pack_int64 (&pk, -1);
    gkx_codec_pack_cstr (&pk, "x\xc3\xa9");
    msgpack_pack_true (&pk);
    msgpack_pack_nil (&pk);
    gkx_codec_pack_bin (&pk, blob, sizeof blob);
    gkx_codec_pack_cstr (&pk, "b");
    msgpack_pack_map (&pk, 2);
    gkx_codec_pack_cstr (&pk, "c");
    msgpack_pack_uint64 (&pk, 300);
    gkx_codec_pack_cstr (&pk, "cd");
    msgpack_pack_uint64 (&pk, UINT64_MAX);

    msgpack_zone zone;
    msgpack_zone_init (&zone, 1024);
    msgpack_object obj;
    char errbuf[GKX_ERRBUF_BYTES] = "";
    ck_assert_rc (gkx_codec_decode (&obj, &zone, (const uint8_t *) sbuf.data, sbuf.size,
                                    "x", errbuf),
                  GKX_OK);
    ck_assert_str_eq (errbuf, "");
    ck_assert_int_eq (obj.type, MSGPACK_OBJECT_MAP);
    ck_assert_uint_eq (obj.via.map.size, 2);

    const msgpack_object *a = gkx_codec_map_get (&obj, "a");
    ck_assert_ptr_nonnull (a);
    ck_assert_int_eq (a->type, MSGPACK_OBJECT_ARRAY);
    ck_assert_uint_eq (a->via.array.size, 6);
    ck_assert_uint_eq (a->via.array.ptr[0].via.u64, 1);
    ck_assert_int_eq (a->via.array.ptr[1].via.i64, -1);
    ck_assert_uint_eq (a->via.array.ptr[2].via.str.size, 3);
    ck_assert (memcmp (a->via.array.ptr[2].via.str.ptr, "x\xc3\xa9", 3) == 0);
    ck_assert (a->via.array.ptr[3].via.boolean);
    ck_assert_int_eq (a->via.array.ptr[4].type, MSGPACK_OBJECT_NIL);
    ck_assert_uint_eq (a->via.array.ptr[5].via.bin.size, 2);
    ck_assert (memcmp (a->via.array.ptr[5].via.bin.ptr, blob, 2) == 0);

    const msgpack_object *b = gkx_codec_map_get (&obj, "b");
    ck_assert_ptr_nonnull (b);
    ck_assert_uint_eq (gkx_codec_map_get (b, "c")->via.u64, 300);
    ck_assert_uint_eq (gkx_codec_map_get (b, "cd")->via.u64, UINT64_MAX);

    /* gkx_codec_check passes what gkx_codec_decode accepted. */
    ck_assert_rc (gkx_codec_check (&obj, "x", errbuf), GKX_OK);
    msgpack_zone_destroy (&zone);
    msgpack_sbuffer_destroy (&sbuf);
}
END_TEST

/* Scalars at the top level and empty containers are values of their own. */
START_TEST (test_decode_accepts_scalars_and_empty_containers)
{
    static const uint8_t cases[][3] = {
        {0x00}, {0x7f}, {0xff}, {0xc0}, {0xc2}, {0xc3}, {0x80}, {0x90}, {0xa0},
        {0xcc, 0x80}, {0xd0, 0x80}, {0xc4, 0x00},
    };
    static const size_t lens[] = {1, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 2};
    char errbuf[GKX_ERRBUF_BYTES];
    for (size_t i = 0; i < sizeof lens / sizeof lens[0]; i++) {
        ck_assert_msg (s_decode (cases[i], lens[i], errbuf) == GKX_OK, "case %zu: %s", i,
                       errbuf);
    }
}
END_TEST

START_TEST (test_truncated_empty_input)
{
    char errbuf[GKX_ERRBUF_BYTES];
    ck_assert_rc (s_decode ((const uint8_t *) "", 0, errbuf), GKX_EDECODE);
    ck_assert_str_eq (errbuf, "x: truncated at byte 0");
}
END_TEST

/* A fixstr announcing 3 bytes with only 2 present. */
START_TEST (test_truncated_string)
{
    static const uint8_t buf[] = {0xa3, 'a', 'b'};
    char errbuf[GKX_ERRBUF_BYTES];
    ck_assert_rc (s_decode (buf, sizeof buf, errbuf), GKX_EDECODE);
    ck_assert_str_eq (errbuf, "x: truncated at byte 1");
}
END_TEST

/* A str8 tag whose length byte is missing. */
START_TEST (test_truncated_length_header)
{
    static const uint8_t buf[] = {0xd9};
    char errbuf[GKX_ERRBUF_BYTES];
    ck_assert_rc (s_decode (buf, sizeof buf, errbuf), GKX_EDECODE);
    ck_assert_str_eq (errbuf, "x: truncated at byte 1");
}
END_TEST

/* A uint16 with one byte of its two. */
START_TEST (test_truncated_integer)
{
    static const uint8_t buf[] = {0xcd, 0x01};
    char errbuf[GKX_ERRBUF_BYTES];
    ck_assert_rc (s_decode (buf, sizeof buf, errbuf), GKX_EDECODE);
    ck_assert_str_eq (errbuf, "x: truncated at byte 1");
}
END_TEST

/* A fixarray of two elements holding one. */
START_TEST (test_truncated_array)
{
    static const uint8_t buf[] = {0x92, 0x01};
    char errbuf[GKX_ERRBUF_BYTES];
    ck_assert_rc (s_decode (buf, sizeof buf, errbuf), GKX_EDECODE);
    ck_assert_str_eq (errbuf, "x: 2 elements cannot fit in 1 bytes");
}
END_TEST

/* A fixarray of two elements whose second element is cut short. */
START_TEST (test_truncated_inside_array)
{
    static const uint8_t buf[] = {0x92, 0x01, 0xcd, 0x01};
    char errbuf[GKX_ERRBUF_BYTES];
    ck_assert_rc (s_decode (buf, sizeof buf, errbuf), GKX_EDECODE);
    ck_assert_str_eq (errbuf, "x: truncated at byte 3");
}
END_TEST

/* 0xc1 is the one byte msgpack never uses. */
START_TEST (test_invalid_byte_c1)
{
    static const uint8_t top[] = {0xc1};
    static const uint8_t nested[] = {0x92, 0x01, 0xc1};
    char errbuf[GKX_ERRBUF_BYTES];
    ck_assert_rc (s_decode (top, sizeof top, errbuf), GKX_EDECODE);
    ck_assert_str_eq (errbuf, "x: invalid msgpack byte 0xc1 at 0");
    ck_assert_rc (s_decode (nested, sizeof nested, errbuf), GKX_EDECODE);
    ck_assert_str_eq (errbuf, "x: invalid msgpack byte 0xc1 at 2");
}
END_TEST

/* ext8/16/32 are refused while their headers are scanned. */
START_TEST (test_ext_rejected)
{
    static const uint8_t ext8[] = {0xc7, 0x01, 0x05, 0x00};
    static const uint8_t ext16[] = {0xc8, 0x00, 0x01, 0x05, 0x00};
    static const uint8_t ext32[] = {0xc9, 0x00, 0x00, 0x00, 0x01, 0x05, 0x00};
    char errbuf[GKX_ERRBUF_BYTES];
    ck_assert_rc (s_decode (ext8, sizeof ext8, errbuf), GKX_ETYPE);
    ck_assert_str_eq (errbuf, "x: ext types are not allowed");
    ck_assert_rc (s_decode (ext16, sizeof ext16, errbuf), GKX_ETYPE);
    ck_assert_str_eq (errbuf, "x: ext types are not allowed");
    ck_assert_rc (s_decode (ext32, sizeof ext32, errbuf), GKX_ETYPE);
    ck_assert_str_eq (errbuf, "x: ext types are not allowed");
}
END_TEST

/* fixext values pass the header scan and are refused by the check, which
   names where they sit. */
START_TEST (test_fixext_rejected_with_path)
{
    static const uint8_t top[] = {0xd4, 0x05, 0x00};
    static const uint8_t in_map[] = {0x81, 0xa1, 'k', 0xd6, 0x05, 0x00, 0x00, 0x00, 0x00};
    char errbuf[GKX_ERRBUF_BYTES];
    ck_assert_rc (s_decode (top, sizeof top, errbuf), GKX_ETYPE);
    ck_assert_str_eq (errbuf, "x: ext types are not allowed");
    ck_assert_rc (s_decode (in_map, sizeof in_map, errbuf), GKX_ETYPE);
    ck_assert_str_eq (errbuf, "x.k: ext types are not allowed");
}
END_TEST

START_TEST (test_trailing_bytes)
{
    static const uint8_t one[] = {0x01, 0x02};
    static const uint8_t two[] = {0x90, 0xc0, 0xc0};
    char errbuf[GKX_ERRBUF_BYTES];
    ck_assert_rc (s_decode (one, sizeof one, errbuf), GKX_ETRAILING);
    ck_assert_str_eq (errbuf, "x: 1 trailing bytes after the value");
    ck_assert_rc (s_decode (two, sizeof two, errbuf), GKX_ETRAILING);
    ck_assert_str_eq (errbuf, "x: 2 trailing bytes after the value");
}
END_TEST

START_TEST (test_float32_rejected)
{
    static const uint8_t buf[] = {0xca, 0x3f, 0xc0, 0x00, 0x00};
    char errbuf[GKX_ERRBUF_BYTES];
    ck_assert_rc (s_decode (buf, sizeof buf, errbuf), GKX_EFLOAT);
    ck_assert_str_eq (errbuf, "x: floats are not allowed in signed data");
}
END_TEST

/* A float64 deep in a value is named by its path. */
START_TEST (test_float64_rejected_with_path)
{
    msgpack_sbuffer sbuf;
    msgpack_packer pk;
    s_packer (&sbuf, &pk);
    msgpack_pack_map (&pk, 1);
    gkx_codec_pack_cstr (&pk, "body");
    msgpack_pack_map (&pk, 1);
    gkx_codec_pack_cstr (&pk, "x");
    msgpack_pack_double (&pk, 1.5);

    msgpack_zone zone;
    msgpack_zone_init (&zone, 1024);
    msgpack_object obj;
    char errbuf[GKX_ERRBUF_BYTES];
    ck_assert_rc (gkx_codec_decode (&obj, &zone, (const uint8_t *) sbuf.data, sbuf.size,
                                    "entry", errbuf),
                  GKX_EFLOAT);
    ck_assert_str_eq (errbuf, "entry.body.x: floats are not allowed in signed data");
    msgpack_zone_destroy (&zone);
    msgpack_sbuffer_destroy (&sbuf);

    static const uint8_t in_array[] = {0x92, 0x01, 0xcb, 0x3f, 0xf8, 0, 0, 0, 0, 0, 0};
    ck_assert_rc (s_decode (in_array, sizeof in_array, errbuf), GKX_EFLOAT);
    ck_assert_str_eq (errbuf, "x[1]: floats are not allowed in signed data");
}
END_TEST

/* An overlong NUL (0xc0 0x80) in a string, at the top and as a map value. */
START_TEST (test_utf8_invalid_string)
{
    static const uint8_t top[] = {0xa2, 0xc0, 0x80};
    static const uint8_t in_map[] = {0x81, 0xa1, 'k', 0xa2, 0xed, 0xa0};
    char errbuf[GKX_ERRBUF_BYTES];
    ck_assert_rc (s_decode (top, sizeof top, errbuf), GKX_EUTF8);
    ck_assert_str_eq (errbuf, "x: string is not valid UTF-8");
    ck_assert_rc (s_decode (in_map, sizeof in_map, errbuf), GKX_EUTF8);
    ck_assert_str_eq (errbuf, "x.k: string is not valid UTF-8");
}
END_TEST

/* A map key that is not UTF-8 is named by its index. */
START_TEST (test_utf8_invalid_map_key)
{
    static const uint8_t first[] = {0x81, 0xa2, 0xc0, 0x80, 0x01};
    static const uint8_t second[] = {0x82, 0xa1, 'a', 0x01, 0xa1, 0xff, 0x02};
    char errbuf[GKX_ERRBUF_BYTES];
    ck_assert_rc (s_decode (first, sizeof first, errbuf), GKX_EUTF8);
    ck_assert_str_eq (errbuf, "x: map key 0 is not valid UTF-8");
    ck_assert_rc (s_decode (second, sizeof second, errbuf), GKX_EUTF8);
    ck_assert_str_eq (errbuf, "x: map key 1 is not valid UTF-8");
}
END_TEST

START_TEST (test_is_utf8_accepts_valid)
{
    ck_assert_int_eq (gkx_codec_is_utf8 ("", 0), 1);
    ck_assert_int_eq (gkx_codec_is_utf8 ("plain ascii", 11), 1);
    /* NUL is a valid code point; the length, not a terminator, bounds it. */
    ck_assert_int_eq (gkx_codec_is_utf8 ("a\0b", 3), 1);
    ck_assert_int_eq (gkx_codec_is_utf8 ("\xc2\x80", 2), 1);          /* U+0080 */
    ck_assert_int_eq (gkx_codec_is_utf8 ("\xdf\xbf", 2), 1);          /* U+07FF */
    ck_assert_int_eq (gkx_codec_is_utf8 ("\xe0\xa0\x80", 3), 1);      /* U+0800 */
    ck_assert_int_eq (gkx_codec_is_utf8 ("\xed\x9f\xbf", 3), 1);      /* U+D7FF */
    ck_assert_int_eq (gkx_codec_is_utf8 ("\xee\x80\x80", 3), 1);      /* U+E000 */
    ck_assert_int_eq (gkx_codec_is_utf8 ("\xef\xbf\xbf", 3), 1);      /* U+FFFF */
    ck_assert_int_eq (gkx_codec_is_utf8 ("\xf0\x90\x80\x80", 4), 1);  /* U+10000 */
    ck_assert_int_eq (gkx_codec_is_utf8 ("\xf4\x8f\xbf\xbf", 4), 1);  /* U+10FFFF */
    ck_assert_int_eq (gkx_codec_is_utf8 ("Gr\xc3\xbc\xc3\x9f \xe2\x82\xac \xf0\x9f\x8f\x8e",
                                         15),
                      1);
}
END_TEST

START_TEST (test_is_utf8_rejects_overlong)
{
    ck_assert_int_eq (gkx_codec_is_utf8 ("\xc0\x80", 2), 0);
    ck_assert_int_eq (gkx_codec_is_utf8 ("\xc1\xbf", 2), 0);
    ck_assert_int_eq (gkx_codec_is_utf8 ("\xe0\x80\x80", 3), 0);
    ck_assert_int_eq (gkx_codec_is_utf8 ("\xe0\x9f\xbf", 3), 0);
    ck_assert_int_eq (gkx_codec_is_utf8 ("\xf0\x80\x80\x80", 4), 0);
    ck_assert_int_eq (gkx_codec_is_utf8 ("\xf0\x8f\xbf\xbf", 4), 0);
}
END_TEST

START_TEST (test_is_utf8_rejects_surrogates)
{
    ck_assert_int_eq (gkx_codec_is_utf8 ("\xed\xa0\x80", 3), 0);   /* U+D800 */
    ck_assert_int_eq (gkx_codec_is_utf8 ("\xed\xbf\xbf", 3), 0);   /* U+DFFF */
    /* A CESU-8 style surrogate pair is two surrogates, not one code point. */
    ck_assert_int_eq (gkx_codec_is_utf8 ("\xed\xa0\xbd\xed\xb2\xa9", 6), 0);
}
END_TEST

START_TEST (test_is_utf8_rejects_above_max)
{
    ck_assert_int_eq (gkx_codec_is_utf8 ("\xf4\x90\x80\x80", 4), 0);  /* U+110000 */
    ck_assert_int_eq (gkx_codec_is_utf8 ("\xf7\xbf\xbf\xbf", 4), 0);  /* U+1FFFFF */
    ck_assert_int_eq (gkx_codec_is_utf8 ("\xf8\x88\x80\x80\x80", 5), 0);
    ck_assert_int_eq (gkx_codec_is_utf8 ("\xfe", 1), 0);
    ck_assert_int_eq (gkx_codec_is_utf8 ("\xff", 1), 0);
}
END_TEST

START_TEST (test_is_utf8_rejects_truncated_sequences)
{
    ck_assert_int_eq (gkx_codec_is_utf8 ("\xc3", 1), 0);
    ck_assert_int_eq (gkx_codec_is_utf8 ("\xe2\x82", 2), 0);
    ck_assert_int_eq (gkx_codec_is_utf8 ("\xf0\x9f\x8f", 3), 0);
    ck_assert_int_eq (gkx_codec_is_utf8 ("ok\xf0", 3), 0);
    /* The length bounds the scan: a valid sequence cut by len is invalid. */
    ck_assert_int_eq (gkx_codec_is_utf8 ("\xe2\x82\xac", 2), 0);
}
END_TEST

START_TEST (test_is_utf8_rejects_bad_continuation)
{
    ck_assert_int_eq (gkx_codec_is_utf8 ("\x80", 1), 0);          /* lone continuation */
    ck_assert_int_eq (gkx_codec_is_utf8 ("a\xbf", 2), 0);
    ck_assert_int_eq (gkx_codec_is_utf8 ("\xc3\x28", 2), 0);      /* continuation missing */
    ck_assert_int_eq (gkx_codec_is_utf8 ("\xe2\x28\xa1", 3), 0);
    ck_assert_int_eq (gkx_codec_is_utf8 ("\xf0\x9f\x8f\xc0", 4), 0);
}
END_TEST

START_TEST (test_map_key_not_string)
{
    static const uint8_t buf[] = {0x81, 0x01, 0x02};
    char errbuf[GKX_ERRBUF_BYTES];
    ck_assert_rc (s_decode (buf, sizeof buf, errbuf), GKX_EMAPKEY);
    ck_assert_str_eq (errbuf, "x: map key 0 is not a string");
}
END_TEST

START_TEST (test_map_key_duplicated)
{
    static const uint8_t buf[] = {0x82, 0xa1, 'a', 0x01, 0xa1, 'a', 0x02};
    char errbuf[GKX_ERRBUF_BYTES];
    ck_assert_rc (s_decode (buf, sizeof buf, errbuf), GKX_EMAPKEY);
    ck_assert_str_eq (errbuf, "x: map key \"a\" is duplicated");
}
END_TEST

/* Keys sort bytewise, shorter first on a common prefix, in nested maps too. */
START_TEST (test_map_key_unsorted)
{
    static const uint8_t swapped[] = {0x82, 0xa1, 'b', 0x01, 0xa1, 'a', 0x02};
    static const uint8_t longer_first[] = {0x82, 0xa2, 'a', 'a', 0x01, 0xa1, 'a', 0x02};
    static const uint8_t length_first[] = {0x82, 0xa1, 'b', 0x01, 0xa2, 'a', 'b', 0x02};
    static const uint8_t nested[] = {0x81, 0xa1, 'm', 0x82, 0xa1, 'b', 0x01, 0xa1, 'a', 0x02};
    static const uint8_t sorted[] = {0x83, 0xa1, 'a', 0x01, 0xa2, 'a', 'b', 0x02, 0xa1, 'b', 0x03};
    char errbuf[GKX_ERRBUF_BYTES];
    ck_assert_rc (s_decode (swapped, sizeof swapped, errbuf), GKX_EMAPKEY);
    ck_assert_str_eq (errbuf, "x: map key \"a\" is out of sorted order");
    ck_assert_rc (s_decode (longer_first, sizeof longer_first, errbuf), GKX_EMAPKEY);
    ck_assert_str_eq (errbuf, "x: map key \"a\" is out of sorted order");
    ck_assert_rc (s_decode (length_first, sizeof length_first, errbuf), GKX_EMAPKEY);
    ck_assert_str_eq (errbuf, "x: map key \"ab\" is out of sorted order");
    ck_assert_rc (s_decode (nested, sizeof nested, errbuf), GKX_EMAPKEY);
    ck_assert_str_eq (errbuf, "x.m: map key \"a\" is out of sorted order");
    ck_assert_rc (s_decode (sorted, sizeof sorted, errbuf), GKX_OK);
}
END_TEST

/* Packs a string or bin of len bytes of 'a'. */
static void
s_pack_blob (msgpack_sbuffer *sbuf, int as_bin, size_t len)
{
    msgpack_packer pk;
    s_packer (sbuf, &pk);
    char *data = malloc (len);
    ck_assert_ptr_nonnull (data);
    memset (data, 'a', len);
    if (as_bin) {
        msgpack_pack_bin (&pk, len);
        msgpack_pack_bin_body (&pk, data, len);
    }
    else {
        msgpack_pack_str (&pk, len);
        msgpack_pack_str_body (&pk, data, len);
    }
    free (data);
}

START_TEST (test_string_too_big)
{
    msgpack_sbuffer sbuf;
    char errbuf[GKX_ERRBUF_BYTES];
    s_pack_blob (&sbuf, 0, GKX_CODEC_MAX_STRING_BYTES);
    ck_assert_rc (s_decode ((const uint8_t *) sbuf.data, sbuf.size, errbuf), GKX_OK);
    msgpack_sbuffer_destroy (&sbuf);
    s_pack_blob (&sbuf, 0, GKX_CODEC_MAX_STRING_BYTES + 1);
    ck_assert_rc (s_decode ((const uint8_t *) sbuf.data, sbuf.size, errbuf), GKX_ETOOBIG);
    ck_assert_str_eq (errbuf, "x: string of 16385 bytes exceeds 16384");
    msgpack_sbuffer_destroy (&sbuf);
}
END_TEST

START_TEST (test_bin_too_big)
{
    msgpack_sbuffer sbuf;
    char errbuf[GKX_ERRBUF_BYTES];
    s_pack_blob (&sbuf, 1, GKX_CODEC_MAX_STRING_BYTES);
    ck_assert_rc (s_decode ((const uint8_t *) sbuf.data, sbuf.size, errbuf), GKX_OK);
    msgpack_sbuffer_destroy (&sbuf);
    s_pack_blob (&sbuf, 1, GKX_CODEC_MAX_STRING_BYTES + 1);
    ck_assert_rc (s_decode ((const uint8_t *) sbuf.data, sbuf.size, errbuf), GKX_ETOOBIG);
    ck_assert_str_eq (errbuf, "x: bin of 16385 bytes exceeds 16384");
    msgpack_sbuffer_destroy (&sbuf);
}
END_TEST

START_TEST (test_array_too_many_items)
{
    msgpack_sbuffer sbuf;
    msgpack_packer pk;
    char errbuf[GKX_ERRBUF_BYTES];
    for (int extra = 0; extra <= 1; extra++) {
        s_packer (&sbuf, &pk);
        msgpack_pack_array (&pk, GKX_CODEC_MAX_ITEMS + extra);
        for (int i = 0; i < GKX_CODEC_MAX_ITEMS + extra; i++) {
            msgpack_pack_nil (&pk);
        }
        int rc = s_decode ((const uint8_t *) sbuf.data, sbuf.size, errbuf);
        msgpack_sbuffer_destroy (&sbuf);
        if (extra) {
            ck_assert_rc (rc, GKX_ETOOBIG);
            ck_assert_str_eq (errbuf, "x: array of 4097 elements exceeds 4096");
        }
        else {
            ck_assert_rc (rc, GKX_OK);
        }
    }
}
END_TEST

START_TEST (test_map_too_many_items)
{
    msgpack_sbuffer sbuf;
    msgpack_packer pk;
    char errbuf[GKX_ERRBUF_BYTES];
    for (int extra = 0; extra <= 1; extra++) {
        s_packer (&sbuf, &pk);
        msgpack_pack_map (&pk, GKX_CODEC_MAX_ITEMS + extra);
        for (int i = 0; i < GKX_CODEC_MAX_ITEMS + extra; i++) {
            /* Fixed-width hex keys sort in numeric order. */
            char key[8];
            snprintf (key, sizeof key, "%04x", (unsigned) i);
            gkx_codec_pack_cstr (&pk, key);
            msgpack_pack_nil (&pk);
        }
        int rc = s_decode ((const uint8_t *) sbuf.data, sbuf.size, errbuf);
        msgpack_sbuffer_destroy (&sbuf);
        if (extra) {
            ck_assert_rc (rc, GKX_ETOOBIG);
            ck_assert_str_eq (errbuf, "x: map of 4097 entries exceeds 4096");
        }
        else {
            ck_assert_rc (rc, GKX_OK);
        }
    }
}
END_TEST

/* gkx_codec_check bounds nesting of values built in memory, too. */
START_TEST (test_check_bounds_depth_in_memory)
{
    msgpack_object levels[40];
    char errbuf[GKX_ERRBUF_BYTES];
    levels[39].type = MSGPACK_OBJECT_NIL;
    for (int i = 38; i >= 0; i--) {
        levels[i].type = MSGPACK_OBJECT_ARRAY;
        levels[i].via.array.size = 1;
        levels[i].via.array.ptr = &levels[i + 1];
    }
    ck_assert_int_eq (gkx_codec_check (&levels[0], "v", errbuf), GKX_ETOOBIG);
    ck_assert_str_eq (errbuf, "v[0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0]: nested deeper than 16 levels");
    ck_assert_int_eq (gkx_codec_check (&levels[39 - GKX_CODEC_MAX_DEPTH], "v", errbuf), GKX_OK);
}
END_TEST

/* A value may sit inside at most GKX_CODEC_MAX_DEPTH containers. */
START_TEST (test_nesting_too_deep)
{
    msgpack_sbuffer sbuf;
    char errbuf[GKX_ERRBUF_BYTES];

    /* A nil inside 16 arrays, and an empty 17th array in their place. */
    s_pack_nested_arrays (&sbuf, GKX_CODEC_MAX_DEPTH, 1);
    ck_assert_rc (s_decode ((const uint8_t *) sbuf.data, sbuf.size, errbuf), GKX_OK);
    msgpack_sbuffer_destroy (&sbuf);
    s_pack_nested_arrays (&sbuf, GKX_CODEC_MAX_DEPTH + 1, 0);
    ck_assert_rc (s_decode ((const uint8_t *) sbuf.data, sbuf.size, errbuf), GKX_OK);
    msgpack_sbuffer_destroy (&sbuf);

    /* A nil inside 17 arrays, and an empty array inside 17. */
    s_pack_nested_arrays (&sbuf, GKX_CODEC_MAX_DEPTH + 1, 1);
    ck_assert_rc (s_decode ((const uint8_t *) sbuf.data, sbuf.size, errbuf), GKX_ETOOBIG);
    ck_assert_str_eq (errbuf, "x: nested deeper than 16 levels");
    msgpack_sbuffer_destroy (&sbuf);
    s_pack_nested_arrays (&sbuf, GKX_CODEC_MAX_DEPTH + 2, 0);
    ck_assert_rc (s_decode ((const uint8_t *) sbuf.data, sbuf.size, errbuf), GKX_ETOOBIG);
    ck_assert_str_eq (errbuf, "x: nested deeper than 16 levels");
    msgpack_sbuffer_destroy (&sbuf);

    /* Far deeper than msgpack-c's own parser stack (32): still our code. */
    s_pack_nested_arrays (&sbuf, 1000, 1);
    ck_assert_rc (s_decode ((const uint8_t *) sbuf.data, sbuf.size, errbuf), GKX_ETOOBIG);
    ck_assert_str_eq (errbuf, "x: nested deeper than 16 levels");
    msgpack_sbuffer_destroy (&sbuf);

    /* Maps count as levels too: {"a": {"a": ... 1}} with 17 maps. */
    msgpack_packer pk;
    s_packer (&sbuf, &pk);
    for (int i = 0; i < GKX_CODEC_MAX_DEPTH + 1; i++) {
        msgpack_pack_map (&pk, 1);
        gkx_codec_pack_cstr (&pk, "a");
    }
    msgpack_pack_uint64 (&pk, 1);
    ck_assert_rc (s_decode ((const uint8_t *) sbuf.data, sbuf.size, errbuf), GKX_ETOOBIG);
    ck_assert_str_eq (errbuf, "x: nested deeper than 16 levels");
    msgpack_sbuffer_destroy (&sbuf);
}
END_TEST

/* A 6-byte buffer announcing 2^32-1 elements is refused from its header,
   before msgpack-c allocates a slot for each: the zone stays empty. */
START_TEST (test_huge_header_fails_fast)
{
    static const uint8_t array32[] = {0xdd, 0xff, 0xff, 0xff, 0xff, 0x00};
    static const uint8_t map32[] = {0xdf, 0xff, 0xff, 0xff, 0xff, 0x00};
    static const uint8_t str32[] = {0xdb, 0xff, 0xff, 0xff, 0xff, 0x00};
    static const uint8_t bin32[] = {0xc6, 0xff, 0xff, 0xff, 0xff, 0x00};
    msgpack_zone zone;
    msgpack_zone_init (&zone, 1024);
    msgpack_object obj;
    char errbuf[GKX_ERRBUF_BYTES];

    ck_assert_rc (gkx_codec_decode (&obj, &zone, array32, sizeof array32, "x", errbuf),
                  GKX_EDECODE);
    ck_assert_str_eq (errbuf, "x: 4294967295 elements cannot fit in 1 bytes");
    ck_assert (msgpack_zone_is_empty (&zone));
    ck_assert_rc (gkx_codec_decode (&obj, &zone, map32, sizeof map32, "x", errbuf),
                  GKX_EDECODE);
    ck_assert_str_eq (errbuf, "x: 8589934590 elements cannot fit in 1 bytes");
    ck_assert (msgpack_zone_is_empty (&zone));
    ck_assert_rc (gkx_codec_decode (&obj, &zone, str32, sizeof str32, "x", errbuf),
                  GKX_EDECODE);
    ck_assert_str_eq (errbuf, "x: truncated at byte 5");
    ck_assert_rc (gkx_codec_decode (&obj, &zone, bin32, sizeof bin32, "x", errbuf),
                  GKX_EDECODE);
    ck_assert_str_eq (errbuf, "x: truncated at byte 5");
    ck_assert (msgpack_zone_is_empty (&zone));
    msgpack_zone_destroy (&zone);
}
END_TEST

/* Integers take their shortest form: 5 is 0x05, -1 is 0xff. */
START_TEST (test_noncanonical_integer)
{
    static const uint8_t uint8_five[] = {0xcc, 0x05};
    static const uint8_t uint16_five[] = {0xcd, 0x00, 0x05};
    static const uint8_t uint64_five[] = {0xcf, 0, 0, 0, 0, 0, 0, 0, 0x05};
    static const uint8_t int8_five[] = {0xd0, 0x05};
    static const uint8_t int16_minus_one[] = {0xd1, 0xff, 0xff};
    static const uint8_t uint16_200[] = {0xcd, 0x00, 0xc8};
    char errbuf[GKX_ERRBUF_BYTES];
    ck_assert_rc (s_decode (uint8_five, sizeof uint8_five, errbuf), GKX_ENONCANON);
    ck_assert_str_eq (errbuf, NONCANON_MSG);
    ck_assert_rc (s_decode (uint16_five, sizeof uint16_five, errbuf), GKX_ENONCANON);
    ck_assert_str_eq (errbuf, NONCANON_MSG);
    ck_assert_rc (s_decode (uint64_five, sizeof uint64_five, errbuf), GKX_ENONCANON);
    ck_assert_str_eq (errbuf, NONCANON_MSG);
    ck_assert_rc (s_decode (int8_five, sizeof int8_five, errbuf), GKX_ENONCANON);
    ck_assert_str_eq (errbuf, NONCANON_MSG);
    ck_assert_rc (s_decode (int16_minus_one, sizeof int16_minus_one, errbuf), GKX_ENONCANON);
    ck_assert_str_eq (errbuf, NONCANON_MSG);
    ck_assert_rc (s_decode (uint16_200, sizeof uint16_200, errbuf), GKX_ENONCANON);
    ck_assert_str_eq (errbuf, NONCANON_MSG);
}
END_TEST

/* A three-byte string fits a fixstr; str8 or str16 is too long a header. */
START_TEST (test_noncanonical_string_header)
{
    static const uint8_t str8[] = {0xd9, 0x03, 'a', 'b', 'c'};
    static const uint8_t str16[] = {0xda, 0x00, 0x03, 'a', 'b', 'c'};
    static const uint8_t bin16[] = {0xc5, 0x00, 0x01, 0x00};
    char errbuf[GKX_ERRBUF_BYTES];
    ck_assert_rc (s_decode (str8, sizeof str8, errbuf), GKX_ENONCANON);
    ck_assert_str_eq (errbuf, NONCANON_MSG);
    ck_assert_rc (s_decode (str16, sizeof str16, errbuf), GKX_ENONCANON);
    ck_assert_str_eq (errbuf, NONCANON_MSG);
    ck_assert_rc (s_decode (bin16, sizeof bin16, errbuf), GKX_ENONCANON);
    ck_assert_str_eq (errbuf, NONCANON_MSG);
}
END_TEST

/* One element fits a fixarray or fixmap; array16 or map16 is too long. */
START_TEST (test_noncanonical_container_header)
{
    static const uint8_t array16[] = {0xdc, 0x00, 0x01, 0x01};
    static const uint8_t map16[] = {0xde, 0x00, 0x01, 0xa1, 'a', 0x01};
    static const uint8_t nested[] = {0x91, 0xdc, 0x00, 0x00};
    char errbuf[GKX_ERRBUF_BYTES];
    ck_assert_rc (s_decode (array16, sizeof array16, errbuf), GKX_ENONCANON);
    ck_assert_str_eq (errbuf, NONCANON_MSG);
    ck_assert_rc (s_decode (map16, sizeof map16, errbuf), GKX_ENONCANON);
    ck_assert_str_eq (errbuf, NONCANON_MSG);
    ck_assert_rc (s_decode (nested, sizeof nested, errbuf), GKX_ENONCANON);
    ck_assert_str_eq (errbuf, NONCANON_MSG);
}
END_TEST

/* Writes v big-endian in n bytes at p. */
static void
s_put_be (uint8_t *p, uint64_t v, size_t n)
{
    for (size_t i = n; i-- > 0;) {
        p[i] = (uint8_t) v;
        v >>= 8;
    }
}

/* Whether msgpack-c's packer writes the value of buf back to exactly buf:
   the definition of canonical the codec's header checks stand for. */
static bool
s_repacks_same (const uint8_t *buf, size_t len)
{
    msgpack_zone zone;
    msgpack_zone_init (&zone, 1024);
    msgpack_object obj;
    size_t off = 0;
    bool same = false;
    if (msgpack_unpack ((const char *) buf, len, &off, &zone, &obj) == MSGPACK_UNPACK_SUCCESS
        && off == len) {
        msgpack_sbuffer sbuf;
        msgpack_packer pk;
        s_packer (&sbuf, &pk);
        msgpack_pack_object (&pk, obj);
        same = sbuf.size == len && memcmp (sbuf.data, buf, len) == 0;
        msgpack_sbuffer_destroy (&sbuf);
    }
    msgpack_zone_destroy (&zone);
    return same;
}

/* Every header width with values at and around each width's bounds: the
   codec accepts an encoding exactly when msgpack-c's packer writes it back
   byte for byte. */
START_TEST (test_canonical_equals_repacking)
{
    static const uint64_t values[] = {
        0, 1, 5, 15, 16, 31, 32, 33, 127, 128, 255, 256, 300, 65535, 65536, 70000,
        0x7fffffffULL, 0x80000000ULL, 0xffffffffULL, 0x100000000ULL, 0x7fffffffffffffffULL,
        0x8000000000000000ULL, 0xffffffffffffffffULL};
    static const uint8_t int_tags[] = {0xcc, 0xcd, 0xce, 0xcf, 0xd0, 0xd1, 0xd2, 0xd3};
    static uint8_t buf[70000 + 16];
    char errbuf[GKX_ERRBUF_BYTES];
    size_t tried = 0;
    for (size_t t = 0; t < sizeof int_tags; t++) {
        size_t n = (size_t) 1 << (int_tags[t] & 0x03);
        for (size_t v = 0; v < sizeof values / sizeof values[0]; v++) {
            for (int negate = 0; negate < 2; negate++) {
                uint64_t value = negate ? (uint64_t) 0 - values[v] : values[v];
                buf[0] = int_tags[t];
                s_put_be (buf + 1, value, n);
                int rc = s_decode (buf, 1 + n, errbuf);
                ck_assert_msg ((rc == GKX_OK) == s_repacks_same (buf, 1 + n),
                               "tag 0x%02x value 0x%llx: codec says %s", int_tags[t],
                               (unsigned long long) value, gkx_errname (rc));
                tried++;
            }
        }
    }
    /* str, bin, array and map headers of every width, with as many bytes or
       nils as they announce (up to 70,000). */
    static const uint8_t len_tags[] = {0xd9, 0xda, 0xdb, 0xc4, 0xc5, 0xc6, 0xdc, 0xdd, 0xde, 0xdf};
    static const size_t head_bytes[] = {1, 2, 4, 1, 2, 4, 2, 4, 2, 4};
    memset (buf, 0, sizeof buf);
    for (size_t t = 0; t < sizeof len_tags; t++) {
        for (size_t v = 0; v < sizeof values / sizeof values[0] && values[v] <= 70000; v++) {
            size_t count = (size_t) values[v];
            size_t head = head_bytes[t];
            if (head == 1 && count > 0xff) {
                continue;
            }
            if (head == 2 && count > 0xffff) {
                continue;
            }
            bool is_map = len_tags[t] == 0xde || len_tags[t] == 0xdf;
            bool is_array = len_tags[t] == 0xdc || len_tags[t] == 0xdd;
            size_t body = count * (is_map ? 2 : 1);
            if (1 + head + body > sizeof buf || (is_map && count > 1)) {
                continue;   /* a map's keys must differ: one pair at most here */
            }
            buf[0] = len_tags[t];
            s_put_be (buf + 1, count, head);
            uint8_t fill = is_array ? 0xc0 : 'a';
            memset (buf + 1 + head, fill, body);
            if (is_map && count == 1) {
                buf[1 + head] = 0xa0;   /* key "" */
                buf[2 + head] = 0xc0;
                body = 2;
            }
            int rc = s_decode (buf, 1 + head + body, errbuf);
            if (rc == GKX_ETOOBIG) {
                continue;   /* over the codec's size limits, which come first */
            }
            ck_assert_msg ((rc == GKX_OK) == s_repacks_same (buf, 1 + head + body),
                           "tag 0x%02x count %zu: codec says %s", len_tags[t], count,
                           gkx_errname (rc));
            tried++;
        }
    }
    /* The one-byte forms and a nested value are canonical. */
    static const uint8_t nested[] = {0x92, 0xcd, 0x01, 0x00, 0x81, 0xa1, 'k', 0xd0, 0x80};
    ck_assert_rc (s_decode (nested, sizeof nested, errbuf), GKX_OK);
    ck_assert (s_repacks_same (nested, sizeof nested));
    ck_assert_uint_gt (tried, 300);
}
END_TEST

/* value_length measures the first value and ignores what follows it. */
START_TEST (test_value_length)
{
    static const uint8_t stream[] = {0x92, 0xa1, 'a', 0xcd, 0x01, 0x00, 0xc0, 0xc1};
    static const uint8_t scalar[] = {0x05};
    size_t value_len = 0;
    char errbuf[GKX_ERRBUF_BYTES] = "";
    ck_assert_rc (gkx_codec_value_length (stream, sizeof stream, &value_len, "x", errbuf),
                  GKX_OK);
    ck_assert_uint_eq (value_len, 6);
    ck_assert_rc (gkx_codec_value_length (scalar, sizeof scalar, &value_len, "x", errbuf),
                  GKX_OK);
    ck_assert_uint_eq (value_len, 1);
    ck_assert_str_eq (errbuf, "");
}
END_TEST

START_TEST (test_value_length_rejections)
{
    static const uint8_t truncated[] = {0x92, 0x01};
    static const uint8_t invalid[] = {0xc1};
    static const uint8_t ext[] = {0xc7, 0x01, 0x05, 0x00};
    static const uint8_t huge[] = {0xdd, 0xff, 0xff, 0xff, 0xff, 0x00};
    size_t value_len = 12345;
    char errbuf[GKX_ERRBUF_BYTES];
    ck_assert_rc (gkx_codec_value_length (truncated, sizeof truncated, &value_len, "frame",
                                          errbuf),
                  GKX_EDECODE);
    ck_assert_str_eq (errbuf, "frame: 2 elements cannot fit in 1 bytes");
    ck_assert_rc (gkx_codec_value_length (invalid, sizeof invalid, &value_len, "frame", errbuf),
                  GKX_EDECODE);
    ck_assert_str_eq (errbuf, "frame: invalid msgpack byte 0xc1 at 0");
    ck_assert_rc (gkx_codec_value_length (ext, sizeof ext, &value_len, "frame", errbuf),
                  GKX_ETYPE);
    ck_assert_str_eq (errbuf, "frame: ext types are not allowed");
    ck_assert_rc (gkx_codec_value_length (huge, sizeof huge, &value_len, "frame", errbuf),
                  GKX_EDECODE);
    ck_assert_str_eq (errbuf, "frame: 4294967295 elements cannot fit in 1 bytes");
    ck_assert_rc (gkx_codec_value_length (NULL, 0, &value_len, "frame", errbuf), GKX_EDECODE);
    ck_assert_str_eq (errbuf, "frame: truncated at byte 0");

    msgpack_sbuffer sbuf;
    s_pack_nested_arrays (&sbuf, GKX_CODEC_MAX_DEPTH + 2, 0);
    ck_assert_rc (gkx_codec_value_length ((const uint8_t *) sbuf.data, sbuf.size, &value_len,
                                          "frame", errbuf),
                  GKX_ETOOBIG);
    ck_assert_str_eq (errbuf, "frame: nested deeper than 16 levels");
    msgpack_sbuffer_destroy (&sbuf);
    /* Failures leave the out-parameter alone. */
    ck_assert_uint_eq (value_len, 12345);
}
END_TEST

/* gkx_codec_check holds values built in memory to the same rules. */
START_TEST (test_check_in_memory_values)
{
    msgpack_object_kv kvs[2];
    msgpack_object map;
    char errbuf[GKX_ERRBUF_BYTES];
    memset (kvs, 0, sizeof kvs);
    kvs[0].key.type = MSGPACK_OBJECT_STR;
    kvs[0].key.via.str.ptr = "price";
    kvs[0].key.via.str.size = 5;
    kvs[0].val.type = MSGPACK_OBJECT_POSITIVE_INTEGER;
    kvs[0].val.via.u64 = 1250000;
    kvs[1].key.type = MSGPACK_OBJECT_STR;
    kvs[1].key.via.str.ptr = "title";
    kvs[1].key.via.str.size = 5;
    kvs[1].val.type = MSGPACK_OBJECT_STR;
    kvs[1].val.via.str.ptr = "Karting day";
    kvs[1].val.via.str.size = 11;
    map.type = MSGPACK_OBJECT_MAP;
    map.via.map.size = 2;
    map.via.map.ptr = kvs;
    ck_assert_rc (gkx_codec_check (&map, "offer", errbuf), GKX_OK);

    kvs[0].val.type = MSGPACK_OBJECT_FLOAT64;
    kvs[0].val.via.f64 = 1.25;
    ck_assert_rc (gkx_codec_check (&map, "offer", errbuf), GKX_EFLOAT);
    ck_assert_str_eq (errbuf, "offer.price: floats are not allowed in signed data");

    kvs[0].val.type = MSGPACK_OBJECT_FLOAT32;
    ck_assert_rc (gkx_codec_check (&map, "offer", errbuf), GKX_EFLOAT);
    ck_assert_str_eq (errbuf, "offer.price: floats are not allowed in signed data");

    kvs[0].val.type = MSGPACK_OBJECT_POSITIVE_INTEGER;
    kvs[1].key.via.str.ptr = "amount";
    kvs[1].key.via.str.size = 6;
    ck_assert_rc (gkx_codec_check (&map, "offer", errbuf), GKX_EMAPKEY);
    ck_assert_str_eq (errbuf, "offer: map key \"amount\" is out of sorted order");

    kvs[1].key.via.str.ptr = "title";
    kvs[1].key.via.str.size = 5;
    kvs[1].val.via.str.ptr = "\xed\xa0\x80";
    kvs[1].val.via.str.size = 3;
    ck_assert_rc (gkx_codec_check (&map, "offer", errbuf), GKX_EUTF8);
    ck_assert_str_eq (errbuf, "offer.title: string is not valid UTF-8");

    kvs[1].val.type = MSGPACK_OBJECT_EXT;
    ck_assert_rc (gkx_codec_check (&map, "offer", errbuf), GKX_ETYPE);
    ck_assert_str_eq (errbuf, "offer.title: ext types are not allowed");
}
END_TEST

START_TEST (test_key_compare)
{
    ck_assert_int_lt (gkx_codec_key_compare ("a", 1, "b", 1), 0);
    ck_assert_int_gt (gkx_codec_key_compare ("b", 1, "a", 1), 0);
    ck_assert_int_eq (gkx_codec_key_compare ("abc", 3, "abc", 3), 0);
    ck_assert_int_eq (gkx_codec_key_compare ("", 0, "", 0), 0);
    /* Shorter first on a common prefix. */
    ck_assert_int_lt (gkx_codec_key_compare ("a", 1, "ab", 2), 0);
    ck_assert_int_gt (gkx_codec_key_compare ("ab", 2, "a", 1), 0);
    ck_assert_int_lt (gkx_codec_key_compare ("", 0, "a", 1), 0);
    /* Bytes first, then length: "ab" < "b" although it is longer. */
    ck_assert_int_lt (gkx_codec_key_compare ("ab", 2, "b", 1), 0);
    /* Bytes compare unsigned: U+00E9 sorts after every ASCII key. */
    ck_assert_int_gt (gkx_codec_key_compare ("\xc3\xa9", 2, "z", 1), 0);
    /* Only the given lengths count, not a terminating NUL. */
    ck_assert_int_eq (gkx_codec_key_compare ("abX", 2, "abY", 2), 0);
}
END_TEST

START_TEST (test_map_get)
{
    static const uint8_t buf[] = {0x82, 0xa1, 'a', 0x01, 0xa2, 'a', 'b', 0x02};
    msgpack_zone zone;
    msgpack_zone_init (&zone, 1024);
    msgpack_object obj;
    char errbuf[GKX_ERRBUF_BYTES];
    ck_assert_rc (gkx_codec_decode (&obj, &zone, buf, sizeof buf, "x", errbuf), GKX_OK);
    const msgpack_object *a = gkx_codec_map_get (&obj, "a");
    ck_assert_ptr_nonnull (a);
    ck_assert_uint_eq (a->via.u64, 1);
    ck_assert_uint_eq (gkx_codec_map_get (&obj, "ab")->via.u64, 2);
    ck_assert_ptr_null (gkx_codec_map_get (&obj, "b"));
    ck_assert_ptr_null (gkx_codec_map_get (&obj, ""));
    /* Not a map: nothing to find. */
    ck_assert_ptr_null (gkx_codec_map_get (a, "a"));
    msgpack_zone_destroy (&zone);
}
END_TEST

/* The pack helpers write the shortest headers, so their output decodes. */
START_TEST (test_pack_helpers)
{
    static const uint8_t expected[] = {0x92, 0xa3, 'a', 'b', 'c', 0xc4, 0x02, 0x00, 0xff};
    static const uint8_t blob[] = {0x00, 0xff};
    msgpack_sbuffer sbuf;
    msgpack_packer pk;
    s_packer (&sbuf, &pk);
    msgpack_pack_array (&pk, 2);
    gkx_codec_pack_cstr (&pk, "abc");
    gkx_codec_pack_bin (&pk, blob, sizeof blob);
    ck_assert_uint_eq (sbuf.size, sizeof expected);
    ck_assert (memcmp (sbuf.data, expected, sizeof expected) == 0);
    char errbuf[GKX_ERRBUF_BYTES];
    ck_assert_rc (s_decode ((const uint8_t *) sbuf.data, sbuf.size, errbuf), GKX_OK);
    msgpack_sbuffer_destroy (&sbuf);
}
END_TEST

int
main (void)
{
    Suite *s = suite_create ("codec");
    TCase *tc = tcase_create ("codec");
    tcase_add_test (tc, test_decode_canonical_nested_map);
    tcase_add_test (tc, test_decode_accepts_scalars_and_empty_containers);
    tcase_add_test (tc, test_truncated_empty_input);
    tcase_add_test (tc, test_truncated_string);
    tcase_add_test (tc, test_truncated_length_header);
    tcase_add_test (tc, test_truncated_integer);
    tcase_add_test (tc, test_truncated_array);
    tcase_add_test (tc, test_truncated_inside_array);
    tcase_add_test (tc, test_invalid_byte_c1);
    tcase_add_test (tc, test_ext_rejected);
    tcase_add_test (tc, test_fixext_rejected_with_path);
    tcase_add_test (tc, test_trailing_bytes);
    tcase_add_test (tc, test_float32_rejected);
    tcase_add_test (tc, test_float64_rejected_with_path);
    tcase_add_test (tc, test_utf8_invalid_string);
    tcase_add_test (tc, test_utf8_invalid_map_key);
    tcase_add_test (tc, test_is_utf8_accepts_valid);
    tcase_add_test (tc, test_is_utf8_rejects_overlong);
    tcase_add_test (tc, test_is_utf8_rejects_surrogates);
    tcase_add_test (tc, test_is_utf8_rejects_above_max);
    tcase_add_test (tc, test_is_utf8_rejects_truncated_sequences);
    tcase_add_test (tc, test_is_utf8_rejects_bad_continuation);
    tcase_add_test (tc, test_map_key_not_string);
    tcase_add_test (tc, test_map_key_duplicated);
    tcase_add_test (tc, test_map_key_unsorted);
    tcase_add_test (tc, test_string_too_big);
    tcase_add_test (tc, test_bin_too_big);
    tcase_add_test (tc, test_array_too_many_items);
    tcase_add_test (tc, test_map_too_many_items);
    tcase_add_test (tc, test_nesting_too_deep);
    tcase_add_test (tc, test_check_bounds_depth_in_memory);
    tcase_add_test (tc, test_huge_header_fails_fast);
    tcase_add_test (tc, test_noncanonical_integer);
    tcase_add_test (tc, test_noncanonical_string_header);
    tcase_add_test (tc, test_noncanonical_container_header);
    tcase_add_test (tc, test_canonical_equals_repacking);
    tcase_add_test (tc, test_value_length);
    tcase_add_test (tc, test_value_length_rejections);
    tcase_add_test (tc, test_check_in_memory_values);
    tcase_add_test (tc, test_key_compare);
    tcase_add_test (tc, test_map_get);
    tcase_add_test (tc, test_pack_helpers);
    suite_add_tcase (s, tc);
    return gkx_test_run (s);
}
