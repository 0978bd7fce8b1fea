/* Unit tests of common/space.c: the distribution of samples on each scale, reproducibility,
 * the canonical form, coarse-to-fine refinement (with bounds worked out by hand from the rule in
 * space.h), regions as JSON, and the rejections of the space parser.
 *
 * Statistical tests draw 10,000 samples from a fixed seed and allow each bin a deviation of four
 * binomial standard deviations, 4·sqrt(n·p·(1 − p)), computed below; a correct sampler fails
 * such a bound with probability under 1e-4 per bin, and the fixed seed makes the run repeatable. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "common/rng.h"
#include "common/space.h"
#include "testutil.h"

#define N_SAMPLES 10000

/* Every scale at once, reused by the sampling and refinement tests. */
#define MIXED_SPACE                                                                                \
    "{\"learning_rate\": {\"type\": \"float\", \"scale\": \"log\", \"min\": 1e-4, \"max\": 1}, "   \
    "\"beta1\": {\"type\": \"float\", \"scale\": \"one_minus_log\", \"min\": 0.9, "                \
    "\"max\": 0.999}, "                                                                            \
    "\"batch_size\": {\"type\": \"int\", \"scale\": \"power_of_two\", \"min\": 16, "               \
    "\"max\": 512}, "                                                                              \
    "\"hidden_units\": {\"type\": \"int\", \"scale\": \"log\", \"min\": 10, \"max\": 1000}, "      \
    "\"hidden_layers\": {\"type\": \"int\", \"scale\": \"linear\", \"min\": 1, \"max\": 3}, "      \
    "\"keep_prob\": {\"type\": \"float\", \"scale\": \"linear\", \"min\": 0.5, \"max\": 1}, "      \
    "\"activation\": {\"type\": \"categorical\", \"values\": [\"relu\", \"tanh\", \"sigmoid\"]}, " \
    "\"batch_norm\": {\"type\": \"categorical\", \"values\": [true, false]}}"

#define LOG_LR                                                                                     \
    "{\"learning_rate\": {\"type\": \"float\", \"scale\": \"log\", \"min\": 1e-4, \"max\": 1}}"

/* Parses a space from text, failing the test with the reason if it is refused. */
static void space_from(cv_space_t *space, const char *text) {
    char err[CV_ERRLEN] = "";
    cJSON *obj = cJSON_Parse(text);
    ck_assert_ptr_nonnull(obj);
    int rc = cv_space_from_json(space, obj, err);
    cJSON_Delete(obj);
    ck_assert_msg(rc == 0, "refused: %s", err);
}

/* Parses a space from text expecting refusal; returns the reason in err (CV_ERRLEN bytes). */
static int space_fails(const char *text, char *err) {
    cv_space_t space;
    cJSON *obj = cJSON_Parse(text);
    ck_assert_ptr_nonnull(obj);
    int rc = cv_space_from_json(&space, obj, err);
    cJSON_Delete(obj);
    return rc;
}

/* Draws one configuration and returns its value of param as a number. */
static double draw_number(const cv_space_t *region, cv_rng_t *rng, const char *param) {
    cJSON *values = NULL;
    char err[CV_ERRLEN] = "";
    ck_assert_msg(cv_space_sample(region, rng, &values, NULL, 0, err) == 0, "%s", err);
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(values, param);
    ck_assert(cJSON_IsNumber(v));
    double x = v->valuedouble;
    cJSON_Delete(values);
    return x;
}

/* Draws one configuration and returns its value of a string-valued param in out (32 bytes). */
static void draw_string(const cv_space_t *region, cv_rng_t *rng, const char *param, char *out) {
    cJSON *values = NULL;
    char err[CV_ERRLEN] = "";
    ck_assert_msg(cv_space_sample(region, rng, &values, NULL, 0, err) == 0, "%s", err);
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(values, param);
    ck_assert(cJSON_IsString(v));
    snprintf(out, 32, "%s", v->valuestring);
    cJSON_Delete(values);
}

static double four_sigma(double n, double p) {
    return 4.0 * sqrt(n * p * (1.0 - p));
}

static int is_power_of_two_in(double x, int klo, int khi) {
    for (int k = klo; k <= khi; k++)
        if (x == ldexp(1.0, k)) return 1;
    return 0;
}

/* ---- sampling on each scale ---- */

START_TEST(log_scale_puts_a_quarter_of_samples_in_each_decade) {
    cv_space_t space;
    cv_rng_t rng;
    int counts[4] = {0};
    space_from(&space, LOG_LR);
    cv_rng_seed(&rng, 11);
    for (int i = 0; i < N_SAMPLES; i++) {
        double x = draw_number(&space, &rng, "learning_rate");
        ck_assert(x >= 1e-4 && x <= 1.0);
        counts[x < 1e-3 ? 0 : x < 1e-2 ? 1 : x < 1e-1 ? 2 : 3]++;
    }
    double bound = four_sigma(N_SAMPLES, 0.25); /* 173.2 */
    for (int d = 0; d < 4; d++)
        ck_assert_msg(fabs(counts[d] - N_SAMPLES / 4.0) <= bound, "decade %d holds %d", d,
                      counts[d]);
}
END_TEST

START_TEST(one_minus_log_scale_splits_mass_evenly_between_decades_of_one_minus_x) {
    cv_space_t space;
    cv_rng_t rng;
    int low = 0; /* in [0.9, 0.99), i.e. 1 − x in (0.01, 0.1] */
    space_from(&space, "{\"beta1\": {\"type\": \"float\", \"scale\": \"one_minus_log\", "
                       "\"min\": 0.9, \"max\": 0.999}}");
    cv_rng_seed(&rng, 12);
    for (int i = 0; i < N_SAMPLES; i++) {
        double x = draw_number(&space, &rng, "beta1");
        ck_assert(x >= 0.9 && x <= 0.999);
        low += x < 0.99;
    }
    ck_assert_msg(fabs(low - N_SAMPLES / 2.0) <= four_sigma(N_SAMPLES, 0.5), "%d below 0.99", low);
}
END_TEST

START_TEST(power_of_two_scale_yields_only_powers_of_two_in_bounds) {
    cv_space_t space;
    cv_rng_t rng;
    space_from(&space, "{\"batch_size\": {\"type\": \"int\", \"scale\": \"power_of_two\", "
                       "\"min\": 16, \"max\": 512}}");
    cv_rng_seed(&rng, 13);
    for (int i = 0; i < N_SAMPLES; i++) {
        double x = draw_number(&space, &rng, "batch_size");
        ck_assert_msg(is_power_of_two_in(x, 4, 9), "drew %g", x);
    }
}
END_TEST

START_TEST(power_of_two_scale_draws_each_exponent_equally_often) {
    cv_space_t space;
    cv_rng_t rng;
    int counts[6] = {0}; /* exponents 4..9: 16..512 */
    space_from(&space, "{\"batch_size\": {\"type\": \"int\", \"scale\": \"power_of_two\", "
                       "\"min\": 16, \"max\": 512}}");
    cv_rng_seed(&rng, 14);
    for (int i = 0; i < N_SAMPLES; i++) {
        int e;
        frexp(draw_number(&space, &rng, "batch_size"), &e); /* 2^k = 0.5 · 2^(k+1) */
        ck_assert(e - 1 >= 4 && e - 1 <= 9);
        counts[e - 1 - 4]++;
    }
    for (int k = 0; k < 6; k++)
        ck_assert_msg(fabs(counts[k] - N_SAMPLES / 6.0) <= four_sigma(N_SAMPLES, 1.0 / 6.0),
                      "2^%d drawn %d times", k + 4, counts[k]);
}
END_TEST

START_TEST(power_of_two_bounds_need_not_be_powers) {
    cv_space_t space;
    cv_rng_t rng;
    int seen32 = 0, seen256 = 0;
    space_from(&space, "{\"batch_size\": {\"type\": \"int\", \"scale\": \"power_of_two\", "
                       "\"min\": 20, \"max\": 300}}");
    cv_rng_seed(&rng, 15);
    for (int i = 0; i < 1000; i++) {
        double x = draw_number(&space, &rng, "batch_size");
        ck_assert_msg(is_power_of_two_in(x, 5, 8), "drew %g", x);
        seen32 += x == 32;
        seen256 += x == 256;
    }
    ck_assert(seen32 > 0 && seen256 > 0);
}
END_TEST

START_TEST(int_linear_scale_stays_in_bounds_and_hits_both_endpoints) {
    cv_space_t space;
    cv_rng_t rng;
    int counts[4] = {0};
    space_from(&space, "{\"hidden_layers\": {\"type\": \"int\", \"scale\": \"linear\", "
                       "\"min\": 1, \"max\": 3}}");
    cv_rng_seed(&rng, 16);
    for (int i = 0; i < 1000; i++) {
        double x = draw_number(&space, &rng, "hidden_layers");
        ck_assert_msg(x == 1 || x == 2 || x == 3, "drew %g", x);
        counts[(int)x]++;
    }
    ck_assert_int_gt(counts[1], 0);
    ck_assert_int_gt(counts[3], 0);
}
END_TEST

START_TEST(int_log_scale_rounds_into_bounds_and_hits_both_endpoints) {
    cv_space_t space;
    cv_rng_t rng;
    int at_min = 0, at_max = 0;
    /* P(1) = log10(1.5) ≈ 0.18 and P(10) = log10(10 / 9.5) ≈ 0.022 per draw. */
    space_from(&space, "{\"epochs\": {\"type\": \"int\", \"scale\": \"log\", \"min\": 1, "
                       "\"max\": 10}}");
    cv_rng_seed(&rng, 17);
    for (int i = 0; i < N_SAMPLES; i++) {
        double x = draw_number(&space, &rng, "epochs");
        ck_assert_msg(x == floor(x) && x >= 1 && x <= 10, "drew %.17g", x);
        at_min += x == 1;
        at_max += x == 10;
    }
    ck_assert_int_gt(at_min, 0);
    ck_assert_int_gt(at_max, 0);
}
END_TEST

START_TEST(every_sample_lies_within_its_bounds) {
    cv_space_t space;
    cv_rng_t rng;
    char err[CV_ERRLEN] = "";
    space_from(&space, MIXED_SPACE);
    cv_rng_seed(&rng, 18);
    for (int i = 0; i < 2000; i++) {
        cJSON *v = NULL;
        ck_assert_int_eq(cv_space_sample(&space, &rng, &v, NULL, 0, err), 0);
#define NUM(name) cJSON_GetObjectItemCaseSensitive(v, name)->valuedouble
        ck_assert(NUM("learning_rate") >= 1e-4 && NUM("learning_rate") <= 1);
        ck_assert(NUM("beta1") >= 0.9 && NUM("beta1") <= 0.999);
        ck_assert(is_power_of_two_in(NUM("batch_size"), 4, 9));
        ck_assert(NUM("hidden_units") >= 10 && NUM("hidden_units") <= 1000);
        ck_assert(NUM("hidden_units") == floor(NUM("hidden_units")));
        ck_assert(NUM("keep_prob") >= 0.5 && NUM("keep_prob") <= 1);
#undef NUM
        const cJSON *bn = cJSON_GetObjectItemCaseSensitive(v, "batch_norm");
        ck_assert(cJSON_IsBool(bn));
        ck_assert_int_eq(cJSON_GetArraySize(v), 8);
        cJSON_Delete(v);
    }
}
END_TEST

START_TEST(categorical_draws_follow_the_weights) {
    cv_space_t space, region;
    cv_rng_t rng;
    char err[CV_ERRLEN] = "", value[32];
    int relu = 0;
    space_from(&space, "{\"activation\": {\"type\": \"categorical\", \"values\": [\"relu\", "
                       "\"tanh\"]}}");
    cJSON *w = cJSON_Parse("{\"activation\": {\"weights\": {\"relu\": 3, \"tanh\": 1}}}");
    ck_assert_int_eq(cv_space_region_from_json(&space, w, &region, err), 0);
    cJSON_Delete(w);
    cv_rng_seed(&rng, 19);
    for (int i = 0; i < N_SAMPLES; i++) {
        draw_string(&region, &rng, "activation", value);
        relu += strcmp(value, "relu") == 0;
    }
    ck_assert_msg(fabs(relu - 0.75 * N_SAMPLES) <= four_sigma(N_SAMPLES, 0.75), "relu %d", relu);
}
END_TEST

/* ---- reproducibility and the canonical form ---- */

/* Fills canon[i] with the canonical strings of n configurations drawn with seed. */
static void draw_sequence(const cv_space_t *space, uint64_t seed, char (*canon)[CV_SPACE_CANON_MAX],
                          int n) {
    cv_rng_t rng;
    char err[CV_ERRLEN] = "";
    cv_rng_seed(&rng, seed);
    for (int i = 0; i < n; i++) {
        cJSON *v = NULL;
        ck_assert_int_eq(cv_space_sample(space, &rng, &v, canon[i], CV_SPACE_CANON_MAX, err), 0);
        cJSON_Delete(v);
    }
}

START_TEST(same_seed_gives_the_same_sequence) {
    static char a[50][CV_SPACE_CANON_MAX], b[50][CV_SPACE_CANON_MAX];
    cv_space_t space;
    space_from(&space, MIXED_SPACE);
    draw_sequence(&space, 7, a, 50);
    draw_sequence(&space, 7, b, 50);
    for (int i = 0; i < 50; i++)
        ck_assert_str_eq(a[i], b[i]);
}
END_TEST

START_TEST(different_seeds_give_different_sequences) {
    static char a[50][CV_SPACE_CANON_MAX], b[50][CV_SPACE_CANON_MAX];
    cv_space_t space;
    int same = 0;
    space_from(&space, MIXED_SPACE);
    draw_sequence(&space, 7, a, 50);
    draw_sequence(&space, 8, b, 50);
    for (int i = 0; i < 50; i++)
        same += strcmp(a[i], b[i]) == 0;
    ck_assert_int_eq(same, 0); /* a float coordinate makes a repeat all but impossible */
}
END_TEST

START_TEST(canonical_form_sorts_keys_and_prints_17_digits) {
    char buf[CV_SPACE_CANON_MAX], err[CV_ERRLEN] = "";
    cJSON *v = cJSON_Parse("{\"lr\": 0.1, \"act\": \"re\\\"lu\", \"bn\": true, \"bs\": 64}");
    ck_assert_int_eq(cv_space_canonical(v, buf, sizeof buf, err), 0);
    ck_assert_str_eq(buf,
                     "{\"act\":\"re\\\"lu\",\"bn\":true,\"bs\":64,\"lr\":0.10000000000000001}");
    cJSON_Delete(v);
}
END_TEST

START_TEST(canonical_form_refuses_a_buffer_too_small) {
    char buf[8], err[CV_ERRLEN] = "";
    cJSON *v = cJSON_Parse("{\"learning_rate\": 0.1}");
    ck_assert_int_eq(cv_space_canonical(v, buf, sizeof buf, err), CV_ERANGE);
    cJSON_Delete(v);
}
END_TEST

START_TEST(sample_returns_the_canonical_form_of_its_values) {
    char canon[CV_SPACE_CANON_MAX], again[CV_SPACE_CANON_MAX], err[CV_ERRLEN] = "";
    cv_space_t space;
    cv_rng_t rng;
    cJSON *v = NULL;
    space_from(&space, MIXED_SPACE);
    cv_rng_seed(&rng, 20);
    ck_assert_int_eq(cv_space_sample(&space, &rng, &v, canon, sizeof canon, err), 0);
    ck_assert_int_eq(cv_space_canonical(v, again, sizeof again, err), 0);
    ck_assert_str_eq(canon, again);
    ck_assert_ptr_nonnull(strstr(canon, "\"activation\":\""));
    cJSON_Delete(v);
}
END_TEST

START_TEST(samples_survive_printing_as_json_text) {
    char canon[CV_SPACE_CANON_MAX], again[CV_SPACE_CANON_MAX], err[CV_ERRLEN] = "";
    cv_space_t space;
    cv_rng_t rng;
    space_from(&space, MIXED_SPACE);
    cv_rng_seed(&rng, 23);
    for (int i = 0; i < 1000; i++) {
        cJSON *v = NULL;
        ck_assert_int_eq(cv_space_sample(&space, &rng, &v, canon, sizeof canon, err), 0);
        char *text = cJSON_PrintUnformatted(v);
        cJSON *back = cJSON_Parse(text);
        ck_assert_int_eq(cv_space_canonical(back, again, sizeof again, err), 0);
        ck_assert_str_eq(canon, again);
        free(text);
        cJSON_Delete(back);
        cJSON_Delete(v);
    }
}
END_TEST

/* ---- refinement ---- */

/* Trials for the refinement tests: owned values and their objectives. */
typedef struct {
    cJSON *values[100];
    cv_space_trial_t trials[100];
    int n;
} trial_set_t;

static void add_trial(trial_set_t *set, const char *values, double objective) {
    cJSON *v = cJSON_Parse(values);
    ck_assert_ptr_nonnull(v);
    set->values[set->n] = v;
    set->trials[set->n] = (cv_space_trial_t){v, objective};
    set->n++;
}

static void free_trials(trial_set_t *set) {
    for (int i = 0; i < set->n; i++)
        cJSON_Delete(set->values[i]);
    set->n = 0;
}

static void refine_ok(const cv_space_t *space, const trial_set_t *set, double keep, double margin,
                      cv_space_t *region) {
    char err[CV_ERRLEN] = "";
    int rc = cv_space_refine(space, set->trials, (size_t)set->n, keep, margin, region, err);
    ck_assert_msg(rc == 0, "refused: %s", err);
}

/* An objective that prefers learning rates near 10^−2.5, keep_prob near 0.8 and tanh. */
static double objective_of(const cJSON *v) {
    double lr = cJSON_GetObjectItemCaseSensitive(v, "learning_rate")->valuedouble;
    double kp = cJSON_GetObjectItemCaseSensitive(v, "keep_prob")->valuedouble;
    const char *act = cJSON_GetObjectItemCaseSensitive(v, "activation")->valuestring;
    return fabs(log10(lr) + 2.5) + fabs(kp - 0.8) + (strcmp(act, "tanh") == 0 ? 0.0 : 0.5);
}

/* Samples 100 trials of the mixed space and scores them with objective_of. */
static void sampled_trials(const cv_space_t *space, trial_set_t *set) {
    cv_rng_t rng;
    char err[CV_ERRLEN] = "";
    cv_rng_seed(&rng, 21);
    set->n = 0;
    for (int i = 0; i < 100; i++) {
        cJSON *v = NULL;
        ck_assert_int_eq(cv_space_sample(space, &rng, &v, NULL, 0, err), 0);
        set->values[i] = v;
        set->trials[i] = (cv_space_trial_t){v, objective_of(v)};
        set->n++;
    }
}

/* 1 when trial i is among the best k: fewer than k trials beat it (ties go to the earlier). */
static int is_kept(const trial_set_t *set, int i, int k) {
    int better = 0;
    for (int j = 0; j < set->n; j++) {
        double a = set->trials[j].objective, b = set->trials[i].objective;
        better += a < b || (a == b && j < i);
    }
    return better < k;
}

START_TEST(refined_region_contains_every_kept_trial) {
    cv_space_t space, region;
    trial_set_t set;
    space_from(&space, MIXED_SPACE);
    sampled_trials(&space, &set);
    refine_ok(&space, &set, 0.25, 0.1, &region);
    int kept = 0;
    for (int i = 0; i < set.n; i++) {
        if (!is_kept(&set, i, 25)) continue;
        kept++;
        ck_assert_msg(cv_space_region_contains(&region, set.values[i]), "trial %d is outside", i);
    }
    ck_assert_int_eq(kept, 25);
    free_trials(&set);
}
END_TEST

START_TEST(refined_region_lies_inside_the_original_bounds) {
    cv_space_t space, region;
    trial_set_t set;
    space_from(&space, MIXED_SPACE);
    sampled_trials(&space, &set);
    refine_ok(&space, &set, 0.25, 0.5, &region);
    for (size_t i = 0; i < space.n_params; i++) {
        const cv_space_param_t *s = &space.params[i], *r = &region.params[i];
        ck_assert_str_eq(s->name, r->name);
        if (s->type == CV_PARAM_CATEGORICAL) continue;
        ck_assert_msg(r->min >= s->min && r->max <= s->max && r->min <= r->max,
                      "%s: [%g, %g] vs [%g, %g]", s->name, r->min, r->max, s->min, s->max);
    }
    free_trials(&set);
}
END_TEST

START_TEST(refinement_narrows_a_log_parameter_in_log10_space) {
    cv_space_t space, region;
    trial_set_t set;
    space_from(&space, MIXED_SPACE);
    sampled_trials(&space, &set);
    refine_ok(&space, &set, 0.25, 0.1, &region);
    const cv_space_param_t *lr = cv_space_find(&region, "learning_rate");
    ck_assert_double_lt(log10(lr->max) - log10(lr->min), log10(1.0) - log10(1e-4));
    free_trials(&set);
}
END_TEST

START_TEST(log_bounds_span_the_kept_trials_plus_the_margin) {
    cv_space_t space, region;
    trial_set_t set = {.n = 0};
    space_from(&space, LOG_LR);
    add_trial(&set, "{\"learning_rate\": 1e-3}", 0.1);
    add_trial(&set, "{\"learning_rate\": 1e-2}", 0.2);
    add_trial(&set, "{\"learning_rate\": 1e-1}", 0.9);
    add_trial(&set, "{\"learning_rate\": 1}", 0.8);
    /* Best 2 of 4: log10 in [−3, −2], widened by 0.1 × 4 decades on each side. */
    refine_ok(&space, &set, 0.5, 0.1, &region);
    ck_assert_double_eq_tol(region.params[0].min, pow(10.0, -3.4), 1e-12 * pow(10.0, -3.4));
    ck_assert_double_eq_tol(region.params[0].max, pow(10.0, -1.6), 1e-12 * pow(10.0, -1.6));
    free_trials(&set);
}
END_TEST

START_TEST(one_minus_log_bounds_are_widened_in_log10_of_one_minus_x) {
    cv_space_t space, region;
    trial_set_t set = {.n = 0};
    space_from(&space, "{\"beta1\": {\"type\": \"float\", \"scale\": \"one_minus_log\", "
                       "\"min\": 0.9, \"max\": 0.999}}");
    add_trial(&set, "{\"beta1\": 0.99}", 0.1);
    add_trial(&set, "{\"beta1\": 0.9}", 0.5);
    /* Best: 1 − x = 10^−2; the space spans 10^−3..10^−1 (2 decades), margin 0.2 decade. */
    refine_ok(&space, &set, 0.5, 0.1, &region);
    ck_assert_double_eq_tol(region.params[0].min, 1.0 - pow(10.0, -1.8), 1e-12);
    ck_assert_double_eq_tol(region.params[0].max, 1.0 - pow(10.0, -2.2), 1e-12);
    free_trials(&set);
}
END_TEST

START_TEST(collapsed_interval_keeps_the_minimum_width_centred) {
    cv_space_t space, region;
    trial_set_t set = {.n = 0};
    space_from(&space, LOG_LR);
    add_trial(&set, "{\"learning_rate\": 1e-2}", 0.1);
    add_trial(&set, "{\"learning_rate\": 1e-4}", 0.5);
    /* margin 0: a single point, widened to 5% of 4 decades = 0.2 decade around 10^−2. */
    refine_ok(&space, &set, 0.5, 0.0, &region);
    ck_assert_double_eq_tol(region.params[0].min, pow(10.0, -2.1), 1e-12 * pow(10.0, -2.1));
    ck_assert_double_eq_tol(region.params[0].max, pow(10.0, -1.9), 1e-12 * pow(10.0, -1.9));
    free_trials(&set);
}
END_TEST

START_TEST(collapsed_interval_at_a_bound_shifts_inside) {
    cv_space_t space, region;
    trial_set_t set = {.n = 0};
    space_from(&space, LOG_LR);
    add_trial(&set, "{\"learning_rate\": 1}", 0.1);
    add_trial(&set, "{\"learning_rate\": 1e-4}", 0.5);
    refine_ok(&space, &set, 0.5, 0.0, &region);
    ck_assert_double_eq_tol(region.params[0].min, pow(10.0, -0.2), 1e-12);
    ck_assert_double_eq(region.params[0].max, 1.0);
    free_trials(&set);
}
END_TEST

START_TEST(power_of_two_bounds_round_outward_to_powers) {
    cv_space_t space, region;
    trial_set_t set = {.n = 0};
    space_from(&space, "{\"batch_size\": {\"type\": \"int\", \"scale\": \"power_of_two\", "
                       "\"min\": 16, \"max\": 512}}");
    add_trial(&set, "{\"batch_size\": 64}", 0.1);
    add_trial(&set, "{\"batch_size\": 128}", 0.2);
    add_trial(&set, "{\"batch_size\": 16}", 0.5);
    add_trial(&set, "{\"batch_size\": 512}", 0.6);
    /* Exponents 6..7 of 4..9, widened by 0.5: [5.5, 7.5], rounded outward: 2^5..2^8. */
    refine_ok(&space, &set, 0.5, 0.1, &region);
    ck_assert_double_eq(region.params[0].min, 32);
    ck_assert_double_eq(region.params[0].max, 256);
    free_trials(&set);
}
END_TEST

START_TEST(int_linear_bounds_round_outward_to_integers) {
    cv_space_t space, region;
    trial_set_t set = {.n = 0};
    space_from(&space, "{\"hidden_layers\": {\"type\": \"int\", \"scale\": \"linear\", "
                       "\"min\": 1, \"max\": 10}}");
    add_trial(&set, "{\"hidden_layers\": 4}", 0.1);
    add_trial(&set, "{\"hidden_layers\": 5}", 0.2);
    add_trial(&set, "{\"hidden_layers\": 9}", 0.5);
    add_trial(&set, "{\"hidden_layers\": 1}", 0.6);
    /* [4, 5] widened by 0.1 × 9 = 0.9: [3.1, 5.9], rounded outward: [3, 6]. */
    refine_ok(&space, &set, 0.5, 0.1, &region);
    ck_assert_double_eq(region.params[0].min, 3);
    ck_assert_double_eq(region.params[0].max, 6);
    free_trials(&set);
}
END_TEST

START_TEST(int_log_bounds_round_outward_to_integers) {
    cv_space_t space, region;
    trial_set_t set = {.n = 0};
    space_from(&space, "{\"hidden_units\": {\"type\": \"int\", \"scale\": \"log\", "
                       "\"min\": 10, \"max\": 1000}}");
    add_trial(&set, "{\"hidden_units\": 100}", 0.1);
    add_trial(&set, "{\"hidden_units\": 10}", 0.5);
    /* log10 100 = 2 widened by 0.1 × 2: 10^1.8 = 63.1 and 10^2.2 = 158.5, rounded outward. */
    refine_ok(&space, &set, 0.5, 0.1, &region);
    ck_assert_double_eq(region.params[0].min, 63);
    ck_assert_double_eq(region.params[0].max, 159);
    free_trials(&set);
}
END_TEST

START_TEST(categorical_weights_favour_the_winners_by_laplace_smoothing) {
    cv_space_t space, region;
    trial_set_t set = {.n = 0};
    space_from(&space, "{\"activation\": {\"type\": \"categorical\", \"values\": [\"relu\", "
                       "\"tanh\", \"sigmoid\"]}}");
    add_trial(&set, "{\"activation\": \"relu\"}", 0.1);
    add_trial(&set, "{\"activation\": \"relu\"}", 0.2);
    add_trial(&set, "{\"activation\": \"tanh\"}", 0.3);
    add_trial(&set, "{\"activation\": \"relu\"}", 0.4);
    for (int i = 0; i < 4; i++)
        add_trial(&set, "{\"activation\": \"sigmoid\"}", 1.0 + i);
    /* Best 4: relu 3, tanh 1, sigmoid 0; (1 + count) / (3 values + 4 kept). */
    refine_ok(&space, &set, 0.5, 0.1, &region);
    ck_assert_double_eq_tol(region.params[0].weights[0], 4.0 / 7.0, 1e-15);
    ck_assert_double_eq_tol(region.params[0].weights[1], 2.0 / 7.0, 1e-15);
    ck_assert_double_eq_tol(region.params[0].weights[2], 1.0 / 7.0, 1e-15);
    free_trials(&set);
}
END_TEST

START_TEST(categorical_values_without_wins_stay_possible) {
    cv_space_t space, region;
    trial_set_t set = {.n = 0};
    cv_rng_t rng;
    char value[32];
    int sigmoid = 0;
    space_from(&space, "{\"activation\": {\"type\": \"categorical\", \"values\": [\"relu\", "
                       "\"tanh\", \"sigmoid\"]}}");
    for (int i = 0; i < 10; i++)
        add_trial(&set, "{\"activation\": \"relu\"}", 0.1 * i);
    add_trial(&set, "{\"activation\": \"sigmoid\"}", 5.0);
    refine_ok(&space, &set, 0.5, 0.1, &region);
    cv_rng_seed(&rng, 22);
    for (int i = 0; i < 2000; i++) {
        draw_string(&region, &rng, "activation", value);
        sigmoid += strcmp(value, "sigmoid") == 0;
    }
    ck_assert_int_gt(sigmoid, 0); /* weight 1/9: about 222 expected */
    cJSON *v = cJSON_Parse("{\"activation\": \"sigmoid\"}");
    ck_assert(cv_space_region_contains(&region, v));
    cJSON_Delete(v);
    free_trials(&set);
}
END_TEST

START_TEST(refinement_skips_failed_trials) {
    cv_space_t space, region;
    trial_set_t set = {.n = 0};
    space_from(&space, LOG_LR);
    add_trial(&set, "{\"learning_rate\": 1}", NAN);
    add_trial(&set, "{\"learning_rate\": 0.5}", -INFINITY);
    add_trial(&set, "{\"learning_rate\": 1e-3}", 0.1);
    add_trial(&set, "{\"learning_rate\": 1e-4}", 0.5);
    /* Best 1 of the 2 finished: 10^−3 ± 0.4 decade. */
    refine_ok(&space, &set, 0.5, 0.1, &region);
    ck_assert_double_eq_tol(region.params[0].max, pow(10.0, -2.6), 1e-12 * pow(10.0, -2.6));
    free_trials(&set);
}
END_TEST

START_TEST(refinement_without_finished_trials_keeps_the_whole_space) {
    cv_space_t space, region;
    trial_set_t set = {.n = 0};
    space_from(&space, LOG_LR);
    add_trial(&set, "{\"learning_rate\": 1e-3}", NAN);
    refine_ok(&space, &set, 0.25, 0.1, &region);
    ck_assert_double_eq(region.params[0].min, 1e-4);
    ck_assert_double_eq(region.params[0].max, 1);
    free_trials(&set);
}
END_TEST

START_TEST(refinement_refuses_a_trial_outside_the_space) {
    cv_space_t space, region;
    trial_set_t set = {.n = 0};
    char err[CV_ERRLEN] = "";
    space_from(&space, LOG_LR);
    add_trial(&set, "{\"learning_rate\": 2}", 0.1);
    ck_assert_int_eq(cv_space_refine(&space, set.trials, 1, 0.5, 0.1, &region, err), CV_EINVAL);
    ck_assert_ptr_nonnull(strstr(err, "trials[0].learning_rate"));
    free_trials(&set);
}
END_TEST

START_TEST(refinement_refuses_keep_fraction_zero) {
    cv_space_t space, region;
    char err[CV_ERRLEN] = "";
    space_from(&space, LOG_LR);
    ck_assert_int_eq(cv_space_refine(&space, NULL, 0, 0.0, 0.1, &region, err), CV_EINVAL);
    ck_assert_ptr_nonnull(strstr(err, "keep_fraction"));
}
END_TEST

/* ---- regions as JSON ---- */

START_TEST(region_survives_a_json_round_trip) {
    cv_space_t space, region, back;
    trial_set_t set;
    char err[CV_ERRLEN] = "";
    cJSON *json = NULL;
    space_from(&space, MIXED_SPACE);
    sampled_trials(&space, &set);
    refine_ok(&space, &set, 0.25, 0.1, &region);
    ck_assert_int_eq(cv_space_region_to_json(&region, &json, err), 0);
    char *text = cJSON_PrintUnformatted(json);
    cJSON_Delete(json);
    json = cJSON_Parse(text); /* through text, as the store keeps it */
    free(text);
    ck_assert_msg(cv_space_region_from_json(&space, json, &back, err) == 0, "%s", err);
    cJSON_Delete(json);
    for (size_t i = 0; i < region.n_params; i++) {
        const cv_space_param_t *a = &region.params[i], *b = &back.params[i];
        ck_assert_double_eq(a->min, b->min);
        ck_assert_double_eq(a->max, b->max);
        for (size_t j = 0; j < a->n_values; j++)
            ck_assert_double_eq(a->weights[j], b->weights[j]);
    }
    free_trials(&set);
}
END_TEST

START_TEST(region_of_a_space_with_17_digit_bounds_reads_back) {
    cv_space_t space, back;
    char err[CV_ERRLEN] = "";
    cJSON *json = NULL;
    space_from(&space, "{\"keep_prob\": {\"type\": \"float\", \"scale\": \"linear\", "
                       "\"min\": 0.16666666666666666, \"max\": 0.83333333333333337}}");
    ck_assert_double_ge(space.params[0].min, 0.16666666666666666);
    ck_assert_double_le(space.params[0].max, 0.83333333333333337);
    ck_assert_int_eq(cv_space_region_to_json(&space, &json, err), 0);
    char *text = cJSON_PrintUnformatted(json);
    cJSON_Delete(json);
    json = cJSON_Parse(text);
    free(text);
    ck_assert_msg(cv_space_region_from_json(&space, json, &back, err) == 0, "%s", err);
    ck_assert_double_eq(back.params[0].min, space.params[0].min);
    ck_assert_double_eq(back.params[0].max, space.params[0].max);
    cJSON_Delete(json);
}
END_TEST

START_TEST(region_json_has_the_documented_shape) {
    cv_space_t space;
    char err[CV_ERRLEN] = "";
    cJSON *json = NULL;
    space_from(&space, "{\"learning_rate\": {\"type\": \"float\", \"scale\": \"log\", \"min\": "
                       "0.5, \"max\": 1}, \"batch_norm\": {\"type\": \"categorical\", "
                       "\"values\": [true, false]}}");
    ck_assert_int_eq(cv_space_region_to_json(&space, &json, err), 0);
    char *text = cJSON_PrintUnformatted(json);
    ck_assert_str_eq(text, "{\"learning_rate\":{\"min\":0.5,\"max\":1},"
                           "\"batch_norm\":{\"weights\":{\"true\":0.5,\"false\":0.5}}}");
    free(text);
    cJSON_Delete(json);
}
END_TEST

START_TEST(region_from_json_refuses_bounds_outside_the_space) {
    cv_space_t space, region;
    char err[CV_ERRLEN] = "";
    space_from(&space, LOG_LR);
    cJSON *json = cJSON_Parse("{\"learning_rate\": {\"min\": 1e-5, \"max\": 0.1}}");
    ck_assert_int_eq(cv_space_region_from_json(&space, json, &region, err), CV_EINVAL);
    ck_assert_ptr_nonnull(strstr(err, "region.learning_rate"));
    cJSON_Delete(json);
}
END_TEST

START_TEST(region_from_json_refuses_a_missing_weight) {
    cv_space_t space, region;
    char err[CV_ERRLEN] = "";
    space_from(&space, "{\"activation\": {\"type\": \"categorical\", \"values\": [\"relu\", "
                       "\"tanh\"]}}");
    cJSON *json = cJSON_Parse("{\"activation\": {\"weights\": {\"relu\": 1}}}");
    ck_assert_int_eq(cv_space_region_from_json(&space, json, &region, err), CV_EINVAL);
    ck_assert_ptr_nonnull(strstr(err, "region.activation.weights.tanh"));
    cJSON_Delete(json);
}
END_TEST

/* Returns cv_space_region_contains(region, values parsed from text). */
static int contains(const cv_space_t *region, const char *text) {
    cJSON *v = cJSON_Parse(text);
    ck_assert_ptr_nonnull(v);
    int in = cv_space_region_contains(region, v);
    cJSON_Delete(v);
    return in;
}

START_TEST(region_contains_checks_bounds_kind_and_key_set) {
    cv_space_t space;
    space_from(&space, "{\"learning_rate\": {\"type\": \"float\", \"scale\": \"log\", \"min\": "
                       "1e-4, \"max\": 1}, \"batch_size\": {\"type\": \"int\", \"scale\": "
                       "\"power_of_two\", \"min\": 16, \"max\": 512}}");
    ck_assert(contains(&space, "{\"learning_rate\": 0.01, \"batch_size\": 64}"));
    ck_assert(!contains(&space, "{\"learning_rate\": 2, \"batch_size\": 64}"));
    ck_assert(!contains(&space, "{\"learning_rate\": 0.01, \"batch_size\": 48}"));
    ck_assert(!contains(&space, "{\"learning_rate\": 0.01}"));
    ck_assert(!contains(&space, "{\"learning_rate\": 0.01, \"batch_size\": 64, \"l2\": 0}"));
    ck_assert(!contains(&space, "{\"learning_rate\": \"0.01\", \"batch_size\": 64}"));
}
END_TEST

START_TEST(region_contains_excludes_a_value_of_weight_zero) {
    cv_space_t space, region;
    char err[CV_ERRLEN] = "";
    space_from(&space, "{\"activation\": {\"type\": \"categorical\", \"values\": [\"relu\", "
                       "\"tanh\"]}}");
    cJSON *json = cJSON_Parse("{\"activation\": {\"weights\": {\"relu\": 1, \"tanh\": 0}}}");
    ck_assert_int_eq(cv_space_region_from_json(&space, json, &region, err), 0);
    cJSON_Delete(json);
    ck_assert(contains(&region, "{\"activation\": \"relu\"}"));
    ck_assert(!contains(&region, "{\"activation\": \"tanh\"}"));
}
END_TEST

/* ---- coordinates ---- */

START_TEST(coordinates_map_values_to_each_scale_and_back_rounded_and_clamped) {
    cv_space_t space;
    double lo, hi;
    space_from(&space, MIXED_SPACE);
    const cv_space_param_t *lr = &space.params[0], *beta1 = &space.params[1];
    const cv_space_param_t *bs = &space.params[2], *units = &space.params[3];
    const cv_space_param_t *layers = &space.params[4], *keep = &space.params[5];
    ck_assert(cv_space_to_coord(lr, 1e-2) == log10(1e-2));
    ck_assert(cv_space_to_coord(beta1, 0.99) == log10(1.0 - 0.99));
    ck_assert(cv_space_to_coord(bs, 64) == 6.0);
    ck_assert(cv_space_to_coord(keep, 0.75) == 0.75);
    cv_space_coord_range(lr, &lo, &hi);
    ck_assert(lo == -4.0 && hi == 0.0);
    cv_space_coord_range(beta1, &lo, &hi); /* one_minus_log: max gives the low end */
    ck_assert(lo == log10(1.0 - 0.999) && hi == log10(1.0 - 0.9));
    cv_space_coord_range(bs, &lo, &hi);
    ck_assert(lo == 4.0 && hi == 9.0);
    /* Back: rounded as cv_space_sample rounds, clamped into [min, max]. */
    ck_assert(cv_space_from_coord(lr, log10(0.0123456789012345678)) == 0.0123456789012346);
    ck_assert(cv_space_from_coord(lr, 0.5) == 1.0);
    ck_assert(cv_space_from_coord(beta1, -2.0) == 0.99);
    ck_assert(cv_space_from_coord(bs, 6.4) == 64.0);
    ck_assert(cv_space_from_coord(bs, 3.2) == 16.0);
    ck_assert(cv_space_from_coord(bs, 9.6) == 512.0);
    ck_assert(cv_space_from_coord(units, log10(99.6)) == 100.0);
    ck_assert(cv_space_from_coord(units, log10(9.0)) == 10.0);
    ck_assert(cv_space_from_coord(layers, 2.5) == 3.0);
    ck_assert(cv_space_from_coord(layers, 3.4) == 3.0);
    ck_assert(cv_space_from_coord(keep, 0.1) == 0.5);
}
END_TEST

START_TEST(categorical_values_convert_to_and_from_json) {
    cv_space_t space;
    space_from(&space, MIXED_SPACE);
    const cv_space_param_t *act = &space.params[6], *bn = &space.params[7];
    cJSON *tanh_value = cv_space_value_json(act, 1), *false_value = cv_space_value_json(bn, 1);
    cJSON *bad = cJSON_CreateString("true");
    ck_assert_str_eq(tanh_value->valuestring, "tanh");
    ck_assert(cJSON_IsFalse(false_value));
    ck_assert_int_eq(cv_space_value_index(act, tanh_value), 1);
    ck_assert_int_eq(cv_space_value_index(bn, false_value), 1);
    ck_assert_int_eq(cv_space_value_index(bn, bad), -1); /* a string is no boolean */
    ck_assert_int_eq(cv_space_value_index(act, false_value), -1);
    cJSON_Delete(tanh_value);
    cJSON_Delete(false_value);
    cJSON_Delete(bad);
}
END_TEST

/* ---- allocation failures ---- */

START_TEST(every_failed_allocation_is_reported_without_a_leak) {
    cv_space_t space;
    space_from(&space, MIXED_SPACE);
    int sample_ok = 0, region_ok = 0;
    for (long k = 0; !(sample_ok && region_ok); k++) {
        char canon[CV_SPACE_CANON_MAX], err[CV_ERRLEN] = "";
        cv_rng_t rng;
        cJSON *values = NULL, *region = NULL;
        cv_rng_seed(&rng, 24);
        cv_test_cjson_fail_after(k);
        int rc = cv_space_sample(&space, &rng, &values, canon, sizeof canon, err);
        cv_test_cjson_fail_after(k);
        int rc2 = cv_space_region_to_json(&space, &region, err);
        cv_test_cjson_restore();
        ck_assert_msg(rc == 0 || rc == CV_ENOMEM, "sample after %ld allocations: %d", k, rc);
        ck_assert_msg(rc2 == 0 || rc2 == CV_ENOMEM, "region after %ld allocations: %d", k, rc2);
        ck_assert(rc == 0 ? values != NULL : values == NULL);
        ck_assert(rc2 == 0 ? region != NULL : region == NULL);
        sample_ok |= rc == 0;
        region_ok |= rc2 == 0;
        cJSON_Delete(values);
        cJSON_Delete(region);
    }
}
END_TEST

/* ---- parsing ---- */

START_TEST(space_keeps_the_given_order_and_bounds) {
    cv_space_t space;
    space_from(&space, MIXED_SPACE);
    ck_assert_uint_eq(space.n_params, 8);
    ck_assert_str_eq(space.params[0].name, "learning_rate");
    ck_assert_int_eq(space.params[1].scale, CV_SCALE_ONE_MINUS_LOG);
    ck_assert_double_eq(space.params[2].min, 16);
    ck_assert_int_eq(space.params[2].type, CV_PARAM_INT);
    ck_assert_uint_eq(space.params[6].n_values, 3);
    ck_assert_str_eq(space.params[7].values[0], "true");
    ck_assert_int_eq(space.params[7].is_bool, 1);
}
END_TEST

START_TEST(power_of_two_needs_type_int) {
    char err[CV_ERRLEN] = "";
    ck_assert_int_eq(space_fails("{\"l2\": {\"type\": \"float\", \"scale\": \"power_of_two\", "
                                 "\"min\": 1, \"max\": 8}}",
                                 err),
                     CV_EINVAL);
    ck_assert_str_eq(err, "space.l2.scale: power_of_two needs type int");
}
END_TEST

START_TEST(power_of_two_needs_a_power_inside_the_bounds) {
    char err[CV_ERRLEN] = "";
    ck_assert_int_eq(space_fails("{\"batch_size\": {\"type\": \"int\", \"scale\": "
                                 "\"power_of_two\", \"min\": 33, \"max\": 63}}",
                                 err),
                     CV_EINVAL);
    ck_assert_str_eq(err, "space.batch_size: no power of two lies in [33, 63]");
}
END_TEST

START_TEST(one_minus_log_needs_max_below_one) {
    char err[CV_ERRLEN] = "";
    ck_assert_int_eq(space_fails("{\"beta2\": {\"type\": \"float\", \"scale\": "
                                 "\"one_minus_log\", \"min\": 0.9, \"max\": 1}}",
                                 err),
                     CV_EINVAL);
    ck_assert_ptr_nonnull(strstr(err, "space.beta2.max: one_minus_log scale needs"));
}
END_TEST

START_TEST(int_parameter_needs_integer_bounds) {
    char err[CV_ERRLEN] = "";
    ck_assert_int_ne(space_fails("{\"hidden_units\": {\"type\": \"int\", \"scale\": \"log\", "
                                 "\"min\": 1.5, \"max\": 100}}",
                                 err),
                     0);
    ck_assert_ptr_nonnull(strstr(err, "space.hidden_units.min: must be an integer"));
}
END_TEST

START_TEST(parameter_type_must_match_the_table) {
    char err[CV_ERRLEN] = "";
    ck_assert_int_eq(space_fails("{\"learning_rate\": {\"type\": \"int\", \"scale\": "
                                 "\"linear\", \"min\": 1, \"max\": 2}}",
                                 err),
                     CV_EINVAL);
    ck_assert_str_eq(err, "space.learning_rate.type: learning_rate takes \"float\", got \"int\"");
}
END_TEST

START_TEST(categorical_values_must_be_distinct) {
    char err[CV_ERRLEN] = "";
    ck_assert_int_eq(space_fails("{\"activation\": {\"type\": \"categorical\", \"values\": "
                                 "[\"relu\", \"relu\"]}}",
                                 err),
                     CV_EINVAL);
    ck_assert_str_eq(err, "space.activation.values[1]: relu given twice");
}
END_TEST

START_TEST(batch_norm_values_must_be_booleans) {
    char err[CV_ERRLEN] = "";
    ck_assert_int_eq(space_fails("{\"batch_norm\": {\"type\": \"categorical\", \"values\": "
                                 "[true, \"false\"]}}",
                                 err),
                     CV_EINVAL);
    ck_assert_ptr_nonnull(strstr(err, "space.batch_norm.values[1]: must be a boolean"));
}
END_TEST

START_TEST(unknown_field_of_a_parameter_is_refused) {
    char err[CV_ERRLEN] = "";
    ck_assert_int_eq(space_fails("{\"l2\": {\"type\": \"float\", \"scale\": \"log\", "
                                 "\"min\": 1e-6, \"max\": 1e-2, \"step\": 2}}",
                                 err),
                     CV_EINVAL);
    ck_assert_ptr_nonnull(strstr(err, "space.l2"));
    ck_assert_ptr_nonnull(strstr(err, "step"));
}
END_TEST

static Suite *space_suite(void) {
    Suite *s = suite_create("space");
    TCase *sampling = tcase_create("sampling");
    tcase_add_test(sampling, log_scale_puts_a_quarter_of_samples_in_each_decade);
    tcase_add_test(sampling, one_minus_log_scale_splits_mass_evenly_between_decades_of_one_minus_x);
    tcase_add_test(sampling, power_of_two_scale_yields_only_powers_of_two_in_bounds);
    tcase_add_test(sampling, power_of_two_scale_draws_each_exponent_equally_often);
    tcase_add_test(sampling, power_of_two_bounds_need_not_be_powers);
    tcase_add_test(sampling, int_linear_scale_stays_in_bounds_and_hits_both_endpoints);
    tcase_add_test(sampling, int_log_scale_rounds_into_bounds_and_hits_both_endpoints);
    tcase_add_test(sampling, every_sample_lies_within_its_bounds);
    tcase_add_test(sampling, categorical_draws_follow_the_weights);
    tcase_add_test(sampling, same_seed_gives_the_same_sequence);
    tcase_add_test(sampling, different_seeds_give_different_sequences);
    tcase_add_test(sampling, canonical_form_sorts_keys_and_prints_17_digits);
    tcase_add_test(sampling, canonical_form_refuses_a_buffer_too_small);
    tcase_add_test(sampling, sample_returns_the_canonical_form_of_its_values);
    tcase_add_test(sampling, samples_survive_printing_as_json_text);
    suite_add_tcase(s, sampling);

    TCase *refine = tcase_create("refine");
    tcase_add_test(refine, refined_region_contains_every_kept_trial);
    tcase_add_test(refine, refined_region_lies_inside_the_original_bounds);
    tcase_add_test(refine, refinement_narrows_a_log_parameter_in_log10_space);
    tcase_add_test(refine, log_bounds_span_the_kept_trials_plus_the_margin);
    tcase_add_test(refine, one_minus_log_bounds_are_widened_in_log10_of_one_minus_x);
    tcase_add_test(refine, collapsed_interval_keeps_the_minimum_width_centred);
    tcase_add_test(refine, collapsed_interval_at_a_bound_shifts_inside);
    tcase_add_test(refine, power_of_two_bounds_round_outward_to_powers);
    tcase_add_test(refine, int_linear_bounds_round_outward_to_integers);
    tcase_add_test(refine, int_log_bounds_round_outward_to_integers);
    tcase_add_test(refine, categorical_weights_favour_the_winners_by_laplace_smoothing);
    tcase_add_test(refine, categorical_values_without_wins_stay_possible);
    tcase_add_test(refine, refinement_skips_failed_trials);
    tcase_add_test(refine, refinement_without_finished_trials_keeps_the_whole_space);
    tcase_add_test(refine, refinement_refuses_a_trial_outside_the_space);
    tcase_add_test(refine, refinement_refuses_keep_fraction_zero);
    suite_add_tcase(s, refine);

    TCase *region = tcase_create("region");
    tcase_add_test(region, region_survives_a_json_round_trip);
    tcase_add_test(region, region_of_a_space_with_17_digit_bounds_reads_back);
    tcase_add_test(region, region_json_has_the_documented_shape);
    tcase_add_test(region, region_from_json_refuses_bounds_outside_the_space);
    tcase_add_test(region, region_from_json_refuses_a_missing_weight);
    tcase_add_test(region, region_contains_checks_bounds_kind_and_key_set);
    tcase_add_test(region, region_contains_excludes_a_value_of_weight_zero);
    suite_add_tcase(s, region);

    TCase *coords = tcase_create("coordinates");
    tcase_add_test(coords, coordinates_map_values_to_each_scale_and_back_rounded_and_clamped);
    tcase_add_test(coords, categorical_values_convert_to_and_from_json);
    suite_add_tcase(s, coords);

    TCase *faults = tcase_create("faults");
    tcase_add_test(faults, every_failed_allocation_is_reported_without_a_leak);
    suite_add_tcase(s, faults);

    TCase *parse = tcase_create("parse");
    tcase_add_test(parse, space_keeps_the_given_order_and_bounds);
    tcase_add_test(parse, power_of_two_needs_type_int);
    tcase_add_test(parse, power_of_two_needs_a_power_inside_the_bounds);
    tcase_add_test(parse, one_minus_log_needs_max_below_one);
    tcase_add_test(parse, int_parameter_needs_integer_bounds);
    tcase_add_test(parse, parameter_type_must_match_the_table);
    tcase_add_test(parse, categorical_values_must_be_distinct);
    tcase_add_test(parse, batch_norm_values_must_be_booleans);
    tcase_add_test(parse, unknown_field_of_a_parameter_is_refused);
    suite_add_tcase(s, parse);
    return s;
}

CV_TEST_MAIN(space_suite)
