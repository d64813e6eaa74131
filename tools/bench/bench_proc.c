/* SPDX-License-Identifier: MIT
 * bench_proc: fork/exec of the benchmark's children, their stop by pid, and /proc readings.
 * Between fork and exec only async-signal-safe calls run: the driver has librdkafka threads. */
#include "tools/bench/bench_proc.h"

#include <fcntl.h>
#include <inttypes.h>
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

extern char **environ;

struct child {
    pid_t pid;
    bool reaped;
    int status; /* waitpid status, once reaped */
};

struct bench_procs {
    struct child *children;
    size_t n;
    size_t cap;
};

int64_t
bench_proc_now_us(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000 + (int64_t)(ts.tv_nsec / 1000);
}

struct bench_procs *
bench_procs_new(void)
{
    return xcalloc(1, sizeof(struct bench_procs));
}

static struct child *
find(struct bench_procs *bp, pid_t pid)
{
    for (size_t i = 0; i < bp->n; i++) {
        if (bp->children[i].pid == pid) {
            return &bp->children[i];
        }
    }
    return NULL;
}

void
bench_procs_free(struct bench_procs *bp)
{
    if (bp == NULL) {
        return;
    }
    for (size_t i = bp->n; i > 0; i--) {
        if (!bp->children[i - 1].reaped) {
            (void)bench_procs_stop(bp, bp->children[i - 1].pid, 5000, NULL);
        }
    }
    free(bp->children);
    free(bp);
}

/* "NAME=value" entries: the driver's environment with `extra` set over it. The strings are
 * borrowed; the array is the caller's to free. */
static char **
build_env(const char *const *extra)
{
    size_t n_env = 0;
    size_t n_extra = 0;

    while (environ != NULL && environ[n_env] != NULL) {
        n_env++;
    }
    while (extra != NULL && extra[n_extra] != NULL) {
        n_extra++;
    }
    char **out = xcalloc(n_env + n_extra + 1, sizeof(*out));
    size_t n = 0;
    for (size_t i = 0; i < n_env; i++) {
        const char *eq = strchr(environ[i], '=');
        size_t name_len = eq != NULL ? (size_t)(eq - environ[i]) : strlen(environ[i]);
        bool replaced = false;
        for (size_t j = 0; j < n_extra && !replaced; j++) {
            replaced = strncmp(extra[j], environ[i], name_len) == 0 && extra[j][name_len] == '=';
        }
        if (!replaced) {
            out[n++] = environ[i];
        }
    }
    for (size_t j = 0; j < n_extra; j++) {
        /* execve takes char *const[]: the strings are not written to. */
        out[n++] = (char *)(uintptr_t)extra[j];
    }
    out[n] = NULL;
    return out;
}

/* Runs in the child: async-signal-safe calls only. `in_fd` and `out_fd` become stdin and
 * stdout, `log_fd` stderr. */
static void
child_exec(char *const argv[], char *const envp[], int in_fd, int out_fd, int log_fd, pid_t parent)
{
    static const char msg[] = "bench: exec failed\n";
    sigset_t none;
    struct sigaction sa;

    if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0 || getppid() != parent) {
        _exit(127); /* the driver is already gone */
    }
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = SIG_DFL;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGPIPE, &sa, NULL);
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    if (dup2(in_fd, STDIN_FILENO) < 0 || dup2(out_fd, STDOUT_FILENO) < 0 ||
        dup2(log_fd, STDERR_FILENO) < 0) {
        _exit(127);
    }
    for (int fd = 3; fd < MAX_FD_CLOSED; fd++) {
        close(fd); /* the driver's sockets and pipes are none of its business */
    }
    execve(argv[0], argv, envp);
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
bench_procs_spawn(struct bench_procs *bp, const struct bench_spawn *sp, pid_t *pid, int *to_fd,
                  int *from_fd, struct rc_err *err)
{
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
    envp = build_env(sp->env);
    pid_t parent = getpid();
    pid_t child = fork();
    if (child < 0) {
        rc = rc_err_sys(err, "fork");
        goto out;
    }
    if (child == 0) {
        child_exec((char *const *)(uintptr_t)sp->argv, envp, sp->pipes ? in_pipe[0] : null_fd,
                   sp->pipes ? out_pipe[1] : log_fd, log_fd, parent);
    }
    bp->children = xgrow(bp->children, &bp->cap, bp->n + 1, sizeof(*bp->children));
    bp->children[bp->n++] = (struct child){child, false, 0};
    *pid = child;
    if (sp->pipes) {
        /* The driver's ends must not leak into later children. */
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

/* Reap `c` if it has exited; true when it is gone. */
static bool
reap(struct child *c)
{
    int status = 0;

    if (!c->reaped && waitpid(c->pid, &status, WNOHANG) == c->pid) {
        c->reaped = true;
        c->status = status;
    }
    return c->reaped;
}

bool
bench_procs_running(struct bench_procs *bp, pid_t pid)
{
    struct child *c = find(bp, pid);
    return c != NULL && !reap(c);
}

static int
exit_code(int status)
{
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

/* Between looks at a child that is stopping: not cut short by a stop request (we are
 * stopping it because of one). */
static void
pause_5ms(void)
{
    struct timespec ts = {0, 5 * 1000000L};
    nanosleep(&ts, NULL);
}

enum rc_rc
bench_procs_wait(struct bench_procs *bp, pid_t pid, int timeout_ms, int *code, struct rc_err *err)
{
    struct child *c = find(bp, pid);
    int64_t deadline = clock_mono_ms() + timeout_ms;

    if (c == NULL) {
        return rc_err_set(err, RC_EINVAL, "pid %ld is not a child of the benchmark", (long)pid);
    }
    while (!reap(c)) {
        if (clock_mono_ms() >= deadline) {
            return rc_err_set(err, RC_EUNAVAIL, "pid %ld still runs", (long)pid);
        }
        pause_5ms();
    }
    *code = exit_code(c->status);
    return RC_OK;
}

enum rc_rc
bench_procs_stop(struct bench_procs *bp, pid_t pid, int timeout_ms, struct rc_err *err)
{
    struct child *c = find(bp, pid);
    bool killed = false;

    if (c == NULL) {
        return rc_err_set(err, RC_EINVAL, "pid %ld is not a child of the benchmark", (long)pid);
    }
    if (!reap(c)) {
        kill(pid, SIGTERM);
        int64_t deadline = clock_mono_ms() + timeout_ms;
        while (!reap(c) && clock_mono_ms() < deadline) {
            pause_5ms();
        }
        if (!c->reaped) {
            kill(pid, SIGKILL);
            killed = waitpid(pid, &c->status, 0) == pid;
            c->reaped = true;
        }
    }
    if (killed) {
        return rc_err_set(err, RC_EBACKEND, "pid %ld did not stop within %d ms: killed", (long)pid,
                          timeout_ms);
    }
    if (WIFEXITED(c->status) && WEXITSTATUS(c->status) == 0) {
        return RC_OK;
    }
    return rc_err_set(err, RC_EBACKEND, "pid %ld ended with %s %d", (long)pid,
                      WIFEXITED(c->status) ? "exit" : "signal", exit_code(c->status) % 128);
}

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
bench_proc_cpu_us(pid_t pid, int64_t *out, struct rc_err *err)
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
bench_proc_cpu_sum_us(const pid_t *pids, size_t n, int64_t *out, struct rc_err *err)
{
    int64_t sum = 0;

    for (size_t i = 0; i < n; i++) {
        int64_t us = 0;
        enum rc_rc rc = bench_proc_cpu_us(pids[i], &us, err);
        if (rc != RC_OK) {
            return rc;
        }
        sum += us;
    }
    *out = sum;
    return RC_OK;
}

enum rc_rc
bench_proc_peak_rss_kb(pid_t pid, int64_t *out, struct rc_err *err)
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
