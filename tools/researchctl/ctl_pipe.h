/* SPDX-License-Identifier: MIT
 * ctl_pipe: Redis commands planned as one pipeline (every word owned, so keys may be built in
 * a scratch buffer), and replies read by their shape: arrays, WITHSCORES pairs, HGETALL
 * pairs, strings holding numbers. Pure: running the pipeline is the caller's (ctl_read's). */
#ifndef RC_CTL_PIPE_H
#define RC_CTL_PIPE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/rc_err.h"
#include "common/redislink.h"

/* Caller-owned; start at CTL_PIPE_INIT, end with ctl_pipe_release. */
struct ctl_pipe {
    struct redislink_cmd *cmds; /* n commands, ready for redislink_query (read only) */
    size_t n;
    char ***words; /* private: owns every word of cmds[i] */
    size_t cap;    /* private */
};

#define CTL_PIPE_INIT                                                                              \
    {                                                                                              \
        NULL, 0, NULL, 0                                                                           \
    }

/* Append a command of argc words (copied). */
void ctl_pipe_add(struct ctl_pipe *p, size_t argc, const char *const *words);
/* Append "ZRANGE key 0 -1 WITHSCORES", or with newest_only "ZREVRANGE key 0 0 WITHSCORES". */
void ctl_pipe_zset(struct ctl_pipe *p, const char *key, bool newest_only);
/* Append "HMGET key f1 f2 ..." for a NULL-terminated list of at most 14 fields. */
void ctl_pipe_hmget(struct ctl_pipe *p, const char *key, const char *const *fields);
/* Free every command; back at CTL_PIPE_INIT. */
void ctl_pipe_release(struct ctl_pipe *p);

/* Reply checks: RC_OK, or RC_EBACKEND "redis: unexpected reply to <CMD> <key>" naming `cmd`.
 * ctl_pipe_want_array: an array of scalars whose length is a multiple of `multiple` (and
 * exactly `exact` when not 0). ctl_pipe_want_zset: a WITHSCORES reply (pairs of a member and
 * a score that reads as an integer, see ctl_fmt_parse_int). */
enum rc_rc ctl_pipe_bad_reply(const struct redislink_cmd *cmd, struct rc_err *err);
enum rc_rc ctl_pipe_want_array(const struct redislink_reply *r, const struct redislink_cmd *cmd,
                               size_t multiple, size_t exact, struct rc_err *err);
enum rc_rc ctl_pipe_want_zset(const struct redislink_reply *r, const struct redislink_cmd *cmd,
                              struct rc_err *err);

/* A copy of a string reply (caller frees); NULL for nil, an empty string or another type. */
char *ctl_pipe_str(const struct redislink_reply *r);
/* A string reply read as an integer (ctl_fmt_parse_int); `dflt` when absent or unreadable. */
int64_t ctl_pipe_int(const struct redislink_reply *r, int64_t dflt);
/* In an HGETALL reply (checked to be pairs): the value of `field`, or NULL. Borrowed. */
const struct redislink_reply *ctl_pipe_field(const struct redislink_reply *hash, const char *field);
/* The field as an integer (dflt when absent or unreadable), as a number (true and *out when
 * present and readable), or as a copy (caller frees; NULL as ctl_pipe_str). */
int64_t ctl_pipe_field_int(const struct redislink_reply *hash, const char *field, int64_t dflt);
bool ctl_pipe_field_num(const struct redislink_reply *hash, const char *field, double *out);
char *ctl_pipe_field_str(const struct redislink_reply *hash, const char *field);

#endif /* RC_CTL_PIPE_H */
