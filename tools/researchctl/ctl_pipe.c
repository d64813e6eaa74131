/* SPDX-License-Identifier: MIT
 * ctl_pipe: pipelines of Redis commands and the shapes of their replies. */
#include "tools/researchctl/ctl_pipe.h"

#include <stdlib.h>
#include <string.h>

#include "common/xalloc.h"
#include "tools/researchctl/ctl_fmt.h"

/* cmds[i].argv points at the strings words[i] owns (redislink_cmd's words are const). The
 * two arrays grow together: xgrow gives both the same capacity. */
void
ctl_pipe_add(struct ctl_pipe *p, size_t argc, const char *const *words)
{
    size_t cap = p->cap;
    p->cmds = xgrow(p->cmds, &cap, p->n + 1, sizeof(*p->cmds));
    p->words = xgrow(p->words, &p->cap, p->n + 1, sizeof(*p->words));
    RC_ASSERT(cap == p->cap);
    const char **argv = xcalloc(argc, sizeof(*argv));
    char **own = xcalloc(argc, sizeof(*own));
    for (size_t i = 0; i < argc; i++) {
        own[i] = xstrdup(words[i]);
        argv[i] = own[i];
    }
    p->words[p->n] = own;
    p->cmds[p->n++] = (struct redislink_cmd){argc, argv};
}

void
ctl_pipe_release(struct ctl_pipe *p)
{
    for (size_t i = 0; i < p->n; i++) {
        for (size_t k = 0; k < p->cmds[i].argc; k++) {
            free(p->words[i][k]);
        }
        free(p->words[i]);
        free(p->cmds[i].argv);
    }
    free(p->words);
    free(p->cmds);
    *p = (struct ctl_pipe)CTL_PIPE_INIT;
}

/* "ZRANGE key 0 -1 WITHSCORES" (or ZREVRANGE key 0 0 for the newest member). */
void
ctl_pipe_zset(struct ctl_pipe *p, const char *key, bool newest_only)
{
    const char *all[] = {"ZRANGE", key, "0", "-1", "WITHSCORES"};
    const char *newest[] = {"ZREVRANGE", key, "0", "0", "WITHSCORES"};
    ctl_pipe_add(p, 5, newest_only ? newest : all);
}

/* "HMGET key f1 f2 ..." for a NULL-terminated list of fields. */
void
ctl_pipe_hmget(struct ctl_pipe *p, const char *key, const char *const *fields)
{
    const char *words[16];
    size_t n = 0;
    words[n++] = "HMGET";
    words[n++] = key;
    for (size_t i = 0; fields[i] != NULL; i++) {
        RC_ASSERT(n < N_OF(words));
        words[n++] = fields[i];
    }
    ctl_pipe_add(p, n, words);
}

/* ---- reply shapes ------------------------------------------------------------------------- */

enum rc_rc
ctl_pipe_bad_reply(const struct redislink_cmd *cmd, struct rc_err *err)
{
    return rc_err_set(err, RC_EBACKEND, "redis: unexpected reply to %s %s", cmd->argv[0],
                      cmd->argc > 1 ? cmd->argv[1] : "");
}

/* An array whose length is a multiple of `multiple` (and exactly `exact` when not 0). */
enum rc_rc
ctl_pipe_want_array(const struct redislink_reply *r, const struct redislink_cmd *cmd,
                    size_t multiple, size_t exact, struct rc_err *err)
{
    if (r->type != REDISLINK_ARRAY || r->n_elements % multiple != 0 ||
        (exact != 0 && r->n_elements != exact)) {
        return ctl_pipe_bad_reply(cmd, err);
    }
    for (size_t i = 0; i < r->n_elements; i++) {
        if (r->elements[i].type == REDISLINK_ARRAY) {
            return ctl_pipe_bad_reply(cmd, err);
        }
    }
    return RC_OK;
}

/* A copy of a string reply, NULL for nil, an empty string or another type. */
char *
ctl_pipe_str(const struct redislink_reply *r)
{
    return r->type == REDISLINK_STR && r->len > 0 ? xstrdup(r->str) : NULL;
}

static bool
is_str(const struct redislink_reply *r, const char *s)
{
    return r->type == REDISLINK_STR && strcmp(r->str, s) == 0;
}

/* A time or count from a string reply; `dflt` when absent or unreadable. */
int64_t
ctl_pipe_int(const struct redislink_reply *r, int64_t dflt)
{
    int64_t v = 0;
    return r->type == REDISLINK_STR && ctl_fmt_parse_int(r->str, &v) ? v : dflt;
}

/* The value of `field` in an HGETALL reply (checked to be pairs), or NULL. */
const struct redislink_reply *
ctl_pipe_field(const struct redislink_reply *r, const char *field)
{
    for (size_t i = 0; i + 1 < r->n_elements; i += 2) {
        if (is_str(&r->elements[i], field)) {
            return &r->elements[i + 1];
        }
    }
    return NULL;
}

int64_t
ctl_pipe_field_int(const struct redislink_reply *r, const char *field, int64_t dflt)
{
    const struct redislink_reply *v = ctl_pipe_field(r, field);
    return v != NULL ? ctl_pipe_int(v, dflt) : dflt;
}

/* A number field: true (and *out) when present and readable. */
bool
ctl_pipe_field_num(const struct redislink_reply *r, const char *field, double *out)
{
    const struct redislink_reply *v = ctl_pipe_field(r, field);
    return v != NULL && v->type == REDISLINK_STR && ctl_fmt_parse_num(v->str, out);
}

char *
ctl_pipe_field_str(const struct redislink_reply *r, const char *field)
{
    const struct redislink_reply *v = ctl_pipe_field(r, field);
    return v != NULL ? ctl_pipe_str(v) : NULL;
}

/* Check a WITHSCORES reply: pairs of a member and a score that reads as an integer. */
enum rc_rc
ctl_pipe_want_zset(const struct redislink_reply *r, const struct redislink_cmd *cmd,
                   struct rc_err *err)
{
    enum rc_rc rc = ctl_pipe_want_array(r, cmd, 2, 0, err);
    for (size_t i = 0; rc == RC_OK && i < r->n_elements; i += 2) {
        int64_t score = 0;
        if (r->elements[i].type != REDISLINK_STR || r->elements[i + 1].type != REDISLINK_STR ||
            !ctl_fmt_parse_int(r->elements[i + 1].str, &score)) {
            rc = ctl_pipe_bad_reply(cmd, err);
        }
    }
    return rc;
}
