/* SPDX-License-Identifier: MIT
 * rc_err: the project's one error convention. A function that can fail returns enum rc_rc
 * and fills a struct rc_err at the failing site; the caller decides and logs once. */
#ifndef RC_ERR_H
#define RC_ERR_H

#include <stdbool.h>

#if defined(__GNUC__)
#define RC_PRINTF(fmt_idx, args_idx) __attribute__((format(printf, fmt_idx, args_idx)))
#else
#define RC_PRINTF(fmt_idx, args_idx)
#endif

enum rc_rc {
    RC_OK = 0,
    RC_EINVAL,    /* bad argument or config: permanent */
    RC_EPROTO,    /* malformed/unsupported message: permanent */
    RC_ENOTFOUND, /* research or key absent */
    RC_ECONFLICT, /* state transition refused (or this instance is not the leader) */
    RC_EBACKEND,  /* Redis/Kafka answered with an unexpected error */
    RC_EUNAVAIL,  /* Redis/Kafka unreachable or timed out: retryable */
    RC_ESYS,      /* system call failed: see sys_errno */
};

struct rc_err {
    enum rc_rc rc;
    int sys_errno;
    int code; /* a finer reason, the setting module's (proto: enum msg_invalid); 0: none */
    char msg[256];
};

#define RC_ERR_INIT {RC_OK, 0, 0, {0}}

/* Fill `err` (when not NULL) with `rc` and the formatted message; return `rc`. */
enum rc_rc rc_err_set(struct rc_err *err, enum rc_rc rc, const char *fmt, ...) RC_PRINTF(3, 4);
/* Like rc_err_set with RC_ESYS, saving errno first and appending strerror. */
enum rc_rc rc_err_sys(struct rc_err *err, const char *fmt, ...) RC_PRINTF(2, 3);
/* rc_err_set with a finer reason in err->code, for callers that act on it (a label, a class)
 * without reading the message. */
enum rc_rc rc_err_coded(struct rc_err *err, enum rc_rc rc, int code, const char *fmt, ...)
    RC_PRINTF(4, 5);
/* The short name of a code ("EUNAVAIL"). */
const char *rc_rc_name(enum rc_rc rc);
/* True for failures worth retrying later (RC_EUNAVAIL). */
bool rc_rc_is_retryable(enum rc_rc rc);

/* Programmer errors: on in release builds too. */
#if defined(__GNUC__)
#define RC_NORETURN __attribute__((noreturn))
#else
#define RC_NORETURN _Noreturn
#endif
RC_NORETURN void rc_assert_fail(const char *expr, const char *file, int line);
#define RC_ASSERT(cond)                                                                            \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            rc_assert_fail(#cond, __FILE__, __LINE__);                                             \
        }                                                                                          \
    } while (0)

/* The element count of an array (not a pointer: that would be a programmer error). */
#define N_OF(a) (sizeof(a) / sizeof((a)[0]))

/* Process exit codes (sysexits-style); only main() exits. */
enum rc_exit {
    RC_EXIT_OK = 0,
    RC_EXIT_FAILURE = 1,
    RC_EXIT_USAGE = 64,
    RC_EXIT_UNAVAILABLE = 69,
    RC_EXIT_CONFIG = 78,
    RC_EXIT_INTERRUPTED = 130, /* 128 + SIGINT, as a shell reports it: researchctl follow */
};

#endif /* RC_ERR_H */
