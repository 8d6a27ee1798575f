/*  hlc - hybrid logical clock.
    Part of gokart-exchange; MIT licence.

    A timestamp is 48 bits of milliseconds since the Unix epoch and 16 bits of
    counter in one uint64, so timestamps compare as integers. send and recv
    are pure: the caller passes the wall clock and keeps the last value (the
    store persists it, which makes the clock monotonic across restarts).
*/
#ifndef GKX_HLC_H_INCLUDED
#define GKX_HLC_H_INCLUDED

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Bits of counter below the milliseconds. */
#define GKX_HLC_COUNTER_BITS 16
/* Buffer size for gkx_hlc_format ("2026-11-24T03:26:23.123Z" + NUL). */
#define GKX_HLC_TEXT_BYTES 32

/* Returns the timestamp for a local event: greater than last, and at least
   the wall clock now_ms. */
uint64_t gkx_hlc_send (uint64_t last, uint64_t now_ms);

/* Returns the clock after receiving remote: greater than both last and
   remote, and at least the wall clock now_ms. */
uint64_t gkx_hlc_recv (uint64_t last, uint64_t remote, uint64_t now_ms);

/* Returns the milliseconds part. */
uint64_t gkx_hlc_ms (uint64_t hlc);

/* Returns the counter part. */
uint32_t gkx_hlc_counter (uint64_t hlc);

/* Writes the milliseconds part as ISO 8601 UTC with milliseconds into out
   (GKX_HLC_TEXT_BYTES). */
void gkx_hlc_format (char *out, size_t out_len, uint64_t hlc);

#ifdef __cplusplus
}
#endif

#endif
