/* SPDX-License-Identifier: MIT
 * registry: the active researches in memory, oldest first, a mirror of rc:active and the
 * research hashes. Loaded from Redis when this instance starts leading, then written through:
 * only changes Redis accepted reach it (the loop reloads it after any failed write). */
#ifndef RC_REGISTRY_H
#define RC_REGISTRY_H

#include <stddef.h>
#include <stdint.h>

#include "contract/phase.h"

struct change;
struct research;
struct registry;

struct registry *registry_new(void);
/* Free the registry and every research in it. NULL is a no-op. */
void registry_free(struct registry *reg);
/* Drop every research (before a reload). */
void registry_clear(struct registry *reg);
/* Add an active research (takes ownership); kept in created_at, then id, order. A research
 * with the same id is replaced. */
void registry_add(struct registry *reg, struct research *r);
/* The active research `id`, or NULL. Valid until it is removed. */
struct research *registry_find(const struct registry *reg, const char *id);
/* Remove and free research `id` (no-op when absent). */
void registry_remove(struct registry *reg, const char *id);
size_t registry_count(const struct registry *reg);
/* Slot i in age order, 0 <= i < registry_len(); NULL for a research removed since the last
 * registry_compact(). Adding during a walk appends at the end or re-sorts, so walk first. */
size_t registry_len(const struct registry *reg);
struct research *registry_at(const struct registry *reg, size_t i);
/* Close the gaps left by removals (nothing to do when there are none). */
void registry_compact(struct registry *reg);
/* A sweep over every research in age order, in as many steps as the caller likes: a cursor
 * that survives adds and compaction (a research added before the cursor is not visited). */
void registry_sweep_start(struct registry *reg);
/* The next research of the sweep, or NULL when it is over. */
struct research *registry_sweep_next(struct registry *reg);
/* The active researches by phase, and how many wait for a worker (waiting_since set). */
void registry_figures(const struct registry *reg, int64_t by_phase[PHASE_COUNT], int64_t *waiting);
/* How many researches wait for a free worker of each type, and since when the longest of them
 * waits (its waiting_since, Unix ms; 0 when none waits). Kept as researches change, so cheap:
 * no walk over the active researches (it drops the stale entries of an index as it reads). */
void registry_waits(struct registry *reg, int64_t n_waiting[WORKER_TYPE_COUNT],
                    int64_t oldest_since_ms[WORKER_TYPE_COUNT]);
/* Mirror a planned change: a created research is added, a finished one removed, an update's
 * fields applied. Adding compacts: do not call with CHANGE_CREATE during a walk. */
void registry_apply(struct registry *reg, const struct change *c);

#endif /* RC_REGISTRY_H */
