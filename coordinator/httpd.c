/* SPDX-License-Identifier: MIT
 * httpd: /metrics, /healthz and /readyz over libmicrohttpd. */
#include "coordinator/httpd.h"

#include <netdb.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <microhttpd.h>

#include "common/buf.h"
#include "common/xalloc.h"
#include "coordinator/metrics.h"

/* So that no client can starve /healthz (whose failing gets the coordinator restarted): one
 * address holds at most 16 connections (a scraper or a probe needs one or two), so 32 greedy
 * clients fit under the total of 512; a connection idle for 3 s is dropped (a request of ours
 * is answered in well under a millisecond, and Prometheus reconnects when its keep-alive
 * connection was closed), so connections opened and left silent are held 3 s at most.
 * Requests are a line and a few headers: 8 KiB per connection (MHD's default is 32 KiB)
 * bounds the worst case, every connection taken, to 4 MiB. 512 descriptors, with Kafka's and
 * Redis's, stay under even the default soft limit of 1024 open files. */
#define HTTPD_CONNECTIONS_MAX 512u
#define HTTPD_CONNECTIONS_PER_IP_MAX 16u
#define HTTPD_IDLE_TIMEOUT_S 3u
#define HTTPD_CONNECTION_MEMORY_BYTES ((size_t)8 * 1024)

struct httpd {
    struct MHD_Daemon *daemon;
    struct metrics *metrics;
};

static enum MHD_Result
reply(struct MHD_Connection *c, unsigned status, const char *type, const char *body, size_t len)
{
    struct MHD_Response *r =
        MHD_create_response_from_buffer(len, (void *)(uintptr_t)body, MHD_RESPMEM_MUST_COPY);
    if (r == NULL) {
        return MHD_NO;
    }
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, type);
    enum MHD_Result ok = MHD_queue_response(c, status, r);
    MHD_destroy_response(r);
    return ok;
}

static enum MHD_Result
serve(void *cls, struct MHD_Connection *c, const char *url, const char *method,
      const char *version, const char *upload, size_t *upload_len, void **state)
{
    (void)version;
    (void)upload;
    (void)upload_len;
    (void)state;
    struct httpd *h = cls;
    static const char text[] = "text/plain; charset=utf-8";
    if (strcmp(method, MHD_HTTP_METHOD_GET) != 0 && strcmp(method, MHD_HTTP_METHOD_HEAD) != 0) {
        static const char no[] = "only GET\n";
        return reply(c, MHD_HTTP_METHOD_NOT_ALLOWED, text, no, sizeof(no) - 1);
    }
    if (strcmp(url, "/metrics") == 0) {
        struct buf b = BUF_INIT;
        metrics_render(h->metrics, &b);
        enum MHD_Result ok =
            reply(c, MHD_HTTP_OK, "text/plain; version=0.0.4; charset=utf-8", b.data, b.len);
        buf_release(&b);
        return ok;
    }
    if (strcmp(url, "/healthz") == 0) {
        static const char ok[] = "ok\n";
        return reply(c, MHD_HTTP_OK, text, ok, sizeof(ok) - 1);
    }
    if (strcmp(url, "/readyz") == 0) {
        const char *why = "";
        bool ready = metrics_ready(h->metrics, &why);
        struct buf b = BUF_INIT;
        buf_printf(&b, "%s: %s\n", ready ? "ready" : "not ready", why);
        enum MHD_Result ok =
            reply(c, ready ? MHD_HTTP_OK : MHD_HTTP_SERVICE_UNAVAILABLE, text, b.data, b.len);
        buf_release(&b);
        return ok;
    }
    static const char nf[] = "not found: try /metrics, /healthz or /readyz\n";
    return reply(c, MHD_HTTP_NOT_FOUND, text, nf, sizeof(nf) - 1);
}

enum rc_rc
httpd_start(struct httpd **out, const char *addr, struct metrics *m, struct rc_err *err)
{
    /* Split "host:port" / "[v6]:port" (cfg has checked the form). */
    const char *colon = strrchr(addr, ':');
    if (colon == NULL) {
        return rc_err_set(err, RC_EINVAL, "METRICS_ADDR: no port in \"%s\"", addr);
    }
    size_t host_len = (size_t)(colon - addr);
    const char *host = addr;
    if (host_len >= 2 && addr[0] == '[') {
        host++;
        host_len -= 2;
    }
    char *name = xstrndup(host, host_len);
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_PASSIVE};
    struct addrinfo *res = NULL;
    int gai = getaddrinfo(name, colon + 1, &hints, &res);
    free(name);
    if (gai != 0 || res == NULL) {
        return rc_err_set(err, RC_EINVAL, "METRICS_ADDR: cannot resolve \"%s\": %s", addr,
                          gai_strerror(gai));
    }
    struct httpd *h = xcalloc(1, sizeof(*h));
    h->metrics = m;
    /* epoll (or poll), never select: select cannot watch a descriptor above 1023, and the
     * coordinator's Kafka and Redis sockets may push ours past it. */
    unsigned flags = MHD_USE_AUTO_INTERNAL_THREAD | MHD_USE_ERROR_LOG;
    if (res->ai_family == AF_INET6) {
        flags |= MHD_USE_IPv6;
    }
    h->daemon = MHD_start_daemon(
        flags, 0, NULL, NULL, serve, h, MHD_OPTION_SOCK_ADDR, res->ai_addr,
        MHD_OPTION_CONNECTION_LIMIT, HTTPD_CONNECTIONS_MAX, MHD_OPTION_PER_IP_CONNECTION_LIMIT,
        HTTPD_CONNECTIONS_PER_IP_MAX, MHD_OPTION_CONNECTION_TIMEOUT, HTTPD_IDLE_TIMEOUT_S,
        MHD_OPTION_CONNECTION_MEMORY_LIMIT, HTTPD_CONNECTION_MEMORY_BYTES, MHD_OPTION_END);
    freeaddrinfo(res);
    if (h->daemon == NULL) {
        free(h);
        return rc_err_set(err, RC_ESYS, "METRICS_ADDR: cannot listen on %s", addr);
    }
    *out = h;
    return RC_OK;
}

void
httpd_stop(struct httpd *h)
{
    if (h == NULL) {
        return;
    }
    MHD_stop_daemon(h->daemon);
    free(h);
}
