"""Worker: runs one handler for dispatches of one worker type, keeping every worker rule.

It mirrors tools/stub-worker (the C reference worker), rule for rule (protocol §2, §3, §5):
- it reads every partition of `<prefix>dispatch.<type>`, assigned at each partition's end as
  it is when it starts, and writes its first heartbeat (idle, empty ids) only then: a process
  restarted with the same ids never runs a dispatch sent to its former process;
- it acts only on messages addressed to its own ids (and, for a dispatch, its own type),
  skips invalid ones, and ignores a dispatch id it has run, refused or seen aborted (the last
  SEEN_MAX of each slot);
- before it starts a dispatch it makes the research check (`HGET <prefix>research:<rid>
  dispatch_id`): run it when it names the dispatch, drop it when not, drop and log on
  WRONGTYPE, and keep it and ask again while Redis cannot answer (never drop it then);
- heartbeats (HSET + ZADD in one MULTI/EXEC) go out every second from a thread of their own,
  and at once on every change of state; `busy` is written before the handler can end;
- a completion is produced with idempotence (acks=all) and the slot keeps naming its dispatch
  until Kafka acknowledges it ("completion first, then idle"); a failed delivery is produced
  again after a pause;
- an abort of the running dispatch cancels the job, publishes nothing and heartbeats idle at
  once; an abort of one not started yet makes sure it never starts;
- on SIGTERM/SIGINT (or stop()) it heartbeats `draining`, lets running jobs finish for up to
  `shutdown_grace` seconds, hands back the rest with a `released` completion, waits for
  Kafka to acknowledge every completion, and exits leaving its heartbeats to expire.

Threads: run() owns Kafka and the slots' dispatch state; one thread beats; one thread per
running job. A job thread only hands its outcome to run() (a queue); run() publishes.
"""

import collections
import logging
import os
import queue
import re
import signal
import socket
import threading
import time

from . import protocol
from .config import Config
from .job import Job, execute

log = logging.getLogger("researchcoord.worker")

SEEN_MAX = 1024          # dispatch ids each slot remembers (run, refused or aborted)
PENDING_MAX = 16         # dispatches a slot keeps while Redis cannot confirm them
HEARTBEAT_S = 1.0        # between periodic heartbeats (the protocol asks for <= 2 s)
TURN_WAIT_S = 0.05       # longest wait for Kafka in one loop turn
CHECK_RETRY_S = 0.2      # after a research check Redis could not answer
BEAT_RETRY_S = 0.2       # after a heartbeat Redis did not take
RESEND_PAUSE_S = 1.0     # between a failed delivery and producing the completion again
FLUSH_TIMEOUT_S = 10.0   # how long shutdown waits for Kafka to take the last completions
START_RETRY_S = 0.5      # between attempts to find the dispatch topic at start


class SeenIds:
    """The last `maxlen` ids seen, in bounded memory: dedupe for at-least-once delivery."""

    def __init__(self, maxlen=SEEN_MAX):
        self._order = collections.deque()
        self._set = set()
        self._max = maxlen

    def __contains__(self, dispatch_id):
        return dispatch_id in self._set

    def __len__(self):
        return len(self._set)

    def add(self, dispatch_id):
        if dispatch_id in self._set:
            return
        self._order.append(dispatch_id)
        self._set.add(dispatch_id)
        while len(self._order) > self._max:
            self._set.discard(self._order.popleft())


class _Unacked:
    """A completion handed to the producer that Kafka has not acknowledged yet."""

    def __init__(self, dispatch_id, research_id, status, wire):
        self.dispatch_id = dispatch_id
        self.research_id = research_id
        self.status = status
        self.wire = wire
        self.queued = False  # in the producer's queue; False: to be produced (again)
        self.n_failed = 0


class _Slot:
    """One worker id: at most one running job, its pending dispatches, its completions."""

    def __init__(self, worker_id, hb_key):
        self.id = worker_id
        self.hb_key = hb_key
        self.job = None              # the running Job
        self.pending = []            # dispatch dicts waiting for their research check
        self.unacked = []            # _Unacked, newest last
        self.seen = SeenIds()
        self.progress = None         # the running job's latest progress and step
        self.step = None

    def shown(self, draining):
        """(state, dispatch_id, research_id) the heartbeat says: busy with the running job,
        else with the newest completion Kafka has not acknowledged, else idle."""
        if self.job is not None:
            ids = (self.job.dispatch_id, self.job.research_id)
        elif self.unacked:
            ids = (self.unacked[-1].dispatch_id, self.unacked[-1].research_id)
        else:
            ids = ("", "")
        if draining:
            return (protocol.STATE_DRAINING,) + ids
        return (protocol.STATE_BUSY if ids[0] else protocol.STATE_IDLE,) + ids


def _safe_id_part(text):
    return re.sub(r"[^A-Za-z0-9._:-]", "-", text)[:64] or "host"


def _labels_text(labels):
    if labels is None:
        return None
    if isinstance(labels, dict):
        labels = ",".join("%s=%s" % kv for kv in labels.items())
    return protocol.clip_text(labels, protocol.LABELS_MAX)


class Worker:
    """Runs `handler` for every dispatch of `worker_type` addressed to its ids.

    count=1: one slot named `worker_id`; count=N: N slots `<worker_id>-1` .. `-N`, each
    running one job at a time. Connection settings come from the environment (config.py);
    keyword arguments (brokers, topic_prefix, kafka_props, redis_url, key_prefix) override."""

    def __init__(self, worker_type, worker_id=None, count=1, shutdown_grace=25.0,
                 handler=None, host=None, labels=None, heartbeat_interval=HEARTBEAT_S,
                 config=None, **settings):
        if worker_type not in protocol.WORKER_TYPES:
            raise ValueError("worker_type: must be one of %s" % ", ".join(protocol.WORKER_TYPES))
        if not isinstance(count, int) or count < 1:
            raise ValueError("count: must be a whole number >= 1")
        self.worker_type = worker_type
        self.config = config if config is not None else Config.from_env(**settings)
        host = host if host is not None else socket.gethostname()
        if worker_id is None:
            worker_id = "%s-%s" % (worker_type, _safe_id_part(host))
        ids = [worker_id] if count == 1 else ["%s-%d" % (worker_id, i + 1) for i in range(count)]
        for i in ids:
            protocol.check_id("worker_id", i)
        prefix = self.config.key_prefix
        self.slots = [_Slot(i, protocol.key_worker(prefix, i)) for i in ids]
        self._by_id = {s.id: s for s in self.slots}
        self.worker_ids = ids
        self.shutdown_grace = float(shutdown_grace)
        self.host = protocol.clip_text(host, protocol.STRING_MAX)
        self.labels = _labels_text(labels)
        self.heartbeat_interval = heartbeat_interval
        self._handler = handler
        self._lock = threading.RLock()       # the slots' state
        self._beat_lock = threading.Lock()   # one heartbeat write at a time, in order
        self._beat_due = threading.Event()
        self._stop = threading.Event()       # stop() or a signal: begin draining
        self._done = queue.Queue()           # (slot, job, outcome) from job threads
        self._draining = False
        self._signalled = False
        self._closed = threading.Event()
        self._last_seen = 0
        self._redis_down = False
        self._check_retry_at = 0.0
        self._resend_at = 0.0
        self._producer = self._consumer = self._redis = None
        self._topic = self.config.topic(protocol.topic_dispatch(worker_type))
        self._completions = self.config.topic(protocol.TOPIC_COMPLETIONS)
        self._workers_key = protocol.key_workers(self.config.key_prefix, worker_type)
        self.ready = threading.Event()       # set once the first heartbeat is written

    # ---- the public surface ------------------------------------------------------------

    def handler(self, fn):
        """Decorator: `fn(job)` runs each dispatch (a def or an async def). Return the
        phase's result dict; raise to fail the research with the exception's text."""
        self._handler = fn
        return fn

    def stop(self):
        """Ask run() to drain and return (thread-safe, and safe from a signal handler)."""
        self._stop.set()

    def run(self):
        """Serve dispatches until SIGTERM/SIGINT (when called on the main thread) or stop()."""
        if self._handler is None:
            raise RuntimeError("no handler: decorate a function with @worker.handler")
        old = self._install_signals()
        beat_thread = None
        try:
            self._open()
            if not self._position():
                return
            self._mark_all_due()
            self._write_beats()
            beat_thread = threading.Thread(target=self._beat_loop, name="rc-heartbeat",
                                           daemon=True)
            beat_thread.start()
            log.info("%s workers %s ready on %s", self.worker_type, ", ".join(self.worker_ids),
                     self.config.topic(protocol.topic_dispatch(self.worker_type)))
            self._loop()
            self._finish()
        finally:
            self._closed.set()
            self._beat_due.set()
            if beat_thread is not None:
                beat_thread.join(self.config.redis_timeout_ms / 1000.0 + 1)
            self._restore_signals(old)
            self._close()

    # ---- start and stop ----------------------------------------------------------------

    def _install_signals(self):
        if threading.current_thread() is not threading.main_thread():
            return None
        old = {}
        for sig in (signal.SIGTERM, signal.SIGINT):
            # A plain flag: a signal handler must not take a lock the loop may hold.
            old[sig] = signal.signal(sig, self._on_signal)
        return old

    def _on_signal(self, _signum, _frame):
        self._signalled = True

    def _stopping(self):
        return self._signalled or self._stop.is_set()

    @staticmethod
    def _restore_signals(old):
        for sig, handler in (old or {}).items():
            signal.signal(sig, handler)

    def _open(self):
        from confluent_kafka import Consumer, Producer
        cfg = self.config
        self._producer = Producer(cfg.kafka_conf({
            "enable.idempotence": "true",  # acks=all: an acknowledged completion is kept
            "linger.ms": "1",
        }))
        # Manual assignment joins no group, but librdkafka wants a group.id; nothing is
        # ever committed under it.
        self._consumer = Consumer(cfg.kafka_conf({
            "group.id": "researchcoord-%s-%d" % (self.worker_type, os.getpid()),
            "enable.auto.commit": "false",
            "enable.auto.offset.store": "false",
            # The dev broker answers an empty fetch only after fetch.wait.max.ms (500 ms by
            # default), which would delay every dispatch and abort that much.
            "fetch.wait.max.ms": "10",
        }))
        self._redis = cfg.redis()

    def _bind(self, producer=None, consumer=None, redis=None):
        """Use these clients (tests give fakes: every rule but the I/O runs unchanged)."""
        self._producer = producer if producer is not None else self._producer
        self._consumer = consumer if consumer is not None else self._consumer
        self._redis = redis if redis is not None else self._redis

    def _position(self):
        """Assign every partition of the dispatch topic at its end as of now (the high
        watermark, resolved here rather than by librdkafka later, so nothing sent after the
        first heartbeat can be skipped). Retries while Kafka or the topic is not there; False
        when stopped meanwhile."""
        from confluent_kafka import TopicPartition
        logged = False
        while not self._stopping():
            try:
                md = self._consumer.list_topics(self._topic, timeout=5)
                t = md.topics.get(self._topic)
                if t is None or t.error is not None or not t.partitions:
                    raise RuntimeError("topic %s not there yet%s" % (
                        self._topic, "" if t is None or t.error is None else ": %s" % t.error))
                parts = []
                for p in sorted(t.partitions):
                    _lo, hi = self._consumer.get_watermark_offsets(
                        TopicPartition(self._topic, p), timeout=5, cached=False)
                    parts.append(TopicPartition(self._topic, p, hi))
                self._consumer.assign(parts)
                return True
            except Exception as e:  # KafkaException, or the topic missing
                if not logged:
                    log.warning("waiting for Kafka: %s", e)
                    logged = True
                time.sleep(START_RETRY_S)
        return False

    def _close(self):
        if self._consumer is not None:
            try:
                self._consumer.close()
            except Exception:
                pass
        if self._redis is not None:
            try:
                self._redis.close()
            except Exception:
                pass

    # ---- the loop ----------------------------------------------------------------------

    def _loop(self):
        grace_end = None
        while True:
            if self._stopping() and not self._draining:
                log.info("stopping: draining for up to %.1f s", self.shutdown_grace)
                with self._lock:
                    self._draining = True
                    for s in self.slots:
                        for d in s.pending:
                            self._release_unstarted(s, d)
                        s.pending = []
                grace_end = time.monotonic() + self.shutdown_grace
                self._mark_all_due()
            if self._draining:
                self._take_outcomes()  # a job that just finished completes, not released
                with self._lock:
                    running = [s for s in self.slots if s.job is not None]
                if not running:
                    return
                if time.monotonic() >= grace_end:
                    self._release_running(running)
                    return
            msgs = self._consumer.consume(num_messages=500, timeout=TURN_WAIT_S)
            for m in msgs:
                self._on_message(m)
            self._check_pending()
            self._take_outcomes()
            self._producer.poll(0)
            self._resend()

    def _finish(self):
        """Hand every completion to Kafka and wait (bounded) for its acknowledgement, then
        heartbeat what is left ("draining", empty ids once all are acknowledged)."""
        self._take_outcomes()
        self._resend(force=True)
        deadline = time.monotonic() + FLUSH_TIMEOUT_S
        while time.monotonic() < deadline:
            with self._lock:
                left = sum(len(s.unacked) for s in self.slots)
            if left == 0:
                break
            self._producer.flush(0.2)
            self._resend(force=time.monotonic() >= self._resend_at)
        with self._lock:
            left = sum(len(s.unacked) for s in self.slots)
        if left:
            log.error("%d completions not delivered at exit", left)
        self._mark_all_due()
        self._write_beats()

    # ---- messages ----------------------------------------------------------------------

    def _on_message(self, m):
        if m.error() is not None:
            from confluent_kafka import KafkaError
            if m.error().code() != KafkaError._PARTITION_EOF:
                log.warning("kafka: %s", m.error())
            return
        try:
            msg = protocol.decode_dispatch_topic(m.value())
        except protocol.InvalidMessage as e:
            log.warning("skipping invalid message at %s [%d] offset %d: %s",
                        m.topic(), m.partition(), m.offset(), e)
            return
        slot = self._by_id.get(msg["worker_id"])
        if slot is None:
            return  # for another worker
        with self._lock:
            if msg["type"] == "abort":
                self._on_abort(slot, msg)
            elif msg["worker_type"] != self.worker_type:
                log.warning("%s: ignoring dispatch %s for a %s worker", slot.id,
                            msg["dispatch_id"], msg["worker_type"])
            else:
                self._on_dispatch(slot, msg)

    def _on_dispatch(self, slot, d):
        did = d["dispatch_id"]
        if did in slot.seen or any(p["dispatch_id"] == did for p in slot.pending):
            log.debug("%s: dispatch %s seen before, ignored", slot.id, did)
            return
        if self._draining:
            # Taking nothing new: hand it back at once rather than let it time out.
            self._release_unstarted(slot, d)
            return
        if slot.job is not None:
            log.warning("%s: busy with %s, ignoring dispatch %s", slot.id,
                        slot.job.dispatch_id, did)
            slot.seen.add(did)
            return
        if len(slot.pending) >= PENDING_MAX:
            log.warning("%s: too many unconfirmed dispatches, dropping %s", slot.id, did)
            return
        slot.pending.append(d)
        self._check_retry_at = 0.0  # a new dispatch is checked at once

    def _on_abort(self, slot, a):
        did = a["dispatch_id"]
        slot.pending = [p for p in slot.pending if p["dispatch_id"] != did]
        slot.seen.add(did)  # should it still come, it never starts
        if slot.job is not None and slot.job.dispatch_id == did:
            log.info("%s: aborted %s (%s)", slot.id, did, a.get("reason") or "no reason")
            slot.job.abort()
            slot.job = None
            slot.progress = slot.step = None
            self._beat_due.set()  # idle at once

    # ---- the research check ------------------------------------------------------------

    def _research_check(self, d):
        """'current', 'stale', 'unreadable' or None (Redis could not say: keep and retry)."""
        import redis
        key = protocol.key_research(self.config.key_prefix, d["research_id"])
        try:
            got = self._redis.hget(key, protocol.RF_DISPATCH_ID)
        except redis.exceptions.ResponseError as e:
            if str(e).startswith("WRONGTYPE"):
                return "unreadable"
            self._redis_failed(e)
            return None
        except redis.exceptions.RedisError as e:
            self._redis_failed(e)
            return None
        self._redis_ok()
        return "current" if got == d["dispatch_id"] else "stale"

    def _check_pending(self):
        """Make the research check of every kept dispatch, oldest first, and start those
        that are current. The busy heartbeat is written before the handlers start, outside
        the slots' lock (the heartbeat thread takes the beat lock, then the slots' lock)."""
        if time.monotonic() < self._check_retry_at:
            return
        started = []
        try:
            self._check_each(started)
        finally:
            if started:
                self._write_beats()  # "busy" shows before the work can end
                for t in started:
                    t.start()

    def _check_each(self, started):
        with self._lock:
            work = [(s, list(s.pending)) for s in self.slots if s.pending and s.job is None]
        for slot, pending in work:
            for d in pending:
                answer = self._research_check(d)
                if answer is None:
                    self._check_retry_at = time.monotonic() + CHECK_RETRY_S
                    return  # an outage: ask again later, keeping them all
                with self._lock:
                    if d not in slot.pending:
                        continue  # aborted meanwhile
                    slot.pending.remove(d)
                    if slot.job is not None or d["dispatch_id"] in slot.seen or self._draining:
                        slot.seen.add(d["dispatch_id"])
                        continue
                    slot.seen.add(d["dispatch_id"])
                    if answer == "unreadable":
                        log.error("%s: refusing dispatch %s: %s holds another type than a hash",
                                  slot.id, d["dispatch_id"],
                                  protocol.key_research(self.config.key_prefix, d["research_id"]))
                        continue
                    if answer == "stale":
                        log.debug("%s: dispatch %s is no longer research %s's, ignored",
                                  slot.id, d["dispatch_id"], d["research_id"])
                        continue
                    started.append(self._start(slot, d))

    # ---- jobs --------------------------------------------------------------------------

    def _start(self, slot, d):
        """Make `d` the job of `slot` (lock held); returns its thread, not yet started."""
        def on_progress(fraction, step, slot=slot):
            with self._lock:
                if slot.job is job:
                    slot.progress, slot.step = fraction, step

        job = Job(d, worker_id=slot.id, on_progress=on_progress)
        slot.job = job
        slot.progress = slot.step = None
        log.info("%s: started %s (research %s, attempt %d)", slot.id, d["dispatch_id"],
                 d["research_id"], d["attempt"])
        return threading.Thread(target=self._run_job, args=(slot, job),
                                name="rc-job-%s" % slot.id, daemon=True)

    def _run_job(self, slot, job):
        outcome = execute(self._handler, job, self.worker_type)
        self._done.put((slot, job, outcome))

    def _take_outcomes(self):
        while True:
            try:
                slot, job, outcome = self._done.get_nowait()
            except queue.Empty:
                return
            with self._lock:
                if slot.job is not job or outcome.status == "cancelled":
                    continue  # aborted or handed back: nothing is published for it
                if outcome.status == protocol.FAILED and outcome.error.startswith("bad result:"):
                    log.error("%s: dispatch %s: %s (publishing failed)", slot.id,
                              job.dispatch_id, outcome.error)
                else:
                    log.info("%s: %s %s", slot.id, outcome.status, job.dispatch_id)
                self._publish(slot, job.dispatch_id, job.research_id, outcome.status,
                              error=outcome.error, result=outcome.result)
                slot.job = None
                slot.progress = slot.step = None

    def _release_unstarted(self, slot, d):
        slot.seen.add(d["dispatch_id"])
        log.info("%s: draining: releasing dispatch %s", slot.id, d["dispatch_id"])
        self._publish(slot, d["dispatch_id"], d["research_id"], protocol.RELEASED)

    def _release_running(self, running):
        """The grace is over: cancel each running job and hand its dispatch back."""
        with self._lock:
            for slot in running:
                job = slot.job
                if job is None:
                    continue
                log.info("%s: releasing %s (shutdown grace over)", slot.id, job.dispatch_id)
                job.abort()
                self._publish(slot, job.dispatch_id, job.research_id, protocol.RELEASED)
                slot.job = None
                slot.progress = slot.step = None

    # ---- completions -------------------------------------------------------------------

    def _publish(self, slot, dispatch_id, research_id, status, error=None, result=None):
        wire = protocol.encode_completion(dispatch_id, research_id, slot.id, status,
                                          error=error, result=result)
        u = _Unacked(dispatch_id, research_id, status, wire)
        slot.unacked.append(u)
        self._produce(slot, u)

    def _produce(self, slot, u):
        def delivered(err, _msg, slot=slot, u=u):
            self._delivered(slot, u, err)
        try:
            self._producer.produce(self._completions, value=u.wire,
                                   key=u.research_id.encode(), on_delivery=delivered)
            u.queued = True
        except Exception as e:  # BufferError (queue full) or KafkaException
            if u.n_failed == 0:
                log.warning("%s: cannot publish the completion of %s yet: %s", slot.id,
                            u.dispatch_id, e)
            u.n_failed += 1
            self._resend_at = time.monotonic() + RESEND_PAUSE_S

    def _delivered(self, slot, u, err):
        """Served by producer.poll in run()'s thread."""
        with self._lock:
            u.queued = False
            if err is not None:
                if u.n_failed == 0:
                    log.warning("%s: completion of %s not delivered: %s; producing it again",
                                slot.id, u.dispatch_id, err)
                u.n_failed += 1
                self._resend_at = time.monotonic() + RESEND_PAUSE_S
                return
            if u in slot.unacked:
                slot.unacked.remove(u)
            self._beat_due.set()  # "then idle", at once

    def _resend(self, force=False):
        if not force and time.monotonic() < self._resend_at:
            return
        with self._lock:
            for s in self.slots:
                for u in s.unacked:
                    if not u.queued:
                        self._produce(s, u)

    # ---- heartbeats --------------------------------------------------------------------

    def _mark_all_due(self):
        self._beat_due.set()

    def _beat_loop(self):
        while not self._closed.is_set():
            self._beat_due.wait(self.heartbeat_interval)
            if self._closed.is_set():
                return
            self._beat_due.clear()
            try:
                ok = self._write_beats()
            except Exception:  # never let the heartbeat thread die silently
                log.exception("heartbeat failed")
                ok = False
            if not ok:
                self._closed.wait(BEAT_RETRY_S)
                self._beat_due.set()

    def _write_beats(self):
        """Every slot's heartbeat in one MULTI/EXEC, as stub-worker writes it (§5):
        HSET <prefix>worker:<id> type state dispatch_id research_id last_seen [progress step]
        host [labels], and one ZADD <prefix>workers:<type> with the same ms for every slot.
        last_seen grows at every beat, since liveness is judged by its change. False when
        Redis did not take it."""
        import redis
        with self._beat_lock:
            now = max(protocol.now_ms(), self._last_seen + 1)
            with self._lock:
                rows = []
                for s in self.slots:
                    state, did, rid = s.shown(self._draining)
                    fields = {protocol.HB_TYPE: self.worker_type, protocol.HB_STATE: state,
                              protocol.HB_DISPATCH_ID: did, protocol.HB_RESEARCH_ID: rid,
                              protocol.HB_LAST_SEEN: str(now), protocol.HB_HOST: self.host}
                    if self.labels is not None:
                        fields[protocol.HB_LABELS] = self.labels
                    running = s.job is not None
                    if running and s.progress is not None:
                        fields[protocol.HB_PROGRESS] = repr(s.progress)
                    if running and s.step is not None:
                        fields[protocol.HB_STEP] = s.step
                    rows.append((s, fields, running))
            try:
                p = self._redis.pipeline(transaction=True)
                for s, fields, running in rows:
                    p.hset(s.hb_key, mapping=fields)
                    if not running:
                        p.hdel(s.hb_key, protocol.HB_PROGRESS, protocol.HB_STEP)
                p.zadd(self._workers_key, {s.id: now for s in self.slots})
                p.execute()
            except redis.exceptions.RedisError as e:
                self._redis_failed(e)
                return False
            self._last_seen = now
            self._redis_ok()
            if not self.ready.is_set():
                self.ready.set()
            return True

    def _redis_failed(self, e):
        if not self._redis_down:
            log.warning("redis failing, retrying: %s", e)
            self._redis_down = True

    def _redis_ok(self):
        if self._redis_down:
            log.warning("redis back")
            self._redis_down = False
