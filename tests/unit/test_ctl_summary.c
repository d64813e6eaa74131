/* SPDX-License-Identifier: MIT
 * Unit tests of follow's rendering (ctl_summary: the status line and the summary) and of the
 * timeline (ctl_timeline, and show's Timeline section), from hand-made research hashes. */
#include "tests/support/test.h"

#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "common/xalloc.h"
#include "tools/researchctl/ctl_read.h"
#include "tools/researchctl/ctl_summary.h"
#include "tools/researchctl/ctl_timeline.h"
#include "tools/researchctl/ctl_view_research.h"

#define T 1795428000000LL /* 2026-11-23T10:00:00Z */

/* A research hash from NULL-terminated name, value pairs. */
static struct ctl_research
research(const char *const *kv)
{
    struct ctl_research r = CTL_RESEARCH_INIT;
    size_t n = 0;
    while (kv[2 * n] != NULL) {
        n++;
    }
    r.names = xcalloc(n, sizeof(*r.names));
    r.values = xcalloc(n, sizeof(*r.values));
    for (size_t i = 0; i < n; i++) {
        r.names[i] = xstrdup(kv[2 * i]);
        r.values[i] = xstrdup(kv[2 * i + 1]);
    }
    r.n = n;
    return r;
}

static void
assert_has(const char *text, const char *want)
{
    if (strstr(text, want) == NULL) {
        fail_msg("no \"%s\" in:\n%s", want, text);
    }
}

static const char *const completed_kv[] = {"research_id",
                                           "rs_1",
                                           "status",
                                           "completed",
                                           "phase",
                                           "completed",
                                           "last_phase",
                                           "assessing",
                                           "strategy_name",
                                           "mom_7",
                                           "verdict",
                                           "promising",
                                           "cost_usd",
                                           "0.4",
                                           "created_at",
                                           "1795427940000",
                                           "finished_at",
                                           "1795428000000",
                                           "backtest.sharpe_ratio",
                                           "1.4",
                                           "backtest.win_rate",
                                           "0.55",
                                           "backtest.max_drawdown",
                                           "0.12",
                                           "timeline.designing.started_at",
                                           "1795427940000",
                                           "timeline.designing.finished_at",
                                           "1795427950000",
                                           "timeline.designing.worker_id",
                                           "d-1",
                                           "timeline.designing.attempts",
                                           "1",
                                           "timeline.training.started_at",
                                           "1795427950000",
                                           "timeline.training.finished_at",
                                           "1795427980000",
                                           "timeline.training.worker_id",
                                           "t-2",
                                           "timeline.training.attempts",
                                           "2",
                                           "timeline.backtesting.started_at",
                                           "1795427980000",
                                           "timeline.backtesting.finished_at",
                                           "1795427990000",
                                           "timeline.assessing.started_at",
                                           "1795427990000",
                                           "timeline.assessing.finished_at",
                                           "1795428000000",
                                           NULL};

static void
test_ctl_summary_completed(void **state)
{
    (void)state;
    struct ctl_research r = research(completed_kv);
    struct buf b = BUF_INIT;
    ctl_summary_text(&r, T, &b);
    assert_has(b.data, "Research rs_1 completed\n");
    assert_has(b.data, "\n  strategy        mom_7\n");
    assert_has(b.data, "\n  verdict         promising\n");
    assert_has(b.data, "\n  gate rejection  -\n");
    assert_has(b.data, "\n  backtest        sharpe 1.40, win rate 55.0%, max drawdown 12.0%\n");
    assert_has(b.data, "\n  cost            $0.40\n");
    assert_has(b.data, "\n  duration        1m 00s\n");
    assert_has(b.data, "\n  phases          designing 10.0 s, training 30.0 s, backtesting 10.0 s, "
                       "assessing 10.0 s\n");
    assert_null(strstr(b.data, "error"));
    buf_release(&b);
    ctl_research_release(&r);
}

static void
test_ctl_summary_failed_without_timeline(void **state)
{
    (void)state;
    const char *const kv[] = {
        "research_id", "rs_2",          "status",      "failed",
        "last_phase",  "training",      "error",       "worker said\x1b[2J no",
        "created_at",  "1795427940000", "finished_at", "1795428000000",
        NULL};
    struct ctl_research r = research(kv);
    struct buf b = BUF_INIT;
    ctl_summary_text(&r, T, &b);
    assert_has(b.data, "Research rs_2 failed\n");
    assert_has(b.data, "\n  error           worker said\\x1b[2J no\n");
    assert_has(b.data, "\n  stopped in      training\n");
    assert_has(b.data, "\n  backtest        -\n");
    assert_has(b.data, "\n  cost            $0.00\n");
    assert_has(b.data, "\n  phases          not recorded\n");
    buf_release(&b);
    ctl_research_release(&r);
}

static void
test_ctl_summary_status_line(void **state)
{
    (void)state;
    struct ctl_summary_view v = {"rs_1", "training", "2",          "t-1", false,
                                 true,   0.5,        "epoch 5/10", 75000};
    struct buf b = BUF_INIT;
    ctl_summary_line(&v, true, &b);
    assert_string_equal(b.data, "rs_1  training  attempt 2  worker t-1  [#####     ] 50%  "
                                "epoch 5/10  elapsed 1m 15s");
    buf_reset(&b);
    ctl_summary_line(&v, false, &b);
    assert_null(strstr(b.data, "elapsed"));
    buf_reset(&b);
    struct ctl_summary_view w = {"rs_1", "training", "1", "t-1", true, false, 0, NULL, 0};
    ctl_summary_line(&w, true, &b);
    assert_string_equal(b.data, "rs_1  training  attempt 1  waiting for a worker  elapsed 0m 00s");
    buf_release(&b);
}

static void
test_ctl_timeline_in_show(void **state)
{
    (void)state;
    struct ctl_research r = research(completed_kv);
    struct ctl_timeline t;
    ctl_timeline_read(&r, &t);
    assert_true(t.any);
    assert_int_equal(t.p[1].attempts, 2);
    assert_string_equal(t.p[1].worker_id, "t-2");
    struct buf b = BUF_INIT;
    ctl_view_research_text(&r, T, &b);
    assert_has(b.data, "\nTimeline\n  PHASE        STARTED                   FINISHED     ");
    assert_has(b.data, "\n  training     2026-11-23T09:59:10.000Z  2026-11-23T09:59:40.000Z  "
                       "30.0 s    t-2 (2)\n");
    assert_has(b.data, "\n  backtesting  2026-11-23T09:59:40.000Z  2026-11-23T09:59:50.000Z  "
                       "10.0 s    -\n");
    assert_null(strstr(b.data, "Other fields")); /* timeline.* are shown in Timeline only */
    ctl_research_release(&r);

    /* A phase still running: no end, its duration so far. */
    const char *const kv[] = {
        "research_id",   "rs_3", "status", "running", "timeline.training.started_at",
        "1795427990000", NULL};
    r = research(kv);
    buf_reset(&b);
    ctl_view_research_text(&r, T, &b);
    assert_has(b.data, "\n  training     2026-11-23T09:59:50.000Z  running                   "
                       "10.0 s    -\n");
    ctl_research_release(&r);

    /* No timeline (a research from before it): no section. */
    const char *const old[] = {"research_id", "rs_4", "status", "running", NULL};
    r = research(old);
    buf_reset(&b);
    ctl_view_research_text(&r, T, &b);
    assert_null(strstr(b.data, "Timeline"));
    ctl_research_release(&r);
    buf_release(&b);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ctl_summary_completed),
        cmocka_unit_test(test_ctl_summary_failed_without_timeline),
        cmocka_unit_test(test_ctl_summary_status_line),
        cmocka_unit_test(test_ctl_timeline_in_show),
    };
    return cmocka_run_group_tests_name("ctl_summary", tests, NULL, NULL);
}
