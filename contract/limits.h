/* SPDX-License-Identifier: MIT
 * limits: the size and syntax rules of the contract (§3). */
#ifndef RC_LIMITS_H
#define RC_LIMITS_H

#include <stdbool.h>
#include <stddef.h>

#define LIMITS_SCHEMA_VERSION 1
#define LIMITS_ID_MAX 128                /* bytes of [A-Za-z0-9._:-] */
#define LIMITS_BRIEF_MAX 16384           /* bytes */
#define LIMITS_STRING_MAX 4096           /* any other string, bytes */
#define LIMITS_MESSAGE_MAX 1048576       /* a whole message, bytes */
#define LIMITS_DEADLETTER_ORIGINAL 65536 /* bytes of the input kept in a dead letter */
#define LIMITS_DEADLETTER_KEY 1024       /* bytes of the input's key a dead letter keeps (§3) */
#define LIMITS_OPTIONS_MAX 16384         /* a trigger's options map, encoded, bytes (§3) */

/* True when s[0..len) is 1..128 bytes of [A-Za-z0-9._:-]. */
bool limits_is_id(const char *s, size_t len);
/* True when s[0..len) is valid UTF-8 with no NUL byte. */
bool limits_is_text(const char *s, size_t len);

#endif /* RC_LIMITS_H */
