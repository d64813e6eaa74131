/* SPDX-License-Identifier: MIT
 * ctl_json: the JSON writer. The grammar is tracked with a small stack of open containers, so
 * commas and colons land where they belong and misuse is caught at once. */
#include "tools/researchctl/ctl_json.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "common/rc_err.h"
#include "common/xalloc.h"

struct frame {
    bool is_object;
    size_t n_values; /* values written in this container so far */
};

struct ctl_json {
    struct buf *out;
    struct frame stack[CTL_JSON_MAX_DEPTH];
    size_t depth;      /* open containers */
    bool after_key;    /* in an object, a key was written and awaits its value */
    size_t n_toplevel; /* values written at the top */
};

struct ctl_json *
ctl_json_new(struct buf *out)
{
    struct ctl_json *j = xcalloc(1, sizeof(*j));
    j->out = out;
    return j;
}

void
ctl_json_free(struct ctl_json *j)
{
    free(j);
}

bool
ctl_json_is_complete(const struct ctl_json *j)
{
    return j->depth == 0 && j->n_toplevel == 1;
}

/* Called before every value: place the comma, check the grammar, count it. */
static void
before_value(struct ctl_json *j)
{
    if (j->depth == 0) {
        RC_ASSERT(j->n_toplevel == 0);
        j->n_toplevel++;
        return;
    }
    struct frame *f = &j->stack[j->depth - 1];
    if (f->is_object) {
        RC_ASSERT(j->after_key);
        j->after_key = false;
    } else if (f->n_values > 0) {
        buf_putc(j->out, ',');
    }
    f->n_values++;
}

static void
open_container(struct ctl_json *j, bool is_object)
{
    before_value(j);
    RC_ASSERT(j->depth < CTL_JSON_MAX_DEPTH);
    j->stack[j->depth++] = (struct frame){is_object, 0};
    buf_putc(j->out, is_object ? '{' : '[');
}

static void
close_container(struct ctl_json *j, bool is_object)
{
    RC_ASSERT(j->depth > 0 && j->stack[j->depth - 1].is_object == is_object && !j->after_key);
    j->depth--;
    buf_putc(j->out, is_object ? '}' : ']');
}

void
ctl_json_object_begin(struct ctl_json *j)
{
    open_container(j, true);
}

void
ctl_json_object_end(struct ctl_json *j)
{
    close_container(j, true);
}

void
ctl_json_array_begin(struct ctl_json *j)
{
    open_container(j, false);
}

void
ctl_json_array_end(struct ctl_json *j)
{
    close_container(j, false);
}

void
ctl_json_key(struct ctl_json *j, const char *key)
{
    RC_ASSERT(j->depth > 0 && j->stack[j->depth - 1].is_object && !j->after_key);
    struct frame *f = &j->stack[j->depth - 1];
    if (f->n_values > 0) {
        buf_putc(j->out, ',');
    }
    ctl_json_quote(j->out, key, strlen(key));
    buf_putc(j->out, ':');
    j->after_key = true;
}

size_t
ctl_json_utf8_len(const char *s, size_t left)
{
    const unsigned char *p = (const unsigned char *)s;
    unsigned char c = p[0];
    size_t len = 0;
    unsigned char lo = 0x80;
    unsigned char hi = 0xBF;

    if (c < 0x80) {
        return 1;
    }
    if (c >= 0xC2 && c <= 0xDF) {
        len = 2;
    } else if (c >= 0xE0 && c <= 0xEF) {
        len = 3;
        lo = c == 0xE0 ? 0xA0 : 0x80; /* no overlong forms */
        hi = c == 0xED ? 0x9F : 0xBF; /* no surrogates */
    } else if (c >= 0xF0 && c <= 0xF4) {
        len = 4;
        lo = c == 0xF0 ? 0x90 : 0x80;
        hi = c == 0xF4 ? 0x8F : 0xBF; /* nothing above U+10FFFF */
    } else {
        return 0;
    }
    if (left < len || p[1] < lo || p[1] > hi) {
        return 0;
    }
    for (size_t i = 2; i < len; i++) {
        if (p[i] < 0x80 || p[i] > 0xBF) {
            return 0;
        }
    }
    return len;
}

void
ctl_json_quote(struct buf *out, const char *s, size_t len)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0;

    buf_putc(out, '"');
    while (i < len) {
        unsigned char c = p[i];
        const char *esc = NULL;
        switch (c) {
        case '"':
            esc = "\\\"";
            break;
        case '\\':
            esc = "\\\\";
            break;
        case '\b':
            esc = "\\b";
            break;
        case '\f':
            esc = "\\f";
            break;
        case '\n':
            esc = "\\n";
            break;
        case '\r':
            esc = "\\r";
            break;
        case '\t':
            esc = "\\t";
            break;
        default:
            break;
        }
        if (esc != NULL) {
            buf_puts(out, esc);
            i++;
        } else if (c < 0x20) {
            buf_printf(out, "\\u%04x", (unsigned)c);
            i++;
        } else {
            size_t n = ctl_json_utf8_len(s + i, len - i);
            if (n == 0) {
                buf_puts(out, "\\ufffd"); /* keep the output valid UTF-8 */
                i++;
            } else {
                buf_append(out, p + i, n);
                i += n;
            }
        }
    }
    buf_putc(out, '"');
}

void
ctl_json_str(struct ctl_json *j, const char *s)
{
    if (s == NULL) {
        ctl_json_null(j);
        return;
    }
    ctl_json_strn(j, s, strlen(s));
}

void
ctl_json_strn(struct ctl_json *j, const char *s, size_t len)
{
    before_value(j);
    ctl_json_quote(j->out, s, len);
}

void
ctl_json_int(struct ctl_json *j, int64_t v)
{
    before_value(j);
    buf_printf(j->out, "%lld", (long long)v);
}

/* The shortest decimal that reads back exactly as the finite v: 0.62, not
 * 0.61999999999999999556; 20 and 1500 in plain notation, exponents only for the very small
 * and very large ("2.5e-07", "1e+21"). Every form written is valid JSON. */
static const char *
shortest(double v, char *text, size_t size)
{
    int prec = 1;
    for (; prec < 17; prec++) {
        snprintf(text, size, "%.*g", prec, v);
        if (strtod(text, NULL) == v) {
            break;
        }
    }
    snprintf(text, size, "%.*g", prec, v);
    double mag = fabs(v);
    if (mag >= 1e-5 && mag < 1e17) {
        /* The same significant digits without an exponent. */
        int decimals = prec - 1 - (int)floor(log10(mag));
        char plain[64];
        snprintf(plain, sizeof(plain), "%.*f", decimals > 0 ? decimals : 0, v);
        if (strtod(plain, NULL) == v) {
            snprintf(text, size, "%s", plain);
        }
    }
    return text;
}

void
ctl_json_num(struct ctl_json *j, double v)
{
    if (!isfinite(v)) {
        ctl_json_null(j);
        return;
    }
    before_value(j);
    char text[64];
    buf_puts(j->out, shortest(v, text, sizeof(text)));
}

void
ctl_json_bool(struct ctl_json *j, bool v)
{
    before_value(j);
    buf_puts(j->out, v ? "true" : "false");
}

void
ctl_json_null(struct ctl_json *j)
{
    before_value(j);
    buf_puts(j->out, "null");
}

void
ctl_json_kstr(struct ctl_json *j, const char *key, const char *s)
{
    ctl_json_key(j, key);
    ctl_json_str(j, s);
}

void
ctl_json_kint(struct ctl_json *j, const char *key, int64_t v)
{
    ctl_json_key(j, key);
    ctl_json_int(j, v);
}

void
ctl_json_knum(struct ctl_json *j, const char *key, double v)
{
    ctl_json_key(j, key);
    ctl_json_num(j, v);
}

void
ctl_json_kbool(struct ctl_json *j, const char *key, bool v)
{
    ctl_json_key(j, key);
    ctl_json_bool(j, v);
}
