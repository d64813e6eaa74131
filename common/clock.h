/* SPDX-License-Identifier: MIT
 * clock: wall and monotonic time in milliseconds, and UTC calendar days. */
#ifndef RC_CLOCK_H
#define RC_CLOCK_H

#include <stdint.h>

/* Unix time in milliseconds (CLOCK_REALTIME). */
int64_t clock_now_ms(void);
/* Monotonic milliseconds, for intervals and deadlines. */
int64_t clock_mono_ms(void);
/* Monotonic microseconds, for measuring short durations. */
int64_t clock_mono_us(void);
/* Write the UTC day of `unix_ms` as "YYYY-MM-DD" into out (11 bytes). */
void clock_utc_day(int64_t unix_ms, char out[11]);
/* Write `unix_ms` as RFC 3339 UTC with milliseconds ("2026-11-23T22:08:15.123Z", 25 bytes). */
void clock_rfc3339(int64_t unix_ms, char out[25]);

#endif /* RC_CLOCK_H */
