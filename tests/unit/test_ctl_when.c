/* SPDX-License-Identifier: MIT
 * Unit tests of ctl_when: durations and UTC times as typed on the command line, and the
 * clear error for each bad one. */
#include "tests/support/test.h"

#include <string.h>

#include "tools/researchctl/ctl_when.h"

#define NOW 1795428000000LL /* 2026-11-23T10:00:00Z */

static void
test_ctl_when_durations(void **state)
{
    (void)state;
    const struct {
        const char *s;
        int64_t ms;
    } good[] = {{"30s", 30000},    {"15m", 900000}, {"2h", 7200000},
                {"7d", 604800000}, {"0s", 0},       {"3660d", 3660LL * 86400000}};
    for (size_t i = 0; i < N_OF(good); i++) {
        int64_t ms = -1;
        if (ctl_when_duration(good[i].s, "--older-than", &ms, NULL) != RC_OK || ms != good[i].ms) {
            fail_msg("case %s: got %lld", good[i].s, (long long)ms);
        }
    }
    const char *const bad[] = {"",    "s",   "15", "15x", "-5m", "1.5h", "3661d", "9999999999999d",
                               "2h ", " 2h", "h2"};
    for (size_t i = 0; i < N_OF(bad); i++) {
        int64_t ms = 42;
        struct rc_err err = RC_ERR_INIT;
        if (ctl_when_duration(bad[i], "--older-than", &ms, &err) != RC_EINVAL || ms != 42 ||
            strstr(err.msg, "--older-than: '") == NULL ||
            strstr(err.msg, "not a duration") == NULL) {
            fail_msg("case '%s' accepted or unclear: %s", bad[i], err.msg);
        }
    }
}

static void
test_ctl_when_since(void **state)
{
    (void)state;
    const struct {
        const char *s;
        int64_t ms;
    } good[] = {
        {"2h", NOW - 7200000},
        {"2026-11-23T10:00:00Z", NOW},
        {"2026-11-23T09:30Z", NOW - 1800000},
        {"2026-11-23", NOW - 36000000},
        {"1970-01-01", 0},
        {"2024-02-29T00:00:00Z", 1709164800000LL},
        {"2026-12-01t10:00:00z", 1796119200000LL},
    };
    for (size_t i = 0; i < N_OF(good); i++) {
        int64_t ms = -1;
        if (ctl_when_since(good[i].s, NOW, "--since", &ms, NULL) != RC_OK || ms != good[i].ms) {
            fail_msg("case %s: got %lld, want %lld", good[i].s, (long long)ms,
                     (long long)good[i].ms);
        }
    }
    const char *const bad[] = {"yesterday",
                               "2026-13-01",
                               "2026-02-30",
                               "2025-02-29",
                               "2026-11-23T24:00:00Z",
                               "2026-11-23T10:00:00",
                               "2026-11-23T10:60Z",
                               "2026-11-23 10:00:00Z",
                               "1969-12-31",
                               "2026-1-1",
                               ""};
    for (size_t i = 0; i < N_OF(bad); i++) {
        int64_t ms = 42;
        struct rc_err err = RC_ERR_INIT;
        if (ctl_when_since(bad[i], NOW, "--since", &ms, &err) != RC_EINVAL || ms != 42 ||
            strstr(err.msg, "--since: '") == NULL || strstr(err.msg, "UTC time") == NULL) {
            fail_msg("case '%s' accepted or unclear: %s", bad[i], err.msg);
        }
    }
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ctl_when_durations),
        cmocka_unit_test(test_ctl_when_since),
    };
    return cmocka_run_group_tests_name("ctl_when", tests, NULL, NULL);
}
