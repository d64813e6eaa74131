/* SPDX-License-Identifier: MIT
 * fields: the contract's field names and words (§5, §6). */
#include "contract/fields.h"

#include <string.h>

#include "common/rc_err.h"

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
    "options",
    "released",
    "resend_reason",
    "resumes",
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
    /* timeline, by phase in enum phase order, marks in enum timeline_mark order */
    "timeline.designing.started_at",
    "timeline.designing.finished_at",
    "timeline.designing.worker_id",
    "timeline.designing.attempts",
    "timeline.training.started_at",
    "timeline.training.finished_at",
    "timeline.training.worker_id",
    "timeline.training.attempts",
    "timeline.backtesting.started_at",
    "timeline.backtesting.finished_at",
    "timeline.backtesting.worker_id",
    "timeline.backtesting.attempts",
    "timeline.assessing.started_at",
    "timeline.assessing.finished_at",
    "timeline.assessing.worker_id",
    "timeline.assessing.attempts",
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
    for (int i = RF_RESULT_FIRST; i < RF_TIMELINE_FIRST; i++) {
        const char *n = field_names[i];
        if (strncmp(n, prefix, plen) == 0 && n[plen] == '.' && strcmp(n + plen + 1, key) == 0) {
            return i;
        }
    }
    return -1;
}

enum research_field
research_timeline_field(enum phase p, enum timeline_mark m)
{
    RC_ASSERT(phase_is_worked(p) && m >= 0 && m < TIMELINE_MARKS);
    return (enum research_field)(RF_TIMELINE_FIRST + (int)phase_worker_type(p) * TIMELINE_MARKS +
                                 (int)m);
}

static const char *const hb_states[HB_STATE_COUNT] = {"idle", "busy", "draining"};

const char *
hb_state_name(enum hb_state s)
{
    RC_ASSERT(s >= 0 && s < HB_STATE_COUNT);
    return hb_states[s];
}

enum rc_rc
hb_state_parse(const char *name, enum hb_state *out)
{
    for (int i = 0; i < HB_STATE_COUNT; i++) {
        if (strcmp(hb_states[i], name) == 0) {
            *out = (enum hb_state)i;
            return RC_OK;
        }
    }
    return RC_EINVAL;
}
