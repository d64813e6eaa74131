/* SPDX-License-Identifier: MIT
 * dispatchid: the form of a dispatch id. */
#include "contract/dispatchid.h"

#include <inttypes.h>
#include <stdio.h>

char *
dispatchid_format(char *out, size_t len, const char *research_id, enum phase p, int64_t attempt,
                  int64_t resumes)
{
    if (resumes > 0) {
        snprintf(out, len, "%s:%s:%" PRId64 ":r%" PRId64, research_id, phase_name(p), attempt,
                 resumes);
    } else {
        snprintf(out, len, "%s:%s:%" PRId64, research_id, phase_name(p), attempt);
    }
    return out;
}
