/* SPDX-License-Identifier: MIT
 * ctl_view: researchctl's output for status and workers (show's is ctl_view_research). The text
 * shapes are what an operator reads (and the integration tests match); the JSON shapes are
 * documented in the header and in `researchctl <command> --help`. Every string read from Redis
 * reaches the text through ctl_fmt_text, ctl_fmt_cell or ctl_fmt_value (control characters
 * escaped), never through a %s. */
#include "tools/researchctl/ctl_view.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "common/xalloc.h"
#include "contract/phase.h"
#include "tools/researchctl/ctl_fmt.h"
#include "tools/researchctl/ctl_json.h"
#include "tools/researchctl/ctl_read.h"

#define PHASE_WIDTH 11    /* "backtesting" */
#define STATE_WIDTH 7     /* the workers column: "unknown" */
#define STRATEGY_WIDTH 17 /* the status column, wider when a name is */

/* The wider of `width` and s as ctl_fmt_text writes it. */
static size_t
max_len(size_t width, const char *s)
{
    size_t n = ctl_fmt_text_len(s);
    return n > width ? n : width;
}

static char *progress_text(const struct ctl_worker *w);

/* The live heartbeat of a's worker when it holds a (its progress and step are a's), or NULL. */
static const struct ctl_worker *
active_worker(const struct ctl_status *st, const struct ctl_active *a)
{
    for (size_t i = 0; a->worker_id != NULL && i < st->n_workers; i++) {
        const struct ctl_worker *w = &st->workers[i];
        if (w->live && strcmp(w->worker_id, a->worker_id) == 0 && w->research_id != NULL &&
            strcmp(w->research_id, a->research_id) == 0) {
            return w;
        }
    }
    return NULL;
}

/* ---- status: text ------------------------------------------------------------------------- */

static void
status_active(const struct ctl_status *st, struct buf *out)
{
    size_t id_w = 0;
    size_t strat_w = STRATEGY_WIDTH;
    for (size_t i = 0; i < st->n_active; i++) {
        id_w = max_len(id_w, st->active[i].research_id);
        strat_w = max_len(strat_w, st->active[i].strategy_name);
    }
    buf_printf(out, "Active researches: %zu\n\n", st->n_active);
    for (size_t i = 0; i < st->n_active; i++) {
        const struct ctl_active *a = &st->active[i];
        char in_phase[CTL_FMT_MAX];
        ctl_fmt_duration(a->in_phase_ms, in_phase);
        buf_puts(out, "  ");
        ctl_fmt_cell(out, a->research_id, id_w);
        buf_puts(out, "  ");
        ctl_fmt_cell(out, a->has_hash ? a->phase : "(gone)", PHASE_WIDTH);
        buf_puts(out, "  strategy: ");
        ctl_fmt_cell(out, a->strategy_name, strat_w);
        buf_printf(out, "  (%s%s", in_phase,
                   a->waiting_since_ms > 0 ? ", waiting for a worker" : "");
        const struct ctl_worker *w = active_worker(st, a);
        char *progress = w != NULL ? progress_text(w) : NULL;
        if (progress != NULL) {
            buf_puts(out, ", ");
            ctl_fmt_text(out, progress);
            free(progress);
        }
        buf_puts(out, ")\n");
    }
}

static void
status_idle(const struct ctl_status *st, struct buf *out)
{
    buf_puts(out, "Active researches: 0 (idle)\n\n");
    if (!st->has_last) {
        buf_puts(out, "  No research has finished yet.\n");
        return;
    }
    const struct ctl_finished *l = &st->last;
    char ago[CTL_FMT_MAX];
    ctl_fmt_duration(st->now_ms - l->finished_at_ms, ago);
    buf_puts(out, "  Last finished: ");
    ctl_fmt_text(out, l->research_id);
    buf_puts(out, "  ");
    ctl_fmt_text(out, l->status);
    if (l->verdict != NULL) {
        buf_puts(out, "  verdict: ");
        ctl_fmt_value(out, l->verdict);
    }
    if (l->error != NULL) {
        buf_puts(out, "  error: ");
        ctl_fmt_value(out, l->error);
    }
    if (l->last_phase != NULL && (l->status == NULL || strcmp(l->status, "completed") != 0)) {
        buf_puts(out, "  in: ");
        ctl_fmt_text(out, l->last_phase);
    }
    buf_printf(out, "  (%s ago)\n", ago);
}

static void
status_coordinator(const struct ctl_coordinator *c, int64_t now_ms, struct buf *out)
{
    char a[CTL_FMT_MAX];
    char b[CTL_FMT_MAX];

    if (!c->seen && !c->leader) {
        buf_puts(out, "Coordinator: never started\n");
        return;
    }
    if (!c->leader) {
        if (c->last_cycle_at_ms > 0) {
            ctl_fmt_duration(now_ms - c->last_cycle_at_ms, a);
            buf_printf(out, "Coordinator: down (no leader; last cycle %s ago)\n", a);
        } else {
            buf_puts(out, "Coordinator: down (no leader; no cycle recorded)\n");
        }
        return;
    }
    buf_puts(out, "Coordinator: up");
    if (c->started_at_ms > 0) {
        ctl_fmt_duration(now_ms - c->started_at_ms, a);
        buf_printf(out, " %s", a);
    }
    if (c->last_cycle_at_ms > 0) {
        ctl_fmt_age(now_ms - c->last_cycle_at_ms, b);
        buf_printf(out, ", last cycle %s ago", b);
        if (c->has_cycle_ms) {
            buf_printf(out, " (%.1f ms)", c->cycle_ms);
        }
    } else {
        buf_puts(out, ", no cycle yet");
    }
    buf_putc(out, '\n');
}

void
ctl_view_status_text(const struct ctl_status *st, struct buf *out)
{
    if (st->n_active > 0) {
        status_active(st, out);
    } else {
        status_idle(st, out);
    }
    buf_puts(out, "\nWorkers:");
    for (int t = 0; t < WORKER_TYPE_COUNT; t++) {
        buf_printf(out, "%s %s %lld/%lld", t > 0 ? "," : "", worker_type_name((enum worker_type)t),
                   (long long)st->per_type[t].busy, (long long)st->per_type[t].total);
    }
    char a[CTL_FMT_MAX];
    char b[CTL_FMT_MAX];
    if (st->budget.daily_limit_usd > 0) {
        ctl_fmt_money(st->budget.remaining_usd, a);
        ctl_fmt_money(st->budget.daily_limit_usd, b);
        buf_printf(out, "\nBudget: %s remaining today (limit %s)\n", a, b);
    } else {
        ctl_fmt_money(st->budget.spent_usd, a);
        buf_printf(out, "\nBudget: no daily limit (%s spent today)\n", a);
    }
    buf_printf(out, "Capacity: %zu/%lld researches\n", st->n_active, (long long)st->limit);
    status_coordinator(&st->coordinator, st->now_ms, out);
}

/* ---- status: JSON ------------------------------------------------------------------------- */

/* A time field: the value, or null when 0 (absent). */
static void
json_time(struct ctl_json *j, const char *key, int64_t ms)
{
    ctl_json_key(j, key);
    if (ms > 0) {
        ctl_json_int(j, ms);
    } else {
        ctl_json_null(j);
    }
}

static void
json_active(struct ctl_json *j, const struct ctl_status *st)
{
    ctl_json_key(j, "active");
    ctl_json_array_begin(j);
    for (size_t i = 0; i < st->n_active; i++) {
        const struct ctl_active *a = &st->active[i];
        ctl_json_object_begin(j);
        ctl_json_kstr(j, "research_id", a->research_id);
        ctl_json_kstr(j, "phase", a->phase);
        ctl_json_kstr(j, "strategy_name", a->strategy_name);
        json_time(j, "created_at", a->created_at_ms);
        json_time(j, "phase_started_at", a->phase_started_at_ms);
        ctl_json_kint(j, "in_phase_ms", a->in_phase_ms);
        json_time(j, "waiting_since", a->waiting_since_ms);
        ctl_json_kstr(j, "worker_id", a->worker_id);
        const struct ctl_worker *w = active_worker(st, a);
        ctl_json_key(j, "progress");
        if (w != NULL && w->has_progress) {
            ctl_json_num(j, w->progress);
        } else {
            ctl_json_null(j);
        }
        ctl_json_kstr(j, "step", w != NULL ? w->step : NULL);
        ctl_json_object_end(j);
    }
    ctl_json_array_end(j);
}

static void
json_coordinator(struct ctl_json *j, const struct ctl_coordinator *c, int64_t now_ms)
{
    ctl_json_key(j, "coordinator");
    ctl_json_object_begin(j);
    ctl_json_kbool(j, "alive", c->leader);
    ctl_json_kbool(j, "seen", c->seen);
    ctl_json_kstr(j, "instance", c->leader_instance != NULL ? c->leader_instance : c->instance);
    ctl_json_kstr(j, "version", c->version);
    json_time(j, "started_at", c->started_at_ms);
    json_time(j, "last_cycle_at", c->last_cycle_at_ms);
    ctl_json_key(j, "last_cycle_age_ms");
    if (c->last_cycle_at_ms > 0) {
        ctl_json_int(j, now_ms > c->last_cycle_at_ms ? now_ms - c->last_cycle_at_ms : 0);
    } else {
        ctl_json_null(j);
    }
    ctl_json_key(j, "cycle_ms");
    if (c->has_cycle_ms) {
        ctl_json_num(j, c->cycle_ms);
    } else {
        ctl_json_null(j);
    }
    ctl_json_key(j, "lease_ttl_ms");
    if (c->leader && c->leader_ttl_ms >= 0) {
        ctl_json_int(j, c->leader_ttl_ms);
    } else {
        ctl_json_null(j);
    }
    ctl_json_kint(j, "triggers", c->triggers);
    ctl_json_kint(j, "completions", c->completions);
    ctl_json_kint(j, "stale_completions", c->stale_completions);
    ctl_json_kint(j, "invalid_inputs", c->invalid_inputs);
    ctl_json_kint(j, "redispatches", c->redispatches);
    ctl_json_object_end(j);
}

static void
json_last(struct ctl_json *j, const struct ctl_status *st)
{
    ctl_json_key(j, "last_finished");
    if (!st->has_last) {
        ctl_json_null(j);
        return;
    }
    const struct ctl_finished *l = &st->last;
    ctl_json_object_begin(j);
    ctl_json_kstr(j, "research_id", l->research_id);
    ctl_json_kstr(j, "status", l->status);
    ctl_json_kstr(j, "last_phase", l->last_phase);
    ctl_json_kstr(j, "verdict", l->verdict);
    ctl_json_kstr(j, "error", l->error);
    json_time(j, "finished_at", l->finished_at_ms);
    ctl_json_kint(j, "age_ms", st->now_ms > l->finished_at_ms ? st->now_ms - l->finished_at_ms : 0);
    ctl_json_object_end(j);
}

void
ctl_view_status_json(const struct ctl_status *st, struct buf *out)
{
    struct ctl_json *j = ctl_json_new(out);

    ctl_json_object_begin(j);
    ctl_json_kint(j, "now", st->now_ms);
    json_active(j, st);
    ctl_json_key(j, "workers");
    ctl_json_object_begin(j);
    for (int t = 0; t < WORKER_TYPE_COUNT; t++) {
        ctl_json_key(j, worker_type_name((enum worker_type)t));
        ctl_json_object_begin(j);
        ctl_json_kint(j, "busy", st->per_type[t].busy);
        ctl_json_kint(j, "total", st->per_type[t].total);
        ctl_json_object_end(j);
    }
    ctl_json_object_end(j);
    ctl_json_key(j, "budget");
    ctl_json_object_begin(j);
    ctl_json_kstr(j, "day", st->budget.day);
    ctl_json_kbool(j, "stored", st->budget.stored);
    ctl_json_knum(j, "spent_usd", st->budget.spent_usd);
    ctl_json_knum(j, "daily_limit_usd", st->budget.daily_limit_usd);
    ctl_json_key(j, "remaining_usd");
    if (st->budget.daily_limit_usd > 0) {
        ctl_json_num(j, st->budget.remaining_usd);
    } else {
        ctl_json_null(j); /* no limit */
    }
    ctl_json_object_end(j);
    ctl_json_key(j, "capacity");
    ctl_json_object_begin(j);
    ctl_json_kint(j, "active", (int64_t)st->n_active);
    ctl_json_kint(j, "limit", st->limit);
    ctl_json_kstr(j, "limit_source", st->limit_from_coordinator ? "coordinator" : "environment");
    ctl_json_object_end(j);
    json_coordinator(j, &st->coordinator, st->now_ms);
    json_last(j, st);
    ctl_json_object_end(j);
    ctl_json_free(j);
    buf_putc(out, '\n');
}

/* ---- workers ------------------------------------------------------------------------------ */

static const char *
worker_state(const struct ctl_worker *w)
{
    if (!w->live) {
        return "dead";
    }
    return w->state != NULL ? w->state : "unknown";
}

/* The progress column: "40% epoch 4/10", the step alone, or NULL (shown "-"). */
static char *
progress_text(const struct ctl_worker *w)
{
    if (!w->has_progress && w->step == NULL) {
        return NULL;
    }
    struct buf b = BUF_INIT;
    if (w->has_progress) {
        buf_printf(&b, "%.0f%%", w->progress * 100);
    }
    if (w->step != NULL) {
        buf_printf(&b, "%s%s", w->has_progress ? " " : "", w->step);
    }
    return b.data;
}

void
ctl_view_workers_text(const struct ctl_workers *w, struct buf *out)
{
    if (w->n == 0) {
        buf_puts(out, "No workers registered.\n");
        return;
    }
    size_t id_w = strlen("WORKER");
    size_t rs_w = strlen("RESEARCH");
    size_t ds_w = strlen("DISPATCH");
    size_t pg_w = strlen("PROGRESS");
    size_t host_w = strlen("HOST");
    size_t n_live = 0;
    size_t n_busy = 0;
    bool where = false; /* a host or labels column: only when a worker names one */
    char **progress = xcalloc(w->n, sizeof(*progress));
    for (size_t i = 0; i < w->n; i++) {
        progress[i] = progress_text(&w->v[i]);
        id_w = max_len(id_w, w->v[i].worker_id);
        rs_w = max_len(rs_w, w->v[i].research_id);
        ds_w = max_len(ds_w, w->v[i].dispatch_id);
        pg_w = max_len(pg_w, progress[i]);
        host_w = max_len(host_w, w->v[i].host);
        n_live += w->v[i].live;
        n_busy += w->v[i].busy;
        where = where || w->v[i].host != NULL || w->v[i].labels != NULL;
    }
    buf_printf(out, "%-10s  %-*s  %-*s  %-*s  %-*s  %-*s  %s", "TYPE", (int)id_w, "WORKER",
               STATE_WIDTH, "STATE", (int)rs_w, "RESEARCH", (int)ds_w, "DISPATCH", (int)pg_w,
               "PROGRESS", where ? "HEARTBEAT     " : "HEARTBEAT");
    if (where) {
        buf_printf(out, "  %-*s  LABELS", (int)host_w, "HOST");
    }
    buf_putc(out, '\n');
    for (size_t i = 0; i < w->n; i++) {
        const struct ctl_worker *k = &w->v[i];
        char age[CTL_FMT_MAX], heartbeat[CTL_FMT_MAX + 8];
        ctl_fmt_age(k->age_ms, age);
        snprintf(heartbeat, sizeof(heartbeat), "%s ago", age);
        buf_printf(out, "%-10s  ", worker_type_name(k->type));
        ctl_fmt_cell(out, k->worker_id, id_w);
        buf_puts(out, "  ");
        ctl_fmt_cell(out, worker_state(k), STATE_WIDTH);
        buf_puts(out, "  ");
        ctl_fmt_cell(out, k->research_id, rs_w);
        buf_puts(out, "  ");
        ctl_fmt_cell(out, k->dispatch_id, ds_w);
        buf_puts(out, "  ");
        ctl_fmt_cell(out, progress[i], pg_w);
        if (where) {
            buf_printf(out, "  %-14s", heartbeat); /* "1m 05s ago" and a margin */
            buf_puts(out, "  ");
            ctl_fmt_cell(out, k->host, host_w);
            buf_puts(out, "  ");
            ctl_fmt_text(out, k->labels != NULL ? k->labels : "-");
            buf_putc(out, '\n');
        } else {
            buf_printf(out, "  %s\n", heartbeat);
        }
        free(progress[i]);
    }
    free(progress);
    buf_printf(out, "\n%zu workers: %zu live (%zu busy), %zu dead\n", w->n, n_live, n_busy,
               w->n - n_live);
}

void
ctl_view_workers_json(const struct ctl_workers *w, struct buf *out)
{
    struct ctl_json *j = ctl_json_new(out);

    ctl_json_object_begin(j);
    ctl_json_kint(j, "now", w->now_ms);
    ctl_json_key(j, "workers");
    ctl_json_array_begin(j);
    for (size_t i = 0; i < w->n; i++) {
        const struct ctl_worker *k = &w->v[i];
        ctl_json_object_begin(j);
        ctl_json_kstr(j, "type", worker_type_name(k->type));
        ctl_json_kstr(j, "worker_id", k->worker_id);
        ctl_json_kstr(j, "state", worker_state(k));
        ctl_json_kbool(j, "live", k->live);
        ctl_json_kbool(j, "busy", k->busy);
        ctl_json_kstr(j, "research_id", k->research_id);
        ctl_json_kstr(j, "dispatch_id", k->dispatch_id);
        json_time(j, "last_seen", k->last_seen_ms);
        ctl_json_kint(j, "heartbeat_age_ms", k->age_ms);
        if (k->has_progress) {
            ctl_json_knum(j, "progress", k->progress);
        } else {
            ctl_json_key(j, "progress");
            ctl_json_null(j);
        }
        ctl_json_kstr(j, "step", k->step);
        ctl_json_kstr(j, "host", k->host);
        ctl_json_kstr(j, "labels", k->labels);
        ctl_json_object_end(j);
    }
    ctl_json_array_end(j);
    ctl_json_object_end(j);
    ctl_json_free(j);
    buf_putc(out, '\n');
}
