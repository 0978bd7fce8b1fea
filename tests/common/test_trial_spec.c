/* Unit tests of common/trial_spec.c: defaults, the shapes of the architecture fields, the split
 * modes, and the exact message of each rejection (every one begins with the field's path). */
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "common/trial_spec.h"
#include "testutil.h"

/* The smallest valid dataset, spliced into most specs below. */
#define IDX_DATASET "\"dataset\": {\"format\": \"idx\", \"images\": \"img\", \"labels\": \"lab\"}"
#define IDX_TEST_FILES                                                                             \
    "\"dataset\": {\"format\": \"idx\", \"images\": \"img\", \"labels\": \"lab\", "                \
    "\"test_images\": \"timg\", \"test_labels\": \"tlab\"}"

/* Parses text (NUL-terminated) and fails the test, showing the reason, if it is refused. */
static void parse_ok(cv_trial_spec_t *spec, const char *text) {
    char err[CV_ERRLEN] = "";
    int rc = cv_trial_spec_parse(spec, text, strlen(text), err);
    ck_assert_msg(rc == 0, "refused: %s", err);
}

/* Parses text, expecting refusal with code and exactly the reason want. */
static void parse_fails(const char *text, int code, const char *want) {
    cv_trial_spec_t spec;
    char err[CV_ERRLEN] = "";
    ck_assert_int_eq(cv_trial_spec_parse(&spec, text, strlen(text), err), code);
    ck_assert_str_eq(err, want);
}

/* The source tree's root, from this file's path as the compiler saw it (meson runs tests from
 * the build directory, where a relative __FILE__ resolves). */
static void source_path(char *out, size_t cap, const char *rel) {
    const char *self = __FILE__;
    const char *tail = strstr(self, "tests/common/test_trial_spec.c");
    ck_assert_ptr_nonnull(tail);
    snprintf(out, cap, "%.*s%s", (int)(tail - self), self, rel);
}

/* ---- defaults and shapes ---- */

START_TEST(minimal_spec_gets_every_default) {
    cv_trial_spec_t s;
    parse_ok(&s, "{" IDX_DATASET "}");
    ck_assert_int_eq(s.format, CV_FORMAT_IDX);
    ck_assert_str_eq(s.images, "img");
    ck_assert_str_eq(s.labels, "lab");
    ck_assert_str_eq(s.test_images, "");
    ck_assert_str_eq(s.test_labels, "");
    ck_assert_int_eq(s.csv_header, 1);
    ck_assert_str_eq(s.label_column, "");
    ck_assert_int_eq(s.label_index, -1);
    ck_assert_int_eq(s.classes, 0);
    ck_assert_uint_eq(s.max_examples, 0);
    ck_assert_int_eq(s.split_mode, CV_SPLIT_AUTO);
    ck_assert_int_eq(s.hidden_layers, 1);
    ck_assert_int_eq(s.hidden_units[0], 128);
    ck_assert_int_eq(s.activation[0], CV_ACT_RELU);
    ck_assert_float_eq(s.keep_prob[0], 1.0f);
    ck_assert_int_eq(s.batch_norm[0], 0);
    ck_assert_float_eq(s.input_keep_prob, 1.0f);
    ck_assert_int_eq(s.output, CV_OUT_SOFTMAX);
    ck_assert_double_eq(s.leaky_slope, 0.01);
    ck_assert_int_eq(s.init, CV_INIT_HE);
    ck_assert_double_eq(s.init_scale, 1.0);
    ck_assert_double_eq(s.l2, 0.0);
    ck_assert_double_eq(s.l1, 0.0);
    ck_assert_double_eq(s.bn_momentum, 0.9);
    ck_assert_double_eq(s.bn_epsilon, 1e-5);
    ck_assert_int_eq(s.optimizer, CV_OPT_ADAM);
    ck_assert_double_eq(s.learning_rate, 0.001);
    ck_assert_double_eq(s.beta, 0.9);
    ck_assert_double_eq(s.beta1, 0.9);
    ck_assert_double_eq(s.beta2, 0.999);
    ck_assert_double_eq(s.epsilon, 1e-8);
    ck_assert_int_eq(s.decay, CV_DECAY_NONE);
    ck_assert_double_eq(s.decay_min, 0.0);
    ck_assert_int_eq(s.warmup_epochs, 0);
    ck_assert_double_eq(s.label_smoothing, 0.0);
    ck_assert_uint_eq(s.batch_size, 64);
    ck_assert_int_eq(s.epochs, 10);
    ck_assert_int_eq(s.patience, 0);
    ck_assert_uint_eq(s.seed, 1);
    ck_assert_int_eq(s.augment_flip, 0);
    ck_assert_int_eq(s.augment_translate, 0);
    ck_assert_double_eq(s.human_error, -1.0);
    ck_assert_uint_eq(s.train_eval_examples, 10000);
    ck_assert_str_eq(s.save_model, "");
}
END_TEST

START_TEST(parse_and_defaults_agree) {
    cv_trial_spec_t parsed, defaults;
    parse_ok(&parsed, "{" IDX_DATASET "}");
    cv_trial_spec_defaults(&defaults);
    /* Only the dataset differs from the defaults. */
    memcpy(defaults.images, parsed.images, sizeof defaults.images);
    memcpy(defaults.labels, parsed.labels, sizeof defaults.labels);
    ck_assert_int_eq(memcmp(&parsed, &defaults, sizeof parsed), 0);
}
END_TEST

START_TEST(every_scalar_field_is_read) {
    cv_trial_spec_t s;
    parse_ok(&s, "{" IDX_DATASET ", \"input_keep_prob\": 0.8, \"output\": \"sigmoid\", "
                 "\"leaky_slope\": 0.2, \"init\": \"xavier\", \"init_scale\": 2, \"l2\": 0.5, "
                 "\"l1\": 0.25, \"bn_momentum\": 0.5, \"bn_epsilon\": 0.001, "
                 "\"optimizer\": \"rmsprop\", \"learning_rate\": 0.05, \"beta\": 0.8, "
                 "\"beta1\": 0.7, \"beta2\": 0.99, \"epsilon\": 1e-6, \"decay\": \"staircase\", "
                 "\"decay_rate\": 0.5, \"decay_base\": 0.9, \"decay_k\": 2, \"decay_every\": 5, "
                 "\"decay_min\": 0.05, \"warmup_epochs\": 3, \"label_smoothing\": 0.1, "
                 "\"batch_size\": 128, \"epochs\": 20, \"patience\": 4, \"seed\": 42, "
                 "\"augment_flip\": true, \"augment_translate\": 2, \"human_error\": 0.05, "
                 "\"train_eval_examples\": 0, \"save_model\": \"best.model\"}");
    ck_assert_float_eq(s.input_keep_prob, 0.8f);
    ck_assert_int_eq(s.output, CV_OUT_SIGMOID);
    ck_assert_double_eq(s.leaky_slope, 0.2);
    ck_assert_int_eq(s.init, CV_INIT_XAVIER);
    ck_assert_double_eq(s.init_scale, 2.0);
    ck_assert_double_eq(s.l2, 0.5);
    ck_assert_double_eq(s.l1, 0.25);
    ck_assert_double_eq(s.bn_momentum, 0.5);
    ck_assert_double_eq(s.bn_epsilon, 0.001);
    ck_assert_int_eq(s.optimizer, CV_OPT_RMSPROP);
    ck_assert_double_eq(s.learning_rate, 0.05);
    ck_assert_double_eq(s.beta, 0.8);
    ck_assert_double_eq(s.beta1, 0.7);
    ck_assert_double_eq(s.beta2, 0.99);
    ck_assert_double_eq(s.epsilon, 1e-6);
    ck_assert_int_eq(s.decay, CV_DECAY_STAIRCASE);
    ck_assert_double_eq(s.decay_rate, 0.5);
    ck_assert_double_eq(s.decay_base, 0.9);
    ck_assert_double_eq(s.decay_k, 2.0);
    ck_assert_int_eq(s.decay_every, 5);
    ck_assert_double_eq(s.decay_min, 0.05);
    ck_assert_int_eq(s.warmup_epochs, 3);
    ck_assert_double_eq(s.label_smoothing, 0.1);
    ck_assert_uint_eq(s.batch_size, 128);
    ck_assert_int_eq(s.epochs, 20);
    ck_assert_int_eq(s.patience, 4);
    ck_assert_uint_eq(s.seed, 42);
    ck_assert_int_eq(s.augment_flip, 1);
    ck_assert_int_eq(s.augment_translate, 2);
    ck_assert_double_eq(s.human_error, 0.05);
    ck_assert_uint_eq(s.train_eval_examples, 0);
    ck_assert_str_eq(s.save_model, "best.model");
}
END_TEST

START_TEST(shorthand_units_repeat_for_every_layer) {
    cv_trial_spec_t s;
    parse_ok(&s, "{" IDX_DATASET ", \"hidden_units\": 64, \"hidden_layers\": 3}");
    ck_assert_int_eq(s.hidden_layers, 3);
    for (int i = 0; i < 3; i++)
        ck_assert_int_eq(s.hidden_units[i], 64);
}
END_TEST

START_TEST(hidden_layers_alone_use_128_units) {
    cv_trial_spec_t s;
    parse_ok(&s, "{" IDX_DATASET ", \"hidden_layers\": 2}");
    ck_assert_int_eq(s.hidden_layers, 2);
    ck_assert_int_eq(s.hidden_units[0], 128);
    ck_assert_int_eq(s.hidden_units[1], 128);
}
END_TEST

START_TEST(zero_hidden_layers_are_allowed) {
    cv_trial_spec_t s;
    parse_ok(&s, "{" IDX_DATASET ", \"hidden_layers\": 0, \"activation\": []}");
    ck_assert_int_eq(s.hidden_layers, 0);
}
END_TEST

START_TEST(units_array_sets_the_layer_count) {
    cv_trial_spec_t s;
    parse_ok(&s, "{" IDX_DATASET ", \"hidden_units\": [256, 128, 10]}");
    ck_assert_int_eq(s.hidden_layers, 3);
    ck_assert_int_eq(s.hidden_units[0], 256);
    ck_assert_int_eq(s.hidden_units[1], 128);
    ck_assert_int_eq(s.hidden_units[2], 10);
}
END_TEST

START_TEST(per_layer_arrays_set_each_layer) {
    cv_trial_spec_t s;
    parse_ok(&s, "{" IDX_DATASET ", \"hidden_units\": [8, 4], \"activation\": [\"tanh\", "
                 "\"leaky_relu\"], \"keep_prob\": [0.5, 0.75], \"batch_norm\": [true, false]}");
    ck_assert_int_eq(s.activation[0], CV_ACT_TANH);
    ck_assert_int_eq(s.activation[1], CV_ACT_LEAKY_RELU);
    ck_assert_float_eq(s.keep_prob[0], 0.5f);
    ck_assert_float_eq(s.keep_prob[1], 0.75f);
    ck_assert_int_eq(s.batch_norm[0], 1);
    ck_assert_int_eq(s.batch_norm[1], 0);
}
END_TEST

START_TEST(per_layer_scalars_fill_every_layer) {
    cv_trial_spec_t s;
    parse_ok(&s, "{" IDX_DATASET ", \"hidden_layers\": 3, \"activation\": \"sigmoid\", "
                 "\"keep_prob\": 0.5, \"batch_norm\": true}");
    for (int i = 0; i < 3; i++) {
        ck_assert_int_eq(s.activation[i], CV_ACT_SIGMOID);
        ck_assert_float_eq(s.keep_prob[i], 0.5f);
        ck_assert_int_eq(s.batch_norm[i], 1);
    }
}
END_TEST

START_TEST(integral_float_counts_as_integer) {
    cv_trial_spec_t s;
    parse_ok(&s, "{" IDX_DATASET ", \"epochs\": 3.0}");
    ck_assert_int_eq(s.epochs, 3);
}
END_TEST

START_TEST(seed_accepts_2_pow_53) {
    cv_trial_spec_t s;
    parse_ok(&s, "{" IDX_DATASET ", \"seed\": 9007199254740992}");
    ck_assert_uint_eq(s.seed, 9007199254740992ULL);
}
END_TEST

START_TEST(batch_size_accepts_2_pow_31) {
    cv_trial_spec_t s;
    parse_ok(&s, "{" IDX_DATASET ", \"batch_size\": 2147483648}");
    ck_assert_uint_eq(s.batch_size, 2147483648u);
}
END_TEST

/* ---- split ---- */

START_TEST(test_files_without_split_mean_files_mode_with_a_sixth_for_dev) {
    cv_trial_spec_t s;
    parse_ok(&s, "{" IDX_TEST_FILES "}");
    ck_assert_int_eq(s.split_mode, CV_SPLIT_FILES);
    ck_assert_double_eq(s.split_dev, 1.0 / 6.0);
    ck_assert_str_eq(s.test_images, "timg");
    ck_assert_str_eq(s.test_labels, "tlab");
}
END_TEST

START_TEST(dev_alone_means_files_mode) {
    cv_trial_spec_t s;
    parse_ok(&s, "{" IDX_TEST_FILES ", \"split\": {\"dev\": 0.1}}");
    ck_assert_int_eq(s.split_mode, CV_SPLIT_FILES);
    ck_assert_double_eq(s.split_dev, 0.1);
}
END_TEST

START_TEST(fractions_split_is_read) {
    cv_trial_spec_t s;
    parse_ok(&s, "{" IDX_DATASET ", \"split\": {\"train\": 0.5, \"dev\": 0.25, \"test\": 0.25}}");
    ck_assert_int_eq(s.split_mode, CV_SPLIT_FRACTIONS);
    ck_assert_double_eq(s.split_train, 0.5);
    ck_assert_double_eq(s.split_dev, 0.25);
    ck_assert_double_eq(s.split_test, 0.25);
}
END_TEST

START_TEST(fractions_within_tolerance_are_rescaled_to_one) {
    cv_trial_spec_t s;
    parse_ok(&s, "{" IDX_DATASET ", \"split\": {\"train\": 0.6, \"dev\": 0.2, "
                 "\"test\": 0.2000005}}");
    ck_assert_double_eq_tol(s.split_train + s.split_dev + s.split_test, 1.0, 1e-12);
}
END_TEST

START_TEST(auto_split_is_read) {
    cv_trial_spec_t s;
    parse_ok(&s, "{" IDX_DATASET ", \"split\": \"auto\"}");
    ck_assert_int_eq(s.split_mode, CV_SPLIT_AUTO);
}
END_TEST

START_TEST(split_fractions_not_summing_to_one_are_refused) {
    parse_fails("{" IDX_DATASET ", \"split\": {\"train\": 0.6, \"dev\": 0.2, \"test\": 0.1}}",
                CV_EINVAL, "split: train + dev + test must be 1, got 0.6 + 0.2 + 0.1 = 0.9");
}
END_TEST

START_TEST(split_fraction_out_of_range_is_refused) {
    parse_fails("{" IDX_DATASET ", \"split\": {\"train\": 0, \"dev\": 0.5, \"test\": 0.5}}",
                CV_ERANGE, "split.train: must be in (0, 1], got 0");
}
END_TEST

START_TEST(fractions_split_needs_all_three) {
    parse_fails("{" IDX_DATASET ", \"split\": {\"train\": 0.8, \"dev\": 0.2}}", CV_EINVAL,
                "split.test: missing; a fractions split needs train, dev and test");
}
END_TEST

START_TEST(dev_alone_without_test_files_is_refused) {
    parse_fails("{" IDX_DATASET ", \"split\": {\"dev\": 0.2}}", CV_EINVAL,
                "split: {\"dev\": fraction} alone takes the test set from dataset.test_images "
                "and dataset.test_labels, which is not given");
}
END_TEST

START_TEST(test_files_with_fractions_split_are_refused) {
    parse_fails("{" IDX_TEST_FILES ", \"split\": {\"train\": 0.6, \"dev\": 0.2, \"test\": 0.2}}",
                CV_EINVAL,
                "split: train/dev/test fractions cut one file in three, but dataset.test_images "
                "is given; use {\"dev\": fraction} to test on the test files");
}
END_TEST

START_TEST(test_files_with_auto_split_are_refused) {
    parse_fails("{" IDX_TEST_FILES ", \"split\": \"auto\"}", CV_EINVAL,
                "split: \"auto\" cuts one file in three, but dataset.test_images is given; use "
                "{\"dev\": fraction} to test on the test files");
}
END_TEST

START_TEST(unknown_split_field_is_refused) {
    parse_fails("{" IDX_DATASET ", \"split\": {\"dev\": 0.2, \"valid\": 0.1}}", CV_EINVAL,
                "split: unknown field \"valid\"");
}
END_TEST

/* ---- dataset ---- */

START_TEST(csv_dataset_is_read) {
    cv_trial_spec_t s;
    parse_ok(&s, "{\"dataset\": {\"format\": \"csv\", \"csv\": \"d.csv\", \"test_csv\": \"t.csv\", "
                 "\"header\": false, \"label_column\": 0, \"classes\": 3, "
                 "\"max_examples\": 500}}");
    ck_assert_int_eq(s.format, CV_FORMAT_CSV);
    ck_assert_str_eq(s.csv, "d.csv");
    ck_assert_str_eq(s.test_csv, "t.csv");
    ck_assert_int_eq(s.csv_header, 0);
    ck_assert_int_eq(s.label_index, 0);
    ck_assert_str_eq(s.label_column, "");
    ck_assert_int_eq(s.classes, 3);
    ck_assert_uint_eq(s.max_examples, 500);
    ck_assert_int_eq(s.split_mode, CV_SPLIT_FILES);
}
END_TEST

START_TEST(csv_label_column_by_name) {
    cv_trial_spec_t s;
    parse_ok(&s, "{\"dataset\": {\"format\": \"csv\", \"csv\": \"d.csv\", "
                 "\"label_column\": \"y\"}}");
    ck_assert_str_eq(s.label_column, "y");
    ck_assert_int_eq(s.label_index, -1);
}
END_TEST

START_TEST(missing_dataset_images_is_refused) {
    parse_fails("{\"dataset\": {\"format\": \"idx\", \"labels\": \"lab\"}}", CV_EINVAL,
                "dataset.images: required for format \"idx\"");
}
END_TEST

START_TEST(missing_dataset_is_refused) {
    parse_fails("{\"epochs\": 3}", CV_EINVAL, "dataset: missing; a trial needs its data");
}
END_TEST

START_TEST(missing_format_is_refused) {
    parse_fails("{\"dataset\": {\"images\": \"img\", \"labels\": \"lab\"}}", CV_EINVAL,
                "dataset.format: missing; must be \"idx\" or \"csv\"");
}
END_TEST

START_TEST(csv_needs_its_file) {
    parse_fails("{\"dataset\": {\"format\": \"csv\", \"header\": true}}", CV_EINVAL,
                "dataset.csv: required for format \"csv\"");
}
END_TEST

START_TEST(field_of_the_other_format_is_refused) {
    parse_fails("{\"dataset\": {\"format\": \"csv\", \"csv\": \"d.csv\", \"images\": \"img\"}}",
                CV_EINVAL, "dataset.images: only read with format \"idx\", not \"csv\"");
}
END_TEST

START_TEST(test_images_need_test_labels) {
    parse_fails("{\"dataset\": {\"format\": \"idx\", \"images\": \"img\", \"labels\": \"lab\", "
                "\"test_images\": \"timg\"}}",
                CV_EINVAL, "dataset.test_labels: required when dataset.test_images is given");
}
END_TEST

START_TEST(empty_path_is_refused) {
    parse_fails("{\"dataset\": {\"format\": \"idx\", \"images\": \"\", \"labels\": \"lab\"}}",
                CV_EINVAL, "dataset.images: must be a non-empty string");
}
END_TEST

START_TEST(path_of_1024_bytes_is_refused) {
    char *text = malloc(2048);
    ck_assert_ptr_nonnull(text);
    char *long_path = malloc(CV_PATH_MAX + 1);
    ck_assert_ptr_nonnull(long_path);
    memset(long_path, 'p', CV_PATH_MAX);
    long_path[CV_PATH_MAX] = '\0';
    snprintf(text, 2048,
             "{\"dataset\": {\"format\": \"idx\", \"images\": \"%s\", "
             "\"labels\": \"lab\"}}",
             long_path);
    parse_fails(text, CV_ERANGE, "dataset.images: must be shorter than 1024 bytes, got 1024");
    free(long_path);
    free(text);
}
END_TEST

START_TEST(unknown_dataset_field_is_refused) {
    parse_fails("{\"dataset\": {\"format\": \"idx\", \"images\": \"img\", \"labels\": \"lab\", "
                "\"colour\": \"red\"}}",
                CV_EINVAL, "dataset: unknown field \"colour\"");
}
END_TEST

START_TEST(label_column_of_wrong_type_is_refused) {
    parse_fails("{\"dataset\": {\"format\": \"csv\", \"csv\": \"d.csv\", \"label_column\": true}}",
                CV_EINVAL, "dataset.label_column: must be a column name or an index, got boolean");
}
END_TEST

START_TEST(one_class_is_refused) {
    parse_fails("{\"dataset\": {\"format\": \"idx\", \"images\": \"img\", \"labels\": \"lab\", "
                "\"classes\": 1}}",
                CV_ERANGE, "dataset.classes: must be an integer in [2, 2147483647], got 1");
}
END_TEST

/* ---- rejections of flat and architecture fields ---- */

START_TEST(keep_prob_zero_is_refused) {
    parse_fails("{" IDX_DATASET ", \"keep_prob\": 0}", CV_ERANGE,
                "keep_prob: must be in (0, 1], got 0");
}
END_TEST

START_TEST(keep_prob_above_one_is_refused) {
    parse_fails("{" IDX_DATASET ", \"hidden_layers\": 2, \"keep_prob\": [1, 1.5]}", CV_ERANGE,
                "keep_prob[1]: must be in (0, 1], got 1.5");
}
END_TEST

START_TEST(keep_prob_rounding_to_zero_is_refused) {
    parse_fails("{" IDX_DATASET ", \"keep_prob\": 1e-50}", CV_ERANGE,
                "keep_prob: too small for single precision, got 1e-50");
}
END_TEST

START_TEST(zero_learning_rate_is_refused) {
    parse_fails("{" IDX_DATASET ", \"learning_rate\": 0}", CV_ERANGE,
                "learning_rate: must be in (0, 10], got 0");
}
END_TEST

START_TEST(negative_learning_rate_is_refused) {
    parse_fails("{" IDX_DATASET ", \"learning_rate\": -1}", CV_ERANGE,
                "learning_rate: must be in (0, 10], got -1");
}
END_TEST

START_TEST(batch_size_zero_is_refused) {
    parse_fails("{" IDX_DATASET ", \"batch_size\": 0}", CV_ERANGE,
                "batch_size: must be an integer in [1, 2147483648], got 0");
}
END_TEST

START_TEST(fractional_batch_size_is_refused) {
    parse_fails("{" IDX_DATASET ", \"batch_size\": 2.5}", CV_EINVAL,
                "batch_size: must be an integer, got 2.5");
}
END_TEST

START_TEST(unknown_field_is_refused) {
    parse_fails("{" IDX_DATASET ", \"foo\": 1}", CV_EINVAL, "unknown field \"foo\"");
}
END_TEST

START_TEST(misspelt_field_gets_a_suggestion) {
    parse_fails("{" IDX_DATASET ", \"patiance\": 3}", CV_EINVAL,
                "unknown field \"patiance\" (did you mean \"patience\"?)");
    parse_fails("{\"dataset\": {\"format\": \"idx\", \"image\": \"img\", \"labels\": \"lab\"}}",
                CV_EINVAL, "dataset: unknown field \"image\" (did you mean \"images\"?)");
}
END_TEST

START_TEST(repeated_field_is_refused) {
    parse_fails("{" IDX_DATASET ", \"epochs\": 1, \"epochs\": 2}", CV_EINVAL,
                "field \"epochs\" given twice");
}
END_TEST

START_TEST(unknown_optimizer_is_refused) {
    parse_fails("{" IDX_DATASET ", \"optimizer\": \"sgd\"}", CV_EINVAL,
                "optimizer: must be one of \"gd\", \"momentum\", \"rmsprop\", \"adam\", "
                "got \"sgd\"");
}
END_TEST

START_TEST(wrong_type_is_refused) {
    parse_fails("{" IDX_DATASET ", \"learning_rate\": \"0.1\"}", CV_EINVAL,
                "learning_rate: must be a number, got string");
}
END_TEST

START_TEST(per_layer_array_of_wrong_length_is_refused) {
    parse_fails("{" IDX_DATASET ", \"hidden_units\": [8, 4], \"activation\": [\"relu\"]}",
                CV_EINVAL,
                "activation: per-layer array must have 2 entries (one per hidden layer), got 1");
}
END_TEST

START_TEST(per_layer_field_of_wrong_type_is_refused) {
    parse_fails("{" IDX_DATASET ", \"batch_norm\": 1}", CV_EINVAL,
                "batch_norm: must be a boolean or a per-layer array, got number");
}
END_TEST

START_TEST(unknown_activation_in_array_is_refused) {
    parse_fails("{" IDX_DATASET ", \"hidden_layers\": 2, \"activation\": [\"relu\", \"elu\"]}",
                CV_EINVAL,
                "activation[1]: must be one of \"relu\", \"leaky_relu\", \"tanh\", \"sigmoid\", "
                "got \"elu\"");
}
END_TEST

START_TEST(hidden_layers_disagreeing_with_units_array_are_refused) {
    parse_fails("{" IDX_DATASET ", \"hidden_layers\": 3, \"hidden_units\": [8, 4]}", CV_EINVAL,
                "hidden_layers: is 3 but hidden_units lists 2 layers; give one or make them "
                "agree");
}
END_TEST

START_TEST(too_many_hidden_layers_are_refused) {
    parse_fails("{" IDX_DATASET ", \"hidden_layers\": 33}", CV_ERANGE,
                "hidden_layers: must be an integer in [0, 32], got 33");
}
END_TEST

START_TEST(zero_units_are_refused) {
    parse_fails("{" IDX_DATASET ", \"hidden_units\": [8, 0]}", CV_ERANGE,
                "hidden_units[1]: must be an integer in [1, 65536], got 0");
}
END_TEST

START_TEST(epochs_above_limit_are_refused) {
    parse_fails("{" IDX_DATASET ", \"epochs\": 100001}", CV_ERANGE,
                "epochs: must be an integer in [1, 100000], got 100001");
}
END_TEST

START_TEST(negative_seed_is_refused) {
    parse_fails("{" IDX_DATASET ", \"seed\": -1}", CV_ERANGE,
                "seed: must be an integer >= 0, got -1");
}
END_TEST

START_TEST(beta_of_one_is_refused) {
    parse_fails("{" IDX_DATASET ", \"beta2\": 1}", CV_ERANGE, "beta2: must be in [0, 1), got 1");
}
END_TEST

START_TEST(sigmoid_output_needs_two_classes) {
    parse_fails("{\"dataset\": {\"format\": \"idx\", \"images\": \"img\", \"labels\": \"lab\", "
                "\"classes\": 10}, \"output\": \"sigmoid\"}",
                CV_EINVAL, "output: \"sigmoid\" needs 2 classes, but dataset.classes is 10");
}
END_TEST

START_TEST(top_level_array_is_refused) {
    parse_fails("[1]", CV_EINVAL, "trial spec: must be an object, got array");
}
END_TEST

START_TEST(syntax_error_reports_an_offset) {
    parse_fails("{\"epochs\": 3,}", CV_EFORMAT, "invalid JSON at byte 13 (line 1, column 14)");
}
END_TEST

START_TEST(from_json_reads_a_tree) {
    cJSON *root = cJSON_CreateObject();
    cJSON *ds = cJSON_AddObjectToObject(root, "dataset");
    ck_assert_ptr_nonnull(ds);
    ck_assert_ptr_nonnull(cJSON_AddStringToObject(ds, "format", "csv"));
    ck_assert_ptr_nonnull(cJSON_AddStringToObject(ds, "csv", "x.csv"));
    ck_assert_ptr_nonnull(cJSON_AddNumberToObject(root, "epochs", 7));
    cv_trial_spec_t s;
    char err[CV_ERRLEN] = "";
    ck_assert_int_eq(cv_trial_spec_from_json(&s, root, err), 0);
    ck_assert_int_eq(s.epochs, 7);
    ck_assert_str_eq(s.csv, "x.csv");
    cJSON_Delete(root);
}
END_TEST

/* ---- files ---- */

START_TEST(load_prefixes_reasons_with_the_path) {
    char path[CV_TEST_PATH], want[CV_TEST_PATH + 128], err[CV_ERRLEN] = "";
    const char *text = "{" IDX_DATASET ", \"epochs\": 0}";
    cv_test_write_file(path, "spec.json", text, strlen(text));
    cv_trial_spec_t s;
    ck_assert_int_eq(cv_trial_spec_load(&s, path, err), CV_ERANGE);
    snprintf(want, sizeof want, "%s: epochs: must be an integer in [1, 100000], got 0", path);
    ck_assert_str_eq(err, want);
    unlink(path);
}
END_TEST

START_TEST(load_names_a_missing_file) {
    char err[CV_ERRLEN] = "";
    cv_trial_spec_t s;
    ck_assert_int_eq(cv_trial_spec_load(&s, "/nonexistent/spec.json", err), CV_EIO);
    ck_assert_str_eq(err, "/nonexistent/spec.json: cannot open: No such file or directory");
}
END_TEST

START_TEST(fashion_mnist_example_loads) {
    char path[CV_TEST_PATH], err[CV_ERRLEN] = "";
    source_path(path, sizeof path, "examples/fashion-mnist-trial.json");
    cv_trial_spec_t s;
    ck_assert_msg(cv_trial_spec_load(&s, path, err) == 0, "%s", err);
    ck_assert_int_eq(s.format, CV_FORMAT_IDX);
    ck_assert_str_eq(s.test_images, "/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz");
    ck_assert_int_eq(s.split_mode, CV_SPLIT_FILES);
    ck_assert_double_eq(s.split_dev, 0.16666666666666666);
    ck_assert_int_eq(s.hidden_layers, 2);
    ck_assert_int_eq(s.hidden_units[0], 256);
    ck_assert_int_eq(s.hidden_units[1], 128);
    ck_assert_int_eq(s.activation[1], CV_ACT_RELU);
    ck_assert_int_eq(s.optimizer, CV_OPT_ADAM);
    ck_assert_uint_eq(s.batch_size, 64);
    ck_assert_int_eq(s.epochs, 10);
    ck_assert_int_eq(s.patience, 3);
    ck_assert_uint_eq(s.seed, 1);
}
END_TEST

START_TEST(tiny_example_loads) {
    char path[CV_TEST_PATH], err[CV_ERRLEN] = "";
    source_path(path, sizeof path, "examples/tiny-trial.json");
    cv_trial_spec_t s;
    ck_assert_msg(cv_trial_spec_load(&s, path, err) == 0, "%s", err);
    ck_assert_int_eq(s.format, CV_FORMAT_CSV);
    ck_assert_str_eq(s.csv, "examples/data/moons.csv");
    ck_assert_int_eq(s.split_mode, CV_SPLIT_FRACTIONS);
}
END_TEST

START_TEST(enum_names_match_the_json) {
    ck_assert_str_eq(cv_activation_name(CV_ACT_LEAKY_RELU), "leaky_relu");
    ck_assert_str_eq(cv_optimizer_name(CV_OPT_RMSPROP), "rmsprop");
    ck_assert_str_eq(cv_init_name(CV_INIT_GLOROT), "glorot");
    ck_assert_str_eq(cv_decay_name(CV_DECAY_INVERSE_TIME), "inverse_time");
    ck_assert_str_eq(cv_decay_name(CV_DECAY_COSINE), "cosine");
    ck_assert_str_eq(cv_decay_name((cv_decay_t)99), "unknown");
}
END_TEST

START_TEST(cosine_decay_is_read) {
    cv_trial_spec_t s;
    parse_ok(&s, "{" IDX_DATASET ", \"decay\": \"cosine\", \"decay_min\": 0}");
    ck_assert_int_eq(s.decay, CV_DECAY_COSINE);
    ck_assert_double_eq(s.decay_min, 0.0);
}
END_TEST

/* ---- rejections of the schedule and label smoothing fields ---- */

START_TEST(decay_min_of_one_is_refused) {
    parse_fails("{" IDX_DATASET ", \"decay\": \"cosine\", \"decay_min\": 1}", CV_ERANGE,
                "decay_min: must be in [0, 1), got 1");
}
END_TEST

START_TEST(negative_decay_min_is_refused) {
    parse_fails("{" IDX_DATASET ", \"decay_min\": -0.1}", CV_ERANGE,
                "decay_min: must be in [0, 1), got -0.1");
}
END_TEST

START_TEST(negative_warmup_is_refused) {
    parse_fails("{" IDX_DATASET ", \"warmup_epochs\": -1}", CV_ERANGE,
                "warmup_epochs: must be an integer in [0, 100000], got -1");
}
END_TEST

START_TEST(warmup_as_long_as_the_trial_is_refused) {
    parse_fails("{" IDX_DATASET ", \"epochs\": 5, \"warmup_epochs\": 5}", CV_EINVAL,
                "warmup_epochs: must be less than epochs (5), got 5");
}
END_TEST

START_TEST(label_smoothing_of_one_half_is_refused) {
    parse_fails("{" IDX_DATASET ", \"label_smoothing\": 0.5}", CV_ERANGE,
                "label_smoothing: must be in [0, 0.5), got 0.5");
}
END_TEST

START_TEST(negative_label_smoothing_is_refused) {
    parse_fails("{" IDX_DATASET ", \"label_smoothing\": -0.01}", CV_ERANGE,
                "label_smoothing: must be in [0, 0.5), got -0.01");
}
END_TEST

START_TEST(label_smoothing_of_wrong_type_is_refused) {
    parse_fails("{" IDX_DATASET ", \"label_smoothing\": \"0.1\"}", CV_EINVAL,
                "label_smoothing: must be a number, got string");
}
END_TEST

/* ---- nudges ---- */

/* Applies nudge (JSON text) to a spec of two hidden layers with dropout, expecting code and, on
 * refusal, exactly the reason want; the spec must then be unchanged. */
static void nudge_case(cv_trial_spec_t *spec, const char *nudge, int code, const char *want) {
    parse_ok(spec, "{" IDX_DATASET ", \"hidden_units\": [8, 4], \"keep_prob\": 0.8, "
                   "\"learning_rate\": 0.01, \"warmup_epochs\": 2, \"epochs\": 5}");
    cv_trial_spec_t before = *spec;
    cJSON *obj = cJSON_Parse(nudge);
    ck_assert_ptr_nonnull(obj);
    char err[CV_ERRLEN] = "";
    ck_assert_int_eq(cv_trial_spec_nudge(spec, obj, err), code);
    cJSON_Delete(obj);
    if (code != 0) {
        ck_assert_str_eq(err, want);
        ck_assert_int_eq(memcmp(&before, spec, sizeof before), 0);
    }
}

START_TEST(nudge_sets_the_new_values) {
    cv_trial_spec_t s;
    nudge_case(&s,
               "{\"learning_rate\": 0.0003, \"keep_prob\": [0.9, 0.5], \"l2\": 0.1, "
               "\"beta1\": 0.8, \"patience\": 3, \"epochs\": 50}",
               0, NULL);
    ck_assert_double_eq(s.learning_rate, 0.0003);
    ck_assert_float_eq(s.keep_prob[0], 0.9f);
    ck_assert_float_eq(s.keep_prob[1], 0.5f);
    ck_assert_double_eq(s.l2, 0.1);
    ck_assert_double_eq(s.beta1, 0.8);
    ck_assert_int_eq(s.patience, 3);
    ck_assert_int_eq(s.epochs, 50);
    ck_assert_int_eq(s.hidden_units[0], 8); /* the rest stays */
}
END_TEST

START_TEST(nudge_out_of_range_names_the_field) {
    cv_trial_spec_t s;
    nudge_case(&s, "{\"l2\": 0.1, \"learning_rate\": -1}", CV_ERANGE,
               "learning_rate: must be in (0, 10], got -1");
    nudge_case(&s, "{\"keep_prob\": 0}", CV_ERANGE, "keep_prob: must be in (0, 1], got 0");
    nudge_case(&s, "{\"keep_prob\": [0.5]}", CV_EINVAL,
               "keep_prob: per-layer array must have 2 entries (one per hidden layer), got 1");
    nudge_case(&s, "{\"patience\": \"3\"}", CV_EINVAL, "patience: must be an integer, got string");
}
END_TEST

START_TEST(nudge_of_epochs_within_the_warmup_is_refused) {
    cv_trial_spec_t s;
    nudge_case(&s, "{\"epochs\": 2}", CV_EINVAL,
               "epochs: must be more than warmup_epochs (2), got 2");
}
END_TEST

START_TEST(nudge_of_a_fixed_field_lists_the_nudgeable_ones) {
    cv_trial_spec_t s;
    nudge_case(&s, "{\"hidden_units\": 16}", CV_EINVAL,
               "hidden_units: cannot be nudged; nudgeable: learning_rate, decay_rate, "
               "decay_base, decay_k, decay_every, decay_min, l2, l1, keep_prob, input_keep_prob, "
               "beta, beta1, beta2, patience, epochs");
    nudge_case(&s, "{\"learning_rat\": 0.1}", CV_EINVAL,
               "learning_rat: cannot be nudged (did you mean \"learning_rate\"?); nudgeable: "
               "learning_rate, decay_rate, decay_base, decay_k, decay_every, decay_min, l2, l1, "
               "keep_prob, input_keep_prob, beta, beta1, beta2, patience, epochs");
    nudge_case(&s, "{}", CV_EINVAL,
               "nudge: empty; give new values for any of learning_rate, decay_rate, decay_base, "
               "decay_k, decay_every, decay_min, l2, l1, keep_prob, input_keep_prob, beta, beta1, "
               "beta2, patience, epochs");
    nudge_case(&s, "[1]", CV_EINVAL, "nudge: must be an object of new values, got array");
}
END_TEST

static Suite *trial_spec_suite(void) {
    Suite *s = suite_create("trial_spec");
    TCase *shape = tcase_create("shapes");
    tcase_add_test(shape, minimal_spec_gets_every_default);
    tcase_add_test(shape, parse_and_defaults_agree);
    tcase_add_test(shape, every_scalar_field_is_read);
    tcase_add_test(shape, shorthand_units_repeat_for_every_layer);
    tcase_add_test(shape, hidden_layers_alone_use_128_units);
    tcase_add_test(shape, zero_hidden_layers_are_allowed);
    tcase_add_test(shape, units_array_sets_the_layer_count);
    tcase_add_test(shape, per_layer_arrays_set_each_layer);
    tcase_add_test(shape, per_layer_scalars_fill_every_layer);
    tcase_add_test(shape, integral_float_counts_as_integer);
    tcase_add_test(shape, seed_accepts_2_pow_53);
    tcase_add_test(shape, batch_size_accepts_2_pow_31);
    tcase_add_test(shape, from_json_reads_a_tree);
    tcase_add_test(shape, enum_names_match_the_json);
    tcase_add_test(shape, cosine_decay_is_read);
    suite_add_tcase(s, shape);

    TCase *split = tcase_create("split");
    tcase_add_test(split, test_files_without_split_mean_files_mode_with_a_sixth_for_dev);
    tcase_add_test(split, dev_alone_means_files_mode);
    tcase_add_test(split, fractions_split_is_read);
    tcase_add_test(split, fractions_within_tolerance_are_rescaled_to_one);
    tcase_add_test(split, auto_split_is_read);
    tcase_add_test(split, split_fractions_not_summing_to_one_are_refused);
    tcase_add_test(split, split_fraction_out_of_range_is_refused);
    tcase_add_test(split, fractions_split_needs_all_three);
    tcase_add_test(split, dev_alone_without_test_files_is_refused);
    tcase_add_test(split, test_files_with_fractions_split_are_refused);
    tcase_add_test(split, test_files_with_auto_split_are_refused);
    tcase_add_test(split, unknown_split_field_is_refused);
    suite_add_tcase(s, split);

    TCase *ds = tcase_create("dataset");
    tcase_add_test(ds, csv_dataset_is_read);
    tcase_add_test(ds, csv_label_column_by_name);
    tcase_add_test(ds, missing_dataset_images_is_refused);
    tcase_add_test(ds, missing_dataset_is_refused);
    tcase_add_test(ds, missing_format_is_refused);
    tcase_add_test(ds, csv_needs_its_file);
    tcase_add_test(ds, field_of_the_other_format_is_refused);
    tcase_add_test(ds, test_images_need_test_labels);
    tcase_add_test(ds, empty_path_is_refused);
    tcase_add_test(ds, path_of_1024_bytes_is_refused);
    tcase_add_test(ds, unknown_dataset_field_is_refused);
    tcase_add_test(ds, label_column_of_wrong_type_is_refused);
    tcase_add_test(ds, one_class_is_refused);
    suite_add_tcase(s, ds);

    TCase *bad = tcase_create("rejections");
    tcase_add_test(bad, keep_prob_zero_is_refused);
    tcase_add_test(bad, keep_prob_above_one_is_refused);
    tcase_add_test(bad, keep_prob_rounding_to_zero_is_refused);
    tcase_add_test(bad, zero_learning_rate_is_refused);
    tcase_add_test(bad, negative_learning_rate_is_refused);
    tcase_add_test(bad, batch_size_zero_is_refused);
    tcase_add_test(bad, fractional_batch_size_is_refused);
    tcase_add_test(bad, unknown_field_is_refused);
    tcase_add_test(bad, misspelt_field_gets_a_suggestion);
    tcase_add_test(bad, repeated_field_is_refused);
    tcase_add_test(bad, unknown_optimizer_is_refused);
    tcase_add_test(bad, wrong_type_is_refused);
    tcase_add_test(bad, per_layer_array_of_wrong_length_is_refused);
    tcase_add_test(bad, per_layer_field_of_wrong_type_is_refused);
    tcase_add_test(bad, unknown_activation_in_array_is_refused);
    tcase_add_test(bad, hidden_layers_disagreeing_with_units_array_are_refused);
    tcase_add_test(bad, too_many_hidden_layers_are_refused);
    tcase_add_test(bad, zero_units_are_refused);
    tcase_add_test(bad, epochs_above_limit_are_refused);
    tcase_add_test(bad, negative_seed_is_refused);
    tcase_add_test(bad, beta_of_one_is_refused);
    tcase_add_test(bad, sigmoid_output_needs_two_classes);
    tcase_add_test(bad, top_level_array_is_refused);
    tcase_add_test(bad, decay_min_of_one_is_refused);
    tcase_add_test(bad, negative_decay_min_is_refused);
    tcase_add_test(bad, negative_warmup_is_refused);
    tcase_add_test(bad, warmup_as_long_as_the_trial_is_refused);
    tcase_add_test(bad, label_smoothing_of_one_half_is_refused);
    tcase_add_test(bad, negative_label_smoothing_is_refused);
    tcase_add_test(bad, label_smoothing_of_wrong_type_is_refused);
    tcase_add_test(bad, syntax_error_reports_an_offset);
    suite_add_tcase(s, bad);

    TCase *nudge = tcase_create("nudges");
    tcase_add_test(nudge, nudge_sets_the_new_values);
    tcase_add_test(nudge, nudge_out_of_range_names_the_field);
    tcase_add_test(nudge, nudge_of_epochs_within_the_warmup_is_refused);
    tcase_add_test(nudge, nudge_of_a_fixed_field_lists_the_nudgeable_ones);
    suite_add_tcase(s, nudge);

    TCase *files = tcase_create("files");
    tcase_add_test(files, load_prefixes_reasons_with_the_path);
    tcase_add_test(files, load_names_a_missing_file);
    tcase_add_test(files, fashion_mnist_example_loads);
    tcase_add_test(files, tiny_example_loads);
    suite_add_tcase(s, files);
    return s;
}

CV_TEST_MAIN(trial_spec_suite)
