/* SPDX-License-Identifier: MIT
 * ctl_resume: the resume command, published and waited for as cancel is. */
#include "tools/researchctl/ctl_resume.h"

#include <stdio.h>
#include <string.h>

#include "common/buf.h"
#include "common/clock.h"
#include "contract/fields.h"
#include "proto/msg.h"
#include "tools/researchctl/ctl_cmd.h"
#include "tools/researchctl/ctl_fmt.h"
#include "tools/researchctl/ctl_request.h"

void
ctl_resume_msg(const struct ctl_opts *o, int64_t ts_ms, struct msg *m)
{
    *m = (struct msg)MSG_INIT;
    m->kind = MSG_RESUME;
    m->ts_ms = ts_ms;
    m->u.resume = (struct resume){o->research_id, o->request_id, o->reason, o->force};
}

enum resume_opt { U_FORCE, U_REASON, U_REQUEST_ID, U_NO_WAIT, U_TIMEOUT, U_JSON, U_HELP };

static const struct toolopt resume_table[] = {
    [U_FORCE] = {"force", NULL, "accept even at capacity"},
    [U_REASON] = {"reason", "TEXT", "why (carried by the resume message)"},
    [U_REQUEST_ID] = {"request-id", "ID", "idempotency key (default: generated)"},
    [U_NO_WAIT] = {"no-wait", NULL, "publish and exit without waiting for the outcome"},
    [U_TIMEOUT] = {"timeout", "S", "seconds to wait for the outcome (default 30)"},
    [U_JSON] = {"json", NULL, "print the outcome event as one JSON object"},
    [U_HELP] = {"help", NULL, "show this help"},
};

static enum rc_rc
resume_opt(void *ctx, size_t index, const char *arg, struct rc_err *err)
{
    struct ctl_opts *o = ctx;
    switch ((enum resume_opt)index) {
    case U_FORCE:
        o->force = true;
        break;
    case U_REASON:
        o->reason = arg;
        break;
    case U_REQUEST_ID:
        return ctl_request_id_opt(o, arg, err);
    case U_NO_WAIT:
        o->wait = false;
        break;
    case U_TIMEOUT:
        return toolopt_int64(arg, 1, 3600, "--timeout", &o->timeout_s, err);
    case U_JSON:
        o->json = true;
        break;
    case U_HELP:
        o->help = true;
        break;
    }
    return RC_OK;
}

static void
say_resume(const struct event *ev)
{
    const char *id = ev->research_id != NULL ? ev->research_id : "?";
    struct buf b = BUF_INIT;
    if (ev->type == EVENT_RESUMED) {
        buf_printf(&b, "Research resumed: %s (at %s)\n", id, phase_name(ev->phase));
    } else if (ev->reason != NULL && strcmp(ev->reason, REASON_NOT_FOUND) == 0) {
        buf_printf(&b, "Cannot resume %s: not found\n", id);
    } else if (ev->reason != NULL && strcmp(ev->reason, REASON_NOT_RESUMABLE) == 0) {
        buf_printf(&b, "Cannot resume %s: not resumable (completed, or still active)\n", id);
    } else if (ev->reason != NULL && strcmp(ev->reason, REASON_AT_CAPACITY) == 0) {
        buf_printf(&b, "Cannot resume %s: at capacity\nHint: --force accepts it anyway.\n", id);
    } else {
        buf_printf(&b, "Cannot resume %s: ", id);
        ctl_fmt_text(&b, ev->reason != NULL ? ev->reason : "rejected");
        buf_putc(&b, '\n');
    }
    ctl_cmd_emit(&b);
    buf_release(&b);
}

static int
run_resume(const struct cfg *cfg, struct ctl_opts *o)
{
    ctl_request_default_id(o, "resume");
    struct msg m;
    ctl_resume_msg(o, clock_now_ms(), &m);
    const struct ctl_request rq = {
        &m, o->research_id, {EVENT_RESUMED, EVENT_RESUME_REJECTED}, EVENT_RESUMED, say_resume};
    return ctl_request_send(cfg, o, &rq, NULL);
}

static const struct ctl_command resume_command = {
    "resume",
    CTL_CMD_TOOL " resume <research_id>",
    "re-open a failed or cancelled research where it stopped",
    "Ask the coordinator to re-open a failed or cancelled research (still within\n"
    "RESEARCH_RETENTION) at the phase it stopped in, keeping the earlier phases' results, and\n"
    "wait for the outcome: \"Research resumed: <id> (at <phase>)\" (exit 0) or \"Cannot resume\n"
    "<id>: not found | not resumable | at capacity\" (exit 1).",
    resume_table,
    N_OF(resume_table),
    resume_opt,
    CTL_ID_REQUIRED,
    NULL,
    run_resume,
};

const struct ctl_command *
ctl_resume_command(void)
{
    return &resume_command;
}
