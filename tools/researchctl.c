/* SPDX-License-Identifier: MIT
 * researchctl: the operator's and upstream's command line. It changes state only by publishing
 * to Kafka (the coordinator stays the only writer). This first version has `trigger`; the
 * rest of the CLI (status, show, cancel, workers, events) comes with issue #3. */
#include <inttypes.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <librdkafka/rdkafka.h>

#include "common/buf.h"
#include "common/cfg.h"
#include "common/clock.h"
#include "common/rc_err.h"
#include "coordinator/kconf.h"
#include "proto/msg.h"
#include "tools/toolopt.h"

extern char **environ;

struct trigger_opts {
    struct trigger t;
    bool wait;
    int64_t timeout_s;
    char request_id[LIMITS_ID_MAX + 1];
};

static const struct toolopt trigger_table[] = {
    {"brief", "TEXT", "what to research (required)"},
    {"model", "M", "model for the design and assessment workers"},
    {"strategy", "S", "an existing strategy: skip design, start at training"},
    {"strategy-path", "P", "where that strategy lives"},
    {"bypass-gates", NULL, "skip both quality gates"},
    {"force", NULL, "accept even at capacity or with the budget spent"},
    {"request-id", "ID", "idempotency key (default: generated)"},
    {"no-wait", NULL, "publish and exit without waiting for the outcome"},
    {"timeout", "S", "seconds to wait for the outcome (default 30)"},
    {"help", NULL, "show this help"},
};
#define N_TRIGGER_OPTS (sizeof(trigger_table) / sizeof(trigger_table[0]))

static enum rc_rc
trigger_opt(void *ctx, size_t index, const char *arg, struct rc_err *err)
{
    struct trigger_opts *o = ctx;
    switch (index) {
    case 0:
        o->t.brief = arg;
        break;
    case 1:
        o->t.model = arg;
        break;
    case 2:
        o->t.strategy = arg;
        break;
    case 3:
        o->t.strategy_path = arg;
        break;
    case 4:
        o->t.bypass_gates = true;
        break;
    case 5:
        o->t.force = true;
        break;
    case 6:
        if (!limits_is_id(arg, strlen(arg))) {
            return rc_err_set(err, RC_EINVAL,
                              "--request-id: must be 1-128 bytes of [A-Za-z0-9._:-]");
        }
        snprintf(o->request_id, sizeof(o->request_id), "%s", arg);
        break;
    case 7:
        o->wait = false;
        break;
    case 8:
        return toolopt_int64(arg, 1, 3600, "--timeout", &o->timeout_s, err);
    default:
        toolopt_usage(stdout, "researchctl trigger", "Publish a trigger and wait for its outcome.",
                      trigger_table, N_TRIGGER_OPTS);
        exit(RC_EXIT_OK);
    }
    return RC_OK;
}

/* librdkafka's diagnostics as "researchctl: kafka ...", without its expected warning that a
 * KAFKA_PROP_* meant for consumers is ignored by the producer (and the reverse). */
static void
kafka_log_cb(const rd_kafka_t *rk, int level, const char *fac, const char *buf)
{
    (void)rk;
    if (level > 4 || (strcmp(fac, "CONFWARN") == 0 && strstr(buf, "will be ignored") != NULL)) {
        return;
    }
    fprintf(stderr, "researchctl: kafka %s: %s\n", fac, buf);
}

static rd_kafka_t *
kafka_new(rd_kafka_type_t type, const struct cfg_kafka *k, char *why, size_t why_len)
{
    rd_kafka_conf_t *conf = NULL;
    struct rc_err err = RC_ERR_INIT;
    if (kconf_new(k, NULL, &conf, &err) != RC_OK) {
        snprintf(why, why_len, "%s", err.msg);
        return NULL;
    }
    rd_kafka_conf_set_log_cb(conf, kafka_log_cb);
    if (type == RD_KAFKA_CONSUMER) {
        /* A reader with its own throw-away group that never commits: it joins nothing. */
        char group[64];
        snprintf(group, sizeof(group), "researchctl-%ld", (long)getpid());
        if (rd_kafka_conf_set(conf, "group.id", group, why, why_len) != RD_KAFKA_CONF_OK ||
            rd_kafka_conf_set(conf, "enable.auto.commit", "false", why, why_len) !=
                RD_KAFKA_CONF_OK) {
            rd_kafka_conf_destroy(conf);
            return NULL;
        }
    }
    rd_kafka_t *rk = rd_kafka_new(type, conf, why, why_len);
    if (rk == NULL) {
        rd_kafka_conf_destroy(conf);
    }
    return rk;
}

/* Assign every partition of `topic` at its current end, so that only what follows is read. */
static bool
follow_from_end(rd_kafka_t *rk, const char *topic, char *why, size_t why_len)
{
    rd_kafka_topic_partition_list_t *list = rd_kafka_topic_partition_list_new(8);
    struct rc_err err = RC_ERR_INIT;
    rd_kafka_resp_err_t e = RD_KAFKA_RESP_ERR_NO_ERROR;
    bool ok = kconf_add_partitions(rk, topic, KCONF_START_END_NOW, list, 10000, &err) == RC_OK;
    if (!ok) {
        snprintf(why, why_len, "%s", err.msg);
    } else if ((e = rd_kafka_assign(rk, list)) != RD_KAFKA_RESP_ERR_NO_ERROR) {
        snprintf(why, why_len, "assign: %s", rd_kafka_err2str(e));
        ok = false;
    }
    rd_kafka_topic_partition_list_destroy(list);
    return ok;
}

static void
print_outcome(const struct event *ev)
{
    if (ev->type == EVENT_ACCEPTED) {
        printf("Research triggered: %s\n", ev->research_id);
    } else if (ev->reason != NULL && strcmp(ev->reason, "at_capacity") == 0) {
        printf("Cannot trigger: at capacity (%" PRId64 " active researches, limit is %" PRId64
               ")\nHint: --force accepts it anyway.\n",
               ev->active_count, ev->limit);
    } else if (ev->reason != NULL && strcmp(ev->reason, "budget_exhausted") == 0) {
        printf("Cannot trigger: daily budget exhausted ($%.2f remaining)\n"
               "Hint: --force accepts it anyway.\n",
               ev->remaining);
    } else {
        printf("Cannot trigger: %s%s%s\n", ev->reason != NULL ? ev->reason : "rejected",
               ev->message != NULL ? ": " : "", ev->message != NULL ? ev->message : "");
    }
}

static int
cmd_trigger(const struct cfg *cfg, int argc, char **argv)
{
    struct trigger_opts o = {.wait = true, .timeout_s = 30};
    struct rc_err err = RC_ERR_INIT;
    if (toolopt_parse(trigger_table, N_TRIGGER_OPTS, argc, argv, trigger_opt, &o, &err) != RC_OK) {
        fprintf(stderr, "researchctl: %s\n", err.msg);
        return RC_EXIT_USAGE;
    }
    if (o.t.brief == NULL || o.t.brief[0] == '\0') {
        fprintf(stderr, "researchctl: trigger: --brief is required\n");
        return RC_EXIT_USAGE;
    }
    if (o.request_id[0] == '\0') {
        snprintf(o.request_id, sizeof(o.request_id), "req-%" PRId64 "-%ld", clock_now_ms(),
                 (long)getpid());
    }
    o.t.request_id = o.request_id;
    char why[512];
    rd_kafka_t *consumer = NULL;
    if (o.wait) {
        consumer = kafka_new(RD_KAFKA_CONSUMER, &cfg->kafka, why, sizeof(why));
        if (consumer == NULL ||
            !follow_from_end(consumer, cfg->kafka.topics[CFG_TOPIC_EVENTS], why, sizeof(why))) {
            fprintf(stderr, "researchctl: kafka: %s\n", why);
            return RC_EXIT_UNAVAILABLE;
        }
    }
    rd_kafka_t *producer = kafka_new(RD_KAFKA_PRODUCER, &cfg->kafka, why, sizeof(why));
    if (producer == NULL) {
        fprintf(stderr, "researchctl: kafka: %s\n", why);
        return RC_EXIT_UNAVAILABLE;
    }
    struct msg m = MSG_INIT;
    m.kind = MSG_TRIGGER;
    m.ts_ms = clock_now_ms();
    m.u.trigger = o.t;
    struct buf payload = BUF_INIT;
    msg_encode(&m, &payload);
    rd_kafka_resp_err_t e =
        rd_kafka_producev(producer, RD_KAFKA_V_TOPIC(cfg->kafka.topics[CFG_TOPIC_TRIGGERS]),
                          RD_KAFKA_V_KEY(o.request_id, strlen(o.request_id)),
                          RD_KAFKA_V_VALUE(payload.data, payload.len),
                          RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END);
    buf_release(&payload);
    if (e == RD_KAFKA_RESP_ERR_NO_ERROR) {
        e = rd_kafka_flush(producer, 10000);
    }
    rd_kafka_destroy(producer);
    if (e != RD_KAFKA_RESP_ERR_NO_ERROR) {
        fprintf(stderr, "researchctl: cannot publish the trigger: %s\n", rd_kafka_err2str(e));
        if (consumer != NULL) {
            rd_kafka_destroy(consumer);
        }
        return RC_EXIT_UNAVAILABLE;
    }
    if (!o.wait) {
        printf("Trigger sent: %s\n", o.request_id);
        return RC_EXIT_OK;
    }
    int status = RC_EXIT_FAILURE;
    const int64_t deadline = clock_mono_ms() + o.timeout_s * 1000;
    bool done = false;
    while (!done && clock_mono_ms() < deadline) {
        rd_kafka_message_t *km = rd_kafka_consumer_poll(consumer, 200);
        if (km == NULL) {
            continue;
        }
        struct msg ev = MSG_INIT;
        if (km->err == 0 &&
            msg_decode(MSG_TOPIC_EVENTS, km->payload, km->len, &ev, NULL) == RC_OK &&
            ev.u.event.request_id != NULL && strcmp(ev.u.event.request_id, o.request_id) == 0 &&
            (ev.u.event.type == EVENT_ACCEPTED || ev.u.event.type == EVENT_REJECTED)) {
            print_outcome(&ev.u.event);
            status = ev.u.event.type == EVENT_ACCEPTED ? RC_EXIT_OK : RC_EXIT_FAILURE;
            done = true;
        }
        msg_release(&ev);
        rd_kafka_message_destroy(km);
    }
    rd_kafka_consumer_close(consumer);
    rd_kafka_destroy(consumer);
    if (!done) {
        fprintf(stderr,
                "researchctl: no outcome for %s within %" PRId64
                " s (is the coordinator running?)\n",
                o.request_id, o.timeout_s);
    }
    return status;
}

static void
usage(FILE *out)
{
    fprintf(out, "usage: researchctl <command> [options]\n\n"
                 "Commands:\n"
                 "  trigger   publish a trigger and wait for its outcome\n\n"
                 "Connection settings come from the coordinator's environment variables\n"
                 "(KAFKA_BROKERS, KAFKA_TOPIC_PREFIX, KAFKA_PROP_*, REDIS_URL, ...).\n"
                 "`researchctl <command> --help` describes a command.\n");
}

int
main(int argc, char **argv)
{
    if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? RC_EXIT_USAGE : RC_EXIT_OK;
    }
    struct cfg cfg = CFG_INIT;
    struct buf problems = BUF_INIT;
    struct rc_err err = RC_ERR_INIT;
    if (cfg_load(&cfg, environ, &problems, &err) != RC_OK) {
        fprintf(stderr, "%s", problems.data != NULL ? problems.data : "");
        fprintf(stderr, "researchctl: %s\n", err.msg);
        buf_release(&problems);
        return RC_EXIT_CONFIG;
    }
    buf_release(&problems);
    int status = RC_EXIT_USAGE;
    if (strcmp(argv[1], "trigger") == 0) {
        status = cmd_trigger(&cfg, argc - 1, argv + 1);
    } else {
        fprintf(stderr, "researchctl: unknown command '%s'\n", argv[1]);
        usage(stderr);
    }
    cfg_release(&cfg);
    return status;
}
