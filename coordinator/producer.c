/* SPDX-License-Identifier: MIT
 * producer: the coordinator's librdkafka producer. */
#include "coordinator/producer.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <librdkafka/rdkafka.h>

#include "common/cfg.h"
#include "common/kclient.h"
#include "common/log.h"
#include "common/xalloc.h"

struct producer {
    struct kclient *kc;
    rd_kafka_t *rk; /* kclient_rk(kc) */
    char **delivered; /* outbox ids */
    size_t n_delivered;
    size_t cap_delivered;
    struct producer_failed *failed;
    size_t n_failed;
    size_t cap_failed;
    uint64_t recoveries; /* times it was down and came back */
};

/* Kafka answered (a delivery, a metadata reply): an outage it was in is over. */
static void
answered(struct producer *p)
{
    if (kclient_answered(p->kc)) {
        p->recoveries++;
    }
}

/* Errors with which Kafka refuses a message for good: sending it again cannot help. */
static enum producer_fate
fate_of(rd_kafka_resp_err_t e)
{
    switch (e) {
    case RD_KAFKA_RESP_ERR__PURGE_QUEUE:
    case RD_KAFKA_RESP_ERR__PURGE_INFLIGHT:
        return PRODUCER_PURGED;
    case RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE:
    case RD_KAFKA_RESP_ERR_INVALID_MSG:
    case RD_KAFKA_RESP_ERR_INVALID_MSG_SIZE:
    case RD_KAFKA_RESP_ERR_RECORD_LIST_TOO_LARGE:
    case RD_KAFKA_RESP_ERR_INVALID_RECORD:
    case RD_KAFKA_RESP_ERR__INVALID_ARG:
        return PRODUCER_REFUSED;
    default:
        return PRODUCER_RETRY;
    }
}

/* Runs inside producer_poll() on the main thread. */
static void
delivered(void *owner, const rd_kafka_message_t *m)
{
    struct producer *p = owner;
    char *outbox_id = m->_private;
    if (m->err == RD_KAFKA_RESP_ERR_NO_ERROR) {
        answered(p);
        if (outbox_id != NULL) {
            p->delivered =
                xgrow(p->delivered, &p->cap_delivered, p->n_delivered + 1, sizeof(*p->delivered));
            p->delivered[p->n_delivered++] = outbox_id;
        }
        return;
    }
    p->failed = xgrow(p->failed, &p->cap_failed, p->n_failed + 1, sizeof(*p->failed));
    struct producer_failed *f = &p->failed[p->n_failed++];
    f->fate = fate_of(m->err);
    snprintf(f->reason, sizeof(f->reason), "%s", rd_kafka_err2str(m->err));
    if (f->fate != PRODUCER_PURGED) {
        log_warn("delivery failed", "topic=%s error=\"%s\" fate=%s", rd_kafka_topic_name(m->rkt),
                 f->reason, f->fate == PRODUCER_REFUSED ? "refused" : "retry");
    }
    f->topic = xstrdup(rd_kafka_topic_name(m->rkt));
    f->key = NULL;
    f->key_len = 0;
    if (m->key != NULL) {
        f->key = xmalloc(m->key_len + 1);
        memcpy(f->key, m->key, m->key_len);
        f->key_len = m->key_len;
    }
    f->payload = xmalloc(m->len > 0 ? m->len : 1);
    memcpy(f->payload, m->payload, m->len);
    f->len = m->len;
    f->outbox_id = outbox_id;
}

enum rc_rc
producer_new(struct producer **out, const struct cfg_kafka *cfg, struct rc_err *err)
{
    /* Defaults a user of Kafka expects from a system of record: acks from all in-sync
     * replicas and no reordering on retry. A small linger batches a cycle's messages. */
    static const char *const defaults[] = {
        "enable.idempotence", "true", "linger.ms", "0.5", NULL,
    };
    struct producer *p = xcalloc(1, sizeof(*p));
    const struct kclient_spec spec = {.type = RD_KAFKA_PRODUCER,
                                      .role = "producer",
                                      .defaults = defaults,
                                      .owner = p,
                                      .delivered = delivered};
    enum rc_rc rc = kclient_new(cfg, &spec, &p->kc, err);
    if (rc != RC_OK) {
        free(p);
        return rc;
    }
    p->rk = kclient_rk(p->kc);
    /* Learn the cluster's topics now: a producer that first meets a topic when it sends holds
     * that message until the topic's metadata arrives. Failure is fine: it will learn later. */
    const struct rd_kafka_metadata *md = NULL;
    if (rd_kafka_metadata(p->rk, 1, NULL, &md, 5000) == RD_KAFKA_RESP_ERR_NO_ERROR) {
        rd_kafka_metadata_destroy(md);
    }
    *out = p;
    return RC_OK;
}

void
producer_free(struct producer *p, int timeout_ms)
{
    if (p == NULL) {
        return;
    }
    rd_kafka_flush(p->rk, timeout_ms);
    producer_purge(p);
    rd_kafka_poll(p->rk, 0); /* purged messages come back as delivered: free their ids */
    kclient_free(p->kc);
    for (size_t i = 0; i < p->n_delivered; i++) {
        free(p->delivered[i]);
    }
    free(p->delivered);
    producer_failed_free(p->failed, p->n_failed);
    free(p);
}

enum rc_rc
producer_send(struct producer *p, const char *topic, const char *key, size_t key_len,
              const void *payload, size_t len, const char *outbox_id, struct rc_err *err)
{
    char *id = xstrdup_or_null(outbox_id);
    /* The array form of producev: no statement-expression macros. Payload and key are copied
     * (F_COPY), so dropping their const for librdkafka's struct is safe. */
    rd_kafka_vu_t vus[5];
    memset(vus, 0, sizeof(vus));
    vus[0].vtype = RD_KAFKA_VTYPE_TOPIC;
    vus[0].u.cstr = topic;
    vus[1].vtype = RD_KAFKA_VTYPE_KEY;
    vus[1].u.mem.ptr = (void *)(uintptr_t)key;
    vus[1].u.mem.size = key_len;
    vus[2].vtype = RD_KAFKA_VTYPE_VALUE;
    vus[2].u.mem.ptr = (void *)(uintptr_t)payload;
    vus[2].u.mem.size = len;
    vus[3].vtype = RD_KAFKA_VTYPE_MSGFLAGS;
    vus[3].u.i = RD_KAFKA_MSG_F_COPY;
    vus[4].vtype = RD_KAFKA_VTYPE_OPAQUE;
    vus[4].u.ptr = id;
    rd_kafka_error_t *e = rd_kafka_produceva(p->rk, vus, 5);
    if (e != NULL) {
        const bool never = fate_of(rd_kafka_error_code(e)) == PRODUCER_REFUSED;
        enum rc_rc rc = rc_err_set(err, never ? RC_EPROTO : RC_EUNAVAIL,
                                   "kafka: cannot queue to %s: %s", topic,
                                   rd_kafka_error_string(e));
        rd_kafka_error_destroy(e);
        free(id);
        return rc;
    }
    return RC_OK;
}

void
producer_flush(struct producer *p, int timeout_ms)
{
    (void)rd_kafka_flush(p->rk, timeout_ms);
}

void
producer_poll(struct producer *p, int timeout_ms)
{
    rd_kafka_poll(p->rk, timeout_ms);
}

size_t
producer_take_delivered(struct producer *p, char ***ids)
{
    size_t n = p->n_delivered;
    *ids = p->delivered;
    p->delivered = NULL;
    p->n_delivered = 0;
    p->cap_delivered = 0;
    return n;
}

size_t
producer_take_failed(struct producer *p, struct producer_failed **out)
{
    size_t n = p->n_failed;
    *out = p->failed;
    p->failed = NULL;
    p->n_failed = 0;
    p->cap_failed = 0;
    return n;
}

void
producer_failed_free(struct producer_failed *f, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(f[i].topic);
        free(f[i].key);
        free(f[i].payload);
        free(f[i].outbox_id);
    }
    free(f);
}

int
producer_in_flight(const struct producer *p)
{
    return rd_kafka_outq_len(p->rk);
}

bool
producer_is_fatal(const struct producer *p)
{
    return kclient_fatal(p->kc);
}

bool
producer_kafka_down(const struct producer *p)
{
    return kclient_down(p->kc);
}

uint64_t
producer_recoveries(const struct producer *p)
{
    return p->recoveries;
}

void
producer_probe(struct producer *p, int timeout_ms)
{
    if (!kclient_down(p->kc)) {
        return;
    }
    const struct rd_kafka_metadata *md = NULL;
    if (rd_kafka_metadata(p->rk, 0, NULL, &md, timeout_ms) == RD_KAFKA_RESP_ERR_NO_ERROR) {
        rd_kafka_metadata_destroy(md);
        answered(p);
    }
}

void
producer_purge(struct producer *p)
{
    (void)rd_kafka_purge(p->rk, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
}
