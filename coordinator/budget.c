/* SPDX-License-Identifier: MIT
 * budget: pricing of results. */
#include "coordinator/budget.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/cfg.h"
#include "proto/value.h"

#define FALLBACK_MODEL "claude-sonnet-4-5"
#define FALLBACK_INPUT_PER_M 3.0
#define FALLBACK_OUTPUT_PER_M 15.0

void
budget_price(const struct cfg_agent *a, const char *model, double *input_per_m,
             double *output_per_m)
{
    const struct cfg_price *best = NULL, *fallback = NULL;
    size_t best_len = 0;
    for (size_t i = 0; i < a->n_prices; i++) {
        const struct cfg_price *p = &a->prices[i];
        size_t len = strlen(p->model);
        if (model != NULL && strncmp(model, p->model, len) == 0 &&
            (best == NULL || len > best_len)) {
            best = p;
            best_len = len;
        }
        if (fallback == NULL && strcmp(p->model, FALLBACK_MODEL) == 0) {
            fallback = p;
        }
    }
    if (best == NULL) {
        best = fallback;
    }
    *input_per_m = best != NULL ? best->input_per_m : FALLBACK_INPUT_PER_M;
    *output_per_m = best != NULL ? best->output_per_m : FALLBACK_OUTPUT_PER_M;
}

/* A numeric entry of the result, when present. */
static bool
number(const struct kv *result, size_t n, const char *key, double *out)
{
    const struct kv *e = kv_find(result, n, key);
    return e != NULL && value_number(&e->val, out);
}

bool
budget_cost(const struct cfg_agent *a, const struct kv *result, size_t n,
            const char *research_model, double *out)
{
    double cost = 0, in = 0, outp = 0;
    if (number(result, n, "cost_usd", &cost)) {
        *out = cost;
        return true;
    }
    bool has_in = number(result, n, "input_tokens", &in);
    bool has_out = number(result, n, "output_tokens", &outp);
    if (!has_in && !has_out) {
        return false;
    }
    const struct kv *m = kv_find(result, n, "model");
    const char *model = m != NULL && m->val.kind == VALUE_STR ? m->val.s : research_model;
    double in_per_m = 0, out_per_m = 0;
    budget_price(a, model, &in_per_m, &out_per_m);
    *out = (in * in_per_m + outp * out_per_m) / 1e6;
    return true;
}

bool
budget_exhausted(double daily_limit, double spent, double *remaining)
{
    *remaining = daily_limit - spent;
    return daily_limit > 0 && *remaining <= 0;
}

void
budget_format(double usd, char *out, size_t len)
{
    for (int prec = 1; prec <= 17; prec++) {
        snprintf(out, len, "%.*g", prec, usd);
        if (strtod(out, NULL) == usd) {
            return;
        }
    }
}
