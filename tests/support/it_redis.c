/* SPDX-License-Identifier: MIT
 * it_redis: the env's Redis helpers over its link (redislink). A link the server dropped (a
 * Sentinel killing clients, a restart) is opened again once; one that still fails fails the
 * test; an error reply is the caller's to judge (it_redis_cmd) or fails the test (the typed
 * helpers). */
#include "tests/support/it_env.h"

#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "common/clock.h"
#include "common/redislink.h"
#include "common/xalloc.h"
#include "contract/keys.h"
#include "tests/support/it_env_internal.h"

/* ---- Redis -------------------------------------------------------------------------------- */

struct redislink *
it_redis(struct it_env *env)
{
    return env->redis;
}

redisReply *
it_redis_cmd_len(struct it_env *env, int argc, const char *const argv[], const size_t *lens)
{
    const char **args = xcalloc((size_t)argc + 1, sizeof *args);
    for (int i = 0; i < argc; i++) {
        args[i] = argv[i];
    }
    char *cmd = NULL;
    long long len = redisFormatCommandArgv(&cmd, argc, args, lens);
    free(args);
    if (len < 0) {
        it_fail(env, "redis %s: cannot encode the command", argc > 0 ? argv[0] : "?");
        return NULL;
    }
    redisReply *r = NULL;
    struct rc_err err = RC_ERR_INIT;
    for (int attempt = 0; r == NULL && attempt < 2; attempt++) {
        bool opened;
        if (redislink_open(env->redis, &opened, &err) != RC_OK) {
            redislink_drop(env->redis); /* the second attempt need not wait for the backoff */
            continue;
        }
        redislink_append(env->redis, cmd, (size_t)len);
        (void)redislink_read(env->redis, &r, 1, &err); /* a dropped link is reopened next */
    }
    redisFreeCommand(cmd);
    if (r == NULL) {
        it_fail(env, "redis %s: %s", argc > 0 ? argv[0] : "?", err.msg);
    }
    return r;
}

redisReply *
it_redis_cmd(struct it_env *env, int argc, const char *const argv[])
{
    return it_redis_cmd_len(env, argc, argv, NULL);
}

char *
it_redis_hget(struct it_env *env, const char *key, const char *field)
{
    const char *const argv[] = {"HGET", key, field};
    redisReply *r = it_redis_cmd(env, 3, argv);
    char *value = NULL;

    if (r == NULL) {
        return NULL;
    }
    if (r->type == REDIS_REPLY_STRING) {
        value = xstrndup(r->str, r->len);
    } else if (r->type != REDIS_REPLY_NIL) {
        it_fail(env, "HGET %s %s: %s", key, field,
                r->type == REDIS_REPLY_ERROR ? r->str : "unexpected reply type");
    }
    freeReplyObject(r);
    return value;
}

char *
it_research_hget(struct it_env *env, const char *research_id, const char *field)
{
    struct buf key = BUF_INIT;

    char *value = it_redis_hget(env, keys_research(&key, env->key_prefix, research_id), field);
    buf_release(&key);
    return value;
}

void
it_research_wait(struct it_env *env, const char *research_id, const char *field, const char *value,
                 int timeout_ms)
{
    int64_t deadline = clock_mono_ms() + timeout_ms;

    for (;;) {
        char *now = it_research_hget(env, research_id, field);
        bool done = now != NULL && (value == NULL || strcmp(now, value) == 0);
        if (done || clock_mono_ms() >= deadline) {
            if (!done) {
                it_fail(env, "research %s: %s is \"%s\", not \"%s\", after %d ms", research_id,
                        field, now != NULL ? now : "(absent)", value != NULL ? value : "(any)",
                        timeout_ms);
            }
            free(now);
            return;
        }
        free(now);
        it_sleep_ms(20);
    }
}

/* `cmd key`'s integer reply; fails the test on any other. */
static long long
count_of(struct it_env *env, const char *cmd, const char *key)
{
    const char *const argv[] = {cmd, key};
    redisReply *r = it_redis_cmd(env, 2, argv);
    long long n = 0;

    if (r == NULL) {
        return 0;
    }
    if (r->type == REDIS_REPLY_INTEGER) {
        n = r->integer;
    } else {
        it_fail(env, "%s %s: %s", cmd, key,
                r->type == REDIS_REPLY_ERROR ? r->str : "unexpected reply type");
    }
    freeReplyObject(r);
    return n;
}

long long
it_redis_zcard(struct it_env *env, const char *key)
{
    return count_of(env, "ZCARD", key);
}

long long
it_redis_hlen(struct it_env *env, const char *key)
{
    return count_of(env, "HLEN", key);
}
