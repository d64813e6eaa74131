/* SPDX-License-Identifier: MIT
 * redislink: a reconnecting hiredis link for the tools. hiredis replies never leave this file. */
#include "common/redislink.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <hiredis/hiredis.h>

#include "common/buf.h"
#include "common/cfg.h"
#include "common/clock.h"
#include "common/log.h"
#include "common/redisconn.h"
#include "common/rediserr.h"
#include "common/xalloc.h"

#define BACKOFF_FIRST_MS 100
#define BACKOFF_MAX_MS 5000
#define PRIMARY_CHECK_MS 1000 /* with Sentinels: how often to ask them whether it moved */

struct redislink {
    struct cfg_redis cfg; /* our copy (cfg_redis_copy) */
    struct redisconn_peer peer;   /* the server of the open (or last) link */
    redisContext *ctx;    /* NULL while closed */
    int64_t backoff_ms;   /* 0 until a connect fails; doubles up to BACKOFF_MAX_MS */
    int64_t retry_at_ms;  /* monotonic: no reconnect before this */
};

struct redislink *
redislink_new(const struct cfg_redis *cfg)
{
    struct redislink *rl = xcalloc(1, sizeof(*rl));

    cfg_redis_copy(&rl->cfg, cfg);
    rl->cfg.timeout_ms = cfg->timeout_ms > 0 ? cfg->timeout_ms : 1000;
    if (cfg->n_sentinels > 0) {
        snprintf(rl->peer.where, sizeof(rl->peer.where), "(primary %s)", cfg->master_name);
    } else if (cfg->unix_path != NULL) {
        snprintf(rl->peer.where, sizeof(rl->peer.where), "%s", cfg->unix_path);
    } else {
        snprintf(rl->peer.where, sizeof(rl->peer.where), "%s:%d", cfg->host != NULL ? cfg->host : "?",
                 cfg->port);
    }
    return rl;
}

static void
link_close(struct redislink *rl)
{
    if (rl->ctx != NULL) {
        redisFree(rl->ctx);
        rl->ctx = NULL;
    }
}

void
redislink_free(struct redislink *rl)
{
    if (rl == NULL) {
        return;
    }
    link_close(rl);
    cfg_redis_release(&rl->cfg);
    free(rl);
}

int64_t
redislink_retry_at_ms(const struct redislink *rl)
{
    return rl->ctx == NULL ? rl->retry_at_ms : 0;
}

const char *
redislink_where(const struct redislink *rl)
{
    return rl->peer.where;
}

void
redislink_drop(struct redislink *rl)
{
    link_close(rl);
    rl->retry_at_ms = 0;
}

/* Why the link failed; it is dropped, out of step. */
static enum rc_rc
link_failed(struct redislink *rl, struct rc_err *err)
{
    enum rc_rc rc = redisconn_link_error(rl->ctx, redislink_where(rl), rl->cfg.timeout_ms, err);
    redislink_drop(rl);
    return rc;
}

enum rc_rc
redislink_open(struct redislink *rl, bool *opened, struct rc_err *err)
{
    *opened = false;
    /* A primary paused while the Sentinels promoted another still takes writes when it is
     * back (until they make it a replica, which discards them): follow the Sentinels' word,
     * not the old link. */
    if (rl->ctx != NULL && redisconn_primary_moved(&rl->cfg, &rl->peer, PRIMARY_CHECK_MS)) {
        log_warn("the Sentinels name another primary: reconnecting", "was=\"%s\"", redislink_where(rl));
        link_close(rl);
    }
    if (rl->ctx != NULL) {
        return RC_OK;
    }
    int64_t now = clock_mono_ms();
    if (now < rl->retry_at_ms) {
        return rc_err_set(err, RC_EUNAVAIL, "redis %s: down, next attempt in %lld ms", redislink_where(rl),
                          (long long)(rl->retry_at_ms - now));
    }
    enum rc_rc rc = redisconn_open(&rl->cfg, &rl->ctx, &rl->peer, err);
    if (rc != RC_OK) {
        rl->backoff_ms = rl->backoff_ms == 0 ? BACKOFF_FIRST_MS : rl->backoff_ms * 2;
        rl->backoff_ms = rl->backoff_ms > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : rl->backoff_ms;
        rl->retry_at_ms = now + rl->backoff_ms;
        return rc;
    }
    rl->backoff_ms = 0;
    rl->retry_at_ms = 0;
    *opened = true;
    return RC_OK;
}

void
redislink_append(struct redislink *rl, const char *cmd, size_t len)
{
    RC_ASSERT(rl->ctx != NULL);
    (void)redisAppendFormattedCommand(rl->ctx, cmd, len); /* fails only out of memory */
}

enum rc_rc
redislink_read(struct redislink *rl, redisReply **out, size_t n, struct rc_err *err)
{
    for (size_t i = 0; i < n; i++) {
        void *r = NULL;
        if (rl->ctx == NULL || redisGetReply(rl->ctx, &r) != REDIS_OK || r == NULL) {
            for (size_t j = 0; j < i; j++) {
                freeReplyObject(out[j]);
                out[j] = NULL;
            }
            if (rl->ctx == NULL) {
                return rc_err_set(err, RC_EUNAVAIL, "redis %s: not connected", redislink_where(rl));
            }
            return link_failed(rl, err);
        }
        out[i] = r;
    }
    return RC_OK;
}

enum rc_rc
redislink_reply_error(struct redislink *rl, const char *what, const redisReply *r,
                      struct rc_err *err)
{
    enum rediserr_kind kind = rediserr_classify(r->str, r->len);
    if (rediserr_drops_link(kind)) {
        redislink_drop(rl);
    }
    return rc_err_set(err, rediserr_rc(kind), "redis %s: %s%s%s", redislink_where(rl),
                      what != NULL ? what : "", what != NULL ? ": " : "", r->str);
}

/* The first error in a reply, looking one level into arrays (EXEC's replies); NULL if none. */
static const redisReply *
first_error(const redisReply *reply)
{
    if (reply->type == REDIS_REPLY_ERROR) {
        return reply;
    }
    if (reply->type == REDIS_REPLY_ARRAY) {
        for (size_t i = 0; i < reply->elements; i++) {
            if (reply->element[i]->type == REDIS_REPLY_ERROR) {
                return reply->element[i];
            }
        }
    }
    return NULL;
}

/* Pipeline `cmds` and read every reply (even after an error reply, to keep the stream in
 * step). On RC_OK and when `keep` (n slots) is not NULL, keep[i] is the i-th reply, which the
 * caller frees with freeReplyObject; on failure nothing is kept. */
static enum rc_rc
exchange(struct redislink *rl, const struct redislink_cmd *cmds, size_t n, redisReply **keep,
         struct rc_err *err)
{
    bool opened;
    enum rc_rc rc = redislink_open(rl, &opened, err);
    if (rc != RC_OK) {
        return rc;
    }
    for (size_t i = 0; i < n; i++) {
        if (redisAppendCommandArgv(rl->ctx, (int)cmds[i].argc, cmds[i].argv, NULL) != REDIS_OK) {
            return link_failed(rl, err);
        }
    }
    redisReply **replies = keep != NULL ? keep : xcalloc(n > 0 ? n : 1, sizeof(*replies));
    rc = redislink_read(rl, replies, n, err);
    /* The first error decides, judged once every reply is in (dropping the link then loses
     * nothing). */
    for (size_t i = 0; rc == RC_OK && i < n; i++) {
        const redisReply *bad = first_error(replies[i]);
        if (bad != NULL) {
            rc = redislink_reply_error(rl, cmds[i].argv[0], bad, err);
        }
    }
    for (size_t i = 0; i < n && (rc != RC_OK || keep == NULL); i++) {
        if (replies[i] != NULL) {
            freeReplyObject(replies[i]);
            replies[i] = NULL;
        }
    }
    if (keep == NULL) {
        free(replies);
    }
    return rc;
}

enum rc_rc
redislink_run(struct redislink *rl, const struct redislink_cmd *cmds, size_t n, struct rc_err *err)
{
    return exchange(rl, cmds, n, NULL, err);
}

/* Copy one scalar reply into `out`; false for a type we do not carry (an array). */
static bool
copy_scalar(const redisReply *r, struct redislink_reply *out)
{
    memset(out, 0, sizeof(*out));
    switch (r->type) {
    case REDIS_REPLY_NIL:
        out->type = REDISLINK_NIL;
        return true;
    case REDIS_REPLY_STRING:
    case REDIS_REPLY_STATUS:
        out->type = REDISLINK_STR;
        out->str = xmalloc(r->len + 1);
        memcpy(out->str, r->str, r->len);
        out->str[r->len] = '\0';
        out->len = r->len;
        return true;
    case REDIS_REPLY_INTEGER:
        out->type = REDISLINK_INT;
        out->integer = (int64_t)r->integer;
        return true;
    default:
        return false;
    }
}

/* Copy a reply of at most one array level; false when it is deeper or of another type. */
static bool
copy_reply(const redisReply *r, struct redislink_reply *out)
{
    if (r->type != REDIS_REPLY_ARRAY) {
        return copy_scalar(r, out);
    }
    memset(out, 0, sizeof(*out));
    out->type = REDISLINK_ARRAY;
    out->elements = xcalloc(r->elements > 0 ? r->elements : 1, sizeof(*out->elements));
    for (size_t i = 0; i < r->elements; i++) {
        if (!copy_scalar(r->element[i], &out->elements[i])) {
            out->n_elements = i;
            return false;
        }
        out->n_elements = i + 1;
    }
    return true;
}

void
redislink_replies_free(struct redislink_reply *replies, size_t n)
{
    if (replies == NULL) {
        return;
    }
    for (size_t i = 0; i < n; i++) {
        struct redislink_reply *r = &replies[i];
        for (size_t k = 0; k < r->n_elements; k++) {
            free(r->elements[k].str);
        }
        free(r->elements);
        free(r->str);
    }
    free(replies);
}

enum rc_rc
redislink_query(struct redislink *rl, const struct redislink_cmd *cmds, size_t n,
                struct redislink_reply **out, struct rc_err *err)
{
    redisReply **raw = xcalloc(n > 0 ? n : 1, sizeof(*raw));
    struct redislink_reply *replies = xcalloc(n > 0 ? n : 1, sizeof(*replies));
    size_t n_copied = 0;

    enum rc_rc rc = exchange(rl, cmds, n, raw, err);
    for (size_t i = 0; rc == RC_OK && i < n; i++) {
        n_copied = i + 1; /* a partial copy is still freed below */
        if (!copy_reply(raw[i], &replies[i])) {
            rc = rc_err_set(err, RC_EBACKEND, "redis %s: %s: unexpected reply type %d", redislink_where(rl),
                            cmds[i].argv[0], raw[i]->type);
        }
    }
    for (size_t i = 0; i < n; i++) {
        if (raw[i] != NULL) {
            freeReplyObject(raw[i]);
        }
    }
    free(raw);
    if (rc != RC_OK) {
        redislink_replies_free(replies, n_copied);
        return rc;
    }
    *out = replies;
    return RC_OK;
}

enum rc_rc
redislink_hget(struct redislink *rl, const char *key, const char *field, char **out,
               struct rc_err *err)
{
    const char *argv[] = {"HGET", key, field};
    const struct redislink_cmd cmd = {3, argv};
    redisReply *reply = NULL;

    enum rc_rc rc = exchange(rl, &cmd, 1, &reply, err);
    if (rc != RC_OK) {
        return rc;
    }
    if (reply->type == REDIS_REPLY_STRING) {
        *out = xstrndup(reply->str, reply->len);
    } else if (reply->type == REDIS_REPLY_NIL) {
        *out = NULL;
    } else {
        rc = rc_err_set(err, RC_EBACKEND, "redis %s: HGET %s: unexpected reply type %d", redislink_where(rl),
                        key, reply->type);
    }
    freeReplyObject(reply);
    return rc;
}

enum rc_rc
redislink_hget_equal(struct redislink *rl, const char *const *keys, const char *field,
                     const char *const *want, size_t n, bool *same, struct rc_err *err)
{
    if (n == 0) {
        return RC_OK;
    }
    /* The pipeline's commands, words and replies: three allocations per call, not per key. */
    struct redislink_cmd *cmds = xcalloc(n, sizeof(*cmds));
    const char **words = xcalloc(3 * n, sizeof(*words));
    redisReply **replies = xcalloc(n, sizeof(*replies));

    for (size_t i = 0; i < n; i++) {
        words[3 * i] = "HGET";
        words[3 * i + 1] = keys[i];
        words[3 * i + 2] = field;
        cmds[i] = (struct redislink_cmd){3, &words[3 * i]};
    }
    enum rc_rc rc = exchange(rl, cmds, n, replies, err);
    for (size_t i = 0; rc == RC_OK && i < n; i++) {
        if (replies[i]->type != REDIS_REPLY_STRING && replies[i]->type != REDIS_REPLY_NIL) {
            rc = rc_err_set(err, RC_EBACKEND, "redis %s: HGET %s: unexpected reply type %d",
                            redislink_where(rl), keys[i], replies[i]->type);
        }
    }
    for (size_t i = 0; rc == RC_OK && i < n; i++) {
        const redisReply *r = replies[i];
        same[i] = r->type == REDIS_REPLY_STRING && r->len == strlen(want[i]) &&
                  memcmp(r->str, want[i], r->len) == 0;
    }
    for (size_t i = 0; i < n; i++) {
        if (replies[i] != NULL) {
            freeReplyObject(replies[i]);
        }
    }
    free(replies);
    free(words);
    free(cmds);
    return rc;
}
