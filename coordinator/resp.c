/* SPDX-License-Identifier: MIT
 * resp: commands built in the Redis protocol. */
#include "coordinator/resp.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

/* "<prefix><v>\r\n" for a non-negative v, without printf. */
static void
put_count(struct buf *b, char prefix, size_t v)
{
    char text[24];
    size_t i = sizeof(text);
    text[--i] = '\n';
    text[--i] = '\r';
    do {
        text[--i] = (char)('0' + v % 10);
        v /= 10;
    } while (v > 0);
    text[--i] = prefix;
    buf_append(b, text + i, sizeof(text) - i);
}

void
resp_add(struct resp *a, const void *data, size_t len)
{
    put_count(&a->b, '$', len);
    buf_append(&a->b, data, len);
    buf_append(&a->b, "\r\n", 2);
    a->n++;
}

void
resp_str(struct resp *a, const char *s)
{
    resp_add(a, s, strlen(s));
}

void
resp_int(struct resp *a, int64_t v)
{
    char text[32];
    int len = snprintf(text, sizeof(text), "%" PRId64, v);
    resp_add(a, text, (size_t)len);
}

/* Append every argument of `from` to `a`. */
void
resp_cat(struct resp *a, const struct resp *from)
{
    buf_append(&a->b, from->b.data, from->b.len);
    a->n += from->n;
}

void
resp_reset(struct resp *a)
{
    buf_reset(&a->b);
    a->n = 0;
}

void
resp_release(struct resp *a)
{
    buf_release(&a->b);
    *a = (struct resp){0};
}

void
resp_frame(const struct resp *a, struct buf *out)
{
    put_count(out, '*', a->n);
    buf_append(out, a->b.data, a->b.len);
}
