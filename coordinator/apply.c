/* SPDX-License-Identifier: MIT
 * apply: the coordinator's one write path, planned. Pure: it builds the script calls and
 * judges their replies; store.c sends them. */
#include "coordinator/apply.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "common/log.h"
#include "common/num.h"
#include "common/rediserr.h"
#include "common/xalloc.h"
#include "contract/fields.h"
#include "contract/keys.h"
#include "contract/outbox.h"
#include "coordinator/change.h"
#include "coordinator/metrics.h"
#include "coordinator/research.h"
#include "coordinator/resp.h"

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
 * or a resume's memo) have their type and the research exists, or the group is skipped with a
 * KEYTYPE or KEYMISSING error; the figures' keys (rc:coordinator, rc:budget:<day> and its
 * :charges) that cannot take an op make that op skipped, with a warning. Under OOM the first
 * write of a group fails before it writes anything (Redis checks maxmemory until a script's
 * first write). The reply: one element per group (its error, or its last op's reply), then the
 * list of warnings. */
static const char lua_fmt[] =
    "if redis.call('GET', KEYS[1]) ~= ARGV[1] then return redis.error_reply('FENCED') end\n"
    "local RESEARCH = %d\n"
    "local OWN = {[%d] = true, [%d] = true, [%d] = true, [%d] = true}\n"
    "local SOFT = {[%d] = true, [%d] = true, [%d] = true}\n"
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

#define GROUPS_MAX 256 /* changes per script call: bounds how long Redis is held */

#define REQUEST_TTL_S 86400       /* trigger and cancel outcomes are remembered for 24 h (§3) */
#define BUDGET_TTL_S (35 * 86400) /* a month of daily spend stays readable */

/* The operations of one group of the apply script: "<cmd> <key index> <argc>", then the args. */
struct ops {
    struct resp args;
    size_t n;
};

/* One script call being built: its keys and its groups. */
struct apply_call {
    struct resp keys;
    struct resp groups;
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
    K_RESUME,
    K_BUDGET_CHARGES,
    K_COUNT = K_BUDGET_CHARGES
};

struct apply {
    char *key_prefix;
    char *instance;
    char *lua;    /* lua_fmt with the key indexes filled in */
    char sha[41]; /* as SCRIPT LOAD gave it */
    struct buf key; /* scratch for key building */
    /* scratch kept between passes so that their buffers grow once */
    struct ops ops;
    struct apply_call call;
    struct resp cmd;
    struct buf frame; /* one call, framed */
    struct buf fixed_keys[K_COUNT + 1]; /* by K_*: each key of a group that names nothing */
    char *warnings; /* the script's last warnings (figures it could not write), logged when
                       they change */
};

struct apply *
apply_new(const char *key_prefix, const char *instance)
{
    struct apply *ap = xcalloc(1, sizeof(*ap));
    ap->key_prefix = xstrdup(key_prefix);
    ap->instance = xstrdup(instance);
    struct buf lua = BUF_INIT;
    buf_printf(&lua, lua_fmt, K_RESEARCH, K_RESEARCH, K_REQUEST_FIGURES, K_CANCEL, K_RESUME,
               K_COORDINATOR, K_BUDGET, K_BUDGET_CHARGES);
    ap->lua = buf_detach(&lua);
    return ap;
}

void
apply_free(struct apply *ap)
{
    if (ap == NULL) {
        return;
    }
    free(ap->key_prefix);
    free(ap->instance);
    free(ap->lua);
    free(ap->warnings);
    buf_release(&ap->key);
    resp_release(&ap->ops.args);
    resp_release(&ap->call.keys);
    resp_release(&ap->call.groups);
    resp_release(&ap->cmd);
    buf_release(&ap->frame);
    for (int i = 0; i <= K_COUNT; i++) {
        buf_release(&ap->fixed_keys[i]);
    }
    free(ap);
}

const char *
apply_script(const struct apply *ap)
{
    return ap->lua;
}

void
apply_set_sha(struct apply *ap, const char *sha)
{
    snprintf(ap->sha, sizeof(ap->sha), "%s", sha);
}

static void
op(struct ops *o, const char *cmd, int key, size_t argc)
{
    o->n++;
    resp_str(&o->args, cmd);
    resp_int(&o->args, key);
    resp_int(&o->args, (int64_t)argc);
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
                resp_str(&o->args, research_field_name((enum research_field)i));
                resp_str(&o->args, c->value[i]);
            }
        }
    }
    if (n_del > 0) {
        op(o, "HDEL", K_RESEARCH, n_del);
        for (int i = 0; i < RF_COUNT; i++) {
            if (c->set[i] && c->value[i] == NULL) {
                resp_str(&o->args, research_field_name((enum research_field)i));
            }
        }
    }
}

/* A created research joins rc:active; a finished one moves to rc:finished and expires; a
 * resumed one moves back and expires no more. */
static void
plan_sets(const struct change *c, int64_t retention_s, struct ops *o)
{
    if (c->kind == CHANGE_CREATE) {
        op(o, "ZADD", K_ACTIVE, 2);
        resp_int(&o->args, c->score);
        resp_str(&o->args, c->research_id);
    } else if (c->kind == CHANGE_FINISH) {
        op(o, "ZREM", K_ACTIVE, 1);
        resp_str(&o->args, c->research_id);
        op(o, "ZADD", K_FINISHED, 2);
        resp_int(&o->args, c->score);
        resp_str(&o->args, c->research_id);
        if (c->hash != CHANGE_HASH_KEEP) {
            op(o, "EXPIRE", K_RESEARCH, 1);
            resp_int(&o->args, retention_s);
        }
    } else if (c->kind == CHANGE_RESUME) {
        op(o, "ZREM", K_FINISHED, 1);
        resp_str(&o->args, c->research_id);
        op(o, "ZADD", K_ACTIVE, 2);
        resp_int(&o->args, c->score);
        resp_str(&o->args, c->research_id);
        op(o, "PERSIST", K_RESEARCH, 0);
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
    resp_str(&o->args, c->request_value);
    resp_str(&o->args, "EX");
    resp_int(&o->args, REQUEST_TTL_S);
    const struct rejection_figures *f = &c->figures;
    if (!f->has_capacity && !f->has_budget) {
        return;
    }
    op(o, "HSET", K_REQUEST_FIGURES, f->has_capacity && f->has_budget ? 8 : 4);
    if (f->has_capacity) {
        resp_str(&o->args, FIGURE_ACTIVE_COUNT);
        resp_int(&o->args, f->active_count);
        resp_str(&o->args, FIGURE_LIMIT);
        resp_int(&o->args, f->limit);
    }
    if (f->has_budget) {
        char text[64];
        resp_str(&o->args, FIGURE_REMAINING);
        snprintf(text, sizeof(text), "%.6f", f->remaining);
        resp_str(&o->args, text);
        resp_str(&o->args, FIGURE_DAILY_LIMIT);
        snprintf(text, sizeof(text), "%.6f", f->daily_limit);
        resp_str(&o->args, text);
    }
    op(o, "EXPIRE", K_REQUEST_FIGURES, 1);
    resp_int(&o->args, REQUEST_TTL_S);
}

/* Money the change charges, onto its day's spend and its research's charges that day. */
static void
plan_budget(const struct change *c, struct ops *o)
{
    if (c->cost_usd == 0) {
        return;
    }
    char text[64];
    snprintf(text, sizeof(text), "%.17g", c->cost_usd);
    op(o, "HINCRBYFLOAT", K_BUDGET, 2);
    resp_str(&o->args, BUDGET_SPENT_USD);
    resp_str(&o->args, text);
    op(o, "EXPIRE", K_BUDGET, 1);
    resp_int(&o->args, BUDGET_TTL_S);
    if (c->research_id != NULL) {
        op(o, "HINCRBYFLOAT", K_BUDGET_CHARGES, 2);
        resp_str(&o->args, c->research_id);
        resp_str(&o->args, text);
        op(o, "EXPIRE", K_BUDGET_CHARGES, 1);
        resp_int(&o->args, BUDGET_TTL_S);
    }
}

/* A cancel's outcome under rc:cancel:<request_id> (key K_CANCEL), or a resume's under
 * rc:resume:<request_id> (K_RESUME). */
static void
plan_memo(const struct cancel_memo *m, int key, struct ops *o)
{
    if (m->request_id == NULL) {
        return;
    }
    op(o, "HSET", key, 4 + (m->phase != NULL ? 2 : 0) + (m->dispatch_id != NULL ? 2 : 0));
    resp_str(&o->args, CANCEL_OUTCOME);
    resp_str(&o->args, m->outcome);
    resp_str(&o->args, CANCEL_RESEARCH_ID);
    resp_str(&o->args, m->research_id);
    if (m->phase != NULL) {
        resp_str(&o->args, CANCEL_PHASE);
        resp_str(&o->args, m->phase);
    }
    if (m->dispatch_id != NULL) {
        resp_str(&o->args, CANCEL_DISPATCH_ID);
        resp_str(&o->args, m->dispatch_id);
    }
    op(o, "EXPIRE", key, 1);
    resp_int(&o->args, REQUEST_TTL_S);
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
        resp_str(&o->args, m->outbox_id);
        resp_add(&o->args, frame.data, frame.len);
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
    plan_memo(&c->cancel, K_CANCEL, o);
    plan_memo(&c->resume, K_RESUME, o);
    plan_budget(c, o);
    plan_outbox(c, o);
}

static uint64_t
sum(const uint64_t *v, size_t n)
{
    uint64_t total = 0;
    for (size_t i = 0; i < n; i++) {
        total += v[i];
    }
    return total;
}

static void
plan_stats(const struct store_stats *st, const char *instance, struct ops *o)
{
    op(o, "HSET", K_COORDINATOR, st->last_cycle_at_ms > 0 ? 14 : 10);
    resp_str(&o->args, COORD_INSTANCE);
    resp_str(&o->args, instance);
    resp_str(&o->args, COORD_VERSION);
    resp_str(&o->args, RC_VERSION);
    resp_str(&o->args, COORD_STARTED_AT);
    resp_int(&o->args, st->started_at_ms);
    resp_str(&o->args, COORD_ACTIVE);
    resp_int(&o->args, st->active);
    resp_str(&o->args, COORD_LIMIT);
    resp_int(&o->args, st->limit);
    if (st->last_cycle_at_ms > 0) {
        resp_str(&o->args, COORD_LAST_CYCLE_AT);
        resp_int(&o->args, st->last_cycle_at_ms);
        char text[32];
        snprintf(text, sizeof(text), "%.3f", st->cycle_ms);
        resp_str(&o->args, COORD_CYCLE_MS);
        resp_str(&o->args, text);
    }
    /* From the pass's one ledger: a trigger is every message of the triggers topic the
     * tally classed (accepted, rejected, repeated or invalid), a cancel being none. */
    const struct metrics_tally zero = {0}, *t = st->counts != NULL ? st->counts : &zero;
    const struct {
        const char *name;
        uint64_t delta;
    } counters[] = {
        {COORD_TRIGGERS, sum(t->triggers, METRICS_TRIGGER_COUNT)},
        {COORD_COMPLETIONS, t->completions},
        {COORD_STALE_COMPLETIONS, t->stale_completions},
        {COORD_INVALID_INPUTS, sum(t->invalid, MSG_INVALID_COUNT)},
        {COORD_REDISPATCHES, sum(t->redispatches, WORKER_TYPE_COUNT)},
    };
    for (size_t i = 0; i < N_OF(counters); i++) {
        /* HINCRBY 0 creates the field, so every counter is readable from the start. */
        op(o, "HINCRBY", K_COORDINATOR, 2);
        resp_str(&o->args, counters[i].name);
        resp_int(&o->args, (int64_t)counters[i].delta);
    }
    /* Today's budget is readable (limit and spend) even before anything was charged. */
    char text[64];
    snprintf(text, sizeof(text), "%.17g", st->daily_limit_usd);
    op(o, "HSET", K_BUDGET, 2);
    resp_str(&o->args, BUDGET_DAILY_LIMIT_USD);
    resp_str(&o->args, text);
    op(o, "EXPIRE", K_BUDGET, 1);
    resp_int(&o->args, BUDGET_TTL_S);
    /* Last: its reply, the day's spend, is the script's. */
    op(o, "HINCRBYFLOAT", K_BUDGET, 2);
    resp_str(&o->args, BUDGET_SPENT_USD);
    resp_str(&o->args, "0");
}

/* The keys one apply script may touch besides the fixed ones (NULL: none). */
struct apply_keys {
    const char *research_id;
    const char *request_id;
    const char *cancel_request_id;
    const char *resume_request_id;
    const char *budget_day;
};


/* Key `i` (K_*) of a group that names `k`, into ap->key. */
static const struct buf *
group_key(struct apply *ap, int i, const struct apply_keys *k)
{
    const char *prefix = ap->key_prefix;
    const char *request_id = k->request_id != NULL ? k->request_id : "";
    switch (i) {
    case K_LEADER:
        keys_leader(&ap->key, prefix);
        break;
    case K_RESEARCH:
        keys_research(&ap->key, prefix, k->research_id != NULL ? k->research_id : "");
        break;
    case K_ACTIVE:
        keys_active(&ap->key, prefix);
        break;
    case K_FINISHED:
        keys_finished(&ap->key, prefix);
        break;
    case K_OUTBOX:
        keys_outbox(&ap->key, prefix);
        break;
    case K_REQUEST:
        keys_request(&ap->key, prefix, request_id);
        break;
    case K_REQUEST_FIGURES:
        keys_request_figures(&ap->key, prefix, request_id);
        break;
    case K_COORDINATOR:
        keys_coordinator(&ap->key, prefix);
        break;
    case K_BUDGET:
        keys_budget(&ap->key, prefix, k->budget_day != NULL ? k->budget_day : "");
        break;
    case K_BUDGET_CHARGES:
        keys_budget_charges(&ap->key, prefix, k->budget_day != NULL ? k->budget_day : "");
        break;
    case K_CANCEL:
        keys_cancel(&ap->key, prefix, k->cancel_request_id != NULL ? k->cancel_request_id : "");
        break;
    default: /* K_RESUME */
        keys_resume(&ap->key, prefix, k->resume_request_id != NULL ? k->resume_request_id : "");
        break;
    }
    return &ap->key;
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
    case K_BUDGET_CHARGES:
        return k->budget_day != NULL;
    case K_CANCEL:
        return k->cancel_request_id != NULL;
    case K_RESUME:
        return k->resume_request_id != NULL;
    default:
        return false;
    }
}

/* Group flags of the apply script. */
#define GROUP_RESEARCH_EXISTS 1 /* the research hash must exist (an update of a live one) */

/* Add a group: the keys `k` names, then the ops of `o` (which is emptied). */
static void
add_group(struct apply *ap, struct apply_call *call, const struct apply_keys *k, int flags,
          struct ops *o)
{
    if (ap->fixed_keys[K_LEADER].data == NULL) {
        /* Every key as it is for a group that names nothing (most groups name only their
         * research): built once, then copied. */
        const struct apply_keys none = {0};
        for (int i = K_LEADER; i <= K_COUNT; i++) {
            const struct buf *key = group_key(ap, i, &none);
            buf_append(&ap->fixed_keys[i], key->data, key->len);
        }
    }
    /* In K_* order, so that KEYS[base + K_x] is the group's key x. */
    for (int i = K_LEADER; i <= K_COUNT; i++) {
        const struct buf *key = key_varies(i, k) ? group_key(ap, i, k) : &ap->fixed_keys[i];
        resp_add(&call->keys, key->data, key->len);
    }
    resp_int(&call->groups, (int64_t)o->n);
    resp_int(&call->groups, (int64_t)(call->n_groups * K_COUNT));
    resp_int(&call->groups, flags);
    resp_cat(&call->groups, &o->args);
    resp_reset(&o->args);
    o->n = 0;
    call->n_groups++;
}

/* Hand EVALSHA apply with the call's groups to `send`, and empty the call. */
static void
send_call(struct apply *ap, struct apply_call *call, apply_send_fn *send, void *ctx)
{
    struct resp *a = &ap->cmd;
    resp_str(a, "EVALSHA");
    resp_str(a, ap->sha);
    resp_int(a, (int64_t)(call->n_groups * K_COUNT));
    resp_cat(a, &call->keys);
    resp_str(a, ap->instance);
    resp_cat(a, &call->groups);
    buf_reset(&ap->frame);
    resp_frame(a, &ap->frame);
    send(ctx, ap->frame.data, ap->frame.len);
    resp_reset(a);
    resp_reset(&call->keys);
    resp_reset(&call->groups);
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
note_warnings(struct apply *ap, const redisReply *w)
{
    struct buf text = BUF_INIT;
    for (size_t i = 0; w != NULL && w->type == REDIS_REPLY_ARRAY && i < w->elements; i++) {
        if (w->element[i]->type == REDIS_REPLY_STRING) {
            buf_printf(&text, "%s%s", i > 0 ? "; " : "", w->element[i]->str);
        }
    }
    const char *now = text.data != NULL ? text.data : "";
    const char *before = ap->warnings != NULL ? ap->warnings : "";
    if (strcmp(now, before) != 0) {
        if (now[0] != '\0') {
            log_error("figures not written: a key of the wrong kind (fix or delete it)",
                      "detail=\"%s\"", now);
        } else {
            log_info("figures written again", "was=\"%s\"", before);
        }
        free(ap->warnings);
        ap->warnings = xstrdup(now);
    }
    buf_release(&text);
}

/* What happened to one group, into results[g] (a change) or the pass's outcome. An error of
 * the change's own keys (the research hash, a request's memo) is that change's, for good;
 * any other is the pass's: an outage, for which nothing may be committed. */
static void
judge_group(const redisReply *e, struct store_result *res, struct apply_outcome *o)
{
    *res = (struct store_result){.rc = RC_OK};
    if (e == NULL) {
        o->outage = o->outage != NULL ? o->outage : "short reply from the apply script";
        return;
    }
    if (e->type != REDIS_REPLY_ERROR) {
        return;
    }
    bool missing = false;
    int k = error_key(e, &missing);
    if (k == K_RESEARCH || k == K_REQUEST_FIGURES || k == K_CANCEL || k == K_RESUME) {
        res->rc = RC_EBACKEND;
        res->research_key = k == K_RESEARCH;
        res->stored = missing ? RESEARCH_STORED_NONE : RESEARCH_STORED_FOREIGN;
        snprintf(res->why, sizeof(res->why), "redis: %s", e->str);
        return;
    }
    if (o->outage == NULL) {
        o->outage = e->str;
    }
    o->drop_link = o->drop_link || rediserr_drops_link(rediserr_classify(e->str, e->len));
}

size_t
apply_plan(struct apply *ap, const struct change *changes, size_t n,
           const struct store_stats *stats, int64_t retention_s, apply_send_fn *send, void *ctx)
{
    const size_t n_groups = n + (stats != NULL ? 1 : 0);
    struct ops *o = &ap->ops;
    struct apply_call *call = &ap->call;
    size_t n_calls = 0;
    for (size_t i = 0; i < n_groups; i++) {
        if (i < n) {
            const struct change *c = &changes[i];
            plan_change(c, retention_s, o);
            struct apply_keys k = {.research_id = c->research_id,
                                   .request_id = c->request_id,
                                   .cancel_request_id = c->cancel.request_id,
                                   .resume_request_id = c->resume.request_id,
                                   .budget_day = c->cost_usd != 0 ? c->budget_day : NULL};
            /* A resumed research's hash must still be there: it may have expired since
             * intake read it. */
            const bool live =
                c->research_id != NULL && c->hash == CHANGE_HASH_WRITE &&
                (c->kind == CHANGE_UPDATE || c->kind == CHANGE_FINISH || c->kind == CHANGE_RESUME);
            add_group(ap, call, &k, live ? GROUP_RESEARCH_EXISTS : 0, o);
        } else {
            plan_stats(stats, ap->instance, o);
            struct apply_keys k = {.budget_day = stats->budget_day};
            add_group(ap, call, &k, 0, o);
        }
        if (call->n_groups == GROUPS_MAX || i + 1 == n_groups) {
            send_call(ap, call, send, ctx);
            n_calls++;
        }
    }
    return n_calls;
}

void
apply_judge(struct apply *ap, redisReply *const *replies, size_t n_calls, size_t n,
            bool with_stats, struct store_result *results, double *spent_usd,
            struct apply_outcome *o)
{
    *o = (struct apply_outcome){0};
    const size_t n_groups = n + (with_stats ? 1 : 0);
    size_t g = 0;
    for (size_t k = 0; k < n_calls; k++) {
        const redisReply *r = replies[k];
        const size_t in_call = n_groups - g < GROUPS_MAX ? n_groups - g : GROUPS_MAX;
        if (r->type == REDIS_REPLY_ERROR) {
            enum rediserr_kind kind = rediserr_classify(r->str, r->len);
            o->fenced = o->fenced || kind == REDISERR_FENCED;
            if (kind != REDISERR_FENCED && o->outage == NULL) {
                o->outage = r->str;
            }
            o->drop_link = o->drop_link || rediserr_drops_link(kind);
            for (size_t j = 0; j < in_call; j++, g++) {
                if (g < n) {
                    results[g] = (struct store_result){.rc = RC_EUNAVAIL};
                }
            }
            continue;
        }
        const bool shaped = r->type == REDIS_REPLY_ARRAY && r->elements == in_call + 1;
        for (size_t j = 0; j < in_call; j++, g++) {
            const redisReply *e = shaped ? r->element[j] : NULL;
            struct store_result one;
            judge_group(e, &one, o);
            if (g < n) {
                results[g] = one;
            } else if (spent_usd != NULL && e != NULL && e->type == REDIS_REPLY_STRING) {
                double d = 0; /* the day's spend as the script summed it; 0 if no number */
                (void)num_parse_f64(e->str, e->len, &d);
                *spent_usd = d;
            }
        }
        if (shaped) {
            note_warnings(ap, r->element[in_call]);
        }
    }
}
