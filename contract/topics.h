/* SPDX-License-Identifier: MIT
 * topics: the Kafka topics of the contract (§2), each named KAFKA_TOPIC_PREFIX + suffix, and
 * which dispatch topic serves which worker type. Pure data. */
#ifndef RC_TOPICS_H
#define RC_TOPICS_H

#include "contract/phase.h"

enum topic {
    TOPIC_TRIGGERS = 0,
    TOPIC_COMPLETIONS,
    TOPIC_DISPATCH_DESIGN,
    TOPIC_DISPATCH_TRAINING,
    TOPIC_DISPATCH_BACKTEST,
    TOPIC_DISPATCH_ASSESSMENT,
    TOPIC_EVENTS,
    TOPIC_DEADLETTER,
    TOPIC_COUNT
};

/* "triggers", "dispatch.design", ... (RC_ASSERT on an out-of-range topic). */
const char *topic_suffix(enum topic t);
/* The topic carrying dispatches and aborts to workers of type `wt`. */
enum topic topic_dispatch(enum worker_type wt);

#endif /* RC_TOPICS_H */
