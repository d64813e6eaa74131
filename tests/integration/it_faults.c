/* SPDX-License-Identifier: MIT
 * it_faults: crash safety (contract §7) under injected faults, 50 researches in flight each
 * time, against the real coordinator, redis-server (AOF on), the dev broker and stub workers:
 * the coordinator SIGKILLed at 10 random moments; training workers dying with dispatches;
 * every attempt of one research dying; Redis stopped for 5 s; the brokers down for 5 s; two
 * coordinators with the leader killed. Each test checks that every research finished once,
 * that no phase of any research was dispatched twice unless a worker was lost, and prints its
 * figures ("faults: ..." lines: completed, duplicate events, lost, time to recover). */
#include "tests/support/test.h"

#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "common/clock.h"
#include "proto/msg.h"
#include "tests/support/it_env.h"
#include "tests/support/it_runs.h"

#define N_RESEARCHES 50
#define WAIT_MS 20000
#define RUN_MS 120000 /* for all 50 to finish through the faults */

static const char *const coordinator_env[] = {"AGENT_MAX_CONCURRENT_RESEARCHES=1000", NULL};
static const char *const quick[] = {"--duration-ms", "40-200", "--heartbeat-ms", "300", NULL};

static void
start_pool(struct it_env *env, int per_type, const char *const training_args[])
{
    it_start_pool(env, per_type, training_args, NULL);
}

static void
trigger_all(struct it_env *env, const char *prefix, size_t n, const char *strategy, char **ids)
{
    it_trigger_all(env, prefix, n, strategy, ids, RUN_MS);
}

/* ---- the coordinator killed ---- */

static void
test_faults_coordinator_killed_ten_times(void **state)
{
    struct it_env *env = *state;
    start_pool(env, 3, NULL);
    pid_t pid = it_env_start_coordinator(env, coordinator_env);
    char *ids[N_RESEARCHES];
    trigger_all(env, "kill", N_RESEARCHES, NULL, ids);
    srand((unsigned)clock_now_ms());
    int64_t worst_ms = 0;
    for (int k = 0; k < 10; k++) {
        it_sleep_ms(100 + rand() % 900); /* a random moment: pacing, not synchronisation */
        assert_int_equal(it_env_kill(env, pid, SIGKILL), 0);
        assert_int_equal(it_env_wait_exit(env, pid, WAIT_MS, NULL), 0);
        int64_t t0 = clock_mono_ms();
        pid = it_env_start_coordinator(env, coordinator_env); /* waits for its first cycle */
        int64_t took = clock_mono_ms() - t0;
        worst_ms = took > worst_ms ? took : worst_ms;
    }
    it_wait_all_finished(env, ids, N_RESEARCHES, RUN_MS);
    struct it_figures f = it_judge(env, ids, N_RESEARCHES);
    it_print_figures("coordinator SIGKILL x10", &f, "slowest restart to first cycle", worst_ms);
    assert_int_equal(f.completed, N_RESEARCHES);
    assert_int_equal(f.double_phases, 0);
    assert_int_equal(f.redispatched, 0); /* a dispatch its worker still runs is not resent */
    it_free_ids(ids, N_RESEARCHES);
}

/* ---- workers dying ---- */

static void
test_faults_training_workers_die_holding_dispatches(void **state)
{
    struct it_env *env = *state;
    /* Two training workers that die on their first dispatch (started first, so they are
     * first in line), two that do not. */
    const char *const dying[] = {"--duration-ms", "40-200", "--heartbeat-ms", "300",
                                 "--die-after", "1", NULL};
    pid_t doomed = it_env_start_workers(env, "training", 2, "a-", dying);
    start_pool(env, 2, NULL);
    const char *const timeouts[] = {"AGENT_MAX_CONCURRENT_RESEARCHES=1000",
                                    "AGENT_WORKER_TIMEOUT=1.5", NULL};
    it_env_start_coordinator(env, timeouts);
    char *ids[N_RESEARCHES];
    int64_t t0 = clock_mono_ms();
    trigger_all(env, "die", N_RESEARCHES, NULL, ids);
    it_wait_all_finished(env, ids, N_RESEARCHES, RUN_MS);
    struct it_figures f = it_judge(env, ids, N_RESEARCHES);
    it_print_figures("2 training workers dead", &f, "whole run", clock_mono_ms() - t0);
    assert_int_equal(f.completed, N_RESEARCHES);
    assert_int_equal(f.redispatched, 2);
    const struct event *ev = it_event_find(env, EVENT_REDISPATCHED, NULL);
    assert_non_null(ev);
    assert_string_equal(ev->reason, "worker_dead");
    assert_int_equal(ev->phase, PHASE_TRAINING);
    assert_int_equal(ev->attempt, 2);
    assert_non_null(strstr(ev->old_dispatch_id, ":training:1"));
    char *redispatches = it_redis_hget(env, "rc:coordinator", "redispatches");
    assert_string_equal(redispatches, "2");
    free(redispatches);
    it_env_kill(env, doomed, SIGKILL); /* its workers are dead already: only the process is left */
    it_free_ids(ids, N_RESEARCHES);
}

static void
test_faults_every_attempt_dies_fails_alone(void **state)
{
    struct it_env *env = *state;
    /* Design only on workers that die; the other 49 bring a strategy and skip design. */
    const char *const dying[] = {"--duration-ms", "40-200", "--heartbeat-ms", "300",
                                 "--die-after", "1", NULL};
    pid_t dying_pid = it_env_start_workers(env, "design", 2, "a-", dying);
    it_env_start_workers(env, "training", 2, NULL, quick);
    it_env_start_workers(env, "backtest", 2, NULL, quick);
    it_env_start_workers(env, "assessment", 2, NULL, quick);
    const char *const timeouts[] = {"AGENT_MAX_CONCURRENT_RESEARCHES=1000",
                                    "AGENT_WORKER_TIMEOUT=1.5", "AGENT_MAX_ATTEMPTS=2", NULL};
    it_env_start_coordinator(env, timeouts);
    char *doomed[1];
    char *ids[N_RESEARCHES - 1];
    int64_t t0 = clock_mono_ms();
    trigger_all(env, "doomed", 1, NULL, doomed);
    trigger_all(env, "ok", N_RESEARCHES - 1, "given_strategy", ids);
    const struct event *ev = it_event_wait(env, EVENT_FAILED, doomed[0], RUN_MS);
    assert_int_equal(ev->phase, PHASE_DESIGNING);
    if (strstr(ev->error, "no attempts left: designing dispatched 2 times") == NULL) {
        it_fail(env, "error: %s", ev->error);
    }
    it_wait_all_finished(env, ids, N_RESEARCHES - 1, RUN_MS);
    struct it_figures f = it_judge(env, ids, N_RESEARCHES - 1);
    it_print_figures("every attempt dies (49 others)", &f, "whole run", clock_mono_ms() - t0);
    assert_int_equal(f.completed, N_RESEARCHES - 1);
    it_env_kill(env, dying_pid, SIGKILL);
    it_free_ids(doomed, 1);
    it_free_ids(ids, N_RESEARCHES - 1);
}

/* ---- Redis and Kafka down ---- */

static void
test_faults_redis_down_five_seconds(void **state)
{
    struct it_env *env = *state;
    start_pool(env, 3, NULL);
    it_env_start_coordinator(env, coordinator_env);
    char *ids[N_RESEARCHES];
    trigger_all(env, "redis", N_RESEARCHES, NULL, ids);
    it_wait_some_finished(env, ids, N_RESEARCHES, 5, RUN_MS);
    it_env_restart_redis(env, 5000);
    int64_t back = clock_mono_ms();
    size_t before = it_count_finished(env, ids, N_RESEARCHES);
    it_wait_some_finished(env, ids, N_RESEARCHES, before + 1, RUN_MS);
    int64_t recover = clock_mono_ms() - back;
    it_wait_all_finished(env, ids, N_RESEARCHES, RUN_MS);
    struct it_figures f = it_judge(env, ids, N_RESEARCHES);
    it_print_figures("redis stopped 5 s", &f, "back to next finished research", recover);
    assert_int_equal(f.completed, N_RESEARCHES);
    assert_int_equal(f.double_phases, 0);
    assert_int_equal(f.redispatched, 0); /* workers kept what Redis could not confirm */
    it_free_ids(ids, N_RESEARCHES);
}

static void
test_faults_brokers_down_five_seconds(void **state)
{
    struct it_env *env = *state;
    start_pool(env, 3, NULL);
    it_env_start_coordinator(env, coordinator_env);
    char *ids[N_RESEARCHES];
    trigger_all(env, "kafka", N_RESEARCHES, NULL, ids);
    it_wait_some_finished(env, ids, N_RESEARCHES, 5, RUN_MS);
    pid_t broker = it_env_pid(env, "devbroker");
    assert_int_equal(kill(broker, SIGUSR1), 0); /* the mock cluster's brokers go down */
    it_sleep_ms(5000);
    assert_int_equal(kill(broker, SIGUSR2), 0);
    int64_t back = clock_mono_ms();
    size_t before = it_count_finished(env, ids, N_RESEARCHES);
    it_wait_some_finished(env, ids, N_RESEARCHES, before + 1, RUN_MS);
    int64_t recover = clock_mono_ms() - back;
    it_wait_all_finished(env, ids, N_RESEARCHES, RUN_MS);
    struct it_figures f = it_judge(env, ids, N_RESEARCHES);
    it_print_figures("brokers down 5 s", &f, "back to next finished research", recover);
    assert_int_equal(f.completed, N_RESEARCHES);
    assert_int_equal(f.double_phases, 0);
    assert_int_equal(f.redispatched, 0);
    it_free_ids(ids, N_RESEARCHES);
}

/* ---- two coordinators ---- */

static char *
current_instance(struct it_env *env)
{
    return it_redis_hget(env, "rc:coordinator", "instance");
}

struct takeover_probe {
    struct it_env *env;
    const char *old;
};

static bool
taken_over(void *arg)
{
    const struct takeover_probe *p = arg;
    char *now = current_instance(p->env);
    bool other = now != NULL && strcmp(now, p->old) != 0;
    free(now);
    return other;
}

static void
test_faults_standby_takes_over_from_a_killed_leader(void **state)
{
    struct it_env *env = *state;
    start_pool(env, 3, NULL);
    pid_t leader = it_env_start_coordinator(env, coordinator_env);
    char *first = current_instance(env);
    assert_non_null(first);
    const char *const argv[] = {"coordinator", NULL};
    const char *const standby_env[] = {"AGENT_MAX_CONCURRENT_RESEARCHES=1000",
                                       "AGENT_POLL_INTERVAL=0.1", "LOG_LEVEL=debug", NULL};
    pid_t standby = it_env_spawn(env, "coordinator-b", argv, standby_env);
    char *ids[N_RESEARCHES];
    trigger_all(env, "two", N_RESEARCHES, NULL, ids);
    it_wait_some_finished(env, ids, N_RESEARCHES, 10, RUN_MS);
    /* The standby wrote nothing while the leader lived. */
    char *still = current_instance(env);
    assert_string_equal(still, first);
    free(still);
    assert_int_equal(it_env_kill(env, leader, SIGKILL), 0);
    int64_t t0 = clock_mono_ms();
    struct takeover_probe p = {env, first};
    if (!it_wait_until(taken_over, &p, WAIT_MS)) {
        it_fail(env, "the standby did not take over");
    }
    int64_t recover = clock_mono_ms() - t0;
    it_wait_all_finished(env, ids, N_RESEARCHES, RUN_MS);
    struct it_figures f = it_judge(env, ids, N_RESEARCHES);
    it_print_figures("leader killed, standby leads", &f, "kill to standby's first cycle", recover);
    assert_int_equal(f.completed, N_RESEARCHES);
    assert_int_equal(f.double_phases, 0);
    assert_int_equal(f.redispatched, 0);
    assert_int_equal(it_env_wait_exit(env, standby, 0, NULL), -1); /* still running */
    free(first);
    it_free_ids(ids, N_RESEARCHES);
}

/* ---- a dispatch nobody picks up ---- */

static void
test_faults_unpicked_dispatch_goes_to_another_worker(void **state)
{
    struct it_env *env = *state;
    /* A "ghost" design worker: a heartbeat that says idle and never changes, as a worker
     * that lost its Kafka connection would leave. The first design goes to it. */
    const char *const timeouts[] = {"AGENT_DISPATCH_TIMEOUT=1", "AGENT_WORKER_TIMEOUT=60",
                                    "AGENT_MAX_CONCURRENT_RESEARCHES=10", NULL};
    char now[32];
    snprintf(now, sizeof(now), "%lld", (long long)clock_now_ms());
    const char *const beat[] = {"HSET", "rc:worker:ghost-design", "type", "design", "state",
                                "idle", "dispatch_id", "", "research_id", "", "last_seen", now};
    freeReplyObject(it_redis_cmd(env, 12, beat));
    const char *const live[] = {"ZADD", "rc:workers:design", now, "ghost-design"};
    freeReplyObject(it_redis_cmd(env, 4, live));
    it_env_start_coordinator(env, timeouts);
    char *ids[1];
    trigger_all(env, "ghosted", 1, NULL, ids);
    const struct dispatch *d = it_dispatch_wait(env, WORKER_DESIGN, ids[0], 1, WAIT_MS);
    assert_string_equal(d->worker_id, "ghost-design");
    /* A real pool arrives; the design is sent again to it once the timeout has passed. */
    start_pool(env, 1, NULL);
    const struct event *ev = it_event_wait(env, EVENT_REDISPATCHED, ids[0], WAIT_MS);
    assert_string_equal(ev->reason, "dispatch_timeout");
    assert_int_equal(ev->phase, PHASE_DESIGNING);
    assert_int_equal(ev->attempt, 2);
    it_event_wait(env, EVENT_COMPLETED, ids[0], WAIT_MS);
    it_free_ids(ids, 1);
}

/* ---- waiting too long ---- */

static void
test_faults_wait_timeout_fails_a_research_without_workers(void **state)
{
    struct it_env *env = *state;
    /* No design worker at all: the research waits in pending with waiting_since, then fails
     * after AGENT_WAIT_TIMEOUT naming the worker type. */
    const char *const wait1[] = {"AGENT_WAIT_TIMEOUT=1", NULL};
    it_env_start_coordinator(env, wait1);
    char *ids[1];
    trigger_all(env, "lonely", 1, NULL, ids);
    it_research_wait(env, ids[0], "phase", "pending", WAIT_MS);
    const struct event *ev = it_event_wait(env, EVENT_FAILED, ids[0], WAIT_MS);
    assert_int_equal(ev->phase, PHASE_PENDING);
    assert_string_equal(ev->error, "waited 1 s for a free design worker (AGENT_WAIT_TIMEOUT)");
    char *last = it_research_hget(env, ids[0], "last_phase");
    assert_string_equal(last, "pending");
    free(last);
    it_free_ids(ids, 1);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_faults_coordinator_killed_ten_times, it_setup,
                                        it_teardown),
        cmocka_unit_test_setup_teardown(test_faults_training_workers_die_holding_dispatches,
                                        it_setup, it_teardown),
        cmocka_unit_test_setup_teardown(test_faults_every_attempt_dies_fails_alone, it_setup,
                                        it_teardown),
        cmocka_unit_test_setup_teardown(test_faults_redis_down_five_seconds, it_setup,
                                        it_teardown),
        cmocka_unit_test_setup_teardown(test_faults_brokers_down_five_seconds, it_setup,
                                        it_teardown),
        cmocka_unit_test_setup_teardown(test_faults_standby_takes_over_from_a_killed_leader,
                                        it_setup, it_teardown),
        cmocka_unit_test_setup_teardown(test_faults_wait_timeout_fails_a_research_without_workers,
                                        it_setup, it_teardown),
        cmocka_unit_test_setup_teardown(test_faults_unpicked_dispatch_goes_to_another_worker,
                                        it_setup, it_teardown),
    };
    return IT_RUN_GROUP("it_faults", tests);
}
