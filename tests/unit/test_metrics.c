/* SPDX-License-Identifier: MIT
 * test_metrics: what a planned change counts for (phase entries, outcomes, dispatches and
 * redispatches, gate verdicts, phase and research durations, tokens, money, phase timeouts),
 * the classes of invalid inputs, and the text rendering (labels, cumulative histogram buckets,
 * readiness). */
#include "tests/support/test.h"

#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "coordinator/change.h"
#include "coordinator/metrics.h"
#include "coordinator/research.h"

static struct research *
research_in(const char *phase, int64_t started)
{
    struct research *r = research_new();
    research_set(r, RF_RESEARCH_ID, "rs_1");
    research_set(r, RF_STATUS, "running");
    research_set(r, RF_PHASE, phase);
    char text[32];
    snprintf(text, sizeof(text), "%lld", (long long)started);
    research_set(r, RF_PHASE_STARTED_AT, text);
    return r;
}

static void
test_metrics_dispatch_counts_entry_and_dispatch(void **state)
{
    (void)state;
    struct metrics_tally t;
    memset(&t, 0, sizeof(t));
    struct research *r = research_in("designing", 1000);
    struct change c = CHANGE_INIT;
    change_init(&c, CHANGE_UPDATE, "rs_1");
    change_set(&c, RF_PHASE, "training");
    change_set(&c, RF_DISPATCH_ID, "rs_1:training:1");
    change_set(&c, RF_ATTEMPT, "1");
    metrics_note_change(&t, r, &c, 5000);
    assert_int_equal(t.transitions[PHASE_TRAINING], 1);
    assert_int_equal(t.dispatches[WORKER_TRAINING], 1);
    assert_int_equal(t.redispatches[WORKER_TRAINING], 0);
    change_release(&c);
    /* The same phase sent again, attempt 2: a redispatch, no new entry. */
    change_init(&c, CHANGE_UPDATE, "rs_1");
    change_set(&c, RF_DISPATCH_ID, "rs_1:designing:2");
    change_set(&c, RF_ATTEMPT, "2");
    metrics_note_change(&t, r, &c, 5000);
    assert_int_equal(t.transitions[PHASE_DESIGNING], 0);
    assert_int_equal(t.dispatches[WORKER_DESIGN], 1);
    assert_int_equal(t.redispatches[WORKER_DESIGN], 1);
    change_release(&c);
    research_free(r);
}

static void
test_metrics_result_counts_duration_and_gate(void **state)
{
    (void)state;
    struct metrics_tally t;
    memset(&t, 0, sizeof(t));
    struct research *r = research_in("training", 1000);
    struct change c = CHANGE_INIT;
    change_init(&c, CHANGE_UPDATE, "rs_1");
    change_set(&c, RF_CHILD_STATUS, "completed");
    change_set(&c, RF_GATE_REJECTION_REASON, "training: accuracy 0.05 < 0.10");
    metrics_note_change(&t, r, &c, 31000); /* 30 s of training */
    assert_int_equal(t.gates[0][METRICS_GATE_FAILED], 1);
    uint64_t n = 0;
    for (size_t i = 0; i <= METRICS_DURATION_BUCKETS; i++) {
        n += t.phase_duration[WORKER_TRAINING].buckets[i];
    }
    assert_int_equal(n, 1);
    assert_int_equal(t.phase_duration[WORKER_TRAINING].sum_us, 30000000);
    change_release(&c);
    research_set(r, RF_BYPASS_GATES, "1");
    change_init(&c, CHANGE_UPDATE, "rs_1");
    change_set(&c, RF_CHILD_STATUS, "completed");
    metrics_note_change(&t, r, &c, 2000);
    assert_int_equal(t.gates[0][METRICS_GATE_BYPASSED], 1);
    change_release(&c);
    research_free(r);
}

static void
test_metrics_finish_counts_outcome(void **state)
{
    (void)state;
    struct metrics_tally t;
    memset(&t, 0, sizeof(t));
    struct research *r = research_in("assessing", 1000);
    struct change c = CHANGE_INIT;
    change_init(&c, CHANGE_FINISH, "rs_1");
    change_set(&c, RF_STATUS, "cancelled");
    change_set(&c, RF_PHASE, "cancelled");
    metrics_note_change(&t, r, &c, 2000);
    assert_int_equal(t.outcomes[METRICS_OUTCOME_CANCELLED], 1);
    assert_int_equal(t.transitions[PHASE_CANCELLED], 1);
    change_release(&c);
    research_free(r);
}

static void
test_metrics_render_and_ready(void **state)
{
    (void)state;
    struct metrics *m = metrics_new();
    const char *why = NULL;
    assert_false(metrics_ready(m, &why));
    assert_string_equal(why, "redis unreachable");
    metrics_set_up(m, true, true, false);
    assert_true(metrics_ready(m, &why));
    assert_string_equal(why, "standing by");
    struct metrics_tally t;
    memset(&t, 0, sizeof(t));
    t.triggers[METRICS_TRIGGER_BUDGET_EXHAUSTED] = 3;
    t.invalid[MSG_INVALID_TOO_LARGE] = 2;
    t.resumes[0] = 1; /* resumed */
    t.resumes[1] = 5; /* rejected */
    metrics_commit(m, &t);
    metrics_commit(m, &t);
    metrics_observe_cycle(m, 0.0007); /* bucket le=0.001 */
    metrics_observe_cycle(m, 5000);   /* only +Inf */
    struct metrics_gauges g = {.budget_spent_usd = 1.25, .capacity_limit = 6};
    g.researches[PHASE_TRAINING] = 4;
    metrics_set_gauges(m, &g);
    struct buf b = BUF_INIT;
    metrics_render(m, &b);
    const char *want[] = {
        "# TYPE rc_triggers_total counter\n",
        "rc_triggers_total{outcome=\"budget_exhausted\"} 6\n",
        "rc_invalid_inputs_total{reason=\"too_large\"} 4\n",
        "rc_resumes_total{outcome=\"resumed\"} 2\n",
        "rc_resumes_total{outcome=\"rejected\"} 10\n",
        "rc_researches{phase=\"training\"} 4\n",
        "rc_cycle_duration_seconds_bucket{le=\"0.0005\"} 0\n",
        "rc_cycle_duration_seconds_bucket{le=\"0.001\"} 1\n",
        "rc_cycle_duration_seconds_bucket{le=\"3600\"} 1\n",
        "rc_cycle_duration_seconds_bucket{le=\"+Inf\"} 2\n",
        "rc_cycle_duration_seconds_count 2\n",
        "rc_phase_duration_seconds_count{phase=\"designing\"} 0\n",
        "rc_budget_spent_usd 1.250000\n",
        "rc_capacity_limit 6\n",
        "rc_leader 0\n",
    };
    for (size_t i = 0; i < N_OF(want); i++) {
        if (strstr(b.data, want[i]) == NULL) {
            fail_msg("no \"%s\" in:\n%s", want[i], b.data);
        }
    }
    buf_release(&b);
    metrics_free(m);
}

/* A research's end counts its duration, created_at to finished_at, by outcome, in buckets for
 * minutes to hours. */
static void
test_metrics_research_duration_by_outcome(void **state)
{
    (void)state;
    struct metrics_tally t;
    memset(&t, 0, sizeof(t));
    struct research *r = research_in("training", 1000);
    research_set(r, RF_CREATED_AT, "1000");
    struct change c = CHANGE_INIT;
    change_init(&c, CHANGE_FINISH, "rs_1");
    change_set(&c, RF_STATUS, "failed");
    change_set(&c, RF_PHASE, "failed");
    change_set(&c, RF_FINISHED_AT, "1801000"); /* 30 min */
    metrics_note_change(&t, r, &c, 1801000);
    assert_int_equal(t.outcomes[METRICS_OUTCOME_FAILED], 1);
    const struct metrics_histogram_tally *h = &t.research_duration[METRICS_OUTCOME_FAILED];
    assert_int_equal(h->sum_us, 1800000000ULL);
    assert_int_equal(h->buckets[8], 1); /* le=1800 */
    assert_int_equal(t.research_duration[METRICS_OUTCOME_COMPLETED].sum_us, 0);
    change_release(&c);
    struct metrics *m = metrics_new();
    metrics_commit(m, &t);
    struct buf b = BUF_INIT;
    metrics_render(m, &b);
    const char *want[] = {
        "# TYPE rc_research_duration_seconds histogram\n",
        "rc_research_duration_seconds_bucket{outcome=\"failed\",le=\"600\"} 0\n",
        "rc_research_duration_seconds_bucket{outcome=\"failed\",le=\"1800\"} 1\n",
        "rc_research_duration_seconds_bucket{outcome=\"failed\",le=\"86400\"} 1\n",
        "rc_research_duration_seconds_bucket{outcome=\"failed\",le=\"+Inf\"} 1\n",
        "rc_research_duration_seconds_sum{outcome=\"failed\"} 1800.000000\n",
        "rc_research_duration_seconds_count{outcome=\"failed\"} 1\n",
        "rc_research_duration_seconds_count{outcome=\"completed\"} 0\n",
        "rc_research_duration_seconds_count{outcome=\"cancelled\"} 0\n",
    };
    for (size_t i = 0; i < N_OF(want); i++) {
        if (strstr(b.data, want[i]) == NULL) {
            fail_msg("no \"%s\" in:\n%s", want[i], b.data);
        }
    }
    buf_release(&b);
    metrics_free(m);
    research_free(r);
}

/* Design and assessment results count their tokens, the charge its money; a phase timeout
 * counts for its worker type. */
static void
test_metrics_tokens_spend_and_timeouts(void **state)
{
    (void)state;
    struct metrics_tally t;
    memset(&t, 0, sizeof(t));
    struct research *r = research_in("designing", 1000);
    struct change c = CHANGE_INIT;
    change_init(&c, CHANGE_UPDATE, "rs_1");
    change_set(&c, RF_CHILD_STATUS, "completed");
    change_set(&c, (enum research_field)research_result_field(WORKER_DESIGN, "input_tokens"),
               "1200");
    change_set(&c, (enum research_field)research_result_field(WORKER_DESIGN, "output_tokens"),
               "800");
    c.cost_usd = 0.25;
    metrics_note_change(&t, r, &c, 2000);
    change_release(&c);
    research_set(r, RF_PHASE, "assessing");
    change_init(&c, CHANGE_UPDATE, "rs_1");
    change_set(&c, RF_CHILD_STATUS, "completed");
    change_set(&c, (enum research_field)research_result_field(WORKER_ASSESSMENT, "input_tokens"),
               "10");
    c.cost_usd = 0.5;
    metrics_note_change(&t, r, &c, 3000);
    change_release(&c);
    /* A training result has no tokens; a timed-out training dispatch counts as one. */
    research_set(r, RF_PHASE, "training");
    change_init(&c, CHANGE_UPDATE, "rs_1");
    change_set(&c, RF_RESEND_REASON, "phase_timeout");
    c.phase_timeout = true;
    metrics_note_change(&t, r, &c, 4000);
    change_release(&c);
    assert_int_equal(t.tokens[METRICS_TOKENS_DESIGN][METRICS_TOKENS_INPUT], 1200);
    assert_int_equal(t.tokens[METRICS_TOKENS_DESIGN][METRICS_TOKENS_OUTPUT], 800);
    assert_int_equal(t.tokens[METRICS_TOKENS_ASSESSMENT][METRICS_TOKENS_INPUT], 10);
    assert_int_equal(t.tokens[METRICS_TOKENS_ASSESSMENT][METRICS_TOKENS_OUTPUT], 0);
    assert_true(t.spend_usd == 0.75);
    assert_int_equal(t.phase_timeouts[WORKER_TRAINING], 1);
    assert_int_equal(t.phase_timeouts[WORKER_DESIGN], 0);
    struct metrics *m = metrics_new();
    metrics_commit(m, &t);
    metrics_commit(m, &t);
    struct metrics_gauges g = {0};
    g.waiting_by_type[WORKER_BACKTEST] = 3;
    g.oldest_wait_s[WORKER_BACKTEST] = 42.5;
    metrics_set_gauges(m, &g);
    struct buf b = BUF_INIT;
    metrics_render(m, &b);
    const char *want[] = {
        "# TYPE rc_tokens_total counter\n",
        "rc_tokens_total{worker_type=\"design\",direction=\"input\"} 2400\n",
        "rc_tokens_total{worker_type=\"design\",direction=\"output\"} 1600\n",
        "rc_tokens_total{worker_type=\"assessment\",direction=\"input\"} 20\n",
        "rc_tokens_total{worker_type=\"assessment\",direction=\"output\"} 0\n",
        "# TYPE rc_spend_usd_total counter\n",
        "rc_spend_usd_total 1.500000\n",
        "# TYPE rc_phase_timeouts_total counter\n",
        "rc_phase_timeouts_total{worker_type=\"training\"} 2\n",
        "rc_phase_timeouts_total{worker_type=\"design\"} 0\n",
        "# TYPE rc_waiting_researches gauge\n",
        "rc_waiting_researches{worker_type=\"backtest\"} 3\n",
        "rc_waiting_researches{worker_type=\"training\"} 0\n",
        "# TYPE rc_oldest_wait_seconds gauge\n",
        "rc_oldest_wait_seconds{worker_type=\"backtest\"} 42.500\n",
        "rc_oldest_wait_seconds{worker_type=\"design\"} 0.000\n",
    };
    for (size_t i = 0; i < N_OF(want); i++) {
        if (strstr(b.data, want[i]) == NULL) {
            fail_msg("no \"%s\" in:\n%s", want[i], b.data);
        }
    }
    buf_release(&b);
    metrics_free(m);
    research_free(r);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_metrics_dispatch_counts_entry_and_dispatch),
        cmocka_unit_test(test_metrics_result_counts_duration_and_gate),
        cmocka_unit_test(test_metrics_finish_counts_outcome),
        cmocka_unit_test(test_metrics_render_and_ready),
        cmocka_unit_test(test_metrics_research_duration_by_outcome),
        cmocka_unit_test(test_metrics_tokens_spend_and_timeouts),
    };
    return cmocka_run_group_tests_name("metrics", tests, NULL, NULL);
}
