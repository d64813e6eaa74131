/* SPDX-License-Identifier: MIT
 * bench_report: the table (ASCII, so that columns line up) and the JSON document. */
#include "tools/bench/bench_report.h"

#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "common/xalloc.h"
#include "tools/researchctl/ctl_json.h"

#define CELL 96 /* bytes of one table cell */
#define NUM 24  /* bytes of one formatted number */
#define LABEL 128

struct row {
    char label[LABEL];
    char ours[CELL];
    char ceiling[CELL];
    char cratio[CELL]; /* ours / ceiling */
    char celery[CELL];
    char ratio[CELL];
    char target[CELL];
};

struct table {
    struct row *rows;
    size_t n;
    size_t cap;
};

/* v with thousands separators and a precision that suits its size; "-" when unknown. */
static void
fmt(char *out, size_t len, double v)
{
    if (isnan(v) || isinf(v)) {
        snprintf(out, len, "-");
        return;
    }
    double a = fabs(v);
    if (a < 10) {
        snprintf(out, len, "%.2f", v);
        return;
    }
    if (a < 100) {
        snprintf(out, len, "%.1f", v);
        return;
    }
    if (a >= 1e12) {
        snprintf(out, len, "%.3g", v);
        return;
    }
    char digits[320]; /* what %.0f of any double may need */
    snprintf(digits, sizeof(digits), "%.0f", a);
    size_t nd = strlen(digits);
    size_t o = 0;
    if (v < 0 && o + 1 < len) {
        out[o++] = '-';
    }
    for (size_t i = 0; i < nd && o + 1 < len; i++) {
        if (i > 0 && (nd - i) % 3 == 0 && o + 2 < len) {
            out[o++] = ',';
        }
        out[o++] = digits[i];
    }
    out[o] = '\0';
}

/* A count, with thousands separators. */
static void
fmt_count(char *out, size_t len, int64_t v)
{
    if (v >= 0 && v < 100) {
        snprintf(out, len, "%" PRId64, v);
        return;
    }
    fmt(out, len, (double)v);
}

static void
fmt_ratio(char *out, size_t len, double ours, double celery)
{
    if (isnan(ours) || isnan(celery) || celery == 0) {
        snprintf(out, len, "-");
        return;
    }
    char num[NUM - 1]; /* room for the "x" */
    fmt(num, sizeof(num), ours / celery);
    snprintf(out, len, "%sx", num);
}

static struct row *
add_row(struct table *t, const char *label, const char *target)
{
    t->rows = xgrow(t->rows, &t->cap, t->n + 1, sizeof(*t->rows));
    struct row *r = &t->rows[t->n++];
    memset(r, 0, sizeof(*r));
    snprintf(r->label, sizeof(r->label), "%s", label);
    snprintf(r->ours, sizeof(r->ours), "-");
    snprintf(r->ceiling, sizeof(r->ceiling), "-");
    snprintf(r->cratio, sizeof(r->cratio), "-");
    snprintf(r->celery, sizeof(r->celery), "-");
    snprintf(r->ratio, sizeof(r->ratio), "-");
    snprintf(r->target, sizeof(r->target), "%s", target != NULL ? target : "");
    return r;
}

/* A row comparing three figures (ceiling, celery NAN when there is none). */
static void
add_pair(struct table *t, const char *label, double ours, double ceiling, double celery,
         const char *target)
{
    struct row *r = add_row(t, label, target);
    fmt(r->ours, sizeof(r->ours), ours);
    fmt(r->ceiling, sizeof(r->ceiling), ceiling);
    fmt_ratio(r->cratio, sizeof(r->cratio), ours, ceiling);
    fmt(r->celery, sizeof(r->celery), celery);
    fmt_ratio(r->ratio, sizeof(r->ratio), ours, celery);
}

/* "p50 / p99" of `d` and, when `peer`, ours / peer of each into `ratio`. */
static void
dist_cells(const struct bench_dist *o, const struct bench_dist *peer, char *cell, char *ratio)
{
    char a[NUM];
    char b[NUM];

    fmt(a, sizeof(a), peer->p50_ms);
    fmt(b, sizeof(b), peer->p99_ms);
    snprintf(cell, CELL, "%s / %s", a, b);
    fmt_ratio(a, sizeof(a), o->p50_ms, peer->p50_ms);
    fmt_ratio(b, sizeof(b), o->p99_ms, peer->p99_ms);
    snprintf(ratio, CELL, "%s / %s", a, b);
}

/* A "p50 / p99" row from three distributions (ceiling, celery may be NULL). */
static void
add_dist(struct table *t, const char *label, const struct bench_dist *o,
         const struct bench_dist *ceiling, const struct bench_dist *c, const char *target)
{
    struct row *r = add_row(t, label, target);
    char unused[CELL];

    dist_cells(o, o, r->ours, unused);
    if (ceiling != NULL) {
        dist_cells(o, ceiling, r->ceiling, r->cratio);
    }
    if (c != NULL) {
        dist_cells(o, c, r->celery, r->ratio);
    }
}

static const struct bench_throughput *
celery_run(const struct bench_results *res, int64_t n)
{
    for (size_t i = 0; res->celery.ran && i < res->celery.n_runs; i++) {
        if (res->celery.runs[i].n == n) {
            return &res->celery.runs[i];
        }
    }
    return NULL;
}

static void
throughput_rows(struct table *t, const struct bench_results *res)
{
    char label[LABEL];
    char num[NUM];

    for (size_t i = 0; i < res->n_runs; i++) {
        const struct bench_throughput *o = &res->runs[i];
        const struct bench_throughput *c = celery_run(res, o->n);
        const struct bench_throughput *x =
            res->ceiling.ran && res->ceiling.run.n == o->n ? &res->ceiling.run : NULL;
        bool big = o->n >= 10000;
        fmt_count(num, sizeof(num), o->n);
        snprintf(label, sizeof(label), "throughput, N=%s (transitions/s)", num);
        add_pair(t, label, o->transitions_per_s, x != NULL ? x->transitions_per_s : NAN,
                 c != NULL ? c->transitions_per_s : NAN,
                 big ? ">= 40,000 and > 60x Celery" : NULL);
        snprintf(label, sizeof(label), "  CPU per transition, coordinator (us)");
        add_pair(t, label, o->coordinator_us_per_transition,
                 x != NULL ? x->coordinator_us_per_transition : NAN, NAN, NULL);
        snprintf(label, sizeof(label), "  CPU per transition, whole system (us)");
        add_pair(t, label, o->system_us_per_transition,
                 x != NULL ? x->system_us_per_transition : NAN, c != NULL ? c->system_us_per_transition : NAN, "<= 40");
        add_dist(t, "  hand-off p50 / p99 under load (ms)", &o->handoff,
                 x != NULL ? &x->handoff : NULL, c != NULL ? &c->handoff : NULL, NULL);
        add_dist(t, "  trigger -> first dispatch p50 / p99 (ms)", &o->first,
                 x != NULL ? &x->first : NULL, c != NULL ? &c->first : NULL, NULL);
    }
}

static void
lowload_rows(struct table *t, const struct bench_results *res)
{
    const struct bench_lowload *c = res->celery.ran ? &res->celery.lowload : NULL;
    const struct bench_lowload *x = res->ceiling.has_lowload ? &res->ceiling.lowload : NULL;
    char label[LABEL];
    char num[NUM];

    fmt_count(num, sizeof(num), res->lowload.n);
    snprintf(label, sizeof(label), "hand-off p50 / p99, low load, %s one at a time (ms)", num);
    add_dist(t, label, &res->lowload.handoff, x != NULL ? &x->handoff : NULL, c != NULL ? &c->handoff : NULL, "<= 2 / <= 10");
    add_dist(t, "  trigger -> first dispatch p50 / p99 (ms)", &res->lowload.first,
             x != NULL ? &x->first : NULL, c != NULL ? &c->first : NULL, NULL);
    add_dist(t, "  trigger -> research finished p50 / p99 (ms)", &res->lowload.total,
             x != NULL ? &x->total : NULL, c != NULL ? &c->total : NULL, NULL);
}

static void
cycle_rows(struct table *t, const struct bench_results *res)
{
    char label[LABEL];
    char num[NUM];
    char a[NUM];
    char b[NUM];
    char c[NUM];

    for (size_t i = 0; i < res->n_cycles; i++) {
        const struct bench_cycle *cy = &res->cycles[i];
        fmt_count(num, sizeof(num), cy->active);
        snprintf(label, sizeof(label), "cycle, %s parked (tick %s s): median / p90 / max (ms)", num,
                 cy->poll_interval != NULL ? cy->poll_interval : "?");
        struct row *r = add_row(t, label, cy->active == 10000 ? "<= 20" : NULL);
        fmt(a, sizeof(a), cy->median_ms);
        fmt(b, sizeof(b), cy->p90_ms);
        fmt(c, sizeof(c), cy->max_ms);
        snprintf(r->ours, sizeof(r->ours), "%s / %s / %s", a, b, c);
        snprintf(label, sizeof(label), "  first cycle, marks all waiting (ms)");
        add_pair(t, label, cy->first_ms, NAN, NAN, NULL);
        if (cy->lease_losses > 0) {
            r = add_row(t, "  leader lease lost at start (times; figures suspect)", NULL);
            snprintf(r->ours, sizeof(r->ours), "%" PRId64, cy->lease_losses);
        }
        snprintf(label, sizeof(label), "  coordinator peak RSS (MiB)");
        add_pair(t, label, cy->peak_rss_mb, NAN, NAN, cy->active == 100000 ? "<= 100 MB" : NULL);
    }
}

static void
idle_row(struct table *t, const struct bench_results *res)
{
    char label[LABEL];
    char num[NUM];
    char ms[NUM];
    char pct[NUM];

    fmt(num, sizeof(num), res->idle.seconds);
    snprintf(label, sizeof(label), "idle coordinator, CPU over %s s (ms; %% of a core)", num);
    struct row *r = add_row(t, label, "near 0%");
    fmt(ms, sizeof(ms), (double)res->idle.cpu_us / 1000.0);
    fmt(pct, sizeof(pct), res->idle.percent);
    snprintf(r->ours, sizeof(r->ours), "%s (%s%%)", ms, pct);
}

static void
table_print(const struct table *t, FILE *out)
{
    static const struct row head = {"figure",      "ours",   "ceiling",          "ours/ceiling",
                                    "Celery",      "ours/Celery", "target (issue 5)"};
    size_t w[7] = {0};

    for (size_t i = 0; i <= t->n; i++) {
        const struct row *r = i == 0 ? &head : &t->rows[i - 1];
        const char *cells[7] = {r->label, r->ours, r->ceiling, r->cratio, r->celery, r->ratio,
                                r->target};
        for (int k = 0; k < 7; k++) {
            w[k] = strlen(cells[k]) > w[k] ? strlen(cells[k]) : w[k];
        }
    }
    for (size_t i = 0; i <= t->n; i++) {
        const struct row *r = i == 0 ? &head : &t->rows[i - 1];
        fprintf(out, "%-*s  %*s  %*s  %*s  %*s  %*s  %s\n", (int)w[0], r->label, (int)w[1],
                r->ours, (int)w[2], r->ceiling, (int)w[3], r->cratio, (int)w[4], r->celery,
                (int)w[5], r->ratio, r->target);
    }
}

/* Below the table: where each throughput run's CPU went, and the definitions. */
static void
notes_print(const struct bench_results *res, FILE *out)
{
    for (size_t i = 0; i < res->n_runs; i++) {
        const struct bench_throughput *o = &res->runs[i];
        fprintf(out,
                "ours N=%" PRId64 ": %" PRId64 " completed, %" PRId64 " not, %.3f s; CPU ms: "
                "coordinator %.0f, workers %.0f, redis %.0f, devbroker %.0f, driver %.0f\n",
                o->n, o->completed, o->failed, o->seconds, (double)o->cpu_coordinator_us / 1000.0,
                (double)o->cpu_workers_us / 1000.0, (double)o->cpu_redis_us / 1000.0,
                (double)o->cpu_broker_us / 1000.0, (double)o->cpu_client_us / 1000.0);
    }
    if (res->ceiling.ran) {
        const struct bench_throughput *x = &res->ceiling.run;
        fprintf(out,
                "ceiling N=%" PRId64 ": %" PRId64 " completed, %" PRId64 " not, %.3f s; CPU ms: "
                "relay %.0f, workers %.0f, redis %.0f, devbroker %.0f, driver %.0f\n",
                x->n, x->completed, x->failed, x->seconds, (double)x->cpu_coordinator_us / 1000.0,
                (double)x->cpu_workers_us / 1000.0, (double)x->cpu_redis_us / 1000.0,
                (double)x->cpu_broker_us / 1000.0, (double)x->cpu_client_us / 1000.0);
    } else {
        fprintf(out, "ceiling run: not run: %s\n",
                res->ceiling.note[0] != '\0' ? res->ceiling.note : "--no-ceiling");
    }
    for (size_t i = 0; res->celery.ran && i < res->celery.n_runs; i++) {
        const struct bench_throughput *c = &res->celery.runs[i];
        fprintf(out,
                "Celery N=%" PRId64 ": %" PRId64 " completed, %" PRId64 " not, %.3f s; CPU ms: "
                "workers %.0f, redis %.0f, client %.0f\n",
                c->n, c->completed, c->failed, c->seconds, (double)c->cpu_workers_us / 1000.0,
                (double)c->cpu_redis_us / 1000.0, (double)c->cpu_client_us / 1000.0);
    }
    int64_t logged = res->has_lowload ? res->lowload.coordinator_log_lines : 0;
    for (size_t i = 0; i < res->n_runs; i++) {
        logged += res->runs[i].coordinator_log_lines;
    }
    if (logged > 0) {
        fprintf(out,
                "WARNING: the coordinator logged %" PRId64 " warnings or errors during the runs "
                "(--keep keeps its logs): their figures are suspect.\n",
                logged);
    }
    if (!res->celery.ran) {
        fprintf(out, "Celery peer: not run: %s\n",
                res->celery.note[0] != '\0' ? res->celery.note : "--no-celery");
    }
    fprintf(out,
            "\nA transition is one phase's completion applied: 4 per research (chain). Throughput:"
            " 4 x completed /\n(last finished - first trigger produced). Hand-off: a completion "
            "produced (worker's `done`) ->\nthe next phase's dispatch received by its worker "
            "(`recv`); under load it includes waiting for a\nfree worker. Whole system: "
            "coordinator, stub workers, redis, devbroker and the driver that\ntriggers and waits "
            "(Celery: its 4 workers, redis, the client). CPU from /proc (10 ms ticks).\n"
            "Ceiling: the same stack and load with bench-relay in the coordinator's place, the "
            "least any\ncorrect coordinator does per transition (its \"coordinator\" row is the "
            "relay's CPU).\n"
            "%" PRId64 " workers per type, %" PRId64 " partitions, AGENT_POLL_INTERVAL=%s, "
            "KAFKA_PROP_FETCH_WAIT_MAX_MS=%s,\nredis without RDB/AOF; the whole benchmark took "
            "%.0f s.\n",
            res->workers, res->partitions, res->poll_interval, res->fetch_wait_ms, res->wall_s);
}

void
bench_report_table(const struct bench_results *res, FILE *out)
{
    struct table t = {NULL, 0, 0};

    throughput_rows(&t, res);
    if (res->has_lowload) {
        lowload_rows(&t, res);
    }
    cycle_rows(&t, res);
    if (res->has_idle) {
        idle_row(&t, res);
    }
    table_print(&t, out);
    free(t.rows);
    fprintf(out, "\n");
    notes_print(res, out);
}

static void
json_dist(struct ctl_json *j, const char *key, const struct bench_dist *d)
{
    ctl_json_key(j, key);
    ctl_json_object_begin(j);
    ctl_json_kint(j, "n", (int64_t)d->n);
    ctl_json_knum(j, "p50_ms", d->p50_ms);
    ctl_json_knum(j, "p99_ms", d->p99_ms);
    ctl_json_object_end(j);
}

static void
json_lowload(struct ctl_json *j, const struct bench_lowload *l)
{
    ctl_json_object_begin(j);
    ctl_json_kint(j, "n", l->n);
    ctl_json_kint(j, "completed", l->completed);
    ctl_json_kint(j, "coordinator_log_lines", l->coordinator_log_lines);
    json_dist(j, "handoff", &l->handoff);
    json_dist(j, "trigger_to_first_dispatch", &l->first);
    json_dist(j, "trigger_to_finished", &l->total);
    ctl_json_object_end(j);
}

/* One throughput run's members (inside an object the caller opened). */
static void
json_run_members(struct ctl_json *j, const struct bench_throughput *r)
{
    ctl_json_kint(j, "n", r->n);
    ctl_json_kint(j, "completed", r->completed);
    ctl_json_kint(j, "failed", r->failed);
    ctl_json_kint(j, "coordinator_log_lines", r->coordinator_log_lines);
    ctl_json_knum(j, "seconds", r->seconds);
    ctl_json_knum(j, "trigger_burst_s", r->burst_s);
    ctl_json_kint(j, "transitions", 4 * r->completed);
    ctl_json_knum(j, "transitions_per_s", r->transitions_per_s);
    ctl_json_key(j, "cpu_us");
    ctl_json_object_begin(j);
    ctl_json_kint(j, "coordinator", r->cpu_coordinator_us);
    ctl_json_kint(j, "workers", r->cpu_workers_us);
    ctl_json_kint(j, "redis", r->cpu_redis_us);
    ctl_json_kint(j, "broker", r->cpu_broker_us);
    ctl_json_kint(j, "client", r->cpu_client_us);
    ctl_json_object_end(j);
    ctl_json_knum(j, "coordinator_cpu_us_per_transition", r->coordinator_us_per_transition);
    ctl_json_knum(j, "system_cpu_us_per_transition", r->system_us_per_transition);
    json_dist(j, "handoff", &r->handoff);
    json_dist(j, "trigger_to_first_dispatch", &r->first);
    json_dist(j, "trigger_to_finished", &r->total);
}

static void
json_throughput(struct ctl_json *j, const struct bench_throughput *runs, size_t n)
{
    ctl_json_array_begin(j);
    for (size_t i = 0; i < n; i++) {
        ctl_json_object_begin(j);
        json_run_members(j, &runs[i]);
        ctl_json_object_end(j);
    }
    ctl_json_array_end(j);
}

/* An entry of ours.throughput (the largest N) plus its low-load run; null when not run. */
static void
json_ceiling(struct ctl_json *j, const struct bench_ceiling *x)
{
    if (!x->ran) {
        ctl_json_null(j);
        return;
    }
    ctl_json_object_begin(j);
    json_run_members(j, &x->run);
    ctl_json_key(j, "lowload");
    if (x->has_lowload) {
        json_lowload(j, &x->lowload);
    } else {
        ctl_json_null(j);
    }
    ctl_json_object_end(j);
}

static void
json_ours(struct ctl_json *j, const struct bench_results *res)
{
    ctl_json_object_begin(j);
    ctl_json_key(j, "lowload");
    if (res->has_lowload) {
        json_lowload(j, &res->lowload);
    } else {
        ctl_json_null(j);
    }
    ctl_json_key(j, "idle");
    if (res->has_idle) {
        ctl_json_object_begin(j);
        ctl_json_knum(j, "seconds", res->idle.seconds);
        ctl_json_kint(j, "cpu_us", res->idle.cpu_us);
        ctl_json_knum(j, "percent_of_core", res->idle.percent);
        ctl_json_object_end(j);
    } else {
        ctl_json_null(j);
    }
    ctl_json_key(j, "throughput");
    json_throughput(j, res->runs, res->n_runs);
    ctl_json_key(j, "cycle");
    ctl_json_array_begin(j);
    for (size_t i = 0; i < res->n_cycles; i++) {
        const struct bench_cycle *c = &res->cycles[i];
        ctl_json_object_begin(j);
        ctl_json_kint(j, "active", c->active);
        ctl_json_kstr(j, "agent_poll_interval", c->poll_interval);
        ctl_json_kint(j, "lease_losses", c->lease_losses);
        ctl_json_knum(j, "start_s", c->start_s);
        ctl_json_knum(j, "first_ms", c->first_ms);
        ctl_json_kint(j, "samples", c->samples);
        ctl_json_knum(j, "median_ms", c->median_ms);
        ctl_json_knum(j, "p90_ms", c->p90_ms);
        ctl_json_knum(j, "max_ms", c->max_ms);
        ctl_json_knum(j, "peak_rss_mib", c->peak_rss_mb);
        ctl_json_object_end(j);
    }
    ctl_json_array_end(j);
    ctl_json_object_end(j);
}

static void
json_celery(struct ctl_json *j, const struct bench_peer *c)
{
    ctl_json_object_begin(j);
    ctl_json_kbool(j, "ran", c->ran);
    ctl_json_kstr(j, "note", c->note[0] != '\0' ? c->note : NULL);
    ctl_json_kstr(j, "version", c->version[0] != '\0' ? c->version : NULL);
    ctl_json_key(j, "lowload");
    if (c->ran && c->lowload.n > 0) {
        json_lowload(j, &c->lowload);
    } else {
        ctl_json_null(j);
    }
    ctl_json_key(j, "throughput");
    json_throughput(j, c->runs, c->ran ? c->n_runs : 0);
    ctl_json_object_end(j);
}

void
bench_report_json(const struct bench_results *res, struct buf *out)
{
    struct ctl_json *j = ctl_json_new(out);

    ctl_json_object_begin(j);
    ctl_json_key(j, "config");
    ctl_json_object_begin(j);
    ctl_json_kbool(j, "quick", res->quick);
    ctl_json_kint(j, "workers_per_type", res->workers);
    ctl_json_kint(j, "partitions", res->partitions);
    ctl_json_kstr(j, "agent_poll_interval", res->poll_interval);
    ctl_json_kstr(j, "kafka_fetch_wait_max_ms", res->fetch_wait_ms);
    ctl_json_knum(j, "wall_s", res->wall_s);
    ctl_json_object_end(j);
    ctl_json_key(j, "ours");
    json_ours(j, res);
    ctl_json_key(j, "ceiling");
    json_ceiling(j, &res->ceiling);
    ctl_json_key(j, "celery");
    json_celery(j, &res->celery);
    ctl_json_object_end(j);
    RC_ASSERT(ctl_json_is_complete(j));
    ctl_json_free(j);
    buf_putc(out, '\n');
}
