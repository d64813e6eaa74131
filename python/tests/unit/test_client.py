"""client.py without servers: outcomes from events, request ids, clients from the config."""

from researchcoord import Client, protocol
from researchcoord.client import _outcome, new_request_id


def test_outcome_of_a_rejection_carries_its_figures():
    o = _outcome({"type": "rejected", "research_id": None, "request_id": "r-1",
                  "reason": "budget_exhausted", "message": "spent", "active_count": None,
                  "limit": None, "remaining": 0.0, "daily_limit": 20.0})
    assert (o.accepted, o.reason, o.message) == (False, "budget_exhausted", "spent")
    assert o.figures == {"remaining": 0.0, "daily_limit": 20.0}


def test_outcomes_that_count_as_accepted():
    for t in ("accepted", "cancelled", "resumed"):
        assert _outcome({"type": t, "research_id": "rs-1"}).accepted
    for t in ("rejected", "cancel_rejected", "resume_rejected"):
        assert not _outcome({"type": t, "research_id": "rs-1"}).accepted


def test_request_ids_are_fresh_ids():
    a, b = new_request_id(), new_request_id("cancel")
    assert protocol.is_id(a) and protocol.is_id(b) and a != b and b.startswith("cancel-")


def test_settings_override_the_environment(monkeypatch):
    monkeypatch.setenv("KAFKA_BROKERS", "env:1")
    monkeypatch.setenv("REDIS_URL", "unix:///tmp/none.sock?db=3")
    c = Client(key_prefix="p:")
    assert c.config.brokers == "env:1" and c.config.key_prefix == "p:"
    r = c.redis  # made, not connected
    kw = r.connection_pool.connection_kwargs
    assert (kw["path"], kw["db"]) == ("/tmp/none.sock", 3)
