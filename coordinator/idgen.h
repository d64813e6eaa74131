/* SPDX-License-Identifier: MIT
 * idgen: new research ids, "rs_" + a ULID (48-bit ms time, 80 random bits, Crockford base32):
 * unique across processes and sortable by creation time. Monotonic within one generator: ids
 * made in the same millisecond increase, so researches created together keep their order. */
#ifndef RC_IDGEN_H
#define RC_IDGEN_H

#include <stdint.h>

#define IDGEN_RESEARCH_LEN 29 /* "rs_" + 26 */

struct idgen {
    uint64_t state[2]; /* xorshift128+ seeded from the system's entropy */
    int64_t last_ms;   /* time of the last id */
    uint64_t last_hi;  /* its 80 random bits: 16 high, 64 low */
    uint64_t last_lo;
};

/* Seed from /dev/urandom (falls back to time and pid). */
void idgen_init(struct idgen *g);
/* Write a new research id for `now_ms` into out. */
void idgen_research(struct idgen *g, int64_t now_ms, char out[IDGEN_RESEARCH_LEN + 1]);

#endif /* RC_IDGEN_H */
