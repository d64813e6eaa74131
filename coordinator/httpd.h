/* SPDX-License-Identifier: MIT
 * httpd: the operator's HTTP endpoint (METRICS_ADDR): GET /metrics (Prometheus text),
 * /healthz (the process answers) and /readyz (Redis and Kafka reachable). Served by
 * libmicrohttpd on a thread of its own that only reads the metrics, so a slow scraper never
 * holds up the loop. */
#ifndef RC_HTTPD_H
#define RC_HTTPD_H

#include "common/rc_err.h"

struct httpd; /* opaque */
struct metrics;

/* Listen on `addr` ("host:port", "[v6]:port"; a name is resolved) and serve `m` (borrowed;
 * it must outlive the server). RC_EINVAL when the address cannot be resolved, RC_ESYS when
 * it cannot be bound (err says why). *out written on RC_OK only. */
enum rc_rc httpd_start(struct httpd **out, const char *addr, struct metrics *m, struct rc_err *err);
/* Stop serving and free. NULL is a no-op. */
void httpd_stop(struct httpd *h);

#endif /* RC_HTTPD_H */
