/* Optimizers (gradient descent, momentum, RMSprop, Adam with bias correction) as one flat loop
 * over the parameter block, and the learning-rate schedules. */
#ifndef CV_OPTIM_H
#define CV_OPTIM_H

#include <stddef.h>

#include "common/trial_spec.h"

typedef struct {
    cv_optimizer_t kind;
    float beta;      /* momentum: weight of the past velocity */
    float beta1;     /* adam: first-moment decay */
    float beta2;     /* adam, rmsprop: second-moment decay */
    float epsilon;   /* adam, rmsprop: added to √v */
    size_t n;        /* parameters */
    float *m;        /* velocity / first moment, n values (momentum, adam), else NULL */
    float *v;        /* second moment, n values (rmsprop, adam), else NULL */
    long t;          /* steps taken; adam's bias correction uses it */
} cv_optim_t;

/* Sets up the optimizer the spec names for n parameters with zeroed moments. opt is caller-owned;
 * the moment arrays it allocates are released by cv_optim_finish. */
int cv_optim_init(cv_optim_t *opt, const cv_trial_spec_t *spec, size_t n, char *err);
void cv_optim_finish(cv_optim_t *opt);

/* One update of params with grads at learning rate lr:
 *   gd:       θ −= α·g
 *   momentum: v = β·v + (1−β)·g;             θ −= α·v
 *   rmsprop:  s = β₂·s + (1−β₂)·g²;          θ −= α·g / (√s + ε)
 *   adam:     m = β₁·m + (1−β₁)·g;  v = β₂·v + (1−β₂)·g²;  t += 1
 *             θ −= α·(m / (1−β₁ᵗ)) / (√(v / (1−β₂ᵗ)) + ε) */
void cv_optim_step(cv_optim_t *opt, float *params, const float *grads, float lr);

/* Learning rate of the spec's schedule at a 0-based epoch (see cv_decay_t): the first
 * warmup_epochs epochs ramp up linearly, α₀·(epoch + 1)/(warmup_epochs + 1); the schedule then
 * runs with its epoch counted from the end of the warmup (0 at the first epoch after it) and,
 * for cosine, over the epochs − warmup_epochs that remain. */
double cv_learning_rate_at(const cv_trial_spec_t *spec, int epoch);

#endif
