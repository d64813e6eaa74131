"""A job: one dispatch as a handler sees it, and how a handler is run to its outcome.

`execute` is the one place that turns a handler's return, exception or cancellation into an
outcome (completed with a checked result, failed with a text, or cancelled). The worker and
researchcoord.testing both use it, so a handler behaves the same under test as in production.
"""

import asyncio
import inspect
import threading
from dataclasses import dataclass

from . import protocol


class Job:
    """The dispatch a handler runs, plus the handles it needs: progress, cancellation."""

    def __init__(self, dispatch, worker_id=None, on_progress=None):
        self.dispatch_id = dispatch["dispatch_id"]
        self.research_id = dispatch["research_id"]
        self.attempt = dispatch["attempt"]
        self.phase = dispatch["phase"]
        self.worker_type = dispatch["worker_type"]
        self.worker_id = worker_id if worker_id is not None else dispatch.get("worker_id")
        self.params = dispatch["params"]
        opts = self.params.get(protocol.PARAM_OPTIONS)
        self.options = opts if isinstance(opts, dict) else None
        self._cancel = threading.Event()
        self._lock = threading.Lock()
        self._canceller = None  # cancels the asyncio task of an async handler
        self._on_progress = on_progress
        self.last_progress = None  # (fraction or None, step or None), for the testing helper

    @property
    def cancelled(self):
        """True once an abort for this dispatch arrived (or the worker gave it up at shutdown).
        Nothing is published for it any more: stop soon and return anything."""
        return self._cancel.is_set()

    def progress(self, fraction=None, step=None):
        """Show how far the job is in the worker's heartbeat: `fraction` 0..1 (clamped) and a
        short `step` text ("epoch 4/10", cut to 256 bytes). Cheap: call it as often as you like;
        the heartbeat carries the latest at its next beat."""
        if fraction is not None:
            fraction = float(fraction)
            if fraction != fraction:
                raise ValueError("progress: fraction is NaN")
            fraction = min(1.0, max(0.0, fraction))
        if step is not None:
            step = protocol.clip_text(step, protocol.STEP_MAX)
        self.last_progress = (fraction, step)
        if self._on_progress is not None:
            self._on_progress(fraction, step)

    def sleep(self, seconds):
        """Wait `seconds`, or less if the job is cancelled meanwhile. True: slept the whole
        time; False: cancelled (stop now)."""
        return not self._cancel.wait(max(0.0, seconds))

    async def asleep(self, seconds):
        """`sleep` for async handlers. An abort also cancels the handler's task, so this (like
        any await) may raise asyncio.CancelledError instead of returning False."""
        if self.cancelled:
            return False
        await asyncio.sleep(max(0.0, seconds))
        return not self.cancelled

    def abort(self):
        """Mark the job cancelled and wake it (job.sleep returns, an async handler's task is
        cancelled). Called by the worker on an abort; tests may call it too."""
        self._cancel.set()
        with self._lock:
            canceller = self._canceller
        if canceller is not None:
            try:
                canceller()
            except RuntimeError:
                pass  # its event loop closed meanwhile: the handler has returned already

    def _set_canceller(self, fn):
        with self._lock:
            self._canceller = fn
        if fn is not None and self.cancelled:
            fn()


@dataclass
class Outcome:
    """How a handler ended: status is 'completed' (result set), 'failed' (error set) or
    'cancelled' (nothing is published)."""
    status: str
    result: dict = None
    error: str = None


def _run_coroutine(coro, job):
    """Run an async handler's coroutine on a fresh event loop in this (the job's) thread."""
    loop = asyncio.new_event_loop()
    try:
        task = loop.create_task(coro)
        job._set_canceller(lambda: loop.call_soon_threadsafe(task.cancel))
        return loop.run_until_complete(task)
    finally:
        job._set_canceller(None)
        loop.close()


def error_text(exc):
    """What a failed completion says about `exc`: its text, else its class name."""
    text = str(exc).strip()
    if isinstance(exc, SystemExit):
        text = "SystemExit(%s)" % text
    return protocol.clip_text(text if text else type(exc).__name__)


def execute(handler, job, worker_type=None):
    """Run `handler(job)` (a def or an async def) to its Outcome. A returned dict is checked
    against the phase's result rules; a bad one becomes `failed` with a "bad result: ..."
    text, so the author sees the problem locally instead of in the research's error."""
    worker_type = worker_type or job.worker_type
    try:
        value = handler(job)
        if inspect.isawaitable(value):
            value = _run_coroutine(value, job)
    except asyncio.CancelledError:
        if job.cancelled:
            return Outcome("cancelled")
        return Outcome("failed", error="cancelled inside the handler")
    except BaseException as e:  # the handler's failure (even sys.exit) is the research's
        if job.cancelled:
            return Outcome("cancelled")
        return Outcome("failed", error=error_text(e))
    if job.cancelled:
        return Outcome("cancelled")
    try:
        result = protocol.check_result(worker_type, value)
    except protocol.BadResult as e:
        return Outcome("failed", error=str(e))
    return Outcome("completed", result=result)
