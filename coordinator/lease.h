/* SPDX-License-Identifier: MIT
 * lease: the leader lease as this process holds it, by its own monotonic clock (contract §7,
 * "the lease on the Kafka side too"). Redis fences every write, but publishing and committing
 * offsets happen outside Redis: a leader paused past its lease (SIGSTOP, a stall) must not do
 * either when it wakes, so it asks here first. Pure: times are given. */
#ifndef RC_LEASE_H
#define RC_LEASE_H

#include <stdbool.h>
#include <stdint.h>

struct lease {
    int64_t ttl_ms;          /* the TTL rc:leader is set with */
    int64_t margin_ms;       /* held only until ttl - margin after a renewal was sent */
    int64_t renewed_mono_ms; /* when the last renewal that succeeded was sent; 0: not held */
};

/* A lease of `ttl_ms`, not held. */
void lease_init(struct lease *l, int64_t ttl_ms);
/* The renewal sent at `sent_mono_ms` was granted (the expiry counts from the sending: Redis
 * may have set it any time after). */
void lease_granted(struct lease *l, int64_t sent_mono_ms);
/* Not held any more (refused, given up, or lost). */
void lease_lost(struct lease *l);
/* True while the lease is surely still ours at `now_mono_ms`. */
bool lease_is_fresh(const struct lease *l, int64_t now_mono_ms);
/* True when a renewal is due at `now_mono_ms`: a third of the TTL has passed since the last. */
bool lease_renewal_due(const struct lease *l, int64_t now_mono_ms);

#endif /* RC_LEASE_H */
