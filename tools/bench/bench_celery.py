#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""bench_celery: the Celery peer of tools/bench (issue 5). The four phases as no-op tasks,
each on its own queue, chained per research; Redis (a unix socket, $BENCH_CELERY_REDIS) is
both broker and result backend.

Two roles:
- the Celery app, for the workers the driver starts:
      python3 -m celery -A bench_celery worker -Q design --pool=solo ...
- the client, which the driver runs as `bench_celery.py client` and talks to over a pipe:
  it prints `ready` once a warm-up chain went through every queue, then reads commands
  (`lowload K`, `throughput N`, `quit`) and answers each with one line
  `result key=value ...` (times in ms, `nan` when there is no sample). The driver reads the
  CPU time of every process before it sends a command and after the answer.

Each task only takes two timestamps (its start, and its end just before it returns) and
appends them to what the previous task returned, so the final result carries the submit
time and the eight task times: hand-off = start of a task - end of the one before, as
tools/bench measures the coordinator (completion produced -> next dispatch received).
Needs Debian's python3-celery (5.2) and python3-redis: run it with /usr/bin/python3.
"""

import json
import math
import os
import sys
import time
from datetime import datetime, timezone

from celery import Celery, chain

SOCKET = os.environ.get("BENCH_CELERY_REDIS", "/tmp/bench-celery-redis.sock")
URL = "redis+socket://" + SOCKET
QUEUES = ("design", "training", "backtest", "assessment")
WARMUP_SEQUENTIAL = 3
POLL_S = 0.005  # between looks at the results of a throughput run
CHUNK = 1000  # result keys per EXISTS / MGET

app = Celery("bench_celery", broker=URL, backend=URL)
app.conf.update(
    task_routes={"bench_celery." + q: {"queue": q} for q in QUEUES},
    # Defaults otherwise (json, prefetch multiplier 4, acks early, results kept a day): what
    # a user gets. Results of a run live an hour here, so reruns do not pile them up.
    result_expires=3600,
    worker_hijack_root_logger=False,
    broker_connection_retry_on_startup=True,
)


@app.task(name="bench_celery.design")
def design(submitted):
    start = time.time()
    return [submitted, start, time.time()]


@app.task(name="bench_celery.training")
def training(prev):
    start = time.time()
    return prev + [start, time.time()]


@app.task(name="bench_celery.backtest")
def backtest(prev):
    start = time.time()
    return prev + [start, time.time()]


@app.task(name="bench_celery.assessment")
def assessment(prev):
    start = time.time()
    return prev + [start, time.time()]


def research():
    """One research: the four phases chained, submitted now."""
    return chain(design.s(time.time()), training.s(), backtest.s(), assessment.s()).apply_async()


def pct(values, p):
    """Nearest rank, as tools/bench_lat.c: NaN when empty."""
    if not values:
        return math.nan
    v = sorted(values)
    rank = math.ceil(p / 100.0 * len(v))
    return v[max(rank, 1) - 1]


def unix_s(date_done):
    """Celery 5.2 stores date_done as naive UTC isoformat."""
    if isinstance(date_done, datetime):
        d = date_done
    else:
        d = datetime.fromisoformat(date_done)
    if d.tzinfo is None:
        d = d.replace(tzinfo=timezone.utc)
    return d.timestamp()


class Latencies:
    def __init__(self):
        self.handoff = []
        self.first = []
        self.total = []

    def add(self, times, done_s):
        """times: [submitted, start, end] * 4 phases, flattened as the tasks built it."""
        if not isinstance(times, list) or len(times) != 9:
            return False
        for k in (1, 2, 3):
            self.handoff.append((times[1 + 2 * k] - times[2 * k]) * 1000.0)
        self.first.append((times[1] - times[0]) * 1000.0)
        self.total.append((done_s - times[0]) * 1000.0)
        return True

    def fields(self):
        out = {}
        for name, values in (("handoff", self.handoff), ("first", self.first),
                             ("total", self.total)):
            out[name + "_n"] = len(values)
            out[name + "_p50_ms"] = pct(values, 50)
            out[name + "_p99_ms"] = pct(values, 99)
        return out


def answer(fields):
    words = []
    for k, v in fields.items():
        if isinstance(v, float):
            words.append("%s=%s" % (k, "nan" if math.isnan(v) else "%.6f" % v))
        else:
            words.append("%s=%s" % (k, v))
    sys.stdout.write("result " + " ".join(words) + "\n")
    sys.stdout.flush()


def lowload(n):
    """One chain at a time, after a few unmeasured ones."""
    lat = Latencies()
    completed = 0
    for i in range(WARMUP_SEQUENTIAL + n):
        res = research()
        times = res.get(timeout=60)
        if i < WARMUP_SEQUENTIAL:
            continue
        if lat.add(times, unix_s(res.date_done)):
            completed += 1
    fields = {"n": n, "completed": completed}
    fields.update(lat.fields())
    answer(fields)


def throughput(n, rconn):
    """n chains submitted at once; wait until every final result is stored."""
    results = []
    first_submit = time.time()
    for _ in range(n):
        results.append(research())
    burst = time.time() - first_submit
    keys = ["celery-task-meta-" + r.id for r in results]
    # Wait: chunks complete roughly in submission order, so only the first unfinished chunk
    # and those after it are looked at again.
    chunks = [keys[i:i + CHUNK] for i in range(0, len(keys), CHUNK)]
    done = 0
    deadline = time.time() + 60 + n * 0.2
    while done < len(chunks):
        if time.time() > deadline:
            answer({"n": n, "error": "timeout"})
            return
        while done < len(chunks) and rconn.exists(*chunks[done]) == len(chunks[done]):
            done += 1
        if done < len(chunks):
            time.sleep(POLL_S)
    lat = Latencies()
    completed = failed = 0
    last_done = first_submit
    for chunk in chunks:
        for raw in rconn.mget(chunk):
            meta = json.loads(raw)
            done_s = unix_s(meta["date_done"])
            last_done = max(last_done, done_s)
            if meta.get("status") == "SUCCESS" and lat.add(meta.get("result"), done_s):
                completed += 1
            else:
                failed += 1
    fields = {"n": n, "completed": completed, "failed": failed,
              "seconds": last_done - first_submit, "burst_s": burst}
    fields.update(lat.fields())
    answer(fields)


def client():
    import celery
    import redis

    rconn = redis.Redis(unix_socket_path=SOCKET)
    # Warm up: every queue has a worker and every connection is open.
    for _ in range(WARMUP_SEQUENTIAL):
        research().get(timeout=120)
    sys.stdout.write("ready celery=%s redis=%s\n" % (celery.__version__, redis.__version__))
    sys.stdout.flush()
    for line in sys.stdin:
        words = line.split()
        if not words:
            continue
        if words[0] == "quit":
            break
        if words[0] == "lowload":
            lowload(int(words[1]))
        elif words[0] == "throughput":
            throughput(int(words[1]), rconn)
        else:
            answer({"error": "unknown-command"})


if __name__ == "__main__" and len(sys.argv) > 1 and sys.argv[1] == "client":
    client()
