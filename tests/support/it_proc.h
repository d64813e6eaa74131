/* SPDX-License-Identifier: MIT
 * it_proc: starting test children and the process-wide registry of their pids. Children get
 * PR_SET_PDEATHSIG (Linux) and the registry is SIGKILLed by an atexit handler and by
 * SIGABRT/SIGTERM/SIGINT/SIGHUP handlers, so a dying test leaves no orphan. Used by it_env. */
#ifndef RC_IT_PROC_H
#define RC_IT_PROC_H

#include <stddef.h>
#include <sys/types.h>

#include "common/rc_err.h"

/* Start `path` with argv and envp (both NULL-terminated, built by the caller), stdin from
 * /dev/null, stdout and stderr appended to log_path; register the pid. RC_ESYS when the log
 * cannot be opened or fork fails (an exec failure shows as exit 127 with a line in the log).
 * *out written only on success. */
enum rc_rc it_proc_spawn(const char *path, char *const argv[], char *const envp[],
                         const char *log_path, pid_t *out, struct rc_err *err);
/* Wait up to timeout_ms (0: just look) for pid to exit and reap it. RC_OK with *status
 * (may be NULL) and the pid dropped from the registry; RC_EUNAVAIL while it still runs;
 * RC_ESYS when waitpid fails (not our child). */
enum rc_rc it_proc_wait(pid_t pid, int timeout_ms, int *status, struct rc_err *err);
/* Describe a waitpid status ("exit 0", "signal 9") into out. */
void it_proc_describe(int status, char *out, size_t len);

#endif /* RC_IT_PROC_H */
