/* SPDX-License-Identifier: MIT
 * it_cli: the binaries' command lines and start-up checks: a bad configuration is refused
 * with exit 78 and one line per bad variable, --help and --print-config (secrets redacted),
 * a property librdkafka refuses, usage errors of the tools. One env for the whole group. */
#include "tests/support/test.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tests/support/it_env.h"

#define EXIT_WAIT_MS 20000

/* Run `argv` named `name` with `extra_env` to its exit; returns the exit status and its
 * output (caller frees). */
static int
run(struct it_env *env, const char *name, const char *const argv[], const char *const extra_env[],
    char **log)
{
    return it_env_run(env, name, argv, extra_env, EXIT_WAIT_MS, log);
}

static void
test_cli_bad_configuration_names_every_variable(void **state)
{
    struct it_env *env = *state;
    const char *const argv[] = {"coordinator", NULL};
    const char *const bad[] = {"AGENT_POLL_INTERVAL=abc", "REDIS_URL=http://x",
                               "AGENT_MAX_ATTEMPTS=0",    "TRAINING_GATE_MIN_ACCURACY=lots",
                               "LOG_LEVEL=loud",          NULL};
    char *log = NULL;
    assert_int_equal(run(env, "bad-config", argv, bad, &log), 78);
    const char *names[] = {"AGENT_POLL_INTERVAL:",        "REDIS_URL:", "AGENT_MAX_ATTEMPTS:",
                           "TRAINING_GATE_MIN_ACCURACY:", "LOG_LEVEL:", "5 configuration problems"};
    for (size_t i = 0; i < N_OF(names); i++) {
        if (strstr(log, names[i]) == NULL) {
            fail_msg("no \"%s\" in:\n%s", names[i], log);
        }
    }
    free(log);
    /* Nothing was written: the coordinator never got as far as Redis. */
    char *instance = it_redis_hget(env, "rc:coordinator", "instance");
    assert_null(instance);
}

static void
test_cli_refused_kafka_property_names_the_variable(void **state)
{
    struct it_env *env = *state;
    const char *const argv[] = {"coordinator", NULL};
    const char *const bad[] = {"KAFKA_PROP_NO_SUCH_THING=1", NULL};
    char *log = NULL;
    assert_int_equal(run(env, "bad-prop", argv, bad, &log), 78);
    if (strstr(log, "KAFKA_PROP_NO_SUCH_THING") == NULL) {
        fail_msg("the variable is not named in:\n%s", log);
    }
    free(log);
}

static void
test_cli_help_and_print_config(void **state)
{
    struct it_env *env = *state;
    const char *const help[] = {"coordinator", "--help", NULL};
    char *log = NULL;
    assert_int_equal(run(env, "help", help, NULL, &log), 0);
    const char *vars[] = {"KAFKA_BROKERS",
                          "REDIS_URL",
                          "AGENT_POLL_INTERVAL",
                          "AGENT_DAILY_BUDGET",
                          "BACKTEST_GATE_MIN_TRADES",
                          "KAFKA_PROP_"};
    for (size_t i = 0; i < N_OF(vars); i++) {
        assert_non_null(strstr(log, vars[i]));
    }
    free(log);
    const char *const print[] = {"coordinator", "--print-config", NULL};
    const char *const secret[] = {"REDIS_URL=redis://:hunter2@127.0.0.1:1/0",
                                  "KAFKA_PROP_SASL_PASSWORD=hunter3", NULL};
    assert_int_equal(run(env, "print-config", print, secret, &log), 0);
    assert_null(strstr(log, "hunter2"));
    assert_null(strstr(log, "hunter3"));
    assert_non_null(strstr(log, "REDIS_URL=redis://:***@127.0.0.1:1/0"));
    assert_non_null(strstr(log, "AGENT_POLL_INTERVAL="));
    free(log);
    const char *const unknown[] = {"coordinator", "--frobnicate", NULL};
    assert_int_equal(run(env, "usage", unknown, NULL, &log), 64);
    free(log);
}

static void
test_cli_tools_help_and_usage_errors(void **state)
{
    struct it_env *env = *state;
    char *log = NULL;
    const char *const helps[][3] = {{"devbroker", "--help", NULL},
                                    {"stub-worker", "--help", NULL},
                                    {"researchctl", "--help", NULL}};
    for (size_t i = 0; i < 3; i++) {
        char name[64];
        snprintf(name, sizeof(name), "%s-help", helps[i][0]);
        assert_int_equal(run(env, name, helps[i], NULL, &log), 0);
        assert_non_null(strstr(log, "usage"));
        free(log);
    }
    const char *const no_type[] = {"stub-worker", NULL};
    assert_int_equal(run(env, "stub-no-type", no_type, NULL, &log), 64);
    free(log);
    const char *const no_brief[] = {"researchctl", "trigger", NULL};
    assert_int_equal(run(env, "trigger-no-brief", no_brief, NULL, &log), 64);
    assert_non_null(strstr(log, "--brief"));
    free(log);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cli_bad_configuration_names_every_variable),
        cmocka_unit_test(test_cli_refused_kafka_property_names_the_variable),
        cmocka_unit_test(test_cli_help_and_print_config),
        cmocka_unit_test(test_cli_tools_help_and_usage_errors),
    };
    return cmocka_run_group_tests_name("cli", tests, it_setup, it_teardown);
}
