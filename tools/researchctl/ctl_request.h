/* SPDX-License-Identifier: MIT
 * ctl_request: researchctl's commands that ask the coordinator for a change by publishing to
 * the triggers topic and report the outcome it publishes: trigger and cancel. */
#ifndef RC_CTL_REQUEST_H
#define RC_CTL_REQUEST_H

struct ctl_command;

/* `trigger --brief TEXT [...]`: "Research triggered: <id>" (exit 0) or "Cannot trigger: ..."
 * (exit 1). Static; never NULL. */
const struct ctl_command *ctl_request_trigger(void);
/* `cancel <research_id> [...]`: "Research cancelled: <id>" (exit 0) or "Cannot cancel <id>:
 * not found | already finished" (exit 1). Static; never NULL. */
const struct ctl_command *ctl_request_cancel(void);

#endif /* RC_CTL_REQUEST_H */
