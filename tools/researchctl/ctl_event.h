/* SPDX-License-Identifier: MIT
 * ctl_event: a lifecycle event (contract §4) as researchctl shows it: its extra keys as a list
 * of typed fields, one readable line, or one JSON object. Pure; the keys are those the
 * contract's table lists for each type (proto/ decodes them, this only displays them). */
#ifndef RC_CTL_EVENT_H
#define RC_CTL_EVENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct buf;
struct event;

enum ctl_field_kind {
    CTL_FIELD_NIL = 0,
    CTL_FIELD_STR,
    CTL_FIELD_INT,
    CTL_FIELD_NUM,
    CTL_FIELD_BOOL,
};

/* One key of an event and its value. */
struct ctl_field {
    const char *key; /* static */
    enum ctl_field_kind kind;
    const char *s; /* CTL_FIELD_STR: borrowed from the event */
    int64_t i;
    double d;
    bool b;
};

/* The most extra keys any event type has (rejected with both sets of figures). */
#define CTL_EVENT_MAX_FIELDS 8

/* Fill out[] with the keys of `ev` beyond type, v, ts and research_id, in the contract's
 * order (rejected: the figures only when the event carries them); returns how many. Strings
 * are borrowed from ev; nil values are CTL_FIELD_NIL. */
size_t ctl_event_fields(const struct event *ev, struct ctl_field out[CTL_EVENT_MAX_FIELDS]);

/* Append one line, without its newline: the time (RFC 3339 UTC), the research id (or -), the
 * type padded to the longest type name, then key=value for each field (values as
 * ctl_fmt_value writes them, numbers as %g, booleans true/false, nil as -):
 *     2026-11-23T10:00:00.123Z  rs_1  phase_started    phase=training dispatch_id=d attempt=1 */
void ctl_event_line(int64_t ts_ms, const struct event *ev, struct buf *out);

/* Append one JSON object, without a newline: {"ts": ms, "time": "...", "type": "...",
 * "research_id": "..." or null, then every field with its JSON type}. */
void ctl_event_json(int64_t ts_ms, const struct event *ev, struct buf *out);

#endif /* RC_CTL_EVENT_H */
