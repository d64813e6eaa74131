/* SPDX-License-Identifier: MIT
 * fuzz_json: libFuzzer target for proto/json, both ways. The input is read as JSON text (what
 * a research hash's `options` field or an rcw-exec program's stdout may hold) and as one
 * MessagePack object (a trigger's options); whatever converts must convert back without
 * losing a value or its kind. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "common/rc_err.h"
#include "proto/json.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* mp as JSON must read back, and from there on the two forms are fixed points: the JSON of
 * the MessagePack read is the same JSON, and reads as the same MessagePack. (MessagePack has
 * several encodings of one value, so mp itself may come back shorter.) */
static void
round_trip(const char *mp, size_t len)
{
    struct buf json = BUF_INIT, mp2 = BUF_INIT, json2 = BUF_INIT, mp3 = BUF_INIT;
    struct rc_err err = RC_ERR_INIT;
    if (json_from_msgpack(mp, len, &json, &err) == RC_OK) {
        if (json_to_msgpack(json.data, json.len, &mp2, &err) != RC_OK ||
            json_from_msgpack(mp2.data, mp2.len, &json2, &err) != RC_OK ||
            json2.len != json.len || memcmp(json2.data, json.data, json.len) != 0 ||
            json_to_msgpack(json2.data, json2.len, &mp3, &err) != RC_OK ||
            mp3.len != mp2.len || memcmp(mp3.data, mp2.data, mp2.len) != 0) {
            abort();
        }
    }
    buf_release(&json);
    buf_release(&mp2);
    buf_release(&json2);
    buf_release(&mp3);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *in = (const char *)data;
    struct buf mp = BUF_INIT;
    struct rc_err err = RC_ERR_INIT;
    if (json_to_msgpack(in, size, &mp, &err) == RC_OK) {
        /* JSON read as MessagePack goes out as JSON (maybe in another spelling) and back. */
        round_trip(mp.data, mp.len);
    }
    buf_release(&mp);
    round_trip(in, size);
    return 0;
}
