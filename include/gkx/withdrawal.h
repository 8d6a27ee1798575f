/*  withdrawal - a node's signed request to drop its card from directories.
    Part of gokart-exchange; MIT licence.

    A directory lists the tenant cards nodes publish to it (docs/protocol.md,
    "Directory"). The owner of a card removes it with a withdrawal: its id
    and a time, signed by the id's own key, so no one else can remove a card
    and a directory cannot pretend its owner did. The signature covers
    "GKX-WITHDRAW-V1" || id (32 bytes) || time (8 bytes, big-endian). The
    msgpack form is [id bin32, time, signature bin64].

    A withdrawal covers every card of its id issued at or before its time: a
    directory drops such a card and keeps the withdrawal, so that an older
    card sent again cannot bring the listing back, while a card issued later
    (the owner publishing again) replaces it. Pure: no I/O here.
*/
#ifndef GKX_WITHDRAWAL_H_INCLUDED
#define GKX_WITHDRAWAL_H_INCLUDED

#include <gkx/card.h>
#include <gkx/error.h>
#include <gkx/identity.h>

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Domain-separation prefix of withdrawal signatures. */
#define GKX_WITHDRAWAL_SIGN_PREFIX "GKX-WITHDRAW-V1"
/* Bytes of the signed message after the prefix: id and big-endian time. */
#define GKX_WITHDRAWAL_SIGNED_BYTES (GKX_ID_BYTES + 8)
/* Largest encoded withdrawal (the encoding takes 110 bytes at most). */
#define GKX_WITHDRAWAL_MAX_BYTES 128

typedef struct gkx_withdrawal gkx_withdrawal_t;

/* Creates the withdrawal of identity's card at time_ms (milliseconds since
   the epoch, at most INT64_MAX, as card timestamps), signed by identity.
   Cannot fail; the withdrawal is the caller's. */
gkx_withdrawal_t *gkx_withdrawal_new (const gkx_identity_t *identity, uint64_t time_ms);

/* Decodes and verifies a withdrawal in msgpack form into *self_p (the
   caller's; set only on success). Returns GKX_OK, GKX_ETOOBIG (over
   GKX_WITHDRAWAL_MAX_BYTES), a codec code, GKX_ETYPE (not [bin32, uint,
   bin64]), GKX_EINVAL (time over INT64_MAX) or GKX_ESIGNATURE, with errbuf
   naming the field. */
GKX_NODISCARD int gkx_withdrawal_decode (gkx_withdrawal_t **self_p, const uint8_t *buf,
                                         size_t len, char *errbuf);

/* Frees; accepts NULL; sets *self_p to NULL. */
void gkx_withdrawal_destroy (gkx_withdrawal_t **self_p);

/* The encoded withdrawal (msgpack); borrowed for the withdrawal's life. */
const uint8_t *gkx_withdrawal_bytes (const gkx_withdrawal_t *self, size_t *len_p);

/* The withdrawn id; borrowed for the withdrawal's life. */
const uint8_t *gkx_withdrawal_id (const gkx_withdrawal_t *self);

/* When the card was withdrawn, in milliseconds since the epoch. */
uint64_t gkx_withdrawal_time (const gkx_withdrawal_t *self);

/* Returns 1 when card is of the withdrawn id and was issued at or before
   the withdrawal (a directory must not list it), else 0. */
int gkx_withdrawal_is_covering (const gkx_withdrawal_t *self, const gkx_card_t *card);

#ifdef __cplusplus
}
#endif

#endif
