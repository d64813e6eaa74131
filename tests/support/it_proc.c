/* SPDX-License-Identifier: MIT
 * it_proc: fork/exec of test children with their output in a log file, and the registry of
 * live child pids that atexit and fatal-signal handlers SIGKILL. Only async-signal-safe calls
 * run between fork and exec: the test process has librdkafka threads. */
#include "tests/support/it_proc.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h> /* PR_SET_PDEATHSIG: Linux-only, acceptable in tests */
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define REG_MAX 256

/* Mutable globals, on purpose: the atexit and signal handlers can reach nothing else. A slot
 * holds a live child's pid or 0; writes happen on the test's main thread only. */
static volatile pid_t reg_pids[REG_MAX];
static volatile sig_atomic_t reg_installed;
static struct sigaction reg_old_actions[4];
static const int reg_signals[4] = {SIGABRT, SIGTERM, SIGINT, SIGHUP};

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
    /* Hand the signal on to whoever had it before (cmocka, ASan, the default action): it is
     * blocked while we run, so it arrives once we return. */
    for (size_t i = 0; i < N_OF(reg_signals); i++) {
        if (reg_signals[i] == sig) {
            sigaction(sig, &reg_old_actions[i], NULL);
        }
    }
    reg_installed = 0;
    raise(sig);
}

static void
reg_install(void)
{
    if (reg_installed) {
        return;
    }
    static bool atexit_done;
    if (!atexit_done) {
        atexit(reg_atexit);
        atexit_done = true;
    }
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = reg_signal_cb;
    sigemptyset(&sa.sa_mask);
    for (size_t i = 0; i < N_OF(reg_signals); i++) {
        sigaction(reg_signals[i], &sa, &reg_old_actions[i]);
    }
    reg_installed = 1;
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
    /* More than REG_MAX live children: PR_SET_PDEATHSIG still covers this one. */
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

/* Runs in the child: async-signal-safe calls only. */
static void
child_exec(const char *path, char *const argv[], char *const envp[], int log_fd, int null_fd,
           pid_t parent, int max_fd)
{
    static const char msg[] = "it_proc: exec failed\n";
    sigset_t none;

    if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0 || getppid() != parent) {
        _exit(127); /* the test process is already gone */
    }
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    if (dup2(null_fd, STDIN_FILENO) < 0 || dup2(log_fd, STDOUT_FILENO) < 0 ||
        dup2(log_fd, STDERR_FILENO) < 0) {
        _exit(127);
    }
    for (int fd = 3; fd < max_fd; fd++) {
        close(fd); /* hiredis and librdkafka sockets of the test are none of its business */
    }
    execve(path, argv, envp);
    if (write(STDERR_FILENO, msg, sizeof msg - 1) < 0) {
        _exit(127);
    }
    _exit(127);
}

enum rc_rc
it_proc_spawn(const char *path, char *const argv[], char *const envp[], const char *log_path,
              pid_t *out, struct rc_err *err)
{
    enum rc_rc rc = RC_OK;
    int log_fd = -1;
    int null_fd = -1;
    long open_max = sysconf(_SC_OPEN_MAX);
    int max_fd = (open_max <= 0 || open_max > 4096) ? 4096 : (int)open_max;

    reg_install();
    log_fd = open(log_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    if (log_fd < 0) {
        rc = rc_err_sys(err, "open %s", log_path);
        goto out;
    }
    null_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (null_fd < 0) {
        rc = rc_err_sys(err, "open /dev/null");
        goto out;
    }
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid < 0) {
        rc = rc_err_sys(err, "fork for %s", path);
        goto out;
    }
    if (pid == 0) {
        child_exec(path, argv, envp, log_fd, null_fd, parent, max_fd);
    }
    reg_add(pid);
    *out = pid;
out:
    if (log_fd >= 0) {
        close(log_fd);
    }
    if (null_fd >= 0) {
        close(null_fd);
    }
    return rc;
}

enum rc_rc
it_proc_wait(pid_t pid, int timeout_ms, int *status, struct rc_err *err)
{
    struct timespec start;
    struct timespec now;
    struct timespec pause = {0, 5 * 1000 * 1000};

    clock_gettime(CLOCK_MONOTONIC, &start);
    for (;;) {
        int st = 0;
        pid_t r = waitpid(pid, &st, WNOHANG);
        if (r == pid) {
            reg_remove(pid);
            if (status != NULL) {
                *status = st;
            }
            return RC_OK;
        }
        if (r < 0 && errno != EINTR) {
            return rc_err_sys(err, "waitpid %ld", (long)pid);
        }
        clock_gettime(CLOCK_MONOTONIC, &now);
        int64_t elapsed_ms =
            (int64_t)(now.tv_sec - start.tv_sec) * 1000 + (now.tv_nsec - start.tv_nsec) / 1000000;
        if (elapsed_ms >= timeout_ms) {
            return rc_err_set(err, RC_EUNAVAIL, "pid %ld still running after %d ms", (long)pid,
                              timeout_ms);
        }
        nanosleep(&pause, NULL);
    }
}

void
it_proc_describe(int status, char *out, size_t len)
{
    if (WIFEXITED(status)) {
        snprintf(out, len, "exit %d", WEXITSTATUS(status));
    } else if (WIFSIGNALED(status)) {
        snprintf(out, len, "signal %d (%s)", WTERMSIG(status), strsignal(WTERMSIG(status)));
    } else {
        snprintf(out, len, "status 0x%x", (unsigned)status);
    }
}
