/* SPDX-License-Identifier: MIT
 * rcw: the I/O thread of librcworker. It alone touches librdkafka and hiredis, and keeps every
 * worker rule of the contract (§2, §3, §5) for N workers of one type in one loop: heartbeats,
 * dispatches read from every partition of the type's topic, the research check, aborts,
 * completions produced until Kafka acknowledges them. Each dispatch runs its handler on a job
 * thread of its own (rcw_job.c holds what the two share); a finished job is handed back
 * through a mutex-guarded queue and a pipe that wakes the loop at once, as librdkafka's queue
 * events do when a message or a delivery report arrives, so no step waits on a timer. */
#include "worker/rcw.h"

#include <librdkafka/rdkafka.h>

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <math.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/buf.h"
#include "common/cfg.h"
#include "common/clock.h"
#include "common/kclient.h"
#include "common/log.h"
#include "common/redislink.h"
#include "common/xalloc.h"
#include "contract/fields.h"
#include "contract/keys.h"
#include "contract/limits.h"
#include "contract/phase.h"
#include "proto/msg.h"
#include "worker/rcw_beat.h"
#include "worker/rcw_conf.h"
#include "worker/rcw_job.h"
#include "worker/rcw_pool.h"
#include "worker/rcw_seen.h"

extern char **environ;

#define LOOP_MAX_WAIT_MS 200   /* bounds how long a stop waits for the loop to look */
#define KAFKA_TIMEOUT_MS 5000  /* metadata and watermark queries at start-up */
#define START_RETRY_MS 500     /* between start-up attempts while Kafka is not ready */
#define FLUSH_TIMEOUT_MS 10000 /* how long a stop waits for unsent completions */
#define JOIN_TIMEOUT_MS 5000   /* how long rcw_run waits for cancelled handlers to return */
#define TURN_MAX_MESSAGES 1000 /* messages one loop turn takes from Kafka */
#define RESEND_PAUSE_MS 1000   /* between a failed delivery and producing it again */
#define CHECK_RETRY_MS 200     /* after a failed research check, before asking again */
#define PROGRESS_BEAT_MS 250   /* progress is written at most this often */
#define BEAT_WORDS (RCW_BEAT_WORDS_MAX + 4) /* an HSET, an HDEL of progress and step */

/* ---- State -------------------------------------------------------------------------------- */

struct slot;

/* A completion handed to the producer that Kafka has not yet acknowledged. While it exists its
 * worker's heartbeat still names its dispatch (slot_shown: "completion first, then idle",
 * contract §7). Owned by its slot's list; while `queued`, librdkafka holds borrowed pointers
 * to it (the message's opaque) and to `wire` (produced without a copy). */
struct unacked {
    struct unacked *next; /* the slot's next older one */
    struct slot *w;
    char dispatch_id[LIMITS_ID_MAX + 1];
    char research_id[LIMITS_ID_MAX + 1];
    char *wire; /* the encoded completion (owned) */
    size_t wire_len;
    bool queued;      /* in the producer's queue; false: waits to be produced (again) */
    int64_t n_failed; /* failed deliveries or produce calls, to log only the first */
};

/* One worker: idle (`job` NULL) or running one job. */
struct slot {
    size_t index;
    const char *id; /* borrowed from conf */
    char *hb_key;   /* <prefix>worker:<id> */
    struct rcw_job *job;
    bool dying;  /* die_after reached: silent once its "busy" beat is written */
    bool silent; /* dead: no heartbeats, no work, ever again */
    bool beat_due;
    int64_t n_accepted;
    struct rcw_seen seen;
    char *pending; /* a dispatch Redis could not yet confirm: its bytes, checked again later */
    size_t pending_len;
    struct unacked *unacked;
    double progress; /* the running job's, NaN: none */
    char step[RCW_STEP_MAX + 1];
    bool shows_progress; /* its hash may hold progress/step: removed once it has none */
    char num[RCW_BEAT_NUM_MAX];
};

enum check_answer {
    CHECK_UNKNOWN = 0, /* Redis down or failing: keep it */
    CHECK_CURRENT,     /* the research still names this dispatch: run it */
    CHECK_STALE,       /* it does not */
    CHECK_UNREADABLE,  /* the research key is not a hash: never confirmable */
};

/* A dispatch waiting, within one turn, for its research check. */
struct check {
    struct slot *w;
    struct msg m;    /* the decoded dispatch (owned) */
    const char *raw; /* the Kafka payload (borrowed for the turn) or `owned` */
    size_t raw_len;
    char *owned;
    struct buf key; /* <prefix>research:<id>, reused */
    enum check_answer answer;
};

struct turn {
    rd_kafka_message_t *rkms[TURN_MAX_MESSAGES];
    size_t n_rkms;
    struct check *checks; /* one per message, plus one kept dispatch per slot */
    size_t n_checks;
    size_t cap_checks;
    const char **keys;
    const char **want;
    bool *same;
};

struct rcw {
    struct rcw_conf conf;
    struct cfg cfg;
    rcw_handler_fn handler;
    void *handler_arg;
    int64_t clock_skew_ms;
    int64_t die_after;
    bool unchecked;
    bool abandon;
    bool verbose;
    rcw_note_fn note;
    void *note_arg;
    const char *dispatch_topic; /* borrowed from cfg */
    const char *completions_topic;
    char *workers_key;
    struct kclient *kproducer;
    struct kclient *kconsumer;
    rd_kafka_t *producer;
    rd_kafka_t *consumer;
    rd_kafka_queue_t *consumer_q; /* its io event writes to kpipe */
    rd_kafka_queue_t *producer_q;
    struct redislink *redis;
    bool redis_down;
    bool ready;
    bool draining;
    struct slot *slots;
    struct turn turn;
    bool turn_full; /* the last turn took TURN_MAX_MESSAGES: more are waiting */
    struct redislink_cmd *beat_cmds;
    const char **beat_words;
    size_t n_queued;
    size_t n_resend;
    int64_t resend_at_ms;
    int64_t next_beat_ms;
    int64_t beat_retry_ms;
    int64_t check_retry_ms;
    int64_t progress_at_ms; /* monotonic: progress is not looked at before this */
    /* Between threads. */
    int wake[2];  /* job ends and rcw_stop write here */
    int kpipe[2]; /* librdkafka's queue events */
    volatile sig_atomic_t stop;
    struct rcw_pool *pool; /* the job threads (made by rcw_run) */
};

static void say(const struct rcw *w, const char *fmt, ...) RC_PRINTF(2, 3);
static void verbose(const struct rcw *w, const char *fmt, ...) RC_PRINTF(2, 3);

/* Our lines on stderr: "<log_name>: ...", as tools write (STYLE §6). */
static void
say(const struct rcw *w, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "%s: ", w->conf.log_name);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

static void
verbose(const struct rcw *w, const char *fmt, ...)
{
    if (!w->verbose) {
        return;
    }
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "%s: ", w->conf.log_name);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

static void
note(const struct rcw *w, const char *what, const char *research_id, enum phase phase)
{
    if (w->note != NULL) {
        w->note(w->note_arg, what, research_id, phase_name(phase));
    }
}

/* ---- Waking the loop ---------------------------------------------------------------------- */

static enum rc_rc
make_pipe(int fds[2], struct rc_err *err)
{
    if (pipe(fds) != 0) {
        fds[0] = fds[1] = -1;
        return rc_err_sys(err, "pipe");
    }
    for (int i = 0; i < 2; i++) {
        int fl = fcntl(fds[i], F_GETFL);
        (void)fcntl(fds[i], F_SETFL, fl | O_NONBLOCK);
        (void)fcntl(fds[i], F_SETFD, FD_CLOEXEC);
    }
    return RC_OK;
}

static void
drain_pipe(int fd)
{
    char sink[256];
    while (read(fd, sink, sizeof(sink)) > 0) {
    }
}

static void
poke(int fd)
{
    /* A full pipe already wakes the loop: EAGAIN is fine. */
    ssize_t n = write(fd, "x", 1);
    (void)n;
}

void
rcw_stop(struct rcw *w)
{
    w->stop = 1;
    poke(w->wake[1]);
}

/* ---- Redis: heartbeats and the research check --------------------------------------------- */

static void
redis_failed(struct rcw *w, const struct rc_err *err)
{
    if (!w->redis_down) {
        say(w, "redis failing, retrying: %s", err->msg);
        w->redis_down = true;
    }
}

static void
redis_ok(struct rcw *w)
{
    if (w->redis_down) {
        say(w, "redis back");
        w->redis_down = false;
    }
}

/* What a slot's heartbeat says: busy with its job; else, while Kafka has not acknowledged the
 * completion of one it ran, still busy with that one (contract §7); else idle. Draining
 * replaces both words once a stop was asked for. */
static enum hb_state
slot_shown(const struct rcw *w, const struct slot *s, const char **dispatch_id,
           const char **research_id)
{
    enum hb_state busy = w->draining ? HB_DRAINING : HB_BUSY;
    if (s->job != NULL) {
        *dispatch_id = rcw_job_dispatch(s->job)->dispatch_id;
        *research_id = rcw_job_dispatch(s->job)->research_id;
        return busy;
    }
    if (s->unacked != NULL) {
        *dispatch_id = s->unacked->dispatch_id;
        *research_id = s->unacked->research_id;
        return busy;
    }
    *dispatch_id = "";
    *research_id = "";
    return w->draining ? HB_DRAINING : HB_IDLE;
}

/* After the heartbeat pipeline got an error reply: the slots whose hash holds another type
 * (someone wrote it) can never heartbeat, and are dead from now on (left due, they would make
 * every later flush fail). Returns how many were found. */
static size_t
silence_unbeatable(struct rcw *w)
{
    size_t n = w->conf.n_workers;
    struct redislink_cmd *cmds = w->beat_cmds;
    const char **words = w->beat_words;
    struct slot **due = xcalloc(n, sizeof(*due));
    struct redislink_reply *replies = NULL;
    size_t n_due = 0;
    size_t n_found = 0;

    for (size_t i = 0; i < n; i++) {
        struct slot *s = &w->slots[i];
        if (s->beat_due && !s->silent) {
            words[2 * n_due] = "TYPE";
            words[2 * n_due + 1] = s->hb_key;
            cmds[n_due] = (struct redislink_cmd){2, &words[2 * n_due]};
            due[n_due++] = s;
        }
    }
    if (n_due > 0 && redislink_query(w->redis, cmds, n_due, &replies, NULL) == RC_OK) {
        for (size_t i = 0; i < n_due; i++) {
            const struct redislink_reply *r = &replies[i];
            if (r->type == REDISLINK_STR && strcmp(r->str, "hash") != 0 &&
                strcmp(r->str, "none") != 0) {
                say(w,
                    "%s: %s holds a %s, not a hash: it cannot heartbeat and is dead from "
                    "now on",
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

/* Write the heartbeat of every slot whose beat is due (contract §5), all in one MULTI/EXEC
 * sent as one pipeline, with the same <ms> in each HSET and in the one ZADD. A slot without
 * progress whose hash may still hold some gets an HDEL of those fields. On failure the beats
 * stay due and are retried after a pause. */
static void
flush_heartbeats(struct rcw *w, int64_t now_ms)
{
    size_t n = w->conf.n_workers;
    size_t n_due = 0;
    for (size_t i = 0; i < n; i++) {
        n_due += w->slots[i].beat_due && !w->slots[i].silent;
    }
    if (n_due == 0 || now_ms < w->beat_retry_ms) {
        return;
    }
    char last_seen[24];
    snprintf(last_seen, sizeof(last_seen), "%" PRId64, clock_now_ms() + w->clock_skew_ms);
    const char *type = worker_type_name(w->conf.type);
    static const char *multi[] = {"MULTI"};
    static const char *exec[] = {"EXEC"};
    struct redislink_cmd *cmds = w->beat_cmds;
    size_t c = 0;
    const char **at = w->beat_words;
    const char **zadd = w->beat_words + BEAT_WORDS * n;
    size_t zadd_argc = 0;

    zadd[zadd_argc++] = "ZADD";
    zadd[zadd_argc++] = w->workers_key;
    cmds[c++] = (struct redislink_cmd){1, (const char **)multi};
    for (size_t i = 0; i < n; i++) {
        struct slot *s = &w->slots[i];
        if (!s->beat_due || s->silent) {
            continue;
        }
        struct rcw_beat b = {.type = type,
                             .progress = s->job != NULL ? s->progress : NAN,
                             .step = s->job != NULL ? s->step : NULL,
                             .host = w->conf.host,
                             .labels = w->conf.labels,
                             .last_seen = last_seen};
        b.state = slot_shown(w, s, &b.dispatch_id, &b.research_id);
        size_t argc = rcw_beat_hset(&b, s->hb_key, at, s->num);
        cmds[c++] = (struct redislink_cmd){argc, at};
        at += argc;
        bool has_progress = !isnan(b.progress) || (b.step != NULL && b.step[0] != '\0');
        if (s->shows_progress && !has_progress) {
            at[0] = "HDEL";
            at[1] = s->hb_key;
            at[2] = HB_PROGRESS;
            at[3] = HB_STEP;
            cmds[c++] = (struct redislink_cmd){4, at};
            at += 4;
        }
        s->shows_progress = has_progress;
        zadd[zadd_argc++] = last_seen;
        zadd[zadd_argc++] = s->id;
    }
    cmds[c++] = (struct redislink_cmd){zadd_argc, zadd};
    cmds[c++] = (struct redislink_cmd){1, (const char **)exec};

    struct rc_err err = RC_ERR_INIT;
    if (redislink_run(w->redis, cmds, c, &err) == RC_OK) {
        redis_ok(w);
        w->beat_retry_ms = 0;
        for (size_t i = 0; i < n; i++) {
            struct slot *s = &w->slots[i];
            s->silent = s->silent || (s->dying && s->beat_due); /* its last beat is out */
            s->beat_due = false;
        }
        if (!w->ready) {
            /* Printed once every worker is visible as live, so a caller may rely on it. */
            say(w, "%zu %s workers ready", n, type);
            w->ready = true;
        }
        return;
    }
    for (size_t i = 0; i < n; i++) {
        w->slots[i].shows_progress = true; /* not known to be written: remove again later */
    }
    redis_failed(w, &err);
    if (err.rc == RC_EBACKEND && silence_unbeatable(w) > 0) {
        return; /* the others' beats go out again at once */
    }
    int64_t retry = redislink_retry_at_ms(w->redis);
    w->beat_retry_ms = retry > now_ms + 100 ? retry : now_ms + 100;
}

/* Whether each check's research still names its dispatch (contract §2), in one pipeline.
 * checks[i].answer is written on RC_OK only. */
static enum rc_rc
research_check(struct rcw *w, struct check *checks, size_t n, struct rc_err *err)
{
    struct turn *t = &w->turn;

    for (size_t i = 0; i < n; i++) {
        const struct dispatch *d = &checks[i].m.u.dispatch;
        t->keys[i] = keys_research(&checks[i].key, w->cfg.redis.key_prefix, d->research_id);
        t->want[i] = d->dispatch_id;
    }
    enum rc_rc rc = redislink_hget_equal(w->redis, t->keys, research_field_name(RF_DISPATCH_ID),
                                         t->want, n, t->same, err);
    for (size_t i = 0; rc == RC_OK && i < n; i++) {
        checks[i].answer = t->same[i] ? CHECK_CURRENT : CHECK_STALE;
    }
    return rc;
}

static bool
key_is_not_hash(struct rcw *w, const char *key)
{
    const char *argv[] = {"TYPE", key};
    const struct redislink_cmd cmd = {2, argv};
    struct redislink_reply *reply = NULL;

    if (redislink_query(w->redis, &cmd, 1, &reply, NULL) != RC_OK) {
        return false;
    }
    bool other = reply->type == REDISLINK_STR && strcmp(reply->str, "hash") != 0 &&
                 strcmp(reply->str, "none") != 0;
    redislink_replies_free(reply, 1);
    return other;
}

/* The turn's check got an error reply: find whose, asking each alone. One whose research key
 * is not a hash is refused for good (left unanswered it would fail every later turn's
 * checks); other errors leave their checks unanswered, kept for later. */
static enum rc_rc
research_check_each(struct rcw *w, struct rc_err *err)
{
    struct turn *t = &w->turn;
    enum rc_rc first = RC_OK;

    for (size_t i = 0; i < t->n_checks; i++) {
        struct check *c = &t->checks[i];
        struct rc_err one = RC_ERR_INIT;
        enum rc_rc rc = research_check(w, c, 1, &one);
        if (rc == RC_EBACKEND && key_is_not_hash(w, c->key.data)) {
            c->answer = CHECK_UNREADABLE;
            say(w, "%s: refusing dispatch %s: its research check failed: %s", c->w->id,
                c->m.u.dispatch.dispatch_id, one.msg);
            continue;
        }
        if (rc != RC_OK && first == RC_OK) {
            first = rc;
            if (err != NULL) {
                *err = one;
            }
        }
        if (rc == RC_EUNAVAIL) {
            break;
        }
    }
    return first;
}

/* ---- Kafka -------------------------------------------------------------------------------- */

static bool
kafka_fatal(const struct rcw *w)
{
    return (w->kproducer != NULL && kclient_fatal(w->kproducer)) ||
           (w->kconsumer != NULL && kclient_fatal(w->kconsumer));
}

static void
unacked_drop(struct unacked *u)
{
    struct slot *s = u->w;
    struct unacked **at = &s->unacked;

    while (*at != u) {
        RC_ASSERT(*at != NULL);
        at = &(*at)->next;
    }
    *at = u->next;
    if (s->job == NULL && at == &s->unacked) {
        s->beat_due = true; /* "then idle", at once (contract §7) */
    }
    free(u->wire);
    free(u);
}

/* Delivery reports, served by our rd_kafka_poll of the producer. Not delivered: produced
 * again after a pause, its dispatch still named meanwhile. */
static void
delivered(void *owner, const rd_kafka_message_t *rkm)
{
    struct rcw *w = owner;
    struct unacked *u = rkm->_private;

    if (u == NULL) {
        return;
    }
    u->queued = false;
    w->n_queued--;
    if (rkm->err != RD_KAFKA_RESP_ERR_NO_ERROR) {
        if (u->n_failed++ == 0) {
            say(w, "%s: completion of %s (research %s) not delivered: %s; producing it again",
                u->w->id, u->dispatch_id, u->research_id, rd_kafka_err2str(rkm->err));
        }
        w->n_resend++;
        w->resend_at_ms = clock_mono_ms() + RESEND_PAUSE_MS;
        return;
    }
    (void)kclient_answered(w->kproducer);
    if (u->n_failed > 0) {
        say(w, "%s: completion of %s delivered after %" PRId64 " failures", u->w->id,
            u->dispatch_id, u->n_failed);
    }
    unacked_drop(u);
}

static enum rc_rc
kafka_open(struct rcw *w, const char *id_prefix, struct rc_err *err)
{
    struct buf group = BUF_INIT;
    /* librdkafka 2.0 refuses rd_kafka_assign() without a group.id; nothing is committed. */
    buf_printf(&group, "%s%s", id_prefix, worker_type_name(w->conf.type));
    /* clang-format off */
    const char *const producer_defaults[] = {
        /* Measured with tools/bench for stub-worker: a lone completion waits ~1 ms. */
        "linger.ms", "0.2",
        NULL,
    };
    const char *const consumer_defaults[] = {
        "group.id",                 group.data,
        "enable.auto.commit",       "false",
        "enable.auto.offset.store", "false",
        /* The dev broker answers an empty fetch only after fetch.wait.max.ms. */
        "fetch.wait.max.ms",        "10",
        NULL,
    };
    /* clang-format on */
    const struct kclient_spec producer = {.type = RD_KAFKA_PRODUCER,
                                          .role = "producer",
                                          .defaults = producer_defaults,
                                          .owner = w,
                                          .delivered = delivered};
    const struct kclient_spec consumer = {
        .type = RD_KAFKA_CONSUMER, .role = "consumer", .defaults = consumer_defaults};
    enum rc_rc rc = kclient_new(&w->cfg.kafka, &producer, &w->kproducer, err);
    if (rc == RC_OK) {
        w->producer = kclient_rk(w->kproducer);
        rc = kclient_new(&w->cfg.kafka, &consumer, &w->kconsumer, err);
    }
    if (rc == RC_OK) {
        w->consumer = kclient_rk(w->kconsumer);
        /* A queue event when a message or a delivery report arrives on an empty queue: the
         * loop sleeps in poll(2) on these and on the job pipe, never past a ready event. */
        w->consumer_q = rd_kafka_queue_get_consumer(w->consumer);
        w->producer_q = rd_kafka_queue_get_main(w->producer);
        rd_kafka_queue_io_event_enable(w->consumer_q, w->kpipe[1], "c", 1);
        rd_kafka_queue_io_event_enable(w->producer_q, w->kpipe[1], "p", 1);
        /* Learn where the completions topic lives now: a first send would wait for it. */
        rd_kafka_topic_t *rkt = rd_kafka_topic_new(w->producer, w->completions_topic, NULL);
        const struct rd_kafka_metadata *md = NULL;
        if (rkt != NULL &&
            rd_kafka_metadata(w->producer, 0, rkt, &md, 5000) == RD_KAFKA_RESP_ERR_NO_ERROR) {
            rd_kafka_metadata_destroy(md);
        }
        if (rkt != NULL) {
            rd_kafka_topic_destroy(rkt);
        }
    }
    buf_release(&group);
    return rc;
}

/* Assign every partition of the dispatch topic at its end as of now: the workers never run a
 * dispatch sent to a former process with their ids, and the first heartbeat (after this) never
 * makes one look live before it reads. RC_EUNAVAIL while the topic is not there. */
static enum rc_rc
assign_dispatch_partitions(struct rcw *w, struct rc_err *err)
{
    rd_kafka_topic_partition_list_t *parts = rd_kafka_topic_partition_list_new(8);
    enum rc_rc rc = kclient_add_partitions(w->consumer, w->dispatch_topic, KCLIENT_START_END_NOW,
                                           parts, KAFKA_TIMEOUT_MS, err);
    rd_kafka_resp_err_t kerr = RD_KAFKA_RESP_ERR_NO_ERROR;
    if (rc == RC_OK && (kerr = rd_kafka_assign(w->consumer, parts)) != RD_KAFKA_RESP_ERR_NO_ERROR) {
        rc = rc_err_set(err, RC_EBACKEND, "kafka: assign %s: %s", w->dispatch_topic,
                        rd_kafka_err2str(kerr));
    }
    rd_kafka_topic_partition_list_destroy(parts);
    return rc;
}

static enum rc_rc
start_consuming(struct rcw *w, struct rc_err *err)
{
    bool logged = false;

    while (!w->stop && !kafka_fatal(w)) {
        enum rc_rc rc = assign_dispatch_partitions(w, err);
        if (rc != RC_EUNAVAIL) {
            return rc;
        }
        if (!logged) {
            say(w, "waiting for Kafka: %s", err->msg);
            logged = true;
        }
        rd_kafka_message_t *rkm = rd_kafka_consumer_poll(w->consumer, 0);
        if (rkm != NULL) {
            rd_kafka_message_destroy(rkm);
        }
        struct pollfd pfd = {.fd = w->wake[0], .events = POLLIN};
        (void)poll(&pfd, 1, START_RETRY_MS);
    }
    return kafka_fatal(w) ? rc_err_set(err, RC_EBACKEND, "kafka: fatal error") : RC_OK;
}

/* ---- Completions -------------------------------------------------------------------------- */

static void
unacked_produce(struct rcw *w, struct unacked *u)
{
    rd_kafka_resp_err_t kerr = rd_kafka_producev(
        w->producer, RD_KAFKA_V_TOPIC(w->completions_topic),
        RD_KAFKA_V_KEY(u->research_id, strlen(u->research_id)),
        RD_KAFKA_V_VALUE(u->wire, u->wire_len), RD_KAFKA_V_OPAQUE(u), RD_KAFKA_V_END);
    if (kerr == RD_KAFKA_RESP_ERR_NO_ERROR) {
        u->queued = true;
        w->n_queued++;
        return;
    }
    if (u->n_failed++ == 0) {
        say(w, "%s: cannot publish the completion of %s yet: %s", u->w->id, u->dispatch_id,
            rd_kafka_err2str(kerr));
    }
    w->n_resend++;
    w->resend_at_ms = clock_mono_ms() + RESEND_PAUSE_MS;
}

static void
resend_completions(struct rcw *w, int64_t now_ms, bool force)
{
    if (w->n_resend == 0 || (!force && now_ms < w->resend_at_ms)) {
        return;
    }
    w->n_resend = 0;
    for (size_t i = 0; i < w->conf.n_workers; i++) {
        for (struct unacked *u = w->slots[i].unacked; u != NULL; u = u->next) {
            if (!u->queued) {
                unacked_produce(w, u);
            }
        }
    }
}

/* Publish `c` for slot `s` (keyed by research_id, contract §2) and keep it unacknowledged:
 * the heartbeat names its dispatch until Kafka has it. */
static void
publish(struct rcw *w, struct slot *s, const struct completion *c)
{
    struct msg m = MSG_INIT;
    struct buf wire = BUF_INIT;

    m.kind = MSG_COMPLETION;
    m.ts_ms = clock_now_ms();
    m.u.completion = *c;
    msg_encode(&m, &wire);

    struct unacked *u = xcalloc(1, sizeof(*u));
    u->w = s;
    snprintf(u->dispatch_id, sizeof(u->dispatch_id), "%s", c->dispatch_id);
    snprintf(u->research_id, sizeof(u->research_id), "%s", c->research_id);
    u->wire_len = wire.len;
    u->wire = buf_detach(&wire);
    u->next = s->unacked;
    s->unacked = u;
    unacked_produce(w, u);
}

static void
publish_released(struct rcw *w, struct slot *s, const struct dispatch *d)
{
    const struct completion c = {.dispatch_id = d->dispatch_id,
                                 .research_id = d->research_id,
                                 .worker_id = s->id,
                                 .status = COMPLETION_RELEASED};
    verbose(w, "%s: released %s", s->id, d->dispatch_id);
    publish(w, s, &c);
}

static void
slot_set_idle(struct slot *s)
{
    s->job = NULL;
    s->progress = NAN;
    s->step[0] = '\0';
    s->beat_due = true;
}

/* ---- Jobs --------------------------------------------------------------------------------- */

/* Start dispatch `m` (taken) from raw[0..len) on slot `s`. */
static void
slot_start(struct rcw *w, struct slot *s, struct msg *m, const char *raw, size_t len)
{
    struct rcw_job *job = rcw_job_new(m, raw, len, s->index);
    const struct dispatch *d = rcw_job_dispatch(job);

    s->job = job;
    s->progress = NAN;
    s->step[0] = '\0';
    s->beat_due = true;
    verbose(w, "%s: started %s (research %s, attempt %" PRId64 ")", s->id, d->dispatch_id,
            d->research_id, d->attempt);
    rcw_pool_add(w->pool, job); /* handed over at the turn's end */
}

/* Take the jobs whose handlers returned: publish the completion of those still their slot's
 * (aborted and released ones publish nothing more), and free them. */
static size_t
collect_done(struct rcw *w)
{
    struct rcw_job *job = w->pool != NULL ? rcw_pool_take_done(w->pool) : NULL;

    size_t n = 0;
    while (job != NULL) {
        struct rcw_job *next = rcw_job_link(job)->next;
        struct slot *s = &w->slots[rcw_job_slot(job)];
        if (s->job == job && rcw_job_state(job) == RCW_JOB_DONE && !s->dying && !s->silent) {
            struct completion c;
            if (rcw_job_completion(job, w->unchecked, &c)) {
                say(w, "%s: dispatch %s: %s", s->id, c.dispatch_id, c.error);
            }
            note(w, "done", c.research_id, rcw_job_dispatch(job)->phase);
            publish(w, s, &c);
            verbose(w, "%s: completed %s (%s)", s->id, c.dispatch_id,
                    completion_status_name(c.status));
            slot_set_idle(s);
        } else if (s->job == job) {
            slot_set_idle(s); /* a dying slot's job: never completed */
        }
        rcw_job_free(job);
        job = next;
        n++;
    }
    return n;
}

/* Copy the running jobs' progress into their slots, at most every PROGRESS_BEAT_MS, and make
 * the beat of those that changed due: progress shows within about that (the loop looks at
 * least every LOOP_MAX_WAIT_MS), however often a handler reports, and costs no Redis call of
 * its own. */
static void
take_progress(struct rcw *w, int64_t now_ms)
{
    if (now_ms < w->progress_at_ms) {
        return;
    }
    w->progress_at_ms = now_ms + PROGRESS_BEAT_MS;
    for (size_t i = 0; i < w->conf.n_workers; i++) {
        struct slot *s = &w->slots[i];
        if (s->job != NULL && !s->dying && rcw_job_take_progress(s->job, &s->progress, s->step)) {
            s->beat_due = true;
        }
    }
}

/* ---- Dispatches and aborts ---------------------------------------------------------------- */

static void
drop_pending(struct slot *s, const char *dispatch_id)
{
    if (s->pending == NULL) {
        return;
    }
    if (dispatch_id != NULL) {
        struct msg m = MSG_INIT;
        bool same = msg_decode(MSG_TOPIC_DISPATCH, s->pending, s->pending_len, &m, NULL) == RC_OK &&
                    m.kind == MSG_DISPATCH && strcmp(m.u.dispatch.dispatch_id, dispatch_id) == 0;
        msg_release(&m);
        if (!same) {
            return;
        }
    }
    free(s->pending);
    s->pending = NULL;
    s->pending_len = 0;
}

/* The checks that need no Redis: false when `d` is not to run on `s`. Made when it arrives and
 * again just before it starts. */
static bool
dispatch_is_runnable(struct rcw *w, struct slot *s, const struct dispatch *d)
{
    if (rcw_seen_has(&s->seen, d->dispatch_id)) {
        verbose(w, "%s: dispatch %s seen before, ignored", s->id, d->dispatch_id);
        return false;
    }
    if (s->job != NULL) {
        say(w, "%s: busy with %s, ignoring dispatch %s", s->id,
            rcw_job_dispatch(s->job)->dispatch_id, d->dispatch_id);
        rcw_seen_add(&s->seen, d->dispatch_id);
        return false;
    }
    return true;
}

static void
on_dispatch(struct rcw *w, struct slot *s, struct msg *m, const rd_kafka_message_t *rkm)
{
    struct turn *t = &w->turn;

    if (!dispatch_is_runnable(w, s, &m->u.dispatch)) {
        return;
    }
    RC_ASSERT(t->n_checks < t->cap_checks);
    struct check *c = &t->checks[t->n_checks++];
    c->w = s;
    c->m = *m;
    *m = (struct msg)MSG_INIT;
    c->raw = rkm->payload;
    c->raw_len = rkm->len;
    c->owned = NULL;
    c->answer = CHECK_UNKNOWN;
}

/* An abort for `s`: its running job is cancelled (its handler sees rcw_job_cancelled) and the
 * slot shows idle at once, publishing nothing for it; else the id is remembered. */
static void
on_abort(struct rcw *w, struct slot *s, const struct abort_msg *a)
{
    drop_pending(s, a->dispatch_id);
    if (s->job != NULL && strcmp(rcw_job_dispatch(s->job)->dispatch_id, a->dispatch_id) == 0 &&
        rcw_job_settle(s->job, RCW_JOB_ABORTED)) {
        verbose(w, "%s: aborted %s (%s)", s->id, a->dispatch_id,
                a->reason != NULL ? a->reason : "no reason");
        rcw_seen_add(&s->seen, a->dispatch_id);
        slot_set_idle(s); /* the job thread ends on its own; collect_done frees it */
        return;
    }
    rcw_seen_add(&s->seen, a->dispatch_id);
}

static void
on_message(struct rcw *w, const rd_kafka_message_t *rkm)
{
    struct msg m = MSG_INIT;
    struct rc_err err = RC_ERR_INIT;

    if (rkm->err != RD_KAFKA_RESP_ERR_NO_ERROR) {
        if (rkm->err != RD_KAFKA_RESP_ERR__PARTITION_EOF) {
            kclient_report(w->kconsumer, rkm->err, rd_kafka_message_errstr(rkm));
        }
        return;
    }
    (void)kclient_answered(w->kconsumer);
    if (msg_decode(MSG_TOPIC_DISPATCH, rkm->payload, rkm->len, &m, &err) != RC_OK) {
        say(w, "skipping invalid message at %s [%" PRId32 "] offset %" PRId64 ": %s",
            rd_kafka_topic_name(rkm->rkt), rkm->partition, rkm->offset, err.msg);
        return;
    }
    const char *worker_id = m.kind == MSG_DISPATCH ? m.u.dispatch.worker_id : m.u.abort.worker_id;
    size_t index = 0;
    if (!rcw_conf_find(&w->conf, worker_id, &index)) {
        goto out;
    }
    struct slot *s = &w->slots[index];
    if (s->dying || s->silent) {
        goto out;
    }
    if (m.kind == MSG_ABORT) {
        on_abort(w, s, &m.u.abort);
    } else if (m.u.dispatch.worker_type != w->conf.type) {
        say(w, "%s: ignoring dispatch %s for a %s worker", s->id, m.u.dispatch.dispatch_id,
            worker_type_name(m.u.dispatch.worker_type));
    } else {
        note(w, "recv", m.u.dispatch.research_id, m.u.dispatch.phase);
        on_dispatch(w, s, &m, rkm);
    }
out:
    msg_release(&m);
}

static void
queue_pending(struct rcw *w, int64_t now_ms)
{
    struct turn *t = &w->turn;
    int64_t retry_at = redislink_retry_at_ms(w->redis);

    if ((retry_at != 0 && now_ms < retry_at) || now_ms < w->check_retry_ms) {
        return;
    }
    for (size_t i = 0; i < w->conf.n_workers; i++) {
        struct slot *s = &w->slots[i];
        if (s->pending == NULL || s->job != NULL || s->dying || s->silent) {
            continue;
        }
        RC_ASSERT(t->n_checks < t->cap_checks);
        struct check *c = &t->checks[t->n_checks];
        c->m = (struct msg)MSG_INIT;
        if (msg_decode(MSG_TOPIC_DISPATCH, s->pending, s->pending_len, &c->m, NULL) != RC_OK ||
            c->m.kind != MSG_DISPATCH) {
            msg_release(&c->m);
            drop_pending(s, NULL);
            continue;
        }
        c->w = s;
        c->owned = s->pending;
        c->raw = c->owned;
        c->raw_len = s->pending_len;
        c->answer = CHECK_UNKNOWN;
        s->pending = NULL;
        s->pending_len = 0;
        t->n_checks++;
    }
}

static void
keep_pending(struct rcw *w, struct check *c)
{
    struct slot *s = c->w;

    if (s->pending != NULL) {
        return;
    }
    verbose(w, "%s: dispatch %s waits for redis to confirm it", s->id, c->m.u.dispatch.dispatch_id);
    if (c->owned != NULL) {
        s->pending = c->owned;
        c->owned = NULL;
    } else {
        s->pending = xmalloc(c->raw_len > 0 ? c->raw_len : 1);
        memcpy(s->pending, c->raw, c->raw_len);
    }
    s->pending_len = c->raw_len;
}

/* The turn's dispatches in arrival order: one research check for all (contract §2), then
 * start those still current. While draining, a current one is handed back at once
 * (`released`) instead: the coordinator sends it to another worker without waiting. */
static void
start_checked(struct rcw *w)
{
    struct turn *t = &w->turn;
    struct rc_err err = RC_ERR_INIT;

    if (t->n_checks == 0) {
        return;
    }
    enum rc_rc rc = research_check(w, t->checks, t->n_checks, &err);
    if (rc == RC_EBACKEND) {
        rc = research_check_each(w, &err);
    }
    if (rc == RC_OK) {
        redis_ok(w);
    } else {
        redis_failed(w, &err);
        w->check_retry_ms = clock_mono_ms() + CHECK_RETRY_MS;
    }
    for (size_t i = 0; i < t->n_checks; i++) {
        struct check *c = &t->checks[i];
        struct slot *s = c->w;
        const struct dispatch *d = &c->m.u.dispatch;
        if (c->answer == CHECK_UNKNOWN) {
            keep_pending(w, c);
            continue;
        }
        if (s->dying || s->silent || !dispatch_is_runnable(w, s, d)) {
            continue;
        }
        rcw_seen_add(&s->seen, d->dispatch_id);
        if (c->answer == CHECK_STALE) {
            verbose(w, "%s: dispatch %s is no longer research %s's, ignored", s->id, d->dispatch_id,
                    d->research_id);
        }
        if (c->answer != CHECK_CURRENT) {
            continue;
        }
        if (w->draining) {
            publish_released(w, s, d);
            continue;
        }
        slot_start(w, s, &c->m, c->raw, c->raw_len);
        s->n_accepted++;
        if (w->die_after > 0 && s->n_accepted >= w->die_after) {
            /* The worker "crashes" mid-work: one busy heartbeat, then silence for good. */
            s->dying = true;
            (void)rcw_job_settle(s->job, RCW_JOB_ABORTED);
            verbose(w, "%s: dies with %s (die_after)", s->id,
                    rcw_job_dispatch(s->job)->dispatch_id);
        }
    }
    rcw_pool_submit(w->pool); /* the turn's jobs, in one hand-over */
}

/* ---- The loop ----------------------------------------------------------------------------- */

static size_t
take_messages(struct rcw *w)
{
    struct turn *t = &w->turn;
    rd_kafka_message_t *rkm = NULL;

    while (t->n_rkms < TURN_MAX_MESSAGES &&
           (rkm = rd_kafka_consumer_poll(w->consumer, 0)) != NULL) {
        t->rkms[t->n_rkms++] = rkm;
    }
    w->turn_full = t->n_rkms == TURN_MAX_MESSAGES;
    return t->n_rkms;
}

static void
turn_end(struct rcw *w)
{
    struct turn *t = &w->turn;

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

/* How long the loop may sleep in poll(2): until the next timer (the periodic heartbeat, a
 * heartbeat's retry, a completion to produce again, `until_ms`), at most LOOP_MAX_WAIT_MS.
 * Messages, delivery reports and finished jobs wake it earlier. */
static int
loop_wait_ms(const struct rcw *w, int64_t now_ms, int64_t until_ms)
{
    if (w->turn_full || w->stop) {
        return 0;
    }
    int64_t deadline = w->next_beat_ms;
    bool beat_due = false;
    for (size_t i = 0; i < w->conf.n_workers; i++) {
        beat_due = beat_due || (w->slots[i].beat_due && !w->slots[i].silent);
    }
    if (beat_due) {
        int64_t retry = w->beat_retry_ms > now_ms ? w->beat_retry_ms : now_ms;
        deadline = retry < deadline ? retry : deadline;
    }
    if (w->n_resend > 0 && w->resend_at_ms < deadline) {
        deadline = w->resend_at_ms;
    }
    if (until_ms > 0 && until_ms < deadline) {
        deadline = until_ms;
    }
    int64_t wait = deadline - now_ms;
    wait = wait < 0 ? 0 : wait;
    return (int)(wait > LOOP_MAX_WAIT_MS ? LOOP_MAX_WAIT_MS : wait);
}

static void
wait_events(struct rcw *w, int wait_ms)
{
    struct pollfd fds[2] = {{.fd = w->wake[0], .events = POLLIN},
                            {.fd = w->kpipe[0], .events = POLLIN}};
    if (wait_ms > 0) {
        (void)poll(fds, 2, wait_ms);
    }
    /* Emptied before the queues are: an event written after this is seen next turn. */
    drain_pipe(w->wake[0]);
    drain_pipe(w->kpipe[0]);
}

static void
beat_all(struct rcw *w)
{
    for (size_t i = 0; i < w->conf.n_workers; i++) {
        w->slots[i].beat_due = true;
    }
}

/* One turn: wait (at most wait_ms) for an event, take the messages there, check and start the
 * turn's dispatches together, write the "busy" beats before any of that work can end, then
 * publish what finished, serve delivery reports, and write the beats that became due. */
static void
turn(struct rcw *w, int64_t until_ms)
{
    wait_events(w, loop_wait_ms(w, clock_mono_ms(), until_ms));
    take_messages(w);
    queue_pending(w, clock_mono_ms());
    for (size_t i = 0; i < w->turn.n_rkms; i++) {
        on_message(w, w->turn.rkms[i]);
    }
    start_checked(w);
    flush_heartbeats(w, clock_mono_ms());
    collect_done(w);
    take_progress(w, clock_mono_ms());
    rd_kafka_poll(w->producer, 0);
    int64_t now_ms = clock_mono_ms();
    resend_completions(w, now_ms, false);
    if (now_ms >= w->next_beat_ms) {
        beat_all(w);
        w->next_beat_ms = now_ms + w->conf.heartbeat_ms;
    }
    flush_heartbeats(w, now_ms);
    turn_end(w);
}

static size_t
n_running(const struct rcw *w)
{
    size_t n = 0;
    for (size_t i = 0; i < w->conf.n_workers; i++) {
        n += w->slots[i].job != NULL && !w->slots[i].dying;
    }
    return n;
}

static size_t
live_jobs(struct rcw *w)
{
    return w->pool != NULL ? rcw_pool_live(w->pool) : 0;
}

/* The stop: heartbeat draining, let running jobs end within the grace (their completions
 * published as usual), hand back the rest as `released`, deliver the completions, and wait
 * (bounded) for the cancelled handlers to return. */
static void
drain(struct rcw *w)
{
    w->draining = !w->abandon;
    beat_all(w);
    verbose(w, "stopping: %zu running, grace %" PRId64 " ms", n_running(w),
            w->conf.grace_ms > 0 && !w->abandon ? w->conf.grace_ms : 0);
    int64_t until = clock_mono_ms() + (w->conf.grace_ms > 0 ? w->conf.grace_ms : 0);
    while (!w->abandon && n_running(w) > 0 && clock_mono_ms() < until && !kafka_fatal(w)) {
        turn(w, until);
    }
    for (size_t i = 0; i < w->conf.n_workers; i++) {
        struct slot *s = &w->slots[i];
        if (s->job != NULL && w->abandon) {
            (void)rcw_job_settle(s->job, RCW_JOB_ABORTED);
        } else if (s->job != NULL && rcw_job_settle(s->job, RCW_JOB_RELEASED) && !s->dying) {
            publish_released(w, s, rcw_job_dispatch(s->job));
        }
        if (s->job != NULL) {
            slot_set_idle(s);
        }
    }
    if (!w->abandon) {
        flush_heartbeats(w, clock_mono_ms()); /* heartbeats are left to expire */
    }
    resend_completions(w, clock_mono_ms(), true);
    rd_kafka_flush(w->producer, FLUSH_TIMEOUT_MS);
    if (w->n_queued + w->n_resend > 0) {
        say(w, "%zu completions not delivered at exit", w->n_queued + w->n_resend);
    }
    int64_t join_until = clock_mono_ms() + JOIN_TIMEOUT_MS;
    while (live_jobs(w) > 0 && clock_mono_ms() < join_until) {
        collect_done(w);
        if (live_jobs(w) > 0) {
            struct pollfd pfd = {.fd = w->wake[0], .events = POLLIN};
            (void)poll(&pfd, 1, 50);
            drain_pipe(w->wake[0]);
        }
    }
    collect_done(w);
}

enum rc_rc
rcw_run(struct rcw *w, struct rc_err *err)
{
    if (w->handler == NULL) {
        return rc_err_set(err, RC_EINVAL, "rcw_run: no handler");
    }
    if (w->pool == NULL) {
        w->pool = rcw_pool_new(w->handler, w->handler_arg, w->wake[1]);
    }
    enum rc_rc rc = start_consuming(w, err);
    if (rc != RC_OK) {
        return rc;
    }
    beat_all(w); /* the first heartbeat, only now: the workers become live */
    w->next_beat_ms = clock_mono_ms() + w->conf.heartbeat_ms;
    flush_heartbeats(w, clock_mono_ms());
    while (!w->stop && !kafka_fatal(w)) {
        turn(w, 0);
    }
    if (kafka_fatal(w)) {
        return rc_err_set(err, RC_EBACKEND, "kafka: fatal error");
    }
    drain(w);
    size_t stuck = live_jobs(w);
    if (stuck > 0) {
        /* Left running: rcw_free must not free what they use. */
        return rc_err_set(err, RC_EBACKEND, "%zu handlers did not return after their cancel",
                          stuck);
    }
    return RC_OK;
}

/* ---- Life --------------------------------------------------------------------------------- */

static enum rc_rc
load_env(struct rcw *w, char *const *envp, struct rc_err *err)
{
    struct buf problems = BUF_INIT;
    enum rc_rc rc = cfg_load(&w->cfg, envp != NULL ? envp : environ, &problems, err);
    if (rc != RC_OK && problems.len > 0) {
        /* The first problem names the variable; the others follow on stderr. */
        char *nl = strchr(problems.data, '\n');
        if (nl != NULL && nl[1] != '\0') {
            fprintf(stderr, "%s", nl + 1);
        }
        if (nl != NULL) {
            *nl = '\0';
        }
        rc_err_set(err, RC_EINVAL, "%s", problems.data);
    }
    buf_release(&problems);
    return rc;
}

enum rc_rc
rcw_new(struct rcw **out, const struct rcw_config *cfg, struct rc_err *err)
{
    struct rcw *w = xcalloc(1, sizeof(*w));
    struct buf text = BUF_INIT;
    enum rc_rc rc = RC_OK;

    w->cfg = (struct cfg)CFG_INIT;
    w->wake[0] = w->wake[1] = w->kpipe[0] = w->kpipe[1] = -1;
    rc = rcw_conf_resolve(cfg, &w->conf, err);
    if (rc == RC_OK) {
        rc = load_env(w, cfg->envp, err);
    }
    if (rc == RC_OK) {
        rc = make_pipe(w->wake, err);
    }
    if (rc == RC_OK) {
        rc = make_pipe(w->kpipe, err);
    }
    if (rc != RC_OK) {
        goto out;
    }
    log_set_level(w->cfg.log_level);
    w->handler = cfg->handler;
    w->handler_arg = cfg->handler_arg;
    w->clock_skew_ms = cfg->clock_skew_ms;
    w->die_after = cfg->die_after;
    w->unchecked = cfg->unchecked_results;
    w->abandon = cfg->abandon_at_stop;
    w->verbose = cfg->verbose;
    w->note = cfg->note;
    w->note_arg = cfg->note_arg;
    w->dispatch_topic = w->cfg.kafka.topics[topic_dispatch(w->conf.type)];
    w->completions_topic = w->cfg.kafka.topics[TOPIC_COMPLETIONS];

    size_t n = w->conf.n_workers;
    w->slots = xcalloc(n, sizeof(*w->slots));
    for (size_t i = 0; i < n; i++) {
        struct slot *s = &w->slots[i];
        s->index = i;
        s->id = w->conf.ids[i];
        keys_worker(&text, w->cfg.redis.key_prefix, s->id);
        s->hb_key = buf_detach(&text);
        s->progress = NAN;
    }
    keys_workers(&text, w->cfg.redis.key_prefix, w->conf.type);
    w->workers_key = buf_detach(&text);
    struct turn *t = &w->turn;
    t->cap_checks = TURN_MAX_MESSAGES + n;
    t->checks = xcalloc(t->cap_checks, sizeof(*t->checks));
    t->keys = xcalloc(t->cap_checks, sizeof(*t->keys));
    t->want = xcalloc(t->cap_checks, sizeof(*t->want));
    t->same = xcalloc(t->cap_checks, sizeof(*t->same));
    /* MULTI, an HSET and an HDEL per slot, the ZADD, EXEC; words: BEAT_WORDS per slot, then
     * the ZADD's 2 + 2 per slot (silence_unbeatable uses 2 per slot of the same arrays). */
    w->beat_cmds = xcalloc(2 * n + 3, sizeof(*w->beat_cmds));
    w->beat_words = xcalloc((BEAT_WORDS + 2) * n + 2, sizeof(*w->beat_words));

    rc = kafka_open(w,
                    cfg->id_prefix != NULL ? cfg->id_prefix
                    : cfg->id != NULL      ? cfg->id
                                           : RCW_DEFAULT_ID_PREFIX,
                    err);
    if (rc != RC_OK) {
        goto out;
    }
    w->redis = redislink_new(&w->cfg.redis);
    *out = w;
    w = NULL;
out:
    buf_release(&text);
    rcw_free(w);
    return rc;
}

void
rcw_set_handler(struct rcw *w, rcw_handler_fn handler, void *arg)
{
    w->handler = handler;
    w->handler_arg = arg;
}

const char *
rcw_worker_id(const struct rcw *w, int i)
{
    RC_ASSERT(i >= 0 && (size_t)i < w->conf.n_workers);
    return w->conf.ids[i];
}

void
rcw_free(struct rcw *w)
{
    if (w == NULL) {
        return;
    }
    turn_end(w);
    if (w->consumer_q != NULL) {
        rd_kafka_queue_io_event_enable(w->consumer_q, -1, NULL, 0);
        rd_kafka_queue_destroy(w->consumer_q);
    }
    if (w->producer_q != NULL) {
        rd_kafka_queue_io_event_enable(w->producer_q, -1, NULL, 0);
        rd_kafka_queue_destroy(w->producer_q);
    }
    kclient_free(w->kconsumer);
    kclient_free(w->kproducer);
    redislink_free(w->redis);
    if (live_jobs(w) > 0) {
        /* Handlers that never returned (rcw_run said so) still use the object, its pipe and
         * their jobs: those are left to the process's exit. */
        return;
    }
    collect_done(w); /* after the producer: nothing is published any more */
    rcw_pool_free(w->pool);
    for (size_t i = 0; w->slots != NULL && i < w->conf.n_workers; i++) {
        struct slot *s = &w->slots[i];
        free(s->hb_key);
        free(s->pending);
        for (struct unacked *u = s->unacked, *next = NULL; u != NULL; u = next) {
            next = u->next;
            free(u->wire);
            free(u);
        }
    }
    free(w->slots);
    free(w->workers_key);
    for (size_t i = 0; i < w->turn.cap_checks; i++) {
        buf_release(&w->turn.checks[i].key);
    }
    free(w->turn.checks);
    free(w->turn.keys);
    free(w->turn.want);
    free(w->turn.same);
    free(w->beat_cmds);
    free(w->beat_words);
    for (int i = 0; i < 2; i++) {
        if (w->wake[i] >= 0) {
            close(w->wake[i]);
        }
        if (w->kpipe[i] >= 0) {
            close(w->kpipe[i]);
        }
    }
    rcw_conf_release(&w->conf);
    cfg_release(&w->cfg);
    free(w);
}
