/* SPDX-License-Identifier: MIT
 * stack: redis-server's and devbroker's command lines and their readiness checks. */
#include "tools/stack/stack.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "common/cfg.h"
#include "common/clock.h"
#include "common/redislink.h"
#include "common/stopsig.h"
#include "common/xalloc.h"
#include "tools/stack/proc.h"

#define POLL_MS 10           /* between readiness checks */
#define PING_TIMEOUT_MS 5000 /* one PING's connect and reply */

static enum rc_rc
spawn(struct proc_group *g, const char *path, const char *const *argv, const char *log_path,
      pid_t *pid, struct rc_err *err)
{
    const struct proc_spec sp = {.path = path, .argv = argv, .log_path = log_path};
    return proc_spawn(g, &sp, pid, NULL, NULL, err);
}

/* What is waited for, and how to say it was not. */
struct readiness {
    const char *what;     /* "redis-server" */
    const char *before;   /* it ended before "answering PING" */
    const char *missed;   /* in time it "did not answer PING" */
    const char *log_path; /* named in the error */
    bool (*ready)(void *arg);
    void *arg;
};

/* Poll `rd->ready` until it holds; a child that ends meanwhile is reported at once. */
static enum rc_rc
wait_ready(struct proc_group *g, pid_t pid, const struct readiness *rd, int timeout_ms,
           struct rc_err *err)
{
    int64_t deadline = clock_mono_ms() + timeout_ms;

    while (!rd->ready(rd->arg)) {
        int status = 0;
        if (proc_wait(g, pid, 0, &status, NULL) == RC_OK) {
            char how[96];
            proc_describe(status, how, sizeof(how));
            return rc_err_set(err, RC_EUNAVAIL, "%s (pid %ld) ended with %s before %s (log: %s)",
                              rd->what, (long)pid, how, rd->before, rd->log_path);
        }
        if (stopsig_requested()) {
            return rc_err_set(err, RC_EUNAVAIL, "interrupted while waiting for %s", rd->what);
        }
        if (clock_mono_ms() >= deadline) {
            return rc_err_set(err, RC_EUNAVAIL, "%s (pid %ld) %s within %d ms (log: %s)", rd->what,
                              (long)pid, rd->missed, timeout_ms, rd->log_path);
        }
        stopsig_nap_ms(POLL_MS);
    }
    return RC_OK;
}

/* ---- redis-server ------------------------------------------------------------------------- */

enum rc_rc
stack_redis_spawn(struct proc_group *g, const struct stack_redis *r, pid_t *pid, struct rc_err *err)
{
    const char *argv[24];
    size_t n = 0;
    char port[16];

    snprintf(port, sizeof(port), "%d", r->tcp_port > 0 ? r->tcp_port : 0);
    argv[n++] = "redis-server";
    argv[n++] = "--port";
    argv[n++] = port;
    if (r->tcp_port > 0) {
        /* For what reaches it by address: replicas, Sentinels, proxies, ACL users. */
        argv[n++] = "--bind";
        argv[n++] = "127.0.0.1";
    }
    argv[n++] = "--unixsocket";
    argv[n++] = r->unix_path;
    argv[n++] = "--unixsocketperm";
    argv[n++] = "700";
    argv[n++] = "--save";
    argv[n++] = "";
    argv[n++] = "--appendonly";
    argv[n++] = r->aof ? "yes" : "no";
    if (r->aof) {
        argv[n++] = "--appendfsync";
        argv[n++] = "everysec";
    }
    argv[n++] = "--dir";
    argv[n++] = r->dir;
    argv[n] = NULL;
    return spawn(g, r->server, argv, r->log_path, pid, err);
}

static bool
redis_answers(void *arg)
{
    struct redislink *rl = arg;
    const char *ping[] = {"PING"};
    const struct redislink_cmd cmd = {1, ping};

    if (redislink_run(rl, &cmd, 1, NULL) == RC_OK) {
        return true;
    }
    redislink_drop(rl); /* the next attempt need not wait for the backoff */
    return false;
}

enum rc_rc
stack_redis_wait(struct proc_group *g, pid_t pid, const struct stack_redis *r, int timeout_ms,
                 struct rc_err *err)
{
    /* cfg_redis holds its strings as char *; redislink_new only copies them. */
    const struct cfg_redis where = {.unix_path = (char *)(uintptr_t)r->unix_path,
                                    .timeout_ms = PING_TIMEOUT_MS};
    struct redislink *rl = redislink_new(&where);
    const struct readiness rd = {"redis-server", "answering PING", "did not answer PING",
                                 r->log_path,    redis_answers,    rl};
    enum rc_rc rc = wait_ready(g, pid, &rd, timeout_ms, err);

    redislink_free(rl);
    return rc;
}

/* ---- devbroker ---------------------------------------------------------------------------- */

enum rc_rc
stack_broker_spawn(struct proc_group *g, const struct stack_broker *b, pid_t *pid,
                   struct rc_err *err)
{
    const char *argv[16];
    size_t n = 0;
    char partitions[16];

    snprintf(partitions, sizeof(partitions), "%d", b->partitions);
    argv[n++] = "devbroker";
    argv[n++] = "--bootstrap-file";
    argv[n++] = b->bootstrap_file;
    argv[n++] = "--partitions";
    argv[n++] = partitions;
    if (b->topic_prefix != NULL) {
        argv[n++] = "--topic-prefix";
        argv[n++] = b->topic_prefix;
    }
    if (b->fault_file != NULL) {
        argv[n++] = "--fault-file";
        argv[n++] = b->fault_file;
    }
    argv[n] = NULL;
    return spawn(g, b->devbroker, argv, b->log_path, pid, err);
}

struct bootstrap {
    const char *path;
    char *line; /* once read */
};

static bool
bootstrap_written(void *arg)
{
    struct bootstrap *bs = arg;
    FILE *f = fopen(bs->path, "r"); /* written atomically: complete once it exists */
    char line[1024] = {0};

    if (f == NULL) {
        return false;
    }
    bool got = fgets(line, sizeof(line), f) != NULL;
    fclose(f);
    line[strcspn(line, "\r\n \t")] = '\0';
    if (got && line[0] != '\0') {
        bs->line = xstrdup(line);
    }
    return bs->line != NULL;
}

enum rc_rc
stack_broker_wait(struct proc_group *g, pid_t pid, const struct stack_broker *b, int timeout_ms,
                  char **bootstrap, struct rc_err *err)
{
    struct bootstrap bs = {b->bootstrap_file, NULL};
    struct buf before = BUF_INIT;
    struct buf missed = BUF_INIT;

    buf_printf(&before, "writing %s", b->bootstrap_file);
    buf_printf(&missed, "wrote no %s", b->bootstrap_file);
    const struct readiness rd = {"devbroker", before.data,       missed.data,
                                 b->log_path, bootstrap_written, &bs};
    enum rc_rc rc = wait_ready(g, pid, &rd, timeout_ms, err);
    buf_release(&missed);
    buf_release(&before);
    if (rc != RC_OK) {
        free(bs.line);
        return rc;
    }
    *bootstrap = bs.line;
    return RC_OK;
}
