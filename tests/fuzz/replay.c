/*  replay - runs a fuzz target over files, without libFuzzer.
    Part of gokart-exchange; MIT licence.

    Linked with one target of tests/fuzz (built with the normal compiler),
    this main() feeds LLVMFuzzerTestOneInput every file of the target's seed
    corpus and regressions, tests/fuzz/corpus/NAME and
    tests/fuzz/regressions/NAME under $GKX_SRCDIR (else the source tree it
    was built from), as one TAP test per file:
    `make check` replays every input that once crashed, under the plain,
    sanitizer and valgrind builds alike. A target that aborts (a broken
    invariant, a sanitizer report) ends the program, which the TAP driver
    reports as an error naming the last file started.

    usage: replay_NAME [FILE|DIR]...   (no argument: the two directories)
*/
#include "fuzz.h"

#include <dirent.h>
#include <errno.h>
#include <sys/stat.h>

#ifndef GKX_FUZZ_NAME
#error "GKX_FUZZ_NAME must name the target"
#endif
#ifndef GKX_SRCDIR
#define GKX_SRCDIR "."
#endif

/* Most files replayed from one directory. */
#define S_FILES_MAX 4096
/* Room for a path. */
#define S_PATH_BYTES 4096
/* Largest input read (the largest -max_len scripts/fuzz gives). */
#define S_INPUT_MAX (1 << 20)

/* Defined by targets that set up state once (libFuzzer calls it too). */
__attribute__ ((weak)) int LLVMFuzzerInitialize (int *argc, char ***argv);

/* Counts the files replayed. */
static int s_count;

/* Sorts directory entries by name, so runs are in the same order. */
static int
s_compare (const void *a, const void *b)
{
    return strcmp (*(char *const *) a, *(char *const *) b);
}

/* Replays one file as one TAP test; returns 0, or -1 when unreadable. */
static int
s_replay_file (const char *path)
{
    FILE *file = fopen (path, "rb");
    if (!file) {
        printf ("not ok %d - %s: %s\n", ++s_count, path, strerror (errno));
        return -1;
    }
    uint8_t *data = malloc (S_INPUT_MAX);
    if (!data) {
        abort ();
    }
    size_t size = fread (data, 1, S_INPUT_MAX, file);
    fclose (file);
    /* Flushed first, so a crash names the input it died on. */
    fprintf (stderr, "# replaying %s\n", path);
    fflush (stdout);
    fflush (stderr);
    /* An exact copy, so the sanitizers catch a read past the input. */
    uint8_t *copy = malloc (size ? size : 1);
    if (!copy) {
        abort ();
    }
    memcpy (copy, data, size);
    free (data);
    LLVMFuzzerTestOneInput (copy, size);
    free (copy);
    printf ("ok %d - %s (%zu bytes)\n", ++s_count, path, size);
    return 0;
}

/* Replays every regular file of a directory (not recursing); a missing
   directory holds nothing. */
static int
s_replay_dir (const char *dir)
{
    DIR *d = opendir (dir);
    if (!d) {
        return errno == ENOENT ? 0 : -1;
    }
    char *names[S_FILES_MAX];
    size_t n = 0;
    struct dirent *e;
    while ((e = readdir (d)) != NULL && n < S_FILES_MAX) {
        if (e->d_name[0] != '.') {
            names[n++] = strdup (e->d_name);
        }
    }
    closedir (d);
    qsort (names, n, sizeof names[0], s_compare);
    int rc = 0;
    for (size_t i = 0; i < n; i++) {
        char path[S_PATH_BYTES];
        snprintf (path, sizeof path, "%s/%s", dir, names[i]);
        struct stat st;
        if (stat (path, &st) == 0 && S_ISREG (st.st_mode) && s_replay_file (path) != 0) {
            rc = -1;
        }
        free (names[i]);
    }
    return rc;
}

/* Replays a file, or every file of a directory. */
static int
s_replay (const char *path)
{
    struct stat st;
    if (stat (path, &st) == 0 && S_ISDIR (st.st_mode)) {
        return s_replay_dir (path);
    }
    return s_replay_file (path);
}

int
main (int argc, char **argv)
{
    if (LLVMFuzzerInitialize) {
        LLVMFuzzerInitialize (&argc, &argv);
    }
    int rc = 0;
    if (argc > 1) {
        for (int i = 1; i < argc; i++) {
            rc |= s_replay (argv[i]);
        }
    }
    else {
        /* make check sets GKX_SRCDIR; make memcheck runs the program bare. */
        const char *srcdir = getenv ("GKX_SRCDIR");
        if (!srcdir || !*srcdir) {
            srcdir = GKX_SRCDIR;
        }
        static const char *const kinds[] = {"corpus", "regressions"};
        for (size_t i = 0; i < 2; i++) {
            char dir[S_PATH_BYTES];
            snprintf (dir, sizeof dir, "%s/tests/fuzz/%s/%s", srcdir, kinds[i], GKX_FUZZ_NAME);
            rc |= s_replay_dir (dir);
        }
    }
    if (s_count == 0) {
        printf ("1..0 # SKIP no inputs for %s\n", GKX_FUZZ_NAME);
        return 0;
    }
    printf ("# figures: {\"suite\": \"fuzz-replay\", \"target\": \"%s\", \"inputs\": %d}\n",
            GKX_FUZZ_NAME, s_count);
    printf ("1..%d\n", s_count);
    return rc == 0 ? 0 : 1;
}
