/* SPDX-License-Identifier: MIT
 * bench_flow: trigger researches, wait for them through rc:finished, charge the CPU the
 * processes spent, and join trigger times, finish times and the workers' latency logs. */
#include "tools/bench/bench_flow.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/buf.h"
#include "common/clock.h"
#include "common/num.h"
#include "common/stopsig.h"
#include "common/xalloc.h"
#include "contract/keys.h"
#include "contract/phase.h"
#include "tools/bench/bench_lat.h"
#include "tools/bench/bench_stack.h"
#include "tools/stack/proc.h"
#include "common/redislink.h"

#define WARMUP_BURST 8       /* unmeasured researches before a throughput run */
#define WARMUP_SEQUENTIAL 3  /* ... and before a low-load run */
#define WAIT_POLL_MS 5       /* between looks at rc:finished during a throughput run */
#define LOWLOAD_POLL_MS 1    /* ... during a low-load run */
#define ONE_TIMEOUT_MS 30000 /* for one research alone */
#define PIPELINE 500         /* researches read per round trip */
#define TRANSITIONS 4        /* phase completions applied per research */
#define MEASURED_PREFIX "bench-"
#define SETTLE_MS 1000 /* before the idle measurement: the last pass and its writes end */

/* ZCARD rc:finished. */
static enum rc_rc
finished_count(struct bench_stack *st, int64_t *out, struct rc_err *err)
{
    struct buf key = BUF_INIT;
    keys_finished(&key, bench_stack_key_prefix(st));
    const char *words[] = {"ZCARD", key.data, NULL};
    enum rc_rc rc = bench_stack_redis_int(st, words, out, err);
    buf_release(&key);
    return rc;
}

/* Wait until rc:finished holds `target` researches, serving the producer meanwhile. */
static enum rc_rc
wait_finished(struct bench_stack *st, int64_t target, int64_t timeout_ms, int64_t poll_ms,
              struct rc_err *err)
{
    int64_t deadline = clock_mono_ms() + timeout_ms;
    int64_t n = 0;

    for (;;) {
        enum rc_rc rc = bench_stack_producer_poll(st, err);
        if (rc == RC_OK) {
            rc = finished_count(st, &n, err);
        }
        if (rc != RC_OK || n >= target) {
            return rc;
        }
        if (stopsig_requested()) {
            return rc_err_set(err, RC_EUNAVAIL, "interrupted");
        }
        if (clock_mono_ms() >= deadline) {
            return rc_err_set(err, RC_EUNAVAIL,
                              "only %" PRId64 " of %" PRId64 " researches finished within %" PRId64
                              " ms",
                              n, target, timeout_ms);
        }
        stopsig_nap_ms(poll_ms);
    }
}

/* Trigger researches `<prefix><from>` .. `<prefix><to - 1>`, their production times in
 * produced[i - from] (produced may be NULL). */
static enum rc_rc
trigger_range(struct bench_stack *st, const char *prefix, int64_t from, int64_t to,
              int64_t *produced, struct rc_err *err)
{
    char id[64];
    for (int64_t i = from; i < to; i++) {
        int64_t us = 0;
        snprintf(id, sizeof(id), "%s%" PRId64, prefix, i);
        enum rc_rc rc = bench_stack_trigger(st, id, &us, err);
        if (rc != RC_OK) {
            return rc;
        }
        if (produced != NULL) {
            produced[i - from] = us;
        }
    }
    return RC_OK;
}

/* The index i of a measured request id "bench-<i>" below n, or -1. */
static int64_t
measured_index(const char *request_id, int64_t n)
{
    size_t len = strlen(MEASURED_PREFIX);
    if (request_id == NULL || strncmp(request_id, MEASURED_PREFIX, len) != 0) {
        return -1;
    }
    int64_t i = 0;
    const char *digits = request_id + len;
    return num_parse_i64(digits, strlen(digits), &i) && i >= 0 && i < n ? i : -1;
}

/* Per finished research: what collect() learns. */
struct tally {
    int64_t completed;
    int64_t failed;
    int64_t last_finished_us;
};

/* Read the hashes of `ids[0..n_ids)` (request_id, status, finished_at) and enter the measured
 * ones in the timeline. */
static enum rc_rc
collect_batch(struct bench_stack *st, const struct redislink_reply *ids, size_t n_ids,
              const int64_t *produced, int64_t n, struct bench_timeline *tl, struct tally *t,
              struct rc_err *err)
{
    struct redislink_cmd *cmds = xcalloc(n_ids, sizeof(*cmds));
    const char **words = xcalloc(5 * n_ids, sizeof(*words));
    struct buf *keys = xcalloc(n_ids, sizeof(*keys));
    struct redislink_reply *replies = NULL;

    for (size_t i = 0; i < n_ids; i++) {
        keys_research(&keys[i], bench_stack_key_prefix(st), ids[i].str != NULL ? ids[i].str : "");
        const char **w = words + 5 * i;
        w[0] = "HMGET";
        w[1] = keys[i].data;
        w[2] = "request_id";
        w[3] = "status";
        w[4] = "finished_at";
        cmds[i] = (struct redislink_cmd){5, w};
    }
    enum rc_rc rc = redislink_query(bench_stack_redis(st), cmds, n_ids, &replies, err);
    size_t n_replies = rc == RC_OK ? n_ids : 0;
    for (size_t i = 0; rc == RC_OK && i < n_ids; i++) {
        const struct redislink_reply *r = &replies[i];
        if (r->type != REDISLINK_ARRAY || r->n_elements != 3) {
            rc = rc_err_set(err, RC_EPROTO, "HMGET %s: unexpected reply", keys[i].data);
            break;
        }
        int64_t idx = measured_index(r->elements[0].str, n);
        if (idx < 0) {
            continue; /* a warm-up research */
        }
        bool ok = r->elements[1].str != NULL && strcmp(r->elements[1].str, "completed") == 0;
        t->completed += ok;
        t->failed += !ok;
        int64_t finished_ms = 0; /* none, or no number: 0 */
        (void)num_parse_i64(r->elements[2].str, r->elements[2].len, &finished_ms);
        int64_t finished_us = finished_ms * 1000;
        t->last_finished_us = finished_us > t->last_finished_us ? finished_us : t->last_finished_us;
        bench_timeline_set_trigger(tl, ids[i].str, produced[idx]);
        bench_timeline_set_finished(tl, ids[i].str, finished_us);
    }
    redislink_replies_free(replies, n_replies);
    for (size_t i = 0; i < n_ids; i++) {
        buf_release(&keys[i]);
    }
    free(keys);
    free(words);
    free(cmds);
    return rc;
}

/* Every finished research into the timeline and the tally. */
static enum rc_rc
collect(struct bench_stack *st, const int64_t *produced, int64_t n, struct bench_timeline *tl,
        struct tally *t, struct rc_err *err)
{
    struct buf key = BUF_INIT;
    keys_finished(&key, bench_stack_key_prefix(st));
    const char *zrange[] = {"ZRANGE", key.data, "0", "-1"};
    const struct redislink_cmd cmd = {4, zrange};
    struct redislink_reply *ids = NULL;

    enum rc_rc rc = redislink_query(bench_stack_redis(st), &cmd, 1, &ids, err);
    buf_release(&key);
    if (rc != RC_OK) {
        return rc;
    }
    for (size_t from = 0; rc == RC_OK && from < ids->n_elements; from += PIPELINE) {
        size_t count = ids->n_elements - from < PIPELINE ? ids->n_elements - from : PIPELINE;
        rc = collect_batch(st, ids->elements + from, count, produced, n, tl, t, err);
    }
    redislink_replies_free(ids, 1);
    return rc;
}

static void
dist_of(struct bench_samples *s, struct bench_dist *out)
{
    out->n = s->n;
    out->p50_ms = bench_samples_pct(s, 50);
    out->p99_ms = bench_samples_pct(s, 99);
}

/* Stop the workers (their logs are complete then) and draw the latencies. */
static enum rc_rc
latencies(struct bench_stack *st, struct bench_timeline *tl, struct bench_dist *handoff,
          struct bench_dist *first, struct bench_dist *total, struct rc_err *err)
{
    struct bench_samples s_handoff = BENCH_SAMPLES_INIT;
    struct bench_samples s_first = BENCH_SAMPLES_INIT;
    struct bench_samples s_total = BENCH_SAMPLES_INIT;
    size_t n_complete = 0;

    enum rc_rc rc = bench_stack_workers_stop(st, err);
    for (int t = 0; rc == RC_OK && t < WORKER_TYPE_COUNT; t++) {
        rc = bench_timeline_read_log(tl, bench_stack_latency_log(st, (enum worker_type)t), err);
    }
    if (rc == RC_OK) {
        bench_timeline_latencies(tl, &s_handoff, &s_first, &s_total, &n_complete);
        dist_of(&s_handoff, handoff);
        dist_of(&s_first, first);
        dist_of(&s_total, total);
    }
    bench_samples_release(&s_handoff);
    bench_samples_release(&s_first);
    bench_samples_release(&s_total);
    return rc;
}

/* CPU of the processes a throughput run charges: [0] coordinator, [1..4] workers, [5] redis,
 * [6] devbroker, [7] the driver itself. */
#define N_CHARGED (3 + WORKER_TYPE_COUNT + 1)

static enum rc_rc
cpu_snapshot(const struct bench_stack *st, int64_t out[N_CHARGED], struct rc_err *err)
{
    pid_t workers[WORKER_TYPE_COUNT];
    size_t n_workers = bench_stack_worker_pids(st, workers);
    int64_t w = 0;

    memset(out, 0, N_CHARGED * sizeof(*out));
    enum rc_rc rc = proc_cpu_us(bench_stack_coordinator_pid(st), &out[0], err);
    if (rc == RC_OK) {
        rc = proc_cpu_sum_us(workers, n_workers, &w, err);
        out[1] = w;
    }
    if (rc == RC_OK) {
        rc = proc_cpu_us(bench_stack_redis_pid(st), &out[5], err);
    }
    if (rc == RC_OK) {
        rc = proc_cpu_us(bench_stack_broker_pid(st), &out[6], err);
    }
    if (rc == RC_OK) {
        rc = proc_cpu_us(getpid(), &out[7], err);
    }
    return rc;
}

enum rc_rc
bench_flow_throughput(struct bench_stack *st, int64_t n, const char *perf_path,
                      struct bench_throughput *out, struct rc_err *err)
{
    int64_t *produced = xcalloc((size_t)n, sizeof(*produced));
    struct bench_timeline *tl = bench_timeline_new();
    struct bench_throughput r = {.n = n};
    int64_t before[N_CHARGED];
    int64_t after[N_CHARGED];
    struct tally t = {0, 0, 0};
    /* Generous: 50 transitions a second would still finish. */
    int64_t timeout_ms = 60000 + n * 80;

    enum rc_rc rc = trigger_range(st, "warm-", 0, WARMUP_BURST, NULL, err);
    if (rc == RC_OK) {
        rc = wait_finished(st, WARMUP_BURST, ONE_TIMEOUT_MS, WAIT_POLL_MS, err);
    }
    if (rc == RC_OK && perf_path != NULL) {
        rc = bench_stack_perf_start(st, perf_path, err);
    }
    if (rc == RC_OK) {
        rc = cpu_snapshot(st, before, err);
    }
    if (rc == RC_OK) {
        rc = trigger_range(st, MEASURED_PREFIX, 0, n, produced, err);
    }
    if (rc == RC_OK) {
        rc = wait_finished(st, WARMUP_BURST + n, timeout_ms, WAIT_POLL_MS, err);
    }
    if (rc == RC_OK) {
        rc = cpu_snapshot(st, after, err);
    }
    bench_stack_perf_stop(st);
    if (rc == RC_OK) {
        rc = collect(st, produced, n, tl, &t, err);
    }
    if (rc == RC_OK) {
        rc = latencies(st, tl, &r.handoff, &r.first, &r.total, err);
    }
    if (rc != RC_OK) {
        goto out;
    }
    r.completed = t.completed;
    r.failed = t.failed;
    r.seconds = (double)(t.last_finished_us - produced[0]) / 1e6;
    r.burst_s = (double)(produced[n - 1] - produced[0]) / 1e6;
    double transitions = (double)(TRANSITIONS * t.completed);
    r.transitions_per_s = r.seconds > 0 ? transitions / r.seconds : NAN;
    r.cpu_coordinator_us = after[0] - before[0];
    r.cpu_workers_us = after[1] - before[1];
    r.cpu_redis_us = after[5] - before[5];
    r.cpu_broker_us = after[6] - before[6];
    r.cpu_client_us = after[7] - before[7];
    int64_t system = r.cpu_coordinator_us + r.cpu_workers_us + r.cpu_redis_us + r.cpu_broker_us +
                     r.cpu_client_us;
    r.coordinator_us_per_transition =
        transitions > 0 ? (double)r.cpu_coordinator_us / transitions : NAN;
    r.system_us_per_transition = transitions > 0 ? (double)system / transitions : NAN;
    *out = r;
out:
    bench_timeline_free(tl);
    free(produced);
    return rc;
}

/* The coordinator's CPU over idle_s seconds with nothing to do. */
static enum rc_rc
measure_idle(struct bench_stack *st, int64_t idle_s, struct bench_idle *out, struct rc_err *err)
{
    pid_t pid = bench_stack_coordinator_pid(st);
    int64_t before = 0;
    int64_t after = 0;

    stopsig_nap_ms(SETTLE_MS);
    int64_t t0 = clock_mono_us();
    enum rc_rc rc = proc_cpu_us(pid, &before, err);
    int64_t end_ms = clock_mono_ms() + idle_s * 1000;
    while (rc == RC_OK && clock_mono_ms() < end_ms) {
        if (stopsig_requested()) {
            return rc_err_set(err, RC_EUNAVAIL, "interrupted");
        }
        stopsig_nap_ms(100);
    }
    if (rc == RC_OK) {
        rc = proc_cpu_us(pid, &after, err);
    }
    if (rc == RC_OK) {
        double seconds = (double)(clock_mono_us() - t0) / 1e6;
        out->seconds = seconds;
        out->cpu_us = after - before;
        out->percent = 100.0 * (double)out->cpu_us / 1e6 / seconds;
    }
    return rc;
}

enum rc_rc
bench_flow_lowload(struct bench_stack *st, int64_t n, int64_t idle_s, struct bench_lowload *out,
                   struct bench_idle *idle, struct rc_err *err)
{
    int64_t *produced = xcalloc((size_t)(n > 0 ? n : 1), sizeof(*produced));
    struct bench_timeline *tl = bench_timeline_new();
    struct bench_lowload r = {.n = n};
    struct tally t = {0, 0, 0};
    enum rc_rc rc = RC_OK;

    for (int64_t i = 0; rc == RC_OK && i < WARMUP_SEQUENTIAL; i++) {
        rc = trigger_range(st, "warm-", i, i + 1, NULL, err);
        if (rc == RC_OK) {
            rc = wait_finished(st, i + 1, ONE_TIMEOUT_MS, LOWLOAD_POLL_MS, err);
        }
    }
    for (int64_t i = 0; rc == RC_OK && i < n; i++) {
        rc = trigger_range(st, MEASURED_PREFIX, i, i + 1, &produced[i], err);
        if (rc == RC_OK) {
            rc = wait_finished(st, WARMUP_SEQUENTIAL + i + 1, ONE_TIMEOUT_MS, LOWLOAD_POLL_MS, err);
        }
    }
    if (rc == RC_OK && idle_s > 0) {
        rc = measure_idle(st, idle_s, idle, err);
    }
    if (rc == RC_OK) {
        rc = collect(st, produced, n, tl, &t, err);
    }
    if (rc == RC_OK) {
        rc = latencies(st, tl, &r.handoff, &r.first, &r.total, err);
    }
    if (rc == RC_OK) {
        r.completed = t.completed;
        *out = r;
    }
    bench_timeline_free(tl);
    free(produced);
    return rc;
}
