#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The run docs/researchctl.md's examples come from: the dev stack of scripts/demo.sh, with a
# training worker that fails every dispatch at first (then two rcw-exec workers running
# examples/exec/training.sh, which report their epochs) and backtests by
# examples/exec/backtest.sh; every command of "The operator's commands in detail" is run and
# printed with its exit status. Usage: scripts/researchctl-examples.sh > run.txt
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j"$(nproc)" >/dev/null
BIN=$PWD/build/bin
DIR=$(mktemp -d "${TMPDIR:-/tmp}/rc-demo.XXXXXX")
PIDS=()
cleanup() {
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
    rm -rf "$DIR"
}
trap cleanup EXIT
redis-server --port 0 --unixsocket "$DIR/redis.sock" --unixsocketperm 700 --save "" --dir "$DIR" >"$DIR/redis.log" 2>&1 &
PIDS+=($!)
"$BIN/devbroker" --partitions 3 --bootstrap-file "$DIR/bootstrap" >"$DIR/devbroker.out" 2>"$DIR/devbroker.log" &
PIDS+=($!)
for _ in $(seq 100); do [[ -S $DIR/redis.sock && -s $DIR/bootstrap ]] && break; sleep 0.1; done
KAFKA_BROKERS=$(cat "$DIR/bootstrap")
export KAFKA_BROKERS REDIS_URL="unix://$DIR/redis.sock"
export KAFKA_PROP_FETCH_WAIT_MAX_MS=5 AGENT_POLL_INTERVAL=0.5 AGENT_DAILY_BUDGET=20
export AGENT_PHASE_TIMEOUT_TRAINING=60
R() { redis-cli -s "$DIR/redis.sock" "$@"; }
"$BIN/coordinator" 2>"$DIR/coordinator.log" & PIDS+=($!)
"$BIN/stub-worker" --type design --count 2 --duration-ms 800-1500 --cost-usd 0.012 --tokens 1800,650 2>"$DIR/design.log" & PIDS+=($!)
"$BIN/stub-worker" --type training --id-prefix flaky- --count 1 --fail-prob 1 --duration-ms 600 2>"$DIR/flaky.log" & FLAKY=$!; PIDS+=("$FLAKY")
"$BIN/rcw-exec" --type backtest --count 2 -- examples/exec/backtest.sh 2>"$DIR/backtest.log" & PIDS+=($!)
"$BIN/stub-worker" --type assessment --count 1 --duration-ms 500-1000 --cost-usd 0.009 --tokens 2400,900 2>"$DIR/assessment.log" & ASSESS=$!; PIDS+=("$ASSESS")
for _ in $(seq 200); do [[ -n $(R HGET rc:coordinator last_cycle_at) && $(R ZCARD rc:workers:assessment) -ge 1 ]] && break; sleep 0.1; done
# ctl ARGS: print the command as typed (quoted where needed), its output and its exit status.
ctl() {
    local line="\$ researchctl" a
    for a in "$@"; do
        [[ $a =~ ^[A-Za-z0-9_./:=-]+$ ]] && line+=" $a" || line+=" '$a'"
    done
    echo "$line"
    "$BIN/researchctl" "$@"
    echo "[exit $?]"
    echo
}

ctl trigger --brief "momentum on BTC 1h bars" --model claude-sonnet-4-5 --options '{"symbol":"BTCUSD","timeframe":"1h"}' --follow
R1=$(R ZREVRANGE rc:finished 0 0)
kill "$FLAKY"; wait "$FLAKY" 2>/dev/null
"$BIN/rcw-exec" --type training --count 2 -- examples/exec/training.sh 2>"$DIR/training.log" & PIDS+=($!)
for _ in $(seq 100); do [[ $(R ZCARD rc:workers:training) -ge 3 ]] && break; sleep 0.1; done
ctl resume "$R1"
ctl follow "$R1"
"$BIN/researchctl" trigger --brief "mean reversion on ETH/BTC" --model claude-sonnet-4-5 --options '{"symbol":"ETHBTC"}' >/dev/null
"$BIN/researchctl" trigger --brief "volatility breakout on SOL" --options '{"symbol":"SOLUSD"}' >/dev/null
# Wait until one is training with progress.
for _ in $(seq 200); do "$BIN/researchctl" status | grep -q 'epoch' && break; sleep 0.1; done
ctl status
ctl workers
for _ in $(seq 300); do [[ $(R ZCARD rc:active) == 0 ]] && break; sleep 0.1; done
R2=$(R ZREVRANGE rc:finished 0 0)
ctl show "$R1"
ctl retry "$R2"
for _ in $(seq 300); do [[ $(R ZCARD rc:active) == 0 ]] && break; sleep 0.1; done
# Bulk cancel: no assessment worker, so researches wait after their backtest.
kill "$ASSESS"; wait "$ASSESS" 2>/dev/null
for _ in $(seq 300); do [[ $(R ZCARD rc:workers:assessment) == 0 ]] && break; sleep 0.2; done
for i in 1 2 3; do "$BIN/researchctl" trigger --brief "pairs trading $i" >/dev/null; done
waiting3() {
    local n=0
    for id in $(R ZRANGE rc:active 0 -1); do
        [[ $(R HGET "rc:research:$id" phase) == backtesting && -n $(R HGET "rc:research:$id" waiting_since) ]] && n=$((n + 1))
    done
    ((n == 3))
}
for _ in $(seq 300); do waiting3 && break; sleep 0.2; done
ctl list

ctl list --status completed --limit 1 --json
ctl list --phase backtesting
ctl cancel --phase backtesting --yes
ctl list --status cancelled --since 1h
ctl budget --days 3
