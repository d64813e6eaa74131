"""config.py: the coordinator's variables, their defaults and KAFKA_PROP_ mapping."""

import pytest

from researchcoord.config import Config, ConfigError, kafka_props_from_env, parse_redis_url


def test_defaults():
    c = Config.from_env({})
    assert c.brokers == "127.0.0.1:9092" and c.topic_prefix == "research."
    assert c.redis_url == "redis://127.0.0.1:6379/0" and c.key_prefix == "rc:"
    assert c.redis_timeout_ms == 2000 and c.kafka_props == {}
    assert c.topic("dispatch.training") == "research.dispatch.training"


def test_from_env_and_overrides():
    env = {"KAFKA_BROKERS": "h:1", "KAFKA_TOPIC_PREFIX": "prod.", "REDIS_URL": "unix:///s",
           "REDIS_KEY_PREFIX": "p:", "KAFKA_PROP_FETCH_WAIT_MAX_MS": "5",
           "KAFKA_PROP_SECURITY_PROTOCOL": "ssl", "REDIS_TIMEOUT_MS": "500"}
    c = Config.from_env(env)
    assert (c.brokers, c.topic_prefix, c.redis_url, c.key_prefix) == (
        "h:1", "prod.", "unix:///s", "p:")
    assert c.kafka_props == {"fetch.wait.max.ms": "5", "security.protocol": "ssl"}
    assert c.redis_timeout_ms == 500
    o = Config.from_env(env, brokers="x:2", key_prefix=None, kafka_props={"linger.ms": "3"})
    assert o.brokers == "x:2" and o.key_prefix == "p:"
    assert o.kafka_props["linger.ms"] == "3" and o.kafka_props["fetch.wait.max.ms"] == "5"


def test_kafka_conf_props_win_over_defaults():
    c = Config.from_env({"KAFKA_PROP_FETCH_WAIT_MAX_MS": "5"})
    conf = c.kafka_conf({"fetch.wait.max.ms": "10", "group.id": "g"})
    assert conf == {"bootstrap.servers": "127.0.0.1:9092", "fetch.wait.max.ms": "5",
                    "group.id": "g"}


def test_empty_values_are_unset():
    c = Config.from_env({"KAFKA_BROKERS": "", "KAFKA_PROP_LINGER_MS": ""})
    assert c.brokers == "127.0.0.1:9092" and c.kafka_props == {}


@pytest.mark.parametrize("env,why", [
    ({"KAFKA_PROP_": "x"}, "is empty"),
    ({"KAFKA_PROP_A-B": "x"}, "only letters"),
    ({"KAFKA_PROP_A_B": "1", "KAFKA_PROP_A.B": "2"}, "which another"),
    ({"KAFKA_PROP_X": "a\nb"}, "control characters"),
])
def test_bad_props(env, why):
    with pytest.raises(ConfigError, match=why):
        kafka_props_from_env(env)


def test_redis_urls():
    t = parse_redis_url("redis://user:pw@host:7000/3")
    assert (t.host, t.port, t.db, t.username, t.password) == ("host", 7000, 3, "user", "pw")
    t = parse_redis_url("redis://:secret@h")
    assert (t.host, t.port, t.db, t.username, t.password) == ("h", 6379, 0, None, "secret")
    t = parse_redis_url("unix:///tmp/r.sock?db=2")
    assert (t.unix_path, t.db) == ("/tmp/r.sock", 2)
    t = parse_redis_url("redis+sentinel://a:26379,b:26380/mymaster/1")
    assert t.sentinels == [("a", 26379), ("b", 26380)] and t.master == "mymaster"
    assert t.db == 1


@pytest.mark.parametrize("url", ["http://x", "unix://rel/path", "unix:///s?foo=1",
                                 "redis://h:99999", "redis+sentinel://a/m",
                                 "redis+sentinel://a:1", "redis://h/x"])
def test_bad_redis_urls(url):
    with pytest.raises(ConfigError, match="REDIS_URL"):
        Config.from_env({"REDIS_URL": url})
