/* SPDX-License-Identifier: MIT
 * test_rcw_pool: librcworker's job threads: every job submitted runs once and comes back
 * done, the wake descriptor is written, threads are kept and reused, a cancelled job's
 * handler returns at once, and the pool grows only while jobs wait for a thread. */
#include "tests/support/test.h"

#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "common/buf.h"
#include "common/clock.h"
#include "proto/msg.h"
#include "worker/rcw_job.h"
#include "worker/rcw_pool.h"

struct counter {
    pthread_mutex_t mu;
    int runs;
    int64_t wait_ms; /* each handler waits this long (cancellable) */
};

static void
count_run(struct rcw_job *job, void *arg)
{
    struct counter *c = arg;
    pthread_mutex_lock(&c->mu);
    c->runs++;
    pthread_mutex_unlock(&c->mu);
    if (c->wait_ms > 0 && !rcw_job_wait(job, c->wait_ms)) {
        return;
    }
    rcw_job_result_double(job, "accuracy", 0.5);
}

static struct rcw_job *
job_new(struct buf *wire, int i)
{
    char id[32];
    snprintf(id, sizeof(id), "d-%d", i);
    struct msg m = {.kind = MSG_DISPATCH, .ts_ms = 1};
    struct kv params[] = {{"strategy_name", value_str("s")}};
    m.u.dispatch = (struct dispatch){.dispatch_id = id,
                                     .research_id = "r-1",
                                     .worker_id = "w-1",
                                     .phase = PHASE_TRAINING,
                                     .worker_type = WORKER_TRAINING,
                                     .attempt = 1,
                                     .params = params,
                                     .n_params = 1};
    buf_reset(wire);
    msg_encode(&m, wire);
    struct msg d = MSG_INIT;
    assert_int_equal(msg_decode(MSG_TOPIC_DISPATCH, wire->data, wire->len, &d, NULL), RC_OK);
    return rcw_job_new(&d, wire->data, wire->len, (size_t)i);
}

/* Take done jobs (waiting on the pipe) until n came back; checks and frees them. */
static void
collect(struct rcw_pool *p, int rfd, int n, enum rcw_job_state want)
{
    int got = 0;
    int64_t until = clock_mono_ms() + 10000;
    while (got < n && clock_mono_ms() < until) {
        struct pollfd pfd = {.fd = rfd, .events = POLLIN};
        (void)poll(&pfd, 1, 100);
        char sink[64];
        while (read(rfd, sink, sizeof(sink)) > 0) {
        }
        for (struct rcw_job *j = rcw_pool_take_done(p), *next = NULL; j != NULL; j = next) {
            next = rcw_job_link(j)->next;
            assert_int_equal(rcw_job_state(j), want);
            rcw_job_free(j);
            got++;
        }
    }
    assert_int_equal(got, n);
}

static void
test_rcw_pool_runs_every_job_and_keeps_its_threads(void **state)
{
    (void)state;
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    assert_int_equal(fcntl(fds[0], F_SETFL, O_NONBLOCK), 0);
    assert_int_equal(fcntl(fds[1], F_SETFL, O_NONBLOCK), 0);
    struct counter c = {.mu = PTHREAD_MUTEX_INITIALIZER};
    struct rcw_pool *p = rcw_pool_new(count_run, &c, fds[1]);
    struct buf wire = BUF_INIT;

    rcw_pool_submit(p); /* nothing added: nothing happens */
    assert_int_equal(rcw_pool_threads(p), 0);
    for (int i = 0; i < 50; i++) {
        rcw_pool_add(p, job_new(&wire, i));
    }
    assert_int_equal(rcw_pool_live(p), 0); /* added, not yet submitted */
    rcw_pool_submit(p);
    assert_true(rcw_pool_threads(p) >= 1);
    assert_true(rcw_pool_threads(p) <= 50);
    collect(p, fds[0], 50, RCW_JOB_DONE);
    assert_int_equal(c.runs, 50);
    assert_int_equal(rcw_pool_live(p), 0);

    /* All idle again: a second batch no larger than the pool makes no thread. */
    size_t threads = rcw_pool_threads(p);
    for (int round = 0; round < 5; round++) {
        for (size_t i = 0; i < threads; i++) {
            rcw_pool_add(p, job_new(&wire, (int)i));
        }
        rcw_pool_submit(p);
        collect(p, fds[0], (int)threads, RCW_JOB_DONE);
    }
    assert_int_equal(rcw_pool_threads(p), threads);
    rcw_pool_free(p);
    buf_release(&wire);
    close(fds[0]);
    close(fds[1]);
}

static void
test_rcw_pool_cancelled_jobs_return_at_once(void **state)
{
    (void)state;
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    assert_int_equal(fcntl(fds[0], F_SETFL, O_NONBLOCK), 0);
    assert_int_equal(fcntl(fds[1], F_SETFL, O_NONBLOCK), 0);
    struct counter c = {.mu = PTHREAD_MUTEX_INITIALIZER, .wait_ms = 60000};
    struct rcw_pool *p = rcw_pool_new(count_run, &c, fds[1]);
    struct buf wire = BUF_INIT;
    struct rcw_job *jobs[8];

    for (int i = 0; i < 8; i++) {
        jobs[i] = job_new(&wire, i);
        rcw_pool_add(p, jobs[i]);
    }
    rcw_pool_submit(p);
    assert_int_equal(rcw_pool_threads(p), 8); /* eight long handlers: a thread each */
    assert_int_equal(rcw_pool_live(p), 8);
    int64_t t0 = clock_mono_ms();
    for (int i = 0; i < 8; i++) {
        assert_true(rcw_job_settle(jobs[i], i % 2 == 0 ? RCW_JOB_ABORTED : RCW_JOB_RELEASED));
    }
    /* Settled before their handlers returned: the pool leaves their state as it is. */
    int got = 0;
    int64_t until = clock_mono_ms() + 10000;
    while (got < 8 && clock_mono_ms() < until) {
        struct pollfd pfd = {.fd = fds[0], .events = POLLIN};
        (void)poll(&pfd, 1, 100);
        char sink[64];
        while (read(fds[0], sink, sizeof(sink)) > 0) {
        }
        for (struct rcw_job *j = rcw_pool_take_done(p), *next = NULL; j != NULL; j = next) {
            next = rcw_job_link(j)->next;
            assert_true(rcw_job_cancelled(j));
            rcw_job_free(j);
            got++;
        }
    }
    assert_int_equal(got, 8);
    assert_true(clock_mono_ms() - t0 < 10000);
    rcw_pool_free(p);
    buf_release(&wire);
    close(fds[0]);
    close(fds[1]);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rcw_pool_runs_every_job_and_keeps_its_threads),
        cmocka_unit_test(test_rcw_pool_cancelled_jobs_return_at_once),
    };
    return cmocka_run_group_tests_name("rcw_pool", tests, NULL, NULL);
}
