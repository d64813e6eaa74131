/* SPDX-License-Identifier: MIT
 * rcw_signals: SIGINT and SIGTERM turned into rcw_stop by a thread that waits for them, so
 * that no signal handler runs inside librdkafka's or a handler's thread and nothing global is
 * needed. */
#include "worker/rcw.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <string.h>

static void
stop_set(sigset_t *set)
{
    sigemptyset(set);
    sigaddset(set, SIGINT);
    sigaddset(set, SIGTERM);
}

enum rc_rc
rcw_signals_block(struct rc_err *err)
{
    sigset_t set;
    struct sigaction ign;

    memset(&ign, 0, sizeof(ign));
    ign.sa_handler = SIG_IGN;
    sigemptyset(&ign.sa_mask);
    if (sigaction(SIGPIPE, &ign, NULL) != 0) {
        return rc_err_sys(err, "sigaction SIGPIPE");
    }
    stop_set(&set);
    int e = pthread_sigmask(SIG_BLOCK, &set, NULL);
    if (e != 0) {
        errno = e;
        return rc_err_sys(err, "pthread_sigmask");
    }
    return RC_OK;
}

void
rcw_signals_unblock(void)
{
    sigset_t set;
    struct sigaction dfl;

    stop_set(&set);
    (void)pthread_sigmask(SIG_UNBLOCK, &set, NULL);
    memset(&dfl, 0, sizeof(dfl));
    dfl.sa_handler = SIG_DFL;
    sigemptyset(&dfl.sa_mask);
    (void)sigaction(SIGPIPE, &dfl, NULL);
}

static void *
waiter(void *arg)
{
    struct rcw *w = arg;
    sigset_t set;
    int sig = 0;

    stop_set(&set);
    for (;;) {
        if (sigwait(&set, &sig) == 0) {
            rcw_stop(w); /* a second signal repeats it: harmless */
        }
    }
    return NULL;
}

enum rc_rc
rcw_signals_start(struct rcw *w, struct rc_err *err)
{
    pthread_t th;
    int e = pthread_create(&th, NULL, waiter, w);
    if (e != 0) {
        errno = e;
        return rc_err_sys(err, "pthread_create");
    }
    (void)pthread_detach(th); /* waits for signals until the process exits */
    return RC_OK;
}
