/* SPDX-License-Identifier: MIT
 * bench_lat: the benchmark's latency arithmetic. Samples and their percentiles, and the
 * timeline of each research assembled from the driver's trigger times, the finish times in
 * Redis and the stub workers' --latency-log lines, from which hand-off and trigger-to-first-
 * dispatch latencies are drawn. No I/O except reading those logs. */
#ifndef RC_BENCH_LAT_H
#define RC_BENCH_LAT_H

#include <stddef.h>
#include <stdint.h>

#include "common/rc_err.h"

/* A growable set of numbers (plain data). */
struct bench_samples {
    double *v;
    size_t n;
    size_t cap;
};

#define BENCH_SAMPLES_INIT                                                                         \
    {                                                                                              \
        NULL, 0, 0                                                                                 \
    }

void bench_samples_add(struct bench_samples *s, double v);
/* The p-th percentile (0 < p <= 100) by nearest rank: the smallest sample with at least p % of
 * the samples at or below it. NAN when there are none. Sorts the samples. */
double bench_samples_pct(struct bench_samples *s, double p);
void bench_samples_release(struct bench_samples *s);

struct bench_timeline; /* opaque: research id -> its times */

struct bench_timeline *bench_timeline_new(void);
/* NULL is a no-op. */
void bench_timeline_free(struct bench_timeline *tl);

/* When research `research_id`'s trigger was produced and when it finished (Unix µs). */
void bench_timeline_set_trigger(struct bench_timeline *tl, const char *research_id, int64_t us);
void bench_timeline_set_finished(struct bench_timeline *tl, const char *research_id, int64_t us);
/* Add the lines of one --latency-log (`recv|done <research_id> <phase> <us>`). A phase seen
 * twice keeps its first time (a redelivered dispatch is not a second hand-off). RC_ESYS when
 * the file cannot be read, RC_EPROTO naming the first malformed line. */
enum rc_rc bench_timeline_read_log(struct bench_timeline *tl, const char *path, struct rc_err *err);

/* The latencies in milliseconds of the researches with a trigger time (the measured ones),
 * each added to its set (a set may be NULL):
 * - handoff: recv of a phase's dispatch minus done of the phase before, for the three
 *   hand-offs of every research that has both;
 * - first: recv of the designing dispatch minus the trigger's production;
 * - total: finish minus the trigger's production.
 * *n_complete counts the researches with all eight log times. */
void bench_timeline_latencies(const struct bench_timeline *tl, struct bench_samples *handoff,
                              struct bench_samples *first, struct bench_samples *total,
                              size_t *n_complete);

#endif /* RC_BENCH_LAT_H */
