/* SPDX-License-Identifier: MIT
 * bench_cycle: seed parked researches, then sample the coordinator's cycle times. */
#include "tools/bench/bench_cycle.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "common/clock.h"
#include "common/num.h"
#include "common/stopsig.h"
#include "common/xalloc.h"
#include "contract/dispatchid.h"
#include "contract/fields.h"
#include "contract/keys.h"
#include "tools/bench/bench_lat.h"
#include "tools/bench/bench_stack.h"
#include "tools/stack/proc.h"
#include "common/redislink.h"

#define SEED_BATCH 1000          /* researches written per round trip */
#define HSET_WORDS 44            /* see seed_one */
#define SAMPLE_POLL_MS 2         /* between looks at rc:coordinator: well below a cycle's period */
#define START_TIMEOUT_MS 120000  /* loading 100,000 researches and a first cycle over them */
#define SAMPLE_TIMEOUT_MS 120000 /* for the steady cycles, should they stop coming */

/* The strings of one seeded research, which its commands borrow. */
struct seed {
    char key[64];
    char id[32];
    char request_id[32];
    char dispatch_id[48];
    char ts[24];
    char strategy[24];
    char path[32];
    const char *hset[HSET_WORDS];
    const char *zadd[4];
};

/* A research that finished design and waits for training, as the coordinator would have left
 * it: phase designing, child_status completed, its design result and timeline stored. */
static void
seed_one(struct seed *s, const char *prefix, const char *active_key, int64_t i, int64_t now_ms)
{
    struct buf key = BUF_INIT;

    snprintf(s->id, sizeof(s->id), "rs_bench%07" PRId64, i);
    keys_research(&key, prefix, s->id);
    snprintf(s->key, sizeof(s->key), "%s", key.data);
    buf_release(&key);
    snprintf(s->request_id, sizeof(s->request_id), "req-%" PRId64, i);
    dispatchid_format(s->dispatch_id, sizeof(s->dispatch_id), s->id, PHASE_DESIGNING, 1, 0);
    snprintf(s->ts, sizeof(s->ts), "%" PRId64, now_ms + i);
    snprintf(s->strategy, sizeof(s->strategy), "s%" PRId64, i);
    snprintf(s->path, sizeof(s->path), "/s/%" PRId64 ".py", i);
    const struct {
        enum research_field f;
        const char *value;
    } fields[] = {
        {RF_RESEARCH_ID, s->id},
        {RF_REQUEST_ID, s->request_id},
        {RF_STATUS, STATUS_RUNNING},
        {RF_PHASE, phase_name(PHASE_DESIGNING)},
        {RF_CHILD_STATUS, CHILD_COMPLETED},
        {RF_ATTEMPT, "1"},
        {RF_DISPATCH_ID, s->dispatch_id},
        {RF_WORKER_ID, "w-design-1"},
        {RF_BRIEF, "bench"},
        {RF_CREATED_AT, s->ts},
        {RF_UPDATED_AT, s->ts},
        {RF_PHASE_STARTED_AT, s->ts},
        {RF_STRATEGY_NAME, s->strategy},
        {RF_STRATEGY_PATH, s->path},
        {(enum research_field)research_result_field(WORKER_DESIGN, "strategy_name"), s->strategy},
        {RF_BYPASS_GATES, "0"},
        {RF_COST_USD, "0"},
        {research_timeline_field(PHASE_DESIGNING, TIMELINE_STARTED_AT), s->ts},
        {research_timeline_field(PHASE_DESIGNING, TIMELINE_FINISHED_AT), s->ts},
        {research_timeline_field(PHASE_DESIGNING, TIMELINE_WORKER_ID), "w-design-1"},
        {research_timeline_field(PHASE_DESIGNING, TIMELINE_ATTEMPTS), "1"},
    };
    _Static_assert(2 + 2 * N_OF(fields) == HSET_WORDS, "HSET_WORDS");
    const char *hset[HSET_WORDS] = {"HSET", s->key};
    for (size_t f = 0; f < N_OF(fields); f++) {
        hset[2 + 2 * f] = research_field_name(fields[f].f);
        hset[3 + 2 * f] = fields[f].value;
    }
    memcpy(s->hset, hset, sizeof(hset));
    s->zadd[0] = "ZADD";
    s->zadd[1] = active_key;
    s->zadd[2] = s->ts;
    s->zadd[3] = s->id;
}

static enum rc_rc
seed_all(struct bench_stack *st, int64_t active, struct rc_err *err)
{
    struct seed *seeds = xcalloc(SEED_BATCH, sizeof(*seeds));
    struct redislink_cmd *cmds = xcalloc(2 * SEED_BATCH, sizeof(*cmds));
    struct buf active_key = BUF_INIT;
    const char *flush[] = {"FLUSHALL"};
    const struct redislink_cmd flush_cmd = {1, flush};
    int64_t now_ms = clock_now_ms();
    enum rc_rc rc = redislink_run(bench_stack_redis(st), &flush_cmd, 1, err);

    keys_active(&active_key, bench_stack_key_prefix(st));
    for (int64_t from = 0; rc == RC_OK && from < active; from += SEED_BATCH) {
        size_t n = (size_t)(active - from < SEED_BATCH ? active - from : SEED_BATCH);
        for (size_t k = 0; k < n; k++) {
            seed_one(&seeds[k], bench_stack_key_prefix(st), active_key.data, from + (int64_t)k,
                     now_ms);
            cmds[2 * k] = (struct redislink_cmd){HSET_WORDS, seeds[k].hset};
            cmds[2 * k + 1] = (struct redislink_cmd){4, seeds[k].zadd};
        }
        rc = redislink_run(bench_stack_redis(st), cmds, 2 * n, err);
    }
    buf_release(&active_key);
    free(cmds);
    free(seeds);
    return rc;
}

/* rc:coordinator's last_cycle_at and cycle_ms; *at is "" before the first cycle. */
static enum rc_rc
read_cycle(struct bench_stack *st, const char *key, char *at, size_t at_len, double *cycle_ms,
           struct rc_err *err)
{
    const char *hmget[] = {"HMGET", key, COORD_LAST_CYCLE_AT, COORD_CYCLE_MS};
    const struct redislink_cmd cmd = {4, hmget};
    struct redislink_reply *r = NULL;

    enum rc_rc rc = redislink_query(bench_stack_redis(st), &cmd, 1, &r, err);
    if (rc != RC_OK) {
        return rc;
    }
    if (r->type == REDISLINK_ARRAY && r->n_elements == 2 && r->elements[0].str != NULL) {
        snprintf(at, at_len, "%s", r->elements[0].str);
        double ms = 0.0; /* none, or no number: 0 */
        (void)num_parse_f64(r->elements[1].str, r->elements[1].len, &ms);
        *cycle_ms = ms;
    } else {
        at[0] = '\0';
    }
    redislink_replies_free(r, 1);
    return RC_OK;
}

/* Read every cycle's duration until the first and `samples` steady ones were seen. Each pass
 * writes the duration of the pass before it, so the first value written is 0 and the second
 * is the first cycle's. */
static enum rc_rc
sample(struct bench_stack *st, int64_t samples, int64_t t0_ms, struct bench_cycle *out,
       struct rc_err *err)
{
    struct buf key = BUF_INIT;
    struct bench_samples steady = BENCH_SAMPLES_INIT;
    char last_at[64] = "";
    char at[64];
    double cycle_ms = 0;
    int64_t n_seen = 0;
    int64_t deadline = clock_mono_ms() + START_TIMEOUT_MS;
    enum rc_rc rc = RC_OK;

    int64_t budget_end = INT64_MAX;
    keys_coordinator(&key, bench_stack_key_prefix(st));
    while ((int64_t)steady.n < samples && clock_mono_ms() < budget_end) {
        if (stopsig_requested()) {
            rc = rc_err_set(err, RC_EUNAVAIL, "interrupted");
            break;
        }
        if (clock_mono_ms() >= deadline) {
            rc = rc_err_set(err, RC_EUNAVAIL,
                            "%" PRId64 " active: only %zu cycles seen in time (coordinator.log)",
                            out->active, steady.n);
            break;
        }
        rc = read_cycle(st, key.data, at, sizeof(at), &cycle_ms, err);
        if (rc != RC_OK) {
            break;
        }
        if (at[0] != '\0' && strcmp(at, last_at) != 0) {
            snprintf(last_at, sizeof(last_at), "%s", at);
            if (n_seen == 0) {
                out->start_s = (double)(clock_mono_ms() - t0_ms) / 1000.0;
                deadline = clock_mono_ms() + SAMPLE_TIMEOUT_MS;
                budget_end = clock_mono_ms() + BENCH_CYCLE_BUDGET_S * 1000;
            }
            if (n_seen == 0 && cycle_ms == 0.0) {
                /* the value before any cycle ended */
            } else if (out->first_ms < 0) {
                out->first_ms = cycle_ms;
            } else {
                bench_samples_add(&steady, cycle_ms);
            }
            n_seen++;
        }
        stopsig_nap_ms(SAMPLE_POLL_MS);
    }
    out->samples = (int64_t)steady.n;
    out->median_ms = bench_samples_pct(&steady, 50);
    out->p90_ms = bench_samples_pct(&steady, 90);
    out->max_ms = bench_samples_pct(&steady, 100);
    bench_samples_release(&steady);
    buf_release(&key);
    return rc;
}

enum rc_rc
bench_cycle_run(struct bench_stack *st, int64_t active, int64_t samples, struct bench_cycle *out,
                struct rc_err *err)
{
    struct bench_cycle r = {.active = active, .first_ms = -1, .peak_rss_mb = NAN};
    int64_t rss_kb = 0;
    int64_t log_offset = 0;

    r.poll_interval = active >= BENCH_CYCLE_SLOW_FROM ? "1" : "0.05";
    bench_stack_set_poll_interval(st, r.poll_interval);
    (void)bench_stack_coordinator_log_count(st, "", &log_offset); /* skip earlier runs */
    enum rc_rc rc = seed_all(st, active, err);
    int64_t t0_ms = clock_mono_ms();
    if (rc == RC_OK) {
        rc = bench_stack_coordinator_start(st, false, 0, err);
    }
    if (rc == RC_OK) {
        rc = sample(st, samples, t0_ms, &r, err);
    }
    if (rc == RC_OK) {
        rc = proc_peak_rss_kb(bench_stack_coordinator_pid(st), &rss_kb, err);
        r.peak_rss_mb = (double)rss_kb / 1024.0;
    }
    struct rc_err stop_err = RC_ERR_INIT;
    if (bench_stack_coordinator_stop(st, &stop_err) != RC_OK && rc == RC_OK) {
        rc = rc_err_set(err, stop_err.rc, "coordinator: %s", stop_err.msg);
    }
    r.lease_losses = bench_stack_coordinator_log_count(st, "lost the leader lease", &log_offset);
    if (rc == RC_OK) {
        *out = r;
    }
    return rc;
}
