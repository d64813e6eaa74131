/* SPDX-License-Identifier: MIT
 * loop: the coordinator's one loop. It waits for inputs or the next tick, records each input's
 * effect (intake), advances every active research oldest first (machine), writes all of it to
 * Redis in one pipelined batch (store), then publishes and commits. The only writer of state. */
#ifndef RC_LOOP_H
#define RC_LOOP_H

#include <signal.h>

#include "common/rc_err.h"

struct cfg;
struct loop;
struct metrics;

/* Build the loop (nothing connects yet). Caller frees with loop_free(). */
enum rc_rc loop_new(struct loop **out, const struct cfg *cfg, struct rc_err *err);
void loop_free(struct loop *l);
/* The loop's figures, for the HTTP endpoint (valid until loop_free). */
struct metrics *loop_metrics(struct loop *l);
/* Run until *stop becomes non-zero (SIGTERM/SIGINT), then finish the batch in progress, flush
 * and return RC_OK. RC_EINVAL: configuration refused by a library (exit 78); RC_ENOTFOUND:
 * topics missing that the cluster would not create (exit 69); RC_EBACKEND: a fatal Kafka
 * error. Redis and Kafka outages are waited out, never returned. */
enum rc_rc loop_run(struct loop *l, volatile sig_atomic_t *stop, struct rc_err *err);

#endif /* RC_LOOP_H */
