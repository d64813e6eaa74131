"""job.execute through researchcoord.testing: outcomes, progress, options, aborts."""

import asyncio
import time

from researchcoord.testing import make_dispatch, run_dispatch


def train(job):
    job.progress(0.5, "epoch 5/10")
    return {"accuracy": 0.6, "final_loss": 0.3, "symbol": (job.options or {}).get("symbol")}


def test_completed_with_params_options_and_progress():
    out = run_dispatch(train, "training", params={"strategy_name": "s"},
                       options={"symbol": "BTCUSD"}, attempt=2)
    assert out.status == "completed"
    assert out.result == {"accuracy": 0.6, "final_loss": 0.3, "symbol": "BTCUSD"}
    assert out.progress == [(0.5, "epoch 5/10")]
    assert out.job.attempt == 2 and out.job.phase == "training"
    assert out.job.params["strategy_name"] == "s" and out.job.params["strategy_path"] is None


def test_no_options_is_none():
    out = run_dispatch(lambda job: {"verdict": str(job.options)}, "assessment")
    assert out.result == {"verdict": "None"}
    assert make_dispatch("assessment")["params"]["options"] is None


def test_exception_fails_with_its_text():
    def bad(job):
        raise RuntimeError("GPU on fire")
    out = run_dispatch(bad, "training")
    assert (out.status, out.error) == ("failed", "GPU on fire")

    def silent(job):
        raise KeyError()
    assert run_dispatch(silent, "training").error == "KeyError"


def test_bad_result_fails_locally_with_a_clear_text():
    out = run_dispatch(lambda job: {"accuracy": "high"}, "training")
    assert out.status == "failed"
    assert out.error == "bad result: training: accuracy: must be a number"
    out = run_dispatch(lambda job: {"model": "m"}, "design")
    assert out.error == "bad result: design: strategy_name: required"


def test_abort_wakes_sleep_and_ends_cancelled():
    def slow(job):
        job.progress(0.1)
        while job.sleep(10):
            pass
        return {"accuracy": 1.0}
    t0 = time.monotonic()
    out = run_dispatch(slow, "training", abort_when=lambda job: job.last_progress, timeout=5)
    assert out.status == "cancelled" and out.result is None
    assert time.monotonic() - t0 < 2


def test_abort_after_cancels_an_async_handler_task():
    async def slow(job):
        await asyncio.sleep(30)
        return {"verdict": "never"}
    out = run_dispatch(slow, "assessment", abort_after=0.05, timeout=5)
    assert out.status == "cancelled"


def test_async_handler_completes_and_asleep():
    async def assess(job):
        assert await job.asleep(0.01)
        return {"verdict": "go", "input_tokens": 10}
    out = run_dispatch(assess, "assessment")
    assert out.status == "completed" and out.result["verdict"] == "go"


def test_async_handler_exception_fails():
    async def bad(job):
        raise ValueError("no data for %s" % job.options["symbol"])
    out = run_dispatch(bad, "backtest", options={"symbol": "XYZ"})
    assert (out.status, out.error) == ("failed", "no data for XYZ")


def test_progress_is_clamped_and_step_cut():
    def h(job):
        job.progress(1.7, "x" * 1000)
        return {}
    out = run_dispatch(h, "backtest")
    assert out.progress[0][0] == 1.0 and len(out.progress[0][1]) == 256


def test_sys_exit_in_a_handler_fails_the_job_not_the_worker():
    import sys

    def quits(job):
        sys.exit(3)
    assert run_dispatch(quits, "backtest").error == "SystemExit(3)"
