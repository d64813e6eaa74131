/* SPDX-License-Identifier: MIT
 * research: the in-memory mirror of one research hash. */
#include "coordinator/research.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/rc_err.h"
#include "common/xalloc.h"

/* Names in enum order; the result names follow result_schema()'s order per worker type. */
static const char *const field_names[RF_COUNT] = {
    "research_id",
    "request_id",
    "status",
    "phase",
    "last_phase",
    "brief",
    "model",
    "bypass_gates",
    "strategy_name",
    "strategy_path",
    "model_path",
    "dispatch_id",
    "worker_id",
    "attempt",
    "child_status",
    "waiting_since",
    "created_at",
    "updated_at",
    "phase_started_at",
    "finished_at",
    "error",
    "gate_rejection_reason",
    "verdict",
    "cost_usd",
    "dispatched_at",
    "picked_up_at",
    /* design */
    "design.strategy_name",
    "design.strategy_path",
    "design.model",
    "design.input_tokens",
    "design.output_tokens",
    "design.cost_usd",
    /* training */
    "training.accuracy",
    "training.final_loss",
    "training.initial_loss",
    "training.output_format",
    "training.directional_accuracy",
    "training.model_path",
    /* backtest */
    "backtest.win_rate",
    "backtest.max_drawdown",
    "backtest.sharpe_ratio",
    "backtest.total_return",
    "backtest.net_return",
    "backtest.total_trades",
    /* assessment */
    "assessment.verdict",
    "assessment.model",
    "assessment.input_tokens",
    "assessment.output_tokens",
    "assessment.cost_usd",
};

const char *
research_field_name(enum research_field f)
{
    RC_ASSERT(f >= 0 && f < RF_COUNT);
    return field_names[f];
}

int
research_field_parse(const char *name)
{
    for (int i = 0; i < RF_COUNT; i++) {
        if (strcmp(field_names[i], name) == 0) {
            return i;
        }
    }
    return -1;
}

int
research_result_field(enum worker_type wt, const char *key)
{
    const char *prefix = worker_type_name(wt);
    size_t plen = strlen(prefix);
    for (int i = RF_RESULT_FIRST; i < RF_COUNT; i++) {
        const char *n = field_names[i];
        if (strncmp(n, prefix, plen) == 0 && n[plen] == '.' && strcmp(n + plen + 1, key) == 0) {
            return i;
        }
    }
    return -1;
}

void
research_set(struct research *r, enum research_field f, const char *value)
{
    RC_ASSERT(f >= 0 && f < RF_COUNT);
    if (r->f[f] != NULL && value != NULL && strcmp(r->f[f], value) == 0) {
        return;
    }
    free(r->f[f]);
    r->f[f] = (value != NULL && value[0] != '\0') ? xstrdup(value) : NULL;
    if (f == RF_PHASE) {
        r->phase = PHASE_PENDING;
        if (r->f[f] != NULL) {
            (void)phase_parse(r->f[f], &r->phase);
        }
    }
}

const char *
research_get(const struct research *r, enum research_field f)
{
    RC_ASSERT(f >= 0 && f < RF_COUNT);
    return r->f[f];
}

struct research *
research_new(void)
{
    return xcalloc(1, sizeof(struct research));
}

struct research *
research_dup(const struct research *r)
{
    struct research *c = research_new();
    for (int i = 0; i < RF_COUNT; i++) {
        c->f[i] = r->f[i] != NULL ? xstrdup(r->f[i]) : NULL;
    }
    c->phase = r->phase;
    return c;
}

void
research_free(struct research *r)
{
    if (r == NULL) {
        return;
    }
    for (int i = 0; i < RF_COUNT; i++) {
        free(r->f[i]);
    }
    free(r);
}

enum phase
research_phase(const struct research *r)
{
    return r->phase;
}

int64_t
research_int(const struct research *r, enum research_field f)
{
    const char *s = research_get(r, f);
    if (s == NULL) {
        return 0;
    }
    char *end = NULL;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0') {
        return 0;
    }
    return (int64_t)v;
}

bool
research_is(const struct research *r, enum research_field f, const char *value)
{
    const char *s = research_get(r, f);
    return s != NULL && strcmp(s, value) == 0;
}
