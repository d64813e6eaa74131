/* SPDX-License-Identifier: MIT
 * Unit tests of common/log: level parsing and names, the level check, the logfmt line (read
 * back by pointing stderr at a temporary file), and log_quote's escaping and truncation. */
#include "tests/support/test.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/buf.h"
#include "common/log.h"

struct capture {
    FILE *file;
    int saved_fd;
};

static void
capture_begin(struct capture *c)
{
    fflush(stderr);
    c->file = tmpfile();
    assert_non_null(c->file);
    c->saved_fd = dup(STDERR_FILENO);
    assert_true(c->saved_fd >= 0);
    assert_true(dup2(fileno(c->file), STDERR_FILENO) >= 0);
}

/* Put stderr back and return what was written to it; the caller frees. */
static char *
capture_end(struct capture *c)
{
    struct buf out = BUF_INIT;
    char chunk[1024];
    size_t n;

    fflush(stderr);
    assert_true(dup2(c->saved_fd, STDERR_FILENO) >= 0);
    close(c->saved_fd);
    rewind(c->file);
    while ((n = fread(chunk, 1, sizeof chunk, c->file)) > 0) {
        buf_append(&out, chunk, n);
    }
    fclose(c->file);
    buf_putc(&out, '\0'); /* never NULL, even when nothing was written */
    return buf_detach(&out);
}

static int
reset_level(void **state)
{
    (void)state;
    log_set_level(LOG_INFO);
    return 0;
}

static void
test_log_level_parse_accepts_the_four_names(void **state)
{
    (void)state;
    static const struct {
        const char *text;
        enum log_level level;
    } cases[] = {
        {"error", LOG_ERROR}, {"warn", LOG_WARN},   {"info", LOG_INFO},
        {"debug", LOG_DEBUG}, {"DEBUG", LOG_DEBUG}, {"Warn", LOG_WARN},
    };
    for (size_t i = 0; i < N_OF(cases); i++) {
        enum log_level level = LOG_ERROR;
        if (log_level_parse(cases[i].text, &level) != RC_OK || level != cases[i].level) {
            fail_msg("case %s", cases[i].text);
        }
    }
}

static void
test_log_level_parse_rejects_others(void **state)
{
    (void)state;
    static const char *const bad[] = {"", "warning", "inf", "info ", " info", "trace", "3"};
    for (size_t i = 0; i < N_OF(bad); i++) {
        enum log_level level = LOG_DEBUG;
        if (log_level_parse(bad[i], &level) != RC_EINVAL || level != LOG_DEBUG) {
            fail_msg("case \"%s\"", bad[i]);
        }
    }
    enum log_level level = LOG_DEBUG;
    assert_int_equal(log_level_parse(NULL, &level), RC_EINVAL);
    assert_int_equal(level, LOG_DEBUG);
}

static void
test_log_level_names_round_trip(void **state)
{
    (void)state;
    assert_string_equal(log_level_name(LOG_ERROR), "error");
    assert_string_equal(log_level_name(LOG_WARN), "warn");
    assert_string_equal(log_level_name(LOG_INFO), "info");
    assert_string_equal(log_level_name(LOG_DEBUG), "debug");
    for (int l = LOG_ERROR; l <= LOG_DEBUG; l++) {
        enum log_level back = LOG_ERROR;
        assert_int_equal(log_level_parse(log_level_name((enum log_level)l), &back), RC_OK);
        assert_int_equal(back, l);
    }
}

static void
test_log_enabled_follows_the_level(void **state)
{
    (void)state;
    assert_true(log_enabled(LOG_INFO)); /* default info */
    assert_false(log_enabled(LOG_DEBUG));
    log_set_level(LOG_WARN);
    assert_true(log_enabled(LOG_ERROR));
    assert_true(log_enabled(LOG_WARN));
    assert_false(log_enabled(LOG_INFO));
    assert_false(log_enabled(LOG_DEBUG));
    log_set_level(LOG_DEBUG);
    assert_true(log_enabled(LOG_DEBUG));
}

static void
test_log_line_has_ts_level_src_msg_kv(void **state)
{
    (void)state;
    struct capture c;

    capture_begin(&c);
    log_write(LOG_INFO, "coordinator/loop.c", 42, "cycle slow", "cycle_ms=%d phase=%s", 12,
              "training");
    char *out = capture_end(&c);

    /* ts=2026-11-23T22:08:15.123Z */
    assert_true(strlen(out) > 28);
    assert_memory_equal(out, "ts=", 3);
    const char *ts = out + 3;
    assert_int_equal(ts[4], '-');
    assert_int_equal(ts[7], '-');
    assert_int_equal(ts[10], 'T');
    assert_int_equal(ts[13], ':');
    assert_int_equal(ts[16], ':');
    assert_int_equal(ts[19], '.');
    assert_int_equal(ts[23], 'Z');
    assert_string_equal(
        ts + 24, " level=info src=loop.c:42 msg=\"cycle slow\" cycle_ms=12 phase=training\n");
    free(out);
}

static void
test_log_line_without_kv_ends_after_msg(void **state)
{
    (void)state;
    struct capture c;

    capture_begin(&c);
    log_write(LOG_ERROR, "main.c", 7, "bad configuration", "%s", "");
    log_write(LOG_ERROR, "main.c", 8, "second", "");
    char *out = capture_end(&c);
    /* The first line ends right after msg="...", and the second starts there. */
    assert_non_null(strstr(out, " level=error src=main.c:7 msg=\"bad configuration\"\nts="));
    assert_non_null(strstr(out, " level=error src=main.c:8 msg=\"second\"\n"));
    free(out);
}

static void
test_log_escapes_quotes_backslashes_and_newlines(void **state)
{
    (void)state;
    struct capture c;

    capture_begin(&c);
    log_write(LOG_WARN, "x.c", 1, "say \"hi\" \\ now\nline2\r\x01", "err=\"%s\"", "a\nb");
    char *out = capture_end(&c);
    assert_non_null(strstr(out, " msg=\"say \\\"hi\\\" \\\\ now\\nline2\\r\\u0001\" "
                                "err=\"a\\nb\"\n"));
    /* One event, one line. */
    assert_ptr_equal(strchr(out, '\n'), out + strlen(out) - 1);
    free(out);
}

static void
test_log_disabled_level_writes_nothing(void **state)
{
    (void)state;
    struct capture c;

    log_set_level(LOG_INFO);
    capture_begin(&c);
    log_debug("not shown", "k=%d", 1);
    log_write(LOG_DEBUG, "x.c", 1, "not shown either", "");
    char *out = capture_end(&c);
    assert_string_equal(out, "");
    free(out);
}

static void
test_log_macros_use_the_callers_file_and_line(void **state)
{
    (void)state;
    struct capture c;

    capture_begin(&c);
    int line = __LINE__ + 1;
    log_warn("from the macro", "n=%d", 3);
    char *out = capture_end(&c);
    char want[64];
    snprintf(want, sizeof want, " level=warn src=test_log.c:%d msg=", line);
    assert_non_null(strstr(out, want));
    assert_non_null(strstr(out, "msg=\"from the macro\" n=3\n"));
    free(out);
}

static void
test_log_truncates_long_lines_safely(void **state)
{
    (void)state;
    struct capture c;
    char *long_text = malloc(10001);

    assert_non_null(long_text);
    memset(long_text, 'a', 10000);
    long_text[10000] = '\0';

    capture_begin(&c);
    log_write(LOG_INFO, "x.c", 1, long_text, "");
    log_write(LOG_INFO, "x.c", 2, "short", "big=%s", long_text);
    char *out = capture_end(&c);

    char *nl = strchr(out, '\n');
    assert_non_null(nl);
    assert_true((size_t)(nl - out) + 1 <= 4096);
    assert_int_equal(nl[-1], '"'); /* msg="..." still closes */
    char *second = nl + 1;
    char *nl2 = strchr(second, '\n');
    assert_non_null(nl2);
    assert_int_equal(nl2[1], '\0');
    assert_true((size_t)(nl2 - second) + 1 <= 4096);
    assert_non_null(strstr(second, "msg=\"short\" big=aaaa"));
    free(out);
    free(long_text);
}

static void
test_log_keeps_errno(void **state)
{
    (void)state;
    struct capture c;

    capture_begin(&c);
    errno = EAGAIN;
    log_info("errno survives", "");
    int saved = errno;
    char *out = capture_end(&c);
    assert_int_equal(saved, EAGAIN);
    free(out);
}

static void
test_log_quote_escapes_quotes_backslashes_and_controls(void **state)
{
    (void)state;
    static const struct {
        const char *in;
        const char *want;
    } cases[] = {
        {"", ""},
        {"plain text", "plain text"},
        {"say \"hi\"", "say \\\"hi\\\""},
        {"C:\\dir\\", "C:\\\\dir\\\\"},
        {"\\\"", "\\\\\\\""},
        {"a\nb", "a\\nb"},
        {"\r\t", "\\r\\t"},
        {"\x01\x1f\x7f", "\\u0001\\u001f\\u007f"},
        {"caf\xc3\xa9 = ok", "caf\xc3\xa9 = ok"}, /* UTF-8 passes through */
        {"k=v \"q\"\n\\", "k=v \\\"q\\\"\\n\\\\"},
    };
    for (size_t i = 0; i < N_OF(cases); i++) {
        char out[64];
        memset(out, 'Z', sizeof out);
        const char *r = log_quote(cases[i].in, out, sizeof out);
        assert_ptr_equal(r, out);
        if (strcmp(out, cases[i].want) != 0) {
            fail_msg("case %zu: got \"%s\", want \"%s\"", i, out, cases[i].want);
        }
    }
}

/* Every output size: the result is NUL-terminated inside out_len bytes, and is the longest
 * prefix of the full escaping that ends between two escapes (never inside one). */
static void
test_log_quote_truncates_between_escapes(void **state)
{
    (void)state;
    /* each character of input and its escaping */
    static const struct {
        const char *in;
        const char *esc;
    } pieces[] = {
        {"a", "a"},    {"\"", "\\\""},      {"\\", "\\\\"}, {"b", "b"},
        {"\n", "\\n"}, {"\x01", "\\u0001"}, {"c", "c"},     {"d", "d"},
        {"\t", "\\t"}, {"\"", "\\\""},      {"e", "e"},
    };
    enum { N_PIECES = N_OF(pieces) };
    char in[64] = "";
    char full[128] = "";
    size_t ends[N_PIECES + 1]; /* where the escaping may end: after 0, 1, ... pieces */
    size_t in_len = 0, full_len = 0;

    ends[0] = 0;
    for (size_t i = 0; i < N_PIECES; i++) {
        size_t a = strlen(pieces[i].in), b = strlen(pieces[i].esc);
        memcpy(in + in_len, pieces[i].in, a + 1);
        memcpy(full + full_len, pieces[i].esc, b + 1);
        in_len += a;
        full_len += b;
        ends[i + 1] = full_len;
    }

    for (size_t out_len = 1; out_len <= full_len + 3; out_len++) {
        /* exactly out_len bytes, so ASan sees a write past them */
        char *out = malloc(out_len);
        assert_non_null(out);
        memset(out, 'Z', out_len);
        assert_ptr_equal(log_quote(in, out, out_len), out);
        size_t got = strnlen(out, out_len);
        if (got >= out_len) {
            fail_msg("out_len %zu: not NUL-terminated", out_len);
        }
        size_t want = 0;
        for (size_t i = 0; i <= N_PIECES; i++) {
            if (ends[i] < out_len) {
                want = ends[i];
            }
        }
        if (got != want || memcmp(out, full, got) != 0) {
            fail_msg("out_len %zu: got \"%s\" (%zu bytes), want the first %zu of \"%s\"", out_len,
                     out, got, want, full);
        }
        free(out);
    }
}

static void
test_log_quote_small_buffers(void **state)
{
    (void)state;
    char out[8];

    memset(out, 'Z', sizeof out);
    assert_ptr_equal(log_quote("abc", out, 0), out); /* no room: nothing written */
    assert_int_equal(out[0], 'Z');

    assert_string_equal(log_quote("abc", out, 1), "");
    assert_string_equal(log_quote("abc", out, 3), "ab");
    assert_string_equal(log_quote("abc", out, 4), "abc");
    assert_string_equal(log_quote("\"", out, 2), "");     /* \" needs two */
    assert_string_equal(log_quote("\"", out, 3), "\\\""); /* and the NUL */
    assert_string_equal(log_quote("a\x02", out, 7), "a"); /* \u0002 needs six */
    assert_string_equal(log_quote("a\x02", out, 8), "a\\u0002");
}

/* The use log_quote is made for: a value between quotes in the key=value part. */
static void
test_log_quote_in_a_log_line(void **state)
{
    (void)state;
    struct capture c;
    char q[64];

    capture_begin(&c);
    log_warn("parked", "reason=\"%s\" n=%d", log_quote("bad \"key\"\n\\x", q, sizeof q), 1);
    char *out = capture_end(&c);
    assert_non_null(strstr(out, " msg=\"parked\" reason=\"bad \\\"key\\\"\\n\\\\x\" n=1\n"));
    assert_ptr_equal(strchr(out, '\n'), out + strlen(out) - 1);
    free(out);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_log_level_parse_accepts_the_four_names, reset_level),
        cmocka_unit_test_setup(test_log_level_parse_rejects_others, reset_level),
        cmocka_unit_test_setup(test_log_level_names_round_trip, reset_level),
        cmocka_unit_test_setup(test_log_enabled_follows_the_level, reset_level),
        cmocka_unit_test_setup(test_log_line_has_ts_level_src_msg_kv, reset_level),
        cmocka_unit_test_setup(test_log_line_without_kv_ends_after_msg, reset_level),
        cmocka_unit_test_setup(test_log_escapes_quotes_backslashes_and_newlines, reset_level),
        cmocka_unit_test_setup(test_log_disabled_level_writes_nothing, reset_level),
        cmocka_unit_test_setup(test_log_macros_use_the_callers_file_and_line, reset_level),
        cmocka_unit_test_setup(test_log_truncates_long_lines_safely, reset_level),
        cmocka_unit_test_setup(test_log_keeps_errno, reset_level),
        cmocka_unit_test_setup(test_log_quote_escapes_quotes_backslashes_and_controls, reset_level),
        cmocka_unit_test_setup(test_log_quote_truncates_between_escapes, reset_level),
        cmocka_unit_test_setup(test_log_quote_small_buffers, reset_level),
        cmocka_unit_test_setup(test_log_quote_in_a_log_line, reset_level),
    };
    return cmocka_run_group_tests_name("log", tests, NULL, NULL);
}
