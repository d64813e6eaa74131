"""A backtest worker, written as an async def (it would await a data service).

    python3 backtest_worker.py [worker-id]
"""

import random
import sys

from researchcoord import Worker

w = Worker("backtest", worker_id=sys.argv[1] if len(sys.argv) > 1 else "py-backtest-1")


@w.handler
async def backtest(job):
    opts = job.options or {}
    period = "%s..%s" % (opts.get("start", "2024-01-01"), opts.get("end", "2024-12-31"))
    job.progress(0.1, "loading %s %s" % (opts.get("symbol", "BTCUSD"), period))
    await job.asleep(1.0)  # an abort cancels this task
    job.progress(0.9, "simulating")
    trades = random.randint(20, 200)
    return {"win_rate": 0.52, "max_drawdown": 0.18, "sharpe_ratio": 1.1,
            "total_return": 0.24, "net_return": 0.2, "total_trades": trades}


if __name__ == "__main__":
    w.run()
