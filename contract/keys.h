/* SPDX-License-Identifier: MIT
 * keys: the Redis key layout of the contract (§6), built in this one place. Every key starts
 * with REDIS_KEY_PREFIX. Tools that read or heartbeat (stub-worker, tests) use these too. */
#ifndef RC_KEYS_H
#define RC_KEYS_H

#include "contract/phase.h"

struct buf;

/* Each appends the full key to `out` (after buf_reset) and returns out->data. */
const char *keys_research(struct buf *out, const char *prefix, const char *research_id);
const char *keys_active(struct buf *out, const char *prefix);
const char *keys_finished(struct buf *out, const char *prefix);
const char *keys_request(struct buf *out, const char *prefix, const char *request_id);
/* Ours: the figures a rejected trigger's outcome carries, beside rc:request:<id> (hash). */
const char *keys_request_figures(struct buf *out, const char *prefix, const char *request_id);
/* Ours: a cancel's outcome, so that the same cancel sent again repeats it (hash, TTL 24 h). */
const char *keys_cancel(struct buf *out, const char *prefix, const char *request_id);
/* Ours: a resume's outcome, likewise (hash, TTL 24 h; the same fields as a cancel's). */
const char *keys_resume(struct buf *out, const char *prefix, const char *request_id);
const char *keys_worker(struct buf *out, const char *prefix, const char *worker_id);
const char *keys_workers(struct buf *out, const char *prefix, enum worker_type wt);
const char *keys_budget(struct buf *out, const char *prefix, const char *utc_day);
/* Ours: what each research was charged that UTC day, beside rc:budget:<day> (hash: field
 * research_id, value USD; the same TTL). */
const char *keys_budget_charges(struct buf *out, const char *prefix, const char *utc_day);
const char *keys_coordinator(struct buf *out, const char *prefix);
const char *keys_leader(struct buf *out, const char *prefix);
/* Ours: messages written with the state change that caused them and deleted once Kafka has
 * them, so a crash between Redis and Kafka repeats a message but never loses one (hash). */
const char *keys_outbox(struct buf *out, const char *prefix);

#endif /* RC_KEYS_H */
