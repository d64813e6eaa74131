/* SPDX-License-Identifier: MIT
 * resume: what a `resume` message does (contract §3): a failed or cancelled research re-opened
 * at the phase it stopped in, every earlier phase's result kept, or the reason it cannot be.
 * Plans a struct change as the machine does; the next advance dispatches the phase. Pure: no
 * I/O, time given. */
#ifndef RC_RESUME_H
#define RC_RESUME_H

#include <stdbool.h>
#include <stddef.h>

#include "contract/phase.h"

struct cancel_memo;
struct change;
struct machine_ctx;
struct research;
struct resume;

/* The phase a resume of the finished research `r` re-opens: its last_phase, except that a
 * phase after design whose strategy is missing goes back to designing (the one result the
 * later phases cannot do without; the others are optional, so their absence cannot be told
 * from a phase that returned none), and a research without a readable last_phase starts
 * again at pending. */
enum phase resume_phase(const struct research *r);

/* Plan the resume `k` of the finished research `r` (as read from Redis, unchecked). On true
 * `out` holds the change (CHANGE_RESUME: status running, phase resume_phase(r), the fields of
 * the last dispatch and the finish cleared, `resumes` + 1, the `resumed` event, the outcome
 * remembered when `k` has a request_id) and *active the research as the mirror must hold it
 * (caller owns). On false the research cannot be resumed: `out` holds the resume_rejected
 * not_resumable (remembered likewise) and why[] says why (it is completed, running, not a
 * research, or would not be a valid active research: research_check's reason). */
bool resume_plan(const struct machine_ctx *ctx, const struct research *r, const struct resume *k,
                 struct change *out, struct research **active, char *why, size_t why_len);

/* A resume refused with `reason` (not_found, not_resumable, at_capacity), remembered when it
 * has a request_id: CHANGE_NOTE with the resume_rejected event. */
void resume_reject(const struct machine_ctx *ctx, const struct resume *k, const char *reason,
                   struct change *out);

/* A resume whose request_id was seen in the last 24 h: its first outcome's event again. */
void resume_repeat(const struct machine_ctx *ctx, const struct cancel_memo *first,
                   struct change *out);

#endif /* RC_RESUME_H */
