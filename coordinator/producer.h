/* SPDX-License-Identifier: MIT
 * producer: publishes dispatches, aborts, events and dead letters. Delivery reports are served
 * inside producer_poll() on the main loop; the outbox ids of delivered messages are handed
 * back so the loop can delete them from Redis, and failed ones so it can send them again. */
#ifndef RC_PRODUCER_H
#define RC_PRODUCER_H

#include <stdbool.h>
#include <stddef.h>

#include "common/rc_err.h"

struct cfg_kafka;
struct producer;

/* A message whose delivery failed for good (after librdkafka's own retries). */
struct producer_failed {
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
 * producer_take_delivered() once Kafka has it. RC_EUNAVAIL: the local queue is full. */
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
/* True after librdkafka reported a fatal error: the process should shut down. */
bool producer_is_fatal(const struct producer *p);

#endif /* RC_PRODUCER_H */
