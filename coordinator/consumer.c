/* SPDX-License-Identifier: MIT
 * consumer: manual assignment of the input topics, manual commits. */
#include "coordinator/consumer.h"

#include <stdlib.h>
#include <string.h>

#include <librdkafka/rdkafka.h>

#include "common/clock.h"
#include "common/kclient.h"
#include "common/log.h"
#include "common/xalloc.h"

struct consumer {
    struct kclient *kc;
    rd_kafka_t *rk; /* kclient_rk(kc) */
    const struct cfg_kafka *cfg;
};

void
input_release(struct input *in)
{
    free(in->key);
    free(in->payload);
    *in = (struct input){0};
}

static void
committed(void *owner, rd_kafka_resp_err_t e, const rd_kafka_topic_partition_list_t *offsets)
{
    (void)owner;
    (void)offsets;
    if (e != RD_KAFKA_RESP_ERR_NO_ERROR && e != RD_KAFKA_RESP_ERR__NO_OFFSET) {
        /* The effect is in Redis already: a lost commit only means a replay, which the
         * handlers absorb. */
        log_warn("offset commit failed", "error=\"%s\"", rd_kafka_err2str(e));
    }
}

/* Every partition of the two input topics, at the stored (committed) offset. */
static enum rc_rc
assign_all(struct consumer *c, int timeout_ms, struct rc_err *err)
{
    const enum topic inputs[] = {TOPIC_TRIGGERS, TOPIC_COMPLETIONS};
    rd_kafka_topic_partition_list_t *list = rd_kafka_topic_partition_list_new(16);
    enum rc_rc rc = RC_OK;
    for (size_t i = 0; i < 2 && rc == RC_OK; i++) {
        rc = kclient_add_partitions(c->rk, c->cfg->topics[inputs[i]], KCLIENT_START_COMMITTED, list,
                                  timeout_ms, err);
    }
    rd_kafka_resp_err_t e = RD_KAFKA_RESP_ERR_NO_ERROR;
    if (rc == RC_OK && (e = rd_kafka_assign(c->rk, list)) != RD_KAFKA_RESP_ERR_NO_ERROR) {
        rc = rc_err_set(err, RC_EBACKEND, "kafka: assign: %s", rd_kafka_err2str(e));
    }

    if (rc == RC_OK) {
        log_info("partitions assigned", "count=%d", list->cnt);
    }
    rd_kafka_topic_partition_list_destroy(list);
    return rc;
}

enum rc_rc
consumer_new(struct consumer **out, const struct cfg_kafka *cfg, int timeout_ms, struct rc_err *err)
{
    /* cfg validated KAFKA_GROUP; the group's committed offsets are where reading starts. */
    const char *const defaults[] = {
        "group.id",
        cfg->group,
        "enable.auto.commit",
        "false",
        "enable.auto.offset.store",
        "false",
        "auto.offset.reset",
        "earliest",
        "enable.partition.eof",
        "false",
        /* a message may be up to 1 MiB plus framing; larger ones are dead-lettered */
        "fetch.max.bytes",
        "8388608",
        "receive.message.max.bytes",
        "16777216",
        NULL,
    };
    struct consumer *c = xcalloc(1, sizeof(*c));
    c->cfg = cfg;
    const struct kclient_spec spec = {.type = RD_KAFKA_CONSUMER,
                                      .role = "consumer",
                                      .defaults = defaults,
                                      .owner = c,
                                      .committed = committed};
    enum rc_rc rc = kclient_new(cfg, &spec, &c->kc, err);
    if (rc != RC_OK) {
        free(c);
        return rc;
    }
    c->rk = kclient_rk(c->kc);
    rc = kclient_ensure_topics(c->rk, cfg->topics, TOPIC_COUNT, timeout_ms, err);
    if (rc == RC_OK) {
        rc = assign_all(c, timeout_ms, err);
    }
    if (rc != RC_OK) {
        consumer_free(c);
        return rc;
    }
    *out = c;
    return RC_OK;
}

void
consumer_free(struct consumer *c)
{
    if (c == NULL) {
        return;
    }
    kclient_free(c->kc);
    free(c);
}

static enum topic
topic_of(const struct consumer *c, const rd_kafka_message_t *m)
{
    return m->rkt != NULL && strcmp(rd_kafka_topic_name(m->rkt),
                                    c->cfg->topics[TOPIC_TRIGGERS]) == 0
               ? TOPIC_TRIGGERS
               : TOPIC_COMPLETIONS;
}

static int
left_ms(int64_t deadline)
{
    const int64_t left = deadline - clock_mono_ms();
    return left > 1 ? (int)left : 1;
}

bool
consumer_caught_up(struct consumer *c, int timeout_ms)
{
    rd_kafka_topic_partition_list_t *parts = NULL;
    if (rd_kafka_assignment(c->rk, &parts) != RD_KAFKA_RESP_ERR_NO_ERROR || parts->cnt == 0) {
        if (parts != NULL) {
            rd_kafka_topic_partition_list_destroy(parts);
        }
        return false;
    }
    /* One budget for all the round trips: a shutdown waits for this call. */
    const int64_t deadline = clock_mono_ms() + timeout_ms;
    bool caught_up = rd_kafka_position(c->rk, parts) == RD_KAFKA_RESP_ERR_NO_ERROR;
    /* A partition nothing was read from yet has no position: its committed offset is where
     * reading starts. */
    bool unread = false;
    for (int i = 0; caught_up && i < parts->cnt; i++) {
        unread = unread || parts->elems[i].offset < 0;
    }
    if (caught_up && unread) {
        rd_kafka_topic_partition_list_t *committed = rd_kafka_topic_partition_list_copy(parts);
        caught_up = rd_kafka_committed(c->rk, committed, left_ms(deadline)) ==
                    RD_KAFKA_RESP_ERR_NO_ERROR;
        for (int i = 0; caught_up && i < parts->cnt; i++) {
            if (parts->elems[i].offset < 0) {
                parts->elems[i].offset = committed->elems[i].offset;
            }
        }
        rd_kafka_topic_partition_list_destroy(committed);
    }
    for (int i = 0; caught_up && i < parts->cnt; i++) {
        int64_t low = 0, high = 0;
        caught_up = rd_kafka_query_watermark_offsets(c->rk, parts->elems[i].topic,
                                                     parts->elems[i].partition, &low, &high,
                                                     left_ms(deadline)) ==
                        RD_KAFKA_RESP_ERR_NO_ERROR &&
                    (parts->elems[i].offset >= high || (parts->elems[i].offset < 0 && low == high));
    }
    rd_kafka_topic_partition_list_destroy(parts);
    return caught_up;
}

enum rc_rc
consumer_poll(struct consumer *c, int timeout_ms, struct input *out, bool *got, struct rc_err *err)
{
    *got = false;
    rd_kafka_message_t *m = rd_kafka_consumer_poll(c->rk, timeout_ms);
    if (m == NULL) {
        return RC_OK;
    }
    if (m->err != RD_KAFKA_RESP_ERR_NO_ERROR) {
        enum rc_rc rc = RC_OK;
        if (m->err == RD_KAFKA_RESP_ERR__FATAL) {
            char why[512];
            rd_kafka_fatal_error(c->rk, why, sizeof(why));
            rc = rc_err_set(err, RC_EBACKEND, "kafka consumer fatal: %s", why);
        } else {
            kclient_report(c->kc, m->err, rd_kafka_message_errstr(m));
        }
        rd_kafka_message_destroy(m);
        return rc;
    }
    struct input in = {0};
    in.topic = topic_of(c, m);
    in.partition = m->partition;
    in.offset = m->offset;
    if (m->key != NULL) {
        /* Keys are bytes: they may hold NULs, so copy by length. */
        in.key = xmalloc(m->key_len + 1);
        memcpy(in.key, m->key, m->key_len);
        in.key[m->key_len] = '\0';
        in.key_len = m->key_len;
    }
    in.payload = xmalloc(m->len > 0 ? m->len : 1);
    memcpy(in.payload, m->payload, m->len);
    in.len = m->len;
    rd_kafka_message_destroy(m);
    *out = in;
    *got = true;
    return RC_OK;
}

enum rc_rc
consumer_commit(struct consumer *c, const struct input *inputs, size_t n, struct rc_err *err)
{
    if (n == 0) {
        return RC_OK;
    }
    rd_kafka_topic_partition_list_t *list = rd_kafka_topic_partition_list_new(8);
    for (size_t i = 0; i < n; i++) {
        const char *topic = c->cfg->topics[inputs[i].topic];
        rd_kafka_topic_partition_t *tp =
            rd_kafka_topic_partition_list_find(list, topic, inputs[i].partition);
        if (tp == NULL) {
            tp = rd_kafka_topic_partition_list_add(list, topic, inputs[i].partition);
            tp->offset = inputs[i].offset + 1;
        } else if (inputs[i].offset + 1 > tp->offset) {
            tp->offset = inputs[i].offset + 1;
        }
    }
    rd_kafka_resp_err_t e = rd_kafka_commit(c->rk, list, 1);
    rd_kafka_topic_partition_list_destroy(list);
    if (e != RD_KAFKA_RESP_ERR_NO_ERROR) {
        return rc_err_set(err, RC_EUNAVAIL, "kafka: commit: %s", rd_kafka_err2str(e));
    }
    return RC_OK;
}
