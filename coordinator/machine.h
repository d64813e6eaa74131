/* SPDX-License-Identifier: MIT
 * machine: the research state machine of contract §1, §3-§5. Each function looks at one
 * research (as mirrored in memory) and one input or one cycle, and plans the next step as a
 * struct change: fields to write, events and dispatches to publish. Pure: no I/O, time given. */
#ifndef RC_MACHINE_H
#define RC_MACHINE_H

#include <stdbool.h>
#include <stdint.h>

#include "coordinator/change.h"

struct cancel;
struct cancel_memo;
struct cfg;
struct change;
struct completion;
struct research;
struct trigger;
struct workers;

struct machine_ctx {
    const struct cfg *cfg;
    int64_t now_ms;          /* Unix ms */
    struct workers *workers; /* free workers of this cycle (machine_advance only) */
    /* When the coordinator last found it had read every input Kafka held (Unix ms; 0:
     * never): a completion published before then has been applied. A picked-up dispatch its
     * worker stopped naming at T is taken as lost only when that was found after T, for the
     * worker may have sent its completion just before it turned idle (§7). */
    int64_t caught_up_at_ms;
    /* Set (when not NULL) by the machine when such a finding would settle a lost dispatch:
     * the loop then asks Kafka, and the next cycle decides. */
    bool *want_caught_up;
    /* Kafka is down: no worker can receive a dispatch, so none times out (§7). */
    bool kafka_down;
};

/* An accepted trigger: a new research `research_id` in phase pending, the request remembered,
 * an `accepted` event. */
void machine_accept(const struct machine_ctx *ctx, const struct trigger *t, const char *research_id,
                    struct change *out);

/* A rejected trigger: a `rejected` event with `reason` and, for at_capacity, the counts. The
 * outcome is remembered under rc:request:<id> unless the reason is "invalid". */
void machine_reject_capacity(const struct machine_ctx *ctx, const char *request_id,
                             int64_t active_count, int64_t limit, struct change *out);
void machine_reject_budget(const struct machine_ctx *ctx, const char *request_id, double remaining,
                           double daily_limit, struct change *out);
void machine_reject_invalid(const struct machine_ctx *ctx, const char *request_id, const char *why,
                            struct change *out);

/* A trigger's first outcome, as remembered under rc:request:<id>. */
struct machine_outcome {
    const char *value; /* "<research_id>" or "rejected:<reason>" */
    struct rejection_figures figures;
};

/* A trigger whose request_id was seen in the last 24 h: no change, the first outcome's event
 * again (type, reason, figures and message). */
void machine_repeat(const struct machine_ctx *ctx, const char *request_id,
                    const struct machine_outcome *first, struct change *out);

enum machine_verdict {
    MACHINE_APPLIED = 0, /* `out` holds the effect */
    MACHINE_STALE,       /* not the research's current dispatch: nothing changes */
};

/* A completion for `r` (NULL when no active research has that id). Records the result, fails
 * the research on `failed` or a bad result, judges the gate after training and backtest. */
enum machine_verdict machine_complete(const struct machine_ctx *ctx, const struct research *r,
                                      const struct completion *c, struct change *out);

/* One cycle's step for `r`: start its next phase on a free worker, or finish it, or record
 * that it waits. `out` must be CHANGE_INIT; it stays so when nothing changes (the common
 * case, which allocates nothing). */
void machine_advance(const struct machine_ctx *ctx, const struct research *r, struct change *out);

/* Fail `r` now with `error` (a handler error, a timeout). */
void machine_fail(const struct machine_ctx *ctx, const struct research *r, const char *error,
                  struct change *out);

/* A cancel for the active research `r`: cancelled at once, an `abort` addressed to the worker
 * of its outstanding dispatch, the `cancelled` event, the outcome remembered when the cancel
 * has a request_id. */
void machine_cancel(const struct machine_ctx *ctx, const struct research *r, const struct cancel *k,
                    struct change *out);
/* A cancel that cannot be: `reason` "not_found" or "not_cancellable" (already finished). */
void machine_cancel_reject(const struct machine_ctx *ctx, const struct cancel *k,
                           const char *reason, struct change *out);
/* A cancel whose request_id was seen in the last 24 h: its first outcome's event again. */
void machine_cancel_repeat(const struct machine_ctx *ctx, const struct cancel_memo *first,
                           struct change *out);

/* The change that fails the corrupt research `r` (r->corrupt set) alone: its hash written as
 * failed with that error (or, when its key holds something else, left alone), out of the
 * active set, a `failed` event. */
void machine_fail_corrupt(const struct machine_ctx *ctx, const struct research *r,
                          struct change *out);

/* True when `r` holds a dispatch that is not finished. */
bool machine_holds_worker(const struct research *r);
/* True when that dispatch's worker is not free for others: it holds one, and has not given
 * it up as lost (a research waiting to send its lost dispatch again pins no worker, so that
 * a live worker that lost it, restarted, may take the resend). */
bool machine_pins_worker(const struct research *r);
/* True when `r` can move only once a worker of *wt is free: its next phase is ready to be
 * dispatched, or its lost dispatch to be sent again. *wt written only when true. */
bool machine_wants_worker(const struct research *r, enum worker_type *wt);
/* True when `r` is recorded as waiting for a free worker (waiting_since set), *wt of which
 * type (written only when true). From its fields alone, not r->corrupt, so that a tally kept
 * as fields change stays exact. */
bool machine_waits_for(const struct research *r, enum worker_type *wt);

#endif /* RC_MACHINE_H */
