/* Functional ANOVA on a random forest (see importance.h): the forest's trees are grown here, each
 * one kept only as its leaves (a value and a box), which is all the variance decomposition needs.
 */
#include "common/importance.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "common/rng.h"

/* One trial as a split sees it: its value in the feature being split, its objective. */
typedef struct {
    double x, y;
    uint32_t row;
} split_item_t;

/* A sweep event of a marginal: the marginal changes by weight from position on. */
typedef struct {
    double position, weight;
} event_t;

/* What growing and decomposing one tree needs; the arrays are sized for n rows. */
typedef struct {
    const double *x, *y; /* the trials, borrowed: x is n × p */
    size_t n, p;
    const double *lo, *hi; /* the space's box, borrowed */
    const cv_importance_config_t *config;
    uint32_t *rows;      /* the bootstrap sample, n entries, reordered by splits */
    split_item_t *items; /* n, sorting scratch */
    double *box;         /* the current node's box: p lows then p highs */
    double *leaf_box;    /* leaves × 2p: each leaf's lows then highs */
    double *leaf_value;  /* leaves */
    size_t n_leaves;
    event_t *events; /* 2 × leaves, sweep scratch */
} forest_t;

cv_importance_config_t cv_importance_defaults(uint64_t seed) {
    return (cv_importance_config_t){.n_trees = 64, .max_depth = 64, .min_leaf = 1, .seed = seed};
}

static int by_x(const void *a, const void *b) {
    double u = ((const split_item_t *)a)->x, v = ((const split_item_t *)b)->x;
    return (u > v) - (u < v);
}

static int by_position(const void *a, const void *b) {
    double u = ((const event_t *)a)->position, v = ((const event_t *)b)->position;
    return (u > v) - (u < v);
}

static void add_leaf(forest_t *f, size_t begin, size_t end) {
    double sum = 0;
    for (size_t i = begin; i < end; i++)
        sum += f->y[f->rows[i]];
    memcpy(f->leaf_box + f->n_leaves * 2 * f->p, f->box, 2 * f->p * sizeof *f->box);
    f->leaf_value[f->n_leaves++] = sum / (double)(end - begin);
}

/* The best split of rows [begin, end) in feature d: the threshold that most reduces the sum of
 * squared errors, keeping min_leaf rows on each side. Returns the reduction (0: none). */
static double best_split(forest_t *f, size_t begin, size_t end, size_t d, double *threshold) {
    size_t m = end - begin, min_leaf = f->config->min_leaf;
    double total = 0, best = 0;
    for (size_t i = 0; i < m; i++) {
        uint32_t r = f->rows[begin + i];
        f->items[i] = (split_item_t){f->x[(size_t)r * f->p + d], f->y[r], r};
        total += f->items[i].y;
    }
    qsort(f->items, m, sizeof *f->items, by_x);
    double left = 0;
    for (size_t i = 0; i + 1 < m; i++) {
        left += f->items[i].y;
        size_t n_left = i + 1, n_right = m - n_left;
        if (f->items[i].x == f->items[i + 1].x || n_left < min_leaf || n_right < min_leaf) continue;
        /* SSE = Σy² − (Σ_left)²/n_left − (Σ_right)²/n_right; Σy² is the same for every split. */
        double right = total - left;
        double gain = left * left / (double)n_left + right * right / (double)n_right -
                      total * total / (double)m;
        if (gain > best) {
            best = gain;
            *threshold = 0.5 * (f->items[i].x + f->items[i + 1].x);
        }
    }
    return best;
}

static void grow(forest_t *f, size_t begin, size_t end, size_t depth) {
    size_t m = end - begin, p = f->p, best_d = p;
    double best_gain = 1e-12, threshold = 0;
    if (depth < f->config->max_depth && m >= 2 * f->config->min_leaf) {
        for (size_t d = 0; d < p; d++) {
            if (!(f->hi[d] > f->lo[d])) continue;
            double t = 0, gain = best_split(f, begin, end, d, &t);
            if (gain > best_gain) best_gain = gain, best_d = d, threshold = t;
        }
    }
    if (best_d == p) {
        add_leaf(f, begin, end);
        return;
    }
    size_t mid = begin;
    for (size_t i = begin; i < end; i++)
        if (f->x[(size_t)f->rows[i] * p + best_d] <= threshold) {
            uint32_t r = f->rows[i];
            f->rows[i] = f->rows[mid];
            f->rows[mid++] = r;
        }
    double saved = f->box[p + best_d];
    f->box[p + best_d] = threshold;
    grow(f, begin, mid, depth + 1);
    f->box[p + best_d] = saved;
    saved = f->box[best_d];
    f->box[best_d] = threshold;
    grow(f, mid, end, depth + 1);
    f->box[best_d] = saved;
}

/* The fraction of the extent of parameter k a leaf's box covers. */
static double extent(const forest_t *f, const double *box, size_t k) {
    return f->hi[k] > f->lo[k] ? (box[f->p + k] - box[k]) / (f->hi[k] - f->lo[k]) : 1.0;
}

/* Adds V_d / V of the tree just grown to fraction[d]; returns 0 when the tree is constant (it
 * then adds nothing and does not count). */
static int decompose(forest_t *f, double *fraction) {
    size_t p = f->p, L = f->n_leaves;
    double mean = 0, second = 0;
    for (size_t l = 0; l < L; l++) {
        double vol = 1, v = f->leaf_value[l];
        for (size_t k = 0; k < p; k++)
            vol *= extent(f, f->leaf_box + l * 2 * p, k);
        mean += vol * v;
        second += vol * v * v;
    }
    double variance = second - mean * mean;
    if (!(variance > 1e-12 * (mean * mean + 1e-300))) return 0;
    for (size_t d = 0; d < p; d++) {
        if (!(f->hi[d] > f->lo[d])) continue;
        for (size_t l = 0; l < L; l++) {
            const double *box = f->leaf_box + l * 2 * p;
            double w = f->leaf_value[l];
            for (size_t k = 0; k < p; k++)
                if (k != d) w *= extent(f, box, k);
            f->events[2 * l] = (event_t){box[d], w};
            f->events[2 * l + 1] = (event_t){box[p + d], -w};
        }
        qsort(f->events, 2 * L, sizeof *f->events, by_position);
        /* Between consecutive event positions the marginal is the running sum of the weights. */
        double marginal = 0, v_d = 0, width = f->hi[d] - f->lo[d];
        for (size_t e = 0; e + 1 < 2 * L; e++) {
            marginal += f->events[e].weight;
            double gap = f->events[e + 1].position - f->events[e].position;
            if (gap > 0) v_d += gap / width * (marginal - mean) * (marginal - mean);
        }
        double share = v_d / variance;
        fraction[d] += share < 0 ? 0 : share > 1 ? 1 : share;
    }
    return 1;
}

/* Copies the trials to use (all of them, or a random CV_IMPORTANCE_MAX_TRIALS) into x and y,
 * clamped to the box. */
static void take_trials(const double *x, const double *y, size_t n, size_t p, const double *lo,
                        const double *hi, size_t m, cv_rng_t *rng, uint32_t *scratch, double *to_x,
                        double *to_y) {
    for (size_t i = 0; i < n; i++)
        scratch[i] = (uint32_t)i;
    for (size_t i = 0; i < m && m < n; i++) { /* a partial Fisher-Yates shuffle */
        size_t j = i + cv_rng_below(rng, (uint32_t)(n - i));
        uint32_t t = scratch[i];
        scratch[i] = scratch[j];
        scratch[j] = t;
    }
    for (size_t i = 0; i < m; i++) {
        size_t r = scratch[i];
        for (size_t d = 0; d < p; d++) {
            double v = x[r * p + d];
            to_x[i * p + d] = v < lo[d] ? lo[d] : v > hi[d] ? hi[d] : v;
        }
        to_y[i] = y[r];
    }
}

int cv_importance_fanova(const double *x, const double *y, size_t n, size_t p, const double *lo,
                         const double *hi, const cv_importance_config_t *config, double *fraction,
                         double *importance, char *err) {
    if (n < 2) return cv_errf(err, CV_EINVAL, "importance needs at least 2 trials, got %zu", n);
    if (p < 1 || p > CV_IMPORTANCE_MAX_PARAMS)
        return cv_errf(err, CV_EINVAL, "importance takes 1 to %d parameters, got %zu",
                       CV_IMPORTANCE_MAX_PARAMS, p);
    if (config->n_trees < 1 || config->max_depth < 1 || config->min_leaf < 1)
        return cv_errf(err, CV_EINVAL, "importance needs at least one tree, depth and leaf row");
    for (size_t i = 0; i < n; i++)
        if (!isfinite(y[i]))
            return cv_errf(err, CV_EINVAL, "the objective of trial row %zu is not finite", i);
    for (size_t d = 0; d < p; d++)
        if (!(isfinite(lo[d]) && isfinite(hi[d]) && lo[d] <= hi[d]))
            return cv_errf(err, CV_EINVAL, "parameter %zu: bounds [%g, %g] are not an interval", d,
                           lo[d], hi[d]);
    size_t m = n < CV_IMPORTANCE_MAX_TRIALS ? n : CV_IMPORTANCE_MAX_TRIALS;
    forest_t f = {.n = m, .p = p, .lo = lo, .hi = hi, .config = config};
    double *sums = calloc(p, sizeof *sums), *tx = malloc(m * p * sizeof *tx),
           *ty = malloc(m * sizeof *ty);
    uint32_t *scratch = malloc(n * sizeof *scratch);
    f.rows = malloc(m * sizeof *f.rows);
    f.items = malloc(m * sizeof *f.items);
    f.box = malloc(2 * p * sizeof *f.box);
    f.leaf_box = malloc(m * 2 * p * sizeof *f.leaf_box);
    f.leaf_value = malloc(m * sizeof *f.leaf_value);
    f.events = malloc(2 * m * sizeof *f.events);
    int rc = 0;
    if (!sums || !tx || !ty || !scratch || !f.rows || !f.items || !f.box || !f.leaf_box ||
        !f.leaf_value || !f.events) {
        rc = cv_errf(err, CV_ENOMEM, "out of memory for the importance of %zu trials", m);
        goto out;
    }
    cv_rng_t rng;
    cv_rng_seed(&rng, config->seed);
    take_trials(x, y, n, p, lo, hi, m, &rng, scratch, tx, ty);
    f.x = tx;
    f.y = ty;
    size_t counted = 0;
    for (size_t t = 0; t < config->n_trees; t++) {
        for (size_t i = 0; i < m; i++)
            f.rows[i] = cv_rng_below(&rng, (uint32_t)m);
        memcpy(f.box, lo, p * sizeof *lo);
        memcpy(f.box + p, hi, p * sizeof *hi);
        f.n_leaves = 0;
        grow(&f, 0, m, 0);
        counted += (size_t)decompose(&f, sums);
    }
    double total = 0;
    for (size_t d = 0; d < p; d++) {
        sums[d] = counted ? sums[d] / (double)counted : 0;
        total += sums[d];
    }
    for (size_t d = 0; d < p; d++) {
        if (fraction) fraction[d] = sums[d];
        if (importance) importance[d] = total > 0 ? sums[d] / total : 0;
    }
out:
    free(f.events);
    free(f.leaf_value);
    free(f.leaf_box);
    free(f.box);
    free(f.items);
    free(f.rows);
    free(scratch);
    free(ty);
    free(tx);
    free(sums);
    return rc;
}
