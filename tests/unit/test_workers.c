/* SPDX-License-Identifier: MIT
 * test_workers: live and free workers of a cycle (contract §5): free = live, idle and not held
 * by an active research; the least recently dispatched free worker goes first, across cycles,
 * ties by id; the concurrency limit formula. */
#include "tests/support/test.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "coordinator/workers.h"

struct beat_spec {
    const char *id;
    enum worker_type type;
    bool idle;
};

static char *
dup_str(const char *s)
{
    size_t n = strlen(s) + 1;
    char *c = malloc(n);
    assert_non_null(c);
    memcpy(c, s, n);
    return c;
}

/* A fresh read of these heartbeats (the array and strings are handed over); holds carry over. */
static void
reread(struct workers *w, const struct beat_spec *spec, size_t n, int64_t now_ms)
{
    struct worker_beat *beats = n > 0 ? calloc(n, sizeof(*beats)) : NULL;
    for (size_t i = 0; i < n; i++) {
        beats[i].id = dup_str(spec[i].id);
        beats[i].type = spec[i].type;
        beats[i].idle = spec[i].idle;
        beats[i].dispatch_id = spec[i].idle ? NULL : dup_str("d-other");
        beats[i].last_seen_ms = now_ms;
    }
    workers_begin(w, beats, n, now_ms, 15000);
}

/* A full sweep's start: a fresh read, and every hold forgotten (the sweep recomputes them). */
static void
begin(struct workers *w, const struct beat_spec *spec, size_t n, int64_t now_ms)
{
    reread(w, spec, n, now_ms);
    workers_release_all(w);
}

static void
expect_take(struct workers *w, enum worker_type wt, int64_t now_ms, const char *want)
{
    const char *got = workers_take(w, wt, now_ms);
    if (want == NULL) {
        if (got != NULL) {
            fail_msg("took %s, want none", got);
        }
        return;
    }
    if (got == NULL || strcmp(got, want) != 0) {
        fail_msg("took %s, want %s", got != NULL ? got : "(none)", want);
    }
}

static void
test_free_workers_are_live_idle_and_not_held(void **state)
{
    (void)state;
    struct workers *w = workers_new();
    static const struct beat_spec spec[] = {
        {"d-busy", WORKER_DESIGN, false},
        {"d-held", WORKER_DESIGN, true},
        {"d-free", WORKER_DESIGN, true},
        {"t-free", WORKER_TRAINING, true},
    };
    begin(w, spec, N_OF(spec), 1000);
    workers_hold(w, "d-held");
    workers_hold(w, "not-live"); /* an unknown id is ignored */
    expect_take(w, WORKER_DESIGN, 1000, "d-free");
    expect_take(w, WORKER_DESIGN, 1000, NULL); /* taken once, then held */
    expect_take(w, WORKER_BACKTEST, 1000, NULL);
    expect_take(w, WORKER_TRAINING, 1000, "t-free");
    expect_take(w, WORKER_TRAINING, 1000, NULL);
    workers_free(w);
    workers_free(NULL);
}

/* A hold that arrives after the free list was built still counts. */
static void
test_workers_hold_after_take_counts(void **state)
{
    (void)state;
    struct workers *w = workers_new();
    static const struct beat_spec spec[] = {
        {"a", WORKER_BACKTEST, true},
        {"b", WORKER_BACKTEST, true},
    };
    begin(w, spec, N_OF(spec), 0);
    expect_take(w, WORKER_BACKTEST, 10, "a");
    workers_hold(w, "b");
    expect_take(w, WORKER_BACKTEST, 10, NULL);
    workers_free(w);
}

static void
test_workers_live_busy_find(void **state)
{
    (void)state;
    struct workers *w = workers_new();
    static const struct beat_spec spec[] = {
        {"t1", WORKER_TRAINING, true},   {"t2", WORKER_TRAINING, false},
        {"t3", WORKER_TRAINING, false},  {"b1", WORKER_BACKTEST, true},
        {"a1", WORKER_ASSESSMENT, true},
    };
    begin(w, spec, N_OF(spec), 5);
    assert_int_equal(workers_live(w, WORKER_TRAINING), 3);
    assert_int_equal(workers_busy(w, WORKER_TRAINING), 2);
    assert_int_equal(workers_live(w, WORKER_BACKTEST), 1);
    assert_int_equal(workers_busy(w, WORKER_BACKTEST), 0);
    assert_int_equal(workers_live(w, WORKER_DESIGN), 0);
    assert_int_equal(workers_live(w, WORKER_ASSESSMENT), 1);
    const struct worker_beat *b = workers_find(w, "t2");
    assert_non_null(b);
    assert_string_equal(b->id, "t2");
    assert_int_equal(b->type, WORKER_TRAINING);
    assert_false(b->idle);
    assert_null(workers_find(w, "nobody"));
    /* a new cycle replaces the old one entirely */
    static const struct beat_spec next[] = {{"b9", WORKER_BACKTEST, true}};
    begin(w, next, N_OF(next), 6);
    assert_int_equal(workers_live(w, WORKER_TRAINING), 0);
    assert_null(workers_find(w, "t2"));
    assert_non_null(workers_find(w, "b9"));
    begin(w, NULL, 0, 7);
    assert_int_equal(workers_live(w, WORKER_BACKTEST), 0);
    expect_take(w, WORKER_BACKTEST, 7, NULL);
    workers_free(w);
}

static void
test_workers_ties_by_id(void **state)
{
    (void)state;
    struct workers *w = workers_new();
    static const struct beat_spec spec[] = {
        {"w3", WORKER_DESIGN, true},
        {"w1", WORKER_DESIGN, true},
        {"w2", WORKER_DESIGN, true},
    };
    begin(w, spec, N_OF(spec), 0);
    expect_take(w, WORKER_DESIGN, 100, "w1");
    expect_take(w, WORKER_DESIGN, 100, "w2");
    expect_take(w, WORKER_DESIGN, 100, "w3");
    expect_take(w, WORKER_DESIGN, 100, NULL);
    workers_free(w);
}

/* Least recently dispatched first, remembered across cycles; never dispatched goes first. */
static void
test_workers_least_recently_dispatched_first(void **state)
{
    (void)state;
    struct workers *w = workers_new();
    static const struct beat_spec spec[] = {
        {"a", WORKER_TRAINING, true},
        {"b", WORKER_TRAINING, true},
        {"c", WORKER_TRAINING, true},
    };
    begin(w, spec, N_OF(spec), 100);
    expect_take(w, WORKER_TRAINING, 100, "a"); /* all new: by id */
    begin(w, spec, N_OF(spec), 200);
    expect_take(w, WORKER_TRAINING, 200, "b"); /* a went out at 100 */
    begin(w, spec, N_OF(spec), 300);
    expect_take(w, WORKER_TRAINING, 300, "c"); /* never dispatched */
    expect_take(w, WORKER_TRAINING, 300, "a"); /* 100 */
    expect_take(w, WORKER_TRAINING, 300, "b"); /* 200 */
    expect_take(w, WORKER_TRAINING, 300, NULL);
    begin(w, spec, N_OF(spec), 400);
    expect_take(w, WORKER_TRAINING, 400, "a"); /* all at 300: by id */
    /* a worker that was away keeps its history when it comes back */
    static const struct beat_spec without_b[] = {
        {"a", WORKER_TRAINING, true},
        {"c", WORKER_TRAINING, true},
    };
    begin(w, without_b, N_OF(without_b), 500);
    expect_take(w, WORKER_TRAINING, 500, "c"); /* c 300 < a 400 */
    begin(w, spec, N_OF(spec), 600);
    expect_take(w, WORKER_TRAINING, 600, "b"); /* b 300, a 400, c 500 */
    expect_take(w, WORKER_TRAINING, 600, "a");
    expect_take(w, WORKER_TRAINING, 600, "c");
    workers_free(w);
}

/* A dispatch at 0 ms still counts as a dispatch (later than never). */
static void
test_workers_dispatch_at_zero_ms_is_remembered(void **state)
{
    (void)state;
    struct workers *w = workers_new();
    static const struct beat_spec spec[] = {
        {"x", WORKER_ASSESSMENT, true},
        {"y", WORKER_ASSESSMENT, true},
    };
    begin(w, spec, N_OF(spec), 0);
    expect_take(w, WORKER_ASSESSMENT, 0, "x");
    begin(w, spec, N_OF(spec), 1);
    expect_take(w, WORKER_ASSESSMENT, 1, "y");
    workers_free(w);
}

/* Busy and held workers are skipped without losing their place in the order. */
static void
test_workers_order_skips_busy_and_held(void **state)
{
    (void)state;
    struct workers *w = workers_new();
    static const struct beat_spec all_idle[] = {
        {"a", WORKER_DESIGN, true},
        {"b", WORKER_DESIGN, true},
        {"c", WORKER_DESIGN, true},
    };
    begin(w, all_idle, N_OF(all_idle), 0);
    expect_take(w, WORKER_DESIGN, 10, "a");
    expect_take(w, WORKER_DESIGN, 20, "b");
    expect_take(w, WORKER_DESIGN, 30, "c");
    static const struct beat_spec a_busy[] = {
        {"a", WORKER_DESIGN, false},
        {"b", WORKER_DESIGN, true},
        {"c", WORKER_DESIGN, true},
    };
    begin(w, a_busy, N_OF(a_busy), 40);
    workers_hold(w, "b");
    expect_take(w, WORKER_DESIGN, 40, "c");
    expect_take(w, WORKER_DESIGN, 40, NULL);
    begin(w, all_idle, N_OF(all_idle), 50);
    expect_take(w, WORKER_DESIGN, 50, "a"); /* 10 */
    expect_take(w, WORKER_DESIGN, 50, "b"); /* 20 */
    expect_take(w, WORKER_DESIGN, 50, "c"); /* 40 */
    workers_free(w);
}

static void
test_workers_done_dispatch_frees_a_lagging_heartbeat(void **state)
{
    (void)state;
    struct workers *w = workers_new();
    /* "a" still says busy with d-other, the dispatch whose completion was just applied. */
    static const struct beat_spec a_busy[] = {{"a", WORKER_DESIGN, false}};
    begin(w, a_busy, N_OF(a_busy), 0);
    workers_done(w, "a", "d-elsewhere"); /* not what it shows: still busy */
    expect_take(w, WORKER_DESIGN, 1, NULL);
    workers_done(w, "a", "d-other");
    assert_int_equal(workers_busy(w, WORKER_DESIGN), 0);
    expect_take(w, WORKER_DESIGN, 2, "a");
    /* The next cycle's heartbeat still lags: still free. */
    begin(w, a_busy, N_OF(a_busy), 3);
    expect_take(w, WORKER_DESIGN, 3, "a");
    /* Once the heartbeat moved on (idle, then busy with d-other again = new work of its own),
     * the old completion no longer speaks for it. */
    static const struct beat_spec a_idle[] = {{"a", WORKER_DESIGN, true}};
    begin(w, a_idle, N_OF(a_idle), 4);
    begin(w, a_busy, N_OF(a_busy), 5);
    expect_take(w, WORKER_DESIGN, 5, NULL);
    /* A worker that disappears takes its entry with it. */
    workers_done(w, "a", "d-other");
    begin(w, NULL, 0, 6);
    begin(w, a_busy, N_OF(a_busy), 7);
    expect_take(w, WORKER_DESIGN, 7, NULL);
    workers_free(w);
}

/* Between sweeps the coordinator's record says who is busy: a hold survives a heartbeat read
 * that still says idle, and only the completion (or the next sweep) releases it. */
static void
test_workers_holds_carry_over_reads(void **state)
{
    (void)state;
    struct workers *w = workers_new();
    static const struct beat_spec idle[] = {
        {"a", WORKER_TRAINING, true},
        {"b", WORKER_TRAINING, true},
    };
    begin(w, idle, N_OF(idle), 0);
    assert_int_equal(workers_count_free(w, WORKER_TRAINING), 2);
    expect_take(w, WORKER_TRAINING, 1, "a");
    workers_hold(w, "b");
    assert_int_equal(workers_count_free(w, WORKER_TRAINING), 0);
    reread(w, idle, N_OF(idle), 2); /* heartbeats lag: both still say idle */
    assert_int_equal(workers_count_free(w, WORKER_TRAINING), 0);
    expect_take(w, WORKER_TRAINING, 2, NULL);
    workers_done(w, "a", "a-1"); /* a's completion */
    assert_int_equal(workers_count_free(w, WORKER_TRAINING), 1);
    expect_take(w, WORKER_TRAINING, 3, "a");
    workers_hold(w, "gone"); /* not live: no effect on the figures */
    assert_int_equal(workers_count_free(w, WORKER_TRAINING), 0);
    begin(w, idle, N_OF(idle), 4); /* the sweep recomputes: nobody holds them now */
    assert_int_equal(workers_count_free(w, WORKER_TRAINING), 2);
    assert_int_equal(workers_count_free(w, WORKER_DESIGN), 0);
    workers_free(w);
}

static void
test_workers_capacity_formula(void **state)
{
    (void)state;
    static const struct beat_spec spec[] = {
        {"t1", WORKER_TRAINING, true},   {"t2", WORKER_TRAINING, false},
        {"b1", WORKER_BACKTEST, true},   {"b2", WORKER_BACKTEST, true},
        {"b3", WORKER_BACKTEST, false},  {"d1", WORKER_DESIGN, true},
        {"a1", WORKER_ASSESSMENT, true},
    };
    static const struct {
        const char *name;
        bool with_workers;
        int64_t max_concurrent;
        int64_t buffer;
        int64_t want;
    } cases[] = {
        {"override", true, 7, 1, 7},
        {"override without workers", false, 2, 0, 2},
        {"training + backtest + buffer (busy ones count)", true, 0, 1, 6},
        {"buffer zero", true, 0, 0, 5},
        {"bigger buffer", true, 0, 10, 15},
        {"no workers, buffer 1", false, 0, 1, 1},
        {"no workers, buffer 0: never below 1", false, 0, 0, 1},
        {"no workers, buffer 3", false, 0, 3, 3},
        {"negative buffer: never below 1", true, 0, -100, 1},
    };
    for (size_t i = 0; i < N_OF(cases); i++) {
        struct workers *w = workers_new();
        if (cases[i].with_workers) {
            begin(w, spec, N_OF(spec), 0);
        }
        int64_t got = workers_capacity(w, cases[i].max_concurrent, cases[i].buffer);
        workers_free(w);
        if (got != cases[i].want) {
            fail_msg("case %s: %lld, want %lld", cases[i].name, (long long)got,
                     (long long)cases[i].want);
        }
    }
}

/* One heartbeat of worker `id` (training), written at `last_seen` by its clock. */
static void
read_one(struct workers *w, const char *id, int64_t last_seen, const char *state_name,
         int64_t now_ms)
{
    struct worker_beat *b = calloc(1, sizeof(*b));
    b->id = dup_str(id);
    b->type = WORKER_TRAINING;
    b->idle = strcmp(state_name, "idle") == 0;
    b->draining = strcmp(state_name, "draining") == 0;
    b->last_seen_ms = last_seen;
    workers_begin(w, b, 1, now_ms, 15000);
}

/* Contract §5: liveness by our clock. A worker 25 s behind that keeps heartbeating stays live;
 * one that stops is dead once its last_seen has not changed for the timeout. */
static void
test_workers_live_by_our_clock_whatever_theirs(void **state)
{
    (void)state;
    struct workers *w = workers_new();
    int64_t now = 1000000000;
    for (int i = 0; i < 20; i++, now += 2000) {
        read_one(w, "t-1", now - 25000, "idle", now); /* 25 s behind, beating every 2 s */
        assert_non_null(workers_find(w, "t-1"));
    }
    /* It stops: the same last_seen read again and again. */
    int64_t last = now - 2000 - 25000;
    for (int64_t t = now; t < now + 14000; t += 2000) {
        read_one(w, "t-1", last, "idle", t);
        assert_non_null(workers_find(w, "t-1"));
    }
    read_one(w, "t-1", last, "idle", now + 15000);
    assert_null(workers_find(w, "t-1"));
    workers_free(w);
}

/* `draining` is live and counts toward the limit, but is never free. */
static void
test_workers_draining_is_live_not_free(void **state)
{
    (void)state;
    struct workers *w = workers_new();
    read_one(w, "t-1", 5000, "draining", 5000);
    assert_int_equal(workers_live(w, WORKER_TRAINING), 1);
    assert_int_equal(workers_count_free(w, WORKER_TRAINING), 0);
    assert_null(workers_take(w, WORKER_TRAINING, 5000));
    assert_int_equal(workers_capacity(w, 0, 1), 2);
    workers_free(w);
}

/* Since when a worker's heartbeats name what they name (by our clock), for lost dispatches. */
static void
test_workers_dispatch_since_follows_changes(void **state)
{
    (void)state;
    struct workers *w = workers_new();
    struct worker_beat *b = calloc(1, sizeof(*b));
    *b = (struct worker_beat){.id = dup_str("t-1"), .type = WORKER_TRAINING,
                              .dispatch_id = dup_str("d-1"), .last_seen_ms = 10};
    workers_begin(w, b, 1, 1000, 15000);
    assert_int_equal(workers_find(w, "t-1")->dispatch_since_ms, 1000);
    b = calloc(1, sizeof(*b));
    *b = (struct worker_beat){.id = dup_str("t-1"), .type = WORKER_TRAINING,
                              .dispatch_id = dup_str("d-1"), .last_seen_ms = 20};
    workers_begin(w, b, 1, 3000, 15000);
    assert_int_equal(workers_find(w, "t-1")->dispatch_since_ms, 1000);
    b = calloc(1, sizeof(*b));
    *b = (struct worker_beat){.id = dup_str("t-1"), .type = WORKER_TRAINING, .idle = true,
                              .last_seen_ms = 30};
    workers_begin(w, b, 1, 5000, 15000);
    assert_int_equal(workers_find(w, "t-1")->dispatch_since_ms, 5000);
    workers_free(w);
}

/* A released hold (the research gave its lost dispatch up) makes the worker free again; what
 * is remembered of workers gone from the read is dropped (least recently dispatched first
 * starts afresh for one that comes back). */
static void
test_workers_release_and_prune(void **state)
{
    (void)state;
    struct workers *w = workers_new();
    const struct beat_spec two[] = {{"t-1", WORKER_TRAINING, true}, {"t-2", WORKER_TRAINING, true}};
    reread(w, two, 2, 100);
    assert_string_equal(workers_take(w, WORKER_TRAINING, 100), "t-1");
    assert_int_equal(workers_count_free(w, WORKER_TRAINING), 1);
    workers_release(w, "t-1");
    assert_int_equal(workers_count_free(w, WORKER_TRAINING), 2);
    /* t-1 was dispatched to at 100, so t-2 comes first... */
    assert_string_equal(workers_take(w, WORKER_TRAINING, 200), "t-2");
    workers_release_all(w);
    /* ... until t-1 leaves the read: then it is forgotten, and comes back as never used. */
    const struct beat_spec only_t2[] = {{"t-2", WORKER_TRAINING, true}};
    reread(w, only_t2, 1, 300);
    reread(w, two, 2, 400);
    assert_string_equal(workers_take(w, WORKER_TRAINING, 400), "t-1");
    workers_free(w);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_workers_live_by_our_clock_whatever_theirs),
        cmocka_unit_test(test_workers_draining_is_live_not_free),
        cmocka_unit_test(test_workers_dispatch_since_follows_changes),
        cmocka_unit_test(test_workers_release_and_prune),
        cmocka_unit_test(test_free_workers_are_live_idle_and_not_held),
        cmocka_unit_test(test_workers_hold_after_take_counts),
        cmocka_unit_test(test_workers_holds_carry_over_reads),
        cmocka_unit_test(test_workers_live_busy_find),
        cmocka_unit_test(test_workers_ties_by_id),
        cmocka_unit_test(test_workers_least_recently_dispatched_first),
        cmocka_unit_test(test_workers_dispatch_at_zero_ms_is_remembered),
        cmocka_unit_test(test_workers_order_skips_busy_and_held),
        cmocka_unit_test(test_workers_done_dispatch_frees_a_lagging_heartbeat),
        cmocka_unit_test(test_workers_capacity_formula),
    };
    return cmocka_run_group_tests_name("workers", tests, NULL, NULL);
}
