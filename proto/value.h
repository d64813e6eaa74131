/* SPDX-License-Identifier: MIT
 * value: the few MessagePack shapes a phase result or dispatch params may hold: scalars and,
 * one level deep, a map of scalars; and one opaque object carried as it came (a trigger's
 * options). Decoded values live in their message's memory. */
#ifndef RC_VALUE_H
#define RC_VALUE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct kv;

enum value_kind {
    VALUE_NIL = 0, /* also: absent, or an empty string on decode */
    VALUE_BOOL,
    VALUE_INT,
    VALUE_FLOAT,
    VALUE_STR,
    VALUE_MAP,   /* string-keyed map of scalars (one level only) */
    VALUE_OTHER, /* decoded but unusable here (array, bin, nested too deep): kept so a validator
                    can say "must be a number" */
    VALUE_RAW,   /* one whole MessagePack object, encoded: `s` points at its raw_len bytes */
};

struct value {
    enum value_kind kind;
    bool b;
    int64_t i;
    double f;
    const char *s;      /* VALUE_STR: NUL-terminated */
    const struct kv *map; /* VALUE_MAP */
    size_t map_len;
    size_t raw_len; /* VALUE_RAW */
};

struct kv {
    const char *key;
    struct value val;
};

/* Constructors for building params and results on the stack. */
struct value value_nil(void);
struct value value_str(const char *s); /* NULL or "" gives VALUE_NIL */
struct value value_int(int64_t i);
struct value value_float(double f);
struct value value_bool(bool b);
struct value value_map(const struct kv *map, size_t len);
struct value value_raw(const char *mp, size_t len); /* NULL gives VALUE_NIL */

/* The entry named `key`, or NULL. */
const struct kv *kv_find(const struct kv *kv, size_t n, const char *key);
/* True (and *out) when v is an int or float. */
bool value_number(const struct value *v, double *out);

#endif /* RC_VALUE_H */
