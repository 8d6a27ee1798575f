/*  export - a partnership's log to a file and back.
    Part of gokart-exchange; MIT licence.

    Writing streams each chain from a read transaction straight into a
    stream: a temporary file, which is synced and renamed over the target,
    so a reader never sees half an export, or the node's memory, for an
    export sent as an API reply. Import retries entries whose cross-links are
    not yet satisfied until a pass makes no progress.
*/
#include <gkx/alloc.h>
#include <gkx/export.h>
#include <gkx/logfile.h>

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* State of one export write. */
typedef struct {
    FILE *file;
    uint64_t count;
    int failed;
} s_writer_t;

/* Writes one entry's bytes to the export. */
static int
s_write_entry (const gkx_entry_t *entry, void *arg)
{
    s_writer_t *writer = arg;
    size_t len;
    const uint8_t *bytes = gkx_entry_bytes (entry, &len);
    if (fwrite (bytes, 1, len, writer->file) != len) {
        writer->failed = 1;
        return GKX_EIO;
    }
    writer->count++;
    return GKX_OK;
}

/* Counts entries without writing them. */
static int
s_count_entry (const gkx_entry_t *entry, void *arg)
{
    (void) entry;
    (*(uint64_t *) arg)++;
    return GKX_OK;
}

int
gkx_export_stream (gkx_store_t *store, const uint8_t pid[GKX_ID_BYTES],
                   const uint8_t exported_by[GKX_ID_BYTES], uint64_t exported_at_ms,
                   FILE *out, char *errbuf)
{
    gkx_partnership_t partnership;
    gkx_head_t adv;
    gkx_head_t pub;
    int rc = gkx_store_partnership (store, pid, &partnership);
    if (rc != GKX_OK) {
        return gkx_fail (errbuf, rc, "export: %s", rc == GKX_ENOTFOUND
                         ? "no such partnership" : "the store could not be read");
    }
    uint64_t evidence = 0;
    rc = gkx_store_head (store, pid, GKX_ROLE_ADVERTISER, &adv);
    if (rc == GKX_OK) {
        rc = gkx_store_head (store, pid, GKX_ROLE_PUBLISHER, &pub);
    }
    if (rc == GKX_OK) {
        rc = gkx_store_evidence (store, pid, s_count_entry, &evidence);
    }
    if (rc != GKX_OK) {
        return gkx_fail (errbuf, rc, "export: the store could not be read");
    }
    gkx_logfile_header_t header;
    memset (&header, 0, sizeof header);
    memcpy (header.pid, pid, GKX_ID_BYTES);
    memcpy (header.advertiser, partnership.advertiser, GKX_ID_BYTES);
    memcpy (header.publisher, partnership.publisher, GKX_ID_BYTES);
    memcpy (header.exported_by, exported_by, GKX_ID_BYTES);
    header.exported_at_ms = exported_at_ms;
    header.entry_count = adv.seq + pub.seq + evidence;

    s_writer_t writer = {out, 0, 0};
    msgpack_sbuffer sbuf;
    msgpack_sbuffer_init (&sbuf);
    gkx_logfile_header_encode (&sbuf, &header);
    writer.failed = fwrite (sbuf.data, 1, sbuf.size, writer.file) != sbuf.size;
    msgpack_sbuffer_destroy (&sbuf);
    if (!writer.failed) {
        rc = gkx_store_iterate (store, pid, GKX_ROLE_ADVERTISER, 1, s_write_entry, &writer);
    }
    if (!writer.failed && rc == GKX_OK) {
        rc = gkx_store_iterate (store, pid, GKX_ROLE_PUBLISHER, 1, s_write_entry, &writer);
    }
    if (!writer.failed && rc == GKX_OK) {
        rc = gkx_store_evidence (store, pid, s_write_entry, &writer);
    }
    /* Entries appended since the heads were read would break the count. */
    if (rc == GKX_OK && !writer.failed && writer.count != header.entry_count) {
        rc = GKX_ESTORE;
    }
    if (writer.failed || fflush (out) != 0 || rc != GKX_OK) {
        return gkx_fail (errbuf, rc == GKX_OK ? GKX_EIO : rc, "export: could not be written%s",
                         rc == GKX_ESTORE ? " (the log changed meanwhile; try again)" : "");
    }
    return GKX_OK;
}

int
gkx_export_write (gkx_store_t *store, const uint8_t pid[GKX_ID_BYTES],
                  const uint8_t exported_by[GKX_ID_BYTES], uint64_t exported_at_ms,
                  const char *path, char *errbuf)
{
    char tmp[4096];
    if (snprintf (tmp, sizeof tmp, "%s.tmp", path) >= (int) sizeof tmp) {
        return gkx_fail (errbuf, GKX_EINVAL, "export: path too long");
    }
    FILE *file = fopen (tmp, "wb");
    if (!file) {
        return gkx_fail (errbuf, GKX_EIO, "export %s: %s", tmp, strerror (errno));
    }
    char why[GKX_ERRBUF_BYTES] = "";
    int rc = gkx_export_stream (store, pid, exported_by, exported_at_ms, file, why);
    int flushed = rc == GKX_OK && fsync (fileno (file)) == 0;
    fclose (file);
    if (rc != GKX_OK || !flushed) {
        unlink (tmp);
        return rc != GKX_OK && rc != GKX_EIO
            ? gkx_fail (errbuf, rc, "%s", why)
            : gkx_fail (errbuf, GKX_EIO, "export %s: could not be written", path);
    }
    if (rename (tmp, path) != 0) {
        rc = gkx_fail (errbuf, GKX_EIO, "export %s: %s", path, strerror (errno));
        unlink (tmp);
        return rc;
    }
    return GKX_OK;
}

int
gkx_file_read (const char *path, size_t max_bytes, uint8_t **data_p, size_t *len_p,
               char *errbuf)
{
    FILE *file = fopen (path, "rb");
    if (!file) {
        return gkx_fail (errbuf, GKX_EIO, "%s: %s", path, strerror (errno));
    }
    struct stat st;
    if (fstat (fileno (file), &st) != 0 || !S_ISREG (st.st_mode)) {
        fclose (file);
        return gkx_fail (errbuf, GKX_EIO, "%s: not a regular file", path);
    }
    if ((uint64_t) st.st_size > max_bytes) {
        fclose (file);
        return gkx_fail (errbuf, GKX_ETOOBIG, "%s: %lld bytes exceeds the limit of %zu", path,
                         (long long) st.st_size, max_bytes);
    }
    size_t len = (size_t) st.st_size;
    uint8_t *data = gkx_zalloc (len ? len : 1);
    size_t got = len ? fread (data, 1, len, file) : 0;
    fclose (file);
    if (got != len) {
        gkx_free (data);
        return gkx_fail (errbuf, GKX_EIO, "%s: short read", path);
    }
    *data_p = data;
    *len_p = len;
    return GKX_OK;
}

/* Whether a refusal may clear once other entries are in. */
static int
s_may_clear_later (int rc)
{
    return rc == GKX_EGAP || rc == GKX_EAHEAD || rc == GKX_ENOTFOUND;
}

int
gkx_export_import (gkx_store_t *store, const char *path, gkx_import_result_t *result,
                   char *errbuf)
{
    uint8_t *data = NULL;
    size_t len = 0;
    memset (result, 0, sizeof *result);
    int rc = gkx_file_read (path, GKX_LOGFILE_MAX_BYTES, &data, &len, errbuf);
    if (rc != GKX_OK) {
        return rc;
    }
    gkx_logfile_t *log = NULL;
    rc = gkx_logfile_parse (&log, data, len, errbuf);
    gkx_free (data);
    if (rc != GKX_OK) {
        return rc;
    }
    size_t count = gkx_logfile_count (log);
    uint8_t *done = gkx_zalloc (count ? count : 1);
    int *last_rc = gkx_zalloc ((count ? count : 1) * sizeof *last_rc);
    char (*last_msg)[GKX_ERRBUF_BYTES] = gkx_zalloc ((count ? count : 1) * GKX_ERRBUF_BYTES);
    size_t progress = 1;
    while (progress) {
        progress = 0;
        for (size_t i = 0; i < count; i++) {
            const gkx_entry_t *entry = gkx_logfile_entry (log, i);
            if (done[i]) {
                continue;
            }
            if (!entry) {
                done[i] = 1;
                last_rc[i] = gkx_logfile_entry_error (log, i, NULL);
                continue;
            }
            size_t elen;
            const uint8_t *bytes = gkx_entry_bytes (entry, &elen);
            int outcome = 0;
            int irc = gkx_store_ingest (store, bytes, elen, NULL, &outcome, last_msg[i]);
            last_rc[i] = irc;
            if (irc == GKX_OK) {
                done[i] = 1;
                progress++;
                if (outcome == GKX_INGEST_APPENDED) {
                    result->appended++;
                }
                else {
                    result->duplicates++;
                }
            }
            else if (!s_may_clear_later (irc)) {
                done[i] = 1;
            }
        }
    }
    for (size_t i = 0; i < count; i++) {
        if (last_rc[i] != GKX_OK) {
            result->refused++;
            if (result->first_error == GKX_OK) {
                result->first_error = last_rc[i];
                snprintf (result->first_message, sizeof result->first_message, "entry %zu: %s",
                          i, last_msg[i][0] ? last_msg[i] : gkx_strerror (last_rc[i]));
            }
        }
    }
    gkx_free (done);
    gkx_free (last_rc);
    gkx_free (last_msg);
    gkx_logfile_destroy (&log);
    return GKX_OK;
}
