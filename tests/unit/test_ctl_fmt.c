/* SPDX-License-Identifier: MIT
 * Unit tests of ctl_fmt: durations, ages, money (signs and rounding), UTC times, key=value
 * quoting, the escaping of text for a terminal and the number parsers. */
#include "tests/support/test.h"

#include <math.h>
#include <string.h>

#include "common/buf.h"
#include "tools/researchctl/ctl_fmt.h"

static void
test_ctl_fmt_durations(void **state)
{
    (void)state;
    const struct {
        int64_t ms;
        const char *want;
    } cases[] = {
        {0, "0m 00s"},        {30000, "0m 30s"},     {62999, "1m 02s"},   {135000, "2m 15s"},
        {3599999, "59m 59s"}, {3600000, "1h 00m"},   {7380000, "2h 03m"}, {86399999, "23h 59m"},
        {86400000, "1d 00h"}, {100800000, "1d 04h"}, {-5000, "0m 00s"},
    };
    for (size_t i = 0; i < N_OF(cases); i++) {
        char out[CTL_FMT_MAX];
        ctl_fmt_duration(cases[i].ms, out);
        if (strcmp(out, cases[i].want) != 0) {
            fail_msg("case %lld: got %s, want %s", (long long)cases[i].ms, out, cases[i].want);
        }
    }
}

static void
test_ctl_fmt_ages(void **state)
{
    (void)state;
    const struct {
        int64_t ms;
        const char *want;
    } cases[] = {
        {0, "0.0 s"},      {400, "0.4 s"},    {850, "0.8 s"},     {12345, "12.3 s"},
        {59999, "59.9 s"}, {60000, "1m 00s"}, {302000, "5m 02s"}, {-1, "0.0 s"},
    };
    for (size_t i = 0; i < N_OF(cases); i++) {
        char out[CTL_FMT_MAX];
        ctl_fmt_age(cases[i].ms, out);
        if (strcmp(out, cases[i].want) != 0) {
            fail_msg("case %lld: got %s, want %s", (long long)cases[i].ms, out, cases[i].want);
        }
    }
}

static void
test_ctl_fmt_money(void **state)
{
    (void)state;
    const struct {
        double usd;
        const char *want;
    } cases[] = {
        {3.42, "$3.42"},    {-0.12, "-$0.12"},  {0, "$0.00"},         {-0.004, "$0.00"},
        {-0.006, "-$0.01"}, {19.999, "$20.00"}, {1234.5, "$1234.50"}, {0.021, "$0.02"},
        {NAN, "$?"},        {INFINITY, "$?"},
    };
    for (size_t i = 0; i < N_OF(cases); i++) {
        char out[CTL_FMT_MAX];
        ctl_fmt_money(cases[i].usd, out);
        if (strcmp(out, cases[i].want) != 0) {
            fail_msg("case %zu (%g): got %s, want %s", i, cases[i].usd, out, cases[i].want);
        }
    }
}

static void
test_ctl_fmt_times(void **state)
{
    (void)state;
    char out[CTL_FMT_MAX];
    ctl_fmt_utc(1795428000123LL, out);
    assert_string_equal(out, "2026-11-23T10:00:00.123Z");
    struct buf b = BUF_INIT;
    ctl_fmt_when(1795428000123LL, 1795428000123LL + 135000, &b);
    assert_string_equal(b.data, "2026-11-23T10:00:00.123Z (2m 15s ago)");
    buf_release(&b);
}

static void
test_ctl_fmt_values_quoted_when_needed(void **state)
{
    (void)state;
    const struct {
        const char *in;
        const char *want;
    } cases[] = {
        {"training", "training"},
        {"rs_1:designing:1", "rs_1:designing:1"},
        {"caf\xc3\xa9", "caf\xc3\xa9"},
        {"bad result: accuracy", "\"bad result: accuracy\""},
        {"", "\"\""},
        {"-", "\"-\""},
        {"a=b", "\"a=b\""},
        {"say \"x\"", "\"say \\\"x\\\"\""},
        {"line\nbreak", "\"line\\nbreak\""},
        {"\x1b[31mred", "\"\\x1b[31mred\""},
        {"del\x7f", "\"del\\x7f\""},
        {"csi\xc2\x9b", "\"csi\\xc2\\x9b\""},
        {"bad\xff", "\"bad\\xff\""},
        {"tab\there", "\"tab\\there\""},
        {NULL, "-"},
    };
    for (size_t i = 0; i < N_OF(cases); i++) {
        struct buf b = BUF_INIT;
        ctl_fmt_value(&b, cases[i].in);
        if (strcmp(b.data, cases[i].want) != 0) {
            fail_msg("case %zu: got %s, want %s", i, b.data, cases[i].want);
        }
        buf_release(&b);
    }
}

static void
test_ctl_fmt_text_escapes_control_characters(void **state)
{
    (void)state;
    const struct {
        const char *in;
        const char *want;
    } cases[] = {
        {"plain words, \"quotes\" and \\", "plain words, \"quotes\" and \\"},
        {"\x1b[31mred\x1b[0m\n", "\\x1b[31mred\\x1b[0m\\n"},
        {"a\tb\rc\nd", "a\\tb\\rc\\nd"},
        {"\x01\x07\x08\x1f", "\\x01\\x07\\x08\\x1f"},
        {"del\x7f", "del\\x7f"},
        {"title\x1b]0;pwned\x07", "title\\x1b]0;pwned\\x07"},
        /* Valid UTF-8 as is: é, €, an emoji, U+00A0 (the first code point after C1). */
        {"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80 \xc2\xa0",
         "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80 \xc2\xa0"},
        /* C1 controls (CSI is U+009B: CSI K erases the line), each byte on its own. */
        {"\xc2\x9bK \xc2\x80", "\\xc2\\x9bK \\xc2\\x80"},
        /* Not UTF-8: a stray byte (CSI in Latin-1), a truncated sequence, an overlong '/'. */
        {"\x9bK", "\\x9bK"},
        {"trunc\xe2\x82", "trunc\\xe2\\x82"},
        {"overlong\xc0\xaf", "overlong\\xc0\\xaf"},
        {"", ""},
        {NULL, "-"},
    };
    for (size_t i = 0; i < N_OF(cases); i++) {
        struct buf b = BUF_INIT;
        ctl_fmt_text(&b, cases[i].in);
        if (strcmp(b.data, cases[i].want) != 0) {
            fail_msg("case %zu: got %s, want %s", i, b.data, cases[i].want);
        }
        if (ctl_fmt_text_len(cases[i].in) != b.len) {
            fail_msg("case %zu: ctl_fmt_text_len %zu, wrote %zu", i, ctl_fmt_text_len(cases[i].in),
                     b.len);
        }
        buf_release(&b);
    }
}

static void
test_ctl_fmt_cells_pad_the_escaped_text(void **state)
{
    (void)state;
    const struct {
        const char *in;
        size_t width;
        const char *want;
    } cases[] = {
        {"ab", 5, "ab   "},
        {"a\nb", 5, "a\\nb "},
        {"\x1b\x1b", 5, "\\x1b\\x1b"}, /* longer than the column: not cut */
        {NULL, 3, "-  "},
        {"", 2, "  "},
    };
    for (size_t i = 0; i < N_OF(cases); i++) {
        struct buf b = BUF_INIT;
        buf_putc(&b, '|');
        ctl_fmt_cell(&b, cases[i].in, cases[i].width);
        if (strcmp(b.data + 1, cases[i].want) != 0) {
            fail_msg("case %zu: got \"%s\", want \"%s\"", i, b.data + 1, cases[i].want);
        }
        buf_release(&b);
    }
}

static void
test_ctl_fmt_parses_numbers(void **state)
{
    (void)state;
    int64_t i = 7;
    assert_true(ctl_fmt_parse_int("1795428000123", &i));
    assert_int_equal(i, 1795428000123LL);
    assert_true(ctl_fmt_parse_int("1.795428000123e+12", &i));
    assert_int_equal(i, 1795428000123LL);
    assert_true(ctl_fmt_parse_int("-3", &i));
    assert_int_equal(i, -3);
    i = 7;
    assert_false(ctl_fmt_parse_int("1.5", &i));
    assert_false(ctl_fmt_parse_int("", &i));
    assert_false(ctl_fmt_parse_int(NULL, &i));
    assert_false(ctl_fmt_parse_int("12abc", &i));
    assert_int_equal(i, 7);
    double d = 0;
    assert_true(ctl_fmt_parse_num("0.021", &d));
    assert_true(fabs(d - 0.021) < 1e-12);
    assert_false(ctl_fmt_parse_num("nan", &d));
    assert_false(ctl_fmt_parse_num("1e999", &d));
    assert_false(ctl_fmt_parse_num("x", &d));
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ctl_fmt_durations),
        cmocka_unit_test(test_ctl_fmt_ages),
        cmocka_unit_test(test_ctl_fmt_money),
        cmocka_unit_test(test_ctl_fmt_times),
        cmocka_unit_test(test_ctl_fmt_values_quoted_when_needed),
        cmocka_unit_test(test_ctl_fmt_text_escapes_control_characters),
        cmocka_unit_test(test_ctl_fmt_cells_pad_the_escaped_text),
        cmocka_unit_test(test_ctl_fmt_parses_numbers),
    };
    return cmocka_run_group_tests_name("ctl_fmt", tests, NULL, NULL);
}
