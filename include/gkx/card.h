/*  card - the self-signed tenant card.
    Part of gokart-exchange; MIT licence.

    A card says who a node is: its id, its CurveZMQ transport key, its role,
    display name, endpoint, contact e-mail, verticals, countries and when it
    was issued, signed by the id's own key. A directory can drop a card but
    cannot forge one; a peer's transport key is taken only from its verified
    card. The msgpack form is [fields, signature] where fields is a canonical
    map; the signature covers "GKX-CARD-V1" || the encoded fields. The JSON
    form carries the same fields and is verified by re-encoding them.
*/
#ifndef GKX_CARD_H_INCLUDED
#define GKX_CARD_H_INCLUDED

#include <gkx/error.h>
#include <gkx/identity.h>

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Domain-separation prefix of card signatures. */
#define GKX_CARD_SIGN_PREFIX "GKX-CARD-V1"
/* Longest name, endpoint or e-mail, in bytes. */
#define GKX_CARD_TEXT_MAX_BYTES 256
/* Most verticals or countries on one card. */
#define GKX_CARD_LIST_MAX 64
/* Largest encoded card. */
#define GKX_CARD_MAX_BYTES 16384

/* What a node says about itself; input to gkx_card_issue. */
typedef struct {
    int role;                 /* GKX_ROLE_ADVERTISER or GKX_ROLE_PUBLISHER */
    const char *name;         /* display name, 1..GKX_CARD_TEXT_MAX_BYTES */
    const char *endpoint;     /* "tcp://host:port" or "" when not reachable */
    const char *email;        /* contact address or "" */
    const char **verticals;   /* free-text verticals */
    size_t verticals_count;
    const char **countries;   /* ISO 3166-1 alpha-2 codes */
    size_t countries_count;
    uint64_t timestamp_ms;    /* when issued; newer cards replace older */
} gkx_card_info_t;

typedef struct gkx_card gkx_card_t;

/* Builds and signs a card for identity. Returns GKX_OK or GKX_EINVAL with
   errbuf naming the field. The card is the caller's. */
GKX_NODISCARD int gkx_card_issue (gkx_card_t **self_p, const gkx_identity_t *identity,
                                  const gkx_card_info_t *info, char *errbuf);

/* Decodes and verifies a card in msgpack form. Returns GKX_OK, a codec code,
   GKX_ETYPE/GKX_EINVAL for a bad field, or GKX_ESIGNATURE. */
GKX_NODISCARD int gkx_card_decode (gkx_card_t **self_p, const uint8_t *buf, size_t len,
                                   char *errbuf);

/* Reads and verifies a card in JSON form, as gkx_card_to_json writes it.
   Returns as gkx_card_decode. */
GKX_NODISCARD int gkx_card_from_json (gkx_card_t **self_p, const json_t *json,
                                      char *errbuf);

/* Returns the card as a new JSON object (the caller's, json_decref it). */
json_t *gkx_card_to_json (const gkx_card_t *self);

/* Frees; accepts NULL; sets *self_p to NULL. */
void gkx_card_destroy (gkx_card_t **self_p);

/* The encoded card (msgpack); borrowed for the card's life. */
const uint8_t *gkx_card_bytes (const gkx_card_t *self, size_t *len_p);

/* Accessors; strings and keys are borrowed for the card's life. */
const uint8_t *gkx_card_id (const gkx_card_t *self);
const uint8_t *gkx_card_transport_key (const gkx_card_t *self);
int gkx_card_role (const gkx_card_t *self);
const char *gkx_card_name (const gkx_card_t *self);
const char *gkx_card_endpoint (const gkx_card_t *self);
const char *gkx_card_email (const gkx_card_t *self);
uint64_t gkx_card_timestamp (const gkx_card_t *self);

/* The card's verticals and countries: how many, and item index (below the
   count), borrowed for the card's life. */
size_t gkx_card_verticals_count (const gkx_card_t *self);
const char *gkx_card_vertical (const gkx_card_t *self, size_t index);
size_t gkx_card_countries_count (const gkx_card_t *self);
const char *gkx_card_country (const gkx_card_t *self, size_t index);

#ifdef __cplusplus
}
#endif

#endif
