/* SPDX-License-Identifier: MIT
 * rc_err: fills struct rc_err at the failing site and names the codes. Assertion failures log
 * one line and abort(), in release builds too. */
#include "common/rc_err.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"

static void set_msg(struct rc_err *err, const char *fmt, va_list ap) RC_PRINTF(2, 0);

static void
set_msg(struct rc_err *err, const char *fmt, va_list ap)
{
    /* Truncation is fine: the message is for humans. */
    int n = vsnprintf(err->msg, sizeof err->msg, fmt, ap);
    if (n < 0) {
        err->msg[0] = '\0';
    }
}

static enum rc_rc fill(struct rc_err *err, enum rc_rc rc, int code, const char *fmt, va_list ap)
    RC_PRINTF(4, 0);

static enum rc_rc
fill(struct rc_err *err, enum rc_rc rc, int code, const char *fmt, va_list ap)
{
    if (err != NULL) {
        err->rc = rc;
        err->sys_errno = 0;
        err->code = code;
        set_msg(err, fmt, ap);
    }
    return rc;
}

enum rc_rc
rc_err_set(struct rc_err *err, enum rc_rc rc, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fill(err, rc, 0, fmt, ap);
    va_end(ap);
    return rc;
}

enum rc_rc
rc_err_coded(struct rc_err *err, enum rc_rc rc, int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fill(err, rc, code, fmt, ap);
    va_end(ap);
    return rc;
}

enum rc_rc
rc_err_sys(struct rc_err *err, const char *fmt, ...)
{
    int saved = errno; /* anything below may clobber it */

    if (err == NULL) {
        return RC_ESYS;
    }
    va_list ap;
    va_start(ap, fmt);
    err->rc = RC_ESYS;
    err->sys_errno = saved;
    err->code = 0;
    set_msg(err, fmt, ap);
    va_end(ap);

    char reason[128];
    /* The XSI strerror_r (returns int): _POSIX_C_SOURCE is set and _GNU_SOURCE is not. */
    if (strerror_r(saved, reason, sizeof reason) != 0) {
        (void)snprintf(reason, sizeof reason, "errno %d", saved);
    }
    size_t len = strlen(err->msg);
    if (len < sizeof err->msg - 1) {
        (void)snprintf(err->msg + len, sizeof err->msg - len, ": %s", reason);
    }
    errno = saved;
    return RC_ESYS;
}

const char *
rc_rc_name(enum rc_rc rc)
{
    switch (rc) {
    case RC_OK:
        return "OK";
    case RC_EINVAL:
        return "EINVAL";
    case RC_EPROTO:
        return "EPROTO";
    case RC_ENOTFOUND:
        return "ENOTFOUND";
    case RC_ECONFLICT:
        return "ECONFLICT";
    case RC_EBACKEND:
        return "EBACKEND";
    case RC_EUNAVAIL:
        return "EUNAVAIL";
    case RC_ESYS:
        return "ESYS";
    }
    return "E?";
}

bool
rc_rc_is_retryable(enum rc_rc rc)
{
    return rc == RC_EUNAVAIL;
}

void
rc_assert_fail(const char *expr, const char *file, int line)
{
    char msg[512];

    (void)snprintf(msg, sizeof msg, "assertion failed: %s", expr);
    /* log_write escapes the message, so any expression text stays on one line. */
    log_write(LOG_ERROR, file, line, msg, "%s", "");
    abort();
}
