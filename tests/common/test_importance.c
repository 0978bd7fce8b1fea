/* Specification of common/importance.c: functional ANOVA on a random forest, checked on functions
 * whose variance decomposition is known in closed form (x uniform on the unit cube):
 *   - additive f = 3·x0 + x1: Var = 9/12 + 1/12, so x0 explains 0.9 of it, x1 0.1, x2 nothing;
 *   - pure interaction f = (x0 − ½)(x1 − ½): every first-order marginal is constant, so no
 *     parameter explains anything on its own (a split-counting importance would say 0.5 each);
 * and on the edges: a constant objective, a parameter with no width, too few trials, bad values. */
#include <math.h>
#include <string.h>

#include "common/err.h"
#include "common/importance.h"
#include "common/rng.h"
#include "testutil.h"

#define N 600
#define P 3

typedef double (*objective_fn)(const double *x);

static double additive(const double *x) {
    return 3 * x[0] + x[1];
}

static double interaction(const double *x) {
    return (x[0] - 0.5) * (x[1] - 0.5);
}

static double constant(const double *x) {
    (void)x;
    return 0.25;
}

static void sample(double *x, double *y, size_t n, objective_fn f, uint64_t seed) {
    cv_rng_t rng;
    cv_rng_seed(&rng, seed);
    for (size_t i = 0; i < n; i++) {
        for (size_t d = 0; d < P; d++)
            x[i * P + d] = cv_rng_uniform(&rng);
        y[i] = f(x + i * P);
    }
}

static const double LO[P] = {0, 0, 0}, HI[P] = {1, 1, 1};

START_TEST(additive_function_splits_its_variance_nine_to_one) {
    static double x[N * P], y[N];
    double fraction[P], importance[P];
    char err[CV_ERRLEN];
    sample(x, y, N, additive, 1);
    cv_importance_config_t c = cv_importance_defaults(7);
    ck_assert_int_eq(cv_importance_fanova(x, y, N, P, LO, HI, &c, fraction, importance, err), 0);
    ck_assert_double_eq_tol(fraction[0], 0.9, 0.04);
    ck_assert_double_eq_tol(fraction[1], 0.1, 0.03);
    ck_assert_double_le(fraction[2], 0.01);
    ck_assert_double_eq_tol(importance[0] + importance[1] + importance[2], 1.0, 1e-12);
    ck_assert_double_eq_tol(importance[0], 0.9, 0.04);
}
END_TEST

START_TEST(pure_interaction_leaves_every_parameter_alone_with_almost_nothing) {
    static double x[N * P], y[N];
    double fraction[P];
    char err[CV_ERRLEN];
    sample(x, y, N, interaction, 2);
    cv_importance_config_t c = cv_importance_defaults(7);
    ck_assert_int_eq(cv_importance_fanova(x, y, N, P, LO, HI, &c, fraction, NULL, err), 0);
    ck_assert_double_le(fraction[0] + fraction[1] + fraction[2], 0.2);
}
END_TEST

START_TEST(same_seed_same_answer_and_more_trials_than_the_cap_are_subsampled) {
    enum { MANY = CV_IMPORTANCE_MAX_TRIALS + 500 };
    static double x[MANY * P], y[MANY];
    double a[P], b[P];
    char err[CV_ERRLEN];
    sample(x, y, MANY, additive, 3);
    cv_importance_config_t c = cv_importance_defaults(11);
    c.n_trees = 8;
    ck_assert_int_eq(cv_importance_fanova(x, y, MANY, P, LO, HI, &c, a, NULL, err), 0);
    ck_assert_int_eq(cv_importance_fanova(x, y, MANY, P, LO, HI, &c, b, NULL, err), 0);
    ck_assert_int_eq(memcmp(a, b, sizeof a), 0);
    ck_assert_double_eq_tol(a[0], 0.9, 0.03);
}
END_TEST

START_TEST(constant_objective_and_zero_width_parameter_explain_nothing) {
    static double x[N * P], y[N];
    double fraction[P], importance[P];
    char err[CV_ERRLEN];
    sample(x, y, N, constant, 4);
    cv_importance_config_t c = cv_importance_defaults(7);
    ck_assert_int_eq(cv_importance_fanova(x, y, N, P, LO, HI, &c, fraction, importance, err), 0);
    for (int d = 0; d < P; d++) {
        ck_assert_double_eq(fraction[d], 0);
        ck_assert_double_eq(importance[d], 0);
    }
    /* x0 fixed at 0.5 (lo == hi): the additive function's variance all goes to x1. */
    sample(x, y, N, additive, 5);
    for (int i = 0; i < N; i++) {
        x[i * P] = 0.5;
        y[i] = additive(x + i * P);
    }
    const double lo[P] = {0.5, 0, 0}, hi[P] = {0.5, 1, 1};
    ck_assert_int_eq(cv_importance_fanova(x, y, N, P, lo, hi, &c, fraction, importance, err), 0);
    ck_assert_double_eq(fraction[0], 0);
    ck_assert_double_eq_tol(fraction[1], 1.0, 0.03);
}
END_TEST

START_TEST(bad_input_is_refused_with_the_reason) {
    double x[2 * P] = {0}, y[2] = {0.1, NAN}, out[P];
    char err[CV_ERRLEN];
    cv_importance_config_t c = cv_importance_defaults(1);
    ck_assert_int_eq(cv_importance_fanova(x, y, 1, P, LO, HI, &c, out, NULL, err), CV_EINVAL);
    ck_assert_ptr_nonnull(strstr(err, "at least 2 trials, got 1"));
    ck_assert_int_eq(cv_importance_fanova(x, y, 2, P, LO, HI, &c, out, NULL, err), CV_EINVAL);
    ck_assert_ptr_nonnull(strstr(err, "trial row 1 is not finite"));
    y[1] = 0.2;
    ck_assert_int_eq(cv_importance_fanova(x, y, 2, 0, LO, HI, &c, out, NULL, err), CV_EINVAL);
    ck_assert_ptr_nonnull(strstr(err, "got 0"));
    const double lo[P] = {2, 0, 0};
    ck_assert_int_eq(cv_importance_fanova(x, y, 2, P, lo, HI, &c, out, NULL, err), CV_EINVAL);
    ck_assert_ptr_nonnull(strstr(err, "parameter 0: bounds [2, 1] are not an interval"));
}
END_TEST

static Suite *importance_suite(void) {
    Suite *s = suite_create("importance");
    TCase *tc = tcase_create("fanova");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, additive_function_splits_its_variance_nine_to_one);
    tcase_add_test(tc, pure_interaction_leaves_every_parameter_alone_with_almost_nothing);
    tcase_add_test(tc, same_seed_same_answer_and_more_trials_than_the_cap_are_subsampled);
    tcase_add_test(tc, constant_objective_and_zero_width_parameter_explain_nothing);
    tcase_add_test(tc, bad_input_is_refused_with_the_reason);
    suite_add_tcase(s, tc);
    return s;
}

CV_TEST_MAIN(importance_suite)
