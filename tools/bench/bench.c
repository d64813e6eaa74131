/* SPDX-License-Identifier: MIT
 * bench: the benchmark of issue 5 in one command. It starts its own redis-server, dev broker,
 * coordinator and stub workers (zero work time) for each run, measures throughput, CPU per
 * phase transition, hand-off and trigger latencies, cycle time and peak RSS with many parked
 * researches and the idle coordinator's CPU; runs the same workload through a Celery peer;
 * prints a table and writes JSON. It measures and never asserts. */
#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/buf.h"
#include "common/clock.h"
#include "common/rc_err.h"
#include "common/stopsig.h"
#include "common/xalloc.h"
#include "tools/bench/bench_celery.h"
#include "tools/bench/bench_cycle.h"
#include "tools/bench/bench_flow.h"
#include "tools/bench/bench_report.h"
#include "tools/bench/bench_stack.h"
#include "tools/stack/proc.h"
#include "common/toolopt.h"

#define TOOL "bench"

/* tools/bench/CMakeLists.txt defines it as the source folder of bench_celery.py. */
#ifndef RC_BENCH_SCRIPT_DIR
#define RC_BENCH_SCRIPT_DIR "tools/bench"
#endif

#define MAX_N 1000000
#define MAX_ACTIVE 1000000
#define COORDINATOR_READY_MS 30000
#define RELAY "bench-relay" /* the ceiling run's stand-in for the coordinator */

/* A list option: up to BENCH_MAX_RUNS values. */
struct list {
    int64_t v[BENCH_MAX_RUNS];
    size_t n;
    bool given;
};

struct options {
    struct list n;        /* --n */
    struct list cycle;    /* --cycle */
    struct list celery_n; /* --celery-n */
    int64_t workers;
    int64_t partitions;
    int64_t lowload;
    bool lowload_given;
    int64_t cycle_samples;
    bool cycle_samples_given;
    int64_t idle_s;
    bool idle_given;
    const char *poll_interval;
    const char *fetch_wait_ms;
    const char *python;
    const char *json;
    const char *bin_dir;
    const char *perf;
    bool quick;
    bool workers_given;
    bool no_celery;
    bool no_ceiling;
    bool keep;
    bool help;
};

enum opt_index {
    OPT_N = 0,
    OPT_WORKERS,
    OPT_PARTITIONS,
    OPT_LOWLOAD,
    OPT_CYCLE,
    OPT_CYCLE_SAMPLES,
    OPT_IDLE,
    OPT_POLL,
    OPT_FETCH_WAIT,
    OPT_CELERY_N,
    OPT_NO_CELERY,
    OPT_NO_CEILING,
    OPT_PYTHON,
    OPT_QUICK,
    OPT_JSON,
    OPT_BIN_DIR,
    OPT_PERF,
    OPT_KEEP,
    OPT_HELP,
};

static const struct toolopt opt_table[] = {
    [OPT_N] = {"n", "N[,N...]", "researches per throughput run (default 1000,10000)"},
    [OPT_WORKERS] = {"workers", "W", "stub workers per type (default 128)"},
    [OPT_PARTITIONS] = {"partitions", "P", "partitions of each topic (default 3)"},
    [OPT_LOWLOAD] = {"lowload", "K", "researches run one at a time for latencies (default 200)"},
    [OPT_CYCLE] = {"cycle", "N[,N...]",
                   "parked researches per cycle run (default 1000,10000,100000)"},
    [OPT_CYCLE_SAMPLES] = {"cycle-samples", "S",
                           "steady cycles sampled per cycle run (default 60)"},
    [OPT_IDLE] = {"idle-seconds", "S", "idle coordinator measured this long (default 10)"},
    [OPT_POLL] = {"poll-interval", "S",
                  "AGENT_POLL_INTERVAL of the runs (default 2, the contract's)"},
    [OPT_FETCH_WAIT] = {"fetch-wait-ms", "MS",
                        "KAFKA_PROP_FETCH_WAIT_MAX_MS of every Kafka client (default 1)"},
    [OPT_CELERY_N] = {"celery-n", "N[,N...]", "chains per Celery throughput run (default: --n)"},
    [OPT_NO_CELERY] = {"no-celery", NULL, "skip the Celery peer"},
    [OPT_NO_CEILING] = {"no-ceiling", NULL,
                        "skip the ceiling run (bench-relay for the coordinator)"},
    [OPT_PYTHON] = {"python", "PATH", "python with python3-celery (default /usr/bin/python3)"},
    [OPT_QUICK] = {"quick", NULL,
                   "smoke test: --n 50 --workers 8 --lowload 20 --cycle 1000 --cycle-samples 10 "
                   "--idle-seconds 2 --celery-n 20"},
    [OPT_JSON] = {"json", "PATH", "also write every figure as JSON to PATH"},
    [OPT_BIN_DIR] = {"bin-dir", "DIR", "coordinator, devbroker, stub-worker (default: bench's)"},
    [OPT_PERF] = {"perf", "PATH",
                  "perf record -g the coordinator during the largest throughput run (its "
                  "figures then include perf's cost)"},
    [OPT_KEEP] = {"keep", NULL, "keep the temp dir with every process's log"},
    [OPT_HELP] = {"help", NULL, "print this help and exit"},
};
#define N_OPTS N_OF(opt_table)

static const char summary[] =
    "Measure the coordinator end to end and print a table (figure, ours, ceiling,\n"
    "ours/ceiling, Celery, ours/Celery, the target of issue 5). Each run starts its own\n"
    "redis-server (unix socket, no RDB/AOF), devbroker, coordinator and one stub-worker process\n"
    "per type (--duration-ms 0) in a temp dir; the ceiling run puts bench-relay, the least a\n"
    "correct coordinator does per transition, in the coordinator's place; the Celery peer (Debian's python3-celery, Redis broker and backend, one solo worker\n"
    "per queue) runs the same workload. Every process is stopped by pid at the end, also on\n"
    "SIGINT. Exit 0 when every run finished (figures are never judged), 1 otherwise.";

static enum rc_rc
parse_list(const char *arg, int64_t max, const char *what, struct list *out, struct rc_err *err)
{
    struct list l = {.given = true};
    const char *p = arg;

    while (*p != '\0') {
        size_t len = strcspn(p, ",");
        char piece[32];
        if (len == 0 || len >= sizeof(piece) || l.n == BENCH_MAX_RUNS) {
            return rc_err_set(err, RC_EINVAL, "%s: '%s' is not up to %d comma-separated numbers",
                              what, arg, BENCH_MAX_RUNS);
        }
        memcpy(piece, p, len);
        piece[len] = '\0';
        enum rc_rc rc = toolopt_int64(piece, 1, max, what, &l.v[l.n], err);
        if (rc != RC_OK) {
            return rc;
        }
        l.n++;
        p += len + (p[len] == ',');
    }
    if (l.n == 0) {
        return rc_err_set(err, RC_EINVAL, "%s: no value", what);
    }
    *out = l;
    return RC_OK;
}

static enum rc_rc
on_option(void *ctx, size_t index, const char *arg, struct rc_err *err)
{
    struct options *o = ctx;
    double seconds = 0;
    int64_t ignored = 0;

    switch ((enum opt_index)index) {
    case OPT_N:
        return parse_list(arg, MAX_N, "--n", &o->n, err);
    case OPT_WORKERS:
        o->workers_given = true;
        return toolopt_int64(arg, 1, 1000, "--workers", &o->workers, err);
    case OPT_PARTITIONS:
        return toolopt_int64(arg, 1, 256, "--partitions", &o->partitions, err);
    case OPT_LOWLOAD:
        o->lowload_given = true;
        return toolopt_int64(arg, 0, MAX_N, "--lowload", &o->lowload, err);
    case OPT_CYCLE:
        return parse_list(arg, MAX_ACTIVE, "--cycle", &o->cycle, err);
    case OPT_CYCLE_SAMPLES:
        o->cycle_samples_given = true;
        return toolopt_int64(arg, 1, 100000, "--cycle-samples", &o->cycle_samples, err);
    case OPT_IDLE:
        o->idle_given = true;
        return toolopt_int64(arg, 0, 3600, "--idle-seconds", &o->idle_s, err);
    case OPT_POLL:
        o->poll_interval = arg;
        return toolopt_double(arg, 0.001, 3600, "--poll-interval", &seconds, err);
    case OPT_FETCH_WAIT:
        o->fetch_wait_ms = arg;
        return toolopt_int64(arg, 0, 60000, "--fetch-wait-ms", &ignored, err);
    case OPT_CELERY_N:
        return parse_list(arg, MAX_N, "--celery-n", &o->celery_n, err);
    case OPT_NO_CELERY:
        o->no_celery = true;
        return RC_OK;
    case OPT_NO_CEILING:
        o->no_ceiling = true;
        return RC_OK;
    case OPT_PYTHON:
        o->python = arg;
        return RC_OK;
    case OPT_QUICK:
        o->quick = true;
        return RC_OK;
    case OPT_JSON:
        o->json = arg;
        return RC_OK;
    case OPT_BIN_DIR:
        o->bin_dir = arg;
        return RC_OK;
    case OPT_PERF:
        o->perf = arg;
        return RC_OK;
    case OPT_KEEP:
        o->keep = true;
        return RC_OK;
    case OPT_HELP:
        o->help = true;
        return RC_OK;
    }
    return rc_err_set(err, RC_EINVAL, "unhandled option %zu", index);
}

static void
list_default(struct list *l, bool quick, const int64_t *full, size_t n_full, int64_t quick_v)
{
    if (l->given) {
        return;
    }
    if (quick) {
        l->v[0] = quick_v;
        l->n = 1;
        return;
    }
    memcpy(l->v, full, n_full * sizeof(*full));
    l->n = n_full;
}

/* Defaults, which depend on --quick; options given explicitly win. */
static void
apply_defaults(struct options *o)
{
    static const int64_t full_n[] = {1000, 10000};
    static const int64_t full_cycle[] = {1000, 10000, 100000};

    list_default(&o->n, o->quick, full_n, 2, 50);
    list_default(&o->cycle, o->quick, full_cycle, 3, 1000);
    if (!o->celery_n.given) {
        if (o->quick) {
            o->celery_n = (struct list){{20}, 1, true};
        } else {
            o->celery_n = o->n;
        }
    }
    if (!o->lowload_given) {
        o->lowload = o->quick ? 20 : 200;
    }
    if (!o->cycle_samples_given) {
        o->cycle_samples = o->quick ? 10 : 60;
    }
    if (!o->workers_given && o->quick) {
        o->workers = 8;
    }
    if (!o->idle_given) {
        o->idle_s = o->quick ? 2 : 10;
    }
}

/* The folder of this executable (caller frees). */
static char *
own_dir(void)
{
    char path[4096];
    ssize_t n = readlink("/proc/self/exe", path, sizeof(path) - 1);
    if (n <= 0) {
        return xstrdup(".");
    }
    path[n] = '\0';
    char *slash = strrchr(path, '/');
    if (slash != NULL) {
        *slash = '\0';
    }
    return xstrdup(path);
}

/* The run's temp dir under $TMPDIR or /tmp (caller frees); NULL after saying why. */
static char *
make_top(void)
{
    const char *tmp = getenv("TMPDIR");
    struct buf top = BUF_INIT;

    buf_printf(&top, "%s/rc-bench.XXXXXX", tmp != NULL && tmp[0] != '\0' ? tmp : "/tmp");
    if (mkdtemp(top.data) == NULL) {
        fprintf(stderr, TOOL ": mkdtemp %s: %s\n", top.data, strerror(errno));
        buf_release(&top);
        return NULL;
    }
    return buf_detach(&top);
}

/* A sub-directory of the run's temp dir (caller frees). */
static char *
subdir(const char *top, const char *name, struct rc_err *err)
{
    struct buf b = BUF_INIT;
    buf_printf(&b, "%s/%s", top, name);
    if (mkdir(b.data, 0700) != 0) {
        rc_err_sys(err, "mkdir %s", b.data);
        buf_release(&b);
        return NULL;
    }
    return buf_detach(&b);
}

/* Remove the temp dir: files in its sub-directories, them, then it (two levels: ours). */
static void
remove_tree(const char *top)
{
    DIR *d = opendir(top);
    struct dirent *e;
    struct buf path = BUF_INIT;

    while (d != NULL && (e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) {
            continue;
        }
        buf_reset(&path);
        buf_printf(&path, "%s/%s", top, e->d_name);
        struct stat sb;
        if (lstat(path.data, &sb) == 0 && S_ISDIR(sb.st_mode)) {
            DIR *sub = opendir(path.data);
            struct dirent *f;
            struct buf file = BUF_INIT;
            while (sub != NULL && (f = readdir(sub)) != NULL) {
                if (strcmp(f->d_name, ".") != 0 && strcmp(f->d_name, "..") != 0) {
                    buf_reset(&file);
                    buf_printf(&file, "%s/%s", path.data, f->d_name);
                    unlink(file.data);
                }
            }
            if (sub != NULL) {
                closedir(sub);
            }
            buf_release(&file);
            rmdir(path.data);
        } else {
            unlink(path.data);
        }
    }
    if (d != NULL) {
        closedir(d);
    }
    buf_release(&path);
    rmdir(top);
}

struct run {
    struct options *opt;
    struct proc_group *procs;
    char *top; /* the temp dir */
    char *bin_dir;
    struct bench_results res;
};

/* A stack in its own sub-directory with the coordinator (or, for the ceiling run, `relay`
 * in its place) running and, when `workers`, the stub workers with latency logs. */
static enum rc_rc
stack_up(struct run *run, const char *name, bool workers, const char *relay,
         struct bench_stack **out, struct rc_err *err)
{
    char *dir = subdir(run->top, name, err);
    if (dir == NULL) {
        return RC_ESYS;
    }
    struct bench_stack_opts so = {.bin_dir = run->bin_dir,
                                  .dir = dir,
                                  .partitions = run->opt->partitions,
                                  .workers = run->opt->workers,
                                  .poll_interval = run->opt->poll_interval,
                                  .fetch_wait_ms = run->opt->fetch_wait_ms,
                                  .coordinator = relay};
    struct bench_stack *st = NULL;
    enum rc_rc rc = bench_stack_start(run->procs, &so, &st, err);
    if (rc == RC_OK && workers) {
        rc = bench_stack_coordinator_start(st, true, COORDINATOR_READY_MS, err);
        if (rc == RC_OK) {
            rc = bench_stack_workers_start(st, true, err);
        }
    }
    free(dir);
    if (rc != RC_OK) {
        bench_stack_free(st);
        return rc;
    }
    *out = st;
    return RC_OK;
}

static enum rc_rc
run_lowload(struct run *run, struct rc_err *err)
{
    struct bench_stack *st = NULL;
    fprintf(stderr,
            TOOL ": low load: %" PRId64 " researches one at a time, then %" PRId64 " s idle\n",
            run->opt->lowload, run->opt->idle_s);
    enum rc_rc rc = stack_up(run, "lowload", true, NULL, &st, err);
    if (rc == RC_OK) {
        rc = bench_flow_lowload(st, run->opt->lowload, run->opt->idle_s, &run->res.lowload,
                                &run->res.idle, err);
    }
    int64_t offset = 0;
    run->res.lowload.coordinator_log_lines =
        bench_stack_coordinator_log_count(st, "level=", &offset);
    if (rc == RC_OK) {
        rc = bench_stack_stop(st, err);
    }
    run->res.has_lowload = rc == RC_OK && run->opt->lowload > 0;
    run->res.has_idle = rc == RC_OK && run->opt->idle_s > 0;
    bench_stack_free(st);
    return rc;
}

static enum rc_rc
run_throughput(struct run *run, struct rc_err *err)
{
    enum rc_rc rc = RC_OK;
    size_t largest = 0;

    for (size_t i = 0; i < run->opt->n.n; i++) {
        largest = run->opt->n.v[i] > run->opt->n.v[largest] ? i : largest;
    }
    for (size_t i = 0; rc == RC_OK && i < run->opt->n.n; i++) {
        int64_t n = run->opt->n.v[i];
        char name[32];
        struct bench_stack *st = NULL;
        snprintf(name, sizeof(name), "n%" PRId64, n);
        fprintf(stderr, TOOL ": throughput: %" PRId64 " researches at once\n", n);
        rc = stack_up(run, name, true, NULL, &st, err);
        if (rc == RC_OK) {
            rc = bench_flow_throughput(st, n, i == largest ? run->opt->perf : NULL,
                                       &run->res.runs[i], err);
        }
        int64_t offset = 0;
        run->res.runs[i].coordinator_log_lines =
            bench_stack_coordinator_log_count(st, "level=", &offset);
        if (rc == RC_OK) {
            rc = bench_stack_stop(st, err);
            run->res.n_runs = i + 1;
        }
        bench_stack_free(st);
    }
    return rc;
}

static enum rc_rc
run_cycles(struct run *run, struct rc_err *err)
{
    struct bench_stack *st = NULL;
    enum rc_rc rc = stack_up(run, "cycle", false, NULL, &st, err);

    for (size_t i = 0; rc == RC_OK && i < run->opt->cycle.n; i++) {
        fprintf(stderr, TOOL ": cycle: %" PRId64 " parked researches\n", run->opt->cycle.v[i]);
        rc = bench_cycle_run(st, run->opt->cycle.v[i], run->opt->cycle_samples, &run->res.cycles[i],
                             err);
        run->res.n_cycles = i + 1;
    }
    if (rc == RC_OK) {
        rc = bench_stack_stop(st, err);
    }
    bench_stack_free(st);
    return rc;
}

/* The ceiling run: bench-relay for the coordinator, measured by the same flows as ours: a
 * throughput run at the largest --n and a low-load run (no idle measurement). */
static enum rc_rc
run_ceiling(struct run *run, struct rc_err *err)
{
    struct bench_ceiling *x = &run->res.ceiling;
    if (run->opt->no_ceiling) {
        snprintf(x->note, sizeof(x->note), "--no-ceiling");
        return RC_OK;
    }
    int64_t n = 0;
    for (size_t i = 0; i < run->opt->n.n; i++) {
        n = run->opt->n.v[i] > n ? run->opt->n.v[i] : n;
    }
    struct bench_stack *st = NULL;
    enum rc_rc rc = RC_OK;
    if (run->opt->lowload > 0) {
        fprintf(stderr, TOOL ": ceiling: low load, %" PRId64 " researches one at a time\n",
                run->opt->lowload);
        rc = stack_up(run, "ceiling-lowload", true, RELAY, &st, err);
        if (rc == RC_OK) {
            rc = bench_flow_lowload(st, run->opt->lowload, 0, &x->lowload, NULL, err);
        }
        if (rc == RC_OK) {
            rc = bench_stack_stop(st, err);
        }
        x->has_lowload = rc == RC_OK;
        bench_stack_free(st);
        st = NULL;
    }
    if (rc == RC_OK) {
        fprintf(stderr, TOOL ": ceiling: throughput, %" PRId64 " researches at once\n", n);
        rc = stack_up(run, "ceiling-n", true, RELAY, &st, err);
    }
    if (rc == RC_OK) {
        rc = bench_flow_throughput(st, n, NULL, &x->run, err);
    }
    if (rc == RC_OK) {
        rc = bench_stack_stop(st, err);
    }
    x->ran = rc == RC_OK;
    bench_stack_free(st);
    return rc;
}

static enum rc_rc
run_celery(struct run *run, struct rc_err *err)
{
    if (run->opt->no_celery) {
        snprintf(run->res.celery.note, sizeof(run->res.celery.note), "--no-celery");
        return RC_OK;
    }
    char *dir = subdir(run->top, "celery", err);
    if (dir == NULL) {
        return RC_ESYS;
    }
    fprintf(stderr, TOOL ": Celery peer: %" PRId64 " chains one at a time, then",
            run->opt->lowload);
    for (size_t i = 0; i < run->opt->celery_n.n; i++) {
        fprintf(stderr, " %" PRId64, run->opt->celery_n.v[i]);
    }
    fprintf(stderr, " at once\n");
    struct bench_celery_opts co = {run->opt->python,     RC_BENCH_SCRIPT_DIR,  dir,
                                   run->opt->celery_n.v, run->opt->celery_n.n, run->opt->lowload};
    enum rc_rc rc = bench_celery_run(run->procs, &co, &run->res.celery, err);
    if (rc == RC_OK && !run->res.celery.ran) {
        fprintf(stderr, TOOL ": Celery peer skipped: %s\n", run->res.celery.note);
    }
    free(dir);
    return rc;
}

/* Every measurement in turn; *stage names the one that failed. */
static enum rc_rc
run_stages(struct run *run, const char **stage, struct rc_err *err)
{
    enum rc_rc rc = RC_OK;

    if (run->opt->lowload + run->opt->idle_s > 0) {
        *stage = "low load";
        rc = run_lowload(run, err);
    }
    if (rc == RC_OK) {
        *stage = "throughput";
        rc = run_throughput(run, err);
    }
    if (rc == RC_OK) {
        *stage = "cycle";
        rc = run_cycles(run, err);
    }
    if (rc == RC_OK) {
        *stage = "ceiling";
        rc = run_ceiling(run, err);
    }
    if (rc == RC_OK) {
        *stage = "Celery peer";
        rc = run_celery(run, err);
    }
    return rc;
}

static enum rc_rc
write_json(const char *path, const struct bench_results *res, struct rc_err *err)
{
    struct buf doc = BUF_INIT;
    enum rc_rc rc = RC_OK;

    bench_report_json(res, &doc);
    FILE *f = fopen(path, "w");
    if (f == NULL || fwrite(doc.data, 1, doc.len, f) != doc.len) {
        rc = rc_err_sys(err, "write %s", path);
    }
    if (f != NULL && fclose(f) != 0 && rc == RC_OK) {
        rc = rc_err_sys(err, "write %s", path);
    }
    buf_release(&doc);
    return rc;
}

int
main(int argc, char **argv)
{
    struct options opt = {.workers = 128,
                          .partitions = 3,
                          .poll_interval = "2",
                          .fetch_wait_ms = "1",
                          .python = "/usr/bin/python3"};
    struct rc_err err = RC_ERR_INIT;
    struct run run = {.opt = &opt};
    int status = RC_EXIT_FAILURE;
    const char *stage = "start";

    if (toolopt_parse(opt_table, N_OPTS, argc, argv, on_option, &opt, &err) != RC_OK) {
        fprintf(stderr, TOOL ": %s (try --help)\n", err.msg);
        return RC_EXIT_USAGE;
    }
    if (opt.help) {
        toolopt_usage(stdout, TOOL, summary, opt_table, N_OPTS);
        return RC_EXIT_OK;
    }
    apply_defaults(&opt);
    int64_t t0 = clock_mono_ms();
    run.bin_dir = opt.bin_dir != NULL ? xstrdup(opt.bin_dir) : own_dir();
    run.top = make_top();
    if (run.top == NULL) {
        free(run.bin_dir);
        return RC_EXIT_FAILURE;
    }
    run.procs = proc_group_new();
    run.res.quick = opt.quick;
    run.res.workers = opt.workers;
    run.res.partitions = opt.partitions;
    run.res.poll_interval = opt.poll_interval;
    run.res.fetch_wait_ms = opt.fetch_wait_ms;

    enum rc_rc rc = stopsig_install(&err);
    if (rc == RC_OK) {
        rc = run_stages(&run, &stage, &err);
    }
    proc_group_free(run.procs); /* anything still running */
    run.res.wall_s = (double)(clock_mono_ms() - t0) / 1000.0;
    if (rc == RC_OK) {
        bench_report_table(&run.res, stdout);
        fflush(stdout);
        if (opt.json != NULL) {
            stage = "--json";
            rc = write_json(opt.json, &run.res, &err);
        }
    }
    if (rc == RC_OK) {
        status = RC_EXIT_OK;
    } else {
        fprintf(stderr, TOOL ": %s: %s\n", stage, err.msg);
    }
    if (opt.keep || rc != RC_OK) {
        fprintf(stderr, TOOL ": logs kept in %s\n", run.top);
    } else {
        remove_tree(run.top);
    }
    free(run.top);
    free(run.bin_dir);
    return status;
}
