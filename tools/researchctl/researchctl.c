/* SPDX-License-Identifier: MIT
 * researchctl: the operator's and upstream's command line (trigger, cancel, resume, retry,
 * follow, status, list, show, budget, workers, events). It reads state from Redis and changes
 * it only by publishing to Kafka: the coordinator stays the only writer. Settings come from
 * the coordinator's environment, which the global options before the command override. This
 * file is main: the global options, the command table and dispatch; each command lives in its
 * ctl_* module (ctl_request, ctl_resume, ctl_retry, ctl_follow, ctl_state, ctl_list,
 * ctl_budget, ctl_eventlog). */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "common/cfg.h"
#include "common/log.h"
#include "common/rc_err.h"
#include "tools/researchctl/ctl_cmd.h"
#include "tools/researchctl/ctl_eventlog.h"
#include "tools/researchctl/ctl_budget.h"
#include "tools/researchctl/ctl_follow.h"
#include "tools/researchctl/ctl_list.h"
#include "tools/researchctl/ctl_request.h"
#include "tools/researchctl/ctl_resume.h"
#include "tools/researchctl/ctl_retry.h"
#include "tools/researchctl/ctl_state.h"
#include "common/toolopt.h"

extern char **environ;

/* Every command, in the order of --help. */
static const struct ctl_command *(*const commands[])(void) = {
    ctl_request_trigger, ctl_request_cancel, ctl_resume_command,   ctl_retry_command,
    ctl_follow_command,  ctl_state_status,   ctl_list_command,     ctl_state_show,
    ctl_budget_command,  ctl_state_workers,  ctl_eventlog_command,
};

enum global_opt { G_BROKERS, G_REDIS_URL, G_KEY_PREFIX, G_TOPIC_PREFIX, G_HELP };

static const struct toolopt global_table[] = {
    [G_BROKERS] = {"brokers", "B", "Kafka bootstrap servers (overrides KAFKA_BROKERS)"},
    [G_REDIS_URL] = {"redis-url", "URL", "Redis URL without a password (overrides REDIS_URL)"},
    [G_KEY_PREFIX] = {"key-prefix", "P", "Redis key prefix (overrides REDIS_KEY_PREFIX)"},
    [G_TOPIC_PREFIX] = {"topic-prefix", "P", "Kafka topic prefix (overrides KAFKA_TOPIC_PREFIX)"},
    [G_HELP] = {"help", NULL, "show this help"},
};

/* The variable each global option overrides (cfg_load reads them afterwards). */
static const char *const global_vars[] = {
    [G_BROKERS] = "KAFKA_BROKERS",
    [G_REDIS_URL] = "REDIS_URL",
    [G_KEY_PREFIX] = "REDIS_KEY_PREFIX",
    [G_TOPIC_PREFIX] = "KAFKA_TOPIC_PREFIX",
};

/* What the global options say beyond the variables they set. */
struct globals {
    bool help;
    bool redis_url_given; /* --redis-url: REDIS_URL came from argv */
};

static enum rc_rc
global_opt(void *ctx, size_t index, const char *arg, struct rc_err *err)
{
    struct globals *g = ctx;
    if (index == G_HELP) {
        g->help = true;
        return RC_OK;
    }
    if (index == G_REDIS_URL) {
        g->redis_url_given = true;
    }
    if (setenv(global_vars[index], arg, 1) != 0) {
        return rc_err_sys(err, "--%s", global_table[index].name);
    }
    return RC_OK;
}

static void
usage(FILE *out)
{
    fprintf(out, "usage: " CTL_CMD_TOOL " [global options] <command> [options]\n\n"
                 "The research coordinator's command line: it reads state from Redis and changes\n"
                 "it only by publishing to Kafka.\n\ncommands:\n");
    for (size_t i = 0; i < N_OF(commands); i++) {
        const struct ctl_command *c = commands[i]();
        fprintf(out, "  %-8s  %s\n", c->name, c->summary);
    }
    fprintf(out, "\nglobal options (before the command):\n");
    for (size_t i = 0; i < N_OF(global_table); i++) {
        char label[48];
        snprintf(label, sizeof(label), "--%s%s%s", global_table[i].name,
                 global_table[i].arg != NULL ? " " : "",
                 global_table[i].arg != NULL ? global_table[i].arg : "");
        fprintf(out, "  %-20s  %s\n", label, global_table[i].help);
    }
    fprintf(out,
            "\nOther settings come from the coordinator's environment variables (KAFKA_PROP_*,\n"
            "REDIS_TIMEOUT_MS, AGENT_WORKER_TIMEOUT, AGENT_DAILY_BUDGET, ...).\n"
            "`" CTL_CMD_TOOL " <command> --help` describes a command. Exit status: 0 ok, 1 "
            "refused\nor not found, 64 usage, 69 Kafka or Redis unavailable, 78 bad "
            "configuration.\n");
}

/* Parse the command's options into o. RC_EINVAL (a usage error) after printing why. */
static enum rc_rc
parse_command(const struct ctl_command *cmd, int argc, char **argv, struct ctl_opts *o)
{
    const char *pos[1] = {NULL};
    size_t n_pos = 0;
    struct rc_err err = RC_ERR_INIT;
    enum rc_rc rc = toolopt_parse_pos(cmd->opts, cmd->n_opts, argc, argv, cmd->on_opt, o, pos,
                                      cmd->takes_id != CTL_ID_NONE ? 1 : 0, &n_pos, &err);
    if (rc == RC_OK && !o->help && n_pos == 0 && cmd->takes_id == CTL_ID_REQUIRED) {
        rc = rc_err_set(&err, RC_EINVAL, "missing <research_id>");
    } else if (rc == RC_OK && !o->help && n_pos == 1) {
        if (cmd->takes_id == CTL_ID_OPTIONAL && strcmp(pos[0], "-") == 0) {
            o->research_id = pos[0];
        } else {
            rc = ctl_cmd_id(pos[0], "<research_id>", &o->research_id, &err);
        }
    }
    if (rc == RC_OK && !o->help && cmd->check != NULL) {
        rc = cmd->check(o, &err);
    }
    if (rc != RC_OK) {
        fprintf(stderr, CTL_CMD_TOOL ": %s: %s\n", cmd->name, err.msg);
    }
    return rc;
}

int
main(int argc, char **argv)
{
    struct globals g = {false, false};
    int next = argc;
    struct rc_err err = RC_ERR_INIT;

    /* A CLI says one line per problem, its own; what the libraries log is for errors only. */
    log_set_level(LOG_ERROR);
    if (toolopt_parse_head(global_table, N_OF(global_table), argc, argv, global_opt, &g, &next,
                           &err) != RC_OK) {
        fprintf(stderr, CTL_CMD_TOOL ": %s\n", err.msg);
        return err.rc == RC_ESYS ? RC_EXIT_FAILURE : RC_EXIT_USAGE;
    }
    if (g.help) {
        usage(stdout);
        return RC_EXIT_OK;
    }
    if (next >= argc) {
        usage(stderr);
        return RC_EXIT_USAGE;
    }
    const struct ctl_command *cmd = NULL;
    for (size_t i = 0; i < N_OF(commands) && cmd == NULL; i++) {
        cmd = strcmp(commands[i]()->name, argv[next]) == 0 ? commands[i]() : NULL;
    }
    if (cmd == NULL) {
        fprintf(stderr, CTL_CMD_TOOL ": unknown command '%s'\n", argv[next]);
        usage(stderr);
        return RC_EXIT_USAGE;
    }
    struct ctl_opts o = CTL_OPTS_INIT;
    if (parse_command(cmd, argc - next, argv + next, &o) != RC_OK) {
        return RC_EXIT_USAGE;
    }
    if (o.help) {
        toolopt_usage(stdout, cmd->usage, cmd->help, cmd->opts, cmd->n_opts);
        return RC_EXIT_OK;
    }
    struct cfg cfg = CFG_INIT;
    struct buf problems = BUF_INIT;
    if (cfg_load(&cfg, environ, &problems, &err) != RC_OK) {
        fprintf(stderr, "%s", problems.data != NULL ? problems.data : "");
        fprintf(stderr, CTL_CMD_TOOL ": %s\n", err.msg);
        buf_release(&problems);
        return RC_EXIT_CONFIG;
    }
    buf_release(&problems);
    /* Every user of the host can read argv (ps, /proc/<pid>/cmdline), the environment only
     * its owner: a password in --redis-url is refused before anything connects. */
    if (g.redis_url_given && cfg.redis.password != NULL) {
        fputs(CTL_CMD_TOOL ": --redis-url must not hold a password (other users see it in ps): "
                           "put the URL in the REDIS_URL environment variable instead\n",
              stderr);
        cfg_release(&cfg);
        return RC_EXIT_USAGE;
    }
    int status = cmd->run(&cfg, &o);
    cfg_release(&cfg);
    return status;
}
