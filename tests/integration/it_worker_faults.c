/* SPDX-License-Identifier: MIT
 * it_worker_faults: workers as they come in production (contract §5, §7), against the real
 * coordinator and stub workers: a worker killed mid-phase and restarted with the same id (it
 * heartbeats idle, its dispatch forgotten) has its dispatch sent again as dispatch_lost, while
 * workers that finish normally never do; members of rc:workers:<type> that are no workers (a
 * NUL or a 300-byte id, no hash, the wrong type or state, a last_seen that is no number or
 * lies in the future, a key of another type) are never dispatched to or counted; a worker
 * whose clock is 25 s behind is never declared dead. */
#include "tests/support/test.h"

#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "common/clock.h"
#include "proto/msg.h"
#include "tests/support/it_env.h"
#include "tests/support/it_runs.h"

#define WAIT_MS 20000
#define RUN_MS 90000

static const char *const quick[] = {"--duration-ms", "40-200", "--heartbeat-ms", "300", NULL};

/* Every non-training type, quick. */
static void
start_others(struct it_env *env)
{
    it_env_start_workers(env, "design", 2, NULL, quick);
    it_env_start_workers(env, "backtest", 2, NULL, quick);
    it_env_start_workers(env, "assessment", 2, NULL, quick);
}

static void
test_workers_a_restarted_worker_has_its_dispatch_sent_again(void **state)
{
    struct it_env *env = *state;
    start_others(env);
    const char *const slow[] = {"--duration-ms", "4000", "--heartbeat-ms", "300", NULL};
    pid_t training = it_env_start_workers(env, "training", 1, "r-", slow);
    const char *const coord_env[] = {"AGENT_WORKER_TIMEOUT=2", "AGENT_DISPATCH_TIMEOUT=600",
                                     "AGENT_MAX_CONCURRENT_RESEARCHES=1000", NULL};
    it_env_start_coordinator(env, coord_env);
    char *ids[1];
    it_trigger_all(env, "restart", 1, NULL, ids, WAIT_MS);
    it_research_wait(env, ids[0], "phase", "training", WAIT_MS);
    it_research_wait(env, ids[0], "picked_up_at", NULL, WAIT_MS);
    /* Killed mid-phase, started again at once with the same id: it heartbeats idle. */
    assert_int_equal(it_env_kill(env, training, SIGKILL), 0);
    assert_int_equal(it_env_wait_exit(env, training, WAIT_MS, NULL), 0);
    const int64_t t0 = clock_mono_ms();
    it_env_start_workers(env, "training", 1, "r-", quick);
    const struct event *ev = it_event_wait(env, EVENT_REDISPATCHED, ids[0], WAIT_MS);
    const int64_t took = clock_mono_ms() - t0;
    assert_string_equal(ev->reason, "dispatch_lost");
    assert_int_equal(ev->phase, PHASE_TRAINING);
    assert_int_equal(ev->attempt, 2);
    it_event_wait(env, EVENT_COMPLETED, ids[0], RUN_MS);
    struct it_figures f = it_judge(env, ids, 1);
    it_print_figures("training worker restarted mid-phase", &f, "restart to redispatch", took);
    assert_int_equal(f.completed, 1);
    assert_int_equal(f.redispatched, 1);
    /* Normal finishes (completion first, then idle), many of them: never lost. */
    char *more[20];
    it_trigger_all(env, "normal", 20, NULL, more, WAIT_MS);
    it_wait_all_finished(env, more, 20, RUN_MS);
    f = it_judge(env, more, 20);
    it_print_figures("20 normal finishes, AGENT_WORKER_TIMEOUT=2", &f, "-", 0);
    assert_int_equal(f.completed, 20);
    assert_int_equal(f.redispatched, 0);
    it_free_ids(ids, 1);
    it_free_ids(more, 20);
}

/* One member of rc:workers:training, and its hash as given (NULL: none), by the env's link:
 * ids may hold any byte. */
static void
plant(struct it_env *env, const char *id, size_t id_len, const char *type, const char *state,
      const char *last_seen, const char *now)
{
    struct buf key = BUF_INIT;
    buf_append(&key, "rc:worker:", 10);
    buf_append(&key, id, id_len);
    if (type != NULL) {
        const char *argv[] = {"HSET", key.data, "type", type, "state", state,
                              "dispatch_id", "", "research_id", "", "last_seen", last_seen};
        size_t lens[12];
        for (int i = 0; i < 12; i++) {
            lens[i] = strlen(argv[i]);
        }
        lens[1] = key.len;
        redisReply *r = it_redis_cmd_len(env, 12, argv, lens);
        assert_non_null(r);
        freeReplyObject(r);
    }
    const char *zadd[] = {"ZADD", "rc:workers:training", now, id};
    size_t zlens[] = {4, strlen(zadd[1]), strlen(now), id_len};
    redisReply *r = it_redis_cmd_len(env, 4, zadd, zlens);
    assert_non_null(r);
    freeReplyObject(r);
    buf_release(&key);
}

static void
test_workers_members_that_are_no_workers_are_never_used(void **state)
{
    struct it_env *env = *state;
    char now[32], future[32];
    const int64_t t = clock_now_ms();
    snprintf(now, sizeof(now), "%lld", (long long)t);
    snprintf(future, sizeof(future), "%lld", (long long)(t + 60000));
    char long_id[301];
    memset(long_id, 'w', 300);
    long_id[300] = '\0';
    plant(env, "bad\0id", 6, "training", "idle", now, now);
    plant(env, long_id, 300, "training", "idle", now, now);
    plant(env, "t-nohash", 8, NULL, NULL, NULL, now);
    plant(env, "t-design", 8, "design", "idle", now, now);
    plant(env, "t-sleeping", 10, "training", "sleeping", now, now);
    plant(env, "t-seen-abc", 10, "training", "idle", "abc", now);
    plant(env, "t-future", 8, "training", "idle", future, now);
    plant(env, "t-string", 8, NULL, NULL, NULL, now);
    const char *const str[] = {"SET", "rc:worker:t-string", "a string"};
    it_redis_ok(env, 3, str);
    start_others(env);
    /* The limit comes from live training + backtest workers + 1: only real ones count. */
    const char *const coord_env[] = {"AGENT_MAX_CONCURRENT_RESEARCHES=0",
                                     "AGENT_CONCURRENCY_BUFFER=1", NULL};
    pid_t coordinator = it_env_start_coordinator(env, coord_env);
    char *ids[3];
    it_trigger_all(env, "planted", 3, NULL, ids, WAIT_MS);
    struct trigger fourth = {.request_id = "planted-3", .brief = "over the limit"};
    it_send_trigger(env, &fourth);
    const struct event *ev = it_event_wait_request(env, EVENT_REJECTED, "planted-3", WAIT_MS);
    assert_string_equal(ev->reason, "at_capacity");
    assert_int_equal(ev->limit, 3); /* 0 training + 2 backtest + 1 */
    for (int i = 0; i < 3; i++) {
        it_research_wait(env, ids[i], "phase", "designing", WAIT_MS);
        it_research_wait(env, ids[i], "waiting_since", NULL, WAIT_MS);
    }
    /* Waiting for a training worker: none of the planted ones got a dispatch. */
    struct it_topic *dispatches = it_dispatches(env, WORKER_TRAINING);
    it_topic_poll(dispatches, 1000);
    assert_int_equal(it_topic_count(dispatches), 0);
    it_env_start_workers(env, "training", 1, NULL, quick);
    it_wait_all_finished(env, ids, 3, RUN_MS);
    struct it_figures f = it_judge(env, ids, 3);
    it_print_figures("8 planted members that are no workers", &f, "-", 0);
    assert_int_equal(f.completed, 3);
    for (size_t i = 0; i < it_topic_count(dispatches); i++) {
        const struct msg *m = it_topic_msg(dispatches, i)->decoded;
        if (m != NULL && m->kind == MSG_DISPATCH && strncmp(m->u.dispatch.worker_id, "g", 1) != 0) {
            it_fail(env, "dispatched to %s", m->u.dispatch.worker_id);
        }
    }
    assert_int_equal(it_env_wait_exit(env, coordinator, 0, NULL), -1); /* alive */
    it_free_ids(ids, 3);
}

static void
test_workers_a_clock_behind_is_no_death(void **state)
{
    struct it_env *env = *state;
    start_others(env);
    const char *const behind[] = {"--duration-ms", "40-200", "--heartbeat-ms", "300",
                                  "--clock-skew-ms", "-25000", NULL};
    it_env_start_workers(env, "training", 1, "late-", behind);
    const char *const coord_env[] = {"AGENT_WORKER_TIMEOUT=2", "AGENT_DISPATCH_TIMEOUT=600",
                                     "AGENT_MAX_CONCURRENT_RESEARCHES=1000", NULL};
    it_env_start_coordinator(env, coord_env);
    char *ids[10];
    it_trigger_all(env, "skew", 10, NULL, ids, WAIT_MS);
    it_wait_all_finished(env, ids, 10, RUN_MS);
    struct it_figures f = it_judge(env, ids, 10);
    it_print_figures("training worker's clock 25 s behind", &f, "-", 0);
    assert_int_equal(f.completed, 10);
    assert_int_equal(f.redispatched, 0);
    it_free_ids(ids, 10);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_workers_a_restarted_worker_has_its_dispatch_sent_again,
                                        it_setup, it_teardown),
        cmocka_unit_test_setup_teardown(test_workers_members_that_are_no_workers_are_never_used,
                                        it_setup, it_teardown),
        cmocka_unit_test_setup_teardown(test_workers_a_clock_behind_is_no_death, it_setup,
                                        it_teardown),
    };
    return IT_RUN_GROUP("it_worker_faults", tests);
}
