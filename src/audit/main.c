/*  gkx-audit - offline verifier of exported partnership logs.
    Part of gokart-exchange; MIT licence.

    Needs no node and no network: it reads export files and applies every
    rule of the log itself (audit.h). Exit status: 0 when the log is sound
    (verify) or the exports agree (compare), 1 when not or when a file cannot
    be read as an export, 2 for a usage error.
*/
#include <gkx/alloc.h>
#include <gkx/audit.h>
#include <gkx/export.h>
#include <gkx/hlc.h>
#include <gkx/identity.h>
#include <gkx/kind.h>
#include <gkx/logfile.h>

#include <jansson.h>
#include <stdio.h>
#include <string.h>

/* Exit codes. */
#define S_SOUND 0
#define S_DEFECTIVE 1
#define S_USAGE 2

/* Prints usage to out. */
static void
s_usage (FILE *out)
{
    fprintf (out, "usage: gkx-audit verify FILE [--json]\n"
                  "       gkx-audit compare A B [--json]\n\n"
                  "verify   checks every signature, hash link, seq, membership, cross-link and\n"
                  "         equivocation of an export; exits 0 only when the log is sound\n"
                  "compare  two exports of one partnership (one from each member): per chain,\n"
                  "         whether one is a prefix of the other or the seq where they fork;\n"
                  "         exits 0 only when no chain forks\n");
}

/* Reads and parses an export file. */
static int
s_load (const char *path, gkx_logfile_t **log_p)
{
    char errbuf[GKX_ERRBUF_BYTES];
    uint8_t *data = NULL;
    size_t len = 0;
    int rc = gkx_file_read (path, GKX_LOGFILE_MAX_BYTES, &data, &len, errbuf);
    if (rc == GKX_OK) {
        rc = gkx_logfile_parse (log_p, data, len, errbuf);
        gkx_free (data);
    }
    if (rc != GKX_OK) {
        fprintf (stderr, "gkx-audit: %s: %s\n", path, errbuf);
    }
    return rc;
}

/* Hex text of a 32-byte value as a new JSON string. */
static json_t *
s_hex (const uint8_t *bytes)
{
    char text[GKX_ID_TEXT_BYTES];
    gkx_id_format (text, bytes);
    return json_string (text);
}

/* ISO time of a clock value as a new JSON string. */
static json_t *
s_time (uint64_t hlc)
{
    char text[GKX_HLC_TEXT_BYTES];
    gkx_hlc_format (text, sizeof text, hlc);
    return json_string (text);
}

/* The verify report as JSON. */
static json_t *
s_report_json (const char *path, const gkx_logfile_t *log, const gkx_audit_report_t *report)
{
    const gkx_logfile_header_t *h = gkx_logfile_header (log);
    json_t *chains = json_object ();
    const int roles[2] = {GKX_ROLE_ADVERTISER, GKX_ROLE_PUBLISHER};
    for (int c = 0; c < 2; c++) {
        const gkx_audit_chain_t *chain = gkx_audit_chain (report, roles[c]);
        json_t *row = json_pack ("{s:o, s:I, s:I, s:I}", "id",
                                 s_hex (c == 0 ? h->advertiser : h->publisher), "entries",
                                 (json_int_t) chain->entries, "head_seq",
                                 (json_int_t) chain->head_seq, "acknowledged_seq",
                                 (json_int_t) chain->acknowledged_seq);
        if (chain->entries) {
            json_object_set_new (row, "head_hash", s_hex (chain->head_hash));
            json_object_set_new (row, "first_time", s_time (chain->first_hlc));
            json_object_set_new (row, "last_time", s_time (chain->last_hlc));
        }
        json_object_set_new (chains, gkx_role_name (roles[c]), row);
    }
    json_t *defects = json_array ();
    for (size_t i = 0; i < gkx_audit_defect_count (report); i++) {
        const gkx_audit_defect_t *d = gkx_audit_defect (report, i);
        json_t *row = json_pack ("{s:s, s:s}", "code", gkx_errname (d->code), "message",
                                 d->message);
        if (d->index != GKX_AUDIT_NO_ENTRY) {
            json_object_set_new (row, "entry", json_integer ((json_int_t) d->index));
            json_object_set_new (row, "offset",
                                 json_integer ((json_int_t) gkx_logfile_entry_offset (log, d->index)));
        }
        if (d->other_index != GKX_AUDIT_NO_ENTRY) {
            json_object_set_new (row, "other_entry", json_integer ((json_int_t) d->other_index));
        }
        if (d->role) {
            json_object_set_new (row, "chain", json_string (gkx_role_name (d->role)));
            json_object_set_new (row, "seq", json_integer ((json_int_t) d->seq));
        }
        json_array_append_new (defects, row);
    }
    return json_pack ("{s:s, s:o, s:o, s:o, s:I, s:b, s:o, s:o}", "file", path, "partnership",
                      s_hex (h->pid), "exported_by", s_hex (h->exported_by), "exported_at",
                      s_time (h->exported_at_ms << GKX_HLC_COUNTER_BITS), "entries",
                      (json_int_t) gkx_logfile_count (log), "sound",
                      gkx_audit_is_sound (report), "chains", chains, "defects", defects);
}

/* Prints the verify report for people. */
static void
s_report_print (const json_t *json)
{
    printf ("export:       %s\n", json_string_value (json_object_get (json, "file")));
    printf ("partnership:  %s\n", json_string_value (json_object_get (json, "partnership")));
    printf ("exported by:  %s at %s\n", json_string_value (json_object_get (json, "exported_by")),
            json_string_value (json_object_get (json, "exported_at")));
    const char *names[2] = {"advertiser", "publisher"};
    for (int c = 0; c < 2; c++) {
        const json_t *row = json_object_get (json_object_get (json, "chains"), names[c]);
        printf ("%-11s   %s\n", names[c], json_string_value (json_object_get (row, "id")));
        printf ("              %lld entries, head seq %lld, acknowledged up to seq %lld",
                (long long) json_integer_value (json_object_get (row, "entries")),
                (long long) json_integer_value (json_object_get (row, "head_seq")),
                (long long) json_integer_value (json_object_get (row, "acknowledged_seq")));
        if (json_object_get (row, "first_time")) {
            printf (", %s .. %s", json_string_value (json_object_get (row, "first_time")),
                    json_string_value (json_object_get (row, "last_time")));
        }
        printf ("\n");
    }
    const json_t *defects = json_object_get (json, "defects");
    size_t i;
    const json_t *d;
    json_array_foreach (defects, i, d) {
        printf ("defect: ");
        if (json_object_get (d, "entry")) {
            printf ("entry %lld (byte %lld", (long long) json_integer_value (json_object_get (d, "entry")),
                    (long long) json_integer_value (json_object_get (d, "offset")));
            if (json_object_get (d, "chain")) {
                printf (", %s seq %lld", json_string_value (json_object_get (d, "chain")),
                        (long long) json_integer_value (json_object_get (d, "seq")));
            }
            printf ("): ");
        }
        printf ("%s: %s\n", json_string_value (json_object_get (d, "code")),
                json_string_value (json_object_get (d, "message")));
    }
    if (json_array_size (defects) == 0) {
        printf ("verdict:      sound\n");
    }
    else {
        printf ("verdict:      NOT SOUND, %zu defect%s\n", json_array_size (defects),
                json_array_size (defects) == 1 ? "" : "s");
    }
}

/* gkx-audit verify FILE. */
static int
s_verify (const char *path, int as_json)
{
    gkx_logfile_t *log = NULL;
    if (s_load (path, &log) != GKX_OK) {
        return S_DEFECTIVE;
    }
    gkx_audit_report_t *report = gkx_audit_verify (log);
    json_t *json = s_report_json (path, log, report);
    if (as_json) {
        json_dumpf (json, stdout, JSON_INDENT (2));
        fputc ('\n', stdout);
    }
    else {
        s_report_print (json);
    }
    int sound = gkx_audit_is_sound (report);
    json_decref (json);
    gkx_audit_report_destroy (&report);
    gkx_logfile_destroy (&log);
    return sound ? S_SOUND : S_DEFECTIVE;
}

/* gkx-audit compare A B. */
static int
s_compare (const char *path_a, const char *path_b, int as_json)
{
    gkx_logfile_t *a = NULL;
    gkx_logfile_t *b = NULL;
    int rc = S_DEFECTIVE;
    char errbuf[GKX_ERRBUF_BYTES];
    gkx_audit_comparison_t cmp[2];
    if (s_load (path_a, &a) != GKX_OK || s_load (path_b, &b) != GKX_OK) {
        goto cleanup;
    }
    if (gkx_audit_compare (a, b, cmp, errbuf) != GKX_OK) {
        fprintf (stderr, "gkx-audit: %s\n", errbuf);
        goto cleanup;
    }
    json_t *chains = json_object ();
    int forked = 0;
    for (int c = 0; c < 2; c++) {
        json_t *row = json_pack ("{s:s, s:I, s:I}", "relation",
                                 gkx_audit_relation_name (cmp[c].relation), "a_length",
                                 (json_int_t) cmp[c].a_length, "b_length",
                                 (json_int_t) cmp[c].b_length);
        if (cmp[c].relation == GKX_AUDIT_FORK) {
            json_object_set_new (row, "fork_seq", json_integer ((json_int_t) cmp[c].fork_seq));
            forked = 1;
        }
        json_object_set_new (chains, gkx_role_name (cmp[c].role), row);
    }
    json_t *json = json_pack ("{s:s, s:s, s:o, s:b, s:o}", "a", path_a, "b", path_b,
                              "partnership", s_hex (gkx_logfile_header (a)->pid), "agree",
                              !forked, "chains", chains);
    if (as_json) {
        json_dumpf (json, stdout, JSON_INDENT (2));
        fputc ('\n', stdout);
    }
    else {
        printf ("partnership: %s\nA: %s\nB: %s\n",
                json_string_value (json_object_get (json, "partnership")), path_a, path_b);
        for (int c = 0; c < 2; c++) {
            const char *role = gkx_role_name (cmp[c].role);
            printf ("%-11s ", role);
            switch (cmp[c].relation) {
                case GKX_AUDIT_EQUAL:
                    printf ("equal (%llu entries)\n", (unsigned long long) cmp[c].a_length);
                    break;
                case GKX_AUDIT_A_PREFIX:
                    printf ("A is a prefix of B (%llu of %llu entries)\n",
                            (unsigned long long) cmp[c].a_length,
                            (unsigned long long) cmp[c].b_length);
                    break;
                case GKX_AUDIT_B_PREFIX:
                    printf ("B is a prefix of A (%llu of %llu entries)\n",
                            (unsigned long long) cmp[c].b_length,
                            (unsigned long long) cmp[c].a_length);
                    break;
                default:
                    printf ("FORK at seq %llu\n", (unsigned long long) cmp[c].fork_seq);
                    break;
            }
        }
        printf ("verdict:    %s\n", forked ? "the exports DISAGREE" : "the exports agree");
    }
    json_decref (json);
    rc = forked ? S_DEFECTIVE : S_SOUND;
cleanup:
    gkx_logfile_destroy (&a);
    gkx_logfile_destroy (&b);
    return rc;
}

int
main (int argc, char **argv)
{
    int as_json = 0;
    const char *args[3];
    int nargs = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp (argv[i], "--json") == 0) {
            as_json = 1;
        }
        else if (strcmp (argv[i], "--help") == 0 || strcmp (argv[i], "-h") == 0) {
            s_usage (stdout);
            return S_SOUND;
        }
        else if (argv[i][0] == '-' && argv[i][1] != '\0') {
            fprintf (stderr, "gkx-audit: unknown option '%s'\n\n", argv[i]);
            s_usage (stderr);
            return S_USAGE;
        }
        else if (nargs < 3) {
            args[nargs++] = argv[i];
        }
        else {
            nargs = 4;
        }
    }
    if (nargs == 2 && strcmp (args[0], "verify") == 0) {
        return s_verify (args[1], as_json);
    }
    if (nargs == 3 && strcmp (args[0], "compare") == 0) {
        return s_compare (args[1], args[2], as_json);
    }
    s_usage (stderr);
    return S_USAGE;
}
