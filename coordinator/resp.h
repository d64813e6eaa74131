/* SPDX-License-Identifier: MIT
 * resp: a Redis command built in the Redis protocol itself (RESP), for the coordinator's
 * pipelines: each argument is appended as "$<len>\r\n<bytes>\r\n" to one buffer and the
 * command is framed with its "*<n>" header when queued, so there is no copy per argument and
 * no formatting by hiredis. Plain data; the caller owns it (resp_release). */
#ifndef RC_RESP_H
#define RC_RESP_H

#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"

struct resp {
    struct buf b; /* the arguments so far */
    size_t n;     /* how many */
};

/* Append one argument: len bytes (any content), a string, a decimal number. */
void resp_add(struct resp *a, const void *data, size_t len);
void resp_str(struct resp *a, const char *s);
void resp_int(struct resp *a, int64_t v);
/* Append every argument of `from` to `a`. */
void resp_cat(struct resp *a, const struct resp *from);
/* Empty it, keeping its buffer; free it. */
void resp_reset(struct resp *a);
void resp_release(struct resp *a);
/* Append the whole command (header and arguments) to `out`, ready for redislink_append. */
void resp_frame(const struct resp *a, struct buf *out);

#endif /* RC_RESP_H */
