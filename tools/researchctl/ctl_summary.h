/* SPDX-License-Identifier: MIT
 * ctl_summary: what `follow` prints: the one status line it redraws while a research runs
 * (phase, attempt, worker, progress, step, elapsed) and the summary once it has finished
 * (status, strategy, verdict, gate rejection, the backtest's figures, cost, total and
 * per-phase durations). Pure: no I/O, no clock. */
#ifndef RC_CTL_SUMMARY_H
#define RC_CTL_SUMMARY_H

#include <stdbool.h>
#include <stdint.h>

struct buf;
struct ctl_research;

/* A running research as follow sees it. Strings borrowed; NULL when absent. */
struct ctl_summary_view {
    const char *research_id;
    const char *phase;
    const char *attempt;
    const char *worker_id;
    bool waiting;       /* waiting for a free worker (waiting_since is set) */
    bool has_progress;  /* the worker's heartbeat names this research and has a progress */
    double progress;    /* 0..1 */
    const char *step;   /* the heartbeat's step, when it names this research */
    int64_t elapsed_ms; /* since created_at */
};

/* Append the status line without a newline:
 *     rs_1  training  attempt 1  worker w-1  [#####     ] 50%  epoch 5/10  elapsed 0m 12s
 * Without `with_elapsed` the elapsed part is left out (what changes, for non-terminals). */
void ctl_summary_line(const struct ctl_summary_view *v, bool with_elapsed, struct buf *out);
/* Append the summary of a finished research (complete lines): its status and id, then
 * strategy, verdict, gate rejection, error and where (when not completed), backtest (Sharpe,
 * win rate, max drawdown), cost, duration (created_at to finished_at) and each phase's
 * duration from the timeline, or "not recorded" when the hash has no timeline. */
void ctl_summary_text(const struct ctl_research *r, int64_t now_ms, struct buf *out);

#endif /* RC_CTL_SUMMARY_H */
