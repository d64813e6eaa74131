/* SPDX-License-Identifier: MIT
 * intake: decode, validate and route the coordinator's inputs. */
#include "coordinator/intake.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "common/cfg.h"
#include "common/clock.h"
#include "common/log.h"
#include "common/xalloc.h"
#include "contract/fields.h"
#include "coordinator/budget.h"
#include "coordinator/change.h"
#include "coordinator/consumer.h"
#include "coordinator/idgen.h"
#include "coordinator/idmap.h"
#include "coordinator/machine.h"
#include "coordinator/metrics.h"
#include "coordinator/registry.h"
#include "coordinator/research.h"
#include "coordinator/resume.h"
#include "coordinator/store.h"
#include "coordinator/workers.h"
#include "proto/msg.h"

/* A dead letter's key: the input's, cut to LIMITS_DEADLETTER_KEY bytes (§3: a dead letter
 * must always be publishable, and a key may be as large as a whole message). */
static size_t
deadletter_key_len(const struct input *in)
{
    return in->key_len < LIMITS_DEADLETTER_KEY ? in->key_len : LIMITS_DEADLETTER_KEY;
}

void
intake_dead_letter(const struct intake_env *env, const struct input *in, size_t index,
                   enum msg_invalid kind, const char *why, struct change_list *out)
{
    const char *topic = env->cfg->kafka.topics[in->topic];
    char quoted[LIMITS_STRING_MAX];
    log_warn("invalid input", "topic=%s partition=%d offset=%lld reason=\"%s\"", topic,
             (int)in->partition, (long long)in->offset, log_quote(why, quoted, sizeof(quoted)));
    env->tally->invalid[kind]++;
    if (in->topic == TOPIC_TRIGGERS) {
        env->tally->triggers[METRICS_TRIGGER_INVALID]++;
    }
    struct change *c = change_list_add(out);
    char request_id[LIMITS_ID_MAX + 1];
    struct machine_ctx ctx = {.cfg = env->cfg, .now_ms = env->now_ms};
    if (in->topic == TOPIC_TRIGGERS && msg_peek_request_id(in->payload, in->len, request_id)) {
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
    change_emit(c, TOPIC_DEADLETTER, in->key, deadletter_key_len(in), &m);
    change_add_input(c, index);
}

/* Repeat a remembered outcome: the same event as the first time. */
static void
plan_repeat(const struct intake_env *env, const char *request_id, const struct store_request *r,
            struct change_list *out)
{
    struct machine_ctx ctx = {.cfg = env->cfg, .now_ms = env->now_ms};
    struct machine_outcome first = {.value = r->value, .figures = r->figures};
    machine_repeat(&ctx, request_id, &first, change_list_add(out));
}

/* What the batch has decided so far, for the inputs after: outcomes of request ids (a
 * repeat within one batch repeats the first) and the day's spend. */
struct batch {
    struct idmap *requests; /* trigger request_id -> struct store_request * (in `outcomes`) */
    struct idmap *cancels;  /* cancel request_id -> struct cancel_memo * (a copy) */
    struct idmap *resumes;  /* resume request_id -> struct cancel_memo * (a copy) */
    /* research_id -> struct research * (owned): a research this batch finished, as it now
     * is, for a resume later in the batch (Redis, read before, has it active). */
    struct idmap *finished;
    char day[11];
    double spent_usd; /* today's spend: as stored, plus what this batch charged */
};

static void
plan_trigger(const struct intake_env *env, const struct input *in, size_t index,
             const struct trigger *t, const struct store_request *seen,
             struct store_request *outcome, struct batch *b, struct change_list *out)
{
    /* Seen in the last 24 h, or earlier in this batch: repeat the first outcome. */
    struct store_request *earlier = idmap_get(b->requests, t->request_id);
    if (earlier == NULL && seen->corrupt != NULL) {
        /* Neither a repeat nor known to be new: refused, rather than risk a second research. */
        intake_dead_letter(env, in, index, MSG_INVALID_BAD_VALUE, seen->corrupt, out);
        return;
    }
    if (earlier != NULL || seen->value != NULL) {
        env->tally->triggers[METRICS_TRIGGER_REPEATED]++;
        plan_repeat(env, t->request_id, earlier != NULL ? earlier : seen, out);
        return;
    }
    struct machine_ctx ctx = {.cfg = env->cfg, .now_ms = env->now_ms};
    struct change *c = change_list_add(out);
    int64_t active = (int64_t)registry_count(env->reg);
    int64_t limit = workers_capacity(env->workers, env->cfg->agent.max_concurrent,
                                     env->cfg->agent.concurrency_buffer);
    double daily_limit = env->cfg->agent.daily_budget_usd, remaining = 0;
    /* Capacity is checked first (§3); `force` passes both. */
    if (active >= limit && !t->force) {
        machine_reject_capacity(&ctx, t->request_id, active, limit, c);
        env->tally->triggers[METRICS_TRIGGER_AT_CAPACITY]++;
        log_debug("trigger rejected", "request_id=%s reason=at_capacity active=%lld limit=%lld",
                  t->request_id, (long long)active, (long long)limit);
    } else if (budget_exhausted(daily_limit, b->spent_usd, &remaining) && !t->force) {
        machine_reject_budget(&ctx, t->request_id, remaining, daily_limit, c);
        env->tally->triggers[METRICS_TRIGGER_BUDGET_EXHAUSTED]++;
        log_debug("trigger rejected", "request_id=%s reason=budget_exhausted remaining=%.6f",
                  t->request_id, remaining);
    } else {
        char id[IDGEN_RESEARCH_LEN + 1];
        idgen_research(env->ids, env->now_ms, id);
        machine_accept(&ctx, t, id, c);
        env->tally->triggers[METRICS_TRIGGER_ACCEPTED]++;
        metrics_note_change(env->tally, NULL, c, env->now_ms);
        registry_apply(env->reg, c);
        log_debug("research accepted", "research_id=%s request_id=%s force=%d", id, t->request_id,
                  (int)t->force);
    }
    outcome->value = xstrdup(c->request_value);
    outcome->figures = c->figures;
    idmap_put(b->requests, t->request_id, outcome);
}

/* Mirror `c`, a change of the research `r` (NULL: a new one) planned for an input; a research
 * it finishes is kept as finished in `b` for a resume later in the batch. */
static void
mirror(const struct intake_env *env, const struct research *r, const struct change *c,
       struct batch *b)
{
    if (c->kind == CHANGE_FINISH && r != NULL) {
        struct research *done = research_dup(r);
        change_apply(c, done);
        research_free(idmap_get(b->finished, c->research_id));
        idmap_put(b->finished, c->research_id, done);
    }
    registry_apply(env->reg, c);
}

static void
plan_completion(const struct intake_env *env, const struct completion *comp, struct batch *b,
                struct change_list *out)
{
    env->tally->completions++;
    struct machine_ctx ctx = {.cfg = env->cfg, .now_ms = env->now_ms};
    const struct research *r = registry_find(env->reg, comp->research_id);
    struct change *c = change_list_add(out);
    if (machine_complete(&ctx, r, comp, c) == MACHINE_STALE) {
        change_list_drop_last(out);
        env->tally->stale_completions++;
        log_debug("stale completion", "research_id=%s dispatch_id=%s worker_id=%s",
                  comp->research_id, comp->dispatch_id, comp->worker_id);
        return;
    }
    /* Its worker is done with it, whatever its heartbeat says yet. */
    workers_done(env->workers, comp->worker_id, comp->dispatch_id);
    if (c->cost_usd != 0 && strcmp(c->budget_day, b->day) == 0) {
        b->spent_usd += c->cost_usd;
    }
    if (comp->status == COMPLETION_RELEASED) {
        log_info("dispatch released", "research_id=%s phase=%s dispatch_id=%s worker_id=%s",
                 comp->research_id, research_get(r, RF_PHASE), comp->dispatch_id,
                 comp->worker_id);
    } else if (research_is(r, RF_STATUS, STATUS_RUNNING) && c->kind == CHANGE_FINISH) {
        log_info("research failed", "research_id=%s phase=%s error=\"%s\"", comp->research_id,
                 research_get(r, RF_PHASE), c->value[RF_ERROR] ? c->value[RF_ERROR] : "");
    } else {
        log_debug("phase completed", "research_id=%s phase=%s dispatch_id=%s", comp->research_id,
                  research_get(r, RF_PHASE), comp->dispatch_id);
    }
    metrics_note_change(env->tally, r, c, env->now_ms);
    mirror(env, r, c, b);
}

/* A cancel (§3): repeated, applied to an active research, or refused. `memo` is its remembered
 * outcome (request_id NULL when none), `status` the research's stored status before the
 * batch (NULL: no such research). */
static void
plan_cancel(const struct intake_env *env, const struct cancel *k, const struct cancel_memo *memo,
            const char *status, struct cancel_memo *outcome, struct batch *b,
            struct change_list *out)
{
    struct machine_ctx ctx = {.cfg = env->cfg, .now_ms = env->now_ms};
    const struct cancel_memo *earlier =
        k->request_id != NULL ? idmap_get(b->cancels, k->request_id) : NULL;
    if (earlier == NULL && memo->request_id != NULL) {
        earlier = memo;
    }
    struct change *c = change_list_add(out);
    if (earlier != NULL) {
        machine_cancel_repeat(&ctx, earlier, c);
        return;
    }
    const struct research *r = registry_find(env->reg, k->research_id);
    if (r != NULL) {
        log_info("research cancelled", "research_id=%s phase=%s", k->research_id,
                 research_get(r, RF_PHASE));
        machine_cancel(&ctx, r, k, c);
        metrics_note_change(env->tally, r, c, env->now_ms);
        mirror(env, r, c, b);
    } else {
        /* Not active: finished before (a stored status) or in this batch, or unknown. */
        const char *reason = status != NULL ? REASON_NOT_CANCELLABLE : REASON_NOT_FOUND;
        log_debug("cancel rejected", "research_id=%s reason=%s", k->research_id, reason);
        machine_cancel_reject(&ctx, k, reason, c);
    }
    if (c->cancel.request_id != NULL) {
        /* A copy: `c` moves when the list grows. */
        const struct cancel_memo *m = &c->cancel;
        cancel_memo_set(outcome, m->request_id, m->outcome, m->research_id, m->phase,
                        m->dispatch_id);
        idmap_put(b->cancels, outcome->request_id, outcome);
    }
}

/* Whether a resume finds room: the active count against the limit triggers are held to (§5),
 * unless forced. */
static bool
resume_at_capacity(const struct intake_env *env, const struct resume *k)
{
    int64_t active = (int64_t)registry_count(env->reg);
    int64_t limit = workers_capacity(env->workers, env->cfg->agent.max_concurrent,
                                     env->cfg->agent.concurrency_buffer);
    return active >= limit && !k->force;
}

/* The resume `k` planned on `r` (not NULL): the research back in the mirror, or refused. */
static void
plan_resume_of(const struct intake_env *env, const struct resume *k, const struct research *r,
               struct change *c)
{
    struct machine_ctx ctx = {.cfg = env->cfg, .now_ms = env->now_ms};
    struct research *active = NULL;
    char why[320];
    if (!resume_plan(&ctx, r, k, c, &active, why, sizeof(why))) {
        log_info("resume rejected", "research_id=%s reason=" REASON_NOT_RESUMABLE " why=\"%s\"",
                 k->research_id, why);
        return;
    }
    if (resume_at_capacity(env, k)) {
        research_free(active);
        change_release(c);
        resume_reject(&ctx, k, REASON_AT_CAPACITY, c);
        log_debug("resume rejected", "research_id=%s reason=" REASON_AT_CAPACITY, k->research_id);
        return;
    }
    log_info("research resumed", "research_id=%s phase=%s resumes=%s", k->research_id,
             c->value[RF_PHASE], c->value[RF_RESUMES]);
    metrics_note_change(env->tally, r, c, env->now_ms);
    registry_add(env->reg, active);
}

/* A resume (§3): repeated, applied to a finished research, or refused. `memo` is its
 * remembered outcome (request_id NULL when none), `stored` the research as Redis holds it
 * (NULL: no such research, or expired). */
static void
plan_resume(const struct intake_env *env, const struct resume *k, const struct cancel_memo *memo,
            const struct research *stored, struct cancel_memo *outcome, struct batch *b,
            struct change_list *out)
{
    struct machine_ctx ctx = {.cfg = env->cfg, .now_ms = env->now_ms};
    const struct cancel_memo *earlier =
        k->request_id != NULL ? idmap_get(b->resumes, k->request_id) : NULL;
    if (earlier == NULL && memo->request_id != NULL) {
        earlier = memo;
    }
    struct change *c = change_list_add(out);
    if (earlier != NULL) {
        resume_repeat(&ctx, earlier, c);
        return;
    }
    /* Finished in this batch: as it is now, not as Redis had it before. */
    const struct research *finished = idmap_get(b->finished, k->research_id);
    if (registry_find(env->reg, k->research_id) != NULL) {
        log_debug("resume rejected", "research_id=%s reason=" REASON_NOT_RESUMABLE " why=active",
                  k->research_id);
        resume_reject(&ctx, k, REASON_NOT_RESUMABLE, c);
    } else if (finished != NULL || stored != NULL) {
        plan_resume_of(env, k, finished != NULL ? finished : stored, c);
    } else {
        log_debug("resume rejected", "research_id=%s reason=" REASON_NOT_FOUND, k->research_id);
        resume_reject(&ctx, k, REASON_NOT_FOUND, c);
    }
    env->tally->resumes[c->kind == CHANGE_RESUME ? 0 : 1]++;
    if (c->resume.request_id != NULL) {
        const struct cancel_memo *m = &c->resume;
        cancel_memo_set(outcome, m->request_id, m->outcome, m->research_id, m->phase, NULL);
        idmap_put(b->resumes, outcome->request_id, outcome);
    }
}

static void
free_finished(const char *key, void *value, void *arg)
{
    (void)key;
    (void)arg;
    research_free(value);
}

/* The inputs of one batch, decoded, and what must be looked up for them. */
struct decoded {
    size_t n;
    struct msg *msgs;
    enum rc_rc *rc;
    struct rc_err *why;
    size_t *slot;             /* index among the triggers, or among the cancels */
    const char **request_ids; /* triggers */
    size_t n_triggers;
    const char **cancel_requests; /* cancels: request_id (NULL when none) */
    const char **cancel_researches;
    size_t n_cancels;
    const char **resume_requests; /* resumes: request_id (NULL when none) */
    const char **resume_researches;
    size_t n_resumes;
};

static void
decode_all(const struct input *inputs, size_t n, struct decoded *d)
{
    size_t m = n > 0 ? n : 1;
    d->n = n;
    d->msgs = xcalloc(m, sizeof(*d->msgs));
    d->rc = xcalloc(m, sizeof(*d->rc));
    d->why = xcalloc(m, sizeof(*d->why));
    d->slot = xcalloc(m, sizeof(*d->slot));
    d->request_ids = xcalloc(m, sizeof(*d->request_ids));
    d->cancel_requests = xcalloc(m, sizeof(*d->cancel_requests));
    d->cancel_researches = xcalloc(m, sizeof(*d->cancel_researches));
    d->resume_requests = xcalloc(m, sizeof(*d->resume_requests));
    d->resume_researches = xcalloc(m, sizeof(*d->resume_researches));
    for (size_t i = 0; i < n; i++) {
        enum msg_topic topic =
            inputs[i].topic == TOPIC_TRIGGERS ? MSG_TOPIC_TRIGGERS : MSG_TOPIC_COMPLETIONS;
        d->msgs[i] = (struct msg)MSG_INIT;
        d->rc[i] = msg_decode(topic, inputs[i].payload, inputs[i].len, &d->msgs[i], &d->why[i]);
        if (d->rc[i] != RC_OK) {
            continue;
        }
        if (d->msgs[i].kind == MSG_TRIGGER) {
            d->slot[i] = d->n_triggers;
            d->request_ids[d->n_triggers++] = d->msgs[i].u.trigger.request_id;
        } else if (d->msgs[i].kind == MSG_CANCEL) {
            d->slot[i] = d->n_cancels;
            d->cancel_requests[d->n_cancels] = d->msgs[i].u.cancel.request_id;
            d->cancel_researches[d->n_cancels++] = d->msgs[i].u.cancel.research_id;
        } else if (d->msgs[i].kind == MSG_RESUME) {
            d->slot[i] = d->n_resumes;
            d->resume_requests[d->n_resumes] = d->msgs[i].u.resume.request_id;
            d->resume_researches[d->n_resumes++] = d->msgs[i].u.resume.research_id;
        }
    }
}

static void
decoded_release(struct decoded *d)
{
    for (size_t i = 0; i < d->n; i++) {
        msg_release(&d->msgs[i]);
    }
    free(d->msgs);
    free(d->rc);
    free(d->why);
    free(d->slot);
    free(d->request_ids);
    free(d->cancel_requests);
    free(d->cancel_researches);
    free(d->resume_requests);
    free(d->resume_researches);
}

/* Decode every input; what triggers, cancels and resumes need from Redis (remembered outcomes,
 * the day's spend, research statuses, finished researches) is read in at most three round
 * trips first. */
enum rc_rc
intake_plan(const struct intake_env *env, const struct input *inputs, size_t n,
            struct change_list *out, struct rc_err *err)
{
    struct decoded d = {0};
    decode_all(inputs, n, &d);
    const size_t nt = d.n_triggers > 0 ? d.n_triggers : 1, nc = d.n_cancels > 0 ? d.n_cancels : 1;
    struct store_request *seen = xcalloc(nt, sizeof(*seen));
    struct store_request *outcomes = xcalloc(nt, sizeof(*outcomes)); /* this batch's */
    struct cancel_memo *memos = xcalloc(nc, sizeof(*memos));
    struct cancel_memo *cancelled = xcalloc(nc, sizeof(*cancelled)); /* this batch's */
    char **status = xcalloc(nc, sizeof(*status));
    const size_t nr = d.n_resumes > 0 ? d.n_resumes : 1;
    struct cancel_memo *resume_memos = xcalloc(nr, sizeof(*resume_memos));
    struct cancel_memo *resumed = xcalloc(nr, sizeof(*resumed)); /* this batch's */
    struct research **found = xcalloc(nr, sizeof(*found));
    struct batch b = {.requests = idmap_new(),
                      .cancels = idmap_new(),
                      .resumes = idmap_new(),
                      .finished = idmap_new()};
    size_t n_seen = 0, n_memos = 0, n_resumes = 0;
    enum rc_rc rc = RC_OK;

    clock_utc_day(env->now_ms, b.day);
    if (d.n_triggers > 0) {
        if ((rc = store_get_requests(env->store, d.request_ids, d.n_triggers, b.day, seen,
                                     &b.spent_usd, err)) != RC_OK) {
            goto out;
        }
        n_seen = d.n_triggers;
    }
    if (d.n_cancels > 0) {
        if ((rc = store_get_cancels(env->store, d.cancel_requests, d.cancel_researches, d.n_cancels,
                                    memos, status, err)) != RC_OK) {
            goto out;
        }
        n_memos = d.n_cancels;
    }
    if (d.n_resumes > 0) {
        if ((rc = store_get_resumes(env->store, d.resume_requests, d.resume_researches, d.n_resumes,
                                    resume_memos, found, err)) != RC_OK) {
            goto out;
        }
        n_resumes = d.n_resumes;
    }
    for (size_t i = 0; i < n; i++) {
        if (d.rc[i] != RC_OK) {
            intake_dead_letter(env, &inputs[i], i, (enum msg_invalid)d.why[i].code, d.why[i].msg,
                               out);
            continue;
        }
        const size_t k = d.slot[i];
        const size_t before = out->n;
        switch (d.msgs[i].kind) {
        case MSG_TRIGGER:
            plan_trigger(env, &inputs[i], i, &d.msgs[i].u.trigger, &seen[k], &outcomes[k], &b,
                         out);
            break;
        case MSG_COMPLETION:
            plan_completion(env, &d.msgs[i].u.completion, &b, out);
            break;
        case MSG_CANCEL:
            plan_cancel(env, &d.msgs[i].u.cancel, &memos[k], status[k], &cancelled[k], &b, out);
            break;
        case MSG_RESUME:
            plan_resume(env, &d.msgs[i].u.resume, &resume_memos[k], found[k], &resumed[k], &b, out);
            break;
        default:
            break;
        }
        if (out->n > before && out->items[out->n - 1].n_inputs == 0) {
            change_add_input(&out->items[out->n - 1], i);
        }
    }
out:
    for (size_t i = 0; i < n_seen; i++) {
        store_request_release(&seen[i]);
        store_request_release(&outcomes[i]);
    }
    for (size_t i = 0; i < n_memos; i++) {
        cancel_memo_release(&memos[i]);
        cancel_memo_release(&cancelled[i]);
        free(status[i]);
    }
    free(seen);
    free(outcomes);
    free(memos);
    free(cancelled);
    free(status);
    for (size_t i = 0; i < n_resumes; i++) {
        cancel_memo_release(&resume_memos[i]);
        cancel_memo_release(&resumed[i]);
        research_free(found[i]);
    }
    free(resume_memos);
    free(resumed);
    free(found);
    idmap_each(b.finished, free_finished, NULL);
    idmap_free(b.requests);
    idmap_free(b.cancels);
    idmap_free(b.resumes);
    idmap_free(b.finished);
    decoded_release(&d);
    return rc;
}
