/* SPDX-License-Identifier: MIT
 * waitq: the researches waiting for a free worker, one queue per worker type, oldest first
 * (contract §5: free workers go to the oldest waiting research first). It lets a pass hand
 * the workers that turned free to the researches that want them without looking at every
 * active research. Entries are hints: a research may have moved on since it was queued (or
 * be queued twice), so whoever takes one checks it against the registry. Pure bookkeeping. */
#ifndef RC_WAITQ_H
#define RC_WAITQ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "contract/phase.h"

struct waitq;

struct waitq *waitq_new(void);
/* NULL is a no-op. */
void waitq_free(struct waitq *q);
/* Empty every queue (before the full sweep queues every waiting research again). */
void waitq_clear(struct waitq *q);
/* Queue research `id` (copied) for a worker of `wt`; `created_at_ms` and then the id order
 * the queue, as the registry orders researches by age. */
void waitq_push(struct waitq *q, enum worker_type wt, int64_t created_at_ms, const char *id);
/* Take the oldest id queued for `wt` into `id` (`len` bytes, truncated as snprintf would);
 * false when the queue is empty. */
bool waitq_pop(struct waitq *q, enum worker_type wt, char *id, size_t len);
size_t waitq_len(const struct waitq *q, enum worker_type wt);
/* The oldest entry queued for `wt`, left in place: its time into *at_ms and its id into *id
 * (borrowed until the queue changes); false when the queue is empty. */
bool waitq_peek(const struct waitq *q, enum worker_type wt, int64_t *at_ms, const char **id);

#endif /* RC_WAITQ_H */
