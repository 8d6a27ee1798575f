/*  merge_bench - the offer merge at library level: already-verified edits of both members
    applied to a partnership's merge state (include/gkx/merge.h), in operations per second.
    Part of gokart-exchange; MIT licence.

    usage: merge_bench [--edits N] [--ops-per-edit K] [--order arrival|canonical|both]
                       [--digest-every D] [--max-seconds S] [--seed X]

    Before the clock starts, it writes a history of N edit entries (default 100,000) of
    two members editing one offer at the same time: at each step one member, drawn at
    random, writes an edit of K operations (default 1) on a field drawn from the mix of
    bench/automerge-bench.js's offer edits (payout 30 %, daily budget 20 %, status 15 %, a
    country added or removed 15 %, tracking URL 10 %, monthly cap 10 %), with its hybrid
    clock and seen_seq; each member receives the other's entries after a random lag (0 to
    63 steps), which moves its clock and seen_seq as a node's would. The bodies are
    encoded with gkx_offer_ops_encode and each entry gets a BLAKE2b hash over its fields
    and body (a stand-in for the entry codec, as tests/unit/test_merge.c does): the
    entries are "already verified", no signature is involved.

    Timed, per order: gkx_merge_open on the genesis, gkx_merge_apply of every entry, then
    gkx_merge_digest (the fold of whatever is not folded yet, and the hash of the canonical
    offer). "arrival" is the order the advertiser's node sees: its own edits as it writes
    them, the publisher's when they arrive (a late one sorts before entries already held,
    so the state folds again from the genesis when next read); "canonical" is the merge's
    own order (each entry lands last, so it is folded at once). --digest-every D also reads
    the digest after every D entries, as a node does when it serves the offer (the node's
    store materialises the offer after every entry: D = 1). Both orders must give the same
    digest ("same_digest").

    --max-seconds S stops applying when S seconds have passed (default: none); the result
    then says "complete": false and gives the rate over the entries applied. "progress"
    lists (entries applied, seconds) at each tenth of the run, and
    "last_tenth_edits_per_second" the rate over the last tenth, so a rate that falls as the
    state grows shows. Prints one JSON line.
*/
#include <gkx/alloc.h>
#include <gkx/error.h>
#include <gkx/kind.h>
#include <gkx/merge.h>
#include <gkx/offer.h>

#include <inttypes.h>
#include <sodium.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

/* Most steps a member's entry takes to reach the other member. */
#define S_LAG_MAX 64
/* Progress points: one per tenth of the run. */
#define S_PROGRESS 10

/* The genesis offer (the shape of bench/automerge-bench.js's base offer). */
static const char *s_genesis_text
    = "{\"name\": \"Summer sale CPA\", \"status\": \"active\","
      " \"payout\": {\"model\": \"cpi\", \"amount\": \"12.50\", \"currency\": \"EUR\"},"
      " \"budget\": {\"daily\": \"1000.00\"}, \"caps\": {\"monthly\": 30000},"
      " \"targeting\": {\"countries\": [\"DE\", \"FR\", \"NL\"],"
      " \"platforms\": [\"ios\", \"android\"]},"
      " \"tracking_url\": \"https://shop.example/landing?src=aff\","
      " \"attribution\": {\"click_window_days\": 30}}";

/* Countries the edits add and remove. */
static const char *const s_countries[]
    = {"DE", "FR", "NL", "BE", "AT", "CH", "IT", "ES", "PL", "SE", "DK", "GB", "US", "CA"};

/* One prepared entry. */
typedef struct {
    int role;
    uint64_t seq;
    uint64_t seen;
    uint64_t hlc;
    uint8_t hash[GKX_MERGE_HASH_BYTES];
    uint8_t *body;
    size_t len;
    size_t ops;
} b_entry_t;

/* Member ids: the advertiser's sorts before the publisher's. */
static uint8_t s_ids[2][GKX_MERGE_ID_BYTES];

/* splitmix64. */
static uint64_t
s_rand (uint64_t *state)
{
    uint64_t z = (*state += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static uint64_t
s_below (uint64_t *state, uint64_t n)
{
    return s_rand (state) % n;
}

static double
s_now (void)
{
    struct timespec ts;
    clock_gettime (CLOCK_MONOTONIC, &ts);
    return (double) ts.tv_sec + (double) ts.tv_nsec / 1e9;
}

/* Writes one random CLI edit, as bench/automerge-bench.js's edit() chooses its field. */
static void
s_random_edit (uint64_t *rng, char *buf, size_t size, uint64_t step)
{
    uint64_t x = s_below (rng, 100);
    if (x < 30) {
        snprintf (buf, size, "payout.amount=%u.%02u", (unsigned) (10 + s_below (rng, 5)),
                  (unsigned) s_below (rng, 100));
    }
    else if (x < 50) {
        snprintf (buf, size, "budget.daily=%u.00", (unsigned) (500 + s_below (rng, 1000)));
    }
    else if (x < 65) {
        snprintf (buf, size, "status=%s", s_below (rng, 2) ? "active" : "paused");
    }
    else if (x < 80) {
        snprintf (buf, size, "targeting.countries%s=%s", s_below (rng, 2) ? "+" : "-",
                  s_countries[s_below (rng, sizeof (s_countries) / sizeof (*s_countries))]);
    }
    else if (x < 90) {
        snprintf (buf, size, "tracking_url=https://shop.example/landing?src=aff&v=%" PRIu64,
                  step);
    }
    else {
        snprintf (buf, size, "caps.monthly=%u", (unsigned) (20000 + s_below (rng, 20000)));
    }
}

/* Hashes an entry's fields and body into its hash. */
static void
s_seal (b_entry_t *e)
{
    crypto_generichash_state st;
    uint64_t fields[4] = {(uint64_t) GKX_KIND_EDIT << 8 | (uint64_t) e->role, e->seq, e->seen,
                          e->hlc};
    crypto_generichash_init (&st, NULL, 0, GKX_MERGE_HASH_BYTES);
    crypto_generichash_update (&st, (const uint8_t *) fields, sizeof (fields));
    crypto_generichash_update (&st, e->body, e->len);
    crypto_generichash_final (&st, e->hash, GKX_MERGE_HASH_BYTES);
}

/* One simulated member while the history is written. */
typedef struct {
    uint64_t seq;
    uint64_t hlc;
    uint64_t seen;   /* the other's entries received: a prefix of its chain */
    uint64_t clock;  /* physical clock, ms */
} b_member_t;

/* Writes the history into entries (in the order the advertiser's node sees it) and
   returns the number of operations. */
static size_t
s_history (b_entry_t *entries, size_t n, size_t ops_per_edit, uint64_t seed,
           const gkx_offer_t *genesis)
{
    uint64_t rng = seed;
    b_member_t members[2] = {{0, 0, 0, 1000}, {0, 0, 0, 1000 + s_below (&rng, 50)}};
    /* per member: the steps at which its chain's entries were written and their hlcs */
    uint64_t *written[2] = {gkx_zalloc (n * sizeof (uint64_t)),
                            gkx_zalloc (n * sizeof (uint64_t))};
    uint64_t *hlcs[2] = {gkx_zalloc (n * sizeof (uint64_t)), gkx_zalloc (n * sizeof (uint64_t))};
    /* the publisher's entries in chain order, waiting to reach the advertiser's node */
    b_entry_t *pending = gkx_zalloc (n * sizeof (b_entry_t));
    size_t pending_head = 0, pending_count = 0, out = 0, ops_total = 0;
    uint64_t lag[2] = {0, 0};
    char err[GKX_ERRBUF_BYTES] = "";
    for (uint64_t step = 0; step < n; step++) {
        int a = (int) s_below (&rng, 2);
        /* each member receives the other's entries older than its current lag */
        for (int m = 0; m < 2; m++) {
            b_member_t *me = &members[m];
            const b_member_t *other = &members[1 - m];
            if (s_below (&rng, 8) == 0) {
                lag[m] = s_below (&rng, S_LAG_MAX);
            }
            while (me->seen < other->seq && written[1 - m][me->seen] + lag[m] <= step) {
                uint64_t h = hlcs[1 - m][me->seen];
                me->hlc = h > me->hlc ? h : me->hlc;
                me->seen++;
                if (m == 0) {
                    /* the advertiser's node applies the publisher's entry now */
                    entries[out++] = pending[pending_head++];
                }
            }
        }
        b_member_t *me = &members[a];
        me->clock += s_below (&rng, 2);
        uint64_t physical = me->clock << 16;
        me->hlc = physical > me->hlc ? physical : me->hlc + 1;
        me->seq++;
        written[a][me->seq - 1] = step;
        hlcs[a][me->seq - 1] = me->hlc;

        gkx_offer_ops_t *ops = gkx_offer_ops_new ();
        for (size_t k = 0; k < ops_per_edit; k++) {
            char line[160];
            s_random_edit (&rng, line, sizeof (line), step);
            if (gkx_offer_ops_parse_edit (ops, genesis, line, err) != GKX_OK) {
                fprintf (stderr, "merge_bench: %s: %s\n", line, err);
                exit (1);
            }
        }
        b_entry_t e = {a + 1, me->seq, me->seen, me->hlc, {0}, NULL, 0, ops_per_edit};
        if (gkx_offer_ops_encode (ops, &e.body, &e.len, err) != GKX_OK) {
            fprintf (stderr, "merge_bench: encode: %s\n", err);
            exit (1);
        }
        gkx_offer_ops_destroy (&ops);
        s_seal (&e);
        ops_total += ops_per_edit;
        if (a == 0) {
            entries[out++] = e;
        }
        else {
            pending[pending_count++] = e;
        }
    }
    /* what is still on its way arrives last */
    while (pending_head < pending_count) {
        entries[out++] = pending[pending_head++];
    }
    gkx_free (pending);
    for (int m = 0; m < 2; m++) {
        gkx_free (written[m]);
        gkx_free (hlcs[m]);
    }
    return ops_total;
}

/* The merge's canonical order: (hlc, author id, seq, hash). */
static int
s_canonical_cmp (const void *pa, const void *pb)
{
    const b_entry_t *a = pa, *b = pb;
    if (a->hlc != b->hlc) {
        return a->hlc < b->hlc ? -1 : 1;
    }
    int c = memcmp (s_ids[a->role - 1], s_ids[b->role - 1], GKX_MERGE_ID_BYTES);
    if (c) {
        return c;
    }
    if (a->seq != b->seq) {
        return a->seq < b->seq ? -1 : 1;
    }
    return memcmp (a->hash, b->hash, GKX_MERGE_HASH_BYTES);
}

/* The result of one timed run. */
typedef struct {
    size_t applied;
    size_t ops;
    double seconds;
    double apply_seconds;
    bool complete;
    char digest[GKX_OFFER_DIGEST_HEX_BYTES];
    size_t progress_n;
    size_t progress_at[S_PROGRESS + 1];
    double progress_s[S_PROGRESS + 1];
} b_run_t;

/* Applies entries to a fresh state in their order and reads the digest. */
static void
s_run (b_run_t *run, const b_entry_t *entries, size_t n, const uint8_t *genesis,
       size_t genesis_len, size_t digest_every, double max_seconds)
{
    char err[GKX_ERRBUF_BYTES] = "";
    uint8_t raw[GKX_OFFER_DIGEST_BYTES];
    memset (run, 0, sizeof (*run));
    run->complete = true;
    size_t step = n / S_PROGRESS ? n / S_PROGRESS : 1;
    double start = s_now ();
    gkx_merge_t *merge = NULL;
    if (gkx_merge_open (&merge, s_ids[0], s_ids[1], genesis, genesis_len, NULL, 0, err)
        != GKX_OK) {
        fprintf (stderr, "merge_bench: open: %s\n", err);
        exit (1);
    }
    size_t i;
    for (i = 0; i < n; i++) {
        const b_entry_t *t = &entries[i];
        gkx_merge_entry_t e = {GKX_KIND_EDIT, t->role, s_ids[t->role - 1], t->seq, t->seen,
                               t->hlc, t->hash, t->body, t->len};
        int rc = gkx_merge_apply (merge, &e, err);
        if (rc != GKX_OK) {
            fprintf (stderr, "merge_bench: apply entry %zu: %d %s\n", i, rc, err);
            exit (1);
        }
        run->ops += t->ops;
        if (digest_every && (i + 1) % digest_every == 0) {
            gkx_merge_digest (merge, raw, NULL);
        }
        if ((i + 1) % step == 0 || i + 1 == n) {
            double now = s_now () - start;
            if (run->progress_n <= S_PROGRESS) {
                run->progress_at[run->progress_n] = i + 1;
                run->progress_s[run->progress_n] = now;
                run->progress_n++;
            }
            if (max_seconds > 0 && now > max_seconds && i + 1 < n) {
                run->complete = false;
                i++;
                break;
            }
        }
    }
    run->applied = i;
    run->apply_seconds = s_now () - start;
    gkx_merge_digest (merge, raw, run->digest);
    run->seconds = s_now () - start;
    if (gkx_merge_size (merge) != run->applied) {
        fprintf (stderr, "merge_bench: the state holds %zu entries, %zu applied\n",
                 gkx_merge_size (merge), run->applied);
        exit (1);
    }
    gkx_merge_destroy (&merge);
}

/* Prints one run; last_tenth is the apply rate (entries/s) between the last two progress
   points, the rate the state had reached. */
static void
s_print_run (const char *name, const b_run_t *run, bool comma)
{
    double last_tenth = 0;
    size_t last = run->progress_n;
    if (last >= 2 && run->progress_s[last - 1] > run->progress_s[last - 2]) {
        last_tenth = (double) (run->progress_at[last - 1] - run->progress_at[last - 2])
                     / (run->progress_s[last - 1] - run->progress_s[last - 2]);
    }
    printf ("\"%s\": {\"edits\": %zu, \"ops\": %zu, \"complete\": %s, \"seconds\": %.3f, "
            "\"apply_seconds\": %.3f, \"edits_per_second\": %.1f, \"ops_per_second\": %.1f, "
            "\"last_tenth_edits_per_second\": %.1f, \"digest\": \"%s\", \"progress\": [",
            name, run->applied, run->ops, run->complete ? "true" : "false", run->seconds,
            run->apply_seconds, (double) run->applied / run->seconds,
            (double) run->ops / run->seconds, last_tenth, run->digest);
    for (size_t k = 0; k < run->progress_n; k++) {
        printf ("%s[%zu, %.3f]", k ? ", " : "", run->progress_at[k], run->progress_s[k]);
    }
    printf ("]}%s", comma ? ", " : "");
}

static void
s_usage (FILE *f)
{
    fprintf (f, "usage: merge_bench [--edits N] [--ops-per-edit K] "
                "[--order arrival|canonical|both] [--digest-every D] [--max-seconds S] "
                "[--seed X]\n");
}

int
main (int argc, char **argv)
{
    size_t n = 100000, ops_per_edit = 1, digest_every = 0;
    double max_seconds = 0;
    uint64_t seed = 0x6d65726765ULL;
    const char *order = "both";
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i];
        const char *val = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp (arg, "--help") == 0 || strcmp (arg, "-h") == 0) {
            s_usage (stdout);
            return 0;
        }
        if (!val) {
            s_usage (stderr);
            return 2;
        }
        i++;
        char *end = NULL;
        if (strcmp (arg, "--edits") == 0) {
            n = strtoull (val, &end, 10);
        }
        else if (strcmp (arg, "--ops-per-edit") == 0) {
            ops_per_edit = strtoull (val, &end, 10);
        }
        else if (strcmp (arg, "--digest-every") == 0) {
            digest_every = strtoull (val, &end, 10);
        }
        else if (strcmp (arg, "--max-seconds") == 0) {
            max_seconds = strtod (val, &end);
        }
        else if (strcmp (arg, "--seed") == 0) {
            seed = strtoull (val, &end, 0);
        }
        else if (strcmp (arg, "--order") == 0) {
            order = val;
            end = (char *) val + strlen (val);
            if (strcmp (order, "arrival") && strcmp (order, "canonical")
                && strcmp (order, "both")) {
                fprintf (stderr, "merge_bench: --order: expected arrival, canonical or both, "
                                 "not \"%s\"\n", order);
                return 2;
            }
        }
        else {
            fprintf (stderr, "merge_bench: unknown option %s\n", arg);
            s_usage (stderr);
            return 2;
        }
        if (!end || *end || end == val) {
            fprintf (stderr, "merge_bench: %s: \"%s\" is not a number\n", arg, val);
            return 2;
        }
    }
    if (n < 1 || ops_per_edit < 1) {
        fprintf (stderr, "merge_bench: --edits and --ops-per-edit must be at least 1\n");
        return 2;
    }
    if (sodium_init () < 0) {
        return 1;
    }
    memset (s_ids[0], 0x11, GKX_MERGE_ID_BYTES);
    memset (s_ids[1], 0x22, GKX_MERGE_ID_BYTES);

    char err[GKX_ERRBUF_BYTES] = "";
    gkx_offer_t *genesis = NULL;
    if (gkx_offer_from_text (&genesis, s_genesis_text, err) != GKX_OK) {
        fprintf (stderr, "merge_bench: genesis: %s\n", err);
        return 1;
    }
    uint8_t *genesis_bytes = NULL;
    size_t genesis_len = 0;
    gkx_offer_encode (genesis, &genesis_bytes, &genesis_len);

    double t0 = s_now ();
    b_entry_t *entries = gkx_zalloc (n * sizeof (*entries));
    s_history (entries, n, ops_per_edit, seed, genesis);
    double prepare = s_now () - t0;
    size_t late = 0;
    for (size_t i = 1; i < n; i++) {
        late += s_canonical_cmp (&entries[i], &entries[i - 1]) < 0;
    }
    size_t adv = 0;
    for (size_t i = 0; i < n; i++) {
        adv += entries[i].role == GKX_ROLE_ADVERTISER;
    }

    bool do_arrival = strcmp (order, "canonical") != 0;
    bool do_canonical = strcmp (order, "arrival") != 0;
    b_run_t arrival, canonical;
    if (do_arrival) {
        s_run (&arrival, entries, n, genesis_bytes, genesis_len, digest_every, max_seconds);
    }
    if (do_canonical) {
        b_entry_t *sorted = gkx_memdup (entries, n * sizeof (*entries));
        qsort (sorted, n, sizeof (*sorted), s_canonical_cmp);
        s_run (&canonical, sorted, n, genesis_bytes, genesis_len, digest_every, max_seconds);
        gkx_free (sorted);
    }
    struct rusage ru;
    getrusage (RUSAGE_SELF, &ru);

    const b_run_t *main_run = do_arrival ? &arrival : &canonical;
    printf ("{\"benchmark\": \"merge_library\", \"edits\": %zu, \"ops_per_edit\": %zu, "
            "\"advertiser_edits\": %zu, \"publisher_edits\": %zu, \"late_arrivals\": %zu, "
            "\"digest_every\": %zu, \"prepare_seconds\": %.3f, "
            "\"ops_per_second\": %.1f, \"complete\": %s, ",
            n, ops_per_edit, adv, n - adv, late, digest_every, prepare,
            (double) main_run->ops / main_run->seconds, main_run->complete ? "true" : "false");
    if (do_arrival && do_canonical) {
        /* null when a run stopped early: the two hold different entries */
        bool same = strcmp (arrival.digest, canonical.digest) == 0;
        printf ("\"same_digest\": %s, ", !arrival.complete || !canonical.complete ? "null"
                                          : same                                     ? "true"
                                                                                     : "false");
    }
    if (do_arrival) {
        s_print_run ("arrival", &arrival, do_canonical);
    }
    if (do_canonical) {
        s_print_run ("canonical", &canonical, false);
    }
    printf (", \"max_rss_bytes\": %ld}\n", ru.ru_maxrss * 1024L);

    for (size_t i = 0; i < n; i++) {
        gkx_free (entries[i].body);
    }
    gkx_free (entries);
    gkx_free (genesis_bytes);
    gkx_offer_destroy (&genesis);
    return 0;
}
