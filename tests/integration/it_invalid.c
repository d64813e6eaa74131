/* SPDX-License-Identifier: MIT
 * it_invalid: contract §3's rule for invalid inputs over the real coordinator, redis-server, the
 * dev broker and stub workers: every kind of invalid trigger or completion reaches the dead
 * letter topic with its reason, is logged and committed, and changes nothing else, while valid
 * researches still complete; stale completions and bad results are not invalid inputs. */
#include "tests/support/test.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include <librdkafka/rdkafka.h>
#include <msgpack.h>

#include "common/buf.h"
#include "common/clock.h"
#include "common/num.h"
#include "contract/keys.h"
#include "contract/limits.h"
#include "proto/msg.h"
#include "tests/support/it_env.h"

#define WAIT_MS 20000
#define MAX_PARTITIONS 64    /* of an input topic, for the commit check */
#define DEEP_LEVELS 1000     /* nesting of the "deep nesting" case */
#define HUGE_PAD 1258291     /* 1.2 MiB: over the 1 MiB message limit */
#define BIG_PAD (100 * 1024) /* over the 64 KiB a dead letter keeps, under the message limit */
#define GROUP "it-invalid"   /* the coordinator's consumer group, read back for commits */

static const char *const fast[] = {"--duration-ms", "30", NULL};
/* A known group, to read its commits back; a limit that never gets in the way. */
static const char *const coordinator_env[] = {"KAFKA_GROUP=" GROUP,
                                              "AGENT_MAX_CONCURRENT_RESEARCHES=10", NULL};

/* ---- building invalid inputs ---------------------------------------------------------------- */

typedef void (*build_fn)(msgpack_packer *pk);

/* Bytes as they are, not msgpack-encoded. */
static void
put_raw(msgpack_packer *pk, const char *data, size_t len)
{
    pk->callback(pk->data, data, len);
}

static void
put_strn(msgpack_packer *pk, const char *s, size_t n)
{
    msgpack_pack_str(pk, n);
    msgpack_pack_str_body(pk, s, n);
}

static void
put_str(msgpack_packer *pk, const char *s)
{
    put_strn(pk, s, strlen(s));
}

static void
put_kv(msgpack_packer *pk, const char *key, const char *val)
{
    put_str(pk, key);
    put_str(pk, val);
}

/* A string of n bytes `c`, packed in chunks so no buffer of n bytes is needed. */
static void
put_filled(msgpack_packer *pk, size_t n, char c)
{
    char chunk[4096];
    memset(chunk, c, sizeof(chunk));
    msgpack_pack_str(pk, n);
    for (size_t left = n; left > 0;) {
        size_t k = left < sizeof(chunk) ? left : sizeof(chunk);
        msgpack_pack_str_body(pk, chunk, k);
        left -= k;
    }
}

/* Open a trigger map of 1 + (request_id set) + (brief set) + n_extra entries and write type,
 * request_id and brief; the caller writes the n_extra entries. NULL leaves a key out. */
static void
put_trigger(msgpack_packer *pk, size_t n_extra, const char *request_id, const char *brief)
{
    msgpack_pack_map(pk, 1 + (request_id != NULL) + (brief != NULL) + n_extra);
    put_kv(pk, "type", "trigger");
    if (request_id != NULL) {
        put_kv(pk, "request_id", request_id);
    }
    if (brief != NULL) {
        put_kv(pk, "brief", brief);
    }
}

enum result_shape { RESULT_NONE, RESULT_MAP, RESULT_STRING };

/* A completion; NULL leaves a key out. */
static void
put_completion(msgpack_packer *pk, const char *type, const char *research_id,
               const char *dispatch_id, const char *worker_id, const char *status,
               enum result_shape result)
{
    msgpack_pack_map(pk, 2 + (dispatch_id != NULL) + (worker_id != NULL) + (status != NULL) +
                             (result != RESULT_NONE));
    put_kv(pk, "type", type);
    put_kv(pk, "research_id", research_id);
    if (dispatch_id != NULL) {
        put_kv(pk, "dispatch_id", dispatch_id);
    }
    if (worker_id != NULL) {
        put_kv(pk, "worker_id", worker_id);
    }
    if (status != NULL) {
        put_kv(pk, "status", status);
    }
    if (result == RESULT_MAP) {
        put_str(pk, "result");
        msgpack_pack_map(pk, 1);
        put_kv(pk, "strategy_name", "s");
    } else if (result == RESULT_STRING) {
        put_kv(pk, "result", "a string");
    }
}

/* A valid trigger of exactly `total` bytes (well over 64 KiB): type, request_id, brief and an
 * unknown key whose string (a str32: 5 header bytes) fills the rest. */
static void
put_exact_trigger(msgpack_sbuffer *sb, const char *request_id, size_t total)
{
    msgpack_packer pk;
    msgpack_packer_init(&pk, sb, msgpack_sbuffer_write);
    put_trigger(&pk, 1, request_id, "b");
    put_str(&pk, "padding");
    size_t used = sb->size + 5;
    RC_ASSERT(total > used + 65535);
    put_filled(&pk, total - used, 'p');
    RC_ASSERT(sb->size == total);
}

/* One small builder per case, named after it. */
static void
b_garbage(msgpack_packer *pk)
{
    put_raw(pk, "\xc1\xff\x00 not msgpack at all", 22);
}

static void
b_empty(msgpack_packer *pk)
{
    (void)pk;
}

static void
b_truncated_map(msgpack_packer *pk)
{
    put_raw(pk, "\x83\xa4type\xa7trigger", 14); /* 3 entries announced, 1 sent */
}

static void
b_map32_claims_4g(msgpack_packer *pk)
{
    put_raw(pk, "\xdf\xff\xff\xff\xff\xa4type", 10);
}

static void
b_array(msgpack_packer *pk)
{
    msgpack_pack_array(pk, 4);
    put_kv(pk, "type", "trigger");
    put_kv(pk, "request_id", "req-array");
}

static void
b_int_key(msgpack_packer *pk)
{
    msgpack_pack_map(pk, 4);
    msgpack_pack_int(pk, 7); /* first, so a peek at request_id must skip it */
    put_str(pk, "seven");
    put_kv(pk, "type", "trigger");
    put_kv(pk, "request_id", "req-int-key");
    put_kv(pk, "brief", "b");
}

static void
b_trailing(msgpack_packer *pk)
{
    put_trigger(pk, 0, NULL, "first");
    put_trigger(pk, 0, NULL, "second");
}

static void
b_deep(msgpack_packer *pk)
{
    put_trigger(pk, 1, NULL, "b");
    for (int i = 0; i < DEEP_LEVELS; i++) {
        put_str(pk, "x");
        msgpack_pack_map(pk, 1);
    }
    put_str(pk, "x");
    msgpack_pack_nil(pk);
}

static void
b_no_type(msgpack_packer *pk)
{
    msgpack_pack_map(pk, 1);
    put_kv(pk, "brief", "b");
}

static void
b_type_int(msgpack_packer *pk)
{
    msgpack_pack_map(pk, 2);
    put_str(pk, "type");
    msgpack_pack_int(pk, 1);
    put_kv(pk, "brief", "b");
}

static void
b_completion_on_triggers(msgpack_packer *pk)
{
    put_completion(pk, "completion", "rs-x", "d-1", "w-1", "completed", RESULT_MAP);
}

static void
b_type_foo(msgpack_packer *pk)
{
    msgpack_pack_map(pk, 2);
    put_kv(pk, "type", "foo");
    put_kv(pk, "brief", "b");
}

static void
b_v2(msgpack_packer *pk)
{
    put_trigger(pk, 1, "req-v2", "b");
    put_str(pk, "v");
    msgpack_pack_int(pk, 2);
}

static void
b_v_string(msgpack_packer *pk)
{
    put_trigger(pk, 1, "req-v-string", "b");
    put_kv(pk, "v", "1");
}

static void
b_ts_string(msgpack_packer *pk)
{
    put_trigger(pk, 1, "req-ts-string", "b");
    put_kv(pk, "ts", "yesterday");
}

static void
b_no_request_id(msgpack_packer *pk)
{
    put_trigger(pk, 0, NULL, "b");
}

static void
b_no_brief(msgpack_packer *pk)
{
    put_trigger(pk, 0, "req-no-brief", NULL);
}

static void
b_empty_brief(msgpack_packer *pk)
{
    put_trigger(pk, 0, "req-empty-brief", "");
}

static void
b_nil_brief(msgpack_packer *pk)
{
    put_trigger(pk, 1, "req-nil-brief", NULL);
    put_str(pk, "brief");
    msgpack_pack_nil(pk);
}

static void
b_request_id_space(msgpack_packer *pk)
{
    put_trigger(pk, 0, "a b", "b");
}

static void
b_request_id_accent(msgpack_packer *pk)
{
    put_trigger(pk, 0, "\xc3\xa9", "b"); /* "é" */
}

static void
b_request_id_129(msgpack_packer *pk)
{
    put_trigger(pk, 1, NULL, "b");
    put_str(pk, "request_id");
    put_filled(pk, LIMITS_ID_MAX + 1, 'r');
}

static void
b_brief_too_long(msgpack_packer *pk)
{
    put_trigger(pk, 1, "req-long-brief", NULL);
    put_str(pk, "brief");
    put_filled(pk, LIMITS_BRIEF_MAX + 1, 'b');
}

static void
b_model_too_long(msgpack_packer *pk)
{
    put_trigger(pk, 1, "req-long-model", "b");
    put_str(pk, "model");
    put_filled(pk, LIMITS_STRING_MAX + 1, 'm');
}

static void
b_bypass_yes(msgpack_packer *pk)
{
    put_trigger(pk, 1, "req-bypass-yes", "b");
    put_kv(pk, "bypass_gates", "yes");
}

static void
b_force_int(msgpack_packer *pk)
{
    put_trigger(pk, 1, "req-force-int", "b");
    put_str(pk, "force");
    msgpack_pack_int(pk, 1);
}

static void
b_options_array(msgpack_packer *pk)
{
    put_trigger(pk, 1, "req-options-array", "b");
    put_str(pk, "options");
    msgpack_pack_array(pk, 1);
    msgpack_pack_int(pk, 1);
}

/* {"blob": <bin>}: JSON cannot hold it, and it is stored as JSON. */
static void
b_options_bin(msgpack_packer *pk)
{
    put_trigger(pk, 1, "req-options-bin", "b");
    put_str(pk, "options");
    msgpack_pack_map(pk, 1);
    put_str(pk, "blob");
    msgpack_pack_bin(pk, 2);
    msgpack_pack_bin_body(pk, "\x00\x01", 2);
}

static void
b_duplicate_brief(msgpack_packer *pk)
{
    put_trigger(pk, 1, "req-dup-brief", "one");
    put_kv(pk, "brief", "two");
}

static void
b_huge(msgpack_packer *pk)
{
    put_trigger(pk, 1, "req-huge", "b");
    put_str(pk, "padding"); /* an unknown key: only the size is wrong */
    put_filled(pk, HUGE_PAD, 'p');
}

static void
b_big_no_brief(msgpack_packer *pk)
{
    put_trigger(pk, 1, "req-big-no-brief", NULL);
    put_str(pk, "padding");
    put_filled(pk, BIG_PAD, 'p');
}

static void
b_brief_bad_utf8(msgpack_packer *pk)
{
    put_trigger(pk, 1, "req-bad-utf8", NULL);
    put_str(pk, "brief");
    put_strn(pk, "caf\xc3 \xff\xfe", 7);
}

static void
b_brief_nul(msgpack_packer *pk)
{
    put_trigger(pk, 1, "req-brief-nul", NULL);
    put_str(pk, "brief");
    put_strn(pk, "a\0b", 3);
}

static void
b_cancel_no_research_id(msgpack_packer *pk)
{
    msgpack_pack_map(pk, 2);
    put_kv(pk, "type", "cancel");
    put_kv(pk, "reason", "no id");
}

static void
b_c_no_dispatch_id(msgpack_packer *pk)
{
    put_completion(pk, "completion", "rs-x", NULL, "w-1", "completed", RESULT_MAP);
}

static void
b_c_bad_worker_id(msgpack_packer *pk)
{
    put_completion(pk, "completion", "rs-x", "d-1", "w/1", "completed", RESULT_MAP);
}

static void
b_c_status_maybe(msgpack_packer *pk)
{
    put_completion(pk, "completion", "rs-x", "d-1", "w-1", "maybe", RESULT_MAP);
}

static void
b_c_no_status(msgpack_packer *pk)
{
    put_completion(pk, "completion", "rs-x", "d-1", "w-1", NULL, RESULT_MAP);
}

static void
b_c_completed_no_result(msgpack_packer *pk)
{
    put_completion(pk, "completion", "rs-x", "d-1", "w-1", "completed", RESULT_NONE);
}

static void
b_c_result_string(msgpack_packer *pk)
{
    put_completion(pk, "completion", "rs-x", "d-1", "w-1", "completed", RESULT_STRING);
}

static void
b_c_trigger_on_completions(msgpack_packer *pk)
{
    put_trigger(pk, 0, "req-on-completions", "b");
}

struct invalid_case {
    const char *name;
    const char *topic;     /* "triggers" or "completions" */
    const char *key;       /* the Kafka key, NULL for none */
    build_fn build;        /* writes the message */
    const char *want_key;  /* the reason starts with "<want_key>: " */
    const char *want_rule; /* ... and contains this */
    const char *rejected;  /* a rejected/invalid event is due for this request_id, else NULL */
};

static const struct invalid_case cases[] = {
    /* Not exactly one map. */
    {"garbage", "triggers", "garbage", b_garbage, "message", "map", NULL},
    {"empty, no key", "triggers", NULL, b_empty, "message", "empty", NULL},
    {"truncated map", "triggers", "truncated", b_truncated_map, "message", "malformed", NULL},
    {"map32 claiming 4G entries", "triggers", "map32", b_map32_claims_4g, "message", "malformed",
     NULL},
    {"array", "triggers", "req-array", b_array, "message", "map", NULL},
    {"non-string key", "triggers", "req-int-key", b_int_key, "message", "not a string",
     "req-int-key"},
    {"trailing object", "triggers", "trailing", b_trailing, "message", "trailing", NULL},
    {"deep nesting", "triggers", "deep", b_deep, "message", "nested", NULL},
    {"over 1 MiB", "triggers", "req-huge", b_huge, "message", "larger than 1048576", "req-huge"},
    /* The envelope. */
    {"missing type", "triggers", "no-type", b_no_type, "type", "required", NULL},
    {"type not a string", "triggers", "type-int", b_type_int, "type", "must be a string", NULL},
    {"completion on triggers", "triggers", "rs-x", b_completion_on_triggers, "type",
     "\"completion\" is not a message type", NULL},
    {"type foo", "triggers", "foo", b_type_foo, "type", "\"foo\" is not a message type", NULL},
    {"v 2", "triggers", "req-v2", b_v2, "v", "version 2", "req-v2"},
    {"v a string", "triggers", "req-v-string", b_v_string, "v", "integer", "req-v-string"},
    {"ts a string", "triggers", "req-ts-string", b_ts_string, "ts", "integer", "req-ts-string"},
    /* A trigger's keys. */
    {"no request_id", "triggers", "anon", b_no_request_id, "request_id", "required", NULL},
    {"no brief", "triggers", "req-no-brief", b_no_brief, "brief", "required", "req-no-brief"},
    {"empty brief", "triggers", "req-empty-brief", b_empty_brief, "brief", "required",
     "req-empty-brief"},
    {"nil brief", "triggers", "req-nil-brief", b_nil_brief, "brief", "required", "req-nil-brief"},
    {"request_id with a space", "triggers", "a b", b_request_id_space, "request_id",
     "[A-Za-z0-9._:-]", NULL},
    {"request_id non-ASCII", "triggers", "\xc3\xa9", b_request_id_accent, "request_id",
     "[A-Za-z0-9._:-]", NULL},
    {"request_id 129 bytes", "triggers", "long-id", b_request_id_129, "request_id", "1-128", NULL},
    {"brief 16 KiB + 1", "triggers", "req-long-brief", b_brief_too_long, "brief",
     "longer than 16384", "req-long-brief"},
    {"model 4 KiB + 1", "triggers", "req-long-model", b_model_too_long, "model", "longer than 4096",
     "req-long-model"},
    {"bypass_gates \"yes\"", "triggers", "req-bypass-yes", b_bypass_yes, "bypass_gates", "boolean",
     "req-bypass-yes"},
    {"force an int", "triggers", "req-force-int", b_force_int, "force", "boolean", "req-force-int"},
    {"options an array", "triggers", "req-options-array", b_options_array, "options",
     "must be a map", "req-options-array"},
    {"options holding bytes", "triggers", "req-options-bin", b_options_bin, "options",
     "at blob: binary values have no JSON form", "req-options-bin"},
    {"duplicate brief", "triggers", "req-dup-brief", b_duplicate_brief, "brief", "duplicate",
     "req-dup-brief"},
    {"over 64 KiB, no brief", "triggers", "req-big-no-brief", b_big_no_brief, "brief", "required",
     "req-big-no-brief"},
    {"brief not UTF-8", "triggers", "req-bad-utf8", b_brief_bad_utf8, "brief", "UTF-8",
     "req-bad-utf8"},
    {"brief with NUL", "triggers", "req-brief-nul", b_brief_nul, "brief", "NUL", "req-brief-nul"},
    {"cancel without research_id", "triggers", "cancel", b_cancel_no_research_id, "research_id",
     "required", NULL},
    /* A completion's keys. */
    {"completion without dispatch_id", "completions", "rs-x", b_c_no_dispatch_id, "dispatch_id",
     "required", NULL},
    {"completion bad worker_id", "completions", "rs-x", b_c_bad_worker_id, "worker_id",
     "[A-Za-z0-9._:-]", NULL},
    {"status maybe", "completions", "rs-x", b_c_status_maybe, "status",
     "\"failed\" or \"released\"", NULL},
    {"status missing", "completions", "rs-x", b_c_no_status, "status", "required", NULL},
    {"completed without result", "completions", "rs-x", b_c_completed_no_result, "result",
     "required", NULL},
    {"result a string", "completions", "rs-x", b_c_result_string, "result", "must be a map", NULL},
    {"trigger on completions", "completions", "req-on-completions", b_c_trigger_on_completions,
     "type", "\"trigger\" is not a message type", NULL},
};

#define N_CASES N_OF(cases)

/* ---- helpers -------------------------------------------------------------------------------- */

/* Where an input landed. */
struct sent {
    int topic; /* 0 triggers, 1 completions */
    int32_t partition;
    int64_t offset;
};

static const char *const input_topics[2] = {"triggers", "completions"};

static int
topic_index(const char *suffix)
{
    return strcmp(suffix, "triggers") == 0 ? 0 : 1;
}

static bool
key_eq(const char *a, const char *b)
{
    return (a == NULL && b == NULL) || (a != NULL && b != NULL && strcmp(a, b) == 0);
}

/* Start one fast stub worker of every type. */
static void
start_all_workers(struct it_env *env)
{
    it_env_start_workers(env, "design", 1, NULL, fast);
    it_env_start_workers(env, "training", 1, NULL, fast);
    it_env_start_workers(env, "backtest", 1, NULL, fast);
    it_env_start_workers(env, "assessment", 1, NULL, fast);
}

/* Trigger and wait for acceptance; returns the new research id (caller frees). */
static char *
trigger_ok(struct it_env *env, const struct trigger *t)
{
    it_send_trigger(env, t);
    const struct event *ev = it_event_wait_request(env, EVENT_ACCEPTED, t->request_id, WAIT_MS);
    if (ev->research_id == NULL) {
        it_fail(env, "accepted %s without a research_id", t->request_id);
    }
    return strdup(ev->research_id);
}

/* The message just produced to `t` (the first at or after index `from` with this payload):
 * where it landed. Fails the test after WAIT_MS. */
static const struct it_msg *
input_wait(struct it_env *env, struct it_topic *t, size_t from, const char *data, size_t len,
           const char *name)
{
    int64_t deadline = clock_mono_ms() + WAIT_MS;
    for (;;) {
        for (size_t i = from; i < it_topic_count(t); i++) {
            const struct it_msg *m = it_topic_msg(t, i);
            if (m->len == len && (len == 0 || memcmp(m->payload, data, len) == 0)) {
                return m;
            }
        }
        if (clock_mono_ms() >= deadline) {
            it_fail(env, "case %s: the input was not read back within %d ms", name, WAIT_MS);
            return NULL;
        }
        it_topic_poll(t, 50);
    }
}

/* The dead letter of the input at topic/partition/offset (full topic name); fails the test
 * after WAIT_MS. */
static const struct it_msg *
deadletter_wait(struct it_env *env, const char *topic, int32_t partition, int64_t offset,
                const char *name)
{
    struct it_topic *t = it_deadletters(env);
    int64_t deadline = clock_mono_ms() + WAIT_MS;
    it_topic_poll(t, 0);
    for (;;) {
        for (size_t i = 0; i < it_topic_count(t); i++) {
            const struct it_msg *m = it_topic_msg(t, i);
            if (m->decoded == NULL) {
                it_fail(env, "case %s: dead letter at %d:%lld does not decode: %s", name,
                        (int)m->partition, (long long)m->offset,
                        m->decode_error != NULL ? m->decode_error : "?");
                return NULL;
            }
            const struct deadletter *dl = &m->decoded->u.deadletter;
            if (key_eq(dl->source_topic, topic) && dl->source_partition == partition &&
                dl->source_offset == offset) {
                return m;
            }
        }
        if (clock_mono_ms() >= deadline) {
            it_fail(env, "case %s: no dead letter for %s:%d:%lld within %d ms", name, topic,
                    (int)partition, (long long)offset, WAIT_MS);
            return NULL;
        }
        it_topic_poll(t, 50);
    }
}

/* All dead letters read so far, after a short poll. */
static size_t
deadletter_count(struct it_env *env)
{
    struct it_topic *t = it_deadletters(env);
    it_topic_poll(t, 100);
    return it_topic_count(t);
}

static bool
redis_exists(struct it_env *env, const char *key)
{
    const char *const argv[] = {"EXISTS", key};
    redisReply *r = it_redis_cmd(env, 2, argv);
    bool found = r != NULL && r->type == REDIS_REPLY_INTEGER && r->integer > 0;
    freeReplyObject(r);
    return found;
}

/* How many keys match `pattern` (KEYS: the test DB is tiny). */
static size_t
redis_keys(struct it_env *env, const char *pattern)
{
    const char *const argv[] = {"KEYS", pattern};
    redisReply *r = it_redis_cmd(env, 2, argv);
    size_t n = r != NULL && r->type == REDIS_REPLY_ARRAY ? r->elements : 0;
    freeReplyObject(r);
    return n;
}

struct counter_probe {
    struct it_env *env;
    const char *field;
    long long want;
    long long seen;
};

static bool
counter_is(void *arg)
{
    struct counter_probe *p = arg;
    struct buf key = BUF_INIT;
    char *v = it_redis_hget(p->env, keys_coordinator(&key, it_env_key_prefix(p->env)), p->field);
    int64_t n = -1;
    p->seen = v != NULL && num_parse_i64(v, strlen(v), &n) ? n : -1;
    free(v);
    buf_release(&key);
    return p->seen == p->want;
}

/* Wait until the counter `field` of rc:coordinator equals want; fails after WAIT_MS. */
static void
counter_wait(struct it_env *env, const char *field, long long want)
{
    struct counter_probe p = {env, field, want, -1};
    if (!it_wait_until(counter_is, &p, WAIT_MS)) {
        it_fail(env, "rc:coordinator %s is %lld, want %lld", field, p.seen, want);
    }
}

static void
assert_field(struct it_env *env, const char *id, const char *field, const char *want)
{
    char *got = it_research_hget(env, id, field);
    if (!key_eq(got, want)) {
        it_fail(env, "%s: %s is \"%s\", want \"%s\"", id, field, got ? got : "(absent)",
                want ? want : "(absent)");
    }
    free(got);
}

static void
assert_alive(struct it_env *env, pid_t pid)
{
    int status = 0;
    if (it_env_wait_exit(env, pid, 0, &status) != -1) {
        it_fail(env, "the coordinator exited (%s %d)", WIFSIGNALED(status) ? "signal" : "status",
                WIFSIGNALED(status) ? WTERMSIG(status) : WEXITSTATUS(status));
    }
}

/* The whole of a file (caller frees), or NULL. */
static char *
read_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        return NULL;
    }
    struct buf b = BUF_INIT;
    char chunk[8192];
    size_t n;
    while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0) {
        buf_append(&b, chunk, n);
    }
    fclose(f);
    buf_putc(&b, '\0');
    return buf_detach(&b);
}

/* ---- committed offsets ---------------------------------------------------------------------- */

/* The coordinator's group must have committed past every input: the next offset to read in
 * each partition that received one is beyond it. */
struct commit_probe {
    rd_kafka_t *rk;
    char topics[2][128];
    int64_t want[2][MAX_PARTITIONS]; /* -1: no input there */
    char why[160];
};

static bool
committed_past(void *arg)
{
    struct commit_probe *p = arg;
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(8);
    for (int t = 0; t < 2; t++) {
        for (int32_t i = 0; i < MAX_PARTITIONS; i++) {
            if (p->want[t][i] >= 0) {
                rd_kafka_topic_partition_list_add(l, p->topics[t], i);
            }
        }
    }
    bool ok = rd_kafka_committed(p->rk, l, 2000) == RD_KAFKA_RESP_ERR_NO_ERROR;
    if (!ok) {
        snprintf(p->why, sizeof(p->why), "committed offsets could not be read");
    }
    for (int i = 0; ok && i < l->cnt; i++) {
        const rd_kafka_topic_partition_t *e = &l->elems[i];
        int t = strcmp(e->topic, p->topics[0]) == 0 ? 0 : 1;
        if (e->err != RD_KAFKA_RESP_ERR_NO_ERROR || e->offset < p->want[t][e->partition]) {
            snprintf(p->why, sizeof(p->why), "%s [%d] committed %lld, want >= %lld", e->topic,
                     (int)e->partition, (long long)e->offset, (long long)p->want[t][e->partition]);
            ok = false;
        }
    }
    rd_kafka_topic_partition_list_destroy(l);
    return ok;
}

static void
assert_committed(struct it_env *env, const struct sent *sent, size_t n)
{
    struct commit_probe p;
    for (int t = 0; t < 2; t++) {
        snprintf(p.topics[t], sizeof(p.topics[t]), "%s%s", it_env_topic_prefix(env),
                 input_topics[t]);
        for (int i = 0; i < MAX_PARTITIONS; i++) {
            p.want[t][i] = -1;
        }
    }
    for (size_t i = 0; i < n; i++) {
        if (sent[i].partition < 0 || sent[i].partition >= MAX_PARTITIONS) {
            it_fail(env, "input partition %d out of range", (int)sent[i].partition);
        }
        int64_t *w = &p.want[sent[i].topic][sent[i].partition];
        *w = sent[i].offset + 1 > *w ? sent[i].offset + 1 : *w;
    }
    snprintf(p.why, sizeof(p.why), "not checked");
    static const char *const defaults[] = {"group.id", GROUP, "enable.auto.commit", "false", NULL};
    const struct kclient_spec spec = {
        .type = RD_KAFKA_CONSUMER, .role = "offsets reader", .defaults = defaults};
    struct kclient *kc = NULL;
    struct rc_err why = RC_ERR_INIT;
    if (it_kafka_client(it_env_bootstrap(env), &spec, &kc, &why) != RC_OK) {
        it_fail(env, "kafka consumer: %s", why.msg);
        return;
    }
    p.rk = kclient_rk(kc);
    bool ok = it_wait_until(committed_past, &p, WAIT_MS);
    kclient_free(kc);
    if (!ok) {
        it_fail(env, "offsets not committed: %s", p.why);
    }
}

/* ---- the log -------------------------------------------------------------------------------- */

/* The coordinator logged a warn line "invalid input" for this input, naming the key of the
 * reason. */
static void
assert_logged(struct it_env *env, const char *log, const char *topic, const struct sent *s,
              const char *want_key, const char *name)
{
    char where[256];
    char reason[64];
    snprintf(where, sizeof(where), "topic=%s partition=%d offset=%lld ", topic, (int)s->partition,
             (long long)s->offset);
    snprintf(reason, sizeof(reason), "reason=\"%s:", want_key);
    for (const char *line = log; line != NULL && *line != '\0';) {
        const char *end = strchr(line, '\n');
        size_t len = end != NULL ? (size_t)(end - line) : strlen(line);
        char *copy = strndup(line, len);
        bool hit = copy != NULL && strstr(copy, "level=warn") != NULL &&
                   strstr(copy, "msg=\"invalid input\"") != NULL && strstr(copy, where) != NULL &&
                   strstr(copy, reason) != NULL;
        free(copy);
        if (hit) {
            return;
        }
        line = end != NULL ? end + 1 : NULL;
    }
    it_fail(env, "case %s: no warn line msg=\"invalid input\" with %s%s in coordinator.log", name,
            where, reason);
}

/* ---- one invalid input ---------------------------------------------------------------------- */

/* Produce the case's message and check its dead letter, its rejected event (when due) and that
 * nothing was remembered for its request. */
static void
run_case(struct it_env *env, const struct invalid_case *c, struct it_topic *const readers[2],
         struct sent *out)
{
    msgpack_sbuffer sb;
    msgpack_packer pk;
    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    c->build(&pk);

    int ti = topic_index(c->topic);
    struct it_topic *reader = readers[ti];
    it_topic_poll(reader, 0);
    size_t from = it_topic_count(reader);
    it_env_produce(env, c->topic, c->key, sb.data, sb.size);
    const struct it_msg *in = input_wait(env, reader, from, sb.data, sb.size, c->name);
    *out = (struct sent){ti, in->partition, in->offset};

    struct buf topic = BUF_INIT;
    buf_printf(&topic, "%s%s", it_env_topic_prefix(env), c->topic);
    const struct it_msg *m = deadletter_wait(env, topic.data, in->partition, in->offset, c->name);
    const struct deadletter *dl = &m->decoded->u.deadletter;

    /* reason: "<key>: <rule>" */
    size_t klen = strlen(c->want_key);
    if (dl->reason == NULL || strncmp(dl->reason, c->want_key, klen) != 0 ||
        dl->reason[klen] != ':' || strstr(dl->reason, c->want_rule) == NULL) {
        it_fail(env, "case %s: reason \"%s\", want \"%s: ...%s...\"", c->name,
                dl->reason ? dl->reason : "(nil)", c->want_key, c->want_rule);
    }
    size_t kept = sb.size < LIMITS_DEADLETTER_ORIGINAL ? sb.size : LIMITS_DEADLETTER_ORIGINAL;
    if (dl->original_size != sb.size || dl->original_len != kept ||
        dl->truncated != (sb.size > LIMITS_DEADLETTER_ORIGINAL) ||
        (kept > 0 && (dl->original == NULL || memcmp(dl->original, sb.data, kept) != 0))) {
        it_fail(env, "case %s: original %zu of %zu bytes (truncated %d), want the first %zu of %zu",
                c->name, dl->original_len, dl->original_size, (int)dl->truncated, kept, sb.size);
    }
    if (!key_eq(m->key, c->key)) {
        it_fail(env, "case %s: dead letter key \"%s\", want \"%s\"", c->name,
                m->key ? m->key : "(none)", c->key ? c->key : "(none)");
    }
    if (m->decoded->ts_ms <= 0) {
        it_fail(env, "case %s: dead letter without ts", c->name);
    }

    if (c->rejected != NULL) {
        const struct event *ev = it_event_wait_request(env, EVENT_REJECTED, c->rejected, WAIT_MS);
        if (!key_eq(ev->reason, "invalid") || ev->research_id != NULL || ev->message == NULL ||
            ev->has_capacity || ev->has_budget) {
            it_fail(env, "case %s: rejected event reason \"%s\", research_id %s, message %s",
                    c->name, ev->reason ? ev->reason : "(nil)",
                    ev->research_id ? ev->research_id : "(nil)",
                    ev->message ? ev->message : "(nil)");
        }
        struct buf key = BUF_INIT;
        if (redis_exists(env, keys_request(&key, it_env_key_prefix(env), c->rejected)) ||
            redis_exists(env, keys_request_figures(&key, it_env_key_prefix(env), c->rejected))) {
            it_fail(env, "case %s: the invalid request %s was remembered in %s", c->name,
                    c->rejected, key.data);
        }
        buf_release(&key);
    }
    buf_release(&topic);
    msgpack_sbuffer_destroy(&sb);
}

/* ---- tests ---------------------------------------------------------------------------------- */

/* Nothing but `rejected`/invalid events for the expected requests, and the events of `ids`. */
static void
assert_events_only(struct it_env *env, size_t want_rejected, char *const ids[], size_t n_ids)
{
    struct it_topic *t = it_events(env);
    size_t rejected = 0;
    it_topic_poll(t, 100);
    for (size_t i = 0; i < it_topic_count(t); i++) {
        const struct msg *d = it_topic_msg(t, i)->decoded;
        if (d == NULL) {
            it_fail(env, "event %zu does not decode", i);
            return;
        }
        const struct event *e = &d->u.event;
        bool ours = false;
        for (size_t k = 0; k < n_ids; k++) {
            ours = ours || key_eq(e->research_id, ids[k]);
        }
        if (ours) {
            continue;
        }
        bool expected = false;
        for (size_t k = 0; e->type == EVENT_REJECTED && k < N_CASES; k++) {
            expected = expected || key_eq(e->request_id, cases[k].rejected);
        }
        if (!expected || !key_eq(e->reason, "invalid")) {
            it_fail(env, "unexpected %s event (research %s, request %s, reason %s)",
                    event_type_name(e->type), e->research_id ? e->research_id : "-",
                    e->request_id ? e->request_id : "-", e->reason ? e->reason : "-");
        }
        rejected++;
    }
    if (rejected != want_rejected) {
        it_fail(env, "%zu rejected events, want %zu", rejected, want_rejected);
    }
}

/* Every dispatch so far is for one of `ids`. */
static void
assert_dispatches_only(struct it_env *env, char *const ids[], size_t n_ids)
{
    for (int wt = 0; wt < WORKER_TYPE_COUNT; wt++) {
        struct it_topic *t = it_dispatches(env, (enum worker_type)wt);
        it_topic_poll(t, 50);
        for (size_t i = 0; i < it_topic_count(t); i++) {
            const struct msg *d = it_topic_msg(t, i)->decoded;
            const char *rid = d == NULL                 ? NULL
                              : d->kind == MSG_DISPATCH ? d->u.dispatch.research_id
                                                        : d->u.abort.research_id;
            bool ours = false;
            for (size_t k = 0; k < n_ids; k++) {
                ours = ours || key_eq(rid, ids[k]);
            }
            if (!ours) {
                it_fail(env, "unexpected message on the %s dispatch topic (research %s)",
                        worker_type_name((enum worker_type)wt), rid ? rid : "?");
            }
        }
    }
}

static void
test_invalid_inputs_are_dead_lettered_and_change_nothing(void **state)
{
    struct it_env *env = *state;
    start_all_workers(env);
    pid_t coordinator = it_env_start_coordinator(env, coordinator_env);
    struct it_topic *readers[2] = {it_topic_open(env, "triggers"),
                                   it_topic_open(env, "completions")};
    struct sent sent[N_CASES];
    size_t want_rejected = 0;

    for (size_t i = 0; i < N_CASES; i++) {
        run_case(env, &cases[i], readers, &sent[i]);
        want_rejected += cases[i].rejected != NULL;
        assert_alive(env, coordinator);
    }

    /* One dead letter each, counted, committed, logged; nothing else happened. */
    if (deadletter_count(env) != N_CASES) {
        it_fail(env, "%zu dead letters, want %zu", deadletter_count(env), N_CASES);
    }
    counter_wait(env, "invalid_inputs", (long long)N_CASES);
    assert_int_equal(it_redis_zcard(env, "rc:active"), 0);
    assert_int_equal(it_redis_zcard(env, "rc:finished"), 0);
    assert_int_equal(redis_keys(env, "rc:research:*"), 0);
    assert_int_equal(redis_keys(env, "rc:request:*"), 0);
    assert_int_equal(it_event_count(env, EVENT_ACCEPTED, NULL), 0);
    assert_events_only(env, want_rejected, NULL, 0);
    assert_dispatches_only(env, NULL, 0);
    assert_committed(env, sent, N_CASES);
    char log_path[4096];
    snprintf(log_path, sizeof(log_path), "%s/coordinator.log", it_env_dir(env));
    char *log = read_file(log_path);
    if (log == NULL) {
        it_fail(env, "cannot read %s", log_path);
    }
    for (size_t i = 0; i < N_CASES; i++) {
        char topic[128];
        snprintf(topic, sizeof(topic), "%s%s", it_env_topic_prefix(env), cases[i].topic);
        assert_logged(env, log, topic, &sent[i], cases[i].want_key, cases[i].name);
    }
    free(log);
    assert_alive(env, coordinator);

    /* Valid researches still run to completion: one reusing the request_id of an invalid
     * trigger (never remembered), one at every limit (sizes in bytes: the brief is 8192
     * two-byte characters) and one of exactly 1 MiB. */
    char id_128[LIMITS_ID_MAX + 1];
    memset(id_128, 'r', LIMITS_ID_MAX);
    id_128[LIMITS_ID_MAX] = '\0';
    struct buf brief = BUF_INIT;
    for (int i = 0; i < LIMITS_BRIEF_MAX / 2; i++) {
        buf_puts(&brief, "\xc3\xa9");
    }
    char model[LIMITS_STRING_MAX + 1];
    memset(model, 'm', LIMITS_STRING_MAX);
    model[LIMITS_STRING_MAX] = '\0';
    struct trigger again = {.request_id = "req-no-brief", .brief = "momentum on BTC 1h bars"};
    struct trigger limits = {.request_id = id_128, .brief = brief.data, .model = model};
    char *ids[3];
    ids[0] = trigger_ok(env, &again);
    ids[1] = trigger_ok(env, &limits);
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    put_exact_trigger(&sb, "req-1mib", LIMITS_MESSAGE_MAX);
    it_env_produce(env, "triggers", "req-1mib", sb.data, sb.size);
    msgpack_sbuffer_destroy(&sb);
    const struct event *ev = it_event_wait_request(env, EVENT_ACCEPTED, "req-1mib", WAIT_MS);
    ids[2] = strdup(ev->research_id);
    for (size_t i = 0; i < 3; i++) {
        it_research_wait(env, ids[i], "phase", "completed", WAIT_MS);
    }
    assert_field(env, ids[1], "request_id", id_128);
    assert_field(env, ids[1], "brief", brief.data);
    assert_field(env, ids[1], "model", model);
    buf_release(&brief);

    /* Still only the first dead letters, and the counter did not move. */
    if (deadletter_count(env) != N_CASES) {
        it_fail(env, "%zu dead letters after the valid researches, want %zu", deadletter_count(env),
                N_CASES);
    }
    counter_wait(env, "invalid_inputs", (long long)N_CASES);
    assert_events_only(env, want_rejected, ids, 3);
    assert_dispatches_only(env, ids, 3);
    assert_int_equal(it_redis_zcard(env, "rc:active"), 0);
    assert_int_equal(it_redis_zcard(env, "rc:finished"), 3);
    assert_alive(env, coordinator);
    for (size_t i = 0; i < 3; i++) {
        free(ids[i]);
    }
}

/* HGETALL of a research as a reply (caller frees). */
static redisReply *
research_all(struct it_env *env, const char *id)
{
    struct buf key = BUF_INIT;
    const char *const argv[] = {"HGETALL", keys_research(&key, it_env_key_prefix(env), id)};
    redisReply *r = it_redis_cmd(env, 2, argv);
    buf_release(&key);
    return r;
}

/* The same fields with the same values, in any order. */
static bool
same_hash(const redisReply *a, const redisReply *b)
{
    if (a->type != REDIS_REPLY_ARRAY || b->type != REDIS_REPLY_ARRAY ||
        a->elements != b->elements || a->elements == 0) {
        return false;
    }
    for (size_t i = 0; i + 1 < a->elements; i += 2) {
        bool found = false;
        for (size_t j = 0; j + 1 < b->elements && !found; j += 2) {
            found = strcmp(a->element[i]->str, b->element[j]->str) == 0 &&
                    strcmp(a->element[i + 1]->str, b->element[j + 1]->str) == 0;
        }
        if (!found) {
            return false;
        }
    }
    return true;
}

/* Produce a completion of `d` that is invalid only by its status ("maybe"), keyed by its
 * research, and wait for its dead letter. */
static void
send_marker(struct it_env *env, struct it_topic *reader, const char *research_id,
            const struct dispatch *d)
{
    msgpack_sbuffer sb;
    msgpack_packer pk;
    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    put_completion(&pk, "completion", research_id, d->dispatch_id, d->worker_id, "maybe",
                   RESULT_MAP);
    it_topic_poll(reader, 0);
    size_t from = it_topic_count(reader);
    it_env_produce(env, "completions", research_id, sb.data, sb.size);
    const struct it_msg *in = input_wait(env, reader, from, sb.data, sb.size, "marker");
    struct buf topic = BUF_INIT;
    buf_printf(&topic, "%scompletions", it_env_topic_prefix(env));
    const struct it_msg *m = deadletter_wait(env, topic.data, in->partition, in->offset, "marker");
    if (strncmp(m->decoded->u.deadletter.reason, "status:", 7) != 0) {
        it_fail(env, "marker dead letter reason \"%s\"", m->decoded->u.deadletter.reason);
    }
    buf_release(&topic);
    msgpack_sbuffer_destroy(&sb);
}

static void
test_invalid_stale_completions_change_nothing(void **state)
{
    struct it_env *env = *state;
    const char *const slow[] = {"--duration-ms", "60000", NULL};
    it_env_start_workers(env, "design", 1, NULL, slow);
    pid_t coordinator = it_env_start_coordinator(env, NULL);
    struct trigger t = {.request_id = "req-stale", .brief = "b"};
    char *id = trigger_ok(env, &t);
    const struct dispatch *d = it_dispatch_wait(env, WORKER_DESIGN, id, 1, WAIT_MS);
    it_research_wait(env, id, "dispatch_id", d->dispatch_id, WAIT_MS);
    it_research_wait(env, id, "child_status", "dispatched", WAIT_MS);
    it_research_wait(env, id, "picked_up_at", NULL, WAIT_MS); /* settled: no write pending */
    redisReply *before = research_all(env, id);

    /* Valid envelopes that answer nothing current: an unknown dispatch (completed, then
     * failed), the right dispatch from the wrong worker, and an unknown research. */
    struct kv good[] = {{"strategy_name", value_str("from_a_ghost")}};
    struct completion stale[] = {
        {.dispatch_id = "d-unknown",
         .research_id = id,
         .worker_id = d->worker_id,
         .status = COMPLETION_COMPLETED,
         .result = good,
         .n_result = 1},
        {.dispatch_id = "d-unknown-2",
         .research_id = id,
         .worker_id = d->worker_id,
         .status = COMPLETION_FAILED,
         .error = "late failure"},
        {.dispatch_id = d->dispatch_id,
         .research_id = id,
         .worker_id = "g9-design-9",
         .status = COMPLETION_COMPLETED,
         .result = good,
         .n_result = 1},
        {.dispatch_id = d->dispatch_id,
         .research_id = "rs-unknown-1",
         .worker_id = d->worker_id,
         .status = COMPLETION_COMPLETED,
         .result = good,
         .n_result = 1},
    };
    for (size_t i = 0; i < N_OF(stale); i++) {
        it_send_completion(env, &stale[i]);
    }
    counter_wait(env, "stale_completions", 4);
    /* Markers behind them on their partitions: had a stale completion been dead-lettered, its
     * dead letter would be read before the marker's. A marker answers the current dispatch,
     * invalid only by its status, so it must not touch the research either. */
    struct it_topic *reader = it_topic_open(env, "completions");
    send_marker(env, reader, id, d);
    send_marker(env, reader, "rs-unknown-1", d);
    if (deadletter_count(env) != 2) {
        it_fail(env, "%zu dead letters, want only the 2 markers", deadletter_count(env));
    }
    counter_wait(env, "invalid_inputs", 2);
    counter_wait(env, "stale_completions", 4);

    redisReply *after = research_all(env, id);
    if (!same_hash(before, after)) {
        it_fail(env, "research %s changed after stale completions", id);
    }
    freeReplyObject(before);
    freeReplyObject(after);
    assert_int_equal(it_event_count(env, EVENT_FAILED, NULL), 0);
    assert_int_equal(it_event_count(env, EVENT_PHASE_STARTED, id), 1);
    assert_int_equal(it_redis_zcard(env, "rc:active"), 1);
    assert_int_equal(redis_keys(env, "rc:research:*"), 1);

    /* The current dispatch's answer still counts. */
    struct kv mine[] = {{"strategy_name", value_str("the_real_one")}};
    struct completion real = {.dispatch_id = d->dispatch_id,
                              .research_id = id,
                              .worker_id = d->worker_id,
                              .status = COMPLETION_COMPLETED,
                              .result = mine,
                              .n_result = 1};
    it_send_completion(env, &real);
    it_research_wait(env, id, "child_status", "completed", WAIT_MS);
    assert_field(env, id, "design.strategy_name", "the_real_one");
    assert_field(env, id, "status", "running");
    counter_wait(env, "stale_completions", 4);
    assert_alive(env, coordinator);
    free(id);
}

static void
test_invalid_bad_result_fails_its_research_alone(void **state)
{
    struct it_env *env = *state;
    const char *const bad[] = {"--duration-ms", "30", "--bad-result", NULL};
    it_env_start_workers(env, "design", 1, "a-", bad);
    it_env_start_workers(env, "training", 1, NULL, fast);
    it_env_start_workers(env, "backtest", 1, NULL, fast);
    it_env_start_workers(env, "assessment", 1, NULL, fast);
    pid_t coordinator = it_env_start_coordinator(env, NULL);
    struct trigger t1 = {.request_id = "req-bad", .brief = "b"};
    char *r1 = trigger_ok(env, &t1);
    const struct dispatch *d1 = it_dispatch_wait(env, WORKER_DESIGN, r1, 1, WAIT_MS);
    assert_string_equal(d1->worker_id, "a-design-1");

    /* A good design worker, never dispatched to, is the least recently dispatched: the second
     * research gets it even when the bad one is free again. */
    it_env_start_workers(env, "design", 1, "b-", fast);
    struct trigger t2 = {.request_id = "req-good", .brief = "b"};
    char *r2 = trigger_ok(env, &t2);

    const struct event *failed = it_event_wait(env, EVENT_FAILED, r1, WAIT_MS);
    assert_int_equal(failed->phase, PHASE_DESIGNING);
    assert_string_equal(failed->error, "bad result: strategy_name: required");
    it_research_wait(env, r1, "phase", "failed", WAIT_MS);
    assert_field(env, r1, "status", "failed");
    assert_field(env, r1, "last_phase", "designing");
    assert_field(env, r1, "error", "bad result: strategy_name: required");
    assert_field(env, r1, "design.strategy_name", NULL);

    /* A late duplicate answer to the failed research's dispatch is stale and changes nothing. */
    struct kv late[] = {{"strategy_name", value_str("too_late")}};
    struct completion dup = {.dispatch_id = d1->dispatch_id,
                             .research_id = r1,
                             .worker_id = d1->worker_id,
                             .status = COMPLETION_COMPLETED,
                             .result = late,
                             .n_result = 1};
    it_send_completion(env, &dup);
    counter_wait(env, "stale_completions", 1);
    assert_field(env, r1, "status", "failed");
    assert_field(env, r1, "error", "bad result: strategy_name: required");
    assert_field(env, r1, "design.strategy_name", NULL);

    it_research_wait(env, r2, "phase", "completed", WAIT_MS);
    assert_string_equal(it_dispatch_wait(env, WORKER_DESIGN, r2, 1, WAIT_MS)->worker_id,
                        "b-design-1");
    assert_int_equal(it_event_count(env, EVENT_FAILED, NULL), 1);
    assert_int_equal(it_event_count(env, EVENT_COMPLETED, r1), 0);
    /* A bad result is the research's problem, not an invalid input. */
    assert_int_equal(deadletter_count(env), 0);
    counter_wait(env, "invalid_inputs", 0);
    assert_int_equal(it_redis_zcard(env, "rc:finished"), 2);
    assert_alive(env, coordinator);
    free(r1);
    free(r2);
}

struct delivery {
    int count;
    rd_kafka_resp_err_t err;
};

static void
delivered(void *owner, const rd_kafka_message_t *rkm)
{
    struct delivery *d = owner;
    d->count++;
    d->err = rkm->err;
}

/* Produce `data` with a key of any bytes (it_env_produce takes a C string) and wait for its
 * delivery; fails the test on any error. */
static void
produce_binary_key(struct it_env *env, const char *topic_suffix, const char *key, size_t key_len,
                   const char *data, size_t len)
{
    char topic[128];
    struct delivery d = {0, RD_KAFKA_RESP_ERR_NO_ERROR};
    snprintf(topic, sizeof(topic), "%s%s", it_env_topic_prefix(env), topic_suffix);
    const struct kclient_spec spec = {
        .type = RD_KAFKA_PRODUCER, .role = "test producer", .owner = &d, .delivered = delivered};
    struct kclient *kc = NULL;
    struct rc_err why = RC_ERR_INIT;
    if (it_kafka_client(it_env_bootstrap(env), &spec, &kc, &why) != RC_OK) {
        it_fail(env, "kafka producer: %s", why.msg);
        return;
    }
    rd_kafka_t *rk = kclient_rk(kc);
    rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, topic, NULL);
    char *copy = strndup(data, len); /* rd_kafka_produce takes a non-const payload */
    int rc = rkt != NULL && copy != NULL
                 ? rd_kafka_produce(rkt, RD_KAFKA_PARTITION_UA, RD_KAFKA_MSG_F_COPY, copy, len, key,
                                    key_len, NULL)
                 : -1;
    free(copy);
    rd_kafka_resp_err_t ferr = rc == 0 ? rd_kafka_flush(rk, WAIT_MS) : RD_KAFKA_RESP_ERR__FAIL;
    if (rkt != NULL) {
        rd_kafka_topic_destroy(rkt);
    }
    kclient_free(kc);
    if (ferr != RD_KAFKA_RESP_ERR_NO_ERROR || d.count != 1 || d.err != RD_KAFKA_RESP_ERR_NO_ERROR) {
        it_fail(env, "produce to %s: %s", topic,
                rd_kafka_err2str(ferr != RD_KAFKA_RESP_ERR_NO_ERROR ? ferr : d.err));
    }
}

/* A dead letter is keyed by the input's key (§3), and Kafka keys are bytes: a key with a NUL
 * byte must come back whole (keys travel as pointer and length, never as C strings). */
static void
test_invalid_dead_letter_keeps_a_binary_key(void **state)
{
    struct it_env *env = *state;
    static const char key[] = {'k', '\0', 'e', 'y', '\xff'};
    static const char payload[] = "\xc1 garbage with a binary key";
    it_env_start_coordinator(env, NULL);
    struct it_topic *reader = it_topic_open(env, "triggers");
    produce_binary_key(env, "triggers", key, sizeof(key), payload, sizeof(payload) - 1);
    const struct it_msg *in =
        input_wait(env, reader, 0, payload, sizeof(payload) - 1, "binary key");
    if (in->key_len != sizeof(key) || memcmp(in->key, key, sizeof(key)) != 0) {
        it_fail(env, "the broker did not keep the input's key (%zu bytes)", in->key_len);
    }
    char topic[128];
    snprintf(topic, sizeof(topic), "%striggers", it_env_topic_prefix(env));
    const struct it_msg *m = deadletter_wait(env, topic, in->partition, in->offset, "binary key");
    if (m->key == NULL || m->key_len != sizeof(key) || memcmp(m->key, key, sizeof(key)) != 0) {
        it_fail(env, "dead letter key is %zu bytes, want the input's %zu (with a NUL byte)",
                m->key != NULL ? m->key_len : 0, sizeof(key));
    }
}

/* Reasons may hold quotes (type: "foo" is not ...): the "invalid input" log line escapes them,
 * so it stays valid logfmt (STYLE §6). */
static void
test_invalid_log_line_escapes_the_reason(void **state)
{
    struct it_env *env = *state;
    it_env_start_coordinator(env, NULL);
    struct it_topic *reader = it_topic_open(env, "triggers");
    msgpack_sbuffer sb;
    msgpack_packer pk;
    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    b_type_foo(&pk);
    it_env_produce(env, "triggers", "foo", sb.data, sb.size);
    const struct it_msg *in = input_wait(env, reader, 0, sb.data, sb.size, "log");
    msgpack_sbuffer_destroy(&sb);
    char topic[128];
    snprintf(topic, sizeof(topic), "%striggers", it_env_topic_prefix(env));
    const struct it_msg *m = deadletter_wait(env, topic, in->partition, in->offset, "log");
    /* reason="<the dead letter's reason, with \" and \\ escaped>" (a reason is < 256 bytes) */
    char want[600];
    size_t n = (size_t)snprintf(want, sizeof(want), "reason=\"");
    for (const char *p = m->decoded->u.deadletter.reason; *p != '\0' && n + 4 < sizeof(want); p++) {
        if (*p == '"' || *p == '\\') {
            want[n++] = '\\';
        }
        want[n++] = *p;
    }
    want[n++] = '"';
    want[n] = '\0';
    char log_path[4096];
    snprintf(log_path, sizeof(log_path), "%s/coordinator.log", it_env_dir(env));
    char *log = read_file(log_path);
    bool found = log != NULL && strstr(log, want) != NULL;
    free(log);
    if (!found) {
        it_fail(env, "coordinator.log has no line with %s", want);
    }
}

struct exit_probe {
    struct it_env *env;
    pid_t pid;
};

/* A dead letter arrived, or the process exited. */
static bool
deadletter_or_exit(void *arg)
{
    struct exit_probe *p = arg;
    struct it_topic *t = it_deadletters(p->env);
    it_topic_poll(t, 0);
    return it_topic_count(t) > 0 || it_env_wait_exit(p->env, p->pid, 0, NULL) == 0;
}

/* Kafka keys may be long and the dead letter is keyed by the input's key (§3): an invalid
 * input with a 64 KiB key must not crash the coordinator (the outbox frame once held at most
 * 65535 key bytes and asserted it). */
static void
test_invalid_input_with_a_64k_key_does_not_crash(void **state)
{
    struct it_env *env = *state;
    pid_t coordinator = it_env_start_coordinator(env, NULL);
    struct it_topic *reader = it_topic_open(env, "triggers");
    size_t key_len = 64 * 1024;
    char *key = malloc(key_len + 1);
    assert_non_null(key);
    memset(key, 'k', key_len);
    key[key_len] = '\0';
    static const char payload[] = "\xc1 garbage with a 64 KiB key";
    it_env_produce(env, "triggers", key, payload, sizeof(payload) - 1);
    const struct it_msg *in = input_wait(env, reader, 0, payload, sizeof(payload) - 1, "64k key");
    struct exit_probe probe = {env, coordinator};
    it_wait_until(deadletter_or_exit, &probe, WAIT_MS); /* fail fast when it crashed */
    assert_alive(env, coordinator);
    char topic[128];
    snprintf(topic, sizeof(topic), "%striggers", it_env_topic_prefix(env));
    const struct it_msg *m = deadletter_wait(env, topic, in->partition, in->offset, "64k key");
    /* Contract §3: cut to its first 1 KiB, so that a dead letter is always publishable. */
    if (m->key == NULL || m->key_len != LIMITS_DEADLETTER_KEY ||
        memcmp(m->key, key, LIMITS_DEADLETTER_KEY) != 0) {
        it_fail(env, "dead letter key is %zu bytes, want its first %d", m->key ? m->key_len : 0,
                LIMITS_DEADLETTER_KEY);
    }
    free(key);
    counter_wait(env, "invalid_inputs", 1);
    assert_alive(env, coordinator);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_invalid_inputs_are_dead_lettered_and_change_nothing,
                                        it_setup, it_teardown),
        cmocka_unit_test_setup_teardown(test_invalid_stale_completions_change_nothing, it_setup,
                                        it_teardown),
        cmocka_unit_test_setup_teardown(test_invalid_bad_result_fails_its_research_alone, it_setup,
                                        it_teardown),
        cmocka_unit_test_setup_teardown(test_invalid_dead_letter_keeps_a_binary_key, it_setup,
                                        it_teardown),
        cmocka_unit_test_setup_teardown(test_invalid_log_line_escapes_the_reason, it_setup,
                                        it_teardown),
        cmocka_unit_test_setup_teardown(test_invalid_input_with_a_64k_key_does_not_crash, it_setup,
                                        it_teardown),
    };
    return IT_RUN_GROUP("invalid", tests);
}
