/* Gradient checking; see gradcheck.h. */
#include "worker/gradcheck.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "worker/trial_data.h"

const char *cv_gradcheck_verdict(double rel) {
    if (rel < 1e-7) return "correct";
    if (rel < 1e-3) return "inspect";
    return "bug";
}

static double cost_at(cv_nnd_net_t *net, const double *X, const int32_t *y, size_t m, double l2,
                      double l1) {
    cv_nnd_forward(net, X, m, NN_FORWARD_BATCH_STATS, NULL);
    return cv_nnd_smoothed_loss(net, y) + cv_nnd_reg_cost(net, l2, l1, m);
}

int cv_gradcheck_net(cv_nnd_net_t *net, const double *X, const int32_t *y, size_t m, double l2,
                     double l1, double epsilon, size_t max_coords, cv_rng_t *rng,
                     cv_gradcheck_result_t *res, char *err) {
    memset(res, 0, sizeof *res);
    if (m == 0 || m > net->batch_cap)
        return cv_errf(err, CV_EINVAL, "gradient check needs 1..%zu examples, got %zu",
                       net->batch_cap, m);
    size_t n = net->n_params;
    size_t count = max_coords && max_coords < n ? max_coords : n;
    size_t *coords = malloc(count * sizeof *coords);
    double *analytic = malloc(count * sizeof *analytic);
    if (!coords || !analytic) {
        free(coords);
        free(analytic);
        return cv_errf(err, CV_ENOMEM, "out of memory for the gradient check");
    }
    for (size_t i = 0; i < count; i++)
        coords[i] = count == n ? i : (size_t)(cv_rng_uniform(rng) * (double)n);

    cost_at(net, X, y, m, l2, l1);
    cv_nnd_backward(net, y);
    cv_nnd_add_reg_grad(net, l2, l1, m);
    for (size_t i = 0; i < count; i++) analytic[i] = net->grads[coords[i]];

    double diff2 = 0, num2 = 0, ana2 = 0, worst = -1;
    for (size_t i = 0; i < count; i++) {
        double *theta = &net->params[coords[i]], saved = *theta;
        *theta = saved + epsilon;
        double plus = cost_at(net, X, y, m, l2, l1);
        *theta = saved - epsilon;
        double minus = cost_at(net, X, y, m, l2, l1);
        *theta = saved;
        double approx = (plus - minus) / (2 * epsilon), d = approx - analytic[i];
        diff2 += d * d;
        num2 += approx * approx;
        ana2 += analytic[i] * analytic[i];
        if (fabs(d) > worst) {
            worst = fabs(d);
            res->worst_index = coords[i];
            res->worst_numeric = approx;
            res->worst_analytic = analytic[i];
        }
    }
    double denom = sqrt(num2) + sqrt(ana2);
    res->relative_difference = denom > 0 ? sqrt(diff2) / denom : 0;
    res->checked = count;
    res->n_params = n;
    res->verdict = cv_gradcheck_verdict(res->relative_difference);
    free(coords);
    free(analytic);
    return 0;
}

int cv_gradcheck_spec(const cv_trial_spec_t *spec, size_t examples, size_t max_coords,
                      cv_gradcheck_result_t *res, char *err) {
    cv_trial_data_t data;
    cv_nnd_net_t *net = NULL;
    double *X = NULL;
    int rc = cv_trial_data_load(&data, spec, err);
    if (rc) return rc;
    const cv_dataset_t *tr = &data.train;
    size_t m = examples < tr->m ? examples : tr->m;
    if (data.train_raw) cv_normalizer_apply(&data.norm, &data.train);
    cv_arch_t arch;
    if ((rc = cv_arch_from_spec(&arch, spec, (int)tr->n, data.classes, err))) goto done;
    if ((rc = cv_nnd_create(&net, &arch, m, err))) goto done;
    X = malloc(m * tr->n * sizeof *X);
    if (!X) {
        rc = cv_errf(err, CV_ENOMEM, "out of memory for the gradient check");
        goto done;
    }
    for (size_t i = 0; i < m * tr->n; i++) X[i] = tr->x[i];
    cv_rng_t rng;
    cv_rng_seed(&rng, cv_rng_derive(spec->seed, 2));
    cv_nnd_init(net, spec->init, spec->init_scale, &rng);
    /* The trainer's cost divides the regularization by the training set's size, not the
     * batch's: scale λ so the checked cost is that same function on these m examples. (With
     * λ/m over a handful of examples the penalty would dwarf the cross-entropy and its rounding
     * error would swamp the central differences.) */
    double scale = (double)m / (double)tr->m;
    rc = cv_gradcheck_net(net, X, tr->y, m, spec->l2 * scale, spec->l1 * scale,
                          CV_GRADCHECK_EPSILON, max_coords, &rng, res, err);
done:
    free(X);
    cv_nnd_destroy(net);
    cv_trial_data_finish(&data);
    return rc;
}
