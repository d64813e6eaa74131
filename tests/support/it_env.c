/* SPDX-License-Identifier: MIT
 * it_env: lifecycle of an integration-test environment: its temp dir, redis-server and
 * devbroker (started and waited for by tools/stack), the base environment of its children,
 * stop, logs, and the small test utilities. Children are in it_child.c, Redis helpers in
 * it_redis.c, Kafka in it_kafka.c. */
#include "tests/support/test.h"

#include "tests/support/it_env.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common/buf.h"
#include "common/cfg.h"
#include "common/clock.h"
#include "common/redislink.h"
#include "common/xalloc.h"
#include "tests/support/it_env_internal.h"
#include "tools/stack/proc.h"
#include "tools/stack/stack.h"

#ifndef RC_BIN_DIR
#error "RC_BIN_DIR must name the build's bin dir (tests/CMakeLists.txt defines it)"
#endif

#define TOPIC_PREFIX "research."
#define KEY_PREFIX "rc:"
#define REDIS_TIMEOUT_MS 5000
#define LOG_TAIL_BYTES 16384
#define LOG_TAIL_LINES 60
#define SOCK_PATH_MAX 100 /* sun_path is 108 bytes on Linux; keep a margin */

static bool
env_flag(const char *name)
{
    const char *v = getenv(name);
    return v != NULL && v[0] != '\0' && strcmp(v, "0") != 0;
}

void
it_sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};

    while (ms > 0 && nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

bool
it_wait_until(bool (*cond)(void *), void *arg, int timeout_ms)
{
    int64_t deadline = clock_mono_ms() + timeout_ms;

    for (;;) {
        if (cond(arg)) {
            return true;
        }
        int64_t left = deadline - clock_mono_ms();
        if (left <= 0) {
            return cond(arg);
        }
        it_sleep_ms(left < 10 ? (int)left : 10);
    }
}

int
it_free_port(void)
{
    struct sockaddr_in addr;
    socklen_t len = sizeof addr;
    int port = -1;
    int fd = socket(AF_INET, SOCK_STREAM, 0);

    if (fd < 0) {
        return -1;
    }
    memset(&addr, 0, sizeof addr);
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = 0;
    if (bind(fd, (struct sockaddr *)&addr, sizeof addr) == 0 &&
        getsockname(fd, (struct sockaddr *)&addr, &len) == 0) {
        port = ntohs(addr.sin_port);
    }
    close(fd);
    return port;
}

void
it_fail(struct it_env *env, const char *fmt, ...)
{
    char why[2048];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(why, sizeof why, fmt, ap);
    va_end(ap);
    if (env != NULL) {
        it_env_dump_logs(env);
    }
    print_error("ERROR: %s\n", why);
    fail();
}

void
it_skip(const char *why)
{
    if (env_flag("IT_REQUIRE_ALL")) {
        print_error("ERROR: would skip, but IT_REQUIRE_ALL is set: %s\n", why);
        fail();
        return;
    }
    print_message("SKIP: %s\n", why);
    skip();
}

/* ---- running a command to completion ------------------------------------------------------ */

/* The text of `path` from byte `from` on (caller frees); "" when it cannot be read. */
static char *
read_from(const char *path, long from)
{
    struct buf text = BUF_INIT;
    char chunk[4096];
    FILE *f = fopen(path, "rb");

    if (f != NULL && fseek(f, from, SEEK_SET) == 0) {
        size_t n;
        while ((n = fread(chunk, 1, sizeof chunk, f)) > 0) {
            buf_append(&text, chunk, n);
        }
    }
    if (f != NULL) {
        fclose(f);
    }
    buf_putc(&text, '\0'); /* so that an empty output is "" rather than NULL */
    return buf_detach(&text);
}

int
it_env_run(struct it_env *env, const char *name, const char *const argv[],
           const char *const extra_env[], int timeout_ms, char **output)
{
    struct buf path = BUF_INIT;
    struct stat st;
    int status = 0;

    it_child_log_path(env, name, &path);
    long from = stat(path.data, &st) == 0 ? (long)st.st_size : 0; /* a reused name appends */
    pid_t pid = it_env_spawn(env, name, argv, extra_env);
    bool exited = it_env_wait_exit(env, pid, timeout_ms, &status) == 0;
    if (!exited) {
        it_env_kill(env, pid, SIGKILL);
        it_env_wait_exit(env, pid, IT_STOP_TIMEOUT_MS, &status);
    }
    char *text = read_from(path.data, from);
    buf_release(&path);
    if (!exited || !WIFEXITED(status)) {
        char state[96];
        proc_describe(status, state, sizeof state);
        it_fail(env, "%s (%s) %s; its output:\n%s", name, argv[0],
                exited ? state : "did not exit in time", text);
        free(text);
        return -1;
    }
    if (output != NULL) {
        *output = text;
    } else {
        free(text);
    }
    return WEXITSTATUS(status);
}

/* ---- logs and the temp dir ---------------------------------------------------------------- */

static void
dump_log(const struct it_env *env, const struct it_child *c)
{
    char state[96];
    struct buf path = BUF_INIT;
    char *data = xmalloc(LOG_TAIL_BYTES + 1);

    it_child_state(c, state, sizeof state);
    it_child_log_path(env, c->name, &path);
    fprintf(stderr, "----- %s (pid %ld, %s) -----\n", path.data, (long)c->pid, state);
    FILE *f = fopen(path.data, "rb");
    if (f == NULL) {
        fprintf(stderr, "(no log: %s)\n", strerror(errno));
        goto out;
    }
    size_t skipped = 0;
    if (fseek(f, 0, SEEK_END) == 0) {
        long size = ftell(f);
        if (size > LOG_TAIL_BYTES) {
            skipped = (size_t)size - LOG_TAIL_BYTES;
        }
        fseek(f, (long)skipped, SEEK_SET);
    }
    size_t n = fread(data, 1, LOG_TAIL_BYTES, f);
    fclose(f);
    data[n] = '\0';
    size_t start = n;
    int lines = 0;
    while (start > 0 && lines < LOG_TAIL_LINES) {
        start--;
        if (data[start] == '\n' && start + 1 < n) {
            lines++;
        }
    }
    if (lines >= LOG_TAIL_LINES) {
        start++; /* just past the newline before the first line kept */
    }
    if (start > 0 || skipped > 0) {
        fprintf(stderr, "[... earlier lines not shown]\n");
    }
    fwrite(data + start, 1, n - start, stderr);
    if (n > 0 && data[n - 1] != '\n') {
        fputc('\n', stderr);
    }
out:
    free(data);
    buf_release(&path);
}

void
it_env_dump_logs(struct it_env *env)
{
    if (env == NULL || env->dir == NULL) {
        return;
    }
    for (size_t i = 0; i < env->n_children; i++) {
        bool seen = false;
        it_child_gone(env, &env->children[i]);
        for (size_t j = i + 1; j < env->n_children; j++) {
            seen = seen || strcmp(env->children[j].name, env->children[i].name) == 0;
        }
        if (!seen) { /* a shared log is shown once, under its latest child */
            dump_log(env, &env->children[i]);
        }
    }
    fprintf(stderr, "----- end of logs (%s) -----\n", env->dir);
}

/* Remove a tree we created; depth-bounded (children may make a subdir or two, not more). */
static void
remove_tree(const char *path, int depth)
{
    DIR *d = opendir(path);

    if (d != NULL && depth > 0) {
        struct dirent *de;
        struct buf sub = BUF_INIT;
        while ((de = readdir(d)) != NULL) {
            if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0) {
                continue;
            }
            struct stat st;
            buf_reset(&sub);
            buf_printf(&sub, "%s/%s", path, de->d_name);
            if (lstat(sub.data, &st) == 0 && S_ISDIR(st.st_mode)) {
                remove_tree(sub.data, depth - 1);
            } else {
                unlink(sub.data);
            }
        }
        buf_release(&sub);
    }
    if (d != NULL) {
        closedir(d);
    }
    rmdir(path);
}

int
it_env_stop(struct it_env *env)
{
    if (env == NULL) {
        return 0;
    }
    bool clean = it_children_stop(env, false);
    it_kafka_stop(env);
    redislink_free(env->redis);
    env->redis = NULL;
    clean = it_children_stop(env, true) && clean;
    if (!clean || env_flag("IT_VERBOSE")) {
        it_env_dump_logs(env);
    }
    if (env->dir != NULL) {
        if (env_flag("IT_KEEP")) {
            fprintf(stderr, "it_env: kept %s\n", env->dir);
        } else {
            remove_tree(env->dir, 4);
        }
    }
    for (size_t i = 0; i < env->n_base; i++) {
        free(env->base_env[i]);
    }
    free(env->base_env);
    proc_group_free(env->procs); /* every child is reaped by now: frees only */
    free(env->children);
    free(env->dir);
    free(env->redis_sock);
    free(env->redis_url);
    free(env->bootstrap);
    free(env->topic_prefix);
    free(env->key_prefix);
    free(env);
    return clean ? 0 : -1;
}

/* ---- start -------------------------------------------------------------------------------- */

static enum rc_rc
make_dir(struct it_env *env, struct rc_err *err)
{
    const char *tmp = getenv("TMPDIR");
    struct buf tpl = BUF_INIT;

    if (tmp == NULL || tmp[0] != '/' ||
        strlen(tmp) + sizeof "/rc-it-XXXXXX/redis.sock" > SOCK_PATH_MAX) {
        tmp = "/tmp"; /* the redis socket path must fit in sun_path */
    }
    buf_printf(&tpl, "%s/rc-it-XXXXXX", tmp);
    if (mkdtemp(tpl.data) == NULL) {
        enum rc_rc rc = rc_err_sys(err, "mkdtemp %s", tpl.data);
        buf_release(&tpl);
        return rc;
    }
    env->dir = buf_detach(&tpl);
    return RC_OK;
}

char *
it_find_program(const char *name)
{
    const char *path = getenv("PATH");
    struct buf cand = BUF_INIT;

    for (const char *p = path != NULL ? path : ""; *p != '\0';) {
        const char *colon = strchr(p, ':');
        size_t len = colon != NULL ? (size_t)(colon - p) : strlen(p);
        if (len > 0) {
            buf_reset(&cand);
            buf_append(&cand, p, len);
            buf_printf(&cand, "/%s", name);
            if (access(cand.data, X_OK) == 0) {
                return buf_detach(&cand);
            }
        }
        p += len + (colon != NULL ? 1 : 0);
    }
    static const char *const dirs[] = {"/usr/bin", "/usr/sbin"};
    for (size_t i = 0; i < 2; i++) {
        buf_reset(&cand);
        buf_printf(&cand, "%s/%s", dirs[i], name);
        if (access(cand.data, X_OK) == 0) {
            return buf_detach(&cand);
        }
    }
    buf_release(&cand);
    return NULL;
}

static enum rc_rc
start_redis(struct it_env *env, struct rc_err *err)
{
    char *server = it_find_program("redis-server");
    struct buf sock = BUF_INIT;
    struct buf log_path = BUF_INIT;
    pid_t pid = -1;

    if (server == NULL) {
        return rc_err_set(err, RC_ENOTFOUND,
                          "redis-server not found in PATH or /usr/bin (run scripts/deps.sh)");
    }
    if (env->redis_sock == NULL) {
        buf_printf(&sock, "%s/redis.sock", env->dir);
        env->redis_sock = buf_detach(&sock);
    }
    /* Also on a TCP port of 127.0.0.1 (kept across restarts), for what reaches it by address:
     * replicas, Sentinels, proxies, clients with an ACL user. */
    if (env->redis_port <= 0) {
        env->redis_port = it_free_port();
    }
    it_child_log_path(env, "redis", &log_path);
    /* AOF as in the dev stack (a restart keeps the data, contract §7). */
    const struct stack_redis redis = {.server = server,
                                      .dir = env->dir,
                                      .unix_path = env->redis_sock,
                                      .tcp_port = env->redis_port,
                                      .aof = true,
                                      .log_path = log_path.data};
    enum rc_rc rc = stack_redis_spawn(env->procs, &redis, &pid, err);
    if (rc == RC_OK) {
        it_child_add(env, "redis", pid, true);
        rc = stack_redis_wait(env->procs, pid, &redis, IT_READY_TIMEOUT_MS, err);
    }
    if (rc == RC_OK) {
        struct cfg_redis where = {.unix_path = env->redis_sock, .timeout_ms = REDIS_TIMEOUT_MS};
        env->redis = redislink_new(&where);
    }
    buf_release(&log_path);
    free(server);
    return rc;
}

void
it_env_restart_redis(struct it_env *env, int down_ms)
{
    pid_t pid = it_env_pid(env, "redis");
    if (pid <= 0 || it_env_kill(env, pid, SIGTERM) != 0) {
        it_fail(env, "no redis-server to stop");
    }
    int status = 0;
    if (it_env_wait_exit(env, pid, IT_READY_TIMEOUT_MS, &status) != 0) {
        it_fail(env, "redis-server did not stop on SIGTERM");
    }
    redislink_free(env->redis);
    env->redis = NULL;
    it_sleep_ms(down_ms); /* the outage itself */
    struct rc_err err = RC_ERR_INIT;
    if (start_redis(env, &err) != RC_OK) {
        it_fail(env, "redis-server did not start again: %s", err.msg);
    }
}

static enum rc_rc
start_broker(struct it_env *env, int partitions, struct rc_err *err)
{
    struct buf file = BUF_INIT;
    struct buf path = BUF_INIT;
    struct buf faults = BUF_INIT;
    struct buf log_path = BUF_INIT;
    pid_t pid = -1;

    buf_printf(&file, "%s/bootstrap", env->dir);
    buf_printf(&path, "%s/devbroker", RC_BIN_DIR);
    buf_printf(&faults, "%s/broker.faults", env->dir); /* it_env_broker_faults */
    it_child_log_path(env, "devbroker", &log_path);
    const struct stack_broker broker = {.devbroker = path.data,
                                        .bootstrap_file = file.data,
                                        .partitions = partitions,
                                        .topic_prefix = env->topic_prefix,
                                        .fault_file = faults.data,
                                        .log_path = log_path.data};
    enum rc_rc rc = stack_broker_spawn(env->procs, &broker, &pid, err);
    if (rc == RC_OK) {
        it_child_add(env, "devbroker", pid, true);
        rc = stack_broker_wait(env->procs, pid, &broker, IT_READY_TIMEOUT_MS, &env->bootstrap, err);
    }
    buf_release(&log_path);
    buf_release(&faults);
    buf_release(&path);
    buf_release(&file);
    return rc;
}

static void
base_env_add(struct it_env *env, const char *name, const char *value)
{
    struct buf b = BUF_INIT;

    buf_printf(&b, "%s=%s", name, value);
    env->base_env = xrealloc(env->base_env, (env->n_base + 2) * sizeof *env->base_env);
    env->base_env[env->n_base++] = buf_detach(&b);
    env->base_env[env->n_base] = NULL;
}

static int
env_start(struct it_env **out, int partitions)
{
    struct it_env *env = xcalloc(1, sizeof *env);
    struct rc_err err = RC_ERR_INIT;

    /* A server that drops a link (a Sentinel killing clients, a stopped redis) must fail a
     * write with EPIPE, not end the test process. */
    signal(SIGPIPE, SIG_IGN);
    env->procs = proc_group_new();
    env->topic_prefix = xstrdup(TOPIC_PREFIX);
    env->key_prefix = xstrdup(KEY_PREFIX);
    if (make_dir(env, &err) != RC_OK || start_redis(env, &err) != RC_OK ||
        start_broker(env, partitions, &err) != RC_OK) {
        goto fail;
    }
    struct buf url = BUF_INIT;
    buf_printf(&url, "unix://%s", env->redis_sock);
    env->redis_url = buf_detach(&url);
    base_env_add(env, "KAFKA_BROKERS", env->bootstrap);
    base_env_add(env, "KAFKA_TOPIC_PREFIX", env->topic_prefix);
    base_env_add(env, "KAFKA_PROP_FETCH_WAIT_MAX_MS", "5");
    base_env_add(env, "REDIS_URL", env->redis_url);
    base_env_add(env, "REDIS_KEY_PREFIX", env->key_prefix);
    if (it_kafka_start(env, &err) != RC_OK) {
        goto fail;
    }
    *out = env;
    return 0;
fail:
    fprintf(stderr, "it_env_start: %s\n", err.msg);
    it_env_dump_logs(env);
    it_env_stop(env);
    return -1;
}

int
it_env_start(struct it_env **out)
{
    return env_start(out, IT_PARTITIONS);
}

int
it_setup(void **state)
{
    struct it_env *env = NULL;

    if (it_env_start(&env) != 0) {
        return -1;
    }
    *state = env;
    return 0;
}

int
it_setup_wide(void **state)
{
    struct it_env *env = NULL;

    if (env_start(&env, IT_WIDE_PARTITIONS) != 0) {
        return -1;
    }
    *state = env;
    return 0;
}

int
it_teardown(void **state)
{
    int rc = it_env_stop(*state);

    *state = NULL;
    return rc;
}

const char *
it_env_dir(const struct it_env *env)
{
    return env->dir;
}

const char *
it_env_bootstrap(const struct it_env *env)
{
    return env->bootstrap;
}

const char *
it_env_redis_url(const struct it_env *env)
{
    return env->redis_url;
}

const char *
it_env_topic_prefix(const struct it_env *env)
{
    return env->topic_prefix;
}

const char *
it_env_key_prefix(const struct it_env *env)
{
    return env->key_prefix;
}

int
it_run_group(const char *name, const struct CMUnitTest *tests, size_t n)
{
    if (getenv("IT_ONLY") != NULL) {
        cmocka_set_test_filter(getenv("IT_ONLY"));
    }
    unsigned shard = 1, shards = 1;
    const char *spec = getenv("IT_SHARD");
    if (spec != NULL && (sscanf(spec, "%u/%u", &shard, &shards) != 2 || shard < 1 || shards < 1 ||
                         shard > shards)) {
        fprintf(stderr, "IT_SHARD must be i/n with 1 <= i <= n (got \"%s\")\n", spec);
        return 1;
    }
    struct CMUnitTest *picked = xcalloc(n > 0 ? n : 1, sizeof(*picked));
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        if (i % shards == shard - 1) {
            picked[k++] = tests[i];
        }
    }
    int rc = _cmocka_run_group_tests(name, picked, k, NULL, NULL);
    free(picked);
    return rc;
}
