/* SPDX-License-Identifier: MIT
 * it_ctl: researchctl against the real coordinator, redis-server, the dev broker and stub
 * workers: status with active researches (text and JSON parsed by jq), idle status with the
 * last finished research, show, workers with a dead one, events (to the end, filtered, the
 * last N, followed until SIGTERM), cancel, every --help, and the exit statuses of a usage
 * error, an unknown research, unreachable Redis and a bad configuration; text that workers or
 * upstream wrote is printed with its control characters escaped; a password in --redis-url
 * is refused. */
#include "tests/support/test.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/buf.h"
#include "common/clock.h"
#include "proto/msg.h"
#include "tests/support/it_ctl_run.h"
#include "tests/support/it_env.h"
#include "tests/support/it_runs.h"

#define WAIT_MS 20000
#define RUN_MS 30000

static const char *const fast[] = {"--duration-ms", "30", NULL};
static const char *const slow[] = {"--duration-ms", "60000", NULL};

static size_t
count_lines(const char *text)
{
    size_t n = 0;
    for (const char *p = text; *p != '\0'; p++) {
        n += *p == '\n';
    }
    return n;
}

static char *
trigger_ok(struct it_env *env, const struct trigger *t)
{
    it_send_trigger(env, t);
    const struct event *ev = it_event_wait_request(env, EVENT_ACCEPTED, t->request_id, WAIT_MS);
    return strdup(ev->research_id);
}

static void
test_ctl_status_lists_active_researches(void **state)
{
    struct it_env *env = *state;
    it_env_start_workers(env, "design", 1, NULL, slow);
    it_env_start_workers(env, "training", 1, NULL, slow);
    it_env_start_workers(env, "backtest", 1, NULL, fast);
    it_env_start_workers(env, "assessment", 1, NULL, fast);
    it_env_start_coordinator(env, NULL);
    struct trigger ta = {.request_id = "req-a", .brief = "momentum"};
    struct trigger tb = {.request_id = "req-b", .brief = "rsi", .strategy = "rsi_variant_7"};
    char *a = trigger_ok(env, &ta);
    char *b = trigger_ok(env, &tb);
    it_research_wait(env, a, "child_status", "dispatched", WAIT_MS);
    it_research_wait(env, b, "child_status", "dispatched", WAIT_MS);

    char *out = NULL;
    const char *const status[] = {"status", NULL};
    assert_int_equal(it_ctl(env, "ctl-status", &out, status), 0);
    it_ctl_has(env, out, "Active researches: 2\n\n");
    /* Oldest first, each with its phase, strategy and time in phase. */
    char line[256];
    snprintf(line, sizeof line, "\n  %s  %-11s  strategy: %-17s  (0m ", a, "designing", "-");
    it_ctl_has(env, out, line);
    snprintf(line, sizeof line, "\n  %s  %-11s  strategy: %-17s  (0m ", b, "training",
             "rsi_variant_7");
    it_ctl_has(env, out, line);
    assert_true(strstr(out, a) < strstr(out, b));
    it_ctl_has(env, out, "\nWorkers: design 1/1, training 1/1, backtest 0/1, assessment 0/1\n");
    it_ctl_has(env, out, "\nBudget: $20.00 remaining today (limit $20.00)\n");
    /* live training + backtest workers + AGENT_CONCURRENCY_BUFFER 1 */
    it_ctl_has(env, out, "\nCapacity: 2/3 researches\n");
    it_ctl_has(env, out, "\nCoordinator: up 0m ");
    it_ctl_has(env, out, " s ago (");
    free(out);

    char filter[1024];
    snprintf(filter, sizeof filter,
             ".active | length == 2 and .[0].research_id == \"%s\" and .[0].phase == "
             "\"designing\" and .[0].strategy_name == null and .[1].phase == \"training\" and "
             ".[1].strategy_name == \"rsi_variant_7\" and .[1].in_phase_ms >= 0",
             a);
    assert_true(it_ctl_jq(env, "jq-active", "status --json", filter));
    assert_true(it_ctl_jq(env, "jq-figures", "status --json",
                         ".workers.design == {\"busy\": 1, \"total\": 1} and "
                         ".workers.backtest == {\"busy\": 0, \"total\": 1} and "
                         ".capacity == {\"active\": 2, \"limit\": 3, \"limit_source\": "
                         "\"coordinator\"} and .budget.daily_limit_usd == 20 and "
                         ".budget.remaining_usd == 20 and .coordinator.alive == true and "
                         ".last_finished == null"));
    free(a);
    free(b);
}


static void
check_events(struct it_env *env, const char *id)
{
    char *out = NULL;
    const char *const events[] = {"events", NULL};
    assert_int_equal(it_ctl(env, "ctl-events", &out, events), 0);
    char want[256];
    /* Each event's type (padded to "cancel_rejected") and the start of its keys, in order. */
    const char *const kinds[][2] = {
        {"accepted", "request_id=req-done"},    {"phase_started", "phase=designing dispatch_id="},
        {"phase_started", "phase=training"},    {"gate", "gate=training passed=true"},
        {"phase_started", "phase=backtesting"}, {"gate", "gate=backtest passed=true"},
        {"phase_started", "phase=assessing"},   {"completed", "strategy_name="}};
    const char *prev = out;
    for (size_t i = 0; i < N_OF(kinds); i++) {
        snprintf(want, sizeof want, "Z  %s  %-15s  %s", id, kinds[i][0], kinds[i][1]);
        const char *at = strstr(out, want);
        if (at == NULL || at < prev) {
            it_fail(env, "\"%s\" missing or out of order in:\n%s", want, out);
        }
        prev = at;
    }
    it_ctl_has(env, out, "attempt=1\n");
    free(out);
    /* Delivery is at least once (contract §2): an event may come twice, so count kinds. */
    char filter[512];
    snprintf(filter, sizeof filter,
             ".[0].type == \"accepted\" and .[0].research_id == \"%s\" and .[1].attempt == 1 "
             "and (map(select(.type == \"phase_started\") | .phase) | unique | length) == 4 and "
             "(map(select(.type == \"gate\") | .gate) | unique) == [\"backtest\", \"training\"] "
             "and .[-1].type == \"completed\" and .[-1].verdict == \"promising\" and "
             ".[-1].gate_rejection_reason == null",
             id);
    char words[256];
    snprintf(words, sizeof words, "events --json --research %s | jq -s . ", id);
    assert_true(it_ctl_jq(env, "jq-events", words, filter));
    const char *const last[] = {"events", "--last", "1", NULL};
    assert_int_equal(it_ctl(env, "ctl-events-last", &out, last), 0);
    assert_int_equal(count_lines(out), 1);
    it_ctl_has(env, out, "  completed  ");
    free(out);
}

static void
test_ctl_idle_status_show_and_events(void **state)
{
    struct it_env *env = *state;
    it_env_start_workers(env, "design", 1, NULL, fast);
    it_env_start_workers(env, "training", 1, NULL, fast);
    it_env_start_workers(env, "backtest", 1, NULL, fast);
    it_env_start_workers(env, "assessment", 1, NULL, fast);
    pid_t coordinator = it_env_start_coordinator(env, NULL);
    struct trigger t = {.request_id = "req-done", .brief = "momentum on BTC 1h bars"};
    char *id = trigger_ok(env, &t);
    it_event_wait(env, EVENT_COMPLETED, id, WAIT_MS);

    char *out = NULL;
    char want[256];
    const char *const status[] = {"status", NULL};
    assert_int_equal(it_ctl(env, "ctl-idle", &out, status), 0);
    it_ctl_has(env, out, "Active researches: 0 (idle)\n");
    snprintf(want, sizeof want, "  Last finished: %s  completed  verdict: promising  (0m ", id);
    it_ctl_has(env, out, want);
    free(out);

    const char *const show[] = {"show", id, NULL};
    assert_int_equal(it_ctl(env, "ctl-show", &out, show), 0);
    snprintf(want, sizeof want, "Research %s\n", id);
    it_ctl_has(env, out, want);
    /* Sections, and rows of a label padded to 22 columns and a value. */
    const char *const rows[][3] = {{NULL, "status", "completed"},
                                   {NULL, "last phase", "assessing"},
                                   {NULL, "brief", "momentum on BTC 1h bars"},
                                   {NULL, "request", "req-done"},
                                   {"Training", "accuracy", "0.62"},
                                   {"Backtest", NULL, NULL},
                                   {"Gates", "bypass gates", "no"},
                                   {NULL, "rejection", "-"},
                                   {"Outcome", "verdict", "promising"},
                                   {"Dispatch", NULL, NULL},
                                   {NULL, "attempt", "1"}};
    for (size_t i = 0; i < N_OF(rows); i++) {
        struct buf text = BUF_INIT;
        if (rows[i][0] != NULL) {
            buf_printf(&text, "\n\n%s\n", rows[i][0]);
        }
        if (rows[i][1] != NULL) {
            buf_printf(&text, "%s  %-22s%s\n", rows[i][0] != NULL ? "" : "\n", rows[i][1],
                       rows[i][2]);
        }
        it_ctl_has(env, out, text.data);
        buf_release(&text);
    }
    free(out);
    char words[256];
    snprintf(words, sizeof words, "show %s --json", id);
    assert_true(it_ctl_jq(env, "jq-show", words,
                         ".status == \"completed\" and .phase == \"completed\" and "
                         ".[\"training.accuracy\"] == \"0.62\" and .verdict == \"promising\" and "
                         ".request_id == \"req-done\""));
    check_events(env, id);

    /* Following: what is there, then a new research's events, until SIGTERM (exit 0). */
    const char *const follow[] = {"researchctl", "events", "--follow", NULL};
    pid_t pid = it_env_spawn(env, "ctl-follow", follow, NULL);
    snprintf(want, sizeof want, "%s  completed", id);
    it_log_wait(env, "ctl-follow", want, WAIT_MS);
    struct trigger t2 = {.request_id = "req-followed", .brief = "followed"};
    char *id2 = trigger_ok(env, &t2);
    char want2[256];
    snprintf(want2, sizeof want2, "%s  accepted         request_id=req-followed", id2);
    it_log_wait(env, "ctl-follow", want2, WAIT_MS);
    int st = 0;
    assert_int_equal(it_env_kill(env, pid, SIGTERM), 0);
    assert_int_equal(it_env_wait_exit(env, pid, 5000, &st), 0);
    assert_true(WIFEXITED(st));
    assert_int_equal(WEXITSTATUS(st), 0);

    /* With the coordinator stopped (lease released), status says it is down. */
    it_research_wait(env, id2, "phase", "completed", WAIT_MS);
    assert_int_equal(it_env_kill(env, coordinator, SIGTERM), 0);
    assert_int_equal(it_env_wait_exit(env, coordinator, 5000, &st), 0);
    assert_int_equal(it_ctl(env, "ctl-down", &out, status), 0);
    it_ctl_has(env, out, "\nCoordinator: down (no leader; last cycle 0m ");
    free(out);
    free(id);
    free(id2);
}

static void
test_ctl_workers_lists_every_worker(void **state)
{
    struct it_env *env = *state;
    it_env_start_workers(env, "design", 2, NULL, fast);
    it_env_start_workers(env, "training", 1, NULL, fast);
    /* A worker that stopped heartbeating a minute ago (no coordinator here removes it). */
    char old[32];
    snprintf(old, sizeof old, "%lld", (long long)(clock_now_ms() - 60000));
    const char *const hset[] = {"HSET",        "rc:worker:old-backtest-1",
                                "type",        "backtest",
                                "state",       "busy",
                                "research_id", "rs_gone",
                                "dispatch_id", "rs_gone:backtesting:1",
                                "last_seen",   old,
                                "progress",    "0.4",
                                "step",        "epoch 4/10",
                                "host",        "gpu-7",
                                "labels",      "gpu=a100"};
    freeReplyObject(it_redis_cmd(env, 20, hset));
    const char *const zadd[] = {"ZADD", "rc:workers:backtest", old, "old-backtest-1"};
    freeReplyObject(it_redis_cmd(env, 4, zadd));

    char *out = NULL;
    const char *const workers[] = {"workers", NULL};
    assert_int_equal(it_ctl(env, "ctl-workers", &out, workers), 0);
    /* Columns: type (10), worker (the longest id), state (7), research, dispatch, progress
     * and step, age, and host and labels (as a worker names one). */
    const char *const rows[] = {"\ndesign      g1-design-1     idle     -  ",
                                "\ndesign      g1-design-2     idle     -  ",
                                "\ntraining    g2-training-1   idle     -  ",
                                "\nbacktest    old-backtest-1  dead     rs_gone   "
                                "rs_gone:backtesting:1  40% epoch 4/10  1m 0",
                                "  gpu-7  gpu=a100\n",
                                "\n\n4 workers: 3 live (0 busy), 1 dead\n"};
    for (size_t i = 0; i < N_OF(rows); i++) {
        it_ctl_has(env, out, rows[i]);
    }
    it_ctl_has(env, out, "  PROGRESS        HEARTBEAT       HOST   LABELS\n");
    it_ctl_has(env, out, " s ago       -      -\n"); /* a live one, with no host or labels */
    free(out);
    assert_true(it_ctl_jq(env, "jq-workers", "workers --json",
                         ".workers | length == 4 and (map(select(.state == \"dead\")) | length) "
                         "== 1 and (map(select(.live)) | length) == 3 and .[3].worker_id == "
                         "\"old-backtest-1\" and .[3].research_id == \"rs_gone\" and "
                         ".[3].progress == 0.4 and .[3].step == \"epoch 4/10\" and .[3].host == "
                         "\"gpu-7\" and .[3].labels == \"gpu=a100\" and .[0].progress == null"));
}

static void
test_ctl_cancel_reports_each_outcome(void **state)
{
    struct it_env *env = *state;
    it_env_start_workers(env, "design", 1, NULL, slow);
    it_env_start_coordinator(env, NULL);
    char *out = NULL;
    const char *const trig[] = {"trigger",   "--brief", "to cancel",
                                "--options", "{\"symbol\": \"BTCUSD\", \"bars\": [1, 2.5]}",
                                "--request-id", "req-c", "--json", NULL};
    assert_int_equal(it_ctl(env, "ctl-trigger", &out, trig), 0);
    it_ctl_has(env, out, "\"type\":\"accepted\"");
    free(out);
    const struct event *ev = it_event_wait_request(env, EVENT_ACCEPTED, "req-c", WAIT_MS);
    char *id = strdup(ev->research_id);
    it_research_wait(env, id, "child_status", "dispatched", WAIT_MS);
    /* --options: stored as JSON, and in the dispatch's params. */
    char *options = it_research_hget(env, id, "options");
    assert_non_null(options);
    assert_string_equal(options, "{\"symbol\":\"BTCUSD\",\"bars\":[1,2.5]}");
    free(options);
    const struct dispatch *d = it_dispatch_wait(env, WORKER_DESIGN, id, 1, WAIT_MS);
    const struct kv *o = kv_find(d->params, d->n_params, "options");
    assert_non_null(o);
    assert_int_equal(o->val.kind, VALUE_RAW);

    char want[256];
    const char *const cancel[] = {"cancel", id, "--reason", "changed my mind", NULL};
    assert_int_equal(it_ctl(env, "ctl-cancel", &out, cancel), 0);
    snprintf(want, sizeof want, "Research cancelled: %s\n", id);
    it_ctl_has(env, out, want);
    free(out);
    assert_int_equal(it_ctl(env, "ctl-cancel-again", &out, cancel), 1);
    snprintf(want, sizeof want, "Cannot cancel %s: already finished\n", id);
    it_ctl_has(env, out, want);
    free(out);
    const char *const unknown[] = {"cancel", "rs_nobody", NULL};
    assert_int_equal(it_ctl(env, "ctl-cancel-unknown", &out, unknown), 1);
    it_ctl_has(env, out, "Cannot cancel rs_nobody: not found\n");
    free(out);
    free(id);
}

static void
test_ctl_help_and_exit_statuses(void **state)
{
    struct it_env *env = *state;
    char *out = NULL;
    const char *const help[] = {"--help", NULL};
    assert_int_equal(it_ctl(env, "ctl-help", &out, help), 0);
    const char *const names[] = {"trigger", "cancel", "status", "show", "workers", "events"};
    for (size_t i = 0; i < N_OF(names); i++) {
        char want[64];
        snprintf(want, sizeof want, "\n  %-8s  ", names[i]);
        it_ctl_has(env, out, want);
        const char *const cmd_help[] = {names[i], "--help", NULL};
        char *text = NULL;
        assert_int_equal(it_ctl(env, "ctl-cmd-help", &text, cmd_help), 0);
        snprintf(want, sizeof want, "usage: researchctl %s", names[i]);
        it_ctl_has(env, text, want);
        free(text);
    }
    free(out);

    const char *const unknown_cmd[] = {"frobnicate", NULL};
    assert_int_equal(it_ctl(env, "ctl-unknown", &out, unknown_cmd), 64);
    it_ctl_has(env, out, "researchctl: unknown command 'frobnicate'\n");
    free(out);
    const char *const bad_opt[] = {"status", "--frob", NULL};
    assert_int_equal(it_ctl(env, "ctl-bad-opt", &out, bad_opt), 64);
    free(out);
    const char *const no_id[] = {"show", NULL};
    assert_int_equal(it_ctl(env, "ctl-no-id", &out, no_id), 64);
    free(out);
    /* --options must be one JSON object: a usage error, before anything connects. */
    static const struct {
        const char *json, *want;
    } bad_options[] = {
        {"[1]", "researchctl: trigger: --options: must be a JSON object ({...})\n"},
        {"{\"a\":", "researchctl: trigger: --options: at byte 5: expected a value\n"},
        {"{\"a\": NaN}", "researchctl: trigger: --options: at byte 6: expected a value\n"},
    };
    for (size_t i = 0; i < N_OF(bad_options); i++) {
        const char *const trig[] = {"trigger", "--brief", "b", "--options", bad_options[i].json,
                                    NULL};
        assert_int_equal(it_ctl(env, "ctl-bad-options", &out, trig), 64);
        it_ctl_has(env, out, bad_options[i].want);
        free(out);
    }

    const char *const show[] = {"show", "rs_x", NULL};
    assert_int_equal(it_ctl(env, "ctl-show-unknown", &out, show), 1);
    assert_string_equal(out, "researchctl: no research rs_x (unknown, or expired after "
                             "RESEARCH_RETENTION)\n");
    free(out);
    const char *const status[] = {"status", NULL};
    assert_int_equal(it_ctl(env, "ctl-never", &out, status), 0);
    it_ctl_has(env, out, "\nCoordinator: never started\n");
    free(out);

    /* Redis unreachable: exit 69 and one line, from the environment or the global option. */
    char url[64];
    snprintf(url, sizeof url, "redis://127.0.0.1:%d/0", it_free_port());
    char url_env[96];
    snprintf(url_env, sizeof url_env, "REDIS_URL=%s", url);
    const char *const closed[] = {url_env, NULL};
    const char *const reads[][3] = {{"researchctl", "status", NULL},
                                    {"researchctl", "workers", NULL},
                                    {"researchctl", "show", "rs_x"}};
    for (size_t i = 0; i < 3; i++) {
        const char *const argv[] = {reads[i][0], reads[i][1], reads[i][2], NULL};
        assert_int_equal(it_env_run(env, "ctl-no-redis", argv, closed, RUN_MS, &out), 69);
        assert_int_equal(count_lines(out), 1);
        it_ctl_has(env, out, "researchctl: redis 127.0.0.1:");
        free(out);
    }
    const char *const by_flag[] = {"--redis-url", url, "status", NULL};
    assert_int_equal(it_ctl(env, "ctl-no-redis-flag", &out, by_flag), 69);
    assert_int_equal(count_lines(out), 1);
    free(out);

    const char *const argv[] = {"researchctl", "status", NULL};
    const char *const bad[] = {"AGENT_WORKER_TIMEOUT=soon", NULL};
    assert_int_equal(it_env_run(env, "ctl-bad-config", argv, bad, RUN_MS, &out), 78);
    it_ctl_has(env, out, "AGENT_WORKER_TIMEOUT");
    free(out);
}

/* Fail unless text holds no control character but the newlines ending its lines. */
static void
assert_no_raw_controls(struct it_env *env, const char *text)
{
    for (const char *p = text; *p != '\0'; p++) {
        unsigned char c = (unsigned char)*p;
        if ((c < 0x20 && c != '\n') || c == 0x7f) {
            it_fail(env, "raw control byte 0x%02x at offset %td of the output", c, p - text);
        }
    }
}

static void
test_ctl_text_escapes_control_characters(void **state)
{
    struct it_env *env = *state;
    /* A research and a worker as a careless (or hostile) writer left them. */
    const char *const hset[] = {"HSET",  "rc:research:rs_esc",   "research_id", "rs_esc",
                                "brief", "\x1b[31mred\x1b[0m\n", "status",      "running",
                                "error", "\x1b]0;owned\x07"};
    freeReplyObject(it_redis_cmd(env, 10, hset));
    char now[32];
    snprintf(now, sizeof now, "%lld", (long long)clock_now_ms());
    const char *const beat[] = {
        "HSET", "rc:worker:evil\x1b[2J", "type", "design", "state", "idle\r", "last_seen", now};
    freeReplyObject(it_redis_cmd(env, 8, beat));
    const char *const zadd[] = {"ZADD", "rc:workers:design", now, "evil\x1b[2J"};
    freeReplyObject(it_redis_cmd(env, 4, zadd));

    char *out = NULL;
    const char *const show[] = {"show", "rs_esc", NULL};
    assert_int_equal(it_ctl(env, "ctl-show-esc", &out, show), 0);
    assert_no_raw_controls(env, out);
    it_ctl_has(env, out, "\n  brief                 \\x1b[31mred\\x1b[0m\\n\n");
    it_ctl_has(env, out, "\n  error                 \\x1b]0;owned\\x07\n");
    free(out);
    /* JSON stays JSON, and says what is stored. */
    assert_true(it_ctl_jq(env, "jq-show-esc", "show rs_esc --json",
                         ".brief == \"\\u001b[31mred\\u001b[0m\\n\""));

    const char *const workers[] = {"workers", NULL};
    assert_int_equal(it_ctl(env, "ctl-workers-esc", &out, workers), 0);
    assert_no_raw_controls(env, out);
    it_ctl_has(env, out, "\ndesign      evil\\x1b[2J  idle\\r   -  ");
    free(out);
}

/* A listening TCP socket on 127.0.0.1 that nothing accepts from; *port is its port. */
static int
listener(int *port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    assert_true(fd >= 0);
    struct sockaddr_in sa = {.sin_family = AF_INET};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    assert_int_equal(listen(fd, 8), 0);
    socklen_t len = sizeof(sa);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&sa, &len), 0);
    *port = ntohs(sa.sin_port);
    return fd;
}

static void
test_ctl_refuses_a_password_in_argv(void **state)
{
    struct it_env *env = *state;
    /* Redis and Kafka both point at a socket of ours: any connection researchctl made would
     * wait there to be accepted. */
    int port = 0;
    int fd = listener(&port);
    char at[64];
    snprintf(at, sizeof at, "127.0.0.1:%d", port);
    const char *const credentials[] = {":hunter2", "admin:hunter2"};
    for (size_t i = 0; i < N_OF(credentials); i++) {
        char url[128];
        snprintf(url, sizeof url, "redis://%s@%s/0", credentials[i], at);
        const char *const status[] = {"--redis-url", url, "status", NULL};
        const char *const trigger[] = {"--brokers", at,      "--redis-url", url, "trigger",
                                       "--brief",   "never", "--no-wait",   NULL};
        const char *const *const runs[] = {status, trigger};
        for (size_t r = 0; r < 2; r++) {
            char *out = NULL;
            assert_int_equal(it_ctl(env, "ctl-password", &out, runs[r]), 64);
            assert_string_equal(out, "researchctl: --redis-url must not hold a password (other "
                                     "users see it in ps): put the URL in the REDIS_URL "
                                     "environment variable instead\n");
            free(out);
        }
    }
    int c = accept(fd, NULL, NULL);
    if (c >= 0 || (errno != EAGAIN && errno != EWOULDBLOCK)) {
        it_fail(env, "researchctl connected somewhere after refusing (accept: %d, %s)", c,
                strerror(errno));
    }
    close(fd);

    /* The same URL in the environment is used: here Redis is down, so exit 69 saying so. */
    char env_url[128];
    snprintf(env_url, sizeof env_url, "REDIS_URL=redis://:hunter2@127.0.0.1:%d/0", it_free_port());
    const char *const with_password[] = {env_url, NULL};
    const char *const argv[] = {"researchctl", "status", NULL};
    char *out = NULL;
    assert_int_equal(it_env_run(env, "ctl-env-password", argv, with_password, RUN_MS, &out), 69);
    assert_int_equal(count_lines(out), 1);
    it_ctl_has(env, out, "researchctl: redis 127.0.0.1:");
    assert_null(strstr(out, "hunter2"));
    free(out);
    /* A URL without a password is fine in argv. */
    const char *const no_password[] = {"--redis-url", it_env_redis_url(env), "status", NULL};
    assert_int_equal(it_ctl(env, "ctl-no-password", &out, no_password), 0);
    it_ctl_has(env, out, "\nCoordinator: never started\n");
    free(out);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_ctl_status_lists_active_researches, it_setup,
                                        it_teardown),
        cmocka_unit_test_setup_teardown(test_ctl_idle_status_show_and_events, it_setup,
                                        it_teardown),
        cmocka_unit_test_setup_teardown(test_ctl_workers_lists_every_worker, it_setup, it_teardown),
        cmocka_unit_test_setup_teardown(test_ctl_cancel_reports_each_outcome, it_setup,
                                        it_teardown),
        cmocka_unit_test_setup_teardown(test_ctl_help_and_exit_statuses, it_setup, it_teardown),
        cmocka_unit_test_setup_teardown(test_ctl_text_escapes_control_characters, it_setup,
                                        it_teardown),
        cmocka_unit_test_setup_teardown(test_ctl_refuses_a_password_in_argv, it_setup, it_teardown),
    };
    return IT_RUN_GROUP("ctl", tests);
}
