/* SPDX-License-Identifier: MIT
 * keys: the Redis key layout of the contract (§6). */
#include "contract/keys.h"

#include "common/buf.h"

static const char *
build(struct buf *out, const char *prefix, const char *name, const char *id)
{
    buf_reset(out);
    buf_puts(out, prefix);
    buf_puts(out, name);
    if (id != NULL) {
        buf_putc(out, ':');
        buf_puts(out, id);
    }
    return out->data;
}

const char *
keys_research(struct buf *out, const char *prefix, const char *research_id)
{
    return build(out, prefix, "research", research_id);
}

const char *
keys_active(struct buf *out, const char *prefix)
{
    return build(out, prefix, "active", NULL);
}

const char *
keys_finished(struct buf *out, const char *prefix)
{
    return build(out, prefix, "finished", NULL);
}

const char *
keys_request(struct buf *out, const char *prefix, const char *request_id)
{
    return build(out, prefix, "request", request_id);
}

const char *
keys_request_figures(struct buf *out, const char *prefix, const char *request_id)
{
    return build(out, prefix, "request_figures", request_id);
}

const char *
keys_cancel(struct buf *out, const char *prefix, const char *request_id)
{
    return build(out, prefix, "cancel", request_id);
}

const char *
keys_resume(struct buf *out, const char *prefix, const char *request_id)
{
    return build(out, prefix, "resume", request_id);
}

const char *
keys_worker(struct buf *out, const char *prefix, const char *worker_id)
{
    return build(out, prefix, "worker", worker_id);
}

const char *
keys_workers(struct buf *out, const char *prefix, enum worker_type wt)
{
    return build(out, prefix, "workers", worker_type_name(wt));
}

const char *
keys_budget(struct buf *out, const char *prefix, const char *utc_day)
{
    return build(out, prefix, "budget", utc_day);
}

const char *
keys_budget_charges(struct buf *out, const char *prefix, const char *utc_day)
{
    build(out, prefix, "budget", utc_day);
    buf_puts(out, ":charges");
    return out->data;
}

const char *
keys_coordinator(struct buf *out, const char *prefix)
{
    return build(out, prefix, "coordinator", NULL);
}

const char *
keys_leader(struct buf *out, const char *prefix)
{
    return build(out, prefix, "leader", NULL);
}

const char *
keys_outbox(struct buf *out, const char *prefix)
{
    return build(out, prefix, "outbox", NULL);
}
