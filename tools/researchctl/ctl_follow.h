/* SPDX-License-Identifier: MIT
 * ctl_follow: `follow <research_id>` (and `trigger --follow`, `retry --follow`): watch one
 * research in Redis until it finishes, redrawing a status line in place on a terminal (or
 * printing a line when something changes otherwise), then print its summary. Ctrl+C detaches;
 * a lost Redis connection is waited out. */
#ifndef RC_CTL_FOLLOW_H
#define RC_CTL_FOLLOW_H

#include <stdbool.h>

struct cfg;
struct ctl_command;

struct ctl_follow {
    bool json;         /* print the finished research as show --json does, nothing before */
    bool offer_cancel; /* on Ctrl+C ask (on a terminal) whether to cancel the research */
};

/* Follow research_id until it finishes. Returns the exit status: 0 completed, 1 failed or
 * cancelled (also after Ctrl+C and a yes to cancel it), 69 no such research, 130
 * (RC_EXIT_INTERRUPTED) detached by Ctrl+C. Redis outages are retried every second, never a reason
 * to exit. Installs the SIGINT/SIGTERM flag (stopsig). */
int ctl_follow_research(const struct cfg *cfg, const char *research_id,
                        const struct ctl_follow *how);
/* `follow <research_id> [--json]`. Static; never NULL. */
const struct ctl_command *ctl_follow_command(void);

#endif /* RC_CTL_FOLLOW_H */
