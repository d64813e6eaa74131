/* SPDX-License-Identifier: MIT
 * it_kafka: the env's Kafka side: a producer that waits for each delivery, the topic readers
 * the env owns, and the decoded views of the events, dead-letter and dispatch topics. */
#include "tests/support/test.h"

#include "tests/support/it_env.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <librdkafka/rdkafka.h>

#include "common/buf.h"
#include "common/clock.h"
#include "common/xalloc.h"
#include "tests/support/it_env_internal.h"
#include "tests/support/it_topic.h"

#define PRODUCE_TIMEOUT_MS 15000
#define MESSAGE_MAX_BYTES "4194304" /* room for a 2 MiB payload plus framing */
#define SUMMARY_MAX 60              /* messages listed when a wait times out */

/* ---- producer ----------------------------------------------------------------------------- */

static void
delivered(void *owner, const rd_kafka_message_t *rkm)
{
    struct it_env *env = owner;

    env->dr_count++;
    env->dr_err = rkm->err;
}

enum rc_rc
it_kafka_start(struct it_env *env, struct rc_err *err)
{
    static const char *const defaults[] = {
        "message.max.bytes", MESSAGE_MAX_BYTES,
        "linger.ms", "0",
        "message.timeout.ms", "10000",
        "topic.metadata.refresh.interval.ms", "1000",
        NULL,
    };
    const struct kclient_spec spec = {.type = RD_KAFKA_PRODUCER,
                                      .role = "test producer",
                                      .defaults = defaults,
                                      .owner = env,
                                      .delivered = delivered};
    enum rc_rc rc = it_kafka_client(env->bootstrap, &spec, &env->kproducer, err);
    if (rc == RC_OK) {
        env->producer = kclient_rk(env->kproducer);
    }
    return rc;
}

void
it_kafka_stop(struct it_env *env)
{
    for (size_t i = 0; i < env->n_topics; i++) {
        it_topic_free(env->topics[i]);
    }
    free(env->topics);
    env->topics = NULL;
    env->n_topics = 0;
    env->cap_topics = 0;
    env->events = NULL;
    env->deadletters = NULL;
    memset(env->dispatches, 0, sizeof env->dispatches);
    if (env->producer != NULL) {
        rd_kafka_flush(env->producer, 1000);
        kclient_free(env->kproducer);
        env->kproducer = NULL;
        env->producer = NULL;
    }
}

void
it_env_produce(struct it_env *env, const char *topic_suffix, const char *key, const void *data,
               size_t len)
{
    struct buf topic = BUF_INIT;

    buf_printf(&topic, "%s%s", env->topic_prefix, topic_suffix);
    rd_kafka_topic_t *rkt = rd_kafka_topic_new(env->producer, topic.data, NULL);
    if (rkt == NULL) {
        it_fail(env, "produce to %s: %s", topic.data, rd_kafka_err2str(rd_kafka_last_error()));
        goto out;
    }
    /* rd_kafka_produce takes a non-const payload; hand it a copy it frees (F_FREE). */
    void *copy = xmalloc(len > 0 ? len : 1);
    if (len > 0) {
        memcpy(copy, data, len);
    }
    env->dr_count = 0;
    env->dr_err = RD_KAFKA_RESP_ERR_NO_ERROR;
    if (rd_kafka_produce(rkt, RD_KAFKA_PARTITION_UA, RD_KAFKA_MSG_F_FREE, copy, len, key,
                         key != NULL ? strlen(key) : 0, NULL) != 0) {
        free(copy);
        rd_kafka_topic_destroy(rkt);
        it_fail(env, "produce %zu bytes to %s: %s", len, topic.data,
                rd_kafka_err2str(rd_kafka_last_error()));
        goto out;
    }
    rd_kafka_topic_destroy(rkt);
    rd_kafka_resp_err_t ferr = rd_kafka_flush(env->producer, PRODUCE_TIMEOUT_MS);
    if (ferr != RD_KAFKA_RESP_ERR_NO_ERROR || env->dr_count != 1 ||
        env->dr_err != RD_KAFKA_RESP_ERR_NO_ERROR) {
        it_fail(env, "produce %zu bytes to %s: %s", len, topic.data,
                rd_kafka_err2str(ferr != RD_KAFKA_RESP_ERR_NO_ERROR ? ferr : env->dr_err));
    }
out:
    buf_release(&topic);
}

static void
send_msg(struct it_env *env, const struct msg *m, const char *topic_suffix, const char *key)
{
    struct buf wire = BUF_INIT;

    msg_encode(m, &wire);
    it_env_produce(env, topic_suffix, key, wire.data, wire.len);
    buf_release(&wire);
}

void
it_send_trigger(struct it_env *env, const struct trigger *t)
{
    struct msg m = MSG_INIT;

    m.kind = MSG_TRIGGER;
    m.ts_ms = clock_now_ms();
    m.u.trigger = *t;
    send_msg(env, &m, "triggers", t->request_id);
}

void
it_send_triggers(struct it_env *env, const struct trigger *t, size_t n)
{
    struct buf topic = BUF_INIT, wire = BUF_INIT;
    buf_printf(&topic, "%striggers", env->topic_prefix);
    rd_kafka_topic_t *rkt = rd_kafka_topic_new(env->producer, topic.data, NULL);
    if (rkt == NULL) {
        it_fail(env, "produce to %s: %s", topic.data, rd_kafka_err2str(rd_kafka_last_error()));
    }
    env->dr_count = 0;
    env->dr_err = RD_KAFKA_RESP_ERR_NO_ERROR;
    for (size_t i = 0; i < n; i++) {
        struct msg m = MSG_INIT;
        m.kind = MSG_TRIGGER;
        m.ts_ms = clock_now_ms();
        m.u.trigger = t[i];
        buf_reset(&wire);
        msg_encode(&m, &wire);
        if (rd_kafka_produce(rkt, RD_KAFKA_PARTITION_UA, RD_KAFKA_MSG_F_COPY, wire.data, wire.len,
                             t[i].request_id, strlen(t[i].request_id), NULL) != 0) {
            it_fail(env, "produce to %s: %s", topic.data, rd_kafka_err2str(rd_kafka_last_error()));
        }
    }
    rd_kafka_topic_destroy(rkt);
    rd_kafka_resp_err_t ferr = rd_kafka_flush(env->producer, PRODUCE_TIMEOUT_MS);
    if (ferr != RD_KAFKA_RESP_ERR_NO_ERROR || env->dr_count != (int)n ||
        env->dr_err != RD_KAFKA_RESP_ERR_NO_ERROR) {
        it_fail(env, "produce %zu triggers: %s", n,
                rd_kafka_err2str(ferr != RD_KAFKA_RESP_ERR_NO_ERROR ? ferr : env->dr_err));
    }
    buf_release(&wire);
    buf_release(&topic);
}

void
it_send_cancel(struct it_env *env, const struct cancel *c)
{
    struct msg m = MSG_INIT;

    m.kind = MSG_CANCEL;
    m.ts_ms = clock_now_ms();
    m.u.cancel = *c;
    send_msg(env, &m, "triggers", c->research_id);
}

void
it_send_resume(struct it_env *env, const struct resume *r)
{
    struct msg m = MSG_INIT;

    m.kind = MSG_RESUME;
    m.ts_ms = clock_now_ms();
    m.u.resume = *r;
    send_msg(env, &m, "triggers", r->research_id);
}

void
it_send_completion(struct it_env *env, const struct completion *c)
{
    struct msg m = MSG_INIT;

    m.kind = MSG_COMPLETION;
    m.ts_ms = clock_now_ms();
    m.u.completion = *c;
    send_msg(env, &m, "completions", c->research_id);
}

/* ---- readers ------------------------------------------------------------------------------ */

static struct it_topic *
open_reader(struct it_env *env, const char *topic_suffix, int decode_as)
{
    struct buf topic = BUF_INIT;
    struct rc_err err = RC_ERR_INIT;
    struct it_topic *t = NULL;

    buf_printf(&topic, "%s%s", env->topic_prefix, topic_suffix);
    if (it_topic_new(&t, env->bootstrap, topic.data, decode_as, &err) != RC_OK) {
        buf_release(&topic);
        it_fail(env, "open reader: %s", err.msg);
        return NULL;
    }
    buf_release(&topic);
    env->topics = xgrow(env->topics, &env->cap_topics, env->n_topics + 1, sizeof *env->topics);
    env->topics[env->n_topics++] = t;
    return t;
}

struct it_topic *
it_topic_open(struct it_env *env, const char *topic_suffix)
{
    return open_reader(env, topic_suffix, -1);
}

struct it_topic *
it_topic_open_as(struct it_env *env, const char *topic_suffix, enum msg_topic as)
{
    return open_reader(env, topic_suffix, (int)as);
}

struct it_topic *
it_events(struct it_env *env)
{
    if (env->events == NULL) {
        env->events = it_topic_open_as(env, "events", MSG_TOPIC_EVENTS);
    }
    return env->events;
}

struct it_topic *
it_deadletters(struct it_env *env)
{
    if (env->deadletters == NULL) {
        env->deadletters = it_topic_open_as(env, "deadletter", MSG_TOPIC_DEADLETTER);
    }
    return env->deadletters;
}

struct it_topic *
it_dispatches(struct it_env *env, enum worker_type wt)
{
    RC_ASSERT((int)wt >= 0 && wt < WORKER_TYPE_COUNT);
    if (env->dispatches[wt] == NULL) {
        struct buf suffix = BUF_INIT;
        buf_printf(&suffix, "dispatch.%s", worker_type_name(wt));
        env->dispatches[wt] = it_topic_open_as(env, suffix.data, MSG_TOPIC_DISPATCH);
        buf_release(&suffix);
    }
    return env->dispatches[wt];
}

/* ---- decoded views ------------------------------------------------------------------------ */

static bool
str_eq(const char *a, const char *b)
{
    return a != NULL && b != NULL && strcmp(a, b) == 0;
}

/* The decoded message, failing the test when the coordinator wrote one that does not decode. */
static const struct msg *
decoded(struct it_env *env, struct it_topic *t, const struct it_msg *m)
{
    if (m->decoded == NULL) {
        it_fail(env, "%s: message at partition %d offset %lld does not decode: %s",
                it_topic_name(t), (int)m->partition, (long long)m->offset,
                m->decode_error != NULL ? m->decode_error : "?");
    }
    return m->decoded;
}

/* Print what a topic holds, for a wait that timed out. */
static void
summarize(struct it_topic *t)
{
    size_t n = it_topic_count(t);
    size_t first = n > SUMMARY_MAX ? n - SUMMARY_MAX : 0;

    fprintf(stderr, "----- %s: %zu messages%s -----\n", it_topic_name(t), n,
            first > 0 ? " (the last shown)" : "");
    for (size_t i = first; i < n; i++) {
        const struct it_msg *m = it_topic_msg(t, i);
        const struct msg *d = m->decoded;
        if (d == NULL) {
            fprintf(stderr, "  [%d:%lld] key=%s (%s)\n", (int)m->partition, (long long)m->offset,
                    m->key != NULL ? m->key : "-",
                    m->decode_error != NULL ? m->decode_error : "raw");
        } else if (d->kind == MSG_EVENT) {
            const struct event *e = &d->u.event;
            fprintf(stderr, "  [%d:%lld] %s research=%s request=%s reason=%s phase=%s\n",
                    (int)m->partition, (long long)m->offset, event_type_name(e->type),
                    e->research_id != NULL ? e->research_id : "-",
                    e->request_id != NULL ? e->request_id : "-",
                    e->reason != NULL ? e->reason : "-", phase_name(e->phase));
        } else if (d->kind == MSG_DISPATCH) {
            fprintf(stderr, "  [%d:%lld] dispatch research=%s worker=%s attempt=%lld\n",
                    (int)m->partition, (long long)m->offset, d->u.dispatch.research_id,
                    d->u.dispatch.worker_id, (long long)d->u.dispatch.attempt);
        } else {
            fprintf(stderr, "  [%d:%lld] %s key=%s\n", (int)m->partition, (long long)m->offset,
                    msg_kind_name(d->kind), m->key != NULL ? m->key : "-");
        }
    }
}

/* Which id of an event a lookup matches on. */
enum match_on { MATCH_RESEARCH, MATCH_REQUEST };

/* The index of the first event of `type` whose id matches (NULL id: any), from `from`; n when
 * none. */
static size_t
event_scan(struct it_env *env, struct it_topic *t, size_t from, enum event_type type,
           enum match_on on, const char *id)
{
    size_t n = it_topic_count(t);

    for (size_t i = from; i < n; i++) {
        const struct msg *d = decoded(env, t, it_topic_msg(t, i));
        if (d == NULL) {
            return n;
        }
        const struct event *e = &d->u.event;
        const char *have = on == MATCH_RESEARCH ? e->research_id : e->request_id;
        if (e->type == type && (id == NULL || str_eq(have, id))) {
            return i;
        }
    }
    return n;
}

const struct event *
it_event_find(struct it_env *env, enum event_type type, const char *research_id)
{
    struct it_topic *t = it_events(env);

    it_topic_poll(t, 0);
    size_t i = event_scan(env, t, 0, type, MATCH_RESEARCH, research_id);
    return i < it_topic_count(t) ? &it_topic_msg(t, i)->decoded->u.event : NULL;
}

size_t
it_event_count(struct it_env *env, enum event_type type, const char *research_id)
{
    struct it_topic *t = it_events(env);
    size_t count = 0;

    it_topic_poll(t, 0);
    for (size_t i = event_scan(env, t, 0, type, MATCH_RESEARCH, research_id); i < it_topic_count(t);
         i = event_scan(env, t, i + 1, type, MATCH_RESEARCH, research_id)) {
        count++;
    }
    return count;
}

static const struct event *
event_wait(struct it_env *env, enum event_type type, enum match_on on, const char *id,
           int timeout_ms)
{
    struct it_topic *t = it_events(env);
    int64_t deadline = clock_mono_ms() + timeout_ms;
    size_t from = 0;

    it_topic_poll(t, 0);
    for (;;) {
        size_t i = event_scan(env, t, from, type, on, id);
        if (i < it_topic_count(t)) {
            return &it_topic_msg(t, i)->decoded->u.event;
        }
        from = i;
        int64_t left = deadline - clock_mono_ms();
        if (left <= 0) {
            break;
        }
        it_topic_poll(t, left < 50 ? (int)left : 50);
    }
    summarize(t);
    it_fail(env, "no %s event with %s %s within %d ms", event_type_name(type),
            on == MATCH_RESEARCH ? "research_id" : "request_id", id != NULL ? id : "(any)",
            timeout_ms);
    return NULL;
}

const struct event *
it_event_wait(struct it_env *env, enum event_type type, const char *research_id, int timeout_ms)
{
    return event_wait(env, type, MATCH_RESEARCH, research_id, timeout_ms);
}

const struct event *
it_event_wait_request(struct it_env *env, enum event_type type, const char *request_id,
                      int timeout_ms)
{
    return event_wait(env, type, MATCH_REQUEST, request_id, timeout_ms);
}

const struct dispatch *
it_dispatch_wait(struct it_env *env, enum worker_type wt, const char *research_id, int64_t attempt,
                 int timeout_ms)
{
    struct it_topic *t = it_dispatches(env, wt);
    int64_t deadline = clock_mono_ms() + timeout_ms;
    size_t from = 0;

    it_topic_poll(t, 0);
    for (;;) {
        for (; from < it_topic_count(t); from++) {
            const struct msg *d = decoded(env, t, it_topic_msg(t, from));
            if (d == NULL) {
                return NULL;
            }
            if (d->kind == MSG_DISPATCH && str_eq(d->u.dispatch.research_id, research_id) &&
                (attempt == 0 || d->u.dispatch.attempt == attempt)) {
                return &d->u.dispatch;
            }
        }
        int64_t left = deadline - clock_mono_ms();
        if (left <= 0) {
            break;
        }
        it_topic_poll(t, left < 50 ? (int)left : 50);
    }
    summarize(t);
    it_fail(env, "no %s dispatch for %s (attempt %lld) within %d ms", worker_type_name(wt),
            research_id, (long long)attempt, timeout_ms);
    return NULL;
}

const struct deadletter *
it_deadletter_wait(struct it_env *env, size_t n, int timeout_ms)
{
    struct it_topic *t = it_deadletters(env);

    RC_ASSERT(n >= 1);
    if (!it_topic_wait_count(t, n, timeout_ms)) {
        summarize(t);
        it_fail(env, "%zu dead letters of %zu within %d ms", it_topic_count(t), n, timeout_ms);
        return NULL;
    }
    const struct msg *d = decoded(env, t, it_topic_msg(t, n - 1));
    return d != NULL ? &d->u.deadletter : NULL;
}
