"""A design worker: turns a brief into a strategy (a fake LLM call).

    KAFKA_BROKERS=... REDIS_URL=... python3 design_worker.py [worker-id]
"""

import sys

from researchcoord import Worker

w = Worker("design", worker_id=sys.argv[1] if len(sys.argv) > 1 else "py-design-1")


@w.handler
def design(job):
    opts = job.options or {}
    symbol = opts.get("symbol", "BTCUSD")
    model = job.params["model"] or "claude-haiku-4-5"  # nil: our choice, named in the result
    job.progress(0.2, "prompting %s" % model)
    if not job.sleep(1.0):  # the "LLM call"; False: the research was cancelled
        return None
    name = "momentum-%s-%s" % (symbol.lower(), job.research_id[-6:])
    job.progress(1.0, "strategy written")
    return {"strategy_name": name, "strategy_path": "/strategies/%s.py" % name,
            "model": model, "input_tokens": 1200, "output_tokens": 800}


if __name__ == "__main__":
    w.run()
