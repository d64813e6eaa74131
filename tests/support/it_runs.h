/* SPDX-License-Identifier: MIT
 * it_runs: a batch of researches as the fault tests run them: triggered, waited for, and
 * judged from the lifecycle events and the research hashes (every research finished once, no
 * phase entered twice without a redispatch, no event lost), with one line of figures.
 * Include "tests/support/test.h" first. */
#ifndef RC_IT_RUNS_H
#define RC_IT_RUNS_H

#include <stddef.h>
#include <stdint.h>

struct it_env;

/* Start `per_type` stub workers of each type; training (and the others, when `args` is not
 * NULL) with these extra arguments, else the quick default (40-200 ms, 300 ms heartbeats). */
void it_start_pool(struct it_env *env, int per_type, const char *const training_args[],
                   const char *const args[]);
/* Send n triggers ("<prefix>-<i>"; with `strategy` they skip design) and wait (timeout_ms)
 * for each acceptance; ids[i] gets the research id (free with it_free_ids). */
void it_trigger_all(struct it_env *env, const char *prefix, size_t n, const char *strategy,
                    char **ids, int timeout_ms);
/* How many of them have a final status in Redis. */
size_t it_count_finished(struct it_env *env, char **ids, size_t n);
/* Wait until all (or at least `want`) have finished; fails the test after timeout_ms. */
void it_wait_all_finished(struct it_env *env, char **ids, size_t n, int timeout_ms);
void it_wait_some_finished(struct it_env *env, char **ids, size_t n, size_t want, int timeout_ms);
void it_free_ids(char **ids, size_t n);

/* What the events and hashes say about one run. */
struct it_figures {
    size_t completed;     /* researches whose hash says completed */
    size_t failed;
    size_t lost;          /* not finished at all */
    size_t duplicates;    /* events read more than once (same research, type, dispatch_id) */
    size_t double_phases; /* phases started twice (different dispatch ids, no redispatch), or
                             two outcomes */
    size_t redispatched;  /* distinct redispatched events of these researches */
};

/* Judge every research of `ids` against every event read so far and the hashes. */
struct it_figures it_judge(struct it_env *env, char **ids, size_t n);
/* One line "faults: <fault>: completed=... <what>=<ms> ms" on stdout. */
void it_print_figures(const char *fault, const struct it_figures *f, const char *what,
                      int64_t ms);

/* Lines of DIR/<name>.log (a child's log) that hold `needle`, and when `since_ms` > 0 were
 * logged at or after it (by their ts=, Unix ms). */
size_t it_log_count(struct it_env *env, const char *name, const char *needle, int64_t since_ms);
/* Wait until DIR/<name>.log has at least one such line; fails the test after timeout_ms. */
void it_log_wait(struct it_env *env, const char *name, const char *needle, int timeout_ms);

/* Run one Redis command on the env's link and fail the test on an error reply. */
void it_redis_ok(struct it_env *env, int argc, const char *const argv[]);

#endif /* RC_IT_RUNS_H */
