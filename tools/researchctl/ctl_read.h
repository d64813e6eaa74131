/* SPDX-License-Identifier: MIT
 * ctl_read: what researchctl reads from Redis (contract §6) as plain structs: the status
 * overview, the workers, one research's hash. Keys are built by contract/keys.h; commands
 * go through a query function (redislink_query in production, canned replies in tests) and
 * are pipelined: status and workers take two round trips whatever their size, a research one.
 * It only reads: researchctl changes state by publishing to Kafka. */
#ifndef RC_CTL_READ_H
#define RC_CTL_READ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/rc_err.h"
#include "contract/fields.h"
#include "contract/phase.h"

struct cfg_agent;
struct redislink;
struct redislink_cmd;
struct redislink_reply;

/* Run cmds as one pipeline, as redislink_query does (same contract: on RC_OK *out holds n
 * replies, freed by the caller with redislink_replies_free). */
typedef enum rc_rc (*ctl_query_fn)(void *ctx, const struct redislink_cmd *cmds, size_t n,
                                   struct redislink_reply **out, struct rc_err *err);

/* Where to read: everything borrowed. */
struct ctl_source {
    ctl_query_fn query;
    void *ctx;              /* passed to query */
    const char *key_prefix; /* REDIS_KEY_PREFIX */
};

/* The source that reads through `rl` (redislink_query), keys under `key_prefix`. */
struct ctl_source ctl_source_redis(struct redislink *rl, const char *key_prefix);

/* One active research (rc:active member and fields of its hash). Strings are owned; NULL
 * when absent or empty. Times are Unix ms, 0 when absent. */
struct ctl_active {
    char *research_id;
    int64_t created_at_ms; /* its rc:active score */
    bool has_hash;         /* false: listed but its hash is gone */
    char *phase;
    char *strategy_name;
    int64_t phase_started_at_ms;
    int64_t waiting_since_ms; /* 0: not waiting for a worker */
    char *worker_id;
    char *child_status;
    int64_t in_phase_ms; /* now - phase_started_at (created_at when absent), >= 0 */
};

/* One worker: a member of rc:workers:<type> and its heartbeat hash rc:worker:<id>. */
struct ctl_worker {
    enum worker_type type;
    char *worker_id;
    int64_t last_seen_ms; /* the heartbeat's last_seen, else the zset score */
    int64_t age_ms;       /* now - last_seen, >= 0 */
    bool has_hash;        /* false: listed but rc:worker:<id> is gone */
    char *state;          /* as the heartbeat says ("idle", "busy"); NULL when unknown */
    char *research_id;    /* what it holds, NULL when nothing */
    char *dispatch_id;
    /* The heartbeat's optional fields (§5): progress 0..1 when has_progress (absent, or not
     * a number in 0..1: not), the step, host and labels texts (NULL when absent). */
    bool has_progress;
    double progress;
    char *step;
    char *host;
    char *labels;
    bool live; /* its heartbeat is within AGENT_WORKER_TIMEOUT */
    bool busy; /* live and its heartbeat says busy, or (status only) an active research holds an
                  unfinished dispatch addressed to it, which a heartbeat may not show yet */
};

/* rc:budget:<UTC day of now>; when absent, AGENT_DAILY_BUDGET and nothing spent. */
struct ctl_budget {
    char day[11];           /* "YYYY-MM-DD" */
    bool stored;            /* the hash exists */
    double spent_usd;       /* spent_usd, 0 when absent */
    double daily_limit_usd; /* daily_limit_usd, else AGENT_DAILY_BUDGET; 0 = no limit */
    double remaining_usd;   /* limit - spent (may be <= 0) */
};

/* rc:coordinator and rc:leader. */
struct ctl_coordinator {
    bool seen; /* rc:coordinator exists: a coordinator ran at some time */
    char *instance;
    char *version;
    int64_t started_at_ms;
    int64_t last_cycle_at_ms; /* 0 before the first cycle */
    bool has_cycle_ms;
    double cycle_ms; /* duration of the last cycle */
    bool has_limit;  /* the `limit` field: the concurrency limit at its last cycle */
    int64_t limit;
    int64_t triggers, completions, stale_completions, invalid_inputs, redispatches;
    bool leader;           /* rc:leader exists: a coordinator leads now */
    char *leader_instance; /* its value */
    int64_t leader_ttl_ms; /* its remaining lease, -1 when unknown */
};

/* The most recently finished research (rc:finished, highest score). */
struct ctl_finished {
    char *research_id;
    int64_t finished_at_ms; /* its score */
    char *status;           /* completed / failed / cancelled; NULL when the hash expired */
    char *last_phase;
    char *verdict;
    char *error;
};

struct ctl_status {
    int64_t now_ms;
    struct ctl_active *active; /* oldest first */
    size_t n_active;
    struct ctl_worker *workers; /* by type (design, training, backtest, assessment), then id */
    size_t n_workers;
    struct {
        int64_t busy;
        int64_t total; /* live workers */
    } per_type[WORKER_TYPE_COUNT];
    struct ctl_budget budget;
    struct ctl_coordinator coordinator;
    bool has_last;
    struct ctl_finished last;
    int64_t limit;               /* the concurrency limit (contract §5) */
    bool limit_from_coordinator; /* read from rc:coordinator, else computed from the env */
};

struct ctl_workers {
    int64_t now_ms;
    struct ctl_worker *v; /* by type, then as listed (by last_seen) */
    size_t n;
};

/* One research hash, every field, sorted by name. */
struct ctl_research {
    char **names;
    char **values;
    size_t n;
    int64_t ttl_ms; /* -1: kept (no expiry) */
};

#define CTL_STATUS_INIT                                                                            \
    {                                                                                              \
        0                                                                                          \
    }
#define CTL_WORKERS_INIT                                                                           \
    {                                                                                              \
        0, NULL, 0                                                                                 \
    }
#define CTL_RESEARCH_INIT                                                                          \
    {                                                                                              \
        NULL, NULL, 0, -1                                                                          \
    }

/* Read the status at `now_ms` (Unix ms), with `agent` (borrowed) for the worker timeout, the
 * concurrency settings and the daily budget used where Redis has no figure. Two round trips.
 * RC_EUNAVAIL / RC_EBACKEND from the query (unreachable; an error reply or a reply of the
 * wrong shape). *out written only on success; release with ctl_status_release. */
enum rc_rc ctl_read_status(const struct ctl_source *src, const struct cfg_agent *agent,
                           int64_t now_ms, struct ctl_status *out, struct rc_err *err);
/* Free what ctl_read_status allocated; back at CTL_STATUS_INIT. */
void ctl_status_release(struct ctl_status *st);

/* Read every member of every rc:workers:<type> (stale ones too) with its heartbeat. Two
 * round trips; errors and ownership as ctl_read_status. */
enum rc_rc ctl_read_workers(const struct ctl_source *src, const struct cfg_agent *agent,
                            int64_t now_ms, struct ctl_workers *out, struct rc_err *err);
void ctl_workers_release(struct ctl_workers *w);

/* Read rc:research:<research_id> and its TTL. RC_ENOTFOUND when there is no such hash
 * (unknown id, or expired after RESEARCH_RETENTION); other errors as ctl_read_status.
 * Release with ctl_research_release. */
enum rc_rc ctl_read_research(const struct ctl_source *src, const char *research_id,
                             struct ctl_research *out, struct rc_err *err);
void ctl_research_release(struct ctl_research *r);
/* The value of field `name`, or NULL. Borrowed from r. */
const char *ctl_research_get(const struct ctl_research *r, const char *name);
/* The same for one of the contract's fields (contract/fields.h). */
const char *ctl_research_field(const struct ctl_research *r, enum research_field f);

#endif /* RC_CTL_READ_H */
