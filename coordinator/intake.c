/* SPDX-License-Identifier: MIT
 * intake: decode, validate and route the coordinator's inputs. */
#include "coordinator/intake.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "common/cfg.h"
#include "common/log.h"
#include "common/xalloc.h"
#include "coordinator/change.h"
#include "coordinator/consumer.h"
#include "coordinator/idgen.h"
#include "coordinator/idmap.h"
#include "coordinator/machine.h"
#include "coordinator/registry.h"
#include "coordinator/research.h"
#include "coordinator/store.h"
#include "coordinator/workers.h"
#include "proto/msg.h"

/* A dead letter for `in`, and for a trigger whose request_id is readable, a `rejected` event
 * with reason invalid (not remembered under rc:request:, §3). */
static void
plan_invalid(const struct intake_env *env, const struct input *in, const char *why,
             struct change_list *out)
{
    const char *topic = env->cfg->kafka.topics[in->topic];
    char quoted[LIMITS_STRING_MAX];
    log_warn("invalid input", "topic=%s partition=%d offset=%lld reason=\"%s\"", topic,
             (int)in->partition, (long long)in->offset, log_quote(why, quoted, sizeof(quoted)));
    env->stats->invalid_inputs++;
    struct change *c = change_list_add(out);
    char request_id[LIMITS_ID_MAX + 1];
    struct machine_ctx ctx = {.cfg = env->cfg, .now_ms = env->now_ms};
    if (in->topic == CFG_TOPIC_TRIGGERS && msg_peek_request_id(in->payload, in->len, request_id)) {
        machine_reject_invalid(&ctx, request_id, why, c);
    } else {
        change_init(c, CHANGE_NOTE, NULL);
    }
    struct msg m = MSG_INIT;
    m.kind = MSG_DEADLETTER;
    m.ts_ms = env->now_ms;
    m.u.deadletter = (struct deadletter){
        .reason = why,
        .source_topic = topic,
        .source_partition = in->partition,
        .source_offset = in->offset,
        .original = in->payload,
        .original_len = in->len,
        .original_size = in->len,
    };
    /* Keyed by the input's key, byte for byte (it may be binary, or absent). */
    change_emit(c, CFG_TOPIC_DEADLETTER, in->key, in->key_len, &m);
}

/* Repeat a remembered outcome: the same event as the first time. */
static void
plan_repeat(const struct intake_env *env, const char *request_id, const struct store_request *r,
            struct change_list *out)
{
    struct machine_ctx ctx = {.cfg = env->cfg, .now_ms = env->now_ms};
    struct machine_outcome first = {.value = r->value,
                                    .has_capacity = r->has_capacity,
                                    .active_count = r->active_count,
                                    .limit = r->limit,
                                    .has_budget = r->has_budget,
                                    .remaining = r->remaining,
                                    .daily_limit = r->daily_limit};
    machine_repeat(&ctx, request_id, &first, change_list_add(out));
}

static void
plan_trigger(const struct intake_env *env, const struct trigger *t,
             const struct store_request *seen, struct store_request *outcome, struct idmap *batch,
             struct change_list *out)
{
    env->stats->triggers++;
    /* Seen in the last 24 h, or earlier in this batch: repeat the first outcome. */
    struct store_request *earlier = idmap_get(batch, t->request_id);
    if (earlier != NULL || seen->value != NULL) {
        plan_repeat(env, t->request_id, earlier != NULL ? earlier : seen, out);
        return;
    }
    struct machine_ctx ctx = {.cfg = env->cfg, .now_ms = env->now_ms};
    struct change *c = change_list_add(out);
    int64_t active = (int64_t)registry_count(env->reg);
    int64_t limit = workers_capacity(env->workers, env->cfg->agent.max_concurrent,
                                     env->cfg->agent.concurrency_buffer);
    if (active >= limit && !t->force) {
        machine_reject_capacity(&ctx, t->request_id, active, limit, c);
        log_debug("trigger rejected", "request_id=%s reason=at_capacity active=%lld limit=%lld",
                  t->request_id, (long long)active, (long long)limit);
    } else {
        char id[IDGEN_RESEARCH_LEN + 1];
        idgen_research(env->ids, env->now_ms, id);
        machine_accept(&ctx, t, id, c);
        registry_apply(env->reg, c);
        log_debug("research accepted", "research_id=%s request_id=%s force=%d", id, t->request_id,
                  (int)t->force);
    }
    outcome->value = xstrdup(c->request_value);
    outcome->has_capacity = c->has_capacity;
    outcome->active_count = c->active_count;
    outcome->limit = c->limit;
    idmap_put(batch, t->request_id, outcome);
}

static void
plan_completion(const struct intake_env *env, const struct completion *comp,
                struct change_list *out)
{
    env->stats->completions++;
    struct machine_ctx ctx = {.cfg = env->cfg, .now_ms = env->now_ms};
    const struct research *r = registry_find(env->reg, comp->research_id);
    struct change *c = change_list_add(out);
    if (machine_complete(&ctx, r, comp, c) == MACHINE_STALE) {
        change_list_drop_last(out);
        env->stats->stale_completions++;
        log_debug("stale completion", "research_id=%s dispatch_id=%s worker_id=%s",
                  comp->research_id, comp->dispatch_id, comp->worker_id);
        return;
    }
    if (research_is(r, RF_STATUS, "running") && c->kind == CHANGE_FINISH) {
        log_info("research failed", "research_id=%s phase=%s error=\"%s\"", comp->research_id,
                 research_get(r, RF_PHASE), c->value[RF_ERROR] ? c->value[RF_ERROR] : "");
    } else {
        log_debug("phase completed", "research_id=%s phase=%s dispatch_id=%s", comp->research_id,
                  research_get(r, RF_PHASE), comp->dispatch_id);
    }
    registry_apply(env->reg, c);
}

/* Decode every input; triggers' request ids are looked up together in one round trip. */
enum rc_rc
intake_plan(const struct intake_env *env, const struct input *inputs, size_t n,
            struct change_list *out, struct rc_err *err)
{
    struct msg *msgs = xcalloc(n > 0 ? n : 1, sizeof(*msgs));
    enum rc_rc *decoded = xcalloc(n > 0 ? n : 1, sizeof(*decoded));
    struct rc_err *why = xcalloc(n > 0 ? n : 1, sizeof(*why));
    const char **request_ids = xcalloc(n > 0 ? n : 1, sizeof(*request_ids));
    size_t *trigger_of = xcalloc(n > 0 ? n : 1, sizeof(*trigger_of));
    size_t n_triggers = 0;
    struct store_request *seen = NULL;
    struct store_request *outcomes = NULL; /* this batch's outcomes, by trigger */
    struct idmap *batch = idmap_new();
    enum rc_rc rc = RC_OK;

    for (size_t i = 0; i < n; i++) {
        enum msg_topic topic =
            inputs[i].topic == CFG_TOPIC_TRIGGERS ? MSG_TOPIC_TRIGGERS : MSG_TOPIC_COMPLETIONS;
        msgs[i] = (struct msg)MSG_INIT;
        decoded[i] = msg_decode(topic, inputs[i].payload, inputs[i].len, &msgs[i], &why[i]);
        if (decoded[i] == RC_OK && msgs[i].kind == MSG_TRIGGER) {
            trigger_of[i] = n_triggers;
            request_ids[n_triggers++] = msgs[i].u.trigger.request_id;
        }
    }
    seen = xcalloc(n_triggers > 0 ? n_triggers : 1, sizeof(*seen));
    outcomes = xcalloc(n_triggers > 0 ? n_triggers : 1, sizeof(*outcomes));
    if (n_triggers > 0 &&
        (rc = store_get_requests(env->store, request_ids, n_triggers, seen, err)) != RC_OK) {
        n_triggers = 0; /* nothing to release */
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        if (decoded[i] != RC_OK) {
            plan_invalid(env, &inputs[i], why[i].msg, out);
            continue;
        }
        switch (msgs[i].kind) {
        case MSG_TRIGGER:
            plan_trigger(env, &msgs[i].u.trigger, &seen[trigger_of[i]], &outcomes[trigger_of[i]],
                         batch, out);
            break;
        case MSG_COMPLETION:
            plan_completion(env, &msgs[i].u.completion, out);
            break;
        case MSG_CANCEL:
            /* TODO(#3): cancel. Valid, so not a dead letter; logged and skipped for now. */
            log_warn("cancel not supported yet", "research_id=%s", msgs[i].u.cancel.research_id);
            break;
        default:
            break;
        }
    }
out:
    for (size_t i = 0; i < n; i++) {
        msg_release(&msgs[i]);
    }
    for (size_t i = 0; i < n_triggers; i++) {
        store_request_release(&seen[i]);
        store_request_release(&outcomes[i]);
    }
    free(seen);
    free(outcomes);
    free(msgs);
    free(decoded);
    free(why);
    free(request_ids);
    free(trigger_of);
    idmap_free(batch);
    return rc;
}
