/* SPDX-License-Identifier: MIT
 * kconf: a librdkafka configuration from cfg_kafka: bootstrap servers, the KAFKA_PROP_*
 * pass-through, and librdkafka's log and error callbacks feeding our logger. */
#ifndef RC_KCONF_H
#define RC_KCONF_H

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

#endif /* RC_KCONF_H */
