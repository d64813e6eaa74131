/* SPDX-License-Identifier: MIT
 * it_env: the integration-test environment. Each env owns a mkdtemp dir with a real
 * redis-server (unix socket), a dev Kafka broker and any coordinator or stub workers a test
 * starts, plus a hiredis link, a Kafka producer and topic readers; it_env_stop ends them all.
 *
 * Use one env per test (include "tests/support/test.h" first, then this header):
 *
 *     static void
 *     test_flow_x(void **state)
 *     {
 *         struct it_env *env = *state;
 *         struct trigger t = {.request_id = "req-1", .brief = "b"};
 *
 *         it_env_start_workers(env, "design", 1, NULL, NULL);
 *         it_env_start_coordinator(env, NULL);
 *         it_send_trigger(env, &t);
 *         const struct event *ev = it_event_wait_request(env, EVENT_ACCEPTED, "req-1", 10000);
 *         ...
 *     }
 *     ... cmocka_unit_test_setup_teardown(test_flow_x, it_setup, it_teardown) ...
 *
 * Unless stated, functions that "fail the test" call cmocka's fail() (after printing why and
 * the tail of every child's log), so they are for test bodies and setup/teardown only. A plain
 * cmocka assert prints no logs (cmocka tells teardown nothing): prefer the wait helpers, use
 * it_fail() for checks whose failure needs the logs, or run with IT_VERBOSE=1.
 * Children are started by tools/stack/proc with PR_SET_PDEATHSIG (Linux), so a crashed or
 * killed test process leaves no orphan; its atexit handler and SIGABRT/SIGTERM/SIGINT/SIGHUP
 * handler (for those not ignored) kill them too.
 *
 * Environment switches: IT_VERBOSE=1 prints every child's log tail at stop; IT_KEEP=1 keeps
 * the temp dir (its path is printed); IT_REQUIRE_ALL=1 (set by CI) turns it_skip into a
 * failure. */
#ifndef RC_IT_ENV_H
#define RC_IT_ENV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <hiredis/hiredis.h>

#include "common/kclient.h"
#include "contract/phase.h"
#include "proto/msg.h"

struct it_env;   /* opaque */
struct it_topic; /* opaque: a reader of one topic, owned by its env */

/* Default bounds, in milliseconds. */
#define IT_READY_TIMEOUT_MS 20000 /* a started process must be ready within this */
#define IT_STOP_TIMEOUT_MS 5000   /* SIGTERM, then SIGKILL after this */

/* ---- Lifecycle ---------------------------------------------------------------------------- */

/* Create the temp dir (under $TMPDIR or /tmp), start redis-server (found in PATH or /usr/bin)
 * on DIR/redis.sock and wait for PING, start RC_BIN_DIR/devbroker with
 * --bootstrap-file DIR/bootstrap and wait for the file, then connect hiredis and a Kafka
 * producer. Returns 0 with *out set (free with it_env_stop), or -1 after printing why to stderr
 * and stopping what it had started. A missing redis-server or devbroker is a failure, never a
 * skip. */
int it_env_start(struct it_env **out);
/* Stop every process the env started: first the coordinator and workers (SIGTERM, then
 * SIGKILL after IT_STOP_TIMEOUT_MS), then close the Kafka and Redis clients, then stop the
 * broker and redis the same way; remove the dir (unless IT_KEEP) and free everything. NULL is
 * a no-op. Returns 0 when every child ended cleanly, -1 when one did not: a child the test
 * neither signalled with it_env_kill nor collected with it_env_wait_exit that exited non-zero,
 * died of a signal (an ASan report with abort_on_error, a crash) or needed SIGKILL. Then, or
 * when IT_VERBOSE is set, it also prints the log tails. */
int it_env_stop(struct it_env *env);

/* Run a cmocka group (as cmocka_run_group_tests_name with no group fixtures), but only the
 * tests that IT_ONLY (a cmocka glob, e.g. '*redis*') and IT_SHARD ("i/n": tests i, i + n,
 * i + 2n, ... counting from 1, so that ctest can run the shards of a long group side by side)
 * select. Returns cmocka's result. */
struct CMUnitTest;
int it_run_group(const char *name, const struct CMUnitTest *tests, size_t n);
#define IT_RUN_GROUP(name, tests) it_run_group((name), (tests), N_OF(tests))

/* cmocka fixtures: it_setup starts an env into *state (returns -1 when that fails, which
 * cmocka reports as an error); it_teardown stops it and returns it_env_stop's result, so a
 * child that crashed or leaked fails the test. */
int it_setup(void **state);
int it_teardown(void **state);
/* it_setup with topics of IT_WIDE_PARTITIONS partitions (IT_PARTITIONS otherwise): the dev
 * broker keeps only the last 5 MiB of each partition, so a test that has more waiting for a
 * reader needs more. */
#define IT_PARTITIONS 3
#define IT_WIDE_PARTITIONS 16
int it_setup_wide(void **state);

/* Mark the test skipped with a reason, or fail it when IT_REQUIRE_ALL=1 (CI): a test never
 * passes by skipping. */
void it_skip(const char *why);
/* Print "why" and every child's log tail, then fail the test. printf-style. */
void it_fail(struct it_env *env, const char *fmt, ...) RC_PRINTF(2, 3);
/* Print the tail (about the last 60 lines) of every child's log to stderr. */
void it_env_dump_logs(struct it_env *env);

/* Borrowed strings, valid until it_env_stop. */
const char *it_env_dir(const struct it_env *env);          /* the temp dir */
const char *it_env_bootstrap(const struct it_env *env);    /* "127.0.0.1:port,..." */
const char *it_env_redis_url(const struct it_env *env);    /* "unix://DIR/redis.sock" */
const char *it_env_topic_prefix(const struct it_env *env); /* "research." */
const char *it_env_key_prefix(const struct it_env *env);   /* "rc:" */

/* ---- Processes ---------------------------------------------------------------------------- */

/* Arrays are NULL-terminated `const char *` lists, e.g.
 *     const char *argv[] = {"coordinator", "--print-config", NULL};
 *
 * Start argv[0] (a bare name means RC_BIN_DIR/<name>, e.g. "coordinator"; a name with a '/'
 * is used as is) with arguments argv (NULL-terminated). Its environment is the test's environ,
 * then the env's base (KAFKA_BROKERS, REDIS_URL, KAFKA_TOPIC_PREFIX, REDIS_KEY_PREFIX,
 * KAFKA_PROP_FETCH_WAIT_MAX_MS=5), then extra_env ("NAME=value", NULL-terminated, may be
 * NULL); a later NAME wins. stdin is /dev/null; stdout and stderr are appended to
 * DIR/<name>.log (`name`: [A-Za-z0-9._-], a name reused, e.g. on restart, shares the log).
 * Returns the pid; fails the test when the binary is missing or fork fails. Does not wait for
 * readiness. */
pid_t it_env_spawn(struct it_env *env, const char *name, const char *const argv[],
                   const char *const extra_env[]);
/* Start RC_BIN_DIR/coordinator (name "coordinator") with AGENT_POLL_INTERVAL=0.1 and
 * LOG_LEVEL=debug, then extra_env, and wait (IT_READY_TIMEOUT_MS) until the hash
 * <keyprefix>coordinator has a last_cycle_at different from its value before the start. Fails
 * the test on timeout or when the process exits first. A second coordinator that must wait
 * for the lease cannot get ready this way: start it with it_env_spawn. */
pid_t it_env_start_coordinator(struct it_env *env, const char *const extra_env[]);
/* Start RC_BIN_DIR/stub-worker --type `type` --count `count` --id-prefix P, then extra_args
 * (NULL-terminated, may be NULL), named "workers-<type>-<n>", and wait (IT_READY_TIMEOUT_MS)
 * until `count` ids starting with "<P><type>-" are in the zset <keyprefix>workers:<type>.
 * P is `id_prefix`, or when NULL "g<n>-" with n counting the env's worker groups from 1, so
 * groups never share ids (worker ids are "<P><type>-<i>"). Fails the test on timeout. Workers
 * meant to die (--die-after K) must be collected with it_env_wait_exit, or it_env_stop reports
 * their exit as unclean. */
pid_t it_env_start_workers(struct it_env *env, const char *type, int count, const char *id_prefix,
                           const char *const extra_args[]);
/* The pid of the latest child started with `name` ("redis", "devbroker", "coordinator", ...),
 * or -1. */
pid_t it_env_pid(const struct it_env *env, const char *name);
/* Send `sig` to a child of this env (others are refused: -1, errno EINVAL); the child's end
 * is then not judged by it_env_stop. Returns kill()'s result. */
int it_env_kill(struct it_env *env, pid_t pid, int sig);
/* Wait up to timeout_ms (0: just look) for a child of this env to exit. Returns 0 with
 * *status (waitpid's, may be NULL) once it has exited, also when it was reaped earlier; -1
 * while it still runs or when it is not a child of this env. A collected child's end is not
 * judged by it_env_stop. */
int it_env_wait_exit(struct it_env *env, pid_t pid, int timeout_ms, int *status);

/* Run argv to completion as child `name` (started as it_env_spawn starts it, so its output
 * also lands in DIR/<name>.log), waiting up to timeout_ms for its exit. Returns its exit
 * status (0-255) and sets *output (may be NULL) to what it wrote to stdout and stderr during
 * this run, interleaved as written (caller frees; NUL-terminated). Fails the test when it does
 * not exit in time (it is SIGKILLed first) or dies of a signal, naming it and its output. */
int it_env_run(struct it_env *env, const char *name, const char *const argv[],
               const char *const extra_env[], int timeout_ms, char **output);

/* Stop the env's redis-server (SIGTERM: it writes its AOF), leave it down for down_ms, start
 * it again on the same socket and dir (AOF on, so the data comes back) and wait for PING. The
 * env's own link reconnects. Fails the test on any problem. */
void it_env_restart_redis(struct it_env *env, int down_ms);

/* ---- More Redis: replicas, Sentinels, a proxy (failover tests; it_ha.c) --------------------- */

/* The TCP port on 127.0.0.1 the env's redis-server also listens on (kept across restarts). */
int it_env_redis_port(const struct it_env *env);
/* Start another redis-server named `name` on a free port of 127.0.0.1 (its own dir, no
 * persistence), a replica of the env's when `replica_of_main`, and wait for PING. *port gets
 * its port; returns its pid (stopped with the env). Fails the test when it does not start. */
pid_t it_env_start_redis_server(struct it_env *env, const char *name, bool replica_of_main,
                                int *port);
/* Start a Sentinel named `name` on a free port, monitoring 127.0.0.1:master_port as
 * `master_name` (quorum 1, down after 500 ms, failover timeout 4 s), and wait for PING. */
pid_t it_env_start_sentinel(struct it_env *env, const char *name, const char *master_name,
                            int master_port, int *port);
/* The port of the primary the Sentinel at sentinel_port reports for master_name (-1: none). */
int it_sentinel_primary_port(struct it_env *env, int sentinel_port, const char *master_name);
/* Start RC_BIN_DIR/tcpproxy named `name` on a free port of 127.0.0.1, forwarding to
 * 127.0.0.1:target_port; *port gets its port. */
pid_t it_env_start_proxy(struct it_env *env, const char *name, int target_port, int *port);
/* Move proxy `name` to target_port: new connections go there; with `drop` the existing ones
 * are closed too, else they stay with the old server (as a moved virtual address). */
void it_env_proxy_retarget(struct it_env *env, pid_t proxy, const char *name, int target_port,
                           bool drop);
/* Make the dev broker fail requests: write `lines` (devbroker --help: "<request> <error>
 * <count>" per line) to its fault file, signal it, and wait until it confirms. Fails the test
 * when it refuses them. */
void it_env_broker_faults(struct it_env *env, const char *lines);
/* A hiredis link to 127.0.0.1:port (5 s timeouts), for commands to another server; caller
 * redisFree()s. Fails the test when it cannot connect. */
redisContext *it_redis_connect_port(struct it_env *env, int port);
/* Run a command on such a link: the reply (an error reply as such; caller frees); fails the
 * test when the link fails. */
redisReply *it_redis_cmd_on(struct it_env *env, redisContext *ctx, int argc,
                            const char *const argv[]);

/* ---- Waiting ------------------------------------------------------------------------------ */

/* Call cond(arg) every 10 ms until it returns true (then true) or timeout_ms passed (then
 * false; cond is called once more at the deadline). */
bool it_wait_until(bool (*cond)(void *), void *arg, int timeout_ms);
/* Sleep for ms milliseconds; for pacing inside helpers, never as a test's synchronisation. */
void it_sleep_ms(int ms);
/* A free TCP port on 127.0.0.1 (bind to port 0 and read it back), or -1. */
int it_free_port(void);

/* ---- Redis -------------------------------------------------------------------------------- */

/* The env's Redis link (redislink, as every program's: 5 s timeouts), valid until
 * it_env_stop: for pipelines (redislink_run). */
struct redislink *it_redis(struct it_env *env);
/* Run one command given as argc NUL-terminated strings. Returns the reply, caller frees it
 * with freeReplyObject (an error reply is returned as such); a link the server dropped (a
 * Sentinel killing clients, a restart) is opened again once; fails the test when it still
 * fails (returns NULL then). */
redisReply *it_redis_cmd(struct it_env *env, int argc, const char *const argv[]);
/* The same with the length of each word (binary values). */
redisReply *it_redis_cmd_len(struct it_env *env, int argc, const char *const argv[],
                             const size_t *lens);
/* HGET: a copy of the value (caller frees), or NULL when the key or field is absent. */
char *it_redis_hget(struct it_env *env, const char *key, const char *field);
/* HGET of <keyprefix>research:<research_id>; caller frees, NULL when absent. */
char *it_research_hget(struct it_env *env, const char *research_id, const char *field);
/* Wait until HGET <keyprefix>research:<research_id> `field` equals `value` (e.g. "phase",
 * "completed"), or with `value` NULL until it is present; fails the test after timeout_ms,
 * naming the last value seen. */
void it_research_wait(struct it_env *env, const char *research_id, const char *field,
                      const char *value, int timeout_ms);
/* ZCARD, HLEN (0 when absent). */
long long it_redis_zcard(struct it_env *env, const char *key);
long long it_redis_hlen(struct it_env *env, const char *key);

/* ---- Kafka: producing --------------------------------------------------------------------- */

/* Produce one message (up to 2 MiB) to <topicprefix><topic_suffix> with `key` (NULL: none)
 * and wait for its delivery; fails the test on any error. */
void it_env_produce(struct it_env *env, const char *topic_suffix, const char *key, const void *data,
                    size_t len);
/* msg_encode and produce, with ts = now and the contract's key: a trigger to "triggers" keyed
 * by request_id, a cancel (a resume) to "triggers" keyed by research_id, a completion to
 * "completions" keyed by research_id. Strings are borrowed. */
void it_send_trigger(struct it_env *env, const struct trigger *t);
void it_send_cancel(struct it_env *env, const struct cancel *c);
/* A resume to "triggers", keyed by research_id, as a cancel. */
void it_send_resume(struct it_env *env, const struct resume *r);
/* Produce n triggers at once (one flush for them all: they reach the coordinator together). */
void it_send_triggers(struct it_env *env, const struct trigger *t, size_t n);
void it_send_completion(struct it_env *env, const struct completion *c);

/* ---- Kafka: reading ----------------------------------------------------------------------- */

/* One message read. Everything is owned by the reader and valid until it_env_stop. */
/* A Kafka client of the test's own on `bootstrap`, made as every program makes one (kclient).
 * Unless IT_VERBOSE is set, the test process logs errors only, so a test that takes the
 * brokers down is not drowned in connection errors. */
enum rc_rc it_kafka_client(const char *bootstrap, const struct kclient_spec *spec,
                           struct kclient **out, struct rc_err *err);
struct it_msg {
    const char *payload; /* the bytes, followed by a NUL not counted in len */
    size_t len;
    const char *key; /* NUL-terminated copy, NULL when the message has no key */
    size_t key_len;
    int32_t partition;
    int64_t offset;
    int64_t ts_ms;             /* the message's Kafka timestamp, -1 when unknown */
    const struct msg *decoded; /* decoding readers: the message, NULL when it did not decode */
    const char *decode_error;  /* decoding readers: why it did not, else NULL */
};

typedef bool (*it_msg_pred_fn)(const struct it_msg *m, void *arg);

/* A reader of <topicprefix><topic_suffix> from the beginning, by manual assignment of all its
 * partitions (no consumer group is joined, nothing is committed). it_topic_open keeps raw
 * messages; it_topic_open_as also decodes each with msg_decode(as, ...). A topic that does not
 * exist yet is looked up again at each poll. Owned by the env (freed by it_env_stop); never
 * NULL (fails the test instead). */
struct it_topic *it_topic_open(struct it_env *env, const char *topic_suffix);
struct it_topic *it_topic_open_as(struct it_env *env, const char *topic_suffix, enum msg_topic as);
/* Read what has arrived since the last poll, waiting up to timeout_ms for the first new
 * message; returns how many were added. Messages of one partition keep their order. */
size_t it_topic_poll(struct it_topic *t, int timeout_ms);
size_t it_topic_count(const struct it_topic *t);
/* The i-th message read (i < it_topic_count). */
const struct it_msg *it_topic_msg(const struct it_topic *t, size_t i);
/* Poll until a message (any read so far, oldest first) satisfies pred, and return it; NULL
 * after timeout_ms. */
const struct it_msg *it_topic_wait(struct it_topic *t, it_msg_pred_fn pred, void *arg,
                                   int timeout_ms);
/* Poll until at least n messages were read: true, or false after timeout_ms. */
bool it_topic_wait_count(struct it_topic *t, size_t n, int timeout_ms);

/* The env's decoding readers, opened on first use: "events" (MSG_TOPIC_EVENTS), "deadletter"
 * (MSG_TOPIC_DEADLETTER) and "dispatch.<type>" (MSG_TOPIC_DISPATCH). */
struct it_topic *it_events(struct it_env *env);
struct it_topic *it_deadletters(struct it_env *env);
struct it_topic *it_dispatches(struct it_env *env, enum worker_type wt);

/* Events. research_id NULL matches any. Returned events live in the reader (until stop).
 * it_event_find polls without waiting and returns the first match or NULL; it_event_count
 * polls and counts matches; it_event_wait waits for the first match and fails the test after
 * timeout_ms; it_event_wait_request matches on request_id instead (accepted, rejected,
 * cancelled, cancel_rejected, resumed, resume_rejected). An event that does not decode fails
 * the test. */
const struct event *it_event_find(struct it_env *env, enum event_type type,
                                  const char *research_id);
size_t it_event_count(struct it_env *env, enum event_type type, const char *research_id);
const struct event *it_event_wait(struct it_env *env, enum event_type type, const char *research_id,
                                  int timeout_ms);
const struct event *it_event_wait_request(struct it_env *env, enum event_type type,
                                          const char *request_id, int timeout_ms);

/* Wait for the dispatch (not abort) of research_id on wt's topic with `attempt` (0: any; the
 * first read is returned); fails the test after timeout_ms. */
const struct dispatch *it_dispatch_wait(struct it_env *env, enum worker_type wt,
                                        const char *research_id, int64_t attempt, int timeout_ms);
/* Wait until at least n dead letters were read and return the n-th (1-based); fails the test
 * after timeout_ms. */
const struct deadletter *it_deadletter_wait(struct it_env *env, size_t n, int timeout_ms);

#endif /* RC_IT_ENV_H */
