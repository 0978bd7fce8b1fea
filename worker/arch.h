/* The architecture of a fully-connected network: layer sizes, activations, batch norm, dropout
 * and output, derived from a trial spec plus the data's shape. Shared by the float network that
 * trains, the double network that checks gradients, and the model file. */
#ifndef CV_ARCH_H
#define CV_ARCH_H

#include "common/trial_spec.h"

#define CV_MAX_LAYERS (CV_MAX_HIDDEN + 1) /* layers with weights: hidden + output */

typedef struct {
    int layers;                            /* L: layers with weights (hidden + output) */
    int units[CV_MAX_LAYERS + 1];          /* units[0] inputs, units[l] layer l, units[L] outputs */
    cv_activation_t act[CV_MAX_LAYERS];    /* act[l] of hidden layer l, l = 1..L−1 */
    int batch_norm[CV_MAX_LAYERS];         /* 1: layer l (1..L−1) normalizes Z and has no bias */
    float keep_prob[CV_MAX_LAYERS];        /* dropout keep probability of A[l], l = 0..L−1 */
    cv_output_t output;                    /* softmax (C outputs) or sigmoid (1 output) */
    int classes;                           /* C */
    float leaky_slope;                     /* leaky_relu slope for z < 0 */
    float bn_momentum;                     /* weight of the past in the running averages */
    float bn_epsilon;                      /* added to the batch variance */
    float label_smoothing;                 /* ε: training targets (1−ε)·y + ε/C (C = 2 with a
                                              sigmoid output); not stored in model files, since
                                              inference does not use it */
} cv_arch_t;

/* Builds the architecture for inputs of n_x features and `classes` classes. A sigmoid output
 * needs exactly 2 classes. */
int cv_arch_from_spec(cv_arch_t *arch, const cv_trial_spec_t *spec, int n_x, int classes,
                      char *err);

/* 1 when any layer uses dropout (keep_prob < 1). */
int cv_arch_has_dropout(const cv_arch_t *arch);

#endif
