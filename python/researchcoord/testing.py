"""Run a handler on a dispatch of your choosing, without Kafka or Redis.

    from researchcoord.testing import run_dispatch
    out = run_dispatch(train, "training", params={"strategy_name": "s1"},
                       options={"symbol": "BTCUSD"})
    assert out.status == "completed" and out.result["accuracy"] > 0.5

The handler runs exactly as the Worker runs it (job.execute): its result is checked against
the phase's rules, an exception becomes `failed` with its text, and an abort (abort_after
seconds, or abort_when(job) returning True) makes job.cancelled true, wakes job.sleep, cancels
an async handler's task and ends as `cancelled`.
"""

import threading
from dataclasses import dataclass, field

from . import protocol
from .job import Job, execute

# The params each phase's dispatch carries (protocol §1), every key present.
PARAM_KEYS = {
    "design": ("brief", "model"),
    "training": ("strategy_name", "strategy_path"),
    "backtest": ("strategy_name", "strategy_path", "model_path"),
    "assessment": ("strategy_name", "model", "training", "backtest", "gate_rejection_reason"),
}


@dataclass
class TestOutcome:
    """status: 'completed' (result), 'failed' (error) or 'cancelled'; progress: every
    (fraction, step) the handler reported, in order."""
    __test__ = False  # not a pytest class
    status: str
    result: dict = None
    error: str = None
    progress: list = field(default_factory=list)
    job: Job = None


def make_dispatch(worker_type, params=None, options=None, attempt=1,
                  research_id="rs-test-1", worker_id="worker-test-1", dispatch_id=None):
    """A dispatch dict as a worker decodes it, with every params key of the phase (nil
    where not given) and `options` as the coordinator forwards it."""
    if worker_type not in protocol.WORKER_TYPES:
        raise ValueError("worker_type: must be one of %s" % ", ".join(protocol.WORKER_TYPES))
    p = {k: None for k in PARAM_KEYS[worker_type]}
    p.update(params or {})
    p[protocol.PARAM_OPTIONS] = options
    phase = protocol.PHASE_OF[worker_type]
    return {"type": "dispatch", "dispatch_id": dispatch_id or "%s:%s:%d" % (
                research_id, phase, attempt),
            "research_id": research_id, "worker_id": worker_id, "phase": phase,
            "worker_type": worker_type, "attempt": attempt, "params": p}


def run_dispatch(handler, worker_type, params=None, options=None, attempt=1,
                 abort_after=None, abort_when=None, timeout=None, **ids):
    """Run `handler` on one dispatch and return its TestOutcome. abort_after: seconds after
    which an abort arrives; abort_when: a predicate on the job, looked at every 10 ms (e.g.
    `lambda job: job.last_progress is not None`). timeout: seconds after which the run is
    given up with AssertionError (the handler ignored the abort or hangs)."""
    d = make_dispatch(worker_type, params, options, attempt, **ids)
    reported = []
    job = Job(d, on_progress=lambda f, s: reported.append((f, s)))
    box = {}

    def run():
        box["outcome"] = execute(handler, job, worker_type)

    t = threading.Thread(target=run, name="rc-test-job", daemon=True)
    t.start()
    if abort_after is not None or abort_when is not None:
        waited = 0.0
        while t.is_alive():
            if abort_after is not None and waited >= abort_after:
                break
            if abort_when is not None and abort_when(job):
                break
            t.join(0.01)
            waited += 0.01
        job.abort()
    t.join(timeout)
    if t.is_alive():
        raise AssertionError("the handler did not return within %s s%s" % (
            timeout, " after its abort" if job.cancelled else ""))
    o = box["outcome"]
    return TestOutcome(o.status, result=o.result, error=o.error, progress=reported, job=job)
