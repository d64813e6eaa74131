/* SPDX-License-Identifier: MIT
 * json: one MessagePack object to JSON text and back, for what the protocol carries as an
 * opaque map (a trigger's options, stored in the research hash as JSON so that operators can
 * read it) and for programs that speak JSON (rcw-exec). Only what both sides can say is
 * allowed: nil, booleans, integers, finite floats, UTF-8 strings without NUL, arrays and maps
 * with string keys, nested at most JSON_DEPTH_MAX deep. The round trip keeps every value and
 * its kind (an integer stays an integer, a float a float). No I/O. */
#ifndef RC_JSON_H
#define RC_JSON_H

#include <stddef.h>

#include "common/rc_err.h"

struct buf;

#define JSON_DEPTH_MAX 10 /* arrays and maps open at once (a dispatch nests options two deep) */

/* Append the JSON text of the one MessagePack object mp[0..len) to `out` (compact, keys in
 * their order). RC_EPROTO with err->msg naming the path and the rule ("options.a: binary
 * values have no JSON form") when it holds what JSON cannot say or is not exactly one
 * object; `out` then holds a partial text the caller discards. */
enum rc_rc json_from_msgpack(const char *mp, size_t len, struct buf *out, struct rc_err *err);

/* Append the MessagePack encoding of the JSON text text[0..len) (RFC 8259, one value,
 * whitespace around it allowed) to `out`. A number without fraction or exponent that fits
 * int64 (or uint64) becomes an integer, any other a float64. RC_EPROTO with err->msg saying
 * where and why ("at byte 12: expected ':'") when it is not JSON or breaks the rules above. */
enum rc_rc json_to_msgpack(const char *text, size_t len, struct buf *out, struct rc_err *err);

#endif /* RC_JSON_H */
