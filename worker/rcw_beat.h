/* SPDX-License-Identifier: MIT
 * rcw_beat: the words of one worker's heartbeat (contract §5): the HSET of its hash with the
 * required fields and the optional ones it has (progress, step, host, labels). Pure. */
#ifndef RC_RCW_BEAT_H
#define RC_RCW_BEAT_H

#include <stdbool.h>
#include <stddef.h>

#include "contract/fields.h"

#define RCW_BEAT_WORDS_MAX 20 /* HSET, key, 9 field/value pairs at most */
#define RCW_BEAT_NUM_MAX 32   /* bytes of a formatted progress */

struct rcw_beat {
    const char *type; /* "training" */
    enum hb_state state;
    const char *dispatch_id; /* "" when none */
    const char *research_id;
    const char *last_seen; /* ms, as text */
    double progress;       /* NaN: none */
    const char *step;      /* NULL or "": none */
    const char *host;      /* NULL: none */
    const char *labels;    /* NULL: none */
};

/* Fill words[0..RCW_BEAT_WORDS_MAX) with `HSET <key> type .. state .. dispatch_id ..
 * research_id .. last_seen .. [progress ..] [step ..] [host ..] [labels ..]`, borrowing every
 * string (a formatted progress goes into num); returns the word count. */
size_t rcw_beat_hset(const struct rcw_beat *b, const char *key, const char **words,
                     char num[RCW_BEAT_NUM_MAX]);

#endif /* RC_RCW_BEAT_H */
