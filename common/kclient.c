/* SPDX-License-Identifier: MIT
 * kclient: the one librdkafka set-up of every program. */
#include "common/kclient.h"

#include <ctype.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/buf.h"
#include "common/cfg.h"
#include "common/clock.h"
#include "common/log.h"
#include "common/xalloc.h"

/* Repeated trouble of one kind is logged again after this long. */
#define REPEAT_LOG_MS 60000

struct kclient {
    rd_kafka_t *rk;
    struct kclient_spec spec;
    bool fatal;
    bool down;                  /* ALL_BROKERS_DOWN, until kclient_answered */
    int last_kind;              /* of the last error logged (link_kind) */
    int64_t logged_mono_ms;     /* when it was logged */
    char last_error[512];
};

/* librdkafka logs from its own threads; our logger writes one line with one fwrite, which is
 * safe to call from any thread. */
static void
log_cb(const rd_kafka_t *rk, int level, const char *fac, const char *buf)
{
    (void)rk;
    /* KAFKA_PROP_* go to producers and consumers alike: that one of them ignores a property of
     * the other kind is expected, not worth a warning. */
    if (strcmp(fac, "CONFWARN") == 0 && strstr(buf, "will be ignored by this") != NULL) {
        level = 7;
    }
    /* Connection failures repeat at every reconnect attempt; error_cb reports them once per
     * change, so here they are detail. */
    if (strcmp(fac, "FAIL") == 0) {
        level = 7;
    }
    if (level <= 3) {
        log_error("librdkafka", "facility=%s detail=\"%s\"", fac, buf);
    } else if (level <= 4) {
        log_warn("librdkafka", "facility=%s detail=\"%s\"", fac, buf);
    } else {
        log_debug("librdkafka", "facility=%s detail=\"%s\"", fac, buf);
    }
}

/* Connection trouble comes as a mix of codes (transport, all brokers down, timeouts), one per
 * reconnect attempt: they are one kind, so an outage is one line. */
static int
link_kind(int code)
{
    return code == RD_KAFKA_RESP_ERR__TRANSPORT || code == RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN ||
                   code == RD_KAFKA_RESP_ERR__RESOLVE || code == RD_KAFKA_RESP_ERR__TIMED_OUT
               ? RD_KAFKA_RESP_ERR__TRANSPORT
               : code;
}

void
kclient_report(struct kclient *c, rd_kafka_resp_err_t code, const char *detail)
{
    snprintf(c->last_error, sizeof(c->last_error), "%s", detail);
    const int64_t now = clock_mono_ms();
    if (link_kind(code) != c->last_kind || now - c->logged_mono_ms >= REPEAT_LOG_MS) {
        log_warn("kafka error", "client=%s detail=\"%s\"", c->spec.role, detail);
        c->last_kind = link_kind(code);
        c->logged_mono_ms = now;
    }
}

/* The one error policy: fatal is remembered and logged; the rest librdkafka retries itself,
 * and it is logged when its kind changes (or after REPEAT_LOG_MS of the same). */
static void
error_cb(rd_kafka_t *rk, int code, const char *reason, void *opaque)
{
    struct kclient *c = opaque;
    if (code == RD_KAFKA_RESP_ERR__FATAL) {
        rd_kafka_fatal_error(rk, c->last_error, sizeof(c->last_error));
        if (!c->fatal) {
            log_error("kafka fatal error: a new client is needed", "client=%s detail=\"%s\"",
                      c->spec.role, c->last_error);
        }
        c->fatal = true;
        return;
    }
    if (code == RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN) {
        c->down = true;
    }
    kclient_report(c, (rd_kafka_resp_err_t)code, reason);
}

static void
dr_cb(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
    (void)rk;
    struct kclient *c = opaque;
    c->spec.delivered(c->spec.owner, m);
}

static void
commit_cb(rd_kafka_t *rk, rd_kafka_resp_err_t e, rd_kafka_topic_partition_list_t *offsets,
          void *opaque)
{
    (void)rk;
    struct kclient *c = opaque;
    c->spec.committed(c->spec.owner, e, offsets);
}

static enum rc_rc
set(rd_kafka_conf_t *conf, const char *name, const char *value, const char *var, struct rc_err *err)
{
    char errstr[256];
    if (rd_kafka_conf_set(conf, name, value, errstr, sizeof(errstr)) != RD_KAFKA_CONF_OK) {
        return rc_err_set(err, RC_EINVAL, "%s: %s", var, errstr);
    }
    return RC_OK;
}

/* The brokers, `defaults`, then every KAFKA_PROP_* (which win). */
static enum rc_rc
configure(rd_kafka_conf_t *conf, const struct cfg_kafka *cfg, const char *const *defaults,
          struct rc_err *err)
{
    enum rc_rc rc = RC_OK;
    if (cfg != NULL) {
        rc = set(conf, "bootstrap.servers", cfg->brokers, "KAFKA_BROKERS", err);
    }
    for (size_t i = 0; rc == RC_OK && defaults != NULL && defaults[i] != NULL; i += 2) {
        rc = set(conf, defaults[i], defaults[i + 1], defaults[i], err);
    }
    struct buf var = BUF_INIT;
    for (size_t i = 0; rc == RC_OK && cfg != NULL && i < cfg->n_props; i++) {
        buf_reset(&var);
        buf_puts(&var, "KAFKA_PROP_");
        for (const char *p = cfg->prop_names[i]; *p != '\0'; p++) {
            buf_putc(&var, *p == '.' ? '_' : (char)toupper((unsigned char)*p));
        }
        rc = set(conf, cfg->prop_names[i], cfg->prop_values[i], var.data, err);
    }
    buf_release(&var);
    return rc;
}

enum rc_rc
kclient_new(const struct cfg_kafka *cfg, const struct kclient_spec *spec, struct kclient **out,
            struct rc_err *err)
{
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    enum rc_rc rc = configure(conf, cfg, spec->defaults, err);
    if (rc != RC_OK) {
        rd_kafka_conf_destroy(conf);
        return rc;
    }
    struct kclient *c = xcalloc(1, sizeof(*c));
    c->spec = *spec;
    c->spec.defaults = NULL; /* borrowed for the call only */
    c->last_kind = RD_KAFKA_RESP_ERR_NO_ERROR;
    rd_kafka_conf_set_opaque(conf, c);
    rd_kafka_conf_set_log_cb(conf, log_cb);
    rd_kafka_conf_set_error_cb(conf, error_cb);
    if (spec->delivered != NULL) {
        rd_kafka_conf_set_dr_msg_cb(conf, dr_cb);
    }
    if (spec->committed != NULL) {
        rd_kafka_conf_set_offset_commit_cb(conf, commit_cb);
    }
    char errstr[512];
    c->rk = rd_kafka_new(spec->type, conf, errstr, sizeof(errstr));
    if (c->rk == NULL) {
        rd_kafka_conf_destroy(conf); /* rd_kafka_new takes it only on success */
        free(c);
        return rc_err_set(err, RC_EINVAL, "kafka: cannot create the %s: %s", spec->role, errstr);
    }
    if (spec->type == RD_KAFKA_CONSUMER) {
        rd_kafka_poll_set_consumer(c->rk); /* its callbacks are served by consumer_poll */
    }
    *out = c;
    return RC_OK;
}

rd_kafka_t *
kclient_rk(const struct kclient *c)
{
    return c->rk;
}

bool
kclient_fatal(const struct kclient *c)
{
    return c->fatal;
}

bool
kclient_down(const struct kclient *c)
{
    return c->down;
}

bool
kclient_answered(struct kclient *c)
{
    bool was = c->down;
    c->down = false;
    c->last_kind = RD_KAFKA_RESP_ERR_NO_ERROR;
    return was;
}

const char *
kclient_last_error(const struct kclient *c)
{
    return c->last_error;
}

enum rc_rc
kclient_ensure_topics(rd_kafka_t *rk, char *const *topics, size_t n, int timeout_ms,
                    struct rc_err *err)
{
    const struct rd_kafka_metadata *md = NULL;
    rd_kafka_resp_err_t kerr = rd_kafka_metadata(rk, 1, NULL, &md, timeout_ms);
    if (kerr != RD_KAFKA_RESP_ERR_NO_ERROR) {
        return rc_err_set(err, RC_EUNAVAIL, "kafka: cannot read metadata: %s",
                          rd_kafka_err2str(kerr));
    }
    struct buf missing = BUF_INIT;
    size_t n_missing = 0;
    rd_kafka_NewTopic_t **create = xcalloc(n > 0 ? n : 1, sizeof(*create));
    for (size_t i = 0; i < n; i++) {
        bool found = false;
        for (int t = 0; t < md->topic_cnt; t++) {
            if (strcmp(md->topics[t].topic, topics[i]) == 0 && md->topics[t].err == 0) {
                found = true;
            }
        }
        if (!found) {
            char errstr[256];
            buf_printf(&missing, "%s%s", n_missing > 0 ? ", " : "", topics[i]);
            create[n_missing++] = rd_kafka_NewTopic_new(topics[i], -1, -1, errstr, sizeof(errstr));
        }
    }
    rd_kafka_metadata_destroy(md);
    enum rc_rc rc = RC_OK;
    if (n_missing > 0) {
        log_info("creating missing topics", "topics=\"%s\"", missing.data);
        rd_kafka_queue_t *q = rd_kafka_queue_new(rk);
        rd_kafka_CreateTopics(rk, create, n_missing, NULL, q);
        rd_kafka_event_t *ev = rd_kafka_queue_poll(q, timeout_ms);
        const rd_kafka_CreateTopics_result_t *res =
            ev ? rd_kafka_event_CreateTopics_result(ev) : NULL;
        bool ok = res != NULL && rd_kafka_event_error(ev) == RD_KAFKA_RESP_ERR_NO_ERROR;
        if (ok) {
            size_t cnt = 0;
            const rd_kafka_topic_result_t **tr = rd_kafka_CreateTopics_result_topics(res, &cnt);
            for (size_t i = 0; i < cnt; i++) {
                rd_kafka_resp_err_t e = rd_kafka_topic_result_error(tr[i]);
                ok = ok && (e == RD_KAFKA_RESP_ERR_NO_ERROR ||
                            e == RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS);
            }
        }
        if (ev != NULL) {
            rd_kafka_event_destroy(ev);
        }
        rd_kafka_queue_destroy(q);
        if (!ok) {
            rc = rc_err_set(err, RC_ENOTFOUND,
                            "kafka: missing topics the cluster would not create: %s", missing.data);
        }
    }
    for (size_t i = 0; i < n_missing; i++) {
        rd_kafka_NewTopic_destroy(create[i]);
    }
    free(create);
    buf_release(&missing);
    return rc;
}

enum rc_rc
kclient_add_partitions(rd_kafka_t *rk, const char *topic, enum kclient_start start,
                     rd_kafka_topic_partition_list_t *list, int timeout_ms, struct rc_err *err)
{
    rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, topic, NULL);
    const struct rd_kafka_metadata *md = NULL;
    rd_kafka_resp_err_t e = rd_kafka_metadata(rk, 0, rkt, &md, timeout_ms);
    rd_kafka_topic_destroy(rkt);
    if (e != RD_KAFKA_RESP_ERR_NO_ERROR) {
        return rc_err_set(err, RC_EUNAVAIL, "kafka: metadata of %s: %s", topic,
                          rd_kafka_err2str(e));
    }
    enum rc_rc rc = RC_OK;
    const struct rd_kafka_metadata_topic *t = md->topic_cnt == 1 ? &md->topics[0] : NULL;
    if (t == NULL || t->err != RD_KAFKA_RESP_ERR_NO_ERROR || t->partition_cnt == 0) {
        rc = rc_err_set(err, RC_EUNAVAIL, "kafka: topic %s: %s", topic,
                        t != NULL && t->err != 0 ? rd_kafka_err2str(t->err) : "no partitions");
        goto out;
    }
    /* Resolve every offset first, so that a failure adds nothing. */
    int64_t *at = xcalloc((size_t)t->partition_cnt, sizeof(*at));
    for (int i = 0; i < t->partition_cnt && rc == RC_OK; i++) {
        int64_t low = 0;
        at[i] = start == KCLIENT_START_BEGINNING ? RD_KAFKA_OFFSET_BEGINNING : RD_KAFKA_OFFSET_STORED;
        if (start == KCLIENT_START_END_NOW &&
            (e = rd_kafka_query_watermark_offsets(rk, topic, t->partitions[i].id, &low, &at[i],
                                                  timeout_ms)) != RD_KAFKA_RESP_ERR_NO_ERROR) {
            rc = rc_err_set(err, RC_EUNAVAIL, "kafka: end offset of %s [%d]: %s", topic,
                            (int)t->partitions[i].id, rd_kafka_err2str(e));
        }
    }
    for (int i = 0; i < t->partition_cnt && rc == RC_OK; i++) {
        rd_kafka_topic_partition_list_add(list, topic, t->partitions[i].id)->offset = at[i];
    }
    free(at);
out:
    rd_kafka_metadata_destroy(md);
    return rc;
}

/* destroy_within's hand-over: whichever of the two sides comes last frees it. */
struct destroyer {
    struct kclient *c; /* freed with its handle: librdkafka may call back until destroyed */
    int flags;
    atomic_int state; /* DESTROYING, then DESTROYED (by the thread) or ABANDONED (by the caller) */
};

enum { DESTROYING, DESTROYED, ABANDONED };

static void
destroyed(struct destroyer *d)
{
    free(d->c);
    free(d);
}

static void *
destroy_main(void *arg)
{
    struct destroyer *d = arg;
    rd_kafka_destroy_flags(d->c->rk, d->flags);
    if (atomic_exchange(&d->state, DESTROYED) == ABANDONED) {
        destroyed(d);
    }
    return NULL;
}

/* rd_kafka_destroy_flags, then free c; waiting at most timeout_ms, after which both are left
 * to a thread of its own. */
static void
destroy_within(struct kclient *c, int flags, int timeout_ms)
{
    struct destroyer *d = xcalloc(1, sizeof(*d));
    d->c = c;
    d->flags = flags;
    atomic_init(&d->state, DESTROYING);
    pthread_t t;
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    const bool started = pthread_create(&t, &attr, destroy_main, d) == 0;
    pthread_attr_destroy(&attr);
    if (!started) {
        rd_kafka_destroy_flags(c->rk, flags); /* no thread to spare: wait as long as it takes */
        destroyed(d);
        return;
    }
    const int64_t deadline = clock_mono_ms() + timeout_ms;
    while (atomic_load(&d->state) == DESTROYING && clock_mono_ms() < deadline) {
        const struct timespec tick = {0, 5 * 1000 * 1000};
        nanosleep(&tick, NULL);
    }
    if (atomic_exchange(&d->state, ABANDONED) == DESTROYED) {
        destroyed(d);
        return;
    }
    log_warn("librdkafka did not finish destroying a client: left to a thread of its own",
             "client=%s waited_ms=%d", c->spec.role, timeout_ms);
}

void
kclient_free(struct kclient *c)
{
    if (c == NULL) {
        return;
    }
    rd_kafka_t *rk = c->rk;
    bool closed = c->spec.type != RD_KAFKA_CONSUMER;
    if (!closed && rd_kafka_fatal_error(rk, NULL, 0) == RD_KAFKA_RESP_ERR_NO_ERROR) {
        rd_kafka_queue_t *q = rd_kafka_queue_new(rk);
        rd_kafka_error_t *e = rd_kafka_consumer_close_queue(rk, q);
        if (e != NULL) {
            rd_kafka_error_destroy(e);
        } else {
            const int64_t deadline = clock_mono_ms() + KCLIENT_CLOSE_MS;
            while (!(closed = rd_kafka_consumer_closed(rk)) && clock_mono_ms() < deadline) {
                rd_kafka_event_t *ev = rd_kafka_queue_poll(q, 50);
                rd_kafka_event_destroy(ev); /* NULL is fine */
            }
        }
        rd_kafka_queue_destroy(q);
    }
    destroy_within(c, closed ? 0 : RD_KAFKA_DESTROY_F_NO_CONSUMER_CLOSE, KCLIENT_DESTROY_MS);
}
