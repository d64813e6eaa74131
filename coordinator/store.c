/* SPDX-License-Identifier: MIT
 * store: the coordinator's Redis: the reads (the active researches, the workers, requests'
 * outcomes, the outbox), the lease, and the sending of the one write path that apply.c plans.
 * Commands are built in the Redis protocol (resp.c) and pipelined on the one link
 * (redislink); every reply of an exchange is read before any is judged. */
#include "coordinator/store.h"

#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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
#include "coordinator/apply.h"
#include "coordinator/change.h"
#include "coordinator/idmap.h"
#include "coordinator/registry.h"
#include "coordinator/resp.h"
#include "coordinator/research.h"
#include "coordinator/workers.h"

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

struct store {
    struct cfg_redis cfg; /* strings borrowed from the caller's cfg, which outlives us */
    char *instance;
    struct redislink *link;
    struct apply *apply; /* the write path's script and planning */
    char lease_sha[41];
    struct buf key; /* scratch for key building */
    struct buf cmd; /* scratch: the commands being queued */
    struct idmap *rejected; /* members of rc:workers:* the last read found to be no worker */
    bool bad_budget;        /* said once: the day's budget hash cannot be read */
    bool bad_workers_key[WORKER_TYPE_COUNT]; /* said once: that zset is of another type */
};

/* Queue a command on the pipeline. */
static void
append(struct store *s, struct resp *a)
{
    buf_reset(&s->cmd);
    resp_frame(a, &s->cmd);
    redislink_append(s->link, s->cmd.data, s->cmd.len);
    resp_reset(a);
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
command(struct store *s, struct resp *a, redisReply **out, struct rc_err *err)
{
    append(s, a);
    redisReply *r = NULL;
    enum rc_rc rc = redislink_read(s->link, &r, 1, err);
    if (rc != RC_OK) {
        return rc;
    }
    if (r->type == REDIS_REPLY_ERROR) {
        rc = redislink_reply_error(s->link, NULL, r, err);
        freeReplyObject(r);
        return rc;
    }
    *out = r;
    return RC_OK;
}

static enum rc_rc
load_script(struct store *s, const char *lua, char sha[41], struct rc_err *err)
{
    struct resp a = {0};
    redisReply *r = NULL;
    resp_str(&a, "SCRIPT");
    resp_str(&a, "LOAD");
    resp_str(&a, lua);
    enum rc_rc rc = command(s, &a, &r, err);
    resp_release(&a);
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
    char sha[41];
    if ((rc = load_script(s, apply_script(s->apply), sha, err)) == RC_OK) {
        apply_set_sha(s->apply, sha);
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
    s->apply = apply_new(cfg->key_prefix, instance);
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
    apply_free(s->apply);
    idmap_free(s->rejected);
    buf_release(&s->key);
    buf_release(&s->cmd);
    free(s);
}

enum rc_rc
store_lease(struct store *s, int64_t ttl_ms, bool *leading, struct rc_err *err)
{
    enum rc_rc rc = ensure(s, err);
    if (rc != RC_OK) {
        return rc;
    }
    struct resp a = {0};
    redisReply *r = NULL;
    resp_str(&a, "EVALSHA");
    resp_str(&a, s->lease_sha);
    resp_str(&a, "1");
    resp_str(&a, keys_leader(&s->key, s->cfg.key_prefix));
    resp_str(&a, s->instance);
    resp_int(&a, ttl_ms);
    rc = command(s, &a, &r, err);
    resp_release(&a);
    if (rc != RC_OK) {
        return rc;
    }
    *leading = r->type == REDIS_REPLY_INTEGER && r->integer == 1;
    freeReplyObject(r);
    return RC_OK;
}

/* One research's HGETALL reply, as loaded into the mirror; a reply that is no research (its
 * key of another type, or gone) makes one marked corrupt, so that the machine fails it alone.
 * With `check`, what it holds must be an active research (research_check). */
static struct research *
parse_research(const char *id, const redisReply *h, bool check)
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
        if (f >= 0 && f < RF_MIRRORED && v->type == REDIS_REPLY_STRING) {
            research_set(r, (enum research_field)f, v->str);
        }
    }
    if (check && !research_check(r, id, why, sizeof(why))) {
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
    struct resp a = {0};
    redisReply *ids = NULL;
    redisReply **hashes = NULL;
    resp_str(&a, "ZRANGE");
    resp_str(&a, keys_active(&s->key, s->cfg.key_prefix));
    resp_int(&a, (int64_t)start);
    resp_int(&a, (int64_t)(start + STORE_LOAD_CHUNK - 1));
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
        resp_str(&a, "HGETALL");
        if (is_id_reply(id)) {
            resp_str(&a, keys_research(&s->key, s->cfg.key_prefix, id->str));
        } else {
            resp_str(&a, keys_research(&s->key, s->cfg.key_prefix, "")); /* keeps step */
        }
        append(s, &a);
    }
    hashes = xcalloc(ids->elements > 0 ? ids->elements : 1, sizeof(*hashes));
    if ((rc = redislink_read(s->link, hashes, ids->elements, err)) != RC_OK) {
        goto out;
    }
    const redisReply *down = outage_reply(hashes, ids->elements);
    if (down != NULL) {
        rc = redislink_reply_error(s->link, NULL, down, err); /* LOADING, BUSY, ...: the load waits for it */
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
        struct research *r = parse_research(id->str, h, true);
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
    resp_release(&a);
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
    struct resp a = {0};
    char min[40];
    snprintf(min, sizeof(min), "(%" PRId64, since);
    for (int t = 0; t < WORKER_TYPE_COUNT; t++) {
        const char *key = keys_workers(&s->key, s->cfg.key_prefix, (enum worker_type)t);
        resp_str(&a, "ZREMRANGEBYSCORE");
        resp_str(&a, key);
        resp_str(&a, "-inf");
        resp_int(&a, since);
        append(s, &a);
        resp_str(&a, "ZRANGEBYSCORE");
        resp_str(&a, key);
        resp_str(&a, min);
        resp_str(&a, "+inf");
        append(s, &a);
    }
    resp_release(&a);
    redisReply *r[2 * WORKER_TYPE_COUNT] = {0};
    enum rc_rc rc = redislink_read(s->link, r, 2 * WORKER_TYPE_COUNT, err);
    for (int t = 0; rc == RC_OK && t < WORKER_TYPE_COUNT; t++) {
        redisReply *list = r[2 * t + 1];
        if (list->type == REDIS_REPLY_ERROR) {
            if (rediserr_classify(list->str, list->len) != REDISERR_DATA) {
                rc = redislink_reply_error(s->link, NULL, list, err);
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
    struct resp a = {0};
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
            resp_str(&a, "HMGET");
            resp_str(&a, keys_worker(&s->key, s->cfg.key_prefix, is_id_reply(id) ? id->str : ""));
            resp_str(&a, HB_TYPE);
            resp_str(&a, HB_STATE);
            resp_str(&a, HB_DISPATCH_ID);
            resp_str(&a, HB_LAST_SEEN);
            append(s, &a);
            n_asked++;
        }
    }
    hs = xcalloc(n_asked > 0 ? n_asked : 1, sizeof(*hs));
    if ((rc = redislink_read(s->link, hs, n_asked, err)) != RC_OK) {
        goto out;
    }
    idmap_clear(s->rejected);
    const redisReply *down = outage_reply(hs, n_asked);
    if (down != NULL) {
        rc = redislink_reply_error(s->link, NULL, down, err);
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
    resp_release(&a);
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
    struct resp a = {0};
    for (size_t i = 0; i < n; i++) {
        resp_str(&a, "GET");
        resp_str(&a, keys_request(&s->key, s->cfg.key_prefix, request_ids[i]));
        append(s, &a);
        resp_str(&a, "HGETALL");
        resp_str(&a, keys_request_figures(&s->key, s->cfg.key_prefix, request_ids[i]));
        append(s, &a);
    }
    if (budget_day != NULL) {
        resp_str(&a, "HGET");
        resp_str(&a, keys_budget(&s->key, s->cfg.key_prefix, budget_day));
        resp_str(&a, BUDGET_SPENT_USD);
        append(s, &a);
    }
    resp_release(&a);
    const size_t n_replies = 2 * n + (budget_day != NULL);
    redisReply **r = xcalloc(n_replies > 0 ? n_replies : 1, sizeof(*r));
    if ((rc = redislink_read(s->link, r, n_replies, err)) == RC_OK) {
        const redisReply *down = outage_reply(r, n_replies);
        if (down != NULL) {
            rc = redislink_reply_error(s->link, NULL, down, err);
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

static const char *const cancel_outcomes[] = {CANCEL_CANCELLED, REASON_NOT_FOUND,
                                              REASON_NOT_CANCELLABLE, NULL};
static const char *const resume_outcomes[] = {RESUME_RESUMED, REASON_NOT_FOUND,
                                              REASON_NOT_RESUMABLE, REASON_AT_CAPACITY, NULL};

/* A remembered cancel (or resume) outcome from its HGETALL reply (request_id NULL when there
 * is none, or when what is there is not one: another type, a missing outcome or one not in
 * `outcomes`, NULL-terminated). */
static void
parse_cancel_memo(const redisReply *h, const char *request_id, const char *const *outcomes,
                  struct cancel_memo *m)
{
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
    for (size_t i = 0; m->outcome != NULL && outcomes[i] != NULL; i++) {
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
    struct resp a = {0};
    size_t n_replies = 0;
    for (size_t i = 0; i < n; i++) {
        if (request_ids[i] != NULL) {
            resp_str(&a, "HGETALL");
            resp_str(&a, keys_cancel(&s->key, s->cfg.key_prefix, request_ids[i]));
            append(s, &a);
            n_replies++;
        }
        resp_str(&a, "HGET");
        resp_str(&a, keys_research(&s->key, s->cfg.key_prefix, research_ids[i]));
        resp_str(&a, research_field_name(RF_STATUS));
        append(s, &a);
        n_replies++;
    }
    resp_release(&a);
    redisReply **r = xcalloc(n_replies > 0 ? n_replies : 1, sizeof(*r));
    if ((rc = redislink_read(s->link, r, n_replies, err)) == RC_OK) {
        const redisReply *down = outage_reply(r, n_replies);
        if (down != NULL) {
            rc = redislink_reply_error(s->link, NULL, down, err);
        }
    }
    for (size_t i = 0, k = 0; rc == RC_OK && i < n; i++) {
        memos[i] = (struct cancel_memo){0};
        if (request_ids[i] != NULL) {
            parse_cancel_memo(r[k++], request_ids[i], cancel_outcomes, &memos[i]);
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

enum rc_rc
store_get_resumes(struct store *s, const char *const *request_ids, const char *const *research_ids,
                  size_t n, struct cancel_memo *memos, struct research **found, struct rc_err *err)
{
    enum rc_rc rc = ensure(s, err);
    if (rc != RC_OK) {
        return rc;
    }
    struct resp a = {0};
    size_t n_replies = 0;
    for (size_t i = 0; i < n; i++) {
        if (request_ids[i] != NULL) {
            resp_str(&a, "HGETALL");
            resp_str(&a, keys_resume(&s->key, s->cfg.key_prefix, request_ids[i]));
            append(s, &a);
            n_replies++;
        }
        resp_str(&a, "HGETALL");
        resp_str(&a, keys_research(&s->key, s->cfg.key_prefix, research_ids[i]));
        append(s, &a);
        resp_str(&a, "ZSCORE");
        resp_str(&a, keys_finished(&s->key, s->cfg.key_prefix));
        resp_str(&a, research_ids[i]);
        append(s, &a);
        n_replies += 2;
    }
    resp_release(&a);
    redisReply **r = xcalloc(n_replies > 0 ? n_replies : 1, sizeof(*r));
    if ((rc = redislink_read(s->link, r, n_replies, err)) == RC_OK) {
        const redisReply *down = outage_reply(r, n_replies);
        if (down != NULL) {
            rc = redislink_reply_error(s->link, NULL, down, err);
        }
    }
    for (size_t i = 0, k = 0; rc == RC_OK && i < n; i++) {
        memos[i] = (struct cancel_memo){0};
        if (request_ids[i] != NULL) {
            parse_cancel_memo(r[k++], request_ids[i], resume_outcomes, &memos[i]);
        }
        const redisReply *h = r[k++], *score = r[k++];
        const bool gone =
            h->type != REDIS_REPLY_ERROR && (h->type != REDIS_REPLY_ARRAY || h->elements == 0);
        /* Not in rc:finished: past RESEARCH_RETENTION (trimmed, the hash about to expire),
         * or never finished; a key of another type is kept, marked, to be refused. */
        found[i] = gone || (h->type == REDIS_REPLY_ARRAY && score->type == REDIS_REPLY_NIL)
                       ? NULL
                       : parse_research(research_ids[i], h, false);
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



/* apply_plan's calls go straight onto the link. */
static void
queue_call(void *ctx, const char *cmd, size_t len)
{
    redislink_append(ctx, cmd, len);
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
    const size_t n_calls =
        apply_plan(s->apply, changes, n, stats, retention_s, queue_call, s->link);
    /* REDIS_WAIT_REPLICAS: the pass counts as written only once that many replicas have it,
     * so that a failover to one of them loses nothing committed. In the same round trip. */
    const bool wait = s->cfg.wait_replicas > 0;
    if (wait) {
        struct resp a = {0};
        resp_str(&a, "WAIT");
        resp_int(&a, s->cfg.wait_replicas);
        resp_int(&a, s->cfg.timeout_ms / 2);
        append(s, &a);
        resp_release(&a);
    }
    /* One reply per call, all read in one round trip before any is judged (a pass holds at
     * most a sweep slice and a batch of inputs, so its commands stay a few MB): an array with
     * one element per group and the warnings last, or one error for the whole call (FENCED:
     * not the leader; NOPERM; a key every change needs of the wrong type; NOSCRIPT; ...). */
    const size_t n_replies = n_calls + (wait ? 1 : 0);
    redisReply **r = xcalloc(n_replies, sizeof(*r));
    if ((rc = redislink_read(s->link, r, n_replies, err)) != RC_OK) {
        free(r);
        return rc;
    }
    struct apply_outcome o;
    apply_judge(s->apply, r, n_calls, n, stats != NULL, results, spent_usd, &o);
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
            o.drop_link = true;
        }
    }
    if (o.fenced) {
        rc = rc_err_set(err, RC_ECONFLICT, "redis %s: FENCED: another instance holds the lease",
                        redislink_where(s->link));
    } else if (o.outage != NULL) {
        rc = rc_err_set(err, RC_EUNAVAIL, "redis %s: %s", redislink_where(s->link), o.outage);
    } else if (shortfall[0] != '\0') {
        rc = rc_err_set(err, RC_EUNAVAIL, "redis %s: %s", redislink_where(s->link), shortfall);
    }
    if (o.drop_link) {
        redislink_drop(s->link); /* after the message: it names the server */
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
    struct resp a = {0};
    redisReply *r = NULL;
    resp_str(&a, "HDEL");
    resp_str(&a, keys_outbox(&s->key, s->cfg.key_prefix));
    for (size_t i = 0; i < n; i++) {
        resp_str(&a, ids[i]);
    }
    rc = command(s, &a, &r, err);
    resp_release(&a);
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
    struct resp a = {0};
    struct store_outbox_entry *e = NULL;
    size_t count = 0, cap = 0;
    char cursor[32] = "0";
    /* HSCAN, so that no reply (and no time Redis spends building one) grows with the outbox,
     * which a long Kafka outage can fill. */
    do {
        redisReply *r = NULL;
        resp_str(&a, "HSCAN");
        resp_str(&a, keys_outbox(&s->key, s->cfg.key_prefix));
        resp_str(&a, cursor);
        resp_str(&a, "COUNT");
        resp_int(&a, STORE_OUTBOX_CHUNK);
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
    resp_release(&a);
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
    struct resp a = {0};
    redisReply *r = NULL;
    resp_str(&a, "ZREMRANGEBYSCORE");
    resp_str(&a, keys_finished(&s->key, s->cfg.key_prefix));
    resp_str(&a, "-inf");
    resp_int(&a, now_ms - retention_s * 1000);
    rc = command(s, &a, &r, err);
    resp_release(&a);
    if (rc == RC_OK) {
        freeReplyObject(r);
    }
    return rc;
}
