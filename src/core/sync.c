/*  sync - the replication protocol's messages.
    Part of gokart-exchange; MIT licence.

    Headers go through the strict codec like entries do, so a peer cannot
    make the node allocate or parse more than the frame's bytes allow.
*/
#include <gkx/alloc.h>
#include <gkx/codec.h>
#include <gkx/sync.h>

#include <string.h>

void
gkx_sync_heads_encode (msgpack_sbuffer *sbuf, int resync, const gkx_sync_head_t *heads,
                       size_t count)
{
    msgpack_packer pk;
    msgpack_packer_init (&pk, sbuf, msgpack_sbuffer_write);
    msgpack_pack_array (&pk, 3);
    gkx_codec_pack_cstr (&pk, "heads");
    if (resync) {
        msgpack_pack_true (&pk);
    }
    else {
        msgpack_pack_false (&pk);
    }
    msgpack_pack_array (&pk, count);
    for (size_t i = 0; i < count; i++) {
        msgpack_pack_array (&pk, 3);
        gkx_codec_pack_bin (&pk, heads[i].pid, GKX_ID_BYTES);
        msgpack_pack_uint64 (&pk, heads[i].own_seq);
        msgpack_pack_uint64 (&pk, heads[i].your_seq);
    }
}

void
gkx_sync_entries_encode (msgpack_sbuffer *sbuf, const uint8_t pid[GKX_ID_BYTES], size_t count)
{
    msgpack_packer pk;
    msgpack_packer_init (&pk, sbuf, msgpack_sbuffer_write);
    msgpack_pack_array (&pk, 3);
    gkx_codec_pack_cstr (&pk, "entries");
    gkx_codec_pack_bin (&pk, pid, GKX_ID_BYTES);
    msgpack_pack_uint64 (&pk, count);
}

void
gkx_sync_card_encode (msgpack_sbuffer *sbuf)
{
    msgpack_packer pk;
    msgpack_packer_init (&pk, sbuf, msgpack_sbuffer_write);
    msgpack_pack_array (&pk, 1);
    gkx_codec_pack_cstr (&pk, "card");
}

/* Whether obj is the string s. */
static int
s_is_str (const msgpack_object *obj, const char *s)
{
    return obj->type == MSGPACK_OBJECT_STR && obj->via.str.size == strlen (s)
        && memcmp (obj->via.str.ptr, s, obj->via.str.size) == 0;
}

/* Whether obj is a bin of exactly one id. */
static int
s_is_id (const msgpack_object *obj)
{
    return obj->type == MSGPACK_OBJECT_BIN && obj->via.bin.size == GKX_ID_BYTES;
}

/* Reads the heads list of a heads header. */
static int
s_read_heads (gkx_sync_header_t *out, const msgpack_object *list, char *errbuf)
{
    if (list->type != MSGPACK_OBJECT_ARRAY) {
        return gkx_fail (errbuf, GKX_ETYPE, "sync heads: expected an array of heads");
    }
    if (list->via.array.size > GKX_SYNC_MAX_HEADS) {
        return gkx_fail (errbuf, GKX_ETOOBIG, "sync heads: more than %d partnerships",
                         GKX_SYNC_MAX_HEADS);
    }
    out->heads_count = list->via.array.size;
    out->heads = gkx_zalloc ((out->heads_count ? out->heads_count : 1) * sizeof *out->heads);
    for (uint32_t i = 0; i < list->via.array.size; i++) {
        const msgpack_object *h = &list->via.array.ptr[i];
        if (h->type != MSGPACK_OBJECT_ARRAY || h->via.array.size != 3 || !s_is_id (&h->via.array.ptr[0])
            || h->via.array.ptr[1].type != MSGPACK_OBJECT_POSITIVE_INTEGER
            || h->via.array.ptr[2].type != MSGPACK_OBJECT_POSITIVE_INTEGER) {
            return gkx_fail (errbuf, GKX_ETYPE,
                             "sync heads[%u]: expected [pid bin32, own_seq, your_seq]", i);
        }
        memcpy (out->heads[i].pid, h->via.array.ptr[0].via.bin.ptr, GKX_ID_BYTES);
        out->heads[i].own_seq = h->via.array.ptr[1].via.u64;
        out->heads[i].your_seq = h->via.array.ptr[2].via.u64;
    }
    return GKX_OK;
}

int
gkx_sync_decode (gkx_sync_header_t *out, const uint8_t *buf, size_t len, char *errbuf)
{
    memset (out, 0, sizeof *out);
    if (len > GKX_SYNC_MAX_HEADER_BYTES) {
        return gkx_fail (errbuf, GKX_ETOOBIG, "sync: header of %zu bytes exceeds %d", len,
                         GKX_SYNC_MAX_HEADER_BYTES);
    }
    msgpack_zone zone;
    msgpack_zone_init (&zone, 2048);
    msgpack_object root;
    int rc = gkx_codec_decode (&root, &zone, buf, len, "sync", errbuf);
    if (rc == GKX_OK && root.type == MSGPACK_OBJECT_ARRAY && root.via.array.size == 1
        && s_is_str (&root.via.array.ptr[0], "card")) {
        out->type = GKX_SYNC_CARD;
    }
    else if (rc == GKX_OK && (root.type != MSGPACK_OBJECT_ARRAY || root.via.array.size != 3)) {
        rc = gkx_fail (errbuf, GKX_ETYPE, "sync: expected a header of 3 fields");
    }
    else if (rc == GKX_OK) {
        const msgpack_object *f = root.via.array.ptr;
        if (s_is_str (&f[0], "heads")) {
            out->type = GKX_SYNC_HEADS;
            if (f[1].type != MSGPACK_OBJECT_BOOLEAN) {
                rc = gkx_fail (errbuf, GKX_ETYPE, "sync heads: resync must be a boolean");
            }
            else {
                out->resync = f[1].via.boolean;
                rc = s_read_heads (out, &f[2], errbuf);
            }
        }
        else if (s_is_str (&f[0], "entries")) {
            out->type = GKX_SYNC_ENTRIES;
            if (!s_is_id (&f[1]) || f[2].type != MSGPACK_OBJECT_POSITIVE_INTEGER) {
                rc = gkx_fail (errbuf, GKX_ETYPE, "sync entries: expected [\"entries\", pid, count]");
            }
            else if (f[2].via.u64 == 0 || f[2].via.u64 > GKX_SYNC_MAX_BATCH) {
                rc = gkx_fail (errbuf, GKX_ETOOBIG, "sync entries: count must be 1 to %d",
                               GKX_SYNC_MAX_BATCH);
            }
            else {
                memcpy (out->pid, f[1].via.bin.ptr, GKX_ID_BYTES);
                out->count = (size_t) f[2].via.u64;
            }
        }
        else {
            rc = gkx_fail (errbuf, GKX_ETYPE, "sync: unknown message type");
        }
    }
    msgpack_zone_destroy (&zone);
    if (rc != GKX_OK) {
        gkx_sync_header_clear (out);
    }
    return rc;
}

void
gkx_sync_header_clear (gkx_sync_header_t *header)
{
    gkx_free (header->heads);
    header->heads = NULL;
    header->heads_count = 0;
}
