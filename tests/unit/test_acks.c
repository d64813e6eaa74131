/* SPDX-License-Identifier: MIT
 * test_acks: dispatches awaiting Kafka's acknowledgement, by outbox id (contract §7: the
 * pick-up timeout counts from the acknowledgement). */
#include "tests/support/test.h"

#include "coordinator/acks.h"

static void
test_acks_expect_take_and_pending(void **state)
{
    (void)state;
    struct acks *a = acks_new();
    acks_expect(a, "ob-1", "rs_1", "rs_1:designing:1");
    acks_expect(a, "ob-2", "rs_1", "rs_1:designing:2");
    acks_expect(a, "ob-3", "rs_2", "rs_2:training:1");
    assert_int_equal(acks_count(a), 3);
    assert_true(acks_pending_for(a, "rs_1"));
    const char *research = NULL, *dispatch = NULL;
    assert_false(acks_take(a, "ob-9", &research, &dispatch));
    assert_true(acks_take(a, "ob-1", &research, &dispatch));
    assert_string_equal(research, "rs_1");
    assert_string_equal(dispatch, "rs_1:designing:1");
    assert_true(acks_pending_for(a, "rs_1"));
    assert_true(acks_take(a, "ob-2", &research, &dispatch));
    assert_false(acks_pending_for(a, "rs_1"));
    assert_false(acks_take(a, "ob-2", &research, &dispatch)); /* once */
    /* The same outbox id expected again (republished) replaces, not doubles. */
    acks_expect(a, "ob-3", "rs_2", "rs_2:training:1");
    assert_int_equal(acks_count(a), 1);
    acks_clear(a);
    assert_false(acks_pending_for(a, "rs_2"));
    acks_free(a);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_acks_expect_take_and_pending),
    };
    return cmocka_run_group_tests_name("acks", tests, NULL, NULL);
}
