/* SPDX-License-Identifier: MIT
 * tcpproxy: a TCP forwarder for failover tests, a "virtual address" whose target (read from a
 * file) moves on SIGHUP (old sessions kept) or SIGUSR1 (old sessions dropped). Test
 * infrastructure only: one thread, poll(2), plain POSIX, no project libraries. */
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define PROXY_MAX_CONNS 256
#define PROXY_BUF_CAP (64 * 1024)
#define PROXY_POLL_MS 50 /* bounds how late a signal is acted on if it lands just before poll */

enum { EXIT_USAGE = 64, EXIT_CONFIG = 78 };

/* What the signals ask for, in increasing strength: a stronger request includes the weaker
 * ones, so one flag keeping the strongest pending request loses nothing. */
enum action { ACT_NONE, ACT_RELOAD, ACT_RELOAD_DROP, ACT_STOP };

static volatile sig_atomic_t pending_action;

struct endpoint {
    struct sockaddr_storage addr;
    socklen_t addr_len;
    char name[256]; /* "host:port" as given, for messages */
};

/* Side 0 is the client, side 1 the target. buf[s] holds bytes read from fd[s] that are not yet
 * written to fd[1 - s]; reading fd[s] stops while buf[s] is full (backpressure). */
struct conn {
    int fd[2];
    bool connecting; /* the target's non-blocking connect has not completed yet */
    size_t len[2];
    char buf[2][PROXY_BUF_CAP];
};

struct proxy {
    int listen_fd;
    struct endpoint target;
    const char *target_file;
    struct conn *conns[PROXY_MAX_CONNS]; /* NULL: free slot */
    size_t n_conns;
};

static void
on_signal(int sig)
{
    int want = sig == SIGHUP ? ACT_RELOAD : sig == SIGUSR1 ? ACT_RELOAD_DROP : ACT_STOP;
    /* Safe read-modify-write: sa_mask blocks the other handled signals while this runs, and
     * take_action blocks them while it reads and clears. */
    if (want > pending_action) {
        pending_action = want;
    }
}

static int
install_signals(sigset_t *handled)
{
    const int sigs[] = {SIGHUP, SIGUSR1, SIGTERM, SIGINT};
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sigemptyset(handled);
    for (size_t i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++) {
        sigaddset(handled, sigs[i]);
    }
    sa.sa_mask = *handled;
    sa.sa_handler = on_signal; /* no SA_RESTART: a signal interrupts poll at once */
    for (size_t i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++) {
        if (sigaction(sigs[i], &sa, NULL) != 0) {
            return -1;
        }
    }
    sigemptyset(&sa.sa_mask);
    sa.sa_handler = SIG_IGN; /* a peer gone mid-write is EPIPE, handled like any close */
    return sigaction(SIGPIPE, &sa, NULL);
}

static enum action
take_action(const sigset_t *handled)
{
    sigset_t old;
    sigprocmask(SIG_BLOCK, handled, &old);
    enum action a = (enum action)pending_action;
    pending_action = ACT_NONE;
    sigprocmask(SIG_SETMASK, &old, NULL);
    return a;
}

/* Resolve "host:port" (the port is after the last ':'). 0, or -1 with a message. */
static int
endpoint_parse(struct endpoint *out, const char *text, bool passive)
{
    char host[256];
    const char *colon = strrchr(text, ':');
    size_t host_len = colon ? (size_t)(colon - text) : 0;
    if (!colon || host_len == 0 || host_len >= sizeof(host) || colon[1] == '\0') {
        fprintf(stderr, "tcpproxy: '%s' is not host:port\n", text);
        return -1;
    }
    memcpy(host, text, host_len);
    host[host_len] = '\0';
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICSERV};
    hints.ai_flags |= passive ? AI_PASSIVE : 0;
    struct addrinfo *res = NULL;
    int gai = getaddrinfo(host, colon + 1, &hints, &res);
    if (gai != 0) {
        fprintf(stderr, "tcpproxy: %s: %s\n", text, gai_strerror(gai));
        return -1;
    }
    memcpy(&out->addr, res->ai_addr, res->ai_addrlen);
    out->addr_len = res->ai_addrlen;
    snprintf(out->name, sizeof(out->name), "%s", text);
    freeaddrinfo(res);
    return 0;
}

/* Read the one "host:port" line of `path` into *out; *out is kept as it was on failure. */
static int
target_load(struct endpoint *out, const char *path)
{
    char line[300];
    FILE *f = fopen(path, "r");
    if (!f) {
        fprintf(stderr, "tcpproxy: %s: %s\n", path, strerror(errno));
        return -1;
    }
    bool ok = fgets(line, sizeof(line), f) != NULL;
    fclose(f);
    if (!ok) {
        fprintf(stderr, "tcpproxy: %s: empty\n", path);
        return -1;
    }
    line[strcspn(line, " \t\r\n")] = '\0';
    struct endpoint ep;
    if (endpoint_parse(&ep, line, false) != 0) {
        return -1;
    }
    *out = ep;
    fprintf(stderr, "tcpproxy: target %s\n", out->name);
    return 0;
}

/* A failed read or write that only means "not now". */
static bool
is_transient(void)
{
    return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR;
}

static int
set_nonblocking(int fd)
{
    int flags = fcntl(fd, F_GETFL);
    int one = 1;
    /* Redis traffic is small request/reply: Nagle would only add latency. Fails harmlessly on
     * non-TCP sockets. */
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    return flags < 0 ? -1 : fcntl(fd, F_SETFL, flags | O_NONBLOCK);
}

static int
listen_open(const struct endpoint *ep, const char *port_file)
{
    int one = 1;
    int fd = socket(ep->addr.ss_family, SOCK_STREAM, 0);
    struct sockaddr_storage bound;
    socklen_t bound_len = sizeof(bound);
    if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0 ||
        bind(fd, (const struct sockaddr *)&ep->addr, ep->addr_len) != 0 || listen(fd, 64) != 0 ||
        set_nonblocking(fd) != 0 || getsockname(fd, (struct sockaddr *)&bound, &bound_len) != 0) {
        fprintf(stderr, "tcpproxy: listen on %s: %s\n", ep->name, strerror(errno));
        goto fail;
    }
    int port = ntohs(bound.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&bound)->sin6_port
                                                 : ((struct sockaddr_in *)&bound)->sin_port);
    if (port_file) {
        /* Written to a temporary name and renamed, so a reader never sees a partial number. */
        char tmp[4096];
        if (snprintf(tmp, sizeof(tmp), "%s.tmp", port_file) >= (int)sizeof(tmp)) {
            fprintf(stderr, "tcpproxy: %s: path too long\n", port_file);
            goto fail;
        }
        FILE *f = fopen(tmp, "w");
        bool ok = f && fprintf(f, "%d\n", port) > 0;
        if (f && fclose(f) != 0) {
            ok = false;
        }
        if (!ok || rename(tmp, port_file) != 0) {
            fprintf(stderr, "tcpproxy: %s: %s\n", port_file, strerror(errno));
            goto fail;
        }
    }
    fprintf(stderr, "tcpproxy: listening on port %d\n", port);
    return fd;
fail:
    if (fd >= 0) {
        close(fd);
    }
    return -1;
}

static void
conn_close(struct proxy *px, size_t slot)
{
    struct conn *c = px->conns[slot];
    for (int s = 0; s < 2; s++) {
        if (c->fd[s] >= 0) {
            close(c->fd[s]);
        }
    }
    free(c);
    px->conns[slot] = NULL;
    px->n_conns--;
}

static void
drop_all(struct proxy *px)
{
    for (size_t i = 0; i < PROXY_MAX_CONNS; i++) {
        if (px->conns[i]) {
            conn_close(px, i);
        }
    }
}

/* Accept one client and start connecting it to the current target; an unreachable target
 * closes the client at once. */
static void
accept_one(struct proxy *px)
{
    int cfd = accept(px->listen_fd, NULL, NULL);
    if (cfd < 0) {
        if (!is_transient() && errno != ECONNABORTED) {
            fprintf(stderr, "tcpproxy: accept: %s\n", strerror(errno));
        }
        return;
    }
    struct conn *c = calloc(1, sizeof(*c));
    int tfd = socket(px->target.addr.ss_family, SOCK_STREAM, 0);
    if (!c || tfd < 0 || set_nonblocking(cfd) != 0 || set_nonblocking(tfd) != 0) {
        fprintf(stderr, "tcpproxy: new connection: %s\n", strerror(errno));
        goto fail;
    }
    int rc = connect(tfd, (const struct sockaddr *)&px->target.addr, px->target.addr_len);
    if (rc != 0 && errno != EINPROGRESS) {
        fprintf(stderr, "tcpproxy: connect %s: %s\n", px->target.name, strerror(errno));
        goto fail;
    }
    c->fd[0] = cfd;
    c->fd[1] = tfd;
    c->connecting = rc != 0;
    for (size_t i = 0; i < PROXY_MAX_CONNS; i++) {
        if (!px->conns[i]) {
            px->conns[i] = c;
            px->n_conns++;
            return;
        }
    }
fail: /* also when no slot is free, though poll skips the listener then */
    free(c);
    close(cfd);
    if (tfd >= 0) {
        close(tfd);
    }
}

/* Fill the poll entries of one connection (p[0] client, p[1] target). */
static void
conn_events(const struct conn *c, struct pollfd *p)
{
    for (int s = 0; s < 2; s++) {
        p[s].fd = c->fd[s];
        p[s].events = 0;
        if (c->connecting) {
            continue;
        }
        if (c->len[s] < PROXY_BUF_CAP) {
            p[s].events |= POLLIN;
        }
        if (c->len[1 - s] > 0) {
            p[s].events |= POLLOUT;
        }
    }
    if (c->connecting) {
        p[1].events = POLLOUT;
    }
}

/* Move bytes as poll reported. Returns false when the connection must be closed: either side
 * closed or failed (half-close is not modelled: one side gone closes both). */
static bool
conn_step(struct conn *c, const struct pollfd *p, const char *target_name)
{
    if (c->connecting) {
        if (!(p[1].revents & (POLLOUT | POLLERR | POLLHUP))) {
            return true;
        }
        int err = 0;
        socklen_t err_len = sizeof(err);
        if (getsockopt(c->fd[1], SOL_SOCKET, SO_ERROR, &err, &err_len) != 0 || err != 0) {
            fprintf(stderr, "tcpproxy: connect %s: %s\n", target_name, strerror(err ? err : errno));
            return false;
        }
        c->connecting = false;
        return true;
    }
    for (int s = 0; s < 2; s++) {
        /* Writes first, so that data read before an EOF still reaches the peer. */
        size_t *out_len = &c->len[1 - s];
        if (p[s].revents & POLLOUT) {
            ssize_t n = write(c->fd[s], c->buf[1 - s], *out_len);
            if (n < 0 && !is_transient()) {
                return false;
            }
            if (n > 0) {
                memmove(c->buf[1 - s], c->buf[1 - s] + n, *out_len - (size_t)n);
                *out_len -= (size_t)n;
            }
        }
    }
    for (int s = 0; s < 2; s++) {
        if (p[s].revents & POLLIN) {
            ssize_t n = read(c->fd[s], c->buf[s] + c->len[s], PROXY_BUF_CAP - c->len[s]);
            if (n == 0 || (n < 0 && !is_transient())) {
                return false;
            }
            c->len[s] += n > 0 ? (size_t)n : 0;
        } else if (p[s].revents & (POLLERR | POLLHUP | POLLNVAL)) {
            return false;
        }
    }
    return true;
}

/* One poll round: p[0] is the listener, p[1 + 2 * slot] and the next the slot's two sockets. */
static int
proxy_poll(struct proxy *px)
{
    struct pollfd p[1 + 2 * PROXY_MAX_CONNS];
    p[0].fd = px->listen_fd;
    p[0].events = px->n_conns < PROXY_MAX_CONNS ? POLLIN : 0;
    for (size_t i = 0; i < PROXY_MAX_CONNS; i++) {
        struct pollfd *q = &p[1 + 2 * i];
        if (px->conns[i]) {
            conn_events(px->conns[i], q);
        } else {
            q[0].fd = q[1].fd = -1; /* poll ignores negative fds */
            q[0].events = q[1].events = 0;
        }
    }
    if (poll(p, sizeof(p) / sizeof(p[0]), PROXY_POLL_MS) < 0) {
        return errno == EINTR ? 0 : -1;
    }
    for (size_t i = 0; i < PROXY_MAX_CONNS; i++) {
        if (px->conns[i] && !conn_step(px->conns[i], &p[1 + 2 * i], px->target.name)) {
            conn_close(px, i);
        }
    }
    if (p[0].revents & POLLIN) {
        accept_one(px);
    }
    return 0;
}

static void
usage(FILE *out)
{
    fprintf(out, "usage: tcpproxy --listen HOST:PORT --target-file PATH [--port-file PATH]\n"
                 "Forward each connection to the host:port read from PATH (PORT 0: any free\n"
                 "port, written to --port-file). SIGHUP re-reads the target; SIGUSR1 also\n"
                 "drops open connections; SIGTERM/SIGINT exit.\n");
}

int
main(int argc, char **argv)
{
    const char *listen_arg = NULL, *port_file = NULL;
    struct proxy px = {.listen_fd = -1};
    for (int i = 1; i < argc; i++) {
        const char **dst = strcmp(argv[i], "--listen") == 0        ? &listen_arg
                           : strcmp(argv[i], "--target-file") == 0 ? &px.target_file
                           : strcmp(argv[i], "--port-file") == 0   ? &port_file
                                                                   : NULL;
        if (strcmp(argv[i], "--help") == 0) {
            usage(stdout);
            return 0;
        }
        if (!dst || i + 1 == argc) {
            fprintf(stderr, "tcpproxy: %s '%s'\n", dst ? "missing argument to" : "unknown option",
                    argv[i]);
            usage(stderr);
            return EXIT_USAGE;
        }
        *dst = argv[++i];
    }
    if (!listen_arg || !px.target_file) {
        usage(stderr);
        return EXIT_USAGE;
    }

    struct endpoint listen_ep;
    sigset_t handled;
    if (endpoint_parse(&listen_ep, listen_arg, true) != 0) {
        return EXIT_USAGE;
    }
    if (target_load(&px.target, px.target_file) != 0) {
        return EXIT_CONFIG;
    }
    if (install_signals(&handled) != 0) {
        fprintf(stderr, "tcpproxy: sigaction: %s\n", strerror(errno));
        return EXIT_FAILURE;
    }
    px.listen_fd = listen_open(&listen_ep, port_file);
    if (px.listen_fd < 0) {
        return EXIT_FAILURE;
    }

    int rc = EXIT_SUCCESS;
    for (;;) {
        enum action a = take_action(&handled);
        if (a == ACT_STOP) {
            break;
        }
        if (a >= ACT_RELOAD) {
            /* A bad file keeps the old target: the test sees the message on stderr. */
            target_load(&px.target, px.target_file);
        }
        if (a == ACT_RELOAD_DROP) {
            drop_all(&px);
        }
        if (proxy_poll(&px) != 0) {
            fprintf(stderr, "tcpproxy: poll: %s\n", strerror(errno));
            rc = EXIT_FAILURE;
            break;
        }
    }
    drop_all(&px);
    close(px.listen_fd);
    return rc;
}
