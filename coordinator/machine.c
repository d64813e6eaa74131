/* SPDX-License-Identifier: MIT
 * machine: where a research advances. Every decision about a research's phase is made here;
 * the store writes what it plans and the loop decides when to ask. */
#include "coordinator/machine.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "common/cfg.h"
#include "common/clock.h"
#include "common/num.h"
#include "common/xalloc.h"
#include "contract/dispatchid.h"
#include "contract/fields.h"
#include "coordinator/budget.h"
#include "coordinator/change.h"
#include "coordinator/gate.h"
#include "coordinator/research.h"
#include "coordinator/workers.h"
#include "proto/json.h"
#include "proto/msg.h"
#include "proto/result.h"

/* The most keys a result map or a phase's params may hold (the biggest schema is 6). */
#define MAX_KEYS 16

static void
emit_event(struct change *out, const struct machine_ctx *ctx, const struct event *ev)
{
    struct msg m = MSG_INIT;
    m.kind = MSG_EVENT;
    m.ts_ms = ctx->now_ms;
    m.u.event = *ev;
    const char *key = ev->research_id != NULL ? ev->research_id : ev->request_id;
    change_emit(out, TOPIC_EVENTS, key, key != NULL ? strlen(key) : 0, &m);
}

/* The message of an at_capacity rejection, the first time and when repeated. */
static void
capacity_message(int64_t active_count, int64_t limit, char *out, size_t len)
{
    snprintf(out, len, "at capacity (%" PRId64 " active researches, limit is %" PRId64 ")",
             active_count, limit);
}

/* The message of a budget_exhausted rejection: "-$0.12" style money. */
static void
budget_message(double remaining, double daily_limit, char *out, size_t len)
{
    snprintf(out, len, "daily budget exhausted (%s$%.2f remaining, limit $%.2f)",
             remaining < 0 ? "-" : "", remaining < 0 ? -remaining : remaining, daily_limit);
}

void
machine_accept(const struct machine_ctx *ctx, const struct trigger *t, const char *research_id,
               struct change *out)
{
    change_init(out, CHANGE_CREATE, research_id);
    out->score = ctx->now_ms;
    change_set(out, RF_RESEARCH_ID, research_id);
    change_set(out, RF_REQUEST_ID, t->request_id);
    change_set(out, RF_STATUS, STATUS_RUNNING);
    change_set(out, RF_PHASE, phase_name(PHASE_PENDING));
    change_set(out, RF_BRIEF, t->brief);
    change_set(out, RF_MODEL, t->model);
    change_set(out, RF_BYPASS_GATES, t->bypass_gates ? "1" : "0");
    /* A given strategy skips design: its name and path are the research's from the start. */
    change_set(out, RF_STRATEGY_NAME, t->strategy);
    change_set(out, RF_STRATEGY_PATH, t->strategy != NULL ? t->strategy_path : NULL);
    change_set(out, RF_ATTEMPT, "0");
    change_set(out, RF_COST_USD, "0");
    change_set_int(out, RF_CREATED_AT, ctx->now_ms);
    change_set_int(out, RF_UPDATED_AT, ctx->now_ms);
    change_set_int(out, RF_PHASE_STARTED_AT, ctx->now_ms);
    if (t->options != NULL) {
        /* Stored as JSON, for operators; the decoder made sure JSON can hold it. */
        struct buf json = BUF_INIT;
        struct rc_err err = RC_ERR_INIT;
        if (json_from_msgpack(t->options, t->options_len, &json, &err) == RC_OK) {
            change_set(out, RF_OPTIONS, json.data);
        }
        buf_release(&json);
    }
    out->request_id = xstrdup(t->request_id);
    out->request_value = xstrdup(research_id);

    struct event ev = {
        .type = EVENT_ACCEPTED, .research_id = research_id, .request_id = t->request_id};
    emit_event(out, ctx, &ev);
}

/* A `rejected` event for the outcome `o` (reason after "rejected:", its figures and their
 * message); with `remember`, the outcome is also recorded under rc:request:<id>. */
static void
reject(const struct machine_ctx *ctx, const char *request_id, const struct machine_outcome *o,
       bool remember, struct change *out)
{
    const struct rejection_figures *f = &o->figures;
    char message[160] = "";
    if (f->has_capacity) {
        capacity_message(f->active_count, f->limit, message, sizeof(message));
    } else if (f->has_budget) {
        budget_message(f->remaining, f->daily_limit, message, sizeof(message));
    }
    const char *reason = o->value + strlen(REQUEST_REJECTED);
    change_init(out, CHANGE_NOTE, NULL);
    if (remember) {
        out->request_id = xstrdup(request_id);
        out->request_value = xstrdup(o->value);
        out->figures = *f;
    }
    struct event ev = {.type = EVENT_REJECTED,
                       .request_id = request_id,
                       .reason = reason,
                       .message = message[0] != '\0' ? message : reason,
                       .has_capacity = f->has_capacity,
                       .active_count = f->active_count,
                       .limit = f->limit,
                       .has_budget = f->has_budget,
                       .remaining = f->remaining,
                       .daily_limit = f->daily_limit};
    emit_event(out, ctx, &ev);
}

void
machine_reject_capacity(const struct machine_ctx *ctx, const char *request_id, int64_t active_count,
                        int64_t limit, struct change *out)
{
    struct machine_outcome o = {
        .value = REQUEST_REJECTED REASON_AT_CAPACITY,
        .figures = {.has_capacity = true, .active_count = active_count, .limit = limit}};
    reject(ctx, request_id, &o, true, out);
}

void
machine_reject_budget(const struct machine_ctx *ctx, const char *request_id, double remaining,
                      double daily_limit, struct change *out)
{
    struct machine_outcome o = {
        .value = REQUEST_REJECTED REASON_BUDGET_EXHAUSTED,
        .figures = {.has_budget = true, .remaining = remaining, .daily_limit = daily_limit}};
    reject(ctx, request_id, &o, true, out);
}

void
machine_reject_invalid(const struct machine_ctx *ctx, const char *request_id, const char *why,
                       struct change *out)
{
    change_init(out, CHANGE_NOTE, NULL);
    struct event ev = {
        .type = EVENT_REJECTED, .request_id = request_id, .reason = REASON_INVALID, .message = why};
    emit_event(out, ctx, &ev);
}

void
machine_repeat(const struct machine_ctx *ctx, const char *request_id,
               const struct machine_outcome *first, struct change *out)
{
    if (strncmp(first->value, REQUEST_REJECTED, strlen(REQUEST_REJECTED)) == 0) {
        reject(ctx, request_id, first, false, out);
        return;
    }
    change_init(out, CHANGE_NOTE, NULL);
    struct event ev = {
        .type = EVENT_ACCEPTED, .request_id = request_id, .research_id = first->value};
    emit_event(out, ctx, &ev);
}

bool
machine_holds_worker(const struct research *r)
{
    return r->corrupt == NULL && research_is(r, RF_STATUS, STATUS_RUNNING) &&
           research_is(r, RF_CHILD_STATUS, CHILD_DISPATCHED) &&
           research_get(r, RF_WORKER_ID) != NULL;
}

bool
machine_pins_worker(const struct research *r)
{
    return machine_holds_worker(r) && research_get(r, RF_WAITING_SINCE) == NULL;
}

/* Write the mark `m` of `r`'s current phase as now (the timeline, contract-free: ours). */
static void
timeline_mark_now(const struct machine_ctx *ctx, const struct research *r, enum timeline_mark m,
                  struct change *out)
{
    if (phase_is_worked(research_phase(r))) {
        change_set_int(out, research_timeline_field(research_phase(r), m), ctx->now_ms);
    }
}

/* Plan the move of `r` to a final status. */
static void
finish(const struct machine_ctx *ctx, const struct research *r, enum phase final,
       struct change *out)
{
    enum phase last = research_phase(r);
    out->kind = CHANGE_FINISH;
    out->score = ctx->now_ms;
    change_set(out, RF_STATUS, phase_name(final));
    change_set(out, RF_PHASE, phase_name(final));
    change_set(out, RF_LAST_PHASE, phase_name(last));
    change_set_int(out, RF_FINISHED_AT, ctx->now_ms);
    change_set_int(out, RF_UPDATED_AT, ctx->now_ms);
    change_set(out, RF_WAITING_SINCE, NULL);
}

/* Add to `out` (already for `r`) the move of `r` to failed with `error`, and its event. */
static void
fail(const struct machine_ctx *ctx, const struct research *r, const char *error, struct change *out)
{
    if (machine_holds_worker(r)) {
        timeline_mark_now(ctx, r, TIMELINE_FINISHED_AT, out); /* its dispatch ends with it */
    }
    finish(ctx, r, PHASE_FAILED, out);
    change_set(out, RF_ERROR, error);
    struct event ev = {.type = EVENT_FAILED,
                       .research_id = research_get(r, RF_RESEARCH_ID),
                       .phase = research_phase(r),
                       .error = error};
    emit_event(out, ctx, &ev);
}

void
machine_fail(const struct machine_ctx *ctx, const struct research *r, const char *error,
             struct change *out)
{
    change_init(out, CHANGE_UPDATE, research_get(r, RF_RESEARCH_ID));
    fail(ctx, r, error, out);
}

/* How a change of the corrupt research `r` treats its key: see machine_fail_corrupt. */
static void
corrupt_hash(const struct research *r, struct change *out)
{
    switch (r->stored) {
    case RESEARCH_STORED_NONE:
        /* Written anew, so that what happened can be read where the research was. */
        out->hash = CHANGE_HASH_RECREATE;
        change_set(out, RF_RESEARCH_ID, research_get(r, RF_RESEARCH_ID));
        break;
    case RESEARCH_STORED_FOREIGN:
        out->hash = CHANGE_HASH_KEEP; /* not a research: not ours to overwrite */
        break;
    case RESEARCH_STORED_HASH:
        break;
    }
}

void
machine_fail_corrupt(const struct machine_ctx *ctx, const struct research *r, struct change *out)
{
    change_init(out, CHANGE_UPDATE, research_get(r, RF_RESEARCH_ID));
    corrupt_hash(r, out);
    fail(ctx, r, r->corrupt, out);
}

/* Judge the gate after a training or backtest result (already in `view`), record a failure's
 * reason, and send the `gate` event. */
static void
judge_gate(const struct machine_ctx *ctx, const struct research *view, enum worker_type wt,
           struct change *out)
{
    struct event ev = {
        .type = EVENT_GATE, .research_id = research_get(view, RF_RESEARCH_ID), .gate = wt};
    struct gate_outcome g = {.passed = true};
    if (research_is(view, RF_BYPASS_GATES, "1")) {
        ev.passed = true;
        ev.reason = "bypassed";
    } else {
        if (wt == WORKER_TRAINING) {
            gate_training(&ctx->cfg->gates, view, &g);
        } else {
            gate_backtest(&ctx->cfg->gates, view, &g);
        }
        ev.passed = g.passed;
        ev.reason = g.passed ? NULL : g.reason;
        if (!g.passed) {
            change_set(out, RF_GATE_REJECTION_REASON, g.reason);
        }
    }
    emit_event(out, ctx, &ev);
}

/* Copy into the change each key of `wt`'s schema present in the result, as `<type>.<key>`,
 * and the fields the research takes from it. */
static void
copy_result(const struct completion *c, enum worker_type wt, struct change *out)
{
    size_t n = 0;
    const struct result_key *schema = result_schema(wt, &n);
    struct buf text = BUF_INIT;
    for (size_t i = 0; i < n; i++) {
        const struct kv *e = kv_find(c->result, c->n_result, schema[i].name);
        if (e == NULL || e->val.kind == VALUE_NIL) {
            continue;
        }
        buf_reset(&text);
        result_format(&e->val, &text);
        int f = research_result_field(wt, schema[i].name);
        RC_ASSERT(f >= 0);
        change_set(out, (enum research_field)f, text.data);
        if (wt == WORKER_DESIGN && strcmp(schema[i].name, "strategy_name") == 0) {
            change_set(out, RF_STRATEGY_NAME, text.data);
        } else if (wt == WORKER_DESIGN && strcmp(schema[i].name, "strategy_path") == 0) {
            change_set(out, RF_STRATEGY_PATH, text.data);
        } else if (wt == WORKER_TRAINING && strcmp(schema[i].name, "model_path") == 0) {
            change_set(out, RF_MODEL_PATH, text.data);
        } else if (wt == WORKER_ASSESSMENT && strcmp(schema[i].name, "verdict") == 0) {
            change_set(out, RF_VERDICT, text.data);
        }
    }
    buf_release(&text);
}

/* Charge a design or assessment result's cost to the research and to today's budget (§5). */
static void
charge(const struct machine_ctx *ctx, const struct research *r, const struct completion *c,
       struct change *out)
{
    double cost = 0;
    if (!budget_cost(&ctx->cfg->agent, c->result, c->n_result, research_get(r, RF_MODEL), &cost) ||
        cost == 0) {
        return;
    }
    const char *before = research_get(r, RF_COST_USD);
    char total[64];
    double spent = 0.0; /* a stored cost that is no number was refused at load (research_check) */
    if (before != NULL) {
        (void)num_parse_f64(before, strlen(before), &spent);
    }
    budget_format(spent + cost, total, sizeof(total));
    change_set(out, RF_COST_USD, total);
    out->cost_usd = cost;
    clock_utc_day(ctx->now_ms, out->budget_day);
}

enum machine_verdict
machine_complete(const struct machine_ctx *ctx, const struct research *r,
                 const struct completion *c, struct change *out)
{
    /* Only the answer to the research's current dispatch, from the worker it was sent to,
     * counts: a late answer to a retried or aborted dispatch, or a duplicate, is stale. */
    if (r != NULL && r->corrupt != NULL) {
        /* It cannot advance: this input's effect is that it fails (§7). */
        machine_fail_corrupt(ctx, r, out);
        return MACHINE_APPLIED;
    }
    if (r == NULL || !research_is(r, RF_STATUS, STATUS_RUNNING) ||
        !research_is(r, RF_CHILD_STATUS, CHILD_DISPATCHED) ||
        !research_is(r, RF_DISPATCH_ID, c->dispatch_id) ||
        !research_is(r, RF_WORKER_ID, c->worker_id)) {
        return MACHINE_STALE;
    }
    if (research_is(r, RF_RESEND_REASON, REDISPATCH_PHASE_TIMEOUT)) {
        /* Aborted past its timeout, waiting to be sent again: a late answer (§3). */
        return MACHINE_STALE;
    }
    enum phase phase = research_phase(r);
    if (!phase_is_worked(phase)) {
        return MACHINE_STALE;
    }
    enum worker_type wt = phase_worker_type(phase);
    change_init(out, CHANGE_UPDATE, c->research_id);
    change_set_int(out, RF_UPDATED_AT, ctx->now_ms);
    if (c->status == COMPLETION_RELEASED) {
        /* Handed back unfinished: sent again as soon as another worker is free, at no
         * attempt's cost (machine_advance). */
        change_set(out, RF_RESEND_REASON, REDISPATCH_RELEASED);
        return MACHINE_APPLIED;
    }
    timeline_mark_now(ctx, r, TIMELINE_FINISHED_AT, out); /* completed or failed: it ended */
    if (c->status == COMPLETION_FAILED) {
        char error[LIMITS_STRING_MAX + 64];
        snprintf(error, sizeof(error), "%s",
                 c->error != NULL ? c->error : "worker reported failure");
        change_set(out, RF_CHILD_STATUS, CHILD_FAILED);
        fail(ctx, r, error, out);
        return MACHINE_APPLIED;
    }
    struct rc_err err = RC_ERR_INIT;
    if (result_check(wt, c->result, c->n_result, &err) != RC_OK) {
        change_set(out, RF_CHILD_STATUS, CHILD_FAILED);
        fail(ctx, r, err.msg, out);
        return MACHINE_APPLIED;
    }
    change_set(out, RF_CHILD_STATUS, CHILD_COMPLETED);
    copy_result(c, wt, out);
    if (wt == WORKER_DESIGN || wt == WORKER_ASSESSMENT) {
        charge(ctx, r, c, out);
    }
    if (wt == WORKER_TRAINING || wt == WORKER_BACKTEST) {
        /* The gate reads the result just copied: judge a view with the change applied. */
        struct research *view = research_dup(r);
        change_apply(out, view);
        judge_gate(ctx, view, wt, out);
        research_free(view);
    }
    return MACHINE_APPLIED;
}

/* The phase after `r`'s current one, or PHASE_COMPLETED after assessing. */
static enum phase
next_phase(const struct research *r)
{
    switch (research_phase(r)) {
    case PHASE_PENDING:
        return research_get(r, RF_STRATEGY_NAME) != NULL ? PHASE_TRAINING : PHASE_DESIGNING;
    case PHASE_DESIGNING:
        return PHASE_TRAINING;
    case PHASE_TRAINING:
        /* A failed training gate assesses at once, without a backtest. */
        return research_get(r, RF_GATE_REJECTION_REASON) != NULL ? PHASE_ASSESSING
                                                                 : PHASE_BACKTESTING;
    case PHASE_BACKTESTING:
        return PHASE_ASSESSING;
    default:
        return PHASE_COMPLETED;
    }
}

/* The phase `r` starts next: a resumed research's own phase while it is not dispatched yet (a
 * worked phase with no child_status: see machine_resume), else the one after it. */
static enum phase
start_phase(const struct research *r)
{
    if (phase_is_worked(research_phase(r)) && research_get(r, RF_CHILD_STATUS) == NULL) {
        return research_phase(r);
    }
    return next_phase(r);
}

/* Whether `r` is ready to start its next phase: nothing dispatched yet in this phase (pending,
 * or just resumed) or its phase's result in. */
static bool
ready_to_start(const struct research *r)
{
    return research_get(r, RF_CHILD_STATUS) == NULL ||
           research_is(r, RF_CHILD_STATUS, CHILD_COMPLETED);
}

bool
machine_wants_worker(const struct research *r, enum worker_type *wt)
{
    if (r->corrupt != NULL || !research_is(r, RF_STATUS, STATUS_RUNNING)) {
        return false;
    }
    if (machine_holds_worker(r)) {
        /* Its dispatch was lost and no other worker was free: it waits to be sent again. */
        if (research_get(r, RF_WAITING_SINCE) == NULL) {
            return false;
        }
        *wt = phase_worker_type(research_phase(r));
        return true;
    }
    if (!ready_to_start(r)) {
        return false;
    }
    enum phase next = start_phase(r);
    if (next == PHASE_COMPLETED) {
        return false;
    }
    *wt = phase_worker_type(next);
    return true;
}

bool
machine_waits_for(const struct research *r, enum worker_type *wt)
{
    if (research_get(r, RF_WAITING_SINCE) == NULL || !research_is(r, RF_STATUS, STATUS_RUNNING)) {
        return false;
    }
    const bool resend = research_is(r, RF_CHILD_STATUS, CHILD_DISPATCHED);
    enum phase p = resend ? research_phase(r) : next_phase(r);
    if (!phase_is_worked(p)) {
        return false;
    }
    *wt = phase_worker_type(p);
    return true;
}

/* A phase result map rebuilt from the stored `<type>.*` fields; n = 0 when none is stored. */
static size_t
stored_result(const struct research *r, enum worker_type wt, struct kv *map)
{
    size_t n_keys = 0, n = 0;
    const struct result_key *schema = result_schema(wt, &n_keys);
    for (size_t i = 0; i < n_keys && n < MAX_KEYS; i++) {
        int f = research_result_field(wt, schema[i].name);
        const char *text = f >= 0 ? research_get(r, (enum research_field)f) : NULL;
        if (text != NULL) {
            map[n].key = schema[i].name;
            map[n].val = result_parse(schema[i].kind, text);
            n++;
        }
    }
    return n;
}

static void
emit_dispatch(const struct machine_ctx *ctx, const struct research *r, enum phase phase,
              const char *dispatch_id, const char *worker_id, int64_t attempt, struct change *out)
{
    struct kv params[8];
    struct buf options = BUF_INIT;
    struct kv training[MAX_KEYS], backtest[MAX_KEYS];
    size_t n = 0;
    const char *strategy = research_get(r, RF_STRATEGY_NAME);
    switch (phase) {
    case PHASE_DESIGNING:
        params[n++] = (struct kv){"brief", value_str(research_get(r, RF_BRIEF))};
        params[n++] = (struct kv){"model", value_str(research_get(r, RF_MODEL))};
        break;
    case PHASE_TRAINING:
        params[n++] = (struct kv){"strategy_name", value_str(strategy)};
        params[n++] = (struct kv){"strategy_path", value_str(research_get(r, RF_STRATEGY_PATH))};
        break;
    case PHASE_BACKTESTING:
        params[n++] = (struct kv){"strategy_name", value_str(strategy)};
        params[n++] = (struct kv){"strategy_path", value_str(research_get(r, RF_STRATEGY_PATH))};
        params[n++] = (struct kv){"model_path", value_str(research_get(r, RF_MODEL_PATH))};
        break;
    default: {
        size_t n_training = stored_result(r, WORKER_TRAINING, training);
        size_t n_backtest = stored_result(r, WORKER_BACKTEST, backtest);
        params[n++] = (struct kv){"strategy_name", value_str(strategy)};
        params[n++] = (struct kv){"model", value_str(research_get(r, RF_MODEL))};
        params[n++] = (struct kv){"training", value_map(training, n_training)};
        params[n++] =
            (struct kv){"backtest", n_backtest > 0 ? value_map(backtest, n_backtest) : value_nil()};
        params[n++] = (struct kv){"gate_rejection_reason",
                                  value_str(research_get(r, RF_GATE_REJECTION_REASON))};
        break;
    }
    }
    /* Every phase carries the trigger's options, as MessagePack again (research_check made
     * sure the stored JSON reads). */
    const char *json = research_get(r, RF_OPTIONS);
    struct rc_err err = RC_ERR_INIT;
    bool has_options =
        json != NULL && json_to_msgpack(json, strlen(json), &options, &err) == RC_OK;
    params[n++] = (struct kv){PARAM_OPTIONS,
                              has_options ? value_raw(options.data, options.len) : value_nil()};
    struct msg m = MSG_INIT;
    m.kind = MSG_DISPATCH;
    m.ts_ms = ctx->now_ms;
    m.u.dispatch = (struct dispatch){
        .dispatch_id = dispatch_id,
        .research_id = research_get(r, RF_RESEARCH_ID),
        .worker_id = worker_id,
        .phase = phase,
        .worker_type = phase_worker_type(phase),
        .attempt = attempt,
        .params = params,
        .n_params = n,
    };
    change_emit(out, topic_dispatch(phase_worker_type(phase)),
                worker_id, strlen(worker_id), &m);
    buf_release(&options);
}

/* Send the phase `next` of `r` to `worker` as dispatch `attempt`: the fields and the dispatch
 * message (events are the caller's). */
static void
send_dispatch(const struct machine_ctx *ctx, const struct research *r, enum phase next,
              const char *worker, int64_t attempt, struct change *out, char *dispatch_id,
              size_t id_len)
{
    dispatchid_format(dispatch_id, id_len, research_get(r, RF_RESEARCH_ID), next, attempt,
                      research_int(r, RF_RESUMES));
    change_set(out, RF_PHASE, phase_name(next));
    change_set(out, RF_DISPATCH_ID, dispatch_id);
    change_set(out, RF_WORKER_ID, worker);
    change_set_int(out, RF_ATTEMPT, attempt);
    change_set(out, RF_CHILD_STATUS, CHILD_DISPATCHED);
    change_set(out, RF_WAITING_SINCE, NULL);
    change_set_int(out, RF_DISPATCHED_AT, ctx->now_ms);
    change_set(out, RF_PICKED_UP_AT, NULL);
    change_set(out, RF_RESEND_REASON, NULL);
    change_set_int(out, RF_UPDATED_AT, ctx->now_ms);
    change_set(out, research_timeline_field(next, TIMELINE_WORKER_ID), worker);
    change_set_int(out, research_timeline_field(next, TIMELINE_ATTEMPTS), attempt);
    /* The message reads only fields this change leaves alone (the brief, the strategy, the
     * stored results): `r` as it stands will do, no copy with the change applied. */
    emit_dispatch(ctx, r, next, dispatch_id, worker, attempt, out);
}

/* An `abort` of `r`'s current dispatch, to the worker it was addressed to. */
static void
emit_abort(const struct machine_ctx *ctx, const struct research *r, const char *reason,
           struct change *out)
{
    const char *worker = research_get(r, RF_WORKER_ID);
    struct msg m = MSG_INIT;
    m.kind = MSG_ABORT;
    m.ts_ms = ctx->now_ms;
    m.u.abort = (struct abort_msg){.dispatch_id = research_get(r, RF_DISPATCH_ID),
                                   .research_id = research_get(r, RF_RESEARCH_ID),
                                   .worker_id = worker,
                                   .reason = reason};
    change_emit(out,
                topic_dispatch(phase_worker_type(research_phase(r))),
                worker, strlen(worker), &m);
}

/* No free worker of `wt` for `r`: record since when it waits, or fail it once it has waited
 * AGENT_WAIT_TIMEOUT (§7). */
static void
wait_for_worker(const struct machine_ctx *ctx, const struct research *r, enum worker_type wt,
                struct change *out)
{
    const char *id = research_get(r, RF_RESEARCH_ID);
    const char *since = research_get(r, RF_WAITING_SINCE);
    if (since == NULL) {
        change_init(out, CHANGE_UPDATE, id);
        change_set_int(out, RF_WAITING_SINCE, ctx->now_ms);
        change_set_int(out, RF_UPDATED_AT, ctx->now_ms);
        return;
    }
    const int64_t limit = ctx->cfg->agent.wait_timeout_ms;
    if (limit <= 0) {
        return; /* waits forever: nothing to parse, the common case of every pass */
    }
    const int64_t waited = ctx->now_ms - research_int(r, RF_WAITING_SINCE);
    if (waited >= limit) {
        char error[160];
        snprintf(error, sizeof(error),
                 "waited %" PRId64 " s for a free %s worker (AGENT_WAIT_TIMEOUT)", waited / 1000,
                 worker_type_name(wt));
        change_init(out, CHANGE_UPDATE, id);
        fail(ctx, r, error, out);
    }
}

/* True when `r`'s picked-up dispatch has run longer than its worker type's
 * AGENT_PHASE_TIMEOUT_<TYPE> (never when that is 0). While Kafka is down no completion can
 * arrive, so none times out then either. */
static bool
over_phase_timeout(const struct machine_ctx *ctx, const struct research *r)
{
    const int64_t limit = ctx->cfg->agent.phase_timeout_ms[phase_worker_type(research_phase(r))];
    return limit > 0 && !ctx->kafka_down && ctx->now_ms - research_int(r, RF_PICKED_UP_AT) > limit;
}

/* Why `r`'s outstanding dispatch must be sent again (§7), or NULL: its worker is dead (no
 * live heartbeat); it was not picked up within AGENT_DISPATCH_TIMEOUT of Kafka's
 * acknowledgement (so no Kafka outage, however long, times it out); it was picked up and its
 * worker, still running it, has done so past AGENT_PHASE_TIMEOUT_<TYPE>; or it was picked up
 * and its worker, still live, has not named it for AGENT_WORKER_TIMEOUT while no completion of
 * it arrived (the worker restarted, or its completion was lost). Sets *picked_up when the
 * worker's heartbeat names the dispatch for the first time. */
static const char *
lost_dispatch(const struct machine_ctx *ctx, const struct research *r, bool *picked_up)
{
    const struct worker_beat *b = workers_find(ctx->workers, research_get(r, RF_WORKER_ID));
    *picked_up = false;
    if (b == NULL) {
        return REDISPATCH_WORKER_DEAD;
    }
    const bool names = b->dispatch_id != NULL && research_is(r, RF_DISPATCH_ID, b->dispatch_id);
    if (research_get(r, RF_PICKED_UP_AT) != NULL) {
        if (names && over_phase_timeout(ctx, r)) {
            return REDISPATCH_PHASE_TIMEOUT;
        }
        if (names || ctx->now_ms - b->dispatch_since_ms < ctx->cfg->agent.worker_timeout_ms) {
            return NULL;
        }
        if (ctx->caught_up_at_ms >= b->dispatch_since_ms) {
            return REDISPATCH_DISPATCH_LOST;
        }
        if (ctx->want_caught_up != NULL) {
            *ctx->want_caught_up = true;
        }
        return NULL;
    }
    if (names) {
        *picked_up = true;
        return NULL;
    }
    if (r->acked_at_ms > 0 && !ctx->kafka_down &&
        ctx->now_ms - r->acked_at_ms > ctx->cfg->agent.dispatch_timeout_ms) {
        return REDISPATCH_DISPATCH_TIMEOUT;
    }
    return NULL;
}

/* Send `r`'s current phase again, to another free worker, as the next attempt; fail it when no
 * attempt is left. With no free worker it waits (the attempt count grows only when sent). A
 * released dispatch uses up no attempt: those are counted apart and not held against
 * AGENT_MAX_ATTEMPTS. */
static void
redispatch(const struct machine_ctx *ctx, const struct research *r, const char *reason,
           struct change *out)
{
    const char *id = research_get(r, RF_RESEARCH_ID);
    enum phase phase = research_phase(r);
    const char *attempt_text = research_get(r, RF_ATTEMPT);
    const int64_t attempt = (attempt_text != NULL ? research_int(r, RF_ATTEMPT) : 1) + 1;
    const bool released = strcmp(reason, REDISPATCH_RELEASED) == 0;
    const bool timed_out = strcmp(reason, REDISPATCH_PHASE_TIMEOUT) == 0;
    /* A timed-out dispatch got its abort when it timed out, if its resend had to wait. */
    const bool aborted = research_is(r, RF_RESEND_REASON, REDISPATCH_PHASE_TIMEOUT);
    const int64_t n_released = research_int(r, RF_RELEASED) + (released ? 1 : 0);
    enum worker_type wt = phase_worker_type(phase);
    if (!released && attempt - n_released > ctx->cfg->agent.max_attempts) {
        char error[LIMITS_ID_MAX + 160];
        if (timed_out) {
            snprintf(error, sizeof(error),
                     "no attempts left: %s dispatched %" PRId64 " times (AGENT_MAX_ATTEMPTS), "
                     "the last ran past %s (%g s) on %s",
                     phase_name(phase), attempt - 1 - n_released, cfg_phase_timeout_var(wt),
                     (double)ctx->cfg->agent.phase_timeout_ms[wt] / 1000,
                     research_get(r, RF_WORKER_ID));
        } else {
            snprintf(error, sizeof(error),
                     "no attempts left: %s dispatched %" PRId64 " times (AGENT_MAX_ATTEMPTS), "
                     "the last lost to %s on %s",
                     phase_name(phase), attempt - 1 - n_released, reason,
                     research_get(r, RF_WORKER_ID));
        }
        change_init(out, CHANGE_UPDATE, id);
        if (!aborted) {
            emit_abort(ctx, r, reason, out);
        }
        fail(ctx, r, error, out);
        return;
    }
    /* Given up: its worker, if live, is free for the resend (it may be the one to get it) as
     * soon as its heartbeat says idle; one still busy with it (a worker that ignores the
     * abort of a timed-out dispatch) is not free, so never gets it back. */
    workers_release(ctx->workers, research_get(r, RF_WORKER_ID));
    const char *worker = workers_take(ctx->workers, wt, ctx->now_ms);
    if (worker == NULL && timed_out && !aborted) {
        /* Stopped now, not when a worker is free: it may be the only one of its type. */
        change_init(out, CHANGE_UPDATE, id);
        emit_abort(ctx, r, reason, out);
        change_set(out, RF_RESEND_REASON, REDISPATCH_PHASE_TIMEOUT);
        change_set_int(out, RF_WAITING_SINCE, ctx->now_ms);
        change_set_int(out, RF_UPDATED_AT, ctx->now_ms);
        return;
    }
    if (worker == NULL) {
        wait_for_worker(ctx, r, wt, out);
        return;
    }
    change_init(out, CHANGE_UPDATE, id);
    if (!aborted) {
        emit_abort(ctx, r, reason, out);
    }
    char dispatch_id[LIMITS_ID_MAX + 1];
    send_dispatch(ctx, r, phase, worker, attempt, out, dispatch_id, sizeof(dispatch_id));
    if (released) {
        change_set_int(out, RF_RELEASED, n_released);
    }
    struct event ev = {.type = EVENT_REDISPATCHED,
                       .research_id = id,
                       .phase = phase,
                       .old_dispatch_id = research_get(r, RF_DISPATCH_ID),
                       .dispatch_id = dispatch_id,
                       .attempt = attempt,
                       .reason = reason};
    emit_event(out, ctx, &ev);
}

void
machine_advance(const struct machine_ctx *ctx, const struct research *r, struct change *out)
{
    const char *id = research_get(r, RF_RESEARCH_ID);
    if (r->corrupt != NULL) {
        machine_fail_corrupt(ctx, r, out);
        return;
    }
    if (!research_is(r, RF_STATUS, STATUS_RUNNING)) {
        return;
    }
    if (machine_holds_worker(r)) {
        const char *resend = research_get(r, RF_RESEND_REASON);
        if (resend != NULL) {
            redispatch(ctx, r, resend, out);
            return;
        }
        bool picked_up = false;
        const char *lost = lost_dispatch(ctx, r, &picked_up);
        if (lost != NULL) {
            redispatch(ctx, r, lost, out);
            out->phase_timeout = strcmp(lost, REDISPATCH_PHASE_TIMEOUT) == 0; /* counted once */
        } else if (picked_up) {
            change_init(out, CHANGE_UPDATE, id);
            change_set_int(out, RF_PICKED_UP_AT, ctx->now_ms);
        }
        return;
    }
    if (!ready_to_start(r)) {
        return;
    }
    enum phase next = start_phase(r);
    if (next == PHASE_COMPLETED) {
        change_init(out, CHANGE_UPDATE, id);
        finish(ctx, r, PHASE_COMPLETED, out);
        struct event ev = {
            .type = EVENT_COMPLETED,
            .research_id = id,
            .strategy_name = research_get(r, RF_STRATEGY_NAME),
            .verdict = research_get(r, RF_VERDICT),
            .gate_rejection_reason = research_get(r, RF_GATE_REJECTION_REASON),
        };
        emit_event(out, ctx, &ev);
        return;
    }
    const char *worker = workers_take(ctx->workers, phase_worker_type(next), ctx->now_ms);
    if (worker == NULL) {
        /* No free worker: stay, with the finished result stored, and say since when. */
        wait_for_worker(ctx, r, phase_worker_type(next), out);
        return;
    }
    char dispatch_id[LIMITS_ID_MAX + 1];
    const int64_t attempt = 1;
    change_init(out, CHANGE_UPDATE, id);
    send_dispatch(ctx, r, next, worker, attempt, out, dispatch_id, sizeof(dispatch_id));
    change_set_int(out, RF_PHASE_STARTED_AT, ctx->now_ms);
    change_set_int(out, research_timeline_field(next, TIMELINE_STARTED_AT), ctx->now_ms);
    /* A phase started again (a resumed research) has not finished this time yet. */
    change_set(out, research_timeline_field(next, TIMELINE_FINISHED_AT), NULL);
    struct event ev = {.type = EVENT_PHASE_STARTED,
                       .research_id = id,
                       .phase = next,
                       .dispatch_id = dispatch_id,
                       .attempt = attempt};
    emit_event(out, ctx, &ev);
}

/* A cancel's outcome, borrowed: what is emitted and what is remembered. */
struct cancel_view {
    const char *outcome;
    const char *research_id;
    const char *phase;
    const char *dispatch_id;
};

/* The `cancelled` or `cancel_rejected` event of an outcome, first time or repeated. */
static void
emit_cancel_outcome(const struct machine_ctx *ctx, const struct cancel_view *v,
                    const char *request_id, struct change *out)
{
    struct event ev = {.research_id = v->research_id, .request_id = request_id};
    if (strcmp(v->outcome, CANCEL_CANCELLED) == 0) {
        ev.type = EVENT_CANCELLED;
        if (v->phase == NULL || phase_parse(v->phase, &ev.phase) != RC_OK) {
            ev.phase = PHASE_PENDING;
        }
        ev.dispatch_id = v->dispatch_id;
    } else {
        ev.type = EVENT_CANCEL_REJECTED;
        ev.reason = v->outcome;
    }
    emit_event(out, ctx, &ev);
}

/* Remember the outcome under the cancel's request_id, if it has one; then announce it. */
static void
conclude_cancel(const struct machine_ctx *ctx, const struct cancel *k, const struct cancel_view *v,
                struct change *out)
{
    if (k->request_id != NULL) {
        cancel_memo_set(&out->cancel, k->request_id, v->outcome, v->research_id, v->phase,
                        v->dispatch_id);
    }
    emit_cancel_outcome(ctx, v, k->request_id, out);
}

void
machine_cancel(const struct machine_ctx *ctx, const struct research *r, const struct cancel *k,
               struct change *out)
{
    const char *id = research_get(r, RF_RESEARCH_ID);
    const bool outstanding = machine_holds_worker(r);
    const char *dispatch_id = outstanding ? research_get(r, RF_DISPATCH_ID) : NULL;
    enum phase phase = research_phase(r);
    change_init(out, CHANGE_UPDATE, id);
    if (r->corrupt != NULL) {
        corrupt_hash(r, out);
    }
    finish(ctx, r, PHASE_CANCELLED, out);
    if (k->reason != NULL) {
        change_set(out, RF_ERROR, k->reason);
    }
    if (outstanding) {
        /* Its worker stops, and is free for others as soon as its heartbeat says idle. */
        emit_abort(ctx, r, "cancelled", out);
        timeline_mark_now(ctx, r, TIMELINE_FINISHED_AT, out);
    }
    struct cancel_view v = {.outcome = CANCEL_CANCELLED,
                            .research_id = id,
                            .phase = phase_name(phase),
                            .dispatch_id = dispatch_id};
    conclude_cancel(ctx, k, &v, out);
}

void
machine_cancel_reject(const struct machine_ctx *ctx, const struct cancel *k, const char *reason,
                      struct change *out)
{
    change_init(out, CHANGE_NOTE, NULL);
    struct cancel_view v = {.outcome = reason, .research_id = k->research_id};
    conclude_cancel(ctx, k, &v, out);
}

void
machine_cancel_repeat(const struct machine_ctx *ctx, const struct cancel_memo *first,
                      struct change *out)
{
    change_init(out, CHANGE_NOTE, NULL);
    struct cancel_view v = {.outcome = first->outcome,
                            .research_id = first->research_id,
                            .phase = first->phase,
                            .dispatch_id = first->dispatch_id};
    emit_cancel_outcome(ctx, &v, first->request_id, out);
}
