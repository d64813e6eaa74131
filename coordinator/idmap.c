/* SPDX-License-Identifier: MIT
 * idmap: open-addressing hash map keyed by id strings. Deleted slots are tombstones; the table
 * is rebuilt when live + dead entries pass 70% of the slots. */
#include "coordinator/idmap.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/xalloc.h"

struct slot {
    char *key;   /* NULL = empty */
    void *value; /* NULL with a key = tombstone */
};

struct idmap {
    struct slot *slots;
    size_t cap;  /* power of two */
    size_t live; /* keys with a value */
    size_t used; /* live + tombstones */
};

static uint64_t
hash(const char *s)
{
    uint64_t h = 1469598103934665603ULL; /* FNV-1a */
    for (; *s != '\0'; s++) {
        h ^= (unsigned char)*s;
        h *= 1099511628211ULL;
    }
    return h;
}

struct idmap *
idmap_new(void)
{
    struct idmap *m = xcalloc(1, sizeof(*m));
    m->cap = 64;
    m->slots = xcalloc(m->cap, sizeof(struct slot));
    return m;
}

static void
free_slots(struct slot *slots, size_t cap)
{
    for (size_t i = 0; i < cap; i++) {
        free(slots[i].key);
    }
    free(slots);
}

void
idmap_free(struct idmap *m)
{
    if (m == NULL) {
        return;
    }
    free_slots(m->slots, m->cap);
    free(m);
}

static struct slot *
find(const struct idmap *m, const char *key)
{
    size_t mask = m->cap - 1;
    for (size_t i = hash(key) & mask;; i = (i + 1) & mask) {
        struct slot *s = &m->slots[i];
        if (s->key == NULL) {
            return NULL;
        }
        if (s->value != NULL && strcmp(s->key, key) == 0) {
            return s;
        }
    }
}

void *
idmap_get(const struct idmap *m, const char *key)
{
    struct slot *s = find(m, key);
    return s != NULL ? s->value : NULL;
}

static void
insert_new(struct idmap *m, char *key, void *value)
{
    size_t mask = m->cap - 1;
    for (size_t i = hash(key) & mask;; i = (i + 1) & mask) {
        struct slot *s = &m->slots[i];
        if (s->key == NULL) {
            s->key = key;
            s->value = value;
            m->live++;
            m->used++;
            return;
        }
    }
}

static void
rebuild(struct idmap *m, size_t cap)
{
    struct slot *old = m->slots;
    size_t old_cap = m->cap;
    m->slots = xcalloc(cap, sizeof(struct slot));
    m->cap = cap;
    m->live = 0;
    m->used = 0;
    for (size_t i = 0; i < old_cap; i++) {
        if (old[i].key != NULL && old[i].value != NULL) {
            insert_new(m, old[i].key, old[i].value);
        } else {
            free(old[i].key);
        }
    }
    free(old);
}

void
idmap_put(struct idmap *m, const char *key, void *value)
{
    struct slot *s = find(m, key);
    if (s != NULL) {
        s->value = value;
        return;
    }
    if ((m->used + 1) * 10 > m->cap * 7) {
        size_t cap = m->cap;
        while ((m->live + 1) * 10 > cap * 5) {
            cap *= 2;
        }
        rebuild(m, cap);
    }
    insert_new(m, xstrdup(key), value);
}

void *
idmap_del(struct idmap *m, const char *key)
{
    struct slot *s = find(m, key);
    if (s == NULL) {
        return NULL;
    }
    void *v = s->value;
    s->value = NULL; /* tombstone keeps probe chains intact */
    m->live--;
    return v;
}

size_t
idmap_count(const struct idmap *m)
{
    return m->live;
}

void
idmap_clear(struct idmap *m)
{
    free_slots(m->slots, m->cap);
    m->cap = 64;
    m->slots = xcalloc(m->cap, sizeof(struct slot));
    m->live = 0;
    m->used = 0;
}

void
idmap_each(const struct idmap *m, void (*fn)(const char *key, void *value, void *arg), void *arg)
{
    for (size_t i = 0; i < m->cap; i++) {
        if (m->slots[i].key != NULL && m->slots[i].value != NULL) {
            fn(m->slots[i].key, m->slots[i].value, arg);
        }
    }
}
