/* SPDX-License-Identifier: MIT
 * rcw_pool: the job threads of librcworker. The I/O thread adds a turn's jobs and hands them
 * over at once; kept threads run their handlers and give the jobs back through a done queue,
 * writing one byte to a wake descriptor when that queue stops being empty. Threads are made
 * only while more jobs wait than threads are idle, so the pool grows to the most handlers
 * that ever ran at once (an aborted handler slow to return keeps its thread meanwhile). No
 * Kafka, no Redis. */
#ifndef RC_RCW_POOL_H
#define RC_RCW_POOL_H

#include <stddef.h>

#include "worker/rcw.h"

struct rcw_job;
struct rcw_pool; /* opaque */

/* A pool running `handler(job, arg)` for each job and settling it DONE after (unless it was
 * settled otherwise first); `wake_fd` is written when a job is done (non-blocking, its
 * reader drains it). No thread is made yet. */
struct rcw_pool *rcw_pool_new(rcw_handler_fn handler, void *arg, int wake_fd);
/* Stop every thread (each once idle) and free. Only once rcw_pool_live() is 0: with jobs
 * still running it returns leaving the pool to the process's exit. NULL is a no-op. */
void rcw_pool_free(struct rcw_pool *p);

/* I/O thread only. Queue `job` for the next rcw_pool_submit (the pool owns it until it comes
 * back from rcw_pool_take_done). */
void rcw_pool_add(struct rcw_pool *p, struct rcw_job *job);
/* Hand the queued jobs to the threads, making threads while needed. Jobs no thread can ever
 * run (none could be made) are failed ("worker could not start a thread") and done. */
void rcw_pool_submit(struct rcw_pool *p);
/* The jobs done since the last call, oldest first, linked by rcw_job_link()->next (NULL:
 * none); the caller owns them. */
struct rcw_job *rcw_pool_take_done(struct rcw_pool *p);
/* Jobs submitted and not yet taken back. Any thread. */
size_t rcw_pool_live(struct rcw_pool *p);
/* Threads made so far (for tests). */
size_t rcw_pool_threads(const struct rcw_pool *p);

#endif /* RC_RCW_POOL_H */
