/* SPDX-License-Identifier: MIT
 * ctl_list: `list`: active (rc:active) and finished (rc:finished) researches, newest first
 * by created_at, filtered by status, phase (the phase field while active, last_phase once
 * finished), verdict and creation time, at most --limit of them. Both sets are paged
 * (ZREVRANGEBYSCORE ... LIMIT) with one pipelined HMGET of the listed fields per page, and
 * reading stops as soon as the rows found are known to be the newest. */
#ifndef RC_CTL_LIST_H
#define RC_CTL_LIST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/rc_err.h"

struct buf;
struct ctl_command;
struct ctl_source;

/* What to list; strings borrowed, NULL: any. */
struct ctl_list_filter {
    const char *status;  /* running, completed, failed, cancelled */
    const char *phase;   /* pending, designing, training, backtesting, assessing */
    const char *verdict; /* the assessment's verdict, exactly */
    int64_t since_ms;    /* created at or after (Unix ms); 0: any time */
    size_t limit;        /* at most this many rows, >= 1 */
};

/* One research; strings owned, NULL when absent. */
struct ctl_list_row {
    char *research_id;
    char *status;
    char *phase; /* the phase field while running, else last_phase */
    char *strategy_name;
    char *verdict;
    int64_t created_at_ms;  /* 0 when absent */
    int64_t finished_at_ms; /* 0 while running */
    bool has_cost;
    double cost_usd;
};

struct ctl_list {
    int64_t now_ms;
    struct ctl_list_row *v; /* newest first */
    size_t n;
    size_t pages; /* pages read, for tests of the paging */
};

#define CTL_LIST_INIT                                                                              \
    {                                                                                              \
        0, NULL, 0, 0                                                                              \
    }

/* Whether row r passes every filter of f. Pure. */
bool ctl_list_matches(const struct ctl_list_filter *f, const struct ctl_list_row *r);
/* Read the rows f selects at now_ms through src. Errors as ctl_read_status (RC_EUNAVAIL,
 * RC_EBACKEND); *out written only on success, released with ctl_list_release. */
enum rc_rc ctl_list_read(const struct ctl_source *src, const struct ctl_list_filter *f,
                         int64_t now_ms, struct ctl_list *out, struct rc_err *err);
void ctl_list_release(struct ctl_list *l);
/* A table (RESEARCH STATUS PHASE STRATEGY VERDICT AGE DURATION COST), or "No researches
 * match." */
void ctl_list_text(const struct ctl_list *l, struct buf *out);
/* {"now": ms, "researches": [{research_id, status, phase, strategy_name, verdict, created_at,
 * finished_at, age_ms, duration_ms, cost_usd}]} and a newline; absent values null. */
void ctl_list_json(const struct ctl_list *l, struct buf *out);

/* `list [--status S] [--phase P] [--verdict V] [--since D|TIME] [--limit N] [--json]`. */
const struct ctl_command *ctl_list_command(void);

#endif /* RC_CTL_LIST_H */
