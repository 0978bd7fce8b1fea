/* A trial's result: the one struct the worker's trainer fills (or the worker itself, for a trial
 * that could not run), the result message carries (common/message.c encodes and decodes it), and
 * the scheduler and the store read. With it, how a trial ended and the bias/variance diagnosis
 * of its best epoch. */
#ifndef CV_RESULT_H
#define CV_RESULT_H

#include <stddef.h>
#include <stdint.h>

#include "common/epoch.h"
#include "common/err.h"

/* How a trial ended, as result.status on the wire. */
typedef enum {
    CV_TRIAL_COMPLETED, /* all epochs ran, or early stopping ended it */
    CV_TRIAL_DIVERGED,  /* a cost became NaN or infinite; diverged_epoch says when */
    CV_TRIAL_FAILED,    /* the data or the spec could not be used; error says why */
    CV_TRIAL_STOPPED,   /* the worker was asked to stop: the trial is given back unfinished */
    CV_TRIAL_PRUNED,    /* the coordinator's pruner ended it early: a result like COMPLETED,
                           with the best epoch so far and its model saved */
} cv_trial_status_t;

/* The wire name of a status ("completed", ...), or "unknown". Static storage. */
const char *cv_trial_status_name(cv_trial_status_t s);

/* The verdicts of the diagnosis (worker/diagnosis.h says how each is reached). */
typedef enum {
    CV_DIAG_FINE,          /* neither gap is large */
    CV_DIAG_HIGH_BIAS,     /* training and dev error far above human level */
    CV_DIAG_HIGH_VARIANCE, /* dev error far above training error */
    CV_DIAG_HIGH_BOTH,     /* both */
    CV_DIAG_LR_TOO_HIGH,   /* the cost became non-finite or the training cost rose */
    CV_DIAG_COLLAPSED,     /* the best epoch predicts at chance level */
} cv_diagnosis_kind_t;

/* The wire name of a verdict ("fine", "high_bias", "high_variance", "high_bias_and_variance",
 * "learning_rate_too_high", "collapsed"), or NULL for no such verdict. Static storage. */
const char *cv_diagnosis_name(cv_diagnosis_kind_t kind);

#define CV_DIAG_TEXT 512 /* bytes of the explanation, with its NUL */

typedef struct {
    cv_diagnosis_kind_t kind;
    const char *name;      /* cv_diagnosis_name(kind); NULL when there is no diagnosis */
    double avoidable_bias; /* train_error − human_error */
    double variance;       /* dev_error − train_error */
    double human_error;    /* the human-level error assumed, [0, 1] */
    int human_error_given; /* 1: the trial spec's human_error; 0: the default, 0 */
    const char *remedy;    /* the course's remedy for the verdict, one sentence: static storage
                              in the worker, borrowed from the message tree once decoded */
    char explanation[CV_DIAG_TEXT]; /* the evidence, with its numbers, in one or two sentences */
} cv_diagnosis_t;

#define CV_RESULT_ERROR_MAX 2560 /* bytes of a trial's error with its NUL: room for a reason and
                                    the tail of an external program's stderr (2 KiB) */

typedef struct {
    cv_trial_status_t status;
    int epochs_run;                /* epochs completed */
    int best_epoch;                /* 1-based epoch of the lowest dev cost; 0 if none */
    int diverged_epoch;            /* 1-based epoch whose cost went non-finite; 0 if none */
    cv_epoch_t best;               /* metrics of best_epoch: what the trial reports (NAN where
                                      unknown; not sent at all without a best epoch) */
    double examples_per_second;    /* training throughput over all epochs, NAN when unknown */
    double seconds;                /* wall time of the whole trial, loading included */
    cv_diagnosis_t diagnosis;      /* of best_epoch (diagnosis.name NULL: none) */
    size_t m_train, m_dev, m_test; /* examples in each split (sent when n_params > 0) */
    int n_features, classes;       /* the data's shape (the worker's own use, not sent) */
    size_t n_params;               /* the network's weights and biases; 0 when unknown */
    int tested;                    /* 1 when test_error/test_cost were computed */
    double test_error, test_cost;
    char error[CV_RESULT_ERROR_MAX]; /* reason when FAILED, DIVERGED or STOPPED, else "" (a
                                        longer one received is cut to CV_RESULT_ERROR_MAX - 1
                                        bytes) */
    int job_fault;         /* FAILED only: 1 when the trial itself is at fault (its data could
                              not be loaded or parsed, its spec does not fit the data, its
                              network could not be allocated), so any worker would fail the
                              same way; 0 when this machine is (result.fault "job"/"worker") */
} cv_trial_result_t;

#endif
