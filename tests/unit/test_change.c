/* SPDX-License-Identifier: MIT
 * test_change: change_merge, which folds a research's later change of a pass into its
 * earlier one so that the store writes one. */
#include "tests/support/test.h"

#include <string.h>

#include "coordinator/change.h"

static void
emit(struct change *c, const char *payload)
{
    change_emit_raw(c, TOPIC_EVENTS, "k", 1, payload, strlen(payload));
}

/* A completion then the next dispatch: later writes win, messages keep their order, a FINISH
 * carries over with its score. */
static void
test_change_merge_folds_fields_messages_and_finish(void **state)
{
    (void)state;
    struct change a = CHANGE_INIT, b = CHANGE_INIT, f = CHANGE_INIT;
    change_init(&a, CHANGE_UPDATE, "rs_1");
    change_set(&a, RF_CHILD_STATUS, "completed");
    change_set(&a, RF_UPDATED_AT, "1");
    emit(&a, "first");
    change_init(&b, CHANGE_UPDATE, "rs_1");
    change_set(&b, RF_CHILD_STATUS, "dispatched");
    change_set(&b, RF_WAITING_SINCE, NULL);
    emit(&b, "second");
    emit(&b, "third");
    assert_true(change_merge(&a, &b));
    assert_string_equal(a.value[RF_CHILD_STATUS], "dispatched");
    assert_string_equal(a.value[RF_UPDATED_AT], "1");
    assert_true(a.set[RF_WAITING_SINCE]);
    assert_null(a.value[RF_WAITING_SINCE]);
    assert_int_equal(a.n_out, 3);
    assert_memory_equal(a.out[0].payload, "first", 5);
    assert_memory_equal(a.out[2].payload, "third", 5);
    assert_int_equal(a.kind, CHANGE_UPDATE);
    assert_int_equal(b.n_out, 0);
    assert_null(b.research_id);

    change_init(&f, CHANGE_FINISH, "rs_1");
    f.score = 42;
    change_set(&f, RF_STATUS, "completed");
    assert_true(change_merge(&a, &f));
    assert_int_equal(a.kind, CHANGE_FINISH);
    assert_int_equal(a.score, 42);
    change_release(&a);
}

/* What cannot be one change stays two. */
static void
test_change_merge_refuses(void **state)
{
    (void)state;
    struct change a = CHANGE_INIT, b = CHANGE_INIT;
    change_init(&a, CHANGE_UPDATE, "rs_1");
    change_init(&b, CHANGE_UPDATE, "rs_2");
    change_set(&b, RF_PHASE, "training");
    assert_false(change_merge(&a, &b)); /* another research */
    assert_string_equal(b.value[RF_PHASE], "training");
    change_release(&b);

    change_init(&b, CHANGE_UPDATE, "rs_1");
    a.cost_usd = 1;
    memcpy(a.budget_day, "2026-11-23", 11);
    b.cost_usd = 2;
    memcpy(b.budget_day, "2026-11-24", 11);
    assert_false(change_merge(&a, &b)); /* money of two days */
    memcpy(b.budget_day, "2026-11-23", 11);
    assert_true(change_merge(&a, &b));
    assert_true(a.cost_usd == 3);
    change_release(&a);

    change_init(&a, CHANGE_FINISH, "rs_1");
    change_init(&b, CHANGE_UPDATE, "rs_1");
    assert_false(change_merge(&a, &b)); /* already finished */
    change_release(&a);
    change_release(&b);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_change_merge_folds_fields_messages_and_finish),
        cmocka_unit_test(test_change_merge_refuses),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
