/* SPDX-License-Identifier: MIT
 * change: one planned, atomic state change and the messages it causes. */
#include "coordinator/change.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "common/rc_err.h"
#include "common/xalloc.h"
#include "proto/msg.h"

/* A copy of n bytes that may contain NULs, NUL-terminated for convenience. */
static char *
xstrndup_bin(const char *s, size_t n)
{
    char *copy = xmalloc(n + 1);
    memcpy(copy, s, n);
    copy[n] = '\0';
    return copy;
}

void
change_init(struct change *c, enum change_kind kind, const char *research_id)
{
    *c = (struct change)CHANGE_INIT;
    c->kind = kind;
    c->research_id = xstrdup_or_null(research_id);
}

void
change_set(struct change *c, enum research_field f, const char *value)
{
    /* Copy first: `value` may be the very string being replaced. */
    char *copy = (value != NULL && value[0] != '\0') ? xstrdup(value) : NULL;
    free(c->value[f]);
    c->set[f] = true;
    c->any_set = true;
    c->value[f] = copy;
}

void
change_set_int(struct change *c, enum research_field f, int64_t v)
{
    char text[32];
    snprintf(text, sizeof(text), "%" PRId64, v);
    change_set(c, f, text);
}

bool
change_is_empty(const struct change *c)
{
    return c->kind == CHANGE_UPDATE && c->n_out == 0 && c->request_id == NULL &&
           c->cancel.request_id == NULL && c->resume.request_id == NULL && c->cost_usd == 0 &&
           !c->any_set;
}

void
change_emit_raw(struct change *c, enum topic topic, const char *key, size_t key_len,
                const void *data, size_t len)
{
    c->out = xgrow(c->out, &c->cap_out, c->n_out + 1, sizeof(*c->out));
    struct outmsg *o = &c->out[c->n_out++];
    o->topic = topic;
    o->key = key != NULL ? xstrndup_bin(key, key_len) : NULL;
    o->key_len = key != NULL ? key_len : 0;
    o->payload = xmalloc(len > 0 ? len : 1);
    memcpy(o->payload, data, len);
    o->len = len;
    o->outbox_id = NULL;
}

void
change_emit(struct change *c, enum topic topic, const char *key, size_t key_len,
            const struct msg *m)
{
    struct buf b = BUF_INIT;
    msg_encode(m, &b);
    change_emit_raw(c, topic, key, key_len, b.data, b.len);
    c->out[c->n_out - 1].dispatch = m->kind == MSG_DISPATCH;
    buf_release(&b);
}

void
change_add_input(struct change *c, size_t index)
{
    c->inputs = xrealloc(c->inputs, (c->n_inputs + 1) * sizeof(*c->inputs));
    c->inputs[c->n_inputs++] = index;
}

void
change_apply(const struct change *c, struct research *r)
{
    for (int i = 0; i < RF_MIRRORED; i++) {
        if (c->set[i]) {
            research_set(r, (enum research_field)i, c->value[i]);
        }
    }
    if (c->set[RF_DISPATCH_ID]) {
        r->acked_at_ms = 0; /* a new dispatch: not acknowledged by Kafka yet */
    }
}

bool
change_merge(struct change *dst, struct change *src)
{
    const bool same = dst->research_id != NULL && src->research_id != NULL &&
                      strcmp(dst->research_id, src->research_id) == 0;
    if (!same || dst->kind == CHANGE_FINISH || src->kind == CHANGE_CREATE ||
        src->kind == CHANGE_RESUME || (dst->request_id != NULL && src->request_id != NULL) ||
        (dst->cancel.request_id != NULL && src->cancel.request_id != NULL) ||
        (dst->resume.request_id != NULL && src->resume.request_id != NULL) ||
        (dst->cost_usd != 0 && src->cost_usd != 0 &&
         strcmp(dst->budget_day, src->budget_day) != 0)) {
        return false;
    }
    if (src->hash == CHANGE_HASH_KEEP || (src->hash == CHANGE_HASH_RECREATE &&
                                          dst->hash == CHANGE_HASH_WRITE)) {
        dst->hash = src->hash;
    }
    for (size_t i = 0; i < src->n_inputs; i++) {
        change_add_input(dst, src->inputs[i]);
    }
    if (src->kind == CHANGE_FINISH) {
        /* a CREATE (or RESUME) finished at once: ZREM of a non-member is fine */
        dst->kind = CHANGE_FINISH;
        dst->score = src->score;
    }
    for (int i = 0; i < RF_COUNT; i++) {
        if (src->set[i]) {
            free(dst->value[i]);
            dst->value[i] = src->value[i];
            src->value[i] = NULL;
            dst->set[i] = true;
            dst->any_set = true;
        }
    }
    if (src->request_id != NULL) {
        dst->request_id = src->request_id;
        dst->request_value = src->request_value;
        dst->figures = src->figures;
        src->request_id = NULL;
        src->request_value = NULL;
    }
    if (src->cancel.request_id != NULL) {
        dst->cancel = src->cancel;
        src->cancel = (struct cancel_memo){0};
    }
    if (src->resume.request_id != NULL) {
        dst->resume = src->resume;
        src->resume = (struct cancel_memo){0};
    }
    dst->phase_timeout = dst->phase_timeout || src->phase_timeout;
    if (src->cost_usd != 0) {
        memcpy(dst->budget_day, src->budget_day, sizeof(dst->budget_day));
        dst->cost_usd += src->cost_usd;
    }
    for (size_t i = 0; i < src->n_out; i++) {
        dst->out = xgrow(dst->out, &dst->cap_out, dst->n_out + 1, sizeof(*dst->out));
        dst->out[dst->n_out++] = src->out[i];
    }
    free(src->out);
    src->out = NULL;
    src->n_out = 0;
    src->cap_out = 0;
    change_release(src);
    return true;
}

void
change_release(struct change *c)
{
    if (c->research_id == NULL && c->request_id == NULL && c->cancel.request_id == NULL &&
        c->resume.request_id == NULL && c->out == NULL && !c->any_set && c->inputs == NULL) {
        return; /* never planned: nothing to free (the common case of a pass) */
    }
    free(c->research_id);
    for (int i = 0; i < RF_COUNT; i++) {
        free(c->value[i]);
    }
    free(c->request_id);
    free(c->request_value);
    cancel_memo_release(&c->cancel);
    cancel_memo_release(&c->resume);
    for (size_t i = 0; i < c->n_out; i++) {
        free(c->out[i].key);
        free(c->out[i].payload);
        free(c->out[i].outbox_id);
    }
    free(c->out);
    free(c->inputs);
    *c = (struct change)CHANGE_INIT;
}

void
cancel_memo_set(struct cancel_memo *m, const char *request_id, const char *outcome,
                const char *research_id, const char *phase, const char *dispatch_id)
{
    cancel_memo_release(m);
    *m = (struct cancel_memo){.request_id = xstrdup_or_null(request_id),
                              .outcome = xstrdup_or_null(outcome),
                              .research_id = xstrdup_or_null(research_id),
                              .phase = xstrdup_or_null(phase),
                              .dispatch_id = xstrdup_or_null(dispatch_id)};
}

void
cancel_memo_release(struct cancel_memo *m)
{
    free(m->request_id);
    free(m->outcome);
    free(m->research_id);
    free(m->phase);
    free(m->dispatch_id);
    *m = (struct cancel_memo){0};
}

struct change *
change_list_add(struct change_list *l)
{
    l->items = xgrow(l->items, &l->cap, l->n + 1, sizeof(*l->items));
    l->items[l->n] = (struct change)CHANGE_INIT;
    return &l->items[l->n++];
}

void
change_list_drop_last(struct change_list *l)
{
    RC_ASSERT(l->n > 0);
    change_release(&l->items[--l->n]);
}

void
change_list_reset(struct change_list *l)
{
    for (size_t i = 0; i < l->n; i++) {
        change_release(&l->items[i]);
    }
    l->n = 0;
}

void
change_list_release(struct change_list *l)
{
    change_list_reset(l);
    free(l->items);
    *l = (struct change_list)CHANGE_LIST_INIT;
}
