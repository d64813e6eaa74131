/* SPDX-License-Identifier: MIT
 * stub-worker: simulates N workers of one type in one process for the tests and the
 * benchmark. The protocol (heartbeats, dispatches read from every partition, the research
 * check, aborts, completions until Kafka has them) is librcworker's (worker/rcw.h); what is
 * simulated is the handler below and stubsim.c (durations, failures, results), the command
 * line stubopt.c. */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/buf.h"
#include "common/clock.h"
#include "common/rc_err.h"
#include "contract/phase.h"
#include "proto/value.h"
#include "tools/stub-worker/stubopt.h"
#include "tools/stub-worker/stubsim.h"
#include "worker/rcw.h"

#define TOOL "stub-worker"
#define LATENCY_BUF_BYTES 65536 /* --latency-log's stdio buffer */

struct stub {
    struct stubopt opt;
    pthread_mutex_t rng_mu; /* handlers run on threads of their own */
    uint64_t rng;
    FILE *latency; /* --latency-log, NULL without it; written on the I/O thread only */
};

/* --latency-log: one line `<what> <research_id> <phase> <unix us>` (see stubopt.c), only for
 * measuring (tools/bench). Buffered: complete once the process has exited. */
static void
latency_note(void *arg, const char *what, const char *research_id, const char *phase)
{
    struct stub *s = arg;
    struct timespec ts;

    if (clock_gettime(CLOCK_REALTIME, &ts) != 0) {
        return;
    }
    int64_t us = (int64_t)ts.tv_sec * 1000000 + (int64_t)(ts.tv_nsec / 1000);
    fprintf(s->latency, "%s %s %s %" PRId64 "\n", what, research_id, phase, us);
}

/* One simulated dispatch: wait its random duration (cancellable: an abort ends it), then fail
 * with --fail-prob's chance, else build the type's result (stubsim). Under --hang it only
 * waits for its abort. */
static void
simulate(struct rcw_job *job, void *arg)
{
    struct stub *s = arg;
    struct kv result[STUBSIM_RESULT_MAX];
    struct buf name = BUF_INIT;
    struct buf path = BUF_INIT;

    pthread_mutex_lock(&s->rng_mu);
    int64_t duration_ms =
        stubsim_rand_range(&s->rng, s->opt.duration_min_ms, s->opt.duration_max_ms);
    bool will_fail = stubsim_rand_unit(&s->rng) < s->opt.fail_prob;
    pthread_mutex_unlock(&s->rng_mu);

    if (s->opt.hang) {
        while (rcw_job_wait(job, 60000)) {
        }
        return; /* aborted, or the process stops */
    }
    if (duration_ms > 0 && !rcw_job_wait(job, duration_ms)) {
        return; /* aborted */
    }
    if (will_fail) {
        rcw_job_fail(job, "stub failure");
        return;
    }
    size_t n = stubsim_result(&s->opt.shape, rcw_job_research_id(job),
                              rcw_job_param_str(job, "model"), result, &name, &path);
    for (size_t i = 0; i < n; i++) {
        const struct value *v = &result[i].val;
        switch (v->kind) {
        case VALUE_STR:
            rcw_job_result_str(job, result[i].key, v->s);
            break;
        case VALUE_INT:
            rcw_job_result_int(job, result[i].key, v->i);
            break;
        case VALUE_FLOAT:
            rcw_job_result_double(job, result[i].key, v->f);
            break;
        default:
            break; /* stubsim makes none of the others */
        }
    }
    buf_release(&name);
    buf_release(&path);
}

int
main(int argc, char **argv)
{
    struct stub s = {.rng_mu = PTHREAD_MUTEX_INITIALIZER};
    struct rcw *w = NULL;
    struct rc_err err = RC_ERR_INIT;
    int status = RC_EXIT_FAILURE;

    if (stubopt_parse(&s.opt, argc, argv, &err) != RC_OK) {
        fprintf(stderr, TOOL ": %s (try --help)\n", err.msg);
        return RC_EXIT_USAGE;
    }
    if (s.opt.help) {
        stubopt_usage(stdout);
        return RC_EXIT_OK;
    }
    if (rcw_signals_block(&err) != RC_OK) {
        fprintf(stderr, TOOL ": %s\n", err.msg);
        return RC_EXIT_FAILURE;
    }
    s.rng = s.opt.has_seed
                ? s.opt.seed
                : (uint64_t)clock_now_ms() ^ ((uint64_t)getpid() << 32) ^ (uint64_t)clock_mono_us();
    if (s.opt.latency_log != NULL) {
        s.latency = fopen(s.opt.latency_log, "a");
        if (s.latency == NULL) {
            fprintf(stderr, TOOL ": --latency-log %s: %s\n", s.opt.latency_log, strerror(errno));
            return RC_EXIT_FAILURE;
        }
        setvbuf(s.latency, NULL, _IOFBF, LATENCY_BUF_BYTES);
    }
    const struct rcw_config cfg = {
        .type = worker_type_name(s.opt.shape.type),
        .id_prefix = s.opt.id_prefix,
        .count = (int)s.opt.count,
        .heartbeat_ms = s.opt.heartbeat_ms,
        .handler = simulate,
        .handler_arg = &s,
        .clock_skew_ms = s.opt.clock_skew_ms,
        .die_after = s.opt.die_after,
        /* --bad-result is for the coordinator's own check: let it through. */
        .unchecked_results = s.opt.shape.bad_result,
        /* Stopped, a stub leaves its dispatches to the coordinator's timeouts, as before. */
        .abandon_at_stop = true,
        .verbose = s.opt.verbose,
        .log_name = TOOL,
        .note = s.latency != NULL ? latency_note : NULL,
        .note_arg = &s,
    };
    if (rcw_new(&w, &cfg, &err) != RC_OK) {
        fprintf(stderr, TOOL ": %s\n", err.msg);
        /* A bad id prefix is a usage error, any other bad setting the environment's. */
        status = err.rc != RC_EINVAL                     ? RC_EXIT_FAILURE
                 : strncmp(err.msg, "id_prefix", 9) == 0 ? RC_EXIT_USAGE
                                                         : RC_EXIT_CONFIG;
        goto out;
    }
    if (rcw_signals_start(w, &err) != RC_OK || rcw_run(w, &err) != RC_OK) {
        fprintf(stderr, TOOL ": %s\n", err.msg);
        goto out;
    }
    status = RC_EXIT_OK;
out:
    rcw_free(w);
    if (s.latency != NULL && fclose(s.latency) != 0) {
        fprintf(stderr, TOOL ": --latency-log: %s\n", strerror(errno));
    }
    return status;
}
