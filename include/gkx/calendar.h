/*  calendar - UTC civil dates and day counts.
    Part of gokart-exchange; MIT licence.

    Signed data holds times as Unix seconds; people see dates. These two
    functions convert between days since 1970-01-01 and proleptic Gregorian
    (year, month, day), exactly and without the C library's time zone
    (Howard Hinnant's days_from_civil and civil_from_days). Pure.
*/
#ifndef GKX_CALENDAR_H_INCLUDED
#define GKX_CALENDAR_H_INCLUDED

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Returns the days since 1970-01-01 of year y, month m (1-12), day d (1-31);
   negative before 1970. The date is not checked. */
int64_t gkx_calendar_days_from_civil (int64_t y, unsigned m, unsigned d);

/* Writes the civil date of a day count since 1970-01-01 (any sign). */
void gkx_calendar_civil_from_days (int64_t days, int64_t *y_p, unsigned *m_p, unsigned *d_p);

#ifdef __cplusplus
}
#endif

#endif
