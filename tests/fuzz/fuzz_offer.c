/*  fuzz_offer - libFuzzer target: the offer's JSON form, edits and merge
    patches, and the operations they become.
    Part of gokart-exchange; MIT licence.

    Input: an offer in JSON (as POST /v1/partnerships and `gkx share` take
    it), then optionally a NUL byte and edits, one a line: a line starting
    with "{" is an RFC 7386 merge patch (PATCH /v1/partnerships/PID/offer
    with a JSON body), any other line a CLI edit (PATH=VALUE, PATH+=VALUE,
    PATH-=VALUE, COLLECTION.KEY=VALUE). When the offer is refused, the edits
    go to a fixed valid offer, so that they are fuzzed whatever the first
    part holds.

    An accepted offer round-trips: its text and its canonical msgpack give
    it back equal, byte for byte. The edits turn into operations against
    the current offer, as the API does (src/node/api.c, s_ops_build); the
    operations' entry body round-trips through its decoder; preview and
    apply agree, and preview changes nothing; the merge (gkx_merge_apply of
    the edit entry on the genesis state, what every member computes) gives
    the same offer as applying the operations one by one, when they all
    apply.
*/
#include "fuzz.h"

#include <gkx/alloc.h>
#include <gkx/kind.h>
#include <gkx/merge.h>
#include <gkx/offer.h>

/* The offer edits go to when the input's offer is refused. */
#define S_BASE_OFFER                                                                        \
    "{\"name\": \"Puzzle Quest iOS US\", \"status\": \"active\", \"payout\": {\"model\": "  \
    "\"cpi\", \"amount\": \"2.50\", \"currency\": \"USD\", \"events\": {\"purchase\": "     \
    "\"10.00\"}}, \"caps\": {\"daily\": 200, \"monthly\": 5000}, \"targeting\": "           \
    "{\"countries\": [\"US\", \"CA\"], \"platforms\": [\"ios\"], \"device_types\": "       \
    "[\"phone\"]}, \"attribution\": {\"click_window_days\": 7, \"view_window_hours\": 24}, " \
    "\"terms\": \"No incentivised traffic.\"}"
/* Most edit lines read from one input. */
#define S_EDITS_MAX 64
/* The fixed members and the edit entry's fields for the merge. */
#define S_HLC ((uint64_t) 1717200000000ULL << 16)

/* Checks that an accepted offer round-trips through text and msgpack. */
static void
s_check_offer (const gkx_offer_t *offer)
{
    char errbuf[GKX_ERRBUF_BYTES] = "";
    char *text = gkx_offer_to_text (offer);
    GKX_FUZZ_CHECK (text != NULL, "offer: no text");
    gkx_offer_t *again = NULL;
    int rc = gkx_offer_from_text (&again, text, errbuf);
    GKX_FUZZ_CHECK (rc == GKX_OK, "offer: its own text is refused: %s: %s", errbuf, text);
    GKX_FUZZ_CHECK (gkx_offer_is_equal (offer, again), "offer: text round trip differs: %s",
                    text);
    char *text2 = gkx_offer_to_text (again);
    GKX_FUZZ_CHECK (strcmp (text, text2) == 0, "offer: text is not stable");
    free (text2);
    free (text);
    gkx_offer_destroy (&again);
    uint8_t *bytes = NULL;
    size_t len = 0;
    gkx_offer_encode (offer, &bytes, &len);
    rc = gkx_offer_decode (&again, bytes, len, errbuf);
    GKX_FUZZ_CHECK (rc == GKX_OK, "offer: its own msgpack is refused: %s", errbuf);
    uint8_t *bytes2 = NULL;
    size_t len2 = 0;
    gkx_offer_encode (again, &bytes2, &len2);
    GKX_FUZZ_CHECK (len == len2 && memcmp (bytes, bytes2, len) == 0,
                    "offer: msgpack round trip differs");
    gkx_free (bytes2);
    gkx_free (bytes);
    gkx_offer_destroy (&again);
    gkx_offer_destroy (&again);
}

/* Turns the edit lines into operations on offer, as the API does. Returns
   the list, or NULL when an edit is refused. */
static gkx_offer_ops_t *
s_parse_edits (const gkx_offer_t *offer, char *edits)
{
    gkx_offer_ops_t *ops = gkx_offer_ops_new ();
    char *line = edits;
    for (size_t n = 0; line && n < S_EDITS_MAX; n++) {
        char *end = strchr (line, '\n');
        if (end) {
            *end = '\0';
        }
        char errbuf[GKX_ERRBUF_BYTES] = "";
        size_t before = gkx_offer_ops_size (ops);
        int rc;
        if (line[0] == '{') {
            json_error_t error;
            json_t *patch = json_loads (line, JSON_REJECT_DUPLICATES, &error);
            if (!patch) {
                line = end ? end + 1 : NULL;
                continue;
            }
            rc = gkx_offer_ops_from_patch (ops, offer, patch, errbuf);
            json_decref (patch);
        }
        else {
            rc = gkx_offer_ops_parse_edit (ops, offer, line, errbuf);
        }
        GKX_FUZZ_SAY ("offer: edit \"%.60s\": %s %s", line, gkx_errname (rc), errbuf);
        if (rc != GKX_OK) {
            GKX_FUZZ_CHECK_REFUSAL (rc, errbuf, "edit");
            GKX_FUZZ_CHECK (gkx_offer_ops_size (ops) == before, "edit: list changed on failure");
            gkx_offer_ops_destroy (&ops);
            return NULL;
        }
        line = end ? end + 1 : NULL;
    }
    return ops;
}

/* Applies the operations one by one to a copy of offer, checking preview
   against apply; returns the copy when every one applied, else NULL. */
static gkx_offer_t *
s_apply_all (const gkx_offer_t *offer, const gkx_offer_ops_t *ops)
{
    gkx_offer_t *copy = gkx_offer_dup (offer);
    int all = 1;
    for (size_t i = 0; i < gkx_offer_ops_size (ops); i++) {
        gkx_offer_op_info_t info;
        gkx_offer_ops_info (ops, i, &info);
        GKX_FUZZ_CHECK (info.path && gkx_offer_is_path (info.path), "op %zu: path", i);
        char errbuf[GKX_ERRBUF_BYTES] = "";
        json_t *old_p = NULL;
        json_t *new_p = NULL;
        uint8_t before[GKX_OFFER_DIGEST_BYTES];
        uint8_t after[GKX_OFFER_DIGEST_BYTES];
        gkx_offer_digest (copy, before);
        int preview = gkx_offer_preview (copy, ops, i, &old_p, &new_p, errbuf);
        gkx_offer_digest (copy, after);
        GKX_FUZZ_CHECK (memcmp (before, after, sizeof before) == 0, "preview changed the offer");
        json_decref (old_p);
        json_decref (new_p);
        errbuf[0] = '\0';
        int rc = gkx_offer_apply (copy, ops, i, NULL, NULL, errbuf);
        GKX_FUZZ_CHECK (rc == preview, "op %zu: preview %s, apply %s", i, gkx_errname (preview),
                        gkx_errname (rc));
        if (rc != GKX_OK) {
            GKX_FUZZ_CHECK_REFUSAL (rc, errbuf, "apply");
            gkx_offer_digest (copy, after);
            GKX_FUZZ_CHECK (memcmp (before, after, sizeof before) == 0,
                            "apply: a refused operation changed the offer");
            all = 0;
        }
    }
    if (all) {
        s_check_offer (copy);
        return copy;
    }
    gkx_offer_destroy (&copy);
    return NULL;
}

/* Merges the operations as one edit entry of the advertiser on top of the
   genesis state of offer; checks the result against applied (when every
   operation applied one by one). */
static void
s_merge (const gkx_offer_t *offer, const uint8_t *body, size_t body_len,
         const gkx_offer_t *applied)
{
    uint8_t advertiser[GKX_MERGE_ID_BYTES];
    uint8_t publisher[GKX_MERGE_ID_BYTES];
    uint8_t hash[GKX_MERGE_HASH_BYTES];
    memset (advertiser, 1, sizeof advertiser);
    memset (publisher, 2, sizeof publisher);
    crypto_generichash (hash, sizeof hash, body, body_len, NULL, 0);
    uint8_t *bytes = NULL;
    size_t len = 0;
    gkx_offer_encode (offer, &bytes, &len);
    gkx_merge_t *state = NULL;
    char errbuf[GKX_ERRBUF_BYTES] = "";
    int rc = gkx_merge_open (&state, advertiser, publisher, bytes, len, NULL, 0, errbuf);
    GKX_FUZZ_CHECK (rc == GKX_OK, "merge: a valid offer does not open: %s", errbuf);
    gkx_free (bytes);
    gkx_merge_entry_t entry = {GKX_KIND_EDIT, GKX_ROLE_ADVERTISER, advertiser, 2, 1, S_HLC,
                               hash, body, body_len};
    rc = gkx_merge_apply (state, &entry, errbuf);
    GKX_FUZZ_CHECK (rc == GKX_OK, "merge: an encoded edit does not apply: %s", errbuf);
    if (applied) {
        GKX_FUZZ_CHECK (gkx_offer_is_equal (gkx_merge_offer (state), applied),
                        "merge: the merged offer differs from the operations applied in order");
    }
    /* Applying the same entry again is a no-op. */
    uint8_t d1[GKX_OFFER_DIGEST_BYTES];
    uint8_t d2[GKX_OFFER_DIGEST_BYTES];
    gkx_merge_digest (state, d1, NULL);
    GKX_FUZZ_CHECK (gkx_merge_apply (state, &entry, errbuf) == GKX_OK, "merge: duplicate");
    gkx_merge_digest (state, d2, NULL);
    GKX_FUZZ_CHECK (memcmp (d1, d2, sizeof d1) == 0, "merge: a duplicate changed the state");
    json_t *changes = gkx_merge_changes (state, "a", "p");
    json_decref (changes);
    gkx_merge_destroy (&state);
}

/* Encodes the operations as an entry body and checks the round trip;
   merges them. */
static void
s_check_ops (const gkx_offer_t *offer, const gkx_offer_ops_t *ops)
{
    char errbuf[GKX_ERRBUF_BYTES] = "";
    gkx_offer_t *applied = s_apply_all (offer, ops);
    uint8_t *body = NULL;
    size_t len = 0;
    int rc = gkx_offer_ops_encode (ops, &body, &len, errbuf);
    if (rc != GKX_OK) {
        GKX_FUZZ_CHECK_REFUSAL (rc, errbuf, "ops encode");
        GKX_FUZZ_CHECK (gkx_offer_ops_size (ops) == 0 || gkx_offer_ops_size (ops) > GKX_OFFER_OPS_MAX,
                        "ops: %zu operations do not encode: %s", gkx_offer_ops_size (ops), errbuf);
        gkx_offer_destroy (&applied);
        return;
    }
    gkx_offer_ops_t *decoded = NULL;
    rc = gkx_offer_ops_decode (&decoded, body, len, errbuf);
    GKX_FUZZ_CHECK (rc == GKX_OK, "ops: an encoded body does not decode: %s", errbuf);
    uint8_t *again = NULL;
    size_t again_len = 0;
    GKX_FUZZ_CHECK (gkx_offer_ops_encode (decoded, &again, &again_len, errbuf) == GKX_OK
                        && again_len == len && memcmp (again, body, len) == 0,
                    "ops: decoding and encoding again gives other bytes");
    gkx_free (again);
    gkx_offer_ops_destroy (&decoded);
    s_merge (offer, body, len, applied);
    gkx_free (body);
    gkx_offer_destroy (&applied);
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
    if (sodium_init () < 0) {
        abort ();
    }
    const uint8_t *nul = memchr (data, '\0', size);
    char *text = gkx_fuzz_text (data, nul ? (size_t) (nul - data) : size);
    char *edits = nul ? gkx_fuzz_text (nul + 1, size - (size_t) (nul - data) - 1) : NULL;
    char errbuf[GKX_ERRBUF_BYTES] = "";
    gkx_offer_t *offer = NULL;
    int rc = gkx_offer_from_text (&offer, text, errbuf);
    GKX_FUZZ_SAY ("offer: %s %s", gkx_errname (rc), errbuf);
    if (rc == GKX_OK) {
        s_check_offer (offer);
    }
    else {
        GKX_FUZZ_CHECK_REFUSAL (rc, errbuf, "offer");
        GKX_FUZZ_CHECK (offer == NULL, "offer: set on failure");
        if (edits && gkx_offer_from_text (&offer, S_BASE_OFFER, errbuf) != GKX_OK) {
            abort ();
        }
    }
    if (edits) {
        gkx_offer_ops_t *ops = s_parse_edits (offer, edits);
        if (ops) {
            s_check_ops (offer, ops);
            gkx_offer_ops_destroy (&ops);
        }
    }
    gkx_offer_destroy (&offer);
    free (text);
    free (edits);
    return 0;
}
