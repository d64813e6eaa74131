"""The examples end to end: the four example workers and trigger.py against the stack."""

import os
import subprocess
import sys

from conftest import Fleet

COORDINATOR_ENV = {"AGENT_POLL_INTERVAL": "0.1", "AGENT_DAILY_BUDGET": "0"}
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
