/*  testutil - helpers shared by the unit tests.
    Part of gokart-exchange; MIT licence.

    Temporary directories that a test must leave behind empty (removed, and
    checked removed), a TAP-producing main for Check suites, and fixtures
    that build two real nodes' identities and stores.
*/
#ifndef GKX_TESTUTIL_H_INCLUDED
#define GKX_TESTUTIL_H_INCLUDED


#include <check.h>
#include <ftw.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Creates a fresh temporary directory under $TMPDIR (or /tmp) into out. */
static inline void
gkx_test_tmpdir (char out[PATH_MAX])
{
    const char *base = getenv ("TMPDIR");
    snprintf (out, PATH_MAX, "%s/gkx-test-XXXXXX", base && *base ? base : "/tmp");
    ck_assert_msg (mkdtemp (out) != NULL, "mkdtemp failed");
}

/* nftw callback removing one path. */
static inline int
gkx_test_rm_one (const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void) st;
    (void) flag;
    (void) ftw;
    return remove (path);
}

/* Removes a directory tree and fails the test if anything is left. */
static inline void
gkx_test_rmtree (const char *path)
{
    nftw (path, gkx_test_rm_one, 16, FTW_DEPTH | FTW_PHYS);
    struct stat st;
    ck_assert_msg (stat (path, &st) != 0, "temporary directory %s was left behind", path);
}

/* Runs a suite, writing TAP to stdout for automake's tap-driver; returns
   the process exit code. */
static inline int
gkx_test_run (Suite *suite)
{
    SRunner *runner = srunner_create (suite);
    srunner_set_tap (runner, "-");
    srunner_run_all (runner, CK_SILENT);
    int failed = srunner_ntests_failed (runner);
    srunner_free (runner);
    return failed ? 1 : 0;
}

#endif
