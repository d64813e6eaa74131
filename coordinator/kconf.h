/* SPDX-License-Identifier: MIT
 * kconf: a librdkafka configuration from cfg_kafka: bootstrap servers, the KAFKA_PROP_*
 * pass-through, and librdkafka's log and error callbacks feeding our logger. */
#ifndef RC_KCONF_H
#define RC_KCONF_H

#include <stdbool.h>

#include <librdkafka/rdkafka.h>

#include "common/rc_err.h"

struct cfg_kafka;

/* A new conf with the brokers, `defaults` (NULL-terminated name/value pairs, applied first so
 * that KAFKA_PROP_* can override them), then every KAFKA_PROP_*. RC_EINVAL naming the
 * variable when librdkafka refuses a property. Caller owns *out (rd_kafka_conf_destroy, or
 * hand it to rd_kafka_new). */
enum rc_rc kconf_new(const struct cfg_kafka *cfg, const char *const *defaults,
                     rd_kafka_conf_t **out, struct rc_err *err);

/* Create the missing ones among `topics` where the cluster allows it (CreateTopics), else
 * RC_ENOTFOUND naming them. RC_EUNAVAIL: no metadata (cluster unreachable). `rk` is any
 * handle on the cluster. */
enum rc_rc kconf_ensure_topics(rd_kafka_t *rk, char *const *topics, size_t n, int timeout_ms,
                               struct rc_err *err);

/* Where kconf_add_partitions starts each partition. */
enum kconf_start {
    KCONF_START_COMMITTED, /* the group's committed offset (auto.offset.reset when none) */
    KCONF_START_END_NOW,   /* its end as of now (the high watermark): only what follows */
    KCONF_START_BEGINNING, /* its first message still kept (the low watermark) */
};

/* Add every partition of `topic` to `list`, starting as `start` says. RC_EUNAVAIL naming the
 * topic when its metadata or an end offset cannot be had (the cluster is unreachable, or the
 * topic does not exist or has no partitions); nothing is added then. */
enum rc_rc kconf_add_partitions(rd_kafka_t *rk, const char *topic, enum kconf_start start,
                                rd_kafka_topic_partition_list_t *list, int timeout_ms,
                                struct rc_err *err);

/* rd_kafka_destroy_flags(rk, flags), waiting at most timeout_ms: false when it had not
 * returned by then (librdkafka before 2.3 can hang there for good after a broker outage, a
 * consumer's partition object leaked), in which case it goes on in a thread of its own, and
 * the handle is abandoned to it. */
bool kconf_destroy(rd_kafka_t *rk, int flags, int timeout_ms);

/* Close a consumer for at most close_ms (its assignment and group left, as far as brokers
 * answer), then kconf_destroy it for at most destroy_ms. After a fatal error it is not closed
 * at all: librdkafka 2.0 never ends closing such a consumer, and there is nothing left to
 * close cleanly. */
void kconf_consumer_destroy(rd_kafka_t *rk, int close_ms, int destroy_ms);

/* What a stop gives them (the coordinator's stop has 5 s in all). */
#define KCONF_CLOSE_MS 800
#define KCONF_DESTROY_MS 700

#endif /* RC_KCONF_H */
