/* SPDX-License-Identifier: MIT
 * ctl_cmd: helpers shared by researchctl's commands. */
#include "tools/researchctl/ctl_cmd.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "common/buf.h"
#include "tools/researchctl/ctl_fmt.h"

int
ctl_cmd_exit_status(enum rc_rc rc)
{
    switch (rc) {
    case RC_OK:
        return RC_EXIT_OK;
    case RC_EUNAVAIL:
    case RC_EBACKEND:
    case RC_ESYS:
        return RC_EXIT_UNAVAILABLE;
    case RC_EINVAL:
        return RC_EXIT_CONFIG;
    default:
        return RC_EXIT_FAILURE;
    }
}

void
ctl_cmd_say(const char *msg)
{
    struct buf b = BUF_INIT;
    buf_puts(&b, CTL_CMD_TOOL ": ");
    ctl_fmt_text(&b, msg);
    buf_putc(&b, '\n');
    fputs(b.data, stderr);
    buf_release(&b);
}

int
ctl_cmd_fail(enum rc_rc rc, const struct rc_err *err)
{
    ctl_cmd_say(err->msg);
    return ctl_cmd_exit_status(rc);
}

void
ctl_cmd_emit(struct buf *b)
{
    if (b->len > 0) {
        fwrite(b->data, 1, b->len, stdout);
    }
    fflush(stdout);
    buf_reset(b);
}

enum rc_rc
ctl_cmd_id(const char *arg, const char *what, const char **out, struct rc_err *err)
{
    if (!limits_is_id(arg, strlen(arg))) {
        return rc_err_set(err, RC_EINVAL, "%s: '%s' is not 1-128 bytes of [A-Za-z0-9._:-]", what,
                          arg);
    }
    *out = arg;
    return RC_OK;
}
