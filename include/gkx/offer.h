/*  offer - the shared offer: schema, validation and edit operations.
    Part of gokart-exchange; MIT licence.

    An offer has two forms. The JSON form is what people, the API and the CLI
    see: amounts are decimal strings ("2.50"), times are ISO 8601 UTC strings,
    creatives and payout rules are arrays of objects with an "id". The internal
    form is what is signed and hashed: amounts are integers in micro-units,
    times are Unix seconds, every field is present, sets are sorted arrays and
    keyed collections are maps; its canonical msgpack encoding is the genesis
    entry's "offer" value and the input of the state digest.

    Edits are lists of operations (gkx_offer_ops_t): set a scalar field, add or
    remove one element of a set-valued field, put or remove one entry of a
    keyed collection. They come from the CLI syntax (PATH=VALUE, PATH+=VALUE,
    PATH-=VALUE, PATH=null) or from an RFC 7386 merge patch, and travel as the
    body of edit and propose entries. docs/offer-schema.md lists every field,
    its bounds and the body formats. Nothing here does I/O.
*/
#ifndef GKX_OFFER_H_INCLUDED
#define GKX_OFFER_H_INCLUDED

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include <gkx/error.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Size of a state digest (BLAKE2b-256) and of its hex text with the NUL. */
#define GKX_OFFER_DIGEST_BYTES 32
#define GKX_OFFER_DIGEST_HEX_BYTES 65

/* Most operations one edit or propose entry may carry. */
#define GKX_OFFER_OPS_MAX 1024

/* Flags for json_dumps that give the one byte-exact text of any JSON value
   this module or gkx_merge returns. */
#define GKX_OFFER_JSON_FLAGS (JSON_COMPACT | JSON_SORT_KEYS)

/* What an operation does. */
typedef enum {
    GKX_OFFER_OP_SET = 1,    /* replace a scalar field's value */
    GKX_OFFER_OP_ADD = 2,    /* add a set element, or put a keyed entry */
    GKX_OFFER_OP_REMOVE = 3, /* remove a set element or a keyed entry */
} gkx_offer_verb_t;

/* A validated offer in internal form. */
typedef struct gkx_offer gkx_offer_t;

/* An ordered list of edit operations. */
typedef struct gkx_offer_ops gkx_offer_ops_t;

/* What one operation touches, borrowed from the list it describes. */
typedef struct {
    int verb;         /* a gkx_offer_verb_t */
    const char *path; /* the field, e.g. "targeting.countries" */
    const char *key;  /* element or entry key; NULL for a scalar field */
} gkx_offer_op_info_t;

/* Validates an offer in JSON form and returns it in *offer_p, which the
   caller destroys. Missing optional fields take their defaults. Returns
   GKX_OK, or GKX_EINVAL with errbuf naming the field path and the rule, e.g.
   `targeting.countries[2]: "XX" is not an ISO 3166-1 country code`; *offer_p
   is set only on success. */
int gkx_offer_from_json (gkx_offer_t **offer_p, const json_t *json, char *errbuf)
    GKX_NODISCARD;

/* Same as gkx_offer_from_json for JSON text; invalid JSON and duplicate keys
   give GKX_EINVAL. */
int gkx_offer_from_text (gkx_offer_t **offer_p, const char *text, char *errbuf)
    GKX_NODISCARD;

/* Returns the JSON form of the offer, a new reference the caller owns. Sets
   and collections are sorted bytewise by element or id. */
json_t *gkx_offer_to_json (const gkx_offer_t *self);

/* Returns the JSON form as text dumped with GKX_OFFER_JSON_FLAGS; the caller
   frees it with free(). */
char *gkx_offer_to_text (const gkx_offer_t *self);

/* Writes the canonical msgpack of the internal form into a new buffer in
   *bytes_p (caller frees with gkx_free) of *len_p bytes. Cannot fail. */
void gkx_offer_encode (const gkx_offer_t *self, uint8_t **bytes_p, size_t *len_p);

/* Decodes and validates the canonical msgpack of an offer (the genesis
   "offer" value). Returns GKX_OK, or GKX_EBODY with errbuf naming the problem
   (malformed, not canonical, or breaking a schema rule). */
int gkx_offer_decode (gkx_offer_t **offer_p, const uint8_t *bytes, size_t len,
                      char *errbuf) GKX_NODISCARD;

/* Returns a deep copy the caller destroys. */
gkx_offer_t *gkx_offer_dup (const gkx_offer_t *self);

/* Destroys an offer; accepts NULL and sets *self_p to NULL. */
void gkx_offer_destroy (gkx_offer_t **self_p);

/* Writes the BLAKE2b-256 of the canonical msgpack of the offer. */
void gkx_offer_digest (const gkx_offer_t *self,
                       uint8_t digest[GKX_OFFER_DIGEST_BYTES]);

/* Returns non-zero when both offers have the same canonical encoding. */
int gkx_offer_is_equal (const gkx_offer_t *self, const gkx_offer_t *other);

/* Returns the payout in micro-units for a conversion of event (NULL for the
   default event) from country and platform (either may be NULL), following
   the precedence in docs/offer-schema.md: the most specific matching
   payout.rules entry, else payout.events[event], else payout.amount. */
int64_t gkx_offer_payout (const gkx_offer_t *self, const char *event,
                          const char *country, const char *platform);

/* Returns the internal value of a scalar field named by its path
   ("caps.daily", "payout.currency"): a string, an integer (micro-units,
   Unix seconds, counts) or null, borrowed from the offer; NULL when path
   names no scalar field. The JSON form converts these for people. */
const json_t *gkx_offer_value (const gkx_offer_t *self, const char *path);

/* Applies operation index of ops to the offer, enforcing the rules that
   depend on the whole offer (element limits, schedule order, revshare
   percentages). On GKX_OK the offer has changed; on GKX_EINVAL (errbuf says
   why) it is unchanged. When old_p/new_p are not NULL they receive, in both
   cases, new references to the JSON form of the touched value before and
   after (the whole set for set fields, the entry or null for keyed
   collections). */
int gkx_offer_apply (gkx_offer_t *self, const gkx_offer_ops_t *ops, size_t index,
                     json_t **old_p, json_t **new_p, char *errbuf);

/* Like gkx_offer_apply but never changes the offer: returns what applying
   would return and fills old_p/new_p the same way. */
int gkx_offer_preview (const gkx_offer_t *self, const gkx_offer_ops_t *ops,
                       size_t index, json_t **old_p, json_t **new_p, char *errbuf);

/* Returns a new, empty list of operations. */
gkx_offer_ops_t *gkx_offer_ops_new (void);

/* Destroys a list; accepts NULL and sets *self_p to NULL. */
void gkx_offer_ops_destroy (gkx_offer_ops_t **self_p);

/* Returns the number of operations. */
size_t gkx_offer_ops_size (const gkx_offer_ops_t *self);

/* Describes operation index (< size); the strings live as long as the list. */
void gkx_offer_ops_info (const gkx_offer_ops_t *self, size_t index,
                         gkx_offer_op_info_t *info);

/* Parses one CLI edit and appends its operations: PATH=VALUE sets a field
   (a set or collection field takes a JSON array or object and is replaced),
   PATH=null clears it, PATH+=VALUE adds an element (a JSON object for
   creatives and payout.rules), PATH-=VALUE removes one, and COLLECTION.KEY=
   VALUE puts one entry of payout.events, settings, creatives or payout.rules.
   current is the offer being edited, used to turn replacements into element
   operations. Returns GKX_OK, or GKX_EINVAL with errbuf; on failure the list
   is unchanged. */
int gkx_offer_ops_parse_edit (gkx_offer_ops_t *self, const gkx_offer_t *current,
                              const char *edit, char *errbuf) GKX_NODISCARD;

/* Turns an RFC 7386 merge patch on the JSON form of current into operations
   appended to the list (values equal to the current ones give none). Returns
   GKX_OK, or GKX_EINVAL with errbuf; on failure the list is unchanged. */
int gkx_offer_ops_from_patch (gkx_offer_ops_t *self, const gkx_offer_t *current,
                              const json_t *patch, char *errbuf) GKX_NODISCARD;

/* Writes the canonical msgpack body of an edit or propose entry,
   {"ops": [...]}, into a new buffer (caller frees with gkx_free). Returns
   GKX_OK, or GKX_EINVAL when the list is empty or longer than
   GKX_OFFER_OPS_MAX. */
int gkx_offer_ops_encode (const gkx_offer_ops_t *self, uint8_t **body_p,
                          size_t *len_p, char *errbuf) GKX_NODISCARD;

/* Decodes and validates the body of an edit or propose entry; the caller
   destroys *ops_p. Returns GKX_OK, or GKX_EBODY with errbuf naming the
   operation and field, e.g. `ops[1]: payout.amount: ...`. */
int gkx_offer_ops_decode (gkx_offer_ops_t **ops_p, const uint8_t *body,
                          size_t len, char *errbuf) GKX_NODISCARD;

/* Returns the operations in JSON form, [{"op", "field", "key", "value"}],
   a new reference the caller owns. */
json_t *gkx_offer_ops_to_json (const gkx_offer_ops_t *self);

/* Returns non-zero when code (NUL-terminated) is an ISO 3166-1 alpha-2
   country code the offer accepts, in upper case. */
int gkx_offer_is_country (const char *code);

/* Returns non-zero when code (NUL-terminated) is an ISO 4217 currency code
   the offer accepts, in upper case. */
int gkx_offer_is_currency (const char *code);

/* Returns non-zero when path names a field or a group of fields
   ("payout", "targeting", ...) of the schema. */
int gkx_offer_is_path (const char *path);

#ifdef __cplusplus
}
#endif

#endif
