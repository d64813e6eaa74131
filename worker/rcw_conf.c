/* SPDX-License-Identifier: MIT
 * rcw_conf: checking a struct rcw_config. */
#include "worker/rcw_conf.h"

#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "common/xalloc.h"
#include "contract/limits.h"

#define MIN_HEARTBEAT_MS 10
#define MAX_HEARTBEAT_MS 2000 /* the contract: a heartbeat at least every 2 s */
#define HOST_MAX 256

static enum rc_rc
optional_text(const char *name, const char *s, size_t max, char **out, struct rc_err *err)
{
    if (s == NULL || s[0] == '\0') {
        *out = NULL;
        return RC_OK;
    }
    size_t len = strlen(s);
    if (len > max || !limits_is_text(s, len)) {
        return rc_err_set(err, RC_EINVAL, "%s: must be UTF-8 text of at most %zu bytes", name, max);
    }
    *out = xstrdup(s);
    return RC_OK;
}

enum rc_rc
rcw_conf_resolve(const struct rcw_config *in, struct rcw_conf *out, struct rc_err *err)
{
    struct rcw_conf c = RCW_CONF_INIT;
    struct buf text = BUF_INIT;
    enum rc_rc rc = RC_OK;

    if (in->type == NULL || worker_type_parse(in->type, &c.type) != RC_OK) {
        rc =
            rc_err_set(err, RC_EINVAL, "type: '%s' is not design, training, backtest or assessment",
                       in->type != NULL ? in->type : "");
        goto out;
    }
    int count = in->count == 0 ? 1 : in->count;
    if (count < 1 || count > RCW_MAX_WORKERS) {
        rc = rc_err_set(err, RC_EINVAL, "count: %d is not 1..%d", in->count, RCW_MAX_WORKERS);
        goto out;
    }
    c.heartbeat_ms = in->heartbeat_ms == 0 ? RCW_DEFAULT_HEARTBEAT_MS : in->heartbeat_ms;
    if (c.heartbeat_ms < MIN_HEARTBEAT_MS || c.heartbeat_ms > MAX_HEARTBEAT_MS) {
        rc = rc_err_set(err, RC_EINVAL, "heartbeat_ms: %lld is not %d..%d",
                        (long long)in->heartbeat_ms, MIN_HEARTBEAT_MS, MAX_HEARTBEAT_MS);
        goto out;
    }
    c.grace_ms = in->shutdown_grace_ms == 0 ? RCW_DEFAULT_GRACE_MS : in->shutdown_grace_ms;
    rc = optional_text("host", in->host, HOST_MAX, &c.host, err);
    if (rc == RC_OK) {
        rc = optional_text("labels", in->labels, RCW_LABELS_MAX, &c.labels, err);
    }
    if (rc != RC_OK) {
        goto out;
    }
    c.log_name = xstrdup(in->log_name != NULL ? in->log_name : "rcw");
    c.n_workers = (size_t)count;
    c.ids = xcalloc(c.n_workers, sizeof(*c.ids));
    if (in->id != NULL) {
        if (count != 1) {
            rc = rc_err_set(err, RC_EINVAL,
                            "id: given with count %d (ids of several workers "
                            "come from id_prefix)",
                            count);
            goto out;
        }
        if (!limits_is_id(in->id, strlen(in->id))) {
            rc = rc_err_set(err, RC_EINVAL, "id: '%s' is not 1-128 bytes of [A-Za-z0-9._:-]",
                            in->id);
            goto out;
        }
        c.ids[0] = xstrdup(in->id);
    } else {
        buf_printf(&text, "%s%s-", in->id_prefix != NULL ? in->id_prefix : RCW_DEFAULT_ID_PREFIX,
                   worker_type_name(c.type));
        c.id_stem = xstrdup(text.data);
        for (size_t i = 0; i < c.n_workers; i++) {
            buf_reset(&text);
            buf_printf(&text, "%s%zu", c.id_stem, i + 1);
            if (!limits_is_id(text.data, text.len)) {
                rc = rc_err_set(err, RC_EINVAL,
                                "id_prefix: worker id '%s' is not 1-128 bytes of [A-Za-z0-9._:-]",
                                text.data);
                goto out;
            }
            c.ids[i] = buf_detach(&text);
        }
    }
    *out = c;
    c = (struct rcw_conf)RCW_CONF_INIT;
out:
    buf_release(&text);
    rcw_conf_release(&c);
    return rc;
}

void
rcw_conf_release(struct rcw_conf *c)
{
    for (size_t i = 0; c->ids != NULL && i < c->n_workers; i++) {
        free(c->ids[i]);
    }
    free(c->ids);
    free(c->id_stem);
    free(c->host);
    free(c->labels);
    free(c->log_name);
    *c = (struct rcw_conf)RCW_CONF_INIT;
}

bool
rcw_conf_find(const struct rcw_conf *c, const char *id, size_t *index)
{
    if (c->id_stem == NULL) {
        *index = 0;
        return c->n_workers == 1 && strcmp(c->ids[0], id) == 0;
    }
    size_t stem_len = strlen(c->id_stem);
    if (strncmp(id, c->id_stem, stem_len) != 0) {
        return false;
    }
    const char *digits = id + stem_len;
    if (*digits < '1' || *digits > '9') {
        return false; /* no number, or a leading zero: not a name we give */
    }
    size_t n = 0;
    for (const char *p = digits; *p != '\0'; p++) {
        if (*p < '0' || *p > '9' || n > c->n_workers) {
            return false;
        }
        n = n * 10 + (size_t)(*p - '0');
    }
    *index = n - 1;
    return n <= c->n_workers;
}
