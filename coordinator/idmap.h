/* SPDX-License-Identifier: MIT
 * idmap: a hash map from id strings to borrowed pointers (open addressing, linear probing).
 * Keys are copied; values belong to the caller. */
#ifndef RC_IDMAP_H
#define RC_IDMAP_H

#include <stddef.h>

struct idmap;

struct idmap *idmap_new(void);
/* Free the map and its key copies (not the values). NULL is a no-op. */
void idmap_free(struct idmap *m);
/* The value stored under `key`, or NULL. */
void *idmap_get(const struct idmap *m, const char *key);
/* Store `value` (not NULL) under `key`, replacing any previous value. */
void idmap_put(struct idmap *m, const char *key, void *value);
/* Remove `key`; returns its value or NULL. */
void *idmap_del(struct idmap *m, const char *key);
size_t idmap_count(const struct idmap *m);
/* Remove everything. */
void idmap_clear(struct idmap *m);
/* Call fn(key, value, arg) for every entry, in no particular order (the map must not change
 * meanwhile). */
void idmap_each(const struct idmap *m, void (*fn)(const char *key, void *value, void *arg),
                void *arg);

#endif /* RC_IDMAP_H */
