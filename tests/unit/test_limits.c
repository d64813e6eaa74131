/* SPDX-License-Identifier: MIT
 * test_limits: id syntax and the UTF-8 text rule of contract §3. */
#include "tests/support/test.h"

#include <string.h>

#include "common/rc_err.h"
#include "contract/limits.h"

static void
test_limits_ids(void **state)
{
    (void)state;
    char max[LIMITS_ID_MAX + 2];
    memset(max, 'a', sizeof(max));
    assert_true(limits_is_id(max, LIMITS_ID_MAX));
    assert_false(limits_is_id(max, LIMITS_ID_MAX + 1));
    assert_false(limits_is_id("", 0));
    assert_false(limits_is_id(NULL, 0));
    static const struct {
        const char *s;
        bool ok;
    } cases[] = {
        {"a", true},    {"rs-42", true}, {"AZaz09._:-", true}, {"2026-11-23T22:08", true},
        {"a b", false}, {"a/b", false},  {"a\tb", false},      {"caf\xc3\xa9", false},
        {"a*", false},  {"\"", false},   {"a,b", false},       {"{x}", false},
    };
    for (size_t i = 0; i < N_OF(cases); i++) {
        if (limits_is_id(cases[i].s, strlen(cases[i].s)) != cases[i].ok) {
            fail_msg("case \"%s\"", cases[i].s);
        }
    }
    assert_false(limits_is_id("a\0b", 3));
}

static void
test_limits_text(void **state)
{
    (void)state;
    static const struct {
        const char *name;
        const char *s;
        size_t len;
        bool ok;
    } cases[] = {
        {"empty", "", 0, true},
        {"ascii", "hello, world", 12, true},
        {"2-byte", "\xc3\xa9", 2, true},
        {"3-byte", "\xe6\x97\xa5", 3, true},
        {"4-byte", "\xf0\x9f\x8e\x89", 4, true},
        {"max code point", "\xf4\x8f\xbf\xbf", 4, true},
        {"U+FFFF", "\xef\xbf\xbf", 3, true},
        {"NUL", "a\0b", 3, false},
        {"lone continuation", "\x80", 1, false},
        {"overlong 2", "\xc0\xaf", 2, false},
        {"overlong c1", "\xc1\xbf", 2, false},
        {"overlong 3", "\xe0\x80\xaf", 3, false},
        {"overlong 4", "\xf0\x80\x80\xaf", 4, false},
        {"surrogate", "\xed\xa0\x80", 3, false},
        {"last before surrogates", "\xed\x9f\xbf", 3, true},
        {"above U+10FFFF", "\xf4\x90\x80\x80", 4, false},
        {"f5", "\xf5\x80\x80\x80", 4, false},
        {"ff", "\xff", 1, false},
        {"cut 2", "\xc3", 1, false},
        {"cut 3", "\xe6\x97", 2, false},
        {"cut 4", "\xf0\x9f\x8e", 3, false},
        {"bad continuation", "\xe6\x28\xa5", 3, false},
        {"bad last continuation", "\xf0\x9f\x8e\x28", 4, false},
    };
    for (size_t i = 0; i < N_OF(cases); i++) {
        if (limits_is_text(cases[i].s, cases[i].len) != cases[i].ok) {
            fail_msg("case %s", cases[i].name);
        }
    }
    assert_true(limits_is_text(NULL, 0));
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_limits_ids),
        cmocka_unit_test(test_limits_text),
    };
    return cmocka_run_group_tests_name("limits", tests, NULL, NULL);
}
