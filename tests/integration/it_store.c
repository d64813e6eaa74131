/* SPDX-License-Identifier: MIT
 * it_store: the store's one write path against a real redis-server: a pass of more changes
 * than one script call takes, where one change cannot be written (its key holds the wrong
 * type) and every other change stands; and a pass by an instance that does not hold the
 * lease, which writes nothing. */
#include "tests/support/test.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "common/cfg.h"
#include "common/clock.h"
#include "coordinator/change.h"
#include "coordinator/store.h"
#include "tests/support/it_env.h"

#define N_CHANGES 300 /* more than one apply call (256 changes each) */
#define BAD 270       /* in the second call */

static struct store *
open_store(struct it_env *env, struct cfg *cfg, const char *instance)
{
    char url[512];
    snprintf(url, sizeof(url), "REDIS_URL=%s", it_env_redis_url(env));
    char *envp[] = {url, NULL};
    struct buf problems = BUF_INIT;
    struct rc_err err = RC_ERR_INIT;
    if (cfg_load(cfg, envp, &problems, &err) != RC_OK) {
        it_fail(env, "cfg_load: %s %s", err.msg, problems.data != NULL ? problems.data : "");
    }
    buf_release(&problems);
    struct store *s = NULL;
    if (store_new(&s, &cfg->redis, instance, &err) != RC_OK) {
        it_fail(env, "store_new: %s", err.msg);
    }
    return s;
}

/* N_CHANGES updates, research rs_<i> set to training, each with one outbox message. */
static struct change *
plan(void)
{
    struct change *c = calloc(N_CHANGES, sizeof(*c));
    assert_non_null(c);
    for (int i = 0; i < N_CHANGES; i++) {
        char id[32], outbox_id[32];
        snprintf(id, sizeof(id), "rs_%03d", i);
        snprintf(outbox_id, sizeof(outbox_id), "test:%03d", i);
        change_init(&c[i], CHANGE_UPDATE, id);
        change_set(&c[i], RF_PHASE, "training");
        change_emit_raw(&c[i], CFG_TOPIC_EVENTS, id, strlen(id), "payload", 7);
        c[i].out[0].outbox_id = strdup(outbox_id);
    }
    return c;
}

static void
release(struct change *c)
{
    for (int i = 0; i < N_CHANGES; i++) {
        change_release(&c[i]);
    }
    free(c);
}

static void
stats_now(struct store_stats *st)
{
    memset(st, 0, sizeof(*st));
    st->started_at_ms = clock_now_ms();
    clock_utc_day(st->started_at_ms, st->budget_day);
}

static void
redis_set(struct it_env *env, const char *key, const char *value)
{
    const char *const argv[] = {"SET", key, value};
    freeReplyObject(it_redis_cmd(env, 3, argv));
}

static void
test_store_one_bad_change_leaves_the_others_written(void **state)
{
    struct it_env *env = *state;
    struct cfg cfg = CFG_INIT;
    struct store *s = open_store(env, &cfg, "test-a");
    struct rc_err err = RC_ERR_INIT;
    bool leading = false;
    assert_int_equal(store_lease(s, 10000, &leading, &err), RC_OK);
    assert_true(leading);
    char bad_key[64];
    snprintf(bad_key, sizeof(bad_key), "rc:research:rs_%03d", BAD);
    redis_set(env, bad_key, "not a hash");

    struct change *c = plan();
    enum rc_rc results[N_CHANGES];
    struct store_stats st;
    stats_now(&st);
    double spent = -1;
    assert_int_equal(store_apply(s, c, N_CHANGES, &st, 60, results, &spent, &err), RC_OK);
    for (int i = 0; i < N_CHANGES; i++) {
        if (results[i] != (i == BAD ? RC_EBACKEND : RC_OK)) {
            fail_msg("change %d: result %d", i, (int)results[i]);
        }
    }
    assert_non_null(strstr(err.msg, "WRONGTYPE"));
    assert_true(spent == 0);
    char *phase = it_research_hget(env, "rs_000", "phase");
    assert_string_equal(phase, "training");
    free(phase);
    phase = it_research_hget(env, "rs_299", "phase");
    assert_string_equal(phase, "training");
    free(phase);
    /* The bad change stopped at its first command: its key as it was, no outbox message. */
    char *kept = it_redis_hget(env, "rc:outbox", "test:270");
    assert_null(kept);
    const char *const len_argv[] = {"HLEN", "rc:outbox"};
    redisReply *len = it_redis_cmd(env, 2, len_argv);
    assert_int_equal(len->integer, N_CHANGES - 1);
    freeReplyObject(len);
    const char *const get_argv[] = {"GET", bad_key};
    redisReply *bad = it_redis_cmd(env, 2, get_argv);
    assert_string_equal(bad->str, "not a hash");
    freeReplyObject(bad);
    char *instance = it_redis_hget(env, "rc:coordinator", "instance");
    assert_string_equal(instance, "test-a");
    free(instance);

    release(c);
    store_free(s);
    cfg_release(&cfg);
}

static void
test_store_without_the_lease_writes_nothing(void **state)
{
    struct it_env *env = *state;
    redis_set(env, "rc:leader", "someone-else");
    struct cfg cfg = CFG_INIT;
    struct store *s = open_store(env, &cfg, "test-b");
    struct change *c = plan();
    enum rc_rc results[N_CHANGES];
    struct store_stats st;
    stats_now(&st);
    struct rc_err err = RC_ERR_INIT;
    assert_int_equal(store_apply(s, c, N_CHANGES, &st, 60, results, NULL, &err), RC_ECONFLICT);
    for (int i = 0; i < N_CHANGES; i++) {
        assert_int_equal(results[i], RC_ECONFLICT);
    }
    assert_int_equal(it_redis_zcard(env, "rc:active"), 0);
    char *phase = it_research_hget(env, "rs_000", "phase");
    assert_null(phase);
    char *outbox = it_redis_hget(env, "rc:outbox", "test:000");
    assert_null(outbox);
    char *instance = it_redis_hget(env, "rc:coordinator", "instance");
    assert_null(instance);
    release(c);
    store_free(s);
    cfg_release(&cfg);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_store_one_bad_change_leaves_the_others_written,
                                        it_setup, it_teardown),
        cmocka_unit_test_setup_teardown(test_store_without_the_lease_writes_nothing, it_setup,
                                        it_teardown),
    };
    return cmocka_run_group_tests_name("store", tests, NULL, NULL);
}
