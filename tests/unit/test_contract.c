/* SPDX-License-Identifier: MIT
 * test_contract: the names and small rules of contract/ as docs/protocol.md states them: each
 * worker type's dispatch topic, the dispatch id's form, the concurrency limit, the heartbeat's
 * states and the research fields' table. */
#include "tests/support/test.h"

#include <string.h>

#include "contract/capacity.h"
#include "contract/dispatchid.h"
#include "contract/fields.h"
#include "contract/topics.h"

static void
test_contract_dispatch_topic_of_each_type(void **state)
{
    (void)state;
    const char *const want[WORKER_TYPE_COUNT] = {"dispatch.design", "dispatch.training",
                                                 "dispatch.backtest", "dispatch.assessment"};
    for (int wt = 0; wt < WORKER_TYPE_COUNT; wt++) {
        assert_string_equal(topic_suffix(topic_dispatch((enum worker_type)wt)), want[wt]);
        /* and its name ends with the type's own name */
        const char *suffix = topic_suffix(topic_dispatch((enum worker_type)wt));
        assert_string_equal(suffix + strlen("dispatch."), worker_type_name((enum worker_type)wt));
    }
    assert_string_equal(topic_suffix(TOPIC_TRIGGERS), "triggers");
    assert_string_equal(topic_suffix(TOPIC_DEADLETTER), "deadletter");
}

static void
test_contract_dispatch_id_form(void **state)
{
    (void)state;
    char id[64];
    assert_string_equal(dispatchid_format(id, sizeof(id), "rs_01ABC", PHASE_TRAINING, 3, 0),
                        "rs_01ABC:training:3");
    /* after a resume the phase counts from 1 again: the suffix keeps the id unique */
    assert_string_equal(dispatchid_format(id, sizeof(id), "rs_01ABC", PHASE_TRAINING, 1, 2),
                        "rs_01ABC:training:1:r2");
    /* truncated like snprintf, never overrun */
    char small[8];
    dispatchid_format(small, sizeof(small), "rs_01ABC", PHASE_DESIGNING, 1, 0);
    assert_int_equal(strlen(small), sizeof(small) - 1);
}

static void
test_contract_capacity_limit(void **state)
{
    (void)state;
    assert_int_equal(capacity_limit(7, 100, 100, 2), 7);  /* a fixed limit wins */
    assert_int_equal(capacity_limit(0, 3, 2, 2), 7);      /* training + backtest + buffer */
    assert_int_equal(capacity_limit(0, 0, 0, 0), 1);      /* never below 1 */
    assert_int_equal(capacity_limit(0, 0, 0, -5), 1);
}

static void
test_contract_heartbeat_states(void **state)
{
    (void)state;
    enum hb_state s;
    for (int i = 0; i < HB_STATE_COUNT; i++) {
        assert_int_equal(hb_state_parse(hb_state_name((enum hb_state)i), &s), RC_OK);
        assert_int_equal(s, i);
    }
    assert_string_equal(hb_state_name(HB_IDLE), "idle");
    assert_string_equal(hb_state_name(HB_DRAINING), "draining");
    s = HB_BUSY;
    assert_int_equal(hb_state_parse("Idle", &s), RC_EINVAL);
    assert_int_equal(s, HB_BUSY); /* untouched on failure */
}

static void
test_contract_research_fields_round_trip(void **state)
{
    (void)state;
    for (int f = 0; f < RF_COUNT; f++) {
        assert_int_equal(research_field_parse(research_field_name((enum research_field)f)), f);
    }
    assert_int_equal(research_field_parse("no_such_field"), -1);
    assert_string_equal(research_field_name(RF_CHILD_STATUS), "child_status");
    int i = research_result_field(WORKER_BACKTEST, "sharpe_ratio");
    assert_true(i >= RF_RESULT_FIRST);
    assert_string_equal(research_field_name((enum research_field)i), "backtest.sharpe_ratio");
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_contract_dispatch_topic_of_each_type),
        cmocka_unit_test(test_contract_dispatch_id_form),
        cmocka_unit_test(test_contract_capacity_limit),
        cmocka_unit_test(test_contract_heartbeat_states),
        cmocka_unit_test(test_contract_research_fields_round_trip),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
