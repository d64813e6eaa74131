/* SPDX-License-Identifier: MIT
 * ctl_bulk: `cancel` of many researches at once: every active one (--all), those in a phase
 * (--phase, matching the `phase` field, so a research waiting for a worker of the next phase
 * is matched by the phase it finished last), those older than a duration (--older-than), or
 * the ids read from stdin (`cancel -`), the filters narrowing each other. It lists them, asks
 * (unless --yes), sends one cancel each with its own request id and reports every outcome. */
#ifndef RC_CTL_BULK_H
#define RC_CTL_BULK_H

#include <stdbool.h>
#include <stdint.h>

#include "common/rc_err.h"

struct cfg;
struct ctl_opts;

/* One candidate: strings borrowed. */
struct ctl_bulk_item {
    const char *research_id;
    const char *phase;     /* its phase field, NULL when absent */
    int64_t created_at_ms; /* 0 when absent */
};

/* --phase P: P must be a phase an active research can be in (pending, designing, training,
 * backtesting, assessing); *out borrows arg. RC_EINVAL (a usage error) otherwise. */
enum rc_rc ctl_bulk_phase_opt(const char *arg, const char **out, struct rc_err *err);
/* True when o asks for a bulk cancel (--all, --phase, --older-than or `-`). */
bool ctl_bulk_is_bulk(const struct ctl_opts *o);
/* The cancel command's check: exactly one of an id or a bulk selection; no --request-id with a
 * bulk one (each cancel gets its own). RC_EINVAL with the reason. */
enum rc_rc ctl_bulk_check(const struct ctl_opts *o, struct rc_err *err);
/* Whether `it` is selected by o's filters at now_ms. Pure. */
bool ctl_bulk_selects(const struct ctl_opts *o, const struct ctl_bulk_item *it, int64_t now_ms);
/* Run a bulk cancel; returns the exit status: 0 when every selected research was cancelled
 * (or none was selected), 1 when one was not, 64 when confirmation is needed but stdin is
 * not a terminal (or a line of stdin is not an id), 69 when Redis or Kafka is unreachable. */
int ctl_bulk_cancel(const struct cfg *cfg, struct ctl_opts *o);

#endif /* RC_CTL_BULK_H */
