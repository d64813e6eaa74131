/* SPDX-License-Identifier: MIT
 * ctl_follow: the follow loop. Each round reads the research hash and, when it names a
 * worker, that worker's heartbeat (progress and step count only while the heartbeat names
 * this research): two small round trips every POLL_MS. */
#include "tools/researchctl/ctl_follow.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "common/buf.h"
#include "common/cfg.h"
#include "common/clock.h"
#include "common/num.h"
#include "common/redislink.h"
#include "common/stopsig.h"
#include "contract/fields.h"
#include "contract/keys.h"
#include "tools/researchctl/ctl_cmd.h"
#include "tools/researchctl/ctl_fmt.h"
#include "tools/researchctl/ctl_kafka.h"
#include "tools/researchctl/ctl_pipe.h"
#include "tools/researchctl/ctl_prompt.h"
#include "tools/researchctl/ctl_read.h"
#include "tools/researchctl/ctl_request.h"
#include "tools/researchctl/ctl_summary.h"
#include "tools/researchctl/ctl_view_research.h"

#define POLL_MS 500
#define RETRY_MS 1000
#define CANCEL_TIMEOUT_MS 30000

/* What the heartbeat of r's worker says about r. */
struct beat {
    bool has_progress;
    double progress;
    char *step;
};

static void
read_beat(struct redislink *rl, const char *prefix, const char *research_id, const char *worker_id,
          struct beat *b)
{
    static const char *const fields[] = {HB_RESEARCH_ID, HB_PROGRESS, HB_STEP, NULL};
    struct buf key = BUF_INIT;
    struct ctl_pipe p = CTL_PIPE_INIT;
    struct redislink_reply *r = NULL;
    memset(b, 0, sizeof(*b));
    ctl_pipe_hmget(&p, keys_worker(&key, prefix, worker_id), fields);
    /* Shown only: a heartbeat that cannot be read is simply not shown. */
    if (redislink_query(rl, p.cmds, p.n, &r, NULL) == RC_OK &&
        ctl_pipe_want_array(&r[0], &p.cmds[0], 1, 3, NULL) == RC_OK &&
        r[0].elements[0].type == REDISLINK_STR && strcmp(r[0].elements[0].str, research_id) == 0) {
        const struct redislink_reply *pr = &r[0].elements[1];
        double v = 0;
        b->has_progress =
            pr->type == REDISLINK_STR && num_parse_f64(pr->str, pr->len, &v) && v >= 0 && v <= 1;
        b->progress = b->has_progress ? v : 0;
        b->step = ctl_pipe_str(&r[0].elements[2]);
    }
    redislink_replies_free(r, r != NULL ? p.n : 0);
    ctl_pipe_release(&p);
    buf_release(&key);
}

/* The state of one follow. */
struct follow {
    const struct cfg *cfg;
    const char *research_id;
    const struct ctl_follow *how;
    struct redislink *rl;
    bool tty;        /* redraw in place */
    bool drawn;      /* a line is on screen without its newline */
    bool lost;       /* Redis was lost and not yet found again */
    struct buf last; /* the last line printed (without elapsed), for non-terminals */
};

/* End the line being redrawn, so that what follows starts on a line of its own. */
static void
end_line(struct follow *f)
{
    if (f->drawn) {
        fputs("\n", stdout);
        fflush(stdout);
        f->drawn = false;
    }
}

static void
show_progress(struct follow *f, const struct ctl_research *r)
{
    if (f->how->json) {
        return; /* --json prints the end only */
    }
    const char *worker = ctl_research_field(r, RF_WORKER_ID);
    struct beat b = {false, 0, NULL};
    if (worker != NULL) {
        read_beat(f->rl, f->cfg->redis.key_prefix, f->research_id, worker, &b);
    }
    int64_t created = 0;
    const char *c = ctl_research_field(r, RF_CREATED_AT);
    int64_t now = clock_now_ms();
    const struct ctl_summary_view v = {
        f->research_id,
        ctl_research_field(r, RF_PHASE),
        ctl_research_field(r, RF_ATTEMPT),
        worker,
        ctl_research_field(r, RF_WAITING_SINCE) != NULL,
        b.has_progress,
        b.progress,
        b.step,
        c != NULL && ctl_fmt_parse_int(c, &created) && now > created ? now - created : 0};
    struct buf line = BUF_INIT;
    if (f->tty) {
        buf_puts(&line, "\r\033[2K");
        ctl_summary_line(&v, true, &line);
        /* A line longer than the terminal wraps, and \r would then redraw only its end. */
        struct winsize ws;
        size_t max = ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 1
                         ? strlen("\r\033[2K") + ws.ws_col - 1
                         : line.len;
        while (max < line.len && ((unsigned char)line.data[max] & 0xc0) == 0x80) {
            max--; /* not inside a UTF-8 sequence */
        }
        if (line.len > max) {
            line.len = max;
            line.data[max] = '\0';
        }
        ctl_cmd_emit(&line);
        f->drawn = true;
    } else {
        ctl_summary_line(&v, false, &line);
        if (f->last.data == NULL || strcmp(f->last.data, line.data) != 0) {
            buf_reset(&f->last);
            buf_append(&f->last, line.data, line.len);
            buf_putc(&line, '\n');
            ctl_cmd_emit(&line);
        }
    }
    buf_release(&line);
    free(b.step);
}

static int
finish(struct follow *f, const struct ctl_research *r)
{
    struct buf b = BUF_INIT;
    end_line(f);
    if (f->how->json) {
        ctl_view_research_json(r, &b);
    } else {
        ctl_summary_text(r, clock_now_ms(), &b);
    }
    ctl_cmd_emit(&b);
    buf_release(&b);
    const char *status = ctl_research_field(r, RF_STATUS);
    return status != NULL && strcmp(status, "completed") == 0 ? RC_EXIT_OK : RC_EXIT_FAILURE;
}

/* Ctrl+C: detach, or (trigger --follow, on a terminal) cancel when the operator says so. */
static int
interrupted(struct follow *f)
{
    end_line(f);
    if (f->how->offer_cancel) {
        char question[LIMITS_ID_MAX + 32];
        snprintf(question, sizeof(question), "Cancel research %s?", f->research_id);
        if (ctl_prompt_yes_no(question) == CTL_PROMPT_YES) {
            char request_id[LIMITS_ID_MAX + 1];
            snprintf(request_id, sizeof(request_id), "cancel-%" PRId64 "-%ld", clock_now_ms(),
                     (long)getpid());
            struct msg m = MSG_INIT;
            m.kind = MSG_CANCEL;
            m.ts_ms = clock_now_ms();
            m.u.cancel = (struct cancel){f->research_id, request_id, "interrupted while followed"};
            const enum event_type outcomes[2] = {EVENT_CANCELLED, EVENT_CANCEL_REJECTED};
            const struct ctl_kafka_request req = {
                &m, TOPIC_TRIGGERS, f->research_id, request_id, outcomes, 2, CANCEL_TIMEOUT_MS};
            struct msg outcome = MSG_INIT;
            struct rc_err err = RC_ERR_INIT;
            enum rc_rc rc = ctl_kafka_request(&f->cfg->kafka, &req, &outcome, &err);
            if (rc != RC_OK) {
                return ctl_cmd_fail(rc, &err);
            }
            ctl_request_say_cancel(&outcome.u.event);
            msg_release(&outcome);
            return RC_EXIT_FAILURE;
        }
    }
    ctl_cmd_say("detached; the research goes on");
    return RC_EXIT_INTERRUPTED;
}

int
ctl_follow_research(const struct cfg *cfg, const char *research_id, const struct ctl_follow *how)
{
    struct follow f = {
        cfg,   research_id, how,     redislink_new(&cfg->redis), ctl_prompt_is_tty() && !how->json,
        false, false,       BUF_INIT};
    const struct ctl_source src = ctl_source_redis(f.rl, cfg->redis.key_prefix);
    int status = RC_EXIT_OK;

    (void)stopsig_install(NULL);
    for (;;) {
        if (stopsig_requested()) {
            status = interrupted(&f);
            break;
        }
        struct ctl_research r = CTL_RESEARCH_INIT;
        struct rc_err err = RC_ERR_INIT;
        enum rc_rc rc = ctl_read_research(&src, research_id, &r, &err);
        if (rc == RC_ENOTFOUND) {
            end_line(&f);
            fprintf(stderr,
                    CTL_CMD_TOOL
                    ": no research %s (unknown, or expired after RESEARCH_RETENTION)\n",
                    research_id);
            status = RC_EXIT_UNAVAILABLE;
            break;
        }
        if (rc != RC_OK) {
            if (!f.lost) {
                end_line(&f);
                ctl_cmd_say("lost the connection to Redis; retrying");
                f.lost = true;
            }
            stopsig_nap_ms(RETRY_MS);
            redislink_drop(f.rl); /* retry every second, not at redislink's backoff */
            continue;
        }
        if (f.lost) {
            end_line(&f);
            ctl_cmd_say("reconnected");
            f.lost = false;
        }
        const char *st = ctl_research_field(&r, RF_STATUS);
        if (st != NULL && strcmp(st, STATUS_RUNNING) != 0) {
            status = finish(&f, &r);
            ctl_research_release(&r);
            break;
        }
        show_progress(&f, &r);
        ctl_research_release(&r);
        stopsig_nap_ms(POLL_MS);
    }
    buf_release(&f.last);
    redislink_free(f.rl);
    return status;
}

/* ---- the command ---------------------------------------------------------------------------- */

static const struct toolopt follow_table[] = {
    {"json", NULL, "print only the finished research, as one JSON object (as show --json)"},
    {"help", NULL, "show this help"},
};

static enum rc_rc
follow_opt(void *ctx, size_t index, const char *arg, struct rc_err *err)
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

static int
run_follow(const struct cfg *cfg, struct ctl_opts *o)
{
    const struct ctl_follow how = {o->json, false};
    return ctl_follow_research(cfg, o->research_id, &how);
}

static const struct ctl_command follow_command = {
    "follow",
    CTL_CMD_TOOL " follow <research_id>",
    "watch one research to its end, then summarise it",
    "Watch one research until it finishes: on a terminal one status line redrawn in place\n"
    "(phase, attempt, worker, progress, step, elapsed), otherwise a line whenever something\n"
    "changes; then a summary: status, strategy, verdict, gate rejection, the backtest's\n"
    "Sharpe, win rate and max drawdown, cost, total and per-phase durations. Ctrl+C detaches\n"
    "(exit 130; the research goes on). A lost Redis connection is retried every second.\n"
    "Exit 0 completed, 1 failed or cancelled, 69 no such research.",
    follow_table,
    N_OF(follow_table),
    follow_opt,
    CTL_ID_REQUIRED,
    NULL,
    run_follow,
};

const struct ctl_command *
ctl_follow_command(void)
{
    return &follow_command;
}
