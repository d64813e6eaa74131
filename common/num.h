/* SPDX-License-Identifier: MIT
 * num: numbers read from text that comes from outside (Redis, Kafka, the environment, argv, a
 * file), whole or not at all: where strtoll and strtod read 12 out of "12abc" or 0 out of "",
 * these refuse. The text need not be NUL-terminated (a Redis reply, a token of a line). */
#ifndef RC_NUM_H
#define RC_NUM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* s[0..len) as a decimal int64: an optional sign, then digits, and nothing else (no space
 * before or after). False, *out untouched, when it is not, or is out of range; also for a
 * NULL s. errno is left as it was. */
bool num_parse_i64(const char *s, size_t len, int64_t *out);
/* s[0..len) as a finite double in strtod's form, and nothing else: no space, no nan or inf,
 * no overflow. An underflow reads as the nearest double (0 or a subnormal), so that every
 * finite double written with %.17g reads back. False, *out untouched, otherwise (and for a
 * NULL s). errno is left as it was. */
bool num_parse_f64(const char *s, size_t len, double *out);

#endif /* RC_NUM_H */
