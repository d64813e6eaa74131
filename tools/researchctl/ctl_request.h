/* SPDX-License-Identifier: MIT
 * ctl_request: researchctl's commands that ask the coordinator for a change by publishing to
 * the triggers topic and report the outcome it publishes: trigger and cancel; and the
 * publish-and-report step that resume and retry share with them. */
#ifndef RC_CTL_REQUEST_H
#define RC_CTL_REQUEST_H

#include "common/rc_err.h"
#include "proto/msg.h"

struct cfg;
struct ctl_command;
struct ctl_opts;

/* `trigger --brief TEXT [...]`: "Research triggered: <id>" (exit 0) or "Cannot trigger: ..."
 * (exit 1). Static; never NULL. */
const struct ctl_command *ctl_request_trigger(void);
/* `cancel <research_id> [...]`: "Research cancelled: <id>" (exit 0) or "Cannot cancel <id>:
 * not found | already finished" (exit 1); or many at once (ctl_bulk.h). Static; never NULL. */
const struct ctl_command *ctl_request_cancel(void);

/* A message to publish and how its outcome reads. */
struct ctl_request {
    const struct msg *msg; /* borrowed */
    const char *key;       /* its Kafka key */
    enum event_type outcomes[2];
    enum event_type ok_type;           /* exit 0 for this outcome, 1 for the other */
    void (*say)(const struct event *); /* the outcome in words, on stdout */
};

/* Publish rq->msg with o's request id and (unless --no-wait) wait o->timeout_s for its
 * outcome, printed as JSON (--json) or by rq->say. Returns the exit status. When outcome is
 * not NULL and an outcome came, it is moved to *outcome (release with msg_release). */
int ctl_request_send(const struct cfg *cfg, const struct ctl_opts *o, const struct ctl_request *rq,
                     struct msg *outcome);
/* Give o a request id when it has none: "<kind>-<unix ms>-<pid>". */
void ctl_request_default_id(struct ctl_opts *o, const char *kind);
/* --request-id ID into o. RC_EINVAL when it is not an id. */
enum rc_rc ctl_request_id_opt(struct ctl_opts *o, const char *arg, struct rc_err *err);
/* Trigger o->t (request id from o) and report as `trigger` does: a budget refusal adds how
 * many active researches will still complete; with o->follow an accepted research is then
 * followed (ctl_follow.h). Returns the exit status. */
int ctl_request_run_trigger(const struct cfg *cfg, struct ctl_opts *o);
/* A cancel's outcome in words: "Research cancelled: <id>" or "Cannot cancel <id>: ...". */
void ctl_request_say_cancel(const struct event *ev);

#endif /* RC_CTL_REQUEST_H */
