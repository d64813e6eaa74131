/* SPDX-License-Identifier: MIT
 * rcw-exec: any program as a worker. librcworker (worker/rcw.h) keeps the protocol; each
 * dispatch runs the command given after `--` (execrun.c): the dispatch as JSON on its stdin,
 * its ids in the environment, progress lines on RC_PROGRESS_FD, its stdout a JSON result,
 * exit 0 completed, else failed with its stderr's tail. docs/workers.md. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/rc_err.h"
#include "common/toolopt.h"
#include "tools/rcw-exec/execrun.h"
#include "worker/rcw.h"

#define TOOL "rcw-exec"
#define MAX_GRACE_MS 3600000

enum opt_index {
    OPT_TYPE = 0,
    OPT_ID,
    OPT_ID_PREFIX,
    OPT_COUNT,
    OPT_GRACE_MS,
    OPT_KILL_GRACE_MS,
    OPT_HEARTBEAT_MS,
    OPT_HOST,
    OPT_LABELS,
    OPT_VERBOSE,
    OPT_HELP,
};

static const struct toolopt opt_table[] = {
    [OPT_TYPE] = {"type", "T", "worker type: design|training|backtest|assessment (required)"},
    [OPT_ID] = {"id", "ID", "the worker id (with --count 1; default: <prefix><type>-1)"},
    [OPT_ID_PREFIX] = {"id-prefix", "P", "worker ids are P<type>-<i>, i from 1 (default rcw-)"},
    [OPT_COUNT] = {"count", "N", "workers: dispatches run at once (default 1)"},
    [OPT_GRACE_MS] = {"grace-ms", "MS",
                      "on SIGTERM: wait this long for running commands, then release them "
                      "(default 10000); also SIGTERM to SIGKILL of an aborted command"},
    [OPT_KILL_GRACE_MS] = {"kill-grace-ms", "MS",
                           "SIGTERM to SIGKILL of an aborted command (default: --grace-ms)"},
    [OPT_HEARTBEAT_MS] = {"heartbeat-ms", "MS", "heartbeat period, <= 2000 (default 1000)"},
    [OPT_HOST] = {"host", "H", "heartbeat field host"},
    [OPT_LABELS] = {"labels", "L", "heartbeat field labels (<= 1 KiB, e.g. gpu=a100)"},
    [OPT_VERBOSE] = {"verbose", NULL, "log each dispatch started, completed or aborted"},
    [OPT_HELP] = {"help", NULL, "print this help and exit"},
};

static const char summary[] =
    "Run a command for each dispatch:  rcw-exec --type training -- python3 train.py\n"
    "stdin:  the dispatch as one JSON object: "
    "{\"v\":1,\"type\":\"dispatch\",...,\"params\":{...},\n"
    "        \"options\":{...}|null} (params as the phase has them; options repeated at the top)\n"
    "env:    RC_RESEARCH_ID RC_DISPATCH_ID RC_ATTEMPT RC_PHASE RC_WORKER_ID RC_WORKER_TYPE\n"
    "        RC_PROGRESS_FD (lines \"progress 0.4 epoch 4/10\" written there reach the heartbeat)\n"
    "stdout: the result, one JSON object; exit 0: completed (the result is checked first),\n"
    "        else failed with the last 400 bytes of stderr as the error\n"
    "An abort sends SIGTERM to the command's process group, SIGKILL after the kill grace.\n"
    "Configuration comes from the coordinator's environment: KAFKA_BROKERS,\n"
    "KAFKA_TOPIC_PREFIX, KAFKA_PROP_*, REDIS_URL, REDIS_KEY_PREFIX, REDIS_TIMEOUT_MS.";

struct opts {
    struct rcw_config cfg;
    int64_t kill_grace_ms; /* -1: as grace */
    bool help;
};

static enum rc_rc
on_option(void *ctx, size_t index, const char *arg, struct rc_err *err)
{
    struct opts *o = ctx;
    int64_t n = 0;
    enum rc_rc rc = RC_OK;

    switch ((enum opt_index)index) {
    case OPT_TYPE:
        o->cfg.type = arg;
        return RC_OK;
    case OPT_ID:
        o->cfg.id = arg;
        return RC_OK;
    case OPT_ID_PREFIX:
        o->cfg.id_prefix = arg;
        return RC_OK;
    case OPT_COUNT:
        rc = toolopt_int64(arg, 1, RCW_MAX_WORKERS, "--count", &n, err);
        o->cfg.count = (int)n;
        return rc;
    case OPT_GRACE_MS:
        rc = toolopt_int64(arg, 0, MAX_GRACE_MS, "--grace-ms", &n, err);
        o->cfg.shutdown_grace_ms = n == 0 ? -1 : n; /* 0: release at once */
        return rc;
    case OPT_KILL_GRACE_MS:
        return toolopt_int64(arg, 0, MAX_GRACE_MS, "--kill-grace-ms", &o->kill_grace_ms, err);
    case OPT_HEARTBEAT_MS:
        return toolopt_int64(arg, 10, 2000, "--heartbeat-ms", &o->cfg.heartbeat_ms, err);
    case OPT_HOST:
        o->cfg.host = arg;
        return RC_OK;
    case OPT_LABELS:
        o->cfg.labels = arg;
        return RC_OK;
    case OPT_VERBOSE:
        o->cfg.verbose = true;
        return RC_OK;
    case OPT_HELP:
        o->help = true;
        return RC_OK;
    }
    return rc_err_set(err, RC_EINVAL, "unhandled option %zu", index);
}

int
main(int argc, char **argv)
{
    struct opts o = {.cfg = {.log_name = TOOL}, .kill_grace_ms = -1};
    struct execrun x = {.spawn_mu = PTHREAD_MUTEX_INITIALIZER};
    struct rcw *w = NULL;
    struct rc_err err = RC_ERR_INIT;
    int next = argc;
    int status = RC_EXIT_FAILURE;
    static char path[4096];

    if (toolopt_parse_head(opt_table, N_OF(opt_table), argc, argv, on_option, &o, &next, &err) !=
        RC_OK) {
        fprintf(stderr, TOOL ": %s (try --help)\n", err.msg);
        return RC_EXIT_USAGE;
    }
    if (o.help) {
        toolopt_usage(stdout, TOOL " [options] -- command [args...]", summary, opt_table,
                      N_OF(opt_table));
        return RC_EXIT_OK;
    }
    if (o.cfg.type == NULL || next >= argc) {
        fprintf(stderr, TOOL ": %s (try --help)\n",
                o.cfg.type == NULL ? "--type is required" : "no command after the options");
        return RC_EXIT_USAGE;
    }
    if (!execrun_resolve(argv[next], getenv("PATH"), path, sizeof(path))) {
        fprintf(stderr, TOOL ": %s: command not found\n", argv[next]);
        return RC_EXIT_USAGE;
    }
    x.path = path;
    x.argv = argv + next;
    x.grace_ms = o.kill_grace_ms >= 0          ? o.kill_grace_ms
                 : o.cfg.shutdown_grace_ms > 0 ? o.cfg.shutdown_grace_ms
                 : o.cfg.shutdown_grace_ms < 0 ? 0
                                               : 10000;
    o.cfg.handler = execrun_handle;
    o.cfg.handler_arg = &x;
    if (rcw_signals_block(&err) != RC_OK) {
        fprintf(stderr, TOOL ": %s\n", err.msg);
        return RC_EXIT_FAILURE;
    }
    if (rcw_new(&w, &o.cfg, &err) != RC_OK) {
        fprintf(stderr, TOOL ": %s\n", err.msg);
        status = err.rc == RC_EINVAL ? RC_EXIT_CONFIG : RC_EXIT_FAILURE;
        goto out;
    }
    if (rcw_signals_start(w, &err) != RC_OK || rcw_run(w, &err) != RC_OK) {
        fprintf(stderr, TOOL ": %s\n", err.msg);
        goto out;
    }
    status = RC_EXIT_OK;
out:
    rcw_free(w);
    return status;
}
