/* SPDX-License-Identifier: MIT
 * coordinator: the daemon. Reads its configuration from the environment (contract §8), then
 * runs the loop until SIGTERM or SIGINT. Only main() exits. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "common/cfg.h"
#include "common/log.h"
#include "common/stopsig.h"
#include "coordinator/httpd.h"
#include "coordinator/loop.h"

extern char **environ;

static void
usage(FILE *out)
{
    fprintf(out, "usage: coordinator [--help] [--print-config] [--version]\n\n"
                 "Runs the research coordinator. Configuration comes from the environment:\n\n");
    cfg_usage(out);
}

int
main(int argc, char **argv)
{
    bool print_config = false;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            usage(stdout);
            return RC_EXIT_OK;
        } else if (strcmp(argv[i], "--print-config") == 0) {
            print_config = true;
        } else if (strcmp(argv[i], "--version") == 0) {
            printf("coordinator %s\n", RC_VERSION);
            return RC_EXIT_OK;
        } else {
            fprintf(stderr, "coordinator: unknown option %s\n", argv[i]);
            usage(stderr);
            return RC_EXIT_USAGE;
        }
    }

    struct cfg cfg = CFG_INIT;
    struct buf problems = BUF_INIT;
    struct rc_err err = RC_ERR_INIT;
    if (cfg_load(&cfg, environ, &problems, &err) != RC_OK) {
        fprintf(stderr, "%s", problems.data != NULL ? problems.data : "");
        fprintf(stderr, "coordinator: %s\n", err.msg);
        buf_release(&problems);
        return RC_EXIT_CONFIG;
    }
    buf_release(&problems);
    if (print_config) {
        cfg_print(&cfg, stdout);
        cfg_release(&cfg);
        return RC_EXIT_OK;
    }
    log_set_level(cfg.log_level);

    if (stopsig_install(&err) != RC_OK) {
        fprintf(stderr, "coordinator: %s\n", err.msg);
        cfg_release(&cfg);
        return RC_EXIT_FAILURE;
    }

    log_info("starting",
             "version=%s kafka=%s group=%s topic_prefix=%s redis_key_prefix=%s "
             "poll_interval_ms=%lld",
             RC_VERSION, cfg.kafka.brokers, cfg.kafka.group, cfg.kafka.topic_prefix,
             cfg.redis.key_prefix, (long long)cfg.agent.poll_interval_ms);

    struct loop *loop = NULL;
    struct httpd *httpd = NULL;
    int status = RC_EXIT_OK;
    enum rc_rc rc = loop_new(&loop, &cfg, &err);
    if (rc == RC_OK && cfg.metrics_addr != NULL) {
        rc = httpd_start(&httpd, cfg.metrics_addr, loop_metrics(loop), &err);
        if (rc == RC_OK) {
            log_info("serving metrics", "addr=%s", cfg.metrics_addr);
        } else {
            rc = RC_EINVAL; /* an address we cannot serve is a configuration problem */
        }
    }
    if (rc == RC_OK) {
        rc = loop_run(loop, stopsig_flag(), &err);
    }
    httpd_stop(httpd);
    if (rc != RC_OK) {
        log_error("stopping", "error=\"%s\"", err.msg);
        status = rc == RC_EINVAL      ? RC_EXIT_CONFIG
                 : rc == RC_ENOTFOUND ? RC_EXIT_UNAVAILABLE
                                      : RC_EXIT_FAILURE;
    }
    loop_free(loop);
    cfg_release(&cfg);
    log_info("stopped", "status=%d", status);
    return status;
}
