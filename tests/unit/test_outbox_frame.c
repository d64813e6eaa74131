/* SPDX-License-Identifier: MIT
 * test_outbox_frame: the outbox's framing of one message (store_outbox_frame/unframe, pure):
 * round trips of topic, key and payload (empty, binary, long), and malformed frames rejected
 * without reading past the end. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "common/cfg.h"
#include "coordinator/store.h"

/* Frame, then unframe into a copy of exactly the frame's size (so ASan sees any over-read). */
static void
round_trip(int topic, const char *key, const void *payload, size_t len)
{
    struct buf frame = BUF_INIT;
    store_outbox_frame(topic, key, payload, len, &frame);
    char *exact = malloc(frame.len > 0 ? frame.len : 1);
    assert_non_null(exact);
    memcpy(exact, frame.data, frame.len);

    int got_topic = -1;
    const char *got_key = NULL, *got_payload = NULL;
    size_t key_len = 0, payload_len = 0;
    assert_true(store_outbox_unframe(exact, frame.len, &got_topic, &got_key, &key_len, &got_payload,
                                     &payload_len));
    assert_int_equal(got_topic, topic);
    assert_int_equal(key_len, strlen(key));
    if (key_len > 0) {
        assert_memory_equal(got_key, key, key_len);
    }
    assert_int_equal(payload_len, len);
    if (len > 0) {
        assert_memory_equal(got_payload, payload, len);
    }
    /* the pointers borrow the frame */
    assert_true(got_key >= exact && got_key + key_len <= exact + frame.len);
    assert_true(got_payload >= exact && got_payload + payload_len <= exact + frame.len);
    free(exact);
    buf_release(&frame);
}

static void
test_outbox_frame_round_trip(void **state)
{
    (void)state;
    static const unsigned char bin[] = {0x83, 0x00, 0xa4, 't', 'y', 'p', 'e', 0xff, 0x00};
    round_trip(CFG_TOPIC_EVENTS, "rs_01HZY", "\x81\xa1v\x01", 4);
    round_trip(CFG_TOPIC_DISPATCH_DESIGN, "worker-1", bin, sizeof(bin)); /* NULs kept */
    round_trip(CFG_TOPIC_TRIGGERS, "", "payload", 7);                    /* empty key */
    round_trip(CFG_TOPIC_DEADLETTER, "k", "", 0);                        /* empty payload */
    round_trip(0, "", "", 0);
    round_trip(255, "x", "y", 1); /* the largest topic index a frame can hold */
    for (int t = 0; t < CFG_TOPIC_COUNT; t++) {
        round_trip(t, "key", "p", 1);
    }
}

static void
test_outbox_frame_long_key_and_payload(void **state)
{
    (void)state;
    /* key lengths around the one- and two-byte boundaries of the length field */
    static const size_t key_lens[] = {1, 255, 256, 257, 4096, 65535};
    const size_t payload_len = 1 << 20;
    char *key = malloc(65536);
    unsigned char *payload = malloc(payload_len);
    assert_non_null(key);
    assert_non_null(payload);
    for (size_t i = 0; i < payload_len; i++) {
        payload[i] = (unsigned char)(i * 7);
    }
    for (size_t i = 0; i < sizeof(key_lens) / sizeof(key_lens[0]); i++) {
        memset(key, 'a' + (int)(i % 26), key_lens[i]);
        key[key_lens[i]] = '\0';
        round_trip(CFG_TOPIC_DISPATCH_BACKTEST, key, payload, payload_len);
    }
    free(key);
    free(payload);
}

/* A frame is appended: what the buffer held before stays in front of it. */
static void
test_outbox_frame_appends(void **state)
{
    (void)state;
    struct buf b = BUF_INIT;
    buf_puts(&b, "AB");
    store_outbox_frame(CFG_TOPIC_EVENTS, "k", "xyz", 3, &b);
    assert_int_equal(b.len, 2 + 3 + 1 + 3);
    assert_memory_equal(b.data, "AB", 2);
    int topic = -1;
    const char *key = NULL, *payload = NULL;
    size_t key_len = 0, payload_len = 0;
    assert_true(store_outbox_unframe(b.data + 2, b.len - 2, &topic, &key, &key_len, &payload,
                                     &payload_len));
    assert_int_equal(topic, CFG_TOPIC_EVENTS);
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
        {"two bytes", "\x06\x00", 2},
        {"key longer than the frame",
         "\x06\x00\x05"
         "abcd",
         7},
        {"key length high byte",
         "\x06\x01\x00"
         "abc",
         6},
        {"key length 65535, nothing after", "\x06\xff\xff", 3},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        /* an exact-size copy, so an over-read is an ASan error */
        char *exact = malloc(cases[i].len > 0 ? cases[i].len : 1);
        assert_non_null(exact);
        memcpy(exact, cases[i].data, cases[i].len);
        int topic = -7;
        const char *key = (const char *)&topic, *payload = (const char *)&topic;
        size_t key_len = 99, payload_len = 99;
        bool ok = store_outbox_unframe(exact, cases[i].len, &topic, &key, &key_len, &payload,
                                       &payload_len);
        free(exact);
        if (ok) {
            fail_msg("case %s: accepted", cases[i].name);
        }
        /* out-params untouched on failure */
        if (topic != -7 || key_len != 99 || payload_len != 99) {
            fail_msg("case %s: out-params written on failure", cases[i].name);
        }
    }
}

/* The smallest valid frames: a header alone, and a header with the key exactly to the end. */
static void
test_outbox_frame_boundaries_accepted(void **state)
{
    (void)state;
    int topic = -1;
    const char *key = NULL, *payload = NULL;
    size_t key_len = 9, payload_len = 9;
    assert_true(
        store_outbox_unframe("\x02\x00\x00", 3, &topic, &key, &key_len, &payload, &payload_len));
    assert_int_equal(topic, 2);
    assert_int_equal(key_len, 0);
    assert_int_equal(payload_len, 0);
    assert_true(store_outbox_unframe("\x03\x00\x02"
                                     "ab",
                                     5, &topic, &key, &key_len, &payload, &payload_len));
    assert_int_equal(topic, 3);
    assert_int_equal(key_len, 2);
    assert_memory_equal(key, "ab", 2);
    assert_int_equal(payload_len, 0);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_outbox_frame_round_trip),
        cmocka_unit_test(test_outbox_frame_long_key_and_payload),
        cmocka_unit_test(test_outbox_frame_appends),
        cmocka_unit_test(test_outbox_frame_malformed_rejected),
        cmocka_unit_test(test_outbox_frame_boundaries_accepted),
    };
    return cmocka_run_group_tests_name("outbox_frame", tests, NULL, NULL);
}
