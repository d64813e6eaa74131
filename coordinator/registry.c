/* SPDX-License-Identifier: MIT
 * registry: active researches by id and by age. */
#include "coordinator/registry.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/xalloc.h"
#include "contract/limits.h"
#include "coordinator/change.h"
#include "coordinator/idmap.h"
#include "coordinator/machine.h"
#include "coordinator/research.h"
#include "coordinator/waitq.h"

struct registry {
    struct research **items; /* age order; NULL = removed */
    size_t len;
    size_t cap;
    size_t count; /* non-NULL items */
    size_t gaps;  /* NULL items, closed by registry_compact */
    size_t sweep; /* the sweep's cursor: the next slot it visits */
    struct idmap *by_id;
    /* what the metrics show, kept as researches come, change and go */
    int64_t by_phase[PHASE_COUNT];
    int64_t waiting;
    int64_t waiting_by_type[WORKER_TYPE_COUNT]; /* machine_waits_for, by type */
    /* (waiting_since, id) of waiting researches by type, oldest first: hints, pushed when a
     * research may have started to wait, checked (and dropped when stale) when read. */
    struct waitq *since;
};

/* Count `r` in (sign 1) or out (sign -1) of the figures. */
static void
tally(struct registry *reg, const struct research *r, int sign)
{
    reg->by_phase[research_phase(r)] += sign;
    reg->waiting += sign * (research_get(r, RF_WAITING_SINCE) != NULL);
    enum worker_type wt;
    if (machine_waits_for(r, &wt)) {
        reg->waiting_by_type[wt] += sign;
    }
}

/* `r` may have started to wait, or to wait for another type: index it (a hint). */
static void
hint_wait(struct registry *reg, const struct research *r)
{
    enum worker_type wt;
    if (machine_waits_for(r, &wt)) {
        waitq_push(reg->since, wt, research_int(r, RF_WAITING_SINCE),
                   research_get(r, RF_RESEARCH_ID));
    }
}

/* Whether the hint (since_ms, id) for `wt` is still true. */
static bool
hint_holds(const struct registry *reg, enum worker_type wt, int64_t since_ms, const char *id)
{
    const struct research *r = idmap_get(reg->by_id, id);
    enum worker_type now;
    return r != NULL && machine_waits_for(r, &now) && now == wt &&
           research_int(r, RF_WAITING_SINCE) == since_ms;
}

struct registry *
registry_new(void)
{
    struct registry *reg = xcalloc(1, sizeof(*reg));
    reg->by_id = idmap_new();
    reg->since = waitq_new();
    return reg;
}

void
registry_clear(struct registry *reg)
{
    for (size_t i = 0; i < reg->len; i++) {
        research_free(reg->items[i]);
    }
    reg->len = 0;
    reg->count = 0;
    reg->gaps = 0;
    reg->sweep = 0;
    idmap_clear(reg->by_id);
    memset(reg->by_phase, 0, sizeof(reg->by_phase));
    reg->waiting = 0;
    memset(reg->waiting_by_type, 0, sizeof(reg->waiting_by_type));
    waitq_clear(reg->since);
}

void
registry_free(struct registry *reg)
{
    if (reg == NULL) {
        return;
    }
    registry_clear(reg);
    free(reg->items);
    idmap_free(reg->by_id);
    waitq_free(reg->since);
    free(reg);
}

static int
cmp_age(const struct research *a, const struct research *b)
{
    int64_t x = research_int(a, RF_CREATED_AT), y = research_int(b, RF_CREATED_AT);
    if (x != y) {
        return x < y ? -1 : 1;
    }
    return strcmp(research_get(a, RF_RESEARCH_ID), research_get(b, RF_RESEARCH_ID));
}

void
registry_add(struct registry *reg, struct research *r)
{
    const char *id = research_get(r, RF_RESEARCH_ID);
    RC_ASSERT(id != NULL);
    registry_remove(reg, id);
    registry_compact(reg);
    reg->items = xgrow(reg->items, &reg->cap, reg->len + 1, sizeof(*reg->items));
    /* Usually the newest: find the slot from the end. */
    size_t pos = reg->len;
    while (pos > 0 && cmp_age(reg->items[pos - 1], r) > 0) {
        pos--;
    }
    memmove(&reg->items[pos + 1], &reg->items[pos], (reg->len - pos) * sizeof(*reg->items));
    reg->items[pos] = r;
    reg->len++;
    if (pos < reg->sweep) {
        reg->sweep++; /* the cursor stays on the same research */
    }
    for (size_t i = pos; i < reg->len; i++) {
        reg->items[i]->slot = i;
    }
    reg->count++;
    idmap_put(reg->by_id, id, r);
    tally(reg, r, 1);
    hint_wait(reg, r);
}

struct research *
registry_find(const struct registry *reg, const char *id)
{
    return idmap_get(reg->by_id, id);
}

void
registry_remove(struct registry *reg, const char *id)
{
    struct research *r = idmap_del(reg->by_id, id);
    if (r == NULL) {
        return;
    }
    RC_ASSERT(r->slot < reg->len && reg->items[r->slot] == r);
    reg->items[r->slot] = NULL;
    reg->gaps++;
    tally(reg, r, -1);
    research_free(r);
    reg->count--;
}

size_t
registry_count(const struct registry *reg)
{
    return reg->count;
}

size_t
registry_len(const struct registry *reg)
{
    return reg->len;
}

struct research *
registry_at(const struct registry *reg, size_t i)
{
    return i < reg->len ? reg->items[i] : NULL;
}

void
registry_compact(struct registry *reg)
{
    if (reg->gaps == 0) {
        return;
    }
    size_t j = 0, sweep = reg->sweep;
    for (size_t i = 0; i < reg->len; i++) {
        if (i == reg->sweep) {
            sweep = j;
        }
        if (reg->items[i] != NULL) {
            reg->items[i]->slot = j;
            reg->items[j++] = reg->items[i];
        }
    }
    reg->sweep = reg->sweep >= reg->len ? j : sweep;
    reg->len = j;
    reg->gaps = 0;
}

void
registry_sweep_start(struct registry *reg)
{
    reg->sweep = 0;
}

struct research *
registry_sweep_next(struct registry *reg)
{
    while (reg->sweep < reg->len) {
        struct research *r = reg->items[reg->sweep++];
        if (r != NULL) {
            return r;
        }
    }
    return NULL;
}

void
registry_figures(const struct registry *reg, int64_t by_phase[PHASE_COUNT], int64_t *waiting)
{
    memcpy(by_phase, reg->by_phase, sizeof(reg->by_phase));
    *waiting = reg->waiting;
}

/* Rebuild `wt`'s index from its entries that still hold, once stale ones outnumber them: the
 * oldest waiter may keep stale entries behind it for long. */
static void
compact_hints(struct registry *reg, enum worker_type wt, int64_t n_waiting)
{
    if (waitq_len(reg->since, wt) <= 2 * (size_t)n_waiting + 64) {
        return;
    }
    struct waitq *kept = waitq_new();
    int64_t at = 0;
    const char *id = NULL;
    while (waitq_peek(reg->since, wt, &at, &id)) {
        if (hint_holds(reg, wt, at, id)) {
            waitq_push(kept, wt, at, id);
        }
        char dropped[LIMITS_ID_MAX + 1];
        (void)waitq_pop(reg->since, wt, dropped, sizeof(dropped));
    }
    while (waitq_peek(kept, wt, &at, &id)) {
        waitq_push(reg->since, wt, at, id);
        char moved[LIMITS_ID_MAX + 1];
        (void)waitq_pop(kept, wt, moved, sizeof(moved));
    }
    waitq_free(kept);
}

void
registry_waits(struct registry *reg, int64_t n_waiting[WORKER_TYPE_COUNT],
               int64_t oldest_since_ms[WORKER_TYPE_COUNT])
{
    for (int t = 0; t < WORKER_TYPE_COUNT; t++) {
        const enum worker_type wt = (enum worker_type)t;
        n_waiting[t] = reg->waiting_by_type[t];
        oldest_since_ms[t] = 0;
        compact_hints(reg, wt, n_waiting[t]);
        int64_t at = 0;
        const char *id = NULL;
        while (waitq_peek(reg->since, wt, &at, &id)) {
            if (hint_holds(reg, wt, at, id)) {
                oldest_since_ms[t] = at;
                break;
            }
            char dropped[LIMITS_ID_MAX + 1];
            (void)waitq_pop(reg->since, wt, dropped, sizeof(dropped));
        }
    }
}

void
registry_apply(struct registry *reg, const struct change *c)
{
    if (c->research_id == NULL) {
        return;
    }
    if (c->kind == CHANGE_CREATE) {
        struct research *r = research_new();
        change_apply(c, r);
        registry_add(reg, r);
    } else if (c->kind == CHANGE_FINISH) {
        registry_remove(reg, c->research_id);
    } else {
        struct research *r = registry_find(reg, c->research_id);
        if (r != NULL) {
            tally(reg, r, -1);
            change_apply(c, r);
            tally(reg, r, 1);
            /* What it waits for, if anything, follows from these alone (machine_waits_for). */
            if (c->set[RF_WAITING_SINCE] || c->set[RF_CHILD_STATUS] || c->set[RF_PHASE]) {
                hint_wait(reg, r);
            }
        }
    }
}
