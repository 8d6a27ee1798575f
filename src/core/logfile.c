/*  logfile - the exported log of one partnership, read from bytes.
    Part of gokart-exchange; MIT licence.

    The header is a canonical map; each following value is framed by its
    own msgpack length, found without decoding, so one damaged entry does
    not hide the ones after it. Only a frame that cannot be delimited ends
    the parse.
*/
#include <gkx/alloc.h>
#include <gkx/codec.h>
#include <gkx/logfile.h>

#include <assert.h>
#include <string.h>

/* One entry slot of an export. */
typedef struct {
    gkx_entry_t *entry;             /* NULL when it did not decode */
    int error;                      /* its decode error, or GKX_OK */
    char message[GKX_ERRBUF_BYTES]; /* the decoder's message */
    size_t offset;                  /* where it starts in the export */
} s_slot_t;

/* A parsed export. */
struct gkx_logfile {
    gkx_logfile_header_t header;
    s_slot_t *slots;
    size_t count;
};

void
gkx_logfile_header_encode (msgpack_sbuffer *sbuf, const gkx_logfile_header_t *header)
{
    msgpack_packer pk;
    msgpack_packer_init (&pk, sbuf, msgpack_sbuffer_write);
    msgpack_pack_map (&pk, 8);
    gkx_codec_pack_cstr (&pk, "advertiser");
    gkx_codec_pack_bin (&pk, header->advertiser, GKX_ID_BYTES);
    gkx_codec_pack_cstr (&pk, "entries");
    msgpack_pack_uint64 (&pk, header->entry_count);
    gkx_codec_pack_cstr (&pk, "exported_at");
    msgpack_pack_uint64 (&pk, header->exported_at_ms);
    gkx_codec_pack_cstr (&pk, "exported_by");
    gkx_codec_pack_bin (&pk, header->exported_by, GKX_ID_BYTES);
    gkx_codec_pack_cstr (&pk, "format");
    gkx_codec_pack_cstr (&pk, GKX_LOGFILE_FORMAT);
    gkx_codec_pack_cstr (&pk, "pid");
    gkx_codec_pack_bin (&pk, header->pid, GKX_ID_BYTES);
    gkx_codec_pack_cstr (&pk, "publisher");
    gkx_codec_pack_bin (&pk, header->publisher, GKX_ID_BYTES);
    gkx_codec_pack_cstr (&pk, "version");
    msgpack_pack_uint64 (&pk, GKX_LOGFILE_VERSION);
}

/* Reads a bin field of the header. */
static int
s_header_bin (const msgpack_object *map, const char *key, uint8_t *out, char *errbuf)
{
    const msgpack_object *v = gkx_codec_map_get (map, key);
    if (!v || v->type != MSGPACK_OBJECT_BIN || v->via.bin.size != GKX_ID_BYTES) {
        return gkx_fail (errbuf, GKX_EFORMAT, "export header.%s: expected bin of %d bytes",
                         key, GKX_ID_BYTES);
    }
    memcpy (out, v->via.bin.ptr, GKX_ID_BYTES);
    return GKX_OK;
}

/* Reads an unsigned field of the header. */
static int
s_header_uint (const msgpack_object *map, const char *key, uint64_t *out, char *errbuf)
{
    const msgpack_object *v = gkx_codec_map_get (map, key);
    if (!v || v->type != MSGPACK_OBJECT_POSITIVE_INTEGER) {
        return gkx_fail (errbuf, GKX_EFORMAT, "export header.%s: expected an unsigned integer",
                         key);
    }
    *out = v->via.u64;
    return GKX_OK;
}

/* Parses and checks the header map. */
static int
s_parse_header (gkx_logfile_header_t *header, const msgpack_object *map, char *errbuf)
{
    const msgpack_object *format = gkx_codec_map_get (map, "format");
    if (!format || format->type != MSGPACK_OBJECT_STR
        || format->via.str.size != strlen (GKX_LOGFILE_FORMAT)
        || memcmp (format->via.str.ptr, GKX_LOGFILE_FORMAT, format->via.str.size) != 0) {
        return gkx_fail (errbuf, GKX_EFORMAT, "export: not a gokart-exchange log export");
    }
    uint64_t version = 0;
    int rc = s_header_uint (map, "version", &version, errbuf);
    if (rc != GKX_OK) {
        return rc;
    }
    if (version != GKX_LOGFILE_VERSION) {
        return gkx_fail (errbuf, GKX_EFORMAT, "export: format version %llu; this build reads %d",
                         (unsigned long long) version, GKX_LOGFILE_VERSION);
    }
    rc = s_header_bin (map, "pid", header->pid, errbuf);
    if (rc == GKX_OK) {
        rc = s_header_bin (map, "advertiser", header->advertiser, errbuf);
    }
    if (rc == GKX_OK) {
        rc = s_header_bin (map, "publisher", header->publisher, errbuf);
    }
    if (rc == GKX_OK) {
        rc = s_header_bin (map, "exported_by", header->exported_by, errbuf);
    }
    if (rc == GKX_OK) {
        rc = s_header_uint (map, "exported_at", &header->exported_at_ms, errbuf);
    }
    if (rc == GKX_OK) {
        rc = s_header_uint (map, "entries", &header->entry_count, errbuf);
    }
    return rc;
}

int
gkx_logfile_parse (gkx_logfile_t **self_p, const uint8_t *buf, size_t len, char *errbuf)
{
    assert (self_p);
    size_t header_len = 0;
    int rc = gkx_codec_value_length (buf, len, &header_len, "export header", errbuf);
    if (rc != GKX_OK) {
        return gkx_fail (errbuf, GKX_EFORMAT, "export: no readable header (not an export?)");
    }
    msgpack_zone zone;
    msgpack_zone_init (&zone, 1024);
    msgpack_object map;
    gkx_logfile_t *self = gkx_zalloc (sizeof *self);
    rc = gkx_codec_decode (&map, &zone, buf, header_len, "export header", errbuf);
    if (rc == GKX_OK && map.type != MSGPACK_OBJECT_MAP) {
        rc = gkx_fail (errbuf, GKX_EFORMAT, "export: not a gokart-exchange log export");
    }
    if (rc == GKX_OK) {
        rc = s_parse_header (&self->header, &map, errbuf);
    }
    msgpack_zone_destroy (&zone);
    size_t capacity = 0;
    size_t pos = header_len;
    while (rc == GKX_OK && pos < len) {
        size_t entry_len = 0;
        rc = gkx_codec_value_length (buf + pos, len - pos, &entry_len, "export", errbuf);
        if (rc != GKX_OK) {
            gkx_fail (errbuf, rc, "export: entry %zu at byte %zu cannot be delimited; the rest "
                      "of the file is unreadable", self->count, pos);
            break;
        }
        if (self->count == capacity) {
            capacity = capacity ? capacity * 2 : 64;
            self->slots = gkx_realloc (self->slots, capacity * sizeof *self->slots);
        }
        s_slot_t *slot = &self->slots[self->count++];
        memset (slot, 0, sizeof *slot);
        slot->offset = pos;
        slot->error = gkx_entry_decode (&slot->entry, buf + pos, entry_len, slot->message);
        pos += entry_len;
    }
    if (rc != GKX_OK) {
        gkx_logfile_destroy (&self);
        return rc;
    }
    *self_p = self;
    return GKX_OK;
}

void
gkx_logfile_destroy (gkx_logfile_t **self_p)
{
    if (!self_p || !*self_p) {
        return;
    }
    gkx_logfile_t *self = *self_p;
    for (size_t i = 0; i < self->count; i++) {
        gkx_entry_destroy (&self->slots[i].entry);
    }
    gkx_free (self->slots);
    gkx_free (self);
    *self_p = NULL;
}

const gkx_logfile_header_t *
gkx_logfile_header (const gkx_logfile_t *self)
{
    return &self->header;
}

size_t
gkx_logfile_count (const gkx_logfile_t *self)
{
    return self->count;
}

const gkx_entry_t *
gkx_logfile_entry (const gkx_logfile_t *self, size_t i)
{
    assert (i < self->count);
    return self->slots[i].entry;
}

int
gkx_logfile_entry_error (const gkx_logfile_t *self, size_t i, const char **message_p)
{
    assert (i < self->count);
    if (message_p) {
        *message_p = self->slots[i].message;
    }
    return self->slots[i].error;
}

size_t
gkx_logfile_entry_offset (const gkx_logfile_t *self, size_t i)
{
    assert (i < self->count);
    return self->slots[i].offset;
}
