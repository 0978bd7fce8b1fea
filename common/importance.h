/* Hyperparameter importance: how much of the objective's variance each searched parameter
 * explains on its own, by functional ANOVA on a random forest (Hutter, Hoos and Leyton-Brown,
 * "An Efficient Approach for Assessing Hyperparameter Importance", ICML 2014), the method of
 * Optuna's default evaluator.
 *
 * A forest of regression trees (CART, variance reduction, bootstrap samples) is fitted to the
 * trials: x in each parameter's sampling coordinate (log10 x for log scales, log2 for powers of
 * two, log10(1 − β) for one_minus_log, the value for linear ones, the index for categorical ones),
 * y the objective. Each tree is a piecewise-constant function on the space's box. Its first-order
 * marginal in parameter d, f_d(x_d) = the mean of the tree over every other parameter drawn
 * uniformly from its bounds, has a variance V_d; the tree's variance under the uniform measure on
 * the box is V. The fraction of variance parameter d explains is V_d / V, averaged over the trees
 * whose V is not 0. Interactions are what the fractions leave of 1. The importances are the
 * fractions normalized to sum to 1 (as Optuna reports them), all 0 when no tree varies.
 *
 * Categorical parameters are split as ordered indices (a split separates the choices below an
 * index from those above it), which can only understate their importance when the objective's
 * order among the choices is not monotone in the index. */
#ifndef CV_IMPORTANCE_H
#define CV_IMPORTANCE_H

#include <stddef.h>
#include <stdint.h>

#define CV_IMPORTANCE_MAX_PARAMS 64
#define CV_IMPORTANCE_MAX_TRIALS 4096 /* more trials are subsampled to this many */

typedef struct {
    size_t n_trees;   /* trees of the forest (64) */
    size_t max_depth; /* depth of a tree at most (64) */
    size_t min_leaf;  /* trials in a leaf at least (1) */
    uint64_t seed;    /* bootstrap samples and subsampling */
} cv_importance_config_t;

/* The defaults above. */
cv_importance_config_t cv_importance_defaults(uint64_t seed);

/* x: n rows of p values, row-major, each in its parameter's coordinate and within [lo[d], hi[d]]
 * (values outside are clamped); y: the n objectives (finite). lo < hi for every parameter (a
 * parameter with lo == hi explains nothing and gets 0). Writes p fractions of variance (each in
 * [0, 1], their sum at most 1) into fraction and the p normalized importances into importance
 * (either may be NULL). Needs n ≥ 2 and 1 ≤ p ≤ CV_IMPORTANCE_MAX_PARAMS. Everything is borrowed;
 * the work memory is allocated and freed here. Returns 0, CV_EINVAL (with the reason in err) or
 * CV_ENOMEM. */
int cv_importance_fanova(const double *x, const double *y, size_t n, size_t p, const double *lo,
                         const double *hi, const cv_importance_config_t *config, double *fraction,
                         double *importance, char *err);

#endif
