/* Loading a trial's data; see trial_data.h. */
#include "worker/trial_data.h"

#include <string.h>

#include "common/err.h"
#include "common/rng.h"

static int load_file(cv_dataset_t *ds, const cv_trial_spec_t *spec, int test, char *err) {
    if (spec->format == CV_FORMAT_IDX)
        return cv_dataset_load_idx(ds, test ? spec->test_images : spec->images,
                                   test ? spec->test_labels : spec->labels, err);
    cv_csv_options_t opts = {
        .header = spec->csv_header,
        .label_name = spec->label_column[0] ? spec->label_column : NULL,
        .label_index = spec->label_index,
        .delimiter = ',',
    };
    return cv_dataset_load_csv(ds, test ? spec->test_csv : spec->csv, &opts, err);
}

static int load(cv_trial_data_t *data, const cv_trial_spec_t *spec, int normalize, char *err) {
    memset(data, 0, sizeof *data);
    int rc = load_file(&data->all, spec, 0, err);
    if (rc) return rc;
    if (spec->split_mode == CV_SPLIT_FILES) {
        rc = load_file(&data->test_file, spec, 1, err);
        if (rc) goto fail;
        if (data->test_file.n != data->all.n) {
            rc = cv_errf(err, CV_EFORMAT, "the test file has %zu features, the training file %zu",
                         data->test_file.n, data->all.n);
            goto fail;
        }
    }
    cv_rng_t rng;
    cv_rng_seed(&rng, cv_rng_derive(spec->seed, 1)); /* stream 1: the split */
    if (spec->max_examples && spec->max_examples < data->all.m) {
        /* Shuffle first so a subsample is a random one, not the file's first rows. */
        if ((rc = cv_dataset_shuffle(&data->all, &rng, err))) goto fail;
        data->all.m = spec->max_examples;
    }
    int classes = data->all.classes;
    if (data->test_file.classes > classes) classes = data->test_file.classes;
    if (spec->classes) {
        if (classes > spec->classes) {
            rc = cv_errf(err, CV_EINVAL, "dataset.classes is %d but the labels go up to %d",
                         spec->classes, classes - 1);
            goto fail;
        }
        classes = spec->classes;
    }
    data->classes = classes;
    if ((rc = cv_dataset_check_labels(&data->all, classes, err))) goto fail;

    cv_split_fractions_t f;
    switch (spec->split_mode) {
    case CV_SPLIT_AUTO: f = cv_split_auto(data->all.m); break;
    case CV_SPLIT_FILES: f = (cv_split_fractions_t){1 - spec->split_dev, spec->split_dev, 0}; break;
    default: f = (cv_split_fractions_t){spec->split_train, spec->split_dev, spec->split_test};
    }
    rc = cv_dataset_split(&data->all, f, &rng, &data->train, &data->dev, &data->test, err);
    if (rc) goto fail;
    if (spec->split_mode == CV_SPLIT_FILES)
        data->test = cv_dataset_view(&data->test_file, 0, data->test_file.m);

    if (!normalize) return 0;
    if ((rc = cv_normalizer_fit(&data->norm, &data->train, err))) goto fail;
    data->train_raw = spec->augment_flip || spec->augment_translate;
    if (!data->train_raw) cv_normalizer_apply(&data->norm, &data->train);
    cv_normalizer_apply(&data->norm, &data->dev);
    cv_normalizer_apply(&data->norm, &data->test);
    return 0;
fail:
    cv_trial_data_finish(data);
    return rc;
}

int cv_trial_data_load(cv_trial_data_t *data, const cv_trial_spec_t *spec, char *err) {
    return load(data, spec, 1, err);
}

int cv_trial_data_load_raw(cv_trial_data_t *data, const cv_trial_spec_t *spec, char *err) {
    return load(data, spec, 0, err);
}

void cv_trial_data_finish(cv_trial_data_t *data) {
    if (!data) return;
    cv_normalizer_finish(&data->norm);
    cv_dataset_finish(&data->test_file);
    cv_dataset_finish(&data->all);
    memset(data, 0, sizeof *data);
}
