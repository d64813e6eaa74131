/* SPDX-License-Identifier: MIT
 * proc: fork/exec of children with their output in a log, the registry of live pids that the
 * atexit and fatal-signal handlers SIGKILL, stop and wait by pid, and /proc readings. Only
 * async-signal-safe calls run between fork and exec: the parent has librdkafka threads. */
#include "tools/stack/proc.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h> /* PR_SET_PDEATHSIG: Linux only, as /proc is */
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common/buf.h"
#include "common/clock.h"
#include "common/num.h"
#include "common/xalloc.h"

#define MAX_FD_CLOSED 4096 /* descriptors above 2 closed in a child, up to this */
#define FREE_STOP_MS 5000  /* proc_group_free's stop of each child still running */
#define REG_MAX 256        /* live children the registry holds (PDEATHSIG covers the rest) */
#define N_FATAL 4

extern char **environ;

/* ---- the registry ------------------------------------------------------------------------- */

/* Mutable globals, on purpose: the atexit and signal handlers can reach nothing else. A slot
 * holds a live child's pid or 0; writes happen on the spawning thread only. */
static volatile pid_t reg_pids[REG_MAX];
static bool reg_installed;
static const int reg_signals[N_FATAL] = {SIGABRT, SIGTERM, SIGINT, SIGHUP};
static volatile sig_atomic_t reg_taken[N_FATAL]; /* our handler holds reg_signals[i] */
static struct sigaction reg_old_actions[N_FATAL];

static void
reg_kill_all(void)
{
    for (size_t i = 0; i < REG_MAX; i++) {
        pid_t pid = reg_pids[i];
        if (pid > 0) {
            kill(pid, SIGKILL);
        }
    }
}

static void
reg_atexit(void)
{
    reg_kill_all();
}

static void
reg_signal_cb(int sig)
{
    reg_kill_all();
    /* Hand the signal on to the action it had before (the default: it ends us); it is blocked
     * while we run, so it arrives once we return. */
    for (size_t i = 0; i < N_FATAL; i++) {
        if (reg_signals[i] == sig) {
            sigaction(sig, &reg_old_actions[i], NULL);
            reg_taken[i] = 0;
        }
    }
    raise(sig);
}

/* Once, at the first spawn: the atexit handler, and ours for each fatal signal whose action is
 * still the default (one the program handles or ignores is not fatal; its owner decides). */
static void
reg_install(void)
{
    struct sigaction sa;

    if (reg_installed) {
        return;
    }
    reg_installed = true;
    atexit(reg_atexit);
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = reg_signal_cb;
    sigemptyset(&sa.sa_mask);
    for (size_t i = 0; i < N_FATAL; i++) {
        struct sigaction now;
        if (sigaction(reg_signals[i], NULL, &now) == 0 && now.sa_handler == SIG_DFL &&
            (now.sa_flags & SA_SIGINFO) == 0 &&
            sigaction(reg_signals[i], &sa, &reg_old_actions[i]) == 0) {
            reg_taken[i] = 1;
        }
    }
}

static void
reg_add(pid_t pid)
{
    for (size_t i = 0; i < REG_MAX; i++) {
        if (reg_pids[i] == 0) {
            reg_pids[i] = pid;
            return;
        }
    }
}

static void
reg_remove(pid_t pid)
{
    for (size_t i = 0; i < REG_MAX; i++) {
        if (reg_pids[i] == pid) {
            reg_pids[i] = 0;
        }
    }
}

/* ---- the group ---------------------------------------------------------------------------- */

struct child {
    pid_t pid;
    bool reaped;
    int status; /* waitpid status, once reaped */
};

struct proc_group {
    struct child *children;
    size_t n;
    size_t cap;
};

struct proc_group *
proc_group_new(void)
{
    return xcalloc(1, sizeof(struct proc_group));
}

static struct child *
find(struct proc_group *g, pid_t pid)
{
    for (size_t i = 0; i < g->n; i++) {
        if (g->children[i].pid == pid) {
            return &g->children[i];
        }
    }
    return NULL;
}

void
proc_group_free(struct proc_group *g)
{
    if (g == NULL) {
        return;
    }
    for (size_t i = g->n; i > 0; i--) {
        if (!g->children[i - 1].reaped) {
            (void)proc_stop(g, g->children[i - 1].pid, FREE_STOP_MS, NULL);
        }
    }
    free(g->children);
    free(g);
}

/* ---- spawn -------------------------------------------------------------------------------- */

/* The parent's environment with each layer set over it in turn, a later NAME replacing an
 * earlier entry in place. The strings are borrowed; the array is the caller's to free. */
static char **
env_build(const char *const *const *layers, size_t n_layers)
{
    size_t cap = 1;
    size_t n = 0;

    for (size_t i = 0; environ != NULL && environ[i] != NULL; i++) {
        cap++;
    }
    for (size_t l = 0; l < n_layers; l++) {
        for (size_t i = 0; layers[l] != NULL && layers[l][i] != NULL; i++) {
            cap++;
        }
    }
    char **out = xcalloc(cap, sizeof(*out));
    for (size_t i = 0; environ != NULL && environ[i] != NULL; i++) {
        out[n++] = environ[i];
    }
    for (size_t l = 0; l < n_layers; l++) {
        for (size_t i = 0; layers[l] != NULL && layers[l][i] != NULL; i++) {
            const char *entry = layers[l][i];
            const char *eq = strchr(entry, '=');
            size_t name_len = eq != NULL ? (size_t)(eq - entry) : strlen(entry);
            size_t j = 0;
            while (j < n && !(strncmp(out[j], entry, name_len) == 0 && out[j][name_len] == '=')) {
                j++;
            }
            /* execve takes char *const[]: the strings are not written to. */
            out[j] = (char *)(uintptr_t)entry;
            n += j == n;
        }
    }
    out[n] = NULL;
    return out;
}

/* Runs in the child: async-signal-safe calls only. `in_fd` and `out_fd` become stdin and
 * stdout, `log_fd` stderr. The child keeps the parent's signal dispositions (exec resets the
 * handled ones): an ignored SIGPIPE stays ignored, as the tests' children always had it. */
static void
child_exec(const char *path, char *const argv[], char *const envp[], int in_fd, int out_fd,
           int log_fd, pid_t parent, int max_fd)
{
    static const char msg[] = "proc: exec failed\n";
    struct sigaction dfl;
    sigset_t none;

    if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0 || getppid() != parent) {
        _exit(127); /* the parent is already gone */
    }
    /* The registry is the parent's: a signal before exec must not kill its other children. */
    memset(&dfl, 0, sizeof(dfl));
    dfl.sa_handler = SIG_DFL;
    sigemptyset(&dfl.sa_mask);
    for (size_t i = 0; i < N_FATAL; i++) {
        if (reg_taken[i]) {
            sigaction(reg_signals[i], &dfl, NULL);
        }
    }
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    if (dup2(in_fd, STDIN_FILENO) < 0 || dup2(out_fd, STDOUT_FILENO) < 0 ||
        dup2(log_fd, STDERR_FILENO) < 0) {
        _exit(127);
    }
    for (int fd = 3; fd < max_fd; fd++) {
        close(fd); /* the parent's sockets and pipes are none of its business */
    }
    execve(path, argv, envp);
    if (write(STDERR_FILENO, msg, sizeof(msg) - 1) < 0) {
        _exit(127);
    }
    _exit(127);
}

static void
close_fd(int *fd)
{
    if (*fd >= 0) {
        close(*fd);
        *fd = -1;
    }
}

enum rc_rc
proc_spawn(struct proc_group *g, const struct proc_spec *sp, pid_t *pid, int *to_fd, int *from_fd,
           struct rc_err *err)
{
    const char *path = sp->path != NULL ? sp->path : sp->argv[0];
    long open_max = sysconf(_SC_OPEN_MAX);
    int max_fd = (open_max <= 0 || open_max > MAX_FD_CLOSED) ? MAX_FD_CLOSED : (int)open_max;
    int log_fd = open(sp->log_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    int in_pipe[2] = {-1, -1};
    int out_pipe[2] = {-1, -1};
    int null_fd = -1;
    char **envp = NULL;
    enum rc_rc rc = RC_OK;

    if (log_fd < 0) {
        return rc_err_sys(err, "open %s", sp->log_path);
    }
    if (sp->pipes) {
        if (pipe(in_pipe) != 0 || pipe(out_pipe) != 0) {
            rc = rc_err_sys(err, "pipe");
            goto out;
        }
    } else if ((null_fd = open("/dev/null", O_RDONLY | O_CLOEXEC)) < 0) {
        rc = rc_err_sys(err, "open /dev/null");
        goto out;
    }
    envp = env_build(sp->env, sp->n_env);
    reg_install();
    g->children = xgrow(g->children, &g->cap, g->n + 1, sizeof(*g->children));
    /* Every signal waits until the pid is registered (and the child has dropped our
     * handlers). */
    sigset_t all;
    sigset_t old;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, &old);
    pid_t parent = getpid();
    pid_t child = fork();
    if (child == 0) {
        child_exec(path, (char *const *)(uintptr_t)sp->argv, envp, sp->pipes ? in_pipe[0] : null_fd,
                   sp->pipes ? out_pipe[1] : log_fd, log_fd, parent, max_fd);
    }
    if (child > 0) {
        reg_add(child);
    }
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (child < 0) {
        rc = rc_err_sys(err, "fork for %s", path);
        goto out;
    }
    g->children[g->n++] = (struct child){child, false, 0};
    *pid = child;
    if (sp->pipes) {
        /* The parent's ends must not leak into later children. */
        fcntl(in_pipe[1], F_SETFD, FD_CLOEXEC);
        fcntl(out_pipe[0], F_SETFD, FD_CLOEXEC);
        *to_fd = in_pipe[1];
        *from_fd = out_pipe[0];
        in_pipe[1] = -1;
        out_pipe[0] = -1;
    } else {
        if (to_fd != NULL) {
            *to_fd = -1;
        }
        if (from_fd != NULL) {
            *from_fd = -1;
        }
    }
out:
    free(envp);
    close_fd(&in_pipe[0]);
    close_fd(&in_pipe[1]);
    close_fd(&out_pipe[0]);
    close_fd(&out_pipe[1]);
    close_fd(&null_fd);
    close_fd(&log_fd);
    return rc;
}

/* ---- wait and stop ------------------------------------------------------------------------ */

/* Reap `c` if it has exited: RC_OK once it is gone, RC_EUNAVAIL while it runs, RC_ESYS when
 * waitpid fails (then it counts as running: we cannot tell). */
static enum rc_rc
reap(struct child *c, struct rc_err *err)
{
    int status = 0;
    pid_t r;

    if (c->reaped) {
        return RC_OK;
    }
    do {
        r = waitpid(c->pid, &status, WNOHANG);
    } while (r < 0 && errno == EINTR);
    if (r < 0) {
        return rc_err_sys(err, "waitpid %ld", (long)c->pid);
    }
    if (r != c->pid) {
        return RC_EUNAVAIL;
    }
    c->reaped = true;
    c->status = status;
    reg_remove(c->pid);
    return RC_OK;
}

bool
proc_running(struct proc_group *g, pid_t pid)
{
    struct child *c = find(g, pid);
    return c != NULL && reap(c, NULL) != RC_OK;
}

/* Between looks at a child: not cut short by a stop request (we may be stopping it because
 * of one). */
static void
pause_5ms(void)
{
    struct timespec ts = {0, 5 * 1000000L};
    nanosleep(&ts, NULL);
}

enum rc_rc
proc_wait(struct proc_group *g, pid_t pid, int timeout_ms, int *status, struct rc_err *err)
{
    struct child *c = find(g, pid);
    int64_t deadline = clock_mono_ms() + timeout_ms;
    enum rc_rc rc;

    if (c == NULL) {
        return rc_err_set(err, RC_EINVAL, "pid %ld is not one of our children", (long)pid);
    }
    while ((rc = reap(c, err)) == RC_EUNAVAIL) {
        if (clock_mono_ms() >= deadline) {
            return rc_err_set(err, RC_EUNAVAIL, "pid %ld still running after %d ms", (long)pid,
                              timeout_ms);
        }
        pause_5ms();
    }
    if (rc == RC_OK && status != NULL) {
        *status = c->status;
    }
    return rc;
}

enum rc_rc
proc_stop(struct proc_group *g, pid_t pid, int timeout_ms, struct rc_err *err)
{
    struct child *c = find(g, pid);
    bool killed = false;

    if (c == NULL) {
        return rc_err_set(err, RC_EINVAL, "pid %ld is not one of our children", (long)pid);
    }
    if (reap(c, NULL) != RC_OK) {
        kill(pid, SIGTERM);
        int64_t deadline = clock_mono_ms() + timeout_ms;
        while (reap(c, NULL) != RC_OK && clock_mono_ms() < deadline) {
            pause_5ms();
        }
    }
    if (!c->reaped) {
        pid_t r;
        kill(pid, SIGKILL);
        do {
            r = waitpid(pid, &c->status, 0);
        } while (r < 0 && errno == EINTR);
        if (r != pid) {
            c->status = 0x7f; /* lost (not our child any more): not a clean exit */
        }
        c->reaped = true;
        killed = true;
        reg_remove(pid);
    }
    if (killed) {
        return rc_err_set(err, RC_EBACKEND, "pid %ld did not stop within %d ms: killed", (long)pid,
                          timeout_ms);
    }
    if (WIFEXITED(c->status) && WEXITSTATUS(c->status) == 0) {
        return RC_OK;
    }
    char how[96];
    proc_describe(c->status, how, sizeof(how));
    return rc_err_set(err, RC_EBACKEND, "pid %ld ended with %s", (long)pid, how);
}

int
proc_exit_code(int status)
{
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

void
proc_describe(int status, char *out, size_t len)
{
    if (WIFEXITED(status)) {
        snprintf(out, len, "exit %d", WEXITSTATUS(status));
    } else if (WIFSIGNALED(status)) {
        snprintf(out, len, "signal %d (%s)", WTERMSIG(status), strsignal(WTERMSIG(status)));
    } else {
        snprintf(out, len, "status 0x%x", (unsigned)status);
    }
}

/* ---- /proc -------------------------------------------------------------------------------- */

/* The whole of a small /proc file (caller frees), or NULL with errno set. */
static char *
read_small(const char *path)
{
    FILE *f = fopen(path, "r");
    struct buf text = BUF_INIT;
    char chunk[1024];
    size_t n;

    if (f == NULL) {
        return NULL;
    }
    while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0) {
        buf_append(&text, chunk, n);
    }
    fclose(f);
    buf_putc(&text, '\0');
    return buf_detach(&text);
}

enum rc_rc
proc_cpu_us(pid_t pid, int64_t *out, struct rc_err *err)
{
    char path[64];
    snprintf(path, sizeof(path), "/proc/%ld/stat", (long)pid);
    char *text = read_small(path);
    enum rc_rc rc = RC_OK;

    if (text == NULL) {
        return rc_err_sys(err, "read %s", path);
    }
    /* "pid (comm) state ppid ...": comm may hold spaces and parentheses, so fields are counted
     * from the last ')'. After it, utime and stime are the 12th and 13th (fields 14 and 15 of
     * proc(5)). */
    const char *p = strrchr(text, ')');
    int64_t ticks[2] = {0, 0};
    for (int field = 1; p != NULL && field <= 13; field++) {
        p = strchr(p + 1, ' ');
        if (p != NULL && field >= 12) {
            int64_t v = -1;
            if (!num_parse_i64(p + 1, strcspn(p + 1, " "), &v) || v < 0) {
                p = NULL;
                break;
            }
            ticks[field - 12] = v;
        }
    }
    long hz = sysconf(_SC_CLK_TCK);
    if (p == NULL || hz <= 0) {
        rc = rc_err_set(err, RC_EPROTO, "%s: cannot read utime and stime", path);
    } else {
        *out = (ticks[0] + ticks[1]) * 1000000 / hz;
    }
    free(text);
    return rc;
}

enum rc_rc
proc_cpu_sum_us(const pid_t *pids, size_t n, int64_t *out, struct rc_err *err)
{
    int64_t sum = 0;

    for (size_t i = 0; i < n; i++) {
        int64_t us = 0;
        enum rc_rc rc = proc_cpu_us(pids[i], &us, err);
        if (rc != RC_OK) {
            return rc;
        }
        sum += us;
    }
    *out = sum;
    return RC_OK;
}

enum rc_rc
proc_peak_rss_kb(pid_t pid, int64_t *out, struct rc_err *err)
{
    char path[64];
    snprintf(path, sizeof(path), "/proc/%ld/status", (long)pid);
    char *text = read_small(path);
    enum rc_rc rc = RC_OK;

    if (text == NULL) {
        return rc_err_sys(err, "read %s", path);
    }
    /* "VmHWM:<spaces>1234 kB" */
    const char *line = strstr(text, "\nVmHWM:");
    const char *digits = line != NULL ? line + 7 + strspn(line + 7, " \t") : NULL;
    int64_t kb = -1;
    if (digits == NULL || !num_parse_i64(digits, strcspn(digits, " \t\n"), &kb) || kb < 0) {
        rc = rc_err_set(err, RC_EPROTO, "%s: no VmHWM", path);
    } else {
        *out = kb;
    }
    free(text);
    return rc;
}
