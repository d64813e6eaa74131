/* SPDX-License-Identifier: MIT
 * it_topic: a test's reader of one Kafka topic. It assigns every partition at the beginning
 * (a throw-away group.id that never joins nor commits) and keeps every message read, so tests
 * can look back at all of them; each poll only adds what is new. */
#include "tests/support/it_topic.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <librdkafka/rdkafka.h>
#include <unistd.h>

#include "common/cfg.h"
#include "common/clock.h"
#include "common/log.h"
#include "common/xalloc.h"
#include "proto/msg.h"
#include "tests/support/it_env.h"

#define LOOKUP_INTERVAL_MS 50
#define METADATA_TIMEOUT_MS 2000

/* One message with the storage behind the public view. */
struct stored {
    struct it_msg pub;
    char *payload;
    char *key;
    struct msg *decoded;
    char *decode_error;
};

struct it_topic {
    struct kclient *kc;
    rd_kafka_t *rk; /* kclient_rk(kc) */
    char *name;
    int decode_as;          /* enum msg_topic, or -1 for raw */
    bool assigned;          /* partitions known and assigned */
    int64_t next_lookup_ms; /* monotonic: when to ask for the partitions again */
    struct stored **msgs;
    size_t n_msgs;
    size_t cap_msgs;
};

enum rc_rc
it_kafka_client(const char *bootstrap, const struct kclient_spec *spec, struct kclient **out,
                struct rc_err *err)
{
    const char *v = getenv("IT_VERBOSE");
    if (v == NULL || v[0] == '\0' || strcmp(v, "0") == 0) {
        log_set_level(LOG_ERROR);
    }
    char *brokers = xstrdup(bootstrap);
    const struct cfg_kafka k = {.brokers = brokers};
    enum rc_rc rc = kclient_new(&k, spec, out, err);
    free(brokers);
    return rc;
}

enum rc_rc
it_topic_new(struct it_topic **out, const char *bootstrap, const char *topic, int decode_as,
             struct rc_err *err)
{
    static unsigned seq; /* makes every reader's group.id unique within the process */
    char group[64];

    snprintf(group, sizeof group, "it-reader-%ld-%u", (long)getpid(), ++seq);
    /* The group.id only enables rd_kafka_assign(): no subscribe, so no join and no commit.
     * Fetch sizes allow the 2 MiB messages tests may produce. */
    const char *const defaults[] = {
        "group.id", group,
        "enable.auto.commit", "false",
        "enable.auto.offset.store", "false",
        "enable.partition.eof", "false",
        "fetch.wait.max.ms", "5",
        "fetch.error.backoff.ms", "10",
        "max.partition.fetch.bytes", "4194304",
        "fetch.max.bytes", "8388608",
        "receive.message.max.bytes", "16777216",
        "topic.metadata.refresh.interval.ms", "1000",
        NULL,
    };
    const struct kclient_spec spec = {
        .type = RD_KAFKA_CONSUMER, .role = "test reader", .defaults = defaults};
    struct kclient *kc = NULL;
    if (it_kafka_client(bootstrap, &spec, &kc, err) != RC_OK) {
        return err != NULL ? err->rc : RC_EBACKEND;
    }

    struct it_topic *t = xcalloc(1, sizeof *t);
    t->kc = kc;
    t->rk = kclient_rk(kc);
    t->name = xstrdup(topic);
    t->decode_as = decode_as;
    *out = t;
    return RC_OK;
}

const char *
it_topic_name(const struct it_topic *t)
{
    return t->name;
}

/* Ask for the topic's partitions (at most every LOOKUP_INTERVAL_MS) and assign them all from
 * the beginning. A topic that does not exist yet is simply asked for again later. */
static void
topic_lookup(struct it_topic *t)
{
    int64_t now = clock_mono_ms();
    const struct rd_kafka_metadata *md = NULL;

    if (t->assigned || now < t->next_lookup_ms) {
        return;
    }
    t->next_lookup_ms = now + LOOKUP_INTERVAL_MS;
    rd_kafka_topic_t *rkt = rd_kafka_topic_new(t->rk, t->name, NULL);
    if (rkt == NULL) {
        return;
    }
    if (rd_kafka_metadata(t->rk, 0, rkt, &md, METADATA_TIMEOUT_MS) == RD_KAFKA_RESP_ERR_NO_ERROR &&
        md->topic_cnt == 1 && md->topics[0].err == RD_KAFKA_RESP_ERR_NO_ERROR &&
        md->topics[0].partition_cnt > 0) {
        const struct rd_kafka_metadata_topic *mt = &md->topics[0];
        rd_kafka_topic_partition_list_t *parts =
            rd_kafka_topic_partition_list_new(mt->partition_cnt);
        for (int i = 0; i < mt->partition_cnt; i++) {
            rd_kafka_topic_partition_list_add(parts, t->name, mt->partitions[i].id)->offset =
                RD_KAFKA_OFFSET_BEGINNING;
        }
        rd_kafka_resp_err_t kerr = rd_kafka_assign(t->rk, parts);
        if (kerr == RD_KAFKA_RESP_ERR_NO_ERROR) {
            t->assigned = true;
        } else {
            fprintf(stderr, "it_topic: assign %s: %s\n", t->name, rd_kafka_err2str(kerr));
        }
        rd_kafka_topic_partition_list_destroy(parts);
    }
    if (md != NULL) {
        rd_kafka_metadata_destroy(md);
    }
    rd_kafka_topic_destroy(rkt);
}

static void
topic_store(struct it_topic *t, const rd_kafka_message_t *rkm)
{
    struct stored *s = xcalloc(1, sizeof *s);

    s->payload = xmalloc(rkm->len + 1);
    if (rkm->len > 0) {
        memcpy(s->payload, rkm->payload, rkm->len);
    }
    s->payload[rkm->len] = '\0';
    if (rkm->key != NULL) {
        s->key = xstrndup(rkm->key, rkm->key_len);
    }
    if (t->decode_as >= 0) {
        struct msg m = MSG_INIT;
        struct rc_err err = RC_ERR_INIT;
        if (msg_decode((enum msg_topic)t->decode_as, s->payload, rkm->len, &m, &err) == RC_OK) {
            s->decoded = xmalloc(sizeof *s->decoded);
            *s->decoded = m;
        } else {
            s->decode_error = xstrdup(err.msg);
        }
    }
    s->pub.payload = s->payload;
    s->pub.len = rkm->len;
    s->pub.key = s->key;
    s->pub.key_len = rkm->key != NULL ? rkm->key_len : 0;
    s->pub.partition = rkm->partition;
    s->pub.offset = rkm->offset;
    s->pub.ts_ms = rd_kafka_message_timestamp(rkm, NULL);
    s->pub.decoded = s->decoded;
    s->pub.decode_error = s->decode_error;

    t->msgs = xgrow(t->msgs, &t->cap_msgs, t->n_msgs + 1, sizeof *t->msgs);
    t->msgs[t->n_msgs++] = s;
}

size_t
it_topic_poll(struct it_topic *t, int timeout_ms)
{
    int64_t deadline = clock_mono_ms() + (timeout_ms > 0 ? timeout_ms : 0);
    size_t added = 0;

    for (;;) {
        int64_t left = deadline - clock_mono_ms();
        if (left < 0) {
            left = 0;
        }
        topic_lookup(t);
        if (!t->assigned) {
            if (left == 0) {
                break;
            }
            it_sleep_ms(left < 10 ? (int)left : 10);
            continue;
        }
        /* Wait only for the first new message, then drain what is already there. */
        rd_kafka_message_t *rkm = rd_kafka_consumer_poll(t->rk, added > 0 ? 0 : (int)left);
        if (rkm == NULL) {
            if (added > 0 || left == 0) {
                break;
            }
            continue;
        }
        if (rkm->err == RD_KAFKA_RESP_ERR_NO_ERROR) {
            topic_store(t, rkm);
            added++;
        }
        /* Errors (a broker down, a partition EOF) are librdkafka's to retry: ignore them. */
        rd_kafka_message_destroy(rkm);
    }
    return added;
}

size_t
it_topic_count(const struct it_topic *t)
{
    return t->n_msgs;
}

const struct it_msg *
it_topic_msg(const struct it_topic *t, size_t i)
{
    RC_ASSERT(i < t->n_msgs);
    return &t->msgs[i]->pub;
}

const struct it_msg *
it_topic_wait(struct it_topic *t, it_msg_pred_fn pred, void *arg, int timeout_ms)
{
    int64_t deadline = clock_mono_ms() + timeout_ms;
    size_t checked = 0;

    for (;;) {
        /* Messages already checked cannot start matching: pred looks at the message only. */
        for (; checked < t->n_msgs; checked++) {
            if (pred(&t->msgs[checked]->pub, arg)) {
                return &t->msgs[checked]->pub;
            }
        }
        int64_t left = deadline - clock_mono_ms();
        if (left <= 0) {
            return NULL;
        }
        it_topic_poll(t, left < 50 ? (int)left : 50);
    }
}

bool
it_topic_wait_count(struct it_topic *t, size_t n, int timeout_ms)
{
    int64_t deadline = clock_mono_ms() + timeout_ms;

    for (;;) {
        if (t->n_msgs >= n) {
            return true;
        }
        int64_t left = deadline - clock_mono_ms();
        if (left <= 0) {
            return false;
        }
        it_topic_poll(t, left < 50 ? (int)left : 50);
    }
}

void
it_topic_free(struct it_topic *t)
{
    if (t == NULL) {
        return;
    }
    kclient_free(t->kc); /* bounded: a test may have taken the brokers down */
    for (size_t i = 0; i < t->n_msgs; i++) {
        struct stored *s = t->msgs[i];
        if (s->decoded != NULL) {
            msg_release(s->decoded);
            free(s->decoded);
        }
        free(s->decode_error);
        free(s->key);
        free(s->payload);
        free(s);
    }
    free(t->msgs);
    free(t->name);
    free(t);
}
