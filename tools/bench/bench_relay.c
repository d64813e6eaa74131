/* SPDX-License-Identifier: MIT
 * bench-relay: the yardstick of bench's ceiling run, NOT a coordinator. It moves researches
 * through the four phases doing only what any correct coordinator must per transition: consume
 * an input; one pipelined Redis round trip per poll batch writing each research's changed
 * fields and its dispatch's outbox entry; produce the dispatch to a free worker; delete the
 * outbox entries Kafka acknowledged (in the next round trip); commit the offsets. No gates,
 * budget, lease, redispatch, dedup, events, cycle or validation beyond decoding: whatever it
 * costs is a floor for the coordinator on the same stack (docs/benchmark.md, "Ceiling run").
 * It runs with the environment of a coordinator (REDIS_URL, KAFKA_*). */
#include <librdkafka/rdkafka.h>

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "common/cfg.h"
#include "common/clock.h"
#include "common/kclient.h"
#include "common/redislink.h"
#include "common/stopsig.h"
#include "common/xalloc.h"
#include "contract/dispatchid.h"
#include "contract/fields.h"
#include "contract/keys.h"
#include "contract/limits.h"
#include "contract/outbox.h"
#include "contract/topics.h"
#include "proto/msg.h"

extern char **environ;

#define TOOL "bench-relay"
#define BATCH_MAX 1000       /* inputs per poll batch (one Redis round trip) */
#define POLL_MS 50           /* the first poll of a batch waits this long at most */
#define RELEARN_MS 100       /* at most this often re-read rc:workers:<type> on a miss */
#define PARAMS_MAX 24        /* result entries carried to the next phase */
#define SETUP_TIMEOUT_MS 10000

/* A research waiting for a worker of its next phase, with the params to send. */
struct job {
    char *research_id;
    enum phase phase;
    struct kv params[PARAMS_MAX];
    size_t n_params;
    struct job *next;
};

/* Per worker type: the workers learnt, those free, and the FIFO of researches waiting. */
struct pool {
    char **known;
    size_t n_known, cap_known;
    char **free;
    size_t n_free, cap_free;
    struct job *head, *tail;
    int64_t learnt_at_ms;
};

struct relay {
    struct cfg cfg;
    struct redislink *rl;
    struct kclient *kc, *kp;
    rd_kafka_t *consumer, *producer;
    struct pool pools[WORKER_TYPE_COUNT];
    struct buf resp;    /* this batch's pipeline, RESP */
    size_t n_cmds;
    char **acked;       /* outbox ids Kafka acknowledged, deleted in the next round trip */
    size_t n_acked, cap_acked;
    int64_t start_ms;
    uint64_t seq;
    int failed;         /* a delivery failed: stop */
};

/* ---- RESP: the pipeline is encoded here, as the coordinator's fast path does ---- */

static void
cmd(struct relay *r, size_t argc)
{
    buf_printf(&r->resp, "*%zu\r\n", argc);
    r->n_cmds++;
}

static void
arg(struct relay *r, const void *data, size_t len)
{
    buf_printf(&r->resp, "$%zu\r\n", len);
    buf_append(&r->resp, data, len);
    buf_append(&r->resp, "\r\n", 2);
}

static void
arg_s(struct relay *r, const char *s)
{
    arg(r, s, strlen(s));
}

static void
arg_i(struct relay *r, int64_t v)
{
    char n[24];
    snprintf(n, sizeof(n), "%" PRId64, v);
    arg_s(r, n);
}

static void
arg_f(struct relay *r, enum research_field f)
{
    arg_s(r, research_field_name(f));
}

/* One round trip: send the batch's commands, read every reply; an error reply is fatal. */
static enum rc_rc
flush_redis(struct relay *r, struct rc_err *err)
{
    if (r->n_cmds == 0) {
        return RC_OK;
    }
    bool opened = false;
    enum rc_rc rc = redislink_open(r->rl, &opened, err);
    redisReply **rep = xcalloc(r->n_cmds, sizeof(*rep));
    if (rc == RC_OK) {
        redislink_append(r->rl, r->resp.data, r->resp.len);
        rc = redislink_read(r->rl, rep, r->n_cmds, err);
    }
    for (size_t i = 0; rc == RC_OK && i < r->n_cmds; i++) {
        if (rep[i]->type == REDIS_REPLY_ERROR) {
            rc = redislink_reply_error(r->rl, NULL, rep[i], err);
        }
    }
    for (size_t i = 0; i < r->n_cmds; i++) {
        if (rep[i] != NULL) {
            freeReplyObject(rep[i]);
        }
    }
    free(rep);
    buf_reset(&r->resp);
    r->n_cmds = 0;
    return rc;
}

/* ---- workers ---- */

static void
push(char ***v, size_t *n, size_t *cap, char *s)
{
    *v = xgrow(*v, cap, *n + 1, sizeof(**v));
    (*v)[(*n)++] = s;
}

/* Add the members of rc:workers:<type> not known yet (free from now on). Once at the first
 * miss, then at most every RELEARN_MS while misses go on. */
static enum rc_rc
learn(struct relay *r, enum worker_type wt, struct rc_err *err)
{
    struct pool *p = &r->pools[wt];
    int64_t now = clock_mono_ms();
    if (p->learnt_at_ms != 0 && now - p->learnt_at_ms < RELEARN_MS) {
        return RC_OK;
    }
    p->learnt_at_ms = now;
    struct buf key = BUF_INIT;
    keys_workers(&key, r->cfg.redis.key_prefix, wt);
    const char *words[] = {"ZRANGE", key.data, "0", "-1"};
    const struct redislink_cmd c = {4, words};
    struct redislink_reply *rep = NULL;
    enum rc_rc rc = redislink_query(r->rl, &c, 1, &rep, err);
    buf_release(&key);
    if (rc != RC_OK) {
        return rc;
    }
    for (size_t i = 0; i < rep->n_elements; i++) {
        const char *id = rep->elements[i].str;
        bool seen = id == NULL;
        for (size_t k = 0; !seen && k < p->n_known; k++) {
            seen = strcmp(p->known[k], id) == 0;
        }
        if (!seen) {
            push(&p->known, &p->n_known, &p->cap_known, xstrdup(id));
            push(&p->free, &p->n_free, &p->cap_free, xstrdup(id));
        }
    }
    redislink_replies_free(rep, 1);
    return RC_OK;
}

/* ---- researches ---- */

static void
job_free(struct job *j)
{
    for (size_t i = 0; i < j->n_params; i++) {
        free((char *)(uintptr_t)j->params[i].key);
        if (j->params[i].val.kind == VALUE_STR) {
            free((char *)(uintptr_t)j->params[i].val.s);
        }
    }
    free(j->research_id);
    free(j);
}

static void
param(struct job *j, const char *key, struct value v)
{
    if (j->n_params == PARAMS_MAX) {
        return;
    }
    if (v.kind == VALUE_STR) {
        v.s = xstrdup(v.s);
    } else if (v.kind != VALUE_INT && v.kind != VALUE_FLOAT && v.kind != VALUE_BOOL) {
        v = value_nil();
    }
    j->params[j->n_params++] = (struct kv){xstrdup(key), v};
}

static void
enqueue(struct relay *r, struct job *j)
{
    struct pool *p = &r->pools[phase_worker_type(j->phase)];
    if (p->tail != NULL) {
        p->tail->next = j;
    } else {
        p->head = j;
    }
    p->tail = j;
}

/* A trigger: the research's hash and rc:active, then wait for a design worker. */
static void
on_trigger(struct relay *r, const struct trigger *t, int64_t now)
{
    struct buf key = BUF_INIT;
    char rid[LIMITS_ID_MAX + 1];
    snprintf(rid, sizeof(rid), "rl-%.120s", t->request_id);
    keys_research(&key, r->cfg.redis.key_prefix, rid);
    cmd(r, 2 + 2 * 7);
    arg_s(r, "HSET");
    arg_s(r, key.data);
    arg_f(r, RF_RESEARCH_ID), arg_s(r, rid);
    arg_f(r, RF_REQUEST_ID), arg_s(r, t->request_id);
    arg_f(r, RF_STATUS), arg_s(r, STATUS_RUNNING);
    arg_f(r, RF_PHASE), arg_s(r, phase_name(PHASE_PENDING));
    arg_f(r, RF_BRIEF), arg_s(r, t->brief);
    arg_f(r, RF_CREATED_AT), arg_i(r, now);
    arg_f(r, RF_UPDATED_AT), arg_i(r, now);
    keys_active(&key, r->cfg.redis.key_prefix);
    cmd(r, 4);
    arg_s(r, "ZADD"), arg_s(r, key.data), arg_i(r, now), arg_s(r, rid);
    buf_release(&key);

    struct job *j = xcalloc(1, sizeof(*j));
    j->research_id = xstrdup(rid);
    j->phase = PHASE_DESIGNING;
    param(j, "brief", value_str(t->brief));
    param(j, "model", value_str(t->model));
    enqueue(r, j);
}

/* The final write of a research. */
static void
finish(struct relay *r, const char *rid, const char *status, int64_t now)
{
    struct buf key = BUF_INIT;
    keys_research(&key, r->cfg.redis.key_prefix, rid);
    cmd(r, 2 + 2 * 5);
    arg_s(r, "HSET"), arg_s(r, key.data);
    arg_f(r, RF_STATUS), arg_s(r, status);
    arg_f(r, RF_PHASE), arg_s(r, status);
    arg_f(r, RF_LAST_PHASE), arg_s(r, phase_name(PHASE_ASSESSING));
    arg_f(r, RF_FINISHED_AT), arg_i(r, now);
    arg_f(r, RF_UPDATED_AT), arg_i(r, now);
    keys_active(&key, r->cfg.redis.key_prefix);
    cmd(r, 3);
    arg_s(r, "ZREM"), arg_s(r, key.data), arg_s(r, rid);
    keys_finished(&key, r->cfg.redis.key_prefix);
    cmd(r, 4);
    arg_s(r, "ZADD"), arg_s(r, key.data), arg_i(r, now), arg_s(r, rid);
    buf_release(&key);
}

/* The phase a dispatch id `<research_id>:<phase>:<attempt>` names (ours: see dispatchid.h). */
static bool
dispatch_phase(const char *dispatch_id, enum phase *out)
{
    const char *end = strrchr(dispatch_id, ':');
    const char *start = end;
    while (start != NULL && start > dispatch_id && start[-1] != ':') {
        start--;
    }
    char name[32];
    if (start == NULL || start == dispatch_id || end - start >= (ptrdiff_t)sizeof(name)) {
        return false;
    }
    memcpy(name, start, (size_t)(end - start));
    name[end - start] = '\0';
    return phase_parse(name, out) == RC_OK && phase_is_worked(*out);
}

/* A completion: its worker is free; its result fields written; the next phase queued, or the
 * research finished. */
static void
on_completion(struct relay *r, const struct completion *c, int64_t now)
{
    enum phase ph;
    if (!dispatch_phase(c->dispatch_id, &ph)) {
        return;
    }
    enum worker_type wt = phase_worker_type(ph);
    struct pool *p = &r->pools[wt];
    push(&p->free, &p->n_free, &p->cap_free, xstrdup(c->worker_id));

    struct buf key = BUF_INIT;
    struct buf field = BUF_INIT;
    keys_research(&key, r->cfg.redis.key_prefix, c->research_id);
    bool ok = c->status == COMPLETION_COMPLETED;
    size_t n = 0;
    for (size_t i = 0; ok && i < c->n_result; i++) {
        n += c->result[i].val.kind != VALUE_NIL && c->result[i].val.kind < VALUE_MAP;
    }
    cmd(r, 2 + 2 * (2 + n));
    arg_s(r, "HSET"), arg_s(r, key.data);
    arg_f(r, RF_CHILD_STATUS), arg_s(r, ok ? CHILD_COMPLETED : CHILD_FAILED);
    arg_f(r, RF_UPDATED_AT), arg_i(r, now);
    for (size_t i = 0; ok && i < c->n_result; i++) {
        const struct value *v = &c->result[i].val;
        if (v->kind == VALUE_NIL || v->kind >= VALUE_MAP) {
            continue;
        }
        buf_reset(&field);
        buf_printf(&field, "%s.%s", worker_type_name(wt), c->result[i].key);
        arg_s(r, field.data);
        buf_reset(&field);
        if (v->kind == VALUE_STR) {
            buf_puts(&field, v->s);
        } else if (v->kind == VALUE_FLOAT) {
            buf_printf(&field, "%.17g", v->f);
        } else {
            buf_printf(&field, "%" PRId64, v->kind == VALUE_BOOL ? (int64_t)v->b : v->i);
        }
        arg_s(r, field.data);
    }
    buf_release(&field);
    buf_release(&key);
    if (!ok || ph == PHASE_ASSESSING) {
        finish(r, c->research_id, phase_name(ok ? PHASE_COMPLETED : PHASE_FAILED), now);
        return;
    }
    struct job *j = xcalloc(1, sizeof(*j));
    j->research_id = xstrdup(c->research_id);
    j->phase = (enum phase)(ph + 1);
    for (size_t i = 0; i < c->n_result; i++) {
        param(j, c->result[i].key, c->result[i].val);
    }
    enqueue(r, j);
}

/* A dispatch to be produced once the batch's round trip is done. */
struct out {
    char *outbox_id;
    enum topic topic;
    char *worker_id;
    struct buf payload;
};

/* Pair waiting researches with free workers: the research's dispatch fields and the outbox
 * entry go into this batch's pipeline, the message into outs. */
static enum rc_rc
assign(struct relay *r, struct out **outs, size_t *n_outs, size_t *cap_outs, int64_t now,
       struct rc_err *err)
{
    struct buf key = BUF_INIT;
    struct buf outbox = BUF_INIT;
    struct buf frame = BUF_INIT;
    enum rc_rc rc = RC_OK;
    keys_outbox(&outbox, r->cfg.redis.key_prefix);
    for (int t = 0; t < WORKER_TYPE_COUNT && rc == RC_OK; t++) {
        struct pool *p = &r->pools[t];
        if (p->head != NULL && p->n_free == 0) {
            rc = learn(r, (enum worker_type)t, err);
        }
        while (rc == RC_OK && p->head != NULL && p->n_free > 0) {
            struct job *j = p->head;
            p->head = j->next;
            p->tail = p->head != NULL ? p->tail : NULL;
            char *worker = p->free[--p->n_free];
            char did[LIMITS_ID_MAX + 1];
            dispatchid_format(did, sizeof(did), j->research_id, j->phase, 1, 0);

            struct msg m = MSG_INIT;
            m.kind = MSG_DISPATCH;
            m.ts_ms = now;
            m.u.dispatch = (struct dispatch){did,      j->research_id, worker, j->phase,
                                             (enum worker_type)t, 1, j->params, j->n_params};
            *outs = xgrow(*outs, cap_outs, *n_outs + 1, sizeof(**outs));
            struct out *o = &(*outs)[(*n_outs)++];
            *o = (struct out){NULL, topic_dispatch((enum worker_type)t), worker, BUF_INIT};
            msg_encode(&m, &o->payload);
            char id[64];
            snprintf(id, sizeof(id), "%" PRId64 ":relay:%" PRIu64, r->start_ms, ++r->seq);
            o->outbox_id = xstrdup(id);

            keys_research(&key, r->cfg.redis.key_prefix, j->research_id);
            cmd(r, 2 + 2 * 7);
            arg_s(r, "HSET"), arg_s(r, key.data);
            arg_f(r, RF_PHASE), arg_s(r, phase_name(j->phase));
            arg_f(r, RF_DISPATCH_ID), arg_s(r, did);
            arg_f(r, RF_WORKER_ID), arg_s(r, worker);
            arg_f(r, RF_ATTEMPT), arg_i(r, 1);
            arg_f(r, RF_CHILD_STATUS), arg_s(r, CHILD_DISPATCHED);
            arg_f(r, RF_PHASE_STARTED_AT), arg_i(r, now);
            arg_f(r, RF_DISPATCHED_AT), arg_i(r, now);
            buf_reset(&frame);
            outbox_frame((int)o->topic, worker, strlen(worker), o->payload.data, o->payload.len,
                         &frame);
            cmd(r, 4);
            arg_s(r, "HSET"), arg_s(r, outbox.data), arg_s(r, id), arg(r, frame.data, frame.len);
            job_free(j);
        }
    }
    buf_release(&frame);
    buf_release(&outbox);
    buf_release(&key);
    return rc;
}

/* ---- Kafka ---- */

static void
delivered(void *owner, const rd_kafka_message_t *m)
{
    struct relay *r = owner;
    char *id = m->_private;
    if (m->err != RD_KAFKA_RESP_ERR_NO_ERROR) {
        fprintf(stderr, TOOL ": dispatch not delivered: %s\n", rd_kafka_err2str(m->err));
        r->failed = 1;
        free(id);
        return;
    }
    push(&r->acked, &r->n_acked, &r->cap_acked, id);
}

/* HDEL of the acknowledged outbox entries, into this batch's pipeline. */
static void
queue_hdel(struct relay *r)
{
    if (r->n_acked == 0) {
        return;
    }
    struct buf key = BUF_INIT;
    keys_outbox(&key, r->cfg.redis.key_prefix);
    cmd(r, 2 + r->n_acked);
    arg_s(r, "HDEL"), arg_s(r, key.data);
    for (size_t i = 0; i < r->n_acked; i++) {
        arg_s(r, r->acked[i]);
        free(r->acked[i]);
    }
    r->n_acked = 0;
    buf_release(&key);
}

static enum rc_rc
kafka_open(struct relay *r, struct rc_err *err)
{
    /* The coordinator's consumer and producer settings (coordinator/consumer.c, producer.c). */
    const char *const cdefaults[] = {"group.id", r->cfg.kafka.group, "enable.auto.commit", "false",
                                     "enable.auto.offset.store", "false", "auto.offset.reset",
                                     "earliest", "enable.partition.eof", "false", NULL};
    const char *const pdefaults[] = {"enable.idempotence", "true", "linger.ms", "0.5", NULL};
    const struct kclient_spec cs = {.type = RD_KAFKA_CONSUMER, .role = "consumer",
                                    .defaults = cdefaults};
    const struct kclient_spec ps = {.type = RD_KAFKA_PRODUCER, .role = "producer",
                                    .defaults = pdefaults, .owner = r, .delivered = delivered};
    enum rc_rc rc = kclient_new(&r->cfg.kafka, &cs, &r->kc, err);
    if (rc == RC_OK) {
        r->consumer = kclient_rk(r->kc);
        rc = kclient_new(&r->cfg.kafka, &ps, &r->kp, err);
    }
    if (rc == RC_OK) {
        r->producer = kclient_rk(r->kp);
        rc = kclient_ensure_topics(r->consumer, r->cfg.kafka.topics, TOPIC_COUNT,
                                   SETUP_TIMEOUT_MS, err);
    }
    rd_kafka_topic_partition_list_t *list = rd_kafka_topic_partition_list_new(16);
    const enum topic inputs[] = {TOPIC_TRIGGERS, TOPIC_COMPLETIONS};
    for (size_t i = 0; i < 2 && rc == RC_OK; i++) {
        rc = kclient_add_partitions(r->consumer, r->cfg.kafka.topics[inputs[i]],
                                    KCLIENT_START_COMMITTED, list, SETUP_TIMEOUT_MS, err);
    }
    if (rc == RC_OK && rd_kafka_assign(r->consumer, list) != RD_KAFKA_RESP_ERR_NO_ERROR) {
        rc = rc_err_set(err, RC_EBACKEND, "kafka: assign failed");
    }
    rd_kafka_topic_partition_list_destroy(list);
    return rc;
}

/* One poll batch, start to end: inputs, one round trip, produce, commit. */
static enum rc_rc
batch(struct relay *r, rd_kafka_message_t **msgs, struct out **outs, size_t *cap_outs,
      struct rc_err *err)
{
    size_t n = 0;
    for (int wait = POLL_MS; n < BATCH_MAX; wait = 0) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(r->consumer, wait);
        if (m == NULL) {
            break;
        }
        if (m->err != RD_KAFKA_RESP_ERR_NO_ERROR) {
            rd_kafka_message_destroy(m);
            continue;
        }
        msgs[n++] = m;
    }
    rd_kafka_poll(r->producer, 0); /* delivery reports: outbox entries to delete */
    int64_t now = clock_now_ms();
    const char *triggers = r->cfg.kafka.topics[TOPIC_TRIGGERS];
    for (size_t i = 0; i < n; i++) {
        bool is_trigger = strcmp(rd_kafka_topic_name(msgs[i]->rkt), triggers) == 0;
        struct msg m = MSG_INIT;
        struct rc_err e = RC_ERR_INIT;
        if (msg_decode(is_trigger ? MSG_TOPIC_TRIGGERS : MSG_TOPIC_COMPLETIONS, msgs[i]->payload,
                       msgs[i]->len, &m, &e) != RC_OK) {
            continue; /* no dead-lettering here */
        }
        if (m.kind == MSG_TRIGGER) {
            on_trigger(r, &m.u.trigger, now);
        } else if (m.kind == MSG_COMPLETION) {
            on_completion(r, &m.u.completion, now);
        }
        msg_release(&m);
    }
    size_t n_outs = 0;
    enum rc_rc rc = assign(r, outs, &n_outs, cap_outs, now, err);
    queue_hdel(r);
    if (rc == RC_OK) {
        rc = flush_redis(r, err);
    }
    for (size_t i = 0; i < n_outs; i++) {
        struct out *o = &(*outs)[i];
        if (rc == RC_OK &&
            rd_kafka_producev(r->producer, RD_KAFKA_V_TOPIC(r->cfg.kafka.topics[o->topic]),
                              RD_KAFKA_V_KEY(o->worker_id, strlen(o->worker_id)),
                              RD_KAFKA_V_VALUE(o->payload.data, o->payload.len),
                              RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                              RD_KAFKA_V_OPAQUE(o->outbox_id), RD_KAFKA_V_END) == 0) {
            o->outbox_id = NULL; /* the delivery report has it */
        } else if (rc == RC_OK) {
            rc = rc_err_set(err, RC_EBACKEND, "kafka: produce dispatch failed");
        }
        free(o->outbox_id);
        free(o->worker_id);
        buf_release(&o->payload);
    }
    rd_kafka_poll(r->producer, 0);
    if (rc == RC_OK && n > 0) {
        rd_kafka_topic_partition_list_t *offs = rd_kafka_topic_partition_list_new((int)n);
        for (size_t i = 0; i < n; i++) {
            const char *topic = rd_kafka_topic_name(msgs[i]->rkt);
            rd_kafka_topic_partition_t *p =
                rd_kafka_topic_partition_list_find(offs, topic, msgs[i]->partition);
            if (p == NULL) {
                p = rd_kafka_topic_partition_list_add(offs, topic, msgs[i]->partition);
            }
            p->offset = msgs[i]->offset + 1;
        }
        (void)rd_kafka_commit(r->consumer, offs, 1); /* a lost commit only replays */
        rd_kafka_topic_partition_list_destroy(offs);
    }
    for (size_t i = 0; i < n; i++) {
        rd_kafka_message_destroy(msgs[i]);
    }
    return rc;
}

/* Tell bench it is up: it waits for rc:coordinator's last_cycle_at, as for the coordinator. */
static enum rc_rc
announce(struct relay *r, struct rc_err *err)
{
    struct buf key = BUF_INIT;
    keys_coordinator(&key, r->cfg.redis.key_prefix);
    cmd(r, 4);
    arg_s(r, "HSET"), arg_s(r, key.data), arg_s(r, COORD_LAST_CYCLE_AT), arg_i(r, clock_now_ms());
    buf_release(&key);
    return flush_redis(r, err);
}

static void
relay_release(struct relay *r)
{
    for (int t = 0; t < WORKER_TYPE_COUNT; t++) {
        struct pool *p = &r->pools[t];
        for (size_t i = 0; i < p->n_known; i++) {
            free(p->known[i]);
        }
        for (size_t i = 0; i < p->n_free; i++) {
            free(p->free[i]);
        }
        free(p->known);
        free(p->free);
        while (p->head != NULL) {
            struct job *j = p->head;
            p->head = j->next;
            job_free(j);
        }
    }
    if (r->producer != NULL) {
        rd_kafka_flush(r->producer, 2000);
    }
    kclient_free(r->kc);
    kclient_free(r->kp);
    for (size_t i = 0; i < r->n_acked; i++) {
        free(r->acked[i]);
    }
    free(r->acked);
    redislink_free(r->rl);
    buf_release(&r->resp);
    cfg_release(&r->cfg);
}

int
main(void)
{
    struct relay r = {.cfg = CFG_INIT, .resp = BUF_INIT};
    struct rc_err err = RC_ERR_INIT;
    struct buf problems = BUF_INIT;

    enum rc_rc rc = cfg_load(&r.cfg, environ, &problems, &err);
    if (rc != RC_OK) {
        fprintf(stderr, TOOL ": configuration: %s\n", problems.len > 0 ? problems.data : err.msg);
        buf_release(&problems);
        return 1;
    }
    buf_release(&problems);
    r.start_ms = clock_now_ms();
    r.rl = redislink_new(&r.cfg.redis);
    rc = stopsig_install(&err);
    if (rc == RC_OK) {
        rc = kafka_open(&r, &err);
    }
    if (rc == RC_OK) {
        rc = announce(&r, &err);
    }
    rd_kafka_message_t **msgs = xcalloc(BATCH_MAX, sizeof(*msgs));
    struct out *outs = NULL;
    size_t cap_outs = 0;
    while (rc == RC_OK && !stopsig_requested() && !r.failed) {
        rc = batch(&r, msgs, &outs, &cap_outs, &err);
    }
    free(outs);
    free(msgs);
    if (rc == RC_OK && r.failed) {
        rc = rc_err_set(&err, RC_EBACKEND, "a dispatch was not delivered");
    }
    if (rc != RC_OK) {
        fprintf(stderr, TOOL ": %s\n", err.msg);
    }
    relay_release(&r);
    return rc == RC_OK ? 0 : 1;
}
