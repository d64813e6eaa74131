/* SPDX-License-Identifier: MIT
 * test_idmap: the id -> pointer hash map: put, get, overwrite, delete, growth past many keys,
 * tombstones that keep probe chains intact through heavy churn, and clear. */
#include "tests/support/test.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "coordinator/idmap.h"

/* Values are addresses inside this array, so each key's value is checkable. */
#define MANY 20000
static char slots[MANY];

static void
key_of(size_t i, char *out, size_t size)
{
    snprintf(out, size, "rs_%06zu", i);
}

static void
test_idmap_put_get_del(void **state)
{
    (void)state;
    struct idmap *m = idmap_new();
    int a = 1, b = 2;
    assert_int_equal(idmap_count(m), 0);
    assert_null(idmap_get(m, "x"));
    assert_null(idmap_del(m, "x"));

    char key[8];
    snprintf(key, sizeof(key), "%s", "alpha");
    idmap_put(m, key, &a);
    key[0] = 'X'; /* the map keeps its own copy of the key */
    assert_ptr_equal(idmap_get(m, "alpha"), &a);
    assert_null(idmap_get(m, "Xlpha"));
    idmap_put(m, "", &b); /* the empty string is a key like any other */
    assert_ptr_equal(idmap_get(m, ""), &b);
    assert_int_equal(idmap_count(m), 2);

    assert_ptr_equal(idmap_del(m, "alpha"), &a);
    assert_null(idmap_get(m, "alpha"));
    assert_null(idmap_del(m, "alpha"));
    assert_int_equal(idmap_count(m), 1);
    assert_ptr_equal(idmap_get(m, ""), &b);
    idmap_free(m);
    idmap_free(NULL);
}

static void
test_idmap_overwrite_keeps_count(void **state)
{
    (void)state;
    struct idmap *m = idmap_new();
    int a = 1, b = 2;
    idmap_put(m, "k", &a);
    idmap_put(m, "k", &b);
    assert_int_equal(idmap_count(m), 1);
    assert_ptr_equal(idmap_get(m, "k"), &b);
    /* put again after a delete: back, once */
    assert_ptr_equal(idmap_del(m, "k"), &b);
    idmap_put(m, "k", &a);
    assert_int_equal(idmap_count(m), 1);
    assert_ptr_equal(idmap_get(m, "k"), &a);
    assert_ptr_equal(idmap_del(m, "k"), &a);
    assert_null(idmap_get(m, "k"));
    assert_int_equal(idmap_count(m), 0);
    idmap_free(m);
}

static void
test_idmap_many_keys_grow(void **state)
{
    (void)state;
    struct idmap *m = idmap_new();
    char key[32];
    for (size_t i = 0; i < MANY; i++) {
        key_of(i, key, sizeof(key));
        idmap_put(m, key, &slots[i]);
        assert_int_equal(idmap_count(m), i + 1);
    }
    for (size_t i = 0; i < MANY; i++) {
        key_of(i, key, sizeof(key));
        if (idmap_get(m, key) != &slots[i]) {
            fail_msg("case %s: lost after growth", key);
        }
    }
    assert_null(idmap_get(m, "rs_999999"));
    idmap_free(m);
}

/* Delete every other key, then check the rest are still reachable past the tombstones, and
 * churn put/delete far more often than the table has slots (tombstones must be reclaimed, or
 * a lookup of an absent key would never find an empty slot). */
static void
test_idmap_tombstones_keep_chains(void **state)
{
    (void)state;
    struct idmap *m = idmap_new();
    char key[32];
    const size_t n = 5000;
    for (size_t i = 0; i < n; i++) {
        key_of(i, key, sizeof(key));
        idmap_put(m, key, &slots[i]);
    }
    for (size_t i = 0; i < n; i += 2) {
        key_of(i, key, sizeof(key));
        assert_ptr_equal(idmap_del(m, key), &slots[i]);
    }
    assert_int_equal(idmap_count(m), n / 2);
    for (size_t i = 0; i < n; i++) {
        key_of(i, key, sizeof(key));
        void *want = (i % 2 == 0) ? NULL : &slots[i];
        if (idmap_get(m, key) != want) {
            fail_msg("case %s: wrong value after deletes", key);
        }
    }
    /* churn: a few live keys, many distinct keys coming and going */
    for (size_t i = n; i < n + 15000; i++) {
        key_of(i, key, sizeof(key));
        idmap_put(m, key, &slots[i]);
        assert_ptr_equal(idmap_get(m, key), &slots[i]);
        assert_ptr_equal(idmap_del(m, key), &slots[i]);
        assert_null(idmap_get(m, key));
    }
    assert_int_equal(idmap_count(m), n / 2);
    for (size_t i = 1; i < n; i += 2) {
        key_of(i, key, sizeof(key));
        if (idmap_get(m, key) != &slots[i]) {
            fail_msg("case %s: lost after churn", key);
        }
    }
    idmap_free(m);
}

/* A small map under churn: every slot ends up a tombstone unless the map rebuilds. */
static void
test_idmap_churn_small(void **state)
{
    (void)state;
    struct idmap *m = idmap_new();
    char key[32];
    int v = 0;
    for (size_t i = 0; i < 10000; i++) {
        key_of(i, key, sizeof(key));
        idmap_put(m, key, &v);
        idmap_del(m, key);
    }
    assert_int_equal(idmap_count(m), 0);
    assert_null(idmap_get(m, "absent"));
    idmap_free(m);
}

static void
test_idmap_clear(void **state)
{
    (void)state;
    struct idmap *m = idmap_new();
    char key[32];
    for (size_t i = 0; i < 1000; i++) {
        key_of(i, key, sizeof(key));
        idmap_put(m, key, &slots[i]);
    }
    idmap_del(m, "rs_000001");
    idmap_clear(m);
    assert_int_equal(idmap_count(m), 0);
    for (size_t i = 0; i < 1000; i++) {
        key_of(i, key, sizeof(key));
        assert_null(idmap_get(m, key));
    }
    /* usable again after a clear */
    idmap_put(m, "rs_000002", &slots[2]);
    assert_ptr_equal(idmap_get(m, "rs_000002"), &slots[2]);
    assert_int_equal(idmap_count(m), 1);
    idmap_clear(m);
    idmap_clear(m);
    assert_int_equal(idmap_count(m), 0);
    idmap_free(m);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_idmap_put_get_del),
        cmocka_unit_test(test_idmap_overwrite_keeps_count),
        cmocka_unit_test(test_idmap_many_keys_grow),
        cmocka_unit_test(test_idmap_tombstones_keep_chains),
        cmocka_unit_test(test_idmap_churn_small),
        cmocka_unit_test(test_idmap_clear),
    };
    return cmocka_run_group_tests_name("idmap", tests, NULL, NULL);
}
