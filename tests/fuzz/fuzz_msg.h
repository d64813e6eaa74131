/* SPDX-License-Identifier: MIT
 * fuzz_msg: the body shared by the fuzz_<topic> targets: decode, re-encode, decode again, peek.
 * Header-only so each target stays one source file. */
#ifndef RC_FUZZ_MSG_H
#define RC_FUZZ_MSG_H

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "proto/msg.h"

static inline void
fuzz_msg_one(enum msg_topic topic, const uint8_t *data, size_t size)
{
    const char *bytes = (const char *)data;
    struct msg m = MSG_INIT;
    struct rc_err err = RC_ERR_INIT;
    char id[LIMITS_ID_MAX + 1];

    if (msg_peek_request_id(bytes, size, id) && strlen(id) == 0) {
        abort(); /* a peeked id is never empty */
    }
    if (msg_decode(topic, bytes, size, &m, &err) != RC_OK) {
        if (err.rc != RC_EPROTO || err.msg[0] == '\0') {
            abort(); /* every refusal says why */
        }
        return;
    }
    struct buf wire = BUF_INIT;
    struct msg again = MSG_INIT;
    msg_encode(&m, &wire);
    if (msg_decode(topic, wire.data, wire.len, &again, &err) != RC_OK) {
        abort(); /* what we decoded, we must be able to write and read back */
    }
    if (again.kind != m.kind || again.ts_ms != m.ts_ms) {
        abort();
    }
    /* a second encoding is byte-for-byte the first */
    struct buf wire2 = BUF_INIT;
    msg_encode(&again, &wire2);
    if (wire2.len != wire.len || memcmp(wire2.data, wire.data, wire.len) != 0) {
        abort();
    }
    buf_release(&wire2);
    msg_release(&again);
    buf_release(&wire);
    msg_release(&m);
}

#endif /* RC_FUZZ_MSG_H */
