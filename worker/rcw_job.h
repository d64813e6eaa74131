/* SPDX-License-Identifier: MIT
 * rcw_job: one dispatch being run: its decoded message, its state machine (running, then done,
 * aborted or released: the first to happen wins), its progress and the result its handler
 * builds. The job thread and the I/O thread share it under its mutex; the accessors of rcw.h
 * are the handler's side, these functions the I/O thread's. No Kafka, no Redis. */
#ifndef RC_RCW_JOB_H
#define RC_RCW_JOB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/rc_err.h"
#include "proto/msg.h"
#include "worker/rcw.h"

struct buf;

enum rcw_job_state {
    RCW_JOB_RUNNING = 0, /* its handler runs */
    RCW_JOB_DONE,        /* its handler returned: its completion is to be published */
    RCW_JOB_ABORTED,     /* an abort came first: nothing is published */
    RCW_JOB_RELEASED,    /* shutdown came first: `released` is (or was) published */
};

/* A new running job for the dispatch in raw[0..len) (copied), decoded as `m` (taken: left at
 * MSG_INIT), run by worker `slot`. Free with rcw_job_free. */
struct rcw_job *rcw_job_new(struct msg *m, const char *raw, size_t len, size_t slot);
void rcw_job_free(struct rcw_job *job);

/* Move a running job to `to` (DONE, ABORTED or RELEASED) and wake its rcw_job_wait. Returns
 * false, changing nothing, when it has already left RUNNING: the first transition wins. */
bool rcw_job_settle(struct rcw_job *job, enum rcw_job_state to);
enum rcw_job_state rcw_job_state(struct rcw_job *job);
size_t rcw_job_slot(const struct rcw_job *job);
const struct dispatch *rcw_job_dispatch(const struct rcw_job *job);

/* Its progress for a heartbeat: true with *progress (NaN: none given) and `step` ("" when
 * none; RCW_STEP_MAX + 1 bytes) when it changed since the last call. */
bool rcw_job_take_progress(struct rcw_job *job, double *progress, char *step);

/* The completion of a DONE job, written into `out` (borrowing the job's memory): completed
 * with its result, or failed with its error. Unless `unchecked`, the result is checked
 * against the phase's rules first; a bad one makes it failed, with the check's message
 * ("bad result: <key>: <rule>") as error, and returns true (the caller logs it). */
bool rcw_job_completion(struct rcw_job *job, bool unchecked, struct completion *out);

/* Thread plumbing (rcw.c): the job's link in the run queue, then in the done queue. */
struct rcw_job_link {
    struct rcw_job *next;
};
struct rcw_job_link *rcw_job_link(struct rcw_job *job);

#endif /* RC_RCW_JOB_H */
