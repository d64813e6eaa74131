/* SPDX-License-Identifier: MIT
 * metrics: lock-free figures and their Prometheus text rendering. */
#include "coordinator/metrics.h"

#include <inttypes.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "common/xalloc.h"
#include "contract/fields.h"
#include "coordinator/change.h"
#include "coordinator/research.h"

/* Upper bounds of the duration histograms, seconds: a cycle is milliseconds, a phase may be
 * hours; one set of buckets covers both. */
static const double bounds[METRICS_DURATION_BUCKETS] = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
                                                        0.1,    1,     10,     60,    600,  3600};
/* A whole research takes minutes to hours, a day at the most that matters. */
static const double research_bounds[METRICS_RESEARCH_BUCKETS] = {
    1, 5, 15, 30, 60, 120, 300, 600, 1800, 3600, 7200, 21600, 86400};

struct bounds {
    const double *v;
    size_t n;
};
static const struct bounds short_bounds = {bounds, METRICS_DURATION_BUCKETS};
static const struct bounds long_bounds = {research_bounds, METRICS_RESEARCH_BUCKETS};

struct histogram {
    _Atomic uint64_t buckets[METRICS_BUCKETS_MAX + 1];
    _Atomic uint64_t sum_us;
};

struct metrics {
    _Atomic uint64_t transitions[PHASE_COUNT];
    _Atomic uint64_t outcomes[METRICS_OUTCOME_COUNT];
    _Atomic uint64_t triggers[METRICS_TRIGGER_COUNT];
    _Atomic uint64_t gates[2][METRICS_GATE_COUNT];
    _Atomic uint64_t dispatches[WORKER_TYPE_COUNT];
    _Atomic uint64_t redispatches[WORKER_TYPE_COUNT];
    _Atomic uint64_t completions;
    _Atomic uint64_t stale_completions;
    _Atomic uint64_t invalid[MSG_INVALID_COUNT];
    _Atomic uint64_t resumes[2]; /* resumed, rejected */
    struct histogram phase_duration[WORKER_TYPE_COUNT];
    struct histogram research_duration[METRICS_OUTCOME_COUNT];
    _Atomic uint64_t tokens[METRICS_TOKENS_SOURCES][METRICS_TOKENS_DIRECTIONS];
    _Atomic uint64_t spend_bits; /* a double; only the loop thread adds to it */
    _Atomic uint64_t phase_timeouts[WORKER_TYPE_COUNT];
    struct histogram cycle;
    _Atomic int64_t researches[PHASE_COUNT];
    _Atomic int64_t waiting;
    _Atomic int64_t waiting_by_type[WORKER_TYPE_COUNT];
    _Atomic uint64_t oldest_wait_bits[WORKER_TYPE_COUNT]; /* doubles */
    _Atomic int64_t workers_live[WORKER_TYPE_COUNT];
    _Atomic int64_t workers_busy[WORKER_TYPE_COUNT];
    _Atomic int64_t capacity_limit;
    _Atomic uint64_t budget_spent_bits; /* doubles, by their bits */
    _Atomic uint64_t budget_limit_bits;
    _Atomic bool redis_up;
    _Atomic bool kafka_up;
    _Atomic bool leading;
};

static const char *const trigger_names[METRICS_TRIGGER_COUNT] = {
    "accepted", REASON_AT_CAPACITY, REASON_BUDGET_EXHAUSTED, REASON_INVALID, "repeated"};
static const char *const outcome_names[METRICS_OUTCOME_COUNT] = {"completed", "failed",
                                                                 "cancelled"};
static const char *const gate_names[METRICS_GATE_COUNT] = {"passed", "failed", "bypassed"};
static const char *const invalid_names[MSG_INVALID_COUNT] = {
    "malformed", "too_large", "missing_key", "wrong_type", "bad_value"};

struct metrics *
metrics_new(void)
{
    struct metrics *m = xcalloc(1, sizeof(*m)); /* all-zero is a valid state for atomics */
    return m;
}

void
metrics_free(struct metrics *m)
{
    free(m);
}

static uint64_t
to_bits(double d)
{
    uint64_t u;
    memcpy(&u, &d, sizeof(u));
    return u;
}

static double
from_bits(uint64_t u)
{
    double d;
    memcpy(&d, &u, sizeof(d));
    return d;
}

static void
tally_in(struct metrics_histogram_tally *h, const struct bounds *b, double seconds)
{
    size_t i = 0;
    while (i < b->n && seconds > b->v[i]) {
        i++;
    }
    h->buckets[i]++;
    h->sum_us += seconds > 0 ? (uint64_t)(seconds * 1e6) : 0;
}

static int64_t
field_int(const struct research *r, enum research_field f)
{
    return r != NULL ? research_int(r, f) : 0;
}

/* A research finished with `outcome`: counted, and how long it took (created_at to its
 * finished_at, seconds). */
static void
note_outcome(struct metrics_tally *t, enum metrics_outcome outcome, const struct research *before,
             const struct change *c, int64_t now_ms)
{
    t->outcomes[outcome]++;
    const char *created = c->set[RF_CREATED_AT] ? c->value[RF_CREATED_AT] : NULL;
    int64_t from = created != NULL ? strtoll(created, NULL, 10) : field_int(before, RF_CREATED_AT);
    const char *finished = c->set[RF_FINISHED_AT] ? c->value[RF_FINISHED_AT] : NULL;
    int64_t to = finished != NULL ? strtoll(finished, NULL, 10) : now_ms;
    tally_in(&t->research_duration[outcome], &long_bounds,
             from > 0 && to > from ? (double)(to - from) / 1e3 : 0);
}

/* The tokens of a design or assessment result the change records. */
static void
note_tokens(struct metrics_tally *t, enum worker_type wt, const struct change *c)
{
    static const char *const keys[METRICS_TOKENS_DIRECTIONS] = {"input_tokens", "output_tokens"};
    const size_t source = wt == WORKER_DESIGN ? METRICS_TOKENS_DESIGN : METRICS_TOKENS_ASSESSMENT;
    for (size_t d = 0; d < METRICS_TOKENS_DIRECTIONS; d++) {
        int f = research_result_field(wt, keys[d]);
        const char *text = f >= 0 && c->set[f] ? c->value[f] : NULL;
        /* Whole numbers 0..10^12 (result_check); written as their decimal text. */
        double n = text != NULL ? strtod(text, NULL) : 0;
        t->tokens[source][d] += n > 0 ? (uint64_t)n : 0;
    }
}

void
metrics_note_change(struct metrics_tally *t, const struct research *before,
                    const struct change *c, int64_t now_ms)
{
    enum phase was = before != NULL ? research_phase(before) : PHASE_PENDING;
    enum phase now = was;
    if (c->set[RF_PHASE] && c->value[RF_PHASE] != NULL &&
        phase_parse(c->value[RF_PHASE], &now) == RC_OK && (before == NULL || now != was)) {
        t->transitions[now]++;
        if (now == PHASE_COMPLETED) {
            note_outcome(t, METRICS_OUTCOME_COMPLETED, before, c, now_ms);
        } else if (now == PHASE_FAILED) {
            note_outcome(t, METRICS_OUTCOME_FAILED, before, c, now_ms);
        } else if (now == PHASE_CANCELLED) {
            note_outcome(t, METRICS_OUTCOME_CANCELLED, before, c, now_ms);
        }
    }
    if (c->phase_timeout && phase_is_worked(was)) {
        t->phase_timeouts[phase_worker_type(was)]++;
    }
    t->spend_usd += c->cost_usd;
    if (c->set[RF_DISPATCH_ID] && c->value[RF_DISPATCH_ID] != NULL && phase_is_worked(now)) {
        enum worker_type wt = phase_worker_type(now);
        t->dispatches[wt]++;
        if (c->value[RF_ATTEMPT] != NULL && strtoll(c->value[RF_ATTEMPT], NULL, 10) > 1) {
            t->redispatches[wt]++;
        }
    }
    /* A result came for the current phase: its duration, and for training and backtest the
     * gate's verdict. */
    if (before != NULL && c->set[RF_CHILD_STATUS] && c->value[RF_CHILD_STATUS] != NULL &&
        strcmp(c->value[RF_CHILD_STATUS], CHILD_DISPATCHED) != 0 && phase_is_worked(was)) {
        enum worker_type wt = phase_worker_type(was);
        int64_t started = field_int(before, RF_PHASE_STARTED_AT);
        tally_in(&t->phase_duration[wt], &short_bounds,
                 started > 0 ? (double)(now_ms - started) / 1e3 : 0);
        if ((wt == WORKER_TRAINING || wt == WORKER_BACKTEST) &&
            strcmp(c->value[RF_CHILD_STATUS], "completed") == 0) {
            enum metrics_gate g = research_is(before, RF_BYPASS_GATES, "1") ? METRICS_GATE_BYPASSED
                                  : c->set[RF_GATE_REJECTION_REASON]      ? METRICS_GATE_FAILED
                                                                          : METRICS_GATE_PASSED;
            t->gates[wt == WORKER_TRAINING ? 0 : 1][g]++;
        }
        if (wt == WORKER_DESIGN || wt == WORKER_ASSESSMENT) {
            note_tokens(t, wt, c);
        }
    }
}

static void
add(_Atomic uint64_t *a, uint64_t v)
{
    if (v != 0) {
        atomic_fetch_add_explicit(a, v, memory_order_relaxed);
    }
}

static void
add_histogram(struct histogram *h, const struct metrics_histogram_tally *t)
{
    for (size_t i = 0; i <= METRICS_BUCKETS_MAX; i++) {
        add(&h->buckets[i], t->buckets[i]);
    }
    add(&h->sum_us, t->sum_us);
}

void
metrics_commit(struct metrics *m, const struct metrics_tally *t)
{
    for (size_t i = 0; i < PHASE_COUNT; i++) {
        add(&m->transitions[i], t->transitions[i]);
    }
    for (size_t i = 0; i < METRICS_OUTCOME_COUNT; i++) {
        add(&m->outcomes[i], t->outcomes[i]);
    }
    for (size_t i = 0; i < METRICS_TRIGGER_COUNT; i++) {
        add(&m->triggers[i], t->triggers[i]);
    }
    for (size_t g = 0; g < 2; g++) {
        for (size_t i = 0; i < METRICS_GATE_COUNT; i++) {
            add(&m->gates[g][i], t->gates[g][i]);
        }
    }
    for (size_t i = 0; i < WORKER_TYPE_COUNT; i++) {
        add(&m->dispatches[i], t->dispatches[i]);
        add(&m->redispatches[i], t->redispatches[i]);
        add_histogram(&m->phase_duration[i], &t->phase_duration[i]);
        add(&m->phase_timeouts[i], t->phase_timeouts[i]);
    }
    for (size_t i = 0; i < METRICS_OUTCOME_COUNT; i++) {
        add_histogram(&m->research_duration[i], &t->research_duration[i]);
    }
    for (size_t s = 0; s < METRICS_TOKENS_SOURCES; s++) {
        for (size_t d = 0; d < METRICS_TOKENS_DIRECTIONS; d++) {
            add(&m->tokens[s][d], t->tokens[s][d]);
        }
    }
    if (t->spend_usd != 0) {
        /* One writer (the loop thread): a plain read-add-store keeps it exact. */
        double spent = from_bits(atomic_load_explicit(&m->spend_bits, memory_order_relaxed));
        atomic_store_explicit(&m->spend_bits, to_bits(spent + t->spend_usd), memory_order_relaxed);
    }
    add(&m->completions, t->completions);
    add(&m->stale_completions, t->stale_completions);
    for (size_t i = 0; i < MSG_INVALID_COUNT; i++) {
        add(&m->invalid[i], t->invalid[i]);
    }
    add(&m->resumes[0], t->resumes[0]);
    add(&m->resumes[1], t->resumes[1]);
}

void
metrics_set_gauges(struct metrics *m, const struct metrics_gauges *g)
{
    for (size_t i = 0; i < PHASE_COUNT; i++) {
        atomic_store_explicit(&m->researches[i], g->researches[i], memory_order_relaxed);
    }
    atomic_store_explicit(&m->waiting, g->waiting, memory_order_relaxed);
    for (size_t i = 0; i < WORKER_TYPE_COUNT; i++) {
        atomic_store_explicit(&m->waiting_by_type[i], g->waiting_by_type[i], memory_order_relaxed);
        atomic_store_explicit(&m->oldest_wait_bits[i], to_bits(g->oldest_wait_s[i]),
                              memory_order_relaxed);
        atomic_store_explicit(&m->workers_live[i], g->workers_live[i], memory_order_relaxed);
        atomic_store_explicit(&m->workers_busy[i], g->workers_busy[i], memory_order_relaxed);
    }
    atomic_store_explicit(&m->capacity_limit, g->capacity_limit, memory_order_relaxed);
    atomic_store_explicit(&m->budget_spent_bits, to_bits(g->budget_spent_usd),
                          memory_order_relaxed);
    atomic_store_explicit(&m->budget_limit_bits, to_bits(g->budget_limit_usd),
                          memory_order_relaxed);
}

void
metrics_observe_cycle(struct metrics *m, double seconds)
{
    struct metrics_histogram_tally t;
    memset(&t, 0, sizeof(t));
    tally_in(&t, &short_bounds, seconds);
    add_histogram(&m->cycle, &t);
}

void
metrics_set_up(struct metrics *m, bool redis_up, bool kafka_up, bool leading)
{
    atomic_store_explicit(&m->redis_up, redis_up, memory_order_relaxed);
    atomic_store_explicit(&m->kafka_up, kafka_up, memory_order_relaxed);
    atomic_store_explicit(&m->leading, leading, memory_order_relaxed);
}

/* ---- rendering ---- */

static uint64_t
get(_Atomic uint64_t *a)
{
    return atomic_load_explicit(a, memory_order_relaxed);
}

static void
head(struct buf *out, const char *name, const char *type, const char *help)
{
    buf_printf(out, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void
render_histogram(struct buf *out, const char *name, const char *label, const char *value,
                 const struct bounds *b, struct histogram *h)
{
    char labels[96] = "";
    if (label != NULL) {
        snprintf(labels, sizeof(labels), "%s=\"%s\",", label, value);
    }
    uint64_t cumulative = 0;
    for (size_t i = 0; i <= b->n; i++) {
        cumulative += get(&h->buckets[i]);
        if (i < b->n) {
            buf_printf(out, "%s_bucket{%sle=\"%g\"} %" PRIu64 "\n", name, labels, b->v[i],
                       cumulative);
        } else {
            buf_printf(out, "%s_bucket{%sle=\"+Inf\"} %" PRIu64 "\n", name, labels, cumulative);
        }
    }
    labels[strlen(labels) > 0 ? strlen(labels) - 1 : 0] = '\0'; /* no trailing comma */
    buf_printf(out, "%s_sum%s%s%s %.6f\n", name, labels[0] ? "{" : "", labels,
               labels[0] ? "}" : "", (double)get(&h->sum_us) / 1e6);
    buf_printf(out, "%s_count%s%s%s %" PRIu64 "\n", name, labels[0] ? "{" : "", labels,
               labels[0] ? "}" : "", cumulative);
}

static const char *const token_sources[METRICS_TOKENS_SOURCES] = {"design", "assessment"};
static const char *const token_directions[METRICS_TOKENS_DIRECTIONS] = {"input", "output"};

/* How long researches take, what they cost, who waits, and the phase timeouts. */
static void
render_costs_and_waits(struct metrics *m, struct buf *out)
{
    head(out, "rc_research_duration_seconds", "histogram",
         "From a research's creation to its end, by final status.");
    for (size_t i = 0; i < METRICS_OUTCOME_COUNT; i++) {
        render_histogram(out, "rc_research_duration_seconds", "outcome", outcome_names[i],
                         &long_bounds, &m->research_duration[i]);
    }
    head(out, "rc_tokens_total", "counter", "Tokens reported by design and assessment results.");
    for (size_t s = 0; s < METRICS_TOKENS_SOURCES; s++) {
        for (size_t d = 0; d < METRICS_TOKENS_DIRECTIONS; d++) {
            buf_printf(out, "rc_tokens_total{worker_type=\"%s\",direction=\"%s\"} %" PRIu64 "\n",
                       token_sources[s], token_directions[d], get(&m->tokens[s][d]));
        }
    }
    head(out, "rc_spend_usd_total", "counter", "USD charged to the budget, every day together.");
    buf_printf(out, "rc_spend_usd_total %.6f\n", from_bits(get(&m->spend_bits)));
    head(out, "rc_waiting_researches", "gauge",
         "Researches waiting for a free worker, by the worker type they wait for.");
    for (enum worker_type wt = 0; wt < WORKER_TYPE_COUNT; wt++) {
        buf_printf(out, "rc_waiting_researches{worker_type=\"%s\"} %" PRId64 "\n",
                   worker_type_name(wt), atomic_load(&m->waiting_by_type[wt]));
    }
    head(out, "rc_oldest_wait_seconds", "gauge",
         "The longest wait of those researches for a free worker (0 when none waits).");
    for (enum worker_type wt = 0; wt < WORKER_TYPE_COUNT; wt++) {
        buf_printf(out, "rc_oldest_wait_seconds{worker_type=\"%s\"} %.3f\n", worker_type_name(wt),
                   from_bits(get(&m->oldest_wait_bits[wt])));
    }
    head(out, "rc_phase_timeouts_total", "counter",
         "Dispatches aborted past AGENT_PHASE_TIMEOUT_<TYPE>, by worker type.");
    for (enum worker_type wt = 0; wt < WORKER_TYPE_COUNT; wt++) {
        buf_printf(out, "rc_phase_timeouts_total{worker_type=\"%s\"} %" PRIu64 "\n",
                   worker_type_name(wt), get(&m->phase_timeouts[wt]));
    }
}

void
metrics_render(struct metrics *m, struct buf *out)
{
    head(out, "rc_researches", "gauge", "Active researches by phase.");
    for (enum phase p = PHASE_PENDING; p <= PHASE_ASSESSING; p++) {
        buf_printf(out, "rc_researches{phase=\"%s\"} %" PRId64 "\n", phase_name(p),
                   atomic_load(&m->researches[p]));
    }
    head(out, "rc_researches_waiting", "gauge",
         "Active researches waiting for a free worker of their next phase.");
    buf_printf(out, "rc_researches_waiting %" PRId64 "\n", atomic_load(&m->waiting));
    head(out, "rc_phase_transitions_total", "counter", "Entries of researches into each phase.");
    for (enum phase p = PHASE_PENDING; p < PHASE_COUNT; p++) {
        buf_printf(out, "rc_phase_transitions_total{phase=\"%s\"} %" PRIu64 "\n", phase_name(p),
                   get(&m->transitions[p]));
    }
    head(out, "rc_research_outcomes_total", "counter", "Researches finished, by final status.");
    for (size_t i = 0; i < METRICS_OUTCOME_COUNT; i++) {
        buf_printf(out, "rc_research_outcomes_total{outcome=\"%s\"} %" PRIu64 "\n",
                   outcome_names[i], get(&m->outcomes[i]));
    }
    head(out, "rc_triggers_total", "counter", "Triggers by outcome.");
    for (size_t i = 0; i < METRICS_TRIGGER_COUNT; i++) {
        buf_printf(out, "rc_triggers_total{outcome=\"%s\"} %" PRIu64 "\n", trigger_names[i],
                   get(&m->triggers[i]));
    }
    head(out, "rc_gate_results_total", "counter", "Quality gate verdicts.");
    for (size_t g = 0; g < 2; g++) {
        for (size_t i = 0; i < METRICS_GATE_COUNT; i++) {
            buf_printf(out, "rc_gate_results_total{gate=\"%s\",result=\"%s\"} %" PRIu64 "\n",
                       g == 0 ? "training" : "backtest", gate_names[i], get(&m->gates[g][i]));
        }
    }
    head(out, "rc_dispatches_total", "counter", "Dispatches sent, retries included.");
    for (enum worker_type wt = 0; wt < WORKER_TYPE_COUNT; wt++) {
        buf_printf(out, "rc_dispatches_total{worker_type=\"%s\"} %" PRIu64 "\n",
                   worker_type_name(wt), get(&m->dispatches[wt]));
    }
    head(out, "rc_redispatches_total", "counter", "Dispatches sent again (attempt > 1).");
    for (enum worker_type wt = 0; wt < WORKER_TYPE_COUNT; wt++) {
        buf_printf(out, "rc_redispatches_total{worker_type=\"%s\"} %" PRIu64 "\n",
                   worker_type_name(wt), get(&m->redispatches[wt]));
    }
    head(out, "rc_completions_total", "counter", "Completions read, stale ones included.");
    buf_printf(out, "rc_completions_total %" PRIu64 "\n", get(&m->completions));
    head(out, "rc_stale_completions_total", "counter",
         "Completions that were not the current dispatch's: counted, nothing changed.");
    buf_printf(out, "rc_stale_completions_total %" PRIu64 "\n", get(&m->stale_completions));
    head(out, "rc_invalid_inputs_total", "counter", "Inputs sent to the dead letter topic.");
    for (size_t i = 0; i < MSG_INVALID_COUNT; i++) {
        buf_printf(out, "rc_invalid_inputs_total{reason=\"%s\"} %" PRIu64 "\n", invalid_names[i],
                   get(&m->invalid[i]));
    }
    head(out, "rc_resumes_total", "counter", "Resume messages by outcome (repeats not counted).");
    buf_printf(out, "rc_resumes_total{outcome=\"resumed\"} %" PRIu64 "\n", get(&m->resumes[0]));
    buf_printf(out, "rc_resumes_total{outcome=\"rejected\"} %" PRIu64 "\n", get(&m->resumes[1]));
    head(out, "rc_cycle_duration_seconds", "histogram", "Duration of a loop pass.");
    render_histogram(out, "rc_cycle_duration_seconds", NULL, NULL, &short_bounds, &m->cycle);
    head(out, "rc_phase_duration_seconds", "histogram",
         "From a phase's start to its worker's completion.");
    for (enum worker_type wt = 0; wt < WORKER_TYPE_COUNT; wt++) {
        render_histogram(out, "rc_phase_duration_seconds", "phase",
                         phase_name(worker_type_phase(wt)), &short_bounds, &m->phase_duration[wt]);
    }
    render_costs_and_waits(m, out);
    head(out, "rc_workers_live", "gauge", "Workers heartbeating within AGENT_WORKER_TIMEOUT.");
    for (enum worker_type wt = 0; wt < WORKER_TYPE_COUNT; wt++) {
        buf_printf(out, "rc_workers_live{worker_type=\"%s\"} %" PRId64 "\n",
                   worker_type_name(wt), atomic_load(&m->workers_live[wt]));
    }
    head(out, "rc_workers_busy", "gauge", "Live workers not free for a dispatch.");
    for (enum worker_type wt = 0; wt < WORKER_TYPE_COUNT; wt++) {
        buf_printf(out, "rc_workers_busy{worker_type=\"%s\"} %" PRId64 "\n",
                   worker_type_name(wt), atomic_load(&m->workers_busy[wt]));
    }
    head(out, "rc_capacity_limit", "gauge", "The concurrency limit on active researches.");
    buf_printf(out, "rc_capacity_limit %" PRId64 "\n", atomic_load(&m->capacity_limit));
    head(out, "rc_budget_spent_usd", "gauge", "Spent today (UTC), USD.");
    buf_printf(out, "rc_budget_spent_usd %.6f\n", from_bits(get(&m->budget_spent_bits)));
    head(out, "rc_budget_daily_limit_usd", "gauge", "AGENT_DAILY_BUDGET, USD (0: no limit).");
    buf_printf(out, "rc_budget_daily_limit_usd %.6f\n", from_bits(get(&m->budget_limit_bits)));
    head(out, "rc_redis_up", "gauge", "1 while Redis answers.");
    buf_printf(out, "rc_redis_up %d\n", atomic_load(&m->redis_up) ? 1 : 0);
    head(out, "rc_kafka_up", "gauge", "1 while Kafka answers.");
    buf_printf(out, "rc_kafka_up %d\n", atomic_load(&m->kafka_up) ? 1 : 0);
    head(out, "rc_leader", "gauge", "1 while this instance holds the leader lease.");
    buf_printf(out, "rc_leader %d\n", atomic_load(&m->leading) ? 1 : 0);
}

bool
metrics_ready(struct metrics *m, const char **why)
{
    if (!atomic_load(&m->redis_up)) {
        *why = "redis unreachable";
        return false;
    }
    if (!atomic_load(&m->kafka_up)) {
        *why = "kafka unreachable";
        return false;
    }
    *why = atomic_load(&m->leading) ? "leading" : "standing by";
    return true;
}
