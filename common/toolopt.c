/* SPDX-License-Identifier: MIT
 * toolopt: option tables for the CLI tools (a small getopt_long-like parser of our own, without
 * its global state) and number parsers. */
#include "common/toolopt.h"

#include <stdlib.h>
#include <string.h>

#include "common/num.h"
#include "common/xalloc.h"

/* How parse() treats a positional argument. */
enum parse_mode {
    MODE_COLLECT, /* store it (up to max_pos) and go on */
    MODE_HEAD,    /* stop there */
};

/* The table entry named by name[0..len): an exact match, else the one entry it is a prefix
 * of. False when none or several are. */
static bool
find(const struct toolopt *opts, size_t n, const char *name, size_t len, size_t *out)
{
    size_t n_prefixed = 0;
    size_t prefixed = 0;

    for (size_t i = 0; i < n; i++) {
        if (strncmp(opts[i].name, name, len) != 0) {
            continue;
        }
        if (opts[i].name[len] == '\0') {
            *out = i;
            return true;
        }
        prefixed = i;
        n_prefixed++;
    }
    if (len > 0 && n_prefixed == 1) {
        *out = prefixed;
        return true;
    }
    return false;
}

/* One option word argv[*i] (starting with "--"): find it, take its argument (moving *i past a
 * separate one) and hand both to fn. */
static enum rc_rc
one_option(const struct toolopt *opts, size_t n, int argc, char **argv, int *i, toolopt_fn fn,
           void *ctx, struct rc_err *err)
{
    const char *word = argv[*i];
    const char *name = word + 2;
    const char *eq = strchr(name, '=');
    size_t len = eq != NULL ? (size_t)(eq - name) : strlen(name);
    size_t k = 0;

    if (!find(opts, n, name, len, &k)) {
        return rc_err_set(err, RC_EINVAL, "unknown or ambiguous option '%.*s'", (int)(len + 2),
                          word);
    }
    const char *arg = NULL;
    if (opts[k].arg == NULL) {
        if (eq != NULL) {
            return rc_err_set(err, RC_EINVAL, "option '--%s' takes no argument", opts[k].name);
        }
    } else if (eq != NULL) {
        arg = eq + 1;
    } else if (*i + 1 < argc) {
        arg = argv[++*i];
    } else {
        return rc_err_set(err, RC_EINVAL, "option '--%s' needs an argument", opts[k].name);
    }
    return fn(ctx, k, arg, err);
}

/* The one parser behind the public ones. In MODE_COLLECT positionals go to pos[0..max_pos)
 * and their count to *n_pos; in MODE_HEAD *next is where parsing stopped. */
static enum rc_rc
parse(const struct toolopt *opts, size_t n, int argc, char **argv, toolopt_fn fn, void *ctx,
      enum parse_mode mode, const char **pos, size_t max_pos, size_t *n_pos, int *next,
      struct rc_err *err)
{
    const char **found = xcalloc(max_pos > 0 ? max_pos : 1, sizeof(*found));
    size_t n_found = 0;
    bool options_done = false;
    enum rc_rc rc = RC_OK;
    int i = 1;

    for (; i < argc; i++) {
        const char *word = argv[i];
        if (!options_done && strcmp(word, "--") == 0) {
            options_done = true;
            if (mode == MODE_HEAD) {
                i++;
                break;
            }
            continue;
        }
        if (options_done || word[0] != '-' || word[1] == '\0') {
            if (mode == MODE_HEAD) {
                break;
            }
            if (n_found >= max_pos) {
                rc = rc_err_set(err, RC_EINVAL, "unexpected argument '%s'", word);
                goto out;
            }
            found[n_found++] = word;
            continue;
        }
        if (word[1] != '-') {
            rc = rc_err_set(err, RC_EINVAL, "unknown or ambiguous option '%s'", word);
            goto out;
        }
        rc = one_option(opts, n, argc, argv, &i, fn, ctx, err);
        if (rc != RC_OK) {
            goto out;
        }
    }
    if (mode == MODE_HEAD) {
        *next = i < argc ? i : argc;
    } else {
        for (size_t k = 0; k < n_found; k++) {
            pos[k] = found[k];
        }
        *n_pos = n_found;
    }
out:
    free(found);
    return rc;
}

enum rc_rc
toolopt_parse(const struct toolopt *opts, size_t n, int argc, char **argv, toolopt_fn fn, void *ctx,
              struct rc_err *err)
{
    size_t n_pos = 0;
    return parse(opts, n, argc, argv, fn, ctx, MODE_COLLECT, NULL, 0, &n_pos, NULL, err);
}

enum rc_rc
toolopt_parse_pos(const struct toolopt *opts, size_t n, int argc, char **argv, toolopt_fn fn,
                  void *ctx, const char **pos, size_t max_pos, size_t *n_pos, struct rc_err *err)
{
    return parse(opts, n, argc, argv, fn, ctx, MODE_COLLECT, pos, max_pos, n_pos, NULL, err);
}

enum rc_rc
toolopt_parse_head(const struct toolopt *opts, size_t n, int argc, char **argv, toolopt_fn fn,
                   void *ctx, int *next, struct rc_err *err)
{
    return parse(opts, n, argc, argv, fn, ctx, MODE_HEAD, NULL, 0, NULL, next, err);
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
    int64_t v = 0;
    if (!num_parse_i64(s, strlen(s), &v) || v < min || v > max) {
        return rc_err_set(err, RC_EINVAL, "%s: must be an integer in [%lld, %lld], not '%s'", what,
                          (long long)min, (long long)max, s);
    }
    *out = v;
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
    double v = 0;
    if (!num_parse_f64(s, strlen(s), &v) || v < min || v > max) {
        return rc_err_set(err, RC_EINVAL, "%s: must be a number in [%g, %g], not '%s'", what, min,
                          max, s);
    }
    *out = v;
    return RC_OK;
}
