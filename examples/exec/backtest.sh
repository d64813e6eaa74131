#!/bin/sh
# SPDX-License-Identifier: MIT
# backtest.sh: a backtest worker for rcw-exec (docs/workers.md):
#
#     rcw-exec --type backtest --id bt-1 -- ./examples/exec/backtest.sh
#
# stdin holds the dispatch as JSON ({"params": {...}, "options": {...}|null, ...}); the ids
# are in RC_RESEARCH_ID, RC_DISPATCH_ID, RC_ATTEMPT, RC_PHASE, RC_WORKER_ID; progress lines
# go to the descriptor $RC_PROGRESS_FD; stdout is the result (one JSON object); a non-zero
# exit fails the dispatch with the end of stderr as its error. An abort sends SIGTERM.
set -eu

input=$(cat)
case $input in
*'"strategy_name":null'*)
    echo "no strategy to backtest" >&2
    exit 2
    ;;
esac
symbol=$(printf '%s' "$input" | sed -n 's/.*"options":{[^}]*"symbol":"\([A-Za-z0-9]*\)".*/\1/p')
echo "backtesting ${symbol:-default} for $RC_RESEARCH_ID (attempt $RC_ATTEMPT)" >&2

for i in 1 2 3 4; do
    sleep 0.1
    echo "progress 0.$((i * 2)) window $i/4" >&"$RC_PROGRESS_FD"
done

cat <<JSON
{"win_rate": 0.55, "max_drawdown": 0.12, "sharpe_ratio": 1.4, "total_return": 0.18,
 "net_return": 0.15, "total_trades": 42}
JSON
