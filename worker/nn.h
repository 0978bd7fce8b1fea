/* The network numeric core in both precisions: cv_nnf_* (float, training and inference) and
 * cv_nnd_* (double, gradient checking), declared from the same nn_api.h and compiled from the
 * same nn.c, so the checked code is the trained code. */
#ifndef CV_NN_H
#define CV_NN_H

#include <stddef.h>
#include <stdint.h>

#include "common/rng.h"
#include "worker/arch.h"

/* Forward-pass modes. */
enum {
    NN_FORWARD_BATCH_STATS = 1,  /* batch norm uses the batch's mean and variance */
    NN_FORWARD_UPDATE_STATS = 2, /* ... and folds them into the running averages */
    NN_FORWARD_DROPOUT = 4,      /* draws fresh inverted-dropout masks from rng */
    NN_FORWARD_TRAIN = 7,        /* all three: a training step */
    NN_FORWARD_INFER = 0,        /* running statistics, no dropout: evaluation and prediction */
};

#define NN_REAL float
#define NN_(name) cv_nnf_##name
#include "worker/nn_api.h"
#undef NN_REAL
#undef NN_

#define NN_REAL double
#define NN_(name) cv_nnd_##name
#include "worker/nn_api.h"
#undef NN_REAL
#undef NN_

#endif
