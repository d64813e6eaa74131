/* SPDX-License-Identifier: MIT
 * Unit tests of ctl_json: escaping (quotes, backslash, control characters, UTF-8 kept,
 * invalid bytes replaced), numbers, nesting and commas. */
#include "tests/support/test.h"

#include <math.h>
#include <string.h>

#include "common/buf.h"
#include "tools/researchctl/ctl_json.h"

static void
test_ctl_json_escapes_strings(void **state)
{
    (void)state;
    const struct {
        const char *in;
        size_t len;
        const char *want;
    } cases[] = {
        {"plain", 5, "\"plain\""},
        {"say \"hi\"\\", 9, "\"say \\\"hi\\\"\\\\\""},
        {"a\nb\tc\rd\be\ff", 11, "\"a\\nb\\tc\\rd\\be\\ff\""},
        {"\x01\x1f\x7f", 3, "\"\\u0001\\u001f\x7f\""},
        {"nul\0byte", 8, "\"nul\\u0000byte\""},
        {"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80", 14,
         "\"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80\""},
        {"bad\xff", 4, "\"bad\\ufffd\""},
        {"trunc\xe2\x82", 7, "\"trunc\\ufffd\\ufffd\""},
        {"overlong\xc0\xaf", 10, "\"overlong\\ufffd\\ufffd\""},
        {"surrogate\xed\xa0\x80", 12, "\"surrogate\\ufffd\\ufffd\\ufffd\""},
        {"", 0, "\"\""},
    };
    for (size_t i = 0; i < N_OF(cases); i++) {
        struct buf b = BUF_INIT;
        ctl_json_quote(&b, cases[i].in, cases[i].len);
        if (strcmp(b.data, cases[i].want) != 0) {
            fail_msg("case %zu: got %s, want %s", i, b.data, cases[i].want);
        }
        buf_release(&b);
    }
}

static void
test_ctl_json_nests_with_commas(void **state)
{
    (void)state;
    struct buf b = BUF_INIT;
    struct ctl_json *j = ctl_json_new(&b);
    ctl_json_object_begin(j);
    ctl_json_kstr(j, "id", "rs_1");
    ctl_json_kstr(j, "none", NULL);
    ctl_json_key(j, "list");
    ctl_json_array_begin(j);
    ctl_json_int(j, 1);
    ctl_json_object_begin(j);
    ctl_json_object_end(j);
    ctl_json_array_begin(j);
    ctl_json_array_end(j);
    ctl_json_bool(j, false);
    ctl_json_null(j);
    ctl_json_array_end(j);
    ctl_json_kint(j, "big", -9007199254740993LL);
    ctl_json_kbool(j, "ok", true);
    assert_false(ctl_json_is_complete(j));
    ctl_json_object_end(j);
    assert_true(ctl_json_is_complete(j));
    assert_string_equal(b.data, "{\"id\":\"rs_1\",\"none\":null,\"list\":[1,{},[],false,null],"
                                "\"big\":-9007199254740993,\"ok\":true}");
    ctl_json_free(j);
    buf_release(&b);
}

static void
test_ctl_json_numbers_are_shortest_and_valid(void **state)
{
    (void)state;
    const struct {
        double v;
        const char *want;
    } cases[] = {
        {0.62, "0.62"},     {20.0, "20"},
        {-0.12, "-0.12"},   {0.1 + 0.2, "0.30000000000000004"},
        {1e21, "1e+21"},    {2.5e-7, "2.5e-07"},
        {0.381, "0.381"},   {NAN, "null"},
        {INFINITY, "null"}, {-INFINITY, "null"},
    };
    for (size_t i = 0; i < N_OF(cases); i++) {
        struct buf b = BUF_INIT;
        struct ctl_json *j = ctl_json_new(&b);
        ctl_json_num(j, cases[i].v);
        if (strcmp(b.data, cases[i].want) != 0) {
            fail_msg("case %zu: got %s, want %s", i, b.data, cases[i].want);
        }
        ctl_json_free(j);
        buf_release(&b);
    }
}

static void
test_ctl_json_keys_are_escaped(void **state)
{
    (void)state;
    struct buf b = BUF_INIT;
    struct ctl_json *j = ctl_json_new(&b);
    ctl_json_object_begin(j);
    ctl_json_knum(j, "a\"b", 1.5);
    ctl_json_object_end(j);
    assert_string_equal(b.data, "{\"a\\\"b\":1.5}");
    ctl_json_free(j);
    buf_release(&b);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ctl_json_escapes_strings),
        cmocka_unit_test(test_ctl_json_nests_with_commas),
        cmocka_unit_test(test_ctl_json_numbers_are_shortest_and_valid),
        cmocka_unit_test(test_ctl_json_keys_are_escaped),
    };
    return cmocka_run_group_tests_name("ctl_json", tests, NULL, NULL);
}
