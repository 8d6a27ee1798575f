/*  withdrawal - a node's signed request to drop its card from directories.
    Part of gokart-exchange; MIT licence.

    The signed message is fixed-width (id, then the time big-endian), so it
    needs no canonical encoding of its own; the msgpack around it is decoded
    by the strict codec all the same, so that one withdrawal has one byte
    form and a directory stores exactly what was signed.
*/
#include <gkx/alloc.h>
#include <gkx/codec.h>
#include <gkx/withdrawal.h>

#include <assert.h>
#include <string.h>

/* A verified withdrawal and its encoded bytes. */
struct gkx_withdrawal {
    uint8_t id[GKX_ID_BYTES];                   /* signer: the withdrawn id */
    uint64_t time_ms;                           /* when it was withdrawn */
    uint8_t signature[GKX_SIGNATURE_BYTES];     /* over prefix || id || time */
    uint8_t *bytes;                             /* [id, time, signature] */
    size_t bytes_len;
};

/* Writes the signed message: id, then the time big-endian. */
static void
s_signed_bytes (uint8_t out[GKX_WITHDRAWAL_SIGNED_BYTES], const uint8_t id[GKX_ID_BYTES],
                uint64_t time_ms)
{
    memcpy (out, id, GKX_ID_BYTES);
    for (int i = 0; i < 8; i++) {
        out[GKX_ID_BYTES + i] = (uint8_t) (time_ms >> (56 - 8 * i));
    }
}

/* Fills self->bytes with [id, time, signature]. */
static void
s_encode (gkx_withdrawal_t *self)
{
    msgpack_sbuffer sbuf;
    msgpack_packer pk;
    msgpack_sbuffer_init (&sbuf);
    msgpack_packer_init (&pk, &sbuf, msgpack_sbuffer_write);
    msgpack_pack_array (&pk, 3);
    gkx_codec_pack_bin (&pk, self->id, GKX_ID_BYTES);
    msgpack_pack_uint64 (&pk, self->time_ms);
    gkx_codec_pack_bin (&pk, self->signature, GKX_SIGNATURE_BYTES);
    self->bytes = gkx_memdup (sbuf.data, sbuf.size);
    self->bytes_len = sbuf.size;
    msgpack_sbuffer_destroy (&sbuf);
}

gkx_withdrawal_t *
gkx_withdrawal_new (const gkx_identity_t *identity, uint64_t time_ms)
{
    assert (identity);
    assert (time_ms <= (uint64_t) INT64_MAX);
    gkx_withdrawal_t *self = gkx_zalloc (sizeof *self);
    memcpy (self->id, gkx_identity_id (identity), GKX_ID_BYTES);
    self->time_ms = time_ms;
    uint8_t msg[GKX_WITHDRAWAL_SIGNED_BYTES];
    s_signed_bytes (msg, self->id, time_ms);
    gkx_identity_sign (identity, self->signature, GKX_WITHDRAWAL_SIGN_PREFIX, msg, sizeof msg);
    s_encode (self);
    return self;
}

int
gkx_withdrawal_decode (gkx_withdrawal_t **self_p, const uint8_t *buf, size_t len, char *errbuf)
{
    assert (self_p);
    if (len > GKX_WITHDRAWAL_MAX_BYTES) {
        return gkx_fail (errbuf, GKX_ETOOBIG, "withdrawal: %zu bytes exceeds %d", len,
                         GKX_WITHDRAWAL_MAX_BYTES);
    }
    msgpack_zone zone;
    msgpack_zone_init (&zone, 256);
    msgpack_object root;
    gkx_withdrawal_t *self = NULL;
    int rc = gkx_codec_decode (&root, &zone, buf, len, "withdrawal", errbuf);
    if (rc != GKX_OK) {
        goto cleanup;
    }
    const msgpack_object *f = root.via.array.ptr;
    if (root.type != MSGPACK_OBJECT_ARRAY || root.via.array.size != 3
        || f[0].type != MSGPACK_OBJECT_BIN || f[0].via.bin.size != GKX_ID_BYTES
        || f[1].type != MSGPACK_OBJECT_POSITIVE_INTEGER || f[2].type != MSGPACK_OBJECT_BIN
        || f[2].via.bin.size != GKX_SIGNATURE_BYTES) {
        rc = gkx_fail (errbuf, GKX_ETYPE,
                       "withdrawal: expected [id bin%d, time, signature bin%d]", GKX_ID_BYTES,
                       GKX_SIGNATURE_BYTES);
        goto cleanup;
    }
    if (f[1].via.u64 > (uint64_t) INT64_MAX) {
        rc = gkx_fail (errbuf, GKX_EINVAL, "withdrawal.time: out of range");
        goto cleanup;
    }
    self = gkx_zalloc (sizeof *self);
    memcpy (self->id, f[0].via.bin.ptr, GKX_ID_BYTES);
    self->time_ms = f[1].via.u64;
    memcpy (self->signature, f[2].via.bin.ptr, GKX_SIGNATURE_BYTES);
    uint8_t msg[GKX_WITHDRAWAL_SIGNED_BYTES];
    s_signed_bytes (msg, self->id, self->time_ms);
    rc = gkx_signature_verify (self->signature, GKX_WITHDRAWAL_SIGN_PREFIX, msg, sizeof msg,
                               self->id);
    if (rc != GKX_OK) {
        gkx_fail (errbuf, rc, "withdrawal: signature does not verify for its id");
        goto cleanup;
    }
    self->bytes = gkx_memdup (buf, len);
    self->bytes_len = len;
    *self_p = self;
    self = NULL;
cleanup:
    gkx_withdrawal_destroy (&self);
    msgpack_zone_destroy (&zone);
    return rc;
}

void
gkx_withdrawal_destroy (gkx_withdrawal_t **self_p)
{
    if (!self_p || !*self_p) {
        return;
    }
    gkx_free ((*self_p)->bytes);
    gkx_free (*self_p);
    *self_p = NULL;
}

const uint8_t *
gkx_withdrawal_bytes (const gkx_withdrawal_t *self, size_t *len_p)
{
    *len_p = self->bytes_len;
    return self->bytes;
}

const uint8_t *
gkx_withdrawal_id (const gkx_withdrawal_t *self)
{
    return self->id;
}

uint64_t
gkx_withdrawal_time (const gkx_withdrawal_t *self)
{
    return self->time_ms;
}

int
gkx_withdrawal_is_covering (const gkx_withdrawal_t *self, const gkx_card_t *card)
{
    return memcmp (gkx_card_id (card), self->id, GKX_ID_BYTES) == 0
        && gkx_card_timestamp (card) <= self->time_ms;
}
