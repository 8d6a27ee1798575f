/*  fuzz_card - libFuzzer target: the tenant card, in msgpack and in JSON.
    Part of gokart-exchange; MIT licence.

    Input: a card in msgpack form, as a peer sends it in a card message and
    a directory in its replies (gkx_card_decode); or, when the input starts
    with "{", a card in JSON form, as `gkx peer add` and POST /v1/peers take
    it (gkx_card_from_json). Every field is checked before the signature, so
    mutated cards reach every field rule; an accepted card has a verified
    signature, its fields within the limits of card.h, and round-trips: its
    msgpack is the input's bytes (or, from JSON, decodes to the same card),
    and its JSON form reads back to the same bytes.
*/
#include "fuzz.h"

#include <gkx/card.h>
#include <gkx/kind.h>

/* Checks the fields and the round trips of an accepted card. */
static void
s_check (const gkx_card_t *card)
{
    GKX_FUZZ_CHECK (gkx_card_role (card) == GKX_ROLE_ADVERTISER
                        || gkx_card_role (card) == GKX_ROLE_PUBLISHER,
                    "role %d", gkx_card_role (card));
    size_t name_len = strlen (gkx_card_name (card));
    GKX_FUZZ_CHECK (name_len >= 1 && name_len <= GKX_CARD_TEXT_MAX_BYTES, "name length");
    GKX_FUZZ_CHECK (strlen (gkx_card_endpoint (card)) <= GKX_CARD_TEXT_MAX_BYTES
                        && strlen (gkx_card_email (card)) <= GKX_CARD_TEXT_MAX_BYTES,
                    "endpoint, email length");
    GKX_FUZZ_CHECK (gkx_card_verticals_count (card) <= GKX_CARD_LIST_MAX
                        && gkx_card_countries_count (card) <= GKX_CARD_LIST_MAX,
                    "list counts");
    for (size_t i = 0; i < gkx_card_countries_count (card); i++) {
        GKX_FUZZ_CHECK (gkx_card_country (card, i) != NULL, "country %zu", i);
    }
    for (size_t i = 0; i < gkx_card_verticals_count (card); i++) {
        GKX_FUZZ_CHECK (gkx_card_vertical (card, i) != NULL, "vertical %zu", i);
    }
    size_t len = 0;
    const uint8_t *bytes = gkx_card_bytes (card, &len);
    char errbuf[GKX_ERRBUF_BYTES] = "";
    gkx_card_t *again = NULL;
    int rc = gkx_card_decode (&again, bytes, len, errbuf);
    GKX_FUZZ_CHECK (rc == GKX_OK, "card: its own bytes are refused: %s", errbuf);
    size_t again_len = 0;
    const uint8_t *again_bytes = gkx_card_bytes (again, &again_len);
    GKX_FUZZ_CHECK (again_len == len && memcmp (again_bytes, bytes, len) == 0,
                    "card: bytes round trip differs");
    gkx_card_destroy (&again);
    json_t *json = gkx_card_to_json (card);
    GKX_FUZZ_CHECK (json != NULL, "card: no JSON form");
    rc = gkx_card_from_json (&again, json, errbuf);
    GKX_FUZZ_CHECK (rc == GKX_OK, "card: its own JSON is refused: %s", errbuf);
    again_bytes = gkx_card_bytes (again, &again_len);
    GKX_FUZZ_CHECK (again_len == len && memcmp (again_bytes, bytes, len) == 0,
                    "card: JSON round trip gives other bytes");
    gkx_card_destroy (&again);
    gkx_card_destroy (&again);
    json_decref (json);
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
    if (sodium_init () < 0) {
        abort ();
    }
    char errbuf[GKX_ERRBUF_BYTES] = "";
    gkx_card_t *card = NULL;
    int rc;
    if (size > 0 && data[0] == '{') {
        json_error_t error;
        json_t *json = json_loadb ((const char *) data, size, JSON_REJECT_DUPLICATES, &error);
        if (!json) {
            return 0;
        }
        rc = gkx_card_from_json (&card, json, errbuf);
        json_decref (json);
    }
    else {
        rc = gkx_card_decode (&card, data, size, errbuf);
    }
    GKX_FUZZ_SAY ("card: %s %s", gkx_errname (rc), errbuf);
    if (rc == GKX_OK) {
        s_check (card);
        if (data[0] != '{') {
            size_t len = 0;
            const uint8_t *bytes = gkx_card_bytes (card, &len);
            GKX_FUZZ_CHECK (len == size && memcmp (bytes, data, size) == 0,
                            "card: accepted bytes are not the input's");
        }
        gkx_card_destroy (&card);
        gkx_card_destroy (&card);
    }
    else {
        GKX_FUZZ_CHECK_REFUSAL (rc, errbuf, "card");
        GKX_FUZZ_CHECK (card == NULL, "card: set on failure");
    }
    return 0;
}
