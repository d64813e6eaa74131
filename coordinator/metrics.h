/* SPDX-License-Identifier: MIT
 * metrics: the coordinator's figures in the Prometheus text format. The loop thread adds a
 * pass's tally once the pass is written and sets the gauges; the HTTP thread renders them at
 * any time. Every figure is a C11 atomic, so neither side ever waits for the other. */
#ifndef RC_METRICS_H
#define RC_METRICS_H

#include <stdbool.h>
#include <stdint.h>

#include "contract/phase.h"
#include "proto/msg.h"

struct buf;
struct change;
struct research;
struct metrics; /* opaque */

enum metrics_trigger {
    METRICS_TRIGGER_ACCEPTED = 0,
    METRICS_TRIGGER_AT_CAPACITY,
    METRICS_TRIGGER_BUDGET_EXHAUSTED,
    METRICS_TRIGGER_INVALID,
    METRICS_TRIGGER_REPEATED,
    METRICS_TRIGGER_COUNT
};

enum metrics_outcome {
    METRICS_OUTCOME_COMPLETED = 0,
    METRICS_OUTCOME_FAILED,
    METRICS_OUTCOME_CANCELLED,
    METRICS_OUTCOME_COUNT
};

enum metrics_gate {
    METRICS_GATE_PASSED = 0,
    METRICS_GATE_FAILED,
    METRICS_GATE_BYPASSED,
    METRICS_GATE_COUNT
};

#define METRICS_DURATION_BUCKETS 12 /* the cycle's and the phases' histograms */
#define METRICS_RESEARCH_BUCKETS 13 /* rc_research_duration_seconds: a minute to a day */
#define METRICS_BUCKETS_MAX 13

struct metrics_histogram_tally {
    uint64_t buckets[METRICS_BUCKETS_MAX + 1]; /* by bound, then +Inf; the rest unused */
    uint64_t sum_us;
};

/* rc_tokens_total's worker types and directions. */
enum metrics_token_source {
    METRICS_TOKENS_DESIGN = 0,
    METRICS_TOKENS_ASSESSMENT,
    METRICS_TOKENS_SOURCES
};
enum metrics_token_direction {
    METRICS_TOKENS_INPUT = 0,
    METRICS_TOKENS_OUTPUT,
    METRICS_TOKENS_DIRECTIONS
};

/* One pass's increments, added to the figures only once the pass is written (a pass that
 * fails is planned again, and counted then). Plain data; zero it to start. */
struct metrics_tally {
    uint64_t transitions[PHASE_COUNT]; /* entries into each phase */
    uint64_t outcomes[METRICS_OUTCOME_COUNT];
    uint64_t triggers[METRICS_TRIGGER_COUNT];
    uint64_t gates[2][METRICS_GATE_COUNT]; /* [0] training, [1] backtest */
    uint64_t dispatches[WORKER_TYPE_COUNT];
    uint64_t redispatches[WORKER_TYPE_COUNT];
    uint64_t completions;
    uint64_t stale_completions;
    uint64_t invalid[MSG_INVALID_COUNT]; /* by the decoder's class (enum msg_invalid) */
    uint64_t resumes[2];                 /* resume messages: [0] resumed, [1] rejected */
    struct metrics_histogram_tally phase_duration[WORKER_TYPE_COUNT];
    struct metrics_histogram_tally research_duration[METRICS_OUTCOME_COUNT]; /* created..finished */
    uint64_t tokens[METRICS_TOKENS_SOURCES][METRICS_TOKENS_DIRECTIONS];
    double spend_usd; /* charged to the budget */
    uint64_t phase_timeouts[WORKER_TYPE_COUNT];
};

/* The gauges, set by the loop after each pass (and on outages). */
struct metrics_gauges {
    int64_t researches[PHASE_COUNT]; /* active researches by phase (worked phases, pending) */
    int64_t waiting;                 /* ... of them waiting for a free worker */
    int64_t waiting_by_type[WORKER_TYPE_COUNT]; /* ... by the type of worker they wait for */
    double oldest_wait_s[WORKER_TYPE_COUNT];    /* the longest of those waits, 0 when none */
    int64_t workers_live[WORKER_TYPE_COUNT];
    int64_t workers_busy[WORKER_TYPE_COUNT];
    int64_t capacity_limit;
    double budget_spent_usd;
    double budget_limit_usd;
};

struct metrics *metrics_new(void);
void metrics_free(struct metrics *m);

/* Tally what the planned change `c` does to `before` (the research as it was; NULL for a
 * new one) at `now_ms`: phase entries, outcomes and the research's duration, dispatches and
 * redispatches, phase timeouts, gate results, the duration of a phase whose result came, its
 * tokens, and the money charged. */
void metrics_note_change(struct metrics_tally *t, const struct research *before,
                         const struct change *c, int64_t now_ms);

/* Loop thread. */
void metrics_commit(struct metrics *m, const struct metrics_tally *t);
void metrics_set_gauges(struct metrics *m, const struct metrics_gauges *g);
void metrics_observe_cycle(struct metrics *m, double seconds);
void metrics_set_up(struct metrics *m, bool redis_up, bool kafka_up, bool leading);

/* Any thread. */
void metrics_render(struct metrics *m, struct buf *out);
/* Ready: Redis and Kafka reachable (leading or standing by). *why says what is not. */
bool metrics_ready(struct metrics *m, const char **why);

#endif /* RC_METRICS_H */
