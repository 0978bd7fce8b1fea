/* Specification of the backward pass through gradient checking in double precision: for every
 * activation, both output layers, L2 and L1, batch norm on and off and label smoothing, the
 * analytic gradient agrees with central differences to a relative difference below 1e-7. A
 * deliberately broken backward pass (the test-only switch compiled into this binary's core)
 * must fail the check. */
#include <math.h>
#include <string.h>

#include "testutil.h"
#include "common/err.h"
#include "worker/gradcheck.h"

#define M 8     /* examples */
#define NX 5    /* features */

typedef struct {
    cv_activation_t act;
    cv_output_t output;
    int batch_norm;
    double l2, l1;
    int hidden;      /* hidden layers */
    int break_it;    /* the test-only broken backward pass */
} case_t;

/* Builds a 5-(6-4...)-C network with Xavier-scaled random weights and non-trivial γ, β, biases,
 * random inputs and labels, training toward targets smoothed by ε = smoothing, and returns the
 * gradient check's relative difference. */
static cv_gradcheck_result_t check_case(case_t c, float smoothing, uint64_t seed) {
    int classes = c.output == CV_OUT_SIGMOID ? 2 : 3;
    cv_arch_t a;
    memset(&a, 0, sizeof a);
    a.layers = c.hidden + 1;
    a.units[0] = NX;
    a.keep_prob[0] = 1;
    for (int l = 1; l <= c.hidden; l++) {
        a.units[l] = l % 2 ? 6 : 4;
        a.act[l] = c.act;
        a.batch_norm[l] = c.batch_norm;
        a.keep_prob[l] = 1;
    }
    a.units[a.layers] = c.output == CV_OUT_SIGMOID ? 1 : classes;
    a.output = c.output, a.classes = classes;
    a.leaky_slope = 0.01f, a.bn_momentum = 0.9f, a.bn_epsilon = 1e-5f;
    a.label_smoothing = smoothing;
    cv_nnd_net_t *net = NULL;
    ck_assert_int_eq(cv_nnd_create(&net, &a, M, NULL), 0);
    net->test_break_backward = c.break_it;
    cv_rng_t rng;
    cv_rng_seed(&rng, seed);
    cv_nnd_init(net, CV_INIT_XAVIER, 1.0, &rng);
    for (size_t i = 0; i < net->n_params; i++) net->params[i] += 0.1 * cv_rng_normal(&rng);
    double X[M * NX];
    int32_t y[M];
    for (int i = 0; i < M * NX; i++) X[i] = cv_rng_normal(&rng);
    for (int i = 0; i < M; i++) y[i] = (int32_t)cv_rng_below(&rng, (uint32_t)classes);
    cv_gradcheck_result_t res;
    char err[CV_ERRLEN];
    ck_assert_int_eq(cv_gradcheck_net(net, X, y, M, c.l2, c.l1, CV_GRADCHECK_EPSILON, 0, &rng,
                                      &res, err), 0);
    ck_assert_uint_eq(res.checked, net->n_params);
    cv_nnd_destroy(net);
    return res;
}

static void assert_correct_smoothed(case_t c, float smoothing) {
    for (uint64_t seed = 1; seed <= 3; seed++) {
        cv_gradcheck_result_t r = check_case(c, smoothing, seed);
        ck_assert_msg(r.relative_difference < 1e-7,
                      "relative difference %.3e (seed %d, worst parameter %zu: numeric %.10e, "
                      "analytic %.10e)", r.relative_difference, (int)seed, r.worst_index,
                      r.worst_numeric, r.worst_analytic);
        ck_assert_str_eq(r.verdict, "correct");
    }
}

static void assert_correct(case_t c) {
    assert_correct_smoothed(c, 0);
}

START_TEST(relu_softmax) { assert_correct((case_t){CV_ACT_RELU, CV_OUT_SOFTMAX, 0, 0, 0, 2, 0}); }
END_TEST
START_TEST(leaky_relu_softmax) {
    assert_correct((case_t){CV_ACT_LEAKY_RELU, CV_OUT_SOFTMAX, 0, 0, 0, 2, 0});
}
END_TEST
START_TEST(tanh_softmax) { assert_correct((case_t){CV_ACT_TANH, CV_OUT_SOFTMAX, 0, 0, 0, 2, 0}); }
END_TEST
START_TEST(sigmoid_softmax) {
    assert_correct((case_t){CV_ACT_SIGMOID, CV_OUT_SOFTMAX, 0, 0, 0, 2, 0});
}
END_TEST
START_TEST(relu_sigmoid_output) {
    assert_correct((case_t){CV_ACT_RELU, CV_OUT_SIGMOID, 0, 0, 0, 2, 0});
}
END_TEST
START_TEST(tanh_sigmoid_output) {
    assert_correct((case_t){CV_ACT_TANH, CV_OUT_SIGMOID, 0, 0, 0, 1, 0});
}
END_TEST
START_TEST(no_hidden_layer) { assert_correct((case_t){CV_ACT_RELU, CV_OUT_SOFTMAX, 0, 0, 0, 0, 0}); }
END_TEST
START_TEST(l2_regularization) {
    assert_correct((case_t){CV_ACT_TANH, CV_OUT_SOFTMAX, 0, 0.7, 0, 2, 0});
}
END_TEST
START_TEST(l1_regularization) {
    assert_correct((case_t){CV_ACT_RELU, CV_OUT_SOFTMAX, 0, 0, 0.3, 2, 0});
}
END_TEST
START_TEST(batchnorm_relu) { assert_correct((case_t){CV_ACT_RELU, CV_OUT_SOFTMAX, 1, 0, 0, 2, 0}); }
END_TEST
START_TEST(batchnorm_tanh_l2_deep) {
    assert_correct((case_t){CV_ACT_TANH, CV_OUT_SOFTMAX, 1, 0.5, 0, 3, 0});
}
END_TEST
START_TEST(batchnorm_sigmoid_output) {
    assert_correct((case_t){CV_ACT_SIGMOID, CV_OUT_SIGMOID, 1, 0, 0, 2, 0});
}
END_TEST

START_TEST(label_smoothing_softmax) {
    assert_correct_smoothed((case_t){CV_ACT_RELU, CV_OUT_SOFTMAX, 0, 0, 0, 2, 0}, 0.1f);
}
END_TEST
START_TEST(label_smoothing_batchnorm_l2) {
    assert_correct_smoothed((case_t){CV_ACT_TANH, CV_OUT_SOFTMAX, 1, 0.5, 0, 2, 0}, 0.3f);
}
END_TEST
START_TEST(label_smoothing_sigmoid_output) {
    assert_correct_smoothed((case_t){CV_ACT_TANH, CV_OUT_SIGMOID, 0, 0, 0, 2, 0}, 0.2f);
}
END_TEST

/* The check can fail: a backward pass that uses the sigmoid's derivative for relu layers (the
 * bug genann carried for years) is graded "bug". */
START_TEST(broken_backward_fails_the_check) {
    case_t broken = {CV_ACT_RELU, CV_OUT_SOFTMAX, 0, 0, 0, 2, 1};
    cv_gradcheck_result_t r = check_case(broken, 0, 1);
    ck_assert_msg(r.relative_difference >= 1e-3, "relative difference only %.3e",
                  r.relative_difference);
    ck_assert_str_eq(r.verdict, "bug");
}
END_TEST

START_TEST(verdict_thresholds) {
    ck_assert_str_eq(cv_gradcheck_verdict(3e-9), "correct");
    ck_assert_str_eq(cv_gradcheck_verdict(2e-5), "inspect");
    ck_assert_str_eq(cv_gradcheck_verdict(1e-3), "bug");
}
END_TEST

static Suite *gradcheck_suite(void) {
    Suite *s = suite_create("gradcheck");
    TCase *tc = tcase_create("double");
    tcase_add_test(tc, relu_softmax);
    tcase_add_test(tc, leaky_relu_softmax);
    tcase_add_test(tc, tanh_softmax);
    tcase_add_test(tc, sigmoid_softmax);
    tcase_add_test(tc, relu_sigmoid_output);
    tcase_add_test(tc, tanh_sigmoid_output);
    tcase_add_test(tc, no_hidden_layer);
    tcase_add_test(tc, l2_regularization);
    tcase_add_test(tc, l1_regularization);
    tcase_add_test(tc, batchnorm_relu);
    tcase_add_test(tc, batchnorm_tanh_l2_deep);
    tcase_add_test(tc, batchnorm_sigmoid_output);
    tcase_add_test(tc, label_smoothing_softmax);
    tcase_add_test(tc, label_smoothing_batchnorm_l2);
    tcase_add_test(tc, label_smoothing_sigmoid_output);
    tcase_add_test(tc, broken_backward_fails_the_check);
    tcase_add_test(tc, verdict_thresholds);
    suite_add_tcase(s, tc);
    return s;
}

CV_TEST_MAIN(gradcheck_suite)
