/* SPDX-License-Identifier: MIT
 * consumer: reads the coordinator's inputs (research.triggers and research.completions). It
 * assigns itself every partition of both topics and commits offsets to KAFKA_GROUP by hand:
 * only one coordinator leads (the rc:leader lease), so no group rebalance is needed, and a
 * restarted coordinator consumes again at once instead of waiting out a dead member's session.
 * Offsets are committed only for inputs whose effect is in Redis. Main loop only. */
#ifndef RC_CONSUMER_H
#define RC_CONSUMER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/cfg.h"
#include "common/rc_err.h"

struct consumer;

/* One input, copied out of librdkafka's message. */
struct input {
    enum topic topic; /* TOPIC_TRIGGERS or TOPIC_COMPLETIONS */
    int32_t partition;
    int64_t offset;
    char *key; /* owned, key_len bytes (may hold NULs) + a NUL; NULL when the message has none */
    size_t key_len;
    char *payload; /* owned */
    size_t len;
};

void input_release(struct input *in);

/* Connect, check (and create where allowed) every topic of the contract, and assign the input
 * partitions at their committed offsets (earliest when none). RC_EINVAL: bad property;
 * RC_ENOTFOUND: topics are missing and the cluster would not create them (err names them);
 * RC_EUNAVAIL: the cluster is unreachable. */
enum rc_rc consumer_new(struct consumer **out, const struct cfg_kafka *cfg, int timeout_ms,
                        struct rc_err *err);
void consumer_free(struct consumer *c);

/* Wait at most `timeout_ms` for the next input. *got false when none came. RC_EBACKEND with a
 * fatal error means shut down; transient errors are logged and not returned. */
enum rc_rc consumer_poll(struct consumer *c, int timeout_ms, struct input *out, bool *got,
                         struct rc_err *err);
/* Ask the brokers where every input partition ends (round trips, timeout_ms for them all):
 * true when consumer_poll has returned every message up to those ends, so that any message a
 * producer had Kafka acknowledge before this call is among the inputs returned. False when it
 * has not, or the brokers cannot say. Blocks: for the rare decision that needs it. */
bool consumer_caught_up(struct consumer *c, int timeout_ms);
/* Commit, asynchronously, the offsets after `inputs` (the highest per partition). */
enum rc_rc consumer_commit(struct consumer *c, const struct input *inputs, size_t n,
                           struct rc_err *err);

#endif /* RC_CONSUMER_H */
