/* SPDX-License-Identifier: MIT
 * it_ctl_resume: researchctl resume against the real coordinator: a failed research resumed
 * at the phase it stopped in and followed to completion, a completed one refused (not
 * resumable, exit 1), an unknown one (not found, exit 1). It needs a coordinator that handles
 * the resume message: registered DISABLED in tests/CMakeLists.txt until the coordinator's
 * resume is merged; enable it there. */
#include "tests/support/test.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto/msg.h"
#include "tests/support/it_ctl_run.h"
#include "tests/support/it_env.h"

#define WAIT_MS 20000

static const char *const fast[] = {"--duration-ms", "30", NULL};
static const char *const failing[] = {"--duration-ms", "30", "--fail-prob", "1", NULL};

static void
test_ctl_resume_reopens_a_failed_research(void **state)
{
    struct it_env *env = *state;
    it_env_start_workers(env, "design", 1, NULL, fast);
    pid_t bad = it_env_start_workers(env, "training", 1, NULL, failing);
    it_env_start_workers(env, "backtest", 1, NULL, fast);
    it_env_start_workers(env, "assessment", 1, NULL, fast);
    it_env_start_coordinator(env, (const char *const[]){"AGENT_MAX_ATTEMPTS=1", NULL});
    struct trigger t = {.request_id = "req-r", .brief = "resume me"};
    it_send_trigger(env, &t);
    const struct event *ev = it_event_wait_request(env, EVENT_ACCEPTED, "req-r", WAIT_MS);
    char *id = strdup(ev->research_id);
    it_research_wait(env, id, "status", "failed", WAIT_MS);
    /* The training workers are fixed: a good one replaces the failing one. */
    it_env_kill(env, bad, SIGTERM);
    it_env_wait_exit(env, bad, WAIT_MS, NULL);
    it_env_start_workers(env, "training", 1, NULL, fast);

    char *out = NULL;
    const char *const resume[] = {"resume",    id,   "--reason", "workers fixed",
                                  "--timeout", "10", NULL};
    assert_int_equal(it_ctl(env, "ctl-resume", &out, resume), 0);
    char want[256];
    snprintf(want, sizeof want, "Research resumed: %s (at training)\n", id);
    it_ctl_has(env, out, want);
    free(out);
    const char *const follow[] = {"follow", id, NULL};
    assert_int_equal(it_ctl(env, "ctl-resume-follow", &out, follow), 0);
    snprintf(want, sizeof want, "Research %s completed\n", id);
    it_ctl_has(env, out, want);
    free(out);

    assert_int_equal(it_ctl(env, "ctl-resume-again", &out, resume), 1);
    snprintf(want, sizeof want, "Cannot resume %s: not resumable (completed, or still active)\n",
             id);
    it_ctl_has(env, out, want);
    free(out);
    const char *const unknown[] = {"resume", "rs_nobody", NULL};
    assert_int_equal(it_ctl(env, "ctl-resume-unknown", &out, unknown), 1);
    it_ctl_has(env, out, "Cannot resume rs_nobody: not found\n");
    free(out);
    assert_true(it_ctl_jq(env, "jq-resume", "resume rs_nobody --json",
                          ".type == \"resume_rejected\" and .reason == \"not_found\""));
    free(id);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_ctl_resume_reopens_a_failed_research, it_setup,
                                        it_teardown),
    };
    return IT_RUN_GROUP("ctl_resume", tests);
}
