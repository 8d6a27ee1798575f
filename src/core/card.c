/*  card - the self-signed tenant card.
    Part of gokart-exchange; MIT licence.

    Issuing, decoding and the JSON form all meet in one internal struct. The
    signed bytes are always produced by s_pack_fields, so the JSON form is
    verified by packing its fields and checking the signature over the result:
    a card read from JSON verifies only if it means exactly what was signed.
*/
#include <gkx/alloc.h>
#include <gkx/card.h>
#include <gkx/codec.h>
#include <gkx/kind.h>

#include <assert.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

/* A verified card: its fields and its encoded bytes. */
struct gkx_card {
    uint8_t id[GKX_ID_BYTES];                   /* signer and node id */
    uint8_t transport_key[GKX_CURVE_KEY_BYTES]; /* CurveZMQ public key */
    int role;                                   /* GKX_ROLE_* */
    char *name;                                 /* display name */
    char *endpoint;                             /* tcp://host:port or "" */
    char *email;                                /* contact or "" */
    char **verticals;                           /* owned strings */
    size_t verticals_count;
    char **countries;                           /* owned strings */
    size_t countries_count;
    uint64_t timestamp_ms;                      /* issue time */
    uint8_t signature[GKX_SIGNATURE_BYTES];     /* over prefix || fields */
    uint8_t *bytes;                             /* [fields, signature] */
    size_t bytes_len;
};

/* Packs a list of strings as an array. */
static void
s_pack_list (msgpack_packer *pk, char *const *items, size_t count)
{
    msgpack_pack_array (pk, count);
    for (size_t i = 0; i < count; i++) {
        gkx_codec_pack_cstr (pk, items[i]);
    }
}

/* Packs the signed fields as a canonical map (keys in sorted order). */
static void
s_pack_fields (msgpack_packer *pk, const gkx_card_t *self)
{
    msgpack_pack_map (pk, 9);
    gkx_codec_pack_cstr (pk, "countries");
    s_pack_list (pk, self->countries, self->countries_count);
    gkx_codec_pack_cstr (pk, "email");
    gkx_codec_pack_cstr (pk, self->email);
    gkx_codec_pack_cstr (pk, "endpoint");
    gkx_codec_pack_cstr (pk, self->endpoint);
    gkx_codec_pack_cstr (pk, "id");
    gkx_codec_pack_bin (pk, self->id, GKX_ID_BYTES);
    gkx_codec_pack_cstr (pk, "name");
    gkx_codec_pack_cstr (pk, self->name);
    gkx_codec_pack_cstr (pk, "role");
    gkx_codec_pack_cstr (pk, gkx_role_name (self->role));
    gkx_codec_pack_cstr (pk, "timestamp");
    msgpack_pack_uint64 (pk, self->timestamp_ms);
    gkx_codec_pack_cstr (pk, "transport_key");
    gkx_codec_pack_bin (pk, self->transport_key, GKX_CURVE_KEY_BYTES);
    gkx_codec_pack_cstr (pk, "verticals");
    s_pack_list (pk, self->verticals, self->verticals_count);
}

/* Encodes the fields alone, the bytes the signature covers. */
static void
s_fields_bytes (const gkx_card_t *self, msgpack_sbuffer *sbuf)
{
    msgpack_packer pk;
    msgpack_sbuffer_init (sbuf);
    msgpack_packer_init (&pk, sbuf, msgpack_sbuffer_write);
    s_pack_fields (&pk, self);
}

/* Fills self->bytes with [fields, signature]. */
static void
s_encode (gkx_card_t *self)
{
    msgpack_sbuffer sbuf;
    msgpack_packer pk;
    msgpack_sbuffer_init (&sbuf);
    msgpack_packer_init (&pk, &sbuf, msgpack_sbuffer_write);
    msgpack_pack_array (&pk, 2);
    s_pack_fields (&pk, self);
    gkx_codec_pack_bin (&pk, self->signature, GKX_SIGNATURE_BYTES);
    gkx_free (self->bytes);
    self->bytes = gkx_memdup (sbuf.data, sbuf.size);
    self->bytes_len = sbuf.size;
    msgpack_sbuffer_destroy (&sbuf);
}

/* Checks one text field's length and encoding. */
static int
s_check_text (const char *field, const char *value, int required, char *errbuf)
{
    size_t len = strlen (value);
    if (required && len == 0) {
        return gkx_fail (errbuf, GKX_EINVAL, "card.%s: must not be empty", field);
    }
    if (len > GKX_CARD_TEXT_MAX_BYTES) {
        return gkx_fail (errbuf, GKX_EINVAL, "card.%s: %zu bytes exceeds %d", field, len,
                         GKX_CARD_TEXT_MAX_BYTES);
    }
    if (!gkx_codec_is_utf8 (value, len)) {
        return gkx_fail (errbuf, GKX_EUTF8, "card.%s: not valid UTF-8", field);
    }
    return GKX_OK;
}

/* Checks the endpoint's shape: empty, or tcp://host:port. */
static int
s_check_endpoint (const char *endpoint, char *errbuf)
{
    if (*endpoint == '\0') {
        return GKX_OK;
    }
    const char *colon = strrchr (endpoint, ':');
    if (strncmp (endpoint, "tcp://", 6) != 0 || !colon || colon < endpoint + 7
        || colon[1] == '\0' || strspn (colon + 1, "0123456789") != strlen (colon + 1)
        || strlen (colon + 1) > 5 || atoi (colon + 1) < 1 || atoi (colon + 1) > 65535) {
        return gkx_fail (errbuf, GKX_EINVAL,
                         "card.endpoint: \"%.100s\" is not of the form tcp://host:port", endpoint);
    }
    return GKX_OK;
}

/* Checks every field of a card before it is signed or accepted. */
static int
s_check_fields (const gkx_card_t *self, char *errbuf)
{
    int rc;
    if (!gkx_role_name (self->role)) {
        return gkx_fail (errbuf, GKX_EINVAL, "card.role: must be advertiser or publisher");
    }
    /* JSON carries the timestamp as a signed 64-bit integer. */
    if (self->timestamp_ms > (uint64_t) INT64_MAX) {
        return gkx_fail (errbuf, GKX_EINVAL, "card.timestamp: out of range");
    }
    rc = s_check_text ("name", self->name, 1, errbuf);
    if (rc != GKX_OK) {
        return rc;
    }
    rc = s_check_text ("endpoint", self->endpoint, 0, errbuf);
    if (rc != GKX_OK) {
        return rc;
    }
    rc = s_check_endpoint (self->endpoint, errbuf);
    if (rc != GKX_OK) {
        return rc;
    }
    rc = s_check_text ("email", self->email, 0, errbuf);
    if (rc != GKX_OK) {
        return rc;
    }
    if (self->verticals_count > GKX_CARD_LIST_MAX || self->countries_count > GKX_CARD_LIST_MAX) {
        return gkx_fail (errbuf, GKX_EINVAL, "card: more than %d verticals or countries",
                         GKX_CARD_LIST_MAX);
    }
    for (size_t i = 0; i < self->verticals_count; i++) {
        rc = s_check_text ("verticals[]", self->verticals[i], 1, errbuf);
        if (rc != GKX_OK) {
            return rc;
        }
    }
    for (size_t i = 0; i < self->countries_count; i++) {
        const char *cc = self->countries[i];
        if (strlen (cc) != 2 || cc[0] < 'A' || cc[0] > 'Z' || cc[1] < 'A' || cc[1] > 'Z') {
            return gkx_fail (errbuf, GKX_EINVAL,
                             "card.countries[%zu]: \"%.16s\" is not an ISO 3166-1 alpha-2 code",
                             i, cc);
        }
    }
    return GKX_OK;
}

/* Copies a list of strings. */
static char **
s_copy_list (const char *const *items, size_t count)
{
    char **copy = gkx_zalloc ((count ? count : 1) * sizeof *copy);
    for (size_t i = 0; i < count; i++) {
        copy[i] = gkx_strdup (items[i]);
    }
    return copy;
}

/* Frees a list of strings. */
static void
s_free_list (char **items, size_t count)
{
    if (!items) {
        return;
    }
    for (size_t i = 0; i < count; i++) {
        gkx_free (items[i]);
    }
    gkx_free (items);
}

void
gkx_card_destroy (gkx_card_t **self_p)
{
    if (!self_p || !*self_p) {
        return;
    }
    gkx_card_t *self = *self_p;
    gkx_free (self->name);
    gkx_free (self->endpoint);
    gkx_free (self->email);
    s_free_list (self->verticals, self->verticals_count);
    s_free_list (self->countries, self->countries_count);
    gkx_free (self->bytes);
    gkx_free (self);
    *self_p = NULL;
}

/* Verifies the signature over the packed fields. */
static int
s_verify (const gkx_card_t *self)
{
    msgpack_sbuffer sbuf;
    s_fields_bytes (self, &sbuf);
    int rc = gkx_signature_verify (self->signature, GKX_CARD_SIGN_PREFIX,
                                   (const uint8_t *) sbuf.data, sbuf.size, self->id);
    msgpack_sbuffer_destroy (&sbuf);
    return rc;
}

int
gkx_card_issue (gkx_card_t **self_p, const gkx_identity_t *identity,
                const gkx_card_info_t *info, char *errbuf)
{
    assert (self_p && identity && info);
    gkx_card_t *self = gkx_zalloc (sizeof *self);
    memcpy (self->id, gkx_identity_id (identity), GKX_ID_BYTES);
    memcpy (self->transport_key, gkx_identity_curve_public (identity), GKX_CURVE_KEY_BYTES);
    self->role = info->role;
    self->name = gkx_strdup (info->name ? info->name : "");
    self->endpoint = gkx_strdup (info->endpoint ? info->endpoint : "");
    self->email = gkx_strdup (info->email ? info->email : "");
    self->verticals = s_copy_list (info->verticals, info->verticals_count);
    self->verticals_count = info->verticals_count;
    self->countries = s_copy_list (info->countries, info->countries_count);
    self->countries_count = info->countries_count;
    self->timestamp_ms = info->timestamp_ms;
    int rc = s_check_fields (self, errbuf);
    if (rc != GKX_OK) {
        gkx_card_destroy (&self);
        return rc;
    }
    msgpack_sbuffer sbuf;
    s_fields_bytes (self, &sbuf);
    gkx_identity_sign (identity, self->signature, GKX_CARD_SIGN_PREFIX,
                       (const uint8_t *) sbuf.data, sbuf.size);
    msgpack_sbuffer_destroy (&sbuf);
    s_encode (self);
    *self_p = self;
    return GKX_OK;
}

/* Reads a string field of a decoded map into an owned copy. */
static int
s_get_text (const msgpack_object *map, const char *key, char **out, char *errbuf)
{
    const msgpack_object *v = gkx_codec_map_get (map, key);
    if (!v || v->type != MSGPACK_OBJECT_STR) {
        return gkx_fail (errbuf, GKX_ETYPE, "card.%s: missing or not a string", key);
    }
    char *copy = gkx_zalloc (v->via.str.size + 1);
    memcpy (copy, v->via.str.ptr, v->via.str.size);
    if (strlen (copy) != v->via.str.size) {
        gkx_free (copy);
        return gkx_fail (errbuf, GKX_EINVAL, "card.%s: contains a NUL byte", key);
    }
    *out = copy;
    return GKX_OK;
}

/* Reads an array of strings of a decoded map. */
static int
s_get_list (const msgpack_object *map, const char *key, char ***out, size_t *count,
            char *errbuf)
{
    const msgpack_object *v = gkx_codec_map_get (map, key);
    if (!v || v->type != MSGPACK_OBJECT_ARRAY) {
        return gkx_fail (errbuf, GKX_ETYPE, "card.%s: missing or not an array", key);
    }
    if (v->via.array.size > GKX_CARD_LIST_MAX) {
        return gkx_fail (errbuf, GKX_EINVAL, "card.%s: more than %d items", key,
                         GKX_CARD_LIST_MAX);
    }
    char **items = gkx_zalloc ((v->via.array.size ? v->via.array.size : 1) * sizeof *items);
    *out = items;
    for (uint32_t i = 0; i < v->via.array.size; i++) {
        const msgpack_object *item = &v->via.array.ptr[i];
        if (item->type != MSGPACK_OBJECT_STR) {
            return gkx_fail (errbuf, GKX_ETYPE, "card.%s[%u]: not a string", key, i);
        }
        items[i] = gkx_zalloc (item->via.str.size + 1);
        memcpy (items[i], item->via.str.ptr, item->via.str.size);
        *count = i + 1;
        /* A NUL would cut the item short when the fields are re-packed to
           verify, so "FR\0x" would pass under the signature of "FR". */
        if (strlen (items[i]) != item->via.str.size) {
            return gkx_fail (errbuf, GKX_EINVAL, "card.%s[%u]: contains a NUL byte", key, i);
        }
    }
    return GKX_OK;
}

/* Reads a bin field of exactly size bytes. */
static int
s_get_bin (const msgpack_object *map, const char *key, uint8_t *out, size_t size,
           char *errbuf)
{
    const msgpack_object *v = gkx_codec_map_get (map, key);
    if (!v || v->type != MSGPACK_OBJECT_BIN || v->via.bin.size != size) {
        return gkx_fail (errbuf, GKX_ETYPE, "card.%s: expected bin of %zu bytes", key, size);
    }
    memcpy (out, v->via.bin.ptr, size);
    return GKX_OK;
}

int
gkx_card_decode (gkx_card_t **self_p, const uint8_t *buf, size_t len, char *errbuf)
{
    assert (self_p);
    if (len > GKX_CARD_MAX_BYTES) {
        return gkx_fail (errbuf, GKX_ETOOBIG, "card: %zu bytes exceeds %d", len,
                         GKX_CARD_MAX_BYTES);
    }
    msgpack_zone zone;
    msgpack_zone_init (&zone, 2048);
    msgpack_object root;
    gkx_card_t *self = gkx_zalloc (sizeof *self);
    int rc = gkx_codec_decode (&root, &zone, buf, len, "card", errbuf);
    if (rc != GKX_OK) {
        goto cleanup;
    }
    if (root.type != MSGPACK_OBJECT_ARRAY || root.via.array.size != 2
        || root.via.array.ptr[0].type != MSGPACK_OBJECT_MAP
        || root.via.array.ptr[0].via.map.size != 9
        || root.via.array.ptr[1].type != MSGPACK_OBJECT_BIN
        || root.via.array.ptr[1].via.bin.size != GKX_SIGNATURE_BYTES) {
        rc = gkx_fail (errbuf, GKX_ETYPE,
                       "card: expected [map of 9 fields, bin of %d bytes]", GKX_SIGNATURE_BYTES);
        goto cleanup;
    }
    const msgpack_object *fields = &root.via.array.ptr[0];
    memcpy (self->signature, root.via.array.ptr[1].via.bin.ptr, GKX_SIGNATURE_BYTES);
    char *role = NULL;
    rc = s_get_bin (fields, "id", self->id, GKX_ID_BYTES, errbuf);
    if (rc == GKX_OK) {
        rc = s_get_bin (fields, "transport_key", self->transport_key, GKX_CURVE_KEY_BYTES, errbuf);
    }
    if (rc == GKX_OK) {
        rc = s_get_text (fields, "name", &self->name, errbuf);
    }
    if (rc == GKX_OK) {
        rc = s_get_text (fields, "endpoint", &self->endpoint, errbuf);
    }
    if (rc == GKX_OK) {
        rc = s_get_text (fields, "email", &self->email, errbuf);
    }
    if (rc == GKX_OK) {
        rc = s_get_list (fields, "verticals", &self->verticals, &self->verticals_count, errbuf);
    }
    if (rc == GKX_OK) {
        rc = s_get_list (fields, "countries", &self->countries, &self->countries_count, errbuf);
    }
    if (rc == GKX_OK) {
        rc = s_get_text (fields, "role", &role, errbuf);
    }
    if (rc != GKX_OK) {
        goto cleanup;
    }
    rc = gkx_role_parse (role, &self->role);
    gkx_free (role);
    if (rc != GKX_OK) {
        rc = gkx_fail (errbuf, GKX_EINVAL, "card.role: must be advertiser or publisher");
        goto cleanup;
    }
    const msgpack_object *ts = gkx_codec_map_get (fields, "timestamp");
    if (!ts || ts->type != MSGPACK_OBJECT_POSITIVE_INTEGER) {
        rc = gkx_fail (errbuf, GKX_ETYPE, "card.timestamp: missing or not an unsigned integer");
        goto cleanup;
    }
    self->timestamp_ms = ts->via.u64;
    rc = s_check_fields (self, errbuf);
    if (rc != GKX_OK) {
        goto cleanup;
    }
    rc = s_verify (self);
    if (rc != GKX_OK) {
        gkx_fail (errbuf, rc, "card: signature does not verify for its id");
        goto cleanup;
    }
    self->bytes = gkx_memdup (buf, len);
    self->bytes_len = len;
    *self_p = self;
    self = NULL;
cleanup:
    gkx_card_destroy (&self);
    msgpack_zone_destroy (&zone);
    return rc;
}

/* Reads a hex field of a JSON card into exactly size bytes. */
static int
s_json_hex (const json_t *json, const char *key, uint8_t *out, size_t size, char *errbuf)
{
    const char *text = json_string_value (json_object_get (json, key));
    size_t bin_len = 0;
    const char *end = NULL;
    if (!text || strlen (text) != 2 * size
        || sodium_hex2bin (out, size, text, strlen (text), NULL, &bin_len, &end) != 0
        || bin_len != size || *end != '\0') {
        return gkx_fail (errbuf, GKX_ETYPE, "card.%s: expected %zu hex digits", key, 2 * size);
    }
    return GKX_OK;
}

/* Reads a JSON string field into an owned copy. */
static int
s_json_text (const json_t *json, const char *key, char **out, char *errbuf)
{
    const char *text = json_string_value (json_object_get (json, key));
    if (!text) {
        return gkx_fail (errbuf, GKX_ETYPE, "card.%s: missing or not a string", key);
    }
    *out = gkx_strdup (text);
    return GKX_OK;
}

/* Reads a JSON array of strings. */
static int
s_json_list (const json_t *json, const char *key, char ***out, size_t *count, char *errbuf)
{
    const json_t *array = json_object_get (json, key);
    if (!json_is_array (array)) {
        return gkx_fail (errbuf, GKX_ETYPE, "card.%s: missing or not an array", key);
    }
    size_t size = json_array_size (array);
    if (size > GKX_CARD_LIST_MAX) {
        return gkx_fail (errbuf, GKX_EINVAL, "card.%s: more than %d items", key,
                         GKX_CARD_LIST_MAX);
    }
    char **items = gkx_zalloc ((size ? size : 1) * sizeof *items);
    *out = items;
    for (size_t i = 0; i < size; i++) {
        const char *text = json_string_value (json_array_get (array, i));
        if (!text) {
            return gkx_fail (errbuf, GKX_ETYPE, "card.%s[%zu]: not a string", key, i);
        }
        items[i] = gkx_strdup (text);
        *count = i + 1;
    }
    return GKX_OK;
}

int
gkx_card_from_json (gkx_card_t **self_p, const json_t *json, char *errbuf)
{
    assert (self_p);
    if (!json_is_object (json)) {
        return gkx_fail (errbuf, GKX_ETYPE, "card: expected a JSON object");
    }
    gkx_card_t *self = gkx_zalloc (sizeof *self);
    char *role = NULL;
    int rc;
    rc = s_json_hex (json, "id", self->id, GKX_ID_BYTES, errbuf);
    if (rc == GKX_OK) {
        rc = s_json_hex (json, "transport_key", self->transport_key, GKX_CURVE_KEY_BYTES, errbuf);
    }
    if (rc == GKX_OK) {
        rc = s_json_hex (json, "signature", self->signature, GKX_SIGNATURE_BYTES, errbuf);
    }
    if (rc == GKX_OK) {
        rc = s_json_text (json, "name", &self->name, errbuf);
    }
    if (rc == GKX_OK) {
        rc = s_json_text (json, "endpoint", &self->endpoint, errbuf);
    }
    if (rc == GKX_OK) {
        rc = s_json_text (json, "email", &self->email, errbuf);
    }
    if (rc == GKX_OK) {
        rc = s_json_list (json, "verticals", &self->verticals, &self->verticals_count, errbuf);
    }
    if (rc == GKX_OK) {
        rc = s_json_list (json, "countries", &self->countries, &self->countries_count, errbuf);
    }
    if (rc == GKX_OK) {
        rc = s_json_text (json, "role", &role, errbuf);
    }
    if (rc != GKX_OK) {
        goto cleanup;
    }
    if (gkx_role_parse (role, &self->role) != GKX_OK) {
        rc = gkx_fail (errbuf, GKX_EINVAL, "card.role: must be advertiser or publisher");
        goto cleanup;
    }
    const json_t *ts = json_object_get (json, "timestamp");
    if (!json_is_integer (ts) || json_integer_value (ts) < 0) {
        rc = gkx_fail (errbuf, GKX_ETYPE, "card.timestamp: missing or not a non-negative integer");
        goto cleanup;
    }
    self->timestamp_ms = (uint64_t) json_integer_value (ts);
    rc = s_check_fields (self, errbuf);
    if (rc != GKX_OK) {
        goto cleanup;
    }
    rc = s_verify (self);
    if (rc != GKX_OK) {
        gkx_fail (errbuf, rc, "card: signature does not verify for its id");
        goto cleanup;
    }
    s_encode (self);
    *self_p = self;
    self = NULL;
cleanup:
    gkx_free (role);
    gkx_card_destroy (&self);
    return rc;
}

/* Builds a JSON array from a list of strings. */
static json_t *
s_list_json (char *const *items, size_t count)
{
    json_t *array = json_array ();
    for (size_t i = 0; i < count; i++) {
        json_array_append_new (array, json_string (items[i]));
    }
    return array;
}

json_t *
gkx_card_to_json (const gkx_card_t *self)
{
    char id[GKX_ID_TEXT_BYTES];
    char key[2 * GKX_CURVE_KEY_BYTES + 1];
    char sig[2 * GKX_SIGNATURE_BYTES + 1];
    gkx_id_format (id, self->id);
    sodium_bin2hex (key, sizeof key, self->transport_key, GKX_CURVE_KEY_BYTES);
    sodium_bin2hex (sig, sizeof sig, self->signature, GKX_SIGNATURE_BYTES);
    return json_pack ("{s:s, s:s, s:s, s:s, s:s, s:s, s:o, s:o, s:I, s:s}",
                      "id", id, "transport_key", key, "role", gkx_role_name (self->role),
                      "name", self->name, "endpoint", self->endpoint, "email", self->email,
                      "verticals", s_list_json (self->verticals, self->verticals_count),
                      "countries", s_list_json (self->countries, self->countries_count),
                      "timestamp", (json_int_t) self->timestamp_ms, "signature", sig);
}

const uint8_t *
gkx_card_bytes (const gkx_card_t *self, size_t *len_p)
{
    *len_p = self->bytes_len;
    return self->bytes;
}

const uint8_t *
gkx_card_id (const gkx_card_t *self)
{
    return self->id;
}

const uint8_t *
gkx_card_transport_key (const gkx_card_t *self)
{
    return self->transport_key;
}

int
gkx_card_role (const gkx_card_t *self)
{
    return self->role;
}

const char *
gkx_card_name (const gkx_card_t *self)
{
    return self->name;
}

const char *
gkx_card_endpoint (const gkx_card_t *self)
{
    return self->endpoint;
}

const char *
gkx_card_email (const gkx_card_t *self)
{
    return self->email;
}

uint64_t
gkx_card_timestamp (const gkx_card_t *self)
{
    return self->timestamp_ms;
}

size_t
gkx_card_verticals_count (const gkx_card_t *self)
{
    return self->verticals_count;
}

const char *
gkx_card_vertical (const gkx_card_t *self, size_t index)
{
    assert (index < self->verticals_count);
    return self->verticals[index];
}

size_t
gkx_card_countries_count (const gkx_card_t *self)
{
    return self->countries_count;
}

const char *
gkx_card_country (const gkx_card_t *self, size_t index)
{
    assert (index < self->countries_count);
    return self->countries[index];
}
