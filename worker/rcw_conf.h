/* SPDX-License-Identifier: MIT
 * rcw_conf: a struct rcw_config checked and completed (defaults applied, the worker ids
 * built), before anything is opened. Pure: the environment is read by cfg (common/cfg.h). */
#ifndef RC_RCW_CONF_H
#define RC_RCW_CONF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/rc_err.h"
#include "contract/phase.h"
#include "worker/rcw.h"

#define RCW_DEFAULT_HEARTBEAT_MS 1000
#define RCW_DEFAULT_GRACE_MS 10000
#define RCW_DEFAULT_ID_PREFIX "rcw-"

struct rcw_conf {
    enum worker_type type;
    size_t n_workers;
    char **ids;    /* n_workers ids (owned) */
    char *id_stem; /* "<prefix><type>-" when the ids were numbered, else NULL */
    int64_t heartbeat_ms;
    int64_t grace_ms; /* < 0: release at once */
    char *host;       /* NULL: none */
    char *labels;
    char *log_name;
};

#define RCW_CONF_INIT                                                                              \
    {                                                                                              \
        WORKER_DESIGN, 0, NULL, NULL, 0, 0, NULL, NULL, NULL                                       \
    }

/* Check `in` and fill `out` (released with rcw_conf_release). RC_EINVAL naming the field:
 * an unknown type, a count or heartbeat out of range, an id (given or built) that breaks the
 * contract's id rule, `id` with a count above 1, host or labels not text or too long. *out is
 * written only on success. */
enum rc_rc rcw_conf_resolve(const struct rcw_config *in, struct rcw_conf *out, struct rc_err *err);
void rcw_conf_release(struct rcw_conf *c);
/* True with *index when `id` is one of our workers (numbered ids are found from their
 * number, not by comparing all). */
bool rcw_conf_find(const struct rcw_conf *c, const char *id, size_t *index);

#endif /* RC_RCW_CONF_H */
