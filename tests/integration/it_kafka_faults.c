/* SPDX-License-Identifier: MIT
 * it_kafka_faults: Kafka and the lease (contract §7), against the real coordinator, dev
 * broker, redis-server and stub workers: brokers down longer than AGENT_DISPATCH_TIMEOUT x
 * AGENT_MAX_ATTEMPTS fail no research (pick-up timeouts count from Kafka's acknowledgement);
 * a fatal producer error is met with a new producer, not an exit; a leader paused (SIGSTOP)
 * past its lease publishes and commits nothing when it wakes; 100,000 researches loaded with
 * AGENT_POLL_INTERVAL=0.05 keep the lease (renewed while loading); a message Kafka refuses for
 * good does not stay in rc:outbox. */
#include "tests/support/test.h"

#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/clock.h"
#include "common/num.h"
#include "common/redislink.h"
#include "common/xalloc.h"
#include "proto/msg.h"
#include "tests/support/it_env.h"
#include "tests/support/it_runs.h"

#define WAIT_MS 20000
#define RUN_MS 90000

static void
test_kafka_a_long_outage_fails_no_research(void **state)
{
    struct it_env *env = *state;
    /* Every client reconnects within half a second of the brokers' return (librdkafka's
     * default backoff grows to 10 s): the pick-up timeout after the outage is then about the
     * workers, not their reconnection. */
    setenv("KAFKA_PROP_RECONNECT_BACKOFF_MAX_MS", "500", 1);
    it_start_pool(env, 3, NULL, NULL);
    /* The outage below lasts 5 s: more than 1 s x 2 attempts. */
    const char *const coord_env[] = {"AGENT_MAX_CONCURRENT_RESEARCHES=1000",
                                     "AGENT_DISPATCH_TIMEOUT=1", "AGENT_MAX_ATTEMPTS=2",
                                     "AGENT_WORKER_TIMEOUT=10", NULL};
    it_env_start_coordinator(env, coord_env);
    enum { N = 30 };
    char *ids[N];
    it_trigger_all(env, "outage", N, NULL, ids, WAIT_MS);
    it_wait_some_finished(env, ids, N, 3, RUN_MS);
    pid_t broker = it_env_pid(env, "devbroker");
    assert_int_equal(kill(broker, SIGUSR1), 0); /* every broker down */
    it_sleep_ms(5000);
    assert_int_equal(kill(broker, SIGUSR2), 0);
    const int64_t back = clock_mono_ms();
    const size_t before = it_count_finished(env, ids, N);
    if (before < N) {
        it_wait_some_finished(env, ids, N, before + 1, RUN_MS);
    }
    const int64_t recover = clock_mono_ms() - back;
    it_wait_all_finished(env, ids, N, RUN_MS);
    struct it_figures f = it_judge(env, ids, N);
    it_print_figures("brokers down 5 s > dispatch timeout 1 s x 2 attempts", &f,
                     "back to next finished research", recover);
    unsetenv("KAFKA_PROP_RECONNECT_BACKOFF_MAX_MS");
    assert_int_equal(f.completed, N);
    assert_int_equal(f.failed, 0);
    assert_int_equal(f.double_phases, 0);
    it_free_ids(ids, N);
}

/* A heartbeat that says idle and never changes: a worker that cannot be reached by Kafka. */
static void
plant_ghost(struct it_env *env, const char *id)
{
    char now[32], key[64];
    snprintf(now, sizeof(now), "%lld", (long long)clock_now_ms());
    snprintf(key, sizeof(key), "rc:worker:%s", id);
    const char *const beat[] = {"HSET",        key, "type",        "design", "state",     "idle",
                                "dispatch_id", "",  "research_id", "",       "last_seen", now};
    it_redis_ok(env, 12, beat);
    const char *const live[] = {"ZADD", "rc:workers:design", now, id};
    it_redis_ok(env, 4, live);
}

static void
remove_ghost(struct it_env *env, const char *id)
{
    char key[64];
    snprintf(key, sizeof(key), "rc:worker:%s", id);
    const char *const zrem[] = {"ZREM", "rc:workers:design", id};
    it_redis_ok(env, 3, zrem);
    const char *const del[] = {"DEL", key};
    it_redis_ok(env, 2, del);
}

struct waiting_probe {
    struct it_env *env;
    char **ids;
    size_t n;
};

/* Every research has finished its design and waits for a training worker. */
static bool
all_wait_for_training(void *arg)
{
    struct waiting_probe *p = arg;
    for (size_t i = 0; i < p->n; i++) {
        char *since = it_research_hget(p->env, p->ids[i], "waiting_since");
        char *child = it_research_hget(p->env, p->ids[i], "child_status");
        bool ok = since != NULL && child != NULL && strcmp(child, "completed") == 0;
        free(since);
        free(child);
        if (!ok) {
            return false;
        }
    }
    return true;
}

/* Dispatches planned while the brokers are down are never timed out meanwhile: a research
 * waits for a design worker; the brokers go down; two idle workers appear (heartbeats only:
 * they could never get a dispatch); it is sent to one, which cannot be acknowledged, and
 * must not be taken as lost twice (AGENT_MAX_ATTEMPTS=2) before Kafka even has it. */
static void
test_kafka_dispatches_planned_during_an_outage_do_not_time_out(void **state)
{
    struct it_env *env = *state;
    setenv("KAFKA_PROP_RECONNECT_BACKOFF_MAX_MS", "500", 1);
    const char *const slow[] = {"--duration-ms", "1500", "--heartbeat-ms", "300", NULL};
    it_env_start_workers(env, "design", 2, NULL, slow);
    it_env_start_workers(env, "training", 2, NULL, NULL);
    it_env_start_workers(env, "backtest", 2, NULL, NULL);
    it_env_start_workers(env, "assessment", 2, NULL, NULL);
    const char *const coord_env[] = {"AGENT_MAX_CONCURRENT_RESEARCHES=1000",
                                     "AGENT_DISPATCH_TIMEOUT=1", "AGENT_MAX_ATTEMPTS=2",
                                     "AGENT_WORKER_TIMEOUT=10", NULL};
    it_env_start_coordinator(env, coord_env);
    char *ids[3];
    it_trigger_all(env, "planned", 3, NULL, ids, WAIT_MS);
    it_research_wait(env, ids[2], "waiting_since", NULL, WAIT_MS); /* both designers busy */
    pid_t broker = it_env_pid(env, "devbroker");
    assert_int_equal(kill(broker, SIGUSR1), 0);
    plant_ghost(env, "ghost-1");
    plant_ghost(env, "ghost-2");
    it_research_wait(env, ids[2], "child_status", "dispatched", WAIT_MS); /* to a ghost */
    it_sleep_ms(4000); /* the outage: longer than 1 s x 2 attempts */
    assert_int_equal(kill(broker, SIGUSR2), 0);
    remove_ghost(env, "ghost-1");
    remove_ghost(env, "ghost-2");
    it_wait_all_finished(env, ids, 3, RUN_MS);
    struct it_figures f = it_judge(env, ids, 3);
    it_print_figures("dispatched during a 4 s outage (timeout 1 s x 2)", &f, "-", 0);
    unsetenv("KAFKA_PROP_RECONNECT_BACKOFF_MAX_MS");
    assert_int_equal(f.failed, 0);
    assert_int_equal(f.completed, 3);
    assert_int_equal(f.redispatched, 1); /* the ghost's, once Kafka had it: the only one */
    it_free_ids(ids, 3);
}

static void
test_kafka_a_fatal_producer_error_makes_a_new_producer(void **state)
{
    struct it_env *env = *state;
    it_env_start_workers(env, "design", 2, NULL, NULL);
    it_env_start_workers(env, "backtest", 2, NULL, NULL);
    it_env_start_workers(env, "assessment", 2, NULL, NULL);
    const char *const coord_env[] = {"AGENT_MAX_CONCURRENT_RESEARCHES=1000", NULL};
    pid_t coordinator = it_env_start_coordinator(env, coord_env);
    enum { N = 5 };
    char *ids[N];
    it_trigger_all(env, "fatal", N, NULL, ids, WAIT_MS);
    /* Nothing is produced now (every research waits for a training worker, the others are
     * idle): the next Produce request is the coordinator's, and it meets the fault. */
    struct waiting_probe p = {env, ids, N};
    if (!it_wait_until(all_wait_for_training, &p, WAIT_MS)) {
        it_fail(env, "the researches did not all wait for training");
    }
    it_env_broker_faults(env, "Produce OUT_OF_ORDER_SEQUENCE_NUMBER 1\n");
    const int64_t t0 = clock_mono_ms();
    it_env_start_workers(env, "training", 2, NULL, NULL); /* the dispatches are produced */
    it_log_wait(env, "coordinator", "making a new producer", WAIT_MS);
    it_wait_all_finished(env, ids, N, RUN_MS);
    const int64_t took = clock_mono_ms() - t0;
    struct it_figures f = it_judge(env, ids, N);
    it_print_figures("fatal producer error", &f, "fault to all finished", took);
    assert_int_equal(f.completed, N);
    assert_int_equal(it_env_wait_exit(env, coordinator, 0, NULL), -1); /* never an exit */
    it_free_ids(ids, N);
}

struct leader_probe {
    struct it_env *env;
    const char * not ;
};

static bool
leader_changed(void *arg)
{
    struct leader_probe *p = arg;
    const char *const get[] = {"GET", "rc:leader"};
    redisReply *r = it_redis_cmd(p->env, 2, get);
    bool other = r->type == REDIS_REPLY_STRING && strcmp(r->str, p->not ) != 0;
    freeReplyObject(r);
    return other;
}

/* A fatal consumer error (the broker fences its offset commits: FENCED_INSTANCE_ID) is met with
 * a new consumer, which reads again from the committed offsets. */
static void
test_kafka_a_fatal_consumer_error_makes_a_new_consumer(void **state)
{
    struct it_env *env = *state;
    it_start_pool(env, 2, NULL, NULL);
    const char *const coord_env[] = {"AGENT_MAX_CONCURRENT_RESEARCHES=1000", NULL};
    pid_t coordinator = it_env_start_coordinator(env, coord_env);
    char *ids[10];
    it_trigger_all(env, "cfatal", 5, NULL, ids, WAIT_MS);
    /* Only the coordinator commits offsets: the next OffsetCommit is its own. */
    it_env_broker_faults(env, "OffsetCommit FENCED_INSTANCE_ID 1\n");
    it_trigger_all(env, "cfatal-after", 5, NULL, ids + 5, WAIT_MS);
    it_log_wait(env, "coordinator", "making a new consumer", WAIT_MS);
    it_wait_all_finished(env, ids, 10, RUN_MS);
    struct it_figures f = it_judge(env, ids, 10);
    it_print_figures("fatal consumer error", &f, "-", 0);
    assert_int_equal(f.completed, 10);
    assert_int_equal(it_env_wait_exit(env, coordinator, 0, NULL), -1); /* never an exit */
    it_free_ids(ids, 10);
}

/* 150 inputs of 300 kB (45 MB) waiting at once in the consumer's queue: a pass takes at most
 * 32 MiB of them. They pile up while the coordinator's write is held (CLIENT PAUSE WRITE), its
 * librdkafka fetching meanwhile (allowed a queue larger than the bound); the topics are wide, as
 * the dev broker keeps 5 MiB per partition. */
static void
test_kafka_a_pass_is_bounded_in_bytes(void **state)
{
    struct it_env *env = *state;
    const char *const coord_env[] = {"LOG_LEVEL=debug",
                                     "KAFKA_PROP_QUEUED_MAX_MESSAGES_KBYTES=131072",
                                     "KAFKA_PROP_FETCH_MAX_BYTES=52428800",
                                     "KAFKA_PROP_RECEIVE_MESSAGE_MAX_BYTES=60000000", NULL};
    it_env_start_coordinator(env, coord_env);
    enum { BIG = 150, SIZE = 300000 };
    char *junk = malloc(SIZE);
    assert_non_null(junk);
    memset(junk, 0xc1, SIZE); /* not MessagePack: each is dead-lettered */
    const char *const pause[] = {"CLIENT", "PAUSE", "8000", "WRITE"};
    it_redis_ok(env, 4, pause);
    for (int i = 0; i < BIG; i++) {
        char key[32];
        snprintf(key, sizeof(key), "big-%d", i);
        it_env_produce(env, "completions", key, junk, SIZE);
    }
    free(junk);
    /* Whatever its librdkafka has fetched by now waits for one gather: fewer than all only
     * make the passes smaller. */
    const char *const unpause[] = {"CLIENT", "UNPAUSE"};
    it_redis_ok(env, 2, unpause);
    it_deadletter_wait(env, BIG, RUN_MS);
    /* "pass published ... inputs=M": no pass held more than 112 of them (32 MiB). */
    char path[512];
    snprintf(path, sizeof(path), "%s/coordinator.log", it_env_dir(env));
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    char line[1024];
    int64_t most = 0;
    while (fgets(line, sizeof(line), f) != NULL) {
        const char *at = strstr(line, "msg=\"pass published\"");
        const char *n = at != NULL ? strstr(at, "inputs=") : NULL;
        int64_t inputs = 0;
        if (n != NULL) {
            n += strlen("inputs=");
            (void)num_parse_i64(n, strcspn(n, " \n"), &inputs);
        }
        most = inputs > most ? inputs : most;
    }
    fclose(f);
    printf("faults: %d inputs of 300 kB at once: the largest pass took %ld\n", BIG, (long)most);
    assert_true(most > 0 && most <= 112);
}

/* How many passes the coordinator `name` has published (its debug log says so). */
static size_t
passes(struct it_env *env, const char *name)
{
    return it_log_count(env, name, "msg=\"pass published\"", 0);
}

struct stuck_probe {
    struct it_env *env;
    const char *name;
    size_t last;
    int64_t since;
};

/* The coordinator has published no pass for 300 ms: it waits on a write Redis holds. */
static bool
stuck(void *arg)
{
    struct stuck_probe *p = arg;
    size_t now = passes(p->env, p->name);
    if (now != p->last) {
        p->last = now;
        p->since = clock_mono_ms();
        return false;
    }
    return clock_mono_ms() - p->since >= 300;
}

static void
test_kafka_a_leader_paused_past_its_lease_publishes_nothing(void **state)
{
    struct it_env *env = *state;
    it_start_pool(env, 3, NULL, NULL);
    const char *const coord_env[] = {"AGENT_MAX_CONCURRENT_RESEARCHES=1000", NULL};
    pid_t a = it_env_start_coordinator(env, coord_env);
    const char *const argv[] = {"coordinator", NULL};
    const char *const b_env[] = {"AGENT_MAX_CONCURRENT_RESEARCHES=1000", "AGENT_POLL_INTERVAL=0.1",
                                 "LOG_LEVEL=debug", NULL};
    pid_t b = it_env_spawn(env, "coordinator-b", argv, b_env);
    enum { N = 40 };
    char *ids[N];
    it_trigger_all(env, "paused", N, NULL, ids, WAIT_MS);
    pid_t pids[2] = {a, b};
    const char *names[2] = {"coordinator", "coordinator-b"};
    int leader = 0;
    int64_t worst = 0;
    for (int k = 0; k < 3; k++) {
        const char *const get[] = {"GET", "rc:leader"};
        redisReply *r = it_redis_cmd(env, 2, get);
        char *was = r->type == REDIS_REPLY_STRING ? strdup(r->str) : NULL;
        freeReplyObject(r);
        assert_non_null(was);
        /* The worst moment to pause: after its write is made, before it publishes. Redis holds
         * every write (CLIENT PAUSE WRITE): the leader's next pass waits for its script's
         * reply; it is paused right there; then Redis runs the script (the lease is still
         * its own), and the reply waits in its socket while its lease runs out and the other
         * coordinator takes over. */
        const char *const pause[] = {"CLIENT", "PAUSE", "10000", "WRITE"};
        it_redis_ok(env, 4, pause);
        struct stuck_probe sp = {env, names[leader], passes(env, names[leader]), clock_mono_ms()};
        if (!it_wait_until(stuck, &sp, WAIT_MS)) {
            it_fail(env, "%s did not wait on a write", names[leader]);
        }
        assert_int_equal(kill(pids[leader], SIGSTOP), 0);
        const char *const unpause[] = {"CLIENT", "UNPAUSE"};
        it_redis_ok(env, 2, unpause);
        const int64_t t0 = clock_mono_ms();
        struct leader_probe lp = {env, was};
        if (!it_wait_until(leader_changed, &lp, WAIT_MS)) {
            kill(pids[leader], SIGCONT);
            it_fail(env, "the standby did not take over");
        }
        const int64_t took = clock_mono_ms() - t0;
        worst = took > worst ? took : worst;
        const int64_t woke = clock_now_ms();
        assert_int_equal(kill(pids[leader], SIGCONT), 0);
        /* Awake, it has its write's reply, and its lease lapsed by its own clock: it stands
         * by, and publishes and commits nothing of that pass. */
        for (int64_t until = clock_mono_ms() + WAIT_MS;
             it_log_count(env, names[leader], "standing by", woke) == 0;) {
            if (clock_mono_ms() > until) {
                it_fail(env, "%s did not stand by after waking", names[leader]);
            }
            it_sleep_ms(20);
        }
        size_t published = it_log_count(env, names[leader], "msg=\"pass published\"", woke);
        if (published != 0) {
            it_fail(env, "%s published %zu passes after waking", names[leader], published);
        }
        free(was);
        leader = 1 - leader;
    }
    it_wait_all_finished(env, ids, N, RUN_MS);
    struct it_figures f = it_judge(env, ids, N);
    it_print_figures("leader paused past its lease between write and publish x3", &f,
                     "slowest pause to takeover", worst);
    assert_int_equal(f.completed, N);
    assert_int_equal(f.double_phases, 0);
    it_free_ids(ids, N);
}

/* 100,000 researches parked (waiting for a design worker that none is), written straight into
 * Redis as a coordinator writes them. */
static void
seed_parked(struct it_env *env, size_t n)
{
    char now[32];
    snprintf(now, sizeof(now), "%lld", (long long)clock_now_ms());
    enum { BATCH = 5000 };
    char(*ids)[40] = xcalloc(BATCH, sizeof(*ids));
    char(*keys)[64] = xcalloc(BATCH, sizeof(*keys));
    const char *(*words)[18] = xcalloc(BATCH, sizeof(*words));
    const char *(*zwords)[4] = xcalloc(BATCH, sizeof(*zwords));
    struct redislink_cmd *cmds = xcalloc(2 * BATCH, sizeof(*cmds));
    for (size_t done = 0; done < n;) {
        size_t batch = n - done < BATCH ? n - done : BATCH;
        for (size_t i = 0; i < batch; i++) {
            snprintf(ids[i], sizeof(ids[i]), "rs_parked%09zu", done + i);
            snprintf(keys[i], sizeof(keys[i]), "rc:research:%s", ids[i]);
            const char *hset[] = {"HSET",       keys[i], "research_id", ids[i],    "status",
                                  "running",    "phase", "pending",     "attempt", "0",
                                  "created_at", now,     "updated_at",  now,       "waiting_since",
                                  now,          "brief", "parked"};
            memcpy(words[i], hset, sizeof(hset));
            const char *zadd[] = {"ZADD", "rc:active", now, ids[i]};
            memcpy(zwords[i], zadd, sizeof(zadd));
            cmds[2 * i] = (struct redislink_cmd){18, words[i]};
            cmds[2 * i + 1] = (struct redislink_cmd){4, zwords[i]};
        }
        struct rc_err err = RC_ERR_INIT;
        if (redislink_run(it_redis(env), cmds, 2 * batch, &err) != RC_OK) {
            it_fail(env, "seeding parked researches: %s", err.msg);
        }
        done += batch;
    }
    free(cmds);
    free(zwords);
    free(words);
    free(keys);
    free(ids);
}

struct cycle_probe {
    struct it_env *env;
};

static bool
cycled(void *arg)
{
    struct cycle_probe *p = arg;
    char *at = it_redis_hget(p->env, "rc:coordinator", "last_cycle_at");
    bool ok = at != NULL;
    free(at);
    return ok;
}

static void
test_kafka_a_long_load_keeps_the_lease(void **state)
{
    struct it_env *env = *state;
    enum { PARKED = 100000 };
    seed_parked(env, PARKED);
    const char *const argv[] = {"coordinator", NULL};
    const char *const coord_env[] = {"AGENT_POLL_INTERVAL=0.05", "LOG_LEVEL=info",
                                     "AGENT_MAX_CONCURRENT_RESEARCHES=1000000", NULL};
    const int64_t t0 = clock_mono_ms();
    it_env_spawn(env, "coordinator", argv, coord_env);
    struct cycle_probe p = {env};
    if (!it_wait_until(cycled, &p, RUN_MS)) {
        it_fail(env, "no cycle over %d researches", PARKED);
    }
    const int64_t took = clock_mono_ms() - t0;
    it_sleep_ms(1000); /* a second of 20 Hz ticks over them */
    printf("faults: %d researches loaded with AGENT_POLL_INTERVAL=0.05: start to first cycle=%lld "
           "ms\n",
           PARKED, (long long)took);
    assert_int_equal(it_log_count(env, "coordinator", "lost the leader lease", 0), 0);
    assert_int_equal(it_log_count(env, "coordinator", "msg=\"loaded active researches\"", 0), 1);
    /* Read in chunks: a ZRANGE per 1,000, never one reply of them all. */
    const char *const info[] = {"INFO", "commandstats"};
    redisReply *r = it_redis_cmd(env, 2, info);
    const char *zr = strstr(r->str, "cmdstat_zrange:calls=");
    assert_non_null(zr);
    zr += strlen("cmdstat_zrange:calls=");
    int64_t calls = -1;
    assert_true(num_parse_i64(zr, strcspn(zr, ","), &calls));
    assert_true(calls >= PARKED / 1000);
    freeReplyObject(r);
}

static void
test_kafka_a_message_refused_for_good_leaves_the_outbox(void **state)
{
    struct it_env *env = *state;
    it_start_pool(env, 2, NULL, NULL);
    /* The producer refuses messages over 8,000 bytes: a design dispatch with a 9,000-byte
     * brief can never be sent. */
    const char *const coord_env[] = {"AGENT_MAX_CONCURRENT_RESEARCHES=1000",
                                     "KAFKA_PROP_MESSAGE_MAX_BYTES=8000",
                                     "AGENT_DISPATCH_TIMEOUT=1", "AGENT_MAX_ATTEMPTS=2", NULL};
    it_env_start_coordinator(env, coord_env);
    char brief[9001];
    memset(brief, 'b', 9000);
    brief[9000] = '\0';
    struct trigger big = {.request_id = "too-big", .brief = brief};
    it_send_trigger(env, &big);
    const struct event *acc = it_event_wait_request(env, EVENT_ACCEPTED, "too-big", WAIT_MS);
    char *doomed = strdup(acc->research_id);
    char *ids[5];
    it_trigger_all(env, "small", 5, NULL, ids, WAIT_MS);
    const struct event *ev = it_event_wait(env, EVENT_FAILED, doomed, RUN_MS);
    if (strstr(ev->error, "no attempts left") == NULL) {
        it_fail(env, "failed with: %s", ev->error);
    }
    it_wait_all_finished(env, ids, 5, RUN_MS);
    it_log_wait(env, "coordinator", "Kafka refuses a message for good", WAIT_MS);
    /* Nothing waits in the outbox for ever: what Kafka refused was dropped, the rest sent. */
    const char *const hlen[] = {"HLEN", "rc:outbox"};
    for (int64_t until = clock_mono_ms() + WAIT_MS;;) {
        redisReply *r = it_redis_cmd(env, 2, hlen);
        long long n = r->integer;
        freeReplyObject(r);
        if (n == 0) {
            break;
        }
        if (clock_mono_ms() > until) {
            it_fail(env, "rc:outbox still holds %lld messages", n);
        }
        it_sleep_ms(20);
    }
    struct it_figures f = it_judge(env, ids, 5);
    it_print_figures("a dispatch Kafka refuses for good", &f, "-", 0);
    assert_int_equal(f.completed, 5);
    free(doomed);
    it_free_ids(ids, 5);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_kafka_a_long_outage_fails_no_research, it_setup,
                                        it_teardown),
        cmocka_unit_test_setup_teardown(
            test_kafka_dispatches_planned_during_an_outage_do_not_time_out, it_setup, it_teardown),
        cmocka_unit_test_setup_teardown(test_kafka_a_fatal_producer_error_makes_a_new_producer,
                                        it_setup, it_teardown),
        cmocka_unit_test_setup_teardown(test_kafka_a_fatal_consumer_error_makes_a_new_consumer,
                                        it_setup, it_teardown),
        cmocka_unit_test_setup_teardown(test_kafka_a_pass_is_bounded_in_bytes, it_setup_wide,
                                        it_teardown),
        cmocka_unit_test_setup_teardown(test_kafka_a_leader_paused_past_its_lease_publishes_nothing,
                                        it_setup, it_teardown),
        cmocka_unit_test_setup_teardown(test_kafka_a_long_load_keeps_the_lease, it_setup,
                                        it_teardown),
        cmocka_unit_test_setup_teardown(test_kafka_a_message_refused_for_good_leaves_the_outbox,
                                        it_setup, it_teardown),
    };
    return IT_RUN_GROUP("it_kafka_faults", tests);
}
