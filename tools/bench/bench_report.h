/* SPDX-License-Identifier: MIT
 * bench_report: the benchmark's figures as plain data, filled in by the runs (bench_flow,
 * bench_cycle, bench_celery), and their two renderings: the table on stdout (figure, ours,
 * ceiling, ours / ceiling, Celery, ours / Celery, the target of issue 5) and the JSON document
 * of --json. */
#ifndef RC_BENCH_REPORT_H
#define RC_BENCH_REPORT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

struct buf;

#define BENCH_MAX_RUNS 8 /* throughput runs (values of --n) and cycle runs (--cycle) */

/* A latency distribution in milliseconds; NAN when there was no sample. */
struct bench_dist {
    size_t n;
    double p50_ms;
    double p99_ms;
};

/* N researches (chains) triggered at once and run to the end. A phase transition is one
 * phase's completion applied: 4 per research (design, training, backtest, assessment). */
struct bench_throughput {
    int64_t n;         /* researches triggered */
    int64_t completed; /* finished with status completed */
    int64_t failed;    /* finished otherwise */
    double seconds;    /* first trigger produced -> last research finished */
    double burst_s;    /* first trigger produced -> last trigger produced */
    double transitions_per_s;
    /* CPU time spent during the run (user + system), µs, per process group. */
    int64_t cpu_coordinator_us; /* Celery: 0 (there is none) */
    int64_t cpu_workers_us;     /* the four stub-worker / celery worker processes */
    int64_t cpu_redis_us;
    int64_t cpu_broker_us; /* devbroker; Celery: 0 (Redis is its broker) */
    int64_t cpu_client_us; /* who triggers and waits: the driver / the Celery client */
    double coordinator_us_per_transition;
    double system_us_per_transition; /* every process above */
    struct bench_dist handoff;       /* completion produced -> next dispatch received */
    struct bench_dist first;         /* trigger produced -> design dispatch received */
    struct bench_dist total;         /* trigger produced -> research finished */
    int64_t coordinator_log_lines;   /* warnings and errors it logged (LOG_LEVEL=warn) */
};

/* One research at a time. */
struct bench_lowload {
    int64_t n; /* researches measured (after a few unmeasured ones) */
    int64_t completed;
    int64_t coordinator_log_lines; /* warnings and errors it logged (LOG_LEVEL=warn) */
    struct bench_dist handoff;
    struct bench_dist first;
    struct bench_dist total;
};

/* A coordinator with `active` researches parked (all waiting for a training worker). */
struct bench_cycle {
    int64_t active;
    const char *poll_interval; /* AGENT_POLL_INTERVAL of the run (static string) */
    int64_t lease_losses;      /* "lost the leader lease" lines in its log: 0 in a sound run */
    double start_s;            /* coordinator started -> its first cycle written */
    double first_ms;           /* the first cycle, which marks every research waiting */
    int64_t samples;           /* steady cycles seen */
    double median_ms;          /* of the steady cycles */
    double p90_ms;
    double max_ms;
    double peak_rss_mb; /* VmHWM */
};

struct bench_idle {
    double seconds;
    int64_t cpu_us;
    double percent; /* of one core */
};

struct bench_peer {
    bool ran;
    char note[256]; /* why it did not run, or "" */
    char version[64];
    struct bench_lowload lowload;
    struct bench_throughput runs[BENCH_MAX_RUNS];
    size_t n_runs;
};

/* The ceiling run: the same stack with bench-relay (bench_relay.c) for the coordinator. */
struct bench_ceiling {
    bool ran;
    char note[256]; /* why it did not run, or "" */
    struct bench_throughput run; /* at the largest N */
    bool has_lowload;
    struct bench_lowload lowload;
};

struct bench_results {
    /* how it ran */
    bool quick;
    int64_t workers;
    int64_t partitions;
    const char *poll_interval;
    const char *fetch_wait_ms;
    double wall_s; /* the whole benchmark */
    /* ours */
    bool has_lowload;
    struct bench_lowload lowload;
    bool has_idle;
    struct bench_idle idle;
    struct bench_throughput runs[BENCH_MAX_RUNS];
    size_t n_runs;
    struct bench_cycle cycles[BENCH_MAX_RUNS];
    size_t n_cycles;
    /* the ceiling run */
    struct bench_ceiling ceiling;
    /* the Celery peer */
    struct bench_peer celery;
};

/* The table and its notes. */
void bench_report_table(const struct bench_results *r, FILE *out);
/* The whole of `r` as one JSON object appended to `out`. */
void bench_report_json(const struct bench_results *r, struct buf *out);

#endif /* RC_BENCH_REPORT_H */
