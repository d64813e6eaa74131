/* SPDX-License-Identifier: MIT
 * ctl_list: the list command. rc:active is scored by created_at, rc:finished by finished_at
 * (>= created_at): paging rc:finished down to score F, every research not yet read was
 * created before F, so once `limit` rows created at or after F are held, no unread one can
 * be newer than them and reading stops. */
#include "tools/researchctl/ctl_list.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "common/cfg.h"
#include "common/clock.h"
#include "common/redislink.h"
#include "common/xalloc.h"
#include "contract/fields.h"
#include "contract/keys.h"
#include "contract/phase.h"
#include "tools/researchctl/ctl_bulk.h"
#include "tools/researchctl/ctl_cmd.h"
#include "tools/researchctl/ctl_fmt.h"
#include "tools/researchctl/ctl_json.h"
#include "tools/researchctl/ctl_pipe.h"
#include "tools/researchctl/ctl_read.h"
#include "tools/researchctl/ctl_when.h"

#define PAGE 200
#define LIMIT_MAX 100000

static bool
same(const char *want, const char *have)
{
    return want == NULL || (have != NULL && strcmp(want, have) == 0);
}

bool
ctl_list_matches(const struct ctl_list_filter *f, const struct ctl_list_row *r)
{
    return same(f->status, r->status) && same(f->phase, r->phase) && same(f->verdict, r->verdict) &&
           (f->since_ms <= 0 || r->created_at_ms >= f->since_ms);
}

static void
row_release(struct ctl_list_row *r)
{
    free(r->research_id);
    free(r->status);
    free(r->phase);
    free(r->strategy_name);
    free(r->verdict);
}

void
ctl_list_release(struct ctl_list *l)
{
    for (size_t i = 0; i < l->n; i++) {
        row_release(&l->v[i]);
    }
    free(l->v);
    *l = (struct ctl_list)CTL_LIST_INIT;
}

/* ---- reading ------------------------------------------------------------------------------- */

enum { F_STATUS, F_PHASE, F_LAST_PHASE, F_STRATEGY, F_VERDICT, F_CREATED, F_FINISHED, F_COST };

/* The fields a row reads, in the order of the enum above. */
static const enum research_field row_field_ids[] = {RF_STATUS,        RF_PHASE,   RF_LAST_PHASE,
                                                    RF_STRATEGY_NAME, RF_VERDICT, RF_CREATED_AT,
                                                    RF_FINISHED_AT,   RF_COST_USD};

/* A row from its HMGET reply (checked); false when the hash is gone. */
static bool
row_from(const char *id, const struct redislink_reply *r, struct ctl_list_row *out)
{
    const struct redislink_reply *e = r->elements;
    bool any = false;
    for (size_t i = 0; i < r->n_elements; i++) {
        any = any || e[i].type != REDISLINK_NIL;
    }
    if (!any) {
        return false;
    }
    memset(out, 0, sizeof(*out));
    out->research_id = xstrdup(id);
    out->status = ctl_pipe_str(&e[F_STATUS]);
    bool running = out->status == NULL || strcmp(out->status, STATUS_RUNNING) == 0;
    out->phase = ctl_pipe_str(&e[running ? F_PHASE : F_LAST_PHASE]);
    out->strategy_name = ctl_pipe_str(&e[F_STRATEGY]);
    out->verdict = ctl_pipe_str(&e[F_VERDICT]);
    out->created_at_ms = ctl_pipe_int(&e[F_CREATED], 0);
    out->finished_at_ms = running ? 0 : ctl_pipe_int(&e[F_FINISHED], 0);
    char *cost = ctl_pipe_str(&e[F_COST]);
    out->has_cost = cost != NULL && ctl_fmt_parse_num(cost, &out->cost_usd);
    free(cost);
    return true;
}

/* Rows being gathered. */
struct gather {
    struct ctl_list_row *v;
    size_t n, cap;
};

static void
gather_add(struct gather *g, const struct ctl_list_row *r)
{
    if (g->n == g->cap) {
        g->cap = g->cap > 0 ? g->cap * 2 : 64;
        g->v = xrealloc(g->v, g->cap * sizeof(*g->v));
    }
    g->v[g->n++] = *r;
}

/* How many gathered rows were created at or after ms. */
static size_t
count_since(const struct gather *g, int64_t ms)
{
    size_t n = 0;
    for (size_t i = 0; i < g->n; i++) {
        n += g->v[i].created_at_ms >= ms;
    }
    return n;
}

/* One page of `key` (newest score first, scores >= min): its members and their rows, matching
 * ones gathered. *n_read: members on the page; *floor: the last score. */
static enum rc_rc
read_page(const struct ctl_source *src, const char *key, const char *min, size_t offset,
          const struct ctl_list_filter *f, struct gather *g, size_t *n_read, int64_t *floor,
          struct rc_err *err)
{
    char off[32], count[32];
    snprintf(off, sizeof(off), "%zu", offset);
    snprintf(count, sizeof(count), "%d", PAGE);
    struct ctl_pipe p1 = CTL_PIPE_INIT, p2 = CTL_PIPE_INIT;
    struct redislink_reply *r1 = NULL, *r2 = NULL;
    struct buf k = BUF_INIT;
    const char *words[] = {"ZREVRANGEBYSCORE", key, "+inf", min, "WITHSCORES", "LIMIT", off, count};
    ctl_pipe_add(&p1, N_OF(words), words);
    enum rc_rc rc = src->query(src->ctx, p1.cmds, p1.n, &r1, err);
    if (rc == RC_OK) {
        rc = ctl_pipe_want_zset(&r1[0], &p1.cmds[0], err);
    }
    if (rc != RC_OK) {
        goto out;
    }
    const size_t n = r1[0].n_elements / 2;
    const char *row_fields[N_OF(row_field_ids) + 1] = {NULL};
    for (size_t i = 0; i < N_OF(row_field_ids); i++) {
        row_fields[i] = research_field_name(row_field_ids[i]);
    }
    for (size_t i = 0; i < n; i++) {
        ctl_pipe_hmget(&p2, keys_research(&k, src->key_prefix, r1[0].elements[2 * i].str),
                       row_fields);
    }
    if (n > 0) {
        rc = src->query(src->ctx, p2.cmds, p2.n, &r2, err);
        for (size_t i = 0; rc == RC_OK && i < n; i++) {
            rc = ctl_pipe_want_array(&r2[i], &p2.cmds[i], 1, N_OF(row_fields) - 1, err);
        }
    }
    for (size_t i = 0; rc == RC_OK && i < n; i++) {
        struct ctl_list_row row;
        if (row_from(r1[0].elements[2 * i].str, &r2[i], &row)) {
            if (ctl_list_matches(f, &row)) {
                gather_add(g, &row);
            } else {
                row_release(&row);
            }
        }
    }
    if (rc == RC_OK) {
        *n_read = n;
        *floor = n > 0 ? ctl_pipe_int(&r1[0].elements[2 * n - 1], 0) : 0;
    }
out:
    redislink_replies_free(r2, r2 != NULL ? p2.n : 0);
    redislink_replies_free(r1, r1 != NULL ? p1.n : 0);
    ctl_pipe_release(&p2);
    ctl_pipe_release(&p1);
    buf_release(&k);
    return rc;
}

/* Page through one set until it is exhausted or the rows held are the newest. */
static enum rc_rc
read_set(const struct ctl_source *src, const char *key, bool scored_by_created,
         const struct ctl_list_filter *f, struct gather *g, size_t *pages, struct rc_err *err)
{
    char min[32] = "-inf";
    if (f->since_ms > 0) {
        snprintf(min, sizeof(min), "%" PRId64, f->since_ms);
    }
    const size_t before = g->n;
    for (size_t offset = 0;; offset += PAGE) {
        size_t n = 0;
        int64_t floor = 0;
        enum rc_rc rc = read_page(src, key, min, offset, f, g, &n, &floor, err);
        if (rc != RC_OK) {
            return rc;
        }
        (*pages)++;
        bool enough =
            scored_by_created ? g->n - before >= f->limit : count_since(g, floor) >= f->limit;
        if (n < PAGE || enough) {
            return RC_OK;
        }
    }
}

static int
newest_first(const void *a, const void *b)
{
    const struct ctl_list_row *x = a, *y = b;
    if (x->created_at_ms != y->created_at_ms) {
        return x->created_at_ms > y->created_at_ms ? -1 : 1;
    }
    return strcmp(x->research_id, y->research_id);
}

enum rc_rc
ctl_list_read(const struct ctl_source *src, const struct ctl_list_filter *f, int64_t now_ms,
              struct ctl_list *out, struct rc_err *err)
{
    struct gather g = {NULL, 0, 0};
    struct buf key = BUF_INIT;
    size_t pages = 0;
    enum rc_rc rc = RC_OK;
    bool running_only = f->status != NULL && strcmp(f->status, STATUS_RUNNING) == 0;
    bool finished_only = f->status != NULL && !running_only;

    if (!finished_only) {
        rc = read_set(src, keys_active(&key, src->key_prefix), true, f, &g, &pages, err);
    }
    if (rc == RC_OK && !running_only) {
        rc = read_set(src, keys_finished(&key, src->key_prefix), false, f, &g, &pages, err);
    }
    if (rc == RC_OK) {
        if (g.n > 1) {
            qsort(g.v, g.n, sizeof(*g.v), newest_first);
        }
        while (g.n > f->limit) {
            row_release(&g.v[--g.n]);
        }
        *out = (struct ctl_list){now_ms, g.v, g.n, pages};
        g.v = NULL;
        g.n = 0;
    }
    for (size_t i = 0; i < g.n; i++) {
        row_release(&g.v[i]);
    }
    free(g.v);
    buf_release(&key);
    return rc;
}

/* ---- rendering ----------------------------------------------------------------------------- */

static int64_t
duration_ms(const struct ctl_list *l, const struct ctl_list_row *r)
{
    int64_t end = r->finished_at_ms > 0 ? r->finished_at_ms : l->now_ms;
    return r->created_at_ms > 0 && end > r->created_at_ms ? end - r->created_at_ms : 0;
}

void
ctl_list_text(const struct ctl_list *l, struct buf *out)
{
    if (l->n == 0) {
        buf_puts(out, "No researches match.\n");
        return;
    }
    size_t id_w = strlen("RESEARCH"), st_w = strlen("cancelled"), strat_w = strlen("STRATEGY");
    size_t verdict_w = strlen("VERDICT");
    for (size_t i = 0; i < l->n; i++) {
        id_w = ctl_fmt_text_len(l->v[i].research_id) > id_w ? ctl_fmt_text_len(l->v[i].research_id)
                                                            : id_w;
        size_t s = ctl_fmt_text_len(l->v[i].strategy_name);
        strat_w = s > strat_w ? s : strat_w;
        size_t v = ctl_fmt_text_len(l->v[i].verdict);
        verdict_w = v > verdict_w ? v : verdict_w;
    }
    buf_printf(out, "%-*s  %-*s  %-11s  %-*s  %-*s  %-7s  %-8s  %s\n", (int)id_w, "RESEARCH",
               (int)st_w, "STATUS", "PHASE", (int)strat_w, "STRATEGY", (int)verdict_w, "VERDICT",
               "AGE", "DURATION", "COST");
    for (size_t i = 0; i < l->n; i++) {
        const struct ctl_list_row *r = &l->v[i];
        char age[CTL_FMT_MAX] = "-", dur[CTL_FMT_MAX], cost[CTL_FMT_MAX] = "-";
        if (r->created_at_ms > 0) {
            ctl_fmt_duration(l->now_ms - r->created_at_ms, age);
        }
        ctl_fmt_duration(duration_ms(l, r), dur);
        if (r->has_cost) {
            ctl_fmt_money(r->cost_usd, cost);
        }
        ctl_fmt_cell(out, r->research_id, id_w);
        buf_puts(out, "  ");
        ctl_fmt_cell(out, r->status, st_w);
        buf_puts(out, "  ");
        ctl_fmt_cell(out, r->phase, 11);
        buf_puts(out, "  ");
        ctl_fmt_cell(out, r->strategy_name, strat_w);
        buf_puts(out, "  ");
        ctl_fmt_cell(out, r->verdict, verdict_w);
        buf_printf(out, "  %-7s  %-8s  %s\n", age, dur, cost);
    }
}

static void
json_ms(struct ctl_json *j, const char *key, int64_t ms)
{
    ctl_json_key(j, key);
    if (ms > 0) {
        ctl_json_int(j, ms);
    } else {
        ctl_json_null(j);
    }
}

void
ctl_list_json(const struct ctl_list *l, struct buf *out)
{
    struct ctl_json *j = ctl_json_new(out);
    ctl_json_object_begin(j);
    ctl_json_kint(j, "now", l->now_ms);
    ctl_json_key(j, "researches");
    ctl_json_array_begin(j);
    for (size_t i = 0; i < l->n; i++) {
        const struct ctl_list_row *r = &l->v[i];
        ctl_json_object_begin(j);
        ctl_json_kstr(j, "research_id", r->research_id);
        ctl_json_kstr(j, "status", r->status);
        ctl_json_kstr(j, "phase", r->phase);
        ctl_json_kstr(j, "strategy_name", r->strategy_name);
        ctl_json_kstr(j, "verdict", r->verdict);
        json_ms(j, "created_at", r->created_at_ms);
        json_ms(j, "finished_at", r->finished_at_ms);
        ctl_json_key(j, "age_ms");
        if (r->created_at_ms > 0) {
            ctl_json_int(j, l->now_ms > r->created_at_ms ? l->now_ms - r->created_at_ms : 0);
        } else {
            ctl_json_null(j);
        }
        ctl_json_kint(j, "duration_ms", duration_ms(l, r));
        ctl_json_key(j, "cost_usd");
        if (r->has_cost) {
            ctl_json_num(j, r->cost_usd);
        } else {
            ctl_json_null(j);
        }
        ctl_json_object_end(j);
    }
    ctl_json_array_end(j);
    ctl_json_object_end(j);
    ctl_json_free(j);
    buf_putc(out, '\n');
}

/* ---- the command ---------------------------------------------------------------------------- */

enum list_opt { L_STATUS, L_PHASE, L_VERDICT, L_SINCE, L_LIMIT, L_JSON, L_HELP };

static const struct toolopt list_table[] = {
    [L_STATUS] = {"status", "S", "running, completed, failed or cancelled"},
    [L_PHASE] =
        {"phase", "P",
         "pending, designing, training, backtesting or assessing (the phase while running, the "
         "last phase once finished)"},
    [L_VERDICT] = {"verdict", "V", "the assessment's verdict, exactly (promising, ...)"},
    [L_SINCE] = {"since", "D|TIME",
                 "created at most D ago (30s, 15m, 2h, 7d) or since a UTC time "
                 "(2026-12-01T10:00:00Z, 2026-12-01)"},
    [L_LIMIT] = {"limit", "N", "at most N researches, newest first (default 50)"},
    [L_JSON] = {"json", NULL,
                "one JSON object: now, researches[] (research_id, status, phase, strategy_name, "
                "verdict, created_at, finished_at, age_ms, duration_ms, cost_usd)"},
    [L_HELP] = {"help", NULL, "show this help"},
};

static enum rc_rc
status_word(const char *arg, const char **out, struct rc_err *err)
{
    static const char *const words[] = {STATUS_RUNNING, "completed", "failed", "cancelled"};
    for (size_t i = 0; i < N_OF(words); i++) {
        if (strcmp(arg, words[i]) == 0) {
            *out = arg;
            return RC_OK;
        }
    }
    return rc_err_set(err, RC_EINVAL,
                      "--status: '%s' is not one of running, completed, failed, cancelled", arg);
}

static enum rc_rc
list_opt(void *ctx, size_t index, const char *arg, struct rc_err *err)
{
    struct ctl_opts *o = ctx;
    switch ((enum list_opt)index) {
    case L_STATUS:
        return status_word(arg, &o->status, err);
    case L_PHASE:
        return ctl_bulk_phase_opt(arg, &o->phase, err);
    case L_VERDICT:
        if (arg[0] == '\0' || strlen(arg) > 4096) {
            return rc_err_set(err, RC_EINVAL, "--verdict: must be 1-4096 bytes");
        }
        o->verdict = arg;
        break;
    case L_SINCE:
        o->has_since = true;
        return ctl_when_since(arg, clock_now_ms(), "--since", &o->since_ms, err);
    case L_LIMIT:
        return toolopt_int64(arg, 1, LIMIT_MAX, "--limit", &o->limit, err);
    case L_JSON:
        o->json = true;
        break;
    case L_HELP:
        o->help = true;
        break;
    }
    return RC_OK;
}

static int
run_list(const struct cfg *cfg, struct ctl_opts *o)
{
    struct redislink *rl = redislink_new(&cfg->redis);
    const struct ctl_source src = ctl_source_redis(rl, cfg->redis.key_prefix);
    const struct ctl_list_filter f = {o->status, o->phase, o->verdict,
                                      o->has_since ? o->since_ms : 0, (size_t)o->limit};
    struct ctl_list l = CTL_LIST_INIT;
    struct rc_err err = RC_ERR_INIT;
    struct buf b = BUF_INIT;
    int status = RC_EXIT_OK;
    enum rc_rc rc = ctl_list_read(&src, &f, clock_now_ms(), &l, &err);
    if (rc != RC_OK) {
        status = ctl_cmd_fail(rc, &err);
    } else {
        if (o->json) {
            ctl_list_json(&l, &b);
        } else {
            ctl_list_text(&l, &b);
        }
        ctl_cmd_emit(&b);
    }
    ctl_list_release(&l);
    buf_release(&b);
    redislink_free(rl);
    return status;
}

static const struct ctl_command list_command = {
    "list",
    CTL_CMD_TOOL " list",
    "active and finished researches, newest first, filtered",
    "Active and finished researches (those still within RESEARCH_RETENTION), newest first by\n"
    "creation: id, status, phase (the last phase once finished), strategy, verdict, age,\n"
    "duration and cost. The filters combine (all must hold). A bad filter value is a usage\n"
    "error (exit 64).",
    list_table,
    N_OF(list_table),
    list_opt,
    CTL_ID_NONE,
    NULL,
    run_list,
};

const struct ctl_command *
ctl_list_command(void)
{
    return &list_command;
}
