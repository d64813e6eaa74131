/* SPDX-License-Identifier: MIT
 * Unit tests of common/buf: growth, NUL termination, printf, reset and detach. */
#include "tests/support/test.h"

#include <stdlib.h>
#include <string.h>

#include "common/buf.h"

static void
test_buf_starts_empty_and_null(void **state)
{
    (void)state;
    struct buf b = BUF_INIT;
    assert_null(b.data);
    assert_int_equal(b.len, 0);
    assert_int_equal(b.cap, 0);
    buf_reset(&b); /* fine on an untouched buffer */
    buf_release(&b);
    assert_null(b.data);
}

static void
test_buf_grows_and_stays_terminated(void **state)
{
    (void)state;
    struct buf b = BUF_INIT;
    for (size_t i = 0; i < 10000; i++) {
        buf_putc(&b, (char)('a' + (char)(i % 26)));
        assert_int_equal(b.len, i + 1);
        assert_true(b.cap > b.len);
        assert_int_equal(b.data[b.len], '\0');
    }
    for (size_t i = 0; i < 10000; i++) {
        if (b.data[i] != (char)('a' + (char)(i % 26))) {
            fail_msg("byte %zu changed", i);
        }
    }
    buf_release(&b);
    assert_null(b.data);
    assert_int_equal(b.len, 0);
    assert_int_equal(b.cap, 0);
}

static void
test_buf_append_keeps_binary_bytes(void **state)
{
    (void)state;
    struct buf b = BUF_INIT;
    const char bytes[] = {'x', '\0', 'y'};
    buf_append(&b, bytes, sizeof bytes);
    buf_puts(&b, "z");
    assert_int_equal(b.len, 4);
    assert_memory_equal(b.data, "x\0yz", 5);
    buf_release(&b);
}

static void
test_buf_append_nothing_gives_empty_string(void **state)
{
    (void)state;
    struct buf b = BUF_INIT;
    buf_puts(&b, "");
    assert_non_null(b.data);
    assert_string_equal(b.data, "");
    assert_int_equal(b.len, 0);
    buf_release(&b);
}

static void
test_buf_printf_appends_and_grows(void **state)
{
    (void)state;
    struct buf b = BUF_INIT;
    buf_puts(&b, "n=");
    buf_printf(&b, "%d %s", 42, "ok");
    assert_string_equal(b.data, "n=42 ok");
    assert_int_equal(b.len, strlen("n=42 ok"));

    /* Longer than any small initial capacity: the second vsnprintf path. */
    char big[5000];
    memset(big, 'q', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    buf_printf(&b, "[%s]", big);
    assert_int_equal(b.len, strlen("n=42 ok") + 2 + sizeof big - 1);
    assert_int_equal(b.data[7], '[');
    assert_int_equal(b.data[b.len - 1], ']');
    assert_int_equal(b.data[b.len], '\0');

    buf_printf(&b, "%s", "");
    assert_int_equal(b.len, strlen("n=42 ok") + 2 + sizeof big - 1);
    buf_release(&b);
}

static void
test_buf_reset_keeps_capacity(void **state)
{
    (void)state;
    struct buf b = BUF_INIT;
    buf_puts(&b, "some text that needs room");
    size_t cap = b.cap;
    char *data = b.data;
    buf_reset(&b);
    assert_int_equal(b.len, 0);
    assert_int_equal(b.cap, cap);
    assert_ptr_equal(b.data, data);
    assert_string_equal(b.data, "");
    buf_puts(&b, "again");
    assert_string_equal(b.data, "again");
    buf_release(&b);
}

static void
test_buf_detach_hands_over_data(void **state)
{
    (void)state;
    struct buf b = BUF_INIT;
    buf_printf(&b, "id-%d", 7);
    char *s = buf_detach(&b);
    assert_string_equal(s, "id-7");
    assert_null(b.data);
    assert_int_equal(b.len, 0);
    assert_int_equal(b.cap, 0);
    free(s);

    /* Reusable after detach, and detaching an untouched buffer gives NULL. */
    assert_null(buf_detach(&b));
    buf_putc(&b, 'k');
    assert_string_equal(b.data, "k");
    buf_release(&b);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_buf_starts_empty_and_null),
        cmocka_unit_test(test_buf_grows_and_stays_terminated),
        cmocka_unit_test(test_buf_append_keeps_binary_bytes),
        cmocka_unit_test(test_buf_append_nothing_gives_empty_string),
        cmocka_unit_test(test_buf_printf_appends_and_grows),
        cmocka_unit_test(test_buf_reset_keeps_capacity),
        cmocka_unit_test(test_buf_detach_hands_over_data),
    };
    return cmocka_run_group_tests_name("buf", tests, NULL, NULL);
}
