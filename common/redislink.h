/* SPDX-License-Identifier: MIT
 * redislink: the one Redis link of every program (coordinator, researchctl, stub-worker,
 * bench, tests). Opened as cfg_redis says (redisconn: TCP, unix socket or the Sentinels'
 * primary, AUTH with an ACL user, SELECT, timeouts), reopened with backoff after a failure,
 * dropped when the Sentinels name another primary, error replies judged by rediserr, and every
 * exchange read to its last reply or the link dropped, so replies never fall out of step. Two
 * layers: commands as words with replies as plain data (the tools), and commands the caller
 * encoded itself with hiredis replies (the coordinator's fast path). It only carries
 * commands; the key layout is contract/keys.h. One thread per link. */
#ifndef RC_REDISLINK_H
#define RC_REDISLINK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <hiredis/hiredis.h>

#include "common/rc_err.h"

struct cfg_redis;
struct redislink; /* opaque */

/* One command: argc NUL-terminated words (borrowed for the call). */
struct redislink_cmd {
    size_t argc;
    const char **argv;
};

/* A link to the server `cfg` names (borrowed, copied). Does not connect: the first command
 * does. Free with redislink_free(). */
struct redislink *redislink_new(const struct cfg_redis *cfg);
/* Close and free. NULL is a no-op. */
void redislink_free(struct redislink *rl);

/* Send `cmds` as one pipeline (one round trip) and read every reply. RC_OK when all succeeded;
 * RC_EBACKEND with the first error reply in err (an array reply such as EXEC's counts as an
 * error when one of its elements is); RC_EUNAVAIL when the server cannot be reached or timed
 * out. After RC_EUNAVAIL the link is closed and the next call reopens it, no sooner than its
 * backoff allows (immediately after a drop, then 100 ms doubling to 5 s while connecting
 * fails); until then calls fail at once with RC_EUNAVAIL. */
enum rc_rc redislink_run(struct redislink *rl, const struct redislink_cmd *cmds, size_t n,
                         struct rc_err *err);
/* A reply as plain data (hiredis replies never leave redislink.c). Status replies read as
 * strings; error replies never appear (they fail the call). */
enum redislink_type {
    REDISLINK_NIL = 0,
    REDISLINK_STR,   /* a bulk or status string */
    REDISLINK_INT,   /* an integer */
    REDISLINK_ARRAY, /* one level of scalars: NIL, STR or INT elements, never arrays */
};

struct redislink_reply {
    enum redislink_type type;
    char *str; /* REDISLINK_STR: NUL-terminated copy of `len` bytes (may hold NULs); else NULL */
    size_t len;
    int64_t integer;                  /* REDISLINK_INT */
    struct redislink_reply *elements; /* REDISLINK_ARRAY: n_elements replies; else NULL */
    size_t n_elements;
};

/* Send `cmds` as one pipeline (one round trip) and return every reply: on RC_OK *out is an
 * array of n replies in command order, which the caller frees with redislink_replies_free(*out,
 * n). Errors as redislink_run, and RC_EBACKEND for a reply nested deeper than one array
 * (none of the commands the tools read with returns one). *out is written only on success. */
enum rc_rc redislink_query(struct redislink *rl, const struct redislink_cmd *cmds, size_t n,
                           struct redislink_reply **out, struct rc_err *err);
/* Free an array of n replies (with their elements and strings). NULL is a no-op. Replies built
 * by hand (tests) must use the xalloc family for the array, elements and strings. */
void redislink_replies_free(struct redislink_reply *replies, size_t n);

/* HGET key field. On RC_OK *out is a copy of the value (caller frees) or NULL when the key or
 * field is absent. Errors as redislink_run. */
enum rc_rc redislink_hget(struct redislink *rl, const char *key, const char *field, char **out,
                          struct rc_err *err);
/* For each i < n: whether field `field` of hash keys[i] exists and equals want[i], asked as n
 * HGETs in one pipeline (one round trip, however large n is). On RC_OK same[i] is the answer
 * for keys[i]; same is written only on success. Errors as redislink_run, and RC_EBACKEND for a
 * reply that is neither a string nor nil (keys[i] is not a hash). All arrays hold n items. */
enum rc_rc redislink_hget_equal(struct redislink *rl, const char *const *keys, const char *field,
                                const char *const *want, size_t n, bool *same, struct rc_err *err);
/* The monotonic time (clock_mono_ms) before which a closed link will not try to reconnect;
 * 0 while the link is open or may be reopened now. */
int64_t redislink_retry_at_ms(const struct redislink *rl);

/* ---- the raw layer: commands encoded by the caller, hiredis replies ------------------------ */

/* Make sure the link is open: with Sentinels, first drop it when they name another primary
 * (asked at most once a second); then reopen a closed link when the backoff allows. *opened
 * is true when this call made a new connection (its caller loads what a connection needs,
 * scripts say). Errors as redislink_run. */
enum rc_rc redislink_open(struct redislink *rl, bool *opened, struct rc_err *err);
/* Queue one command already in RESP form (len bytes, copied) on the open link. */
void redislink_append(struct redislink *rl, const char *cmd, size_t len);
/* Read the replies of the n commands queued last, every one: on RC_OK out[0..n) are replies,
 * error replies included, for the caller to judge (free with freeReplyObject). A broken or
 * timed-out link is dropped (with what it still held) and RC_EUNAVAIL returned; out is then
 * all NULL. */
enum rc_rc redislink_read(struct redislink *rl, redisReply **out, size_t n, struct rc_err *err);
/* What the error reply r (to `what`, a command name, or NULL) means (rediserr), as the
 * project's rc with "redis <where>: [<what>: ]<reply>" in err. A demoted primary or flushed
 * scripts also drop the link, so the next one reaches the new primary and loads them again:
 * call it once every reply of the exchange is read. */
enum rc_rc redislink_reply_error(struct redislink *rl, const char *what, const redisReply *r,
                                 struct rc_err *err);
/* Close the link now (the next call reopens it, without waiting for the backoff). */
void redislink_drop(struct redislink *rl);
/* The server of the open (or last) link, for messages: "10.0.0.2:6379 (primary m)". */
const char *redislink_where(const struct redislink *rl);

#endif /* RC_REDISLINK_H */
