/* SPDX-License-Identifier: MIT
 * rcw_seen: the dispatch ids one worker remembers having run, refused or been told to abort
 * (contract §2: delivery is at least once), as a ring of the last RCW_SEEN_MAX. Pure. */
#ifndef RC_RCW_SEEN_H
#define RC_RCW_SEEN_H

#include <stdbool.h>
#include <stddef.h>

#include "contract/limits.h"

#define RCW_SEEN_MAX 64

struct rcw_seen {
    char ids[RCW_SEEN_MAX][LIMITS_ID_MAX + 1];
    size_t next; /* the slot the next id overwrites */
};

#define RCW_SEEN_INIT                                                                              \
    {                                                                                              \
        {{0}}, 0                                                                                   \
    }

/* True when `dispatch_id` is among the remembered ones. */
bool rcw_seen_has(const struct rcw_seen *s, const char *dispatch_id);
/* Remember `dispatch_id` (cut to LIMITS_ID_MAX bytes), forgetting the oldest when full. An id
 * already remembered is not added twice. */
void rcw_seen_add(struct rcw_seen *s, const char *dispatch_id);

#endif /* RC_RCW_SEEN_H */
