/* SPDX-License-Identifier: MIT
 * ctl_when: parsing durations and UTC times by hand (strptime and timegm are not POSIX C11),
 * with every digit and range checked. */
#include "tools/researchctl/ctl_when.h"

#include <stdbool.h>
#include <stddef.h>
#include <string.h>

#define MS_PER_DAY INT64_C(86400000)
#define MAX_DURATION_MS (MS_PER_DAY * 3660) /* ten years */

/* Read exactly n digits at s into *out. */
static bool
digits(const char *s, size_t n, int64_t *out)
{
    int64_t v = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9') {
            return false;
        }
        v = v * 10 + (s[i] - '0');
    }
    *out = v;
    return true;
}

/* Days from 1970-01-01 to y-m-d in the proleptic Gregorian calendar (Howard Hinnant's
 * days_from_civil). */
static int64_t
days_from_civil(int64_t y, int64_t m, int64_t d)
{
    y -= m <= 2;
    const int64_t era = (y >= 0 ? y : y - 399) / 400;
    const int64_t yoe = y - era * 400;
    const int64_t doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
    const int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

static bool
is_leap(int64_t y)
{
    return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

/* "YYYY-MM-DD", then nothing, or "THH:MM[:SS]Z". */
static bool
parse_utc(const char *s, int64_t *out_ms)
{
    static const int month_days[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    const size_t len = strlen(s);
    int64_t y, mo, d, h = 0, mi = 0, sec = 0;
    if (len < 10 || !digits(s, 4, &y) || s[4] != '-' || !digits(s + 5, 2, &mo) || s[7] != '-' ||
        !digits(s + 8, 2, &d) || y < 1970 || mo < 1 || mo > 12 || d < 1) {
        return false;
    }
    if (d > month_days[mo - 1] + (mo == 2 && is_leap(y))) {
        return false;
    }
    if (len > 10) {
        const char *t = s + 10;
        bool with_seconds = len == 20;
        if ((len != 17 && len != 20) || (*t != 'T' && *t != 't') || !digits(t + 1, 2, &h) ||
            t[3] != ':' || !digits(t + 4, 2, &mi) ||
            (with_seconds && (t[6] != ':' || !digits(t + 7, 2, &sec))) ||
            (s[len - 1] != 'Z' && s[len - 1] != 'z') || h > 23 || mi > 59 || sec > 59) {
            return false;
        }
    }
    *out_ms = days_from_civil(y, mo, d) * MS_PER_DAY + ((h * 60 + mi) * 60 + sec) * 1000;
    return true;
}

/* "<digits><unit>" with unit s, m, h or d. */
static bool
parse_duration(const char *s, int64_t *out_ms)
{
    const size_t len = strlen(s);
    int64_t n = 0;
    if (len < 2 || len > 12 || !digits(s, len - 1, &n)) {
        return false;
    }
    int64_t unit_ms;
    switch (s[len - 1]) {
    case 's':
        unit_ms = 1000;
        break;
    case 'm':
        unit_ms = 60 * 1000;
        break;
    case 'h':
        unit_ms = 3600 * 1000;
        break;
    case 'd':
        unit_ms = MS_PER_DAY;
        break;
    default:
        return false;
    }
    if (n > MAX_DURATION_MS / unit_ms) {
        return false;
    }
    *out_ms = n * unit_ms;
    return true;
}

enum rc_rc
ctl_when_duration(const char *s, const char *what, int64_t *out_ms, struct rc_err *err)
{
    int64_t ms = 0;
    if (!parse_duration(s, &ms)) {
        return rc_err_set(err, RC_EINVAL,
                          "%s: '%s' is not a duration (a whole number and s, m, h or d: 30s, 15m, "
                          "2h, 7d; at most 10 years)",
                          what, s);
    }
    *out_ms = ms;
    return RC_OK;
}

enum rc_rc
ctl_when_since(const char *s, int64_t now_ms, const char *what, int64_t *out_ms, struct rc_err *err)
{
    int64_t ms = 0;
    if (parse_duration(s, &ms)) {
        *out_ms = now_ms - ms;
        return RC_OK;
    }
    if (parse_utc(s, &ms)) {
        *out_ms = ms;
        return RC_OK;
    }
    return rc_err_set(err, RC_EINVAL,
                      "%s: '%s' is neither a duration (30s, 15m, 2h, 7d) nor a UTC time "
                      "(2026-12-01T10:00:00Z or 2026-12-01)",
                      what, s);
}
