/*  sync - the replication protocol's messages.
    Part of gokart-exchange; MIT licence.

    A message is one ZeroMQ multipart message whose first frame is a
    canonical msgpack header (docs/protocol.md):
        ["heads", resync, [[pid, own_seq, your_seq], ...]]
        ["entries", pid, count]   followed by count frames, one entry each
        ["card"]                  followed by one frame: the sender's card
    heads tells, per shared partnership, how far the sender's own chain goes
    and how much of the receiver's chain the sender holds; it opens a
    connection (resync = true: start sending from what I hold) and
    acknowledges every entries message. entries carries entries of one
    partnership in seq order, exactly as stored. Pure: no sockets here.
*/
#ifndef GKX_SYNC_H_INCLUDED
#define GKX_SYNC_H_INCLUDED

#include <gkx/error.h>
#include <gkx/identity.h>

#include <msgpack.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Most partnerships one heads message lists. */
#define GKX_SYNC_MAX_HEADS 4096
/* Most entries in one entries message. */
#define GKX_SYNC_MAX_BATCH 64
/* Largest header frame. */
#define GKX_SYNC_MAX_HEADER_BYTES (64 + GKX_SYNC_MAX_HEADS * 64)

/* Message types. */
typedef enum {
    GKX_SYNC_HEADS = 1,
    GKX_SYNC_ENTRIES = 2,
    GKX_SYNC_CARD = 3,
} gkx_sync_type_t;

/* One partnership's heads as the sender sees them. */
typedef struct {
    uint8_t pid[GKX_ID_BYTES];
    uint64_t own_seq;       /* the sender's own chain */
    uint64_t your_seq;      /* the receiver's chain, as held by the sender */
} gkx_sync_head_t;

/* A decoded header. */
typedef struct {
    int type;                   /* gkx_sync_type_t */
    int resync;                 /* heads: the receiver restarts from these heads */
    gkx_sync_head_t *heads;     /* heads: owned; free with gkx_sync_header_clear */
    size_t heads_count;
    uint8_t pid[GKX_ID_BYTES];  /* entries: the partnership */
    size_t count;               /* entries: frames that follow */
} gkx_sync_header_t;

/* Encodes a heads header into sbuf (initialised by the caller). */
void gkx_sync_heads_encode (msgpack_sbuffer *sbuf, int resync, const gkx_sync_head_t *heads,
                            size_t count);

/* Encodes an entries header into sbuf (initialised by the caller). */
void gkx_sync_entries_encode (msgpack_sbuffer *sbuf, const uint8_t pid[GKX_ID_BYTES],
                              size_t count);

/* Encodes a card header into sbuf (initialised by the caller). */
void gkx_sync_card_encode (msgpack_sbuffer *sbuf);

/* Decodes a header frame strictly. Returns GKX_OK, a codec code, or
   GKX_ETYPE / GKX_ETOOBIG with errbuf naming the field. */
GKX_NODISCARD int gkx_sync_decode (gkx_sync_header_t *out, const uint8_t *buf, size_t len,
                                   char *errbuf);

/* Frees what a decode allocated. */
void gkx_sync_header_clear (gkx_sync_header_t *header);

#ifdef __cplusplus
}
#endif

#endif
