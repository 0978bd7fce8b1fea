/* Learning tests of the trainer (worker/trainer.c): whole trials run through cv_train_run on
 * small two-class data sets generated here (two interleaved spirals, two moons) and written to a
 * temporary CSV file, with specs given as JSON text. Each test states one behaviour of training:
 * the error falls to a bound, regularization narrows the train/dev gap, divergence is reported,
 * early stopping keeps the best epoch, a seed reproduces a run bit for bit, and so on.
 *
 * Learning outcomes depend on the seed, so every threshold below was checked against many data
 * and trial seeds (see the comment at each test) and sits well inside the observed range. */
#include <cblas.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "common/err.h"
#include "common/rng.h"
#include "common/trial_spec.h"
#include "testutil.h"
#include "worker/arch.h"
#include "worker/nn.h"
#include "worker/trainer.h"

/* ln 2: the cross-entropy of a two-class guess at ½, what a model that knows nothing scores. */
#define LN2 0.69314718055994531
#define PI  3.14159265358979324

/* ---- data ----------------------------------------------------------------------------- */

typedef enum {
    SPIRALS, /* two spirals of 1.5 turns each, one rotated by π from the other */
    MOONS,   /* two interleaved half circles of radius 1 */
} shape_t;

/* The point of class c (0 or 1) at position u in [0, 1) along its curve, before noise. */
static void shape_point(shape_t shape, int c, double u, double *x, double *y) {
    if (shape == SPIRALS) {
        double r = 0.1 + 0.9 * u, angle = 3 * PI * u + c * PI;
        *x = r * cos(angle);
        *y = r * sin(angle);
    } else {
        double t = PI * u;
        *x = c ? 1 - cos(t) : cos(t);
        *y = c ? 0.5 - sin(t) : sin(t);
    }
}

/* Writes a CSV "x1,x2,label" of per_class points of each class, alternating the classes, with
 * N(0, noise²) added to both coordinates and each label flipped with probability flip, all
 * drawn from seed. When bad_label ≥ 0, the last row gets that label instead. The path goes to
 * path (CV_TEST_PATH bytes). */
static void write_points_csv(char *path, const char *name, shape_t shape, int per_class,
                             double noise, double flip, uint64_t seed, int bad_label) {
    size_t cap = 32 + (size_t)per_class * 2 * 48, len = 0;
    char *text = malloc(cap);
    ck_assert_ptr_nonnull(text);
    len += (size_t)snprintf(text, cap, "x1,x2,label\n");
    cv_rng_t rng;
    cv_rng_seed(&rng, seed);
    for (int i = 0; i < per_class; i++) {
        for (int c = 0; c < 2; c++) {
            double x, y;
            shape_point(shape, c, cv_rng_uniform(&rng), &x, &y);
            x += noise * cv_rng_normal(&rng);
            y += noise * cv_rng_normal(&rng);
            int label = cv_rng_uniform(&rng) < flip ? 1 - c : c;
            if (bad_label >= 0 && i == per_class - 1 && c == 1) label = bad_label;
            int w = snprintf(text + len, cap - len, "%.6f,%.6f,%d\n", x, y, label);
            ck_assert(w > 0 && (size_t)w < cap - len);
            len += (size_t)w;
        }
    }
    cv_test_write_file(path, name, text, len);
    free(text);
}

/* ---- specs and runs ------------------------------------------------------------------- */

/* Parses a spec for the two-class CSV at csv with the given split (JSON) and further fields
 * (JSON members without braces). Every training example is scored after each epoch. */
static void make_spec(cv_trial_spec_t *spec, const char *csv, const char *split,
                      const char *fields) {
    char json[4096], err[CV_ERRLEN] = "";
    int n = snprintf(json, sizeof json,
                     "{\"dataset\": {\"format\": \"csv\", \"csv\": \"%.*s\", \"classes\": 2},"
                     " \"split\": %.200s, \"train_eval_examples\": 0, %.2000s}",
                     CV_TEST_PATH, csv, split, fields);
    ck_assert(n > 0 && (size_t)n < sizeof json);
    ck_assert_msg(cv_trial_spec_parse(spec, json, (size_t)n, err) == 0, "spec %s: %s", json, err);
}

#define MAX_EPOCHS 1000

/* The per-epoch metrics a trial reported through on_epoch. */
typedef struct {
    int n;
    cv_epoch_t m[MAX_EPOCHS];
} curve_t;

static int collect_epoch(const cv_epoch_t *m, void *userdata) {
    curve_t *curve = userdata;
    ck_assert_int_lt(curve->n, MAX_EPOCHS);
    ck_assert_int_eq(m->epoch, curve->n + 1); /* epochs arrive in order, 1-based */
    curve->m[curve->n++] = *m;
    return 0;
}

/* Runs spec and requires a result (completed, diverged or stopped). Returns the per-epoch curve
 * on the heap; the caller frees it. */
static curve_t *run_trial(const cv_trial_spec_t *spec, cv_trial_result_t *res) {
    curve_t *curve = calloc(1, sizeof *curve);
    ck_assert_ptr_nonnull(curve);
    cv_train_options_t opts = {.on_epoch = collect_epoch, .userdata = curve};
    char err[CV_ERRLEN] = "";
    int rc = cv_train_run(spec, &opts, res, err);
    ck_assert_msg(rc == 0, "cv_train_run: %s", err);
    return curve;
}

/* Runs spec and requires it to complete (all its epochs, or until early stopping). */
static curve_t *run_completed(const cv_trial_spec_t *spec, cv_trial_result_t *res) {
    curve_t *curve = run_trial(spec, res);
    ck_assert_msg(res->status == CV_TRIAL_COMPLETED, "status %s: %s",
                  cv_trial_status_name(res->status), res->error);
    ck_assert_int_eq(curve->n, res->epochs_run);
    return curve;
}

static const cv_epoch_t *last_epoch(const curve_t *curve) {
    ck_assert_int_gt(curve->n, 0);
    return &curve->m[curve->n - 1];
}

/* ---- measurements shared by tests (also handy for sweeping seeds by hand) ------------- */

/* Spirals, 200 points per class, noise 0.03, split 70/15/15; two hidden layers of 32 units
 * (act), Adam at 0.01, mini-batches of 32, for the given epochs, plus the fields in extra.
 * Returns the curve. */
static curve_t *train_spirals(uint64_t data_seed, uint64_t seed, const char *act, int epochs,
                              const char *extra, cv_trial_result_t *res) {
    char path[CV_TEST_PATH], fields[1024];
    write_points_csv(path, "spirals.csv", SPIRALS, 200, 0.03, 0, data_seed, -1);
    cv_trial_spec_t spec;
    snprintf(fields, sizeof fields,
             "\"hidden_units\": [32, 32], \"activation\": \"%.16s\", \"optimizer\": \"adam\","
             " \"learning_rate\": 0.01, \"batch_size\": 32, \"epochs\": %d,"
             " \"seed\": %llu%.512s",
             act, epochs, (unsigned long long)seed, extra);
    make_spec(&spec, path, "{\"train\": 0.7, \"dev\": 0.15, \"test\": 0.15}", fields);
    curve_t *curve = run_completed(&spec, res);
    unlink(path);
    return curve;
}

/* The overfitting set-up: moons with little spatial noise (0.1) but a fifth of the labels
 * flipped at random, so that the true boundary errs on 20% of the points and a lower training
 * error means noise was learnt by heart. 60 training and 540 dev examples, three hidden layers
 * of 128 relu units (about 33,000 parameters), Adam at 0.01 with batch GD for 300 epochs, plus
 * the regularization fields in reg. Returns the last epoch's metrics. */
static cv_epoch_t overfit_last_epoch(uint64_t data_seed, uint64_t seed, const char *reg) {
    char path[CV_TEST_PATH], fields[1024];
    write_points_csv(path, "moons-overfit.csv", MOONS, 300, 0.1, 0.2, data_seed, -1);
    cv_trial_spec_t spec;
    snprintf(fields, sizeof fields,
             "\"hidden_units\": [128, 128, 128], \"activation\": \"relu\","
             " \"optimizer\": \"adam\", \"learning_rate\": 0.01, \"batch_size\": 60,"
             " \"epochs\": 300, \"seed\": %llu%.512s",
             (unsigned long long)seed, reg);
    make_spec(&spec, path, "{\"train\": 0.1, \"dev\": 0.9, \"test\": 0}", fields);
    cv_trial_result_t res;
    curve_t *curve = run_completed(&spec, &res);
    ck_assert_uint_eq(res.m_train, 60);
    ck_assert_uint_eq(res.m_dev, 540);
    cv_epoch_t last = *last_epoch(curve);
    free(curve);
    unlink(path);
    return last;
}

static double error_gap(const cv_epoch_t *m) {
    return m->dev_error - m->train_error;
}
static double cost_gap(const cv_epoch_t *m) {
    return m->dev_cost - m->train_cost;
}

/* Requires reg to narrow the train/dev gap of the overfitting set-up: the error gap by at least
 * 4 points and the cost gap by at least half. Over data and trial seeds 1..40 the error gap
 * narrowed by 7 to 40 points (L2, λ = 3) and 9 to 35 points (dropout, keep_prob 0.5); the cost
 * gap shrank to at most 7% (L2) and 30% (dropout) of the unregularized 2.3 to 7. */
static void assert_narrows_the_gap(const char *reg) {
    cv_epoch_t plain = overfit_last_epoch(1, 1, ""), regd = overfit_last_epoch(1, 1, reg);
    ck_assert_msg(error_gap(&regd) < error_gap(&plain) - 0.04,
                  "%s: error gap %.3f (train %.3f, dev %.3f), unregularized %.3f", reg,
                  error_gap(&regd), regd.train_error, regd.dev_error, error_gap(&plain));
    ck_assert_msg(cost_gap(&regd) < cost_gap(&plain) / 2, "%s: cost gap %.3f, unregularized %.3f",
                  reg, cost_gap(&regd), cost_gap(&plain));
}

/* ---- tests ---------------------------------------------------------------------------- */

START_TEST(split_fractions_size_the_sets_and_the_data_size_the_network) {
    /* 500 rows at 0.6/0.2/0.2 → 300/100/100. Two features, two classes, hidden [16, 16]:
     * (2·16 + 16) + (16·16 + 16) + (16·2 + 2) = 48 + 272 + 34 = 354 parameters. */
    char path[CV_TEST_PATH];
    write_points_csv(path, "split.csv", MOONS, 250, 0.1, 0, 11, -1);
    cv_trial_spec_t spec;
    make_spec(&spec, path, "{\"train\": 0.6, \"dev\": 0.2, \"test\": 0.2}",
              "\"hidden_units\": [16, 16], \"epochs\": 1");
    cv_trial_result_t res;
    free(run_completed(&spec, &res));
    ck_assert_uint_eq(res.m_train, 300);
    ck_assert_uint_eq(res.m_dev, 100);
    ck_assert_uint_eq(res.m_test, 100);
    ck_assert_int_eq(res.n_features, 2);
    ck_assert_int_eq(res.classes, 2);
    ck_assert_uint_eq(res.n_params, 354);
    unlink(path);
}
END_TEST

START_TEST(training_error_falls_to_below_5_percent_on_spirals) {
    /* Spirals are not linearly separable: after the first epoch the training error is still
     * 28% or more, and two hidden layers of 32 tanh units with Adam bring it under 5% (it was
     * 0% at epoch 150 for data seeds 1..20). The cost must at least halve on the way. */
    cv_trial_result_t res;
    curve_t *curve = train_spirals(1, 1, "tanh", 150, "", &res);
    const cv_epoch_t *first = &curve->m[0], *last = last_epoch(curve);
    ck_assert_int_eq(curve->n, 150);
    ck_assert_msg(last->train_cost < first->train_cost / 2, "cost %g → %g", first->train_cost,
                  last->train_cost);
    ck_assert_msg(last->train_error < first->train_error - 0.1, "error %g → %g", first->train_error,
                  last->train_error);
    ck_assert_msg(last->train_error < 0.05, "final training error %g", last->train_error);
    free(curve);
}
END_TEST

START_TEST(a_network_without_hidden_layers_cannot_learn_the_spirals) {
    /* The control for the test above: logistic regression draws one straight line, and no line
     * separates two interleaved spirals. Its training error stays above 20% (observed 28% to
     * 42% over seeds 1..20), so the hidden layers are what learnt them. */
    char path[CV_TEST_PATH];
    write_points_csv(path, "spirals-linear.csv", SPIRALS, 200, 0.03, 0, 1, -1);
    cv_trial_spec_t spec;
    make_spec(&spec, path, "{\"train\": 0.7, \"dev\": 0.15, \"test\": 0.15}",
              "\"hidden_layers\": 0, \"optimizer\": \"adam\", \"learning_rate\": 0.01,"
              " \"batch_size\": 32, \"epochs\": 150");
    cv_trial_result_t res;
    curve_t *curve = run_completed(&spec, &res);
    ck_assert_uint_eq(res.n_params, 2 * 2 + 2);
    ck_assert_msg(last_epoch(curve)->train_error > 0.20, "training error %g",
                  last_epoch(curve)->train_error);
    free(curve);
    unlink(path);
}
END_TEST

START_TEST(relu_network_also_learns_the_spirals) {
    cv_trial_result_t res;
    curve_t *curve = train_spirals(2, 3, "relu", 150, "", &res);
    ck_assert_msg(last_epoch(curve)->train_error < 0.05, "final training error %g",
                  last_epoch(curve)->train_error);
    free(curve);
}
END_TEST

START_TEST(a_big_network_on_few_examples_overfits_without_regularization) {
    /* The training error falls below the 20% of flipped labels (the noise was learnt) while the
     * dev error stays above it: over seeds 1..40 the training error was at most 8% and the
     * error gap at least 18 points, the cost gap at least 2.3. */
    cv_epoch_t m = overfit_last_epoch(1, 1, "");
    ck_assert_msg(m.train_error < 0.15, "training error %g", m.train_error);
    ck_assert_msg(m.dev_error > 0.2, "dev error %g", m.dev_error);
    ck_assert_msg(error_gap(&m) >= 0.12, "error gap %g", error_gap(&m));
    ck_assert_msg(cost_gap(&m) >= 1.0, "cost gap %g", cost_gap(&m));
}
END_TEST

START_TEST(l2_regularization_narrows_the_train_dev_gap) {
    /* λ = 3 in λ/2m·Σ‖W‖² with m = 60. */
    assert_narrows_the_gap(", \"l2\": 3");
}
END_TEST

START_TEST(dropout_narrows_the_train_dev_gap) {
    /* keep_prob 0.5 on all three hidden layers. */
    assert_narrows_the_gap(", \"keep_prob\": 0.5");
}
END_TEST

START_TEST(a_huge_learning_rate_diverges_and_says_when) {
    /* Plain GD at α = 10 from weights 1e6 times the He scale: each layer multiplies the
     * activations by about 1e6, the first updates are huge, and within a few steps the float
     * logits overflow (in the first epoch for every data and trial seed 1..20 tried; α = 10
     * alone diverged for only a third of them). The trial reports DIVERGED (a result, so
     * cv_train_run returns 0), the epoch it happened in, and a reason. */
    char path[CV_TEST_PATH];
    write_points_csv(path, "diverge.csv", MOONS, 100, 0.1, 0, 5, -1);
    cv_trial_spec_t spec;
    make_spec(&spec, path, "{\"train\": 0.6, \"dev\": 0.2, \"test\": 0.2}",
              "\"hidden_units\": [32, 32], \"optimizer\": \"gd\", \"learning_rate\": 10,"
              " \"init_scale\": 1e6, \"batch_size\": 8, \"epochs\": 20");
    cv_trial_result_t res;
    curve_t *curve = run_trial(&spec, &res);
    ck_assert_str_eq(cv_trial_status_name(res.status), "diverged");
    ck_assert_int_ge(res.diverged_epoch, 1);
    ck_assert_int_le(res.diverged_epoch, 20);
    ck_assert_int_eq(res.epochs_run, res.diverged_epoch - 1); /* the diverged epoch is not run */
    ck_assert_int_eq(curve->n, res.epochs_run);
    ck_assert_int_le(res.best_epoch, res.epochs_run); /* no best after the divergence */
    ck_assert_ptr_nonnull(strstr(res.error, "NaN or infinite"));
    free(curve);
    unlink(path);
}
END_TEST

START_TEST(early_stopping_keeps_the_best_epoch_and_stops_patience_epochs_later) {
    /* The overfitting set-up with patience 2 and up to 500 epochs: the dev cost starts rising
     * long before epoch 500 (runs stopped after 3 to 20 epochs over seeds 1..40; this one after
     * 8), training stops 2 epochs after the lowest dev cost, and the reported metrics are that
     * epoch's. */
    char path[CV_TEST_PATH];
    write_points_csv(path, "moons-early.csv", MOONS, 300, 0.1, 0.2, 1, -1);
    cv_trial_spec_t spec;
    make_spec(&spec, path, "{\"train\": 0.1, \"dev\": 0.9, \"test\": 0}",
              "\"hidden_units\": [128, 128, 128], \"optimizer\": \"adam\","
              " \"learning_rate\": 0.01, \"batch_size\": 60, \"epochs\": 500, \"patience\": 2");
    cv_trial_result_t res;
    curve_t *curve = run_completed(&spec, &res);
    ck_assert_int_lt(res.epochs_run, 500);
    ck_assert_int_eq(res.best_epoch, res.epochs_run - 2);

    const cv_epoch_t *best = &curve->m[res.best_epoch - 1];
    ck_assert_int_eq(res.best.epoch, res.best_epoch);
    ck_assert_double_eq(res.best.train_cost, best->train_cost);
    ck_assert_double_eq(res.best.train_cost_reg, best->train_cost_reg);
    ck_assert_double_eq(res.best.dev_cost, best->dev_cost);
    ck_assert_double_eq(res.best.train_error, best->train_error);
    ck_assert_double_eq(res.best.dev_error, best->dev_error);
    ck_assert_double_eq(res.best.learning_rate, best->learning_rate);
    /* The best epoch improved on every epoch before it, and the two after it are no better. */
    for (int e = 0; e < res.best_epoch - 1; e++)
        ck_assert_double_gt(curve->m[e].dev_cost, best->dev_cost);
    for (int e = res.best_epoch; e < curve->n; e++)
        ck_assert_double_ge(curve->m[e].dev_cost, best->dev_cost);
    /* The diagnosis is made from the best epoch's errors. */
    cv_diagnosis_t want = cv_diagnose(best->train_error, best->dev_error, -1);
    ck_assert_int_eq(res.diagnosis.kind, want.kind);
    free(curve);
    unlink(path);
}
END_TEST

/* An epoch callback that collects the curve and prunes the trial when epoch prune_at ends. */
typedef struct {
    curve_t curve;
    int prune_at;
} pruning_t;

static int prune_at_epoch(const cv_epoch_t *m, void *userdata) {
    pruning_t *p = userdata;
    collect_epoch(m, &p->curve);
    return m->epoch == p->prune_at ? CV_EPOCH_PRUNE : CV_EPOCH_GO_ON;
}

START_TEST(a_pruned_trial_reports_and_saves_its_best_epoch_so_far) {
    /* The early-stopping set-up without patience: it overfits within a few epochs, so a trial
     * pruned after epoch 40 reports an earlier epoch's metrics (the lowest dev cost of the 40),
     * and saves that epoch's model. */
    char path[CV_TEST_PATH], model[CV_TEST_PATH + 8], err[CV_ERRLEN] = "";
    write_points_csv(path, "moons-pruned.csv", MOONS, 300, 0.1, 0.2, 1, -1);
    snprintf(model, sizeof model, "%s.model", path);
    cv_trial_spec_t spec;
    make_spec(&spec, path, "{\"train\": 0.1, \"dev\": 0.9, \"test\": 0}",
              "\"hidden_units\": [128, 128, 128], \"optimizer\": \"adam\","
              " \"learning_rate\": 0.01, \"batch_size\": 60, \"epochs\": 500");
    pruning_t *p = calloc(1, sizeof *p);
    ck_assert_ptr_nonnull(p);
    p->prune_at = 40;
    cv_train_options_t opts = {.on_epoch = prune_at_epoch, .userdata = p, .save_model = model};
    cv_trial_result_t res;
    ck_assert_int_eq(cv_train_run(&spec, &opts, &res, err), 0);
    ck_assert_str_eq(cv_trial_status_name(res.status), "pruned");
    ck_assert_int_eq(res.status, CV_TRIAL_PRUNED);
    ck_assert_int_eq(res.epochs_run, 40);
    ck_assert_int_eq(p->curve.n, 40);
    ck_assert_int_lt(res.best_epoch, 40);
    const cv_epoch_t *best = &p->curve.m[res.best_epoch - 1];
    ck_assert_double_eq(res.best.dev_cost, best->dev_cost);
    ck_assert_double_eq(res.best.dev_error, best->dev_error);
    for (int e = 0; e < p->curve.n; e++)
        ck_assert_double_ge(p->curve.m[e].dev_cost, best->dev_cost);
    struct stat st;
    ck_assert_int_eq(stat(model, &st), 0);
    ck_assert_int_gt(st.st_size, 0);
    free(p);
    unlink(model);
    unlink(path);
}
END_TEST

/* ---- nudges ------------------------------------------------------------------------------ */

/* A nudge given to the trainer before epoch `at`, as the worker's connection gives it. */
typedef struct {
    curve_t curve;
    int at;           /* the epoch before which it is applied */
    const char *json; /* its values */
} nudging_t;

static int nudge_collect(const cv_epoch_t *m, void *userdata) {
    return collect_epoch(m, &((nudging_t *)userdata)->curve);
}

static int nudge_before(cv_trial_spec_t *live, int epoch, void *userdata) {
    const nudging_t *n = userdata;
    if (epoch != n->at) return 0;
    char err[CV_ERRLEN] = "";
    cJSON *values = cJSON_Parse(n->json);
    ck_assert_ptr_nonnull(values);
    ck_assert_msg(cv_trial_spec_nudge(live, values, err) == 0, "%s", err);
    cJSON_Delete(values);
    return 1;
}

/* Runs spec with nudge json before epoch at; the curve is n->curve. */
static void run_nudged(const cv_trial_spec_t *spec, nudging_t *n, int at, const char *json,
                       cv_trial_result_t *res) {
    n->at = at;
    n->json = json;
    cv_train_options_t opts = {
        .on_epoch = nudge_collect, .before_epoch = nudge_before, .userdata = n};
    char err[CV_ERRLEN] = "";
    ck_assert_msg(cv_train_run(spec, &opts, res, err) == 0, "cv_train_run: %s", err);
}

/* The moons spec of the nudge tests, with extra fields. */
static void nudge_spec(cv_trial_spec_t *spec, char *path, const char *extra) {
    char fields[512];
    write_points_csv(path, "moons-nudge.csv", MOONS, 200, 0.1, 0, 3, -1);
    snprintf(fields, sizeof fields,
             "\"hidden_units\": [16], \"activation\": \"tanh\", \"optimizer\": \"adam\","
             " \"learning_rate\": 0.01, \"batch_size\": 32, \"epochs\": 10%s",
             extra);
    make_spec(spec, path, "{\"train\": 0.75, \"dev\": 0.25, \"test\": 0}", fields);
}

/* Runs the nudge spec with extra fields twice, plainly and with nudge json before epoch at;
 * both complete 10 epochs and agree bit for bit before at (the nudge changes nothing earlier).
 * Returns the nudged run (the caller frees it) and the plain curve in *plain. */
static nudging_t *run_both(const char *extra, int at, const char *json, curve_t **plain) {
    char path[CV_TEST_PATH];
    cv_trial_spec_t spec;
    nudge_spec(&spec, path, extra);
    cv_trial_result_t plain_res, res;
    *plain = run_completed(&spec, &plain_res);
    nudging_t *n = calloc(1, sizeof *n);
    ck_assert_ptr_nonnull(n);
    run_nudged(&spec, n, at, json, &res);
    ck_assert_int_eq(res.status, CV_TRIAL_COMPLETED);
    ck_assert_int_eq(n->curve.n, 10);
    for (int e = 0; e < at - 1; e++)
        ck_assert_int_eq(
            memcmp(&n->curve.m[e].train_cost, &(*plain)->m[e].train_cost, sizeof(double)), 0);
    unlink(path);
    return n;
}

START_TEST(a_learning_rate_nudge_rebases_the_schedule_without_restarting) {
    /* inverse_time: α(e) = α₀ / (1 + 0.5·(e − 1)) for 1-based epoch e. Nudged to 0.002 before
     * epoch 4, epoch 4 runs at exactly 0.002 and later ones keep the schedule's shape:
     * α(e) = 0.002 · (1 + 0.5·3) / (1 + 0.5·(e − 1)). The epoch after the nudge goes on from the
     * trained weights (no restart). */
    curve_t *plain;
    nudging_t *n = run_both(", \"decay\": \"inverse_time\", \"decay_rate\": 0.5", 4,
                            "{\"learning_rate\": 0.002}", &plain);
    for (int e = 1; e <= 10; e++) {
        double want = e < 4 ? 0.01 / (1 + 0.5 * (e - 1)) : 0.002 * 2.5 / (1 + 0.5 * (e - 1));
        ck_assert_double_eq_tol(n->curve.m[e - 1].learning_rate, want, 1e-15);
    }
    ck_assert_double_lt(n->curve.m[3].train_cost, n->curve.m[0].train_cost);
    ck_assert_double_lt(n->curve.m[3].train_cost, LN2 / 2);
    free(n);
    free(plain);
}
END_TEST

START_TEST(a_keep_prob_nudge_turns_dropout_on_mid_training) {
    /* Without dropout in the spec the network has no masks; a nudge to 0.5 rebuilds it with
     * them, keeping the weights: the nudged epoch trains differently, and the trial still
     * learns. */
    curve_t *plain;
    nudging_t *n = run_both("", 3, "{\"keep_prob\": 0.5, \"input_keep_prob\": 0.9}", &plain);
    ck_assert(memcmp(&n->curve.m[2].train_cost, &plain->m[2].train_cost, sizeof(double)) != 0);
    ck_assert_double_lt(n->curve.m[9].train_cost, LN2 / 2);
    free(n);
    free(plain);
}
END_TEST

START_TEST(an_epochs_nudge_below_the_epochs_run_ends_the_trial_completed) {
    /* epochs nudged to 5 before epoch 6: the trial ends after 5 epochs as completed, with the
     * best of those 5 epochs. */
    char path[CV_TEST_PATH];
    cv_trial_spec_t spec;
    nudge_spec(&spec, path, "");
    nudging_t *n = calloc(1, sizeof *n);
    ck_assert_ptr_nonnull(n);
    cv_trial_result_t res;
    run_nudged(&spec, n, 6, "{\"epochs\": 5}", &res);
    ck_assert_int_eq(res.status, CV_TRIAL_COMPLETED);
    ck_assert_int_eq(res.epochs_run, 5);
    ck_assert_int_eq(n->curve.n, 5);
    ck_assert_int_ge(res.best_epoch, 1);
    ck_assert_int_le(res.best_epoch, 5);
    free(n);
    unlink(path);
}
END_TEST

/* 1 when two curves agree bit for bit in everything but the timings. */
static int same_curves(const curve_t *a, const curve_t *b) {
    if (a->n != b->n) return 0;
    for (int e = 0; e < a->n; e++) {
        const cv_epoch_t *x = &a->m[e], *y = &b->m[e];
        if (x->epoch != y->epoch || memcmp(&x->train_cost, &y->train_cost, sizeof(double)) ||
            memcmp(&x->train_cost_reg, &y->train_cost_reg, sizeof(double)) ||
            memcmp(&x->dev_cost, &y->dev_cost, sizeof(double)) ||
            memcmp(&x->train_error, &y->train_error, sizeof(double)) ||
            memcmp(&x->dev_error, &y->dev_error, sizeof(double)) ||
            memcmp(&x->learning_rate, &y->learning_rate, sizeof(double)))
            return 0;
    }
    return 1;
}

START_TEST(the_same_spec_and_seed_give_bit_identical_runs) {
    /* Dropout and batch norm draw from and update every piece of random and running state. The
     * suite pins OpenBLAS to one thread (see the suite), so summation order is fixed too. */
    static const char extra[] = ", \"keep_prob\": 0.8, \"batch_norm\": true";
    cv_trial_result_t a, b;
    curve_t *ca = train_spirals(4, 9, "relu", 20, extra, &a);
    curve_t *cb = train_spirals(4, 9, "relu", 20, extra, &b);
    ck_assert_int_eq(a.epochs_run, 20);
    ck_assert(same_curves(ca, cb));
    ck_assert_int_eq(a.best_epoch, b.best_epoch);
    ck_assert_int_eq(memcmp(&a.best.dev_cost, &b.best.dev_cost, sizeof(double)), 0);
    /* A different trial seed gives a different run: the seed is actually used. */
    cv_trial_result_t c;
    curve_t *cc = train_spirals(4, 10, "relu", 20, extra, &c);
    ck_assert(!same_curves(ca, cc));
    free(ca);
    free(cb);
    free(cc);
}
END_TEST

/* Trains the moons (200 per class, noise 0.1, 300/100 train/dev) with the given batch size,
 * epochs and learning rate, and checks the run completes with the cost falling from the first
 * epoch to the last and ending below half of ln 2 (the cost of guessing ½). Over data seeds
 * 1..20 the final cost was at most 0.08 (batch 1), 0.04 (batch 300) and 0.13 (batch 64),
 * against a bound of 0.35, and the last epoch's cost at most a third of the first's. */
static void assert_learns_with_batch(uint32_t batch_size, int epochs, double lr) {
    char path[CV_TEST_PATH], fields[512];
    write_points_csv(path, "moons-batch.csv", MOONS, 200, 0.1, 0, 3, -1);
    snprintf(fields, sizeof fields,
             "\"hidden_units\": [16], \"activation\": \"tanh\", \"optimizer\": \"adam\","
             " \"learning_rate\": %g, \"batch_size\": %u, \"epochs\": %d",
             lr, (unsigned)batch_size, epochs);
    cv_trial_spec_t spec;
    make_spec(&spec, path, "{\"train\": 0.75, \"dev\": 0.25, \"test\": 0}", fields);
    cv_trial_result_t res;
    curve_t *curve = run_completed(&spec, &res);
    ck_assert_uint_eq(res.m_train, 300);
    ck_assert_int_eq(res.epochs_run, epochs);
    const cv_epoch_t *first = &curve->m[0], *last = last_epoch(curve);
    ck_assert_msg(last->train_cost < first->train_cost, "batch %u: cost %g → %g",
                  (unsigned)batch_size, first->train_cost, last->train_cost);
    ck_assert_msg(last->train_cost < LN2 / 2, "batch %u: final cost %g", (unsigned)batch_size,
                  last->train_cost);
    free(curve);
    unlink(path);
}

START_TEST(batch_size_one_is_stochastic_gradient_descent_and_learns) {
    assert_learns_with_batch(1, 10, 0.005);
}
END_TEST

START_TEST(batch_size_equal_to_the_training_set_is_batch_gradient_descent_and_learns) {
    assert_learns_with_batch(300, 200, 0.02);
}
END_TEST

START_TEST(a_batch_size_leaving_a_partial_last_batch_learns) {
    /* 300 = 4·64 + 44: every epoch ends with a batch of 44. */
    assert_learns_with_batch(64, 60, 0.01);
}
END_TEST

START_TEST(a_sigmoid_output_learns_the_moons) {
    /* One sigmoid unit for two classes; moons with noise 0.1 overlap little, so dev error < 5%
     * (observed at most 1.3% over data and trial seeds 1..20). */
    char path[CV_TEST_PATH];
    write_points_csv(path, "moons-sigmoid.csv", MOONS, 200, 0.1, 0, 7, -1);
    cv_trial_spec_t spec;
    make_spec(&spec, path, "{\"train\": 0.6, \"dev\": 0.2, \"test\": 0.2}",
              "\"output\": \"sigmoid\", \"hidden_units\": [16, 16], \"activation\": \"tanh\","
              " \"optimizer\": \"adam\", \"learning_rate\": 0.01, \"batch_size\": 32,"
              " \"epochs\": 60");
    ck_assert_int_eq(spec.output, CV_OUT_SIGMOID);
    cv_trial_result_t res;
    curve_t *curve = run_completed(&spec, &res);
    /* (2·16 + 16) + (16·16 + 16) + (16·1 + 1): one output unit. */
    ck_assert_uint_eq(res.n_params, 48 + 272 + 17);
    ck_assert_msg(res.best.dev_error < 0.05, "dev error %g", res.best.dev_error);
    ck_assert_msg(last_epoch(curve)->train_cost < curve->m[0].train_cost, "cost did not fall");
    free(curve);
    unlink(path);
}
END_TEST

/* Trains the moons (200 per class, noise 0.1, 60/20/20) toward targets smoothed by ε and returns
 * the last epoch's metrics. */
static cv_epoch_t smoothed_moons_last_epoch(double eps) {
    char path[CV_TEST_PATH], fields[512];
    write_points_csv(path, "moons-smoothed.csv", MOONS, 200, 0.1, 0, 7, -1);
    cv_trial_spec_t spec;
    snprintf(fields, sizeof fields,
             "\"hidden_units\": [16, 16], \"activation\": \"tanh\", \"optimizer\": \"adam\","
             " \"learning_rate\": 0.01, \"batch_size\": 32, \"epochs\": 60,"
             " \"label_smoothing\": %g", eps);
    make_spec(&spec, path, "{\"train\": 0.6, \"dev\": 0.2, \"test\": 0.2}", fields);
    cv_trial_result_t res;
    curve_t *curve = run_completed(&spec, &res);
    cv_epoch_t last = *last_epoch(curve);
    free(curve);
    unlink(path);
    return last;
}

/* With ε = 0.4 the targets are 0.8 and 0.2, so the network learns to stop at p ≈ 0.8 for the
 * true class: the reported cost, the plain cross-entropy, stays near −ln 0.8 ≈ 0.22 where the
 * unsmoothed network drives it toward 0; and it is below the entropy of the targets (0.50),
 * under which the smoothed cost the network minimizes cannot go, so what is reported is the
 * plain cross-entropy and not the smoothed one. The moons are still learnt. */
START_TEST(label_smoothing_learns_but_reports_the_plain_cross_entropy) {
    cv_epoch_t plain = smoothed_moons_last_epoch(0);
    cv_epoch_t smoothed = smoothed_moons_last_epoch(0.4);
    ck_assert_msg(smoothed.train_error < 0.05, "train error %g", smoothed.train_error);
    ck_assert_msg(plain.train_cost < 0.1, "unsmoothed train cost %g", plain.train_cost);
    ck_assert_msg(smoothed.train_cost > 0.15 && smoothed.train_cost < 0.45, /* 0.224 seen */
                  "smoothed train cost %g (unsmoothed %g)", smoothed.train_cost,
                  plain.train_cost);
}
END_TEST

START_TEST(batch_norm_on_hidden_layers_learns_and_scores_dev_in_inference_mode) {
    /* Dev metrics are computed in inference mode, i.e. with the running statistics: they must
     * be finite and as good as without batch norm (spirals: dev error < 10%; it was at most 2%
     * over seeds 1..20). Batch norm replaces each hidden bias b by γ and β. */
    cv_trial_result_t res;
    curve_t *curve = train_spirals(5, 2, "relu", 150, ", \"batch_norm\": true", &res);
    ck_assert_uint_eq(res.n_params, (2 * 32 + 64) + (32 * 32 + 64) + (32 * 2 + 2));
    for (int e = 0; e < curve->n; e++) {
        ck_assert(isfinite(curve->m[e].dev_cost));
        ck_assert(isfinite(curve->m[e].dev_error));
    }
    ck_assert_msg(res.best.dev_error < 0.10, "dev error %g", res.best.dev_error);
    ck_assert_msg(last_epoch(curve)->train_error < 0.05, "train error %g",
                  last_epoch(curve)->train_error);
    free(curve);
}
END_TEST

START_TEST(batch_norm_inference_of_a_row_does_not_depend_on_the_rest_of_the_batch) {
    /* With running statistics, scoring row r alone or within a batch gives the same logits;
     * with batch statistics a lone row would normalize to 0 in every unit. A few training passes
     * first move the running averages away from (0, 1). */
    cv_trial_spec_t spec;
    cv_trial_spec_defaults(&spec);
    spec.hidden_layers = 1;
    spec.hidden_units[0] = 8;
    spec.batch_norm[0] = 1;
    cv_arch_t arch;
    char err[CV_ERRLEN] = "";
    ck_assert_msg(cv_arch_from_spec(&arch, &spec, 2, 2, err) == 0, "%s", err);
    cv_nnf_net_t *net = NULL;
    ck_assert_msg(cv_nnf_create(&net, &arch, 16, err) == 0, "%s", err);
    cv_rng_t rng;
    cv_rng_seed(&rng, 42);
    cv_nnf_init(net, CV_INIT_HE, 1.0, &rng);
    float x[16 * 2];
    for (int i = 0; i < 32; i++)
        x[i] = (float)(3.0 + 2.0 * cv_rng_normal(&rng));
    for (int pass = 0; pass < 5; pass++)
        cv_nnf_forward(net, x, 16, NN_FORWARD_TRAIN, &rng);

    float together[16 * 2];
    cv_nnf_forward(net, x, 16, NN_FORWARD_INFER, NULL);
    memcpy(together, net->A[2], sizeof together);
    for (int r = 0; r < 16; r++) {
        cv_nnf_forward(net, x + 2 * r, 1, NN_FORWARD_INFER, NULL);
        ck_assert_float_eq(net->A[2][0], together[2 * r]);
        ck_assert_float_eq(net->A[2][1], together[2 * r + 1]);
    }
    /* And the lone rows do not all score alike, as they would with batch statistics. */
    ck_assert_float_ne(together[0], together[2]);
    cv_nnf_destroy(net);
}
END_TEST

START_TEST(a_label_outside_the_declared_classes_fails_the_trial_naming_the_labels) {
    /* classes: 2 declares labels 0 and 1; one row carries label 2. */
    char path[CV_TEST_PATH];
    write_points_csv(path, "bad-label.csv", MOONS, 50, 0.1, 0, 1, 2);
    cv_trial_spec_t spec;
    make_spec(&spec, path, "{\"train\": 0.6, \"dev\": 0.2, \"test\": 0.2}", "\"epochs\": 1");
    cv_trial_result_t res;
    char err[CV_ERRLEN] = "";
    int rc = cv_train_run(&spec, NULL, &res, err);
    ck_assert_int_lt(rc, 0);
    ck_assert_int_eq(res.status, CV_TRIAL_FAILED);
    ck_assert_msg(strstr(err, "label") != NULL, "error does not name the labels: %s", err);
    ck_assert_msg(strstr(err, "classes") != NULL, "error does not name classes: %s", err);
    ck_assert_str_eq(res.error, err);
    ck_assert_int_eq(res.epochs_run, 0);
    unlink(path);
}
END_TEST

static Suite *trainer_suite(void) {
    /* Bit-identical reruns need a fixed summation order in OpenBLAS, which only one thread
     * guarantees; the forked test processes inherit the setting. Learning is unaffected. */
    openblas_set_num_threads(1);
    Suite *s = suite_create("trainer");
    TCase *tc = tcase_create("learning");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, a_pruned_trial_reports_and_saves_its_best_epoch_so_far);
    tcase_add_test(tc, split_fractions_size_the_sets_and_the_data_size_the_network);
    tcase_add_test(tc, training_error_falls_to_below_5_percent_on_spirals);
    tcase_add_test(tc, a_network_without_hidden_layers_cannot_learn_the_spirals);
    tcase_add_test(tc, relu_network_also_learns_the_spirals);
    tcase_add_test(tc, a_big_network_on_few_examples_overfits_without_regularization);
    tcase_add_test(tc, l2_regularization_narrows_the_train_dev_gap);
    tcase_add_test(tc, dropout_narrows_the_train_dev_gap);
    tcase_add_test(tc, a_huge_learning_rate_diverges_and_says_when);
    tcase_add_test(tc, early_stopping_keeps_the_best_epoch_and_stops_patience_epochs_later);
    tcase_add_test(tc, the_same_spec_and_seed_give_bit_identical_runs);
    tcase_add_test(tc, batch_size_one_is_stochastic_gradient_descent_and_learns);
    tcase_add_test(tc, batch_size_equal_to_the_training_set_is_batch_gradient_descent_and_learns);
    tcase_add_test(tc, a_batch_size_leaving_a_partial_last_batch_learns);
    tcase_add_test(tc, a_sigmoid_output_learns_the_moons);
    tcase_add_test(tc, label_smoothing_learns_but_reports_the_plain_cross_entropy);
    tcase_add_test(tc, batch_norm_on_hidden_layers_learns_and_scores_dev_in_inference_mode);
    tcase_add_test(tc, batch_norm_inference_of_a_row_does_not_depend_on_the_rest_of_the_batch);
    tcase_add_test(tc, a_label_outside_the_declared_classes_fails_the_trial_naming_the_labels);
    tcase_add_test(tc, a_learning_rate_nudge_rebases_the_schedule_without_restarting);
    tcase_add_test(tc, a_keep_prob_nudge_turns_dropout_on_mid_training);
    tcase_add_test(tc, an_epochs_nudge_below_the_epochs_run_ends_the_trial_completed);
    suite_add_tcase(s, tc);
    return s;
}

CV_TEST_MAIN(trainer_suite)
