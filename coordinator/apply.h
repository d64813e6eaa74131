/* SPDX-License-Identifier: MIT
 * apply: the coordinator's one write path, planned: a pass's changes (and its figures) become
 * calls of one fenced Lua script, each change all or nothing (contract §7), and the script's
 * replies are judged into each change's fate and the pass's. Pure: no I/O (store_apply sends
 * the calls and reads the replies). The script itself, and what it checks before it writes,
 * is described where it is written, in apply.c. */
#ifndef RC_APPLY_H
#define RC_APPLY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <hiredis/hiredis.h>

#include "coordinator/store.h"

struct buf;
struct change;
struct apply; /* opaque: the script and the planning's scratch */

struct apply *apply_new(const char *key_prefix, const char *instance);
void apply_free(struct apply *ap);

/* The script's text, for SCRIPT LOAD on each new connection, and the sha it gave. */
const char *apply_script(const struct apply *ap);
void apply_set_sha(struct apply *ap, const char *sha);

/* Where a planned call goes: `len` bytes of one command in the Redis protocol, borrowed for
 * the call (store_apply queues it on the link at once: no pass-sized copy). */
typedef void apply_send_fn(void *ctx, const char *cmd, size_t len);

/* Hand `send` the script calls (EVALSHA) that write changes[0..n) and, when stats is not NULL,
 * the pass's figures last, each as soon as it is planned; returns how many calls. */
size_t apply_plan(struct apply *ap, const struct change *changes, size_t n,
                  const struct store_stats *stats, int64_t retention_s, apply_send_fn *send,
                  void *ctx);

/* The pass as the replies say. */
struct apply_outcome {
    bool fenced;        /* this instance does not hold the lease: nothing was written */
    const char *outage; /* not NULL: what made it an outage (borrows a reply) */
    bool drop_link;     /* a reply says the link must go (a demoted primary, no script) */
};

/* Judge the n_calls replies of a plan of n changes (with_stats: the figures were planned
 * too): results[i] for change i, *spent_usd (may be NULL) the day's spend the figures read
 * back, *o the pass's outcome. Logs the script's warnings when they change. */
void apply_judge(struct apply *ap, redisReply *const *replies, size_t n_calls, size_t n,
                 bool with_stats, struct store_result *results, double *spent_usd,
                 struct apply_outcome *o);

#endif /* RC_APPLY_H */
