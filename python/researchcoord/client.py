"""Client: what an upstream service does: trigger, cancel and resume researches, read them.

It mirrors tools/researchctl: a request is published to `<prefix>triggers` (a trigger keyed
by its request_id, a cancel or resume by its research_id) after a consumer of
`<prefix>events` has been positioned at each partition's end, so the outcome, which cannot
come before the publish, is never missed. Reads go to Redis, as `researchctl status` and
`show` read it.
"""

import os
import time
import uuid
from dataclasses import dataclass, field

from . import protocol
from .config import Config

METADATA_TIMEOUT_S = 5.0
PUBLISH_TIMEOUT_S = 10.0
POLL_S = 0.1


@dataclass
class Outcome:
    """The answer to a request: the event that decided it.

    accepted: True for `accepted`, `cancelled` and `resumed`; reason: the rejection's reason
    (at_capacity, budget_exhausted, invalid, not_found, not_cancellable, not_resumable);
    figures: a rejected trigger's numbers (active_count and limit, or remaining and
    daily_limit); event: the whole decoded event."""
    accepted: bool
    type: str
    research_id: str = None
    request_id: str = None
    reason: str = None
    message: str = None
    phase: str = None
    figures: dict = field(default_factory=dict)
    event: dict = field(default_factory=dict)


_OK = {"accepted", "cancelled", "resumed"}


def _outcome(ev):
    return Outcome(accepted=ev["type"] in _OK, type=ev["type"],
                   research_id=ev.get("research_id"), request_id=ev.get("request_id"),
                   reason=ev.get("reason"), message=ev.get("message"), phase=ev.get("phase"),
                   figures={k: ev[k] for k in protocol.FIGURES if ev.get(k) is not None},
                   event=ev)


def new_request_id(kind="req"):
    """A fresh id of the id rule: kind, time, pid and randomness."""
    return "%s-%d-%d-%s" % (kind, protocol.now_ms(), os.getpid(), uuid.uuid4().hex[:8])


class Client:
    """Talks to the coordinator over its topics and reads its Redis keys."""

    def __init__(self, config=None, **settings):
        self.config = config if config is not None else Config.from_env(**settings)
        self._producer = None
        self._redis = None

    # ---- connections (made on first use) -----------------------------------------------

    @property
    def redis(self):
        if self._redis is None:
            self._redis = self.config.redis()
        return self._redis

    def _producer_(self):
        if self._producer is None:
            from confluent_kafka import Producer
            self._producer = Producer(self.config.kafka_conf({"enable.idempotence": "true"}))
        return self._producer

    def _consumer(self, eof=False):
        from confluent_kafka import Consumer
        return Consumer(self.config.kafka_conf({
            "group.id": "researchcoord-client-%d-%s" % (os.getpid(), uuid.uuid4().hex[:8]),
            "enable.auto.commit": "false",
            "enable.partition.eof": "true" if eof else "false",
            "fetch.wait.max.ms": "10",
        }))

    def _assign_events(self, consumer, at_end):
        """Assign every partition of the events topic, at its end as of now or its start.
        Returns {partition: high watermark at this moment}."""
        from confluent_kafka import TopicPartition
        topic = self.config.topic(protocol.TOPIC_EVENTS)
        md = consumer.list_topics(topic, timeout=METADATA_TIMEOUT_S)
        t = md.topics.get(topic)
        if t is None or t.error is not None or not t.partitions:
            raise ConnectionError("kafka: topic %s is not there (is the coordinator running?)"
                                  % topic)
        parts, ends = [], {}
        for p in sorted(t.partitions):
            lo, hi = consumer.get_watermark_offsets(TopicPartition(topic, p),
                                                    timeout=METADATA_TIMEOUT_S, cached=False)
            ends[p] = hi
            parts.append(TopicPartition(topic, p, hi if at_end else lo))
        consumer.assign(parts)
        return ends

    def close(self):
        if self._producer is not None:
            self._producer.flush(PUBLISH_TIMEOUT_S)
            self._producer = None
        if self._redis is not None:
            self._redis.close()
            self._redis = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # ---- requests ----------------------------------------------------------------------

    def _publish(self, suffix, key, wire):
        p = self._producer_()
        errors = []
        p.produce(self.config.topic(suffix), value=wire, key=key.encode(),
                  on_delivery=lambda err, _m: errors.append(err))
        p.flush(PUBLISH_TIMEOUT_S)
        if not errors:
            raise ConnectionError("kafka: not delivered within %.0f s" % PUBLISH_TIMEOUT_S)
        if errors[0] is not None:
            raise ConnectionError("kafka: cannot publish: %s" % errors[0])

    def _request(self, key, wire, request_id, outcomes, timeout):
        """Publish, then wait up to `timeout` s for the event of `outcomes` echoing
        request_id. timeout None or 0: publish only (returns None)."""
        consumer = None
        try:
            if timeout:
                consumer = self._consumer()
                self._assign_events(consumer, at_end=True)
            self._publish(protocol.TOPIC_TRIGGERS, key, wire)
            if not timeout:
                return None
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                m = consumer.poll(POLL_S)
                if m is None or m.error() is not None:
                    continue
                try:
                    ev = protocol.decode_event(m.value())
                except protocol.InvalidMessage:
                    continue
                if ev["type"] in outcomes and ev.get("request_id") == request_id:
                    return _outcome(ev)
            raise TimeoutError("no outcome for %s within %s s (is the coordinator running?)"
                               % (request_id, timeout))
        finally:
            if consumer is not None:
                consumer.close()

    def trigger(self, brief, model=None, strategy=None, strategy_path=None, bypass_gates=False,
                force=False, options=None, request_id=None, timeout=30.0):
        """Start a research. Returns its Outcome (accepted / rejected with reason and
        figures); raises ValueError for a trigger the coordinator would refuse as invalid,
        TimeoutError when no outcome came within `timeout` seconds."""
        request_id = request_id or new_request_id("req")
        wire = protocol.encode_trigger(request_id, brief, model=model, strategy=strategy,
                                       strategy_path=strategy_path, bypass_gates=bypass_gates,
                                       force=force, options=options)
        return self._request(request_id, wire, request_id, ("accepted", "rejected"), timeout)

    def cancel(self, research_id, reason=None, request_id=None, timeout=30.0):
        """Cancel a research: Outcome `cancelled` or `cancel_rejected` (not_found,
        not_cancellable). Its running phase's worker gets an abort."""
        request_id = request_id or new_request_id("cancel")
        wire = protocol.encode_cancel(research_id, request_id=request_id, reason=reason)
        return self._request(research_id, wire, request_id, ("cancelled", "cancel_rejected"),
                             timeout)

    def resume(self, research_id, reason=None, force=False, request_id=None, timeout=30.0):
        """Re-open a failed or cancelled research at the phase it stopped in: Outcome
        `resumed` (with phase) or `resume_rejected` (not_found, not_resumable,
        at_capacity)."""
        request_id = request_id or new_request_id("resume")
        wire = protocol.encode_resume(research_id, request_id=request_id, reason=reason,
                                      force=force)
        return self._request(research_id, wire, request_id, ("resumed", "resume_rejected"),
                             timeout)

    # ---- reads -------------------------------------------------------------------------

    def research(self, research_id):
        """The research hash as a dict of strings (numbers as the coordinator wrote them),
        or None when there is no such research (or it expired)."""
        h = self.redis.hgetall(protocol.key_research(self.config.key_prefix, research_id))
        return h or None

    def wait(self, research_id, timeout=60.0, poll=0.1):
        """Wait until the research is finished (completed, failed or cancelled) and return
        its hash; TimeoutError after `timeout` seconds."""
        deadline = time.monotonic() + timeout
        while True:
            r = self.research(research_id)
            if r is not None and r.get(protocol.RF_STATUS) in protocol.FINAL_STATUSES:
                return r
            if time.monotonic() >= deadline:
                raise TimeoutError("research %s not finished within %s s (phase %s)" % (
                    research_id, timeout, (r or {}).get(protocol.RF_PHASE)))
            time.sleep(poll)

    def status(self):
        """What `researchctl status` shows, as data: {"active": [research summaries, oldest
        first], "workers": {type: [heartbeat dicts]}, "coordinator": {...}, "budget": {...}}."""
        prefix = self.config.key_prefix
        r = self.redis
        p = r.pipeline(transaction=False)
        p.zrange(protocol.key_active(prefix), 0, -1)
        for wt in protocol.WORKER_TYPES:
            p.zrange(protocol.key_workers(prefix, wt), 0, -1)
        p.hgetall(protocol.key_coordinator(prefix))
        p.hgetall(protocol.key_budget(prefix, time.strftime("%Y-%m-%d", time.gmtime())))
        replies = p.execute()
        active_ids, worker_sets = replies[0], replies[1:1 + len(protocol.WORKER_TYPES)]
        coordinator, budget = replies[-2], replies[-1]
        fields = ("research_id", "phase", "strategy_name", "phase_started_at", "waiting_since",
                  "worker_id", "child_status", "attempt")
        p = r.pipeline(transaction=False)
        for rid in active_ids:
            p.hmget(protocol.key_research(prefix, rid), fields)
        for ids in worker_sets:
            for wid in ids:
                p.hgetall(protocol.key_worker(prefix, wid))
        replies = p.execute()
        active = [dict(zip(fields, row), research_id=rid)
                  for rid, row in zip(active_ids, replies)]
        workers, i = {}, len(active_ids)
        for wt, ids in zip(protocol.WORKER_TYPES, worker_sets):
            workers[wt] = []
            for wid in ids:
                hb = dict(replies[i], worker_id=wid)
                i += 1
                workers[wt].append(hb)
        return {"active": active, "workers": workers, "coordinator": coordinator,
                "budget": budget}

    def events(self, research_id=None, follow=False, timeout=None):
        """Decoded lifecycle events from the start of the events topic, deduplicated by
        (research_id, type, dispatch_id) since delivery is at least once; only
        `research_id`'s when given. follow=False: stop once caught up with the end as of the
        call; follow=True: go on waiting for new ones (until `timeout` s, if given)."""
        from confluent_kafka import KafkaError
        consumer = self._consumer(eof=True)
        try:
            ends = self._assign_events(consumer, at_end=False)
            pending = {p for p, hi in ends.items() if hi > 0}
            seen = set()
            deadline = None if timeout is None else time.monotonic() + timeout
            while True:
                if not follow and not pending:
                    return
                if deadline is not None and time.monotonic() >= deadline:
                    return
                m = consumer.poll(POLL_S)
                if m is None:
                    continue
                if m.error() is not None:
                    if m.error().code() == KafkaError._PARTITION_EOF:
                        pending.discard(m.partition())
                    continue
                if m.offset() + 1 >= ends.get(m.partition(), 0):
                    pending.discard(m.partition())
                try:
                    ev = protocol.decode_event(m.value())
                except protocol.InvalidMessage:
                    continue
                if research_id is not None and ev.get("research_id") != research_id:
                    continue
                # (research_id, type, dispatch_id) as the protocol says, plus what tells
                # apart events that have none: the two gates, rejections of two requests.
                key = (ev.get("research_id"), ev["type"], ev.get("dispatch_id"),
                       ev.get("gate"), ev.get("request_id"))
                if key in seen:
                    continue
                seen.add(key)
                yield ev
        finally:
            consumer.close()
