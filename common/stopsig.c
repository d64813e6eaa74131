/* SPDX-License-Identifier: MIT
 * stopsig: SIGINT/SIGTERM as a stop request, SIGPIPE ignored. */
#include "common/stopsig.h"

#include <errno.h>
#include <string.h>
#include <time.h>

static volatile sig_atomic_t stop_requested;

static void
on_stop(int sig)
{
    (void)sig;
    stop_requested = 1;
}

enum rc_rc
stopsig_install(struct rc_err *err)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sigemptyset(&sa.sa_mask);
    sa.sa_handler = on_stop;
    if (sigaction(SIGINT, &sa, NULL) != 0 || sigaction(SIGTERM, &sa, NULL) != 0) {
        return rc_err_sys(err, "sigaction");
    }
    sa.sa_handler = SIG_IGN;
    if (sigaction(SIGPIPE, &sa, NULL) != 0) {
        return rc_err_sys(err, "sigaction");
    }
    return RC_OK;
}

bool
stopsig_requested(void)
{
    return stop_requested != 0;
}

volatile sig_atomic_t *
stopsig_flag(void)
{
    return &stop_requested;
}

void
stopsig_nap_ms(int64_t ms)
{
    struct timespec ts = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000L};
    while (ms > 0 && !stop_requested && nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}
