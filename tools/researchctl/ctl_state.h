/* SPDX-License-Identifier: MIT
 * ctl_state: researchctl's commands that read the state in Redis (contract §6) and print it,
 * as text or with --json: status (optionally redrawn with --watch), show and workers. */
#ifndef RC_CTL_STATE_H
#define RC_CTL_STATE_H

struct ctl_command;

/* `status [--watch] [--interval S] [--json]`. Static; never NULL. */
const struct ctl_command *ctl_state_status(void);
/* `show <research_id> [--json]`: exit 1 with one line when there is no such research. */
const struct ctl_command *ctl_state_show(void);
/* `workers [--json]`. */
const struct ctl_command *ctl_state_workers(void);

#endif /* RC_CTL_STATE_H */
