/* SPDX-License-Identifier: MIT
 * ctl_request: trigger and cancel. Both publish one message and wait for the event that
 * echoes its request_id; only the message and the words differ. */
#include "tools/researchctl/ctl_request.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "common/buf.h"
#include "common/cfg.h"
#include "common/clock.h"
#include "contract/fields.h"
#include "contract/limits.h"
#include "proto/json.h"
#include "tools/researchctl/ctl_cmd.h"
#include "tools/researchctl/ctl_event.h"
#include "tools/researchctl/ctl_fmt.h"
#include "common/redislink.h"
#include "contract/keys.h"
#include "tools/researchctl/ctl_bulk.h"
#include "tools/researchctl/ctl_follow.h"
#include "tools/researchctl/ctl_kafka.h"
#include "tools/researchctl/ctl_when.h"

enum rc_rc
ctl_request_id_opt(struct ctl_opts *o, const char *arg, struct rc_err *err)
{
    const char *id = NULL;
    enum rc_rc rc = ctl_cmd_id(arg, "--request-id", &id, err);
    if (rc == RC_OK) {
        snprintf(o->request_id, sizeof(o->request_id), "%s", id);
    }
    return rc;
}

void
ctl_request_default_id(struct ctl_opts *o, const char *kind)
{
    if (o->request_id[0] == '\0') {
        snprintf(o->request_id, sizeof(o->request_id), "%s-%" PRId64 "-%ld", kind, clock_now_ms(),
                 (long)getpid());
    }
}

int
ctl_request_send(const struct cfg *cfg, const struct ctl_opts *o, const struct ctl_request *rq,
                 struct msg *outcome_out)
{
    const struct ctl_kafka_request req = {rq->msg,
                                          TOPIC_TRIGGERS,
                                          rq->key,
                                          o->request_id,
                                          rq->outcomes,
                                          2,
                                          o->wait ? o->timeout_s * 1000 : 0};
    struct msg outcome = MSG_INIT;
    struct rc_err err = RC_ERR_INIT;
    enum rc_rc rc = ctl_kafka_request(&cfg->kafka, &req, &outcome, &err);
    if (rc != RC_OK) {
        return ctl_cmd_fail(rc, &err);
    }
    if (!o->wait) {
        const char *kind = msg_kind_name(rq->msg->kind);
        if (o->json) {
            printf("{\"request_id\":\"%s\",\"sent\":true}\n",
                   o->request_id); /* an id: no escapes */
        } else {
            printf("%c%s sent: %s\n", kind[0] - 'a' + 'A', kind + 1, o->request_id);
        }
        return RC_EXIT_OK;
    }
    if (o->json) {
        struct buf b = BUF_INIT;
        ctl_event_json(outcome.ts_ms, &outcome.u.event, &b);
        buf_putc(&b, '\n');
        ctl_cmd_emit(&b);
        buf_release(&b);
    } else {
        rq->say(&outcome.u.event);
        fflush(stdout);
    }
    int status = outcome.u.event.type == rq->ok_type ? RC_EXIT_OK : RC_EXIT_FAILURE;
    if (outcome_out != NULL) {
        *outcome_out = outcome;
    } else {
        msg_release(&outcome);
    }
    return status;
}

/* ---- trigger ------------------------------------------------------------------------------ */

enum trigger_opt {
    T_BRIEF,
    T_MODEL,
    T_STRATEGY,
    T_STRATEGY_PATH,
    T_BYPASS,
    T_FORCE,
    T_OPTIONS,
    T_REQUEST_ID,
    T_NO_WAIT,
    T_TIMEOUT,
    T_FOLLOW,
    T_JSON,
    T_HELP
};

static const struct toolopt trigger_table[] = {
    [T_BRIEF] = {"brief", "TEXT", "what to research (required)"},
    [T_MODEL] = {"model", "M", "model for the design and assessment workers"},
    [T_STRATEGY] = {"strategy", "S", "an existing strategy: skip design, start at training"},
    [T_STRATEGY_PATH] = {"strategy-path", "P", "where that strategy lives"},
    [T_BYPASS] = {"bypass-gates", NULL, "skip both quality gates"},
    [T_FORCE] = {"force", NULL, "accept even at capacity or with the budget spent"},
    [T_OPTIONS] =
        {"options", "JSON",
         "a JSON object handed unchanged to every phase's worker ({\"symbol\":\"BTCUSD\"})"},
    [T_REQUEST_ID] = {"request-id", "ID", "idempotency key (default: generated)"},
    [T_NO_WAIT] = {"no-wait", NULL, "publish and exit without waiting for the outcome"},
    [T_TIMEOUT] = {"timeout", "S", "seconds to wait for the outcome (default 30)"},
    [T_FOLLOW] = {"follow", NULL,
                  "then follow the research to its end (as `follow`; Ctrl+C offers to cancel it)"},
    [T_JSON] = {"json", NULL,
                "print the outcome event as one JSON object (with --follow, then the research)"},
    [T_HELP] = {"help", NULL, "show this help"},
};

/* --options as MessagePack: the trigger borrows it until the process ends (reachable, so no
 * leak to report). */
static struct buf trigger_options;

static enum rc_rc
options_opt(struct ctl_opts *o, const char *arg, struct rc_err *err)
{
    struct rc_err why = RC_ERR_INIT;
    buf_reset(&trigger_options);
    if (json_to_msgpack(arg, strlen(arg), &trigger_options, &why) != RC_OK) {
        return rc_err_set(err, RC_EINVAL, "--options: %s", why.msg);
    }
    /* fixmap, map 16, map 32 */
    const unsigned char first = (unsigned char)trigger_options.data[0];
    if (!((first & 0xf0) == 0x80 || first == 0xde || first == 0xdf)) {
        return rc_err_set(err, RC_EINVAL, "--options: must be a JSON object ({...})");
    }
    if (trigger_options.len > LIMITS_OPTIONS_MAX) {
        return rc_err_set(err, RC_EINVAL, "--options: longer than %d bytes as MessagePack",
                          LIMITS_OPTIONS_MAX);
    }
    o->t.options = trigger_options.data;
    o->t.options_len = trigger_options.len;
    return RC_OK;
}

static enum rc_rc
trigger_opt(void *ctx, size_t index, const char *arg, struct rc_err *err)
{
    struct ctl_opts *o = ctx;
    switch ((enum trigger_opt)index) {
    case T_BRIEF:
        o->t.brief = arg;
        break;
    case T_MODEL:
        o->t.model = arg;
        break;
    case T_STRATEGY:
        o->t.strategy = arg;
        break;
    case T_STRATEGY_PATH:
        o->t.strategy_path = arg;
        break;
    case T_BYPASS:
        o->t.bypass_gates = true;
        break;
    case T_FORCE:
        o->t.force = true;
        break;
    case T_OPTIONS:
        return options_opt(o, arg, err);
    case T_REQUEST_ID:
        return ctl_request_id_opt(o, arg, err);
    case T_NO_WAIT:
        o->wait = false;
        break;
    case T_TIMEOUT:
        return toolopt_int64(arg, 1, 3600, "--timeout", &o->timeout_s, err);
    case T_FOLLOW:
        o->follow = true;
        break;
    case T_JSON:
        o->json = true;
        break;
    case T_HELP:
        o->help = true;
        break;
    }
    return RC_OK;
}

static enum rc_rc
check_trigger(const struct ctl_opts *o, struct rc_err *err)
{
    if (o->t.brief == NULL || o->t.brief[0] == '\0') {
        return rc_err_set(err, RC_EINVAL, "--brief is required");
    }
    return RC_OK;
}

static void
say_trigger(const struct event *ev)
{
    char money[CTL_FMT_MAX];
    if (ev->type == EVENT_ACCEPTED) {
        printf("Research triggered: %s\n", ev->research_id);
    } else if (ev->reason != NULL && strcmp(ev->reason, REASON_AT_CAPACITY) == 0) {
        printf("Cannot trigger: at capacity (%" PRId64 " active researches, limit is %" PRId64
               ")\nHint: --force accepts it anyway.\n",
               ev->active_count, ev->limit);
    } else if (ev->reason != NULL && strcmp(ev->reason, REASON_BUDGET_EXHAUSTED) == 0) {
        ctl_fmt_money(ev->remaining, money);
        printf("Cannot trigger: daily budget exhausted (%s remaining)\n"
               "Hint: --force accepts it anyway.\n",
               money);
    } else {
        /* Words from the event: escaped, as everything read is (ctl_fmt.h). */
        struct buf b = BUF_INIT;
        buf_puts(&b, "Cannot trigger: ");
        ctl_fmt_text(&b, ev->reason != NULL ? ev->reason : "rejected");
        if (ev->message != NULL) {
            buf_puts(&b, ": ");
            ctl_fmt_text(&b, ev->message);
        }
        buf_putc(&b, '\n');
        ctl_cmd_emit(&b);
        buf_release(&b);
    }
}

/* After a budget refusal: the researches already running are not stopped by it. */
static void
say_active_will_complete(const struct cfg *cfg)
{
    struct redislink *rl = redislink_new(&cfg->redis);
    struct buf key = BUF_INIT;
    struct redislink_reply *r = NULL;
    const char *words[] = {"ZCARD", keys_active(&key, cfg->redis.key_prefix)};
    const struct redislink_cmd cmd = {2, words};
    if (redislink_query(rl, &cmd, 1, &r, NULL) == RC_OK && r[0].type == REDISLINK_INT) {
        printf("Active researches (%lld) will complete.\n", (long long)r[0].integer);
    }
    redislink_replies_free(r, r != NULL ? 1 : 0);
    buf_release(&key);
    redislink_free(rl);
}

int
ctl_request_run_trigger(const struct cfg *cfg, struct ctl_opts *o)
{
    ctl_request_default_id(o, "req");
    o->t.request_id = o->request_id;
    struct msg m = MSG_INIT;
    m.kind = MSG_TRIGGER;
    m.ts_ms = clock_now_ms();
    m.u.trigger = o->t;
    const struct ctl_request rq = {
        &m, o->request_id, {EVENT_ACCEPTED, EVENT_REJECTED}, EVENT_ACCEPTED, say_trigger};
    struct msg outcome = MSG_INIT;
    int status = ctl_request_send(cfg, o, &rq, o->wait ? &outcome : NULL);
    if (!o->wait || outcome.kind != MSG_EVENT) {
        return status;
    }
    const struct event *ev = &outcome.u.event;
    if (ev->type == EVENT_REJECTED && ev->reason != NULL && !o->json &&
        strcmp(ev->reason, REASON_BUDGET_EXHAUSTED) == 0) {
        say_active_will_complete(cfg);
    }
    if (ev->type == EVENT_ACCEPTED && o->follow && ev->research_id != NULL) {
        const struct ctl_follow how = {o->json, true};
        status = ctl_follow_research(cfg, ev->research_id, &how);
    }
    msg_release(&outcome);
    return status;
}

static enum rc_rc
check_trigger_follow(const struct ctl_opts *o, struct rc_err *err)
{
    enum rc_rc rc = check_trigger(o, err);
    if (rc == RC_OK && o->follow && !o->wait) {
        rc = rc_err_set(err, RC_EINVAL, "--follow needs the outcome: not with --no-wait");
    }
    return rc;
}

static const struct ctl_command trigger_command = {
    "trigger",
    CTL_CMD_TOOL " trigger",
    "publish a trigger and wait for its outcome",
    "Publish a trigger and wait for its outcome: \"Research triggered: <id>\" (exit 0) or\n"
    "\"Cannot trigger: <why>\" (exit 1).",
    trigger_table,
    N_OF(trigger_table),
    trigger_opt,
    CTL_ID_NONE,
    check_trigger_follow,
    ctl_request_run_trigger,
};

const struct ctl_command *
ctl_request_trigger(void)
{
    return &trigger_command;
}

/* ---- cancel ------------------------------------------------------------------------------- */

enum cancel_opt {
    C_REASON,
    C_REQUEST_ID,
    C_NO_WAIT,
    C_TIMEOUT,
    C_PHASE,
    C_OLDER_THAN,
    C_ALL,
    C_YES,
    C_JSON,
    C_HELP
};

static const struct toolopt cancel_table[] = {
    [C_REASON] = {"reason", "TEXT", "why (carried by the cancel message)"},
    [C_REQUEST_ID] = {"request-id", "ID",
                      "idempotency key (default: generated; one research only)"},
    [C_NO_WAIT] = {"no-wait", NULL, "publish and exit without waiting for the outcome"},
    [C_TIMEOUT] = {"timeout", "S", "seconds to wait for each outcome (default 30)"},
    [C_PHASE] = {"phase", "P",
                 "every active research whose phase field is P (pending, designing, "
                 "training, backtesting, assessing), waiting or running"},
    [C_OLDER_THAN] = {"older-than", "D", "every active research created more than D ago (15m, 2h)"},
    [C_ALL] = {"all", NULL, "every active research"},
    [C_YES] = {"yes", NULL, "do not ask before cancelling many (required when not on a terminal)"},
    [C_JSON] = {"json", NULL, "print the outcome event as one JSON object (one per line)"},
    [C_HELP] = {"help", NULL, "show this help"},
};

static enum rc_rc
cancel_opt(void *ctx, size_t index, const char *arg, struct rc_err *err)
{
    struct ctl_opts *o = ctx;
    switch ((enum cancel_opt)index) {
    case C_REASON:
        o->reason = arg;
        break;
    case C_REQUEST_ID:
        return ctl_request_id_opt(o, arg, err);
    case C_NO_WAIT:
        o->wait = false;
        break;
    case C_TIMEOUT:
        return toolopt_int64(arg, 1, 3600, "--timeout", &o->timeout_s, err);
    case C_PHASE:
        return ctl_bulk_phase_opt(arg, &o->phase, err);
    case C_OLDER_THAN:
        return ctl_when_duration(arg, "--older-than", &o->older_than_ms, err);
    case C_ALL:
        o->all = true;
        break;
    case C_YES:
        o->yes = true;
        break;
    case C_JSON:
        o->json = true;
        break;
    case C_HELP:
        o->help = true;
        break;
    }
    return RC_OK;
}

void
ctl_request_say_cancel(const struct event *ev)
{
    const char *id = ev->research_id != NULL ? ev->research_id : "?";
    if (ev->type == EVENT_CANCELLED) {
        printf("Research cancelled: %s\n", id);
    } else if (ev->reason != NULL && strcmp(ev->reason, REASON_NOT_FOUND) == 0) {
        printf("Cannot cancel %s: not found\n", id);
    } else if (ev->reason != NULL && strcmp(ev->reason, REASON_NOT_CANCELLABLE) == 0) {
        printf("Cannot cancel %s: already finished\n", id);
    } else {
        struct buf b = BUF_INIT;
        buf_printf(&b, "Cannot cancel %s: ", id);
        ctl_fmt_text(&b, ev->reason != NULL ? ev->reason : "rejected");
        buf_putc(&b, '\n');
        ctl_cmd_emit(&b);
        buf_release(&b);
    }
}

static int
run_cancel(const struct cfg *cfg, struct ctl_opts *o)
{
    if (ctl_bulk_is_bulk(o)) {
        return ctl_bulk_cancel(cfg, o);
    }
    ctl_request_default_id(o, "cancel");
    struct msg m = MSG_INIT;
    m.kind = MSG_CANCEL;
    m.ts_ms = clock_now_ms();
    m.u.cancel = (struct cancel){o->research_id, o->request_id, o->reason};
    const struct ctl_request rq = {&m,
                                   o->research_id,
                                   {EVENT_CANCELLED, EVENT_CANCEL_REJECTED},
                                   EVENT_CANCELLED,
                                   ctl_request_say_cancel};
    return ctl_request_send(cfg, o, &rq, NULL);
}

static const struct ctl_command cancel_command = {
    "cancel",
    CTL_CMD_TOOL " cancel <research_id> | - | --all | --phase P | --older-than D",
    "cancel a research, or many, and wait for the outcome",
    "Publish a cancel and wait for its outcome: \"Research cancelled: <id>\" (exit 0) or\n"
    "\"Cannot cancel <id>: not found | already finished\" (exit 1).\n"
    "Many at once: --all, --phase P, --older-than D (combined: all must hold) or `-` (ids on\n"
    "stdin, one a line, which the filters then narrow). It lists them (id, phase, age), asks\n"
    "\"Cancel N researches? [y/N]\" unless --yes (not on a terminal --yes is required), sends\n"
    "one cancel each and reports each outcome and the count: exit 0 when all were cancelled.\n"
    "--phase matches the phase field: a research waiting for a worker of the next phase still\n"
    "has the phase it finished last, and `status` shows it \"waiting for a worker\".",
    cancel_table,
    N_OF(cancel_table),
    cancel_opt,
    CTL_ID_OPTIONAL,
    ctl_bulk_check,
    run_cancel,
};

const struct ctl_command *
ctl_request_cancel(void)
{
    return &cancel_command;
}
