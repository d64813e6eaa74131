/* SPDX-License-Identifier: MIT
 * test_idgen: research ids are "rs_" + 26 Crockford base32 characters (a ULID), valid ids by
 * the contract's rule, distinct across many calls and across generators, and sortable by their
 * millisecond time. */
#include "tests/support/test.h"

#include <stdlib.h>
#include <string.h>

#include "common/rc_err.h"
#include "contract/limits.h"
#include "coordinator/idgen.h"

#define CROCKFORD "0123456789ABCDEFGHJKMNPQRSTVWXYZ"

static void
assert_shape(const char *id)
{
    if (strlen(id) != IDGEN_RESEARCH_LEN) {
        fail_msg("case %s: length %zu", id, strlen(id));
    }
    if (strncmp(id, "rs_", 3) != 0) {
        fail_msg("case %s: no rs_ prefix", id);
    }
    for (size_t i = 3; i < IDGEN_RESEARCH_LEN; i++) {
        if (id[i] == '\0' || strchr(CROCKFORD, id[i]) == NULL) {
            fail_msg("case %s: '%c' at %zu is not Crockford base32", id, id[i], i);
        }
    }
    if (!limits_is_id(id, strlen(id))) {
        fail_msg("case %s: not a valid contract id", id);
    }
}

static void
test_idgen_shape(void **state)
{
    (void)state;
    struct idgen g;
    idgen_init(&g);
    static const int64_t times[] = {0, 1, 1700000000000LL, 0xFFFFFFFFFFFFLL};
    for (size_t i = 0; i < N_OF(times); i++) {
        char id[IDGEN_RESEARCH_LEN + 1];
        memset(id, 'x', sizeof(id));
        idgen_research(&g, times[i], id);
        assert_shape(id);
    }
    assert_int_equal(IDGEN_RESEARCH_LEN, 29);
}

/* The first 10 characters after "rs_" are the time, most significant first. */
static void
test_idgen_time_prefix(void **state)
{
    (void)state;
    struct idgen g;
    idgen_init(&g);
    char id[IDGEN_RESEARCH_LEN + 1];
    idgen_research(&g, 0, id);
    assert_memory_equal(id, "rs_0000000000", 13);
    idgen_research(&g, 31, id);
    assert_memory_equal(id, "rs_000000000Z", 13);
    idgen_research(&g, 32, id);
    assert_memory_equal(id, "rs_0000000010", 13);
    idgen_research(&g, 0xFFFFFFFFFFFFLL, id); /* 48 bits: the top 2 of 50 stay zero */
    assert_memory_equal(id, "rs_7ZZZZZZZZZ", 13);
}

static int
cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

#define MANY 100000

static void
test_idgen_distinct(void **state)
{
    (void)state;
    struct idgen g;
    idgen_init(&g);
    char *ids = malloc((size_t)MANY * (IDGEN_RESEARCH_LEN + 1));
    char **ptrs = malloc((size_t)MANY * sizeof(*ptrs));
    assert_non_null(ids);
    assert_non_null(ptrs);
    for (size_t i = 0; i < MANY; i++) {
        ptrs[i] = ids + i * (IDGEN_RESEARCH_LEN + 1);
        /* all in the same millisecond: only the random part tells them apart */
        idgen_research(&g, 1700000000000LL, ptrs[i]);
    }
    qsort(ptrs, MANY, sizeof(*ptrs), cmp_str);
    for (size_t i = 1; i < MANY; i++) {
        if (strcmp(ptrs[i - 1], ptrs[i]) == 0) {
            fail_msg("case %s: generated twice", ptrs[i]);
        }
    }
    free(ptrs);
    free(ids);
}

/* Two generators (two processes, say) do not repeat each other. */
static void
test_idgen_generators_differ(void **state)
{
    (void)state;
    struct idgen a, b;
    idgen_init(&a);
    idgen_init(&b);
    char x[IDGEN_RESEARCH_LEN + 1], y[IDGEN_RESEARCH_LEN + 1];
    for (int i = 0; i < 100; i++) {
        idgen_research(&a, 5, x);
        idgen_research(&b, 5, y);
        assert_string_not_equal(x, y);
    }
}

static void
test_idgen_sortable_by_time(void **state)
{
    (void)state;
    struct idgen g;
    idgen_init(&g);
    static const int64_t times[] = {
        0,
        1,
        2,
        31,
        32,
        33,
        1023,
        1024,
        999999,
        1000000,
        1699999999999LL,
        1700000000000LL,
        1700000000001LL,
        4102444800000LL,
        0xFFFFFFFFFFFELL,
        0xFFFFFFFFFFFFLL,
    };
    char prev[IDGEN_RESEARCH_LEN + 1], cur[IDGEN_RESEARCH_LEN + 1];
    for (size_t i = 0; i < N_OF(times); i++) {
        /* several draws per ms: any later-ms id sorts after any earlier-ms one */
        for (int k = 0; k < 50; k++) {
            idgen_research(&g, times[i], cur);
            if (i > 0 && strcmp(prev, cur) >= 0) {
                fail_msg("case %lld: %s does not sort after %s", (long long)times[i], cur, prev);
            }
        }
        /* the largest id of this ms is the bar for the next one */
        memcpy(prev, cur, sizeof(cur));
        memcpy(prev + 13, "ZZZZZZZZZZZZZZZZ", 16);
    }
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_idgen_shape),
        cmocka_unit_test(test_idgen_time_prefix),
        cmocka_unit_test(test_idgen_distinct),
        cmocka_unit_test(test_idgen_generators_differ),
        cmocka_unit_test(test_idgen_sortable_by_time),
    };
    return cmocka_run_group_tests_name("idgen", tests, NULL, NULL);
}
