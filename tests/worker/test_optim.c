/* Unit tests of the optimizers and learning-rate schedules (worker/optim.c). Each expected value
 * is worked out by hand in the comment beside it, or, for Adam over many steps, by a separate
 * double-precision re-implementation of the update written here from the formulas in optim.h. */
#include <math.h>
#include <stddef.h>

#include "common/err.h"
#include "common/trial_spec.h"
#include "testutil.h"
#include "worker/optim.h"

/* A spec with every default and the given optimizer and moment constants. */
static cv_trial_spec_t optimizer_spec(cv_optimizer_t kind) {
    cv_trial_spec_t spec;
    cv_trial_spec_defaults(&spec);
    spec.optimizer = kind;
    return spec;
}

/* Initializes opt for n parameters from spec, failing the test on error. */
static void init_or_fail(cv_optim_t *opt, const cv_trial_spec_t *spec, size_t n) {
    char err[CV_ERRLEN] = "";
    ck_assert_msg(cv_optim_init(opt, spec, n, err) == 0, "cv_optim_init: %s", err);
}

/* |got − want| ≤ rel · max(|want|, 1e-30): a relative comparison that tolerates float storage. */
static void assert_close_rel(double got, double want, double rel) {
    double scale = fabs(want) > 1e-30 ? fabs(want) : 1e-30;
    ck_assert_msg(fabs(got - want) <= rel * scale, "got %.10g, want %.10g (relative error %.3g)",
                  got, want, fabs(got - want) / scale);
}

/* ---- initialization ------------------------------------------------------------------- */

START_TEST(init_allocates_only_the_moments_the_optimizer_uses_and_zeroes_them) {
    /* gd keeps no state; momentum a velocity; rmsprop a second moment; adam both. */
    static const struct {
        cv_optimizer_t kind;
        int has_m, has_v;
    } cases[] = {
        {CV_OPT_GD, 0, 0},
        {CV_OPT_MOMENTUM, 1, 0},
        {CV_OPT_RMSPROP, 0, 1},
        {CV_OPT_ADAM, 1, 1},
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        cv_trial_spec_t spec = optimizer_spec(cases[c].kind);
        cv_optim_t opt;
        init_or_fail(&opt, &spec, 5);
        ck_assert_uint_eq(opt.n, 5);
        ck_assert_int_eq(opt.t, 0);
        ck_assert_int_eq(opt.m != NULL, cases[c].has_m);
        ck_assert_int_eq(opt.v != NULL, cases[c].has_v);
        for (size_t i = 0; i < 5; i++) {
            if (opt.m) ck_assert_float_eq(opt.m[i], 0.0f);
            if (opt.v) ck_assert_float_eq(opt.v[i], 0.0f);
        }
        cv_optim_finish(&opt);
        ck_assert_ptr_null(opt.m);
        ck_assert_ptr_null(opt.v);
    }
}
END_TEST

START_TEST(finish_accepts_null) {
    cv_optim_finish(NULL);
}
END_TEST

/* ---- plain gradient descent ----------------------------------------------------------- */

START_TEST(gd_subtracts_learning_rate_times_gradient_each_step) {
    /* α = 0.5 and dyadic values keep every product exact in float:
     *   θ₀ = (1, −2);  g₁ = (0.25, 1)  → θ₁ = (1 − 0.125, −2 − 0.5) = (0.875, −2.5)
     *                  g₂ = (−1, −0.5) → θ₂ = (0.875 + 0.5, −2.5 + 0.25) = (1.375, −2.25) */
    cv_trial_spec_t spec = optimizer_spec(CV_OPT_GD);
    cv_optim_t opt;
    init_or_fail(&opt, &spec, 2);
    float theta[2] = {1.0f, -2.0f};
    const float g1[2] = {0.25f, 1.0f}, g2[2] = {-1.0f, -0.5f};
    cv_optim_step(&opt, theta, g1, 0.5f);
    ck_assert_float_eq(theta[0], 0.875f);
    ck_assert_float_eq(theta[1], -2.5f);
    cv_optim_step(&opt, theta, g2, 0.5f);
    ck_assert_float_eq(theta[0], 1.375f);
    ck_assert_float_eq(theta[1], -2.25f);
    cv_optim_finish(&opt);
}
END_TEST

/* ---- momentum ------------------------------------------------------------------------- */

START_TEST(momentum_averages_gradients_into_a_velocity) {
    /* β = 0.75, α = 0.5, θ₀ = 1:
     *   g₁ = 2:  v₁ = 0.75·0 + 0.25·2 = 0.5;            θ₁ = 1 − 0.5·0.5 = 0.75
     *   g₂ = −2: v₂ = 0.75·0.5 + 0.25·(−2) = −0.125;    θ₂ = 0.75 + 0.5·0.125 = 0.8125
     * (all dyadic, so exact in float). */
    cv_trial_spec_t spec = optimizer_spec(CV_OPT_MOMENTUM);
    spec.beta = 0.75;
    cv_optim_t opt;
    init_or_fail(&opt, &spec, 1);
    float theta = 1.0f;
    const float g1 = 2.0f, g2 = -2.0f;
    cv_optim_step(&opt, &theta, &g1, 0.5f);
    ck_assert_float_eq(opt.m[0], 0.5f);
    ck_assert_float_eq(theta, 0.75f);
    cv_optim_step(&opt, &theta, &g2, 0.5f);
    ck_assert_float_eq(opt.m[0], -0.125f);
    ck_assert_float_eq(theta, 0.8125f);
    cv_optim_finish(&opt);
}
END_TEST

/* ---- RMSprop -------------------------------------------------------------------------- */

START_TEST(rmsprop_divides_by_the_root_mean_square_of_gradients) {
    /* β₂ = 0.75, α = 0.125, ε = 1e-8, θ₀ = (1, 1):
     *   g₁ = (2, 0.5): s₁ = 0.25·g² = (1, 0.0625), √s₁ = (1, 0.25)
     *                  θ₁ = 1 − 0.125·(2/1, 0.5/0.25) = (0.75, 0.75)
     *     (the first step is α/√(1−β₂) = 2α whatever |g|: that is the point of RMSprop)
     *   g₂ = (−2, 1):  s₂ = 0.75·s₁ + 0.25·g² = (0.75 + 1, 0.046875 + 0.25) = (1.75, 0.296875)
     *                  θ₂ = θ₁ + 0.125·2/√1.75, θ₁ − 0.125·1/√0.296875
     * ε shifts each step by a relative 1e-8 at most, below float resolution. */
    cv_trial_spec_t spec = optimizer_spec(CV_OPT_RMSPROP);
    spec.beta2 = 0.75;
    spec.epsilon = 1e-8;
    cv_optim_t opt;
    init_or_fail(&opt, &spec, 2);
    float theta[2] = {1.0f, 1.0f};
    const float g1[2] = {2.0f, 0.5f}, g2[2] = {-2.0f, 1.0f};
    cv_optim_step(&opt, theta, g1, 0.125f);
    ck_assert_float_eq(opt.v[0], 1.0f);
    ck_assert_float_eq(opt.v[1], 0.0625f);
    ck_assert_float_eq_tol(theta[0], 0.75f, 1e-7f);
    ck_assert_float_eq_tol(theta[1], 0.75f, 1e-7f);
    cv_optim_step(&opt, theta, g2, 0.125f);
    ck_assert_float_eq(opt.v[0], 1.75f);
    ck_assert_float_eq(opt.v[1], 0.296875f);
    assert_close_rel(theta[0], 0.75 + 0.125 * 2.0 / sqrt(1.75), 1e-6);
    assert_close_rel(theta[1], 0.75 - 0.125 * 1.0 / sqrt(0.296875), 1e-6);
    cv_optim_finish(&opt);
}
END_TEST

/* ---- Adam ----------------------------------------------------------------------------- */

START_TEST(adam_first_step_moves_by_the_learning_rate_whatever_the_gradient_scale) {
    /* After one step m = (1−β₁)g and v = (1−β₂)g², so the bias-corrected m̂ = g and v̂ = g²:
     * the step is α·g/(|g| + ε) ≈ α·sign(g), for a tiny gradient and a huge one alike. */
    static const float grads[4] = {0.5f, -3.0f, 1e-3f, 2e4f};
    cv_trial_spec_t spec = optimizer_spec(CV_OPT_ADAM);
    spec.beta1 = 0.9;
    spec.beta2 = 0.999;
    spec.epsilon = 1e-8;
    cv_optim_t opt;
    init_or_fail(&opt, &spec, 4);
    float theta[4] = {1.0f, 1.0f, 1.0f, 1.0f};
    const double alpha = 0.01;
    cv_optim_step(&opt, theta, grads, (float)alpha);
    for (int i = 0; i < 4; i++) {
        double g = grads[i];
        double want = 1.0 - alpha * g / (fabs(g) + 1e-8);
        assert_close_rel(theta[i], want, 1e-6);
    }
    /* The values are ≈ 0.99 or 1.01: bias correction undone would give 0.999 or so. */
    ck_assert_float_eq_tol(theta[0], 0.99f, 1e-5f);
    ck_assert_float_eq_tol(theta[1], 1.01f, 1e-5f);
    cv_optim_finish(&opt);
}
END_TEST

START_TEST(adam_with_a_constant_gradient_moves_by_the_learning_rate_every_step) {
    /* With g constant, m_t = (1−β₁ᵗ)g and v_t = (1−β₂ᵗ)g², so m̂ = g and v̂ = g² at every t:
     * each of 50 steps moves θ by α·g/(|g|+ε), 50·α in all. */
    cv_trial_spec_t spec = optimizer_spec(CV_OPT_ADAM);
    cv_optim_t opt;
    init_or_fail(&opt, &spec, 1);
    float theta = 0.0f;
    const float g = 0.25f;
    const double alpha = 0.001;
    for (int t = 0; t < 50; t++)
        cv_optim_step(&opt, &theta, &g, (float)alpha);
    assert_close_rel(theta, -50 * alpha * 0.25 / (0.25 + spec.epsilon), 1e-5);
    cv_optim_finish(&opt);
}
END_TEST

/* The known gradient of parameter i at step t (1-based): signs and scales vary on purpose. */
static double adam_test_gradient(int i, int t) {
    static const double scale[3] = {1.0, 1e-3, 50.0};
    return scale[i] * (sin(0.7 * t + i) + 0.3 * cos(2.1 * t));
}

START_TEST(adam_matches_a_double_precision_reference_over_many_steps) {
    /* The reference below is the textbook update in double, with β₁ and β₂ taken as the float
     * values the optimizer stores (so the two differ only by float rounding). With β₂ = 0.99,
     * 1 − β₂ᵗ is still 0.63 at t = 100: the bias correction matters at every step compared. */
    enum { N = 3, STEPS = 100 };
    cv_trial_spec_t spec = optimizer_spec(CV_OPT_ADAM);
    spec.beta1 = 0.9;
    spec.beta2 = 0.99;
    spec.epsilon = 1e-8;
    cv_optim_t opt;
    init_or_fail(&opt, &spec, N);
    const double b1 = (float)spec.beta1, b2 = (float)spec.beta2, eps = (float)spec.epsilon;
    const double alpha = 0.005;
    float theta[N] = {0.5f, -1.0f, 2.0f};
    double ref[N] = {0.5, -1.0, 2.0}, m[N] = {0}, v[N] = {0};
    for (int t = 1; t <= STEPS; t++) {
        float g[N];
        for (int i = 0; i < N; i++) {
            double gi = (float)adam_test_gradient(i, t); /* the optimizer sees the float value */
            g[i] = (float)gi;
            m[i] = b1 * m[i] + (1 - b1) * gi;
            v[i] = b2 * v[i] + (1 - b2) * gi * gi;
            double mhat = m[i] / (1 - pow(b1, t)), vhat = v[i] / (1 - pow(b2, t));
            ref[i] -= alpha * mhat / (sqrt(vhat) + eps);
        }
        cv_optim_step(&opt, theta, g, (float)alpha);
    }
    ck_assert_int_eq(opt.t, STEPS);
    /* θ is rounded to float after each of the 100 updates (half an ulp, ≤ 6e-8 relative), so
     * the two drift apart by a random walk of such errors: measured 1e-7 to 3e-7 relative. A
     * wrong bias correction (t off by one, a missing 1/(1−βᵗ)) is off by 1e-3 or more. */
    for (int i = 0; i < N; i++)
        assert_close_rel(theta[i], ref[i], 2e-6);
    cv_optim_finish(&opt);
}
END_TEST

START_TEST(t_counts_the_steps_taken_by_every_optimizer) {
    static const cv_optimizer_t kinds[4] = {CV_OPT_GD, CV_OPT_MOMENTUM, CV_OPT_RMSPROP,
                                            CV_OPT_ADAM};
    for (int k = 0; k < 4; k++) {
        cv_trial_spec_t spec = optimizer_spec(kinds[k]);
        cv_optim_t opt;
        init_or_fail(&opt, &spec, 1);
        float theta = 0.0f;
        const float g = 1.0f;
        for (int t = 1; t <= 7; t++) {
            cv_optim_step(&opt, &theta, &g, 0.01f);
            ck_assert_int_eq(opt.t, t);
        }
        cv_optim_finish(&opt);
    }
}
END_TEST

/* ---- learning-rate schedules ---------------------------------------------------------- */

static const int schedule_epochs[5] = {0, 1, 2, 5, 10};

/* Checks cv_learning_rate_at(spec, e) for the epochs above against want[]. */
static void assert_schedule(const cv_trial_spec_t *spec, const double want[5]) {
    for (int k = 0; k < 5; k++) {
        double got = cv_learning_rate_at(spec, schedule_epochs[k]);
        ck_assert_msg(fabs(got - want[k]) <= 1e-15 * want[k],
                      "%s at epoch %d: got %.17g, want %.17g", cv_decay_name(spec->decay),
                      schedule_epochs[k], got, want[k]);
    }
}

static cv_trial_spec_t schedule_spec(cv_decay_t decay) {
    cv_trial_spec_t spec;
    cv_trial_spec_defaults(&spec);
    spec.learning_rate = 0.1;
    spec.decay = decay;
    return spec;
}

START_TEST(no_decay_keeps_the_initial_rate) {
    cv_trial_spec_t spec = schedule_spec(CV_DECAY_NONE);
    const double want[5] = {0.1, 0.1, 0.1, 0.1, 0.1};
    assert_schedule(&spec, want);
}
END_TEST

START_TEST(inverse_time_divides_by_one_plus_rate_times_epoch) {
    /* α₀ = 0.1, decay_rate = 0.5: 0.1 / (1 + 0.5·e) for e = 0, 1, 2, 5, 10. */
    cv_trial_spec_t spec = schedule_spec(CV_DECAY_INVERSE_TIME);
    spec.decay_rate = 0.5;
    const double want[5] = {0.1, 0.1 / 1.5, 0.1 / 2.0, 0.1 / 3.5, 0.1 / 6.0};
    assert_schedule(&spec, want);
}
END_TEST

START_TEST(exponential_multiplies_by_base_to_the_epoch) {
    /* α₀ = 0.1, decay_base = 0.5: 0.1 · 0.5^e = 0.1, 0.05, 0.025, 0.1/32, 0.1/1024. */
    cv_trial_spec_t spec = schedule_spec(CV_DECAY_EXPONENTIAL);
    spec.decay_base = 0.5;
    const double want[5] = {0.1, 0.05, 0.025, 0.1 / 32, 0.1 / 1024};
    assert_schedule(&spec, want);
}
END_TEST

START_TEST(sqrt_divides_by_the_root_of_the_epoch_and_keeps_the_initial_rate_at_zero) {
    /* α₀ = 0.1, decay_k = 2: epoch 0 → 0.1 (not a division by zero), then 0.2/√e:
     * 0.2, 0.2/√2, 0.2/√5, 0.2/√10. */
    cv_trial_spec_t spec = schedule_spec(CV_DECAY_SQRT);
    spec.decay_k = 2.0;
    const double want[5] = {0.1, 0.2, 0.2 / sqrt(2.0), 0.2 / sqrt(5.0), 0.2 / sqrt(10.0)};
    assert_schedule(&spec, want);
}
END_TEST

START_TEST(staircase_steps_down_every_decay_every_epochs) {
    /* α₀ = 0.1, decay_rate = 1, decay_every = 3: ⌊e/3⌋ = 0, 0, 0, 1, 3 →
     * 0.1, 0.1, 0.1, 0.1/2, 0.1/4. */
    cv_trial_spec_t spec = schedule_spec(CV_DECAY_STAIRCASE);
    spec.decay_rate = 1.0;
    spec.decay_every = 3;
    const double want[5] = {0.1, 0.1, 0.1, 0.05, 0.025};
    assert_schedule(&spec, want);
}
END_TEST

/* Checks cv_learning_rate_at(spec, e) for e = 0 .. n−1 against want[]. */
static void assert_rates(const cv_trial_spec_t *spec, const double *want, int n) {
    for (int e = 0; e < n; e++) {
        double got = cv_learning_rate_at(spec, e);
        ck_assert_msg(fabs(got - want[e]) <= 1e-15 * want[e],
                      "%s at epoch %d: got %.17g, want %.17g", cv_decay_name(spec->decay), e, got,
                      want[e]);
    }
}

/* Cosine decay from α₀ = 0.1 over `epochs` with floor fraction decay_min after `warmup` epochs. */
static cv_trial_spec_t cosine_spec(int epochs, double decay_min, int warmup) {
    cv_trial_spec_t spec = schedule_spec(CV_DECAY_COSINE);
    spec.epochs = epochs;
    spec.decay_min = decay_min;
    spec.warmup_epochs = warmup;
    return spec;
}

START_TEST(cosine_falls_from_the_initial_rate_along_half_a_cosine) {
    /* α₀ = 0.1, 4 epochs, no floor: 0.1·(1 + cos(πe/4))/2 with cos(π/4) = √2/2, cos(π/2) = 0,
     * cos(3π/4) = −√2/2. */
    cv_trial_spec_t spec = cosine_spec(4, 0, 0);
    double h = sqrt(2.0) / 2;
    const double want[4] = {0.1, 0.1 * (1 + h) / 2, 0.05, 0.1 * (1 - h) / 2};
    assert_rates(&spec, want, 4);
}
END_TEST

START_TEST(cosine_with_a_floor_falls_toward_decay_min_times_the_initial_rate) {
    /* α₀ = 0.1, decay_min = 0.2 (α_min = 0.02), 4 epochs: 0.02 + 0.08·(1 + cos(πe/4))/2. */
    cv_trial_spec_t spec = cosine_spec(4, 0.2, 0);
    double h = sqrt(2.0) / 2;
    const double want[4] = {0.1, 0.02 + 0.08 * (1 + h) / 2, 0.06, 0.02 + 0.08 * (1 - h) / 2};
    assert_rates(&spec, want, 4);
}
END_TEST

START_TEST(warmup_ramps_up_then_the_cosine_spans_the_remaining_epochs) {
    /* α₀ = 0.1, 6 epochs, warmup 2: 0.1/3, 0.2/3, then the 4-epoch cosine above. */
    cv_trial_spec_t spec = cosine_spec(6, 0, 2);
    double h = sqrt(2.0) / 2;
    const double want[6] = {0.1 / 3, 0.2 / 3, 0.1, 0.1 * (1 + h) / 2, 0.05, 0.1 * (1 - h) / 2};
    assert_rates(&spec, want, 6);
}
END_TEST

START_TEST(warmup_delays_any_schedule) {
    /* α₀ = 0.1, warmup 1, exponential with base 0.5: 0.05, then 0.1, 0.05, 0.025. */
    cv_trial_spec_t spec = schedule_spec(CV_DECAY_EXPONENTIAL);
    spec.decay_base = 0.5;
    spec.warmup_epochs = 1;
    const double want[4] = {0.05, 0.1, 0.05, 0.025};
    assert_rates(&spec, want, 4);
}
END_TEST

static Suite *optim_suite(void) {
    Suite *s = suite_create("optim");
    TCase *init = tcase_create("init");
    tcase_add_test(init, init_allocates_only_the_moments_the_optimizer_uses_and_zeroes_them);
    tcase_add_test(init, finish_accepts_null);
    suite_add_tcase(s, init);

    TCase *steps = tcase_create("steps");
    tcase_add_test(steps, gd_subtracts_learning_rate_times_gradient_each_step);
    tcase_add_test(steps, momentum_averages_gradients_into_a_velocity);
    tcase_add_test(steps, rmsprop_divides_by_the_root_mean_square_of_gradients);
    tcase_add_test(steps, adam_first_step_moves_by_the_learning_rate_whatever_the_gradient_scale);
    tcase_add_test(steps, adam_with_a_constant_gradient_moves_by_the_learning_rate_every_step);
    tcase_add_test(steps, adam_matches_a_double_precision_reference_over_many_steps);
    tcase_add_test(steps, t_counts_the_steps_taken_by_every_optimizer);
    suite_add_tcase(s, steps);

    TCase *sched = tcase_create("schedules");
    tcase_add_test(sched, no_decay_keeps_the_initial_rate);
    tcase_add_test(sched, inverse_time_divides_by_one_plus_rate_times_epoch);
    tcase_add_test(sched, exponential_multiplies_by_base_to_the_epoch);
    tcase_add_test(sched, sqrt_divides_by_the_root_of_the_epoch_and_keeps_the_initial_rate_at_zero);
    tcase_add_test(sched, staircase_steps_down_every_decay_every_epochs);
    tcase_add_test(sched, cosine_falls_from_the_initial_rate_along_half_a_cosine);
    tcase_add_test(sched, cosine_with_a_floor_falls_toward_decay_min_times_the_initial_rate);
    tcase_add_test(sched, warmup_ramps_up_then_the_cosine_spans_the_remaining_epochs);
    tcase_add_test(sched, warmup_delays_any_schedule);
    suite_add_tcase(s, sched);
    return s;
}

CV_TEST_MAIN(optim_suite)
