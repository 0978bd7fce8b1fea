/* Specification of the network numeric core (worker/nn.c): forward and backward passes checked
 * against values computed by hand, dropout, batch norm and initialization. */
#include <math.h>
#include <string.h>

#include "testutil.h"
#include "worker/nn.h"

/* Architecture of the hand-computed example: 2 inputs, one relu layer of 2 units, a sigmoid
 * output of one unit. */
static cv_arch_t tiny_arch(void) {
    cv_arch_t a;
    memset(&a, 0, sizeof a);
    a.layers = 2;
    a.units[0] = 2, a.units[1] = 2, a.units[2] = 1;
    a.act[1] = CV_ACT_RELU;
    a.keep_prob[0] = a.keep_prob[1] = 1;
    a.output = CV_OUT_SIGMOID;
    a.classes = 2;
    a.bn_momentum = 0.9f, a.bn_epsilon = 1e-5f;
    return a;
}

static const double X2[] = {1, 2, -1, 0.5};
static const int32_t Y2[] = {1, 0};

static cv_nnd_net_t *tiny_net(void) {
    cv_arch_t a = tiny_arch();
    cv_nnd_net_t *net = NULL;
    ck_assert_int_eq(cv_nnd_create(&net, &a, 4, NULL), 0);
    const double W1[] = {0.1, -0.2, 0.3, 0.4}, b1[] = {0.01, -0.02}, W2[] = {0.5, -0.6};
    memcpy(net->W[1], W1, sizeof W1);
    memcpy(net->b[1], b1, sizeof b1);
    memcpy(net->W[2], W2, sizeof W2);
    net->b[2][0] = 0.1;
    return net;
}

static double sigmoid(double z) {
    return 1 / (1 + exp(-z));
}

/* By hand: example 1 has z1 = (0.1 − 0.4 + 0.01, 0.3 + 0.8 − 0.02) = (−0.29, 1.08), so
 * a1 = (0, 1.08) and z2 = −0.6·1.08 + 0.1 = −0.548; example 2 has z1 = (−0.19, −0.12), a1 = 0
 * and z2 = 0.1. */
START_TEST(forward_matches_hand_computation) {
    cv_nnd_net_t *net = tiny_net();
    cv_nnd_forward(net, X2, 2, NN_FORWARD_INFER, NULL);
    ck_assert_double_eq_tol(net->A[1][0], 0.0, 1e-15);
    ck_assert_double_eq_tol(net->A[1][1], 1.08, 1e-15);
    ck_assert_double_eq_tol(net->A[1][2], 0.0, 1e-15);
    ck_assert_double_eq_tol(net->A[1][3], 0.0, 1e-15);
    ck_assert_double_eq_tol(net->A[2][0], -0.548, 1e-15);
    ck_assert_double_eq_tol(net->A[2][1], 0.1, 1e-15);
    ck_assert_double_eq_tol(net->probs[0], sigmoid(-0.548), 1e-15);
    double errors;
    double loss = cv_nnd_loss(net, Y2, &errors);
    double expect = -(log(sigmoid(-0.548)) + log(1 - sigmoid(0.1))) / 2;
    ck_assert_double_eq_tol(loss, expect, 1e-14);
    ck_assert_double_eq(errors, 2); /* σ(−0.548) < ½ for label 1, σ(0.1) > ½ for label 0 */
    cv_nnd_destroy(net);
}
END_TEST

/* By hand, with p1 = σ(−0.548), p2 = σ(0.1): dz2 = ((p1 − 1)/2, p2/2);
 * dW2 = (0, 1.08·(p1 − 1)/2); db2 = (p1 − 1 + p2)/2; only unit 2 of example 1 is active, so
 * dz1 = (0, −0.6·(p1 − 1)/2) for example 1 and 0 for example 2, dW1 row 2 = dz1·(1, 2). */
START_TEST(backward_matches_hand_computation) {
    cv_nnd_net_t *net = tiny_net();
    cv_nnd_forward(net, X2, 2, NN_FORWARD_INFER, NULL);
    cv_nnd_backward(net, Y2);
    double p1 = sigmoid(-0.548), p2 = sigmoid(0.1);
    ck_assert_double_eq_tol(net->dW[2][0], 0.0, 1e-15);
    ck_assert_double_eq_tol(net->dW[2][1], 1.08 * (p1 - 1) / 2, 1e-15);
    ck_assert_double_eq_tol(net->db[2][0], (p1 - 1 + p2) / 2, 1e-15);
    double dz = -0.6 * (p1 - 1) / 2;
    ck_assert_double_eq_tol(net->dW[1][0], 0.0, 1e-15);
    ck_assert_double_eq_tol(net->dW[1][1], 0.0, 1e-15);
    ck_assert_double_eq_tol(net->dW[1][2], dz * 1, 1e-15);
    ck_assert_double_eq_tol(net->dW[1][3], dz * 2, 1e-15);
    ck_assert_double_eq_tol(net->db[1][0], 0.0, 1e-15);
    ck_assert_double_eq_tol(net->db[1][1], dz, 1e-15);
    cv_nnd_destroy(net);
}
END_TEST

/* The float build computes the same numbers as the double build, to float precision. */
START_TEST(float_build_agrees_with_double_build) {
    cv_arch_t a = tiny_arch();
    cv_nnf_net_t *f = NULL;
    cv_nnd_net_t *d = tiny_net();
    ck_assert_int_eq(cv_nnf_create(&f, &a, 4, NULL), 0);
    for (size_t i = 0; i < d->n_params; i++) f->params[i] = (float)d->params[i];
    const float Xf[] = {1, 2, -1, 0.5f};
    cv_nnf_forward(f, Xf, 2, NN_FORWARD_INFER, NULL);
    cv_nnd_forward(d, X2, 2, NN_FORWARD_INFER, NULL);
    cv_nnf_backward(f, Y2);
    cv_nnd_backward(d, Y2);
    for (size_t i = 0; i < d->n_params; i++)
        ck_assert_double_eq_tol(f->grads[i], d->grads[i], 1e-6);
    cv_nnf_destroy(f);
    cv_nnd_destroy(d);
}
END_TEST

/* A softmax layer straight on the inputs, trained toward targets smoothed by ε = smoothing:
 * P = softmax(XWᵀ + b), T = (1 − ε)·Y + ε/3 with Y one-hot, the cost −mean Σ_c T_c·log P_c,
 * dW = (P − T)ᵀX / m, and the reported cost −mean log P[y] whatever ε. Returns the smoothed
 * cost minus the reported one. */
static double check_softmax_layer(float smoothing) {
    cv_arch_t a;
    memset(&a, 0, sizeof a);
    a.layers = 1, a.units[0] = 2, a.units[1] = 3, a.keep_prob[0] = 1;
    a.output = CV_OUT_SOFTMAX, a.classes = 3;
    a.label_smoothing = smoothing;
    double eps = smoothing; /* the value the network holds */
    cv_nnd_net_t *net = NULL;
    ck_assert_int_eq(cv_nnd_create(&net, &a, 2, NULL), 0);
    const double W[] = {1, 0, 0, 1, -1, -1}, b[] = {0, 0.5, 0};
    memcpy(net->W[1], W, sizeof W);
    memcpy(net->b[1], b, sizeof b);
    const double X[] = {2, 1, 0, 3};
    const int32_t y[] = {0, 2};
    cv_nnd_forward(net, X, 2, NN_FORWARD_INFER, NULL);
    /* logits: example 1 (2, 1.5, −3), example 2 (0, 3.5, −3) */
    const double z[2][3] = {{2, 1.5, -3}, {0, 3.5, -3}};
    double smoothed = 0, plain = 0, P[2][3], T[2][3];
    for (int i = 0; i < 2; i++) {
        double s = exp(z[i][0]) + exp(z[i][1]) + exp(z[i][2]);
        for (int c = 0; c < 3; c++) {
            P[i][c] = exp(z[i][c]) / s;
            T[i][c] = (1 - eps) * (y[i] == c) + eps / 3;
            ck_assert_double_eq_tol(net->probs[i * 3 + c], P[i][c], 1e-15);
            smoothed -= T[i][c] * log(P[i][c]) / 2;
        }
        plain -= log(P[i][y[i]]) / 2;
    }
    ck_assert_double_eq_tol(cv_nnd_smoothed_loss(net, y), smoothed, 1e-14);
    ck_assert_double_eq_tol(cv_nnd_loss(net, y, NULL), plain, 1e-14);
    cv_nnd_backward(net, y);
    for (int c = 0; c < 3; c++)
        for (int j = 0; j < 2; j++) {
            double g = 0;
            for (int i = 0; i < 2; i++) g += (P[i][c] - T[i][c]) * X[i * 2 + j] / 2;
            ck_assert_double_eq_tol(net->dW[1][c * 2 + j], g, 1e-15);
        }
    cv_nnd_destroy(net);
    return smoothed - plain;
}

/* Without smoothing the target is Y, and the cost the network minimizes is the one reported. */
START_TEST(softmax_output_and_gradient) {
    ck_assert_double_eq_tol(check_softmax_layer(0), 0, 1e-15);
}
END_TEST

/* The loss is computed from logits, so a confidently wrong prediction costs a large finite
 * amount instead of −log(0) = ∞. */
START_TEST(loss_is_finite_for_saturated_logits) {
    cv_arch_t a;
    memset(&a, 0, sizeof a);
    a.layers = 1, a.units[0] = 1, a.units[1] = 2, a.keep_prob[0] = 1, a.classes = 2;
    cv_nnf_net_t *net = NULL;
    ck_assert_int_eq(cv_nnf_create(&net, &a, 1, NULL), 0);
    net->W[1][0] = 200, net->W[1][1] = -200;
    const float x[] = {1};
    const int32_t y[] = {1};
    cv_nnf_forward(net, x, 1, NN_FORWARD_INFER, NULL);
    double loss = cv_nnf_loss(net, y, NULL);
    ck_assert(isfinite(loss));
    ck_assert_double_eq_tol(loss, 400.0, 1e-3);
    cv_nnf_destroy(net);
}
END_TEST

/* One relu layer whose units all output exactly 1: A[1] before dropout is all ones. */
static cv_nnf_net_t *ones_net(float keep, size_t rows) {
    cv_arch_t a;
    memset(&a, 0, sizeof a);
    a.layers = 2, a.units[0] = 1, a.units[1] = 100, a.units[2] = 2;
    a.act[1] = CV_ACT_RELU, a.keep_prob[0] = 1, a.keep_prob[1] = keep, a.classes = 2;
    cv_nnf_net_t *net = NULL;
    ck_assert_int_eq(cv_nnf_create(&net, &a, rows, NULL), 0);
    for (int j = 0; j < 100; j++) net->W[1][j] = 1;
    return net;
}

/* Inverted dropout with keep_prob 0.8 zeroes about 20% of the units and divides the rest by
 * 0.8, so the expected activation stays 1. */
START_TEST(dropout_keeps_expected_activation) {
    size_t rows = 200;
    cv_nnf_net_t *net = ones_net(0.8f, rows);
    float *x = malloc(rows * sizeof *x);
    for (size_t i = 0; i < rows; i++) x[i] = 1;
    cv_rng_t rng;
    cv_rng_seed(&rng, 7);
    cv_nnf_forward(net, x, rows, NN_FORWARD_TRAIN, &rng);
    size_t count = rows * 100, zeros = 0;
    double sum = 0;
    for (size_t i = 0; i < count; i++) {
        float v = net->A[1][i];
        ck_assert(v == 0.0f || fabsf(v - 1.25f) < 1e-6f);
        zeros += v == 0.0f;
        sum += v;
    }
    /* 20,000 Bernoulli(0.2) draws: σ of the zero fraction is √(0.16/20000) ≈ 0.0028. */
    ck_assert_double_eq_tol((double)zeros / (double)count, 0.2, 5 * 0.0028);
    ck_assert_double_eq_tol(sum / (double)count, 1.0, 5 * 0.0028 * 1.25);
    free(x);
    cv_nnf_destroy(net);
}
END_TEST

/* At inference no unit is dropped and nothing is rescaled. */
START_TEST(dropout_is_off_at_inference) {
    cv_nnf_net_t *net = ones_net(0.5f, 10);
    float x[10];
    for (int i = 0; i < 10; i++) x[i] = 1;
    cv_nnf_forward(net, x, 10, NN_FORWARD_INFER, NULL);
    for (int i = 0; i < 1000; i++) ck_assert_float_eq(net->A[1][i], 1.0f);
    cv_nnf_destroy(net);
}
END_TEST

/* The backward pass uses the forward pass's mask: a unit dropped for the only example gets no
 * gradient on its incoming or outgoing weights, and a kept unit does. */
START_TEST(dropout_mask_is_shared_with_backward) {
    cv_nnf_net_t *net = ones_net(0.5f, 1);
    for (int j = 0; j < 100; j++) {
        net->W[2][j] = 0.01f * (float)(j + 1);
        net->W[2][100 + j] = -0.01f * (float)(j + 1);
    }
    float x[1] = {1};
    int32_t y[1] = {1};
    cv_rng_t rng;
    cv_rng_seed(&rng, 3);
    cv_nnf_forward(net, x, 1, NN_FORWARD_TRAIN, &rng);
    cv_nnf_backward(net, y);
    int dropped = 0;
    for (int j = 0; j < 100; j++) {
        if (net->mask[1][j] == 0.0f) {
            dropped++;
            ck_assert_float_eq(net->dW[1][j], 0.0f);
            ck_assert_float_eq(net->dW[2][j], 0.0f);
            ck_assert_float_eq(net->dW[2][100 + j], 0.0f);
        } else {
            ck_assert_float_ne(net->dW[1][j], 0.0f);
            ck_assert_float_ne(net->dW[2][j], 0.0f);
        }
    }
    ck_assert_int_gt(dropped, 20);
    ck_assert_int_lt(dropped, 80);
    cv_nnf_destroy(net);
}
END_TEST

/* A batch-norm layer with γ = 1, β = 10 in front of relu passes x̂ + 10 (always positive, so
 * relu is the identity there). */
static cv_nnd_net_t *bn_net(size_t rows) {
    cv_arch_t a;
    memset(&a, 0, sizeof a);
    a.layers = 2, a.units[0] = 1, a.units[1] = 1, a.units[2] = 2;
    a.act[1] = CV_ACT_RELU, a.batch_norm[1] = 1, a.keep_prob[0] = a.keep_prob[1] = 1;
    a.classes = 2, a.bn_momentum = 0.9f, a.bn_epsilon = 1e-5f;
    cv_nnd_net_t *net = NULL;
    ck_assert_int_eq(cv_nnd_create(&net, &a, rows, NULL), 0);
    ck_assert_ptr_null(net->b[1]);
    net->W[1][0] = 1, net->gamma[1][0] = 1, net->beta[1][0] = 10;
    return net;
}

/* Training mode normalizes with the batch's mean and variance: (1, 2, 3, 6) has mean 3 and
 * variance (4 + 1 + 0 + 9)/4 = 3.5. */
START_TEST(batchnorm_training_uses_batch_statistics) {
    cv_nnd_net_t *net = bn_net(4);
    const double x[] = {1, 2, 3, 6};
    const int32_t y[] = {0, 1, 0, 1};
    cv_nnd_forward(net, x, 4, NN_FORWARD_BATCH_STATS, NULL);
    (void)y;
    for (int i = 0; i < 4; i++)
        ck_assert_double_eq_tol(net->A[1][i], (x[i] - 3) / sqrt(3.5 + 1e-5) + 10, 1e-6);
    cv_nnd_destroy(net);
}
END_TEST

/* Running averages: after two updates with batch means 3 and 5 (variances 3.5 and 3.5), the
 * running mean is 0.9·(0.9·0 + 0.1·3) + 0.1·5 = 0.77 and the running variance
 * 0.9·(0.9·1 + 0.1·3.5) + 0.1·3.5 = 1.475; inference then normalizes with those. */
START_TEST(batchnorm_inference_uses_running_statistics) {
    cv_nnd_net_t *net = bn_net(4);
    const double x1[] = {1, 2, 3, 6}, x2[] = {3, 4, 5, 8};
    cv_nnd_forward(net, x1, 4, NN_FORWARD_BATCH_STATS | NN_FORWARD_UPDATE_STATS, NULL);
    cv_nnd_forward(net, x2, 4, NN_FORWARD_BATCH_STATS | NN_FORWARD_UPDATE_STATS, NULL);
    ck_assert_double_eq_tol(net->run_mean[1][0], 0.77, 1e-6);
    ck_assert_double_eq_tol(net->run_var[1][0], 1.475, 1e-6);
    const double probe[] = {2};
    cv_nnd_forward(net, probe, 1, NN_FORWARD_INFER, NULL);
    ck_assert_double_eq_tol(net->A[1][0], (2 - 0.77) / sqrt(1.475 + 1e-5) + 10, 1e-6);
    /* Without UPDATE_STATS the running averages do not move. */
    cv_nnd_forward(net, x1, 4, NN_FORWARD_BATCH_STATS, NULL);
    ck_assert_double_eq_tol(net->run_mean[1][0], 0.77, 1e-6);
    cv_nnd_destroy(net);
}
END_TEST

/* He initialization draws W[l] from N(0, 2/n[l−1]); over 256×512 weights the sample standard
 * deviation is within 2% of √(2/512). Biases start at zero. */
START_TEST(he_init_has_the_right_scale) {
    cv_arch_t a;
    memset(&a, 0, sizeof a);
    a.layers = 2, a.units[0] = 512, a.units[1] = 256, a.units[2] = 10;
    a.act[1] = CV_ACT_RELU, a.keep_prob[0] = a.keep_prob[1] = 1, a.classes = 10;
    cv_nnf_net_t *net = NULL;
    ck_assert_int_eq(cv_nnf_create(&net, &a, 1, NULL), 0);
    cv_rng_t rng;
    cv_rng_seed(&rng, 11);
    cv_nnf_init(net, CV_INIT_HE, 1.0, &rng);
    double s = 0, s2 = 0, n = 256.0 * 512.0;
    for (size_t i = 0; i < 256 * 512; i++) s += net->W[1][i], s2 += (double)net->W[1][i] * net->W[1][i];
    double sd = sqrt(s2 / n - (s / n) * (s / n));
    ck_assert_double_eq_tol(sd, sqrt(2.0 / 512), 0.02 * sqrt(2.0 / 512));
    for (int j = 0; j < 256; j++) ck_assert_float_eq(net->b[1][j], 0.0f);
    /* Xavier on the same net: √(1/512). */
    cv_nnf_init(net, CV_INIT_XAVIER, 1.0, &rng);
    s = s2 = 0;
    for (size_t i = 0; i < 256 * 512; i++) s += net->W[1][i], s2 += (double)net->W[1][i] * net->W[1][i];
    sd = sqrt(s2 / n - (s / n) * (s / n));
    ck_assert_double_eq_tol(sd, sqrt(1.0 / 512), 0.02 * sqrt(1.0 / 512));
    cv_nnf_destroy(net);
}
END_TEST

/* Zero initialization never breaks symmetry: after gradient steps every hidden unit still has
 * the same incoming weights, which is why the course keeps it only as a counterexample. */
START_TEST(zero_init_keeps_hidden_units_symmetric) {
    cv_arch_t a;
    memset(&a, 0, sizeof a);
    a.layers = 2, a.units[0] = 3, a.units[1] = 4, a.units[2] = 3;
    a.act[1] = CV_ACT_SIGMOID, a.keep_prob[0] = a.keep_prob[1] = 1, a.classes = 3;
    cv_nnd_net_t *net = NULL;
    ck_assert_int_eq(cv_nnd_create(&net, &a, 4, NULL), 0);
    cv_rng_t rng;
    cv_rng_seed(&rng, 1);
    cv_nnd_init(net, CV_INIT_ZEROS, 1.0, &rng);
    const double X[] = {1, 2, 3, -1, 0, 2, 0.5, 0.5, -2, 3, 1, 0};
    const int32_t y[] = {0, 1, 2, 1};
    for (int step = 0; step < 20; step++) {
        cv_nnd_forward(net, X, 4, NN_FORWARD_INFER, NULL);
        cv_nnd_backward(net, y);
        for (size_t i = 0; i < net->n_params; i++) net->params[i] -= 0.5 * net->grads[i];
    }
    for (int j = 1; j < 4; j++)
        for (int k = 0; k < 3; k++)
            ck_assert_double_eq_tol(net->W[1][j * 3 + k], net->W[1][k], 1e-12);
    cv_nnd_destroy(net);
}
END_TEST

/* L2 and L1 costs: λ2/2m·Σ W² + λ1/m·Σ|W| with W = (0.1, −0.2, 0.3, 0.4, 0.5, −0.6). */
START_TEST(regularization_cost_and_gradient) {
    cv_nnd_net_t *net = tiny_net();
    double sq = 0.01 + 0.04 + 0.09 + 0.16 + 0.25 + 0.36, ab = 2.1;
    ck_assert_double_eq_tol(cv_nnd_reg_cost(net, 0.7, 0, 10), 0.7 / 20 * sq, 1e-15);
    ck_assert_double_eq_tol(cv_nnd_reg_cost(net, 0, 0.3, 10), 0.3 / 10 * ab, 1e-15);
    memset(net->grads, 0, net->n_params * sizeof(double));
    cv_nnd_add_reg_grad(net, 0.7, 0.3, 10);
    ck_assert_double_eq_tol(net->dW[1][1], 0.07 * -0.2 - 0.03, 1e-15);
    ck_assert_double_eq_tol(net->dW[2][0], 0.07 * 0.5 + 0.03, 1e-15);
    ck_assert_double_eq(net->db[1][0], 0.0); /* biases are not regularized */
    cv_nnd_destroy(net);
}
END_TEST

/* ---- label smoothing ------------------------------------------------------------------ */

/* A softmax layer of 2 classes on one input x = 1 with W = (0, ln 3): logits (0, ln 3), so
 * P = (1/4, 3/4). With label 1 and ε = 0.25 (exact in binary) the target is (0.125, 0.875):
 * the smoothed cost is 0.125·ln 4 + 0.875·ln(4/3), the plain one ln(4/3), and
 * dZ = P − T = (0.125, −0.125). */
START_TEST(smoothed_loss_of_two_classes_matches_hand_computation) {
    cv_arch_t a;
    memset(&a, 0, sizeof a);
    a.layers = 1, a.units[0] = 1, a.units[1] = 2, a.keep_prob[0] = 1, a.classes = 2;
    a.output = CV_OUT_SOFTMAX;
    a.label_smoothing = 0.25f;
    cv_nnd_net_t *net = NULL;
    ck_assert_int_eq(cv_nnd_create(&net, &a, 1, NULL), 0);
    net->W[1][0] = 0, net->W[1][1] = log(3.0);
    const double x[] = {1};
    const int32_t y[] = {1};
    cv_nnd_forward(net, x, 1, NN_FORWARD_INFER, NULL);
    ck_assert_double_eq_tol(cv_nnd_smoothed_loss(net, y), 0.125 * log(4.0) + 0.875 * log(4.0 / 3),
                            1e-15);
    ck_assert_double_eq_tol(cv_nnd_loss(net, y, NULL), log(4.0 / 3), 1e-15);
    cv_nnd_backward(net, y);
    ck_assert_double_eq_tol(net->db[1][0], 0.25 - 0.125, 1e-15);
    ck_assert_double_eq_tol(net->db[1][1], 0.75 - 0.875, 1e-15);
    cv_nnd_destroy(net);
}
END_TEST

/* The same layer with ε = 0.3 over C = 3 classes: the target is T = 0.7·Y + 0.1. */
START_TEST(smoothed_softmax_cost_and_gradient) {
    /* The two costs differ, so the checks above tell them apart. */
    ck_assert(fabs(check_softmax_layer(0.3f)) > 0.1);
}
END_TEST

/* The sigmoid output smooths toward ½: with ε = 0.25 the targets of labels 1 and 0 are 0.875
 * and 0.125, in the hand-computed tiny network (z = −0.548 and 0.1). */
START_TEST(smoothed_sigmoid_cost_and_gradient) {
    cv_nnd_net_t *net = tiny_net();
    net->arch.label_smoothing = 0.25f;
    cv_nnd_forward(net, X2, 2, NN_FORWARD_INFER, NULL);
    double p1 = sigmoid(-0.548), p2 = sigmoid(0.1);
    double want = -(0.875 * log(p1) + 0.125 * log(1 - p1) + 0.125 * log(p2) +
                    0.875 * log(1 - p2)) / 2;
    ck_assert_double_eq_tol(cv_nnd_smoothed_loss(net, Y2), want, 1e-14);
    ck_assert_double_eq_tol(cv_nnd_loss(net, Y2, NULL), -(log(p1) + log(1 - p2)) / 2, 1e-14);
    cv_nnd_backward(net, Y2);
    ck_assert_double_eq_tol(net->db[2][0], (p1 - 0.875 + p2 - 0.125) / 2, 1e-15);
    ck_assert_double_eq_tol(net->dW[2][1], 1.08 * (p1 - 0.875) / 2, 1e-15);
    cv_nnd_destroy(net);
}
END_TEST

static Suite *nn_suite(void) {
    Suite *s = suite_create("nn");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, forward_matches_hand_computation);
    tcase_add_test(tc, backward_matches_hand_computation);
    tcase_add_test(tc, float_build_agrees_with_double_build);
    tcase_add_test(tc, softmax_output_and_gradient);
    tcase_add_test(tc, loss_is_finite_for_saturated_logits);
    tcase_add_test(tc, dropout_keeps_expected_activation);
    tcase_add_test(tc, dropout_is_off_at_inference);
    tcase_add_test(tc, dropout_mask_is_shared_with_backward);
    tcase_add_test(tc, batchnorm_training_uses_batch_statistics);
    tcase_add_test(tc, batchnorm_inference_uses_running_statistics);
    tcase_add_test(tc, he_init_has_the_right_scale);
    tcase_add_test(tc, zero_init_keeps_hidden_units_symmetric);
    tcase_add_test(tc, regularization_cost_and_gradient);
    suite_add_tcase(s, tc);
    TCase *ls = tcase_create("label_smoothing");
    tcase_add_test(ls, smoothed_loss_of_two_classes_matches_hand_computation);
    tcase_add_test(ls, smoothed_softmax_cost_and_gradient);
    tcase_add_test(ls, smoothed_sigmoid_cost_and_gradient);
    suite_add_tcase(s, ls);
    return s;
}

CV_TEST_MAIN(nn_suite)
