"""An assessment worker: reads the training and backtest results (backtest is None when the
training gate failed) and gives a verdict (a fake LLM call).

    python3 assessment_worker.py [worker-id]
"""

import sys

from researchcoord import Worker

w = Worker("assessment", worker_id=sys.argv[1] if len(sys.argv) > 1 else "py-assess-1")


@w.handler
def assess(job):
    p = job.params
    job.progress(0.5, "reviewing %s" % p["strategy_name"])
    if not job.sleep(0.5):
        return None
    if p["gate_rejection_reason"]:
        verdict = "rejected: %s" % p["gate_rejection_reason"]
    elif (p["backtest"] or {}).get("sharpe_ratio", 0) > 1:
        verdict = "promising on %s" % (job.options or {}).get("symbol", "its market")
    else:
        verdict = "weak"
    return {"verdict": verdict, "model": p["model"] or "claude-haiku-4-5",
            "input_tokens": 3000, "output_tokens": 400}


if __name__ == "__main__":
    w.run()
