/* SPDX-License-Identifier: MIT
 * cfg: one table of the contract's environment variables (§8, plus ours) drives parsing,
 * validation, --print-config and --help. Reports every bad variable, one line each, and never
 * prints a secret. Knows nothing about researches. */
#include "common/cfg.h"

#include <ctype.h>
#include <inttypes.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>

#include "common/buf.h"
#include "common/num.h"
#include "common/xalloc.h"

#define KAFKA_PROP_PREFIX "KAFKA_PROP_"
#define KAFKA_TOPIC_MAX 249 /* Kafka's limit on a topic name */
#define REDIS_KEY_PREFIX_MAX 64
#define PROBLEM_VALUE_MAX 200 /* bytes of a bad value quoted in a problem line */
#define SECONDS_GUARD 1e9     /* upper bound of unbounded durations: keeps ms within int64 */

enum var_kind {
    VAR_STRING,       /* char *: any text without control characters */
    VAR_TOPIC_PREFIX, /* char *: Kafka topic characters; also builds kafka.topics[] */
    VAR_KEY_PREFIX,   /* char *: no spaces or control characters, bounded */
    VAR_REDIS_URL,    /* char *: the URL as given, parsed into the rest of struct cfg_redis */
    VAR_INT,          /* int64_t */
    VAR_SECONDS_MS,   /* int64_t milliseconds, given as seconds (fractions allowed) */
    VAR_NUMBER,       /* double, finite */
    VAR_LEVEL,        /* enum log_level */
    VAR_PRICES,       /* char *: "model=in/out,...", also parsed into agent.prices */
    VAR_LISTEN,       /* char *: "host:port" or "[v6]:port"; unset (empty) = NULL */
};

/* Bounds flags; min and max are in the unit the user writes (seconds for VAR_SECONDS_MS). */
#define VAR_MIN 0x1u      /* value >= min */
#define VAR_MIN_EXCL 0x2u /* value > min (with VAR_MIN) */
#define VAR_MAX 0x4u      /* value <= max */
#define VAR_SECRET 0x8u   /* never printed (REDIS_URL: only its password is hidden) */

struct var {
    const char *name;
    enum var_kind kind;
    unsigned flags;
    size_t offset; /* of the field in struct cfg */
    const char *def;
    double min;
    double max;
    const char *help;
};

#define AT(field) offsetof(struct cfg, field)
#define GT0 (VAR_MIN | VAR_MIN_EXCL)

/* The one declaration of every variable: order here is the order of --print-config. */

/* AGENT_PHASE_TIMEOUT_<TYPE>: named once, for the table and for cfg_phase_timeout_var. */
#define VAR_PHASE_TIMEOUT_DESIGN "AGENT_PHASE_TIMEOUT_DESIGN"
#define VAR_PHASE_TIMEOUT_TRAINING "AGENT_PHASE_TIMEOUT_TRAINING"
#define VAR_PHASE_TIMEOUT_BACKTEST "AGENT_PHASE_TIMEOUT_BACKTEST"
#define VAR_PHASE_TIMEOUT_ASSESSMENT "AGENT_PHASE_TIMEOUT_ASSESSMENT"

static const struct var vars[] = {
    {"KAFKA_BROKERS", VAR_STRING, 0, AT(kafka.brokers), "127.0.0.1:9092", 0, 0,
     "bootstrap servers, host:port[,host:port...]"},
    {"KAFKA_GROUP", VAR_STRING, 0, AT(kafka.group), "research-coordinator", 0, 0,
     "the coordinator's consumer group"},
    {"KAFKA_TOPIC_PREFIX", VAR_TOPIC_PREFIX, 0, AT(kafka.topic_prefix), "research.", 0, 0,
     "prefix of every topic name"},
    {"REDIS_URL", VAR_REDIS_URL, VAR_SECRET, AT(redis.url), "redis://127.0.0.1:6379/0", 0, 0,
     "redis://[[user]:password@]host[:port][/db], unix:///path[?db=N], or "
     "redis+sentinel://[[user]:password@]host:port[,host:port...]/<master>[/db]"},
    {"REDIS_KEY_PREFIX", VAR_KEY_PREFIX, 0, AT(redis.key_prefix), "rc:", 0, 0,
     "prefix of every Redis key"},
    {"REDIS_TIMEOUT_MS", VAR_INT, VAR_MIN | VAR_MAX, AT(redis.timeout_ms), "2000", 1, 600000,
     "Redis connect and command timeout, milliseconds"},
    {"REDIS_WAIT_REPLICAS", VAR_INT, VAR_MIN | VAR_MAX, AT(redis.wait_replicas), "0", 0, 16,
     "replicas each write must reach before its inputs are committed (0 = do not wait)"},
    {"AGENT_POLL_INTERVAL", VAR_SECONDS_MS, GT0 | VAR_MAX, AT(agent.poll_interval_ms), "2", 0, 3600,
     "longest time between cycles, seconds (fractions allowed)"},
    {"AGENT_MAX_CONCURRENT_RESEARCHES", VAR_INT, VAR_MIN, AT(agent.max_concurrent), "0", 0, 0,
     "limit on active researches (0 = from live workers)"},
    {"AGENT_CONCURRENCY_BUFFER", VAR_INT, VAR_MIN, AT(agent.concurrency_buffer), "1", 0, 0,
     "slots above the live training + backtest worker count"},
    {"AGENT_WORKER_TIMEOUT", VAR_SECONDS_MS, GT0 | VAR_MAX, AT(agent.worker_timeout_ms), "15", 0,
     SECONDS_GUARD, "seconds before a silent worker is dead"},
    {"AGENT_DISPATCH_TIMEOUT", VAR_SECONDS_MS, GT0 | VAR_MAX, AT(agent.dispatch_timeout_ms), "60",
     0, SECONDS_GUARD, "seconds for a dispatch to be picked up"},
    {"AGENT_MAX_ATTEMPTS", VAR_INT, VAR_MIN, AT(agent.max_attempts), "3", 1, 0,
     "dispatches per phase before the research fails"},
    {"AGENT_WAIT_TIMEOUT", VAR_SECONDS_MS, VAR_MIN | VAR_MAX, AT(agent.wait_timeout_ms), "0", 0,
     SECONDS_GUARD, "seconds a research may wait for a worker (0 = forever)"},
    {VAR_PHASE_TIMEOUT_DESIGN, VAR_SECONDS_MS, VAR_MIN | VAR_MAX,
     AT(agent.phase_timeout_ms[WORKER_DESIGN]), "0", 0, SECONDS_GUARD,
     "seconds a picked-up design dispatch may run (0 = no limit)"},
    {VAR_PHASE_TIMEOUT_TRAINING, VAR_SECONDS_MS, VAR_MIN | VAR_MAX,
     AT(agent.phase_timeout_ms[WORKER_TRAINING]), "0", 0, SECONDS_GUARD,
     "seconds a picked-up training dispatch may run (0 = no limit)"},
    {VAR_PHASE_TIMEOUT_BACKTEST, VAR_SECONDS_MS, VAR_MIN | VAR_MAX,
     AT(agent.phase_timeout_ms[WORKER_BACKTEST]), "0", 0, SECONDS_GUARD,
     "seconds a picked-up backtest dispatch may run (0 = no limit)"},
    {VAR_PHASE_TIMEOUT_ASSESSMENT, VAR_SECONDS_MS, VAR_MIN | VAR_MAX,
     AT(agent.phase_timeout_ms[WORKER_ASSESSMENT]), "0", 0, SECONDS_GUARD,
     "seconds a picked-up assessment dispatch may run (0 = no limit)"},
    {"AGENT_DAILY_BUDGET", VAR_NUMBER, VAR_MIN, AT(agent.daily_budget_usd), "20", 0, 0,
     "USD a day (UTC); 0 = no budget check"},
    {"RESEARCH_RETENTION", VAR_INT, VAR_MIN, AT(agent.retention_s), "604800", 1, 0,
     "seconds finished researches stay in Redis"},
    {"AGENT_MODEL_PRICES", VAR_PRICES, 0, AT(agent.model_prices),
     "claude-opus-4-5=5/25,claude-sonnet-4-5=3/15,claude-haiku-4-5=1/5", 0, 0,
     "USD per million input/output tokens by model name prefix (ours)"},
    {"TRAINING_GATE_MIN_ACCURACY", VAR_NUMBER, 0, AT(gates.training_min_accuracy), "0.10", 0, 0,
     "training gate (classification): accuracy >= this"},
    {"TRAINING_GATE_MAX_LOSS", VAR_NUMBER, 0, AT(gates.training_max_loss), "0.8", 0, 0,
     "training gate: final_loss <= this"},
    {"TRAINING_GATE_MIN_LOSS_DECREASE", VAR_NUMBER, 0, AT(gates.training_min_loss_decrease), "-0.5",
     0, 0, "training gate (classification): (initial - final) / initial >= this"},
    {"TRAINING_GATE_MIN_DIRECTIONAL_ACCURACY", VAR_NUMBER, 0,
     AT(gates.training_min_directional_accuracy), "0.50", 0, 0,
     "training gate (regression): directional_accuracy > this"},
    {"BACKTEST_GATE_MIN_WIN_RATE", VAR_NUMBER, 0, AT(gates.backtest_min_win_rate), "0.10", 0, 0,
     "backtest gate (classification): win_rate >= this"},
    {"BACKTEST_GATE_MAX_DRAWDOWN", VAR_NUMBER, 0, AT(gates.backtest_max_drawdown), "0.4", 0, 0,
     "backtest gate: max_drawdown <= this"},
    {"BACKTEST_GATE_MIN_SHARPE", VAR_NUMBER, 0, AT(gates.backtest_min_sharpe), "-0.5", 0, 0,
     "backtest gate (classification): sharpe_ratio >= this"},
    {"BACKTEST_GATE_MIN_NET_RETURN", VAR_NUMBER, 0, AT(gates.backtest_min_net_return), "0.0", 0, 0,
     "backtest gate (regression): net_return >= this"},
    {"BACKTEST_GATE_MIN_TRADES", VAR_INT, VAR_MIN, AT(gates.backtest_min_trades), "5", 0, 0,
     "backtest gate (regression): total_trades >= this"},
    {"LOG_LEVEL", VAR_LEVEL, 0, AT(log_level), "info", 0, 0, "error, warn, info or debug"},
    {"METRICS_ADDR", VAR_LISTEN, 0, AT(metrics_addr), "", 0, 0,
     "host:port of the /metrics, /healthz, /readyz endpoint (unset: off)"},
};

#define N_VARS N_OF(vars)

static const struct cfg cfg_initial = CFG_INIT;

/* ---- small helpers ---- */

static bool
has_prefix_ci(const char *s, const char *prefix)
{
    for (; *prefix != '\0'; s++, prefix++) {
        if (tolower((unsigned char)*s) != tolower((unsigned char)*prefix)) {
            return false;
        }
    }
    return true;
}

static bool
has_suffix(const char *s, const char *suffix)
{
    size_t n = strlen(s);
    size_t m = strlen(suffix);
    return n >= m && memcmp(s + n - m, suffix, m) == 0;
}

static bool
has_control(const char *s, bool or_space)
{
    for (const unsigned char *p = (const unsigned char *)s; *p != '\0'; p++) {
        if (*p < 0x20 || *p == 0x7f || (or_space && *p == ' ')) {
            return true;
        }
    }
    return false;
}

/* The value of NAME in envp (first occurrence), or NULL. */
static const char *
env_get(char *const *envp, const char *name)
{
    size_t n = strlen(name);

    for (size_t i = 0; envp != NULL && envp[i] != NULL; i++) {
        if (strncmp(envp[i], name, n) == 0 && envp[i][n] == '=') {
            return envp[i] + n + 1;
        }
    }
    return NULL;
}

/* Shortest text that reads back as exactly `d`; integers without a decimal point. */
static void
fmt_number(double d, char *out, size_t size)
{
    if ((d < 0 ? -d : d) < 1e15 && d == (double)(int64_t)d) {
        (void)snprintf(out, size, "%" PRId64, (int64_t)d);
        return;
    }
    for (int prec = 1; prec <= 17; prec++) {
        (void)snprintf(out, size, "%.*g", prec, d);
        if (strtod(out, NULL) == d) {
            return;
        }
    }
}

/* Milliseconds as seconds: "2", "0.5", "0.001". */
static void
fmt_seconds(int64_t ms, char *out, size_t size)
{
    int64_t s = ms / 1000;
    int64_t frac = ms % 1000;

    if (frac == 0) {
        (void)snprintf(out, size, "%" PRId64, s);
        return;
    }
    if (frac < 0) {
        frac = -frac;
    }
    char digits[4];
    (void)snprintf(digits, sizeof digits, "%03d", (int)frac);
    for (int i = 2; i > 0 && digits[i] == '0'; i--) {
        digits[i] = '\0';
    }
    (void)snprintf(out, size, "%s%" PRId64 ".%s", ms < 0 && s == 0 ? "-" : "", s, digits);
}

/* Append `s` in double quotes, escaped, cut at PROBLEM_VALUE_MAX bytes. */
static void
put_quoted(struct buf *b, const char *s)
{
    size_t i = 0;

    buf_putc(b, '"');
    for (; i < PROBLEM_VALUE_MAX && s[i] != '\0'; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '"' || c == '\\') {
            buf_putc(b, '\\');
            buf_putc(b, (char)c);
        } else if (c < 0x20 || c == 0x7f) {
            buf_printf(b, "\\x%02x", (unsigned)c);
        } else {
            buf_putc(b, (char)c);
        }
    }
    if (s[i] != '\0') {
        buf_puts(b, "...");
    }
    buf_putc(b, '"');
}

/* A URL with any password replaced by "***". The last '@' after "://" ends the credentials,
 * so a password holding '/' or '@' is hidden as a whole even in a malformed URL. */
static void
redact_url(struct buf *out, const char *url)
{
    const char *sep = strstr(url, "://");
    const char *at = sep != NULL ? strrchr(sep + 3, '@') : NULL;

    if (at == NULL) {
        buf_puts(out, url);
        return;
    }
    const char *cred = sep + 3;
    const char *colon = memchr(cred, ':', (size_t)(at - cred));
    buf_append(out, url, (size_t)(cred - url));
    if (colon != NULL) {
        buf_append(out, cred, (size_t)(colon + 1 - cred)); /* keep "user:" */
    }
    buf_puts(out, "***");
    buf_puts(out, at);
}

/* ---- Redis URL: exported by cfg.h, and the main reason this file is long ---- */

#define REDIS_URL_RULE                                                                             \
    "must be redis://[[user]:password@]host[:port][/db], unix:///path[?db=N] or "                  \
    "redis+sentinel://[[user]:password@]host:port[,host:port...]/<master name>[/db]"

/* Decimal digits only (no sign, no spaces), value <= max. */
static bool
parse_digits(const char *s, size_t n, int64_t max, int64_t *out)
{
    int64_t v = 0;

    if (n == 0) {
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9') {
            return false;
        }
        v = v * 10 + (s[i] - '0');
        if (v > max) {
            return false;
        }
    }
    *out = v;
    return true;
}

static int
hex_value(char c)
{
    if (c >= '0' && c <= '9') {
        return c - '0';
    }
    c = (char)tolower((unsigned char)c);
    if (c >= 'a' && c <= 'f') {
        return c - 'a' + 10;
    }
    return -1;
}

/* Percent-decode s[0..n) into a new string (NULL when empty), as URLs encode credentials. */
static enum rc_rc
decode_part(const char *what, const char *s, size_t n, char **out, struct rc_err *err)
{
    struct buf b = BUF_INIT;

    for (size_t i = 0; i < n; i++) {
        if (s[i] != '%') {
            buf_putc(&b, s[i]);
            continue;
        }
        int hi = i + 2 < n ? hex_value(s[i + 1]) : -1;
        int lo = i + 2 < n ? hex_value(s[i + 2]) : -1;
        if (hi < 0 || lo < 0 || (hi == 0 && lo == 0)) {
            buf_release(&b);
            return rc_err_set(err, RC_EINVAL, "%s has a bad %%-escape (write a literal %% as %%25)",
                              what);
        }
        buf_putc(&b, (char)(hi * 16 + lo));
        i += 2;
    }
    if (b.len == 0) {
        buf_release(&b);
    }
    *out = buf_detach(&b);
    return RC_OK;
}

static bool
is_host_char(char c, bool bracketed)
{
    if (bracketed) {
        return isxdigit((unsigned char)c) || c == ':' || c == '.';
    }
    return isalnum((unsigned char)c) || c == '.' || c == '-' || c == '_';
}

/* "[[user]:password@]" before `*s` (the last '@' ends them, so a password may hold '@'):
 * into r->user and r->password; *s moves past them. */
static enum rc_rc
parse_credentials(const char **s, struct cfg_redis *r, struct rc_err *err)
{
    const char *at = strrchr(*s, '@');
    if (at == NULL) {
        return RC_OK;
    }
    const char *colon = memchr(*s, ':', (size_t)(at - *s));
    if (colon == NULL) {
        return rc_err_set(err, RC_EINVAL,
                          "credentials must be :password@ or user:password@ (" REDIS_URL_RULE ")");
    }
    enum rc_rc rc = decode_part("user", *s, (size_t)(colon - *s), &r->user, err);
    if (rc == RC_OK) {
        rc = decode_part("password", colon + 1, (size_t)(at - colon - 1), &r->password, err);
    }
    *s = at + 1;
    return rc;
}

/* "host[:port]" in s[0..n) (IPv6 as "[addr]:port"); the port defaults to 6379. */
static enum rc_rc
parse_hostport(const char *s, size_t n, struct cfg_hostport *out, struct rc_err *err)
{
    const char *end = s + n;
    const char *host = s;
    const char *host_end;
    const char *port = NULL;
    bool bracketed = n > 0 && s[0] == '[';

    if (bracketed) {
        host = s + 1;
        host_end = memchr(host, ']', (size_t)(end - host));
        if (host_end == NULL || (host_end + 1 != end && host_end[1] != ':')) {
            return rc_err_set(err, RC_EINVAL, "IPv6 host must be written [addr]:port");
        }
        port = host_end + 1 != end ? host_end + 2 : NULL;
    } else {
        host_end = memchr(host, ':', n);
        if (host_end != NULL) {
            port = host_end + 1;
        } else {
            host_end = end;
        }
    }
    if (host_end == host) {
        return rc_err_set(err, RC_EINVAL, "host is missing (" REDIS_URL_RULE ")");
    }
    for (const char *p = host; p < host_end; p++) {
        if (!is_host_char(*p, bracketed)) {
            return rc_err_set(err, RC_EINVAL, "host has a bad character '%c' (" REDIS_URL_RULE ")",
                              isprint((unsigned char)*p) ? *p : '?');
        }
    }
    int64_t port_v = 6379;
    if (port != NULL && (!parse_digits(port, (size_t)(end - port), 65535, &port_v) || port_v < 1)) {
        return rc_err_set(err, RC_EINVAL, "port must be an integer 1..65535");
    }
    out->host = xstrndup(host, (size_t)(host_end - host));
    out->port = (int)port_v;
    return RC_OK;
}

/* After "redis://": [[user]:password@]host[:port][/db] */
static enum rc_rc
parse_tcp(const char *s, struct cfg_redis *r, struct rc_err *err)
{
    enum rc_rc rc = parse_credentials(&s, r, err);
    if (rc != RC_OK) {
        return rc;
    }
    size_t hostport_len = strcspn(s, "/");
    const char *end = s + hostport_len;
    int64_t db = 0;
    if (*end == '/' && end[1] != '\0' && !parse_digits(end + 1, strlen(end + 1), INT_MAX, &db)) {
        return rc_err_set(err, RC_EINVAL, "db must be an integer 0..%d after the '/'", INT_MAX);
    }
    struct cfg_hostport hp = {0};
    if ((rc = parse_hostport(s, hostport_len, &hp, err)) != RC_OK) {
        return rc;
    }
    r->host = hp.host;
    r->port = hp.port;
    r->db = (int)db;
    return RC_OK;
}

/* A Sentinel master name: what redis-sentinel accepts in its config, no spaces or controls. */
static bool
valid_master_name(const char *s, size_t n)
{
    if (n == 0 || n > 256) {
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        if (!isalnum((unsigned char)s[i]) && strchr("._-:", s[i]) == NULL) {
            return false;
        }
    }
    return true;
}

/* After "redis+sentinel://": [[user]:password@]host:port[,host:port...]/<master name>[/db]. The
 * credentials are the data nodes' (a Sentinel is asked without them, and with them only when
 * it requires AUTH). */
static enum rc_rc
parse_sentinel(const char *s, struct cfg_redis *r, struct rc_err *err)
{
    enum rc_rc rc = parse_credentials(&s, r, err);
    if (rc != RC_OK) {
        return rc;
    }
    const char *slash = strchr(s, '/');
    if (slash == NULL || slash[1] == '\0') {
        return rc_err_set(err, RC_EINVAL, "the Sentinel URL needs /<master name> (" REDIS_URL_RULE
                                          ")");
    }
    const char *name = slash + 1;
    size_t name_len = strcspn(name, "/");
    if (!valid_master_name(name, name_len)) {
        return rc_err_set(err, RC_EINVAL,
                          "master name must be 1..256 bytes of [A-Za-z0-9._:-] (" REDIS_URL_RULE ")");
    }
    int64_t db = 0;
    const char *db_text = name + name_len;
    if (*db_text == '/' && db_text[1] != '\0' &&
        !parse_digits(db_text + 1, strlen(db_text + 1), INT_MAX, &db)) {
        return rc_err_set(err, RC_EINVAL, "db must be an integer 0..%d after the master name",
                          INT_MAX);
    }
    struct cfg_hostport list[CFG_SENTINELS_MAX];
    size_t n = 0;
    if (slash == s) {
        rc = rc_err_set(err, RC_EINVAL, "no Sentinel host:port (" REDIS_URL_RULE ")");
    }
    for (const char *p = s; rc == RC_OK && p <= slash;) {
        size_t len = strcspn(p, ",/");
        if (n == CFG_SENTINELS_MAX) {
            rc = rc_err_set(err, RC_EINVAL, "at most %d Sentinels", CFG_SENTINELS_MAX);
        } else if ((rc = parse_hostport(p, len, &list[n], err)) == RC_OK) {
            n++;
        }
        if (p[len] != ',') {
            break;
        }
        p += len + 1; /* a piece after every comma, so "a,/m" is refused */
    }
    if (rc != RC_OK) {
        for (size_t i = 0; i < n; i++) {
            free(list[i].host);
        }
        return rc;
    }
    r->sentinels = xcalloc(n, sizeof(*r->sentinels));
    memcpy(r->sentinels, list, n * sizeof(*list));
    r->n_sentinels = n;
    r->master_name = xstrndup(name, name_len);
    r->db = (int)db;
    return RC_OK;
}

/* After "unix://": /path[?db=N] */
static enum rc_rc
parse_unix(const char *s, struct cfg_redis *r, struct rc_err *err)
{
    const size_t path_max = sizeof(((struct sockaddr_un *)NULL)->sun_path) - 1;

    if (s[0] != '/') {
        return rc_err_set(err, RC_EINVAL, "unix socket path must be absolute (unix:///path)");
    }
    size_t path_len = strcspn(s, "?");
    if (path_len > path_max) {
        return rc_err_set(err, RC_EINVAL, "unix socket path must be at most %zu bytes", path_max);
    }
    for (size_t i = 0; i < path_len; i++) {
        if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f) {
            return rc_err_set(err, RC_EINVAL, "unix socket path has a control character");
        }
    }

    int64_t db = 0;
    const char *query = s + path_len;
    if (*query == '?') {
        if (strncmp(query, "?db=", 4) != 0) {
            return rc_err_set(err, RC_EINVAL, "only ?db=N may follow a unix socket path");
        }
        if (!parse_digits(query + 4, strlen(query + 4), INT_MAX, &db)) {
            return rc_err_set(err, RC_EINVAL, "db must be an integer 0..%d in ?db=N", INT_MAX);
        }
    }
    r->unix_path = xstrndup(s, path_len);
    r->port = 0;
    r->db = (int)db;
    return RC_OK;
}

/* The fields a URL sets, freed. */
static void
release_url_fields(struct cfg_redis *r)
{
    free(r->host);
    free(r->unix_path);
    free(r->user);
    free(r->password);
    for (size_t i = 0; i < r->n_sentinels; i++) {
        free(r->sentinels[i].host);
    }
    free(r->sentinels);
    free(r->master_name);
}

enum rc_rc
cfg_parse_redis_url(const char *url, struct cfg_redis *out, struct rc_err *err)
{
    struct cfg_redis r = {0};
    enum rc_rc rc;

    if (url == NULL) {
        return rc_err_set(err, RC_EINVAL, REDIS_URL_RULE);
    }
    if (has_prefix_ci(url, "redis://")) {
        rc = parse_tcp(url + strlen("redis://"), &r, err);
    } else if (has_prefix_ci(url, "redis+sentinel://")) {
        rc = parse_sentinel(url + strlen("redis+sentinel://"), &r, err);
    } else if (has_prefix_ci(url, "unix://")) {
        rc = parse_unix(url + strlen("unix://"), &r, err);
    } else if (has_prefix_ci(url, "rediss://")) {
        rc = rc_err_set(err, RC_EINVAL, "TLS (rediss://) is not supported; " REDIS_URL_RULE);
    } else {
        rc = rc_err_set(err, RC_EINVAL, REDIS_URL_RULE);
    }
    if (rc != RC_OK) {
        release_url_fields(&r);
        return rc;
    }
    out->host = r.host;
    out->port = r.port;
    out->unix_path = r.unix_path;
    out->user = r.user;
    out->password = r.password;
    out->db = r.db;
    out->sentinels = r.sentinels;
    out->n_sentinels = r.n_sentinels;
    out->master_name = r.master_name;
    return RC_OK;
}

void
cfg_redis_copy(struct cfg_redis *dst, const struct cfg_redis *src)
{
    *dst = *src;
    dst->url = xstrdup_or_null(src->url);
    dst->key_prefix = xstrdup_or_null(src->key_prefix);
    dst->host = xstrdup_or_null(src->host);
    dst->unix_path = xstrdup_or_null(src->unix_path);
    dst->user = xstrdup_or_null(src->user);
    dst->password = xstrdup_or_null(src->password);
    dst->master_name = xstrdup_or_null(src->master_name);
    dst->sentinels = NULL;
    if (src->n_sentinels > 0) {
        dst->sentinels = xcalloc(src->n_sentinels, sizeof(*dst->sentinels));
        for (size_t i = 0; i < src->n_sentinels; i++) {
            dst->sentinels[i].host = xstrdup(src->sentinels[i].host);
            dst->sentinels[i].port = src->sentinels[i].port;
        }
    }
}

void
cfg_redis_release(struct cfg_redis *r)
{
    release_url_fields(r);
    free(r->url);
    free(r->key_prefix);
    *r = (struct cfg_redis){0};
}

/* ---- one variable ---- */

static size_t
longest_suffix(void)
{
    size_t max = 0;
    for (size_t i = 0; i < TOPIC_COUNT; i++) {
        size_t n = strlen(topic_suffix((enum topic)i));
        max = n > max ? n : max;
    }
    return max;
}

static void
put_bounds(struct buf *b, const struct var *v)
{
    char num[32];

    if (v->flags & VAR_MIN) {
        fmt_number(v->min, num, sizeof num);
        buf_printf(b, " %s %s", (v->flags & VAR_MIN_EXCL) ? ">" : ">=", num);
    }
    if (v->flags & VAR_MAX) {
        fmt_number(v->max, num, sizeof num);
        buf_printf(b, "%s <= %s", (v->flags & VAR_MIN) ? " and" : "", num);
    }
}

/* The rule a value of `v` must follow, as in "NAME: <rule> (got ...)". */
static void
put_rule(struct buf *b, const struct var *v)
{
    switch (v->kind) {
    case VAR_STRING:
        buf_puts(b, "must not contain control characters");
        break;
    case VAR_TOPIC_PREFIX:
        buf_printf(b, "must be 1..%zu characters of [A-Za-z0-9._-]",
                   (size_t)KAFKA_TOPIC_MAX - longest_suffix());
        break;
    case VAR_KEY_PREFIX:
        buf_printf(b, "must be at most %d bytes without spaces or control characters",
                   REDIS_KEY_PREFIX_MAX);
        break;
    case VAR_REDIS_URL:
        buf_puts(b, REDIS_URL_RULE);
        break;
    case VAR_INT:
        buf_puts(b, "must be an integer");
        put_bounds(b, v);
        break;
    case VAR_SECONDS_MS:
        buf_puts(b, "must be a number of seconds");
        put_bounds(b, v);
        break;
    case VAR_NUMBER:
        buf_puts(b, "must be a number");
        put_bounds(b, v);
        break;
    case VAR_LEVEL:
        buf_puts(b, "must be one of error, warn, info, debug");
        break;
    case VAR_LISTEN:
        buf_puts(b, "must be host:port or [ipv6]:port with a port 1..65535");
        break;
    case VAR_PRICES:
        buf_printf(b,
                   "must be 1..%d comma-separated model=input/output entries (USD per million "
                   "tokens, numbers >= 0; model: [A-Za-z0-9._:/-])",
                   CFG_PRICES_MAX);
        break;
    }
}

static bool
in_bounds(const struct var *v, double d)
{
    if (v->flags & VAR_MIN) {
        if ((v->flags & VAR_MIN_EXCL) ? !(d > v->min) : !(d >= v->min)) {
            return false;
        }
    }
    return !(v->flags & VAR_MAX) || d <= v->max;
}

static bool
valid_topic_prefix(const char *s)
{
    size_t n = strlen(s);

    if (n == 0 || n + longest_suffix() > KAFKA_TOPIC_MAX) {
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!isalnum((unsigned char)c) && c != '.' && c != '_' && c != '-') {
            return false;
        }
    }
    return true;
}

static bool
is_model_char(char c)
{
    return isalnum((unsigned char)c) || c == '.' || c == '_' || c == ':' || c == '/' || c == '-';
}

/* "model=in/out[,model=in/out...]" into a new table; false (nothing allocated) when bad. */
static bool
parse_prices(const char *text, struct cfg_price **out, size_t *n_out)
{
    struct cfg_price *t = xcalloc(CFG_PRICES_MAX, sizeof(*t));
    size_t n = 0;
    const char *p = text;
    bool ok = true;
    while (ok) {
        size_t len = strcspn(p, ",");
        const char *eq = memchr(p, '=', len);
        const char *slash = eq != NULL ? memchr(eq, '/', len - (size_t)(eq - p)) : NULL;
        ok = n < CFG_PRICES_MAX && eq != NULL && eq > p && slash != NULL;
        for (const char *c = p; ok && c < eq; c++) {
            ok = is_model_char(*c);
        }
        if (ok) {
            ok = num_parse_f64(eq + 1, (size_t)(slash - eq - 1), &t[n].input_per_m) &&
                 num_parse_f64(slash + 1, len - (size_t)(slash + 1 - p), &t[n].output_per_m) &&
                 t[n].input_per_m >= 0 && t[n].output_per_m >= 0;
        }
        if (ok) {
            t[n++].model = xstrndup(p, (size_t)(eq - p));
        }
        if (p[len] == '\0') {
            break;
        }
        p += len + 1;
    }
    if (!ok) {
        for (size_t i = 0; i < n; i++) {
            free(t[i].model);
        }
        free(t);
        return false;
    }
    *out = t;
    *n_out = n;
    return true;
}

/* "host:port" or "[v6]:port", port 1..65535. */
static bool
valid_listen(const char *s)
{
    const char *colon = strrchr(s, ':');
    int64_t port = 0;
    if (colon == NULL || colon == s ||
        !parse_digits(colon + 1, strlen(colon + 1), 65535, &port) || port < 1) {
        return false;
    }
    bool bracketed = s[0] == '[';
    if (bracketed && (colon - s < 3 || colon[-1] != ']')) {
        return false;
    }
    for (const char *p = s + bracketed; p < colon - bracketed; p++) {
        if (!is_host_char(*p, bracketed)) {
            return false;
        }
    }
    return true;
}

/* Parse `text` as `v` into `c`. On a problem, append the rule to `rule` and return false;
 * nothing of `c` changes then. */
static bool
parse_var(const struct var *v, const char *text, struct cfg *c, struct buf *rule)
{
    char *field = (char *)c + v->offset;
    bool ok = false;

    switch (v->kind) {
    case VAR_STRING:
        ok = !has_control(text, false);
        break;
    case VAR_TOPIC_PREFIX:
        ok = valid_topic_prefix(text);
        break;
    case VAR_KEY_PREFIX:
        ok = strlen(text) <= REDIS_KEY_PREFIX_MAX && !has_control(text, true);
        break;
    case VAR_REDIS_URL: {
        struct rc_err e = RC_ERR_INIT;
        if (cfg_parse_redis_url(text, &c->redis, &e) != RC_OK) {
            buf_puts(rule, e.msg);
            return false;
        }
        ok = true;
        break;
    }
    case VAR_INT: {
        int64_t i;
        ok = num_parse_i64(text, strlen(text), &i) && in_bounds(v, (double)i);
        if (ok) {
            memcpy(field, &i, sizeof i);
        }
        break;
    }
    case VAR_SECONDS_MS: {
        double s;
        ok = num_parse_f64(text, strlen(text), &s) && in_bounds(v, s);
        if (ok) {
            /* Bounds keep s within [0, SECONDS_GUARD], so this cannot overflow. */
            int64_t ms = (int64_t)(s * 1000.0 + 0.5);
            if (ms == 0 && s > 0) {
                ms = 1; /* a positive duration is at least 1 ms */
            }
            memcpy(field, &ms, sizeof ms);
        }
        break;
    }
    case VAR_NUMBER: {
        double d;
        ok = num_parse_f64(text, strlen(text), &d) && in_bounds(v, d);
        if (ok) {
            memcpy(field, &d, sizeof d);
        }
        break;
    }
    case VAR_LEVEL: {
        enum log_level level;
        ok = log_level_parse(text, &level) == RC_OK;
        if (ok) {
            memcpy(field, &level, sizeof level);
        }
        break;
    }
    case VAR_PRICES:
        ok = parse_prices(text, &c->agent.prices, &c->agent.n_prices);
        break;
    case VAR_LISTEN:
        if (text[0] == '\0') {
            return true; /* unset: off */
        }
        ok = valid_listen(text);
        break;
    }
    if (!ok) {
        put_rule(rule, v);
        return false;
    }
    if (v->kind == VAR_STRING || v->kind == VAR_TOPIC_PREFIX || v->kind == VAR_KEY_PREFIX ||
        v->kind == VAR_REDIS_URL || v->kind == VAR_PRICES || v->kind == VAR_LISTEN) {
        char *copy = xstrdup(text);
        memcpy(field, &copy, sizeof copy);
    }
    return true;
}

static void
add_problem(struct buf *problems, const struct var *v, const char *text, const char *rule)
{
    if (problems == NULL) {
        return;
    }
    buf_printf(problems, "%s: %s (got ", v->name, rule);
    if (v->kind == VAR_REDIS_URL) {
        struct buf redacted = BUF_INIT;
        redact_url(&redacted, text);
        put_quoted(problems, redacted.data);
        buf_release(&redacted);
    } else if (v->flags & VAR_SECRET) {
        buf_puts(problems, "\"***\"");
    } else {
        put_quoted(problems, text);
    }
    buf_puts(problems, ")\n");
}

/* ---- KAFKA_PROP_<NAME> ---- */

static bool
prop_is_secret(const char *name)
{
    /* sasl.oauthbearer.config may carry a client secret too. */
    return strstr(name, "password") != NULL || strstr(name, "secret") != NULL ||
           has_suffix(name, ".pem") || has_suffix(name, "key") ||
           strcmp(name, "sasl.oauthbearer.config") == 0;
}

/* Collect every KAFKA_PROP_<NAME>=value of envp; returns how many problems it appended. */
static size_t
load_props(struct cfg_kafka *k, char *const *envp, struct buf *problems)
{
    const size_t plen = strlen(KAFKA_PROP_PREFIX);
    size_t cap_names = 0;
    size_t cap_values = 0;
    size_t n_bad = 0;

    for (size_t i = 0; envp != NULL && envp[i] != NULL; i++) {
        const char *entry = envp[i];
        const char *eq = strchr(entry, '=');
        if (eq == NULL || strncmp(entry, KAFKA_PROP_PREFIX, plen) != 0) {
            continue;
        }
        size_t var_len = (size_t)(eq - entry);
        const char *value = eq + 1;
        if (var_len == plen) {
            n_bad++;
            if (problems != NULL) {
                buf_puts(problems, KAFKA_PROP_PREFIX ": the property name after " KAFKA_PROP_PREFIX
                                                     " is empty\n");
            }
            continue;
        }
        char *name = xstrndup(entry + plen, var_len - plen);
        bool name_ok = true;
        for (char *p = name; *p != '\0'; p++) {
            if (*p == '_') {
                *p = '.';
            } else if (isalnum((unsigned char)*p) || *p == '.') {
                *p = (char)tolower((unsigned char)*p);
            } else {
                name_ok = false;
            }
        }
        const char *dup = NULL;
        for (size_t j = 0; name_ok && j < k->n_props; j++) {
            if (strcmp(k->prop_names[j], name) == 0) {
                dup = k->prop_names[j];
            }
        }
        if (!name_ok || dup != NULL || has_control(value, false)) {
            n_bad++;
            if (problems != NULL) {
                buf_printf(problems, "%.*s: ", (int)var_len, entry);
                if (!name_ok) {
                    buf_puts(problems, "the name may hold only letters, digits, '_' and '.'\n");
                } else if (dup != NULL) {
                    buf_printf(problems, "sets %s, which another KAFKA_PROP_ variable sets\n",
                               name);
                } else {
                    buf_puts(problems, "the value must not contain control characters\n");
                }
            }
            free(name);
            continue;
        }
        if (value[0] == '\0') {
            free(name); /* an empty value counts as unset, as for every variable */
            continue;
        }
        k->prop_names = xgrow(k->prop_names, &cap_names, k->n_props + 1, sizeof *k->prop_names);
        k->prop_values = xgrow(k->prop_values, &cap_values, k->n_props + 1, sizeof *k->prop_values);
        k->prop_names[k->n_props] = name;
        k->prop_values[k->n_props] = xstrdup(value);
        k->n_props++;
    }
    return n_bad;
}

/* ---- the public surface ---- */

enum rc_rc
cfg_load(struct cfg *out, char *const *envp, struct buf *problems, struct rc_err *err)
{
    struct cfg c = cfg_initial;
    struct buf rule = BUF_INIT;
    size_t n_bad = 0;
    enum rc_rc rc = RC_OK;

    for (size_t i = 0; i < N_VARS; i++) {
        const struct var *v = &vars[i];
        const char *text = env_get(envp, v->name);
        if (text == NULL || text[0] == '\0') {
            text = v->def; /* an empty value counts as unset */
        }
        buf_reset(&rule);
        if (!parse_var(v, text, &c, &rule)) {
            n_bad++;
            add_problem(problems, v, text, rule.data);
        }
    }
    if (c.kafka.topic_prefix != NULL) {
        for (size_t t = 0; t < TOPIC_COUNT; t++) {
            struct buf name = BUF_INIT;
            buf_puts(&name, c.kafka.topic_prefix);
            buf_puts(&name, topic_suffix((enum topic)t));
            c.kafka.topics[t] = buf_detach(&name);
        }
    }
    n_bad += load_props(&c.kafka, envp, problems);

    if (n_bad > 0) {
        rc =
            rc_err_set(err, RC_EINVAL, "%zu configuration problem%s", n_bad, n_bad == 1 ? "" : "s");
        goto out;
    }
    *out = c;
    c = cfg_initial; /* ownership moved to the caller */
out:
    cfg_release(&c);
    buf_release(&rule);
    return rc;
}

void
cfg_release(struct cfg *cfg)
{
    if (cfg == NULL) {
        return;
    }
    free(cfg->kafka.brokers);
    free(cfg->kafka.group);
    free(cfg->kafka.topic_prefix);
    for (size_t t = 0; t < TOPIC_COUNT; t++) {
        free(cfg->kafka.topics[t]);
    }
    for (size_t i = 0; i < cfg->kafka.n_props; i++) {
        free(cfg->kafka.prop_names[i]);
        free(cfg->kafka.prop_values[i]);
    }
    free(cfg->kafka.prop_names);
    free(cfg->kafka.prop_values);
    cfg_redis_release(&cfg->redis);
    free(cfg->agent.model_prices);
    free(cfg->metrics_addr);
    for (size_t i = 0; i < cfg->agent.n_prices; i++) {
        free(cfg->agent.prices[i].model);
    }
    free(cfg->agent.prices);
    *cfg = cfg_initial;
}

static void
print_value(const struct var *v, const struct cfg *cfg, FILE *out)
{
    const char *field = (const char *)cfg + v->offset;
    char num[64];

    if (v->kind == VAR_STRING || v->kind == VAR_TOPIC_PREFIX || v->kind == VAR_KEY_PREFIX ||
        v->kind == VAR_REDIS_URL || v->kind == VAR_PRICES || v->kind == VAR_LISTEN) {
        const char *s;
        memcpy(&s, field, sizeof s);
        if (s == NULL) {
            s = "";
        }
        if (v->kind == VAR_REDIS_URL) {
            struct buf redacted = BUF_INIT;
            redact_url(&redacted, s);
            fputs(redacted.data, out);
            buf_release(&redacted);
        } else {
            fputs((v->flags & VAR_SECRET) ? "***" : s, out);
        }
        return;
    }
    switch (v->kind) {
    case VAR_INT: {
        int64_t i;
        memcpy(&i, field, sizeof i);
        (void)snprintf(num, sizeof num, "%" PRId64, i);
        break;
    }
    case VAR_SECONDS_MS: {
        int64_t ms;
        memcpy(&ms, field, sizeof ms);
        fmt_seconds(ms, num, sizeof num);
        break;
    }
    case VAR_NUMBER: {
        double d;
        memcpy(&d, field, sizeof d);
        fmt_number(d, num, sizeof num);
        break;
    }
    case VAR_LEVEL: {
        enum log_level level;
        memcpy(&level, field, sizeof level);
        (void)snprintf(num, sizeof num, "%s", log_level_name(level));
        break;
    }
    default:
        num[0] = '\0';
        break;
    }
    fputs((v->flags & VAR_SECRET) ? "***" : num, out);
}

void
cfg_print(const struct cfg *cfg, FILE *out)
{
    for (size_t i = 0; i < N_VARS; i++) {
        fprintf(out, "%s=", vars[i].name);
        print_value(&vars[i], cfg, out);
        fputc('\n', out);
    }
    for (size_t i = 0; i < cfg->kafka.n_props; i++) {
        const char *name = cfg->kafka.prop_names[i];
        fputs(KAFKA_PROP_PREFIX, out);
        for (const char *p = name; *p != '\0'; p++) {
            fputc(*p == '.' ? '_' : toupper((unsigned char)*p), out);
        }
        fprintf(out, "=%s\n", prop_is_secret(name) ? "***" : cfg->kafka.prop_values[i]);
    }
}

void
cfg_usage(FILE *out)
{
    /* A default wider than this (the price table) gets a line of its own, so that the table
     * stays readable on a terminal. */
    enum { DEF_COL_MAX = 26 };
    static const char prop_name[] = KAFKA_PROP_PREFIX "<NAME>";
    static const char prop_help[] = "librdkafka property <name> (lower case, '_' -> '.')";
    size_t name_w = strlen(prop_name);
    size_t def_w = strlen("DEFAULT");

    for (size_t i = 0; i < N_VARS; i++) {
        size_t n = strlen(vars[i].name);
        size_t d = strlen(vars[i].def);
        name_w = n > name_w ? n : name_w;
        def_w = d > def_w && d <= DEF_COL_MAX ? d : def_w;
    }
    fprintf(out, "%-*s  %-*s  %s\n", (int)name_w, "VARIABLE", (int)def_w, "DEFAULT", "MEANING");
    for (size_t i = 0; i < N_VARS; i++) {
        if (strlen(vars[i].def) > DEF_COL_MAX) {
            fprintf(out, "%-*s  %-*s  %s\n%-*s  (default %s)\n", (int)name_w, vars[i].name,
                    (int)def_w, "see below", vars[i].help, (int)name_w, "", vars[i].def);
            continue;
        }
        fprintf(out, "%-*s  %-*s  %s\n", (int)name_w, vars[i].name, (int)def_w,
                vars[i].def[0] != '\0' ? vars[i].def : "-", vars[i].help);
    }
    fprintf(out, "%-*s  %-*s  %s\n", (int)name_w, prop_name, (int)def_w, "-", prop_help);
}

const char *
cfg_phase_timeout_var(enum worker_type wt)
{
    static const char *const names[WORKER_TYPE_COUNT] = {
        [WORKER_DESIGN] = VAR_PHASE_TIMEOUT_DESIGN,
        [WORKER_TRAINING] = VAR_PHASE_TIMEOUT_TRAINING,
        [WORKER_BACKTEST] = VAR_PHASE_TIMEOUT_BACKTEST,
        [WORKER_ASSESSMENT] = VAR_PHASE_TIMEOUT_ASSESSMENT,
    };
    return names[wt];
}
