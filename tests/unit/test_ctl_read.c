/* SPDX-License-Identifier: MIT
 * Unit tests of ctl_read through its query seam: canned replies stand for Redis, so these
 * check what is asked (two round trips whatever the number of researches), how replies
 * become structs, the derived figures (live and busy workers, limit, budget) and that a reply
 * of the wrong shape is an error, not a crash. */
#include "tests/support/test.h"

#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "common/cfg.h"
#include "common/xalloc.h"
#include "tools/researchctl/ctl_read.h"
#include "common/redislink.h"

#include "tests/support/ctl_replies.h"

#define T 1795428000000LL /* 2026-11-23T10:00:00Z */
#define MAX_ROUNDS 4

/* One round trip's answer. */
struct round {
    struct redislink_reply *replies; /* handed over to the caller on use */
    size_t n;
    bool down; /* answer RC_EUNAVAIL instead */
};

struct fake {
    struct round rounds[MAX_ROUNDS];
    size_t n_rounds;
    size_t n_calls;
    struct buf asked[MAX_ROUNDS]; /* the commands of each call, one per line */
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
    struct fake *f = ctx;
    assert_true(f->n_calls < f->n_rounds);
    struct buf *asked = &f->asked[f->n_calls];
    struct round *r = &f->rounds[f->n_calls++];
    for (size_t i = 0; i < n; i++) {
        for (size_t k = 0; k < cmds[i].argc; k++) {
            buf_printf(asked, "%s%s", k > 0 ? " " : "", cmds[i].argv[k]);
        }
        buf_putc(asked, '\n');
    }
    if (r->down) {
        return rc_err_set(err, RC_EUNAVAIL, "redis x: cannot connect");
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
        buf_release(&f->asked[i]);
    }
}

static const struct cfg_agent agent = {.worker_timeout_ms = 15000,
                                       .max_concurrent = 0,
                                       .concurrency_buffer = 1,
                                       .daily_budget_usd = 20.0};

/* The first round of a status read: worker sets, active, budget, coordinator, leader, its
 * TTL, the newest finished. */
static void
status_first_round(struct fake *f)
{
    fake_round(
        f, 10, r_array(4, r_str("d-1"), r_ms(T - 500), r_str("d-2"), r_ms(T - 20000)),
        r_array(2, r_str("t-1"), r_ms(T - 100)), r_array(0),
        r_array(2, r_str("a-1"), r_ms(T - 300)),
        r_array(4, r_str("rs_a"), r_ms(T - 200000), r_str("rs_b"), r_str("1.7954279e+12")),
        r_array(4, r_str("spent_usd"), r_str("16.58"), r_str("daily_limit_usd"), r_str("20")),
        r_array(10, r_str("instance"), r_str("i1"), r_str("started_at"), r_ms(T - 7380000),
                r_str("last_cycle_at"), r_ms(T - 400), r_str("cycle_ms"), r_str("1.2"),
                r_str("limit"), r_str("6")),
        r_str("i1"), r_int(5000), r_array(2, r_str("rs_old"), r_ms(T - 302000)));
}

static void
test_ctl_read_status_in_two_round_trips(void **state)
{
    (void)state;
    struct fake f = {0};
    status_first_round(&f);
    fake_round(&f, 7,
               r_array(6, r_str("training"), r_str("rsi_variant_7"), r_ms(T - 135000), r_nil(),
                       r_str("t-1"), r_str("dispatched")),
               r_array(6, r_str("designing"), r_nil(), r_ms(T - 30000), r_ms(T - 62000), r_nil(),
                       r_str("")),
               r_array(8, r_str("busy"), r_str("rs_x"), r_str("rs_x:designing:1"), r_ms(T - 500),
                       r_nil(), r_nil(), r_nil(), r_nil()),
               r_array(8, r_str("idle"), r_str(""), r_str(""), r_ms(T - 20000),
                       r_nil(), r_nil(), r_nil(), r_nil()),
               /* t-1's heartbeat lags: idle, but rs_a holds a dispatch addressed to it */
               r_array(8, r_str("idle"), r_str(""), r_str(""), r_ms(T - 100),
                       r_nil(), r_nil(), r_nil(), r_nil()),
               r_array(8, r_str("idle"), r_str(""), r_str(""), r_ms(T - 300),
                       r_nil(), r_nil(), r_nil(), r_nil()),
               r_array(4, r_str("completed"), r_str("assessing"), r_str("promising"), r_nil()));
    const struct ctl_source src = {fake_query, &f, "rc:"};
    struct ctl_status st = CTL_STATUS_INIT;

    assert_int_equal(ctl_read_status(&src, &agent, T, &st, NULL), RC_OK);
    assert_int_equal(f.n_calls, 2);
    assert_non_null(strstr(f.asked[0].data, "ZRANGE rc:workers:design 0 -1 WITHSCORES\n"));
    assert_non_null(strstr(f.asked[0].data, "ZRANGE rc:active 0 -1 WITHSCORES\n"));
    assert_non_null(strstr(f.asked[0].data, "HGETALL rc:budget:2026-11-23\n"));
    assert_non_null(strstr(f.asked[0].data, "HGETALL rc:coordinator\nGET rc:leader\n"));
    assert_non_null(strstr(f.asked[0].data, "ZREVRANGE rc:finished 0 0 WITHSCORES\n"));
    assert_non_null(strstr(f.asked[1].data, "HMGET rc:research:rs_a phase strategy_name "
                                            "phase_started_at waiting_since worker_id "
                                            "child_status\n"));
    assert_non_null(strstr(f.asked[1].data, "HMGET rc:worker:d-2 state research_id dispatch_id "
                                            "last_seen progress step host labels\n"));
    assert_non_null(strstr(f.asked[1].data, "HMGET rc:research:rs_old status last_phase verdict "
                                            "error\n"));

    assert_int_equal(st.n_active, 2);
    assert_string_equal(st.active[0].research_id, "rs_a");
    assert_string_equal(st.active[0].phase, "training");
    assert_string_equal(st.active[0].strategy_name, "rsi_variant_7");
    assert_int_equal(st.active[0].in_phase_ms, 135000);
    assert_int_equal(st.active[0].waiting_since_ms, 0);
    assert_int_equal(st.active[1].created_at_ms, 1795427900000LL); /* a score in %g form */
    assert_null(st.active[1].strategy_name);
    assert_null(st.active[1].child_status); /* "" reads as absent */
    assert_int_equal(st.active[1].waiting_since_ms, T - 62000);

    assert_int_equal(st.n_workers, 4);
    assert_false(st.workers[1].live); /* d-2: 20 s > AGENT_WORKER_TIMEOUT */
    assert_true(st.workers[2].busy);  /* t-1: held by rs_a */
    assert_int_equal(st.per_type[0].busy, 1);
    assert_int_equal(st.per_type[0].total, 1);
    assert_int_equal(st.per_type[1].busy, 1);
    assert_int_equal(st.per_type[1].total, 1);
    assert_int_equal(st.per_type[2].total, 0);
    assert_int_equal(st.per_type[3].busy, 0);
    assert_int_equal(st.per_type[3].total, 1);

    assert_true(st.limit_from_coordinator);
    assert_int_equal(st.limit, 6);
    assert_string_equal(st.budget.day, "2026-11-23");
    assert_true(fabs(st.budget.remaining_usd - 3.42) < 1e-9);
    assert_true(st.coordinator.leader);
    assert_string_equal(st.coordinator.leader_instance, "i1");
    assert_int_equal(st.coordinator.leader_ttl_ms, 5000);
    assert_int_equal(st.coordinator.started_at_ms, T - 7380000);
    assert_true(st.coordinator.has_cycle_ms);
    assert_true(st.has_last);
    assert_string_equal(st.last.research_id, "rs_old");
    assert_string_equal(st.last.verdict, "promising");
    assert_null(st.last.error);
    ctl_status_release(&st);
    fake_release(&f);
}

static void
test_ctl_read_empty_redis_uses_the_environment(void **state)
{
    (void)state;
    struct fake f = {0};
    fake_round(&f, 10, r_array(0), r_array(0), r_array(0), r_array(0), r_array(0), r_array(0),
               r_array(0), r_nil(), r_int(-2), r_array(0));
    const struct ctl_source src = {fake_query, &f, "rc:"};
    struct ctl_status st = CTL_STATUS_INIT;

    assert_int_equal(ctl_read_status(&src, &agent, T, &st, NULL), RC_OK);
    assert_int_equal(f.n_calls, 1); /* nothing to look up in a second round */
    assert_int_equal(st.n_active, 0);
    assert_false(st.has_last);
    assert_false(st.coordinator.seen);
    assert_false(st.coordinator.leader);
    assert_false(st.limit_from_coordinator);
    assert_int_equal(st.limit, 1); /* 0 workers + buffer 1 */
    assert_false(st.budget.stored);
    assert_true(st.budget.daily_limit_usd == 20.0 && st.budget.spent_usd == 0.0);
    ctl_status_release(&st);
    fake_release(&f);

    /* With AGENT_MAX_CONCURRENT_RESEARCHES set, that is the limit. */
    struct fake g = {0};
    fake_round(&g, 10, r_array(2, r_str("t-1"), r_ms(T)), r_array(2, r_str("t-2"), r_ms(T)),
               r_array(0), r_array(0), r_array(0), r_array(0), r_array(0), r_nil(), r_int(-2),
               r_array(0));
    fake_round(&g, 2,
               r_array(8, r_nil(), r_nil(), r_nil(), r_nil(), r_nil(), r_nil(), r_nil(), r_nil()),
               r_array(8, r_nil(), r_nil(), r_nil(), r_nil(), r_nil(), r_nil(), r_nil(), r_nil()));
    struct cfg_agent fixed = agent;
    fixed.max_concurrent = 4;
    const struct ctl_source src2 = {fake_query, &g, "rc:"};
    assert_int_equal(ctl_read_status(&src2, &fixed, T, &st, NULL), RC_OK);
    assert_int_equal(st.limit, 4);
    assert_false(st.workers[0].has_hash);
    assert_true(st.workers[0].live); /* the zset score stands in for last_seen */
    ctl_status_release(&st);
    fake_release(&g);
}

static void
test_ctl_read_refuses_bad_shapes(void **state)
{
    (void)state;
    /* A score that is not a number, a WITHSCORES reply of odd length, a hash of odd length. */
    for (int k = 0; k < 3; k++) {
        struct fake f = {0};
        struct redislink_reply active = k == 0   ? r_array(2, r_str("rs_a"), r_str("soon"))
                                        : k == 1 ? r_array(1, r_str("rs_a"))
                                                 : r_array(0);
        struct redislink_reply budget = k == 2 ? r_array(1, r_str("spent_usd")) : r_array(0);
        fake_round(&f, 10, r_array(0), r_array(0), r_array(0), r_array(0), active, budget,
                   r_array(0), r_nil(), r_int(-2), r_array(0));
        const struct ctl_source src = {fake_query, &f, "rc:"};
        struct ctl_status st = CTL_STATUS_INIT;
        struct rc_err err = RC_ERR_INIT;
        if (ctl_read_status(&src, &agent, T, &st, &err) != RC_EBACKEND) {
            fail_msg("case %d: not refused", k);
        }
        assert_non_null(strstr(err.msg, "unexpected reply to"));
        assert_int_equal(st.n_active, 0); /* untouched */
        fake_release(&f);
    }
    /* Redis down: the query's error goes through as is. */
    struct fake f = {0};
    f.rounds[f.n_rounds++].down = true;
    const struct ctl_source src = {fake_query, &f, "rc:"};
    struct ctl_status st = CTL_STATUS_INIT;
    struct rc_err err = RC_ERR_INIT;
    assert_int_equal(ctl_read_status(&src, &agent, T, &st, &err), RC_EUNAVAIL);
    assert_string_equal(err.msg, "redis x: cannot connect");
    fake_release(&f);
}

static void
test_ctl_read_workers_lists_stale_ones(void **state)
{
    (void)state;
    struct fake f = {0};
    fake_round(&f, 4, r_array(0), r_array(0),
               r_array(4, r_str("b-old"), r_ms(T - 60000), r_str("b-1"), r_ms(T - 800)),
               r_array(0));
    fake_round(&f, 2,
               r_array(8, r_str("busy"), r_str("rs_gone"), r_str("rs_gone:backtesting:1"),
                       r_ms(T - 60000), r_str("1.5"), r_nil(), r_nil(), r_nil()),
               r_array(8, r_str("busy"), r_str("rs_1"), r_str("rs_1:backtesting:1"),
                       r_ms(T - 800), r_str("0.25"), r_str("fold 1/4"), r_str("h-2"),
                       r_str("gpu=none")));
    const struct ctl_source src = {fake_query, &f, "pre:"};
    struct ctl_workers w = CTL_WORKERS_INIT;
    assert_int_equal(ctl_read_workers(&src, &agent, T, &w, NULL), RC_OK);
    assert_int_equal(f.n_calls, 2);
    assert_non_null(strstr(f.asked[0].data, "ZRANGE pre:workers:backtest 0 -1 WITHSCORES\n"));
    assert_non_null(strstr(f.asked[1].data, "HMGET pre:worker:b-old "));
    assert_int_equal(w.n, 2);
    assert_false(w.v[0].live);
    assert_false(w.v[0].busy); /* dead, whatever its last heartbeat said */
    assert_string_equal(w.v[0].research_id, "rs_gone");
    assert_int_equal(w.v[0].age_ms, 60000);
    assert_false(w.v[0].has_progress); /* 1.5 is no progress: not shown */
    assert_true(w.v[1].live);
    assert_true(w.v[1].has_progress);
    assert_true(w.v[1].progress == 0.25);
    assert_string_equal(w.v[1].step, "fold 1/4");
    assert_string_equal(w.v[1].host, "h-2");
    assert_string_equal(w.v[1].labels, "gpu=none");
    ctl_workers_release(&w);
    fake_release(&f);
}

static void
test_ctl_read_research_sorted_or_not_found(void **state)
{
    (void)state;
    struct fake f = {0};
    fake_round(&f, 2,
               r_array(6, r_str("status"), r_str("running"), r_str("brief"), r_str("a b"),
                       r_str("training.accuracy"), r_str("0.62")),
               r_int(-1));
    fake_round(&f, 2, r_array(0), r_int(-2));
    const struct ctl_source src = {fake_query, &f, "rc:"};
    struct ctl_research r = CTL_RESEARCH_INIT;
    assert_int_equal(ctl_read_research(&src, "rs_1", &r, NULL), RC_OK);
    assert_string_equal(f.asked[0].data, "HGETALL rc:research:rs_1\nPTTL rc:research:rs_1\n");
    assert_int_equal(r.n, 3);
    assert_string_equal(r.names[0], "brief");
    assert_string_equal(r.names[2], "training.accuracy");
    assert_string_equal(ctl_research_get(&r, "status"), "running");
    assert_null(ctl_research_get(&r, "verdict"));
    assert_int_equal(r.ttl_ms, -1);
    ctl_research_release(&r);
    struct rc_err err = RC_ERR_INIT;
    assert_int_equal(ctl_read_research(&src, "rs_2", &r, &err), RC_ENOTFOUND);
    assert_int_equal(r.n, 0);
    fake_release(&f);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ctl_read_status_in_two_round_trips),
        cmocka_unit_test(test_ctl_read_empty_redis_uses_the_environment),
        cmocka_unit_test(test_ctl_read_refuses_bad_shapes),
        cmocka_unit_test(test_ctl_read_workers_lists_stale_ones),
        cmocka_unit_test(test_ctl_read_research_sorted_or_not_found),
    };
    return cmocka_run_group_tests_name("ctl_read", tests, NULL, NULL);
}
