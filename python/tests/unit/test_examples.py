"""The example workers' handlers (examples/python) produce valid results for their phase,
use the options, report progress and stop when aborted: run with researchcoord.testing."""

import importlib.util
import os

import pytest

from researchcoord.testing import run_dispatch

EXAMPLES = os.path.normpath(os.path.join(os.path.dirname(__file__), "..", "..", "..",
                                         "examples", "python"))


def load(name):
    spec = importlib.util.spec_from_file_location(name, os.path.join(EXAMPLES, name + ".py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)  # builds its Worker; nothing connects before run()
    return mod


@pytest.mark.parametrize("name,wt,params,fn", [
    ("design_worker", "design", {"brief": "b"}, "design"),
    ("training_worker", "training", {"strategy_name": "s"}, "train"),
    ("backtest_worker", "backtest", {"strategy_name": "s"}, "backtest"),
    ("assessment_worker", "assessment",
     {"strategy_name": "s", "training": {"accuracy": 0.6}, "backtest": {"sharpe_ratio": 1.2}},
     "assess"),
])
def test_example_handlers(name, wt, params, fn):
    mod = load(name)
    assert mod.w.worker_type == wt
    handler = getattr(mod, fn)
    out = run_dispatch(handler, wt, params=params, options={"symbol": "ETHUSD", "epochs": 2},
                       timeout=10)
    assert out.status == "completed", out.error
    assert out.progress
    cancelled = run_dispatch(handler, wt, params=params, abort_after=0.05, timeout=5)
    assert cancelled.status == "cancelled"
    if wt == "assessment":
        assert out.result["verdict"] == "promising on ETHUSD"
    if wt == "design":
        assert "ethusd" in out.result["strategy_name"]
