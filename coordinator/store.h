/* SPDX-License-Identifier: MIT
 * store: research state in Redis (contract §6). Sole owner of the Redis link, the key layout
 * (through keys.h) and the Lua scripts. Every state change is one fenced script (nothing is
 * written unless this instance holds rc:leader), and a batch of them is one pipelined round
 * trip. Main loop only. */
#ifndef RC_STORE_H
#define RC_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/rc_err.h"
#include "coordinator/change.h"
#include "coordinator/research.h"

struct buf;
struct cancel_memo;
struct cfg_redis;
struct change;
struct metrics_tally;
struct registry;
struct worker_beat;
struct store;

/* Figures of the coordinator written to rc:coordinator (and today's budget hash) with each
 * pass. */
struct store_stats {
    int64_t started_at_ms;
    int64_t last_cycle_at_ms; /* 0: leave as is */
    double cycle_ms;          /* duration of the last cycle, ms (written with µs precision) */
    int64_t active;
    int64_t limit; /* the concurrency limit in force (written as `limit`, ours) */
    /* Today's budget hash: daily_limit_usd written, spent_usd created when absent. */
    char budget_day[11];
    double daily_limit_usd;
    /* The pass's counts, the one ledger (the metrics add the same ones once it is written):
     * rc:coordinator's counters are incremented by them. */
    const struct metrics_tally *counts;
};

/* A remembered trigger outcome (rc:request:<id> and its figures). */
struct store_request {
    char *value; /* owned; NULL: never seen (or expired) */
    struct rejection_figures figures;
    char *corrupt; /* owned; not NULL: what is stored there is no outcome (why, for the dead
                      letter of the trigger: it cannot be told a repeat from a new one) */
};

/* One message waiting in the outbox. */
struct store_outbox_entry {
    char *id;   /* owned */
    char *data; /* owned: the framed message (see outbox_frame) */
    size_t len;
};

/* Create, copying `cfg` and `instance` (this process's id, the lease value). Connects lazily:
 * never fails for an unreachable Redis. Caller frees with store_free(). */
enum rc_rc store_new(struct store **out, const struct cfg_redis *cfg, const char *instance,
                     struct rc_err *err);
void store_free(struct store *s);

/* Take the leader lease if it is free, renew it if it is ours (TTL `ttl_ms` > 0). *leading
 * says which. With ttl_ms 0, give it up if it is ours (*leading false): a successor need not
 * wait for it to expire. RC_EUNAVAIL: Redis unreachable (retry later). */
enum rc_rc store_lease(struct store *s, int64_t ttl_ms, bool *leading, struct rc_err *err);

/* Researches read per round trip of a load. */
#define STORE_LOAD_CHUNK 1000

/* Replace `reg`'s content with every research in rc:active, read STORE_LOAD_CHUNK at a time;
 * between chunks keep(arg) (may be NULL) is called, which renews the caller's lease: false
 * stops the load (RC_ECONFLICT). A research that cannot be read as one (contract §7: another
 * type under its key, a missing hash, bad fields) is loaded marked corrupt, for the machine
 * to fail alone. On failure `reg` is left empty. */
enum rc_rc store_load_active(struct store *s, struct registry *reg, bool (*keep)(void *arg),
                             void *arg, struct rc_err *err);

/* Whether some worker live at `now_ms` (in rc:workers:<type>) is one `known` does not know:
 * a worker that just joined (stale members are dropped on the way, as store_read_workers
 * does). One pipelined round trip; *any_new written on RC_OK only. */
enum rc_rc store_find_new_workers(struct store *s, int64_t now_ms, int64_t timeout_ms,
                                  bool (*known)(const void *arg, const char *id), const void *arg,
                                  bool *any_new, struct rc_err *err);

/* The live heartbeats of every worker type at `now_ms` (last_seen within `timeout_ms`),
 * removing stale members from rc:workers:<type>. On RC_OK *beats (caller owns, e.g. hands it to
 * workers_begin) and *n are written. Two pipelined round trips. */
enum rc_rc store_read_workers(struct store *s, int64_t now_ms, int64_t timeout_ms,
                              struct worker_beat **beats, size_t *n, struct rc_err *err);

/* Look up the remembered outcome of each trigger's request id and, with `budget_day` not
 * NULL, that day's spend (*spent_usd, 0 when none) in one round trip. out[i] is filled for
 * every i on RC_OK; release each with store_request_release(). */
enum rc_rc store_get_requests(struct store *s, const char *const *request_ids, size_t n,
                              const char *budget_day, struct store_request *out, double *spent_usd,
                              struct rc_err *err);

/* For each cancel i (one round trip): its remembered outcome when request_ids[i] is not NULL
 * (memos[i].request_id NULL when none; release with cancel_memo_release) and the stored
 * status of research_ids[i] (status[i]: owned copy, NULL when there is no such hash). On a
 * failure nothing is left allocated. */
enum rc_rc store_get_cancels(struct store *s, const char *const *request_ids,
                             const char *const *research_ids, size_t n, struct cancel_memo *memos,
                             char **status, struct rc_err *err);
/* For each resume i (one round trip): its remembered outcome when request_ids[i] is not NULL
 * (memos[i] as store_get_cancels gives it, from rc:resume:<request_id>) and the finished
 * research research_ids[i] as stored: found[i] (caller frees with research_free) holds its
 * fields unchecked, or is marked corrupt RESEARCH_STORED_FOREIGN when its key is of another
 * type; NULL when there is no such hash or it is not in rc:finished (expired). On a failure
 * nothing is left allocated. */
enum rc_rc store_get_resumes(struct store *s, const char *const *request_ids,
                             const char *const *research_ids, size_t n, struct cancel_memo *memos,
                             struct research **found, struct rc_err *err);
void store_request_release(struct store_request *r);

/* How one change fared in store_apply. */
struct store_result {
    enum rc_rc rc; /* RC_OK: written; RC_EBACKEND: refused for good by its own stored data
                      (nothing of it written, `why` says); else not judged (see the return) */
    bool research_key;            /* RC_EBACKEND: the research's own key is what refuses */
    enum research_stored stored;  /* ... and what it holds instead of a research */
    char why[300];                /* RC_EBACKEND: the Redis error, for the dead letter */
};

/* Write `n` changes, each atomically (all its keys or none: contract §7) with its outbox
 * messages (whose outbox_id must be set), and `stats`: one fenced script call per 256 of them,
 * all in one pipelined round trip; *spent_usd (may be NULL) gets the day's spend read back
 * with the stats. RC_OK: every change was written or refused for good by its own data
 * (results[i]). RC_ECONFLICT: this instance does not hold the lease, nothing was written.
 * RC_EUNAVAIL: Redis is unreachable, or refused a write for a reason that is not one change's
 * own (OOM, NOPERM, READONLY, a key every write needs of the wrong type, ...): then any
 * subset of the changes may have been written, and the caller must commit nothing, reload
 * and plan again later. retention_s: TTL of a finished research's hash. */
enum rc_rc store_apply(struct store *s, const struct change *changes, size_t n,
                       const struct store_stats *stats, int64_t retention_s,
                       struct store_result *results, double *spent_usd, struct rc_err *err);

/* Delete delivered outbox entries (one round trip). */
enum rc_rc store_outbox_delete(struct store *s, char *const *ids, size_t n, struct rc_err *err);
/* Entries read per round trip of store_outbox_load (a hint to HSCAN). */
#define STORE_OUTBOX_CHUNK 1000

/* Read every outbox entry (at the start of leadership, and after the producer was replaced:
 * to publish again what may not have been), in chunks; keep(arg) (may be NULL) between
 * chunks renews the caller's lease (false stops it: RC_ECONFLICT). On RC_OK *out (caller
 * frees with store_outbox_free) is sorted by id, which is publish order, each entry once. */
enum rc_rc store_outbox_load(struct store *s, bool (*keep)(void *arg), void *arg,
                             struct store_outbox_entry **out, size_t *n, struct rc_err *err);
void store_outbox_free(struct store_outbox_entry *entries, size_t n);

/* Drop old ids from rc:finished (score < now - retention) so the zset follows the hashes'
 * expiry. Cheap; call once a cycle or less. */
enum rc_rc store_trim_finished(struct store *s, int64_t now_ms, int64_t retention_s,
                               struct rc_err *err);

#endif /* RC_STORE_H */
