/* SPDX-License-Identifier: MIT
 * ctl_budget: the budget command. */
#include "tools/researchctl/ctl_budget.h"

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
#include "tools/researchctl/ctl_cmd.h"
#include "tools/researchctl/ctl_fmt.h"
#include "tools/researchctl/ctl_json.h"
#include "tools/researchctl/ctl_pipe.h"
#include "tools/researchctl/ctl_read.h"

#define MS_PER_DAY INT64_C(86400000)
#define DAYS_MAX 366

void
ctl_budget_report_release(struct ctl_budget_report *b)
{
    for (size_t i = 0; i < b->n_charges; i++) {
        free(b->charges[i].research_id);
    }
    free(b->charges);
    free(b->days);
    *b = (struct ctl_budget_report)CTL_BUDGET_REPORT_INIT;
}

static int
largest_first(const void *a, const void *b)
{
    const struct ctl_budget_charge *x = a, *y = b;
    if (x->cost_usd != y->cost_usd) {
        return x->cost_usd > y->cost_usd ? -1 : 1;
    }
    return strcmp(x->research_id, y->research_id);
}

static void
parse_charges(const struct redislink_reply *r, struct ctl_budget_report *b)
{
    b->has_charges = r->n_elements > 0;
    b->charges = xcalloc(r->n_elements / 2 + 1, sizeof(*b->charges));
    for (size_t i = 0; i + 1 < r->n_elements; i += 2) {
        double usd = 0;
        if (r->elements[i].type != REDISLINK_STR || r->elements[i + 1].type != REDISLINK_STR ||
            !ctl_fmt_parse_num(r->elements[i + 1].str, &usd)) {
            continue; /* shown only: an unreadable entry is left out */
        }
        b->charges[b->n_charges++] = (struct ctl_budget_charge){xstrdup(r->elements[i].str), usd};
    }
    qsort(b->charges, b->n_charges, sizeof(*b->charges), largest_first);
}

enum rc_rc
ctl_budget_read(const struct ctl_source *src, const struct cfg_agent *agent, int64_t now_ms,
                size_t n_days, struct ctl_budget_report *out, struct rc_err *err)
{
    struct ctl_budget_report b = CTL_BUDGET_REPORT_INIT;
    struct ctl_pipe p = CTL_PIPE_INIT;
    struct redislink_reply *r = NULL;
    struct buf key = BUF_INIT;

    b.now_ms = now_ms;
    b.n_days = n_days;
    b.days = xcalloc(n_days, sizeof(*b.days));
    for (size_t i = 0; i < n_days; i++) {
        clock_utc_day(now_ms - (int64_t)i * MS_PER_DAY, b.days[i].day);
        const char *words[] = {"HGETALL", keys_budget(&key, src->key_prefix, b.days[i].day)};
        ctl_pipe_add(&p, 2, words);
    }
    keys_budget_charges(&key, src->key_prefix, b.days[0].day);
    const char *charges[] = {"HGETALL", key.data};
    ctl_pipe_add(&p, 2, charges);
    enum rc_rc rc = src->query(src->ctx, p.cmds, p.n, &r, err);
    for (size_t i = 0; rc == RC_OK && i < p.n; i++) {
        rc = ctl_pipe_want_array(&r[i], &p.cmds[i], 2, 0, err);
    }
    if (rc != RC_OK) {
        goto out;
    }
    for (size_t i = 0; i < n_days; i++) {
        struct ctl_budget_day *d = &b.days[i];
        d->stored = r[i].n_elements > 0;
        if (!ctl_pipe_field_num(&r[i], BUDGET_SPENT_USD, &d->spent_usd)) {
            d->spent_usd = 0;
        }
        d->has_limit = ctl_pipe_field_num(&r[i], BUDGET_DAILY_LIMIT_USD, &d->daily_limit_usd);
        if (!d->has_limit && i == 0) {
            d->has_limit = true;
            d->daily_limit_usd = agent->daily_budget_usd;
        }
    }
    parse_charges(&r[n_days], &b);
    *out = b;
    b = (struct ctl_budget_report)CTL_BUDGET_REPORT_INIT;
out:
    ctl_budget_report_release(&b);
    redislink_replies_free(r, r != NULL ? p.n : 0);
    ctl_pipe_release(&p);
    buf_release(&key);
    return rc;
}

/* A limit for people: "$20.00", "none" (0 = no limit) or "-" (unknown). */
static void
limit_text(const struct ctl_budget_day *d, char out[CTL_FMT_MAX])
{
    if (!d->has_limit) {
        snprintf(out, CTL_FMT_MAX, "-");
    } else if (d->daily_limit_usd <= 0) {
        snprintf(out, CTL_FMT_MAX, "none");
    } else {
        ctl_fmt_money(d->daily_limit_usd, out);
    }
}

void
ctl_budget_text(const struct ctl_budget_report *b, struct buf *out)
{
    const struct ctl_budget_day *today = &b->days[0];
    char spent[CTL_FMT_MAX], limit[CTL_FMT_MAX], left[CTL_FMT_MAX];
    ctl_fmt_money(today->spent_usd, spent);
    limit_text(today, limit);
    buf_printf(out, "Today (%s UTC): %s spent", today->day, spent);
    if (today->daily_limit_usd > 0) {
        ctl_fmt_money(today->daily_limit_usd - today->spent_usd, left);
        buf_printf(out, " of %s, %s remaining\n", limit, left);
    } else {
        buf_puts(out, ", no daily limit\n");
    }
    buf_puts(out, "\nCharged today:");
    if (b->n_charges == 0) {
        buf_puts(out, " none\n");
    } else {
        buf_putc(out, '\n');
        for (size_t i = 0; i < b->n_charges; i++) {
            char usd[CTL_FMT_MAX];
            ctl_fmt_money(b->charges[i].cost_usd, usd);
            buf_puts(out, "  ");
            ctl_fmt_cell(out, b->charges[i].research_id, 30);
            buf_printf(out, "  %s\n", usd);
        }
    }
    buf_printf(out, "\nLast %zu day%s:\n  %-10s  %9s  %9s\n", b->n_days, b->n_days == 1 ? "" : "s",
               "DAY", "SPENT", "LIMIT");
    for (size_t i = 0; i < b->n_days; i++) {
        const struct ctl_budget_day *d = &b->days[i];
        ctl_fmt_money(d->spent_usd, spent);
        limit_text(d, limit);
        buf_printf(out, "  %-10s  %9s  %9s\n", d->day, d->stored || i == 0 ? spent : "-", limit);
    }
}

void
ctl_budget_json(const struct ctl_budget_report *b, struct buf *out)
{
    const struct ctl_budget_day *today = &b->days[0];
    struct ctl_json *j = ctl_json_new(out);
    ctl_json_object_begin(j);
    ctl_json_kstr(j, "day", today->day);
    ctl_json_knum(j, "spent_usd", today->spent_usd);
    ctl_json_knum(j, "daily_limit_usd", today->daily_limit_usd);
    ctl_json_key(j, "remaining_usd");
    if (today->daily_limit_usd > 0) {
        ctl_json_num(j, today->daily_limit_usd - today->spent_usd);
    } else {
        ctl_json_null(j);
    }
    ctl_json_key(j, "charges");
    ctl_json_array_begin(j);
    for (size_t i = 0; i < b->n_charges; i++) {
        ctl_json_object_begin(j);
        ctl_json_kstr(j, "research_id", b->charges[i].research_id);
        ctl_json_knum(j, "cost_usd", b->charges[i].cost_usd);
        ctl_json_object_end(j);
    }
    ctl_json_array_end(j);
    ctl_json_key(j, "days");
    ctl_json_array_begin(j);
    for (size_t i = 0; i < b->n_days; i++) {
        const struct ctl_budget_day *d = &b->days[i];
        ctl_json_object_begin(j);
        ctl_json_kstr(j, "day", d->day);
        ctl_json_kbool(j, "stored", d->stored);
        ctl_json_knum(j, "spent_usd", d->spent_usd);
        ctl_json_key(j, "daily_limit_usd");
        if (d->has_limit) {
            ctl_json_num(j, d->daily_limit_usd);
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

static const struct toolopt budget_table[] = {
    {"days", "N", "how many UTC days the table shows, today included (default 7)"},
    {"json", NULL,
     "one JSON object: day, spent_usd, daily_limit_usd, remaining_usd, charges[], "
     "days[]"},
    {"help", NULL, "show this help"},
};

static enum rc_rc
budget_opt(void *ctx, size_t index, const char *arg, struct rc_err *err)
{
    struct ctl_opts *o = ctx;
    if (index == 0) {
        return toolopt_int64(arg, 1, DAYS_MAX, "--days", &o->days, err);
    }
    if (index == 1) {
        o->json = true;
    } else {
        o->help = true;
    }
    return RC_OK;
}

static int
run_budget(const struct cfg *cfg, struct ctl_opts *o)
{
    struct redislink *rl = redislink_new(&cfg->redis);
    const struct ctl_source src = ctl_source_redis(rl, cfg->redis.key_prefix);
    struct ctl_budget_report b = CTL_BUDGET_REPORT_INIT;
    struct rc_err err = RC_ERR_INIT;
    struct buf out = BUF_INIT;
    int status = RC_EXIT_OK;
    enum rc_rc rc = ctl_budget_read(&src, &cfg->agent, clock_now_ms(), (size_t)o->days, &b, &err);
    if (rc != RC_OK) {
        status = ctl_cmd_fail(rc, &err);
    } else {
        if (o->json) {
            ctl_budget_json(&b, &out);
        } else {
            ctl_budget_text(&b, &out);
        }
        ctl_cmd_emit(&out);
    }
    ctl_budget_report_release(&b);
    buf_release(&out);
    redislink_free(rl);
    return status;
}

static const struct ctl_command budget_command = {
    "budget",
    CTL_CMD_TOOL " budget",
    "today's spend, limit and charges; the last days",
    "Today's spend, daily limit and what remains (rc:budget:<UTC day>; the limit is\n"
    "AGENT_DAILY_BUDGET when nothing was stored yet), the researches charged today with what\n"
    "each cost (largest first; \"none\" when nobody was), and the spend and limit of each of\n"
    "the last --days UTC days (- where nothing was recorded).",
    budget_table,
    N_OF(budget_table),
    budget_opt,
    CTL_ID_NONE,
    NULL,
    run_budget,
};

const struct ctl_command *
ctl_budget_command(void)
{
    return &budget_command;
}
