#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# bench_smoke: the suite's check that tools/bench runs end to end on a tiny N (--quick, without
# the Celery peer, with the ceiling run) and writes JSON that jq parses. Its figures are never
# judged.
# Usage: tools/bench_smoke.sh path/to/bench
set -euo pipefail
bench=$1
json=$(mktemp "${TMPDIR:-/tmp}/bench-smoke.XXXXXX")
trap 'rm -f "$json"' EXIT
"$bench" --quick --no-celery --json "$json" >/dev/null
jq -e '(.ours.throughput | length) > 0 and (.ours.cycle | length) > 0' "$json" >/dev/null
jq -e '(.ceiling.transitions_per_s | type) == "number"
  and (.ceiling.system_cpu_us_per_transition | type) == "number"
  and (.ceiling.lowload.handoff.p50_ms | type) == "number"
  and .ceiling.completed == .ceiling.n' "$json" >/dev/null
