/* SPDX-License-Identifier: MIT
 * dispatchid: the form of a dispatch id, `<research_id>:<phase>:<attempt>`, and after the
 * research was resumed `<research_id>:<phase>:<attempt>:r<resumes>` (a resumed phase counts
 * its attempts from 1 again): unique per dispatch, retries and resumes included, and the same
 * if a plan is ever replayed. Pure. */
#ifndef RC_DISPATCHID_H
#define RC_DISPATCHID_H

#include <stddef.h>
#include <stdint.h>

#include "contract/phase.h"

/* Write the id into out[len] (truncated if it does not fit, as snprintf); returns out.
 * `resumes`: how many times the research was resumed (0: the form without a suffix). */
char *dispatchid_format(char *out, size_t len, const char *research_id, enum phase p,
                        int64_t attempt, int64_t resumes);

#endif /* RC_DISPATCHID_H */
