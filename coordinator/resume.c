/* SPDX-License-Identifier: MIT
 * resume: a finished research re-opened at the phase it stopped in. */
#include "coordinator/resume.h"

#include <stdio.h>
#include <string.h>

#include "common/cfg.h"
#include "common/num.h"
#include "contract/fields.h"
#include "coordinator/change.h"
#include "coordinator/machine.h"
#include "coordinator/research.h"
#include "proto/msg.h"

/* The fields a finished research holds of its last dispatch and of the finish: cleared, so
 * that the phase is dispatched again cleanly (attempt 1, a fresh AGENT_MAX_ATTEMPTS and count
 * of released dispatches, no pick-up or wait pending). Results, gate fields and cost stay. */
static const enum research_field cleared[] = {
    RF_LAST_PHASE,    RF_FINISHED_AT,   RF_ERROR,        RF_DISPATCH_ID,   RF_WORKER_ID,
    RF_WAITING_SINCE, RF_DISPATCHED_AT, RF_PICKED_UP_AT, RF_RESEND_REASON, RF_RELEASED,
};

enum phase
resume_phase(const struct research *r)
{
    enum phase last = PHASE_PENDING;
    const char *text = research_get(r, RF_LAST_PHASE);
    if (text == NULL || phase_parse(text, &last) != RC_OK || phase_is_final(last)) {
        return PHASE_PENDING;
    }
    if (last != PHASE_PENDING && last != PHASE_DESIGNING &&
        research_get(r, RF_STRATEGY_NAME) == NULL) {
        return PHASE_DESIGNING;
    }
    return last;
}

static void
emit_outcome(const struct machine_ctx *ctx, const char *outcome, const char *research_id,
             const char *phase, const char *request_id, struct change *out)
{
    struct event ev = {.research_id = research_id, .request_id = request_id};
    if (strcmp(outcome, RESUME_RESUMED) == 0) {
        ev.type = EVENT_RESUMED;
        if (phase == NULL || phase_parse(phase, &ev.phase) != RC_OK) {
            ev.phase = PHASE_PENDING;
        }
    } else {
        ev.type = EVENT_RESUME_REJECTED;
        ev.reason = outcome;
    }
    struct msg m = MSG_INIT;
    m.kind = MSG_EVENT;
    m.ts_ms = ctx->now_ms;
    m.u.event = ev;
    const char *key = research_id != NULL ? research_id : request_id;
    change_emit(out, TOPIC_EVENTS, key, key != NULL ? strlen(key) : 0, &m);
}

/* Remember the outcome under the resume's request_id, if it has one; then announce it. */
static void
conclude(const struct machine_ctx *ctx, const struct resume *k, const char *outcome,
         const char *phase, struct change *out)
{
    if (k->request_id != NULL) {
        cancel_memo_set(&out->resume, k->request_id, outcome, k->research_id, phase, NULL);
    }
    emit_outcome(ctx, outcome, k->research_id, phase, k->request_id, out);
}

void
resume_reject(const struct machine_ctx *ctx, const struct resume *k, const char *reason,
              struct change *out)
{
    change_init(out, CHANGE_NOTE, NULL);
    conclude(ctx, k, reason, NULL, out);
}

void
resume_repeat(const struct machine_ctx *ctx, const struct cancel_memo *first, struct change *out)
{
    change_init(out, CHANGE_NOTE, NULL);
    emit_outcome(ctx, first->outcome, first->research_id, first->phase, first->request_id, out);
}

/* Why `r` is no research a resume re-opens, into why[]; false when it is one. */
static bool
refused(const struct research *r, char *why, size_t why_len)
{
    if (r->corrupt != NULL) {
        snprintf(why, why_len, "%s", r->corrupt);
        return true;
    }
    const char *status = research_get(r, RF_STATUS);
    if (status == NULL || (strcmp(status, phase_name(PHASE_FAILED)) != 0 &&
                           strcmp(status, phase_name(PHASE_CANCELLED)) != 0)) {
        snprintf(why, why_len, "status is %s, not failed or cancelled",
                 status != NULL ? status : "absent");
        return true;
    }
    /* Its count goes into the dispatch ids: one unreadable could repeat an id. */
    const char *resumes = research_get(r, RF_RESUMES);
    int64_t n = 0;
    if (resumes != NULL &&
        (!num_parse_i64(resumes, strlen(resumes), &n) || n < 0 || n >= RESEARCH_ATTEMPT_MAX)) {
        snprintf(why, why_len, "corrupt research: resumes: not a whole number 0..%d (\"%.40s\")",
                 RESEARCH_ATTEMPT_MAX - 1, resumes);
        return true;
    }
    return false;
}

bool
resume_plan(const struct machine_ctx *ctx, const struct research *r, const struct resume *k,
            struct change *out, struct research **active, char *why, size_t why_len)
{
    if (refused(r, why, why_len)) {
        resume_reject(ctx, k, REASON_NOT_RESUMABLE, out);
        return false;
    }
    const enum phase phase = resume_phase(r);
    change_init(out, CHANGE_RESUME, k->research_id);
    out->score = research_int(r, RF_CREATED_AT);
    change_set(out, RF_STATUS, STATUS_RUNNING);
    change_set(out, RF_PHASE, phase_name(phase));
    for (size_t i = 0; i < N_OF(cleared); i++) {
        change_set(out, cleared[i], NULL);
    }
    /* A phase whose result had come (it waited for the next phase's worker) keeps it: the
     * next phase is dispatched. Otherwise no child_status: the phase itself is dispatched
     * again (the machine's start_phase). */
    const char *last = research_get(r, RF_LAST_PHASE);
    if (!phase_is_worked(phase) || last == NULL || strcmp(last, phase_name(phase)) != 0 ||
        !research_is(r, RF_CHILD_STATUS, CHILD_COMPLETED)) {
        change_set(out, RF_CHILD_STATUS, NULL);
    }
    change_set(out, RF_ATTEMPT, "0");
    change_set_int(out, RF_RESUMES, research_int(r, RF_RESUMES) + 1);
    change_set_int(out, RF_UPDATED_AT, ctx->now_ms);
    change_set_int(out, RF_PHASE_STARTED_AT, ctx->now_ms);

    struct research *view = research_dup(r);
    change_apply(out, view);
    if (!research_check(view, k->research_id, why, why_len)) {
        research_free(view);
        change_release(out);
        resume_reject(ctx, k, REASON_NOT_RESUMABLE, out);
        return false;
    }
    *active = view;
    conclude(ctx, k, RESUME_RESUMED, phase_name(phase), out);
    return true;
}
