"""A training worker: "trains" for a few epochs, reporting progress, and stops early when
the research is cancelled. Two jobs at a time (ids <id>-1 and <id>-2).

    python3 training_worker.py [worker-id]
"""

import random
import sys

from researchcoord import Worker

w = Worker("training", worker_id=sys.argv[1] if len(sys.argv) > 1 else "py-train",
           count=2, labels={"gpu": "none"})


@w.handler
def train(job):
    epochs = int((job.options or {}).get("epochs", 5))
    loss = initial = 0.9
    for epoch in range(1, epochs + 1):
        job.progress(epoch / epochs, "epoch %d/%d" % (epoch, epochs))
        if not job.sleep(0.5):
            return None  # aborted: nothing is published
        loss *= 0.8
    return {"accuracy": round(random.uniform(0.55, 0.7), 3), "initial_loss": initial,
            "final_loss": round(loss, 4), "output_format": "classification",
            "model_path": "/models/%s.bin" % job.params["strategy_name"]}


if __name__ == "__main__":
    w.run()
