/* SPDX-License-Identifier: MIT
 * rediserr: Redis error replies by what they mean. */
#include "common/rediserr.h"

#include <string.h>

/* An error reply starts with its code: an upper-case word ("WRONGTYPE Operation ..."), or
 * "ERR" followed by the message. Matched by prefix; the ERR messages that mean bad data are
 * matched by their text, which Redis has kept stable for years. */
struct rule {
    const char *prefix;
    enum rediserr_kind kind;
};

static const struct rule rules[] = {
    {"FENCED", REDISERR_FENCED},
    {"NOSCRIPT", REDISERR_NOSCRIPT},
    {"READONLY", REDISERR_FAILOVER},
    {"MASTERDOWN", REDISERR_FAILOVER},
    {"WRONGTYPE", REDISERR_DATA},
    {"KEYTYPE", REDISERR_DATA},    /* ours: a key of the wrong type */
    {"KEYMISSING", REDISERR_DATA}, /* ours: a key that must exist does not */
    {"KEYVALUE", REDISERR_DATA},   /* ours: a field that must be a number is not */
    {"ERR value is not an integer", REDISERR_DATA},
    {"ERR value is not a valid float", REDISERR_DATA},
    {"ERR hash value is not", REDISERR_DATA},
    {"ERR increment or decrement would overflow", REDISERR_DATA},
    {"ERR increment would produce NaN or Infinity", REDISERR_DATA},
    {"ERR value is NaN or Infinity", REDISERR_DATA},
    {"OOM", REDISERR_OUTAGE},
    {"NOPERM", REDISERR_OUTAGE},
    {"NOAUTH", REDISERR_OUTAGE},
    {"WRONGPASS", REDISERR_OUTAGE},
    {"LOADING", REDISERR_OUTAGE},
    {"BUSY", REDISERR_OUTAGE},
    {"MISCONF", REDISERR_OUTAGE},
    {"NOREPLICAS", REDISERR_OUTAGE},
    {"TRYAGAIN", REDISERR_OUTAGE},
    {"CLUSTERDOWN", REDISERR_OUTAGE},
    {"EXECABORT", REDISERR_OUTAGE},
    {"ERR max number of clients reached", REDISERR_OUTAGE},
};

enum rediserr_kind
rediserr_classify(const char *msg, size_t len)
{
    for (size_t i = 0; i < N_OF(rules); i++) {
        size_t n = strlen(rules[i].prefix);
        if (len >= n && memcmp(msg, rules[i].prefix, n) == 0) {
            return rules[i].kind;
        }
    }
    /* A script's error comes back wrapped: "ERR Error running script ... : FENCED" (old
     * Redis) or with the user's text first. Look for our fence anywhere as a last resort. */
    static const char fenced[] = "FENCED";
    for (size_t i = 0; len >= sizeof(fenced) - 1 && i + sizeof(fenced) - 1 <= len; i++) {
        if (memcmp(msg + i, fenced, sizeof(fenced) - 1) == 0) {
            return REDISERR_FENCED;
        }
    }
    return REDISERR_OTHER;
}

bool
rediserr_drops_link(enum rediserr_kind kind)
{
    return kind == REDISERR_FAILOVER || kind == REDISERR_NOSCRIPT;
}

enum rc_rc
rediserr_rc(enum rediserr_kind kind)
{
    switch (kind) {
    case REDISERR_OUTAGE:
    case REDISERR_FAILOVER:
    case REDISERR_NOSCRIPT:
        return RC_EUNAVAIL;
    case REDISERR_FENCED:
        return RC_ECONFLICT;
    case REDISERR_DATA:
    case REDISERR_OTHER:
        break;
    }
    return RC_EBACKEND;
}

const char *
rediserr_name(enum rediserr_kind kind)
{
    static const char *const names[] = {"outage", "failover", "noscript", "fenced", "data",
                                        "other"};
    return (unsigned)kind < N_OF(names) ? names[kind] : "other";
}
