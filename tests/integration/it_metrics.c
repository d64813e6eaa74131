/* SPDX-License-Identifier: MIT
 * it_metrics: the operator's HTTP endpoint (METRICS_ADDR) during a real run: /metrics agrees
 * with what happened (researches completed, triggers by outcome, gates, dispatches, invalid
 * inputs, workers, leadership; durations by outcome, tokens, money, who waits for which
 * worker type) and passes `promtool check metrics`; /healthz and /readyz
 * answer, also while one client holds many idle connections; an address that cannot be served
 * is a configuration error. The scrape also has every metric that deploy/monitoring's
 * dashboard and alert rules name. */
#include "tests/support/test.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/clock.h"
#include "common/num.h"
#include "proto/msg.h"
#include "tests/support/it_env.h"

#define WAIT_MS 20000

static const char *const fast[] = {"--duration-ms", "30", NULL};

/* A TCP socket bound to the IPv4 address `from` (Linux routes all of 127/8 to loopback, so
 * 127.0.0.2 is a second client as the server sees it) and connected to 127.0.0.1:port, with
 * reads and writes that give up after timeout_ms. -1 when the connection is refused. */
static int
connect_from(const char *from, int port, int timeout_ms)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    struct timeval tv = {.tv_sec = timeout_ms / 1000, .tv_usec = timeout_ms % 1000 * 1000};
    assert_int_equal(setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)), 0);
    assert_int_equal(setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)), 0);
    struct sockaddr_in src = {.sin_family = AF_INET};
    assert_int_equal(inet_pton(AF_INET, from, &src.sin_addr), 1);
    assert_int_equal(bind(fd, (struct sockaddr *)&src, sizeof(src)), 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

/* `method` `path` on 127.0.0.1:port from the address `from` (HTTP/1.0, so the server closes),
 * giving up on a read or write that waits longer than timeout_ms. Returns the status code (0
 * when nothing answered in time) and the body in *body (caller frees). */
static int
http_request_from(const char *from, int port, const char *method, const char *path, int timeout_ms,
                  char **body)
{
    *body = NULL;
    int fd = connect_from(from, port, timeout_ms);
    if (fd < 0) {
        return 0;
    }
    char req[256];
    int n = snprintf(req, sizeof(req), "%s %s HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n", method,
                     path);
    /* A server that closed on us is "nothing answered", not a SIGPIPE. */
    if (send(fd, req, (size_t)n, MSG_NOSIGNAL) != n) {
        close(fd);
        return 0;
    }
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
http_request(int port, const char *method, const char *path, char **body)
{
    return http_request_from("127.0.0.1", port, method, path, WAIT_MS, body);
}

static int
http_get(int port, const char *path, char **body)
{
    return http_request(port, "GET", path, body);
}

/* The value of the sample line "<series> <value>" in a scrape, or -1 when absent (or no
 * number). */
static double
sample(const char *scrape, const char *series)
{
    size_t n = strlen(series);
    for (const char *p = scrape; p != NULL && *p != '\0'; p = strchr(p, '\n'), p = p ? p + 1 : p) {
        if (strncmp(p, series, n) == 0 && p[n] == ' ') {
            const char *v = p + n + 1;
            double d = -1;
            (void)num_parse_f64(v, strcspn(v, " \n"), &d);
            return d;
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

/* The exposition format, as Prometheus's own checker reads it, and the names deploy/monitoring
 * uses. */
static void
promtool_check(struct it_env *env, const char *body)
{
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
    /* Every metric the shipped dashboard and alert rules name is one this scrape has. */
    snprintf(cmd, sizeof(cmd),
             "/usr/bin/python3 '%s/tests/deploy/metric_names.py' '%s' "
             "'%s/deploy/monitoring/grafana-dashboard.json' "
             "'%s/deploy/monitoring/prometheus-rules.yml' > '%s.names' 2>&1",
             RC_SOURCE_DIR, path, RC_SOURCE_DIR, RC_SOURCE_DIR, path);
    if ((rc = system(cmd)) != 0) {
        it_fail(env, "the dashboard or the rules name metrics the scrape lacks (%d); see %s.names",
                rc, path);
    }
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

    promtool_check(env, body);
    free(body);
    free(ida);
    free(idb);
}

/* A scrape where `series` is above `floor`. */
static bool
scrape_above(void *arg)
{
    const struct scrape_probe *p = arg;
    char *body = NULL;
    bool ok = http_get(p->port, "/metrics", &body) == 200 && sample(body, p->series) > p->want;
    free(body);
    return ok;
}

static void
wait_scrape(struct it_env *env, int port, const char *series, double want, bool above)
{
    struct scrape_probe p = {port, series, want};
    if (!it_wait_until(above ? scrape_above : scrape_has, &p, WAIT_MS)) {
        char *body = NULL;
        (void)http_get(port, "/metrics", &body);
        it_fail(env, "no scrape with %s %s %g; the last:\n%s", series, above ? ">" : "==", want,
                body != NULL ? body : "(none)");
    }
}

/* The sum of cost_usd over the research hashes `ids`. */
static double
hash_costs(struct it_env *env, char *const *ids, size_t n)
{
    double total = 0;
    for (size_t i = 0; i < n; i++) {
        char *v = it_research_hget(env, ids[i], "cost_usd");
        double d = 0;
        if (v == NULL || !num_parse_f64(v, strlen(v), &d)) {
            it_fail(env, "%s: cost_usd \"%s\"", ids[i], v ? v : "(absent)");
        }
        total += d;
        free(v);
    }
    return total;
}

/* Four researches: one cancelled and one failed (AGENT_WAIT_TIMEOUT) while they wait for a
 * backtest worker, none being live, then two completed once one is. The durations by
 * outcome, the tokens of every design and assessment result (the stubs report 1000 in and
 * 500 out each), the money (the research hashes' cost_usd summed), and the waits while they
 * last. */
static void
test_metrics_costs_durations_and_waits(void **state)
{
    struct it_env *env = *state;
    int port = it_free_port();
    assert_true(port > 0);
    char addr[64];
    snprintf(addr, sizeof(addr), "METRICS_ADDR=127.0.0.1:%d", port);
    const char *const extra[] = {addr, "AGENT_WAIT_TIMEOUT=3", NULL};
    it_env_start_workers(env, "design", 1, NULL, fast);
    it_env_start_workers(env, "training", 1, NULL, fast);
    it_env_start_workers(env, "assessment", 1, NULL, fast);
    it_env_start_coordinator(env, extra);

    char *ids[4] = {NULL};
    static const char *const requests[] = {"req-cancel", "req-fail", "req-c1", "req-c2"};
    for (size_t i = 0; i < 2; i++) {
        struct trigger t = {.request_id = requests[i], .brief = "waits"};
        it_send_trigger(env, &t);
        ids[i] =
            strdup(it_event_wait_request(env, EVENT_ACCEPTED, requests[i], WAIT_MS)->research_id);
        it_research_wait(env, ids[i], "waiting_since", NULL, WAIT_MS);
        wait_scrape(env, port, "rc_waiting_researches{worker_type=\"backtest\"}", 1, false);
        wait_scrape(env, port, "rc_oldest_wait_seconds{worker_type=\"backtest\"}", 0, true);
        if (i == 0) {
            struct cancel k = {.research_id = ids[0], .request_id = "cx-m"};
            it_send_cancel(env, &k);
            it_research_wait(env, ids[0], "status", "cancelled", WAIT_MS);
        } else {
            it_research_wait(env, ids[1], "status", "failed", WAIT_MS);
        }
    }
    wait_scrape(env, port, "rc_waiting_researches{worker_type=\"backtest\"}", 0, false);
    it_env_start_workers(env, "backtest", 1, NULL, fast);
    for (size_t i = 2; i < 4; i++) {
        struct trigger t = {.request_id = requests[i], .brief = "completes"};
        it_send_trigger(env, &t);
        ids[i] =
            strdup(it_event_wait_request(env, EVENT_ACCEPTED, requests[i], WAIT_MS)->research_id);
    }
    it_research_wait(env, ids[2], "status", "completed", WAIT_MS);
    it_research_wait(env, ids[3], "status", "completed", WAIT_MS);
    wait_scrape(env, port, "rc_research_duration_seconds_count{outcome=\"completed\"}", 2, false);

    char *body = NULL;
    assert_int_equal(http_get(port, "/metrics", &body), 200);
    expect(env, body, "rc_research_duration_seconds_count{outcome=\"cancelled\"}", 1);
    expect(env, body, "rc_research_duration_seconds_count{outcome=\"failed\"}", 1);
    expect(env, body, "rc_research_duration_seconds_bucket{outcome=\"failed\",le=\"1\"}", 0);
    expect(env, body, "rc_research_duration_seconds_bucket{outcome=\"failed\",le=\"+Inf\"}", 1);
    assert_true(sample(body, "rc_research_duration_seconds_sum{outcome=\"failed\"}") >= 3);
    expect(env, body, "rc_research_outcomes_total{outcome=\"completed\"}", 2);
    /* Every research was designed; the two completed ones were assessed. */
    expect(env, body, "rc_tokens_total{worker_type=\"design\",direction=\"input\"}", 4000);
    expect(env, body, "rc_tokens_total{worker_type=\"design\",direction=\"output\"}", 2000);
    expect(env, body, "rc_tokens_total{worker_type=\"assessment\",direction=\"input\"}", 2000);
    expect(env, body, "rc_tokens_total{worker_type=\"assessment\",direction=\"output\"}", 1000);
    const double spent = hash_costs(env, ids, 4);
    const double scraped = sample(body, "rc_spend_usd_total");
    if (!(spent > 0) || scraped < spent - 1e-6 || scraped > spent + 1e-6) {
        it_fail(env, "rc_spend_usd_total %g, the researches' cost_usd sum to %g", scraped, spent);
    }
    expect(env, body, "rc_waiting_researches{worker_type=\"backtest\"}", 0);
    expect(env, body, "rc_oldest_wait_seconds{worker_type=\"backtest\"}", 0);
    expect(env, body, "rc_phase_timeouts_total{worker_type=\"training\"}", 0);
    promtool_check(env, body);
    free(body);
    for (size_t i = 0; i < 4; i++) {
        free(ids[i]);
    }
}

#define IDLE_CLIENTS 100
#define IDLE_PER_IP_MAX 16 /* the server's per-IP connection limit */
#define PROMPT_MS 2000     /* "promptly": far below the idle timeout of the old settings, 10 s */
#define IDLE_DROP_MS 8000  /* the server's idle timeout (3 s) and a margin, below the old 10 s */

/* Every fd of fds[n] (-1: already seen closed) that the server has closed is closed here and
 * set to -1. Returns how many are still open. */
static size_t
reap_closed(int *fds, size_t n)
{
    struct pollfd p[IDLE_CLIENTS];
    size_t open_n = 0;
    for (size_t i = 0; i < n; i++) {
        p[i] = (struct pollfd){.fd = fds[i], .events = POLLIN};
    }
    if (poll(p, n, 0) < 0) {
        return n;
    }
    for (size_t i = 0; i < n; i++) {
        if (fds[i] < 0) {
            continue;
        }
        char c;
        /* Readable with nothing sent by us: the server's FIN (0) or reset (-1). */
        if ((p[i].revents & (POLLIN | POLLHUP | POLLERR)) != 0 && read(fds[i], &c, 1) <= 0) {
            close(fds[i]);
            fds[i] = -1;
        } else {
            open_n++;
        }
    }
    return open_n;
}

static void
close_all(int *fds, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (fds[i] >= 0) {
            close(fds[i]);
            fds[i] = -1;
        }
    }
}

struct idle_probe {
    int *fds;
    size_t n;
    size_t max_open; /* the condition: at most this many still open */
    size_t open_n;   /* how many were, last time */
};

static bool
at_most_open(void *arg)
{
    struct idle_probe *p = arg;
    p->open_n = reap_closed(p->fds, p->n);
    return p->open_n <= p->max_open;
}

static void
test_metrics_idle_connections_do_not_starve_healthz(void **state)
{
    struct it_env *env = *state;
    int port = it_free_port();
    assert_true(port > 0);
    char addr[64];
    snprintf(addr, sizeof(addr), "METRICS_ADDR=127.0.0.1:%d", port);
    const char *const extra[] = {addr, NULL};
    it_env_start_coordinator(env, extra);

    /* One client (127.0.0.2) opens many connections and sends nothing. */
    int fds[IDLE_CLIENTS];
    for (size_t i = 0; i < IDLE_CLIENTS; i++) {
        fds[i] = connect_from("127.0.0.2", port, WAIT_MS);
        if (fds[i] < 0) {
            close_all(fds, i);
            it_fail(env, "idle connection %zu from 127.0.0.2 refused: %s", i, strerror(errno));
        }
    }

    /* Another client is served at once, while the idle ones are still held. */
    char *body = NULL;
    int64_t t0 = clock_mono_ms();
    int status = http_request_from("127.0.0.1", port, "GET", "/healthz", PROMPT_MS, &body);
    int64_t took_ms = clock_mono_ms() - t0;
    if (status != 200 || took_ms > PROMPT_MS) {
        close_all(fds, IDLE_CLIENTS);
        it_fail(env, "GET /healthz beside %d idle connections: status %d after %lld ms",
                IDLE_CLIENTS, status, (long long)took_ms);
    }
    bool ok = strcmp(body, "ok\n") == 0;
    free(body);
    if (!ok) {
        close_all(fds, IDLE_CLIENTS);
        it_fail(env, "GET /healthz beside idle connections did not say ok");
    }

    /* The server keeps no more than its per-IP limit of them, and closed the others at once;
     * those it keeps were held all through the probe (only the idle timeout drops them). */
    struct idle_probe p = {fds, IDLE_CLIENTS, IDLE_PER_IP_MAX, IDLE_CLIENTS};
    if (!it_wait_until(at_most_open, &p, PROMPT_MS) || p.open_n == 0) {
        close_all(fds, IDLE_CLIENTS);
        it_fail(env, "%zu idle connections from one address open, want 1..%d", p.open_n,
                IDLE_PER_IP_MAX);
    }

    /* The server's idle timeout drops them; then the idle client is served again too. */
    p.max_open = 0;
    if (!it_wait_until(at_most_open, &p, IDLE_DROP_MS)) {
        close_all(fds, IDLE_CLIENTS);
        it_fail(env, "%zu idle connections still open after %d ms", p.open_n, IDLE_DROP_MS);
    }
    status = http_request_from("127.0.0.2", port, "GET", "/healthz", PROMPT_MS, &body);
    if (status != 200) {
        it_fail(env, "GET /healthz from 127.0.0.2, its idle connections dropped: status %d",
                status);
    }
    free(body);
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
        cmocka_unit_test_setup_teardown(test_metrics_costs_durations_and_waits, it_setup,
                                        it_teardown),
        cmocka_unit_test_setup_teardown(test_metrics_idle_connections_do_not_starve_healthz,
                                        it_setup, it_teardown),
        cmocka_unit_test_setup_teardown(test_metrics_unservable_address_is_a_config_error,
                                        it_setup, it_teardown),
    };
    return IT_RUN_GROUP("it_metrics", tests);
}
