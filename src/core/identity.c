/*  identity - a node's key pairs and the text form of ids.
    Part of gokart-exchange; MIT licence.

    Signing covers prefix || message. The prefix names what is signed
    ("GKX-ENTRY-V1", "GKX-CARD-V1"), so a signature over one kind of object
    can never be replayed as another. The two parts are joined in a scratch
    buffer because Ed25519 signs one contiguous message.
*/
#include <gkx/alloc.h>
#include <gkx/identity.h>

#include <assert.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A node's two key pairs; the secrets sit in one sodium_malloc'd block. */
struct gkx_identity {
    uint8_t id[GKX_ID_BYTES];                  /* Ed25519 public key */
    uint8_t curve_public[GKX_CURVE_KEY_BYTES]; /* X25519 public key */
    uint8_t *secrets;                          /* sign secret || curve secret */
};

/* Initialises libsodium once; without it nothing here is safe to run. */
static void
s_sodium_init (void)
{
    if (sodium_init () < 0) {
        fprintf (stderr, "gkx: libsodium failed to initialise\n");
        abort ();
    }
}

/* Allocates an identity with its guarded secret block. */
static gkx_identity_t *
s_alloc (void)
{
    s_sodium_init ();
    gkx_identity_t *self = gkx_zalloc (sizeof *self);
    self->secrets = sodium_malloc (GKX_SIGN_SECRET_BYTES + GKX_CURVE_KEY_BYTES);
    if (!self->secrets) {
        fprintf (stderr, "gkx: out of guarded memory\n");
        abort ();
    }
    return self;
}

gkx_identity_t *
gkx_identity_new (void)
{
    gkx_identity_t *self = s_alloc ();
    crypto_sign_keypair (self->id, self->secrets);
    crypto_box_keypair (self->curve_public, self->secrets + GKX_SIGN_SECRET_BYTES);
    return self;
}

int
gkx_identity_open (gkx_identity_t **self_p,
                   const uint8_t sign_secret[GKX_SIGN_SECRET_BYTES],
                   const uint8_t curve_secret[GKX_CURVE_KEY_BYTES])
{
    assert (self_p);
    gkx_identity_t *self = s_alloc ();
    memcpy (self->secrets, sign_secret, GKX_SIGN_SECRET_BYTES);
    memcpy (self->secrets + GKX_SIGN_SECRET_BYTES, curve_secret, GKX_CURVE_KEY_BYTES);
    /* The secret key embeds its public half; a mismatch means a damaged file. */
    uint8_t derived_pk[GKX_ID_BYTES];
    uint8_t derived_sk[GKX_SIGN_SECRET_BYTES];
    crypto_sign_seed_keypair (derived_pk, derived_sk, sign_secret);
    sodium_memzero (derived_sk, sizeof derived_sk);
    memcpy (self->id, derived_pk, GKX_ID_BYTES);
    crypto_scalarmult_base (self->curve_public, self->secrets + GKX_SIGN_SECRET_BYTES);
    if (memcmp (derived_pk, sign_secret + 32, GKX_ID_BYTES) != 0) {
        gkx_identity_destroy (&self);
        return GKX_EINVAL;
    }
    *self_p = self;
    return GKX_OK;
}

void
gkx_identity_destroy (gkx_identity_t **self_p)
{
    if (!self_p || !*self_p) {
        return;
    }
    gkx_identity_t *self = *self_p;
    sodium_free (self->secrets);
    gkx_free (self);
    *self_p = NULL;
}

const uint8_t *
gkx_identity_id (const gkx_identity_t *self)
{
    return self->id;
}

const uint8_t *
gkx_identity_curve_public (const gkx_identity_t *self)
{
    return self->curve_public;
}

const uint8_t *
gkx_identity_curve_secret (const gkx_identity_t *self)
{
    return self->secrets + GKX_SIGN_SECRET_BYTES;
}

const uint8_t *
gkx_identity_sign_secret (const gkx_identity_t *self)
{
    return self->secrets;
}

/* Joins prefix and message into one buffer the caller frees. */
static uint8_t *
s_join (const char *prefix, const uint8_t *msg, size_t msg_len, size_t *len_p)
{
    size_t prefix_len = strlen (prefix);
    uint8_t *joined = gkx_zalloc (prefix_len + msg_len);
    memcpy (joined, prefix, prefix_len);
    if (msg_len) {
        memcpy (joined + prefix_len, msg, msg_len);
    }
    *len_p = prefix_len + msg_len;
    return joined;
}

void
gkx_identity_sign (const gkx_identity_t *self, uint8_t sig[GKX_SIGNATURE_BYTES],
                   const char *prefix, const uint8_t *msg, size_t msg_len)
{
    size_t len;
    uint8_t *joined = s_join (prefix, msg, msg_len, &len);
    crypto_sign_detached (sig, NULL, joined, len, self->secrets);
    gkx_free (joined);
}

int
gkx_signature_verify (const uint8_t sig[GKX_SIGNATURE_BYTES], const char *prefix,
                      const uint8_t *msg, size_t msg_len, const uint8_t id[GKX_ID_BYTES])
{
    size_t len;
    uint8_t *joined = s_join (prefix, msg, msg_len, &len);
    int rc = crypto_sign_verify_detached (sig, joined, len, id);
    gkx_free (joined);
    return rc == 0 ? GKX_OK : GKX_ESIGNATURE;
}

void
gkx_id_format (char out[GKX_ID_TEXT_BYTES], const uint8_t id[GKX_ID_BYTES])
{
    sodium_bin2hex (out, GKX_ID_TEXT_BYTES, id, GKX_ID_BYTES);
}

int
gkx_id_parse (uint8_t id[GKX_ID_BYTES], const char *text, char *errbuf)
{
    size_t bin_len = 0;
    const char *end = NULL;
    if (strlen (text) != 2 * GKX_ID_BYTES) {
        return gkx_fail (errbuf, GKX_EINVAL, "id \"%.80s\": expected %d hex digits, got %zu",
                         text, 2 * GKX_ID_BYTES, strlen (text));
    }
    if (sodium_hex2bin (id, GKX_ID_BYTES, text, strlen (text), NULL, &bin_len, &end) != 0
        || bin_len != GKX_ID_BYTES || *end != '\0') {
        return gkx_fail (errbuf, GKX_EINVAL, "id \"%.80s\": not hexadecimal", text);
    }
    return GKX_OK;
}
