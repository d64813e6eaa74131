/* SPDX-License-Identifier: MIT
 * rcw_beat: heartbeat words. */
#include "worker/rcw_beat.h"

#include <math.h>
#include <stdio.h>

size_t
rcw_beat_hset(const struct rcw_beat *b, const char *key, const char **words,
              char num[RCW_BEAT_NUM_MAX])
{
    size_t n = 0;

    words[n++] = "HSET";
    words[n++] = key;
    words[n++] = HB_TYPE;
    words[n++] = b->type;
    words[n++] = HB_STATE;
    words[n++] = hb_state_name(b->state);
    words[n++] = HB_DISPATCH_ID;
    words[n++] = b->dispatch_id;
    words[n++] = HB_RESEARCH_ID;
    words[n++] = b->research_id;
    words[n++] = HB_LAST_SEEN;
    words[n++] = b->last_seen;
    if (!isnan(b->progress)) {
        snprintf(num, RCW_BEAT_NUM_MAX, "%.4g", b->progress);
        words[n++] = HB_PROGRESS;
        words[n++] = num;
    }
    if (b->step != NULL && b->step[0] != '\0') {
        words[n++] = HB_STEP;
        words[n++] = b->step;
    }
    if (b->host != NULL) {
        words[n++] = HB_HOST;
        words[n++] = b->host;
    }
    if (b->labels != NULL) {
        words[n++] = HB_LABELS;
        words[n++] = b->labels;
    }
    return n;
}
