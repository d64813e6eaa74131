/* SPDX-License-Identifier: MIT
 * bench_cycle: how long one coordinator cycle takes with N active researches, all parked
 * waiting for a training worker (none is live), so every cycle looks at every research and
 * has nothing to write but the coordinator's hash; and the coordinator's peak RSS. The
 * researches are seeded straight into Redis (what tools/bench-cycle.sh did in shell). */
#ifndef RC_BENCH_CYCLE_H
#define RC_BENCH_CYCLE_H

#include <stdint.h>

#include "common/rc_err.h"
#include "tools/bench/bench_report.h"

struct bench_stack;

/* On a stack with no coordinator and no workers running: FLUSHALL, seed `active` researches
 * that finished design, start the coordinator, read `cycle_ms` of rc:coordinator for every
 * cycle until `samples` steady cycles were seen after the first (which marks each research
 * waiting), or BENCH_CYCLE_BUDGET_S passed, read VmHWM, stop the coordinator.
 *
 * With nothing to consume, the coordinator cycles once per AGENT_POLL_INTERVAL: 0.05 s, or 1 s
 * from BENCH_CYCLE_SLOW_FROM researches on, whose start (loading them all, then a first cycle
 * that writes each one) would outlast the leader lease of a 0.05 s interval (3 x interval +
 * 2 s) and be lost over and over. Lease losses seen in the log are counted in the result. */
#define BENCH_CYCLE_SLOW_FROM 50000
#define BENCH_CYCLE_BUDGET_S 20
enum rc_rc bench_cycle_run(struct bench_stack *st, int64_t active, int64_t samples,
                           struct bench_cycle *out, struct rc_err *err);

#endif /* RC_BENCH_CYCLE_H */
