/* SPDX-License-Identifier: MIT
 * ctl_cmd: what researchctl's commands share: the description of a command (its option table,
 * parser and runner, which main dispatches on), the options they fill, and the small helpers
 * every command uses: reporting an error as one line with its exit status, writing output,
 * and SIGINT/SIGTERM as a stop request for the commands that watch or follow. */
#ifndef RC_CTL_CMD_H
#define RC_CTL_CMD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/rc_err.h"
#include "contract/limits.h"
#include "proto/msg.h"
#include "common/toolopt.h"

struct buf;
struct cfg;

#define CTL_CMD_TOOL "researchctl"

/* Every command's options; each command's option callback (its `on_opt`, given a
 * struct ctl_opts * as ctx) sets its own. Strings borrow argv. */
struct ctl_opts {
    bool help; /* --help: print the command's usage, nothing else was checked */
    bool json;
    const char *research_id; /* the positional argument (cancel: or "-"); events: --research */
    /* trigger, cancel */
    struct trigger t;
    const char *reason;
    char request_id[LIMITS_ID_MAX + 1]; /* "" until given or generated */
    bool wait;
    int64_t timeout_s;
    /* status */
    bool watch;
    double interval_s;
    /* events; trigger, retry: follow the research once accepted */
    bool follow;
    int64_t last_n; /* 0: all */
    /* list: filters (NULL / 0: any) */
    const char *status;
    const char *phase; /* list, cancel --phase */
    const char *verdict;
    bool has_since;
    int64_t since_ms; /* Unix ms */
    int64_t limit;
    /* cancel: many at once */
    bool all;
    int64_t older_than_ms; /* 0: no such filter */
    bool yes;
    /* resume, retry */
    bool force;
    /* budget */
    int64_t days;
};

/* The defaults of every option. */
#define CTL_OPTS_INIT                                                                              \
    {                                                                                              \
        .wait = true, .timeout_s = 30, .interval_s = 1.0, .limit = 50, .days = 7                   \
    }

/* Whether a command takes one positional argument, a research id. */
enum ctl_takes_id {
    CTL_ID_NONE = 0,
    CTL_ID_REQUIRED = 1,
    CTL_ID_OPTIONAL = 2, /* may be absent, or "-" (ids on stdin): research_id is then "-" */
};

/* One command of the tool. */
struct ctl_command {
    const char *name;
    const char *usage;   /* "researchctl cancel <research_id>", for its --help */
    const char *summary; /* one line for researchctl --help */
    const char *help;    /* the command's --help text above its options */
    const struct toolopt *opts;
    size_t n_opts;
    toolopt_fn on_opt;
    enum ctl_takes_id takes_id; /* a positional research id */
    /* Checks across options after parsing (not with --help); RC_EINVAL is a usage error.
     * May be NULL. */
    enum rc_rc (*check)(const struct ctl_opts *o, struct rc_err *err);
    /* Run with the loaded configuration; returns the exit status (enum rc_exit). */
    int (*run)(const struct cfg *cfg, struct ctl_opts *o);
};

/* The exit status for an error: RC_EUNAVAIL, RC_EBACKEND and RC_ESYS 69 (Kafka or Redis not
 * usable), RC_EINVAL 78 (configuration), others 1. */
int ctl_cmd_exit_status(enum rc_rc rc);
/* Print "researchctl: <msg>" on stderr as one line, control characters escaped (ctl_fmt_text):
 * a message may quote what Redis, Kafka or an event carried. */
void ctl_cmd_say(const char *msg);
/* ctl_cmd_say(err->msg) and return ctl_cmd_exit_status(rc). */
int ctl_cmd_fail(enum rc_rc rc, const struct rc_err *err);
/* Write b to stdout, flush, and empty b. */
void ctl_cmd_emit(struct buf *b);
/* Accept `arg` as a research or request id (1-128 bytes of [A-Za-z0-9._:-]) into *out (which
 * borrows arg). RC_EINVAL naming `what` otherwise. */
enum rc_rc ctl_cmd_id(const char *arg, const char *what, const char **out, struct rc_err *err);

#endif /* RC_CTL_CMD_H */
