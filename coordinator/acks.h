/* SPDX-License-Identifier: MIT
 * acks: dispatches published and not yet acknowledged by Kafka, by outbox id, so that a
 * research's pick-up timeout counts from Kafka's acknowledgement, not from the plan (contract
 * §7: a Kafka outage, however long, fails no research). Pure bookkeeping. */
#ifndef RC_ACKS_H
#define RC_ACKS_H

#include <stdbool.h>
#include <stddef.h>

struct acks;

struct acks *acks_new(void);
void acks_free(struct acks *a);
/* Expect the acknowledgement of outbox message `outbox_id`, the dispatch `dispatch_id` of
 * research `research_id` (all copied). */
void acks_expect(struct acks *a, const char *outbox_id, const char *research_id,
                 const char *dispatch_id);
/* The message `outbox_id` was acknowledged (or refused for good): true, with the research and
 * dispatch it carried (borrowed until the next call), when it was an expected dispatch. */
bool acks_take(struct acks *a, const char *outbox_id, const char **research_id,
               const char **dispatch_id);
/* True while some dispatch of research `research_id` awaits its acknowledgement. */
bool acks_pending_for(const struct acks *a, const char *research_id);
size_t acks_count(const struct acks *a);
/* Forget everything (leadership lost: the next leader publishes the outbox again). */
void acks_clear(struct acks *a);

#endif /* RC_ACKS_H */
