/* SPDX-License-Identifier: MIT
 * workers: live and free workers of one cycle. */
#include "coordinator/workers.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/xalloc.h"
#include "contract/capacity.h"
#include "coordinator/idmap.h"

struct entry {
    struct worker_beat *beat;
    bool held;
};

/* What we remember of a worker's heartbeats between reads, by our own clock. */
struct sighting {
    int64_t last_seen_ms;   /* the value it last wrote */
    int64_t changed_at_ms;  /* when we first saw that value */
    char *dispatch_id;      /* owned: what it last named (NULL: none) */
    int64_t dispatch_since_ms;
};

struct workers {
    struct idmap *sightings; /* id -> struct sighting * (owned), for the workers of the read */
    struct worker_beat *beats;
    size_t n_beats;
    struct entry *entries; /* parallel to beats */
    struct idmap *by_id;   /* id -> struct entry * (this cycle) */
    struct idmap *last;    /* id -> (ms + 1) as a pointer: when we last dispatched to it */
    struct idmap *done;    /* id -> owned dispatch id whose completion we applied (see done) */
    /* id -> non-NULL: held by an active research. Kept across heartbeat reads: a take holds,
     * a completion releases, and the full sweep recomputes it from the researches. */
    struct idmap *held;
    /* free candidates per type, sorted by last dispatch, consumed from `next` */
    struct entry **order[WORKER_TYPE_COUNT];
    size_t n_order[WORKER_TYPE_COUNT];
    size_t next[WORKER_TYPE_COUNT];
    bool sorted[WORKER_TYPE_COUNT];
};

struct workers *
workers_new(void)
{
    struct workers *w = xcalloc(1, sizeof(*w));
    w->by_id = idmap_new();
    w->last = idmap_new();
    w->done = idmap_new();
    w->held = idmap_new();
    w->sightings = idmap_new();
    return w;
}

static void
drop_cycle(struct workers *w)
{
    for (size_t i = 0; i < w->n_beats; i++) {
        free(w->beats[i].id);
        free(w->beats[i].dispatch_id);
    }
    free(w->beats);
    free(w->entries);
    w->beats = NULL;
    w->entries = NULL;
    w->n_beats = 0;
    idmap_clear(w->by_id);
    for (int t = 0; t < WORKER_TYPE_COUNT; t++) {
        free(w->order[t]);
        w->order[t] = NULL;
        w->n_order[t] = 0;
        w->next[t] = 0;
        w->sorted[t] = false;
    }
}

static void
free_value(const char *key, void *value, void *arg)
{
    (void)key;
    (void)arg;
    free(value);
}

static void
free_sighting(const char *key, void *value, void *arg)
{
    (void)key;
    (void)arg;
    struct sighting *s = value;
    free(s->dispatch_id);
    free(s);
}

static bool
same_id(const char *a, const char *b)
{
    return (a == NULL && b == NULL) || (a != NULL && b != NULL && strcmp(a, b) == 0);
}

/* Update what we remember of `b` (taking it from `from` into `to`); true when it is live. */
static bool
sight(struct idmap *from, struct idmap *to, struct worker_beat *b, int64_t now_ms,
      int64_t timeout_ms)
{
    struct sighting *s = idmap_del(from, b->id);
    if (s == NULL) {
        s = xcalloc(1, sizeof(*s));
        s->last_seen_ms = b->last_seen_ms;
        s->changed_at_ms = now_ms;
        s->dispatch_id = xstrdup_or_null(b->dispatch_id);
        s->dispatch_since_ms = now_ms;
    }
    if (s->last_seen_ms != b->last_seen_ms) {
        s->last_seen_ms = b->last_seen_ms;
        s->changed_at_ms = now_ms;
    }
    if (!same_id(s->dispatch_id, b->dispatch_id)) {
        free(s->dispatch_id);
        s->dispatch_id = xstrdup_or_null(b->dispatch_id);
        s->dispatch_since_ms = now_ms;
    }
    b->dispatch_since_ms = s->dispatch_since_ms;
    idmap_put(to, b->id, s);
    return now_ms - s->changed_at_ms < timeout_ms;
}

struct prune {
    const struct idmap *keep;
    char **drop;
    size_t n;
    size_t cap;
};

static void
collect_gone(const char *key, void *value, void *arg)
{
    (void)value;
    struct prune *p = arg;
    if (idmap_get(p->keep, key) == NULL) {
        p->drop = xgrow(p->drop, &p->cap, p->n + 1, sizeof(*p->drop));
        p->drop[p->n++] = xstrdup(key);
    }
}

/* Forget when we last dispatched to workers no longer in the read: memory stays bounded by
 * the workers there are, not all there ever were. */
static void
prune_last(struct workers *w)
{
    struct prune p = {.keep = w->sightings};
    idmap_each(w->last, collect_gone, &p);
    for (size_t i = 0; i < p.n; i++) {
        (void)idmap_del(w->last, p.drop[i]);
        free(p.drop[i]);
    }
    free(p.drop);
}

/* A heartbeat still "busy" with a dispatch whose completion we applied is behind: the worker
 * said it was done when it published the completion. */
static bool
behind(const struct worker_beat *b, const char *done)
{
    return !b->idle && !b->draining && b->dispatch_id != NULL && done != NULL &&
           strcmp(b->dispatch_id, done) == 0;
}

void
workers_free(struct workers *w)
{
    if (w == NULL) {
        return;
    }
    drop_cycle(w);
    idmap_free(w->by_id);
    idmap_free(w->last);
    idmap_each(w->done, free_value, NULL);
    idmap_free(w->done);
    idmap_free(w->held);
    idmap_each(w->sightings, free_sighting, NULL);
    idmap_free(w->sightings);
    free(w);
}

void
workers_begin(struct workers *w, struct worker_beat *beats, size_t n, int64_t now_ms,
              int64_t timeout_ms)
{
    drop_cycle(w);
    /* Keep the live ones, in place; remember every one read (a silent worker is dropped from
     * the read by the store once it is older than timeout + skew). */
    struct idmap *sightings = idmap_new();
    size_t live = 0;
    for (size_t i = 0; i < n; i++) {
        if (idmap_get(sightings, beats[i].id) == NULL &&
            sight(w->sightings, sightings, &beats[i], now_ms, timeout_ms)) {
            beats[live++] = beats[i];
        } else {
            free(beats[i].id);
            free(beats[i].dispatch_id);
        }
    }
    n = live;
    idmap_each(w->sightings, free_sighting, NULL);
    idmap_free(w->sightings);
    w->sightings = sightings;
    prune_last(w);
    w->beats = beats;
    w->n_beats = n;
    w->entries = xcalloc(n > 0 ? n : 1, sizeof(struct entry));
    /* Keep a done dispatch only while the worker's heartbeat still shows it. */
    struct idmap *keep = idmap_new();
    for (size_t i = 0; i < n; i++) {
        w->entries[i].beat = &beats[i];
        w->entries[i].held = idmap_get(w->held, beats[i].id) != NULL;
        idmap_put(w->by_id, beats[i].id, &w->entries[i]);
        char *done = idmap_del(w->done, beats[i].id);
        if (behind(&beats[i], done)) {
            beats[i].idle = true;
            idmap_put(keep, beats[i].id, done);
        } else {
            free(done);
        }
    }
    idmap_each(w->done, free_value, NULL); /* workers no longer live */
    idmap_free(w->done);
    w->done = keep;
}

void
workers_done(struct workers *w, const char *worker_id, const char *dispatch_id)
{
    free(idmap_del(w->done, worker_id));
    idmap_put(w->done, worker_id, xstrdup(dispatch_id));
    (void)idmap_del(w->held, worker_id); /* the research that held it has its completion */
    struct entry *e = idmap_get(w->by_id, worker_id);
    if (e == NULL) {
        return;
    }
    e->held = false;
    if (behind(e->beat, dispatch_id)) {
        e->beat->idle = true;
    }
    w->sorted[e->beat->type] = false; /* rebuilt with it on the next take */
}

void
workers_release_all(struct workers *w)
{
    idmap_clear(w->held);
    for (size_t i = 0; i < w->n_beats; i++) {
        w->entries[i].held = false;
    }
    for (int t = 0; t < WORKER_TYPE_COUNT; t++) {
        w->sorted[t] = false;
    }
}

void
workers_release(struct workers *w, const char *worker_id)
{
    if (worker_id == NULL) {
        return;
    }
    (void)idmap_del(w->held, worker_id);
    struct entry *e = idmap_get(w->by_id, worker_id);
    if (e != NULL && e->held) {
        e->held = false;
        w->sorted[e->beat->type] = false; /* rebuilt with it on the next take */
    }
}

void
workers_hold(struct workers *w, const char *worker_id)
{
    if (worker_id == NULL) {
        return;
    }
    idmap_put(w->held, worker_id, w); /* any non-NULL value */
    struct entry *e = idmap_get(w->by_id, worker_id);
    if (e != NULL) {
        e->held = true;
    }
}

size_t
workers_count_free(const struct workers *w, enum worker_type wt)
{
    size_t n = 0;
    for (size_t i = 0; i < w->n_beats; i++) {
        const struct entry *e = &w->entries[i];
        n += e->beat->type == wt && e->beat->idle && !e->held;
    }
    return n;
}

size_t
workers_live(const struct workers *w, enum worker_type wt)
{
    size_t n = 0;
    for (size_t i = 0; i < w->n_beats; i++) {
        n += w->beats[i].type == wt;
    }
    return n;
}

size_t
workers_busy(const struct workers *w, enum worker_type wt)
{
    size_t n = 0;
    for (size_t i = 0; i < w->n_beats; i++) {
        n += w->beats[i].type == wt && !w->beats[i].idle;
    }
    return n;
}

const struct worker_beat *
workers_find(const struct workers *w, const char *worker_id)
{
    struct entry *e = idmap_get(w->by_id, worker_id);
    return e != NULL ? e->beat : NULL;
}

static int64_t
last_dispatch(const struct workers *w, const char *id)
{
    /* Stored as (ms + 1) cast into the pointer so that 0 ms is still non-NULL. */
    void *v = idmap_get(w->last, id);
    return v != NULL ? (int64_t)((intptr_t)v - 1) : -1;
}

struct sort_item {
    struct entry *e;
    int64_t last_ms;
};

static int
cmp_item(const void *a, const void *b)
{
    const struct sort_item *x = a, *y = b;
    if (x->last_ms != y->last_ms) {
        return x->last_ms < y->last_ms ? -1 : 1;
    }
    return strcmp(x->e->beat->id, y->e->beat->id);
}

/* Build the free list of `wt` once per cycle, on first use (holds are all known by then:
 * the loop marks every held worker before it advances anything). */
static void
sort_free(struct workers *w, enum worker_type wt)
{
    struct sort_item *items = xcalloc(w->n_beats > 0 ? w->n_beats : 1, sizeof(*items));
    size_t n = 0;
    for (size_t i = 0; i < w->n_beats; i++) {
        struct entry *e = &w->entries[i];
        if (e->beat->type == wt && e->beat->idle && !e->held) {
            items[n].e = e;
            items[n].last_ms = last_dispatch(w, e->beat->id);
            n++;
        }
    }
    qsort(items, n, sizeof(*items), cmp_item);
    free(w->order[wt]);
    w->order[wt] = xcalloc(n > 0 ? n : 1, sizeof(struct entry *));
    for (size_t i = 0; i < n; i++) {
        w->order[wt][i] = items[i].e;
    }
    w->n_order[wt] = n;
    w->next[wt] = 0;
    w->sorted[wt] = true;
    free(items);
}

const char *
workers_take(struct workers *w, enum worker_type wt, int64_t now_ms)
{
    if (!w->sorted[wt]) {
        sort_free(w, wt);
    }
    while (w->next[wt] < w->n_order[wt]) {
        struct entry *e = w->order[wt][w->next[wt]++];
        if (e->held) {
            continue;
        }
        e->held = true;
        idmap_put(w->held, e->beat->id, w);
        idmap_put(w->last, e->beat->id, (void *)(intptr_t)(now_ms + 1));
        return e->beat->id;
    }
    return NULL;
}

int64_t
workers_capacity(const struct workers *w, int64_t max_concurrent, int64_t buffer)
{
    return capacity_limit(max_concurrent, (int64_t)workers_live(w, WORKER_TRAINING),
                          (int64_t)workers_live(w, WORKER_BACKTEST), buffer);
}
