/* The diagnosis of a finished trial, with the remedies the course recommends for each case.
 *
 * First the learning rate: a trial whose cost became NaN or infinite ran with a learning rate
 * too high; a trial whose best epoch is still at chance level (training cost near ln C and
 * training error near 1 − 1/C for C classes) collapsed, and the learning rate is the first
 * suspect there too. A training cost that rose well above its lowest value, or that reached
 * many times the chance cost ln C (an untrained network's), also names the learning rate,
 * unless the best epoch is fine anyway (the explanation then mentions it). None of these calls
 * for a bigger network, so they come before bias and variance.
 *
 * Otherwise bias and variance: avoidable bias = training error − human-level error, variance =
 * dev error − training error. The human-level error (a proxy for the Bayes error) is the trial
 * spec's human_error, or 0 when not given, and the diagnosis says which. Bias counts as high only
 * when both the training and the dev error are more than the tolerance above human level: a
 * network that reaches human level on the dev set has the capacity the task needs, and a training
 * error above its dev error points at regularization or a small dev set, not at a bigger network.
 * When both gaps are large, the remedy starts with the larger one. */
#ifndef CV_DIAGNOSIS_H
#define CV_DIAGNOSIS_H

#include <stddef.h>

#include "common/result.h"

/* A gap counts as large above this many absolute error points (0.02 = 2%). */
#define CV_DIAG_TOLERANCE 0.02
/* Chance level for C classes: a training cost at least this share of ln C ... */
#define CV_DIAG_CHANCE_COST 0.9
/* ... and a training error at least this share of 1 − 1/C. */
#define CV_DIAG_CHANCE_ERROR 0.8
/* A training cost rose when its last value exceeds its lowest by this share of ln C and by a
 * quarter of the lowest value. */
#define CV_DIAG_RISE 0.1
/* A training cost above this many times ln C blew up. */
#define CV_DIAG_BLOWUP 10.0

/* What the diagnosis looks at: the best epoch's errors and cost, and the course of the training
 * cost over the epochs run. */
typedef struct {
    double train_error;     /* at the best epoch, [0, 1] */
    double dev_error;       /* at the best epoch, [0, 1] */
    double train_cost;      /* cross-entropy at the best epoch, without regularization */
    int classes;            /* C ≥ 2 */
    double human_error;     /* the spec's human_error; < 0 when not given */
    double learning_rate;   /* the spec's α, named in the explanation */
    double min_train_cost;  /* lowest training cost of any epoch */
    int min_epoch;          /* its epoch, 1-based */
    double last_train_cost; /* training cost of the last epoch scored */
    int last_epoch;         /* that epoch, 1-based */
    double max_train_cost;  /* highest training cost of any epoch */
    int max_epoch;          /* its epoch, 1-based */
    int diverged_epoch;     /* epoch whose cost became NaN or infinite; 0 if none */
} cv_diagnosis_input_t;

/* Diagnoses a trial as the comment at the top says. */
cv_diagnosis_t cv_diagnose_trial(const cv_diagnosis_input_t *in);

/* Bias and variance alone, from errors in [0, 1]; human_error < 0 means not given (taken as 0).
 * The same verdicts as cv_diagnose_trial for a trial that neither diverged nor collapsed. */
cv_diagnosis_t cv_diagnose(double train_error, double dev_error, double human_error);

#endif
