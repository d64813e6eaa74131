/* SPDX-License-Identifier: MIT
 * capacity: the concurrency limit of the contract (§5): AGENT_MAX_CONCURRENT_RESEARCHES when
 * not 0, else live training + live backtest workers + AGENT_CONCURRENCY_BUFFER, never below 1.
 * Pure. */
#ifndef RC_CAPACITY_H
#define RC_CAPACITY_H

#include <stdint.h>

int64_t capacity_limit(int64_t max_concurrent, int64_t live_training, int64_t live_backtest,
                       int64_t buffer);

#endif /* RC_CAPACITY_H */
