/* SPDX-License-Identifier: MIT
 * Unit tests of the selections of list and bulk cancel: list's filters, its paging of
 * rc:active and rc:finished through the query seam (canned replies: what is asked, the order
 * of the rows, when reading stops), its rendering; bulk cancel's filters and option checks. */
#include "tests/support/test.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "common/redislink.h"
#include "common/xalloc.h"
#include "tools/researchctl/ctl_bulk.h"
#include "tools/researchctl/ctl_cmd.h"
#include "tools/researchctl/ctl_list.h"
#include "tools/researchctl/ctl_read.h"

#include "tests/support/ctl_replies.h"

#define T 1795428000000LL /* 2026-11-23T10:00:00Z */
#define MAX_ROUNDS 8

/* The HMGET reply of list's fields: status phase last_phase strategy_name verdict created_at
 * finished_at cost_usd. */
static struct redislink_reply
r_row(const char *status, const char *phase, const char *last_phase, const char *verdict,
      int64_t created, int64_t finished)
{
    return r_array(8, r_str(status), phase ? r_str(phase) : r_nil(),
                   last_phase ? r_str(last_phase) : r_nil(), r_str("strat"),
                   verdict ? r_str(verdict) : r_nil(), r_ms(created),
                   finished > 0 ? r_ms(finished) : r_nil(), r_str("0.25"));
}

struct round {
    struct redislink_reply *replies;
    size_t n;
};

struct fake {
    struct round rounds[MAX_ROUNDS];
    size_t n_rounds, n_calls;
    struct buf asked; /* every command, one a line */
};

static void
fake_round(struct fake *f, size_t n, ...)
{
    struct round *r = &f->rounds[f->n_rounds++];
    va_list ap;
    r->n = n;
    r->replies = xcalloc(n > 0 ? n : 1, sizeof(*r->replies));
    va_start(ap, n);
    for (size_t i = 0; i < n; i++) {
        r->replies[i] = va_arg(ap, struct redislink_reply);
    }
    va_end(ap);
}

static enum rc_rc
fake_query(void *ctx, const struct redislink_cmd *cmds, size_t n, struct redislink_reply **out,
           struct rc_err *err)
{
    (void)err;
    struct fake *f = ctx;
    assert_true(f->n_calls < f->n_rounds);
    struct round *r = &f->rounds[f->n_calls++];
    for (size_t i = 0; i < n; i++) {
        for (size_t k = 0; k < cmds[i].argc; k++) {
            buf_printf(&f->asked, "%s%s", k > 0 ? " " : "", cmds[i].argv[k]);
        }
        buf_putc(&f->asked, '\n');
    }
    assert_int_equal(n, r->n);
    *out = r->replies;
    r->replies = NULL;
    return RC_OK;
}

static void
fake_release(struct fake *f)
{
    for (size_t i = 0; i < f->n_rounds; i++) {
        redislink_replies_free(f->rounds[i].replies, f->rounds[i].n);
    }
    buf_release(&f->asked);
}

static void
test_ctl_list_filters(void **state)
{
    (void)state;
    char id[] = "rs_1", status[] = "completed", phase[] = "assessing", strat[] = "s",
         verdict_word[] = "promising", running_word[] = "running", training[] = "training";
    struct ctl_list_row r = {id, status, phase, strat, verdict_word, T - 1000, T, true, 0.5};
    const struct {
        struct ctl_list_filter f;
        bool want;
    } cases[] = {
        {{NULL, NULL, NULL, 0, 50}, true},
        {{"completed", NULL, NULL, 0, 50}, true},
        {{"failed", NULL, NULL, 0, 50}, false},
        {{NULL, "assessing", NULL, 0, 50}, true},
        {{NULL, "training", NULL, 0, 50}, false},
        {{NULL, NULL, "promising", 0, 50}, true},
        {{NULL, NULL, "poor", 0, 50}, false},
        {{NULL, NULL, NULL, T - 1000, 50}, true},
        {{NULL, NULL, NULL, T - 999, 50}, false},
        {{"completed", "assessing", "promising", T - 5000, 50}, true},
    };
    for (size_t i = 0; i < N_OF(cases); i++) {
        if (ctl_list_matches(&cases[i].f, &r) != cases[i].want) {
            fail_msg("case %zu", i);
        }
    }
    struct ctl_list_row running = {id, running_word, training, NULL, NULL, T, 0, false, 0};
    const struct ctl_list_filter verdict = {NULL, NULL, "promising", 0, 50};
    assert_false(ctl_list_matches(&verdict, &running)); /* no verdict yet */
}

/* Both sets read, rows newest first by created_at, the limit applied, hashes gone skipped. */
static void
test_ctl_list_reads_both_sets_newest_first(void **state)
{
    (void)state;
    struct fake f = {0};
    /* rc:active: two (scores are created_at) */
    fake_round(&f, 1, r_array(4, r_str("rs_a2"), r_ms(T - 1000), r_str("rs_a1"), r_ms(T - 5000)));
    fake_round(&f, 2, r_row("running", "training", NULL, NULL, T - 1000, 0),
               r_row("running", "designing", NULL, NULL, T - 5000, 0));
    /* rc:finished: three by finished_at; one hash expired */
    fake_round(&f, 1,
               r_array(6, r_str("rs_f3"), r_ms(T - 100), r_str("rs_gone"), r_ms(T - 200),
                       r_str("rs_f1"), r_ms(T - 300)));
    fake_round(&f, 3, r_row("completed", "completed", "assessing", "promising", T - 3000, T - 100),
               r_array(8, r_nil(), r_nil(), r_nil(), r_nil(), r_nil(), r_nil(), r_nil(), r_nil()),
               r_row("failed", "failed", "training", NULL, T - 9000, T - 300));
    const struct ctl_source src = {fake_query, &f, "rc:"};
    const struct ctl_list_filter filter = {NULL, NULL, NULL, 0, 3};
    struct ctl_list l = CTL_LIST_INIT;
    assert_int_equal(ctl_list_read(&src, &filter, T, &l, NULL), RC_OK);
    assert_int_equal(l.n, 3);
    assert_string_equal(l.v[0].research_id, "rs_a2");
    assert_string_equal(l.v[1].research_id, "rs_f3");
    assert_string_equal(l.v[2].research_id, "rs_a1");
    assert_string_equal(l.v[1].phase, "assessing"); /* last_phase once finished */
    assert_int_equal(l.v[1].finished_at_ms, T - 100);
    assert_non_null(strstr(f.asked.data,
                           "ZREVRANGEBYSCORE rc:active +inf -inf WITHSCORES LIMIT 0 200\n"
                           "HMGET rc:research:rs_a2 status phase last_phase strategy_name "
                           "verdict created_at finished_at cost_usd\n"));
    assert_non_null(strstr(f.asked.data, "ZREVRANGEBYSCORE rc:finished +inf -inf WITHSCORES"));
    struct buf b = BUF_INIT;
    ctl_list_text(&l, &b);
    assert_non_null(
        strstr(b.data, "RESEARCH  STATUS     PHASE        STRATEGY  VERDICT    AGE   "));
    assert_non_null(strstr(b.data,
                           "\nrs_f3     completed  assessing    strat     promising  0m 03s   "
                           "0m 02s    $0.25\n"));
    buf_reset(&b);
    ctl_list_json(&l, &b);
    assert_non_null(strstr(b.data, "{\"now\":1795428000000,\"researches\":[{\"research_id\":"
                                   "\"rs_a2\",\"status\":\"running\",\"phase\":\"training\","));
    assert_non_null(strstr(b.data, "\"finished_at\":null,\"age_ms\":1000,\"duration_ms\":1000,"
                                   "\"cost_usd\":0.25}"));
    buf_release(&b);
    ctl_list_release(&l);
    fake_release(&f);
}

/* --status running reads rc:active only; --since bounds the scores asked for. */
static void
test_ctl_list_status_and_since_narrow_the_reads(void **state)
{
    (void)state;
    struct fake f = {0};
    fake_round(&f, 1, r_array(2, r_str("rs_a"), r_ms(T - 1000)));
    fake_round(&f, 1, r_row("running", "training", NULL, NULL, T - 1000, 0));
    const struct ctl_source src = {fake_query, &f, "rc:"};
    const struct ctl_list_filter filter = {"running", NULL, NULL, T - 60000, 50};
    struct ctl_list l = CTL_LIST_INIT;
    assert_int_equal(ctl_list_read(&src, &filter, T, &l, NULL), RC_OK);
    assert_int_equal(l.n, 1);
    assert_int_equal(f.n_calls, 2);
    assert_non_null(
        strstr(f.asked.data, "ZREVRANGEBYSCORE rc:active +inf 1795427940000 WITHSCORES"));
    assert_null(strstr(f.asked.data, "rc:finished"));
    ctl_list_release(&l);
    fake_release(&f);
}

static void
test_ctl_bulk_selects(void **state)
{
    (void)state;
    struct ctl_opts o = CTL_OPTS_INIT;
    const struct ctl_bulk_item waiting = {"rs_1", "training", T - 600000};
    const struct ctl_bulk_item young = {"rs_2", "designing", T - 1000};
    const struct ctl_bulk_item gone = {"rs_3", NULL, 0};
    o.all = true;
    assert_true(ctl_bulk_selects(&o, &waiting, T));
    assert_true(ctl_bulk_selects(&o, &gone, T));
    o.all = false;
    o.phase = "training";
    assert_true(ctl_bulk_selects(&o, &waiting, T));
    assert_false(ctl_bulk_selects(&o, &young, T));
    assert_false(ctl_bulk_selects(&o, &gone, T));
    o.phase = NULL;
    o.older_than_ms = 300000;
    assert_true(ctl_bulk_selects(&o, &waiting, T));
    assert_false(ctl_bulk_selects(&o, &young, T));
    assert_false(ctl_bulk_selects(&o, &gone, T)); /* age unknown: not older */
    o.phase = "designing";
    assert_false(ctl_bulk_selects(&o, &waiting, T)); /* both must hold */
}

static void
test_ctl_bulk_checks_options(void **state)
{
    (void)state;
    struct rc_err err = RC_ERR_INIT;
    struct ctl_opts o = CTL_OPTS_INIT;
    assert_int_equal(ctl_bulk_check(&o, &err), RC_EINVAL);
    assert_non_null(strstr(err.msg, "missing <research_id> (or - for ids on stdin, --all"));
    o.research_id = "rs_1";
    assert_int_equal(ctl_bulk_check(&o, NULL), RC_OK);
    assert_false(ctl_bulk_is_bulk(&o));
    o.all = true;
    assert_int_equal(ctl_bulk_check(&o, &err), RC_EINVAL);
    assert_non_null(strstr(err.msg, "do not go together"));
    o.research_id = "-";
    assert_int_equal(ctl_bulk_check(&o, NULL), RC_OK);
    assert_true(ctl_bulk_is_bulk(&o));
    snprintf(o.request_id, sizeof o.request_id, "req-1");
    assert_int_equal(ctl_bulk_check(&o, &err), RC_EINVAL);
    assert_non_null(strstr(err.msg, "--request-id is for one research"));
    const char *phase = NULL;
    assert_int_equal(ctl_bulk_phase_opt("training", &phase, NULL), RC_OK);
    assert_string_equal(phase, "training");
    const char *const bad[] = {"completed", "cancelled", "train", "waiting", ""};
    for (size_t i = 0; i < N_OF(bad); i++) {
        if (ctl_bulk_phase_opt(bad[i], &phase, &err) != RC_EINVAL ||
            strstr(err.msg, "is not one of pending, designing, training, backtesting,") == NULL) {
            fail_msg("case '%s': %s", bad[i], err.msg);
        }
    }
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ctl_list_filters),
        cmocka_unit_test(test_ctl_list_reads_both_sets_newest_first),
        cmocka_unit_test(test_ctl_list_status_and_since_narrow_the_reads),
        cmocka_unit_test(test_ctl_bulk_selects),
        cmocka_unit_test(test_ctl_bulk_checks_options),
    };
    return cmocka_run_group_tests_name("ctl_list", tests, NULL, NULL);
}
