/* SPDX-License-Identifier: MIT
 * test_research: the field name table of coordinator/research (every name round-trips, the
 * result fields agree with proto/result's schemas, as research.h promises), the mirror's
 * setters and typed readers, and coordinator/change, the planned edits applied to a mirror. */
#include "tests/support/test.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "contract/phase.h"
#include "coordinator/change.h"
#include "coordinator/research.h"
#include "proto/result.h"

static void
test_research_field_names_round_trip(void **state)
{
    (void)state;
    for (int i = 0; i < RF_COUNT; i++) {
        const char *name = research_field_name((enum research_field)i);
        if (name == NULL || name[0] == '\0') {
            fail_msg("field %d has no name", i);
        }
        if (research_field_parse(name) != i) {
            fail_msg("field %d \"%s\" parses as %d", i, name, research_field_parse(name));
        }
    }
    assert_int_equal(research_field_parse("no_such_field"), -1);
    assert_int_equal(research_field_parse(""), -1);
    assert_int_equal(research_field_parse("training."), -1);
    assert_int_equal(research_field_parse("Research_id"), -1);
}

static void
test_research_field_names_are_distinct(void **state)
{
    (void)state;
    for (int i = 0; i < RF_COUNT; i++) {
        for (int j = i + 1; j < RF_COUNT; j++) {
            if (strcmp(research_field_name((enum research_field)i),
                       research_field_name((enum research_field)j)) == 0) {
                fail_msg("fields %d and %d share the name \"%s\"", i, j,
                         research_field_name((enum research_field)i));
            }
        }
    }
}

/* The contract's hash fields (§6) keep their names at their enum slots. */
static void
test_research_field_names_match_contract(void **state)
{
    (void)state;
    static const struct {
        enum research_field f;
        const char *name;
    } cases[] = {
        {RF_RESEARCH_ID, "research_id"},
        {RF_REQUEST_ID, "request_id"},
        {RF_STATUS, "status"},
        {RF_PHASE, "phase"},
        {RF_LAST_PHASE, "last_phase"},
        {RF_BRIEF, "brief"},
        {RF_MODEL, "model"},
        {RF_BYPASS_GATES, "bypass_gates"},
        {RF_STRATEGY_NAME, "strategy_name"},
        {RF_STRATEGY_PATH, "strategy_path"},
        {RF_MODEL_PATH, "model_path"},
        {RF_DISPATCH_ID, "dispatch_id"},
        {RF_WORKER_ID, "worker_id"},
        {RF_ATTEMPT, "attempt"},
        {RF_CHILD_STATUS, "child_status"},
        {RF_WAITING_SINCE, "waiting_since"},
        {RF_CREATED_AT, "created_at"},
        {RF_UPDATED_AT, "updated_at"},
        {RF_PHASE_STARTED_AT, "phase_started_at"},
        {RF_FINISHED_AT, "finished_at"},
        {RF_ERROR, "error"},
        {RF_GATE_REJECTION_REASON, "gate_rejection_reason"},
        {RF_VERDICT, "verdict"},
        {RF_COST_USD, "cost_usd"},
        {RF_DISPATCHED_AT, "dispatched_at"},
    };
    for (size_t i = 0; i < N_OF(cases); i++) {
        if (strcmp(research_field_name(cases[i].f), cases[i].name) != 0) {
            fail_msg("case %s: named \"%s\"", cases[i].name, research_field_name(cases[i].f));
        }
    }
}

/* The consistency check promised in research.h: the result fields are exactly
 * "<type>.<key>" for each key of result_schema(type), in order, type after type. */
static void
test_research_result_fields_agree_with_schema(void **state)
{
    (void)state;
    int next = RF_RESULT_FIRST;
    for (int t = 0; t < WORKER_TYPE_COUNT; t++) {
        enum worker_type wt = (enum worker_type)t;
        size_t n = 0;
        const struct result_key *schema = result_schema(wt, &n);
        assert_true(n > 0);
        for (size_t i = 0; i < n; i++) {
            char want[128];
            snprintf(want, sizeof(want), "%s.%s", worker_type_name(wt), schema[i].name);
            if (next >= RF_TIMELINE_FIRST) {
                fail_msg("case %s: no field left (RF_TIMELINE_FIRST %d too small)", want,
                         (int)RF_TIMELINE_FIRST);
            }
            if (strcmp(research_field_name((enum research_field)next), want) != 0) {
                fail_msg("case %s: field %d is \"%s\"", want, next,
                         research_field_name((enum research_field)next));
            }
            if (research_result_field(wt, schema[i].name) != next) {
                fail_msg("case %s: research_result_field gives %d, want %d", want,
                         research_result_field(wt, schema[i].name), next);
            }
            next++;
        }
        assert_int_equal(research_result_field(wt, "no_such_key"), -1);
    }
    assert_int_equal(next, RF_TIMELINE_FIRST);
}

/* The timeline fields are "timeline.<phase>.<mark>" for each worked phase, after the results,
 * and the mirror holds none of them. */
static void
test_research_timeline_fields(void **state)
{
    (void)state;
    static const char *const marks[TIMELINE_MARKS] = {"started_at", "finished_at", "worker_id",
                                                      "attempts"};
    int next = RF_TIMELINE_FIRST;
    for (enum phase p = PHASE_DESIGNING; p <= PHASE_ASSESSING; p++) {
        for (int m = 0; m < TIMELINE_MARKS; m++) {
            char want[64];
            snprintf(want, sizeof(want), "timeline.%s.%s", phase_name(p), marks[m]);
            enum research_field f = research_timeline_field(p, (enum timeline_mark)m);
            if ((int)f != next || strcmp(research_field_name(f), want) != 0) {
                fail_msg("case %s: field %d is \"%s\"", want, (int)f, research_field_name(f));
            }
            assert_int_equal(research_field_parse(want), next);
            next++;
        }
    }
    assert_int_equal(next, RF_COUNT);
    assert_true(RF_MIRRORED <= RF_TIMELINE_FIRST);
}

/* A key of another type's schema is not found under this type ("accuracy" is training's). */
static void
test_research_result_field_is_per_type(void **state)
{
    (void)state;
    assert_int_equal(research_result_field(WORKER_DESIGN, "accuracy"), -1);
    assert_int_equal(research_result_field(WORKER_BACKTEST, "model_path"), -1);
    assert_true(research_result_field(WORKER_DESIGN, "model") !=
                research_result_field(WORKER_ASSESSMENT, "model"));
    assert_string_equal(
        research_field_name((enum research_field)research_result_field(WORKER_ASSESSMENT, "model")),
        "assessment.model");
    /* A prefix of a type name is not that type. */
    assert_int_equal(research_result_field(WORKER_TRAINING, "training.accuracy"), -1);
}

static void
test_research_set_copies_and_clears(void **state)
{
    (void)state;
    struct research *r = research_new();
    char text[16];
    snprintf(text, sizeof(text), "%s", "alpha");
    assert_null(research_get(r, RF_BRIEF));
    research_set(r, RF_BRIEF, text);
    text[0] = 'X'; /* the research keeps its own copy */
    assert_string_equal(research_get(r, RF_BRIEF), "alpha");
    research_set(r, RF_BRIEF, research_get(r, RF_BRIEF)); /* same value, even its own pointer */
    assert_string_equal(research_get(r, RF_BRIEF), "alpha");
    research_set(r, RF_BRIEF, "beta");
    assert_string_equal(research_get(r, RF_BRIEF), "beta");
    research_set(r, RF_BRIEF, "");
    assert_null(research_get(r, RF_BRIEF)); /* "" clears: absent, never "" */
    research_set(r, RF_BRIEF, "gamma");
    research_set(r, RF_BRIEF, NULL);
    assert_null(research_get(r, RF_BRIEF));
    research_free(r);
    research_free(NULL);
}

static void
test_research_dup_is_deep(void **state)
{
    (void)state;
    struct research *r = research_new();
    research_set(r, RF_RESEARCH_ID, "rs_1");
    research_set(r, (enum research_field)(RF_MIRRORED - 1), "last");
    struct research *c = research_dup(r);
    research_set(r, RF_RESEARCH_ID, "rs_2");
    assert_string_equal(research_get(c, RF_RESEARCH_ID), "rs_1");
    assert_string_equal(research_get(c, (enum research_field)(RF_MIRRORED - 1)), "last");
    assert_null(research_get(c, RF_BRIEF));
    research_free(r);
    research_free(c);
}

static void
test_research_int_reads_decimal_else_zero(void **state)
{
    (void)state;
    static const struct {
        const char *text; /* NULL: absent */
        int64_t want;
    } cases[] = {
        {NULL, 0},
        {"0", 0},
        {"42", 42},
        {"-7", -7},
        {"1700000000123", 1700000000123LL},
        {"9223372036854775807", INT64_MAX},
        {"9223372036854775808", 0}, /* out of range */
        {"abc", 0},
        {"12abc", 0},
        {"1.5", 0},
        {" ", 0},
        {"-", 0},
    };
    for (size_t i = 0; i < N_OF(cases); i++) {
        struct research *r = research_new();
        research_set(r, RF_CREATED_AT, cases[i].text);
        int64_t got = research_int(r, RF_CREATED_AT);
        research_free(r);
        if (got != cases[i].want) {
            fail_msg("case \"%s\": got %lld, want %lld",
                     cases[i].text != NULL ? cases[i].text : "(absent)", (long long)got,
                     (long long)cases[i].want);
        }
    }
}

static void
test_research_phase_reads_name_else_pending(void **state)
{
    (void)state;
    struct research *r = research_new();
    assert_int_equal(research_phase(r), PHASE_PENDING);
    for (int p = 0; p < PHASE_COUNT; p++) {
        research_set(r, RF_PHASE, phase_name((enum phase)p));
        assert_int_equal(research_phase(r), p);
    }
    research_set(r, RF_PHASE, "junk");
    assert_int_equal(research_phase(r), PHASE_PENDING);
    research_free(r);
}

static void
test_research_is_compares_whole_value(void **state)
{
    (void)state;
    struct research *r = research_new();
    assert_false(research_is(r, RF_STATUS, "running"));
    research_set(r, RF_STATUS, "running");
    assert_true(research_is(r, RF_STATUS, "running"));
    assert_false(research_is(r, RF_STATUS, "run"));
    assert_false(research_is(r, RF_STATUS, "running2"));
    research_free(r);
}

/* ---- change: planned edits of a research ---- */

static void
test_change_set_copies_clears_and_applies(void **state)
{
    (void)state;
    struct change c = CHANGE_INIT;
    change_init(&c, CHANGE_UPDATE, "rs_1");
    assert_string_equal(c.research_id, "rs_1");
    assert_true(change_is_empty(&c));
    char text[8];
    snprintf(text, sizeof(text), "%s", "abc");
    change_set(&c, RF_BRIEF, text);
    text[0] = 'X';
    assert_true(c.set[RF_BRIEF]);
    assert_string_equal(c.value[RF_BRIEF], "abc");
    change_set(&c, RF_MODEL, "");
    assert_true(c.set[RF_MODEL]); /* touched: a clear */
    assert_null(c.value[RF_MODEL]);
    change_set_int(&c, RF_ATTEMPT, -12);
    assert_string_equal(c.value[RF_ATTEMPT], "-12");
    change_set_int(&c, RF_CREATED_AT, INT64_MAX);
    assert_string_equal(c.value[RF_CREATED_AT], "9223372036854775807");
    change_set(&c, RF_ERROR, "e1");
    change_set(&c, RF_ERROR, "e2"); /* the last write wins */
    assert_false(change_is_empty(&c));

    struct research *r = research_new();
    research_set(r, RF_MODEL, "old-model");
    research_set(r, RF_STATUS, "running");
    change_apply(&c, r);
    assert_string_equal(research_get(r, RF_BRIEF), "abc");
    assert_null(research_get(r, RF_MODEL));
    assert_string_equal(research_get(r, RF_STATUS), "running"); /* untouched */
    assert_int_equal(research_int(r, RF_ATTEMPT), -12);
    assert_string_equal(research_get(r, RF_ERROR), "e2");
    research_free(r);

    change_release(&c);
    assert_null(c.research_id);
    assert_int_equal(c.n_out, 0);
    assert_true(change_is_empty(&c));
    change_release(&c); /* released twice: fine */
}

static void
test_change_is_empty_by_kind_and_content(void **state)
{
    (void)state;
    struct change c = CHANGE_INIT;
    static const enum change_kind kinds[] = {CHANGE_CREATE, CHANGE_FINISH, CHANGE_NOTE};
    for (size_t i = 0; i < N_OF(kinds); i++) {
        change_init(&c, kinds[i], kinds[i] == CHANGE_NOTE ? NULL : "rs_1");
        assert_false(change_is_empty(&c)); /* every kind but UPDATE writes something */
        change_release(&c);
    }
    change_init(&c, CHANGE_UPDATE, "rs_1");
    c.request_id = strdup("req-1"); /* a remembered outcome alone is not empty */
    assert_non_null(c.request_id);
    assert_false(change_is_empty(&c));
    change_release(&c);
    change_init(&c, CHANGE_UPDATE, "rs_1");
    change_emit_raw(&c, TOPIC_EVENTS, "rs_1", 4, "x", 1);
    assert_false(change_is_empty(&c));
    change_release(&c);
}

static void
test_change_emit_raw_copies(void **state)
{
    (void)state;
    struct change c = CHANGE_INIT;
    change_init(&c, CHANGE_NOTE, NULL);
    char payload[4] = {'a', '\0', 'b', 'c'};
    char key[8];
    snprintf(key, sizeof(key), "%s", "k1");
    for (int i = 0; i < 100; i++) { /* growth */
        change_emit_raw(&c, TOPIC_DEADLETTER, key, 2, payload, sizeof(payload));
    }
    change_emit_raw(&c, TOPIC_EVENTS, NULL, 0, payload, 0); /* no key, no bytes */
    change_emit_raw(&c, TOPIC_EVENTS, key, 0, payload, 1);  /* an empty key */
    payload[0] = 'X';
    key[0] = 'X';
    assert_int_equal(c.n_out, 102);
    assert_int_equal(c.out[99].topic, TOPIC_DEADLETTER);
    assert_int_equal(c.out[99].key_len, 2);
    assert_string_equal(c.out[99].key, "k1");
    assert_int_equal(c.out[99].len, 4);
    assert_memory_equal(c.out[99].payload, "a\0bc", 4);
    assert_null(c.out[99].outbox_id);
    assert_null(c.out[100].key); /* no key stays no key */
    assert_int_equal(c.out[100].key_len, 0);
    assert_int_equal(c.out[100].len, 0);
    assert_non_null(c.out[101].key); /* an empty key is not no key */
    assert_int_equal(c.out[101].key_len, 0);
    assert_string_equal(c.out[101].key, "");
    assert_int_equal(c.out[101].len, 1);
    assert_memory_equal(c.out[101].payload, "a", 1);
    change_release(&c);
}

/* A key is bytes: NULs and 0xff are copied whole, key_len of them, with a NUL after. */
static void
test_change_emit_raw_binary_key(void **state)
{
    (void)state;
    struct change c = CHANGE_INIT;
    change_init(&c, CHANGE_NOTE, NULL);
    char key[] = {'\0', 'a', '\0', '\xff', 'b', '\0'};
    /* exact-size heap copies, so a read past key_len is an ASan error */
    char *heap_key = malloc(sizeof(key));
    assert_non_null(heap_key);
    memcpy(heap_key, key, sizeof(key));
    change_emit_raw(&c, TOPIC_DEADLETTER, heap_key, sizeof(key), "p", 1);
    change_emit_raw(&c, TOPIC_DEADLETTER, heap_key + 1, 2, "q", 1); /* "a\0" */
    memset(heap_key, 'X', sizeof(key));
    free(heap_key);

    assert_int_equal(c.n_out, 2);
    assert_int_equal(c.out[0].key_len, sizeof(key));
    assert_memory_equal(c.out[0].key, key, sizeof(key));
    assert_int_equal(c.out[0].key[sizeof(key)], '\0');
    assert_int_equal(c.out[0].len, 1);
    assert_memory_equal(c.out[0].payload, "p", 1);
    assert_int_equal(c.out[1].key_len, 2);
    assert_memory_equal(c.out[1].key, "a\0", 2);
    assert_int_equal(c.out[1].key[2], '\0');
    change_release(&c);
    assert_int_equal(c.n_out, 0);
}

static void
test_change_list_add_drop_reset(void **state)
{
    (void)state;
    struct change_list l = CHANGE_LIST_INIT;
    for (int i = 0; i < 50; i++) {
        struct change *c = change_list_add(&l);
        assert_true(change_is_empty(c));
        change_init(c, CHANGE_UPDATE, "rs_x");
        change_set(c, RF_BRIEF, "b");
    }
    assert_int_equal(l.n, 50);
    struct change *last = change_list_add(&l);
    change_init(last, CHANGE_UPDATE, "rs_y");
    change_list_drop_last(&l); /* an empty plan is dropped */
    assert_int_equal(l.n, 50);
    assert_string_equal(l.items[49].research_id, "rs_x");
    size_t cap = l.cap;
    change_list_reset(&l);
    assert_int_equal(l.n, 0);
    assert_int_equal(l.cap, cap); /* capacity kept */
    change_list_add(&l);
    change_list_release(&l);
    assert_null(l.items);
    assert_int_equal(l.n, 0);
    change_list_release(&l);
}

/* A research as the coordinator writes one, waiting for a design worker. */
static struct research *
sound_research(void)
{
    struct research *r = research_new();
    research_set(r, RF_RESEARCH_ID, "rs_1");
    research_set(r, RF_STATUS, "running");
    research_set(r, RF_PHASE, "designing");
    research_set(r, RF_CREATED_AT, "1700000000000");
    research_set(r, RF_ATTEMPT, "1");
    research_set(r, RF_CHILD_STATUS, "dispatched");
    research_set(r, RF_DISPATCH_ID, "rs_1:designing:1");
    research_set(r, RF_WORKER_ID, "w-1");
    research_set(r, RF_COST_USD, "0.25");
    research_set(r, RF_BYPASS_GATES, "0");
    return r;
}

/* Contract §7 "Corrupt stored state": every way a stored research may be unreadable is named,
 * field first; a sound one passes. */
static void
test_research_check_names_the_corrupt_field(void **state)
{
    (void)state;
    static const struct {
        enum research_field field;
        const char *value; /* NULL: removed */
        const char *want;  /* a piece of the reason */
    } cases[] = {
        {RF_PHASE, "xyz", "corrupt research: phase: not a phase of a running research (\"xyz\")"},
        {RF_PHASE, "completed", "corrupt research: phase: not a phase"},
        {RF_PHASE, NULL, "corrupt research: phase: missing"},
        {RF_ATTEMPT, "abc", "corrupt research: attempt: not a whole number"},
        {RF_ATTEMPT, "9223372036854775807", "corrupt research: attempt: not a whole number"},
        {RF_ATTEMPT, "-1", "corrupt research: attempt"},
        {RF_STATUS, "maybe", "corrupt research: status: not running"},
        {RF_STATUS, NULL, "corrupt research: status: missing"},
        {RF_RESEARCH_ID, NULL, "corrupt research: research_id: missing"},
        {RF_RESEARCH_ID, "rs_2", "corrupt research: research_id: not the id it is stored under"},
        {RF_CREATED_AT, NULL, "corrupt research: created_at: missing"},
        {RF_CREATED_AT, "soon", "corrupt research: created_at: not a time in ms"},
        {RF_DISPATCHED_AT, "1e9", "corrupt research: dispatched_at: not a time in ms"},
        {RF_WAITING_SINCE, "99999999999999999999", "corrupt research: waiting_since"},
        {RF_CHILD_STATUS, "running", "corrupt research: child_status: not dispatched"},
        {RF_WORKER_ID, NULL, "corrupt research: worker_id: missing while a dispatch is out"},
        {RF_WORKER_ID, "w 1", "corrupt research: worker_id: not an id"},
        {RF_COST_USD, "-3", "corrupt research: cost_usd: not an amount"},
        {RF_COST_USD, "nan", "corrupt research: cost_usd: not an amount"},
        {RF_BYPASS_GATES, "yes", "corrupt research: bypass_gates: not 0 or 1"},
        {RF_RELEASED, "x", "corrupt research: released: not a whole number 0..attempt"},
        {RF_RELEASED, "5", "corrupt research: released: not a whole number 0..attempt"},
        {RF_RESEND_REASON, "bored", "resend_reason: not released or phase_timeout"},
        {RF_OPTIONS, "[1]", "corrupt research: options: not a JSON object"},
        {RF_OPTIONS, "{\"a\":", "corrupt research: options: not a JSON object"},
    };
    char why[300];
    struct research *ok = sound_research();
    assert_true(research_check(ok, "rs_1", why, sizeof(why)));
    research_free(ok);
    for (size_t i = 0; i < N_OF(cases); i++) {
        struct research *r = sound_research();
        research_set(r, cases[i].field, cases[i].value);
        why[0] = '\0';
        if (research_check(r, "rs_1", why, sizeof(why)) || strstr(why, cases[i].want) == NULL) {
            fail_msg("case %zu (%s=%s): got \"%s\"", i, research_field_name(cases[i].field),
                     cases[i].value != NULL ? cases[i].value : "(none)", why);
        }
        research_free(r);
    }
    /* A result field that is no number, and a dispatch in a phase no worker runs. */
    struct research *r = sound_research();
    research_set(r, (enum research_field)research_result_field(WORKER_TRAINING, "accuracy"), "hi");
    assert_false(research_check(r, "rs_1", why, sizeof(why)));
    assert_non_null(strstr(why, "corrupt research: training.accuracy: not a number"));
    research_free(r);
    r = sound_research();
    research_set(r, RF_PHASE, "pending");
    assert_false(research_check(r, "rs_1", why, sizeof(why)));
    assert_non_null(strstr(why, "corrupt research: child_status: set while the phase is pending"));
    research_free(r);
    /* Control characters and quotes of a value are not passed on to logs and events. */
    r = sound_research();
    research_set(r, RF_PHASE, "x\x1b[31m\"");
    assert_false(research_check(r, "rs_1", why, sizeof(why)));
    assert_null(strchr(why, '\x1b'));
    research_free(r);
}

/* A new dispatch in the mirror is not acknowledged by Kafka yet: its pick-up clock restarts. */
static void
test_change_apply_a_new_dispatch_clears_its_ack(void **state)
{
    (void)state;
    struct research *r = sound_research();
    r->acked_at_ms = 1234;
    struct change c = CHANGE_INIT;
    change_init(&c, CHANGE_UPDATE, "rs_1");
    change_set(&c, RF_UPDATED_AT, "5");
    change_apply(&c, r);
    assert_int_equal(r->acked_at_ms, 1234);
    change_set(&c, RF_DISPATCH_ID, "rs_1:designing:2");
    change_apply(&c, r);
    assert_int_equal(r->acked_at_ms, 0);
    change_release(&c);
    research_free(r);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_research_check_names_the_corrupt_field),
        cmocka_unit_test(test_change_apply_a_new_dispatch_clears_its_ack),
        cmocka_unit_test(test_research_field_names_round_trip),
        cmocka_unit_test(test_research_field_names_are_distinct),
        cmocka_unit_test(test_research_field_names_match_contract),
        cmocka_unit_test(test_research_result_fields_agree_with_schema),
        cmocka_unit_test(test_research_timeline_fields),
        cmocka_unit_test(test_research_result_field_is_per_type),
        cmocka_unit_test(test_research_set_copies_and_clears),
        cmocka_unit_test(test_research_dup_is_deep),
        cmocka_unit_test(test_research_int_reads_decimal_else_zero),
        cmocka_unit_test(test_research_phase_reads_name_else_pending),
        cmocka_unit_test(test_research_is_compares_whole_value),
        cmocka_unit_test(test_change_set_copies_clears_and_applies),
        cmocka_unit_test(test_change_is_empty_by_kind_and_content),
        cmocka_unit_test(test_change_emit_raw_copies),
        cmocka_unit_test(test_change_emit_raw_binary_key),
        cmocka_unit_test(test_change_list_add_drop_reset),
    };
    return cmocka_run_group_tests_name("research", tests, NULL, NULL);
}
