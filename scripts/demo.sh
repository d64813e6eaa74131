#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The dev stack, end to end: redis-server, the dev broker (librdkafka's mock cluster), the
# coordinator and stub workers of every type; three researches are triggered and shown moving
# through their phases to completion. Everything runs on 127.0.0.1 / a unix socket and is
# stopped on exit. Usage: scripts/demo.sh [--python] [number of researches, default 3]
# With --python the workers are the Python examples of examples/python/ (the researchcoord
# library, run from python/ with the system's Python) instead of stub-worker.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=0
if [[ ${1:-} == --python ]]; then
    PY=1
    shift
fi
N=${1:-3}

bash scripts/deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j"$(nproc)" >/dev/null
BIN=$PWD/build/bin

DIR=$(mktemp -d "${TMPDIR:-/tmp}/rc-demo.XXXXXX")
PIDS=()
cleanup() {
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
    echo "demo: logs were in $DIR (removed)"
    rm -rf "$DIR"
}
trap cleanup EXIT

redis-server --port 0 --unixsocket "$DIR/redis.sock" --unixsocketperm 700 --save "" \
    --appendonly yes --appendfsync everysec --dir "$DIR" >"$DIR/redis.log" 2>&1 &
PIDS+=($!)
"$BIN/devbroker" --partitions 3 --bootstrap-file "$DIR/bootstrap" >"$DIR/devbroker.out" 2>"$DIR/devbroker.log" &
PIDS+=($!)
for _ in $(seq 100); do
    [[ -S $DIR/redis.sock && -s $DIR/bootstrap ]] && break
    sleep 0.1
done
export KAFKA_BROKERS=$(cat "$DIR/bootstrap")
export REDIS_URL="unix://$DIR/redis.sock"
export KAFKA_PROP_FETCH_WAIT_MAX_MS=5 # the mock answers empty fetches only after this long
export AGENT_POLL_INTERVAL=0.5
export AGENT_DAILY_BUDGET=${AGENT_DAILY_BUDGET:-20}
# A loopback port nothing answers on, for the metrics endpoint.
for _ in $(seq 50); do
    METRICS_PORT=$((20000 + RANDOM % 20000))
    (exec 3<>"/dev/tcp/127.0.0.1/$METRICS_PORT") 2>/dev/null || break
done
export METRICS_ADDR=127.0.0.1:$METRICS_PORT
R() { redis-cli -s "$DIR/redis.sock" "$@"; }
# GET a path of the metrics endpoint with bash alone (no curl needed).
http_get() {
    exec 3<>"/dev/tcp/127.0.0.1/$METRICS_PORT"
    printf 'GET %s HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n' "$1" >&3
    sed '1,/^\r$/d' <&3
    exec 3<&-
}

"$BIN/coordinator" 2>"$DIR/coordinator.log" &
PIDS+=($!)
if ((PY)); then
    # Debian's python3 has python3-confluent-kafka, -redis and -msgpack (deps.sh).
    export PYTHONPATH=$PWD/python
    for type in design training backtest assessment; do
        /usr/bin/python3 "examples/python/${type}_worker.py" "py-$type" 2>"$DIR/$type.log" &
        PIDS+=($!)
    done
    WORKERS="Python example workers (examples/python/)"
else
    "$BIN/stub-worker" --type design --count 2 --duration-ms 800-1500 2>"$DIR/design.log" &
    PIDS+=($!)
    "$BIN/stub-worker" --type training --count 2 --duration-ms 1000-2000 2>"$DIR/training.log" &
    PIDS+=($!)
    "$BIN/stub-worker" --type backtest --count 2 --duration-ms 800-1500 2>"$DIR/backtest.log" &
    PIDS+=($!)
    "$BIN/stub-worker" --type assessment --count 1 --duration-ms 500-1000 2>"$DIR/assessment.log" &
    PIDS+=($!)
    WORKERS="7 stub workers"
fi
for _ in $(seq 200); do
    [[ -n $(R HGET rc:coordinator last_cycle_at) && $(R ZCARD rc:workers:assessment) -ge 1 ]] && break
    sleep 0.1
done
echo "demo: redis on $REDIS_URL, kafka on $KAFKA_BROKERS, coordinator and $WORKERS up"

briefs=("momentum on BTC 1h bars" "mean reversion on ETH/BTC" "volatility breakout on SOL"
        "pairs trading on majors" "funding-rate carry")
# Each trigger's options reach every phase's worker unchanged (the Python examples use them).
symbols=(BTCUSD ETHBTC SOLUSD BTCETH BTCUSD)
IDS=()
for i in $(seq "$N"); do
    out=$("$BIN/researchctl" trigger --brief "${briefs[$(((i - 1) % 5))]}" --model claude-sonnet-4-5 \
        --options "{\"symbol\":\"${symbols[$(((i - 1) % 5))]}\",\"timeframe\":\"1h\"}")
    echo "demo: $out"
    IDS+=("${out##* }")
done

declare -A last
start=$(date +%s)
shown_status=0
while :; do
    done_count=0
    for id in "${IDS[@]}"; do
        mapfile -t f < <(R HMGET "rc:research:$id" phase worker_id strategy_name verdict \
            gate_rejection_reason waiting_since child_status)
        line="${f[0]}"
        if [[ -n ${f[5]} ]]; then
            line+=" (${f[6]:-new}, waiting for a free worker)"
        elif [[ ${f[0]} =~ ^(designing|training|backtesting|assessing)$ ]]; then
            line+=" on ${f[1]}"
        fi
        [[ ${f[0]} == completed ]] && line+=" (strategy ${f[2]}, verdict ${f[3]}${f[4]:+, gate: ${f[4]}})"
        if [[ ${last[$id]:-} != "$line" ]]; then
            printf '%5ss  %s  %s\n' "$(($(date +%s) - start))" "$id" "$line"
            last[$id]=$line
        fi
        [[ ${f[0]} =~ ^(completed|failed|cancelled)$ ]] && done_count=$((done_count + 1))
    done
    ((done_count == ${#IDS[@]})) && break
    # Once, while they run: what an operator sees.
    if ((shown_status == 0 && $(date +%s) - start >= 3)); then
        echo
        echo "demo: \$ researchctl status"
        "$BIN/researchctl" status | sed 's/^/    /'
        echo
        shown_status=1
    fi
    if (($(date +%s) - start > 120)); then echo "demo: timed out" >&2; exit 1; fi
    sleep 0.2
done
echo
echo "demo: all $N researches finished."
echo
echo "demo: \$ researchctl show ${IDS[0]}"
"$BIN/researchctl" show "${IDS[0]}" | sed 's/^/    /'
echo
echo "demo: \$ researchctl status"
"$BIN/researchctl" status | sed 's/^/    /'
echo
echo "demo: \$ researchctl events --research ${IDS[0]}"
"$BIN/researchctl" events --research "${IDS[0]}" | sed 's/^/    /'
echo
echo "demo: \$ curl $METRICS_ADDR/metrics   (an excerpt)"
http_get /metrics | grep -E '^rc_(researches|research_outcomes_total|triggers_total\{outcome="accepted"|dispatches_total|gate_results_total\{gate="training"|workers_(live|busy)|budget|cycle_duration_seconds_(count|sum)|redis_up|kafka_up|leader|research_duration_seconds_count|tokens_total|spend_usd_total|waiting_researches|oldest_wait_seconds|phase_timeouts_total)' | sed 's/^/    /'
echo
echo "demo: rc:coordinator:"
R HGETALL rc:coordinator | paste - - | sed 's/^/    /' 
