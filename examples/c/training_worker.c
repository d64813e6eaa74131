/* SPDX-License-Identifier: MIT
 * training_worker: a complete training worker on librcworker. Each dispatch "trains" for ten
 * epochs of 200 ms, reporting progress, and stops at once when aborted; then it returns a
 * result the training gate accepts. Build against an installed librcworker with
 *
 *     cc -o training_worker training_worker.c $(pkg-config --cflags --libs rcworker)
 *
 * and run it with the coordinator's environment (KAFKA_BROKERS, REDIS_URL, ...):
 *
 *     ./training_worker gpu-1          # worker id gpu-1 */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include <rcworker/rcw.h>

#define EPOCHS 10

static void
train(struct rcw_job *job, void *arg)
{
    (void)arg;
    const char *strategy = rcw_job_param_str(job, "strategy_name");
    char step[64];
    double loss = 0.92;

    fprintf(stderr, "training %s for research %s (attempt %" PRId64 "), options %s\n",
            strategy != NULL ? strategy : "?", rcw_job_research_id(job), rcw_job_attempt(job),
            rcw_job_options_json(job));
    for (int epoch = 1; epoch <= EPOCHS; epoch++) {
        if (!rcw_job_wait(job, 200)) {
            return; /* aborted, or released at shutdown: nothing is published */
        }
        loss *= 0.85;
        snprintf(step, sizeof(step), "epoch %d/%d", epoch, EPOCHS);
        rcw_job_progress(job, (double)epoch / EPOCHS, step);
    }
    if (!isfinite(loss)) {
        rcw_job_fail(job, "loss diverged");
        return;
    }
    rcw_job_result_double(job, "accuracy", 0.62);
    rcw_job_result_double(job, "initial_loss", 0.92);
    rcw_job_result_double(job, "final_loss", loss);
    rcw_job_result_str(job, "output_format", "classification");
    rcw_job_result_str(job, "model_path", "/models/example.bin");
}

int
main(int argc, char **argv)
{
    struct rc_err err = RC_ERR_INIT;
    struct rcw *w = NULL;
    const struct rcw_config cfg = {
        .type = "training",
        .id = argc > 1 ? argv[1] : NULL, /* else rcw-training-1 */
        .shutdown_grace_ms = 5000,
        .labels = "example=1",
        .handler = train,
    };

    /* Before any thread exists: SIGINT/SIGTERM become rcw_stop (draining, then released). */
    if (rcw_signals_block(&err) != RC_OK || rcw_new(&w, &cfg, &err) != RC_OK ||
        rcw_signals_start(w, &err) != RC_OK || rcw_run(w, &err) != RC_OK) {
        fprintf(stderr, "training_worker: %s\n", err.msg);
        rcw_free(w);
        return err.rc == RC_EINVAL ? 78 : 1;
    }
    rcw_free(w);
    return 0;
}
