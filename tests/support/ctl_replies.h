/* SPDX-License-Identifier: MIT
 * ctl_replies: canned Redis replies for the unit tests of researchctl's query seam
 * (struct ctl_source): each builds one struct redislink_reply, owning what it holds, as
 * redislink_query would hand it over. Header only. */
#ifndef RC_TEST_CTL_REPLIES_H
#define RC_TEST_CTL_REPLIES_H

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "common/redislink.h"
#include "common/xalloc.h"

static inline struct redislink_reply
r_str(const char *s)
{
    return (struct redislink_reply){.type = REDISLINK_STR, .str = xstrdup(s), .len = strlen(s)};
}

/* A time in Unix ms, as the hashes store it. */
static inline struct redislink_reply
r_ms(int64_t ms)
{
    char text[32];
    snprintf(text, sizeof text, "%lld", (long long)ms);
    return r_str(text);
}

static inline struct redislink_reply
r_nil(void)
{
    return (struct redislink_reply){.type = REDISLINK_NIL};
}

static inline struct redislink_reply
r_int(int64_t v)
{
    return (struct redislink_reply){.type = REDISLINK_INT, .integer = v};
}

/* An array of the n replies given after n. */
static inline struct redislink_reply
r_array(size_t n, ...)
{
    struct redislink_reply r = {.type = REDISLINK_ARRAY, .n_elements = n};
    va_list ap;
    r.elements = xcalloc(n > 0 ? n : 1, sizeof(*r.elements));
    va_start(ap, n);
    for (size_t i = 0; i < n; i++) {
        r.elements[i] = va_arg(ap, struct redislink_reply);
    }
    va_end(ap);
    return r;
}

#endif /* RC_TEST_CTL_REPLIES_H */
