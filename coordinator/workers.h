/* SPDX-License-Identifier: MIT
 * workers: which workers are live and free this cycle (contract §5), from the heartbeats the
 * store read and the dispatches the coordinator itself holds, and the least-recently-dispatched
 * order among free workers. Pure bookkeeping, no I/O. */
#ifndef RC_WORKERS_H
#define RC_WORKERS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "contract/phase.h"

/* Contract §5: a worker that keeps heartbeating is never dead because its clock is up to this
 * much behind ours. */
#define WORKERS_CLOCK_SKEW_MS 30000

/* One heartbeat as read from rc:worker:<id>. */
struct worker_beat {
    char *id; /* owned */
    enum worker_type type;
    bool idle;         /* state == "idle" */
    bool draining;     /* state == "draining": live, not free */
    char *dispatch_id; /* owned; NULL when none */
    int64_t last_seen_ms; /* as the worker wrote it, by its own clock */
    /* Kept by workers_begin, by our clock (Unix ms): since when its heartbeats have named
     * `dispatch_id` (or none) without a break. */
    int64_t dispatch_since_ms;
};

struct workers;

struct workers *workers_new(void);
void workers_free(struct workers *w);

/* Take in a fresh read of the heartbeats at `now_ms` (takes ownership of `beats` and its
 * strings; the store kept only heartbeats, §5, none older than timeout + the clock skew).
 * Liveness is judged by our clock, not the workers' (§5): a worker is live while its
 * last_seen changed (as we saw it) less than `timeout_ms` ago; one first seen counts as just
 * seen. What we remember of workers no longer in the read is dropped. Holds and completions
 * seen before carry over: between reads, the coordinator's own record says who is busy. */
void workers_begin(struct workers *w, struct worker_beat *beats, size_t n, int64_t now_ms,
                   int64_t timeout_ms);
/* The completion of `dispatch_id` from `worker_id` was applied: the worker finished it and no
 * research holds it any more. A heartbeat that still says busy with that very dispatch is
 * taken as idle (it lags the completion), until a read shows the heartbeat moved on. */
void workers_done(struct workers *w, const char *worker_id, const char *dispatch_id);
/* An active research holds an unfinished dispatch addressed to `worker_id`: not free until
 * its completion, or until the holds are recomputed. */
void workers_hold(struct workers *w, const char *worker_id);
/* The active research that held `worker_id` gave its dispatch up (lost, to be sent again):
 * the worker is free again as far as we are concerned (it may be taken for the resend). */
void workers_release(struct workers *w, const char *worker_id);
/* Forget every hold, before recomputing them all from the active researches (the full sweep:
 * it also catches holds ended by a cancel or a redispatch, which release nothing at once). */
void workers_release_all(struct workers *w);
/* Free workers of `wt`: live, heartbeat idle, not held. */
size_t workers_count_free(const struct workers *w, enum worker_type wt);
/* Live workers of `wt` this cycle. */
size_t workers_live(const struct workers *w, enum worker_type wt);
/* Live workers of `wt` whose heartbeat says busy. */
size_t workers_busy(const struct workers *w, enum worker_type wt);
/* The heartbeat of `worker_id` this cycle, or NULL when it is not live. */
const struct worker_beat *workers_find(const struct workers *w, const char *worker_id);
/* Take the free worker of `wt` dispatched least recently (NULL when none). It is held from now
 * on and remembered as dispatched at `now_ms`. The string lives until the next workers_begin. */
const char *workers_take(struct workers *w, enum worker_type wt, int64_t now_ms);

/* The concurrency limit of §5: max_concurrent when non-zero, else live training + live
 * backtest + buffer, never below 1. */
int64_t workers_capacity(const struct workers *w, int64_t max_concurrent, int64_t buffer);

#endif /* RC_WORKERS_H */
