/* The trainer: runs one trial (a trial spec) from data loading to the best model, with
 * mini-batches, the optimizer, learning-rate decay, early stopping, per-epoch metrics,
 * divergence detection and the bias/variance diagnosis. */
#ifndef CV_TRAINER_H
#define CV_TRAINER_H

#include <stddef.h>

#include "common/epoch.h"
#include "common/err.h"
#include "common/result.h"
#include "common/trial_spec.h"
#include "worker/diagnosis.h"
#include "worker/nn.h"
#include "worker/trial_data.h"

/* What an epoch callback answers. */
typedef enum {
    CV_EPOCH_GO_ON = 0, /* train the next epoch */
    CV_EPOCH_STOP = 1,  /* stop: status STOPPED */
    CV_EPOCH_PRUNE = 2, /* stop: status PRUNED (the best model is still saved) */
} cv_epoch_verdict_t;

/* Called after every epoch, once the best epoch so far is known; returns a cv_epoch_verdict_t
 * (any other non-zero value stops the trial as CV_EPOCH_STOP does). */
typedef int (*cv_on_epoch_fn)(const cv_epoch_t *m, void *userdata);

/* Called before every epoch with the trial's live hyperparameters, which it may change by
 * applying nudges (cv_trial_spec_nudge); epoch is the 1-based epoch about to train. Returns 1
 * when it changed them, else 0. The trainer then carries the change over without restarting:
 * the network keeps its parameters, the optimizer its moments, and when learning_rate changed
 * the schedule is rebased so that this epoch runs at exactly the new rate and later ones follow
 * the schedule's shape from it. epochs nudged to no more than the epochs already run ends the
 * trial before this epoch, as a completed one with its best epoch's metrics and model. */
typedef int (*cv_before_epoch_fn)(cv_trial_spec_t *live, int epoch, void *userdata);

typedef struct {
    cv_on_epoch_fn on_epoch;    /* may be NULL */
    cv_before_epoch_fn before_epoch; /* may be NULL; gets the same userdata */
    void *userdata;
    int evaluate_test;          /* 1: score the test set with the best model at the end */
    const char *save_model;     /* overrides spec->save_model when non-NULL */
} cv_train_options_t;

/* Trains one trial. Returns 0 whenever a result was produced (completed, diverged, stopped or
 * pruned; whenever there is a best epoch, its model is saved) and a negative code with err set
 * when the trial failed (res->status is then FAILED and res->error holds the same reason). */
int cv_train_run(const cv_trial_spec_t *spec, const cv_train_options_t *opts,
                 cv_trial_result_t *res, char *err);

/* Scores ds (already normalized unless norm is given, in which case rows are normalized in a
 * scratch copy of chunk rows) with the network in inference mode, chunk rows at a time
 * (chunk ≤ net->batch_cap). Writes the mean cross-entropy and the error rate. scratch holds
 * chunk × ds->n floats when norm is given, else may be NULL. */
void cv_train_score(cv_nnf_net_t *net, const cv_dataset_t *ds, size_t chunk,
                    const cv_normalizer_t *norm, float *scratch, double *cost, double *error);

#endif
