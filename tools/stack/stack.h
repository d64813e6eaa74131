/* SPDX-License-Identifier: MIT
 * stack: the dev stack's servers as the tests and the benchmark start them: redis-server on a
 * unix socket (and a TCP port of 127.0.0.1 if asked), with AOF or no persistence at all, and
 * devbroker writing its bootstrap file; each started as a child of a proc group, then waited
 * for until it is ready. Starting and waiting are apart so that the caller knows the pid (its
 * log, its stop) even when the server never gets ready. */
#ifndef RC_STACK_H
#define RC_STACK_H

#include <stdbool.h>
#include <sys/types.h>

#include "common/rc_err.h"

struct proc_group;

/* One redis-server. The strings are borrowed for the call. */
struct stack_redis {
    const char *server;    /* redis-server's path */
    const char *dir;       /* its working directory (where the AOF goes) */
    const char *unix_path; /* its unix socket, mode 700 */
    int tcp_port;          /* > 0: also on 127.0.0.1:tcp_port; else no TCP at all */
    bool aof;              /* AOF, fsync every second (a restart keeps the data); else neither
                            * RDB nor AOF */
    const char *log_path;  /* its output, appended */
};

/* One devbroker (the librdkafka mock cluster). The strings are borrowed for the call. */
struct stack_broker {
    const char *devbroker;      /* its path */
    const char *bootstrap_file; /* where it writes the bootstrap servers */
    int partitions;             /* of each topic */
    const char *topic_prefix;   /* NULL: devbroker's own ($KAFKA_TOPIC_PREFIX, else research.) */
    const char *fault_file;     /* NULL: none (devbroker --fault-file) */
    const char *log_path;       /* its output, appended */
};

/* Start redis-server as `r` says, in `g` (its environment is the parent's). *pid written on
 * RC_OK; errors as proc_spawn. */
enum rc_rc stack_redis_spawn(struct proc_group *g, const struct stack_redis *r, pid_t *pid,
                             struct rc_err *err);
/* Wait until redis-server `pid` answers PING on r->unix_path (a server still loading its AOF
 * does not). RC_EUNAVAIL when it exits first (said at once, with how it ended), when
 * timeout_ms pass, or when the program is asked to stop (stopsig). */
enum rc_rc stack_redis_wait(struct proc_group *g, pid_t pid, const struct stack_redis *r,
                            int timeout_ms, struct rc_err *err);

/* Start devbroker as `b` says, in `g` (its environment is the parent's); it writes the
 * bootstrap file atomically once it serves. *pid written on RC_OK; errors as proc_spawn. */
enum rc_rc stack_broker_spawn(struct proc_group *g, const struct stack_broker *b, pid_t *pid,
                              struct rc_err *err);
/* Wait until devbroker `pid` has written the first line of b->bootstrap_file; on RC_OK
 * *bootstrap is that line (its bootstrap servers; caller frees). Errors as stack_redis_wait. */
enum rc_rc stack_broker_wait(struct proc_group *g, pid_t pid, const struct stack_broker *b,
                             int timeout_ms, char **bootstrap, struct rc_err *err);

#endif /* RC_STACK_H */
