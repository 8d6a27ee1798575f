/*  dirmsg - the directory protocol's messages, filters and addresses.
    Part of gokart-exchange; MIT licence.

    A directory lists the signed tenant cards nodes publish to it
    (docs/protocol.md, "Directory"). Clients talk to it over ZeroMQ with
    CURVE: one multipart message per request and per reply, whose first frame
    is a canonical msgpack header carrying a request id (rid) that the reply
    echoes:
        ["publish", rid]                          + 1 frame: a card
        ["list", rid, role, vertical, country]    (each "" for any)
        ["withdraw", rid]                         + 1 frame: a withdrawal
        ["ok", rid]
        ["error", rid, code, message]             code: a GKX_E* name
        ["cards", rid, count, truncated]          + count frames: cards
    A directory is named by its address, "tcp://host:port@KEY": its endpoint
    and its CURVE public key (64 hex digits), since a CURVE client must know
    the server's key before it connects. Pure: no sockets here; the node's
    directory module (directory.h) does the I/O.
*/
#ifndef GKX_DIRMSG_H_INCLUDED
#define GKX_DIRMSG_H_INCLUDED

#include <gkx/card.h>
#include <gkx/error.h>
#include <gkx/identity.h>

#include <msgpack.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Largest header frame. */
#define GKX_DIRMSG_MAX_HEADER_BYTES 1024
/* Largest frame of any message: a card. */
#define GKX_DIRMSG_MAX_FRAME_BYTES GKX_CARD_MAX_BYTES
/* Most cards in one cards reply. */
#define GKX_DIRMSG_MAX_CARDS 256
/* Longest error code name and error message, in bytes. */
#define GKX_DIRMSG_CODE_MAX_BYTES 32
#define GKX_DIRMSG_MESSAGE_MAX_BYTES (GKX_ERRBUF_BYTES - 1)
/* Room for the endpoint of an address ("tcp://host:port" and its NUL). */
#define GKX_DIRMSG_ENDPOINT_BYTES (GKX_CARD_TEXT_MAX_BYTES + 1)
/* Room for a whole address: endpoint, '@', 64 hex digits, NUL. */
#define GKX_DIRMSG_ADDRESS_BYTES (GKX_DIRMSG_ENDPOINT_BYTES + 1 + 2 * GKX_CURVE_KEY_BYTES)

/* Message types. */
typedef enum {
    GKX_DIRMSG_PUBLISH = 1,     /* request: a card follows */
    GKX_DIRMSG_LIST = 2,        /* request: the filter is in the header */
    GKX_DIRMSG_WITHDRAW = 3,    /* request: a withdrawal follows */
    GKX_DIRMSG_OK = 4,          /* reply: done */
    GKX_DIRMSG_ERROR = 5,       /* reply: refused, with a code and a message */
    GKX_DIRMSG_CARDS = 6,       /* reply: count cards follow */
} gkx_dirmsg_type_t;

/* Which cards a list asks for; an empty field matches every card. */
typedef struct {
    int role;                                   /* GKX_ROLE_*, or 0 for any */
    char vertical[GKX_CARD_TEXT_MAX_BYTES + 1]; /* one of the card's verticals, ignoring
                                                   ASCII case, or "" */
    char country[3];                            /* one of the card's countries, or "" */
} gkx_dirmsg_filter_t;

/* A decoded header. */
typedef struct {
    int type;                   /* gkx_dirmsg_type_t */
    uint64_t rid;               /* the request id; a reply echoes its request's */
    gkx_dirmsg_filter_t filter; /* list */
    char code[GKX_DIRMSG_CODE_MAX_BYTES + 1];       /* error: "GKX_EINVAL", ... */
    char message[GKX_DIRMSG_MESSAGE_MAX_BYTES + 1]; /* error: for people (untrusted text) */
    size_t count;               /* cards: the frames that follow */
    int truncated;              /* cards: the directory holds more matches than it sent */
} gkx_dirmsg_t;

/* Encoders: each appends one header to sbuf (initialised by the caller). */
void gkx_dirmsg_publish_encode (msgpack_sbuffer *sbuf, uint64_t rid);
void gkx_dirmsg_list_encode (msgpack_sbuffer *sbuf, uint64_t rid,
                             const gkx_dirmsg_filter_t *filter);
void gkx_dirmsg_withdraw_encode (msgpack_sbuffer *sbuf, uint64_t rid);
void gkx_dirmsg_ok_encode (msgpack_sbuffer *sbuf, uint64_t rid);
/* code is a GKX_E* code, sent by name; message is cut to
   GKX_DIRMSG_MESSAGE_MAX_BYTES and must be UTF-8. */
void gkx_dirmsg_error_encode (msgpack_sbuffer *sbuf, uint64_t rid, int code,
                              const char *message);
/* count is at most GKX_DIRMSG_MAX_CARDS. */
void gkx_dirmsg_cards_encode (msgpack_sbuffer *sbuf, uint64_t rid, size_t count,
                              int truncated);

/* Decodes a header frame strictly into *out. Returns GKX_OK, GKX_ETOOBIG
   (over GKX_DIRMSG_MAX_HEADER_BYTES, or a count over GKX_DIRMSG_MAX_CARDS),
   a codec code, GKX_ETYPE (an unknown type or a field of the wrong type) or
   GKX_EINVAL (a bad filter), with errbuf naming the field. */
GKX_NODISCARD int gkx_dirmsg_decode (gkx_dirmsg_t *out, const uint8_t *buf, size_t len,
                                     char *errbuf);

/* Fills a filter from text, as the API and the command line take it: role
   "", "advertiser" or "publisher"; vertical "" or 1 to
   GKX_CARD_TEXT_MAX_BYTES of UTF-8; country "" or two ASCII letters (any
   case; kept upper case). NULL stands for "". Returns GKX_OK or GKX_EINVAL
   with errbuf naming the field. */
GKX_NODISCARD int gkx_dirmsg_filter_parse (gkx_dirmsg_filter_t *filter, const char *role,
                                           const char *vertical, const char *country,
                                           char *errbuf);

/* Returns 1 when card matches every field of filter, else 0. */
int gkx_dirmsg_filter_is_matching (const gkx_dirmsg_filter_t *filter, const gkx_card_t *card);

/* Checks that endpoint is "tcp://host:port" (a host, and a port from 1 to
   65535) and fits GKX_DIRMSG_ENDPOINT_BYTES. Returns GKX_OK or GKX_EINVAL
   with errbuf quoting it. */
GKX_NODISCARD int gkx_dirmsg_endpoint_check (const char *endpoint, char *errbuf);

/* Parses a directory address "tcp://host:port@KEY" (KEY: 64 hex digits, the
   directory's CURVE public key) into endpoint and key. Returns GKX_OK or
   GKX_EINVAL with errbuf saying what is wrong. */
GKX_NODISCARD int gkx_dirmsg_address_parse (char endpoint[GKX_DIRMSG_ENDPOINT_BYTES],
                                            uint8_t key[GKX_CURVE_KEY_BYTES], const char *text,
                                            char *errbuf);

/* Writes the address of a directory into out (GKX_DIRMSG_ADDRESS_BYTES). */
void gkx_dirmsg_address_format (char out[GKX_DIRMSG_ADDRESS_BYTES], const char *endpoint,
                                const uint8_t key[GKX_CURVE_KEY_BYTES]);

#ifdef __cplusplus
}
#endif

#endif
