/* SPDX-License-Identifier: MIT
 * xalloc: allocation wrappers that never return NULL. Out of memory logs one line on stderr and
 * abort()s: it is not an error path. */
#include "common/xalloc.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"

static void
oom(const char *what, size_t n, size_t size)
{
    /* log_write formats into a stack buffer: it needs no heap. */
    log_write(LOG_ERROR, __FILE__, __LINE__, "out of memory", "op=%s n=%zu size=%zu", what, n,
              size);
    abort();
}

void *
xmalloc(size_t size)
{
    /* malloc(0) may return NULL legitimately; ask for one byte so NULL always means failure. */
    void *p = malloc(size == 0 ? 1 : size);
    if (p == NULL) {
        oom("malloc", 1, size);
    }
    return p;
}

void *
xcalloc(size_t n, size_t size)
{
    if (n == 0 || size == 0) {
        n = 1;
        size = 1;
    }
    void *p = calloc(n, size); /* calloc checks n * size for overflow */
    if (p == NULL) {
        oom("calloc", n, size);
    }
    return p;
}

void *
xrealloc(void *ptr, size_t size)
{
    /* realloc(p, 0) is implementation-defined (it may free p); never ask for 0. */
    void *p = realloc(ptr, size == 0 ? 1 : size);
    if (p == NULL) {
        oom("realloc", 1, size);
    }
    return p;
}

char *
xstrdup(const char *s)
{
    return xstrndup(s, strlen(s));
}

char *
xstrdup_or_null(const char *s)
{
    return s != NULL ? xstrdup(s) : NULL;
}

char *
xstrndup(const char *s, size_t len)
{
    if (len == SIZE_MAX) {
        oom("strndup", 1, len);
    }
    char *p = xmalloc(len + 1);
    if (len > 0) {
        memcpy(p, s, len);
    }
    p[len] = '\0';
    return p;
}

void *
xgrow(void *ptr, size_t *cap, size_t need, size_t size)
{
    if (need <= *cap && ptr != NULL) {
        return ptr;
    }
    size_t new_cap = *cap < 8 ? 8 : *cap;
    while (new_cap < need) {
        if (new_cap > SIZE_MAX / 2) {
            new_cap = need;
            break;
        }
        new_cap *= 2;
    }
    if (size != 0 && new_cap > SIZE_MAX / size) {
        oom("grow", new_cap, size);
    }
    void *p = xrealloc(ptr, new_cap * size);
    *cap = new_cap;
    return p;
}
