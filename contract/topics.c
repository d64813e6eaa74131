/* SPDX-License-Identifier: MIT
 * topics: the contract's topic names (§2). */
#include "contract/topics.h"

#include "common/rc_err.h"

static const char *const suffixes[TOPIC_COUNT] = {
    [TOPIC_TRIGGERS] = "triggers",
    [TOPIC_COMPLETIONS] = "completions",
    [TOPIC_DISPATCH_DESIGN] = "dispatch.design",
    [TOPIC_DISPATCH_TRAINING] = "dispatch.training",
    [TOPIC_DISPATCH_BACKTEST] = "dispatch.backtest",
    [TOPIC_DISPATCH_ASSESSMENT] = "dispatch.assessment",
    [TOPIC_EVENTS] = "events",
    [TOPIC_DEADLETTER] = "deadletter",
};

static const enum topic dispatch_topics[WORKER_TYPE_COUNT] = {
    [WORKER_DESIGN] = TOPIC_DISPATCH_DESIGN,
    [WORKER_TRAINING] = TOPIC_DISPATCH_TRAINING,
    [WORKER_BACKTEST] = TOPIC_DISPATCH_BACKTEST,
    [WORKER_ASSESSMENT] = TOPIC_DISPATCH_ASSESSMENT,
};

const char *
topic_suffix(enum topic t)
{
    RC_ASSERT(t >= 0 && t < TOPIC_COUNT);
    return suffixes[t];
}

enum topic
topic_dispatch(enum worker_type wt)
{
    RC_ASSERT(wt >= 0 && wt < WORKER_TYPE_COUNT);
    return dispatch_topics[wt];
}
