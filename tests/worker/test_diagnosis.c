/* Unit tests of the bias/variance diagnosis (worker/diagnosis.c). The gaps are worked out by
 * hand: avoidable bias = train − human (human 0 when not given), variance = dev − train, and a
 * gap is large when it exceeds CV_DIAG_TOLERANCE = 0.02. */
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
    suite_add_tcase(s, tc);
    return s;
}

CV_TEST_MAIN(diagnosis_suite)
