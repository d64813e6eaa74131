/* SPDX-License-Identifier: MIT
 * ctl_view_research: what `show` (and `follow --json`) prints of one research hash, as text
 * for people and as JSON for scripts. Pure: no I/O, no clock (now is given). */
#ifndef RC_CTL_VIEW_RESEARCH_H
#define RC_CTL_VIEW_RESEARCH_H

#include <stdint.h>

struct buf;
struct ctl_research;

/* The research: a header (id, status, phase, brief, model, request, strategy, times), each
 * phase's result fields, the timeline (each phase's start, end, duration, worker and
 * attempts, when recorded), gates, outcome (verdict, error, cost), dispatch, and any other
 * field; times as UTC with their age at now_ms. Complete lines appended to out. */
void ctl_view_research_text(const struct ctl_research *r, int64_t now_ms, struct buf *out);
/* The hash as one JSON object and a newline: every field, every value a string as stored. */
void ctl_view_research_json(const struct ctl_research *r, struct buf *out);

#endif /* RC_CTL_VIEW_RESEARCH_H */
