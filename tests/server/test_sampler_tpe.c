/* Unit tests of server/sampler_tpe.c: the settings and their messages, the random start, that
 * every proposal lies inside the region and reads back exactly, the constant liar, pruned trials
 * counted as bad, and the sampler's purpose: on functions with a known minimum, TPE puts at least
 * twice as many late samples near the minimum as random search does, both measured by the same
 * harness.
 *
 * Comparisons between two samplers or two histories use many seeds and require the difference to
 * exceed four standard deviations of the difference of two binomial proportions; the seeds are
 * fixed, so a run is repeatable. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "common/rng.h"
#include "server/search.h"
#include "common/space.h"
#include "testutil.h"

#define MAX_TRIALS 1300

#define LOG_LR                                                                                     \
    "{\"learning_rate\": {\"type\": \"float\", \"scale\": \"log\", \"min\": 1e-5, \"max\": 1}}"

#define LR_AND_KEEP                                                                                \
    "{\"learning_rate\": {\"type\": \"float\", \"scale\": \"log\", \"min\": 1e-5, \"max\": 1}, "   \
    "\"keep_prob\": {\"type\": \"float\", \"scale\": \"linear\", \"min\": 0.2, \"max\": 1}}"

/* Every scale and type at once. */
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

/* A job's history built by hand: the trials own their configurations. */
typedef struct {
    cv_space_t space, region;
    cv_search_trial_t trials[MAX_TRIALS];
    cJSON *values[MAX_TRIALS];
    double rungs[MAX_TRIALS][2];
    int rung_epochs[2];
    size_t n, n_rungs;
} hist_t;

static void hist_init(hist_t *h, const char *space_text) {
    char err[CV_ERRLEN] = "";
    memset(h, 0, sizeof *h);
    cJSON *obj = cJSON_Parse(space_text);
    ck_assert_ptr_nonnull(obj);
    int rc = cv_space_from_json(&h->space, obj, err);
    cJSON_Delete(obj);
    ck_assert_msg(rc == 0, "refused: %s", err);
    h->region = h->space;
}

/* Adds a trial; takes values. n_rung rung values come from rungs (NULL when n_rung is 0). */
static void hist_add(hist_t *h, cJSON *values, cv_search_state_t state, double objective,
                     size_t n_rung, const double *rungs) {
    ck_assert_uint_lt(h->n, MAX_TRIALS);
    ck_assert_ptr_nonnull(values);
    size_t i = h->n++;
    h->values[i] = values;
    for (size_t k = 0; k < n_rung; k++)
        h->rungs[i][k] = rungs[k];
    h->trials[i] =
        (cv_search_trial_t){values, state, objective, n_rung ? h->rungs[i] : NULL, n_rung};
}

/* A configuration of the one-parameter space LOG_LR: learning_rate 10^u. */
static cJSON *lr_values(double u) {
    cJSON *v = cJSON_CreateObject();
    ck_assert_ptr_nonnull(cJSON_AddNumberToObject(v, "learning_rate", pow(10.0, u)));
    return v;
}

/* Adds a trial of LOG_LR at learning_rate 10^u, without rung values. */
static void hist_add_lr(hist_t *h, double u, cv_search_state_t state, double objective) {
    hist_add(h, lr_values(u), state, objective, 0, NULL);
}

static cv_search_history_t hist_view(const hist_t *h) {
    return (cv_search_history_t){&h->space, &h->region,     h->trials,
                                 h->n,      h->rung_epochs, h->n_rungs};
}

static void hist_finish(hist_t *h) {
    for (size_t i = 0; i < h->n; i++)
        cJSON_Delete(h->values[i]);
    h->n = 0;
}

/* Makes a TPE config from settings text (NULL: defaults), failing the test if refused. */
static void *tpe_config(const char *text) {
    char err[CV_ERRLEN] = "";
    void *config = NULL;
    cJSON *settings = text ? cJSON_Parse(text) : NULL;
    ck_assert(text == NULL || settings != NULL);
    int rc = cv_sampler_tpe.create(&config, settings, err);
    cJSON_Delete(settings);
    ck_assert_msg(rc == 0, "refused: %s", err);
    return config;
}

/* One proposal; the caller frees it. */
static cJSON *propose(const cv_sampler_ops_t *ops, const void *config, const hist_t *h,
                      cv_rng_t *rng) {
    char err[CV_ERRLEN] = "";
    cJSON *values = NULL;
    cv_search_history_t view = hist_view(h);
    ck_assert_msg(ops->propose(config, &view, rng, &values, err) == 0, "%s", err);
    ck_assert_ptr_nonnull(values);
    return values;
}

/* The coordinate log10 learning_rate of a proposal from seed; frees it. */
static double propose_lr_coord(const void *config, const hist_t *h, uint64_t seed) {
    cv_rng_t rng;
    cv_rng_seed(&rng, seed);
    cJSON *values = propose(&cv_sampler_tpe, config, h, &rng);
    double u = log10(cJSON_GetObjectItemCaseSensitive(values, "learning_rate")->valuedouble);
    cJSON_Delete(values);
    return u;
}

static void canonical(const cJSON *values, char *buf) {
    char err[CV_ERRLEN] = "";
    ck_assert_msg(cv_space_canonical(values, buf, CV_SPACE_CANON_MAX, err) == 0, "%s", err);
}

/* Four standard deviations of the difference of two proportions, each from n draws. */
static double four_sigma_diff(double p1, double p2, double n) {
    return 4.0 * sqrt((p1 * (1 - p1) + p2 * (1 - p2)) / n);
}

/* ---- settings ---- */

static void expect_refused(const char *text, const char *message) {
    char err[CV_ERRLEN] = "";
    void *config = (void *)1;
    cJSON *settings = cJSON_Parse(text);
    ck_assert_ptr_nonnull(settings);
    int rc = cv_sampler_tpe.create(&config, settings, err);
    cJSON_Delete(settings);
    ck_assert_int_lt(rc, 0);
    ck_assert_ptr_null(config);
    ck_assert_str_eq(err, message);
}

static void expect_described(const char *settings, const char *described) {
    void *config = tpe_config(settings);
    cJSON *out = cJSON_CreateObject();
    ck_assert_int_eq(cv_sampler_tpe.describe(config, out), 0);
    char *text = cJSON_PrintUnformatted(out);
    ck_assert_str_eq(text, described);
    free(text);
    cJSON_Delete(out);
    cv_sampler_tpe.destroy(config);
}

START_TEST(tpe_is_registered_under_its_name) {
    ck_assert_ptr_eq(cv_search_sampler("tpe"), &cv_sampler_tpe);
    ck_assert_str_eq(cv_sampler_tpe.name, "tpe");
}
END_TEST

START_TEST(defaults_are_described_in_full) {
    const char *defaults = "{\"startup_trials\":10,\"gamma\":0.25,\"candidates\":24,"
                           "\"prior_weight\":1,\"constant_liar\":true}";
    expect_described(NULL, defaults);
    expect_described("{}", defaults);
}
END_TEST

START_TEST(given_settings_are_described_as_given) {
    expect_described("{\"startup_trials\": 3, \"gamma\": 0.1, \"candidates\": 1000, "
                     "\"prior_weight\": 0.5, \"constant_liar\": false}",
                     "{\"startup_trials\":3,\"gamma\":0.1,\"candidates\":1000,"
                     "\"prior_weight\":0.5,\"constant_liar\":false}");
    expect_described("{\"gamma\": 0.5}", "{\"startup_trials\":10,\"gamma\":0.5,\"candidates\":24,"
                                         "\"prior_weight\":1,\"constant_liar\":true}");
}
END_TEST

START_TEST(bad_settings_are_refused_naming_the_field) {
    expect_refused("{\"gamma\": 2}", "search.tpe.gamma: must be in (0, 1), got 2");
    expect_refused("{\"gamma\": 0}", "search.tpe.gamma: must be in (0, 1), got 0");
    expect_refused("{\"gamma\": 1}", "search.tpe.gamma: must be in (0, 1), got 1");
    expect_refused("{\"gamma\": \"a\"}", "search.tpe.gamma: must be a number, got string");
    expect_refused("{\"startup_trials\": 0}",
                   "search.tpe.startup_trials: must be an integer >= 1, got 0");
    expect_refused("{\"startup_trials\": 2.5}",
                   "search.tpe.startup_trials: must be an integer, got 2.5");
    expect_refused("{\"candidates\": 0}",
                   "search.tpe.candidates: must be an integer in [1, 1000], got 0");
    expect_refused("{\"candidates\": 1001}",
                   "search.tpe.candidates: must be an integer in [1, 1000], got 1001");
    expect_refused("{\"prior_weight\": 0}", "search.tpe.prior_weight: must be > 0, got 0");
    expect_refused("{\"prior_weight\": -1}", "search.tpe.prior_weight: must be > 0, got -1");
    expect_refused("{\"constant_liar\": 1}",
                   "search.tpe.constant_liar: must be a boolean, got number");
    expect_refused("{\"gama\": 0.3}",
                   "search.tpe: unknown field \"gama\" (did you mean \"gamma\"?)");
    expect_refused("[]", "search.tpe: must be an object, got array");
}
END_TEST

/* ---- the random start ---- */

/* The proposals of seeds 0..19 equal cv_space_sample's from the same seeds: returns how many. */
static int count_equal_to_random(const void *config, const hist_t *h) {
    int equal = 0;
    for (uint64_t seed = 0; seed < 20; seed++) {
        char a[CV_SPACE_CANON_MAX], b[CV_SPACE_CANON_MAX], err[CV_ERRLEN] = "";
        cv_rng_t rng;
        cJSON *mine, *random = NULL;
        cv_rng_seed(&rng, seed);
        mine = propose(&cv_sampler_tpe, config, h, &rng);
        cv_rng_seed(&rng, seed);
        ck_assert_msg(cv_space_sample(&h->region, &rng, &random, NULL, 0, err) == 0, "%s", err);
        canonical(mine, a);
        canonical(random, b);
        equal += strcmp(a, b) == 0;
        cJSON_Delete(mine);
        cJSON_Delete(random);
    }
    return equal;
}

START_TEST(before_startup_trials_results_proposals_are_random_samples_of_the_region) {
    hist_t h;
    void *config = tpe_config("{\"startup_trials\": 5}");
    hist_init(&h, LOG_LR);
    h.region.params[0].min = 1e-3; /* a narrowed region: the draws must come from it */
    h.region.params[0].max = 1e-1;
    ck_assert_int_eq(count_equal_to_random(config, &h), 20); /* no trial at all */
    for (int i = 0; i < 4; i++)
        hist_add_lr(&h, -4.0 + 0.5 * i, CV_SEARCH_COMPLETED, i);
    /* Trials without an objective do not count towards the five. */
    hist_add_lr(&h, -2.0, CV_SEARCH_RUNNING, NAN);
    hist_add_lr(&h, -1.0, CV_SEARCH_PRUNED, NAN);
    hist_add_lr(&h, -0.5, CV_SEARCH_FAILED, NAN);
    hist_add_lr(&h, -0.2, CV_SEARCH_COMPLETED, NAN);
    ck_assert_int_eq(count_equal_to_random(config, &h), 20);
    /* The fifth result starts the model: proposals now differ from the random ones. */
    hist_add_lr(&h, -3.0, CV_SEARCH_COMPLETED, 0.5);
    ck_assert_int_lt(count_equal_to_random(config, &h), 20);
    hist_finish(&h);
    cv_sampler_tpe.destroy(config);
}
END_TEST

START_TEST(with_rungs_and_no_level_full_enough_proposals_are_random) {
    hist_t h;
    void *config = tpe_config("{\"startup_trials\": 4}");
    hist_init(&h, LOG_LR);
    h.n_rungs = 2, h.rung_epochs[0] = 2, h.rung_epochs[1] = 4;
    /* Three values at each level: final, rung 1 and rung 0, short of four everywhere. */
    const double r[2] = {1.0, 0.5};
    for (int i = 0; i < 3; i++) {
        hist_add(&h, lr_values(-4.0 + i), CV_SEARCH_COMPLETED, 0.4, 2, r);
    }
    ck_assert_int_eq(count_equal_to_random(config, &h), 20);
    /* A fourth trial that reached rung 0 only makes rung 0 the level: the model starts. */
    hist_add(&h, lr_values(-3.0), CV_SEARCH_RUNNING, NAN, 1, r);
    ck_assert_int_lt(count_equal_to_random(config, &h), 20);
    hist_finish(&h);
    cv_sampler_tpe.destroy(config);
}
END_TEST

/* ---- proposals inside the region ---- */

static int is_power_of_two(double x) {
    int e;
    return x > 0 && frexp(x, &e) == 0.5;
}

/* Checks a proposal: inside the region, integers and powers of two where due, the space's key
 * order, and an exact round trip through JSON text. */
static void check_proposal(const hist_t *h, const cJSON *values) {
    char a[CV_SPACE_CANON_MAX], b[CV_SPACE_CANON_MAX];
    ck_assert_msg(cv_space_region_contains(&h->region, values), "outside the region");
    size_t i = 0;
    for (const cJSON *c = values->child; c != NULL; c = c->next, i++) {
        const cv_space_param_t *p = &h->region.params[i];
        ck_assert_str_eq(c->string, p->name);
        if (p->type == CV_PARAM_INT) ck_assert(c->valuedouble == floor(c->valuedouble));
        if (p->scale == CV_SCALE_POWER_OF_TWO && p->type == CV_PARAM_INT)
            ck_assert(is_power_of_two(c->valuedouble));
    }
    ck_assert_uint_eq(i, h->region.n_params);
    char *text = cJSON_PrintUnformatted(values);
    cJSON *back = cJSON_Parse(text);
    canonical(values, a);
    canonical(back, b);
    ck_assert_str_eq(a, b);
    cJSON_Delete(back);
    free(text);
}

/* A made-up objective over the mixed space, lowest near learning_rate 1e-2, keep_prob 0.8. */
static double mixed_objective(const cJSON *v) {
    double lr = cJSON_GetObjectItemCaseSensitive(v, "learning_rate")->valuedouble;
    double keep = cJSON_GetObjectItemCaseSensitive(v, "keep_prob")->valuedouble;
    double bs = cJSON_GetObjectItemCaseSensitive(v, "batch_size")->valuedouble;
    return pow(log10(lr) + 2, 2) + pow(keep - 0.8, 2) + fabs(log2(bs) - 6);
}

START_TEST(proposals_lie_inside_the_region_and_read_back_exactly) {
    hist_t h;
    cv_rng_t rng;
    char err[CV_ERRLEN] = "";
    void *config = tpe_config(NULL);
    hist_init(&h, MIXED_SPACE);
    /* 40 trials from the whole space: most lie outside the region below, and still count. */
    cv_rng_seed(&rng, 7);
    for (int i = 0; i < 40; i++) {
        cJSON *v = NULL;
        ck_assert_msg(cv_space_sample(&h.space, &rng, &v, NULL, 0, err) == 0, "%s", err);
        hist_add(&h, v, i % 10 == 9 ? CV_SEARCH_RUNNING : CV_SEARCH_COMPLETED, mixed_objective(v),
                 0, NULL);
    }
    cv_space_param_t *p = h.region.params;
    p[0].min = 1e-3, p[0].max = 0.1;  /* learning_rate */
    p[1].min = 0.95, p[1].max = 0.99; /* beta1 */
    p[2].min = 20, p[2].max = 100;    /* batch_size: 32 and 64 */
    p[3].min = 20, p[3].max = 200;    /* hidden_units */
    p[4].min = 2, p[4].max = 3;       /* hidden_layers */
    p[5].min = 0.6, p[5].max = 0.9;   /* keep_prob */
    p[6].weights[1] = 0;              /* activation: tanh excluded */
    p[7].weights[0] = 0.9, p[7].weights[1] = 0.1;
    for (uint64_t seed = 0; seed < 300; seed++) {
        if (seed == 200) p[5].min = p[5].max = 0.75; /* a float region of one value */
        cv_rng_seed(&rng, seed);
        cJSON *v = propose(&cv_sampler_tpe, config, &h, &rng);
        check_proposal(&h, v);
        ck_assert_str_ne(cJSON_GetObjectItemCaseSensitive(v, "activation")->valuestring, "tanh");
        if (seed >= 200)
            ck_assert(cJSON_GetObjectItemCaseSensitive(v, "keep_prob")->valuedouble == 0.75);
        /* The same seed gives the same proposal: every draw comes from the caller's RNG. */
        char a[CV_SPACE_CANON_MAX], b[CV_SPACE_CANON_MAX];
        cv_rng_seed(&rng, seed);
        cJSON *again = propose(&cv_sampler_tpe, config, &h, &rng);
        canonical(v, a);
        canonical(again, b);
        ck_assert_str_eq(a, b);
        cJSON_Delete(again);
        cJSON_Delete(v);
    }
    hist_finish(&h);
    cv_sampler_tpe.destroy(config);
}
END_TEST

/* ---- the constant liar and pruned trials ---- */

/* Thirteen results on LOG_LR: objective (u + 3)^2 at u = −5, −4.5, …, 0 and at −3.05, −2.95, so
 * the good group (the best ceil(0.25 · 13) = 4) sits at u ≈ −3. */
static void add_cluster_history(hist_t *h) {
    for (int i = 0; i <= 10; i++) {
        double u = -5.0 + 0.5 * i;
        hist_add_lr(h, u, CV_SEARCH_COMPLETED, (u + 3) * (u + 3));
    }
    hist_add_lr(h, -3.05, CV_SEARCH_COMPLETED, 0.0025);
    hist_add_lr(h, -2.95, CV_SEARCH_COMPLETED, 0.0025);
}

#define N_SEEDS_COMPARE 1000

/* The fraction of proposals from seeds 0..N_SEEDS_COMPARE-1 within 0.25 of u = −3. */
static double fraction_near_cluster(const void *config, const hist_t *h) {
    int near = 0;
    for (uint64_t seed = 0; seed < N_SEEDS_COMPARE; seed++)
        near += fabs(propose_lr_coord(config, h, seed) + 3.0) <= 0.25;
    return (double)near / N_SEEDS_COMPARE;
}

START_TEST(a_running_trial_on_the_good_cluster_sends_proposals_elsewhere) {
    hist_t h;
    void *liar = tpe_config(NULL), *honest = tpe_config("{\"constant_liar\": false}");
    hist_init(&h, LOG_LR);
    add_cluster_history(&h);
    double alone = fraction_near_cluster(liar, &h);
    /* Without the lie, a running trial changes nothing: the same seeds give the same points. */
    double honest_alone = fraction_near_cluster(honest, &h);
    hist_add_lr(&h, -3.0, CV_SEARCH_RUNNING, NAN);
    double with_running = fraction_near_cluster(liar, &h);
    double honest_running = fraction_near_cluster(honest, &h);
    for (uint64_t seed = 0; seed < 50; seed++) {
        double a = propose_lr_coord(honest, &h, seed);
        h.n--; /* the running trial is the last one: hide it, then restore it */
        double b = propose_lr_coord(honest, &h, seed);
        h.n++;
        ck_assert(a == b);
    }
    ck_assert(honest_alone == alone && honest_running == honest_alone);
    /* The lie adds a kernel of g on the cluster and leaves l alone, so l/g, each candidate's
     * score, drops there and nowhere else far from it: fewer proposals land near u = −3. */
    printf("constant liar: %.3f of proposals near the good cluster alone, %.3f with a running "
           "trial on it\n",
           alone, with_running);
    ck_assert_msg(alone - with_running > four_sigma_diff(alone, with_running, N_SEEDS_COMPARE),
                  "near the cluster: %.3f alone, %.3f with a running trial", alone, with_running);
    hist_finish(&h);
    cv_sampler_tpe.destroy(liar);
    cv_sampler_tpe.destroy(honest);
}
END_TEST

START_TEST(a_trial_pruned_before_the_level_counts_as_bad) {
    hist_t h;
    void *config = tpe_config("{\"startup_trials\": 8, \"constant_liar\": false}");
    hist_init(&h, LOG_LR);
    h.n_rungs = 2, h.rung_epochs[0] = 3, h.rung_epochs[1] = 6;
    /* The thirteen points of add_cluster_history reached rung 1 with value (u + 3)^2; five of
     * them finished, short of the eight needed at the final level, so the model works at rung 1
     * and its good group sits at u ≈ −3. */
    for (int i = 0; i < 13; i++) {
        double u = i <= 10 ? -5.0 + 0.5 * i : i == 11 ? -3.05 : -2.95;
        double r[2] = {(u + 3) * (u + 3) + 1, (u + 3) * (u + 3)};
        hist_add(&h, lr_values(u), i % 3 == 0 ? CV_SEARCH_COMPLETED : CV_SEARCH_RUNNING, r[1], 2,
                 r);
    }
    double before = fraction_near_cluster(config, &h);
    /* A trial on the cluster pruned at rung 0 (before rung 1) joins the bad group although its
     * rung-0 value was the best of all: as the running trial of the liar test, it adds a kernel
     * of g on the cluster, and proposals leave it. */
    double r0 = 0.01;
    hist_add(&h, lr_values(-3.0), CV_SEARCH_PRUNED, NAN, 1, &r0);
    double after = fraction_near_cluster(config, &h);
    printf("pruned before the rung: %.3f of proposals near the good cluster without it, %.3f "
           "with it\n",
           before, after);
    ck_assert_msg(before - after > four_sigma_diff(before, after, N_SEEDS_COMPARE),
                  "near the cluster: %.3f before, %.3f after a pruned trial", before, after);
    hist_finish(&h);
    cv_sampler_tpe.destroy(config);
}
END_TEST

/* ---- the window of recent trials ---- */

/* 200 trials at u ≈ −4.5 with objective 0, and 1000 spread over [−5, 0] with objective
 * (u + 1)^2, the 200 first when old_best_first, else last. */
static void add_old_and_new(hist_t *h, int old_best_first) {
    for (int block = 0; block < 2; block++) {
        int best = block == 0 ? old_best_first : !old_best_first;
        for (int i = 0; i < (best ? 200 : 1000); i++) {
            double u = best ? -4.5 + 0.001 * i - 0.1 : -5.0 + 5.0 * (i + 0.5) / 1000;
            hist_add_lr(h, u, CV_SEARCH_COMPLETED, best ? 0.0 : (u + 1) * (u + 1));
        }
    }
}

/* The fraction of proposals from seeds 0..199 within 0.5 of u. */
static double fraction_near(const void *config, const hist_t *h, double u) {
    int near = 0;
    for (uint64_t seed = 0; seed < 200; seed++)
        near += fabs(propose_lr_coord(config, h, seed) - u) <= 0.5;
    return near / 200.0;
}

START_TEST(only_the_1000_most_recent_results_are_modelled) {
    hist_t h;
    void *config = tpe_config(NULL);
    hist_init(&h, LOG_LR);
    /* The 200 best results are the oldest: beyond the window, they are forgotten, and the 1000
     * recent ones, whose best ceil(0.25 · 1000) = 250 lie in [−1.625, −0.375], make l; near
     * u = −4.5 only g has kernels, so hardly a proposal goes there. */
    add_old_and_new(&h, 1);
    double old_near_forgotten = fraction_near(config, &h, -4.5);
    double new_near_recent = fraction_near(config, &h, -1.0);
    hist_finish(&h);
    /* The same trials with the 200 best last: they are in the window and form most of l. */
    add_old_and_new(&h, 0);
    double old_near_kept = fraction_near(config, &h, -4.5);
    hist_finish(&h);
    printf("window: %.3f of proposals near u = -4.5 when its trials are the oldest, %.3f when "
           "they are the newest; %.3f near u = -1 when they are the oldest\n",
           old_near_forgotten, old_near_kept, new_near_recent);
    ck_assert_msg(old_near_forgotten < 0.05, "%.3f", old_near_forgotten);
    ck_assert_msg(new_near_recent > 0.9, "%.3f", new_near_recent);
    ck_assert_msg(old_near_kept > 0.5, "%.3f", old_near_kept);
    cv_sampler_tpe.destroy(config);
}
END_TEST

/* ---- allocation failures ---- */

START_TEST(a_failed_allocation_is_reported_without_a_leak) {
    hist_t h;
    void *config = tpe_config("{\"startup_trials\": 2}");
    hist_init(&h, MIXED_SPACE);
    cv_rng_t rng;
    char err[CV_ERRLEN] = "";
    cv_rng_seed(&rng, 3);
    for (int i = 0; i < 6; i++) {
        cJSON *v = NULL;
        ck_assert_msg(cv_space_sample(&h.space, &rng, &v, NULL, 0, err) == 0, "%s", err);
        hist_add(&h, v, CV_SEARCH_COMPLETED, mixed_objective(v), 0, NULL);
    }
    cv_search_history_t view = hist_view(&h);
    int succeeded = 0;
    for (long k = 0; !succeeded; k++) {
        cJSON *values = (cJSON *)&view; /* anything but NULL: a failure must reset it */
        cv_rng_seed(&rng, 5);
        cv_test_cjson_fail_after(k);
        int rc = cv_sampler_tpe.propose(config, &view, &rng, &values, err);
        cv_test_cjson_restore();
        if (rc == 0) {
            check_proposal(&h, values);
            cJSON_Delete(values);
            succeeded = 1;
        } else {
            ck_assert_int_eq(rc, CV_ENOMEM);
            ck_assert_ptr_null(values);
            ck_assert_str_eq(err, "search.tpe: proposing: out of memory");
        }
    }
    hist_finish(&h);
    cv_sampler_tpe.destroy(config);
}
END_TEST

/* ---- quality against random search ---- */

#define N_QUALITY_SEEDS  10
#define N_QUALITY_TRIALS 60

typedef double (*objective_fn)(const cJSON *values);

/* (log10 lr + 3)^2 on LOG_LR: 0 at lr = 1e-3, 9 at lr = 1 (u = 0); f ranges over [0, 9]. */
static double bowl_1d(const cJSON *v) {
    double u = log10(cJSON_GetObjectItemCaseSensitive(v, "learning_rate")->valuedouble);
    return (u + 3) * (u + 3);
}

/* (log10 lr + 3)^2 + 25 (keep_prob − 0.6)^2 on LR_AND_KEEP: 0 at (1e-3, 0.6); largest at
 * (1, 0.2): 9 + 25 · 0.16 = 13; f ranges over [0, 13]. */
static double bowl_2d(const cJSON *v) {
    double u = log10(cJSON_GetObjectItemCaseSensitive(v, "learning_rate")->valuedouble);
    double k = cJSON_GetObjectItemCaseSensitive(v, "keep_prob")->valuedouble;
    return (u + 3) * (u + 3) + 25 * (k - 0.6) * (k - 0.6);
}

/* Runs N_QUALITY_TRIALS sequential trials per seed (each proposal, then its objective recorded as
 * COMPLETED) and counts, over all seeds, the last 30 proposals whose objective lies in the best
 * 10% of the objective's range over the region: f ≤ f_min + 0.1 · (f_max − f_min). */
static int count_in_best_tenth(const cv_sampler_ops_t *ops, const void *config,
                               const char *space_text, objective_fn f, double f_min, double f_max) {
    int count = 0;
    double threshold = f_min + 0.1 * (f_max - f_min);
    for (uint64_t seed = 0; seed < N_QUALITY_SEEDS; seed++) {
        hist_t h;
        cv_rng_t rng;
        hist_init(&h, space_text);
        cv_rng_seed(&rng, cv_rng_derive(1234, seed));
        for (int t = 0; t < N_QUALITY_TRIALS; t++) {
            cJSON *v = propose(ops, config, &h, &rng);
            double y = f(v);
            ck_assert(cv_space_region_contains(&h.region, v));
            count += t >= N_QUALITY_TRIALS - 30 && y <= threshold;
            hist_add(&h, v, CV_SEARCH_COMPLETED, y, 0, NULL);
        }
        hist_finish(&h);
    }
    return count;
}

static void compare_with_random(const char *name, const char *space_text, objective_fn f,
                                double f_min, double f_max) {
    void *tpe = tpe_config(NULL), *random = NULL;
    char err[CV_ERRLEN] = "";
    ck_assert_int_eq(cv_sampler_random.create(&random, NULL, err), 0);
    int n_tpe = count_in_best_tenth(&cv_sampler_tpe, tpe, space_text, f, f_min, f_max);
    int n_random = count_in_best_tenth(&cv_sampler_random, random, space_text, f, f_min, f_max);
    printf("%s: last 30 of %d trials in the best 10%% of the range, over %d seeds: tpe %d, "
           "random %d (of %d)\n",
           name, N_QUALITY_TRIALS, N_QUALITY_SEEDS, n_tpe, n_random, 30 * N_QUALITY_SEEDS);
    ck_assert_int_gt(n_random, 0);
    ck_assert_msg(n_tpe >= 2 * n_random, "%s: tpe %d, random %d", name, n_tpe, n_random);
    cv_sampler_tpe.destroy(tpe);
    cv_sampler_random.destroy(random);
}

START_TEST(tpe_finds_the_minimum_of_a_1d_bowl_twice_as_often_as_random_search) {
    compare_with_random("1-D (log10 lr + 3)^2", LOG_LR, bowl_1d, 0.0, 9.0);
}
END_TEST

START_TEST(tpe_finds_the_minimum_of_a_2d_bowl_twice_as_often_as_random_search) {
    compare_with_random("2-D (log10 lr + 3)^2 + 25 (keep_prob - 0.6)^2", LR_AND_KEEP, bowl_2d, 0.0,
                        13.0);
}
END_TEST

static Suite *tpe_suite(void) {
    Suite *s = suite_create("sampler_tpe");

    TCase *settings = tcase_create("settings");
    tcase_add_test(settings, tpe_is_registered_under_its_name);
    tcase_add_test(settings, defaults_are_described_in_full);
    tcase_add_test(settings, given_settings_are_described_as_given);
    tcase_add_test(settings, bad_settings_are_refused_naming_the_field);
    suite_add_tcase(s, settings);

    TCase *startup = tcase_create("startup");
    tcase_add_test(startup,
                   before_startup_trials_results_proposals_are_random_samples_of_the_region);
    tcase_add_test(startup, with_rungs_and_no_level_full_enough_proposals_are_random);
    suite_add_tcase(s, startup);

    TCase *region = tcase_create("region");
    tcase_add_test(region, proposals_lie_inside_the_region_and_read_back_exactly);
    suite_add_tcase(s, region);

    TCase *groups = tcase_create("groups");
    tcase_add_test(groups, a_running_trial_on_the_good_cluster_sends_proposals_elsewhere);
    tcase_add_test(groups, a_trial_pruned_before_the_level_counts_as_bad);
    tcase_set_timeout(groups, 60);
    suite_add_tcase(s, groups);

    TCase *window = tcase_create("window");
    tcase_add_test(window, only_the_1000_most_recent_results_are_modelled);
    tcase_set_timeout(window, 60);
    suite_add_tcase(s, window);

    TCase *faults = tcase_create("faults");
    tcase_add_test(faults, a_failed_allocation_is_reported_without_a_leak);
    suite_add_tcase(s, faults);

    TCase *quality = tcase_create("quality");
    tcase_add_test(quality, tpe_finds_the_minimum_of_a_1d_bowl_twice_as_often_as_random_search);
    tcase_add_test(quality, tpe_finds_the_minimum_of_a_2d_bowl_twice_as_often_as_random_search);
    tcase_set_timeout(quality, 60);
    suite_add_tcase(s, quality);
    return s;
}

CV_TEST_MAIN(tpe_suite)
