/* SPDX-License-Identifier: MIT
 * it_rcw_exec: rcw-exec (librcworker) against the real coordinator, redis-server and dev
 * broker, its workers small sh scripts the test writes: all four phases through four rcw-exec
 * processes (the dispatch as JSON on stdin, the ids in the environment, progress in the
 * heartbeat), a failing script failing its research with its stderr's tail, an abort killing
 * the script's whole process group (SIGKILL after the grace when it ignores SIGTERM), and a
 * stop handing the running dispatch back as `released`; and the C example worker on
 * librcworker's API. */
#include "tests/support/test.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <hiredis/hiredis.h>

#include "common/buf.h"
#include "proto/json.h"
#include "tests/support/it_env.h"
#include "tests/support/it_runs.h"

#define WAIT_MS 20000

/* Write DIR/<name> with `body` (after a #!/bin/sh line) and make it executable; returns its
 * path (caller frees). */
static char *
script(struct it_env *env, const char *name, const char *body)
{
    struct buf path = BUF_INIT;
    buf_printf(&path, "%s/%s", it_env_dir(env), name);
    FILE *f = fopen(path.data, "w");
    assert_non_null(f);
    fprintf(f, "#!/bin/sh\nD='%s'\n%s\n", it_env_dir(env), body);
    assert_int_equal(fclose(f), 0);
    assert_int_equal(chmod(path.data, 0755), 0);
    return buf_detach(&path);
}

/* Start `rcw-exec --type type --id <id> <extra> -- <path>` as child "rcw-<id>" and wait for
 * its ready line. */
static pid_t
start_exec(struct it_env *env, const char *type, const char *id, const char *path,
           const char *extra)
{
    char name[64];
    snprintf(name, sizeof(name), "rcw-%s", id);
    const char *argv[16];
    size_t n = 0;
    argv[n++] = "rcw-exec";
    argv[n++] = "--type";
    argv[n++] = type;
    argv[n++] = "--id";
    argv[n++] = id;
    argv[n++] = "--heartbeat-ms";
    argv[n++] = "200";
    argv[n++] = "--verbose";
    if (extra != NULL) {
        argv[n++] = extra;
    }
    argv[n++] = "--";
    argv[n++] = path;
    argv[n++] = NULL;
    pid_t pid = it_env_spawn(env, name, argv, NULL);
    char ready[64];
    snprintf(ready, sizeof(ready), "1 %s workers ready", type);
    it_log_wait(env, name, ready, WAIT_MS);
    return pid;
}

static char *
trigger_ok(struct it_env *env, const char *request_id, const char *options_json)
{
    struct buf opts = BUF_INIT;
    struct trigger t = {.request_id = request_id, .brief = "momentum on BTC 1h bars"};
    if (options_json != NULL) {
        assert_int_equal(json_to_msgpack(options_json, strlen(options_json), &opts, NULL), RC_OK);
        t.options = opts.data;
        t.options_len = opts.len;
    }
    it_send_trigger(env, &t);
    const struct event *ev = it_event_wait_request(env, EVENT_ACCEPTED, request_id, WAIT_MS);
    assert_non_null(ev->research_id);
    buf_release(&opts);
    return strdup(ev->research_id);
}

/* A whole file's text (caller frees), NULL when it cannot be read. */
static char *
slurp(struct it_env *env, const char *name)
{
    struct buf path = BUF_INIT;
    buf_printf(&path, "%s/%s", it_env_dir(env), name);
    FILE *f = fopen(path.data, "r");
    buf_release(&path);
    if (f == NULL) {
        return NULL;
    }
    struct buf text = BUF_INIT;
    char chunk[4096];
    size_t n;
    while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0) {
        buf_append(&text, chunk, n);
    }
    fclose(f);
    if (text.data == NULL) {
        buf_puts(&text, "");
    }
    return buf_detach(&text);
}

struct file_wait {
    struct it_env *env;
    const char *name;
};

static bool
file_is_there(void *arg)
{
    struct file_wait *fw = arg;
    char *text = slurp(fw->env, fw->name);
    bool there = text != NULL && text[0] != '\0';
    free(text);
    return there;
}

static void
wait_file(struct it_env *env, const char *name)
{
    struct file_wait fw = {env, name};
    if (!it_wait_until(file_is_there, &fw, WAIT_MS)) {
        it_fail(env, "%s never written", name);
    }
}

static void
touch(struct it_env *env, const char *name)
{
    struct buf path = BUF_INIT;
    buf_printf(&path, "%s/%s", it_env_dir(env), name);
    FILE *f = fopen(path.data, "w");
    assert_non_null(f);
    fputs("go\n", f);
    fclose(f);
    buf_release(&path);
}

struct hb_wait {
    struct it_env *env;
    const char *key;
    const char *field;
    const char *value;
};

/* The field equals `value`; or, when `value` ends with '*', starts with what precedes it. */
static bool
hb_has(void *arg)
{
    struct hb_wait *h = arg;
    char *v = it_redis_hget(h->env, h->key, h->field);
    size_t n = strlen(h->value);
    bool ok = v != NULL && (n > 0 && h->value[n - 1] == '*' ? strncmp(v, h->value, n - 1) == 0
                                                             : strcmp(v, h->value) == 0);
    free(v);
    return ok;
}

static void
wait_hb(struct it_env *env, const char *worker_id, const char *field, const char *value)
{
    char key[128];
    snprintf(key, sizeof(key), "%sworker:%s", it_env_key_prefix(env), worker_id);
    struct hb_wait h = {env, key, field, value};
    if (!it_wait_until(hb_has, &h, WAIT_MS)) {
        char *v = it_redis_hget(env, key, field);
        it_fail(env, "%s %s never became '%s' (last '%s')", key, field, value, v ? v : "(nil)");
        free(v);
    }
}

/* Gone: no such process, or a zombie nobody reaped yet (it runs no more). */
static bool
pid_gone(void *arg)
{
    pid_t pid = *(pid_t *)arg;
    if (kill(pid, 0) != 0 && errno == ESRCH) {
        return true;
    }
    char path[64];
    snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
    FILE *f = fopen(path, "r");
    if (f == NULL) {
        return true;
    }
    char line[512] = "";
    char *got = fgets(line, sizeof(line), f);
    fclose(f);
    const char *close_paren = got != NULL ? strrchr(line, ')') : NULL;
    return close_paren != NULL && close_paren[1] == ' ' && close_paren[2] == 'Z';
}

static const char design_body[] =
    "cat > \"$D/design.in\"\n"
    "echo \"$RC_RESEARCH_ID $RC_DISPATCH_ID $RC_ATTEMPT $RC_PHASE $RC_WORKER_ID\" > "
    "\"$D/design.env\"\n"
    "echo 'progress 0.5 drafting' >&\"$RC_PROGRESS_FD\"\n"
    "printf '{\"strategy_name\": \"s_%s\", \"strategy_path\": \"/s/%s.py\", \"model\": \"m-1\","
    " \"input_tokens\": 10, \"output_tokens\": 5}' \"$RC_RESEARCH_ID\" \"$RC_RESEARCH_ID\"\n";

static const char assessment_body[] = "cat > \"$D/assessment.in\"\n"
                                      "echo '{\"verdict\": \"promising\", \"model\": \"m-1\"}'\n";

/* Training: reports progress, then waits for the test's go-ahead (bounded: 20 s). */
static const char training_body[] =
    "cat > \"$D/training.in\"\n"
    "echo 'progress 0.4 epoch 4/10' >&\"$RC_PROGRESS_FD\"\n"
    "i=0; while [ ! -f \"$D/go\" ] && [ $i -lt 200 ]; do sleep 0.1; i=$((i+1)); done\n"
    "echo '{\"accuracy\": 0.62, \"final_loss\": 0.31, \"initial_loss\": 0.92,"
    " \"model_path\": \"/m/1.bin\"}'\n";

static void
start_all(struct it_env *env, const char *training, const char *training_extra)
{
    /* The backtest worker is the example of examples/exec/. */
    char *paths[4] = {script(env, "design.sh", design_body),
                      script(env, "training.sh", training != NULL ? training : training_body),
                      strdup(RC_SOURCE_DIR "/examples/exec/backtest.sh"),
                      script(env, "assessment.sh", assessment_body)};
    const char *types[4] = {"design", "training", "backtest", "assessment"};
    for (int t = 0; t < 4; t++) {
        char id[64];
        snprintf(id, sizeof(id), "x-%s", types[t]);
        start_exec(env, types[t], id, paths[t], t == 1 ? training_extra : NULL);
        free(paths[t]);
    }
}

static void
test_rcw_exec_runs_every_phase(void **state)
{
    struct it_env *env = *state;
    start_all(env, NULL, NULL);
    it_env_start_coordinator(env, NULL);
    char *id = trigger_ok(env, "req-exec", "{\"symbol\": \"BTC\", \"bars\": [1, 2]}");

    /* Training runs: its progress reaches the heartbeat; then it may finish. */
    wait_hb(env, "x-training", "state", "busy");
    wait_hb(env, "x-training", "progress", "0.4");
    wait_hb(env, "x-training", "step", "epoch 4/10");
    touch(env, "go");
    it_research_wait(env, id, "status", "completed", WAIT_MS);

    char *v = it_research_hget(env, id, "design.strategy_name");
    char want[160];
    snprintf(want, sizeof(want), "s_%s", id);
    assert_non_null(v);
    assert_string_equal(v, want);
    free(v);
    v = it_research_hget(env, id, "verdict");
    assert_non_null(v);
    assert_string_equal(v, "promising");
    free(v);
    /* Idle again: the progress fields are gone. */
    wait_hb(env, "x-training", "state", "idle");
    char key[128];
    snprintf(key, sizeof(key), "%sworker:x-training", it_env_key_prefix(env));
    v = it_redis_hget(env, key, "progress");
    assert_null(v);

    /* What the programs got: the dispatch as JSON with options, their ids in the env. */
    char *in = slurp(env, "design.in");
    assert_non_null(in);
    assert_non_null(strstr(in, "\"params\":{\"brief\":\"momentum on BTC 1h bars\""));
    assert_non_null(strstr(in, ",\"options\":{\"symbol\":\"BTC\",\"bars\":[1,2]}}"));
    free(in);
    in = slurp(env, "assessment.in");
    assert_non_null(in);
    assert_non_null(strstr(in, "\"training\":{"));
    assert_non_null(strstr(in, "\"accuracy\":0.62"));
    free(in);
    char *envs = slurp(env, "design.env");
    assert_non_null(envs);
    const struct dispatch *d = it_dispatch_wait(env, WORKER_DESIGN, id, 1, WAIT_MS);
    char line[512];
    snprintf(line, sizeof(line), "%s %s 1 designing x-design\n", id, d->dispatch_id);
    assert_string_equal(envs, line);
    free(envs);
    it_log_wait(env, "rcw-x-backtest", "backtesting BTC for", 0); /* it read the options */
    free(id);
}

static void
test_rcw_exec_failure_carries_the_stderr_tail(void **state)
{
    struct it_env *env = *state;
    /* Fails, until told to give a result that breaks the phase's rules. */
    char *path =
        script(env, "design.sh",
               "cat > /dev/null\n"
               "if [ -f \"$D/bad\" ]; then echo '{\"model\": \"m\"}'; exit 0; fi\n"
               "i=0; while [ $i -lt 50 ]; do echo \"noise line $i\" >&2; i=$((i+1)); done\n"
               "echo 'boom: no data for BTC' >&2\n"
               "exit 3\n");
    start_exec(env, "design", "x-design", path, NULL);
    free(path);
    it_env_start_coordinator(env, NULL);
    char *id = trigger_ok(env, "req-fail", NULL);
    const struct event *ev = it_event_wait(env, EVENT_FAILED, id, WAIT_MS);
    assert_int_equal(ev->phase, PHASE_DESIGNING);
    assert_non_null(ev->error);
    size_t len = strlen(ev->error);
    assert_true(len <= 400);
    const char *end = "boom: no data for BTC";
    assert_true(len > strlen(end));
    assert_string_equal(ev->error + len - strlen(end), end);
    assert_null(strstr(ev->error, "noise line 0\n")); /* only the tail */

    /* A result that breaks the phase's rules is failed by rcw-exec, not sent. */
    touch(env, "bad");
    char *id2 = trigger_ok(env, "req-bad", NULL);
    ev = it_event_wait(env, EVENT_FAILED, id2, WAIT_MS);
    assert_string_equal(ev->error, "bad result: strategy_name: required");
    free(id2);
    free(id);
}

static void
test_rcw_exec_abort_kills_the_process_group(void **state)
{
    struct it_env *env = *state;
    /* It ignores SIGTERM (and so does its child): only the SIGKILL after the grace ends it. */
    start_all(env,
              "trap '' TERM\n"
              "cat > /dev/null\n"
              "sleep 60 &\n"
              "echo $! > \"$D/child.pid\"\n"
              "wait\n",
              "--kill-grace-ms=500");
    it_env_start_coordinator(env, NULL);
    char *id = trigger_ok(env, "req-abort", NULL);
    wait_hb(env, "x-training", "state", "busy");
    wait_file(env, "child.pid");
    char *text = slurp(env, "child.pid");
    pid_t child = (pid_t)atoi(text);
    free(text);
    assert_true(child > 0);
    assert_false(pid_gone(&child));

    struct cancel c = {.research_id = id, .request_id = "cancel-1"};
    it_send_cancel(env, &c);
    it_event_wait(env, EVENT_CANCELLED, id, WAIT_MS);
    wait_hb(env, "x-training", "state", "idle");
    if (!it_wait_until(pid_gone, &child, WAIT_MS)) {
        it_fail(env, "the script's child %d outlived the abort", (int)child);
    }
    it_log_wait(env, "rcw-x-training", "aborted", WAIT_MS);
    free(id);
}

static void
test_rcw_exec_stop_releases_the_running_dispatch(void **state)
{
    struct it_env *env = *state;
    start_all(env, NULL, "--grace-ms=300");
    it_env_start_coordinator(env, NULL);
    char *id = trigger_ok(env, "req-release", NULL);
    const struct dispatch *d = it_dispatch_wait(env, WORKER_TRAINING, id, 1, WAIT_MS);
    wait_hb(env, "x-training", "progress", "0.4");

    /* Stopped mid-training: draining, then `released` after the grace, and a clean exit. */
    pid_t training = it_env_pid(env, "rcw-x-training");
    assert_int_equal(it_env_kill(env, training, SIGTERM), 0);
    int status = -1;
    assert_int_equal(it_env_wait_exit(env, training, WAIT_MS, &status), 0);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
    it_log_wait(env, "rcw-x-training", "released", 0);
    wait_hb(env, "x-training", "state", "draining"); /* its last word: takes nothing new */

    /* The coordinator sends the phase on at once to the next free training worker. */
    char *path = script(env, "training2.sh", training_body);
    touch(env, "go");
    start_exec(env, "training", "y-training", path, NULL);
    free(path);
    const struct event *ev = it_event_wait(env, EVENT_REDISPATCHED, id, WAIT_MS);
    assert_string_equal(ev->reason, "released");
    assert_string_equal(ev->old_dispatch_id, d->dispatch_id);
    it_research_wait(env, id, "status", "completed", WAIT_MS);
    free(id);
}

/* The C example (examples/c/training_worker.c) as the training worker beside stub workers:
 * librcworker's API end to end (progress steps and labels in its heartbeat, the result
 * built key by key). */
static void
test_rcw_exec_c_example_worker(void **state)
{
    struct it_env *env = *state;
    const char *const fast[] = {"--duration-ms", "20", NULL};
    it_env_start_workers(env, "design", 1, NULL, fast);
    it_env_start_workers(env, "backtest", 1, NULL, fast);
    it_env_start_workers(env, "assessment", 1, NULL, fast);
    const char *const argv[] = {"example-training-worker", "c-training-1", NULL};
    it_env_spawn(env, "example", argv, NULL);
    it_log_wait(env, "example", "1 training workers ready", WAIT_MS);
    wait_hb(env, "c-training-1", "labels", "example=1");
    it_env_start_coordinator(env, NULL);
    char *id = trigger_ok(env, "req-c", "{\"symbol\": \"ETH\"}");
    wait_hb(env, "c-training-1", "step", "epoch *"); /* shown by a periodic heartbeat */
    it_research_wait(env, id, "status", "completed", WAIT_MS);
    char *v = it_research_hget(env, id, "training.final_loss");
    assert_non_null(v);
    free(v);
    it_log_wait(env, "example", "options {\"symbol\":\"ETH\"}", 0);
    free(id);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_rcw_exec_runs_every_phase, it_setup, it_teardown),
        cmocka_unit_test_setup_teardown(test_rcw_exec_failure_carries_the_stderr_tail, it_setup,
                                        it_teardown),
        cmocka_unit_test_setup_teardown(test_rcw_exec_abort_kills_the_process_group, it_setup,
                                        it_teardown),
        cmocka_unit_test_setup_teardown(test_rcw_exec_stop_releases_the_running_dispatch, it_setup,
                                        it_teardown),
        cmocka_unit_test_setup_teardown(test_rcw_exec_c_example_worker, it_setup, it_teardown),
    };
    return IT_RUN_GROUP("rcw_exec", tests);
}
