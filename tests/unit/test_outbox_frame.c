/* SPDX-License-Identifier: MIT
 * test_outbox_frame: the outbox's framing of one message (outbox_frame/unframe, pure):
 * the byte layout, round trips of topic, key and payload (no key, empty key, binary and long
 * keys), and malformed frames rejected without reading past the end. */
#include "tests/support/test.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "common/cfg.h"
#include "contract/outbox.h"

#define HEAD_LEN 6 /* topic, has-key flag, four bytes of key length */

/* A heap copy of exactly `len` bytes (so ASan sees any read past the end); caller frees. */
static char *
exact_copy(const void *data, size_t len)
{
    char *copy = malloc(len > 0 ? len : 1);
    assert_non_null(copy);
    if (len > 0) {
        memcpy(copy, data, len);
    }
    return copy;
}

/* Frame, check the header bytes, then unframe a copy of exactly the frame's size. `key` NULL
 * is no key. */
static void
round_trip(int topic, const char *key, size_t key_len, const void *payload, size_t len)
{
    struct buf frame = BUF_INIT;
    outbox_frame(topic, key, key_len, payload, len, &frame);
    size_t want_key_len = key != NULL ? key_len : 0;
    assert_int_equal(frame.len, HEAD_LEN + want_key_len + len);
    const unsigned char *u = (const unsigned char *)frame.data;
    assert_int_equal(u[0], topic);
    assert_int_equal(u[1], key != NULL ? 1 : 0);
    assert_int_equal(((size_t)u[2] << 24) | ((size_t)u[3] << 16) | ((size_t)u[4] << 8) | u[5],
                     want_key_len);

    char *exact = exact_copy(frame.data, frame.len);
    int got_topic = -1;
    const char *got_key = "unset", *got_payload = NULL;
    size_t got_key_len = 99, payload_len = 99;
    assert_true(outbox_unframe(exact, frame.len, &got_topic, &got_key, &got_key_len,
                                     &got_payload, &payload_len));
    assert_int_equal(got_topic, topic);
    assert_int_equal(got_key_len, want_key_len);
    if (key == NULL) {
        assert_null(got_key);
    } else {
        assert_non_null(got_key);
        /* the key borrows the frame */
        assert_true(got_key >= exact && got_key + got_key_len <= exact + frame.len);
        if (key_len > 0) {
            assert_memory_equal(got_key, key, key_len);
        }
    }
    assert_int_equal(payload_len, len);
    assert_true(got_payload >= exact && got_payload + payload_len <= exact + frame.len);
    if (len > 0) {
        assert_memory_equal(got_payload, payload, len);
    }
    free(exact);
    buf_release(&frame);
}

/* round_trip for a text key. */
static void
round_trip_str(int topic, const char *key, const void *payload, size_t len)
{
    round_trip(topic, key, strlen(key), payload, len);
}

static void
test_outbox_frame_round_trip(void **state)
{
    (void)state;
    static const unsigned char bin[] = {0x83, 0x00, 0xa4, 't', 'y', 'p', 'e', 0xff, 0x00};
    round_trip_str(TOPIC_EVENTS, "rs_01HZY", "\x81\xa1v\x01", 4);
    round_trip_str(TOPIC_DISPATCH_DESIGN, "worker-1", bin, sizeof(bin)); /* NULs kept */
    round_trip_str(TOPIC_TRIGGERS, "", "payload", 7);                    /* empty key */
    round_trip(TOPIC_TRIGGERS, NULL, 0, "payload", 7);                   /* no key */
    round_trip_str(TOPIC_DEADLETTER, "k", "", 0);                        /* empty payload */
    round_trip(TOPIC_DEADLETTER, NULL, 0, "", 0);                        /* neither */
    round_trip_str(0, "", "", 0);
    round_trip_str(255, "x", "y", 1); /* the largest topic index a frame can hold */
    for (int t = 0; t < TOPIC_COUNT; t++) {
        round_trip_str(t, "key", "p", 1);
        round_trip(t, NULL, 0, "p", 1);
    }
}

/* The exact bytes: topic, has-key flag, key length big endian, key, payload. */
static void
test_outbox_frame_layout(void **state)
{
    (void)state;
    static const struct {
        const char *name;
        const char *key;
        size_t key_len;
        const char *want;
        size_t want_len;
    } cases[] = {
        {"text key", "ab", 2,
         "\x03\x01\x00\x00\x00\x02"
         "abxyz",
         11},
        {"empty key", "", 0,
         "\x03\x01\x00\x00\x00\x00"
         "xyz",
         9},
        {"no key", NULL, 0,
         "\x03\x00\x00\x00\x00\x00"
         "xyz",
         9},
        {"binary key", "\x00\xff\x00", 3,
         "\x03\x01\x00\x00\x00\x03\x00\xff\x00"
         "xyz",
         12},
    };
    for (size_t i = 0; i < N_OF(cases); i++) {
        struct buf b = BUF_INIT;
        outbox_frame(3, cases[i].key, cases[i].key_len, "xyz", 3, &b);
        if (b.len != cases[i].want_len || memcmp(b.data, cases[i].want, b.len) != 0) {
            fail_msg("case %s: wrong bytes (%zu long)", cases[i].name, b.len);
        }
        buf_release(&b);
    }
}

/* No key and an empty key are different frames and come back different. */
static void
test_outbox_frame_no_key_differs_from_empty_key(void **state)
{
    (void)state;
    struct buf none = BUF_INIT, empty = BUF_INIT;
    outbox_frame(TOPIC_EVENTS, NULL, 0, "p", 1, &none);
    outbox_frame(TOPIC_EVENTS, "", 0, "p", 1, &empty);
    assert_int_equal(none.len, empty.len);
    assert_memory_not_equal(none.data, empty.data, none.len);

    int topic = -1;
    const char *key = "unset", *payload = NULL;
    size_t key_len = 99, payload_len = 99;
    char *exact = exact_copy(none.data, none.len);
    assert_true(
        outbox_unframe(exact, none.len, &topic, &key, &key_len, &payload, &payload_len));
    assert_null(key);
    assert_int_equal(key_len, 0);
    assert_int_equal(payload_len, 1);
    assert_memory_equal(payload, "p", 1);
    free(exact);

    key = NULL;
    key_len = 99;
    exact = exact_copy(empty.data, empty.len);
    assert_true(
        outbox_unframe(exact, empty.len, &topic, &key, &key_len, &payload, &payload_len));
    assert_non_null(key);
    assert_int_equal(key_len, 0);
    assert_int_equal(payload_len, 1);
    assert_memory_equal(payload, "p", 1);
    free(exact);

    buf_release(&none);
    buf_release(&empty);
}

/* Keys are bytes: NULs anywhere, 0xff, a key of NULs only; all come back whole. */
static void
test_outbox_frame_binary_key(void **state)
{
    (void)state;
    static const char nul_inside[] = {'a', '\0', 'b', '\0', 'c'};
    static const char nul_edges[] = {'\0', 'x', '\xff', '\0'};
    static const char nuls[] = {'\0', '\0', '\0'};
    static const char one_nul[] = {'\0'};
    round_trip(TOPIC_EVENTS, nul_inside, sizeof(nul_inside), "\x00p\x00", 3);
    round_trip(TOPIC_EVENTS, nul_edges, sizeof(nul_edges), "payload", 7);
    round_trip(TOPIC_DEADLETTER, nuls, sizeof(nuls), "", 0);
    round_trip(TOPIC_DEADLETTER, one_nul, sizeof(one_nul), "q", 1);
    unsigned char all[256]; /* every byte value */
    for (size_t i = 0; i < sizeof(all); i++) {
        all[i] = (unsigned char)i;
    }
    round_trip(TOPIC_TRIGGERS, (const char *)all, sizeof(all), all, sizeof(all));
}

static void
test_outbox_frame_long_key_and_payload(void **state)
{
    (void)state;
    /* key lengths around the byte boundaries of the length field, and past 16 bits */
    static const size_t key_lens[] = {1, 255, 256, 257, 4096, 65535, 65536, 65537, 70000};
    const size_t max_key = 70000;
    const size_t payload_len = 1 << 20;
    char *key = malloc(max_key);
    unsigned char *payload = malloc(payload_len);
    assert_non_null(key);
    assert_non_null(payload);
    for (size_t i = 0; i < payload_len; i++) {
        payload[i] = (unsigned char)(i * 7);
    }
    for (size_t i = 0; i < N_OF(key_lens); i++) {
        for (size_t j = 0; j < key_lens[i]; j++) {
            key[j] = (char)(j * 31 + i); /* binary, NULs included */
        }
        round_trip(TOPIC_DISPATCH_BACKTEST, key, key_lens[i], payload, payload_len);
        round_trip(TOPIC_DISPATCH_BACKTEST, key, key_lens[i], "", 0);
    }
    free(key);
    free(payload);
}

/* 70,000 bytes needs the third length byte: 70000 = 0x00011170. */
static void
test_outbox_frame_key_of_70000_bytes(void **state)
{
    (void)state;
    const size_t key_len = 70000;
    char *key = malloc(key_len);
    assert_non_null(key);
    for (size_t i = 0; i < key_len; i++) {
        key[i] = (char)(i % 251); /* a NUL every 251 bytes */
    }
    struct buf b = BUF_INIT;
    outbox_frame(TOPIC_EVENTS, key, key_len, "tail", 4, &b);
    assert_int_equal(b.len, HEAD_LEN + key_len + 4);
    assert_int_equal((unsigned char)b.data[0], TOPIC_EVENTS);
    assert_memory_equal(b.data + 1, "\x01\x00\x01\x11\x70", HEAD_LEN - 1);

    char *exact = exact_copy(b.data, b.len);
    int topic = -1;
    const char *got_key = NULL, *payload = NULL;
    size_t got_key_len = 0, payload_len = 0;
    assert_true(
        outbox_unframe(exact, b.len, &topic, &got_key, &got_key_len, &payload, &payload_len));
    assert_int_equal(got_key_len, key_len);
    assert_ptr_equal(got_key, exact + HEAD_LEN);
    assert_memory_equal(got_key, key, key_len);
    assert_int_equal(payload_len, 4);
    assert_memory_equal(payload, "tail", 4);
    free(exact);

    /* Without the payload the frame is still valid, with an empty payload ... */
    exact = exact_copy(b.data, b.len - 4);
    assert_true(outbox_unframe(exact, b.len - 4, &topic, &got_key, &got_key_len, &payload,
                                     &payload_len));
    assert_int_equal(got_key_len, key_len);
    assert_int_equal(payload_len, 0);
    free(exact);
    /* ... but one byte shorter the key runs past the end: malformed. */
    exact = exact_copy(b.data, b.len - 5);
    assert_false(outbox_unframe(exact, b.len - 5, &topic, &got_key, &got_key_len, &payload,
                                      &payload_len));
    free(exact);

    buf_release(&b);
    free(key);
}

/* A frame is appended: what the buffer held before stays in front of it. */
static void
test_outbox_frame_appends(void **state)
{
    (void)state;
    struct buf b = BUF_INIT;
    buf_puts(&b, "AB");
    outbox_frame(TOPIC_EVENTS, "k", 1, "xyz", 3, &b);
    assert_int_equal(b.len, 2 + HEAD_LEN + 1 + 3);
    assert_memory_equal(b.data, "AB", 2);
    int topic = -1;
    const char *key = NULL, *payload = NULL;
    size_t key_len = 0, payload_len = 0;
    assert_true(outbox_unframe(b.data + 2, b.len - 2, &topic, &key, &key_len, &payload,
                                     &payload_len));
    assert_int_equal(topic, TOPIC_EVENTS);
    assert_int_equal(key_len, 1);
    assert_memory_equal(key, "k", 1);
    assert_int_equal(payload_len, 3);
    assert_memory_equal(payload, "xyz", 3);
    buf_release(&b);
}

static void
test_outbox_frame_malformed_rejected(void **state)
{
    (void)state;
    static const struct {
        const char *name;
        const char *data;
        size_t len;
    } cases[] = {
        {"empty", "", 0},
        {"one byte", "\x06", 1},
        {"two bytes", "\x06\x01", 2},
        {"five bytes", "\x06\x01\x00\x00\x00", 5},
        {"five bytes, no key", "\x06\x00\x00\x00\x00", 5},
        /* no key, yet a key length */
        {"no key, length 1 within the frame",
         "\x06\x00\x00\x00\x00\x01"
         "a",
         7},
        {"no key, length 1 past the end", "\x06\x00\x00\x00\x00\x01", 6},
        {"no key, length in the top byte",
         "\x06\x00\x01\x00\x00\x00"
         "abc",
         9},
        {"no key, length 0xffffffff", "\x06\x00\xff\xff\xff\xff", 6},
        /* the flag is 0 or 1 */
        {"flag 2", "\x06\x02\x00\x00\x00\x00", 6},
        {"flag 2 with a key",
         "\x06\x02\x00\x00\x00\x01"
         "k",
         7},
        {"flag 0x80",
         "\x06\x80\x00\x00\x00\x00"
         "p",
         7},
        {"flag 0xff", "\x06\xff\x00\x00\x00\x00", 6},
        /* the key runs past the end */
        {"key one byte past the end",
         "\x06\x01\x00\x00\x00\x04"
         "abc",
         9},
        {"key length 1, nothing after", "\x06\x01\x00\x00\x00\x01", 6},
        {"key length in the second byte",
         "\x06\x01\x00\x00\x01\x00"
         "abc",
         9},
        {"key length in the third byte",
         "\x06\x01\x00\x01\x00\x00"
         "abc",
         9},
        {"key length in the top byte",
         "\x06\x01\x01\x00\x00\x00"
         "abc",
         9},
        {"key length 0xffffffff",
         "\x06\x01\xff\xff\xff\xff"
         "abc",
         9},
        {"key length 0xfffffffa",
         "\x06\x01\xff\xff\xff\xfa"
         "abcdef",
         12},
    };
    for (size_t i = 0; i < N_OF(cases); i++) {
        /* an exact-size copy, so an over-read is an ASan error */
        char *exact = exact_copy(cases[i].data, cases[i].len);
        int topic = -7;
        const char *key = (const char *)&topic, *payload = (const char *)&topic;
        size_t key_len = 99, payload_len = 99;
        bool ok = outbox_unframe(exact, cases[i].len, &topic, &key, &key_len, &payload,
                                       &payload_len);
        free(exact);
        if (ok) {
            fail_msg("case %s: accepted", cases[i].name);
        }
        /* out-params untouched on failure */
        if (topic != -7 || key_len != 99 || payload_len != 99 || key != (const char *)&topic ||
            payload != (const char *)&topic) {
            fail_msg("case %s: out-params written on failure", cases[i].name);
        }
    }
}

/* The smallest valid frames: a header alone (no key, empty key), and a key exactly to the end. */
static void
test_outbox_frame_boundaries_accepted(void **state)
{
    (void)state;
    static const struct {
        const char *name;
        const char *data;
        size_t len;
        int topic;
        bool has_key;
        const char *key;
        size_t key_len;
        const char *payload;
        size_t payload_len;
    } cases[] = {
        {"header alone, no key", "\x02\x00\x00\x00\x00\x00", 6, 2, false, NULL, 0, "", 0},
        {"header alone, empty key", "\x02\x01\x00\x00\x00\x00", 6, 2, true, "", 0, "", 0},
        {"key to the end",
         "\x03\x01\x00\x00\x00\x02"
         "ab",
         8, 3, true, "ab", 2, "", 0},
        {"no key, payload",
         "\x04\x00\x00\x00\x00\x00"
         "\x00z",
         8, 4, false, NULL, 0, "\x00z", 2},
        {"topic 255, NUL key, payload",
         "\xff\x01\x00\x00\x00\x01\x00"
         "p",
         8, 255, true, "\x00", 1, "p", 1},
    };
    for (size_t i = 0; i < N_OF(cases); i++) {
        char *exact = exact_copy(cases[i].data, cases[i].len);
        int topic = -1;
        const char *key = "unset", *payload = NULL;
        size_t key_len = 99, payload_len = 99;
        if (!outbox_unframe(exact, cases[i].len, &topic, &key, &key_len, &payload,
                                  &payload_len)) {
            fail_msg("case %s: rejected", cases[i].name);
        }
        assert_int_equal(topic, cases[i].topic);
        if (cases[i].has_key) {
            assert_ptr_equal(key, exact + HEAD_LEN);
        } else {
            assert_null(key);
        }
        assert_int_equal(key_len, cases[i].key_len);
        if (key_len > 0) {
            assert_memory_equal(key, cases[i].key, key_len);
        }
        assert_ptr_equal(payload, exact + HEAD_LEN + key_len);
        assert_int_equal(payload_len, cases[i].payload_len);
        if (payload_len > 0) {
            assert_memory_equal(payload, cases[i].payload, payload_len);
        }
        free(exact);
    }
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_outbox_frame_round_trip),
        cmocka_unit_test(test_outbox_frame_layout),
        cmocka_unit_test(test_outbox_frame_no_key_differs_from_empty_key),
        cmocka_unit_test(test_outbox_frame_binary_key),
        cmocka_unit_test(test_outbox_frame_long_key_and_payload),
        cmocka_unit_test(test_outbox_frame_key_of_70000_bytes),
        cmocka_unit_test(test_outbox_frame_appends),
        cmocka_unit_test(test_outbox_frame_malformed_rejected),
        cmocka_unit_test(test_outbox_frame_boundaries_accepted),
    };
    return cmocka_run_group_tests_name("outbox_frame", tests, NULL, NULL);
}
