/* SPDX-License-Identifier: MIT
 * Unit tests of common/cfg: defaults, one problem line per bad variable, seconds with
 * fractions, KAFKA_PROP_ mapping, Redis URL forms, and redaction of secrets. */
#include "tests/support/test.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "common/cfg.h"

static const struct cfg cfg_zero = CFG_INIT;

/* Load from a NULL-terminated list of "NAME=value" (copied into a mutable environ-like
 * array); on success the caller releases *out. */
static enum rc_rc
load(const char *const *list, struct cfg *out, struct buf *problems, struct rc_err *err)
{
    char *env[64];
    size_t n = 0;

    for (; list[n] != NULL; n++) {
        assert_true(n + 1 < N_OF(env));
        env[n] = strdup(list[n]);
        assert_non_null(env[n]);
    }
    env[n] = NULL;
    if (problems != NULL) {
        buf_reset(problems);
    }
    enum rc_rc rc = cfg_load(out, env, problems, err);
    for (size_t i = 0; i < n; i++) {
        free(env[i]);
    }
    return rc;
}

static size_t
count_lines(const char *s)
{
    size_t n = 0;
    for (; s != NULL && *s != '\0'; s++) {
        n += *s == '\n';
    }
    return n;
}

/* What cfg_print writes; the caller frees. */
static char *
printed(const struct cfg *cfg)
{
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    assert_non_null(f);
    cfg_print(cfg, f);
    fclose(f);
    return text;
}

static void
test_cfg_defaults_without_environment(void **state)
{
    (void)state;
    const char *const env[] = {"HOME=/root", "PATH=/bin", "UNRELATED", NULL};
    struct cfg c = cfg_zero;
    struct buf problems = BUF_INIT;
    struct rc_err err = RC_ERR_INIT;

    assert_int_equal(load(env, &c, &problems, &err), RC_OK);
    assert_true(problems.data == NULL || problems.len == 0);

    assert_string_equal(c.kafka.brokers, "127.0.0.1:9092");
    assert_string_equal(c.kafka.group, "research-coordinator");
    assert_string_equal(c.kafka.topic_prefix, "research.");
    assert_string_equal(c.kafka.topics[TOPIC_TRIGGERS], "research.triggers");
    assert_string_equal(c.kafka.topics[TOPIC_COMPLETIONS], "research.completions");
    assert_string_equal(c.kafka.topics[TOPIC_DISPATCH_DESIGN], "research.dispatch.design");
    assert_string_equal(c.kafka.topics[TOPIC_DISPATCH_TRAINING], "research.dispatch.training");
    assert_string_equal(c.kafka.topics[TOPIC_DISPATCH_BACKTEST], "research.dispatch.backtest");
    assert_string_equal(c.kafka.topics[TOPIC_DISPATCH_ASSESSMENT],
                        "research.dispatch.assessment");
    assert_string_equal(c.kafka.topics[TOPIC_EVENTS], "research.events");
    assert_string_equal(c.kafka.topics[TOPIC_DEADLETTER], "research.deadletter");
    assert_int_equal(c.kafka.n_props, 0);

    assert_string_equal(c.redis.url, "redis://127.0.0.1:6379/0");
    assert_string_equal(c.redis.key_prefix, "rc:");
    assert_string_equal(c.redis.host, "127.0.0.1");
    assert_int_equal(c.redis.port, 6379);
    assert_null(c.redis.unix_path);
    assert_null(c.redis.password);
    assert_int_equal(c.redis.db, 0);
    assert_int_equal(c.redis.timeout_ms, 2000);

    assert_int_equal(c.agent.poll_interval_ms, 2000);
    assert_int_equal(c.agent.max_concurrent, 0);
    assert_int_equal(c.agent.concurrency_buffer, 1);
    assert_int_equal(c.agent.worker_timeout_ms, 15000);
    assert_int_equal(c.agent.dispatch_timeout_ms, 60000);
    assert_int_equal(c.agent.max_attempts, 3);
    assert_int_equal(c.agent.wait_timeout_ms, 0);
    for (int t = 0; t < WORKER_TYPE_COUNT; t++) {
        assert_int_equal(c.agent.phase_timeout_ms[t], 0); /* no limit */
    }
    assert_true(c.agent.daily_budget_usd == 20.0);
    assert_int_equal(c.agent.retention_s, 604800);

    assert_true(c.gates.training_min_accuracy == 0.10);
    assert_true(c.gates.training_max_loss == 0.8);
    assert_true(c.gates.training_min_loss_decrease == -0.5);
    assert_true(c.gates.training_min_directional_accuracy == 0.50);
    assert_true(c.gates.backtest_min_win_rate == 0.10);
    assert_true(c.gates.backtest_max_drawdown == 0.4);
    assert_true(c.gates.backtest_min_sharpe == -0.5);
    assert_true(c.gates.backtest_min_net_return == 0.0);
    assert_int_equal(c.gates.backtest_min_trades, 5);
    assert_int_equal(c.log_level, LOG_INFO);

    cfg_release(&c);
    assert_null(c.kafka.brokers);
    assert_null(c.kafka.topics[0]);
    assert_null(c.redis.host);
    assert_int_equal(c.log_level, LOG_INFO);
    cfg_release(&c); /* twice is fine: back at CFG_INIT */
    buf_release(&problems);
}

static void
test_cfg_null_environment_gives_defaults(void **state)
{
    (void)state;
    struct cfg c = cfg_zero;
    assert_int_equal(cfg_load(&c, NULL, NULL, NULL), RC_OK);
    assert_int_equal(c.agent.max_attempts, 3);
    cfg_release(&c);
}

static void
test_cfg_empty_value_counts_as_unset(void **state)
{
    (void)state;
    const char *const env[] = {"AGENT_POLL_INTERVAL=", "KAFKA_BROKERS=",        "LOG_LEVEL=",
                               "REDIS_URL=",           "KAFKA_PROP_CLIENT_ID=", NULL};
    struct cfg c = cfg_zero;
    struct buf problems = BUF_INIT;

    assert_int_equal(load(env, &c, &problems, NULL), RC_OK);
    assert_int_equal(c.agent.poll_interval_ms, 2000);
    assert_string_equal(c.kafka.brokers, "127.0.0.1:9092");
    assert_int_equal(c.log_level, LOG_INFO);
    assert_string_equal(c.redis.host, "127.0.0.1");
    assert_int_equal(c.kafka.n_props, 0);
    cfg_release(&c);
    buf_release(&problems);
}

static void
test_cfg_reads_every_variable(void **state)
{
    (void)state;
    const char *const env[] = {"KAFKA_BROKERS=k1:9092,k2:9092",
                               "KAFKA_GROUP=my group",
                               "KAFKA_TOPIC_PREFIX=stage-2_x.",
                               "REDIS_URL=redis://cache.local:6380/3",
                               "REDIS_KEY_PREFIX=test:{a}:",
                               "REDIS_TIMEOUT_MS=600000",
                               "AGENT_POLL_INTERVAL=3600",
                               "AGENT_MAX_CONCURRENT_RESEARCHES=7",
                               "AGENT_CONCURRENCY_BUFFER=0",
                               "AGENT_WORKER_TIMEOUT=30",
                               "AGENT_DISPATCH_TIMEOUT=120",
                               "AGENT_MAX_ATTEMPTS=1",
                               "AGENT_WAIT_TIMEOUT=600",
                               "AGENT_PHASE_TIMEOUT_DESIGN=300",
                               "AGENT_PHASE_TIMEOUT_TRAINING=7200",
                               "AGENT_PHASE_TIMEOUT_BACKTEST=0.5",
                               "AGENT_PHASE_TIMEOUT_ASSESSMENT=0",
                               "AGENT_DAILY_BUDGET=0",
                               "RESEARCH_RETENTION=1",
                               "TRAINING_GATE_MIN_ACCURACY=0.5",
                               "TRAINING_GATE_MAX_LOSS=2",
                               "TRAINING_GATE_MIN_LOSS_DECREASE=0.25",
                               "TRAINING_GATE_MIN_DIRECTIONAL_ACCURACY=0.55",
                               "BACKTEST_GATE_MIN_WIN_RATE=0.3",
                               "BACKTEST_GATE_MAX_DRAWDOWN=0.2",
                               "BACKTEST_GATE_MIN_SHARPE=1.5",
                               "BACKTEST_GATE_MIN_NET_RETURN=-0.125",
                               "BACKTEST_GATE_MIN_TRADES=0",
                               "LOG_LEVEL=debug",
                               NULL};
    struct cfg c = cfg_zero;
    struct buf problems = BUF_INIT;
    struct rc_err err = RC_ERR_INIT;

    assert_int_equal(load(env, &c, &problems, &err), RC_OK);
    assert_string_equal(c.kafka.brokers, "k1:9092,k2:9092");
    assert_string_equal(c.kafka.group, "my group");
    assert_string_equal(c.kafka.topics[TOPIC_EVENTS], "stage-2_x.events");
    assert_string_equal(c.redis.host, "cache.local");
    assert_int_equal(c.redis.port, 6380);
    assert_int_equal(c.redis.db, 3);
    assert_string_equal(c.redis.key_prefix, "test:{a}:");
    assert_int_equal(c.redis.timeout_ms, 600000);
    assert_int_equal(c.agent.poll_interval_ms, 3600000);
    assert_int_equal(c.agent.max_concurrent, 7);
    assert_int_equal(c.agent.concurrency_buffer, 0);
    assert_int_equal(c.agent.worker_timeout_ms, 30000);
    assert_int_equal(c.agent.dispatch_timeout_ms, 120000);
    assert_int_equal(c.agent.max_attempts, 1);
    assert_int_equal(c.agent.wait_timeout_ms, 600000);
    assert_int_equal(c.agent.phase_timeout_ms[WORKER_DESIGN], 300000);
    assert_int_equal(c.agent.phase_timeout_ms[WORKER_TRAINING], 7200000);
    assert_int_equal(c.agent.phase_timeout_ms[WORKER_BACKTEST], 500);
    assert_int_equal(c.agent.phase_timeout_ms[WORKER_ASSESSMENT], 0);
    assert_true(c.agent.daily_budget_usd == 0.0);
    assert_int_equal(c.agent.retention_s, 1);
    assert_true(c.gates.training_min_accuracy == 0.5);
    assert_true(c.gates.training_max_loss == 2.0);
    assert_true(c.gates.training_min_loss_decrease == 0.25);
    assert_true(c.gates.training_min_directional_accuracy == 0.55);
    assert_true(c.gates.backtest_min_win_rate == 0.3);
    assert_true(c.gates.backtest_max_drawdown == 0.2);
    assert_true(c.gates.backtest_min_sharpe == 1.5);
    assert_true(c.gates.backtest_min_net_return == -0.125);
    assert_int_equal(c.gates.backtest_min_trades, 0);
    assert_int_equal(c.log_level, LOG_DEBUG);
    cfg_release(&c);
    buf_release(&problems);
}

static void
test_cfg_seconds_accept_fractions(void **state)
{
    (void)state;
    static const struct {
        const char *env;
        size_t field; /* offset of an int64_t in struct cfg */
        int64_t ms;
    } cases[] = {
        {"AGENT_POLL_INTERVAL=0.5", offsetof(struct cfg, agent.poll_interval_ms), 500},
        {"AGENT_POLL_INTERVAL=0.25", offsetof(struct cfg, agent.poll_interval_ms), 250},
        {"AGENT_POLL_INTERVAL=0.0001", offsetof(struct cfg, agent.poll_interval_ms), 1},
        {"AGENT_POLL_INTERVAL=1e-3", offsetof(struct cfg, agent.poll_interval_ms), 1},
        {"AGENT_WORKER_TIMEOUT=1.25", offsetof(struct cfg, agent.worker_timeout_ms), 1250},
        {"AGENT_DISPATCH_TIMEOUT=0.1", offsetof(struct cfg, agent.dispatch_timeout_ms), 100},
        {"AGENT_WAIT_TIMEOUT=2.5", offsetof(struct cfg, agent.wait_timeout_ms), 2500},
        {"AGENT_WAIT_TIMEOUT=0", offsetof(struct cfg, agent.wait_timeout_ms), 0},
        {"AGENT_WAIT_TIMEOUT=0.0", offsetof(struct cfg, agent.wait_timeout_ms), 0},
    };
    for (size_t i = 0; i < N_OF(cases); i++) {
        const char *const env[] = {(char *)(uintptr_t)cases[i].env, NULL};
        struct cfg c = cfg_zero;
        if (load(env, &c, NULL, NULL) != RC_OK) {
            fail_msg("case %s: refused", cases[i].env);
        }
        int64_t ms;
        memcpy(&ms, (const char *)&c + cases[i].field, sizeof ms);
        if (ms != cases[i].ms) {
            fail_msg("case %s: got %lld ms", cases[i].env, (long long)ms);
        }
        cfg_release(&c);
    }
}

struct bad_case {
    const char *env;
    const char *name;
};

/* At least one bad value of every variable of the table. */
static const struct bad_case bad_cases[] = {
    {"KAFKA_BROKERS=a\tb", "KAFKA_BROKERS"},
    {"KAFKA_GROUP=g\n", "KAFKA_GROUP"},
    {"KAFKA_TOPIC_PREFIX=with space.", "KAFKA_TOPIC_PREFIX"},
    {"KAFKA_TOPIC_PREFIX=a/b", "KAFKA_TOPIC_PREFIX"},
    {"REDIS_URL=http://127.0.0.1:6379", "REDIS_URL"},
    {"REDIS_KEY_PREFIX=a b", "REDIS_KEY_PREFIX"},
    {"REDIS_KEY_PREFIX=a\x01", "REDIS_KEY_PREFIX"},
    {"REDIS_TIMEOUT_MS=0", "REDIS_TIMEOUT_MS"},
    {"REDIS_TIMEOUT_MS=600001", "REDIS_TIMEOUT_MS"},
    {"REDIS_TIMEOUT_MS=1.5", "REDIS_TIMEOUT_MS"},
    {"AGENT_POLL_INTERVAL=abc", "AGENT_POLL_INTERVAL"},
    {"AGENT_POLL_INTERVAL=0", "AGENT_POLL_INTERVAL"},
    {"AGENT_POLL_INTERVAL=-1", "AGENT_POLL_INTERVAL"},
    {"AGENT_POLL_INTERVAL=3600.5", "AGENT_POLL_INTERVAL"},
    {"AGENT_POLL_INTERVAL=nan", "AGENT_POLL_INTERVAL"},
    {"AGENT_POLL_INTERVAL=inf", "AGENT_POLL_INTERVAL"},
    {"AGENT_POLL_INTERVAL=2s", "AGENT_POLL_INTERVAL"},
    {"AGENT_POLL_INTERVAL= 2", "AGENT_POLL_INTERVAL"},
    {"AGENT_POLL_INTERVAL=2 ", "AGENT_POLL_INTERVAL"},
    {"AGENT_MAX_CONCURRENT_RESEARCHES=-1", "AGENT_MAX_CONCURRENT_RESEARCHES"},
    {"AGENT_MAX_CONCURRENT_RESEARCHES=2.0", "AGENT_MAX_CONCURRENT_RESEARCHES"},
    {"AGENT_MAX_CONCURRENT_RESEARCHES=99999999999999999999", "AGENT_MAX_CONCURRENT_RESEARCHES"},
    {"AGENT_CONCURRENCY_BUFFER=-1", "AGENT_CONCURRENCY_BUFFER"},
    {"AGENT_CONCURRENCY_BUFFER=x", "AGENT_CONCURRENCY_BUFFER"},
    {"AGENT_WORKER_TIMEOUT=0", "AGENT_WORKER_TIMEOUT"},
    {"AGENT_WORKER_TIMEOUT=1e300", "AGENT_WORKER_TIMEOUT"},
    {"AGENT_DISPATCH_TIMEOUT=0", "AGENT_DISPATCH_TIMEOUT"},
    {"AGENT_DISPATCH_TIMEOUT=soon", "AGENT_DISPATCH_TIMEOUT"},
    {"AGENT_MAX_ATTEMPTS=0", "AGENT_MAX_ATTEMPTS"},
    {"AGENT_MAX_ATTEMPTS=three", "AGENT_MAX_ATTEMPTS"},
    {"AGENT_WAIT_TIMEOUT=-0.5", "AGENT_WAIT_TIMEOUT"},
    {"AGENT_PHASE_TIMEOUT_DESIGN=-1", "AGENT_PHASE_TIMEOUT_DESIGN"},
    {"AGENT_PHASE_TIMEOUT_TRAINING=1h", "AGENT_PHASE_TIMEOUT_TRAINING"},
    {"AGENT_PHASE_TIMEOUT_BACKTEST=nan", "AGENT_PHASE_TIMEOUT_BACKTEST"},
    {"AGENT_PHASE_TIMEOUT_ASSESSMENT=1e300", "AGENT_PHASE_TIMEOUT_ASSESSMENT"},
    {"AGENT_DAILY_BUDGET=-1", "AGENT_DAILY_BUDGET"},
    {"AGENT_DAILY_BUDGET=$20", "AGENT_DAILY_BUDGET"},
    {"AGENT_DAILY_BUDGET=infinity", "AGENT_DAILY_BUDGET"},
    {"RESEARCH_RETENTION=0", "RESEARCH_RETENTION"},
    {"RESEARCH_RETENTION=1.5", "RESEARCH_RETENTION"},
    {"AGENT_MODEL_PRICES=opus", "AGENT_MODEL_PRICES"},
    {"AGENT_MODEL_PRICES=opus=1/-2", "AGENT_MODEL_PRICES"},
    {"METRICS_ADDR=localhost", "METRICS_ADDR"},
    {"METRICS_ADDR=:9464", "METRICS_ADDR"},
    {"METRICS_ADDR=127.0.0.1:0", "METRICS_ADDR"},
    {"METRICS_ADDR=127.0.0.1:65536", "METRICS_ADDR"},
    {"METRICS_ADDR=[::1:9464", "METRICS_ADDR"},
    {"METRICS_ADDR=a b:9464", "METRICS_ADDR"},
    {"TRAINING_GATE_MIN_ACCURACY=x", "TRAINING_GATE_MIN_ACCURACY"},
    {"TRAINING_GATE_MAX_LOSS=0.8.1", "TRAINING_GATE_MAX_LOSS"},
    {"TRAINING_GATE_MIN_LOSS_DECREASE=--0.5", "TRAINING_GATE_MIN_LOSS_DECREASE"},
    {"TRAINING_GATE_MIN_DIRECTIONAL_ACCURACY=half", "TRAINING_GATE_MIN_DIRECTIONAL_ACCURACY"},
    {"BACKTEST_GATE_MIN_WIN_RATE=10%", "BACKTEST_GATE_MIN_WIN_RATE"},
    {"BACKTEST_GATE_MAX_DRAWDOWN=NaN", "BACKTEST_GATE_MAX_DRAWDOWN"},
    {"BACKTEST_GATE_MIN_SHARPE=1e999", "BACKTEST_GATE_MIN_SHARPE"},
    {"BACKTEST_GATE_MIN_NET_RETURN=zero", "BACKTEST_GATE_MIN_NET_RETURN"},
    {"BACKTEST_GATE_MIN_TRADES=-1", "BACKTEST_GATE_MIN_TRADES"},
    {"BACKTEST_GATE_MIN_TRADES=5.5", "BACKTEST_GATE_MIN_TRADES"},
    {"LOG_LEVEL=loud", "LOG_LEVEL"},
    {"KAFKA_PROP_=x", "KAFKA_PROP_"},
    {"KAFKA_PROP_BAD-NAME=x", "KAFKA_PROP_BAD-NAME"},
};

static void
test_cfg_bad_value_names_its_variable(void **state)
{
    (void)state;
    struct buf problems = BUF_INIT;

    for (size_t i = 0; i < N_OF(bad_cases); i++) {
        const struct bad_case *bc = &bad_cases[i];
        const char *const env[] = {(char *)(uintptr_t)bc->env, NULL};
        struct cfg c = cfg_zero;
        struct rc_err err = RC_ERR_INIT;
        c.agent.max_attempts = 42; /* *out must stay as it was */

        if (load(env, &c, &problems, &err) != RC_EINVAL) {
            fail_msg("case %s: accepted", bc->env);
        }
        size_t name_len = strlen(bc->name);
        if (count_lines(problems.data) != 1 || strncmp(problems.data, bc->name, name_len) != 0 ||
            problems.data[name_len] != ':') {
            fail_msg("case %s: problems \"%s\"", bc->env, problems.data);
        }
        if (err.rc != RC_EINVAL || strcmp(err.msg, "1 configuration problem") != 0) {
            fail_msg("case %s: err \"%s\"", bc->env, err.msg);
        }
        if (c.agent.max_attempts != 42 || c.kafka.brokers != NULL) {
            fail_msg("case %s: *out written on failure", bc->env);
        }
    }
    buf_release(&problems);
}

static void
test_cfg_problem_line_states_rule_and_value(void **state)
{
    (void)state;
    const char *const env[] = {"AGENT_POLL_INTERVAL=abc", NULL};
    struct cfg c = cfg_zero;
    struct buf problems = BUF_INIT;

    assert_int_equal(load(env, &c, &problems, NULL), RC_EINVAL);
    assert_string_equal(problems.data, "AGENT_POLL_INTERVAL: must be a number of seconds > 0 and "
                                       "<= 3600 (got \"abc\")\n");

    const char *const env2[] = {"AGENT_MAX_ATTEMPTS=0", NULL};
    assert_int_equal(load(env2, &c, &problems, NULL), RC_EINVAL);
    assert_string_equal(problems.data, "AGENT_MAX_ATTEMPTS: must be an integer >= 1 (got \"0\")\n");

    const char *const env3[] = {"KAFKA_GROUP=a\"b\n", NULL};
    assert_int_equal(load(env3, &c, &problems, NULL), RC_EINVAL);
    assert_string_equal(problems.data, "KAFKA_GROUP: must not contain control characters (got "
                                       "\"a\\\"b\\x0a\")\n");
    buf_release(&problems);
}

static void
test_cfg_reports_every_problem(void **state)
{
    (void)state;
    const char *const env[] = {"AGENT_POLL_INTERVAL=abc", "REDIS_URL=redis://h:99999",
                               "AGENT_MAX_ATTEMPTS=0",    "LOG_LEVEL=info",
                               "KAFKA_PROP_=x",           NULL};
    struct cfg c = cfg_zero;
    struct buf problems = BUF_INIT;
    struct rc_err err = RC_ERR_INIT;

    assert_int_equal(load(env, &c, &problems, &err), RC_EINVAL);
    assert_int_equal(count_lines(problems.data), 4);
    /* Table order, then the KAFKA_PROP_ lines. */
    assert_memory_equal(problems.data,
                        "REDIS_URL: port must be an integer 1..65535 (got "
                        "\"redis://h:99999\")\n",
                        strlen("REDIS_URL: port must be an integer 1..65535 (got "
                               "\"redis://h:99999\")\n"));
    assert_non_null(strstr(problems.data, "\nAGENT_POLL_INTERVAL: "));
    assert_non_null(strstr(problems.data, "\nAGENT_MAX_ATTEMPTS: "));
    assert_non_null(strstr(problems.data, "\nKAFKA_PROP_: "));
    assert_string_equal(err.msg, "4 configuration problems");
    assert_null(c.kafka.brokers);
    buf_release(&problems);
}

static void
test_cfg_topic_prefix_limits(void **state)
{
    (void)state;
    /* The longest topic, prefix + "dispatch.assessment" (19), may be 249 bytes. */
    char ok[19 + 230 + 1];
    char too_long[19 + 231 + 1];
    memcpy(ok, "KAFKA_TOPIC_PREFIX=", 19);
    memset(ok + 19, 'p', 230);
    ok[19 + 230] = '\0';
    memcpy(too_long, ok, 19);
    memset(too_long + 19, 'p', 231);
    too_long[19 + 231] = '\0';
    _Static_assert(sizeof ok >= 19 + 230 + 1, "room");
    _Static_assert(sizeof too_long >= 19 + 231 + 1, "room");

    const char *const env_ok[] = {ok, NULL};
    const char *const env_bad[] = {too_long, NULL};
    struct cfg c = cfg_zero;
    struct buf problems = BUF_INIT;

    assert_int_equal(load(env_ok, &c, &problems, NULL), RC_OK);
    assert_int_equal(strlen(c.kafka.topics[TOPIC_DISPATCH_ASSESSMENT]), 249);
    cfg_release(&c);
    assert_int_equal(load(env_bad, &c, &problems, NULL), RC_EINVAL);
    assert_non_null(strstr(problems.data, "KAFKA_TOPIC_PREFIX: must be 1..230 characters"));
    buf_release(&problems);
}

static void
test_cfg_key_prefix_limits(void **state)
{
    (void)state;
    char ok[17 + 64 + 1];
    char too_long[17 + 65 + 1];
    memcpy(ok, "REDIS_KEY_PREFIX=", 17);
    memset(ok + 17, 'k', 64);
    ok[17 + 64] = '\0';
    memcpy(too_long, ok, 17);
    memset(too_long + 17, 'k', 65);
    too_long[17 + 65] = '\0';

    const char *const env_ok[] = {ok, NULL};
    const char *const env_bad[] = {too_long, NULL};
    struct cfg c = cfg_zero;
    assert_int_equal(load(env_ok, &c, NULL, NULL), RC_OK);
    assert_int_equal(strlen(c.redis.key_prefix), 64);
    cfg_release(&c);
    assert_int_equal(load(env_bad, &c, NULL, NULL), RC_EINVAL);
}

static void
test_cfg_kafka_props_map_names(void **state)
{
    (void)state;
    const char *const env[] = {
        "KAFKA_PROP_FETCH_WAIT_MAX_MS=100",      "KAFKA_PROP_SASL_PASSWORD=s3cret!",
        "KAFKA_PROP_security_protocol=SASL_SSL", "KAFKA_PROPX=ignored",
        "KAFKA_PROP_SASL_USERNAME=bob=builder",  NULL};
    struct cfg c = cfg_zero;
    struct buf problems = BUF_INIT;

    assert_int_equal(load(env, &c, &problems, NULL), RC_OK);
    assert_int_equal(c.kafka.n_props, 4);
    assert_string_equal(c.kafka.prop_names[0], "fetch.wait.max.ms");
    assert_string_equal(c.kafka.prop_values[0], "100");
    assert_string_equal(c.kafka.prop_names[1], "sasl.password");
    assert_string_equal(c.kafka.prop_values[1], "s3cret!");
    assert_string_equal(c.kafka.prop_names[2], "security.protocol");
    assert_string_equal(c.kafka.prop_values[2], "SASL_SSL");
    assert_string_equal(c.kafka.prop_names[3], "sasl.username");
    assert_string_equal(c.kafka.prop_values[3], "bob=builder");
    cfg_release(&c);
    assert_null(c.kafka.prop_names);
    assert_int_equal(c.kafka.n_props, 0);
    buf_release(&problems);
}

static void
test_cfg_kafka_prop_twice_is_a_problem(void **state)
{
    (void)state;
    const char *const env[] = {"KAFKA_PROP_CLIENT_ID=a", "KAFKA_PROP_client_id=b", NULL};
    struct cfg c = cfg_zero;
    struct buf problems = BUF_INIT;

    assert_int_equal(load(env, &c, &problems, NULL), RC_EINVAL);
    assert_int_equal(count_lines(problems.data), 1);
    assert_non_null(strstr(problems.data, "KAFKA_PROP_client_id: sets client.id"));
    buf_release(&problems);
}

static void
test_cfg_print_redacts_secrets(void **state)
{
    (void)state;
    const char *const env[] = {"REDIS_URL=redis://:hunter2@db.local:6380/2",
                               "KAFKA_PROP_SASL_PASSWORD=pw-one",
                               "KAFKA_PROP_SSL_KEY_PEM=pem-two",
                               "KAFKA_PROP_SASL_OAUTHBEARER_CLIENT_SECRET=secret-three",
                               "KAFKA_PROP_SSL_KEY=key-four",
                               "KAFKA_PROP_CLIENT_ID=visible",
                               "AGENT_POLL_INTERVAL=0.25",
                               NULL};
    struct cfg c = cfg_zero;

    assert_int_equal(load(env, &c, NULL, NULL), RC_OK);
    assert_string_equal(c.redis.password, "hunter2");
    char *text = printed(&c);
    assert_null(strstr(text, "hunter2"));
    assert_null(strstr(text, "pw-one"));
    assert_null(strstr(text, "pem-two"));
    assert_null(strstr(text, "secret-three"));
    assert_null(strstr(text, "key-four"));
    assert_non_null(strstr(text, "\nREDIS_URL=redis://:***@db.local:6380/2\n"));
    assert_non_null(strstr(text, "\nKAFKA_PROP_SASL_PASSWORD=***\n"));
    assert_non_null(strstr(text, "\nKAFKA_PROP_SSL_KEY_PEM=***\n"));
    assert_non_null(strstr(text, "\nKAFKA_PROP_SASL_OAUTHBEARER_CLIENT_SECRET=***\n"));
    assert_non_null(strstr(text, "\nKAFKA_PROP_SSL_KEY=***\n"));
    assert_non_null(strstr(text, "\nKAFKA_PROP_CLIENT_ID=visible\n"));
    assert_non_null(strstr(text, "\nAGENT_POLL_INTERVAL=0.25\n"));
    free(text);
    cfg_release(&c);

    /* A bad URL's problem line hides the password too. */
    const char *const bad[] = {"REDIS_URL=redis://user:hunter2@db.local:0/2", NULL};
    struct buf problems = BUF_INIT;
    assert_int_equal(load(bad, &c, &problems, NULL), RC_EINVAL);
    assert_null(strstr(problems.data, "hunter2"));
    assert_non_null(strstr(problems.data, "redis://user:***@db.local:0/2"));
    buf_release(&problems);
}

static void
test_cfg_print_lists_every_variable_in_order(void **state)
{
    (void)state;
    struct cfg c = cfg_zero;
    assert_int_equal(cfg_load(&c, NULL, NULL, NULL), RC_OK);
    char *text = printed(&c);
    static const char want[] = "KAFKA_BROKERS=127.0.0.1:9092\n"
                               "KAFKA_GROUP=research-coordinator\n"
                               "KAFKA_TOPIC_PREFIX=research.\n"
                               "REDIS_URL=redis://127.0.0.1:6379/0\n"
                               "REDIS_KEY_PREFIX=rc:\n"
                               "REDIS_TIMEOUT_MS=2000\n"
                               "REDIS_WAIT_REPLICAS=0\n"
                               "AGENT_POLL_INTERVAL=2\n"
                               "AGENT_MAX_CONCURRENT_RESEARCHES=0\n"
                               "AGENT_CONCURRENCY_BUFFER=1\n"
                               "AGENT_WORKER_TIMEOUT=15\n"
                               "AGENT_DISPATCH_TIMEOUT=60\n"
                               "AGENT_MAX_ATTEMPTS=3\n"
                               "AGENT_WAIT_TIMEOUT=0\n"
                               "AGENT_PHASE_TIMEOUT_DESIGN=0\n"
                               "AGENT_PHASE_TIMEOUT_TRAINING=0\n"
                               "AGENT_PHASE_TIMEOUT_BACKTEST=0\n"
                               "AGENT_PHASE_TIMEOUT_ASSESSMENT=0\n"
                               "AGENT_DAILY_BUDGET=20\n"
                               "RESEARCH_RETENTION=604800\n"
                               "AGENT_MODEL_PRICES=claude-opus-4-5=5/25,claude-sonnet-4-5=3/15,"
                               "claude-haiku-4-5=1/5\n"
                               "TRAINING_GATE_MIN_ACCURACY=0.1\n"
                               "TRAINING_GATE_MAX_LOSS=0.8\n"
                               "TRAINING_GATE_MIN_LOSS_DECREASE=-0.5\n"
                               "TRAINING_GATE_MIN_DIRECTIONAL_ACCURACY=0.5\n"
                               "BACKTEST_GATE_MIN_WIN_RATE=0.1\n"
                               "BACKTEST_GATE_MAX_DRAWDOWN=0.4\n"
                               "BACKTEST_GATE_MIN_SHARPE=-0.5\n"
                               "BACKTEST_GATE_MIN_NET_RETURN=0\n"
                               "BACKTEST_GATE_MIN_TRADES=5\n"
                               "LOG_LEVEL=info\n"
                               "METRICS_ADDR=\n";
    assert_string_equal(text, want);
    free(text);
    cfg_release(&c);
}

static void
test_cfg_usage_lists_every_variable(void **state)
{
    (void)state;
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    assert_non_null(f);
    cfg_usage(f);
    fclose(f);

    static const char *const names[] = {
        "KAFKA_BROKERS",
        "KAFKA_TOPIC_PREFIX",
        "KAFKA_PROP_<NAME>",
        "REDIS_URL",
        "REDIS_TIMEOUT_MS",
        "AGENT_POLL_INTERVAL",
        "AGENT_DAILY_BUDGET",
        "RESEARCH_RETENTION",
        "AGENT_MODEL_PRICES",
        "TRAINING_GATE_MIN_DIRECTIONAL_ACCURACY",
        "BACKTEST_GATE_MIN_TRADES",
        "LOG_LEVEL",
    };
    for (size_t i = 0; i < N_OF(names); i++) {
        if (strstr(text, names[i]) == NULL) {
            fail_msg("case %s missing", names[i]);
        }
    }
    /* Aligned: the default column starts at the same offset on every line. */
    const char *line = text;
    long col = -1;
    while (*line != '\0') {
        const char *gap = strstr(line, "  ");
        const char *nl = strchr(line, '\n');
        assert_non_null(gap);
        assert_non_null(nl);
        while (*gap == ' ') {
            gap++;
        }
        if (col < 0) {
            col = gap - line;
        } else if (gap - line != col) {
            fail_msg("misaligned line: %.*s", (int)(nl - line), line);
        }
        line = nl + 1;
    }
    free(text);
}

struct url_case {
    const char *url;
    const char *host;
    int port;
    const char *unix_path;
    const char *password;
    int db;
};

static void
test_cfg_redis_url_accepted_forms(void **state)
{
    (void)state;
    static const struct url_case cases[] = {
        {"redis://127.0.0.1:6379/0", "127.0.0.1", 6379, NULL, NULL, 0},
        {"redis://localhost", "localhost", 6379, NULL, NULL, 0},
        {"redis://localhost/", "localhost", 6379, NULL, NULL, 0},
        {"redis://cache:7000", "cache", 7000, NULL, NULL, 0},
        {"redis://cache/5", "cache", 6379, NULL, NULL, 5},
        {"redis://:pw@cache:6380/2", "cache", 6380, NULL, "pw", 2},
        {"redis://user:p%40ss%2Fw@cache", "cache", 6379, NULL, "p@ss/w", 0},
        {"redis://:p@ss@cache", "cache", 6379, NULL, "p@ss", 0},
        {"redis://:@cache", "cache", 6379, NULL, NULL, 0},
        {"REDIS://Cache-1.example_x:1/15", "Cache-1.example_x", 1, NULL, NULL, 15},
        {"redis://[::1]:6390/1", "::1", 6390, NULL, NULL, 1},
        {"redis://[::1]", "::1", 6379, NULL, NULL, 0},
        {"redis://h:65535", "h", 65535, NULL, NULL, 0},
        {"unix:///run/redis/redis.sock", NULL, 0, "/run/redis/redis.sock", NULL, 0},
        {"unix:///tmp/r.sock?db=3", NULL, 0, "/tmp/r.sock", NULL, 3},
    };
    for (size_t i = 0; i < N_OF(cases); i++) {
        const struct url_case *uc = &cases[i];
        struct cfg_redis r = {0};
        struct rc_err err = RC_ERR_INIT;
        if (cfg_parse_redis_url(uc->url, &r, &err) != RC_OK) {
            fail_msg("case %s: %s", uc->url, err.msg);
        }
        bool same =
            (uc->host == NULL ? r.host == NULL : r.host != NULL && strcmp(r.host, uc->host) == 0) &&
            (uc->unix_path == NULL
                 ? r.unix_path == NULL
                 : r.unix_path != NULL && strcmp(r.unix_path, uc->unix_path) == 0) &&
            (uc->password == NULL ? r.password == NULL
                                  : r.password != NULL && strcmp(r.password, uc->password) == 0) &&
            r.db == uc->db && (uc->unix_path != NULL || r.port == uc->port);
        if (!same) {
            fail_msg("case %s: host=%s port=%d unix=%s db=%d", uc->url, r.host ? r.host : "(null)",
                     r.port, r.unix_path ? r.unix_path : "(null)", r.db);
        }
        cfg_redis_release(&r);
    }
}

/* Contract §8: the user name is kept (AUTH user pass), and redis+sentinel:// names the
 * Sentinels and the primary's name. */
static void
test_cfg_redis_url_user_and_sentinels(void **state)
{
    (void)state;
    struct cfg_redis r = {0};
    struct rc_err err = RC_ERR_INIT;
    assert_int_equal(cfg_parse_redis_url("redis://coord:s%3Acret@db:6380/2", &r, &err), RC_OK);
    assert_string_equal(r.user, "coord");
    assert_string_equal(r.password, "s:cret");
    assert_string_equal(r.host, "db");
    assert_int_equal(r.port, 6380);
    assert_int_equal(r.db, 2);
    cfg_redis_release(&r);

    assert_int_equal(cfg_parse_redis_url("redis+sentinel://u:p@s1:26379,s2,[::1]:26380/mymaster/3",
                                         &r, &err),
                     RC_OK);
    assert_null(r.host);
    assert_null(r.unix_path);
    assert_string_equal(r.user, "u");
    assert_string_equal(r.password, "p");
    assert_int_equal(r.n_sentinels, 3);
    assert_string_equal(r.sentinels[0].host, "s1");
    assert_int_equal(r.sentinels[0].port, 26379);
    assert_string_equal(r.sentinels[1].host, "s2");
    assert_int_equal(r.sentinels[1].port, 6379);
    assert_string_equal(r.sentinels[2].host, "::1");
    assert_int_equal(r.sentinels[2].port, 26380);
    assert_string_equal(r.master_name, "mymaster");
    assert_int_equal(r.db, 3);
    struct cfg_redis copy = {0};
    cfg_redis_copy(&copy, &r);
    cfg_redis_release(&r);
    assert_string_equal(copy.sentinels[2].host, "::1");
    assert_string_equal(copy.master_name, "mymaster");
    cfg_redis_release(&copy);

    assert_int_equal(cfg_parse_redis_url("REDIS+SENTINEL://127.0.0.1:26379/m", &r, &err), RC_OK);
    assert_null(r.password);
    assert_int_equal(r.db, 0);
    cfg_redis_release(&r);

    static const struct {
        const char *url;
        const char *rule;
    } bad[] = {
        {"redis+sentinel://s1:26379", "needs /<master name>"},
        {"redis+sentinel://s1:26379/", "needs /<master name>"},
        {"redis+sentinel:///m", "no Sentinel"},
        {"redis+sentinel://s1:26379,/m", "host is missing"},
        {"redis+sentinel://s1:0/m", "port must be"},
        {"redis+sentinel://s1/my master", "master name"},
        {"redis+sentinel://s1/m/x", "db must be an integer"},
    };
    for (size_t i = 0; i < N_OF(bad); i++) {
        struct cfg_redis b = {0};
        if (cfg_parse_redis_url(bad[i].url, &b, &err) != RC_EINVAL ||
            strstr(err.msg, bad[i].rule) == NULL) {
            fail_msg("case %s: \"%s\"", bad[i].url, err.msg);
        }
        assert_int_equal(b.n_sentinels, 0);
    }
}

static void
test_cfg_redis_url_rejected_forms(void **state)
{
    (void)state;
    static const struct {
        const char *url;
        const char *rule; /* a piece of err->msg */
    } cases[] = {
        {"", "must be redis://"},
        {"http://h:6379", "must be redis://"},
        {"rediss://h:6379", "TLS"},
        {"redis://", "host is missing"},
        {"redis://:6379", "host is missing"},
        {"redis://h:", "port must be an integer 1..65535"},
        {"redis://h:abc", "port must be an integer 1..65535"},
        {"redis://h:0", "port must be an integer 1..65535"},
        {"redis://h:65536", "port must be an integer 1..65535"},
        {"redis://h:99999999999999999999", "port must be an integer 1..65535"},
        {"redis://h:-1", "port must be an integer 1..65535"},
        {"redis://h:6379/x", "db must be an integer"},
        {"redis://h:6379/-1", "db must be an integer"},
        {"redis://h:6379/0?x=1", "db must be an integer"},
        {"redis://h/99999999999", "db must be an integer"},
        {"redis://pw@h", "credentials"},
        {"redis://:bad%zzpw@h", "%-escape"},
        {"redis://:bad%@h", "%-escape"},
        {"redis://h h:6379", "bad character"},
        {"redis://[::1:6379", "IPv6"},
        {"redis://[::1]x:6379", "IPv6"},
        {"unix://relative.sock", "absolute"},
        {"unix:///tmp/r.sock?db=x", "db must be an integer"},
        {"unix:///tmp/r.sock?password=x", "only ?db=N"},
        {"unix:///tmp/"
         "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
         "aaaaaaaaaaaaaaaaaaaaaaaaaa.sock",
         "at most"},
    };
    for (size_t i = 0; i < N_OF(cases); i++) {
        struct cfg_redis r = {0};
        struct rc_err err = RC_ERR_INIT;
        r.port = -7; /* untouched on failure */
        if (cfg_parse_redis_url(cases[i].url, &r, &err) != RC_EINVAL) {
            fail_msg("case %s: accepted", cases[i].url);
        }
        if (err.rc != RC_EINVAL || strstr(err.msg, cases[i].rule) == NULL) {
            fail_msg("case %s: err \"%s\"", cases[i].url, err.msg);
        }
        if (r.host != NULL || r.unix_path != NULL || r.password != NULL || r.port != -7) {
            fail_msg("case %s: out written on failure", cases[i].url);
        }
    }
}

static void
test_cfg_metrics_addr_forms(void **state)
{
    (void)state;
    static const char *const good[] = {"METRICS_ADDR=127.0.0.1:9464", "METRICS_ADDR=[::1]:9464",
                                       "METRICS_ADDR=metrics.local:1"};
    for (size_t i = 0; i < N_OF(good); i++) {
        char *envp[] = {(char *)(uintptr_t)good[i], NULL};
        struct cfg c = CFG_INIT;
        struct rc_err err = RC_ERR_INIT;
        if (cfg_load(&c, envp, NULL, &err) != RC_OK) {
            fail_msg("%s refused: %s", good[i], err.msg);
        }
        assert_string_equal(c.metrics_addr, strchr(good[i], '=') + 1);
        cfg_release(&c);
    }
    /* Unset: off. */
    struct cfg c = CFG_INIT;
    struct rc_err err = RC_ERR_INIT;
    assert_int_equal(cfg_load(&c, NULL, NULL, &err), RC_OK);
    assert_null(c.metrics_addr);
    cfg_release(&c);
}

static void
test_topic_suffixes(void **state)
{
    (void)state;
    assert_string_equal(topic_suffix(TOPIC_TRIGGERS), "triggers");
    assert_string_equal(topic_suffix(TOPIC_COMPLETIONS), "completions");
    assert_string_equal(topic_suffix(TOPIC_DISPATCH_DESIGN), "dispatch.design");
    assert_string_equal(topic_suffix(TOPIC_DISPATCH_TRAINING), "dispatch.training");
    assert_string_equal(topic_suffix(TOPIC_DISPATCH_BACKTEST), "dispatch.backtest");
    assert_string_equal(topic_suffix(TOPIC_DISPATCH_ASSESSMENT), "dispatch.assessment");
    assert_string_equal(topic_suffix(TOPIC_EVENTS), "events");
    assert_string_equal(topic_suffix(TOPIC_DEADLETTER), "deadletter");
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cfg_defaults_without_environment),
        cmocka_unit_test(test_cfg_null_environment_gives_defaults),
        cmocka_unit_test(test_cfg_empty_value_counts_as_unset),
        cmocka_unit_test(test_cfg_reads_every_variable),
        cmocka_unit_test(test_cfg_seconds_accept_fractions),
        cmocka_unit_test(test_cfg_bad_value_names_its_variable),
        cmocka_unit_test(test_cfg_problem_line_states_rule_and_value),
        cmocka_unit_test(test_cfg_reports_every_problem),
        cmocka_unit_test(test_cfg_topic_prefix_limits),
        cmocka_unit_test(test_cfg_key_prefix_limits),
        cmocka_unit_test(test_cfg_kafka_props_map_names),
        cmocka_unit_test(test_cfg_kafka_prop_twice_is_a_problem),
        cmocka_unit_test(test_cfg_print_redacts_secrets),
        cmocka_unit_test(test_cfg_print_lists_every_variable_in_order),
        cmocka_unit_test(test_cfg_usage_lists_every_variable),
        cmocka_unit_test(test_cfg_redis_url_accepted_forms),
        cmocka_unit_test(test_cfg_metrics_addr_forms),
        cmocka_unit_test(test_cfg_redis_url_rejected_forms),
        cmocka_unit_test(test_cfg_redis_url_user_and_sentinels),
        cmocka_unit_test(test_topic_suffixes),
    };
    return cmocka_run_group_tests_name("cfg", tests, NULL, NULL);
}
