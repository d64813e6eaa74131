/* SPDX-License-Identifier: MIT
 * test_num: whole-text numbers: what strtoll and strtod would read part of ("12abc", " 12",
 * "") is refused, as are out of range, nan and inf; texts need no NUL after them. */
#include "tests/support/test.h"

#include <errno.h>
#include <float.h>
#include <string.h>

#include "common/num.h"
#include "common/rc_err.h"

static void
test_num_i64_whole_text_only(void **state)
{
    (void)state;
    static const struct {
        const char *text;
        bool ok;
        int64_t want;
    } cases[] = {
        {"0", true, 0},
        {"42", true, 42},
        {"-7", true, -7},
        {"+7", true, 7},
        {"007", true, 7},
        {"1700000000123", true, 1700000000123LL},
        {"9223372036854775807", true, INT64_MAX},
        {"-9223372036854775808", true, INT64_MIN},
        {"9223372036854775808", false, 0},
        {"-9223372036854775809", false, 0},
        {"99999999999999999999999", false, 0},
        {"", false, 0},
        {" ", false, 0},
        {" 12", false, 0},
        {"\t12", false, 0},
        {"12 ", false, 0},
        {"12\n", false, 0},
        {"12abc", false, 0},
        {"abc", false, 0},
        {"-", false, 0},
        {"+", false, 0},
        {"1.5", false, 0},
        {"1e3", false, 0},
        {"0x10", false, 0},
    };
    for (size_t i = 0; i < N_OF(cases); i++) {
        int64_t got = -12345;
        bool ok = num_parse_i64(cases[i].text, strlen(cases[i].text), &got);
        if (ok != cases[i].ok || (ok && got != cases[i].want) || (!ok && got != -12345)) {
            fail_msg("case \"%s\": ok %d got %lld", cases[i].text, ok, (long long)got);
        }
    }
}

static void
test_num_f64_whole_text_finite_only(void **state)
{
    (void)state;
    static const struct {
        const char *text;
        bool ok;
        double want;
    } cases[] = {
        {"0", true, 0},
        {"0.5", true, 0.5},
        {"-2.5E3", true, -2500},
        {"1e-07", true, 1e-07},
        {"12", true, 12},
        {".5", true, 0.5},
        {"1.7976931348623157e308", true, DBL_MAX},
        {"4.9406564584124654e-324", true, 4.9406564584124654e-324}, /* subnormal: reads back */
        {"1e-400", true, 0},                                        /* underflow: nearest */
        {"1e999", false, 0},
        {"-1e999", false, 0},
        {"nan", false, 0},
        {"NAN", false, 0},
        {"inf", false, 0},
        {"-inf", false, 0},
        {"infinity", false, 0},
        {"", false, 0},
        {" ", false, 0},
        {" 1", false, 0},
        {"1 ", false, 0},
        {"1\n", false, 0},
        {"12abc", false, 0},
        {"1..2", false, 0},
        {"-", false, 0},
        {"e5", false, 0},
    };
    for (size_t i = 0; i < N_OF(cases); i++) {
        double got = -12345;
        bool ok = num_parse_f64(cases[i].text, strlen(cases[i].text), &got);
        if (ok != cases[i].ok || (ok && got != cases[i].want) || (!ok && got != -12345)) {
            fail_msg("case \"%s\": ok %d got %.17g", cases[i].text, ok, got);
        }
    }
}

/* A Redis reply or a token of a line: len says where the number ends. */
static void
test_num_reads_len_bytes_not_to_a_nul(void **state)
{
    (void)state;
    int64_t i = 0;
    double d = 0;
    assert_true(num_parse_i64("123456", 3, &i));
    assert_int_equal(i, 123);
    assert_true(num_parse_f64("0.25 USD", 4, &d));
    assert_true(d == 0.25);
    assert_false(num_parse_i64("12abc", 3, &i)); /* "12a" */
    static const char nul_inside[] = {'1', '\0', '2'};
    assert_false(num_parse_i64(nul_inside, sizeof(nul_inside), &i));
    assert_false(num_parse_f64(nul_inside, sizeof(nul_inside), &d));
    assert_false(num_parse_i64("5", 0, &i));
    assert_false(num_parse_f64("5", 0, &d));
    assert_false(num_parse_i64(NULL, 0, &i));
    assert_false(num_parse_f64(NULL, 3, &d));
}

/* Longer than the stack copy: read all the same. */
static void
test_num_long_texts(void **state)
{
    (void)state;
    char text[300];
    memset(text, '0', sizeof(text) - 2);
    text[sizeof(text) - 2] = '7';
    text[sizeof(text) - 1] = '\0';
    int64_t i = 0;
    double d = 0;
    assert_true(num_parse_i64(text, strlen(text), &i));
    assert_int_equal(i, 7);
    assert_true(num_parse_f64(text, strlen(text), &d));
    assert_true(d == 7);
    text[100] = 'x';
    assert_false(num_parse_i64(text, strlen(text), &i));
    assert_false(num_parse_f64(text, strlen(text), &d));
}

static void
test_num_leaves_errno_alone(void **state)
{
    (void)state;
    int64_t i = 0;
    double d = 0;
    errno = EINTR;
    assert_false(num_parse_i64("99999999999999999999", 20, &i));
    assert_int_equal(errno, EINTR);
    assert_true(num_parse_f64("1e-400", 6, &d));
    assert_int_equal(errno, EINTR);
    errno = 0;
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_num_i64_whole_text_only),
        cmocka_unit_test(test_num_f64_whole_text_finite_only),
        cmocka_unit_test(test_num_reads_len_bytes_not_to_a_nul),
        cmocka_unit_test(test_num_long_texts),
        cmocka_unit_test(test_num_leaves_errno_alone),
    };
    return cmocka_run_group_tests_name("num", tests, NULL, NULL);
}
