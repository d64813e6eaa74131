/* SPDX-License-Identifier: MIT
 * rediserr: what a Redis error reply means for us, decided in this one place for every program
 * (coordinator, researchctl, stub-worker, tests). Pure: it reads the reply's text only. */
#ifndef RC_REDISERR_H
#define RC_REDISERR_H

#include <stdbool.h>
#include <stddef.h>

#include "common/rc_err.h"

enum rediserr_kind {
    /* The server cannot serve writes now, or not this client: OOM under maxmemory, NOPERM
     * after an ACL change, BUSY, LOADING, MISCONF, NOREPLICAS, a client limit, ... Nothing
     * about the data: retry later, as an outage. */
    REDISERR_OUTAGE = 0,
    /* This server is no longer (or not yet) the primary: READONLY, MASTERDOWN. Drop the link,
     * so that the next one finds the new primary (through a proxy, a moved address or the
     * Sentinels). Also an outage. */
    REDISERR_FAILOVER,
    /* Our scripts are gone (SCRIPT FLUSH, a restart): drop the link, which loads them again. */
    REDISERR_NOSCRIPT,
    /* Our apply script's fence: this instance does not hold rc:leader. */
    REDISERR_FENCED,
    /* The key or value the command met cannot be used: WRONGTYPE, a field that is not a
     * number, an increment that would overflow; and our scripts' KEYTYPE / KEYMISSING /
     * KEYVALUE checks. Whose data it is decides what to do (one research's, or a key every
     * write needs). */
    REDISERR_DATA,
    /* Anything else: unexpected; callers treat it as an outage of their own kind. */
    REDISERR_OTHER,
};

/* Classify an error reply's text (len bytes, need not be NUL-terminated). */
enum rediserr_kind rediserr_classify(const char *msg, size_t len);
/* True when the link that got this reply must be dropped (FAILOVER, NOSCRIPT). */
bool rediserr_drops_link(enum rediserr_kind kind);
/* The return code of the project's convention for it: RC_EUNAVAIL for OUTAGE, FAILOVER and
 * NOSCRIPT (retryable), RC_ECONFLICT for FENCED, RC_EBACKEND for DATA and OTHER. */
enum rc_rc rediserr_rc(enum rediserr_kind kind);
/* "outage", "failover", ... for logs. */
const char *rediserr_name(enum rediserr_kind kind);

#endif /* RC_REDISERR_H */
