"""A worker process for the integration tests: one Worker of the given type whose handler's
behaviour is chosen by the research's options, and which logs what it sees as JSON lines.

options keys it reads: "slow" {type: seconds} (every attempt), "slow_attempt1" {type:
seconds} (attempt 1 only), "raise" (a worker type: raise there).
"""

import argparse
import json
import logging
import os
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
from researchcoord import Worker  # noqa: E402

RESULTS = {
    "design": lambda job: {"strategy_name": "strat-" + job.research_id,
                           "strategy_path": "/s/" + job.research_id, "model": "claude-haiku-4-5",
                           "input_tokens": 100, "output_tokens": 50},
    "training": lambda job: {"accuracy": 0.61, "final_loss": 0.3, "initial_loss": 0.7,
                             "model_path": "/m/" + job.research_id},
    "backtest": lambda job: {"win_rate": 0.55, "max_drawdown": 0.1, "sharpe_ratio": 1.2,
                             "total_return": 0.2, "net_return": 0.15, "total_trades": 42},
    "assessment": lambda job: {"verdict": "promising", "model": "claude-haiku-4-5",
                               "input_tokens": 10, "output_tokens": 5},
}

_log_lock = threading.Lock()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--type", required=True)
    ap.add_argument("--id", required=True)
    ap.add_argument("--count", type=int, default=1)
    ap.add_argument("--grace", type=float, default=25.0)
    ap.add_argument("--log", required=True)
    ap.add_argument("--async", dest="use_async", action="store_true")
    a = ap.parse_args()
    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format="%(asctime)s " + a.id + " %(levelname)s %(message)s")

    def note(job, what, **more):
        line = dict(what=what, t=time.time(), type=a.type, worker_id=job.worker_id,
                    research_id=job.research_id, dispatch_id=job.dispatch_id,
                    attempt=job.attempt, **more)
        with _log_lock, open(a.log, "a") as f:
            f.write(json.dumps(line) + "\n")

    def plan(job):
        opts = job.options or {}
        seconds = (opts.get("slow") or {}).get(a.type, 0)
        if job.attempt == 1:
            seconds = max(seconds, (opts.get("slow_attempt1") or {}).get(a.type, 0))
        return opts, seconds

    w = Worker(a.type, worker_id=a.id, count=a.count, shutdown_grace=a.grace)

    if a.use_async:
        @w.handler
        async def handle(job):
            import asyncio
            note(job, "start", options=job.options)
            opts, seconds = plan(job)
            job.progress(0.5, "halfway")
            try:
                if seconds and not await job.asleep(seconds):
                    note(job, "cancelled")
                    return {}
            except asyncio.CancelledError:
                note(job, "cancelled")
                raise
            if opts.get("raise") == a.type:
                raise RuntimeError("boom in %s for %s" % (a.type, job.research_id))
            note(job, "done", asynchronous=True)
            return RESULTS[a.type](job)
    else:
        @w.handler
        def handle(job):
            note(job, "start", options=job.options)
            opts, seconds = plan(job)
            job.progress(0.5, "halfway")
            if seconds and not job.sleep(seconds):
                note(job, "cancelled")
                return {}
            if opts.get("raise") == a.type:
                raise RuntimeError("boom in %s for %s" % (a.type, job.research_id))
            note(job, "done")
            return RESULTS[a.type](job)

    w.run()
    logging.info("exited cleanly")


if __name__ == "__main__":
    main()
