#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# bench_smoke: the suite's check that tools/bench runs end to end on a tiny N (--quick, without
# the Celery peer) and writes JSON that jq parses. Its figures are never judged.
# Usage: tools/bench_smoke.sh path/to/bench
set -euo pipefail
bench=$1
json=$(mktemp "${TMPDIR:-/tmp}/bench-smoke.XXXXXX")
trap 'rm -f "$json"' EXIT
"$bench" --quick --no-celery --json "$json" >/dev/null
jq -e '(.ours.throughput | length) > 0 and (.ours.cycle | length) > 0' "$json" >/dev/null
