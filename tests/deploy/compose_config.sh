#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# compose_config: deploy/compose/docker-compose.yml is valid for Debian's docker-compose
# (`config -q` says nothing), has the stack the docs describe (Kafka in KRaft mode, Redis with
# AOF, topic creation, the coordinator and a stub worker of every type, started in order)
# and creates every topic of the contract. No container engine is needed: nothing is pulled,
# built or run.
# shellcheck source=tests/deploy/lib.sh
source "$(dirname "$0")/lib.sh"

need docker-compose docker-compose

compose=$RC_SOURCE_DIR/deploy/compose/docker-compose.yml
# config -q: exit 0 and no output, not even a warning.
out=$(cd "$tmp" && docker-compose -f "$compose" config -q 2>&1) ||
    fail "docker-compose config: $out"
[[ -z $out ]] || fail "docker-compose config -q printed: $out"
echo "ok: docker-compose config -q"

(cd "$tmp" && docker-compose -f "$compose" config) >"$tmp/resolved.yml" 2>&1 ||
    fail "docker-compose config failed"
services=$(cd "$tmp" && docker-compose -f "$compose" config --services | sort | tr '\n' ' ')
want="coordinator kafka redis stub-assessment stub-backtest stub-design stub-training topics "
[[ $services == "$want" ]] || fail "services: $services, want $want"
echo "ok: services $services"

# The resolved configuration, read with the YAML parser docker-compose itself uses.
python3 - "$tmp/resolved.yml" <<'PY' ||
    fail "the stack is not what deploy/README.md describes (above)"
import sys
import yaml

with open(sys.argv[1]) as f:
    services = yaml.safe_load(f)["services"]
problems = []


def expect(ok, what):
    if not ok:
        problems.append(what)


kafka = services["kafka"]
expect(kafka["image"].startswith("apache/kafka:"), "kafka: not the apache/kafka image")
expect(kafka["environment"].get("KAFKA_PROCESS_ROLES") == "broker,controller",
       "kafka: not a KRaft broker and controller")
redis = services["redis"]
expect(redis["image"].startswith("redis:7"), "redis: not redis:7")
cmd = " ".join(redis["command"])
expect("--appendonly yes" in cmd and "--appendfsync everysec" in cmd, "redis: no AOF")
expect(any(v.endswith(":/data") or v.endswith(":/data:rw") for v in redis["volumes"]),
       "redis: /data is not a volume")
script = " ".join(services["topics"]["command"])
for topic in ["triggers", "completions", "dispatch.design", "dispatch.training",
              "dispatch.backtest", "dispatch.assessment", "events", "deadletter"]:
    expect("research." + topic + " " in script, "topics: research.%s not created" % topic)
expect("--if-not-exists" in script, "topics: creation is not idempotent")
coord = services["coordinator"]
expect(coord["build"]["dockerfile"] == "deploy/compose/Dockerfile", "coordinator: Dockerfile")
deps = coord["depends_on"]
expect(deps.get("kafka", {}).get("condition") == "service_healthy", "coordinator: kafka")
expect(deps.get("redis", {}).get("condition") == "service_healthy", "coordinator: redis")
expect(deps.get("topics", {}).get("condition") == "service_completed_successfully",
       "coordinator: starts before the topics exist")
for name in ["coordinator"] + ["stub-" + t for t in
                               ["design", "training", "backtest", "assessment"]]:
    env = services[name]["environment"]
    expect(env.get("KAFKA_BROKERS") == "kafka:9092", name + ": KAFKA_BROKERS")
    expect(env.get("REDIS_URL", "").startswith("redis://redis:6379"), name + ": REDIS_URL")
    expect(services[name]["image"] == coord["image"], name + ": not the coordinator's image")
for t in ["design", "training", "backtest", "assessment"]:
    cmd = services["stub-" + t]["command"]
    expect(cmd[:3] == ["stub-worker", "--type", t] and "--count" in cmd,
           "stub-%s: command %s" % (t, cmd))
for p in problems:
    print(p, file=sys.stderr)
sys.exit(1 if problems else 0)
PY
echo "ok: kafka (KRaft), redis (AOF), the contract's 8 topics, workers of every type, start order"

[[ -f $RC_SOURCE_DIR/deploy/compose/Dockerfile ]] || fail "no deploy/compose/Dockerfile"
[[ -f $RC_SOURCE_DIR/.dockerignore ]] || fail "no .dockerignore"
grep -q '^FROM debian:bookworm' "$RC_SOURCE_DIR/deploy/compose/Dockerfile" ||
    fail "the Dockerfile is not built on debian:bookworm"
grep -q '^USER ' "$RC_SOURCE_DIR/deploy/compose/Dockerfile" || fail "the image runs as root"
echo "ok: Dockerfile, .dockerignore"
