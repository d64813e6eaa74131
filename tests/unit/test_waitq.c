/* SPDX-License-Identifier: MIT
 * Unit tests of waitq: per-type queues of waiting researches, oldest first. */
#include "tests/support/test.h"

#include <stdio.h>
#include <string.h>

#include "coordinator/waitq.h"

static void
expect_pop(struct waitq *q, enum worker_type wt, const char *want)
{
    char id[64];
    bool got = waitq_pop(q, wt, id, sizeof(id));
    if (want == NULL) {
        assert_false(got);
        return;
    }
    assert_true(got);
    assert_string_equal(id, want);
}

/* Oldest created first, then by id; each type is its own queue. */
static void
test_waitq_oldest_first_per_type(void **state)
{
    (void)state;
    struct waitq *q = waitq_new();
    waitq_push(q, WORKER_TRAINING, 300, "c");
    waitq_push(q, WORKER_TRAINING, 100, "b");
    waitq_push(q, WORKER_DESIGN, 50, "d");
    waitq_push(q, WORKER_TRAINING, 100, "a");
    waitq_push(q, WORKER_TRAINING, 200, "e");
    assert_int_equal(waitq_len(q, WORKER_TRAINING), 4);
    assert_int_equal(waitq_len(q, WORKER_DESIGN), 1);
    assert_int_equal(waitq_len(q, WORKER_BACKTEST), 0);
    int64_t at = 0;
    const char *top = NULL;
    assert_true(waitq_peek(q, WORKER_TRAINING, &at, &top)); /* left in place */
    assert_int_equal(at, 100);
    assert_string_equal(top, "a");
    assert_false(waitq_peek(q, WORKER_BACKTEST, &at, &top));
    assert_int_equal(waitq_len(q, WORKER_TRAINING), 4);
    expect_pop(q, WORKER_TRAINING, "a");
    expect_pop(q, WORKER_TRAINING, "b");
    waitq_push(q, WORKER_TRAINING, 150, "f"); /* pushed between pops: still in order */
    expect_pop(q, WORKER_TRAINING, "f");
    expect_pop(q, WORKER_TRAINING, "e");
    expect_pop(q, WORKER_TRAINING, "c");
    expect_pop(q, WORKER_TRAINING, NULL);
    expect_pop(q, WORKER_BACKTEST, NULL);
    expect_pop(q, WORKER_DESIGN, "d");
    waitq_free(q);
    waitq_free(NULL);
}

/* Many entries, pushed in a scrambled order, come out sorted; duplicates are kept (the
 * caller checks each entry); clear empties every queue. */
static void
test_waitq_many_and_clear(void **state)
{
    (void)state;
    struct waitq *q = waitq_new();
    for (int i = 0; i < 1000; i++) {
        char id[16];
        int k = (i * 7919) % 1000;
        snprintf(id, sizeof(id), "r%04d", k);
        waitq_push(q, WORKER_ASSESSMENT, k / 10, id);
    }
    waitq_push(q, WORKER_ASSESSMENT, 0, "r0000");
    char prev[16] = "";
    size_t n = 0;
    char id[16];
    while (waitq_pop(q, WORKER_ASSESSMENT, id, sizeof(id))) {
        assert_true(strcmp(prev, id) <= 0);
        snprintf(prev, sizeof(prev), "%s", id);
        n++;
    }
    assert_int_equal(n, 1001);
    waitq_push(q, WORKER_DESIGN, 1, "x");
    waitq_push(q, WORKER_TRAINING, 1, "y");
    waitq_clear(q);
    assert_int_equal(waitq_len(q, WORKER_DESIGN), 0);
    expect_pop(q, WORKER_TRAINING, NULL);
    waitq_free(q);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_waitq_oldest_first_per_type),
        cmocka_unit_test(test_waitq_many_and_clear),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
