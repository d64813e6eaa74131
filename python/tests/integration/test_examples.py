"""The Client's requests and outcomes (before any worker is there, at a limit of one active
research), then the examples end to end: the four example workers and trigger.py."""

import os
import subprocess
import sys

import pytest

from conftest import Fleet
from researchcoord import Client

COORDINATOR_ENV = {"AGENT_POLL_INTERVAL": "0.1", "AGENT_DAILY_BUDGET": "0",
                   "AGENT_MAX_CONCURRENT_RESEARCHES": "1"}


def test_client_requests_and_outcomes(stack):
    c = Client(brokers=stack.bootstrap, redis_url="unix://" + stack.sock,
               key_prefix=stack.prefix)
    try:
        a = c.trigger(brief="waits: no worker yet", options={"k": [1, {"x": None}]},
                      timeout=15)
        assert a.accepted and a.type == "accepted" and a.research_id
        assert c.research(a.research_id)["status"] == "running"
        b = c.trigger(brief="over the limit", request_id="req-full-1", timeout=15)
        assert (b.accepted, b.type, b.reason) == (False, "rejected", "at_capacity")
        assert b.figures == {"active_count": 1, "limit": 1}
        again = c.trigger(brief="over the limit", request_id="req-full-1", timeout=15)
        assert (again.reason, again.figures) == ("at_capacity", b.figures)  # repeated
        with pytest.raises(ValueError, match="options"):
            c.trigger(brief="bad", options={"x": float("nan")})
        x = c.cancel(a.research_id, reason="test", timeout=15)
        assert (x.accepted, x.type, x.research_id) == (True, "cancelled", a.research_id)
        y = c.cancel(a.research_id, timeout=15)
        assert (y.type, y.reason) == ("cancel_rejected", "not_cancellable")
        z = c.cancel("rs-no-such", timeout=15)
        assert (z.type, z.reason) == ("cancel_rejected", "not_found")
        assert c.wait(a.research_id, timeout=5)["status"] == "cancelled"
        types = [e["type"] for e in c.events(research_id=a.research_id)]
        assert types == ["accepted", "cancelled", "cancel_rejected"], types
        assert c.status()["active"] == []
    finally:
        c.close()
EXAMPLES = os.path.normpath(os.path.join(os.path.dirname(__file__), "..", "..", "..",
                                         "examples", "python"))


def test_example_workers_and_trigger(stack, request):
    fleet = Fleet(stack, "examples.jsonl")
    request.addfinalizer(fleet.stop)
    ids = {"design_worker": "ex-design", "training_worker": "ex-train",
           "backtest_worker": "ex-backtest", "assessment_worker": "ex-assess"}
    for name, wid in ids.items():
        fleet.procs.append(stack.spawn(name, [sys.executable,
                                              os.path.join(EXAMPLES, name + ".py"), wid]))
    for wid in ("ex-design", "ex-train-1", "ex-train-2", "ex-backtest", "ex-assess"):
        fleet.wait_live(wid)
    run = subprocess.run([sys.executable, os.path.join(EXAMPLES, "trigger.py"),
                          "momentum on ETH 4h", "ETHUSD"], env=stack.env,
                         capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, (run.stdout, run.stderr, stack.logs())
    lines = run.stdout.splitlines()
    assert lines[0].startswith("research rs")
    assert lines[-1] == "completed promising on ETHUSD", run.stdout
    for w in fleet.procs:
        assert w.stop() == 0, stack.logs()
