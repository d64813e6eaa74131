/* SPDX-License-Identifier: MIT
 * research: the in-memory mirror of one research hash. */
#include "coordinator/research.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "common/num.h"
#include "common/rc_err.h"
#include "common/xalloc.h"
#include "contract/limits.h"
#include "proto/json.h"
#include "proto/result.h"

void
research_set(struct research *r, enum research_field f, const char *value)
{
    RC_ASSERT(f >= 0 && f < RF_MIRRORED);
    if (r->f[f] != NULL && value != NULL && strcmp(r->f[f], value) == 0) {
        return;
    }
    free(r->f[f]);
    r->f[f] = (value != NULL && value[0] != '\0') ? xstrdup(value) : NULL;
    if (f == RF_PHASE) {
        r->phase = PHASE_PENDING;
        if (r->f[f] != NULL) {
            (void)phase_parse(r->f[f], &r->phase);
        }
    }
}

const char *
research_get(const struct research *r, enum research_field f)
{
    RC_ASSERT(f >= 0 && f < RF_MIRRORED);
    return r->f[f];
}

struct research *
research_new(void)
{
    return xcalloc(1, sizeof(struct research));
}

struct research *
research_dup(const struct research *r)
{
    struct research *c = research_new();
    for (int i = 0; i < RF_MIRRORED; i++) {
        c->f[i] = xstrdup_or_null(r->f[i]);
    }
    c->phase = r->phase;
    c->corrupt = xstrdup_or_null(r->corrupt);
    c->stored = r->stored;
    c->acked_at_ms = r->acked_at_ms;
    return c;
}

void
research_free(struct research *r)
{
    if (r == NULL) {
        return;
    }
    for (int i = 0; i < RF_MIRRORED; i++) {
        free(r->f[i]);
    }
    free(r->corrupt);
    free(r);
}

void
research_set_corrupt(struct research *r, enum research_stored stored, const char *why)
{
    free(r->corrupt);
    r->corrupt = xstrdup(why);
    r->stored = stored;
}

/* A whole number 0..max in decimal digits, nothing else. */
static bool
whole(const char *s, int64_t max)
{
    int64_t v = 0;
    if (s == NULL || *s == '\0') {
        return false;
    }
    for (; *s != '\0'; s++) {
        if (*s < '0' || *s > '9' || v > (max - (*s - '0')) / 10) {
            return false;
        }
        v = v * 10 + (*s - '0');
    }
    return true;
}

static bool
in_set(const char *s, const char *const *set)
{
    for (size_t i = 0; set[i] != NULL; i++) {
        if (strcmp(s, set[i]) == 0) {
            return true;
        }
    }
    return false;
}

/* A field's problem into why[], as the contract words it; always false. */
static bool
corrupt(char *why, size_t len, enum research_field f, const char *problem, const char *value)
{
    char shown[48];
    size_t n = 0;
    /* The value is shown cut and with only printable ASCII: it goes into a log and an event. */
    for (const char *p = value != NULL ? value : ""; *p != '\0' && n + 1 < sizeof(shown); p++) {
        shown[n++] = (*p >= 0x20 && *p < 0x7f && *p != '"') ? *p : '?';
    }
    shown[n] = '\0';
    if (value != NULL) {
        snprintf(why, len, "corrupt research: %s: %s (\"%s%s\")", research_field_name(f), problem,
                 shown, strlen(value) >= sizeof(shown) ? "..." : "");
    } else {
        snprintf(why, len, "corrupt research: %s: %s", research_field_name(f), problem);
    }
    return false;
}

/* Stored options are a JSON object that reads as MessagePack again (they are sent in every
 * dispatch). */
static bool
options_read(const char *json)
{
    struct buf mp = BUF_INIT;
    struct rc_err err = RC_ERR_INIT;
    bool ok = json[0] == '{' && json_to_msgpack(json, strlen(json), &mp, &err) == RC_OK;
    buf_release(&mp);
    return ok;
}

/* Unix ms up to year 2286: larger is garbage, and sums of them cannot overflow. */
#define TIME_MS_MAX 9999999999999LL

bool
research_check(const struct research *r, const char *id, char *why, size_t why_len)
{
    static const char *const children[] = {CHILD_DISPATCHED, CHILD_COMPLETED, CHILD_FAILED, NULL};
    static const char *const bools[] = {"0", "1", NULL};
    static const enum research_field times[] = {RF_CREATED_AT,     RF_UPDATED_AT,
                                                 RF_PHASE_STARTED_AT, RF_WAITING_SINCE,
                                                 RF_DISPATCHED_AT,  RF_PICKED_UP_AT};
    const char *rid = r->f[RF_RESEARCH_ID];
    if (rid == NULL) {
        return corrupt(why, why_len, RF_RESEARCH_ID, "missing", NULL);
    }
    if (strcmp(rid, id) != 0) {
        return corrupt(why, why_len, RF_RESEARCH_ID, "not the id it is stored under", rid);
    }
    if (r->f[RF_STATUS] == NULL) {
        return corrupt(why, why_len, RF_STATUS, "missing", NULL);
    }
    if (strcmp(r->f[RF_STATUS], STATUS_RUNNING) != 0) {
        return corrupt(why, why_len, RF_STATUS, "not running, yet in the active set",
                       r->f[RF_STATUS]);
    }
    enum phase phase;
    if (r->f[RF_PHASE] == NULL) {
        return corrupt(why, why_len, RF_PHASE, "missing", NULL);
    }
    if (phase_parse(r->f[RF_PHASE], &phase) != RC_OK || phase_is_final(phase)) {
        return corrupt(why, why_len, RF_PHASE, "not a phase of a running research", r->f[RF_PHASE]);
    }
    if (r->f[RF_CREATED_AT] == NULL) {
        return corrupt(why, why_len, RF_CREATED_AT, "missing", NULL);
    }
    for (size_t i = 0; i < N_OF(times); i++) {
        const char *v = r->f[times[i]];
        if (v != NULL && !whole(v, TIME_MS_MAX)) {
            return corrupt(why, why_len, times[i], "not a time in ms", v);
        }
    }
    if (r->f[RF_ATTEMPT] != NULL && !whole(r->f[RF_ATTEMPT], RESEARCH_ATTEMPT_MAX)) {
        return corrupt(why, why_len, RF_ATTEMPT, "not a whole number 0..1000000", r->f[RF_ATTEMPT]);
    }
    if (r->f[RF_RELEASED] != NULL && (!whole(r->f[RF_RELEASED], RESEARCH_ATTEMPT_MAX) ||
                                      research_int(r, RF_RELEASED) > research_int(r, RF_ATTEMPT))) {
        return corrupt(why, why_len, RF_RELEASED, "not a whole number 0..attempt",
                       r->f[RF_RELEASED]);
    }
    if (r->f[RF_RESUMES] != NULL && !whole(r->f[RF_RESUMES], RESEARCH_ATTEMPT_MAX)) {
        return corrupt(why, why_len, RF_RESUMES, "not a whole number 0..1000000", r->f[RF_RESUMES]);
    }
    static const char *const resends[] = {REDISPATCH_RELEASED, REDISPATCH_PHASE_TIMEOUT, NULL};
    if (r->f[RF_RESEND_REASON] != NULL && !in_set(r->f[RF_RESEND_REASON], resends)) {
        return corrupt(why, why_len, RF_RESEND_REASON,
                       "not " REDISPATCH_RELEASED " or " REDISPATCH_PHASE_TIMEOUT,
                       r->f[RF_RESEND_REASON]);
    }
    if (r->f[RF_OPTIONS] != NULL && !options_read(r->f[RF_OPTIONS])) {
        return corrupt(why, why_len, RF_OPTIONS, "not a JSON object", r->f[RF_OPTIONS]);
    }
    if (r->f[RF_BYPASS_GATES] != NULL && !in_set(r->f[RF_BYPASS_GATES], bools)) {
        return corrupt(why, why_len, RF_BYPASS_GATES, "not 0 or 1", r->f[RF_BYPASS_GATES]);
    }
    const char *cost = r->f[RF_COST_USD];
    if (cost != NULL) {
        double d = 0;
        if (!num_parse_f64(cost, strlen(cost), &d) || !(d >= 0 && d <= 1e15)) {
            return corrupt(why, why_len, RF_COST_USD, "not an amount of USD", cost);
        }
    }
    const enum research_field ids[] = {RF_DISPATCH_ID, RF_WORKER_ID};
    for (size_t i = 0; i < 2; i++) {
        const char *v = r->f[ids[i]];
        if (v != NULL && !limits_is_id(v, strlen(v))) {
            return corrupt(why, why_len, ids[i], "not an id", v);
        }
    }
    for (int t = 0; t < WORKER_TYPE_COUNT; t++) {
        size_t n = 0;
        const struct result_key *schema = result_schema((enum worker_type)t, &n);
        for (size_t k = 0; k < n; k++) {
            int f = research_result_field((enum worker_type)t, schema[k].name);
            const char *v = f >= 0 ? r->f[f] : NULL;
            if (v != NULL && schema[k].kind == RESULT_NUMBER &&
                result_parse(RESULT_NUMBER, v).kind == VALUE_NIL) {
                return corrupt(why, why_len, (enum research_field)f, "not a number", v);
            }
        }
    }
    const char *child = r->f[RF_CHILD_STATUS];
    if (child != NULL) {
        if (!in_set(child, children)) {
            return corrupt(why, why_len, RF_CHILD_STATUS, "not dispatched, completed or failed",
                           child);
        }
        if (!phase_is_worked(phase)) {
            return corrupt(why, why_len, RF_CHILD_STATUS, "set while the phase is pending", child);
        }
        if (strcmp(child, CHILD_DISPATCHED) == 0 &&
            (r->f[RF_DISPATCH_ID] == NULL || r->f[RF_WORKER_ID] == NULL)) {
            return corrupt(why, why_len, r->f[RF_DISPATCH_ID] == NULL ? RF_DISPATCH_ID : RF_WORKER_ID,
                           "missing while a dispatch is out", NULL);
        }
    }
    return true;
}

enum phase
research_phase(const struct research *r)
{
    return r->phase;
}

int64_t
research_int(const struct research *r, enum research_field f)
{
    const char *s = research_get(r, f);
    if (s == NULL) {
        return 0;
    }
    int64_t v = 0;
    return num_parse_i64(s, strlen(s), &v) ? v : 0;
}

bool
research_is(const struct research *r, enum research_field f, const char *value)
{
    const char *s = research_get(r, f);
    return s != NULL && strcmp(s, value) == 0;
}
