/* SPDX-License-Identifier: MIT
 * ctl_fmt: formatting and parsing of figures for researchctl. */
#include "tools/researchctl/ctl_fmt.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "common/clock.h"
#include "common/num.h"
#include "tools/researchctl/ctl_json.h"

#define MS_PER_MINUTE 60000LL
#define MS_PER_HOUR (60 * MS_PER_MINUTE)
#define MS_PER_DAY (24 * MS_PER_HOUR)

void
ctl_fmt_duration(int64_t ms, char out[CTL_FMT_MAX])
{
    long long v = ms > 0 ? (long long)ms : 0;

    if (v < MS_PER_HOUR) {
        snprintf(out, CTL_FMT_MAX, "%lldm %02llds", v / MS_PER_MINUTE, v % MS_PER_MINUTE / 1000);
    } else if (v < MS_PER_DAY) {
        snprintf(out, CTL_FMT_MAX, "%lldh %02lldm", v / MS_PER_HOUR,
                 v % MS_PER_HOUR / MS_PER_MINUTE);
    } else {
        snprintf(out, CTL_FMT_MAX, "%lldd %02lldh", v / MS_PER_DAY, v % MS_PER_DAY / MS_PER_HOUR);
    }
}

void
ctl_fmt_age(int64_t ms, char out[CTL_FMT_MAX])
{
    long long v = ms > 0 ? (long long)ms : 0;

    if (v < MS_PER_MINUTE) {
        /* Tenths, truncated, so 59.99 s never reads as "60.0 s". */
        snprintf(out, CTL_FMT_MAX, "%lld.%lld s", v / 1000, v % 1000 / 100);
        return;
    }
    ctl_fmt_duration(ms, out);
}

void
ctl_fmt_money(double usd, char out[CTL_FMT_MAX])
{
    if (!isfinite(usd) || fabs(usd) >= 1e15) {
        snprintf(out, CTL_FMT_MAX, "$?");
        return;
    }
    /* Round to whole cents first, so the sign is that of what is printed. */
    long long cents = llround(usd * 100.0);
    long long abs_cents = cents < 0 ? -cents : cents;
    snprintf(out, CTL_FMT_MAX, "%s$%lld.%02lld", cents < 0 ? "-" : "", abs_cents / 100,
             abs_cents % 100);
}

void
ctl_fmt_utc(int64_t unix_ms, char out[CTL_FMT_MAX])
{
    char text[25];
    clock_rfc3339(unix_ms, text);
    snprintf(out, CTL_FMT_MAX, "%s", text);
}

void
ctl_fmt_when(int64_t unix_ms, int64_t now_ms, struct buf *out)
{
    char at[CTL_FMT_MAX];
    char ago[CTL_FMT_MAX];

    ctl_fmt_utc(unix_ms, at);
    ctl_fmt_duration(now_ms - unix_ms, ago);
    buf_printf(out, "%s (%s ago)", at, ago);
}

/* How many bytes of s[0..left) (left >= 1) form a character that may reach a terminal as it
 * is: a printable ASCII byte or a valid UTF-8 sequence other than a C1 control; 0 when the
 * byte at s must be escaped. */
static size_t
printable_len(const char *s, size_t left)
{
    unsigned char c = (unsigned char)s[0];
    if (c < 0x80) {
        return c >= 0x20 && c != 0x7f ? 1 : 0;
    }
    size_t n = ctl_json_utf8_len(s, left);
    /* U+0080..U+009F are 0xC2 0x80..0x9F; some terminals act on them (U+009B is CSI). */
    if (n == 2 && c == 0xc2 && (unsigned char)s[1] < 0xa0) {
        return 0;
    }
    return n;
}

/* Append s[0..len) escaped as the header says; `quoted` (inside ctl_fmt_value's quotes) also
 * escapes '"' and '\\'. Runs of printable text are appended whole. */
static void
escape(struct buf *out, const char *s, size_t len, bool quoted)
{
    size_t run = 0; /* start of the printable run not yet appended */
    size_t i = 0;
    while (i < len) {
        unsigned char c = (unsigned char)s[i];
        size_t n = printable_len(s + i, len - i);
        if (n > 0 && !(quoted && (c == '"' || c == '\\'))) {
            i += n;
            continue;
        }
        buf_append(out, s + run, i - run);
        if (n > 0) {
            buf_putc(out, '\\');
            buf_putc(out, (char)c);
        } else if (c == '\n') {
            buf_puts(out, "\\n");
        } else if (c == '\r') {
            buf_puts(out, "\\r");
        } else if (c == '\t') {
            buf_puts(out, "\\t");
        } else {
            buf_printf(out, "\\x%02x", (unsigned)c);
        }
        i++;
        run = i;
    }
    buf_append(out, s + run, i - run);
}

void
ctl_fmt_text(struct buf *out, const char *s)
{
    if (s == NULL) {
        buf_putc(out, '-');
        return;
    }
    escape(out, s, strlen(s), false);
}

size_t
ctl_fmt_text_len(const char *s)
{
    struct buf b = BUF_INIT;
    ctl_fmt_text(&b, s);
    size_t n = b.len;
    buf_release(&b);
    return n;
}

void
ctl_fmt_cell(struct buf *out, const char *s, size_t width)
{
    size_t start = out->len;
    ctl_fmt_text(out, s);
    for (size_t n = out->len - start; n < width; n++) {
        buf_putc(out, ' ');
    }
}

void
ctl_fmt_value(struct buf *out, const char *s)
{
    if (s == NULL) {
        buf_putc(out, '-');
        return;
    }
    size_t len = strlen(s);
    bool plain = len > 0 && strcmp(s, "-") != 0;
    for (size_t i = 0; plain && i < len;) {
        size_t n = printable_len(s + i, len - i);
        plain = n > 0 && strchr(" \"\\=", s[i]) == NULL;
        i += n;
    }
    if (plain) {
        buf_append(out, s, len);
        return;
    }
    buf_putc(out, '"');
    escape(out, s, len, true);
    buf_putc(out, '"');
}

bool
ctl_fmt_parse_int(const char *s, int64_t *out)
{
    if (s == NULL || s[0] == '\0') {
        return false;
    }
    if (num_parse_i64(s, strlen(s), out)) {
        return true;
    }
    double d = 0;
    /* 2^53: beyond it not every integer is a double, and no time of ours is that large. */
    if (ctl_fmt_parse_num(s, &d) && d == floor(d) && fabs(d) <= 9007199254740992.0) {
        *out = (int64_t)d;
        return true;
    }
    return false;
}

bool
ctl_fmt_parse_num(const char *s, double *out)
{
    if (s == NULL) {
        return false;
    }
    /* Leading white space is let through, as strtod lets it: a stored "\n0.5" still shows as
     * money, with its text (escaped) beside it. */
    s += strspn(s, " \t\n\v\f\r");
    return num_parse_f64(s, strlen(s), out);
}
