/* SPDX-License-Identifier: MIT
 * clock: wall and monotonic time in milliseconds, and UTC calendar formatting through gmtime_r
 * (never the static-buffer gmtime). */
#include "common/clock.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

/* RFC 3339 needs a four-digit year: clamp to 0000-01-01T00:00:00.000Z..9999-12-31T23:59:59.999Z */
#define CLOCK_MIN_MS (-62167219200000LL)
#define CLOCK_MAX_MS (253402300799999LL)

static int64_t
read_clock(clockid_t id, int64_t div_ns, int64_t mul_s)
{
    struct timespec ts;

    if (clock_gettime(id, &ts) != 0) {
        return 0; /* only EINVAL for an unsupported clock: both used here are POSIX */
    }
    return (int64_t)ts.tv_sec * mul_s + (int64_t)ts.tv_nsec / div_ns;
}

int64_t
clock_now_ms(void)
{
    return read_clock(CLOCK_REALTIME, 1000000, 1000);
}

int64_t
clock_mono_ms(void)
{
    return read_clock(CLOCK_MONOTONIC, 1000000, 1000);
}

int64_t
clock_mono_us(void)
{
    return read_clock(CLOCK_MONOTONIC, 1000, 1000000);
}

/* Split into a UTC calendar time and the milliseconds within the second (floor division, so
 * instants before 1970 work too). */
static void
split(int64_t unix_ms, struct tm *tm, int *ms)
{
    if (unix_ms < CLOCK_MIN_MS) {
        unix_ms = CLOCK_MIN_MS;
    } else if (unix_ms > CLOCK_MAX_MS) {
        unix_ms = CLOCK_MAX_MS;
    }
    int64_t secs = unix_ms / 1000;
    int64_t rem = unix_ms % 1000;
    if (rem < 0) {
        rem += 1000;
        secs -= 1;
    }
    time_t t = (time_t)secs;
    memset(tm, 0, sizeof *tm);
    if (gmtime_r(&t, tm) == NULL) {
        memset(tm, 0, sizeof *tm);
        tm->tm_year = 70;
        tm->tm_mday = 1;
    }
    *ms = (int)rem;
}

void
clock_utc_day(int64_t unix_ms, char out[11])
{
    struct tm tm;
    int ms;

    split(unix_ms, &tm, &ms);
    int n = snprintf(out, 11, "%04d-%02d-%02d", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday);
    if (n < 0) {
        out[0] = '\0';
    }
}

void
clock_rfc3339(int64_t unix_ms, char out[25])
{
    struct tm tm;
    int ms;

    split(unix_ms, &tm, &ms);
    int n = snprintf(out, 25, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
                     tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, ms);
    if (n < 0) {
        out[0] = '\0';
    }
}
