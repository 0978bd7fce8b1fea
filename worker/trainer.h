/* The trainer: runs one trial (a trial spec) from data loading to the best model, with
 * mini-batches, the optimizer, learning-rate decay, early stopping, per-epoch metrics,
 * divergence detection and the bias/variance diagnosis. */
#ifndef CV_TRAINER_H
#define CV_TRAINER_H

#include <stddef.h>

#include "common/epoch.h"
#include "common/err.h"
#include "common/trial_spec.h"
#include "worker/diagnosis.h"
#include "worker/nn.h"
#include "worker/trial_data.h"

/* How a trial ended. */
typedef enum {
    CV_TRIAL_COMPLETED, /* all epochs ran, or early stopping ended it */
    CV_TRIAL_DIVERGED,  /* a cost became NaN or infinite; diverged_epoch says when */
    CV_TRIAL_FAILED,    /* the data or the spec could not be used; error says why */
    CV_TRIAL_STOPPED,   /* the caller asked it to stop: its output is discarded */
    CV_TRIAL_PRUNED,    /* the caller's pruner ended it early: a result like COMPLETED, with
                           the best epoch so far and its model saved */
} cv_trial_status_t;

const char *cv_trial_status_name(cv_trial_status_t s);

/* What an epoch callback answers. */
typedef enum {
    CV_EPOCH_GO_ON = 0, /* train the next epoch */
    CV_EPOCH_STOP = 1,  /* stop: status STOPPED */
    CV_EPOCH_PRUNE = 2, /* stop: status PRUNED (the best model is still saved) */
} cv_epoch_verdict_t;

/* Called after every epoch, once the best epoch so far is known; returns a cv_epoch_verdict_t
 * (any other non-zero value stops the trial as CV_EPOCH_STOP does). */
typedef int (*cv_on_epoch_fn)(const cv_epoch_t *m, void *userdata);

typedef struct {
    cv_on_epoch_fn on_epoch;    /* may be NULL */
    void *userdata;
    int evaluate_test;          /* 1: score the test set with the best model at the end */
    const char *save_model;     /* overrides spec->save_model when non-NULL */
} cv_train_options_t;

typedef struct {
    cv_trial_status_t status;
    int epochs_run;             /* epochs completed */
    int best_epoch;             /* 1-based epoch of the lowest dev cost; 0 if none */
    int diverged_epoch;         /* 1-based epoch whose cost went non-finite; 0 if none */
    cv_epoch_t best;            /* metrics of best_epoch: what the trial reports */
    double examples_per_second; /* training throughput over all epochs */
    double seconds;             /* wall time of the whole trial, loading included */
    cv_diagnosis_t diagnosis;   /* from best's errors and the spec's human_error */
    size_t m_train, m_dev, m_test;
    int n_features, classes;
    size_t n_params;
    int tested;                 /* 1 when test_error/test_cost were computed */
    double test_error, test_cost;
    char error[CV_ERRLEN];      /* reason when FAILED or DIVERGED */
    int job_fault;              /* FAILED only: 1 when the trial itself is at fault (its data
                                   could not be loaded or parsed, its spec does not fit the data,
                                   its network could not be allocated), so any worker would fail
                                   the same way; 0 when this machine is (saving the model) */
} cv_train_result_t;

/* Trains one trial. Returns 0 whenever a result was produced (completed, diverged, stopped or
 * pruned; whenever there is a best epoch, its model is saved) and a negative code with err set
 * when the trial failed (res->status is then FAILED and res->error holds the same reason). */
int cv_train_run(const cv_trial_spec_t *spec, const cv_train_options_t *opts,
                 cv_train_result_t *res, char *err);

/* Scores ds (already normalized unless norm is given, in which case rows are normalized in a
 * scratch copy of chunk rows) with the network in inference mode, chunk rows at a time
 * (chunk ≤ net->batch_cap). Writes the mean cross-entropy and the error rate. scratch holds
 * chunk × ds->n floats when norm is given, else may be NULL. */
void cv_train_score(cv_nnf_net_t *net, const cv_dataset_t *ds, size_t chunk,
                    const cv_normalizer_t *norm, float *scratch, double *cost, double *error);

#endif
