/* SPDX-License-Identifier: MIT
 * test_apply: the write path's planning and judging, without Redis (the script itself runs in
 * the integration tests, it_store): what a pass becomes on the wire, and what each kind of
 * reply means for a change and for the pass. */
#include "tests/support/test.h"

#include <stdlib.h>
#include <string.h>

#include <hiredis/hiredis.h>

#include "common/buf.h"
#include "coordinator/apply.h"
#include "coordinator/change.h"

/* Replies built by hand, as hiredis would give them. */
static redisReply *
reply_str(int type, const char *s)
{
    redisReply *r = calloc(1, sizeof(*r));
    r->type = type;
    r->str = strdup(s);
    r->len = strlen(s);
    return r;
}

static redisReply *
reply_array(size_t n, redisReply **elements)
{
    redisReply *r = calloc(1, sizeof(*r));
    r->type = REDIS_REPLY_ARRAY;
    r->elements = n;
    r->element = calloc(n > 0 ? n : 1, sizeof(*r->element));
    for (size_t i = 0; i < n; i++) {
        r->element[i] = elements[i];
    }
    return r;
}

static size_t
count(const struct buf *b, const char *needle)
{
    size_t n = 0;
    for (const char *p = b->data; (p = strstr(p, needle)) != NULL; p++) {
        n++;
    }
    return n;
}

/* apply_plan's calls, gathered as the link would get them. */
static void
collect(void *ctx, const char *cmd, size_t len)
{
    buf_append(ctx, cmd, len);
}

/* A planned pass of two changes, as store_apply would send it. */
struct pass {
    struct apply *ap;
    struct change c[2];
    struct buf out;
    size_t n_calls;
};

static void
pass_plan(struct pass *p)
{
    *p = (struct pass){.ap = apply_new("rc:", "inst-1"), .c = {CHANGE_INIT, CHANGE_INIT},
                       .out = BUF_INIT};
    change_init(&p->c[0], CHANGE_UPDATE, "rs_1");
    change_set(&p->c[0], RF_PHASE, "training");
    change_init(&p->c[1], CHANGE_UPDATE, "rs_2");
    change_set(&p->c[1], RF_PHASE, "assessing");
    apply_set_sha(p->ap, "0123456789012345678901234567890123456789");
    p->n_calls = apply_plan(p->ap, p->c, 2, NULL, 3600, collect, &p->out);
}

/* Judge `reply` (freed) as the pass's one reply. */
static void
pass_judge(struct pass *p, redisReply *reply, struct store_result res[2], struct apply_outcome *o)
{
    apply_judge(p->ap, &reply, p->n_calls, 2, false, res, NULL, o);
    freeReplyObject(reply);
}

static void
pass_release(struct pass *p)
{
    buf_release(&p->out);
    change_release(&p->c[0]);
    change_release(&p->c[1]);
    apply_free(p->ap);
}

/* Two changes are one EVALSHA of the loaded script, fenced by this instance, naming each
 * research's key. */
static void
test_apply_plans_one_fenced_call(void **state)
{
    (void)state;
    struct pass p;
    pass_plan(&p);
    assert_int_equal(p.n_calls, 1);
    assert_int_equal(count(&p.out, "EVALSHA"), 1);
    assert_int_equal(count(&p.out, "0123456789012345678901234567890123456789"), 1);
    assert_int_equal(count(&p.out, "inst-1"), 1);
    assert_int_equal(count(&p.out, "rc:research:rs_1"), 1);
    assert_int_equal(count(&p.out, "rc:research:rs_2"), 1);
    assert_non_null(strstr(apply_script(p.ap), "FENCED"));
    pass_release(&p);
}

/* A resume moves the research back (out of rc:finished, into rc:active at created_at), removes
 * its TTL and remembers its outcome under rc:resume:<request_id>; its memo's key is its own. */
static void
test_apply_plans_a_resume(void **state)
{
    (void)state;
    struct apply *ap = apply_new("rc:", "inst-1");
    apply_set_sha(ap, "0123456789012345678901234567890123456789");
    struct change c = CHANGE_INIT;
    change_init(&c, CHANGE_RESUME, "rs_9");
    c.score = 1700000000000;
    change_set(&c, RF_STATUS, "running");
    change_set(&c, RF_ERROR, NULL);
    cancel_memo_set(&c.resume, "req-r", "resumed", "rs_9", "training", NULL);
    struct buf out = BUF_INIT;
    assert_int_equal(apply_plan(ap, &c, 1, NULL, 3600, collect, &out), 1);
    assert_int_equal(count(&out, "ZREM"), 1);
    assert_int_equal(count(&out, "ZADD"), 1);
    assert_int_equal(count(&out, "PERSIST"), 1);
    assert_int_equal(count(&out, "EXPIRE\r\n"), 1); /* the memo's TTL only */
    assert_int_equal(count(&out, "1700000000000"), 1);
    assert_int_equal(count(&out, "rc:resume:req-r"), 1);

    redisReply *groups[] = {reply_str(REDIS_REPLY_ERROR, "KEYTYPE 11 rc:resume:req-r holds a list"),
                            reply_array(0, (redisReply *[]){NULL})};
    redisReply *reply = reply_array(2, groups);
    struct store_result res[1];
    struct apply_outcome o;
    apply_judge(ap, &reply, 1, 1, false, res, NULL, &o);
    freeReplyObject(reply);
    assert_int_equal(res[0].rc, RC_EBACKEND);
    assert_false(res[0].research_key);
    assert_null(o.outage);
    buf_release(&out);
    change_release(&c);
    apply_free(ap);
}

/* An error of a change's own research key is that change's, for good; the other change is
 * written; the pass is no outage. */
static void
test_apply_judges_a_bad_own_key_alone(void **state)
{
    (void)state;
    struct pass p;
    pass_plan(&p);
    redisReply *groups[] = {reply_str(REDIS_REPLY_STATUS, "OK"),
                            reply_str(REDIS_REPLY_ERROR, "KEYTYPE 2 rc:research:rs_2 holds a list"),
                            reply_array(0, (redisReply *[]){NULL})};
    struct store_result res[2];
    struct apply_outcome o;
    pass_judge(&p, reply_array(3, groups), res, &o);
    assert_int_equal(res[0].rc, RC_OK);
    assert_int_equal(res[1].rc, RC_EBACKEND);
    assert_true(res[1].research_key);
    assert_int_equal(res[1].stored, RESEARCH_STORED_FOREIGN);
    assert_non_null(strstr(res[1].why, "holds a list"));
    assert_false(o.fenced);
    assert_null(o.outage);
    assert_false(o.drop_link);
    pass_release(&p);
}

/* One error for the whole call: FENCED writes nothing and is no outage; READONLY is an outage
 * that drops the link; either way no change counts as written. */
static void
test_apply_judges_whole_call_errors(void **state)
{
    (void)state;
    const struct {
        const char *error;
        bool fenced, outage, drop;
    } cases[] = {
        {"FENCED", true, false, false},
        {"READONLY You can't write against a read only replica.", false, true, true},
        {"OOM command not allowed when used memory > 'maxmemory'.", false, true, false},
    };
    for (size_t i = 0; i < N_OF(cases); i++) {
        struct pass p;
        pass_plan(&p);
        struct store_result res[2];
        struct apply_outcome o;
        pass_judge(&p, reply_str(REDIS_REPLY_ERROR, cases[i].error), res, &o);
        assert_int_equal(o.fenced, cases[i].fenced);
        assert_int_equal(o.outage != NULL, cases[i].outage);
        assert_int_equal(o.drop_link, cases[i].drop);
        assert_int_equal(res[0].rc, RC_EUNAVAIL);
        assert_int_equal(res[1].rc, RC_EUNAVAIL);
        pass_release(&p);
    }
}

/* A reply of the wrong shape is an outage: nothing may be taken as written. */
static void
test_apply_judges_a_short_reply_as_an_outage(void **state)
{
    (void)state;
    struct pass p;
    pass_plan(&p);
    redisReply *groups[] = {reply_str(REDIS_REPLY_STATUS, "OK")};
    struct store_result res[2];
    struct apply_outcome o;
    pass_judge(&p, reply_array(1, groups), res, &o);
    assert_non_null(o.outage);
    pass_release(&p);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_apply_plans_one_fenced_call),
        cmocka_unit_test(test_apply_plans_a_resume),
        cmocka_unit_test(test_apply_judges_a_bad_own_key_alone),
        cmocka_unit_test(test_apply_judges_whole_call_errors),
        cmocka_unit_test(test_apply_judges_a_short_reply_as_an_outage),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
