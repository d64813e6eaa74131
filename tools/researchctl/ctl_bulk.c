/* SPDX-License-Identifier: MIT
 * ctl_bulk: bulk cancel. The candidates (rc:active, or the ids on stdin) and their phase and
 * created_at are read in two round trips; the cancels are published in one batch and their
 * outcomes awaited together (one Kafka producer and one reader whatever their number), so
 * the report is the coordinator's word on each. */
#include "tools/researchctl/ctl_bulk.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/buf.h"
#include "common/cfg.h"
#include "common/clock.h"
#include "common/redislink.h"
#include "common/xalloc.h"
#include "contract/keys.h"
#include "contract/limits.h"
#include "contract/phase.h"
#include "proto/msg.h"
#include "tools/researchctl/ctl_cmd.h"
#include "tools/researchctl/ctl_event.h"
#include "tools/researchctl/ctl_fmt.h"
#include "tools/researchctl/ctl_kafka.h"
#include "tools/researchctl/ctl_pipe.h"
#include "tools/researchctl/ctl_prompt.h"
#include "tools/researchctl/ctl_request.h"

#define MAX_STDIN_IDS 100000

enum rc_rc
ctl_bulk_phase_opt(const char *arg, const char **out, struct rc_err *err)
{
    enum phase p;
    if (phase_parse(arg, &p) != RC_OK || phase_is_final(p)) {
        return rc_err_set(err, RC_EINVAL,
                          "--phase: '%s' is not one of pending, designing, training, backtesting, "
                          "assessing",
                          arg);
    }
    *out = arg;
    return RC_OK;
}

static bool
from_stdin(const struct ctl_opts *o)
{
    return o->research_id != NULL && strcmp(o->research_id, "-") == 0;
}

bool
ctl_bulk_is_bulk(const struct ctl_opts *o)
{
    return o->all || o->phase != NULL || o->older_than_ms > 0 || from_stdin(o);
}

enum rc_rc
ctl_bulk_check(const struct ctl_opts *o, struct rc_err *err)
{
    bool filters = o->all || o->phase != NULL || o->older_than_ms > 0;
    if (o->research_id == NULL && !filters) {
        return rc_err_set(err, RC_EINVAL,
                          "missing <research_id> (or - for ids on stdin, --all, --phase P, "
                          "--older-than D)");
    }
    if (o->research_id != NULL && !from_stdin(o) && filters) {
        return rc_err_set(err, RC_EINVAL,
                          "a <research_id> and --all/--phase/--older-than do not go together "
                          "(use - to read ids from stdin and narrow them)");
    }
    if (ctl_bulk_is_bulk(o) && o->request_id[0] != '\0') {
        return rc_err_set(err, RC_EINVAL,
                          "--request-id is for one research: each cancel of many gets its own");
    }
    return RC_OK;
}

bool
ctl_bulk_selects(const struct ctl_opts *o, const struct ctl_bulk_item *it, int64_t now_ms)
{
    if (o->phase != NULL && (it->phase == NULL || strcmp(it->phase, o->phase) != 0)) {
        return false;
    }
    if (o->older_than_ms > 0 &&
        (it->created_at_ms <= 0 || now_ms - it->created_at_ms < o->older_than_ms)) {
        return false;
    }
    return true;
}

/* ---- candidates ---------------------------------------------------------------------------- */

struct candidates {
    char **ids;
    size_t n;
    struct redislink_reply *hm; /* one HMGET phase created_at reply per id */
};

static void
candidates_release(struct candidates *c)
{
    for (size_t i = 0; i < c->n; i++) {
        free(c->ids[i]);
    }
    free(c->ids);
    redislink_replies_free(c->hm, c->n);
    memset(c, 0, sizeof(*c));
}

/* The ids on stdin, one a line (blank lines skipped). RC_EINVAL naming the line of a bad one. */
static enum rc_rc
read_stdin_ids(struct candidates *c, struct rc_err *err)
{
    char line[512];
    size_t cap = 0;
    for (size_t lineno = 1; fgets(line, sizeof(line), stdin) != NULL; lineno++) {
        line[strcspn(line, "\r\n")] = '\0';
        if (line[0] == '\0') {
            continue;
        }
        if (!limits_is_id(line, strlen(line)) || c->n >= MAX_STDIN_IDS) {
            return rc_err_set(err, RC_EINVAL,
                              "stdin line %zu: '%s' is not a research id (1-128 bytes of "
                              "[A-Za-z0-9._:-]; at most %d ids)",
                              lineno, line, MAX_STDIN_IDS);
        }
        if (c->n == cap) {
            cap = cap > 0 ? cap * 2 : 16;
            c->ids = xrealloc(c->ids, cap * sizeof(*c->ids));
        }
        c->ids[c->n++] = xstrdup(line);
    }
    return RC_OK;
}

static enum rc_rc
read_active_ids(struct redislink *rl, const char *prefix, struct candidates *c, struct rc_err *err)
{
    struct buf key = BUF_INIT;
    struct ctl_pipe p = CTL_PIPE_INIT;
    struct redislink_reply *r = NULL;
    ctl_pipe_zset(&p, keys_active(&key, prefix), false);
    enum rc_rc rc = redislink_query(rl, p.cmds, p.n, &r, err);
    if (rc == RC_OK) {
        rc = ctl_pipe_want_zset(&r[0], &p.cmds[0], err);
    }
    if (rc == RC_OK) {
        c->n = r[0].n_elements / 2;
        c->ids = xcalloc(c->n > 0 ? c->n : 1, sizeof(*c->ids));
        for (size_t i = 0; i < c->n; i++) {
            c->ids[i] = xstrdup(r[0].elements[2 * i].str);
        }
    }
    redislink_replies_free(r, r != NULL ? p.n : 0);
    ctl_pipe_release(&p);
    buf_release(&key);
    return rc;
}

/* phase and created_at of every candidate, one pipeline. */
static enum rc_rc
read_fields(struct redislink *rl, const char *prefix, struct candidates *c, struct rc_err *err)
{
    static const char *const fields[] = {"phase", "created_at", NULL};
    struct buf key = BUF_INIT;
    struct ctl_pipe p = CTL_PIPE_INIT;
    enum rc_rc rc = RC_OK;
    for (size_t i = 0; i < c->n; i++) {
        ctl_pipe_hmget(&p, keys_research(&key, prefix, c->ids[i]), fields);
    }
    if (p.n > 0) {
        rc = redislink_query(rl, p.cmds, p.n, &c->hm, err);
        for (size_t i = 0; rc == RC_OK && i < p.n; i++) {
            rc = ctl_pipe_want_array(&c->hm[i], &p.cmds[i], 1, 2, err);
        }
    }
    ctl_pipe_release(&p);
    buf_release(&key);
    return rc;
}

/* ---- cancelling ---------------------------------------------------------------------------- */

/* Report one outcome; true when it says cancelled. */
static bool
report(const struct ctl_opts *o, const char *id, const struct msg *outcome)
{
    if (outcome->kind != MSG_EVENT) {
        char why[LIMITS_ID_MAX + 96];
        snprintf(why, sizeof(why), "no outcome for the cancel of %s within %lld s", id,
                 (long long)o->timeout_s);
        ctl_cmd_say(why);
        return false;
    }
    if (o->json) {
        struct buf b = BUF_INIT;
        ctl_event_json(outcome->ts_ms, &outcome->u.event, &b);
        buf_putc(&b, '\n');
        ctl_cmd_emit(&b);
        buf_release(&b);
    } else {
        ctl_request_say_cancel(&outcome->u.event);
    }
    return outcome->u.event.type == EVENT_CANCELLED;
}

/* Send one cancel for each of ids[0..n), each with its own request id, in one batch, wait
 * for their outcomes together and report each. Returns how many were cancelled (without
 * waiting: sent), or -1 when they could not be published. */
static int64_t
cancel_all(const struct cfg *cfg, const struct ctl_opts *o, char **ids, size_t n)
{
    static const enum event_type outcomes_of[2] = {EVENT_CANCELLED, EVENT_CANCEL_REJECTED};
    struct msg *msgs = xcalloc(n, sizeof(*msgs));
    struct ctl_kafka_request *reqs = xcalloc(n, sizeof(*reqs));
    struct msg *outcomes = xcalloc(n, sizeof(*outcomes));
    char(*request_ids)[LIMITS_ID_MAX + 1] = xcalloc(n, sizeof(*request_ids));
    const int64_t now_ms = clock_now_ms();
    for (size_t i = 0; i < n; i++) {
        snprintf(request_ids[i], sizeof(request_ids[i]), "cancel-%" PRId64 "-%ld-%zu", now_ms,
                 (long)getpid(), i + 1);
        msgs[i] = (struct msg)MSG_INIT;
        msgs[i].kind = MSG_CANCEL;
        msgs[i].ts_ms = now_ms;
        msgs[i].u.cancel = (struct cancel){ids[i], request_ids[i], o->reason};
        reqs[i] = (struct ctl_kafka_request){
            &msgs[i], TOPIC_TRIGGERS, ids[i], request_ids[i], outcomes_of, 2, 0};
        outcomes[i] = (struct msg)MSG_INIT;
    }
    struct rc_err err = RC_ERR_INIT;
    int64_t n_done = 0;
    if (ctl_kafka_requests(&cfg->kafka, reqs, n, o->wait ? o->timeout_s * 1000 : 0, outcomes,
                           &err) != RC_OK) {
        ctl_cmd_say(err.msg);
        n_done = -1;
    }
    for (size_t i = 0; n_done >= 0 && i < n; i++) {
        if (!o->wait) {
            printf("Cancel sent: %s (%s)\n", ids[i], request_ids[i]);
            n_done++;
        } else {
            n_done += report(o, ids[i], &outcomes[i]);
        }
    }
    for (size_t i = 0; i < n; i++) {
        msg_release(&outcomes[i]);
    }
    free(request_ids);
    free(outcomes);
    free(reqs);
    free(msgs);
    return n_done;
}

/* List the selected (id, phase, age) on stdout. */
static void
list_selected(const struct candidates *c, const bool *sel, const struct ctl_bulk_item *items,
              size_t n_sel, int64_t now_ms)
{
    struct buf b = BUF_INIT;
    buf_printf(&b, "%zu research%s to cancel:\n", n_sel, n_sel == 1 ? "" : "es");
    for (size_t i = 0; i < c->n; i++) {
        if (!sel[i]) {
            continue;
        }
        char age[CTL_FMT_MAX] = "-";
        if (items[i].created_at_ms > 0) {
            ctl_fmt_duration(now_ms - items[i].created_at_ms, age);
        }
        buf_puts(&b, "  ");
        ctl_fmt_cell(&b, items[i].research_id, 30);
        buf_puts(&b, "  ");
        ctl_fmt_cell(&b, items[i].phase, 11);
        buf_printf(&b, "  %s old\n", age);
    }
    ctl_cmd_emit(&b);
    buf_release(&b);
}

int
ctl_bulk_cancel(const struct cfg *cfg, struct ctl_opts *o)
{
    struct redislink *rl = redislink_new(&cfg->redis);
    struct candidates c = {NULL, 0, NULL};
    struct rc_err err = RC_ERR_INIT;
    int status = RC_EXIT_OK;
    const int64_t now_ms = clock_now_ms();

    enum rc_rc rc = from_stdin(o) ? read_stdin_ids(&c, &err)
                                  : read_active_ids(rl, cfg->redis.key_prefix, &c, &err);
    if (rc == RC_EINVAL) {
        ctl_cmd_say(err.msg);
        candidates_release(&c);
        redislink_free(rl);
        return RC_EXIT_USAGE;
    }
    if (rc == RC_OK) {
        rc = read_fields(rl, cfg->redis.key_prefix, &c, &err);
    }
    redislink_free(rl);
    if (rc != RC_OK) {
        status = ctl_cmd_fail(rc, &err);
        candidates_release(&c);
        return status;
    }
    struct ctl_bulk_item *items = xcalloc(c.n > 0 ? c.n : 1, sizeof(*items));
    bool *sel = xcalloc(c.n > 0 ? c.n : 1, sizeof(*sel));
    char **phases = xcalloc(c.n > 0 ? c.n : 1, sizeof(*phases));
    size_t n_sel = 0;
    for (size_t i = 0; i < c.n; i++) {
        phases[i] = ctl_pipe_str(&c.hm[i].elements[0]);
        items[i] =
            (struct ctl_bulk_item){c.ids[i], phases[i], ctl_pipe_int(&c.hm[i].elements[1], 0)};
        sel[i] = ctl_bulk_selects(o, &items[i], now_ms);
        n_sel += sel[i];
    }
    if (n_sel == 0) {
        puts("No research to cancel.");
        goto out;
    }
    list_selected(&c, sel, items, n_sel, now_ms);
    if (!o->yes) {
        char question[64];
        snprintf(question, sizeof(question), "Cancel %zu research%s?", n_sel,
                 n_sel == 1 ? "" : "es");
        enum ctl_prompt_answer a = ctl_prompt_yes_no(question);
        if (a == CTL_PROMPT_NO_TTY) {
            ctl_cmd_say("not on a terminal: pass --yes to cancel without asking");
            status = RC_EXIT_USAGE;
            goto out;
        }
        if (a != CTL_PROMPT_YES) {
            puts("Nothing cancelled.");
            status = RC_EXIT_FAILURE;
            goto out;
        }
    }
    char **chosen = xcalloc(n_sel, sizeof(*chosen));
    for (size_t i = 0, k = 0; i < c.n; i++) {
        if (sel[i]) {
            chosen[k++] = c.ids[i];
        }
    }
    int64_t n_done = cancel_all(cfg, o, chosen, n_sel);
    free(chosen);
    if (n_done < 0) {
        status = RC_EXIT_UNAVAILABLE;
        goto out;
    }
    printf("%s %lld of %zu research%s.\n", o->wait ? "Cancelled" : "Sent cancels for",
           (long long)n_done, n_sel, n_sel == 1 ? "" : "es");
    status = (size_t)n_done == n_sel ? RC_EXIT_OK : RC_EXIT_FAILURE;
out:
    for (size_t i = 0; i < c.n; i++) {
        free(phases[i]);
    }
    free(phases);
    free(sel);
    free(items);
    candidates_release(&c);
    return status;
}
