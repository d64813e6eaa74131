/* SPDX-License-Identifier: MIT
 * Unit tests of ctl_event: each type's keys (contract §4), the readable line (padding,
 * quoting, nil, control characters escaped) and the JSON object. */
#include "tests/support/test.h"

#include <string.h>

#include "common/buf.h"
#include "proto/msg.h"
#include "tools/researchctl/ctl_event.h"

#define TS 1795428000123LL /* 2026-11-23T10:00:00.123Z */

static void
test_ctl_event_fields_follow_the_contract(void **state)
{
    (void)state;
    const struct {
        struct event ev;
        const char *keys; /* space-separated */
    } cases[] = {
        {{.type = EVENT_ACCEPTED}, "request_id"},
        {{.type = EVENT_REJECTED}, "request_id reason message"},
        {{.type = EVENT_REJECTED, .has_capacity = true},
         "request_id reason message active_count limit"},
        {{.type = EVENT_REJECTED, .has_budget = true},
         "request_id reason message remaining daily_limit"},
        {{.type = EVENT_PHASE_STARTED}, "phase dispatch_id attempt"},
        {{.type = EVENT_GATE}, "gate passed reason"},
        {{.type = EVENT_REDISPATCHED}, "phase old_dispatch_id dispatch_id attempt reason"},
        {{.type = EVENT_COMPLETED}, "strategy_name verdict gate_rejection_reason"},
        {{.type = EVENT_FAILED}, "phase error"},
        {{.type = EVENT_CANCELLED}, "phase dispatch_id request_id"},
        {{.type = EVENT_CANCEL_REJECTED}, "reason request_id"},
    };
    for (size_t i = 0; i < N_OF(cases); i++) {
        struct ctl_field f[CTL_EVENT_MAX_FIELDS];
        size_t n = ctl_event_fields(&cases[i].ev, f);
        struct buf keys = BUF_INIT;
        for (size_t k = 0; k < n; k++) {
            buf_printf(&keys, "%s%s", k > 0 ? " " : "", f[k].key);
        }
        if (strcmp(keys.data, cases[i].keys) != 0) {
            fail_msg("case %zu (%s): got \"%s\", want \"%s\"", i, event_type_name(cases[i].ev.type),
                     keys.data, cases[i].keys);
        }
        buf_release(&keys);
    }
}

static void
test_ctl_event_line_is_readable(void **state)
{
    (void)state;
    const struct {
        struct event ev;
        const char *want;
    } cases[] = {
        {{.type = EVENT_PHASE_STARTED,
          .research_id = "rs_1",
          .phase = PHASE_TRAINING,
          .dispatch_id = "rs_1:training:1",
          .attempt = 1},
         "2026-11-23T10:00:00.123Z  rs_1  phase_started    phase=training "
         "dispatch_id=rs_1:training:1 attempt=1"},
        {{.type = EVENT_FAILED,
          .research_id = "rs_2",
          .phase = PHASE_BACKTESTING,
          .error = "bad result: win_rate \"x\""},
         "2026-11-23T10:00:00.123Z  rs_2  failed           phase=backtesting "
         "error=\"bad result: win_rate \\\"x\\\"\""},
        {{.type = EVENT_GATE, .research_id = "rs_3", .gate = WORKER_BACKTEST, .passed = false},
         "2026-11-23T10:00:00.123Z  rs_3  gate             gate=backtest passed=false reason=-"},
        {{.type = EVENT_REJECTED,
          .request_id = "req-9",
          .reason = "budget_exhausted",
          .has_budget = true,
          .remaining = -0.12,
          .daily_limit = 20},
         "2026-11-23T10:00:00.123Z  -  rejected         request_id=req-9 reason=budget_exhausted "
         "message=- remaining=-0.12 daily_limit=20"},
        {{.type = EVENT_CANCEL_REJECTED,
          .research_id = "rs_4",
          .reason = "not_found",
          .request_id = "c-1"},
         "2026-11-23T10:00:00.123Z  rs_4  cancel_rejected  reason=not_found request_id=c-1"},
    };
    for (size_t i = 0; i < N_OF(cases); i++) {
        struct buf b = BUF_INIT;
        ctl_event_line(TS, &cases[i].ev, &b);
        if (strcmp(b.data, cases[i].want) != 0) {
            fail_msg("case %zu:\n got %s\nwant %s", i, b.data, cases[i].want);
        }
        buf_release(&b);
    }
}

/* Text in an event is whatever its producer wrote: the line shows it escaped, the JSON object
 * as JSON escapes it. */
static void
test_ctl_event_escapes_control_characters(void **state)
{
    (void)state;
    const struct {
        struct event ev;
        const char *line;
        const char *json_part;
    } cases[] = {
        {{.type = EVENT_FAILED,
          .research_id = "rs_1",
          .phase = PHASE_TRAINING,
          .error = "\x1b[31mboom\x1b[0m\n"},
         "2026-11-23T10:00:00.123Z  rs_1  failed           phase=training "
         "error=\"\\x1b[31mboom\\x1b[0m\\n\"",
         "\"error\":\"\\u001b[31mboom\\u001b[0m\\n\""},
        {{.type = EVENT_COMPLETED,
          .research_id = "rs_\x1b[2J",
          .strategy_name = "s\rforged line",
          .verdict = "ok\x7f"},
         "2026-11-23T10:00:00.123Z  rs_\\x1b[2J  completed        "
         "strategy_name=\"s\\rforged line\" verdict=\"ok\\x7f\" gate_rejection_reason=-",
         "\"research_id\":\"rs_\\u001b[2J\",\"strategy_name\":\"s\\rforged line\""},
        {{.type = EVENT_REJECTED,
          .request_id = "req-1",
          .reason = "at_capacity",
          .message = "tab\there \xc2\x9bK"},
         "2026-11-23T10:00:00.123Z  -  rejected         request_id=req-1 reason=at_capacity "
         "message=\"tab\\there \\xc2\\x9bK\"",
         "\"message\":\"tab\\there "},
    };
    for (size_t i = 0; i < N_OF(cases); i++) {
        struct buf b = BUF_INIT;
        ctl_event_line(TS, &cases[i].ev, &b);
        if (strcmp(b.data, cases[i].line) != 0) {
            fail_msg("case %zu:\n got %s\nwant %s", i, b.data, cases[i].line);
        }
        buf_reset(&b);
        ctl_event_json(TS, &cases[i].ev, &b);
        if (strstr(b.data, cases[i].json_part) == NULL) {
            fail_msg("case %zu: no %s in %s", i, cases[i].json_part, b.data);
        }
        buf_release(&b);
    }
}

static void
test_ctl_event_json_is_typed(void **state)
{
    (void)state;
    struct event ev = {.type = EVENT_REJECTED,
                       .request_id = "req-1",
                       .reason = "at_capacity",
                       .message = "5 active",
                       .has_capacity = true,
                       .active_count = 5,
                       .limit = 5};
    struct buf b = BUF_INIT;
    ctl_event_json(TS, &ev, &b);
    assert_string_equal(b.data, "{\"ts\":1795428000123,\"time\":\"2026-11-23T10:00:00.123Z\","
                                "\"type\":\"rejected\",\"research_id\":null,\"request_id\":"
                                "\"req-1\",\"reason\":\"at_capacity\",\"message\":\"5 active\","
                                "\"active_count\":5,\"limit\":5}");
    buf_reset(&b);
    struct event gate = {.type = EVENT_GATE,
                         .research_id = "rs_1",
                         .gate = WORKER_TRAINING,
                         .passed = true,
                         .reason = "bypassed"};
    ctl_event_json(TS, &gate, &b);
    assert_string_equal(b.data, "{\"ts\":1795428000123,\"time\":\"2026-11-23T10:00:00.123Z\","
                                "\"type\":\"gate\",\"research_id\":\"rs_1\",\"gate\":"
                                "\"training\",\"passed\":true,\"reason\":\"bypassed\"}");
    buf_release(&b);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ctl_event_fields_follow_the_contract),
        cmocka_unit_test(test_ctl_event_line_is_readable),
        cmocka_unit_test(test_ctl_event_escapes_control_characters),
        cmocka_unit_test(test_ctl_event_json_is_typed),
    };
    return cmocka_run_group_tests_name("ctl_event", tests, NULL, NULL);
}
