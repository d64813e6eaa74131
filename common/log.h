/* SPDX-License-Identifier: MIT
 * log: one logfmt line per event on stderr:
 *   ts=2026-11-23T22:08:15.123Z level=info src=loop.c:42 msg="cycle slow" cycle_ms=12
 * The level check happens before any formatting. */
#ifndef RC_LOG_H
#define RC_LOG_H

#include <stdbool.h>
#include <stddef.h>

#include "common/rc_err.h"

enum log_level { LOG_ERROR = 0, LOG_WARN, LOG_INFO, LOG_DEBUG };

/* The only mutable global besides the stop flag; set once at start-up. */
void log_set_level(enum log_level level);
bool log_enabled(enum log_level level);
/* Parse "error|warn|info|debug". RC_EINVAL otherwise; *out written only on success. */
enum rc_rc log_level_parse(const char *s, enum log_level *out);
const char *log_level_name(enum log_level level);

/* `msg` is a fixed human sentence (quoted on output); `kv_fmt` formats the rest of the line as
 * space-separated key=value pairs ("" when none). Callers quote values that may hold spaces. */
void log_write(enum log_level level, const char *file, int line, const char *msg,
               const char *kv_fmt, ...) RC_PRINTF(5, 6);

/* Write `s` into out (always NUL-terminated, cut to fit) with `"`, `\` and control characters
 * escaped, for a value the caller puts between quotes: log_warn("x", "reason=\"%s\"", q).
 * Returns out. */
const char *log_quote(const char *s, char *out, size_t out_len);

#define log_at(level, msg, ...)                                                                    \
    do {                                                                                           \
        if (log_enabled(level)) {                                                                  \
            log_write(level, __FILE__, __LINE__, msg, __VA_ARGS__);                                \
        }                                                                                          \
    } while (0)
#define log_error(msg, ...) log_at(LOG_ERROR, msg, __VA_ARGS__)
#define log_warn(msg, ...) log_at(LOG_WARN, msg, __VA_ARGS__)
#define log_info(msg, ...) log_at(LOG_INFO, msg, __VA_ARGS__)
#define log_debug(msg, ...) log_at(LOG_DEBUG, msg, __VA_ARGS__)

#endif /* RC_LOG_H */
