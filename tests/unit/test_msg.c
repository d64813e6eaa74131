/* SPDX-License-Identifier: MIT
 * test_msg: the message decoders' rules (contract §3, §4), one table case per rule, built with
 * msgpack's own packer; round-trips of every kind and event type through msg_encode; dead
 * letter truncation; and the request_id peek. */
#include "tests/support/test.h"

#include <msgpack.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "proto/msg.h"
#include "proto/result.h"

/* ---- building inputs: a message is a list of key/value items ---- */

enum tv_kind {
    TV_END = 0,
    TV_STR,    /* s */
    TV_RAW,    /* a string of i bytes at s (may hold NUL or bad UTF-8) */
    TV_REPEAT, /* a string of i bytes, each s[0] */
    TV_INT,    /* i */
    TV_UINT,   /* u */
    TV_FLOAT,  /* f */
    TV_BOOL,   /* i != 0 */
    TV_NIL,
    TV_BIN,   /* i bytes */
    TV_ARRAY, /* [1, 2] */
    TV_FN,    /* fn packs the value */
    TV_OMIT,  /* an override: drop the base item */
};

struct tv {
    const char *key;
    enum tv_kind kind;
    const char *s;
    int64_t i;
    uint64_t u;
    double f;
    void (*fn)(msgpack_packer *pk);
};

/* clang-format off: brace-initializer macros */
#define S(k, v)                                                                                    \
    {                                                                                              \
        .key = k, .kind = TV_STR, .s = v                                                           \
    }
#define RAW(k, v, n)                                                                               \
    {                                                                                              \
        .key = k, .kind = TV_RAW, .s = v, .i = n                                                   \
    }
#define REP(k, c, n)                                                                               \
    {                                                                                              \
        .key = k, .kind = TV_REPEAT, .s = c, .i = n                                                \
    }
#define I(k, v)                                                                                    \
    {                                                                                              \
        .key = k, .kind = TV_INT, .i = v                                                           \
    }
#define U(k, v)                                                                                    \
    {                                                                                              \
        .key = k, .kind = TV_UINT, .u = v                                                          \
    }
#define FL(k, v)                                                                                   \
    {                                                                                              \
        .key = k, .kind = TV_FLOAT, .f = v                                                         \
    }
#define B(k, v)                                                                                    \
    {                                                                                              \
        .key = k, .kind = TV_BOOL, .i = v                                                          \
    }
#define NIL(k)                                                                                     \
    {                                                                                              \
        .key = k, .kind = TV_NIL                                                                   \
    }
#define BIN(k, n)                                                                                  \
    {                                                                                              \
        .key = k, .kind = TV_BIN, .i = n                                                           \
    }
#define ARR(k)                                                                                     \
    {                                                                                              \
        .key = k, .kind = TV_ARRAY                                                                 \
    }
#define FN(k, f)                                                                                   \
    {                                                                                              \
        .key = k, .kind = TV_FN, .fn = f                                                           \
    }
#define OMIT(k)                                                                                    \
    {                                                                                              \
        .key = k, .kind = TV_OMIT                                                                  \
    }
#define END                                                                                        \
    {                                                                                              \
        .key = NULL                                                                                \
    }
/* clang-format on */

static void
pk_cstr(msgpack_packer *pk, const char *s)
{
    size_t len = strlen(s);
    msgpack_pack_str(pk, len);
    msgpack_pack_str_body(pk, s, len);
}

static void
pk_repeat(msgpack_packer *pk, char c, size_t n)
{
    char *s = malloc(n + 1);
    assert_non_null(s);
    memset(s, c, n);
    msgpack_pack_str(pk, n);
    msgpack_pack_str_body(pk, s, n);
    free(s);
}

static void
pk_value(msgpack_packer *pk, const struct tv *t)
{
    switch (t->kind) {
    case TV_STR:
        pk_cstr(pk, t->s);
        break;
    case TV_RAW:
        msgpack_pack_str(pk, (size_t)t->i);
        msgpack_pack_str_body(pk, t->s, (size_t)t->i);
        break;
    case TV_REPEAT:
        pk_repeat(pk, t->s[0], (size_t)t->i);
        break;
    case TV_INT:
        msgpack_pack_int64(pk, t->i);
        break;
    case TV_UINT:
        msgpack_pack_uint64(pk, t->u);
        break;
    case TV_FLOAT:
        msgpack_pack_double(pk, t->f);
        break;
    case TV_BOOL:
        if (t->i != 0) {
            msgpack_pack_true(pk);
        } else {
            msgpack_pack_false(pk);
        }
        break;
    case TV_NIL:
        msgpack_pack_nil(pk);
        break;
    case TV_BIN: {
        size_t n = (size_t)t->i;
        char *b = malloc(n + 1);
        assert_non_null(b);
        for (size_t k = 0; k < n; k++) {
            b[k] = (char)(k * 7);
        }
        msgpack_pack_bin(pk, n);
        msgpack_pack_bin_body(pk, b, n);
        free(b);
        break;
    }
    case TV_ARRAY:
        msgpack_pack_array(pk, 2);
        msgpack_pack_int(pk, 1);
        msgpack_pack_int(pk, 2);
        break;
    case TV_FN:
        t->fn(pk);
        break;
    case TV_END:
    case TV_OMIT:
        fail_msg("pk_value: not a value");
    }
}

static const struct tv *
tv_find(const struct tv *list, const char *key)
{
    for (size_t i = 0; list != NULL && list[i].key != NULL; i++) {
        if (strcmp(list[i].key, key) == 0) {
            return &list[i];
        }
    }
    return NULL;
}

/* The base items, each replaced or dropped by an override of the same key, then the overrides
 * the base does not have. */
static void
build(const struct tv *base, const struct tv *over, msgpack_sbuffer *sb)
{
    msgpack_packer pk;
    size_t n = 0;
    msgpack_sbuffer_init(sb);
    msgpack_packer_init(&pk, sb, msgpack_sbuffer_write);
    for (size_t i = 0; base[i].key != NULL; i++) {
        const struct tv *o = tv_find(over, base[i].key);
        n += o == NULL || o->kind != TV_OMIT;
    }
    for (size_t i = 0; over[i].key != NULL; i++) {
        n += tv_find(base, over[i].key) == NULL && over[i].kind != TV_OMIT;
    }
    msgpack_pack_map(&pk, n);
    for (size_t i = 0; base[i].key != NULL; i++) {
        const struct tv *o = tv_find(over, base[i].key);
        if (o != NULL && o->kind == TV_OMIT) {
            continue;
        }
        pk_cstr(&pk, base[i].key);
        pk_value(&pk, o != NULL ? o : &base[i]);
    }
    for (size_t i = 0; over[i].key != NULL; i++) {
        if (tv_find(base, over[i].key) == NULL && over[i].kind != TV_OMIT) {
            pk_cstr(&pk, over[i].key);
            pk_value(&pk, &over[i]);
        }
    }
}

/* ---- value packers for TV_FN ---- */

static void
pack_design_result(msgpack_packer *pk)
{
    msgpack_pack_map(pk, 3);
    pk_cstr(pk, "strategy_name");
    pk_cstr(pk, "momentum");
    pk_cstr(pk, "input_tokens");
    msgpack_pack_int(pk, 1200);
    pk_cstr(pk, "cost_usd");
    msgpack_pack_double(pk, 0.25);
}

/* Every shape a result value may take: kept as VALUE_* or VALUE_OTHER, never invalid. */
static void
pack_odd_result(msgpack_packer *pk)
{
    msgpack_pack_map(pk, 12);
    pk_cstr(pk, "accuracy");
    msgpack_pack_array(pk, 1);
    msgpack_pack_int(pk, 1);
    pk_cstr(pk, "nested");
    msgpack_pack_map(pk, 1);
    pk_cstr(pk, "a");
    msgpack_pack_int(pk, 1);
    pk_cstr(pk, "blob");
    msgpack_pack_bin(pk, 2);
    msgpack_pack_bin_body(pk, "\x00\x01", 2);
    pk_cstr(pk, "long");
    pk_repeat(pk, 'x', LIMITS_STRING_MAX + 1);
    pk_cstr(pk, "bad_utf8");
    msgpack_pack_str(pk, 2);
    msgpack_pack_str_body(pk, "\xc3\x28", 2);
    msgpack_pack_int(pk, 7); /* a non-string key: dropped */
    msgpack_pack_int(pk, 8);
    pk_cstr(pk, "final_loss");
    msgpack_pack_int(pk, 1); /* first of two: kept */
    pk_cstr(pk, "final_loss");
    msgpack_pack_int(pk, 2); /* repeated key: dropped */
    pk_cstr(pk, "empty");
    pk_cstr(pk, "");
    pk_cstr(pk, "big");
    msgpack_pack_uint64(pk, UINT64_MAX);
    pk_cstr(pk, "neg");
    msgpack_pack_int64(pk, -5);
    pk_cstr(pk, "f32");
    msgpack_pack_float(pk, 0.5f);
}

static void
pack_result_n(msgpack_packer *pk, size_t n)
{
    msgpack_pack_map(pk, n);
    for (size_t i = 0; i < n; i++) {
        char key[24];
        snprintf(key, sizeof(key), "k%zu", i);
        pk_cstr(pk, key);
        msgpack_pack_int(pk, (int)i);
    }
}

static void
pack_result_256(msgpack_packer *pk)
{
    pack_result_n(pk, 256);
}

static void
pack_result_257(msgpack_packer *pk)
{
    pack_result_n(pk, 257);
}

static void
pack_design_params(msgpack_packer *pk)
{
    msgpack_pack_map(pk, 2);
    pk_cstr(pk, "brief");
    pk_cstr(pk, "find alpha");
    pk_cstr(pk, "model");
    msgpack_pack_nil(pk);
}

static void
pack_assessment_params(msgpack_packer *pk)
{
    msgpack_pack_map(pk, 5);
    pk_cstr(pk, "strategy_name");
    pk_cstr(pk, "momentum");
    pk_cstr(pk, "model");
    pk_cstr(pk, "claude-opus-4-5");
    pk_cstr(pk, "training");
    msgpack_pack_map(pk, 2);
    pk_cstr(pk, "accuracy");
    msgpack_pack_double(pk, 0.61);
    pk_cstr(pk, "output_format");
    pk_cstr(pk, "classification");
    pk_cstr(pk, "backtest");
    msgpack_pack_nil(pk);
    pk_cstr(pk, "gate_rejection_reason");
    msgpack_pack_nil(pk);
}

/* Options as upstream would send them: nested maps and arrays of every JSON kind. */
static void
pack_options(msgpack_packer *pk)
{
    msgpack_pack_map(pk, 3);
    pk_cstr(pk, "symbol");
    pk_cstr(pk, "BTCUSD");
    pk_cstr(pk, "range");
    msgpack_pack_array(pk, 2);
    pk_cstr(pk, "2024-01-01");
    msgpack_pack_double(pk, 2.5);
    pk_cstr(pk, "deep");
    msgpack_pack_map(pk, 1);
    pk_cstr(pk, "x");
    msgpack_pack_array(pk, 1);
    msgpack_pack_true(pk);
}

static void
pack_options_bin(msgpack_packer *pk)
{
    msgpack_pack_map(pk, 1);
    pk_cstr(pk, "blob");
    msgpack_pack_bin(pk, 1);
    msgpack_pack_bin_body(pk, "x", 1);
}

static void
pack_options_int_key(msgpack_packer *pk)
{
    msgpack_pack_map(pk, 1);
    msgpack_pack_int(pk, 1);
    msgpack_pack_int(pk, 2);
}

static void
pack_options_large(msgpack_packer *pk)
{
    msgpack_pack_map(pk, 5);
    for (int i = 0; i < 5; i++) {
        char key[2] = {(char)('a' + i), '\0'};
        pk_cstr(pk, key);
        pk_repeat(pk, 'o', LIMITS_STRING_MAX);
    }
}

static void
pack_params_with_options(msgpack_packer *pk)
{
    msgpack_pack_map(pk, 2);
    pk_cstr(pk, "brief");
    pk_cstr(pk, "find alpha");
    pk_cstr(pk, "options");
    pack_options(pk);
}

static void
pack_params_options_bin(msgpack_packer *pk)
{
    msgpack_pack_map(pk, 1);
    pk_cstr(pk, "options");
    pack_options_bin(pk);
}

static void
pack_params_too_deep(msgpack_packer *pk)
{
    msgpack_pack_map(pk, 1);
    pk_cstr(pk, "training");
    msgpack_pack_map(pk, 1);
    pk_cstr(pk, "inner");
    msgpack_pack_map(pk, 0);
}

static void
pack_params_array(msgpack_packer *pk)
{
    msgpack_pack_map(pk, 1);
    pk_cstr(pk, "x");
    msgpack_pack_array(pk, 0);
}

static void
pack_params_nested_array(msgpack_packer *pk)
{
    msgpack_pack_map(pk, 1);
    pk_cstr(pk, "training");
    msgpack_pack_map(pk, 1);
    pk_cstr(pk, "x");
    msgpack_pack_array(pk, 0);
}

static void
pack_params_int_key(msgpack_packer *pk)
{
    msgpack_pack_map(pk, 1);
    msgpack_pack_int(pk, 1);
    msgpack_pack_int(pk, 2);
}

static void
pack_params_empty_key(msgpack_packer *pk)
{
    msgpack_pack_map(pk, 1);
    pk_cstr(pk, "");
    msgpack_pack_int(pk, 2);
}

static void
pack_params_dup(msgpack_packer *pk)
{
    msgpack_pack_map(pk, 2);
    pk_cstr(pk, "brief");
    pk_cstr(pk, "a");
    pk_cstr(pk, "brief");
    pk_cstr(pk, "b");
}

static void
pack_params_long_brief(msgpack_packer *pk)
{
    msgpack_pack_map(pk, 1);
    pk_cstr(pk, "brief");
    pk_repeat(pk, 'b', LIMITS_BRIEF_MAX);
}

static void
pack_params_long_model(msgpack_packer *pk)
{
    msgpack_pack_map(pk, 1);
    pk_cstr(pk, "model");
    pk_repeat(pk, 'm', LIMITS_STRING_MAX + 1);
}

static void
pack_params_bad_text(msgpack_packer *pk)
{
    msgpack_pack_map(pk, 1);
    pk_cstr(pk, "model");
    msgpack_pack_str(pk, 1);
    msgpack_pack_str_body(pk, "\xff", 1);
}

static void
pack_params_257(msgpack_packer *pk)
{
    pack_result_n(pk, 257);
}

static void
pack_params_nested_257(msgpack_packer *pk)
{
    msgpack_pack_map(pk, 1);
    pk_cstr(pk, "training");
    pack_result_n(pk, 257);
}

static void
pack_empty_map(msgpack_packer *pk)
{
    msgpack_pack_map(pk, 0);
}

static void
pack_junk_map(msgpack_packer *pk)
{
    msgpack_pack_map(pk, 1);
    msgpack_pack_array(pk, 1); /* keys inside values are not the message's keys */
    msgpack_pack_nil(pk);
    msgpack_pack_bin(pk, 0);
}

/* ---- base messages ---- */

static const struct tv trigger_ok[] = {
    I("v", 1),
    S("type", "trigger"),
    I("ts", 1700000000000),
    S("request_id", "req-1"),
    S("brief", "find alpha"),
    S("model", "claude-sonnet-4-5"),
    B("bypass_gates", 0),
    END,
};

static const struct tv resume_ok[] = {
    I("v", 1),
    S("type", "resume"),
    I("ts", 5),
    S("research_id", "rs-1"),
    S("request_id", "req-3"),
    S("reason", "worker fixed"),
    B("force", 0),
    END,
};

static const struct tv cancel_ok[] = {
    I("v", 1),
    S("type", "cancel"),
    I("ts", 5),
    S("research_id", "rs-1"),
    S("request_id", "req-2"),
    S("reason", "user asked"),
    END,
};

static const struct tv completion_ok[] = {
    I("v", 1),
    S("type", "completion"),
    I("ts", 5),
    S("dispatch_id", "d-1"),
    S("research_id", "rs-1"),
    S("worker_id", "w-1"),
    S("status", "completed"),
    FN("result", pack_design_result),
    END,
};

static const struct tv dispatch_ok[] = {
    I("v", 1),
    S("type", "dispatch"),
    I("ts", 5),
    S("dispatch_id", "d-1"),
    S("research_id", "rs-1"),
    S("worker_id", "w-1"),
    S("phase", "designing"),
    S("worker_type", "design"),
    I("attempt", 1),
    FN("params", pack_design_params),
    END,
};

static const struct tv abort_ok[] = {
    I("v", 1),
    S("type", "abort"),
    S("dispatch_id", "d-1"),
    S("research_id", "rs-1"),
    S("worker_id", "w-1"),
    S("reason", "cancelled"),
    END,
};

static const struct tv accepted_ok[] = {
    I("v", 1),
    S("type", "accepted"),
    I("ts", 9),
    S("research_id", "rs-1"),
    S("request_id", "req-1"),
    END,
};

static const struct tv rejected_ok[] = {
    I("v", 1),
    S("type", "rejected"),
    S("request_id", "req-1"),
    S("reason", "at_capacity"),
    S("message", "3 of 3 slots busy"),
    I("active_count", 3),
    I("limit", 3),
    END,
};

static const struct tv phase_started_ok[] = {
    I("v", 1),
    S("type", "phase_started"),
    S("research_id", "rs-1"),
    S("phase", "training"),
    S("dispatch_id", "d-2"),
    I("attempt", 1),
    END,
};

static const struct tv gate_ok[] = {
    I("v", 1),
    S("type", "gate"),
    S("research_id", "rs-1"),
    S("gate", "training"),
    B("passed", 1),
    S("reason", "bypassed"),
    END,
};

static const struct tv redispatched_ok[] = {
    I("v", 1),
    S("type", "redispatched"),
    S("research_id", "rs-1"),
    S("phase", "backtesting"),
    S("old_dispatch_id", "d-3"),
    S("dispatch_id", "d-4"),
    I("attempt", 2),
    S("reason", "worker_dead"),
    END,
};

static const struct tv completed_ok[] = {
    I("v", 1),
    S("type", "completed"),
    S("research_id", "rs-1"),
    S("strategy_name", "momentum"),
    S("verdict", "promising"),
    NIL("gate_rejection_reason"),
    END,
};

static const struct tv failed_ok[] = {
    I("v", 1),
    S("type", "failed"),
    S("research_id", "rs-1"),
    S("phase", "assessing"),
    S("error", "bad result: verdict: required"),
    END,
};

static const struct tv resumed_ok[] = {
    I("v", 1),
    S("type", "resumed"),
    S("research_id", "rs-1"),
    S("phase", "training"),
    S("request_id", "req-9"),
    END,
};

static const struct tv resume_rejected_ok[] = {
    I("v", 1),
    S("type", "resume_rejected"),
    S("research_id", "rs-404"),
    S("reason", "not_found"),
    S("request_id", "req-9"),
    END,
};

static const struct tv cancelled_ok[] = {
    I("v", 1),
    S("type", "cancelled"),
    S("research_id", "rs-1"),
    S("phase", "pending"),
    NIL("dispatch_id"),
    S("request_id", "req-9"),
    END,
};

static const struct tv cancel_rejected_ok[] = {
    I("v", 1),
    S("type", "cancel_rejected"),
    S("research_id", "rs-404"),
    S("reason", "not_found"),
    S("request_id", "req-9"),
    END,
};

static const struct tv deadletter_ok[] = {
    I("v", 1),
    S("type", "deadletter"),
    I("ts", 77),
    S("reason", "brief: required"),
    S("source_topic", "research.triggers"),
    I("source_partition", 3),
    I("source_offset", 42),
    BIN("original", 10),
    I("original_size", 10),
    B("truncated", 0),
    END,
};

/* ---- table runner ---- */

/* The class an error must carry in err.code, from its rule as the messages word it: the
 * decoder sets the code where it fails, and this checks the two agree on every case. */
static enum msg_invalid
expected_class(const char *msg)
{
    const char *rule = strstr(msg, ": ");
    if (strncmp(msg, "message: ", 9) == 0) {
        return strstr(msg, "larger than") != NULL ? MSG_INVALID_TOO_LARGE : MSG_INVALID_MALFORMED;
    }
    rule = rule != NULL ? rule + 2 : msg;
    if (strstr(rule, "longer than") != NULL || strstr(rule, "more than") != NULL) {
        return MSG_INVALID_TOO_LARGE;
    }
    if (strncmp(rule, "required", 8) == 0) {
        return MSG_INVALID_MISSING_KEY;
    }
    if (strncmp(rule, "must be a", 9) == 0 || strncmp(rule, "must be binary", 14) == 0 ||
        strstr(rule, "not valid UTF-8") != NULL) {
        return MSG_INVALID_WRONG_TYPE;
    }
    return MSG_INVALID_BAD_VALUE;
}

struct msg_case {
    const char *name;
    enum msg_topic topic;
    const struct tv *base;
    struct tv over[4];
    const char *want; /* the error message, or NULL when the input is valid */
};

static void
run_cases(const struct msg_case *cases, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        const struct msg_case *c = &cases[i];
        msgpack_sbuffer sb;
        struct msg m = MSG_INIT;
        struct rc_err err = RC_ERR_INIT;
        build(c->base, c->over, &sb);
        m.ts_ms = -12345; /* must stay untouched on failure */
        enum rc_rc rc = msg_decode(c->topic, sb.data, sb.size, &m, &err);
        msgpack_sbuffer_destroy(&sb);
        if (c->want == NULL) {
            if (rc != RC_OK) {
                fail_msg("case %s: want success, got %s", c->name, err.msg);
            }
            msg_release(&m);
            continue;
        }
        if (rc != RC_EPROTO || strcmp(err.msg, c->want) != 0) {
            msg_release(&m);
            fail_msg("case %s: want \"%s\", got rc %d \"%s\"", c->name, c->want, (int)rc, err.msg);
        }
        if (err.code != (int)expected_class(c->want)) {
            fail_msg("case %s: want class %d, got %d", c->name, (int)expected_class(c->want),
                     err.code);
        }
        if (m.ts_ms != -12345 || m.mem != NULL) {
            fail_msg("case %s: out written on failure", c->name);
        }
    }
}

#define TRG MSG_TOPIC_TRIGGERS
#define CMP MSG_TOPIC_COMPLETIONS
#define DSP MSG_TOPIC_DISPATCH
#define EVT MSG_TOPIC_EVENTS
#define DLQ MSG_TOPIC_DEADLETTER

static void
test_msg_common_keys(void **state)
{
    (void)state;
    static const struct msg_case cases[] = {
        {"valid", TRG, trigger_ok, {END}, NULL},
        {"v absent", TRG, trigger_ok, {OMIT("v")}, NULL},
        {"v nil", TRG, trigger_ok, {NIL("v")}, NULL},
        {"v 2", TRG, trigger_ok, {I("v", 2)}, "v: unsupported schema version 2 (want 1)"},
        {"v 0", TRG, trigger_ok, {I("v", 0)}, "v: unsupported schema version 0 (want 1)"},
        {"v -1", TRG, trigger_ok, {I("v", -1)}, "v: unsupported schema version -1 (want 1)"},
        {"v string", TRG, trigger_ok, {S("v", "1")}, "v: must be an integer"},
        {"v float", TRG, trigger_ok, {FL("v", 1.0)}, "v: must be an integer"},
        {"type absent", TRG, trigger_ok, {OMIT("type")}, "type: required"},
        {"type empty", TRG, trigger_ok, {S("type", "")}, "type: required"},
        {"type nil", TRG, trigger_ok, {NIL("type")}, "type: required"},
        {"type int", TRG, trigger_ok, {I("type", 1)}, "type: must be a string"},
        {"type unknown",
         TRG,
         trigger_ok,
         {S("type", "foo")},
         "type: \"foo\" is not a message type of this topic"},
        {"type of another topic",
         TRG,
         trigger_ok,
         {S("type", "completion")},
         "type: \"completion\" is not a message type of this topic"},
        {"type binary",
         TRG,
         trigger_ok,
         {RAW("type", "\xff\x01", 2)},
         "type: not a message type of this topic"},
        {"type case",
         TRG,
         trigger_ok,
         {S("type", "Trigger")},
         "type: \"Trigger\" is not a message type of this topic"},
        {"ts absent", TRG, trigger_ok, {OMIT("ts")}, NULL},
        {"ts nil", TRG, trigger_ok, {NIL("ts")}, NULL},
        {"ts negative", TRG, trigger_ok, {I("ts", -5)}, NULL},
        {"ts float", TRG, trigger_ok, {FL("ts", 1.5)}, "ts: must be an integer"},
        {"ts string", TRG, trigger_ok, {S("ts", "5")}, "ts: must be an integer"},
        {"ts too big", TRG, trigger_ok, {U("ts", UINT64_MAX)}, "ts: out of range"},
        {"unknown key", TRG, trigger_ok, {S("color", "blue")}, NULL},
        {"unknown key, odd value", TRG, trigger_ok, {FN("extra", pack_junk_map)}, NULL},
        {"unknown key, array", TRG, trigger_ok, {ARR("extra")}, NULL},
        {"unknown key, bad text", TRG, trigger_ok, {RAW("extra", "\xff", 1)}, NULL},
    };
    run_cases(cases, N_OF(cases));
}

static void
test_msg_trigger_rules(void **state)
{
    (void)state;
    static const struct msg_case cases[] = {
        {"options", TRG, trigger_ok, {FN("options", pack_options)}, NULL},
        {"options empty", TRG, trigger_ok, {FN("options", pack_empty_map)}, NULL},
        {"options nil", TRG, trigger_ok, {NIL("options")}, NULL},
        {"options array", TRG, trigger_ok, {ARR("options")}, "options: must be a map"},
        {"options string", TRG, trigger_ok, {S("options", "{}")}, "options: must be a map"},
        {"options bin inside",
         TRG,
         trigger_ok,
         {FN("options", pack_options_bin)},
         "options: at blob: binary values have no JSON form"},
        {"options int key",
         TRG,
         trigger_ok,
         {FN("options", pack_options_int_key)},
         "options: at the top: map keys must be UTF-8 strings"},
        {"options too large",
         TRG,
         trigger_ok,
         {FN("options", pack_options_large)},
         "options: longer than 16384 bytes encoded"},
        {"request_id absent", TRG, trigger_ok, {OMIT("request_id")}, "request_id: required"},
        {"request_id empty", TRG, trigger_ok, {S("request_id", "")}, "request_id: required"},
        {"request_id nil", TRG, trigger_ok, {NIL("request_id")}, "request_id: required"},
        {"request_id int", TRG, trigger_ok, {I("request_id", 7)}, "request_id: must be a string"},
        {"request_id bin", TRG, trigger_ok, {BIN("request_id", 3)}, "request_id: must be a string"},
        {"request_id space",
         TRG,
         trigger_ok,
         {S("request_id", "a b")},
         "request_id: must be 1-128 bytes of [A-Za-z0-9._:-]"},
        {"request_id slash",
         TRG,
         trigger_ok,
         {S("request_id", "a/b")},
         "request_id: must be 1-128 bytes of [A-Za-z0-9._:-]"},
        {"request_id utf8",
         TRG,
         trigger_ok,
         {S("request_id", "caf\xc3\xa9")},
         "request_id: must be 1-128 bytes of [A-Za-z0-9._:-]"},
        {"request_id all chars", TRG, trigger_ok, {S("request_id", "AZaz09._:-")}, NULL},
        {"request_id 128", TRG, trigger_ok, {REP("request_id", "r", 128)}, NULL},
        {"request_id 129",
         TRG,
         trigger_ok,
         {REP("request_id", "r", 129)},
         "request_id: must be 1-128 bytes of [A-Za-z0-9._:-]"},
        {"brief absent", TRG, trigger_ok, {OMIT("brief")}, "brief: required"},
        {"brief int", TRG, trigger_ok, {I("brief", 1)}, "brief: must be a string"},
        {"brief 16384", TRG, trigger_ok, {REP("brief", "b", 16384)}, NULL},
        {"brief 16385",
         TRG,
         trigger_ok,
         {REP("brief", "b", 16385)},
         "brief: longer than 16384 bytes"},
        {"brief bad utf8",
         TRG,
         trigger_ok,
         {RAW("brief", "ok\xc3\x28", 4)},
         "brief: not valid UTF-8"},
        {"brief overlong",
         TRG,
         trigger_ok,
         {RAW("brief", "\xc0\xaf", 2)},
         "brief: not valid UTF-8"},
        {"brief surrogate",
         TRG,
         trigger_ok,
         {RAW("brief", "\xed\xa0\x80", 3)},
         "brief: not valid UTF-8"},
        {"brief cut sequence",
         TRG,
         trigger_ok,
         {RAW("brief", "ab\xe6\x97", 4)},
         "brief: not valid UTF-8"},
        {"brief NUL", TRG, trigger_ok, {RAW("brief", "a\0b", 3)}, "brief: contains a NUL byte"},
        {"brief multibyte",
         TRG,
         trigger_ok,
         {S("brief", "h\xc3\xa9llo \xe6\x97\xa5\xe6\x9c\xac \xf0\x9f\x8e\x89")},
         NULL},
        {"model 4096", TRG, trigger_ok, {REP("model", "m", 4096)}, NULL},
        {"model 4097", TRG, trigger_ok, {REP("model", "m", 4097)}, "model: longer than 4096 bytes"},
        {"model empty is absent", TRG, trigger_ok, {S("model", "")}, NULL},
        {"model int", TRG, trigger_ok, {I("model", 1)}, "model: must be a string"},
        {"model bad utf8", TRG, trigger_ok, {RAW("model", "\xff", 1)}, "model: not valid UTF-8"},
        {"strategy bin", TRG, trigger_ok, {BIN("strategy", 4)}, "strategy: must be a string"},
        {"strategy_path bad",
         TRG,
         trigger_ok,
         {RAW("strategy_path", "\x80", 1)},
         "strategy_path: not valid UTF-8"},
        {"bypass_gates int",
         TRG,
         trigger_ok,
         {I("bypass_gates", 1)},
         "bypass_gates: must be a boolean"},
        {"bypass_gates string",
         TRG,
         trigger_ok,
         {S("bypass_gates", "true")},
         "bypass_gates: must be a boolean"},
        {"bypass_gates nil", TRG, trigger_ok, {NIL("bypass_gates")}, NULL},
        {"force int", TRG, trigger_ok, {I("force", 0)}, "force: must be a boolean"},
        {"force true", TRG, trigger_ok, {B("force", 1)}, NULL},
        {"cancel valid", TRG, cancel_ok, {END}, NULL},
        {"cancel research_id absent",
         TRG,
         cancel_ok,
         {OMIT("research_id")},
         "research_id: required"},
        {"cancel research_id bad",
         TRG,
         cancel_ok,
         {S("research_id", "rs 1")},
         "research_id: must be 1-128 bytes of [A-Za-z0-9._:-]"},
        {"cancel request_id absent", TRG, cancel_ok, {OMIT("request_id")}, NULL},
        {"cancel request_id bad",
         TRG,
         cancel_ok,
         {S("request_id", "x*")},
         "request_id: must be 1-128 bytes of [A-Za-z0-9._:-]"},
        {"cancel reason long",
         TRG,
         cancel_ok,
         {REP("reason", "r", 4097)},
         "reason: longer than 4096 bytes"},
        {"cancel reason absent", TRG, cancel_ok, {OMIT("reason")}, NULL},
        {"resume valid", TRG, resume_ok, {END}, NULL},
        {"resume research_id absent",
         TRG,
         resume_ok,
         {OMIT("research_id")},
         "research_id: required"},
        {"resume research_id bad",
         TRG,
         resume_ok,
         {S("research_id", "rs 1")},
         "research_id: must be 1-128 bytes of [A-Za-z0-9._:-]"},
        {"resume research_id not a string",
         TRG,
         resume_ok,
         {I("research_id", 7)},
         "research_id: must be a string"},
        {"resume request_id absent", TRG, resume_ok, {OMIT("request_id")}, NULL},
        {"resume request_id bad",
         TRG,
         resume_ok,
         {S("request_id", "x*")},
         "request_id: must be 1-128 bytes of [A-Za-z0-9._:-]"},
        {"resume reason long",
         TRG,
         resume_ok,
         {REP("reason", "r", 4097)},
         "reason: longer than 4096 bytes"},
        {"resume reason absent", TRG, resume_ok, {OMIT("reason")}, NULL},
        {"resume force true", TRG, resume_ok, {B("force", 1)}, NULL},
        {"resume force string", TRG, resume_ok, {S("force", "yes")}, "force: must be a boolean"},
        {"resume on completions",
         MSG_TOPIC_COMPLETIONS,
         resume_ok,
         {END},
         "type: \"resume\" is not a message type of this topic"},
    };
    run_cases(cases, N_OF(cases));
}

static void
test_msg_completion_rules(void **state)
{
    (void)state;
    static const struct msg_case cases[] = {
        {"valid", CMP, completion_ok, {END}, NULL},
        {"on the triggers topic",
         TRG,
         completion_ok,
         {END},
         "type: \"completion\" is not a message type of this topic"},
        {"trigger on completions",
         CMP,
         trigger_ok,
         {END},
         "type: \"trigger\" is not a message type of this topic"},
        {"failed without result",
         CMP,
         completion_ok,
         {S("status", "failed"), OMIT("result"), S("error", "boom")},
         NULL},
        {"failed with result", CMP, completion_ok, {S("status", "failed")}, NULL},
        {"failed with nil result",
         CMP,
         completion_ok,
         {S("status", "failed"), NIL("result")},
         NULL},
        {"failed with array result",
         CMP,
         completion_ok,
         {S("status", "failed"), ARR("result")},
         "result: must be a map"},
        {"status maybe",
         CMP,
         completion_ok,
         {S("status", "maybe")},
         "status: must be \"completed\", \"failed\" or \"released\""},
        {"released without result", CMP, completion_ok, {S("status", "released"), OMIT("result")},
         NULL},
        {"status int", CMP, completion_ok, {I("status", 1)}, "status: must be a string"},
        {"status absent", CMP, completion_ok, {OMIT("status")}, "status: required"},
        {"completed without result", CMP, completion_ok, {OMIT("result")}, "result: required"},
        {"completed nil result", CMP, completion_ok, {NIL("result")}, "result: required"},
        {"completed empty result", CMP, completion_ok, {FN("result", pack_empty_map)}, NULL},
        {"result array", CMP, completion_ok, {ARR("result")}, "result: must be a map"},
        {"result string", CMP, completion_ok, {S("result", "{}")}, "result: must be a map"},
        {"result odd values", CMP, completion_ok, {FN("result", pack_odd_result)}, NULL},
        {"result 256 entries", CMP, completion_ok, {FN("result", pack_result_256)}, NULL},
        {"result 257 entries",
         CMP,
         completion_ok,
         {FN("result", pack_result_257)},
         "result: more than 256 entries"},
        {"dispatch_id absent", CMP, completion_ok, {OMIT("dispatch_id")}, "dispatch_id: required"},
        {"research_id bad",
         CMP,
         completion_ok,
         {S("research_id", "\xc3\xa9")},
         "research_id: must be 1-128 bytes of [A-Za-z0-9._:-]"},
        {"worker_id absent", CMP, completion_ok, {OMIT("worker_id")}, "worker_id: required"},
        {"error long",
         CMP,
         completion_ok,
         {REP("error", "e", 4097)},
         "error: longer than 4096 bytes"},
    };
    run_cases(cases, N_OF(cases));
}

static void
test_msg_dispatch_rules(void **state)
{
    (void)state;
    static const struct msg_case cases[] = {
        {"valid", DSP, dispatch_ok, {END}, NULL},
        {"training",
         DSP,
         dispatch_ok,
         {S("phase", "training"), S("worker_type", "training")},
         NULL},
        {"backtesting",
         DSP,
         dispatch_ok,
         {S("phase", "backtesting"), S("worker_type", "backtest"), I("attempt", 3)},
         NULL},
        {"assessing with maps",
         DSP,
         dispatch_ok,
         {S("phase", "assessing"), S("worker_type", "assessment"),
          FN("params", pack_assessment_params)},
         NULL},
        {"options any depth", DSP, dispatch_ok, {FN("params", pack_params_with_options)}, NULL},
        {"options bin",
         DSP,
         dispatch_ok,
         {FN("params", pack_params_options_bin)},
         "params.options: at blob: binary values have no JSON form"},
        {"phase pending",
         DSP,
         dispatch_ok,
         {S("phase", "pending")},
         "phase: \"pending\" is not a worked phase"},
        {"phase completed",
         DSP,
         dispatch_ok,
         {S("phase", "completed")},
         "phase: \"completed\" is not a worked phase"},
        {"phase unknown", DSP, dispatch_ok, {S("phase", "nope")}, "phase: not a phase name"},
        {"phase absent", DSP, dispatch_ok, {OMIT("phase")}, "phase: required"},
        {"worker_type mismatch",
         DSP,
         dispatch_ok,
         {S("worker_type", "training")},
         "worker_type: must be \"design\" for phase designing"},
        {"worker_type unknown",
         DSP,
         dispatch_ok,
         {S("worker_type", "x")},
         "worker_type: not a worker type"},
        {"attempt 0", DSP, dispatch_ok, {I("attempt", 0)}, "attempt: must be >= 1"},
        {"attempt float", DSP, dispatch_ok, {FL("attempt", 1.0)}, "attempt: must be an integer"},
        {"attempt absent", DSP, dispatch_ok, {OMIT("attempt")}, "attempt: required"},
        {"params absent", DSP, dispatch_ok, {OMIT("params")}, "params: required"},
        {"params empty", DSP, dispatch_ok, {FN("params", pack_empty_map)}, NULL},
        {"params array", DSP, dispatch_ok, {ARR("params")}, "params: must be a map"},
        {"params too deep",
         DSP,
         dispatch_ok,
         {FN("params", pack_params_too_deep)},
         "params.training.inner: nested deeper than one map"},
        {"params array value",
         DSP,
         dispatch_ok,
         {FN("params", pack_params_array)},
         "params.x: must be a scalar or a map"},
        {"params nested array",
         DSP,
         dispatch_ok,
         {FN("params", pack_params_nested_array)},
         "params.training.x: must be a scalar or a map"},
        {"params int key",
         DSP,
         dispatch_ok,
         {FN("params", pack_params_int_key)},
         "params: map key is not a string"},
        {"params empty key",
         DSP,
         dispatch_ok,
         {FN("params", pack_params_empty_key)},
         "params: keys must be 1-4096 bytes of UTF-8"},
        {"params duplicate",
         DSP,
         dispatch_ok,
         {FN("params", pack_params_dup)},
         "params: duplicate key \"brief\""},
        {"params brief 16 KiB", DSP, dispatch_ok, {FN("params", pack_params_long_brief)}, NULL},
        {"params model 4097",
         DSP,
         dispatch_ok,
         {FN("params", pack_params_long_model)},
         "params.model: longer than 4096 bytes"},
        {"params bad text",
         DSP,
         dispatch_ok,
         {FN("params", pack_params_bad_text)},
         "params.model: not valid UTF-8"},
        {"params 257",
         DSP,
         dispatch_ok,
         {FN("params", pack_params_257)},
         "params: more than 256 entries"},
        {"params nested 257",
         DSP,
         dispatch_ok,
         {FN("params", pack_params_nested_257)},
         "params.training: more than 256 entries"},
        {"abort valid", DSP, abort_ok, {END}, NULL},
        {"abort reason absent", DSP, abort_ok, {OMIT("reason")}, NULL},
        {"abort worker_id absent", DSP, abort_ok, {OMIT("worker_id")}, "worker_id: required"},
        {"abort reason int", DSP, abort_ok, {I("reason", 1)}, "reason: must be a string"},
        {"abort on completions",
         CMP,
         abort_ok,
         {END},
         "type: \"abort\" is not a message type of this topic"},
    };
    run_cases(cases, N_OF(cases));
}

static void
test_msg_event_rules(void **state)
{
    (void)state;
    static const struct msg_case cases[] = {
        {"accepted", EVT, accepted_ok, {END}, NULL},
        {"accepted without research_id",
         EVT,
         accepted_ok,
         {OMIT("research_id")},
         "research_id: required"},
        {"rejected capacity", EVT, rejected_ok, {END}, NULL},
        {"rejected with research_id", EVT, rejected_ok, {S("research_id", "rs-1")}, NULL},
        {"rejected budget",
         EVT,
         rejected_ok,
         {OMIT("active_count"), OMIT("limit"), FL("remaining", -0.5), I("daily_limit", 20)},
         NULL},
        {"rejected invalid",
         EVT,
         rejected_ok,
         {S("reason", "invalid"), OMIT("active_count"), OMIT("limit")},
         NULL},
        {"rejected half capacity",
         EVT,
         rejected_ok,
         {OMIT("limit")},
         "limit: required with active_count"},
        {"rejected half budget",
         EVT,
         rejected_ok,
         {FL("daily_limit", 20)},
         "remaining: required with daily_limit"},
        {"rejected remaining string",
         EVT,
         rejected_ok,
         {S("remaining", "1")},
         "remaining: must be a number"},
        {"rejected active_count float",
         EVT,
         rejected_ok,
         {FL("active_count", 3)},
         "active_count: must be an integer"},
        {"rejected no request_id", EVT, rejected_ok, {OMIT("request_id")}, "request_id: required"},
        {"rejected no reason", EVT, rejected_ok, {OMIT("reason")}, "reason: required"},
        {"phase_started", EVT, phase_started_ok, {END}, NULL},
        {"phase_started bad phase",
         EVT,
         phase_started_ok,
         {S("phase", "bogus")},
         "phase: not a phase name"},
        {"phase_started attempt 0",
         EVT,
         phase_started_ok,
         {I("attempt", 0)},
         "attempt: must be >= 1"},
        {"phase_started no dispatch_id",
         EVT,
         phase_started_ok,
         {OMIT("dispatch_id")},
         "dispatch_id: required"},
        {"gate", EVT, gate_ok, {END}, NULL},
        {"gate backtest", EVT, gate_ok, {S("gate", "backtest"), B("passed", 0)}, NULL},
        {"gate design",
         EVT,
         gate_ok,
         {S("gate", "design")},
         "gate: must be \"training\" or \"backtest\""},
        {"gate passed int", EVT, gate_ok, {I("passed", 1)}, "passed: must be a boolean"},
        {"gate passed absent", EVT, gate_ok, {OMIT("passed")}, "passed: required"},
        {"redispatched", EVT, redispatched_ok, {END}, NULL},
        {"redispatched no old",
         EVT,
         redispatched_ok,
         {OMIT("old_dispatch_id")},
         "old_dispatch_id: required"},
        {"completed", EVT, completed_ok, {END}, NULL},
        {"completed reason long",
         EVT,
         completed_ok,
         {REP("gate_rejection_reason", "g", 4097)},
         "gate_rejection_reason: longer than 4096 bytes"},
        {"failed", EVT, failed_ok, {END}, NULL},
        {"failed no phase", EVT, failed_ok, {OMIT("phase")}, "phase: required"},
        {"cancelled", EVT, cancelled_ok, {END}, NULL},
        {"cancelled no research_id",
         EVT,
         cancelled_ok,
         {OMIT("research_id")},
         "research_id: required"},
        {"resumed", EVT, resumed_ok, {END}, NULL},
        {"resumed no phase", EVT, resumed_ok, {OMIT("phase")}, "phase: required"},
        {"resumed no request_id", EVT, resumed_ok, {OMIT("request_id")}, NULL},
        {"resume_rejected", EVT, resume_rejected_ok, {END}, NULL},
        {"resume_rejected no reason",
         EVT,
         resume_rejected_ok,
         {OMIT("reason")},
         "reason: required"},
        {"cancel_rejected", EVT, cancel_rejected_ok, {END}, NULL},
        {"cancel_rejected no research_id", EVT, cancel_rejected_ok, {OMIT("research_id")}, NULL},
        {"cancel_rejected no reason",
         EVT,
         cancel_rejected_ok,
         {OMIT("reason")},
         "reason: required"},
        {"trigger on events",
         EVT,
         trigger_ok,
         {END},
         "type: \"trigger\" is not a message type of this topic"},
    };
    run_cases(cases, N_OF(cases));
}

static void
test_msg_deadletter_rules(void **state)
{
    (void)state;
    static const struct msg_case cases[] = {
        {"valid", DLQ, deadletter_ok, {END}, NULL},
        {"empty original", DLQ, deadletter_ok, {BIN("original", 0), I("original_size", 0)}, NULL},
        {"truncated",
         DLQ,
         deadletter_ok,
         {BIN("original", 65536), I("original_size", 2000000), B("truncated", 1)},
         NULL},
        {"original too big",
         DLQ,
         deadletter_ok,
         {BIN("original", 65537), I("original_size", 65537)},
         "original: longer than 65536 bytes"},
        {"original string",
         DLQ,
         deadletter_ok,
         {S("original", "abc")},
         "original: must be binary (bin)"},
        {"original absent", DLQ, deadletter_ok, {OMIT("original")}, "original: required"},
        {"original_size small",
         DLQ,
         deadletter_ok,
         {I("original_size", 9)},
         "original_size: smaller than original"},
        {"original_size negative",
         DLQ,
         deadletter_ok,
         {I("original_size", -1)},
         "original_size: must be >= 0"},
        {"source_partition big",
         DLQ,
         deadletter_ok,
         {I("source_partition", 2147483648)},
         "source_partition: out of range"},
        {"source_partition -1", DLQ, deadletter_ok, {I("source_partition", -1)}, NULL},
        {"source_offset absent",
         DLQ,
         deadletter_ok,
         {OMIT("source_offset")},
         "source_offset: required"},
        {"truncated int", DLQ, deadletter_ok, {I("truncated", 0)}, "truncated: must be a boolean"},
        {"reason absent", DLQ, deadletter_ok, {OMIT("reason")}, "reason: required"},
        {"source_topic int",
         DLQ,
         deadletter_ok,
         {I("source_topic", 1)},
         "source_topic: must be a string"},
    };
    run_cases(cases, N_OF(cases));
}

/* ---- whole-message rules on raw bytes ---- */

static void
expect_error(const char *name, enum msg_topic topic, const char *data, size_t len, const char *want)
{
    struct msg m = MSG_INIT;
    struct rc_err err = RC_ERR_INIT;
    enum rc_rc rc = msg_decode(topic, data, len, &m, &err);
    if (rc != RC_EPROTO || (want != NULL && strcmp(err.msg, want) != 0)) {
        msg_release(&m);
        fail_msg("case %s: want \"%s\", got rc %d \"%s\"", name, want != NULL ? want : "any",
                 (int)rc, err.msg);
    }
    if (m.mem != NULL) {
        fail_msg("case %s: out written on failure", name);
    }
}

static void
test_msg_rejects_non_maps(void **state)
{
    (void)state;
    static const struct {
        const char *name;
        const char *data;
        size_t len;
        const char *want;
    } cases[] = {
        {"empty", "", 0, "message: empty"},
        {"array", "\x91\xa1x", 3, "message: not a msgpack map"},
        {"int", "\x05", 1, "message: not a msgpack map"},
        {"string",
         "\xa3"
         "abc",
         4, "message: not a msgpack map"},
        {"nil", "\xc0", 1, "message: not a msgpack map"},
        {"never-used byte", "\xc1", 1, "message: not a msgpack map"},
        {"json", "{\"type\":\"trigger\"}", 18, "message: not a msgpack map"},
        {"map16 cut", "\xde\x00", 2, "message: truncated or malformed msgpack"},
        {"map32 huge count", "\xdf\xff\xff\xff\xff\xa1x", 7,
         "message: truncated or malformed msgpack"},
        {"map with str32 huge", "\x81\xa1k\xdb\xff\xff\xff\xff", 8,
         "message: truncated or malformed msgpack"},
        {"map with array32 huge", "\x81\xa1k\xdd\x7f\xff\xff\xff\x00", 9,
         "message: truncated or malformed msgpack"},
        {"never-used byte inside", "\x81\xa1k\xc1", 4, "message: truncated or malformed msgpack"},
        {"two maps", "\x80\x80", 2, "message: trailing bytes after the map"},
        {"map then junk", "\x80\xff", 2, "message: trailing bytes after the map"},
        {"int key", "\x81\x01\x02", 3, "message: map key is not a string"},
        {"nil key", "\x81\xc0\x02", 3, "message: map key is not a string"},
        {"bin key type", "\x81\xc4\x04type\xa7trigger", 15, "message: map key is not a string"},
        {"empty map", "\x80", 1, "type: required"},
    };
    for (size_t i = 0; i < N_OF(cases); i++) {
        expect_error(cases[i].name, MSG_TOPIC_TRIGGERS, cases[i].data, cases[i].len, cases[i].want);
    }
}

static void
test_msg_rejects_every_truncation(void **state)
{
    (void)state;
    msgpack_sbuffer sb;
    static const struct tv none[] = {END};
    build(completion_ok, none, &sb);
    for (size_t len = 0; len < sb.size; len++) {
        char name[32];
        snprintf(name, sizeof(name), "prefix %zu", len);
        expect_error(name, MSG_TOPIC_COMPLETIONS, sb.data, len, NULL);
    }
    msgpack_sbuffer_destroy(&sb);
}

static void
test_msg_rejects_duplicate_keys(void **state)
{
    (void)state;
    static const struct tv dup_type[] = {S("type", "trigger"), S("request_id", "r"),
                                         S("brief", "b"), S("type", "trigger"), END};
    static const struct tv dup_v[] = {
        I("v", 1), S("type", "trigger"), S("request_id", "r"), S("brief", "b"), I("v", 1), END};
    static const struct tv dup_known[] = {S("type", "trigger"), S("request_id", "r"),
                                          S("brief", "b"), S("request_id", "r"), END};
    static const struct tv dup_nil[] = {S("type", "trigger"), S("request_id", "r"), S("brief", "b"),
                                        NIL("model"),         S("model", "m"),      END};
    static const struct tv dup_unknown[] = {
        S("type", "trigger"), S("request_id", "r"), S("brief", "b"), I("x", 1), I("x", 2), END};
    static const struct {
        const char *name;
        const struct tv *items;
        const char *want;
    } cases[] = {
        {"type twice", dup_type, "type: duplicate key"},
        {"v twice", dup_v, "v: duplicate key"},
        {"request_id twice", dup_known, "request_id: duplicate key"},
        {"model nil then set", dup_nil, "model: duplicate key"},
        {"unknown twice", dup_unknown, NULL},
    };
    for (size_t i = 0; i < N_OF(cases); i++) {
        /* build() keys items by name, so pack these by hand */
        msgpack_sbuffer sb;
        msgpack_packer pk;
        size_t n = 0;
        msgpack_sbuffer_init(&sb);
        msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
        while (cases[i].items[n].key != NULL) {
            n++;
        }
        msgpack_pack_map(&pk, n);
        for (size_t k = 0; k < n; k++) {
            pk_cstr(&pk, cases[i].items[k].key);
            pk_value(&pk, &cases[i].items[k]);
        }
        if (cases[i].want != NULL) {
            expect_error(cases[i].name, MSG_TOPIC_TRIGGERS, sb.data, sb.size, cases[i].want);
        } else {
            struct msg m = MSG_INIT;
            struct rc_err err = RC_ERR_INIT;
            if (msg_decode(MSG_TOPIC_TRIGGERS, sb.data, sb.size, &m, &err) != RC_OK) {
                fail_msg("case %s: %s", cases[i].name, err.msg);
            }
            msg_release(&m);
        }
        msgpack_sbuffer_destroy(&sb);
    }
}

static void
test_msg_rejects_over_one_mib(void **state)
{
    (void)state;
    struct tv over[] = {REP("padding", "p", LIMITS_MESSAGE_MAX), END};
    msgpack_sbuffer sb;
    build(trigger_ok, over, &sb);
    assert_true(sb.size > LIMITS_MESSAGE_MAX);
    expect_error("1 MiB padding", MSG_TOPIC_TRIGGERS, sb.data, sb.size,
                 "message: larger than 1048576 bytes");
    msgpack_sbuffer_destroy(&sb);

    /* just under the limit is fine */
    over[0].i = LIMITS_MESSAGE_MAX - 1024;
    build(trigger_ok, over, &sb);
    assert_true(sb.size <= LIMITS_MESSAGE_MAX);
    struct msg m = MSG_INIT;
    assert_int_equal(msg_decode(MSG_TOPIC_TRIGGERS, sb.data, sb.size, &m, NULL), RC_OK);
    msg_release(&m);
    msgpack_sbuffer_destroy(&sb);
}

static void
test_msg_rejects_deep_nesting(void **state)
{
    (void)state;
    /* {"type": "trigger", ..., "x": [[[[...]]]]} nested 40 deep */
    msgpack_sbuffer sb;
    msgpack_packer pk;
    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    msgpack_pack_map(&pk, 4);
    pk_cstr(&pk, "type");
    pk_cstr(&pk, "trigger");
    pk_cstr(&pk, "request_id");
    pk_cstr(&pk, "r");
    pk_cstr(&pk, "brief");
    pk_cstr(&pk, "b");
    pk_cstr(&pk, "x");
    for (int i = 0; i < 40; i++) {
        msgpack_pack_array(&pk, 1);
    }
    msgpack_pack_nil(&pk);
    expect_error("40 deep", MSG_TOPIC_TRIGGERS, sb.data, sb.size,
                 "message: nested deeper than 16 levels");
    msgpack_sbuffer_destroy(&sb);
}

static void
test_msg_garbage_never_decodes_wrongly(void **state)
{
    (void)state;
    /* a fixed pseudo-random stream: every input must be refused or decode cleanly */
    uint32_t x = 12345;
    char data[64];
    for (int round = 0; round < 20000; round++) {
        size_t len = 1 + round % sizeof(data);
        for (size_t i = 0; i < len; i++) {
            x = x * 1103515245u + 12345u;
            data[i] = (char)(x >> 16);
        }
        if (round % 2 == 0) {
            data[0] = (char)(0x80 | (data[0] & 0x0f)); /* a fixmap header */
        }
        for (int topic = MSG_TOPIC_TRIGGERS; topic <= MSG_TOPIC_DEADLETTER; topic++) {
            struct msg m = MSG_INIT;
            enum rc_rc rc = msg_decode((enum msg_topic)topic, data, len, &m, NULL);
            assert_true(rc == RC_OK || rc == RC_EPROTO);
            msg_release(&m);
        }
        char id[LIMITS_ID_MAX + 1];
        (void)msg_peek_request_id(data, len, id);
    }
}

/* A v1 trigger as the bytes a sender wrote: keep decoding it when the schema moves on. */
static void
test_msg_decodes_v1_trigger_fixture(void **state)
{
    (void)state;
    static const unsigned char v1[] = {
        0x86, 0xa1, 'v',  0x01, 0xa4, 't', 'y', 'p',  'e',  0xa7, 't',  'r',  'i',
        'g',  'g',  'e',  'r',  0xa2, 't', 's', 0xcf, 0x00, 0x00, 0x01, 0x8b, 0xcf,
        0xe5, 0x68, 0x00, 0xaa, 'r',  'e', 'q', 'u',  'e',  's',  't',  '_',  'i',
        'd',  0xa5, 'r',  'e',  'q',  '-', '1', 0xa5, 'b',  'r',  'i',  'e',  'f',
        0xa3, 'a',  'b',  'c',  0xa5, 'f', 'o', 'r',  'c',  'e',  0xc3,
    };
    struct msg m = MSG_INIT;
    struct rc_err err = RC_ERR_INIT;
    assert_int_equal(msg_decode(MSG_TOPIC_TRIGGERS, (const char *)v1, sizeof(v1), &m, &err), RC_OK);
    assert_int_equal(m.kind, MSG_TRIGGER);
    assert_int_equal(m.ts_ms, INT64_C(1700000000000));
    assert_string_equal(m.u.trigger.request_id, "req-1");
    assert_string_equal(m.u.trigger.brief, "abc");
    assert_null(m.u.trigger.model);
    assert_false(m.u.trigger.bypass_gates);
    assert_true(m.u.trigger.force);
    msg_release(&m);
}

/* ---- decoded values ---- */

static void
decode_ok(enum msg_topic topic, const struct tv *base, const struct tv *over, struct msg *m)
{
    msgpack_sbuffer sb;
    struct rc_err err = RC_ERR_INIT;
    build(base, over, &sb);
    enum rc_rc rc = msg_decode(topic, sb.data, sb.size, m, &err);
    msgpack_sbuffer_destroy(&sb);
    if (rc != RC_OK) {
        fail_msg("decode: %s", err.msg);
    }
}

static void
test_msg_trigger_fields(void **state)
{
    (void)state;
    static const struct tv over[] = {S("strategy", "momentum"), S("strategy_path", ""),
                                     B("force", 1), END};
    struct msg m = MSG_INIT;
    decode_ok(MSG_TOPIC_TRIGGERS, trigger_ok, over, &m);
    assert_int_equal(m.kind, MSG_TRIGGER);
    assert_int_equal(m.ts_ms, INT64_C(1700000000000));
    assert_string_equal(m.u.trigger.request_id, "req-1");
    assert_string_equal(m.u.trigger.brief, "find alpha");
    assert_string_equal(m.u.trigger.model, "claude-sonnet-4-5");
    assert_string_equal(m.u.trigger.strategy, "momentum");
    assert_null(m.u.trigger.strategy_path); /* "" means absent */
    assert_false(m.u.trigger.bypass_gates);
    assert_true(m.u.trigger.force);
    assert_non_null(m.mem);
    msg_release(&m);
    assert_null(m.mem);
    msg_release(&m); /* released twice: still fine */
}

static void
test_msg_result_values_kept(void **state)
{
    (void)state;
    static const struct tv over[] = {FN("result", pack_odd_result), END};
    struct msg m = MSG_INIT;
    decode_ok(MSG_TOPIC_COMPLETIONS, completion_ok, over, &m);
    const struct completion *c = &m.u.completion;
    assert_int_equal(c->status, COMPLETION_COMPLETED);
    assert_int_equal(c->n_result, 10); /* 12 less the int key and the repeated key */
    static const struct {
        const char *key;
        enum value_kind kind;
    } want[] = {
        {"accuracy", VALUE_OTHER}, {"nested", VALUE_OTHER},   {"blob", VALUE_OTHER},
        {"long", VALUE_OTHER},     {"bad_utf8", VALUE_OTHER}, {"final_loss", VALUE_INT},
        {"empty", VALUE_NIL},      {"big", VALUE_FLOAT},      {"neg", VALUE_INT},
        {"f32", VALUE_FLOAT},
    };
    for (size_t i = 0; i < N_OF(want); i++) {
        const struct kv *e = kv_find(c->result, c->n_result, want[i].key);
        if (e == NULL || e->val.kind != want[i].kind) {
            fail_msg("case %s: kind %d", want[i].key, e != NULL ? (int)e->val.kind : -1);
        }
    }
    assert_int_equal(kv_find(c->result, c->n_result, "final_loss")->val.i, 1);
    assert_int_equal(kv_find(c->result, c->n_result, "neg")->val.i, -5);
    assert_true(kv_find(c->result, c->n_result, "f32")->val.f == 0.5);

    struct rc_err err = RC_ERR_INIT;
    assert_int_equal(result_check(WORKER_TRAINING, c->result, c->n_result, &err), RC_EPROTO);
    assert_string_equal(err.msg, "bad result: accuracy: must be a number");
    msg_release(&m);
}

static void
test_msg_completion_fields(void **state)
{
    (void)state;
    static const struct tv none[] = {END};
    static const struct tv failed[] = {S("status", "failed"), OMIT("result"),
                                       S("error", "out of memory"), END};
    static const struct tv empty[] = {FN("result", pack_empty_map), END};
    struct msg m = MSG_INIT;

    decode_ok(MSG_TOPIC_COMPLETIONS, completion_ok, none, &m);
    assert_int_equal(m.kind, MSG_COMPLETION);
    assert_string_equal(m.u.completion.dispatch_id, "d-1");
    assert_string_equal(m.u.completion.research_id, "rs-1");
    assert_string_equal(m.u.completion.worker_id, "w-1");
    assert_int_equal(m.u.completion.status, COMPLETION_COMPLETED);
    assert_null(m.u.completion.error);
    assert_int_equal(m.u.completion.n_result, 3);
    assert_string_equal(kv_find(m.u.completion.result, 3, "strategy_name")->val.s, "momentum");
    assert_int_equal(kv_find(m.u.completion.result, 3, "input_tokens")->val.i, 1200);
    assert_true(kv_find(m.u.completion.result, 3, "cost_usd")->val.f == 0.25);
    assert_int_equal(result_check(WORKER_DESIGN, m.u.completion.result, 3, NULL), RC_OK);
    msg_release(&m);

    decode_ok(MSG_TOPIC_COMPLETIONS, completion_ok, failed, &m);
    assert_int_equal(m.u.completion.status, COMPLETION_FAILED);
    assert_string_equal(m.u.completion.error, "out of memory");
    assert_null(m.u.completion.result);
    assert_int_equal(m.u.completion.n_result, 0);
    msg_release(&m);

    decode_ok(MSG_TOPIC_COMPLETIONS, completion_ok, empty, &m);
    assert_non_null(m.u.completion.result); /* an empty map is not an absent one */
    assert_int_equal(m.u.completion.n_result, 0);
    msg_release(&m);
}

static void
test_msg_dispatch_fields(void **state)
{
    (void)state;
    static const struct tv over[] = {S("phase", "assessing"), S("worker_type", "assessment"),
                                     I("attempt", 2), FN("params", pack_assessment_params), END};
    struct msg m = MSG_INIT;
    decode_ok(MSG_TOPIC_DISPATCH, dispatch_ok, over, &m);
    const struct dispatch *d = &m.u.dispatch;
    assert_int_equal(m.kind, MSG_DISPATCH);
    assert_int_equal(d->phase, PHASE_ASSESSING);
    assert_int_equal(d->worker_type, WORKER_ASSESSMENT);
    assert_int_equal(d->attempt, 2);
    assert_int_equal(d->n_params, 5);
    assert_string_equal(d->params[0].key, "strategy_name"); /* wire order is kept */
    const struct kv *training = kv_find(d->params, d->n_params, "training");
    assert_non_null(training);
    assert_int_equal(training->val.kind, VALUE_MAP);
    assert_int_equal(training->val.map_len, 2);
    assert_true(kv_find(training->val.map, 2, "accuracy")->val.f == 0.61);
    assert_string_equal(kv_find(training->val.map, 2, "output_format")->val.s, "classification");
    assert_int_equal(kv_find(d->params, d->n_params, "backtest")->val.kind, VALUE_NIL);
    msg_release(&m);
}

/* ---- round-trips ---- */

static void
assert_str_eq(const char *what, const char *a, const char *b)
{
    if (a == NULL || b == NULL) {
        if (a != b) {
            fail_msg("%s: \"%s\" vs \"%s\"", what, a ? a : "(nil)", b ? b : "(nil)");
        }
        return;
    }
    if (strcmp(a, b) != 0) {
        fail_msg("%s: \"%s\" vs \"%s\"", what, a, b);
    }
}

static void
roundtrip(enum msg_topic topic, const struct msg *in, struct msg *out)
{
    struct buf wire = BUF_INIT;
    struct rc_err err = RC_ERR_INIT;
    msg_encode(in, &wire);
    enum rc_rc rc = msg_decode(topic, wire.data, wire.len, out, &err);
    buf_release(&wire);
    if (rc != RC_OK) {
        fail_msg("roundtrip of %s: %s", msg_kind_name(in->kind), err.msg);
    }
    assert_int_equal(out->kind, in->kind);
    assert_int_equal(out->ts_ms, in->ts_ms);
}

static void
assert_values_equal(const char *what, const struct kv *a, size_t na, const struct kv *b, size_t nb)
{
    if (na != nb) {
        fail_msg("%s: %zu vs %zu entries", what, na, nb);
    }
    for (size_t i = 0; i < na; i++) {
        const struct value *x = &a[i].val;
        const struct value *y = &b[i].val;
        assert_str_eq(what, a[i].key, b[i].key);
        if (x->kind != y->kind) {
            fail_msg("%s.%s: kind %d vs %d", what, a[i].key, (int)x->kind, (int)y->kind);
        }
        switch (x->kind) {
        case VALUE_BOOL:
            assert_int_equal(x->b, y->b);
            break;
        case VALUE_INT:
            assert_int_equal(x->i, y->i);
            break;
        case VALUE_FLOAT:
            assert_true(x->f == y->f);
            break;
        case VALUE_STR:
            assert_str_eq(a[i].key, x->s, y->s);
            break;
        case VALUE_MAP:
            assert_values_equal(a[i].key, x->map, x->map_len, y->map, y->map_len);
            break;
        case VALUE_RAW:
            assert_int_equal(x->raw_len, y->raw_len);
            assert_memory_equal(x->s, y->s, x->raw_len);
            break;
        case VALUE_NIL:
        case VALUE_OTHER:
            break;
        }
    }
}

/* {"a": [1, {}]} as MessagePack */
#define OPTIONS_A1 "\x81\xa1" "a" "\x92\x01\x80"

static void
test_msg_roundtrip_trigger_and_cancel(void **state)
{
    (void)state;
    struct msg in = MSG_INIT;
    struct msg out = MSG_INIT;
    in.kind = MSG_TRIGGER;
    in.ts_ms = 1700000000123;
    in.u.trigger = (struct trigger){.request_id = "req-7",
                                    .brief = "find \xc3\xa9 alpha",
                                    .model = "claude-haiku-4-5",
                                    .strategy = "momentum",
                                    .strategy_path = "/s/momentum.py",
                                    .bypass_gates = true,
                                    .force = false,
                                    .options = OPTIONS_A1,
                                    .options_len = sizeof(OPTIONS_A1) - 1};
    roundtrip(MSG_TOPIC_TRIGGERS, &in, &out);
    assert_int_equal(out.u.trigger.options_len, sizeof(OPTIONS_A1) - 1);
    assert_memory_equal(out.u.trigger.options, OPTIONS_A1, sizeof(OPTIONS_A1) - 1);
    assert_str_eq("request_id", out.u.trigger.request_id, "req-7");
    assert_str_eq("brief", out.u.trigger.brief, in.u.trigger.brief);
    assert_str_eq("model", out.u.trigger.model, "claude-haiku-4-5");
    assert_str_eq("strategy", out.u.trigger.strategy, "momentum");
    assert_str_eq("strategy_path", out.u.trigger.strategy_path, "/s/momentum.py");
    assert_true(out.u.trigger.bypass_gates);
    assert_false(out.u.trigger.force);
    msg_release(&out);

    in = (struct msg)MSG_INIT;
    in.kind = MSG_CANCEL;
    in.u.cancel = (struct cancel){.research_id = "rs-1", .request_id = NULL, .reason = "stop"};
    roundtrip(MSG_TOPIC_TRIGGERS, &in, &out);
    assert_str_eq("research_id", out.u.cancel.research_id, "rs-1");
    assert_null(out.u.cancel.request_id);
    assert_str_eq("reason", out.u.cancel.reason, "stop");
    msg_release(&out);

    in = (struct msg)MSG_INIT;
    in.kind = MSG_RESUME;
    in.u.resume = (struct resume){
        .research_id = "rs-2", .request_id = "req-8", .reason = "again", .force = true};
    roundtrip(MSG_TOPIC_TRIGGERS, &in, &out);
    assert_int_equal(out.kind, MSG_RESUME);
    assert_str_eq("research_id", out.u.resume.research_id, "rs-2");
    assert_str_eq("request_id", out.u.resume.request_id, "req-8");
    assert_str_eq("reason", out.u.resume.reason, "again");
    assert_true(out.u.resume.force);
    msg_release(&out);
}

static void
test_msg_roundtrip_completion(void **state)
{
    (void)state;
    static const struct kv result[] = {
        {"strategy_name", {.kind = VALUE_STR, .s = "momentum"}},
        {"input_tokens", {.kind = VALUE_INT, .i = 1234567890123}},
        {"cost_usd", {.kind = VALUE_FLOAT, .f = 0.1}},
        {"negative", {.kind = VALUE_INT, .i = INT64_MIN}},
        {"flag", {.kind = VALUE_BOOL, .b = true}},
        {"nothing", {.kind = VALUE_NIL}},
        {"junk", {.kind = VALUE_OTHER}},
    };
    struct msg in = MSG_INIT;
    struct msg out = MSG_INIT;
    in.kind = MSG_COMPLETION;
    in.ts_ms = 3;
    in.u.completion = (struct completion){.dispatch_id = "d-1",
                                          .research_id = "rs-1",
                                          .worker_id = "w-1",
                                          .status = COMPLETION_COMPLETED,
                                          .error = NULL,
                                          .result = result,
                                          .n_result = N_OF(result)};
    roundtrip(MSG_TOPIC_COMPLETIONS, &in, &out);
    assert_str_eq("dispatch_id", out.u.completion.dispatch_id, "d-1");
    assert_str_eq("research_id", out.u.completion.research_id, "rs-1");
    assert_str_eq("worker_id", out.u.completion.worker_id, "w-1");
    assert_int_equal(out.u.completion.status, COMPLETION_COMPLETED);
    assert_null(out.u.completion.error);
    assert_values_equal("result", result, N_OF(result), out.u.completion.result,
                        out.u.completion.n_result);
    msg_release(&out);

    in.u.completion.status = COMPLETION_FAILED;
    in.u.completion.error = "crashed";
    in.u.completion.result = NULL;
    in.u.completion.n_result = 0;
    roundtrip(MSG_TOPIC_COMPLETIONS, &in, &out);
    assert_int_equal(out.u.completion.status, COMPLETION_FAILED);
    assert_str_eq("error", out.u.completion.error, "crashed");
    assert_null(out.u.completion.result);
    msg_release(&out);
}

static void
test_msg_roundtrip_dispatch_and_abort(void **state)
{
    (void)state;
    static const struct kv training[] = {
        {"accuracy", {.kind = VALUE_FLOAT, .f = 0.61}},
        {"output_format", {.kind = VALUE_STR, .s = "regression"}},
    };
    struct kv params[] = {
        {"strategy_name", {.kind = VALUE_STR, .s = "momentum"}},
        {"model", {.kind = VALUE_NIL}},
        {"training", {.kind = VALUE_MAP, .map = training, .map_len = N_OF(training)}},
        {"backtest", {.kind = VALUE_NIL}},
        {"gate_rejection_reason", {.kind = VALUE_STR, .s = "training: accuracy 0.05 < 0.10"}},
        {"options", {.kind = VALUE_RAW, .s = OPTIONS_A1, .raw_len = sizeof(OPTIONS_A1) - 1}},
    };
    struct msg in = MSG_INIT;
    struct msg out = MSG_INIT;
    in.kind = MSG_DISPATCH;
    in.ts_ms = 11;
    in.u.dispatch = (struct dispatch){.dispatch_id = "d-9",
                                      .research_id = "rs-2",
                                      .worker_id = "w-3",
                                      .phase = PHASE_ASSESSING,
                                      .worker_type = WORKER_ASSESSMENT,
                                      .attempt = 2,
                                      .params = params,
                                      .n_params = N_OF(params)};
    roundtrip(MSG_TOPIC_DISPATCH, &in, &out);
    assert_str_eq("dispatch_id", out.u.dispatch.dispatch_id, "d-9");
    assert_str_eq("research_id", out.u.dispatch.research_id, "rs-2");
    assert_str_eq("worker_id", out.u.dispatch.worker_id, "w-3");
    assert_int_equal(out.u.dispatch.phase, PHASE_ASSESSING);
    assert_int_equal(out.u.dispatch.worker_type, WORKER_ASSESSMENT);
    assert_int_equal(out.u.dispatch.attempt, 2);
    assert_values_equal("params", params, N_OF(params), out.u.dispatch.params,
                        out.u.dispatch.n_params);
    msg_release(&out);

    in = (struct msg)MSG_INIT;
    in.kind = MSG_ABORT;
    in.u.abort = (struct abort_msg){
        .dispatch_id = "d-9", .research_id = "rs-2", .worker_id = "w-3", .reason = "cancelled"};
    roundtrip(MSG_TOPIC_DISPATCH, &in, &out);
    assert_str_eq("dispatch_id", out.u.abort.dispatch_id, "d-9");
    assert_str_eq("research_id", out.u.abort.research_id, "rs-2");
    assert_str_eq("worker_id", out.u.abort.worker_id, "w-3");
    assert_str_eq("reason", out.u.abort.reason, "cancelled");
    msg_release(&out);
}

/* An event of `type` with every key of its row in §4 set. */
static struct event
sample_event(enum event_type type)
{
    struct event e = {.type = type, .research_id = "rs-1"};
    switch (type) {
    case EVENT_ACCEPTED:
        e.request_id = "req-1";
        break;
    case EVENT_REJECTED:
        e.research_id = NULL;
        e.request_id = "req-1";
        e.reason = "budget_exhausted";
        e.message = "daily budget spent";
        e.has_budget = true;
        e.remaining = -0.25;
        e.daily_limit = 20;
        break;
    case EVENT_PHASE_STARTED:
        e.phase = PHASE_TRAINING;
        e.dispatch_id = "d-1";
        e.attempt = 1;
        break;
    case EVENT_GATE:
        e.gate = WORKER_BACKTEST;
        e.passed = true;
        e.reason = "bypassed";
        break;
    case EVENT_REDISPATCHED:
        e.phase = PHASE_BACKTESTING;
        e.old_dispatch_id = "d-1";
        e.dispatch_id = "d-2";
        e.attempt = 2;
        e.reason = "dispatch_timeout";
        break;
    case EVENT_COMPLETED:
        e.strategy_name = "momentum";
        e.verdict = "promising";
        e.gate_rejection_reason = NULL;
        break;
    case EVENT_FAILED:
        e.phase = PHASE_DESIGNING;
        e.error = "bad result: strategy_name: required";
        break;
    case EVENT_CANCELLED:
        e.phase = PHASE_TRAINING;
        e.dispatch_id = NULL;
        e.request_id = "req-3";
        break;
    case EVENT_CANCEL_REJECTED:
        e.reason = "not_cancellable";
        e.request_id = "req-4";
        break;
    case EVENT_RESUMED:
        e.phase = PHASE_ASSESSING;
        e.request_id = "req-5";
        break;
    case EVENT_RESUME_REJECTED:
        e.reason = "at_capacity";
        e.request_id = NULL;
        break;
    case EVENT_TYPE_COUNT:
        break;
    }
    return e;
}

static void
assert_event_equal(const struct event *a, const struct event *b)
{
    const char *t = event_type_name(a->type);
    assert_int_equal(a->type, b->type);
    assert_str_eq(t, a->research_id, b->research_id);
    assert_str_eq(t, a->request_id, b->request_id);
    assert_str_eq(t, a->reason, b->reason);
    assert_str_eq(t, a->message, b->message);
    assert_str_eq(t, a->dispatch_id, b->dispatch_id);
    assert_str_eq(t, a->old_dispatch_id, b->old_dispatch_id);
    assert_str_eq(t, a->strategy_name, b->strategy_name);
    assert_str_eq(t, a->verdict, b->verdict);
    assert_str_eq(t, a->gate_rejection_reason, b->gate_rejection_reason);
    assert_str_eq(t, a->error, b->error);
    assert_int_equal(a->phase, b->phase);
    assert_int_equal(a->attempt, b->attempt);
    assert_int_equal(a->gate, b->gate);
    assert_int_equal(a->passed, b->passed);
    assert_int_equal(a->has_capacity, b->has_capacity);
    assert_int_equal(a->active_count, b->active_count);
    assert_int_equal(a->limit, b->limit);
    assert_int_equal(a->has_budget, b->has_budget);
    assert_true(a->remaining == b->remaining);
    assert_true(a->daily_limit == b->daily_limit);
}

static void
test_msg_roundtrip_every_event(void **state)
{
    (void)state;
    for (int t = 0; t < EVENT_TYPE_COUNT; t++) {
        struct msg in = MSG_INIT;
        struct msg out = MSG_INIT;
        in.kind = MSG_EVENT;
        in.ts_ms = 1000 + t;
        in.u.event = sample_event((enum event_type)t);
        roundtrip(MSG_TOPIC_EVENTS, &in, &out);
        assert_event_equal(&in.u.event, &out.u.event);
        msg_release(&out);
    }

    /* the other figures of a rejection */
    struct msg in = MSG_INIT;
    struct msg out = MSG_INIT;
    in.kind = MSG_EVENT;
    in.u.event = (struct event){.type = EVENT_REJECTED,
                                .request_id = "req-5",
                                .reason = "at_capacity",
                                .message = "full",
                                .has_capacity = true,
                                .active_count = 4,
                                .limit = 4};
    roundtrip(MSG_TOPIC_EVENTS, &in, &out);
    assert_event_equal(&in.u.event, &out.u.event);
    msg_release(&out);
}

/* The value of `key` in the encoded map, as msgpack sees it (type only). */
static msgpack_object_type
encoded_key_type(const struct buf *wire, const char *key, uint32_t *map_size)
{
    msgpack_unpacked up;
    size_t off = 0;
    msgpack_object_type t = (msgpack_object_type)-1;
    msgpack_unpacked_init(&up);
    assert_int_equal(msgpack_unpack_next(&up, wire->data, wire->len, &off), MSGPACK_UNPACK_SUCCESS);
    assert_int_equal(up.data.type, MSGPACK_OBJECT_MAP);
    *map_size = up.data.via.map.size;
    for (uint32_t i = 0; i < up.data.via.map.size; i++) {
        const msgpack_object *k = &up.data.via.map.ptr[i].key;
        if (k->type == MSGPACK_OBJECT_STR && k->via.str.size == strlen(key) &&
            memcmp(k->via.str.ptr, key, strlen(key)) == 0) {
            t = up.data.via.map.ptr[i].val.type;
        }
    }
    msgpack_unpacked_destroy(&up);
    return t;
}

static void
test_msg_encode_writes_nil_keys(void **state)
{
    (void)state;
    static const struct {
        enum event_type type;
        const char *key;
        uint32_t size;
    } cases[] = {
        {EVENT_COMPLETED, "gate_rejection_reason", 3 + 4},
        {EVENT_CANCELLED, "dispatch_id", 3 + 4},
        {EVENT_REJECTED, "research_id", 3 + 8},
        {EVENT_REJECTED, "active_count", 3 + 8},
    };
    for (size_t i = 0; i < N_OF(cases); i++) {
        struct msg m = MSG_INIT;
        struct buf wire = BUF_INIT;
        uint32_t size = 0;
        m.kind = MSG_EVENT;
        m.u.event = sample_event(cases[i].type);
        msg_encode(&m, &wire);
        if (encoded_key_type(&wire, cases[i].key, &size) != MSGPACK_OBJECT_NIL ||
            size != cases[i].size) {
            fail_msg("case %s.%s: not written as nil (map of %u)", event_type_name(cases[i].type),
                     cases[i].key, (unsigned)size);
        }
        buf_release(&wire);
    }

    /* common keys and false booleans are always written */
    struct msg m = MSG_INIT;
    struct buf wire = BUF_INIT;
    uint32_t size = 0;
    m.kind = MSG_TRIGGER;
    m.u.trigger = (struct trigger){.request_id = "r", .brief = "b"};
    msg_encode(&m, &wire);
    assert_int_equal(encoded_key_type(&wire, "v", &size), MSGPACK_OBJECT_POSITIVE_INTEGER);
    assert_int_equal(encoded_key_type(&wire, "ts", &size), MSGPACK_OBJECT_POSITIVE_INTEGER);
    assert_int_equal(encoded_key_type(&wire, "type", &size), MSGPACK_OBJECT_STR);
    assert_int_equal(encoded_key_type(&wire, "force", &size), MSGPACK_OBJECT_BOOLEAN);
    assert_int_equal(encoded_key_type(&wire, "model", &size), MSGPACK_OBJECT_NIL);
    assert_int_equal(size, 3 + 8);
    buf_release(&wire);
}

static void
test_msg_encode_appends(void **state)
{
    (void)state;
    struct buf wire = BUF_INIT;
    struct msg m = MSG_INIT;
    m.kind = MSG_CANCEL;
    m.u.cancel.research_id = "rs-1";
    buf_puts(&wire, "xy");
    msg_encode(&m, &wire);
    assert_memory_equal(wire.data, "xy", 2);
    struct msg out = MSG_INIT;
    assert_int_equal(msg_decode(MSG_TOPIC_TRIGGERS, wire.data + 2, wire.len - 2, &out, NULL),
                     RC_OK);
    msg_release(&out);
    buf_release(&wire);
}

static void
deadletter_roundtrip(size_t original_len, size_t original_size, size_t want_kept, size_t want_size,
                     bool want_truncated)
{
    char *original = malloc(original_len + 1);
    assert_non_null(original);
    for (size_t i = 0; i < original_len; i++) {
        original[i] = (char)(i * 31 + 7);
    }
    struct msg in = MSG_INIT;
    struct msg out = MSG_INIT;
    in.kind = MSG_DEADLETTER;
    in.ts_ms = 99;
    in.u.deadletter = (struct deadletter){.reason = "message: not a msgpack map",
                                          .source_topic = "research.completions",
                                          .source_partition = 5,
                                          .source_offset = INT64_C(123456789012),
                                          .original = original,
                                          .original_len = original_len,
                                          .original_size = original_size};
    roundtrip(MSG_TOPIC_DEADLETTER, &in, &out);
    const struct deadletter *d = &out.u.deadletter;
    assert_str_eq("reason", d->reason, "message: not a msgpack map");
    assert_str_eq("source_topic", d->source_topic, "research.completions");
    assert_int_equal(d->source_partition, 5);
    assert_int_equal(d->source_offset, INT64_C(123456789012));
    assert_int_equal(d->original_len, want_kept);
    assert_int_equal(d->original_size, want_size);
    assert_int_equal(d->truncated, want_truncated);
    assert_non_null(d->original);
    if (want_kept > 0) {
        assert_memory_equal(d->original, original, want_kept);
    }
    msg_release(&out);
    free(original);
}

static void
test_msg_deadletter_truncates_at_64k(void **state)
{
    (void)state;
    deadletter_roundtrip(100000, 100000, 65536, 100000, true);
    deadletter_roundtrip(65536, 65536, 65536, 65536, false);
    deadletter_roundtrip(65537, 65537, 65536, 65537, true);
    deadletter_roundtrip(10, 10, 10, 10, false);
    deadletter_roundtrip(0, 0, 0, 0, false);
    /* a caller that kept only part of a larger input */
    deadletter_roundtrip(100, 5000000, 100, 5000000, true);
    /* original_size below the bytes at hand: the bytes at hand win */
    deadletter_roundtrip(100, 0, 100, 100, false);
}

static void
test_msg_peek_request_id(void **state)
{
    (void)state;
    static const struct tv bad_brief[] = {REP("brief", "b", 16385), END};
    static const struct tv bad_id[] = {S("request_id", "a b"), END};
    static const struct tv no_id[] = {OMIT("request_id"), END};
    static const struct tv int_id[] = {I("request_id", 5), END};
    static const struct tv none[] = {END};
    static const struct tv late_base[] = {
        S("type", "cancel"), FN("junk", pack_junk_map), ARR("arr"),
        BIN("blob", 300),    S("request_id", "late-1"), END};
    static const struct {
        const char *name;
        const struct tv *base;
        const struct tv *over;
        const char *want;
    } cases[] = {
        {"invalid brief", trigger_ok, bad_brief, "req-1"},
        {"bad id", trigger_ok, bad_id, NULL},
        {"no id", trigger_ok, no_id, NULL},
        {"int id", trigger_ok, int_id, NULL},
        {"after junk", late_base, none, "late-1"},
    };

    for (size_t i = 0; i < N_OF(cases); i++) {
        msgpack_sbuffer sb;
        char id[LIMITS_ID_MAX + 1] = "unchanged";
        build(cases[i].base, cases[i].over, &sb);
        bool got = msg_peek_request_id(sb.data, sb.size, id);
        if (got != (cases[i].want != NULL) || (got && strcmp(id, cases[i].want) != 0)) {
            fail_msg("case %s: got %d \"%s\"", cases[i].name, (int)got, id);
        }
        /* every truncation is refused or gives the same id */
        for (size_t len = 0; len < sb.size && sb.size < 4096; len++) {
            char part[LIMITS_ID_MAX + 1];
            if (msg_peek_request_id(sb.data, len, part) && cases[i].want != NULL) {
                assert_string_equal(part, cases[i].want);
            }
        }
        msgpack_sbuffer_destroy(&sb);
    }
    char id[LIMITS_ID_MAX + 1];
    assert_false(msg_peek_request_id("\x92\x01\x02", 3, id));
    assert_false(msg_peek_request_id("", 0, id));
    assert_false(msg_peek_request_id(NULL, 0, id));
    /* a 128-byte id fits with its NUL */
    struct tv max_id[] = {REP("request_id", "q", 128), END};
    msgpack_sbuffer sb;
    build(trigger_ok, max_id, &sb);
    assert_true(msg_peek_request_id(sb.data, sb.size, id));
    assert_int_equal(strlen(id), 128);
    msgpack_sbuffer_destroy(&sb);
}

static void
test_msg_names(void **state)
{
    (void)state;
    static const char *const events[] = {
        "accepted", "rejected",  "phase_started",   "gate",    "redispatched",   "completed",
        "failed",   "cancelled", "cancel_rejected", "resumed", "resume_rejected"};
    assert_int_equal(N_OF(events), EVENT_TYPE_COUNT);
    for (int t = 0; t < EVENT_TYPE_COUNT; t++) {
        enum event_type back = EVENT_TYPE_COUNT;
        assert_string_equal(event_type_name((enum event_type)t), events[t]);
        assert_int_equal(event_type_parse(events[t], &back), RC_OK);
        assert_int_equal(back, t);
    }
    enum event_type untouched = EVENT_GATE;
    assert_int_equal(event_type_parse("trigger", &untouched), RC_EINVAL);
    assert_int_equal(event_type_parse(NULL, &untouched), RC_EINVAL);
    assert_int_equal(untouched, EVENT_GATE);
    assert_string_equal(msg_kind_name(MSG_TRIGGER), "trigger");
    assert_string_equal(msg_kind_name(MSG_CANCEL), "cancel");
    assert_string_equal(msg_kind_name(MSG_COMPLETION), "completion");
    assert_string_equal(msg_kind_name(MSG_DISPATCH), "dispatch");
    assert_string_equal(msg_kind_name(MSG_ABORT), "abort");
    assert_string_equal(msg_kind_name(MSG_EVENT), "event");
    assert_string_equal(msg_kind_name(MSG_DEADLETTER), "deadletter");
    assert_string_equal(msg_kind_name(MSG_RESUME), "resume");
}

static void
test_msg_release_init_is_noop(void **state)
{
    (void)state;
    struct msg m = MSG_INIT;
    msg_release(&m);
    msg_release(NULL);
    assert_null(m.mem);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_msg_common_keys),
        cmocka_unit_test(test_msg_trigger_rules),
        cmocka_unit_test(test_msg_completion_rules),
        cmocka_unit_test(test_msg_dispatch_rules),
        cmocka_unit_test(test_msg_event_rules),
        cmocka_unit_test(test_msg_deadletter_rules),
        cmocka_unit_test(test_msg_rejects_non_maps),
        cmocka_unit_test(test_msg_rejects_every_truncation),
        cmocka_unit_test(test_msg_rejects_duplicate_keys),
        cmocka_unit_test(test_msg_rejects_over_one_mib),
        cmocka_unit_test(test_msg_rejects_deep_nesting),
        cmocka_unit_test(test_msg_garbage_never_decodes_wrongly),
        cmocka_unit_test(test_msg_decodes_v1_trigger_fixture),
        cmocka_unit_test(test_msg_trigger_fields),
        cmocka_unit_test(test_msg_result_values_kept),
        cmocka_unit_test(test_msg_completion_fields),
        cmocka_unit_test(test_msg_dispatch_fields),
        cmocka_unit_test(test_msg_roundtrip_trigger_and_cancel),
        cmocka_unit_test(test_msg_roundtrip_completion),
        cmocka_unit_test(test_msg_roundtrip_dispatch_and_abort),
        cmocka_unit_test(test_msg_roundtrip_every_event),
        cmocka_unit_test(test_msg_encode_writes_nil_keys),
        cmocka_unit_test(test_msg_encode_appends),
        cmocka_unit_test(test_msg_deadletter_truncates_at_64k),
        cmocka_unit_test(test_msg_peek_request_id),
        cmocka_unit_test(test_msg_names),
        cmocka_unit_test(test_msg_release_init_is_noop),
    };
    return cmocka_run_group_tests_name("msg", tests, NULL, NULL);
}
