/* SPDX-License-Identifier: MIT
 * ctl_retry: the retry command. The new trigger is published and reported by ctl_request,
 * exactly as `trigger` would: retry is a trigger whose words come from Redis. */
#include "tools/researchctl/ctl_retry.h"

#include <stdio.h>
#include <string.h>

#include "common/buf.h"
#include "common/cfg.h"
#include "common/redislink.h"
#include "contract/fields.h"
#include "proto/json.h"
#include "proto/msg.h"
#include "tools/researchctl/ctl_cmd.h"
#include "tools/researchctl/ctl_read.h"
#include "tools/researchctl/ctl_request.h"

enum rc_rc
ctl_retry_trigger(const struct ctl_research *r, struct trigger *t, struct buf *options,
                  struct rc_err *err)
{
    const char *brief = ctl_research_field(r, RF_BRIEF);
    if (brief == NULL) {
        return rc_err_set(err, RC_EINVAL, "research %s has no brief to trigger again",
                          ctl_research_field(r, RF_RESEARCH_ID));
    }
    const char *opts = ctl_research_field(r, RF_OPTIONS);
    buf_reset(options);
    if (opts != NULL) {
        struct rc_err why = RC_ERR_INIT;
        if (json_to_msgpack(opts, strlen(opts), options, &why) != RC_OK || options->len == 0 ||
            !(((unsigned char)options->data[0] & 0xf0) == 0x80 ||
              (unsigned char)options->data[0] == 0xde || (unsigned char)options->data[0] == 0xdf)) {
            return rc_err_set(err, RC_EINVAL, "its stored options are not a JSON object: %s",
                              why.msg[0] != '\0' ? why.msg : opts);
        }
    }
    const char *strategy = ctl_research_field(r, RF_STRATEGY_NAME);
    /* Design writes design.strategy_name; a research that started from a strategy has none. */
    bool from_strategy = strategy != NULL && ctl_research_get(r, "design.strategy_name") == NULL;
    const char *bypass = ctl_research_field(r, RF_BYPASS_GATES);
    t->brief = brief;
    t->model = ctl_research_field(r, RF_MODEL);
    t->strategy = from_strategy ? strategy : NULL;
    t->strategy_path = from_strategy ? ctl_research_field(r, RF_STRATEGY_PATH) : NULL;
    t->bypass_gates = bypass != NULL && strcmp(bypass, "1") == 0;
    t->options = opts != NULL ? options->data : NULL;
    t->options_len = opts != NULL ? options->len : 0;
    return RC_OK;
}

enum retry_opt { R_FORCE, R_FOLLOW, R_REQUEST_ID, R_NO_WAIT, R_TIMEOUT, R_JSON, R_HELP };

static const struct toolopt retry_table[] = {
    [R_FORCE] = {"force", NULL, "accept even at capacity or with the budget spent"},
    [R_FOLLOW] = {"follow", NULL, "then follow the new research to its end (as `follow`)"},
    [R_REQUEST_ID] = {"request-id", "ID", "idempotency key (default: generated)"},
    [R_NO_WAIT] = {"no-wait", NULL, "publish and exit without waiting for the outcome"},
    [R_TIMEOUT] = {"timeout", "S", "seconds to wait for the outcome (default 30)"},
    [R_JSON] = {"json", NULL, "print the outcome event as one JSON object"},
    [R_HELP] = {"help", NULL, "show this help"},
};

static enum rc_rc
retry_opt(void *ctx, size_t index, const char *arg, struct rc_err *err)
{
    struct ctl_opts *o = ctx;
    switch ((enum retry_opt)index) {
    case R_FORCE:
        o->t.force = true;
        break;
    case R_FOLLOW:
        o->follow = true;
        break;
    case R_REQUEST_ID:
        return ctl_request_id_opt(o, arg, err);
    case R_NO_WAIT:
        o->wait = false;
        break;
    case R_TIMEOUT:
        return toolopt_int64(arg, 1, 3600, "--timeout", &o->timeout_s, err);
    case R_JSON:
        o->json = true;
        break;
    case R_HELP:
        o->help = true;
        break;
    }
    return RC_OK;
}

static enum rc_rc
check_retry(const struct ctl_opts *o, struct rc_err *err)
{
    if (o->follow && !o->wait) {
        return rc_err_set(err, RC_EINVAL, "--follow needs the outcome: not with --no-wait");
    }
    return RC_OK;
}

static int
run_retry(const struct cfg *cfg, struct ctl_opts *o)
{
    struct redislink *rl = redislink_new(&cfg->redis);
    const struct ctl_source src = ctl_source_redis(rl, cfg->redis.key_prefix);
    struct ctl_research r = CTL_RESEARCH_INIT;
    struct buf options = BUF_INIT;
    struct rc_err err = RC_ERR_INIT;
    int status;

    enum rc_rc rc = ctl_read_research(&src, o->research_id, &r, &err);
    redislink_free(rl);
    if (rc == RC_OK) {
        rc = ctl_retry_trigger(&r, &o->t, &options, &err);
    }
    if (rc == RC_ENOTFOUND) {
        fprintf(stderr,
                CTL_CMD_TOOL ": no research %s (unknown, or expired after RESEARCH_RETENTION)\n",
                o->research_id);
        status = RC_EXIT_FAILURE;
    } else if (rc == RC_EINVAL) {
        ctl_cmd_say(err.msg);
        status = RC_EXIT_FAILURE;
    } else if (rc != RC_OK) {
        status = ctl_cmd_fail(rc, &err);
    } else {
        status = ctl_request_run_trigger(cfg, o);
    }
    buf_release(&options);
    ctl_research_release(&r);
    return status;
}

static const struct ctl_command retry_command = {
    "retry",
    CTL_CMD_TOOL " retry <research_id>",
    "trigger a research again with the same brief, model, strategy and options",
    "Trigger a new research with what <research_id> was asked to do: its brief, model,\n"
    "options and bypass_gates, and its strategy (and path) when it started from one. The\n"
    "outcome reads as trigger's: \"Research triggered: <new id>\" (exit 0) or \"Cannot\n"
    "trigger: ...\" (exit 1); exit 1 too when there is no such research.",
    retry_table,
    N_OF(retry_table),
    retry_opt,
    CTL_ID_REQUIRED,
    check_retry,
    run_retry,
};

const struct ctl_command *
ctl_retry_command(void)
{
    return &retry_command;
}
