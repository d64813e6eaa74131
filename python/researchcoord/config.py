"""Connection settings from the coordinator's own environment variables (protocol §8).

Workers and clients must reach the same brokers and Redis and name the same topics and keys as
the coordinator, so they read the same variables, with the same defaults and the same rules:
KAFKA_BROKERS, KAFKA_TOPIC_PREFIX, KAFKA_PROP_<NAME> (librdkafka property <name>, lower case,
'_' -> '.', as common/cfg.c maps it), REDIS_URL (redis://, unix://, redis+sentinel://),
REDIS_KEY_PREFIX and REDIS_TIMEOUT_MS. A keyword argument overrides its variable.
"""

import os
import re
from dataclasses import dataclass, field
from urllib.parse import unquote

DEFAULT_BROKERS = "127.0.0.1:9092"
DEFAULT_TOPIC_PREFIX = "research."
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"
DEFAULT_KEY_PREFIX = "rc:"
DEFAULT_REDIS_TIMEOUT_MS = 2000
KAFKA_PROP_PREFIX = "KAFKA_PROP_"

_PROP_NAME_RE = re.compile(r"\A[A-Za-z0-9_.]+\Z")


class ConfigError(ValueError):
    """A bad setting; the text names the variable, as the coordinator's start-up errors do."""


def kafka_props_from_env(environ):
    """Every KAFKA_PROP_<NAME>=value as {librdkafka name: value}; an empty value is unset."""
    props = {}
    for var, value in environ.items():
        if not var.startswith(KAFKA_PROP_PREFIX):
            continue
        raw = var[len(KAFKA_PROP_PREFIX):]
        if not raw:
            raise ConfigError("KAFKA_PROP_: the property name after KAFKA_PROP_ is empty")
        if not _PROP_NAME_RE.match(raw):
            raise ConfigError("%s: the name may hold only letters, digits, '_' and '.'" % var)
        if any(ord(c) < 0x20 or ord(c) == 0x7f for c in value):
            raise ConfigError("%s: the value must not contain control characters" % var)
        name = raw.replace("_", ".").lower()
        if name in props:
            raise ConfigError("%s: sets %s, which another KAFKA_PROP_ variable sets" % (var, name))
        if value != "":
            props[name] = value
    return props


@dataclass
class RedisTarget:
    """Where REDIS_URL points: a TCP host, a unix socket, or Sentinels and a master name."""
    host: str = None
    port: int = 6379
    unix_path: str = None
    sentinels: list = field(default_factory=list)  # [(host, port)]
    master: str = None
    db: int = 0
    username: str = None
    password: str = None


def _userinfo(s):
    """Split "[[user]:password@]rest"."""
    if "@" not in s:
        return None, None, s
    info, rest = s.rsplit("@", 1)
    if ":" in info:
        user, pw = info.split(":", 1)
        return unquote(user) or None, unquote(pw), rest
    return None, unquote(info), rest  # redis://secret@host: a password alone


def _hostport(s, var, need_port=False):
    m = re.match(r"\A(\[[^\]]+\]|[^:/\[\]]+)(?::(\d+))?\Z", s)
    if not m or (need_port and m.group(2) is None):
        raise ConfigError("%s: bad host%s %r" % (var, ":port" if need_port else "[:port]", s))
    port = int(m.group(2)) if m.group(2) else 6379
    if not 0 < port < 65536:
        raise ConfigError("%s: port must be 1..65535" % var)
    return m.group(1).strip("[]"), port


def _db(text, var):
    if not text.isdigit():
        raise ConfigError("%s: db must be a whole number (got %r)" % (var, text))
    return int(text)


def parse_redis_url(url, var="REDIS_URL"):
    """REDIS_URL's three forms, as common/cfg.c accepts them."""
    low = url.lower()
    t = RedisTarget()
    if low.startswith("redis://"):
        t.username, t.password, rest = _userinfo(url[len("redis://"):])
        hostport, _, db = rest.partition("/")
        t.host, t.port = _hostport(hostport, var)
        t.db = _db(db, var) if db else 0
    elif low.startswith("unix://"):
        rest = url[len("unix://"):]
        path, _, query = rest.partition("?")
        if not path.startswith("/"):
            raise ConfigError("%s: unix socket path must be absolute (unix:///path)" % var)
        if query:
            if not query.startswith("db="):
                raise ConfigError("%s: only ?db=N may follow a unix socket path" % var)
            t.db = _db(query[3:], var)
        t.unix_path = path
    elif low.startswith("redis+sentinel://"):
        t.username, t.password, rest = _userinfo(url[len("redis+sentinel://"):])
        parts = rest.split("/")
        if len(parts) < 2 or not parts[1]:
            raise ConfigError("%s: the Sentinel master name is missing" % var)
        t.sentinels = [_hostport(hp, var, need_port=True) for hp in parts[0].split(",")]
        t.master = parts[1]
        t.db = _db(parts[2], var) if len(parts) > 2 and parts[2] else 0
    else:
        raise ConfigError("%s: must be redis://[[user]:password@]host[:port][/db], "
                          "unix:///path[?db=N] or redis+sentinel://[[user]:password@]"
                          "host:port[,host:port...]/<master name>[/db]" % var)
    return t


@dataclass
class Config:
    """Everything a worker or a client needs to reach the coordinator's Kafka and Redis."""
    brokers: str = DEFAULT_BROKERS
    topic_prefix: str = DEFAULT_TOPIC_PREFIX
    kafka_props: dict = field(default_factory=dict)
    redis_url: str = DEFAULT_REDIS_URL
    key_prefix: str = DEFAULT_KEY_PREFIX
    redis_timeout_ms: int = DEFAULT_REDIS_TIMEOUT_MS

    @classmethod
    def from_env(cls, environ=None, **overrides):
        """The settings in `environ` (default os.environ), then `overrides` (None = unset)."""
        env = os.environ if environ is None else environ

        def var(name, default):
            v = env.get(name, "")
            return v if v != "" else default

        timeout = var("REDIS_TIMEOUT_MS", str(DEFAULT_REDIS_TIMEOUT_MS))
        if not timeout.isdigit() or not 1 <= int(timeout) <= 3600000:
            raise ConfigError("REDIS_TIMEOUT_MS: must be a whole number of ms 1..3600000")
        c = cls(brokers=var("KAFKA_BROKERS", DEFAULT_BROKERS),
                topic_prefix=var("KAFKA_TOPIC_PREFIX", DEFAULT_TOPIC_PREFIX),
                kafka_props=kafka_props_from_env(env),
                redis_url=var("REDIS_URL", DEFAULT_REDIS_URL),
                key_prefix=var("REDIS_KEY_PREFIX", DEFAULT_KEY_PREFIX),
                redis_timeout_ms=int(timeout))
        for k, v in overrides.items():
            if v is None:
                continue
            if not hasattr(c, k):
                raise TypeError("unknown setting %r" % k)
            if k == "kafka_props":
                v = dict(c.kafka_props, **v)
            setattr(c, k, v)
        parse_redis_url(c.redis_url)  # a bad URL is an error now, not at the first command
        return c

    def topic(self, suffix):
        """The full topic name for a suffix of protocol.py (TOPIC_*, topic_dispatch())."""
        return self.topic_prefix + suffix

    def kafka_conf(self, defaults=None):
        """A confluent_kafka configuration: the brokers, our `defaults`, then every
        KAFKA_PROP_* (which win), the order common/kclient.c applies them in."""
        conf = {"bootstrap.servers": self.brokers}
        conf.update(defaults or {})
        conf.update(self.kafka_props)
        return conf

    def redis(self):
        """A redis-py client for REDIS_URL, with REDIS_TIMEOUT_MS as connect and command
        timeout. It reconnects by itself after an outage."""
        import redis  # here: protocol and config stay importable without the client libs
        t = parse_redis_url(self.redis_url)
        timeout = self.redis_timeout_ms / 1000.0
        common = dict(db=t.db, username=t.username, password=t.password,
                      socket_timeout=timeout, socket_connect_timeout=timeout,
                      decode_responses=True)
        if t.unix_path is not None:
            return redis.Redis(unix_socket_path=t.unix_path, **common)
        if t.master is not None:
            from redis.sentinel import Sentinel
            s = Sentinel(t.sentinels, socket_timeout=timeout,
                         sentinel_kwargs={"socket_timeout": timeout,
                                          "username": t.username, "password": t.password})
            return s.master_for(t.master, **common)
        return redis.Redis(host=t.host, port=t.port, **common)
