/* SPDX-License-Identifier: MIT
 * test_gate: the quality gates of contract §5, one table case per check and boundary, for
 * training and backtest, classification and regression; missing metrics; thresholds from
 * struct cfg_gates; the reason text of the first failed check. */
#include "tests/support/test.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/cfg.h"
#include "common/num.h"
#include "coordinator/gate.h"
#include "coordinator/research.h"

/* The contract's defaults (§5). */
static const struct cfg_gates defaults = {
    .training_min_accuracy = 0.10,
    .training_max_loss = 0.8,
    .training_min_loss_decrease = -0.5,
    .training_min_directional_accuracy = 0.50,
    .backtest_min_win_rate = 0.10,
    .backtest_max_drawdown = 0.4,
    .backtest_min_sharpe = -0.5,
    .backtest_min_net_return = 0.0,
    .backtest_min_trades = 5,
};

/* A research holding result fields: "training.accuracy=0.5" items, up to 8. */
struct gate_case {
    const char *name;
    const char *fields[8];
    bool passed;
    const char *reason; /* exact, when failed */
};

static struct research *
research_with(const char *const *fields)
{
    struct research *r = research_new();
    research_set(r, RF_RESEARCH_ID, "rs_gate");
    for (size_t i = 0; i < 8 && fields[i] != NULL; i++) {
        char name[64];
        const char *eq = strchr(fields[i], '=');
        assert_non_null(eq);
        snprintf(name, sizeof(name), "%.*s", (int)(eq - fields[i]), fields[i]);
        int f = research_field_parse(name);
        if (f < 0) {
            fail_msg("no field \"%s\"", name);
        }
        research_set(r, (enum research_field)f, eq + 1);
    }
    return r;
}

static void
run_cases(const struct gate_case *cases, size_t n, const struct cfg_gates *g,
          void (*judge)(const struct cfg_gates *, const struct research *, struct gate_outcome *))
{
    for (size_t i = 0; i < n; i++) {
        struct research *r = research_with(cases[i].fields);
        struct gate_outcome out;
        memset(&out, 0x5a, sizeof(out)); /* the gate writes every part it promises */
        judge(g, r, &out);
        research_free(r);
        if (out.passed != cases[i].passed) {
            fail_msg("case %s: passed %d, want %d (reason \"%.*s\")", cases[i].name,
                     (int)out.passed, (int)cases[i].passed, (int)sizeof(out.reason), out.reason);
        }
        if (memchr(out.reason, '\0', sizeof(out.reason)) == NULL) {
            fail_msg("case %s: reason not terminated", cases[i].name);
        }
        if (!cases[i].passed && strcmp(out.reason, cases[i].reason) != 0) {
            fail_msg("case %s: reason \"%s\", want \"%s\"", cases[i].name, out.reason,
                     cases[i].reason);
        }
        if (cases[i].passed && out.reason[0] != '\0') {
            fail_msg("case %s: passed with reason \"%s\"", cases[i].name, out.reason);
        }
    }
}

static void
test_gate_training_classification(void **state)
{
    (void)state;
    static const struct gate_case cases[] = {
        {"good",
         {"training.accuracy=0.5", "training.final_loss=0.3", "training.initial_loss=1"},
         true,
         NULL},
        {"explicit classification",
         {"training.output_format=classification", "training.accuracy=0.5",
          "training.final_loss=0.3"},
         true,
         NULL},
        {"accuracy low",
         {"training.accuracy=0.05", "training.final_loss=0.3"},
         false,
         "training: accuracy 0.05 < 0.10"},
        {"accuracy at min", {"training.accuracy=0.1", "training.final_loss=0.3"}, true, NULL},
        {"accuracy int", {"training.accuracy=1", "training.final_loss=0"}, true, NULL},
        {"accuracy missing", {"training.final_loss=0.3"}, false, "training: accuracy missing"},
        {"accuracy junk",
         {"training.accuracy=high", "training.final_loss=0.3"},
         false,
         "training: accuracy missing"},
        {"accuracy nan",
         {"training.accuracy=nan", "training.final_loss=0.3"},
         false,
         "training: accuracy missing"},
        {"loss high",
         {"training.accuracy=0.5", "training.final_loss=0.9"},
         false,
         "training: final_loss 0.9 > 0.80"},
        {"loss at max", {"training.accuracy=0.5", "training.final_loss=0.8"}, true, NULL},
        {"loss missing", {"training.accuracy=0.5"}, false, "training: final_loss missing"},
        {"first failed check wins",
         {"training.accuracy=0.01", "training.final_loss=5"},
         false,
         "training: accuracy 0.01 < 0.10"},
        /* (0.2 - 0.35) / 0.2 = -0.75 < -0.5 */
        {"loss rose too much",
         {"training.accuracy=0.5", "training.final_loss=0.35", "training.initial_loss=0.2"},
         false,
         "training: loss decrease -0.75 < -0.50"},
        /* (0.5 - 0.75) / 0.5 = -0.5: exactly the minimum passes */
        {"loss decrease at min",
         {"training.accuracy=0.5", "training.final_loss=0.75", "training.initial_loss=0.5"},
         true,
         NULL},
        {"initial loss unknown", {"training.accuracy=0.5", "training.final_loss=0.79"}, true, NULL},
        {"initial loss junk",
         {"training.accuracy=0.5", "training.final_loss=0.79", "training.initial_loss=x"},
         true,
         NULL},
        {"initial loss zero",
         {"training.accuracy=0.5", "training.final_loss=0.79", "training.initial_loss=0"},
         true,
         NULL},
        {"initial loss negative",
         {"training.accuracy=0.5", "training.final_loss=0.79", "training.initial_loss=-0.1"},
         true,
         NULL},
        /* directional accuracy does not count for classification */
        {"directional ignored",
         {"training.accuracy=0.5", "training.final_loss=0.3", "training.directional_accuracy=0.1"},
         true,
         NULL},
    };
    run_cases(cases, N_OF(cases), &defaults, gate_training);
}

static void
test_gate_training_regression(void **state)
{
    (void)state;
    static const struct gate_case cases[] = {
        {"good",
         {"training.output_format=regression", "training.directional_accuracy=0.6",
          "training.final_loss=0.3"},
         true,
         NULL},
        {"directional at min is not enough (strict)",
         {"training.output_format=regression", "training.directional_accuracy=0.5",
          "training.final_loss=0.3"},
         false,
         "training: directional_accuracy 0.5 <= 0.50"},
        {"directional low",
         {"training.output_format=regression", "training.directional_accuracy=0.42",
          "training.final_loss=0.3"},
         false,
         "training: directional_accuracy 0.42 <= 0.50"},
        {"directional missing",
         {"training.output_format=regression", "training.final_loss=0.3"},
         false,
         "training: directional_accuracy missing"},
        {"accuracy does not count",
         {"training.output_format=regression", "training.directional_accuracy=0.6",
          "training.final_loss=0.3", "training.accuracy=0.01"},
         true,
         NULL},
        {"loss high",
         {"training.output_format=regression", "training.directional_accuracy=0.6",
          "training.final_loss=0.81"},
         false,
         "training: final_loss 0.81 > 0.80"},
        {"loss missing",
         {"training.output_format=regression", "training.directional_accuracy=0.6"},
         false,
         "training: final_loss missing"},
        /* the contract lists no loss-decrease check for regression */
        {"loss decrease not judged",
         {"training.output_format=regression", "training.directional_accuracy=0.6",
          "training.final_loss=0.7", "training.initial_loss=0.1"},
         true,
         NULL},
    };
    run_cases(cases, N_OF(cases), &defaults, gate_training);
}

static void
test_gate_backtest_classification(void **state)
{
    (void)state;
    static const struct gate_case cases[] = {
        {"good",
         {"backtest.win_rate=0.5", "backtest.max_drawdown=0.2", "backtest.sharpe_ratio=1"},
         true,
         NULL},
        {"win rate low",
         {"backtest.win_rate=0.05", "backtest.max_drawdown=0.2", "backtest.sharpe_ratio=1"},
         false,
         "backtest: win_rate 0.05 < 0.10"},
        {"win rate at min",
         {"backtest.win_rate=0.1", "backtest.max_drawdown=0.2", "backtest.sharpe_ratio=1"},
         true,
         NULL},
        {"win rate missing",
         {"backtest.max_drawdown=0.2", "backtest.sharpe_ratio=1"},
         false,
         "backtest: win_rate missing"},
        {"drawdown high",
         {"backtest.win_rate=0.5", "backtest.max_drawdown=0.5", "backtest.sharpe_ratio=1"},
         false,
         "backtest: max_drawdown 0.5 > 0.40"},
        {"drawdown at max",
         {"backtest.win_rate=0.5", "backtest.max_drawdown=0.4", "backtest.sharpe_ratio=1"},
         true,
         NULL},
        {"drawdown missing",
         {"backtest.win_rate=0.5", "backtest.sharpe_ratio=1"},
         false,
         "backtest: max_drawdown missing"},
        {"sharpe low",
         {"backtest.win_rate=0.5", "backtest.max_drawdown=0.2", "backtest.sharpe_ratio=-0.6"},
         false,
         "backtest: sharpe_ratio -0.6 < -0.50"},
        {"sharpe at min",
         {"backtest.win_rate=0.5", "backtest.max_drawdown=0.2", "backtest.sharpe_ratio=-0.5"},
         true,
         NULL},
        {"sharpe missing",
         {"backtest.win_rate=0.5", "backtest.max_drawdown=0.2"},
         false,
         "backtest: sharpe_ratio missing"},
        /* regression's metrics do not count for classification */
        {"net return ignored",
         {"backtest.win_rate=0.5", "backtest.max_drawdown=0.2", "backtest.sharpe_ratio=1",
          "backtest.net_return=-3", "backtest.total_trades=0"},
         true,
         NULL},
    };
    run_cases(cases, N_OF(cases), &defaults, gate_backtest);
}

static void
test_gate_backtest_regression(void **state)
{
    (void)state;
    static const struct gate_case cases[] = {
        {"good",
         {"training.output_format=regression", "backtest.net_return=0.1",
          "backtest.total_trades=10", "backtest.max_drawdown=0.2"},
         true,
         NULL},
        {"net return negative",
         {"training.output_format=regression", "backtest.net_return=-0.01",
          "backtest.total_trades=10", "backtest.max_drawdown=0.2"},
         false,
         "backtest: net_return -0.01 < 0.00"},
        {"net return zero",
         {"training.output_format=regression", "backtest.net_return=0", "backtest.total_trades=10",
          "backtest.max_drawdown=0.2"},
         true,
         NULL},
        {"net return missing",
         {"training.output_format=regression", "backtest.total_trades=10",
          "backtest.max_drawdown=0.2"},
         false,
         "backtest: net_return missing"},
        {"too few trades",
         {"training.output_format=regression", "backtest.net_return=0.1", "backtest.total_trades=4",
          "backtest.max_drawdown=0.2"},
         false,
         "backtest: total_trades 4 < 5"},
        {"trades at min",
         {"training.output_format=regression", "backtest.net_return=0.1", "backtest.total_trades=5",
          "backtest.max_drawdown=0.2"},
         true,
         NULL},
        {"trades missing",
         {"training.output_format=regression", "backtest.net_return=0.1",
          "backtest.max_drawdown=0.2"},
         false,
         "backtest: total_trades missing"},
        {"drawdown high",
         {"training.output_format=regression", "backtest.net_return=0.1",
          "backtest.total_trades=10", "backtest.max_drawdown=0.41"},
         false,
         "backtest: max_drawdown 0.41 > 0.40"},
        {"drawdown missing",
         {"training.output_format=regression", "backtest.net_return=0.1",
          "backtest.total_trades=10"},
         false,
         "backtest: max_drawdown missing"},
        /* classification's metrics do not count for regression */
        {"win rate ignored",
         {"training.output_format=regression", "backtest.net_return=0.1",
          "backtest.total_trades=10", "backtest.max_drawdown=0.2", "backtest.win_rate=0",
          "backtest.sharpe_ratio=-9"},
         true,
         NULL},
    };
    run_cases(cases, N_OF(cases), &defaults, gate_backtest);
}

/* Every threshold comes from struct cfg_gates, not from a built-in default. */
static void
test_gate_thresholds_from_cfg(void **state)
{
    (void)state;
    const struct cfg_gates strict = {
        .training_min_accuracy = 0.9,
        .training_max_loss = 0.1,
        .training_min_loss_decrease = 0.5,
        .training_min_directional_accuracy = 0.7,
        .backtest_min_win_rate = 0.6,
        .backtest_max_drawdown = 0.05,
        .backtest_min_sharpe = 2.0,
        .backtest_min_net_return = 0.25,
        .backtest_min_trades = 100,
    };
    static const struct gate_case training[] = {
        {"accuracy",
         {"training.accuracy=0.5", "training.final_loss=0.05"},
         false,
         "training: accuracy 0.5 < 0.90"},
        {"loss",
         {"training.accuracy=0.95", "training.final_loss=0.2"},
         false,
         "training: final_loss 0.2 > 0.10"},
        /* (0.1 - 0.08) / 0.1 = 0.2 < 0.5 */
        {"decrease",
         {"training.accuracy=0.95", "training.final_loss=0.08", "training.initial_loss=0.1"},
         false,
         "training: loss decrease 0.2 < 0.50"},
        {"passes",
         {"training.accuracy=0.95", "training.final_loss=0.02", "training.initial_loss=0.1"},
         true,
         NULL},
        {"directional",
         {"training.output_format=regression", "training.directional_accuracy=0.65",
          "training.final_loss=0.05"},
         false,
         "training: directional_accuracy 0.65 <= 0.70"},
    };
    static const struct gate_case backtest[] = {
        {"win rate",
         {"backtest.win_rate=0.5", "backtest.max_drawdown=0.01", "backtest.sharpe_ratio=3"},
         false,
         "backtest: win_rate 0.5 < 0.60"},
        {"drawdown",
         {"backtest.win_rate=0.7", "backtest.max_drawdown=0.06", "backtest.sharpe_ratio=3"},
         false,
         "backtest: max_drawdown 0.06 > 0.05"},
        {"sharpe",
         {"backtest.win_rate=0.7", "backtest.max_drawdown=0.01", "backtest.sharpe_ratio=1.5"},
         false,
         "backtest: sharpe_ratio 1.5 < 2.00"},
        {"net return",
         {"training.output_format=regression", "backtest.net_return=0.2",
          "backtest.total_trades=500", "backtest.max_drawdown=0.01"},
         false,
         "backtest: net_return 0.2 < 0.25"},
        {"trades",
         {"training.output_format=regression", "backtest.net_return=0.3",
          "backtest.total_trades=50", "backtest.max_drawdown=0.01"},
         false,
         "backtest: total_trades 50 < 100"},
        {"passes",
         {"training.output_format=regression", "backtest.net_return=0.3",
          "backtest.total_trades=100", "backtest.max_drawdown=0.05"},
         true,
         NULL},
    };
    run_cases(training, N_OF(training), &strict, gate_training);
    run_cases(backtest, N_OF(backtest), &strict, gate_backtest);
}

/* The contract's own example, word for word. */
static void
test_gate_reason_matches_contract_example(void **state)
{
    (void)state;
    static const char *const fields[8] = {"training.accuracy=0.05", "training.final_loss=0.5"};
    struct research *r = research_with(fields);
    struct gate_outcome out;
    gate_training(&defaults, r, &out);
    assert_false(out.passed);
    assert_string_equal(out.reason, "training: accuracy 0.05 < 0.10");
    research_free(r);
}

/* A reason must never state a false relation. Printing the value with "%.4g" and the
 * threshold with "%.2f" once did:
 * accuracy 0.099999 -> "training: accuracy 0.1 < 0.10", final_loss 0.8000001 ->
 * "final_loss 0.8 > 0.80", win_rate 0.12 against 0.125 -> "win_rate 0.12 < 0.12". Whatever
 * the format, the two numbers in a reason must read back in the relation it names. */
static void
test_gate_reason_states_true_relation(void **state)
{
    (void)state;
    struct cfg_gates odd = defaults;
    odd.backtest_min_win_rate = 0.125;
    static const struct {
        const char *name;
        bool backtest;
        const char *fields[8];
    } cases[] = {
        {"value just under a 2-decimal minimum",
         false,
         {"training.accuracy=0.099999", "training.final_loss=0.3"}},
        {"value just over a maximum",
         false,
         {"training.accuracy=0.5", "training.final_loss=0.8000001"}},
        {"threshold with 3 decimals",
         true,
         {"backtest.win_rate=0.12", "backtest.max_drawdown=0.1", "backtest.sharpe_ratio=1"}},
    };
    for (size_t i = 0; i < N_OF(cases); i++) {
        struct research *r = research_with(cases[i].fields);
        struct gate_outcome out;
        if (cases[i].backtest) {
            gate_backtest(&odd, r, &out);
        } else {
            gate_training(&odd, r, &out);
        }
        research_free(r);
        assert_false(out.passed);
        /* "<gate>: <metric> <value> <op> <threshold>" */
        char gate[32], metric[64], value[64], op[4], threshold[64];
        if (sscanf(out.reason, "%31[^:]: %63s %63s %3s %63s", gate, metric, value, op, threshold) !=
            5) {
            fail_msg("case %s: reason \"%s\" not in the usual form", cases[i].name, out.reason);
        }
        double v = 0, t = 0;
        if (!num_parse_f64(value, strlen(value), &v) ||
            !num_parse_f64(threshold, strlen(threshold), &t)) {
            fail_msg("case %s: reason \"%s\" holds no numbers", cases[i].name, out.reason);
        }
        bool holds = strcmp(op, "<") == 0    ? v < t
                     : strcmp(op, "<=") == 0 ? v <= t
                     : strcmp(op, ">") == 0  ? v > t
                                             : false;
        if (!holds) {
            fail_msg("case %s: reason \"%s\" states a false relation", cases[i].name, out.reason);
        }
    }
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_gate_training_classification),
        cmocka_unit_test(test_gate_training_regression),
        cmocka_unit_test(test_gate_backtest_classification),
        cmocka_unit_test(test_gate_backtest_regression),
        cmocka_unit_test(test_gate_thresholds_from_cfg),
        cmocka_unit_test(test_gate_reason_matches_contract_example),
        cmocka_unit_test(test_gate_reason_states_true_relation),
    };
    return cmocka_run_group_tests_name("gate", tests, NULL, NULL);
}
