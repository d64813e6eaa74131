/* SPDX-License-Identifier: MIT
 * loop: the coordinator's one loop and its leadership, outage and shutdown handling. */
#include "coordinator/loop.h"

#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/cfg.h"
#include "common/clock.h"
#include "common/log.h"
#include "common/xalloc.h"
#include "contract/limits.h"
#include "contract/outbox.h"
#include "coordinator/acks.h"
#include "coordinator/budget.h"
#include "coordinator/change.h"
#include "coordinator/consumer.h"
#include "coordinator/idgen.h"
#include "coordinator/idmap.h"
#include "coordinator/intake.h"
#include "coordinator/lease.h"
#include "coordinator/machine.h"
#include "coordinator/metrics.h"
#include "coordinator/producer.h"
#include "coordinator/registry.h"
#include "coordinator/research.h"
#include "coordinator/store.h"
#include "coordinator/waitq.h"
#include "coordinator/workers.h"
#include "proto/msg.h"

#define BATCH_MAX 2000 /* inputs planned and written together */
/* ... and at most this many bytes of them: a pass's memory stays bounded however large the
 * inputs waiting are (each is at most 1 MiB, or it is dead-lettered). */
#define BATCH_MAX_BYTES (32 * 1024 * 1024)
#define BACKOFF_MIN_MS 100
#define BACKOFF_MAX_MS 5000
#define KAFKA_SETUP_TIMEOUT_MS 10000
#define SHUTDOWN_FLUSH_MS 3000
#define STOP_CHECK_MS 250 /* the longest an idle loop waits before it looks at the stop flag */
/* Between sweeps the heartbeats are read again at most this often, and only while some
 * research waits for a type of worker none of which is known free: the coordinator's own
 * record (its dispatches and the completions it applied) says who is busy in between. A
 * worker that joins is seen at once (each pass lists the live ids, one cheap round trip). */
#define BEATS_REFRESH_MS 100
/* Researches a sweep advances per pass: a sweep over more is spread over back-to-back passes,
 * so that no pass (its memory, its write, the inputs waiting behind it) grows with the
 * number of active researches. */
#define SWEEP_SLICE 10000

/* One dependency's outage: logged when it starts and when it ends, never per retry. */
struct outage {
    const char *what; /* "redis", "kafka" */
    bool down;
    int64_t retries;
    int64_t backoff_ms;
};

struct loop {
    const struct cfg *cfg;
    struct store *store;
    struct producer *producer;
    struct consumer *consumer; /* only while leading */
    struct registry *reg;
    struct workers *workers;
    struct waitq *waiting; /* researches waiting for a worker, by type, oldest first */
    struct idmap *merge_index; /* research id -> index + 1 of its change (merge_changes) */
    struct idgen ids;
    char instance[160];
    int64_t started_at_ms;
    uint64_t outbox_seq;
    bool leading;
    bool flushed; /* loop_run's stop gave Kafka its SHUTDOWN_FLUSH_MS */
    bool mirror_ok;           /* the registry mirrors Redis */
    bool outbox_due;          /* publish the outbox again (a new producer) */
    bool more_waiting;        /* the last gather stopped at a batch limit */
    bool want_caught_up;      /* the machine asks whether every input was read */
    uint64_t kafka_recoveries; /* the producer's count, as last acted on */
    int64_t caught_up_at_ms;  /* when that was last found true (Unix ms; 0: never) */
    int64_t next_tick_mono_ms;
    bool sweep_due;          /* a sweep is due or under way (a tick, a reload) */
    bool sweeping;           /* under way: holds and queues were reset at its start */
    double sweep_ms;         /* time its passes took so far */
    int64_t beats_read_mono; /* when the heartbeats were last read (0: never) */
    double last_cycle_ms;
    struct input *inputs; /* read, effect not yet written: kept until it is */
    size_t n_inputs;
    size_t cap_inputs;
    struct change_list changes;
    struct store_result *results; /* how each change of the pass fared, grown once */
    size_t cap_results;
    struct lease lease;  /* the leader lease by our own clock */
    struct acks *acks;   /* dispatches published, not yet acknowledged by Kafka */
    struct outage redis; /* logged once per outage */
    struct outage kafka;
    bool standby_logged;
    int64_t next_trim_ms; /* when rc:finished is next trimmed */
    struct metrics *metrics;
    struct metrics_tally tally; /* this pass's, committed once it is written */
    struct metrics_gauges gauges;
};

enum rc_rc
loop_new(struct loop **out, const struct cfg *cfg, struct rc_err *err)
{
    struct loop *l = xcalloc(1, sizeof(*l));
    l->cfg = cfg;
    l->started_at_ms = clock_now_ms();
    char host[64] = "host";
    (void)gethostname(host, sizeof(host) - 1);
    host[sizeof(host) - 1] = '\0';
    snprintf(l->instance, sizeof(l->instance), "%s:%ld:%" PRId64, host, (long)getpid(),
             l->started_at_ms);
    idgen_init(&l->ids);
    l->reg = registry_new();
    l->workers = workers_new();
    l->waiting = waitq_new();
    l->merge_index = idmap_new();
    l->metrics = metrics_new();
    l->acks = acks_new();
    lease_init(&l->lease, 3 * cfg->agent.poll_interval_ms + 2000);
    enum rc_rc rc = store_new(&l->store, &cfg->redis, l->instance, err);
    if (rc == RC_OK) {
        rc = producer_new(&l->producer, &cfg->kafka, err);
    }
    if (rc != RC_OK) {
        loop_free(l);
        return rc;
    }
    l->redis.what = "redis";
    l->kafka.what = "kafka";
    *out = l;
    return RC_OK;
}

struct metrics *
loop_metrics(struct loop *l)
{
    return l->metrics;
}

static void
drop_inputs(struct loop *l)
{
    for (size_t i = 0; i < l->n_inputs; i++) {
        input_release(&l->inputs[i]);
    }
    l->n_inputs = 0;
}

void
loop_free(struct loop *l)
{
    if (l == NULL) {
        return;
    }
    consumer_free(l->consumer);
    producer_free(l->producer, l->flushed ? 0 : SHUTDOWN_FLUSH_MS); /* one wait per stop */
    store_free(l->store);
    registry_free(l->reg);
    workers_free(l->workers);
    waitq_free(l->waiting);
    idmap_free(l->merge_index);
    metrics_free(l->metrics);
    acks_free(l->acks);
    drop_inputs(l);
    free(l->inputs);
    free(l->results);
    change_list_release(&l->changes);
    free(l);
}

/* Sleep up to `ms`, waking early on stop. */
static void
nap(int64_t ms, volatile sig_atomic_t *stop)
{
    while (ms > 0 && !*stop) {
        int64_t step = ms < 50 ? ms : 50;
        struct timespec ts = {.tv_sec = 0, .tv_nsec = (long)(step * 1000000)};
        nanosleep(&ts, NULL);
        ms -= step;
    }
}

/* A dependency failed: log once per outage, back off (waking early on stop). */
static void
outage_failed(struct outage *o, const struct rc_err *err, volatile sig_atomic_t *stop)
{
    if (!o->down) {
        log_warn("dependency unavailable", "what=%s error=\"%s\"", o->what, err->msg);
        o->down = true;
        o->retries = 0;
        o->backoff_ms = BACKOFF_MIN_MS;
    }
    o->retries++;
    nap(o->backoff_ms, stop);
    o->backoff_ms = o->backoff_ms * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : o->backoff_ms * 2;
}

static void
outage_over(struct outage *o)
{
    if (o->down) {
        log_warn("dependency back", "what=%s retries=%" PRId64, o->what, o->retries);
        o->down = false;
    }
}

/* Redis failed: any write may or may not have landed, so the mirror is reloaded. */
static void
redis_failed(struct loop *l, const struct rc_err *err, volatile sig_atomic_t *stop)
{
    l->mirror_ok = false;
    l->sweeping = false; /* the reload starts a new one */
    change_list_reset(&l->changes);
    metrics_set_up(l->metrics, false, !l->kafka.down, l->leading);
    outage_failed(&l->redis, err, stop);
}

static void
lose_lead(struct loop *l)
{
    if (l->leading) {
        log_warn("lost the leader lease: standing by", "instance=%s", l->instance);
    }
    /* Publish nothing more: what was queued is in the outbox, for the next leader. */
    producer_purge(l->producer);
    acks_clear(l->acks);
    lease_lost(&l->lease);
    l->leading = false;
    metrics_set_up(l->metrics, !l->redis.down, !l->kafka.down, false);
    l->mirror_ok = false;
    l->sweeping = false;
    consumer_free(l->consumer);
    l->consumer = NULL;
    drop_inputs(l);
    registry_clear(l->reg);
    change_list_reset(&l->changes);
}

static void
outbox_id(struct loop *l, char **out)
{
    char id[220];
    /* Zero-padded, and led by this instance's start, so that ids sort in publish order: within
     * an instance, and across the leaders that wrote an outbox in turn. */
    snprintf(id, sizeof(id), "%013" PRId64 ":%s:%016" PRIu64, l->started_at_ms, l->instance,
             ++l->outbox_seq);
    *out = xstrdup(id);
}

/* Take or renew the lease; the expiry counts from the sending. */
static enum rc_rc
renew_lease(struct loop *l, bool *leading, struct rc_err *err)
{
    const int64_t sent = clock_mono_ms();
    enum rc_rc rc = store_lease(l->store, l->lease.ttl_ms, leading, err);
    if (rc == RC_OK && *leading) {
        lease_granted(&l->lease, sent);
    } else if (rc == RC_OK) {
        lease_lost(&l->lease);
    }
    return rc;
}

/* Between the chunks of long work (a load, the outbox): renew the lease when due, so that a
 * coordinator never loses its own lease to itself. False once another instance holds it. */
static bool
keep_lease(void *arg)
{
    struct loop *l = arg;
    if (!lease_renewal_due(&l->lease, clock_mono_ms())) {
        return true;
    }
    bool leading = false;
    struct rc_err err = RC_ERR_INIT;
    if (renew_lease(l, &leading, &err) != RC_OK) {
        return true; /* the next command of the work fails the same way, and says why */
    }
    return leading;
}

/* True while this instance may publish and commit (contract §7): its lease is fresh by its
 * own clock, renewed now if it is not. */
static bool
may_publish(struct loop *l)
{
    if (lease_is_fresh(&l->lease, clock_mono_ms())) {
        return true;
    }
    bool leading = false;
    struct rc_err err = RC_ERR_INIT;
    if (renew_lease(l, &leading, &err) == RC_OK && leading) {
        log_warn("the lease had aged past its margin (a stall?): renewed before publishing",
                 "instance=%s", l->instance);
        return true;
    }
    log_warn("the lease lapsed (paused past it?): publishing and committing nothing",
             "instance=%s error=\"%s\"", l->instance, err.msg);
    return false;
}

/* The dispatch of outbox message `id` reached Kafka (or never will): its research's pick-up
 * timeout starts now. */
static void
dispatch_acked(struct loop *l, const char *outbox_id, int64_t now_ms)
{
    const char *research_id = NULL, *dispatch_id = NULL;
    if (!acks_take(l->acks, outbox_id, &research_id, &dispatch_id)) {
        return;
    }
    struct research *r = registry_find(l->reg, research_id);
    if (r != NULL && r->acked_at_ms == 0 && research_is(r, RF_DISPATCH_ID, dispatch_id)) {
        r->acked_at_ms = now_ms;
    }
}

/* A dispatch in the outbox is to be acknowledged before its pick-up timeout starts. */
static void
expect_outbox_dispatch(struct loop *l, const char *outbox_id, const char *payload, size_t len)
{
    struct msg m = MSG_INIT;
    if (msg_decode(MSG_TOPIC_DISPATCH, payload, len, &m, NULL) == RC_OK &&
        m.kind == MSG_DISPATCH) {
        acks_expect(l->acks, outbox_id, m.u.dispatch.research_id, m.u.dispatch.dispatch_id);
    }
    msg_release(&m);
}

/* Send what the outbox holds: at the start of leadership, and after the producer was replaced,
 * not all of it may have been sent. */
static enum rc_rc
republish_outbox(struct loop *l, struct rc_err *err)
{
    struct store_outbox_entry *e = NULL;
    size_t n = 0;
    enum rc_rc rc = store_outbox_load(l->store, keep_lease, l, &e, &n, err);
    if (rc != RC_OK) {
        return rc;
    }
    if (n > 0 && !may_publish(l)) {
        store_outbox_free(e, n);
        return rc_err_set(err, RC_ECONFLICT, "lost the leader lease before republishing");
    }
    char **refused = xcalloc(n > 0 ? n : 1, sizeof(*refused));
    size_t n_refused = 0;
    for (size_t i = 0; i < n; i++) {
        int topic = 0;
        const char *key = NULL, *payload = NULL;
        size_t key_len = 0, len = 0;
        if (!outbox_unframe(e[i].data, e[i].len, &topic, &key, &key_len, &payload, &len) ||
            topic < 0 || topic >= TOPIC_COUNT) {
            /* Not ours to send (written by hand, or by an incompatible version): drop it. */
            log_error("malformed outbox entry dropped", "id=%s", e[i].id);
            refused[n_refused++] = e[i].id;
            continue;
        }
        if (topic >= TOPIC_DISPATCH_DESIGN && topic <= TOPIC_DISPATCH_ASSESSMENT) {
            expect_outbox_dispatch(l, e[i].id, payload, len);
        }
        struct rc_err perr = RC_ERR_INIT;
        enum rc_rc sent = producer_send(l->producer, l->cfg->kafka.topics[topic], key, key_len,
                                        payload, len, e[i].id, &perr);
        if (sent == RC_EPROTO) {
            log_error("Kafka refuses an outbox message for good: dropped", "id=%s error=\"%s\"",
                      e[i].id, perr.msg);
            refused[n_refused++] = e[i].id;
            dispatch_acked(l, e[i].id, clock_now_ms());
        } else if (sent != RC_OK) {
            log_warn("cannot republish outbox entry", "id=%s error=\"%s\"", e[i].id, perr.msg);
        }
    }
    if (n_refused > 0) {
        struct rc_err derr = RC_ERR_INIT;
        (void)store_outbox_delete(l->store, refused, n_refused, &derr);
    }
    if (n > 0) {
        log_info("republished outbox", "messages=%zu", n);
    }
    free(refused);
    store_outbox_free(e, n);
    return RC_OK;
}

/* Kafka was down and is back: every dispatch acknowledged before, and not yet picked up, gets
 * a whole pick-up timeout from now (its worker could not receive it meanwhile: §7, a Kafka
 * outage, however long, fails no research). Once per outage; while down, Kafka is probed at
 * each tick, so that its return is seen even when nothing is published. */
static void
after_kafka_outage(struct loop *l, bool tick)
{
    if (tick) {
        producer_probe(l->producer, 100);
    }
    const uint64_t n = producer_recoveries(l->producer);
    if (n == l->kafka_recoveries) {
        return;
    }
    l->kafka_recoveries = n;
    const int64_t now = clock_now_ms();
    size_t restarted = 0;
    for (size_t i = 0; i < registry_len(l->reg); i++) {
        struct research *r = registry_at(l->reg, i);
        if (r != NULL && r->acked_at_ms > 0 && research_get(r, RF_PICKED_UP_AT) == NULL) {
            r->acked_at_ms = now;
            restarted++;
        }
    }
    log_info("kafka back: pick-up clocks restarted", "dispatches=%zu", restarted);
}

/* A research loaded with a dispatch out and not picked up: its timeout counts from now,
 * unless the outbox still holds the dispatch (then from Kafka's acknowledgement of it). */
static void
start_pickup_clocks(struct loop *l, int64_t now_ms)
{
    for (size_t i = 0; i < registry_len(l->reg); i++) {
        struct research *r = registry_at(l->reg, i);
        if (r != NULL && machine_holds_worker(r) && research_get(r, RF_PICKED_UP_AT) == NULL &&
            !acks_pending_for(l->acks, research_get(r, RF_RESEARCH_ID))) {
            r->acked_at_ms = now_ms;
        }
    }
}

/* Become (or stay) the leader: lease, consumer, mirror. RC_OK with l->leading false means
 * another instance leads. */
static enum rc_rc
ensure_leading(struct loop *l, bool *kafka_failed, struct rc_err *err)
{
    bool leading = false;
    enum rc_rc rc = renew_lease(l, &leading, err);
    if (rc != RC_OK) {
        return rc;
    }
    if (!leading) {
        if (l->leading) {
            lose_lead(l);
        }
        if (!l->standby_logged) {
            log_info("another coordinator leads: standing by", "instance=%s", l->instance);
            l->standby_logged = true;
        }
        return RC_OK;
    }
    if (!l->leading) {
        log_info("leading", "instance=%s", l->instance);
        l->leading = true;
        l->standby_logged = false;
        l->mirror_ok = false;
    }
    /* A (re)load is followed by the outbox, then the pick-up clocks of what was loaded and not
     * in it: a failure on the way loads again next time. */
    if (!l->mirror_ok) {
        rc = store_load_active(l->store, l->reg, keep_lease, l, err);
        l->outbox_due = true;
    }
    if (rc == RC_OK && l->outbox_due) {
        rc = republish_outbox(l, err);
    }
    if (rc == RC_ECONFLICT) {
        lose_lead(l); /* another instance took the lease meanwhile */
        return RC_OK;
    }
    if (rc != RC_OK) {
        return rc;
    }
    l->outbox_due = false;
    if (!l->mirror_ok) {
        start_pickup_clocks(l, clock_now_ms());
        l->mirror_ok = true;
        l->sweep_due = true; /* holds and queues are rebuilt from what was loaded */
        l->sweeping = false;
        log_info("loaded active researches", "active=%zu", registry_count(l->reg));
    }
    /* The Redis outage, if any, is over only once a pass is written (write_pass): reads and
     * the lease may pass while writes are refused (OOM, NOPERM), which is still the outage. */
    if (l->consumer == NULL) {
        rc = consumer_new(&l->consumer, &l->cfg->kafka, KAFKA_SETUP_TIMEOUT_MS, err);
        if (rc == RC_EUNAVAIL) {
            *kafka_failed = true;
        } else if (rc == RC_OK) {
            outage_over(&l->kafka);
        }
    }
    return rc;
}

/* One change per research per pass: a research's completion (intake) and its next dispatch
 * (advance) are planned as two changes; written as one, Redis runs half the commands. */
static void
merge_changes(struct loop *l)
{
    if (l->changes.n < 2) {
        return;
    }
    idmap_clear(l->merge_index);
    size_t kept = 0;
    for (size_t i = 0; i < l->changes.n; i++) {
        struct change *c = &l->changes.items[i];
        if (c->research_id != NULL) {
            /* Stored as index + 1, so that index 0 is not NULL. */
            uintptr_t at = (uintptr_t)idmap_get(l->merge_index, c->research_id);
            if (at != 0 && change_merge(&l->changes.items[at - 1], c)) {
                continue;
            }
            idmap_put(l->merge_index, c->research_id, (void *)(uintptr_t)(kept + 1));
        }
        if (kept != i) {
            l->changes.items[kept] = *c;
            *c = (struct change)CHANGE_INIT;
        }
        kept++;
    }
    l->changes.n = kept;
}

/* Give every change's messages an outbox id. */
static void
number_messages(struct loop *l, struct change_list *changes)
{
    for (size_t i = 0; i < changes->n; i++) {
        struct change *c = &changes->items[i];
        for (size_t j = 0; j < c->n_out; j++) {
            outbox_id(l, &c->out[j].outbox_id);
        }
    }
}

/* Queue the written changes' messages. A message Kafka can never take is dropped from the
 * outbox (else every leader would send it again, for ever); one it cannot take now stays
 * there, for the next leadership start. */
static void
publish(struct loop *l)
{
    char **refused = NULL;
    size_t n_refused = 0, cap = 0;
    for (size_t i = 0; i < l->changes.n; i++) {
        if (l->results[i].rc != RC_OK) {
            continue;
        }
        const struct change *c = &l->changes.items[i];
        for (size_t j = 0; j < c->n_out; j++) {
            const struct outmsg *m = &c->out[j];
            if (m->dispatch && c->research_id != NULL && c->value[RF_DISPATCH_ID] != NULL) {
                acks_expect(l->acks, m->outbox_id, c->research_id, c->value[RF_DISPATCH_ID]);
            }
            struct rc_err err = RC_ERR_INIT;
            enum rc_rc rc = producer_send(l->producer, l->cfg->kafka.topics[m->topic], m->key,
                                          m->key_len, m->payload, m->len, m->outbox_id, &err);
            if (rc == RC_EPROTO) {
                log_error("Kafka refuses a message for good: dropped", "error=\"%s\"", err.msg);
                refused = xgrow(refused, &cap, n_refused + 1, sizeof(*refused));
                refused[n_refused++] = m->outbox_id;
                /* A dispatch that cannot be sent is never picked up: its timeout runs, so
                 * that the research is sent again, and fails when no attempt is left. */
                dispatch_acked(l, m->outbox_id, clock_now_ms());
            } else if (rc != RC_OK) {
                log_warn("cannot queue message", "error=\"%s\"", err.msg);
            }
        }
    }
    if (n_refused > 0) {
        struct rc_err err = RC_ERR_INIT;
        (void)store_outbox_delete(l->store, refused, n_refused, &err);
    }
    free(refused);
}

/* Serve delivery reports: delete what Kafka has (or refuses for good) from the outbox, start
 * the pick-up clocks of the dispatches among them, resend what failed for now. */
static void
settle_deliveries(struct loop *l)
{
    producer_poll(l->producer, 0);
    const int64_t now = clock_now_ms();
    struct producer_failed *failed = NULL;
    size_t n_failed = producer_take_failed(l->producer, &failed);
    char **gone = NULL;
    size_t n_gone = 0, cap_gone = 0;
    const bool may_send = n_failed > 0 && l->leading && may_publish(l);
    for (size_t i = 0; i < n_failed; i++) {
        struct producer_failed *f = &failed[i];
        enum rc_rc rc = RC_OK;
        if (f->fate == PRODUCER_RETRY && may_send) {
            struct rc_err err = RC_ERR_INIT;
            rc = producer_send(l->producer, f->topic, f->key, f->key_len, f->payload, f->len,
                               f->outbox_id, &err);
        }
        if ((f->fate == PRODUCER_REFUSED || rc == RC_EPROTO) && f->outbox_id != NULL) {
            log_error("Kafka refuses a message for good: dropped from the outbox",
                      "topic=%s id=%s error=\"%s\"", f->topic, f->outbox_id, f->reason);
            gone = xgrow(gone, &cap_gone, n_gone + 1, sizeof(*gone));
            gone[n_gone++] = xstrdup(f->outbox_id);
            dispatch_acked(l, f->outbox_id, now);
        }
    }
    producer_failed_free(failed, n_failed);
    char **ids = NULL;
    size_t n = producer_take_delivered(l->producer, &ids);
    for (size_t i = 0; i < n; i++) {
        dispatch_acked(l, ids[i], now);
        gone = xgrow(gone, &cap_gone, n_gone + 1, sizeof(*gone));
        gone[n_gone++] = ids[i];
    }
    free(ids);
    if (n_gone > 0) {
        struct rc_err err = RC_ERR_INIT;
        if (store_outbox_delete(l->store, gone, n_gone, &err) != RC_OK) {
            /* Left in the outbox: at worst sent once more by a later leader. */
            log_debug("outbox delete failed", "error=\"%s\"", err.msg);
        }
    }
    for (size_t i = 0; i < n_gone; i++) {
        free(gone[i]);
    }
    free(gone);
}

/* Advance one research and log what it does. Queues it for a worker when it still wants one. */
static void
advance_one(struct loop *l, const struct machine_ctx *ctx, struct research *r)
{
    /* Planned on the stack: most researches have nothing to do, and machine_advance then
     * allocates nothing, so there is nothing to release either. */
    struct change planned = CHANGE_INIT;
    machine_advance(ctx, r, &planned);
    if (change_is_empty(&planned)) {
        change_release(&planned);
    } else {
        struct change *c = change_list_add(&l->changes);
        *c = planned; /* ownership moves into the list */
        metrics_note_change(&l->tally, r, c, ctx->now_ms);
        if (c->kind == CHANGE_FINISH && c->value[RF_ERROR] != NULL) {
            /* No attempts left, or waited too long: the operator wants to see it. */
            log_info("research failed", "research_id=%s phase=%s error=\"%s\"", c->research_id,
                     research_get(r, RF_PHASE), c->value[RF_ERROR]);
        } else if (c->kind == CHANGE_FINISH) {
            log_debug("research completed", "research_id=%s", c->research_id);
        } else if (c->set[RF_DISPATCH_ID] && strcmp(c->value[RF_ATTEMPT], "1") != 0) {
            log_info("redispatched", "research_id=%s dispatch_id=%s worker_id=%s was=%s",
                     c->research_id, c->value[RF_DISPATCH_ID], c->value[RF_WORKER_ID],
                     research_get(r, RF_WORKER_ID));
        } else if (c->set[RF_DISPATCH_ID]) {
            log_debug("phase started", "research_id=%s phase=%s dispatch_id=%s worker_id=%s",
                      c->research_id, c->value[RF_PHASE], c->value[RF_DISPATCH_ID],
                      c->value[RF_WORKER_ID]);
        }
        const bool finished = c->kind == CHANGE_FINISH;
        registry_apply(l->reg, c); /* a finished one leaves a gap, closed by the caller */
        if (finished) {
            return;
        }
    }
    enum worker_type wt;
    if (machine_wants_worker(r, &wt)) {
        waitq_push(l->waiting, wt, research_int(r, RF_CREATED_AT), research_get(r, RF_RESEARCH_ID));
    }
}

/* Start a sweep: every hold and queue is rebuilt, from the workers the researches pin now
 * and from what the sweep's advances queue. */
static void
sweep_begin(struct loop *l)
{
    workers_release_all(l->workers);
    waitq_clear(l->waiting);
    for (size_t i = 0; i < registry_len(l->reg); i++) {
        const struct research *r = registry_at(l->reg, i);
        if (r != NULL && machine_pins_worker(r)) {
            workers_hold(l->workers, research_get(r, RF_WORKER_ID));
        }
    }
    registry_sweep_start(l->reg);
    l->sweeping = true;
    l->sweep_ms = 0;
}

/* What intake needs of this pass. */
static struct intake_env
pass_env(struct loop *l, int64_t now_ms)
{
    return (struct intake_env){.cfg = l->cfg,
                               .store = l->store,
                               .reg = l->reg,
                               .workers = l->workers,
                               .ids = &l->ids,
                               .tally = &l->tally,
                               .now_ms = now_ms};
}

/* The machine's view of this pass. */
static struct machine_ctx
pass_ctx(struct loop *l, int64_t now_ms)
{
    return (struct machine_ctx){.cfg = l->cfg,
                                .now_ms = now_ms,
                                .workers = l->workers,
                                .caught_up_at_ms = l->caught_up_at_ms,
                                .want_caught_up = &l->want_caught_up,
                                .kafka_down = producer_kafka_down(l->producer)};
}

/* The full sweep (contract §1: every cycle looks at every active research, oldest first):
 * timeouts, lost dispatches, and every hold and queue recomputed from the researches. Up to
 * SWEEP_SLICE researches per pass; true once the last one was advanced. */
static bool
advance_sweep(struct loop *l, int64_t now_ms)
{
    struct machine_ctx ctx = pass_ctx(l, now_ms);
    bool done = false;
    for (size_t k = 0; k < SWEEP_SLICE && !done; k++) {
        struct research *r = registry_sweep_next(l->reg);
        if (r != NULL) {
            advance_one(l, &ctx, r);
        }
        done = r == NULL;
    }
    registry_compact(l->reg);
    return done;
}

static int
cmp_slot(const void *a, const void *b)
{
    const struct research *x = *(struct research *const *)a, *y = *(struct research *const *)b;
    return x->slot < y->slot ? -1 : x->slot > y->slot;
}

/* Every pass: advance what this pass's inputs touched (the changes planned so far) and, for
 * each worker type with free workers, as many of the oldest researches waiting for one; all
 * of them oldest first, so a free worker still goes to the oldest. */
static void
advance_changed(struct loop *l, int64_t now_ms)
{
    size_t n = 0, cap = 0;
    struct research **todo = NULL;
    for (size_t i = 0; i < l->changes.n; i++) {
        const struct change *c = &l->changes.items[i];
        struct research *r = c->research_id != NULL ? registry_find(l->reg, c->research_id) : NULL;
        if (r != NULL) {
            todo = xgrow(todo, &cap, n + 1, sizeof(*todo));
            todo[n++] = r;
        }
    }
    for (int t = 0; t < WORKER_TYPE_COUNT; t++) {
        size_t want = workers_count_free(l->workers, (enum worker_type)t);
        char id[LIMITS_ID_MAX + 1];
        while (want > 0 && waitq_pop(l->waiting, (enum worker_type)t, id, sizeof(id))) {
            struct research *r = registry_find(l->reg, id);
            enum worker_type wt;
            if (r != NULL && machine_wants_worker(r, &wt) && wt == (enum worker_type)t) {
                todo = xgrow(todo, &cap, n + 1, sizeof(*todo));
                todo[n++] = r;
                want--;
            }
        }
    }
    registry_compact(l->reg); /* intake may have finished some: slots are age ranks again */
    if (n > 1) {
        qsort(todo, n, sizeof(*todo), cmp_slot); /* qsort's pointer must not be NULL */
    }
    struct machine_ctx ctx = pass_ctx(l, now_ms);
    for (size_t i = 0; i < n; i++) {
        if (i > 0 && todo[i] == todo[i - 1]) {
            continue; /* touched twice, or touched and queued */
        }
        advance_one(l, &ctx, todo[i]);
    }
    registry_compact(l->reg);
    free(todo);
}

/* The figures a write of this pass carries, with `counts` (the one ledger) for the counters.
 * A cycle (contract: every active research looked at) ends with the pass that completes a
 * sweep; the other passes leave last_cycle_at and cycle_ms alone. */
static struct store_stats
pass_stats(struct loop *l, int64_t now, bool cycle_done, const struct metrics_tally *counts)
{
    struct store_stats stats = {.started_at_ms = l->started_at_ms, .counts = counts};
    stats.active = (int64_t)registry_count(l->reg);
    stats.last_cycle_at_ms = cycle_done ? now : 0;
    stats.cycle_ms = l->last_cycle_ms;
    stats.limit = workers_capacity(l->workers, l->cfg->agent.max_concurrent,
                                   l->cfg->agent.concurrency_buffer);
    l->gauges.capacity_limit = stats.limit;
    clock_utc_day(now, stats.budget_day);
    stats.daily_limit_usd = l->cfg->agent.daily_budget_usd;
    return stats;
}

/* Some changes of the pass were refused for good by their own stored data (contract §7: a
 * research's key of another type or gone, a request's memo of another type): nothing of
 * them was written. Their inputs are dead-lettered with the Redis error, their researches
 * fail alone, in a second write; the mirror, which had them applied, is reloaded next turn.
 * RC_ECONFLICT when this instance lost the lease meanwhile (fenced: it leads no more); else
 * not RC_OK when that write cannot be made (the pass is then an outage like any other). */
static enum rc_rc
refuse_changes(struct loop *l, int64_t now, struct rc_err *err)
{
    struct change_list fix = CHANGE_LIST_INIT;
    struct metrics_tally counts = {0}; /* the dead letters', written with them */
    struct intake_env env = pass_env(l, now);
    env.tally = &counts;
    struct machine_ctx ctx = pass_ctx(l, now);
    for (size_t i = 0; i < l->changes.n; i++) {
        const struct change *c = &l->changes.items[i];
        const struct store_result *res = &l->results[i];
        if (res->rc != RC_EBACKEND) {
            continue;
        }
        log_error("Redis refuses a change for good: its inputs are dead-lettered",
                  "research_id=%s inputs=%zu error=\"%s\"",
                  c->research_id != NULL ? c->research_id : "-", c->n_inputs, res->why);
        for (size_t k = 0; k < c->n_inputs; k++) {
            intake_dead_letter(&env, &l->inputs[c->inputs[k]], c->inputs[k],
                               MSG_INVALID_BAD_VALUE, res->why, &fix);
        }
        struct research *r =
            res->research_key && c->research_id != NULL ? registry_find(l->reg, c->research_id)
                                                        : NULL;
        /* A resume refused (its hash expired meanwhile) leaves the research finished: the
         * reloaded mirror drops it, there is nothing to fail. */
        if (r != NULL && c->kind != CHANGE_CREATE && c->kind != CHANGE_RESUME) {
            char why[sizeof(res->why) + 40];
            snprintf(why, sizeof(why), "corrupt research: hash: %s", res->why);
            research_set_corrupt(r, res->stored, why);
            machine_fail_corrupt(&ctx, r, change_list_add(&fix));
        }
    }
    number_messages(l, &fix);
    struct store_result *res = xcalloc(fix.n > 0 ? fix.n : 1, sizeof(*res));
    const struct store_stats stats = pass_stats(l, now, false, &counts);
    enum rc_rc rc = store_apply(l->store, fix.items, fix.n, &stats, l->cfg->agent.retention_s,
                                res, NULL, err);
    for (size_t i = 0; rc == RC_OK && i < fix.n; i++) {
        if (res[i].rc != RC_OK) {
            rc = rc_err_set(err, RC_EUNAVAIL, "cannot record a refused change: %s", res[i].why);
        }
    }
    if (rc == RC_OK) {
        metrics_commit(l->metrics, &counts);
        /* Published with the pass: appended, as written changes. */
        for (size_t i = 0; i < fix.n; i++) {
            *change_list_add(&l->changes) = fix.items[i];
            fix.items[i] = (struct change)CHANGE_INIT;
        }
        l->results = xgrow(l->results, &l->cap_results, l->changes.n, sizeof(*l->results));
        for (size_t i = l->changes.n - fix.n; i < l->changes.n; i++) {
            l->results[i] = (struct store_result){.rc = RC_OK};
        }
    }
    free(res);
    change_list_release(&fix);
    l->mirror_ok = false;
    return rc;
}

/* Write the pass's changes and figures in one round trip, and a second one when some changes
 * were refused for good (refuse_changes); l->results says how each fared.
 * False when nothing may be published or committed: Redis is unreachable or refused the
 * write as an outage (the pass is planned again later, from a reloaded mirror), or this
 * instance lost the lease. */
static bool
write_pass(struct loop *l, int64_t now, bool cycle_done, volatile sig_atomic_t *stop,
           struct rc_err *err)
{
    struct store_stats stats = pass_stats(l, now, cycle_done, &l->tally);
    l->results = xgrow(l->results, &l->cap_results, l->changes.n > 0 ? l->changes.n : 1,
                       sizeof(*l->results));
    enum rc_rc rc =
        store_apply(l->store, l->changes.items, l->changes.n, &stats, l->cfg->agent.retention_s,
                    l->results, &l->gauges.budget_spent_usd, err);
    if (rc == RC_OK) {
        /* Written with its counts: the metrics add the same ones now, whatever comes next (a
         * pass planned again counts its inputs again, in both). */
        metrics_commit(l->metrics, &l->tally);
        memset(&l->tally, 0, sizeof(l->tally));
        for (size_t i = 0; i < l->changes.n; i++) {
            if (l->results[i].rc != RC_OK) {
                rc = refuse_changes(l, now, err); /* RC_ECONFLICT: fenced, as below */
                break;
            }
        }
    }
    if (rc == RC_ECONFLICT) {
        lose_lead(l);
        return false;
    }
    if (rc != RC_OK) {
        redis_failed(l, err, stop);
        return false;
    }
    outage_over(&l->redis);
    return true;
}

/* After the write: publish, trim, commit the inputs, start the next pass afresh. Publishing
 * and committing wait for a fresh lease (a leader paused past it writes nothing more, and
 * publishes nothing: its successor publishes what this pass wrote to the outbox). */
static bool
finish_pass(struct loop *l, int64_t now)
{
    if (!may_publish(l)) {
        lose_lead(l);
        return false;
    }
    publish(l);
    if (now >= l->next_trim_ms) {
        /* The hashes expire by themselves; the zset follows once a minute. */
        struct rc_err terr = RC_ERR_INIT;
        (void)store_trim_finished(l->store, now, l->cfg->agent.retention_s, &terr);
        l->next_trim_ms = now + 60000;
    }
    struct rc_err cerr = RC_ERR_INIT;
    if (consumer_commit(l->consumer, l->inputs, l->n_inputs, &cerr) != RC_OK) {
        log_warn("offset commit failed", "error=\"%s\"", cerr.msg);
    }
    log_debug("pass published", "changes=%zu inputs=%zu", l->changes.n, l->n_inputs);
    drop_inputs(l);
    change_list_reset(&l->changes);
    registry_figures(l->reg, l->gauges.researches, &l->gauges.waiting);
    int64_t since[WORKER_TYPE_COUNT];
    registry_waits(l->reg, l->gauges.waiting_by_type, since);
    for (int t = 0; t < WORKER_TYPE_COUNT; t++) {
        l->gauges.oldest_wait_s[t] =
            since[t] > 0 && now > since[t] ? (double)(now - since[t]) / 1e3 : 0;
        l->gauges.workers_live[t] = (int64_t)workers_live(l->workers, (enum worker_type)t);
        l->gauges.workers_busy[t] = (int64_t)workers_busy(l->workers, (enum worker_type)t);
    }
    l->gauges.budget_limit_usd = l->cfg->agent.daily_budget_usd;
    metrics_set_gauges(l->metrics, &l->gauges);
    metrics_set_up(l->metrics, true, !l->kafka.down, l->leading);
    return true;
}

/* True when some research waits for a type of worker none of which is known free. */
static bool
starved(const struct loop *l)
{
    for (int t = 0; t < WORKER_TYPE_COUNT; t++) {
        if (waitq_len(l->waiting, (enum worker_type)t) > 0 &&
            workers_count_free(l->workers, (enum worker_type)t) == 0) {
            return true;
        }
    }
    return false;
}

/* Whether this pass reads the heartbeats: always for a full sweep; between sweeps only when
 * a research waits for a type of worker none of which is known free (one may have turned free
 * without a completion, or joined), and not more often than BEATS_REFRESH_MS. */
static bool
beats_due(const struct loop *l, bool sweep)
{
    if (sweep || l->beats_read_mono == 0) {
        return true;
    }
    return clock_mono_ms() - l->beats_read_mono >= BEATS_REFRESH_MS && starved(l);
}

static bool
known_worker(const void *arg, const char *id)
{
    return workers_find(arg, id) != NULL;
}

/* When a lost dispatch waits on it (pass_ctx): has every input Kafka holds been read? Asked
 * after the pass, so that the write is not held up; the next cycle decides with it. */
static void
check_caught_up(struct loop *l)
{
    if (!l->want_caught_up || l->consumer == NULL) {
        return;
    }
    l->want_caught_up = false;
    const int64_t asked = clock_now_ms();
    if (!l->more_waiting && consumer_caught_up(l->consumer, 1000)) {
        l->caught_up_at_ms = asked;
    }
}

/* One pass: heartbeats when due, inputs, advance, one write, publish, commit. Every pass
 * advances what its inputs touched and what free workers can take; while a sweep is due, it
 * also advances the sweep's next slice. Failures are handled here (logged, backed off, the
 * pass planned again later). */
static void
iterate(struct loop *l, volatile sig_atomic_t *stop, struct rc_err *err)
{
    const int64_t t0 = clock_mono_us();
    const int64_t now = clock_now_ms();
    const bool sweep = l->sweep_due;
    bool read_beats = beats_due(l, sweep && !l->sweeping);
    if (!read_beats && store_find_new_workers(l->store, now, l->cfg->agent.worker_timeout_ms,
                                              known_worker, l->workers, &read_beats,
                                              err) != RC_OK) {
        redis_failed(l, err, stop);
        return;
    }
    if (read_beats) {
        struct worker_beat *beats = NULL;
        size_t n_beats = 0;
        if (store_read_workers(l->store, now, l->cfg->agent.worker_timeout_ms, &beats, &n_beats,
                               err) != RC_OK) {
            redis_failed(l, err, stop);
            return;
        }
        workers_begin(l->workers, beats, n_beats, now, l->cfg->agent.worker_timeout_ms);
        l->beats_read_mono = clock_mono_ms();
    }

    struct intake_env env = pass_env(l, now);
    if (intake_plan(&env, l->inputs, l->n_inputs, &l->changes, err) != RC_OK) {
        memset(&l->tally, 0, sizeof(l->tally)); /* counted again when the inputs are */
        redis_failed(l, err, stop);
        return;
    }
    if (sweep && !l->sweeping) {
        sweep_begin(l);
    }
    advance_changed(l, now);
    const bool swept = sweep && advance_sweep(l, now);
    merge_changes(l);
    number_messages(l, &l->changes);
    if (write_pass(l, now, swept, stop, err) && finish_pass(l, now)) {
        check_caught_up(l);
        if (sweep) {
            l->sweep_ms += (double)(clock_mono_us() - t0) / 1000.0;
        }
        if (swept) {
            l->sweeping = false;
            l->sweep_due = false;
            l->last_cycle_ms = l->sweep_ms;
            metrics_observe_cycle(l->metrics, l->last_cycle_ms / 1000.0);
        }
    } else {
        memset(&l->tally, 0, sizeof(l->tally)); /* counted again when the inputs are */
    }
}

/* Read inputs: wait until the first or the tick, then take what is already there. */
static enum rc_rc
gather(struct loop *l, int64_t wait_ms, struct rc_err *err)
{
    size_t bytes = 0;
    for (size_t i = 0; i < l->n_inputs; i++) {
        bytes += l->inputs[i].len + l->inputs[i].key_len;
    }
    l->more_waiting = true;
    while (l->n_inputs < BATCH_MAX && bytes < BATCH_MAX_BYTES) {
        struct input in = {0};
        bool got = false;
        enum rc_rc rc =
            consumer_poll(l->consumer, l->n_inputs == 0 ? (int)wait_ms : 0, &in, &got, err);
        if (rc != RC_OK) {
            return rc;
        }
        if (!got) {
            l->more_waiting = false;
            return RC_OK;
        }
        bytes += in.len + in.key_len;
        l->inputs = xgrow(l->inputs, &l->cap_inputs, l->n_inputs + 1, sizeof(*l->inputs));
        l->inputs[l->n_inputs++] = in;
    }
    return RC_OK;
}

/* The producer met a fatal error (librdkafka cannot go on with it): make a new one (contract
 * §7) and publish the outbox again, which holds every message the old one may have lost. */
static enum rc_rc
renew_producer(struct loop *l, struct rc_err *err)
{
    log_error("kafka producer fatal error: making a new producer", "instance=%s", l->instance);
    producer_free(l->producer, 0);
    l->producer = NULL;
    enum rc_rc rc = producer_new(&l->producer, &l->cfg->kafka, err);
    if (rc != RC_OK) {
        return rc;
    }
    acks_clear(l->acks);
    l->outbox_due = l->leading;
    return RC_OK;
}

enum rc_rc
loop_run(struct loop *l, volatile sig_atomic_t *stop, struct rc_err *err)
{
    const int64_t interval = l->cfg->agent.poll_interval_ms;
    l->next_tick_mono_ms = clock_mono_ms();
    while (!*stop) {
        if (producer_is_fatal(l->producer) && renew_producer(l, err) != RC_OK) {
            return err->rc; /* a configuration librdkafka refuses: it did not change */
        }
        settle_deliveries(l);
        int64_t now = clock_mono_ms();
        bool tick = now >= l->next_tick_mono_ms;
        if (tick || !l->leading || !l->mirror_ok || l->outbox_due || l->consumer == NULL) {
            bool kafka_failed = false;
            enum rc_rc rc = ensure_leading(l, &kafka_failed, err);
            if (rc == RC_EINVAL || rc == RC_ENOTFOUND) {
                return rc; /* bad configuration, or topics that cannot exist */
            }
            if (rc != RC_OK) {
                if (kafka_failed) {
                    metrics_set_up(l->metrics, !l->redis.down, false, l->leading);
                    outage_failed(&l->kafka, err, stop);
                } else {
                    redis_failed(l, err, stop);
                }
                continue;
            }
            if (!l->leading) {
                metrics_set_up(l->metrics, true, !l->kafka.down, false);
                nap(interval, stop);
                continue;
            }
        }
        if (tick) {
            l->next_tick_mono_ms = now + interval;
            l->sweep_due = true;
        }
        after_kafka_outage(l, tick);
        /* Sleep until an input, the tick, or (while researches wait for workers none of which
         * is free) the next heartbeat read; not at all when a sweep is due. */
        now = clock_mono_ms();
        int64_t wait_ms = l->sweep_due ? 0 : l->next_tick_mono_ms - now;
        if (wait_ms > 0 && starved(l)) {
            int64_t beats_at = l->beats_read_mono + BEATS_REFRESH_MS;
            wait_ms = beats_at - now < wait_ms ? beats_at - now : wait_ms;
        }
        /* Woken at least every STOP_CHECK_MS: librdkafka's wait does not end on SIGTERM, and a
         * stop must not wait out a long AGENT_POLL_INTERVAL. */
        wait_ms = wait_ms > STOP_CHECK_MS ? STOP_CHECK_MS : wait_ms;
        if (gather(l, wait_ms > 0 ? wait_ms : 0, err) != RC_OK) {
            /* A fatal consumer error: a new consumer reads again from the committed offsets
             * (contract §7: never an exit). */
            log_error("kafka consumer fatal error: making a new consumer", "error=\"%s\"",
                      err->msg);
            consumer_free(l->consumer);
            l->consumer = NULL;
            drop_inputs(l);
            continue;
        }
        if (l->n_inputs > 0 || l->sweep_due || beats_due(l, false)) {
            iterate(l, stop, err);
        }
    }
    log_info("shutting down", "in_flight=%d", producer_in_flight(l->producer));
    /* Let Kafka take what this run published and clear it from the outbox, so a successor
     * does not publish it again. */
    producer_flush(l->producer, SHUTDOWN_FLUSH_MS);
    l->flushed = true;
    if (producer_in_flight(l->producer) > 0) {
        log_warn("kafka did not take everything: the outbox keeps it for the next leader",
                 "in_flight=%d", producer_in_flight(l->producer));
    }
    settle_deliveries(l);
    if (l->leading) {
        /* What is done is written; a successor may start at once instead of after the TTL. */
        bool leading = false;
        struct rc_err lerr = RC_ERR_INIT;
        (void)store_lease(l->store, 0, &leading, &lerr);
    }
    return RC_OK;
}
