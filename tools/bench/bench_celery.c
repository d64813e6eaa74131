/* SPDX-License-Identifier: MIT
 * bench_celery: start the Celery peer's processes, talk to its client over a pipe (one command
 * line, one `result key=value ...` line back), and charge each run the CPU its processes
 * spent. */
#include "tools/bench/bench_celery.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/buf.h"
#include "common/clock.h"
#include "common/num.h"
#include "common/stopsig.h"
#include "common/xalloc.h"
#include "contract/phase.h"
#include "tools/stack/proc.h"
#include "tools/stack/stack.h"

#define CHECK_TIMEOUT_MS 30000  /* `import celery, redis` */
#define READY_TIMEOUT_MS 120000 /* workers up and a warm-up chain through every queue */
#define STOP_TIMEOUT_MS 10000
#define TRANSITIONS 4
#define LINE_MAX_BYTES 4096

struct peer {
    struct proc_group *procs;
    const struct bench_celery_opts *opts;
    char *sock;
    char *env_text[3];
    const char *env[4];
    pid_t redis;
    pid_t workers[WORKER_TYPE_COUNT];
    pid_t client;
    int to_fd;
    int from_fd;
    struct buf pending; /* bytes read from the client past the last line */
};

static char *
path_in(const char *dir, const char *name)
{
    struct buf b = BUF_INIT;
    buf_printf(&b, "%s/%s", dir, name);
    return buf_detach(&b);
}

static enum rc_rc
spawn(struct peer *p, const char *const *argv, const char *log_name, bool pipes, pid_t *pid,
      struct rc_err *err)
{
    char *log_path = path_in(p->opts->dir, log_name);
    const char *const *const layers[] = {p->env};
    const struct proc_spec sp = {
        .argv = argv, .env = layers, .n_env = 1, .log_path = log_path, .pipes = pipes};
    enum rc_rc rc =
        proc_spawn(p->procs, &sp, pid, pipes ? &p->to_fd : NULL, pipes ? &p->from_fd : NULL, err);
    free(log_path);
    return rc;
}

/* Whether Debian's Celery and redis-py import; out->note says why not. */
static enum rc_rc
check_python(struct peer *p, struct bench_peer *out, bool *ok, struct rc_err *err)
{
    char *script = path_in(p->opts->script_dir, "bench_celery.py");
    const char *argv[] = {p->opts->python, "-c", "import celery, redis", NULL};
    pid_t pid = -1;
    int status = 0;
    enum rc_rc rc = RC_OK;

    *ok = false;
    if (access(p->opts->python, X_OK) != 0) {
        snprintf(out->note, sizeof(out->note), "%s not found", p->opts->python);
    } else if (access(script, R_OK) != 0) {
        snprintf(out->note, sizeof(out->note), "%s not found", script);
    } else {
        rc = spawn(p, argv, "celery-check.log", false, &pid, err);
        if (rc == RC_OK) {
            rc = proc_wait(p->procs, pid, CHECK_TIMEOUT_MS, &status, err);
        }
        if (rc == RC_OK && proc_exit_code(status) != 0) {
            snprintf(out->note, sizeof(out->note),
                     "%s cannot import celery and redis: apt-get install python3-celery "
                     "python3-redis",
                     p->opts->python);
        }
        *ok = rc == RC_OK && proc_exit_code(status) == 0;
    }
    free(script);
    return rc;
}

/* One line from the client (without its newline, caller frees) within timeout_ms. */
static enum rc_rc
read_line(struct peer *p, int64_t timeout_ms, char **out, struct rc_err *err)
{
    int64_t deadline = clock_mono_ms() + timeout_ms;

    for (;;) {
        char *nl = p->pending.len > 0 ? memchr(p->pending.data, '\n', p->pending.len) : NULL;
        if (nl != NULL) {
            size_t len = (size_t)(nl - p->pending.data);
            *out = xstrndup(p->pending.data, len);
            size_t rest = p->pending.len - len - 1;
            memmove(p->pending.data, nl + 1, rest);
            p->pending.len = rest;
            p->pending.data[rest] = '\0';
            return RC_OK;
        }
        if (p->pending.len > LINE_MAX_BYTES) {
            return rc_err_set(err, RC_EPROTO, "celery client: a line longer than %d bytes",
                              LINE_MAX_BYTES);
        }
        int64_t left = deadline - clock_mono_ms();
        if (left <= 0 || stopsig_requested()) {
            return rc_err_set(err, RC_EUNAVAIL,
                              "celery client: no answer within %" PRId64 " ms (logs in %s)",
                              timeout_ms, p->opts->dir);
        }
        struct pollfd pfd = {p->from_fd, POLLIN, 0};
        int n = poll(&pfd, 1, left > 200 ? 200 : (int)left);
        if (n < 0 && errno != EINTR) {
            return rc_err_sys(err, "poll");
        }
        if (n > 0) {
            char chunk[1024];
            ssize_t got = read(p->from_fd, chunk, sizeof(chunk));
            if (got == 0) {
                return rc_err_set(err, RC_EUNAVAIL,
                                  "celery client exited (see %s/celery-client.log)", p->opts->dir);
            }
            if (got > 0) {
                buf_append(&p->pending, chunk, (size_t)got);
            }
        }
    }
}

static enum rc_rc
send_line(struct peer *p, const char *line, struct rc_err *err)
{
    size_t len = strlen(line);
    size_t off = 0;
    while (off < len) {
        ssize_t n = write(p->to_fd, line + off, len - off);
        if (n < 0 && errno != EINTR) {
            return rc_err_sys(err, "write to the celery client");
        }
        off += n > 0 ? (size_t)n : 0;
    }
    return RC_OK;
}

/* The value of ` key=` in a result line as a number; NAN when absent or no number. */
static double
field(const char *line, const char *key)
{
    size_t key_len = strlen(key);
    for (const char *p = strstr(line, key); p != NULL; p = strstr(p + 1, key)) {
        if ((p == line || p[-1] == ' ') && p[key_len] == '=') {
            const char *v = p + key_len + 1;
            double d = NAN;
            (void)num_parse_f64(v, strcspn(v, " \n"), &d);
            return d;
        }
    }
    return NAN;
}

static void
dist_field(const char *line, const char *name, struct bench_dist *out)
{
    char key[64];
    snprintf(key, sizeof(key), "%s_n", name);
    double n = field(line, key);
    out->n = isnan(n) ? 0 : (size_t)n;
    snprintf(key, sizeof(key), "%s_p50_ms", name);
    out->p50_ms = field(line, key);
    snprintf(key, sizeof(key), "%s_p99_ms", name);
    out->p99_ms = field(line, key);
}

/* A command and its answer, which must be a `result` line without `error`. */
static enum rc_rc
ask(struct peer *p, const char *command, int64_t timeout_ms, char **out, struct rc_err *err)
{
    char *line = NULL;
    enum rc_rc rc = send_line(p, command, err);
    if (rc == RC_OK) {
        rc = read_line(p, timeout_ms, &line, err);
    }
    if (rc == RC_OK && (strncmp(line, "result ", 7) != 0 || strstr(line, " error=") != NULL)) {
        rc = rc_err_set(err, RC_EPROTO, "celery client answered \"%.180s\"", line);
    }
    if (rc != RC_OK) {
        free(line);
        return rc;
    }
    *out = line;
    return RC_OK;
}

/* CPU of [0] the workers, [1] the client, [2] redis. */
static enum rc_rc
cpu_snapshot(const struct peer *p, int64_t out[3], struct rc_err *err)
{
    enum rc_rc rc = proc_cpu_sum_us(p->workers, WORKER_TYPE_COUNT, &out[0], err);
    if (rc == RC_OK) {
        rc = proc_cpu_us(p->client, &out[1], err);
    }
    if (rc == RC_OK) {
        rc = proc_cpu_us(p->redis, &out[2], err);
    }
    return rc;
}

static enum rc_rc
run_throughput(struct peer *p, int64_t n, struct bench_throughput *out, struct rc_err *err)
{
    char command[64];
    int64_t before[3];
    int64_t after[3];
    char *line = NULL;

    snprintf(command, sizeof(command), "throughput %" PRId64 "\n", n);
    enum rc_rc rc = cpu_snapshot(p, before, err);
    if (rc == RC_OK) {
        rc = ask(p, command, 120000 + n * 250, &line, err);
    }
    if (rc == RC_OK) {
        rc = cpu_snapshot(p, after, err);
    }
    if (rc != RC_OK) {
        free(line);
        return rc;
    }
    struct bench_throughput r = {.n = n};
    r.completed = (int64_t)field(line, "completed");
    r.failed = (int64_t)field(line, "failed");
    r.seconds = field(line, "seconds");
    r.burst_s = field(line, "burst_s");
    double transitions = (double)(TRANSITIONS * r.completed);
    r.transitions_per_s = r.seconds > 0 ? transitions / r.seconds : NAN;
    r.cpu_workers_us = after[0] - before[0];
    r.cpu_client_us = after[1] - before[1];
    r.cpu_redis_us = after[2] - before[2];
    r.coordinator_us_per_transition = NAN;
    r.system_us_per_transition =
        transitions > 0
            ? (double)(r.cpu_workers_us + r.cpu_client_us + r.cpu_redis_us) / transitions
            : NAN;
    dist_field(line, "handoff", &r.handoff);
    dist_field(line, "first", &r.first);
    dist_field(line, "total", &r.total);
    *out = r;
    free(line);
    return RC_OK;
}

static enum rc_rc
run_lowload(struct peer *p, int64_t n, struct bench_lowload *out, struct rc_err *err)
{
    char command[64];
    char *line = NULL;

    snprintf(command, sizeof(command), "lowload %" PRId64 "\n", n);
    enum rc_rc rc = ask(p, command, 60000 + n * 1000, &line, err);
    if (rc != RC_OK) {
        return rc;
    }
    out->n = n;
    out->completed = (int64_t)field(line, "completed");
    dist_field(line, "handoff", &out->handoff);
    dist_field(line, "first", &out->first);
    dist_field(line, "total", &out->total);
    free(line);
    return RC_OK;
}

/* Celery's own redis-server (tools/stack: no persistence), ready once it answers PING. */
static enum rc_rc
redis_start(struct peer *p, struct rc_err *err)
{
    char *log_path = path_in(p->opts->dir, "redis.log");
    const struct stack_redis redis = {.server = "/usr/bin/redis-server",
                                      .dir = p->opts->dir,
                                      .unix_path = p->sock,
                                      .log_path = log_path};
    enum rc_rc rc = stack_redis_spawn(p->procs, &redis, &p->redis, err);
    if (rc == RC_OK) {
        rc = stack_redis_wait(p->procs, p->redis, &redis, READY_TIMEOUT_MS, err);
    }
    free(log_path);
    return rc;
}

/* One solo-pool worker process per queue, as ours runs one stub-worker process per type: for
 * no-op tasks the solo pool is Celery's fastest (no IPC to a pool child). */
static enum rc_rc
workers_start(struct peer *p, struct rc_err *err)
{
    enum rc_rc rc = RC_OK;

    for (int t = 0; rc == RC_OK && t < WORKER_TYPE_COUNT; t++) {
        const char *type = worker_type_name((enum worker_type)t);
        char node[64];
        char log_name[64];
        snprintf(node, sizeof(node), "%s@bench", type);
        snprintf(log_name, sizeof(log_name), "celery-%s.log", type);
        /* clang-format off */
        const char *argv[] = {p->opts->python, "-m", "celery", "-A", "bench_celery", "worker",
                              "-Q", type, "-n", node, "--pool=solo", "--concurrency=1",
                              "--without-gossip", "--without-mingle", "--without-heartbeat",
                              "--loglevel=WARNING", NULL};
        /* clang-format on */
        rc = spawn(p, argv, log_name, false, &p->workers[t], err);
    }
    return rc;
}

/* Start redis, the four workers and the client, and wait for the client's `ready` (a warm-up
 * chain went through every queue). */
static enum rc_rc
start(struct peer *p, struct bench_peer *out, struct rc_err *err)
{
    char *script = path_in(p->opts->script_dir, "bench_celery.py");
    const char *client_argv[] = {p->opts->python, script, "client", NULL};
    char *line = NULL;

    enum rc_rc rc = redis_start(p, err);
    if (rc == RC_OK) {
        rc = workers_start(p, err);
    }
    if (rc == RC_OK) {
        rc = spawn(p, client_argv, "celery-client.log", true, &p->client, err);
    }
    if (rc == RC_OK) {
        rc = read_line(p, READY_TIMEOUT_MS, &line, err);
    }
    if (rc == RC_OK && strncmp(line, "ready", 5) != 0) {
        rc = rc_err_set(err, RC_EPROTO, "celery client said \"%.180s\"", line);
    }
    if (rc == RC_OK) {
        const char *v = strstr(line, "celery=");
        snprintf(out->version, sizeof(out->version), "%.*s",
                 v != NULL ? (int)strcspn(v + 7, " ") : 0, v != NULL ? v + 7 : "");
    }
    free(line);
    free(script);
    return rc;
}

static void
stop(struct peer *p)
{
    if (p->to_fd >= 0) {
        (void)send_line(p, "quit\n", NULL);
        close(p->to_fd);
        p->to_fd = -1;
    }
    if (p->client > 0) {
        (void)proc_stop(p->procs, p->client, STOP_TIMEOUT_MS, NULL);
    }
    if (p->from_fd >= 0) {
        close(p->from_fd);
        p->from_fd = -1;
    }
    for (int t = 0; t < WORKER_TYPE_COUNT; t++) {
        if (p->workers[t] > 0) {
            kill(p->workers[t], SIGTERM);
        }
    }
    for (int t = 0; t < WORKER_TYPE_COUNT; t++) {
        if (p->workers[t] > 0) {
            (void)proc_stop(p->procs, p->workers[t], STOP_TIMEOUT_MS, NULL);
        }
    }
    if (p->redis > 0) {
        (void)proc_stop(p->procs, p->redis, STOP_TIMEOUT_MS, NULL);
    }
}

enum rc_rc
bench_celery_run(struct proc_group *procs, const struct bench_celery_opts *opts,
                 struct bench_peer *out, struct rc_err *err)
{
    struct peer p = {.procs = procs,
                     .opts = opts,
                     .redis = -1,
                     .client = -1,
                     .to_fd = -1,
                     .from_fd = -1,
                     .pending = BUF_INIT};
    struct bench_peer r = {.ran = false};
    struct buf b = BUF_INIT;
    bool ok = false;

    for (int t = 0; t < WORKER_TYPE_COUNT; t++) {
        p.workers[t] = -1;
    }
    p.sock = path_in(opts->dir, "redis.sock");
    buf_printf(&b, "BENCH_CELERY_REDIS=%s", p.sock);
    p.env_text[0] = buf_detach(&b);
    buf_printf(&b, "PYTHONPATH=%s", opts->script_dir);
    p.env_text[1] = buf_detach(&b);
    p.env_text[2] = xstrdup("PYTHONDONTWRITEBYTECODE=1"); /* no __pycache__ in the tree */
    for (int i = 0; i < 3; i++) {
        p.env[i] = p.env_text[i];
    }
    p.env[3] = NULL;

    enum rc_rc rc = check_python(&p, &r, &ok, err);
    if (rc == RC_OK && ok) {
        rc = start(&p, &r, err);
        if (rc == RC_OK && opts->lowload > 0) {
            rc = run_lowload(&p, opts->lowload, &r.lowload, err);
        }
        for (size_t i = 0; rc == RC_OK && i < opts->n_runs && i < BENCH_MAX_RUNS; i++) {
            rc = run_throughput(&p, opts->n[i], &r.runs[i], err);
            r.n_runs = i + 1;
        }
        r.ran = rc == RC_OK;
        stop(&p);
    }
    if (rc == RC_OK) {
        *out = r;
    }
    for (int i = 0; i < 3; i++) {
        free(p.env_text[i]);
    }
    buf_release(&p.pending);
    free(p.sock);
    return rc;
}
