/* A trial's data: the files its spec names, loaded once, split into train/dev/test views and
 * normalized with the training set's statistics. */
#ifndef CV_TRIAL_DATA_H
#define CV_TRIAL_DATA_H

#include "common/dataset.h"
#include "common/trial_spec.h"

typedef struct {
    cv_dataset_t all;        /* the training file (owned); train and dev (and test) view it */
    cv_dataset_t test_file;  /* the separate test file (owned) in files mode, else empty */
    cv_dataset_t train, dev, test; /* views */
    cv_normalizer_t norm;    /* fitted on train */
    int classes;             /* classes of the task */
    int train_raw;           /* 1: train is left unnormalized (augmentation normalizes batches) */
} cv_trial_data_t;

/* Loads, splits (shuffled with the spec's seed) and normalizes. With augmentation the training
 * rows stay raw because flips and shifts must move raw pixels; the trainer normalizes each
 * batch. The caller owns data's buffers and releases them with cv_trial_data_finish. */
int cv_trial_data_load(cv_trial_data_t *data, const cv_trial_spec_t *spec, char *err);

/* The same split without normalization (norm is left empty): what a saved model, which carries
 * its own normalizer, is evaluated on. */
int cv_trial_data_load_raw(cv_trial_data_t *data, const cv_trial_spec_t *spec, char *err);
void cv_trial_data_finish(cv_trial_data_t *data);

#endif
