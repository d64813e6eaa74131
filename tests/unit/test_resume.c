/* SPDX-License-Identifier: MIT
 * test_resume: a resume planned on a finished research as the loop plans it (resume_plan,
 * then the mirror gets the research and the next advance dispatches): which phase it re-opens,
 * which fields are cleared and which kept, the dispatch ids after it, and every refusal. */
#include "tests/support/test.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/cfg.h"
#include "contract/fields.h"
#include "coordinator/change.h"
#include "coordinator/machine.h"
#include "coordinator/research.h"
#include "coordinator/resume.h"
#include "coordinator/workers.h"
#include "proto/msg.h"

#define RID "rs_01HZZZTESTRESUME00000001"
#define NOW 1700000500000LL
#define CREATED "1700000000000"

struct fx {
    struct cfg cfg;
    struct workers *workers;
};

static int
setup(void **state)
{
    struct fx *f = calloc(1, sizeof(*f));
    assert_non_null(f);
    f->cfg.agent.max_attempts = 3;
    f->cfg.agent.dispatch_timeout_ms = 60000;
    f->cfg.agent.worker_timeout_ms = 15000;
    f->workers = workers_new();
    *state = f;
    return 0;
}

static int
teardown(void **state)
{
    struct fx *f = *state;
    workers_free(f->workers);
    free(f);
    return 0;
}

static struct machine_ctx
ctx_of(struct fx *f)
{
    return (struct machine_ctx){.cfg = &f->cfg, .now_ms = NOW, .workers = f->workers};
}

/* A cycle whose one live, idle worker is `id` of `type`. */
static void
offer(struct fx *f, const char *id, enum worker_type type)
{
    struct worker_beat *beats = calloc(1, sizeof(*beats));
    assert_non_null(beats);
    beats[0].id = malloc(strlen(id) + 1);
    assert_non_null(beats[0].id);
    memcpy(beats[0].id, id, strlen(id) + 1);
    beats[0].type = type;
    beats[0].idle = true;
    beats[0].last_seen_ms = NOW;
    workers_begin(f->workers, beats, 1, NOW, f->cfg.agent.worker_timeout_ms);
}

/* A research that failed in `last` (its dispatch there failed on attempt 2, one released),
 * after design gave its result. */
static struct research *
finished_in(const char *status, const char *last)
{
    struct research *r = research_new();
    const struct {
        enum research_field f;
        const char *v;
    } fields[] = {
        {RF_RESEARCH_ID, RID},
        {RF_REQUEST_ID, "req-1"},
        {RF_STATUS, status},
        {RF_PHASE, status},
        {RF_LAST_PHASE, last},
        {RF_BRIEF, "momentum"},
        {RF_BYPASS_GATES, "0"},
        {RF_STRATEGY_NAME, "mom_v1"},
        {RF_STRATEGY_PATH, "/s/mom_v1.py"},
        {RF_DISPATCH_ID, RID ":training:2"},
        {RF_WORKER_ID, "t1"},
        {RF_ATTEMPT, "2"},
        {RF_RELEASED, "1"},
        {RF_CHILD_STATUS, CHILD_FAILED},
        {RF_CREATED_AT, CREATED},
        {RF_UPDATED_AT, "1700000100000"},
        {RF_PHASE_STARTED_AT, "1700000050000"},
        {RF_DISPATCHED_AT, "1700000090000"},
        {RF_PICKED_UP_AT, "1700000091000"},
        {RF_FINISHED_AT, "1700000100000"},
        {RF_ERROR, "stub failure"},
        {RF_COST_USD, "0.25"},
    };
    for (size_t i = 0; i < N_OF(fields); i++) {
        research_set(r, fields[i].f, fields[i].v);
    }
    research_set(r, (enum research_field)research_result_field(WORKER_DESIGN, "strategy_name"),
                 "mom_v1");
    research_set(r, (enum research_field)research_result_field(WORKER_DESIGN, "cost_usd"), "0.25");
    return r;
}

static void
assert_planned(const struct change *c, enum research_field rf, const char *want)
{
    if (!c->set[rf]) {
        fail_msg("field %s not set by the change", research_field_name(rf));
    }
    const char *got = c->value[rf];
    if (want == NULL ? got != NULL : (got == NULL || strcmp(got, want) != 0)) {
        fail_msg("field %s: \"%s\", want \"%s\"", research_field_name(rf),
                 got != NULL ? got : "(clear)", want != NULL ? want : "(clear)");
    }
}

/* The change's message i, decoded (caller releases). */
static void
decode_out(const struct change *c, size_t i, struct msg *m)
{
    assert_true(i < c->n_out);
    enum msg_topic t = c->out[i].topic == TOPIC_EVENTS ? MSG_TOPIC_EVENTS : MSG_TOPIC_DISPATCH;
    struct rc_err err = RC_ERR_INIT;
    if (msg_decode(t, c->out[i].payload, c->out[i].len, m, &err) != RC_OK) {
        fail_msg("message %zu does not decode: %s", i, err.msg);
    }
}

/* Plan the resume and check what every resume shares; returns the mirrored research. */
static struct research *
resume_ok(struct fx *f, const struct research *r, const struct resume *k, struct change *c,
          const char *phase)
{
    struct machine_ctx ctx = ctx_of(f);
    struct research *active = NULL;
    char why[320] = "";
    if (!resume_plan(&ctx, r, k, c, &active, why, sizeof(why))) {
        fail_msg("resume refused: %s", why);
    }
    assert_non_null(active);
    assert_int_equal(c->kind, CHANGE_RESUME);
    assert_int_equal(c->hash, CHANGE_HASH_WRITE);
    assert_string_equal(c->research_id, RID);
    assert_int_equal(c->score, 1700000000000LL);
    assert_planned(c, RF_STATUS, STATUS_RUNNING);
    assert_planned(c, RF_PHASE, phase);
    const enum research_field cleared[] = {
        RF_LAST_PHASE,    RF_FINISHED_AT,   RF_ERROR,        RF_DISPATCH_ID,   RF_WORKER_ID,
        RF_WAITING_SINCE, RF_DISPATCHED_AT, RF_PICKED_UP_AT, RF_RESEND_REASON, RF_RELEASED};
    for (size_t i = 0; i < N_OF(cleared); i++) {
        assert_planned(c, cleared[i], NULL);
    }
    assert_planned(c, RF_ATTEMPT, "0");
    /* Results, the strategy, the cost and the brief are the earlier phases': untouched. */
    const enum research_field kept[] = {RF_STRATEGY_NAME, RF_STRATEGY_PATH, RF_COST_USD,
                                        RF_BRIEF,         RF_CREATED_AT,    RF_REQUEST_ID};
    for (size_t i = 0; i < N_OF(kept); i++) {
        assert_false(c->set[kept[i]]);
    }
    for (int i = RF_RESULT_FIRST; i < RF_COUNT; i++) {
        assert_false(c->set[i]);
    }
    /* The mirror's copy is an active research, as a loaded one would be. */
    char check[320];
    assert_true(research_check(active, RID, check, sizeof(check)));
    assert_string_equal(research_get(active, RF_PHASE), phase);
    /* One event: resumed, keyed by the research. */
    assert_int_equal(c->n_out, 1);
    struct msg m = MSG_INIT;
    decode_out(c, 0, &m);
    assert_int_equal(m.u.event.type, EVENT_RESUMED);
    assert_string_equal(m.u.event.research_id, RID);
    assert_string_equal(phase_name(m.u.event.phase), phase);
    if (k->request_id != NULL) {
        assert_string_equal(m.u.event.request_id, k->request_id);
        assert_string_equal(c->resume.request_id, k->request_id);
        assert_string_equal(c->resume.outcome, RESUME_RESUMED);
        assert_string_equal(c->resume.phase, phase);
    } else {
        assert_null(m.u.event.request_id);
        assert_null(c->resume.request_id);
    }
    assert_string_equal(c->out[0].key, RID);
    msg_release(&m);
    return active;
}

/* Advance `r` with one free worker of `wt`: the one dispatch and its phase_started event. */
static void
advance_dispatches(struct fx *f, struct research *r, enum worker_type wt, const char *phase,
                   const char *dispatch_id)
{
    /* A new worker each time: one a dispatch was sent to stays taken until it says idle. */
    static int n_workers;
    char worker[16];
    snprintf(worker, sizeof(worker), "w%d", ++n_workers);
    offer(f, worker, wt);
    struct machine_ctx ctx = ctx_of(f);
    struct change c = CHANGE_INIT;
    machine_advance(&ctx, r, &c);
    assert_int_equal(c.kind, CHANGE_UPDATE);
    assert_planned(&c, RF_PHASE, phase);
    assert_planned(&c, RF_DISPATCH_ID, dispatch_id);
    assert_planned(&c, RF_ATTEMPT, "1");
    assert_planned(&c, RF_CHILD_STATUS, CHILD_DISPATCHED);
    size_t n_dispatch = 0, n_started = 0;
    for (size_t i = 0; i < c.n_out; i++) {
        struct msg m = MSG_INIT;
        decode_out(&c, i, &m);
        if (m.kind == MSG_DISPATCH) {
            n_dispatch++;
            assert_string_equal(m.u.dispatch.dispatch_id, dispatch_id);
            assert_string_equal(phase_name(m.u.dispatch.phase), phase);
            assert_int_equal(m.u.dispatch.attempt, 1);
        } else {
            assert_int_equal(m.u.event.type, EVENT_PHASE_STARTED);
            assert_string_equal(m.u.event.dispatch_id, dispatch_id);
            assert_int_equal(m.u.event.attempt, 1);
            n_started++;
        }
        msg_release(&m);
    }
    assert_int_equal(n_dispatch, 1);
    assert_int_equal(n_started, 1);
    change_apply(&c, r);
    change_release(&c);
}

static void
test_resume_failed_in_training_dispatches_it_again_with_a_new_id(void **state)
{
    struct fx *f = *state;
    struct research *r = finished_in("failed", "training");
    struct resume k = {.research_id = RID, .request_id = "res-1"};
    struct change c = CHANGE_INIT;
    struct research *active = resume_ok(f, r, &k, &c, "training");
    assert_planned(&c, RF_CHILD_STATUS, NULL);
    assert_planned(&c, RF_RESUMES, "1");
    change_release(&c);
    /* attempt 1 again, a fresh AGENT_MAX_ATTEMPTS: the suffix keeps the id new */
    advance_dispatches(f, active, WORKER_TRAINING, "training", RID ":training:1:r1");

    /* Failed again, resumed again: r2. */
    research_set(active, RF_STATUS, "failed");
    research_set(active, RF_PHASE, "failed");
    research_set(active, RF_LAST_PHASE, "training");
    research_set(active, RF_CHILD_STATUS, CHILD_FAILED);
    struct resume again = {.research_id = RID};
    struct research *second = resume_ok(f, active, &again, &c, "training");
    assert_planned(&c, RF_RESUMES, "2");
    change_release(&c);
    advance_dispatches(f, second, WORKER_TRAINING, "training", RID ":training:1:r2");
    research_free(second);
    research_free(active);
    research_free(r);
}

static void
test_resume_cancelled_after_its_phase_completed_goes_on_to_the_next(void **state)
{
    struct fx *f = *state;
    /* Cancelled while it waited for a backtest worker: training's result is in. */
    struct research *r = finished_in("cancelled", "training");
    research_set(r, RF_CHILD_STATUS, CHILD_COMPLETED);
    research_set(r, RF_MODEL_PATH, "/m/1.bin");
    research_set(r, (enum research_field)research_result_field(WORKER_TRAINING, "accuracy"),
                 "0.61");
    struct resume k = {.research_id = RID, .request_id = "res-2"};
    struct change c = CHANGE_INIT;
    struct research *active = resume_ok(f, r, &k, &c, "training");
    assert_false(c.set[RF_CHILD_STATUS]); /* stays completed */
    change_release(&c);
    advance_dispatches(f, active, WORKER_BACKTEST, "backtesting", RID ":backtesting:1:r1");
    research_free(active);
    research_free(r);
}

static void
test_resume_cancelled_in_assessing_after_a_gate_rejection_assesses_again(void **state)
{
    struct fx *f = *state;
    struct research *r = finished_in("cancelled", "assessing");
    research_set(r, RF_CHILD_STATUS, CHILD_DISPATCHED);
    research_set(r, RF_GATE_REJECTION_REASON, "training: accuracy 0.05 < 0.10");
    struct resume k = {.research_id = RID};
    struct change c = CHANGE_INIT;
    struct research *active = resume_ok(f, r, &k, &c, "assessing");
    assert_false(c.set[RF_GATE_REJECTION_REASON]);
    change_release(&c);
    advance_dispatches(f, active, WORKER_ASSESSMENT, "assessing", RID ":assessing:1:r1");
    assert_string_equal(research_get(active, RF_GATE_REJECTION_REASON),
                        "training: accuracy 0.05 < 0.10");
    research_free(active);
    research_free(r);
}

static void
test_resume_phase_rules(void **state)
{
    (void)state;
    struct research *r = finished_in("failed", "backtesting");
    assert_int_equal(resume_phase(r), PHASE_BACKTESTING);
    research_set(r, RF_LAST_PHASE, "assessing");
    assert_int_equal(resume_phase(r), PHASE_ASSESSING);
    /* Failed while pending (it waited too long for a design worker): pending again. */
    research_set(r, RF_LAST_PHASE, "pending");
    assert_int_equal(resume_phase(r), PHASE_PENDING);
    /* No strategy, the one result later phases need: design again. */
    research_set(r, RF_LAST_PHASE, "backtesting");
    research_set(r, RF_STRATEGY_NAME, NULL);
    assert_int_equal(resume_phase(r), PHASE_DESIGNING);
    research_set(r, RF_LAST_PHASE, "designing");
    assert_int_equal(resume_phase(r), PHASE_DESIGNING);
    /* No readable last_phase: from the start. */
    research_set(r, RF_LAST_PHASE, NULL);
    assert_int_equal(resume_phase(r), PHASE_PENDING);
    research_set(r, RF_LAST_PHASE, "completed");
    assert_int_equal(resume_phase(r), PHASE_PENDING);
    research_free(r);
}

static void
test_resume_failed_while_pending_starts_its_first_phase(void **state)
{
    struct fx *f = *state;
    struct research *r = finished_in("failed", "pending");
    research_set(r, RF_STRATEGY_NAME, NULL);
    research_set(r, RF_CHILD_STATUS, NULL);
    struct resume k = {.research_id = RID};
    struct change c = CHANGE_INIT;
    struct research *active = resume_ok(f, r, &k, &c, "pending");
    change_release(&c);
    advance_dispatches(f, active, WORKER_DESIGN, "designing", RID ":designing:1:r1");
    research_free(active);
    research_free(r);
}

/* A refusal: false, no mirror copy, a resume_rejected not_resumable with `why` containing
 * `because`. */
static void
assert_refused(struct fx *f, const struct research *r, const char *because)
{
    struct machine_ctx ctx = ctx_of(f);
    struct resume k = {.research_id = RID, .request_id = "res-9"};
    struct change c = CHANGE_INIT;
    struct research *active = NULL;
    char why[320] = "";
    assert_false(resume_plan(&ctx, r, &k, &c, &active, why, sizeof(why)));
    assert_null(active);
    if (strstr(why, because) == NULL) {
        fail_msg("why is \"%s\", want it to say \"%s\"", why, because);
    }
    assert_int_equal(c.kind, CHANGE_NOTE);
    assert_false(c.any_set);
    assert_string_equal(c.resume.outcome, REASON_NOT_RESUMABLE);
    assert_string_equal(c.resume.research_id, RID);
    assert_int_equal(c.n_out, 1);
    struct msg m = MSG_INIT;
    decode_out(&c, 0, &m);
    assert_int_equal(m.u.event.type, EVENT_RESUME_REJECTED);
    assert_string_equal(m.u.event.reason, REASON_NOT_RESUMABLE);
    assert_string_equal(m.u.event.request_id, "res-9");
    assert_string_equal(m.u.event.research_id, RID);
    msg_release(&m);
    change_release(&c);
}

static void
test_resume_refuses_what_is_not_failed_or_cancelled(void **state)
{
    struct fx *f = *state;
    struct research *r = finished_in("completed", "assessing");
    assert_refused(f, r, "status is completed");
    research_set(r, RF_STATUS, STATUS_RUNNING);
    assert_refused(f, r, "status is running");
    /* Another type under its key. */
    research_set(r, RF_STATUS, "failed");
    research_set_corrupt(r, RESEARCH_STORED_FOREIGN, "corrupt research: hash: another type");
    assert_refused(f, r, "another type");
    research_free(r);
    /* A hash that would be no valid active research. */
    r = finished_in("failed", "training");
    research_set(r, RF_CREATED_AT, NULL);
    assert_refused(f, r, "created_at: missing");
    research_set(r, RF_CREATED_AT, CREATED);
    research_set(r, RF_RESUMES, "many");
    assert_refused(f, r, "resumes: not a whole number");
    research_free(r);
}

static void
test_resume_rejections_and_repeats(void **state)
{
    struct fx *f = *state;
    struct machine_ctx ctx = ctx_of(f);
    struct resume k = {.research_id = "rs_nobody", .request_id = "res-3"};
    struct change c = CHANGE_INIT;
    resume_reject(&ctx, &k, REASON_NOT_FOUND, &c);
    assert_int_equal(c.kind, CHANGE_NOTE);
    assert_string_equal(c.resume.request_id, "res-3");
    assert_string_equal(c.resume.outcome, REASON_NOT_FOUND);
    struct msg m = MSG_INIT;
    decode_out(&c, 0, &m);
    assert_int_equal(m.u.event.type, EVENT_RESUME_REJECTED);
    assert_string_equal(m.u.event.reason, REASON_NOT_FOUND);
    assert_string_equal(m.u.event.research_id, "rs_nobody");
    msg_release(&m);

    /* Repeated: the same event, nothing remembered again. */
    struct cancel_memo first = {0};
    cancel_memo_set(&first, "res-4", RESUME_RESUMED, RID, "backtesting", NULL);
    struct change again = CHANGE_INIT;
    resume_repeat(&ctx, &first, &again);
    assert_int_equal(again.kind, CHANGE_NOTE);
    assert_null(again.resume.request_id);
    assert_int_equal(again.n_out, 1);
    decode_out(&again, 0, &m);
    assert_int_equal(m.u.event.type, EVENT_RESUMED);
    assert_int_equal(m.u.event.phase, PHASE_BACKTESTING);
    assert_string_equal(m.u.event.request_id, "res-4");
    assert_string_equal(m.u.event.research_id, RID);
    msg_release(&m);
    cancel_memo_release(&first);
    change_release(&again);

    /* Without a request_id nothing is remembered. */
    struct resume anon = {.research_id = RID};
    struct change c2 = CHANGE_INIT;
    resume_reject(&ctx, &anon, REASON_AT_CAPACITY, &c2);
    assert_null(c2.resume.request_id);
    decode_out(&c2, 0, &m);
    assert_string_equal(m.u.event.reason, REASON_AT_CAPACITY);
    assert_null(m.u.event.request_id);
    msg_release(&m);
    change_release(&c2);
    change_release(&c);
}

static void
test_resume_change_merges_with_its_advance_only(void **state)
{
    struct fx *f = *state;
    struct research *r = finished_in("failed", "training");
    struct resume k = {.research_id = RID, .request_id = "res-5"};
    struct change c = CHANGE_INIT;
    struct research *active = resume_ok(f, r, &k, &c, "training");
    /* The pass's advance of it joins the resume (one atomic write)... */
    offer(f, "w1", WORKER_TRAINING);
    struct machine_ctx ctx = ctx_of(f);
    struct change adv = CHANGE_INIT;
    machine_advance(&ctx, active, &adv);
    assert_true(change_merge(&c, &adv));
    assert_int_equal(c.kind, CHANGE_RESUME);
    assert_planned(&c, RF_DISPATCH_ID, RID ":training:1:r1");
    assert_string_equal(c.resume.request_id, "res-5");
    assert_int_equal(c.n_out, 3); /* resumed, the dispatch, phase_started */
    /* ...but a resume never folds into an earlier change (a finish of this batch). */
    struct change fin = CHANGE_INIT;
    change_init(&fin, CHANGE_FINISH, RID);
    assert_false(change_merge(&fin, &c));
    struct change upd = CHANGE_INIT;
    change_init(&upd, CHANGE_UPDATE, RID);
    assert_false(change_merge(&upd, &c));
    change_release(&upd);
    change_release(&fin);
    change_release(&c);
    research_free(active);
    research_free(r);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(
            test_resume_failed_in_training_dispatches_it_again_with_a_new_id, setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_resume_cancelled_after_its_phase_completed_goes_on_to_the_next, setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_resume_cancelled_in_assessing_after_a_gate_rejection_assesses_again, setup,
            teardown),
        cmocka_unit_test(test_resume_phase_rules),
        cmocka_unit_test_setup_teardown(test_resume_failed_while_pending_starts_its_first_phase,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_resume_refuses_what_is_not_failed_or_cancelled, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_resume_rejections_and_repeats, setup, teardown),
        cmocka_unit_test_setup_teardown(test_resume_change_merges_with_its_advance_only, setup,
                                        teardown),
    };
    return cmocka_run_group_tests_name("resume", tests, NULL, NULL);
}
