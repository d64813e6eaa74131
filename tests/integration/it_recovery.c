/* SPDX-License-Identifier: MIT
 * it_recovery: the paths that keep state safe across restarts and surprises, with the real
 * binaries: messages left in the outbox are published by the next leader (and a malformed
 * entry dropped); a coordinator stopped mid-research hands over to the next one, which
 * resumes from Redis and the committed offsets; a coordinator whose lease is taken stops
 * writing and consuming until it leads again; flushed Lua scripts are loaded again; and
 * researchctl trigger reports its outcome. */
#include "tests/support/test.h"

#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "common/buf.h"
#include "common/cfg.h"
#include "contract/outbox.h"
#include "proto/msg.h"
#include "tests/support/it_env.h"
#include "tests/support/it_runs.h"

#define WAIT_MS 20000

static const char *const fast[] = {"--duration-ms", "30", NULL};

static void
start_all_workers(struct it_env *env, const char *const design_args[])
{
    it_env_start_workers(env, "design", 1, NULL, design_args != NULL ? design_args : fast);
    it_env_start_workers(env, "training", 1, NULL, fast);
    it_env_start_workers(env, "backtest", 1, NULL, fast);
    it_env_start_workers(env, "assessment", 1, NULL, fast);
}

static char *
trigger_ok(struct it_env *env, const char *request_id)
{
    struct trigger t = {.request_id = request_id, .brief = "recovery"};
    it_send_trigger(env, &t);
    const struct event *ev = it_event_wait_request(env, EVENT_ACCEPTED, request_id, WAIT_MS);
    return strdup(ev->research_id);
}

static bool
outbox_empty(void *arg)
{
    return it_redis_hlen(arg, "rc:outbox") == 0;
}

static void
test_recovery_outbox_is_published_by_the_next_leader(void **state)
{
    struct it_env *env = *state;
    /* What a crashed leader left: an event written with its state change but never sent. */
    struct msg m = MSG_INIT;
    m.kind = MSG_EVENT;
    m.ts_ms = 1;
    m.u.event = (struct event){
        .type = EVENT_ACCEPTED, .research_id = "rs_left_behind", .request_id = "req-left"};
    struct buf payload = BUF_INIT, frame = BUF_INIT;
    msg_encode(&m, &payload);
    outbox_frame(TOPIC_EVENTS, "rs_left_behind", strlen("rs_left_behind"), payload.data,
                       payload.len, &frame);
    /* The frame is binary: give hiredis every length. */
    const char *put[] = {"HSET", "rc:outbox", "old:0000000000000001", frame.data};
    size_t lens[] = {4, 9, 20, frame.len};
    redisReply *bin = it_redis_cmd_len(env, 4, put, lens);
    assert_non_null(bin);
    assert_int_equal(bin->type, REDIS_REPLY_INTEGER);
    freeReplyObject(bin);
    const char *const junk[] = {"HSET", "rc:outbox", "old:0000000000000002", "junk"};
    freeReplyObject(it_redis_cmd(env, 4, junk));
    buf_release(&payload);
    buf_release(&frame);

    it_env_start_coordinator(env, NULL);
    const struct event *ev = it_event_wait(env, EVENT_ACCEPTED, "rs_left_behind", WAIT_MS);
    assert_string_equal(ev->request_id, "req-left");
    /* Delivered, so deleted; the malformed entry dropped (and logged). */
    if (!it_wait_until(outbox_empty, env, WAIT_MS)) {
        it_fail(env, "the outbox still holds %lld entries", it_redis_hlen(env, "rc:outbox"));
    }
    it_log_wait(env, "coordinator", "malformed outbox entry dropped", WAIT_MS);
}

static void
test_recovery_a_stopped_coordinator_hands_over(void **state)
{
    struct it_env *env = *state;
    const char *const slow_design[] = {"--duration-ms", "1500", NULL};
    start_all_workers(env, slow_design);
    pid_t first = it_env_start_coordinator(env, NULL);
    char *id = trigger_ok(env, "req-handover");
    it_research_wait(env, id, "child_status", "dispatched", WAIT_MS);

    /* SIGTERM while the design runs: a clean exit, the lease given up. */
    assert_int_equal(it_env_kill(env, first, SIGTERM), 0);
    int status = 0;
    assert_int_equal(it_env_wait_exit(env, first, 5000, &status), 0);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
    const char *const get[] = {"GET", "rc:leader"};
    redisReply *r = it_redis_cmd(env, 2, get);
    assert_int_equal(r->type, REDIS_REPLY_NIL);
    freeReplyObject(r);

    /* The next one resumes from Redis; the design's completion waits in Kafka for it. */
    it_env_start_coordinator(env, NULL);
    it_research_wait(env, id, "phase", "completed", WAIT_MS);
    it_event_wait(env, EVENT_COMPLETED, id, WAIT_MS);
    assert_int_equal(it_event_count(env, EVENT_ACCEPTED, id), 1);
    assert_int_equal(it_event_count(env, EVENT_PHASE_STARTED, id), 4);
    assert_int_equal(it_event_count(env, EVENT_COMPLETED, id), 1);
    char *attempt = it_research_hget(env, id, "attempt");
    assert_string_equal(attempt, "1");
    free(attempt);
    free(id);
}

static void
test_recovery_a_coordinator_without_the_lease_writes_nothing(void **state)
{
    struct it_env *env = *state;
    start_all_workers(env, NULL);
    it_env_start_coordinator(env, NULL);
    /* Another instance takes the lease (as after a long pause of this one). */
    const char *const steal[] = {"SET", "rc:leader", "someone-else", "PX", "60000"};
    freeReplyObject(it_redis_cmd(env, 5, steal));
    it_log_wait(env, "coordinator", "lost the leader lease", WAIT_MS);
    struct trigger t = {.request_id = "req-fenced", .brief = "while standing by"};
    it_send_trigger(env, &t);
    /* The standby neither consumes nor writes: the trigger stays unseen... */
    struct it_topic *triggers = it_topic_open(env, "triggers");
    assert_true(it_topic_wait_count(triggers, 1, WAIT_MS));
    const char *const seen[] = {"EXISTS", "rc:request:req-fenced"};
    redisReply *r = it_redis_cmd(env, 2, seen);
    assert_int_equal(r->integer, 0);
    freeReplyObject(r);
    /* ...until the lease is free again: then it leads, reads the trigger (never committed)
     * and the research runs to completion, once. */
    const char *const release[] = {"DEL", "rc:leader"};
    freeReplyObject(it_redis_cmd(env, 2, release));
    const struct event *ev = it_event_wait_request(env, EVENT_ACCEPTED, "req-fenced", WAIT_MS);
    char *id = strdup(ev->research_id);
    it_research_wait(env, id, "phase", "completed", WAIT_MS);
    assert_int_equal(it_redis_zcard(env, "rc:finished"), 1);
    free(id);
}

static void
test_recovery_flushed_scripts_are_loaded_again(void **state)
{
    struct it_env *env = *state;
    start_all_workers(env, NULL);
    it_env_start_coordinator(env, NULL);
    char *a = trigger_ok(env, "req-before-flush");
    it_research_wait(env, a, "phase", "completed", WAIT_MS);
    const char *const flush[] = {"SCRIPT", "FLUSH"};
    freeReplyObject(it_redis_cmd(env, 2, flush));
    char *b = trigger_ok(env, "req-after-flush");
    it_research_wait(env, b, "phase", "completed", WAIT_MS);
    free(a);
    free(b);
}

static void
test_recovery_researchctl_trigger_reports_the_outcome(void **state)
{
    struct it_env *env = *state;
    it_env_start_workers(env, "training", 1, NULL, fast);
    const char *const limit[] = {"AGENT_MAX_CONCURRENT_RESEARCHES=1", NULL};
    it_env_start_coordinator(env, limit);
    const char *const first[] = {"researchctl",  "trigger",   "--brief", "one",
                                 "--request-id", "req-ctl-1", NULL};
    pid_t pid = it_env_spawn(env, "ctl-1", first, NULL);
    int status = 0;
    assert_int_equal(it_env_wait_exit(env, pid, WAIT_MS, &status), 0);
    assert_int_equal(WEXITSTATUS(status), 0);
    assert_true(it_log_count(env, "ctl-1", "Research triggered: rs_", 0) > 0);
    /* No design worker: the first stays active, so the second is at capacity. */
    const char *const second[] = {"researchctl", "trigger", "--brief", "two", NULL};
    pid = it_env_spawn(env, "ctl-2", second, NULL);
    assert_int_equal(it_env_wait_exit(env, pid, WAIT_MS, &status), 0);
    assert_int_equal(WEXITSTATUS(status), 1);
    assert_true(it_log_count(env, "ctl-2",
                             "Cannot trigger: at capacity (1 active researches, limit is 1)",
                             0) > 0);
    assert_true(it_log_count(env, "ctl-2", "--force", 0) > 0);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_recovery_outbox_is_published_by_the_next_leader,
                                        it_setup, it_teardown),
        cmocka_unit_test_setup_teardown(test_recovery_a_stopped_coordinator_hands_over, it_setup,
                                        it_teardown),
        cmocka_unit_test_setup_teardown(
            test_recovery_a_coordinator_without_the_lease_writes_nothing, it_setup, it_teardown),
        cmocka_unit_test_setup_teardown(test_recovery_flushed_scripts_are_loaded_again, it_setup,
                                        it_teardown),
        cmocka_unit_test_setup_teardown(test_recovery_researchctl_trigger_reports_the_outcome,
                                        it_setup, it_teardown),
    };
    return IT_RUN_GROUP("recovery", tests);
}
