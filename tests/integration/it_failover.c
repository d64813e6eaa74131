/* SPDX-License-Identifier: MIT
 * it_failover: Redis failover (contract §7 "Redis failover", §8 REDIS_URL): the env's
 * redis-server is the primary, a second one its replica. Through a TCP proxy standing for a
 * virtual address: a graceful FAILOVER demotes the primary (READONLY on the old connections,
 * which the proxy keeps) and the proxy is moved to the new primary. Through Redis Sentinel
 * (redis+sentinel://): the primary stops answering, the Sentinel promotes the replica. Each
 * time the coordinator and the stub workers reconnect and resume within seconds, and every
 * research completes once. */
#include "tests/support/test.h"

#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/clock.h"
#include "proto/msg.h"
#include "tests/support/it_env.h"
#include "tests/support/it_runs.h"

#define N 40
#define WAIT_MS 20000
#define RUN_MS 90000

struct sync_probe {
    struct it_env *env;
    redisContext *replica;
};

/* The replica is connected and has the primary's data (master_link_status:up). */
static bool
replica_in_sync(void *arg)
{
    struct sync_probe *p = arg;
    const char *const argv[] = {"INFO", "replication"};
    redisReply *r = it_redis_cmd_on(p->env, p->replica, 2, argv);
    bool up = r->type == REDIS_REPLY_STRING && strstr(r->str, "master_link_status:up") != NULL;
    freeReplyObject(r);
    return up;
}

/* Three stub workers of each type, with `url` as their REDIS_URL (not the env's). */
static void
start_workers(struct it_env *env, const char *prefix, const char *url)
{
    static const char *const types[] = {"design", "training", "backtest", "assessment"};
    for (size_t t = 0; t < 4; t++) {
        const char *const argv[] = {"stub-worker", "--type", types[t], "--count", "3",
                                    "--id-prefix", prefix, "--duration-ms", "40-200",
                                    "--heartbeat-ms", "300", NULL};
        char name[64];
        snprintf(name, sizeof(name), "workers-%s", types[t]);
        const char *const wenv[] = {url, NULL};
        it_env_spawn(env, name, argv, wenv);
    }
}

/* ZCARD rc:finished on the server at `port`, on a link of its own (a Sentinel promoting a
 * replica kills its clients' connections). */
static long long
finished_on(struct it_env *env, int port)
{
    redisContext *c = it_redis_connect_port(env, port);
    const char *const zcard[] = {"ZCARD", "rc:finished"};
    redisReply *r = it_redis_cmd_on(env, c, 2, zcard);
    long long n = r->type == REDIS_REPLY_INTEGER ? r->integer : -1;
    freeReplyObject(r);
    redisFree(c);
    return n;
}

/* The env's own redis-server is a replica in sync (its link reconnects as needed). */
static bool
main_is_replica_in_sync(void *arg)
{
    struct it_env *env = arg;
    const char *const argv[] = {"INFO", "replication"};
    redisReply *r = it_redis_cmd(env, 2, argv);
    bool up = r->type == REDIS_REPLY_STRING && strstr(r->str, "master_link_status:up") != NULL;
    freeReplyObject(r);
    return up;
}

static void
expect_clean(struct it_env *env, const char *fault, char **ids, size_t n, int64_t recover_ms)
{
    struct it_figures f = it_judge(env, ids, n);
    it_print_figures(fault, &f, "failover to next finished research", recover_ms);
    if (f.completed != n || f.lost != 0 || f.double_phases != 0) {
        it_fail(env, "%s: completed %zu of %zu, lost %zu, double phases %zu", fault, f.completed,
                n, f.lost, f.double_phases);
    }
}

static void
test_failover_through_a_moved_address(void **state)
{
    struct it_env *env = *state;
    int replica_port = 0, proxy_port = 0;
    it_env_start_redis_server(env, "redis-b", true, &replica_port);
    redisContext *b = it_redis_connect_port(env, replica_port);
    struct sync_probe sp = {env, b};
    if (!it_wait_until(replica_in_sync, &sp, WAIT_MS)) {
        it_fail(env, "the replica did not sync");
    }
    pid_t proxy = it_env_start_proxy(env, "proxy", it_env_redis_port(env), &proxy_port);
    char url[96];
    snprintf(url, sizeof(url), "REDIS_URL=redis://127.0.0.1:%d/0", proxy_port);
    /* Everyone reaches Redis through the address that moves: coordinator and workers. */
    const char *const coord_env[] = {"AGENT_MAX_CONCURRENT_RESEARCHES=1000", "REDIS_TIMEOUT_MS=1000",
                                     url, NULL};
    start_workers(env, "p-", url);
    it_env_start_coordinator(env, coord_env);
    char *ids[N];
    it_trigger_all(env, "moved", N, NULL, ids, WAIT_MS);
    it_wait_some_finished(env, ids, N, 5, RUN_MS);
    /* A graceful failover: the primary pauses writes, the replica catches up and takes over,
     * the old primary becomes its replica (and answers READONLY). Then the address moves, the
     * old connections staying with the old server. */
    char port[16];
    snprintf(port, sizeof(port), "%d", replica_port);
    const char *const failover[] = {"FAILOVER", "TO", "127.0.0.1", port};
    it_redis_ok(env, 4, failover);
    const int64_t t0 = clock_mono_ms();
    it_log_wait(env, "coordinator", "READONLY", WAIT_MS);
    it_env_proxy_retarget(env, proxy, "proxy", replica_port, false);
    const size_t before = it_count_finished(env, ids, N);
    if (before < N) {
        it_wait_some_finished(env, ids, N, before + 1, RUN_MS);
    }
    const int64_t recover = clock_mono_ms() - t0;
    it_wait_all_finished(env, ids, N, RUN_MS);
    expect_clean(env, "FAILOVER, then the address moved", ids, N, recover);
    redisFree(b);
    assert_int_equal(finished_on(env, replica_port), N); /* the new primary holds it all */
    it_free_ids(ids, N);
}

struct primary_probe {
    struct it_env *env;
    int sentinel_port;
    int want;
};

static bool
primary_is(void *arg)
{
    struct primary_probe *p = arg;
    return it_sentinel_primary_port(p->env, p->sentinel_port, "rc-primary") == p->want;
}

static void
test_failover_through_sentinel(void **state)
{
    struct it_env *env = *state;
    int replica_port = 0, s1 = 0, s2 = 0;
    it_env_start_redis_server(env, "redis-b", true, &replica_port);
    redisContext *b = it_redis_connect_port(env, replica_port);
    struct sync_probe sp = {env, b};
    if (!it_wait_until(replica_in_sync, &sp, WAIT_MS)) {
        it_fail(env, "the replica did not sync");
    }
    redisFree(b);
    it_env_start_sentinel(env, "sentinel-1", "rc-primary", it_env_redis_port(env), &s1);
    it_env_start_sentinel(env, "sentinel-2", "rc-primary", it_env_redis_port(env), &s2);
    /* Two Sentinels in the URL, the first of which will not answer: the second is asked. */
    int dead = it_free_port();
    char url[160];
    snprintf(url, sizeof(url), "REDIS_URL=redis+sentinel://127.0.0.1:%d,127.0.0.1:%d/rc-primary",
             dead, s1);
    /* Each pass waits for the replica: what the paused primary takes when it is back, and
     * loses once the Sentinels demote it, is never committed. */
    const char *const coord_env[] = {"AGENT_MAX_CONCURRENT_RESEARCHES=1000", "REDIS_TIMEOUT_MS=1000",
                                     "REDIS_WAIT_REPLICAS=1", url, NULL};
    start_workers(env, "s-", url);
    it_env_start_coordinator(env, coord_env);
    char *ids[N];
    it_trigger_all(env, "sentinel", N, NULL, ids, WAIT_MS);
    it_wait_some_finished(env, ids, N, 5, RUN_MS);
    /* The primary stops answering (a hung host): the Sentinels fail over to the replica. */
    pid_t primary = it_env_pid(env, "redis");
    assert_int_equal(kill(primary, SIGSTOP), 0);
    const int64_t t0 = clock_mono_ms();
    struct primary_probe pp = {env, s1, replica_port};
    if (!it_wait_until(primary_is, &pp, WAIT_MS)) {
        kill(primary, SIGCONT);
        it_fail(env, "the Sentinels did not promote the replica");
    }
    /* Back, it is made the new primary's replica, so the env's link reads the data again. */
    assert_int_equal(kill(primary, SIGCONT), 0);
    /* Recovered: one more research finished on the new primary. */
    const long long before = finished_on(env, replica_port);
    while (finished_on(env, replica_port) == before && before < N &&
           clock_mono_ms() - t0 < RUN_MS) {
        it_sleep_ms(20);
    }
    const int64_t recover = clock_mono_ms() - t0;
    if (!it_wait_until(main_is_replica_in_sync, env, WAIT_MS)) {
        it_fail(env, "the old primary did not come back as a replica");
    }
    it_wait_all_finished(env, ids, N, RUN_MS);
    expect_clean(env, "primary hung, Sentinel failover", ids, N, recover);
    it_free_ids(ids, N);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_failover_through_a_moved_address, it_setup,
                                        it_teardown),
        cmocka_unit_test_setup_teardown(test_failover_through_sentinel, it_setup, it_teardown),
    };
    return IT_RUN_GROUP("it_failover", tests);
}
