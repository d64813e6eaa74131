/* SPDX-License-Identifier: MIT
 * test_machine: the research state machine (contract §1, §3-§5) driven step by step as the
 * loop drives it: plan a change, apply it to the mirror, look at what it publishes (decoded
 * with msg_decode, as a worker or an event reader would). Covers acceptance and rejection,
 * every phase move, waiting for workers, stale and failed completions, bad results, both
 * gates (pass, fail, bypass) and completion. */
#include "tests/support/test.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/cfg.h"
#include "contract/phase.h"
#include "coordinator/change.h"
#include "coordinator/machine.h"
#include "coordinator/research.h"
#include "coordinator/workers.h"
#include "proto/msg.h"
#include "proto/value.h"

#define RID "rs_01HZZZTESTRESEARCH0000001"

/* ---- fixture: a cfg with the contract's gate defaults, a worker pool, one mirrored research */

struct fx {
    struct cfg cfg;
    struct workers *workers;
    struct research *r; /* the mirror: every planned change is applied to it */
    int64_t now_ms;
};

static int
setup(void **state)
{
    struct fx *f = calloc(1, sizeof(*f));
    assert_non_null(f);
    f->cfg.gates = (struct cfg_gates){
        .training_min_accuracy = 0.10,
        .training_max_loss = 0.8,
        .training_min_loss_decrease = -0.5,
        .training_min_directional_accuracy = 0.50,
        .backtest_min_win_rate = 0.10,
        .backtest_max_drawdown = 0.4,
        .backtest_min_sharpe = -0.5,
        .backtest_min_net_return = 0.0,
        .backtest_min_trades = 5,
    };
    f->cfg.agent.max_attempts = 3;
    f->cfg.agent.dispatch_timeout_ms = 60000;
    f->cfg.agent.worker_timeout_ms = 15000;
    f->workers = workers_new();
    f->now_ms = 1700000000000LL;
    *state = f;
    return 0;
}

static int
teardown(void **state)
{
    struct fx *f = *state;
    workers_free(f->workers);
    research_free(f->r);
    free(f);
    return 0;
}

static struct machine_ctx
ctx_of(struct fx *f)
{
    return (struct machine_ctx){.cfg = &f->cfg, .now_ms = f->now_ms, .workers = f->workers};
}

static char *
dup_str(const char *s)
{
    size_t n = strlen(s) + 1;
    char *c = malloc(n);
    assert_non_null(c);
    memcpy(c, s, n);
    return c;
}

/* Start a cycle whose only live, idle workers are the given ones ("d1" of type design...). */
struct offer {
    const char *id;
    enum worker_type type;
};

static void
cycle(struct fx *f, const struct offer *offers, size_t n)
{
    struct worker_beat *beats = n > 0 ? calloc(n, sizeof(*beats)) : NULL;
    for (size_t i = 0; i < n; i++) {
        beats[i].id = dup_str(offers[i].id);
        beats[i].type = offers[i].type;
        beats[i].idle = true;
        beats[i].last_seen_ms = f->now_ms;
    }
    workers_begin(f->workers, beats, n, f->now_ms, f->cfg.agent.worker_timeout_ms);
}

static void
cycle_one(struct fx *f, const char *id, enum worker_type type)
{
    const struct offer o = {id, type};
    cycle(f, &o, 1);
}

static void
cycle_none(struct fx *f)
{
    cycle(f, NULL, 0);
}

static void
apply(struct fx *f, const struct change *c)
{
    if (f->r == NULL) {
        f->r = research_new();
    }
    change_apply(c, f->r);
}

static const char *
field(const struct fx *f, enum research_field rf)
{
    return research_get(f->r, rf);
}

/* The change's planned value of `rf`; fails when the change does not touch it. */
static const char *
planned(const struct change *c, enum research_field rf)
{
    if (!c->set[rf]) {
        fail_msg("field %s not set by the change", research_field_name(rf));
    }
    return c->value[rf];
}

static void
assert_planned(const struct change *c, enum research_field rf, const char *want)
{
    const char *got = planned(c, rf);
    if (want == NULL ? got != NULL : (got == NULL || strcmp(got, want) != 0)) {
        fail_msg("field %s: \"%s\", want \"%s\"", research_field_name(rf),
                 got != NULL ? got : "(clear)", want != NULL ? want : "(clear)");
    }
}

static void
assert_planned_int(const struct change *c, enum research_field rf, int64_t want)
{
    char text[32];
    snprintf(text, sizeof(text), "%lld", (long long)want);
    assert_planned(c, rf, text);
}

static size_t
count_set(const struct change *c)
{
    size_t n = 0;
    for (int i = 0; i < RF_COUNT; i++) {
        n += c->set[i];
    }
    return n;
}

/* ---- decoding what a change publishes ---- */

static enum msg_topic
msg_topic_of(enum topic t)
{
    switch (t) {
    case TOPIC_EVENTS:
        return MSG_TOPIC_EVENTS;
    case TOPIC_DISPATCH_DESIGN:
    case TOPIC_DISPATCH_TRAINING:
    case TOPIC_DISPATCH_BACKTEST:
    case TOPIC_DISPATCH_ASSESSMENT:
        return MSG_TOPIC_DISPATCH;
    default:
        fail_msg("the machine published on topic %d", (int)t);
    }
    return MSG_TOPIC_EVENTS;
}

static void
decode_out(const struct change *c, size_t i, struct msg *m)
{
    assert_true(i < c->n_out);
    struct rc_err err = RC_ERR_INIT;
    const struct outmsg *o = &c->out[i];
    if (msg_decode(msg_topic_of(o->topic), o->payload, o->len, m, &err) != RC_OK) {
        fail_msg("message %zu on topic %d does not decode: %s", i, (int)o->topic, err.msg);
    }
}

/* Every published message decodes, and there are exactly `n`. */
static void
assert_n_out(const struct change *c, size_t n)
{
    if (c->n_out != n) {
        fail_msg("%zu messages published, want %zu", c->n_out, n);
    }
    for (size_t i = 0; i < c->n_out; i++) {
        struct msg m = MSG_INIT;
        decode_out(c, i, &m);
        msg_release(&m);
    }
}

/* The one event of `type` in the change (decoded into m, keyed `key`, stamped now). */
static void
find_event(const struct fx *f, const struct change *c, enum event_type type, const char *key,
           struct msg *out)
{
    size_t found = 0;
    for (size_t i = 0; i < c->n_out; i++) {
        if (c->out[i].topic != TOPIC_EVENTS) {
            continue;
        }
        struct msg m = MSG_INIT;
        decode_out(c, i, &m);
        assert_int_equal(m.kind, MSG_EVENT);
        if (m.u.event.type == type) {
            if (found++ == 0) {
                assert_non_null(c->out[i].key);
                assert_int_equal(c->out[i].key_len, strlen(key));
                assert_string_equal(c->out[i].key, key);
                assert_int_equal(m.ts_ms, f->now_ms);
                *out = m;
                continue;
            }
        }
        msg_release(&m);
    }
    if (found != 1) {
        fail_msg("%zu %s events, want 1", found, event_type_name(type));
    }
}

static bool
has_event(const struct change *c, enum event_type type)
{
    for (size_t i = 0; i < c->n_out; i++) {
        if (c->out[i].topic != TOPIC_EVENTS) {
            continue;
        }
        struct msg m = MSG_INIT;
        decode_out(c, i, &m);
        bool is = m.u.event.type == type;
        msg_release(&m);
        if (is) {
            return true;
        }
    }
    return false;
}

/* The one dispatch in the change: on `topic`, keyed by its worker id. */
static void
find_dispatch(const struct fx *f, const struct change *c, enum topic topic, struct msg *out)
{
    size_t found = 0;
    for (size_t i = 0; i < c->n_out; i++) {
        if (c->out[i].topic == TOPIC_EVENTS) {
            continue;
        }
        assert_int_equal(c->out[i].topic, topic);
        struct msg m = MSG_INIT;
        decode_out(c, i, &m);
        assert_int_equal(m.kind, MSG_DISPATCH);
        assert_non_null(c->out[i].key);
        assert_int_equal(c->out[i].key_len, strlen(m.u.dispatch.worker_id));
        assert_string_equal(c->out[i].key, m.u.dispatch.worker_id);
        assert_int_equal(m.ts_ms, f->now_ms);
        if (found++ == 0) {
            *out = m;
        } else {
            msg_release(&m);
        }
    }
    if (found != 1) {
        fail_msg("%zu dispatches, want 1", found);
    }
}

/* The params of a dispatch are exactly `keys`, in any order. */
static void
assert_param_keys(const struct dispatch *d, const char *const *keys, size_t n)
{
    if (d->n_params != n) {
        fail_msg("%zu params, want %zu", d->n_params, n);
    }
    for (size_t i = 0; i < n; i++) {
        if (kv_find(d->params, d->n_params, keys[i]) == NULL) {
            fail_msg("param %s missing", keys[i]);
        }
    }
}

static const struct value *
param(const struct dispatch *d, const char *key)
{
    const struct kv *e = kv_find(d->params, d->n_params, key);
    if (e == NULL) {
        fail_msg("param %s missing", key);
    }
    return &e->val;
}

static void
assert_param_str(const struct dispatch *d, const char *key, const char *want)
{
    const struct value *v = param(d, key);
    if (want == NULL) {
        if (v->kind != VALUE_NIL) {
            fail_msg("param %s: kind %d, want nil", key, (int)v->kind);
        }
        return;
    }
    if (v->kind != VALUE_STR || strcmp(v->s, want) != 0) {
        fail_msg("param %s: want \"%s\"", key, want);
    }
}

static double
map_number(const struct value *map, const char *key)
{
    assert_int_equal(map->kind, VALUE_MAP);
    const struct kv *e = kv_find(map->map, map->map_len, key);
    if (e == NULL) {
        fail_msg("map key %s missing", key);
    }
    double d = 0;
    if (!value_number(&e->val, &d)) {
        fail_msg("map key %s: not a number", key);
    }
    return d;
}

/* ---- driving a research ---- */

static const struct trigger plain_trigger = {
    .request_id = "req-1",
    .brief = "find a mean-reversion edge",
};

static void
accept(struct fx *f, const struct trigger *t)
{
    struct machine_ctx ctx = ctx_of(f);
    struct change c = CHANGE_INIT;
    machine_accept(&ctx, t, RID, &c);
    apply(f, &c);
    change_release(&c);
}

/* One cycle with `worker` of `wt` free; the change is applied and handed back. */
static void
advance_with(struct fx *f, const char *worker, enum worker_type wt, struct change *c)
{
    f->now_ms += 1000;
    if (worker != NULL) {
        cycle_one(f, worker, wt);
    } else {
        cycle_none(f);
    }
    struct machine_ctx ctx = ctx_of(f);
    machine_advance(&ctx, f->r, c);
    apply(f, c);
}

static void
advance_ok(struct fx *f, const char *worker, enum worker_type wt)
{
    struct change c = CHANGE_INIT;
    advance_with(f, worker, wt, &c);
    if (!c.set[RF_DISPATCH_ID]) {
        fail_msg("no dispatch to %s", worker);
    }
    change_release(&c);
}

/* A completion of the research's current dispatch. */
static struct completion
completion_of(const struct fx *f, bool ok, const struct kv *result, size_t n)
{
    return (struct completion){
        .dispatch_id = field(f, RF_DISPATCH_ID),
        .research_id = RID,
        .worker_id = field(f, RF_WORKER_ID),
        .status = ok ? COMPLETION_COMPLETED : COMPLETION_FAILED,
        .result = result,
        .n_result = n,
    };
}

static void
complete_with(struct fx *f, const struct kv *result, size_t n, struct change *c)
{
    f->now_ms += 1000;
    struct completion comp = completion_of(f, true, result, n);
    struct machine_ctx ctx = ctx_of(f);
    assert_int_equal(machine_complete(&ctx, f->r, &comp, c), MACHINE_APPLIED);
    apply(f, c);
}

static void
complete_ok(struct fx *f, const struct kv *result, size_t n)
{
    struct change c = CHANGE_INIT;
    complete_with(f, result, n, &c);
    change_release(&c);
}

static const struct kv design_result[] = {
    {"strategy_name", {.kind = VALUE_STR, .s = "meanrev_v1"}},
    {"strategy_path", {.kind = VALUE_STR, .s = "/strategies/meanrev_v1.py"}},
    {"input_tokens", {.kind = VALUE_INT, .i = 1200}},
    {"output_tokens", {.kind = VALUE_INT, .i = 800}},
    {"cost_usd", {.kind = VALUE_FLOAT, .f = 0.25}},
    {"unknown_key", {.kind = VALUE_STR, .s = "ignored"}},
};

static const struct kv training_good[] = {
    {"accuracy", {.kind = VALUE_FLOAT, .f = 0.61}},
    {"final_loss", {.kind = VALUE_FLOAT, .f = 0.3}},
    {"initial_loss", {.kind = VALUE_FLOAT, .f = 0.9}},
    {"model_path", {.kind = VALUE_STR, .s = "/models/m1"}},
};

static const struct kv training_bad[] = {
    {"accuracy", {.kind = VALUE_FLOAT, .f = 0.05}},
    {"final_loss", {.kind = VALUE_FLOAT, .f = 0.5}},
    {"model_path", {.kind = VALUE_STR, .s = "/models/m1"}},
};

static const struct kv backtest_good[] = {
    {"win_rate", {.kind = VALUE_FLOAT, .f = 0.55}},
    {"max_drawdown", {.kind = VALUE_FLOAT, .f = 0.2}},
    {"sharpe_ratio", {.kind = VALUE_FLOAT, .f = 1.5}},
    {"total_trades", {.kind = VALUE_INT, .i = 42}},
};

static const struct kv backtest_bad[] = {
    {"win_rate", {.kind = VALUE_FLOAT, .f = 0.05}},
    {"max_drawdown", {.kind = VALUE_FLOAT, .f = 0.2}},
    {"sharpe_ratio", {.kind = VALUE_FLOAT, .f = 1.5}},
    {"total_trades", {.kind = VALUE_INT, .i = 42}},
};

static const struct kv assessment_result[] = {
    {"verdict", {.kind = VALUE_STR, .s = "promising"}},
    {"input_tokens", {.kind = VALUE_INT, .i = 10}},
};

/* Accepted, designed and trained with `training`: the research waits for a backtest. */
static void
drive_through_training(struct fx *f, const struct trigger *t, const struct kv *training,
                       size_t n_training)
{
    accept(f, t);
    advance_ok(f, "d1", WORKER_DESIGN);
    complete_ok(f, design_result, N_OF(design_result));
    advance_ok(f, "t1", WORKER_TRAINING);
    complete_ok(f, training, n_training);
}

/* ---- acceptance and rejection ---- */

static void
test_machine_accept_creates_pending_research(void **state)
{
    struct fx *f = *state;
    struct machine_ctx ctx = ctx_of(f);
    struct change c = CHANGE_INIT;
    machine_accept(&ctx, &plain_trigger, RID, &c);

    assert_int_equal(c.kind, CHANGE_CREATE);
    assert_string_equal(c.research_id, RID);
    assert_int_equal(c.score, f->now_ms);
    assert_planned(&c, RF_RESEARCH_ID, RID);
    assert_planned(&c, RF_REQUEST_ID, "req-1");
    assert_planned(&c, RF_STATUS, "running");
    assert_planned(&c, RF_PHASE, "pending");
    assert_planned(&c, RF_BRIEF, "find a mean-reversion edge");
    assert_planned(&c, RF_BYPASS_GATES, "0");
    assert_planned_int(&c, RF_CREATED_AT, f->now_ms);
    assert_planned_int(&c, RF_UPDATED_AT, f->now_ms);
    assert_false(c.set[RF_MODEL] && c.value[RF_MODEL] != NULL);
    assert_false(c.set[RF_STRATEGY_NAME] && c.value[RF_STRATEGY_NAME] != NULL);
    assert_false(c.set[RF_DISPATCH_ID] && c.value[RF_DISPATCH_ID] != NULL);
    assert_false(c.set[RF_CHILD_STATUS] && c.value[RF_CHILD_STATUS] != NULL);
    /* the request's outcome is remembered: the research id */
    assert_string_equal(c.request_id, "req-1");
    assert_string_equal(c.request_value, RID);
    assert_false(c.figures.has_capacity);
    assert_false(c.figures.has_budget);

    assert_n_out(&c, 1);
    struct msg m = MSG_INIT;
    find_event(f, &c, EVENT_ACCEPTED, RID, &m);
    assert_string_equal(m.u.event.research_id, RID);
    assert_string_equal(m.u.event.request_id, "req-1");
    msg_release(&m);
    change_release(&c);
}

static void
test_machine_accept_keeps_trigger_options(void **state)
{
    struct fx *f = *state;
    const struct trigger t = {
        .request_id = "req-2",
        .brief = "b",
        .model = "claude-opus-4-5",
        .strategy = "given_strategy",
        .strategy_path = "/s/given.py",
        .bypass_gates = true,
        .force = true,
    };
    struct machine_ctx ctx = ctx_of(f);
    struct change c = CHANGE_INIT;
    machine_accept(&ctx, &t, RID, &c);
    assert_planned(&c, RF_MODEL, "claude-opus-4-5");
    assert_planned(&c, RF_STRATEGY_NAME, "given_strategy");
    assert_planned(&c, RF_STRATEGY_PATH, "/s/given.py");
    assert_planned(&c, RF_BYPASS_GATES, "1");
    assert_planned(&c, RF_PHASE, "pending");
    assert_false(c.set[RF_OPTIONS]); /* none given */
    change_release(&c);
}

static void
test_machine_reject_at_capacity(void **state)
{
    struct fx *f = *state;
    struct machine_ctx ctx = ctx_of(f);
    struct change c = CHANGE_INIT;
    machine_reject_capacity(&ctx, "req-9", 4, 3, &c);

    assert_int_equal(c.kind, CHANGE_NOTE);
    assert_null(c.research_id);
    assert_int_equal(count_set(&c), 0); /* no research is touched */
    assert_string_equal(c.request_id, "req-9");
    assert_string_equal(c.request_value, "rejected:at_capacity");
    assert_true(c.figures.has_capacity);
    assert_int_equal(c.figures.active_count, 4);
    assert_int_equal(c.figures.limit, 3);
    assert_false(c.figures.has_budget);

    assert_n_out(&c, 1);
    struct msg m = MSG_INIT;
    find_event(f, &c, EVENT_REJECTED, "req-9", &m);
    assert_null(m.u.event.research_id);
    assert_string_equal(m.u.event.request_id, "req-9");
    assert_string_equal(m.u.event.reason, "at_capacity");
    assert_non_null(m.u.event.message);
    assert_true(m.u.event.has_capacity);
    assert_int_equal(m.u.event.active_count, 4);
    assert_int_equal(m.u.event.limit, 3);
    assert_false(m.u.event.has_budget);
    msg_release(&m);
    change_release(&c);
}

static void
test_machine_reject_invalid_is_not_remembered(void **state)
{
    struct fx *f = *state;
    struct machine_ctx ctx = ctx_of(f);
    struct change c = CHANGE_INIT;
    machine_reject_invalid(&ctx, "req-bad", "brief: required", &c);
    assert_int_equal(c.kind, CHANGE_NOTE);
    assert_null(c.research_id);
    assert_null(c.request_id); /* not stored under rc:request: */
    assert_int_equal(count_set(&c), 0);
    assert_n_out(&c, 1);
    struct msg m = MSG_INIT;
    find_event(f, &c, EVENT_REJECTED, "req-bad", &m);
    assert_string_equal(m.u.event.reason, "invalid");
    assert_string_equal(m.u.event.message, "brief: required");
    assert_false(m.u.event.has_capacity);
    msg_release(&m);
    change_release(&c);
}

/* ---- advancing ---- */

static void
test_machine_advance_pending_to_designing(void **state)
{
    struct fx *f = *state;
    accept(f, &plain_trigger);
    /* first a cycle without a free worker, so waiting_since is set and must be cleared */
    struct change c = CHANGE_INIT;
    advance_with(f, NULL, WORKER_DESIGN, &c);
    change_release(&c);
    assert_non_null(field(f, RF_WAITING_SINCE));

    advance_with(f, "d1", WORKER_DESIGN, &c);
    assert_int_equal(c.kind, CHANGE_UPDATE);
    assert_string_equal(c.research_id, RID);
    assert_planned(&c, RF_PHASE, "designing");
    assert_planned(&c, RF_WORKER_ID, "d1");
    assert_planned(&c, RF_ATTEMPT, "1");
    assert_planned(&c, RF_CHILD_STATUS, "dispatched");
    assert_planned(&c, RF_WAITING_SINCE, NULL);
    assert_planned_int(&c, RF_PHASE_STARTED_AT, f->now_ms);
    assert_planned_int(&c, RF_DISPATCHED_AT, f->now_ms);
    assert_planned_int(&c, RF_UPDATED_AT, f->now_ms);
    const char *dispatch_id = planned(&c, RF_DISPATCH_ID);
    assert_non_null(dispatch_id);
    assert_null(field(f, RF_WAITING_SINCE));
    assert_string_equal(field(f, RF_STATUS), "running");

    assert_n_out(&c, 2);
    struct msg d = MSG_INIT;
    find_dispatch(f, &c, TOPIC_DISPATCH_DESIGN, &d);
    assert_string_equal(d.u.dispatch.dispatch_id, dispatch_id);
    assert_string_equal(d.u.dispatch.research_id, RID);
    assert_string_equal(d.u.dispatch.worker_id, "d1");
    assert_int_equal(d.u.dispatch.phase, PHASE_DESIGNING);
    assert_int_equal(d.u.dispatch.worker_type, WORKER_DESIGN);
    assert_int_equal(d.u.dispatch.attempt, 1);
    static const char *const keys[] = {"brief", "model", PARAM_OPTIONS};
    assert_param_keys(&d.u.dispatch, keys, N_OF(keys));
    assert_param_str(&d.u.dispatch, "brief", "find a mean-reversion edge");
    assert_param_str(&d.u.dispatch, "model", NULL); /* present, nil */
    assert_int_equal(param(&d.u.dispatch, PARAM_OPTIONS)->kind, VALUE_NIL); /* none given */
    msg_release(&d);

    struct msg e = MSG_INIT;
    find_event(f, &c, EVENT_PHASE_STARTED, RID, &e);
    assert_string_equal(e.u.event.research_id, RID);
    assert_int_equal(e.u.event.phase, PHASE_DESIGNING);
    assert_string_equal(e.u.event.dispatch_id, dispatch_id);
    assert_int_equal(e.u.event.attempt, 1);
    msg_release(&e);
    change_release(&c);

    assert_true(machine_holds_worker(f->r));
    /* dispatched to a live worker: the next cycle has nothing to do, even with one free */
    const struct offer both[] = {{"d1", WORKER_DESIGN}, {"d2", WORKER_DESIGN}};
    f->now_ms += 1000;
    cycle(f, both, 2);
    struct machine_ctx ctx = ctx_of(f);
    machine_advance(&ctx, f->r, &c);
    assert_true(change_is_empty(&c));
    change_release(&c);
}

static void
test_machine_design_params_carry_model(void **state)
{
    struct fx *f = *state;
    struct trigger t = plain_trigger;
    t.model = "claude-haiku-4-5";
    accept(f, &t);
    struct change c = CHANGE_INIT;
    advance_with(f, "d1", WORKER_DESIGN, &c);
    struct msg d = MSG_INIT;
    find_dispatch(f, &c, TOPIC_DISPATCH_DESIGN, &d);
    assert_param_str(&d.u.dispatch, "model", "claude-haiku-4-5");
    msg_release(&d);
    change_release(&c);
}

static void
test_machine_pending_with_strategy_starts_training(void **state)
{
    struct fx *f = *state;
    struct trigger t = plain_trigger;
    t.strategy = "given_strategy";
    t.strategy_path = "/s/given.py";
    accept(f, &t);

    f->now_ms += 1000;
    const struct offer both[] = {{"d1", WORKER_DESIGN}, {"t1", WORKER_TRAINING}};
    cycle(f, both, N_OF(both));
    struct machine_ctx ctx = ctx_of(f);
    struct change c = CHANGE_INIT;
    machine_advance(&ctx, f->r, &c);
    apply(f, &c);
    assert_planned(&c, RF_PHASE, "training");
    assert_planned(&c, RF_WORKER_ID, "t1");
    assert_n_out(&c, 2);
    struct msg d = MSG_INIT;
    find_dispatch(f, &c, TOPIC_DISPATCH_TRAINING, &d);
    assert_int_equal(d.u.dispatch.phase, PHASE_TRAINING);
    assert_int_equal(d.u.dispatch.worker_type, WORKER_TRAINING);
    static const char *const keys[] = {"strategy_name", "strategy_path", PARAM_OPTIONS};
    assert_param_keys(&d.u.dispatch, keys, N_OF(keys));
    assert_param_str(&d.u.dispatch, "strategy_name", "given_strategy");
    assert_param_str(&d.u.dispatch, "strategy_path", "/s/given.py");
    msg_release(&d);
    struct msg e = MSG_INIT;
    find_event(f, &c, EVENT_PHASE_STARTED, RID, &e);
    assert_int_equal(e.u.event.phase, PHASE_TRAINING);
    msg_release(&e);
    change_release(&c);
    /* the design worker is still free */
    assert_non_null(workers_take(f->workers, WORKER_DESIGN, f->now_ms));
}

static void
test_machine_waiting_since_set_once(void **state)
{
    struct fx *f = *state;
    accept(f, &plain_trigger);
    struct change c = CHANGE_INIT;
    /* a free worker of another type does not help */
    advance_with(f, "t1", WORKER_TRAINING, &c);
    const int64_t first = f->now_ms;
    assert_int_equal(c.kind, CHANGE_UPDATE);
    assert_planned_int(&c, RF_WAITING_SINCE, first);
    assert_false(c.set[RF_PHASE]);
    assert_false(c.set[RF_DISPATCH_ID]);
    assert_int_equal(c.n_out, 0);
    change_release(&c);
    assert_string_equal(field(f, RF_PHASE), "pending");

    advance_with(f, NULL, WORKER_DESIGN, &c);
    assert_true(change_is_empty(&c)); /* not rewritten */
    change_release(&c);
    assert_int_equal(research_int(f->r, RF_WAITING_SINCE), first);

    /* waiting with a finished result: designed, no training worker */
    advance_ok(f, "d1", WORKER_DESIGN);
    assert_null(field(f, RF_WAITING_SINCE));
    complete_ok(f, design_result, N_OF(design_result));
    advance_with(f, NULL, WORKER_TRAINING, &c);
    const int64_t second = f->now_ms;
    assert_planned_int(&c, RF_WAITING_SINCE, second);
    change_release(&c);
    assert_string_equal(field(f, RF_PHASE), "designing");
    assert_string_equal(field(f, RF_CHILD_STATUS), "completed");
    assert_string_equal(field(f, RF_STRATEGY_NAME), "meanrev_v1");
    advance_with(f, NULL, WORKER_TRAINING, &c);
    assert_true(change_is_empty(&c));
    change_release(&c);
    advance_ok(f, "t1", WORKER_TRAINING);
    assert_string_equal(field(f, RF_PHASE), "training");
    assert_null(field(f, RF_WAITING_SINCE));
}

/* First come, first served: the older research gets the one free worker. */
static void
test_machine_one_worker_goes_to_first_asked(void **state)
{
    struct fx *f = *state;
    struct research *old = research_new(), *young = research_new();
    research_set(old, RF_RESEARCH_ID, "rs_old");
    research_set(young, RF_RESEARCH_ID, "rs_young");
    struct research *both[] = {old, young};
    for (size_t i = 0; i < 2; i++) {
        research_set(both[i], RF_STATUS, "running");
        research_set(both[i], RF_PHASE, "pending");
        research_set(both[i], RF_BRIEF, "b");
    }
    cycle_one(f, "d1", WORKER_DESIGN);
    struct machine_ctx ctx = ctx_of(f);
    struct change a = CHANGE_INIT, b = CHANGE_INIT;
    machine_advance(&ctx, old, &a);
    machine_advance(&ctx, young, &b);
    assert_planned(&a, RF_WORKER_ID, "d1");
    assert_false(b.set[RF_DISPATCH_ID]);
    assert_planned_int(&b, RF_WAITING_SINCE, f->now_ms);
    change_release(&a);
    change_release(&b);
    research_free(old);
    research_free(young);
}

/* Dispatch ids differ between researches and between phases of one research. */
static void
test_machine_dispatch_ids_unique(void **state)
{
    struct fx *f = *state;
    accept(f, &plain_trigger);
    advance_ok(f, "d1", WORKER_DESIGN);
    char design_id[LIMITS_ID_MAX + 1];
    snprintf(design_id, sizeof(design_id), "%s", field(f, RF_DISPATCH_ID));
    assert_true(limits_is_id(design_id, strlen(design_id)));
    complete_ok(f, design_result, N_OF(design_result));
    advance_ok(f, "t1", WORKER_TRAINING);
    assert_string_not_equal(field(f, RF_DISPATCH_ID), design_id);
    assert_true(limits_is_id(field(f, RF_DISPATCH_ID), strlen(field(f, RF_DISPATCH_ID))));
}

/* ---- completions ---- */

static void
test_machine_complete_stale(void **state)
{
    struct fx *f = *state;
    accept(f, &plain_trigger);
    struct machine_ctx ctx = ctx_of(f);
    struct change c = CHANGE_INIT;
    const struct completion early = {.dispatch_id = "x",
                                     .research_id = RID,
                                     .worker_id = "d1",
                                     .status = COMPLETION_COMPLETED,
                                     .result = design_result,
                                     .n_result = N_OF(design_result)};
    /* pending: nothing was dispatched */
    assert_int_equal(machine_complete(&ctx, f->r, &early, &c), MACHINE_STALE);
    assert_true(change_is_empty(&c));
    assert_int_equal(c.n_out, 0);

    advance_ok(f, "d1", WORKER_DESIGN);
    ctx = ctx_of(f);
    const char *dispatch_id = field(f, RF_DISPATCH_ID);
    static const struct {
        const char *name;
        const char *dispatch_id; /* NULL: the current one */
        const char *worker_id;   /* NULL: the one it was sent to */
        bool unknown_research;
    } cases[] = {
        {"wrong dispatch_id", "rs_other:designing:1", NULL, false},
        {"wrong worker_id", NULL, "d2", false},
        {"unknown research", NULL, NULL, true},
    };
    for (size_t i = 0; i < N_OF(cases); i++) {
        struct completion comp = completion_of(f, true, design_result, N_OF(design_result));
        if (cases[i].dispatch_id != NULL) {
            comp.dispatch_id = cases[i].dispatch_id;
        }
        if (cases[i].worker_id != NULL) {
            comp.worker_id = cases[i].worker_id;
        }
        const struct research *r = cases[i].unknown_research ? NULL : f->r;
        if (machine_complete(&ctx, r, &comp, &c) != MACHINE_STALE) {
            fail_msg("case %s: not stale", cases[i].name);
        }
        if (!change_is_empty(&c) || c.n_out != 0) {
            fail_msg("case %s: planned a change", cases[i].name);
        }
    }
    /* a failed answer from the wrong worker is stale too */
    struct completion failed = completion_of(f, false, NULL, 0);
    failed.worker_id = "d9";
    assert_int_equal(machine_complete(&ctx, f->r, &failed, &c), MACHINE_STALE);

    /* the right answer applies once; the duplicate is stale (not dispatched any more) */
    struct completion comp = completion_of(f, true, design_result, N_OF(design_result));
    char dup_dispatch[LIMITS_ID_MAX + 1], dup_worker[LIMITS_ID_MAX + 1];
    snprintf(dup_dispatch, sizeof(dup_dispatch), "%s", dispatch_id);
    snprintf(dup_worker, sizeof(dup_worker), "%s", comp.worker_id);
    comp.dispatch_id = dup_dispatch;
    comp.worker_id = dup_worker;
    assert_int_equal(machine_complete(&ctx, f->r, &comp, &c), MACHINE_APPLIED);
    apply(f, &c);
    change_release(&c);
    assert_int_equal(machine_complete(&ctx, f->r, &comp, &c), MACHINE_STALE);
    assert_true(change_is_empty(&c));
    assert_false(machine_holds_worker(f->r));
}

static void
test_machine_complete_failed_fails_research(void **state)
{
    struct fx *f = *state;
    accept(f, &plain_trigger);
    advance_ok(f, "d1", WORKER_DESIGN);
    f->now_ms += 1000;
    struct machine_ctx ctx = ctx_of(f);
    struct completion comp = completion_of(f, false, NULL, 0);
    comp.error = "out of memory on the worker";
    struct change c = CHANGE_INIT;
    assert_int_equal(machine_complete(&ctx, f->r, &comp, &c), MACHINE_APPLIED);
    assert_int_equal(c.kind, CHANGE_FINISH);
    assert_string_equal(c.research_id, RID);
    assert_int_equal(c.score, f->now_ms);
    assert_planned(&c, RF_STATUS, "failed");
    assert_planned(&c, RF_PHASE, "failed");
    assert_planned(&c, RF_LAST_PHASE, "designing");
    assert_planned(&c, RF_ERROR, "out of memory on the worker");
    assert_planned(&c, RF_CHILD_STATUS, "failed");
    assert_planned_int(&c, RF_FINISHED_AT, f->now_ms);
    assert_planned_int(&c, RF_UPDATED_AT, f->now_ms);
    assert_n_out(&c, 1);
    struct msg e = MSG_INIT;
    find_event(f, &c, EVENT_FAILED, RID, &e);
    assert_int_equal(e.u.event.phase, PHASE_DESIGNING);
    assert_string_equal(e.u.event.error, "out of memory on the worker");
    msg_release(&e);
    apply(f, &c);
    change_release(&c);
    assert_false(machine_holds_worker(f->r));
    /* finished: no more steps, later answers are stale */
    advance_with(f, "d1", WORKER_DESIGN, &c);
    assert_true(change_is_empty(&c));
    change_release(&c);
    assert_int_equal(machine_complete(&ctx, f->r, &comp, &c), MACHINE_STALE);
}

static void
test_machine_complete_failed_without_error_says_why(void **state)
{
    struct fx *f = *state;
    accept(f, &plain_trigger);
    advance_ok(f, "d1", WORKER_DESIGN);
    struct machine_ctx ctx = ctx_of(f);
    struct completion comp = completion_of(f, false, NULL, 0);
    struct change c = CHANGE_INIT;
    assert_int_equal(machine_complete(&ctx, f->r, &comp, &c), MACHINE_APPLIED);
    assert_int_equal(c.kind, CHANGE_FINISH);
    assert_non_null(planned(&c, RF_ERROR)); /* never an empty error */
    struct msg e = MSG_INIT;
    find_event(f, &c, EVENT_FAILED, RID, &e);
    assert_non_null(e.u.event.error);
    msg_release(&e);
    change_release(&c);
}

static void
test_machine_bad_result_fails_research(void **state)
{
    struct fx *f = *state;
    static const struct kv no_name[] = {
        {"strategy_path", {.kind = VALUE_STR, .s = "/s/x.py"}},
    };
    accept(f, &plain_trigger);
    advance_ok(f, "d1", WORKER_DESIGN);
    struct machine_ctx ctx = ctx_of(f);
    struct completion comp = completion_of(f, true, no_name, N_OF(no_name));
    struct change c = CHANGE_INIT;
    assert_int_equal(machine_complete(&ctx, f->r, &comp, &c), MACHINE_APPLIED);
    assert_int_equal(c.kind, CHANGE_FINISH);
    assert_planned(&c, RF_STATUS, "failed");
    assert_planned(&c, RF_LAST_PHASE, "designing");
    const char *error = planned(&c, RF_ERROR);
    assert_non_null(error);
    assert_memory_equal(error, "bad result: ", 12);
    assert_non_null(strstr(error, "strategy_name"));
    /* nothing of the bad result is stored */
    assert_false(c.set[RF_STRATEGY_PATH]);
    struct msg e = MSG_INIT;
    find_event(f, &c, EVENT_FAILED, RID, &e);
    assert_string_equal(e.u.event.error, error);
    msg_release(&e);
    change_release(&c);
}

static void
test_machine_bad_training_number_fails_research(void **state)
{
    struct fx *f = *state;
    static const struct kv text_number[] = {
        {"accuracy", {.kind = VALUE_STR, .s = "high"}},
        {"final_loss", {.kind = VALUE_FLOAT, .f = 0.3}},
    };
    accept(f, &plain_trigger);
    advance_ok(f, "d1", WORKER_DESIGN);
    complete_ok(f, design_result, N_OF(design_result));
    advance_ok(f, "t1", WORKER_TRAINING);
    struct change c = CHANGE_INIT;
    complete_with(f, text_number, N_OF(text_number), &c);
    assert_int_equal(c.kind, CHANGE_FINISH);
    assert_planned(&c, RF_LAST_PHASE, "training");
    assert_memory_equal(planned(&c, RF_ERROR), "bad result: ", 12);
    assert_non_null(strstr(planned(&c, RF_ERROR), "accuracy"));
    assert_false(has_event(&c, EVENT_GATE));
    change_release(&c);
}

static void
test_machine_design_completion_stores_result(void **state)
{
    struct fx *f = *state;
    accept(f, &plain_trigger);
    advance_ok(f, "d1", WORKER_DESIGN);
    struct change c = CHANGE_INIT;
    complete_with(f, design_result, N_OF(design_result), &c);
    assert_int_equal(c.kind, CHANGE_UPDATE);
    assert_planned(&c, RF_CHILD_STATUS, "completed");
    assert_planned_int(&c, RF_UPDATED_AT, f->now_ms);
    assert_planned(&c, (enum research_field)research_field_parse("design.strategy_name"),
                   "meanrev_v1");
    assert_planned(&c, (enum research_field)research_field_parse("design.strategy_path"),
                   "/strategies/meanrev_v1.py");
    assert_planned(&c, (enum research_field)research_field_parse("design.input_tokens"), "1200");
    assert_planned(&c, (enum research_field)research_field_parse("design.output_tokens"), "800");
    assert_planned(&c, (enum research_field)research_field_parse("design.cost_usd"), "0.25");
    assert_false(c.set[research_field_parse("design.model")]); /* absent in the result */
    assert_planned(&c, RF_STRATEGY_NAME, "meanrev_v1");
    assert_planned(&c, RF_STRATEGY_PATH, "/strategies/meanrev_v1.py");
    assert_false(c.set[RF_PHASE]); /* the move is the next cycle's */
    assert_false(has_event(&c, EVENT_GATE));
    assert_false(has_event(&c, EVENT_FAILED));
    change_release(&c);
    assert_string_equal(field(f, RF_PHASE), "designing");
    assert_false(machine_holds_worker(f->r));
}

/* ---- gates ---- */

static void
test_machine_training_gate_pass_then_backtesting(void **state)
{
    struct fx *f = *state;
    accept(f, &plain_trigger);
    advance_ok(f, "d1", WORKER_DESIGN);
    complete_ok(f, design_result, N_OF(design_result));
    advance_ok(f, "t1", WORKER_TRAINING);
    struct change c = CHANGE_INIT;
    complete_with(f, training_good, N_OF(training_good), &c);
    assert_planned(&c, (enum research_field)research_field_parse("training.accuracy"), "0.61");
    assert_planned(&c, RF_MODEL_PATH, "/models/m1");
    assert_false(c.set[RF_GATE_REJECTION_REASON] && c.value[RF_GATE_REJECTION_REASON] != NULL);
    assert_n_out(&c, 1);
    struct msg e = MSG_INIT;
    find_event(f, &c, EVENT_GATE, RID, &e);
    assert_int_equal(e.u.event.gate, WORKER_TRAINING);
    assert_true(e.u.event.passed);
    assert_null(e.u.event.reason);
    msg_release(&e);
    change_release(&c);

    advance_with(f, "b1", WORKER_BACKTEST, &c);
    assert_planned(&c, RF_PHASE, "backtesting");
    struct msg d = MSG_INIT;
    find_dispatch(f, &c, TOPIC_DISPATCH_BACKTEST, &d);
    assert_int_equal(d.u.dispatch.phase, PHASE_BACKTESTING);
    assert_int_equal(d.u.dispatch.worker_type, WORKER_BACKTEST);
    static const char *const keys[] = {"strategy_name", "strategy_path", "model_path",
                                       PARAM_OPTIONS};
    assert_param_keys(&d.u.dispatch, keys, N_OF(keys));
    assert_param_str(&d.u.dispatch, "strategy_name", "meanrev_v1");
    assert_param_str(&d.u.dispatch, "strategy_path", "/strategies/meanrev_v1.py");
    assert_param_str(&d.u.dispatch, "model_path", "/models/m1");
    msg_release(&d);
    struct msg s = MSG_INIT;
    find_event(f, &c, EVENT_PHASE_STARTED, RID, &s);
    assert_int_equal(s.u.event.phase, PHASE_BACKTESTING);
    assert_int_equal(s.u.event.attempt, 1);
    msg_release(&s);
    change_release(&c);
}

static void
test_machine_training_gate_fail_assesses_without_backtest(void **state)
{
    struct fx *f = *state;
    accept(f, &plain_trigger);
    advance_ok(f, "d1", WORKER_DESIGN);
    complete_ok(f, design_result, N_OF(design_result));
    advance_ok(f, "t1", WORKER_TRAINING);
    struct change c = CHANGE_INIT;
    complete_with(f, training_bad, N_OF(training_bad), &c);
    assert_planned(&c, RF_GATE_REJECTION_REASON, "training: accuracy 0.05 < 0.10");
    struct msg e = MSG_INIT;
    find_event(f, &c, EVENT_GATE, RID, &e);
    assert_int_equal(e.u.event.gate, WORKER_TRAINING);
    assert_false(e.u.event.passed);
    assert_string_equal(e.u.event.reason, "training: accuracy 0.05 < 0.10");
    msg_release(&e);
    change_release(&c);

    /* a free backtest worker is not used: the research goes to assessing */
    f->now_ms += 1000;
    const struct offer both[] = {{"b1", WORKER_BACKTEST}, {"a1", WORKER_ASSESSMENT}};
    cycle(f, both, N_OF(both));
    struct machine_ctx ctx = ctx_of(f);
    machine_advance(&ctx, f->r, &c);
    apply(f, &c);
    assert_planned(&c, RF_PHASE, "assessing");
    assert_planned(&c, RF_WORKER_ID, "a1");
    struct msg d = MSG_INIT;
    find_dispatch(f, &c, TOPIC_DISPATCH_ASSESSMENT, &d);
    assert_int_equal(d.u.dispatch.phase, PHASE_ASSESSING);
    assert_int_equal(d.u.dispatch.worker_type, WORKER_ASSESSMENT);
    static const char *const keys[] = {"strategy_name", "model", "training", "backtest",
                                       "gate_rejection_reason", PARAM_OPTIONS};
    assert_param_keys(&d.u.dispatch, keys, N_OF(keys));
    assert_param_str(&d.u.dispatch, "strategy_name", "meanrev_v1");
    assert_param_str(&d.u.dispatch, "model", NULL);
    assert_param_str(&d.u.dispatch, "backtest", NULL);
    assert_param_str(&d.u.dispatch, "gate_rejection_reason", "training: accuracy 0.05 < 0.10");
    const struct value *training = param(&d.u.dispatch, "training");
    assert_int_equal(training->kind, VALUE_MAP);
    assert_true(map_number(training, "accuracy") == 0.05);
    assert_true(map_number(training, "final_loss") == 0.5);
    const struct kv *mp = kv_find(training->map, training->map_len, "model_path");
    assert_non_null(mp);
    assert_int_equal(mp->val.kind, VALUE_STR);
    assert_string_equal(mp->val.s, "/models/m1");
    assert_null(kv_find(training->map, training->map_len, "initial_loss")); /* not reported */
    msg_release(&d);
    change_release(&c);
}

static void
test_machine_backtest_gate_fail_assesses_with_reason(void **state)
{
    struct fx *f = *state;
    drive_through_training(f, &plain_trigger, training_good, N_OF(training_good));
    advance_ok(f, "b1", WORKER_BACKTEST);
    struct change c = CHANGE_INIT;
    complete_with(f, backtest_bad, N_OF(backtest_bad), &c);
    assert_planned(&c, RF_GATE_REJECTION_REASON, "backtest: win_rate 0.05 < 0.10");
    struct msg e = MSG_INIT;
    find_event(f, &c, EVENT_GATE, RID, &e);
    assert_int_equal(e.u.event.gate, WORKER_BACKTEST);
    assert_false(e.u.event.passed);
    assert_string_equal(e.u.event.reason, "backtest: win_rate 0.05 < 0.10");
    msg_release(&e);
    change_release(&c);

    advance_with(f, "a1", WORKER_ASSESSMENT, &c);
    assert_planned(&c, RF_PHASE, "assessing");
    struct msg d = MSG_INIT;
    find_dispatch(f, &c, TOPIC_DISPATCH_ASSESSMENT, &d);
    assert_param_str(&d.u.dispatch, "gate_rejection_reason", "backtest: win_rate 0.05 < 0.10");
    const struct value *bt = param(&d.u.dispatch, "backtest");
    assert_int_equal(bt->kind, VALUE_MAP);
    assert_true(map_number(bt, "win_rate") == 0.05);
    assert_true(map_number(bt, "total_trades") == 42);
    const struct value *training = param(&d.u.dispatch, "training");
    assert_true(map_number(training, "accuracy") == 0.61);
    msg_release(&d);
    change_release(&c);
}

static void
test_machine_backtest_gate_pass_assesses(void **state)
{
    struct fx *f = *state;
    drive_through_training(f, &plain_trigger, training_good, N_OF(training_good));
    advance_ok(f, "b1", WORKER_BACKTEST);
    struct change c = CHANGE_INIT;
    complete_with(f, backtest_good, N_OF(backtest_good), &c);
    struct msg e = MSG_INIT;
    find_event(f, &c, EVENT_GATE, RID, &e);
    assert_int_equal(e.u.event.gate, WORKER_BACKTEST);
    assert_true(e.u.event.passed);
    msg_release(&e);
    change_release(&c);
    assert_null(field(f, RF_GATE_REJECTION_REASON));

    advance_with(f, "a1", WORKER_ASSESSMENT, &c);
    struct msg d = MSG_INIT;
    find_dispatch(f, &c, TOPIC_DISPATCH_ASSESSMENT, &d);
    assert_param_str(&d.u.dispatch, "gate_rejection_reason", NULL);
    assert_int_equal(param(&d.u.dispatch, "backtest")->kind, VALUE_MAP);
    assert_int_equal(param(&d.u.dispatch, "training")->kind, VALUE_MAP);
    msg_release(&d);
    change_release(&c);
}

/* A regression model: both gates judge by training.output_format (contract §5). */
static void
test_machine_regression_gates(void **state)
{
    struct fx *f = *state;
    static const struct kv training_regression[] = {
        {"output_format", {.kind = VALUE_STR, .s = "regression"}},
        {"directional_accuracy", {.kind = VALUE_FLOAT, .f = 0.58}},
        {"final_loss", {.kind = VALUE_FLOAT, .f = 0.2}},
        {"model_path", {.kind = VALUE_STR, .s = "/models/r1"}},
    };
    /* classification metrics would fail (no win_rate); regression ones: too few trades */
    static const struct kv backtest_regression[] = {
        {"net_return", {.kind = VALUE_FLOAT, .f = 0.12}},
        {"total_trades", {.kind = VALUE_INT, .i = 3}},
        {"max_drawdown", {.kind = VALUE_FLOAT, .f = 0.1}},
    };
    accept(f, &plain_trigger);
    advance_ok(f, "d1", WORKER_DESIGN);
    complete_ok(f, design_result, N_OF(design_result));
    advance_ok(f, "t1", WORKER_TRAINING);
    struct change c = CHANGE_INIT;
    complete_with(f, training_regression, N_OF(training_regression), &c);
    assert_planned(&c, (enum research_field)research_field_parse("training.output_format"),
                   "regression");
    struct msg e = MSG_INIT;
    find_event(f, &c, EVENT_GATE, RID, &e);
    assert_true(e.u.event.passed);
    msg_release(&e);
    change_release(&c);

    advance_ok(f, "b1", WORKER_BACKTEST);
    complete_with(f, backtest_regression, N_OF(backtest_regression), &c);
    find_event(f, &c, EVENT_GATE, RID, &e);
    assert_int_equal(e.u.event.gate, WORKER_BACKTEST);
    assert_false(e.u.event.passed);
    assert_non_null(strstr(e.u.event.reason, "total_trades"));
    msg_release(&e);
    change_release(&c);

    advance_with(f, "a1", WORKER_ASSESSMENT, &c);
    struct msg d = MSG_INIT;
    find_dispatch(f, &c, TOPIC_DISPATCH_ASSESSMENT, &d);
    const struct value *training = param(&d.u.dispatch, "training");
    const struct kv *of = kv_find(training->map, training->map_len, "output_format");
    assert_non_null(of);
    assert_int_equal(of->val.kind, VALUE_STR);
    assert_string_equal(of->val.s, "regression");
    assert_true(map_number(param(&d.u.dispatch, "backtest"), "total_trades") == 3);
    msg_release(&d);
    change_release(&c);
}

static void
test_machine_bypass_gates(void **state)
{
    struct fx *f = *state;
    struct trigger t = plain_trigger;
    t.bypass_gates = true;
    drive_through_training(f, &t, training_bad, N_OF(training_bad));
    assert_null(field(f, RF_GATE_REJECTION_REASON));

    /* the training gate would fail, but is bypassed: on to backtesting */
    struct change c = CHANGE_INIT;
    advance_with(f, "b1", WORKER_BACKTEST, &c);
    assert_planned(&c, RF_PHASE, "backtesting");
    change_release(&c);

    complete_with(f, backtest_bad, N_OF(backtest_bad), &c);
    assert_false(c.set[RF_GATE_REJECTION_REASON] && c.value[RF_GATE_REJECTION_REASON] != NULL);
    struct msg e = MSG_INIT;
    find_event(f, &c, EVENT_GATE, RID, &e);
    assert_int_equal(e.u.event.gate, WORKER_BACKTEST);
    assert_true(e.u.event.passed);
    assert_string_equal(e.u.event.reason, "bypassed");
    msg_release(&e);
    change_release(&c);

    advance_with(f, "a1", WORKER_ASSESSMENT, &c);
    struct msg d = MSG_INIT;
    find_dispatch(f, &c, TOPIC_DISPATCH_ASSESSMENT, &d);
    assert_param_str(&d.u.dispatch, "gate_rejection_reason", NULL);
    assert_int_equal(param(&d.u.dispatch, "backtest")->kind, VALUE_MAP);
    msg_release(&d);
    change_release(&c);
}

static void
test_machine_bypass_gates_training_event(void **state)
{
    struct fx *f = *state;
    struct trigger t = plain_trigger;
    t.bypass_gates = true;
    accept(f, &t);
    advance_ok(f, "d1", WORKER_DESIGN);
    complete_ok(f, design_result, N_OF(design_result));
    advance_ok(f, "t1", WORKER_TRAINING);
    struct change c = CHANGE_INIT;
    complete_with(f, training_bad, N_OF(training_bad), &c);
    struct msg e = MSG_INIT;
    find_event(f, &c, EVENT_GATE, RID, &e);
    assert_int_equal(e.u.event.gate, WORKER_TRAINING);
    assert_true(e.u.event.passed);
    assert_string_equal(e.u.event.reason, "bypassed");
    msg_release(&e);
    change_release(&c);
}

/* ---- completion ---- */

static void
test_machine_assessment_completes_research(void **state)
{
    struct fx *f = *state;
    drive_through_training(f, &plain_trigger, training_good, N_OF(training_good));
    advance_ok(f, "b1", WORKER_BACKTEST);
    complete_ok(f, backtest_good, N_OF(backtest_good));
    advance_ok(f, "a1", WORKER_ASSESSMENT);
    struct change c = CHANGE_INIT;
    complete_with(f, assessment_result, N_OF(assessment_result), &c);
    assert_planned(&c, RF_VERDICT, "promising");
    assert_planned(&c, (enum research_field)research_field_parse("assessment.verdict"),
                   "promising");
    assert_int_equal(c.kind, CHANGE_UPDATE);
    assert_int_equal(c.n_out, 0); /* no gate after assessment */
    change_release(&c);

    /* the next cycle finishes it, without a worker */
    advance_with(f, NULL, WORKER_DESIGN, &c);
    assert_int_equal(c.kind, CHANGE_FINISH);
    assert_string_equal(c.research_id, RID);
    assert_int_equal(c.score, f->now_ms);
    assert_planned(&c, RF_STATUS, "completed");
    assert_planned(&c, RF_PHASE, "completed");
    assert_planned(&c, RF_LAST_PHASE, "assessing");
    assert_planned_int(&c, RF_FINISHED_AT, f->now_ms);
    assert_n_out(&c, 1);
    struct msg e = MSG_INIT;
    find_event(f, &c, EVENT_COMPLETED, RID, &e);
    assert_string_equal(e.u.event.strategy_name, "meanrev_v1");
    assert_string_equal(e.u.event.verdict, "promising");
    assert_null(e.u.event.gate_rejection_reason);
    msg_release(&e);
    change_release(&c);
    assert_false(machine_holds_worker(f->r));

    /* finished: nothing more */
    advance_with(f, "a1", WORKER_ASSESSMENT, &c);
    assert_true(change_is_empty(&c));
    change_release(&c);
}

static void
test_machine_completed_event_carries_gate_reason(void **state)
{
    struct fx *f = *state;
    drive_through_training(f, &plain_trigger, training_bad, N_OF(training_bad));
    advance_ok(f, "a1", WORKER_ASSESSMENT);
    complete_ok(f, assessment_result, N_OF(assessment_result));
    struct change c = CHANGE_INIT;
    advance_with(f, NULL, WORKER_DESIGN, &c);
    assert_int_equal(c.kind, CHANGE_FINISH);
    assert_planned(&c, RF_LAST_PHASE, "assessing");
    struct msg e = MSG_INIT;
    find_event(f, &c, EVENT_COMPLETED, RID, &e);
    assert_string_equal(e.u.event.gate_rejection_reason, "training: accuracy 0.05 < 0.10");
    assert_string_equal(e.u.event.verdict, "promising");
    msg_release(&e);
    change_release(&c);
}

static void
test_machine_fail_from_loop(void **state)
{
    struct fx *f = *state;
    drive_through_training(f, &plain_trigger, training_good, N_OF(training_good));
    advance_ok(f, "b1", WORKER_BACKTEST);
    f->now_ms += 1000;
    struct machine_ctx ctx = ctx_of(f);
    struct change c = CHANGE_INIT;
    machine_fail(&ctx, f->r, "no backtest worker for 600 s", &c);
    assert_int_equal(c.kind, CHANGE_FINISH);
    assert_string_equal(c.research_id, RID);
    assert_int_equal(c.score, f->now_ms);
    assert_planned(&c, RF_STATUS, "failed");
    assert_planned(&c, RF_LAST_PHASE, "backtesting");
    assert_planned(&c, RF_ERROR, "no backtest worker for 600 s");
    struct msg e = MSG_INIT;
    find_event(f, &c, EVENT_FAILED, RID, &e);
    assert_int_equal(e.u.event.phase, PHASE_BACKTESTING);
    assert_string_equal(e.u.event.error, "no backtest worker for 600 s");
    msg_release(&e);
    change_release(&c);
}

static void
test_machine_holds_worker_only_while_dispatched(void **state)
{
    struct fx *f = *state;
    accept(f, &plain_trigger);
    assert_false(machine_holds_worker(f->r));
    advance_ok(f, "d1", WORKER_DESIGN);
    assert_true(machine_holds_worker(f->r));
    complete_ok(f, design_result, N_OF(design_result));
    assert_false(machine_holds_worker(f->r));
    advance_ok(f, "t1", WORKER_TRAINING);
    assert_true(machine_holds_worker(f->r));
    research_set(f->r, RF_STATUS, "cancelled");
    assert_false(machine_holds_worker(f->r));
}

/* A request seen before repeats its first outcome: the same event, nothing stored again. */
static void
test_machine_repeat_gives_the_first_outcome_again(void **state)
{
    struct fx *f = *state;
    struct machine_ctx ctx = ctx_of(f);
    struct change first = CHANGE_INIT, again = CHANGE_INIT;
    machine_reject_capacity(&ctx, "req-9", 4, 3, &first);
    struct machine_outcome seen = {
        .value = "rejected:at_capacity",
        .figures = {.has_capacity = true, .active_count = 4, .limit = 3}};
    machine_repeat(&ctx, "req-9", &seen, &again);
    assert_int_equal(again.kind, CHANGE_NOTE);
    assert_null(again.request_id); /* nothing is remembered twice */
    assert_int_equal(count_set(&again), 0);
    struct msg a = MSG_INIT, b = MSG_INIT;
    find_event(f, &first, EVENT_REJECTED, "req-9", &a);
    find_event(f, &again, EVENT_REJECTED, "req-9", &b);
    assert_string_equal(b.u.event.reason, "at_capacity");
    assert_string_equal(b.u.event.message, a.u.event.message);
    assert_int_equal(b.u.event.active_count, 4);
    assert_int_equal(b.u.event.limit, 3);
    msg_release(&a);
    msg_release(&b);
    change_release(&first);
    change_release(&again);

    struct machine_outcome accepted = {.value = RID};
    machine_repeat(&ctx, "req-1", &accepted, &again);
    struct msg e = MSG_INIT;
    find_event(f, &again, EVENT_ACCEPTED, RID, &e);
    assert_string_equal(e.u.event.research_id, RID);
    assert_string_equal(e.u.event.request_id, "req-1");
    msg_release(&e);
    change_release(&again);
}


/* ---- cost and budget ---- */

static void
test_machine_design_cost_is_charged_to_research_and_day(void **state)
{
    struct fx *f = *state;
    accept(f, &plain_trigger);
    advance_ok(f, "d1", WORKER_DESIGN);
    struct change c = CHANGE_INIT;
    complete_with(f, design_result, N_OF(design_result), &c); /* cost_usd 0.25 wins */
    assert_true(c.cost_usd == 0.25);
    assert_string_equal(c.budget_day, "2023-11-14");
    assert_planned(&c, RF_COST_USD, "0.25");
    assert_false(change_is_empty(&c));
    change_release(&c);
}

static void
test_machine_assessment_tokens_priced_and_added(void **state)
{
    struct fx *f = *state;
    drive_through_training(f, &plain_trigger, training_good, N_OF(training_good));
    advance_ok(f, "b1", WORKER_BACKTEST);
    complete_ok(f, backtest_good, N_OF(backtest_good));
    advance_ok(f, "a1", WORKER_ASSESSMENT);
    /* No price table in the fixture: priced as sonnet, 3 / 15 USD per million. */
    static const struct kv tokens[] = {
        {"verdict", {.kind = VALUE_STR, .s = "promising"}},
        {"input_tokens", {.kind = VALUE_INT, .i = 100000}},
        {"output_tokens", {.kind = VALUE_INT, .i = 20000}},
    };
    struct change c = CHANGE_INIT;
    complete_with(f, tokens, N_OF(tokens), &c);
    assert_true(c.cost_usd > 0.5999 && c.cost_usd < 0.6001);
    assert_planned(&c, RF_COST_USD, "0.85"); /* 0.25 from design + 0.6 */
    change_release(&c);
}

static void
test_machine_training_result_costs_nothing(void **state)
{
    struct fx *f = *state;
    accept(f, &plain_trigger);
    advance_ok(f, "d1", WORKER_DESIGN);
    complete_ok(f, design_result, N_OF(design_result));
    advance_ok(f, "t1", WORKER_TRAINING);
    struct change c = CHANGE_INIT;
    complete_with(f, training_good, N_OF(training_good), &c);
    assert_true(c.cost_usd == 0);
    assert_false(c.set[RF_COST_USD]);
    change_release(&c);
}

static void
test_machine_reject_budget_remembers_figures(void **state)
{
    struct fx *f = *state;
    struct machine_ctx ctx = ctx_of(f);
    struct change c = CHANGE_INIT, again = CHANGE_INIT;
    machine_reject_budget(&ctx, "req-7", -0.125, 20.0, &c);
    assert_int_equal(c.kind, CHANGE_NOTE);
    assert_string_equal(c.request_value, "rejected:budget_exhausted");
    assert_true(c.figures.has_budget && !c.figures.has_capacity);
    struct msg m = MSG_INIT, r = MSG_INIT;
    find_event(f, &c, EVENT_REJECTED, "req-7", &m);
    assert_string_equal(m.u.event.reason, "budget_exhausted");
    assert_true(m.u.event.has_budget);
    assert_true(m.u.event.remaining == -0.125 && m.u.event.daily_limit == 20.0);
    assert_string_equal(m.u.event.message,
                        "daily budget exhausted (-$0.12 remaining, limit $20.00)");
    struct machine_outcome seen = {
        .value = "rejected:budget_exhausted",
        .figures = {.has_budget = true, .remaining = -0.125, .daily_limit = 20.0}};
    machine_repeat(&ctx, "req-7", &seen, &again);
    find_event(f, &again, EVENT_REJECTED, "req-7", &r);
    assert_string_equal(r.u.event.message, m.u.event.message);
    assert_true(r.u.event.remaining == -0.125);
    msg_release(&m);
    msg_release(&r);
    change_release(&c);
    change_release(&again);
}

/* ---- cancel ---- */

/* The one message on a dispatch topic (not an event) in the change. */
static size_t
count_non_events(const struct change *c)
{
    size_t n = 0;
    for (size_t i = 0; i < c->n_out; i++) {
        n += c->out[i].topic != TOPIC_EVENTS;
    }
    return n;
}

static void
test_machine_cancel_while_training_aborts_its_dispatch(void **state)
{
    struct fx *f = *state;
    accept(f, &plain_trigger);
    advance_ok(f, "d1", WORKER_DESIGN);
    complete_ok(f, design_result, N_OF(design_result));
    advance_ok(f, "t1", WORKER_TRAINING);
    char *dispatch_id = dup_str(field(f, RF_DISPATCH_ID));
    struct cancel k = {.research_id = RID, .request_id = "cx-1", .reason = "operator"};
    struct machine_ctx ctx = ctx_of(f);
    struct change c = CHANGE_INIT;
    f->now_ms += 1000;
    ctx.now_ms = f->now_ms;
    machine_cancel(&ctx, f->r, &k, &c);
    assert_int_equal(c.kind, CHANGE_FINISH);
    assert_planned(&c, RF_STATUS, "cancelled");
    assert_planned(&c, RF_PHASE, "cancelled");
    assert_planned(&c, RF_LAST_PHASE, "training");
    assert_planned_int(&c, RF_FINISHED_AT, f->now_ms);
    /* The abort: on the training topic, keyed and addressed to t1, naming the dispatch. */
    assert_int_equal(count_non_events(&c), 1);
    size_t i = c.out[0].topic == TOPIC_EVENTS ? 1 : 0;
    assert_int_equal(c.out[i].topic, TOPIC_DISPATCH_TRAINING);
    assert_string_equal(c.out[i].key, "t1");
    struct msg a = MSG_INIT;
    decode_out(&c, i, &a);
    assert_int_equal(a.kind, MSG_ABORT);
    assert_string_equal(a.u.abort.dispatch_id, dispatch_id);
    assert_string_equal(a.u.abort.worker_id, "t1");
    assert_string_equal(a.u.abort.research_id, RID);
    assert_string_equal(a.u.abort.reason, "cancelled");
    msg_release(&a);
    struct msg e = MSG_INIT;
    find_event(f, &c, EVENT_CANCELLED, RID, &e);
    assert_int_equal(e.u.event.phase, PHASE_TRAINING);
    assert_string_equal(e.u.event.dispatch_id, dispatch_id);
    assert_string_equal(e.u.event.request_id, "cx-1");
    msg_release(&e);
    /* Remembered for a repeat of the same request. */
    assert_string_equal(c.cancel.request_id, "cx-1");
    assert_string_equal(c.cancel.outcome, "cancelled");
    assert_string_equal(c.cancel.phase, "training");
    assert_string_equal(c.cancel.dispatch_id, dispatch_id);
    apply(f, &c);
    assert_false(machine_holds_worker(f->r)); /* t1 is free for others */
    struct change again = CHANGE_INIT;
    machine_cancel_repeat(&ctx, &c.cancel, &again);
    assert_int_equal(again.kind, CHANGE_NOTE);
    assert_null(again.cancel.request_id);
    assert_int_equal(count_non_events(&again), 0); /* no second abort */
    struct msg e2 = MSG_INIT;
    find_event(f, &again, EVENT_CANCELLED, RID, &e2);
    assert_string_equal(e2.u.event.dispatch_id, dispatch_id);
    assert_string_equal(e2.u.event.request_id, "cx-1");
    msg_release(&e2);
    change_release(&again);
    change_release(&c);
    free(dispatch_id);
    /* A late completion from t1 is stale now. */
    struct completion late = {.dispatch_id = field(f, RF_DISPATCH_ID),
                              .research_id = RID,
                              .worker_id = "t1",
                              .status = COMPLETION_COMPLETED,
                              .result = training_good,
                              .n_result = N_OF(training_good)};
    struct change l = CHANGE_INIT;
    assert_int_equal(machine_complete(&ctx, f->r, &late, &l), MACHINE_STALE);
    change_release(&l);
}

static void
test_machine_cancel_pending_has_no_dispatch(void **state)
{
    struct fx *f = *state;
    accept(f, &plain_trigger);
    struct cancel k = {.research_id = RID}; /* no request_id: nothing remembered */
    struct machine_ctx ctx = ctx_of(f);
    struct change c = CHANGE_INIT;
    machine_cancel(&ctx, f->r, &k, &c);
    assert_int_equal(c.kind, CHANGE_FINISH);
    assert_planned(&c, RF_LAST_PHASE, "pending");
    assert_int_equal(count_non_events(&c), 0);
    assert_null(c.cancel.request_id);
    struct msg e = MSG_INIT;
    find_event(f, &c, EVENT_CANCELLED, RID, &e);
    assert_int_equal(e.u.event.phase, PHASE_PENDING);
    assert_null(e.u.event.dispatch_id);
    assert_null(e.u.event.request_id);
    msg_release(&e);
    change_release(&c);
}

static void
test_machine_cancel_rejected(void **state)
{
    struct fx *f = *state;
    struct machine_ctx ctx = ctx_of(f);
    struct cancel k = {.research_id = "rs_nope", .request_id = "cx-2"};
    struct change c = CHANGE_INIT;
    machine_cancel_reject(&ctx, &k, "not_found", &c);
    assert_int_equal(c.kind, CHANGE_NOTE);
    assert_int_equal(count_set(&c), 0);
    assert_string_equal(c.cancel.outcome, "not_found");
    assert_string_equal(c.cancel.research_id, "rs_nope");
    struct msg e = MSG_INIT;
    find_event(f, &c, EVENT_CANCEL_REJECTED, "rs_nope", &e);
    assert_string_equal(e.u.event.reason, "not_found");
    assert_string_equal(e.u.event.request_id, "cx-2");
    assert_string_equal(e.u.event.research_id, "rs_nope");
    msg_release(&e);
    change_release(&c);
}

/* ---- lost dispatches (§7) ---- */

/* A cycle where `busy_id` heartbeats busy with `dispatch_id` and `idle_id` (may be NULL) is
 * free, both of type wt. */
static void
cycle_busy(struct fx *f, const char *busy_id, const char *dispatch_id, const char *idle_id,
           enum worker_type wt)
{
    struct worker_beat *beats = calloc(2, sizeof(*beats));
    size_t n = 0;
    if (busy_id != NULL) {
        beats[n] = (struct worker_beat){.id = dup_str(busy_id), .type = wt, .idle = false,
                                        .dispatch_id = dispatch_id ? dup_str(dispatch_id) : NULL,
                                        .last_seen_ms = f->now_ms};
        n++;
    }
    if (idle_id != NULL) {
        beats[n] = (struct worker_beat){
            .id = dup_str(idle_id), .type = wt, .idle = true, .last_seen_ms = f->now_ms};
        n++;
    }
    workers_begin(f->workers, beats, n, f->now_ms, f->cfg.agent.worker_timeout_ms);
}

static void
advance_now(struct fx *f, struct change *c)
{
    struct machine_ctx ctx = ctx_of(f);
    machine_advance(&ctx, f->r, c);
    apply(f, c);
}

/* {"symbol": "BTCUSD", "bars": [1, 2.5]} */
#define OPTIONS_MP "\x82\xa6" "symbol" "\xa6" "BTCUSD" "\xa4" "bars" "\x92\x01\xcb\x40\x04\0\0\0\0\0\0"
#define OPTIONS_JSON "{\"symbol\":\"BTCUSD\",\"bars\":[1,2.5]}"

/* The trigger's options are stored as JSON and sent, as the same MessagePack, in the params of
 * every phase; without options the key is there, nil. */
static void
test_machine_options_forwarded_to_every_phase(void **state)
{
    struct fx *f = *state;
    struct trigger t = plain_trigger;
    t.options = OPTIONS_MP;
    t.options_len = sizeof(OPTIONS_MP) - 1;
    struct machine_ctx ctx = ctx_of(f);
    struct change c = CHANGE_INIT;
    machine_accept(&ctx, &t, RID, &c);
    assert_planned(&c, RF_OPTIONS, OPTIONS_JSON);
    apply(f, &c);
    change_release(&c);
    static const struct {
        const char *worker;
        enum worker_type type;
        enum topic topic;
        const struct kv *result;
        size_t n;
    } steps[] = {
        {"d1", WORKER_DESIGN, TOPIC_DISPATCH_DESIGN, design_result, N_OF(design_result)},
        {"t1", WORKER_TRAINING, TOPIC_DISPATCH_TRAINING, training_good, N_OF(training_good)},
        {"b1", WORKER_BACKTEST, TOPIC_DISPATCH_BACKTEST, backtest_good, N_OF(backtest_good)},
        {"a1", WORKER_ASSESSMENT, TOPIC_DISPATCH_ASSESSMENT, NULL, 0},
    };
    for (size_t i = 0; i < N_OF(steps); i++) {
        advance_with(f, steps[i].worker, steps[i].type, &c);
        struct msg d = MSG_INIT;
        find_dispatch(f, &c, steps[i].topic, &d);
        const struct value *o = param(&d.u.dispatch, PARAM_OPTIONS);
        assert_int_equal(o->kind, VALUE_RAW);
        assert_int_equal(o->raw_len, sizeof(OPTIONS_MP) - 1);
        assert_memory_equal(o->s, OPTIONS_MP, o->raw_len);
        msg_release(&d);
        change_release(&c);
        if (steps[i].result != NULL) {
            complete_ok(f, steps[i].result, steps[i].n);
        }
    }
}

static enum machine_verdict
release_current(struct fx *f, struct change *c)
{
    f->now_ms += 1000;
    struct completion comp = completion_of(f, true, NULL, 0);
    comp.status = COMPLETION_RELEASED;
    struct machine_ctx ctx = ctx_of(f);
    enum machine_verdict o = machine_complete(&ctx, f->r, &comp, c);
    apply(f, c);
    return o;
}

/* A released dispatch goes to another free worker at once as attempt + 1, reason "released",
 * and uses up no attempt: with AGENT_MAX_ATTEMPTS=1 a phase released twice still runs, and
 * still completes. */
static void
test_machine_released_is_sent_again_at_no_attempts_cost(void **state)
{
    struct fx *f = *state;
    f->cfg.agent.max_attempts = 1;
    accept(f, &plain_trigger);
    advance_ok(f, "d1", WORKER_DESIGN);
    char *first = dup_str(field(f, RF_DISPATCH_ID));
    struct change c = CHANGE_INIT;
    assert_int_equal(release_current(f, &c), MACHINE_APPLIED);
    assert_int_equal(c.kind, CHANGE_UPDATE);
    assert_planned(&c, RF_RESEND_REASON, "released");
    assert_false(c.set[RF_STATUS]);
    assert_int_equal(c.n_out, 0);
    change_release(&c);
    assert_true(machine_holds_worker(f->r)); /* d1 is not free until it is sent again */

    advance_with(f, "d2", WORKER_DESIGN, &c);
    assert_planned(&c, RF_WORKER_ID, "d2");
    assert_planned(&c, RF_ATTEMPT, "2");
    assert_planned(&c, RF_RELEASED, "1");
    assert_planned(&c, RF_RESEND_REASON, NULL);
    assert_false(c.set[RF_PHASE_STARTED_AT]);
    struct msg e = MSG_INIT;
    find_event(f, &c, EVENT_REDISPATCHED, RID, &e);
    assert_string_equal(e.u.event.reason, "released");
    assert_string_equal(e.u.event.old_dispatch_id, first);
    assert_int_equal(e.u.event.attempt, 2);
    msg_release(&e);
    change_release(&c);

    assert_int_equal(release_current(f, &c), MACHINE_APPLIED);
    change_release(&c);
    advance_with(f, "d3", WORKER_DESIGN, &c);
    assert_planned(&c, RF_ATTEMPT, "3");
    assert_planned(&c, RF_RELEASED, "2");
    change_release(&c);
    char why[256];
    assert_true(research_check(f->r, RID, why, sizeof(why)));

    complete_ok(f, design_result, N_OF(design_result));
    assert_string_equal(field(f, RF_STATUS), "running");
    assert_string_equal(field(f, RF_STRATEGY_NAME), "meanrev_v1");
    free(first);
}

/* Released with no free worker: it waits, holding nothing new, and goes out once one is. A
 * loss after releases still counts only the attempts that were not released. */
static void
test_machine_released_waits_for_a_free_worker(void **state)
{
    struct fx *f = *state;
    f->cfg.agent.max_attempts = 1;
    f->cfg.agent.wait_timeout_ms = 60000;
    accept(f, &plain_trigger);
    advance_ok(f, "d1", WORKER_DESIGN);
    struct change c = CHANGE_INIT;
    release_current(f, &c);
    change_release(&c);
    advance_with(f, NULL, WORKER_DESIGN, &c);
    assert_planned_int(&c, RF_WAITING_SINCE, f->now_ms);
    assert_false(c.set[RF_ATTEMPT]);
    assert_int_equal(c.n_out, 0);
    change_release(&c);
    assert_string_equal(field(f, RF_RESEND_REASON), "released");

    advance_with(f, "d2", WORKER_DESIGN, &c);
    assert_planned(&c, RF_WORKER_ID, "d2");
    assert_planned(&c, RF_ATTEMPT, "2");
    assert_planned(&c, RF_WAITING_SINCE, NULL);
    change_release(&c);

    /* d2 dies: its attempt was the one that counted, so none is left. */
    f->now_ms += 20000;
    cycle_busy(f, NULL, NULL, "d3", WORKER_DESIGN);
    advance_now(f, &c);
    assert_int_equal(c.kind, CHANGE_FINISH);
    assert_non_null(strstr(c.value[RF_ERROR], "designing dispatched 1 times"));
    change_release(&c);
}

/* A release that is stale (an old dispatch, another worker) changes nothing. */
static void
test_machine_stale_release_changes_nothing(void **state)
{
    struct fx *f = *state;
    accept(f, &plain_trigger);
    advance_ok(f, "d1", WORKER_DESIGN);
    struct completion comp = completion_of(f, true, NULL, 0);
    comp.status = COMPLETION_RELEASED;
    comp.worker_id = "d9";
    struct machine_ctx ctx = ctx_of(f);
    struct change c = CHANGE_INIT;
    assert_int_equal(machine_complete(&ctx, f->r, &comp, &c), MACHINE_STALE);
    change_release(&c);
    assert_null(field(f, RF_RESEND_REASON));
}

static void
test_machine_dead_worker_redispatches(void **state)
{
    struct fx *f = *state;
    accept(f, &plain_trigger);
    advance_ok(f, "d1", WORKER_DESIGN);
    char *first = dup_str(field(f, RF_DISPATCH_ID));
    char *started = dup_str(field(f, RF_PHASE_STARTED_AT));
    /* d1 stopped heartbeating; d2 is free. */
    f->now_ms += 20000;
    cycle_busy(f, NULL, NULL, "d2", WORKER_DESIGN);
    struct change c = CHANGE_INIT;
    advance_now(f, &c);
    assert_planned(&c, RF_WORKER_ID, "d2");
    assert_planned(&c, RF_ATTEMPT, "2");
    assert_planned(&c, RF_DISPATCH_ID, RID ":designing:2");
    assert_false(c.set[RF_PHASE_STARTED_AT]); /* the phase goes on */
    assert_false(has_event(&c, EVENT_PHASE_STARTED));
    struct msg e = MSG_INIT;
    find_event(f, &c, EVENT_REDISPATCHED, RID, &e);
    assert_string_equal(e.u.event.old_dispatch_id, first);
    assert_string_equal(e.u.event.dispatch_id, RID ":designing:2");
    assert_int_equal(e.u.event.attempt, 2);
    assert_int_equal(e.u.event.phase, PHASE_DESIGNING);
    assert_string_equal(e.u.event.reason, "worker_dead");
    msg_release(&e);
    /* The abort for the old one, to d1; the dispatch to d2. */
    assert_int_equal(c.n_out, 3);
    struct msg a = MSG_INIT, d = MSG_INIT;
    decode_out(&c, 0, &a);
    assert_int_equal(a.kind, MSG_ABORT);
    assert_string_equal(a.u.abort.dispatch_id, first);
    assert_string_equal(a.u.abort.worker_id, "d1");
    decode_out(&c, 1, &d);
    assert_int_equal(d.kind, MSG_DISPATCH);
    assert_string_equal(d.u.dispatch.worker_id, "d2");
    assert_int_equal(d.u.dispatch.attempt, 2);
    msg_release(&a);
    msg_release(&d);
    change_release(&c);
    assert_string_equal(field(f, RF_PHASE_STARTED_AT), started);
    free(first);
    free(started);
}

static void
test_machine_dispatch_timeout_unless_picked_up(void **state)
{
    struct fx *f = *state;
    accept(f, &plain_trigger);
    advance_ok(f, "d1", WORKER_DESIGN);
    char *dispatch_id = dup_str(field(f, RF_DISPATCH_ID));
    f->r->acked_at_ms = f->now_ms; /* Kafka acknowledged it: the pick-up clock starts */
    /* d1 is alive but busy with something else: within the timeout, nothing happens. */
    f->now_ms += 59000;
    cycle_busy(f, "d1", "other-work", "d2", WORKER_DESIGN);
    struct change c = CHANGE_INIT;
    advance_now(f, &c);
    assert_true(change_is_empty(&c));
    f->now_ms += 2000;
    cycle_busy(f, "d1", "other-work", "d2", WORKER_DESIGN);
    advance_now(f, &c);
    assert_planned(&c, RF_WORKER_ID, "d2");
    struct msg e = MSG_INIT;
    find_event(f, &c, EVENT_REDISPATCHED, RID, &e);
    assert_string_equal(e.u.event.reason, "dispatch_timeout");
    msg_release(&e);
    change_release(&c);
    /* d2 shows it: picked up, recorded once; then no timeout however long it runs. */
    free(dispatch_id);
    dispatch_id = dup_str(field(f, RF_DISPATCH_ID));
    f->now_ms += 1000;
    cycle_busy(f, "d2", dispatch_id, NULL, WORKER_DESIGN);
    advance_now(f, &c);
    assert_planned_int(&c, RF_PICKED_UP_AT, f->now_ms);
    assert_int_equal(c.n_out, 0);
    change_release(&c);
    f->now_ms += 3600000;
    cycle_busy(f, "d2", dispatch_id, NULL, WORKER_DESIGN);
    advance_now(f, &c);
    assert_true(change_is_empty(&c));
    free(dispatch_id);
}

/* Contract §7: the pick-up timeout counts from Kafka's acknowledgement: however long Kafka is
 * down (no acknowledgement), the dispatch is not timed out. */
static void
test_machine_dispatch_timeout_counts_from_the_ack(void **state)
{
    struct fx *f = *state;
    accept(f, &plain_trigger);
    advance_ok(f, "d1", WORKER_DESIGN);
    struct change c = CHANGE_INIT;
    f->now_ms += 3600000; /* an hour of Kafka outage: not acknowledged */
    cycle_busy(f, "d1", "other-work", "d2", WORKER_DESIGN);
    advance_now(f, &c);
    assert_true(change_is_empty(&c));
    f->r->acked_at_ms = f->now_ms;
    f->now_ms += 59000;
    cycle_busy(f, "d1", "other-work", "d2", WORKER_DESIGN);
    advance_now(f, &c);
    assert_true(change_is_empty(&c));
    f->now_ms += 2000;
    cycle_busy(f, "d1", "other-work", "d2", WORKER_DESIGN);
    advance_now(f, &c);
    assert_planned(&c, RF_WORKER_ID, "d2");
    change_release(&c);
}

/* Contract §7 "Lost picked-up dispatches": a worker, still live, that has not named its
 * picked-up dispatch for AGENT_WORKER_TIMEOUT (it restarted: idle) and whose completion never
 * came has lost it: sent again as dispatch_lost; not while the coordinator may still have
 * the completion to read; and not before the timeout. */
static void
test_machine_picked_up_dispatch_lost_by_a_restarted_worker(void **state)
{
    struct fx *f = *state;
    accept(f, &plain_trigger);
    advance_ok(f, "d1", WORKER_DESIGN);
    char *dispatch_id = dup_str(field(f, RF_DISPATCH_ID));
    struct change c = CHANGE_INIT;
    f->now_ms += 100;
    cycle_busy(f, "d1", dispatch_id, NULL, WORKER_DESIGN);
    advance_now(f, &c);
    assert_planned_int(&c, RF_PICKED_UP_AT, f->now_ms);
    change_release(&c);
    /* d1 restarted: it heartbeats idle from now on (d2 is free for the resend). */
    f->now_ms += 1000;
    cycle_busy(f, NULL, NULL, "d1", WORKER_DESIGN);
    struct machine_ctx ctx = ctx_of(f);
    ctx.caught_up_at_ms = f->now_ms;
    f->now_ms += 14000;
    ctx.now_ms = f->now_ms;
    cycle_busy(f, "d2", "x", "d1", WORKER_DESIGN);
    machine_advance(&ctx, f->r, &c);
    assert_true(change_is_empty(&c));
    f->now_ms += 1000;
    ctx.now_ms = f->now_ms;
    cycle_busy(f, "d2", "x", "d1", WORKER_DESIGN);
    /* Kafka was last found read to its end before d1 turned idle: its completion may still be
     * on its way. Wait, and ask. */
    bool want = false;
    ctx.caught_up_at_ms = f->now_ms - 16000;
    ctx.want_caught_up = &want;
    machine_advance(&ctx, f->r, &c);
    assert_true(change_is_empty(&c));
    assert_true(want);
    ctx.caught_up_at_ms = f->now_ms;
    machine_advance(&ctx, f->r, &c);
    assert_planned(&c, RF_WORKER_ID, "d1");
    struct msg e = MSG_INIT;
    find_event(f, &c, EVENT_REDISPATCHED, RID, &e);
    assert_string_equal(e.u.event.reason, "dispatch_lost");
    assert_int_equal(e.u.event.attempt, 2);
    msg_release(&e);
    apply(f, &c);
    change_release(&c);
    free(dispatch_id);
}

/* A worker that finishes normally (its completion applied, then an idle heartbeat) is never
 * taken to have lost its dispatch: the research no longer holds it. */
static void
test_machine_normal_finish_is_never_lost(void **state)
{
    struct fx *f = *state;
    accept(f, &plain_trigger);
    advance_ok(f, "d1", WORKER_DESIGN);
    char *dispatch_id = dup_str(field(f, RF_DISPATCH_ID));
    struct change c = CHANGE_INIT;
    cycle_busy(f, "d1", dispatch_id, NULL, WORKER_DESIGN);
    advance_now(f, &c);
    change_release(&c);
    struct kv result[] = {{"strategy_name", value_str("s1")}};
    struct completion done = {.dispatch_id = dispatch_id, .research_id = RID, .worker_id = "d1",
                              .status = COMPLETION_COMPLETED, .result = result, .n_result = 1};
    struct machine_ctx ctx = ctx_of(f);
    assert_int_equal(machine_complete(&ctx, f->r, &done, &c), MACHINE_APPLIED);
    apply(f, &c);
    change_release(&c);
    f->now_ms += 60000;
    cycle_busy(f, NULL, NULL, "d1", WORKER_DESIGN); /* idle for a minute; no training worker */
    ctx = ctx_of(f);
    ctx.caught_up_at_ms = f->now_ms;
    machine_advance(&ctx, f->r, &c);
    for (size_t i = 0; i < c.n_out; i++) {
        struct msg m = MSG_INIT;
        assert_int_equal(msg_decode(MSG_TOPIC_EVENTS, c.out[i].payload, c.out[i].len, &m, NULL),
                         RC_OK);
        assert_int_not_equal(m.u.event.type, EVENT_REDISPATCHED);
        msg_release(&m);
    }
    change_release(&c);
    free(dispatch_id);
}

/* Contract §7 "Corrupt stored state": a research that cannot be read as one fails alone with
 * its reason; a key of another type is left alone, a missing hash written anew. */
static void
test_machine_corrupt_research_fails_alone(void **state)
{
    struct fx *f = *state;
    static const enum research_stored kinds[] = {RESEARCH_STORED_HASH, RESEARCH_STORED_NONE,
                                                 RESEARCH_STORED_FOREIGN};
    static const enum change_hash want[] = {CHANGE_HASH_WRITE, CHANGE_HASH_RECREATE,
                                            CHANGE_HASH_KEEP};
    for (size_t k = 0; k < 3; k++) {
        struct research *r = research_new();
        research_set(r, RF_RESEARCH_ID, RID);
        research_set(r, RF_STATUS, "running");
        research_set(r, RF_PHASE, "xyz");
        research_set_corrupt(r, kinds[k], "corrupt research: phase: not a phase (\"xyz\")");
        struct machine_ctx ctx = ctx_of(f);
        struct change c = CHANGE_INIT;
        machine_advance(&ctx, r, &c);
        if (c.kind != CHANGE_FINISH || c.hash != want[k]) {
            fail_msg("case %zu: kind %d hash %d", k, (int)c.kind, (int)c.hash);
        }
        assert_planned(&c, RF_STATUS, "failed");
        assert_planned(&c, RF_ERROR, "corrupt research: phase: not a phase (\"xyz\")");
        struct msg e = MSG_INIT;
        find_event(f, &c, EVENT_FAILED, RID, &e);
        assert_string_equal(e.u.event.error, "corrupt research: phase: not a phase (\"xyz\")");
        msg_release(&e);
        assert_false(machine_holds_worker(r));
        enum worker_type wt;
        assert_false(machine_wants_worker(r, &wt));
        change_release(&c);
        research_free(r);
    }
}

static void
test_machine_no_attempts_left_fails_alone(void **state)
{
    struct fx *f = *state;
    f->cfg.agent.max_attempts = 2;
    accept(f, &plain_trigger);
    advance_ok(f, "d1", WORKER_DESIGN);
    f->now_ms += 20000;
    cycle_busy(f, NULL, NULL, "d2", WORKER_DESIGN);
    struct change c = CHANGE_INIT;
    advance_now(f, &c); /* attempt 2 on d2 */
    change_release(&c);
    f->now_ms += 20000;
    cycle_busy(f, NULL, NULL, "d3", WORKER_DESIGN); /* d2 died too */
    advance_now(f, &c);
    assert_int_equal(c.kind, CHANGE_FINISH);
    assert_planned(&c, RF_STATUS, "failed");
    assert_non_null(strstr(c.value[RF_ERROR], "no attempts left: designing dispatched 2 times"));
    assert_non_null(strstr(c.value[RF_ERROR], "worker_dead on d2"));
    struct msg e = MSG_INIT;
    find_event(f, &c, EVENT_FAILED, RID, &e);
    msg_release(&e);
    assert_int_equal(count_non_events(&c), 1); /* the abort of attempt 2 */
    change_release(&c);
}

static void
test_machine_lost_dispatch_waits_for_a_free_worker(void **state)
{
    struct fx *f = *state;
    f->cfg.agent.wait_timeout_ms = 30000;
    accept(f, &plain_trigger);
    advance_ok(f, "d1", WORKER_DESIGN);
    f->now_ms += 20000;
    cycle_busy(f, NULL, NULL, NULL, WORKER_DESIGN); /* d1 dead, nobody free */
    struct change c = CHANGE_INIT;
    advance_now(f, &c);
    assert_planned_int(&c, RF_WAITING_SINCE, f->now_ms);
    assert_false(c.set[RF_ATTEMPT]); /* grows only when sent */
    assert_int_equal(c.n_out, 0);
    change_release(&c);
    /* Still nobody after AGENT_WAIT_TIMEOUT: it fails, naming the worker type. */
    f->now_ms += 30000;
    cycle_busy(f, NULL, NULL, NULL, WORKER_DESIGN);
    advance_now(f, &c);
    assert_int_equal(c.kind, CHANGE_FINISH);
    assert_non_null(strstr(c.value[RF_ERROR], "s for a free design worker"));
    change_release(&c);
}

static void
test_machine_wait_timeout_for_next_phase(void **state)
{
    struct fx *f = *state;
    f->cfg.agent.wait_timeout_ms = 5000;
    accept(f, &plain_trigger);
    advance_ok(f, "d1", WORKER_DESIGN);
    complete_ok(f, design_result, N_OF(design_result));
    struct change c = CHANGE_INIT;
    advance_with(f, NULL, WORKER_TRAINING, &c); /* waits */
    assert_true(c.set[RF_WAITING_SINCE]);
    change_release(&c);
    f->now_ms += 4000;
    cycle_none(f);
    advance_now(f, &c);
    assert_true(change_is_empty(&c));
    f->now_ms += 1000;
    cycle_none(f);
    advance_now(f, &c);
    assert_int_equal(c.kind, CHANGE_FINISH);
    assert_string_equal(c.value[RF_ERROR],
                        "waited 5 s for a free training worker (AGENT_WAIT_TIMEOUT)");
    change_release(&c);
}

/* ---- execution timeouts (contract §7) and the timeline ---- */

#define TL(p, m) research_timeline_field((p), (m))

/* The research in training on t1, its dispatch picked up now; returns that dispatch's id
 * (caller frees). */
static char *
training_picked_up(struct fx *f)
{
    accept(f, &plain_trigger);
    advance_ok(f, "d1", WORKER_DESIGN);
    complete_ok(f, design_result, N_OF(design_result));
    advance_ok(f, "t1", WORKER_TRAINING);
    char *dispatch_id = dup_str(field(f, RF_DISPATCH_ID));
    struct change c = CHANGE_INIT;
    f->now_ms += 100;
    cycle_busy(f, "t1", dispatch_id, NULL, WORKER_TRAINING);
    advance_now(f, &c);
    assert_planned_int(&c, RF_PICKED_UP_AT, f->now_ms);
    change_release(&c);
    return dispatch_id;
}

/* The one abort in the change: to `worker`, for `dispatch_id`, with `reason`. */
static void
assert_abort(const struct change *c, const char *worker, const char *dispatch_id,
             const char *reason)
{
    size_t found = 0;
    for (size_t i = 0; i < c->n_out; i++) {
        if (c->out[i].topic == TOPIC_EVENTS) {
            continue;
        }
        struct msg m = MSG_INIT;
        decode_out(c, i, &m);
        if (m.kind == MSG_ABORT) {
            found++;
            assert_string_equal(m.u.abort.worker_id, worker);
            assert_string_equal(m.u.abort.dispatch_id, dispatch_id);
            assert_string_equal(m.u.abort.reason, reason);
        }
        msg_release(&m);
    }
    if (found != 1) {
        fail_msg("%zu aborts, want 1", found);
    }
}

/* A picked-up training dispatch still running past AGENT_PHASE_TIMEOUT_TRAINING is aborted
 * and sent to a free worker as the next attempt (reason phase_timeout); not a moment before. */
static void
test_machine_phase_timeout_aborts_and_redispatches(void **state)
{
    struct fx *f = *state;
    f->cfg.agent.phase_timeout_ms[WORKER_TRAINING] = 10000;
    f->cfg.agent.phase_timeout_ms[WORKER_DESIGN] = 1; /* another type's limit is not training's */
    char *first = training_picked_up(f);
    struct change c = CHANGE_INIT;
    f->now_ms += 10000; /* exactly the limit: not past it */
    cycle_busy(f, "t1", first, "t2", WORKER_TRAINING);
    advance_now(f, &c);
    assert_true(change_is_empty(&c));
    f->now_ms += 1;
    cycle_busy(f, "t1", first, "t2", WORKER_TRAINING);
    advance_now(f, &c);
    assert_true(c.phase_timeout);
    assert_planned(&c, RF_WORKER_ID, "t2");
    assert_planned(&c, RF_ATTEMPT, "2");
    assert_planned(&c, RF_DISPATCH_ID, RID ":training:2");
    assert_planned(&c, RF_RESEND_REASON, NULL);
    assert_planned(&c, TL(PHASE_TRAINING, TIMELINE_WORKER_ID), "t2");
    assert_planned(&c, TL(PHASE_TRAINING, TIMELINE_ATTEMPTS), "2");
    assert_false(c.set[TL(PHASE_TRAINING, TIMELINE_STARTED_AT)]); /* the phase goes on */
    assert_false(c.set[TL(PHASE_TRAINING, TIMELINE_FINISHED_AT)]);
    assert_abort(&c, "t1", first, "phase_timeout");
    struct msg e = MSG_INIT;
    find_event(f, &c, EVENT_REDISPATCHED, RID, &e);
    assert_string_equal(e.u.event.reason, "phase_timeout");
    assert_string_equal(e.u.event.old_dispatch_id, first);
    assert_int_equal(e.u.event.attempt, 2);
    msg_release(&e);
    assert_true(machine_pins_worker(f->r)); /* t2 now */
    change_release(&c);
    free(first);
}

/* Only t1 is of the type, and it ignores the abort: the abort goes out at once (once), the
 * research waits for a free worker, t1 is not handed the resend while it still runs the
 * timed-out dispatch, and t1's late answer to it is stale. Once t1 is idle, it gets attempt 2. */
static void
test_machine_phase_timeout_busy_worker_not_handed_resend(void **state)
{
    struct fx *f = *state;
    f->cfg.agent.phase_timeout_ms[WORKER_TRAINING] = 5000;
    char *first = training_picked_up(f);
    struct change c = CHANGE_INIT;
    f->now_ms += 6000;
    cycle_busy(f, "t1", first, NULL, WORKER_TRAINING);
    advance_now(f, &c);
    assert_true(c.phase_timeout);
    assert_abort(&c, "t1", first, "phase_timeout");
    assert_int_equal(count_non_events(&c), 1); /* no dispatch */
    assert_planned(&c, RF_RESEND_REASON, "phase_timeout");
    assert_planned_int(&c, RF_WAITING_SINCE, f->now_ms);
    assert_false(c.set[RF_ATTEMPT]);
    assert_false(machine_pins_worker(f->r));
    enum worker_type wt;
    assert_true(machine_wants_worker(f->r, &wt));
    assert_int_equal(wt, WORKER_TRAINING);
    change_release(&c);
    /* t1 heartbeats busy with it still: nothing is sent, no second abort, not counted again. */
    f->now_ms += 1000;
    cycle_busy(f, "t1", first, NULL, WORKER_TRAINING);
    advance_now(f, &c);
    assert_int_equal(c.n_out, 0);
    assert_false(c.phase_timeout);
    change_release(&c);
    struct completion late = completion_of(f, true, training_good, N_OF(training_good));
    struct machine_ctx ctx = ctx_of(f);
    assert_int_equal(machine_complete(&ctx, f->r, &late, &c), MACHINE_STALE);
    change_release(&c);
    /* t1 stopped it at last: it may take the resend. */
    f->now_ms += 1000;
    cycle_busy(f, NULL, NULL, "t1", WORKER_TRAINING);
    advance_now(f, &c);
    assert_planned(&c, RF_WORKER_ID, "t1");
    assert_planned(&c, RF_ATTEMPT, "2");
    assert_planned(&c, RF_RESEND_REASON, NULL);
    assert_planned(&c, RF_WAITING_SINCE, NULL);
    assert_int_equal(count_non_events(&c), 1); /* the dispatch; the abort went out before */
    assert_false(c.phase_timeout);
    struct msg e = MSG_INIT;
    find_event(f, &c, EVENT_REDISPATCHED, RID, &e);
    assert_string_equal(e.u.event.reason, "phase_timeout");
    msg_release(&e);
    change_release(&c);
    free(first);
}

/* Timeouts count toward AGENT_MAX_ATTEMPTS: past them the research fails, naming the timeout,
 * and the last dispatch is aborted; its phase's timeline says when it ended. */
static void
test_machine_phase_timeout_no_attempts_left_fails(void **state)
{
    struct fx *f = *state;
    f->cfg.agent.max_attempts = 2;
    f->cfg.agent.phase_timeout_ms[WORKER_TRAINING] = 5000;
    char *first = training_picked_up(f);
    struct change c = CHANGE_INIT;
    f->now_ms += 6000;
    cycle_busy(f, "t1", first, "t2", WORKER_TRAINING);
    advance_now(f, &c); /* attempt 2 on t2 */
    change_release(&c);
    char *second = dup_str(field(f, RF_DISPATCH_ID));
    f->now_ms += 100;
    cycle_busy(f, "t2", second, "t1", WORKER_TRAINING);
    advance_now(f, &c); /* picked up */
    change_release(&c);
    f->now_ms += 6000;
    cycle_busy(f, "t2", second, "t1", WORKER_TRAINING);
    advance_now(f, &c);
    assert_true(c.phase_timeout);
    assert_int_equal(c.kind, CHANGE_FINISH);
    assert_planned(&c, RF_STATUS, "failed");
    assert_string_equal(c.value[RF_ERROR],
                        "no attempts left: training dispatched 2 times (AGENT_MAX_ATTEMPTS), the "
                        "last ran past AGENT_PHASE_TIMEOUT_TRAINING (5 s) on t2");
    assert_abort(&c, "t2", second, "phase_timeout");
    assert_planned_int(&c, TL(PHASE_TRAINING, TIMELINE_FINISHED_AT), f->now_ms);
    struct msg e = MSG_INIT;
    find_event(f, &c, EVENT_FAILED, RID, &e);
    assert_int_equal(e.u.event.phase, PHASE_TRAINING);
    msg_release(&e);
    change_release(&c);
    free(first);
    free(second);
}

/* AGENT_PHASE_TIMEOUT_<TYPE> = 0 (the default): a picked-up dispatch runs as long as it takes. */
static void
test_machine_phase_timeout_zero_means_never(void **state)
{
    struct fx *f = *state;
    char *first = training_picked_up(f);
    struct change c = CHANGE_INIT;
    f->now_ms += 30LL * 86400 * 1000;
    cycle_busy(f, "t1", first, "t2", WORKER_TRAINING);
    advance_now(f, &c);
    assert_true(change_is_empty(&c));
    change_release(&c);
    free(first);
}

/* The timeline: started_at when the phase starts (finished_at cleared), worker and attempts
 * at every dispatch, finished_at when its dispatch ends (completed or failed, or the
 * research fails or is cancelled with it out); nothing when it is cancelled while it waits
 * between phases. The mirror keeps none of it. */
static void
test_machine_timeline_fields(void **state)
{
    struct fx *f = *state;
    accept(f, &plain_trigger);
    struct change c = CHANGE_INIT;
    advance_with(f, "d1", WORKER_DESIGN, &c);
    const int64_t design_start = f->now_ms;
    assert_planned_int(&c, TL(PHASE_DESIGNING, TIMELINE_STARTED_AT), design_start);
    assert_planned(&c, TL(PHASE_DESIGNING, TIMELINE_FINISHED_AT), NULL);
    assert_planned(&c, TL(PHASE_DESIGNING, TIMELINE_WORKER_ID), "d1");
    assert_planned(&c, TL(PHASE_DESIGNING, TIMELINE_ATTEMPTS), "1");
    assert_false(c.set[TL(PHASE_TRAINING, TIMELINE_STARTED_AT)]);
    change_release(&c);
    /* d1 dies: attempt 2 on d2 writes the worker and attempts, not the start. */
    f->now_ms += 20000;
    cycle_busy(f, NULL, NULL, "d2", WORKER_DESIGN);
    advance_now(f, &c);
    assert_planned(&c, TL(PHASE_DESIGNING, TIMELINE_WORKER_ID), "d2");
    assert_planned(&c, TL(PHASE_DESIGNING, TIMELINE_ATTEMPTS), "2");
    assert_false(c.set[TL(PHASE_DESIGNING, TIMELINE_STARTED_AT)]);
    assert_false(c.set[TL(PHASE_DESIGNING, TIMELINE_FINISHED_AT)]);
    change_release(&c);
    complete_with(f, design_result, N_OF(design_result), &c);
    assert_planned_int(&c, TL(PHASE_DESIGNING, TIMELINE_FINISHED_AT), f->now_ms);
    change_release(&c);
    /* Waiting for a training worker, then cancelled: no phase of it had a dispatch out. */
    advance_with(f, NULL, WORKER_TRAINING, &c);
    change_release(&c);
    struct cancel k = {.research_id = RID};
    struct machine_ctx ctx = ctx_of(f);
    machine_cancel(&ctx, f->r, &k, &c); /* not applied: the research goes on below */
    for (int i = RF_TIMELINE_FIRST; i < RF_COUNT; i++) {
        if (c.set[i]) {
            fail_msg("cancelled while waiting, yet %s is written",
                     research_field_name((enum research_field)i));
        }
    }
    change_release(&c);
    /* The mirror holds no timeline field. */
    assert_true(RF_MIRRORED <= RF_TIMELINE_FIRST);
    /* A failed completion ends its phase too. */
    advance_ok(f, "t1", WORKER_TRAINING);
    f->now_ms += 1000;
    struct completion bad = completion_of(f, false, NULL, 0);
    ctx = ctx_of(f);
    assert_int_equal(machine_complete(&ctx, f->r, &bad, &c), MACHINE_APPLIED);
    assert_planned_int(&c, TL(PHASE_TRAINING, TIMELINE_FINISHED_AT), f->now_ms);
    change_release(&c);
}

/* A research failed or cancelled with its dispatch out ends that phase's timeline. */
static void
test_machine_timeline_ends_with_outstanding_dispatch(void **state)
{
    struct fx *f = *state;
    accept(f, &plain_trigger);
    advance_ok(f, "d1", WORKER_DESIGN);
    struct change c = CHANGE_INIT;
    struct machine_ctx ctx = ctx_of(f);
    machine_fail(&ctx, f->r, "handler error", &c);
    assert_planned_int(&c, TL(PHASE_DESIGNING, TIMELINE_FINISHED_AT), f->now_ms);
    change_release(&c);
    struct cancel k = {.research_id = RID};
    f->now_ms += 5;
    ctx = ctx_of(f);
    machine_cancel(&ctx, f->r, &k, &c);
    assert_planned_int(&c, TL(PHASE_DESIGNING, TIMELINE_FINISHED_AT), f->now_ms);
    change_release(&c);
}

/* Which researches a free worker could move, and of which type: what the loop queues. */
static void
test_machine_wants_worker_by_state(void **state)
{
    (void)state;
    static const struct {
        const char *status, *phase, *child, *strategy, *gate, *worker, *waiting;
        bool wants;
        enum worker_type wt;
    } cases[] = {
        {"running", "pending", NULL, NULL, NULL, NULL, NULL, true, WORKER_DESIGN},
        {"running", "pending", NULL, "s", NULL, NULL, NULL, true, WORKER_TRAINING},
        {"running", "designing", "completed", "s", NULL, NULL, NULL, true, WORKER_TRAINING},
        {"running", "training", "completed", "s", NULL, NULL, NULL, true, WORKER_BACKTEST},
        {"running", "training", "completed", "s", "low", NULL, NULL, true, WORKER_ASSESSMENT},
        {"running", "backtesting", "completed", "s", NULL, NULL, NULL, true, WORKER_ASSESSMENT},
        {"running", "assessing", "completed", "s", NULL, NULL, NULL, false, WORKER_DESIGN},
        {"running", "training", "dispatched", "s", NULL, "w", NULL, false, WORKER_DESIGN},
        /* its dispatch was lost and no worker was free: the same phase, again */
        {"running", "training", "dispatched", "s", NULL, "w", "5", true, WORKER_TRAINING},
        {"completed", "completed", "completed", "s", NULL, NULL, NULL, false, WORKER_DESIGN},
    };
    for (size_t i = 0; i < N_OF(cases); i++) {
        struct research *r = research_new();
        research_set(r, RF_RESEARCH_ID, "rs_1");
        research_set(r, RF_STATUS, cases[i].status);
        research_set(r, RF_PHASE, cases[i].phase);
        research_set(r, RF_CHILD_STATUS, cases[i].child);
        research_set(r, RF_STRATEGY_NAME, cases[i].strategy);
        research_set(r, RF_GATE_REJECTION_REASON, cases[i].gate);
        research_set(r, RF_WORKER_ID, cases[i].worker);
        research_set(r, RF_WAITING_SINCE, cases[i].waiting);
        enum worker_type wt = WORKER_TYPE_COUNT;
        bool wants = machine_wants_worker(r, &wt);
        research_free(r);
        if (wants != cases[i].wants || (wants && wt != cases[i].wt)) {
            fail_msg("case %zu: wants %d type %d", i, (int)wants, (int)wt);
        }
    }
}

int
main(void)
{
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(test_machine_accept_creates_pending_research),
        T(test_machine_wants_worker_by_state),
        T(test_machine_accept_keeps_trigger_options),
        T(test_machine_reject_at_capacity),
        T(test_machine_reject_invalid_is_not_remembered),
        T(test_machine_advance_pending_to_designing),
        T(test_machine_design_params_carry_model),
        T(test_machine_pending_with_strategy_starts_training),
        T(test_machine_waiting_since_set_once),
        T(test_machine_one_worker_goes_to_first_asked),
        T(test_machine_dispatch_ids_unique),
        T(test_machine_complete_stale),
        T(test_machine_complete_failed_fails_research),
        T(test_machine_complete_failed_without_error_says_why),
        T(test_machine_bad_result_fails_research),
        T(test_machine_bad_training_number_fails_research),
        T(test_machine_design_completion_stores_result),
        T(test_machine_training_gate_pass_then_backtesting),
        T(test_machine_training_gate_fail_assesses_without_backtest),
        T(test_machine_backtest_gate_fail_assesses_with_reason),
        T(test_machine_backtest_gate_pass_assesses),
        T(test_machine_regression_gates),
        T(test_machine_bypass_gates),
        T(test_machine_bypass_gates_training_event),
        T(test_machine_assessment_completes_research),
        T(test_machine_completed_event_carries_gate_reason),
        T(test_machine_fail_from_loop),
        T(test_machine_repeat_gives_the_first_outcome_again),
        T(test_machine_holds_worker_only_while_dispatched),
        T(test_machine_design_cost_is_charged_to_research_and_day),
        T(test_machine_assessment_tokens_priced_and_added),
        T(test_machine_training_result_costs_nothing),
        T(test_machine_reject_budget_remembers_figures),
        T(test_machine_cancel_while_training_aborts_its_dispatch),
        T(test_machine_cancel_pending_has_no_dispatch),
        T(test_machine_cancel_rejected),
        T(test_machine_options_forwarded_to_every_phase),
        T(test_machine_released_is_sent_again_at_no_attempts_cost),
        T(test_machine_released_waits_for_a_free_worker),
        T(test_machine_stale_release_changes_nothing),
        T(test_machine_dead_worker_redispatches),
        T(test_machine_dispatch_timeout_unless_picked_up),
        T(test_machine_dispatch_timeout_counts_from_the_ack),
        T(test_machine_picked_up_dispatch_lost_by_a_restarted_worker),
        T(test_machine_normal_finish_is_never_lost),
        T(test_machine_corrupt_research_fails_alone),
        T(test_machine_no_attempts_left_fails_alone),
        T(test_machine_lost_dispatch_waits_for_a_free_worker),
        T(test_machine_wait_timeout_for_next_phase),
        T(test_machine_phase_timeout_aborts_and_redispatches),
        T(test_machine_phase_timeout_busy_worker_not_handed_resend),
        T(test_machine_phase_timeout_no_attempts_left_fails),
        T(test_machine_phase_timeout_zero_means_never),
        T(test_machine_timeline_fields),
        T(test_machine_timeline_ends_with_outstanding_dispatch),
    };
#undef T
    return cmocka_run_group_tests_name("machine", tests, NULL, NULL);
}
