/* SPDX-License-Identifier: MIT
 * execrun: one dispatch run as a program (rcw-exec): fork/exec in a process group of its own
 * with the dispatch as JSON on stdin and its ids in the environment, its progress lines read
 * from RC_PROGRESS_FD, its stdout taken as the result, the tail of its stderr as the error,
 * and its group killed on an abort (SIGTERM, SIGKILL after the grace). Runs on a job thread of
 * librcworker; touches no Kafka or Redis. */
#ifndef RC_EXECRUN_H
#define RC_EXECRUN_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct rcw_job;

#define EXECRUN_PROGRESS_FD 3      /* RC_PROGRESS_FD in the child */
#define EXECRUN_ERROR_TAIL 400     /* bytes of stderr kept for the error */
#define EXECRUN_STDOUT_MAX 1048576 /* a result larger than a message cannot be sent */

/* What every run shares (rcw-exec's main owns it). */
struct execrun {
    const char *path;         /* the program, resolved in PATH at start-up */
    char *const *argv;        /* its arguments (argv[0] as given) */
    int64_t grace_ms;         /* SIGTERM to SIGKILL after an abort */
    pthread_mutex_t spawn_mu; /* pipes and fork one job at a time: no child inherits another
                                 job's pipe (it would hold that job's stdout open) */
};

/* The handler (rcw_handler_fn) with `arg` a struct execrun. */
void execrun_handle(struct rcw_job *job, void *arg);

/* Parse one line written to RC_PROGRESS_FD: "progress <0..1> [<step text>]". True with
 * *progress and *step (pointing into `line`, "" when none) when it is one; other lines are
 * not (they are ignored). `line` has no newline. */
bool execrun_parse_progress(const char *line, double *progress, const char **step);

/* The program `name` as execve wants it: itself when it holds a '/', else the first
 * executable <dir>/<name> of `path_env` (PATH; NULL or "" means "/usr/bin:/bin"), copied into
 * out (out_len bytes). False when none is found. */
bool execrun_resolve(const char *name, const char *path_env, char *out, size_t out_len);

#endif /* RC_EXECRUN_H */
