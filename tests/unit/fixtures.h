/*  fixtures - offers and edits that the store and export tests write.
    Part of gokart-exchange; MIT licence.

    The store derives the shared offer from every genesis and edit entry, so
    test logs need a real offer and real edit bodies. Bodies are built with
    the offer module, the way gkxd builds them.
*/
#ifndef GKX_FIXTURES_H_INCLUDED
#define GKX_FIXTURES_H_INCLUDED

#include <check.h>
#include <gkx/alloc.h>
#include <gkx/offer.h>
#include <msgpack.h>
#include <string.h>

/* The JSON form of the offer every test partnership starts with. */
#define GKX_TEST_OFFER_JSON \
    "{\"name\": \"Puzzle Quest iOS US\", \"status\": \"active\", " \
    "\"payout\": {\"model\": \"cpi\", \"amount\": \"2.50\", \"currency\": \"USD\"}, " \
    "\"targeting\": {\"countries\": [\"US\", \"CA\"], \"platforms\": [\"ios\"]}}"

/* The test offer in internal form, built once. */
static inline gkx_offer_t *
gkx_test_offer_object (void)
{
    static gkx_offer_t *offer;
    if (!offer) {
        char errbuf[GKX_ERRBUF_BYTES] = "";
        ck_assert_msg (gkx_offer_from_text (&offer, GKX_TEST_OFFER_JSON, errbuf) == GKX_OK,
                       "test offer: %s", errbuf);
    }
    return offer;
}

/* The canonical msgpack of the test offer (the genesis "offer" value),
   built once; *len_p (may be NULL) receives its length. */
static inline const uint8_t *
gkx_test_offer_bytes (size_t *len_p)
{
    static uint8_t *bytes;
    static size_t len;
    if (!bytes) {
        gkx_offer_encode (gkx_test_offer_object (), &bytes, &len);
    }
    if (len_p) {
        *len_p = len;
    }
    return bytes;
}

/* The length of gkx_test_offer_bytes. */
static inline size_t
gkx_test_offer_len (void)
{
    size_t len;
    gkx_test_offer_bytes (&len);
    return len;
}

/* The offer and policy arguments of gkx_store_share for the test offer. */
#define GKX_TEST_OFFER gkx_test_offer_bytes (NULL), gkx_test_offer_len ()

/* Writes into sbuf (initialised here) the body of an edit entry made of the
   CLI edits given, e.g. "settings.note=hello" or "payout.amount=3.00". */
static inline void
gkx_test_edit_body (msgpack_sbuffer *sbuf, const char *edit)
{
    char errbuf[GKX_ERRBUF_BYTES] = "";
    gkx_offer_ops_t *ops = gkx_offer_ops_new ();
    ck_assert_msg (gkx_offer_ops_parse_edit (ops, gkx_test_offer_object (), edit, errbuf) == GKX_OK,
                   "edit %s: %s", edit, errbuf);
    uint8_t *body = NULL;
    size_t len = 0;
    ck_assert_msg (gkx_offer_ops_encode (ops, &body, &len, errbuf) == GKX_OK, "%s", errbuf);
    msgpack_sbuffer_init (sbuf);
    msgpack_sbuffer_write (sbuf, (const char *) body, len);
    gkx_free (body);
    gkx_offer_ops_destroy (&ops);
}

#endif
