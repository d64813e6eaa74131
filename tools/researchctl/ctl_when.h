/* SPDX-License-Identifier: MIT
 * ctl_when: the durations and times an operator types on researchctl's command line
 * (`--since 2h`, `--older-than 15m`, `--since 2026-12-01T10:00:00Z`), parsed into
 * milliseconds. Pure: the time of day is given. */
#ifndef RC_CTL_WHEN_H
#define RC_CTL_WHEN_H

#include <stdint.h>

#include "common/rc_err.h"

/* A duration: a whole number and a unit, s, m, h or d ("30s", "15m", "2h", "7d"), at most
 * 10 years. On RC_OK *out_ms holds it; RC_EINVAL naming `what` ("--older-than: ...")
 * otherwise, *out_ms untouched. */
enum rc_rc ctl_when_duration(const char *s, const char *what, int64_t *out_ms, struct rc_err *err);
/* A point in time: a duration before now_ms (as above), an ISO 8601 UTC time
 * ("2026-12-01T10:00:00Z", seconds optional, a trailing Z required) or a date ("2026-12-01",
 * its midnight UTC). On RC_OK *out_ms is Unix ms; RC_EINVAL naming `what` otherwise. */
enum rc_rc ctl_when_since(const char *s, int64_t now_ms, const char *what, int64_t *out_ms,
                          struct rc_err *err);

#endif /* RC_CTL_WHEN_H */
