/* SPDX-License-Identifier: MIT
 * stub-worker: simulates N workers of one type in one process, on one thread and one event
 * loop, following the contract's worker rules (§2, §3, §5): heartbeats in Redis, dispatches
 * read from every partition of the type's topic, completions on research.completions. It is
 * the model a real worker copies, so every rule a worker must keep is here, in one file, in
 * the order a reader needs it; what is only simulated lives in stubsim.c, the command line in
 * stubopt.c. */
#include <librdkafka/rdkafka.h>

#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/buf.h"
#include "common/cfg.h"
#include "common/clock.h"
#include "common/kclient.h"
#include "common/log.h"
#include "common/rc_err.h"
#include "common/stopsig.h"
#include "common/xalloc.h"
#include "contract/fields.h"
#include "contract/keys.h"
#include "contract/limits.h"
#include "contract/phase.h"
#include "proto/msg.h"
#include "proto/value.h"
#include "common/redislink.h"
#include "tools/stub-worker/stubopt.h"
#include "tools/stub-worker/stubsim.h"

#define TOOL "stub-worker"

#define SEEN_MAX 64               /* dispatch ids each worker remembers having run */
#define LOOP_MAX_WAIT_MS 200      /* bounds how long a SIGTERM waits for the loop */
#define KAFKA_TIMEOUT_MS 5000     /* metadata and watermark queries at start-up */
#define START_RETRY_MS 500        /* between start-up attempts while Kafka is not ready */
#define FLUSH_TIMEOUT_MS 10000    /* how long shutdown waits for unsent completions */
#define LATENCY_BUF_BYTES 65536   /* --latency-log's stdio buffer */
#define TURN_MAX_MESSAGES 1000    /* messages one loop turn takes from Kafka */
#define RESEND_PAUSE_MS 1000 /* between a completion's failed delivery and producing it again */
#define CHECK_RETRY_MS 200   /* after a failed research check, before kept ones are asked again */

extern char **environ;

/* ---- State -------------------------------------------------------------------------------- */

struct worker;

/* A completion handed to the producer that Kafka has not yet acknowledged (no delivery report
 * without error served yet). While it exists its worker's heartbeat still names its dispatch
 * (worker_shown). Owned by its worker's `unacked` list; while `queued`, librdkafka also holds a
 * borrowed pointer to it (the message's opaque) and to `wire` (produced without a copy), so it
 * is freed only by its successful delivery report or after the producer is destroyed. */
struct unacked {
    struct unacked *next; /* the worker's next older one */
    struct worker *w;
    char dispatch_id[LIMITS_ID_MAX + 1];
    char research_id[LIMITS_ID_MAX + 1];
    char *wire; /* the encoded completion (owned), produced again when its delivery fails */
    size_t wire_len;
    bool queued;      /* in the producer's queue; false: waits to be produced (again) */
    int64_t n_failed; /* failed deliveries or produce calls, to log only the first */
};

/* One simulated worker. It is idle (`busy` false, ids empty) or runs one dispatch. */
struct worker {
    char id[LIMITS_ID_MAX + 1];
    char *hb_key; /* <prefix>worker:<id>, its heartbeat hash */
    bool busy;
    bool dying;         /* --die-after reached: silent once its "busy" beat is written */
    bool silent;        /* dead: no heartbeats, no work, ever again */
    bool beat_due;      /* its state changed: heartbeat at the next chance */
    int64_t n_accepted; /* dispatches it accepted, for --die-after */
    char dispatch_id[LIMITS_ID_MAX + 1]; /* the current dispatch, "" when idle */
    char research_id[LIMITS_ID_MAX + 1];
    char *model;                            /* the dispatch params' model (owned), NULL when nil */
    int64_t done_at_ms;                     /* monotonic: when the current dispatch completes */
    bool will_fail;                         /* decided when it starts, from --fail-prob */
    char seen[SEEN_MAX][LIMITS_ID_MAX + 1]; /* ring of the last dispatch ids run or refused */
    size_t seen_next;
    /* A dispatch Redis could not yet confirm (the research check): its message, kept and
     * checked again once Redis answers, instead of being dropped. */
    char *pending;
    size_t pending_len;
    struct unacked *unacked; /* its completions Kafka has not acknowledged, newest first */
};

/* What the research check of a dispatch found. */
enum check_answer {
    CHECK_UNKNOWN = 0, /* not (yet) answered: Redis down or failing */
    CHECK_CURRENT,     /* the research still names this dispatch: run it */
    CHECK_STALE,       /* it does not (retried, aborted, finished, or no such research) */
    CHECK_UNREADABLE,  /* the research key holds another type than a hash: never confirmable */
};

/* A dispatch that waits, within one loop turn, for its research check (contract §2). */
struct check {
    struct worker *w; /* whom it is addressed to */
    struct msg m;     /* the decoded dispatch (owned) */
    const char *raw;  /* its message: the Kafka payload (borrowed for the turn) or `owned` */
    size_t raw_len;
    char *owned;    /* a message kept from an earlier turn (w->pending, taken back), or NULL */
    struct buf key; /* <prefix>research:<research_id>, its buffer reused from turn to turn */
    enum check_answer answer;
};

/* What one loop turn holds: allocated once (workers_init) and reused from turn to turn. */
struct turn {
    rd_kafka_message_t *rkms[TURN_MAX_MESSAGES]; /* taken from Kafka, destroyed at its end */
    size_t n_rkms;
    struct check *checks; /* cap: one per message, plus one kept dispatch per worker */
    size_t n_checks;
    size_t cap_checks;
    const char **keys; /* research_check's arguments, cap_checks each */
    const char **want;
    bool *same;
};

struct stub {
    struct cfg cfg;
    struct stubopt opt;
    const char *dispatch_topic;    /* borrowed from cfg */
    const char *completions_topic; /* borrowed from cfg */
    char *workers_key;             /* <prefix>workers:<type>, the liveness zset */
    struct kclient *kproducer;
    struct kclient *kconsumer;
    rd_kafka_t *producer; /* kclient_rk(kproducer) */
    rd_kafka_t *consumer; /* kclient_rk(kconsumer) */
    struct redislink *redis;
    bool redis_down;         /* an outage is logged once, and its end once */
    bool ready;              /* the ready line was printed */
    struct worker *workers;
    size_t n_workers;
    char *id_stem;      /* "<prefix><type>-": every worker id is this and its number */
    size_t id_stem_len; /* strlen(id_stem) */
    struct turn turn;
    struct redislink_cmd *beat_cmds; /* flush_heartbeats' pipeline, sized for every worker */
    const char **beat_words;
    struct buf name; /* publish_completion's result strings, reused */
    struct buf path;
    size_t n_queued;        /* completions in the producer's queue (unacked and queued) */
    int64_t produced_ms;    /* monotonic: when a completion was last handed to the producer */
    size_t n_resend;        /* unacked completions waiting to be produced again */
    int64_t resend_at_ms;   /* monotonic: not before this */
    uint64_t rng;           /* stubsim_rand state */
    int64_t next_beat_ms;   /* monotonic: the next periodic heartbeat of all workers */
    int64_t beat_retry_ms;  /* monotonic: no heartbeat attempt before this (Redis down) */
    int64_t check_retry_ms; /* monotonic: kept dispatches are not checked again before this */
    FILE *latency;          /* --latency-log, NULL without it */
};

/* One line on stderr under --verbose only. */
static void verbose(const struct stub *s, const char *fmt, ...) RC_PRINTF(2, 3);

static void
verbose(const struct stub *s, const char *fmt, ...)
{
    if (!s->opt.verbose) {
        return;
    }
    va_list ap;
    va_start(ap, fmt);
    fputs(TOOL ": ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

/* --latency-log: one line `<what> <research_id> <phase> <unix us>` (see stubopt.c). Only for
 * measuring (tools/bench); a real worker has no need of it. Buffered: flushed when the loop
 * is idle and at exit, so that writing it costs no system call per event under load. */
static void
latency_note(const struct stub *s, const char *what, const char *research_id, enum phase phase)
{
    struct timespec ts;

    if (s->latency == NULL || clock_gettime(CLOCK_REALTIME, &ts) != 0) {
        return;
    }
    int64_t us = (int64_t)ts.tv_sec * 1000000 + (int64_t)(ts.tv_nsec / 1000);
    fprintf(s->latency, "%s %s %s %" PRId64 "\n", what, research_id, phase_name(phase), us);
}

/* ---- Redis: heartbeats and the research check --------------------------------------------- */

/* A Redis problem is logged when an outage starts and when it ends, never at each retry. */
static void
redis_failed(struct stub *s, const struct rc_err *err)
{
    if (!s->redis_down) {
        fprintf(stderr, TOOL ": redis failing, retrying: %s\n", err->msg);
        s->redis_down = true;
    }
}

static void
redis_ok(struct stub *s)
{
    if (s->redis_down) {
        fprintf(stderr, TOOL ": redis back\n");
        s->redis_down = false;
    }
}

/* What `w`'s heartbeat says: its state ("busy" or "idle") and the ids it names. Busy with
 * the dispatch it runs; else, while Kafka has not acknowledged the completion of one it ran,
 * still busy with that one (the newest): "completion first, then idle" (contract §7). A worker
 * that showed idle as soon as it had handed its completion to the producer would, during a
 * Kafka outage, stop naming a picked-up dispatch whose completion cannot yet be applied, and
 * the coordinator would send it again as lost. Internally the worker is free at once (`busy`
 * false): the next dispatch, which the coordinator sends once it applied the completion, may
 * arrive before the delivery report, and then the heartbeat names that one. */
static const char *
worker_shown(const struct worker *w, const char **dispatch_id, const char **research_id)
{
    if (w->busy) {
        *dispatch_id = w->dispatch_id;
        *research_id = w->research_id;
        return hb_state_name(HB_BUSY);
    }
    if (w->unacked != NULL) {
        *dispatch_id = w->unacked->dispatch_id;
        *research_id = w->unacked->research_id;
        return hb_state_name(HB_BUSY);
    }
    *dispatch_id = "";
    *research_id = "";
    return hb_state_name(HB_IDLE);
}

/* After the heartbeat pipeline got an error reply: the workers whose heartbeat key holds
 * another type than a hash (someone wrote it), found with one TYPE each in one round trip.
 * Such a worker can never heartbeat (its HSET fails inside the EXEC, whose other commands
 * still apply), so it is dead from now on, with an error line: left due, it would make every
 * later flush fail and be retried every 100 ms, and a --die-after worker among the others,
 * whose "busy" beat was in fact written, would never fall silent. Returns how many were found;
 * 0 also when the TYPEs cannot be had (the error was not one key's: OOM, NOPERM, ...). */
static size_t
silence_unbeatable(struct stub *s)
{
    struct redislink_cmd *cmds = s->beat_cmds; /* n_workers + 3 of them: enough for n_due */
    const char **words = s->beat_words;        /* 14 * n_workers + 2: enough for 2 * n_due */
    struct worker **due = xcalloc(s->n_workers, sizeof(*due));
    struct redislink_reply *replies = NULL;
    size_t n_due = 0;
    size_t n_found = 0;

    for (size_t i = 0; i < s->n_workers; i++) {
        struct worker *w = &s->workers[i];
        if (w->beat_due && !w->silent) {
            words[2 * n_due] = "TYPE";
            words[2 * n_due + 1] = w->hb_key;
            cmds[n_due] = (struct redislink_cmd){2, &words[2 * n_due]};
            due[n_due++] = w;
        }
    }
    if (n_due > 0 && redislink_query(s->redis, cmds, n_due, &replies, NULL) == RC_OK) {
        for (size_t i = 0; i < n_due; i++) {
            const struct redislink_reply *r = &replies[i];
            if (r->type == REDISLINK_STR && strcmp(r->str, "hash") != 0 &&
                strcmp(r->str, "none") != 0) {
                fprintf(stderr,
                        TOOL ": %s: %s holds a %s, not a hash: it cannot heartbeat and is "
                             "dead from now on\n",
                        due[i]->id, due[i]->hb_key, r->str);
                due[i]->silent = true;
                n_found++;
            }
        }
        redislink_replies_free(replies, n_due);
    }
    free(due);
    return n_found;
}

/* Write the heartbeat of every worker whose beat is due, exactly as the contract says (§5):
 *
 *   HSET <prefix>worker:<id> type <type> state idle|busy dispatch_id <id|"">
 *        research_id <id|""> last_seen <ms>
 *   ZADD <prefix>workers:<type> <ms> <id>
 *
 * with the same <ms> (Unix time, shifted by --clock-skew-ms) in both, all workers in one
 * MULTI/EXEC sent as one pipeline: one round trip however many workers changed state. Their
 * ZADDs are one command with a score and member per worker, which Redis applies exactly as one
 * ZADD each. What a worker shows is worker_shown's. A silent worker never beats. On failure
 * the beats stay due and are retried after a pause. */
static void
flush_heartbeats(struct stub *s, int64_t now_ms)
{
    size_t n_due = 0;
    for (size_t i = 0; i < s->n_workers; i++) {
        n_due += s->workers[i].beat_due && !s->workers[i].silent;
    }
    if (n_due == 0 || now_ms < s->beat_retry_ms) {
        return;
    }

    /* --clock-skew-ms: this host's clock is that far off; the contract's clock rule (§5) is
     * about exactly this, so both the field and the score carry the skewed time. */
    char last_seen[24];
    snprintf(last_seen, sizeof(last_seen), "%" PRId64, clock_now_ms() + s->opt.clock_skew_ms);
    const char *type = worker_type_name(s->opt.shape.type);
    const char *multi[] = {"MULTI"};
    const char *exec[] = {"EXEC"};
    /* MULTI, an HSET (12 words) per worker, the ZADD (2 words, then 2 per worker), EXEC. The
     * arrays are sized for every worker (workers_init): the HSETs' words first, then ZADD's. */
    struct redislink_cmd *cmds = s->beat_cmds;
    size_t c = 0;
    const char **w_at = s->beat_words;
    const char **zadd = s->beat_words + 12 * s->n_workers;
    size_t zadd_argc = 0;

    zadd[zadd_argc++] = "ZADD";
    zadd[zadd_argc++] = s->workers_key;

    cmds[c++] = (struct redislink_cmd){1, multi};
    for (size_t i = 0; i < s->n_workers; i++) {
        const struct worker *w = &s->workers[i];
        if (!w->beat_due || w->silent) {
            continue;
        }
        const char *dispatch_id = NULL;
        const char *research_id = NULL;
        const char *state = worker_shown(w, &dispatch_id, &research_id);
        /* clang-format off */
        const char *hset[] = {
            "HSET",         w->hb_key,
            HB_TYPE,        type,
            HB_STATE,       state,
            HB_DISPATCH_ID, dispatch_id,
            HB_RESEARCH_ID, research_id,
            HB_LAST_SEEN,   last_seen,
        };
        /* clang-format on */
        memcpy(w_at, hset, sizeof(hset));
        cmds[c++] = (struct redislink_cmd){12, w_at};
        w_at += 12;
        zadd[zadd_argc++] = last_seen;
        zadd[zadd_argc++] = w->id;
    }
    cmds[c++] = (struct redislink_cmd){zadd_argc, zadd};
    cmds[c++] = (struct redislink_cmd){1, exec};

    struct rc_err err = RC_ERR_INIT;
    if (redislink_run(s->redis, cmds, c, &err) == RC_OK) {
        redis_ok(s);
        s->beat_retry_ms = 0;
        for (size_t i = 0; i < s->n_workers; i++) {
            struct worker *w = &s->workers[i];
            w->silent = w->silent || (w->dying && w->beat_due); /* its last beat is out */
            w->beat_due = false;
        }
        if (!s->ready) {
            /* Printed once every worker is visible as live, so a caller may rely on it. */
            fprintf(stderr, TOOL ": %zu %s workers ready\n", s->n_workers, type);
            s->ready = true;
        }
    } else {
        redis_failed(s, &err);
        if (err.rc == RC_EBACKEND && silence_unbeatable(s) > 0) {
            return; /* the others' beats go out again at once */
        }
        /* The link paces reconnects itself; the 100 ms floor also paces an error reply. */
        int64_t retry = redislink_retry_at_ms(s->redis);
        s->beat_retry_ms = retry > now_ms + 100 ? retry : now_ms + 100;
    }
}

/* Whether the research of each check still names its dispatch (contract §2): a dispatch may
 * have been retried or aborted while its message waited. `<prefix>research:<id>`'s dispatch_id
 * is read for all of them in one pipeline: one round trip for the whole turn. checks[i].answer
 * is written on RC_OK only. RC_EBACKEND: Redis answered one of them with an error. */
static enum rc_rc
research_check(struct stub *s, struct check *checks, size_t n, struct rc_err *err)
{
    struct turn *t = &s->turn;

    for (size_t i = 0; i < n; i++) {
        const struct dispatch *d = &checks[i].m.u.dispatch;
        t->keys[i] = keys_research(&checks[i].key, s->cfg.redis.key_prefix, d->research_id);
        t->want[i] = d->dispatch_id;
    }
    enum rc_rc rc =
        redislink_hget_equal(s->redis, t->keys, research_field_name(RF_DISPATCH_ID), t->want, n, t->same, err);
    for (size_t i = 0; rc == RC_OK && i < n; i++) {
        checks[i].answer = t->same[i] ? CHECK_CURRENT : CHECK_STALE;
    }
    return rc;
}

/* Whether `key` holds a value of another type than a hash (TYPE answers neither "hash" nor
 * "none"); false also when Redis cannot say. */
static bool
key_is_not_hash(struct stub *s, const char *key)
{
    const char *argv[] = {"TYPE", key};
    const struct redislink_cmd cmd = {2, argv};
    struct redislink_reply *reply = NULL;

    if (redislink_query(s->redis, &cmd, 1, &reply, NULL) != RC_OK) {
        return false;
    }
    bool other = reply->type == REDISLINK_STR && strcmp(reply->str, "hash") != 0 &&
                 strcmp(reply->str, "none") != 0;
    redislink_replies_free(reply, 1);
    return other;
}

/* The turn's research check got an error reply: find whose, asking each check alone (one round
 * trip each, only in this case). A check whose research key holds another type than a hash
 * can never be confirmed: it is answered CHECK_UNREADABLE, and refused. Left unanswered it
 * would be kept and asked again with every later turn's dispatches, failing all their checks
 * too, for ever: one corrupt key would stop every worker of the process. An error that is not
 * one key's (LOADING, NOPERM, MASTERDOWN, ...) leaves its checks unanswered, to be kept and
 * asked again later. Returns the first failure left (others' checks are answered meanwhile),
 * or RC_OK when every check got an answer. */
static enum rc_rc
research_check_each(struct stub *s, struct rc_err *err)
{
    struct turn *t = &s->turn;
    enum rc_rc first = RC_OK;

    for (size_t i = 0; i < t->n_checks; i++) {
        struct check *c = &t->checks[i];
        struct rc_err one = RC_ERR_INIT;
        enum rc_rc rc = research_check(s, c, 1, &one);
        if (rc == RC_EBACKEND && key_is_not_hash(s, c->key.data)) {
            c->answer = CHECK_UNREADABLE;
            fprintf(stderr, TOOL ": %s: refusing dispatch %s: its research check failed: %s\n",
                    c->w->id, c->m.u.dispatch.dispatch_id, one.msg);
            continue;
        }
        if (rc != RC_OK && first == RC_OK) {
            first = rc;
            if (err != NULL) {
                *err = one;
            }
        }
        if (rc == RC_EUNAVAIL) {
            break; /* an outage: the rest stay unanswered */
        }
    }
    return first;
}

/* ---- Kafka -------------------------------------------------------------------------------- */

/* A fatal Kafka error (kclient logged it): stop and exit 1. */
static bool
kafka_fatal(const struct stub *s)
{
    return (s->kproducer != NULL && kclient_fatal(s->kproducer)) ||
           (s->kconsumer != NULL && kclient_fatal(s->kconsumer));
}

/* Unlink `u` from its worker's list and free it. Its worker's heartbeat is due when what it
 * shows changes (it names the next older unacknowledged completion, or shows idle). */
static void
unacked_drop(struct unacked *u)
{
    struct worker *w = u->w;
    struct unacked **at = &w->unacked;

    while (*at != u) {
        RC_ASSERT(*at != NULL); /* every entry is on its worker's list until dropped */
        at = &(*at)->next;
    }
    *at = u->next;
    if (!w->busy && at == &w->unacked) {
        w->beat_due = true; /* "then idle", at once (contract §7) */
    }
    free(u->wire);
    free(u);
}

/* The fate of each completion, served by our poll calls; the message's opaque is its unacked
 * entry. Delivered: Kafka has it, the worker may stop naming its dispatch. Not delivered
 * (librdkafka has already retried for message.timeout.ms): the coordinator has not got it and
 * the research waits for it, so it is produced again (resend_completions) after a pause; its
 * dispatch stays named meanwhile. */
static void
delivered(void *owner, const rd_kafka_message_t *rkm)
{
    struct stub *s = owner;
    struct unacked *u = rkm->_private;

    if (u == NULL) {
        return; /* not one of ours: every completion carries its entry */
    }
    u->queued = false;
    s->n_queued--;
    if (rkm->err != RD_KAFKA_RESP_ERR_NO_ERROR) {
        if (u->n_failed++ == 0) {
            fprintf(stderr,
                    TOOL ": %s: completion of %s (research %s) not delivered: %s; "
                         "producing it again\n",
                    u->w->id, u->dispatch_id, u->research_id, rd_kafka_err2str(rkm->err));
        }
        s->n_resend++;
        s->resend_at_ms = clock_mono_ms() + RESEND_PAUSE_MS;
        return;
    }
    (void)kclient_answered(s->kproducer); /* Kafka works again: log the next problem */
    if (u->n_failed > 0) {
        fprintf(stderr, TOOL ": %s: completion of %s delivered after %" PRId64 " failures\n",
                u->w->id, u->dispatch_id, u->n_failed);
    }
    unacked_drop(u);
}

static enum rc_rc
kafka_open(struct stub *s, struct rc_err *err)
{
    struct buf group = BUF_INIT;
    /* librdkafka 2.0 refuses rd_kafka_assign() without a group.id, although manual assignment
     * joins no group; nothing is ever committed under it. */
    buf_printf(&group, "%s%s", s->opt.id_prefix, worker_type_name(s->opt.shape.type));
    /* clang-format off */
    const char *const producer_defaults[] = {
        /* A turn's completions are produced back to back and leave in few requests. Measured
         * with tools/bench: a lone completion waits ~1 ms with "0.2" as with "1" (librdkafka
         * takes fractions but seems to wait in whole ms); "0" sends it ~1 ms sooner but makes
         * more, smaller requests under load (devbroker CPU +30%). */
        "linger.ms", "0.2",
        NULL,
    };
    const char *const consumer_defaults[] = {
        "group.id",                 group.data,
        "enable.auto.commit",       "false",
        "enable.auto.offset.store", "false",
        /* The dev broker answers an empty fetch only after the whole fetch.wait.max.ms
         * (default 500 ms), which would delay every dispatch by that much; 10 ms keeps a
         * dispatch's delay to ~5 ms. KAFKA_PROP_FETCH_WAIT_MAX_MS overrides it. */
        "fetch.wait.max.ms",        "10",
        NULL,
    };
    /* clang-format on */

    const struct kclient_spec producer = {.type = RD_KAFKA_PRODUCER,
                                          .role = "producer",
                                          .defaults = producer_defaults,
                                          .owner = s,
                                          .delivered = delivered};
    const struct kclient_spec consumer = {
        .type = RD_KAFKA_CONSUMER, .role = "consumer", .defaults = consumer_defaults};
    enum rc_rc rc = kclient_new(&s->cfg.kafka, &producer, &s->kproducer, err);
    if (rc == RC_OK) {
        s->producer = kclient_rk(s->kproducer);
        rc = kclient_new(&s->cfg.kafka, &consumer, &s->kconsumer, err);
    }
    if (rc == RC_OK) {
        s->consumer = kclient_rk(s->kconsumer);
        /* Learn where research.completions lives now: a producer that first meets a topic
         * when it sends holds that message until its metadata arrives (up to a second). */
        rd_kafka_topic_t *rkt =
            rd_kafka_topic_new(s->producer, s->cfg.kafka.topics[TOPIC_COMPLETIONS], NULL);
        const struct rd_kafka_metadata *md = NULL;
        if (rkt != NULL &&
            rd_kafka_metadata(s->producer, 0, rkt, &md, 5000) == RD_KAFKA_RESP_ERR_NO_ERROR) {
            rd_kafka_metadata_destroy(md);
        }
        if (rkt != NULL) {
            rd_kafka_topic_destroy(rkt);
        }
    }
    buf_release(&group);
    return rc;
}

/* Assign every partition of the dispatch topic at its current end (the high watermark), so
 * the workers see only dispatches sent from now on. The caller writes the first heartbeats
 * only after this succeeds: a worker that looks live has never missed a dispatch. (Assigning
 * RD_KAFKA_OFFSET_END instead would resolve the end later, in the background, and could skip
 * a dispatch sent in between.) So a process restarted with the same worker ids (its former one
 * killed mid-dispatch, say) never reads, nor runs, a dispatch sent to its former process: its
 * workers start idle, and the coordinator sends that work on as lost (§7). RC_EUNAVAIL while
 * the cluster or the topic is not ready. */
static enum rc_rc
assign_dispatch_partitions(struct stub *s, struct rc_err *err)
{
    rd_kafka_topic_partition_list_t *parts = rd_kafka_topic_partition_list_new(8);
    enum rc_rc rc = kclient_add_partitions(s->consumer, s->dispatch_topic, KCLIENT_START_END_NOW,
                                           parts, KAFKA_TIMEOUT_MS, err);
    rd_kafka_resp_err_t kerr = RD_KAFKA_RESP_ERR_NO_ERROR;
    if (rc == RC_OK && (kerr = rd_kafka_assign(s->consumer, parts)) != RD_KAFKA_RESP_ERR_NO_ERROR) {
        rc = rc_err_set(err, RC_EBACKEND, "kafka: assign %s: %s", s->dispatch_topic,
                        rd_kafka_err2str(kerr));
    }
    rd_kafka_topic_partition_list_destroy(parts);
    return rc;
}

/* Retry the assignment until it succeeds, a permanent error, or a stop request (RC_OK with
 * stopsig_requested()). The topic is the coordinator's to create, so a worker started first
 * waits for it; the wait is logged once. */
static enum rc_rc
start_consuming(struct stub *s, struct rc_err *err)
{
    bool logged = false;

    while (!stopsig_requested() && !kafka_fatal(s)) {
        enum rc_rc rc = assign_dispatch_partitions(s, err);
        if (rc != RC_EUNAVAIL) {
            return rc;
        }
        if (!logged) {
            fprintf(stderr, TOOL ": waiting for Kafka: %s\n", err->msg);
            logged = true;
        }
        /* Serves the consumer's errors and logs while we wait; nothing is assigned yet. */
        rd_kafka_message_t *rkm = rd_kafka_consumer_poll(s->consumer, START_RETRY_MS);
        if (rkm != NULL) {
            rd_kafka_message_destroy(rkm);
        }
    }
    return kafka_fatal(s) ? rc_err_set(err, RC_EBACKEND, "kafka: fatal error") : RC_OK;
}

/* ---- Work --------------------------------------------------------------------------------- */

/* Our worker named `worker_id`, or NULL when it is not one of ours. Every worker of the type
 * reads every message of the type, so this runs for each message: the ids are
 * "<prefix><type>-<n>" (workers_init), and the worker is found from its number rather than by
 * comparing the id with all W of them. */
static struct worker *
worker_find(struct stub *s, const char *worker_id)
{
    if (strncmp(worker_id, s->id_stem, s->id_stem_len) != 0) {
        return NULL;
    }
    const char *digits = worker_id + s->id_stem_len;
    if (*digits < '1' || *digits > '9') {
        return NULL; /* no number, or a leading zero: not a name workers_init gives */
    }
    size_t n = 0;
    for (const char *p = digits; *p != '\0'; p++) {
        if (*p < '0' || *p > '9' || n > s->n_workers) {
            return NULL;
        }
        n = n * 10 + (size_t)(*p - '0');
    }
    return n <= s->n_workers ? &s->workers[n - 1] : NULL;
}

static bool
worker_has_seen(const struct worker *w, const char *dispatch_id)
{
    for (size_t i = 0; i < SEEN_MAX; i++) {
        if (strcmp(w->seen[i], dispatch_id) == 0) {
            return true;
        }
    }
    return false;
}

static void
worker_remember(struct worker *w, const char *dispatch_id)
{
    snprintf(w->seen[w->seen_next], sizeof(w->seen[0]), "%s", dispatch_id);
    w->seen_next = (w->seen_next + 1) % SEEN_MAX;
}

/* Forget the current dispatch; the state change is heartbeated at once. */
static void
worker_set_idle(struct worker *w)
{
    w->busy = false;
    w->dispatch_id[0] = '\0';
    w->research_id[0] = '\0';
    free(w->model);
    w->model = NULL;
    w->beat_due = true;
}

static void
worker_start(struct stub *s, struct worker *w, const struct dispatch *d)
{
    const struct kv *model = kv_find(d->params, d->n_params, "model");
    int64_t duration_ms =
        stubsim_rand_range(&s->rng, s->opt.duration_min_ms, s->opt.duration_max_ms);

    snprintf(w->dispatch_id, sizeof(w->dispatch_id), "%s", d->dispatch_id);
    snprintf(w->research_id, sizeof(w->research_id), "%s", d->research_id);
    w->model = model != NULL && model->val.kind == VALUE_STR ? xstrdup(model->val.s) : NULL;
    w->will_fail = stubsim_rand_unit(&s->rng) < s->opt.fail_prob;
    w->done_at_ms = clock_mono_ms() + duration_ms;
    w->busy = true;
    w->beat_due = true;
    verbose(s, "%s: started %s (research %s, attempt %" PRId64 ", %" PRId64 " ms)", w->id,
            d->dispatch_id, d->research_id, d->attempt, duration_ms);
}

/* Forget `w`'s unconfirmed dispatch (all of it when dispatch_id is NULL). */
static void
drop_pending(struct worker *w, const char *dispatch_id)
{
    if (w->pending == NULL) {
        return;
    }
    if (dispatch_id != NULL) {
        struct msg m = MSG_INIT;
        bool same = msg_decode(MSG_TOPIC_DISPATCH, w->pending, w->pending_len, &m, NULL) == RC_OK &&
                    m.kind == MSG_DISPATCH && strcmp(m.u.dispatch.dispatch_id, dispatch_id) == 0;
        msg_release(&m);
        if (!same) {
            return;
        }
    }
    free(w->pending);
    w->pending = NULL;
    w->pending_len = 0;
}

/* The contract's checks that need no Redis, in order: false when `d` is not to run on `w`.
 * Made when the message arrives, so that Redis is not asked about a dispatch refused anyway,
 * and again just before it starts (start_checked): an earlier dispatch of the same turn may
 * have made `w` busy, or been this very dispatch delivered twice. */
static bool
dispatch_is_runnable(struct stub *s, struct worker *w, const struct dispatch *d)
{
    /* Delivery is at least once: a dispatch already run (or refused, or aborted) is ignored. */
    if (worker_has_seen(w, d->dispatch_id)) {
        verbose(s, "%s: dispatch %s seen before, ignored", w->id, d->dispatch_id);
        return false;
    }
    /* The coordinator addresses only workers it believes free; should one arrive anyway, the
     * running dispatch wins. */
    if (w->busy) {
        fprintf(stderr, TOOL ": %s: busy with %s, ignoring dispatch %s\n", w->id, w->dispatch_id,
                d->dispatch_id);
        worker_remember(w, d->dispatch_id);
        return false;
    }
    return true;
}

/* A dispatch addressed to `w`, in message `m` (taken: left at MSG_INIT) read from `rkm`. It
 * waits for the research check, which the loop makes once for all the dispatches of the turn
 * (start_checked). */
static void
on_dispatch(struct stub *s, struct worker *w, struct msg *m, const rd_kafka_message_t *rkm)
{
    struct turn *t = &s->turn;

    if (!dispatch_is_runnable(s, w, &m->u.dispatch)) {
        return;
    }
    RC_ASSERT(t->n_checks < t->cap_checks); /* one per message, one kept per worker */
    struct check *c = &t->checks[t->n_checks++];
    c->w = w;
    c->m = *m;
    *m = (struct msg)MSG_INIT;
    c->raw = rkm->payload;
    c->raw_len = rkm->len;
    c->owned = NULL;
    c->answer = CHECK_UNKNOWN;
}

/* An abort addressed to `w`: stop its dispatch at once, with no completion. */
static void
on_abort(struct stub *s, struct worker *w, const struct abort_msg *a)
{
    drop_pending(w, a->dispatch_id);
    if (w->busy && strcmp(w->dispatch_id, a->dispatch_id) == 0) {
        verbose(s, "%s: aborted %s (%s)", w->id, a->dispatch_id,
                a->reason != NULL ? a->reason : "no reason");
        worker_set_idle(w);
        return;
    }
    /* Not running it: make sure that dispatch never starts, should it still arrive or wait
     * for its research check in this turn. */
    if (!worker_has_seen(w, a->dispatch_id)) {
        worker_remember(w, a->dispatch_id);
    }
}

/* One message from the dispatch topic. Every worker of the type reads every partition, so
 * most messages are for someone else and are dropped after decoding. */
static void
on_message(struct stub *s, const rd_kafka_message_t *rkm)
{
    struct msg m = MSG_INIT;
    struct rc_err err = RC_ERR_INIT;

    if (rkm->err != RD_KAFKA_RESP_ERR_NO_ERROR) {
        if (rkm->err != RD_KAFKA_RESP_ERR__PARTITION_EOF) {
            kclient_report(s->kconsumer, rkm->err, rd_kafka_message_errstr(rkm));
        }
        return;
    }
    (void)kclient_answered(s->kconsumer);
    if (msg_decode(MSG_TOPIC_DISPATCH, rkm->payload, rkm->len, &m, &err) != RC_OK) {
        fprintf(stderr,
                TOOL ": skipping invalid message at %s [%" PRId32 "] offset %" PRId64 ": %s\n",
                rd_kafka_topic_name(rkm->rkt), rkm->partition, rkm->offset, err.msg);
        return;
    }
    const char *worker_id = m.kind == MSG_DISPATCH ? m.u.dispatch.worker_id : m.u.abort.worker_id;
    struct worker *w = worker_find(s, worker_id);
    if (w == NULL || w->dying || w->silent) {
        goto out; /* not ours, or dead: a dead worker ignores everything */
    }
    if (m.kind == MSG_ABORT) {
        on_abort(s, w, &m.u.abort);
    } else if (m.u.dispatch.worker_type != s->opt.shape.type) {
        fprintf(stderr, TOOL ": %s: ignoring dispatch %s for a %s worker\n", w->id,
                m.u.dispatch.dispatch_id, worker_type_name(m.u.dispatch.worker_type));
    } else {
        latency_note(s, "recv", m.u.dispatch.research_id, m.u.dispatch.phase);
        on_dispatch(s, w, &m, rkm);
    }
out:
    msg_release(&m);
}

/* The dispatches Redis could not confirm in an earlier turn are checked again with this
 * turn's, once the link may be reopened and CHECK_RETRY_MS have passed since that failure.
 * Called before the turn's messages are acted on, so that the older dispatches come first. */
static void
queue_pending(struct stub *s, int64_t now_ms)
{
    struct turn *t = &s->turn;
    int64_t retry_at = redislink_retry_at_ms(s->redis);

    if ((retry_at != 0 && now_ms < retry_at) || now_ms < s->check_retry_ms) {
        return;
    }
    for (size_t i = 0; i < s->n_workers; i++) {
        struct worker *w = &s->workers[i];
        if (w->pending == NULL || w->busy || w->dying || w->silent) {
            continue;
        }
        RC_ASSERT(t->n_checks < t->cap_checks);
        struct check *c = &t->checks[t->n_checks];
        c->m = (struct msg)MSG_INIT;
        if (msg_decode(MSG_TOPIC_DISPATCH, w->pending, w->pending_len, &c->m, NULL) != RC_OK ||
            c->m.kind != MSG_DISPATCH) {
            msg_release(&c->m); /* cannot happen: it was decoded when it arrived */
            drop_pending(w, NULL);
            continue;
        }
        c->w = w;
        c->owned = w->pending; /* the worker's copy moves to the check */
        c->raw = c->owned;
        c->raw_len = w->pending_len;
        c->answer = CHECK_UNKNOWN;
        w->pending = NULL;
        w->pending_len = 0;
        t->n_checks++;
    }
}

/* Keep the dispatch of `c`, which Redis could not confirm, as its worker's `pending` (one per
 * worker, the first kept) to be checked again later: dropping it would leave the research
 * waiting for AGENT_DISPATCH_TIMEOUT. */
static void
keep_pending(struct stub *s, struct check *c)
{
    struct worker *w = c->w;

    if (w->pending != NULL) {
        return;
    }
    verbose(s, "%s: dispatch %s waits for redis to confirm it", w->id, c->m.u.dispatch.dispatch_id);
    if (c->owned != NULL) {
        w->pending = c->owned;
        c->owned = NULL;
    } else {
        w->pending = xmalloc(c->raw_len > 0 ? c->raw_len : 1);
        memcpy(w->pending, c->raw, c->raw_len);
    }
    w->pending_len = c->raw_len;
}

/* The turn's dispatches, in the order they arrived: ask Redis whether each is still its
 * research's (one round trip for all; one each when Redis answers with an error, to find
 * whose: research_check_each), then start those that are. A dispatch Redis cannot say about
 * is kept and checked again in a later turn (keep_pending, queue_pending). */
static void
start_checked(struct stub *s)
{
    struct turn *t = &s->turn;
    struct rc_err err = RC_ERR_INIT;

    if (t->n_checks == 0) {
        return;
    }
    enum rc_rc rc = research_check(s, t->checks, t->n_checks, &err);
    if (rc == RC_EBACKEND) {
        rc = research_check_each(s, &err);
    }
    if (rc == RC_OK) {
        redis_ok(s);
    } else {
        /* Paced here too: after an error reply the link may stay open, and queue_pending
         * would ask again at every turn. */
        redis_failed(s, &err);
        s->check_retry_ms = clock_mono_ms() + CHECK_RETRY_MS;
    }
    for (size_t i = 0; i < t->n_checks; i++) {
        struct check *c = &t->checks[i];
        struct worker *w = c->w;
        const struct dispatch *d = &c->m.u.dispatch;
        if (c->answer == CHECK_UNKNOWN) {
            keep_pending(s, c);
            continue;
        }
        if (w->dying || w->silent || !dispatch_is_runnable(s, w, d)) {
            continue;
        }
        worker_remember(w, d->dispatch_id);
        if (c->answer == CHECK_STALE) {
            verbose(s, "%s: dispatch %s is no longer research %s's, ignored", w->id, d->dispatch_id,
                    d->research_id);
        }
        if (c->answer != CHECK_CURRENT) {
            continue; /* CHECK_UNREADABLE was logged when found */
        }
        worker_start(s, w, d);
        w->n_accepted++;
        if (s->opt.die_after > 0 && w->n_accepted >= s->opt.die_after) {
            /* --die-after: the worker crashes mid-work. It shows the dispatch picked up (one
             * "busy" heartbeat), then falls silent for good and never completes it; its last
             * heartbeat ages until the coordinator declares it dead and sends the work on. */
            w->dying = true;
            verbose(s, "%s: dies with %s (--die-after)", w->id, d->dispatch_id);
        }
    }
}

/* ---- Results and completions -------------------------------------------------------------- */

/* Hand `u` to the producer, keyed by research_id so one research's messages stay in order
 * (§2), without a copy: `u` keeps the bytes until its delivery report. The producer retries by
 * itself; what it finally cannot deliver comes back through dr_msg_cb. A produce call that
 * fails (the local queue full, say) leaves `u` to be produced again after a pause. */
static void
unacked_produce(struct stub *s, struct unacked *u)
{
    rd_kafka_resp_err_t kerr = rd_kafka_producev(
        s->producer, RD_KAFKA_V_TOPIC(s->completions_topic),
        RD_KAFKA_V_KEY(u->research_id, strlen(u->research_id)),
        RD_KAFKA_V_VALUE(u->wire, u->wire_len), RD_KAFKA_V_OPAQUE(u), RD_KAFKA_V_END);
    if (kerr == RD_KAFKA_RESP_ERR_NO_ERROR) {
        u->queued = true;
        s->n_queued++;
        s->produced_ms = clock_mono_ms();
        return;
    }
    if (u->n_failed++ == 0) {
        fprintf(stderr, TOOL ": %s: cannot publish the completion of %s yet: %s\n", u->w->id,
                u->dispatch_id, rd_kafka_err2str(kerr));
    }
    s->n_resend++;
    s->resend_at_ms = clock_mono_ms() + RESEND_PAUSE_MS;
}

/* Produce again every completion whose delivery or produce call failed, once the pause since
 * the last failure is over (`force`: at once, at shutdown). */
static void
resend_completions(struct stub *s, int64_t now_ms, bool force)
{
    if (s->n_resend == 0 || (!force && now_ms < s->resend_at_ms)) {
        return;
    }
    s->n_resend = 0; /* unacked_produce counts again those that fail again */
    for (size_t i = 0; i < s->n_workers; i++) {
        for (struct unacked *u = s->workers[i].unacked; u != NULL; u = u->next) {
            if (!u->queued) {
                unacked_produce(s, u);
            }
        }
    }
}

/* Publish `w`'s completion to research.completions and remember it as unacknowledged: the
 * heartbeat names its dispatch until Kafka has it (worker_shown). */
static void
publish_completion(struct stub *s, struct worker *w)
{
    struct kv result[STUBSIM_RESULT_MAX];
    struct msg m = MSG_INIT;
    struct buf wire = BUF_INIT;

    buf_reset(&s->name);
    buf_reset(&s->path);

    m.kind = MSG_COMPLETION;
    m.ts_ms = clock_now_ms();
    m.u.completion.dispatch_id = w->dispatch_id;
    m.u.completion.research_id = w->research_id;
    m.u.completion.worker_id = w->id;
    m.u.completion.status = w->will_fail ? COMPLETION_FAILED : COMPLETION_COMPLETED;
    if (w->will_fail) {
        m.u.completion.error = "stub failure";
    } else {
        m.u.completion.n_result =
            stubsim_result(&s->opt.shape, w->research_id, w->model, result, &s->name, &s->path);
        m.u.completion.result = result;
    }
    msg_encode(&m, &wire);

    struct unacked *u = xcalloc(1, sizeof(*u));
    u->w = w;
    memcpy(u->dispatch_id, w->dispatch_id, sizeof(u->dispatch_id));
    memcpy(u->research_id, w->research_id, sizeof(u->research_id));
    u->wire_len = wire.len;
    u->wire = buf_detach(&wire);
    u->next = w->unacked;
    w->unacked = u;

    latency_note(s, "done", w->research_id, worker_type_phase(s->opt.shape.type));
    unacked_produce(s, u);
}

/* Complete every dispatch whose time has come. The completions are produced back to back, so
 * the producer sends them in one batch (linger.ms). */
static void
finish_due_work(struct stub *s, int64_t now_ms)
{
    for (size_t i = 0; i < s->n_workers; i++) {
        struct worker *w = &s->workers[i];
        if (w->busy && !w->dying && !w->silent && now_ms >= w->done_at_ms) {
            publish_completion(s, w);
            verbose(s, "%s: completed %s (%s)", w->id, w->dispatch_id,
                    w->will_fail ? "failed" : "completed");
            worker_set_idle(w);
        }
    }
}

/* ---- The loop ----------------------------------------------------------------------------- */

/* Take one turn's messages: wait (at most wait_ms) for the first, then every one already
 * there, without waiting, up to TURN_MAX_MESSAGES. Under load a turn so holds many dispatches,
 * which share its Redis round trips. Returns how many were taken. */
static size_t
take_messages(struct stub *s, int wait_ms)
{
    struct turn *t = &s->turn;
    rd_kafka_message_t *rkm = rd_kafka_consumer_poll(s->consumer, wait_ms);

    while (rkm != NULL) {
        t->rkms[t->n_rkms++] = rkm;
        if (t->n_rkms == TURN_MAX_MESSAGES) {
            break;
        }
        rkm = rd_kafka_consumer_poll(s->consumer, 0);
    }
    return t->n_rkms;
}

/* End a turn: free its messages and its checks (a dispatch still unconfirmed was copied to its
 * worker's `pending`); the buffers stay for the next turn. */
static void
turn_end(struct stub *s)
{
    struct turn *t = &s->turn;

    for (size_t i = 0; i < t->n_checks; i++) {
        msg_release(&t->checks[i].m);
        free(t->checks[i].owned);
        t->checks[i].owned = NULL;
    }
    t->n_checks = 0;
    for (size_t i = 0; i < t->n_rkms; i++) {
        rd_kafka_message_destroy(t->rkms[i]);
    }
    t->n_rkms = 0;
}

/* How long the loop may sleep in rd_kafka_consumer_poll: until the next timer (the periodic
 * heartbeat, a dispatch's completion, a pending heartbeat's retry, a completion to produce
 * again, a delivery report to look for), at most LOOP_MAX_WAIT_MS. */
static int
loop_wait_ms(const struct stub *s, int64_t now_ms)
{
    int64_t deadline = s->next_beat_ms;
    bool beat_due = false;

    for (size_t i = 0; i < s->n_workers; i++) {
        const struct worker *w = &s->workers[i];
        if (w->silent) {
            continue;
        }
        if (w->busy && !w->dying && w->done_at_ms < deadline) {
            deadline = w->done_at_ms;
        }
        beat_due = beat_due || w->beat_due;
    }
    if (beat_due) {
        int64_t retry = s->beat_retry_ms > now_ms ? s->beat_retry_ms : now_ms;
        deadline = retry < deadline ? retry : deadline;
    }
    /* Delivery reports are served by rd_kafka_poll after the wait, and a worker shows idle
     * only once its completion's report is in. While completions are in flight the loop looks
     * again after as long as they have been awaited (1, 2, 4, 8 ms, ... after the last
     * produce): a prompt report (about 1 ms) is served within about its own delay instead of
     * after up to LOOP_MAX_WAIT_MS, and one that takes long (Kafka down) costs a few wakeups. */
    if (s->n_queued > 0) {
        int64_t age = now_ms - s->produced_ms;
        int64_t look = now_ms + (age < 1 ? 1 : age);
        deadline = look < deadline ? look : deadline;
    }
    if (s->n_resend > 0 && s->resend_at_ms < deadline) {
        deadline = s->resend_at_ms;
    }
    int64_t wait = deadline - now_ms;
    wait = wait < 0 ? 0 : wait;
    return (int)(wait > LOOP_MAX_WAIT_MS ? LOOP_MAX_WAIT_MS : wait);
}

/* One thread, one loop, all workers. Each turn takes the messages that are there (waiting for
 * the first until the next timer), acts on them together, completes the work that is due and
 * writes the heartbeats that became due. However many dispatches a turn holds, it costs at most
 * three Redis round trips: the research checks of all of them; the "busy" beats of those that
 * started, written before any of that work can end (a worker heartbeats whenever its state
 * changes, and the coordinator sees the dispatch picked up); then the beats of the workers
 * whose completion Kafka acknowledged ("idle", served just before: completion first, then
 * idle) and the periodic ones. Nothing blocks except the wait and Redis calls (bounded by
 * REDIS_TIMEOUT_MS). */
static void
run(struct stub *s)
{
    for (size_t i = 0; i < s->n_workers; i++) {
        s->workers[i].beat_due = true; /* the first heartbeat: the workers become live */
    }
    s->next_beat_ms = clock_mono_ms() + s->opt.heartbeat_ms;
    flush_heartbeats(s, clock_mono_ms());

    while (!stopsig_requested() && !kafka_fatal(s)) {
        if (take_messages(s, loop_wait_ms(s, clock_mono_ms())) == 0 && s->latency != NULL) {
            fflush(s->latency); /* idle: let a reader see the lines so far */
        }
        queue_pending(s, clock_mono_ms());
        for (size_t i = 0; i < s->turn.n_rkms; i++) {
            on_message(s, s->turn.rkms[i]);
        }
        start_checked(s);
        flush_heartbeats(s, clock_mono_ms()); /* "busy" shows before the work ends */
        int64_t now_ms = clock_mono_ms();
        finish_due_work(s, now_ms);
        rd_kafka_poll(s->producer, 0); /* delivery reports and the producer's errors */
        resend_completions(s, now_ms, false);
        if (now_ms >= s->next_beat_ms) {
            for (size_t i = 0; i < s->n_workers; i++) {
                s->workers[i].beat_due = true;
            }
            s->next_beat_ms = now_ms + s->opt.heartbeat_ms;
        }
        flush_heartbeats(s, now_ms);
        turn_end(s);
    }
}

/* ---- Start and stop ----------------------------------------------------------------------- */

/* Build the workers, their ids "<prefix><type>-<i>" (i from 1) and heartbeat keys, and what
 * the loop needs for that many workers. RC_EINVAL when an id breaks the contract's id rules (a
 * bad --id-prefix). */
static enum rc_rc
workers_init(struct stub *s, struct rc_err *err)
{
    struct buf text = BUF_INIT;
    const char *type = worker_type_name(s->opt.shape.type);
    enum rc_rc rc = RC_OK;

    s->n_workers = (size_t)s->opt.count;
    s->workers = xcalloc(s->n_workers, sizeof(*s->workers));
    buf_printf(&text, "%s%s-", s->opt.id_prefix, type);
    s->id_stem_len = text.len;
    s->id_stem = buf_detach(&text);
    for (size_t i = 0; i < s->n_workers; i++) {
        struct worker *w = &s->workers[i];
        buf_reset(&text);
        buf_printf(&text, "%s%zu", s->id_stem, i + 1);
        if (!limits_is_id(text.data, text.len)) {
            rc = rc_err_set(err, RC_EINVAL,
                            "--id-prefix: worker id '%s' is not 1-128 bytes of [A-Za-z0-9._:-]",
                            text.data);
            break;
        }
        memcpy(w->id, text.data, text.len + 1);
        keys_worker(&text, s->cfg.redis.key_prefix, w->id);
        w->hb_key = buf_detach(&text);
    }
    keys_workers(&text, s->cfg.redis.key_prefix, s->opt.shape.type);
    s->workers_key = buf_detach(&text);
    buf_release(&text);

    /* A turn checks at most one dispatch per message and one kept dispatch per worker; a
     * heartbeat pipeline holds MULTI, an HSET (12 words) per worker, a ZADD (2 + 2 per worker)
     * and EXEC. */
    struct turn *t = &s->turn;
    t->cap_checks = TURN_MAX_MESSAGES + s->n_workers;
    t->checks = xcalloc(t->cap_checks, sizeof(*t->checks));
    t->keys = xcalloc(t->cap_checks, sizeof(*t->keys));
    t->want = xcalloc(t->cap_checks, sizeof(*t->want));
    t->same = xcalloc(t->cap_checks, sizeof(*t->same));
    s->beat_cmds = xcalloc(s->n_workers + 3, sizeof(*s->beat_cmds));
    s->beat_words = xcalloc(14 * s->n_workers + 2, sizeof(*s->beat_words));
    return rc;
}

static void
stub_release(struct stub *s)
{
    turn_end(s); /* its messages go back before the consumer closes */
    kclient_free(s->kconsumer); /* bounded: a stop never waits on brokers that are gone */
    kclient_free(s->kproducer);
    redislink_free(s->redis);
    if (s->latency != NULL && fclose(s->latency) != 0) {
        fprintf(stderr, TOOL ": --latency-log: %s\n", strerror(errno));
    }
    /* After the producer: librdkafka held pointers to the unacked completions until then. */
    for (size_t i = 0; s->workers != NULL && i < s->n_workers; i++) {
        free(s->workers[i].hb_key);
        free(s->workers[i].model);
        free(s->workers[i].pending);
        for (struct unacked *u = s->workers[i].unacked, *next = NULL; u != NULL; u = next) {
            next = u->next;
            free(u->wire);
            free(u);
        }
    }
    free(s->workers);
    free(s->workers_key);
    free(s->id_stem);
    for (size_t i = 0; i < s->turn.cap_checks; i++) {
        buf_release(&s->turn.checks[i].key);
    }
    free(s->turn.checks);
    free(s->turn.keys);
    free(s->turn.want);
    free(s->turn.same);
    free(s->beat_cmds);
    free(s->beat_words);
    buf_release(&s->name);
    buf_release(&s->path);
    cfg_release(&s->cfg);
}

/* Load the environment (exit 78 on a problem, one line per variable). */
static int
load_config(struct stub *s)
{
    struct buf problems = BUF_INIT;
    struct rc_err err = RC_ERR_INIT;
    int status = RC_EXIT_OK;

    if (cfg_load(&s->cfg, environ, &problems, &err) != RC_OK) {
        const char *line = problems.data;
        while (line != NULL && *line != '\0') {
            const char *end = strchr(line, '\n');
            int len = end != NULL ? (int)(end - line) : (int)strlen(line);
            fprintf(stderr, TOOL ": %.*s\n", len, line);
            line = end != NULL ? end + 1 : NULL;
        }
        if (problems.len == 0) {
            fprintf(stderr, TOOL ": %s\n", err.msg);
        }
        status = RC_EXIT_CONFIG;
    }
    buf_release(&problems);
    return status;
}

int
main(int argc, char **argv)
{
    struct stub s = {.cfg = CFG_INIT};
    struct rc_err err = RC_ERR_INIT;
    int status = RC_EXIT_FAILURE;

    if (stubopt_parse(&s.opt, argc, argv, &err) != RC_OK) {
        fprintf(stderr, TOOL ": %s (try --help)\n", err.msg);
        return RC_EXIT_USAGE;
    }
    if (s.opt.help) {
        stubopt_usage(stdout);
        return RC_EXIT_OK;
    }
    status = load_config(&s);
    if (status != RC_EXIT_OK) {
        return status;
    }
    status = RC_EXIT_FAILURE;
    log_set_level(s.cfg.log_level);
    s.dispatch_topic = s.cfg.kafka.topics[topic_dispatch(s.opt.shape.type)];
    s.completions_topic = s.cfg.kafka.topics[TOPIC_COMPLETIONS];
    s.rng = s.opt.has_seed
                ? s.opt.seed
                : (uint64_t)clock_now_ms() ^ ((uint64_t)getpid() << 32) ^ (uint64_t)clock_mono_us();

    if (workers_init(&s, &err) != RC_OK) {
        fprintf(stderr, TOOL ": %s\n", err.msg);
        status = RC_EXIT_USAGE;
        goto out;
    }
    if (stopsig_install(&err) != RC_OK) {
        fprintf(stderr, TOOL ": %s\n", err.msg);
        goto out;
    }
    if (s.opt.latency_log != NULL) {
        s.latency = fopen(s.opt.latency_log, "a");
        if (s.latency == NULL) {
            fprintf(stderr, TOOL ": --latency-log %s: %s\n", s.opt.latency_log, strerror(errno));
            goto out;
        }
        setvbuf(s.latency, NULL, _IOFBF, LATENCY_BUF_BYTES);
    }
    if (kafka_open(&s, &err) != RC_OK) {
        fprintf(stderr, TOOL ": %s\n", err.msg);
        status = err.rc == RC_EINVAL ? RC_EXIT_CONFIG : RC_EXIT_FAILURE;
        goto out;
    }
    s.redis = redislink_new(&s.cfg.redis);
    if (start_consuming(&s, &err) != RC_OK) {
        fprintf(stderr, TOOL ": %s\n", err.msg);
        goto out;
    }
    run(&s);
    if (kafka_fatal(&s)) {
        goto out;
    }
    /* Stop cleanly: hand every completion to Kafka, also those waiting to be produced again.
     * The heartbeats are left to expire. */
    resend_completions(&s, clock_mono_ms(), true);
    rd_kafka_flush(s.producer, FLUSH_TIMEOUT_MS);
    if (s.n_queued + s.n_resend > 0) {
        fprintf(stderr, TOOL ": %zu completions not delivered at exit\n", s.n_queued + s.n_resend);
    }
    status = RC_EXIT_OK;
out:
    stub_release(&s);
    return status;
}
