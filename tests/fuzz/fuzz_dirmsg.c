/*  fuzz_dirmsg - libFuzzer target: the directory protocol's messages.
    Part of gokart-exchange; MIT licence.

    Input: one multipart message, its frames split at GKX_FUZZ_FRAME_SEP
    (fuzz.h): a header (gkx_dirmsg_decode) and the frames its type says
    follow, read as the directory and its clients read them
    (src/node/directory.c): a card after publish and after each of a cards
    reply's count, a withdrawal after withdraw. A list request's filter is
    matched against the cards the input carries.

    A decoded header re-encodes to a header that decodes to the same fields
    (list filters are normalised: a country is kept upper case, so the
    first encoding need not be the input's bytes; an error's code is sent
    by name); the cards and the withdrawal go through their decoders, a
    withdrawal that verifies says whether it covers each card.
*/
#include "fuzz.h"

#include <gkx/card.h>
#include <gkx/dirmsg.h>
#include <gkx/withdrawal.h>

/* Encodes a decoded header again into sbuf (initialised by the caller);
   returns 0 for an error reply whose code is not a GKX_E* name. */
static int
s_encode (msgpack_sbuffer *sbuf, const gkx_dirmsg_t *m)
{
    switch (m->type) {
        case GKX_DIRMSG_PUBLISH: gkx_dirmsg_publish_encode (sbuf, m->rid); return 1;
        case GKX_DIRMSG_LIST: gkx_dirmsg_list_encode (sbuf, m->rid, &m->filter); return 1;
        case GKX_DIRMSG_WITHDRAW: gkx_dirmsg_withdraw_encode (sbuf, m->rid); return 1;
        case GKX_DIRMSG_OK: gkx_dirmsg_ok_encode (sbuf, m->rid); return 1;
        case GKX_DIRMSG_CARDS:
            gkx_dirmsg_cards_encode (sbuf, m->rid, m->count, m->truncated);
            return 1;
        case GKX_DIRMSG_ERROR:
            for (int code = 1; code < GKX_ECODE_COUNT; code++) {
                if (strcmp (gkx_errname (code), m->code) == 0) {
                    gkx_dirmsg_error_encode (sbuf, m->rid, code, m->message);
                    return 1;
                }
            }
            return 0;
        default: GKX_FUZZ_CHECK (0, "dirmsg: type %d", m->type); return 0;
    }
}

/* Checks that a decoded header survives encoding and decoding again. */
static void
s_check_header (const gkx_dirmsg_t *m)
{
    GKX_FUZZ_CHECK (m->type != GKX_DIRMSG_CARDS || m->count <= GKX_DIRMSG_MAX_CARDS, "count");
    GKX_FUZZ_CHECK (memchr (m->code, '\0', sizeof m->code)
                        && memchr (m->message, '\0', sizeof m->message)
                        && memchr (m->filter.vertical, '\0', sizeof m->filter.vertical)
                        && memchr (m->filter.country, '\0', sizeof m->filter.country),
                    "dirmsg: a text not terminated");
    msgpack_sbuffer sbuf;
    msgpack_sbuffer_init (&sbuf);
    if (s_encode (&sbuf, m)) {
        gkx_dirmsg_t again;
        char errbuf[GKX_ERRBUF_BYTES] = "";
        int rc = gkx_dirmsg_decode (&again, (const uint8_t *) sbuf.data, sbuf.size, errbuf);
        GKX_FUZZ_CHECK (rc == GKX_OK, "dirmsg: its own encoding is refused: %s", errbuf);
        GKX_FUZZ_CHECK (memcmp (&again, m, sizeof again) == 0 || m->type == GKX_DIRMSG_ERROR,
                        "dirmsg: encoding and decoding again changes the header");
        GKX_FUZZ_CHECK (again.type == m->type && again.rid == m->rid, "dirmsg: type, rid");
        msgpack_sbuffer sbuf2;
        msgpack_sbuffer_init (&sbuf2);
        GKX_FUZZ_CHECK (s_encode (&sbuf2, &again), "dirmsg: error code lost");
        GKX_FUZZ_CHECK (sbuf2.size == sbuf.size && memcmp (sbuf2.data, sbuf.data, sbuf.size) == 0,
                        "dirmsg: encoding is not stable");
        msgpack_sbuffer_destroy (&sbuf2);
    }
    msgpack_sbuffer_destroy (&sbuf);
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
    if (sodium_init () < 0) {
        abort ();
    }
    static gkx_fuzz_frame_t frames[GKX_FUZZ_FRAMES_MAX];
    size_t n = gkx_fuzz_split (frames, GKX_FUZZ_FRAMES_MAX, data, size);
    gkx_dirmsg_t m;
    char errbuf[GKX_ERRBUF_BYTES] = "";
    int rc = gkx_dirmsg_decode (&m, frames[0].data, frames[0].size, errbuf);
    GKX_FUZZ_SAY ("dirmsg: header: %s %s", gkx_errname (rc), errbuf);
    if (rc != GKX_OK) {
        GKX_FUZZ_CHECK_REFUSAL (rc, errbuf, "dirmsg");
        return 0;
    }
    s_check_header (&m);
    gkx_card_t *cards[GKX_FUZZ_FRAMES_MAX];
    size_t count = 0;
    gkx_withdrawal_t *withdrawal = NULL;
    for (size_t i = 1; i < n; i++) {
        errbuf[0] = '\0';
        if (m.type == GKX_DIRMSG_WITHDRAW) {
            rc = gkx_withdrawal_decode (&withdrawal, frames[i].data, frames[i].size, errbuf);
            GKX_FUZZ_SAY ("dirmsg: withdrawal: %s %s", gkx_errname (rc), errbuf);
            if (rc == GKX_OK) {
                size_t len = 0;
                const uint8_t *bytes = gkx_withdrawal_bytes (withdrawal, &len);
                GKX_FUZZ_CHECK (len == frames[i].size && memcmp (bytes, frames[i].data, len) == 0,
                                "withdrawal: accepted bytes are not the input's");
                break;
            }
        }
        else {
            rc = gkx_card_decode (&cards[count], frames[i].data, frames[i].size, errbuf);
            GKX_FUZZ_SAY ("dirmsg: card: %s %s", gkx_errname (rc), errbuf);
            if (rc == GKX_OK) {
                count++;
            }
        }
        if (rc != GKX_OK) {
            GKX_FUZZ_CHECK_REFUSAL (rc, errbuf, "dirmsg payload");
        }
    }
    for (size_t i = 0; i < count; i++) {
        if (m.type == GKX_DIRMSG_LIST) {
            int match = gkx_dirmsg_filter_is_matching (&m.filter, cards[i]);
            GKX_FUZZ_CHECK (match == 0 || match == 1, "filter: %d", match);
        }
        if (withdrawal) {
            gkx_withdrawal_is_covering (withdrawal, cards[i]);
        }
        gkx_card_destroy (&cards[i]);
    }
    gkx_withdrawal_destroy (&withdrawal);
    gkx_withdrawal_destroy (&withdrawal);
    return 0;
}
