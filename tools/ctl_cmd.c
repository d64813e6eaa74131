/* SPDX-License-Identifier: MIT
 * ctl_cmd: helpers shared by researchctl's commands. The stop flag is the one mutable global
 * (STYLE §11), set only by the signal handler. */
#include "tools/ctl_cmd.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "common/buf.h"

static volatile sig_atomic_t stop_requested;

static void
on_stop_signal(int sig)
{
    (void)sig;
    stop_requested = 1;
}

void
ctl_cmd_catch_stop(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_stop_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
}

bool
ctl_cmd_stopped(void)
{
    return stop_requested != 0;
}

void
ctl_cmd_nap_ms(int64_t ms)
{
    struct timespec ts = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000L};
    while (!stop_requested && nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

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

int
ctl_cmd_fail(enum rc_rc rc, const struct rc_err *err)
{
    fprintf(stderr, CTL_CMD_TOOL ": %s\n", err->msg);
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
