/* SPDX-License-Identifier: MIT
 * execrun: one dispatch as a child process. Between fork and exec the child calls only
 * async-signal-safe functions: everything it needs (the environment, the path) is built
 * before the fork. */
#include "tools/rcw-exec/execrun.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <math.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common/buf.h"
#include "common/clock.h"
#include "common/xalloc.h"
#include "contract/limits.h"
#include "worker/rcw.h"

extern char **environ;

#define LOOK_MS 20          /* how often a run looks at its job (an abort) and its child */
#define LINE_MAX_BYTES 2048 /* a longer progress line is ignored */

enum { P_IN = 0, P_OUT, P_ERR, P_PROG, N_PIPES };

bool
execrun_parse_progress(const char *line, double *progress, const char **step)
{
    static const char word[] = "progress";
    if (strncmp(line, word, sizeof(word) - 1) != 0 || line[sizeof(word) - 1] != ' ') {
        return false;
    }
    const char *num = line + sizeof(word);
    char *end = NULL;
    errno = 0;
    double p = strtod(num, &end);
    if (end == num || errno != 0 || !isfinite(p) || (*end != '\0' && *end != ' ')) {
        return false;
    }
    *progress = p < 0 ? 0 : p > 1 ? 1 : p;
    *step = *end == ' ' ? end + 1 : end;
    return true;
}

bool
execrun_resolve(const char *name, const char *path_env, char *out, size_t out_len)
{
    if (strchr(name, '/') != NULL) {
        return (size_t)snprintf(out, out_len, "%s", name) < out_len;
    }
    const char *p = path_env != NULL && path_env[0] != '\0' ? path_env : "/usr/bin:/bin";
    while (*p != '\0') {
        const char *colon = strchr(p, ':');
        size_t len = colon != NULL ? (size_t)(colon - p) : strlen(p);
        int n = snprintf(out, out_len, "%.*s/%s", (int)len, len > 0 ? p : ".", name);
        struct stat st;
        if (n > 0 && (size_t)n < out_len && stat(out, &st) == 0 && S_ISREG(st.st_mode) &&
            access(out, X_OK) == 0) {
            return true;
        }
        p = colon != NULL ? colon + 1 : p + len;
    }
    return false;
}

/* The child's environment: the dispatch's ids first, then ours without them. The strings
 * live in `text` (offsets turned into pointers once it no longer grows). */
static char **
child_env(const struct rcw_job *job, struct buf *text)
{
    char attempt[24];
    snprintf(attempt, sizeof(attempt), "%" PRId64, rcw_job_attempt(job));
    char fd[8];
    snprintf(fd, sizeof(fd), "%d", EXECRUN_PROGRESS_FD);
    const char *ours[][2] = {
        {"RC_RESEARCH_ID", rcw_job_research_id(job)},
        {"RC_DISPATCH_ID", rcw_job_dispatch_id(job)},
        {"RC_ATTEMPT", attempt},
        {"RC_PHASE", rcw_job_phase(job)},
        {"RC_WORKER_ID", rcw_job_worker_id(job)},
        {"RC_WORKER_TYPE", rcw_job_worker_type(job)},
        {"RC_PROGRESS_FD", fd},
    };
    size_t n_env = 0;
    while (environ[n_env] != NULL) {
        n_env++;
    }
    size_t *at = xcalloc(N_OF(ours) + n_env + 1, sizeof(*at));
    size_t n = 0;
    for (size_t i = 0; i < N_OF(ours); i++) {
        at[n++] = text->len;
        buf_printf(text, "%s=%s", ours[i][0], ours[i][1]);
        buf_putc(text, '\0');
    }
    for (size_t i = 0; i < n_env; i++) {
        bool shadowed = false;
        for (size_t k = 0; k < N_OF(ours) && !shadowed; k++) {
            size_t len = strlen(ours[k][0]);
            shadowed = strncmp(environ[i], ours[k][0], len) == 0 && environ[i][len] == '=';
        }
        if (!shadowed) {
            at[n++] = text->len;
            buf_append(text, environ[i], strlen(environ[i]) + 1);
        }
    }
    char **envp = xcalloc(n + 1, sizeof(*envp));
    for (size_t i = 0; i < n; i++) {
        envp[i] = text->data + at[i];
    }
    free(at);
    return envp;
}

static void
close_fd(int *fd)
{
    if (*fd >= 0) {
        close(*fd);
        *fd = -1;
    }
}

/* In the child, after fork: only async-signal-safe calls. */
static void
child_exec(const struct execrun *x, int fds[N_PIPES][2], char **envp)
{
    (void)setpgid(0, 0);
    rcw_signals_unblock();
    if (dup2(fds[P_IN][0], 0) < 0 || dup2(fds[P_OUT][1], 1) < 0 || dup2(fds[P_ERR][1], 2) < 0 ||
        dup2(fds[P_PROG][1], EXECRUN_PROGRESS_FD) < 0) {
        _exit(127);
    }
    execve(x->path, x->argv, envp);
    static const char msg[] = "rcw-exec: cannot execute the command\n";
    ssize_t n = write(2, msg, sizeof(msg) - 1);
    (void)n;
    _exit(127);
}

/* Keep the last EXECRUN_ERROR_TAIL bytes of stderr (with some slack, cut when it doubles). */
static void
keep_tail(struct buf *tail, const char *data, size_t len)
{
    buf_append(tail, data, len);
    if (tail->len > 4 * EXECRUN_ERROR_TAIL) {
        size_t drop = tail->len - EXECRUN_ERROR_TAIL;
        memmove(tail->data, tail->data + drop, tail->len - drop);
        tail->len -= drop;
        tail->data[tail->len] = '\0';
    }
}

static void
progress_lines(struct rcw_job *job, struct buf *line, const char *data, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        if (data[i] != '\n') {
            if (line->len < LINE_MAX_BYTES) {
                buf_putc(line, data[i]);
            }
            continue;
        }
        double p = 0;
        const char *step = NULL;
        if (line->len < LINE_MAX_BYTES && line->data != NULL &&
            execrun_parse_progress(line->data, &p, &step)) {
            rcw_job_progress(job, p, step);
        }
        buf_reset(line);
    }
}

/* The error of a failed run: the stderr tail, trimmed and cut to whole UTF-8 characters, or
 * how it ended when it said nothing. */
static void
fail_with_tail(struct rcw_job *job, struct buf *tail, int status)
{
    size_t end = tail->len;
    while (end > 0 && (tail->data[end - 1] == '\n' || tail->data[end - 1] == ' ' ||
                       tail->data[end - 1] == '\r' || tail->data[end - 1] == '\t')) {
        end--;
    }
    size_t start = end > EXECRUN_ERROR_TAIL ? end - EXECRUN_ERROR_TAIL : 0;
    while (start < end && ((unsigned char)tail->data[start] & 0xc0) == 0x80) {
        start++; /* not inside a character */
    }
    char *text = tail->data != NULL ? tail->data + start : NULL;
    if (text != NULL && end > start && limits_is_text(text, end - start)) {
        text[end - start] = '\0';
        rcw_job_fail(job, text);
        return;
    }
    char why[64];
    if (WIFSIGNALED(status)) {
        snprintf(why, sizeof(why), "command killed by signal %d", WTERMSIG(status));
    } else {
        snprintf(why, sizeof(why), "command exited with status %d", WEXITSTATUS(status));
    }
    rcw_job_fail(job, why);
}

struct run {
    struct rcw_job *job;
    int fd[N_PIPES]; /* our ends, -1 once closed */
    const char *input;
    size_t input_len;
    size_t input_off;
    struct buf out;
    struct buf tail;
    struct buf line;
    bool too_big;
};

/* Serve the pipes that are ready: feed stdin, collect stdout, pass stderr through (keeping its
 * tail), parse progress lines. Waits up to wait_ms. Returns whether anything was read, written
 * or closed. */
static bool
serve(struct run *r, int wait_ms)
{
    struct pollfd pfd[N_PIPES];
    int which[N_PIPES];
    nfds_t n = 0;
    for (int i = 0; i < N_PIPES; i++) {
        if (r->fd[i] >= 0) {
            pfd[n] = (struct pollfd){.fd = r->fd[i], .events = i == P_IN ? POLLOUT : POLLIN};
            which[n++] = i;
        }
    }
    if (n == 0) {
        /* All closed: the child is exiting; look again soon (its exit is what we wait for). */
        struct timespec ts = {0, wait_ms > 0 ? 1000000L : 0};
        nanosleep(&ts, NULL);
        return false;
    }
    if (poll(pfd, n, wait_ms) <= 0) {
        return false;
    }
    bool busy = false;
    char chunk[16384];
    for (nfds_t k = 0; k < n; k++) {
        int i = which[k];
        if (pfd[k].revents == 0) {
            continue;
        }
        if (i == P_IN) {
            ssize_t w = write(r->fd[i], r->input + r->input_off, r->input_len - r->input_off);
            if (w > 0) {
                r->input_off += (size_t)w;
            }
            if ((w < 0 && errno != EAGAIN) || r->input_off == r->input_len) {
                close_fd(&r->fd[i]); /* all written, or it stopped reading (EPIPE) */
            }
            busy = true;
            continue;
        }
        ssize_t got = read(r->fd[i], chunk, sizeof(chunk));
        if (got < 0 && (errno == EAGAIN || errno == EINTR)) {
            continue;
        }
        busy = true;
        if (got <= 0) {
            close_fd(&r->fd[i]); /* its end, or an error */
            continue;
        }
        if (i == P_OUT) {
            if (r->out.len + (size_t)got > EXECRUN_STDOUT_MAX) {
                r->too_big = true;
            } else {
                buf_append(&r->out, chunk, (size_t)got);
            }
        } else if (i == P_ERR) {
            ssize_t wr = write(2, chunk, (size_t)got); /* rcw-exec's log holds it too */
            (void)wr;
            keep_tail(&r->tail, chunk, (size_t)got);
        } else {
            progress_lines(r->job, &r->line, chunk, (size_t)got);
        }
    }
    return busy;
}

void
execrun_handle(struct rcw_job *job, void *arg)
{
    struct execrun *x = arg;
    struct buf env_text = BUF_INIT;
    int fds[N_PIPES][2];
    struct run r = {.job = job, .out = BUF_INIT, .tail = BUF_INIT, .line = BUF_INIT};

    for (int i = 0; i < N_PIPES; i++) {
        fds[i][0] = fds[i][1] = -1;
        r.fd[i] = -1;
    }
    if (rcw_job_cancelled(job)) {
        return; /* released at shutdown before its turn came: never started */
    }
    r.input = rcw_job_input_json(job);
    r.input_len = strlen(r.input);
    char **envp = child_env(job, &env_text);

    pthread_mutex_lock(&x->spawn_mu);
    bool ok = true;
    for (int i = 0; i < N_PIPES && ok; i++) {
        ok = pipe(fds[i]) == 0;
        for (int k = 0; ok && k < 2; k++) {
            (void)fcntl(fds[i][k], F_SETFD, FD_CLOEXEC);
        }
    }
    pid_t pid = ok ? fork() : -1;
    if (pid == 0) {
        child_exec(x, fds, envp);
    }
    pthread_mutex_unlock(&x->spawn_mu);
    if (pid < 0) {
        rcw_job_fail(job, "rcw-exec: cannot start the command (pipe or fork failed)");
        for (int i = 0; i < N_PIPES; i++) {
            close_fd(&fds[i][0]);
            close_fd(&fds[i][1]);
        }
        goto out;
    }
    (void)setpgid(pid, pid); /* also here: the group exists before we may signal it */
    /* Our ends: stdin's write end, the others' read ends. */
    for (int i = 0; i < N_PIPES; i++) {
        int ours = i == P_IN ? 1 : 0;
        r.fd[i] = fds[i][ours];
        close_fd(&fds[i][1 - ours]);
        (void)fcntl(r.fd[i], F_SETFL, fcntl(r.fd[i], F_GETFL) | O_NONBLOCK);
    }

    int status = 0;
    bool exited = false;
    bool termed = false;
    int64_t kill_at = 0;
    while (!exited) {
        (void)serve(&r, LOOK_MS);
        pid_t w = waitpid(pid, &status, WNOHANG);
        exited = w == pid || (w < 0 && errno == ECHILD);
        if (!exited && !termed && rcw_job_cancelled(job)) {
            /* Aborted (or released at shutdown): the whole group, then SIGKILL after grace. */
            (void)kill(-pid, SIGTERM);
            termed = true;
            kill_at = clock_mono_ms() + (x->grace_ms > 0 ? x->grace_ms : 0);
        }
        if (termed && !exited && clock_mono_ms() >= kill_at) {
            (void)kill(-pid, SIGKILL);
        }
    }
    /* What it wrote before exiting is in the pipes still. What it left running in its group
     * ends with it: a job's processes do not outlive the job. */
    close_fd(&r.fd[P_IN]);
    while (serve(&r, 0)) {
    }
    (void)kill(-pid, SIGKILL); /* a pipe still open is held by one of them */
    for (int i = 0; i < 50 && (r.fd[P_OUT] >= 0 || r.fd[P_ERR] >= 0 || r.fd[P_PROG] >= 0); i++) {
        (void)serve(&r, LOOK_MS);
    }
    if (rcw_job_cancelled(job)) {
        goto out;
    }
    if (r.too_big) {
        rcw_job_fail(job, "rcw-exec: the command wrote more than 1 MiB on stdout");
    } else if (WIFEXITED(status) && WEXITSTATUS(status) == 0) {
        struct rc_err err = RC_ERR_INIT;
        if (rcw_job_result_json(job, r.out.data != NULL ? r.out.data : "", r.out.len, &err) !=
            RC_OK) {
            char why[sizeof(err.msg) + 64];
            snprintf(why, sizeof(why), "rcw-exec: stdout is not a JSON result object: %s", err.msg);
            rcw_job_fail(job, why);
        }
    } else {
        fail_with_tail(job, &r.tail, status);
    }
out:
    for (int i = 0; i < N_PIPES; i++) {
        close_fd(&r.fd[i]);
    }
    buf_release(&r.out);
    buf_release(&r.tail);
    buf_release(&r.line);
    free(envp);
    buf_release(&env_text);
}
