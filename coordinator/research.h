/* SPDX-License-Identifier: MIT
 * research: one research as the coordinator holds it in memory, a mirror of its Redis hash
 * (contract §6): every field as text, indexed by enum research_field, plus typed readers.
 * Plain data; the registry owns the live ones. */
#ifndef RC_RESEARCH_H
#define RC_RESEARCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "contract/fields.h"
#include "contract/phase.h"

/* What Redis holds under the research's key, when it cannot be read as a research. */
enum research_stored {
    RESEARCH_STORED_HASH = 0, /* a hash (perhaps with bad fields: see `corrupt`) */
    RESEARCH_STORED_NONE,     /* nothing: the hash is gone */
    RESEARCH_STORED_FOREIGN,  /* a key of another type, which is not ours to touch */
};

struct research {
    char *f[RF_MIRRORED]; /* owned; NULL = absent (never ""); no timeline (RF_MIRRORED) */
    enum phase phase;  /* f[RF_PHASE] parsed, kept by research_set: read every pass */
    size_t slot;       /* its index in the registry's age order, kept by the registry */
    /* Not NULL (owned): the stored research cannot be read as one, and this says why
     * ("corrupt research: <field>: <problem>"); the machine fails it alone (contract §7). */
    char *corrupt;
    enum research_stored stored;
    /* When Kafka acknowledged its current dispatch (Unix ms, ours, in memory only): the
     * pick-up timeout counts from then (§7). 0: not acknowledged yet. */
    int64_t acked_at_ms;
};

/* The most attempts a stored research may show: more is corrupt (and `attempt + 1` could
 * not overflow either). */
#define RESEARCH_ATTEMPT_MAX 1000000

/* Set (copying `value`; NULL or "" clears) one field; f < RF_MIRRORED, as for research_get. */
void research_set(struct research *r, enum research_field f, const char *value);
const char *research_get(const struct research *r, enum research_field f); /* NULL if absent */
/* A deep copy; caller frees with research_free. */
struct research *research_dup(const struct research *r);
struct research *research_new(void);
void research_free(struct research *r);

/* Check what was read from Redis for the active research `id` (contract §6 fields: the
 * required ones present, statuses and phases known, numbers whole and in range, ids valid, a
 * dispatch's fields consistent). True when it can be advanced; else false with why[]
 * "corrupt research: <field>: <problem>". */
bool research_check(const struct research *r, const char *id, char *why, size_t why_len);
/* Mark `r` corrupt with `why` (copied), as stored says. */
void research_set_corrupt(struct research *r, enum research_stored stored, const char *why);

/* Typed readers. phase: PHASE_PENDING when unreadable. int: 0 when absent or unreadable. */
enum phase research_phase(const struct research *r);
int64_t research_int(const struct research *r, enum research_field f);
bool research_is(const struct research *r, enum research_field f, const char *value);

#endif /* RC_RESEARCH_H */
