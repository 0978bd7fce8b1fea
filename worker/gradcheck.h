/* Gradient checking in double precision: the analytic gradient of the backward pass (plus the
 * regularization gradient) against central differences of the cost, graded as the course does. */
#ifndef CV_GRADCHECK_H
#define CV_GRADCHECK_H

#include <stddef.h>

#include "common/rng.h"
#include "common/trial_spec.h"
#include "worker/nn.h"

#define CV_GRADCHECK_EPSILON 1e-7

typedef struct {
    double relative_difference; /* ‖dθ_approx − dθ‖ / (‖dθ_approx‖ + ‖dθ‖) */
    size_t checked;             /* coordinates of θ compared */
    size_t n_params;            /* coordinates of θ in all */
    size_t worst_index;         /* coordinate with the largest absolute difference */
    double worst_numeric, worst_analytic;
    const char *verdict;        /* "correct" (< 1e-7), "inspect" (< 1e-3), "bug" (≥ 1e-3) */
} cv_gradcheck_result_t;

/* The course's grading of a relative difference. */
const char *cv_gradcheck_verdict(double relative_difference);

/* Compares net's gradient of J(θ) = cross-entropy (against the targets smoothed by
 * net->arch.label_smoothing) + λ2/2m·Σ‖W‖² + λ1/m·Σ|W| on the m rows of X
 * (labels y) with (J(θ + εeᵢ) − J(θ − εeᵢ)) / 2ε. Dropout is off; batch norm uses the batch's
 * statistics without touching the running averages. When max_coords is non-zero and smaller
 * than the number of parameters, that many coordinates are drawn at random with rng (the
 * relative difference is then over those coordinates only). net's parameters are left as they
 * were. */
int cv_gradcheck_net(cv_nnd_net_t *net, const double *X, const int32_t *y, size_t m, double l2,
                     double l1, double epsilon, size_t max_coords, cv_rng_t *rng,
                     cv_gradcheck_result_t *res, char *err);

/* Gradient check of a trial spec: its architecture, initialization and regularization on its
 * first `examples` normalized training examples, of the cost the trainer minimizes (the
 * regularization term divided by the size of the whole training set). */
int cv_gradcheck_spec(const cv_trial_spec_t *spec, size_t examples, size_t max_coords,
                      cv_gradcheck_result_t *res, char *err);

#endif
