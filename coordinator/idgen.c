/* SPDX-License-Identifier: MIT
 * idgen: ULID-based research ids. */
#include "coordinator/idgen.h"

#include <fcntl.h>
#include <stdio.h>
#include <time.h>
#include <unistd.h>

#include "common/clock.h"

static uint64_t
next(struct idgen *g)
{
    uint64_t s1 = g->state[0];
    const uint64_t s0 = g->state[1];
    g->state[0] = s0;
    s1 ^= s1 << 23;
    g->state[1] = s1 ^ s0 ^ (s1 >> 17) ^ (s0 >> 26);
    return g->state[1] + s0;
}

void
idgen_init(struct idgen *g)
{
    g->state[0] = (uint64_t)clock_now_ms() * 6364136223846793005ULL;
    g->state[1] = ((uint64_t)getpid() << 32) ^ (uint64_t)clock_mono_us();
    int fd = open("/dev/urandom", O_RDONLY);
    if (fd >= 0) {
        uint64_t seed[2];
        if (read(fd, seed, sizeof(seed)) == (ssize_t)sizeof(seed)) {
            g->state[0] ^= seed[0];
            g->state[1] ^= seed[1];
        }
        close(fd);
    }
    if (g->state[0] == 0 && g->state[1] == 0) {
        g->state[1] = 1;
    }
    g->last_ms = -1;
}

void
idgen_research(struct idgen *g, int64_t now_ms, char out[IDGEN_RESEARCH_LEN + 1])
{
    static const char alphabet[] = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";
    if (now_ms < g->last_ms) {
        now_ms = g->last_ms; /* the clock stepped back: keep the order */
    }
    uint64_t hi, lo;
    if (now_ms == g->last_ms) {
        /* Same millisecond: the previous random part plus one (80-bit increment). */
        lo = g->last_lo + 1;
        hi = (g->last_hi + (lo == 0)) & 0xFFFFULL;
    } else {
        hi = next(g) & 0xFFFFULL; /* 16 + 64 = 80 random bits */
        lo = next(g);
    }
    g->last_ms = now_ms;
    g->last_hi = hi;
    g->last_lo = lo;
    uint64_t t = (uint64_t)now_ms & 0xFFFFFFFFFFFFULL;
    out[0] = 'r';
    out[1] = 's';
    out[2] = '_';
    /* 10 chars of time (50 bits, top 2 zero), then 16 chars of randomness. */
    for (int i = 9; i >= 0; i--) {
        out[3 + i] = alphabet[t & 31];
        t >>= 5;
    }
    for (int i = 15; i >= 0; i--) {
        out[13 + i] = alphabet[lo & 31];
        lo = (lo >> 5) | ((hi & 31) << 59);
        hi >>= 5;
    }
    out[IDGEN_RESEARCH_LEN] = '\0';
}
