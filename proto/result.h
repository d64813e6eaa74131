/* SPDX-License-Identifier: MIT
 * result: the schema of each phase's result (contract §3), its validation, and its text form
 * in the research hash (`training.accuracy` = "0.61"). */
#ifndef RC_RESULT_H
#define RC_RESULT_H

#include <stdbool.h>
#include <stddef.h>

#include "common/rc_err.h"
#include "contract/phase.h"
#include "proto/value.h"

struct buf;

enum result_kind {
    RESULT_NUMBER = 0, /* int or float */
    RESULT_STRING,
};

/* Bounds of a number (contract §3: cost and tokens, so that a worker cannot refill or
 * poison the day's budget). */
enum result_bound {
    RESULT_ANY = 0,     /* any finite number */
    RESULT_COST,        /* 0 <= x <= RESULT_COST_MAX */
    RESULT_TOKENS,      /* a whole number 0 <= n <= RESULT_TOKENS_MAX */
};

#define RESULT_COST_MAX 1000000.0  /* USD in one result */
#define RESULT_TOKENS_MAX 1e12     /* tokens in one result */

struct result_key {
    const char *name;      /* "accuracy" */
    enum result_kind kind;
    bool required;         /* strategy_name for design, verdict for assessment */
    const char *const *allowed; /* NULL, or the NULL-terminated set a string must be in */
    enum result_bound bound;    /* numbers */
};

/* The keys of `wt`'s result, in the contract's order. */
const struct result_key *result_schema(enum worker_type wt, size_t *n_keys);

/* Check a completed result against `wt`'s schema: required keys present, numbers numeric and
 * finite, costs and token counts within their bounds, strings strings within 4 KiB, values
 * in their set (output_format). RC_EPROTO with
 * err->msg "bad result: <key>: <rule>" otherwise. Keys not in the schema are ignored. */
enum rc_rc result_check(enum worker_type wt, const struct kv *result, size_t n,
                        struct rc_err *err);

/* The text of a scalar as stored in Redis: ints in decimal, floats in the shortest form that
 * reads back to the same double ("0.1", "1e-07"), strings as they are, bools 0/1. Appends to out. */
void result_format(const struct value *v, struct buf *out);
/* Read a stored text back as the schema's kind: a number becomes VALUE_INT when it is an
 * integer in decimal, else VALUE_FLOAT; RESULT_STRING stays a string (borrowing `text`). An
 * unreadable number gives VALUE_NIL. */
struct value result_parse(enum result_kind kind, const char *text);

#endif /* RC_RESULT_H */
