/* SPDX-License-Identifier: MIT
 * test_rcw_seen: the dispatch ids a worker remembers (dedupe, contract §2). */
#include "tests/support/test.h"

#include <stdio.h>

#include "worker/rcw_seen.h"

static void
test_rcw_seen_remembers_and_forgets_the_oldest(void **state)
{
    (void)state;
    struct rcw_seen s = RCW_SEEN_INIT;
    char id[32];

    assert_false(rcw_seen_has(&s, "d-1"));
    assert_false(rcw_seen_has(&s, "")); /* empty slots never match */
    for (int i = 1; i <= RCW_SEEN_MAX; i++) {
        snprintf(id, sizeof(id), "d-%d", i);
        rcw_seen_add(&s, id);
    }
    assert_true(rcw_seen_has(&s, "d-1"));
    assert_true(rcw_seen_has(&s, "d-64"));
    rcw_seen_add(&s, "d-65");
    assert_false(rcw_seen_has(&s, "d-1"));
    assert_true(rcw_seen_has(&s, "d-2"));
    assert_true(rcw_seen_has(&s, "d-65"));
}

static void
test_rcw_seen_adds_an_id_once(void **state)
{
    (void)state;
    struct rcw_seen s = RCW_SEEN_INIT;
    char id[32];

    rcw_seen_add(&s, "keep");
    for (int i = 0; i < 3 * RCW_SEEN_MAX; i++) {
        rcw_seen_add(&s, "keep"); /* a repeat takes no slot */
    }
    for (int i = 1; i < RCW_SEEN_MAX; i++) {
        snprintf(id, sizeof(id), "d-%d", i);
        rcw_seen_add(&s, id);
    }
    assert_true(rcw_seen_has(&s, "keep"));
    rcw_seen_add(&s, "one-more");
    assert_false(rcw_seen_has(&s, "keep"));
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rcw_seen_remembers_and_forgets_the_oldest),
        cmocka_unit_test(test_rcw_seen_adds_an_id_once),
    };
    return cmocka_run_group_tests_name("rcw_seen", tests, NULL, NULL);
}
