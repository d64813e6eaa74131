/* SPDX-License-Identifier: MIT
 * rcw_seen: a ring of dispatch ids. */
#include "worker/rcw_seen.h"

#include <stdio.h>
#include <string.h>

bool
rcw_seen_has(const struct rcw_seen *s, const char *dispatch_id)
{
    if (dispatch_id == NULL || dispatch_id[0] == '\0') {
        return false; /* empty slots never match */
    }
    for (size_t i = 0; i < RCW_SEEN_MAX; i++) {
        if (strcmp(s->ids[i], dispatch_id) == 0) {
            return true;
        }
    }
    return false;
}

void
rcw_seen_add(struct rcw_seen *s, const char *dispatch_id)
{
    if (dispatch_id == NULL || dispatch_id[0] == '\0' || rcw_seen_has(s, dispatch_id)) {
        return;
    }
    snprintf(s->ids[s->next], sizeof(s->ids[0]), "%s", dispatch_id);
    s->next = (s->next + 1) % RCW_SEEN_MAX;
}
