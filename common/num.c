/* SPDX-License-Identifier: MIT
 * num: whole-text number parsing over strtoll and strtod. */
#include "common/num.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

_Static_assert(sizeof(long long) == sizeof(int64_t), "strtoll must cover int64_t");

/* strtoll and strtod need a NUL after the text: a copy, on the stack when it is short (every
 * number we read is). */
struct text {
    char small[64];
    char *s;
};

/* False for what cannot be a number whatever follows: nothing, or a leading space (which
 * strtoll and strtod would skip); and when a long text cannot be copied. */
static bool
text_copy(struct text *t, const char *s, size_t len)
{
    if (s == NULL || len == 0 || isspace((unsigned char)s[0])) {
        return false;
    }
    t->s = len < sizeof(t->small) ? t->small : malloc(len + 1);
    if (t->s == NULL) {
        return false;
    }
    memcpy(t->s, s, len);
    t->s[len] = '\0';
    return true;
}

static void
text_release(struct text *t)
{
    if (t->s != t->small) {
        free(t->s);
    }
}

bool
num_parse_i64(const char *s, size_t len, int64_t *out)
{
    struct text t;
    if (!text_copy(&t, s, len)) {
        return false;
    }
    const int saved = errno;
    char *end = NULL;
    errno = 0;
    long long v = strtoll(t.s, &end, 10);
    /* The whole text read: a NUL inside it, or a partial number, ends before. */
    const bool ok = errno == 0 && end == t.s + len;
    errno = saved;
    text_release(&t);
    if (ok) {
        *out = (int64_t)v;
    }
    return ok;
}

bool
num_parse_f64(const char *s, size_t len, double *out)
{
    struct text t;
    if (!text_copy(&t, s, len)) {
        return false;
    }
    const int saved = errno;
    char *end = NULL;
    /* ERANGE is not looked at: an overflow is infinite (refused below), an underflow the
     * nearest double. */
    double v = strtod(t.s, &end);
    const bool ok = end == t.s + len && isfinite(v);
    errno = saved;
    text_release(&t);
    if (ok) {
        *out = v;
    }
    return ok;
}
