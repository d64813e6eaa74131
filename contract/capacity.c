/* SPDX-License-Identifier: MIT
 * capacity: the concurrency limit (§5). */
#include "contract/capacity.h"

int64_t
capacity_limit(int64_t max_concurrent, int64_t live_training, int64_t live_backtest,
               int64_t buffer)
{
    if (max_concurrent > 0) {
        return max_concurrent;
    }
    int64_t limit = live_training + live_backtest + buffer;
    return limit < 1 ? 1 : limit;
}
