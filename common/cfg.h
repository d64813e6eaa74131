/* SPDX-License-Identifier: MIT
 * cfg: the environment variables of the contract (§8), declared once in a table that drives
 * parsing, validation, --help and --print-config. Fixed after start-up; secrets redacted. */
#ifndef RC_CFG_H
#define RC_CFG_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "common/log.h"
#include "common/rc_err.h"
#include "contract/topics.h"

struct buf;

struct cfg_kafka {
    char *brokers;                   /* KAFKA_BROKERS */
    char *group;                     /* KAFKA_GROUP */
    char *topic_prefix;              /* KAFKA_TOPIC_PREFIX */
    char *topics[TOPIC_COUNT];   /* full topic names, built from the prefix */
    size_t n_props;                  /* KAFKA_PROP_<NAME> pass-through properties */
    char **prop_names;               /* librdkafka names: lower case, '_' -> '.' */
    char **prop_values;
};

/* A TCP address. */
struct cfg_hostport {
    char *host;
    int port;
};

#define CFG_SENTINELS_MAX 16

struct cfg_redis {
    char *url;        /* REDIS_URL as given (printed redacted) */
    char *key_prefix; /* REDIS_KEY_PREFIX */
    char *host;       /* NULL for a unix socket or Sentinels */
    int port;
    char *unix_path;  /* NULL for TCP */
    char *user;       /* NULL: Redis's default user (AUTH password) */
    char *password;   /* NULL when none: secret */
    int db;
    /* redis+sentinel://: ask these for the primary of `master_name` (host and unix_path NULL) */
    struct cfg_hostport *sentinels;
    size_t n_sentinels;
    char *master_name;
    int64_t timeout_ms; /* connect and command timeout (REDIS_TIMEOUT_MS, ours) */
    int64_t wait_replicas; /* REDIS_WAIT_REPLICAS (ours): replicas a write must reach first */
};

/* A model's price (USD per million tokens), matched by name prefix (AGENT_MODEL_PRICES). */
struct cfg_price {
    char *model; /* the prefix */
    double input_per_m;
    double output_per_m;
};

#define CFG_PRICES_MAX 32

struct cfg_agent {
    int64_t poll_interval_ms;    /* AGENT_POLL_INTERVAL (seconds, fractions allowed) */
    int64_t max_concurrent;      /* AGENT_MAX_CONCURRENT_RESEARCHES, 0 = from workers */
    int64_t concurrency_buffer;  /* AGENT_CONCURRENCY_BUFFER */
    int64_t worker_timeout_ms;   /* AGENT_WORKER_TIMEOUT */
    int64_t dispatch_timeout_ms; /* AGENT_DISPATCH_TIMEOUT */
    int64_t max_attempts;        /* AGENT_MAX_ATTEMPTS */
    int64_t wait_timeout_ms;     /* AGENT_WAIT_TIMEOUT, 0 = forever */
    /* AGENT_PHASE_TIMEOUT_<TYPE> by enum worker_type: how long a picked-up dispatch may run,
     * 0 = no limit */
    int64_t phase_timeout_ms[WORKER_TYPE_COUNT];
    double daily_budget_usd;     /* AGENT_DAILY_BUDGET, 0 = no check */
    int64_t retention_s;         /* RESEARCH_RETENTION */
    char *model_prices;          /* AGENT_MODEL_PRICES as given (ours) */
    struct cfg_price *prices;    /* ... parsed, in the order given */
    size_t n_prices;
};

struct cfg_gates {
    double training_min_accuracy;             /* TRAINING_GATE_MIN_ACCURACY 0.10 */
    double training_max_loss;                 /* TRAINING_GATE_MAX_LOSS 0.8 */
    double training_min_loss_decrease;        /* TRAINING_GATE_MIN_LOSS_DECREASE -0.5 */
    double training_min_directional_accuracy; /* TRAINING_GATE_MIN_DIRECTIONAL_ACCURACY 0.50 */
    double backtest_min_win_rate;             /* BACKTEST_GATE_MIN_WIN_RATE 0.10 */
    double backtest_max_drawdown;             /* BACKTEST_GATE_MAX_DRAWDOWN 0.4 */
    double backtest_min_sharpe;               /* BACKTEST_GATE_MIN_SHARPE -0.5 */
    double backtest_min_net_return;           /* BACKTEST_GATE_MIN_NET_RETURN 0.0 */
    int64_t backtest_min_trades;              /* BACKTEST_GATE_MIN_TRADES 5 */
};

struct cfg {
    struct cfg_kafka kafka;
    struct cfg_redis redis;
    struct cfg_agent agent;
    struct cfg_gates gates;
    enum log_level log_level; /* LOG_LEVEL (ours), default info */
    char *metrics_addr;       /* METRICS_ADDR (ours): "host:port" of /metrics, NULL = off */
};

#define CFG_INIT {.log_level = LOG_INFO}

/* Read every variable from `envp` (NULL-terminated "NAME=value" strings, like environ), apply
 * defaults and validate. On a problem, appends one line per bad variable to `problems` (each
 * line names the variable, the rule and the value given, secrets redacted) and returns
 * RC_EINVAL; *out is written only on success and released with cfg_release(). */
enum rc_rc cfg_load(struct cfg *out, char *const *envp, struct buf *problems, struct rc_err *err);
/* Free what cfg_load allocated; back at CFG_INIT. */
void cfg_release(struct cfg *cfg);
/* Print every variable with its effective value ("NAME=value" lines), secrets redacted. */
void cfg_print(const struct cfg *cfg, FILE *out);
/* Print the table: name, default and help of every variable. */
void cfg_usage(FILE *out);
/* "AGENT_PHASE_TIMEOUT_TRAINING" for WORKER_TRAINING: the variable behind phase_timeout_ms. */
const char *cfg_phase_timeout_var(enum worker_type wt);
/* Parse a Redis URL (contract §8: redis://[[user]:password@]host[:port][/db], unix:///path[?db=N],
 * or redis+sentinel://[[user]:password@]host:port[,host:port...]/<master name>[/db]) into
 * `out`'s host/port/unix_path/user/password/db/sentinels/master_name fields (each NULL or 0
 * when the URL has none; release them with cfg_redis_release). RC_EINVAL with the rule in
 * err otherwise; then `out` is untouched. */
enum rc_rc cfg_parse_redis_url(const char *url, struct cfg_redis *out, struct rc_err *err);
/* A deep copy of `src` (every string duplicated); release with cfg_redis_release. */
void cfg_redis_copy(struct cfg_redis *dst, const struct cfg_redis *src);
/* Free every string of `r` and zero it. */
void cfg_redis_release(struct cfg_redis *r);

#endif /* RC_CFG_H */
