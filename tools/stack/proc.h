/* SPDX-License-Identifier: MIT
 * proc: the one supervisor of the child processes that the tests and the benchmark start
 * (servers, coordinators, workers, tools, the Celery peer). A group holds the children one
 * owner started and how each ended; they are started with an environment layered on the
 * parent's, stopped and waited for by pid, and measured through /proc (CPU time, peak RSS).
 * A parent that dies leaves no process behind: children get PR_SET_PDEATHSIG (Linux only, as
 * /proc is), and every pid not yet reaped is in one process-wide registry that an atexit
 * handler and a handler of the fatal signals (SIGABRT, SIGTERM, SIGINT, SIGHUP) SIGKILL. A
 * signal the program handles itself is left to it (the benchmark's stopsig turns SIGINT and
 * SIGTERM into a graceful stop): the registry takes only those whose action is the default.
 * Spawning and reaping happen on one thread. */
#ifndef RC_PROC_H
#define RC_PROC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "common/rc_err.h"

struct proc_group; /* opaque: the children started so far */

/* How to start one child. */
struct proc_spec {
    const char *path;        /* the executable; NULL: argv[0] */
    const char *const *argv; /* NULL-terminated; argv[0] is the name the child sees */
    /* n_env layers of "NAME=value" (each NULL-terminated; a NULL layer is skipped), set over
     * the parent's environment in turn: a later NAME wins. */
    const char *const *const *env;
    size_t n_env;
    const char *log_path; /* stderr (and stdout unless `pipes`) appended here */
    bool pipes;           /* stdin and stdout are pipes to the parent; else stdin is /dev/null */
};

struct proc_group *proc_group_new(void);
/* Stop every child still running (proc_stop with 5 s, in reverse order of start) and free.
 * NULL is a no-op. */
void proc_group_free(struct proc_group *g);

/* Start a child and register it. On RC_OK *pid is set, and with `pipes` *to_fd (its stdin)
 * and *from_fd (its stdout), which the caller closes; without, they are set to -1 (both may
 * be NULL then). RC_ESYS when the log cannot be opened or fork fails; an exec failure (a
 * missing executable too) shows as exit 127 with a line in the log. */
enum rc_rc proc_spawn(struct proc_group *g, const struct proc_spec *sp, pid_t *pid, int *to_fd,
                      int *from_fd, struct rc_err *err);
/* True while `pid` (one of the group's) runs; reaps it once it has exited. */
bool proc_running(struct proc_group *g, pid_t pid);
/* Wait up to timeout_ms (0: just look) for `pid` to exit by itself and reap it. RC_OK with its
 * waitpid status in *status (may be NULL) once it has exited, now or before; RC_EUNAVAIL
 * while it runs; RC_EINVAL when it is not the group's; RC_ESYS when waitpid fails. */
enum rc_rc proc_wait(struct proc_group *g, pid_t pid, int timeout_ms, int *status,
                     struct rc_err *err);
/* SIGTERM `pid`, wait up to timeout_ms, then SIGKILL and reap. RC_OK when it exited by itself
 * with status 0 (or had already been reaped as such); RC_EBACKEND naming what happened
 * otherwise (non-zero exit, a signal, killed); the child is gone either way. */
enum rc_rc proc_stop(struct proc_group *g, pid_t pid, int timeout_ms, struct rc_err *err);

/* A waitpid status as a shell gives it: the exit code, or 128 + the signal. */
int proc_exit_code(int status);
/* Describe a waitpid status ("exit 0", "signal 9 (Killed)") into out. */
void proc_describe(int status, char *out, size_t len);

/* User + system CPU time of `pid`'s whole thread group so far, in microseconds (the kernel
 * counts it in clock ticks: the resolution is 1/sysconf(_SC_CLK_TCK) s, 10 ms as a rule).
 * RC_ESYS when /proc/<pid>/stat cannot be read. */
enum rc_rc proc_cpu_us(pid_t pid, int64_t *out, struct rc_err *err);
/* The sum of proc_cpu_us over pids[0..n). */
enum rc_rc proc_cpu_sum_us(const pid_t *pids, size_t n, int64_t *out, struct rc_err *err);
/* The peak resident set size of `pid` (VmHWM), in KiB. */
enum rc_rc proc_peak_rss_kb(pid_t pid, int64_t *out, struct rc_err *err);

#endif /* RC_PROC_H */
