/* SPDX-License-Identifier: MIT
 * gate: the two quality gates of contract §5, judged from a research's stored results with
 * the thresholds of the environment. Pure. */
#ifndef RC_GATE_H
#define RC_GATE_H

#include <stdbool.h>

struct cfg_gates;
struct research;

struct gate_outcome {
    bool passed;
    char reason[160]; /* when failed: "training: accuracy 0.05 < 0.10" (the first failed check) */
};

/* Judge the training result stored in `r` (training.* fields). */
void gate_training(const struct cfg_gates *g, const struct research *r, struct gate_outcome *out);
/* Judge the backtest result, by the training result's output_format. */
void gate_backtest(const struct cfg_gates *g, const struct research *r, struct gate_outcome *out);

#endif /* RC_GATE_H */
