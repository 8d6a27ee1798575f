/*  log_walkthrough - two nodes write one partnership's log with libgkx.
    Part of gokart-exchange; MIT licence.

    usage: log_walkthrough ADVERTISER_DIR PUBLISHER_DIR OUT_DIR

    Takes two node directories made by `gkx init` (one advertiser, one
    publisher), opens each node's own store with its own keys, and plays the
    foundation's story by hand, the way gkxd will over ZeroMQ: the
    advertiser shares an offer (genesis), the publisher receives and
    acknowledges, the advertiser raises the payout, the publisher pauses,
    each entry going through the receiver's ingest rules, and both sides
    derive the same offer (equal digests). Then both sides export the log to
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
            rc != GKX_OK ? errbuf
            : result == GKX_INGEST_DUPLICATE ? "already held: a replay changes nothing"
                                             : "ingested");
    return rc;
}

/* The offer the advertiser shares, in its JSON form. */
static const char s_offer_json[] =
    "{\"name\": \"Puzzle Quest iOS US\", \"status\": \"active\","
    " \"payout\": {\"model\": \"cpi\", \"amount\": \"2.50\", \"currency\": \"USD\"},"
    " \"targeting\": {\"countries\": [\"US\", \"CA\"], \"platforms\": [\"ios\"]},"
    " \"terms\": \"No incentivised traffic.\"}";

/* Builds an edit body from one CLI edit ("payout.amount=2.75") against the
   partnership's current offer, as gkx offer set does. */
static int
edit_body (node_t *node, const uint8_t *pid, const char *edit, uint8_t **body_p,
           size_t *len_p)
{
    char errbuf[GKX_ERRBUF_BYTES] = "";
    gkx_merge_t *state = NULL;
    gkx_offer_ops_t *ops = gkx_offer_ops_new ();
    int rc = gkx_store_merge (node->store, pid, &state);
    if (rc == GKX_OK) {
        rc = gkx_offer_ops_parse_edit (ops, gkx_merge_offer (state), edit, errbuf);
    }
    if (rc == GKX_OK) {
        rc = gkx_offer_ops_encode (ops, body_p, len_p, errbuf);
    }
    if (rc != GKX_OK) {
        fprintf (stderr, "edit %s: %s\n", edit, errbuf[0] ? errbuf : gkx_strerror (rc));
    }
    gkx_offer_ops_destroy (&ops);
    gkx_merge_destroy (&state);
    return rc;
}

/* Prints a node's view of the offer's state digest. */
static void
print_digest (node_t *node, const char *who, const uint8_t *pid)
{
    uint8_t digest[GKX_OFFER_DIGEST_BYTES];
    char hex[GKX_ID_TEXT_BYTES];
    if (gkx_store_digest (node->store, pid, digest) == GKX_OK) {
        gkx_id_format (hex, digest);
        printf ("  %-10s offer digest %s\n", who, hex);
    }
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
    gkx_offer_t *offer = NULL;
    uint8_t *offer_bytes = NULL;
    size_t offer_len = 0;
    rc = gkx_offer_from_text (&offer, s_offer_json, errbuf);
    if (rc != GKX_OK) {
        fprintf (stderr, "log_walkthrough: offer: %s\n", errbuf);
        goto cleanup;
    }
    gkx_offer_encode (offer, &offer_bytes, &offer_len);
    gkx_offer_destroy (&offer);
    rc = gkx_store_share (adv.store, adv.identity, gkx_identity_id (pub.identity), offer_bytes,
                          offer_len, NULL, 0, pid, &genesis, errbuf);
    gkx_free (offer_bytes);
    if (rc != GKX_OK) {
        fprintf (stderr, "log_walkthrough: share: %s\n", errbuf);
        goto cleanup;
    }
    char pid_text[GKX_ID_TEXT_BYTES];
    gkx_id_format (pid_text, pid);
    printf ("partnership %s\n", pid_text);
    rc = ship (&pub, &adv, genesis);
    uint8_t *body = NULL;
    size_t body_len = 0;
    if (rc == GKX_OK) {
        rc = append_and_ship (&pub, &adv, pid, GKX_KIND_ACK, gkx_ack_body, sizeof gkx_ack_body);
    }
    if (rc == GKX_OK) {
        rc = edit_body (&adv, pid, "payout.amount=2.75", &body, &body_len);
    }
    if (rc == GKX_OK) {
        rc = append_and_ship (&adv, &pub, pid, GKX_KIND_EDIT, body, body_len);
    }
    gkx_free (body);
    body = NULL;
    if (rc == GKX_OK) {
        rc = edit_body (&pub, pid, "status=paused", &body, &body_len);
    }
    if (rc == GKX_OK) {
        rc = append_and_ship (&pub, &adv, pid, GKX_KIND_EDIT, body, body_len);
    }
    gkx_free (body);
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
    if (rc == GKX_OK) {
        print_digest (&adv, "advertiser", pid);
        print_digest (&pub, "publisher", pid);
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
