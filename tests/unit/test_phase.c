/* SPDX-License-Identifier: MIT
 * test_phase: the names of phases and worker types (contract §1) and their mapping. */
#include "tests/support/test.h"

#include <string.h>

#include "contract/phase.h"

static void
test_phase_names_roundtrip(void **state)
{
    (void)state;
    static const char *const names[PHASE_COUNT] = {
        "pending",   "designing", "training", "backtesting",
        "assessing", "completed", "failed",   "cancelled",
    };
    for (int p = 0; p < PHASE_COUNT; p++) {
        enum phase back = PHASE_COUNT;
        assert_string_equal(phase_name((enum phase)p), names[p]);
        assert_int_equal(phase_parse(names[p], &back), RC_OK);
        assert_int_equal(back, p);
    }
}

static void
test_phase_parse_rejects_unknown(void **state)
{
    (void)state;
    static const char *const bad[] = {"", "Pending", "design", "backtest", "running", "pending "};
    for (size_t i = 0; i < N_OF(bad); i++) {
        enum phase out = PHASE_FAILED;
        if (phase_parse(bad[i], &out) != RC_EINVAL || out != PHASE_FAILED) {
            fail_msg("case \"%s\"", bad[i]);
        }
    }
    enum phase out = PHASE_FAILED;
    assert_int_equal(phase_parse(NULL, &out), RC_EINVAL);
    assert_int_equal(out, PHASE_FAILED);
}

static void
test_phase_worked_and_final(void **state)
{
    (void)state;
    static const struct {
        enum phase p;
        bool worked;
        bool final;
    } cases[] = {
        {PHASE_PENDING, false, false},  {PHASE_DESIGNING, true, false},
        {PHASE_TRAINING, true, false},  {PHASE_BACKTESTING, true, false},
        {PHASE_ASSESSING, true, false}, {PHASE_COMPLETED, false, true},
        {PHASE_FAILED, false, true},    {PHASE_CANCELLED, false, true},
    };
    for (size_t i = 0; i < N_OF(cases); i++) {
        if (phase_is_worked(cases[i].p) != cases[i].worked ||
            phase_is_final(cases[i].p) != cases[i].final) {
            fail_msg("case %s", phase_name(cases[i].p));
        }
    }
}

static void
test_phase_worker_type_mapping(void **state)
{
    (void)state;
    static const struct {
        enum phase p;
        enum worker_type wt;
        const char *name;
    } cases[] = {
        {PHASE_DESIGNING, WORKER_DESIGN, "design"},
        {PHASE_TRAINING, WORKER_TRAINING, "training"},
        {PHASE_BACKTESTING, WORKER_BACKTEST, "backtest"},
        {PHASE_ASSESSING, WORKER_ASSESSMENT, "assessment"},
    };
    for (size_t i = 0; i < N_OF(cases); i++) {
        enum worker_type back = WORKER_TYPE_COUNT;
        if (phase_worker_type(cases[i].p) != cases[i].wt ||
            worker_type_phase(cases[i].wt) != cases[i].p ||
            strcmp(worker_type_name(cases[i].wt), cases[i].name) != 0 ||
            worker_type_parse(cases[i].name, &back) != RC_OK || back != cases[i].wt) {
            fail_msg("case %s", cases[i].name);
        }
    }
    enum worker_type out = WORKER_BACKTEST;
    assert_int_equal(worker_type_parse("designing", &out), RC_EINVAL);
    assert_int_equal(worker_type_parse("", &out), RC_EINVAL);
    assert_int_equal(worker_type_parse(NULL, &out), RC_EINVAL);
    assert_int_equal(out, WORKER_BACKTEST);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_phase_names_roundtrip),
        cmocka_unit_test(test_phase_parse_rejects_unknown),
        cmocka_unit_test(test_phase_worked_and_final),
        cmocka_unit_test(test_phase_worker_type_mapping),
    };
    return cmocka_run_group_tests_name("phase", tests, NULL, NULL);
}
