/* SPDX-License-Identifier: MIT
 * ctl_json: a small streaming JSON writer for researchctl's --json output: objects, arrays,
 * strings (escaped, control characters as \u00XX, valid UTF-8 passed through, invalid bytes as
 * U+FFFD), integers, numbers, booleans and null, written compactly into a struct buf. */
#ifndef RC_CTL_JSON_H
#define RC_CTL_JSON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct buf;
struct ctl_json; /* opaque: the nesting state */

/* Deepest nesting of objects and arrays; deeper is a programmer error. */
#define CTL_JSON_MAX_DEPTH 16

/* A writer appending to `out` (borrowed: it must outlive the writer). Free with
 * ctl_json_free(). */
struct ctl_json *ctl_json_new(struct buf *out);
/* NULL is a no-op. */
void ctl_json_free(struct ctl_json *j);
/* True once exactly one top-level value is complete (every container closed). */
bool ctl_json_is_complete(const struct ctl_json *j);

/* Each value goes where the grammar allows one: at the top (once), in an array, or in an
 * object right after ctl_json_key. Anything else (a value without its key, a key in an
 * array, a close that does not match, nesting beyond CTL_JSON_MAX_DEPTH) fails an RC_ASSERT:
 * the shape of our output is fixed by our code, never by input. */
void ctl_json_object_begin(struct ctl_json *j);
void ctl_json_object_end(struct ctl_json *j);
void ctl_json_array_begin(struct ctl_json *j);
void ctl_json_array_end(struct ctl_json *j);
void ctl_json_key(struct ctl_json *j, const char *key);
/* A string, or null when s is NULL. */
void ctl_json_str(struct ctl_json *j, const char *s);
/* s[0..len) as a string (may hold NUL bytes, written as \u0000). */
void ctl_json_strn(struct ctl_json *j, const char *s, size_t len);
void ctl_json_int(struct ctl_json *j, int64_t v);
/* The shortest decimal that reads back as v; null when v is not finite. */
void ctl_json_num(struct ctl_json *j, double v);
void ctl_json_bool(struct ctl_json *j, bool v);
void ctl_json_null(struct ctl_json *j);

/* A key and its value, for brevity. */
void ctl_json_kstr(struct ctl_json *j, const char *key, const char *s);
void ctl_json_kint(struct ctl_json *j, const char *key, int64_t v);
void ctl_json_knum(struct ctl_json *j, const char *key, double v);
void ctl_json_kbool(struct ctl_json *j, const char *key, bool v);

/* Append s[0..len) to `out` as a JSON string with its quotes (the escaping used above). */
void ctl_json_quote(struct buf *out, const char *s, size_t len);
/* The length of the valid UTF-8 sequence at s (left >= 1 bytes available), or 0 when there is
 * none: a stray continuation byte, a truncated sequence, an overlong form, a surrogate, or a
 * code point above U+10FFFF. An ASCII byte, control characters included, is 1. */
size_t ctl_json_utf8_len(const char *s, size_t left);

#endif /* RC_CTL_JSON_H */
