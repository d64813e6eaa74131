/* SPDX-License-Identifier: MIT
 * bench_lat: percentiles, and research timelines in an open-addressing hash table keyed by
 * research id (FNV-1a, linear probing, kept at most half full). */
#include "tools/bench/bench_lat.h"

#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/num.h"
#include "common/xalloc.h"
#include "contract/limits.h"
#include "contract/phase.h"

#define WORKED 4 /* designing, training, backtesting, assessing */
#define LINE_MAX_BYTES 512

void
bench_samples_add(struct bench_samples *s, double v)
{
    s->v = xgrow(s->v, &s->cap, s->n + 1, sizeof(*s->v));
    s->v[s->n++] = v;
}

static int
cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a;
    double y = *(const double *)b;
    return (x > y) - (x < y);
}

double
bench_samples_pct(struct bench_samples *s, double p)
{
    if (s->n == 0) {
        return NAN;
    }
    qsort(s->v, s->n, sizeof(*s->v), cmp_double);
    double rank = ceil(p / 100.0 * (double)s->n);
    size_t i = rank < 1.0 ? 0 : (size_t)rank - 1;
    return s->v[i < s->n ? i : s->n - 1];
}

void
bench_samples_release(struct bench_samples *s)
{
    free(s->v);
    *s = (struct bench_samples)BENCH_SAMPLES_INIT;
}

/* One research's times, Unix µs, 0 when unknown. */
struct entry {
    char *id; /* NULL: an empty slot */
    int64_t trigger;
    int64_t finished;
    int64_t recv[WORKED];
    int64_t done[WORKED];
};

struct bench_timeline {
    struct entry *slots;
    size_t cap; /* a power of two */
    size_t n;
};

struct bench_timeline *
bench_timeline_new(void)
{
    struct bench_timeline *tl = xcalloc(1, sizeof(*tl));
    tl->cap = 1024;
    tl->slots = xcalloc(tl->cap, sizeof(*tl->slots));
    return tl;
}

void
bench_timeline_free(struct bench_timeline *tl)
{
    if (tl == NULL) {
        return;
    }
    for (size_t i = 0; i < tl->cap; i++) {
        free(tl->slots[i].id);
    }
    free(tl->slots);
    free(tl);
}

static size_t
hash(const char *s)
{
    uint64_t h = UINT64_C(14695981039346656037);
    for (const unsigned char *p = (const unsigned char *)s; *p != '\0'; p++) {
        h = (h ^ *p) * UINT64_C(1099511628211);
    }
    return (size_t)h;
}

static struct entry *
probe(struct entry *slots, size_t cap, const char *id)
{
    size_t i = hash(id) & (cap - 1);
    while (slots[i].id != NULL && strcmp(slots[i].id, id) != 0) {
        i = (i + 1) & (cap - 1);
    }
    return &slots[i];
}

/* The entry of `id`, created when new. */
static struct entry *
entry_of(struct bench_timeline *tl, const char *id)
{
    if (2 * (tl->n + 1) > tl->cap) {
        size_t cap = tl->cap * 2;
        struct entry *slots = xcalloc(cap, sizeof(*slots));
        for (size_t i = 0; i < tl->cap; i++) {
            if (tl->slots[i].id != NULL) {
                *probe(slots, cap, tl->slots[i].id) = tl->slots[i];
            }
        }
        free(tl->slots);
        tl->slots = slots;
        tl->cap = cap;
    }
    struct entry *e = probe(tl->slots, tl->cap, id);
    if (e->id == NULL) {
        e->id = xstrdup(id);
        tl->n++;
    }
    return e;
}

void
bench_timeline_set_trigger(struct bench_timeline *tl, const char *research_id, int64_t us)
{
    entry_of(tl, research_id)->trigger = us;
}

void
bench_timeline_set_finished(struct bench_timeline *tl, const char *research_id, int64_t us)
{
    entry_of(tl, research_id)->finished = us;
}

/* One log line into the timeline; false when malformed. */
static bool
add_line(struct bench_timeline *tl, char *line)
{
    char *fields[4];
    size_t n = 0;
    char *p = line;

    while (n < 4) {
        while (*p == ' ') {
            p++;
        }
        if (*p == '\0') {
            break;
        }
        fields[n++] = p;
        while (*p != ' ' && *p != '\0') {
            p++;
        }
        if (*p == ' ') {
            *p++ = '\0';
        }
    }
    enum phase ph;
    bool recv = n == 4 && strcmp(fields[0], "recv") == 0;
    if (n != 4 || (!recv && strcmp(fields[0], "done") != 0) ||
        !limits_is_id(fields[1], strlen(fields[1])) || phase_parse(fields[2], &ph) != RC_OK ||
        !phase_is_worked(ph)) {
        return false;
    }
    int64_t us = 0;
    if (!num_parse_i64(fields[3], strlen(fields[3]), &us) || us <= 0) {
        return false;
    }
    struct entry *e = entry_of(tl, fields[1]);
    int64_t *slot = recv ? &e->recv[ph - PHASE_DESIGNING] : &e->done[ph - PHASE_DESIGNING];
    if (*slot == 0) {
        *slot = us;
    }
    return true;
}

enum rc_rc
bench_timeline_read_log(struct bench_timeline *tl, const char *path, struct rc_err *err)
{
    FILE *f = fopen(path, "r");
    char line[LINE_MAX_BYTES];
    enum rc_rc rc = RC_OK;
    size_t line_no = 0;

    if (f == NULL) {
        return rc_err_sys(err, "open %s", path);
    }
    while (fgets(line, sizeof(line), f) != NULL) {
        line_no++;
        size_t len = strlen(line);
        if (len > 0 && line[len - 1] == '\n') {
            line[--len] = '\0';
        }
        if (len > 0 && !add_line(tl, line)) {
            rc = rc_err_set(err, RC_EPROTO, "%s:%zu: not `recv|done <research_id> <phase> <us>`",
                            path, line_no);
            break;
        }
    }
    fclose(f);
    return rc;
}

static void
add_ms(struct bench_samples *s, int64_t from_us, int64_t to_us)
{
    if (s != NULL && from_us > 0 && to_us > 0) {
        bench_samples_add(s, (double)(to_us - from_us) / 1000.0);
    }
}

void
bench_timeline_latencies(const struct bench_timeline *tl, struct bench_samples *handoff,
                         struct bench_samples *first, struct bench_samples *total,
                         size_t *n_complete)
{
    size_t complete = 0;

    for (size_t i = 0; i < tl->cap; i++) {
        const struct entry *e = &tl->slots[i];
        if (e->id == NULL || e->trigger == 0) {
            continue; /* an empty slot, or a research not measured (a warm-up's log lines) */
        }
        bool all = true;
        for (int k = 0; k < WORKED; k++) {
            all = all && e->recv[k] > 0 && e->done[k] > 0;
        }
        complete += all;
        for (int k = 1; k < WORKED; k++) {
            add_ms(handoff, e->done[k - 1], e->recv[k]);
        }
        add_ms(first, e->trigger, e->recv[0]);
        add_ms(total, e->trigger, e->finished);
    }
    *n_complete = complete;
}
