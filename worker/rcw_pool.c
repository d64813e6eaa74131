/* SPDX-License-Identifier: MIT
 * rcw_pool: kept job threads. Threads are kept, not made per dispatch: creating one (its stack
 * mapped and faulted in, then unmapped) cost stub-worker more CPU under tools/bench than all
 * the rest of a dispatch. One mutex guards both queues and the counts. */
#include "worker/rcw_pool.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <unistd.h>

#include "common/xalloc.h"
#include "worker/rcw_job.h"

struct rcw_pool {
    rcw_handler_fn handler;
    void *arg;
    int wake_fd;
    pthread_mutex_t mu;
    pthread_cond_t cv; /* a job to run, or quit */
    struct rcw_job *run_head;
    struct rcw_job *run_tail;
    struct rcw_job *done_head;
    struct rcw_job *done_tail;
    size_t n_run;      /* jobs in the run queue */
    size_t n_idle;     /* threads waiting for one */
    size_t n_starting; /* threads made, not yet waiting */
    size_t n_live;     /* jobs submitted, not yet taken back */
    bool quit;
    /* The I/O thread's alone. */
    struct rcw_job *add_head;
    struct rcw_job *add_tail;
    pthread_t *threads;
    size_t n_threads;
    size_t cap_threads;
};

static void
queue_push(struct rcw_job **head, struct rcw_job **tail, struct rcw_job *job)
{
    rcw_job_link(job)->next = NULL;
    if (*tail != NULL) {
        rcw_job_link(*tail)->next = job;
    } else {
        *head = job;
    }
    *tail = job;
}

static void
poke(int fd)
{
    ssize_t n = write(fd, "j", 1); /* a full pipe already wakes its reader: EAGAIN is fine */
    (void)n;
}

/* Take a job, run it, give it back; wait for the next. Threads are woken one at a time, each
 * taker waking one more while jobs remain: a quick handler's thread so takes the next job
 * itself before a sleeping one needs waking. Only the first job of an empty done queue
 * writes to wake_fd: the reader, which empties it, has yet to look for any later one. */
static void *
pool_main(void *arg)
{
    struct rcw_pool *p = arg;

    pthread_mutex_lock(&p->mu);
    p->n_starting--;
    for (;;) {
        p->n_idle++;
        while (p->run_head == NULL && !p->quit) {
            pthread_cond_wait(&p->cv, &p->mu);
        }
        p->n_idle--;
        if (p->run_head == NULL) {
            break; /* quit, nothing left to run */
        }
        struct rcw_job *job = p->run_head;
        p->run_head = rcw_job_link(job)->next;
        if (p->run_head == NULL) {
            p->run_tail = NULL;
        } else if (p->n_idle > 0) {
            pthread_cond_signal(&p->cv);
        }
        p->n_run--;
        pthread_mutex_unlock(&p->mu);
        p->handler(job, p->arg);
        (void)rcw_job_settle(job, RCW_JOB_DONE);
        pthread_mutex_lock(&p->mu);
        bool first = p->done_head == NULL;
        queue_push(&p->done_head, &p->done_tail, job);
        if (first) {
            poke(p->wake_fd);
        }
    }
    pthread_mutex_unlock(&p->mu);
    return NULL;
}

struct rcw_pool *
rcw_pool_new(rcw_handler_fn handler, void *arg, int wake_fd)
{
    struct rcw_pool *p = xcalloc(1, sizeof(*p));
    p->handler = handler;
    p->arg = arg;
    p->wake_fd = wake_fd;
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->cv, NULL);
    return p;
}

void
rcw_pool_add(struct rcw_pool *p, struct rcw_job *job)
{
    queue_push(&p->add_head, &p->add_tail, job);
}

void
rcw_pool_submit(struct rcw_pool *p)
{
    if (p->add_head == NULL) {
        return;
    }
    pthread_mutex_lock(&p->mu);
    bool was_empty = p->run_head == NULL;
    for (struct rcw_job *job = p->add_head, *next = NULL; job != NULL; job = next) {
        next = rcw_job_link(job)->next;
        queue_push(&p->run_head, &p->run_tail, job);
        p->n_run++;
        p->n_live++;
    }
    p->add_head = p->add_tail = NULL;
    while (p->n_run > p->n_idle + p->n_starting) {
        if (p->n_threads == p->cap_threads) {
            p->cap_threads = p->cap_threads == 0 ? 8 : 2 * p->cap_threads;
            p->threads = xrealloc(p->threads, p->cap_threads * sizeof(*p->threads));
        }
        if (pthread_create(&p->threads[p->n_threads], NULL, pool_main, p) != 0) {
            break; /* the threads there are take the rest in turn */
        }
        p->n_threads++;
        p->n_starting++;
    }
    if (p->n_threads == 0) {
        /* No thread at all to run them: fail them rather than hold them. */
        for (struct rcw_job *job = p->run_head, *next = NULL; job != NULL; job = next) {
            next = rcw_job_link(job)->next;
            rcw_job_fail(job, "worker could not start a thread");
            (void)rcw_job_settle(job, RCW_JOB_DONE);
            queue_push(&p->done_head, &p->done_tail, job);
        }
        p->run_head = p->run_tail = NULL;
        p->n_run = 0;
        poke(p->wake_fd);
    } else if (was_empty) {
        pthread_cond_signal(&p->cv); /* the first; each taker wakes the next */
    }
    pthread_mutex_unlock(&p->mu);
}

struct rcw_job *
rcw_pool_take_done(struct rcw_pool *p)
{
    pthread_mutex_lock(&p->mu);
    struct rcw_job *head = p->done_head;
    p->done_head = p->done_tail = NULL;
    for (struct rcw_job *job = head; job != NULL; job = rcw_job_link(job)->next) {
        p->n_live--;
    }
    pthread_mutex_unlock(&p->mu);
    return head;
}

size_t
rcw_pool_live(struct rcw_pool *p)
{
    pthread_mutex_lock(&p->mu);
    size_t n = p->n_live;
    pthread_mutex_unlock(&p->mu);
    return n;
}

size_t
rcw_pool_threads(const struct rcw_pool *p)
{
    return p->n_threads;
}

void
rcw_pool_free(struct rcw_pool *p)
{
    if (p == NULL || rcw_pool_live(p) > 0) {
        return;
    }
    pthread_mutex_lock(&p->mu);
    p->quit = true;
    pthread_cond_broadcast(&p->cv);
    pthread_mutex_unlock(&p->mu);
    for (size_t i = 0; i < p->n_threads; i++) {
        (void)pthread_join(p->threads[i], NULL);
    }
    for (struct rcw_job *job = p->add_head, *next = NULL; job != NULL; job = next) {
        next = rcw_job_link(job)->next;
        rcw_job_free(job); /* added, never submitted */
    }
    free(p->threads);
    pthread_cond_destroy(&p->cv);
    pthread_mutex_destroy(&p->mu);
    free(p);
}
