/* SPDX-License-Identifier: MIT
 * budget: what a phase result costs (contract §5). Pure: the day's spend is read and written
 * by the store (the day from clock_utc_day), the check is made by intake. */
#ifndef RC_BUDGET_H
#define RC_BUDGET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct cfg_agent;
struct cfg_price;
struct kv;

/* The price of `model`: the table entry with the longest prefix of it; an unknown or absent
 * model is priced as claude-sonnet-4-5 (its table entry, else 3/15). */
void budget_price(const struct cfg_agent *a, const char *model, double *input_per_m,
                  double *output_per_m);

/* The cost of a design or assessment result: its `cost_usd` when present, else its tokens
 * priced by its `model`, else by `research_model` (the trigger's). False when the result says
 * nothing about cost (no cost_usd, no tokens): nothing is charged. */
bool budget_cost(const struct cfg_agent *a, const struct kv *result, size_t n,
                 const char *research_model, double *out);

/* True when a trigger must be refused for the budget: a limit is set and nothing remains. */
bool budget_exhausted(double daily_limit, double spent, double *remaining);

/* Money as Redis stores it: shortest text that reads back as the same double. */
void budget_format(double usd, char *out, size_t len);

#endif /* RC_BUDGET_H */
