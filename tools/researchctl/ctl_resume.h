/* SPDX-License-Identifier: MIT
 * ctl_resume: `resume <research_id>`: ask the coordinator to re-open a failed or cancelled
 * research at the phase it stopped in (the resume message), and report its answer, resumed
 * or resume_rejected. */
#ifndef RC_CTL_RESUME_H
#define RC_CTL_RESUME_H

#include <stdint.h>

struct ctl_command;
struct ctl_opts;
struct msg;

/* The resume message of o (research_id, request_id, reason, force) into *m (borrowing o). */
void ctl_resume_msg(const struct ctl_opts *o, int64_t ts_ms, struct msg *m);
/* `resume <research_id> [--force] [--reason R] [...]`: "Research resumed: <id> (at <phase>)"
 * (exit 0) or "Cannot resume <id>: ..." (exit 1). Static; never NULL. */
const struct ctl_command *ctl_resume_command(void);

#endif /* RC_CTL_RESUME_H */
