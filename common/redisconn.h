/* SPDX-License-Identifier: MIT
 * redisconn: opening a hiredis link to the Redis primary that REDIS_URL names (contract §8):
 * TCP or a unix socket, or the primary that Redis Sentinels report (hiredis has no Sentinel
 * client); then AUTH (with the URL's user, Redis 6 ACLs), SELECT and the timeouts. The one
 * place a Redis connection is made, for every program. Each call connects afresh, so after a
 * failover the next call finds the new primary. */
#ifndef RC_REDISCONN_H
#define RC_REDISCONN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <hiredis/hiredis.h>

#include "common/rc_err.h"

struct cfg_redis;

/* The server a link reached. */
struct redisconn_peer {
    char host[256]; /* "" for a unix socket */
    int port;
    char where[320]; /* for messages: "10.0.0.2:6379 (primary mymaster)", the socket path */
    int64_t checked_mono; /* when it was reached, or the Sentinels last asked about it */
};

/* Connect as `cfg` (borrowed) says. On RC_OK *out is the caller's (redisFree) and *peer (may
 * be NULL) names the server reached. RC_EUNAVAIL (with the server and the reason in err) when
 * no primary can be reached, AUTH or SELECT is refused, or the server a Sentinel names is not
 * (or no longer) the primary. */
enum rc_rc redisconn_open(const struct cfg_redis *cfg, redisContext **out,
                          struct redisconn_peer *peer, struct rc_err *err);
/* With Sentinels in the URL, and `every_ms` passed since peer->checked_mono: ask them (one
 * round trip to a Sentinel), and true when they now name another primary than `peer`. A link
 * to `peer` is then to be dropped: a primary that was paused and came back may still take
 * writes it will lose. False without Sentinels, before it is due, or when none answers. */
bool redisconn_primary_moved(const struct cfg_redis *cfg, struct redisconn_peer *peer,
                             int64_t every_ms);

/* Why a link failed (c->err set): RC_EUNAVAIL with "redis <where>: <reason>" in err, where a
 * socket timeout (which hiredis reports as the EAGAIN read(2) gave it) reads "no answer within
 * <timeout_ms> ms" ("no answer in time" for timeout_ms 0). */
enum rc_rc redisconn_link_error(const redisContext *c, const char *where, int64_t timeout_ms,
                                struct rc_err *err);

#endif /* RC_REDISCONN_H */
