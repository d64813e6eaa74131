/* SPDX-License-Identifier: MIT
 * Unit tests of toolopt's parsers: long options in their three forms, unique prefixes,
 * positionals (refused, collected, or where a command starts), `--`, and the usage errors. It
 * keeps no global state, so one process parses many command lines. */
#include "tests/support/test.h"

#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "common/xalloc.h"
#include "common/toolopt.h"

static const struct toolopt table[] = {
    {"brief", "TEXT", "what"},
    {"bypass-gates", NULL, "flag"},
    {"json", NULL, "flag"},
    {"timeout", "S", "seconds"},
};
#define N_TABLE N_OF(table)

/* Each option seen as "name=arg;" (or "name;" for a flag). */
static enum rc_rc
record(void *ctx, size_t index, const char *arg, struct rc_err *err)
{
    struct buf *seen = ctx;
    if (arg != NULL && strcmp(arg, "refuse") == 0) {
        return rc_err_set(err, RC_EINVAL, "--%s: refused", table[index].name);
    }
    buf_printf(seen, "%s%s%s;", table[index].name, arg != NULL ? "=" : "", arg != NULL ? arg : "");
    return RC_OK;
}

/* A mutable argv, as main gets it, from a NULL-terminated list (argv[0] included); *argc is
 * its length. Free with argv_free. */
static char **
argv_of(const char *const *words, int *argc)
{
    int n = 0;
    while (words[n] != NULL) {
        n++;
    }
    char **argv = xcalloc((size_t)n + 1, sizeof(*argv));
    for (int i = 0; i < n; i++) {
        argv[i] = xstrdup(words[i]);
    }
    *argc = n;
    return argv;
}

static void
argv_free(char **argv)
{
    for (size_t i = 0; argv[i] != NULL; i++) {
        free(argv[i]);
    }
    free(argv);
}

static void
test_toolopt_parses_every_form(void **state)
{
    (void)state;
    const char *const words[] = {"cmd",      "--brief", "a b", "--json", "--timeout=5",
                                 "--bypass", "--brief", "-x-", NULL};
    int argc = 0;
    char **argv = argv_of(words, &argc);
    struct buf seen = BUF_INIT;
    struct rc_err err = RC_ERR_INIT;
    assert_int_equal(toolopt_parse(table, N_TABLE, argc, argv, record, &seen, &err), RC_OK);
    assert_string_equal(seen.data, "brief=a b;json;timeout=5;bypass-gates;brief=-x-;");
    buf_release(&seen);
    argv_free(argv);
}

static void
test_toolopt_usage_errors(void **state)
{
    (void)state;
    const struct {
        const char *words[4];
        const char *msg;
    } cases[] = {
        {{"cmd", "--nope", NULL}, "unknown or ambiguous option '--nope'"},
        {{"cmd", "--b", NULL}, "unknown or ambiguous option '--b'"},
        {{"cmd", "--nope=3", NULL}, "unknown or ambiguous option '--nope'"},
        {{"cmd", "-j", NULL}, "unknown or ambiguous option '-j'"},
        {{"cmd", "--brief", NULL}, "option '--brief' needs an argument"},
        {{"cmd", "--json=yes", NULL}, "option '--json' takes no argument"},
        {{"cmd", "extra", NULL}, "unexpected argument 'extra'"},
        {{"cmd", "--timeout", "refuse", NULL}, "--timeout: refused"},
    };
    for (size_t i = 0; i < N_OF(cases); i++) {
        struct buf seen = BUF_INIT;
        struct rc_err err = RC_ERR_INIT;
        int argc = 0;
        char **argv = argv_of(cases[i].words, &argc);
        if (toolopt_parse(table, N_TABLE, argc, argv, record, &seen, &err) != RC_EINVAL ||
            strcmp(err.msg, cases[i].msg) != 0) {
            fail_msg("case %zu: got \"%s\"", i, err.msg);
        }
        buf_release(&seen);
        argv_free(argv);
    }
}

static void
test_toolopt_collects_positionals(void **state)
{
    (void)state;
    const char *const words[] = {"cancel", "--json",          "rs_1", "--timeout", "3",
                                 "--",     "--not-an-option", NULL};
    int argc = 0;
    char **argv = argv_of(words, &argc);
    const char *pos[2] = {NULL, NULL};
    size_t n_pos = 0;
    struct buf seen = BUF_INIT;
    assert_int_equal(
        toolopt_parse_pos(table, N_TABLE, argc, argv, record, &seen, pos, 2, &n_pos, NULL), RC_OK);
    assert_int_equal(n_pos, 2);
    assert_string_equal(pos[0], "rs_1");
    assert_string_equal(pos[1], "--not-an-option");
    assert_string_equal(seen.data, "json;timeout=3;");
    argv_free(argv);
    /* One too many. */
    const char *const three[] = {"show", "a", "b", NULL};
    argv = argv_of(three, &argc);
    struct rc_err err = RC_ERR_INIT;
    n_pos = 9;
    assert_int_equal(
        toolopt_parse_pos(table, N_TABLE, argc, argv, record, &seen, pos, 1, &n_pos, &err),
        RC_EINVAL);
    assert_string_equal(err.msg, "unexpected argument 'b'");
    assert_int_equal(n_pos, 9); /* untouched on failure */
    buf_release(&seen);
    argv_free(argv);
}

static void
test_toolopt_head_stops_at_the_command(void **state)
{
    (void)state;
    const char *const words[] = {"researchctl", "--timeout", "2", "status", "--json", NULL};
    int argc = 0;
    char **argv = argv_of(words, &argc);
    struct buf seen = BUF_INIT;
    int next = -1;
    assert_int_equal(toolopt_parse_head(table, N_TABLE, argc, argv, record, &seen, &next, NULL),
                     RC_OK);
    assert_int_equal(next, 3);
    assert_string_equal(seen.data, "timeout=2;");
    /* Parsing again (the command's options) works: no global state. */
    buf_reset(&seen);
    assert_int_equal(toolopt_parse(table, N_TABLE, argc - 3, argv + 3, record, &seen, NULL), RC_OK);
    assert_string_equal(seen.data, "json;");
    argv_free(argv);
    const char *const none[] = {"researchctl", "--json", NULL};
    argv = argv_of(none, &argc);
    assert_int_equal(toolopt_parse_head(table, N_TABLE, argc, argv, record, &seen, &next, NULL),
                     RC_OK);
    assert_int_equal(next, 2);
    argv_free(argv);
    const char *const dashes[] = {"researchctl", "--", "--json", NULL};
    argv = argv_of(dashes, &argc);
    assert_int_equal(toolopt_parse_head(table, N_TABLE, argc, argv, record, &seen, &next, NULL),
                     RC_OK);
    assert_int_equal(next, 2);
    argv_free(argv);
    buf_release(&seen);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_toolopt_parses_every_form),
        cmocka_unit_test(test_toolopt_usage_errors),
        cmocka_unit_test(test_toolopt_collects_positionals),
        cmocka_unit_test(test_toolopt_head_stops_at_the_command),
    };
    return cmocka_run_group_tests_name("toolopt", tests, NULL, NULL);
}
