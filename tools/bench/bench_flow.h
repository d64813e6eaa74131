/* SPDX-License-Identifier: MIT
 * bench_flow: the runs of the benchmark that move researches through a bench_stack whose
 * coordinator and stub workers (with latency logs) run: the throughput run, the low-load run
 * and the idle measurement. Each stops the stack's workers at its end to read their logs, so
 * a stack serves one of them. */
#ifndef RC_BENCH_FLOW_H
#define RC_BENCH_FLOW_H

#include <stdint.h>

#include "common/rc_err.h"
#include "tools/bench/bench_report.h"

struct bench_stack;

/* A few researches first (not measured: connections, metadata, caches), then `n` triggered
 * at once with one producer, waited for until all have finished. CPU per process is read
 * from /proc just before the first trigger and once the last has finished. RC_EUNAVAIL when
 * they do not all finish within a time that grows with n. With perf_path, `perf record -g`
 * samples the coordinator from just before the first trigger to the last finish. */
enum rc_rc bench_flow_throughput(struct bench_stack *st, int64_t n, const char *perf_path,
                                 struct bench_throughput *out, struct rc_err *err);

/* A few unmeasured researches, then `n` one at a time (the next triggered once the previous
 * has finished); then, when idle_s > 0, the coordinator's CPU over idle_s seconds of nothing
 * to do (workers still heartbeating). `idle` may be NULL when idle_s is 0. */
enum rc_rc bench_flow_lowload(struct bench_stack *st, int64_t n, int64_t idle_s,
                              struct bench_lowload *out, struct bench_idle *idle,
                              struct rc_err *err);

#endif /* RC_BENCH_FLOW_H */
