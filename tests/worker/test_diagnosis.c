/* Unit tests of the diagnosis (worker/diagnosis.c). The gaps are worked out by hand: avoidable
 * bias = train − human (human 0 when not given), variance = dev − train, and a gap is large when
 * it exceeds CV_DIAG_TOLERANCE = 0.02; high bias also needs the dev error 2 points above human
 * level. Chance level for C classes is a training cost ≥ 0.9 ln C with a training error
 * ≥ 0.8 (1 − 1/C); a training cost rose when its last value is above its lowest by more than
 * 0.1 ln C and by more than a quarter of the lowest. */
#include <math.h>
#include <string.h>

#include "testutil.h"
#include "worker/diagnosis.h"

/* The gaps are differences of decimal fractions, so compare them to 1e-12. */
static void assert_gaps(cv_diagnosis_t d, double bias, double variance) {
    ck_assert_double_eq_tol(d.avoidable_bias, bias, 1e-12);
    ck_assert_double_eq_tol(d.variance, variance, 1e-12);
}

START_TEST(training_error_far_above_human_level_is_high_bias) {
    /* train 15%, dev 16%, human 1%: bias 14 points, variance 1 point. */
    cv_diagnosis_t d = cv_diagnose(0.15, 0.16, 0.01);
    assert_gaps(d, 0.14, 0.01);
    ck_assert_int_eq(d.kind, CV_DIAG_HIGH_BIAS);
    ck_assert_str_eq(d.name, "high_bias");
    ck_assert_ptr_nonnull(strstr(d.remedy, "bigger network"));
}
END_TEST

START_TEST(dev_error_far_above_training_error_is_high_variance) {
    /* train 1%, dev 11%, human not given (0): bias 1 point, variance 10 points. */
    cv_diagnosis_t d = cv_diagnose(0.01, 0.11, -1);
    assert_gaps(d, 0.01, 0.10);
    ck_assert_int_eq(d.kind, CV_DIAG_HIGH_VARIANCE);
    ck_assert_str_eq(d.name, "high_variance");
    ck_assert_ptr_nonnull(strstr(d.remedy, "regularization"));
}
END_TEST

START_TEST(both_gaps_large_is_high_bias_and_variance) {
    /* train 15%, dev 30%, human not given: bias 15 points, variance 15 points. */
    cv_diagnosis_t d = cv_diagnose(0.15, 0.30, -1);
    assert_gaps(d, 0.15, 0.15);
    ck_assert_int_eq(d.kind, CV_DIAG_HIGH_BOTH);
    ck_assert_str_eq(d.name, "high_bias_and_variance");
}
END_TEST

START_TEST(small_gaps_are_fine) {
    /* train 0.5%, dev 1%, human not given: bias 0.5 point, variance 0.5 point. */
    cv_diagnosis_t d = cv_diagnose(0.005, 0.01, -1);
    assert_gaps(d, 0.005, 0.005);
    ck_assert_int_eq(d.kind, CV_DIAG_FINE);
    ck_assert_str_eq(d.name, "fine");
}
END_TEST

START_TEST(human_error_zero_counts_all_training_error_as_avoidable) {
    /* train 8%, dev 9%, human 0: bias 8 points → high bias. */
    cv_diagnosis_t d = cv_diagnose(0.08, 0.09, 0.0);
    assert_gaps(d, 0.08, 0.01);
    ck_assert_int_eq(d.kind, CV_DIAG_HIGH_BIAS);
}
END_TEST

START_TEST(human_error_near_training_error_makes_the_same_errors_fine) {
    /* train 8%, dev 9%, human 7.5%: bias 0.5 point, variance 1 point → fine. The same errors
     * were high bias against a human level of 0 (previous test). */
    cv_diagnosis_t d = cv_diagnose(0.08, 0.09, 0.075);
    assert_gaps(d, 0.005, 0.01);
    ck_assert_int_eq(d.kind, CV_DIAG_FINE);
}
END_TEST

START_TEST(human_error_not_given_is_taken_as_zero) {
    /* A negative human error means "not given": the verdict equals that of human 0. */
    cv_diagnosis_t given = cv_diagnose(0.08, 0.09, 0.0), absent = cv_diagnose(0.08, 0.09, -1);
    ck_assert_int_eq(absent.kind, given.kind);
    ck_assert_double_eq(absent.avoidable_bias, given.avoidable_bias);
}
END_TEST

START_TEST(a_gap_of_exactly_the_tolerance_is_not_large) {
    /* train 2%, dev 4%, human 0: both gaps are 0.02 (0.04 − 0.02 is exact in binary), which
     * is not above the 0.02 tolerance. */
    cv_diagnosis_t d = cv_diagnose(0.02, 0.04, 0.0);
    ck_assert_double_eq(d.avoidable_bias, CV_DIAG_TOLERANCE);
    ck_assert_double_eq(d.variance, CV_DIAG_TOLERANCE);
    ck_assert_int_eq(d.kind, CV_DIAG_FINE);
}
END_TEST

/* A trial input with a flat cost curve: the best epoch is the last of 5 and the lowest. */
static cv_diagnosis_input_t trial(double train_error, double dev_error, double train_cost,
                                  int classes, double human_error) {
    cv_diagnosis_input_t in = {.train_error = train_error,
                               .dev_error = dev_error,
                               .train_cost = train_cost,
                               .classes = classes,
                               .human_error = human_error,
                               .learning_rate = 0.01,
                               .min_train_cost = train_cost,
                               .min_epoch = 5,
                               .last_train_cost = train_cost,
                               .last_epoch = 5};
    return in;
}

static void assert_contains(const char *text, const char *part) {
    ck_assert_msg(strstr(text, part) != NULL, "\"%s\" lacks \"%s\"", text, part);
}

START_TEST(a_dev_error_of_zero_is_not_high_bias) {
    /* The iris winner: 3 of 90 training examples wrong (3.33%), none of the dev set, no
     * human_error. Avoidable bias 3.33 points against the assumed 0, but the dev error is at
     * human level, so the network has the capacity: not high bias. Variance −3.33 points. */
    cv_diagnosis_input_t in = trial(3.0 / 90, 0.0, 0.09, 3, -1);
    cv_diagnosis_t d = cv_diagnose_trial(&in);
    assert_gaps(d, 3.0 / 90, -3.0 / 90);
    ck_assert_str_eq(d.name, "fine");
    ck_assert_double_eq(d.human_error, 0);
    ck_assert_int_eq(d.human_error_given, 0);
    ck_assert_str_eq(d.explanation,
                     "avoidable bias 3.3% (training error 3.3% - human-level error 0.0%, assumed: "
                     "human_error not given) and variance -3.3% (dev error 0.0% - training error "
                     "3.3%); the dev error is within 2 points of human level, so the network has "
                     "the capacity the task needs");
}
END_TEST

START_TEST(a_collapse_to_chance_names_the_learning_rate) {
    /* The digits trial: 10 classes, cost 2.307 ≥ 0.9 · ln 10 = 2.072, training error 88.6% ≥
     * 0.8 · 90% = 72%: chance level, whatever the bias says. */
    cv_diagnosis_input_t in = trial(0.886, 0.886, 2.307, 10, -1);
    in.learning_rate = 0.07;
    cv_diagnosis_t d = cv_diagnose_trial(&in);
    ck_assert_int_eq(d.kind, CV_DIAG_COLLAPSED);
    ck_assert_str_eq(d.name, "collapsed");
    ck_assert_str_eq(d.explanation,
                     "at its best epoch the training cost is 2.307 (chance: ln 10 = 2.303) and the "
                     "training error 88.6% (chance: 90.0%): the network predicts no better than "
                     "chance with learning rate 0.07");
    assert_contains(d.remedy, "lower the learning rate");
    ck_assert_ptr_null(strstr(d.remedy, "bigger network"));
    /* The gaps are still reported. */
    assert_gaps(d, 0.886, 0.0);
}
END_TEST

START_TEST(chance_level_needs_both_the_cost_and_the_error) {
    /* Two classes: chance cost ln 2 = 0.693 (threshold 0.624), chance error 50% (threshold
     * 40%). Cost 0.65 and error 45% collapse; cost 0.60 with the same error does not, nor
     * cost 0.65 with error 35%. */
    cv_diagnosis_input_t in = trial(0.45, 0.46, 0.65, 2, -1);
    ck_assert_str_eq(cv_diagnose_trial(&in).name, "collapsed");
    in = trial(0.45, 0.46, 0.60, 2, -1);
    ck_assert_str_eq(cv_diagnose_trial(&in).name, "high_bias");
    in = trial(0.35, 0.36, 0.65, 2, -1);
    ck_assert_str_eq(cv_diagnose_trial(&in).name, "high_bias");
}
END_TEST

START_TEST(a_rising_training_cost_is_a_learning_rate_too_high) {
    /* Lowest 0.300 at epoch 2, last 0.800 at epoch 10: a rise of 0.5 > 0.1 · ln 2 = 0.069 and
     * > 0.3 / 4 = 0.075. */
    cv_diagnosis_input_t in = trial(0.10, 0.12, 0.30, 2, -1);
    in.min_epoch = 2;
    in.last_train_cost = 0.80;
    in.last_epoch = 10;
    in.learning_rate = 0.5;
    cv_diagnosis_t d = cv_diagnose_trial(&in);
    ck_assert_int_eq(d.kind, CV_DIAG_LR_TOO_HIGH);
    ck_assert_str_eq(d.name, "learning_rate_too_high");
    ck_assert_str_eq(d.explanation, "the training cost rose from 0.300 (epoch 2) to 0.800 "
                                    "(epoch 10) with learning rate 0.5");
    assert_contains(d.remedy, "3 to 10 times smaller");
    /* A rise of 0.03 (to 0.33) is noise: the bias/variance verdict stands. */
    in.last_train_cost = 0.33;
    ck_assert_str_eq(cv_diagnose_trial(&in).name, "high_bias");
}
END_TEST

START_TEST(a_cost_that_blew_up_names_the_learning_rate) {
    /* Epoch 1 at 7678 > 10 · ln 2 = 6.93, then down to 0.459 with 17.5% training error: the
     * bias seen at the end comes from the blow-up, not from a small network. */
    cv_diagnosis_input_t in = trial(0.175, 0.18, 0.459, 2, -1);
    in.max_train_cost = 7678.39;
    in.max_epoch = 1;
    in.learning_rate = 1;
    cv_diagnosis_t d = cv_diagnose_trial(&in);
    ck_assert_str_eq(d.name, "learning_rate_too_high");
    ck_assert_str_eq(d.explanation, "the training cost reached 7678 in epoch 1, over 10 times the "
                                    "chance cost ln 2 = 0.693, with learning rate 1");
}
END_TEST

START_TEST(a_rising_cost_in_a_fine_trial_is_only_mentioned) {
    /* Training error 0.7%, dev 1%: fine. The cost rose from 0.043 (epoch 4) to 0.191 (epoch 10),
     * more than 0.069 and than 0.043 / 4: said, but the verdict stays fine. */
    cv_diagnosis_input_t in = trial(0.007, 0.01, 0.043, 2, -1);
    in.min_epoch = 4;
    in.last_train_cost = 0.191;
    in.last_epoch = 10;
    in.learning_rate = 0.3;
    cv_diagnosis_t d = cv_diagnose_trial(&in);
    ck_assert_str_eq(d.name, "fine");
    assert_contains(d.explanation, "; the training cost rose from 0.043 (epoch 4) to 0.191 "
                                   "(epoch 10) with learning rate 0.3: a lower one may train "
                                   "more steadily");
}
END_TEST

START_TEST(a_diverged_trial_is_a_learning_rate_too_high) {
    cv_diagnosis_input_t in = trial(0.10, 0.12, 0.30, 2, -1);
    in.diverged_epoch = 7;
    in.learning_rate = 3;
    cv_diagnosis_t d = cv_diagnose_trial(&in);
    ck_assert_str_eq(d.name, "learning_rate_too_high");
    ck_assert_str_eq(d.explanation, "the cost became NaN or infinite in epoch 7 with learning "
                                    "rate 3");
}
END_TEST

START_TEST(the_larger_gap_leads_the_remedy) {
    /* train 5%, dev 20%: bias 5 points < variance 15 points. */
    cv_diagnosis_t d = cv_diagnose(0.05, 0.20, -1);
    ck_assert_str_eq(d.name, "high_bias_and_variance");
    ck_assert_ptr_eq(strstr(d.remedy, "variance is the larger gap"), d.remedy);
    /* train 20%, dev 25%: bias 20 points > variance 5 points. */
    d = cv_diagnose(0.20, 0.25, -1);
    ck_assert_str_eq(d.name, "high_bias_and_variance");
    ck_assert_ptr_eq(strstr(d.remedy, "avoidable bias is the larger gap"), d.remedy);
}
END_TEST

START_TEST(the_given_human_error_is_reported) {
    /* human 1%: train 15% gives bias 14 points, variance 1 point. */
    cv_diagnosis_input_t in = trial(0.15, 0.16, 0.4, 2, 0.01);
    cv_diagnosis_t d = cv_diagnose_trial(&in);
    ck_assert_str_eq(d.name, "high_bias");
    ck_assert_double_eq(d.human_error, 0.01);
    ck_assert_int_eq(d.human_error_given, 1);
    assert_contains(d.explanation, "avoidable bias 14.0% (training error 15.0% - human-level "
                                   "error 1.0%, from human_error)");
}
END_TEST

static Suite *diagnosis_suite(void) {
    Suite *s = suite_create("diagnosis");
    TCase *tc = tcase_create("verdicts");
    tcase_add_test(tc, training_error_far_above_human_level_is_high_bias);
    tcase_add_test(tc, dev_error_far_above_training_error_is_high_variance);
    tcase_add_test(tc, both_gaps_large_is_high_bias_and_variance);
    tcase_add_test(tc, small_gaps_are_fine);
    tcase_add_test(tc, human_error_zero_counts_all_training_error_as_avoidable);
    tcase_add_test(tc, human_error_near_training_error_makes_the_same_errors_fine);
    tcase_add_test(tc, human_error_not_given_is_taken_as_zero);
    tcase_add_test(tc, a_gap_of_exactly_the_tolerance_is_not_large);
    tcase_add_test(tc, a_dev_error_of_zero_is_not_high_bias);
    tcase_add_test(tc, a_collapse_to_chance_names_the_learning_rate);
    tcase_add_test(tc, chance_level_needs_both_the_cost_and_the_error);
    tcase_add_test(tc, a_rising_training_cost_is_a_learning_rate_too_high);
    tcase_add_test(tc, a_diverged_trial_is_a_learning_rate_too_high);
    tcase_add_test(tc, a_cost_that_blew_up_names_the_learning_rate);
    tcase_add_test(tc, a_rising_cost_in_a_fine_trial_is_only_mentioned);
    tcase_add_test(tc, the_larger_gap_leads_the_remedy);
    tcase_add_test(tc, the_given_human_error_is_reported);
    suite_add_tcase(s, tc);
    return s;
}

CV_TEST_MAIN(diagnosis_suite)
