/* SPDX-License-Identifier: MIT
 * ctl_timeline: the per-phase timeline of a research, read from the fields contract/fields.h
 * names (research_timeline_field). */
#include "tools/researchctl/ctl_timeline.h"

#include <stdio.h>
#include <string.h>

#include "common/buf.h"
#include "contract/fields.h"
#include "tools/researchctl/ctl_fmt.h"
#include "tools/researchctl/ctl_read.h"

static const enum phase worked[CTL_TIMELINE_PHASES] = {PHASE_DESIGNING, PHASE_TRAINING,
                                                       PHASE_BACKTESTING, PHASE_ASSESSING};

/* The value of timeline.<phase>.<mark>, or NULL. */
static const char *
field(const struct ctl_research *r, enum phase p, enum timeline_mark m)
{
    return ctl_research_field(r, research_timeline_field(p, m));
}

/* An integer field, 0 when absent or unreadable. */
static int64_t
int_field(const char *v)
{
    int64_t n = 0;
    return v != NULL && ctl_fmt_parse_int(v, &n) && n > 0 ? n : 0;
}

void
ctl_timeline_read(const struct ctl_research *r, struct ctl_timeline *t)
{
    memset(t, 0, sizeof(*t));
    t->research_finished_at_ms = int_field(ctl_research_field(r, RF_FINISHED_AT));
    for (size_t i = 0; i < CTL_TIMELINE_PHASES; i++) {
        struct ctl_timeline_phase *p = &t->p[i];
        const char *started = field(r, worked[i], TIMELINE_STARTED_AT);
        const char *finished = field(r, worked[i], TIMELINE_FINISHED_AT);
        const char *attempts = field(r, worked[i], TIMELINE_ATTEMPTS);
        p->phase = worked[i];
        p->worker_id = field(r, worked[i], TIMELINE_WORKER_ID);
        p->started_at_ms = int_field(started);
        p->finished_at_ms = int_field(finished);
        p->attempts = int_field(attempts);
        p->seen = started != NULL || finished != NULL || attempts != NULL || p->worker_id != NULL;
        t->any = t->any || p->seen;
    }
}

bool
ctl_timeline_duration(const struct ctl_timeline *t, const struct ctl_timeline_phase *p,
                      int64_t now_ms, int64_t *out_ms)
{
    if (p->started_at_ms == 0) {
        return false;
    }
    int64_t end = p->finished_at_ms;
    if (end == 0) {
        end = t->research_finished_at_ms > 0 ? t->research_finished_at_ms : now_ms;
    }
    *out_ms = end > p->started_at_ms ? end - p->started_at_ms : 0;
    return true;
}

void
ctl_timeline_text(const struct ctl_timeline *t, int64_t now_ms, struct buf *out)
{
    if (!t->any) {
        return;
    }
    char a[CTL_FMT_MAX], b[CTL_FMT_MAX], d[CTL_FMT_MAX];
    buf_printf(out, "\nTimeline\n  %-11s  %-24s  %-24s  %-8s  %s\n", "PHASE", "STARTED", "FINISHED",
               "DURATION", "WORKER (ATTEMPTS)");
    for (size_t i = 0; i < CTL_TIMELINE_PHASES; i++) {
        const struct ctl_timeline_phase *p = &t->p[i];
        if (!p->seen) {
            continue;
        }
        int64_t ms = 0;
        snprintf(a, sizeof(a), "-");
        if (p->started_at_ms > 0) {
            ctl_fmt_utc(p->started_at_ms, a);
        }
        if (p->finished_at_ms > 0) {
            ctl_fmt_utc(p->finished_at_ms, b);
        } else {
            snprintf(b, sizeof(b), "%s", t->research_finished_at_ms > 0 ? "-" : "running");
        }
        snprintf(d, sizeof(d), "-");
        if (ctl_timeline_duration(t, p, now_ms, &ms)) {
            ctl_fmt_age(ms, d); /* "1.2 s" below a minute */
        }
        buf_printf(out, "  %-11s  %-24s  %-24s  %-8s  ", phase_name(p->phase), a, b, d);
        ctl_fmt_text(out, p->worker_id);
        if (p->attempts > 0) {
            buf_printf(out, " (%lld)", (long long)p->attempts);
        }
        buf_putc(out, '\n');
    }
}

bool
ctl_timeline_is_field(const char *field_name)
{
    int f = research_field_parse(field_name);
    return f >= RF_TIMELINE_FIRST && f < RF_COUNT;
}
