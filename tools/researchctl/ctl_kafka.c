/* SPDX-License-Identifier: MIT
 * ctl_kafka: researchctl's Kafka clients (kclient). The CLI logs errors only (researchctl.c
 * sets the level), so a problem is one line of ours, with the last error librdkafka reported
 * appended. */
#include "tools/researchctl/ctl_kafka.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <librdkafka/rdkafka.h>

#include "common/buf.h"
#include "common/cfg.h"
#include "common/clock.h"
#include "common/kclient.h"
#include "common/xalloc.h"

#define METADATA_TIMEOUT_MS 10000
#define FLUSH_TIMEOUT_MS 10000
#define POLL_MS 200

/* A client and what its delivery reports said. */
struct client {
    struct kclient *kc;
    rd_kafka_t *rk;             /* kclient_rk(kc) */
    char last_error[256];       /* the last consume error, "" when none */
    rd_kafka_resp_err_t dr_err; /* producer: the last delivery report's error */
    int n_delivered;            /* producer: delivery reports seen */
};

static void
delivered(void *owner, const rd_kafka_message_t *rkm)
{
    struct client *c = owner;
    c->dr_err = rkm->err;
    c->n_delivered++;
}

/* "; last error: ..." when the client saw one, for messages. */
static const char *
detail(const struct client *c, char *out, size_t size)
{
    const char *last = c->last_error[0] != '\0' ? c->last_error : kclient_last_error(c->kc);
    snprintf(out, size, "%s%s", last[0] != '\0' ? "; last error: " : "", last);
    return out;
}

/* An unreachable cluster's message names where we looked: "... (brokers 127.0.0.1:9092)". */
static enum rc_rc
with_brokers(const struct cfg_kafka *k, enum rc_rc rc, struct rc_err *err)
{
    if (rc == RC_EUNAVAIL && err != NULL) {
        char msg[sizeof(err->msg)];
        snprintf(msg, sizeof(msg), "%s", err->msg);
        rc_err_set(err, rc, "%s (brokers %s)", msg, k->brokers);
    }
    return rc;
}

static void
client_free(struct client *c)
{
    if (c == NULL) {
        return;
    }
    kclient_free(c->kc);
    free(c);
}

/* A producer, or a consumer of a throw-away group that never commits (it only assigns). */
static enum rc_rc
client_new(const struct cfg_kafka *k, rd_kafka_type_t type, bool partition_eof, struct client **out,
           struct rc_err *err)
{
    char group[64];
    snprintf(group, sizeof(group), "researchctl-%ld-%" PRId64, (long)getpid(), clock_mono_us());
    const char *const consumer_defaults[] = {"group.id",
                                             group,
                                             "enable.auto.commit",
                                             "false",
                                             "enable.partition.eof",
                                             partition_eof ? "true" : "false",
                                             NULL};
    struct client *c = xcalloc(1, sizeof(*c));
    const struct kclient_spec spec = {.type = type,
                                      .role = type == RD_KAFKA_CONSUMER ? "consumer" : "producer",
                                      .defaults =
                                          type == RD_KAFKA_CONSUMER ? consumer_defaults : NULL,
                                      .owner = c,
                                      .delivered = type == RD_KAFKA_PRODUCER ? delivered : NULL};
    enum rc_rc rc = kclient_new(k, &spec, &c->kc, err);
    if (rc != RC_OK) {
        free(c);
        return rc;
    }
    c->rk = kclient_rk(c->kc);
    *out = c;
    return RC_OK;
}

/* Assign `list` to the consumer. */
static enum rc_rc
assign(struct client *c, rd_kafka_topic_partition_list_t *list, struct rc_err *err)
{
    rd_kafka_resp_err_t e = rd_kafka_assign(c->rk, list);
    if (e != RD_KAFKA_RESP_ERR_NO_ERROR) {
        return rc_err_set(err, RC_EUNAVAIL, "kafka: assign: %s", rd_kafka_err2str(e));
    }
    return RC_OK;
}

/* ---- requests ----------------------------------------------------------------------------- */

/* Publish every message of reqs[0..n) with one producer and one flush. */
static enum rc_rc
publish(const struct cfg_kafka *k, const struct ctl_kafka_request *reqs, size_t n,
        struct rc_err *err)
{
    struct client *c = NULL;
    enum rc_rc rc = client_new(k, RD_KAFKA_PRODUCER, false, &c, err);
    if (rc != RC_OK) {
        return rc;
    }
    const char *topic = k->topics[reqs[0].topic];
    rd_kafka_resp_err_t e = RD_KAFKA_RESP_ERR_NO_ERROR;
    for (size_t i = 0; i < n && e == RD_KAFKA_RESP_ERR_NO_ERROR; i++) {
        struct buf payload = BUF_INIT;
        msg_encode(reqs[i].msg, &payload);
        topic = k->topics[reqs[i].topic];
        e = rd_kafka_producev(c->rk, RD_KAFKA_V_TOPIC(topic),
                              RD_KAFKA_V_KEY(reqs[i].key, strlen(reqs[i].key)),
                              RD_KAFKA_V_VALUE(payload.data, payload.len),
                              RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END);
        buf_release(&payload);
    }
    if (e == RD_KAFKA_RESP_ERR_NO_ERROR) {
        e = rd_kafka_flush(c->rk, FLUSH_TIMEOUT_MS);
    }
    if (e == RD_KAFKA_RESP_ERR_NO_ERROR && c->n_delivered > 0) {
        e = c->dr_err;
    }
    if (e != RD_KAFKA_RESP_ERR_NO_ERROR) {
        char more[300];
        rc = rc_err_set(err, RC_EUNAVAIL, "kafka: cannot publish to %s: %s%s", topic,
                        rd_kafka_err2str(e), detail(c, more, sizeof(more)));
    }
    client_free(c);
    return rc;
}

static bool
is_outcome(const struct ctl_kafka_request *req, const struct event *ev)
{
    if (ev->request_id == NULL || strcmp(ev->request_id, req->request_id) != 0) {
        return false;
    }
    for (size_t i = 0; i < req->n_outcomes; i++) {
        if (ev->type == req->outcomes[i]) {
            return true;
        }
    }
    return false;
}

/* Poll `c` until every request of reqs[0..n) has its outcome (outcomes[i].kind becomes
 * MSG_EVENT) or the deadline passes; how many came. */
static size_t
await_outcomes(struct client *c, const struct ctl_kafka_request *reqs, size_t n, int64_t timeout_ms,
               struct msg *outcomes)
{
    const int64_t deadline = clock_mono_ms() + timeout_ms;
    size_t found = 0;
    while (found < n && clock_mono_ms() < deadline) {
        rd_kafka_message_t *km = rd_kafka_consumer_poll(c->rk, POLL_MS);
        if (km == NULL) {
            continue;
        }
        struct msg m = MSG_INIT;
        if (km->err == RD_KAFKA_RESP_ERR_NO_ERROR &&
            msg_decode(MSG_TOPIC_EVENTS, km->payload, km->len, &m, NULL) == RC_OK) {
            for (size_t i = 0; i < n; i++) {
                if (outcomes[i].kind != MSG_EVENT && is_outcome(&reqs[i], &m.u.event)) {
                    outcomes[i] = m;
                    m = (struct msg)MSG_INIT;
                    found++;
                    break;
                }
            }
        }
        rd_kafka_message_destroy(km);
        msg_release(&m);
    }
    return found;
}

/* A consumer of the events topic from its end as of now: an outcome cannot come before the
 * publish. */
static enum rc_rc
open_listener(const struct cfg_kafka *k, struct client **out, struct rc_err *err)
{
    struct client *c = NULL;
    enum rc_rc rc = client_new(k, RD_KAFKA_CONSUMER, false, &c, err);
    if (rc != RC_OK) {
        return rc;
    }
    rd_kafka_topic_partition_list_t *list = rd_kafka_topic_partition_list_new(8);
    rc = kclient_add_partitions(c->rk, k->topics[TOPIC_EVENTS], KCLIENT_START_END_NOW, list,
                                METADATA_TIMEOUT_MS, err);
    if (rc == RC_OK) {
        rc = assign(c, list, err);
    }
    rd_kafka_topic_partition_list_destroy(list);
    if (rc != RC_OK) {
        client_free(c);
        return rc;
    }
    *out = c;
    return RC_OK;
}

enum rc_rc
ctl_kafka_request(const struct cfg_kafka *k, const struct ctl_kafka_request *req,
                  struct msg *outcome, struct rc_err *err)
{
    struct client *c = NULL;
    enum rc_rc rc = req->timeout_ms > 0 ? open_listener(k, &c, err) : RC_OK;
    if (rc == RC_OK) {
        rc = publish(k, req, 1, err);
    }
    if (rc == RC_OK && c != NULL) {
        struct msg m = MSG_INIT;
        if (await_outcomes(c, req, 1, req->timeout_ms, &m) == 1) {
            *outcome = m;
        } else {
            char more[300];
            rc =
                rc_err_set(err, RC_ENOTFOUND,
                           "no outcome for %s within %" PRId64 " s (is the coordinator running?)%s",
                           req->request_id, req->timeout_ms / 1000, detail(c, more, sizeof(more)));
        }
    }
    client_free(c);
    return with_brokers(k, rc, err);
}

enum rc_rc
ctl_kafka_requests(const struct cfg_kafka *k, const struct ctl_kafka_request *reqs, size_t n,
                   int64_t timeout_ms, struct msg *outcomes, struct rc_err *err)
{
    struct client *c = NULL;
    enum rc_rc rc = n > 0 && timeout_ms > 0 ? open_listener(k, &c, err) : RC_OK;
    if (rc == RC_OK && n > 0) {
        rc = publish(k, reqs, n, err);
    }
    if (rc == RC_OK && c != NULL) {
        (void)await_outcomes(c, reqs, n, timeout_ms, outcomes);
    }
    client_free(c);
    return with_brokers(k, rc, err);
}

/* ---- the events reader -------------------------------------------------------------------- */

struct ctl_events {
    struct client *c;
    char *topic;
    size_t n;           /* partitions */
    int32_t *partition; /* their ids */
    int64_t *end;       /* their end (high watermark) at open */
    int64_t *next;      /* the next offset to read in each */
};

void
ctl_events_free(struct ctl_events *e)
{
    if (e == NULL) {
        return;
    }
    client_free(e->c);
    free(e->topic);
    free(e->partition);
    free(e->end);
    free(e->next);
    free(e);
}

/* Take each partition's end now and choose its start: the low watermark, or last_n before the
 * end. */
static enum rc_rc
plan_partitions(struct ctl_events *e, rd_kafka_topic_partition_list_t *list, int64_t last_n,
                struct rc_err *err)
{
    e->n = (size_t)list->cnt;
    e->partition = xcalloc(e->n > 0 ? e->n : 1, sizeof(*e->partition));
    e->end = xcalloc(e->n > 0 ? e->n : 1, sizeof(*e->end));
    e->next = xcalloc(e->n > 0 ? e->n : 1, sizeof(*e->next));
    for (size_t i = 0; i < e->n; i++) {
        rd_kafka_topic_partition_t *p = &list->elems[i];
        int64_t low = 0;
        int64_t high = 0;
        rd_kafka_resp_err_t ke = rd_kafka_query_watermark_offsets(e->c->rk, e->topic, p->partition,
                                                                  &low, &high, METADATA_TIMEOUT_MS);
        if (ke != RD_KAFKA_RESP_ERR_NO_ERROR) {
            return rc_err_set(err, RC_EUNAVAIL, "kafka: offsets of %s [%d]: %s", e->topic,
                              (int)p->partition, rd_kafka_err2str(ke));
        }
        int64_t start = low;
        if (last_n > 0 && high - last_n > low) {
            start = high - last_n;
        }
        p->offset = start;
        e->partition[i] = p->partition;
        e->end[i] = high;
        e->next[i] = start;
    }
    return RC_OK;
}

enum rc_rc
ctl_events_open(const struct cfg_kafka *k, int64_t last_n, struct ctl_events **out,
                struct rc_err *err)
{
    struct ctl_events *e = xcalloc(1, sizeof(*e));
    rd_kafka_topic_partition_list_t *list = rd_kafka_topic_partition_list_new(8);

    e->topic = xstrdup(k->topics[TOPIC_EVENTS]);
    enum rc_rc rc = client_new(k, RD_KAFKA_CONSUMER, true, &e->c, err);
    if (rc == RC_OK) {
        rc = kclient_add_partitions(e->c->rk, e->topic, KCLIENT_START_BEGINNING, list,
                                    METADATA_TIMEOUT_MS, err);
    }
    if (rc == RC_OK) {
        rc = plan_partitions(e, list, last_n, err);
    }
    if (rc == RC_OK) {
        rc = assign(e->c, list, err);
    }
    rd_kafka_topic_partition_list_destroy(list);
    if (rc != RC_OK) {
        ctl_events_free(e);
        return with_brokers(k, rc, err);
    }
    *out = e;
    return RC_OK;
}

/* Note that partition `partition` has been read up to `offset` (exclusive). */
static void
advance(struct ctl_events *e, int32_t partition, int64_t offset)
{
    for (size_t i = 0; i < e->n; i++) {
        if (e->partition[i] == partition && offset > e->next[i]) {
            e->next[i] = offset;
        }
    }
}

bool
ctl_events_caught_up(const struct ctl_events *e)
{
    for (size_t i = 0; i < e->n; i++) {
        if (e->next[i] < e->end[i]) {
            return false;
        }
    }
    return true;
}

const char *
ctl_events_last_error(const struct ctl_events *e)
{
    return e->c->last_error;
}

enum rc_rc
ctl_events_next(struct ctl_events *e, int timeout_ms, struct ctl_event_msg *out, struct rc_err *err)
{
    rd_kafka_message_t *km = rd_kafka_consumer_poll(e->c->rk, timeout_ms);
    enum rc_rc rc = RC_OK;

    if (km == NULL) {
        return RC_ENOTFOUND;
    }
    if (km->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
        advance(e, km->partition, km->offset); /* an EOF's offset is the partition's end */
        rc = RC_ENOTFOUND;
        goto out;
    }
    if (km->err != RD_KAFKA_RESP_ERR_NO_ERROR) {
        char why[256];
        rd_kafka_resp_err_t fatal = rd_kafka_fatal_error(e->c->rk, why, sizeof(why));
        rc = fatal != RD_KAFKA_RESP_ERR_NO_ERROR
                 ? rc_err_set(err, RC_EUNAVAIL, "kafka: fatal: %s", why)
                 : RC_ENOTFOUND; /* transient: librdkafka retries */
        if (rc == RC_ENOTFOUND) {
            snprintf(e->c->last_error, sizeof(e->c->last_error), "%s", rd_kafka_message_errstr(km));
        }
        goto out;
    }
    advance(e, km->partition, km->offset + 1);
    struct ctl_event_msg ev = {MSG_INIT, 0, km->partition, km->offset};
    struct rc_err why = RC_ERR_INIT;
    if (msg_decode(MSG_TOPIC_EVENTS, km->payload, km->len, &ev.msg, &why) != RC_OK) {
        rc = rc_err_set(err, RC_EPROTO, "%s [%d] at offset %" PRId64 ": not a valid event: %s",
                        e->topic, (int)km->partition, km->offset, why.msg);
        goto out;
    }
    ev.ts_ms = ev.msg.ts_ms;
    if (ev.ts_ms <= 0) {
        rd_kafka_timestamp_type_t tstype;
        int64_t ts = rd_kafka_message_timestamp(km, &tstype);
        ev.ts_ms = ts > 0 ? ts : 0;
    }
    *out = ev;
out:
    rd_kafka_message_destroy(km);
    return rc;
}
