/*  hlc - hybrid logical clock.
    Part of gokart-exchange; MIT licence.

    Packing milliseconds and counter into one integer turns the HLC rules into
    max and +1: a counter overflow carries into the milliseconds, which only
    moves the clock ahead by a millisecond and keeps it monotonic.
*/
#include <gkx/hlc.h>

#include <stdio.h>
#include <time.h>

/* Timestamp for the start of millisecond ms. */
static uint64_t
s_from_ms (uint64_t ms)
{
    return ms << GKX_HLC_COUNTER_BITS;
}

uint64_t
gkx_hlc_send (uint64_t last, uint64_t now_ms)
{
    uint64_t wall = s_from_ms (now_ms);
    return wall > last ? wall : last + 1;
}

uint64_t
gkx_hlc_recv (uint64_t last, uint64_t remote, uint64_t now_ms)
{
    uint64_t wall = s_from_ms (now_ms);
    uint64_t seen = (last > remote ? last : remote) + 1;
    return wall > seen ? wall : seen;
}

uint64_t
gkx_hlc_ms (uint64_t hlc)
{
    return hlc >> GKX_HLC_COUNTER_BITS;
}

uint32_t
gkx_hlc_counter (uint64_t hlc)
{
    return (uint32_t) (hlc & ((1u << GKX_HLC_COUNTER_BITS) - 1));
}

void
gkx_hlc_format (char *out, size_t out_len, uint64_t hlc)
{
    uint64_t ms = gkx_hlc_ms (hlc);
    time_t secs = (time_t) (ms / 1000);
    struct tm tm;
    gmtime_r (&secs, &tm);
    snprintf (out, out_len, "%04d-%02d-%02dT%02d:%02d:%02d.%03uZ",
              tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
              tm.tm_min, tm.tm_sec, (unsigned) (ms % 1000));
}
