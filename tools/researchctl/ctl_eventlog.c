/* SPDX-License-Identifier: MIT
 * ctl_eventlog: the events command. Reading to the end collects the events and prints them
 * in time order (partitions interleave by time, each keeps its order), so it holds what it
 * read in memory: --last N or --research keep that small on a long topic. */
#include "tools/researchctl/ctl_eventlog.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "common/cfg.h"
#include "common/clock.h"
#include "common/stopsig.h"
#include "common/xalloc.h"
#include "tools/researchctl/ctl_cmd.h"
#include "tools/researchctl/ctl_event.h"
#include "tools/researchctl/ctl_kafka.h"

#define POLL_MS 200
#define CATCH_UP_STALL_MS 15000 /* give up reading to the end after this without progress */

enum events_opt { E_FOLLOW, E_RESEARCH, E_LAST, E_JSON, E_HELP };

static const struct toolopt events_table[] = {
    [E_FOLLOW] = {"follow", NULL, "then keep printing new events until interrupted"},
    [E_RESEARCH] = {"research", "ID", "only the events of this research"},
    [E_LAST] = {"last", "N", "only the last N events (of those of --research)"},
    [E_JSON] = {"json", NULL, "one JSON object per event and line (JSON Lines)"},
    [E_HELP] = {"help", NULL, "show this help"},
};

static enum rc_rc
events_opt(void *ctx, size_t index, const char *arg, struct rc_err *err)
{
    struct ctl_opts *o = ctx;
    switch ((enum events_opt)index) {
    case E_FOLLOW:
        o->follow = true;
        break;
    case E_RESEARCH:
        return ctl_cmd_id(arg, "--research", &o->research_id, err);
    case E_LAST:
        return toolopt_int64(arg, 1, INT64_MAX / 2, "--last", &o->last_n, err);
    case E_JSON:
        o->json = true;
        break;
    case E_HELP:
        o->help = true;
        break;
    }
    return RC_OK;
}

/* One event kept for printing in time order. */
struct event_line {
    int64_t ts_ms;
    size_t seq; /* read order: keeps each partition's order among equal times */
    char *text; /* the line with its newline */
};

static int
by_time(const void *a, const void *b)
{
    const struct event_line *x = a;
    const struct event_line *y = b;
    if (x->ts_ms != y->ts_ms) {
        return x->ts_ms < y->ts_ms ? -1 : 1;
    }
    return x->seq < y->seq ? -1 : x->seq > y->seq;
}

/* Render a read event as a line (with newline) into b, unless the filter drops it. */
static bool
render_event(const struct ctl_opts *o, const struct ctl_event_msg *m, struct buf *b)
{
    const struct event *ev = &m->msg.u.event;
    if (o->research_id != NULL &&
        (ev->research_id == NULL || strcmp(ev->research_id, o->research_id) != 0)) {
        return false;
    }
    if (o->json) {
        ctl_event_json(m->ts_ms, ev, b);
    } else {
        ctl_event_line(m->ts_ms, ev, b);
    }
    buf_putc(b, '\n');
    return true;
}

/* Read every partition to its end, then print what was read in time order (the last N only
 * with --last). RC_EUNAVAIL when reading stalls. */
static enum rc_rc
events_catch_up(struct ctl_events *e, const struct ctl_opts *o, struct rc_err *err)
{
    struct event_line *lines = NULL;
    size_t n = 0;
    size_t cap = 0;
    struct buf b = BUF_INIT;
    enum rc_rc rc = RC_OK;
    int64_t stall_at = clock_mono_ms() + CATCH_UP_STALL_MS;

    while (!stopsig_requested() && !ctl_events_caught_up(e)) {
        struct ctl_event_msg m;
        struct rc_err why = RC_ERR_INIT;
        enum rc_rc r = ctl_events_next(e, POLL_MS, &m, &why);
        if (r == RC_EUNAVAIL) {
            rc = rc_err_set(err, r, "%s", why.msg);
            goto out;
        }
        if (r == RC_EPROTO) {
            ctl_cmd_say(why.msg);
        }
        if (r == RC_OK) {
            stall_at = clock_mono_ms() + CATCH_UP_STALL_MS;
            buf_reset(&b);
            if (render_event(o, &m, &b)) {
                lines = xgrow(lines, &cap, n + 1, sizeof(*lines));
                lines[n] = (struct event_line){m.ts_ms, n, buf_detach(&b)};
                n++;
            }
            msg_release(&m.msg);
        } else if (clock_mono_ms() > stall_at) {
            const char *last = ctl_events_last_error(e);
            rc = rc_err_set(err, RC_EUNAVAIL,
                            "kafka: reading the events to their end made no progress for %d s%s%s",
                            CATCH_UP_STALL_MS / 1000, last[0] != '\0' ? ": " : "", last);
            goto out;
        }
    }
    qsort(lines, n, sizeof(*lines), by_time);
    size_t from = o->last_n > 0 && (size_t)o->last_n < n ? n - (size_t)o->last_n : 0;
    for (size_t i = from; i < n; i++) {
        fputs(lines[i].text, stdout);
    }
    fflush(stdout);
out:
    for (size_t i = 0; i < n; i++) {
        free(lines[i].text);
    }
    free(lines);
    buf_release(&b);
    return rc;
}

static int
run_events(const struct cfg *cfg, struct ctl_opts *o)
{
    struct ctl_events *e = NULL;
    struct rc_err err = RC_ERR_INIT;
    struct buf b = BUF_INIT;

    (void)stopsig_install(NULL);
    /* With a filter the last N matches may lie anywhere: read everything, keep the last N. */
    enum rc_rc rc = ctl_events_open(&cfg->kafka, o->research_id != NULL ? 0 : o->last_n, &e, &err);
    if (rc == RC_OK) {
        rc = events_catch_up(e, o, &err);
    }
    while (rc == RC_OK && o->follow && !stopsig_requested()) {
        struct ctl_event_msg m;
        struct rc_err why = RC_ERR_INIT;
        enum rc_rc r = ctl_events_next(e, POLL_MS, &m, &why);
        if (r == RC_EUNAVAIL) {
            rc = rc_err_set(&err, r, "%s", why.msg);
        } else if (r == RC_EPROTO) {
            ctl_cmd_say(why.msg);
        } else if (r == RC_OK) {
            if (render_event(o, &m, &b)) {
                ctl_cmd_emit(&b);
            }
            msg_release(&m.msg);
        }
    }
    ctl_events_free(e);
    buf_release(&b);
    return rc == RC_OK ? RC_EXIT_OK : ctl_cmd_fail(rc, &err);
}

static const struct ctl_command events_command = {
    "events",
    CTL_CMD_TOOL " events",
    "lifecycle events, read to the end (or followed)",
    "Lifecycle events from the events topic, every partition from its start to its current\n"
    "end, in time order, one per line: time, research, type, then every key of the contract\n"
    "as key=value (nil as -, strings with spaces quoted). With --follow, then every new one\n"
    "as it comes until SIGINT/SIGTERM (exit 0).",
    events_table,
    N_OF(events_table),
    events_opt,
    CTL_ID_NONE,
    NULL,
    run_events,
};

const struct ctl_command *
ctl_eventlog_command(void)
{
    return &events_command;
}
