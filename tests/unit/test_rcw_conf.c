/* SPDX-License-Identifier: MIT
 * test_rcw_conf: librcworker's configuration: defaults, worker ids, rejections. */
#include "tests/support/test.h"

#include <string.h>

#include "worker/rcw_conf.h"

static void
test_rcw_conf_defaults_and_numbered_ids(void **state)
{
    (void)state;
    struct rcw_config in = {.type = "training", .count = 3, .id_prefix = "gpu-"};
    struct rcw_conf c = RCW_CONF_INIT;
    size_t i = 99;

    assert_int_equal(rcw_conf_resolve(&in, &c, NULL), RC_OK);
    assert_int_equal(c.type, WORKER_TRAINING);
    assert_int_equal(c.n_workers, 3);
    assert_string_equal(c.ids[0], "gpu-training-1");
    assert_string_equal(c.ids[2], "gpu-training-3");
    assert_int_equal(c.heartbeat_ms, RCW_DEFAULT_HEARTBEAT_MS);
    assert_int_equal(c.grace_ms, RCW_DEFAULT_GRACE_MS);
    assert_string_equal(c.log_name, "rcw");
    assert_null(c.host);
    assert_true(rcw_conf_find(&c, "gpu-training-2", &i));
    assert_int_equal(i, 1);
    assert_false(rcw_conf_find(&c, "gpu-training-4", &i));
    assert_false(rcw_conf_find(&c, "gpu-training-02", &i));
    assert_false(rcw_conf_find(&c, "gpu-training-", &i));
    assert_false(rcw_conf_find(&c, "gpu-training-1x", &i));
    assert_false(rcw_conf_find(&c, "cpu-training-1", &i));
    rcw_conf_release(&c);

    struct rcw_config one = {.type = "design", .host = "h1", .labels = "gpu=a100"};
    assert_int_equal(rcw_conf_resolve(&one, &c, NULL), RC_OK);
    assert_string_equal(c.ids[0], "rcw-design-1");
    assert_string_equal(c.host, "h1");
    assert_string_equal(c.labels, "gpu=a100");
    rcw_conf_release(&c);
}

static void
test_rcw_conf_exact_id(void **state)
{
    (void)state;
    struct rcw_config in = {.type = "backtest", .id = "bt-eu-7", .shutdown_grace_ms = -1};
    struct rcw_conf c = RCW_CONF_INIT;
    size_t i = 99;

    assert_int_equal(rcw_conf_resolve(&in, &c, NULL), RC_OK);
    assert_string_equal(c.ids[0], "bt-eu-7");
    assert_int_equal(c.grace_ms, -1);
    assert_true(rcw_conf_find(&c, "bt-eu-7", &i));
    assert_int_equal(i, 0);
    assert_false(rcw_conf_find(&c, "bt-eu-8", &i));
    rcw_conf_release(&c);
}

static void
test_rcw_conf_rejects(void **state)
{
    (void)state;
    char labels[RCW_LABELS_MAX + 2];
    memset(labels, 'x', sizeof(labels) - 1);
    labels[sizeof(labels) - 1] = '\0';
    const struct {
        const char *name;
        struct rcw_config in;
        const char *says;
    } cases[] = {
        {"no type", {.count = 1}, "type:"},
        {"bad type", {.type = "cooking"}, "type:"},
        {"count", {.type = "design", .count = RCW_MAX_WORKERS + 1}, "count:"},
        {"negative count", {.type = "design", .count = -1}, "count:"},
        {"heartbeat", {.type = "design", .heartbeat_ms = 2001}, "heartbeat_ms:"},
        {"id with count", {.type = "design", .id = "x", .count = 2}, "id:"},
        {"bad id", {.type = "design", .id = "a b"}, "id:"},
        {"bad prefix", {.type = "design", .id_prefix = "a/"}, "id_prefix:"},
        {"labels", {.type = "design", .labels = labels}, "labels:"},
        {"host", {.type = "design", .host = "\xff"}, "host:"},
    };
    for (size_t k = 0; k < N_OF(cases); k++) {
        struct rcw_conf c = RCW_CONF_INIT;
        struct rc_err err = RC_ERR_INIT;
        if (rcw_conf_resolve(&cases[k].in, &c, &err) != RC_EINVAL ||
            strstr(err.msg, cases[k].says) == NULL) {
            fail_msg("case %s: %s", cases[k].name, err.msg);
        }
        assert_null(c.ids); /* untouched */
    }
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rcw_conf_defaults_and_numbered_ids),
        cmocka_unit_test(test_rcw_conf_exact_id),
        cmocka_unit_test(test_rcw_conf_rejects),
    };
    return cmocka_run_group_tests_name("rcw_conf", tests, NULL, NULL);
}
