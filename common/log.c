/* SPDX-License-Identifier: MIT
 * log: logfmt lines on stderr, each built in a stack buffer and written with one fwrite so
 * lines from several threads (librdkafka's) never interleave. Needs no heap. */
#include "common/log.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "common/clock.h"

#define LOG_LINE_MAX 4096 /* bytes per line, newline included; longer lines are truncated */
#define LOG_KV_MAX 3072   /* bytes of formatted key=value text before escaping */

/* Set once at start-up, before any thread exists. */
static enum log_level log_level_current = LOG_INFO;

static const char *const level_names[] = {"error", "warn", "info", "debug"};

void
log_set_level(enum log_level level)
{
    if (level >= LOG_ERROR && level <= LOG_DEBUG) {
        log_level_current = level;
    }
}

bool
log_enabled(enum log_level level)
{
    return level <= log_level_current;
}

enum rc_rc
log_level_parse(const char *s, enum log_level *out)
{
    if (s == NULL) {
        return RC_EINVAL;
    }
    for (size_t i = 0; i < N_OF(level_names); i++) {
        if (strcasecmp(s, level_names[i]) == 0) {
            *out = (enum log_level)i;
            return RC_OK;
        }
    }
    return RC_EINVAL;
}

const char *
log_level_name(enum log_level level)
{
    if (level >= LOG_ERROR && level <= LOG_DEBUG) {
        return level_names[level];
    }
    return "unknown";
}

/* A bounded line: `cap` excludes room the caller keeps back (the final newline). */
struct line {
    char *data;
    size_t len;
    size_t cap;
};

/* Append all of s[0..n) or nothing, so an escape sequence is never cut in half. */
static bool
line_put(struct line *ln, const char *s, size_t n)
{
    if (n > ln->cap - ln->len) {
        return false;
    }
    memcpy(ln->data + ln->len, s, n);
    ln->len += n;
    return true;
}

/* The escape sequence for `c`, or NULL to copy it as is: control characters always, and `"`
 * and `\` too when `quoted` (inside msg="..."). `spare` holds a \u00XX form. */
static const char *
escape_of(unsigned char c, bool quoted, char spare[8])
{
    switch (c) {
    case '\n':
        return "\\n";
    case '\r':
        return "\\r";
    case '\t':
        return "\\t";
    case '"':
        return quoted ? "\\\"" : NULL;
    case '\\':
        return quoted ? "\\\\" : NULL;
    default:
        break;
    }
    if (c < 0x20 || c == 0x7f) {
        (void)snprintf(spare, 8, "\\u%04x", (unsigned)c);
        return spare;
    }
    return NULL;
}

/* Append `s` escaped; stops at the first piece that does not fit. */
static void
line_put_escaped(struct line *ln, const char *s, bool quoted)
{
    char spare[8];

    for (const char *p = s; *p != '\0'; p++) {
        const char *esc = escape_of((unsigned char)*p, quoted, spare);
        bool fits = esc != NULL ? line_put(ln, esc, strlen(esc)) : line_put(ln, p, 1);
        if (!fits) {
            return;
        }
    }
}

const char *
log_quote(const char *s, char *out, size_t out_len)
{
    if (out_len == 0) {
        return out;
    }
    struct line ln = {.data = out, .len = 0, .cap = out_len - 1};
    line_put_escaped(&ln, s != NULL ? s : "", true);
    out[ln.len] = '\0';
    return out;
}

static const char *
base_name(const char *path)
{
    const char *slash = strrchr(path, '/');
    return slash != NULL ? slash + 1 : path;
}

void
log_write(enum log_level level, const char *file, int line, const char *msg, const char *kv_fmt,
          ...)
{
    if (!log_enabled(level)) {
        return;
    }
    int saved_errno = errno; /* callers may log and then still look at errno */
    char out[LOG_LINE_MAX];
    struct line ln = {out, 0, sizeof out - 1}; /* keep one byte for the newline */
    char ts[25];

    clock_rfc3339(clock_now_ms(), ts);
    int n = snprintf(out, ln.cap, "ts=%s level=%s src=%s:%d msg=\"", ts, log_level_name(level),
                     base_name(file != NULL ? file : "?"), line);
    if (n < 0) {
        n = 0;
    }
    ln.len = (size_t)n < ln.cap ? (size_t)n : ln.cap - 1;

    /* Keep one byte back for the closing quote so msg="..." always closes. */
    if (ln.len < ln.cap) {
        ln.cap--;
        line_put_escaped(&ln, msg != NULL ? msg : "", true);
        ln.cap++;
        (void)line_put(&ln, "\"", 1);
    }

    if (kv_fmt != NULL && kv_fmt[0] != '\0') {
        char kv[LOG_KV_MAX];
        va_list ap;

        va_start(ap, kv_fmt);
        int kn = vsnprintf(kv, sizeof kv, kv_fmt, ap);
        va_end(ap);
        if (kn > 0 && line_put(&ln, " ", 1)) {
            line_put_escaped(&ln, kv, false);
        }
    }
    out[ln.len++] = '\n';
    (void)fwrite(out, 1, ln.len, stderr);
    errno = saved_errno;
}
