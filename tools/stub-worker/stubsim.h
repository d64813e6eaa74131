/* SPDX-License-Identifier: MIT
 * stubsim: what stub-worker fakes rather than does: each worker type's result (contract §3),
 * shaped to pass, to fail its gate or to break the schema, and a small seeded PRNG for
 * durations and failures. A real worker replaces this with its actual work. No I/O. */
#ifndef RC_STUBSIM_H
#define RC_STUBSIM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "contract/phase.h"
#include "proto/value.h"

struct buf;

#define STUBSIM_RESULT_MAX 8 /* keys in any result */
#define STUBSIM_DEFAULT_MODEL "claude-sonnet-4-5"

/* How results come out (from stub-worker's options). */
struct stubsim_shape {
    enum worker_type type;
    bool fail_gate;       /* training accuracy 0.05, backtest max_drawdown 0.9 */
    bool bad_result;      /* design without strategy_name, training accuracy "high",
                             backtest win_rate "x", assessment without verdict */
    int64_t input_tokens; /* design and assessment */
    int64_t output_tokens;
    bool has_cost; /* design and assessment carry cost_usd */
    double cost_usd;
};

/* Fill `result` (STUBSIM_RESULT_MAX entries) with the completed result of a dispatch of
 * research `research_id` whose params named `model` (NULL: none, the default is used).
 * Derived strings are written into `name` and `path`, which the result borrows, as it borrows
 * `model`: they must outlive it. Returns the number of keys. */
size_t stubsim_result(const struct stubsim_shape *shape, const char *research_id, const char *model,
                      struct kv *result, struct buf *name, struct buf *path);

/* splitmix64: the next 64 random bits of `state`. */
uint64_t stubsim_rand(uint64_t *state);
/* Uniform in [0, 1). */
double stubsim_rand_unit(uint64_t *state);
/* Uniform in [min, max] (min <= max). */
int64_t stubsim_rand_range(uint64_t *state, int64_t min, int64_t max);

#endif /* RC_STUBSIM_H */
