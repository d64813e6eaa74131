/* SPDX-License-Identifier: MIT
 * it_ctl_run: running researchctl from integration tests (it_ctl*.c): as a child of the env
 * with its output captured, through a shell (pipes, jq), and matching its output. Include
 * "tests/support/test.h" first. */
#ifndef RC_IT_CTL_RUN_H
#define RC_IT_CTL_RUN_H

#include <stdbool.h>

struct it_env;

/* Run researchctl with the words given (NULL-terminated, at most 14) as child `name`; returns
 * its exit status and its output (stdout and stderr) in *out (caller frees). */
int it_ctl(struct it_env *env, const char *name, char **out, const char *const args[]);
/* Run `script` with /bin/sh -c, where every "@ctl" stands for the researchctl binary; returns
 * its exit status and its output in *out (caller frees). */
int it_ctl_sh(struct it_env *env, const char *name, const char *script, char **out);
/* Run `researchctl <words> | jq -e <filter>`: true when jq parsed the output and the filter
 * held (jq -e exits 0 only for a result that is neither false nor null). */
bool it_ctl_jq(struct it_env *env, const char *name, const char *words, const char *filter);
/* Fail the test (with the children's logs) unless `text` contains `want`. */
void it_ctl_has(struct it_env *env, const char *text, const char *want);

#endif /* RC_IT_CTL_RUN_H */
