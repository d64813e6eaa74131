/* SPDX-License-Identifier: MIT
 * test_budget: pricing of design and assessment results (cost_usd wins, tokens priced by the
 * longest matching model prefix, unknown models as sonnet), the exhausted check. */
#include "tests/support/test.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "common/cfg.h"
#include "coordinator/budget.h"
#include "proto/value.h"

/* The default table, loaded the way the coordinator loads it. */
static struct cfg
defaults(const char *prices)
{
    struct cfg c = CFG_INIT;
    struct buf env_entry = BUF_INIT;
    char *envp[2] = {NULL, NULL};
    if (prices != NULL) {
        buf_printf(&env_entry, "AGENT_MODEL_PRICES=%s", prices);
        envp[0] = env_entry.data;
    }
    struct rc_err err = RC_ERR_INIT;
    assert_int_equal(cfg_load(&c, envp, NULL, &err), RC_OK);
    buf_release(&env_entry);
    return c;
}

static void
assert_near(double got, double want)
{
    if (fabs(got - want) > 1e-12) {
        fail_msg("got %.17g, want %.17g", got, want);
    }
}

static void
test_budget_cost_usd_wins_over_tokens(void **state)
{
    (void)state;
    struct cfg c = defaults(NULL);
    const struct kv r[] = {{"input_tokens", value_int(1000000)}, {"cost_usd", value_float(0.5)}};
    double cost = 0;
    assert_true(budget_cost(&c.agent, r, N_OF(r), "claude-opus-4-5", &cost));
    assert_near(cost, 0.5);
    cfg_release(&c);
}

static void
test_budget_tokens_priced_by_result_model_then_trigger_model(void **state)
{
    (void)state;
    struct cfg c = defaults(NULL);
    const struct kv opus[] = {{"model", value_str("claude-opus-4-5-20251101")},
                              {"input_tokens", value_int(1000000)},
                              {"output_tokens", value_int(100000)}};
    double cost = 0;
    assert_true(budget_cost(&c.agent, opus, N_OF(opus), "claude-haiku-4-5", &cost));
    assert_near(cost, 5.0 + 2.5);
    const struct kv no_model[] = {{"input_tokens", value_int(2000000)}};
    assert_true(budget_cost(&c.agent, no_model, N_OF(no_model), "claude-haiku-4-5", &cost));
    assert_near(cost, 2.0);
    /* Unknown, or no model at all: priced as sonnet. */
    assert_true(budget_cost(&c.agent, no_model, N_OF(no_model), "gpt-9", &cost));
    assert_near(cost, 6.0);
    assert_true(budget_cost(&c.agent, no_model, N_OF(no_model), NULL, &cost));
    assert_near(cost, 6.0);
    cfg_release(&c);
}

static void
test_budget_nothing_to_charge(void **state)
{
    (void)state;
    struct cfg c = defaults(NULL);
    const struct kv r[] = {{"verdict", value_str("ok")}, {"input_tokens", value_str("lots")}};
    double cost = 42;
    assert_false(budget_cost(&c.agent, r, N_OF(r), NULL, &cost));
    assert_near(cost, 42); /* untouched */
    cfg_release(&c);
}

static void
test_budget_longest_prefix_wins(void **state)
{
    (void)state;
    struct cfg c = defaults("acme=1/1,acme-large=10/10,claude-sonnet-4-5=2/2");
    double in = 0, out = 0;
    budget_price(&c.agent, "acme-large-2", &in, &out);
    assert_near(in, 10);
    budget_price(&c.agent, "acme-small", &in, &out);
    assert_near(in, 1);
    budget_price(&c.agent, "other", &in, &out); /* the table's sonnet entry */
    assert_near(in, 2);
    cfg_release(&c);
    struct cfg no_sonnet = defaults("acme=1/1");
    budget_price(&no_sonnet.agent, "other", &in, &out); /* the contract's sonnet default */
    assert_near(in, 3);
    assert_near(out, 15);
    cfg_release(&no_sonnet);
}

static void
test_budget_bad_price_table_is_a_config_error(void **state)
{
    (void)state;
    const char *bad[] = {"",          "acme",    "acme=1",    "=1/2",           "acme=1/x",
                         "acme=-1/2", "a b=1/2", "acme=1/2,", "acme=1/2,,b=1/2"};
    for (size_t i = 0; i < N_OF(bad); i++) {
        if (bad[i][0] == '\0') {
            continue; /* empty means unset: the default */
        }
        struct cfg c = CFG_INIT;
        struct buf entry = BUF_INIT, problems = BUF_INIT;
        buf_printf(&entry, "AGENT_MODEL_PRICES=%s", bad[i]);
        char *envp[] = {entry.data, NULL};
        struct rc_err err = RC_ERR_INIT;
        if (cfg_load(&c, envp, &problems, &err) != RC_EINVAL) {
            fail_msg("\"%s\" accepted", bad[i]);
        }
        assert_non_null(strstr(problems.data, "AGENT_MODEL_PRICES: must be"));
        buf_release(&entry);
        buf_release(&problems);
    }
}

static void
test_budget_exhausted_only_with_a_limit(void **state)
{
    (void)state;
    double remaining = 0;
    assert_false(budget_exhausted(20, 19.99, &remaining));
    assert_near(remaining, 20 - 19.99);
    assert_true(budget_exhausted(20, 20, &remaining));
    assert_true(budget_exhausted(20, 20.5, &remaining));
    assert_near(remaining, -0.5);
    assert_false(budget_exhausted(0, 1000, &remaining)); /* 0 turns the check off */
}

static void
test_budget_format_round_trips(void **state)
{
    (void)state;
    char text[64];
    budget_format(0.1 + 0.2, text, sizeof(text));
    assert_true(strtod(text, NULL) == 0.1 + 0.2);
    budget_format(0.25, text, sizeof(text));
    assert_string_equal(text, "0.25");
    budget_format(0, text, sizeof(text));
    assert_string_equal(text, "0");
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_budget_cost_usd_wins_over_tokens),
        cmocka_unit_test(test_budget_tokens_priced_by_result_model_then_trigger_model),
        cmocka_unit_test(test_budget_nothing_to_charge),
        cmocka_unit_test(test_budget_longest_prefix_wins),
        cmocka_unit_test(test_budget_bad_price_table_is_a_config_error),
        cmocka_unit_test(test_budget_exhausted_only_with_a_limit),
        cmocka_unit_test(test_budget_format_round_trips),
    };
    return cmocka_run_group_tests_name("budget", tests, NULL, NULL);
}
