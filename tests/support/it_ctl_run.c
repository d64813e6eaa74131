/* SPDX-License-Identifier: MIT
 * it_ctl_run: researchctl as a child of the env (it_env_run). */
#include "tests/support/test.h"

#include "tests/support/it_ctl_run.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "tests/support/it_env.h"

#define RUN_MS 30000

int
it_ctl(struct it_env *env, const char *name, char **out, const char *const args[])
{
    const char *argv[16] = {"researchctl"};
    size_t n = 1;
    for (size_t i = 0; args[i] != NULL; i++) {
        assert_true(n + 1 < N_OF(argv));
        argv[n++] = args[i];
    }
    argv[n] = NULL;
    return it_env_run(env, name, argv, NULL, RUN_MS, out);
}

int
it_ctl_sh(struct it_env *env, const char *name, const char *script, char **out)
{
    struct buf s = BUF_INIT;
    for (const char *p = script; *p != '\0';) {
        if (strncmp(p, "@ctl", 4) == 0) {
            buf_printf(&s, "'%s/researchctl'", RC_BIN_DIR);
            p += 4;
        } else {
            buf_putc(&s, *p++);
        }
    }
    const char *const argv[] = {"/bin/sh", "-c", s.data, NULL};
    int status = it_env_run(env, name, argv, NULL, RUN_MS, out);
    buf_release(&s);
    return status;
}

bool
it_ctl_jq(struct it_env *env, const char *name, const char *words, const char *filter)
{
    struct buf script = BUF_INIT;
    buf_printf(&script, "@ctl %s | jq -e '%s'", words, filter);
    char *out = NULL;
    int status = it_ctl_sh(env, name, script.data, &out);
    if (status != 0) {
        fprintf(stderr, "jq filter %s did not hold (exit %d) on:\n%s\n", filter, status, out);
    }
    free(out);
    buf_release(&script);
    return status == 0;
}

void
it_ctl_has(struct it_env *env, const char *text, const char *want)
{
    if (strstr(text, want) == NULL) {
        it_fail(env, "no \"%s\" in:\n%s", want, text);
    }
}
