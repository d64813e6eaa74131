/* SPDX-License-Identifier: MIT
 * ctl_summary: follow's status line and summary. Values from Redis go through ctl_fmt_text. */
#include "tools/researchctl/ctl_summary.h"

#include <stdio.h>
#include <string.h>

#include "common/buf.h"
#include "contract/fields.h"
#include "tools/researchctl/ctl_fmt.h"
#include "tools/researchctl/ctl_read.h"
#include "tools/researchctl/ctl_timeline.h"

#define BAR_WIDTH 10
#define LABEL_WIDTH 16 /* "gate rejection" and a margin */

void
ctl_summary_line(const struct ctl_summary_view *v, bool with_elapsed, struct buf *out)
{
    ctl_fmt_text(out, v->research_id);
    buf_puts(out, "  ");
    ctl_fmt_text(out, v->phase);
    if (v->attempt != NULL) {
        buf_puts(out, "  attempt ");
        ctl_fmt_text(out, v->attempt);
    }
    if (v->waiting) {
        buf_puts(out, "  waiting for a worker");
    } else if (v->worker_id != NULL) {
        buf_puts(out, "  worker ");
        ctl_fmt_text(out, v->worker_id);
    }
    if (v->has_progress) {
        int filled = (int)(v->progress * BAR_WIDTH + 0.5);
        buf_puts(out, "  [");
        for (int i = 0; i < BAR_WIDTH; i++) {
            buf_putc(out, i < filled ? '#' : ' ');
        }
        buf_printf(out, "] %.0f%%", v->progress * 100);
    }
    if (v->step != NULL) {
        buf_puts(out, "  ");
        ctl_fmt_text(out, v->step);
    }
    if (with_elapsed) {
        char e[CTL_FMT_MAX];
        ctl_fmt_duration(v->elapsed_ms, e);
        buf_printf(out, "  elapsed %s", e);
    }
}

/* "  label           value\n", the value escaped (NULL: -). */
static void
row(struct buf *out, const char *label, const char *value)
{
    buf_printf(out, "  %-*s", LABEL_WIDTH, label);
    ctl_fmt_text(out, value);
    buf_putc(out, '\n');
}

static bool
num(const struct ctl_research *r, const char *field, double *out)
{
    const char *v = ctl_research_get(r, field);
    return v != NULL && ctl_fmt_parse_num(v, out);
}

static int64_t
ms_field(const struct ctl_research *r, const char *field)
{
    const char *v = ctl_research_get(r, field);
    int64_t ms = 0;
    return v != NULL && ctl_fmt_parse_int(v, &ms) && ms > 0 ? ms : 0;
}

/* "sharpe 1.40, win rate 55.0%, max drawdown 12.0%", each part only when present. */
static void
backtest_row(const struct ctl_research *r, struct buf *out)
{
    double sharpe = 0, win = 0, dd = 0;
    bool has_sharpe = num(r, "backtest.sharpe_ratio", &sharpe);
    bool has_win = num(r, "backtest.win_rate", &win);
    bool has_dd = num(r, "backtest.max_drawdown", &dd);
    if (!has_sharpe && !has_win && !has_dd) {
        row(out, "backtest", NULL);
        return;
    }
    struct buf b = BUF_INIT;
    if (has_sharpe) {
        buf_printf(&b, "sharpe %.2f", sharpe);
    }
    if (has_win) {
        buf_printf(&b, "%swin rate %.1f%%", b.len > 0 ? ", " : "", win * 100);
    }
    if (has_dd) {
        buf_printf(&b, "%smax drawdown %.1f%%", b.len > 0 ? ", " : "", dd * 100);
    }
    row(out, "backtest", b.data);
    buf_release(&b);
}

static void
phases_row(const struct ctl_research *r, int64_t now_ms, struct buf *out)
{
    struct ctl_timeline t;
    ctl_timeline_read(r, &t);
    struct buf b = BUF_INIT;
    for (size_t i = 0; i < CTL_TIMELINE_PHASES; i++) {
        int64_t ms = 0;
        if (ctl_timeline_duration(&t, &t.p[i], now_ms, &ms)) {
            char d[CTL_FMT_MAX];
            ctl_fmt_age(ms, d); /* phases of seconds read "1.2 s", not "0m 01s" */
            buf_printf(&b, "%s%s %s", b.len > 0 ? ", " : "", phase_name(t.p[i].phase), d);
        }
    }
    row(out, "phases", b.len > 0 ? b.data : "not recorded");
    buf_release(&b);
}

void
ctl_summary_text(const struct ctl_research *r, int64_t now_ms, struct buf *out)
{
    const char *status = ctl_research_field(r, RF_STATUS);
    buf_puts(out, "Research ");
    ctl_fmt_text(out, ctl_research_field(r, RF_RESEARCH_ID));
    buf_puts(out, " ");
    ctl_fmt_text(out, status);
    buf_putc(out, '\n');
    row(out, "strategy", ctl_research_field(r, RF_STRATEGY_NAME));
    row(out, "verdict", ctl_research_field(r, RF_VERDICT));
    row(out, "gate rejection", ctl_research_field(r, RF_GATE_REJECTION_REASON));
    if (status == NULL || strcmp(status, "completed") != 0) {
        row(out, "error", ctl_research_field(r, RF_ERROR));
        row(out, "stopped in", ctl_research_field(r, RF_LAST_PHASE));
    }
    backtest_row(r, out);
    double cost = 0;
    char text[CTL_FMT_MAX];
    ctl_fmt_money(num(r, "cost_usd", &cost) ? cost : 0, text);
    row(out, "cost", text);
    int64_t created = ms_field(r, "created_at");
    int64_t finished = ms_field(r, "finished_at");
    if (created > 0 && finished > 0) {
        ctl_fmt_age(finished - created, text);
        row(out, "duration", text);
    } else {
        row(out, "duration", NULL);
    }
    phases_row(r, now_ms, out);
}
