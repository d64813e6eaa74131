/* SPDX-License-Identifier: MIT
 * it_metrics: the operator's HTTP endpoint (METRICS_ADDR) during a real run: /metrics agrees
 * with what happened (researches completed, triggers by outcome, gates, dispatches, invalid
 * inputs, workers, leadership) and passes `promtool check metrics`; /healthz and /readyz
 * answer; an address that cannot be served is a configuration error. */
#include "tests/support/test.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "proto/msg.h"
#include "tests/support/it_env.h"

#define WAIT_MS 20000

static const char *const fast[] = {"--duration-ms", "30", NULL};

/* `method` `path` on 127.0.0.1:port (HTTP/1.0, so the server closes). Returns the status code
 * (0 when nothing answered) and the body in *body (caller frees). */
static int
http_request(int port, const char *method, const char *path, char **body)
{
    *body = NULL;
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
        close(fd);
        return 0;
    }
    char req[256];
    int n = snprintf(req, sizeof(req), "%s %s HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n", method,
                     path);
    assert_int_equal(write(fd, req, (size_t)n), n);
    size_t cap = 1 << 20, len = 0;
    char *resp = calloc(1, cap);
    assert_non_null(resp);
    ssize_t got;
    while ((got = read(fd, resp + len, cap - 1 - len)) > 0) {
        len += (size_t)got;
    }
    close(fd);
    int status = 0;
    if (sscanf(resp, "HTTP/1.%*d %d", &status) != 1) {
        free(resp);
        return 0;
    }
    const char *start = strstr(resp, "\r\n\r\n");
    *body = strdup(start != NULL ? start + 4 : "");
    free(resp);
    return status;
}

static int
http_get(int port, const char *path, char **body)
{
    return http_request(port, "GET", path, body);
}

/* The value of the sample line "<series> <value>" in a scrape, or -1 when absent. */
static double
sample(const char *scrape, const char *series)
{
    size_t n = strlen(series);
    for (const char *p = scrape; p != NULL && *p != '\0'; p = strchr(p, '\n'), p = p ? p + 1 : p) {
        if (strncmp(p, series, n) == 0 && p[n] == ' ') {
            return strtod(p + n + 1, NULL);
        }
    }
    return -1;
}

static void
expect(struct it_env *env, const char *scrape, const char *series, double want)
{
    double got = sample(scrape, series);
    if (got != want) {
        it_fail(env, "%s is %g, want %g; scrape:\n%s", series, got, want, scrape);
    }
}

struct scrape_probe {
    int port;
    const char *series;
    double want;
};

static bool
scrape_has(void *arg)
{
    const struct scrape_probe *p = arg;
    char *body = NULL;
    bool ok = http_get(p->port, "/metrics", &body) == 200 && sample(body, p->series) == p->want;
    free(body);
    return ok;
}

static void
test_metrics_scrape_agrees_with_the_run(void **state)
{
    struct it_env *env = *state;
    int port = it_free_port();
    assert_true(port > 0);
    char addr[64];
    snprintf(addr, sizeof(addr), "METRICS_ADDR=127.0.0.1:%d", port);
    const char *const extra[] = {addr, NULL};
    it_env_start_workers(env, "design", 1, NULL, fast);
    it_env_start_workers(env, "training", 1, NULL, fast);
    it_env_start_workers(env, "backtest", 1, NULL, fast);
    it_env_start_workers(env, "assessment", 1, NULL, fast);
    it_env_start_coordinator(env, extra);

    char *body = NULL;
    assert_int_equal(http_get(port, "/healthz", &body), 200);
    assert_string_equal(body, "ok\n");
    free(body);
    assert_int_equal(http_get(port, "/readyz", &body), 200);
    assert_string_equal(body, "ready: leading\n");
    free(body);
    assert_int_equal(http_get(port, "/nope", &body), 404);
    free(body);
    assert_int_equal(http_request(port, "POST", "/metrics", &body), 405);
    free(body);

    /* Two researches to completion (one bypassing the gates), a trigger repeated, one invalid
     * trigger. */
    struct trigger a = {.request_id = "req-m1", .brief = "one"};
    struct trigger b = {.request_id = "req-m2", .brief = "two", .bypass_gates = true};
    it_send_trigger(env, &a);
    it_send_trigger(env, &b);
    it_send_trigger(env, &a);
    static const char not_a_map[] = "\x92\x01\x02"; /* a msgpack array */
    it_env_produce(env, "triggers", "k", not_a_map, sizeof(not_a_map) - 1);
    const struct event *ea = it_event_wait_request(env, EVENT_ACCEPTED, "req-m1", WAIT_MS);
    char *ida = strdup(ea->research_id);
    const struct event *eb = it_event_wait_request(env, EVENT_ACCEPTED, "req-m2", WAIT_MS);
    char *idb = strdup(eb->research_id);
    it_event_wait(env, EVENT_COMPLETED, ida, WAIT_MS);
    it_event_wait(env, EVENT_COMPLETED, idb, WAIT_MS);
    it_deadletter_wait(env, 1, WAIT_MS);

    struct scrape_probe p = {port, "rc_research_outcomes_total{outcome=\"completed\"}", 2};
    if (!it_wait_until(scrape_has, &p, WAIT_MS)) {
        it_fail(env, "no scrape with 2 completed researches");
    }
    assert_int_equal(http_get(port, "/metrics", &body), 200);
    expect(env, body, "rc_triggers_total{outcome=\"accepted\"}", 2);
    expect(env, body, "rc_triggers_total{outcome=\"repeated\"}", 1);
    expect(env, body, "rc_triggers_total{outcome=\"invalid\"}", 1);
    expect(env, body, "rc_invalid_inputs_total{reason=\"malformed\"}", 1);
    expect(env, body, "rc_phase_transitions_total{phase=\"pending\"}", 2);
    expect(env, body, "rc_phase_transitions_total{phase=\"designing\"}", 2);
    expect(env, body, "rc_phase_transitions_total{phase=\"assessing\"}", 2);
    expect(env, body, "rc_phase_transitions_total{phase=\"completed\"}", 2);
    expect(env, body, "rc_dispatches_total{worker_type=\"training\"}", 2);
    expect(env, body, "rc_redispatches_total{worker_type=\"training\"}", 0);
    expect(env, body, "rc_gate_results_total{gate=\"training\",result=\"passed\"}", 1);
    expect(env, body, "rc_gate_results_total{gate=\"training\",result=\"bypassed\"}", 1);
    expect(env, body, "rc_gate_results_total{gate=\"backtest\",result=\"bypassed\"}", 1);
    expect(env, body, "rc_completions_total", 8);
    expect(env, body, "rc_stale_completions_total", 0);
    expect(env, body, "rc_phase_duration_seconds_count{phase=\"training\"}", 2);
    expect(env, body, "rc_researches{phase=\"training\"}", 0);
    expect(env, body, "rc_workers_live{worker_type=\"design\"}", 1);
    expect(env, body, "rc_capacity_limit", 3); /* 1 training + 1 backtest + buffer 1 */
    expect(env, body, "rc_budget_daily_limit_usd", 20);
    expect(env, body, "rc_redis_up", 1);
    expect(env, body, "rc_kafka_up", 1);
    expect(env, body, "rc_leader", 1);
    assert_true(sample(body, "rc_budget_spent_usd") > 0); /* the stubs' tokens, priced */
    assert_true(sample(body, "rc_cycle_duration_seconds_count") > 0);

    /* The exposition format, as Prometheus's own checker reads it. */
    char path[512];
    snprintf(path, sizeof(path), "%s/scrape.txt", it_env_dir(env));
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(body, f);
    fclose(f);
    char cmd[2048];
    snprintf(cmd, sizeof(cmd), "promtool check metrics < '%s' > '%s.out' 2>&1", path, path);
    int rc = system(cmd);
    if (rc != 0) {
        it_fail(env, "promtool check metrics failed (%d); see %s.out", rc, path);
    }
    free(body);
    free(ida);
    free(idb);
}

static void
test_metrics_unservable_address_is_a_config_error(void **state)
{
    struct it_env *env = *state;
    /* A port that is taken. */
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    assert_int_equal(listen(fd, 1), 0);
    socklen_t len = sizeof(sa);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&sa, &len), 0);
    char addr[64];
    snprintf(addr, sizeof(addr), "METRICS_ADDR=127.0.0.1:%d", ntohs(sa.sin_port));
    const char *const taken[] = {addr, NULL};
    const char *const argv[] = {"coordinator", NULL};
    pid_t pid = it_env_spawn(env, "coordinator-taken", argv, taken);
    int status = 0;
    assert_int_equal(it_env_wait_exit(env, pid, WAIT_MS, &status), 0);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 78);
    close(fd);
    const char *const bad[] = {"METRICS_ADDR=localhost", NULL};
    pid = it_env_spawn(env, "coordinator-bad", argv, bad);
    assert_int_equal(it_env_wait_exit(env, pid, WAIT_MS, &status), 0);
    assert_int_equal(WEXITSTATUS(status), 78);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_metrics_scrape_agrees_with_the_run, it_setup,
                                        it_teardown),
        cmocka_unit_test_setup_teardown(test_metrics_unservable_address_is_a_config_error,
                                        it_setup, it_teardown),
    };
    return cmocka_run_group_tests_name("it_metrics", tests, NULL, NULL);
}
