"""The integration stack: redis-server (unix socket), devbroker and the coordinator, started
once per module from RC_BIN_DIR, and worker processes per test. Every process is stopped by
its pid in a finalizer, also when a test fails. A missing binary fails the tests (never skips
them)."""

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

import pytest
import redis as redislib

HERE = os.path.dirname(os.path.abspath(__file__))
PY_ROOT = os.path.normpath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, PY_ROOT)

READY_TIMEOUT_S = 30


def wait_for(cond, timeout, what):
    """Poll `cond` until it returns a truthy value (returned), or fail naming `what`."""
    deadline = time.monotonic() + timeout
    while True:
        v = cond()
        if v:
            return v
        if time.monotonic() >= deadline:
            raise AssertionError("timed out after %.1f s waiting for %s" % (timeout, what))
        time.sleep(0.02)


class Proc:
    def __init__(self, name, argv, env, log_path):
        self.name, self.log_path = name, log_path
        self.log = open(log_path, "ab")
        self.p = subprocess.Popen(argv, env=env, stdout=self.log, stderr=subprocess.STDOUT,
                                  stdin=subprocess.DEVNULL)

    @property
    def pid(self):
        return self.p.pid

    def alive(self):
        return self.p.poll() is None

    def signal(self, sig):
        if self.alive():
            os.kill(self.p.pid, sig)

    def stop(self, timeout=15):
        """SIGTERM, then SIGKILL if it does not end in time; returns its exit status."""
        if self.alive():
            self.signal(signal.SIGTERM)
            try:
                self.p.wait(timeout)
            except subprocess.TimeoutExpired:
                self.signal(signal.SIGKILL)
                self.p.wait(5)
        self.log.close()
        return self.p.returncode

    def tail(self, n=40):
        try:
            with open(self.log_path, "rb") as f:
                return b"".join(f.readlines()[-n:]).decode("utf-8", "replace")
        except OSError:
            return ""


def _bin_dir():
    d = os.environ.get("RC_BIN_DIR")
    if not d:
        d = os.path.join(PY_ROOT, "..", "build", "bin")
    d = os.path.abspath(d)
    for b in ("coordinator", "devbroker"):
        if not os.access(os.path.join(d, b), os.X_OK):
            pytest.fail("%s not found in %s (set RC_BIN_DIR to the build's bin dir)" % (b, d))
    return d


def _redis_server():
    for c in (shutil.which("redis-server"), "/usr/bin/redis-server"):
        if c and os.access(c, os.X_OK):
            return c
    pytest.fail("redis-server not found in PATH or /usr/bin")


class Stack:
    def __init__(self):
        self.bin = _bin_dir()
        self.dir = tempfile.mkdtemp(prefix="rc-py-it-")
        self.procs = []
        self.sock = os.path.join(self.dir, "redis.sock")
        self.prefix = "rc:"
        self.env = None

    def start(self, coordinator_env):
        self._start_redis()
        self._start_broker()
        self.env = dict(os.environ)
        for k in list(self.env):
            if k.startswith(("KAFKA_", "REDIS_", "AGENT_")):
                del self.env[k]
        self.env.update(KAFKA_BROKERS=self.bootstrap, KAFKA_TOPIC_PREFIX="research.",
                        KAFKA_PROP_FETCH_WAIT_MAX_MS="5", REDIS_URL="unix://" + self.sock,
                        REDIS_KEY_PREFIX=self.prefix, PYTHONPATH=PY_ROOT)
        env = dict(self.env, **coordinator_env)
        self.coordinator = self.spawn("coordinator", [os.path.join(self.bin, "coordinator")],
                                      env)
        wait_for(lambda: self.redis.hget(self.prefix + "coordinator", "last_cycle_at"),
                 READY_TIMEOUT_S, "the coordinator's first cycle")

    def _start_redis(self):
        self.spawn("redis", [_redis_server(), "--port", "0", "--unixsocket", self.sock,
                             "--unixsocketperm", "700", "--save", "", "--appendonly", "no",
                             "--dir", self.dir])
        self.redis = redislib.Redis(unix_socket_path=self.sock, decode_responses=True)

        def pings():
            try:
                return self.redis.ping()
            except redislib.RedisError:
                return False
        wait_for(pings, READY_TIMEOUT_S, "redis-server")

    def _start_broker(self):
        f = os.path.join(self.dir, "bootstrap")
        self.spawn("devbroker", [os.path.join(self.bin, "devbroker"), "--partitions", "3",
                                 "--bootstrap-file", f])

        def written():
            try:
                with open(f) as fh:
                    return fh.readline().strip()
            except OSError:
                return None
        self.bootstrap = wait_for(written, READY_TIMEOUT_S, "devbroker's bootstrap file")

    def spawn(self, name, argv, env=None):
        p = Proc(name, argv, env if env is not None else self.env,
                 os.path.join(self.dir, "%s-%d.log" % (name, len(self.procs))))
        self.procs.append(p)
        return p

    def stop(self):
        """Stop every process, newest first; then fail if the coordinator or the broker had
        died before, or the coordinator did not exit cleanly on SIGTERM."""
        dead = [p.name for p in self.procs
                if p.name in ("coordinator", "devbroker", "redis") and not p.alive()]
        for p in reversed(self.procs):
            p.stop()
        coord = [p for p in self.procs if p.name == "coordinator"]
        assert not dead, "%s ended during the tests:\n%s" % (", ".join(dead), self.logs())
        assert not coord or coord[0].p.returncode == 0, (
            "the coordinator exited with %s:\n%s" % (coord[0].p.returncode, self.logs()))

    def logs(self):
        return "\n".join("----- %s (%s) -----\n%s" % (p.name, p.log_path, p.tail())
                         for p in self.procs)


@pytest.fixture(scope="module")
def stack(request):
    """The module's stack. Its temp dir (logs, sockets) is removed when the module's tests
    all passed, and kept, and named, when one failed."""
    s = Stack()
    failed_before = request.session.testsfailed

    def down():
        try:
            s.stop()
        finally:
            if request.session.testsfailed == failed_before:
                shutil.rmtree(s.dir, ignore_errors=True)
            else:
                print("integration logs kept in %s" % s.dir)
    request.addfinalizer(down)
    s.start(request.module.COORDINATOR_ENV)
    return s


class Fleet:
    """Worker processes of a test: started with fleet_worker.py, logging to one file."""

    def __init__(self, stack, log_name):
        self.stack = stack
        self.log = os.path.join(stack.dir, log_name)
        self.procs = []

    def start(self, wtype, wid, *args, wait=True):
        argv = [sys.executable, os.path.join(HERE, "fleet_worker.py"), "--type", wtype,
                "--id", wid, "--log", self.log] + list(args)
        p = self.stack.spawn("worker-" + wid, argv)
        self.procs.append(p)
        if wait:
            self.wait_live(wid)
        return p

    def wait_live(self, wid, since_ms=0):
        key = self.stack.prefix + "worker:" + wid

        def live():
            h = self.stack.redis.hgetall(key)
            return h.get("state") == "idle" and int(h.get("last_seen", 0)) > since_ms
        wait_for(live, READY_TIMEOUT_S, "worker %s's first heartbeat" % wid)

    def lines(self):
        try:
            with open(self.log) as f:
                return [json.loads(line) for line in f if line.strip()]
        except OSError:
            return []

    def find(self, **want):
        return [x for x in self.lines() if all(x.get(k) == v for k, v in want.items())]

    def wait_line(self, timeout=20, **want):
        return wait_for(lambda: self.find(**want), timeout, "a log line %r" % (want,))[0]

    def stop(self):
        for p in self.procs:
            p.stop()
