/* SPDX-License-Identifier: MIT
 * ctl_event: lifecycle events for display. */
#include "tools/researchctl/ctl_event.h"

#include <stdio.h>
#include <string.h>

#include "common/buf.h"
#include "common/rc_err.h"
#include "contract/phase.h"
#include "proto/msg.h"
#include "tools/researchctl/ctl_fmt.h"
#include "tools/researchctl/ctl_json.h"

/* Width of the type column: "cancel_rejected". */
#define TYPE_WIDTH 15

/* Appending to a fixed array that is large enough for every type. */
struct fields {
    struct ctl_field *v;
    size_t n;
};

static void
put(struct fields *f, struct ctl_field field)
{
    RC_ASSERT(f->n < CTL_EVENT_MAX_FIELDS);
    f->v[f->n++] = field;
}

static void
put_str(struct fields *f, const char *key, const char *s)
{
    put(f,
        (struct ctl_field){.key = key, .kind = s != NULL ? CTL_FIELD_STR : CTL_FIELD_NIL, .s = s});
}

static void
put_int(struct fields *f, const char *key, int64_t i)
{
    put(f, (struct ctl_field){.key = key, .kind = CTL_FIELD_INT, .i = i});
}

static void
put_num(struct fields *f, const char *key, double d)
{
    put(f, (struct ctl_field){.key = key, .kind = CTL_FIELD_NUM, .d = d});
}

static void
put_bool(struct fields *f, const char *key, bool b)
{
    put(f, (struct ctl_field){.key = key, .kind = CTL_FIELD_BOOL, .b = b});
}

static const char *
phase_or_nil(enum phase p)
{
    return (unsigned)p < PHASE_COUNT ? phase_name(p) : NULL;
}

/* Each type's keys, in the order of the contract's table (§4). */

static void
accepted(const struct event *ev, struct fields *f)
{
    put_str(f, "request_id", ev->request_id);
}

static void
rejected(const struct event *ev, struct fields *f)
{
    put_str(f, "request_id", ev->request_id);
    put_str(f, "reason", ev->reason);
    put_str(f, "message", ev->message);
    if (ev->has_capacity) {
        put_int(f, "active_count", ev->active_count);
        put_int(f, "limit", ev->limit);
    }
    if (ev->has_budget) {
        put_num(f, "remaining", ev->remaining);
        put_num(f, "daily_limit", ev->daily_limit);
    }
}

static void
phase_started(const struct event *ev, struct fields *f)
{
    put_str(f, "phase", phase_or_nil(ev->phase));
    put_str(f, "dispatch_id", ev->dispatch_id);
    put_int(f, "attempt", ev->attempt);
}

static void
gate(const struct event *ev, struct fields *f)
{
    put_str(f, "gate", (unsigned)ev->gate < WORKER_TYPE_COUNT ? worker_type_name(ev->gate) : NULL);
    put_bool(f, "passed", ev->passed);
    put_str(f, "reason", ev->reason);
}

static void
redispatched(const struct event *ev, struct fields *f)
{
    put_str(f, "phase", phase_or_nil(ev->phase));
    put_str(f, "old_dispatch_id", ev->old_dispatch_id);
    put_str(f, "dispatch_id", ev->dispatch_id);
    put_int(f, "attempt", ev->attempt);
    put_str(f, "reason", ev->reason);
}

static void
completed(const struct event *ev, struct fields *f)
{
    put_str(f, "strategy_name", ev->strategy_name);
    put_str(f, "verdict", ev->verdict);
    put_str(f, "gate_rejection_reason", ev->gate_rejection_reason);
}

static void
failed(const struct event *ev, struct fields *f)
{
    put_str(f, "phase", phase_or_nil(ev->phase));
    put_str(f, "error", ev->error);
}

static void
cancelled(const struct event *ev, struct fields *f)
{
    put_str(f, "phase", phase_or_nil(ev->phase));
    put_str(f, "dispatch_id", ev->dispatch_id);
    put_str(f, "request_id", ev->request_id);
}

static void
cancel_rejected(const struct event *ev, struct fields *f)
{
    put_str(f, "reason", ev->reason);
    put_str(f, "request_id", ev->request_id);
}

static void
resumed(const struct event *ev, struct fields *f)
{
    put_str(f, "phase", phase_or_nil(ev->phase));
    put_str(f, "request_id", ev->request_id);
}

static void (*const fields_of[EVENT_TYPE_COUNT])(const struct event *, struct fields *) = {
    [EVENT_ACCEPTED] = accepted,
    [EVENT_REJECTED] = rejected,
    [EVENT_PHASE_STARTED] = phase_started,
    [EVENT_GATE] = gate,
    [EVENT_REDISPATCHED] = redispatched,
    [EVENT_COMPLETED] = completed,
    [EVENT_FAILED] = failed,
    [EVENT_CANCELLED] = cancelled,
    [EVENT_CANCEL_REJECTED] = cancel_rejected,
    [EVENT_RESUMED] = resumed,
    [EVENT_RESUME_REJECTED] = cancel_rejected, /* the same keys: reason, request_id */
};

size_t
ctl_event_fields(const struct event *ev, struct ctl_field out[CTL_EVENT_MAX_FIELDS])
{
    struct fields f = {out, 0};
    if ((unsigned)ev->type < EVENT_TYPE_COUNT && fields_of[ev->type] != NULL) {
        fields_of[ev->type](ev, &f);
    }
    return f.n;
}

void
ctl_event_line(int64_t ts_ms, const struct event *ev, struct buf *out)
{
    char at[CTL_FMT_MAX];
    struct ctl_field fields[CTL_EVENT_MAX_FIELDS];
    size_t n = ctl_event_fields(ev, fields);

    ctl_fmt_utc(ts_ms, at);
    buf_printf(out, "%s  ", at);
    ctl_fmt_text(out, ev->research_id); /* every string of the event is escaped: see ctl_fmt.h */
    buf_printf(out, "  %-*s", TYPE_WIDTH, event_type_name(ev->type));
    for (size_t i = 0; i < n; i++) {
        buf_printf(out, "%s%s=", i == 0 ? "  " : " ", fields[i].key);
        switch (fields[i].kind) {
        case CTL_FIELD_NIL:
            buf_putc(out, '-');
            break;
        case CTL_FIELD_STR:
            ctl_fmt_value(out, fields[i].s);
            break;
        case CTL_FIELD_INT:
            buf_printf(out, "%lld", (long long)fields[i].i);
            break;
        case CTL_FIELD_NUM:
            buf_printf(out, "%g", fields[i].d);
            break;
        case CTL_FIELD_BOOL:
            buf_puts(out, fields[i].b ? "true" : "false");
            break;
        }
    }
    /* No trailing blanks after the padded type of an event without fields. */
    while (out->len > 0 && out->data[out->len - 1] == ' ') {
        out->data[--out->len] = '\0';
    }
}

void
ctl_event_json(int64_t ts_ms, const struct event *ev, struct buf *out)
{
    char at[CTL_FMT_MAX];
    struct ctl_field fields[CTL_EVENT_MAX_FIELDS];
    size_t n = ctl_event_fields(ev, fields);
    struct ctl_json *j = ctl_json_new(out);

    ctl_fmt_utc(ts_ms, at);
    ctl_json_object_begin(j);
    ctl_json_kint(j, "ts", ts_ms);
    ctl_json_kstr(j, "time", at);
    ctl_json_kstr(j, "type", event_type_name(ev->type));
    ctl_json_kstr(j, "research_id", ev->research_id);
    for (size_t i = 0; i < n; i++) {
        ctl_json_key(j, fields[i].key);
        switch (fields[i].kind) {
        case CTL_FIELD_NIL:
            ctl_json_null(j);
            break;
        case CTL_FIELD_STR:
            ctl_json_str(j, fields[i].s);
            break;
        case CTL_FIELD_INT:
            ctl_json_int(j, fields[i].i);
            break;
        case CTL_FIELD_NUM:
            ctl_json_num(j, fields[i].d);
            break;
        case CTL_FIELD_BOOL:
            ctl_json_bool(j, fields[i].b);
            break;
        }
    }
    ctl_json_object_end(j);
    ctl_json_free(j);
}
