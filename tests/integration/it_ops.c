/* SPDX-License-Identifier: MIT
 * it_ops: what operators and upstream services rely on (contract §3, §5): cancelling one
 * research while the others go on (its worker gets the abort and new work), the daily budget
 * (spent by one research's design, it refuses the next trigger while the first completes;
 * `force` passes), and inputs that may be sent twice (one research per request_id, duplicated
 * and stale completions change nothing, a repeated cancel repeats its outcome). */
#include "tests/support/test.h"

#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/clock.h"
#include "common/num.h"
#include "coordinator/budget.h"
#include "proto/msg.h"
#include "tests/support/it_env.h"

#define WAIT_MS 20000

static const char *const fast[] = {"--duration-ms", "30", NULL};

static void
start_workers(struct it_env *env, const char *const training_args[])
{
    it_env_start_workers(env, "design", 1, NULL, fast);
    it_env_start_workers(env, "training", 1, NULL, training_args != NULL ? training_args : fast);
    it_env_start_workers(env, "backtest", 1, NULL, fast);
    it_env_start_workers(env, "assessment", 1, NULL, fast);
}

static char *
trigger_ok(struct it_env *env, const char *request_id, bool force)
{
    struct trigger t = {
        .request_id = request_id, .brief = "momentum on BTC 1h bars", .force = force};
    it_send_trigger(env, &t);
    const struct event *ev = it_event_wait_request(env, EVENT_ACCEPTED, request_id, WAIT_MS);
    assert_non_null(ev->research_id);
    return strdup(ev->research_id);
}

/* Index (in read order) of the first event of `type` for `id`, or SIZE_MAX. */
static size_t
event_index(struct it_env *env, enum event_type type, const char *id, enum phase phase)
{
    struct it_topic *t = it_events(env);
    it_topic_poll(t, 0);
    for (size_t i = 0; i < it_topic_count(t); i++) {
        const struct msg *m = it_topic_msg(t, i)->decoded;
        if (m != NULL && m->u.event.type == type && m->u.event.research_id != NULL &&
            strcmp(m->u.event.research_id, id) == 0 &&
            (type != EVENT_PHASE_STARTED || m->u.event.phase == phase)) {
            return i;
        }
    }
    return SIZE_MAX;
}

/* The one abort read on wt's dispatch topic for `dispatch_id`, waiting for it. */
struct abort_probe {
    const char *dispatch_id;
};

static bool
is_abort_for(const struct it_msg *m, void *arg)
{
    const struct abort_probe *p = arg;
    return m->decoded != NULL && m->decoded->kind == MSG_ABORT &&
           strcmp(m->decoded->u.abort.dispatch_id, p->dispatch_id) == 0;
}

static size_t
count_aborts(struct it_env *env, enum worker_type wt, const char *dispatch_id)
{
    struct it_topic *t = it_dispatches(env, wt);
    it_topic_poll(t, 0);
    struct abort_probe p = {dispatch_id};
    size_t n = 0;
    for (size_t i = 0; i < it_topic_count(t); i++) {
        n += is_abort_for(it_topic_msg(t, i), &p);
    }
    return n;
}

static void
assert_field(struct it_env *env, const char *id, const char *field, const char *want)
{
    char *got = it_research_hget(env, id, field);
    if (got == NULL || strcmp(got, want) != 0) {
        it_fail(env, "%s: %s is \"%s\", want \"%s\"", id, field, got ? got : "(absent)", want);
    }
    free(got);
}

static long long
counter(struct it_env *env, const char *name)
{
    char *v = it_redis_hget(env, "rc:coordinator", name);
    int64_t n = 0;
    if (v != NULL) {
        (void)num_parse_i64(v, strlen(v), &n);
    }
    free(v);
    return n;
}

/* Wait until at least n events of `type` (for research_id, or any when NULL) were read. */
struct count_probe {
    struct it_env *env;
    enum event_type type;
    const char *research_id;
    size_t n;
};

static bool
enough_events(void *arg)
{
    const struct count_probe *p = arg;
    return it_event_count(p->env, p->type, p->research_id) >= p->n;
}

static bool
wait_events(struct it_env *env, enum event_type type, const char *research_id, size_t n)
{
    struct count_probe p = {env, type, research_id, n};
    return it_wait_until(enough_events, &p, WAIT_MS);
}

/* Wait until the coordinator's stale_completions counter reaches n. */
struct stale_probe {
    struct it_env *env;
    long long n;
};

static bool
enough_stale(void *arg)
{
    const struct stale_probe *p = arg;
    return counter(p->env, "stale_completions") >= p->n;
}

static void
wait_stale(struct it_env *env, long long n)
{
    struct stale_probe p = {env, n};
    if (!it_wait_until(enough_stale, &p, WAIT_MS)) {
        it_fail(env, "stale_completions is %lld, want %lld", counter(env, "stale_completions"), n);
    }
}

/* ---- cancel ---- */

static void
test_ops_cancel_one_while_it_trains(void **state)
{
    struct it_env *env = *state;
    /* One training worker, slow enough to cancel B in the middle of its training. */
    const char *const slow[] = {"--duration-ms", "1500", NULL};
    start_workers(env, slow);
    it_env_start_coordinator(env, NULL);
    char *a = trigger_ok(env, "req-a", false);
    char *b = trigger_ok(env, "req-b", false);
    char *c = trigger_ok(env, "req-c", false);

    /* B trains after A (first come, first served); C waits for the same worker. */
    const struct dispatch *bd = it_dispatch_wait(env, WORKER_TRAINING, b, 1, WAIT_MS);
    char *b_dispatch = strdup(bd->dispatch_id), *b_worker = strdup(bd->worker_id);
    it_research_wait(env, b, "phase", "training", WAIT_MS);
    struct cancel k = {.research_id = b, .request_id = "cx-b", .reason = "wrong brief"};
    it_send_cancel(env, &k);
    const struct event *ev = it_event_wait_request(env, EVENT_CANCELLED, "cx-b", WAIT_MS);
    assert_string_equal(ev->research_id, b);
    assert_int_equal(ev->phase, PHASE_TRAINING);
    assert_string_equal(ev->dispatch_id, b_dispatch);

    /* B's worker got the abort, addressed to it, naming B's dispatch. */
    struct abort_probe p = {b_dispatch};
    const struct it_msg *am =
        it_topic_wait(it_dispatches(env, WORKER_TRAINING), is_abort_for, &p, WAIT_MS);
    assert_non_null(am);
    assert_string_equal(am->key, b_worker);
    assert_string_equal(am->decoded->u.abort.worker_id, b_worker);
    assert_string_equal(am->decoded->u.abort.research_id, b);
    assert_string_equal(am->decoded->u.abort.reason, "cancelled");

    /* B is finished as cancelled at once; A and C complete; C trained on B's worker. */
    assert_field(env, b, "status", "cancelled");
    assert_field(env, b, "phase", "cancelled");
    assert_field(env, b, "last_phase", "training");
    assert_field(env, b, "error", "wrong brief");
    const struct dispatch *cd = it_dispatch_wait(env, WORKER_TRAINING, c, 1, WAIT_MS);
    assert_string_equal(cd->worker_id, b_worker);
    it_event_wait(env, EVENT_COMPLETED, a, WAIT_MS);
    it_event_wait(env, EVENT_COMPLETED, c, WAIT_MS);
    assert_true(event_index(env, EVENT_PHASE_STARTED, c, PHASE_TRAINING) >
                event_index(env, EVENT_CANCELLED, b, PHASE_PENDING));
    assert_int_equal(it_event_count(env, EVENT_COMPLETED, b), 0);
    assert_int_equal(it_event_count(env, EVENT_PHASE_STARTED, b), 2); /* design, training */
    assert_field(env, b, "status", "cancelled");                      /* nothing moved it since */
    assert_true(it_redis_zcard(env, "rc:active") == 0);

    /* The same cancel again repeats its outcome (no second abort); other cancels are refused
     * with the reason. */
    it_send_cancel(env, &k);
    struct cancel finished = {.research_id = a, .request_id = "cx-a"};
    struct cancel unknown = {.research_id = "rs_00000000000000000000000000", .request_id = "cx-u"};
    struct cancel again_new = {.research_id = b, .request_id = "cx-b2"};
    it_send_cancel(env, &finished);
    it_send_cancel(env, &unknown);
    it_send_cancel(env, &again_new);
    ev = it_event_wait_request(env, EVENT_CANCEL_REJECTED, "cx-a", WAIT_MS);
    assert_string_equal(ev->reason, "not_cancellable");
    assert_string_equal(ev->research_id, a);
    ev = it_event_wait_request(env, EVENT_CANCEL_REJECTED, "cx-u", WAIT_MS);
    assert_string_equal(ev->reason, "not_found");
    ev = it_event_wait_request(env, EVENT_CANCEL_REJECTED, "cx-b2", WAIT_MS);
    assert_string_equal(ev->reason, "not_cancellable");
    assert_int_equal(it_event_count(env, EVENT_CANCELLED, b), 2);
    assert_int_equal(count_aborts(env, WORKER_TRAINING, b_dispatch), 1);
    assert_field(env, a, "status", "completed");
    assert_field(env, c, "status", "completed");
    free(a);
    free(b);
    free(c);
    free(b_dispatch);
    free(b_worker);
}

static void
test_ops_cancel_waiting_research_has_no_abort(void **state)
{
    struct it_env *env = *state;
    /* No workers at all: the research stays pending. */
    it_env_start_coordinator(env, NULL);
    struct trigger t = {.request_id = "req-p", .brief = "x", .force = true};
    it_send_trigger(env, &t);
    const struct event *acc = it_event_wait_request(env, EVENT_ACCEPTED, "req-p", WAIT_MS);
    char *id = strdup(acc->research_id);
    struct cancel k = {.research_id = id}; /* no request_id */
    it_send_cancel(env, &k);
    const struct event *ev = it_event_wait(env, EVENT_CANCELLED, id, WAIT_MS);
    assert_int_equal(ev->phase, PHASE_PENDING);
    assert_null(ev->dispatch_id);
    assert_null(ev->request_id);
    assert_field(env, id, "status", "cancelled");
    assert_field(env, id, "last_phase", "pending");
    assert_true(it_redis_zcard(env, "rc:finished") == 1);
    free(id);
}

/* ---- budget ---- */

static char *
today_budget_key(void)
{
    char day[11];
    clock_utc_day(clock_now_ms(), day);
    char *key = malloc(64);
    assert_non_null(key);
    snprintf(key, 64, "rc:budget:%s", day);
    return key;
}

static void
test_ops_budget_spent_by_a_design_refuses_the_next_trigger(void **state)
{
    struct it_env *env = *state;
    /* Each design and assessment costs $0.25; the day allows $0.10. Training is slow so the
     * first research is still running when the next trigger comes. */
    const char *const costly[] = {"--duration-ms", "30", "--cost-usd", "0.25", NULL};
    const char *const slow[] = {"--duration-ms", "800", NULL};
    it_env_start_workers(env, "design", 1, NULL, costly);
    it_env_start_workers(env, "training", 1, NULL, slow);
    it_env_start_workers(env, "backtest", 1, NULL, fast);
    it_env_start_workers(env, "assessment", 1, NULL, costly);
    const char *const budget[] = {"AGENT_DAILY_BUDGET=0.10", NULL};
    it_env_start_coordinator(env, budget);
    char *key = today_budget_key();

    /* Before anything is spent, today's hash shows the limit. */
    char *limit = it_redis_hget(env, key, "daily_limit_usd");
    assert_non_null(limit);
    assert_string_equal(limit, "0.10000000000000001");
    free(limit);

    char *first = trigger_ok(env, "req-1", false);
    it_research_wait(env, first, "phase", "training", WAIT_MS);
    assert_field(env, first, "cost_usd", "0.25");

    struct trigger t = {.request_id = "req-2", .brief = "another"};
    it_send_trigger(env, &t);
    const struct event *ev = it_event_wait_request(env, EVENT_REJECTED, "req-2", WAIT_MS);
    assert_string_equal(ev->reason, "budget_exhausted");
    assert_true(ev->has_budget);
    assert_true(ev->remaining < -0.1499 && ev->remaining > -0.1501);
    assert_true(ev->daily_limit > 0.0999 && ev->daily_limit < 0.1001);
    assert_string_equal(ev->message, "daily budget exhausted (-$0.15 remaining, limit $0.10)");

    /* The running research is not stopped by the budget: it completes, and pays for its
     * assessment too. */
    it_event_wait(env, EVENT_COMPLETED, first, WAIT_MS);
    assert_field(env, first, "cost_usd", "0.5");
    char *spent = it_redis_hget(env, key, "spent_usd");
    assert_non_null(spent);
    double spent_usd = 0;
    assert_true(num_parse_f64(spent, strlen(spent), &spent_usd));
    assert_true(spent_usd > 0.4999 && spent_usd < 0.5001);
    free(spent);

    /* The same request again: the first outcome, figures included; nothing created. */
    it_send_trigger(env, &t);
    assert_true(wait_events(env, EVENT_REJECTED, NULL, 2));
    assert_true(it_redis_zcard(env, "rc:finished") == 1);

    /* researchctl says it the way an operator reads it; --force is accepted. */
    const char *const refused[] = {"researchctl", "trigger", "--brief", "third", NULL};
    char *out = NULL;
    assert_int_equal(it_env_run(env, "ctl-refused", refused, NULL, WAIT_MS, &out), 1);
    if (strstr(out, "Cannot trigger: daily budget exhausted (-$0.40 remaining)") == NULL ||
        strstr(out, "--force") == NULL) {
        it_fail(env, "researchctl said:\n%s", out);
    }
    free(out);
    const char *const forced[] = {"researchctl", "trigger", "--brief", "forced", "--force", NULL};
    assert_int_equal(it_env_run(env, "ctl-forced", forced, NULL, WAIT_MS, &out), 0);
    const char *line = strstr(out, "Research triggered: ");
    if (line == NULL) {
        it_fail(env, "researchctl said:\n%s", out);
    }
    char forced_id[128];
    assert_int_equal(sscanf(line, "Research triggered: %127s", forced_id), 1);
    free(out);
    it_event_wait(env, EVENT_COMPLETED, forced_id, WAIT_MS);
    free(first);
    free(key);
}

/* ---- idempotent inputs ---- */

static void
test_ops_trigger_sent_twice_makes_one_research(void **state)
{
    struct it_env *env = *state;
    start_workers(env, NULL);
    it_env_start_coordinator(env, NULL);
    struct trigger t = {.request_id = "req-twice", .brief = "once"};
    it_send_trigger(env, &t);
    it_send_trigger(env, &t);
    assert_true(wait_events(env, EVENT_ACCEPTED, NULL, 2));
    const struct event *first = it_event_wait_request(env, EVENT_ACCEPTED, "req-twice", WAIT_MS);
    char *id = strdup(first->research_id);
    it_event_wait(env, EVENT_COMPLETED, id, WAIT_MS);
    /* Once more after it finished: still the same research, nothing new. */
    it_send_trigger(env, &t);
    assert_true(wait_events(env, EVENT_ACCEPTED, NULL, 3));
    struct it_topic *ev = it_events(env);
    size_t accepted = 0;
    for (size_t i = 0; i < it_topic_count(ev); i++) {
        const struct msg *m = it_topic_msg(ev, i)->decoded;
        if (m != NULL && m->u.event.type == EVENT_ACCEPTED) {
            assert_string_equal(m->u.event.research_id, id);
            accepted++;
        }
    }
    assert_int_equal(accepted, 3);
    assert_int_equal(it_event_count(env, EVENT_PHASE_STARTED, id), 4);
    assert_int_equal(it_event_count(env, EVENT_COMPLETED, id), 1);
    assert_true(it_redis_zcard(env, "rc:finished") == 1);
    assert_true(it_redis_zcard(env, "rc:active") == 0);
    free(id);
}

/* HGETALL of a research as one comparable text. */
static char *
research_text(struct it_env *env, const char *id)
{
    char key[256];
    snprintf(key, sizeof(key), "rc:research:%s", id);
    const char *const cmd[] = {"HGETALL", key};
    redisReply *r = it_redis_cmd(env, 2, cmd);
    size_t cap = 1 << 16, len = 0;
    char *text = calloc(1, cap);
    assert_non_null(text);
    for (size_t i = 0; r->type == REDIS_REPLY_ARRAY && i < r->elements; i++) {
        len += (size_t)snprintf(text + len, cap - len, "%s\n", r->element[i]->str);
        assert_true(len < cap);
    }
    freeReplyObject(r);
    return text;
}

static void
test_ops_duplicated_and_stale_completions_change_nothing(void **state)
{
    struct it_env *env = *state;
    const char *const slow[] = {"--duration-ms", "4000", NULL}; /* still training when checked */
    start_workers(env, slow);
    it_env_start_coordinator(env, NULL);
    char *id = trigger_ok(env, "req-dup", false);
    /* While it trains: its design completion again (a duplicate), and answers that are not
     * its current dispatch's (another dispatch id, another worker). */
    const struct dispatch *dd = it_dispatch_wait(env, WORKER_DESIGN, id, 1, WAIT_MS);
    char *design_dispatch = strdup(dd->dispatch_id), *design_worker = strdup(dd->worker_id);
    const struct dispatch *td = it_dispatch_wait(env, WORKER_TRAINING, id, 1, WAIT_MS);
    char *training_dispatch = strdup(td->dispatch_id), *training_worker = strdup(td->worker_id);
    it_research_wait(env, id, "child_status", "dispatched", WAIT_MS);
    /* Settled: its training was seen in the worker's heartbeat (picked_up_at written). */
    it_research_wait(env, id, "picked_up_at", NULL, WAIT_MS);
    char *before = research_text(env, id);
    long long stale_before = counter(env, "stale_completions");

    const struct kv design[] = {{"strategy_name", value_str("other_name")}};
    const struct kv training[] = {{"accuracy", value_float(0.01)}, {"final_loss", value_float(9)}};
    struct completion dup = {.dispatch_id = design_dispatch,
                             .research_id = id,
                             .worker_id = design_worker,
                             .status = COMPLETION_COMPLETED,
                             .result = design,
                             .n_result = 1};
    struct completion wrong_worker = {.dispatch_id = training_dispatch,
                                      .research_id = id,
                                      .worker_id = "g9-training-7",
                                      .status = COMPLETION_COMPLETED,
                                      .result = training,
                                      .n_result = 2};
    struct completion wrong_dispatch = {.dispatch_id = "rs_x:training:9",
                                        .research_id = id,
                                        .worker_id = training_worker,
                                        .status = COMPLETION_FAILED,
                                        .error = "late"};
    struct completion unknown = {
        .dispatch_id = "d-1",
        .research_id = "rs_unknown",
        .worker_id = "w-1",
        .status = COMPLETION_FAILED};
    it_send_completion(env, &dup);
    it_send_completion(env, &wrong_worker);
    it_send_completion(env, &wrong_dispatch);
    it_send_completion(env, &unknown);
    wait_stale(env, stale_before + 4);
    char *after = research_text(env, id);
    assert_string_equal(after, before);
    assert_int_equal(it_event_count(env, EVENT_FAILED, id), 0);

    /* It completes normally, with its real results; the real completions duplicated after the
     * end change nothing either. */
    it_event_wait(env, EVENT_COMPLETED, id, WAIT_MS);
    char *name = it_research_hget(env, id, "design.strategy_name");
    assert_non_null(name);
    assert_string_not_equal(name, "other_name");
    assert_field(env, id, "strategy_name", name);
    free(name);
    char *done = research_text(env, id);
    it_send_completion(env, &dup);
    it_send_completion(env, &dup);
    wait_stale(env, stale_before + 6);
    char *done_after = research_text(env, id);
    assert_string_equal(done_after, done);
    assert_int_equal(it_event_count(env, EVENT_COMPLETED, id), 1);
    free(before);
    free(after);
    free(done);
    free(done_after);
    free(design_dispatch);
    free(design_worker);
    free(training_dispatch);
    free(training_worker);
    free(id);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_ops_cancel_one_while_it_trains, it_setup, it_teardown),
        cmocka_unit_test_setup_teardown(test_ops_cancel_waiting_research_has_no_abort, it_setup,
                                        it_teardown),
        cmocka_unit_test_setup_teardown(test_ops_budget_spent_by_a_design_refuses_the_next_trigger,
                                        it_setup, it_teardown),
        cmocka_unit_test_setup_teardown(test_ops_trigger_sent_twice_makes_one_research, it_setup,
                                        it_teardown),
        cmocka_unit_test_setup_teardown(test_ops_duplicated_and_stale_completions_change_nothing,
                                        it_setup, it_teardown),
    };
    return IT_RUN_GROUP("it_ops", tests);
}
