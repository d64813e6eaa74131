/* SPDX-License-Identifier: MIT
 * it_resume: the resume message over the real coordinator, redis-server, the dev broker and
 * stub workers (contract §3, §4): a research failed in training resumed and completed with its
 * design result kept and no dispatch id used twice; a cancelled one resumed; every refusal
 * (not_found, not_resumable when completed or active, at_capacity, which force passes); a
 * request_id repeated repeats its first outcome; a malformed resume dead-lettered with nothing
 * else changed; a resume read in the same batch as the cancel that finished its research. */
#include "tests/support/test.h"

#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto/msg.h"
#include "tests/support/it_env.h"

#define WAIT_MS 20000

static const char *const fast[] = {"--duration-ms", "30", NULL};

static char *
trigger_ok(struct it_env *env, const char *request_id, bool force)
{
    struct trigger t = {
        .request_id = request_id, .brief = "momentum on BTC 1h bars", .force = force};
    it_send_trigger(env, &t);
    const struct event *ev = it_event_wait_request(env, EVENT_ACCEPTED, request_id, WAIT_MS);
    assert_non_null(ev->research_id);
    return strdup(ev->research_id);
}

static void
assert_field(struct it_env *env, const char *id, const char *field, const char *want)
{
    char *got = it_research_hget(env, id, field);
    if (want == NULL ? got != NULL : (got == NULL || strcmp(got, want) != 0)) {
        it_fail(env, "%s: %s is \"%s\", want \"%s\"", id, field, got ? got : "(absent)",
                want ? want : "(absent)");
    }
    free(got);
}

/* The score of `id` in the zset `key`, or -1 when it is no member. */
static long long
zscore(struct it_env *env, const char *key, const char *id)
{
    const char *const argv[] = {"ZSCORE", key, id};
    redisReply *r = it_redis_cmd(env, 3, argv);
    long long v = r->type == REDIS_REPLY_STRING ? strtoll(r->str, NULL, 10) : -1;
    freeReplyObject(r);
    return v;
}

static long long
ttl(struct it_env *env, const char *id)
{
    char key[160];
    snprintf(key, sizeof(key), "rc:research:%s", id);
    const char *const argv[] = {"TTL", key};
    redisReply *r = it_redis_cmd(env, 2, argv);
    long long v = r->type == REDIS_REPLY_INTEGER ? r->integer : -3;
    freeReplyObject(r);
    return v;
}

struct count_probe {
    struct it_env *env;
    enum event_type type;
    const char *id;
    size_t n;
};

static bool
count_reached(void *arg)
{
    struct count_probe *p = arg;
    return it_event_count(p->env, p->type, p->id) >= p->n;
}

/* Wait until n events of `type` for `id` were read (events of different researches may come
 * in any order: they are on partitions of their own). */
static void
wait_events(struct it_env *env, enum event_type type, const char *id, size_t n)
{
    struct count_probe p = {env, type, id, n};
    if (!it_wait_until(count_reached, &p, WAIT_MS)) {
        it_fail(env, "%zu %s events for %s, want %zu", it_event_count(env, type, id),
                event_type_name(type), id != NULL ? id : "any", n);
    }
}

/* Every dispatch id seen on the four dispatch topics is there once (retries and resumes
 * included); returns how many there were. */
static size_t
assert_dispatch_ids_unique(struct it_env *env)
{
    size_t n = 0, cap = 0;
    for (int wt = 0; wt < WORKER_TYPE_COUNT; wt++) {
        struct it_topic *t = it_dispatches(env, (enum worker_type)wt);
        it_topic_poll(t, 0);
        cap += it_topic_count(t);
    }
    const char **ids = calloc(cap > 0 ? cap : 1, sizeof(*ids));
    assert_non_null(ids);
    for (int wt = 0; wt < WORKER_TYPE_COUNT; wt++) {
        struct it_topic *t = it_dispatches(env, (enum worker_type)wt);
        for (size_t i = 0; i < it_topic_count(t); i++) {
            const struct msg *m = it_topic_msg(t, i)->decoded;
            if (m == NULL || m->kind != MSG_DISPATCH) {
                continue;
            }
            for (size_t k = 0; k < n; k++) {
                if (strcmp(ids[k], m->u.dispatch.dispatch_id) == 0) {
                    it_fail(env, "dispatch id %s sent twice", ids[k]);
                }
            }
            ids[n++] = m->u.dispatch.dispatch_id;
        }
    }
    free(ids);
    return n;
}

/* The dispatch of `id` on wt's topic whose dispatch id is `want`, waited for. */
static bool
is_dispatch_id(const struct it_msg *m, void *arg)
{
    return m->decoded != NULL && m->decoded->kind == MSG_DISPATCH &&
           strcmp(m->decoded->u.dispatch.dispatch_id, arg) == 0;
}

static void
wait_dispatch_id(struct it_env *env, enum worker_type wt, char *want)
{
    if (it_topic_wait(it_dispatches(env, wt), is_dispatch_id, want, WAIT_MS) == NULL) {
        it_fail(env, "no dispatch %s on the %s topic", want, worker_type_name(wt));
    }
}

static void
test_resume_failed_in_training_completes_keeping_its_design(void **state)
{
    struct it_env *env = *state;
    const char *const failing[] = {"--duration-ms", "30", "--fail-prob", "1", NULL};
    it_env_start_workers(env, "design", 1, NULL, fast);
    pid_t bad = it_env_start_workers(env, "training", 1, NULL, failing);
    it_env_start_workers(env, "backtest", 1, NULL, fast);
    it_env_start_workers(env, "assessment", 1, NULL, fast);
    it_env_start_coordinator(env, NULL);
    char *id = trigger_ok(env, "req-1", false);
    const struct event *failed = it_event_wait(env, EVENT_FAILED, id, WAIT_MS);
    assert_int_equal(failed->phase, PHASE_TRAINING);
    assert_field(env, id, "last_phase", "training");
    char *strategy = it_research_hget(env, id, "design.strategy_name");
    char *created = it_research_hget(env, id, "created_at");
    assert_non_null(strategy);
    assert_true(ttl(env, id) > 0);

    /* The failing worker goes (it drains: never sent work again); a sound one comes. */
    it_env_kill(env, bad, SIGTERM);
    assert_int_equal(it_env_wait_exit(env, bad, 10000, NULL), 0);
    it_env_start_workers(env, "training", 1, NULL, fast);

    struct resume k = {.research_id = id, .request_id = "rs-1", .reason = "fixed the trainer"};
    it_send_resume(env, &k);
    const struct event *ev = it_event_wait_request(env, EVENT_RESUMED, "rs-1", WAIT_MS);
    assert_string_equal(ev->research_id, id);
    assert_int_equal(ev->phase, PHASE_TRAINING);
    char want[200];
    snprintf(want, sizeof(want), "%s:training:1:r1", id);
    wait_dispatch_id(env, WORKER_TRAINING, want);
    it_event_wait(env, EVENT_COMPLETED, id, WAIT_MS);
    it_research_wait(env, id, "status", "completed", WAIT_MS);

    /* Design ran once, its result kept; training started twice (one phase_started each). */
    assert_field(env, id, "design.strategy_name", strategy);
    assert_field(env, id, "strategy_name", strategy);
    assert_field(env, id, "resumes", "1");
    assert_field(env, id, "error", NULL);
    assert_int_equal(it_event_count(env, EVENT_RESUMED, id), 1);
    assert_int_equal(it_event_count(env, EVENT_PHASE_STARTED, id), 5);
    assert_int_equal(it_dispatch_wait(env, WORKER_DESIGN, id, 1, WAIT_MS)->attempt, 1);
    it_dispatch_wait(env, WORKER_BACKTEST, id, 1, WAIT_MS);
    it_dispatch_wait(env, WORKER_ASSESSMENT, id, 1, WAIT_MS);
    assert_true(assert_dispatch_ids_unique(env) >= 5);
    /* Finished again: back in rc:finished with a TTL; created_at never moved. */
    assert_field(env, id, "created_at", created);
    assert_true(zscore(env, "rc:finished", id) > 0);
    assert_int_equal(zscore(env, "rc:active", id), -1);
    assert_true(ttl(env, id) > 0);

    /* Completed: not resumable. */
    struct resume done = {.research_id = id, .request_id = "rs-2"};
    it_send_resume(env, &done);
    ev = it_event_wait_request(env, EVENT_RESUME_REJECTED, "rs-2", WAIT_MS);
    assert_string_equal(ev->reason, "not_resumable");
    assert_string_equal(ev->research_id, id);
    assert_field(env, id, "status", "completed");
    free(strategy);
    free(created);
    free(id);
}

static void
test_resume_cancelled_while_training(void **state)
{
    struct it_env *env = *state;
    const char *const slow[] = {"--duration-ms", "1500", NULL};
    it_env_start_workers(env, "design", 1, NULL, fast);
    it_env_start_workers(env, "training", 1, NULL, slow);
    it_env_start_workers(env, "backtest", 1, NULL, fast);
    it_env_start_workers(env, "assessment", 1, NULL, fast);
    it_env_start_coordinator(env, NULL);
    char *id = trigger_ok(env, "req-c", false);
    const struct dispatch *d = it_dispatch_wait(env, WORKER_TRAINING, id, 1, WAIT_MS);
    char *first = strdup(d->dispatch_id);
    it_research_wait(env, id, "phase", "training", WAIT_MS);
    struct cancel c = {.research_id = id, .request_id = "cx-1"};
    it_send_cancel(env, &c);
    it_event_wait_request(env, EVENT_CANCELLED, "cx-1", WAIT_MS);
    assert_field(env, id, "status", "cancelled");

    /* No request_id: nothing remembered, the event has none. */
    struct resume k = {.research_id = id};
    it_send_resume(env, &k);
    const struct event *ev = it_event_wait(env, EVENT_RESUMED, id, WAIT_MS);
    assert_int_equal(ev->phase, PHASE_TRAINING);
    assert_null(ev->request_id);
    /* Active again: a second resume is refused while it runs. */
    struct resume twice = {.research_id = id, .request_id = "rs-twice"};
    it_send_resume(env, &twice);
    ev = it_event_wait_request(env, EVENT_RESUME_REJECTED, "rs-twice", WAIT_MS);
    assert_string_equal(ev->reason, "not_resumable");
    char want[200];
    snprintf(want, sizeof(want), "%s:training:1:r1", id);
    assert_string_not_equal(first, want);
    wait_dispatch_id(env, WORKER_TRAINING, want);
    it_event_wait(env, EVENT_COMPLETED, id, 3 * WAIT_MS);
    assert_field(env, id, "status", "completed");
    assert_field(env, id, "resumes", "1");
    assert_int_equal(it_event_count(env, EVENT_RESUMED, id), 1);
    assert_dispatch_ids_unique(env);
    free(first);
    free(id);
}

static void
test_resume_refusals_capacity_force_and_repeats(void **state)
{
    struct it_env *env = *state;
    /* No workers: what is accepted stays pending, so the active count is ours to set. */
    const char *const limit_one[] = {"AGENT_MAX_CONCURRENT_RESEARCHES=1", NULL};
    it_env_start_coordinator(env, limit_one);
    char *a = trigger_ok(env, "req-a", false);
    struct cancel c = {.research_id = a};
    it_send_cancel(env, &c);
    it_event_wait(env, EVENT_CANCELLED, a, WAIT_MS);
    char *b = trigger_ok(env, "req-b", false); /* the one active research: at the limit */

    struct resume unknown = {.research_id = "rs_00000000000000000000000000", .request_id = "r-u"};
    it_send_resume(env, &unknown);
    const struct event *ev = it_event_wait_request(env, EVENT_RESUME_REJECTED, "r-u", WAIT_MS);
    assert_string_equal(ev->reason, "not_found");
    assert_string_equal(ev->research_id, "rs_00000000000000000000000000");

    struct resume active = {.research_id = b, .request_id = "r-b"};
    it_send_resume(env, &active);
    ev = it_event_wait_request(env, EVENT_RESUME_REJECTED, "r-b", WAIT_MS);
    assert_string_equal(ev->reason, "not_resumable");

    struct resume full = {.research_id = a, .request_id = "r-cap"};
    it_send_resume(env, &full);
    ev = it_event_wait_request(env, EVENT_RESUME_REJECTED, "r-cap", WAIT_MS);
    assert_string_equal(ev->reason, "at_capacity");
    assert_field(env, a, "status", "cancelled");
    assert_true(zscore(env, "rc:finished", a) > 0);

    struct resume forced = {.research_id = a, .request_id = "r-force", .force = true};
    it_send_resume(env, &forced);
    ev = it_event_wait_request(env, EVENT_RESUMED, "r-force", WAIT_MS);
    assert_int_equal(ev->phase, PHASE_PENDING); /* cancelled before its first dispatch */
    assert_field(env, a, "status", "running");
    assert_field(env, a, "phase", "pending");
    assert_field(env, a, "finished_at", NULL);
    assert_field(env, a, "last_phase", NULL);
    assert_field(env, a, "resumes", "1");
    assert_int_equal(ttl(env, a), -1); /* no TTL any more */
    assert_int_equal(zscore(env, "rc:finished", a), -1);
    char *created = it_research_hget(env, a, "created_at");
    assert_int_equal(zscore(env, "rc:active", a), strtoll(created, NULL, 10));
    free(created);

    /* Each request_id repeats its first outcome, whatever holds now (the force one would be
     * not_resumable now, the capacity one too). */
    it_send_resume(env, &full);
    it_send_resume(env, &forced);
    it_send_resume(env, &unknown);
    struct resume marker = {.research_id = b, .request_id = "r-marker"};
    it_send_resume(env, &marker);
    it_event_wait_request(env, EVENT_RESUME_REJECTED, "r-marker", WAIT_MS);
    wait_events(env, EVENT_RESUMED, a, 2);
    wait_events(env, EVENT_RESUME_REJECTED, NULL, 6); /* r-u, r-b, r-cap, and again, marker */
    size_t caps = 0, found = 0;
    struct it_topic *t = it_events(env);
    for (size_t i = 0; i < it_topic_count(t); i++) {
        const struct msg *m = it_topic_msg(t, i)->decoded;
        if (m != NULL && m->u.event.type == EVENT_RESUME_REJECTED && m->u.event.request_id) {
            caps += strcmp(m->u.event.request_id, "r-cap") == 0 &&
                    strcmp(m->u.event.reason, "at_capacity") == 0;
            found += strcmp(m->u.event.request_id, "r-u") == 0 &&
                     strcmp(m->u.event.reason, "not_found") == 0;
        }
    }
    assert_int_equal(caps, 2);
    assert_int_equal(found, 2);
    assert_field(env, a, "resumes", "1"); /* resumed once */
    assert_true(it_redis_zcard(env, "rc:active") == 2);
    free(a);
    free(b);
}

static void
test_resume_malformed_is_dead_lettered_and_changes_nothing(void **state)
{
    struct it_env *env = *state;
    it_env_start_coordinator(env, NULL);
    char *a = trigger_ok(env, "req-m", true);
    struct cancel c = {.research_id = a};
    it_send_cancel(env, &c);
    it_event_wait(env, EVENT_CANCELLED, a, WAIT_MS);

    struct resume none = {.research_id = NULL, .reason = "no id"};
    it_send_resume(env, &none);
    const struct deadletter *dl = it_deadletter_wait(env, 1, WAIT_MS);
    assert_string_equal(dl->reason, "research_id: required");
    assert_string_equal(dl->source_topic, "research.triggers");
    struct resume bad = {.research_id = "rs bad!"};
    it_send_resume(env, &bad);
    dl = it_deadletter_wait(env, 2, WAIT_MS);
    assert_string_equal(dl->reason, "research_id: must be 1-128 bytes of [A-Za-z0-9._:-]");

    /* Then a valid one (a marker): everything before it was read. */
    struct resume marker = {.research_id = "rs_00000000000000000000000000", .request_id = "r-m"};
    it_send_resume(env, &marker);
    it_event_wait_request(env, EVENT_RESUME_REJECTED, "r-m", WAIT_MS);
    assert_int_equal(it_event_count(env, EVENT_RESUMED, NULL), 0);
    assert_int_equal(it_event_count(env, EVENT_RESUME_REJECTED, NULL), 1);
    assert_int_equal(it_event_count(env, EVENT_REJECTED, NULL), 0);
    assert_field(env, a, "status", "cancelled");
    assert_field(env, a, "resumes", NULL);
    assert_true(zscore(env, "rc:finished", a) > 0);
    assert_true(it_redis_zcard(env, "rc:active") == 0);
    char *invalid = it_redis_hget(env, "rc:coordinator", "invalid_inputs");
    assert_non_null(invalid);
    assert_string_equal(invalid, "2");
    free(invalid);
    free(a);
}

static void
test_resume_in_the_batch_that_cancelled_it(void **state)
{
    struct it_env *env = *state;
    pid_t coord = it_env_start_coordinator(env, NULL);
    char *a = trigger_ok(env, "req-batch", true); /* no workers: it stays pending */
    /* Held while both are produced: it reads them in one batch (the resume then sees the
     * research as the cancel left it, not as Redis had it before the batch). */
    assert_int_equal(it_env_kill(env, coord, SIGSTOP), 0);
    struct cancel c = {.research_id = a, .request_id = "cx-batch"};
    struct resume k = {.research_id = a, .request_id = "rs-batch"};
    it_send_cancel(env, &c);
    it_send_resume(env, &k);
    assert_int_equal(it_env_kill(env, coord, SIGCONT), 0);
    it_event_wait_request(env, EVENT_CANCELLED, "cx-batch", WAIT_MS);
    const struct event *ev = it_event_wait_request(env, EVENT_RESUMED, "rs-batch", WAIT_MS);
    assert_int_equal(ev->phase, PHASE_PENDING);
    assert_field(env, a, "status", "running");
    assert_field(env, a, "phase", "pending");
    assert_field(env, a, "resumes", "1");
    assert_field(env, a, "error", NULL);
    assert_int_equal(ttl(env, a), -1);
    assert_true(zscore(env, "rc:active", a) > 0);
    assert_int_equal(zscore(env, "rc:finished", a), -1);
    free(a);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_resume_failed_in_training_completes_keeping_its_design,
                                        it_setup, it_teardown),
        cmocka_unit_test_setup_teardown(test_resume_cancelled_while_training, it_setup,
                                        it_teardown),
        cmocka_unit_test_setup_teardown(test_resume_refusals_capacity_force_and_repeats, it_setup,
                                        it_teardown),
        cmocka_unit_test_setup_teardown(test_resume_malformed_is_dead_lettered_and_changes_nothing,
                                        it_setup, it_teardown),
        cmocka_unit_test_setup_teardown(test_resume_in_the_batch_that_cancelled_it, it_setup,
                                        it_teardown),
    };
    return IT_RUN_GROUP("resume", tests);
}
