/*  fuzz - what the libFuzzer targets of tests/fuzz share.
    Part of gokart-exchange; MIT licence.

    Each target is one .c file defining LLVMFuzzerTestOneInput. It is built
    twice: with clang and -fsanitize=fuzzer,address,undefined by scripts/fuzz
    (./configure --enable-fuzzing), and with the normal compiler against
    replay.c, whose main() feeds it every file of its corpus and regressions
    in `make check` (so the sanitizer and valgrind runs see them too).

    A target returns 0 for every input; a broken invariant (a decoder that
    accepts bytes it would not write, a refusal without a message, a value
    outside its documented range) aborts through GKX_FUZZ_CHECK, which
    libFuzzer reports as a crash and the replay as a failed test.

    Targets that take several frames (a ZeroMQ multipart message) read them
    from one input split at GKX_FUZZ_FRAME_SEP: four bytes that canonical
    msgpack never begins a value with (0xc1 is msgpack's unused type byte),
    so a split never falls inside a header the fuzzer has not broken itself.
*/
#ifndef GKX_FUZZ_H_INCLUDED
#define GKX_FUZZ_H_INCLUDED

#include <gkx/error.h>
#include <gkx/identity.h>

#include <sodium.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The frame separator of multipart inputs, and its length. */
#define GKX_FUZZ_FRAME_SEP "\xc1" "frm"
#define GKX_FUZZ_FRAME_SEP_BYTES 4
/* Most frames read from one input; what follows the last one is ignored. */
#define GKX_FUZZ_FRAMES_MAX 160

/* The libFuzzer entry points (declared here for -Wmissing-prototypes). */
int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);
int LLVMFuzzerInitialize (int *argc, char ***argv);

/* Aborts with a message when an invariant does not hold. */
#define GKX_FUZZ_CHECK(cond, ...)                                                      \
    do {                                                                               \
        if (!(cond)) {                                                                 \
            fprintf (stderr, "fuzz: %s:%d: invariant broken: %s: ", __FILE__, __LINE__, \
                     #cond);                                                           \
            fprintf (stderr, __VA_ARGS__);                                             \
            fprintf (stderr, "\n");                                                    \
            abort ();                                                                  \
        }                                                                              \
    } while (0)

/* A refusal must carry a known code and a message naming what was wrong. */
#define GKX_FUZZ_CHECK_REFUSAL(rc, errbuf, what)                                       \
    do {                                                                               \
        GKX_FUZZ_CHECK ((rc) > 0 && (rc) < GKX_ECODE_COUNT, "%s: code %d", what, rc);  \
        GKX_FUZZ_CHECK ((errbuf)[0] != '\0', "%s: %s without a message", what,         \
                        gkx_errname (rc));                                             \
        GKX_FUZZ_CHECK (memchr ((errbuf), '\0', GKX_ERRBUF_BYTES) != NULL,              \
                        "%s: message not terminated", what);                           \
    } while (0)

/* Whether GKX_FUZZ_VERBOSE is set: targets then say on stderr what became of
   each part of an input (to check that seeds are accepted, and why not). */
static inline int
gkx_fuzz_is_verbose (void)
{
    static int verbose = -1;
    if (verbose < 0) {
        const char *v = getenv ("GKX_FUZZ_VERBOSE");
        verbose = v && *v && strcmp (v, "0") != 0;
    }
    return verbose;
}

/* Says what became of one part of an input, when verbose. */
#define GKX_FUZZ_SAY(...)                                                              \
    do {                                                                               \
        if (gkx_fuzz_is_verbose ()) {                                                  \
            fprintf (stderr, "fuzz: " __VA_ARGS__);                                    \
            fprintf (stderr, "\n");                                                    \
        }                                                                              \
    } while (0)

/* One frame of a multipart input, borrowed from the input. */
typedef struct {
    const uint8_t *data;
    size_t size;
} gkx_fuzz_frame_t;

/* Splits data at each GKX_FUZZ_FRAME_SEP into at most max frames; returns
   how many (at least 1: an input without a separator is one frame). */
static inline size_t
gkx_fuzz_split (gkx_fuzz_frame_t *frames, size_t max, const uint8_t *data, size_t size)
{
    size_t count = 0;
    size_t start = 0;
    for (size_t i = 0; count + 1 < max && i + GKX_FUZZ_FRAME_SEP_BYTES <= size;) {
        if (memcmp (data + i, GKX_FUZZ_FRAME_SEP, GKX_FUZZ_FRAME_SEP_BYTES) == 0) {
            frames[count].data = data + start;
            frames[count].size = i - start;
            count++;
            i += GKX_FUZZ_FRAME_SEP_BYTES;
            start = i;
        }
        else {
            i++;
        }
    }
    frames[count].data = data + start;
    frames[count].size = size - start;
    return count + 1;
}

/* Returns a NUL-terminated copy of size bytes of data (cut at its first
   NUL, as a C string from the network would be); the caller frees it. */
static inline char *
gkx_fuzz_text (const uint8_t *data, size_t size)
{
    char *text = malloc (size + 1);
    if (!text) {
        abort ();
    }
    memcpy (text, data, size);
    text[size] = '\0';
    return text;
}

/* Opens the fixed identity number n (1: the advertiser, 2: the publisher
   of the seed corpora): Ed25519 seed of 32 bytes n, the key pairs of
   tests/vectors/entries-v1.json; the CurveZMQ secret is 32 bytes n + 0x10.
   The targets that need signed input re-sign what these identities author,
   so that the fuzzer reaches the checks behind the signature. */
static inline gkx_identity_t *
gkx_fuzz_identity (uint8_t n)
{
    if (sodium_init () < 0) {
        abort ();
    }
    uint8_t seed[crypto_sign_SEEDBYTES];
    uint8_t pk[crypto_sign_PUBLICKEYBYTES];
    uint8_t sk[crypto_sign_SECRETKEYBYTES];
    uint8_t curve[GKX_CURVE_KEY_BYTES];
    memset (seed, n, sizeof seed);
    memset (curve, n + 0x10, sizeof curve);
    crypto_sign_seed_keypair (pk, sk, seed);
    gkx_identity_t *identity = NULL;
    if (gkx_identity_open (&identity, sk, curve) != GKX_OK) {
        abort ();
    }
    sodium_memzero (sk, sizeof sk);
    return identity;
}

#endif
