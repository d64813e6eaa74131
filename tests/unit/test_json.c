/* SPDX-License-Identifier: MIT
 * test_json: MessagePack <-> JSON keeps every value and its kind both ways, and refuses with
 * a clear message what the other side cannot say (binary, NaN, keys that are not strings,
 * too deep) and text that is not JSON. */
#include "tests/support/test.h"

#include <msgpack.h>
#include <string.h>

#include "common/buf.h"
#include "common/rc_err.h"
#include "proto/json.h"

static int
append_cb(void *data, const char *bytes, size_t len)
{
    buf_append(data, bytes, len);
    return 0;
}

/* JSON text -> MessagePack -> JSON text: `want` (NULL: the same text). */
static void
assert_round_trip(const char *json, const char *want)
{
    struct buf mp = BUF_INIT, back = BUF_INIT;
    struct rc_err err = RC_ERR_INIT;
    if (json_to_msgpack(json, strlen(json), &mp, &err) != RC_OK) {
        fail_msg("%s: %s", json, err.msg);
    }
    if (json_from_msgpack(mp.data, mp.len, &back, &err) != RC_OK) {
        fail_msg("%s back: %s", json, err.msg);
    }
    assert_string_equal(back.data, want != NULL ? want : json);
    buf_release(&mp);
    buf_release(&back);
}

static void
test_json_round_trips_keep_values_and_kinds(void **state)
{
    (void)state;
    assert_round_trip("{}", NULL);
    assert_round_trip("[]", NULL);
    assert_round_trip("null", NULL);
    assert_round_trip("{\"symbol\":\"BTCUSD\",\"bars\":[1,2,3],\"live\":true,\"x\":null}", NULL);
    assert_round_trip("{\"a\":{\"b\":{\"c\":[{\"d\":false}]}}}", NULL);
    /* integers stay integers, floats stay floats (1.0 is not 1) */
    assert_round_trip("[0,-1,9223372036854775807,-9223372036854775808,18446744073709551615]",
                      NULL);
    assert_round_trip("[1.0,0.1,-2.5,1e+300,5e-324]", NULL);
    assert_round_trip("[1E2, 1.5e-3]", "[100.0,0.0015]");
    assert_round_trip("18446744073709551616", "1.8446744073709552e+19");
    /* whitespace goes, escapes are read and written the short way */
    assert_round_trip(" { \"k\" : [ 1 , 2 ] } \n", "{\"k\":[1,2]}");
    assert_round_trip("\"a\\\"b\\\\c\\/d\\n\\t\\r\\b\\f\"",
                      "\"a\\\"b\\\\c/d\\n\\t\\r\\u0008\\u000c\"");
    assert_round_trip("\"\\u00e9\\u20ac\\ud83d\\ude00\"",
                      "\"\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\"");
    assert_round_trip("\"\xc3\xa9t\xc3\xa9\"", NULL);
}

/* JSON that is refused, and the start of its message. */
static void
test_json_refuses_what_is_not_json(void **state)
{
    (void)state;
    static const struct {
        const char *text;
        const char *msg;
    } cases[] = {
        {"", "at byte 0: expected a value"},
        {"{", "at byte 1: expected a string key"},
        {"{\"a\" 1}", "at byte 5: expected ':'"},
        {"{\"a\":1,}", "at byte 7: expected a string key"},
        {"[1,]", "at byte 3: expected a value"},
        {"[1 2]", "at byte 3: expected ',' or ']'"},
        {"{1:2}", "at byte 1: expected a string key"},
        {"01", "at byte 1: text after the value"},
        {"1.", "at byte 2: a fraction wants a digit"},
        {"-", "at byte 1: a number wants a digit"},
        {"1e", "at byte 2: an exponent wants a digit"},
        {"1e400", "at byte 0: a number out of range"},
        {"NaN", "at byte 0: expected a value"},
        {"tru", "at byte 0: expected a value"},
        {"\"abc", "at byte 4: unterminated string"},
        {"\"a\tb\"", "at byte 2: a control character in a string"},
        {"\"\\x\"", "at byte 2: unknown escape"},
        {"\"\\u12\"", "at byte 3: \\u wants four hex digits"},
        {"\"\\udc00\"", "at byte 7: a lone low surrogate"},
        {"\"\\ud800x\"", "at byte 7: a high surrogate without its low half"},
        {"\"\\u0000\"", "at byte 7: strings must not hold NUL"},
        {"\"\xff\"", "at byte 1: strings must be UTF-8"},
        {"[[[[[[[[[[[1]]]]]]]]]]]", "at byte 10: nested too deep"},
        {"{} {}", "at byte 3: text after the value"},
    };
    for (size_t i = 0; i < N_OF(cases); i++) {
        struct buf mp = BUF_INIT;
        struct rc_err err = RC_ERR_INIT;
        if (json_to_msgpack(cases[i].text, strlen(cases[i].text), &mp, &err) != RC_EPROTO) {
            fail_msg("case %zu (%s): accepted", i, cases[i].text);
        }
        if (strcmp(err.msg, cases[i].msg) != 0) {
            fail_msg("case %zu (%s): \"%s\", want \"%s\"", i, cases[i].text, err.msg,
                     cases[i].msg);
        }
        buf_release(&mp);
    }
}

/* MessagePack built by `pack`, to JSON: refused with `msg` (NULL: accepted as `json`). */
static void
assert_from_msgpack(void (*pack)(msgpack_packer *), const char *json, const char *msg)
{
    struct buf mp = BUF_INIT, out = BUF_INIT;
    msgpack_packer pk;
    msgpack_packer_init(&pk, &mp, append_cb);
    pack(&pk);
    struct rc_err err = RC_ERR_INIT;
    enum rc_rc rc = json_from_msgpack(mp.data, mp.len, &out, &err);
    if (msg == NULL) {
        assert_int_equal(rc, RC_OK);
        assert_string_equal(out.data, json);
    } else {
        assert_int_equal(rc, RC_EPROTO);
        assert_string_equal(err.msg, msg);
    }
    buf_release(&mp);
    buf_release(&out);
}

static void
pack_key(msgpack_packer *pk, const char *k)
{
    msgpack_pack_str(pk, strlen(k));
    msgpack_pack_str_body(pk, k, strlen(k));
}

static void
pack_bin_inside(msgpack_packer *pk)
{
    msgpack_pack_map(pk, 1);
    pack_key(pk, "range");
    msgpack_pack_array(pk, 2);
    msgpack_pack_int(pk, 1);
    msgpack_pack_bin(pk, 2);
    msgpack_pack_bin_body(pk, "\x00\x01", 2);
}

static void
pack_nan(msgpack_packer *pk)
{
    msgpack_pack_map(pk, 1);
    pack_key(pk, "x");
    msgpack_pack_double(pk, 0.0 / 0.0);
}

static void
pack_int_key(msgpack_packer *pk)
{
    msgpack_pack_map(pk, 1);
    msgpack_pack_int(pk, 7);
    msgpack_pack_nil(pk);
}

static void
pack_ext(msgpack_packer *pk)
{
    msgpack_pack_ext(pk, 1, 3);
    msgpack_pack_ext_body(pk, "x", 1);
}

static void
pack_float32(msgpack_packer *pk)
{
    msgpack_pack_map(pk, 2);
    pack_key(pk, "f");
    msgpack_pack_float(pk, 0.5f);
    pack_key(pk, "s");
    msgpack_pack_str(pk, 3);
    msgpack_pack_str_body(pk, "a\"b", 3);
}

static void
pack_deep(msgpack_packer *pk)
{
    for (int i = 0; i < JSON_DEPTH_MAX + 1; i++) {
        msgpack_pack_array(pk, 1);
    }
    msgpack_pack_nil(pk);
}

static void
pack_nul_string(msgpack_packer *pk)
{
    msgpack_pack_map(pk, 1);
    pack_key(pk, "a");
    msgpack_pack_str(pk, 3);
    msgpack_pack_str_body(pk, "a\0b", 3);
}

static void
pack_two_objects(msgpack_packer *pk)
{
    msgpack_pack_nil(pk);
    msgpack_pack_nil(pk);
}

/* A map32 header claiming 4G entries with nothing behind it: refused before msgpack-c would
 * allocate for them (found by fuzz_json). */
static void
pack_huge_claim(msgpack_packer *pk)
{
    msgpack_pack_map(pk, 0xffffffffu);
    pack_key(pk, "a");
}

static void
test_json_from_msgpack_refuses_what_json_cannot_say(void **state)
{
    (void)state;
    assert_from_msgpack(pack_float32, "{\"f\":0.5,\"s\":\"a\\\"b\"}", NULL);
    assert_from_msgpack(pack_bin_inside, NULL, "at range[1]: binary values have no JSON form");
    assert_from_msgpack(pack_nan, NULL, "at x: NaN and infinities have no JSON form");
    assert_from_msgpack(pack_int_key, NULL, "at the top: map keys must be UTF-8 strings");
    assert_from_msgpack(pack_ext, NULL, "at the top: extension values have no JSON form");
    assert_from_msgpack(pack_deep, NULL,
                        "at [0][0][0][0][0][0][0][0][0][0]: nested too deep");
    assert_from_msgpack(pack_nul_string, NULL, "at a: strings must be UTF-8 without NUL");
    assert_from_msgpack(pack_two_objects, NULL, "not one MessagePack object");
    assert_from_msgpack(pack_huge_claim, NULL, "not one MessagePack object");
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_json_round_trips_keep_values_and_kinds),
        cmocka_unit_test(test_json_refuses_what_is_not_json),
        cmocka_unit_test(test_json_from_msgpack_refuses_what_json_cannot_say),
    };
    return cmocka_run_group_tests_name("json", tests, NULL, NULL);
}
