/* SPDX-License-Identifier: MIT
 * it_worker_proto: the worker's side of the contract as stub-worker keeps it, against the real
 * coordinator, redis-server and dev broker: a finished dispatch stays named in the heartbeat
 * until Kafka has acknowledged its completion (§7 "completion first, then idle") through a
 * broker outage, also when its delivery fails and it is produced again; --clock-skew-ms shifts
 * every last_seen (§5); a worker restarted with the same ids starts idle and never runs its
 * former process's dispatch again; a research key or a heartbeat key holding another type than
 * a hash stops only what it concerns. */
#include "tests/support/test.h"

#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "common/buf.h"
#include "common/clock.h"
#include "common/num.h"
#include "proto/msg.h"
#include "tests/support/it_env.h"
#include "tests/support/it_runs.h"

#define WAIT_MS 20000
#define OUTAGE_WAIT_MS 60000 /* after an outage: librdkafka reconnects within its backoff */
#define BEAT_MS 200          /* --heartbeat-ms of the workers watched */

static const char *const fast[] = {"--duration-ms", "30", NULL};

static char *
trigger_ok(struct it_env *env, const char *request_id)
{
    struct trigger t = {.request_id = request_id, .brief = "worker protocol"};
    it_send_trigger(env, &t);
    const struct event *ev = it_event_wait_request(env, EVENT_ACCEPTED, request_id, WAIT_MS);
    return strdup(ev->research_id);
}

/* ---- Reading a worker's heartbeat --------------------------------------------------------- */

/* One heartbeat hash as read (strings owned, "" when a field is absent). */
struct beat {
    char *state;
    char *dispatch_id;
    char *research_id;
    int64_t last_seen; /* -1 when absent or not a number */
};

static char *
hget_or_empty(struct it_env *env, const char *key, const char *field)
{
    char *v = it_redis_hget(env, key, field);
    return v != NULL ? v : strdup("");
}

static void
beat_read(struct it_env *env, const char *worker_id, struct beat *out)
{
    char key[256];
    snprintf(key, sizeof(key), "%sworker:%s", it_env_key_prefix(env), worker_id);
    out->state = hget_or_empty(env, key, "state");
    out->dispatch_id = hget_or_empty(env, key, "dispatch_id");
    out->research_id = hget_or_empty(env, key, "research_id");
    char *seen = hget_or_empty(env, key, "last_seen");
    int64_t n = -1;
    out->last_seen = num_parse_i64(seen, strlen(seen), &n) ? n : -1;
    free(seen);
}

static void
beat_release(struct beat *b)
{
    free(b->state);
    free(b->dispatch_id);
    free(b->research_id);
    *b = (struct beat){0};
}

/* Whether `worker_id`'s heartbeat is `state` naming dispatch_id (NULL: any). */
struct beat_probe {
    struct it_env *env;
    const char *worker_id;
    const char *state;
    const char *dispatch_id;
};

static bool
beat_is(void *arg)
{
    const struct beat_probe *p = arg;
    struct beat b;
    beat_read(p->env, p->worker_id, &b);
    bool ok = strcmp(b.state, p->state) == 0 &&
              (p->dispatch_id == NULL || strcmp(b.dispatch_id, p->dispatch_id) == 0);
    beat_release(&b);
    return ok;
}

static void
wait_beat(struct it_env *env, const char *worker_id, const char *state, const char *dispatch_id,
          int timeout_ms)
{
    struct beat_probe p = {env, worker_id, state, dispatch_id};
    if (!it_wait_until(beat_is, &p, timeout_ms)) {
        struct beat b;
        beat_read(env, worker_id, &b);
        it_fail(env, "%s: heartbeat is %s \"%s\", want %s \"%s\" after %d ms", worker_id, b.state,
                b.dispatch_id, state, dispatch_id != NULL ? dispatch_id : "(any)", timeout_ms);
    }
}

/* Watch `worker_id`'s heartbeats until its last_seen has reached `until`, checking each one
 * read with `ok`. The watch ends early at the first heartbeat `ok` refuses. */
struct watch {
    struct it_env *env;
    const char *worker_id;
    int64_t until; /* last_seen to reach */
    bool (*ok)(const struct watch *w, const struct beat *b);
    const char *dispatch_id; /* for `ok` */
    const char *research_id;
    char why[512];  /* out: the refused heartbeat, "" when none */
    int64_t n_seen; /* out: distinct last_seen values read */
    int64_t last;
};

static bool
watch_step(void *arg)
{
    struct watch *w = arg;
    struct beat b;
    beat_read(w->env, w->worker_id, &b);
    bool done = false;
    if (!w->ok(w, &b)) {
        snprintf(w->why, sizeof(w->why), "state %s dispatch_id \"%s\" research_id \"%s\"", b.state,
                 b.dispatch_id, b.research_id);
        done = true;
    } else {
        w->n_seen += b.last_seen != w->last;
        w->last = b.last_seen;
        done = b.last_seen >= w->until;
    }
    beat_release(&b);
    return done;
}

static void
watch_run(struct watch *w, int timeout_ms)
{
    w->why[0] = '\0';
    w->n_seen = 0;
    w->last = -1;
    if (!it_wait_until(watch_step, w, timeout_ms)) {
        it_fail(w->env, "%s: last_seen did not reach %lld within %d ms (heartbeats stopped?)",
                w->worker_id, (long long)w->until, timeout_ms);
    }
    if (w->why[0] != '\0') {
        it_fail(w->env, "%s: heartbeat refused while watched (after %lld distinct last_seen): %s",
                w->worker_id, (long long)w->n_seen, w->why);
    }
}

static int64_t
last_seen_now(struct it_env *env, const char *worker_id)
{
    struct beat b;
    beat_read(env, worker_id, &b);
    int64_t seen = b.last_seen;
    beat_release(&b);
    return seen;
}

/* ---- Completion first, then idle ---------------------------------------------------------- */

struct pickup_probe {
    struct it_env *env;
    const char *research_id;
    const char *worker_id;
    char *dispatch_id; /* out (owned): the training dispatch, once the worker names it */
};

/* The research is training and its worker's heartbeat names the research's dispatch. */
static bool
training_picked_up(void *arg)
{
    struct pickup_probe *p = arg;
    char *phase = it_research_hget(p->env, p->research_id, "phase");
    char *dispatch_id = it_research_hget(p->env, p->research_id, "dispatch_id");
    struct beat b;
    beat_read(p->env, p->worker_id, &b);
    bool ok = phase != NULL && strcmp(phase, "training") == 0 && dispatch_id != NULL &&
              strcmp(b.state, "busy") == 0 && strcmp(b.dispatch_id, dispatch_id) == 0;
    if (ok) {
        p->dispatch_id = dispatch_id;
        dispatch_id = NULL;
    }
    beat_release(&b);
    free(phase);
    free(dispatch_id);
    return ok;
}

static char *
wait_training_picked_up(struct it_env *env, const char *research_id, const char *worker_id)
{
    struct pickup_probe p = {env, research_id, worker_id, NULL};
    if (!it_wait_until(training_picked_up, &p, WAIT_MS)) {
        it_fail(env, "%s: its training dispatch was not picked up by %s", research_id, worker_id);
    }
    return p.dispatch_id;
}

/* While the brokers are down: the finished dispatch is still named, busy, and its research
 * has not moved on (its completion cannot have been applied) nor been sent again (a
 * redispatch is written to Redis even while Kafka is down). */
static bool
still_names_finished(const struct watch *w, const struct beat *b)
{
    char *phase = it_research_hget(w->env, w->research_id, "phase");
    char *current = it_research_hget(w->env, w->research_id, "dispatch_id");
    bool ok = strcmp(b->state, "busy") == 0 && strcmp(b->dispatch_id, w->dispatch_id) == 0 &&
              strcmp(b->research_id, w->research_id) == 0 && phase != NULL &&
              strcmp(phase, "training") == 0 && current != NULL &&
              strcmp(current, w->dispatch_id) == 0;
    free(current);
    free(phase);
    return ok;
}

/* A short worker timeout: a coordinator applying §7's "lost picked-up dispatch" rule would
 * send the dispatch again within the watch below if the worker showed idle. */
static const char *const short_worker_timeout[] = {"AGENT_WORKER_TIMEOUT=2", NULL};
static const char *const slow_training[] = {"--duration-ms", "1500",      "--heartbeat-ms",
                                            "200",           "--verbose", NULL};

/* Start the other types' workers and the coordinator, trigger a research and take the brokers
 * down once `worker_id` (its log: `log_name`) has picked up its training; check that it keeps
 * naming the finished dispatch through the outage (and is not redispatched meanwhile), that it
 * shows idle once the brokers are back and its completion delivered, and that the research
 * then completes. With `delivery_fails` (a short message.timeout.ms) the completion's delivery
 * also fails, maybe more than once, and it is produced again.
 *
 * Not asserted: that no redispatch follows the outage. Once the brokers are back the worker
 * rightly shows idle as soon as Kafka has its completion, but the coordinator's consumer may
 * take longer than AGENT_WORKER_TIMEOUT to fetch it; whether the coordinator then waits for
 * its inputs (§7: a worker that finished normally is never treated as lost) is its own test's
 * business. */
static void
outage_keeps_the_dispatch_named(struct it_env *env, const char *worker_id, const char *log_name,
                                bool delivery_fails)
{
    it_env_start_workers(env, "design", 1, NULL, fast);
    it_env_start_workers(env, "backtest", 1, NULL, fast);
    it_env_start_workers(env, "assessment", 1, NULL, fast);
    it_env_start_coordinator(env, short_worker_timeout);
    char *id = trigger_ok(env, "req-outage");
    char *dispatch_id = wait_training_picked_up(env, id, worker_id);

    pid_t broker = it_env_pid(env, "devbroker");
    assert_int_equal(kill(broker, SIGUSR1), 0); /* the brokers go down mid-dispatch */
    char done[256];
    snprintf(done, sizeof(done), "completed %s", dispatch_id);
    it_log_wait(env, log_name, done, WAIT_MS);
    if (delivery_fails) {
        snprintf(done, sizeof(done), "completion of %s (research %s) not delivered", dispatch_id,
                 id);
        it_log_wait(env, log_name, done, WAIT_MS);
    }
    /* The completion waits in the producer's queue (or to be produced again): for longer than
     * AGENT_WORKER_TIMEOUT, and a dozen heartbeats, the worker keeps naming the dispatch. */
    struct watch w = {.env = env,
                      .worker_id = worker_id,
                      .until = last_seen_now(env, worker_id) + 3000,
                      .ok = still_names_finished,
                      .dispatch_id = dispatch_id,
                      .research_id = id};
    watch_run(&w, WAIT_MS);
    assert_true(w.n_seen >= 5); /* it kept heartbeating */

    assert_int_equal(kill(broker, SIGUSR2), 0);
    /* Delivered: idle with empty ids, then the research goes on and completes. */
    wait_beat(env, worker_id, "idle", "", OUTAGE_WAIT_MS);
    struct beat b;
    beat_read(env, worker_id, &b);
    assert_string_equal(b.research_id, "");
    beat_release(&b);
    if (delivery_fails) {
        snprintf(done, sizeof(done), "completion of %s delivered after", dispatch_id);
        it_log_wait(env, log_name, done, 0);
    }
    it_research_wait(env, id, "status", "completed", OUTAGE_WAIT_MS);
    free(dispatch_id);
    free(id);
}

static void
test_worker_proto_busy_until_the_completion_is_delivered(void **state)
{
    struct it_env *env = *state;
    it_env_start_workers(env, "training", 1, "cd-", slow_training); /* workers-training-1 */
    outage_keeps_the_dispatch_named(env, "cd-training-1", "workers-training-1", false);
}

static void
test_worker_proto_failed_delivery_is_produced_again(void **state)
{
    struct it_env *env = *state;
    /* Deliveries fail after 1 s of librdkafka's retries; the worker produces them again after
     * its 1 s pause, as often as it takes. */
    const char *const argv[] = {"stub-worker", "--type",        "training", "--id-prefix",
                                "dr-",         "--duration-ms", "1500",     "--heartbeat-ms",
                                "200",         "--verbose",     NULL};
    const char *const short_timeout[] = {"KAFKA_PROP_MESSAGE_TIMEOUT_MS=1000", NULL};
    it_env_spawn(env, "workers-dr", argv, short_timeout);
    wait_beat(env, "dr-training-1", "idle", "", IT_READY_TIMEOUT_MS);
    outage_keeps_the_dispatch_named(env, "dr-training-1", "workers-dr", true);
}

/* ---- --clock-skew-ms ---------------------------------------------------------------------- */

/* The worker's last_seen field and its zset score, read so that no heartbeat fell between. */
struct skew_probe {
    struct it_env *env;
    const char *worker_id;
    int64_t field;      /* out */
    int64_t score;      /* out */
    int64_t read_at_ms; /* out: clock_now_ms() right after the reads */
};

static int64_t
zscore(struct it_env *env, const char *key, const char *member)
{
    const char *const argv[] = {"ZSCORE", key, member};
    redisReply *r = it_redis_cmd(env, 3, argv);
    int64_t v = -1;
    if (r->type == REDIS_REPLY_STRING) {
        (void)num_parse_i64(r->str, r->len, &v);
    }
    freeReplyObject(r);
    return v;
}

static bool
skew_read(void *arg)
{
    struct skew_probe *p = arg;
    char zkey[128];
    snprintf(zkey, sizeof(zkey), "%sworkers:training", it_env_key_prefix(p->env));
    int64_t before = last_seen_now(p->env, p->worker_id);
    p->score = zscore(p->env, zkey, p->worker_id);
    p->field = last_seen_now(p->env, p->worker_id);
    p->read_at_ms = clock_now_ms();
    return before == p->field && p->field > 0;
}

static void
assert_skewed(struct it_env *env, const char *worker_id, int64_t skew_ms)
{
    struct skew_probe p = {env, worker_id, 0, 0, 0};
    if (!it_wait_until(skew_read, &p, WAIT_MS)) {
        it_fail(env, "%s: no stable last_seen", worker_id);
    }
    assert_int_equal(p.field, p.score); /* the same time in the hash and the zset */
    /* Written at most a heartbeat period (plus scheduling) before it was read. */
    int64_t age = p.read_at_ms + skew_ms - p.field;
    if (age < -50 || age > BEAT_MS + 2000) {
        it_fail(env, "%s: last_seen %lld read at %lld: off by %lld ms, want %lld", worker_id,
                (long long)p.field, (long long)p.read_at_ms, (long long)(p.read_at_ms - p.field),
                (long long)-skew_ms);
    }
}

static void
test_worker_proto_clock_skew_shifts_last_seen(void **state)
{
    struct it_env *env = *state;
    const char *const behind[] = {"--clock-skew-ms", "-20000", "--heartbeat-ms", "200", NULL};
    const char *const ahead[] = {"--clock-skew-ms=7000", "--heartbeat-ms", "200", NULL};
    it_env_start_workers(env, "training", 1, "behind-", behind);
    it_env_start_workers(env, "training", 1, "ahead-", ahead);
    assert_skewed(env, "behind-training-1", -20000);
    assert_skewed(env, "ahead-training-1", 7000);

    const char *const bad[][5] = {
        {"stub-worker", "--type", "training", "--clock-skew-ms", "soon"},
        {"stub-worker", "--type", "training", "--clock-skew-ms", "86400001"},
    };
    for (size_t i = 0; i < 2; i++) {
        const char *const argv[] = {bad[i][0], bad[i][1], bad[i][2], bad[i][3], bad[i][4], NULL};
        char *out = NULL;
        assert_int_equal(it_env_run(env, "stub-bad-skew", argv, NULL, 5000, &out), 64);
        assert_non_null(strstr(out, "--clock-skew-ms"));
        free(out);
    }
    const char *const help[] = {"stub-worker", "--help", NULL};
    char *out = NULL;
    assert_int_equal(it_env_run(env, "stub-help", help, NULL, 5000, &out), 0);
    assert_non_null(strstr(out, "--clock-skew-ms"));
    free(out);
}

/* ---- A restarted worker ------------------------------------------------------------------- */

/* The restarted worker never names the dispatch its killed process ran. */
static bool
not_the_old_dispatch(const struct watch *w, const struct beat *b)
{
    return strcmp(b->dispatch_id, w->dispatch_id) != 0;
}

static void
test_worker_proto_restarted_worker_starts_idle(void **state)
{
    struct it_env *env = *state;
    const char *const slow[] = {"--duration-ms", "60000",     "--heartbeat-ms",
                                "200",           "--verbose", NULL};
    it_env_start_workers(env, "design", 1, NULL, fast);
    pid_t training = it_env_start_workers(env, "training", 1, "rs-", slow);
    it_env_start_coordinator(env, NULL);
    char *id = trigger_ok(env, "req-restart");
    char *dispatch_id = wait_training_picked_up(env, id, "rs-training-1");

    assert_int_equal(it_env_kill(env, training, SIGKILL), 0);
    assert_int_equal(it_env_wait_exit(env, training, 5000, NULL), 0);
    it_env_start_workers(env, "training", 1, "rs-", slow); /* log: workers-training-3 */
    wait_beat(env, "rs-training-1", "idle", "", WAIT_MS);
    struct watch w = {.env = env,
                      .worker_id = "rs-training-1",
                      .until = last_seen_now(env, "rs-training-1") + 1500,
                      .ok = not_the_old_dispatch,
                      .dispatch_id = dispatch_id};
    watch_run(&w, WAIT_MS);
    char started[256];
    snprintf(started, sizeof(started), "started %s", dispatch_id);
    if (it_log_count(env, "workers-training-3", started, 0) > 0) {
        it_fail(env, "the restarted worker ran %s again", dispatch_id);
    }
    free(dispatch_id);
    free(id);
}

/* ---- Keys of the wrong type --------------------------------------------------------------- */

static void
redis_set(struct it_env *env, const char *key, const char *value)
{
    const char *const argv[] = {"SET", key, value};
    it_redis_ok(env, 3, argv);
}

/* A dispatch for a research whose key is a string (the research check gets WRONGTYPE) is
 * refused, and the same worker then runs a real research's dispatch: the corrupt key is not
 * asked about again with every later check. */
static void
test_worker_proto_unreadable_research_key_refuses_only_its_dispatch(void **state)
{
    struct it_env *env = *state;
    const char *const training[] = {"--duration-ms", "30", "--verbose", NULL};
    it_env_start_workers(env, "design", 1, NULL, fast);
    it_env_start_workers(env, "training", 1, "wt-", training); /* log: workers-training-2 */
    it_env_start_workers(env, "backtest", 1, NULL, fast);
    it_env_start_workers(env, "assessment", 1, NULL, fast);
    it_env_start_coordinator(env, NULL);

    redis_set(env, "rc:research:rs_corrupt", "not a hash");
    const struct kv params[] = {{"strategy_name", value_str("s")},
                                {"strategy_path", value_str("/s.py")},
                                {"options", value_nil()}};
    struct msg m = MSG_INIT;
    m.kind = MSG_DISPATCH;
    m.ts_ms = clock_now_ms();
    m.u.dispatch = (struct dispatch){.dispatch_id = "d_corrupt",
                                     .research_id = "rs_corrupt",
                                     .worker_id = "wt-training-1",
                                     .phase = PHASE_TRAINING,
                                     .worker_type = WORKER_TRAINING,
                                     .attempt = 1,
                                     .params = params,
                                     .n_params = 3};
    struct buf wire = BUF_INIT;
    msg_encode(&m, &wire);
    it_env_produce(env, "dispatch.training", "wt-training-1", wire.data, wire.len);
    buf_release(&wire);
    it_log_wait(env, "workers-training-2", "d_corrupt", WAIT_MS); /* --verbose: it arrived */

    char *id = trigger_ok(env, "req-after-corrupt");
    it_research_wait(env, id, "status", "completed", WAIT_MS);
    assert_int_equal(it_event_count(env, EVENT_REDISPATCHED, id), 0);
    it_log_wait(env, "workers-training-2", "refusing dispatch d_corrupt", 0);
    free(id);
}

/* Heartbeats one second apart, not the 100 ms retry of a failing flush. */
static bool
beat_period_kept(const struct watch *w, const struct beat *b)
{
    return strcmp(b->state, "idle") == 0 && w->n_seen <= 4;
}

/* A worker whose heartbeat key is a string cannot heartbeat: it is dead, with an error line,
 * and its process's other worker keeps beating at its own period. */
static void
test_worker_proto_unwritable_heartbeat_key_stops_only_its_worker(void **state)
{
    struct it_env *env = *state;
    redis_set(env, "rc:worker:hk-training-2", "not a hash");
    const char *const args[] = {"--heartbeat-ms", "1000", NULL};
    pid_t pid = it_env_start_workers(env, "training", 2, "hk-", args); /* workers-training-1 */
    /* Three periods of 1 s take over 2 s: with 100 ms retries it would see more beats. */
    struct watch w = {.env = env,
                      .worker_id = "hk-training-1",
                      .until = last_seen_now(env, "hk-training-1") + 2500,
                      .ok = beat_period_kept};
    watch_run(&w, WAIT_MS);
    it_log_wait(env, "workers-training-1", "hk-training-2: rc:worker:hk-training-2 holds a string", 0);
    it_log_wait(env, "workers-training-1", "2 training workers ready", 0);
    assert_int_equal(it_env_wait_exit(env, pid, 0, NULL), -1); /* still running */
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_worker_proto_busy_until_the_completion_is_delivered,
                                        it_setup, it_teardown),
        cmocka_unit_test_setup_teardown(test_worker_proto_failed_delivery_is_produced_again,
                                        it_setup, it_teardown),
        cmocka_unit_test_setup_teardown(test_worker_proto_clock_skew_shifts_last_seen, it_setup,
                                        it_teardown),
        cmocka_unit_test_setup_teardown(test_worker_proto_restarted_worker_starts_idle, it_setup,
                                        it_teardown),
        cmocka_unit_test_setup_teardown(
            test_worker_proto_unreadable_research_key_refuses_only_its_dispatch, it_setup,
            it_teardown),
        cmocka_unit_test_setup_teardown(
            test_worker_proto_unwritable_heartbeat_key_stops_only_its_worker, it_setup,
            it_teardown),
    };
    return IT_RUN_GROUP("worker_proto", tests);
}
