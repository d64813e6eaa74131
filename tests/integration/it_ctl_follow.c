/* SPDX-License-Identifier: MIT
 * it_ctl_follow: researchctl follow and trigger --follow against the real coordinator,
 * redis-server, the dev broker and stub workers: a research followed to its summary (exit 0)
 * and as JSON, a failed one (exit 1), trigger --follow, an unknown research (exit 69),
 * Ctrl+C detaching (exit 130, the research goes on), a Redis restart waited out, and on a
 * terminal (script(1)): the line redrawn in place, and trigger --follow's Ctrl+C offering to
 * cancel. */
#include "tests/support/test.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "proto/msg.h"
#include "tests/support/it_ctl_run.h"
#include "tests/support/it_env.h"
#include "tests/support/it_runs.h"

#define WAIT_MS 20000

static const char *const paced[] = {"--duration-ms", "300", NULL};
static const char *const slow[] = {"--duration-ms", "60000", NULL};
static const char *const costly[] = {"--duration-ms", "300", "--cost-usd", "0.15", NULL};
static const char *const failing[] = {"--duration-ms", "50", "--fail-prob", "1", NULL};
/* Phases that outlast follow's 0.5 s poll many times over, so that a loaded machine, late to
 * start it or to poll, still sees them. */
static const char *const lasting[] = {"--duration-ms", "2000", "--cost-usd", "0.15", NULL};

static void
start_pool(struct it_env *env, const char *const training[])
{
    it_env_start_workers(env, "design", 1, NULL, costly);
    it_env_start_workers(env, "training", 1, NULL, training);
    it_env_start_workers(env, "backtest", 1, NULL, paced);
    it_env_start_workers(env, "assessment", 1, NULL, costly);
}

static char *
trigger_ok(struct it_env *env, const char *request_id, const char *brief)
{
    struct trigger t = {.request_id = request_id, .brief = brief};
    it_send_trigger(env, &t);
    const struct event *ev = it_event_wait_request(env, EVENT_ACCEPTED, request_id, WAIT_MS);
    return strdup(ev->research_id);
}

static void
test_ctl_follow_prints_the_summary(void **state)
{
    struct it_env *env = *state;
    it_env_start_workers(env, "design", 1, NULL, lasting);
    it_env_start_workers(env, "training", 1, NULL, paced);
    it_env_start_workers(env, "backtest", 1, NULL, paced);
    it_env_start_workers(env, "assessment", 1, NULL, lasting);
    it_env_start_coordinator(env, NULL);
    char *id = trigger_ok(env, "req-f", "momentum");
    char *out = NULL;
    const char *const follow[] = {"follow", id, NULL};
    int status = it_ctl(env, "ctl-follow", &out, follow);
    if (status != 0) {
        it_fail(env, "follow exited %d:\n%s", status, out);
    }
    char want[256];
    /* Not a terminal: a line when something changes, then the summary. */
    snprintf(want, sizeof want, "%s  designing  attempt 1  worker ", id);
    it_ctl_has(env, out, want);
    it_ctl_has(env, out, "  assessing  attempt 1  worker ");
    assert_null(strstr(out, "elapsed")); /* only on a terminal */
    assert_null(strstr(out, "\033"));
    snprintf(want, sizeof want, "\nResearch %s completed\n", id);
    it_ctl_has(env, out, want);
    it_ctl_has(env, out, "\n  strategy        strategy_");
    it_ctl_has(env, out, "\n  verdict         promising\n");
    it_ctl_has(env, out, "\n  gate rejection  -\n");
    it_ctl_has(env, out, "\n  backtest        sharpe 1.40, win rate 55.0%, max drawdown 12.0%\n");
    it_ctl_has(env, out, "\n  cost            $0.30\n");
    it_ctl_has(env, out, "\n  duration        "); /* "1.8 s" */
    it_ctl_has(env, out, "\n  phases          "); /* per phase once the timeline is recorded */
    free(out);

    /* A finished research: the summary at once; --json as show --json. */
    char filter[256];
    snprintf(filter, sizeof filter,
             ".research_id == \"%s\" and .status == \"completed\" and .verdict == \"promising\"",
             id);
    char words[160];
    snprintf(words, sizeof words, "follow %s --json", id);
    assert_true(it_ctl_jq(env, "jq-follow", words, filter));
    free(id);
}

static void
test_ctl_follow_a_failed_research_exits_1(void **state)
{
    struct it_env *env = *state;
    start_pool(env, failing);
    it_env_start_coordinator(env, (const char *const[]){"AGENT_MAX_ATTEMPTS=1", NULL});
    char *id = trigger_ok(env, "req-x", "doomed");
    char *out = NULL;
    const char *const follow[] = {"follow", id, NULL};
    assert_int_equal(it_ctl(env, "ctl-follow-failed", &out, follow), 1);
    char want[256];
    snprintf(want, sizeof want, "Research %s failed\n", id);
    it_ctl_has(env, out, want);
    it_ctl_has(env, out, "\n  error           ");
    it_ctl_has(env, out, "stub failure");
    it_ctl_has(env, out, "\n  stopped in      training\n");
    free(out);
    free(id);
}

static void
test_ctl_trigger_follow(void **state)
{
    struct it_env *env = *state;
    start_pool(env, paced);
    it_env_start_coordinator(env, NULL);
    char *out = NULL;
    const char *const trig[] = {"trigger", "--brief", "followed", "--follow", NULL};
    int status = it_ctl(env, "ctl-trigger-follow", &out, trig);
    if (status != 0) {
        it_fail(env, "trigger --follow exited %d:\n%s", status, out);
    }
    it_ctl_has(env, out, "Research triggered: rs_");
    it_ctl_has(env, out, " completed\n");
    it_ctl_has(env, out, "\n  verdict         promising\n");
    free(out);
    /* --follow needs the outcome. */
    const char *const no_wait[] = {"trigger", "--brief", "x", "--follow", "--no-wait", NULL};
    assert_int_equal(it_ctl(env, "ctl-trigger-follow-no-wait", &out, no_wait), 64);
    it_ctl_has(env, out, "researchctl: trigger: --follow needs the outcome: not with --no-wait\n");
    free(out);
}

static void
test_ctl_follow_unknown_and_usage(void **state)
{
    struct it_env *env = *state;
    char *out = NULL;
    const char *const unknown[] = {"follow", "rs_nobody", NULL};
    assert_int_equal(it_ctl(env, "ctl-follow-unknown", &out, unknown), 69);
    it_ctl_has(env, out,
               "researchctl: no research rs_nobody (unknown, or expired after "
               "RESEARCH_RETENTION)\n");
    free(out);
    const char *const none[] = {"follow", NULL};
    assert_int_equal(it_ctl(env, "ctl-follow-none", &out, none), 64);
    it_ctl_has(env, out, "researchctl: follow: missing <research_id>\n");
    free(out);
    const char *const bad[] = {"follow", "rs 1", NULL};
    assert_int_equal(it_ctl(env, "ctl-follow-bad", &out, bad), 64);
    it_ctl_has(env, out, "is not 1-128 bytes of [A-Za-z0-9._:-]");
    free(out);
}

/* Ctrl+C detaches (the research goes on); a Redis restart meanwhile is waited out. */
static void
test_ctl_follow_detaches_and_survives_redis(void **state)
{
    struct it_env *env = *state;
    it_env_start_workers(env, "design", 1, NULL, slow);
    it_env_start_coordinator(env, NULL);
    char *id = trigger_ok(env, "req-d", "long");
    it_research_wait(env, id, "child_status", "dispatched", WAIT_MS);
    const char *const argv[] = {"researchctl", "follow", id, NULL};
    pid_t pid = it_env_spawn(env, "ctl-follow-bg", argv, NULL);
    char want[256];
    snprintf(want, sizeof want, "%s  designing  attempt 1  worker ", id);
    it_log_wait(env, "ctl-follow-bg", want, WAIT_MS);
    it_env_restart_redis(env, 1500);
    it_log_wait(env, "ctl-follow-bg", "researchctl: lost the connection to Redis; retrying",
                WAIT_MS);
    it_log_wait(env, "ctl-follow-bg", "researchctl: reconnected", WAIT_MS);
    assert_int_equal(it_log_count(env, "ctl-follow-bg", "lost the connection", 0), 1);
    assert_int_equal(it_env_kill(env, pid, SIGINT), 0);
    int status = 0;
    assert_int_equal(it_env_wait_exit(env, pid, WAIT_MS, &status), 0);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 130);
    it_log_wait(env, "ctl-follow-bg", "researchctl: detached; the research goes on", WAIT_MS);
    char *st = it_research_hget(env, id, "status");
    assert_string_equal(st, "running");
    free(st);
    free(id);
}

/* On a terminal (script(1) gives it one): the status line is redrawn in place, with the
 * elapsed time, then the summary starts on a line of its own. */
static void
test_ctl_follow_redraws_on_a_terminal(void **state)
{
    struct it_env *env = *state;
    start_pool(env, paced);
    it_env_start_coordinator(env, NULL);
    char *id = trigger_ok(env, "req-tty", "on a terminal");
    char script[256];
    snprintf(script, sizeof script, "script -qec \"exec @ctl follow %s\" /dev/null", id);
    char *out = NULL;
    int status = it_ctl_sh(env, "ctl-follow-tty", script, &out);
    if (status != 0) {
        it_fail(env, "follow on a terminal exited %d:\n%s", status, out);
    }
    char want[256];
    snprintf(want, sizeof want, "\r\033[2K%s  ", id);
    it_ctl_has(env, out, want);
    it_ctl_has(env, out, "  elapsed 0m 0");
    snprintf(want, sizeof want, "\nResearch %s completed", id);
    it_ctl_has(env, out, want);
    free(out);
    free(id);
}

/* trigger --follow on a terminal: Ctrl+C asks whether to cancel; y cancels (exit 1). The
 * keys are typed into script(1)'s terminal once what they answer is on it (polled, bounded).
 * script runs the command with $SHELL -c; exec keeps a shell that does not exec by itself (dash)
 * out of the terminal's process group, where the Ctrl+C would kill it and script report 130. */
static void
test_ctl_trigger_follow_ctrl_c_offers_to_cancel(void **state)
{
    struct it_env *env = *state;
    it_env_start_workers(env, "design", 1, NULL, slow);
    it_env_start_coordinator(env, NULL);
    char script[1024];
    snprintf(script, sizeof script,
             "t=%s/tty.txt; : > $t; "
             "until_seen() { i=0; while ! grep -q \"$1\" $t; do i=$((i+1)); "
             "[ $i -gt 200 ] && exit 9; sleep 0.1; done; }; "
             "{ until_seen 'attempt 1'; printf '\\003'; until_seen 'Cancel research'; "
             "printf 'y\\n'; } | script -qefc \"exec @ctl trigger --brief ctrl-c --follow\" $t",
             it_env_dir(env));
    char *out = NULL;
    int status = it_ctl_sh(env, "ctl-trigger-follow-tty", script, &out);
    if (status != 1) {
        it_fail(env, "trigger --follow, Ctrl+C, y exited %d:\n%s", status, out);
    }
    it_ctl_has(env, out, "Cancel research rs_");
    it_ctl_has(env, out, "? [y/N] ");
    it_ctl_has(env, out, "Research cancelled: rs_");
    const struct event *ev = it_event_wait(env, EVENT_CANCELLED, NULL, WAIT_MS);
    char *st = it_research_hget(env, ev->research_id, "status");
    assert_string_equal(st, "cancelled");
    free(st);
    free(out);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_ctl_follow_prints_the_summary, it_setup, it_teardown),
        cmocka_unit_test_setup_teardown(test_ctl_follow_a_failed_research_exits_1, it_setup,
                                        it_teardown),
        cmocka_unit_test_setup_teardown(test_ctl_trigger_follow, it_setup, it_teardown),
        cmocka_unit_test_setup_teardown(test_ctl_follow_unknown_and_usage, it_setup, it_teardown),
        cmocka_unit_test_setup_teardown(test_ctl_follow_redraws_on_a_terminal, it_setup,
                                        it_teardown),
        cmocka_unit_test_setup_teardown(test_ctl_trigger_follow_ctrl_c_offers_to_cancel, it_setup,
                                        it_teardown),
        cmocka_unit_test_setup_teardown(test_ctl_follow_detaches_and_survives_redis, it_setup,
                                        it_teardown),
    };
    return IT_RUN_GROUP("ctl_follow", tests);
}
