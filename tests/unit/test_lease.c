/* SPDX-License-Identifier: MIT
 * test_lease: the leader lease by our own monotonic clock (contract §7, "the lease on the
 * Kafka side too"): fresh until the TTL minus a margin after the renewal was sent; a
 * renewal due after a third of the TTL; nothing held before one or after a loss. */
#include "tests/support/test.h"

#include "coordinator/lease.h"

static void
test_lease_fresh_until_ttl_minus_margin(void **state)
{
    (void)state;
    struct lease l;
    lease_init(&l, 2300); /* AGENT_POLL_INTERVAL=0.1 */
    assert_false(lease_is_fresh(&l, 1000));
    lease_granted(&l, 1000);
    assert_true(lease_is_fresh(&l, 1000));
    assert_true(lease_is_fresh(&l, 1000 + 2300 - 461));
    assert_false(lease_is_fresh(&l, 1000 + 2300 - 460)); /* margin: a fifth of the TTL */
    assert_false(lease_is_fresh(&l, 1000 + 60000));     /* woken from a long pause */
    lease_lost(&l);
    assert_false(lease_is_fresh(&l, 1001));
}

static void
test_lease_renewal_due_after_a_third(void **state)
{
    (void)state;
    struct lease l;
    lease_init(&l, 3000);
    assert_true(lease_renewal_due(&l, 5));
    lease_granted(&l, 10000);
    assert_false(lease_renewal_due(&l, 10999));
    assert_true(lease_renewal_due(&l, 11000));
}

static void
test_lease_margin_at_least_200_ms(void **state)
{
    (void)state;
    struct lease l;
    lease_init(&l, 500);
    lease_granted(&l, 0); /* a renewal sent at time 0 still counts */
    assert_true(lease_is_fresh(&l, 299));
    assert_false(lease_is_fresh(&l, 301));
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_lease_fresh_until_ttl_minus_margin),
        cmocka_unit_test(test_lease_renewal_due_after_a_third),
        cmocka_unit_test(test_lease_margin_at_least_200_ms),
    };
    return cmocka_run_group_tests_name("lease", tests, NULL, NULL);
}
