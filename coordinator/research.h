/* SPDX-License-Identifier: MIT
 * research: one research as the coordinator holds it in memory, a mirror of its Redis hash
 * (contract §6): every field as text, indexed by enum research_field, plus typed readers.
 * Plain data; the registry owns the live ones. */
#ifndef RC_RESEARCH_H
#define RC_RESEARCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "proto/phase.h"

/* Hash fields of contract §6 first, then ours, then each phase's result fields. To add a
 * field: add it here and to the name table in research.c (a unit test checks both agree). */
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
    RF_RESULT_FIRST, /* result fields follow: design.*, training.*, backtest.*, assessment.* */
    RF_COUNT = RF_RESULT_FIRST + 23
};

struct research {
    char *f[RF_COUNT]; /* owned; NULL = absent (never "") */
    enum phase phase;  /* f[RF_PHASE] parsed, kept by research_set: read every pass */
    size_t slot;       /* its index in the registry's age order, kept by the registry */
};

/* "research_id", ..., "training.accuracy". */
const char *research_field_name(enum research_field f);
/* The field named `name`, or -1. */
int research_field_parse(const char *name);
/* The index of `wt`'s result key `key`, or -1. */
int research_result_field(enum worker_type wt, const char *key);

/* Set (copying `value`; NULL or "" clears) one field. */
void research_set(struct research *r, enum research_field f, const char *value);
const char *research_get(const struct research *r, enum research_field f); /* NULL if absent */
/* A deep copy; caller frees with research_free. */
struct research *research_dup(const struct research *r);
struct research *research_new(void);
void research_free(struct research *r);

/* Typed readers. phase: PHASE_PENDING when unreadable. int: 0 when absent or unreadable. */
enum phase research_phase(const struct research *r);
int64_t research_int(const struct research *r, enum research_field f);
bool research_is(const struct research *r, enum research_field f, const char *value);

#endif /* RC_RESEARCH_H */
