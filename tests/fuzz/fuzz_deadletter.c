/* SPDX-License-Identifier: MIT
 * fuzz_deadletter: libFuzzer target for msg_decode on the deadletter topic. A decoded message must
 * encode and decode again; any input may be peeked for a request_id. */
#include <stdint.h>
#include <stdlib.h>

#include "fuzz_msg.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_msg_one(MSG_TOPIC_DEADLETTER, data, size);
    return 0;
}
