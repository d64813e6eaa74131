/* SPDX-License-Identifier: MIT
 * toolopt: a CLI tool's option table, which drives both parsing and --help, and the checked
 * number parsers the tools share. Long options only; no I/O except usage; no global state
 * (unlike getopt), so a tool may parse global options and then a command's. */
#ifndef RC_TOOLOPT_H
#define RC_TOOLOPT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "common/rc_err.h"

/* One option: `--name` or `--name ARG`. */
struct toolopt {
    const char *name; /* without the leading "--" */
    const char *arg;  /* the argument's placeholder in --help ("N"), NULL for a flag */
    const char *help; /* one line */
};

/* Called once per option found, in command-line order: `index` is the option's position in
 * the table, `arg` its argument (NULL for a flag). Returns RC_OK, or RC_EINVAL with err->msg
 * naming the option and the rule. */
typedef enum rc_rc (*toolopt_fn)(void *ctx, size_t index, const char *arg, struct rc_err *err);

/* The words after argv[0] are read as GNU getopt_long reads them: `--name`, `--name=ARG` or
 * `--name ARG` (ARG may start with '-'), a name may be abbreviated to a unique prefix, `--`
 * ends the options, and a lone `-` is a positional argument. Any other word starting with '-'
 * is an unknown option. argv is not modified.
 *
 * Every parser returns RC_EINVAL (a usage error: exit 64) with err->msg saying why
 * ("unknown or ambiguous option '--x'", "option '--brief' needs an argument", "unexpected
 * argument 'x'") or the error of `fn`; the first error stops the parse. Out-params are written
 * only on success. */

/* Parse argv[1..argc) against `opts` (n entries), calling `fn` for each option. Positional
 * arguments are refused. */
enum rc_rc toolopt_parse(const struct toolopt *opts, size_t n, int argc, char **argv, toolopt_fn fn,
                         void *ctx, struct rc_err *err);
/* Like toolopt_parse, but options and positional arguments may be mixed: up to max_pos
 * positionals are stored in order in pos[] (pointers into argv) and counted in *n_pos; one
 * more is refused as unexpected. */
enum rc_rc toolopt_parse_pos(const struct toolopt *opts, size_t n, int argc, char **argv,
                             toolopt_fn fn, void *ctx, const char **pos, size_t max_pos,
                             size_t *n_pos, struct rc_err *err);
/* Parse the options at the head of argv[1..argc) and stop at the first positional argument
 * (a command name), or just past a `--`: *next is its index, argc when there is none. For
 * global options placed before a command, whose own options are then parsed from argv + *next. */
enum rc_rc toolopt_parse_head(const struct toolopt *opts, size_t n, int argc, char **argv,
                              toolopt_fn fn, void *ctx, int *next, struct rc_err *err);

/* Print "usage: <tool> [options]", the summary (may span lines) and one line per option.
 * `tool` may name positional arguments too ("researchctl cancel <research_id>"). */
void toolopt_usage(FILE *out, const char *tool, const char *summary, const struct toolopt *opts,
                   size_t n);

/* Parse a whole decimal integer in [min, max]. RC_EINVAL naming `what` otherwise; *out is
 * written only on success. */
enum rc_rc toolopt_int64(const char *s, int64_t min, int64_t max, const char *what, int64_t *out,
                         struct rc_err *err);
/* Parse "A<sep>B" (or just "A" when `b_optional`, then B = A) as two integers in [min, max].
 * RC_EINVAL naming `what` otherwise; *a and *b are written only on success. */
enum rc_rc toolopt_int64_pair(const char *s, char sep, bool b_optional, int64_t min, int64_t max,
                              const char *what, int64_t *a, int64_t *b, struct rc_err *err);
/* Parse a whole finite decimal number in [min, max]. RC_EINVAL naming `what` otherwise. */
enum rc_rc toolopt_double(const char *s, double min, double max, const char *what, double *out,
                          struct rc_err *err);

#endif /* RC_TOOLOPT_H */
