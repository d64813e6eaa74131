/* SPDX-License-Identifier: MIT
 * ctl_eventlog: researchctl's `events` command: the lifecycle events of the events topic as
 * readable lines or JSON Lines, read to the end of every partition (like `kcat -C -e`) and,
 * with --follow, then as they come until SIGINT/SIGTERM. */
#ifndef RC_CTL_EVENTLOG_H
#define RC_CTL_EVENTLOG_H

struct ctl_command;

/* `events [--follow] [--research ID] [--last N] [--json]`. Static; never NULL. */
const struct ctl_command *ctl_eventlog_command(void);

#endif /* RC_CTL_EVENTLOG_H */
