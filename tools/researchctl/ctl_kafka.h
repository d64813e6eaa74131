/* SPDX-License-Identifier: MIT
 * ctl_kafka: researchctl's Kafka side. A request (a trigger or a cancel) is published to the
 * triggers topic and its outcome read back from the events topic; the events topic is read
 * from its start (or its last N messages) to its end and, when following, beyond. Clients are
 * configured from cfg_kafka (KAFKA_BROKERS, KAFKA_PROP_*); the reader joins no group and
 * commits nothing. librdkafka objects never leave ctl_kafka.c. Main thread only. */
#ifndef RC_CTL_KAFKA_H
#define RC_CTL_KAFKA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/rc_err.h"
#include "proto/msg.h"

struct cfg_kafka;

/* A message to publish and the outcome that answers it. */
struct ctl_kafka_request {
    const struct msg *msg;           /* encoded with msg_encode (borrowed) */
    int topic;                       /* enum topic: where to publish */
    const char *key;                 /* the message key (contract §2) */
    const char *request_id;          /* the outcome event echoes it */
    const enum event_type *outcomes; /* event types that answer it */
    size_t n_outcomes;
    int64_t timeout_ms; /* how long to wait for the outcome; 0: publish only */
};

/* Publish req->msg and, when req->timeout_ms > 0, wait for the first event on the events topic
 * (read from its end as of before the publish) whose request_id is req->request_id and whose
 * type is one of req->outcomes. On RC_OK with waiting, *outcome is that event's message
 * (caller frees with msg_release); without waiting outcome is not touched and may be NULL.
 * RC_EINVAL: a KAFKA_PROP_* librdkafka refuses (err names it); RC_EUNAVAIL: the cluster or the
 * events topic cannot be reached, or the publish failed; RC_ENOTFOUND: no outcome within the
 * timeout (the message was published). */
enum rc_rc ctl_kafka_request(const struct cfg_kafka *k, const struct ctl_kafka_request *req,
                             struct msg *outcome, struct rc_err *err);

/* Publish every message of reqs[0..n) (each request's own timeout_ms is ignored) with one
 * producer, and wait up to timeout_ms (0: publish only) for all their outcomes: outcomes[i]
 * (n of them, at MSG_INIT) gets reqs[i]'s outcome event, or stays MSG_INIT when none came in
 * time; the caller releases each with msg_release. RC_OK once all were published; errors as
 * ctl_kafka_request otherwise (then nothing is written to outcomes). */
enum rc_rc ctl_kafka_requests(const struct cfg_kafka *k, const struct ctl_kafka_request *reqs,
                              size_t n, int64_t timeout_ms, struct msg *outcomes,
                              struct rc_err *err);

struct ctl_events; /* opaque: a reader of the events topic */

/* One event read. */
struct ctl_event_msg {
    struct msg msg; /* the decoded event (kind MSG_EVENT); freed with msg_release */
    int64_t ts_ms;  /* the event's `ts`, else the Kafka timestamp, else 0 */
    int32_t partition;
    int64_t offset;
};

/* A reader of every partition of the events topic, from its first message, or from its last
 * `last_n` messages per partition when last_n > 0; the end of each partition is taken now.
 * Errors as ctl_kafka_request (RC_EUNAVAIL also when the topic does not exist). On RC_OK
 * *out is freed with ctl_events_free. */
enum rc_rc ctl_events_open(const struct cfg_kafka *k, int64_t last_n, struct ctl_events **out,
                           struct rc_err *err);
/* NULL is a no-op. */
void ctl_events_free(struct ctl_events *e);
/* Wait up to timeout_ms for the next message. RC_OK with *out (caller releases out->msg);
 * RC_ENOTFOUND when none came; RC_EPROTO for a message that is not a valid event (err says
 * where and why; it is skipped, read on); RC_EUNAVAIL for a fatal client error. */
enum rc_rc ctl_events_next(struct ctl_events *e, int timeout_ms, struct ctl_event_msg *out,
                           struct rc_err *err);
/* True once every partition has been read up to its end as taken at open. */
bool ctl_events_caught_up(const struct ctl_events *e);
/* The last transient error the reader saw ("" when none), for messages. Borrowed: valid
 * until the next call on e. */
const char *ctl_events_last_error(const struct ctl_events *e);

#endif /* RC_CTL_KAFKA_H */
