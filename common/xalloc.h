/* SPDX-License-Identifier: MIT
 * xalloc: allocation that never returns NULL. Running out of memory is not an error path:
 * these log and abort(). */
#ifndef RC_XALLOC_H
#define RC_XALLOC_H

#include <stddef.h>

void *xmalloc(size_t size);
void *xcalloc(size_t n, size_t size);
void *xrealloc(void *ptr, size_t size);
char *xstrdup(const char *s);
/* xstrdup, or NULL for NULL. */
char *xstrdup_or_null(const char *s);
/* Copy `len` bytes of `s` into a new NUL-terminated string. */
char *xstrndup(const char *s, size_t len);
/* Grow an array so it holds at least `need` items of `size` bytes; *cap is updated. */
void *xgrow(void *ptr, size_t *cap, size_t need, size_t size);

#endif /* RC_XALLOC_H */
