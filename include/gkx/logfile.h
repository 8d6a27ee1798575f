/*  logfile - the exported log of one partnership, read from bytes.
    Part of gokart-exchange; MIT licence.

    An export (docs/log-format.md) is a msgpack stream: a header map naming
    the partnership and its members, then the entries, each exactly as the
    exporting node stored it. Reading is pure (the caller supplies the
    bytes), so gkx-audit needs no store and no network. An entry that does
    not decode is kept with its error, so an auditor sees every defect
    rather than the first.
*/
#ifndef GKX_LOGFILE_H_INCLUDED
#define GKX_LOGFILE_H_INCLUDED

#include <gkx/entry.h>
#include <gkx/error.h>

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The format name in the header. */
#define GKX_LOGFILE_FORMAT "gkx-log"
/* The header version this library writes and reads. */
#define GKX_LOGFILE_VERSION 1
/* Largest export read at once. */
#define GKX_LOGFILE_MAX_BYTES ((size_t) 1 << 34)

/* The header of an export. */
typedef struct {
    uint8_t pid[GKX_ID_BYTES];
    uint8_t advertiser[GKX_ID_BYTES];
    uint8_t publisher[GKX_ID_BYTES];
    uint8_t exported_by[GKX_ID_BYTES];
    uint64_t exported_at_ms;
    uint64_t entry_count;
} gkx_logfile_header_t;

typedef struct gkx_logfile gkx_logfile_t;

/* Encodes a header into sbuf (initialised by the caller). */
void gkx_logfile_header_encode (msgpack_sbuffer *sbuf, const gkx_logfile_header_t *header);

/* Parses an export. Returns GKX_OK, or GKX_EFORMAT (not an export, or of
   another version), or a decode code when the header or the framing of the
   stream is broken. Entries that fail to decode do not fail the parse; see
   gkx_logfile_entry_error. The logfile is the caller's. */
GKX_NODISCARD int gkx_logfile_parse (gkx_logfile_t **self_p, const uint8_t *buf, size_t len,
                                     char *errbuf);

/* Frees; accepts NULL; sets *self_p to NULL. */
void gkx_logfile_destroy (gkx_logfile_t **self_p);

/* The header; borrowed for the logfile's life. */
const gkx_logfile_header_t *gkx_logfile_header (const gkx_logfile_t *self);

/* Number of entries in the stream (decoded or not). */
size_t gkx_logfile_count (const gkx_logfile_t *self);

/* Entry i, or NULL when it did not decode; borrowed for the logfile's life. */
const gkx_entry_t *gkx_logfile_entry (const gkx_logfile_t *self, size_t i);

/* For an entry that did not decode: its error code (else GKX_OK), and its
   message in a buffer borrowed for the logfile's life. */
int gkx_logfile_entry_error (const gkx_logfile_t *self, size_t i, const char **message_p);

/* Byte offset of entry i in the export, for messages. */
size_t gkx_logfile_entry_offset (const gkx_logfile_t *self, size_t i);

#ifdef __cplusplus
}
#endif

#endif
