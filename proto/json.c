/* SPDX-License-Identifier: MIT
 * json: MessagePack <-> JSON for the values both can hold. msgpack-c reads and writes the
 * MessagePack side; the JSON side is a small strict writer and a recursive-descent reader
 * (bounded by JSON_DEPTH_MAX, so the recursion is too). */
#include "proto/json.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <msgpack.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "common/num.h"
#include "contract/limits.h"
#include "proto/msg.h"

/* The place of a value, for errors: "a.b[2]" (a path of at most this many bytes). */
#define PATH_MAX_LEN 160

/* ---- MessagePack to JSON ---- */

static void
put_string(struct buf *out, const char *s, size_t len)
{
    static const char hex[] = "0123456789abcdef";
    buf_putc(out, '"');
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        switch (c) {
        case '"':
            buf_puts(out, "\\\"");
            break;
        case '\\':
            buf_puts(out, "\\\\");
            break;
        case '\n':
            buf_puts(out, "\\n");
            break;
        case '\r':
            buf_puts(out, "\\r");
            break;
        case '\t':
            buf_puts(out, "\\t");
            break;
        default:
            if (c < 0x20) {
                char esc[7] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15], '\0'};
                buf_puts(out, esc);
            } else {
                buf_putc(out, (char)c);
            }
        }
    }
    buf_putc(out, '"');
}

/* A float that reads back as the same double, and as a float: "1.0", not "1". */
static void
put_float(struct buf *out, double d)
{
    /* the shortest %g that reads back as d, so 0.1 stays "0.1" (17 digits always do) */
    char text[40];
    /* whole digits are written out up to 17 of them: 100.0, not 1e+02 */
    const double mag = fabs(d);
    const int whole = mag >= 1 && mag < 1e17 ? (int)floor(log10(mag)) + 1 : 1;
    for (int prec = whole; prec <= 17; prec++) {
        snprintf(text, sizeof(text), "%.*g", prec, d);
        if (strtod(text, NULL) == d) {
            break;
        }
    }
    buf_puts(out, text);
    if (strpbrk(text, ".eE") == NULL) {
        buf_puts(out, ".0");
    }
}

/* Extend the path at path[*len] by ".key" (or "key" at the top) or by "[index]"; a path that
 * would not fit is cut. */
static void
path_add(char *path, size_t *len, const char *key, size_t key_len, uint32_t index)
{
    size_t room = PATH_MAX_LEN - *len;
    int w = key != NULL ? snprintf(path + *len, room, "%s%.*s", *len > 0 ? "." : "",
                                   (int)key_len, key)
                        : snprintf(path + *len, room, "[%" PRIu32 "]", index);
    *len = w < 0 ? *len : (size_t)w >= room ? PATH_MAX_LEN - 1 : *len + (size_t)w;
}

static enum rc_rc
bad(struct rc_err *err, const char *path, const char *why)
{
    return rc_err_set(err, RC_EPROTO, "at %s: %s", path[0] != '\0' ? path : "the top", why);
}

static enum rc_rc
write_object(const msgpack_object *o, int depth, char *path, size_t path_len, struct buf *out,
             struct rc_err *err)
{
    switch (o->type) {
    case MSGPACK_OBJECT_NIL:
        buf_puts(out, "null");
        return RC_OK;
    case MSGPACK_OBJECT_BOOLEAN:
        buf_puts(out, o->via.boolean ? "true" : "false");
        return RC_OK;
    case MSGPACK_OBJECT_POSITIVE_INTEGER:
        buf_printf(out, "%" PRIu64, o->via.u64);
        return RC_OK;
    case MSGPACK_OBJECT_NEGATIVE_INTEGER:
        buf_printf(out, "%" PRId64, o->via.i64);
        return RC_OK;
    case MSGPACK_OBJECT_FLOAT32:
    case MSGPACK_OBJECT_FLOAT64:
        if (!isfinite(o->via.f64)) {
            return bad(err, path, "NaN and infinities have no JSON form");
        }
        put_float(out, o->via.f64);
        return RC_OK;
    case MSGPACK_OBJECT_STR:
        if (!limits_is_text(o->via.str.ptr, o->via.str.size)) {
            return bad(err, path, "strings must be UTF-8 without NUL");
        }
        put_string(out, o->via.str.ptr, o->via.str.size);
        return RC_OK;
    case MSGPACK_OBJECT_BIN:
        return bad(err, path, "binary values have no JSON form");
    case MSGPACK_OBJECT_EXT:
        return bad(err, path, "extension values have no JSON form");
    case MSGPACK_OBJECT_ARRAY:
    case MSGPACK_OBJECT_MAP:
        break;
    }
    if (depth >= JSON_DEPTH_MAX) {
        return bad(err, path, "nested too deep");
    }
    enum rc_rc rc = RC_OK;
    if (o->type == MSGPACK_OBJECT_ARRAY) {
        buf_putc(out, '[');
        for (uint32_t i = 0; i < o->via.array.size && rc == RC_OK; i++) {
            size_t len = path_len;
            path_add(path, &len, NULL, 0, i);
            buf_puts(out, i > 0 ? "," : "");
            rc = write_object(&o->via.array.ptr[i], depth + 1, path, len, out, err);
            path[path_len] = '\0';
        }
        buf_putc(out, ']');
        return rc;
    }
    buf_putc(out, '{');
    for (uint32_t i = 0; i < o->via.map.size && rc == RC_OK; i++) {
        const msgpack_object *k = &o->via.map.ptr[i].key;
        if (k->type != MSGPACK_OBJECT_STR || !limits_is_text(k->via.str.ptr, k->via.str.size)) {
            return bad(err, path, "map keys must be UTF-8 strings");
        }
        size_t len = path_len;
        path_add(path, &len, k->via.str.ptr, k->via.str.size, 0);
        buf_puts(out, i > 0 ? "," : "");
        put_string(out, k->via.str.ptr, k->via.str.size);
        buf_putc(out, ':');
        rc = write_object(&o->via.map.ptr[i].val, depth + 1, path, len, out, err);
        path[path_len] = '\0';
    }
    buf_putc(out, '}');
    return rc;
}

enum rc_rc
json_from_msgpack(const char *mp, size_t len, struct buf *out, struct rc_err *err)
{
    msgpack_zone zone;
    msgpack_object obj;
    size_t off = 0;
    /* msgpack-c allocates what a header claims: bound it by the bytes there first. */
    if (!msg_wire_one(mp, len)) {
        return rc_err_set(err, RC_EPROTO, "not one MessagePack object");
    }
    if (!msgpack_zone_init(&zone, 2048)) {
        return rc_err_set(err, RC_ESYS, "out of memory");
    }
    enum rc_rc rc = RC_OK;
    msgpack_unpack_return ur = msgpack_unpack(mp, len, &off, &zone, &obj);
    if (ur != MSGPACK_UNPACK_SUCCESS || off != len) {
        rc = rc_err_set(err, RC_EPROTO, "not one MessagePack object");
    } else {
        char path[PATH_MAX_LEN] = "";
        rc = write_object(&obj, 0, path, 0, out, err);
    }
    msgpack_zone_destroy(&zone);
    return rc;
}

/* ---- JSON to MessagePack ---- */

struct reader {
    const char *p;
    size_t len;
    size_t at;
    msgpack_packer pk;
    struct rc_err *err;
};

static enum rc_rc
fail_at(struct reader *r, const char *why)
{
    return rc_err_set(r->err, RC_EPROTO, "at byte %zu: %s", r->at, why);
}

static void
skip_space(struct reader *r)
{
    while (r->at < r->len && (r->p[r->at] == ' ' || r->p[r->at] == '\t' ||
                              r->p[r->at] == '\n' || r->p[r->at] == '\r')) {
        r->at++;
    }
}

static bool
take_word(struct reader *r, const char *word)
{
    size_t n = strlen(word);
    if (r->len - r->at >= n && memcmp(r->p + r->at, word, n) == 0) {
        r->at += n;
        return true;
    }
    return false;
}

static int
hex_digit(char c)
{
    if (c >= '0' && c <= '9') {
        return c - '0';
    }
    if (c >= 'a' && c <= 'f') {
        return c - 'a' + 10;
    }
    if (c >= 'A' && c <= 'F') {
        return c - 'A' + 10;
    }
    return -1;
}

/* Four hex digits after "\u"; -1 when they are not. */
static long
read_hex4(struct reader *r)
{
    if (r->len - r->at < 4) {
        return -1;
    }
    long v = 0;
    for (int i = 0; i < 4; i++) {
        int d = hex_digit(r->p[r->at + (size_t)i]);
        if (d < 0) {
            return -1;
        }
        v = v << 4 | d;
    }
    r->at += 4;
    return v;
}

static void
put_utf8(struct buf *b, uint32_t cp)
{
    char u[4];
    size_t n;
    if (cp < 0x80) {
        u[0] = (char)cp;
        n = 1;
    } else if (cp < 0x800) {
        u[0] = (char)(0xc0 | cp >> 6);
        u[1] = (char)(0x80 | (cp & 0x3f));
        n = 2;
    } else if (cp < 0x10000) {
        u[0] = (char)(0xe0 | cp >> 12);
        u[1] = (char)(0x80 | (cp >> 6 & 0x3f));
        u[2] = (char)(0x80 | (cp & 0x3f));
        n = 3;
    } else {
        u[0] = (char)(0xf0 | cp >> 18);
        u[1] = (char)(0x80 | (cp >> 12 & 0x3f));
        u[2] = (char)(0x80 | (cp >> 6 & 0x3f));
        u[3] = (char)(0x80 | (cp & 0x3f));
        n = 4;
    }
    buf_append(b, u, n);
}

/* One escape after the backslash, appended to `s`. */
static enum rc_rc
read_escape(struct reader *r, struct buf *s)
{
    static const char from[] = "\"\\/bfnrt", to[] = "\"\\/\b\f\n\r\t";
    if (r->at >= r->len) {
        return fail_at(r, "unterminated string");
    }
    const char *e = strchr(from, r->p[r->at]);
    if (e != NULL && *e != '\0') {
        buf_putc(s, to[e - from]);
        r->at++;
        return RC_OK;
    }
    if (r->p[r->at] != 'u') {
        return fail_at(r, "unknown escape");
    }
    r->at++;
    long cp = read_hex4(r);
    if (cp < 0) {
        return fail_at(r, "\\u wants four hex digits");
    }
    if (cp >= 0xdc00 && cp <= 0xdfff) {
        return fail_at(r, "a lone low surrogate");
    }
    if (cp >= 0xd800 && cp <= 0xdbff) {
        long lo = take_word(r, "\\u") ? read_hex4(r) : -1;
        if (lo < 0xdc00 || lo > 0xdfff) {
            return fail_at(r, "a high surrogate without its low half");
        }
        cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
    }
    if (cp == 0) {
        return fail_at(r, "strings must not hold NUL");
    }
    put_utf8(s, (uint32_t)cp);
    return RC_OK;
}

/* A string at r->at (on its opening quote), unescaped into `s`. */
static enum rc_rc
read_string(struct reader *r, struct buf *s)
{
    r->at++;
    for (;;) {
        size_t start = r->at;
        while (r->at < r->len && r->p[r->at] != '"' && r->p[r->at] != '\\' &&
               (unsigned char)r->p[r->at] >= 0x20) {
            r->at++;
        }
        if (!limits_is_text(r->p + start, r->at - start)) {
            r->at = start;
            return fail_at(r, "strings must be UTF-8");
        }
        buf_append(s, r->p + start, r->at - start);
        if (r->at >= r->len) {
            return fail_at(r, "unterminated string");
        }
        char c = r->p[r->at];
        if (c == '"') {
            r->at++;
            return RC_OK;
        }
        if (c != '\\') {
            return fail_at(r, "a control character in a string");
        }
        r->at++;
        enum rc_rc rc = read_escape(r, s);
        if (rc != RC_OK) {
            return rc;
        }
    }
}

static bool
is_digit(char c)
{
    return c >= '0' && c <= '9';
}

/* A number, per RFC 8259's grammar: integers that fit stay integers. */
static enum rc_rc
read_number(struct reader *r)
{
    size_t start = r->at;
    bool integral = true;
    if (r->at < r->len && r->p[r->at] == '-') {
        r->at++;
    }
    if (r->at >= r->len || !is_digit(r->p[r->at])) {
        return fail_at(r, "a number wants a digit");
    }
    if (r->p[r->at] == '0') {
        r->at++;
    } else {
        while (r->at < r->len && is_digit(r->p[r->at])) {
            r->at++;
        }
    }
    if (r->at < r->len && r->p[r->at] == '.') {
        integral = false;
        r->at++;
        if (r->at >= r->len || !is_digit(r->p[r->at])) {
            return fail_at(r, "a fraction wants a digit");
        }
        while (r->at < r->len && is_digit(r->p[r->at])) {
            r->at++;
        }
    }
    if (r->at < r->len && (r->p[r->at] == 'e' || r->p[r->at] == 'E')) {
        integral = false;
        r->at++;
        if (r->at < r->len && (r->p[r->at] == '+' || r->p[r->at] == '-')) {
            r->at++;
        }
        if (r->at >= r->len || !is_digit(r->p[r->at])) {
            return fail_at(r, "an exponent wants a digit");
        }
        while (r->at < r->len && is_digit(r->p[r->at])) {
            r->at++;
        }
    }
    char text[400];
    size_t n = r->at - start;
    if (n >= sizeof(text)) {
        r->at = start;
        return fail_at(r, "a number longer than 399 characters");
    }
    memcpy(text, r->p + start, n);
    text[n] = '\0';
    int64_t i = 0;
    if (integral && num_parse_i64(text, n, &i)) {
        msgpack_pack_int64(&r->pk, i);
        return RC_OK;
    }
    if (integral && text[0] != '-') {
        /* past int64, MessagePack still has uint64 */
        errno = 0;
        unsigned long long u = strtoull(text, NULL, 10);
        if (errno == 0) {
            msgpack_pack_uint64(&r->pk, u);
            return RC_OK;
        }
    }
    double d = 0;
    if (!num_parse_f64(text, n, &d)) {
        r->at = start;
        return fail_at(r, "a number out of range");
    }
    msgpack_pack_double(&r->pk, d);
    return RC_OK;
}

static enum rc_rc read_value(struct reader *r, int depth);

/* The members of an array or object after its opening bracket, packed behind a header that
 * is written once their count is known: into a buffer of their own. */
static enum rc_rc
read_container(struct reader *r, int depth, bool object)
{
    if (depth >= JSON_DEPTH_MAX) {
        return fail_at(r, "nested too deep");
    }
    r->at++;
    struct buf body = BUF_INIT;
    struct buf key = BUF_INIT;
    msgpack_packer outer = r->pk;
    msgpack_packer_init(&r->pk, &body, outer.callback);
    uint32_t n = 0;
    enum rc_rc rc = RC_OK;
    const char close = object ? '}' : ']';
    skip_space(r);
    if (r->at < r->len && r->p[r->at] == close) {
        r->at++;
    } else {
        for (;;) {
            skip_space(r);
            if (object) {
                if (r->at >= r->len || r->p[r->at] != '"') {
                    rc = fail_at(r, "expected a string key");
                    break;
                }
                buf_reset(&key);
                if ((rc = read_string(r, &key)) != RC_OK) {
                    break;
                }
                msgpack_pack_str(&r->pk, key.len);
                msgpack_pack_str_body(&r->pk, key.data, key.len);
                skip_space(r);
                if (r->at >= r->len || r->p[r->at] != ':') {
                    rc = fail_at(r, "expected ':'");
                    break;
                }
                r->at++;
            }
            if ((rc = read_value(r, depth + 1)) != RC_OK) {
                break;
            }
            n++;
            skip_space(r);
            if (r->at < r->len && r->p[r->at] == ',') {
                r->at++;
                continue;
            }
            if (r->at < r->len && r->p[r->at] == close) {
                r->at++;
                break;
            }
            rc = fail_at(r, object ? "expected ',' or '}'" : "expected ',' or ']'");
            break;
        }
    }
    r->pk = outer;
    if (rc == RC_OK) {
        if (object) {
            msgpack_pack_map(&r->pk, n);
        } else {
            msgpack_pack_array(&r->pk, n);
        }
        buf_append(r->pk.data, body.data, body.len);
    }
    buf_release(&body);
    buf_release(&key);
    return rc;
}

static enum rc_rc
read_value(struct reader *r, int depth)
{
    skip_space(r);
    if (r->at >= r->len) {
        return fail_at(r, "expected a value");
    }
    char c = r->p[r->at];
    if (c == '{' || c == '[') {
        return read_container(r, depth, c == '{');
    }
    if (c == '"') {
        struct buf s = BUF_INIT;
        enum rc_rc rc = read_string(r, &s);
        if (rc == RC_OK) {
            msgpack_pack_str(&r->pk, s.len);
            msgpack_pack_str_body(&r->pk, s.data, s.len);
        }
        buf_release(&s);
        return rc;
    }
    if (take_word(r, "true")) {
        msgpack_pack_true(&r->pk);
        return RC_OK;
    }
    if (take_word(r, "false")) {
        msgpack_pack_false(&r->pk);
        return RC_OK;
    }
    if (take_word(r, "null")) {
        msgpack_pack_nil(&r->pk);
        return RC_OK;
    }
    if (c == '-' || is_digit(c)) {
        return read_number(r);
    }
    return fail_at(r, "expected a value");
}

static int
append_cb(void *data, const char *bytes, size_t len)
{
    buf_append(data, bytes, len);
    return 0;
}

enum rc_rc
json_to_msgpack(const char *text, size_t len, struct buf *out, struct rc_err *err)
{
    struct reader r = {.p = text, .len = len, .at = 0, .err = err};
    msgpack_packer_init(&r.pk, out, append_cb);
    enum rc_rc rc = read_value(&r, 0);
    if (rc == RC_OK) {
        skip_space(&r);
        if (r.at != r.len) {
            rc = fail_at(&r, "text after the value");
        }
    }
    return rc;
}
