/* SPDX-License-Identifier: MIT
 * devbroker: an embedded Kafka-protocol broker for development and tests, built on librdkafka's
 * mock cluster. It creates the contract's topics, prints the bootstrap servers as the first line
 * of stdout, and runs until SIGINT/SIGTERM; SIGUSR1 takes every broker down, SIGUSR2 brings
 * them back. Nothing is persisted: the cluster lives and dies with the process.
 *
 * With --fault-file PATH, SIGHUP makes it read PATH and queue the request errors it lists
 * (rd_kafka_mock_push_request_errors): one entry a line, `<request> <error> <count>`, e.g.
 * `Produce OUT_OF_ORDER_SEQUENCE_NUMBER 1` or `22 31 1`; `#` starts a comment. <request> is a
 * Kafka ApiKey, by number or by name (api_keys below), <error> a code librdkafka knows, by
 * number or by its rd_kafka_err2name() name (`_TRANSPORT` drops the connection); the next
 * <count> such requests, from any client to any broker, fail with it. Errors queue per request
 * type in file order, behind any not yet used. A file with a bad line pushes nothing. Signals
 * that arrive before the loop acts are one reading, so replace the file (write, rename) only
 * after its push is confirmed on stderr ("pushed ..." or "nothing pushed"). */
#include <librdkafka/rdkafka.h>
/* rdkafka_mock.h must follow rdkafka.h; the mock API is experimental (not covered by
 * librdkafka's ABI promise), which is fine for a development tool. */
#include <librdkafka/rdkafka_mock.h>

#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "common/buf.h"
#include "common/cfg.h"
#include "common/kclient.h"
#include "common/rc_err.h"
#include "common/xalloc.h"
#include "common/toolopt.h"

#define TOOL "devbroker"

#define DEFAULT_TOPIC_PREFIX "research."
#define KAFKA_TOPIC_NAME_MAX 249 /* Kafka's limit on a topic name */
#define MAX_BROKERS 16
#define MAX_PARTITIONS 256
#define LOOP_WAIT_MS 50        /* how long a signal may wait before the loop acts on it */
#define FAULT_ENTRIES_MAX 64   /* entries in one fault file */
#define FAULT_COUNT_MAX 100000 /* errors in one entry */
#define FAULT_LINE_MAX 256     /* bytes in one fault file line, newline excluded */

/* Set by the signal handler, read by the loop. The stop flag is the usual one; the down flag
 * holds the state the last fault signal asked for (1 = down after SIGUSR1, 0 = up after
 * SIGUSR2), so the loop compares it with what it has applied and two quick signals can never
 * be applied in the wrong order. */
static volatile sig_atomic_t stop_requested;
static volatile sig_atomic_t brokers_want_down;
static volatile sig_atomic_t fault_file_requested; /* SIGHUP: 1 until the loop reads the file */

struct options {
    int64_t n_brokers;
    int64_t n_partitions;
    const char *topic_prefix;   /* borrowed from argv or the environment */
    const char *bootstrap_file; /* NULL: stdout only */
    const char *fault_file;     /* NULL: SIGHUP keeps its default action */
    bool help;
};

enum opt_index {
    OPT_BROKERS = 0,
    OPT_PARTITIONS,
    OPT_TOPIC_PREFIX,
    OPT_BOOTSTRAP_FILE,
    OPT_FAULT_FILE,
    OPT_HELP
};

static const struct toolopt opt_table[] = {
    [OPT_BROKERS] = {"brokers", "N", "number of mock brokers (default 1)"},
    [OPT_PARTITIONS] = {"partitions", "N", "partitions of each topic (default 3)"},
    [OPT_TOPIC_PREFIX] = {"topic-prefix", "P",
                          "topic name prefix (default $KAFKA_TOPIC_PREFIX, else \"research.\")"},
    [OPT_BOOTSTRAP_FILE] = {"bootstrap-file", "PATH",
                            "also write the bootstrap servers to PATH (atomically)"},
    [OPT_FAULT_FILE] = {"fault-file", "PATH", "on SIGHUP, queue the request errors PATH lists"},
    [OPT_HELP] = {"help", NULL, "print this help and exit"},
};
#define N_OPTS N_OF(opt_table)

static const char summary[] =
    "Run an in-process Kafka mock cluster with the contract's topics until SIGINT/SIGTERM.\n"
    "The first line of stdout is the bootstrap servers. SIGUSR1 takes all brokers down,\n"
    "SIGUSR2 brings them up. With --fault-file, SIGHUP reads PATH: one entry a line,\n"
    "`<request> <error> <count>` (e.g. `Produce OUT_OF_ORDER_SEQUENCE_NUMBER 1`, `22 31 1`;\n"
    "`#` comments). The next <count> requests of that ApiKey (number or name) fail with that\n"
    "error (number or librdkafka name; _TRANSPORT disconnects). A bad line pushes nothing.";

static enum rc_rc
on_option(void *ctx, size_t index, const char *arg, struct rc_err *err)
{
    struct options *o = ctx;

    switch ((enum opt_index)index) {
    case OPT_BROKERS:
        return toolopt_int64(arg, 1, MAX_BROKERS, "--brokers", &o->n_brokers, err);
    case OPT_PARTITIONS:
        return toolopt_int64(arg, 1, MAX_PARTITIONS, "--partitions", &o->n_partitions, err);
    case OPT_TOPIC_PREFIX:
        o->topic_prefix = arg;
        return RC_OK;
    case OPT_BOOTSTRAP_FILE:
        o->bootstrap_file = arg;
        return RC_OK;
    case OPT_FAULT_FILE:
        o->fault_file = arg;
        return RC_OK;
    case OPT_HELP:
        o->help = true;
        return RC_OK;
    }
    return rc_err_set(err, RC_EINVAL, "unhandled option %zu", index);
}

/* Kafka topic names are [A-Za-z0-9._-], at most 249 bytes; the prefix leaves room for the
 * longest suffix. */
static bool
topic_prefix_ok(const char *prefix)
{
    size_t longest = 0;
    for (int t = 0; t < TOPIC_COUNT; t++) {
        size_t n = strlen(topic_suffix((enum topic)t));
        longest = n > longest ? n : longest;
    }
    if (strlen(prefix) + longest > KAFKA_TOPIC_NAME_MAX) {
        return false;
    }
    for (const char *p = prefix; *p != '\0'; p++) {
        bool ok = (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
                  (*p >= '0' && *p <= '9') || *p == '.' || *p == '_' || *p == '-';
        if (!ok) {
            return false;
        }
    }
    return true;
}

#define TEARDOWN_MAX_S 3 /* how long librdkafka's mock teardown may take before we leave */

/* librdkafka's mock teardown usually takes up to a second but was once seen to hang after its
 * clients were killed. The cluster lives only in this process's memory, so nothing is lost by
 * leaving: this SIGALRM handler ends the process with the status a clean stop has. */
static void
on_teardown_timeout(int sig)
{
    (void)sig;
    _exit(RC_EXIT_OK);
}

static void
on_signal(int sig)
{
    if (sig == SIGUSR1) {
        brokers_want_down = 1;
    } else if (sig == SIGUSR2) {
        brokers_want_down = 0;
    } else if (sig == SIGHUP) {
        fault_file_requested = 1;
    } else {
        stop_requested = 1;
    }
}

/* SIGHUP is caught only when there is a fault file to read: otherwise a hangup still ends the
 * broker, as it did before --fault-file existed. */
static enum rc_rc
install_signals(bool catch_hup, struct rc_err *err)
{
    static const int sigs[] = {SIGINT, SIGTERM, SIGUSR1, SIGUSR2, SIGHUP};
    size_t n_sigs = N_OF(sigs) - (catch_hup ? 0 : 1);
    struct sigaction sa;

    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    for (size_t i = 0; i < n_sigs; i++) {
        if (sigaction(sigs[i], &sa, NULL) != 0) {
            return rc_err_sys(err, "sigaction(%d)", sigs[i]);
        }
    }
    /* A reader that closes our stdout after the first line (`devbroker | head -1`) must not
     * take the broker down with it. */
    sa.sa_handler = SIG_IGN;
    if (sigaction(SIGPIPE, &sa, NULL) != 0) {
        return rc_err_sys(err, "sigaction(SIGPIPE)");
    }
    return RC_OK;
}

/* Write `text` and a newline to path.tmp, then rename it over path, so a reader never sees a
 * half-written file. */
static enum rc_rc
write_file_atomically(const char *path, const char *text, struct rc_err *err)
{
    struct buf tmp = BUF_INIT;
    enum rc_rc rc = RC_OK;

    buf_printf(&tmp, "%s.tmp", path);
    FILE *f = fopen(tmp.data, "w");
    if (f == NULL) {
        rc = rc_err_sys(err, "cannot create %s", tmp.data);
        goto out;
    }
    bool ok = fprintf(f, "%s\n", text) >= 0;
    ok = fflush(f) == 0 && ok;
    if (fclose(f) != 0 || !ok) {
        rc = rc_err_sys(err, "cannot write %s", tmp.data);
        remove(tmp.data);
        goto out;
    }
    if (rename(tmp.data, path) != 0) {
        rc = rc_err_sys(err, "cannot rename %s to %s", tmp.data, path);
        remove(tmp.data);
    }
out:
    buf_release(&tmp);
    return rc;
}

/* A producer handle that only hosts the mock cluster: it never connects anywhere itself
 * (no brokers, and test.mock.num.brokers stays unset, so the cluster is the one we create
 * explicitly). */
static enum rc_rc
host_new(struct kclient **out, struct rc_err *err)
{
    const struct kclient_spec spec = {.type = RD_KAFKA_PRODUCER, .role = "mock cluster host"};
    return kclient_new(NULL, &spec, out, err);
}

static enum rc_rc
create_topics(rd_kafka_mock_cluster_t *mcluster, const char *prefix, int n_partitions,
              struct rc_err *err)
{
    struct buf name = BUF_INIT;
    enum rc_rc rc = RC_OK;

    for (int t = 0; t < TOPIC_COUNT && rc == RC_OK; t++) {
        buf_reset(&name);
        buf_printf(&name, "%s%s", prefix, topic_suffix((enum topic)t));
        rd_kafka_resp_err_t kerr = rd_kafka_mock_topic_create(mcluster, name.data, n_partitions, 1);
        if (kerr != RD_KAFKA_RESP_ERR_NO_ERROR) {
            rc = rc_err_set(err, RC_EBACKEND, "cannot create topic %s: %s", name.data,
                            rd_kafka_err2str(kerr));
        }
    }
    buf_release(&name);
    return rc;
}

/* Apply the fault state the signals asked for. Broker id -1 means "every broker" for
 * rd_kafka_mock_broker_set_down/up (checked against librdkafka 2.0.2: -1 takes all brokers
 * down, an unknown id is refused). */
static void
apply_fault(rd_kafka_mock_cluster_t *mcluster, bool down)
{
    rd_kafka_resp_err_t kerr = down ? rd_kafka_mock_broker_set_down(mcluster, -1)
                                    : rd_kafka_mock_broker_set_up(mcluster, -1);
    if (kerr != RD_KAFKA_RESP_ERR_NO_ERROR) {
        fprintf(stderr, TOOL ": cannot bring brokers %s: %s\n", down ? "down" : "up",
                rd_kafka_err2str(kerr));
        return;
    }
    fprintf(stderr, TOOL ": brokers %s\n", down ? "down" : "up");
}

/* One fault file entry: the next `count` requests of type `api_key` fail with `err`. */
struct fault {
    int16_t api_key;
    rd_kafka_resp_err_t err;
    int64_t count;
};

/* The request types the mock cluster serves (librdkafka 2.0.2, rd_kafka_mock_api_handlers),
 * named as Kafka names them. Other ApiKeys may still be given by number. */
static const struct {
    const char *name;
    int16_t key;
} api_keys[] = {
    {"Produce", 0},          {"Fetch", 1},
    {"ListOffsets", 2},      {"Metadata", 3},
    {"OffsetCommit", 8},     {"OffsetFetch", 9},
    {"FindCoordinator", 10}, {"JoinGroup", 11},
    {"Heartbeat", 12},       {"LeaveGroup", 13},
    {"SyncGroup", 14},       {"ApiVersions", 18},
    {"InitProducerId", 22},  {"AddPartitionsToTxn", 24},
    {"AddOffsetsToTxn", 25}, {"EndTxn", 26},
    {"TxnOffsetCommit", 28},
};

static bool
is_number(const char *s)
{
    return (s[0] >= '0' && s[0] <= '9') || (s[0] == '-' && s[1] >= '0' && s[1] <= '9');
}

static const char *
api_key_name(int16_t key)
{
    for (size_t i = 0; i < N_OF(api_keys); i++) {
        if (api_keys[i].key == key) {
            return api_keys[i].name;
        }
    }
    return "ApiKey";
}

static enum rc_rc
parse_api_key(const char *s, int16_t *out, struct rc_err *err)
{
    if (is_number(s)) {
        int64_t v;
        enum rc_rc rc = toolopt_int64(s, 0, INT16_MAX, "request", &v, err);
        if (rc == RC_OK) {
            *out = (int16_t)v;
        }
        return rc;
    }
    for (size_t i = 0; i < N_OF(api_keys); i++) {
        if (strcasecmp(s, api_keys[i].name) == 0) {
            *out = api_keys[i].key;
            return RC_OK;
        }
    }
    return rc_err_set(err, RC_EINVAL, "unknown request '%s' (a name such as Produce, or a number)",
                      s);
}

/* An error code is accepted only if librdkafka has a name for it, which catches typos and
 * codes this librdkafka would not understand anyway. */
static enum rc_rc
parse_error(const char *s, rd_kafka_resp_err_t *out, struct rc_err *err)
{
    const struct rd_kafka_err_desc *descs;
    size_t n_descs;
    int64_t code = 0;

    if (is_number(s) && toolopt_int64(s, INT16_MIN, INT16_MAX, "error", &code, err) != RC_OK) {
        return RC_EINVAL;
    }
    rd_kafka_get_err_descs(&descs, &n_descs);
    for (size_t i = 0; i < n_descs; i++) {
        if (descs[i].name == NULL || descs[i].code == RD_KAFKA_RESP_ERR_NO_ERROR) {
            continue;
        }
        if (is_number(s) ? descs[i].code == code : strcasecmp(s, descs[i].name) == 0) {
            *out = descs[i].code;
            return RC_OK;
        }
    }
    return rc_err_set(err, RC_EINVAL, "unknown error '%s' (a librdkafka error name or code)", s);
}

/* Parse one line, which fgets has cut and which we may write into. *found is false for a
 * blank or comment-only line; *out is written only for an entry. */
static enum rc_rc
parse_fault_line(char *line, struct fault *out, bool *found, struct rc_err *err)
{
    char *fields[4];
    size_t n_fields = 0;
    char *p = line;

    for (;;) {
        while (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n') {
            p++;
        }
        if (*p == '\0' || *p == '#') {
            break;
        }
        if (n_fields == N_OF(fields)) {
            return rc_err_set(err, RC_EINVAL, "too many fields");
        }
        fields[n_fields++] = p;
        while (*p != '\0' && *p != '#' && *p != ' ' && *p != '\t' && *p != '\r' && *p != '\n') {
            p++;
        }
        char end = *p;
        *p = '\0';
        if (end == '\0' || end == '#') {
            break;
        }
        p++;
    }
    if (n_fields == 0) {
        *found = false;
        return RC_OK;
    }
    if (n_fields != 3) {
        return rc_err_set(err, RC_EINVAL, "want `<request> <error> <count>`, got %zu field(s)",
                          n_fields);
    }
    struct fault f;
    enum rc_rc rc = parse_api_key(fields[0], &f.api_key, err);
    if (rc == RC_OK) {
        rc = parse_error(fields[1], &f.err, err);
    }
    if (rc == RC_OK) {
        rc = toolopt_int64(fields[2], 1, FAULT_COUNT_MAX, "count", &f.count, err);
    }
    if (rc == RC_OK) {
        *out = f;
        *found = true;
    }
    return rc;
}

/* Read every entry of the fault file at `path` into faults[0..*n_faults), at most `cap`.
 * RC_EINVAL names the first bad line; RC_ESYS: the file cannot be read. *n_faults is written
 * only on success (faults[] may hold a partial reading after a failure). */
static enum rc_rc
read_fault_file(const char *path, struct fault *faults, size_t cap, size_t *n_faults,
                struct rc_err *err)
{
    char line[FAULT_LINE_MAX + 2]; /* the newline and the NUL */
    size_t n = 0;
    enum rc_rc rc = RC_OK;
    struct rc_err line_err = RC_ERR_INIT;

    FILE *f = fopen(path, "r");
    if (f == NULL) {
        return rc_err_sys(err, "cannot open %s", path);
    }
    for (size_t lineno = 1; rc == RC_OK && fgets(line, sizeof(line), f) != NULL; lineno++) {
        if (strchr(line, '\n') == NULL && !feof(f)) {
            rc = rc_err_set(err, RC_EINVAL, "%s:%zu: longer than %d bytes", path, lineno,
                            FAULT_LINE_MAX);
            break;
        }
        bool found = false;
        struct fault entry;
        if (parse_fault_line(line, &entry, &found, &line_err) != RC_OK) {
            rc = rc_err_set(err, RC_EINVAL, "%s:%zu: %s", path, lineno, line_err.msg);
        } else if (found && n == cap) {
            rc = rc_err_set(err, RC_EINVAL, "%s:%zu: more than %zu entries", path, lineno, cap);
        } else if (found) {
            faults[n++] = entry;
        }
    }
    if (rc == RC_OK && ferror(f)) {
        rc = rc_err_sys(err, "cannot read %s", path);
    }
    fclose(f);
    if (rc == RC_OK) {
        *n_faults = n;
    }
    return rc;
}

/* SIGHUP: queue the errors the fault file lists, all of them or, if it has a bad line, none.
 * The errors go on the cluster-wide stacks, so they hit whichever broker gets the request. */
static void
push_fault_file(rd_kafka_mock_cluster_t *mcluster, const char *path)
{
    struct fault faults[FAULT_ENTRIES_MAX];
    size_t n_faults = 0;
    struct rc_err err = RC_ERR_INIT;

    if (read_fault_file(path, faults, FAULT_ENTRIES_MAX, &n_faults, &err) != RC_OK) {
        fprintf(stderr, TOOL ": %s; nothing pushed\n", err.msg);
        return;
    }
    for (size_t i = 0; i < n_faults; i++) {
        size_t count = (size_t)faults[i].count;
        rd_kafka_resp_err_t *errs = xmalloc(count * sizeof(*errs));
        for (size_t j = 0; j < count; j++) {
            errs[j] = faults[i].err;
        }
        rd_kafka_mock_push_request_errors_array(mcluster, faults[i].api_key, count, errs);
        free(errs);
        fprintf(stderr, TOOL ": pushed %zu x %s (%d) on %s (%d) requests\n", count,
                rd_kafka_err2name(faults[i].err), (int)faults[i].err,
                api_key_name(faults[i].api_key), (int)faults[i].api_key);
    }
    if (n_faults == 0) {
        fprintf(stderr, TOOL ": %s: no entries; nothing pushed\n", path);
    }
}

/* Run until SIGINT/SIGTERM, applying the fault signals. rd_kafka_poll serves the log lines
 * and doubles as the loop's sleep, so a signal is acted on within LOOP_WAIT_MS. The SIGHUP
 * flag is cleared before the file is read, so a signal during the reading reads it again. */
static void
serve(rd_kafka_t *rk, rd_kafka_mock_cluster_t *mcluster, const char *fault_file)
{
    bool down = false;

    while (!stop_requested) {
        rd_kafka_poll(rk, LOOP_WAIT_MS);
        bool want_down = brokers_want_down != 0;
        if (want_down != down) {
            apply_fault(mcluster, want_down);
            down = want_down;
        }
        if (fault_file_requested && fault_file != NULL) {
            fault_file_requested = 0;
            push_fault_file(mcluster, fault_file);
        }
    }
}

int
main(int argc, char **argv)
{
    struct options opt = {.n_brokers = 1, .n_partitions = 3};
    struct rc_err err = RC_ERR_INIT;
    struct kclient *host = NULL;
    rd_kafka_mock_cluster_t *mcluster = NULL;
    int status = RC_EXIT_FAILURE;

    opt.topic_prefix = getenv("KAFKA_TOPIC_PREFIX");
    if (opt.topic_prefix == NULL || opt.topic_prefix[0] == '\0') {
        opt.topic_prefix = DEFAULT_TOPIC_PREFIX;
    }
    if (toolopt_parse(opt_table, N_OPTS, argc, argv, on_option, &opt, &err) != RC_OK) {
        fprintf(stderr, TOOL ": %s (try --help)\n", err.msg);
        return RC_EXIT_USAGE;
    }
    if (opt.help) {
        toolopt_usage(stdout, TOOL, summary, opt_table, N_OPTS);
        return RC_EXIT_OK;
    }
    if (!topic_prefix_ok(opt.topic_prefix)) {
        fprintf(stderr, TOOL ": topic prefix '%s': only [A-Za-z0-9._-], names up to %d bytes\n",
                opt.topic_prefix, KAFKA_TOPIC_NAME_MAX);
        return RC_EXIT_USAGE;
    }
    if (install_signals(opt.fault_file != NULL, &err) != RC_OK || host_new(&host, &err) != RC_OK) {
        fprintf(stderr, TOOL ": %s\n", err.msg);
        goto out;
    }
    mcluster = rd_kafka_mock_cluster_new(kclient_rk(host), (int)opt.n_brokers);
    if (mcluster == NULL) {
        fprintf(stderr, TOOL ": cannot start the mock cluster\n");
        goto out;
    }
    if (create_topics(mcluster, opt.topic_prefix, (int)opt.n_partitions, &err) != RC_OK) {
        fprintf(stderr, TOOL ": %s\n", err.msg);
        goto out;
    }
    const char *bootstraps = rd_kafka_mock_cluster_bootstraps(mcluster);
    printf("%s\n", bootstraps);
    fflush(stdout);
    if (opt.bootstrap_file != NULL &&
        write_file_atomically(opt.bootstrap_file, bootstraps, &err) != RC_OK) {
        fprintf(stderr, TOOL ": %s\n", err.msg);
        goto out;
    }
    serve(kclient_rk(host), mcluster, opt.fault_file);
    status = RC_EXIT_OK;
    struct sigaction alarm_sa;
    memset(&alarm_sa, 0, sizeof(alarm_sa));
    alarm_sa.sa_handler = on_teardown_timeout;
    sigemptyset(&alarm_sa.sa_mask);
    if (sigaction(SIGALRM, &alarm_sa, NULL) == 0) {
        alarm(TEARDOWN_MAX_S);
    }
out:
    if (mcluster != NULL) {
        rd_kafka_mock_cluster_destroy(mcluster); /* before the handle that hosts it */
    }
    kclient_free(host);
    return status;
}
