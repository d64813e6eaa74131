/* SPDX-License-Identifier: MIT
 * lease: the leader lease by our own clock. */
#include "coordinator/lease.h"

void
lease_init(struct lease *l, int64_t ttl_ms)
{
    /* A fifth of the TTL, at least 200 ms: room for the round trip that set the expiry and
     * for the clocks of two hosts to run at slightly different rates. */
    int64_t margin = ttl_ms / 5;
    *l = (struct lease){.ttl_ms = ttl_ms, .margin_ms = margin < 200 ? 200 : margin};
}

void
lease_granted(struct lease *l, int64_t sent_mono_ms)
{
    l->renewed_mono_ms = sent_mono_ms > 0 ? sent_mono_ms : 1;
}

void
lease_lost(struct lease *l)
{
    l->renewed_mono_ms = 0;
}

bool
lease_is_fresh(const struct lease *l, int64_t now_mono_ms)
{
    return l->renewed_mono_ms > 0 && now_mono_ms - l->renewed_mono_ms < l->ttl_ms - l->margin_ms;
}

bool
lease_renewal_due(const struct lease *l, int64_t now_mono_ms)
{
    return !lease_is_fresh(l, now_mono_ms) || now_mono_ms - l->renewed_mono_ms >= l->ttl_ms / 3;
}
