/*  fuzz_entry - libFuzzer target: the entry decoder and the body decoders
    an ingest runs behind it.
    Part of gokart-exchange; MIT licence.

    Input: the bytes of one entry, as a peer sends it in an entries frame
    and as an export file holds it (docs/log-format.md). Decoding is strict,
    so an accepted entry is exactly its canonical encoding: re-packing its
    fields gives the input back byte for byte, and its hash is the BLAKE2b
    of the input. The body of each kind then goes through the decoder the
    store uses on ingest (offer and policy of a genesis, edit and propose
    operations, answers, conversions and status changes), each checked to
    re-encode to the same bytes: a body the node would never write must not
    be accepted from a peer either. The signature is not checked here (the
    sync target re-signs to get past it).
*/
#include "fuzz.h"

#include <gkx/alloc.h>
#include <gkx/conversion.h>
#include <gkx/entry.h>
#include <gkx/merge.h>
#include <gkx/offer.h>

/* Checks that an accepted entry is the canonical packing of its fields. */
static void
s_check_canonical (const gkx_entry_t *entry, const uint8_t *data, size_t size)
{
    size_t len = 0;
    const uint8_t *bytes = gkx_entry_bytes (entry, &len);
    GKX_FUZZ_CHECK (len == size && memcmp (bytes, data, size) == 0,
                    "entry: accepted bytes differ from the input");
    size_t body_len = 0;
    const uint8_t *body = gkx_entry_body (entry, &body_len);
    msgpack_sbuffer sbuf;
    msgpack_packer pk;
    msgpack_sbuffer_init (&sbuf);
    msgpack_packer_init (&pk, &sbuf, msgpack_sbuffer_write);
    msgpack_pack_array (&pk, 11);
    msgpack_pack_uint64 (&pk, GKX_ENTRY_VERSION);
    msgpack_pack_bin_with_body (&pk, gkx_entry_pid (entry), GKX_ID_BYTES);
    msgpack_pack_bin_with_body (&pk, gkx_entry_author (entry), GKX_ID_BYTES);
    msgpack_pack_uint64 (&pk, gkx_entry_seq (entry));
    msgpack_pack_bin_with_body (&pk, gkx_entry_prev_hash (entry), GKX_HASH_BYTES);
    msgpack_pack_uint64 (&pk, gkx_entry_seen_seq (entry));
    msgpack_pack_bin_with_body (&pk, gkx_entry_seen_hash (entry), GKX_HASH_BYTES);
    msgpack_pack_uint64 (&pk, gkx_entry_hlc (entry));
    msgpack_pack_uint64 (&pk, (uint64_t) gkx_entry_kind (entry));
    msgpack_sbuffer_write (&sbuf, (const char *) body, body_len);
    msgpack_pack_bin_with_body (&pk, gkx_entry_signature (entry), GKX_SIGNATURE_BYTES);
    GKX_FUZZ_CHECK (sbuf.size == size && memcmp (sbuf.data, data, size) == 0,
                    "entry: re-packing the fields gives other bytes (%zu, input %zu)", sbuf.size,
                    size);
    msgpack_sbuffer_destroy (&sbuf);
    uint8_t hash[GKX_HASH_BYTES];
    crypto_generichash (hash, sizeof hash, data, size, NULL, 0);
    GKX_FUZZ_CHECK (memcmp (hash, gkx_entry_hash (entry), GKX_HASH_BYTES) == 0,
                    "entry: hash is not the BLAKE2b of the bytes");
    gkx_entry_t *copy = gkx_entry_dup (entry);
    bytes = gkx_entry_bytes (copy, &len);
    GKX_FUZZ_CHECK (len == size && memcmp (bytes, data, size) == 0, "entry: dup differs");
    gkx_entry_destroy (&copy);
    gkx_entry_destroy (&copy);
}

/* Genesis: the offer and policy values open a merge state, as on ingest. */
static void
s_genesis (const gkx_entry_t *entry)
{
    uint8_t advertiser[GKX_ID_BYTES];
    uint8_t publisher[GKX_ID_BYTES];
    GKX_FUZZ_CHECK (gkx_genesis_members (entry, advertiser, publisher) == GKX_OK,
                    "genesis: members of an accepted genesis");
    msgpack_sbuffer offer;
    msgpack_sbuffer policy;
    msgpack_sbuffer_init (&offer);
    msgpack_sbuffer_init (&policy);
    GKX_FUZZ_CHECK (gkx_genesis_values (entry, &offer, &policy) == GKX_OK,
                    "genesis: values of an accepted genesis");
    char errbuf[GKX_ERRBUF_BYTES] = "";
    gkx_offer_t *decoded = NULL;
    int rc = gkx_offer_decode (&decoded, (const uint8_t *) offer.data, offer.size, errbuf);
    if (rc == GKX_OK) {
        uint8_t *bytes = NULL;
        size_t len = 0;
        gkx_offer_encode (decoded, &bytes, &len);
        GKX_FUZZ_CHECK (len == offer.size && memcmp (bytes, offer.data, len) == 0,
                        "genesis: the offer re-encodes to other bytes");
        gkx_free (bytes);
        gkx_offer_destroy (&decoded);
    }
    else {
        GKX_FUZZ_CHECK_REFUSAL (rc, errbuf, "genesis offer");
    }
    errbuf[0] = '\0';
    json_t *json = NULL;
    rc = gkx_merge_policy_decode (&json, (const uint8_t *) policy.data, policy.size, errbuf);
    if (rc == GKX_OK) {
        uint8_t *bytes = NULL;
        size_t len = 0;
        errbuf[0] = '\0';
        GKX_FUZZ_CHECK (gkx_merge_policy_encode (&bytes, &len, json, errbuf) == GKX_OK,
                        "genesis: a decoded policy does not encode: %s", errbuf);
        GKX_FUZZ_CHECK (len == policy.size && memcmp (bytes, policy.data, len) == 0,
                        "genesis: the policy re-encodes to other bytes");
        gkx_free (bytes);
        json_decref (json);
    }
    errbuf[0] = '\0';
    gkx_merge_t *state = NULL;
    rc = gkx_merge_open (&state, advertiser, publisher, (const uint8_t *) offer.data, offer.size,
                         (const uint8_t *) policy.data, policy.size, errbuf);
    if (rc == GKX_OK) {
        char hex[GKX_OFFER_DIGEST_HEX_BYTES];
        uint8_t digest[GKX_OFFER_DIGEST_BYTES];
        gkx_merge_digest (state, digest, hex);
        gkx_merge_destroy (&state);
    }
    else {
        GKX_FUZZ_CHECK_REFUSAL (rc, errbuf, "genesis merge");
    }
    msgpack_sbuffer_destroy (&offer);
    msgpack_sbuffer_destroy (&policy);
}

/* Edit and propose: the operations round-trip through their encoding. */
static void
s_ops (const uint8_t *body, size_t len)
{
    char errbuf[GKX_ERRBUF_BYTES] = "";
    gkx_offer_ops_t *ops = NULL;
    int rc = gkx_offer_ops_decode (&ops, body, len, errbuf);
    if (rc != GKX_OK) {
        GKX_FUZZ_CHECK_REFUSAL (rc, errbuf, "ops");
        return;
    }
    uint8_t *again = NULL;
    size_t again_len = 0;
    GKX_FUZZ_CHECK (gkx_offer_ops_encode (ops, &again, &again_len, errbuf) == GKX_OK,
                    "ops: decoded operations do not encode: %s", errbuf);
    GKX_FUZZ_CHECK (again_len == len && memcmp (again, body, len) == 0,
                    "ops: re-encoding gives other bytes");
    gkx_free (again);
    json_t *json = gkx_offer_ops_to_json (ops);
    GKX_FUZZ_CHECK (json_is_array (json), "ops: JSON form is not an array");
    json_decref (json);
    gkx_offer_ops_destroy (&ops);
    gkx_offer_ops_destroy (&ops);
}

/* Answer: accept, decline or withdraw a proposal. */
static void
s_answer (const uint8_t *body, size_t len)
{
    char errbuf[GKX_ERRBUF_BYTES] = "";
    int answer = 0;
    uint8_t proposal[GKX_MERGE_HASH_BYTES];
    int rc = gkx_merge_answer_decode (&answer, proposal, body, len, errbuf);
    if (rc != GKX_OK) {
        GKX_FUZZ_CHECK_REFUSAL (rc, errbuf, "answer");
        return;
    }
    uint8_t *again = NULL;
    size_t again_len = 0;
    GKX_FUZZ_CHECK (gkx_merge_answer_encode (&again, &again_len, answer, proposal) == GKX_OK,
                    "answer: a decoded answer does not encode");
    GKX_FUZZ_CHECK (again_len == len && memcmp (again, body, len) == 0,
                    "answer: re-encoding gives other bytes");
    gkx_free (again);
}

/* Conversion: the advertiser's record of one postback. */
static void
s_conversion (const uint8_t *body, size_t len)
{
    char errbuf[GKX_ERRBUF_BYTES] = "";
    gkx_conversion_t *conversion = gkx_zalloc (sizeof *conversion);
    int rc = gkx_conversion_decode (conversion, body, len, errbuf);
    if (rc != GKX_OK) {
        GKX_FUZZ_CHECK_REFUSAL (rc, errbuf, "conversion");
        gkx_free (conversion);
        return;
    }
    uint8_t *again = NULL;
    size_t again_len = 0;
    GKX_FUZZ_CHECK (gkx_conversion_encode (&again, &again_len, conversion, errbuf) == GKX_OK,
                    "conversion: a decoded conversion does not encode: %s", errbuf);
    GKX_FUZZ_CHECK (again_len == len && memcmp (again, body, len) == 0,
                    "conversion: re-encoding gives other bytes");
    gkx_free (again);
    gkx_free (conversion);
}

/* Conversion status: a later change of a conversion's status. */
static void
s_change (const uint8_t *body, size_t len)
{
    char errbuf[GKX_ERRBUF_BYTES] = "";
    gkx_conversion_change_t change;
    int rc = gkx_conversion_change_decode (&change, body, len, errbuf);
    if (rc != GKX_OK) {
        GKX_FUZZ_CHECK_REFUSAL (rc, errbuf, "conversion status");
        return;
    }
    GKX_FUZZ_CHECK (gkx_conversion_status_name (change.status) != NULL,
                    "conversion status: unknown status %d accepted", change.status);
    uint8_t *again = NULL;
    size_t again_len = 0;
    GKX_FUZZ_CHECK (gkx_conversion_change_encode (&again, &again_len, &change, errbuf) == GKX_OK,
                    "conversion status: a decoded change does not encode: %s", errbuf);
    GKX_FUZZ_CHECK (again_len == len && memcmp (again, body, len) == 0,
                    "conversion status: re-encoding gives other bytes");
    gkx_free (again);
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
    if (sodium_init () < 0) {
        abort ();
    }
    char errbuf[GKX_ERRBUF_BYTES] = "";
    gkx_entry_t *entry = NULL;
    int rc = gkx_entry_decode (&entry, data, size, errbuf);
    if (rc != GKX_OK) {
        GKX_FUZZ_CHECK (entry == NULL, "entry: set on failure");
        GKX_FUZZ_CHECK_REFUSAL (rc, errbuf, "entry");
        return 0;
    }
    s_check_canonical (entry, data, size);
    int kind = gkx_entry_kind (entry);
    GKX_FUZZ_CHECK (kind >= GKX_KIND_MIN && kind <= GKX_KIND_MAX, "entry: kind %d", kind);
    GKX_FUZZ_CHECK (gkx_entry_seq (entry) >= 1, "entry: seq 0 accepted");
    size_t body_len = 0;
    const uint8_t *body = gkx_entry_body (entry, &body_len);
    /* A forged signature is refused, never crashes. */
    rc = gkx_entry_verify (entry);
    GKX_FUZZ_CHECK (rc == GKX_OK || rc == GKX_ESIGNATURE, "verify: %s", gkx_errname (rc));
    switch (kind) {
        case GKX_KIND_GENESIS: s_genesis (entry); break;
        case GKX_KIND_EDIT:
        case GKX_KIND_PROPOSE: s_ops (body, body_len); break;
        case GKX_KIND_ANSWER: s_answer (body, body_len); break;
        case GKX_KIND_CONVERSION: s_conversion (body, body_len); break;
        case GKX_KIND_CONVERSION_STATUS: s_change (body, body_len); break;
        default: break;
    }
    gkx_entry_destroy (&entry);
    gkx_entry_destroy (&entry);
    return 0;
}
