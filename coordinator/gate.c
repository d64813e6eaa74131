/* SPDX-License-Identifier: MIT
 * gate: quality gates over stored results. A missing or unreadable metric fails its check. */
#include "coordinator/gate.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/cfg.h"
#include "common/num.h"
#include "coordinator/research.h"

enum cmp { CMP_GE, CMP_GT, CMP_LE };

struct check {
    const char *gate;   /* "training" */
    const char *metric; /* "accuracy" */
    enum cmp cmp;
    double threshold;
    bool integral; /* a count: printed without decimals */
};

static bool
metric(const struct research *r, const char *gate, const char *name, double *out, const char **text)
{
    char field[64];
    snprintf(field, sizeof(field), "%s.%s", gate, name);
    int f = research_field_parse(field);
    const char *s = f >= 0 ? research_get(r, (enum research_field)f) : NULL;
    if (s == NULL) {
        return false;
    }
    double v = 0;
    if (!num_parse_f64(s, strlen(s), &v)) {
        return false;
    }
    *out = v;
    if (text != NULL) {
        *text = s;
    }
    return true;
}

/* A threshold as people write it ("0.10") when two decimals say it exactly, else in the
 * shortest form that reads back to the same double, so a reason never states a false
 * relation. */
static void
format_shortest(double v, char *out, size_t len)
{
    for (int digits = 15; digits <= 17; digits++) {
        snprintf(out, len, "%.*g", digits, v);
        if (strtod(out, NULL) == v) {
            return;
        }
    }
}

static void
format_threshold(double v, char *out, size_t len)
{
    snprintf(out, len, "%.2f", v);
    if (strtod(out, NULL) == v) {
        return;
    }
    format_shortest(v, out, len);
}

/* True when the check passes; else writes the reason, with the value as stored (the exact
 * shortest form the result arrived in). */
static bool
judge(const struct research *r, const struct check *c, struct gate_outcome *out)
{
    static const char *const broken[] = {"<", "<=", ">"}; /* the relation that failed */
    double v = 0;
    const char *text = NULL;
    if (!metric(r, c->gate, c->metric, &v, &text)) {
        snprintf(out->reason, sizeof(out->reason), "%s: %s missing", c->gate, c->metric);
        return false;
    }
    bool ok = c->cmp == CMP_GE   ? v >= c->threshold
              : c->cmp == CMP_GT ? v > c->threshold
                                 : v <= c->threshold;
    if (!ok) {
        char threshold[40];
        if (c->integral) {
            snprintf(threshold, sizeof(threshold), "%.0f", c->threshold);
        } else {
            format_threshold(c->threshold, threshold, sizeof(threshold));
        }
        snprintf(out->reason, sizeof(out->reason), "%s: %s %s %s %s", c->gate, c->metric, text,
                 broken[c->cmp], threshold);
    }
    return ok;
}

static bool
is_regression(const struct research *r)
{
    int f = research_result_field(WORKER_TRAINING, "output_format");
    return f >= 0 && research_is(r, (enum research_field)f, "regression");
}

static void
run(const struct research *r, const struct check *checks, size_t n, struct gate_outcome *out)
{
    out->passed = true;
    out->reason[0] = '\0';
    for (size_t i = 0; i < n; i++) {
        if (!judge(r, &checks[i], out)) {
            out->passed = false;
            return;
        }
    }
}

void
gate_training(const struct cfg_gates *g, const struct research *r, struct gate_outcome *out)
{
    if (is_regression(r)) {
        const struct check checks[] = {
            {"training", "directional_accuracy", CMP_GT, g->training_min_directional_accuracy,
             false},
            {"training", "final_loss", CMP_LE, g->training_max_loss, false},
        };
        run(r, checks, N_OF(checks), out);
        return;
    }
    const struct check checks[] = {
        {"training", "accuracy", CMP_GE, g->training_min_accuracy, false},
        {"training", "final_loss", CMP_LE, g->training_max_loss, false},
    };
    run(r, checks, N_OF(checks), out);
    if (!out->passed) {
        return;
    }
    /* The loss decrease counts only where both losses are known and the initial one > 0. */
    double initial = 0, final = 0;
    if (metric(r, "training", "initial_loss", &initial, NULL) &&
        metric(r, "training", "final_loss", &final, NULL) && initial > 0) {
        double decrease = (initial - final) / initial;
        if (decrease < g->training_min_loss_decrease) {
            char value[40], threshold[40];
            /* Four digits read well; more only when four would blur the relation. */
            snprintf(value, sizeof(value), "%.4g", decrease);
            if (!(strtod(value, NULL) < g->training_min_loss_decrease)) {
                format_shortest(decrease, value, sizeof(value));
            }
            format_threshold(g->training_min_loss_decrease, threshold, sizeof(threshold));
            out->passed = false;
            snprintf(out->reason, sizeof(out->reason), "training: loss decrease %s < %s", value,
                     threshold);
        }
    }
}

void
gate_backtest(const struct cfg_gates *g, const struct research *r, struct gate_outcome *out)
{
    if (is_regression(r)) {
        const struct check checks[] = {
            {"backtest", "net_return", CMP_GE, g->backtest_min_net_return, false},
            {"backtest", "total_trades", CMP_GE, (double)g->backtest_min_trades, true},
            {"backtest", "max_drawdown", CMP_LE, g->backtest_max_drawdown, false},
        };
        run(r, checks, N_OF(checks), out);
        return;
    }
    const struct check checks[] = {
        {"backtest", "win_rate", CMP_GE, g->backtest_min_win_rate, false},
        {"backtest", "max_drawdown", CMP_LE, g->backtest_max_drawdown, false},
        {"backtest", "sharpe_ratio", CMP_GE, g->backtest_min_sharpe, false},
    };
    run(r, checks, N_OF(checks), out);
}
