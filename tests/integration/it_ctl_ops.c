/* SPDX-License-Identifier: MIT
 * it_ctl_ops: researchctl's operator commands against the real coordinator, redis-server,
 * the dev broker and stub workers: list with each filter and --json, retry (a new research
 * with the same brief, strategy and options), budget (figures with AGENT_DAILY_BUDGET and
 * workers that report cost, and a budget refusal), bulk cancel of every research waiting in
 * one phase while the others go on, and the usage errors of each (exit 64, nothing sent). */
#include "tests/support/test.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/clock.h"
#include "proto/msg.h"
#include "tests/support/it_ctl_run.h"
#include "tests/support/it_env.h"
#include "tests/support/it_runs.h"

#define WAIT_MS 20000

static const char *const fast[] = {"--duration-ms", "30", NULL};
static const char *const slow[] = {"--duration-ms", "60000", NULL};

static char *
trigger_ok(struct it_env *env, const struct trigger *t)
{
    it_send_trigger(env, t);
    const struct event *ev = it_event_wait_request(env, EVENT_ACCEPTED, t->request_id, WAIT_MS);
    return strdup(ev->research_id);
}

/* Run researchctl expecting `want_status`; its output in *out (caller frees), or dropped when
 * out is NULL. */
static void
ctl_expect(struct it_env *env, const char *name, int want_status, const char *const args[],
           char **out)
{
    char *text = NULL;
    int status = it_ctl(env, name, &text, args);
    if (status != want_status) {
        it_fail(env, "%s exited %d, not %d:\n%s", name, status, want_status, text);
    }
    if (out != NULL) {
        *out = strdup(text); /* a copy: GCC 12's -Wdangling-pointer cannot see that text is */
    }                        /* heap memory once its address was passed on */
    free(text);
}

/* The id in "Research triggered: <id>" (caller frees). */
static char *
triggered_id(struct it_env *env, const char *text)
{
    const char *at = strstr(text, "Research triggered: ");
    if (at == NULL) {
        it_fail(env, "no research triggered in:\n%s", text);
        return NULL;
    }
    at += strlen("Research triggered: ");
    return strndup(at, strcspn(at, "\n"));
}

/* Fail unless `text` shows `first` before `second`. */
static void
assert_before(struct it_env *env, const char *text, const char *first, const char *second)
{
    const char *a = strstr(text, first);
    const char *b = strstr(text, second);
    if (a == NULL || b == NULL || a > b) {
        it_fail(env, "\"%s\" not before \"%s\" in:\n%s", first, second, text);
    }
}

static void
test_ctl_list_filters_and_json(void **state)
{
    struct it_env *env = *state;
    it_env_start_workers(env, "design", 1, NULL, slow);
    it_env_start_workers(env, "training", 1, NULL, fast);
    it_env_start_workers(env, "backtest", 1, NULL, fast);
    it_env_start_workers(env, "assessment", 1, NULL, fast);
    it_env_start_coordinator(env, NULL);
    /* a: completed (from a strategy); b: designing; c: cancelled while designing. */
    struct trigger ta = {.request_id = "req-a", .brief = "a", .strategy = "rsi_7"};
    char *a = trigger_ok(env, &ta);
    it_research_wait(env, a, "status", "completed", WAIT_MS);
    struct trigger tb = {.request_id = "req-b", .brief = "b"};
    char *b = trigger_ok(env, &tb);
    it_research_wait(env, b, "child_status", "dispatched", WAIT_MS);
    struct trigger tc = {.request_id = "req-c", .brief = "c"};
    char *c = trigger_ok(env, &tc);
    const char *const cancel[] = {"cancel", c, NULL};
    ctl_expect(env, "ctl-cancel-c", 0, cancel, NULL);

    const char *const all[] = {"list", NULL};
    char *out = NULL;
    ctl_expect(env, "ctl-list", 0, all, &out);
    it_ctl_has(env, out, "RESEARCH ");
    assert_before(env, out, c, b);
    assert_before(env, out, b, a);
    char want[256];
    snprintf(want, sizeof want, "\n%s  completed  assessing    rsi_7     promising  0m 0", a);
    it_ctl_has(env, out, want);
    snprintf(want, sizeof want, "\n%s  running    designing    -         -          0m 0", b);
    it_ctl_has(env, out, want);
    /* c waited for the only designer: cancelled before it left pending */
    snprintf(want, sizeof want, "\n%s  cancelled  pending      -         -          0m 0", c);
    it_ctl_has(env, out, want);
    free(out);

    const struct {
        const char *const args[6];
        const char *has;
        const char *lacks[2];
    } cases[] = {
        {{"list", "--status", "running", NULL}, b, {a, c}},
        {{"list", "--status", "cancelled", NULL}, c, {a, b}},
        {{"list", "--status", "completed", NULL}, a, {b, c}},
        {{"list", "--phase", "designing", NULL}, b, {a, NULL}},
        {{"list", "--phase", "pending", NULL}, c, {a, b}},
        {{"list", "--verdict", "promising", NULL}, a, {b, c}},
        {{"list", "--limit", "1", NULL}, c, {a, b}},
        {{"list", "--since", "1h", "--status", "running", NULL}, b, {a, c}},
        {{"list", "--since", "2026-01-01", "--verdict", "promising", NULL}, a, {b, c}},
        {{"list", "--since", "2999-01-01T00:00:00Z", NULL}, "No researches match.\n", {a, b}},
        {{"list", "--verdict", "poor", NULL}, "No researches match.\n", {a, b}},
    };
    for (size_t i = 0; i < N_OF(cases); i++) {
        ctl_expect(env, "ctl-list-filter", 0, cases[i].args, &out);
        it_ctl_has(env, out, cases[i].has);
        for (size_t k = 0; k < 2; k++) {
            if (cases[i].lacks[k] != NULL && strstr(out, cases[i].lacks[k]) != NULL) {
                it_fail(env, "case %zu lists %s:\n%s", i, cases[i].lacks[k], out);
            }
        }
        free(out);
    }
    char filter[768];
    snprintf(filter, sizeof filter,
             ".researches | length == 3 and .[0].research_id == \"%s\" and .[0].status == "
             "\"cancelled\" and .[1].status == \"running\" and .[1].finished_at == null and "
             ".[2].strategy_name == \"rsi_7\" and .[2].verdict == \"promising\" and "
             ".[2].phase == \"assessing\" and .[2].duration_ms >= 0 and .[2].created_at > 0",
             c);
    assert_true(it_ctl_jq(env, "jq-list", "list --json", filter));

    /* Bad filter values: usage errors, one clear line. */
    const struct {
        const char *const args[4];
        const char *says;
    } bad[] = {
        {{"list", "--status", "maybe", NULL},
         "researchctl: list: --status: 'maybe' is not one of running, completed, failed, "
         "cancelled\n"},
        {{"list", "--phase", "waiting", NULL},
         "researchctl: list: --phase: 'waiting' is not one of pending, designing, training, "
         "backtesting, assessing\n"},
        {{"list", "--since", "yesterday", NULL},
         "researchctl: list: --since: 'yesterday' is neither a duration"},
        {{"list", "--limit", "0", NULL}, "researchctl: list: --limit"},
        {{"list", "--verdict", "", NULL}, "researchctl: list: --verdict: must be 1-4096 bytes\n"},
    };
    for (size_t i = 0; i < N_OF(bad); i++) {
        ctl_expect(env, "ctl-list-bad", 64, bad[i].args, &out);
        it_ctl_has(env, out, bad[i].says);
        free(out);
    }
    free(a);
    free(b);
    free(c);
}

static void
test_ctl_retry_triggers_the_same_research(void **state)
{
    struct it_env *env = *state;
    it_start_pool(env, 1, NULL, NULL);
    it_env_start_coordinator(env, NULL);
    char *out = NULL;
    const char *const trig[] = {"trigger",
                                "--brief",
                                "retry me",
                                "--strategy",
                                "rsi_7",
                                "--strategy-path",
                                "/s/rsi_7.py",
                                "--bypass-gates",
                                "--options",
                                "{\"symbol\":\"ETHUSD\"}",
                                "--request-id",
                                "req-r",
                                NULL};
    ctl_expect(env, "ctl-trigger", 0, trig, NULL);
    const struct event *ev = it_event_wait_request(env, EVENT_ACCEPTED, "req-r", WAIT_MS);
    char *old = strdup(ev->research_id);
    it_research_wait(env, old, "status", "completed", WAIT_MS);

    const char *const retry[] = {"retry", old, NULL};
    ctl_expect(env, "ctl-retry", 0, retry, &out);
    it_ctl_has(env, out, "Research triggered: rs_");
    char *id = triggered_id(env, out);
    assert_string_not_equal(id, old);
    free(out);
    const char *const fields[] = {"brief",        "strategy_name", "strategy_path",
                                  "bypass_gates", "options",       "model"};
    for (size_t i = 0; i < N_OF(fields); i++) {
        char *was = it_research_hget(env, old, fields[i]);
        char *now = it_research_hget(env, id, fields[i]);
        if ((was == NULL) != (now == NULL) || (was != NULL && strcmp(was, now) != 0)) {
            it_fail(env, "%s: %s, was %s", fields[i], now ? now : "(nil)", was ? was : "(nil)");
        }
        free(was);
        free(now);
    }
    it_research_wait(env, id, "status", "completed", WAIT_MS);
    char *design = it_research_hget(env, id, "design.strategy_name");
    assert_null(design); /* it started from the strategy again */

    /* retry --follow: the new research followed to its end. */
    const char *const follow[] = {"retry", old, "--follow", NULL};
    ctl_expect(env, "ctl-retry-follow", 0, follow, &out);
    it_ctl_has(env, out, "Research triggered: rs_");
    it_ctl_has(env, out, " completed\n");
    free(out);
    const char *const unknown[] = {"retry", "rs_nobody", NULL};
    ctl_expect(env, "ctl-retry-unknown", 1, unknown, &out);
    it_ctl_has(env, out, "researchctl: no research rs_nobody");
    free(out);
    free(id);
    free(old);
}

static void
test_ctl_budget_figures_and_refusal(void **state)
{
    struct it_env *env = *state;
    const char *const costly[] = {"--duration-ms", "30", "--cost-usd", "0.3", NULL};
    it_env_start_workers(env, "design", 1, NULL, costly);
    it_env_start_workers(env, "training", 1, NULL, fast);
    it_env_start_workers(env, "backtest", 1, NULL, fast);
    it_env_start_workers(env, "assessment", 1, NULL, costly);
    it_env_start_coordinator(env, (const char *const[]){"AGENT_DAILY_BUDGET=0.5", NULL});
    char *out = NULL;
    const char *const budget[] = {"budget", NULL};
    ctl_expect(env, "ctl-budget-0", 0, budget, &out);
    char day[11];
    clock_utc_day(clock_now_ms(), day);
    char want[256];
    snprintf(want, sizeof want, "Today (%s UTC): $0.00 spent of $0.50, $0.50 remaining\n", day);
    it_ctl_has(env, out, want);
    it_ctl_has(env, out, "\nCharged today: none\n");
    free(out);

    struct trigger t = {.request_id = "req-cost", .brief = "costly"};
    char *id = trigger_ok(env, &t);
    it_research_wait(env, id, "status", "completed", WAIT_MS);
    ctl_expect(env, "ctl-budget", 0, budget, &out);
    snprintf(want, sizeof want, "Today (%s UTC): $0.60 spent of $0.50, -$0.10 remaining\n", day);
    it_ctl_has(env, out, want);
    it_ctl_has(env, out, "\nLast 7 days:\n  DAY             SPENT      LIMIT\n");
    snprintf(want, sizeof want, "\n  %s      $0.60      $0.50\n", day);
    it_ctl_has(env, out, want);
    /* rc:budget:<day>:charges is written by a coordinator that records charges: tolerate one
     * that does not yet, but when it does the research is there with its cost. */
    if (strstr(out, "\nCharged today: none\n") == NULL) {
        snprintf(want, sizeof want, "\nCharged today:\n  %-30s  $0.60\n", id);
        it_ctl_has(env, out, want);
    }
    free(out);
    assert_true(it_ctl_jq(env, "jq-budget", "budget --json --days 3",
                          ".spent_usd == 0.6 and .daily_limit_usd == 0.5 and "
                          "(.remaining_usd | . < -0.09 and . > -0.11) and (.days | length) == 3 "
                          "and .days[0].stored == true and .days[0].spent_usd == 0.6 and "
                          "(.charges | type) == \"array\""));

    /* Spent: a trigger is refused, and says the active researches go on. */
    const char *const trig[] = {"trigger", "--brief", "one more", NULL};
    ctl_expect(env, "ctl-trigger-refused", 1, trig, &out);
    it_ctl_has(env, out,
               "Cannot trigger: daily budget exhausted (-$0.10 remaining)\n"
               "Hint: --force accepts it anyway.\nActive researches (0) will complete.\n");
    free(out);
    const char *const bad[] = {"budget", "--days", "0", NULL};
    ctl_expect(env, "ctl-budget-bad", 64, bad, &out);
    it_ctl_has(env, out, "researchctl: budget: --days");
    free(out);
    free(id);
}

/* Researches waiting for a backtest worker (none is live) are in phase training: cancel
 * --phase training cancels exactly those; the one waiting for a designer goes on. */
static void
test_ctl_bulk_cancel_one_phase(void **state)
{
    struct it_env *env = *state;
    it_env_start_workers(env, "training", 1, NULL, fast);
    it_env_start_workers(env, "assessment", 1, NULL, fast);
    it_env_start_coordinator(env,
                             (const char *const[]){"AGENT_MAX_CONCURRENT_RESEARCHES=10", NULL});
    struct trigger t1 = {.request_id = "req-1", .brief = "one", .strategy = "s1"};
    struct trigger t2 = {.request_id = "req-2", .brief = "two", .strategy = "s2"};
    struct trigger t3 = {.request_id = "req-3", .brief = "three"};
    char *r1 = trigger_ok(env, &t1);
    char *r2 = trigger_ok(env, &t2);
    char *r3 = trigger_ok(env, &t3);
    it_research_wait(env, r1, "training.accuracy", NULL, WAIT_MS);
    it_research_wait(env, r2, "training.accuracy", NULL, WAIT_MS);
    it_research_wait(env, r1, "waiting_since", NULL, WAIT_MS);
    it_research_wait(env, r2, "waiting_since", NULL, WAIT_MS);

    /* Not a terminal and no --yes: refused, nothing sent. */
    const char *const ask[] = {"cancel", "--phase", "training", NULL};
    char *out = NULL;
    ctl_expect(env, "ctl-bulk-ask", 64, ask, &out);
    it_ctl_has(env, out, "2 researches to cancel:\n");
    it_ctl_has(env, out, "researchctl: not on a terminal: pass --yes to cancel without asking\n");
    free(out);
    assert_int_equal(it_event_count(env, EVENT_CANCELLED, NULL), 0);
    /* Ids on stdin, narrowed by the filter: r3 is designing. */
    char script[256];
    snprintf(script, sizeof script, "printf '%s\\n' | @ctl cancel - --phase training --yes", r3);
    assert_int_equal(it_ctl_sh(env, "ctl-bulk-stdin", script, &out), 0);
    it_ctl_has(env, out, "No research to cancel.\n");
    free(out);

    const char *const yes[] = {"cancel", "--phase", "training", "--yes", NULL};
    ctl_expect(env, "ctl-bulk", 0, yes, &out);
    char want[256];
    snprintf(want, sizeof want, "\n  %-30s  training     0m 0", r1);
    it_ctl_has(env, out, want);
    snprintf(want, sizeof want, "Research cancelled: %s\n", r1);
    it_ctl_has(env, out, want);
    snprintf(want, sizeof want, "Research cancelled: %s\n", r2);
    it_ctl_has(env, out, want);
    it_ctl_has(env, out, "Cancelled 2 of 2 researches.\n");
    assert_null(strstr(out, r3));
    free(out);
    it_research_wait(env, r1, "status", "cancelled", WAIT_MS);
    it_research_wait(env, r2, "status", "cancelled", WAIT_MS);
    /* The other goes on once its workers come. */
    it_env_start_workers(env, "design", 1, NULL, fast);
    it_env_start_workers(env, "backtest", 1, NULL, fast);
    it_research_wait(env, r3, "status", "completed", WAIT_MS);

    /* Usage errors. */
    const struct {
        const char *const args[5];
        const char *says;
    } bad[] = {
        {{"cancel", NULL},
         "researchctl: cancel: missing <research_id> (or - for ids on stdin, "
         "--all, --phase P, --older-than D)\n"},
        {{"cancel", r3, "--all", NULL}, "do not go together"},
        {{"cancel", "--phase", "waiting", NULL}, "--phase: 'waiting' is not one of"},
        {{"cancel", "--older-than", "5x", NULL}, "--older-than: '5x' is not a duration"},
        {{"cancel", "--all", "--request-id", "req-9", NULL}, "--request-id is for one research"},
    };
    for (size_t i = 0; i < N_OF(bad); i++) {
        ctl_expect(env, "ctl-bulk-bad", 64, bad[i].args, &out);
        it_ctl_has(env, out, bad[i].says);
        free(out);
    }
    snprintf(script, sizeof script, "printf 'rs ok\\n' | @ctl cancel - --yes");
    assert_int_equal(it_ctl_sh(env, "ctl-bulk-bad-stdin", script, &out), 64);
    it_ctl_has(env, out, "researchctl: stdin line 1: 'rs ok' is not a research id");
    free(out);
    /* --all with nothing active. */
    const char *const none[] = {"cancel", "--all", "--yes", NULL};
    ctl_expect(env, "ctl-bulk-none", 0, none, &out);
    it_ctl_has(env, out, "No research to cancel.\n");
    free(out);
    assert_int_equal(it_event_count(env, EVENT_CANCELLED, NULL), 2);
    free(r1);
    free(r2);
    free(r3);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_ctl_list_filters_and_json, it_setup, it_teardown),
        cmocka_unit_test_setup_teardown(test_ctl_retry_triggers_the_same_research, it_setup,
                                        it_teardown),
        cmocka_unit_test_setup_teardown(test_ctl_budget_figures_and_refusal, it_setup, it_teardown),
        cmocka_unit_test_setup_teardown(test_ctl_bulk_cancel_one_phase, it_setup, it_teardown),
    };
    return IT_RUN_GROUP("ctl_ops", tests);
}
