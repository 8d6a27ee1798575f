/*  calendar - UTC civil dates and day counts.
    Part of gokart-exchange; MIT licence.

    Days are grouped in 400-year eras of 146,097 days, starting on
    0000-03-01 so that the leap day ends each year; 719,468 is the day of
    1970-01-01 in that count.
*/
#include <gkx/calendar.h>

int64_t
gkx_calendar_days_from_civil (int64_t y, unsigned m, unsigned d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    unsigned yoe = (unsigned) (y - era * 400);
    unsigned doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
    unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + (int64_t) doe - 719468;
}

void
gkx_calendar_civil_from_days (int64_t days, int64_t *y_p, unsigned *m_p, unsigned *d_p)
{
    int64_t z = days + 719468;
    int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    unsigned doe = (unsigned) (z - era * 146097);
    unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    unsigned mp = (5 * doy + 2) / 153;
    unsigned m = mp < 10 ? mp + 3 : mp - 9;
    *y_p = (int64_t) yoe + era * 400 + (m <= 2);
    *m_p = m;
    *d_p = doy - (153 * mp + 2) / 5 + 1;
}
