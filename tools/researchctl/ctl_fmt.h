/* SPDX-License-Identifier: MIT
 * ctl_fmt: how researchctl writes figures for people: durations ("2m 15s", "2h 03m"), ages
 * ("0.4 s", then durations), money ("$3.42", "-$0.12"), UTC times, values in key=value
 * lines (quoted when they would not read back), and any text for a terminal, control
 * characters escaped. Pure functions, no I/O. */
#ifndef RC_CTL_FMT_H
#define RC_CTL_FMT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct buf;

/* Room for any text written below, NUL included. */
#define CTL_FMT_MAX 40

/* A duration to the second below an hour ("0m 30s", "2m 15s"), to the minute below a day
 * ("2h 03m"), else to the hour ("3d 04h"). Negative durations (clock skew) read as 0. */
void ctl_fmt_duration(int64_t ms, char out[CTL_FMT_MAX]);
/* How long ago, for fresh things: tenths of a second below a minute ("0.4 s", "12.0 s"),
 * else as ctl_fmt_duration ("5m 02s"). */
void ctl_fmt_age(int64_t ms, char out[CTL_FMT_MAX]);
/* US dollars rounded to the cent: "$3.42", "-$0.12", "$0.00" (never "-$0.00"); "$?" when not
 * finite. */
void ctl_fmt_money(double usd, char out[CTL_FMT_MAX]);
/* RFC 3339 UTC with milliseconds ("2026-11-23T10:00:00.123Z"). */
void ctl_fmt_utc(int64_t unix_ms, char out[CTL_FMT_MAX]);
/* A time and how long before `now_ms` it was: "2026-11-23T10:00:00.123Z (2m 15s ago)". */
void ctl_fmt_when(int64_t unix_ms, int64_t now_ms, struct buf *out);

/* Every string that researchctl prints for people and did not write itself (what a worker,
 * the coordinator or anyone with access to Redis or Kafka wrote: a brief, an error, an id, a
 * field name) goes through ctl_fmt_text, ctl_fmt_cell or ctl_fmt_value, so that it cannot
 * move the cursor, recolour, retitle or clear an operator's terminal, nor forge output lines.
 * Valid UTF-8 is written as is; \n \r \t as these two characters; every other control
 * character (below 0x20, DEL, the C1 controls U+0080..U+009F) and every byte that is not
 * part of valid UTF-8 as \xNN (lower-case hex, each byte of a C1 control on its own). */

/* Append s escaped as above; NULL is written as -. */
void ctl_fmt_text(struct buf *out, const char *s);
/* How many bytes ctl_fmt_text writes for s (1 for NULL): the width of s in a column. */
size_t ctl_fmt_text_len(const char *s);
/* ctl_fmt_text, then spaces up to `width` bytes: a left-aligned column (not cut when longer). */
void ctl_fmt_cell(struct buf *out, const char *s, size_t width);

/* Append s as a value of a key=value line: as is when it is a plain word, else in double
 * quotes with \" and \\ escaped and the rest as ctl_fmt_text escapes it. Plain: not empty,
 * not "-" (which stands for nil), free of spaces, quotes, backslashes and '=', and unchanged
 * by ctl_fmt_text. NULL (nil) is written as -. */
void ctl_fmt_value(struct buf *out, const char *s);

/* Parse a whole decimal integer ("1700000000000"), or a number in %g form that holds an
 * integral value ("1.7e+12", as Redis writes large zset scores). False otherwise (NULL, "",
 * "abc", "1.5"); *out written only on success. */
bool ctl_fmt_parse_int(const char *s, int64_t *out);
/* Parse a whole finite decimal number, after any leading white space. False otherwise; *out
 * written only on success. */
bool ctl_fmt_parse_num(const char *s, double *out);

#endif /* RC_CTL_FMT_H */
