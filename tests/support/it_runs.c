/* SPDX-License-Identifier: MIT
 * it_runs: batches of researches for the fault tests, and their judgement. */
#include "tests/support/test.h"

#include "tests/support/it_runs.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "common/clock.h"
#include "proto/msg.h"
#include "tests/support/it_env.h"

static const char *const quick[] = {"--duration-ms", "40-200", "--heartbeat-ms", "300", NULL};

void
it_start_pool(struct it_env *env, int per_type, const char *const training_args[],
              const char *const args[])
{
    const char *const *other = args != NULL ? args : quick;
    it_env_start_workers(env, "design", per_type, NULL, other);
    it_env_start_workers(env, "training", per_type, NULL,
                         training_args != NULL ? training_args : other);
    it_env_start_workers(env, "backtest", per_type, NULL, other);
    it_env_start_workers(env, "assessment", per_type, NULL, other);
}

void
it_trigger_all(struct it_env *env, const char *prefix, size_t n, const char *strategy,
               char **ids, int timeout_ms)
{
    char request_id[64];
    for (size_t i = 0; i < n; i++) {
        snprintf(request_id, sizeof(request_id), "%s-%zu", prefix, i);
        struct trigger t = {.request_id = request_id, .brief = "fault injection",
                            .strategy = strategy, .strategy_path = strategy ? "/s.py" : NULL};
        it_send_trigger(env, &t);
    }
    for (size_t i = 0; i < n; i++) {
        snprintf(request_id, sizeof(request_id), "%s-%zu", prefix, i);
        const struct event *ev = it_event_wait_request(env, EVENT_ACCEPTED, request_id, timeout_ms);
        ids[i] = strdup(ev->research_id);
    }
}

struct finished_probe {
    struct it_env *env;
    char **ids;
    size_t n;
    size_t want;
    size_t done; /* out: how many have a final status */
};

static bool
is_final(const char *status)
{
    return status != NULL && (strcmp(status, "completed") == 0 ||
                              strcmp(status, "failed") == 0 || strcmp(status, "cancelled") == 0);
}

static bool
enough_finished(void *arg)
{
    struct finished_probe *p = arg;
    p->done = 0;
    for (size_t i = 0; i < p->n; i++) {
        char *st = it_research_hget(p->env, p->ids[i], "status");
        p->done += is_final(st);
        free(st);
    }
    return p->done >= p->want;
}

size_t
it_count_finished(struct it_env *env, char **ids, size_t n)
{
    struct finished_probe p = {env, ids, n, n, 0};
    (void)enough_finished(&p);
    return p.done;
}

void
it_wait_some_finished(struct it_env *env, char **ids, size_t n, size_t want, int timeout_ms)
{
    struct finished_probe p = {env, ids, n, want, 0};
    if (!it_wait_until(enough_finished, &p, timeout_ms)) {
        it_fail(env, "only %zu of %zu researches finished, want %zu", p.done, n, want);
    }
}

void
it_wait_all_finished(struct it_env *env, char **ids, size_t n, int timeout_ms)
{
    it_wait_some_finished(env, ids, n, n, timeout_ms);
}

void
it_free_ids(char **ids, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(ids[i]);
        ids[i] = NULL;
    }
}

static bool
same_event(const struct event *a, const struct event *b)
{
    return a->type == b->type && strcmp(a->research_id, b->research_id) == 0 &&
           (a->dispatch_id == NULL) == (b->dispatch_id == NULL) &&
           (a->dispatch_id == NULL || strcmp(a->dispatch_id, b->dispatch_id) == 0) &&
           (a->type != EVENT_GATE || a->gate == b->gate) &&
           (a->type != EVENT_PHASE_STARTED || a->phase == b->phase);
}

struct outcomes_probe {
    struct it_env *env;
    char **ids;
    size_t n;
};

/* Every research of the run that Redis says finished has its outcome event read. */
static bool
outcomes_read(void *arg)
{
    struct outcomes_probe *p = arg;
    it_topic_poll(it_events(p->env), 100);
    for (size_t i = 0; i < p->n; i++) {
        char *st = it_research_hget(p->env, p->ids[i], "status");
        bool final = is_final(st);
        free(st);
        if (final && it_event_find(p->env, EVENT_COMPLETED, p->ids[i]) == NULL &&
            it_event_find(p->env, EVENT_FAILED, p->ids[i]) == NULL &&
            it_event_find(p->env, EVENT_CANCELLED, p->ids[i]) == NULL) {
            return false;
        }
    }
    return true;
}

struct it_figures
it_judge(struct it_env *env, char **ids, size_t n)
{
    struct it_figures f = {0};
    struct it_topic *t = it_events(env);
    /* Read on until every finished research's outcome event is in (a reader that lived
     * through a broker outage may still be reconnecting), then until nothing more comes. */
    struct outcomes_probe op = {env, ids, n};
    (void)it_wait_until(outcomes_read, &op, 30000);
    while (it_topic_poll(t, 300) > 0) {
    }
    size_t total = it_topic_count(t);
    const struct event **seen = calloc(total + 1, sizeof(*seen));
    size_t n_seen = 0;
    assert_non_null(seen);
    for (size_t i = 0; i < total; i++) {
        const struct msg *m = it_topic_msg(t, i)->decoded;
        if (m == NULL || m->u.event.research_id == NULL) {
            continue;
        }
        const struct event *ev = &m->u.event;
        bool dup = false;
        for (size_t j = 0; j < n_seen && !dup; j++) {
            dup = same_event(seen[j], ev);
        }
        if (dup) {
            f.duplicates++;
            continue;
        }
        seen[n_seen++] = ev;
    }
    for (size_t i = 0; i < n; i++) {
        char *st = it_research_hget(env, ids[i], "status");
        if (st != NULL && strcmp(st, "completed") == 0) {
            f.completed++;
        } else if (st != NULL && strcmp(st, "failed") == 0) {
            f.failed++;
        } else if (!is_final(st)) {
            f.lost++;
        }
        free(st);
        /* Each phase entered once: one distinct phase_started per phase; one outcome. */
        size_t started[PHASE_COUNT] = {0}, outcomes = 0;
        for (size_t j = 0; j < n_seen; j++) {
            if (strcmp(seen[j]->research_id, ids[i]) != 0) {
                continue;
            }
            if (seen[j]->type == EVENT_PHASE_STARTED) {
                started[seen[j]->phase]++;
            }
            f.redispatched += seen[j]->type == EVENT_REDISPATCHED;
            outcomes += seen[j]->type == EVENT_COMPLETED || seen[j]->type == EVENT_FAILED ||
                        seen[j]->type == EVENT_CANCELLED;
        }
        for (size_t p = 0; p < PHASE_COUNT; p++) {
            f.double_phases += started[p] > 1;
        }
        f.double_phases += outcomes > 1;
    }
    free(seen);
    return f;
}

void
it_print_figures(const char *fault, const struct it_figures *f, const char *what, int64_t ms)
{
    printf("faults: %s: completed=%zu failed=%zu lost=%zu duplicate_events=%zu "
           "redispatched=%zu double_phases=%zu %s=%lld ms\n",
           fault, f->completed, f->failed, f->lost, f->duplicates, f->redispatched,
           f->double_phases, what, (long long)ms);
    fflush(stdout);
}

size_t
it_log_count(struct it_env *env, const char *name, const char *needle, int64_t since_ms)
{
    struct buf path = BUF_INIT;
    buf_printf(&path, "%s/%s.log", it_env_dir(env), name);
    FILE *f = fopen(path.data, "r");
    buf_release(&path);
    if (f == NULL) {
        return 0;
    }
    char since[25] = "";
    if (since_ms > 0) {
        clock_rfc3339(since_ms, since);
    }
    size_t n = 0;
    char *line = NULL;
    size_t cap = 0;
    while (getline(&line, &cap, f) > 0) {
        /* "ts=2026-12-02T01:08:47.967Z ...": RFC 3339 UTC compares as text. */
        bool late = since[0] == '\0' ||
                    (strncmp(line, "ts=", 3) == 0 && strncmp(line + 3, since, 24) >= 0);
        n += late && strstr(line, needle) != NULL;
    }
    free(line);
    fclose(f);
    return n;
}

struct log_probe {
    struct it_env *env;
    const char *name;
    const char *needle;
};

static bool
logged(void *arg)
{
    const struct log_probe *p = arg;
    return it_log_count(p->env, p->name, p->needle, 0) > 0;
}

void
it_log_wait(struct it_env *env, const char *name, const char *needle, int timeout_ms)
{
    struct log_probe p = {env, name, needle};
    if (!it_wait_until(logged, &p, timeout_ms)) {
        it_fail(env, "%s.log never said \"%s\"", name, needle);
    }
}

void
it_redis_ok(struct it_env *env, int argc, const char *const argv[])
{
    redisReply *r = it_redis_cmd(env, argc, argv);
    if (r->type == REDIS_REPLY_ERROR) {
        it_fail(env, "%s %s: %s", argv[0], argc > 1 ? argv[1] : "", r->str);
    }
    freeReplyObject(r);
}
