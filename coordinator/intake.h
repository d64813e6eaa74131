/* SPDX-License-Identifier: MIT
 * intake: where an input is decoded and routed. Each trigger, cancel, resume or completion
 * becomes a planned change (the machine, or resume.c, decides what), each invalid input a dead
 * letter; every change is mirrored in the registry at once so later inputs of the batch and the
 * cycle's advance see it. Main loop only. */
#ifndef RC_INTAKE_H
#define RC_INTAKE_H

#include <stddef.h>
#include <stdint.h>

#include "common/rc_err.h"
#include "proto/msg.h"

struct cfg;
struct change_list;
struct idgen;
struct input;
struct metrics_tally;
struct registry;
struct store;
struct workers;

struct intake_env {
    const struct cfg *cfg;
    struct store *store;     /* for remembered trigger outcomes */
    struct registry *reg;    /* the mirror, updated as changes are planned */
    struct workers *workers; /* this iteration's heartbeats: the concurrency limit */
    struct idgen *ids;
    struct metrics_tally *tally; /* the pass's counts, the one ledger */
    int64_t now_ms;
};

/* Plan the effect of `n` inputs, appending to `out`; each change records the index of the input
 * that caused it. RC_EUNAVAIL: Redis unreachable while looking up trigger, cancel or resume
 * outcomes or the researches they name (nothing was planned or mirrored). */
enum rc_rc intake_plan(const struct intake_env *env, const struct input *inputs, size_t n,
                       struct change_list *out, struct rc_err *err);
/* Plan the dead letter of input `in` (index `index` of the pass) with reason `why`, and for a
 * trigger with a readable request_id its `rejected` event (reason invalid): for an invalid
 * input, or one whose effect Redis refuses for good (contract §3, §7). `kind` labels it in
 * the metrics (the decoder's class; MSG_INVALID_BAD_VALUE for what is refused after it). */
void intake_dead_letter(const struct intake_env *env, const struct input *in, size_t index,
                        enum msg_invalid kind, const char *why, struct change_list *out);

#endif /* RC_INTAKE_H */
