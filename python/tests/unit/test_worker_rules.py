"""The worker rules of worker.py, stepped without servers: fake Redis and Kafka stand in for
the clients (Worker._bind), everything else runs as in production."""

import threading
import time

import pytest
import redis

from researchcoord import Worker, protocol
from researchcoord.worker import SeenIds


class FakeRedis:
    def __init__(self):
        self.hashes = {}
        self.zsets = {}
        self.down = False
        self.wrongtype = set()

    def hget(self, key, field):
        if self.down:
            raise redis.exceptions.ConnectionError("down")
        if key in self.wrongtype:
            raise redis.exceptions.ResponseError("WRONGTYPE Operation against a key holding "
                                                 "the wrong kind of value")
        return self.hashes.get(key, {}).get(field)

    def pipeline(self, transaction=True):
        return FakePipe(self)


class FakePipe:
    def __init__(self, r):
        self.r, self.ops = r, []

    def hset(self, key, mapping):
        self.ops.append(("hset", key, mapping))

    def hdel(self, key, *fields):
        self.ops.append(("hdel", key, fields))

    def zadd(self, key, mapping):
        self.ops.append(("zadd", key, mapping))

    def execute(self):
        if self.r.down:
            raise redis.exceptions.ConnectionError("down")
        for op, key, arg in self.ops:
            if op == "hset":
                self.r.hashes.setdefault(key, {}).update(arg)
            elif op == "hdel":
                for f in arg:
                    self.r.hashes.get(key, {}).pop(f, None)
            else:
                self.r.zsets.setdefault(key, {}).update(arg)


class FakeProducer:
    def __init__(self):
        self.sent = []       # (topic, key, decoded completion)
        self.callbacks = []  # delivery callbacks not yet served

    def produce(self, topic, value, key, on_delivery):
        self.sent.append((topic, key, protocol.decode_completion(value)))
        self.callbacks.append(on_delivery)

    def poll(self, _timeout=0):
        cbs, self.callbacks = self.callbacks, []
        for cb in cbs:
            cb(None, None)

    def flush(self, _timeout=0):
        self.poll()

    def fail_all(self):
        cbs, self.callbacks = self.callbacks, []
        for cb in cbs:
            cb("broker down", None)


class FakeMessage:
    def __init__(self, value):
        self._v = value

    def error(self):
        return None

    def value(self):
        return self._v

    def topic(self):
        return "research.dispatch.training"

    def partition(self):
        return 0

    def offset(self):
        return 0


@pytest.fixture
def rig():
    r, prod = FakeRedis(), FakeProducer()
    gate = threading.Event()
    started = []

    w = Worker("training", worker_id="tr", count=2, config=None, host="h1", labels={"gpu": "a"})

    @w.handler
    def train(job):
        started.append(job)
        if (job.options or {}).get("wait"):
            while not gate.is_set() and job.sleep(0.01):
                pass
        if (job.options or {}).get("bad"):
            return {"accuracy": "high"}
        job.progress(0.5, "half")
        return {"accuracy": 0.7}

    w._bind(producer=prod, redis=r)
    return w, r, prod, gate, started


def research(r, rid, did):
    r.hashes[protocol.key_research("rc:", rid)] = {"dispatch_id": did}


def send(w, msg):
    w._on_message(FakeMessage(msg))


def dispatch(rid="rs-1", wid="tr-1", attempt=1, options=None, wt="training"):
    did = "%s:%s:%d" % (rid, protocol.PHASE_OF[wt], attempt)
    return did, protocol.encode_dispatch(did, rid, wid, wt, attempt,
                                         {"strategy_name": "s", "strategy_path": None,
                                          "options": options})


def turn(w, poll=True):
    """One loop turn without Kafka's consumer (poll: serve delivery reports, all good)."""
    w._check_pending()
    w._take_outcomes()
    if poll:
        w._producer.poll(0)
    w._resend(force=True)


def until(cond, w=None, timeout=3, poll=True):
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, "condition not met"
        if w is not None:
            turn(w, poll)
        time.sleep(0.005)


def hb(r, wid):
    return r.hashes.get(protocol.key_worker("rc:", wid), {})


def test_seen_ids_are_bounded():
    s = SeenIds(maxlen=3)
    for i in range(5):
        s.add("d%d" % i)
    assert len(s) == 3 and "d0" not in s and "d4" in s


def test_count_names_slots_and_ids_are_checked():
    assert Worker("design", worker_id="d", count=3).worker_ids == ["d-1", "d-2", "d-3"]
    assert Worker("design", worker_id="d").worker_ids == ["d"]
    with pytest.raises(ValueError, match="worker_id"):
        Worker("design", worker_id="bad id")
    with pytest.raises(ValueError, match="worker_type"):
        Worker("painter", worker_id="p")


def test_runs_a_current_dispatch_completion_first_then_idle(rig):
    w, r, prod, gate, started = rig
    w._write_beats()
    assert hb(r, "tr-1")["state"] == "idle" and hb(r, "tr-2")["state"] == "idle"
    assert hb(r, "tr-1")["host"] == "h1" and hb(r, "tr-1")["labels"] == "gpu=a"
    assert set(r.zsets["rc:workers:training"]) == {"tr-1", "tr-2"}
    did, wire = dispatch(options={"wait": True})
    research(r, "rs-1", did)
    send(w, wire)
    turn(w)
    assert hb(r, "tr-1")["state"] == "busy" and hb(r, "tr-1")["dispatch_id"] == did
    assert hb(r, "tr-2")["state"] == "idle"
    assert started[0].options == {"wait": True}
    gate.set()
    until(lambda: not w._done.empty())  # the outcome waits for run()'s turn
    assert prod.sent == []
    w._take_outcomes()
    topic, key, c = prod.sent[0]
    assert topic == "research.completions" and key == b"rs-1"
    assert (c["status"], c["worker_id"], c["result"]) == ("completed", "tr-1", {"accuracy": 0.7})
    w._write_beats()
    assert hb(r, "tr-1")["state"] == "busy"  # not acknowledged yet: still names it
    assert hb(r, "tr-1")["dispatch_id"] == did
    prod.poll()
    w._write_beats()
    assert hb(r, "tr-1")["state"] == "idle" and hb(r, "tr-1")["dispatch_id"] == ""
    # delivered again (at least once): ignored
    send(w, wire)
    turn(w)
    time.sleep(0.05)
    assert len(started) == 1


def test_failed_delivery_is_produced_again_still_busy(rig):
    w, r, prod, gate, started = rig
    did, wire = dispatch()
    research(r, "rs-1", did)
    send(w, wire)
    until(lambda: prod.sent, w, poll=False)
    prod.fail_all()
    w._write_beats()
    assert hb(r, "tr-1")["state"] == "busy"
    w._resend(force=True)
    assert len(prod.sent) == 2 and prod.sent[1][2]["dispatch_id"] == did
    prod.poll()
    w._write_beats()
    assert hb(r, "tr-1")["state"] == "idle"


def test_messages_for_others_and_stale_dispatches_are_ignored(rig):
    w, r, prod, gate, started = rig
    did, wire = dispatch(wid="someone-else")
    research(r, "rs-1", did)
    send(w, wire)
    did2, wire2 = dispatch(rid="rs-2")
    research(r, "rs-2", "rs-2:training:2")  # it moved on
    send(w, wire2)
    _, wire3 = dispatch(rid="rs-3", wt="backtest")  # not our type
    send(w, wire3)
    send(w, b"\x93junk")  # invalid: skipped
    turn(w)
    time.sleep(0.05)
    assert started == [] and prod.sent == []
    assert did2 in w.slots[0].seen


def test_wrongtype_research_key_drops_the_dispatch(rig):
    w, r, prod, gate, started = rig
    did, wire = dispatch()
    r.wrongtype.add(protocol.key_research("rc:", "rs-1"))
    send(w, wire)
    turn(w)
    assert w.slots[0].pending == [] and did in w.slots[0].seen and started == []


def test_dispatch_kept_while_redis_is_down_then_run(rig):
    w, r, prod, gate, started = rig
    did, wire = dispatch()
    research(r, "rs-1", did)
    r.down = True
    send(w, wire)
    turn(w)
    assert [d["dispatch_id"] for d in w.slots[0].pending] == [did] and started == []
    r.down = False
    w._check_retry_at = 0
    until(lambda: prod.sent, w)
    assert prod.sent[0][2]["status"] == "completed"


def test_abort_of_a_pending_dispatch_means_it_never_starts(rig):
    w, r, prod, gate, started = rig
    did, wire = dispatch()
    research(r, "rs-1", did)
    r.down = True
    send(w, wire)
    turn(w)
    send(w, protocol.encode_abort(did, "rs-1", "tr-1"))
    r.down = False
    w._check_retry_at = 0
    turn(w)
    send(w, wire)  # should it come again
    turn(w)
    time.sleep(0.05)
    assert started == [] and prod.sent == []


def test_abort_of_the_running_dispatch_publishes_nothing_and_idles(rig):
    w, r, prod, gate, started = rig
    did, wire = dispatch(options={"wait": True})
    research(r, "rs-1", did)
    send(w, wire)
    turn(w)
    assert hb(r, "tr-1")["state"] == "busy"
    job = started[0]
    send(w, protocol.encode_abort(did, "rs-1", "tr-1", "cancelled"))
    assert job.cancelled
    w._write_beats()
    assert hb(r, "tr-1")["state"] == "idle" and hb(r, "tr-1")["dispatch_id"] == ""
    time.sleep(0.05)
    turn(w)
    assert prod.sent == []


def test_bad_result_is_published_as_failed_with_the_reason(rig):
    w, r, prod, gate, started = rig
    did, wire = dispatch(options={"bad": True})
    research(r, "rs-1", did)
    send(w, wire)
    until(lambda: prod.sent, w)
    c = prod.sent[0][2]
    assert c["status"] == "failed"
    assert c["error"] == "bad result: training: accuracy: must be a number"


def test_busy_slot_ignores_another_dispatch_other_slot_takes_its_own(rig):
    w, r, prod, gate, started = rig
    did, wire = dispatch(options={"wait": True})
    research(r, "rs-1", did)
    send(w, wire)
    turn(w)
    did2, wire2 = dispatch(rid="rs-2", options={"wait": True})
    research(r, "rs-2", did2)
    send(w, wire2)  # to tr-1, busy
    did3, wire3 = dispatch(rid="rs-3", wid="tr-2", options={"wait": True})
    research(r, "rs-3", did3)
    send(w, wire3)
    turn(w)
    assert [j.dispatch_id for j in started] == [did, did3]
    assert did2 in w.slots[0].seen
    gate.set()
    until(lambda: len(prod.sent) == 2, w)


def test_drain_releases_what_runs_past_the_grace(rig):
    w, r, prod, gate, started = rig
    w.shutdown_grace = 0.05
    did, wire = dispatch(options={"wait": True})
    research(r, "rs-1", did)
    send(w, wire)
    turn(w)

    class NoConsumer:
        def consume(self, num_messages, timeout):
            time.sleep(timeout)
            return []
    w._bind(consumer=NoConsumer())
    w.stop()
    w._loop()
    w._finish()
    assert started[0].cancelled
    c = prod.sent[0][2]
    assert (c["status"], c["dispatch_id"], c["result"]) == ("released", did, None)
    assert hb(r, "tr-1")["state"] == "draining" and hb(r, "tr-1")["dispatch_id"] == ""
    assert hb(r, "tr-2")["state"] == "draining"


def test_progress_shows_in_the_heartbeat(rig):
    w, r, prod, gate, started = rig
    did, wire = dispatch(options={"wait": True})
    research(r, "rs-1", did)
    send(w, wire)
    turn(w)
    started[0].progress(0.25, "epoch 1/4")
    w._write_beats()
    assert hb(r, "tr-1")["progress"] == "0.25" and hb(r, "tr-1")["step"] == "epoch 1/4"
    gate.set()
    until(lambda: prod.sent, w)
    prod.poll()
    w._write_beats()
    assert "progress" not in hb(r, "tr-1") and "step" not in hb(r, "tr-1")


def test_last_seen_always_grows(rig):
    w, r, prod, gate, started = rig
    seen = []
    for _ in range(3):
        w._write_beats()
        seen.append(int(hb(r, "tr-1")["last_seen"]))
    assert seen[0] < seen[1] < seen[2]
    assert r.zsets["rc:workers:training"]["tr-1"] == seen[2]


def test_draining_hands_back_a_dispatch_that_still_arrives(rig):
    w, r, prod, gate, started = rig
    w._draining = True
    did, wire = dispatch()
    research(r, "rs-1", did)
    send(w, wire)
    turn(w)
    assert started == []
    c = prod.sent[0][2]
    assert (c["status"], c["dispatch_id"], c["worker_id"]) == ("released", did, "tr-1")
    w._write_beats()
    assert hb(r, "tr-1")["state"] == "draining"
