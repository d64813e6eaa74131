/* SPDX-License-Identifier: MIT
 * it_soak: a seeded chaos run (issue 11). Researches are triggered (and some cancelled)
 * at a steady pace while, every few seconds, one fault is injected, drawn from a seeded
 * random sequence: a coordinator SIGKILLed (and restarted) or SIGSTOPped past its lease (two
 * coordinators run), a worker process killed and restarted, Redis restarted, a graceful Redis
 * failover behind a proxy (the coordinators and workers reach Redis through it), an OOM
 * spell, the brokers down. Then every fault stops, every research is waited for, and a
 * checker proves from Redis and the Kafka topics: every trigger and cancel got exactly one
 * outcome; every accepted research finished exactly once, failed ones with a reason the
 * contract names; no phase was dispatched under an id that was neither its phase_started's
 * nor a redispatched event's. One line of figures, with the seed, so a failure can be
 * replayed.
 *
 * In the suite: 2.5 minutes of faults (about 3 in all), in the normal build (every fault is
 * also a test of its own, in both builds). As a tool: it_soak --minutes N --seed S. */
#include "tests/support/test.h"

#include <limits.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/clock.h"
#include "common/num.h"
#include "common/xalloc.h"
#include "proto/msg.h"
#include "tests/support/it_env.h"
#include "tests/support/it_runs.h"

#define WAIT_MS 30000
#define SETTLE_MS 180000 /* for every research to finish once the faults stop */

static double soak_minutes = 2.5; /* of faults, in the suite; then it settles and is judged */
static unsigned soak_seed = 0;

/* A small seeded generator: the same seed draws the same faults in the same order. */
static uint64_t rng_state;

static unsigned
draw(unsigned n)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (unsigned)(rng_state % n);
}

enum fault {
    FAULT_COORDINATOR_KILL = 0,
    FAULT_COORDINATOR_STOP,
    FAULT_WORKER_KILL,
    FAULT_REDIS_RESTART,
    FAULT_FAILOVER,
    FAULT_OOM,
    FAULT_BROKERS,
    FAULT_COUNT
};

static const char *const fault_names[FAULT_COUNT] = {"kill",     "stop", "worker", "redis_restart",
                                                     "failover", "oom",  "broker"};

static const char *const types[] = {"design", "training", "backtest", "assessment"};

struct soak {
    struct it_env *env;
    char url[96];
    pid_t proxy;
    int ports[2]; /* [0] the env's redis, [1] its replica */
    int primary;  /* index into ports */
    pid_t coordinators[2];
    pid_t workers[4];
    int faults[FAULT_COUNT];
    size_t n_triggers;
    size_t n_cancels;
    char **accepted; /* research ids seen accepted, for cancels */
    size_t n_accepted;
    size_t cap_accepted;
    size_t events_seen; /* how many events were scanned for acceptances */
};

static const char *const coordinator_names[2] = {"coordinator", "coordinator-b"};

static void
start_coordinator(struct soak *s, int i)
{
    const char *const argv[] = {"coordinator", NULL};
    const char *const coord_env[] = {"AGENT_POLL_INTERVAL=0.1", "LOG_LEVEL=info",
                                     "AGENT_MAX_CONCURRENT_RESEARCHES=100000",
                                     "AGENT_WORKER_TIMEOUT=3", "AGENT_DISPATCH_TIMEOUT=5",
                                     "AGENT_MAX_ATTEMPTS=6", "REDIS_TIMEOUT_MS=1000",
                                     /* thousands of researches in a long run: none refused */
                                     "AGENT_DAILY_BUDGET=1000000", s->url, NULL};
    s->coordinators[i] = it_env_spawn(s->env, coordinator_names[i], argv, coord_env);
}

static void
start_workers(struct soak *s, int t)
{
    char name[64], prefix[16];
    snprintf(name, sizeof(name), "workers-%s", types[t]);
    snprintf(prefix, sizeof(prefix), "w%d-", t);
    const char *const argv[] = {"stub-worker", "--type",         types[t], "--count",
                                "3",           "--id-prefix",    prefix,   "--duration-ms",
                                "100-400",     "--heartbeat-ms", "300",    NULL};
    const char *const wenv[] = {s->url, NULL};
    s->workers[t] = it_env_spawn(s->env, name, argv, wenv);
}

/* The role Redis at `port` gives itself ("master", "slave"), in out. */
static void
role_of(struct soak *s, int port, char *out, size_t len)
{
    redisContext *c = it_redis_connect_port(s->env, port);
    const char *const argv[] = {"ROLE"};
    redisReply *r = it_redis_cmd_on(s->env, c, 1, argv);
    snprintf(out, len, "%s",
             r->type == REDIS_REPLY_ARRAY && r->elements > 0 ? r->element[0]->str : "?");
    freeReplyObject(r);
    redisFree(c);
}

static void
redis_on(struct soak *s, int port, int argc, const char *const argv[])
{
    redisContext *c = it_redis_connect_port(s->env, port);
    redisReply *r = it_redis_cmd_on(s->env, c, argc, argv);
    if (r->type == REDIS_REPLY_ERROR) {
        it_fail(s->env, "%s on %d: %s", argv[0], port, r->str);
    }
    freeReplyObject(r);
    redisFree(c);
}

/* A graceful failover to the replica (it catches up first, then the roles swap), then the
 * address moves; the old connections stay with the old primary, now READONLY. */
static void
failover(struct soak *s)
{
    const int to = 1 - s->primary;
    char port[16];
    snprintf(port, sizeof(port), "%d", s->ports[to]);
    const char *const argv[] = {"FAILOVER", "TO", "127.0.0.1", port, "TIMEOUT", "5000"};
    /* Refused while the replica is not connected yet (after a restart): asked again. */
    for (int64_t until = clock_mono_ms() + WAIT_MS;;) {
        redisContext *c = it_redis_connect_port(s->env, s->ports[s->primary]);
        redisReply *r = it_redis_cmd_on(s->env, c, 6, argv);
        bool ok = r->type != REDIS_REPLY_ERROR;
        char why[160];
        snprintf(why, sizeof(why), "%s", ok ? "" : r->str);
        freeReplyObject(r);
        redisFree(c);
        if (ok) {
            break;
        }
        if (clock_mono_ms() > until) {
            it_fail(s->env, "FAILOVER refused: %s", why);
        }
        it_sleep_ms(200);
    }
    char role[16] = "";
    for (int64_t until = clock_mono_ms() + WAIT_MS; strcmp(role, "master") != 0;) {
        if (clock_mono_ms() > until) {
            it_fail(s->env, "the failover to %d did not happen", s->ports[to]);
        }
        it_sleep_ms(50);
        role_of(s, s->ports[to], role, sizeof(role));
    }
    s->primary = to;
    it_env_proxy_retarget(s->env, s->proxy, "proxy", s->ports[to], false);
}

static void
inject(struct soak *s, enum fault f)
{
    struct it_env *env = s->env;
    s->faults[f]++;
    switch (f) {
    case FAULT_COORDINATOR_KILL: {
        int i = (int)draw(2);
        it_env_kill(env, s->coordinators[i], SIGKILL);
        it_env_wait_exit(env, s->coordinators[i], WAIT_MS, NULL);
        start_coordinator(s, i);
        break;
    }
    case FAULT_COORDINATOR_STOP: {
        int i = (int)draw(2);
        it_env_kill(env, s->coordinators[i], SIGSTOP);
        it_sleep_ms(3000); /* past the lease (2.3 s at AGENT_POLL_INTERVAL=0.1) */
        it_env_kill(env, s->coordinators[i], SIGCONT);
        break;
    }
    case FAULT_WORKER_KILL: {
        int t = (int)draw(4);
        it_env_kill(env, s->workers[t], SIGKILL);
        it_env_wait_exit(env, s->workers[t], WAIT_MS, NULL);
        start_workers(s, t);
        break;
    }
    case FAULT_REDIS_RESTART:
        if (s->primary != 0) {
            failover(s); /* the env's redis restarts with its data; it must lead for that */
        }
        it_env_restart_redis(env, 1000 + (int)draw(2000));
        break;
    case FAULT_FAILOVER:
        failover(s);
        break;
    case FAULT_OOM: {
        const char *const tight[] = {"CONFIG", "SET", "maxmemory", "1"};
        const char *const loose[] = {"CONFIG", "SET", "maxmemory", "0"};
        redis_on(s, s->ports[s->primary], 4, tight);
        it_sleep_ms(1000 + (int)draw(1000));
        redis_on(s, s->ports[s->primary], 4, loose);
        break;
    }
    case FAULT_BROKERS: {
        pid_t broker = it_env_pid(env, "devbroker");
        kill(broker, SIGUSR1);
        it_sleep_ms(2000 + (int)draw(2000));
        kill(broker, SIGUSR2);
        break;
    }
    case FAULT_COUNT:
        break;
    }
}

/* Note the research ids accepted since the last look (for cancels to name). */
static void
collect_accepted(struct soak *s)
{
    struct it_topic *t = it_events(s->env);
    it_topic_poll(t, 0);
    for (; s->events_seen < it_topic_count(t); s->events_seen++) {
        const struct msg *m = it_topic_msg(t, s->events_seen)->decoded;
        if (m != NULL && m->u.event.type == EVENT_ACCEPTED && m->u.event.research_id != NULL) {
            s->accepted =
                xgrow(s->accepted, &s->cap_accepted, s->n_accepted + 1, sizeof(*s->accepted));
            s->accepted[s->n_accepted++] = xstrdup(m->u.event.research_id);
        }
    }
}

static void
send_some(struct soak *s)
{
    char request_id[64];
    unsigned n = 1 + draw(2);
    for (unsigned i = 0; i < n; i++) {
        snprintf(request_id, sizeof(request_id), "soak-%zu", s->n_triggers++);
        struct trigger t = {.request_id = request_id, .brief = "soak"};
        it_send_trigger(s->env, &t);
    }
    collect_accepted(s);
    if (s->n_accepted > 0 && draw(8) == 0) {
        char cancel_id[64];
        snprintf(cancel_id, sizeof(cancel_id), "soak-cancel-%zu", s->n_cancels++);
        struct cancel c = {.research_id = s->accepted[draw((unsigned)s->n_accepted)],
                           .request_id = cancel_id,
                           .reason = "soak"};
        it_send_cancel(s->env, &c);
    }
}

/* ---- the checker ---- */

struct seen_event {
    const struct event *ev;
};

static int
cmp_by_research(const void *a, const void *b)
{
    const struct event *x = *(const struct event *const *)a, *y = *(const struct event *const *)b;
    const char *rx = x->research_id != NULL ? x->research_id : "";
    const char *ry = y->research_id != NULL ? y->research_id : "";
    return strcmp(rx, ry);
}

static int
cmp_by_request(const void *a, const void *b)
{
    const struct event *x = *(const struct event *const *)a, *y = *(const struct event *const *)b;
    const char *rx = x->request_id != NULL ? x->request_id : "";
    const char *ry = y->request_id != NULL ? y->request_id : "";
    return strcmp(rx, ry);
}

struct verdict {
    size_t violations;
    char first[512];
    size_t completed, failed, cancelled, redispatched, duplicates;
};

/* Count a violation; the first one's words are kept: `what` about `a` (and `b`). */
static void
violation(struct verdict *v, const char *what, const char *a, const char *b)
{
    if (v->violations++ == 0) {
        snprintf(v->first, sizeof(v->first), "%s: %s %s", what, a != NULL ? a : "-",
                 b != NULL ? b : "");
    }
}

static bool
same(const char *a, const char *b)
{
    return (a == NULL && b == NULL) || (a != NULL && b != NULL && strcmp(a, b) == 0);
}

static bool
named_reason(const char *error)
{
    /* Contract §3 and §7: the reasons a research of this run may fail with. */
    static const char *const prefixes[] = {"no attempts left", "waited ", "bad result",
                                           "corrupt research", "stub failure"};
    for (size_t i = 0; error != NULL && i < N_OF(prefixes); i++) {
        if (strncmp(error, prefixes[i], strlen(prefixes[i])) == 0) {
            return true;
        }
    }
    return false;
}

/* Every outcome event of one request (sorted together): one type only. */
static void
check_requests(const struct event **evs, size_t n, struct verdict *v)
{
    qsort(evs, n, sizeof(*evs), cmp_by_request);
    for (size_t i = 0; i < n;) {
        size_t j = i;
        while (j < n && same(evs[j]->request_id, evs[i]->request_id)) {
            if (evs[j]->type != evs[i]->type || (evs[j]->type == EVENT_ACCEPTED &&
                                                 !same(evs[j]->research_id, evs[i]->research_id))) {
                violation(v, "a request got two outcomes", evs[i]->request_id, evs[j]->research_id);
            }
            j++;
        }
        v->duplicates += j - i - 1;
        i = j;
    }
}

/* Every research's events (sorted together): one outcome; each dispatch id either its phase's
 * phase_started one or a redispatched one. */
static void
check_research(const struct event **evs, size_t n, const struct it_topic *const *dispatch_topics,
               struct verdict *v)
{
    qsort(evs, n, sizeof(*evs), cmp_by_research);
    for (size_t i = 0; i < n;) {
        size_t j = i;
        enum event_type outcome = EVENT_ACCEPTED;
        bool has_outcome = false;
        while (j < n && same(evs[j]->research_id, evs[i]->research_id)) {
            const struct event *e = evs[j];
            if (e->type == EVENT_COMPLETED || e->type == EVENT_FAILED ||
                e->type == EVENT_CANCELLED) {
                if (has_outcome && outcome != e->type) {
                    violation(v, "a research finished twice", e->research_id, NULL);
                }
                if (!has_outcome) {
                    v->completed += e->type == EVENT_COMPLETED;
                    v->failed += e->type == EVENT_FAILED;
                    v->cancelled += e->type == EVENT_CANCELLED;
                    if (e->type == EVENT_FAILED && !named_reason(e->error)) {
                        violation(v, "a research failed for no named reason", e->research_id,
                                  e->error);
                    }
                }
                has_outcome = true;
                outcome = e->type;
            }
            j++;
        }
        i = j;
    }
    /* Every dispatch sent: the phase_started's id or a redispatched's, for its research. */
    for (int t = 0; t < WORKER_TYPE_COUNT; t++) {
        const struct it_topic *d = dispatch_topics[t];
        for (size_t k = 0; k < it_topic_count(d); k++) {
            const struct msg *m = it_topic_msg(d, k)->decoded;
            if (m == NULL || m->kind != MSG_DISPATCH) {
                continue;
            }
            const struct dispatch *dp = &m->u.dispatch;
            /* The research's events: a range of the sorted array. */
            size_t lo = 0, hi = n;
            while (lo < hi) {
                size_t mid = lo + (hi - lo) / 2;
                const char *r = evs[mid]->research_id != NULL ? evs[mid]->research_id : "";
                if (strcmp(r, dp->research_id) < 0) {
                    lo = mid + 1;
                } else {
                    hi = mid;
                }
            }
            bool known = false;
            for (size_t e = lo; e < n && !known && same(evs[e]->research_id, dp->research_id);
                 e++) {
                known =
                    (evs[e]->type == EVENT_PHASE_STARTED || evs[e]->type == EVENT_REDISPATCHED) &&
                    same(evs[e]->dispatch_id, dp->dispatch_id);
            }
            if (!known) {
                violation(v, "a dispatch neither its phase's first nor redispatched",
                          dp->dispatch_id, dp->research_id);
            }
        }
    }
    for (size_t e = 0; e < n; e++) {
        v->redispatched += evs[e]->type == EVENT_REDISPATCHED;
    }
}

struct cancel_probe {
    struct it_env *env;
    const char *request_id;
};

/* The cancel with this request_id got its outcome (cancelled or cancel_rejected). */
static bool
cancel_answered(void *arg)
{
    const struct cancel_probe *p = arg;
    struct it_topic *t = it_events(p->env);
    it_topic_poll(t, 0);
    for (size_t i = 0; i < it_topic_count(t); i++) {
        const struct msg *m = it_topic_msg(t, i)->decoded;
        if (m != NULL &&
            (m->u.event.type == EVENT_CANCELLED || m->u.event.type == EVENT_CANCEL_REJECTED) &&
            same(m->u.event.request_id, p->request_id)) {
            return true;
        }
    }
    return false;
}

static void
test_soak_mixed_faults(void **state)
{
    struct it_env *env = *state;
    struct soak s = {.env = env};
    if (soak_seed == 0) {
        soak_seed = (unsigned)(clock_now_ms() % 1000000007);
    }
    rng_state = soak_seed * 2654435761ull + 1;
    setenv("KAFKA_PROP_RECONNECT_BACKOFF_MAX_MS", "500", 1);
    s.ports[0] = it_env_redis_port(env);
    it_env_start_redis_server(env, "redis-b", true, &s.ports[1]);
    int proxy_port = 0;
    s.proxy = it_env_start_proxy(env, "proxy", s.ports[0], &proxy_port);
    snprintf(s.url, sizeof(s.url), "REDIS_URL=redis://127.0.0.1:%d/0", proxy_port);
    for (int t = 0; t < 4; t++) {
        start_workers(&s, t);
    }
    start_coordinator(&s, 0);
    start_coordinator(&s, 1);
    struct it_topic *dispatches[WORKER_TYPE_COUNT];
    for (int t = 0; t < WORKER_TYPE_COUNT; t++) {
        dispatches[t] = it_dispatches(env, (enum worker_type)t);
    }
    const int64_t t0 = clock_mono_ms();
    const int64_t end = t0 + (int64_t)(soak_minutes * 60000);
    int64_t next_fault = t0 + 3000;
    while (clock_mono_ms() < end) {
        send_some(&s);
        if (clock_mono_ms() >= next_fault) {
            inject(&s, (enum fault)draw(FAULT_COUNT));
            next_fault = clock_mono_ms() + 3000 + draw(3000);
        }
        /* Read as it goes: the dev broker keeps only the last 5 MiB of each partition. */
        for (int t = 0; t < WORKER_TYPE_COUNT; t++) {
            it_topic_poll(dispatches[t], 0);
        }
        it_sleep_ms(300); /* the pace of triggers */
    }
    /* Calm: every research is waited for, then judged. */
    collect_accepted(&s);
    char **ids = calloc(s.n_triggers + 1, sizeof(*ids));
    assert_non_null(ids);
    char request_id[64];
    size_t n_ids = 0;
    for (size_t i = 0; i < s.n_triggers; i++) {
        snprintf(request_id, sizeof(request_id), "soak-%zu", i);
        const struct event *ev = it_event_wait_request(env, EVENT_ACCEPTED, request_id, SETTLE_MS);
        ids[n_ids++] = strdup(ev->research_id);
    }
    it_wait_all_finished(env, ids, n_ids, SETTLE_MS);
    for (size_t i = 0; i < s.n_cancels; i++) {
        snprintf(request_id, sizeof(request_id), "soak-cancel-%zu", i);
        struct cancel_probe cp = {env, request_id};
        if (!it_wait_until(cancel_answered, &cp, SETTLE_MS)) {
            it_fail(env, "cancel %s got no outcome", request_id);
        }
    }
    for (int t = 0; t < WORKER_TYPE_COUNT; t++) {
        it_topic_poll(dispatches[t], 200);
    }
    struct it_topic *events = it_events(env);
    it_topic_poll(events, 500);
    const size_t total = it_topic_count(events);
    const struct event **outcomes = calloc(total + 1, sizeof(*outcomes));
    const struct event **lives = calloc(total + 1, sizeof(*lives));
    assert_non_null(outcomes);
    assert_non_null(lives);
    size_t n_outcomes = 0, n_lives = 0;
    for (size_t i = 0; i < total; i++) {
        const struct msg *m = it_topic_msg(events, i)->decoded;
        if (m == NULL) {
            continue;
        }
        const struct event *e = &m->u.event;
        if (e->type == EVENT_ACCEPTED || e->type == EVENT_REJECTED ||
            ((e->type == EVENT_CANCELLED || e->type == EVENT_CANCEL_REJECTED) &&
             e->request_id != NULL)) {
            outcomes[n_outcomes++] = e;
        }
        if (e->research_id != NULL && e->type != EVENT_ACCEPTED && e->type != EVENT_REJECTED &&
            e->type != EVENT_CANCEL_REJECTED) {
            lives[n_lives++] = e;
        }
    }
    struct verdict v = {0};
    /* A cancel outcome's request and a trigger's are different requests: judged apart. */
    check_requests(outcomes, n_outcomes, &v);
    check_research(lives, n_lives, (const struct it_topic *const *)dispatches, &v);
    struct it_figures f = it_judge(env, ids, n_ids);
    if (f.lost != 0) {
        violation(&v, "researches never finished", "some", NULL);
    }
    int n_faults = 0;
    for (int k = 0; k < FAULT_COUNT; k++) {
        n_faults += s.faults[k];
    }
    char faults[256] = "";
    for (int k = 0, at = 0; k < FAULT_COUNT; k++) {
        at += snprintf(faults + at, sizeof(faults) - (size_t)at, "%s%s=%d", k > 0 ? " " : "",
                       fault_names[k], s.faults[k]);
    }
    printf("soak: seed=%u minutes=%.1f triggers=%zu cancels=%zu accepted=%zu completed=%zu "
           "failed=%zu cancelled=%zu lost=%zu redispatched=%zu duplicate_events=%zu faults=%d "
           "(%s) violations=%zu\n",
           soak_seed, (double)(clock_mono_ms() - t0) / 60000.0, s.n_triggers, s.n_cancels, n_ids,
           v.completed, v.failed, v.cancelled, f.lost, v.redispatched, f.duplicates + v.duplicates,
           n_faults, faults, v.violations);
    fflush(stdout);
    if (v.violations > 0) {
        it_fail(env, "soak seed %u: %zu violations, the first: %s", soak_seed, v.violations,
                v.first);
    }
    unsetenv("KAFKA_PROP_RECONNECT_BACKOFF_MAX_MS");
    free(outcomes);
    free(lives);
    it_free_ids(ids, n_ids);
    free(ids);
    for (size_t i = 0; i < s.n_accepted; i++) {
        free(s.accepted[i]);
    }
    free(s.accepted);
}

int
main(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        int64_t seed = -1;
        if (strcmp(argv[i], "--minutes") == 0 && v != NULL &&
            num_parse_f64(v, strlen(v), &soak_minutes)) {
            i++;
        } else if (strcmp(argv[i], "--seed") == 0 && v != NULL &&
                   num_parse_i64(v, strlen(v), &seed) && seed >= 0 && seed <= UINT_MAX) {
            soak_seed = (unsigned)seed;
            i++;
        } else {
            fprintf(stderr, "usage: it_soak [--minutes N] [--seed S]\n");
            return 64;
        }
    }
    if (!(soak_minutes > 0)) {
        fprintf(stderr, "it_soak: --minutes must be > 0\n");
        return 64;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_soak_mixed_faults, it_setup, it_teardown),
    };
    return IT_RUN_GROUP("it_soak", tests);
}
