/* SPDX-License-Identifier: MIT
 * test_rcw_exec: rcw-exec's pure parts: progress lines and the program's path. */
#include "tests/support/test.h"

#include <string.h>

#include "common/rc_err.h"
#include "tools/rcw-exec/execrun.h"

static void
test_rcw_exec_progress_lines(void **state)
{
    (void)state;
    double p = -1;
    const char *step = NULL;

    assert_true(execrun_parse_progress("progress 0.4 epoch 4/10", &p, &step));
    assert_true(p == 0.4);
    assert_string_equal(step, "epoch 4/10");
    assert_true(execrun_parse_progress("progress 1", &p, &step));
    assert_true(p == 1.0);
    assert_string_equal(step, "");
    assert_true(execrun_parse_progress("progress 3.5 over", &p, &step));
    assert_true(p == 1.0); /* clamped */
    assert_true(execrun_parse_progress("progress -2", &p, &step));
    assert_true(p == 0.0);
    const char * not [] = {"",
                           "progress",
                           "progress ",
                           "progress x",
                           "progress 0.4x",
                           "progress nan",
                           "progress inf",
                           "Progress 0.1",
                           "progress\t0.1",
                           "step 3"};
    for (size_t i = 0; i < N_OF(not ); i++) {
        if (execrun_parse_progress(not [i], &p, &step)) {
            fail_msg("case '%s' taken as progress", not [i]);
        }
    }
}

static void
test_rcw_exec_resolves_the_program(void **state)
{
    (void)state;
    char out[256];

    assert_true(execrun_resolve("./x.sh", NULL, out, sizeof(out)));
    assert_string_equal(out, "./x.sh"); /* a path is taken as it is */
    assert_true(execrun_resolve("sh", "/nonexistent:/bin:/usr/bin", out, sizeof(out)));
    assert_non_null(strstr(out, "/sh"));
    assert_false(execrun_resolve("no-such-program-here", "/bin:/usr/bin", out, sizeof(out)));
    assert_false(execrun_resolve("sh", "/nonexistent", out, sizeof(out)));
    assert_false(execrun_resolve("sh", "/bin", out, 4)); /* too long for out */
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rcw_exec_progress_lines),
        cmocka_unit_test(test_rcw_exec_resolves_the_program),
    };
    return cmocka_run_group_tests_name("rcw_exec", tests, NULL, NULL);
}
