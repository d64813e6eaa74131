/* SPDX-License-Identifier: MIT
 * stubopt: stub-worker's option table and its parsing. */
#include "tools/stub-worker/stubopt.h"

#include "contract/phase.h"
#include "common/toolopt.h"

#define MAX_DURATION_MS 86400000 /* one day */
#define MIN_HEARTBEAT_MS 10
#define MAX_TOKENS 1000000000000LL

enum opt_index {
    OPT_TYPE = 0,
    OPT_COUNT,
    OPT_ID_PREFIX,
    OPT_DURATION,
    OPT_FAIL_PROB,
    OPT_FAIL_GATE,
    OPT_BAD_RESULT,
    OPT_COST_USD,
    OPT_TOKENS,
    OPT_DIE_AFTER,
    OPT_HANG,
    OPT_SEED,
    OPT_HEARTBEAT_MS,
    OPT_CLOCK_SKEW_MS,
    OPT_VERBOSE,
    OPT_LATENCY_LOG,
    OPT_HELP,
};

static const struct toolopt opt_table[] = {
    [OPT_TYPE] = {"type", "T", "worker type: design|training|backtest|assessment (required)"},
    [OPT_COUNT] = {"count", "N", "number of workers (default 1)"},
    [OPT_ID_PREFIX] = {"id-prefix", "P", "worker ids are P<type>-<i>, i from 1 (default stub-)"},
    [OPT_DURATION] = {"duration-ms", "A[-B]",
                      "time per dispatch, fixed or uniform in [A,B] (default 100)"},
    [OPT_FAIL_PROB] = {"fail-prob", "P",
                       "probability (0..1) a dispatch fails with error \"stub failure\""},
    [OPT_FAIL_GATE] = {"fail-gate", NULL,
                       "results that fail the gate: training accuracy 0.05, backtest "
                       "max_drawdown 0.9"},
    [OPT_BAD_RESULT] = {"bad-result", NULL, "completed results that break the result schema"},
    [OPT_COST_USD] = {"cost-usd", "X", "design/assessment results carry cost_usd X"},
    [OPT_TOKENS] = {"tokens", "IN,OUT", "design/assessment input/output tokens (default 1000,500)"},
    [OPT_DIE_AFTER] = {"die-after", "K",
                       "each worker dies on its K-th dispatch: one busy heartbeat, then silence"},
    [OPT_HANG] = {"hang", NULL,
                  "every dispatch runs until it is aborted: a hung worker, its heartbeat busy"},
    [OPT_SEED] = {"seed", "S", "PRNG seed, for reproducible runs (default from time and pid)"},
    [OPT_HEARTBEAT_MS] = {"heartbeat-ms", "MS", "heartbeat period, <= 2000 (default 1000)"},
    [OPT_CLOCK_SKEW_MS] = {"clock-skew-ms", "N",
                           "act as if this host's clock were N ms off (N < 0: behind): every "
                           "last_seen written is now + N (default 0)"},
    [OPT_VERBOSE] = {"verbose", NULL, "log each dispatch started, completed or aborted"},
    [OPT_LATENCY_LOG] = {"latency-log", "PATH", "append timing lines to PATH (below; tools/bench)"},
    [OPT_HELP] = {"help", NULL, "print this help and exit"},
};
#define N_OPTS N_OF(opt_table)

static const char summary[] =
    "Simulate N workers of one type for the research coordinator (one process, one loop).\n"
    "Configuration comes from the coordinator's environment: KAFKA_BROKERS,\n"
    "KAFKA_TOPIC_PREFIX, KAFKA_PROP_*, REDIS_URL, REDIS_KEY_PREFIX, REDIS_TIMEOUT_MS.\n"
    "A worker that finishes a dispatch publishes its completion and is free for the next one\n"
    "at once, but its heartbeat keeps showing it busy with the finished dispatch until Kafka\n"
    "has acknowledged the completion (contract §7: completion first, then idle); a completion\n"
    "whose delivery fails is produced again. Workers read their dispatch topic from its end\n"
    "as of start-up: a worker restarted with the same ids (after a crash, say) starts idle\n"
    "and never runs again a dispatch sent to its former process.\n"
    "--latency-log PATH appends one line per event, <us> being Unix time in microseconds:\n"
    "  recv <research_id> <phase> <us>  a dispatch addressed to a worker arrived (before the\n"
    "                                   research check)\n"
    "  done <research_id> <phase> <us>  right before its completion is produced\n"
    "Lines are buffered: flushed whenever the loop is idle and at exit.";

struct parse_state {
    struct stubopt opt;
    bool has_type;
};

static enum rc_rc
on_option(void *ctx, size_t index, const char *arg, struct rc_err *err)
{
    struct parse_state *ps = ctx;
    struct stubopt *o = &ps->opt;
    int64_t n = 0;
    enum rc_rc rc = RC_OK;

    switch ((enum opt_index)index) {
    case OPT_TYPE:
        ps->has_type = worker_type_parse(arg, &o->shape.type) == RC_OK;
        return ps->has_type ? RC_OK
                            : rc_err_set(err, RC_EINVAL,
                                         "--type: '%s' is not design, training, "
                                         "backtest or assessment",
                                         arg);
    case OPT_COUNT:
        return toolopt_int64(arg, 1, STUBOPT_MAX_WORKERS, "--count", &o->count, err);
    case OPT_ID_PREFIX:
        o->id_prefix = arg;
        return RC_OK;
    case OPT_DURATION:
        rc = toolopt_int64_pair(arg, '-', true, 0, MAX_DURATION_MS, "--duration-ms",
                                &o->duration_min_ms, &o->duration_max_ms, err);
        if (rc == RC_OK && o->duration_max_ms < o->duration_min_ms) {
            rc = rc_err_set(err, RC_EINVAL, "--duration-ms: in '%s', B is below A", arg);
        }
        return rc;
    case OPT_FAIL_PROB:
        return toolopt_double(arg, 0.0, 1.0, "--fail-prob", &o->fail_prob, err);
    case OPT_FAIL_GATE:
        o->shape.fail_gate = true;
        return RC_OK;
    case OPT_BAD_RESULT:
        o->shape.bad_result = true;
        return RC_OK;
    case OPT_COST_USD:
        o->shape.has_cost = true;
        return toolopt_double(arg, 0.0, 1e9, "--cost-usd", &o->shape.cost_usd, err);
    case OPT_TOKENS:
        return toolopt_int64_pair(arg, ',', false, 0, MAX_TOKENS, "--tokens",
                                  &o->shape.input_tokens, &o->shape.output_tokens, err);
    case OPT_DIE_AFTER:
        return toolopt_int64(arg, 1, INT64_MAX, "--die-after", &o->die_after, err);
    case OPT_HANG:
        o->hang = true;
        return RC_OK;
    case OPT_SEED:
        rc = toolopt_int64(arg, 0, INT64_MAX, "--seed", &n, err);
        o->seed = (uint64_t)n;
        o->has_seed = rc == RC_OK;
        return rc;
    case OPT_HEARTBEAT_MS:
        return toolopt_int64(arg, MIN_HEARTBEAT_MS, STUBOPT_MAX_HEARTBEAT_MS, "--heartbeat-ms",
                             &o->heartbeat_ms, err);
    case OPT_CLOCK_SKEW_MS:
        /* For tests of the contract's clock rule (§5): a worker up to 30 s behind the
         * coordinator must never be declared dead, one too far ahead is not a worker. */
        return toolopt_int64(arg, -STUBOPT_MAX_CLOCK_SKEW_MS, STUBOPT_MAX_CLOCK_SKEW_MS,
                             "--clock-skew-ms", &o->clock_skew_ms, err);
    case OPT_VERBOSE:
        o->verbose = true;
        return RC_OK;
    case OPT_LATENCY_LOG:
        o->latency_log = arg;
        return RC_OK;
    case OPT_HELP:
        o->help = true;
        return RC_OK;
    }
    return rc_err_set(err, RC_EINVAL, "unhandled option %zu", index);
}

enum rc_rc
stubopt_parse(struct stubopt *out, int argc, char **argv, struct rc_err *err)
{
    struct parse_state ps = {
        .opt = {.shape = {.input_tokens = 1000, .output_tokens = 500},
                .count = 1,
                .id_prefix = "stub-",
                .duration_min_ms = 100,
                .duration_max_ms = 100,
                .heartbeat_ms = 1000},
    };

    enum rc_rc rc = toolopt_parse(opt_table, N_OPTS, argc, argv, on_option, &ps, err);
    if (rc == RC_OK && !ps.opt.help && !ps.has_type) {
        rc = rc_err_set(err, RC_EINVAL, "--type is required");
    }
    if (rc == RC_OK) {
        *out = ps.opt;
    }
    return rc;
}

void
stubopt_usage(FILE *out)
{
    toolopt_usage(out, "stub-worker", summary, opt_table, N_OPTS);
}
