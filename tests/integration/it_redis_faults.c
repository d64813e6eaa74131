/* SPDX-License-Identifier: MIT
 * it_redis_faults: Redis errors are not input failures (contract §7 "Redis errors", "Corrupt
 * stored state"), against the real coordinator, redis-server, the dev broker and stub workers:
 * an OOM spell under maxmemory + noeviction, an ACL change that takes a permission away (with
 * the coordinator and researchctl authenticating as an ACL user), a demoted primary
 * (READONLY) met by a pass larger than one script call, a BUSY script; a research whose hash
 * turns into another type (its input dead-lettered, the research failed alone); researches
 * stored corrupt; keys every write needs (rc:active, rc:outbox) and the day's budget made of
 * the wrong type by an operator. Each run checks that nothing was lost or done twice and
 * prints a "faults: ..." line. */
#include "tests/support/test.h"

#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/clock.h"
#include "proto/msg.h"
#include "tests/support/it_env.h"
#include "tests/support/it_runs.h"

#define N 30
#define WAIT_MS 20000
#define RUN_MS 90000

/* A dispatch lost to an input with no effect is not rescued within a test's time. */
static const char *const coord_env[] = {"AGENT_MAX_CONCURRENT_RESEARCHES=1000",
                                        "AGENT_DISPATCH_TIMEOUT=600", "REDIS_TIMEOUT_MS=1000",
                                        NULL};

/* Every research completed once, nothing lost, nothing sent twice. */
static void
expect_clean(struct it_env *env, const char *fault, char **ids, size_t n, const char *what,
             int64_t ms)
{
    struct it_figures f = it_judge(env, ids, n);
    it_print_figures(fault, &f, what, ms);
    if (f.completed != n || f.lost != 0 || f.double_phases != 0 || f.redispatched != 0) {
        it_fail(env, "%s: completed %zu of %zu, lost %zu, double phases %zu, redispatched %zu",
                fault, f.completed, n, f.lost, f.double_phases, f.redispatched);
    }
}

/* The time from `back` (the fault's end) until one more research than `before` finished. */
static int64_t
recovery_ms(struct it_env *env, char **ids, size_t n, size_t before, int64_t back)
{
    if (before < n) {
        it_wait_some_finished(env, ids, n, before + 1, RUN_MS);
    }
    return clock_mono_ms() - back;
}

/* ---- OOM ---- */

static void
test_redis_oom_spell_loses_no_input(void **state)
{
    struct it_env *env = *state;
    it_start_pool(env, 3, NULL, NULL);
    it_env_start_coordinator(env, coord_env);
    char *ids[N];
    it_trigger_all(env, "oom", N, NULL, ids, WAIT_MS);
    it_wait_some_finished(env, ids, N, 3, RUN_MS);
    const char *const policy[] = {"CONFIG", "SET", "maxmemory-policy", "noeviction"};
    it_redis_ok(env, 4, policy);
    const char *const tight[] = {"CONFIG", "SET", "maxmemory", "1"};
    it_redis_ok(env, 4, tight);
    it_log_wait(env, "coordinator", "OOM command not allowed", WAIT_MS);
    it_sleep_ms(2000); /* the spell itself */
    const char *const loose[] = {"CONFIG", "SET", "maxmemory", "0"};
    it_redis_ok(env, 4, loose);
    const int64_t back = clock_mono_ms();
    const int64_t recover = recovery_ms(env, ids, N, it_count_finished(env, ids, N), back);
    it_wait_all_finished(env, ids, N, RUN_MS);
    expect_clean(env, "redis OOM 2 s", ids, N, "back to next finished research", recover);
    /* One outage: said when it started and when it ended, not per retry. */
    assert_int_equal(
        it_log_count(env, "coordinator", "msg=\"dependency unavailable\" what=redis", 0), 1);
    assert_int_equal(it_log_count(env, "coordinator", "msg=\"dependency back\" what=redis", 0), 1);
    it_free_ids(ids, N);
}

/* ---- an ACL user, and NOPERM ---- */

static void
test_redis_acl_user_and_a_permission_taken_away(void **state)
{
    struct it_env *env = *state;
    /* The ACL for the coordinator of docs/operations.md ("Security"), exactly. */
    const char *const user[] = {
        "ACL",           "SETUSER",      "coord",  "on",     ">s3cret", "resetkeys", "~rc:*",
        "resetchannels", "-@all",        "+evalsha", "+script|load", "+get", "+hget", "+hgetall",
        "+hmget",        "+hset",        "+hdel",  "+hincrby", "+hincrbyfloat", "+hscan", "+zadd",
        "+zrem",         "+zrange",      "+zrangebyscore", "+zremrangebyscore", "+expire", "+set",
        "+del",          "+pexpire",     "+select", "+type",   "+exists", "+role", "+wait",
        "+ping",         "+zscore",      "+persist"};
    it_redis_ok(env, (int)N_OF(user), user);
    /* What only a resume sends (it needs a finished research, which the run below may not
     * leave): allowed by the list too. */
    const char *const dry_persist[] = {"ACL", "DRYRUN", "coord", "PERSIST", "rc:research:x"};
    const char *const dry_zscore[] = {"ACL", "DRYRUN", "coord", "ZSCORE", "rc:finished", "x"};
    const char *const *dry[] = {dry_persist, dry_zscore};
    for (size_t i = 0; i < N_OF(dry); i++) {
        /* DRYRUN says OK, or why not in a plain string */
        redisReply *r = it_redis_cmd(env, (int)(i == 0 ? N_OF(dry_persist) : N_OF(dry_zscore)),
                                     dry[i]);
        if (r->type != REDIS_REPLY_STATUS || strcmp(r->str, "OK") != 0) {
            it_fail(env, "ACL DRYRUN %s: %s", dry[i][3], r->str != NULL ? r->str : "?");
        }
        freeReplyObject(r);
    }
    /* An operator's read-only user, for researchctl (docs/operations.md, "Security"). */
    const char *const ops[] = {"ACL", "SETUSER", "ops", "on", ">r3ad", "resetkeys", "~rc:*",
                               "resetchannels", "-@all", "+@read", "+select", "+ping"};
    it_redis_ok(env, (int)N_OF(ops), ops);
    char url[128], ops_url[128], bad_url[128];
    snprintf(url, sizeof(url), "REDIS_URL=redis://coord:s3cret@127.0.0.1:%d/0",
             it_env_redis_port(env));
    snprintf(ops_url, sizeof(ops_url), "REDIS_URL=redis://ops:r3ad@127.0.0.1:%d/0",
             it_env_redis_port(env));
    snprintf(bad_url, sizeof(bad_url), "REDIS_URL=redis://ops:wrong@127.0.0.1:%d/0",
             it_env_redis_port(env));
    /* researchctl authenticates as the URL's user (AUTH user pass), and says when it cannot. */
    const char *const status[] = {"researchctl", "status", NULL};
    const char *const good_env[] = {ops_url, NULL};
    const char *const bad_env[] = {bad_url, NULL};
    char *out = NULL;
    assert_int_equal(it_env_run(env, "ctl-acl", status, good_env, WAIT_MS, &out), 0);
    free(out);
    assert_int_equal(it_env_run(env, "ctl-acl", status, bad_env, WAIT_MS, &out), 69);
    if (strstr(out, "WRONGPASS") == NULL || strstr(out, "wrong") != NULL) {
        it_fail(env, "researchctl with a wrong password said: %s", out);
    }
    free(out);

    it_start_pool(env, 3, NULL, NULL);
    const char *const acl_env[] = {"AGENT_MAX_CONCURRENT_RESEARCHES=1000",
                                   "AGENT_DISPATCH_TIMEOUT=600", url, NULL};
    it_env_start_coordinator(env, acl_env);
    char *ids[N];
    it_trigger_all(env, "acl", N, NULL, ids, WAIT_MS);
    it_wait_some_finished(env, ids, N, 3, RUN_MS);
    const char *const take[] = {"ACL", "SETUSER", "coord", "-hset"};
    it_redis_ok(env, 4, take);
    it_log_wait(env, "coordinator", "NOPERM", WAIT_MS);
    it_sleep_ms(1500);
    const char *const give[] = {"ACL", "SETUSER", "coord", "+hset"};
    it_redis_ok(env, 4, give);
    const int64_t back = clock_mono_ms();
    const int64_t recover = recovery_ms(env, ids, N, it_count_finished(env, ids, N), back);
    it_wait_all_finished(env, ids, N, RUN_MS);
    expect_clean(env, "ACL: HSET taken away 1.5 s", ids, N, "back to next finished research",
                 recover);
    assert_int_equal(
        it_log_count(env, "coordinator", "msg=\"dependency unavailable\" what=redis", 0), 1);
    it_free_ids(ids, N);
}

/* ---- READONLY or BUSY under a pass of more than one script call ---- */

/* 1,500 triggers whose pass (several script calls) is held by Redis and answered READONLY by a
 * primary demoted meanwhile. Every reply of that exchange must be read (or the link dropped):
 * left unread, they are read by the next commands as their own (the lease decided by a
 * script's reply, the mirror and the remembered outcomes read from the wrong replies). */
static void
test_redis_demoted_primary_and_a_big_pass_keep_the_replies_in_step(void **state)
{
    struct it_env *env = *state;
    const char *const fast[] = {"--duration-ms", "1-3", "--heartbeat-ms", "300", NULL};
    it_start_pool(env, 4, NULL, fast);
    /* Few ticks (a tick renews the lease, a write), so that most likely none falls between the
     * pass and its refusal. */
    const char *const slow_tick[] = {"AGENT_MAX_CONCURRENT_RESEARCHES=100000",
                                     "AGENT_DISPATCH_TIMEOUT=600", "AGENT_POLL_INTERVAL=3",
                                     NULL};
    it_env_start_coordinator(env, slow_tick);
    enum { MANY = 1500 };
    /* The writes of the pass are held (CLIENT PAUSE WRITE), so that the refusal meets that
     * very pass, after its reads went through. */
    const char *const pause[] = {"CLIENT", "PAUSE", "30000", "WRITE"};
    it_redis_ok(env, 4, pause);
    static char names[MANY][16];
    struct trigger *burst = calloc(MANY, sizeof(*burst));
    assert_non_null(burst);
    for (size_t i = 0; i < MANY; i++) {
        snprintf(names[i], sizeof(names[i]), "big-%zu", i);
        burst[i] = (struct trigger){.request_id = names[i], .brief = "a big pass"};
    }
    it_send_triggers(env, burst, MANY); /* together: one pass takes them in */
    free(burst);
    it_sleep_ms(500); /* the coordinator has taken them in and waits on its write */
    char port[16];
    snprintf(port, sizeof(port), "%d", it_free_port()); /* no primary there */
    const char *const demote[] = {"REPLICAOF", "127.0.0.1", port};
    it_redis_ok(env, 3, demote);
    /* Let the held writes go: each of the pass's script calls is answered READONLY. */
    const char *const unpause[] = {"CLIENT", "UNPAUSE"};
    it_redis_ok(env, 2, unpause);
    it_log_wait(env, "coordinator", "READONLY", WAIT_MS);
    it_sleep_ms(1000);
    const char *const promote[] = {"REPLICAOF", "NO", "ONE"};
    it_redis_ok(env, 3, promote);
    const int64_t back = clock_mono_ms();
    char **ids = calloc(MANY, sizeof(*ids));
    assert_non_null(ids);
    for (size_t i = 0; i < MANY; i++) {
        const struct event *ev = it_event_wait_request(env, EVENT_ACCEPTED, names[i], RUN_MS);
        ids[i] = strdup(ev->research_id);
    }
    const int64_t recover = clock_mono_ms() - back;
    it_wait_all_finished(env, ids, MANY, RUN_MS);
    expect_clean(env, "demoted (READONLY) under a 1,500-trigger pass", ids, MANY,
                 "back to all accepted", recover);
    /* Each trigger made one research: the active and finished sets hold exactly them. */
    assert_int_equal(it_redis_zcard(env, "rc:finished"), MANY);
    assert_int_equal(it_redis_zcard(env, "rc:active"), 0);
    assert_int_equal(it_log_count(env, "coordinator", "lost the leader lease", 0), 0);
    it_free_ids(ids, MANY);
    free(ids);
}

/* ---- BUSY ---- */

static void
test_redis_busy_script_loses_no_input(void **state)
{
    struct it_env *env = *state;
    it_start_pool(env, 3, NULL, NULL);
    it_env_start_coordinator(env, coord_env);
    char *ids[N];
    it_trigger_all(env, "busy", N, NULL, ids, WAIT_MS);
    it_wait_some_finished(env, ids, N, 3, RUN_MS);
    const char *const threshold[] = {"CONFIG", "SET", "busy-reply-threshold", "100"};
    it_redis_ok(env, 4, threshold);
    /* A script that runs 2 s: every other client is answered BUSY meanwhile. */
    char sock[600];
    snprintf(sock, sizeof(sock), "%s", it_env_redis_url(env) + strlen("unix://"));
    const char *const busy[] = {
        "/usr/bin/redis-cli", "-s", sock, "EVAL",
        "local t0 = redis.call('TIME') local s = t0[1] * 1000000 + t0[2] "
        "while true do local t = redis.call('TIME') "
        "if t[1] * 1000000 + t[2] - s > 2000000 then return 1 end end",
        "0", NULL};
    pid_t script = it_env_spawn(env, "busy-script", busy, NULL);
    it_log_wait(env, "coordinator", "BUSY", WAIT_MS);
    assert_int_equal(it_env_wait_exit(env, script, WAIT_MS, NULL), 0);
    const int64_t back = clock_mono_ms();
    const int64_t recover = recovery_ms(env, ids, N, it_count_finished(env, ids, N), back);
    it_wait_all_finished(env, ids, N, RUN_MS);
    expect_clean(env, "redis BUSY 2 s", ids, N, "back to next finished research", recover);
    it_free_ids(ids, N);
}

/* ---- one research's own data ---- */

/* Training takes long enough to break the research's hash meanwhile. */
static const char *const slow_training[] = {"--duration-ms", "1500", "--heartbeat-ms", "300",
                                            NULL};

static void
test_redis_a_research_key_of_another_type_fails_that_research_alone(void **state)
{
    struct it_env *env = *state;
    it_start_pool(env, 2, slow_training, NULL);
    it_env_start_coordinator(env, coord_env);
    char *victim[1], *ids[10];
    it_trigger_all(env, "victim", 1, NULL, victim, WAIT_MS);
    it_research_wait(env, victim[0], "phase", "training", WAIT_MS);
    it_research_wait(env, victim[0], "picked_up_at", NULL, WAIT_MS); /* its last write till done */
    it_trigger_all(env, "bystander", 10, NULL, ids, WAIT_MS);
    /* An operator turns the hash into a string while its training runs. */
    char key[128];
    snprintf(key, sizeof(key), "rc:research:%s", victim[0]);
    const char *const multi[] = {"MULTI"};
    const char *const del[] = {"DEL", key};
    const char *const set[] = {"SET", key, "an operator's note"};
    const char *const exec[] = {"EXEC"};
    it_redis_ok(env, 1, multi);
    freeReplyObject(it_redis_cmd(env, 2, del));
    freeReplyObject(it_redis_cmd(env, 3, set));
    it_redis_ok(env, 1, exec);
    /* The training's completion cannot be written: it is dead-lettered with the Redis error,
     * and the research fails alone, its key left as the operator made it. */
    const struct event *ev = it_event_wait(env, EVENT_FAILED, victim[0], RUN_MS);
    if (strstr(ev->error, "corrupt research: hash:") == NULL ||
        strstr(ev->error, "holds a string, not a hash") == NULL) {
        it_fail(env, "failed with: %s", ev->error);
    }
    const struct deadletter *dl = it_deadletter_wait(env, 1, WAIT_MS);
    if (strstr(dl->reason, "holds a string, not a hash") == NULL ||
        strstr(dl->source_topic, "completions") == NULL) {
        it_fail(env, "dead letter: %s from %s", dl->reason, dl->source_topic);
    }
    const char *const get[] = {"GET", key};
    redisReply *r = it_redis_cmd(env, 2, get);
    assert_string_equal(r->str, "an operator's note");
    freeReplyObject(r);
    it_wait_all_finished(env, ids, 10, RUN_MS);
    struct it_figures f = it_judge(env, ids, 10);
    it_print_figures("a research's hash turned into a string", &f, "-", 0);
    assert_int_equal(f.completed, 10);
    const char *const score[] = {"ZSCORE", "rc:active", victim[0]};
    r = it_redis_cmd(env, 3, score);
    assert_int_equal(r->type, REDIS_REPLY_NIL);
    freeReplyObject(r);
    const char *const done[] = {"ZSCORE", "rc:finished", victim[0]};
    r = it_redis_cmd(env, 3, done);
    assert_int_equal(r->type, REDIS_REPLY_STRING);
    freeReplyObject(r);
    it_free_ids(victim, 1);
    it_free_ids(ids, 10);
}

/* ---- corrupt stored state ---- */

struct corrupt_case {
    const char *id;
    const char *field; /* set to `value` in an otherwise sound hash; NULL: see below */
    const char *value;
    const char *want; /* the error's start */
};

static void
seed_research(struct it_env *env, const struct corrupt_case *c, const char *now)
{
    char key[128];
    snprintf(key, sizeof(key), "rc:research:%s", c->id);
    const char *const zadd[] = {"ZADD", "rc:active", now, c->id};
    it_redis_ok(env, 4, zadd);
    if (strcmp(c->want, "corrupt research: hash: missing") == 0) {
        return;
    }
    if (strstr(c->want, "another type") != NULL) {
        const char *const set[] = {"SET", key, "not a research"};
        it_redis_ok(env, 3, set);
        return;
    }
    /* A research waiting for a design worker that none is; then the one bad field. */
    const char *const hset[] = {"HSET",       key,       "research_id", c->id,   "status",
                                "running",    "phase",   "designing",   "attempt", "1",
                                "created_at", now,       "child_status", "dispatched",
                                "dispatch_id", "x:designing:1", "worker_id", "gone-worker",
                                "dispatched_at", now};
    it_redis_ok(env, 20, hset);
    if (c->value != NULL) {
        const char *const bad[] = {"HSET", key, c->field, c->value};
        it_redis_ok(env, 4, bad);
    } else {
        const char *const hdel[] = {"HDEL", key, c->field};
        it_redis_ok(env, 3, hdel);
    }
}

static void
test_redis_corrupt_researches_fail_alone(void **state)
{
    struct it_env *env = *state;
    static const struct corrupt_case cases[] = {
        {"rs_bad_phase", "phase", "xyz", "corrupt research: phase: not a phase"},
        {"rs_bad_attempt", "attempt", "abc", "corrupt research: attempt: not a whole number"},
        {"rs_huge_attempt", "attempt", "9223372036854775807",
         "corrupt research: attempt: not a whole number"},
        {"rs_no_status", "status", NULL, "corrupt research: status: missing"},
        {"rs_bad_child", "child_status", "maybe", "corrupt research: child_status"},
        {"rs_bad_time", "created_at", "yesterday", "corrupt research: created_at"},
        {"rs_no_hash", NULL, NULL, "corrupt research: hash: missing"},
        {"rs_a_string", NULL, NULL, "corrupt research: hash: the key holds another type"},
    };
    char now[32];
    snprintf(now, sizeof(now), "%lld", (long long)clock_now_ms());
    for (size_t i = 0; i < N_OF(cases); i++) {
        seed_research(env, &cases[i], now);
    }
    it_start_pool(env, 2, NULL, NULL);
    pid_t coordinator = it_env_start_coordinator(env, coord_env);
    char *ids[10];
    it_trigger_all(env, "sound", 10, NULL, ids, WAIT_MS);
    for (size_t i = 0; i < N_OF(cases); i++) {
        const struct event *ev = it_event_wait(env, EVENT_FAILED, cases[i].id, WAIT_MS);
        if (strncmp(ev->error, cases[i].want, strlen(cases[i].want)) != 0) {
            it_fail(env, "%s failed with \"%s\", want \"%s...\"", cases[i].id, ev->error,
                    cases[i].want);
        }
    }
    it_wait_all_finished(env, ids, 10, RUN_MS);
    struct it_figures f = it_judge(env, ids, 10);
    it_print_figures("8 corrupt researches beside 10 sound ones", &f, "-", 0);
    assert_int_equal(f.completed, 10);
    assert_int_equal(it_redis_zcard(env, "rc:active"), 0);
    /* Where a hash was, it says what happened; a key of another type is left alone. */
    char *status = it_research_hget(env, "rs_bad_phase", "status");
    assert_string_equal(status, "failed");
    free(status);
    char *error = it_research_hget(env, "rs_no_hash", "error");
    assert_string_equal(error, "corrupt research: hash: missing");
    free(error);
    const char *const get[] = {"GET", "rc:research:rs_a_string"};
    redisReply *r = it_redis_cmd(env, 2, get);
    assert_string_equal(r->str, "not a research");
    freeReplyObject(r);
    assert_int_equal(it_env_wait_exit(env, coordinator, 0, NULL), -1); /* alive */
    it_free_ids(ids, 10);
}

/* ---- shared keys of the wrong type ---- */

/* Atomically put `key` aside (if it exists) and put a string in its place. */
static void
spoil(struct it_env *env, const char *key, const char *aside)
{
    const char *const multi[] = {"MULTI"};
    const char *const rename[] = {"RENAME", key, aside};
    const char *const set[] = {"SET", key, "an operator's string"};
    const char *const exec[] = {"EXEC"};
    const char *const exists[] = {"EXISTS", key};
    redisReply *e = it_redis_cmd(env, 2, exists);
    bool had = e->type == REDIS_REPLY_INTEGER && e->integer == 1;
    freeReplyObject(e);
    it_redis_ok(env, 1, multi);
    if (had) {
        freeReplyObject(it_redis_cmd(env, 3, rename));
    }
    freeReplyObject(it_redis_cmd(env, 3, set));
    it_redis_ok(env, 1, exec);
}

static void
restore(struct it_env *env, const char *key, const char *aside)
{
    const char *const multi[] = {"MULTI"};
    const char *const del[] = {"DEL", key};
    const char *const rename[] = {"RENAME", aside, key};
    const char *const exec[] = {"EXEC"};
    it_redis_ok(env, 1, multi);
    freeReplyObject(it_redis_cmd(env, 2, del));
    freeReplyObject(it_redis_cmd(env, 3, rename)); /* fails harmlessly when nothing was aside */
    freeReplyObject(it_redis_cmd(env, 1, exec));
}

static void
test_redis_shared_keys_of_the_wrong_type_are_reported_and_hurt_nothing(void **state)
{
    struct it_env *env = *state;
    it_start_pool(env, 3, NULL, NULL);
    it_env_start_coordinator(env, coord_env);
    char *ids[N];
    it_trigger_all(env, "keys", N, NULL, ids, WAIT_MS);
    it_wait_some_finished(env, ids, N, 2, RUN_MS);
    static const struct {
        const char *key;
        const char *said;
    } keys[] = {
        {"rc:active", "rc:active holds a string, not a zset"},
        {"rc:outbox", "rc:outbox holds a string, not a hash"},
    };
    int64_t worst = 0;
    for (size_t k = 0; k < 2; k++) {
        spoil(env, keys[k].key, "rc:aside");
        it_log_wait(env, "coordinator", keys[k].said, WAIT_MS);
        it_sleep_ms(1000);
        restore(env, keys[k].key, "rc:aside");
        const int64_t back = clock_mono_ms();
        const size_t before = it_count_finished(env, ids, N);
        int64_t took = recovery_ms(env, ids, N, before, back);
        worst = took > worst ? took : worst;
    }
    /* The day's budget: accounting only; the researches go on, the operator is told. */
    char day[11], budget[32];
    clock_utc_day(clock_now_ms(), day);
    snprintf(budget, sizeof(budget), "rc:budget:%s", day);
    spoil(env, budget, "rc:aside-budget");
    it_log_wait(env, "coordinator", "figures not written", WAIT_MS);
    it_wait_all_finished(env, ids, N, RUN_MS);
    expect_clean(env, "rc:active, rc:outbox, rc:budget of the wrong type", ids, N,
                 "slowest fix to next finished research", worst);
    restore(env, budget, "rc:aside-budget");
    it_free_ids(ids, N);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_redis_oom_spell_loses_no_input, it_setup,
                                        it_teardown),
        cmocka_unit_test_setup_teardown(test_redis_acl_user_and_a_permission_taken_away, it_setup,
                                        it_teardown),
        cmocka_unit_test_setup_teardown(
            test_redis_demoted_primary_and_a_big_pass_keep_the_replies_in_step, it_setup,
            it_teardown),
        cmocka_unit_test_setup_teardown(test_redis_busy_script_loses_no_input, it_setup,
                                        it_teardown),
        cmocka_unit_test_setup_teardown(
            test_redis_a_research_key_of_another_type_fails_that_research_alone, it_setup,
            it_teardown),
        cmocka_unit_test_setup_teardown(test_redis_corrupt_researches_fail_alone, it_setup,
                                        it_teardown),
        cmocka_unit_test_setup_teardown(
            test_redis_shared_keys_of_the_wrong_type_are_reported_and_hurt_nothing, it_setup,
            it_teardown),
    };
    return IT_RUN_GROUP("it_redis_faults", tests);
}
