/* SPDX-License-Identifier: MIT
 * fields: the names the contract gives to hash fields and their words (§5, §6), spelled here
 * once: the research hash, the heartbeat, rc:coordinator, rc:budget:<day>, the outcomes kept
 * for repeated requests, and the status words. Every program reads them from here. Pure. */
#ifndef RC_FIELDS_H
#define RC_FIELDS_H

#include "contract/phase.h"

/* Hash fields of contract §6 first, then ours, then each phase's result fields, then the
 * timeline (ours, written only: see RF_MIRRORED). To add a field: add it here and to the name
 * table in fields.c (a unit test checks both agree). */
enum research_field {
    RF_RESEARCH_ID = 0,
    RF_REQUEST_ID,
    RF_STATUS,
    RF_PHASE,
    RF_LAST_PHASE,
    RF_BRIEF,
    RF_MODEL,
    RF_BYPASS_GATES,
    RF_STRATEGY_NAME,
    RF_STRATEGY_PATH,
    RF_MODEL_PATH,
    RF_DISPATCH_ID,
    RF_WORKER_ID,
    RF_ATTEMPT,
    RF_CHILD_STATUS,
    RF_WAITING_SINCE,
    RF_CREATED_AT,
    RF_UPDATED_AT,
    RF_PHASE_STARTED_AT,
    RF_FINISHED_AT,
    RF_ERROR,
    RF_GATE_REJECTION_REASON,
    RF_VERDICT,
    RF_COST_USD,
    /* ours: when the current dispatch was sent (ms), for AGENT_DISPATCH_TIMEOUT */
    RF_DISPATCHED_AT,
    /* ours: when the current dispatch was seen in its worker's heartbeat (ms) */
    RF_PICKED_UP_AT,
    /* ours: the trigger's options map as JSON text (proto/json.h), absent when it had none */
    RF_OPTIONS,
    /* ours: how many of its dispatches came back `released`; they use up no attempt (§3) */
    RF_RELEASED,
    /* ours: why its current dispatch is to be sent again as soon as a worker is free (set by
     * a released completion, or a phase timeout whose abort went out; cleared when sent) */
    RF_RESEND_REASON,
    /* ours: how many times the research was resumed (absent: never); in its dispatch ids */
    RF_RESUMES,
    RF_RESULT_FIRST, /* result fields follow: design.*, training.*, backtest.*, assessment.* */
    /* ours: timeline.<phase>.<mark> for each worked phase, TIMELINE_MARKS fields a phase in
     * enum timeline_mark order (research_timeline_field) */
    RF_TIMELINE_FIRST = RF_RESULT_FIRST + 23,
    RF_COUNT = RF_TIMELINE_FIRST + 4 * 4
};

/* The fields the coordinator reads back (its in-memory mirror holds these only): the timeline
 * is for operators, written by the coordinator and never read by it. */
#define RF_MIRRORED RF_TIMELINE_FIRST

/* A worked phase's timeline fields (ours): when it started (ms, its phase_started dispatch),
 * when its dispatch ended (ms: the completion applied, or the research failed or cancelled
 * while it was out), and the worker and attempt of its latest dispatch. */
enum timeline_mark {
    TIMELINE_STARTED_AT = 0,
    TIMELINE_FINISHED_AT,
    TIMELINE_WORKER_ID,
    TIMELINE_ATTEMPTS,
    TIMELINE_MARKS
};
/* "timeline.training.started_at" is research_timeline_field(PHASE_TRAINING, ...); `p` must be
 * a worked phase (phase_is_worked). */
enum research_field research_timeline_field(enum phase p, enum timeline_mark m);

/* The key every phase's params carry: the trigger's options map, or nil (§1). */
#define PARAM_OPTIONS "options"

/* The `reason` of a redispatch (§4, §7): the worker stopped heartbeating; the dispatch was
 * not picked up within AGENT_DISPATCH_TIMEOUT; the worker, still live, stopped naming it;
 * it came back `released` (§3); it ran past AGENT_PHASE_TIMEOUT_<TYPE>. */
#define REDISPATCH_WORKER_DEAD "worker_dead"
#define REDISPATCH_DISPATCH_TIMEOUT "dispatch_timeout"
#define REDISPATCH_DISPATCH_LOST "dispatch_lost"
#define REDISPATCH_RELEASED "released"
#define REDISPATCH_PHASE_TIMEOUT "phase_timeout"

/* "research_id", ..., "training.accuracy". */
const char *research_field_name(enum research_field f);
/* The field named `name`, or -1. */
int research_field_parse(const char *name);
/* The index of `wt`'s result key `key`, or -1. */
int research_result_field(enum worker_type wt, const char *key);

/* The research's `status` (§6): running, or its final phase's name (phase_name). */
#define STATUS_RUNNING "running"

/* rc:request:<request_id> of a rejected trigger is REQUEST_REJECTED + its reason (§6). */
#define REQUEST_REJECTED "rejected:"

/* The `reason` of a rejected trigger (§4) and of a cancel that could not be (§3). */
#define REASON_AT_CAPACITY "at_capacity"
#define REASON_BUDGET_EXHAUSTED "budget_exhausted"
#define REASON_INVALID "invalid"
#define REASON_NOT_FOUND "not_found"
#define REASON_NOT_CANCELLABLE "not_cancellable"
/* A cancel's outcome (rc:cancel:<request_id> `outcome`): this, or one of the two above. */
#define CANCEL_CANCELLED "cancelled"
/* A resume's outcome (rc:resume:<request_id> `outcome`, same fields as a cancel's): this, or
 * the reason of its resume_rejected: not_found, at_capacity or this one. */
#define RESUME_RESUMED "resumed"
#define REASON_NOT_RESUMABLE "not_resumable"

/* `child_status` (§6): the current dispatch's state; absent before the first dispatch. */
#define CHILD_DISPATCHED "dispatched"
#define CHILD_COMPLETED "completed"
#define CHILD_FAILED "failed"

/* The heartbeat hash rc:worker:<id> (§5), written by workers only. */
#define HB_TYPE "type"
#define HB_STATE "state"
#define HB_DISPATCH_ID "dispatch_id"
#define HB_RESEARCH_ID "research_id"
#define HB_LAST_SEEN "last_seen"
#define HB_PROGRESS "progress" /* optional (v3) */
#define HB_STEP "step"         /* optional (v3) */
#define HB_HOST "host"         /* optional (v3) */
#define HB_LABELS "labels"     /* optional (v3) */

/* A heartbeat's `state`. */
enum hb_state { HB_IDLE = 0, HB_BUSY, HB_DRAINING, HB_STATE_COUNT };
/* "idle", "busy", "draining". */
const char *hb_state_name(enum hb_state s);
/* RC_EINVAL for any other word; *out written only on success. */
enum rc_rc hb_state_parse(const char *name, enum hb_state *out);

/* rc:coordinator (§6): who leads and how the loop goes, and its counters. */
#define COORD_INSTANCE "instance"
#define COORD_VERSION "version"
#define COORD_STARTED_AT "started_at"
#define COORD_LAST_CYCLE_AT "last_cycle_at"
#define COORD_CYCLE_MS "cycle_ms"
#define COORD_ACTIVE "active"
#define COORD_LIMIT "limit"
#define COORD_TRIGGERS "triggers"
#define COORD_COMPLETIONS "completions"
#define COORD_STALE_COMPLETIONS "stale_completions"
#define COORD_INVALID_INPUTS "invalid_inputs"
#define COORD_REDISPATCHES "redispatches"

/* rc:budget:<day> (§6). */
#define BUDGET_SPENT_USD "spent_usd"
#define BUDGET_DAILY_LIMIT_USD "daily_limit_usd"

/* rc:request_figures:<request_id>: a rejected trigger's figures, named as in its event (§4). */
#define FIGURE_ACTIVE_COUNT "active_count"
#define FIGURE_LIMIT "limit"
#define FIGURE_REMAINING "remaining"
#define FIGURE_DAILY_LIMIT "daily_limit"

/* rc:cancel:<request_id>: a cancel's outcome, so that a repeat repeats it. */
#define CANCEL_OUTCOME "outcome"
#define CANCEL_RESEARCH_ID "research_id"
#define CANCEL_PHASE "phase"
#define CANCEL_DISPATCH_ID "dispatch_id"

#endif /* RC_FIELDS_H */
