/*  log_walkthrough - two nodes write one partnership's log with libgkx.
    Part of gokart-exchange; MIT licence.

    usage: log_walkthrough ADVERTISER_DIR PUBLISHER_DIR OUT_DIR

    Takes two node directories made by `gkx init` (one advertiser, one
    publisher), opens each node's own store with its own keys, and plays the
    foundation's story by hand, the way gkxd will over ZeroMQ: the
    advertiser shares (genesis), the publisher receives and acknowledges,
    each side appends and ships its entries to the other, every entry going
    through the receiver's ingest rules. Then both sides export the log to
    OUT_DIR/advertiser.log and OUT_DIR/publisher.log for gkx-audit.
*/
#include <gkx.h>

#include <stdio.h>
#include <string.h>
#include <time.h>

/* A node opened from its directory. */
typedef struct {
    const char *dir;
    gkx_identity_t *identity;
    gkx_store_t *store;
} node_t;

/* Opens a node's keys and store. */
static int
node_open (node_t *node, const char *dir, char *errbuf)
{
    char path[4096];
    node->dir = dir;
    snprintf (path, sizeof path, "%s/store", dir);
    int rc = gkx_keyfile_load (&node->identity, dir, errbuf);
    if (rc == GKX_OK) {
        rc = gkx_store_open (&node->store, path, gkx_identity_id (node->identity), NULL, errbuf);
    }
    return rc;
}

/* Closes a node. */
static void
node_close (node_t *node)
{
    gkx_store_close (&node->store);
    gkx_identity_destroy (&node->identity);
}

/* Ships one entry from its author to the other node, printing the outcome. */
static int
ship (node_t *to, const node_t *from, const gkx_entry_t *entry)
{
    char errbuf[GKX_ERRBUF_BYTES] = "";
    size_t len;
    const uint8_t *bytes = gkx_entry_bytes (entry, &len);
    int result = 0;
    int rc = gkx_store_ingest (to->store, bytes, len, gkx_identity_id (from->identity), &result,
                               errbuf);
    printf ("  %-8s %-7s seq %llu (%zu bytes) -> %s\n", gkx_kind_name (gkx_entry_kind (entry)),
            from == to ? "" : "shipped", (unsigned long long) gkx_entry_seq (entry), len,
            rc == GKX_OK ? "ingested" : errbuf);
    return rc;
}

/* The body of an edit entry setting one field. */
static void
edit_body (msgpack_sbuffer *sbuf, const char *path, const char *value)
{
    msgpack_packer pk;
    msgpack_sbuffer_init (sbuf);
    msgpack_packer_init (&pk, sbuf, msgpack_sbuffer_write);
    msgpack_pack_map (&pk, 1);
    gkx_codec_pack_cstr (&pk, "ops");
    msgpack_pack_array (&pk, 1);
    msgpack_pack_map (&pk, 3);
    gkx_codec_pack_cstr (&pk, "op");
    gkx_codec_pack_cstr (&pk, "set");
    gkx_codec_pack_cstr (&pk, "path");
    gkx_codec_pack_cstr (&pk, path);
    gkx_codec_pack_cstr (&pk, "value");
    gkx_codec_pack_cstr (&pk, value);
}

/* Appends an entry on one node and ships it to the other. */
static int
append_and_ship (node_t *author, node_t *other, const uint8_t *pid, int kind,
                 const uint8_t *body, size_t body_len)
{
    char errbuf[GKX_ERRBUF_BYTES] = "";
    gkx_entry_t *entry = NULL;
    int rc = gkx_store_append (author->store, author->identity, pid, kind, body, body_len,
                               &entry, errbuf);
    if (rc != GKX_OK) {
        fprintf (stderr, "append failed: %s\n", errbuf);
        return rc;
    }
    rc = ship (other, author, entry);
    gkx_entry_destroy (&entry);
    return rc;
}

int
main (int argc, char **argv)
{
    if (argc != 4) {
        fprintf (stderr, "usage: log_walkthrough ADVERTISER_DIR PUBLISHER_DIR OUT_DIR\n");
        return 2;
    }
    char errbuf[GKX_ERRBUF_BYTES] = "";
    node_t adv = {0};
    node_t pub = {0};
    gkx_entry_t *genesis = NULL;
    uint8_t pid[GKX_ID_BYTES];
    int rc = node_open (&adv, argv[1], errbuf);
    if (rc == GKX_OK) {
        rc = node_open (&pub, argv[2], errbuf);
    }
    if (rc != GKX_OK) {
        fprintf (stderr, "log_walkthrough: %s\n", errbuf);
        goto cleanup;
    }
    rc = gkx_store_share (adv.store, adv.identity, gkx_identity_id (pub.identity), NULL, 0,
                          NULL, 0, pid, &genesis, errbuf);
    if (rc != GKX_OK) {
        fprintf (stderr, "log_walkthrough: share: %s\n", errbuf);
        goto cleanup;
    }
    char pid_text[GKX_ID_TEXT_BYTES];
    gkx_id_format (pid_text, pid);
    printf ("partnership %s\n", pid_text);
    rc = ship (&pub, &adv, genesis);
    msgpack_sbuffer body;
    if (rc == GKX_OK) {
        rc = append_and_ship (&pub, &adv, pid, GKX_KIND_ACK, gkx_ack_body, sizeof gkx_ack_body);
    }
    edit_body (&body, "payout.amount", "2.50");
    if (rc == GKX_OK) {
        rc = append_and_ship (&adv, &pub, pid, GKX_KIND_EDIT, (const uint8_t *) body.data, body.size);
    }
    msgpack_sbuffer_destroy (&body);
    edit_body (&body, "status", "paused");
    if (rc == GKX_OK) {
        rc = append_and_ship (&pub, &adv, pid, GKX_KIND_EDIT, (const uint8_t *) body.data, body.size);
    }
    msgpack_sbuffer_destroy (&body);
    if (rc == GKX_OK) {
        rc = append_and_ship (&adv, &pub, pid, GKX_KIND_ACK, gkx_ack_body, sizeof gkx_ack_body);
    }
    if (rc == GKX_OK) {
        rc = append_and_ship (&pub, &adv, pid, GKX_KIND_ACK, gkx_ack_body, sizeof gkx_ack_body);
    }
    if (rc == GKX_OK) {
        /* A replay is a no-op, not an error. */
        rc = ship (&pub, &adv, genesis);
    }
    char path[4096];
    uint64_t now = (uint64_t) time (NULL) * 1000;
    snprintf (path, sizeof path, "%s/advertiser.log", argv[3]);
    if (rc == GKX_OK) {
        rc = gkx_export_write (adv.store, pid, gkx_identity_id (adv.identity), now, path, errbuf);
    }
    snprintf (path, sizeof path, "%s/publisher.log", argv[3]);
    if (rc == GKX_OK) {
        rc = gkx_export_write (pub.store, pid, gkx_identity_id (pub.identity), now, path, errbuf);
    }
    if (rc != GKX_OK) {
        fprintf (stderr, "log_walkthrough: %s\n", errbuf[0] ? errbuf : gkx_strerror (rc));
    }
    else {
        printf ("exported %s/advertiser.log and %s/publisher.log\n", argv[3], argv[3]);
    }
cleanup:
    gkx_entry_destroy (&genesis);
    node_close (&adv);
    node_close (&pub);
    return rc == GKX_OK ? 0 : 1;
}
