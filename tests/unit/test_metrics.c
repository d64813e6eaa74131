/* SPDX-License-Identifier: MIT
 * test_metrics: what a planned change counts for (phase entries, outcomes, dispatches and
 * redispatches, gate verdicts, phase durations), the classes of invalid inputs, and the text
 * rendering (labels, cumulative histogram buckets, readiness). */
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

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_metrics_dispatch_counts_entry_and_dispatch),
        cmocka_unit_test(test_metrics_result_counts_duration_and_gate),
        cmocka_unit_test(test_metrics_finish_counts_outcome),
        cmocka_unit_test(test_metrics_render_and_ready),
    };
    return cmocka_run_group_tests_name("metrics", tests, NULL, NULL);
}
