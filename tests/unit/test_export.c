/*  test_export - exports of a partnership's log, their offline audit, the
    gkx-audit program, and import back into a store.
    Part of gokart-exchange; MIT licence.

    Real stores in temporary directories: A the advertiser and B the
    publisher build a two-sided log with edits and acks, export it, and the
    export is read, verified, tampered with, compared and imported. The
    gkx-audit program is run as a user runs it, from the build directory.
*/
#include "testutil.h"
#include "fixtures.h"

#include <gkx/alloc.h>
#include <gkx/audit.h>
#include <gkx/codec.h>
#include <gkx/entry.h>
#include <gkx/export.h>
#include <gkx/identity.h>
#include <gkx/kind.h>
#include <gkx/logfile.h>
#include <gkx/store.h>

#include <jansson.h>
#include <stdarg.h>
#include <sys/wait.h>

/* The export time written in every header here (ms since the epoch). */
#define T0 1795491556923ULL
/* Entries of the standard log: A1..A4 and B1..B2. */
#define S_WORLD_ADV 4
#define S_WORLD_PUB 2
#define S_WORLD_ENTRIES (S_WORLD_ADV + S_WORLD_PUB)
/* Position of an entry of the standard log in A's export (advertiser chain
   first, then the publisher's). */
#define S_ADV_INDEX(seq) ((size_t) (seq) - 1)
#define S_PUB_INDEX(seq) ((size_t) S_WORLD_ADV + (size_t) (seq) - 1)
/* Room for what gkx-audit prints about the small logs used here. */
#define S_OUTPUT_BYTES 32768

/* One node under test. */
typedef struct {
    gkx_identity_t *identity;       /* its keys */
    gkx_store_t *store;             /* its open store, or NULL */
    char root[PATH_MAX];            /* temporary directory, removed at the end */
    char dir[PATH_MAX + 16];        /* the store's directory, root/store */
} s_node_t;

/* The standard two-sided log. A holds A1..A4 and B1..B2, B holds A1..A3
   and B1..B2: A1 genesis, A2 edit, B1 edit (sees A2), A3 ack (sees B1),
   B2 ack (sees A3), A4 edit (sees B2; not yet shipped to B). */
typedef struct {
    s_node_t a;
    s_node_t b;
    uint8_t pid[GKX_ID_BYTES];
    gkx_entry_t *adv[S_WORLD_ADV + 1];  /* adv[seq] */
    gkx_entry_t *pub[S_WORLD_PUB + 1];  /* pub[seq] */
} s_world_t;

/* Opens (or reopens) a node's store, asserting success. */
static void
s_node_reopen (s_node_t *node)
{
    char errbuf[GKX_ERRBUF_BYTES] = "";
    gkx_store_close (&node->store);
    int rc = gkx_store_open (&node->store, node->dir, gkx_identity_id (node->identity), NULL,
                             errbuf);
    ck_assert_msg (rc == GKX_OK, "open %s: %s (%s)", node->dir, gkx_errname (rc), errbuf);
}

/* Creates a node with identity (taken over; a fresh one when NULL) and an
   open, empty store in a new temporary directory. */
static void
s_node_open (s_node_t *node, gkx_identity_t *identity)
{
    memset (node, 0, sizeof *node);
    node->identity = identity ? identity : gkx_identity_new ();
    gkx_test_tmpdir (node->root);
    snprintf (node->dir, sizeof node->dir, "%s/store", node->root);
    s_node_reopen (node);
}

/* Closes the store, removes the temporary directory, frees the keys. */
static void
s_node_destroy (s_node_t *node)
{
    gkx_store_close (&node->store);
    gkx_test_rmtree (node->root);
    gkx_identity_destroy (&node->identity);
}

/* Returns a new copy of a node's identity. */
static gkx_identity_t *
s_identity_copy (const gkx_identity_t *identity)
{
    gkx_identity_t *copy = NULL;
    ck_assert (gkx_identity_open (&copy, gkx_identity_sign_secret (identity),
                                  gkx_identity_curve_secret (identity))
               == GKX_OK);
    return copy;
}

/* Writes len bytes to path. */
static void
s_write_file (const char *path, const void *data, size_t len)
{
    FILE *out = fopen (path, "wb");
    ck_assert_msg (out != NULL, "cannot write %s", path);
    ck_assert (fwrite (data, 1, len, out) == len);
    ck_assert (fclose (out) == 0);
}

/* Makes copy a second node with the same identity and a copy of node's
   store as it is now (taken with the store closed, like a backup). */
static void
s_node_clone (s_node_t *copy, s_node_t *node)
{
    memset (copy, 0, sizeof *copy);
    copy->identity = s_identity_copy (node->identity);
    gkx_test_tmpdir (copy->root);
    snprintf (copy->dir, sizeof copy->dir, "%s/store", copy->root);
    ck_assert (mkdir (copy->dir, 0700) == 0);
    gkx_store_close (&node->store);
    char path[PATH_MAX + 32];
    snprintf (path, sizeof path, "%s/data.mdb", node->dir);
    uint8_t *data = NULL;
    size_t len = 0;
    ck_assert (gkx_file_read (path, (size_t) 1 << 30, &data, &len, NULL) == GKX_OK);
    snprintf (path, sizeof path, "%s/data.mdb", copy->dir);
    s_write_file (path, data, len);
    gkx_free (data);
    s_node_reopen (node);
    s_node_reopen (copy);
}

/* Appends an entry of kind with body, asserting success; returns the entry
   (the caller's). */
static gkx_entry_t *
s_append (s_node_t *node, const uint8_t pid[GKX_ID_BYTES], int kind, const uint8_t *body,
          size_t body_len)
{
    char errbuf[GKX_ERRBUF_BYTES] = "";
    gkx_entry_t *entry = NULL;
    int rc = gkx_store_append (node->store, node->identity, pid, kind, body, body_len, &entry,
                               errbuf);
    ck_assert_msg (rc == GKX_OK, "append: %s (%s)", gkx_errname (rc), errbuf);
    return entry;
}

/* Appends an edit that sets the offer's setting key to value; returns the
   entry (the caller's). */
static gkx_entry_t *
s_edit (s_node_t *node, const uint8_t pid[GKX_ID_BYTES], const char *key, uint64_t value)
{
    char edit[128];
    msgpack_sbuffer body;
    snprintf (edit, sizeof edit, "settings.%s=n%llu", key, (unsigned long long) value);
    gkx_test_edit_body (&body, edit);
    gkx_entry_t *entry = s_append (node, pid, GKX_KIND_EDIT, (const uint8_t *) body.data,
                                   body.size);
    msgpack_sbuffer_destroy (&body);
    return entry;
}

/* Appends an ack; returns the entry (the caller's). */
static gkx_entry_t *
s_ack (s_node_t *node, const uint8_t pid[GKX_ID_BYTES])
{
    return s_append (node, pid, GKX_KIND_ACK, gkx_ack_body, sizeof gkx_ack_body);
}

/* Ships an entry from its author to node and asserts it is stored as new. */
static void
s_deliver (s_node_t *to, const gkx_entry_t *entry)
{
    char errbuf[GKX_ERRBUF_BYTES] = "";
    size_t len;
    const uint8_t *bytes = gkx_entry_bytes (entry, &len);
    int result = 0;
    int rc = gkx_store_ingest (to->store, bytes, len, gkx_entry_author (entry), &result, errbuf);
    ck_assert_msg (rc == GKX_OK, "ingest: %s (%s)", gkx_errname (rc), errbuf);
    ck_assert_int_eq (result, GKX_INGEST_APPENDED);
}

/* A shares an offer with B and B ingests the genesis; pid receives the
   partnership id. Returns the genesis (the caller's). */
static gkx_entry_t *
s_partner (s_node_t *a, s_node_t *b, uint8_t pid[GKX_ID_BYTES])
{
    char errbuf[GKX_ERRBUF_BYTES] = "";
    gkx_entry_t *genesis = NULL;
    int rc = gkx_store_share (a->store, a->identity, gkx_identity_id (b->identity), GKX_TEST_OFFER,
                              NULL, 0, pid, &genesis, errbuf);
    ck_assert_msg (rc == GKX_OK, "share: %s", errbuf);
    s_deliver (b, genesis);
    return genesis;
}

/* Builds the standard two-sided log (see s_world_t). */
static void
s_world_open (s_world_t *w)
{
    memset (w, 0, sizeof *w);
    s_node_open (&w->a, NULL);
    s_node_open (&w->b, NULL);
    w->adv[1] = s_partner (&w->a, &w->b, w->pid);
    w->adv[2] = s_edit (&w->a, w->pid, "payout", 1500000);
    s_deliver (&w->b, w->adv[2]);
    w->pub[1] = s_edit (&w->b, w->pid, "caps", 100);
    s_deliver (&w->a, w->pub[1]);
    w->adv[3] = s_ack (&w->a, w->pid);
    s_deliver (&w->b, w->adv[3]);
    w->pub[2] = s_ack (&w->b, w->pid);
    s_deliver (&w->a, w->pub[2]);
    w->adv[4] = s_edit (&w->a, w->pid, "payout", 1750000);
}

/* Frees the standard log and removes its stores. */
static void
s_world_destroy (s_world_t *w)
{
    for (int i = 0; i <= S_WORLD_ADV; i++) {
        gkx_entry_destroy (&w->adv[i]);
    }
    for (int i = 0; i <= S_WORLD_PUB; i++) {
        gkx_entry_destroy (&w->pub[i]);
    }
    s_node_destroy (&w->a);
    s_node_destroy (&w->b);
}

/* Exports partnership pid from node into node->root/name; path receives
   the file's path. */
static void
s_export (s_node_t *node, const uint8_t pid[GKX_ID_BYTES], const char *name, char *path,
          size_t path_len)
{
    char errbuf[GKX_ERRBUF_BYTES] = "";
    snprintf (path, path_len, "%s/%s", node->root, name);
    int rc = gkx_export_write (node->store, pid, gkx_identity_id (node->identity), T0, path,
                               errbuf);
    ck_assert_msg (rc == GKX_OK, "export: %s (%s)", gkx_errname (rc), errbuf);
}

/* Reads a whole file; the bytes are the caller's (gkx_free). */
static uint8_t *
s_read (const char *path, size_t *len_p)
{
    char errbuf[GKX_ERRBUF_BYTES] = "";
    uint8_t *data = NULL;
    int rc = gkx_file_read (path, GKX_LOGFILE_MAX_BYTES, &data, len_p, errbuf);
    ck_assert_msg (rc == GKX_OK, "read: %s", errbuf);
    return data;
}

/* Parses export bytes, asserting success; the logfile is the caller's. */
static gkx_logfile_t *
s_parse (const uint8_t *data, size_t len)
{
    char errbuf[GKX_ERRBUF_BYTES] = "";
    gkx_logfile_t *log = NULL;
    int rc = gkx_logfile_parse (&log, data, len, errbuf);
    ck_assert_msg (rc == GKX_OK, "parse: %s (%s)", gkx_errname (rc), errbuf);
    return log;
}

/* Reads and parses an export file; the logfile is the caller's. */
static gkx_logfile_t *
s_load (const char *path)
{
    size_t len;
    uint8_t *data = s_read (path, &len);
    gkx_logfile_t *log = s_parse (data, len);
    gkx_free (data);
    return log;
}

/* The first defect with code, or NULL. */
static const gkx_audit_defect_t *
s_find_defect (const gkx_audit_report_t *report, int code)
{
    for (size_t i = 0; i < gkx_audit_defect_count (report); i++) {
        const gkx_audit_defect_t *d = gkx_audit_defect (report, i);
        if (d->code == code) {
            return d;
        }
    }
    return NULL;
}

/* Number of defects with code. */
static size_t
s_count_defects (const gkx_audit_report_t *report, int code)
{
    size_t count = 0;
    for (size_t i = 0; i < gkx_audit_defect_count (report); i++) {
        if (gkx_audit_defect (report, i)->code == code) {
            count++;
        }
    }
    return count;
}

/* Asserts a report has a defect with code, on entry index (or
   GKX_AUDIT_NO_ENTRY), whose message contains text; returns it. */
static const gkx_audit_defect_t *
s_assert_defect (const gkx_audit_report_t *report, int code, size_t index, const char *text)
{
    ck_assert_int_eq (gkx_audit_is_sound (report), 0);
    for (size_t i = 0; i < gkx_audit_defect_count (report); i++) {
        const gkx_audit_defect_t *d = gkx_audit_defect (report, i);
        if (d->code == code && d->index == index && strstr (d->message, text)) {
            return d;
        }
    }
    for (size_t i = 0; i < gkx_audit_defect_count (report); i++) {
        const gkx_audit_defect_t *d = gkx_audit_defect (report, i);
        fprintf (stderr, "# defect %zu: %s at entry %zd: %s\n", i, gkx_errname (d->code),
                 (ssize_t) d->index, d->message);
    }
    ck_abort_msg ("no %s defect at entry %zd saying '%s'", gkx_errname (code), (ssize_t) index,
                  text);
    return NULL;
}

/* Where entry i of a parsed export starts and how long it is. */
static size_t
s_entry_span (const gkx_logfile_t *log, size_t i, size_t *len_p)
{
    const gkx_entry_t *entry = gkx_logfile_entry (log, i);
    ck_assert (entry != NULL);
    gkx_entry_bytes (entry, len_p);
    return gkx_logfile_entry_offset (log, i);
}

/* Parses tampered export bytes and verifies them; both results are the
   caller's. */
static gkx_audit_report_t *
s_audit_bytes (const uint8_t *data, size_t len, gkx_logfile_t **log_p)
{
    *log_p = s_parse (data, len);
    return gkx_audit_verify (*log_p);
}

/* The directory holding the built programs. */
static const char *
s_builddir (void)
{
    const char *dir = getenv ("GKX_BUILDDIR");
    return dir && *dir ? dir : GKX_BUILDDIR;
}

/* Runs gkx-audit with the given arguments (a shell fragment built from
   fmt), capturing its standard output, and its standard error too when
   merge is set, into out. Returns the exit status, -1 if it did not exit. */
__attribute__ ((format (printf, 4, 5))) static int
s_audit_run (char *out, size_t out_len, int merge, const char *fmt, ...)
{
    char args[3 * PATH_MAX];
    va_list ap;
    va_start (ap, fmt);
    vsnprintf (args, sizeof args, fmt, ap);
    va_end (ap);
    char command[4 * PATH_MAX];
    snprintf (command, sizeof command, "'%s/gkx-audit' %s %s", s_builddir (), args,
              merge ? "2>&1" : "2>/dev/null");
    fflush (NULL);
    FILE *pipe = popen (command, "r");
    ck_assert_msg (pipe != NULL, "cannot run %s", command);
    size_t got = 0;
    for (;;) {
        size_t n = fread (out + got, 1, out_len - 1 - got, pipe);
        if (n == 0) {
            break;
        }
        got += n;
    }
    out[got] = '\0';
    int status = pclose (pipe);
    return WIFEXITED (status) ? WEXITSTATUS (status) : -1;
}

/* Exports of one partnership whose publisher chain forks: B and a copy of
   B's store (twin) each write a different B2 after a common B1; A holds
   B's. The export paths are of A's store and of twin's. */
typedef struct {
    s_node_t a;
    s_node_t b;
    s_node_t twin;
    uint8_t pid[GKX_ID_BYTES];
    char a_path[PATH_MAX + 64];
    char b_path[PATH_MAX + 64];
    char twin_path[PATH_MAX + 64];
} s_fork_t;

/* Builds the forked exports (see s_fork_t). */
static void
s_fork_open (s_fork_t *f)
{
    memset (f, 0, sizeof *f);
    s_node_open (&f->a, NULL);
    s_node_open (&f->b, NULL);
    gkx_entry_t *a1 = s_partner (&f->a, &f->b, f->pid);
    gkx_entry_t *b1 = s_edit (&f->b, f->pid, "caps", 10);
    s_deliver (&f->a, b1);
    s_node_clone (&f->twin, &f->b);
    gkx_entry_t *b2 = s_edit (&f->b, f->pid, "caps", 20);
    gkx_entry_t *b2_twin = s_edit (&f->twin, f->pid, "caps", 30);
    ck_assert_uint_eq (gkx_entry_seq (b2_twin), 2);
    s_deliver (&f->a, b2);
    s_export (&f->a, f->pid, "a.gkx", f->a_path, sizeof f->a_path);
    s_export (&f->b, f->pid, "b.gkx", f->b_path, sizeof f->b_path);
    s_export (&f->twin, f->pid, "twin.gkx", f->twin_path, sizeof f->twin_path);
    gkx_entry_destroy (&a1);
    gkx_entry_destroy (&b1);
    gkx_entry_destroy (&b2);
    gkx_entry_destroy (&b2_twin);
}

/* Removes the forked exports' stores. */
static void
s_fork_destroy (s_fork_t *f)
{
    s_node_destroy (&f->a);
    s_node_destroy (&f->b);
    s_node_destroy (&f->twin);
}

/* An export of a two-sided log with edits and acks reads back: the header
   names the partnership, members, exporter, time and count; the entries
   are the stored bytes in chain order; the audit finds it sound, with the
   right per-chain summaries. */
START_TEST (test_export_reads_back_sound)
{
    s_world_t w;
    s_world_open (&w);
    char path[PATH_MAX + 64];
    s_export (&w.a, w.pid, "log.gkx", path, sizeof path);
    char tmp[PATH_MAX + 80];
    struct stat st;
    snprintf (tmp, sizeof tmp, "%s.tmp", path);
    ck_assert (stat (tmp, &st) != 0);

    gkx_logfile_t *log = s_load (path);
    const gkx_logfile_header_t *h = gkx_logfile_header (log);
    ck_assert_mem_eq (h->pid, w.pid, GKX_ID_BYTES);
    ck_assert_mem_eq (h->advertiser, gkx_identity_id (w.a.identity), GKX_ID_BYTES);
    ck_assert_mem_eq (h->publisher, gkx_identity_id (w.b.identity), GKX_ID_BYTES);
    ck_assert_mem_eq (h->exported_by, gkx_identity_id (w.a.identity), GKX_ID_BYTES);
    ck_assert_uint_eq (h->exported_at_ms, T0);
    ck_assert_uint_eq (h->entry_count, S_WORLD_ENTRIES);
    ck_assert_uint_eq (gkx_logfile_count (log), S_WORLD_ENTRIES);
    for (size_t i = 0; i < S_WORLD_ENTRIES; i++) {
        const gkx_entry_t *want = i < S_WORLD_ADV ? w.adv[i + 1] : w.pub[i - S_WORLD_ADV + 1];
        const gkx_entry_t *got = gkx_logfile_entry (log, i);
        ck_assert (got != NULL);
        ck_assert_int_eq (gkx_logfile_entry_error (log, i, NULL), GKX_OK);
        size_t want_len;
        size_t got_len;
        const uint8_t *want_bytes = gkx_entry_bytes (want, &want_len);
        const uint8_t *got_bytes = gkx_entry_bytes (got, &got_len);
        ck_assert_uint_eq (got_len, want_len);
        ck_assert_mem_eq (got_bytes, want_bytes, want_len);
    }
    ck_assert_int_eq (gkx_entry_kind (gkx_logfile_entry (log, S_ADV_INDEX (3))), GKX_KIND_ACK);
    ck_assert_int_eq (gkx_entry_kind (gkx_logfile_entry (log, S_PUB_INDEX (1))), GKX_KIND_EDIT);

    gkx_audit_report_t *report = gkx_audit_verify (log);
    ck_assert_int_eq (gkx_audit_is_sound (report), 1);
    ck_assert_uint_eq (gkx_audit_defect_count (report), 0);
    const gkx_audit_chain_t *adv = gkx_audit_chain (report, GKX_ROLE_ADVERTISER);
    ck_assert_uint_eq (adv->entries, S_WORLD_ADV);
    ck_assert_uint_eq (adv->head_seq, 4);
    ck_assert_mem_eq (adv->head_hash, gkx_entry_hash (w.adv[4]), GKX_HASH_BYTES);
    ck_assert_uint_eq (adv->first_hlc, gkx_entry_hlc (w.adv[1]));
    ck_assert_uint_eq (adv->last_hlc, gkx_entry_hlc (w.adv[4]));
    ck_assert_uint_eq (adv->acknowledged_seq, 3);
    const gkx_audit_chain_t *pub = gkx_audit_chain (report, GKX_ROLE_PUBLISHER);
    ck_assert_uint_eq (pub->entries, S_WORLD_PUB);
    ck_assert_uint_eq (pub->head_seq, 2);
    ck_assert_mem_eq (pub->head_hash, gkx_entry_hash (w.pub[2]), GKX_HASH_BYTES);
    ck_assert_uint_eq (pub->acknowledged_seq, 2);
    gkx_audit_report_destroy (&report);
    ck_assert (report == NULL);
    gkx_audit_report_destroy (&report);
    gkx_logfile_destroy (&log);
    ck_assert (log == NULL);

    /* B's export of the same log is sound too and one A entry shorter. */
    s_export (&w.b, w.pid, "log.gkx", path, sizeof path);
    log = s_load (path);
    ck_assert_mem_eq (gkx_logfile_header (log)->exported_by, gkx_identity_id (w.b.identity),
                      GKX_ID_BYTES);
    report = gkx_audit_verify (log);
    ck_assert_int_eq (gkx_audit_is_sound (report), 1);
    ck_assert_uint_eq (gkx_audit_chain (report, GKX_ROLE_ADVERTISER)->head_seq, 3);
    ck_assert_uint_eq (gkx_audit_chain (report, GKX_ROLE_PUBLISHER)->acknowledged_seq, 1);
    gkx_audit_report_destroy (&report);
    gkx_logfile_destroy (&log);

    s_world_destroy (&w);
}
END_TEST

/* gkx_export_write refuses an unknown partnership (GKX_ENOTFOUND) and a
   path it cannot create (GKX_EIO), leaving no file behind. */
START_TEST (test_export_write_errors)
{
    s_world_t w;
    s_world_open (&w);
    char errbuf[GKX_ERRBUF_BYTES] = "";
    char path[PATH_MAX + 64];
    uint8_t unknown[GKX_ID_BYTES];
    memset (unknown, 0x77, sizeof unknown);
    snprintf (path, sizeof path, "%s/none.gkx", w.a.root);
    int rc = gkx_export_write (w.a.store, unknown, gkx_identity_id (w.a.identity), T0, path,
                               errbuf);
    ck_assert_int_eq (rc, GKX_ENOTFOUND);
    ck_assert_msg (strstr (errbuf, "no such partnership") != NULL, "message: %s", errbuf);
    struct stat st;
    ck_assert (stat (path, &st) != 0);

    snprintf (path, sizeof path, "%s/missing/dir/log.gkx", w.a.root);
    rc = gkx_export_write (w.a.store, w.pid, gkx_identity_id (w.a.identity), T0, path, errbuf);
    ck_assert_int_eq (rc, GKX_EIO);

    s_world_destroy (&w);
}
END_TEST

/* One flipped byte inside an entry's signature field: the entry still
   decodes, and the audit names GKX_ESIGNATURE at that entry. */
START_TEST (test_tampered_signature)
{
    s_world_t w;
    s_world_open (&w);
    char path[PATH_MAX + 64];
    s_export (&w.a, w.pid, "log.gkx", path, sizeof path);
    size_t len;
    uint8_t *data = s_read (path, &len);
    gkx_logfile_t *log = s_parse (data, len);
    size_t entry_len;
    size_t at = s_entry_span (log, S_ADV_INDEX (2), &entry_len);
    gkx_logfile_destroy (&log);
    data[at + entry_len - GKX_SIGNATURE_BYTES / 2] ^= 0x10;

    gkx_audit_report_t *report = s_audit_bytes (data, len, &log);
    ck_assert_int_eq (gkx_logfile_entry_error (log, S_ADV_INDEX (2), NULL), GKX_OK);
    const gkx_audit_defect_t *d = s_assert_defect (report, GKX_ESIGNATURE, S_ADV_INDEX (2),
                                                   "signature does not verify");
    ck_assert_int_eq (d->role, GKX_ROLE_ADVERTISER);
    ck_assert_uint_eq (d->seq, 2);
    ck_assert_uint_eq (s_count_defects (report, GKX_ESIGNATURE), 1);

    gkx_audit_report_destroy (&report);
    gkx_logfile_destroy (&log);
    gkx_free (data);
    s_world_destroy (&w);
}
END_TEST

/* One flipped byte inside an entry's body (still canonical msgpack): the
   entry decodes, its signature no longer verifies, and the audit says so
   at that entry. */
START_TEST (test_tampered_body)
{
    s_world_t w;
    s_world_open (&w);
    char path[PATH_MAX + 64];
    s_export (&w.a, w.pid, "log.gkx", path, sizeof path);
    size_t len;
    uint8_t *data = s_read (path, &len);
    gkx_logfile_t *log = s_parse (data, len);
    const gkx_entry_t *edit = gkx_logfile_entry (log, S_ADV_INDEX (2));
    size_t entry_len;
    size_t body_len;
    const uint8_t *bytes = gkx_entry_bytes (edit, &entry_len);
    const uint8_t *body = gkx_entry_body (edit, &body_len);
    size_t at = gkx_logfile_entry_offset (log, S_ADV_INDEX (2)) + (size_t) (body - bytes);
    gkx_logfile_destroy (&log);
    /* The payout's lowest byte: 1500000 becomes 1500001. */
    data[at + body_len - 1] ^= 0x01;

    gkx_audit_report_t *report = s_audit_bytes (data, len, &log);
    ck_assert_int_eq (gkx_logfile_entry_error (log, S_ADV_INDEX (2), NULL), GKX_OK);
    s_assert_defect (report, GKX_ESIGNATURE, S_ADV_INDEX (2), "signature");

    gkx_audit_report_destroy (&report);
    gkx_logfile_destroy (&log);
    gkx_free (data);
    s_world_destroy (&w);
}
END_TEST

/* An entry cut out of the middle: the header's count no longer matches,
   the chain has a gap at the next seq (GKX_EGAP), and the cross-link that
   named the missing entry points outside the export. */
START_TEST (test_removed_entry)
{
    s_world_t w;
    s_world_open (&w);
    char path[PATH_MAX + 64];
    s_export (&w.a, w.pid, "log.gkx", path, sizeof path);
    size_t len;
    uint8_t *data = s_read (path, &len);
    gkx_logfile_t *log = s_parse (data, len);
    size_t entry_len;
    size_t at = s_entry_span (log, S_ADV_INDEX (2), &entry_len);
    gkx_logfile_destroy (&log);
    memmove (data + at, data + at + entry_len, len - at - entry_len);
    len -= entry_len;

    gkx_audit_report_t *report = s_audit_bytes (data, len, &log);
    ck_assert_uint_eq (gkx_logfile_count (log), S_WORLD_ENTRIES - 1);
    s_assert_defect (report, GKX_EDECODE, GKX_AUDIT_NO_ENTRY,
                     "announces 6 entries but the export holds 5");
    /* A3 now sits where A2 was. */
    const gkx_audit_defect_t *gap = s_assert_defect (report, GKX_EGAP, S_ADV_INDEX (2),
                                                     "advertiser seq 3 follows seq 1");
    ck_assert_int_eq (gap->role, GKX_ROLE_ADVERTISER);
    ck_assert_uint_eq (gap->seq, 3);
    s_assert_defect (report, GKX_EAHEAD, S_PUB_INDEX (1) - 1, "advertiser seq 2");

    gkx_audit_report_destroy (&report);
    gkx_logfile_destroy (&log);
    gkx_free (data);
    s_world_destroy (&w);
}
END_TEST

/* A truncated export: cut at an entry boundary it parses and the count in
   the header gives it away; cut inside an entry the stream cannot be
   delimited and the parse fails with GKX_EDECODE. */
START_TEST (test_truncated_export)
{
    s_world_t w;
    s_world_open (&w);
    char path[PATH_MAX + 64];
    s_export (&w.a, w.pid, "log.gkx", path, sizeof path);
    size_t len;
    uint8_t *data = s_read (path, &len);
    gkx_logfile_t *log = s_parse (data, len);
    size_t last = gkx_logfile_entry_offset (log, S_WORLD_ENTRIES - 1);
    gkx_logfile_destroy (&log);

    gkx_audit_report_t *report = s_audit_bytes (data, last, &log);
    ck_assert_uint_eq (gkx_logfile_count (log), S_WORLD_ENTRIES - 1);
    s_assert_defect (report, GKX_EDECODE, GKX_AUDIT_NO_ENTRY, "truncated?");
    gkx_audit_report_destroy (&report);
    gkx_logfile_destroy (&log);

    char errbuf[GKX_ERRBUF_BYTES] = "";
    int rc = gkx_logfile_parse (&log, data, len - 10, errbuf);
    ck_assert_int_eq (rc, GKX_EDECODE);
    ck_assert (log == NULL);
    ck_assert_msg (strstr (errbuf, "entry 5") != NULL && strstr (errbuf, "cannot be delimited"),
                   "message: %s", errbuf);

    gkx_free (data);
    s_world_destroy (&w);
}
END_TEST

/* A store that saw A sign two different seq 2 entries exports both as
   evidence; the audit reports exactly one GKX_EEQUIVOCATION naming both
   entries. */
START_TEST (test_equivocating_pair)
{
    s_node_t a;
    s_node_t b;
    s_node_t twin;
    s_node_open (&a, NULL);
    s_node_open (&b, NULL);
    uint8_t pid[GKX_ID_BYTES];
    gkx_entry_t *a1 = s_partner (&a, &b, pid);
    s_node_clone (&twin, &a);
    gkx_entry_t *first = s_edit (&a, pid, "payout", 1);
    gkx_entry_t *second = s_edit (&twin, pid, "payout", 2);
    s_deliver (&b, first);
    char errbuf[GKX_ERRBUF_BYTES] = "";
    size_t len;
    const uint8_t *bytes = gkx_entry_bytes (second, &len);
    int result = 0;
    ck_assert_int_eq (gkx_store_ingest (b.store, bytes, len, gkx_identity_id (a.identity),
                                        &result, errbuf),
                      GKX_EEQUIVOCATION);

    char path[PATH_MAX + 64];
    s_export (&b, pid, "log.gkx", path, sizeof path);
    gkx_logfile_t *log = s_load (path);
    ck_assert_uint_eq (gkx_logfile_count (log), 4);
    gkx_audit_report_t *report = gkx_audit_verify (log);
    ck_assert_int_eq (gkx_audit_is_sound (report), 0);
    ck_assert_uint_eq (s_count_defects (report, GKX_EEQUIVOCATION), 1);
    const gkx_audit_defect_t *d = s_find_defect (report, GKX_EEQUIVOCATION);
    ck_assert_int_eq (d->role, GKX_ROLE_ADVERTISER);
    ck_assert_uint_eq (d->seq, 2);
    ck_assert_msg (strstr (d->message, "two different entries at seq 2") != NULL, "message: %s",
                   d->message);
    ck_assert (d->index != GKX_AUDIT_NO_ENTRY && d->other_index != GKX_AUDIT_NO_ENTRY);
    const gkx_entry_t *x = gkx_logfile_entry (log, d->index);
    const gkx_entry_t *y = gkx_logfile_entry (log, d->other_index);
    ck_assert_uint_eq (gkx_entry_seq (x), 2);
    ck_assert_uint_eq (gkx_entry_seq (y), 2);
    ck_assert (memcmp (gkx_entry_hash (x), gkx_entry_hash (y), GKX_HASH_BYTES) != 0);

    gkx_audit_report_destroy (&report);
    gkx_logfile_destroy (&log);
    gkx_entry_destroy (&a1);
    gkx_entry_destroy (&first);
    gkx_entry_destroy (&second);
    s_node_destroy (&twin);
    s_node_destroy (&a);
    s_node_destroy (&b);
}
END_TEST

/* An entry of another partnership of the same members spliced into an
   export is named as not belonging (GKX_EINVAL) at its index. */
START_TEST (test_spliced_entry)
{
    s_world_t w;
    s_world_open (&w);
    char errbuf[GKX_ERRBUF_BYTES] = "";
    uint8_t other[GKX_ID_BYTES];
    gkx_entry_t *genesis = NULL;
    ck_assert (gkx_store_share (w.a.store, w.a.identity, gkx_identity_id (w.b.identity), GKX_TEST_OFFER,
                                NULL, 0, other, &genesis, errbuf)
               == GKX_OK);
    char path[PATH_MAX + 64];
    s_export (&w.a, w.pid, "log.gkx", path, sizeof path);
    size_t len;
    uint8_t *data = s_read (path, &len);
    size_t extra_len;
    const uint8_t *extra = gkx_entry_bytes (genesis, &extra_len);
    data = gkx_realloc (data, len + extra_len);
    memcpy (data + len, extra, extra_len);
    len += extra_len;

    gkx_logfile_t *log = NULL;
    gkx_audit_report_t *report = s_audit_bytes (data, len, &log);
    ck_assert_uint_eq (gkx_logfile_count (log), S_WORLD_ENTRIES + 1);
    s_assert_defect (report, GKX_EINVAL, S_WORLD_ENTRIES, "another partnership");
    s_assert_defect (report, GKX_EDECODE, GKX_AUDIT_NO_ENTRY, "announces 6 entries");
    /* The log's own chains are untouched by the intruder. */
    ck_assert_uint_eq (gkx_audit_chain (report, GKX_ROLE_ADVERTISER)->head_seq, 4);
    ck_assert_uint_eq (s_count_defects (report, GKX_EEQUIVOCATION), 0);

    gkx_audit_report_destroy (&report);
    gkx_logfile_destroy (&log);
    gkx_free (data);
    gkx_entry_destroy (&genesis);
    s_world_destroy (&w);
}
END_TEST

/* What is not an export is refused by gkx_logfile_parse with GKX_EFORMAT:
   text, an empty file, a bare entry, and a header of another version. */
START_TEST (test_not_an_export)
{
    s_world_t w;
    s_world_open (&w);
    char errbuf[GKX_ERRBUF_BYTES] = "";
    gkx_logfile_t *log = NULL;
    const char *text = "advertiser,publisher,payout\nacme,news,1.50\n";
    ck_assert_int_eq (gkx_logfile_parse (&log, (const uint8_t *) text, strlen (text), errbuf),
                      GKX_EFORMAT);
    ck_assert (log == NULL);
    ck_assert_msg (strstr (errbuf, "not a gokart-exchange log export") != NULL, "message: %s",
                   errbuf);
    ck_assert_int_eq (gkx_logfile_parse (&log, (const uint8_t *) text, 0, errbuf), GKX_EFORMAT);
    size_t len;
    const uint8_t *bytes = gkx_entry_bytes (w.adv[2], &len);
    ck_assert_int_eq (gkx_logfile_parse (&log, bytes, len, errbuf), GKX_EFORMAT);
    ck_assert (log == NULL);

    /* A header as this build writes it, but of version 2. */
    gkx_logfile_header_t header;
    memset (&header, 0, sizeof header);
    memcpy (header.pid, w.pid, GKX_ID_BYTES);
    memcpy (header.advertiser, gkx_identity_id (w.a.identity), GKX_ID_BYTES);
    memcpy (header.publisher, gkx_identity_id (w.b.identity), GKX_ID_BYTES);
    memcpy (header.exported_by, gkx_identity_id (w.a.identity), GKX_ID_BYTES);
    msgpack_sbuffer sbuf;
    msgpack_sbuffer_init (&sbuf);
    gkx_logfile_header_encode (&sbuf, &header);
    ck_assert_int_eq (gkx_logfile_parse (&log, (const uint8_t *) sbuf.data, sbuf.size, errbuf),
                      GKX_OK);
    ck_assert_uint_eq (gkx_logfile_count (log), 0);
    gkx_logfile_destroy (&log);
    ck_assert_int_eq ((uint8_t) sbuf.data[sbuf.size - 1], GKX_LOGFILE_VERSION);
    sbuf.data[sbuf.size - 1] = 2;
    ck_assert_int_eq (gkx_logfile_parse (&log, (const uint8_t *) sbuf.data, sbuf.size, errbuf),
                      GKX_EFORMAT);
    ck_assert_msg (strstr (errbuf, "format version 2") != NULL, "message: %s", errbuf);
    msgpack_sbuffer_destroy (&sbuf);

    s_world_destroy (&w);
}
END_TEST

/* Exports of one partnership taken by A and B at different times relate
   per chain as prefixes (or are equal), in both argument orders. */
START_TEST (test_compare_prefixes)
{
    s_node_t a;
    s_node_t b;
    s_node_open (&a, NULL);
    s_node_open (&b, NULL);
    uint8_t pid[GKX_ID_BYTES];
    char early_a[PATH_MAX + 64];
    char mid_b[PATH_MAX + 64];
    char late_a[PATH_MAX + 64];
    gkx_entry_t *a1 = s_partner (&a, &b, pid);
    gkx_entry_t *a2 = s_edit (&a, pid, "payout", 5);
    s_export (&a, pid, "early.gkx", early_a, sizeof early_a);        /* A: 2, B: 0 */
    s_deliver (&b, a2);
    gkx_entry_t *b1 = s_edit (&b, pid, "caps", 7);
    s_deliver (&a, b1);
    s_export (&b, pid, "mid.gkx", mid_b, sizeof mid_b);              /* A: 2, B: 1 */
    gkx_entry_t *a3 = s_ack (&a, pid);
    s_export (&a, pid, "late.gkx", late_a, sizeof late_a);           /* A: 3, B: 1 */

    gkx_logfile_t *early = s_load (early_a);
    gkx_logfile_t *mid = s_load (mid_b);
    gkx_logfile_t *late = s_load (late_a);
    char errbuf[GKX_ERRBUF_BYTES] = "";
    gkx_audit_comparison_t cmp[2];

    ck_assert_int_eq (gkx_audit_compare (early, mid, cmp, errbuf), GKX_OK);
    ck_assert_int_eq (cmp[0].role, GKX_ROLE_ADVERTISER);
    ck_assert_int_eq (cmp[0].relation, GKX_AUDIT_EQUAL);
    ck_assert_uint_eq (cmp[0].a_length, 2);
    ck_assert_uint_eq (cmp[0].b_length, 2);
    ck_assert_int_eq (cmp[1].role, GKX_ROLE_PUBLISHER);
    ck_assert_int_eq (cmp[1].relation, GKX_AUDIT_A_PREFIX);
    ck_assert_uint_eq (cmp[1].a_length, 0);
    ck_assert_uint_eq (cmp[1].b_length, 1);

    ck_assert_int_eq (gkx_audit_compare (mid, late, cmp, errbuf), GKX_OK);
    ck_assert_int_eq (cmp[0].relation, GKX_AUDIT_A_PREFIX);
    ck_assert_uint_eq (cmp[0].a_length, 2);
    ck_assert_uint_eq (cmp[0].b_length, 3);
    ck_assert_int_eq (cmp[1].relation, GKX_AUDIT_EQUAL);

    ck_assert_int_eq (gkx_audit_compare (late, early, cmp, errbuf), GKX_OK);
    ck_assert_int_eq (cmp[0].relation, GKX_AUDIT_B_PREFIX);
    ck_assert_int_eq (cmp[1].relation, GKX_AUDIT_B_PREFIX);
    ck_assert_uint_eq (cmp[0].fork_seq, 0);
    ck_assert_str_eq (gkx_audit_relation_name (cmp[0].relation), "b-prefix");
    ck_assert_str_eq (gkx_audit_relation_name (GKX_AUDIT_A_PREFIX), "a-prefix");
    ck_assert_str_eq (gkx_audit_relation_name (GKX_AUDIT_EQUAL), "equal");
    ck_assert_str_eq (gkx_audit_relation_name (GKX_AUDIT_FORK), "fork");

    gkx_logfile_destroy (&early);
    gkx_logfile_destroy (&mid);
    gkx_logfile_destroy (&late);
    gkx_entry_destroy (&a1);
    gkx_entry_destroy (&a2);
    gkx_entry_destroy (&a3);
    gkx_entry_destroy (&b1);
    s_node_destroy (&a);
    s_node_destroy (&b);
}
END_TEST

/* Two exports in which B's chain forks (B and a copy of B's store wrote
   different B2s): each export alone is sound, and compare reports
   GKX_AUDIT_FORK at seq 2 for the publisher's chain only. */
START_TEST (test_compare_fork)
{
    s_fork_t f;
    s_fork_open (&f);
    gkx_logfile_t *a = s_load (f.a_path);
    gkx_logfile_t *b = s_load (f.b_path);
    gkx_logfile_t *twin = s_load (f.twin_path);
    gkx_audit_report_t *report = gkx_audit_verify (twin);
    ck_assert_int_eq (gkx_audit_is_sound (report), 1);
    gkx_audit_report_destroy (&report);
    report = gkx_audit_verify (a);
    ck_assert_int_eq (gkx_audit_is_sound (report), 1);
    gkx_audit_report_destroy (&report);

    char errbuf[GKX_ERRBUF_BYTES] = "";
    gkx_audit_comparison_t cmp[2];
    ck_assert_int_eq (gkx_audit_compare (a, twin, cmp, errbuf), GKX_OK);
    ck_assert_int_eq (cmp[0].relation, GKX_AUDIT_EQUAL);
    ck_assert_int_eq (cmp[1].relation, GKX_AUDIT_FORK);
    ck_assert_uint_eq (cmp[1].fork_seq, 2);
    ck_assert_uint_eq (cmp[1].a_length, 2);
    ck_assert_uint_eq (cmp[1].b_length, 2);
    ck_assert_int_eq (gkx_audit_compare (a, b, cmp, errbuf), GKX_OK);
    ck_assert_int_eq (cmp[0].relation, GKX_AUDIT_EQUAL);
    ck_assert_int_eq (cmp[1].relation, GKX_AUDIT_EQUAL);

    gkx_logfile_destroy (&a);
    gkx_logfile_destroy (&b);
    gkx_logfile_destroy (&twin);
    s_fork_destroy (&f);
}
END_TEST

/* Exports of two different partnerships cannot be compared: GKX_EINVAL. */
START_TEST (test_compare_different_partnerships)
{
    s_world_t w;
    s_world_open (&w);
    s_node_t c;
    s_node_open (&c, NULL);
    uint8_t other[GKX_ID_BYTES];
    gkx_entry_t *genesis = s_partner (&w.a, &c, other);
    char one[PATH_MAX + 64];
    char two[PATH_MAX + 64];
    s_export (&w.a, w.pid, "one.gkx", one, sizeof one);
    s_export (&w.a, other, "two.gkx", two, sizeof two);
    gkx_logfile_t *x = s_load (one);
    gkx_logfile_t *y = s_load (two);
    char errbuf[GKX_ERRBUF_BYTES] = "";
    gkx_audit_comparison_t cmp[2];
    ck_assert_int_eq (gkx_audit_compare (x, y, cmp, errbuf), GKX_EINVAL);
    ck_assert_msg (strstr (errbuf, "different partnerships") != NULL, "message: %s", errbuf);

    gkx_logfile_destroy (&x);
    gkx_logfile_destroy (&y);
    gkx_entry_destroy (&genesis);
    s_node_destroy (&c);
    s_world_destroy (&w);
}
END_TEST

/* gkx-audit verify: exit 0 and "verdict: sound" on a sound export; exit 1
   and a defect line naming GKX_ESIGNATURE on a tampered one; --json says
   "sound": true or false with the defects; a file that is not an export
   exits 1. */
START_TEST (test_gkx_audit_verify)
{
    s_world_t w;
    s_world_open (&w);
    char sound[PATH_MAX + 64];
    char tampered[PATH_MAX + 64];
    char junk[PATH_MAX + 64];
    s_export (&w.a, w.pid, "sound.gkx", sound, sizeof sound);
    size_t len;
    uint8_t *data = s_read (sound, &len);
    gkx_logfile_t *log = s_parse (data, len);
    size_t entry_len;
    size_t at = s_entry_span (log, S_PUB_INDEX (1), &entry_len);
    gkx_logfile_destroy (&log);
    data[at + entry_len - 1] ^= 0x01;
    snprintf (tampered, sizeof tampered, "%s/tampered.gkx", w.a.root);
    s_write_file (tampered, data, len);
    gkx_free (data);
    snprintf (junk, sizeof junk, "%s/junk.txt", w.a.root);
    s_write_file (junk, "hello\n", 6);

    char *out = malloc (S_OUTPUT_BYTES);
    ck_assert (out != NULL);
    int rc = s_audit_run (out, S_OUTPUT_BYTES, 0, "verify '%s'", sound);
    ck_assert_msg (rc == 0, "exit %d: %s", rc, out);
    ck_assert_msg (strstr (out, "verdict:      sound\n") != NULL, "output: %s", out);
    ck_assert (strstr (out, "defect:") == NULL);
    ck_assert_msg (strstr (out, "4 entries, head seq 4, acknowledged up to seq 3") != NULL,
                   "output: %s", out);

    rc = s_audit_run (out, S_OUTPUT_BYTES, 0, "verify '%s'", tampered);
    ck_assert_msg (rc == 1, "exit %d: %s", rc, out);
    char *line = strstr (out, "\ndefect: ");
    ck_assert_msg (line != NULL, "output: %s", out);
    char *end = strchr (line + 1, '\n');
    ck_assert (end != NULL);
    *end = '\0';
    ck_assert_msg (strstr (line, "GKX_ESIGNATURE") != NULL, "defect line: %s", line);
    ck_assert_msg (strstr (line, "entry 4") != NULL, "defect line: %s", line);
    *end = '\n';
    ck_assert (strstr (out, "verdict:      NOT SOUND") != NULL);

    json_error_t error;
    rc = s_audit_run (out, S_OUTPUT_BYTES, 0, "verify --json '%s'", sound);
    ck_assert_int_eq (rc, 0);
    json_t *json = json_loads (out, 0, &error);
    ck_assert_msg (json != NULL, "not JSON (%s): %s", error.text, out);
    ck_assert (json_is_true (json_object_get (json, "sound")));
    ck_assert_int_eq (json_integer_value (json_object_get (json, "entries")), S_WORLD_ENTRIES);
    ck_assert_int_eq (json_array_size (json_object_get (json, "defects")), 0);
    json_t *adv = json_object_get (json_object_get (json, "chains"), "advertiser");
    ck_assert_int_eq (json_integer_value (json_object_get (adv, "head_seq")), 4);
    ck_assert_int_eq (json_integer_value (json_object_get (adv, "acknowledged_seq")), 3);
    char id[GKX_ID_TEXT_BYTES];
    gkx_id_format (id, w.pid);
    ck_assert_str_eq (json_string_value (json_object_get (json, "partnership")), id);
    json_decref (json);

    rc = s_audit_run (out, S_OUTPUT_BYTES, 0, "verify '%s' --json", tampered);
    ck_assert_int_eq (rc, 1);
    json = json_loads (out, 0, &error);
    ck_assert_msg (json != NULL, "not JSON (%s): %s", error.text, out);
    ck_assert (json_is_false (json_object_get (json, "sound")));
    json_t *defects = json_object_get (json, "defects");
    ck_assert_int_ge (json_array_size (defects), 1);
    int named = 0;
    size_t i;
    json_t *d;
    json_array_foreach (defects, i, d) {
        if (strcmp (json_string_value (json_object_get (d, "code")), "GKX_ESIGNATURE") == 0) {
            ck_assert_int_eq (json_integer_value (json_object_get (d, "entry")),
                              S_PUB_INDEX (1));
            ck_assert_str_eq (json_string_value (json_object_get (d, "chain")), "publisher");
            named = 1;
        }
    }
    ck_assert_msg (named, "no GKX_ESIGNATURE defect: %s", out);
    json_decref (json);

    rc = s_audit_run (out, S_OUTPUT_BYTES, 1, "verify '%s'", junk);
    ck_assert_msg (rc == 1, "exit %d: %s", rc, out);
    ck_assert_msg (strstr (out, "not a gokart-exchange log export") != NULL, "output: %s", out);

    free (out);
    s_world_destroy (&w);
}
END_TEST

/* gkx-audit compare: exit 0 and "the exports agree" for A's and B's
   exports of one log; exit 1 and the fork seq when B's chain forks, also
   in --json; exit 1 for exports of different partnerships. */
START_TEST (test_gkx_audit_compare)
{
    s_fork_t f;
    s_fork_open (&f);
    char *out = malloc (S_OUTPUT_BYTES);
    ck_assert (out != NULL);

    int rc = s_audit_run (out, S_OUTPUT_BYTES, 0, "compare '%s' '%s'", f.a_path, f.b_path);
    ck_assert_msg (rc == 0, "exit %d: %s", rc, out);
    ck_assert_msg (strstr (out, "the exports agree") != NULL, "output: %s", out);

    rc = s_audit_run (out, S_OUTPUT_BYTES, 0, "compare '%s' '%s'", f.a_path, f.twin_path);
    ck_assert_msg (rc == 1, "exit %d: %s", rc, out);
    ck_assert_msg (strstr (out, "FORK at seq 2") != NULL, "output: %s", out);
    ck_assert (strstr (out, "the exports DISAGREE") != NULL);

    rc = s_audit_run (out, S_OUTPUT_BYTES, 0, "compare --json '%s' '%s'", f.a_path,
                      f.twin_path);
    ck_assert_int_eq (rc, 1);
    json_error_t error;
    json_t *json = json_loads (out, 0, &error);
    ck_assert_msg (json != NULL, "not JSON (%s): %s", error.text, out);
    ck_assert (json_is_false (json_object_get (json, "agree")));
    json_t *pub = json_object_get (json_object_get (json, "chains"), "publisher");
    ck_assert_str_eq (json_string_value (json_object_get (pub, "relation")), "fork");
    ck_assert_int_eq (json_integer_value (json_object_get (pub, "fork_seq")), 2);
    json_decref (json);

    /* Another partnership of A's, against B's export. */
    s_node_t c;
    s_node_open (&c, NULL);
    uint8_t other[GKX_ID_BYTES];
    gkx_entry_t *genesis = s_partner (&f.a, &c, other);
    char other_path[PATH_MAX + 64];
    s_export (&f.a, other, "other.gkx", other_path, sizeof other_path);
    rc = s_audit_run (out, S_OUTPUT_BYTES, 1, "compare '%s' '%s'", other_path, f.b_path);
    ck_assert_msg (rc == 1, "exit %d: %s", rc, out);
    ck_assert_msg (strstr (out, "different partnerships") != NULL, "output: %s", out);

    gkx_entry_destroy (&genesis);
    s_node_destroy (&c);
    free (out);
    s_fork_destroy (&f);
}
END_TEST

/* gkx-audit usage errors exit 2 with the usage text: no arguments, a verb
   without its files, an unknown verb, an unknown option; --help exits 0. */
START_TEST (test_gkx_audit_usage)
{
    char *out = malloc (S_OUTPUT_BYTES);
    ck_assert (out != NULL);
    const char *bad[] = {"", "verify", "compare only-one", "frobnicate x", "verify --bogus x",
                         "verify a b"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int rc = s_audit_run (out, S_OUTPUT_BYTES, 1, "%s", bad[i]);
        ck_assert_msg (rc == 2, "'%s': exit %d: %s", bad[i], rc, out);
        ck_assert_msg (strstr (out, "usage: gkx-audit verify FILE") != NULL, "'%s': %s", bad[i],
                       out);
    }
    int rc = s_audit_run (out, S_OUTPUT_BYTES, 0, "--help");
    ck_assert_int_eq (rc, 0);
    ck_assert (strstr (out, "usage:") != NULL);
    free (out);
}
END_TEST

/* A's export imported into a fresh store of B's identity rebuilds the log:
   every entry appended (cross-links sorted out by retrying), the
   partnership known as publisher, the same heads as A; B can append on.
   Importing again, or into A's own store, adds nothing: all duplicates. */
START_TEST (test_import_into_fresh_store)
{
    s_world_t w;
    s_world_open (&w);
    char path[PATH_MAX + 64];
    s_export (&w.a, w.pid, "log.gkx", path, sizeof path);
    s_node_t fresh;
    s_node_open (&fresh, s_identity_copy (w.b.identity));

    char errbuf[GKX_ERRBUF_BYTES] = "";
    gkx_import_result_t result;
    int rc = gkx_export_import (fresh.store, path, &result, errbuf);
    ck_assert_msg (rc == GKX_OK, "import: %s (%s)", gkx_errname (rc), errbuf);
    ck_assert_msg (result.refused == 0, "refused %zu: %s", result.refused, result.first_message);
    ck_assert_uint_eq (result.appended, S_WORLD_ENTRIES);
    ck_assert_uint_eq (result.duplicates, 0);
    ck_assert_int_eq (result.first_error, GKX_OK);

    gkx_partnership_t p;
    ck_assert_int_eq (gkx_store_partnership (fresh.store, w.pid, &p), GKX_OK);
    ck_assert_int_eq (p.self_role, GKX_ROLE_PUBLISHER);
    ck_assert_int_eq (p.is_frozen, 0);
    const int roles[2] = {GKX_ROLE_ADVERTISER, GKX_ROLE_PUBLISHER};
    for (int r = 0; r < 2; r++) {
        gkx_head_t want;
        gkx_head_t got;
        ck_assert_int_eq (gkx_store_head (w.a.store, w.pid, roles[r], &want), GKX_OK);
        ck_assert_int_eq (gkx_store_head (fresh.store, w.pid, roles[r], &got), GKX_OK);
        ck_assert_uint_eq (got.seq, want.seq);
        ck_assert_mem_eq (got.hash, want.hash, GKX_HASH_BYTES);
    }

    rc = gkx_export_import (fresh.store, path, &result, errbuf);
    ck_assert_int_eq (rc, GKX_OK);
    ck_assert_uint_eq (result.appended, 0);
    ck_assert_uint_eq (result.duplicates, S_WORLD_ENTRIES);
    ck_assert_uint_eq (result.refused, 0);
    rc = gkx_export_import (w.a.store, path, &result, errbuf);
    ck_assert_int_eq (rc, GKX_OK);
    ck_assert_uint_eq (result.appended, 0);
    ck_assert_uint_eq (result.duplicates, S_WORLD_ENTRIES);

    /* The restored B continues its chain, and A takes the entry. */
    gkx_entry_t *b3 = s_ack (&fresh, w.pid);
    ck_assert_uint_eq (gkx_entry_seq (b3), 3);
    ck_assert_uint_eq (gkx_entry_seen_seq (b3), 4);
    s_deliver (&w.a, b3);

    gkx_entry_destroy (&b3);
    s_node_destroy (&fresh);
    s_world_destroy (&w);
}
END_TEST

/* Import counts refusals instead of failing: into the store of a node that
   is no member, the genesis is GKX_ENOTMEMBER and nothing goes in. A file
   that is not an export fails with GKX_EFORMAT, a missing one with
   GKX_EIO. */
START_TEST (test_import_refusals)
{
    s_world_t w;
    s_world_open (&w);
    char path[PATH_MAX + 64];
    s_export (&w.a, w.pid, "log.gkx", path, sizeof path);
    s_node_t stranger;
    s_node_open (&stranger, NULL);

    char errbuf[GKX_ERRBUF_BYTES] = "";
    gkx_import_result_t result;
    int rc = gkx_export_import (stranger.store, path, &result, errbuf);
    ck_assert_int_eq (rc, GKX_OK);
    ck_assert_uint_eq (result.appended, 0);
    ck_assert_uint_eq (result.refused, S_WORLD_ENTRIES);
    ck_assert_int_eq (result.first_error, GKX_ENOTMEMBER);
    ck_assert_msg (strstr (result.first_message, "entry 0") != NULL, "message: %s",
                   result.first_message);
    gkx_partnership_t p;
    ck_assert_int_eq (gkx_store_partnership (stranger.store, w.pid, &p), GKX_ENOTFOUND);

    char junk[PATH_MAX + 64];
    snprintf (junk, sizeof junk, "%s/junk.txt", stranger.root);
    s_write_file (junk, "hello\n", 6);
    ck_assert_int_eq (gkx_export_import (stranger.store, junk, &result, errbuf), GKX_EFORMAT);
    snprintf (junk, sizeof junk, "%s/absent.gkx", stranger.root);
    ck_assert_int_eq (gkx_export_import (stranger.store, junk, &result, errbuf), GKX_EIO);

    s_node_destroy (&stranger);
    s_world_destroy (&w);
}
END_TEST

int
main (void)
{
    Suite *s = suite_create ("export");
    TCase *tc = tcase_create ("export");
    tcase_set_timeout (tc, 30);
    tcase_add_test (tc, test_export_reads_back_sound);
    tcase_add_test (tc, test_export_write_errors);
    tcase_add_test (tc, test_tampered_signature);
    tcase_add_test (tc, test_tampered_body);
    tcase_add_test (tc, test_removed_entry);
    tcase_add_test (tc, test_truncated_export);
    tcase_add_test (tc, test_equivocating_pair);
    tcase_add_test (tc, test_spliced_entry);
    tcase_add_test (tc, test_not_an_export);
    tcase_add_test (tc, test_compare_prefixes);
    tcase_add_test (tc, test_compare_fork);
    tcase_add_test (tc, test_compare_different_partnerships);
    tcase_add_test (tc, test_gkx_audit_verify);
    tcase_add_test (tc, test_gkx_audit_compare);
    tcase_add_test (tc, test_gkx_audit_usage);
    tcase_add_test (tc, test_import_into_fresh_store);
    tcase_add_test (tc, test_import_refusals);
    suite_add_tcase (s, tc);
    return gkx_test_run (s);
}
