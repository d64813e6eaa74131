/* SPDX-License-Identifier: MIT
 * stopsig: a binary's stop request. SIGINT and SIGTERM set one flag that the binary's loop
 * reads; SIGPIPE is ignored, so a peer closing a socket gives EPIPE instead of killing us.
 * The one signal set-up of the daemon and the tools, and their only mutable global. */
#ifndef RC_STOPSIG_H
#define RC_STOPSIG_H

#include <signal.h>
#include <stdbool.h>
#include <stdint.h>

#include "common/rc_err.h"

/* Install the handlers. RC_ESYS when sigaction fails. */
enum rc_rc stopsig_install(struct rc_err *err);
/* True once SIGINT or SIGTERM arrived. */
bool stopsig_requested(void);
/* The flag itself, for code that takes one (loop_run). */
volatile sig_atomic_t *stopsig_flag(void);
/* Sleep up to ms, returning early on a stop request. */
void stopsig_nap_ms(int64_t ms);

#endif /* RC_STOPSIG_H */
