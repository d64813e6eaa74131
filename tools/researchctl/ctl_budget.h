/* SPDX-License-Identifier: MIT
 * ctl_budget: `budget`: today's spend, limit and what remains (rc:budget:<day>), the
 * researches charged today with what each cost (rc:budget:<day>:charges), and the spend and
 * limit of the last N UTC days. One round trip. */
#ifndef RC_CTL_BUDGET_H
#define RC_CTL_BUDGET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/rc_err.h"

struct buf;
struct cfg_agent;
struct ctl_command;
struct ctl_source;

struct ctl_budget_day {
    char day[11]; /* "YYYY-MM-DD" */
    bool stored;  /* its hash exists */
    double spent_usd;
    bool has_limit; /* daily_limit_usd stored (today: else AGENT_DAILY_BUDGET) */
    double daily_limit_usd;
};

struct ctl_budget_charge {
    char *research_id; /* owned */
    double cost_usd;
};

struct ctl_budget_report {
    int64_t now_ms;
    struct ctl_budget_day *days; /* today first */
    size_t n_days;
    bool has_charges;                  /* the charges hash of today exists */
    struct ctl_budget_charge *charges; /* largest first */
    size_t n_charges;
};

#define CTL_BUDGET_REPORT_INIT                                                                     \
    {                                                                                              \
        0, NULL, 0, false, NULL, 0                                                                 \
    }

/* Read the last n_days days (today first) at now_ms; today's limit falls back to `agent`'s
 * AGENT_DAILY_BUDGET. Errors as ctl_read_status. Release with ctl_budget_report_release. */
enum rc_rc ctl_budget_read(const struct ctl_source *src, const struct cfg_agent *agent,
                           int64_t now_ms, size_t n_days, struct ctl_budget_report *out,
                           struct rc_err *err);
void ctl_budget_report_release(struct ctl_budget_report *b);
/* Today's line, the charges ("none" when nobody was charged) and the table of days. */
void ctl_budget_text(const struct ctl_budget_report *b, struct buf *out);
/* {"day", "spent_usd", "daily_limit_usd", "remaining_usd" (null: no limit), "charges":
 * [{research_id, cost_usd}], "days": [{day, stored, spent_usd, daily_limit_usd}]} and a newline. */
void ctl_budget_json(const struct ctl_budget_report *b, struct buf *out);

/* `budget [--days N] [--json]`. */
const struct ctl_command *ctl_budget_command(void);

#endif /* RC_CTL_BUDGET_H */
