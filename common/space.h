/* The search space of a job, and the regions sampled from it.
 *
 * A space maps each searched hyperparameter to a numeric interval on a scale (linear, log,
 * one_minus_log, power_of_two) or to a list of categorical values. A region has the same type as
 * the space it came from: the same parameters in the same order, but numeric bounds that may be
 * narrowed and categorical values that carry weights. The space itself is the widest region
 * (original bounds, equal weights).
 *
 * The coordinator searches coarse to fine: it samples the first round of trials from the space,
 * then calls cv_space_refine with ALL finished trials so far to get the region of the next round,
 * and so on. Refinement always starts from the original space, never from the previous region,
 * so it cannot drift outside the bounds the user gave nor compound its own narrowing.
 *
 * Every random draw comes from the caller's cv_rng_t; the same seed gives the same samples.
 *
 * Numbers survive JSON text exactly. cJSON prints a double with 15 significant digits whenever
 * they read back within about an ulp, so a 17-digit value would come back from the store slightly
 * changed, and with it a region's bounds and a configuration's canonical string. Therefore every
 * float value, bound and weight this module produces is rounded to 15 significant digits (float
 * bounds of a space inward when parsed, refined bounds outward, samples to nearest), which cJSON
 * writes and reads back unchanged. */
#ifndef CV_SPACE_H
#define CV_SPACE_H

#include <stddef.h>

#include <cjson/cJSON.h>

#include "common/rng.h"

#define CV_SPACE_MAX_PARAMS 24   /* parameters of one space (the searchable table has 23) */
#define CV_SPACE_MAX_VALUES 16   /* values of one categorical parameter */
#define CV_SPACE_NAME_MAX   32   /* bytes of a parameter name or categorical string, with NUL */
#define CV_SPACE_CANON_MAX  2048 /* bytes of a canonical configuration string, with NUL */
#define CV_SPACE_INT_LIMIT  2147483647.0 /* |bound| of an int parameter at most */
#define CV_SPACE_MIN_WIDTH                                                                         \
    0.05 /* a refined interval keeps at least this fraction of the                                 \
            original width in the parameter's coordinate */

typedef enum { CV_PARAM_FLOAT, CV_PARAM_INT, CV_PARAM_CATEGORICAL } cv_param_type_t;

/* How a numeric parameter is sampled. The coordinate u is where sampling is uniform and where
 * refinement measures widths. */
typedef enum {
    CV_SCALE_LINEAR,        /* u = x */
    CV_SCALE_LOG,           /* u = log10 x; needs min > 0 */
    CV_SCALE_ONE_MINUS_LOG, /* u = log10(1 − x); needs 0 ≤ min < max < 1; for β near 1 */
    CV_SCALE_POWER_OF_TWO,  /* u = log2 x, x = 2^k with k integer; needs type int */
} cv_scale_t;

typedef struct {
    char name[CV_SPACE_NAME_MAX]; /* a name from the searchable table, e.g. "learning_rate" */
    cv_param_type_t type;
    cv_scale_t scale; /* numeric only */
    double min, max;  /* numeric: inclusive real bounds (never exponents); integral
                         for int; min < max in a space, min ≤ max in a region */
    int is_bool;      /* categorical: 1 when the values are JSON booleans */
    size_t n_values;  /* categorical: 1..CV_SPACE_MAX_VALUES */
    char values[CV_SPACE_MAX_VALUES][CV_SPACE_NAME_MAX]; /* categorical, distinct; booleans are
                                                            spelled "true" and "false" */
    double weights[CV_SPACE_MAX_VALUES]; /* categorical: relative probability of each value,
                                            finite, ≥ 0, with a positive sum */
} cv_space_param_t;

typedef struct {
    size_t n_params;                              /* 1..CV_SPACE_MAX_PARAMS */
    cv_space_param_t params[CV_SPACE_MAX_PARAMS]; /* in the order the job gave them; sampling
                                                     draws in this order */
} cv_space_t;

/* One finished trial, as refinement sees it. */
typedef struct {
    const cJSON *values; /* object param → value, as cv_space_sample made it; borrowed */
    double objective;    /* the job's objective, lower is better; a non-finite value marks a
                            failed or diverged trial, which refinement skips */
} cv_space_trial_t;

/* Parses the "space" object of a job spec into space (caller-owned; nothing is allocated).
 * Parameter names come from a fixed table; each is float, int or categorical as the table says.
 * Numeric parameters: {"type": "float"|"int", "scale": ..., "min": a, "max": b} with every field
 * required; categorical ones: {"type": "categorical", "values": [...]}, strings (booleans for
 * batch_norm), distinct. Errors name the field and the rule, starting with "space.", e.g.
 * "space.learning_rate.min: log scale needs min > 0, got 0". */
int cv_space_from_json(cv_space_t *space, const cJSON *obj, char *err);

/* The same for the space of a program caviar does not know (an external trainer, ask/tell): any
 * name [A-Za-z_][A-Za-z0-9_]* shorter than CV_SPACE_NAME_MAX, of the type the space gives it
 * (a categorical of JSON booleans is boolean). Also reads back a stored space of any job. */
int cv_space_from_json_open(cv_space_t *space, const cJSON *obj, char *err);

/* Returns the parameter called name, or NULL. The pointer borrows from space. */
const cv_space_param_t *cv_space_find(const cv_space_t *space, const char *name);

/* Draws one configuration from region: each numeric parameter uniformly in its coordinate u over
 * the region's bounds (int on linear: uniform integer in [min, max]; int on log: rounded to the
 * nearest integer; power_of_two: uniform exponent), then clamped into [min, max]; each
 * categorical parameter with probability proportional to its weight.
 * On success *values is a new object param → value that the caller frees with cJSON_Delete, and,
 * when canon is not NULL, canon (canon_size bytes) holds its canonical string. On failure
 * *values is NULL. */
int cv_space_sample(const cv_space_t *region, cv_rng_t *rng, cJSON **values, char *canon,
                    size_t canon_size, char *err);

/* Writes the canonical string of a configuration into buf (size bytes): compact JSON with the
 * keys sorted bytewise and numbers printed with %.17g, so two configurations are equal exactly
 * when their strings are. Values must be finite numbers, strings or booleans; duplicate keys and
 * a buffer too small are errors. values is borrowed. */
int cv_space_canonical(const cJSON *values, char *buf, size_t size, char *err);

/* Computes the region of the next round from the ORIGINAL space and the trials so far.
 * The best ceil(keep_fraction · n) trials with a finite objective are kept (at least one; ties in
 * objective keep the earlier trial). For each numeric parameter, in its coordinate u: the new
 * interval is [min u, max u] over the kept trials, widened on each side by margin × the original
 * width, clipped to the original bounds; if narrower than CV_SPACE_MIN_WIDTH × the original
 * width it is widened to that, centred on the kept trials and shifted to stay inside the original
 * bounds. Int bounds are then rounded outward to integers and power_of_two bounds to powers of
 * two. The region always contains every kept trial.
 * For each categorical parameter the weight of value v is (1 + c_v) / (k + b), where c_v counts
 * the kept trials with value v, k is the number of values and b the number of kept trials: the
 * posterior mean of the value's probability under a uniform Dirichlet prior. The weights sum to 1
 * and none is zero, so every value stays possible.
 * With no finished trial the region is the whole space. keep_fraction ∈ (0, 1], margin ∈ [0, 1].
 * Each trial's values must hold every parameter of space, inside its bounds. region is
 * caller-owned and may not alias space; trials are borrowed. */
int cv_space_refine(const cv_space_t *space, const cv_space_trial_t *trials, size_t n_trials,
                    double keep_fraction, double margin, cv_space_t *region, char *err);

/* Writes region as {"learning_rate": {"min": .., "max": ..}, "activation": {"weights":
 * {"relu": 0.7, "tanh": 0.3}}, "batch_norm": {"weights": {"true": 0.5, "false": 0.5}}}.
 * *out is a new object the caller frees with cJSON_Delete; NULL on failure. */
int cv_space_region_to_json(const cv_space_t *region, cJSON **out, char *err);

/* Reads a region written by cv_space_region_to_json back, against the space it belongs to:
 * every parameter of space must appear once, bounds must lie inside the space's (int bounds
 * integral, at least one power of two inside a power_of_two interval), and weights must name
 * every value once, be finite and ≥ 0, with a positive sum. Errors start with "region.".
 * region is caller-owned; obj is borrowed. */
int cv_space_region_from_json(const cv_space_t *space, const cJSON *obj, cv_space_t *region,
                              char *err);

/* Returns 1 when values (object param → value) has exactly the region's parameters and each lies
 * inside it: a number within [min, max] (integral for int, a power of two for power_of_two), or a
 * categorical value whose weight is positive. Returns 0 otherwise. */
int cv_space_region_contains(const cv_space_t *region, const cJSON *values);

/* The extreme values a parameter can take, used to check a job's fixed trial fields against each
 * edge of the space: 2 for a numeric parameter (its smallest and its largest reachable value),
 * n_values for a categorical one (each value). */
size_t cv_space_corner_count(const cv_space_param_t *param);

/* Returns corner i (< cv_space_corner_count) as a new JSON value the caller owns, or NULL when
 * allocation fails. label (CV_SPACE_NAME_MAX bytes) receives "min", "max" or "values[i]". */
cJSON *cv_space_corner(const cv_space_param_t *param, size_t i, char *label);

/* A numeric parameter's coordinate u (see cv_scale_t): log10 x for log, log10(1 − x) for
 * one_minus_log, the exponent log2 x for power_of_two, x itself for linear. Samplers that model a
 * parameter (TPE) work in this coordinate, where cv_space_sample is uniform. */
double cv_space_to_coord(const cv_space_param_t *param, double x);

/* The interval of u that the parameter's bounds span, low end first (one_minus_log reverses the
 * order of min and max); for power_of_two, the exponents of the powers of two inside. */
void cv_space_coord_range(const cv_space_param_t *param, double *lo, double *hi);

/* The value at coordinate u, rounded as cv_space_sample rounds (int to the nearest integer,
 * power_of_two to the nearest exponent, float to 15 significant digits) and clamped into
 * [min, max]: a value the parameter can take, that survives JSON text unchanged. */
double cv_space_from_coord(const cv_space_param_t *param, double u);

/* Index of a JSON value among a categorical parameter's values (a boolean for is_bool, else a
 * string), or -1 when it is none of them. */
int cv_space_value_index(const cv_space_param_t *param, const cJSON *value);

/* Categorical value i (< n_values) as a new JSON value the caller owns (a boolean for is_bool,
 * else a string), or NULL when allocation fails. */
cJSON *cv_space_value_json(const cv_space_param_t *param, size_t i);

/* Names of the enums as they appear in JSON. */
const char *cv_param_type_name(cv_param_type_t type);
const char *cv_scale_name(cv_scale_t scale);

#endif
