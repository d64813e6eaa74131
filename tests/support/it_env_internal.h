/* SPDX-License-Identifier: MIT
 * it_env_internal (private to tests/support): the env's definition, shared by it_env.c
 * (processes, Redis, lifecycle) and it_kafka.c (producer, readers, views). */
#ifndef RC_IT_ENV_INTERNAL_H
#define RC_IT_ENV_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include <hiredis/hiredis.h>
#include <librdkafka/rdkafka.h>

#include "common/rc_err.h"
#include "contract/phase.h"

struct buf;
struct it_topic;
struct proc_group;

#define IT_CHILD_NAME_MAX 64

struct it_child {
    pid_t pid;
    char name[IT_CHILD_NAME_MAX];
    bool infra;    /* redis or the broker: stopped after the clients */
    bool done;     /* reaped; status is valid */
    bool unjudged; /* the test signalled or collected it: its end is not checked */
    int status;    /* waitpid status once done */
};

struct it_env {
    char *dir;
    char *redis_sock;
    int redis_port; /* its TCP port on 127.0.0.1 */
    char *redis_url;
    char *bootstrap;
    char *topic_prefix;
    char *key_prefix;
    char **base_env; /* "NAME=value", NULL-terminated, owned */
    size_t n_base;

    struct proc_group *procs; /* every child's process (tools/stack/proc) */
    struct it_child *children;
    size_t n_children;
    size_t cap_children;
    int worker_groups; /* worker groups started, for generated id prefixes */

    struct redislink *redis;

    struct kclient *kproducer;
    rd_kafka_t *producer; /* kclient_rk(kproducer) */
    int dr_count;               /* delivery reports seen since the last produce */
    rd_kafka_resp_err_t dr_err; /* the last one's error */

    struct it_topic **topics; /* every reader, owned */
    size_t n_topics;
    size_t cap_topics;
    struct it_topic *events;
    struct it_topic *deadletters;
    struct it_topic *dispatches[WORKER_TYPE_COUNT];
};

/* it_child.c: start `path` as child `name` with argv (argv[0] kept as given) and the
 * environment environ + each of the n_layers NULL-terminated layers in turn (a NULL layer is
 * skipped; a later NAME wins); output to DIR/<name>.log. *out written only on success. */
enum rc_rc it_child_spawn(struct it_env *env, const char *name, const char *path,
                          const char *const argv[], const char *const *const layers[],
                          size_t n_layers, bool infra, pid_t *out, struct rc_err *err);
/* it_child.c: record `pid` (started in env->procs by other means: tools/stack) as child
 * `name`; its log must be it_child_log_path's. */
void it_child_add(struct it_env *env, const char *name, pid_t pid, bool infra);
/* it_child.c: append DIR/<name>.log, the log of child `name`, to out. */
void it_child_log_path(const struct it_env *env, const char *name, struct buf *out);
/* it_child.c: the child with that pid, or NULL. */
struct it_child *it_child_find(struct it_env *env, pid_t pid);
/* it_child.c: reap the child if it has exited; true when it is gone. */
bool it_child_gone(struct it_env *env, struct it_child *c);
/* it_child.c: "running", "exit 0", "signal 9 (Killed)". */
void it_child_state(const struct it_child *c, char *out, size_t len);
/* it_child.c: SIGTERM the running children with this `infra`, wait IT_STOP_TIMEOUT_MS in all,
 * SIGKILL the rest, then judge them (see it_env_stop). True when all ended cleanly. */
bool it_children_stop(struct it_env *env, bool infra);

/* it_env.c: `name` (an executable) from PATH, else /usr/bin or /usr/sbin; NULL when missing
 * (caller frees). */
char *it_find_program(const char *name);

/* it_kafka.c: create the producer (RC_EBACKEND on a refused configuration). */
enum rc_rc it_kafka_start(struct it_env *env, struct rc_err *err);
/* it_kafka.c: free every reader and the producer. */
void it_kafka_stop(struct it_env *env);

#endif /* RC_IT_ENV_INTERNAL_H */
