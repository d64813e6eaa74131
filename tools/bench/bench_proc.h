/* SPDX-License-Identifier: MIT
 * bench_proc: the benchmark driver's child processes (servers, coordinator, workers, the Celery
 * peer): started with an environment layered on the driver's, stopped by pid, and measured
 * through /proc (CPU time, peak RSS). Also the driver's one stop flag (SIGINT/SIGTERM). Linux
 * only: children get PR_SET_PDEATHSIG, so a driver that dies leaves no process behind. */
#ifndef RC_BENCH_PROC_H
#define RC_BENCH_PROC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "common/rc_err.h"

struct bench_procs; /* opaque: the children started so far */

/* How to start one child. */
struct bench_spawn {
    const char *const *argv; /* NULL-terminated; argv[0] is the executable's path */
    const char *const *env;  /* "NAME=value" set over the driver's environment; NULL: none */
    const char *log_path;    /* stderr (and stdout unless `pipes`) appended here */
    bool pipes;              /* stdin and stdout are pipes to the driver */
};

struct bench_procs *bench_procs_new(void);
/* Stop every child still running (bench_procs_stop, in reverse order of start) and free. NULL
 * is a no-op. */
void bench_procs_free(struct bench_procs *bp);

/* Start a child. On RC_OK *pid is set, and with `pipes` *to_fd (its stdin) and *from_fd (its
 * stdout), which the caller closes; without, they are set to -1 (both may be NULL then).
 * RC_ESYS when the log cannot be opened or fork fails; an exec failure shows as exit 127 with
 * a line in the log. */
enum rc_rc bench_procs_spawn(struct bench_procs *bp, const struct bench_spawn *sp, pid_t *pid,
                             int *to_fd, int *from_fd, struct rc_err *err);
/* True while `pid` (one of ours) runs; reaps it once it has exited. */
bool bench_procs_running(struct bench_procs *bp, pid_t pid);
/* SIGTERM `pid`, wait up to timeout_ms, then SIGKILL and reap. RC_OK when it exited by itself
 * with status 0 (or had already been reaped as such); RC_EBACKEND naming what happened
 * otherwise (non-zero exit, a signal, killed); the child is gone either way. */
enum rc_rc bench_procs_stop(struct bench_procs *bp, pid_t pid, int timeout_ms, struct rc_err *err);
/* Wait up to timeout_ms for `pid` to exit by itself; RC_OK with its status when it did (exit 0
 * or not: *exit_code is the code, or 128 + signal), RC_EUNAVAIL while it runs. */
enum rc_rc bench_procs_wait(struct bench_procs *bp, pid_t pid, int timeout_ms, int *exit_code,
                            struct rc_err *err);

/* User + system CPU time of `pid`'s whole thread group so far, in microseconds (the kernel
 * counts it in clock ticks: the resolution is 1/sysconf(_SC_CLK_TCK) s, 10 ms as a rule).
 * RC_ESYS when /proc/<pid>/stat cannot be read. */
enum rc_rc bench_proc_cpu_us(pid_t pid, int64_t *out, struct rc_err *err);
/* The peak resident set size of `pid` (VmHWM), in KiB. */
enum rc_rc bench_proc_peak_rss_kb(pid_t pid, int64_t *out, struct rc_err *err);
/* The sum of bench_proc_cpu_us over pids[0..n). */
enum rc_rc bench_proc_cpu_sum_us(const pid_t *pids, size_t n, int64_t *out, struct rc_err *err);

/* Unix time in microseconds (CLOCK_REALTIME), the clock of the workers' latency logs. */
int64_t bench_proc_now_us(void);

#endif /* RC_BENCH_PROC_H */
