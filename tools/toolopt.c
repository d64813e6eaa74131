/* SPDX-License-Identifier: MIT
 * toolopt: option tables for the CLI tools (getopt_long underneath) and number parsers. */
#include "tools/toolopt.h"

#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "common/xalloc.h"

/* getopt_long's `val` for table entry i; above every char so it never meets a short option. */
#define TOOLOPT_VAL_BASE 256

enum rc_rc
toolopt_parse(const struct toolopt *opts, size_t n, int argc, char **argv, toolopt_fn fn, void *ctx,
              struct rc_err *err)
{
    struct option *longopts = xcalloc(n + 1, sizeof(*longopts));
    enum rc_rc rc = RC_OK;

    for (size_t i = 0; i < n; i++) {
        longopts[i].name = opts[i].name;
        longopts[i].has_arg = opts[i].arg != NULL ? required_argument : no_argument;
        longopts[i].flag = NULL;
        longopts[i].val = TOOLOPT_VAL_BASE + (int)i;
    }
    opterr = 0; /* we word the messages ourselves */
    for (;;) {
        int c = getopt_long(argc, argv, ":", longopts, NULL);
        if (c == -1) {
            break;
        }
        /* argv[optind - 1] is the word getopt just looked at (the option itself, or its
         * argument when it was given separately, which cannot happen on an error). */
        const char *word = optind > 0 && optind <= argc ? argv[optind - 1] : "?";
        if (c == ':') {
            rc = rc_err_set(err, RC_EINVAL, "option '%s' needs an argument", word);
            goto out;
        }
        if (c < TOOLOPT_VAL_BASE || c >= TOOLOPT_VAL_BASE + (int)n) {
            rc = rc_err_set(err, RC_EINVAL, "unknown or ambiguous option '%s'", word);
            goto out;
        }
        rc = fn(ctx, (size_t)(c - TOOLOPT_VAL_BASE), optarg, err);
        if (rc != RC_OK) {
            goto out;
        }
    }
    if (optind < argc) {
        rc = rc_err_set(err, RC_EINVAL, "unexpected argument '%s'", argv[optind]);
    }
out:
    free(longopts);
    return rc;
}

/* "--name ARG" into out (truncated to its size, which is plenty for our tables). */
static void
label(const struct toolopt *o, char *out, size_t size)
{
    snprintf(out, size, "--%s%s%s", o->name, o->arg != NULL ? " " : "",
             o->arg != NULL ? o->arg : "");
}

void
toolopt_usage(FILE *out, const char *tool, const char *summary, const struct toolopt *opts,
              size_t n)
{
    char buf[64];
    int width = 0;

    for (size_t i = 0; i < n; i++) {
        label(&opts[i], buf, sizeof(buf));
        int w = (int)strlen(buf);
        width = w > width ? w : width;
    }
    fprintf(out, "usage: %s [options]\n%s\n\noptions:\n", tool, summary);
    for (size_t i = 0; i < n; i++) {
        label(&opts[i], buf, sizeof(buf));
        fprintf(out, "  %-*s  %s\n", width, buf, opts[i].help);
    }
}

enum rc_rc
toolopt_int64(const char *s, int64_t min, int64_t max, const char *what, int64_t *out,
              struct rc_err *err)
{
    char *end = NULL;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (s[0] == '\0' || end == s || *end != '\0' || errno != 0 || v < min || v > max) {
        return rc_err_set(err, RC_EINVAL, "%s: must be an integer in [%lld, %lld], not '%s'", what,
                          (long long)min, (long long)max, s);
    }
    *out = (int64_t)v;
    return RC_OK;
}

enum rc_rc
toolopt_int64_pair(const char *s, char sep, bool b_optional, int64_t min, int64_t max,
                   const char *what, int64_t *a, int64_t *b, struct rc_err *err)
{
    char first[32];
    const char *at = strchr(s, sep);
    size_t len = at != NULL ? (size_t)(at - s) : strlen(s);
    int64_t va = 0;
    int64_t vb = 0;

    if ((at == NULL && !b_optional) || len >= sizeof(first)) {
        return rc_err_set(err, RC_EINVAL, "%s: '%s' is not A%cB", what, s, sep);
    }
    memcpy(first, s, len);
    first[len] = '\0';
    enum rc_rc rc = toolopt_int64(first, min, max, what, &va, err);
    vb = va;
    if (rc == RC_OK && at != NULL) {
        rc = toolopt_int64(at + 1, min, max, what, &vb, err);
    }
    if (rc == RC_OK) {
        *a = va;
        *b = vb;
    }
    return rc;
}

enum rc_rc
toolopt_double(const char *s, double min, double max, const char *what, double *out,
               struct rc_err *err)
{
    char *end = NULL;
    errno = 0;
    double v = strtod(s, &end);
    if (s[0] == '\0' || end == s || *end != '\0' || errno != 0 || !isfinite(v) || v < min ||
        v > max) {
        return rc_err_set(err, RC_EINVAL, "%s: must be a number in [%g, %g], not '%s'", what, min,
                          max, s);
    }
    *out = v;
    return RC_OK;
}
