/* SPDX-License-Identifier: MIT
 * it_flow: researches from trigger to completion over the real coordinator, redis-server, the
 * dev broker and stub workers: every event and field of a completed research, a failure that
 * stays with its research, natural queuing for busy workers, both gates, bypass_gates, a
 * strategy that skips design, and the concurrency limit. */
#include "tests/support/test.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto/msg.h"
#include "tests/support/it_env.h"

#define WAIT_MS 20000

static const char *const fast[] = {"--duration-ms", "30", NULL};

/* Start one fast stub worker of every type. */
static void
start_all_workers(struct it_env *env)
{
    it_env_start_workers(env, "design", 1, NULL, fast);
    it_env_start_workers(env, "training", 1, NULL, fast);
    it_env_start_workers(env, "backtest", 1, NULL, fast);
    it_env_start_workers(env, "assessment", 1, NULL, fast);
}

/* Trigger and wait for acceptance; returns the new research id (caller frees). */
static char *
trigger_ok(struct it_env *env, const char *request_id, const struct trigger *extra)
{
    struct trigger t = extra != NULL ? *extra : (struct trigger){0};
    t.request_id = request_id;
    if (t.brief == NULL) {
        t.brief = "momentum on BTC 1h bars";
    }
    it_send_trigger(env, &t);
    const struct event *ev = it_event_wait_request(env, EVENT_ACCEPTED, request_id, WAIT_MS);
    assert_non_null(ev->research_id);
    return strdup(ev->research_id);
}

static void
assert_field(struct it_env *env, const char *id, const char *field, const char *want)
{
    char *got = it_research_hget(env, id, field);
    if (want == NULL) {
        if (got != NULL) {
            it_fail(env, "%s: %s is \"%s\", want absent", id, field, got);
        }
        return;
    }
    if (got == NULL || strcmp(got, want) != 0) {
        it_fail(env, "%s: %s is \"%s\", want \"%s\"", id, field, got ? got : "(absent)", want);
    }
    free(got);
}

static void
assert_present(struct it_env *env, const char *id, const char *field)
{
    char *got = it_research_hget(env, id, field);
    if (got == NULL || got[0] == '\0') {
        it_fail(env, "%s: %s is absent", id, field);
    }
    free(got);
}

/* The n-th event of `type` for `id` in the order read (0-based), or NULL. */
static const struct event *
nth_event(struct it_env *env, enum event_type type, const char *id, size_t n)
{
    struct it_topic *t = it_events(env);
    it_topic_poll(t, 0);
    for (size_t i = 0; i < it_topic_count(t); i++) {
        const struct it_msg *m = it_topic_msg(t, i);
        if (m->decoded != NULL && m->decoded->u.event.type == type &&
            m->decoded->u.event.research_id != NULL &&
            strcmp(m->decoded->u.event.research_id, id) == 0 && n-- == 0) {
            return &m->decoded->u.event;
        }
    }
    return NULL;
}

static void
test_flow_two_researches_complete_with_every_event_and_field(void **state)
{
    struct it_env *env = *state;
    start_all_workers(env);
    it_env_start_coordinator(env, NULL);
    struct trigger with_model = {.model = "claude-sonnet-4-5"};
    char *a = trigger_ok(env, "req-a", &with_model);
    char *b = trigger_ok(env, "req-b", NULL);
    it_research_wait(env, a, "phase", "completed", WAIT_MS);
    it_research_wait(env, b, "phase", "completed", WAIT_MS);
    it_event_wait(env, EVENT_COMPLETED, a, WAIT_MS);
    it_event_wait(env, EVENT_COMPLETED, b, WAIT_MS);

    const char *ids[] = {a, b};
    for (size_t k = 0; k < 2; k++) {
        const char *id = ids[k];
        /* Events: accepted, a phase_started per phase in order, both gates, completed. */
        assert_int_equal(it_event_count(env, EVENT_ACCEPTED, id), 1);
        assert_int_equal(it_event_count(env, EVENT_PHASE_STARTED, id), 4);
        const enum phase order[] = {PHASE_DESIGNING, PHASE_TRAINING, PHASE_BACKTESTING,
                                    PHASE_ASSESSING};
        for (size_t p = 0; p < 4; p++) {
            const struct event *ev = nth_event(env, EVENT_PHASE_STARTED, id, p);
            assert_non_null(ev);
            assert_int_equal(ev->phase, order[p]);
            assert_int_equal(ev->attempt, 1);
            assert_non_null(ev->dispatch_id);
        }
        assert_int_equal(it_event_count(env, EVENT_GATE, id), 2);
        const struct event *g1 = nth_event(env, EVENT_GATE, id, 0);
        const struct event *g2 = nth_event(env, EVENT_GATE, id, 1);
        assert_int_equal(g1->gate, WORKER_TRAINING);
        assert_true(g1->passed);
        assert_int_equal(g2->gate, WORKER_BACKTEST);
        assert_true(g2->passed);
        const struct event *done = nth_event(env, EVENT_COMPLETED, id, 0);
        assert_non_null(done->strategy_name);
        assert_string_equal(done->verdict, "promising");
        assert_null(done->gate_rejection_reason);
        assert_int_equal(it_event_count(env, EVENT_FAILED, id), 0);

        /* The hash: every field of contract §6 that a completed research has. */
        assert_field(env, id, "research_id", id);
        assert_field(env, id, "request_id", k == 0 ? "req-a" : "req-b");
        assert_field(env, id, "status", "completed");
        assert_field(env, id, "phase", "completed");
        assert_field(env, id, "last_phase", "assessing");
        assert_field(env, id, "brief", "momentum on BTC 1h bars");
        assert_field(env, id, "model", k == 0 ? "claude-sonnet-4-5" : NULL);
        assert_field(env, id, "bypass_gates", "0");
        assert_field(env, id, "strategy_name", done->strategy_name);
        assert_present(env, id, "strategy_path");
        assert_present(env, id, "model_path");
        assert_present(env, id, "dispatch_id");
        assert_present(env, id, "worker_id");
        assert_field(env, id, "attempt", "1");
        assert_field(env, id, "child_status", "completed");
        assert_field(env, id, "waiting_since", NULL);
        const char *times[] = {"created_at", "updated_at", "phase_started_at", "finished_at"};
        for (size_t i = 0; i < 4; i++) {
            assert_present(env, id, times[i]);
        }
        assert_field(env, id, "error", NULL);
        assert_field(env, id, "gate_rejection_reason", NULL);
        assert_field(env, id, "verdict", "promising");
        assert_present(env, id, "cost_usd");
        const char *results[] = {"design.strategy_name", "design.input_tokens",
                                 "training.accuracy",    "training.final_loss",
                                 "backtest.win_rate",    "backtest.sharpe_ratio",
                                 "assessment.verdict",   "assessment.output_tokens"};
        for (size_t i = 0; i < N_OF(results); i++) {
            assert_present(env, id, results[i]);
        }
        assert_field(env, id, "training.accuracy", "0.62");
    }
    /* The sets, the request outcomes and the coordinator's own hash. */
    assert_int_equal(it_redis_zcard(env, "rc:active"), 0);
    assert_int_equal(it_redis_zcard(env, "rc:finished"), 2);
    char *outcome = it_redis_hget(env, "rc:coordinator", "triggers");
    assert_string_equal(outcome, "2");
    free(outcome);
    const char *const get[] = {"GET", "rc:request:req-a"};
    redisReply *r = it_redis_cmd(env, 2, get);
    assert_string_equal(r->str, a);
    freeReplyObject(r);
    const char *const ttl[] = {"TTL", "rc:request:req-a"};
    r = it_redis_cmd(env, 2, ttl);
    assert_true(r->integer > 86000 && r->integer <= 86400);
    freeReplyObject(r);
    /* A finished research stays readable for RESEARCH_RETENTION (default 7 days), then goes. */
    char key[128];
    snprintf(key, sizeof(key), "rc:research:%s", a);
    const char *const retention[] = {"TTL", key};
    r = it_redis_cmd(env, 2, retention);
    assert_true(r->integer > 604000 && r->integer <= 604800);
    freeReplyObject(r);
    const char *fields[] = {"instance",       "version",     "started_at",  "last_cycle_at",
                            "cycle_ms",       "active",      "completions", "stale_completions",
                            "invalid_inputs", "redispatches"};
    for (size_t i = 0; i < N_OF(fields); i++) {
        char *v = it_redis_hget(env, "rc:coordinator", fields[i]);
        if (v == NULL) {
            it_fail(env, "rc:coordinator has no %s", fields[i]);
        }
        free(v);
    }
    char *completions = it_redis_hget(env, "rc:coordinator", "completions");
    assert_string_equal(completions, "8");
    free(completions);
    free(a);
    free(b);
}

static void
test_flow_a_failed_design_fails_its_research_alone(void **state)
{
    struct it_env *env = *state;
    /* "a-design-1" sorts first among never-used workers, so the oldest research gets it. */
    const char *const failing[] = {"--duration-ms", "30", "--fail-prob", "1", NULL};
    it_env_start_workers(env, "design", 1, "a-", failing);
    it_env_start_workers(env, "design", 2, "b-", fast);
    it_env_start_workers(env, "training", 2, NULL, fast);
    it_env_start_workers(env, "backtest", 2, NULL, fast);
    it_env_start_workers(env, "assessment", 2, NULL, fast);
    it_env_start_coordinator(env, NULL);
    char *r1 = trigger_ok(env, "req-1", NULL);
    it_dispatch_wait(env, WORKER_DESIGN, r1, 1, WAIT_MS);
    char *r2 = trigger_ok(env, "req-2", NULL);
    char *r3 = trigger_ok(env, "req-3", NULL);

    const struct event *failed = it_event_wait(env, EVENT_FAILED, r1, WAIT_MS);
    assert_int_equal(failed->phase, PHASE_DESIGNING);
    assert_string_equal(failed->error, "stub failure");
    it_research_wait(env, r1, "phase", "failed", WAIT_MS);
    assert_field(env, r1, "status", "failed");
    assert_field(env, r1, "last_phase", "designing");
    assert_field(env, r1, "child_status", "failed");
    assert_field(env, r1, "error", "stub failure");
    assert_field(env, r1, "worker_id", "a-design-1");
    assert_present(env, r1, "finished_at");

    it_research_wait(env, r2, "phase", "completed", WAIT_MS);
    it_event_wait(env, EVENT_COMPLETED, r2, WAIT_MS); /* events follow Redis */
    it_research_wait(env, r3, "phase", "completed", WAIT_MS);
    it_event_wait(env, EVENT_COMPLETED, r3, WAIT_MS); /* events follow Redis */
    assert_int_equal(it_event_count(env, EVENT_FAILED, NULL), 1);
    assert_int_equal(it_event_count(env, EVENT_COMPLETED, r1), 0);
    assert_int_equal(it_redis_zcard(env, "rc:finished"), 3);
    free(r1);
    free(r2);
    free(r3);
}

struct queue_probe {
    struct it_env *env;
    char *ids[3];
    int max_training; /* most training dispatches seen out at once */
    bool waited;      /* one was seen waiting in designing with its design result */
};

static bool
queue_sample(void *arg)
{
    struct queue_probe *q = arg;
    int training = 0, completed = 0;
    /* The three researches read in one script, so the count is of one instant: read one by
     * one, a training that ends between two reads and the next one that starts would both be
     * counted. */
    static const char lua[] =
        "local r = {} for i, k in ipairs(KEYS) do "
        "r[2 * i - 1] = redis.call('HGET', k, 'phase') "
        "r[2 * i] = redis.call('HGET', k, 'child_status') end return r";
    char keys[3][256];
    for (int i = 0; i < 3; i++) {
        snprintf(keys[i], sizeof(keys[i]), "%sresearch:%s", it_env_key_prefix(q->env), q->ids[i]);
    }
    const char *const eval[] = {"EVAL", lua, "3", keys[0], keys[1], keys[2]};
    redisReply *now = it_redis_cmd(q->env, 6, eval);
    assert_true(now != NULL && now->type == REDIS_REPLY_ARRAY && now->elements == 6);
    for (int i = 0; i < 3; i++) {
        const redisReply *ph = now->element[2 * i], *ch = now->element[2 * i + 1];
        training += ph->type == REDIS_REPLY_STRING && strcmp(ph->str, "training") == 0 &&
                    ch->type == REDIS_REPLY_STRING && strcmp(ch->str, "dispatched") == 0;
    }
    freeReplyObject(now);
    for (int i = 0; i < 3; i++) {
        char *phase = it_research_hget(q->env, q->ids[i], "phase");
        char *child = it_research_hget(q->env, q->ids[i], "child_status");
        if (phase != NULL && strcmp(phase, "designing") == 0 && child != NULL &&
            strcmp(child, "completed") == 0) {
            char *since = it_research_hget(q->env, q->ids[i], "waiting_since");
            char *strategy = it_research_hget(q->env, q->ids[i], "design.strategy_name");
            q->waited = q->waited || (since != NULL && strategy != NULL);
            free(since);
            free(strategy);
        }
        completed += phase != NULL && strcmp(phase, "completed") == 0;
        free(phase);
        free(child);
    }
    q->max_training = training > q->max_training ? training : q->max_training;
    return completed == 3;
}

static void
test_flow_queues_for_busy_training_workers(void **state)
{
    struct it_env *env = *state;
    const char *const slow[] = {"--duration-ms", "1500", NULL};
    it_env_start_workers(env, "design", 3, NULL, fast);
    it_env_start_workers(env, "training", 2, NULL, slow);
    it_env_start_workers(env, "backtest", 2, NULL, fast);
    it_env_start_workers(env, "assessment", 2, NULL, fast);
    it_env_start_coordinator(env, NULL);
    struct queue_probe q = {.env = env};
    q.ids[0] = trigger_ok(env, "req-q1", NULL);
    q.ids[1] = trigger_ok(env, "req-q2", NULL);
    q.ids[2] = trigger_ok(env, "req-q3", NULL);
    if (!it_wait_until(queue_sample, &q, 3 * WAIT_MS)) {
        it_fail(env, "the three researches did not complete");
    }
    for (int i = 0; i < 3; i++) {
        it_event_wait(env, EVENT_COMPLETED, q.ids[i], WAIT_MS); /* events follow Redis */
    }
    assert_true(q.waited);
    assert_true(q.max_training <= 2);
    assert_int_equal(it_event_count(env, EVENT_PHASE_STARTED, NULL), 12);
    /* Never more than two training dispatches out, from the events' own times: each training
     * runs from its phase_started to its gate event; at no instant do three overlap. */
    int64_t start[3] = {0}, end[3] = {0};
    for (int i = 0; i < 3; i++) {
        const struct it_msg *started = NULL, *gate = NULL;
        struct it_topic *t = it_events(env);
        for (size_t j = 0; j < it_topic_count(t); j++) {
            const struct it_msg *m = it_topic_msg(t, j);
            const struct event *ev = &m->decoded->u.event;
            if (ev->research_id == NULL || strcmp(ev->research_id, q.ids[i]) != 0) {
                continue;
            }
            if (ev->type == EVENT_PHASE_STARTED && ev->phase == PHASE_TRAINING) {
                started = m;
            } else if (ev->type == EVENT_GATE && ev->gate == WORKER_TRAINING) {
                gate = m;
            }
        }
        assert_non_null(started);
        assert_non_null(gate);
        start[i] = started->decoded->ts_ms;
        end[i] = gate->decoded->ts_ms;
    }
    for (int i = 0; i < 3; i++) {
        int overlapping = 0; /* trainings running at the instant research i's started */
        for (int j = 0; j < 3; j++) {
            overlapping += start[j] <= start[i] && start[i] < end[j];
        }
        assert_true(overlapping <= 2);
    }
    for (int i = 0; i < 3; i++) {
        free(q.ids[i]);
    }
}

static void
test_flow_failed_training_gate_assesses_without_backtest(void **state)
{
    struct it_env *env = *state;
    const char *const gate_fails[] = {"--duration-ms", "30", "--fail-gate", NULL};
    it_env_start_workers(env, "design", 1, NULL, fast);
    it_env_start_workers(env, "training", 1, NULL, gate_fails);
    it_env_start_workers(env, "backtest", 1, NULL, fast);
    it_env_start_workers(env, "assessment", 1, NULL, fast);
    it_env_start_coordinator(env, NULL);
    char *id = trigger_ok(env, "req-gate", NULL);
    const struct event *gate = it_event_wait(env, EVENT_GATE, id, WAIT_MS);
    assert_int_equal(gate->gate, WORKER_TRAINING);
    assert_false(gate->passed);
    assert_string_equal(gate->reason, "training: accuracy 0.05 < 0.10");

    const struct dispatch *d = it_dispatch_wait(env, WORKER_ASSESSMENT, id, 1, WAIT_MS);
    const struct kv *backtest = kv_find(d->params, d->n_params, "backtest");
    const struct kv *training = kv_find(d->params, d->n_params, "training");
    const struct kv *reason = kv_find(d->params, d->n_params, "gate_rejection_reason");
    assert_non_null(backtest);
    assert_int_equal(backtest->val.kind, VALUE_NIL);
    assert_non_null(training);
    assert_int_equal(training->val.kind, VALUE_MAP);
    assert_non_null(kv_find(training->val.map, training->val.map_len, "accuracy"));
    assert_non_null(reason);
    assert_string_equal(reason->val.s, "training: accuracy 0.05 < 0.10");

    const struct event *done = it_event_wait(env, EVENT_COMPLETED, id, WAIT_MS);
    assert_string_equal(done->gate_rejection_reason, "training: accuracy 0.05 < 0.10");
    assert_field(env, id, "gate_rejection_reason", "training: accuracy 0.05 < 0.10");
    assert_field(env, id, "backtest.win_rate", NULL);
    assert_int_equal(it_event_count(env, EVENT_PHASE_STARTED, id), 3); /* no backtesting */
    assert_int_equal(it_event_count(env, EVENT_GATE, id), 1);
    free(id);
}

static void
test_flow_failed_backtest_gate_assesses_with_backtest(void **state)
{
    struct it_env *env = *state;
    const char *const gate_fails[] = {"--duration-ms", "30", "--fail-gate", NULL};
    it_env_start_workers(env, "design", 1, NULL, fast);
    it_env_start_workers(env, "training", 1, NULL, fast);
    it_env_start_workers(env, "backtest", 1, NULL, gate_fails);
    it_env_start_workers(env, "assessment", 1, NULL, fast);
    it_env_start_coordinator(env, NULL);
    char *id = trigger_ok(env, "req-bt", NULL);
    const struct dispatch *d = it_dispatch_wait(env, WORKER_ASSESSMENT, id, 1, WAIT_MS);
    const struct kv *backtest = kv_find(d->params, d->n_params, "backtest");
    assert_int_equal(backtest->val.kind, VALUE_MAP);
    const struct kv *reason = kv_find(d->params, d->n_params, "gate_rejection_reason");
    assert_string_equal(reason->val.s, "backtest: max_drawdown 0.9 > 0.40");
    it_research_wait(env, id, "phase", "completed", WAIT_MS);
    it_event_wait(env, EVENT_COMPLETED, id, WAIT_MS); /* events follow Redis */
    assert_field(env, id, "gate_rejection_reason", "backtest: max_drawdown 0.9 > 0.40");
    free(id);
}

static void
test_flow_bypass_gates_passes_both(void **state)
{
    struct it_env *env = *state;
    const char *const gate_fails[] = {"--duration-ms", "30", "--fail-gate", NULL};
    it_env_start_workers(env, "design", 1, NULL, fast);
    it_env_start_workers(env, "training", 1, NULL, gate_fails);
    it_env_start_workers(env, "backtest", 1, NULL, gate_fails);
    it_env_start_workers(env, "assessment", 1, NULL, fast);
    it_env_start_coordinator(env, NULL);
    struct trigger bypass = {.bypass_gates = true};
    char *id = trigger_ok(env, "req-bypass", &bypass);
    it_research_wait(env, id, "phase", "completed", WAIT_MS);
    it_event_wait(env, EVENT_COMPLETED, id, WAIT_MS); /* events follow Redis */
    assert_int_equal(it_event_count(env, EVENT_GATE, id), 2);
    for (size_t i = 0; i < 2; i++) {
        const struct event *g = nth_event(env, EVENT_GATE, id, i);
        assert_true(g->passed);
        assert_string_equal(g->reason, "bypassed");
    }
    assert_field(env, id, "bypass_gates", "1");
    assert_field(env, id, "gate_rejection_reason", NULL);
    assert_present(env, id, "backtest.win_rate");
    free(id);
}

static void
test_flow_strategy_skips_design(void **state)
{
    struct it_env *env = *state;
    start_all_workers(env);
    it_env_start_coordinator(env, NULL);
    struct trigger given = {.strategy = "rsi_variant_7", .strategy_path = "/s/rsi7.py"};
    char *id = trigger_ok(env, "req-strategy", &given);
    const struct dispatch *d = it_dispatch_wait(env, WORKER_TRAINING, id, 1, WAIT_MS);
    const struct kv *name = kv_find(d->params, d->n_params, "strategy_name");
    const struct kv *path = kv_find(d->params, d->n_params, "strategy_path");
    assert_string_equal(name->val.s, "rsi_variant_7");
    assert_string_equal(path->val.s, "/s/rsi7.py");
    it_research_wait(env, id, "phase", "completed", WAIT_MS);
    it_event_wait(env, EVENT_COMPLETED, id, WAIT_MS); /* events follow Redis */
    const struct event *first = nth_event(env, EVENT_PHASE_STARTED, id, 0);
    assert_int_equal(first->phase, PHASE_TRAINING);
    assert_int_equal(it_event_count(env, EVENT_PHASE_STARTED, id), 3);
    assert_field(env, id, "design.strategy_name", NULL);
    assert_field(env, id, "strategy_name", "rsi_variant_7");
    free(id);
}

static void
test_flow_trigger_at_the_limit_is_rejected_with_the_counts(void **state)
{
    struct it_env *env = *state;
    /* Limit from the workers: 1 training + 1 backtest + buffer 0 = 2. Slow designs keep the
     * first two researches active. */
    const char *const slow[] = {"--duration-ms", "60000", NULL};
    it_env_start_workers(env, "design", 2, NULL, slow);
    it_env_start_workers(env, "training", 1, NULL, fast);
    it_env_start_workers(env, "backtest", 1, NULL, fast);
    const char *const extra[] = {"AGENT_CONCURRENCY_BUFFER=0", NULL};
    it_env_start_coordinator(env, extra);
    char *a = trigger_ok(env, "req-c1", NULL);
    char *b = trigger_ok(env, "req-c2", NULL);
    struct trigger t = {.request_id = "req-c3", .brief = "one too many"};
    it_send_trigger(env, &t);
    const struct event *rej = it_event_wait_request(env, EVENT_REJECTED, "req-c3", WAIT_MS);
    assert_string_equal(rej->reason, "at_capacity");
    assert_true(rej->has_capacity);
    assert_int_equal(rej->active_count, 2);
    assert_int_equal(rej->limit, 2);
    assert_non_null(rej->message);
    assert_null(rej->research_id);
    const char *const get[] = {"GET", "rc:request:req-c3"};
    redisReply *r = it_redis_cmd(env, 2, get);
    assert_string_equal(r->str, "rejected:at_capacity");
    freeReplyObject(r);
    assert_int_equal(it_redis_zcard(env, "rc:active"), 2);

    /* The same request again repeats the outcome with its figures and creates nothing. */
    it_send_trigger(env, &t);
    struct it_topic *events = it_events(env);
    bool twice = false;
    for (int i = 0; i < 200 && !twice; i++) {
        it_topic_poll(events, 50);
        size_t n = 0;
        for (size_t j = 0; j < it_topic_count(events); j++) {
            const struct msg *m = it_topic_msg(events, j)->decoded;
            if (m != NULL && m->u.event.type == EVENT_REJECTED &&
                strcmp(m->u.event.request_id, "req-c3") == 0) {
                assert_int_equal(m->u.event.active_count, 2);
                assert_int_equal(m->u.event.limit, 2);
                assert_string_equal(m->u.event.message,
                                    "at capacity (2 active researches, limit is 2)");
                n++;
            }
        }
        twice = n == 2;
    }
    assert_true(twice);

    /* force is accepted even at the limit. */
    struct trigger forced = {.force = true};
    char *c = trigger_ok(env, "req-c4", &forced);
    assert_int_equal(it_redis_zcard(env, "rc:active"), 3);
    free(a);
    free(b);
    free(c);
}

struct all_done {
    struct it_env *env;
    char **ids;
    size_t n;
};

static bool
all_finished(void *arg)
{
    struct all_done *a = arg;
    for (size_t i = 0; i < a->n; i++) {
        char *phase = it_research_hget(a->env, a->ids[i], "phase");
        bool done = phase != NULL && strcmp(phase, "completed") == 0;
        free(phase);
        if (!done) {
            return false;
        }
    }
    return true;
}

static void
test_flow_many_researches_at_once_each_complete_once(void **state)
{
    struct it_env *env = *state;
    enum { N = 40 };
    const char *const varied[] = {"--duration-ms", "5-60", "--seed", "7", NULL};
    it_env_start_workers(env, "design", 3, NULL, varied);
    it_env_start_workers(env, "training", 3, NULL, varied);
    it_env_start_workers(env, "backtest", 3, NULL, varied);
    it_env_start_workers(env, "assessment", 2, NULL, varied);
    const char *const extra[] = {"AGENT_MAX_CONCURRENT_RESEARCHES=100", NULL};
    it_env_start_coordinator(env, extra);
    char request[N][32];
    for (size_t i = 0; i < N; i++) {
        snprintf(request[i], sizeof(request[i]), "req-many-%02zu", i);
        struct trigger t = {.request_id = request[i], .brief = "many at once"};
        it_send_trigger(env, &t);
    }
    char *ids[N];
    for (size_t i = 0; i < N; i++) {
        const struct event *ev = it_event_wait_request(env, EVENT_ACCEPTED, request[i], WAIT_MS);
        ids[i] = strdup(ev->research_id);
    }
    struct all_done a = {.env = env, .ids = ids, .n = N};
    if (!it_wait_until(all_finished, &a, 6 * WAIT_MS)) {
        it_fail(env, "not every research completed");
    }
    for (size_t i = 0; i < N; i++) {
        /* Redis is written before the events are published: wait for each to arrive. */
        it_event_wait(env, EVENT_COMPLETED, ids[i], WAIT_MS);
        assert_int_equal(it_event_count(env, EVENT_COMPLETED, ids[i]), 1);
        assert_int_equal(it_event_count(env, EVENT_PHASE_STARTED, ids[i]), 4);
        assert_int_equal(it_event_count(env, EVENT_GATE, ids[i]), 2);
        assert_int_equal(it_event_count(env, EVENT_FAILED, ids[i]), 0);
        free(ids[i]);
    }
    assert_int_equal(it_redis_zcard(env, "rc:active"), 0);
    assert_int_equal(it_redis_zcard(env, "rc:finished"), N);
    char *stale = it_redis_hget(env, "rc:coordinator", "stale_completions");
    assert_string_equal(stale, "0");
    free(stale);
}

/* {"symbol": "BTCUSD", "tf": "1h"}, as the trigger carries it and every dispatch must. */
#define OPTIONS_MP "\x82\xa6" "symbol" "\xa6" "BTCUSD" "\xa2" "tf" "\xa2" "1h"

static void
assert_options_param(const struct dispatch *d)
{
    const struct kv *o = kv_find(d->params, d->n_params, "options");
    assert_non_null(o);
    assert_int_equal(o->val.kind, VALUE_RAW);
    assert_int_equal(o->val.raw_len, sizeof(OPTIONS_MP) - 1);
    assert_memory_equal(o->val.s, OPTIONS_MP, sizeof(OPTIONS_MP) - 1);
}

/* The trigger's options are stored with the research (as JSON) and reach every phase's
 * dispatch unchanged. */
static void
test_flow_options_reach_every_phase(void **state)
{
    struct it_env *env = *state;
    start_all_workers(env);
    it_env_start_coordinator(env, NULL);
    struct trigger t = {.options = OPTIONS_MP, .options_len = sizeof(OPTIONS_MP) - 1};
    char *id = trigger_ok(env, "req-options", &t);
    it_research_wait(env, id, "phase", "completed", WAIT_MS);
    char *json = it_research_hget(env, id, "options");
    assert_non_null(json);
    assert_string_equal(json, "{\"symbol\":\"BTCUSD\",\"tf\":\"1h\"}");
    free(json);
    static const enum worker_type types[] = {WORKER_DESIGN, WORKER_TRAINING, WORKER_BACKTEST,
                                             WORKER_ASSESSMENT};
    for (size_t i = 0; i < N_OF(types); i++) {
        assert_options_param(it_dispatch_wait(env, types[i], id, 1, WAIT_MS));
    }
    free(id);
}

/* A worker hands its dispatch back (released): the phase goes to another free worker at once
 * as attempt 2, with a `redispatched` event of reason released, and the research completes
 * even with AGENT_MAX_ATTEMPTS=1: a released attempt is not counted. */
static void
test_flow_released_dispatch_runs_elsewhere_without_an_attempt(void **state)
{
    struct it_env *env = *state;
    static const char *const slow[] = {"--duration-ms", "60000", NULL};
    it_env_start_workers(env, "design", 1, NULL, fast);
    it_env_start_workers(env, "training", 1, "slow-", slow);
    it_env_start_workers(env, "backtest", 1, NULL, fast);
    it_env_start_workers(env, "assessment", 1, NULL, fast);
    const char *const one_attempt[] = {"AGENT_MAX_ATTEMPTS=1", NULL};
    it_env_start_coordinator(env, one_attempt);
    char *id = trigger_ok(env, "req-released", NULL);
    const struct dispatch *d = it_dispatch_wait(env, WORKER_TRAINING, id, 1, WAIT_MS);
    assert_string_equal(d->worker_id, "slow-training-1");
    it_research_wait(env, id, "picked_up_at", NULL, WAIT_MS);
    /* Only now a fast training worker is there to take it. */
    it_env_start_workers(env, "training", 1, "fast-", fast);
    struct completion rel = {.dispatch_id = d->dispatch_id,
                             .research_id = id,
                             .worker_id = d->worker_id,
                             .status = COMPLETION_RELEASED};
    it_send_completion(env, &rel);
    const struct event *ev = it_event_wait(env, EVENT_REDISPATCHED, id, WAIT_MS);
    assert_string_equal(ev->reason, "released");
    assert_int_equal(ev->attempt, 2);
    assert_int_equal(ev->phase, PHASE_TRAINING);
    const struct dispatch *again = it_dispatch_wait(env, WORKER_TRAINING, id, 2, WAIT_MS);
    assert_string_equal(again->worker_id, "fast-training-1");
    it_research_wait(env, id, "phase", "completed", WAIT_MS);
    char *released = it_research_hget(env, id, "released");
    assert_non_null(released);
    assert_string_equal(released, "1");
    free(released);
    assert_int_equal(it_event_count(env, EVENT_FAILED, id), 0);
    free(id);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(
            test_flow_two_researches_complete_with_every_event_and_field, it_setup, it_teardown),
        cmocka_unit_test_setup_teardown(test_flow_a_failed_design_fails_its_research_alone,
                                        it_setup, it_teardown),
        cmocka_unit_test_setup_teardown(test_flow_queues_for_busy_training_workers, it_setup,
                                        it_teardown),
        cmocka_unit_test_setup_teardown(test_flow_failed_training_gate_assesses_without_backtest,
                                        it_setup, it_teardown),
        cmocka_unit_test_setup_teardown(test_flow_failed_backtest_gate_assesses_with_backtest,
                                        it_setup, it_teardown),
        cmocka_unit_test_setup_teardown(test_flow_bypass_gates_passes_both, it_setup, it_teardown),
        cmocka_unit_test_setup_teardown(test_flow_strategy_skips_design, it_setup, it_teardown),
        cmocka_unit_test_setup_teardown(test_flow_trigger_at_the_limit_is_rejected_with_the_counts,
                                        it_setup, it_teardown),
        cmocka_unit_test_setup_teardown(test_flow_many_researches_at_once_each_complete_once,
                                        it_setup, it_teardown),
        cmocka_unit_test_setup_teardown(test_flow_options_reach_every_phase, it_setup, it_teardown),
        cmocka_unit_test_setup_teardown(test_flow_released_dispatch_runs_elsewhere_without_an_attempt,
                                        it_setup, it_teardown),
    };
    return IT_RUN_GROUP("flow", tests);
}
