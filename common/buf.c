/* SPDX-License-Identifier: MIT
 * buf: a growable byte buffer kept NUL-terminated after `len`. Never fails: growth goes
 * through xalloc. */
#include "common/buf.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/xalloc.h"

/* Make room for `extra` more bytes plus the terminating NUL. */
static void
reserve(struct buf *b, size_t extra)
{
    RC_ASSERT(extra < SIZE_MAX - b->len);
    b->data = xgrow(b->data, &b->cap, b->len + extra + 1, 1);
}

void
buf_append(struct buf *b, const void *data, size_t len)
{
    reserve(b, len);
    if (len > 0) {
        memcpy(b->data + b->len, data, len);
    }
    b->len += len;
    b->data[b->len] = '\0';
}

void
buf_puts(struct buf *b, const char *s)
{
    buf_append(b, s, strlen(s));
}

void
buf_putc(struct buf *b, char c)
{
    buf_append(b, &c, 1);
}

void
buf_printf(struct buf *b, const char *fmt, ...)
{
    va_list ap;

    reserve(b, 0);
    va_start(ap, fmt);
    int n = vsnprintf(b->data + b->len, b->cap - b->len, fmt, ap);
    va_end(ap);
    RC_ASSERT(n >= 0);
    if ((size_t)n >= b->cap - b->len) {
        reserve(b, (size_t)n);
        va_start(ap, fmt);
        n = vsnprintf(b->data + b->len, b->cap - b->len, fmt, ap);
        va_end(ap);
        RC_ASSERT(n >= 0 && (size_t)n < b->cap - b->len);
    }
    b->len += (size_t)n;
}

void
buf_reset(struct buf *b)
{
    b->len = 0;
    if (b->data != NULL) {
        b->data[0] = '\0';
    }
}

void
buf_release(struct buf *b)
{
    free(b->data);
    *b = (struct buf)BUF_INIT;
}

char *
buf_detach(struct buf *b)
{
    char *data = b->data;
    *b = (struct buf)BUF_INIT;
    return data;
}
