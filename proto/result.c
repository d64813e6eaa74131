/* SPDX-License-Identifier: MIT
 * result: the schema of each phase's result (contract §3 "Results by phase"), its check, and
 * the text form of result values as stored in the research hash. */
#include "proto/result.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "common/num.h"
#include "contract/limits.h"

static const char *const output_formats[] = {"classification", "regression", NULL};

static const struct result_key design_keys[] = {
    {"strategy_name", RESULT_STRING, true, NULL, RESULT_ANY},
    {"strategy_path", RESULT_STRING, false, NULL, RESULT_ANY},
    {"model", RESULT_STRING, false, NULL, RESULT_ANY},
    {"input_tokens", RESULT_NUMBER, false, NULL, RESULT_TOKENS},
    {"output_tokens", RESULT_NUMBER, false, NULL, RESULT_TOKENS},
    {"cost_usd", RESULT_NUMBER, false, NULL, RESULT_COST},
};

static const struct result_key training_keys[] = {
    {"accuracy", RESULT_NUMBER, false, NULL, RESULT_ANY},
    {"final_loss", RESULT_NUMBER, false, NULL, RESULT_ANY},
    {"initial_loss", RESULT_NUMBER, false, NULL, RESULT_ANY},
    {"output_format", RESULT_STRING, false, output_formats, RESULT_ANY},
    {"directional_accuracy", RESULT_NUMBER, false, NULL, RESULT_ANY},
    {"model_path", RESULT_STRING, false, NULL, RESULT_ANY},
};

static const struct result_key backtest_keys[] = {
    {"win_rate", RESULT_NUMBER, false, NULL, RESULT_ANY},
    {"max_drawdown", RESULT_NUMBER, false, NULL, RESULT_ANY},
    {"sharpe_ratio", RESULT_NUMBER, false, NULL, RESULT_ANY},
    {"total_return", RESULT_NUMBER, false, NULL, RESULT_ANY},
    {"net_return", RESULT_NUMBER, false, NULL, RESULT_ANY},
    {"total_trades", RESULT_NUMBER, false, NULL, RESULT_ANY},
};

static const struct result_key assessment_keys[] = {
    {"verdict", RESULT_STRING, true, NULL, RESULT_ANY},
    {"model", RESULT_STRING, false, NULL, RESULT_ANY},
    {"input_tokens", RESULT_NUMBER, false, NULL, RESULT_TOKENS},
    {"output_tokens", RESULT_NUMBER, false, NULL, RESULT_TOKENS},
    {"cost_usd", RESULT_NUMBER, false, NULL, RESULT_COST},
};

const struct result_key *
result_schema(enum worker_type wt, size_t *n_keys)
{
    switch (wt) {
    case WORKER_DESIGN:
        *n_keys = N_OF(design_keys);
        return design_keys;
    case WORKER_TRAINING:
        *n_keys = N_OF(training_keys);
        return training_keys;
    case WORKER_BACKTEST:
        *n_keys = N_OF(backtest_keys);
        return backtest_keys;
    case WORKER_ASSESSMENT:
        *n_keys = N_OF(assessment_keys);
        return assessment_keys;
    case WORKER_TYPE_COUNT:
        break;
    }
    RC_ASSERT(!"result_schema: not a worker type");
    *n_keys = 0;
    return NULL;
}

static bool
in_set(const char *const *allowed, const char *s)
{
    for (size_t i = 0; allowed[i] != NULL; i++) {
        if (strcmp(allowed[i], s) == 0) {
            return true;
        }
    }
    return false;
}

static enum rc_rc
not_in_set(const struct result_key *k, struct rc_err *err)
{
    struct buf b = BUF_INIT;
    for (size_t i = 0; k->allowed[i] != NULL; i++) {
        if (i > 0) {
            buf_puts(&b, k->allowed[i + 1] == NULL ? " or " : ", ");
        }
        buf_puts(&b, k->allowed[i]);
    }
    enum rc_rc rc = rc_err_set(err, RC_EPROTO, "bad result: %s: must be %s", k->name,
                               b.data != NULL ? b.data : "");
    buf_release(&b);
    return rc;
}

static enum rc_rc
check_key(const struct result_key *k, const struct value *v, struct rc_err *err)
{
    if (k->kind == RESULT_NUMBER) {
        double d;
        if (!value_number(v, &d)) {
            return rc_err_set(err, RC_EPROTO, "bad result: %s: must be a number", k->name);
        }
        /* NaN or infinity would poison sums such as the day's spend. */
        if (!isfinite(d)) {
            return rc_err_set(err, RC_EPROTO, "bad result: %s: must be a finite number", k->name);
        }
        /* A negative cost would refill the day's budget, a huge one spend it for good. */
        if (k->bound == RESULT_COST && !(d >= 0 && d <= RESULT_COST_MAX)) {
            return rc_err_set(err, RC_EPROTO, "bad result: %s: must be 0 to 1000000 (USD)",
                              k->name);
        }
        if (k->bound == RESULT_TOKENS && !(d >= 0 && d <= RESULT_TOKENS_MAX && d == floor(d))) {
            return rc_err_set(err, RC_EPROTO,
                              "bad result: %s: must be a whole number 0 to 1000000000000",
                              k->name);
        }
        return RC_OK;
    }
    if (v->kind != VALUE_STR) {
        return rc_err_set(err, RC_EPROTO, "bad result: %s: must be a string", k->name);
    }
    size_t len = strlen(v->s);
    if (len > LIMITS_STRING_MAX) {
        return rc_err_set(err, RC_EPROTO, "bad result: %s: longer than %d bytes", k->name,
                          LIMITS_STRING_MAX);
    }
    if (!limits_is_text(v->s, len)) {
        return rc_err_set(err, RC_EPROTO, "bad result: %s: not valid UTF-8", k->name);
    }
    if (k->allowed != NULL && !in_set(k->allowed, v->s)) {
        return not_in_set(k, err);
    }
    return RC_OK;
}

enum rc_rc
result_check(enum worker_type wt, const struct kv *result, size_t n, struct rc_err *err)
{
    size_t n_keys;
    const struct result_key *keys = result_schema(wt, &n_keys);
    for (size_t i = 0; i < n_keys; i++) {
        const struct kv *e = kv_find(result, n, keys[i].name);
        if (e == NULL || e->val.kind == VALUE_NIL) {
            if (keys[i].required) {
                return rc_err_set(err, RC_EPROTO, "bad result: %s: required", keys[i].name);
            }
            continue;
        }
        enum rc_rc rc = check_key(&keys[i], &e->val, err);
        if (rc != RC_OK) {
            return rc;
        }
    }
    return RC_OK;
}

/* The shortest of %.15g, %.16g and %.17g that strtod reads back to the same double; %.17g
 * always does for finite values. */
static void
format_double(double f, struct buf *out)
{
    char text[40];
    for (int prec = 15; prec <= 17; prec++) {
        snprintf(text, sizeof(text), "%.*g", prec, f);
        if (prec == 17 || strtod(text, NULL) == f) {
            break;
        }
    }
    buf_puts(out, text);
}

void
result_format(const struct value *v, struct buf *out)
{
    switch (v->kind) {
    case VALUE_BOOL:
        buf_putc(out, v->b ? '1' : '0');
        break;
    case VALUE_INT:
        buf_printf(out, "%" PRId64, v->i);
        break;
    case VALUE_FLOAT:
        format_double(v->f, out);
        break;
    case VALUE_STR:
        buf_puts(out, v->s != NULL ? v->s : "");
        break;
    case VALUE_NIL:
    case VALUE_MAP:
    case VALUE_OTHER:
    case VALUE_RAW:
        break;
    }
}

/* [-]digits */
static bool
is_decimal_int(const char *s)
{
    if (*s == '-') {
        s++;
    }
    if (*s == '\0') {
        return false;
    }
    for (; *s != '\0'; s++) {
        if (*s < '0' || *s > '9') {
            return false;
        }
    }
    return true;
}

/* Only the characters of a plain decimal or exponent form: no spaces, hex, nan or inf. */
static bool
is_decimal_float(const char *s)
{
    return s[0] != '\0' && strspn(s, "0123456789+-.eE") == strlen(s);
}

struct value
result_parse(enum result_kind kind, const char *text)
{
    if (kind == RESULT_STRING) {
        return value_str(text);
    }
    if (text == NULL || text[0] == '\0') {
        return value_nil();
    }
    const size_t len = strlen(text);
    int64_t i = 0;
    if (is_decimal_int(text) && num_parse_i64(text, len, &i)) {
        return value_int(i);
    }
    /* Out of int64 range, or not an integer: a double, when plainly written. */
    double f = 0;
    if (!is_decimal_float(text) || !num_parse_f64(text, len, &f)) {
        return value_nil();
    }
    return value_float(f);
}
