/* SPDX-License-Identifier: MIT
 * test_result: the result schemas of contract §3, result_check's verdicts and messages, and the
 * text form of values (result_format, result_parse). */
#include "tests/support/test.h"

#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "contract/limits.h"
#include "proto/result.h"

static void
test_result_schema_keys_in_contract_order(void **state)
{
    (void)state;
    static const struct {
        enum worker_type wt;
        const char *keys;
        const char *required;
    } cases[] = {
        {WORKER_DESIGN, "strategy_name strategy_path model input_tokens output_tokens cost_usd",
         "strategy_name"},
        {WORKER_TRAINING,
         "accuracy final_loss initial_loss output_format directional_accuracy model_path", ""},
        {WORKER_BACKTEST, "win_rate max_drawdown sharpe_ratio total_return net_return total_trades",
         ""},
        {WORKER_ASSESSMENT, "verdict model input_tokens output_tokens cost_usd", "verdict"},
    };
    for (size_t i = 0; i < N_OF(cases); i++) {
        size_t n = 0;
        const struct result_key *keys = result_schema(cases[i].wt, &n);
        struct buf names = BUF_INIT;
        struct buf required = BUF_INIT;
        for (size_t k = 0; k < n; k++) {
            buf_printf(&names, "%s%s", k > 0 ? " " : "", keys[k].name);
            if (keys[k].required) {
                buf_puts(&required, keys[k].name);
            }
        }
        if (strcmp(names.data, cases[i].keys) != 0 ||
            strcmp(required.data != NULL ? required.data : "", cases[i].required) != 0) {
            fail_msg("case %s: keys \"%s\"", worker_type_name(cases[i].wt), names.data);
        }
        buf_release(&names);
        buf_release(&required);
    }
    size_t n = 0;
    const struct result_key *training = result_schema(WORKER_TRAINING, &n);
    assert_string_equal(training[3].name, "output_format");
    assert_int_equal(training[3].kind, RESULT_STRING);
    assert_non_null(training[3].allowed);
    assert_string_equal(training[3].allowed[0], "classification");
    assert_string_equal(training[3].allowed[1], "regression");
    assert_null(training[3].allowed[2]);
    assert_int_equal(training[0].kind, RESULT_NUMBER);
}

#define KV(k, v)                                                                                   \
    {                                                                                              \
        k, v                                                                                       \
    }

static void
test_result_check_cases(void **state)
{
    (void)state;
    static char long_text[LIMITS_STRING_MAX + 2];
    memset(long_text, 'x', LIMITS_STRING_MAX + 1);
    const struct kv design_ok[] = {
        KV("strategy_name", value_str("momentum")), KV("input_tokens", value_int(100)),
        KV("cost_usd", value_float(0.5)), KV("unknown", value_bool(true))};
    const struct kv design_no_name[] = {KV("input_tokens", value_int(100))};
    const struct kv design_nil_name[] = {KV("strategy_name", value_nil())};
    const struct kv design_int_name[] = {KV("strategy_name", value_int(1))};
    const struct kv design_str_tokens[] = {KV("strategy_name", value_str("m")),
                                           KV("input_tokens", value_str("100"))};
    const struct kv design_nil_optional[] = {KV("strategy_name", value_str("m")),
                                             KV("model", value_nil()), KV("cost_usd", value_nil())};
    const struct kv design_long_path[] = {KV("strategy_name", value_str("m")),
                                          KV("strategy_path", value_str(long_text))};
    const struct kv training_ok[] = {KV("accuracy", value_float(0.61)),
                                     KV("final_loss", value_int(0)),
                                     KV("output_format", value_str("regression"))};
    const struct kv training_bad_format[] = {KV("output_format", value_str("ranking"))};
    const struct kv training_bool_accuracy[] = {KV("accuracy", value_bool(true))};
    struct value other = value_nil();
    other.kind = VALUE_OTHER;
    const struct kv training_other_accuracy[] = {KV("accuracy", other)};
    const struct kv training_map_loss[] = {KV("final_loss", value_map(NULL, 0))};
    const struct kv training_nan[] = {KV("accuracy", value_float(NAN))};
    const struct kv backtest_inf[] = {KV("sharpe_ratio", value_float(INFINITY))};
    const struct kv backtest_ok[] = {KV("win_rate", value_float(0.5)),
                                     KV("total_trades", value_int(12))};
    const struct kv assessment_ok[] = {KV("verdict", value_str("promising")),
                                       KV("output_tokens", value_int(10))};
    const struct kv assessment_int_verdict[] = {KV("verdict", value_int(3))};
    const struct kv assessment_bad_utf8[] = {KV("verdict", value_str("\xc3\x28"))};
    /* Contract §3: costs 0..1e6 USD, tokens whole 0..1e12 (a budget cannot be refilled
     * by a negative cost, nor spent for good by a huge one). */
    const struct kv design_negative_cost[] = {KV("strategy_name", value_str("m")),
                                              KV("cost_usd", value_float(-5))};
    const struct kv design_huge_cost[] = {KV("strategy_name", value_str("m")),
                                          KV("cost_usd", value_float(1000000.5))};
    const struct kv design_max_cost[] = {KV("strategy_name", value_str("m")),
                                         KV("cost_usd", value_int(1000000))};
    const struct kv design_half_token[] = {KV("strategy_name", value_str("m")),
                                           KV("input_tokens", value_float(1.5))};
    const struct kv design_negative_tokens[] = {KV("strategy_name", value_str("m")),
                                                KV("output_tokens", value_int(-1))};
    const struct kv assessment_too_many_tokens[] = {KV("verdict", value_str("v")),
                                                    KV("input_tokens", value_float(1e13))};
    const struct kv assessment_max_tokens[] = {KV("verdict", value_str("v")),
                                               KV("output_tokens", value_float(1e12)),
                                               KV("input_tokens", value_float(2.0))};
    const struct {
        const char *name;
        enum worker_type wt;
        const struct kv *kv;
        size_t n;
        const char *want;
    } cases[] = {
        {"design ok", WORKER_DESIGN, design_ok, N_OF(design_ok), NULL},
        {"design negative cost", WORKER_DESIGN, design_negative_cost,
         N_OF(design_negative_cost), "bad result: cost_usd: must be 0 to 1000000 (USD)"},
        {"design huge cost", WORKER_DESIGN, design_huge_cost, N_OF(design_huge_cost),
         "bad result: cost_usd: must be 0 to 1000000 (USD)"},
        {"design max cost", WORKER_DESIGN, design_max_cost, N_OF(design_max_cost), NULL},
        {"design half token", WORKER_DESIGN, design_half_token, N_OF(design_half_token),
         "bad result: input_tokens: must be a whole number 0 to 1000000000000"},
        {"design negative tokens", WORKER_DESIGN, design_negative_tokens,
         N_OF(design_negative_tokens),
         "bad result: output_tokens: must be a whole number 0 to 1000000000000"},
        {"assessment too many tokens", WORKER_ASSESSMENT, assessment_too_many_tokens,
         N_OF(assessment_too_many_tokens),
         "bad result: input_tokens: must be a whole number 0 to 1000000000000"},
        {"assessment max tokens", WORKER_ASSESSMENT, assessment_max_tokens,
         N_OF(assessment_max_tokens), NULL},
        {"design empty", WORKER_DESIGN, NULL, 0, "bad result: strategy_name: required"},
        {"design no name", WORKER_DESIGN, design_no_name, N_OF(design_no_name),
         "bad result: strategy_name: required"},
        {"design nil name", WORKER_DESIGN, design_nil_name, N_OF(design_nil_name),
         "bad result: strategy_name: required"},
        {"design int name", WORKER_DESIGN, design_int_name, N_OF(design_int_name),
         "bad result: strategy_name: must be a string"},
        {"design string tokens", WORKER_DESIGN, design_str_tokens, N_OF(design_str_tokens),
         "bad result: input_tokens: must be a number"},
        {"design nil optional", WORKER_DESIGN, design_nil_optional, N_OF(design_nil_optional),
         NULL},
        {"design long path", WORKER_DESIGN, design_long_path, N_OF(design_long_path),
         "bad result: strategy_path: longer than 4096 bytes"},
        {"training ok", WORKER_TRAINING, training_ok, N_OF(training_ok), NULL},
        {"training empty", WORKER_TRAINING, NULL, 0, NULL},
        {"training bad format", WORKER_TRAINING, training_bad_format, N_OF(training_bad_format),
         "bad result: output_format: must be classification or regression"},
        {"training bool accuracy", WORKER_TRAINING, training_bool_accuracy,
         N_OF(training_bool_accuracy), "bad result: accuracy: must be a number"},
        {"training other accuracy", WORKER_TRAINING, training_other_accuracy,
         N_OF(training_other_accuracy), "bad result: accuracy: must be a number"},
        {"training map loss", WORKER_TRAINING, training_map_loss, N_OF(training_map_loss),
         "bad result: final_loss: must be a number"},
        {"training nan", WORKER_TRAINING, training_nan, N_OF(training_nan),
         "bad result: accuracy: must be a finite number"},
        {"backtest inf", WORKER_BACKTEST, backtest_inf, N_OF(backtest_inf),
         "bad result: sharpe_ratio: must be a finite number"},
        {"backtest ok", WORKER_BACKTEST, backtest_ok, N_OF(backtest_ok), NULL},
        {"assessment ok", WORKER_ASSESSMENT, assessment_ok, N_OF(assessment_ok), NULL},
        {"assessment empty", WORKER_ASSESSMENT, NULL, 0, "bad result: verdict: required"},
        {"assessment int verdict", WORKER_ASSESSMENT, assessment_int_verdict,
         N_OF(assessment_int_verdict), "bad result: verdict: must be a string"},
        {"assessment bad utf8", WORKER_ASSESSMENT, assessment_bad_utf8, N_OF(assessment_bad_utf8),
         "bad result: verdict: not valid UTF-8"},
    };
    for (size_t i = 0; i < N_OF(cases); i++) {
        struct rc_err err = RC_ERR_INIT;
        enum rc_rc rc = result_check(cases[i].wt, cases[i].kv, cases[i].n, &err);
        if (cases[i].want == NULL) {
            if (rc != RC_OK) {
                fail_msg("case %s: %s", cases[i].name, err.msg);
            }
            continue;
        }
        if (rc != RC_EPROTO || strcmp(err.msg, cases[i].want) != 0) {
            fail_msg("case %s: want \"%s\", got rc %d \"%s\"", cases[i].name, cases[i].want,
                     (int)rc, err.msg);
        }
    }
    /* err may be NULL */
    assert_int_equal(result_check(WORKER_DESIGN, NULL, 0, NULL), RC_EPROTO);
}

static void
check_format(const char *name, struct value v, const char *want)
{
    struct buf out = BUF_INIT;
    result_format(&v, &out);
    const char *got = out.data != NULL ? out.data : "";
    if (strcmp(got, want) != 0) {
        fail_msg("case %s: got \"%s\", want \"%s\"", name, got, want);
    }
    buf_release(&out);
}

static void
test_result_format_cases(void **state)
{
    (void)state;
    check_format("int", value_int(42), "42");
    check_format("negative int", value_int(-7), "-7");
    check_format("int64 min", value_int(INT64_MIN), "-9223372036854775808");
    check_format("int64 max", value_int(INT64_MAX), "9223372036854775807");
    check_format("0.1", value_float(0.1), "0.1");
    check_format("0.61", value_float(0.61), "0.61");
    check_format("1e-07", value_float(1e-07), "1e-07");
    check_format("1/3", value_float(1.0 / 3.0), "0.3333333333333333");
    check_format("0.1+0.2", value_float(0.1 + 0.2), "0.30000000000000004");
    check_format("whole float", value_float(3.0), "3");
    check_format("big float", value_float(1e300), "1e+300");
    check_format("negative float", value_float(-2.5), "-2.5");
    check_format("true", value_bool(true), "1");
    check_format("false", value_bool(false), "0");
    check_format("string", value_str("momentum"), "momentum");
    check_format("nil", value_nil(), "");

    /* appends, does not replace */
    struct buf out = BUF_INIT;
    buf_puts(&out, "x=");
    struct value v = value_int(5);
    result_format(&v, &out);
    assert_string_equal(out.data, "x=5");
    buf_release(&out);
}

static void
test_result_format_parse_roundtrip(void **state)
{
    (void)state;
    static const double doubles[] = {
        0.1,
        0.61,
        1e-07,
        1.0 / 3.0,
        2.0 / 3.0,
        1e300,
        -1e-300,
        DBL_MAX,
        DBL_MIN,
        5e-324,
        0.5,
        -0.25,
        123456.789,
        0.30000000000000004,
        9007199254740993.0,
        1.5e15,
        12.0,
    };
    for (size_t i = 0; i < N_OF(doubles); i++) {
        struct buf out = BUF_INIT;
        struct value v = value_float(doubles[i]);
        result_format(&v, &out);
        struct value back = result_parse(RESULT_NUMBER, out.data);
        double d = 0;
        if (!value_number(&back, &d) || d != doubles[i]) {
            fail_msg("case %zu: \"%s\" read back as %.17g", i, out.data, d);
        }
        buf_release(&out);
    }
    static const int64_t ints[] = {0, 1, -1, 1700000000000, INT64_MIN, INT64_MAX};
    for (size_t i = 0; i < N_OF(ints); i++) {
        struct buf out = BUF_INIT;
        struct value v = value_int(ints[i]);
        result_format(&v, &out);
        struct value back = result_parse(RESULT_NUMBER, out.data);
        if (back.kind != VALUE_INT || back.i != ints[i]) {
            fail_msg("case %s: kind %d", out.data, (int)back.kind);
        }
        buf_release(&out);
    }
}

static void
test_result_parse_cases(void **state)
{
    (void)state;
    static const struct {
        const char *text;
        enum value_kind kind;
        int64_t i;
        double f;
    } cases[] = {
        {"42", VALUE_INT, 42, 0},
        {"-42", VALUE_INT, -42, 0},
        {"0", VALUE_INT, 0, 0},
        {"0.5", VALUE_FLOAT, 0, 0.5},
        {"1e-07", VALUE_FLOAT, 0, 1e-07},
        {"-2.5E3", VALUE_FLOAT, 0, -2500},
        {"3.0", VALUE_FLOAT, 0, 3.0},
        {"99999999999999999999", VALUE_FLOAT, 0, 1e20},
        {"", VALUE_NIL, 0, 0},
        {"abc", VALUE_NIL, 0, 0},
        {"12abc", VALUE_NIL, 0, 0},
        {" 12", VALUE_NIL, 0, 0},
        {"12 ", VALUE_NIL, 0, 0},
        {"-", VALUE_NIL, 0, 0},
        {"nan", VALUE_NIL, 0, 0},
        {"inf", VALUE_NIL, 0, 0},
        {"0x10", VALUE_NIL, 0, 0},
        {"1e999", VALUE_NIL, 0, 0},
        {"1..2", VALUE_NIL, 0, 0},
    };
    for (size_t i = 0; i < N_OF(cases); i++) {
        struct value v = result_parse(RESULT_NUMBER, cases[i].text);
        bool ok = v.kind == cases[i].kind;
        if (ok && v.kind == VALUE_INT) {
            ok = v.i == cases[i].i;
        }
        if (ok && v.kind == VALUE_FLOAT) {
            ok = v.f == cases[i].f;
        }
        if (!ok) {
            fail_msg("case \"%s\": kind %d", cases[i].text, (int)v.kind);
        }
    }
    assert_int_equal(result_parse(RESULT_NUMBER, NULL).kind, VALUE_NIL);

    const char *text = "classification";
    struct value s = result_parse(RESULT_STRING, text);
    assert_int_equal(s.kind, VALUE_STR);
    assert_ptr_equal(s.s, text); /* borrowed */
    assert_int_equal(result_parse(RESULT_STRING, "").kind, VALUE_NIL);
    assert_int_equal(result_parse(RESULT_STRING, NULL).kind, VALUE_NIL);
    assert_int_equal(result_parse(RESULT_STRING, "0.5").kind, VALUE_STR);
}

static void
test_result_value_helpers(void **state)
{
    (void)state;
    const struct kv kv[] = {KV("a", value_int(1)), KV("b", value_float(2.5)),
                            KV("c", value_str("x")), KV("a", value_int(9))};
    assert_ptr_equal(kv_find(kv, N_OF(kv), "a"), &kv[0]);
    assert_ptr_equal(kv_find(kv, N_OF(kv), "c"), &kv[2]);
    assert_null(kv_find(kv, N_OF(kv), "d"));
    assert_null(kv_find(NULL, 0, "a"));
    double d = 0;
    assert_true(value_number(&kv[0].val, &d));
    assert_true(d == 1.0);
    assert_true(value_number(&kv[1].val, &d));
    assert_true(d == 2.5);
    assert_false(value_number(&kv[2].val, &d));
    assert_int_equal(value_str(NULL).kind, VALUE_NIL);
    assert_int_equal(value_str("").kind, VALUE_NIL);
    assert_int_equal(value_bool(false).kind, VALUE_BOOL);
    struct value m = value_map(kv, N_OF(kv));
    assert_int_equal(m.kind, VALUE_MAP);
    assert_int_equal(m.map_len, N_OF(kv));
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_result_schema_keys_in_contract_order),
        cmocka_unit_test(test_result_check_cases),
        cmocka_unit_test(test_result_format_cases),
        cmocka_unit_test(test_result_format_parse_roundtrip),
        cmocka_unit_test(test_result_parse_cases),
        cmocka_unit_test(test_result_value_helpers),
    };
    return cmocka_run_group_tests_name("result", tests, NULL, NULL);
}
