/* SPDX-License-Identifier: MIT
 * bench_stack: start, wait for and stop the processes of one benchmark environment; the
 * driver's Redis link and its trigger producer. */
#include "tools/bench/bench_stack.h"

#include <librdkafka/rdkafka.h>

#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/buf.h"
#include "common/cfg.h"
#include "common/clock.h"
#include "common/kclient.h"
#include "common/num.h"
#include "common/stopsig.h"
#include "common/xalloc.h"
#include "contract/fields.h"
#include "contract/keys.h"
#include "proto/msg.h"
#include "common/redislink.h"
#include "tools/stack/proc.h"
#include "tools/stack/stack.h"

#define READY_TIMEOUT_MS 20000    /* redis-server, devbroker, stub workers */
#define STOP_TIMEOUT_MS 10000     /* SIGTERM to exit (a stub worker flushes its completions) */
#define POLL_MS 10                /* between readiness checks */
#define MAX_CONCURRENT "10000000" /* AGENT_MAX_CONCURRENT_RESEARCHES: never the limit */

/* The children's environment, one slot per variable. */
enum env_slot {
    ENV_BROKERS = 0,
    ENV_REDIS_URL,
    ENV_KEY_PREFIX,
    ENV_TOPIC_PREFIX,
    ENV_FETCH_WAIT,
    ENV_POLL_INTERVAL,
    ENV_MAX_CONCURRENT,
    ENV_BUDGET,
    ENV_LOG_LEVEL,
    ENV_METRICS,
    N_ENV
};

struct bench_stack {
    struct proc_group *procs; /* borrowed */
    struct bench_stack_opts opts;
    char *dir;
    char *redis_sock;
    char *bootstrap;       /* devbroker's bootstrap servers, once it is ready */
    char *env_text[N_ENV]; /* "NAME=value", owned; env[] points at them */
    const char *env[N_ENV + 1];
    struct cfg cfg; /* loaded from env[]: what the children see */
    pid_t redis;
    pid_t broker;
    pid_t coordinator;
    pid_t workers[WORKER_TYPE_COUNT];
    pid_t perf;
    char *latency_log[WORKER_TYPE_COUNT];
    struct redislink *rl;
    struct kclient *kproducer;
    rd_kafka_t *producer; /* kclient_rk(kproducer) */
    rd_kafka_topic_t *triggers;
    char delivery_error[256]; /* the first failed delivery, "" while none */
};

/* Unix time in microseconds (CLOCK_REALTIME), the clock of the workers' latency logs. */
static int64_t
now_us(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000 + (int64_t)(ts.tv_nsec / 1000);
}

static char *
path_in(const char *dir, const char *name)
{
    struct buf b = BUF_INIT;
    buf_printf(&b, "%s/%s", dir, name);
    return buf_detach(&b);
}

static enum rc_rc
spawn(struct bench_stack *st, const char *const *argv, const char *log_name, pid_t *pid,
      struct rc_err *err)
{
    char *log_path = path_in(st->dir, log_name);
    const char *const *const layers[] = {st->env};
    const struct proc_spec sp = {.argv = argv, .env = layers, .n_env = 1, .log_path = log_path};
    enum rc_rc rc = proc_spawn(st->procs, &sp, pid, NULL, NULL, err);
    free(log_path);
    return rc;
}

static void
env_set(struct bench_stack *st, enum env_slot i, const char *name, const char *value)
{
    struct buf b = BUF_INIT;
    RC_ASSERT((size_t)i < (size_t)N_ENV);
    buf_printf(&b, "%s=%s", name, value);
    free(st->env_text[i]);
    st->env_text[i] = buf_detach(&b);
    st->env[i] = st->env_text[i];
}

/* Wait for a child to be ready: `ready` true, or fail when it exits or time runs out. */
static enum rc_rc
wait_ready(struct bench_stack *st, pid_t pid, const char *what, bool (*ready)(struct bench_stack *),
           int64_t timeout_ms, struct rc_err *err)
{
    int64_t deadline = clock_mono_ms() + timeout_ms;

    while (!ready(st)) {
        if (stopsig_requested()) {
            return rc_err_set(err, RC_EUNAVAIL, "interrupted");
        }
        if (pid > 0 && !proc_running(st->procs, pid)) {
            return rc_err_set(err, RC_EUNAVAIL, "%s exited at start (see its log in %s)", what,
                              st->dir);
        }
        if (clock_mono_ms() >= deadline) {
            return rc_err_set(err, RC_EUNAVAIL, "%s not ready within %" PRId64 " ms (logs in %s)",
                              what, timeout_ms, st->dir);
        }
        stopsig_nap_ms(POLL_MS);
    }
    return RC_OK;
}

static void
delivered(void *owner, const rd_kafka_message_t *rkm)
{
    struct bench_stack *st = owner;

    if (rkm->err != RD_KAFKA_RESP_ERR_NO_ERROR && st->delivery_error[0] == '\0') {
        snprintf(st->delivery_error, sizeof(st->delivery_error), "trigger not delivered: %s",
                 rd_kafka_err2str(rkm->err));
    }
}

/* The trigger producer: linger.ms 0, so that a trigger of the low-load run leaves at once (a
 * burst is batched all the same while a request is in flight). */
static enum rc_rc
producer_open(struct bench_stack *st, struct rc_err *err)
{
    static const char *const defaults[] = {"linger.ms", "0", NULL};
    const struct kclient_spec spec = {.type = RD_KAFKA_PRODUCER,
                                      .role = "trigger producer",
                                      .defaults = defaults,
                                      .owner = st,
                                      .delivered = delivered};
    enum rc_rc rc = kclient_new(&st->cfg.kafka, &spec, &st->kproducer, err);
    if (rc != RC_OK) {
        return rc;
    }
    st->producer = kclient_rk(st->kproducer);
    st->triggers = rd_kafka_topic_new(st->producer, st->cfg.kafka.topics[TOPIC_TRIGGERS], NULL);
    /* Learn the topic's partitions now, not when the first timed trigger is sent. */
    const struct rd_kafka_metadata *md = NULL;
    rd_kafka_resp_err_t kerr = rd_kafka_metadata(st->producer, 0, st->triggers, &md, 10000);
    if (kerr != RD_KAFKA_RESP_ERR_NO_ERROR) {
        return rc_err_set(err, RC_EUNAVAIL, "kafka: metadata of %s: %s",
                          st->cfg.kafka.topics[TOPIC_TRIGGERS], rd_kafka_err2str(kerr));
    }
    rd_kafka_metadata_destroy(md);
    return RC_OK;
}

static enum rc_rc
load_cfg(struct bench_stack *st, struct rc_err *err)
{
    struct buf problems = BUF_INIT;
    enum rc_rc rc = cfg_load(&st->cfg, (char *const *)(uintptr_t)st->env, &problems, err);
    if (rc != RC_OK && problems.len > 0) {
        rc = rc_err_set(err, rc, "configuration: %s", problems.data);
    }
    buf_release(&problems);
    return rc;
}

/* Start redis-server and the dev broker, then wait until the one answers PING and the other
 * has written its bootstrap file (st->bootstrap). */
static enum rc_rc
servers_start(struct bench_stack *st, struct rc_err *err)
{
    char *redis_log = path_in(st->dir, "redis.log");
    char *devbroker = path_in(st->opts.bin_dir, "devbroker");
    char *bootstrap_path = path_in(st->dir, "bootstrap");
    char *broker_log = path_in(st->dir, "devbroker.log");
    /* No RDB and no AOF: the benchmark measures the coordinator, not the disk (the fault
     * tests use AOF; docs/operations.md, "Durability: Redis", says what it costs). */
    const struct stack_redis redis = {.server = "/usr/bin/redis-server",
                                      .dir = st->dir,
                                      .unix_path = st->redis_sock,
                                      .log_path = redis_log};
    const struct stack_broker broker = {.devbroker = devbroker,
                                        .bootstrap_file = bootstrap_path,
                                        .partitions = (int)st->opts.partitions,
                                        .log_path = broker_log};
    enum rc_rc rc = stack_redis_spawn(st->procs, &redis, &st->redis, err);
    if (rc == RC_OK) {
        rc = stack_broker_spawn(st->procs, &broker, &st->broker, err);
    }
    if (rc == RC_OK) {
        rc = stack_redis_wait(st->procs, st->redis, &redis, READY_TIMEOUT_MS, err);
    }
    if (rc == RC_OK) {
        rc = stack_broker_wait(st->procs, st->broker, &broker, READY_TIMEOUT_MS, &st->bootstrap,
                               err);
    }
    free(broker_log);
    free(bootstrap_path);
    free(devbroker);
    free(redis_log);
    return rc;
}

/* The environment of the children (and of the driver's own configuration). */
static void
env_fill(struct bench_stack *st)
{
    struct buf url = BUF_INIT;

    buf_printf(&url, "unix://%s", st->redis_sock);
    env_set(st, ENV_BROKERS, "KAFKA_BROKERS", st->bootstrap);
    env_set(st, ENV_REDIS_URL, "REDIS_URL", url.data);
    env_set(st, ENV_KEY_PREFIX, "REDIS_KEY_PREFIX", "rc:");
    env_set(st, ENV_TOPIC_PREFIX, "KAFKA_TOPIC_PREFIX", "research.");
    /* The mock broker answers an empty fetch only after fetch.wait.max.ms. */
    env_set(st, ENV_FETCH_WAIT, "KAFKA_PROP_FETCH_WAIT_MAX_MS", st->opts.fetch_wait_ms);
    env_set(st, ENV_POLL_INTERVAL, "AGENT_POLL_INTERVAL", st->opts.poll_interval);
    env_set(st, ENV_MAX_CONCURRENT, "AGENT_MAX_CONCURRENT_RESEARCHES", MAX_CONCURRENT);
    env_set(st, ENV_BUDGET, "AGENT_DAILY_BUDGET", "0");
    env_set(st, ENV_LOG_LEVEL, "LOG_LEVEL", "warn");
    env_set(st, ENV_METRICS, "METRICS_ADDR", "");
    buf_release(&url);
}

enum rc_rc
bench_stack_start(struct proc_group *procs, const struct bench_stack_opts *opts,
                  struct bench_stack **out, struct rc_err *err)
{
    struct bench_stack *st = xcalloc(1, sizeof(*st));
    st->procs = procs;
    st->opts = *opts;
    st->dir = xstrdup(opts->dir);
    st->redis_sock = path_in(opts->dir, "redis.sock");
    st->cfg = (struct cfg)CFG_INIT;
    st->redis = st->broker = st->coordinator = st->perf = -1;
    for (int t = 0; t < WORKER_TYPE_COUNT; t++) {
        st->workers[t] = -1;
        struct buf b = BUF_INIT;
        buf_printf(&b, "%s/latency.%s.log", opts->dir, worker_type_name((enum worker_type)t));
        st->latency_log[t] = buf_detach(&b);
    }

    enum rc_rc rc = servers_start(st, err);
    if (rc == RC_OK) {
        env_fill(st);
        rc = load_cfg(st, err);
    }
    if (rc == RC_OK) {
        st->rl = redislink_new(&st->cfg.redis);
        rc = producer_open(st, err);
    }
    if (rc != RC_OK) {
        bench_stack_free(st);
        return rc;
    }
    *out = st;
    return RC_OK;
}

/* Stop one child; the first failure goes into err (and *rc). */
static void
stop_child(struct bench_stack *st, pid_t *pid, const char *what, enum rc_rc *rc, struct rc_err *err)
{
    struct rc_err e = RC_ERR_INIT;

    if (*pid > 0) {
        if (proc_stop(st->procs, *pid, STOP_TIMEOUT_MS, &e) != RC_OK && *rc == RC_OK) {
            *rc = rc_err_set(err, e.rc, "%s: %s (logs in %s)", what, e.msg, st->dir);
        }
        *pid = -1;
    }
}

enum rc_rc
bench_stack_stop(struct bench_stack *st, struct rc_err *err)
{
    enum rc_rc rc = RC_OK;

    bench_stack_perf_stop(st);
    if (bench_stack_workers_stop(st, err) != RC_OK) {
        rc = RC_EBACKEND;
    }
    stop_child(st, &st->coordinator, "coordinator", &rc, err);
    /* The servers go last, after the driver's own clients: a client left open would only
     * complain that its server went away. */
    if (st->triggers != NULL) {
        rd_kafka_topic_destroy(st->triggers);
        st->triggers = NULL;
    }
    if (st->producer != NULL) {
        rd_kafka_flush(st->producer, 1000);
        kclient_free(st->kproducer);
        st->kproducer = NULL;
        st->producer = NULL;
    }
    redislink_free(st->rl);
    st->rl = NULL;
    stop_child(st, &st->broker, "devbroker", &rc, err);
    stop_child(st, &st->redis, "redis-server", &rc, err);
    return rc;
}

void
bench_stack_free(struct bench_stack *st)
{
    if (st == NULL) {
        return;
    }
    (void)bench_stack_stop(st, NULL);
    for (int t = 0; t < WORKER_TYPE_COUNT; t++) {
        free(st->latency_log[t]);
    }
    for (size_t i = 0; i < N_ENV; i++) {
        free(st->env_text[i]);
    }
    cfg_release(&st->cfg);
    free(st->bootstrap);
    free(st->redis_sock);
    free(st->dir);
    free(st);
}

enum rc_rc
bench_stack_redis_int(struct bench_stack *st, const char *const *words, int64_t *out,
                      struct rc_err *err)
{
    size_t n = 0;
    while (words[n] != NULL) {
        n++;
    }
    const struct redislink_cmd cmd = {n, (const char **)(uintptr_t)words};
    struct redislink_reply *r = NULL;
    enum rc_rc rc = redislink_query(st->rl, &cmd, 1, &r, err);
    if (rc != RC_OK) {
        return rc;
    }
    int64_t v = 0;
    if (r->type == REDISLINK_INT) {
        v = r->integer;
    } else if (r->type == REDISLINK_STR) {
        if (!num_parse_i64(r->str, r->len, &v)) {
            rc = rc_err_set(err, RC_EPROTO, "%s: not an integer: %s", words[0], r->str);
        }
    }
    redislink_replies_free(r, 1);
    if (rc == RC_OK) {
        *out = v;
    }
    return rc;
}

static bool
coordinator_cycled(struct bench_stack *st)
{
    struct buf key = BUF_INIT;
    char *at = NULL;
    keys_coordinator(&key, st->cfg.redis.key_prefix);
    bool ok = redislink_hget(st->rl, key.data, COORD_LAST_CYCLE_AT, &at, NULL) == RC_OK && at != NULL;
    free(at);
    buf_release(&key);
    return ok;
}

enum rc_rc
bench_stack_coordinator_start(struct bench_stack *st, bool wait, int64_t timeout_ms,
                              struct rc_err *err)
{
    const char *program = st->opts.coordinator != NULL ? st->opts.coordinator : "coordinator";
    char *path = path_in(st->opts.bin_dir, program);
    const char *argv[] = {path, NULL};
    enum rc_rc rc = spawn(st, argv, "coordinator.log", &st->coordinator, err);
    free(path);
    if (rc == RC_OK && wait) {
        rc = wait_ready(st, st->coordinator, "coordinator", coordinator_cycled, timeout_ms, err);
    }
    return rc;
}

void
bench_stack_set_poll_interval(struct bench_stack *st, const char *seconds)
{
    env_set(st, ENV_POLL_INTERVAL, "AGENT_POLL_INTERVAL", seconds);
}

int64_t
bench_stack_coordinator_log_count(struct bench_stack *st, const char *needle, int64_t *offset)
{
    if (st == NULL) {
        return 0; /* the stack never started: no log */
    }
    char *path = path_in(st->dir, "coordinator.log");
    FILE *f = fopen(path, "r");
    char line[4096];
    int64_t n = 0;

    free(path);
    if (f == NULL) {
        return 0;
    }
    if (fseek(f, (long)*offset, SEEK_SET) == 0) {
        while (fgets(line, sizeof(line), f) != NULL) {
            n += strstr(line, needle) != NULL;
        }
        long end = ftell(f);
        *offset = end >= 0 ? (int64_t)end : *offset;
    }
    fclose(f);
    return n;
}

enum rc_rc
bench_stack_coordinator_stop(struct bench_stack *st, struct rc_err *err)
{
    enum rc_rc rc = RC_OK;
    if (st->coordinator > 0) {
        rc = proc_stop(st->procs, st->coordinator, STOP_TIMEOUT_MS, err);
        st->coordinator = -1;
    }
    return rc;
}

pid_t
bench_stack_coordinator_pid(const struct bench_stack *st)
{
    return st->coordinator;
}

static bool
workers_live(struct bench_stack *st)
{
    struct buf key = BUF_INIT;
    bool ok = true;
    for (int t = 0; t < WORKER_TYPE_COUNT && ok; t++) {
        keys_workers(&key, st->cfg.redis.key_prefix, (enum worker_type)t);
        const char *zcard[] = {"ZCARD", key.data, NULL};
        int64_t n = 0;
        ok = bench_stack_redis_int(st, zcard, &n, NULL) == RC_OK && n >= st->opts.workers;
    }
    buf_release(&key);
    return ok;
}

enum rc_rc
bench_stack_workers_start(struct bench_stack *st, bool latency, struct rc_err *err)
{
    char *path = path_in(st->opts.bin_dir, "stub-worker");
    char count[24];
    enum rc_rc rc = RC_OK;

    snprintf(count, sizeof(count), "%" PRId64, st->opts.workers);
    for (int t = 0; t < WORKER_TYPE_COUNT && rc == RC_OK; t++) {
        const char *type = worker_type_name((enum worker_type)t);
        char log_name[64];
        snprintf(log_name, sizeof(log_name), "stub-%s.log", type);
        const char *argv[] = {path,
                              "--type",
                              type,
                              "--count",
                              count,
                              "--duration-ms",
                              "0",
                              latency ? "--latency-log" : NULL,
                              st->latency_log[t],
                              NULL};
        if (latency) {
            FILE *f = fopen(st->latency_log[t], "w"); /* a fresh log per start */
            if (f == NULL) {
                rc = rc_err_sys(err, "create %s", st->latency_log[t]);
                break;
            }
            fclose(f);
        }
        rc = spawn(st, argv, log_name, &st->workers[t], err);
    }
    free(path);
    if (rc == RC_OK) {
        rc = wait_ready(st, st->workers[WORKER_TYPE_COUNT - 1], "stub workers", workers_live,
                        READY_TIMEOUT_MS, err);
    }
    return rc;
}

enum rc_rc
bench_stack_workers_stop(struct bench_stack *st, struct rc_err *err)
{
    enum rc_rc rc = RC_OK;

    /* All at once, then collect: each takes a moment to close its Kafka handles. */
    for (int t = 0; t < WORKER_TYPE_COUNT; t++) {
        if (st->workers[t] > 0) {
            kill(st->workers[t], SIGTERM);
        }
    }
    for (int t = 0; t < WORKER_TYPE_COUNT; t++) {
        if (st->workers[t] > 0) {
            struct rc_err e = RC_ERR_INIT;
            if (proc_stop(st->procs, st->workers[t], STOP_TIMEOUT_MS, &e) != RC_OK && rc == RC_OK) {
                rc = rc_err_set(err, e.rc, "stub-worker %s: %s",
                                worker_type_name((enum worker_type)t), e.msg);
            }
            st->workers[t] = -1;
        }
    }
    return rc;
}

enum rc_rc
bench_stack_perf_start(struct bench_stack *st, const char *path, struct rc_err *err)
{
    char pid[24];
    snprintf(pid, sizeof(pid), "%ld", (long)st->coordinator);
    const char *argv[] = {"/usr/bin/perf", "record", "-g", "-o", path, "-p", pid, NULL};
    enum rc_rc rc = spawn(st, argv, "perf.log", &st->perf, err);
    if (rc == RC_OK) {
        stopsig_nap_ms(500); /* perf attaches to every thread */
    }
    return rc;
}

void
bench_stack_perf_stop(struct bench_stack *st)
{
    if (st->perf > 0) {
        kill(st->perf, SIGINT);
        (void)proc_stop(st->procs, st->perf, 30000, NULL);
        st->perf = -1;
    }
}

const char *
bench_stack_latency_log(const struct bench_stack *st, enum worker_type wt)
{
    return st->latency_log[wt];
}

size_t
bench_stack_worker_pids(const struct bench_stack *st, pid_t *out)
{
    size_t n = 0;
    for (int t = 0; t < WORKER_TYPE_COUNT; t++) {
        if (st->workers[t] > 0) {
            out[n++] = st->workers[t];
        }
    }
    return n;
}

size_t
bench_stack_pids(const struct bench_stack *st, pid_t *out, size_t cap)
{
    pid_t all[3 + WORKER_TYPE_COUNT];
    size_t n = 0;

    if (st->coordinator > 0) {
        all[n++] = st->coordinator;
    }
    n += bench_stack_worker_pids(st, all + n);
    all[n++] = st->redis;
    all[n++] = st->broker;
    n = n < cap ? n : cap;
    memcpy(out, all, n * sizeof(*out));
    return n;
}

pid_t
bench_stack_redis_pid(const struct bench_stack *st)
{
    return st->redis;
}

pid_t
bench_stack_broker_pid(const struct bench_stack *st)
{
    return st->broker;
}

struct redislink *
bench_stack_redis(const struct bench_stack *st)
{
    return st->rl;
}

const char *
bench_stack_key_prefix(const struct bench_stack *st)
{
    return st->cfg.redis.key_prefix;
}

enum rc_rc
bench_stack_trigger(struct bench_stack *st, const char *request_id, int64_t *produced_us,
                    struct rc_err *err)
{
    struct msg m = MSG_INIT;
    struct buf wire = BUF_INIT;
    rd_kafka_resp_err_t kerr;
    int64_t us = 0;

    m.kind = MSG_TRIGGER;
    m.ts_ms = clock_now_ms();
    m.u.trigger.request_id = request_id;
    m.u.trigger.brief = "bench";
    msg_encode(&m, &wire);
    for (;;) {
        us = now_us();
        kerr = rd_kafka_produce(st->triggers, RD_KAFKA_PARTITION_UA, RD_KAFKA_MSG_F_COPY, wire.data,
                                wire.len, request_id, strlen(request_id), NULL) == 0
                   ? RD_KAFKA_RESP_ERR_NO_ERROR
                   : rd_kafka_last_error();
        if (kerr != RD_KAFKA_RESP_ERR__QUEUE_FULL || stopsig_requested()) {
            break;
        }
        rd_kafka_poll(st->producer, 10); /* let deliveries drain the local queue */
    }
    buf_release(&wire);
    if (kerr != RD_KAFKA_RESP_ERR_NO_ERROR) {
        return rc_err_set(err, RC_EBACKEND, "kafka: produce trigger %s: %s", request_id,
                          rd_kafka_err2str(kerr));
    }
    *produced_us = us;
    return RC_OK;
}

enum rc_rc
bench_stack_producer_poll(struct bench_stack *st, struct rc_err *err)
{
    rd_kafka_poll(st->producer, 0);
    if (st->delivery_error[0] != '\0') {
        return rc_err_set(err, RC_EBACKEND, "%s", st->delivery_error);
    }
    return RC_OK;
}
