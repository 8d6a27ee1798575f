/*  test_sync - the replication protocol's message headers.
    Part of gokart-exchange; MIT licence.
*/
#include "testutil.h"

#include <gkx/codec.h>
#include <gkx/sync.h>

/* Decodes sbuf's bytes into h, returning the code. */
static int
s_decode (msgpack_sbuffer *sbuf, gkx_sync_header_t *h, char *errbuf)
{
    return gkx_sync_decode (h, (const uint8_t *) sbuf->data, sbuf->size, errbuf);
}

/* heads round-trips with its resync flag and every head. */
START_TEST (test_heads_round_trip)
{
    gkx_sync_head_t heads[3];
    for (int i = 0; i < 3; i++) {
        memset (heads[i].pid, 0x10 + i, GKX_ID_BYTES);
        heads[i].own_seq = (uint64_t) i * 1000;
        heads[i].your_seq = UINT64_MAX - (uint64_t) i;
    }
    msgpack_sbuffer sbuf;
    msgpack_sbuffer_init (&sbuf);
    gkx_sync_heads_encode (&sbuf, 1, heads, 3);
    gkx_sync_header_t h;
    char errbuf[GKX_ERRBUF_BYTES] = "";
    ck_assert_int_eq (s_decode (&sbuf, &h, errbuf), GKX_OK);
    ck_assert_int_eq (h.type, GKX_SYNC_HEADS);
    ck_assert_int_eq (h.resync, 1);
    ck_assert_uint_eq (h.heads_count, 3);
    ck_assert_mem_eq (h.heads, heads, sizeof heads);
    gkx_sync_header_clear (&h);
    msgpack_sbuffer_destroy (&sbuf);
}
END_TEST

/* entries and card headers round-trip. */
START_TEST (test_entries_and_card_round_trip)
{
    uint8_t pid[GKX_ID_BYTES];
    memset (pid, 0xab, sizeof pid);
    msgpack_sbuffer sbuf;
    msgpack_sbuffer_init (&sbuf);
    gkx_sync_entries_encode (&sbuf, pid, 7);
    gkx_sync_header_t h;
    char errbuf[GKX_ERRBUF_BYTES] = "";
    ck_assert_int_eq (s_decode (&sbuf, &h, errbuf), GKX_OK);
    ck_assert_int_eq (h.type, GKX_SYNC_ENTRIES);
    ck_assert_uint_eq (h.count, 7);
    ck_assert_mem_eq (h.pid, pid, GKX_ID_BYTES);
    msgpack_sbuffer_destroy (&sbuf);
    msgpack_sbuffer_init (&sbuf);
    gkx_sync_card_encode (&sbuf);
    ck_assert_int_eq (s_decode (&sbuf, &h, errbuf), GKX_OK);
    ck_assert_int_eq (h.type, GKX_SYNC_CARD);
    msgpack_sbuffer_destroy (&sbuf);
}
END_TEST

/* Each malformed header is refused with its code and message. */
START_TEST (test_rejections)
{
    static const struct {
        const char *hex;
        int code;
        const char *message;
    } cases[] = {
        {"", GKX_EDECODE, "sync: truncated at byte 0"},
        {"c1", GKX_EDECODE, "sync: invalid msgpack byte 0xc1 at 0"},
        {"92a56865616473c2", GKX_ETYPE, "sync: expected a header of 3 fields"},
        {"93a3666f6fc290", GKX_ETYPE, "sync: unknown message type"},
        {"93a5686561647301" "90", GKX_ETYPE, "sync heads: resync must be a boolean"},
        {"93a568656164 73c2 91 93 01 02 03", GKX_ETYPE,
         "sync heads[0]: expected [pid bin32, own_seq, your_seq]"},
        {"93a7656e7472696573c4020000 01", GKX_ETYPE,
         "sync entries: expected [\"entries\", pid, count]"},
        {"93a7656e7472696573c420" "0000000000000000000000000000000000000000000000000000000000000000"
         "00", GKX_ETOOBIG, "sync entries: count must be 1 to 64"},
        {"93a7656e7472696573c420" "0000000000000000000000000000000000000000000000000000000000000000"
         "41", GKX_ETOOBIG, "sync entries: count must be 1 to 64"},
        {"93a56865616473c290 00", GKX_ETRAILING, "sync: 1 trailing bytes after the value"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        uint8_t buf[256];
        size_t len = 0;
        const char *p = cases[i].hex;
        while (*p) {
            if (*p == ' ') {
                p++;
                continue;
            }
            unsigned byte;
            ck_assert_int_eq (sscanf (p, "%2x", &byte), 1);
            buf[len++] = (uint8_t) byte;
            p += 2;
        }
        gkx_sync_header_t h;
        char errbuf[GKX_ERRBUF_BYTES] = "";
        ck_assert_msg (gkx_sync_decode (&h, buf, len, errbuf) == cases[i].code,
                       "case %zu: got %s", i, errbuf);
        ck_assert_str_eq (errbuf, cases[i].message);
        ck_assert_ptr_null (h.heads);
    }
}
END_TEST

/* A header larger than the limit is refused before it is parsed. */
START_TEST (test_oversized_header)
{
    size_t len = GKX_SYNC_MAX_HEADER_BYTES + 1;
    uint8_t *buf = calloc (1, len);
    gkx_sync_header_t h;
    char errbuf[GKX_ERRBUF_BYTES] = "";
    ck_assert_int_eq (gkx_sync_decode (&h, buf, len, errbuf), GKX_ETOOBIG);
    free (buf);
}
END_TEST

int
main (void)
{
    Suite *s = suite_create ("sync");
    TCase *tc = tcase_create ("sync");
    tcase_add_test (tc, test_heads_round_trip);
    tcase_add_test (tc, test_entries_and_card_round_trip);
    tcase_add_test (tc, test_rejections);
    tcase_add_test (tc, test_oversized_header);
    suite_add_tcase (s, tc);
    return gkx_test_run (s);
}
