/* SPDX-License-Identifier: MIT
 * it_ha: what Redis failover tests add to an env: more redis-servers (replicas of the env's),
 * redis-sentinel, a TCP proxy whose target moves (tests/tools/tcpproxy), and links to servers
 * by port. Every process is a child of the env, stopped with it. */
#include "tests/support/test.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/buf.h"
#include "common/clock.h"
#include "common/num.h"
#include "common/xalloc.h"
#include "tests/support/it_env.h"
#include "tests/support/it_env_internal.h"

int
it_env_redis_port(const struct it_env *env)
{
    return env->redis_port;
}

redisContext *
it_redis_connect_port(struct it_env *env, int port)
{
    struct timeval tv = {5, 0};
    redisContext *c = redisConnectWithTimeout("127.0.0.1", port, tv);
    if (c == NULL || c->err != 0) {
        it_fail(env, "cannot connect to 127.0.0.1:%d: %s", port, c != NULL ? c->errstr : "?");
        return NULL;
    }
    redisSetTimeout(c, tv);
    return c;
}

redisReply *
it_redis_cmd_on(struct it_env *env, redisContext *ctx, int argc, const char *const argv[])
{
    size_t lens[32];
    if (argc > 32) {
        it_fail(env, "it_redis_cmd_on: too many arguments");
    }
    for (int i = 0; i < argc; i++) {
        lens[i] = strlen(argv[i]);
    }
    redisReply *r = redisCommandArgv(ctx, argc, (const char **)(uintptr_t)argv, lens);
    if (r == NULL) {
        it_fail(env, "%s: %s", argv[0], ctx->errstr);
    }
    return r;
}

/* PING 127.0.0.1:port until it answers (or the child is gone, or the deadline passes). */
static bool
answers(struct it_env *env, pid_t pid, int port)
{
    const int64_t deadline = clock_mono_ms() + IT_READY_TIMEOUT_MS;
    struct timeval tv = {0, 200 * 1000};
    while (clock_mono_ms() < deadline) {
        struct it_child *child = it_child_find(env, pid);
        if (child == NULL || it_child_gone(env, child)) {
            return false;
        }
        redisContext *c = redisConnectWithTimeout("127.0.0.1", port, tv);
        if (c != NULL && c->err == 0) {
            redisReply *r = redisCommand(c, "PING");
            bool pong = r != NULL && r->type == REDIS_REPLY_STATUS;
            if (r != NULL) {
                freeReplyObject(r);
            }
            redisFree(c);
            if (pong) {
                return true;
            }
        } else if (c != NULL) {
            redisFree(c);
        }
        it_sleep_ms(20);
    }
    return false;
}

pid_t
it_env_start_redis_server(struct it_env *env, const char *name, bool replica_of_main, int *port)
{
    char *server = it_find_program("redis-server");
    if (server == NULL) {
        it_fail(env, "redis-server not found (run scripts/deps.sh)");
        return -1;
    }
    struct buf dir = BUF_INIT;
    buf_printf(&dir, "%s/%s.d", it_env_dir(env), name);
    (void)mkdir(dir.data, 0700);
    *port = it_free_port();
    char port_text[16], main_port[16];
    snprintf(port_text, sizeof(port_text), "%d", *port);
    snprintf(main_port, sizeof(main_port), "%d", env->redis_port);
    /* clang-format off */
    const char *argv[] = {"redis-server", "--port", port_text, "--bind", "127.0.0.1",
                          "--save", "", "--appendonly", "no", "--dir", dir.data,
                          replica_of_main ? "--replicaof" : NULL, "127.0.0.1", main_port, NULL};
    /* clang-format on */
    pid_t pid = -1;
    struct rc_err err = RC_ERR_INIT;
    enum rc_rc rc = it_child_spawn(env, name, server, argv, NULL, 0, true, &pid, &err);
    free(server);
    buf_release(&dir);
    if (rc != RC_OK || !answers(env, pid, *port)) {
        it_fail(env, "%s: redis-server did not start: %s", name, err.msg);
    }
    return pid;
}

pid_t
it_env_start_sentinel(struct it_env *env, const char *name, const char *master_name,
                      int master_port, int *port)
{
    /* Debian's redis-sentinel, else redis-server --sentinel (the same program). */
    char *sentinel = it_find_program("redis-sentinel");
    bool as_server = sentinel == NULL;
    if (as_server) {
        sentinel = it_find_program("redis-server");
    }
    if (sentinel == NULL) {
        it_fail(env, "redis-sentinel not found (run scripts/deps.sh)");
        return -1;
    }
    *port = it_free_port();
    /* A Sentinel rewrites its file: one of its own. Quick to judge the primary down and to fail
     * over, as a test needs; quorum 1 (one Sentinel decides). */
    struct buf conf = BUF_INIT, text = BUF_INIT;
    buf_printf(&conf, "%s/%s.conf", it_env_dir(env), name);
    buf_printf(&text,
               "port %d\nbind 127.0.0.1\ndir %s\n"
               "sentinel monitor %s 127.0.0.1 %d 1\n"
               "sentinel down-after-milliseconds %s 500\n"
               "sentinel failover-timeout %s 4000\n"
               "sentinel parallel-syncs %s 1\n",
               *port, it_env_dir(env), master_name, master_port, master_name, master_name,
               master_name);
    FILE *f = fopen(conf.data, "w");
    if (f == NULL || fwrite(text.data, 1, text.len, f) != text.len || fclose(f) != 0) {
        it_fail(env, "cannot write %s: %s", conf.data, strerror(errno));
    }
    const char *argv[] = {as_server ? "redis-server" : "redis-sentinel", conf.data,
                          as_server ? "--sentinel" : NULL, NULL};
    pid_t pid = -1;
    struct rc_err err = RC_ERR_INIT;
    enum rc_rc rc = it_child_spawn(env, name, sentinel, argv, NULL, 0, true, &pid, &err);
    free(sentinel);
    buf_release(&conf);
    buf_release(&text);
    if (rc != RC_OK || !answers(env, pid, *port)) {
        it_fail(env, "%s: redis-sentinel did not start: %s", name, err.msg);
    }
    return pid;
}

int
it_sentinel_primary_port(struct it_env *env, int sentinel_port, const char *master_name)
{
    redisContext *c = it_redis_connect_port(env, sentinel_port);
    const char *const argv[] = {"SENTINEL", "get-master-addr-by-name", master_name};
    redisReply *r = it_redis_cmd_on(env, c, 3, argv);
    int port = -1;
    if (r->type == REDIS_REPLY_ARRAY && r->elements == 2 &&
        r->element[1]->type == REDIS_REPLY_STRING) {
        int64_t p = -1;
        if (num_parse_i64(r->element[1]->str, r->element[1]->len, &p) && p > 0 && p <= 65535) {
            port = (int)p;
        }
    }
    freeReplyObject(r);
    redisFree(c);
    return port;
}

/* Write "127.0.0.1:<port>" into the proxy's target file (atomically). */
static void
write_target(struct it_env *env, const char *name, int target_port, struct buf *path)
{
    buf_reset(path);
    buf_printf(path, "%s/%s.target", it_env_dir(env), name);
    struct buf tmp = BUF_INIT;
    buf_printf(&tmp, "%s.tmp", path->data);
    FILE *f = fopen(tmp.data, "w");
    if (f == NULL || fprintf(f, "127.0.0.1:%d\n", target_port) < 0 || fclose(f) != 0 ||
        rename(tmp.data, path->data) != 0) {
        it_fail(env, "cannot write %s: %s", path->data, strerror(errno));
    }
    buf_release(&tmp);
}

struct port_file {
    const char *path;
    int port;
};

static bool
port_written(void *arg)
{
    struct port_file *p = arg;
    FILE *f = fopen(p->path, "r");
    if (f == NULL) {
        return false;
    }
    int port = 0;
    bool ok = fscanf(f, "%d", &port) == 1 && port > 0;
    fclose(f);
    p->port = port;
    return ok;
}

pid_t
it_env_start_proxy(struct it_env *env, const char *name, int target_port, int *port)
{
    struct buf target = BUF_INIT, port_path = BUF_INIT;
    write_target(env, name, target_port, &target);
    buf_printf(&port_path, "%s/%s.port", it_env_dir(env), name);
    const char *const argv[] = {"tcpproxy",      "--listen",    "127.0.0.1:0",  "--target-file",
                                target.data, "--port-file", port_path.data, NULL};
    pid_t pid = it_env_spawn(env, name, argv, NULL);
    struct port_file p = {port_path.data, 0};
    if (!it_wait_until(port_written, &p, IT_READY_TIMEOUT_MS)) {
        it_fail(env, "%s: tcpproxy wrote no port", name);
    }
    *port = p.port;
    buf_release(&target);
    buf_release(&port_path);
    return pid;
}

void
it_env_proxy_retarget(struct it_env *env, pid_t proxy, const char *name, int target_port,
                      bool drop)
{
    struct buf target = BUF_INIT;
    write_target(env, name, target_port, &target);
    buf_release(&target);
    /* The proxy's end is still judged: it_env_kill would mark it unjudged, so signal directly
     * (it is our child, by pid). */
    if (kill(proxy, drop ? SIGUSR1 : SIGHUP) != 0) {
        it_fail(env, "%s: cannot signal the proxy: %s", name, strerror(errno));
    }
}

/* Lines of the devbroker's log that confirm a fault file was read. */
static size_t
fault_readings(struct it_env *env)
{
    struct buf path = BUF_INIT;
    buf_printf(&path, "%s/devbroker.log", it_env_dir(env));
    FILE *f = fopen(path.data, "r");
    buf_release(&path);
    size_t n = 0;
    char line[512];
    while (f != NULL && fgets(line, sizeof(line), f) != NULL) {
        n += strstr(line, "pushed") != NULL;
    }
    if (f != NULL) {
        fclose(f);
    }
    return n;
}

struct readings {
    struct it_env *env;
    size_t before;
};

static bool
read_again(void *arg)
{
    struct readings *r = arg;
    return fault_readings(r->env) > r->before;
}

void
it_env_broker_faults(struct it_env *env, const char *lines)
{
    struct buf path = BUF_INIT, tmp = BUF_INIT;
    buf_printf(&path, "%s/broker.faults", it_env_dir(env));
    buf_printf(&tmp, "%s.tmp", path.data);
    FILE *f = fopen(tmp.data, "w");
    if (f == NULL || fputs(lines, f) < 0 || fclose(f) != 0 || rename(tmp.data, path.data) != 0) {
        it_fail(env, "cannot write %s: %s", path.data, strerror(errno));
    }
    buf_release(&path);
    buf_release(&tmp);
    struct readings r = {env, fault_readings(env)};
    pid_t broker = it_env_pid(env, "devbroker");
    if (broker <= 0 || kill(broker, SIGHUP) != 0) {
        it_fail(env, "cannot signal the devbroker");
    }
    if (!it_wait_until(read_again, &r, IT_READY_TIMEOUT_MS)) {
        it_fail(env, "the devbroker did not read its fault file");
    }
    if (fault_readings(env) > 0 && it_env_pid(env, "devbroker") > 0) {
        struct buf log = BUF_INIT;
        buf_printf(&log, "%s/devbroker.log", it_env_dir(env));
        FILE *lf = fopen(log.data, "r");
        buf_release(&log);
        char line[512], last[512] = "";
        while (lf != NULL && fgets(line, sizeof(line), lf) != NULL) {
            if (strstr(line, "pushed") != NULL) {
                snprintf(last, sizeof(last), "%s", line);
            }
        }
        if (lf != NULL) {
            fclose(lf);
        }
        if (strstr(last, "nothing pushed") != NULL) {
            it_fail(env, "the devbroker refused the faults: %s", last);
        }
    }
}
