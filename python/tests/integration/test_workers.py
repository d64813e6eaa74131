"""Python workers of all four types against the real coordinator, devbroker and redis-server:
researches run to completion with their options seen by every phase; a cancel reaches a
running handler within a second; SIGTERM releases a running dispatch, which completes on
another worker without using up an attempt; a worker killed and restarted with its id has
its phase sent again; an async handler; a raising handler fails its research alone."""

import signal
import time

import pytest

from conftest import Fleet, wait_for
from researchcoord import Client

COORDINATOR_ENV = {
    "AGENT_POLL_INTERVAL": "0.1",
    "AGENT_WORKER_TIMEOUT": "2",      # the restart test waits this long for dispatch_lost
    "AGENT_DISPATCH_TIMEOUT": "20",
    "AGENT_MAX_CONCURRENT_RESEARCHES": "50",
    "AGENT_DAILY_BUDGET": "0",
}
PHASE_TYPES = ("design", "training", "backtest", "assessment")


@pytest.fixture(scope="module")
def client(stack):
    c = Client(brokers=stack.bootstrap, redis_url="unix://" + stack.sock,
               key_prefix=stack.prefix, topic_prefix="research.")
    yield c
    c.close()


@pytest.fixture(scope="module")
def base(stack, request):
    """design (sync), backtest (sync, two slots) and assessment (async) workers, shared."""
    f = Fleet(stack, "base.jsonl")
    request.addfinalizer(f.stop)
    f.start("design", "py-design", wait=False)
    f.start("backtest", "py-backtest", "--count", "2", wait=False)
    f.start("assessment", "py-assess", "--async", wait=False)
    for wid in ("py-design", "py-backtest-1", "py-backtest-2", "py-assess"):
        f.wait_live(wid)
    return f


@pytest.fixture
def training(stack, request):
    """Training workers of one test, stopped at its end."""
    f = Fleet(stack, "training-%s.jsonl" % request.node.name)
    request.addfinalizer(f.stop)
    return f


def lines_of(base, training, rid):
    return [x for x in base.lines() + training.lines() if x["research_id"] == rid]


def test_researches_complete_with_options_seen_everywhere(stack, client, base, training):
    training.start("training", "py-train-a")
    rids = []
    for i in range(3):
        out = client.trigger(brief="momentum %d" % i, options={"symbol": "BTCUSD", "n": i},
                             timeout=15)
        assert out.accepted, out
        rids.append(out.research_id)
    for i, rid in enumerate(rids):
        r = client.wait(rid, timeout=30)
        assert r["status"] == "completed", (r, stack.logs())
        assert r["verdict"] == "promising"
        assert r["training.accuracy"] == "0.61"
        starts = [x for x in lines_of(base, training, rid) if x["what"] == "start"]
        assert sorted(x["type"] for x in starts) == sorted(PHASE_TYPES)
        for x in starts:
            assert x["options"] == {"symbol": "BTCUSD", "n": i}, x
        # the assessment worker's handler is an async def
        assert [x for x in lines_of(base, training, rid)
                if x["what"] == "done" and x["type"] == "assessment"][0]["asynchronous"]
    events = list(client.events(research_id=rids[0]))
    types = [e["type"] for e in events]
    assert types[0] == "accepted" and types[-1] == "completed", types
    assert types.count("phase_started") == 4


def test_cancel_reaches_running_handler(stack, client, base, training):
    training.start("training", "py-train-c")
    out = client.trigger(brief="cancel me", options={"slow": {"training": 30}}, timeout=15)
    assert out.accepted
    rid = out.research_id
    start = training.wait_line(what="start", research_id=rid)
    key = stack.prefix + "worker:py-train-c"
    wait_for(lambda: stack.redis.hget(key, "step") == "halfway", 3, "the step in the heartbeat")
    hb = stack.redis.hgetall(key)
    assert (hb["state"], hb["dispatch_id"], hb["research_id"], hb["progress"]) == (
        "busy", start["dispatch_id"], rid, "0.5"), hb
    st = client.status()
    assert rid in [a["research_id"] for a in st["active"]]
    assert "py-train-c" in [w["worker_id"] for w in st["workers"]["training"]]
    sent = time.time()
    c = client.cancel(rid, reason="test", timeout=10)
    assert c.accepted and c.type == "cancelled", c
    got = training.wait_line(timeout=5, what="cancelled", research_id=rid)
    assert got["t"] - sent < 1.0, "abort took %.2f s" % (got["t"] - sent)
    print("cancel reached the handler in %.3f s" % (got["t"] - sent))
    wait_for(lambda: stack.redis.hget(key, "state") == "idle", 2, "idle after the abort")
    assert stack.redis.hget(key, "dispatch_id") == ""
    assert client.research(rid)["status"] == "cancelled"
    assert not training.find(what="done", research_id=rid)
    assert "progress" not in stack.redis.hgetall(key)


def test_raising_handler_fails_its_research_alone(stack, client, base, training):
    training.start("training", "py-train-r")
    bad = client.trigger(brief="bad", options={"raise": "backtest"}, timeout=15)
    good = client.trigger(brief="good", options={"symbol": "ETHUSD"}, timeout=15)
    rb = client.wait(bad.research_id, timeout=30)
    rg = client.wait(good.research_id, timeout=30)
    assert rb["status"] == "failed", rb
    assert rb["error"] == "boom in backtest for %s" % bad.research_id
    assert rb["last_phase"] == "backtesting"
    assert rg["status"] == "completed", rg


def test_sigterm_releases_and_another_worker_completes(stack, client, base, training):
    a = training.start("training", "py-train-s1", "--grace", "0.5")
    out = client.trigger(brief="release me", options={"slow_attempt1": {"training": 60}},
                         timeout=15)
    rid = out.research_id
    first = training.wait_line(what="start", research_id=rid)
    assert first["worker_id"] == "py-train-s1" and first["attempt"] == 1
    training.start("training", "py-train-s2")
    a.signal(signal.SIGTERM)
    r = client.wait(rid, timeout=30)
    assert r["status"] == "completed", (r, stack.logs())
    assert r["released"] == "1", r
    second = training.find(what="done", research_id=rid)
    assert [(x["worker_id"], x["attempt"]) for x in second] == [("py-train-s2", 2)]
    assert training.find(what="cancelled", research_id=rid)  # job.sleep woke at the grace end
    wait_for(lambda: not a.alive(), 10, "the SIGTERMed worker to exit")
    assert a.p.returncode == 0
    redis = [e for e in client.events(research_id=rid) if e["type"] == "redispatched"]
    assert [(e["reason"], e["attempt"]) for e in redis] == [("released", 2)], redis


def test_sigkill_and_restart_with_same_id(stack, client, base, training):
    k = training.start("training", "py-train-k")
    out = client.trigger(brief="kill me", options={"slow_attempt1": {"training": 60}},
                         timeout=15)
    rid = out.research_id
    training.wait_line(what="start", research_id=rid, attempt=1)
    key = stack.prefix + "worker:py-train-k"
    wait_for(lambda: stack.redis.hget(key, "state") == "busy", 5, "busy heartbeat")
    k.signal(signal.SIGKILL)
    k.p.wait(5)
    killed_ms = int(time.time() * 1000)
    training.start("training", "py-train-k", wait=False)
    training.wait_live("py-train-k", since_ms=killed_ms)
    r = client.wait(rid, timeout=30)
    assert r["status"] == "completed", (r, stack.logs())
    done = training.find(what="done", research_id=rid)
    assert [(x["worker_id"], x["attempt"]) for x in done] == [("py-train-k", 2)]
    reasons = [e["reason"] for e in client.events(research_id=rid)
               if e["type"] == "redispatched"]
    assert reasons in (["dispatch_lost"], ["worker_dead"]), reasons
