/* One epoch's metrics: the one struct the trainer fills after every epoch, the progress message
 * carries (common/message.c encodes and decodes it), the scheduler reads and the store writes
 * as one point of a trial's learning curve. */
#ifndef CV_EPOCH_H
#define CV_EPOCH_H

#include <stdint.h>

typedef struct {
    int64_t epoch;         /* 1-based */
    double train_cost;     /* cross-entropy on the scored training examples */
    double train_cost_reg; /* train_cost + λ/2m·Σ‖W‖² (+ L1 term), m = training examples */
    double dev_cost;       /* cross-entropy on the dev set */
    double train_error;    /* fraction misclassified, scored training examples, [0, 1] */
    double dev_error;      /* fraction misclassified, dev set, [0, 1] */
    double learning_rate;  /* α used during the epoch (the decayed rate), > 0 */
    double seconds;        /* wall time of the epoch, training and scoring, >= 0 */
    double examples_per_second; /* training examples per second of training steps, >= 0 */
} cv_epoch_t;

#endif
