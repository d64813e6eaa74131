"""The coordinator's wire protocol, in one pure module: names, limits, messages, results.

Every name the protocol gives (topics, Redis keys, hash fields, states, message keys) is
spelled here once, so that worker.py, client.py and testing.py never repeat one. Messages are
encoded exactly as the C side's proto/msg.c writes them: one MessagePack map with `v`, `type`,
`ts` first and then every key of the message's table, nil where it has no value. Decoders
validate what a worker or a client acts on, and raise InvalidMessage (never anything else) for
bytes that break the rules, so that a bad message is skipped, not fatal. No I/O here.
"""

import math
import re
import time

import msgpack

SCHEMA_VERSION = 1

# ---- names ----------------------------------------------------------------------------------

WORKER_TYPES = ("design", "training", "backtest", "assessment")
# The phase each worker type runs, and back.
PHASE_OF = {"design": "designing", "training": "training",
            "backtest": "backtesting", "assessment": "assessing"}
TYPE_OF = {phase: wt for wt, phase in PHASE_OF.items()}
PHASES = ("pending", "designing", "training", "backtesting", "assessing",
          "completed", "failed", "cancelled")
FINAL_STATUSES = ("completed", "failed", "cancelled")

# Topic suffixes: the full name is KAFKA_TOPIC_PREFIX + suffix.
TOPIC_TRIGGERS = "triggers"
TOPIC_COMPLETIONS = "completions"
TOPIC_EVENTS = "events"
TOPIC_DEADLETTER = "deadletter"


def topic_dispatch(worker_type):
    """The suffix of the topic carrying dispatches and aborts to `worker_type` workers."""
    return "dispatch." + worker_type


# Redis keys (each is REDIS_KEY_PREFIX + name [+ ':' + id]).
def key_research(prefix, research_id):
    return "%sresearch:%s" % (prefix, research_id)


def key_worker(prefix, worker_id):
    return "%sworker:%s" % (prefix, worker_id)


def key_workers(prefix, worker_type):
    return "%sworkers:%s" % (prefix, worker_type)


def key_active(prefix):
    return prefix + "active"


def key_finished(prefix):
    return prefix + "finished"


def key_coordinator(prefix):
    return prefix + "coordinator"


def key_budget(prefix, utc_day):
    return "%sbudget:%s" % (prefix, utc_day)


# Heartbeat hash fields and states (§5).
HB_TYPE, HB_STATE, HB_DISPATCH_ID, HB_RESEARCH_ID, HB_LAST_SEEN = (
    "type", "state", "dispatch_id", "research_id", "last_seen")
HB_PROGRESS, HB_STEP, HB_HOST, HB_LABELS = "progress", "step", "host", "labels"
STATE_IDLE, STATE_BUSY, STATE_DRAINING = "idle", "busy", "draining"

# Research hash fields a worker or client reads.
RF_DISPATCH_ID = "dispatch_id"
RF_STATUS = "status"
RF_PHASE = "phase"

# Completion statuses (§3).
COMPLETED, FAILED, RELEASED = "completed", "failed", "released"
COMPLETION_STATUSES = (COMPLETED, FAILED, RELEASED)

# The key of every phase's params that carries the trigger's options map (§1).
PARAM_OPTIONS = "options"

# ---- limits (§3) ----------------------------------------------------------------------------

ID_MAX = 128
BRIEF_MAX = 16384
STRING_MAX = 4096
MESSAGE_MAX = 1048576
OPTIONS_MAX = 16384
MAP_MAX = 256
STEP_MAX = 256
LABELS_MAX = 1024
COST_MAX = 1000000.0
TOKENS_MAX = 10 ** 12
INT64_MIN, INT64_MAX = -(2 ** 63), 2 ** 63 - 1

_ID_RE = re.compile(r"\A[A-Za-z0-9._:-]{1,128}\Z")


class InvalidMessage(ValueError):
    """Bytes that break the protocol's rules; the text says which key and why."""


class BadResult(ValueError):
    """A handler's result that the coordinator would refuse ("bad result: ...")."""


def is_id(s):
    """True for 1-128 bytes of [A-Za-z0-9._:-] (the id rule of §3)."""
    return isinstance(s, str) and _ID_RE.match(s) is not None


def check_id(name, s):
    """Raise ValueError unless `s` keeps the id rule; for ids the caller chooses."""
    if not is_id(s):
        raise ValueError("%s: must be 1-128 bytes of [A-Za-z0-9._:-] (got %r)" % (name, s))
    return s


def is_text(s, max_bytes=STRING_MAX):
    """A string with no NUL that fits `max_bytes` in UTF-8 (surrogates cannot be encoded)."""
    if not isinstance(s, str) or "\0" in s:
        return False
    try:
        return len(s.encode("utf-8")) <= max_bytes
    except UnicodeEncodeError:
        return False


def clip_text(s, max_bytes=STRING_MAX):
    """`s` cut to at most max_bytes of UTF-8 on a character boundary, NULs and surrogates
    replaced: for texts we send but do not control (an exception's message)."""
    b = str(s).replace("\0", " ").encode("utf-8", "replace")[:max_bytes]
    return b.decode("utf-8", "ignore")


def now_ms():
    return int(time.time() * 1000)


# ---- JSON-like values (options) -------------------------------------------------------------

_DEPTH_MAX = 16


def check_json_like(value, where="options", depth=0):
    """Raise ValueError unless `value` is nil, bool, int64, finite float, str, a list or a map
    with string keys of such values, at most 16 deep: what the trigger's `options` may hold."""
    if depth > _DEPTH_MAX:
        raise ValueError("%s: nested deeper than %d levels" % (where, _DEPTH_MAX))
    if value is None or isinstance(value, bool) or isinstance(value, str):
        if isinstance(value, str) and not is_text(value, MESSAGE_MAX):
            raise ValueError("%s: not valid text" % where)
        return
    if isinstance(value, int):
        if not INT64_MIN <= value <= INT64_MAX:
            raise ValueError("%s: integer out of int64 range" % where)
        return
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError("%s: must be a finite number" % where)
        return
    if isinstance(value, (list, tuple)):
        for i, v in enumerate(value):
            check_json_like(v, "%s[%d]" % (where, i), depth + 1)
        return
    if isinstance(value, dict):
        for k, v in value.items():
            if not isinstance(k, str):
                raise ValueError("%s: map keys must be strings" % where)
            check_json_like(v, "%s.%s" % (where, k), depth + 1)
        return
    raise ValueError("%s: %s is not a JSON-like value" % (where, type(value).__name__))


# ---- encoding -------------------------------------------------------------------------------

def _nil_empty(v):
    """"" is nil on the wire, as msg.c's enc_str writes it."""
    return None if v == "" else v


def _encode(msg_type, fields, ts_ms=None):
    """The map msg.c writes: v, type, ts, then every key of the table in order."""
    m = {"v": SCHEMA_VERSION, "type": msg_type, "ts": now_ms() if ts_ms is None else ts_ms}
    for k, v in fields:
        m[k] = _nil_empty(v)
    data = msgpack.packb(m, use_bin_type=True)
    if len(data) > MESSAGE_MAX:
        raise ValueError("%s: larger than %d bytes encoded" % (msg_type, MESSAGE_MAX))
    return data


def encode_trigger(request_id, brief, model=None, strategy=None, strategy_path=None,
                   bypass_gates=False, force=False, options=None, ts_ms=None):
    """A trigger (upstream -> triggers), checked first so that a mistake is a local error
    rather than a `rejected: invalid` event."""
    check_id("request_id", request_id)
    if not brief or not is_text(brief, BRIEF_MAX):
        raise ValueError("brief: required, text of at most %d bytes" % BRIEF_MAX)
    for name, v in (("model", model), ("strategy", strategy), ("strategy_path", strategy_path)):
        if v is not None and not is_text(v):
            raise ValueError("%s: text of at most %d bytes" % (name, STRING_MAX))
    if options is not None:
        if not isinstance(options, dict):
            raise ValueError("options: must be a map")
        check_json_like(options)
        if len(msgpack.packb(options, use_bin_type=True)) > OPTIONS_MAX:
            raise ValueError("options: longer than %d bytes encoded" % OPTIONS_MAX)
    return _encode("trigger", [
        ("request_id", request_id), ("brief", brief), ("model", model),
        ("strategy", strategy), ("strategy_path", strategy_path),
        ("bypass_gates", bool(bypass_gates)), ("force", bool(force)),
        ("options", options)], ts_ms)


def encode_cancel(research_id, request_id=None, reason=None, ts_ms=None):
    check_id("research_id", research_id)
    if request_id is not None:
        check_id("request_id", request_id)
    if reason is not None and not is_text(reason):
        raise ValueError("reason: text of at most %d bytes" % STRING_MAX)
    return _encode("cancel", [("research_id", research_id), ("request_id", request_id),
                              ("reason", reason)], ts_ms)


def encode_resume(research_id, request_id=None, reason=None, force=False, ts_ms=None):
    """The v3 `resume` (upstream -> triggers): re-open a failed or cancelled research."""
    check_id("research_id", research_id)
    if request_id is not None:
        check_id("request_id", request_id)
    if reason is not None and not is_text(reason):
        raise ValueError("reason: text of at most %d bytes" % STRING_MAX)
    return _encode("resume", [("research_id", research_id), ("request_id", request_id),
                              ("reason", reason), ("force", bool(force))], ts_ms)


def encode_completion(dispatch_id, research_id, worker_id, status, error=None, result=None,
                      ts_ms=None):
    """A completion (worker -> completions). `result` is sent only with `completed`."""
    if status not in COMPLETION_STATUSES:
        raise ValueError("status: must be one of %s" % ", ".join(COMPLETION_STATUSES))
    if error is not None:
        error = clip_text(error)
    return _encode("completion", [
        ("dispatch_id", dispatch_id), ("research_id", research_id), ("worker_id", worker_id),
        ("status", status), ("error", error),
        ("result", result if status == COMPLETED else None)], ts_ms)


def encode_dispatch(dispatch_id, research_id, worker_id, worker_type, attempt, params,
                    ts_ms=None):
    """A dispatch as the coordinator writes it: for tests and the testing helper."""
    return _encode("dispatch", [
        ("dispatch_id", dispatch_id), ("research_id", research_id), ("worker_id", worker_id),
        ("phase", PHASE_OF[worker_type]), ("worker_type", worker_type), ("attempt", attempt),
        ("params", params)], ts_ms)


def encode_abort(dispatch_id, research_id, worker_id, reason="cancelled", ts_ms=None):
    return _encode("abort", [("dispatch_id", dispatch_id), ("research_id", research_id),
                             ("worker_id", worker_id), ("reason", reason)], ts_ms)


# ---- decoding -------------------------------------------------------------------------------

def _unpack(data):
    """Exactly one map with string keys, v absent or 1: the envelope every message keeps."""
    if not data:
        raise InvalidMessage("message: empty")
    if len(data) > MESSAGE_MAX:
        raise InvalidMessage("message: larger than %d bytes" % MESSAGE_MAX)
    try:
        m = msgpack.unpackb(data, raw=False, strict_map_key=False, use_list=True)
    except msgpack.ExtraData:
        raise InvalidMessage("message: trailing bytes after the map") from None
    except Exception as e:  # any malformed input, whatever msgpack calls it
        raise InvalidMessage("message: malformed msgpack (%s)" % e) from None
    if not isinstance(m, dict):
        raise InvalidMessage("message: not a msgpack map")
    for k in m:
        if not isinstance(k, str):
            raise InvalidMessage("message: map key is not a string")
    v = m.get("v")
    if v is not None and (isinstance(v, bool) or v != SCHEMA_VERSION):
        raise InvalidMessage("v: unsupported schema version %r (want %d)" % (v, SCHEMA_VERSION))
    t = m.get("type")
    if not t:
        raise InvalidMessage("type: required")
    if not isinstance(t, str):
        raise InvalidMessage("type: must be a string")
    ts = m.get("ts")
    if ts is not None and (isinstance(ts, bool) or not isinstance(ts, int)):
        raise InvalidMessage("ts: must be an integer")
    return {k: _nil_empty(v) for k, v in m.items()}


def _want_id(m, key, required=True):
    v = m.get(key)
    if v is None:
        if required:
            raise InvalidMessage("%s: required" % key)
        return None
    if not is_id(v):
        raise InvalidMessage("%s: must be 1-128 bytes of [A-Za-z0-9._:-]" % key)
    return v


def _want_text(m, key, required=False):
    v = m.get(key)
    if v is None:
        if required:
            raise InvalidMessage("%s: required" % key)
        return None
    if not is_text(v):
        raise InvalidMessage("%s: must be text of at most %d bytes" % (key, STRING_MAX))
    return v


def decode_dispatch_topic(data):
    """A message of a dispatch topic: a dict with `type` 'dispatch' or 'abort' and every key
    of its table (nil where absent), or InvalidMessage."""
    m = _unpack(data)
    t = m["type"]
    if t == "abort":
        return {"type": t, "ts": m.get("ts"),
                "dispatch_id": _want_id(m, "dispatch_id"),
                "research_id": _want_id(m, "research_id"),
                "worker_id": _want_id(m, "worker_id"),
                "reason": _want_text(m, "reason")}
    if t != "dispatch":
        raise InvalidMessage("type: %r is not a message type of this topic" % (t,))
    d = {"type": t, "ts": m.get("ts"),
         "dispatch_id": _want_id(m, "dispatch_id"),
         "research_id": _want_id(m, "research_id"),
         "worker_id": _want_id(m, "worker_id")}
    phase, wt = m.get("phase"), m.get("worker_type")
    if phase not in TYPE_OF:
        raise InvalidMessage("phase: %r is not a worked phase" % (phase,))
    if wt != TYPE_OF[phase]:
        raise InvalidMessage("worker_type: must be %r for phase %s" % (TYPE_OF[phase], phase))
    attempt = m.get("attempt")
    if isinstance(attempt, bool) or not isinstance(attempt, int):
        raise InvalidMessage("attempt: must be an integer")
    if attempt < 1:
        raise InvalidMessage("attempt: must be >= 1")
    params = m.get("params")
    if not isinstance(params, dict):
        raise InvalidMessage("params: must be a map")
    if len(params) > MAP_MAX:
        raise InvalidMessage("params: more than %d entries" % MAP_MAX)
    opts = params.get(PARAM_OPTIONS)
    if opts is not None and not isinstance(opts, dict):
        raise InvalidMessage("params.options: must be a map")
    d.update(phase=phase, worker_type=wt, attempt=attempt, params=params)
    return d


# Which keys each lifecycle event carries (§4), besides v, type, ts and research_id.
EVENT_KEYS = {
    "accepted": ("request_id",),
    "rejected": ("request_id", "reason", "message", "active_count", "limit", "remaining",
                 "daily_limit"),
    "phase_started": ("phase", "dispatch_id", "attempt"),
    "gate": ("gate", "passed", "reason"),
    "redispatched": ("phase", "old_dispatch_id", "dispatch_id", "attempt", "reason"),
    "completed": ("strategy_name", "verdict", "gate_rejection_reason"),
    "failed": ("phase", "error"),
    "cancelled": ("phase", "dispatch_id", "request_id"),
    "cancel_rejected": ("reason", "request_id"),
    "resumed": ("phase", "request_id"),
    "resume_rejected": ("reason", "request_id"),
}
# The figures a rejected trigger carries.
FIGURES = ("active_count", "limit", "remaining", "daily_limit")


def decode_event(data):
    """A lifecycle event as a dict: type, ts, research_id and its table's keys (nil where
    absent). Unknown event types are InvalidMessage: a reader skips them."""
    m = _unpack(data)
    t = m["type"]
    if t not in EVENT_KEYS:
        raise InvalidMessage("type: %r is not a lifecycle event" % (t,))
    ev = {"type": t, "ts": m.get("ts"), "research_id": _want_id(m, "research_id", False)}
    for k in EVENT_KEYS[t]:
        ev[k] = m.get(k)
    for k in ("request_id", "dispatch_id", "old_dispatch_id"):
        if k in ev:
            ev[k] = _want_id(m, k, False)
    return ev


def decode_completion(data):
    """A completion as a dict (for tests and tools that read research.completions)."""
    m = _unpack(data)
    if m["type"] != "completion":
        raise InvalidMessage("type: %r is not a message type of this topic" % (m["type"],))
    c = {"type": "completion", "ts": m.get("ts"),
         "dispatch_id": _want_id(m, "dispatch_id"), "research_id": _want_id(m, "research_id"),
         "worker_id": _want_id(m, "worker_id"), "error": _want_text(m, "error"),
         "result": m.get("result"), "status": m.get("status")}
    if c["status"] not in COMPLETION_STATUSES:
        raise InvalidMessage("status: must be completed, failed or released")
    if c["status"] == COMPLETED and not isinstance(c["result"], dict):
        raise InvalidMessage("result: required")
    return c


def decode_any(data):
    """Any message as a plain dict after the envelope check (for tests)."""
    return _unpack(data)


# ---- results by phase (§3) ------------------------------------------------------------------

_NUM, _STR = "number", "string"
_ANY, _TOKENS, _COST = "any", "tokens", "cost"
# key: (kind, required, allowed words or None, bound), as proto/result.c's tables.
RESULT_SCHEMA = {
    "design": {
        "strategy_name": (_STR, True, None, _ANY),
        "strategy_path": (_STR, False, None, _ANY),
        "model": (_STR, False, None, _ANY),
        "input_tokens": (_NUM, False, None, _TOKENS),
        "output_tokens": (_NUM, False, None, _TOKENS),
        "cost_usd": (_NUM, False, None, _COST),
    },
    "training": {
        "accuracy": (_NUM, False, None, _ANY),
        "final_loss": (_NUM, False, None, _ANY),
        "initial_loss": (_NUM, False, None, _ANY),
        "output_format": (_STR, False, ("classification", "regression"), _ANY),
        "directional_accuracy": (_NUM, False, None, _ANY),
        "model_path": (_STR, False, None, _ANY),
    },
    "backtest": {
        "win_rate": (_NUM, False, None, _ANY),
        "max_drawdown": (_NUM, False, None, _ANY),
        "sharpe_ratio": (_NUM, False, None, _ANY),
        "total_return": (_NUM, False, None, _ANY),
        "net_return": (_NUM, False, None, _ANY),
        "total_trades": (_NUM, False, None, _ANY),
    },
    "assessment": {
        "verdict": (_STR, True, None, _ANY),
        "model": (_STR, False, None, _ANY),
        "input_tokens": (_NUM, False, None, _TOKENS),
        "output_tokens": (_NUM, False, None, _TOKENS),
        "cost_usd": (_NUM, False, None, _COST),
    },
}


def _check_key(key, spec, v):
    """The text of what is wrong with value `v` of result key `key`, or None."""
    kind, _required, allowed, bound = spec
    if kind == _NUM:
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            return "must be a number"
        if isinstance(v, int) and not INT64_MIN <= v <= INT64_MAX:
            return "out of int64 range"
        d = float(v)
        if not math.isfinite(d):
            return "must be a finite number"
        if bound == _COST and not 0 <= d <= COST_MAX:
            return "must be 0 to 1000000 (USD)"
        if bound == _TOKENS and not (0 <= d <= TOKENS_MAX and d == math.floor(d)):
            return "must be a whole number 0 to 1000000000000"
        return None
    if not isinstance(v, str):
        return "must be a string"
    if not is_text(v):
        return "must be text of at most %d bytes with no NUL" % STRING_MAX
    if allowed is not None and v not in allowed:
        return "must be " + " or ".join(allowed)
    return None


def check_result(worker_type, result):
    """Raise BadResult unless `result` is what the coordinator accepts from a `worker_type`
    worker, with the coordinator's own words: "bad result: training: accuracy: must be a
    number". Keys outside the phase's schema are allowed (the coordinator drops them) if
    MessagePack can carry them. Returns the result to send: a dict, nil values removed."""
    where = "bad result: %s" % worker_type
    if result is None:
        result = {}
    if not isinstance(result, dict):
        raise BadResult("%s: the handler must return a dict, not %s"
                        % (where, type(result).__name__))
    if len(result) > MAP_MAX:
        raise BadResult("%s: more than %d keys" % (where, MAP_MAX))
    schema = RESULT_SCHEMA[worker_type]
    out = {}
    for k, v in result.items():
        if not isinstance(k, str) or not is_text(k) or not k:
            raise BadResult("%s: keys must be non-empty strings (got %r)" % (where, k))
        if v is None:
            continue  # nil is an absent key
        if k in schema:
            why = _check_key(k, schema[k], v)
            if why is not None:
                raise BadResult("%s: %s: %s" % (where, k, why))
        else:
            try:
                check_json_like(v, k)
            except ValueError as e:
                raise BadResult("%s: %s" % (where, e)) from None
        out[k] = v
    for k, spec in schema.items():
        if spec[1] and k not in out:
            raise BadResult("%s: %s: required" % (where, k))
    return out
