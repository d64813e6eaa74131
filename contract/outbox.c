/* SPDX-License-Identifier: MIT
 * outbox: the byte form of one outbox message. */
#include "contract/outbox.h"

#include <stdint.h>

#include "common/buf.h"
#include "common/rc_err.h"

void
outbox_frame(int topic, const char *key, size_t key_len, const void *payload, size_t len,
             struct buf *out)
{
    RC_ASSERT(topic >= 0 && topic < 256 && key_len <= UINT32_MAX);
    if (key == NULL) {
        key_len = 0;
    }
    unsigned char head[6] = {(unsigned char)topic,           key != NULL,
                             (unsigned char)(key_len >> 24), (unsigned char)(key_len >> 16),
                             (unsigned char)(key_len >> 8),  (unsigned char)key_len};
    buf_append(out, head, sizeof(head));
    buf_append(out, key != NULL ? key : "", key_len);
    buf_append(out, payload, len);
}

bool
outbox_unframe(const char *data, size_t len, int *topic, const char **key, size_t *key_len,
               const char **payload, size_t *payload_len)
{
    if (len < 6) {
        return false;
    }
    const unsigned char *u = (const unsigned char *)data;
    size_t klen = ((size_t)u[2] << 24) | ((size_t)u[3] << 16) | ((size_t)u[4] << 8) | u[5];
    if (u[1] > 1 || klen > len - 6 || (u[1] == 0 && klen != 0)) {
        return false;
    }
    *topic = u[0];
    *key = u[1] ? data + 6 : NULL;
    *key_len = klen;
    *payload = data + 6 + klen;
    *payload_len = len - 6 - klen;
    return true;
}
