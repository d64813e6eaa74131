/* SPDX-License-Identifier: MIT
 * acks: unacknowledged dispatches by outbox id. */
#include "coordinator/acks.h"

#include <stdint.h>
#include <stdlib.h>

#include "common/xalloc.h"
#include "coordinator/idmap.h"

struct pending {
    char *research_id;
    char *dispatch_id;
};

struct acks {
    struct idmap *by_outbox;   /* outbox id -> struct pending * (owned) */
    struct idmap *by_research; /* research id -> count of pending, as (count) cast pointer */
    char *taken_research;      /* the last acks_take's, owned until the next call */
    char *taken_dispatch;
};

struct acks *
acks_new(void)
{
    struct acks *a = xcalloc(1, sizeof(*a));
    a->by_outbox = idmap_new();
    a->by_research = idmap_new();
    return a;
}

static void
free_pending(const char *key, void *value, void *arg)
{
    (void)key;
    (void)arg;
    struct pending *p = value;
    free(p->research_id);
    free(p->dispatch_id);
    free(p);
}

void
acks_clear(struct acks *a)
{
    idmap_each(a->by_outbox, free_pending, NULL);
    idmap_clear(a->by_outbox);
    idmap_clear(a->by_research);
}

void
acks_free(struct acks *a)
{
    if (a == NULL) {
        return;
    }
    acks_clear(a);
    idmap_free(a->by_outbox);
    idmap_free(a->by_research);
    free(a->taken_research);
    free(a->taken_dispatch);
    free(a);
}

static void
count_add(struct idmap *m, const char *id, intptr_t d)
{
    intptr_t n = (intptr_t)idmap_get(m, id) + d;
    if (n > 0) {
        idmap_put(m, id, (void *)n);
    } else {
        (void)idmap_del(m, id);
    }
}

void
acks_expect(struct acks *a, const char *outbox_id, const char *research_id,
            const char *dispatch_id)
{
    struct pending *p = xcalloc(1, sizeof(*p));
    p->research_id = xstrdup(research_id);
    p->dispatch_id = xstrdup(dispatch_id);
    struct pending *old = idmap_del(a->by_outbox, outbox_id);
    if (old != NULL) {
        count_add(a->by_research, old->research_id, -1);
        free_pending(NULL, old, NULL);
    }
    idmap_put(a->by_outbox, outbox_id, p);
    count_add(a->by_research, research_id, 1);
}

bool
acks_take(struct acks *a, const char *outbox_id, const char **research_id,
          const char **dispatch_id)
{
    struct pending *p = idmap_del(a->by_outbox, outbox_id);
    if (p == NULL) {
        return false;
    }
    count_add(a->by_research, p->research_id, -1);
    free(a->taken_research);
    free(a->taken_dispatch);
    a->taken_research = p->research_id;
    a->taken_dispatch = p->dispatch_id;
    free(p);
    *research_id = a->taken_research;
    *dispatch_id = a->taken_dispatch;
    return true;
}

bool
acks_pending_for(const struct acks *a, const char *research_id)
{
    return idmap_get(a->by_research, research_id) != NULL;
}

size_t
acks_count(const struct acks *a)
{
    return idmap_count(a->by_outbox);
}
