/* SPDX-License-Identifier: MIT
 * change: one planned state change, the unit the store writes atomically: the fields of one
 * research to set or clear, how it enters or leaves the active set, a trigger outcome to
 * remember, and the messages to publish once the change is in Redis (the outbox). Plain data
 * built by the machine, written by the store, applied to the mirror by the registry. */
#ifndef RC_CHANGE_H
#define RC_CHANGE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/cfg.h"
#include "coordinator/research.h"

struct msg;

enum change_kind {
    CHANGE_UPDATE = 0, /* fields of an active research */
    CHANGE_CREATE,     /* a new research: into the active set, score = created_at */
    CHANGE_FINISH,     /* out of the active set into the finished one, score = finished_at */
    CHANGE_NOTE,       /* no research: a rejected trigger or a dead letter */
    CHANGE_RESUME,     /* a finished research active again: out of the finished set into the
                          active one (score = created_at), its hash's TTL removed */
};

struct outmsg {
    enum topic topic;
    char *key; /* owned, `key_len` bytes (may hold NULs) plus a NUL; NULL for no key */
    size_t key_len;
    char *payload; /* owned MessagePack bytes */
    size_t len;
    char *outbox_id; /* owned; set by the loop before the store writes the change */
    bool dispatch;   /* a dispatch: its research's pick-up timeout counts from Kafka's ack */
};

/* The figures a rejected trigger carries (§3), remembered with its outcome so that a repeat
 * repeats them: at_capacity has the counts, budget_exhausted the money. */
struct rejection_figures {
    bool has_capacity;
    int64_t active_count;
    int64_t limit;
    bool has_budget;
    double remaining; /* USD; may be negative */
    double daily_limit;
};

/* A cancel's outcome, remembered under rc:cancel:<request_id> for 24 h so that the same
 * cancel sent again repeats it (§3); a resume's likewise under rc:resume:<request_id>. Every
 * string owned; NULL for nil. */
struct cancel_memo {
    char *request_id;  /* NULL: nothing to remember */
    char *outcome;     /* "cancelled", "not_found" or "not_cancellable"; a resume's "resumed",
                          "not_found", "not_resumable" or "at_capacity" */
    char *research_id; /* the research the first cancel (resume) named */
    char *phase;       /* cancelled: the phase it was in; resumed: the phase it resumed at */
    char *dispatch_id; /* cancelled: its outstanding dispatch, NULL when none */
};

/* Replace `m`'s content with copies of the strings (NULL stays NULL). */
void cancel_memo_set(struct cancel_memo *m, const char *request_id, const char *outcome,
                     const char *research_id, const char *phase, const char *dispatch_id);
void cancel_memo_release(struct cancel_memo *m);

/* What the write does with the research's hash. */
enum change_hash {
    CHANGE_HASH_WRITE = 0, /* set and clear its fields (UPDATE and FINISH: it must exist) */
    CHANGE_HASH_RECREATE,  /* the same, but it may be missing (a lost hash, failed anew) */
    CHANGE_HASH_KEEP,      /* leave the key alone: it holds something that is not a research */
};

struct change {
    enum change_kind kind;
    enum change_hash hash;
    char *research_id;     /* owned; NULL for CHANGE_NOTE */
    int64_t score;         /* CREATE, RESUME: created_at ms; FINISH: finished_at ms */
    bool set[RF_COUNT];    /* field touched */
    bool any_set;          /* some set[] is true */
    char *value[RF_COUNT]; /* owned; NULL with set = clear the field */
    /* The outcome of a trigger, recorded under rc:request:<id> for 24 h (NULL when none). */
    char *request_id;
    char *request_value;              /* "<research_id>" or "rejected:<reason>" */
    struct rejection_figures figures; /* stored with a rejection */
    struct cancel_memo cancel; /* a cancel's outcome to remember (cancel.request_id NULL: none) */
    struct cancel_memo resume; /* a resume's outcome to remember (resume.request_id NULL: none) */
    /* Money charged with this change: added to spent_usd of rc:budget:<budget_day>. */
    double cost_usd;
    char budget_day[11];
    bool phase_timeout; /* the machine found its dispatch past AGENT_PHASE_TIMEOUT_<TYPE> */
    struct outmsg *out; /* owned messages, published in order after the write */
    size_t n_out;
    size_t cap_out;
    /* The pass's inputs (indexes, owned array) whose effect this change is: should Redis refuse
     * it for good, they are dead-lettered with its error. */
    size_t *inputs;
    size_t n_inputs;
};

#define CHANGE_INIT                                                                                \
    {                                                                                              \
        0                                                                                          \
    }

void change_init(struct change *c, enum change_kind kind, const char *research_id);
/* Set a field to `value` (copied; NULL or "" clears it). */
void change_set(struct change *c, enum research_field f, const char *value);
void change_set_int(struct change *c, enum research_field f, int64_t v);
/* True when the change touches nothing in Redis and has nothing to publish: an UPDATE with no
 * field, message, request or cancel outcome, and no money. */
bool change_is_empty(const struct change *c);
/* Encode `m` and queue it for `topic` under key[0..key_len) (copied; NULL for no key). */
void change_emit(struct change *c, enum topic topic, const char *key, size_t key_len,
                 const struct msg *m);
/* Queue raw bytes (copied). */
void change_emit_raw(struct change *c, enum topic topic, const char *key, size_t key_len,
                     const void *data, size_t len);
/* Record that input `index` of the pass caused this change. */
void change_add_input(struct change *c, size_t index);
/* Apply the field writes to `r` (the mirror): those of the fields it holds (RF_MIRRORED). */
void change_apply(const struct change *c, struct research *r);
/* Fold `src`, a later change of the same research, into `dst`, so that the store writes one
 * change where it would write two: src's field writes win, its messages follow dst's, its
 * money adds, its FINISH carries over, its inputs join dst's, and the stronger of the two
 * hash modes holds (KEEP, then RECREATE, over WRITE). False (nothing done) when they cannot be
 * one: another research, dst finished, src creates or resumes, or both remember a request
 * (or a cancel, or a resume) or charge different days. On true `src` is released. */
bool change_merge(struct change *dst, struct change *src);
/* Free everything; back at CHANGE_INIT. */
void change_release(struct change *c);

/* A batch of changes, written together. */
struct change_list {
    struct change *items;
    size_t n;
    size_t cap;
};

#define CHANGE_LIST_INIT                                                                           \
    {                                                                                              \
        NULL, 0, 0                                                                                 \
    }

/* A new CHANGE_INIT slot at the end (valid until the next call). */
struct change *change_list_add(struct change_list *l);
/* Drop the last slot (an empty change). */
void change_list_drop_last(struct change_list *l);
/* Release every change; keep the capacity. */
void change_list_reset(struct change_list *l);
void change_list_release(struct change_list *l);

#endif /* RC_CHANGE_H */
