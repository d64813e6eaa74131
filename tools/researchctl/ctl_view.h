/* SPDX-License-Identifier: MIT
 * ctl_view: what researchctl prints for status and workers, as text for people and as
 * JSON for scripts, rendered from ctl_read's structs into a buffer. Pure: no I/O, no clock
 * (the time of the read is in the structs, or given). */
#ifndef RC_CTL_VIEW_H
#define RC_CTL_VIEW_H

#include <stdint.h>

struct buf;
struct ctl_status;
struct ctl_workers;

/* Every function appends complete lines (each ending in '\n') to `out`. */

/* The status: active researches (oldest first, phase, strategy, time in phase, waiting), or
 * "0 (idle)" and the last finished one; then the lines Workers (busy/live per type), Budget,
 * Capacity and Coordinator. */
void ctl_view_status_text(const struct ctl_status *st, struct buf *out);
/* One JSON object: now, active[], workers{type: {busy, total}}, budget{}, capacity{},
 * coordinator{}, last_finished{} or null. Times are Unix ms, durations ms, money numbers. */
void ctl_view_status_json(const struct ctl_status *st, struct buf *out);

/* A table of every worker (type, id, state — "dead" once its heartbeat is older than
 * AGENT_WORKER_TIMEOUT —, the research and dispatch it holds, heartbeat age), then a total. */
void ctl_view_workers_text(const struct ctl_workers *w, struct buf *out);
/* One JSON object: now, workers[] {type, worker_id, state, live, busy, research_id,
 * dispatch_id, last_seen, heartbeat_age_ms}. */
void ctl_view_workers_json(const struct ctl_workers *w, struct buf *out);

#endif /* RC_CTL_VIEW_H */
