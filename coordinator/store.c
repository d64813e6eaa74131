/* SPDX-License-Identifier: MIT
 * store: research state in Redis. Commands are built with explicit lengths
 * (redisAppendCommandArgv), pipelined, and every write goes through one fenced Lua script.
 * Longer than most files on purpose: it is the only code that knows hiredis or a Redis
 * command, so the link, the reads and the write script stay together here. */
#include "coordinator/store.h"

#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

#include <hiredis/hiredis.h>

#include "common/buf.h"
#include "common/cfg.h"
#include "common/clock.h"
#include "common/log.h"
#include "common/num.h"
#include "common/redislink.h"
#include "common/rediserr.h"
#include "common/xalloc.h"
#include "contract/fields.h"
#include "contract/keys.h"
#include "contract/limits.h"
#include "contract/outbox.h"
#include "coordinator/change.h"
#include "coordinator/idmap.h"
#include "coordinator/registry.h"
#include "coordinator/research.h"
#include "coordinator/workers.h"

/* The one write path. KEYS[1] is rc:leader and ARGV[1] this instance: nothing is written by
 * an instance that does not hold the lease. Then ARGV[2..] holds groups, one per change (and
 * one for the pass's figures): "<n ops> <key base> <flags>", then its ops, each "<command>
 * <key index> <argc> <args...>" with its key at KEYS[base + index]; flag 1: the research hash
 * must exist.
 *
 * A change is all or nothing (contract §7), so what can fail is checked before anything is
 * written. First, for the whole call: the ACL permits every command (redis.acl_check_cmd,
 * Redis 7; an ACL cannot change during a script) and the keys every change needs (rc:active,
 * rc:finished, rc:outbox) have their type; a failure is one error for the call, with nothing
 * written. Then per group: its own keys (the research hash, a request's figures, a cancel's
 * memo) have their type and the research exists, or the group is skipped with a KEYTYPE or
 * KEYMISSING error; the figures' keys (rc:coordinator, rc:budget:<day>) that cannot take an op
 * make that op skipped, with a warning. Under OOM the first write of a group fails before it
 * writes anything (Redis checks maxmemory until a script's first write). The reply: one
 * element per group (its error, or its last op's reply), then the list of warnings. */
static const char apply_lua_fmt[] =
    "if redis.call('GET', KEYS[1]) ~= ARGV[1] then return redis.error_reply('FENCED') end\n"
    "local RESEARCH = %d\n"
    "local OWN = {[%d] = true, [%d] = true, [%d] = true}\n"
    "local SOFT = {[%d] = true, [%d] = true}\n"
    "local WANT = {HSET = 'hash', HDEL = 'hash', HINCRBY = 'hash', HINCRBYFLOAT = 'hash',\n"
    "              ZADD = 'zset', ZREM = 'zset'}\n"
    "local acl = redis.acl_check_cmd\n"
    "local n = #ARGV\n"
    "local typeok, numok = {}, {}\n"
    "local function wrong_type(key, want)\n"
    "  if typeok[key] then return nil end\n"
    "  local t = redis.call('TYPE', key)['ok']\n"
    "  if t == 'none' or t == want then typeok[key] = true return nil end\n"
    "  return key .. ' holds a ' .. t .. ', not a ' .. want\n"
    "end\n"
    "local function not_number(cmd, key, field)\n"
    "  local id = key .. '\\0' .. field\n"
    "  if numok[id] then return nil end\n"
    "  local v = redis.call('HGET', key, field)\n"
    "  local x = v and tonumber(v)\n"
    "  local ok = not v or (x and x == x and x ~= math.huge and x ~= -math.huge and\n"
    "                       (cmd ~= 'HINCRBY' or string.match(v, '^%%-?%%d+$')))\n"
    "  if ok then numok[id] = true return nil end\n"
    "  return key .. ' field ' .. field .. ' is not a number: ' .. string.sub(v, 1, 40)\n"
    "end\n"
    "local aclok = {}\n"
    "local i = 2\n"
    "while i <= n do\n"
    "  local nops, base = tonumber(ARGV[i]), tonumber(ARGV[i + 1])\n"
    "  i = i + 3\n"
    "  for _ = 1, nops do\n"
    "    local cmd, k, argc = ARGV[i], tonumber(ARGV[i + 1]), tonumber(ARGV[i + 2])\n"
    "    local key = KEYS[base + k]\n"
    "    if acl and not aclok[cmd .. k] then\n"
    "      if not acl(cmd, key, unpack(ARGV, i + 3, i + 2 + argc)) then\n"
    "        return redis.error_reply('NOPERM this user has no permission to run ' .. cmd ..\n"
    "                                 ' on ' .. key)\n"
    "      end\n"
    "      aclok[cmd .. k] = true\n"
    "    end\n"
    "    if WANT[cmd] and not OWN[k] and not SOFT[k] then\n"
    "      local bad = wrong_type(key, WANT[cmd])\n"
    "      if bad then return redis.error_reply('KEYTYPE ' .. k .. ' ' .. bad) end\n"
    "    end\n"
    "    i = i + 3 + argc\n"
    "  end\n"
    "end\n"
    "local out, warnings = {}, {}\n"
    "i = 2\n"
    "while i <= n do\n"
    "  local nops, base, flags = tonumber(ARGV[i]), tonumber(ARGV[i + 1]), tonumber(ARGV[i + 2])\n"
    "  i = i + 3\n"
    "  local err, skip = nil, {}\n"
    "  if flags %% 2 == 1 and redis.call('EXISTS', KEYS[base + RESEARCH]) == 0 then\n"
    "    err = 'KEYMISSING ' .. RESEARCH .. ' ' .. KEYS[base + RESEARCH] .. ' does not exist'\n"
    "  end\n"
    "  local j = i\n"
    "  for _ = 1, nops do\n"
    "    local cmd, k, argc = ARGV[j], tonumber(ARGV[j + 1]), tonumber(ARGV[j + 2])\n"
    "    if not err and WANT[cmd] and (OWN[k] or SOFT[k]) and not skip[k] then\n"
    "      local key = KEYS[base + k]\n"
    "      local bad = wrong_type(key, WANT[cmd])\n"
    "      if not bad and (cmd == 'HINCRBY' or cmd == 'HINCRBYFLOAT') then\n"
    "        bad = not_number(cmd, key, ARGV[j + 3])\n"
    "      end\n"
    "      if bad and SOFT[k] then\n"
    "        skip[k] = true\n"
    "        warnings[#warnings + 1] = bad\n"
    "      elseif bad then\n"
    "        err = 'KEYTYPE ' .. k .. ' ' .. bad\n"
    "      end\n"
    "    end\n"
    "    j = j + 3 + argc\n"
    "  end\n"
    "  local res = 1\n"
    "  if err then res = redis.error_reply(err) end\n"
    "  local wrote = false\n"
    "  for _ = 1, nops do\n"
    "    local cmd, k, argc = ARGV[i], tonumber(ARGV[i + 1]), tonumber(ARGV[i + 2])\n"
    "    if not err and not skip[k] then\n"
    "      local r = redis.pcall(cmd, KEYS[base + k], unpack(ARGV, i + 3, i + 2 + argc))\n"
    "      if type(r) == 'table' and r.err then\n"
    "        err = wrote and ('PARTIAL ' .. r.err) or r.err\n"
    "        res = redis.error_reply(err)\n"
    "      else\n"
    "        res = r\n"
    "        wrote = true\n"
    "      end\n"
    "    end\n"
    "    i = i + 3 + argc\n"
    "  end\n"
    "  out[#out + 1] = res\n"
    "end\n"
    "out[#out + 1] = warnings\n"
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
    struct redislink *link;
    char *apply_lua;   /* apply_lua_fmt with the key indexes filled in */
    char apply_sha[41];
    char lease_sha[41];
    struct buf key; /* scratch for key building */
    struct buf cmd; /* scratch: the command being queued */
    /* scratch of store_apply, kept between passes so that their buffers grow once */
    struct ops ops;
    struct apply_call call;
    struct argv cmd_args;
    struct buf fixed_keys[K_COUNT + 1]; /* by K_*: each key of a group that names nothing */
    char *warnings; /* the apply script's last warnings (figures it could not write), logged
                       when they change */
    struct idmap *rejected; /* members of rc:workers:* the last read found to be no worker */
    bool bad_budget;        /* said once: the day's budget hash cannot be read */
    bool bad_workers_key[WORKER_TYPE_COUNT]; /* said once: that zset is of another type */
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

/* An error reply, judged by the one classification (redislink_reply_error): RC_ECONFLICT for
 * our fence, RC_EUNAVAIL for an outage (a demoted or replaced primary, or flushed scripts,
 * also drop the link), RC_EBACKEND for bad data and anything else. */
static enum rc_rc
reply_error(struct store *s, const redisReply *r, struct rc_err *err)
{
    return redislink_reply_error(s->link, NULL, r, err);
}

/* Queue a command on the pipeline. */
static void
append(struct store *s, struct argv *a)
{
    buf_reset(&s->cmd);
    put_count(&s->cmd, '*', a->n);
    buf_append(&s->cmd, a->b.data, a->b.len);
    redislink_append(s->link, s->cmd.data, s->cmd.len);
    argv_reset(a);
}

/* Read the replies of the `n` commands queued last, all of them (redislink_read: a broken
 * link is dropped, and then nothing is returned). Error replies are returned as such, for the
 * caller to judge. */
static enum rc_rc
read_replies(struct store *s, redisReply **out, size_t n, struct rc_err *err)
{
    return redislink_read(s->link, out, n, err);
}

static void
free_replies(redisReply **r, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (r[i] != NULL) {
            freeReplyObject(r[i]);
            r[i] = NULL;
        }
    }
}

/* Send one command and read its reply: on RC_OK *out is a reply that is not an error. */
static enum rc_rc
command(struct store *s, struct argv *a, redisReply **out, struct rc_err *err)
{
    append(s, a);
    redisReply *r = NULL;
    enum rc_rc rc = read_replies(s, &r, 1, err);
    if (rc != RC_OK) {
        return rc;
    }
    if (r->type == REDIS_REPLY_ERROR) {
        rc = reply_error(s, r, err);
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
        return rc_err_set(err, RC_EBACKEND, "redis %s: SCRIPT LOAD gave no sha",
                          redislink_where(s->link));
    }
    memcpy(sha, r->str, 40);
    sha[40] = '\0';
    freeReplyObject(r);
    return RC_OK;
}

/* Open the link (redislink: the primary, authenticated, db selected, followed through a
 * failover) and, on a new connection, load the scripts. */
static enum rc_rc
ensure(struct store *s, struct rc_err *err)
{
    bool opened;
    enum rc_rc rc = redislink_open(s->link, &opened, err);
    if (rc != RC_OK || !opened) {
        return rc;
    }
    if ((rc = load_script(s, s->apply_lua, s->apply_sha, err)) == RC_OK) {
        rc = load_script(s, lease_lua, s->lease_sha, err);
    }
    if (rc != RC_OK) {
        redislink_drop(s->link);
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
    s->link = redislink_new(cfg);
    struct buf lua = BUF_INIT;
    buf_printf(&lua, apply_lua_fmt, K_RESEARCH, K_RESEARCH, K_REQUEST_FIGURES, K_CANCEL,
               K_COORDINATOR, K_BUDGET);
    s->apply_lua = buf_detach(&lua);
    s->rejected = idmap_new();
    *out = s;
    return RC_OK;
}

void
store_free(struct store *s)
{
    if (s == NULL) {
        return;
    }
    redislink_free(s->link);
    free(s->instance);
    free(s->apply_lua);
    free(s->warnings);
    idmap_free(s->rejected);
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

/* One research's HGETALL reply, as loaded into the mirror; a reply that is no research (its
 * key of another type, or gone) makes one marked corrupt, so that the machine fails it alone. */
static struct research *
parse_research(const char *id, const redisReply *h)
{
    struct research *r = research_new();
    research_set(r, RF_RESEARCH_ID, id);
    char why[320];
    if (h->type == REDIS_REPLY_ERROR) {
        snprintf(why, sizeof(why), "corrupt research: hash: the key holds another type (%s)",
                 h->str);
        research_set_corrupt(r, RESEARCH_STORED_FOREIGN, why);
        return r;
    }
    if (h->type != REDIS_REPLY_ARRAY || h->elements == 0) {
        research_set_corrupt(r, RESEARCH_STORED_NONE, "corrupt research: hash: missing");
        return r;
    }
    research_set(r, RF_RESEARCH_ID, NULL);
    for (size_t j = 0; j + 1 < h->elements; j += 2) {
        const redisReply *k = h->element[j], *v = h->element[j + 1];
        int f = k->type == REDIS_REPLY_STRING ? research_field_parse(k->str) : -1;
        if (f >= 0 && v->type == REDIS_REPLY_STRING) {
            research_set(r, (enum research_field)f, v->str);
        }
    }
    if (!research_check(r, id, why, sizeof(why))) {
        research_set(r, RF_RESEARCH_ID, id); /* the mirror files it under the id it has */
        research_set_corrupt(r, RESEARCH_STORED_HASH, why);
    }
    return r;
}

/* The first reply of `r[0..n)` that is an error other than bad data: the exchange's outage. */
static const redisReply *
outage_reply(redisReply *const *r, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (r[i]->type == REDIS_REPLY_ERROR &&
            rediserr_classify(r[i]->str, r[i]->len) != REDISERR_DATA) {
            return r[i];
        }
    }
    return NULL;
}

/* A member of a sorted set that could be one of our ids (research or worker). */
static bool
is_id_reply(const redisReply *id)
{
    return id->type == REDIS_REPLY_STRING && limits_is_id(id->str, id->len);
}

/* One chunk of the load: ids [start, start + STORE_LOAD_CHUNK) of rc:active and their hashes
 * (two round trips). *n gets how many ids the chunk had (fewer than the chunk: the last). */
static enum rc_rc
load_chunk(struct store *s, struct registry *reg, size_t start, size_t *n, struct rc_err *err)
{
    struct argv a = {0};
    redisReply *ids = NULL;
    redisReply **hashes = NULL;
    argv_str(&a, "ZRANGE");
    argv_str(&a, keys_active(&s->key, s->cfg.key_prefix));
    argv_int(&a, (int64_t)start);
    argv_int(&a, (int64_t)(start + STORE_LOAD_CHUNK - 1));
    enum rc_rc rc = command(s, &a, &ids, err);
    if (rc != RC_OK) {
        goto out;
    }
    if (ids->type != REDIS_REPLY_ARRAY) {
        rc = rc_err_set(err, RC_EUNAVAIL, "redis %s: ZRANGE gave no list", redislink_where(s->link));
        goto out;
    }
    for (size_t i = 0; i < ids->elements; i++) {
        const redisReply *id = ids->element[i];
        argv_str(&a, "HGETALL");
        if (is_id_reply(id)) {
            argv_str(&a, keys_research(&s->key, s->cfg.key_prefix, id->str));
        } else {
            argv_str(&a, keys_research(&s->key, s->cfg.key_prefix, "")); /* keeps step */
        }
        append(s, &a);
    }
    hashes = xcalloc(ids->elements > 0 ? ids->elements : 1, sizeof(*hashes));
    if ((rc = read_replies(s, hashes, ids->elements, err)) != RC_OK) {
        goto out;
    }
    const redisReply *down = outage_reply(hashes, ids->elements);
    if (down != NULL) {
        rc = reply_error(s, down, err); /* LOADING, BUSY, ...: the load waits for it */
        goto out;
    }
    for (size_t i = 0; i < ids->elements; i++) {
        const redisReply *id = ids->element[i], *h = hashes[i];
        if (!is_id_reply(id)) {
            /* Not an id this coordinator could have made: no research to fail or event to
             * send; it is left where it is, and said once a load. */
            log_error("rc:active holds a member that is not a research id: ignored",
                      "length=%zu", id->type == REDIS_REPLY_STRING ? id->len : (size_t)0);
            continue;
        }
        struct research *r = parse_research(id->str, h);
        if (r->corrupt != NULL) {
            log_error("corrupt research: it fails", "research_id=%s why=\"%s\"", id->str,
                      r->corrupt);
        }
        registry_add(reg, r);
    }
    *n = ids->elements;
out:
    if (hashes != NULL) {
        free_replies(hashes, ids->elements);
        free(hashes);
    }
    if (ids != NULL) {
        freeReplyObject(ids);
    }
    argv_release(&a);
    return rc;
}

enum rc_rc
store_load_active(struct store *s, struct registry *reg, bool (*keep)(void *arg), void *arg,
                  struct rc_err *err)
{
    enum rc_rc rc = ensure(s, err);
    if (rc != RC_OK) {
        return rc;
    }
    registry_clear(reg);
    /* Index ranges are stable: only the leader writes rc:active, and it is loading. */
    for (size_t start = 0;; start += STORE_LOAD_CHUNK) {
        size_t n = 0;
        if ((rc = load_chunk(s, reg, start, &n, err)) != RC_OK) {
            break;
        }
        if (n < STORE_LOAD_CHUNK) {
            return RC_OK;
        }
        if (keep != NULL && !keep(arg)) {
            rc = rc_err_set(err, RC_ECONFLICT, "lost the leader lease while loading");
            break;
        }
    }
    registry_clear(reg);
    return rc;
}

/* Round trip 1 of reading workers: drop the members not seen since `since` (older than the
 * worker timeout plus the clock difference a live worker may have), list the rest. A
 * list that is not a zset gives no members, and is said once. */
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
    redisReply *r[2 * WORKER_TYPE_COUNT] = {0};
    enum rc_rc rc = read_replies(s, r, 2 * WORKER_TYPE_COUNT, err);
    for (int t = 0; rc == RC_OK && t < WORKER_TYPE_COUNT; t++) {
        redisReply *list = r[2 * t + 1];
        if (list->type == REDIS_REPLY_ERROR) {
            if (rediserr_classify(list->str, list->len) != REDISERR_DATA) {
                rc = reply_error(s, list, err);
                break;
            }
            if (!s->bad_workers_key[t]) {
                log_error("the workers' zset is not a zset: no worker of its type is seen",
                          "key=%s error=\"%s\"",
                          keys_workers(&s->key, s->cfg.key_prefix, (enum worker_type)t),
                          list->str);
                s->bad_workers_key[t] = true;
            }
            continue;
        }
        s->bad_workers_key[t] = false;
        lists[t] = list;
        r[2 * t + 1] = NULL;
    }
    free_replies(r, 2 * WORKER_TYPE_COUNT);
    if (rc != RC_OK) {
        for (int t = 0; t < WORKER_TYPE_COUNT; t++) {
            if (lists[t] != NULL) {
                freeReplyObject(lists[t]);
                lists[t] = NULL;
            }
        }
    }
    return rc;
}

/* A whole number in decimal (an optional '-', then digits), into *out. */
static bool
parse_whole(const char *s, size_t len, int64_t *out)
{
    return len > 0 && (s[0] == '-' || (s[0] >= '0' && s[0] <= '9')) && num_parse_i64(s, len, out);
}

static bool
is_string(const redisReply *r)
{
    return r->type == REDIS_REPLY_STRING;
}

/* One worker's HMGET reply (type state dispatch_id last_seen) as a heartbeat, when it is one
 * (contract §5): the hash exists with `type` = `wt`, a known state and a whole last_seen no
 * further ahead of our clock than the worker timeout; and it is not older than `since`. */
static bool
parse_beat(const redisReply *h, const redisReply *id, enum worker_type wt, int64_t now_ms,
           int64_t timeout_ms, int64_t since, struct worker_beat *out)
{
    enum worker_type type;
    int64_t seen = 0;
    if (h->type != REDIS_REPLY_ARRAY || h->elements != 4 || !is_string(h->element[0]) ||
        !is_string(h->element[1]) || !is_string(h->element[3]) ||
        worker_type_parse(h->element[0]->str, &type) != RC_OK || type != wt ||
        !parse_whole(h->element[3]->str, h->element[3]->len, &seen) || seen <= since ||
        seen > now_ms + timeout_ms) {
        return false;
    }
    enum hb_state state;
    if (hb_state_parse(h->element[1]->str, &state) != RC_OK) {
        return false;
    }
    const bool idle = state == HB_IDLE, draining = state == HB_DRAINING;
    const redisReply *d = h->element[2];
    *out = (struct worker_beat){0};
    out->id = xstrndup(id->str, id->len);
    out->type = wt;
    out->idle = idle;
    out->draining = draining;
    out->dispatch_id = is_string(d) && limits_is_id(d->str, d->len) ? xstrndup(d->str, d->len)
                                                                      : NULL;
    out->last_seen_ms = seen;
    return true;
}

static size_t
list_len(const redisReply *r)
{
    return r != NULL && r->type == REDIS_REPLY_ARRAY ? r->elements : 0;
}

/* The clock difference a live worker may have from ours (contract §5), in its favour. */
static int64_t
stale_before(int64_t now_ms, int64_t timeout_ms)
{
    return now_ms - timeout_ms - WORKERS_CLOCK_SKEW_MS;
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
    redisReply **hs = NULL;
    size_t n_out = 0, cap = 0, n_asked = 0;
    redisReply *lists[WORKER_TYPE_COUNT] = {0};
    const int64_t since = stale_before(now_ms, timeout_ms);
    if ((rc = list_live_workers(s, since, lists, err)) != RC_OK) {
        goto out;
    }
    /* Round trip 2: every member's heartbeat (a bad member is asked for its key as ""). */
    for (int t = 0; t < WORKER_TYPE_COUNT; t++) {
        for (size_t i = 0; i < list_len(lists[t]); i++) {
            const redisReply *id = lists[t]->element[i];
            argv_str(&a, "HMGET");
            argv_str(&a, keys_worker(&s->key, s->cfg.key_prefix, is_id_reply(id) ? id->str : ""));
            argv_str(&a, HB_TYPE);
            argv_str(&a, HB_STATE);
            argv_str(&a, HB_DISPATCH_ID);
            argv_str(&a, HB_LAST_SEEN);
            append(s, &a);
            n_asked++;
        }
    }
    hs = xcalloc(n_asked > 0 ? n_asked : 1, sizeof(*hs));
    if ((rc = read_replies(s, hs, n_asked, err)) != RC_OK) {
        goto out;
    }
    idmap_clear(s->rejected);
    const redisReply *down = outage_reply(hs, n_asked);
    if (down != NULL) {
        rc = reply_error(s, down, err);
        goto out;
    }
    size_t k = 0;
    for (int t = 0; t < WORKER_TYPE_COUNT; t++) {
        for (size_t i = 0; i < list_len(lists[t]); i++, k++) {
            const redisReply *id = lists[t]->element[i], *h = hs[k];
            out = xgrow(out, &cap, n_out + 1, sizeof(*out));
            if (is_id_reply(id) &&
                parse_beat(h, id, (enum worker_type)t, now_ms, timeout_ms, since, &out[n_out])) {
                n_out++;
            } else if (is_id_reply(id)) {
                idmap_put(s->rejected, id->str, s); /* not asked again before the next read */
            }
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
    if (hs != NULL) {
        free_replies(hs, n_asked);
        free(hs);
    }
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
        rc = list_live_workers(s, stale_before(now_ms, timeout_ms), lists, err);
    }
    bool found = false;
    for (int t = 0; t < WORKER_TYPE_COUNT; t++) {
        for (size_t i = 0; rc == RC_OK && i < list_len(lists[t]) && !found; i++) {
            const redisReply *id = lists[t]->element[i];
            found = is_id_reply(id) && !known(arg, id->str) &&
                    idmap_get(s->rejected, id->str) == NULL;
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

/* The day's spend from its HGET reply: 0 when there is none yet. A budget hash that cannot
 * be read (another type, a spend that is no number) counts as 0 and is said once: the
 * budget is accounting, and must not stop triggers or researches. */
static double
parse_spent(struct store *s, const redisReply *r)
{
    const char *bad = NULL;
    double spent = 0;
    if (r->type == REDIS_REPLY_STRING) {
        if (!num_parse_f64(r->str, r->len, &spent)) {
            bad = "spent_usd is not a number";
            spent = 0;
        }
    } else if (r->type == REDIS_REPLY_ERROR) {
        bad = r->str;
    }
    if (bad != NULL && !s->bad_budget) {
        log_error("the day's budget hash cannot be read: its spend counts as 0 until it is fixed",
                  "error=\"%s\"", bad);
    }
    s->bad_budget = bad != NULL;
    return spent;
}

/* A remembered trigger outcome from its GET and HGETALL replies (contract §6: the research id,
 * or "rejected:<reason>"). Anything else there is damage, kept in o->corrupt. */
static void
parse_request(const char *key, const redisReply *v, const redisReply *fig, struct store_request *o)
{
    static const char *const reasons[] = {REQUEST_REJECTED REASON_AT_CAPACITY, REQUEST_REJECTED REASON_BUDGET_EXHAUSTED};
    *o = (struct store_request){0};
    if (v->type == REDIS_REPLY_ERROR || (v->type == REDIS_REPLY_STRING &&
                                         !limits_is_id(v->str, v->len) &&
                                         strcmp(v->str, reasons[0]) != 0 &&
                                         strcmp(v->str, reasons[1]) != 0)) {
        char why[LIMITS_ID_MAX + 200];
        snprintf(why, sizeof(why), "redis: %s holds no trigger outcome%s%s", key,
                 v->type == REDIS_REPLY_ERROR ? ": " : "",
                 v->type == REDIS_REPLY_ERROR ? v->str : "");
        o->corrupt = xstrdup(why);
        return;
    }
    if (v->type == REDIS_REPLY_STRING) {
        o->value = xstrdup(v->str);
    }
    for (size_t j = 0; fig->type == REDIS_REPLY_ARRAY && j + 1 < fig->elements; j += 2) {
        const char *k = fig->element[j]->str;
        double d = 0; /* a figure that is no number reads as 0 */
        (void)num_parse_f64(fig->element[j + 1]->str, fig->element[j + 1]->len, &d);
        if (strcmp(k, FIGURE_ACTIVE_COUNT) == 0) {
            o->figures.has_capacity = true;
            o->figures.active_count = (int64_t)(d > 0 && d < 1e15 ? d : 0);
        } else if (strcmp(k, FIGURE_LIMIT) == 0) {
            o->figures.limit = (int64_t)(d > 0 && d < 1e15 ? d : 0);
        } else if (strcmp(k, FIGURE_REMAINING) == 0) {
            o->figures.has_budget = true;
            o->figures.remaining = d;
        } else if (strcmp(k, FIGURE_DAILY_LIMIT) == 0) {
            o->figures.daily_limit = d;
        }
    }
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
        argv_str(&a, BUDGET_SPENT_USD);
        append(s, &a);
    }
    argv_release(&a);
    const size_t n_replies = 2 * n + (budget_day != NULL);
    redisReply **r = xcalloc(n_replies > 0 ? n_replies : 1, sizeof(*r));
    if ((rc = read_replies(s, r, n_replies, err)) == RC_OK) {
        const redisReply *down = outage_reply(r, n_replies);
        if (down != NULL) {
            rc = reply_error(s, down, err);
        }
    }
    if (rc == RC_OK) {
        for (size_t i = 0; i < n; i++) {
            const char *key = keys_request(&s->key, s->cfg.key_prefix, request_ids[i]);
            parse_request(key, r[2 * i], r[2 * i + 1], &out[i]);
        }
        if (budget_day != NULL) {
            *spent_usd = parse_spent(s, r[2 * n]);
        }
    }
    free_replies(r, n_replies);
    free(r);
    return rc;
}

/* A remembered cancel outcome from its HGETALL reply (request_id NULL when there is none, or
 * when what is there is not one: another type, a missing or unknown outcome). */
static void
parse_cancel_memo(const redisReply *h, const char *request_id, struct cancel_memo *m)
{
    static const char *const outcomes[] = {CANCEL_CANCELLED, REASON_NOT_FOUND, REASON_NOT_CANCELLABLE};
    *m = (struct cancel_memo){0};
    for (size_t j = 0; h->type == REDIS_REPLY_ARRAY && j + 1 < h->elements; j += 2) {
        const char *k = h->element[j]->str;
        const redisReply *val = h->element[j + 1];
        char *v = val->type == REDIS_REPLY_STRING ? xstrndup(val->str, val->len) : NULL;
        char **slot = strcmp(k, CANCEL_OUTCOME) == 0       ? &m->outcome
                      : strcmp(k, CANCEL_RESEARCH_ID) == 0 ? &m->research_id
                      : strcmp(k, CANCEL_PHASE) == 0       ? &m->phase
                      : strcmp(k, CANCEL_DISPATCH_ID) == 0 ? &m->dispatch_id
                                                           : NULL;
        if (slot != NULL && *slot == NULL && v != NULL) {
            *slot = v;
        } else {
            free(v);
        }
    }
    bool known = false;
    for (size_t i = 0; m->outcome != NULL && i < N_OF(outcomes); i++) {
        known = known || strcmp(m->outcome, outcomes[i]) == 0;
    }
    if (!known || m->research_id == NULL || !limits_is_id(m->research_id, strlen(m->research_id)) ||
        (m->dispatch_id != NULL && !limits_is_id(m->dispatch_id, strlen(m->dispatch_id)))) {
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
    size_t n_replies = 0;
    for (size_t i = 0; i < n; i++) {
        if (request_ids[i] != NULL) {
            argv_str(&a, "HGETALL");
            argv_str(&a, keys_cancel(&s->key, s->cfg.key_prefix, request_ids[i]));
            append(s, &a);
            n_replies++;
        }
        argv_str(&a, "HGET");
        argv_str(&a, keys_research(&s->key, s->cfg.key_prefix, research_ids[i]));
        argv_str(&a, research_field_name(RF_STATUS));
        append(s, &a);
        n_replies++;
    }
    argv_release(&a);
    redisReply **r = xcalloc(n_replies > 0 ? n_replies : 1, sizeof(*r));
    if ((rc = read_replies(s, r, n_replies, err)) == RC_OK) {
        const redisReply *down = outage_reply(r, n_replies);
        if (down != NULL) {
            rc = reply_error(s, down, err);
        }
    }
    for (size_t i = 0, k = 0; rc == RC_OK && i < n; i++) {
        memos[i] = (struct cancel_memo){0};
        if (request_ids[i] != NULL) {
            parse_cancel_memo(r[k++], request_ids[i], &memos[i]);
        }
        const redisReply *st = r[k++];
        /* A research key of another type exists: such a research cannot be cancelled. */
        status[i] = st->type == REDIS_REPLY_STRING  ? xstrndup(st->str, st->len)
                    : st->type == REDIS_REPLY_ERROR ? xstrdup("?")
                                                    : NULL;
    }
    free_replies(r, n_replies);
    free(r);
    return rc;
}

void
store_request_release(struct store_request *r)
{
    free(r->value);
    free(r->corrupt);
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
        if (c->hash != CHANGE_HASH_KEEP) {
            op(o, "EXPIRE", K_RESEARCH, 1);
            argv_int(&o->args, retention_s);
        }
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
        argv_str(&o->args, FIGURE_ACTIVE_COUNT);
        argv_int(&o->args, f->active_count);
        argv_str(&o->args, FIGURE_LIMIT);
        argv_int(&o->args, f->limit);
    }
    if (f->has_budget) {
        char text[64];
        argv_str(&o->args, FIGURE_REMAINING);
        snprintf(text, sizeof(text), "%.6f", f->remaining);
        argv_str(&o->args, text);
        argv_str(&o->args, FIGURE_DAILY_LIMIT);
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
    argv_str(&o->args, BUDGET_SPENT_USD);
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
    argv_str(&o->args, CANCEL_OUTCOME);
    argv_str(&o->args, m->outcome);
    argv_str(&o->args, CANCEL_RESEARCH_ID);
    argv_str(&o->args, m->research_id);
    if (m->phase != NULL) {
        argv_str(&o->args, CANCEL_PHASE);
        argv_str(&o->args, m->phase);
    }
    if (m->dispatch_id != NULL) {
        argv_str(&o->args, CANCEL_DISPATCH_ID);
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
        outbox_frame((int)m->topic, m->key, m->key_len, m->payload, m->len, &frame);
        argv_str(&o->args, m->outbox_id);
        argv_add(&o->args, frame.data, frame.len);
    }
    buf_release(&frame);
}

static void
plan_change(const struct change *c, int64_t retention_s, struct ops *o)
{
    if (c->hash != CHANGE_HASH_KEEP) {
        plan_fields(c, o);
    }
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
    argv_str(&o->args, COORD_INSTANCE);
    argv_str(&o->args, instance);
    argv_str(&o->args, COORD_VERSION);
    argv_str(&o->args, RC_VERSION);
    argv_str(&o->args, COORD_STARTED_AT);
    argv_int(&o->args, st->started_at_ms);
    argv_str(&o->args, COORD_ACTIVE);
    argv_int(&o->args, st->active);
    argv_str(&o->args, COORD_LIMIT);
    argv_int(&o->args, st->limit);
    if (st->last_cycle_at_ms > 0) {
        argv_str(&o->args, COORD_LAST_CYCLE_AT);
        argv_int(&o->args, st->last_cycle_at_ms);
        char text[32];
        snprintf(text, sizeof(text), "%.3f", st->cycle_ms);
        argv_str(&o->args, COORD_CYCLE_MS);
        argv_str(&o->args, text);
    }
    const struct {
        const char *name;
        int64_t delta;
    } counters[] = {
        {COORD_TRIGGERS, st->triggers},
        {COORD_COMPLETIONS, st->completions},
        {COORD_STALE_COMPLETIONS, st->stale_completions},
        {COORD_INVALID_INPUTS, st->invalid_inputs},
        {COORD_REDISPATCHES, st->redispatches},
    };
    for (size_t i = 0; i < N_OF(counters); i++) {
        /* HINCRBY 0 creates the field, so every counter is readable from the start. */
        op(o, "HINCRBY", K_COORDINATOR, 2);
        argv_str(&o->args, counters[i].name);
        argv_int(&o->args, counters[i].delta);
    }
    /* Today's budget is readable (limit and spend) even before anything was charged. */
    char text[64];
    snprintf(text, sizeof(text), "%.17g", st->daily_limit_usd);
    op(o, "HSET", K_BUDGET, 2);
    argv_str(&o->args, BUDGET_DAILY_LIMIT_USD);
    argv_str(&o->args, text);
    op(o, "EXPIRE", K_BUDGET, 1);
    argv_int(&o->args, BUDGET_TTL_S);
    /* Last: its reply, the day's spend, is the script's. */
    op(o, "HINCRBYFLOAT", K_BUDGET, 2);
    argv_str(&o->args, BUDGET_SPENT_USD);
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

/* Group flags of the apply script. */
#define GROUP_RESEARCH_EXISTS 1 /* the research hash must exist (an update of a live one) */

/* Add a group: the keys `k` names, then the ops of `o` (which is emptied). */
static void
add_group(struct store *s, struct apply_call *call, const struct apply_keys *k, int flags,
          struct ops *o)
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
    argv_int(&call->groups, flags);
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

/* The key index an error of our script names ("KEYTYPE 2 rc:research:x holds ..."), or -1. */
static int
error_key(const redisReply *e, bool *missing)
{
    static const char *const codes[] = {"KEYTYPE ", "KEYMISSING "};
    for (size_t i = 0; i < 2; i++) {
        size_t n = strlen(codes[i]);
        if (e->len > n && strncmp(e->str, codes[i], n) == 0) {
            *missing = i == 1;
            /* The index ends at the space before the key's name. */
            const char *at = e->str + n;
            const char *space = memchr(at, ' ', e->len - n);
            int64_t k = -1;
            (void)num_parse_i64(at, space != NULL ? (size_t)(space - at) : e->len - n, &k);
            return k >= 0 && k <= K_COUNT ? (int)k : -1;
        }
    }
    return -1;
}

/* Log the warnings of a call (figures it could not write) when they differ from the last. */
static void
note_warnings(struct store *s, const redisReply *w)
{
    struct buf text = BUF_INIT;
    for (size_t i = 0; w != NULL && w->type == REDIS_REPLY_ARRAY && i < w->elements; i++) {
        if (w->element[i]->type == REDIS_REPLY_STRING) {
            buf_printf(&text, "%s%s", i > 0 ? "; " : "", w->element[i]->str);
        }
    }
    const char *now = text.data != NULL ? text.data : "";
    const char *before = s->warnings != NULL ? s->warnings : "";
    if (strcmp(now, before) != 0) {
        if (now[0] != '\0') {
            log_error("figures not written: a key of the wrong kind (fix or delete it)",
                      "detail=\"%s\"", now);
        } else {
            log_info("figures written again", "was=\"%s\"", before);
        }
        free(s->warnings);
        s->warnings = xstrdup(now);
    }
    buf_release(&text);
}

/* What happened to one group, into results[g] (a change) or the pass's outcome. An error of
 * the change's own keys (the research hash, a request's memo) is that change's, for good;
 * any other is the pass's: an outage, for which nothing may be committed. */
static void
judge_group(struct store *s, const redisReply *e, struct store_result *res, const char **outage)
{
    *res = (struct store_result){.rc = RC_OK};
    if (e == NULL) {
        *outage = "short reply from the apply script";
        return;
    }
    if (e->type != REDIS_REPLY_ERROR) {
        return;
    }
    bool missing = false;
    int k = error_key(e, &missing);
    if (k == K_RESEARCH || k == K_REQUEST_FIGURES || k == K_CANCEL) {
        res->rc = RC_EBACKEND;
        res->research_key = k == K_RESEARCH;
        res->stored = missing ? RESEARCH_STORED_NONE : RESEARCH_STORED_FOREIGN;
        snprintf(res->why, sizeof(res->why), "redis: %s", e->str);
        return;
    }
    if (*outage == NULL) {
        *outage = e->str;
    }
    if (rediserr_drops_link(rediserr_classify(e->str, e->len))) {
        redislink_drop(s->link);
    }
}

enum rc_rc
store_apply(struct store *s, const struct change *changes, size_t n,
            const struct store_stats *stats, int64_t retention_s, struct store_result *results,
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
            const bool live = c->research_id != NULL && c->hash == CHANGE_HASH_WRITE &&
                              (c->kind == CHANGE_UPDATE || c->kind == CHANGE_FINISH);
            add_group(s, call, &k, live ? GROUP_RESEARCH_EXISTS : 0, o);
        } else {
            plan_stats(stats, s->instance, o);
            struct apply_keys k = {.budget_day = stats->budget_day};
            add_group(s, call, &k, 0, o);
        }
        if (call->n_groups == APPLY_GROUPS_MAX || i + 1 == n_groups) {
            send_call(s, call);
            n_calls++;
        }
    }
    /* REDIS_WAIT_REPLICAS: the pass counts as written only once that many replicas have it,
     * so that a failover to one of them loses nothing committed. In the same round trip. */
    const bool wait = s->cfg.wait_replicas > 0;
    if (wait) {
        argv_str(&s->cmd_args, "WAIT");
        argv_int(&s->cmd_args, s->cfg.wait_replicas);
        argv_int(&s->cmd_args, s->cfg.timeout_ms / 2);
        append(s, &s->cmd_args);
    }
    /* One reply per call, all read in one round trip before any is judged (a pass holds at
     * most a sweep slice and a batch of inputs, so its commands stay a few MB): an array with
     * one element per group and the warnings last, or one error for the whole call (FENCED:
     * not the leader; NOPERM; a key every change needs of the wrong type; NOSCRIPT; ...). */
    const size_t n_replies = n_calls + (wait ? 1 : 0);
    redisReply **r = xcalloc(n_replies, sizeof(*r));
    if ((rc = read_replies(s, r, n_replies, err)) != RC_OK) {
        free(r);
        return rc;
    }
    const char *outage = NULL;
    bool fenced = false;
    size_t g = 0;
    for (size_t k = 0; k < n_calls; k++) {
        const size_t in_call = n_groups - g < APPLY_GROUPS_MAX ? n_groups - g : APPLY_GROUPS_MAX;
        if (r[k]->type == REDIS_REPLY_ERROR) {
            enum rediserr_kind kind = rediserr_classify(r[k]->str, r[k]->len);
            fenced = fenced || kind == REDISERR_FENCED;
            if (kind != REDISERR_FENCED && outage == NULL) {
                outage = r[k]->str;
            }
            if (rediserr_drops_link(kind)) {
                redislink_drop(s->link);
            }
            for (size_t j = 0; j < in_call; j++, g++) {
                if (g < n) {
                    results[g] = (struct store_result){.rc = RC_EUNAVAIL};
                }
            }
            continue;
        }
        const bool shaped = r[k]->type == REDIS_REPLY_ARRAY && r[k]->elements == in_call + 1;
        for (size_t j = 0; j < in_call; j++, g++) {
            const redisReply *e = shaped ? r[k]->element[j] : NULL;
            struct store_result one;
            judge_group(s, e, &one, &outage);
            if (g < n) {
                results[g] = one;
            } else if (spent_usd != NULL && e != NULL && e->type == REDIS_REPLY_STRING) {
                double d = 0; /* the day's spend as the script summed it; 0 if no number */
                (void)num_parse_f64(e->str, e->len, &d);
                *spent_usd = d;
            }
        }
        if (shaped) {
            note_warnings(s, r[k]->element[in_call]);
        }
    }
    char shortfall[160] = "";
    if (wait) {
        const redisReply *w = r[n_calls];
        if (w->type != REDIS_REPLY_INTEGER || w->integer < s->cfg.wait_replicas) {
            /* Not on enough replicas: a failover could lose it, so nothing may be committed
             * on it; and this may be a primary the others left (the link is dropped, so the
             * next one finds the primary anew). */
            snprintf(shortfall, sizeof(shortfall),
                     "the write reached %lld of %lld replicas (REDIS_WAIT_REPLICAS)",
                     w->type == REDIS_REPLY_INTEGER ? (long long)w->integer : -1LL,
                     (long long)s->cfg.wait_replicas);
            redislink_drop(s->link);
        }
    }
    if (fenced) {
        rc = rc_err_set(err, RC_ECONFLICT, "redis %s: FENCED: another instance holds the lease",
                        redislink_where(s->link));
    } else if (outage != NULL) {
        rc = rc_err_set(err, RC_EUNAVAIL, "redis %s: %s", redislink_where(s->link), outage);
    } else if (shortfall[0] != '\0') {
        rc = rc_err_set(err, RC_EUNAVAIL, "redis %s: %s", redislink_where(s->link), shortfall);
    }
    free_replies(r, n_replies);
    free(r);
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
store_outbox_load(struct store *s, bool (*keep)(void *arg), void *arg,
                  struct store_outbox_entry **out, size_t *n, struct rc_err *err)
{
    enum rc_rc rc = ensure(s, err);
    if (rc != RC_OK) {
        return rc;
    }
    struct argv a = {0};
    struct store_outbox_entry *e = NULL;
    size_t count = 0, cap = 0;
    char cursor[32] = "0";
    /* HSCAN, so that no reply (and no time Redis spends building one) grows with the outbox,
     * which a long Kafka outage can fill. */
    do {
        redisReply *r = NULL;
        argv_str(&a, "HSCAN");
        argv_str(&a, keys_outbox(&s->key, s->cfg.key_prefix));
        argv_str(&a, cursor);
        argv_str(&a, "COUNT");
        argv_int(&a, STORE_OUTBOX_CHUNK);
        if ((rc = command(s, &a, &r, err)) != RC_OK) {
            break;
        }
        const bool shaped = r->type == REDIS_REPLY_ARRAY && r->elements == 2 &&
                            r->element[0]->type == REDIS_REPLY_STRING &&
                            r->element[0]->len < sizeof(cursor) &&
                            r->element[1]->type == REDIS_REPLY_ARRAY;
        if (!shaped) {
            freeReplyObject(r);
            rc = rc_err_set(err, RC_EUNAVAIL, "redis %s: HSCAN gave no cursor", redislink_where(s->link));
            break;
        }
        memcpy(cursor, r->element[0]->str, r->element[0]->len + 1);
        const redisReply *kv = r->element[1];
        for (size_t i = 0; i + 1 < kv->elements; i += 2) {
            e = xgrow(e, &cap, count + 1, sizeof(*e));
            e[count].id = xstrndup(kv->element[i]->str, kv->element[i]->len);
            e[count].len = kv->element[i + 1]->len;
            e[count].data = xmalloc(e[count].len + 1);
            memcpy(e[count].data, kv->element[i + 1]->str, e[count].len);
            count++;
        }
        freeReplyObject(r);
        if (strcmp(cursor, "0") != 0 && keep != NULL && !keep(arg)) {
            rc = rc_err_set(err, RC_ECONFLICT, "lost the leader lease while reading the outbox");
        }
    } while (rc == RC_OK && strcmp(cursor, "0") != 0);
    argv_release(&a);
    if (rc != RC_OK) {
        store_outbox_free(e, count);
        return rc;
    }
    size_t kept = count > 0 ? 1 : 0;
    if (count > 1) {
        qsort(e, count, sizeof(*e), cmp_entry);
        for (size_t i = 1; i < count; i++) {
            if (strcmp(e[i].id, e[kept - 1].id) == 0) {
                free(e[i].id); /* HSCAN may return an entry twice */
                free(e[i].data);
            } else {
                e[kept++] = e[i];
            }
        }
    }
    *out = e;
    *n = kept;
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
