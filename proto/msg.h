/* SPDX-License-Identifier: MIT
 * msg: every message of the contract (§3, §4) as plain structs, their MessagePack encoding and
 * their validating decoders. No I/O; msgpack objects never leave proto/.
 *
 * To change the schema: bump LIMITS_SCHEMA_VERSION, keep the old decoder, add a fixture of
 * the old bytes to tests/unit/test_msg.c. */
#ifndef RC_MSG_H
#define RC_MSG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/rc_err.h"
#include "contract/limits.h"
#include "contract/phase.h"
#include "proto/value.h"

struct buf;

/* Which topic a message was read from decides which `type`s are allowed. */
enum msg_topic {
    MSG_TOPIC_TRIGGERS = 0, /* trigger, cancel, resume */
    MSG_TOPIC_COMPLETIONS,  /* completion */
    MSG_TOPIC_DISPATCH,     /* dispatch, abort */
    MSG_TOPIC_EVENTS,       /* lifecycle events */
    MSG_TOPIC_DEADLETTER,   /* deadletter */
};

enum msg_kind {
    MSG_TRIGGER = 0,
    MSG_CANCEL,
    MSG_COMPLETION,
    MSG_DISPATCH,
    MSG_ABORT,
    MSG_EVENT,
    MSG_DEADLETTER,
    MSG_RESUME,
};

/* All strings below are NUL-terminated; NULL means nil (absent or empty). In a decoded message
 * they point into the message's own memory (freed by msg_release); when encoding they are
 * borrowed from the caller. */

struct trigger {
    const char *request_id; /* required, id */
    const char *brief;      /* required, <= 16 KiB */
    const char *model;
    const char *strategy;
    const char *strategy_path;
    bool bypass_gates;
    bool force;
    /* The options map as MessagePack (NULL: absent or nil), <= LIMITS_OPTIONS_MAX bytes and
     * JSON-like (proto/json.h), forwarded unchanged in every dispatch's params (§1). */
    const char *options;
    size_t options_len;
};

struct cancel {
    const char *research_id; /* required, id */
    const char *request_id;  /* optional, id */
    const char *reason;
};

/* Re-open a failed or cancelled research at the phase it stopped in (§3). */
struct resume {
    const char *research_id; /* required, id */
    const char *request_id;  /* optional, id */
    const char *reason;
    bool force; /* accept even at capacity */
};

/* A completion's `status` (§3). Released: the worker hands the dispatch back unfinished. */
enum completion_status { COMPLETION_COMPLETED = 0, COMPLETION_FAILED, COMPLETION_RELEASED };

struct completion {
    const char *dispatch_id; /* required, id */
    const char *research_id; /* required, id */
    const char *worker_id;   /* required, id */
    enum completion_status status;
    const char *error;
    const struct kv *result; /* required map when completed; only its scalar entries are kept */
    size_t n_result;
};

struct dispatch {
    const char *dispatch_id;
    const char *research_id;
    const char *worker_id;
    enum phase phase;             /* a worked phase */
    enum worker_type worker_type; /* == phase_worker_type(phase) */
    int64_t attempt;              /* 1, 2, ... */
    const struct kv *params;      /* every key of the phase's params (contract §1); `options`
                                     (PARAM_OPTIONS) is VALUE_RAW (a map) or VALUE_NIL */
    size_t n_params;
};

struct abort_msg {
    const char *dispatch_id;
    const char *research_id;
    const char *worker_id;
    const char *reason;
};

enum event_type {
    EVENT_ACCEPTED = 0,
    EVENT_REJECTED,
    EVENT_PHASE_STARTED,
    EVENT_GATE,
    EVENT_REDISPATCHED,
    EVENT_COMPLETED,
    EVENT_FAILED,
    EVENT_CANCELLED,
    EVENT_CANCEL_REJECTED,
    EVENT_RESUMED,
    EVENT_RESUME_REJECTED,
    EVENT_TYPE_COUNT
};

/* A lifecycle event (§4). Which keys are written depends on `type`, per the contract's table;
 * keys of other types are ignored when encoding and left zero when decoding. */
struct event {
    enum event_type type;
    const char *research_id; /* every type where one exists */
    const char *request_id;  /* accepted, rejected, cancelled, cancel_rejected, resumed,
                                resume_rejected */
    const char *reason;      /* rejected, gate, redispatched, cancel_rejected, resume_rejected */
    const char *message;     /* rejected */
    enum phase phase;        /* phase_started, redispatched, failed, cancelled, resumed */
    const char *dispatch_id; /* phase_started, redispatched, cancelled (nil allowed) */
    const char *old_dispatch_id; /* redispatched */
    int64_t attempt;             /* phase_started, redispatched */
    enum worker_type gate;       /* gate: WORKER_TRAINING or WORKER_BACKTEST */
    bool passed;                 /* gate */
    const char *strategy_name;   /* completed */
    const char *verdict;         /* completed */
    const char *gate_rejection_reason; /* completed (nil allowed) */
    const char *error;                 /* failed */
    /* rejected figures: at_capacity carries active_count and limit, budget_exhausted carries
     * remaining and daily_limit (USD). */
    bool has_capacity;
    int64_t active_count;
    int64_t limit;
    bool has_budget;
    double remaining;
    double daily_limit;
};

struct deadletter {
    const char *reason;
    const char *source_topic;
    int32_t source_partition;
    int64_t source_offset;
    const char *original; /* the input's bytes (binary); at most its first 64 KiB are written */
    size_t original_len;  /* bytes at `original` */
    size_t original_size; /* the input's full size */
    bool truncated;       /* decode only: original_size > what was kept */
};

struct msg {
    enum msg_kind kind;
    int64_t ts_ms; /* `ts`, 0 when absent */
    union {
        struct trigger trigger;
        struct cancel cancel;
        struct resume resume;
        struct completion completion;
        struct dispatch dispatch;
        struct abort_msg abort;
        struct event event;
        struct deadletter deadletter;
    } u;
    void *mem; /* decode only: owns every string and array above; NULL when encoding */
};

#define MSG_INIT {MSG_TRIGGER, 0, {{0}}, NULL}

/* The kinds of invalid message, few enough to be a metric's label (the message says the key
 * and the rule). */
enum msg_invalid {
    MSG_INVALID_MALFORMED = 0, /* not one msgpack map */
    MSG_INVALID_TOO_LARGE,     /* the message, a string, a map: over its limit */
    MSG_INVALID_MISSING_KEY,
    MSG_INVALID_WRONG_TYPE,
    MSG_INVALID_BAD_VALUE, /* outside its set, a bad id, an unknown type or version */
    MSG_INVALID_COUNT
};

/* Validate and decode one message read from `topic`. Checks every rule of §3: exactly one map
 * with string keys, `type` allowed on the topic, `v` == 1 when present, required keys, types,
 * id syntax, sizes (whole message <= 1 MiB, brief <= 16 KiB, other strings <= 4 KiB), and the
 * rules of each type (status in its set, result a map when completed, ...). On failure returns
 * RC_EPROTO with err->code its enum msg_invalid and err->msg naming the key and the rule
 * ("request_id: required", "brief: longer than 16384 bytes"); *out is written only on success and released with
 * msg_release(). Never allocates more than a small multiple of `len`. */
enum rc_rc msg_decode(enum msg_topic topic, const char *data, size_t len, struct msg *out,
                      struct rc_err *err);
/* Decode data[0..len), one MessagePack map, as a completion's `result` is decoded (entries
 * whose key is not text or repeats are dropped; values kept as scalars, VALUE_OTHER for what
 * a result cannot hold): for workers that get their result as MessagePack (rcw-exec, from
 * JSON). On RC_OK *out is a MSG_COMPLETION with only result/n_result set (status completed),
 * released with msg_release(). RC_EPROTO when it is not exactly one map or is too large. */
enum rc_rc msg_decode_result(const char *data, size_t len, struct msg *out, struct rc_err *err);
/* Free a decoded message's memory; back at MSG_INIT. */
void msg_release(struct msg *m);

/* For an input that failed to decode: when it is a map whose `request_id` is a valid id,
 * copy it into out (NUL-terminated) and return true. */
bool msg_peek_request_id(const char *data, size_t len, char out[LIMITS_ID_MAX + 1]);
/* True when data[0..len) is exactly one MessagePack object whose every container header
 * claims no more than the bytes behind it, nested at most 16 deep: then msgpack-c's unpacker
 * allocates O(len) for it. Call it before unpacking bytes nobody checked. */
bool msg_wire_one(const char *data, size_t len);

/* Append the MessagePack encoding of `m` (with v = 1, type and ts) to `out`. Every key the
 * contract lists for the kind is written, nil where the struct holds NULL. */
void msg_encode(const struct msg *m, struct buf *out);

const char *msg_kind_name(enum msg_kind kind);           /* "trigger", ... */
const char *completion_status_name(enum completion_status s); /* "completed", ... */
const char *event_type_name(enum event_type type);       /* "accepted", ... */
enum rc_rc event_type_parse(const char *name, enum event_type *out);

#endif /* RC_MSG_H */
