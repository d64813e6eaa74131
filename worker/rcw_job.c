/* SPDX-License-Identifier: MIT
 * rcw_job: one dispatch being run. The mutex guards `state`, the progress fields and the
 * condition variable; everything else is written by one thread at a time: the dispatch before
 * the job thread starts (then read-only), the result and error by the job thread until the
 * handler returns (then read by the I/O thread, after the done queue's mutex). */
#include "worker/rcw_job.h"

#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/buf.h"
#include "common/xalloc.h"
#include "contract/fields.h"
#include "contract/limits.h"
#include "contract/phase.h"
#include "proto/json.h"
#include "proto/result.h"

struct rcw_job {
    pthread_mutex_t mu;
    pthread_cond_t cv; /* CLOCK_MONOTONIC: signalled when the state changes */
    enum rcw_job_state state;
    struct msg m; /* the decoded dispatch (owned) */
    char *raw;    /* its bytes (owned), for rcw_job_input_json */
    size_t raw_len;
    size_t slot;
    /* Progress, under mu. */
    double progress; /* NaN: none */
    char step[RCW_STEP_MAX + 1];
    bool progress_changed;
    /* The handler's side. */
    struct kv *result; /* keys and strings owned */
    size_t n_result;
    size_t cap_result;
    char *error; /* rcw_job_fail's (owned), NULL: not failed */
    char *options_json;
    char *input_json;
    struct rcw_job_link link;
};

struct rcw_job *
rcw_job_new(struct msg *m, const char *raw, size_t len, size_t slot)
{
    struct rcw_job *job = xcalloc(1, sizeof(*job));
    pthread_condattr_t ca;

    pthread_mutex_init(&job->mu, NULL);
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&job->cv, &ca);
    pthread_condattr_destroy(&ca);
    job->state = RCW_JOB_RUNNING;
    job->m = *m;
    *m = (struct msg)MSG_INIT;
    job->raw = xmalloc(len > 0 ? len : 1);
    memcpy(job->raw, raw, len);
    job->raw_len = len;
    job->slot = slot;
    job->progress = NAN;
    return job;
}

static void
result_clear(struct rcw_job *job)
{
    for (size_t i = 0; i < job->n_result; i++) {
        free((char *)(uintptr_t)job->result[i].key);
        if (job->result[i].val.kind == VALUE_STR) {
            free((char *)(uintptr_t)job->result[i].val.s);
        }
    }
    job->n_result = 0;
}

void
rcw_job_free(struct rcw_job *job)
{
    if (job == NULL) {
        return;
    }
    result_clear(job);
    free(job->result);
    free(job->error);
    free(job->options_json);
    free(job->input_json);
    free(job->raw);
    msg_release(&job->m);
    pthread_cond_destroy(&job->cv);
    pthread_mutex_destroy(&job->mu);
    free(job);
}

bool
rcw_job_settle(struct rcw_job *job, enum rcw_job_state to)
{
    pthread_mutex_lock(&job->mu);
    bool moved = job->state == RCW_JOB_RUNNING && to != RCW_JOB_RUNNING;
    if (moved) {
        job->state = to;
        pthread_cond_broadcast(&job->cv);
    }
    pthread_mutex_unlock(&job->mu);
    return moved;
}

enum rcw_job_state
rcw_job_state(struct rcw_job *job)
{
    pthread_mutex_lock(&job->mu);
    enum rcw_job_state s = job->state;
    pthread_mutex_unlock(&job->mu);
    return s;
}

size_t
rcw_job_slot(const struct rcw_job *job)
{
    return job->slot;
}

const struct dispatch *
rcw_job_dispatch(const struct rcw_job *job)
{
    return &job->m.u.dispatch;
}

struct rcw_job_link *
rcw_job_link(struct rcw_job *job)
{
    return &job->link;
}

bool
rcw_job_take_progress(struct rcw_job *job, double *progress, char *step)
{
    pthread_mutex_lock(&job->mu);
    bool changed = job->progress_changed;
    if (changed) {
        *progress = job->progress;
        memcpy(step, job->step, sizeof(job->step));
        job->progress_changed = false;
    }
    pthread_mutex_unlock(&job->mu);
    return changed;
}

bool
rcw_job_completion(struct rcw_job *job, bool unchecked, struct completion *out)
{
    const struct dispatch *d = &job->m.u.dispatch;
    struct rc_err err = RC_ERR_INIT;
    bool bad = false;

    *out = (struct completion){.dispatch_id = d->dispatch_id,
                               .research_id = d->research_id,
                               .worker_id = d->worker_id,
                               .status = COMPLETION_COMPLETED,
                               .result = job->result,
                               .n_result = job->n_result};
    if (job->error != NULL) {
        out->status = COMPLETION_FAILED;
        out->error = job->error;
        out->result = NULL;
        out->n_result = 0;
        return false;
    }
    if (!unchecked && result_check(d->worker_type, job->result, job->n_result, &err) != RC_OK) {
        /* Kept in the job so that `out` may borrow it. */
        job->error = xstrdup(err.msg);
        out->status = COMPLETION_FAILED;
        out->error = job->error;
        out->result = NULL;
        out->n_result = 0;
        bad = true;
    }
    return bad;
}

/* ---- the handler's side (rcw.h) ------------------------------------------------------------ */

const char *
rcw_job_research_id(const struct rcw_job *job)
{
    return job->m.u.dispatch.research_id;
}

const char *
rcw_job_dispatch_id(const struct rcw_job *job)
{
    return job->m.u.dispatch.dispatch_id;
}

const char *
rcw_job_worker_id(const struct rcw_job *job)
{
    return job->m.u.dispatch.worker_id;
}

const char *
rcw_job_phase(const struct rcw_job *job)
{
    return phase_name(job->m.u.dispatch.phase);
}

const char *
rcw_job_worker_type(const struct rcw_job *job)
{
    return worker_type_name(job->m.u.dispatch.worker_type);
}

int64_t
rcw_job_attempt(const struct rcw_job *job)
{
    return job->m.u.dispatch.attempt;
}

const struct kv *
rcw_job_params(const struct rcw_job *job, size_t *n)
{
    *n = job->m.u.dispatch.n_params;
    return job->m.u.dispatch.params;
}

const char *
rcw_job_param_str(const struct rcw_job *job, const char *key)
{
    const struct dispatch *d = &job->m.u.dispatch;
    const struct kv *p = kv_find(d->params, d->n_params, key);
    return p != NULL && p->val.kind == VALUE_STR ? p->val.s : NULL;
}

bool
rcw_job_param_number(const struct rcw_job *job, const char *key, double *out)
{
    const struct dispatch *d = &job->m.u.dispatch;
    const struct kv *p = kv_find(d->params, d->n_params, key);
    return p != NULL && value_number(&p->val, out);
}

const char *
rcw_job_options(const struct rcw_job *job, size_t *len)
{
    const struct dispatch *d = &job->m.u.dispatch;
    const struct kv *p = kv_find(d->params, d->n_params, PARAM_OPTIONS);
    if (p == NULL || p->val.kind != VALUE_RAW) {
        *len = 0;
        return NULL;
    }
    *len = p->val.raw_len;
    return p->val.s;
}

const char *
rcw_job_options_json(const struct rcw_job *job)
{
    struct rcw_job *mut = (struct rcw_job *)(uintptr_t)job; /* a cache filled on first use */
    if (mut->options_json == NULL) {
        size_t len = 0;
        const char *mp = rcw_job_options(job, &len);
        struct buf text = BUF_INIT;
        /* The coordinator forwards only JSON-like options (it stores them as JSON). */
        if (mp == NULL || json_from_msgpack(mp, len, &text, NULL) != RC_OK) {
            buf_reset(&text);
            buf_puts(&text, "null");
        }
        mut->options_json = buf_detach(&text);
    }
    return mut->options_json;
}

const char *
rcw_job_input_json(const struct rcw_job *job)
{
    struct rcw_job *mut = (struct rcw_job *)(uintptr_t)job;
    if (mut->input_json == NULL) {
        /* The dispatch message itself as JSON (its params with them), then `options` again
         * at the top, where a program finds it without knowing the phase's params. */
        struct buf text = BUF_INIT;
        if (json_from_msgpack(job->raw, job->raw_len, &text, NULL) != RC_OK || text.len < 2 ||
            text.data[text.len - 1] != '}') {
            buf_reset(&text);
            buf_puts(&text, "{\"params\":{}");
        } else {
            text.len--; /* reopen the object */
        }
        buf_puts(&text, ",\"options\":");
        buf_puts(&text, rcw_job_options_json(job));
        buf_putc(&text, '}');
        mut->input_json = buf_detach(&text);
    }
    return mut->input_json;
}

void
rcw_job_progress(struct rcw_job *job, double progress, const char *step)
{
    if (!isnan(progress)) {
        progress = progress < 0 ? 0 : progress > 1 ? 1 : progress;
    }
    pthread_mutex_lock(&job->mu);
    job->progress = progress;
    snprintf(job->step, sizeof(job->step), "%s", step != NULL ? step : "");
    if (!limits_is_text(job->step, strlen(job->step))) {
        job->step[0] = '\0'; /* cut inside a UTF-8 sequence, or not text: shown as none */
    }
    job->progress_changed = true;
    pthread_mutex_unlock(&job->mu);
}

bool
rcw_job_cancelled(const struct rcw_job *job)
{
    struct rcw_job *mut = (struct rcw_job *)(uintptr_t)job; /* the mutex, not the job */
    enum rcw_job_state s = rcw_job_state(mut);
    return s == RCW_JOB_ABORTED || s == RCW_JOB_RELEASED;
}

bool
rcw_job_wait(struct rcw_job *job, int64_t ms)
{
    struct timespec until;
    clock_gettime(CLOCK_MONOTONIC, &until);
    ms = ms < 0 ? 0 : ms;
    until.tv_sec += (time_t)(ms / 1000);
    until.tv_nsec += (long)(ms % 1000) * 1000000L;
    if (until.tv_nsec >= 1000000000L) {
        until.tv_sec++;
        until.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&job->mu);
    /* DONE cannot happen while the handler waits here: only its return settles it so. */
    while (job->state == RCW_JOB_RUNNING) {
        if (pthread_cond_timedwait(&job->cv, &job->mu, &until) != 0) {
            break; /* timed out */
        }
    }
    bool ok = job->state == RCW_JOB_RUNNING;
    pthread_mutex_unlock(&job->mu);
    return ok;
}

/* The entry for `key`, added when new (its old string value freed when replaced). */
static struct kv *
result_slot(struct rcw_job *job, const char *key)
{
    for (size_t i = 0; i < job->n_result; i++) {
        if (strcmp(job->result[i].key, key) == 0) {
            if (job->result[i].val.kind == VALUE_STR) {
                free((char *)(uintptr_t)job->result[i].val.s);
            }
            job->result[i].val = value_nil();
            return &job->result[i];
        }
    }
    if (job->n_result == job->cap_result) {
        job->cap_result = job->cap_result == 0 ? 8 : 2 * job->cap_result;
        job->result = xrealloc(job->result, job->cap_result * sizeof(*job->result));
    }
    struct kv *e = &job->result[job->n_result++];
    e->key = xstrdup(key);
    e->val = value_nil();
    return e;
}

void
rcw_job_result_str(struct rcw_job *job, const char *key, const char *val)
{
    struct kv *e = result_slot(job, key);
    e->val = val != NULL && val[0] != '\0' ? value_str(xstrdup(val)) : value_nil();
}

void
rcw_job_result_int(struct rcw_job *job, const char *key, int64_t val)
{
    result_slot(job, key)->val = value_int(val);
}

void
rcw_job_result_double(struct rcw_job *job, const char *key, double val)
{
    result_slot(job, key)->val = value_float(val);
}

void
rcw_job_result_bool(struct rcw_job *job, const char *key, bool val)
{
    result_slot(job, key)->val = value_bool(val);
}

enum rc_rc
rcw_job_result_json(struct rcw_job *job, const char *text, size_t len, struct rc_err *err)
{
    struct buf mp = BUF_INIT;
    struct msg m = MSG_INIT;

    enum rc_rc rc = json_to_msgpack(text, len, &mp, err);
    if (rc == RC_OK) {
        rc = msg_decode_result(mp.data, mp.len, &m, err);
    }
    if (rc == RC_OK) {
        result_clear(job);
        for (size_t i = 0; i < m.u.completion.n_result; i++) {
            const struct kv *e = &m.u.completion.result[i];
            struct kv *to = result_slot(job, e->key);
            to->val = e->val;
            if (e->val.kind == VALUE_STR) {
                to->val.s = xstrdup(e->val.s);
            } else if (e->val.kind == VALUE_MAP || e->val.kind == VALUE_RAW) {
                to->val.kind = VALUE_OTHER; /* no result key takes one: "wrong type" */
            }
        }
    }
    msg_release(&m);
    buf_release(&mp);
    return rc;
}

void
rcw_job_fail(struct rcw_job *job, const char *error)
{
    free(job->error);
    if (error == NULL || error[0] == '\0') {
        error = "worker reported failure";
    }
    size_t len = strlen(error);
    len = len > LIMITS_STRING_MAX ? LIMITS_STRING_MAX : len;
    /* Cut back to a whole UTF-8 character: the error must stay text (contract §3). */
    while (len > 0 && !limits_is_text(error, len)) {
        len--;
    }
    job->error = xmalloc(len + 1);
    memcpy(job->error, error, len);
    job->error[len] = '\0';
}
