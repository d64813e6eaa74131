/* SPDX-License-Identifier: MIT
 * it_child: the processes an env starts (its children), each by name with its log in the env
 * dir: spawning through the env's proc group (tools/stack/proc: the layered environment, the
 * orphan protection), signalling, collecting, stopping in waves, and the coordinator and
 * stub-worker starters that wait for readiness. */
#include "tests/support/it_env.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/buf.h"
#include "common/clock.h"
#include "common/xalloc.h"
#include "contract/keys.h"
#include "tests/support/it_env_internal.h"
#include "tools/stack/proc.h"

#ifndef RC_BIN_DIR
#error "RC_BIN_DIR must name the build's bin dir (tests/CMakeLists.txt defines it)"
#endif

/* ---- small helpers ------------------------------------------------------------------------ */

/* A NULL-terminated vector of owned strings, for an argv. */
struct strv {
    char **v;
    size_t n;
    size_t cap;
};

static void
strv_add(struct strv *sv, const char *s)
{
    sv->v = xgrow(sv->v, &sv->cap, sv->n + 2, sizeof *sv->v);
    sv->v[sv->n++] = xstrdup(s);
    sv->v[sv->n] = NULL;
}

static void
strv_release(struct strv *sv)
{
    for (size_t i = 0; i < sv->n; i++) {
        free(sv->v[i]);
    }
    free(sv->v);
    *sv = (struct strv){NULL, 0, 0};
}
/* ---- children ----------------------------------------------------------------------------- */

struct it_child *
it_child_find(struct it_env *env, pid_t pid)
{
    for (size_t i = 0; i < env->n_children; i++) {
        if (env->children[i].pid == pid) {
            return &env->children[i];
        }
    }
    return NULL;
}

void
it_child_log_path(const struct it_env *env, const char *name, struct buf *out)
{
    buf_printf(out, "%s/%s.log", env->dir, name);
}

/* Reap the child if it has exited; true when it is gone. */
bool
it_child_gone(struct it_env *env, struct it_child *c)
{
    int st = 0;

    if (!c->done && proc_wait(env->procs, c->pid, 0, &st, NULL) == RC_OK) {
        c->done = true;
        c->status = st;
    }
    return c->done;
}

void
it_child_state(const struct it_child *c, char *out, size_t len)
{
    if (!c->done) {
        snprintf(out, len, "running");
        return;
    }
    proc_describe(c->status, out, len);
}

static bool
name_ok(const char *name)
{
    size_t len = strlen(name);

    if (len == 0 || len >= IT_CHILD_NAME_MAX) {
        return false;
    }
    for (size_t i = 0; i < len; i++) {
        char ch = name[i];
        if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
              ch == '.' || ch == '_' || ch == '-')) {
            return false;
        }
    }
    return true;
}

void
it_child_add(struct it_env *env, const char *name, pid_t pid, bool infra)
{
    RC_ASSERT(name_ok(name));
    env->children =
        xgrow(env->children, &env->cap_children, env->n_children + 1, sizeof *env->children);
    struct it_child *c = &env->children[env->n_children++];
    memset(c, 0, sizeof *c);
    c->pid = pid;
    snprintf(c->name, sizeof c->name, "%s", name);
    c->infra = infra;
}

/* Start `path` as child `name` with argv (argv[0] kept as given) and the environment
 * environ + each layer in turn (NULL layers skipped). */
enum rc_rc
it_child_spawn(struct it_env *env, const char *name, const char *path, const char *const argv[],
               const char *const *const layers[], size_t n_layers, bool infra, pid_t *out,
               struct rc_err *err)
{
    struct buf log_path = BUF_INIT;
    pid_t pid = -1;

    if (!name_ok(name)) {
        return rc_err_set(err, RC_EINVAL, "bad child name \"%s\"", name);
    }
    if (access(path, X_OK) != 0) {
        return rc_err_sys(err, "%s is not there or not executable (not built?)", path);
    }
    it_child_log_path(env, name, &log_path);
    const struct proc_spec sp = {
        .path = path, .argv = argv, .env = layers, .n_env = n_layers, .log_path = log_path.data};
    enum rc_rc rc = proc_spawn(env->procs, &sp, &pid, NULL, NULL, err);
    buf_release(&log_path);
    if (rc != RC_OK) {
        return rc;
    }
    it_child_add(env, name, pid, infra);
    *out = pid;
    return RC_OK;
}

pid_t
it_env_spawn(struct it_env *env, const char *name, const char *const argv[],
             const char *const extra_env[])
{
    const char *const *const layers[] = {(const char *const *)env->base_env, extra_env};
    struct rc_err err = RC_ERR_INIT;
    struct buf path = BUF_INIT;
    pid_t pid = -1;

    if (strchr(argv[0], '/') != NULL) {
        buf_puts(&path, argv[0]);
    } else {
        buf_printf(&path, "%s/%s", RC_BIN_DIR, argv[0]);
    }
    if (it_child_spawn(env, name, path.data, argv, layers, 2, false, &pid, &err) != RC_OK) {
        buf_release(&path);
        it_fail(env, "it_env_spawn %s: %s", name, err.msg);
        return -1;
    }
    buf_release(&path);
    return pid;
}

pid_t
it_env_pid(const struct it_env *env, const char *name)
{
    for (size_t i = env->n_children; i > 0; i--) {
        if (strcmp(env->children[i - 1].name, name) == 0) {
            return env->children[i - 1].pid;
        }
    }
    return -1;
}

int
it_env_kill(struct it_env *env, pid_t pid, int sig)
{
    struct it_child *c = it_child_find(env, pid);

    if (c == NULL) {
        errno = EINVAL;
        return -1;
    }
    if (c->done) {
        errno = ESRCH; /* reaped: the pid may belong to someone else by now */
        return -1;
    }
    c->unjudged = true;
    return kill(pid, sig);
}

int
it_env_wait_exit(struct it_env *env, pid_t pid, int timeout_ms, int *status)
{
    struct it_child *c = it_child_find(env, pid);
    int st = 0;

    if (c == NULL) {
        return -1;
    }
    if (!c->done) {
        if (proc_wait(env->procs, pid, timeout_ms, &st, NULL) != RC_OK) {
            return -1;
        }
        c->done = true;
        c->status = st;
    }
    c->unjudged = true;
    if (status != NULL) {
        *status = c->status;
    }
    return 0;
}

/* ---- stop --------------------------------------------------------------------------------- */

/* SIGTERM every running child of the wave, wait for all (IT_STOP_TIMEOUT_MS in total), SIGKILL
 * the rest; then judge each child of the wave. True when all ended cleanly. */
bool
it_children_stop(struct it_env *env, bool infra)
{
    bool clean = true;

    for (size_t i = 0; i < env->n_children; i++) {
        struct it_child *c = &env->children[i];
        if (c->infra == infra && !it_child_gone(env, c)) {
            kill(c->pid, SIGTERM);
        }
    }
    int64_t deadline = clock_mono_ms() + IT_STOP_TIMEOUT_MS;
    for (size_t i = 0; i < env->n_children; i++) {
        struct it_child *c = &env->children[i];
        if (c->infra != infra || c->done) {
            continue;
        }
        int64_t left = deadline - clock_mono_ms();
        int st = 0;
        if (proc_wait(env->procs, c->pid, left > 0 ? (int)left : 0, &st, NULL) != RC_OK) {
            fprintf(stderr, "it_env: %s (pid %ld) ignored SIGTERM for %d ms: SIGKILL\n", c->name,
                    (long)c->pid, IT_STOP_TIMEOUT_MS);
            kill(c->pid, SIGKILL);
            if (proc_wait(env->procs, c->pid, 5000, &st, NULL) != RC_OK) {
                st = 0x7f; /* should not happen; leave it marked as not a clean exit */
            }
        }
        c->done = true;
        c->status = st;
    }
    for (size_t i = 0; i < env->n_children; i++) {
        const struct it_child *c = &env->children[i];
        if (c->infra == infra && !c->unjudged &&
            !(WIFEXITED(c->status) && WEXITSTATUS(c->status) == 0)) {
            char state[96];
            it_child_state(c, state, sizeof state);
            fprintf(stderr, "it_env: %s (pid %ld) did not end cleanly: %s\n", c->name, (long)c->pid,
                    state);
            clean = false;
        }
    }
    return clean;
}

/* ---- coordinator and workers -------------------------------------------------------------- */

pid_t
it_env_start_coordinator(struct it_env *env, const char *const extra_env[])
{
    static const char *const defaults[] = {"AGENT_POLL_INTERVAL=0.1", "LOG_LEVEL=debug", NULL};
    const char *const argv[] = {"coordinator", NULL};
    const char *const *const layers[] = {(const char *const *)env->base_env, defaults, extra_env};
    struct buf key = BUF_INIT;
    struct buf path = BUF_INIT;
    struct rc_err err = RC_ERR_INIT;
    pid_t pid = -1;

    keys_coordinator(&key, env->key_prefix);
    char *before = it_redis_hget(env, key.data, "last_cycle_at");
    buf_printf(&path, "%s/coordinator", RC_BIN_DIR);
    if (it_child_spawn(env, "coordinator", path.data, argv, layers, 3, false, &pid, &err) !=
        RC_OK) {
        it_fail(env, "start coordinator: %s", err.msg);
        goto out;
    }
    struct it_child *c = it_child_find(env, pid);
    int64_t deadline = clock_mono_ms() + IT_READY_TIMEOUT_MS;
    for (;;) {
        char *now = it_redis_hget(env, key.data, "last_cycle_at");
        bool ready = now != NULL && (before == NULL || strcmp(now, before) != 0);
        free(now);
        if (ready) {
            break;
        }
        if (it_child_gone(env, c)) {
            char state[96];
            it_child_state(c, state, sizeof state);
            it_fail(env, "coordinator (pid %ld) ended before its first cycle: %s", (long)pid,
                    state);
            pid = -1;
            break;
        }
        if (clock_mono_ms() >= deadline) {
            it_fail(env, "coordinator (pid %ld) wrote no %s last_cycle_at within %d ms", (long)pid,
                    key.data, IT_READY_TIMEOUT_MS);
            pid = -1;
            break;
        }
        it_sleep_ms(20);
    }
out:
    free(before);
    buf_release(&path);
    buf_release(&key);
    return pid;
}

/* How many members of the zset `key` start with `prefix`. */
static long long
zset_count_prefixed(struct it_env *env, const char *key, const char *prefix)
{
    const char *const argv[] = {"ZRANGE", key, "0", "-1"};
    redisReply *r = it_redis_cmd(env, 4, argv);
    long long n = 0;

    if (r != NULL && r->type == REDIS_REPLY_ARRAY) {
        for (size_t i = 0; i < r->elements; i++) {
            const redisReply *m = r->element[i];
            if (m->type == REDIS_REPLY_STRING && strncmp(m->str, prefix, strlen(prefix)) == 0) {
                n++;
            }
        }
    }
    if (r != NULL) {
        freeReplyObject(r);
    }
    return n;
}

pid_t
it_env_start_workers(struct it_env *env, const char *type, int count, const char *id_prefix,
                     const char *const extra_args[])
{
    enum worker_type wt;
    struct strv argv = {NULL, 0, 0};
    struct buf b = BUF_INIT;
    struct buf prefix = BUF_INIT;
    struct buf name = BUF_INIT;
    struct buf key = BUF_INIT;
    pid_t pid = -1;

    if (worker_type_parse(type, &wt) != RC_OK || count < 1) {
        it_fail(env, "it_env_start_workers: bad type \"%s\" or count %d", type, count);
        return -1;
    }
    int group = ++env->worker_groups;
    if (id_prefix != NULL) {
        buf_puts(&prefix, id_prefix);
    } else {
        buf_printf(&prefix, "g%d-", group);
    }
    buf_printf(&name, "workers-%s-%d", type, group);
    buf_printf(&b, "%d", count);
    strv_add(&argv, "stub-worker");
    strv_add(&argv, "--type");
    strv_add(&argv, type);
    strv_add(&argv, "--count");
    strv_add(&argv, b.data);
    strv_add(&argv, "--id-prefix");
    strv_add(&argv, prefix.data);
    for (size_t i = 0; extra_args != NULL && extra_args[i] != NULL; i++) {
        strv_add(&argv, extra_args[i]);
    }
    pid = it_env_spawn(env, name.data, (const char *const *)argv.v, NULL);
    if (pid < 0) {
        goto out;
    }
    keys_workers(&key, env->key_prefix, wt);
    buf_reset(&b);
    buf_printf(&b, "%s%s-", prefix.data, type);
    struct it_child *c = it_child_find(env, pid);
    int64_t deadline = clock_mono_ms() + IT_READY_TIMEOUT_MS;
    for (;;) {
        long long n = zset_count_prefixed(env, key.data, b.data);
        if (n >= count) {
            break;
        }
        if (it_child_gone(env, c) || clock_mono_ms() >= deadline) {
            char state[96];
            it_child_state(c, state, sizeof state);
            it_fail(env, "%s (pid %ld, %s): %lld of %d workers \"%s*\" in %s after %d ms",
                    name.data, (long)pid, state, n, count, b.data, key.data, IT_READY_TIMEOUT_MS);
            pid = -1;
            break;
        }
        it_sleep_ms(20);
    }
out:
    buf_release(&key);
    buf_release(&name);
    buf_release(&prefix);
    buf_release(&b);
    strv_release(&argv);
    return pid;
}
