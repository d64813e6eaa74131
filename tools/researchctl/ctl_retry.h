/* SPDX-License-Identifier: MIT
 * ctl_retry: `retry <research_id>`: a new trigger made of what the old research was asked to
 * do, read back from its hash: the brief, model, options and bypass_gates, and its strategy
 * (with its path) when it started from one (design was skipped: it has a strategy but no
 * design result). */
#ifndef RC_CTL_RETRY_H
#define RC_CTL_RETRY_H

#include "common/rc_err.h"

struct buf;
struct ctl_command;
struct ctl_research;
struct trigger;

/* Fill t (request_id and force untouched) from research r: strings borrow r; the options map
 * goes to `options` as MessagePack, which t then borrows. RC_EINVAL when r has no brief or
 * its stored options are not a JSON object. */
enum rc_rc ctl_retry_trigger(const struct ctl_research *r, struct trigger *t, struct buf *options,
                             struct rc_err *err);
/* `retry <research_id> [--force] [--follow] [...]`. Static; never NULL. */
const struct ctl_command *ctl_retry_command(void);

#endif /* RC_CTL_RETRY_H */
