/* SPDX-License-Identifier: MIT
 * bench_stack: one benchmark environment in its own directory: redis-server on a unix socket
 * (no RDB, no AOF), the dev broker, the real coordinator and one stub-worker process per
 * worker type (zero work time), all on 127.0.0.1 or unix sockets, plus the driver's Redis link
 * and trigger producer. Every child is stopped by pid when the stack is freed. */
#ifndef RC_BENCH_STACK_H
#define RC_BENCH_STACK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "common/rc_err.h"
#include "contract/phase.h"

struct proc_group;
struct redislink;
struct bench_stack; /* opaque */

struct bench_stack_opts {
    const char *bin_dir;       /* where coordinator, devbroker and stub-worker are */
    const char *dir;           /* the stack's directory (exists, empty) */
    int64_t partitions;        /* of each topic (devbroker --partitions) */
    int64_t workers;           /* stub workers per type */
    const char *poll_interval; /* AGENT_POLL_INTERVAL, seconds */
    const char *fetch_wait_ms; /* KAFKA_PROP_FETCH_WAIT_MAX_MS of every Kafka client */
    const char *coordinator;   /* the program started as "the coordinator" (in bin_dir): NULL
                                  for coordinator; bench-relay for the ceiling run */
};

/* Start redis-server and the dev broker (tools/stack) and wait until both are ready, then
 * open the driver's Redis link and trigger producer. `procs` (borrowed) records the children.
 * RC_EUNAVAIL when one is not ready within its time or the driver is stopping. Free with
 * bench_stack_free. */
enum rc_rc bench_stack_start(struct proc_group *procs, const struct bench_stack_opts *opts,
                             struct bench_stack **out, struct rc_err *err);
/* Stop the stack's children (workers, coordinator, then the servers). RC_EBACKEND naming the
 * first that did not end cleanly (exit 0 after SIGTERM): a crashed coordinator, worker or
 * server makes the figures of its run suspect. */
enum rc_rc bench_stack_stop(struct bench_stack *st, struct rc_err *err);
/* bench_stack_stop (its verdict ignored) and free. NULL is a no-op. */
void bench_stack_free(struct bench_stack *st);

/* Start the coordinator (LOG_LEVEL=warn, AGENT_MAX_CONCURRENT_RESEARCHES 10,000,000, no
 * budget, no metrics endpoint). With `wait`, return once rc:coordinator has last_cycle_at
 * (it leads and has run a cycle); RC_EUNAVAIL when that takes more than timeout_ms. */
enum rc_rc bench_stack_coordinator_start(struct bench_stack *st, bool wait, int64_t timeout_ms,
                                         struct rc_err *err);
/* AGENT_POLL_INTERVAL of the coordinators started from now on. */
void bench_stack_set_poll_interval(struct bench_stack *st, const char *seconds);
/* How many lines of the coordinator's log, from byte *offset on, contain `needle`; *offset
 * moves to the end of the log. 0 when there is no log (or no stack: st NULL). */
int64_t bench_stack_coordinator_log_count(struct bench_stack *st, const char *needle,
                                          int64_t *offset);
/* SIGTERM it and wait for it to end. */
enum rc_rc bench_stack_coordinator_stop(struct bench_stack *st, struct rc_err *err);
/* Its pid, -1 when none runs. */
pid_t bench_stack_coordinator_pid(const struct bench_stack *st);

/* Start `workers` stub workers of every type, each process with --duration-ms 0 and, when
 * `latency`, --latency-log <dir>/latency.<type>.log (truncated first); return once each type
 * has that many members in rc:workers:<type>. */
enum rc_rc bench_stack_workers_start(struct bench_stack *st, bool latency, struct rc_err *err);
/* SIGTERM the stub workers and wait until they end (their latency logs are then complete). */
enum rc_rc bench_stack_workers_stop(struct bench_stack *st, struct rc_err *err);
/* The latency log of type `wt` (valid while the stack lives). */
const char *bench_stack_latency_log(const struct bench_stack *st, enum worker_type wt);

/* Start `perf record -g -o <path>` on the coordinator; bench_stack_perf_stop ends it (SIGINT,
 * which makes perf write its data) and waits. */
enum rc_rc bench_stack_perf_start(struct bench_stack *st, const char *path, struct rc_err *err);
void bench_stack_perf_stop(struct bench_stack *st);

/* The pids the benchmark charges CPU to, in this order: coordinator, the four stub workers,
 * redis-server, devbroker (those running). Returns how many were written (at most cap). */
size_t bench_stack_pids(const struct bench_stack *st, pid_t *out, size_t cap);
pid_t bench_stack_redis_pid(const struct bench_stack *st);
pid_t bench_stack_broker_pid(const struct bench_stack *st);
/* The pids of the stub workers (up to WORKER_TYPE_COUNT); returns how many run. */
size_t bench_stack_worker_pids(const struct bench_stack *st, pid_t *out);

/* The driver's link to the stack's Redis (borrowed) and the key prefix (rc:). */
struct redislink *bench_stack_redis(const struct bench_stack *st);
const char *bench_stack_key_prefix(const struct bench_stack *st);

/* Produce one trigger {request_id, brief "bench"} to research.triggers (key request_id) and
 * set *produced_us to the Unix µs just before it was handed to librdkafka. Waits while the
 * producer's queue is full. */
enum rc_rc bench_stack_trigger(struct bench_stack *st, const char *request_id, int64_t *produced_us,
                               struct rc_err *err);
/* Serve the producer's delivery reports (non-blocking); RC_EBACKEND once a trigger failed. */
enum rc_rc bench_stack_producer_poll(struct bench_stack *st, struct rc_err *err);

/* Run one Redis command (words NULL-terminated) and return its integer or string reply as
 * an integer (nil: 0). */
enum rc_rc bench_stack_redis_int(struct bench_stack *st, const char *const *words, int64_t *out,
                                 struct rc_err *err);

#endif /* RC_BENCH_STACK_H */
