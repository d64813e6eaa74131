/* SPDX-License-Identifier: MIT
 * ctl_timeline: each worked phase's timeline as the research hash records it (fields
 * timeline.<phase>.started_at, .finished_at (Unix ms), .worker_id and .attempts), read out of
 * a ctl_research and rendered as show's Timeline section. Researches from before the
 * timeline have none of these fields: then nothing is known and nothing is shown. Pure. */
#ifndef RC_CTL_TIMELINE_H
#define RC_CTL_TIMELINE_H

#include <stdbool.h>
#include <stdint.h>

#include "contract/phase.h"

struct buf;
struct ctl_research;

#define CTL_TIMELINE_PHASES 4 /* designing, training, backtesting, assessing */

/* One phase. Times are Unix ms, 0 when absent; strings borrowed from the research. */
struct ctl_timeline_phase {
    enum phase phase;
    bool seen; /* any of its fields is present */
    int64_t started_at_ms;
    int64_t finished_at_ms;
    const char *worker_id; /* the worker of its last dispatch, NULL when absent */
    int64_t attempts;      /* its last dispatch's attempt, 0 when absent */
};

struct ctl_timeline {
    struct ctl_timeline_phase p[CTL_TIMELINE_PHASES]; /* in phase order */
    bool any;                                         /* some phase was seen */
    int64_t research_finished_at_ms;                  /* the research's finished_at, 0: none */
};

/* Read the timeline fields of r (borrowed: t points into it and lives no longer). */
void ctl_timeline_read(const struct ctl_research *r, struct ctl_timeline *t);
/* How long phase p took: finished - started; while running (no finished_at), until the
 * research's finished_at or else now_ms. False when it has not started. */
bool ctl_timeline_duration(const struct ctl_timeline *t, const struct ctl_timeline_phase *p,
                           int64_t now_ms, int64_t *out_ms);
/* The "Timeline" section of show (a blank line first): one row per phase that was seen
 * (phase, start, end or "running", duration, worker, attempts); nothing when none was. */
void ctl_timeline_text(const struct ctl_timeline *t, int64_t now_ms, struct buf *out);
/* True when `field` is one of the timeline fields (show lists them in Timeline only). */
bool ctl_timeline_is_field(const char *field);

#endif /* RC_CTL_TIMELINE_H */
