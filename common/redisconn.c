/* SPDX-License-Identifier: MIT
 * redisconn: connect, ask the Sentinels, authenticate, select. */
#include "common/redisconn.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

#include "common/cfg.h"
#include "common/clock.h"
#include "common/num.h"
#include "common/rediserr.h"

/* A Sentinel is asked within this at most (or REDIS_TIMEOUT_MS when shorter), so that one
 * unreachable Sentinel does not hold the others up for a whole command timeout. */
#define SENTINEL_TIMEOUT_MS 1000

static struct timeval
timeval_ms(int64_t ms)
{
    return (struct timeval){.tv_sec = (time_t)(ms / 1000),
                            .tv_usec = (suseconds_t)((ms % 1000) * 1000)};
}

enum rc_rc
redisconn_link_error(const redisContext *c, const char *where, int64_t timeout_ms,
                     struct rc_err *err)
{
    if (c->err == REDIS_ERR_IO && (errno == EAGAIN || errno == EWOULDBLOCK)) {
        return timeout_ms > 0 ? rc_err_set(err, RC_EUNAVAIL, "redis %s: no answer within %lld ms",
                                           where, (long long)timeout_ms)
                              : rc_err_set(err, RC_EUNAVAIL, "redis %s: no answer in time", where);
    }
    return rc_err_set(err, RC_EUNAVAIL, "redis %s: %s", where,
                      c->errstr[0] != '\0' ? c->errstr : "no reply");
}

static enum rc_rc
connect_to(const char *host, int port, const char *unix_path, int64_t timeout_ms,
           redisContext **out, const char *where, struct rc_err *err)
{
    struct timeval tv = timeval_ms(timeout_ms > 0 ? timeout_ms : 2000);
    redisContext *c = unix_path != NULL ? redisConnectUnixWithTimeout(unix_path, tv)
                                        : redisConnectWithTimeout(host, port, tv);
    if (c == NULL) {
        return rc_err_set(err, RC_EUNAVAIL, "redis %s: cannot allocate a context", where);
    }
    if (c->err != 0) {
        enum rc_rc rc = rc_err_set(err, RC_EUNAVAIL, "redis %s: cannot connect: %s", where,
                                   c->errstr);
        redisFree(c);
        return rc;
    }
    if (redisSetTimeout(c, tv) != REDIS_OK) {
        redisFree(c);
        return rc_err_set(err, RC_EUNAVAIL, "redis %s: cannot set the timeout", where);
    }
    *out = c;
    return RC_OK;
}

/* Run one handshake command; on RC_OK *out is the reply (caller frees). An error reply is
 * RC_EUNAVAIL naming the command, with the reply's kind in *kind when not NULL. */
static enum rc_rc
run(redisContext *c, const char *where, int argc, const char **argv, redisReply **out,
    enum rediserr_kind *kind, struct rc_err *err)
{
    size_t lens[8];
    for (int i = 0; i < argc; i++) {
        lens[i] = strlen(argv[i]);
    }
    redisReply *r = redisCommandArgv(c, argc, argv, lens);
    if (r == NULL) {
        return redisconn_link_error(c, where, 0, err);
    }
    if (r->type == REDIS_REPLY_ERROR) {
        if (kind != NULL) {
            *kind = rediserr_classify(r->str, r->len);
        }
        enum rc_rc rc = rc_err_set(err, RC_EUNAVAIL, "redis %s: %s: %s", where, argv[0], r->str);
        freeReplyObject(r);
        return rc;
    }
    if (out != NULL) {
        *out = r;
    } else {
        freeReplyObject(r);
    }
    return RC_OK;
}

/* AUTH [user] password, when the URL has a password. */
static enum rc_rc
authenticate(redisContext *c, const struct cfg_redis *cfg, const char *where, struct rc_err *err)
{
    if (cfg->password == NULL) {
        return RC_OK;
    }
    const char *argv[3] = {"AUTH", cfg->user != NULL ? cfg->user : cfg->password, cfg->password};
    return run(c, where, cfg->user != NULL ? 3 : 2, argv, NULL, NULL, err);
}

/* Authenticate and select the db on a fresh link to a data node. */
static enum rc_rc
prepare(redisContext *c, const struct cfg_redis *cfg, const char *where, struct rc_err *err)
{
    enum rc_rc rc = authenticate(c, cfg, where, err);
    if (rc == RC_OK && cfg->db != 0) {
        char db[16];
        snprintf(db, sizeof(db), "%d", cfg->db);
        const char *argv[] = {"SELECT", db};
        rc = run(c, where, 2, argv, NULL, NULL, err);
    }
    return rc;
}

/* Ask one Sentinel for the primary's address (into host/port). A Sentinel with requirepass
 * answers NOAUTH: then it is asked again after AUTH with the URL's credentials. */
static enum rc_rc
ask_sentinel(const struct cfg_redis *cfg, const struct cfg_hostport *sentinel, char *host,
             size_t host_len, int *port, struct rc_err *err)
{
    char where[300];
    snprintf(where, sizeof(where), "sentinel %s:%d", sentinel->host, sentinel->port);
    const int64_t timeout_ms =
        cfg->timeout_ms > 0 && cfg->timeout_ms < SENTINEL_TIMEOUT_MS ? cfg->timeout_ms
                                                                     : SENTINEL_TIMEOUT_MS;
    redisContext *c = NULL;
    enum rc_rc rc = connect_to(sentinel->host, sentinel->port, NULL, timeout_ms, &c, where, err);
    if (rc != RC_OK) {
        return rc;
    }
    const char *argv[] = {"SENTINEL", "get-master-addr-by-name", cfg->master_name};
    redisReply *r = NULL;
    enum rediserr_kind kind = REDISERR_OTHER;
    rc = run(c, where, 3, argv, &r, &kind, err);
    if (rc != RC_OK && kind == REDISERR_OUTAGE && cfg->password != NULL &&
        authenticate(c, cfg, where, err) == RC_OK) {
        rc = run(c, where, 3, argv, &r, NULL, err);
    }
    if (rc == RC_OK) {
        if (r->type != REDIS_REPLY_ARRAY || r->elements != 2 ||
            r->element[0]->type != REDIS_REPLY_STRING || r->element[1]->type != REDIS_REPLY_STRING ||
            r->element[0]->len == 0 || r->element[0]->len >= host_len) {
            rc = rc_err_set(err, RC_EUNAVAIL, "redis %s: knows no primary named %s", where,
                            cfg->master_name);
        } else {
            int64_t p = 0;
            if (!num_parse_i64(r->element[1]->str, r->element[1]->len, &p) || p < 1 || p > 65535) {
                rc = rc_err_set(err, RC_EUNAVAIL, "redis %s: reports a bad port \"%s\"", where,
                                r->element[1]->str);
            } else {
                memcpy(host, r->element[0]->str, r->element[0]->len + 1);
                *port = (int)p;
            }
        }
        freeReplyObject(r);
    }
    redisFree(c);
    return rc;
}

/* A Sentinel's answer may be stale while it fails over: the server must say it is the
 * primary itself (ROLE), as the Sentinel client guidelines ask. */
static enum rc_rc
check_primary(redisContext *c, const char *where, struct rc_err *err)
{
    const char *argv[] = {"ROLE"};
    redisReply *r = NULL;
    enum rc_rc rc = run(c, where, 1, argv, &r, NULL, err);
    if (rc != RC_OK) {
        return rc;
    }
    if (r->type != REDIS_REPLY_ARRAY || r->elements < 1 ||
        r->element[0]->type != REDIS_REPLY_STRING || strcmp(r->element[0]->str, "master") != 0) {
        rc = rc_err_set(err, RC_EUNAVAIL, "redis %s: not the primary (yet): a failover is under way",
                        where);
    }
    freeReplyObject(r);
    return rc;
}

static enum rc_rc
open_via_sentinels(const struct cfg_redis *cfg, redisContext **out, struct redisconn_peer *peer,
                   struct rc_err *err)
{
    enum rc_rc rc = rc_err_set(err, RC_EUNAVAIL, "redis: no Sentinel given");
    for (size_t i = 0; i < cfg->n_sentinels; i++) {
        struct redisconn_peer at = {0};
        if ((rc = ask_sentinel(cfg, &cfg->sentinels[i], at.host, sizeof(at.host), &at.port,
                               err)) != RC_OK) {
            continue; /* the next Sentinel may know */
        }
        snprintf(at.where, sizeof(at.where), "%s:%d (primary %s)", at.host, at.port,
                 cfg->master_name);
        redisContext *c = NULL;
        if ((rc = connect_to(at.host, at.port, NULL, cfg->timeout_ms, &c, at.where, err)) != RC_OK) {
            continue;
        }
        if ((rc = prepare(c, cfg, at.where, err)) == RC_OK &&
            (rc = check_primary(c, at.where, err)) == RC_OK) {
            if (peer != NULL) {
                *peer = at;
                peer->checked_mono = clock_mono_ms();
            }
            *out = c;
            return RC_OK;
        }
        redisFree(c);
    }
    return rc;
}

enum rc_rc
redisconn_open(const struct cfg_redis *cfg, redisContext **out, struct redisconn_peer *peer,
               struct rc_err *err)
{
    if (cfg->n_sentinels > 0) {
        return open_via_sentinels(cfg, out, peer, err);
    }
    struct redisconn_peer at = {0};
    if (cfg->unix_path != NULL) {
        snprintf(at.where, sizeof(at.where), "%s", cfg->unix_path);
    } else {
        snprintf(at.host, sizeof(at.host), "%s", cfg->host != NULL ? cfg->host : "?");
        at.port = cfg->port;
        snprintf(at.where, sizeof(at.where), "%s:%d", at.host, at.port);
    }
    redisContext *c = NULL;
    enum rc_rc rc =
        connect_to(cfg->host, cfg->port, cfg->unix_path, cfg->timeout_ms, &c, at.where, err);
    if (rc != RC_OK) {
        return rc;
    }
    if ((rc = prepare(c, cfg, at.where, err)) != RC_OK) {
        redisFree(c);
        return rc;
    }
    if (peer != NULL) {
        *peer = at;
        peer->checked_mono = clock_mono_ms();
    }
    *out = c;
    return RC_OK;
}

bool
redisconn_primary_moved(const struct cfg_redis *cfg, struct redisconn_peer *peer,
                        int64_t every_ms)
{
    if (cfg->n_sentinels == 0 || clock_mono_ms() - peer->checked_mono < every_ms) {
        return false;
    }
    bool moved = false;
    for (size_t i = 0; i < cfg->n_sentinels; i++) {
        char host[256];
        int port = 0;
        struct rc_err err = RC_ERR_INIT;
        if (ask_sentinel(cfg, &cfg->sentinels[i], host, sizeof(host), &port, &err) == RC_OK) {
            moved = strcmp(host, peer->host) != 0 || port != peer->port;
            break;
        }
    }
    /* From the end of the check: Sentinels slow to answer are not asked again at once. */
    peer->checked_mono = clock_mono_ms();
    return moved;
}
