/* SPDX-License-Identifier: MIT
 * test_rcw_beat: the words of a heartbeat (contract §5), with and without the optional
 * fields. */
#include "tests/support/test.h"

#include <math.h>
#include <string.h>

#include "worker/rcw_beat.h"

static const char *
field(const char **words, size_t n, const char *name)
{
    for (size_t i = 2; i + 1 < n; i += 2) {
        if (strcmp(words[i], name) == 0) {
            return words[i + 1];
        }
    }
    return NULL;
}

static void
test_rcw_beat_required_fields_only(void **state)
{
    (void)state;
    const char *words[RCW_BEAT_WORDS_MAX];
    char num[RCW_BEAT_NUM_MAX];
    struct rcw_beat b = {.type = "training",
                         .state = HB_IDLE,
                         .dispatch_id = "",
                         .research_id = "",
                         .last_seen = "1700000000000",
                         .progress = NAN};

    size_t n = rcw_beat_hset(&b, "rc:worker:w-1", words, num);
    assert_int_equal(n, 12);
    assert_string_equal(words[0], "HSET");
    assert_string_equal(words[1], "rc:worker:w-1");
    assert_string_equal(field(words, n, "type"), "training");
    assert_string_equal(field(words, n, "state"), "idle");
    assert_string_equal(field(words, n, "dispatch_id"), "");
    assert_string_equal(field(words, n, "last_seen"), "1700000000000");
    assert_null(field(words, n, "progress"));
    assert_null(field(words, n, "step"));
}

static void
test_rcw_beat_optional_fields(void **state)
{
    (void)state;
    const char *words[RCW_BEAT_WORDS_MAX];
    char num[RCW_BEAT_NUM_MAX];
    struct rcw_beat b = {.type = "training",
                         .state = HB_DRAINING,
                         .dispatch_id = "d-1",
                         .research_id = "r-1",
                         .last_seen = "5",
                         .progress = 0.4,
                         .step = "epoch 4/10",
                         .host = "gpu-box",
                         .labels = "gpu=a100"};

    size_t n = rcw_beat_hset(&b, "k", words, num);
    assert_int_equal(n, RCW_BEAT_WORDS_MAX);
    assert_string_equal(field(words, n, "state"), "draining");
    assert_string_equal(field(words, n, "progress"), "0.4");
    assert_string_equal(field(words, n, "step"), "epoch 4/10");
    assert_string_equal(field(words, n, "host"), "gpu-box");
    assert_string_equal(field(words, n, "labels"), "gpu=a100");
    b.progress = 1;
    b.step = "";
    n = rcw_beat_hset(&b, "k", words, num);
    assert_string_equal(field(words, n, "progress"), "1");
    assert_null(field(words, n, "step"));
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rcw_beat_required_fields_only),
        cmocka_unit_test(test_rcw_beat_optional_fields),
    };
    return cmocka_run_group_tests_name("rcw_beat", tests, NULL, NULL);
}
