/* SPDX-License-Identifier: MIT
 * Unit tests of what researchctl publishes beyond trigger and cancel: the resume message (as
 * encoded, read back by the decoder the coordinator uses) and retry's trigger, rebuilt from a
 * research hash. */
#include "tests/support/test.h"

#include <string.h>

#include "common/buf.h"
#include "common/xalloc.h"
#include "proto/json.h"
#include "proto/msg.h"
#include "tools/researchctl/ctl_cmd.h"
#include "tools/researchctl/ctl_read.h"
#include "tools/researchctl/ctl_resume.h"
#include "tools/researchctl/ctl_retry.h"

static void
test_ctl_request_resume_encodes(void **state)
{
    (void)state;
    struct ctl_opts o = CTL_OPTS_INIT;
    o.research_id = "rs_1";
    o.reason = "worker fixed";
    o.force = true;
    snprintf(o.request_id, sizeof o.request_id, "resume-1");
    struct msg m;
    ctl_resume_msg(&o, 1795428000000LL, &m);
    struct buf wire = BUF_INIT;
    msg_encode(&m, &wire);
    struct msg back = MSG_INIT;
    assert_int_equal(msg_decode(MSG_TOPIC_TRIGGERS, wire.data, wire.len, &back, NULL), RC_OK);
    assert_int_equal(back.kind, MSG_RESUME);
    assert_int_equal(back.ts_ms, 1795428000000LL);
    assert_string_equal(back.u.resume.research_id, "rs_1");
    assert_string_equal(back.u.resume.request_id, "resume-1");
    assert_string_equal(back.u.resume.reason, "worker fixed");
    assert_true(back.u.resume.force);
    msg_release(&back);
    buf_release(&wire);
}

static struct ctl_research
research(const char *const *kv)
{
    struct ctl_research r = CTL_RESEARCH_INIT;
    while (kv[2 * r.n] != NULL) {
        r.n++;
    }
    r.names = xcalloc(r.n, sizeof(*r.names));
    r.values = xcalloc(r.n, sizeof(*r.values));
    for (size_t i = 0; i < r.n; i++) {
        r.names[i] = xstrdup(kv[2 * i]);
        r.values[i] = xstrdup(kv[2 * i + 1]);
    }
    return r;
}

static void
test_ctl_request_retry_rebuilds_the_trigger(void **state)
{
    (void)state;
    /* Started from a strategy: no design result, so the strategy is passed again. */
    const char *const from_strategy[] = {"research_id",
                                         "rs_1",
                                         "brief",
                                         "momentum",
                                         "model",
                                         "m1",
                                         "strategy_name",
                                         "rsi_7",
                                         "strategy_path",
                                         "/s/rsi_7.py",
                                         "bypass_gates",
                                         "1",
                                         "options",
                                         "{\"symbol\":\"BTCUSD\"}",
                                         NULL};
    struct ctl_research r = research(from_strategy);
    struct trigger t = {0};
    struct buf options = BUF_INIT;
    assert_int_equal(ctl_retry_trigger(&r, &t, &options, NULL), RC_OK);
    assert_string_equal(t.brief, "momentum");
    assert_string_equal(t.model, "m1");
    assert_string_equal(t.strategy, "rsi_7");
    assert_string_equal(t.strategy_path, "/s/rsi_7.py");
    assert_true(t.bypass_gates);
    struct buf json = BUF_INIT;
    assert_int_equal(json_from_msgpack(t.options, t.options_len, &json, NULL), RC_OK);
    assert_string_equal(json.data, "{\"symbol\":\"BTCUSD\"}");
    buf_release(&json);
    ctl_research_release(&r);

    /* Designed: the strategy came from design, so the new research designs again. */
    const char *const designed[] = {
        "research_id", "rs_2",         "brief", "b", "strategy_name", "s_9", "design.strategy_name",
        "s_9",         "bypass_gates", "0",     NULL};
    r = research(designed);
    memset(&t, 0, sizeof t);
    assert_int_equal(ctl_retry_trigger(&r, &t, &options, NULL), RC_OK);
    assert_null(t.strategy);
    assert_null(t.strategy_path);
    assert_false(t.bypass_gates);
    assert_null(t.options);
    ctl_research_release(&r);

    const char *const no_brief[] = {"research_id", "rs_3", NULL};
    r = research(no_brief);
    struct rc_err err = RC_ERR_INIT;
    assert_int_equal(ctl_retry_trigger(&r, &t, &options, &err), RC_EINVAL);
    assert_non_null(strstr(err.msg, "rs_3 has no brief"));
    ctl_research_release(&r);
    buf_release(&options);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ctl_request_resume_encodes),
        cmocka_unit_test(test_ctl_request_retry_rebuilds_the_trigger),
    };
    return cmocka_run_group_tests_name("ctl_request", tests, NULL, NULL);
}
