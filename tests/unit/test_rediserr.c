/* SPDX-License-Identifier: MIT
 * test_rediserr: Redis error replies by what they mean (contract §7 "Redis errors"): outages
 * (OOM, NOPERM, BUSY, ...), failovers that drop the link (READONLY, MASTERDOWN), bad data
 * (WRONGTYPE, numbers that are not, our scripts' checks), our fence, and the rest. */
#include "tests/support/test.h"

#include <string.h>

#include "common/rediserr.h"

static void
test_rediserr_classifies_every_kind(void **state)
{
    (void)state;
    static const struct {
        const char *reply;
        enum rediserr_kind kind;
        enum rc_rc rc;
        bool drops;
    } cases[] = {
        {"OOM command not allowed when used memory > 'maxmemory'.", REDISERR_OUTAGE, RC_EUNAVAIL,
         false},
        {"NOPERM this user has no permissions to run the 'hset' command", REDISERR_OUTAGE,
         RC_EUNAVAIL, false},
        {"BUSY Redis is busy running a script.", REDISERR_OUTAGE, RC_EUNAVAIL, false},
        {"LOADING Redis is loading the dataset in memory", REDISERR_OUTAGE, RC_EUNAVAIL, false},
        {"MISCONF Redis is configured to save RDB snapshots", REDISERR_OUTAGE, RC_EUNAVAIL, false},
        {"NOAUTH Authentication required.", REDISERR_OUTAGE, RC_EUNAVAIL, false},
        {"READONLY You can't write against a read only replica.", REDISERR_FAILOVER, RC_EUNAVAIL,
         true},
        {"MASTERDOWN Link with MASTER is down", REDISERR_FAILOVER, RC_EUNAVAIL, true},
        {"NOSCRIPT No matching script.", REDISERR_NOSCRIPT, RC_EUNAVAIL, true},
        {"FENCED", REDISERR_FENCED, RC_ECONFLICT, false},
        {"ERR Error running script (call to f_x): @user_script:1: FENCED", REDISERR_FENCED,
         RC_ECONFLICT, false},
        {"WRONGTYPE Operation against a key holding the wrong kind of value", REDISERR_DATA,
         RC_EBACKEND, false},
        {"ERR hash value is not a float", REDISERR_DATA, RC_EBACKEND, false},
        {"ERR value is not an integer or out of range", REDISERR_DATA, RC_EBACKEND, false},
        {"KEYTYPE 2 rc:research:x holds a string, not a hash", REDISERR_DATA, RC_EBACKEND, false},
        {"KEYMISSING 2 rc:research:x does not exist", REDISERR_DATA, RC_EBACKEND, false},
        {"ERR unknown command 'FOO'", REDISERR_OTHER, RC_EBACKEND, false},
        {"", REDISERR_OTHER, RC_EBACKEND, false},
    };
    for (size_t i = 0; i < N_OF(cases); i++) {
        enum rediserr_kind k = rediserr_classify(cases[i].reply, strlen(cases[i].reply));
        if (k != cases[i].kind || rediserr_rc(k) != cases[i].rc ||
            rediserr_drops_link(k) != cases[i].drops) {
            fail_msg("case %s: kind %s", cases[i].reply, rediserr_name(k));
        }
    }
}

/* The reply's length bounds the match: a prefix cut short is not the code. */
static void
test_rediserr_reads_only_len_bytes(void **state)
{
    (void)state;
    assert_int_equal(rediserr_classify("READONLY", 4), REDISERR_OTHER);
    assert_int_equal(rediserr_classify("OOM", 3), REDISERR_OUTAGE);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rediserr_classifies_every_kind),
        cmocka_unit_test(test_rediserr_reads_only_len_bytes),
    };
    return cmocka_run_group_tests_name("rediserr", tests, NULL, NULL);
}
