/* SPDX-License-Identifier: MIT
 * it_env_smoke: the integration-test environment itself: redis answers, a
 * message produced is read back (raw and through the events view), stub workers
 * heartbeat, and stopping the env leaves no child behind. Needs redis-server,
 * devbroker and stub-worker; not the coordinator. */
#include "tests/support/test.h"

#include <errno.h>
#include <signal.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "common/buf.h"
#include "contract/keys.h"
#include "proto/msg.h"
#include "tests/support/it_env.h"

#define WAIT_MS 10000

static void
test_it_env_redis_answers(void **state)
{
    struct it_env *env = *state;
    const char *const ping[] = {"PING"};
    const char *const hset[] = {"HSET", "rc:x", "f", "v"};

    redisReply *r = it_redis_cmd(env, 1, ping);
    assert_int_equal(r->type, REDIS_REPLY_STATUS);
    assert_string_equal(r->str, "PONG");
    freeReplyObject(r);

    assert_null(it_redis_hget(env, "rc:x", "f"));
    freeReplyObject(it_redis_cmd(env, 4, hset));
    char *v = it_redis_hget(env, "rc:x", "f");
    assert_non_null(v);
    assert_string_equal(v, "v");
    free(v);
    assert_int_equal(it_redis_zcard(env, "rc:none"), 0);
    assert_true(strncmp(it_env_redis_url(env), "unix://", 7) == 0);
}

static void
test_it_env_topic_reads_back_messages(void **state)
{
    struct it_env *env = *state;
    struct it_topic *t = it_topic_open(env, "events");

    it_env_produce(env, "events", "k1", "one", 3);
    it_env_produce(env, "events", "k2", "two", 3);
    assert_true(it_topic_wait_count(t, 2, WAIT_MS));
    assert_int_equal(it_topic_count(t), 2);

    /* Both keys may land on different partitions: look each up. */
    bool seen1 = false;
    bool seen2 = false;
    for (size_t i = 0; i < it_topic_count(t); i++) {
        const struct it_msg *m = it_topic_msg(t, i);
        assert_int_equal(m->len, 3);
        assert_null(m->decoded);
        if (strcmp(m->key, "k1") == 0) {
            assert_memory_equal(m->payload, "one", 3);
            seen1 = true;
        } else if (strcmp(m->key, "k2") == 0) {
            assert_memory_equal(m->payload, "two", 3);
            seen2 = true;
        }
    }
    assert_true(seen1 && seen2);

    /* Incremental: a later poll adds only the new message, here a 2 MiB one. */
    size_t big_len = 2u * 1024u * 1024u;
    char *big = malloc(big_len);
    assert_non_null(big);
    memset(big, 'x', big_len);
    it_env_produce(env, "events", "k1", big, big_len);
    assert_true(it_topic_wait_count(t, 3, WAIT_MS));
    assert_int_equal(it_topic_count(t), 3);
    assert_int_equal(it_topic_msg(t, 2)->len, big_len);
    assert_memory_equal(it_topic_msg(t, 2)->payload, big, big_len);
    free(big);
}

static void
test_it_env_events_view_decodes(void **state)
{
    struct it_env *env = *state;
    struct msg m = MSG_INIT;
    struct buf wire = BUF_INIT;

    m.kind = MSG_EVENT;
    m.u.event.type = EVENT_ACCEPTED;
    m.u.event.research_id = "rs-1";
    m.u.event.request_id = "req-1";
    msg_encode(&m, &wire);
    it_env_produce(env, "events", "rs-1", wire.data, wire.len);
    buf_release(&wire);

    const struct event *ev = it_event_wait_request(env, EVENT_ACCEPTED, "req-1", WAIT_MS);
    assert_non_null(ev);
    assert_string_equal(ev->research_id, "rs-1");
    assert_non_null(it_event_wait(env, EVENT_ACCEPTED, "rs-1", WAIT_MS));
    assert_int_equal(it_event_count(env, EVENT_ACCEPTED, "rs-1"), 1);
    assert_int_equal(it_event_count(env, EVENT_ACCEPTED, NULL), 1);
    assert_int_equal(it_event_count(env, EVENT_REJECTED, NULL), 0);
    assert_null(it_event_find(env, EVENT_ACCEPTED, "rs-2"));
}

static void
test_it_env_workers_heartbeat_and_stop_leaves_no_child(void **state)
{
    struct it_env *env = NULL;
    struct buf key = BUF_INIT;
    int status = 0;

    (void)state;
    assert_int_equal(it_env_start(&env), 0);
    pid_t workers = it_env_start_workers(env, "training", 2, NULL, NULL);
    assert_true(workers > 0);
    keys_workers(&key, it_env_key_prefix(env), WORKER_TRAINING);
    assert_true(it_redis_zcard(env, key.data) >= 2);
    buf_release(&key);

    /* A child the test kills and collects itself. */
    pid_t doomed = it_env_start_workers(env, "design", 1, "doomed-", NULL);
    assert_int_equal(it_env_wait_exit(env, doomed, 0, NULL), -1); /* still running */
    assert_int_equal(it_env_kill(env, doomed, SIGKILL), 0);
    assert_int_equal(it_env_wait_exit(env, doomed, WAIT_MS, &status), 0);
    assert_true(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
    assert_int_equal(it_env_kill(env, 1, SIGTERM), -1); /* not ours */

    pid_t pids[] = {it_env_pid(env, "redis"), it_env_pid(env, "devbroker"), workers, doomed};
    for (size_t i = 0; i < N_OF(pids); i++) {
        assert_true(pids[i] > 0);
    }
    assert_int_equal(it_env_stop(env), 0);
    for (size_t i = 0; i < N_OF(pids); i++) {
        errno = 0;
        assert_int_equal(kill(pids[i], 0), -1);
        assert_int_equal(errno, ESRCH);
    }
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_it_env_redis_answers, it_setup, it_teardown),
        cmocka_unit_test_setup_teardown(test_it_env_topic_reads_back_messages, it_setup,
                                        it_teardown),
        cmocka_unit_test_setup_teardown(test_it_env_events_view_decodes, it_setup, it_teardown),
        cmocka_unit_test(test_it_env_workers_heartbeat_and_stop_leaves_no_child),
    };
    return IT_RUN_GROUP("it_env_smoke", tests);
}
