/* SPDX-License-Identifier: MIT
 * it_store: the store's one write path against a real redis-server (contract §7 "Redis
 * errors"): a pass of more changes than one script call takes, where one change is refused by
 * its own data (its research key holds another type, or is gone) and every other change
 * stands, while the refused one writes nothing at all; a key every change needs of the wrong
 * type, OOM and READONLY, which are outages with nothing written; a budget hash that cannot be
 * charged, which skips the charge and nothing else; a pass by an instance that does not hold
 * the lease, which writes nothing; and the reply stream, which stays in step after an error
 * reply in the middle of a pipelined exchange. */
#include "tests/support/test.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "common/cfg.h"
#include "common/clock.h"
#include "coordinator/change.h"
#include "coordinator/registry.h"
#include "coordinator/research.h"
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

static void
redis_run(struct it_env *env, int argc, const char *const argv[])
{
    redisReply *r = it_redis_cmd(env, argc, argv);
    if (r->type == REDIS_REPLY_ERROR) {
        it_fail(env, "%s: %s", argv[0], r->str);
    }
    freeReplyObject(r);
}

/* The hashes of rs_000 .. rs_<N_CHANGES - 1>, in phase designing. */
static void
seed_researches(struct it_env *env)
{
    for (int i = 0; i < N_CHANGES; i++) {
        char key[64];
        snprintf(key, sizeof(key), "rc:research:rs_%03d", i);
        const char *const argv[] = {"HSET", key, "phase", "designing"};
        redis_run(env, 4, argv);
    }
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
        change_emit_raw(&c[i], TOPIC_EVENTS, id, strlen(id), "payload", 7);
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

static enum rc_rc
apply(struct store *s, struct change *c, struct store_result *results, double *spent,
      struct rc_err *err)
{
    struct store_stats st;
    stats_now(&st);
    return store_apply(s, c, N_CHANGES, &st, 60, results, spent, err);
}

static bool
count_call(void *arg)
{
    (*(int *)arg)++;
    return true;
}

static struct store *
leading_store(struct it_env *env, struct cfg *cfg, const char *instance)
{
    struct store *s = open_store(env, cfg, instance);
    struct rc_err err = RC_ERR_INIT;
    bool leading = false;
    assert_int_equal(store_lease(s, 10000, &leading, &err), RC_OK);
    assert_true(leading);
    return s;
}

static void
expect_phase(struct it_env *env, int i, const char *want)
{
    char id[32];
    snprintf(id, sizeof(id), "rs_%03d", i);
    char *phase = it_research_hget(env, id, "phase");
    if (phase == NULL || strcmp(phase, want) != 0) {
        it_fail(env, "%s: phase %s, want %s", id, phase != NULL ? phase : "(none)", want);
    }
    free(phase);
}

static void
test_store_a_change_refused_by_its_own_key_writes_nothing_and_the_rest_stands(void **state)
{
    struct it_env *env = *state;
    struct cfg cfg = CFG_INIT;
    struct store *s = leading_store(env, &cfg, "test-a");
    seed_researches(env);
    char bad_key[64], gone_key[64];
    snprintf(bad_key, sizeof(bad_key), "rc:research:rs_%03d", BAD);
    snprintf(gone_key, sizeof(gone_key), "rc:research:rs_%03d", BAD + 1);
    redis_set(env, bad_key, "not a hash");
    const char *const del[] = {"DEL", gone_key};
    redis_run(env, 2, del);

    struct change *c = plan();
    struct store_result results[N_CHANGES];
    double spent = -1;
    struct rc_err err = RC_ERR_INIT;
    assert_int_equal(apply(s, c, results, &spent, &err), RC_OK);
    for (int i = 0; i < N_CHANGES; i++) {
        const bool refused = i == BAD || i == BAD + 1;
        if (results[i].rc != (refused ? RC_EBACKEND : RC_OK)) {
            fail_msg("change %d: result %d", i, (int)results[i].rc);
        }
    }
    assert_true(results[BAD].research_key);
    assert_int_equal(results[BAD].stored, RESEARCH_STORED_FOREIGN);
    assert_non_null(strstr(results[BAD].why, "holds a string, not a hash"));
    assert_true(results[BAD + 1].research_key);
    assert_int_equal(results[BAD + 1].stored, RESEARCH_STORED_NONE);
    assert_non_null(strstr(results[BAD + 1].why, "does not exist"));
    assert_true(spent == 0);
    expect_phase(env, 0, "training");
    expect_phase(env, N_CHANGES - 1, "training");
    /* The refused changes wrote nothing: no field, no outbox message, no key recreated. */
    assert_null(it_redis_hget(env, "rc:outbox", "test:270"));
    assert_null(it_redis_hget(env, "rc:outbox", "test:271"));
    assert_int_equal(it_redis_hlen(env, "rc:outbox"), N_CHANGES - 2);
    assert_int_equal(it_redis_hlen(env, gone_key), 0);
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

/* A key every change needs, of the wrong type, refuses the whole pass before anything is
 * written: nothing is half done (before, a finishing research could be marked completed yet
 * in neither set, a dispatch recorded with no outbox message). */
static void
test_store_a_shared_key_of_the_wrong_type_is_an_outage_with_nothing_written(void **state)
{
    struct it_env *env = *state;
    struct cfg cfg = CFG_INIT;
    struct store *s = leading_store(env, &cfg, "test-c");
    seed_researches(env);
    redis_set(env, "rc:outbox", "an operator's string");
    struct change *c = plan();
    struct store_result results[N_CHANGES];
    struct rc_err err = RC_ERR_INIT;
    assert_int_equal(apply(s, c, results, NULL, &err), RC_EUNAVAIL);
    assert_non_null(strstr(err.msg, "rc:outbox holds a string, not a hash"));
    for (int i = 0; i < N_CHANGES; i++) {
        expect_phase(env, i, "designing");
    }
    /* Fixed, the same pass goes through. */
    const char *const del[] = {"DEL", "rc:outbox"};
    redis_run(env, 2, del);
    assert_int_equal(apply(s, c, results, NULL, &err), RC_OK);
    expect_phase(env, 5, "training");
    assert_int_equal(it_redis_hlen(env, "rc:outbox"), N_CHANGES);
    release(c);
    store_free(s);
    cfg_release(&cfg);
}

/* OOM under maxmemory with noeviction: an outage, nothing written; once memory is there again
 * the same pass is written. */
static void
test_store_oom_is_an_outage_with_nothing_written(void **state)
{
    struct it_env *env = *state;
    struct cfg cfg = CFG_INIT;
    struct store *s = leading_store(env, &cfg, "test-d");
    seed_researches(env);
    const char *const policy[] = {"CONFIG", "SET", "maxmemory-policy", "noeviction"};
    redis_run(env, 4, policy);
    const char *const tight[] = {"CONFIG", "SET", "maxmemory", "1"};
    redis_run(env, 4, tight);
    struct change *c = plan();
    struct store_result results[N_CHANGES];
    struct rc_err err = RC_ERR_INIT;
    assert_int_equal(apply(s, c, results, NULL, &err), RC_EUNAVAIL);
    assert_non_null(strstr(err.msg, "OOM"));
    const char *const loose[] = {"CONFIG", "SET", "maxmemory", "0"};
    redis_run(env, 4, loose);
    for (int i = 0; i < N_CHANGES; i++) {
        expect_phase(env, i, "designing");
    }
    assert_int_equal(it_redis_hlen(env, "rc:outbox"), 0);
    assert_int_equal(apply(s, c, results, NULL, &err), RC_OK);
    expect_phase(env, 0, "training");
    release(c);
    store_free(s);
    cfg_release(&cfg);
}

/* A charge is added to the day's spend and, per research, to rc:budget:<day>:charges, with the
 * same TTL as the day's budget. */
static void
test_store_charges_are_kept_per_research(void **state)
{
    struct it_env *env = *state;
    struct cfg cfg = CFG_INIT;
    struct store *s = leading_store(env, &cfg, "test-c");
    seed_researches(env);
    struct store_stats st;
    stats_now(&st);
    struct store_result results[N_CHANGES];
    struct rc_err err = RC_ERR_INIT;
    for (int round = 0; round < 2; round++) {
        struct change *c = plan();
        c[2].cost_usd = 0.25;
        memcpy(c[2].budget_day, st.budget_day, sizeof(c[2].budget_day));
        c[5].cost_usd = round == 0 ? 1.0 : 0;
        memcpy(c[5].budget_day, st.budget_day, sizeof(c[5].budget_day));
        assert_int_equal(store_apply(s, c, N_CHANGES, &st, 60, results, NULL, &err), RC_OK);
        release(c);
    }
    char key[64];
    snprintf(key, sizeof(key), "rc:budget:%s:charges", st.budget_day);
    char *two = it_redis_hget(env, key, "rs_002");
    char *five = it_redis_hget(env, key, "rs_005");
    assert_string_equal(two, "0.5");
    assert_string_equal(five, "1");
    free(two);
    free(five);
    const char *const hlen[] = {"HLEN", key};
    redisReply *n = it_redis_cmd(env, 2, hlen);
    assert_int_equal(n->integer, 2);
    freeReplyObject(n);
    const char *const ttl[] = {"TTL", key};
    redisReply *t = it_redis_cmd(env, 2, ttl);
    assert_true(t->integer > 34 * 86400 && t->integer <= 35 * 86400);
    freeReplyObject(t);
    char budget[64];
    snprintf(budget, sizeof(budget), "rc:budget:%s", st.budget_day);
    char *spent = it_redis_hget(env, budget, "spent_usd");
    assert_string_equal(spent, "1.5");
    free(spent);
    store_free(s);
    cfg_release(&cfg);
}

/* A budget hash that cannot take the charge (another type, or a spend that is no number): the
 * charge is skipped, the change and everything else written (the budget is accounting). */
static void
test_store_a_broken_budget_hash_skips_the_charge_only(void **state)
{
    struct it_env *env = *state;
    struct cfg cfg = CFG_INIT;
    struct store *s = leading_store(env, &cfg, "test-e");
    seed_researches(env);
    struct store_stats st;
    stats_now(&st);
    char budget_key[64];
    snprintf(budget_key, sizeof(budget_key), "rc:budget:%s", st.budget_day);
    const char *const poison[] = {"HSET", budget_key, "spent_usd", "abc"};
    redis_run(env, 4, poison);
    struct change *c = plan();
    c[3].cost_usd = 1.5;
    memcpy(c[3].budget_day, st.budget_day, sizeof(c[3].budget_day));
    struct store_result results[N_CHANGES];
    struct rc_err err = RC_ERR_INIT;
    assert_int_equal(store_apply(s, c, N_CHANGES, &st, 60, results, NULL, &err), RC_OK);
    for (int i = 0; i < N_CHANGES; i++) {
        assert_int_equal(results[i].rc, RC_OK);
    }
    expect_phase(env, 3, "training");
    char *spent = it_redis_hget(env, budget_key, "spent_usd");
    assert_string_equal(spent, "abc");
    free(spent);
    char *instance = it_redis_hget(env, "rc:coordinator", "instance");
    assert_string_equal(instance, "test-e");
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
    struct store_result results[N_CHANGES];
    struct rc_err err = RC_ERR_INIT;
    assert_int_equal(apply(s, c, results, NULL, &err), RC_ECONFLICT);
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

/* A demoted primary answers READONLY to every script call of a pipelined pass: every reply is
 * read (or the link dropped), so that the commands after it read their own replies (before,
 * the lease was decided by a script's stale reply). */
static void
test_store_readonly_leaves_the_reply_stream_in_step(void **state)
{
    struct it_env *env = *state;
    struct cfg cfg = CFG_INIT;
    struct store *s = leading_store(env, &cfg, "test-f");
    seed_researches(env);
    char port[16];
    snprintf(port, sizeof(port), "%d", it_free_port()); /* nothing listens there */
    const char *const demote[] = {"REPLICAOF", "127.0.0.1", port};
    redis_run(env, 3, demote);
    struct change *c = plan();
    struct store_result results[N_CHANGES];
    struct rc_err err = RC_ERR_INIT;
    assert_int_equal(apply(s, c, results, NULL, &err), RC_EUNAVAIL);
    assert_non_null(strstr(err.msg, "READONLY"));
    const char *const promote[] = {"REPLICAOF", "NO", "ONE"};
    redis_run(env, 3, promote);
    bool leading = false;
    assert_int_equal(store_lease(s, 10000, &leading, &err), RC_OK);
    assert_true(leading);
    struct registry *reg = registry_new();
    const char *const zadd[] = {"ZADD", "rc:active", "1", "rs_000"};
    redis_run(env, 4, zadd);
    assert_int_equal(store_load_active(s, reg, NULL, NULL, &err), RC_OK);
    assert_int_equal(registry_count(reg), 1);
    registry_free(reg);
    assert_int_equal(apply(s, c, results, NULL, &err), RC_OK);
    expect_phase(env, 9, "training");
    release(c);
    store_free(s);
    cfg_release(&cfg);
}

/* The outbox is read in chunks (HSCAN), whole, each entry once, in publish order. */
static void
test_store_outbox_read_in_chunks(void **state)
{
    struct it_env *env = *state;
    struct cfg cfg = CFG_INIT;
    struct store *s = leading_store(env, &cfg, "test-g");
    enum { ENTRIES = 2 * STORE_OUTBOX_CHUNK + 500 };
    for (int i = 0; i < ENTRIES; i++) {
        char id[48], value[32];
        snprintf(id, sizeof(id), "0000000000001:x:%016d", ENTRIES - i); /* written backwards */
        snprintf(value, sizeof(value), "v%d", i);
        const char *const hset[] = {"HSET", "rc:outbox", id, value};
        redis_run(env, 4, hset);
    }
    int calls = 0;
    struct store_outbox_entry *e = NULL;
    size_t n = 0;
    struct rc_err err = RC_ERR_INIT;
    assert_int_equal(store_outbox_load(s, count_call, &calls, &e, &n, &err), RC_OK);
    assert_int_equal(n, ENTRIES);
    for (size_t i = 1; i < n; i++) {
        assert_true(strcmp(e[i - 1].id, e[i].id) < 0);
    }
    assert_true(calls >= 2); /* asked to keep the lease between chunks */
    store_outbox_free(e, n);
    store_free(s);
    cfg_release(&cfg);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(
            test_store_a_change_refused_by_its_own_key_writes_nothing_and_the_rest_stands, it_setup,
            it_teardown),
        cmocka_unit_test_setup_teardown(
            test_store_a_shared_key_of_the_wrong_type_is_an_outage_with_nothing_written, it_setup,
            it_teardown),
        cmocka_unit_test_setup_teardown(test_store_oom_is_an_outage_with_nothing_written, it_setup,
                                        it_teardown),
        cmocka_unit_test_setup_teardown(test_store_a_broken_budget_hash_skips_the_charge_only,
                                        it_setup, it_teardown),
        cmocka_unit_test_setup_teardown(test_store_charges_are_kept_per_research, it_setup,
                                        it_teardown),
        cmocka_unit_test_setup_teardown(test_store_without_the_lease_writes_nothing, it_setup,
                                        it_teardown),
        cmocka_unit_test_setup_teardown(test_store_readonly_leaves_the_reply_stream_in_step,
                                        it_setup, it_teardown),
        cmocka_unit_test_setup_teardown(test_store_outbox_read_in_chunks, it_setup, it_teardown),
    };
    return IT_RUN_GROUP("store", tests);
}
