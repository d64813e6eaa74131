/* SPDX-License-Identifier: MIT
 * kclient: the one way every program makes a librdkafka client. A client gets the brokers, the
 * caller's defaults, then every KAFKA_PROP_* (which win), and one policy for what librdkafka
 * reports: its log lines go to our logger (from its own threads: log_write is thread-safe),
 * connection trouble is logged once per kind of trouble (again after a minute of the same),
 * ALL_BROKERS_DOWN is remembered until the owner sees Kafka answer, and a fatal error is logged and remembered: the
 * client can no longer be used, its owner makes a new one. Error callbacks run in the thread
 * that polls the client. Also: topics, partitions, and destroying without hanging. */
#ifndef RC_KCLIENT_H
#define RC_KCLIENT_H

#include <stdbool.h>
#include <stddef.h>

#include <librdkafka/rdkafka.h>

#include "common/rc_err.h"

struct cfg_kafka;
struct kclient; /* opaque */

/* What a client is for. The callbacks get `owner`; NULL ones are not installed. */
struct kclient_spec {
    rd_kafka_type_t type;
    const char *role;            /* "producer", "consumer", ... in messages */
    const char *const *defaults; /* NULL-terminated name/value pairs, before KAFKA_PROP_* */
    void *owner;
    /* Producers: one call per message, from the thread that polls. */
    void (*delivered)(void *owner, const rd_kafka_message_t *m);
    /* Consumers: the outcome of each commit, from the thread that polls. */
    void (*committed)(void *owner, rd_kafka_resp_err_t e,
                      const rd_kafka_topic_partition_list_t *offsets);
};

/* A new client. `cfg` NULL: no brokers and no KAFKA_PROP_* (a handle that only hosts a mock
 * cluster). RC_EINVAL naming the variable when librdkafka refuses a property, or when it
 * cannot create the client. Free with kclient_free. */
enum rc_rc kclient_new(const struct cfg_kafka *cfg, const struct kclient_spec *spec,
                       struct kclient **out, struct rc_err *err);
rd_kafka_t *kclient_rk(const struct kclient *c);
/* True once librdkafka reported a fatal error (logged then): make a new client. */
bool kclient_fatal(const struct kclient *c);
/* True from librdkafka's ALL_BROKERS_DOWN until the owner says Kafka answered again. */
bool kclient_down(const struct kclient *c);
/* Kafka answered (a delivery, a message, a metadata reply): true when it was down until now.
 * The next trouble is logged whatever its kind. */
bool kclient_answered(struct kclient *c);
/* Report an error that came with a message (a consume error, a failed delivery) under the
 * same policy as librdkafka's own: logged once per kind, kept as the last error. */
void kclient_report(struct kclient *c, rd_kafka_resp_err_t code, const char *detail);
/* The last error librdkafka reported ("" before any), for messages. */
const char *kclient_last_error(const struct kclient *c);

/* Close a consumer for at most KCLIENT_CLOSE_MS (its assignment and group left, as far as
 * brokers answer; not after a fatal error: librdkafka 2.0 never ends closing such a consumer),
 * then destroy the client, waiting at most KCLIENT_DESTROY_MS: librdkafka before 2.3 can hang
 * there for good after a broker outage, and then the handle is left to a thread of its own.
 * A stop must not wait on brokers that do not answer. NULL is a no-op. */
void kclient_free(struct kclient *c);

/* What a stop gives them (the coordinator's stop has 5 s in all). */
#define KCLIENT_CLOSE_MS 800
#define KCLIENT_DESTROY_MS 700

/* Create the missing ones among `topics` where the cluster allows it (CreateTopics), else
 * RC_ENOTFOUND naming them. RC_EUNAVAIL: no metadata (cluster unreachable). `rk` is any
 * handle on the cluster. */
enum rc_rc kclient_ensure_topics(rd_kafka_t *rk, char *const *topics, size_t n, int timeout_ms,
                                 struct rc_err *err);

/* Where kclient_add_partitions starts each partition. */
enum kclient_start {
    KCLIENT_START_COMMITTED, /* the group's committed offset (auto.offset.reset when none) */
    KCLIENT_START_END_NOW,   /* its end as of now (the high watermark): only what follows */
    KCLIENT_START_BEGINNING, /* its first message still kept (the low watermark) */
};

/* Add every partition of `topic` to `list`, starting as `start` says. RC_EUNAVAIL naming the
 * topic when its metadata or an end offset cannot be had (the cluster is unreachable, or the
 * topic does not exist or has no partitions); nothing is added then. */
enum rc_rc kclient_add_partitions(rd_kafka_t *rk, const char *topic, enum kclient_start start,
                                  rd_kafka_topic_partition_list_t *list, int timeout_ms,
                                  struct rc_err *err);

#endif /* RC_KCLIENT_H */
