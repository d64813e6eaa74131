/* SPDX-License-Identifier: MIT
 * phase: the names of phases, statuses and worker types of the contract (§1), and how they map
 * onto each other. Pure data, no I/O. */
#ifndef RC_PHASE_H
#define RC_PHASE_H

#include <stdbool.h>

#include "common/rc_err.h"

/* Research phases in order; the last three are the final statuses (contract §6 `phase`). */
enum phase {
    PHASE_PENDING = 0,
    PHASE_DESIGNING,
    PHASE_TRAINING,
    PHASE_BACKTESTING,
    PHASE_ASSESSING,
    PHASE_COMPLETED,
    PHASE_FAILED,
    PHASE_CANCELLED,
    PHASE_COUNT
};

enum worker_type {
    WORKER_DESIGN = 0,
    WORKER_TRAINING,
    WORKER_BACKTEST,
    WORKER_ASSESSMENT,
    WORKER_TYPE_COUNT
};

/* "pending", "designing", ...; never NULL for a valid enum. */
const char *phase_name(enum phase p);
/* RC_EINVAL for an unknown name; *out written only on success. */
enum rc_rc phase_parse(const char *name, enum phase *out);
/* True for designing..assessing: the phases a worker runs. */
bool phase_is_worked(enum phase p);
/* True for completed, failed, cancelled. */
bool phase_is_final(enum phase p);
/* The worker type of a worked phase (RC_ASSERT otherwise). */
enum worker_type phase_worker_type(enum phase p);
/* The phase a worker type runs. */
enum phase worker_type_phase(enum worker_type wt);

/* "design", "training", "backtest", "assessment". */
const char *worker_type_name(enum worker_type wt);
enum rc_rc worker_type_parse(const char *name, enum worker_type *out);

#endif /* RC_PHASE_H */
