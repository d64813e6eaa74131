/* SPDX-License-Identifier: MIT
 * stubsim: the simulated side of stub-worker: results and randomness. */
#include "tools/stub-worker/stubsim.h"

#include <inttypes.h>

#include "common/buf.h"

/* A short, stable id derived from a research id (FNV-1a, 32 bits), for strategy names. */
static uint32_t
short_hash(const char *text)
{
    uint32_t h = UINT32_C(2166136261);
    for (const unsigned char *p = (const unsigned char *)text; *p != '\0'; p++) {
        h = (h ^ *p) * UINT32_C(16777619);
    }
    return h;
}

/* Token usage (and cost, when asked for) of the design and assessment results, which the
 * coordinator charges to the day's budget (§5). */
static size_t
add_usage(const struct stubsim_shape *shape, struct kv *result, size_t n)
{
    result[n++] = (struct kv){"input_tokens", value_int(shape->input_tokens)};
    result[n++] = (struct kv){"output_tokens", value_int(shape->output_tokens)};
    if (shape->has_cost) {
        result[n++] = (struct kv){"cost_usd", value_float(shape->cost_usd)};
    }
    return n;
}

size_t
stubsim_result(const struct stubsim_shape *shape, const char *research_id, const char *model,
               struct kv *result, struct buf *name, struct buf *path)
{
    bool bad = shape->bad_result;
    size_t n = 0;

    model = model != NULL ? model : STUBSIM_DEFAULT_MODEL;
    switch (shape->type) {
    case WORKER_DESIGN:
        buf_printf(name, "strategy_%08" PRIx32, short_hash(research_id));
        buf_printf(path, "/strategies/%s.py", name->data);
        if (!bad) { /* bad: the required strategy_name is missing */
            result[n++] = (struct kv){"strategy_name", value_str(name->data)};
        }
        result[n++] = (struct kv){"strategy_path", value_str(path->data)};
        result[n++] = (struct kv){"model", value_str(model)};
        n = add_usage(shape, result, n);
        break;
    case WORKER_TRAINING:
        buf_printf(path, "/models/%s.bin", research_id);
        result[n++] = (struct kv){"accuracy", bad ? value_str("high")
                                                  : value_float(shape->fail_gate ? 0.05 : 0.62)};
        result[n++] = (struct kv){"final_loss", value_float(0.31)};
        result[n++] = (struct kv){"initial_loss", value_float(0.92)};
        result[n++] = (struct kv){"output_format", value_str("classification")};
        result[n++] = (struct kv){"model_path", value_str(path->data)};
        break;
    case WORKER_BACKTEST:
        result[n++] = (struct kv){"win_rate", bad ? value_str("x") : value_float(0.55)};
        result[n++] = (struct kv){"max_drawdown", value_float(shape->fail_gate ? 0.9 : 0.12)};
        result[n++] = (struct kv){"sharpe_ratio", value_float(1.4)};
        result[n++] = (struct kv){"total_return", value_float(0.18)};
        result[n++] = (struct kv){"net_return", value_float(0.15)};
        result[n++] = (struct kv){"total_trades", value_int(42)};
        break;
    case WORKER_ASSESSMENT:
        if (!bad) { /* bad: the required verdict is missing */
            result[n++] = (struct kv){"verdict", value_str("promising")};
        }
        result[n++] = (struct kv){"model", value_str(model)};
        n = add_usage(shape, result, n);
        break;
    case WORKER_TYPE_COUNT:
        break;
    }
    return n;
}

uint64_t
stubsim_rand(uint64_t *state)
{
    uint64_t z = (*state += UINT64_C(0x9E3779B97F4A7C15));
    z = (z ^ (z >> 30)) * UINT64_C(0xBF58476D1CE4E5B9);
    z = (z ^ (z >> 27)) * UINT64_C(0x94D049BB133111EB);
    return z ^ (z >> 31);
}

double
stubsim_rand_unit(uint64_t *state)
{
    return (double)(stubsim_rand(state) >> 11) * 0x1.0p-53;
}

int64_t
stubsim_rand_range(uint64_t *state, int64_t min, int64_t max)
{
    uint64_t span = (uint64_t)max - (uint64_t)min;
    uint64_t r = stubsim_rand(state);
    /* The modulo bias is at most span/2^64: irrelevant for simulated durations. */
    return span == UINT64_MAX ? (int64_t)r : min + (int64_t)(r % (span + 1));
}
