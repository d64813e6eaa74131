/* SPDX-License-Identifier: MIT
 * test_rcw_job: one dispatch's job as librcworker runs it: its state machine (running, then
 * done, aborted or released: the first wins), the cancellable wait, params and options, the
 * JSON input of rcw-exec, progress, and the result built, checked and turned into a
 * completion. */
#include "tests/support/test.h"

#include <math.h>
#include <pthread.h>
#include <string.h>

#include "common/buf.h"
#include "common/clock.h"
#include "proto/json.h"
#include "proto/msg.h"
#include "worker/rcw_job.h"

struct fixture {
    struct buf wire;
    struct rcw_job *job;
};

/* A job for a dispatch of `phase` with params `p` (options from JSON `options`, or nil). */
static struct rcw_job *
job_of(struct buf *wire, enum phase phase, const char *options)
{
    struct buf opts = BUF_INIT;
    struct kv params[3];
    size_t n = 0;
    if (phase == PHASE_DESIGNING) {
        params[n++] = (struct kv){"brief", value_str("find alpha")};
        params[n++] = (struct kv){"model", value_str("m-1")};
    } else {
        params[n++] = (struct kv){"strategy_name", value_str("s1")};
        params[n++] = (struct kv){"strategy_path", value_nil()};
    }
    if (options != NULL) {
        assert_int_equal(json_to_msgpack(options, strlen(options), &opts, NULL), RC_OK);
        params[n++] = (struct kv){"options", value_raw(opts.data, opts.len)};
    } else {
        params[n++] = (struct kv){"options", value_nil()};
    }
    struct msg m = {.kind = MSG_DISPATCH, .ts_ms = 1};
    m.u.dispatch = (struct dispatch){.dispatch_id = "d-1",
                                     .research_id = "r-1",
                                     .worker_id = "w-1",
                                     .phase = phase,
                                     .worker_type = phase_worker_type(phase),
                                     .attempt = 2,
                                     .params = params,
                                     .n_params = n};
    buf_reset(wire);
    msg_encode(&m, wire);
    buf_release(&opts);
    struct msg d = MSG_INIT;
    assert_int_equal(msg_decode(MSG_TOPIC_DISPATCH, wire->data, wire->len, &d, NULL), RC_OK);
    struct rcw_job *job = rcw_job_new(&d, wire->data, wire->len, 3);
    assert_null(d.mem); /* taken */
    return job;
}

static void
test_rcw_job_first_settle_wins(void **state)
{
    (void)state;
    struct buf wire = BUF_INIT;
    const enum rcw_job_state ends[] = {RCW_JOB_DONE, RCW_JOB_ABORTED, RCW_JOB_RELEASED};
    for (size_t i = 0; i < N_OF(ends); i++) {
        struct rcw_job *job = job_of(&wire, PHASE_DESIGNING, NULL);
        assert_int_equal(rcw_job_state(job), RCW_JOB_RUNNING);
        assert_false(rcw_job_cancelled(job));
        assert_false(rcw_job_settle(job, RCW_JOB_RUNNING));
        assert_true(rcw_job_settle(job, ends[i]));
        for (size_t j = 0; j < N_OF(ends); j++) {
            assert_false(rcw_job_settle(job, ends[j]));
        }
        assert_int_equal(rcw_job_state(job), ends[i]);
        assert_int_equal(rcw_job_cancelled(job), ends[i] != RCW_JOB_DONE);
        assert_false(rcw_job_wait(job, 1000)); /* returns at once: not running */
        rcw_job_free(job);
    }
    buf_release(&wire);
}

static void *
abort_soon(void *arg)
{
    struct rcw_job *job = arg;
    struct timespec ts = {0, 20 * 1000000L};
    nanosleep(&ts, NULL);
    (void)rcw_job_settle(job, RCW_JOB_ABORTED);
    return NULL;
}

static void
test_rcw_job_wait_is_cancellable(void **state)
{
    (void)state;
    struct buf wire = BUF_INIT;
    struct rcw_job *job = job_of(&wire, PHASE_TRAINING, NULL);

    int64_t t0 = clock_mono_ms();
    assert_true(rcw_job_wait(job, 30)); /* times out still running */
    assert_true(clock_mono_ms() - t0 >= 30);

    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, abort_soon, job), 0);
    t0 = clock_mono_ms();
    assert_false(rcw_job_wait(job, 60000));
    assert_true(clock_mono_ms() - t0 < 10000);
    pthread_join(th, NULL);
    assert_true(rcw_job_cancelled(job));
    rcw_job_free(job);
    buf_release(&wire);
}

static void
test_rcw_job_ids_params_options(void **state)
{
    (void)state;
    struct buf wire = BUF_INIT;
    struct rcw_job *job = job_of(&wire, PHASE_DESIGNING, "{\"symbol\":\"BTC\",\"n\":[1,2.5]}");
    size_t n = 0;
    double x = 0;

    assert_string_equal(rcw_job_research_id(job), "r-1");
    assert_string_equal(rcw_job_dispatch_id(job), "d-1");
    assert_string_equal(rcw_job_worker_id(job), "w-1");
    assert_string_equal(rcw_job_phase(job), "designing");
    assert_string_equal(rcw_job_worker_type(job), "design");
    assert_int_equal(rcw_job_attempt(job), 2);
    assert_int_equal(rcw_job_slot(job), 3);
    assert_non_null(rcw_job_params(job, &n));
    assert_int_equal(n, 3);
    assert_string_equal(rcw_job_param_str(job, "brief"), "find alpha");
    assert_null(rcw_job_param_str(job, "nope"));
    assert_false(rcw_job_param_number(job, "brief", &x));
    assert_non_null(rcw_job_options(job, &n));
    assert_true(n > 0);
    assert_string_equal(rcw_job_options_json(job), "{\"symbol\":\"BTC\",\"n\":[1,2.5]}");
    const char *in = rcw_job_input_json(job);
    assert_non_null(strstr(in, "\"params\":{\"brief\":\"find alpha\",\"model\":\"m-1\","
                               "\"options\":{\"symbol\":\"BTC\",\"n\":[1,2.5]}}"));
    assert_non_null(strstr(in, "\"dispatch_id\":\"d-1\""));
    size_t len = strlen(in);
    const char *tail = ",\"options\":{\"symbol\":\"BTC\",\"n\":[1,2.5]}}";
    assert_string_equal(in + len - strlen(tail), tail);
    struct buf mp = BUF_INIT; /* the input is JSON */
    assert_int_equal(json_to_msgpack(in, len, &mp, NULL), RC_OK);
    buf_release(&mp);
    rcw_job_free(job);

    job = job_of(&wire, PHASE_TRAINING, NULL);
    assert_null(rcw_job_options(job, &n));
    assert_int_equal(n, 0);
    assert_string_equal(rcw_job_options_json(job), "null");
    in = rcw_job_input_json(job);
    assert_string_equal(in + strlen(in) - strlen(",\"options\":null}"), ",\"options\":null}");
    rcw_job_free(job);
    buf_release(&wire);
}

static void
test_rcw_job_progress(void **state)
{
    (void)state;
    struct buf wire = BUF_INIT;
    struct rcw_job *job = job_of(&wire, PHASE_TRAINING, NULL);
    double p = 0;
    char step[RCW_STEP_MAX + 1];
    char longer[RCW_STEP_MAX + 50];

    assert_false(rcw_job_take_progress(job, &p, step));
    rcw_job_progress(job, 0.4, "epoch 4/10");
    assert_true(rcw_job_take_progress(job, &p, step));
    assert_true(p == 0.4);
    assert_string_equal(step, "epoch 4/10");
    assert_false(rcw_job_take_progress(job, &p, step)); /* taken */
    rcw_job_progress(job, 7, NULL);
    assert_true(rcw_job_take_progress(job, &p, step));
    assert_true(p == 1.0);
    assert_string_equal(step, "");
    rcw_job_progress(job, -1, NULL);
    assert_true(rcw_job_take_progress(job, &p, step));
    assert_true(p == 0.0);
    rcw_job_progress(job, NAN, "x");
    assert_true(rcw_job_take_progress(job, &p, step));
    assert_true(isnan(p));
    memset(longer, 'a', sizeof(longer) - 1);
    longer[sizeof(longer) - 1] = '\0';
    rcw_job_progress(job, 0.5, longer);
    assert_true(rcw_job_take_progress(job, &p, step));
    assert_int_equal(strlen(step), RCW_STEP_MAX);
    rcw_job_free(job);
    buf_release(&wire);
}

static void
test_rcw_job_result_checked(void **state)
{
    (void)state;
    struct buf wire = BUF_INIT;
    struct completion c;

    /* A good design result. */
    struct rcw_job *job = job_of(&wire, PHASE_DESIGNING, NULL);
    rcw_job_result_str(job, "strategy_name", "first");
    rcw_job_result_str(job, "strategy_name", "mom_1"); /* replaced */
    rcw_job_result_int(job, "input_tokens", 10);
    rcw_job_result_double(job, "cost_usd", 0.25);
    rcw_job_result_bool(job, "extra", true);
    assert_true(rcw_job_settle(job, RCW_JOB_DONE));
    assert_false(rcw_job_completion(job, false, &c));
    assert_int_equal(c.status, COMPLETION_COMPLETED);
    assert_string_equal(c.dispatch_id, "d-1");
    assert_string_equal(c.worker_id, "w-1");
    assert_int_equal(c.n_result, 4);
    const struct kv *name = kv_find(c.result, c.n_result, "strategy_name");
    assert_non_null(name);
    assert_string_equal(name->val.s, "mom_1");
    rcw_job_free(job);

    /* Missing its required key: failed, with the coordinator's words. */
    job = job_of(&wire, PHASE_DESIGNING, NULL);
    rcw_job_result_double(job, "cost_usd", 0.25);
    assert_true(rcw_job_completion(job, false, &c));
    assert_int_equal(c.status, COMPLETION_FAILED);
    assert_string_equal(c.error, "bad result: strategy_name: required");
    assert_int_equal(c.n_result, 0);
    rcw_job_free(job);

    /* Unchecked (a test knob): published as it is. */
    job = job_of(&wire, PHASE_DESIGNING, NULL);
    rcw_job_result_double(job, "cost_usd", -1);
    assert_false(rcw_job_completion(job, true, &c));
    assert_int_equal(c.status, COMPLETION_COMPLETED);
    assert_int_equal(c.n_result, 1);
    rcw_job_free(job);

    /* Failed wins over a result. */
    job = job_of(&wire, PHASE_TRAINING, NULL);
    rcw_job_result_double(job, "accuracy", 0.5);
    rcw_job_fail(job, "first");
    rcw_job_fail(job, "out of memory on gpu 0");
    assert_false(rcw_job_completion(job, false, &c));
    assert_int_equal(c.status, COMPLETION_FAILED);
    assert_string_equal(c.error, "out of memory on gpu 0");
    assert_null(c.result);
    rcw_job_free(job);

    job = job_of(&wire, PHASE_TRAINING, NULL);
    rcw_job_fail(job, NULL);
    assert_false(rcw_job_completion(job, false, &c));
    assert_string_equal(c.error, "worker reported failure");
    rcw_job_free(job);
    buf_release(&wire);
}

static void
test_rcw_job_result_from_json(void **state)
{
    (void)state;
    struct buf wire = BUF_INIT;
    struct completion c;
    struct rc_err err = RC_ERR_INIT;

    struct rcw_job *job = job_of(&wire, PHASE_TRAINING, NULL);
    rcw_job_result_str(job, "gone", "replaced by the JSON");
    const char *good = " {\"accuracy\": 0.61, \"final_loss\": 0.3, \"model_path\": \"/m/1\","
                       " \"epochs\": 10, \"notes\": {\"a\": 1}} ";
    assert_int_equal(rcw_job_result_json(job, good, strlen(good), &err), RC_OK);
    assert_false(rcw_job_completion(job, false, &c));
    assert_int_equal(c.status, COMPLETION_COMPLETED);
    assert_null(kv_find(c.result, c.n_result, "gone"));
    const struct kv *acc = kv_find(c.result, c.n_result, "accuracy");
    assert_non_null(acc);
    assert_int_equal(acc->val.kind, VALUE_FLOAT);
    assert_int_equal(kv_find(c.result, c.n_result, "epochs")->val.kind, VALUE_INT);
    assert_string_equal(kv_find(c.result, c.n_result, "model_path")->val.s, "/m/1");
    rcw_job_free(job);

    job = job_of(&wire, PHASE_TRAINING, NULL);
    const char *wrong = "{\"accuracy\": {\"x\": 1}}";
    assert_int_equal(rcw_job_result_json(job, wrong, strlen(wrong), &err), RC_OK);
    assert_true(rcw_job_completion(job, false, &c));
    assert_non_null(strstr(c.error, "bad result: accuracy"));
    rcw_job_free(job);

    job = job_of(&wire, PHASE_TRAINING, NULL);
    const char *bad[] = {"", "[1,2]", "{\"a\":", "42", "{\"a\":1} x"};
    for (size_t i = 0; i < N_OF(bad); i++) {
        if (rcw_job_result_json(job, bad[i], strlen(bad[i]), &err) != RC_EPROTO) {
            fail_msg("case %zu: '%s' accepted", i, bad[i]);
        }
    }
    rcw_job_free(job);
    buf_release(&wire);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rcw_job_first_settle_wins),
        cmocka_unit_test(test_rcw_job_wait_is_cancellable),
        cmocka_unit_test(test_rcw_job_ids_params_options),
        cmocka_unit_test(test_rcw_job_progress),
        cmocka_unit_test(test_rcw_job_result_checked),
        cmocka_unit_test(test_rcw_job_result_from_json),
    };
    return cmocka_run_group_tests_name("rcw_job", tests, NULL, NULL);
}
