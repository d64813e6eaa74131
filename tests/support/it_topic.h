/* SPDX-License-Identifier: MIT
 * it_topic (private to tests/support): creating and freeing a topic reader. The reading API is
 * in it_env.h; readers are owned by their env, which frees them at stop. */
#ifndef RC_IT_TOPIC_H
#define RC_IT_TOPIC_H

#include <librdkafka/rdkafka.h>

#include "common/rc_err.h"

struct it_topic;

/* A reader of the full topic name `topic` on `bootstrap`, decoding each message with
 * msg_decode(decode_as, ...) when decode_as >= 0 (an enum msg_topic), raw when -1.
 * RC_EBACKEND when librdkafka refuses the configuration. *out written only on success. */
enum rc_rc it_topic_new(struct it_topic **out, const char *bootstrap, const char *topic,
                        int decode_as, struct rc_err *err);
/* Close the consumer (without a group leave or commit) and free every message. NULL is a
 * no-op. */
void it_topic_free(struct it_topic *t);
/* The full topic name, for messages. */
const char *it_topic_name(const struct it_topic *t);

#endif /* RC_IT_TOPIC_H */
