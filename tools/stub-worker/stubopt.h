/* SPDX-License-Identifier: MIT
 * stubopt: stub-worker's command line: one option table that drives both parsing and --help,
 * and the options it yields (plain data). */
#ifndef RC_STUBOPT_H
#define RC_STUBOPT_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "common/rc_err.h"
#include "tools/stub-worker/stubsim.h"

#define STUBOPT_MAX_WORKERS 1000
#define STUBOPT_MAX_HEARTBEAT_MS 2000      /* the contract: a heartbeat at least every 2 s */
#define STUBOPT_MAX_CLOCK_SKEW_MS 86400000 /* --clock-skew-ms: one day either way */

struct stubopt {
    struct stubsim_shape shape; /* --type, --fail-gate, --bad-result, --cost-usd, --tokens */
    int64_t count;              /* --count: workers, 1..STUBOPT_MAX_WORKERS */
    const char *id_prefix;      /* --id-prefix, borrowed from argv */
    int64_t duration_min_ms;    /* --duration-ms: each dispatch takes a uniform random */
    int64_t duration_max_ms;    /*   time in [min, max] */
    double fail_prob;           /* --fail-prob: chance a dispatch ends with status "failed" */
    int64_t die_after;          /* --die-after: 0 never, else dies with the K-th dispatch */
    bool hang;                  /* --hang: each dispatch runs until aborted, never completes */
    bool has_seed;              /* --seed given */
    uint64_t seed;
    int64_t heartbeat_ms;    /* --heartbeat-ms */
    int64_t clock_skew_ms;   /* --clock-skew-ms: added to every last_seen written (may be < 0) */
    bool verbose;            /* --verbose: one line per dispatch started/completed/aborted */
    const char *latency_log; /* --latency-log: append timing lines here (borrowed), or NULL */
    bool help;               /* --help: nothing else was checked */
};

/* Parse argv with the defaults of --help. RC_EINVAL (a usage error, exit 64) with err->msg
 * naming the option, also when --type is missing (unless --help). *out is written only on
 * success; its strings borrow argv. Call once per process (getopt). */
enum rc_rc stubopt_parse(struct stubopt *out, int argc, char **argv, struct rc_err *err);
/* Print the usage: the option table and what the environment configures. */
void stubopt_usage(FILE *out);

#endif /* RC_STUBOPT_H */
