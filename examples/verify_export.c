/*  verify_export - the smallest program that checks an exported log with libgkx.
    Part of gokart-exchange; MIT licence.

    usage: verify_export FILE

    Reads an export (docs/log-format.md), verifies every signature, link,
    cross-link and seq with gkx_audit_verify, prints "sound" or each defect,
    and exits 0 only when the log is sound. gkx-audit does the same with
    more detail; this is what an auditor's own tooling would start from.
*/
#include <gkx.h>

#include <stdio.h>

int
main (int argc, char **argv)
{
    if (argc != 2) {
        fprintf (stderr, "usage: verify_export FILE\n");
        return 2;
    }
    char errbuf[GKX_ERRBUF_BYTES] = "";
    uint8_t *data = NULL;
    size_t len = 0;
    gkx_logfile_t *log = NULL;
    if (gkx_file_read (argv[1], GKX_LOGFILE_MAX_BYTES, &data, &len, errbuf) != GKX_OK
        || gkx_logfile_parse (&log, data, len, errbuf) != GKX_OK) {
        fprintf (stderr, "verify_export: %s\n", errbuf);
        gkx_free (data);
        return 1;
    }
    gkx_free (data);
    gkx_audit_report_t *report = gkx_audit_verify (log);
    for (size_t i = 0; i < gkx_audit_defect_count (report); i++) {
        const gkx_audit_defect_t *defect = gkx_audit_defect (report, i);
        printf ("%s: %s\n", gkx_errname (defect->code), defect->message);
    }
    int sound = gkx_audit_is_sound (report);
    if (sound) {
        printf ("sound: %zu entries\n", gkx_logfile_count (log));
    }
    gkx_audit_report_destroy (&report);
    gkx_logfile_destroy (&log);
    return sound ? 0 : 1;
}
