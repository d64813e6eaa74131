/* SPDX-License-Identifier: MIT
 * phase: the names of phases and worker types (contract §1) and the mapping between the
 * worked phases and the worker types that run them. Pure tables. */
#include "contract/phase.h"

#include <string.h>

static const char *const phase_names[PHASE_COUNT] = {
    [PHASE_PENDING] = "pending",     [PHASE_DESIGNING] = "designing",
    [PHASE_TRAINING] = "training",   [PHASE_BACKTESTING] = "backtesting",
    [PHASE_ASSESSING] = "assessing", [PHASE_COMPLETED] = "completed",
    [PHASE_FAILED] = "failed",       [PHASE_CANCELLED] = "cancelled",
};

static const char *const worker_type_names[WORKER_TYPE_COUNT] = {
    [WORKER_DESIGN] = "design",
    [WORKER_TRAINING] = "training",
    [WORKER_BACKTEST] = "backtest",
    [WORKER_ASSESSMENT] = "assessment",
};

/* worked phase <-> worker type, indexed by worker type */
static const enum phase worker_phases[WORKER_TYPE_COUNT] = {
    [WORKER_DESIGN] = PHASE_DESIGNING,
    [WORKER_TRAINING] = PHASE_TRAINING,
    [WORKER_BACKTEST] = PHASE_BACKTESTING,
    [WORKER_ASSESSMENT] = PHASE_ASSESSING,
};

const char *
phase_name(enum phase p)
{
    RC_ASSERT((unsigned)p < PHASE_COUNT);
    return phase_names[p];
}

enum rc_rc
phase_parse(const char *name, enum phase *out)
{
    if (name == NULL) {
        return RC_EINVAL;
    }
    for (size_t i = 0; i < PHASE_COUNT; i++) {
        if (strcmp(name, phase_names[i]) == 0) {
            *out = (enum phase)i;
            return RC_OK;
        }
    }
    return RC_EINVAL;
}

bool
phase_is_worked(enum phase p)
{
    return p >= PHASE_DESIGNING && p <= PHASE_ASSESSING;
}

bool
phase_is_final(enum phase p)
{
    return p == PHASE_COMPLETED || p == PHASE_FAILED || p == PHASE_CANCELLED;
}

enum worker_type
phase_worker_type(enum phase p)
{
    RC_ASSERT(phase_is_worked(p));
    for (size_t i = 0; i < WORKER_TYPE_COUNT; i++) {
        if (worker_phases[i] == p) {
            return (enum worker_type)i;
        }
    }
    RC_ASSERT(!"unreachable: every worked phase has a worker type");
    return WORKER_DESIGN;
}

enum phase
worker_type_phase(enum worker_type wt)
{
    RC_ASSERT((unsigned)wt < WORKER_TYPE_COUNT);
    return worker_phases[wt];
}

const char *
worker_type_name(enum worker_type wt)
{
    RC_ASSERT((unsigned)wt < WORKER_TYPE_COUNT);
    return worker_type_names[wt];
}

enum rc_rc
worker_type_parse(const char *name, enum worker_type *out)
{
    if (name == NULL) {
        return RC_EINVAL;
    }
    for (size_t i = 0; i < WORKER_TYPE_COUNT; i++) {
        if (strcmp(name, worker_type_names[i]) == 0) {
            *out = (enum worker_type)i;
            return RC_OK;
        }
    }
    return RC_EINVAL;
}
