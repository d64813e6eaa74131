/* SPDX-License-Identifier: MIT
 * waitq: one binary min-heap of (created_at, id) per worker type. */
#include "coordinator/waitq.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/xalloc.h"

struct item {
    int64_t created_at_ms;
    char *id; /* owned */
};

struct heap {
    struct item *v;
    size_t n;
    size_t cap;
};

struct waitq {
    struct heap h[WORKER_TYPE_COUNT];
};

struct waitq *
waitq_new(void)
{
    return xcalloc(1, sizeof(struct waitq));
}

void
waitq_clear(struct waitq *q)
{
    for (int t = 0; t < WORKER_TYPE_COUNT; t++) {
        for (size_t i = 0; i < q->h[t].n; i++) {
            free(q->h[t].v[i].id);
        }
        q->h[t].n = 0;
    }
}

void
waitq_free(struct waitq *q)
{
    if (q == NULL) {
        return;
    }
    waitq_clear(q);
    for (int t = 0; t < WORKER_TYPE_COUNT; t++) {
        free(q->h[t].v);
    }
    free(q);
}

static bool
older(const struct item *a, const struct item *b)
{
    if (a->created_at_ms != b->created_at_ms) {
        return a->created_at_ms < b->created_at_ms;
    }
    return strcmp(a->id, b->id) < 0;
}

static void
swap(struct item *a, struct item *b)
{
    struct item t = *a;
    *a = *b;
    *b = t;
}

void
waitq_push(struct waitq *q, enum worker_type wt, int64_t created_at_ms, const char *id)
{
    struct heap *h = &q->h[wt];
    h->v = xgrow(h->v, &h->cap, h->n + 1, sizeof(*h->v));
    size_t i = h->n++;
    h->v[i] = (struct item){created_at_ms, xstrdup(id)};
    while (i > 0 && older(&h->v[i], &h->v[(i - 1) / 2])) {
        swap(&h->v[i], &h->v[(i - 1) / 2]);
        i = (i - 1) / 2;
    }
}

bool
waitq_pop(struct waitq *q, enum worker_type wt, char *id, size_t len)
{
    struct heap *h = &q->h[wt];
    if (h->n == 0) {
        return false;
    }
    snprintf(id, len, "%s", h->v[0].id);
    free(h->v[0].id);
    h->v[0] = h->v[--h->n];
    size_t i = 0;
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, m = i;
        if (l < h->n && older(&h->v[l], &h->v[m])) {
            m = l;
        }
        if (r < h->n && older(&h->v[r], &h->v[m])) {
            m = r;
        }
        if (m == i) {
            break;
        }
        swap(&h->v[i], &h->v[m]);
        i = m;
    }
    return true;
}

size_t
waitq_len(const struct waitq *q, enum worker_type wt)
{
    return q->h[wt].n;
}

bool
waitq_peek(const struct waitq *q, enum worker_type wt, int64_t *at_ms, const char **id)
{
    const struct heap *h = &q->h[wt];
    if (h->n == 0) {
        return false;
    }
    *at_ms = h->v[0].created_at_ms;
    *id = h->v[0].id;
    return true;
}
