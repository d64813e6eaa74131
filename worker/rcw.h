/* SPDX-License-Identifier: MIT
 * rcw: librcworker, the worker side of the research coordinator's protocol as a library. One
 * struct rcw runs N workers of one type: its I/O thread (the one calling rcw_run) owns Kafka
 * and Redis and keeps every worker rule (read every partition from its end, heartbeats, dedupe,
 * the research check, aborts, completions resent until acknowledged); each dispatch runs the
 * caller's handler on a job thread of its own, which sees only a struct rcw_job. See
 * docs/workers.md. */
#ifndef RC_RCW_H
#define RC_RCW_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/rc_err.h"
#include "proto/value.h"

struct rcw;     /* opaque: the workers of one process */
struct rcw_job; /* opaque: one dispatch being run, valid inside its handler call only */

/* The handler: runs one dispatch on a job thread. It returns when the work is done (the
 * result built with rcw_job_result_*, or rcw_job_fail called), or early once
 * rcw_job_cancelled() is true (aborted, or released at shutdown: what it returns then is
 * dropped). It must not call rcw_run/rcw_free; rcw_stop is allowed. */
typedef void (*rcw_handler_fn)(struct rcw_job *job, void *arg);

/* Test and bench knob: a dispatch reached `what` ("recv": addressed to one of our workers,
 * before its research check; "done": right before its completion is produced). Called on the
 * I/O thread; keep it cheap. */
typedef void (*rcw_note_fn)(void *arg, const char *what, const char *research_id,
                            const char *phase);

struct rcw_config {
    const char *type;          /* "design", "training", "backtest" or "assessment" (required) */
    const char *id;            /* the worker id when count is 1; NULL: ids from id_prefix */
    const char *id_prefix;     /* ids are <id_prefix><type>-<i>, i from 1 (NULL: "rcw-") */
    int count;                 /* workers (job slots), 1..RCW_MAX_WORKERS; 0 means 1 */
    int64_t heartbeat_ms;      /* period, 10..2000; 0 means 1000 */
    int64_t shutdown_grace_ms; /* rcw_stop waits this long for running jobs; 0 means 10000;
                                  < 0: release at once */
    const char *host;          /* optional heartbeat field `host` (NULL: none) */
    const char *labels;        /* optional heartbeat field `labels`, <= 1 KiB (NULL: none) */
    /* The environment to read KAFKA_BROKERS, KAFKA_TOPIC_PREFIX, KAFKA_PROP_*, REDIS_URL,
     * REDIS_KEY_PREFIX, REDIS_TIMEOUT_MS, LOG_LEVEL from (NULL-terminated "NAME=value"; NULL:
     * the process's environ). */
    char *const *envp;
    rcw_handler_fn handler; /* may also be set with rcw_set_handler before rcw_run */
    void *handler_arg;

    /* ---- test and bench knobs (stub-worker, tools/bench); a real worker leaves them 0 ---- */
    int64_t clock_skew_ms;  /* added to every last_seen written (a host with a wrong clock) */
    int64_t die_after;      /* > 0: each worker "crashes" with its K-th dispatch: one busy
                               heartbeat, then silence for ever, the job never completes */
    bool unchecked_results; /* publish results without checking them (to test the
                               coordinator's own check) */
    bool abandon_at_stop;   /* a stop publishes nothing for running jobs (no draining wait, no
                               `released`): they are cancelled and left to the coordinator's
                               timeouts, as after a crash */
    bool verbose;           /* a stderr line per dispatch started, completed, aborted, ignored */
    const char *log_name;   /* prefix of our stderr lines (NULL: "rcw") */
    rcw_note_fn note;       /* per-dispatch notes, NULL: none */
    void *note_arg;
};

#define RCW_MAX_WORKERS 1000
#define RCW_STEP_MAX 256    /* bytes of a heartbeat's `step` (contract §5) */
#define RCW_LABELS_MAX 1024 /* bytes of `labels` */

/* Check `cfg` (borrowed, copied) and the environment, make the Kafka clients and the Redis
 * link (no connection is waited for here). RC_EINVAL naming the field or variable on bad
 * configuration (exit 78), RC_ESYS when a pipe cannot be made. Free with rcw_free(). */
enum rc_rc rcw_new(struct rcw **out, const struct rcw_config *cfg, struct rc_err *err);
/* Set the handler (before rcw_run). */
void rcw_set_handler(struct rcw *w, rcw_handler_fn handler, void *arg);
/* Run until rcw_stop: wait for the dispatch topic, position every partition at its end, then
 * heartbeat and serve dispatches. On a stop: heartbeat `draining`, wait up to
 * shutdown_grace_ms for running jobs (their completions published as they end), publish
 * `released` for the rest (their handlers see rcw_job_cancelled), flush the completions and
 * return RC_OK. RC_EBACKEND on a fatal Kafka error, RC_EINVAL without a handler. Call once,
 * from one thread: it becomes the I/O thread. */
enum rc_rc rcw_run(struct rcw *w, struct rc_err *err);
/* Ask rcw_run to stop. Async-signal-safe (one write to a pipe): call it from a SIGTERM/SIGINT
 * handler, a job thread or any other thread. Repeating it is harmless. */
void rcw_stop(struct rcw *w);
/* Free. Not while rcw_run runs. NULL is a no-op. */
void rcw_free(struct rcw *w);
/* The id of worker i (0-based, i < count), borrowed for w's life. */
const char *rcw_worker_id(const struct rcw *w, int i);

/* Signals (call rcw_signals_block first thing in main, before rcw_new starts threads): block
 * SIGINT and SIGTERM in this thread and every thread made after (and ignore SIGPIPE). Then
 * rcw_signals_start makes a thread that waits for them and calls rcw_stop(w). A forked child
 * should restore its mask (rcw_signals_unblock) before exec. RC_ESYS on failure. */
enum rc_rc rcw_signals_block(struct rc_err *err);
enum rc_rc rcw_signals_start(struct rcw *w, struct rc_err *err);
void rcw_signals_unblock(void);
/* The waiting thread keeps `w` until the process exits: free it only right before exit. */

/* ---- the job: called from its handler (its thread) only ------------------------------------ */

const char *rcw_job_research_id(const struct rcw_job *job);
const char *rcw_job_dispatch_id(const struct rcw_job *job);
const char *rcw_job_worker_id(const struct rcw_job *job);
const char *rcw_job_phase(const struct rcw_job *job); /* "training", ... (contract §1) */
const char *rcw_job_worker_type(const struct rcw_job *job);
int64_t rcw_job_attempt(const struct rcw_job *job);

/* The dispatch's params (contract §1), borrowed for the handler call. `options` is VALUE_RAW
 * (MessagePack) or VALUE_NIL; training and backtest are VALUE_MAP in assessment's. */
const struct kv *rcw_job_params(const struct rcw_job *job, size_t *n);
/* The param `key` as a string (NULL when absent, nil or not a string). */
const char *rcw_job_param_str(const struct rcw_job *job, const char *key);
/* The param `key` as a number: true and *out when it is an int or a float. */
bool rcw_job_param_number(const struct rcw_job *job, const char *key, double *out);
/* The trigger's options as MessagePack (NULL, *len 0: none), borrowed for the call. */
const char *rcw_job_options(const struct rcw_job *job, size_t *len);
/* The options as JSON text ("null" when none), borrowed for the call. */
const char *rcw_job_options_json(const struct rcw_job *job);
/* The whole {"params": {...}, "options": {...}|null} document rcw-exec gives its program
 * (params without `options`; maps as objects), borrowed for the call. */
const char *rcw_job_input_json(const struct rcw_job *job);

/* Report progress (0..1, clamped; NaN: none) and a step text (NULL: none; cut to
 * RCW_STEP_MAX bytes): in the heartbeat within about half a second (written at most every
 * 250 ms). Cheap; call it as often as you like. */
void rcw_job_progress(struct rcw_job *job, double progress, const char *step);
/* True once the job was aborted or released: stop working, nothing will be published. */
bool rcw_job_cancelled(const struct rcw_job *job);
/* Wait up to ms (a cancellable sleep). False when the job is (or becomes) cancelled. */
bool rcw_job_wait(struct rcw_job *job, int64_t ms);

/* The result (contract §3), built key by key; a key set again is replaced. Strings copied.
 * On return from the handler it is checked against the phase's rules: a bad result is
 * published as `failed` with error "bad result: <key>: <rule>" (and logged). */
void rcw_job_result_str(struct rcw_job *job, const char *key, const char *val);
void rcw_job_result_int(struct rcw_job *job, const char *key, int64_t val);
void rcw_job_result_double(struct rcw_job *job, const char *key, double val);
void rcw_job_result_bool(struct rcw_job *job, const char *key, bool val);
/* The whole result from a JSON object text (replaces what was built). RC_EPROTO with the
 * reason when it is not a JSON object a result can be made of. */
enum rc_rc rcw_job_result_json(struct rcw_job *job, const char *text, size_t len,
                               struct rc_err *err);
/* Fail the dispatch with `error` (copied, cut to 4 KiB; NULL: "worker reported failure").
 * The last call wins; a result built is then ignored. */
void rcw_job_fail(struct rcw_job *job, const char *error);

#endif /* RC_RCW_H */
