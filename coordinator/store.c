/* SPDX-License-Identifier: MIT
 * store: research state in Redis. Commands are built with explicit lengths
 * (redisAppendCommandArgv), pipelined, and every write goes through one fenced Lua script.
 * Longer than most files on purpose: it is the only code that knows hiredis or a Redis
 * command, so the link, the reads and the write script stay together here. */
#include "coordinator/store.h"

#include <errno.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

#include <hiredis/hiredis.h>

#include "common/buf.h"
#include "common/cfg.h"
#include "common/log.h"
#include "common/xalloc.h"
#include "coordinator/change.h"
#include "coordinator/keys.h"
#include "coordinator/registry.h"
#include "coordinator/research.h"
#include "coordinator/workers.h"

/* The one write path. KEYS[1] is rc:leader and ARGV[1] this instance: nothing is written by
 * an instance that does not hold the lease. Then ARGV[2..] holds groups, one per change (and
 * one for the pass's figures): "<n ops> <key base>", then its ops, each "<command> <key index>
 * <argc> <args...>" with its key at KEYS[base + index]. A group's ops run in order until one
 * fails; the reply has one element per group: the error, or its last op's reply. Scripts are
 * atomic, so a research, its set membership, its request outcome and its outbox messages
 * change together, and a pass costs one script call per APPLY_GROUPS_MAX changes. */
static const char apply_lua[] =
    "if redis.call('GET', KEYS[1]) ~= ARGV[1] then return redis.error_reply('FENCED') end\n"
    "local out = {}\n"
    "local i = 2\n"
    "local n = #ARGV\n"
    "while i <= n do\n"
    "  local nops = tonumber(ARGV[i])\n"
    "  local base = tonumber(ARGV[i + 1])\n"
    "  i = i + 2\n"
    "  local res = 1\n"
    "  for _ = 1, nops do\n"
    "    local argc = tonumber(ARGV[i + 2])\n"
    "    if type(res) ~= 'table' or not res.err then\n"
    "      res = redis.pcall(ARGV[i], KEYS[base + tonumber(ARGV[i + 1])],\n"
    "                        unpack(ARGV, i + 3, i + 2 + argc))\n"
    "    end\n"
    "    i = i + 3 + argc\n"
    "  end\n"
    "  out[#out + 1] = res\n"
    "end\n"
    "return out\n";

#define APPLY_GROUPS_MAX 256 /* changes per script call: bounds how long Redis is held */

/* Take the lease when free, renew it when ours; a TTL of 0 gives it up (if ours). */
static const char lease_lua[] =
    "local cur = redis.call('GET', KEYS[1])\n"
    "if ARGV[2] == '0' then\n"
    "  if cur == ARGV[1] then redis.call('DEL', KEYS[1]) end\n"
    "  return 0\n"
    "end\n"
    "if cur == ARGV[1] then redis.call('PEXPIRE', KEYS[1], ARGV[2]) return 1 end\n"
    "if not cur then redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2]) return 1 end\n"
    "return 0\n";

#define REQUEST_TTL_S 86400       /* trigger and cancel outcomes are remembered for 24 h (§3) */
#define BUDGET_TTL_S (35 * 86400) /* a month of daily spend stays readable */

/* A command being built, already in the Redis protocol: each argument as "$<len>\r\n<bytes>\r\n"
 * in one buffer. Sent with the "*<n>" header in front (redisAppendFormattedCommand): no copy
 * per argument, no formatting by hiredis. */
struct argv {
    struct buf b;
    size_t n;
};

/* The operations of one group of the apply script: "<cmd> <key index> <argc>", then the args. */
struct ops {
    struct argv args;
    size_t n;
};

/* One script call being built: its keys and its groups. */
struct apply_call {
    struct argv keys;
    struct argv groups;
    size_t n_groups;
};

/* Key indexes of the apply script (KEYS[i]). */
enum {
    K_LEADER = 1,
    K_RESEARCH,
    K_ACTIVE,
    K_FINISHED,
    K_OUTBOX,
    K_REQUEST,
    K_REQUEST_FIGURES,
    K_COORDINATOR,
    K_BUDGET,
    K_CANCEL,
    K_COUNT = K_CANCEL
};

struct store {
    struct cfg_redis cfg; /* strings borrowed from the caller's cfg, which outlives us */
    char *instance;
    redisContext *ctx; /* NULL while disconnected */
    char apply_sha[41];
    char lease_sha[41];
    struct buf key; /* scratch for key building */
    struct buf cmd; /* scratch: the command being queued */
    /* scratch of store_apply, kept between passes so that their buffers grow once */
    struct ops ops;
    struct apply_call call;
    struct argv cmd_args;
    struct buf fixed_keys[K_COUNT + 1]; /* by K_*: each key of a group that names nothing */
};


/* "<prefix><v>\r\n" for a non-negative v, without printf. */
static void
put_count(struct buf *b, char prefix, size_t v)
{
    char text[24];
    size_t i = sizeof(text);
    text[--i] = '\n';
    text[--i] = '\r';
    do {
        text[--i] = (char)('0' + v % 10);
        v /= 10;
    } while (v > 0);
    text[--i] = prefix;
    buf_append(b, text + i, sizeof(text) - i);
}

static void
argv_add(struct argv *a, const void *data, size_t len)
{
    put_count(&a->b, '$', len);
    buf_append(&a->b, data, len);
    buf_append(&a->b, "\r\n", 2);
    a->n++;
}

static void
argv_str(struct argv *a, const char *s)
{
    argv_add(a, s, strlen(s));
}

static void
argv_int(struct argv *a, int64_t v)
{
    char text[32];
    int len = snprintf(text, sizeof(text), "%" PRId64, v);
    argv_add(a, text, (size_t)len);
}

/* Append every argument of `from` to `a`. */
static void
argv_cat(struct argv *a, const struct argv *from)
{
    buf_append(&a->b, from->b.data, from->b.len);
    a->n += from->n;
}

static void
argv_reset(struct argv *a)
{
    buf_reset(&a->b);
    a->n = 0;
}

static void
argv_release(struct argv *a)
{
    buf_release(&a->b);
    *a = (struct argv){0};
}

static void
disconnect(struct store *s)
{
    if (s->ctx != NULL) {
        redisFree(s->ctx);
        s->ctx = NULL;
    }
}

/* Translate a missing reply (I/O error) into RC_EUNAVAIL and drop the link. */
static enum rc_rc
io_error(struct store *s, struct rc_err *err)
{
    enum rc_rc rc = rc_err_set(err, RC_EUNAVAIL, "redis: %s",
                               s->ctx != NULL && s->ctx->errstr[0] ? s->ctx->errstr : "no reply");
    disconnect(s);
    return rc;
}

/* Translate an error reply. FENCED (our script: not the leader) is RC_ECONFLICT. NOSCRIPT
 * (scripts flushed) drops the link so that they are loaded again on reconnect; it and the
 * replies of a Redis that is starting, failing over or busy are RC_EUNAVAIL (try again
 * later); anything else is RC_EBACKEND. */
static enum rc_rc
reply_error(struct store *s, const redisReply *r, struct rc_err *err)
{
    static const char *const transient[] = {"LOADING",  "BUSY",     "MASTERDOWN",
                                            "READONLY", "TRYAGAIN", "CLUSTERDOWN"};
    if (strstr(r->str, "FENCED") != NULL) {
        return rc_err_set(err, RC_ECONFLICT, "redis: %s", r->str);
    }
    if (strncmp(r->str, "NOSCRIPT", 8) == 0) {
        disconnect(s);
        return rc_err_set(err, RC_EUNAVAIL, "redis: scripts were flushed: %s", r->str);
    }
    for (size_t i = 0; i < sizeof(transient) / sizeof(transient[0]); i++) {
        if (strncmp(r->str, transient[i], strlen(transient[i])) == 0) {
            return rc_err_set(err, RC_EUNAVAIL, "redis: %s", r->str);
        }
    }
    return rc_err_set(err, RC_EBACKEND, "redis: %s", r->str);
}

/* Queue a command on the pipeline. */
static void
append(struct store *s, struct argv *a)
{
    buf_reset(&s->cmd);
    put_count(&s->cmd, '*', a->n);
    buf_append(&s->cmd, a->b.data, a->b.len);
    redisAppendFormattedCommand(s->ctx, s->cmd.data, s->cmd.len);
    argv_reset(a);
}

/* Send one command and read its reply (for connection set-up). */
static enum rc_rc
command(struct store *s, struct argv *a, redisReply **out, struct rc_err *err)
{
    append(s, a);
    redisReply *r = NULL;
    if (redisGetReply(s->ctx, (void **)&r) != REDIS_OK || r == NULL) {
        return io_error(s, err);
    }
    if (r->type == REDIS_REPLY_ERROR) {
        enum rc_rc rc = reply_error(s, r, err);
        freeReplyObject(r);
        return rc;
    }
    *out = r;
    return RC_OK;
}

static enum rc_rc
load_script(struct store *s, const char *lua, char sha[41], struct rc_err *err)
{
    struct argv a = {0};
    redisReply *r = NULL;
    argv_str(&a, "SCRIPT");
    argv_str(&a, "LOAD");
    argv_str(&a, lua);
    enum rc_rc rc = command(s, &a, &r, err);
    argv_release(&a);
    if (rc != RC_OK) {
        return rc;
    }
    if (r->type != REDIS_REPLY_STRING || r->len != 40) {
        freeReplyObject(r);
        return rc_err_set(err, RC_EBACKEND, "redis: SCRIPT LOAD gave no sha");
    }
    memcpy(sha, r->str, 40);
    sha[40] = '\0';
    freeReplyObject(r);
    return RC_OK;
}

/* Connect, authenticate, select the db and load the scripts, unless connected already. */
static enum rc_rc
ensure(struct store *s, struct rc_err *err)
{
    if (s->ctx != NULL) {
        return RC_OK;
    }
    struct timeval tv = {.tv_sec = (time_t)(s->cfg.timeout_ms / 1000),
                         .tv_usec = (suseconds_t)((s->cfg.timeout_ms % 1000) * 1000)};
    redisContext *c = s->cfg.unix_path != NULL
                          ? redisConnectUnixWithTimeout(s->cfg.unix_path, tv)
                          : redisConnectWithTimeout(s->cfg.host, s->cfg.port, tv);
    if (c == NULL) {
        return rc_err_set(err, RC_EUNAVAIL, "redis: cannot allocate a context");
    }
    if (c->err) {
        enum rc_rc rc = rc_err_set(err, RC_EUNAVAIL, "redis: %s", c->errstr);
        redisFree(c);
        return rc;
    }
    if (redisSetTimeout(c, tv) != REDIS_OK) {
        redisFree(c);
        return rc_err_set(err, RC_EUNAVAIL, "redis: cannot set timeout");
    }
    s->ctx = c;
    struct argv a = {0};
    redisReply *r = NULL;
    enum rc_rc rc = RC_OK;
    if (s->cfg.password != NULL) {
        argv_str(&a, "AUTH");
        argv_str(&a, s->cfg.password);
        if ((rc = command(s, &a, &r, err)) != RC_OK) {
            goto out;
        }
        freeReplyObject(r);
    }
    if (s->cfg.db != 0) {
        argv_str(&a, "SELECT");
        argv_int(&a, s->cfg.db);
        if ((rc = command(s, &a, &r, err)) != RC_OK) {
            goto out;
        }
        freeReplyObject(r);
    }
    if ((rc = load_script(s, apply_lua, s->apply_sha, err)) != RC_OK) {
        goto out;
    }
    rc = load_script(s, lease_lua, s->lease_sha, err);
out:
    argv_release(&a);
    if (rc != RC_OK) {
        disconnect(s);
        if (rc == RC_EBACKEND) {
            rc = RC_EUNAVAIL; /* e.g. a loading Redis: try again later */
        }
    }
    return rc;
}

enum rc_rc
store_new(struct store **out, const struct cfg_redis *cfg, const char *instance, struct rc_err *err)
{
    (void)err;
    struct store *s = xcalloc(1, sizeof(*s));
    s->cfg = *cfg;
    s->instance = xstrdup(instance);
    *out = s;
    return RC_OK;
}

void
store_free(struct store *s)
{
    if (s == NULL) {
        return;
    }
    disconnect(s);
    free(s->instance);
    buf_release(&s->key);
    buf_release(&s->cmd);
    argv_release(&s->ops.args);
    argv_release(&s->call.keys);
    argv_release(&s->call.groups);
    argv_release(&s->cmd_args);
    for (int i = 0; i <= K_COUNT; i++) {
        buf_release(&s->fixed_keys[i]);
    }
    free(s);
}


/* Read the next pipelined reply. RC_EUNAVAIL on I/O error (link dropped). */
static enum rc_rc
next_reply(struct store *s, redisReply **out, struct rc_err *err)
{
    void *r = NULL;
    if (redisGetReply(s->ctx, &r) != REDIS_OK || r == NULL) {
        return io_error(s, err);
    }
    *out = r;
    return RC_OK;
}

enum rc_rc
store_lease(struct store *s, int64_t ttl_ms, bool *leading, struct rc_err *err)
{
    enum rc_rc rc = ensure(s, err);
    if (rc != RC_OK) {
        return rc;
    }
    struct argv a = {0};
    redisReply *r = NULL;
    argv_str(&a, "EVALSHA");
    argv_str(&a, s->lease_sha);
    argv_str(&a, "1");
    argv_str(&a, keys_leader(&s->key, s->cfg.key_prefix));
    argv_str(&a, s->instance);
    argv_int(&a, ttl_ms);
    rc = command(s, &a, &r, err);
    argv_release(&a);
    if (rc != RC_OK) {
        return rc;
    }
    *leading = r->type == REDIS_REPLY_INTEGER && r->integer == 1;
    freeReplyObject(r);
    return RC_OK;
}

enum rc_rc
store_load_active(struct store *s, struct registry *reg, struct rc_err *err)
{
    enum rc_rc rc = ensure(s, err);
    if (rc != RC_OK) {
        return rc;
    }
    struct argv a = {0};
    redisReply *ids = NULL;
    argv_str(&a, "ZRANGE");
    argv_str(&a, keys_active(&s->key, s->cfg.key_prefix));
    argv_str(&a, "0");
    argv_str(&a, "-1");
    if ((rc = command(s, &a, &ids, err)) != RC_OK) {
        goto out;
    }
    for (size_t i = 0; i < ids->elements; i++) {
        argv_str(&a, "HGETALL");
        argv_str(&a, keys_research(&s->key, s->cfg.key_prefix, ids->element[i]->str));
        append(s, &a);
    }
    registry_clear(reg);
    for (size_t i = 0; i < ids->elements; i++) {
        redisReply *h = NULL;
        if ((rc = next_reply(s, &h, err)) != RC_OK) {
            registry_clear(reg);
            goto out;
        }
        struct research *r = research_new();
        for (size_t j = 0; h->type == REDIS_REPLY_ARRAY && j + 1 < h->elements; j += 2) {
            int f = research_field_parse(h->element[j]->str);
            if (f >= 0) {
                research_set(r, (enum research_field)f, h->element[j + 1]->str);
            }
        }
        freeReplyObject(h);
        if (research_get(r, RF_RESEARCH_ID) == NULL) {
            log_warn("active research has no hash", "research_id=%s", ids->element[i]->str);
            research_free(r);
            continue;
        }
        registry_add(reg, r);
    }
out:
    if (ids != NULL) {
        freeReplyObject(ids);
    }
    argv_release(&a);
    return rc;
}

/* Round trip 1 of reading workers: drop the members not seen since `since`, list the rest. */
static enum rc_rc
list_live_workers(struct store *s, int64_t since, redisReply *lists[WORKER_TYPE_COUNT],
                  struct rc_err *err)
{
    struct argv a = {0};
    char min[40];
    snprintf(min, sizeof(min), "(%" PRId64, since);
    for (int t = 0; t < WORKER_TYPE_COUNT; t++) {
        const char *key = keys_workers(&s->key, s->cfg.key_prefix, (enum worker_type)t);
        argv_str(&a, "ZREMRANGEBYSCORE");
        argv_str(&a, key);
        argv_str(&a, "-inf");
        argv_int(&a, since);
        append(s, &a);
        argv_str(&a, "ZRANGEBYSCORE");
        argv_str(&a, key);
        argv_str(&a, min);
        argv_str(&a, "+inf");
        append(s, &a);
    }
    argv_release(&a);
    enum rc_rc rc = RC_OK;
    for (int t = 0; t < WORKER_TYPE_COUNT && rc == RC_OK; t++) {
        redisReply *dropped = NULL;
        if ((rc = next_reply(s, &dropped, err)) == RC_OK) {
            freeReplyObject(dropped);
            rc = next_reply(s, &lists[t], err);
        }
    }
    return rc;
}

/* One worker's HMGET reply (type state dispatch_id last_seen) as a heartbeat, when it is of
 * type `wt` and seen after `since`. */
static bool
parse_beat(const redisReply *h, const char *id, enum worker_type wt, int64_t since,
           struct worker_beat *out)
{
    enum worker_type type;
    if (h->type != REDIS_REPLY_ARRAY || h->elements != 4 ||
        h->element[0]->type != REDIS_REPLY_STRING || h->element[1]->type != REDIS_REPLY_STRING ||
        h->element[3]->type != REDIS_REPLY_STRING ||
        worker_type_parse(h->element[0]->str, &type) != RC_OK || type != wt) {
        return false;
    }
    int64_t seen = strtoll(h->element[3]->str, NULL, 10);
    if (seen <= since) {
        return false;
    }
    out->id = xstrdup(id);
    out->type = wt;
    out->idle = strcmp(h->element[1]->str, "idle") == 0;
    out->dispatch_id = h->element[2]->type == REDIS_REPLY_STRING && h->element[2]->len > 0
                           ? xstrdup(h->element[2]->str)
                           : NULL;
    out->last_seen_ms = seen;
    return true;
}

static size_t
list_len(const redisReply *r)
{
    return r->type == REDIS_REPLY_ARRAY ? r->elements : 0;
}

enum rc_rc
store_read_workers(struct store *s, int64_t now_ms, int64_t timeout_ms, struct worker_beat **beats,
                   size_t *n, struct rc_err *err)
{
    enum rc_rc rc = ensure(s, err);
    if (rc != RC_OK) {
        return rc;
    }
    struct argv a = {0};
    struct worker_beat *out = NULL;
    size_t n_out = 0, cap = 0;
    redisReply *lists[WORKER_TYPE_COUNT] = {0};
    const int64_t since = now_ms - timeout_ms;
    if ((rc = list_live_workers(s, since, lists, err)) != RC_OK) {
        goto out;
    }
    /* Round trip 2: every live member's heartbeat. */
    for (int t = 0; t < WORKER_TYPE_COUNT; t++) {
        for (size_t i = 0; i < list_len(lists[t]); i++) {
            argv_str(&a, "HMGET");
            argv_str(&a, keys_worker(&s->key, s->cfg.key_prefix, lists[t]->element[i]->str));
            argv_str(&a, "type");
            argv_str(&a, "state");
            argv_str(&a, "dispatch_id");
            argv_str(&a, "last_seen");
            append(s, &a);
        }
    }
    for (int t = 0; t < WORKER_TYPE_COUNT; t++) {
        for (size_t i = 0; i < list_len(lists[t]); i++) {
            redisReply *h = NULL;
            if ((rc = next_reply(s, &h, err)) != RC_OK) {
                goto out;
            }
            out = xgrow(out, &cap, n_out + 1, sizeof(*out));
            n_out +=
                parse_beat(h, lists[t]->element[i]->str, (enum worker_type)t, since, &out[n_out]);
            freeReplyObject(h);
        }
    }
    *beats = out;
    *n = n_out;
    out = NULL;
    n_out = 0;
out:
    for (size_t i = 0; i < n_out; i++) {
        free(out[i].id);
        free(out[i].dispatch_id);
    }
    free(out);
    for (int t = 0; t < WORKER_TYPE_COUNT; t++) {
        if (lists[t] != NULL) {
            freeReplyObject(lists[t]);
        }
    }
    argv_release(&a);
    return rc;
}

enum rc_rc
store_find_new_workers(struct store *s, int64_t now_ms, int64_t timeout_ms,
                       bool (*known)(const void *arg, const char *id), const void *arg,
                       bool *any_new, struct rc_err *err)
{
    enum rc_rc rc = ensure(s, err);
    redisReply *lists[WORKER_TYPE_COUNT] = {0};
    if (rc == RC_OK) {
        rc = list_live_workers(s, now_ms - timeout_ms, lists, err);
    }
    bool found = false;
    for (int t = 0; t < WORKER_TYPE_COUNT; t++) {
        for (size_t i = 0; rc == RC_OK && i < list_len(lists[t]) && !found; i++) {
            const redisReply *id = lists[t]->element[i];
            found = id->type == REDIS_REPLY_STRING && !known(arg, id->str);
        }
        if (lists[t] != NULL) {
            freeReplyObject(lists[t]);
        }
    }
    if (rc == RC_OK) {
        *any_new = found;
    }
    return rc;
}

/* Read the reply of HGET <budget> spent_usd. */
static enum rc_rc
read_spent(struct store *s, double *spent_usd, struct rc_err *err)
{
    redisReply *r = NULL;
    enum rc_rc rc = next_reply(s, &r, err);
    if (rc == RC_OK) {
        *spent_usd = r->type == REDIS_REPLY_STRING ? strtod(r->str, NULL) : 0.0;
        freeReplyObject(r);
    }
    return rc;
}

enum rc_rc
store_get_requests(struct store *s, const char *const *request_ids, size_t n,
                   const char *budget_day, struct store_request *out, double *spent_usd,
                   struct rc_err *err)
{
    enum rc_rc rc = ensure(s, err);
    if (rc != RC_OK) {
        return rc;
    }
    struct argv a = {0};
    for (size_t i = 0; i < n; i++) {
        argv_str(&a, "GET");
        argv_str(&a, keys_request(&s->key, s->cfg.key_prefix, request_ids[i]));
        append(s, &a);
        argv_str(&a, "HGETALL");
        argv_str(&a, keys_request_figures(&s->key, s->cfg.key_prefix, request_ids[i]));
        append(s, &a);
    }
    if (budget_day != NULL) {
        argv_str(&a, "HGET");
        argv_str(&a, keys_budget(&s->key, s->cfg.key_prefix, budget_day));
        argv_str(&a, "spent_usd");
        append(s, &a);
    }
    argv_release(&a);
    size_t done = 0;
    for (; done < n; done++) {
        redisReply *v = NULL, *fig = NULL;
        if ((rc = next_reply(s, &v, err)) != RC_OK) {
            break;
        }
        if ((rc = next_reply(s, &fig, err)) != RC_OK) {
            freeReplyObject(v);
            break;
        }
        struct store_request *o = &out[done];
        *o = (struct store_request){0};
        if (v->type == REDIS_REPLY_STRING) {
            o->value = xstrdup(v->str);
        }
        for (size_t j = 0; fig->type == REDIS_REPLY_ARRAY && j + 1 < fig->elements; j += 2) {
            const char *k = fig->element[j]->str, *val = fig->element[j + 1]->str;
            if (strcmp(k, "active_count") == 0) {
                o->figures.has_capacity = true;
                o->figures.active_count = strtoll(val, NULL, 10);
            } else if (strcmp(k, "limit") == 0) {
                o->figures.limit = strtoll(val, NULL, 10);
            } else if (strcmp(k, "remaining") == 0) {
                o->figures.has_budget = true;
                o->figures.remaining = strtod(val, NULL);
            } else if (strcmp(k, "daily_limit") == 0) {
                o->figures.daily_limit = strtod(val, NULL);
            }
        }
        freeReplyObject(v);
        freeReplyObject(fig);
    }
    if (rc == RC_OK && budget_day != NULL) {
        rc = read_spent(s, spent_usd, err);
    }
    if (rc != RC_OK) {
        for (size_t i = 0; i < done; i++) {
            store_request_release(&out[i]);
        }
    }
    return rc;
}

/* A remembered cancel outcome from its HGETALL reply (request_id NULL when there is none). */
static void
parse_cancel_memo(const redisReply *h, const char *request_id, struct cancel_memo *m)
{
    *m = (struct cancel_memo){0};
    for (size_t j = 0; h->type == REDIS_REPLY_ARRAY && j + 1 < h->elements; j += 2) {
        const char *k = h->element[j]->str;
        char *v = xstrndup(h->element[j + 1]->str, h->element[j + 1]->len);
        char **slot = strcmp(k, "outcome") == 0       ? &m->outcome
                      : strcmp(k, "research_id") == 0 ? &m->research_id
                      : strcmp(k, "phase") == 0       ? &m->phase
                      : strcmp(k, "dispatch_id") == 0 ? &m->dispatch_id
                                                      : NULL;
        if (slot != NULL && *slot == NULL) {
            *slot = v;
        } else {
            free(v);
        }
    }
    if (m->outcome == NULL || m->research_id == NULL) {
        cancel_memo_release(m); /* absent (or damaged): not remembered */
        return;
    }
    m->request_id = xstrdup(request_id);
}

enum rc_rc
store_get_cancels(struct store *s, const char *const *request_ids, const char *const *research_ids,
                  size_t n, struct cancel_memo *memos, char **status, struct rc_err *err)
{
    enum rc_rc rc = ensure(s, err);
    if (rc != RC_OK) {
        return rc;
    }
    struct argv a = {0};
    for (size_t i = 0; i < n; i++) {
        if (request_ids[i] != NULL) {
            argv_str(&a, "HGETALL");
            argv_str(&a, keys_cancel(&s->key, s->cfg.key_prefix, request_ids[i]));
            append(s, &a);
        }
        argv_str(&a, "HGET");
        argv_str(&a, keys_research(&s->key, s->cfg.key_prefix, research_ids[i]));
        argv_str(&a, "status");
        append(s, &a);
    }
    argv_release(&a);
    size_t done = 0;
    for (; done < n; done++) {
        redisReply *h = NULL, *st = NULL;
        memos[done] = (struct cancel_memo){0};
        if (request_ids[done] != NULL) {
            if ((rc = next_reply(s, &h, err)) != RC_OK) {
                break;
            }
            parse_cancel_memo(h, request_ids[done], &memos[done]);
            freeReplyObject(h);
        }
        if ((rc = next_reply(s, &st, err)) != RC_OK) {
            cancel_memo_release(&memos[done]);
            break;
        }
        status[done] = st->type == REDIS_REPLY_STRING ? xstrndup(st->str, st->len) : NULL;
        freeReplyObject(st);
    }
    if (rc != RC_OK) {
        for (size_t i = 0; i < done; i++) {
            cancel_memo_release(&memos[i]);
            free(status[i]);
            status[i] = NULL;
        }
    }
    return rc;
}

void
store_request_release(struct store_request *r)
{
    free(r->value);
    *r = (struct store_request){0};
}



static void
op(struct ops *o, const char *cmd, int key, size_t argc)
{
    o->n++;
    argv_str(&o->args, cmd);
    argv_int(&o->args, key);
    argv_int(&o->args, (int64_t)argc);
}

/* The research's fields: one HSET of those set, one HDEL of those cleared. */
static void
plan_fields(const struct change *c, struct ops *o)
{
    size_t n_set = 0, n_del = 0;
    for (int i = 0; i < RF_COUNT; i++) {
        if (c->set[i]) {
            c->value[i] != NULL ? n_set++ : n_del++;
        }
    }
    if (n_set > 0) {
        op(o, "HSET", K_RESEARCH, n_set * 2);
        for (int i = 0; i < RF_COUNT; i++) {
            if (c->set[i] && c->value[i] != NULL) {
                argv_str(&o->args, research_field_name((enum research_field)i));
                argv_str(&o->args, c->value[i]);
            }
        }
    }
    if (n_del > 0) {
        op(o, "HDEL", K_RESEARCH, n_del);
        for (int i = 0; i < RF_COUNT; i++) {
            if (c->set[i] && c->value[i] == NULL) {
                argv_str(&o->args, research_field_name((enum research_field)i));
            }
        }
    }
}

/* A created research joins rc:active; a finished one moves to rc:finished and expires. */
static void
plan_sets(const struct change *c, int64_t retention_s, struct ops *o)
{
    if (c->kind == CHANGE_CREATE) {
        op(o, "ZADD", K_ACTIVE, 2);
        argv_int(&o->args, c->score);
        argv_str(&o->args, c->research_id);
    } else if (c->kind == CHANGE_FINISH) {
        op(o, "ZREM", K_ACTIVE, 1);
        argv_str(&o->args, c->research_id);
        op(o, "ZADD", K_FINISHED, 2);
        argv_int(&o->args, c->score);
        argv_str(&o->args, c->research_id);
        op(o, "EXPIRE", K_RESEARCH, 1);
        argv_int(&o->args, retention_s);
    }
}

/* A trigger's outcome under rc:request:<id>, and a rejection's figures beside it. */
static void
plan_request(const struct change *c, struct ops *o)
{
    if (c->request_id == NULL) {
        return;
    }
    op(o, "SET", K_REQUEST, 3);
    argv_str(&o->args, c->request_value);
    argv_str(&o->args, "EX");
    argv_int(&o->args, REQUEST_TTL_S);
    const struct rejection_figures *f = &c->figures;
    if (!f->has_capacity && !f->has_budget) {
        return;
    }
    op(o, "HSET", K_REQUEST_FIGURES, f->has_capacity && f->has_budget ? 8 : 4);
    if (f->has_capacity) {
        argv_str(&o->args, "active_count");
        argv_int(&o->args, f->active_count);
        argv_str(&o->args, "limit");
        argv_int(&o->args, f->limit);
    }
    if (f->has_budget) {
        char text[64];
        argv_str(&o->args, "remaining");
        snprintf(text, sizeof(text), "%.6f", f->remaining);
        argv_str(&o->args, text);
        argv_str(&o->args, "daily_limit");
        snprintf(text, sizeof(text), "%.6f", f->daily_limit);
        argv_str(&o->args, text);
    }
    op(o, "EXPIRE", K_REQUEST_FIGURES, 1);
    argv_int(&o->args, REQUEST_TTL_S);
}

/* Money the change charges, onto its day's spend. */
static void
plan_budget(const struct change *c, struct ops *o)
{
    if (c->cost_usd == 0) {
        return;
    }
    char text[64];
    snprintf(text, sizeof(text), "%.17g", c->cost_usd);
    op(o, "HINCRBYFLOAT", K_BUDGET, 2);
    argv_str(&o->args, "spent_usd");
    argv_str(&o->args, text);
    op(o, "EXPIRE", K_BUDGET, 1);
    argv_int(&o->args, BUDGET_TTL_S);
}

/* A cancel's outcome under rc:cancel:<request_id>. */
static void
plan_cancel_memo(const struct change *c, struct ops *o)
{
    const struct cancel_memo *m = &c->cancel;
    if (m->request_id == NULL) {
        return;
    }
    op(o, "HSET", K_CANCEL, 4 + (m->phase != NULL ? 2 : 0) + (m->dispatch_id != NULL ? 2 : 0));
    argv_str(&o->args, "outcome");
    argv_str(&o->args, m->outcome);
    argv_str(&o->args, "research_id");
    argv_str(&o->args, m->research_id);
    if (m->phase != NULL) {
        argv_str(&o->args, "phase");
        argv_str(&o->args, m->phase);
    }
    if (m->dispatch_id != NULL) {
        argv_str(&o->args, "dispatch_id");
        argv_str(&o->args, m->dispatch_id);
    }
    op(o, "EXPIRE", K_CANCEL, 1);
    argv_int(&o->args, REQUEST_TTL_S);
}

/* The messages the change causes, into the outbox with it: one HSET for them all. */
static void
plan_outbox(const struct change *c, struct ops *o)
{
    if (c->n_out == 0) {
        return;
    }
    struct buf frame = BUF_INIT;
    op(o, "HSET", K_OUTBOX, 2 * c->n_out);
    for (size_t i = 0; i < c->n_out; i++) {
        const struct outmsg *m = &c->out[i];
        RC_ASSERT(m->outbox_id != NULL);
        buf_reset(&frame);
        store_outbox_frame((int)m->topic, m->key, m->key_len, m->payload, m->len, &frame);
        argv_str(&o->args, m->outbox_id);
        argv_add(&o->args, frame.data, frame.len);
    }
    buf_release(&frame);
}

static void
plan_change(const struct change *c, int64_t retention_s, struct ops *o)
{
    plan_fields(c, o);
    plan_sets(c, retention_s, o);
    plan_request(c, o);
    plan_cancel_memo(c, o);
    plan_budget(c, o);
    plan_outbox(c, o);
}

static void
plan_stats(const struct store_stats *st, const char *instance, struct ops *o)
{
    op(o, "HSET", K_COORDINATOR, st->last_cycle_at_ms > 0 ? 14 : 10);
    argv_str(&o->args, "instance");
    argv_str(&o->args, instance);
    argv_str(&o->args, "version");
    argv_str(&o->args, RC_VERSION);
    argv_str(&o->args, "started_at");
    argv_int(&o->args, st->started_at_ms);
    argv_str(&o->args, "active");
    argv_int(&o->args, st->active);
    argv_str(&o->args, "limit");
    argv_int(&o->args, st->limit);
    if (st->last_cycle_at_ms > 0) {
        argv_str(&o->args, "last_cycle_at");
        argv_int(&o->args, st->last_cycle_at_ms);
        char text[32];
        snprintf(text, sizeof(text), "%.3f", st->cycle_ms);
        argv_str(&o->args, "cycle_ms");
        argv_str(&o->args, text);
    }
    const struct {
        const char *name;
        int64_t delta;
    } counters[] = {
        {"triggers", st->triggers},
        {"completions", st->completions},
        {"stale_completions", st->stale_completions},
        {"invalid_inputs", st->invalid_inputs},
        {"redispatches", st->redispatches},
    };
    for (size_t i = 0; i < sizeof(counters) / sizeof(counters[0]); i++) {
        /* HINCRBY 0 creates the field, so every counter is readable from the start. */
        op(o, "HINCRBY", K_COORDINATOR, 2);
        argv_str(&o->args, counters[i].name);
        argv_int(&o->args, counters[i].delta);
    }
    /* Today's budget is readable (limit and spend) even before anything was charged. */
    char text[64];
    snprintf(text, sizeof(text), "%.17g", st->daily_limit_usd);
    op(o, "HSET", K_BUDGET, 2);
    argv_str(&o->args, "daily_limit_usd");
    argv_str(&o->args, text);
    op(o, "EXPIRE", K_BUDGET, 1);
    argv_int(&o->args, BUDGET_TTL_S);
    /* Last: its reply, the day's spend, is the script's. */
    op(o, "HINCRBYFLOAT", K_BUDGET, 2);
    argv_str(&o->args, "spent_usd");
    argv_str(&o->args, "0");
}

/* The keys one apply script may touch besides the fixed ones (NULL: none). */
struct apply_keys {
    const char *research_id;
    const char *request_id;
    const char *cancel_request_id;
    const char *budget_day;
};


/* Key `i` (K_*) of a group that names `k`, into s->key. */
static const struct buf *
group_key(struct store *s, int i, const struct apply_keys *k)
{
    const char *prefix = s->cfg.key_prefix;
    const char *request_id = k->request_id != NULL ? k->request_id : "";
    switch (i) {
    case K_LEADER:
        keys_leader(&s->key, prefix);
        break;
    case K_RESEARCH:
        keys_research(&s->key, prefix, k->research_id != NULL ? k->research_id : "");
        break;
    case K_ACTIVE:
        keys_active(&s->key, prefix);
        break;
    case K_FINISHED:
        keys_finished(&s->key, prefix);
        break;
    case K_OUTBOX:
        keys_outbox(&s->key, prefix);
        break;
    case K_REQUEST:
        keys_request(&s->key, prefix, request_id);
        break;
    case K_REQUEST_FIGURES:
        keys_request_figures(&s->key, prefix, request_id);
        break;
    case K_COORDINATOR:
        keys_coordinator(&s->key, prefix);
        break;
    case K_BUDGET:
        keys_budget(&s->key, prefix, k->budget_day != NULL ? k->budget_day : "");
        break;
    default:
        keys_cancel(&s->key, prefix, k->cancel_request_id != NULL ? k->cancel_request_id : "");
        break;
    }
    return &s->key;
}

/* Whether key `i` of a group depends on what the group names. */
static bool
key_varies(int i, const struct apply_keys *k)
{
    switch (i) {
    case K_RESEARCH:
        return k->research_id != NULL;
    case K_REQUEST:
    case K_REQUEST_FIGURES:
        return k->request_id != NULL;
    case K_BUDGET:
        return k->budget_day != NULL;
    case K_CANCEL:
        return k->cancel_request_id != NULL;
    default:
        return false;
    }
}

/* Add a group: the keys `k` names, then the ops of `o` (which is emptied). */
static void
add_group(struct store *s, struct apply_call *call, const struct apply_keys *k, struct ops *o)
{
    if (s->fixed_keys[K_LEADER].data == NULL) {
        /* Every key as it is for a group that names nothing (most groups name only their
         * research): built once, then copied. */
        const struct apply_keys none = {0};
        for (int i = K_LEADER; i <= K_COUNT; i++) {
            const struct buf *key = group_key(s, i, &none);
            buf_append(&s->fixed_keys[i], key->data, key->len);
        }
    }
    /* In K_* order, so that KEYS[base + K_x] is the group's key x. */
    for (int i = K_LEADER; i <= K_COUNT; i++) {
        const struct buf *key = key_varies(i, k) ? group_key(s, i, k) : &s->fixed_keys[i];
        argv_add(&call->keys, key->data, key->len);
    }
    argv_int(&call->groups, (int64_t)o->n);
    argv_int(&call->groups, (int64_t)(call->n_groups * K_COUNT));
    argv_cat(&call->groups, &o->args);
    argv_reset(&o->args);
    o->n = 0;
    call->n_groups++;
}

/* Queue EVALSHA apply with the call's groups, and empty it. */
static void
send_call(struct store *s, struct apply_call *call)
{
    struct argv *a = &s->cmd_args;
    argv_str(a, "EVALSHA");
    argv_str(a, s->apply_sha);
    argv_int(a, (int64_t)(call->n_groups * K_COUNT));
    argv_cat(a, &call->keys);
    argv_str(a, s->instance);
    argv_cat(a, &call->groups);
    append(s, a); /* resets it */
    argv_reset(&call->keys);
    argv_reset(&call->groups);
    call->n_groups = 0;
}

/* The reply to one group: RC_OK, or the error it met (in *err). */
static enum rc_rc
group_result(struct store *s, const redisReply *r, struct rc_err *err)
{
    return r->type == REDIS_REPLY_ERROR ? reply_error(s, r, err) : RC_OK;
}

enum rc_rc
store_apply(struct store *s, const struct change *changes, size_t n,
            const struct store_stats *stats, int64_t retention_s, enum rc_rc *results,
            double *spent_usd, struct rc_err *err)
{
    enum rc_rc rc = ensure(s, err);
    if (rc != RC_OK) {
        return rc;
    }
    const size_t n_groups = n + (stats != NULL ? 1 : 0);
    struct ops *o = &s->ops;
    struct apply_call *call = &s->call;
    size_t n_calls = 0;
    for (size_t i = 0; i < n_groups; i++) {
        if (i < n) {
            const struct change *c = &changes[i];
            plan_change(c, retention_s, o);
            struct apply_keys k = {.research_id = c->research_id,
                                   .request_id = c->request_id,
                                   .cancel_request_id = c->cancel.request_id,
                                   .budget_day = c->cost_usd != 0 ? c->budget_day : NULL};
            add_group(s, call, &k, o);
        } else {
            plan_stats(stats, s->instance, o);
            struct apply_keys k = {.budget_day = stats->budget_day};
            add_group(s, call, &k, o);
        }
        if (call->n_groups == APPLY_GROUPS_MAX || i + 1 == n_groups) {
            send_call(s, call);
            n_calls++;
        }
    }
    /* One reply per call, in one round trip for all of them (a pass holds at most a sweep
     * slice and a batch of inputs, so its commands stay a few MB): an array with one element
     * per group, or one error for them all (FENCED: not the leader; NOSCRIPT; ...). */
    bool first_error = true;
    size_t g = 0;
    for (size_t k = 0; k < n_calls; k++) {
        redisReply *r = NULL;
        if ((rc = next_reply(s, &r, err)) != RC_OK) {
            return rc;
        }
        const size_t in_call = n_groups - g < APPLY_GROUPS_MAX ? n_groups - g : APPLY_GROUPS_MAX;
        for (size_t j = 0; j < in_call; j++, g++) {
            const redisReply *e = r;
            if (r->type == REDIS_REPLY_ARRAY) {
                e = j < r->elements ? r->element[j] : NULL;
            }
            struct rc_err why = RC_ERR_INIT;
            enum rc_rc one = e != NULL ? group_result(s, e, &why)
                                       : rc_err_set(&why, RC_EBACKEND, "redis: short reply");
            if (one == RC_EUNAVAIL) {
                freeReplyObject(r); /* the link may be gone: read no further */
                return rc_err_set(err, one, "%s", why.msg);
            }
            if (one != RC_OK && first_error) {
                rc_err_set(err, one, "%s", why.msg);
                first_error = false;
            }
            if (g < n) {
                results[g] = one;
            } else if (one != RC_OK) {
                rc = one;
            } else if (spent_usd != NULL && e->type == REDIS_REPLY_STRING) {
                *spent_usd = strtod(e->str, NULL);
            }
        }
        freeReplyObject(r);
    }
    return rc;
}

enum rc_rc
store_outbox_delete(struct store *s, char *const *ids, size_t n, struct rc_err *err)
{
    if (n == 0) {
        return RC_OK;
    }
    enum rc_rc rc = ensure(s, err);
    if (rc != RC_OK) {
        return rc;
    }
    struct argv a = {0};
    redisReply *r = NULL;
    argv_str(&a, "HDEL");
    argv_str(&a, keys_outbox(&s->key, s->cfg.key_prefix));
    for (size_t i = 0; i < n; i++) {
        argv_str(&a, ids[i]);
    }
    rc = command(s, &a, &r, err);
    argv_release(&a);
    if (rc == RC_OK) {
        freeReplyObject(r);
    }
    return rc;
}

static int
cmp_entry(const void *a, const void *b)
{
    const struct store_outbox_entry *x = a, *y = b;
    /* ids are "<instance>:<seq>" with a zero-padded seq: plain order is publish order */
    return strcmp(x->id, y->id);
}

enum rc_rc
store_outbox_load(struct store *s, struct store_outbox_entry **out, size_t *n, struct rc_err *err)
{
    enum rc_rc rc = ensure(s, err);
    if (rc != RC_OK) {
        return rc;
    }
    struct argv a = {0};
    redisReply *r = NULL;
    argv_str(&a, "HGETALL");
    argv_str(&a, keys_outbox(&s->key, s->cfg.key_prefix));
    rc = command(s, &a, &r, err);
    argv_release(&a);
    if (rc != RC_OK) {
        return rc;
    }
    size_t count = r->type == REDIS_REPLY_ARRAY ? r->elements / 2 : 0;
    struct store_outbox_entry *e = xcalloc(count > 0 ? count : 1, sizeof(*e));
    for (size_t i = 0; i < count; i++) {
        e[i].id = xstrndup(r->element[2 * i]->str, r->element[2 * i]->len);
        e[i].len = r->element[2 * i + 1]->len;
        e[i].data = xmalloc(e[i].len + 1);
        memcpy(e[i].data, r->element[2 * i + 1]->str, e[i].len);
    }
    freeReplyObject(r);
    qsort(e, count, sizeof(*e), cmp_entry);
    *out = e;
    *n = count;
    return RC_OK;
}

void
store_outbox_free(struct store_outbox_entry *entries, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(entries[i].id);
        free(entries[i].data);
    }
    free(entries);
}

/* Frame: one byte topic, one byte "has a key", four bytes key length (big endian), the key,
 * the payload. */
void
store_outbox_frame(int topic, const char *key, size_t key_len, const void *payload, size_t len,
                   struct buf *out)
{
    RC_ASSERT(topic >= 0 && topic < 256 && key_len <= UINT32_MAX);
    if (key == NULL) {
        key_len = 0;
    }
    unsigned char head[6] = {(unsigned char)topic,           key != NULL,
                             (unsigned char)(key_len >> 24), (unsigned char)(key_len >> 16),
                             (unsigned char)(key_len >> 8),  (unsigned char)key_len};
    buf_append(out, head, sizeof(head));
    buf_append(out, key != NULL ? key : "", key_len);
    buf_append(out, payload, len);
}

bool
store_outbox_unframe(const char *data, size_t len, int *topic, const char **key, size_t *key_len,
                     const char **payload, size_t *payload_len)
{
    if (len < 6) {
        return false;
    }
    const unsigned char *u = (const unsigned char *)data;
    size_t klen = ((size_t)u[2] << 24) | ((size_t)u[3] << 16) | ((size_t)u[4] << 8) | u[5];
    if (u[1] > 1 || klen > len - 6 || (u[1] == 0 && klen != 0)) {
        return false;
    }
    *topic = u[0];
    *key = u[1] ? data + 6 : NULL;
    *key_len = klen;
    *payload = data + 6 + klen;
    *payload_len = len - 6 - klen;
    return true;
}

enum rc_rc
store_trim_finished(struct store *s, int64_t now_ms, int64_t retention_s, struct rc_err *err)
{
    enum rc_rc rc = ensure(s, err);
    if (rc != RC_OK) {
        return rc;
    }
    struct argv a = {0};
    redisReply *r = NULL;
    argv_str(&a, "ZREMRANGEBYSCORE");
    argv_str(&a, keys_finished(&s->key, s->cfg.key_prefix));
    argv_str(&a, "-inf");
    argv_int(&a, now_ms - retention_s * 1000);
    rc = command(s, &a, &r, err);
    argv_release(&a);
    if (rc == RC_OK) {
        freeReplyObject(r);
    }
    return rc;
}
