/* SPDX-License-Identifier: MIT
 * value: constructors and lookups for the scalar and one-level map values of results and
 * dispatch params. Nothing here allocates. */
#include "proto/value.h"

#include <string.h>

struct value
value_nil(void)
{
    struct value v = {0};
    v.kind = VALUE_NIL;
    return v;
}

struct value
value_str(const char *s)
{
    struct value v = value_nil();
    if (s != NULL && s[0] != '\0') {
        v.kind = VALUE_STR;
        v.s = s;
    }
    return v;
}

struct value
value_int(int64_t i)
{
    struct value v = value_nil();
    v.kind = VALUE_INT;
    v.i = i;
    return v;
}

struct value
value_float(double f)
{
    struct value v = value_nil();
    v.kind = VALUE_FLOAT;
    v.f = f;
    return v;
}

struct value
value_bool(bool b)
{
    struct value v = value_nil();
    v.kind = VALUE_BOOL;
    v.b = b;
    return v;
}

struct value
value_raw(const char *mp, size_t len)
{
    struct value v = value_nil();
    if (mp != NULL) {
        v.kind = VALUE_RAW;
        v.s = mp;
        v.raw_len = len;
    }
    return v;
}

struct value
value_map(const struct kv *map, size_t len)
{
    struct value v = value_nil();
    v.kind = VALUE_MAP;
    v.map = map;
    v.map_len = len;
    return v;
}

const struct kv *
kv_find(const struct kv *kv, size_t n, const char *key)
{
    if (kv == NULL || key == NULL) {
        return NULL;
    }
    for (size_t i = 0; i < n; i++) {
        if (kv[i].key != NULL && strcmp(kv[i].key, key) == 0) {
            return &kv[i];
        }
    }
    return NULL;
}

bool
value_number(const struct value *v, double *out)
{
    if (v == NULL) {
        return false;
    }
    if (v->kind == VALUE_INT) {
        *out = (double)v->i;
        return true;
    }
    if (v->kind == VALUE_FLOAT) {
        *out = v->f;
        return true;
    }
    return false;
}
