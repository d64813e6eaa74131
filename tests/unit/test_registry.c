/* SPDX-License-Identifier: MIT
 * test_registry: the active researches in memory: age order (created_at, then id), find,
 * replace, removal during a walk (NULL slots until compact), registry_apply of the three
 * kinds of change the store writes, and who waits for which worker type since when. */
#include "tests/support/test.h"

#include <stdio.h>
#include <string.h>

#include "coordinator/change.h"
#include "coordinator/registry.h"
#include "coordinator/research.h"

static struct research *
make(const char *id, const char *created_at)
{
    struct research *r = research_new();
    research_set(r, RF_RESEARCH_ID, id);
    research_set(r, RF_CREATED_AT, created_at);
    research_set(r, RF_STATUS, "running");
    return r;
}

/* The ids in slot order, "-" for a removed slot, joined by spaces. */
static void
order(const struct registry *reg, char *out, size_t size)
{
    size_t used = 0;
    out[0] = '\0';
    for (size_t i = 0; i < registry_len(reg); i++) {
        const struct research *r = registry_at(reg, i);
        const char *id = r != NULL ? research_get(r, RF_RESEARCH_ID) : "-";
        int n = snprintf(out + used, size - used, "%s%s", i > 0 ? " " : "", id);
        assert_true(n > 0 && (size_t)n < size - used);
        used += (size_t)n;
    }
}

static void
assert_order(const struct registry *reg, const char *want)
{
    char got[512];
    order(reg, got, sizeof(got));
    if (strcmp(got, want) != 0) {
        fail_msg("order \"%s\", want \"%s\"", got, want);
    }
}

static void
test_registry_age_order(void **state)
{
    (void)state;
    struct registry *reg = registry_new();
    assert_int_equal(registry_count(reg), 0);
    assert_int_equal(registry_len(reg), 0);
    assert_null(registry_at(reg, 0));
    registry_add(reg, make("rs_c", "300"));
    registry_add(reg, make("rs_a", "100"));
    registry_add(reg, make("rs_e", "500"));
    registry_add(reg, make("rs_b2", "200"));
    registry_add(reg, make("rs_b1", "200")); /* same ms: by id */
    registry_add(reg, make("rs_d", "1000")); /* numeric, not text, order: 1000 > 500 */
    assert_order(reg, "rs_a rs_b1 rs_b2 rs_c rs_e rs_d");
    assert_int_equal(registry_count(reg), 6);
    assert_int_equal(registry_len(reg), 6);
    assert_null(registry_at(reg, 6));
    registry_free(reg);
    registry_free(NULL);
}

static void
test_registry_find_and_replace(void **state)
{
    (void)state;
    struct registry *reg = registry_new();
    registry_add(reg, make("rs_a", "100"));
    registry_add(reg, make("rs_b", "200"));
    struct research *b = registry_find(reg, "rs_b");
    assert_non_null(b);
    assert_string_equal(research_get(b, RF_RESEARCH_ID), "rs_b");
    assert_null(registry_find(reg, "rs_zz"));
    /* the same id again replaces the old one, in its new age place */
    struct research *b2 = make("rs_b", "50");
    research_set(b2, RF_BRIEF, "second");
    registry_add(reg, b2);
    assert_int_equal(registry_count(reg), 2);
    assert_ptr_equal(registry_find(reg, "rs_b"), b2);
    assert_order(reg, "rs_b rs_a");
    registry_remove(reg, "rs_zz"); /* absent: no-op */
    assert_int_equal(registry_count(reg), 2);
    registry_clear(reg);
    assert_int_equal(registry_count(reg), 0);
    assert_int_equal(registry_len(reg), 0);
    assert_null(registry_find(reg, "rs_a"));
    registry_add(reg, make("rs_x", "1")); /* usable after a clear */
    assert_order(reg, "rs_x");
    registry_free(reg);
}

static void
test_registry_remove_during_walk(void **state)
{
    (void)state;
    struct registry *reg = registry_new();
    char id[16], at[16];
    for (int i = 0; i < 6; i++) {
        snprintf(id, sizeof(id), "rs_%d", i);
        snprintf(at, sizeof(at), "%d", 100 + i);
        registry_add(reg, make(id, at));
    }
    /* walk, removing the even ones: later slots do not move under the walk */
    size_t seen = 0;
    for (size_t i = 0; i < registry_len(reg); i++) {
        struct research *r = registry_at(reg, i);
        assert_non_null(r);
        seen++;
        if (i % 2 == 0) {
            char copy[16];
            snprintf(copy, sizeof(copy), "%s", research_get(r, RF_RESEARCH_ID));
            registry_remove(reg, copy);
            assert_null(registry_at(reg, i));
            assert_null(registry_find(reg, copy));
        }
    }
    assert_int_equal(seen, 6);
    assert_int_equal(registry_len(reg), 6);
    assert_int_equal(registry_count(reg), 3);
    assert_order(reg, "- rs_1 - rs_3 - rs_5");
    registry_compact(reg);
    assert_int_equal(registry_len(reg), 3);
    assert_order(reg, "rs_1 rs_3 rs_5");
    assert_non_null(registry_find(reg, "rs_3"));
    registry_compact(reg); /* nothing to close */
    assert_order(reg, "rs_1 rs_3 rs_5");
    registry_free(reg);
}

static void
test_registry_apply_create_update_finish(void **state)
{
    (void)state;
    struct registry *reg = registry_new();
    registry_add(reg, make("rs_old", "100"));

    struct change c = CHANGE_INIT;
    change_init(&c, CHANGE_CREATE, "rs_new");
    c.score = 200;
    change_set(&c, RF_RESEARCH_ID, "rs_new");
    change_set(&c, RF_CREATED_AT, "200");
    change_set(&c, RF_PHASE, "pending");
    change_set(&c, RF_STATUS, "running");
    registry_apply(reg, &c);
    change_release(&c);
    assert_int_equal(registry_count(reg), 2);
    assert_order(reg, "rs_old rs_new");
    struct research *r = registry_find(reg, "rs_new");
    assert_non_null(r);
    assert_string_equal(research_get(r, RF_PHASE), "pending");

    change_init(&c, CHANGE_UPDATE, "rs_new");
    change_set(&c, RF_PHASE, "designing");
    change_set(&c, RF_WAITING_SINCE, NULL); /* a clear */
    change_set_int(&c, RF_ATTEMPT, 1);
    registry_apply(reg, &c);
    change_release(&c);
    assert_ptr_equal(registry_find(reg, "rs_new"), r); /* updated in place */
    assert_string_equal(research_get(r, RF_PHASE), "designing");
    assert_string_equal(research_get(r, RF_ATTEMPT), "1");
    assert_string_equal(research_get(r, RF_STATUS), "running"); /* untouched */

    change_init(&c, CHANGE_UPDATE, "rs_new");
    change_set(&c, RF_BRIEF, "b");
    change_set(&c, RF_BRIEF, NULL); /* the last write wins: a clear */
    registry_apply(reg, &c);
    change_release(&c);
    assert_null(research_get(r, RF_BRIEF));

    change_init(&c, CHANGE_UPDATE, "rs_unknown"); /* not active: ignored */
    change_set(&c, RF_PHASE, "training");
    registry_apply(reg, &c);
    change_release(&c);
    assert_int_equal(registry_count(reg), 2);
    assert_null(registry_find(reg, "rs_unknown"));

    change_init(&c, CHANGE_NOTE, NULL); /* no research */
    c.request_id = NULL;
    registry_apply(reg, &c);
    change_release(&c);
    assert_int_equal(registry_count(reg), 2);

    change_init(&c, CHANGE_FINISH, "rs_old");
    c.score = 300;
    change_set(&c, RF_STATUS, "completed");
    registry_apply(reg, &c);
    change_release(&c);
    assert_int_equal(registry_count(reg), 1);
    assert_null(registry_find(reg, "rs_old"));
    registry_compact(reg);
    assert_order(reg, "rs_new");
    registry_free(reg);
}

static void
assert_slots(const struct registry *reg)
{
    for (size_t i = 0; i < registry_len(reg); i++) {
        const struct research *r = registry_at(reg, i);
        if (r != NULL) {
            assert_int_equal(r->slot, i);
        }
    }
}

/* Each research knows its slot (what removal and the pass's age sort use), through inserts
 * in the middle and compaction; the figures by phase and waiting follow every change. */
static void
test_registry_slots_and_figures(void **state)
{
    (void)state;
    struct registry *reg = registry_new();
    registry_add(reg, make("rs_c", "300"));
    registry_add(reg, make("rs_a", "100"));
    registry_add(reg, make("rs_b", "200"));
    assert_slots(reg);
    int64_t by_phase[PHASE_COUNT], waiting = -1;
    registry_figures(reg, by_phase, &waiting);
    assert_int_equal(by_phase[PHASE_PENDING], 3);
    assert_int_equal(waiting, 0);

    struct change c = CHANGE_INIT;
    change_init(&c, CHANGE_UPDATE, "rs_b");
    change_set(&c, RF_PHASE, "training");
    change_set_int(&c, RF_WAITING_SINCE, 5);
    registry_apply(reg, &c);
    change_release(&c);
    registry_figures(reg, by_phase, &waiting);
    assert_int_equal(by_phase[PHASE_PENDING], 2);
    assert_int_equal(by_phase[PHASE_TRAINING], 1);
    assert_int_equal(waiting, 1);

    registry_remove(reg, "rs_a");
    assert_null(registry_at(reg, 0));
    registry_compact(reg);
    assert_order(reg, "rs_b rs_c");
    assert_slots(reg);
    registry_remove(reg, "rs_b");
    registry_figures(reg, by_phase, &waiting);
    assert_int_equal(by_phase[PHASE_TRAINING], 0);
    assert_int_equal(by_phase[PHASE_PENDING], 1);
    assert_int_equal(waiting, 0);
    registry_add(reg, make("rs_0", "50")); /* compacts, then goes first */
    assert_order(reg, "rs_0 rs_c");
    assert_slots(reg);
    registry_clear(reg);
    registry_figures(reg, by_phase, &waiting);
    assert_int_equal(by_phase[PHASE_PENDING], 0);
    registry_free(reg);
}

/* The sweep's cursor visits every research once, in age order, across steps, though
 * researches come and go between them. */
static void
test_registry_sweep_cursor_survives_changes(void **state)
{
    (void)state;
    struct registry *reg = registry_new();
    registry_add(reg, make("rs_b", "200"));
    registry_add(reg, make("rs_c", "300"));
    registry_add(reg, make("rs_d", "400"));
    registry_add(reg, make("rs_e", "500"));
    registry_sweep_start(reg);
    assert_string_equal(research_get(registry_sweep_next(reg), RF_RESEARCH_ID), "rs_b");
    assert_string_equal(research_get(registry_sweep_next(reg), RF_RESEARCH_ID), "rs_c");
    registry_remove(reg, "rs_b");          /* behind the cursor */
    registry_remove(reg, "rs_d");          /* ahead: skipped */
    registry_add(reg, make("rs_a", "100")); /* compacts, lands behind: not visited */
    registry_add(reg, make("rs_f", "600")); /* ahead: visited */
    assert_string_equal(research_get(registry_sweep_next(reg), RF_RESEARCH_ID), "rs_e");
    registry_compact(reg);
    assert_string_equal(research_get(registry_sweep_next(reg), RF_RESEARCH_ID), "rs_f");
    assert_null(registry_sweep_next(reg));
    assert_null(registry_sweep_next(reg));
    registry_sweep_start(reg);
    assert_string_equal(research_get(registry_sweep_next(reg), RF_RESEARCH_ID), "rs_a");
    registry_free(reg);
}

static void
set_fields(struct registry *reg, const char *id, const char *const *kv)
{
    struct change c = CHANGE_INIT;
    change_init(&c, CHANGE_UPDATE, id);
    for (size_t i = 0; kv[i] != NULL; i += 2) {
        change_set(&c, (enum research_field)research_field_parse(kv[i]), kv[i + 1]);
    }
    registry_apply(reg, &c);
    change_release(&c);
}

static void
assert_waits(struct registry *reg, enum worker_type wt, int64_t n, int64_t oldest)
{
    int64_t n_waiting[WORKER_TYPE_COUNT], since[WORKER_TYPE_COUNT];
    registry_waits(reg, n_waiting, since);
    if (n_waiting[wt] != n || since[wt] != oldest) {
        fail_msg("%s: %lld waiting since %lld, want %lld since %lld", worker_type_name(wt),
                 (long long)n_waiting[wt], (long long)since[wt], (long long)n, (long long)oldest);
    }
}

/* Who waits for which type of worker, and since when the longest wait, follow every change:
 * the oldest wait is not the oldest research's. */
static void
test_registry_waits_by_type_and_oldest(void **state)
{
    (void)state;
    struct registry *reg = registry_new();
    registry_add(reg, make("rs_a", "100"));
    registry_add(reg, make("rs_b", "200"));
    registry_add(reg, make("rs_c", "300"));
    assert_waits(reg, WORKER_DESIGN, 0, 0);
    set_fields(reg, "rs_a", (const char *const[]){"waiting_since", "500", NULL});
    set_fields(reg, "rs_c", (const char *const[]){"waiting_since", "400", NULL});
    set_fields(reg, "rs_b",
               (const char *const[]){"phase", "designing", "child_status", "completed",
                                     "waiting_since", "300", NULL});
    assert_waits(reg, WORKER_DESIGN, 2, 400);
    assert_waits(reg, WORKER_TRAINING, 1, 300);
    /* rs_c is sent to a designer: rs_a waits the longest for one now. */
    set_fields(reg, "rs_c",
               (const char *const[]){"phase", "designing", "child_status", "dispatched",
                                     "worker_id", "d1", "waiting_since", NULL, NULL});
    assert_waits(reg, WORKER_DESIGN, 1, 500);
    registry_remove(reg, "rs_a");
    assert_waits(reg, WORKER_DESIGN, 0, 0);
    /* rs_c's dispatch is lost and waits to be sent again: still a designer it waits for. */
    set_fields(reg, "rs_c", (const char *const[]){"waiting_since", "900", NULL});
    assert_waits(reg, WORKER_DESIGN, 1, 900);
    /* Many waits come and go behind rs_b's: the answer stays right. */
    for (int i = 0; i < 300; i++) {
        char since[32];
        snprintf(since, sizeof(since), "%d", 1000 + i);
        set_fields(reg, "rs_c", (const char *const[]){"waiting_since", since, NULL});
        set_fields(reg, "rs_c", (const char *const[]){"phase", "training", NULL});
        set_fields(reg, "rs_c", (const char *const[]){"phase", "designing", NULL});
    }
    assert_waits(reg, WORKER_TRAINING, 1, 300);
    assert_waits(reg, WORKER_DESIGN, 1, 1299);
    registry_clear(reg);
    assert_waits(reg, WORKER_TRAINING, 0, 0);
    registry_free(reg);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_registry_age_order),
        cmocka_unit_test(test_registry_find_and_replace),
        cmocka_unit_test(test_registry_remove_during_walk),
        cmocka_unit_test(test_registry_apply_create_update_finish),
        cmocka_unit_test(test_registry_slots_and_figures),
        cmocka_unit_test(test_registry_sweep_cursor_survives_changes),
        cmocka_unit_test(test_registry_waits_by_type_and_oldest),
    };
    return cmocka_run_group_tests_name("registry", tests, NULL, NULL);
}
