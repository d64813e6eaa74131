/* SPDX-License-Identifier: MIT
 * outbox: the byte form of one message kept in rc:outbox (§6, §7) until Kafka has it: topic
 * index (1 byte), has-key (1 byte), key length (4 bytes, big-endian), key, payload. Pure. */
#ifndef RC_OUTBOX_H
#define RC_OUTBOX_H

#include <stdbool.h>
#include <stddef.h>

struct buf;

/* Frame one message: topic index, key (key_len bytes, any content; NULL for no key) and
 * payload, appended to `out`. */
void outbox_frame(int topic, const char *key, size_t key_len, const void *payload, size_t len,
                  struct buf *out);
/* Split a frame; pointers borrow `data` (*key NULL for no key). False for a malformed frame. */
bool outbox_unframe(const char *data, size_t len, int *topic, const char **key, size_t *key_len,
                    const char **payload, size_t *payload_len);

#endif /* RC_OUTBOX_H */
