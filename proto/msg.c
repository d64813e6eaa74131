/* SPDX-License-Identifier: MIT
 * msg: the MessagePack encoding and the validating decoders of every message (contract §3, §4).
 * Each message shape is a table of fields that drives both directions; a decoded message's
 * strings and arrays live in a small arena that msg.mem owns. It is longer than most files
 * because the fifteen shapes and the one walker that reads and writes them belong together. */
#include "proto/msg.h"

#include <inttypes.h>
#include <msgpack.h>
#include <stdalign.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "common/xalloc.h"
#include "contract/fields.h"
#include "proto/json.h"

/* Entries kept in one result or params map; larger maps make the message invalid. */
#define MSG_MAP_MAX 256

/* ---- arena: every string and kv array of a decoded message, freed at once ---- */

#define ARENA_CHUNK 4096 /* bytes of a shared chunk; bigger blocks get a chunk of their own */
#define ARENA_ALIGN (alignof(max_align_t))

struct arena_chunk {
    struct arena_chunk *next;
    size_t used; /* bytes handed out */
    size_t cap;  /* bytes at data */
    max_align_t data[];
};

struct arena {
    struct arena_chunk *head; /* the chunk small blocks come from */
};


/* An invalid message: RC_EPROTO, with its class in err->code (enum msg_invalid) for whoever
 * counts invalid inputs by kind, and the key and rule in err->msg. */
#define INVALID(err, cls, ...) rc_err_coded(err, RC_EPROTO, (int)(cls), __VA_ARGS__)

static struct arena_chunk *
chunk_new(size_t cap)
{
    struct arena_chunk *c = xmalloc(sizeof(*c) + cap);
    c->next = NULL;
    c->used = 0;
    c->cap = cap;
    return c;
}

/* Callers only ask for sizes bounded by the (already size-checked) input. */
static void *
arena_alloc(struct arena *a, size_t size)
{
    size = size == 0 ? ARENA_ALIGN : (size + ARENA_ALIGN - 1) / ARENA_ALIGN * ARENA_ALIGN;
    struct arena_chunk *c = a->head;
    if (c != NULL && c->cap - c->used >= size) {
        void *p = (unsigned char *)c->data + c->used;
        c->used += size;
        return p;
    }
    if (size > ARENA_CHUNK / 4) {
        /* linked behind the head, so the head's free space stays in use */
        struct arena_chunk *big = chunk_new(size);
        big->used = size;
        if (c != NULL) {
            big->next = c->next;
            c->next = big;
        } else {
            a->head = big;
        }
        return big->data;
    }
    struct arena_chunk *fresh = chunk_new(ARENA_CHUNK);
    fresh->next = c;
    fresh->used = size;
    a->head = fresh;
    return fresh->data;
}

static char *
arena_strndup(struct arena *a, const char *s, size_t len)
{
    char *p = arena_alloc(a, len + 1);
    if (len > 0) {
        memcpy(p, s, len);
    }
    p[len] = '\0';
    return p;
}

static void
arena_free(struct arena *a)
{
    if (a == NULL) {
        return;
    }
    struct arena_chunk *c = a->head;
    while (c != NULL) {
        struct arena_chunk *next = c->next;
        free(c);
        c = next;
    }
    free(a);
}

/* ---- a bounds-checking walk over raw msgpack, before msgpack-c sees the bytes ----
 * msgpack-c allocates what a container header claims; the walk proves every claimed element
 * has at least one byte behind it, so the unpacker's allocation stays O(len). It also finds
 * trailing bytes and serves msg_peek_request_id without allocating. */

enum mp_class { MP_SCALAR, MP_STR, MP_BIN, MP_EXT, MP_ARRAY, MP_MAP };

struct mp_head {
    enum mp_class cls;
    uint64_t n; /* payload bytes; elements of an array; entries of a map */
};

static bool
mp_be(const unsigned char *p, size_t len, size_t *off, size_t width, uint64_t *out)
{
    if (len - *off < width) {
        return false;
    }
    uint64_t v = 0;
    for (size_t i = 0; i < width; i++) {
        v = v << 8 | p[*off + i];
    }
    *off += width;
    *out = v;
    return true;
}

static bool
mp_sized(const unsigned char *p, size_t len, size_t *off, struct mp_head *h, enum mp_class cls,
         size_t width)
{
    h->cls = cls;
    return mp_be(p, len, off, width, &h->n);
}

/* Read one header at p[*off] (*off <= len); false when truncated or the byte is never used. */
static bool
mp_head_read(const unsigned char *p, size_t len, size_t *off, struct mp_head *h)
{
    static const unsigned char fixed[] = {
        /* payload bytes of 0xca..0xd8: float32, float64, uint8..64, int8..64, fixext 1..16 */
        4, 8, 1, 2, 4, 8, 1, 2, 4, 8, 2, 3, 5, 9, 17,
    };
    if (*off >= len) {
        return false;
    }
    unsigned b = p[(*off)++];
    h->cls = MP_SCALAR;
    h->n = 0;
    if (b <= 0x7f || b >= 0xe0 || b == 0xc0 || b == 0xc2 || b == 0xc3) {
        return true;
    }
    if (b <= 0x8f) {
        h->cls = MP_MAP;
        h->n = b & 0x0f;
        return true;
    }
    if (b <= 0x9f) {
        h->cls = MP_ARRAY;
        h->n = b & 0x0f;
        return true;
    }
    if (b <= 0xbf) {
        h->cls = MP_STR;
        h->n = b & 0x1f;
        return true;
    }
    if (b >= 0xca && b <= 0xd8) {
        h->cls = b >= 0xd4 ? MP_EXT : MP_SCALAR;
        h->n = fixed[b - 0xca];
        return true;
    }
    switch (b) {
    case 0xc4:
    case 0xc5:
    case 0xc6:
        return mp_sized(p, len, off, h, MP_BIN, (size_t)1 << (b - 0xc4));
    case 0xc7:
    case 0xc8:
    case 0xc9:
        if (!mp_sized(p, len, off, h, MP_EXT, (size_t)1 << (b - 0xc7))) {
            return false;
        }
        h->n += 1; /* the ext type byte */
        return true;
    case 0xd9:
    case 0xda:
    case 0xdb:
        return mp_sized(p, len, off, h, MP_STR, (size_t)1 << (b - 0xd9));
    case 0xdc:
    case 0xdd:
        return mp_sized(p, len, off, h, MP_ARRAY, (size_t)2 << (b - 0xdc));
    case 0xde:
    case 0xdf:
        return mp_sized(p, len, off, h, MP_MAP, (size_t)2 << (b - 0xde));
    default: /* 0xc1 */
        return false;
    }
}

/* Containers open at once in any message; ours need three (message, params, a nested map).
 * Below msgpack-c's own stack of 32, so its unpacker never hits that limit. */
#define MP_DEPTH_MAX 16

enum mp_walk { MP_WALK_OK = 0, MP_WALK_BAD, MP_WALK_DEEP };

/* Step over one whole object at p[*off], without recursion. */
static enum mp_walk
mp_skip(const unsigned char *p, size_t len, size_t *off)
{
    uint64_t left[MP_DEPTH_MAX + 1]; /* objects still to read at each open level */
    uint64_t pending = 1;            /* all of them; each takes at least one byte */
    size_t depth = 0;
    size_t o = *off;
    left[0] = 1;
    while (pending > 0) {
        while (left[depth] == 0) {
            depth--;
        }
        struct mp_head h;
        if (!mp_head_read(p, len, &o, &h)) {
            return MP_WALK_BAD;
        }
        left[depth]--;
        pending--;
        uint64_t children = 0;
        if (h.cls == MP_ARRAY) {
            children = h.n;
        } else if (h.cls == MP_MAP) {
            children = 2 * h.n;
        } else if (h.n > len - o) {
            return MP_WALK_BAD;
        } else {
            o += (size_t)h.n;
        }
        if (pending + children > len - o) {
            return MP_WALK_BAD;
        }
        if (children > 0) {
            if (depth == MP_DEPTH_MAX) {
                return MP_WALK_DEEP;
            }
            left[++depth] = children;
            pending += children;
        }
    }
    *off = o;
    return MP_WALK_OK;
}

bool
msg_wire_one(const char *data, size_t len)
{
    size_t end = 0;
    return data != NULL && len > 0 &&
           mp_skip((const unsigned char *)data, len, &end) == MP_WALK_OK && end == len;
}

bool
msg_peek_request_id(const char *data, size_t len, char out[LIMITS_ID_MAX + 1])
{
    const unsigned char *p = (const unsigned char *)data;
    size_t o = 0;
    struct mp_head map;
    if (data == NULL || !mp_head_read(p, len, &o, &map) || map.cls != MP_MAP) {
        return false;
    }
    /* each entry consumes at least two bytes, so this ends within len steps */
    for (uint64_t i = 0; i < map.n; i++) {
        size_t key_at = o;
        struct mp_head key;
        if (!mp_head_read(p, len, &o, &key)) {
            return false;
        }
        bool is_request_id = false;
        if (key.cls == MP_STR) {
            if (key.n > len - o) {
                return false;
            }
            is_request_id = key.n == 10 && memcmp(p + o, "request_id", 10) == 0;
            o += (size_t)key.n;
        } else {
            o = key_at;
            if (mp_skip(p, len, &o) != MP_WALK_OK) {
                return false;
            }
        }
        if (!is_request_id) {
            if (mp_skip(p, len, &o) != MP_WALK_OK) {
                return false;
            }
            continue;
        }
        struct mp_head val;
        if (!mp_head_read(p, len, &o, &val) || val.cls != MP_STR || val.n > len - o ||
            !limits_is_id(data + o, (size_t)val.n)) {
            return false;
        }
        memcpy(out, data + o, (size_t)val.n);
        out[val.n] = '\0';
        return true;
    }
    return false;
}

/* ---- the shapes: one table of fields per message type ---- */

enum field_type {
    F_ID,          /* string, 1-128 bytes of [A-Za-z0-9._:-] */
    F_BRIEF,       /* string <= 16 KiB */
    F_STR,         /* string <= 4 KiB */
    F_BOOL,        /* bool */
    F_INT,         /* int64_t */
    F_INT32,       /* int32_t */
    F_NUM,         /* double from an int or a float */
    F_PHASE,       /* enum phase by name */
    F_WORKER_TYPE, /* enum worker_type by name */
    F_GATE,        /* enum worker_type: "training" or "backtest" */
    F_STATUS,      /* enum completion_status by name */
    F_OPTIONS,     /* const char * (aux: size_t length): a JSON-like map, kept encoded */
    F_RESULT,      /* const struct kv * (aux: size_t count): scalars kept, the rest VALUE_OTHER */
    F_PARAMS,      /* const struct kv * (aux: size_t count): scalars and one level of maps */
    F_BIN,         /* const char * (aux: size_t length): bin <= 64 KiB */
    F_ORIG_SIZE,   /* size_t: a dead letter's original_size */
    F_TRUNCATED,   /* bool on the wire, computed from the sizes */
};

#define FL_REQUIRED 1u
#define FL_HAS 2u /* aux is the offset of a bool that says whether the value is there */

struct field {
    const char *name;
    unsigned char type;  /* enum field_type */
    unsigned char flags; /* FL_* */
    size_t off;          /* offset in struct msg */
    size_t aux;          /* see F_RESULT, F_PARAMS, F_BIN, FL_HAS */
};

struct spec;
typedef enum rc_rc (*spec_check_fn)(const struct spec *s, struct msg *m, uint32_t set,
                                    struct rc_err *err);

struct spec {
    enum msg_topic topic;
    enum msg_kind kind;
    enum event_type event; /* MSG_EVENT only */
    const char *type;      /* the `type` on the wire */
    const struct field *fields;
    size_t n_fields;
    spec_check_fn check; /* rules across fields, after each field passed; may be NULL */
};

/* clang-format off: brace-initializer macros */
#define AT(member) offsetof(struct msg, u.member)
#define FLD(name, type, flags, member)                                                             \
    {                                                                                              \
        name, type, flags, AT(member), 0                                                           \
    }
#define FLD2(name, type, flags, member, aux)                                                       \
    {                                                                                              \
        name, type, flags, AT(member), AT(aux)                                                     \
    }
/* clang-format on */
#define REQ FL_REQUIRED

static const struct field trigger_fields[] = {
    FLD("request_id", F_ID, REQ, trigger.request_id),
    FLD("brief", F_BRIEF, REQ, trigger.brief),
    FLD("model", F_STR, 0, trigger.model),
    FLD("strategy", F_STR, 0, trigger.strategy),
    FLD("strategy_path", F_STR, 0, trigger.strategy_path),
    FLD("bypass_gates", F_BOOL, 0, trigger.bypass_gates),
    FLD("force", F_BOOL, 0, trigger.force),
    FLD2("options", F_OPTIONS, 0, trigger.options, trigger.options_len),
};

static const struct field cancel_fields[] = {
    FLD("research_id", F_ID, REQ, cancel.research_id),
    FLD("request_id", F_ID, 0, cancel.request_id),
    FLD("reason", F_STR, 0, cancel.reason),
};

static const struct field resume_fields[] = {
    FLD("research_id", F_ID, REQ, resume.research_id),
    FLD("request_id", F_ID, 0, resume.request_id),
    FLD("reason", F_STR, 0, resume.reason),
    FLD("force", F_BOOL, 0, resume.force),
};

static const struct field completion_fields[] = {
    FLD("dispatch_id", F_ID, REQ, completion.dispatch_id),
    FLD("research_id", F_ID, REQ, completion.research_id),
    FLD("worker_id", F_ID, REQ, completion.worker_id),
    FLD("status", F_STATUS, REQ, completion.status),
    FLD("error", F_STR, 0, completion.error),
    FLD2("result", F_RESULT, 0, completion.result, completion.n_result),
};

static const struct field dispatch_fields[] = {
    FLD("dispatch_id", F_ID, REQ, dispatch.dispatch_id),
    FLD("research_id", F_ID, REQ, dispatch.research_id),
    FLD("worker_id", F_ID, REQ, dispatch.worker_id),
    FLD("phase", F_PHASE, REQ, dispatch.phase),
    FLD("worker_type", F_WORKER_TYPE, REQ, dispatch.worker_type),
    FLD("attempt", F_INT, REQ, dispatch.attempt),
    FLD2("params", F_PARAMS, REQ, dispatch.params, dispatch.n_params),
};

static const struct field abort_fields[] = {
    FLD("dispatch_id", F_ID, REQ, abort.dispatch_id),
    FLD("research_id", F_ID, REQ, abort.research_id),
    FLD("worker_id", F_ID, REQ, abort.worker_id),
    FLD("reason", F_STR, 0, abort.reason),
};

static const struct field accepted_fields[] = {
    FLD("research_id", F_ID, REQ, event.research_id),
    FLD("request_id", F_ID, REQ, event.request_id),
};

static const struct field rejected_fields[] = {
    FLD("research_id", F_ID, 0, event.research_id),
    FLD("request_id", F_ID, REQ, event.request_id),
    FLD("reason", F_STR, REQ, event.reason),
    FLD("message", F_STR, 0, event.message),
    FLD2("active_count", F_INT, FL_HAS, event.active_count, event.has_capacity),
    FLD2("limit", F_INT, FL_HAS, event.limit, event.has_capacity),
    FLD2("remaining", F_NUM, FL_HAS, event.remaining, event.has_budget),
    FLD2("daily_limit", F_NUM, FL_HAS, event.daily_limit, event.has_budget),
};

static const struct field phase_started_fields[] = {
    FLD("research_id", F_ID, REQ, event.research_id),
    FLD("phase", F_PHASE, REQ, event.phase),
    FLD("dispatch_id", F_ID, REQ, event.dispatch_id),
    FLD("attempt", F_INT, REQ, event.attempt),
};

static const struct field gate_fields[] = {
    FLD("research_id", F_ID, REQ, event.research_id),
    FLD("gate", F_GATE, REQ, event.gate),
    FLD("passed", F_BOOL, REQ, event.passed),
    FLD("reason", F_STR, 0, event.reason),
};

static const struct field redispatched_fields[] = {
    FLD("research_id", F_ID, REQ, event.research_id),
    FLD("phase", F_PHASE, REQ, event.phase),
    FLD("old_dispatch_id", F_ID, REQ, event.old_dispatch_id),
    FLD("dispatch_id", F_ID, REQ, event.dispatch_id),
    FLD("attempt", F_INT, REQ, event.attempt),
    FLD("reason", F_STR, 0, event.reason),
};

static const struct field completed_fields[] = {
    FLD("research_id", F_ID, REQ, event.research_id),
    FLD("strategy_name", F_STR, 0, event.strategy_name),
    FLD("verdict", F_STR, 0, event.verdict),
    FLD("gate_rejection_reason", F_STR, 0, event.gate_rejection_reason),
};

static const struct field failed_fields[] = {
    FLD("research_id", F_ID, REQ, event.research_id),
    FLD("phase", F_PHASE, REQ, event.phase),
    FLD("error", F_STR, 0, event.error),
};

static const struct field cancelled_fields[] = {
    FLD("research_id", F_ID, REQ, event.research_id),
    FLD("phase", F_PHASE, REQ, event.phase),
    FLD("dispatch_id", F_ID, 0, event.dispatch_id),
    FLD("request_id", F_ID, 0, event.request_id),
};

static const struct field cancel_rejected_fields[] = {
    FLD("research_id", F_ID, 0, event.research_id),
    FLD("reason", F_STR, REQ, event.reason),
    FLD("request_id", F_ID, 0, event.request_id),
};

static const struct field resumed_fields[] = {
    FLD("research_id", F_ID, REQ, event.research_id),
    FLD("phase", F_PHASE, REQ, event.phase),
    FLD("request_id", F_ID, 0, event.request_id),
};

static const struct field resume_rejected_fields[] = {
    FLD("research_id", F_ID, 0, event.research_id),
    FLD("reason", F_STR, REQ, event.reason),
    FLD("request_id", F_ID, 0, event.request_id),
};

static const struct field deadletter_fields[] = {
    FLD("reason", F_STR, REQ, deadletter.reason),
    FLD("source_topic", F_STR, REQ, deadletter.source_topic),
    FLD("source_partition", F_INT32, REQ, deadletter.source_partition),
    FLD("source_offset", F_INT, REQ, deadletter.source_offset),
    FLD2("original", F_BIN, REQ, deadletter.original, deadletter.original_len),
    FLD("original_size", F_ORIG_SIZE, REQ, deadletter.original_size),
    FLD("truncated", F_TRUNCATED, 0, deadletter.truncated),
};

static bool
field_is_set(const struct spec *s, uint32_t set, const char *name)
{
    for (size_t i = 0; i < s->n_fields; i++) {
        if (strcmp(s->fields[i].name, name) == 0) {
            return (set & (UINT32_C(1) << i)) != 0;
        }
    }
    return false;
}

static enum rc_rc
check_completion(const struct spec *s, struct msg *m, uint32_t set, struct rc_err *err)
{
    (void)s;
    (void)set;
    if (m->u.completion.status == COMPLETION_COMPLETED && m->u.completion.result == NULL) {
        return INVALID(err, MSG_INVALID_MISSING_KEY, "result: required");
    }
    return RC_OK;
}

static enum rc_rc
check_dispatch(const struct spec *s, struct msg *m, uint32_t set, struct rc_err *err)
{
    (void)s;
    (void)set;
    const struct dispatch *d = &m->u.dispatch;
    if (!phase_is_worked(d->phase)) {
        return INVALID(err, MSG_INVALID_BAD_VALUE, "phase: \"%s\" is not a worked phase",
                          phase_name(d->phase));
    }
    if (d->worker_type != phase_worker_type(d->phase)) {
        return INVALID(err, MSG_INVALID_BAD_VALUE, "worker_type: must be \"%s\" for phase %s",
                          worker_type_name(phase_worker_type(d->phase)), phase_name(d->phase));
    }
    if (d->attempt < 1) {
        return INVALID(err, MSG_INVALID_BAD_VALUE, "attempt: must be >= 1");
    }
    return RC_OK;
}

static enum rc_rc
check_attempt(const struct spec *s, struct msg *m, uint32_t set, struct rc_err *err)
{
    (void)s;
    (void)set;
    if (m->u.event.attempt < 1) {
        return INVALID(err, MSG_INVALID_BAD_VALUE, "attempt: must be >= 1");
    }
    return RC_OK;
}

/* The figures come in pairs: active_count with limit, remaining with daily_limit. */
static enum rc_rc
check_rejected(const struct spec *s, struct msg *m, uint32_t set, struct rc_err *err)
{
    static const char *const pairs[2][2] = {{"active_count", "limit"},
                                            {"remaining", "daily_limit"}};
    bool *has[2] = {&m->u.event.has_capacity, &m->u.event.has_budget};
    for (size_t i = 0; i < 2; i++) {
        bool first = field_is_set(s, set, pairs[i][0]);
        bool second = field_is_set(s, set, pairs[i][1]);
        if (first != second) {
            return INVALID(err, MSG_INVALID_MISSING_KEY, "%s: required with %s", pairs[i][first ? 1 : 0],
                              pairs[i][first ? 0 : 1]);
        }
        *has[i] = first;
    }
    return RC_OK;
}

static enum rc_rc
check_deadletter(const struct spec *s, struct msg *m, uint32_t set, struct rc_err *err)
{
    (void)s;
    (void)set;
    struct deadletter *d = &m->u.deadletter;
    if (d->original_size < d->original_len) {
        return INVALID(err, MSG_INVALID_BAD_VALUE, "original_size: smaller than original");
    }
    d->truncated = d->original_size > d->original_len;
    return RC_OK;
}

/* clang-format off: brace-initializer macros */
#define SPEC(topic, kind, ev, type, fields, fn)                                                    \
    {                                                                                              \
        topic, kind, ev, type, fields, N_OF(fields), fn                                            \
    }
#define EVENT(ev, type, fields, check) SPEC(MSG_TOPIC_EVENTS, MSG_EVENT, ev, type, fields, check)
/* clang-format on */

static const struct spec specs[] = {
    SPEC(MSG_TOPIC_TRIGGERS, MSG_TRIGGER, 0, "trigger", trigger_fields, NULL),
    SPEC(MSG_TOPIC_TRIGGERS, MSG_CANCEL, 0, "cancel", cancel_fields, NULL),
    SPEC(MSG_TOPIC_TRIGGERS, MSG_RESUME, 0, "resume", resume_fields, NULL),
    SPEC(MSG_TOPIC_COMPLETIONS, MSG_COMPLETION, 0, "completion", completion_fields,
         check_completion),
    SPEC(MSG_TOPIC_DISPATCH, MSG_DISPATCH, 0, "dispatch", dispatch_fields, check_dispatch),
    SPEC(MSG_TOPIC_DISPATCH, MSG_ABORT, 0, "abort", abort_fields, NULL),
    EVENT(EVENT_ACCEPTED, "accepted", accepted_fields, NULL),
    EVENT(EVENT_REJECTED, "rejected", rejected_fields, check_rejected),
    EVENT(EVENT_PHASE_STARTED, "phase_started", phase_started_fields, check_attempt),
    EVENT(EVENT_GATE, "gate", gate_fields, NULL),
    EVENT(EVENT_REDISPATCHED, "redispatched", redispatched_fields, check_attempt),
    EVENT(EVENT_COMPLETED, "completed", completed_fields, NULL),
    EVENT(EVENT_FAILED, "failed", failed_fields, NULL),
    EVENT(EVENT_CANCELLED, "cancelled", cancelled_fields, NULL),
    EVENT(EVENT_CANCEL_REJECTED, "cancel_rejected", cancel_rejected_fields, NULL),
    EVENT(EVENT_RESUMED, "resumed", resumed_fields, NULL),
    EVENT(EVENT_RESUME_REJECTED, "resume_rejected", resume_rejected_fields, NULL),
    SPEC(MSG_TOPIC_DEADLETTER, MSG_DEADLETTER, 0, "deadletter", deadletter_fields,
         check_deadletter),
};

static const char *const status_names[] = {
    [COMPLETION_COMPLETED] = "completed",
    [COMPLETION_FAILED] = "failed",
    [COMPLETION_RELEASED] = "released",
};

static const char *const kind_names[] = {
    [MSG_TRIGGER] = "trigger",       [MSG_CANCEL] = "cancel", [MSG_COMPLETION] = "completion",
    [MSG_DISPATCH] = "dispatch",     [MSG_ABORT] = "abort",   [MSG_EVENT] = "event",
    [MSG_DEADLETTER] = "deadletter", [MSG_RESUME] = "resume",
};

static const struct spec *
spec_of(const struct msg *m)
{
    for (size_t i = 0; i < N_OF(specs); i++) {
        if (specs[i].kind == m->kind &&
            (m->kind != MSG_EVENT || specs[i].event == m->u.event.type)) {
            return &specs[i];
        }
    }
    RC_ASSERT(!"msg: no shape for this kind or event type");
    return NULL;
}

const char *
msg_kind_name(enum msg_kind kind)
{
    RC_ASSERT((size_t)kind < N_OF(kind_names));
    return kind_names[kind];
}

const char *
completion_status_name(enum completion_status s)
{
    RC_ASSERT((size_t)s < N_OF(status_names));
    return status_names[s];
}

const char *
event_type_name(enum event_type type)
{
    RC_ASSERT((unsigned)type < EVENT_TYPE_COUNT);
    for (size_t i = 0; i < N_OF(specs); i++) {
        if (specs[i].kind == MSG_EVENT && specs[i].event == type) {
            return specs[i].type;
        }
    }
    RC_ASSERT(!"msg: event type without a name");
    return NULL;
}

enum rc_rc
event_type_parse(const char *name, enum event_type *out)
{
    if (name == NULL) {
        return RC_EINVAL;
    }
    for (size_t i = 0; i < N_OF(specs); i++) {
        if (specs[i].kind == MSG_EVENT && strcmp(specs[i].type, name) == 0) {
            *out = specs[i].event;
            return RC_OK;
        }
    }
    return RC_EINVAL;
}

/* ---- decoding ---- */

static bool
str_is(const msgpack_object *o, const char *s)
{
    size_t len = strlen(s);
    return o->type == MSGPACK_OBJECT_STR && o->via.str.size == len &&
           memcmp(o->via.str.ptr, s, len) == 0;
}

/* Why a string breaks the text rule: not UTF-8, or a NUL byte in it. */
static enum rc_rc
bad_text(const char *name, const char *s, size_t len, struct rc_err *err)
{
    if (memchr(s, '\0', len) != NULL) {
        return INVALID(err, MSG_INVALID_BAD_VALUE, "%s: contains a NUL byte", name);
    }
    return INVALID(err, MSG_INVALID_WRONG_TYPE, "%s: not valid UTF-8", name);
}

/* A non-empty string field: checked, then copied into the arena. */
static enum rc_rc
dec_text(const char *name, const msgpack_object *o, enum field_type t, struct arena *a,
         const char **out, struct rc_err *err)
{
    if (o->type != MSGPACK_OBJECT_STR) {
        return INVALID(err, MSG_INVALID_WRONG_TYPE, "%s: must be a string", name);
    }
    const char *s = o->via.str.ptr;
    size_t len = o->via.str.size;
    if (t == F_ID) {
        if (!limits_is_id(s, len)) {
            return INVALID(err, MSG_INVALID_BAD_VALUE, "%s: must be 1-%d bytes of [A-Za-z0-9._:-]", name,
                              LIMITS_ID_MAX);
        }
    } else {
        size_t max = t == F_BRIEF ? LIMITS_BRIEF_MAX : LIMITS_STRING_MAX;
        if (len > max) {
            return INVALID(err, MSG_INVALID_TOO_LARGE, "%s: longer than %zu bytes", name, max);
        }
        if (!limits_is_text(s, len)) {
            return bad_text(name, s, len, err);
        }
    }
    *out = arena_strndup(a, s, len);
    return RC_OK;
}

static enum rc_rc
dec_int(const char *name, const msgpack_object *o, int64_t *out, struct rc_err *err)
{
    if (o->type == MSGPACK_OBJECT_POSITIVE_INTEGER) {
        if (o->via.u64 > INT64_MAX) {
            return INVALID(err, MSG_INVALID_BAD_VALUE, "%s: out of range", name);
        }
        *out = (int64_t)o->via.u64;
        return RC_OK;
    }
    if (o->type == MSGPACK_OBJECT_NEGATIVE_INTEGER) {
        *out = o->via.i64;
        return RC_OK;
    }
    return INVALID(err, MSG_INVALID_WRONG_TYPE, "%s: must be an integer", name);
}

static enum rc_rc
dec_num(const char *name, const msgpack_object *o, double *out, struct rc_err *err)
{
    switch (o->type) {
    case MSGPACK_OBJECT_POSITIVE_INTEGER:
        *out = (double)o->via.u64;
        return RC_OK;
    case MSGPACK_OBJECT_NEGATIVE_INTEGER:
        *out = (double)o->via.i64;
        return RC_OK;
    case MSGPACK_OBJECT_FLOAT32:
    case MSGPACK_OBJECT_FLOAT64:
        *out = o->via.f64;
        return RC_OK;
    default:
        return INVALID(err, MSG_INVALID_WRONG_TYPE, "%s: must be a number", name);
    }
}

/* A value of a result or params map. Strings beyond `max_str` bytes or not text, arrays, bin,
 * ext and maps come back as VALUE_OTHER. */
static struct value
dec_scalar(const msgpack_object *o, struct arena *a, size_t max_str)
{
    struct value v = value_nil();
    switch (o->type) {
    case MSGPACK_OBJECT_NIL:
        break;
    case MSGPACK_OBJECT_BOOLEAN:
        v = value_bool(o->via.boolean);
        break;
    case MSGPACK_OBJECT_POSITIVE_INTEGER:
        /* a number all the same: past int64 it is kept as a double */
        v = o->via.u64 <= INT64_MAX ? value_int((int64_t)o->via.u64)
                                    : value_float((double)o->via.u64);
        break;
    case MSGPACK_OBJECT_NEGATIVE_INTEGER:
        v = value_int(o->via.i64);
        break;
    case MSGPACK_OBJECT_FLOAT32:
    case MSGPACK_OBJECT_FLOAT64:
        v = value_float(o->via.f64);
        break;
    case MSGPACK_OBJECT_STR:
        if (o->via.str.size == 0) {
            break;
        }
        if (o->via.str.size <= max_str && limits_is_text(o->via.str.ptr, o->via.str.size)) {
            v = value_str(arena_strndup(a, o->via.str.ptr, o->via.str.size));
        } else {
            v.kind = VALUE_OTHER;
        }
        break;
    default:
        v.kind = VALUE_OTHER;
        break;
    }
    return v;
}

/* Keys of result and params maps: 1..4096 bytes of text. */
static bool
key_ok(const msgpack_object *k)
{
    return k->type == MSGPACK_OBJECT_STR && k->via.str.size > 0 &&
           k->via.str.size <= LIMITS_STRING_MAX && limits_is_text(k->via.str.ptr, k->via.str.size);
}

static bool
key_in(const struct kv *kv, size_t n, const msgpack_object *k)
{
    for (size_t i = 0; i < n; i++) {
        if (str_is(k, kv[i].key)) {
            return true;
        }
    }
    return false;
}

static struct kv *
kv_array(struct arena *a, uint32_t n)
{
    return arena_alloc(a, (n > 0 ? n : 1) * sizeof(struct kv));
}

/* A phase result: never invalid because of what it holds (that is result_check's job), only
 * because of its size. Entries whose key is not text, and repeated keys, are dropped. */
static enum rc_rc
dec_result(const char *name, const msgpack_object *o, struct arena *a, const struct kv **out,
           size_t *n_out, struct rc_err *err)
{
    if (o->type != MSGPACK_OBJECT_MAP) {
        return INVALID(err, MSG_INVALID_WRONG_TYPE, "%s: must be a map", name);
    }
    const msgpack_object_map *map = &o->via.map;
    if (map->size > MSG_MAP_MAX) {
        return INVALID(err, MSG_INVALID_TOO_LARGE, "%s: more than %d entries", name, MSG_MAP_MAX);
    }
    struct kv *kv = kv_array(a, map->size);
    size_t n = 0;
    for (uint32_t i = 0; i < map->size; i++) {
        const msgpack_object *k = &map->ptr[i].key;
        if (!key_ok(k) || key_in(kv, n, k)) {
            continue;
        }
        kv[n].key = arena_strndup(a, k->via.str.ptr, k->via.str.size);
        kv[n].val = dec_scalar(&map->ptr[i].val, a, LIMITS_STRING_MAX);
        n++;
    }
    *out = kv;
    *n_out = n;
    return RC_OK;
}

static int
append_cb(void *data, const char *bytes, size_t len)
{
    buf_append(data, bytes, len);
    return 0;
}

/* An options map (§1, §3): a map that JSON can hold (it is stored as JSON), at most
 * LIMITS_OPTIONS_MAX bytes encoded; kept encoded, as it came, in the arena. */
static enum rc_rc
dec_options(const char *name, const msgpack_object *o, struct arena *a, const char **out,
            size_t *out_len, struct rc_err *err)
{
    if (o->type != MSGPACK_OBJECT_MAP) {
        return INVALID(err, MSG_INVALID_WRONG_TYPE, "%s: must be a map", name);
    }
    struct buf mp = BUF_INIT, json = BUF_INIT;
    msgpack_packer pk;
    msgpack_packer_init(&pk, &mp, append_cb);
    msgpack_pack_object(&pk, *o);
    enum rc_rc rc = RC_OK;
    struct rc_err why = RC_ERR_INIT;
    if (mp.len > LIMITS_OPTIONS_MAX) {
        rc = INVALID(err, MSG_INVALID_TOO_LARGE, "%s: longer than %d bytes encoded", name,
                     LIMITS_OPTIONS_MAX);
    } else if (json_from_msgpack(mp.data, mp.len, &json, &why) != RC_OK) {
        rc = INVALID(err, MSG_INVALID_BAD_VALUE, "%s: %s", name, why.msg);
    } else {
        char *copy = arena_alloc(a, mp.len);
        memcpy(copy, mp.data, mp.len);
        *out = copy;
        *out_len = mp.len;
    }
    buf_release(&mp);
    buf_release(&json);
    return rc;
}

/* One params map; `outer` is NULL at the top, else the key of the map it is nested in. A nested
 * map is read by one more call with outer set, which cannot nest again. */
static enum rc_rc
dec_param_map(const char *outer, const msgpack_object_map *map, struct arena *a,
              const struct kv **out, size_t *n_out, struct rc_err *err)
{
    const char *prefix = outer != NULL ? outer : "";
    const char *dot = outer != NULL ? "." : "";
    if (map->size > MSG_MAP_MAX) {
        return INVALID(err, MSG_INVALID_TOO_LARGE, "params%s%s: more than %d entries", dot, prefix,
                          MSG_MAP_MAX);
    }
    struct kv *kv = kv_array(a, map->size);
    for (uint32_t i = 0; i < map->size; i++) {
        const msgpack_object *k = &map->ptr[i].key;
        const msgpack_object *o = &map->ptr[i].val;
        if (k->type != MSGPACK_OBJECT_STR) {
            return INVALID(err, MSG_INVALID_BAD_VALUE, "params%s%s: map key is not a string", dot, prefix);
        }
        if (!key_ok(k)) {
            return INVALID(err, MSG_INVALID_BAD_VALUE, "params%s%s: keys must be 1-%d bytes of UTF-8", dot,
                              prefix, LIMITS_STRING_MAX);
        }
        if (key_in(kv, i, k)) {
            return INVALID(err, MSG_INVALID_BAD_VALUE, "params%s%s: duplicate key \"%.*s\"", dot, prefix,
                              (int)k->via.str.size, k->via.str.ptr);
        }
        const char *key = arena_strndup(a, k->via.str.ptr, k->via.str.size);
        kv[i].key = key;
        if (outer == NULL && strcmp(key, PARAM_OPTIONS) == 0) {
            /* the trigger's options, any depth: carried, not read */
            kv[i].val = value_nil();
            if (o->type != MSGPACK_OBJECT_NIL) {
                const char *raw = NULL;
                size_t raw_len = 0;
                enum rc_rc rc = dec_options("params.options", o, a, &raw, &raw_len, err);
                if (rc != RC_OK) {
                    return rc;
                }
                kv[i].val = value_raw(raw, raw_len);
            }
            continue;
        }
        if (o->type == MSGPACK_OBJECT_MAP && outer == NULL) {
            const struct kv *inner = NULL;
            size_t n_inner = 0;
            enum rc_rc rc = dec_param_map(key, &o->via.map, a, &inner, &n_inner, err);
            if (rc != RC_OK) {
                return rc;
            }
            kv[i].val = value_map(inner, n_inner);
            continue;
        }
        size_t max =
            outer == NULL && strcmp(key, "brief") == 0 ? LIMITS_BRIEF_MAX : LIMITS_STRING_MAX;
        kv[i].val = dec_scalar(o, a, max);
        if (kv[i].val.kind != VALUE_OTHER) {
            continue;
        }
        if (o->type == MSGPACK_OBJECT_MAP) {
            return INVALID(err, MSG_INVALID_BAD_VALUE, "params%s%s.%s: nested deeper than one map", dot,
                              prefix, key);
        }
        if (o->type != MSGPACK_OBJECT_STR) {
            return INVALID(err, MSG_INVALID_WRONG_TYPE, "params%s%s.%s: must be a scalar or a map", dot,
                              prefix, key);
        }
        if (o->via.str.size > max) {
            return INVALID(err, MSG_INVALID_TOO_LARGE, "params%s%s.%s: longer than %zu bytes", dot, prefix,
                              key, max);
        }
        return INVALID(err, MSG_INVALID_WRONG_TYPE, "params%s%s.%s: not valid UTF-8", dot, prefix, key);
    }
    *out = kv;
    *n_out = map->size;
    return RC_OK;
}

static bool
is_string_field(enum field_type t)
{
    return t == F_ID || t == F_BRIEF || t == F_STR || t == F_PHASE || t == F_WORKER_TYPE ||
           t == F_GATE || t == F_STATUS;
}

/* Decode the names of phases, worker types, gates and statuses. */
static enum rc_rc
dec_name(const struct field *f, const msgpack_object *o, unsigned char *at, struct rc_err *err)
{
    if (o->type != MSGPACK_OBJECT_STR) {
        return INVALID(err, MSG_INVALID_WRONG_TYPE, "%s: must be a string", f->name);
    }
    switch (f->type) {
    case F_PHASE:
        for (size_t i = 0; i < PHASE_COUNT; i++) {
            if (str_is(o, phase_name((enum phase)i))) {
                *(enum phase *)at = (enum phase)i;
                return RC_OK;
            }
        }
        return INVALID(err, MSG_INVALID_BAD_VALUE, "%s: not a phase name", f->name);
    case F_WORKER_TYPE:
        for (size_t i = 0; i < WORKER_TYPE_COUNT; i++) {
            if (str_is(o, worker_type_name((enum worker_type)i))) {
                *(enum worker_type *)at = (enum worker_type)i;
                return RC_OK;
            }
        }
        return INVALID(err, MSG_INVALID_BAD_VALUE, "%s: not a worker type", f->name);
    case F_GATE:
        if (str_is(o, "training") || str_is(o, "backtest")) {
            *(enum worker_type *)at = str_is(o, "training") ? WORKER_TRAINING : WORKER_BACKTEST;
            return RC_OK;
        }
        return INVALID(err, MSG_INVALID_BAD_VALUE, "%s: must be \"training\" or \"backtest\"", f->name);
    default: /* F_STATUS */
        for (size_t i = 0; i < N_OF(status_names); i++) {
            if (str_is(o, status_names[i])) {
                *(enum completion_status *)at = (enum completion_status)i;
                return RC_OK;
            }
        }
        return INVALID(err, MSG_INVALID_BAD_VALUE,
                       "%s: must be \"completed\", \"failed\" or \"released\"", f->name);
    }
}

static enum rc_rc
dec_intish(const struct field *f, const msgpack_object *o, unsigned char *at, struct rc_err *err)
{
    int64_t i = 0;
    enum rc_rc rc = dec_int(f->name, o, &i, err);
    if (rc != RC_OK) {
        return rc;
    }
    if (f->type == F_INT32) {
        if (i < INT32_MIN || i > INT32_MAX) {
            return INVALID(err, MSG_INVALID_BAD_VALUE, "%s: out of range", f->name);
        }
        *(int32_t *)at = (int32_t)i;
    } else if (f->type == F_ORIG_SIZE) {
        if (i < 0) {
            return INVALID(err, MSG_INVALID_BAD_VALUE, "%s: must be >= 0", f->name);
        }
        *(size_t *)at = (size_t)i;
    } else {
        *(int64_t *)at = i;
    }
    return RC_OK;
}

static enum rc_rc
dec_bin(const struct field *f, const msgpack_object *o, unsigned char *base, struct arena *a,
        struct rc_err *err)
{
    if (o->type != MSGPACK_OBJECT_BIN) {
        return INVALID(err, MSG_INVALID_WRONG_TYPE, "%s: must be binary (bin)", f->name);
    }
    if (o->via.bin.size > LIMITS_DEADLETTER_ORIGINAL) {
        return INVALID(err, MSG_INVALID_TOO_LARGE, "%s: longer than %d bytes", f->name,
                          LIMITS_DEADLETTER_ORIGINAL);
    }
    char *copy = arena_alloc(a, o->via.bin.size);
    if (o->via.bin.size > 0) {
        memcpy(copy, o->via.bin.ptr, o->via.bin.size);
    }
    *(const char **)(base + f->off) = copy;
    *(size_t *)(base + f->aux) = o->via.bin.size;
    return RC_OK;
}

/* Decode one field's value into the message; *present tells whether it counts as there (nil
 * and "" do not). */
static enum rc_rc
dec_field(const struct field *f, const msgpack_object *o, unsigned char *base, struct arena *a,
          bool *present, struct rc_err *err)
{
    unsigned char *at = base + f->off;
    *present = false;
    if (o->type == MSGPACK_OBJECT_NIL ||
        (is_string_field(f->type) && o->type == MSGPACK_OBJECT_STR && o->via.str.size == 0)) {
        return RC_OK;
    }
    enum rc_rc rc = RC_OK;
    switch ((enum field_type)f->type) {
    case F_ID:
    case F_BRIEF:
    case F_STR:
        rc = dec_text(f->name, o, f->type, a, (const char **)at, err);
        break;
    case F_BOOL:
    case F_TRUNCATED:
        if (o->type != MSGPACK_OBJECT_BOOLEAN) {
            return INVALID(err, MSG_INVALID_WRONG_TYPE, "%s: must be a boolean", f->name);
        }
        *(bool *)at = o->via.boolean;
        break;
    case F_INT:
    case F_INT32:
    case F_ORIG_SIZE:
        rc = dec_intish(f, o, at, err);
        break;
    case F_NUM:
        /* `at` is the address of a double member (offsetof), so the cast is exact. */
        /* cppcheck-suppress invalidPointerCast */
        rc = dec_num(f->name, o, (double *)at, err);
        break;
    case F_PHASE:
    case F_WORKER_TYPE:
    case F_GATE:
    case F_STATUS:
        rc = dec_name(f, o, at, err);
        break;
    case F_RESULT:
        rc = dec_result(f->name, o, a, (const struct kv **)at, (size_t *)(base + f->aux), err);
        break;
    case F_PARAMS:
        if (o->type != MSGPACK_OBJECT_MAP) {
            return INVALID(err, MSG_INVALID_WRONG_TYPE, "%s: must be a map", f->name);
        }
        rc = dec_param_map(NULL, &o->via.map, a, (const struct kv **)at, (size_t *)(base + f->aux),
                           err);
        break;
    case F_BIN:
        rc = dec_bin(f, o, base, a, err);
        break;
    case F_OPTIONS:
        rc = dec_options(f->name, o, a, (const char **)at, (size_t *)(base + f->aux), err);
        break;
    }
    *present = rc == RC_OK;
    return rc;
}

static enum rc_rc
dec_version(const msgpack_object *v, struct rc_err *err)
{
    if (v == NULL || v->type == MSGPACK_OBJECT_NIL) {
        return RC_OK;
    }
    if (v->type == MSGPACK_OBJECT_POSITIVE_INTEGER) {
        if (v->via.u64 == LIMITS_SCHEMA_VERSION) {
            return RC_OK;
        }
        return INVALID(err, MSG_INVALID_BAD_VALUE, "v: unsupported schema version %" PRIu64 " (want %d)",
                          v->via.u64, LIMITS_SCHEMA_VERSION);
    }
    if (v->type == MSGPACK_OBJECT_NEGATIVE_INTEGER) {
        return INVALID(err, MSG_INVALID_BAD_VALUE, "v: unsupported schema version %" PRId64 " (want %d)",
                          v->via.i64, LIMITS_SCHEMA_VERSION);
    }
    return INVALID(err, MSG_INVALID_WRONG_TYPE, "v: must be an integer");
}

/* Quoting a type name in an error is only safe for short plain ASCII. */
static bool
is_plain(const char *s, size_t len)
{
    if (len > 64) {
        return false;
    }
    for (size_t i = 0; i < len; i++) {
        if (s[i] < 0x20 || s[i] > 0x7e || s[i] == '"' || s[i] == '\\') {
            return false;
        }
    }
    return true;
}

static enum rc_rc
dec_type(enum msg_topic topic, const msgpack_object *t, const struct spec **out, struct rc_err *err)
{
    if (t == NULL || t->type == MSGPACK_OBJECT_NIL ||
        (t->type == MSGPACK_OBJECT_STR && t->via.str.size == 0)) {
        return INVALID(err, MSG_INVALID_MISSING_KEY, "type: required");
    }
    if (t->type != MSGPACK_OBJECT_STR) {
        return INVALID(err, MSG_INVALID_WRONG_TYPE, "type: must be a string");
    }
    for (size_t i = 0; i < N_OF(specs); i++) {
        if (specs[i].topic == topic && str_is(t, specs[i].type)) {
            *out = &specs[i];
            return RC_OK;
        }
    }
    if (is_plain(t->via.str.ptr, t->via.str.size)) {
        return INVALID(err, MSG_INVALID_BAD_VALUE, "type: \"%.*s\" is not a message type of this topic",
                          (int)t->via.str.size, t->via.str.ptr);
    }
    return INVALID(err, MSG_INVALID_BAD_VALUE, "type: not a message type of this topic");
}

static int
field_index(const struct spec *s, const msgpack_object *key)
{
    for (size_t i = 0; i < s->n_fields; i++) {
        if (str_is(key, s->fields[i].name)) {
            return (int)i;
        }
    }
    return -1;
}

/* Find the common keys (type, v, ts), checking on the way that every key is a string. */
static enum rc_rc
dec_common(const msgpack_object_map *map, const msgpack_object *common[3], struct rc_err *err)
{
    static const char *const names[3] = {"type", "v", "ts"};
    for (uint32_t i = 0; i < map->size; i++) {
        const msgpack_object *k = &map->ptr[i].key;
        if (k->type != MSGPACK_OBJECT_STR) {
            return INVALID(err, MSG_INVALID_MALFORMED, "message: map key is not a string");
        }
        for (size_t j = 0; j < 3; j++) {
            if (!str_is(k, names[j])) {
                continue;
            }
            if (common[j] != NULL) {
                return INVALID(err, MSG_INVALID_BAD_VALUE, "%s: duplicate key", names[j]);
            }
            common[j] = &map->ptr[i].val;
        }
    }
    return RC_OK;
}

static enum rc_rc
dec_map(enum msg_topic topic, const msgpack_object_map *map, struct arena *a, struct msg *m,
        struct rc_err *err)
{
    const msgpack_object *common[3] = {NULL, NULL, NULL}; /* type, v, ts */
    const struct spec *s = NULL;
    enum rc_rc rc = dec_common(map, common, err);
    if (rc == RC_OK) {
        rc = dec_version(common[1], err);
    }
    if (rc == RC_OK) {
        rc = dec_type(topic, common[0], &s, err);
    }
    if (rc == RC_OK && common[2] != NULL && common[2]->type != MSGPACK_OBJECT_NIL) {
        rc = dec_int("ts", common[2], &m->ts_ms, err);
    }
    if (rc != RC_OK) {
        return rc;
    }
    m->kind = s->kind;
    if (s->kind == MSG_EVENT) {
        m->u.event.type = s->event;
    }
    uint32_t seen = 0; /* keys met, to refuse duplicates */
    uint32_t set = 0;  /* keys with a value (not nil, not "") */
    for (uint32_t i = 0; i < map->size; i++) {
        int idx = field_index(s, &map->ptr[i].key);
        if (idx < 0) {
            continue; /* unknown keys are ignored */
        }
        uint32_t bit = UINT32_C(1) << idx;
        if ((seen & bit) != 0) {
            return INVALID(err, MSG_INVALID_BAD_VALUE, "%s: duplicate key", s->fields[idx].name);
        }
        seen |= bit;
        bool present;
        rc = dec_field(&s->fields[idx], &map->ptr[i].val, (unsigned char *)m, a, &present, err);
        if (rc != RC_OK) {
            return rc;
        }
        set |= present ? bit : 0;
    }
    for (size_t i = 0; i < s->n_fields; i++) {
        if ((s->fields[i].flags & FL_REQUIRED) != 0 && (set & (UINT32_C(1) << i)) == 0) {
            return INVALID(err, MSG_INVALID_MISSING_KEY, "%s: required", s->fields[i].name);
        }
    }
    return s->check != NULL ? s->check(s, m, set, err) : RC_OK;
}

/* Check the bytes are exactly one map of sane size, then unpack them. */
static enum rc_rc
unpack_one(const char *data, size_t len, msgpack_unpacked *up, struct rc_err *err)
{
    if (len > LIMITS_MESSAGE_MAX) {
        return INVALID(err, MSG_INVALID_TOO_LARGE, "message: larger than %d bytes", LIMITS_MESSAGE_MAX);
    }
    if (data == NULL || len == 0) {
        return INVALID(err, MSG_INVALID_MALFORMED, "message: empty");
    }
    const unsigned char *p = (const unsigned char *)data;
    bool map_header = (p[0] >= 0x80 && p[0] <= 0x8f) || p[0] == 0xde || p[0] == 0xdf;
    if (!map_header) {
        return INVALID(err, MSG_INVALID_MALFORMED, "message: not a msgpack map");
    }
    size_t end = 0;
    enum mp_walk walk = mp_skip(p, len, &end);
    if (walk == MP_WALK_DEEP) {
        return INVALID(err, MSG_INVALID_MALFORMED, "message: nested deeper than %d levels", MP_DEPTH_MAX);
    }
    if (walk != MP_WALK_OK) {
        return INVALID(err, MSG_INVALID_MALFORMED, "message: truncated or malformed msgpack");
    }
    if (end != len) {
        return INVALID(err, MSG_INVALID_MALFORMED, "message: trailing bytes after the map");
    }
    size_t off = 0;
    msgpack_unpack_return ret = msgpack_unpack_next(up, data, len, &off);
    if (ret != MSGPACK_UNPACK_SUCCESS || off != len || up->data.type != MSGPACK_OBJECT_MAP) {
        return INVALID(err, MSG_INVALID_MALFORMED, "message: malformed msgpack");
    }
    return RC_OK;
}

/* Unpack one map and decode it: as a message of `topic`, or (result_only) as a completion's
 * `result` alone. */
static enum rc_rc
decode(enum msg_topic topic, bool result_only, const char *data, size_t len, struct msg *out,
       struct rc_err *err)
{
    msgpack_unpacked up;
    struct msg m = MSG_INIT;
    struct arena *a = NULL;

    msgpack_unpacked_init(&up);
    enum rc_rc rc = unpack_one(data, len, &up, err);
    if (rc != RC_OK) {
        goto out;
    }
    a = xcalloc(1, sizeof(*a));
    if (result_only) {
        m.kind = MSG_COMPLETION;
        m.u.completion.status = COMPLETION_COMPLETED;
        rc = dec_result("result", &up.data, a, &m.u.completion.result, &m.u.completion.n_result,
                        err);
    } else {
        rc = dec_map(topic, &up.data.via.map, a, &m, err);
    }
    if (rc == RC_OK) {
        m.mem = a;
        a = NULL; /* owned by the message now */
        *out = m;
    }
out:
    arena_free(a);
    msgpack_unpacked_destroy(&up);
    return rc;
}

enum rc_rc
msg_decode(enum msg_topic topic, const char *data, size_t len, struct msg *out, struct rc_err *err)
{
    return decode(topic, false, data, len, out, err);
}

enum rc_rc
msg_decode_result(const char *data, size_t len, struct msg *out, struct rc_err *err)
{
    return decode(MSG_TOPIC_COMPLETIONS, true, data, len, out, err);
}

void
msg_release(struct msg *m)
{
    if (m == NULL) {
        return;
    }
    arena_free(m->mem);
    *m = (struct msg)MSG_INIT;
}

/* ---- encoding ---- */

/* NULL and "" are written as nil. */
static void
enc_str(msgpack_packer *pk, const char *s)
{
    size_t len = s != NULL ? strlen(s) : 0;
    if (len == 0) {
        msgpack_pack_nil(pk);
        return;
    }
    msgpack_pack_str(pk, len);
    msgpack_pack_str_body(pk, s, len);
}

static void
enc_key(msgpack_packer *pk, const char *s)
{
    size_t len = s != NULL ? strlen(s) : 0;
    msgpack_pack_str(pk, len);
    if (len > 0) {
        msgpack_pack_str_body(pk, s, len);
    }
}

static void
enc_bool(msgpack_packer *pk, bool b)
{
    if (b) {
        msgpack_pack_true(pk);
    } else {
        msgpack_pack_false(pk);
    }
}

/* A result or params map; a map value nests only when `nest` (one level), and VALUE_OTHER is
 * written as an empty array so that it decodes as VALUE_OTHER again. */
static void
enc_map(msgpack_packer *pk, const struct kv *kv, size_t n, bool nest)
{
    msgpack_pack_map(pk, n);
    for (size_t i = 0; i < n; i++) {
        const struct value *v = &kv[i].val;
        enc_key(pk, kv[i].key);
        switch (v->kind) {
        case VALUE_NIL:
            msgpack_pack_nil(pk);
            break;
        case VALUE_BOOL:
            enc_bool(pk, v->b);
            break;
        case VALUE_INT:
            msgpack_pack_int64(pk, v->i);
            break;
        case VALUE_FLOAT:
            msgpack_pack_double(pk, v->f);
            break;
        case VALUE_STR:
            enc_str(pk, v->s);
            break;
        case VALUE_MAP:
            if (nest) {
                enc_map(pk, v->map, v->map_len, false);
                break;
            }
            msgpack_pack_array(pk, 0);
            break;
        case VALUE_OTHER:
            msgpack_pack_array(pk, 0);
            break;
        case VALUE_RAW:
            buf_append(pk->data, v->s, v->raw_len);
            break;
        }
    }
}

/* Bytes of a dead letter's original that are written. */
static size_t
dl_kept(const struct deadletter *dl)
{
    if (dl->original == NULL) {
        return 0;
    }
    return dl->original_len < LIMITS_DEADLETTER_ORIGINAL ? dl->original_len
                                                         : LIMITS_DEADLETTER_ORIGINAL;
}

/* The input's full size: never less than the bytes at hand. */
static size_t
dl_full(const struct deadletter *dl)
{
    return dl->original_size > dl->original_len ? dl->original_size : dl->original_len;
}

static void
enc_field(msgpack_packer *pk, const struct field *f, const struct msg *m)
{
    const unsigned char *base = (const unsigned char *)m;
    const unsigned char *at = base + f->off;
    const struct deadletter *dl = &m->u.deadletter; /* read only for its own types */

    if ((f->flags & FL_HAS) != 0 && !*(const bool *)(base + f->aux)) {
        msgpack_pack_nil(pk);
        return;
    }
    switch ((enum field_type)f->type) {
    case F_ID:
    case F_BRIEF:
    case F_STR:
        enc_str(pk, *(const char *const *)at);
        break;
    case F_BOOL:
        enc_bool(pk, *(const bool *)at);
        break;
    case F_INT:
        msgpack_pack_int64(pk, *(const int64_t *)at);
        break;
    case F_INT32:
        msgpack_pack_int32(pk, *(const int32_t *)at);
        break;
    case F_NUM:
        /* cppcheck-suppress invalidPointerCast */
        msgpack_pack_double(pk, *(const double *)at);
        break;
    case F_PHASE:
        enc_str(pk, phase_name(*(const enum phase *)at));
        break;
    case F_WORKER_TYPE:
    case F_GATE:
        enc_str(pk, worker_type_name(*(const enum worker_type *)at));
        break;
    case F_STATUS:
        enc_str(pk, completion_status_name(*(const enum completion_status *)at));
        break;
    case F_OPTIONS: {
        const char *raw = *(const char *const *)at;
        if (raw == NULL) {
            msgpack_pack_nil(pk);
        } else {
            buf_append(pk->data, raw, *(const size_t *)(base + f->aux));
        }
        break;
    }
    case F_RESULT:
    case F_PARAMS: {
        const struct kv *kv = *(const struct kv *const *)at;
        if (kv == NULL) {
            msgpack_pack_nil(pk);
        } else {
            enc_map(pk, kv, *(const size_t *)(base + f->aux), f->type == F_PARAMS);
        }
        break;
    }
    case F_BIN: /* only the dead letter's original */
        msgpack_pack_bin(pk, dl_kept(dl));
        if (dl_kept(dl) > 0) {
            msgpack_pack_bin_body(pk, dl->original, dl_kept(dl));
        }
        break;
    case F_ORIG_SIZE:
        msgpack_pack_uint64(pk, (uint64_t)dl_full(dl));
        break;
    case F_TRUNCATED:
        enc_bool(pk, dl_full(dl) > dl_kept(dl));
        break;
    }
}

void
msg_encode(const struct msg *m, struct buf *out)
{
    const struct spec *s = spec_of(m);
    msgpack_packer pk;
    msgpack_packer_init(&pk, out, append_cb);
    msgpack_pack_map(&pk, 3 + s->n_fields);
    enc_key(&pk, "v");
    msgpack_pack_int64(&pk, LIMITS_SCHEMA_VERSION);
    enc_key(&pk, "type");
    enc_str(&pk, s->type);
    enc_key(&pk, "ts");
    msgpack_pack_int64(&pk, m->ts_ms);
    for (size_t i = 0; i < s->n_fields; i++) {
        enc_key(&pk, s->fields[i].name);
        enc_field(&pk, &s->fields[i], m);
    }
}
