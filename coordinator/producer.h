/* SPDX-License-Identifier: MIT
 * producer: publishes dispatches, aborts, events and dead letters. Delivery reports are served
 * inside producer_poll() on the main loop; the outbox ids of delivered messages are handed
 * back so the loop can delete them from Redis, and failed ones so it can send them again. */
#ifndef RC_PRODUCER_H
#define RC_PRODUCER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/rc_err.h"

struct cfg_kafka;
struct producer;

/* What to do with a message whose delivery failed. */
enum producer_fate {
    PRODUCER_RETRY = 0, /* librdkafka gave up for now (timed out, broker errors): send again */
    PRODUCER_REFUSED,   /* Kafka refuses it for good (too large, invalid): never send again */
    PRODUCER_PURGED,    /* purged by us (leadership lost): leave it to the outbox */
};

/* A message whose delivery failed (after librdkafka's own retries). */
struct producer_failed {
    enum producer_fate fate;
    char reason[128];
    char *topic;
    char *key; /* key_len bytes; NULL for no key */
    size_t key_len;
    char *payload;
    size_t len;
    char *outbox_id;
};

enum rc_rc producer_new(struct producer **out, const struct cfg_kafka *cfg, struct rc_err *err);
/* Flush for at most `timeout_ms`, then free. NULL is a no-op. */
void producer_free(struct producer *p, int timeout_ms);
/* Queue one message (copied); key NULL for no key. `outbox_id` (NULL for none) comes back from
 * producer_take_delivered() once Kafka has it. RC_EUNAVAIL: not now (the local queue is full,
 * the topic unknown yet); RC_EPROTO: never (too large for the producer's message.max.bytes). */
enum rc_rc producer_send(struct producer *p, const char *topic, const char *key, size_t key_len,
                         const void *payload, size_t len, const char *outbox_id,
                         struct rc_err *err);
/* Wait at most `timeout_ms` for every queued message to be delivered (or fail), serving
 * their delivery reports. */
void producer_flush(struct producer *p, int timeout_ms);
/* Serve delivery reports (waits at most timeout_ms for the first). */
void producer_poll(struct producer *p, int timeout_ms);
/* The outbox ids delivered since the last call: *ids (caller frees each and the array). */
size_t producer_take_delivered(struct producer *p, char ***ids);
/* The messages that failed since the last call (caller frees with producer_failed_free). */
size_t producer_take_failed(struct producer *p, struct producer_failed **out);
void producer_failed_free(struct producer_failed *f, size_t n);
/* Messages still waiting for a delivery report. */
int producer_in_flight(const struct producer *p);
/* True after librdkafka reported a fatal error: the client is unusable, and the caller makes
 * a new one (contract §7); what it held is in the outbox. */
bool producer_is_fatal(const struct producer *p);
/* True while every broker is down (librdkafka reported it), until Kafka answers again (a
 * delivery, or producer_probe): pick-up timeouts do not run meanwhile (contract §7). */
bool producer_kafka_down(const struct producer *p);
/* How many outages have ended (each restarts the pick-up clocks). */
uint64_t producer_recoveries(const struct producer *p);
/* While down: ask the cluster for its metadata (waits at most timeout_ms), so that the end of
 * an outage is seen even when nothing is being published. No-op when up. */
void producer_probe(struct producer *p, int timeout_ms);
/* Drop every message not yet delivered (they come back as PRODUCER_PURGED failures at the next
 * poll): a coordinator that lost the lease must publish nothing more; the outbox keeps them. */
void producer_purge(struct producer *p);

#endif /* RC_PRODUCER_H */
