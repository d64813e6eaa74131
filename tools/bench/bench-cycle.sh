#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# bench-cycle: how long one coordinator cycle takes with N active researches, all parked
# waiting for a training worker (none is live), so every cycle looks at every research.
# Starts its own redis-server and dev broker, seeds rc:active and the hashes directly, starts
# the coordinator with a short AGENT_POLL_INTERVAL, and samples `cycle_ms` from rc:coordinator.
# Prints one line per N: the first cycle (which marks every research waiting: N writes) and
# the steady cycles (median, p90, max), and the coordinator's peak RSS.
# tools/bench measures the same (bench_cycle.c) beside its other figures, and counts the leader
# leases lost at start: from ~50,000 researches on, loading them and the first cycle outlast
# the 2.15 s lease of AGENT_POLL_INTERVAL=0.05 (bench then ticks every second instead).
# Usage: tools/bench/bench-cycle.sh [N ...]   (default: 1000 10000); needs build/bin from the normal build.
set -euo pipefail
cd "$(dirname "$0")/../.."
BIN=$PWD/build/bin
SAMPLES=${SAMPLES:-60}
[[ $# -gt 0 ]] || set -- 1000 10000

DIR=$(mktemp -d "${TMPDIR:-/tmp}/rc-bench.XXXXXX")
PIDS=()
cleanup() {
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
    rm -rf "$DIR"
}
trap cleanup EXIT

redis-server --port 0 --unixsocket "$DIR/redis.sock" --save "" --appendonly no --dir "$DIR" \
    >"$DIR/redis.log" 2>&1 &
PIDS+=($!)
"$BIN/devbroker" --bootstrap-file "$DIR/bootstrap" >/dev/null 2>"$DIR/devbroker.log" &
PIDS+=($!)
for _ in $(seq 100); do [[ -S $DIR/redis.sock && -s $DIR/bootstrap ]] && break; sleep 0.1; done
export KAFKA_BROKERS=$(cat "$DIR/bootstrap") REDIS_URL="unix://$DIR/redis.sock"
export KAFKA_PROP_FETCH_WAIT_MAX_MS=5 AGENT_POLL_INTERVAL=0.05 LOG_LEVEL=warn
R() { redis-cli -s "$DIR/redis.sock" "$@"; }

printf '%-8s %12s %12s %12s %12s %10s\n' active first_ms median_ms p90_ms max_ms rss_mb
for N in "$@"; do
    R FLUSHALL >/dev/null
    # Seed N researches that finished design and wait for training (inline protocol, piped),
    # with their design timeline (which the coordinator writes and never holds in memory).
    now=$(($(date +%s) * 1000))
    awk -v n="$N" -v now="$now" 'BEGIN {
        for (i = 0; i < n; i++) {
            id = sprintf("rs_bench%07d", i)
            printf "HSET rc:research:%s research_id %s request_id req-%d status running phase designing child_status completed attempt 1 dispatch_id %s:designing:1 worker_id w-design-1 brief bench created_at %d updated_at %d phase_started_at %d strategy_name s%d strategy_path /s/%d.py design.strategy_name s%d bypass_gates 0 cost_usd 0 timeline.designing.started_at %d timeline.designing.finished_at %d timeline.designing.worker_id w-design-1 timeline.designing.attempts 1\r\n", id, id, i, id, now + i, now + i, now + i, i, i, i, now + i, now + i
            printf "ZADD rc:active %d %s\r\n", now + i, id
        }
    }' | R --pipe >/dev/null
    "$BIN/coordinator" 2>"$DIR/coordinator.log" &
    pid=$!
    PIDS+=($pid)
    # The first cycle marks every research waiting; collect `cycle_ms` of distinct cycles.
    declare -A seen=()
    values=()
    deadline=$((SECONDS + 120))
    while ((${#values[@]} < SAMPLES + 2 && SECONDS < deadline)); do
        mapfile -t f < <(R HMGET rc:coordinator last_cycle_at cycle_ms)
        if [[ -n ${f[0]} && -z ${seen[${f[0]}]:-} ]]; then
            seen[${f[0]}]=1
            values+=("${f[1]}")
        fi
        sleep 0.02
    done
    rss=$(awk '/VmHWM/ {printf "%.1f", $2 / 1024}' "/proc/$pid/status")
    kill "$pid"
    wait "$pid" || true
    # values[0] is the cycle before the first (0.000); values[1] the first full cycle.
    first=${values[1]}
    steady=$(printf '%s\n' "${values[@]:2}" | sort -g)
    count=$(wc -l <<<"$steady")
    median=$(sed -n "$(((count + 1) / 2))p" <<<"$steady")
    p90=$(sed -n "$(((count * 9 + 9) / 10))p" <<<"$steady")
    max=$(tail -n 1 <<<"$steady")
    printf '%-8s %12s %12s %12s %12s %10s\n' "$N" "$first" "$median" "$p90" "$max" "$rss"
    unset seen
done
