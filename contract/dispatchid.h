/* SPDX-License-Identifier: MIT
 * dispatchid: the form of a dispatch id, `<research_id>:<phase>:<attempt>`: unique per
 * dispatch, retries included, and the same if a plan is ever replayed. Pure. */
#ifndef RC_DISPATCHID_H
#define RC_DISPATCHID_H

#include <stddef.h>
#include <stdint.h>

#include "contract/phase.h"

/* Write the id into out[len] (truncated if it does not fit, as snprintf); returns out. */
char *dispatchid_format(char *out, size_t len, const char *research_id, enum phase p,
                        int64_t attempt);

#endif /* RC_DISPATCHID_H */
