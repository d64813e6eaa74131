/* SPDX-License-Identifier: MIT
 * ctl_read: researchctl's reads of the contract's keys. Each read is planned as pipelines of
 * commands whose replies are parsed by position; a reply of the wrong shape is RC_EBACKEND,
 * never a crash. */
#include "tools/researchctl/ctl_read.h"

#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "common/cfg.h"
#include "common/clock.h"
#include "common/num.h"
#include "common/xalloc.h"
#include "contract/capacity.h"
#include "contract/fields.h"
#include "contract/keys.h"
#include "tools/researchctl/ctl_pipe.h"
#include "common/redislink.h"

static enum rc_rc
redis_query(void *ctx, const struct redislink_cmd *cmds, size_t n, struct redislink_reply **out,
            struct rc_err *err)
{
    return redislink_query(ctx, cmds, n, out, err);
}

struct ctl_source
ctl_source_redis(struct redislink *rl, const char *key_prefix)
{
    return (struct ctl_source){redis_query, rl, key_prefix};
}

/* ---- round trips ------------------------------------------------------------------------- */

static enum rc_rc
run_pipe(const struct ctl_source *src, const struct ctl_pipe *p, struct redislink_reply **out,
         struct rc_err *err)
{
    return src->query(src->ctx, p->cmds, p->n, out, err);
}

/* ---- workers ------------------------------------------------------------------------------ */

static const char *const worker_fields[] = {HB_STATE, HB_RESEARCH_ID, HB_DISPATCH_ID,
                                            HB_LAST_SEEN, HB_PROGRESS, HB_STEP,
                                            HB_HOST,  HB_LABELS, NULL};

static void
worker_release(struct ctl_worker *w)
{
    free(w->worker_id);
    free(w->state);
    free(w->research_id);
    free(w->dispatch_id);
    free(w->step);
    free(w->host);
    free(w->labels);
}

static void
worker_array_free(struct ctl_worker *v, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        worker_release(&v[i]);
    }
    free(v);
}

/* First round: every rc:workers:<type> in type order. */
static void
plan_worker_sets(struct ctl_pipe *p, const char *prefix, struct buf *key)
{
    for (int t = 0; t < WORKER_TYPE_COUNT; t++) {
        ctl_pipe_zset(p, keys_workers(key, prefix, (enum worker_type)t), false);
    }
}

/* Check the worker sets' replies (replies[0..WORKER_TYPE_COUNT) of `p`). */
static enum rc_rc
check_worker_sets(const struct ctl_pipe *p, const struct redislink_reply *replies,
                  struct rc_err *err)
{
    for (int t = 0; t < WORKER_TYPE_COUNT; t++) {
        enum rc_rc rc = ctl_pipe_want_zset(&replies[t], &p->cmds[t], err);
        if (rc != RC_OK) {
            return rc;
        }
    }
    return RC_OK;
}

/* The members of the checked worker sets as workers with only type, id and score set. */
static struct ctl_worker *
parse_worker_sets(const struct redislink_reply *replies, size_t *n_out)
{
    size_t n = 0;
    for (int t = 0; t < WORKER_TYPE_COUNT; t++) {
        n += replies[t].n_elements / 2;
    }
    struct ctl_worker *v = xcalloc(n > 0 ? n : 1, sizeof(*v));
    size_t k = 0;
    for (int t = 0; t < WORKER_TYPE_COUNT; t++) {
        for (size_t i = 0; i < replies[t].n_elements; i += 2) {
            v[k].type = (enum worker_type)t;
            v[k].worker_id = xstrdup(replies[t].elements[i].str);
            v[k].last_seen_ms = ctl_pipe_int(&replies[t].elements[i + 1], 0);
            k++;
        }
    }
    *n_out = n;
    return v;
}

/* Fill a worker from its HMGET reply (checked) and decide whether it is live. */
static void
worker_from_hash(struct ctl_worker *w, const struct redislink_reply *r, int64_t now_ms,
                 int64_t timeout_ms)
{
    for (size_t i = 0; i < r->n_elements; i++) {
        w->has_hash = w->has_hash || r->elements[i].type != REDISLINK_NIL;
    }
    w->state = ctl_pipe_str(&r->elements[0]);
    w->research_id = ctl_pipe_str(&r->elements[1]);
    w->dispatch_id = ctl_pipe_str(&r->elements[2]);
    w->last_seen_ms = ctl_pipe_int(&r->elements[3], w->last_seen_ms);
    char *progress = ctl_pipe_str(&r->elements[4]);
    /* Shown only: a worker's unreadable field is simply not shown. */
    double p = 0;
    w->has_progress = progress != NULL && num_parse_f64(progress, strlen(progress), &p) &&
                      p >= 0 && p <= 1;
    w->progress = w->has_progress ? p : 0;
    free(progress);
    w->step = ctl_pipe_str(&r->elements[5]);
    w->host = ctl_pipe_str(&r->elements[6]);
    w->labels = ctl_pipe_str(&r->elements[7]);
    w->age_ms = now_ms > w->last_seen_ms ? now_ms - w->last_seen_ms : 0;
    w->live = w->age_ms <= timeout_ms;
    w->busy = w->live && w->state != NULL && strcmp(w->state, hb_state_name(HB_BUSY)) == 0;
}

/* ---- status ------------------------------------------------------------------------------- */

enum first_round {
    R1_ACTIVE = WORKER_TYPE_COUNT, /* the worker sets come first */
    R1_BUDGET,
    R1_COORDINATOR,
    R1_LEADER,
    R1_LEADER_TTL,
    R1_FINISHED,
    R1_COUNT
};


static void
active_release(struct ctl_active *a)
{
    free(a->research_id);
    free(a->phase);
    free(a->strategy_name);
    free(a->worker_id);
    free(a->child_status);
}

void
ctl_status_release(struct ctl_status *st)
{
    for (size_t i = 0; i < st->n_active; i++) {
        active_release(&st->active[i]);
    }
    free(st->active);
    worker_array_free(st->workers, st->n_workers);
    free(st->coordinator.instance);
    free(st->coordinator.version);
    free(st->coordinator.leader_instance);
    free(st->last.research_id);
    free(st->last.status);
    free(st->last.last_phase);
    free(st->last.verdict);
    free(st->last.error);
    *st = (struct ctl_status)CTL_STATUS_INIT;
}

static void
parse_coordinator(const struct redislink_reply *r, const struct redislink_reply *leader,
                  const struct redislink_reply *ttl, struct ctl_coordinator *c)
{
    c->seen = r->n_elements > 0;
    c->instance = ctl_pipe_field_str(r, COORD_INSTANCE);
    c->version = ctl_pipe_field_str(r, COORD_VERSION);
    c->started_at_ms = ctl_pipe_field_int(r, COORD_STARTED_AT, 0);
    c->last_cycle_at_ms = ctl_pipe_field_int(r, COORD_LAST_CYCLE_AT, 0);
    c->has_cycle_ms = ctl_pipe_field_num(r, COORD_CYCLE_MS, &c->cycle_ms);
    c->limit = ctl_pipe_field_int(r, COORD_LIMIT, -1);
    c->has_limit = c->limit >= 0;
    c->triggers = ctl_pipe_field_int(r, COORD_TRIGGERS, 0);
    c->completions = ctl_pipe_field_int(r, COORD_COMPLETIONS, 0);
    c->stale_completions = ctl_pipe_field_int(r, COORD_STALE_COMPLETIONS, 0);
    c->invalid_inputs = ctl_pipe_field_int(r, COORD_INVALID_INPUTS, 0);
    c->redispatches = ctl_pipe_field_int(r, COORD_REDISPATCHES, 0);
    c->leader = leader->type == REDISLINK_STR;
    c->leader_instance = ctl_pipe_str(leader);
    c->leader_ttl_ms = ttl->type == REDISLINK_INT && ttl->integer >= 0 ? ttl->integer : -1;
}

static void
parse_budget(const struct redislink_reply *r, const struct cfg_agent *agent, int64_t now_ms,
             struct ctl_budget *b)
{
    clock_utc_day(now_ms, b->day);
    b->stored = r->n_elements > 0;
    if (!ctl_pipe_field_num(r, BUDGET_SPENT_USD, &b->spent_usd)) {
        b->spent_usd = 0;
    }
    if (!ctl_pipe_field_num(r, BUDGET_DAILY_LIMIT_USD, &b->daily_limit_usd)) {
        b->daily_limit_usd = agent->daily_budget_usd;
    }
    b->remaining_usd = b->daily_limit_usd - b->spent_usd;
}

/* Check every first-round reply's shape. */
static enum rc_rc
check_first(const struct ctl_pipe *p, const struct redislink_reply *r, struct rc_err *err)
{
    enum rc_rc rc = check_worker_sets(p, r, err);
    if (rc == RC_OK) {
        rc = ctl_pipe_want_zset(&r[R1_ACTIVE], &p->cmds[R1_ACTIVE], err);
    }
    if (rc == RC_OK) {
        rc = ctl_pipe_want_array(&r[R1_BUDGET], &p->cmds[R1_BUDGET], 2, 0, err);
    }
    if (rc == RC_OK) {
        rc = ctl_pipe_want_array(&r[R1_COORDINATOR], &p->cmds[R1_COORDINATOR], 2, 0, err);
    }
    if (rc == RC_OK && r[R1_LEADER].type == REDISLINK_ARRAY) {
        rc = ctl_pipe_bad_reply(&p->cmds[R1_LEADER], err);
    }
    if (rc == RC_OK) {
        rc = ctl_pipe_want_zset(&r[R1_FINISHED], &p->cmds[R1_FINISHED], err);
    }
    return rc;
}

/* Second round: the fields of every active research, every worker and the last finished. */
static void
plan_second(struct ctl_pipe *p, const char *prefix, const struct ctl_status *st, struct buf *key)
{
    const char *const active_fields[] = {research_field_name(RF_PHASE),
                                         research_field_name(RF_STRATEGY_NAME),
                                         research_field_name(RF_PHASE_STARTED_AT),
                                         research_field_name(RF_WAITING_SINCE),
                                         research_field_name(RF_WORKER_ID),
                                         research_field_name(RF_CHILD_STATUS),
                                         NULL};
    const char *const finished_fields[] = {
        research_field_name(RF_STATUS), research_field_name(RF_LAST_PHASE),
        research_field_name(RF_VERDICT), research_field_name(RF_ERROR), NULL};
    for (size_t i = 0; i < st->n_active; i++) {
        ctl_pipe_hmget(p, keys_research(key, prefix, st->active[i].research_id), active_fields);
    }
    for (size_t i = 0; i < st->n_workers; i++) {
        ctl_pipe_hmget(p, keys_worker(key, prefix, st->workers[i].worker_id), worker_fields);
    }
    if (st->has_last) {
        ctl_pipe_hmget(p, keys_research(key, prefix, st->last.research_id), finished_fields);
    }
}

static enum rc_rc
check_second(const struct ctl_pipe *p, const struct redislink_reply *r, struct rc_err *err)
{
    for (size_t i = 0; i < p->n; i++) {
        enum rc_rc rc = ctl_pipe_want_array(&r[i], &p->cmds[i], 1, p->cmds[i].argc - 2, err);
        if (rc != RC_OK) {
            return rc;
        }
    }
    return RC_OK;
}

static void
parse_second(const struct redislink_reply *r, const struct cfg_agent *agent, struct ctl_status *st)
{
    size_t k = 0;
    for (size_t i = 0; i < st->n_active; i++, k++) {
        struct ctl_active *a = &st->active[i];
        const struct redislink_reply *e = r[k].elements;
        for (size_t f = 0; f < r[k].n_elements; f++) {
            a->has_hash = a->has_hash || e[f].type != REDISLINK_NIL;
        }
        a->phase = ctl_pipe_str(&e[0]);
        a->strategy_name = ctl_pipe_str(&e[1]);
        a->phase_started_at_ms = ctl_pipe_int(&e[2], 0);
        a->waiting_since_ms = ctl_pipe_int(&e[3], 0);
        a->worker_id = ctl_pipe_str(&e[4]);
        a->child_status = ctl_pipe_str(&e[5]);
        int64_t since = a->phase_started_at_ms > 0 ? a->phase_started_at_ms : a->created_at_ms;
        a->in_phase_ms = st->now_ms > since ? st->now_ms - since : 0;
    }
    for (size_t i = 0; i < st->n_workers; i++, k++) {
        worker_from_hash(&st->workers[i], &r[k], st->now_ms, agent->worker_timeout_ms);
    }
    if (st->has_last) {
        const struct redislink_reply *e = r[k].elements;
        st->last.status = ctl_pipe_str(&e[0]);
        st->last.last_phase = ctl_pipe_str(&e[1]);
        st->last.verdict = ctl_pipe_str(&e[2]);
        st->last.error = ctl_pipe_str(&e[3]);
    }
}

/* Busy counts, with the coordinator's own record of who holds a dispatch, and the limit. */
static void
derive(const struct cfg_agent *agent, struct ctl_status *st)
{
    for (size_t i = 0; i < st->n_workers; i++) {
        struct ctl_worker *w = &st->workers[i];
        for (size_t a = 0; w->live && !w->busy && a < st->n_active; a++) {
            const struct ctl_active *r = &st->active[a];
            w->busy = r->worker_id != NULL && strcmp(r->worker_id, w->worker_id) == 0 &&
                      r->child_status != NULL && strcmp(r->child_status, CHILD_DISPATCHED) == 0;
        }
        st->per_type[w->type].total += w->live;
        st->per_type[w->type].busy += w->busy;
    }
    st->limit_from_coordinator = st->coordinator.has_limit;
    if (st->coordinator.has_limit) {
        st->limit = st->coordinator.limit;
    } else {
        st->limit = capacity_limit(agent->max_concurrent, st->per_type[WORKER_TRAINING].total,
                                   st->per_type[WORKER_BACKTEST].total, agent->concurrency_buffer);
    }
}

/* Fill st from the checked first-round replies: actives, worker members, budget,
 * coordinator, the last finished id. */
static void
parse_first(const struct redislink_reply *r, const struct cfg_agent *agent, struct ctl_status *st)
{
    const struct redislink_reply *act = &r[R1_ACTIVE];
    st->n_active = act->n_elements / 2;
    st->active = xcalloc(st->n_active > 0 ? st->n_active : 1, sizeof(*st->active));
    for (size_t i = 0; i < st->n_active; i++) {
        st->active[i].research_id = xstrdup(act->elements[2 * i].str);
        st->active[i].created_at_ms = ctl_pipe_int(&act->elements[2 * i + 1], 0);
    }
    st->workers = parse_worker_sets(r, &st->n_workers);
    parse_budget(&r[R1_BUDGET], agent, st->now_ms, &st->budget);
    parse_coordinator(&r[R1_COORDINATOR], &r[R1_LEADER], &r[R1_LEADER_TTL], &st->coordinator);
    const struct redislink_reply *fin = &r[R1_FINISHED];
    st->has_last = fin->n_elements == 2;
    if (st->has_last) {
        st->last.research_id = xstrdup(fin->elements[0].str);
        st->last.finished_at_ms = ctl_pipe_int(&fin->elements[1], 0);
    }
}

enum rc_rc
ctl_read_status(const struct ctl_source *src, const struct cfg_agent *agent, int64_t now_ms,
                struct ctl_status *out, struct rc_err *err)
{
    const char *prefix = src->key_prefix;
    struct ctl_status st = CTL_STATUS_INIT;
    struct ctl_pipe first = CTL_PIPE_INIT;
    struct ctl_pipe second = CTL_PIPE_INIT;
    struct redislink_reply *r1 = NULL;
    struct redislink_reply *r2 = NULL;
    struct buf key = BUF_INIT;
    char day[11];

    st.now_ms = now_ms;
    clock_utc_day(now_ms, day);
    plan_worker_sets(&first, prefix, &key);
    ctl_pipe_zset(&first, keys_active(&key, prefix), false);
    const char *budget[] = {"HGETALL", keys_budget(&key, prefix, day)};
    ctl_pipe_add(&first, 2, budget);
    const char *coord[] = {"HGETALL", keys_coordinator(&key, prefix)};
    ctl_pipe_add(&first, 2, coord);
    const char *leader[] = {"GET", keys_leader(&key, prefix)};
    ctl_pipe_add(&first, 2, leader);
    const char *leader_ttl[] = {"PTTL", keys_leader(&key, prefix)};
    ctl_pipe_add(&first, 2, leader_ttl);
    ctl_pipe_zset(&first, keys_finished(&key, prefix), true);
    RC_ASSERT(first.n == R1_COUNT);

    enum rc_rc rc = run_pipe(src, &first, &r1, err);
    if (rc == RC_OK) {
        rc = check_first(&first, r1, err);
    }
    if (rc != RC_OK) {
        goto out;
    }
    parse_first(r1, agent, &st);
    plan_second(&second, prefix, &st, &key);
    if (second.n > 0) {
        rc = run_pipe(src, &second, &r2, err);
        if (rc == RC_OK) {
            rc = check_second(&second, r2, err);
        }
        if (rc != RC_OK) {
            goto out;
        }
        parse_second(r2, agent, &st);
    }
    derive(agent, &st);
    *out = st;
    st = (struct ctl_status)CTL_STATUS_INIT;
out:
    ctl_status_release(&st);
    redislink_replies_free(r2, second.n);
    redislink_replies_free(r1, first.n);
    ctl_pipe_release(&second);
    ctl_pipe_release(&first);
    buf_release(&key);
    return rc;
}

/* ---- workers ------------------------------------------------------------------------------ */

void
ctl_workers_release(struct ctl_workers *w)
{
    worker_array_free(w->v, w->n);
    *w = (struct ctl_workers)CTL_WORKERS_INIT;
}

enum rc_rc
ctl_read_workers(const struct ctl_source *src, const struct cfg_agent *agent, int64_t now_ms,
                 struct ctl_workers *out, struct rc_err *err)
{
    struct ctl_workers w = {now_ms, NULL, 0};
    struct ctl_pipe first = CTL_PIPE_INIT;
    struct ctl_pipe second = CTL_PIPE_INIT;
    struct redislink_reply *r1 = NULL;
    struct redislink_reply *r2 = NULL;
    struct buf key = BUF_INIT;

    plan_worker_sets(&first, src->key_prefix, &key);
    enum rc_rc rc = run_pipe(src, &first, &r1, err);
    if (rc == RC_OK) {
        rc = check_worker_sets(&first, r1, err);
    }
    if (rc != RC_OK) {
        goto out;
    }
    w.v = parse_worker_sets(r1, &w.n);
    for (size_t i = 0; i < w.n; i++) {
        ctl_pipe_hmget(&second, keys_worker(&key, src->key_prefix, w.v[i].worker_id),
                       worker_fields);
    }
    if (second.n > 0) {
        rc = run_pipe(src, &second, &r2, err);
        if (rc == RC_OK) {
            rc = check_second(&second, r2, err);
        }
        if (rc != RC_OK) {
            goto out;
        }
    }
    for (size_t i = 0; i < w.n; i++) {
        worker_from_hash(&w.v[i], &r2[i], now_ms, agent->worker_timeout_ms);
    }
    *out = w;
    w = (struct ctl_workers)CTL_WORKERS_INIT;
out:
    ctl_workers_release(&w);
    redislink_replies_free(r2, second.n);
    redislink_replies_free(r1, first.n);
    ctl_pipe_release(&second);
    ctl_pipe_release(&first);
    buf_release(&key);
    return rc;
}

/* ---- one research ------------------------------------------------------------------------- */

void
ctl_research_release(struct ctl_research *r)
{
    for (size_t i = 0; i < r->n; i++) {
        free(r->names[i]);
        free(r->values[i]);
    }
    free(r->names);
    free(r->values);
    *r = (struct ctl_research)CTL_RESEARCH_INIT;
}

const char *
ctl_research_get(const struct ctl_research *r, const char *name)
{
    for (size_t i = 0; i < r->n; i++) {
        if (strcmp(r->names[i], name) == 0) {
            return r->values[i];
        }
    }
    return NULL;
}

const char *
ctl_research_field(const struct ctl_research *r, enum research_field f)
{
    return ctl_research_get(r, research_field_name(f));
}

/* Order of field indexes by name, for the sort below. */
static int
by_name(const void *a, const void *b)
{
    const char *const *x = a;
    const char *const *y = b;
    return strcmp(*x, *y);
}

enum rc_rc
ctl_read_research(const struct ctl_source *src, const char *research_id, struct ctl_research *out,
                  struct rc_err *err)
{
    struct ctl_pipe p = CTL_PIPE_INIT;
    struct redislink_reply *r = NULL;
    struct buf key = BUF_INIT;
    struct ctl_research res = CTL_RESEARCH_INIT;

    const char *getall[] = {"HGETALL", keys_research(&key, src->key_prefix, research_id)};
    ctl_pipe_add(&p, 2, getall);
    const char *pttl[] = {"PTTL", key.data};
    ctl_pipe_add(&p, 2, pttl);
    enum rc_rc rc = run_pipe(src, &p, &r, err);
    if (rc == RC_OK) {
        rc = ctl_pipe_want_array(&r[0], &p.cmds[0], 2, 0, err);
    }
    for (size_t i = 0; rc == RC_OK && i < r[0].n_elements; i++) {
        if (r[0].elements[i].type != REDISLINK_STR) {
            rc = ctl_pipe_bad_reply(&p.cmds[0], err);
        }
    }
    if (rc == RC_OK && r[0].n_elements == 0) {
        rc = rc_err_set(err, RC_ENOTFOUND, "no research %s", research_id);
    }
    if (rc != RC_OK) {
        goto out;
    }
    /* Sort "name\0value" pairs by name: pair the strings, sort the pairs. */
    size_t n = r[0].n_elements / 2;
    char **pairs = xcalloc(n, sizeof(*pairs));
    for (size_t i = 0; i < n; i++) {
        const struct redislink_reply *name = &r[0].elements[2 * i];
        const struct redislink_reply *value = &r[0].elements[2 * i + 1];
        pairs[i] = xmalloc(name->len + value->len + 2);
        memcpy(pairs[i], name->str, name->len + 1);
        memcpy(pairs[i] + name->len + 1, value->str, value->len + 1);
    }
    qsort(pairs, n, sizeof(*pairs), by_name);
    res.names = xcalloc(n, sizeof(*res.names));
    res.values = xcalloc(n, sizeof(*res.values));
    for (size_t i = 0; i < n; i++) {
        res.names[i] = xstrdup(pairs[i]);
        res.values[i] = xstrdup(pairs[i] + strlen(pairs[i]) + 1);
        free(pairs[i]);
    }
    free(pairs);
    res.n = n;
    res.ttl_ms = r[1].type == REDISLINK_INT && r[1].integer >= 0 ? r[1].integer : -1;
    *out = res;
    res = (struct ctl_research)CTL_RESEARCH_INIT;
out:
    ctl_research_release(&res);
    redislink_replies_free(r, p.n);
    ctl_pipe_release(&p);
    buf_release(&key);
    return rc;
}
