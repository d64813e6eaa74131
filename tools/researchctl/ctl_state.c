/* SPDX-License-Identifier: MIT
 * ctl_state: status, show and workers: read through ctl_read over a redislink, render with
 * ctl_view. A read that fails is one line on stderr and exit 69. */
#include "tools/researchctl/ctl_state.h"

#include <stdio.h>

#include "common/buf.h"
#include "common/cfg.h"
#include "common/clock.h"
#include "common/stopsig.h"
#include "tools/researchctl/ctl_cmd.h"
#include "tools/researchctl/ctl_fmt.h"
#include "tools/researchctl/ctl_read.h"
#include "tools/researchctl/ctl_view.h"
#include "tools/researchctl/ctl_view_research.h"
#include "common/redislink.h"

/* --json and --help: the options of show and workers. */
static enum rc_rc
json_help_opt(void *ctx, size_t index, const char *arg, struct rc_err *err)
{
    (void)arg;
    (void)err;
    struct ctl_opts *o = ctx;
    if (index == 0) {
        o->json = true;
    } else {
        o->help = true;
    }
    return RC_OK;
}

/* ---- status ------------------------------------------------------------------------------- */

enum status_opt { S_WATCH, S_INTERVAL, S_JSON, S_HELP };

static const struct toolopt status_table[] = {
    [S_WATCH] = {"watch", NULL, "redraw every --interval seconds until interrupted"},
    [S_INTERVAL] = {"interval", "S", "seconds between redraws with --watch (default 1)"},
    [S_JSON] = {"json", NULL,
                "one JSON object (with --watch: one per line): active[] (with progress, step), "
                "workers{}, budget{}, capacity{}, coordinator{}, last_finished"},
    [S_HELP] = {"help", NULL, "show this help"},
};

static enum rc_rc
status_opt(void *ctx, size_t index, const char *arg, struct rc_err *err)
{
    struct ctl_opts *o = ctx;
    switch ((enum status_opt)index) {
    case S_WATCH:
        o->watch = true;
        break;
    case S_INTERVAL:
        return toolopt_double(arg, 0.1, 3600, "--interval", &o->interval_s, err);
    case S_JSON:
        o->json = true;
        break;
    case S_HELP:
        o->help = true;
        break;
    }
    return RC_OK;
}

/* Read the status once and render it into b. */
static enum rc_rc
status_once(const struct cfg *cfg, const struct ctl_source *src, bool json, struct buf *b,
            struct rc_err *err)
{
    struct ctl_status st = CTL_STATUS_INIT;
    enum rc_rc rc = ctl_read_status(src, &cfg->agent, clock_now_ms(), &st, err);
    if (rc != RC_OK) {
        return rc;
    }
    if (json) {
        ctl_view_status_json(&st, b);
    } else {
        ctl_view_status_text(&st, b);
    }
    ctl_status_release(&st);
    return RC_OK;
}

/* Redraw `b` (the status, or why it could not be read) and read the next one, until a stop
 * request. Text frames clear the screen first, like watch(1); JSON goes one object a line. */
static void
watch(const struct cfg *cfg, const struct ctl_source *src, const struct ctl_opts *o, struct buf *b)
{
    (void)stopsig_install(NULL);
    while (!stopsig_requested()) {
        if (!o->json) {
            char now[CTL_FMT_MAX];
            ctl_fmt_utc(clock_now_ms(), now);
            struct buf frame = BUF_INIT;
            buf_printf(&frame, "\033[H\033[2JEvery %.1f s: " CTL_CMD_TOOL " status  %s\n\n",
                       o->interval_s, now);
            buf_append(&frame, b->data, b->len);
            buf_release(b);
            *b = frame;
        }
        ctl_cmd_emit(b); /* one write per frame: no flicker */
        stopsig_nap_ms((int64_t)(o->interval_s * 1000));
        if (stopsig_requested()) {
            break;
        }
        struct rc_err err = RC_ERR_INIT;
        if (status_once(cfg, src, o->json, b, &err) != RC_OK) {
            buf_puts(b, CTL_CMD_TOOL ": "); /* shown in place */
            ctl_fmt_text(b, err.msg);
            buf_puts(b, " (retrying)\n");
        }
    }
}

static int
run_status(const struct cfg *cfg, struct ctl_opts *o)
{
    struct redislink *rl = redislink_new(&cfg->redis);
    const struct ctl_source src = ctl_source_redis(rl, cfg->redis.key_prefix);
    struct buf b = BUF_INIT;
    struct rc_err err = RC_ERR_INIT;
    int status = RC_EXIT_OK;

    enum rc_rc rc = status_once(cfg, &src, o->json, &b, &err);
    if (rc != RC_OK) {
        status = ctl_cmd_fail(rc, &err); /* nothing to watch: say so at once */
    } else if (o->watch) {
        watch(cfg, &src, o, &b);
    } else {
        ctl_cmd_emit(&b);
    }
    buf_release(&b);
    redislink_free(rl);
    return status;
}

static const struct ctl_command status_command = {
    "status",
    CTL_CMD_TOOL " status",
    "active researches, workers, budget, capacity, coordinator",
    "Every active research (oldest first) with its phase, strategy, time in phase and, while a\n"
    "worker runs it, the progress and step its heartbeat shows; busy and live workers per\n"
    "type, today's budget, capacity and whether a coordinator leads. Times in JSON are Unix\n"
    "ms, durations ms, money numbers in USD.",
    status_table,
    N_OF(status_table),
    status_opt,
    CTL_ID_NONE,
    NULL,
    run_status,
};

const struct ctl_command *
ctl_state_status(void)
{
    return &status_command;
}

/* ---- show --------------------------------------------------------------------------------- */

static const struct toolopt show_table[] = {
    {"json", NULL, "the research hash as one JSON object (every value a string, as stored)"},
    {"help", NULL, "show this help"},
};

static int
run_show(const struct cfg *cfg, struct ctl_opts *o)
{
    struct redislink *rl = redislink_new(&cfg->redis);
    const struct ctl_source src = ctl_source_redis(rl, cfg->redis.key_prefix);
    struct ctl_research r = CTL_RESEARCH_INIT;
    struct rc_err err = RC_ERR_INIT;
    struct buf b = BUF_INIT;
    int status = RC_EXIT_OK;

    enum rc_rc rc = ctl_read_research(&src, o->research_id, &r, &err);
    if (rc == RC_ENOTFOUND) {
        fprintf(stderr,
                CTL_CMD_TOOL ": no research %s (unknown, or expired after RESEARCH_RETENTION)\n",
                o->research_id);
        status = RC_EXIT_FAILURE;
    } else if (rc != RC_OK) {
        status = ctl_cmd_fail(rc, &err);
    } else {
        if (o->json) {
            ctl_view_research_json(&r, &b);
        } else {
            ctl_view_research_text(&r, clock_now_ms(), &b);
        }
        ctl_cmd_emit(&b);
    }
    ctl_research_release(&r);
    buf_release(&b);
    redislink_free(rl);
    return status;
}

static const struct ctl_command show_command = {
    "show",
    CTL_CMD_TOOL " show <research_id>",
    "one research: every field, phase results, outcome",
    "Everything stored about one research: status and phase, brief, times, each phase's\n"
    "results, the timeline (each phase's start, end, duration, worker and attempts, when\n"
    "recorded), gates, verdict, error, cost, dispatch. Exit 1 when there is no such research.",
    show_table,
    N_OF(show_table),
    json_help_opt,
    CTL_ID_REQUIRED,
    NULL,
    run_show,
};

const struct ctl_command *
ctl_state_show(void)
{
    return &show_command;
}

/* ---- workers ------------------------------------------------------------------------------ */

static const struct toolopt workers_table[] = {
    {"json", NULL, "one JSON object: now, workers[] (type, worker_id, state, live, busy, ...)"},
    {"help", NULL, "show this help"},
};

static int
run_workers(const struct cfg *cfg, struct ctl_opts *o)
{
    struct redislink *rl = redislink_new(&cfg->redis);
    const struct ctl_source src = ctl_source_redis(rl, cfg->redis.key_prefix);
    struct ctl_workers w = CTL_WORKERS_INIT;
    struct rc_err err = RC_ERR_INIT;
    struct buf b = BUF_INIT;
    int status = RC_EXIT_OK;

    enum rc_rc rc = ctl_read_workers(&src, &cfg->agent, clock_now_ms(), &w, &err);
    if (rc != RC_OK) {
        status = ctl_cmd_fail(rc, &err);
    } else {
        if (o->json) {
            ctl_view_workers_json(&w, &b);
        } else {
            ctl_view_workers_text(&w, &b);
        }
        ctl_cmd_emit(&b);
    }
    ctl_workers_release(&w);
    buf_release(&b);
    redislink_free(rl);
    return status;
}

static const struct ctl_command workers_command = {
    "workers",
    CTL_CMD_TOOL " workers",
    "every registered worker, its state and heartbeat age",
    "Every member of every worker set, stale ones too: type, state (idle, busy, or dead once\n"
    "its heartbeat is older than AGENT_WORKER_TIMEOUT), what it holds, heartbeat age.",
    workers_table,
    N_OF(workers_table),
    json_help_opt,
    CTL_ID_NONE,
    NULL,
    run_workers,
};

const struct ctl_command *
ctl_state_workers(void)
{
    return &workers_command;
}
