/*  export - a partnership's log to a file and back.
    Part of gokart-exchange; MIT licence.

    An export (docs/log-format.md) holds a header, the advertiser's chain,
    the publisher's chain and any equivocation evidence, each entry exactly as
    stored. It is what gkx-audit verifies offline; import feeds an export's
    entries through the store's ingest rules, in an order that satisfies
    their cross-links.
*/
#ifndef GKX_EXPORT_H_INCLUDED
#define GKX_EXPORT_H_INCLUDED

#include <gkx/error.h>
#include <gkx/store.h>

#include <stdio.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Counts of what an import did. */
typedef struct {
    size_t appended;    /* new entries stored */
    size_t duplicates;  /* entries already held */
    size_t refused;     /* entries refused by an ingest rule */
    int first_error;    /* code of the first refusal, or GKX_OK */
    char first_message[GKX_ERRBUF_BYTES];
} gkx_import_result_t;

/* Writes partnership pid's log to out (flushed, neither synced nor closed),
   for instance a memory stream. Returns GKX_OK, GKX_ENOTFOUND, GKX_EIO (out
   failed) or GKX_ESTORE (the store could not be read, or the log grew
   meanwhile: try again). On failure out holds part of an export. */
GKX_NODISCARD int gkx_export_stream (gkx_store_t *store, const uint8_t pid[GKX_ID_BYTES],
                                     const uint8_t exported_by[GKX_ID_BYTES],
                                     uint64_t exported_at_ms, FILE *out, char *errbuf);

/* Writes partnership pid's log to path (replaced atomically; fsync'd).
   exported_at_ms goes in the header. Returns GKX_OK, GKX_ENOTFOUND, GKX_EIO
   or GKX_ESTORE. */
GKX_NODISCARD int gkx_export_write (gkx_store_t *store, const uint8_t pid[GKX_ID_BYTES],
                                    const uint8_t exported_by[GKX_ID_BYTES],
                                    uint64_t exported_at_ms, const char *path, char *errbuf);

/* Reads the export at path and ingests its entries into store. Returns
   GKX_OK with *result filled (refusals are counted, not fatal), or GKX_EIO,
   GKX_ETOOBIG or a parse code when the file cannot be read as an export. */
GKX_NODISCARD int gkx_export_import (gkx_store_t *store, const char *path,
                                     gkx_import_result_t *result, char *errbuf);

/* Reads a whole file into a new buffer (the caller's, gkx_free it), at most
   max_bytes. Returns GKX_OK, GKX_EIO or GKX_ETOOBIG. */
GKX_NODISCARD int gkx_file_read (const char *path, size_t max_bytes, uint8_t **data_p,
                                 size_t *len_p, char *errbuf);

#ifdef __cplusplus
}
#endif

#endif
