/* SPDX-License-Identifier: MIT
 * ctl_view_research: what `show` prints. Every string read from Redis reaches the text
 * through ctl_fmt_text, ctl_fmt_cell or ctl_fmt_value (control characters escaped). */
#include "tools/researchctl/ctl_view_research.h"

#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "common/buf.h"
#include "contract/fields.h"
#include "contract/phase.h"
#include "tools/researchctl/ctl_fmt.h"
#include "tools/researchctl/ctl_json.h"
#include "tools/researchctl/ctl_read.h"
#include "tools/researchctl/ctl_timeline.h"

#define LABEL_WIDTH 22 /* "directional_accuracy" and a margin */

/* ---- show --------------------------------------------------------------------------------- */

enum show_kind {
    SHOW_TEXT,
    SHOW_TIME,  /* Unix ms: UTC and age */
    SHOW_MONEY, /* USD */
    SHOW_BOOL,  /* 0/1: no/yes */
};

struct show_row {
    const char *label;
    const char *field;
    enum show_kind kind;
    bool always; /* shown as - when absent */
};

struct show_section {
    const char *title; /* NULL: the header, under "Research <id>" */
    const struct show_row *rows;
    size_t n_rows;
};

static const struct show_row header_rows[] = {
    {"status", "status", SHOW_TEXT, true},
    {"phase", "phase", SHOW_TEXT, true},
    {"last phase", "last_phase", SHOW_TEXT, false},
    {"brief", "brief", SHOW_TEXT, true},
    {"model", "model", SHOW_TEXT, true},
    {"request", "request_id", SHOW_TEXT, true},
    {"strategy", "strategy_name", SHOW_TEXT, true},
    {"strategy path", "strategy_path", SHOW_TEXT, false},
    {"model path", "model_path", SHOW_TEXT, false},
    {"created", "created_at", SHOW_TIME, true},
    {"phase started", "phase_started_at", SHOW_TIME, false},
    {"updated", "updated_at", SHOW_TIME, false},
    {"finished", "finished_at", SHOW_TIME, false},
};
static const struct show_row gate_rows[] = {
    {"bypass gates", "bypass_gates", SHOW_BOOL, true},
    {"rejection", "gate_rejection_reason", SHOW_TEXT, true},
};
static const struct show_row outcome_rows[] = {
    {"verdict", "verdict", SHOW_TEXT, true},
    {"error", "error", SHOW_TEXT, true},
    {"cost", "cost_usd", SHOW_MONEY, true},
};
static const struct show_row dispatch_rows[] = {
    {"dispatch", "dispatch_id", SHOW_TEXT, true},
    {"attempt", "attempt", SHOW_TEXT, true},
    {"worker", "worker_id", SHOW_TEXT, true},
    {"child status", "child_status", SHOW_TEXT, false},
    {"dispatched", "dispatched_at", SHOW_TIME, false},
    {"picked up", "picked_up_at", SHOW_TIME, false},
    {"waiting since", "waiting_since", SHOW_TIME, false},
};

/* Printed after the phases: the header is printed first. */
static const struct show_section tail_sections[] = {
    {"Gates", gate_rows, N_OF(gate_rows)},
    {"Outcome", outcome_rows, N_OF(outcome_rows)},
    {"Dispatch", dispatch_rows, N_OF(dispatch_rows)},
};

static const char *const phase_titles[WORKER_TYPE_COUNT] = {"Design", "Training", "Backtest",
                                                            "Assessment"};

/* A line of show: the label padded to its column, then the value (NULL: -). */
static void
show_line(const char *label, const char *value, struct buf *out)
{
    buf_puts(out, "  ");
    ctl_fmt_cell(out, label, LABEL_WIDTH);
    ctl_fmt_text(out, value);
    buf_putc(out, '\n');
}

static void
show_row(const struct show_row *row, const char *v, int64_t now_ms, struct buf *out)
{
    char text[CTL_FMT_MAX];
    int64_t ms = 0;
    double usd = 0;

    if (v != NULL && row->kind == SHOW_TIME && ctl_fmt_parse_int(v, &ms) && ms > 0) {
        buf_printf(out, "  %-*s", LABEL_WIDTH, row->label);
        ctl_fmt_when(ms, now_ms, out);
        buf_putc(out, '\n');
    } else if (v != NULL && row->kind == SHOW_MONEY && ctl_fmt_parse_num(v, &usd)) {
        /* ctl_fmt_parse_num skips leading white space, "\n" too: v is still escaped. */
        buf_printf(out, "  %-*s", LABEL_WIDTH, row->label);
        ctl_fmt_money(usd, text);
        buf_printf(out, "%s (", text);
        ctl_fmt_text(out, v);
        buf_puts(out, " USD)\n");
    } else if (v != NULL && row->kind == SHOW_BOOL &&
               (strcmp(v, "0") == 0 || strcmp(v, "1") == 0)) {
        show_line(row->label, v[0] == '1' ? "yes" : "no", out);
    } else {
        show_line(row->label, v, out);
    }
}

static void
show_rows(const struct ctl_research *r, const struct show_row *rows, size_t n, int64_t now_ms,
          struct buf *out)
{
    for (size_t i = 0; i < n; i++) {
        const char *v = ctl_research_get(r, rows[i].field);
        if (v != NULL || rows[i].always) {
            show_row(&rows[i], v, now_ms, out);
        }
    }
}

/* True when `name` is a field one of the fixed rows or the phase sections show. */
static bool
is_shown(const char *name)
{
    const struct show_section header = {NULL, header_rows, N_OF(header_rows)};
    for (size_t s = 0; s <= N_OF(tail_sections); s++) {
        const struct show_section *sec = s == 0 ? &header : &tail_sections[s - 1];
        for (size_t i = 0; i < sec->n_rows; i++) {
            if (strcmp(sec->rows[i].field, name) == 0) {
                return true;
            }
        }
    }
    for (int t = 0; t < WORKER_TYPE_COUNT; t++) {
        const char *p = worker_type_name((enum worker_type)t);
        if (strncmp(name, p, strlen(p)) == 0 && name[strlen(p)] == '.') {
            return true;
        }
    }
    return strcmp(name, "research_id") == 0 || ctl_timeline_is_field(name);
}

/* The result fields of one phase ("training.accuracy" as "accuracy"), in name order. */
static void
show_phase(const struct ctl_research *r, enum worker_type wt, struct buf *out)
{
    const char *p = worker_type_name(wt);
    size_t plen = strlen(p);
    bool any = false;
    for (size_t i = 0; i < r->n; i++) {
        if (strncmp(r->names[i], p, plen) != 0 || r->names[i][plen] != '.') {
            continue;
        }
        if (!any) {
            buf_printf(out, "\n%s\n", phase_titles[wt]);
            any = true;
        }
        show_line(r->names[i] + plen + 1, r->values[i], out);
    }
}

void
ctl_view_research_text(const struct ctl_research *r, int64_t now_ms, struct buf *out)
{
    buf_puts(out, "Research ");
    ctl_fmt_text(out, ctl_research_field(r, RF_RESEARCH_ID));
    buf_putc(out, '\n');
    show_rows(r, header_rows, N_OF(header_rows), now_ms, out);
    if (r->ttl_ms >= 0) {
        char left[CTL_FMT_MAX];
        ctl_fmt_duration(r->ttl_ms, left);
        buf_printf(out, "  %-*sexpires in %s\n", LABEL_WIDTH, "retention", left);
    }
    for (int t = 0; t < WORKER_TYPE_COUNT; t++) {
        show_phase(r, (enum worker_type)t, out);
    }
    struct ctl_timeline timeline;
    ctl_timeline_read(r, &timeline);
    ctl_timeline_text(&timeline, now_ms, out);
    for (size_t s = 0; s < N_OF(tail_sections); s++) {
        buf_printf(out, "\n%s\n", tail_sections[s].title);
        show_rows(r, tail_sections[s].rows, tail_sections[s].n_rows, now_ms, out);
    }
    bool other = false;
    for (size_t i = 0; i < r->n; i++) {
        if (is_shown(r->names[i])) {
            continue;
        }
        if (!other) {
            buf_puts(out, "\nOther fields\n");
            other = true;
        }
        show_line(r->names[i], r->values[i], out);
    }
}

void
ctl_view_research_json(const struct ctl_research *r, struct buf *out)
{
    struct ctl_json *j = ctl_json_new(out);

    ctl_json_object_begin(j);
    for (size_t i = 0; i < r->n; i++) {
        ctl_json_kstr(j, r->names[i], r->values[i]);
    }
    ctl_json_object_end(j);
    ctl_json_free(j);
    buf_putc(out, '\n');
}
