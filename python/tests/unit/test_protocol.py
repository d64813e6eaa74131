"""protocol.py without servers: encodings as proto/msg.c writes them, validating decoders,
the id rule and the results by phase."""

import math

import msgpack
import pytest

from researchcoord import protocol as p

TS = 1700000000000


def test_abort_bytes_are_exactly_what_msg_c_writes():
    # map of 7: v, type, ts first, then the abort's table in order; ints in their shortest
    # form (msgpack-c's pack_int64), strings as str8/fixstr, every key present.
    want = (b"\x87" + b"\xa1v\x01" + b"\xa4type\xa5abort" + b"\xa2ts\xcf" +
            TS.to_bytes(8, "big") + b"\xabdispatch_id\xa4d-01" + b"\xabresearch_id\xa4rs-1" +
            b"\xa9worker_id\xa3w-1" + b"\xa6reason\xa9cancelled")
    assert p.encode_abort("d-01", "rs-1", "w-1", "cancelled", ts_ms=TS) == want


def test_trigger_writes_every_key_nil_where_absent():
    m = msgpack.unpackb(p.encode_trigger("req-1", "brief", ts_ms=TS), raw=False)
    assert list(m) == ["v", "type", "ts", "request_id", "brief", "model", "strategy",
                       "strategy_path", "bypass_gates", "force", "options"]
    assert m["v"] == 1 and m["type"] == "trigger" and m["ts"] == TS
    assert m["model"] is None and m["options"] is None
    assert m["bypass_gates"] is False and m["force"] is False


def test_trigger_options_forwarded_as_a_map_and_limited():
    opts = {"symbol": "BTCUSD", "range": [1, 2.5, None, True], "nested": {"a": {"b": "c"}}}
    m = msgpack.unpackb(p.encode_trigger("req-1", "b", options=opts), raw=False)
    assert m["options"] == opts
    with pytest.raises(ValueError, match="options: longer than 16384 bytes"):
        p.encode_trigger("req-1", "b", options={"x": "y" * 17000})
    with pytest.raises(ValueError, match="finite"):
        p.encode_trigger("req-1", "b", options={"x": math.nan})
    with pytest.raises(ValueError, match="not a JSON-like"):
        p.encode_trigger("req-1", "b", options={"x": b"bytes"})
    with pytest.raises(ValueError, match="must be a map"):
        p.encode_trigger("req-1", "b", options=[1])


@pytest.mark.parametrize("rid", ["", "a b", "x" * 129, "é", None, 5])
def test_bad_ids_are_refused_before_sending(rid):
    with pytest.raises(ValueError, match="request_id"):
        p.encode_trigger(rid, "brief")


def test_id_rule():
    assert p.is_id("rs_01:training:2") and p.is_id("a" * 128)
    assert not p.is_id("a" * 129) and not p.is_id("a/b") and not p.is_id("")


def test_brief_limit():
    p.encode_trigger("r", "x" * p.BRIEF_MAX)
    with pytest.raises(ValueError, match="brief"):
        p.encode_trigger("r", "x" * (p.BRIEF_MAX + 1))
    with pytest.raises(ValueError, match="brief"):
        p.encode_trigger("r", "")


def test_cancel_and_resume():
    c = msgpack.unpackb(p.encode_cancel("rs-1", "c-1", "why", ts_ms=TS), raw=False)
    assert list(c) == ["v", "type", "ts", "research_id", "request_id", "reason"]
    r = msgpack.unpackb(p.encode_resume("rs-1", "r-1", force=True, ts_ms=TS), raw=False)
    assert r == {"v": 1, "type": "resume", "ts": TS, "research_id": "rs-1",
                 "request_id": "r-1", "reason": None, "force": True}


def test_completion_keys_and_statuses():
    m = msgpack.unpackb(p.encode_completion("d", "r", "w", "completed", result={"a": 1}),
                        raw=False)
    assert list(m) == ["v", "type", "ts", "dispatch_id", "research_id", "worker_id", "status",
                       "error", "result"]
    assert m["result"] == {"a": 1} and m["error"] is None
    rel = msgpack.unpackb(p.encode_completion("d", "r", "w", "released", result={"a": 1}),
                          raw=False)
    assert rel["status"] == "released" and rel["result"] is None
    f = p.decode_completion(p.encode_completion("d", "r", "w", "failed", error="x" * 5000))
    assert len(f["error"]) == 4096
    with pytest.raises(ValueError):
        p.encode_completion("d", "r", "w", "maybe")


def test_dispatch_round_trip():
    params = {"strategy_name": "s", "strategy_path": None, "options": {"k": [1, 2]}}
    d = p.decode_dispatch_topic(p.encode_dispatch("rs-1:training:1", "rs-1", "w-1",
                                                  "training", 1, params))
    assert d["type"] == "dispatch" and d["phase"] == "training"
    assert d["worker_type"] == "training" and d["attempt"] == 1
    assert d["params"] == params
    a = p.decode_dispatch_topic(p.encode_abort("rs-1:training:1", "rs-1", "w-1"))
    assert a["type"] == "abort" and a["reason"] == "cancelled"


def _raw(**kv):
    base = {"v": 1, "type": "dispatch", "ts": TS, "dispatch_id": "d", "research_id": "r",
            "worker_id": "w", "phase": "training", "worker_type": "training", "attempt": 1,
            "params": {}}
    base.update(kv)
    return msgpack.packb({k: v for k, v in base.items() if v is not Ellipsis},
                         use_bin_type=True)


@pytest.mark.parametrize("data,why", [
    (b"", "empty"),
    (b"\x93\x01\x02\x03", "not a msgpack map"),
    (b"\x80\x80", "trailing bytes"),
    (b"\x81\x01\x02", "map key is not a string"),
    (b"\x81\xa1k\xc1", "malformed"),
    (_raw(v=2), "schema version"),
    (_raw(type="completion"), "not a message type of this topic"),
    (_raw(type=...), "type: required"),
    (_raw(dispatch_id=...), "dispatch_id: required"),
    (_raw(dispatch_id=""), "dispatch_id: required"),
    (_raw(worker_id="a b"), "worker_id: must be"),
    (_raw(phase="pending"), "not a worked phase"),
    (_raw(worker_type="backtest"), "worker_type: must be"),
    (_raw(attempt=0), "attempt: must be >= 1"),
    (_raw(attempt=True), "attempt: must be an integer"),
    (_raw(attempt=1.0), "attempt: must be an integer"),
    (_raw(params=[1]), "params: must be a map"),
    (_raw(params={"options": 5}), "params.options: must be a map"),
    (_raw(ts="now"), "ts: must be an integer"),
])
def test_invalid_dispatches_are_refused(data, why):
    with pytest.raises(p.InvalidMessage, match=why):
        p.decode_dispatch_topic(data)


def test_unknown_keys_ignored_and_empty_is_nil():
    d = p.decode_dispatch_topic(_raw(extra="x", params={"brief": ""}))
    assert "extra" not in d


def test_events_decode_with_figures():
    wire = msgpack.packb({"v": 1, "type": "rejected", "ts": TS, "research_id": None,
                          "request_id": "req-1", "reason": "at_capacity", "message": "full",
                          "active_count": 3, "limit": 3, "remaining": None,
                          "daily_limit": None})
    ev = p.decode_event(wire)
    assert ev["reason"] == "at_capacity" and ev["active_count"] == 3 and ev["limit"] == 3
    with pytest.raises(p.InvalidMessage):
        p.decode_event(msgpack.packb({"type": "nonsense"}))


# ---- results ------------------------------------------------------------------------------

@pytest.mark.parametrize("wt,result,why", [
    ("training", {"accuracy": "high"}, "bad result: training: accuracy: must be a number"),
    ("training", {"accuracy": True}, "bad result: training: accuracy: must be a number"),
    ("training", {"accuracy": math.nan}, "accuracy: must be a finite number"),
    ("backtest", {"sharpe_ratio": math.inf}, "sharpe_ratio: must be a finite number"),
    ("training", {"output_format": "ranking"}, "output_format: must be classification or "
                                                "regression"),
    ("training", {"model_path": 7}, "model_path: must be a string"),
    ("training", {"model_path": "x" * 4097}, "model_path: must be text"),
    ("design", {}, "bad result: design: strategy_name: required"),
    ("design", {"strategy_name": None}, "strategy_name: required"),
    ("design", {"strategy_name": "s", "cost_usd": -1}, "cost_usd: must be 0 to 1000000"),
    ("design", {"strategy_name": "s", "cost_usd": 1e6 + 1}, "cost_usd: must be 0 to"),
    ("design", {"strategy_name": "s", "input_tokens": 1.5}, "input_tokens: must be a whole"),
    ("assessment", {"verdict": "v", "output_tokens": 10 ** 12 + 1}, "output_tokens: must be"),
    ("assessment", {"verdict": "v", "input_tokens": -1}, "input_tokens: must be a whole"),
    ("assessment", {"model": "m"}, "verdict: required"),
    ("backtest", {"total_trades": 2 ** 64}, "total_trades: out of int64 range"),
    ("backtest", [1], "the handler must return a dict, not list"),
    ("backtest", {"extra": object()}, "not a JSON-like value"),
    ("backtest", {1: 2}, "keys must be non-empty strings"),
])
def test_bad_results_are_refused_with_the_coordinators_words(wt, result, why):
    with pytest.raises(p.BadResult) as e:
        p.check_result(wt, result)
    assert why in str(e.value)
    assert str(e.value).startswith("bad result: %s: " % wt)


def test_good_results_pass_nil_dropped_extra_kept():
    assert p.check_result("design", {"strategy_name": "s", "cost_usd": 0, "input_tokens": 3.0,
                                     "model": None, "notes": {"a": 1}}) == {
        "strategy_name": "s", "cost_usd": 0, "input_tokens": 3.0, "notes": {"a": 1}}
    assert p.check_result("training", None) == {}
    assert p.check_result("backtest", {"total_trades": 42, "win_rate": 0.5}) == {
        "total_trades": 42, "win_rate": 0.5}
    assert p.check_result("assessment", {"verdict": "go", "cost_usd": 1e6})["verdict"] == "go"


def test_names_in_one_place():
    assert p.topic_dispatch("training") == "dispatch.training"
    assert p.key_worker("rc:", "w-1") == "rc:worker:w-1"
    assert p.key_workers("prod:", "training") == "prod:workers:training"
    assert p.key_research("rc:", "rs-1") == "rc:research:rs-1"
    assert p.PHASE_OF["backtest"] == "backtesting" and p.TYPE_OF["assessing"] == "assessment"
