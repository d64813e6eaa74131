#!/bin/sh
# SPDX-License-Identifier: MIT
# training.sh: a training stand-in for rcw-exec (docs/workers.md) that reports its epochs:
#
#     rcw-exec --type training --count 2 -- ./examples/exec/training.sh
#
# Eight "epochs" of 0.4 s, each a progress line on $RC_PROGRESS_FD, which reaches the
# heartbeat (`researchctl status`, `workers` and `follow` show it); then the result on stdout.
set -eu
cat >/dev/null # the dispatch: this stand-in needs nothing from it
for i in 1 2 3 4 5 6 7 8; do
    sleep 0.4
    echo "progress 0.$((i * 125 / 10)) epoch $i/8" >&"$RC_PROGRESS_FD"
done
cat <<JSON
{"accuracy": 0.71, "final_loss": 0.42, "initial_loss": 1.3,
 "model_path": "/models/$RC_RESEARCH_ID.pt"}
JSON
