/* SPDX-License-Identifier: MIT
 * it_timeout: execution timeouts (AGENT_PHASE_TIMEOUT_<TYPE>) over the real coordinator and
 * stub workers: a training that hangs past its limit is aborted and sent again as
 * phase_timeout, and with no attempts left the research fails naming the timeout, while the
 * next research, trained within the limit, completes; a worker that ignores the abort gets no
 * resend while its heartbeat says busy with the aborted dispatch; and the timeline of a
 * completed research: every phase's four fields, in order. */
#include "tests/support/test.h"

#include <inttypes.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <hiredis/hiredis.h>

#include "common/clock.h"
#include "proto/msg.h"
#include "tests/support/it_env.h"

#define WAIT_MS 20000

static const char *const fast[] = {"--duration-ms", "30", NULL};
static const char *const hang[] = {"--hang", NULL};

/* Trigger and wait for acceptance; returns the new research id (caller frees). */
static char *
trigger_ok(struct it_env *env, const char *request_id)
{
    struct trigger t = {.request_id = request_id, .brief = "mean reversion on ETH 15m bars"};
    it_send_trigger(env, &t);
    const struct event *ev = it_event_wait_request(env, EVENT_ACCEPTED, request_id, WAIT_MS);
    assert_non_null(ev->research_id);
    return strdup(ev->research_id);
}

/* A research hash field as a whole number; fails the test when absent or not one. */
static int64_t
field_int(struct it_env *env, const char *id, const char *field)
{
    char *v = it_research_hget(env, id, field);
    char *end = NULL;
    long long n = v != NULL ? strtoll(v, &end, 10) : 0;
    if (v == NULL || *v == '\0' || *end != '\0') {
        it_fail(env, "%s: %s is \"%s\", want a whole number", id, field, v ? v : "(absent)");
    }
    free(v);
    return (int64_t)n;
}

struct abort_probe {
    const char *research_id;
    const char *dispatch_id;
};

static bool
is_abort_of(const struct it_msg *m, void *arg)
{
    const struct abort_probe *p = arg;
    return m->decoded != NULL && m->decoded->kind == MSG_ABORT &&
           strcmp(m->decoded->u.abort.research_id, p->research_id) == 0 &&
           strcmp(m->decoded->u.abort.dispatch_id, p->dispatch_id) == 0;
}

static void
redis_do(struct it_env *env, int argc, const char *const argv[])
{
    freeReplyObject(it_redis_cmd(env, argc, argv));
}

/* The only training worker hangs: its dispatch is aborted after AGENT_PHASE_TIMEOUT_TRAINING
 * and sent again (reason phase_timeout, attempt 2); hanging again, the research fails with no
 * attempts left (AGENT_MAX_ATTEMPTS=2), naming the timeout. Then a training worker that keeps
 * within the limit takes the next research to completion. */
static void
test_timeout_hung_training_is_redispatched_then_fails(void **state)
{
    struct it_env *env = *state;
    const char *const extra[] = {"AGENT_PHASE_TIMEOUT_TRAINING=1", "AGENT_MAX_ATTEMPTS=2", NULL};
    it_env_start_workers(env, "design", 1, NULL, fast);
    pid_t hung = it_env_start_workers(env, "training", 1, "hang-", hang);
    it_env_start_workers(env, "backtest", 1, NULL, fast);
    it_env_start_workers(env, "assessment", 1, NULL, fast);
    it_env_start_coordinator(env, extra);

    char *a = trigger_ok(env, "req-hang");
    const struct dispatch *first = it_dispatch_wait(env, WORKER_TRAINING, a, 1, WAIT_MS);
    assert_string_equal(first->worker_id, "hang-training-1");
    char *first_id = strdup(first->dispatch_id);

    /* Past the limit: the abort to the worker running it, the resend as attempt 2. */
    struct abort_probe p = {a, first_id};
    const struct it_msg *m =
        it_topic_wait(it_dispatches(env, WORKER_TRAINING), is_abort_of, &p, WAIT_MS);
    if (m == NULL) {
        it_fail(env, "no abort of %s", first_id);
        return;
    }
    assert_string_equal(m->decoded->u.abort.worker_id, "hang-training-1");
    assert_string_equal(m->decoded->u.abort.reason, "phase_timeout");
    const struct event *re = it_event_wait(env, EVENT_REDISPATCHED, a, WAIT_MS);
    assert_string_equal(re->reason, "phase_timeout");
    assert_int_equal(re->phase, PHASE_TRAINING);
    assert_int_equal(re->attempt, 2);
    assert_string_equal(re->old_dispatch_id, first_id);
    const struct dispatch *second = it_dispatch_wait(env, WORKER_TRAINING, a, 2, WAIT_MS);
    assert_string_equal(second->worker_id, "hang-training-1"); /* it stopped, so was free */

    /* Hung again: no attempts left. */
    const struct event *failed = it_event_wait(env, EVENT_FAILED, a, WAIT_MS);
    assert_int_equal(failed->phase, PHASE_TRAINING);
    it_research_wait(env, a, "status", "failed", WAIT_MS);
    char *error = it_research_hget(env, a, "error");
    if (error == NULL ||
        strstr(error, "no attempts left: training dispatched 2 times (AGENT_MAX_ATTEMPTS), the "
                      "last ran past AGENT_PHASE_TIMEOUT_TRAINING (1 s)") == NULL) {
        it_fail(env, "error \"%s\"", error ? error : "(absent)");
    }
    free(error);
    assert_int_equal(it_event_count(env, EVENT_REDISPATCHED, a), 1);
    assert_int_equal(field_int(env, a, "timeline.training.attempts"), 2);
    assert_true(field_int(env, a, "timeline.training.finished_at") >=
                field_int(env, a, "timeline.training.started_at"));

    /* The hung worker goes (its heartbeat with it); one that trains in 30 ms comes. */
    assert_int_equal(it_env_kill(env, hung, SIGTERM), 0);
    assert_int_equal(it_env_wait_exit(env, hung, WAIT_MS, NULL), 0);
    const char *const zrem[] = {"ZREM", "rc:workers:training", "hang-training-1"};
    const char *const del[] = {"DEL", "rc:worker:hang-training-1"};
    redis_do(env, 3, zrem);
    redis_do(env, 2, del);
    it_env_start_workers(env, "training", 1, NULL, fast);
    char *b = trigger_ok(env, "req-ok");
    it_research_wait(env, b, "status", "completed", WAIT_MS);
    assert_int_equal(it_event_count(env, EVENT_REDISPATCHED, b), 0);
    free(first_id);
    free(a);
    free(b);
}

/* A training worker played by the test: its heartbeat, written on every look. */
struct fake_worker {
    struct it_env *env;
    const char *research_id;
    const char *busy_with; /* the dispatch its heartbeat names, NULL: idle */
    int64_t attempt;       /* the dispatch it waits for (0: none) */
};

static void
fake_beat(struct fake_worker *w)
{
    char now[32];
    snprintf(now, sizeof(now), "%" PRId64, clock_now_ms());
    const char *const hset[] = {"HSET",        "rc:worker:fake-training-1",
                                "type",        "training",
                                "state",       w->busy_with != NULL ? "busy" : "idle",
                                "dispatch_id", w->busy_with != NULL ? w->busy_with : "",
                                "research_id", w->busy_with != NULL ? w->research_id : "",
                                "last_seen",   now};
    const char *const zadd[] = {"ZADD", "rc:workers:training", now, "fake-training-1"};
    redis_do(w->env, 12, hset);
    redis_do(w->env, 4, zadd);
}

static bool
is_dispatch_of(const struct it_msg *m, void *arg)
{
    const struct fake_worker *w = arg;
    return m->decoded != NULL && m->decoded->kind == MSG_DISPATCH &&
           strcmp(m->decoded->u.dispatch.research_id, w->research_id) == 0 &&
           m->decoded->u.dispatch.attempt == w->attempt;
}

/* Heartbeat, then look for the dispatch awaited. */
static bool
fake_sees_dispatch(void *arg)
{
    struct fake_worker *w = arg;
    fake_beat(w);
    return it_topic_wait(it_dispatches(w->env, WORKER_TRAINING), is_dispatch_of, w, 50) != NULL;
}

/* Heartbeat, then look for the research's resend_reason. */
static bool
fake_sees_resend_wait(void *arg)
{
    struct fake_worker *w = arg;
    fake_beat(w);
    char *v = it_research_hget(w->env, w->research_id, "resend_reason");
    bool waits = v != NULL && strcmp(v, "phase_timeout") == 0;
    free(v);
    return waits;
}

/* A worker that ignores the abort of its timed-out dispatch and goes on heartbeating busy
 * with it is not handed the resend while it does; once its heartbeat says idle, it gets it. */
static void
test_timeout_worker_ignoring_the_abort_gets_no_resend_while_busy(void **state)
{
    struct it_env *env = *state;
    const char *const extra[] = {"AGENT_PHASE_TIMEOUT_TRAINING=1", NULL};
    it_env_start_workers(env, "design", 1, NULL, fast);
    struct fake_worker w = {.env = env};
    fake_beat(&w);
    it_env_start_coordinator(env, extra);
    char *id = trigger_ok(env, "req-deaf");
    w.research_id = id;
    w.attempt = 1;
    if (!it_wait_until(fake_sees_dispatch, &w, WAIT_MS)) {
        it_fail(env, "no training dispatch to the fake worker");
    }
    const struct dispatch *first = it_dispatch_wait(env, WORKER_TRAINING, id, 1, WAIT_MS);
    assert_string_equal(first->worker_id, "fake-training-1");
    char *first_id = strdup(first->dispatch_id);
    w.busy_with = first_id; /* picked up, and never let go: it ignores the abort */
    if (!it_wait_until(fake_sees_resend_wait, &w, WAIT_MS)) {
        it_fail(env, "%s did not time out", first_id);
    }
    struct abort_probe p = {id, first_id};
    assert_non_null(it_topic_wait(it_dispatches(env, WORKER_TRAINING), is_abort_of, &p, WAIT_MS));
    /* Busy with it for three more seconds (many heartbeat reads): no attempt 2. */
    w.attempt = 2;
    assert_false(it_wait_until(fake_sees_dispatch, &w, 3000));
    /* It lets go at last: the resend comes to it. */
    w.busy_with = NULL;
    if (!it_wait_until(fake_sees_dispatch, &w, WAIT_MS)) {
        it_fail(env, "no attempt 2 once the worker is idle");
    }
    const struct event *re = it_event_wait(env, EVENT_REDISPATCHED, id, WAIT_MS);
    assert_string_equal(re->reason, "phase_timeout");
    assert_int_equal(re->attempt, 2);
    free(first_id);
    free(id);
}

static const char *const phases[] = {"designing", "training", "backtesting", "assessing"};

/* A completed research's timeline: for every phase started_at <= finished_at, the phases one
 * after another, the worker its dispatch went to, one attempt each; and no timeout applies by
 * default. */
static void
test_timeout_timeline_of_a_completed_research(void **state)
{
    struct it_env *env = *state;
    it_env_start_workers(env, "design", 1, "tl-", fast);
    it_env_start_workers(env, "training", 1, "tl-", fast);
    it_env_start_workers(env, "backtest", 1, "tl-", fast);
    it_env_start_workers(env, "assessment", 1, "tl-", fast);
    it_env_start_coordinator(env, NULL);
    char *id = trigger_ok(env, "req-timeline");
    it_research_wait(env, id, "status", "completed", WAIT_MS);
    static const char *const workers[] = {"tl-design-1", "tl-training-1", "tl-backtest-1",
                                          "tl-assessment-1"};
    int64_t previous_end = field_int(env, id, "created_at");
    for (size_t p = 0; p < 4; p++) {
        char name[64];
        snprintf(name, sizeof(name), "timeline.%s.started_at", phases[p]);
        int64_t started = field_int(env, id, name);
        snprintf(name, sizeof(name), "timeline.%s.finished_at", phases[p]);
        int64_t finished = field_int(env, id, name);
        snprintf(name, sizeof(name), "timeline.%s.attempts", phases[p]);
        int64_t attempts = field_int(env, id, name);
        snprintf(name, sizeof(name), "timeline.%s.worker_id", phases[p]);
        char *worker = it_research_hget(env, id, name);
        if (!(previous_end <= started && started <= finished) || attempts != 1 || worker == NULL ||
            strcmp(worker, workers[p]) != 0) {
            it_fail(env,
                    "%s: started %" PRId64 ", finished %" PRId64 " (previous end %" PRId64
                    "), attempts %" PRId64 ", worker %s",
                    phases[p], started, finished, previous_end, attempts,
                    worker != NULL ? worker : "(absent)");
        }
        free(worker);
        previous_end = finished;
    }
    assert_true(previous_end <= field_int(env, id, "finished_at"));
    free(id);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_timeout_hung_training_is_redispatched_then_fails,
                                        it_setup, it_teardown),
        cmocka_unit_test_setup_teardown(
            test_timeout_worker_ignoring_the_abort_gets_no_resend_while_busy, it_setup,
            it_teardown),
        cmocka_unit_test_setup_teardown(test_timeout_timeline_of_a_completed_research, it_setup,
                                        it_teardown),
    };
    return IT_RUN_GROUP("timeout", tests);
}
