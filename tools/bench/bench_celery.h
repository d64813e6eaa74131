/* SPDX-License-Identifier: MIT
 * bench_celery: the Celery peer of the benchmark, driven from C: its own redis-server (unix
 * socket, no RDB, no AOF) as broker and result backend, one solo-pool worker process per
 * queue (design, training, backtest, assessment), and the client tools/bench_celery.py, which
 * submits the chains and reports their latencies over a pipe while the driver reads every
 * process's CPU time from /proc around each run. */
#ifndef RC_BENCH_CELERY_H
#define RC_BENCH_CELERY_H

#include <stddef.h>
#include <stdint.h>

#include "common/rc_err.h"
#include "tools/bench/bench_report.h"

struct proc_group;

struct bench_celery_opts {
    const char *python;     /* /usr/bin/python3: Debian's, where python3-celery installs */
    const char *script_dir; /* where bench_celery.py is */
    const char *dir;        /* the peer's directory (exists, empty) */
    const int64_t *n;       /* chains per throughput run */
    size_t n_runs;
    int64_t lowload; /* chains run one at a time (0: none) */
};

/* Run the peer into *out. When Celery cannot be imported, RC_OK with out->ran false and
 * out->note saying why (the benchmark goes on without it). Other failures: RC_EUNAVAIL (a
 * process not ready or not answering in time; its log is in opts->dir) or RC_EPROTO (the
 * client's answer could not be read). */
enum rc_rc bench_celery_run(struct proc_group *procs, const struct bench_celery_opts *opts,
                            struct bench_peer *out, struct rc_err *err);

#endif /* RC_BENCH_CELERY_H */
