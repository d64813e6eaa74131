/* SPDX-License-Identifier: MIT
 * Unit tests of ctl_view: the exact text of status (busy, idle, coordinator up, down, never
 * started; budget with and without a limit), the workers table, show's sections, the
 * escaping of control characters in what was read, and the JSON shapes. */
#include "tests/support/test.h"

#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "common/xalloc.h"
#include "tools/researchctl/ctl_read.h"
#include "tools/researchctl/ctl_view.h"
#include "tools/researchctl/ctl_view_research.h"

#define T 1795428000000LL /* 2026-11-23T10:00:00Z */

static void
add_active(struct ctl_status *st, const char *id, const char *phase, const char *strategy,
           int64_t in_phase_ms, bool waiting)
{
    st->active = xrealloc(st->active, (st->n_active + 1) * sizeof(*st->active));
    struct ctl_active *a = &st->active[st->n_active++];
    memset(a, 0, sizeof(*a));
    a->research_id = xstrdup(id);
    a->has_hash = true;
    a->phase = xstrdup(phase);
    a->strategy_name = strategy != NULL ? xstrdup(strategy) : NULL;
    a->in_phase_ms = in_phase_ms;
    a->waiting_since_ms = waiting ? T - 1000 : 0;
}

/* The status of the brief's example. */
static void
busy_status(struct ctl_status *st)
{
    st->now_ms = T;
    add_active(st, "rs_01HA", "training", "rsi_variant_7", 135000, false);
    add_active(st, "rs_01HB", "designing", NULL, 30000, false);
    add_active(st, "rs_01HC", "backtesting", "mtf_momentum_1", 62000, true);
    const int64_t counts[4][2] = {{1, 2}, {2, 3}, {1, 2}, {0, 1}};
    for (int t = 0; t < 4; t++) {
        st->per_type[t].busy = counts[t][0];
        st->per_type[t].total = counts[t][1];
    }
    st->budget.daily_limit_usd = 20;
    st->budget.spent_usd = 16.58;
    st->budget.remaining_usd = 3.42;
    st->limit = 6;
    st->coordinator.seen = true;
    st->coordinator.leader = true;
    st->coordinator.started_at_ms = T - 7380000;
    st->coordinator.last_cycle_at_ms = T - 400;
    st->coordinator.has_cycle_ms = true;
    st->coordinator.cycle_ms = 1.2;
}

static void
test_ctl_view_status_text_busy(void **state)
{
    (void)state;
    struct ctl_status st = CTL_STATUS_INIT;
    struct buf b = BUF_INIT;
    busy_status(&st);
    ctl_view_status_text(&st, &b);
    assert_string_equal(b.data, "Active researches: 3\n"
                                "\n"
                                "  rs_01HA  training     strategy: rsi_variant_7      (2m 15s)\n"
                                "  rs_01HB  designing    strategy: -                  (0m 30s)\n"
                                "  rs_01HC  backtesting  strategy: mtf_momentum_1     "
                                "(1m 02s, waiting for a worker)\n"
                                "\n"
                                "Workers: design 1/2, training 2/3, backtest 1/2, assessment 0/1\n"
                                "Budget: $3.42 remaining today (limit $20.00)\n"
                                "Capacity: 3/6 researches\n"
                                "Coordinator: up 2h 03m, last cycle 0.4 s ago (1.2 ms)\n");
    ctl_status_release(&st);
    buf_release(&b);
}

static void
test_ctl_view_status_text_idle_and_down(void **state)
{
    (void)state;
    struct ctl_status st = CTL_STATUS_INIT;
    struct buf b = BUF_INIT;
    st.now_ms = T;
    st.has_last = true;
    st.last.research_id = xstrdup("rs_old");
    st.last.finished_at_ms = T - 302000;
    st.last.status = xstrdup("failed");
    st.last.last_phase = xstrdup("training");
    st.last.error = xstrdup("bad result: accuracy");
    st.budget.daily_limit_usd = 20;
    st.budget.spent_usd = 20.12;
    st.budget.remaining_usd = -0.12;
    st.limit = 1;
    st.coordinator.seen = true;
    st.coordinator.last_cycle_at_ms = T - 302000;
    ctl_view_status_text(&st, &b);
    assert_string_equal(b.data,
                        "Active researches: 0 (idle)\n"
                        "\n"
                        "  Last finished: rs_old  failed  error: \"bad result: accuracy\"  in: "
                        "training  (5m 02s ago)\n"
                        "\n"
                        "Workers: design 0/0, training 0/0, backtest 0/0, assessment 0/0\n"
                        "Budget: -$0.12 remaining today (limit $20.00)\n"
                        "Capacity: 0/1 researches\n"
                        "Coordinator: down (no leader; last cycle 5m 02s ago)\n");
    ctl_status_release(&st);
    buf_reset(&b);

    /* Never started, no budget limit, nothing finished. */
    st.now_ms = T;
    st.budget.spent_usd = 1.234;
    st.limit = 1;
    ctl_view_status_text(&st, &b);
    assert_non_null(strstr(b.data, "  No research has finished yet.\n"));
    assert_non_null(strstr(b.data, "\nBudget: no daily limit ($1.23 spent today)\n"));
    assert_non_null(strstr(b.data, "\nCoordinator: never started\n"));
    ctl_status_release(&st);
    buf_release(&b);
}

static void
test_ctl_view_status_json_shape(void **state)
{
    (void)state;
    struct ctl_status st = CTL_STATUS_INIT;
    struct buf b = BUF_INIT;
    busy_status(&st);
    st.limit_from_coordinator = true;
    ctl_view_status_json(&st, &b);
    const char *const parts[] = {
        "{\"now\":1795428000000,\"active\":[{\"research_id\":\"rs_01HA\",\"phase\":\"training\","
        "\"strategy_name\":\"rsi_variant_7\",\"created_at\":null,\"phase_started_at\":null,"
        "\"in_phase_ms\":135000,\"waiting_since\":null,\"worker_id\":null,\"progress\":null,"
        "\"step\":null},",
        "\"waiting_since\":1795427999000,",
        "\"workers\":{\"design\":{\"busy\":1,\"total\":2},\"training\":{\"busy\":2,\"total\":3},"
        "\"backtest\":{\"busy\":1,\"total\":2},\"assessment\":{\"busy\":0,\"total\":1}},",
        "\"budget\":{\"day\":\"\",\"stored\":false,\"spent_usd\":16.58,\"daily_limit_usd\":20,"
        "\"remaining_usd\":3.42},",
        "\"capacity\":{\"active\":3,\"limit\":6,\"limit_source\":\"coordinator\"},",
        "\"coordinator\":{\"alive\":true,\"seen\":true,\"instance\":null,\"version\":null,"
        "\"started_at\":1795420620000,\"last_cycle_at\":1795427999600,\"last_cycle_age_ms\":400,"
        "\"cycle_ms\":1.2,\"lease_ttl_ms\":0,",
        "\"last_finished\":null}\n",
    };
    for (size_t i = 0; i < N_OF(parts); i++) {
        if (strstr(b.data, parts[i]) == NULL) {
            fail_msg("no %s in %s", parts[i], b.data);
        }
    }
    ctl_status_release(&st);
    buf_release(&b);
}

static void
test_ctl_view_workers_table(void **state)
{
    (void)state;
    struct ctl_workers w = {T, xcalloc(2, sizeof(struct ctl_worker)), 2};
    w.v[0] = (struct ctl_worker){.type = WORKER_DESIGN,
                                 .worker_id = xstrdup("d-1"),
                                 .age_ms = 800,
                                 .state = xstrdup("busy"),
                                 .research_id = xstrdup("rs_1"),
                                 .dispatch_id = xstrdup("rs_1:designing:1"),
                                 .has_progress = true,
                                 .progress = 0.4,
                                 .step = xstrdup("epoch 4/10"),
                                 .host = xstrdup("gpu-7"),
                                 .labels = xstrdup("gpu=a100,zone=b"),
                                 .live = true,
                                 .busy = true};
    w.v[1] = (struct ctl_worker){.type = WORKER_ASSESSMENT,
                                 .worker_id = xstrdup("assessor-long-name"),
                                 .age_ms = 65000,
                                 .state = xstrdup("idle")};
    struct buf b = BUF_INIT;
    ctl_view_workers_text(&w, &b);
    assert_string_equal(b.data,
                        "TYPE        WORKER              STATE    RESEARCH  DISPATCH          "
                        "PROGRESS        HEARTBEAT       HOST   LABELS\n"
                        "design      d-1                 busy     rs_1      rs_1:designing:1  "
                        "40% epoch 4/10  0.8 s ago       gpu-7  gpu=a100,zone=b\n"
                        "assessment  assessor-long-name  dead     -         -                 "
                        "-               1m 05s ago      -      -\n"
                        "\n"
                        "2 workers: 1 live (1 busy), 1 dead\n");
    buf_reset(&b);
    ctl_view_workers_json(&w, &b);
    assert_non_null(strstr(b.data, "{\"type\":\"assessment\",\"worker_id\":\"assessor-long-name\","
                                   "\"state\":\"dead\",\"live\":false,\"busy\":false,"
                                   "\"research_id\":null,\"dispatch_id\":null,\"last_seen\":null,"
                                   "\"heartbeat_age_ms\":65000,\"progress\":null,\"step\":null,"
                                   "\"host\":null,\"labels\":null}"));
    assert_non_null(strstr(b.data, "\"progress\":0.4,\"step\":\"epoch 4/10\",\"host\":\"gpu-7\","
                                   "\"labels\":\"gpu=a100,zone=b\"}"));
    ctl_workers_release(&w);
    buf_reset(&b);
    ctl_view_workers_text(&w, &b);
    assert_string_equal(b.data, "No workers registered.\n");
    buf_release(&b);
}

static void
test_ctl_view_research_sections(void **state)
{
    (void)state;
    const char *const fields[][2] = {
        {"backtest.win_rate", "0.55"}, {"brief", "momentum"},           {"bypass_gates", "1"},
        {"cost_usd", "0.021"},         {"created_at", "1795427865000"}, {"extra", "x"},
        {"phase", "completed"},        {"research_id", "rs_1"},         {"status", "completed"},
        {"training.accuracy", "0.62"}, {"verdict", "promising"},
    };
    size_t n = N_OF(fields);
    struct ctl_research r = {xcalloc(n, sizeof(char *)), xcalloc(n, sizeof(char *)), n, 3600000};
    for (size_t i = 0; i < n; i++) {
        r.names[i] = xstrdup(fields[i][0]);
        r.values[i] = xstrdup(fields[i][1]);
    }
    struct buf b = BUF_INIT;
    ctl_view_research_text(&r, T, &b);
    const char *const parts[] = {
        "Research rs_1\n  status                completed\n  phase                 completed\n",
        "  brief                 momentum\n  model                 -\n",
        "  created               2026-11-23T09:57:45.000Z (2m 15s ago)\n",
        "  retention             expires in 1h 00m\n",
        "\nTraining\n  accuracy              0.62\n\nBacktest\n  win_rate              0.55\n",
        "\nGates\n  bypass gates          yes\n  rejection             -\n",
        "\nOutcome\n  verdict               promising\n  error                 -\n"
        "  cost                  $0.02 (0.021 USD)\n",
        "\nOther fields\n  extra                 x\n",
    };
    for (size_t i = 0; i < N_OF(parts); i++) {
        if (strstr(b.data, parts[i]) == NULL) {
            fail_msg("no %s in %s", parts[i], b.data);
        }
    }
    assert_null(strstr(b.data, "\nDesign\n")); /* no design fields */
    buf_reset(&b);
    ctl_view_research_json(&r, &b);
    assert_non_null(strstr(b.data, "{\"backtest.win_rate\":\"0.55\",\"brief\":\"momentum\","));
    assert_non_null(strstr(b.data, "\"verdict\":\"promising\"}\n"));
    ctl_research_release(&r);
    buf_release(&b);
}

/* Fail unless text holds no control character but the newlines ending its lines. */
static void
assert_no_raw_controls(const char *text)
{
    for (const unsigned char *p = (const unsigned char *)text; *p != '\0'; p++) {
        if ((*p < 0x20 && *p != '\n') || *p == 0x7f ||
            (p[0] == 0xc2 && p[1] >= 0x80 && p[1] < 0xa0)) {
            fail_msg("raw control byte 0x%02x at offset %td of:\n%s", *p, (const char *)p - text,
                     text);
        }
    }
}

static void
test_ctl_view_text_escapes_what_it_read(void **state)
{
    (void)state;
    /* status: the escaped text is what the columns are measured by. */
    struct ctl_status st = CTL_STATUS_INIT;
    struct buf b = BUF_INIT;
    busy_status(&st);
    free(st.active[0].strategy_name);
    st.active[0].strategy_name = xstrdup("\x1b[2Jwiped_screen_x");
    free(st.active[1].phase);
    st.active[1].phase = xstrdup("design\ning");
    ctl_view_status_text(&st, &b);
    assert_no_raw_controls(b.data);
    const char *const status_parts[] = {
        "  rs_01HA  training     strategy: \\x1b[2Jwiped_screen_x  (2m 15s)\n",
        "  rs_01HB  design\\ning  strategy: -                      (0m 30s)\n",
    };
    for (size_t i = 0; i < N_OF(status_parts); i++) {
        if (strstr(b.data, status_parts[i]) == NULL) {
            fail_msg("no %s in %s", status_parts[i], b.data);
        }
    }
    ctl_status_release(&st);
    buf_reset(&b);

    st = (struct ctl_status)CTL_STATUS_INIT;
    st.now_ms = T;
    st.has_last = true;
    st.last.research_id = xstrdup("rs_old");
    st.last.finished_at_ms = T - 2000;
    st.last.status = xstrdup("failed\r");
    st.last.last_phase = xstrdup("training\x07");
    st.last.error = xstrdup("bad\x1b]0;owned\x07");
    ctl_view_status_text(&st, &b);
    assert_no_raw_controls(b.data);
    assert_non_null(strstr(b.data, "  Last finished: rs_old  failed\\r  error: "
                                   "\"bad\\x1b]0;owned\\x07\"  in: training\\x07  (0m 02s ago)\n"));
    ctl_status_release(&st);
    buf_reset(&b);

    /* workers: ids, state and what they hold, as a heartbeat hash says. */
    struct ctl_workers w = {T, xcalloc(1, sizeof(struct ctl_worker)), 1};
    w.v[0] = (struct ctl_worker){.type = WORKER_DESIGN,
                                 .worker_id = xstrdup("d\x1b[1A"),
                                 .age_ms = 800,
                                 .state = xstrdup("busy\t"),
                                 .research_id = xstrdup("rs_1\n"),
                                 .dispatch_id = xstrdup("\x7f"),
                                 .step = xstrdup("\x1b[2J"),
                                 .labels = xstrdup("a\nb"),
                                 .live = true,
                                 .busy = true};
    ctl_view_workers_text(&w, &b);
    assert_no_raw_controls(b.data);
    assert_string_equal(b.data, "TYPE        WORKER    STATE    RESEARCH  DISPATCH  PROGRESS  "
                                "HEARTBEAT       HOST  LABELS\n"
                                "design      d\\x1b[1A  busy\\t   rs_1\\n    \\x7f      \\x1b[2J   "
                                "0.8 s ago       -     a\\nb\n"
                                "\n"
                                "1 workers: 1 live (1 busy), 0 dead\n");
    ctl_workers_release(&w);
    buf_reset(&b);

    /* show: every row, a phase's fields, the other fields, names too. */
    const char *const fields[][2] = {
        {"brief", "\x1b[31mred\x1b[0m\n"}, {"cost_usd", "\n0.5"},
        {"error", "line one\nline two"},   {"research_id", "rs_1"},
        {"training.acc\x1b", "\r0.62"},    {"x\x1b[8m", "\t"},
    };
    size_t n = N_OF(fields);
    struct ctl_research r = {xcalloc(n, sizeof(char *)), xcalloc(n, sizeof(char *)), n, -1};
    for (size_t i = 0; i < n; i++) {
        r.names[i] = xstrdup(fields[i][0]);
        r.values[i] = xstrdup(fields[i][1]);
    }
    ctl_view_research_text(&r, T, &b);
    assert_no_raw_controls(b.data);
    const char *const show_parts[] = {
        "\n  brief                 \\x1b[31mred\\x1b[0m\\n\n",
        "\n  cost                  $0.50 (\\n0.5 USD)\n",
        "\n  error                 line one\\nline two\n",
        "\nTraining\n  acc\\x1b               \\r0.62\n",
        "\nOther fields\n  x\\x1b[8m              \\t\n",
    };
    for (size_t i = 0; i < N_OF(show_parts); i++) {
        if (strstr(b.data, show_parts[i]) == NULL) {
            fail_msg("no %s in %s", show_parts[i], b.data);
        }
    }
    /* JSON keeps the value as stored, escaped as JSON escapes it. */
    buf_reset(&b);
    ctl_view_research_json(&r, &b);
    assert_no_raw_controls(b.data);
    assert_non_null(strstr(b.data, "\"brief\":\"\\u001b[31mred\\u001b[0m\\n\""));
    ctl_research_release(&r);
    buf_release(&b);
}

/* A running dispatch shows what its worker's heartbeat says, in text and JSON; a worker that
 * holds another research, or is dead, says nothing about this one. */
static void
test_ctl_view_status_progress_and_step(void **state)
{
    (void)state;
    struct ctl_status st = CTL_STATUS_INIT;
    struct buf b = BUF_INIT;
    busy_status(&st);
    st.active[0].worker_id = xstrdup("t-1");
    st.active[1].worker_id = xstrdup("d-1");
    st.workers = xcalloc(2, sizeof(*st.workers));
    st.n_workers = 2;
    st.workers[0] = (struct ctl_worker){.type = WORKER_TRAINING,
                                        .worker_id = xstrdup("t-1"),
                                        .research_id = xstrdup("rs_01HA"),
                                        .has_progress = true,
                                        .progress = 0.4,
                                        .step = xstrdup("epoch 4/10"),
                                        .live = true};
    st.workers[1] = (struct ctl_worker){.type = WORKER_DESIGN,
                                        .worker_id = xstrdup("d-1"),
                                        .research_id = xstrdup("rs_other"),
                                        .has_progress = true,
                                        .progress = 0.9,
                                        .live = true};
    ctl_view_status_text(&st, &b);
    if (strstr(b.data, "  (2m 15s, 40% epoch 4/10)\n") == NULL || strstr(b.data, "90%") != NULL) {
        fail_msg("progress not as expected in:\n%s", b.data);
    }
    buf_reset(&b);
    ctl_view_status_json(&st, &b);
    if (strstr(b.data, "\"worker_id\":\"t-1\",\"progress\":0.4,\"step\":\"epoch 4/10\"}") == NULL ||
        strstr(b.data, "\"worker_id\":\"d-1\",\"progress\":null,\"step\":null}") == NULL) {
        fail_msg("progress not as expected in:\n%s", b.data);
    }
    ctl_status_release(&st);
    buf_release(&b);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ctl_view_status_text_busy),
        cmocka_unit_test(test_ctl_view_status_text_idle_and_down),
        cmocka_unit_test(test_ctl_view_status_json_shape),
        cmocka_unit_test(test_ctl_view_workers_table),
        cmocka_unit_test(test_ctl_view_research_sections),
        cmocka_unit_test(test_ctl_view_status_progress_and_step),
        cmocka_unit_test(test_ctl_view_text_escapes_what_it_read),
    };
    return cmocka_run_group_tests_name("ctl_view", tests, NULL, NULL);
}
