/* SPDX-License-Identifier: MIT
 * Unit tests of common/clock: UTC day and RFC 3339 text of known instants, and the clocks. */
#include "tests/support/test.h"

#include <string.h>

#include "common/clock.h"
#include "common/rc_err.h"

struct instant {
    int64_t unix_ms;
    const char *day;
    const char *rfc3339;
};

static const struct instant instants[] = {
    {0, "1970-01-01", "1970-01-01T00:00:00.000Z"},
    {1795471695123LL, "2026-11-23", "2026-11-23T22:08:15.123Z"},
    {1709251199999LL, "2024-02-29", "2024-02-29T23:59:59.999Z"},
    {1709251200000LL, "2024-03-01", "2024-03-01T00:00:00.000Z"},
    {946684800000LL, "2000-01-01", "2000-01-01T00:00:00.000Z"},
    {2147483648000LL, "2038-01-19", "2038-01-19T03:14:08.000Z"},
    {-1, "1969-12-31", "1969-12-31T23:59:59.999Z"},
    {-1001, "1969-12-31", "1969-12-31T23:59:58.999Z"},
    /* Out of the four-digit-year range: clamped, never overflowing the buffer. */
    {INT64_MAX, "9999-12-31", "9999-12-31T23:59:59.999Z"},
    {INT64_MIN, "0000-01-01", "0000-01-01T00:00:00.000Z"},
};

static void
test_clock_utc_day_of_known_instants(void **state)
{
    (void)state;
    for (size_t i = 0; i < N_OF(instants); i++) {
        char day[11];
        memset(day, 'x', sizeof day);
        clock_utc_day(instants[i].unix_ms, day);
        if (strcmp(day, instants[i].day) != 0) {
            fail_msg("case %zu: got %s, want %s", i, day, instants[i].day);
        }
    }
}

static void
test_clock_rfc3339_of_known_instants(void **state)
{
    (void)state;
    for (size_t i = 0; i < N_OF(instants); i++) {
        char ts[25];
        memset(ts, 'x', sizeof ts);
        clock_rfc3339(instants[i].unix_ms, ts);
        if (strcmp(ts, instants[i].rfc3339) != 0) {
            fail_msg("case %zu: got %s, want %s", i, ts, instants[i].rfc3339);
        }
    }
}

static void
test_clock_now_is_plausible(void **state)
{
    (void)state;
    int64_t now = clock_now_ms();
    assert_true(now > 1577836800000LL); /* after 2020-01-01 */
    assert_true(now < 4102444800000LL); /* before 2100-01-01 */
}

static void
test_clock_monotonic_never_goes_back(void **state)
{
    (void)state;
    int64_t ms = clock_mono_ms();
    int64_t us = clock_mono_us();
    for (int i = 0; i < 1000; i++) {
        int64_t ms2 = clock_mono_ms();
        int64_t us2 = clock_mono_us();
        assert_true(ms2 >= ms);
        assert_true(us2 >= us);
        ms = ms2;
        us = us2;
    }
    /* Both read the same clock: microseconds / 1000 is close to milliseconds. */
    int64_t diff = clock_mono_us() / 1000 - clock_mono_ms();
    assert_true(diff >= -5 && diff <= 5);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_clock_utc_day_of_known_instants),
        cmocka_unit_test(test_clock_rfc3339_of_known_instants),
        cmocka_unit_test(test_clock_now_is_plausible),
        cmocka_unit_test(test_clock_monotonic_never_goes_back),
    };
    return cmocka_run_group_tests_name("clock", tests, NULL, NULL);
}
