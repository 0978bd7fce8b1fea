/* The Tree-structured Parzen Estimator (Bergstra, Bardenet, Bengio and Kégl, "Algorithms for
 * Hyper-Parameter Optimization", 2011): the trials so far are split into a good group (the best
 * gamma fraction) and a bad group, a density is fitted to each, l(x) to the good and g(x) to the
 * bad, and the next configuration is the candidate drawn from l that maximises l(x) / g(x).
 * Every parameter of a caviar space is always present, so the "tree" of conditional parameters
 * has a single level here.
 *
 * Observations. Without a pruner they are the COMPLETED trials' objectives. With one they come
 * from the highest level that has at least startup_trials of them: "final" (COMPLETED objectives),
 * then each rung from the last to the first (a trial's best objective at that decision epoch).
 * At a level, a PRUNED trial without a value there (stopped before reaching it) joins the bad
 * group: it was stopped for being bad. FAILED trials, and COMPLETED ones without a value at the
 * level (stopped by their own early stopping before the rung), are left out. While no level has
 * startup_trials values the sampler draws exactly as random search does (cv_space_sample).
 *
 * Constant liar. A RUNNING trial without a value at the level joins the bad group too, as if it
 * had the worst value seen, so parallel workers are not all sent to the same neighbourhood while
 * the first of them is still training there. Off with "constant_liar": false.
 *
 * The good group holds the best ceil(gamma · n) of the n trials with a value (at least one; ties
 * keep the earlier trial); the bad group the rest plus the pruned and running ones above. Only the
 * 1000 most recent trials with a value, and the 1000 most recent counted bad without one, are
 * used, so a proposal costs O(parameters × (2000 log 2000 + candidates × 2000)) at most: about
 * 8 ms for 1000 trials of ten parameters with 24 candidates, 16 ms for 3000 such trials (1000 of
 * them pruned), on one core of the 2-core reference machine.
 *
 * Each parameter gets its own pair of estimators, in its coordinate u (space.h: log10 x for log,
 * log10(1 − x) for one_minus_log, the exponent for power_of_two, x for linear), over the region's
 * interval [lo, hi] of u, widened by half a step on each side for int and power_of_two parameters
 * so that every reachable value owns an equal share of it. An estimator is a mixture of
 *   - one Gaussian kernel per observation, centred on its u clamped into [lo, hi] (an observation
 *     outside the region still pulls towards the region's nearest edge), truncated to [lo, hi],
 *     weight 1. Its bandwidth is the larger of the distances to its neighbours among the sorted
 *     centres (lo and hi stand in for the missing neighbours of the two ends), clipped to
 *     [W / min(100, m + 1), W] where W = hi − lo and m is the number of kernels: the rule of
 *     Bergstra's hyperopt and of Optuna's first TPE.
 *   - the prior: uniform over [lo, hi], weight prior_weight.
 * A categorical parameter's estimator gives value v the probability (c_v + prior_weight · w_v) /
 * (c + prior_weight), where c_v counts the group's trials with value v, c their sum over the
 * values still possible and w_v the region's weight of v normalised to sum 1 (so, in a region with
 * equal weights, c_v + prior_weight / k); values of weight zero are never proposed.
 *
 * A proposal draws `candidates` configurations from l, each parameter independently (the
 * estimators share no structure across parameters, as in the paper), rounds each value as
 * cv_space_sample does, scores it by the sum over parameters of log l(u) − log g(u) at the rounded
 * value, and returns the best (the first of equal scores). Every draw comes from the caller's RNG.
 */
#include "server/search.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "common/json.h"

#define TPE_WINDOW         1000 /* trials with a value, and trials counted bad, used at most */
#define TPE_MAX_CANDIDATES 1000 /* candidates setting at most: bounds a proposal's work */
#define TPE_DRAW_TRIES     64   /* rejection draws of a truncated kernel before clamping */

typedef struct {
    int64_t startup_trials; /* values needed at a level before TPE models it; ≥ 1 */
    double gamma;           /* fraction of the trials with a value that form the good group */
    int64_t candidates;     /* draws from l scored per proposal; 1..TPE_MAX_CANDIDATES */
    double prior_weight;    /* weight of the prior component of every estimator; > 0 */
    int constant_liar;      /* 1: running trials join the bad group */
} tpe_config_t;

/* ---- settings ---- */

static int tpe_create(void **config, const cJSON *settings, char *err) {
    static const char *const fields[] = {"startup_trials", "gamma", "candidates", "prior_weight",
                                         "constant_liar"};
    static const cv_json_range_t unit_open = {0, 1, 1, 1}, positive = {0, HUGE_VAL, 1, 0};
    tpe_config_t c = {10, 0.25, 24, 1.0, 1};
    const cJSON *item;
    int rc = 0;
    *config = NULL;
    if (settings != NULL) {
        if (!cJSON_IsObject(settings))
            return cv_errf(err, CV_EINVAL, "search.tpe: must be an object, got %s",
                           cv_json_type_name(settings));
        rc = cv_json_check_fields(settings, "search.tpe", fields, 5, err);
        if (rc == 0 && (item = cJSON_GetObjectItemCaseSensitive(settings, fields[0])))
            rc = cv_json_get_int(item, "search.tpe.startup_trials", 1, CV_JSON_INT_MAX,
                                 &c.startup_trials, err);
        if (rc == 0 && (item = cJSON_GetObjectItemCaseSensitive(settings, fields[1])))
            rc = cv_json_get_number(item, "search.tpe.gamma", unit_open, &c.gamma, err);
        if (rc == 0 && (item = cJSON_GetObjectItemCaseSensitive(settings, fields[2])))
            rc = cv_json_get_int(item, "search.tpe.candidates", 1, TPE_MAX_CANDIDATES,
                                 &c.candidates, err);
        if (rc == 0 && (item = cJSON_GetObjectItemCaseSensitive(settings, fields[3])))
            rc =
                cv_json_get_number(item, "search.tpe.prior_weight", positive, &c.prior_weight, err);
        if (rc == 0 && (item = cJSON_GetObjectItemCaseSensitive(settings, fields[4])))
            rc = cv_json_get_bool(item, "search.tpe.constant_liar", &c.constant_liar, err);
        if (rc != 0) return rc;
    }
    tpe_config_t *out = malloc(sizeof *out);
    if (out == NULL) return cv_errf(err, CV_ENOMEM, "search.tpe: out of memory");
    *out = c;
    *config = out;
    return 0;
}

static void tpe_destroy(void *config) {
    free(config);
}

static int tpe_describe(const void *config, cJSON *out) {
    const tpe_config_t *c = config;
    if (cJSON_AddNumberToObject(out, "startup_trials", (double)c->startup_trials) == NULL ||
        cJSON_AddNumberToObject(out, "gamma", c->gamma) == NULL ||
        cJSON_AddNumberToObject(out, "candidates", (double)c->candidates) == NULL ||
        cJSON_AddNumberToObject(out, "prior_weight", c->prior_weight) == NULL ||
        cJSON_AddBoolToObject(out, "constant_liar", c->constant_liar) == NULL)
        return CV_ENOMEM;
    return 0;
}

/* ---- observations ---- */

/* A trial with a value at the chosen level. */
typedef struct {
    double value;        /* lower is better */
    size_t number;       /* index in history->trials: ties keep the earlier trial */
    const cJSON *values; /* its configuration; borrowed */
} ranked_t;

/* The trial's value at level (rung index; n_rungs is "final"): 1 and *value, or 0 without one. */
static int level_value(const cv_search_trial_t *t, size_t level, size_t n_rungs, double *value) {
    if (t->state == CV_SEARCH_FAILED) return 0;
    if (level == n_rungs) {
        *value = t->objective;
        return t->state == CV_SEARCH_COMPLETED && isfinite(t->objective);
    }
    if (t->n_rung <= level || t->rung_value == NULL) return 0;
    *value = t->rung_value[level];
    return isfinite(*value);
}

/* 1 when a trial without a value at the level joins the bad group (see the file comment). */
static int counted_bad(const tpe_config_t *c, const cv_search_trial_t *t) {
    return t->state == CV_SEARCH_PRUNED || (c->constant_liar && t->state == CV_SEARCH_RUNNING);
}

/* The level to model: final, else the rungs from the last down; -1 when none has startup_trials
 * values yet. */
static long pick_level(const tpe_config_t *c, const cv_search_history_t *h) {
    double unused;
    for (size_t k = h->n_rungs + 1; k-- > 0;) {
        size_t count = 0;
        for (size_t i = 0; i < h->n_trials; i++)
            count += (size_t)level_value(&h->trials[i], k, h->n_rungs, &unused);
        if (count >= (uint64_t)c->startup_trials) return (long)k;
    }
    return -1;
}

static int compare_ranked(const void *a, const void *b) {
    const ranked_t *x = a, *y = b;
    if (x->value != y->value) return x->value < y->value ? -1 : 1;
    return x->number < y->number ? -1 : x->number > y->number;
}

/* ---- one-dimensional Parzen estimators ---- */

typedef struct {
    double lo, hi;       /* the interval of u covered; hi > lo */
    double prior_weight; /* weight of the uniform component */
    size_t n;            /* kernels */
    double *mu;          /* n centres, ascending, inside [lo, hi] */
    double *sigma;       /* n bandwidths */
    double *log_norm;    /* n: log of each kernel's normalising constant, σ · sqrt(2π) · its
                            Gaussian mass inside [lo, hi] */
} parzen_t;

static int compare_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* Standard normal distribution function, accurate in both tails. */
static double normal_cdf(double z) {
    return 0.5 * erfc(-z / sqrt(2.0));
}

/* Fits e to the n centres already in e->mu (any order, inside [lo, hi]). */
static void parzen_fit(parzen_t *e) {
    double w = e->hi - e->lo;
    double min_sigma = w / fmin(100.0, (double)e->n + 1.0);
    qsort(e->mu, e->n, sizeof *e->mu, compare_double);
    for (size_t i = 0; i < e->n; i++) {
        double left = e->mu[i] - (i > 0 ? e->mu[i - 1] : e->lo);
        double right = (i + 1 < e->n ? e->mu[i + 1] : e->hi) - e->mu[i];
        double s = fmin(fmax(fmax(left, right), min_sigma), w);
        e->sigma[i] = s;
        /* A centre inside [lo, hi] and s ≤ W keep at least Φ(1) − Φ(0) ≈ 0.34 of the mass in. */
        double mass = normal_cdf((e->hi - e->mu[i]) / s) - normal_cdf((e->lo - e->mu[i]) / s);
        e->log_norm[i] = log(s) + 0.91893853320467274178 /* log sqrt(2π) */ + log(mass);
    }
}

/* The log of the estimator's density at u (inside [lo, hi]): a log-sum-exp kept around the
 * largest term seen so far, so that no term overflows and the sum never underflows to zero. */
static double parzen_log_pdf(const parzen_t *e, double u) {
    double top = log(e->prior_weight / (e->hi - e->lo)), sum = 1.0;
    for (size_t i = 0; i < e->n; i++) {
        double z = (u - e->mu[i]) / e->sigma[i];
        double t = -0.5 * z * z - e->log_norm[i];
        if (t <= top) {
            if (t > top - 40) sum += exp(t - top); /* else below 1e-17 of the sum: nothing */
        } else {
            sum = sum * exp(top - t) + 1.0;
            top = t;
        }
    }
    return top + log(sum) - log((double)e->n + e->prior_weight);
}

/* Draws u from the estimator: a component by weight, then a point of it inside [lo, hi]. */
static double parzen_draw(const parzen_t *e, cv_rng_t *rng) {
    double r = cv_rng_uniform(rng) * ((double)e->n + e->prior_weight);
    if (e->n == 0 || r < e->prior_weight) return e->lo + (e->hi - e->lo) * cv_rng_uniform(rng);
    size_t i = (size_t)(r - e->prior_weight);
    if (i >= e->n) i = e->n - 1;
    double u = e->mu[i];
    for (int tries = 0; tries < TPE_DRAW_TRIES; tries++) {
        u = e->mu[i] + e->sigma[i] * cv_rng_normal(rng);
        if (u >= e->lo && u <= e->hi) return u;
    }
    return fmin(fmax(u, e->lo), e->hi);
}

/* ---- proposal ---- */

/* Scratch of one proposal: the two groups and room for the estimators and the candidates. */
typedef struct {
    const cJSON **good, **bad; /* configurations of each group; borrowed */
    size_t n_good, n_bad;
    double *good_table, *bad_table; /* each group's values, one row of n_params per trial (see
                                       read_table) */
    parzen_t l, g;
    double *cand;  /* candidates × n_params: a numeric value, or a categorical value's index */
    double *score; /* candidates: sum of log l − log g so far */
} work_t;

/* The interval of u the estimators of numeric parameter p cover (see the file comment). */
static void estimator_range(const cv_space_param_t *p, double *lo, double *hi) {
    cv_space_coord_range(p, lo, hi);
    if (p->scale == CV_SCALE_POWER_OF_TWO ||
        (p->type == CV_PARAM_INT && p->scale == CV_SCALE_LINEAR)) {
        *lo -= 0.5;
        *hi += 0.5;
    } else if (p->type == CV_PARAM_INT && p->scale == CV_SCALE_LOG) {
        *lo = log10(p->min - 0.5); /* min ≥ 1: an int on a log scale is positive */
        *hi = log10(p->max + 0.5);
    }
}

/* Reads n configurations into table, one row of region->n_params numbers each: a numeric
 * value's coordinate u, a categorical value's index, or NaN when the value is missing, of the
 * wrong kind or off the scale. Configurations are made in the space's order, so the member after
 * the previous parameter's is tried before a search by name. */
static void read_table(const cv_space_t *region, const cJSON **configs, size_t n, double *table) {
    for (size_t r = 0; r < n; r++) {
        const cJSON *next = configs[r] ? configs[r]->child : NULL;
        for (size_t i = 0; i < region->n_params; i++) {
            const cv_space_param_t *p = &region->params[i];
            const cJSON *v = next;
            if (v == NULL || v->string == NULL || strcmp(v->string, p->name) != 0)
                v = cJSON_GetObjectItemCaseSensitive(configs[r], p->name);
            next = v ? v->next : NULL;
            double u = NAN;
            if (p->type == CV_PARAM_CATEGORICAL) {
                int j = cv_space_value_index(p, v);
                if (j >= 0) u = j;
            } else if (cJSON_IsNumber(v)) {
                u = cv_space_to_coord(p, v->valuedouble);
                if (!isfinite(u)) u = NAN; /* e.g. log of 0 */
            }
            table[r * region->n_params + i] = u;
        }
    }
}

/* Puts column i of the n rows of table, clamped into [e->lo, e->hi], into e->mu and fits e. */
static void gather_centres(const double *table, size_t n, size_t i, size_t n_params, parzen_t *e) {
    e->n = 0;
    for (size_t r = 0; r < n; r++) {
        double u = table[r * n_params + i];
        if (!isnan(u)) e->mu[e->n++] = fmin(fmax(u, e->lo), e->hi);
    }
    parzen_fit(e);
}

/* Draws every candidate's value of numeric parameter i from l and adds its log l − log g. */
static void propose_numeric(const cv_space_param_t *p, size_t i, size_t n_params, size_t n_cand,
                            double prior_weight, work_t *w, cv_rng_t *rng) {
    double lo, hi;
    estimator_range(p, &lo, &hi);
    if (!(hi > lo)) { /* a region of one value: nothing to choose, nothing to score */
        for (size_t c = 0; c < n_cand; c++)
            w->cand[c * n_params + i] = cv_space_from_coord(p, lo);
        return;
    }
    w->l.lo = w->g.lo = lo;
    w->l.hi = w->g.hi = hi;
    w->l.prior_weight = w->g.prior_weight = prior_weight;
    gather_centres(w->good_table, w->n_good, i, n_params, &w->l);
    gather_centres(w->bad_table, w->n_bad, i, n_params, &w->g);
    for (size_t c = 0; c < n_cand; c++) {
        double x = cv_space_from_coord(p, parzen_draw(&w->l, rng));
        double u = fmin(fmax(cv_space_to_coord(p, x), lo), hi);
        w->cand[c * n_params + i] = x;
        w->score[c] += parzen_log_pdf(&w->l, u) - parzen_log_pdf(&w->g, u);
    }
}

/* The smoothed probabilities of categorical p's values in column i of the n rows of table (see
 * the file comment). */
static void categorical_probs(const cv_space_param_t *p, const double *table, size_t n, size_t i,
                              size_t n_params, double prior_weight, double *prob) {
    double count[CV_SPACE_MAX_VALUES] = {0}, total_weight = 0.0, total = prior_weight;
    for (size_t j = 0; j < p->n_values; j++)
        total_weight += p->weights[j] > 0 ? p->weights[j] : 0.0;
    for (size_t r = 0; r < n; r++) {
        double j = table[r * n_params + i];
        if (!isnan(j) && p->weights[(size_t)j] > 0) count[(size_t)j] += 1.0, total += 1.0;
    }
    for (size_t j = 0; j < p->n_values; j++)
        prob[j] = p->weights[j] > 0
                      ? (count[j] + prior_weight * p->weights[j] / total_weight) / total
                      : 0.0;
}

static void propose_categorical(const cv_space_param_t *p, size_t i, size_t n_params, size_t n_cand,
                                double prior_weight, work_t *w, cv_rng_t *rng) {
    double pl[CV_SPACE_MAX_VALUES], pg[CV_SPACE_MAX_VALUES];
    categorical_probs(p, w->good_table, w->n_good, i, n_params, prior_weight, pl);
    categorical_probs(p, w->bad_table, w->n_bad, i, n_params, prior_weight, pg);
    for (size_t c = 0; c < n_cand; c++) {
        double t = cv_rng_uniform(rng);
        size_t pick = 0;
        for (size_t j = 0; j < p->n_values; j++) {
            if (!(pl[j] > 0)) continue;
            pick = j; /* rounding may leave t above the last share: take the last possible */
            if (t < pl[j]) break;
            t -= pl[j];
        }
        w->cand[c * n_params + i] = (double)pick;
        w->score[c] += log(pl[pick]) - log(pg[pick]);
    }
}

/* Splits the trials at level into w's groups. ranked and w->good / w->bad have room for
 * TPE_WINDOW and 2 · TPE_WINDOW entries. */
static void split_groups(const tpe_config_t *c, const cv_search_history_t *h, size_t level,
                         ranked_t *ranked, work_t *w) {
    size_t n_ranked = 0, n_unranked = 0;
    w->n_bad = 0;
    for (size_t i = h->n_trials; i-- > 0;) { /* most recent first */
        const cv_search_trial_t *t = &h->trials[i];
        double value;
        if (level_value(t, level, h->n_rungs, &value)) {
            if (n_ranked < TPE_WINDOW) ranked[n_ranked++] = (ranked_t){value, i, t->values};
        } else if (counted_bad(c, t) && n_unranked < TPE_WINDOW) {
            w->bad[w->n_bad++] = t->values;
            n_unranked++;
        }
    }
    qsort(ranked, n_ranked, sizeof *ranked, compare_ranked);
    /* The slack keeps 0.25 · 12 = 3.0000000000000004 from becoming 4. */
    double want = ceil(c->gamma * (double)n_ranked - 1e-9);
    w->n_good = want < 1 ? 1 : want > (double)n_ranked ? n_ranked : (size_t)want;
    for (size_t i = 0; i < n_ranked; i++) {
        if (i < w->n_good)
            w->good[i] = ranked[i].values;
        else
            w->bad[w->n_bad++] = ranked[i].values;
    }
}

/* Builds the configuration of candidate best as cv_space_sample would. */
static int candidate_json(const cv_space_t *region, const double *cand, cJSON **values) {
    cJSON *obj = cJSON_CreateObject();
    if (obj == NULL) return CV_ENOMEM;
    for (size_t i = 0; i < region->n_params; i++) {
        const cv_space_param_t *p = &region->params[i];
        cJSON *item = p->type == CV_PARAM_CATEGORICAL ? cv_space_value_json(p, (size_t)cand[i])
                                                      : cJSON_CreateNumber(cand[i]);
        if (item == NULL || !cJSON_AddItemToObject(obj, p->name, item)) {
            cJSON_Delete(item);
            cJSON_Delete(obj);
            return CV_ENOMEM;
        }
    }
    *values = obj;
    return 0;
}

static int tpe_propose(const void *config, const cv_search_history_t *history, cv_rng_t *rng,
                       cJSON **values, char *err) {
    const tpe_config_t *c = config;
    const cv_space_t *region = history->region;
    size_t n_cand = (size_t)c->candidates, n_params = region->n_params;
    *values = NULL;
    long level = pick_level(c, history);
    if (level < 0) return cv_space_sample(region, rng, values, NULL, 0, err);

    /* The good group holds at most TPE_WINDOW configurations, the bad one twice that; each
     * estimator keeps three numbers per kernel. */
    int rc = CV_ENOMEM;
    work_t w = {0};
    ranked_t *ranked = malloc(TPE_WINDOW * sizeof *ranked);
    const cJSON **configs = malloc(3 * TPE_WINDOW * sizeof *configs);
    double *numbers = malloc((9 * TPE_WINDOW + n_cand * (n_params + 1)) * sizeof *numbers);
    double *table = malloc(3 * TPE_WINDOW * n_params * sizeof *table);
    if (ranked == NULL || configs == NULL || numbers == NULL || table == NULL) goto cleanup;
    w.good = configs;
    w.bad = configs + TPE_WINDOW;
    w.l.mu = numbers;
    w.l.sigma = numbers + TPE_WINDOW;
    w.l.log_norm = numbers + 2 * TPE_WINDOW;
    w.g.mu = numbers + 3 * TPE_WINDOW;
    w.g.sigma = numbers + 5 * TPE_WINDOW;
    w.g.log_norm = numbers + 7 * TPE_WINDOW;
    w.score = numbers + 9 * TPE_WINDOW;
    w.cand = w.score + n_cand;
    for (size_t k = 0; k < n_cand; k++)
        w.score[k] = 0.0;

    split_groups(c, history, (size_t)level, ranked, &w);
    w.good_table = table;
    w.bad_table = table + w.n_good * n_params;
    read_table(region, w.good, w.n_good, w.good_table);
    read_table(region, w.bad, w.n_bad, w.bad_table);
    for (size_t i = 0; i < n_params; i++) {
        const cv_space_param_t *p = &region->params[i];
        if (p->type == CV_PARAM_CATEGORICAL)
            propose_categorical(p, i, n_params, n_cand, c->prior_weight, &w, rng);
        else
            propose_numeric(p, i, n_params, n_cand, c->prior_weight, &w, rng);
    }
    size_t best = 0;
    for (size_t k = 1; k < n_cand; k++)
        if (w.score[k] > w.score[best]) best = k;
    rc = candidate_json(region, w.cand + best * n_params, values);
cleanup:
    free(table);
    free(numbers);
    free(configs);
    free(ranked);
    return rc == CV_ENOMEM ? cv_errf(err, rc, "search.tpe: proposing: out of memory") : rc;
}

const cv_sampler_ops_t cv_sampler_tpe = {
    .name = "tpe",
    .max_history = 2000, /* the window it reads: see the note on observations above */
    .create = tpe_create,
    .destroy = tpe_destroy,
    .propose = tpe_propose,
    .describe = tpe_describe,
};
