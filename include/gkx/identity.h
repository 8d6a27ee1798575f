/*  identity - a node's key pairs and the text form of ids.
    Part of gokart-exchange; MIT licence.

    A node has two key pairs: Ed25519 for signing (its public key is the node
    id) and X25519 for the CurveZMQ transport. They are kept apart, as
    libsodium advises; the signed tenant card (card.h) binds them. Secret keys
    live in sodium_malloc'd memory and are wiped on destroy. Files are the
    keyfile module's business; this one does no I/O.
*/
#ifndef GKX_IDENTITY_H_INCLUDED
#define GKX_IDENTITY_H_INCLUDED

#include <gkx/error.h>

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Bytes of a node id (an Ed25519 public key), a partnership id and a hash. */
#define GKX_ID_BYTES 32
/* Bytes of an Ed25519 secret key (seed and public key). */
#define GKX_SIGN_SECRET_BYTES 64
/* Bytes of an Ed25519 signature. */
#define GKX_SIGNATURE_BYTES 64
/* Bytes of an X25519 (CurveZMQ) key, public or secret. */
#define GKX_CURVE_KEY_BYTES 32
/* Buffer size for the text form of an id: 64 lowercase hex digits + NUL. */
#define GKX_ID_TEXT_BYTES 65

typedef struct gkx_identity gkx_identity_t;

/* Creates a fresh identity with random key pairs. Cannot fail (aborts when
   libsodium cannot initialise or memory is out). */
gkx_identity_t *gkx_identity_new (void);

/* Creates an identity from secret keys (the signing secret key holds its
   public key; the curve public key is derived). Returns GKX_OK, or
   GKX_EINVAL when the signing secret does not match its public half. */
GKX_NODISCARD int gkx_identity_open (gkx_identity_t **self_p,
                                     const uint8_t sign_secret[GKX_SIGN_SECRET_BYTES],
                                     const uint8_t curve_secret[GKX_CURVE_KEY_BYTES]);

/* Wipes and frees; accepts NULL and a NULL *self_p; sets *self_p to NULL. */
void gkx_identity_destroy (gkx_identity_t **self_p);

/* The node id (Ed25519 public key); borrowed for the identity's life. */
const uint8_t *gkx_identity_id (const gkx_identity_t *self);

/* The CurveZMQ public key; borrowed for the identity's life. */
const uint8_t *gkx_identity_curve_public (const gkx_identity_t *self);

/* The CurveZMQ secret key; borrowed, guarded memory, never log it. */
const uint8_t *gkx_identity_curve_secret (const gkx_identity_t *self);

/* The Ed25519 secret key; borrowed, guarded memory, never log it. */
const uint8_t *gkx_identity_sign_secret (const gkx_identity_t *self);

/* Signs prefix || msg (domain separation) into sig. */
void gkx_identity_sign (const gkx_identity_t *self, uint8_t sig[GKX_SIGNATURE_BYTES],
                        const char *prefix, const uint8_t *msg, size_t msg_len);

/* Verifies sig over prefix || msg by the key id. Returns GKX_OK or
   GKX_ESIGNATURE. */
GKX_NODISCARD int gkx_signature_verify (const uint8_t sig[GKX_SIGNATURE_BYTES],
                                        const char *prefix, const uint8_t *msg,
                                        size_t msg_len,
                                        const uint8_t id[GKX_ID_BYTES]);

/* Writes the text form of a 32-byte id (lowercase hex) into out. */
void gkx_id_format (char out[GKX_ID_TEXT_BYTES], const uint8_t id[GKX_ID_BYTES]);

/* Parses the text form of an id; upper case is accepted. Returns GKX_OK or
   GKX_EINVAL (errbuf names the problem). */
GKX_NODISCARD int gkx_id_parse (uint8_t id[GKX_ID_BYTES], const char *text, char *errbuf);

#ifdef __cplusplus
}
#endif

#endif
