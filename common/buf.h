/* SPDX-License-Identifier: MIT
 * buf: a growable byte buffer, always NUL-terminated after `len` for convenience. */
#ifndef RC_BUF_H
#define RC_BUF_H

#include <stddef.h>

#include "common/rc_err.h"

struct buf {
    char *data; /* NULL until the first append */
    size_t len; /* bytes used */
    size_t cap; /* bytes allocated */
};

#define BUF_INIT {NULL, 0, 0}

void buf_append(struct buf *b, const void *data, size_t len);
void buf_puts(struct buf *b, const char *s);
void buf_putc(struct buf *b, char c);
void buf_printf(struct buf *b, const char *fmt, ...) RC_PRINTF(2, 3);
/* Empty it but keep the capacity. */
void buf_reset(struct buf *b);
/* Free the storage; back at BUF_INIT. */
void buf_release(struct buf *b);
/* Hand the data (NUL-terminated, possibly NULL when empty) to the caller, who frees it. */
char *buf_detach(struct buf *b);

#endif /* RC_BUF_H */
