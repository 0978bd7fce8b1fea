/* Unit tests of server/job_spec.c: the documented defaults, the example jobs, each rejection
 * (whose message must name the field), the submission-time check of the fixed trial fields, and
 * composing a trial from a configuration. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "server/job_spec.h"
#include "testutil.h"

/* Pieces spliced into the jobs below: a valid fixed part, one log-scale parameter, a budget. */
#define TRIAL                                                                                      \
    "\"trial\": {\"dataset\": {\"format\": \"csv\", \"csv\": \"data.csv\", \"classes\": 2}}"
#define LR                                                                                         \
    "\"learning_rate\": {\"type\": \"float\", \"scale\": \"log\", \"min\": 1e-4, \"max\": 0.1}"
#define SPACE  "\"space\": {" LR "}"
#define BUDGET "\"budget\": {\"max_trials\": 24}"

/* Parses text, failing the test with the reason if it is refused. */
static void parse_ok(cv_job_spec_t *job, const char *text) {
    char err[CV_ERRLEN] = "";
    int rc = cv_job_spec_parse(job, text, strlen(text), err);
    ck_assert_msg(rc == 0, "refused: %s", err);
}

/* Parses text expecting refusal with a reason that contains each of needle and needle2 (which
 * may be NULL); returns the code. */
static int parse_fails(const char *text, const char *needle, const char *needle2) {
    cv_job_spec_t job;
    char err[CV_ERRLEN] = "";
    int rc = cv_job_spec_parse(&job, text, strlen(text), err);
    ck_assert_msg(rc != 0, "accepted: %s", text);
    ck_assert_msg(strstr(err, needle) != NULL, "reason \"%s\" lacks \"%s\"", err, needle);
    ck_assert_msg(needle2 == NULL || strstr(err, needle2) != NULL, "reason \"%s\" lacks \"%s\"",
                  err, needle2);
    ck_assert_ptr_null(job.trial); /* a failed parse owns nothing */
    return rc;
}

/* Exact reason of a refused job. */
static void parse_fails_with(const char *text, const char *want) {
    cv_job_spec_t job;
    char err[CV_ERRLEN] = "";
    ck_assert_int_ne(cv_job_spec_parse(&job, text, strlen(text), err), 0);
    ck_assert_str_eq(err, want);
}

/* Reads a file of the source tree into a new NUL-terminated buffer the caller frees. */
static char *read_source_file(const char *rel, size_t *len) {
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", CV_SOURCE_ROOT, rel);
    FILE *f = fopen(path, "rb");
    ck_assert_msg(f != NULL, "cannot open %s", path);
    char *buf = malloc(1 << 16);
    ck_assert_ptr_nonnull(buf);
    *len = fread(buf, 1, (1 << 16) - 1, f);
    buf[*len] = '\0';
    fclose(f);
    return buf;
}

/* ---- valid jobs ---- */

START_TEST(minimal_job_gets_the_documented_defaults) {
    cv_job_spec_t job;
    parse_ok(&job, "{" TRIAL ", " SPACE ", " BUDGET "}");
    ck_assert_str_eq(job.name, "");
    ck_assert_int_eq(job.objective, CV_OBJECTIVE_DEV_ERROR);
    ck_assert_uint_eq(job.max_trials, 24);
    ck_assert_uint_eq(job.max_parallel, 4);
    ck_assert_double_eq(job.max_seconds, 0);
    ck_assert_uint_eq(job.n_rounds, 3); /* round(0.4 · 24) = 10, then 14 split 7 + 7 */
    ck_assert_uint_eq(job.rounds[0], 10);
    ck_assert_uint_eq(job.rounds[1], 7);
    ck_assert_uint_eq(job.rounds[2], 7);
    ck_assert_double_eq(job.keep_fraction, 0.25);
    ck_assert_double_eq(job.margin, 0.1);
    ck_assert_uint_eq(job.seed, 1);
    ck_assert_double_eq(job.human_error, -1);
    ck_assert_uint_eq(job.space.n_params, 1);
    ck_assert_ptr_nonnull(cJSON_GetObjectItemCaseSensitive(job.trial, "dataset"));
    cv_job_spec_finish(&job);
}
END_TEST

START_TEST(every_field_is_read) {
    cv_job_spec_t job;
    parse_ok(&job, "{\"name\": \"sweep\", " TRIAL ", " SPACE ", \"objective\": \"dev_cost\", "
                   "\"budget\": {\"max_trials\": 10, \"max_parallel\": 3, \"max_seconds\": 600},"
                   " \"refine\": {\"rounds\": [5, 5], \"keep_fraction\": 0.5, \"margin\": 0},"
                   " \"seed\": 42, \"human_error\": 0.05}");
    ck_assert_str_eq(job.name, "sweep");
    ck_assert_int_eq(job.objective, CV_OBJECTIVE_DEV_COST);
    ck_assert_uint_eq(job.max_trials, 10);
    ck_assert_uint_eq(job.max_parallel, 3);
    ck_assert_double_eq(job.max_seconds, 600);
    ck_assert_uint_eq(job.n_rounds, 2);
    ck_assert_uint_eq(job.rounds[0], 5);
    ck_assert_uint_eq(job.rounds[1], 5);
    ck_assert_double_eq(job.keep_fraction, 0.5);
    ck_assert_double_eq(job.margin, 0);
    ck_assert_uint_eq(job.seed, 42);
    ck_assert_double_eq(job.human_error, 0.05);
    cv_job_spec_finish(&job);
}
END_TEST

START_TEST(rounds_as_fractions_scale_with_max_trials) {
    cv_job_spec_t job;
    /* 0.4, 0.3, 0.3 of 30 is exactly 12, 9, 9. */
    parse_ok(&job, "{" TRIAL ", " SPACE ", \"budget\": {\"max_trials\": 30}, "
                   "\"refine\": {\"rounds\": [0.4, 0.3, 0.3]}}");
    ck_assert_uint_eq(job.n_rounds, 3);
    ck_assert_uint_eq(job.rounds[0], 12);
    ck_assert_uint_eq(job.rounds[1], 9);
    ck_assert_uint_eq(job.rounds[2], 9);
    cv_job_spec_finish(&job);
    /* Of 8: quotas 3.2, 2.4, 2.4 floor to 3, 2, 2; the one left goes to the largest remainder,
     * 0.4, and of the two equal ones to the earlier round. */
    parse_ok(&job, "{" TRIAL ", " SPACE ", \"budget\": {\"max_trials\": 8}, "
                   "\"refine\": {\"rounds\": [0.4, 0.3, 0.3]}}");
    ck_assert_uint_eq(job.n_rounds, 3);
    ck_assert_uint_eq(job.rounds[0], 3);
    ck_assert_uint_eq(job.rounds[1], 3);
    ck_assert_uint_eq(job.rounds[2], 2);
    cv_job_spec_finish(&job);
    /* Of 2: quotas 0.8, 0.6, 0.6 give 1, 1, 0, and the empty round is dropped. */
    parse_ok(&job, "{" TRIAL ", " SPACE ", \"budget\": {\"max_trials\": 2}, "
                   "\"refine\": {\"rounds\": [0.4, 0.3, 0.3]}}");
    ck_assert_uint_eq(job.n_rounds, 2);
    ck_assert_uint_eq(job.rounds[0], 1);
    ck_assert_uint_eq(job.rounds[1], 1);
    cv_job_spec_finish(&job);
    /* Thirds of 100: 33 each, and the one left over to the largest remainder, the third's. */
    parse_ok(&job, "{" TRIAL ", " SPACE ", \"budget\": {\"max_trials\": 100}, "
                   "\"refine\": {\"rounds\": [0.3333333333, 0.3333333333, 0.3333333334]}}");
    ck_assert_uint_eq(job.n_rounds, 3);
    ck_assert_uint_eq(job.rounds[0] + job.rounds[1] + job.rounds[2], 100);
    ck_assert_uint_eq(job.rounds[2], 34);
    cv_job_spec_finish(&job);
}
END_TEST

START_TEST(the_example_job_takes_a_larger_budget) {
    size_t len;
    char *text = read_source_file("examples/small.json", &len);
    cJSON *root = cJSON_Parse(text);
    ck_assert_ptr_nonnull(root);
    cJSON *budget = cJSON_GetObjectItemCaseSensitive(root, "budget");
    cJSON_ReplaceItemInObjectCaseSensitive(budget, "max_trials", cJSON_CreateNumber(30));
    cv_job_spec_t job;
    char err[CV_ERRLEN] = "";
    int rc = cv_job_spec_from_json(&job, root, err);
    ck_assert_msg(rc == 0, "refused: %s", err);
    uint32_t sum = 0;
    for (size_t i = 0; i < job.n_rounds; i++)
        sum += job.rounds[i];
    ck_assert_uint_eq(sum, 30);
    ck_assert_uint_eq(job.n_rounds, 3);
    cv_job_spec_finish(&job);
    cJSON_Delete(root);
    free(text);
}
END_TEST

START_TEST(the_job_human_error_reaches_every_trial) {
    cv_job_spec_t job;
    parse_ok(&job, "{" TRIAL ", " SPACE ", " BUDGET ", \"human_error\": 0.04}");
    cJSON *trial = NULL, *values = cJSON_CreateObject();
    char err[CV_ERRLEN] = "";
    ck_assert_ptr_nonnull(cJSON_AddNumberToObject(values, "learning_rate", 0.01));
    ck_assert_int_eq(cv_job_spec_compose(&job, values, &trial, err), 0);
    ck_assert_double_eq(cJSON_GetObjectItemCaseSensitive(trial, "human_error")->valuedouble, 0.04);
    cJSON_Delete(trial);
    cJSON_Delete(values);
    cv_job_spec_finish(&job);
    /* The same value in trial too is accepted (a stored job reads back that way); another is
     * not. */
    parse_ok(&job, "{\"trial\": {\"dataset\": {\"format\": \"csv\", \"csv\": \"data.csv\", "
                   "\"classes\": 2}, \"human_error\": 0.04}, " SPACE ", " BUDGET
                   ", \"human_error\": 0.04}");
    cv_job_spec_finish(&job);
    parse_fails_with("{\"trial\": {\"dataset\": {\"format\": \"csv\", \"csv\": \"data.csv\", "
                     "\"classes\": 2}, \"human_error\": 0.1}, " SPACE ", " BUDGET
                     ", \"human_error\": 0.04}",
                     "human_error: also in trial.human_error with another value; give it once");
}
END_TEST

START_TEST(a_job_with_nothing_to_search_is_accepted) {
    cv_job_spec_t job;
    parse_ok(&job, "{" TRIAL ", \"space\": {}, \"budget\": {\"max_trials\": 1}}");
    ck_assert_uint_eq(job.space.n_params, 0);
    ck_assert_uint_eq(job.n_rounds, 1);
    cJSON *trial = NULL, *none = cJSON_CreateObject();
    char err[CV_ERRLEN] = "";
    ck_assert_int_eq(cv_job_spec_compose(&job, none, &trial, err), 0);
    ck_assert_ptr_nonnull(cJSON_GetObjectItemCaseSensitive(trial, "dataset"));
    cJSON_Delete(trial);
    cJSON_Delete(none);
    cv_job_spec_finish(&job);
    parse_ok(&job, "{" TRIAL ", " BUDGET "}"); /* no space at all */
    ck_assert_uint_eq(job.space.n_params, 0);
    cv_job_spec_finish(&job);
}
END_TEST

START_TEST(default_rounds_drop_empty_rounds_for_tiny_budgets) {
    cv_job_spec_t job;
    parse_ok(&job, "{" TRIAL ", " SPACE ", \"budget\": {\"max_trials\": 1}}");
    ck_assert_uint_eq(job.n_rounds, 1);
    ck_assert_uint_eq(job.rounds[0], 1);
    cv_job_spec_finish(&job);
    parse_ok(&job, "{" TRIAL ", " SPACE ", \"budget\": {\"max_trials\": 2}}");
    ck_assert_uint_eq(job.n_rounds, 2); /* round(0.8) = 1, then 1 + 0 */
    ck_assert_uint_eq(job.rounds[0], 1);
    ck_assert_uint_eq(job.rounds[1], 1);
    cv_job_spec_finish(&job);
    parse_ok(&job, "{" TRIAL ", " SPACE ", \"budget\": {\"max_trials\": 101}}");
    ck_assert_uint_eq(job.n_rounds, 3); /* round(40.4) = 40, then 61 split 31 + 30 */
    ck_assert_uint_eq(job.rounds[0], 40);
    ck_assert_uint_eq(job.rounds[1], 31);
    ck_assert_uint_eq(job.rounds[2], 30);
    cv_job_spec_finish(&job);
}
END_TEST

/* The shipped Fashion-MNIST jobs search what the course says to search, each on its scale; the
 * long one coarse to fine (more than one round), the main one with TPE and ASHA. */
static void check_fashion_example(const char *path, int main_job) {
    cv_job_spec_t job;
    size_t len;
    char *text = read_source_file(path, &len);
    char err[CV_ERRLEN] = "";
    ck_assert_msg(cv_job_spec_parse(&job, text, len, err) == 0, "%s refused: %s", path, err);
    free(text);
    static const struct {
        const char *name;
        cv_scale_t scale;
    } want[] = {{"learning_rate", CV_SCALE_LOG},     {"beta1", CV_SCALE_ONE_MINUS_LOG},
                {"batch_size", CV_SCALE_POWER_OF_TWO}, {"hidden_units", CV_SCALE_LOG},
                {"hidden_layers", CV_SCALE_LINEAR}, {"l2", CV_SCALE_LOG},
                {"keep_prob", CV_SCALE_LINEAR}};
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        const cv_space_param_t *p = cv_space_find(&job.space, want[i].name);
        /* The main job fixes the network's shape (1024-1024): the engine's best at its budget. */
        int shape = !strcmp(want[i].name, "hidden_units") || !strcmp(want[i].name, "hidden_layers");
        if (main_job && shape) continue;
        ck_assert_msg(p != NULL, "%s does not search %s", path, want[i].name);
        ck_assert_int_eq(p->scale, want[i].scale);
    }
    if (main_job) {
        ck_assert_str_eq(job.sampler->name, "tpe");
        ck_assert_str_eq(job.pruner->name, "asha");
    } else {
        ck_assert_uint_ge(job.n_rounds, 2);
    }
    ck_assert_uint_ge(job.max_parallel, 2);
    cv_job_spec_finish(&job);
}

START_TEST(fashion_mnist_examples_parse) {
    check_fashion_example("examples/fashion-mnist.json", 1);
    check_fashion_example("examples/fashion-mnist-long.json", 0);
}
END_TEST

START_TEST(small_example_parses) {
    cv_job_spec_t job;
    size_t len;
    char *text = read_source_file("examples/small.json", &len);
    char err[CV_ERRLEN] = "";
    ck_assert_msg(cv_job_spec_parse(&job, text, len, err) == 0, "refused: %s", err);
    free(text);
    ck_assert_uint_eq(job.max_trials, 8);
    ck_assert_ptr_nonnull(cv_space_find(&job.space, "activation"));
    cv_job_spec_finish(&job);
}
END_TEST

START_TEST(fixed_per_layer_arrays_are_accepted_beside_a_sampled_scalar) {
    cv_job_spec_t job;
    parse_ok(&job,
             "{\"trial\": {\"dataset\": {\"format\": \"csv\", \"csv\": \"d.csv\"}, "
             "\"hidden_units\": [64, 32], \"keep_prob\": [0.9, 0.8]}, " SPACE ", " BUDGET "}");
    cv_job_spec_finish(&job);
}
END_TEST

/* ---- rejections ---- */

START_TEST(wrong_type_of_max_trials_is_refused) {
    parse_fails("{" TRIAL ", " SPACE ", \"budget\": {\"max_trials\": \"24\"}}",
                "budget.max_trials: must be an integer, got string", NULL);
}
END_TEST

START_TEST(wrong_type_of_a_bound_is_refused) {
    parse_fails("{" TRIAL ", \"space\": {\"learning_rate\": {\"type\": \"float\", \"scale\": "
                "\"log\", \"min\": \"1e-4\", \"max\": 0.1}}, " BUDGET "}",
                "space.learning_rate.min: must be a number, got string", NULL);
}
END_TEST

START_TEST(trial_that_is_not_an_object_is_refused) {
    parse_fails("{\"trial\": [], " SPACE ", " BUDGET "}", "trial: must be an object, got array",
                NULL);
}
END_TEST

START_TEST(min_not_below_max_is_refused) {
    parse_fails("{" TRIAL ", \"space\": {\"l2\": {\"type\": \"float\", \"scale\": \"linear\", "
                "\"min\": 0.1, \"max\": 0.1}}, " BUDGET "}",
                "space.l2.max: must be greater than min", NULL);
}
END_TEST

START_TEST(log_scale_with_min_zero_is_refused) {
    parse_fails("{" TRIAL ", \"space\": {\"learning_rate\": {\"type\": \"float\", \"scale\": "
                "\"log\", \"min\": 0, \"max\": 0.1}}, " BUDGET "}",
                "space.learning_rate.min: log scale needs min > 0, got 0", NULL);
}
END_TEST

START_TEST(log_scale_with_negative_min_is_refused) {
    parse_fails("{" TRIAL ", \"space\": {\"hidden_units\": {\"type\": \"int\", \"scale\": "
                "\"log\", \"min\": -8, \"max\": 64}}, " BUDGET "}",
                "space.hidden_units.min: log scale needs min > 0, got -8", NULL);
}
END_TEST

START_TEST(unknown_parameter_is_refused) {
    parse_fails("{" TRIAL ", \"space\": {\"momentum\": {\"type\": \"float\", \"scale\": "
                "\"linear\", \"min\": 0.8, \"max\": 0.99}}, " BUDGET "}",
                "space.momentum: unknown parameter", NULL);
}
END_TEST

START_TEST(zero_max_trials_is_refused) {
    parse_fails("{" TRIAL ", " SPACE ", \"budget\": {\"max_trials\": 0}}",
                "budget.max_trials: must be an integer in [1, 100000], got 0", NULL);
}
END_TEST

START_TEST(absurd_max_trials_is_refused) {
    parse_fails("{" TRIAL ", " SPACE ", \"budget\": {\"max_trials\": 1e9}}",
                "budget.max_trials: must be an integer in [1, 100000], got 1000000000", NULL);
}
END_TEST

START_TEST(fractions_not_summing_to_one_are_refused) {
    parse_fails_with("{" TRIAL ", " SPACE ", " BUDGET ", \"refine\": {\"rounds\": [0.5, 0.3]}}",
                     "refine.rounds: fractions must sum to 1, got 0.8");
    parse_fails_with("{" TRIAL ", " SPACE ", " BUDGET ", \"refine\": {\"rounds\": [0.5, 2]}}",
                     "refine.rounds[1]: must be in (0, 1), got 2 (the rounds are fractions of "
                     "budget.max_trials, since one is not an integer)");
}
END_TEST

START_TEST(rounds_not_summing_to_max_trials_are_refused) {
    parse_fails("{" TRIAL ", " SPACE ", " BUDGET ", \"refine\": {\"rounds\": [12, 6, 2]}}",
                "refine.rounds: must sum to budget.max_trials (24), got 20", NULL);
}
END_TEST

START_TEST(empty_round_is_refused) {
    parse_fails("{" TRIAL ", " SPACE ", " BUDGET ", \"refine\": {\"rounds\": [24, 0]}}",
                "refine.rounds[1]", NULL);
}
END_TEST

START_TEST(unknown_top_level_field_is_refused) {
    parse_fails("{" TRIAL ", " SPACE ", " BUDGET ", \"priority\": 3}", "unknown field \"priority\"",
                NULL);
}
END_TEST

START_TEST(unknown_budget_field_is_refused) {
    parse_fails("{" TRIAL ", " SPACE ", \"budget\": {\"max_trials\": 4, \"max_trails\": 4}}",
                "budget: unknown field \"max_trails\"", NULL);
}
END_TEST

START_TEST(misspelt_fields_get_a_suggestion) {
    parse_fails_with("{" TRIAL ", " SPACE ", " BUDGET ", \"sede\": 3}",
                     "unknown field \"sede\" (did you mean \"seed\"?)");
    parse_fails_with("{" TRIAL ", " SPACE ", \"budget\": {\"max_trials\": 4, \"max_trails\": 4}}",
                     "budget: unknown field \"max_trails\" (did you mean \"max_trials\"?)");
    /* A fixed trial field is checked by the trial spec, whose reason gets "trial: " in front. */
    parse_fails_with("{\"trial\": {\"dataset\": {\"format\": \"csv\", \"csv\": \"data.csv\", "
                     "\"classes\": 2}, \"patiance\": 5}, " SPACE ", " BUDGET "}",
                     "trial: unknown field \"patiance\" (did you mean \"patience\"?)");
    parse_fails_with("{\"trial\": {\"dataset\": {\"format\": \"csv\", \"csv\": \"data.csv\", "
                     "\"classes\": 2, \"heder\": true}}, " SPACE ", " BUDGET "}",
                     "trial.dataset: unknown field \"heder\" (did you mean \"header\"?)");
}
END_TEST

START_TEST(duplicate_top_level_field_is_refused) {
    parse_fails("{" TRIAL ", " SPACE ", " BUDGET ", " BUDGET "}", "\"budget\" given twice", NULL);
}
END_TEST

START_TEST(keep_fraction_zero_is_refused) {
    parse_fails("{" TRIAL ", " SPACE ", " BUDGET ", \"refine\": {\"keep_fraction\": 0}}",
                "refine.keep_fraction: must be in (0, 1], got 0", NULL);
}
END_TEST

START_TEST(unknown_objective_is_refused) {
    parse_fails("{" TRIAL ", " SPACE ", " BUDGET ", \"objective\": \"dev_accuracy\"}",
                "objective: must be one of", NULL);
}
END_TEST

START_TEST(negative_seed_is_refused) {
    parse_fails("{" TRIAL ", " SPACE ", " BUDGET ", \"seed\": -1}", "seed: must be an integer",
                NULL);
}
END_TEST

START_TEST(parameter_both_fixed_and_searched_is_refused) {
    parse_fails("{\"trial\": {\"dataset\": {\"format\": \"csv\", \"csv\": \"d.csv\"}, "
                "\"learning_rate\": 0.01}, " SPACE ", " BUDGET "}",
                "space.learning_rate: also fixed in trial", NULL);
}
END_TEST

START_TEST(missing_budget_is_refused) {
    parse_fails("{" TRIAL ", " SPACE "}", "budget: required", NULL);
}
END_TEST

START_TEST(malformed_text_is_refused_as_a_format_error) {
    cv_job_spec_t job;
    char err[CV_ERRLEN] = "";
    const char *text = "{\"trial\": {";
    ck_assert_int_eq(cv_job_spec_parse(&job, text, strlen(text), err), CV_EFORMAT);
}
END_TEST

START_TEST(nesting_beyond_the_depth_limit_is_refused) {
    cv_job_spec_t job;
    char err[CV_ERRLEN] = "", text[512];
    size_t n = 0;
    n += (size_t)snprintf(text, sizeof text, "{\"name\": ");
    for (int i = 0; i < 100; i++)
        text[n++] = '[';
    for (int i = 0; i < 100; i++)
        text[n++] = ']';
    text[n++] = '}';
    text[n] = '\0';
    ck_assert_int_eq(cv_job_spec_parse(&job, text, n, err), CV_ERANGE);
}
END_TEST

/* ---- the fixed trial fields against the trial spec ---- */

START_TEST(bad_fixed_value_is_reported_under_trial) {
    parse_fails("{\"trial\": {\"dataset\": {\"format\": \"csv\", \"csv\": \"d.csv\"}, "
                "\"epochs\": 0}, " SPACE ", " BUDGET "}",
                "trial.epochs: must be an integer in [1, 100000], got 0", NULL);
}
END_TEST

START_TEST(bad_dataset_field_is_reported_under_trial) {
    parse_fails("{\"trial\": {\"dataset\": {\"format\": \"idx\", \"images\": \"i.gz\"}}, " SPACE
                ", " BUDGET "}",
                "trial.dataset.labels", NULL);
}
END_TEST

START_TEST(missing_dataset_is_reported_under_trial) {
    parse_fails("{\"trial\": {\"epochs\": 3}, " SPACE ", " BUDGET "}", "trial.dataset", NULL);
}
END_TEST

START_TEST(bound_the_trial_spec_refuses_is_reported_under_space) {
    /* keep_prob must lie in (0, 1]; the largest value of this interval does not. */
    parse_fails("{" TRIAL ", \"space\": {\"keep_prob\": {\"type\": \"float\", \"scale\": "
                "\"linear\", \"min\": 0.99, \"max\": 1.5}}, " BUDGET "}",
                "space.keep_prob", "rejected by the trial spec: keep_prob: must be in (0, 1]");
}
END_TEST

START_TEST(categorical_value_the_trial_spec_refuses_is_reported_under_space) {
    parse_fails("{" TRIAL ", \"space\": {\"activation\": {\"type\": \"categorical\", "
                "\"values\": [\"relu\", \"swish\"]}}, " BUDGET "}",
                "space.activation", "swish");
}
END_TEST

START_TEST(label_smoothing_and_cosine_decay_are_searchable) {
    cv_job_spec_t job;
    parse_ok(&job, "{" TRIAL ", \"space\": {\"label_smoothing\": {\"type\": \"float\", "
                   "\"scale\": \"linear\", \"min\": 0, \"max\": 0.2}, \"decay\": {\"type\": "
                   "\"categorical\", \"values\": [\"exponential\", \"cosine\"]}}, " BUDGET "}");
    ck_assert_uint_eq(job.space.n_params, 2);
    ck_assert_str_eq(job.space.params[0].name, "label_smoothing");
    ck_assert_str_eq(job.space.params[1].values[1], "cosine");
    cv_job_spec_finish(&job);
}
END_TEST

START_TEST(label_smoothing_of_one_half_is_reported_under_space) {
    parse_fails("{" TRIAL ", \"space\": {\"label_smoothing\": {\"type\": \"float\", "
                "\"scale\": \"linear\", \"min\": 0, \"max\": 0.5}}, " BUDGET "}",
                "space.label_smoothing",
                "rejected by the trial spec: label_smoothing: must be in [0, 0.5)");
}
END_TEST

START_TEST(fixed_array_that_a_layer_count_breaks_is_refused) {
    /* hidden_layers may be 1..3 but the fixed keep_prob lists 2 layers. */
    parse_fails("{\"trial\": {\"dataset\": {\"format\": \"csv\", \"csv\": \"d.csv\"}, "
                "\"keep_prob\": [0.9, 0.8]}, \"space\": {\"hidden_layers\": {\"type\": \"int\", "
                "\"scale\": \"linear\", \"min\": 1, \"max\": 3}}, " BUDGET "}",
                "trial.keep_prob", "per-layer array");
}
END_TEST

/* ---- composing a trial ---- */

START_TEST(compose_adds_the_configuration_to_the_fixed_fields) {
    cv_job_spec_t job;
    char err[CV_ERRLEN] = "";
    cJSON *trial = NULL;
    parse_ok(&job, "{" TRIAL ", " SPACE ", " BUDGET "}");
    cJSON *values = cJSON_Parse("{\"learning_rate\": 0.003}");
    ck_assert_int_eq(cv_job_spec_compose(&job, values, &trial, err), 0);
    ck_assert_double_eq(cJSON_GetObjectItemCaseSensitive(trial, "learning_rate")->valuedouble,
                        0.003);
    ck_assert_ptr_nonnull(cJSON_GetObjectItemCaseSensitive(trial, "dataset"));
    ck_assert_ptr_null(cJSON_GetObjectItemCaseSensitive(job.trial, "learning_rate"));
    cJSON_Delete(trial);
    cJSON_Delete(values);
    cv_job_spec_finish(&job);
}
END_TEST

START_TEST(compose_refuses_a_value_that_is_fixed) {
    cv_job_spec_t job;
    char err[CV_ERRLEN] = "";
    cJSON *trial = NULL;
    parse_ok(&job, "{\"trial\": {\"dataset\": {\"format\": \"csv\", \"csv\": \"d.csv\"}, "
                   "\"epochs\": 3}, " SPACE ", " BUDGET "}");
    cJSON *values = cJSON_Parse("{\"epochs\": 5}");
    ck_assert_int_eq(cv_job_spec_compose(&job, values, &trial, err), CV_EINVAL);
    ck_assert_ptr_null(trial);
    ck_assert_ptr_nonnull(strstr(err, "configuration.epochs"));
    cJSON_Delete(values);
    cv_job_spec_finish(&job);
}
END_TEST

START_TEST(finish_accepts_null_and_an_initialized_job) {
    cv_job_spec_t job;
    cv_job_spec_finish(NULL);
    cv_job_spec_init(&job);
    cv_job_spec_finish(&job);
    ck_assert_ptr_null(job.trial);
}
END_TEST

/* ---- allocation failures ---- */

START_TEST(every_failed_allocation_is_refused_without_a_leak) {
    size_t len;
    char *text = read_source_file("examples/fashion-mnist.json", &len);
    int rc = -1;
    for (long k = 0; rc != 0; k++) {
        cv_job_spec_t job;
        char err[CV_ERRLEN] = "";
        cv_test_cjson_fail_after(k);
        rc = cv_job_spec_parse(&job, text, len, err);
        cv_test_cjson_restore();
        /* cJSON cannot tell a failed allocation from bad text, so decoding reports CV_EFORMAT. */
        ck_assert_msg(rc == 0 || rc == CV_ENOMEM || rc == CV_EFORMAT, "after %ld: %d %s", k, rc,
                      err);
        ck_assert(rc == 0 ? job.trial != NULL : job.trial == NULL);
        cv_job_spec_finish(&job);
    }
    free(text);
}
END_TEST

/* ---- search ---- */

START_TEST(search_defaults_to_random_sampling_without_pruning) {
    cv_job_spec_t job;
    parse_ok(&job, "{" TRIAL ", " SPACE ", " BUDGET "}");
    ck_assert_str_eq(job.sampler->name, "random");
    ck_assert_str_eq(job.pruner->name, "none");
    ck_assert_ptr_null(job.sampler_settings);
    ck_assert_ptr_null(job.pruner_settings);
    cv_job_spec_finish(&job);
}
END_TEST

START_TEST(search_names_its_sampler_and_pruner_with_their_settings) {
    cv_job_spec_t job;
    parse_ok(&job, "{" TRIAL ", " SPACE ", " BUDGET ", \"search\": {\"sampler\": \"random\", "
                   "\"pruner\": \"none\", \"none\": {}}}");
    ck_assert_str_eq(job.pruner->name, "none");
    ck_assert_ptr_nonnull(job.pruner_settings);
    ck_assert_ptr_null(job.sampler_settings);
    cv_job_spec_finish(&job);
}
END_TEST

START_TEST(search_refuses_unknown_strategies_and_misplaced_settings) {
    parse_fails_with("{" TRIAL ", " SPACE ", " BUDGET ", \"search\": {\"sampler\": \"grid\"}}",
                     "search.sampler: must be \"random\" or \"tpe\", got \"grid\"");
    parse_fails_with("{" TRIAL ", " SPACE ", " BUDGET ", \"search\": {\"pruner\": \"hyperband\"}}",
                     "search.pruner: must be \"none\", \"asha\" or \"median\", got "
                     "\"hyperband\"");
    parse_fails_with("{" TRIAL ", " SPACE ", " BUDGET ", \"search\": {\"bayes\": {}}}",
                     "search: unknown field \"bayes\" (sampler, pruner, or the settings of the "
                     "chosen ones: random, tpe, none, asha, median)");
    parse_fails_with("{" TRIAL ", " SPACE ", " BUDGET ", \"search\": {\"none\": {\"x\": 1}}}",
                     "search.none: takes no settings");
    parse_fails_with("{" TRIAL ", " SPACE ", " BUDGET ", \"search\": {\"none\": {}, \"none\": {}}}",
                     "search.none: given twice");
    parse_fails_with("{" TRIAL ", " SPACE ", " BUDGET ", \"search\": []}",
                     "search: must be an object, got array");
    parse_fails_with("{" TRIAL ", " SPACE ", " BUDGET ", \"search\": {\"sampler\": 3}}",
                     "search.sampler: must be a string, got number");
}
END_TEST

START_TEST(max_epochs_come_from_the_fixed_trial_the_space_or_the_default) {
    cv_job_spec_t job;
    parse_ok(&job, "{" TRIAL ", " SPACE ", " BUDGET "}");
    ck_assert_int_eq(cv_job_spec_max_epochs(&job), 10);
    cv_job_spec_finish(&job);
    parse_ok(&job, "{" TRIAL ", \"space\": {" LR ", \"epochs\": {\"type\": \"int\", "
                   "\"scale\": \"linear\", \"min\": 3, \"max\": 30}}, " BUDGET "}");
    ck_assert_int_eq(cv_job_spec_max_epochs(&job), 30);
    ck_assert_int_eq(cv_job_spec_trial_epochs(&job, "{\"learning_rate\":0.01,\"epochs\":7}"), 7);
    cv_job_spec_finish(&job);
}
END_TEST

/* ---- trainers ---------------------------------------------------------------------------- */

#define PROGRAM_SPACE                                                                              \
    "\"space\": {\"lr\": {\"type\": \"float\", \"scale\": \"log\", \"min\": 1e-4, \"max\": 0.1},"   \
    " \"width\": {\"type\": \"int\", \"scale\": \"power_of_two\", \"min\": 16, \"max\": 256},"      \
    " \"act\": {\"type\": \"categorical\", \"values\": [\"relu\", \"tanh\"]},"                      \
    " \"nesterov\": {\"type\": \"categorical\", \"values\": [true, false]}}"

START_TEST(builtin_is_the_default_trainer) {
    cv_job_spec_t job;
    parse_ok(&job, "{" TRIAL ", " SPACE ", " BUDGET "}");
    ck_assert_int_eq(job.trainer_kind, CV_TRAINER_BUILTIN);
    ck_assert_str_eq(job.trainer, "builtin");
    cv_job_spec_finish(&job);
    parse_ok(&job, "{\"trainer\": \"builtin\", " TRIAL ", " SPACE ", " BUDGET "}");
    ck_assert_int_eq(job.trainer_kind, CV_TRAINER_BUILTIN);
    cv_job_spec_finish(&job);
}
END_TEST

/* A program's job searches names caviar does not know, of the types it gives them, and fixes
 * anything it likes; no dataset is needed. */
START_TEST(a_program_job_searches_any_names_and_needs_no_dataset) {
    cv_job_spec_t job;
    parse_ok(&job, "{\"trainer\": \"torch-fmnist\", \"trial\": {\"epochs\": 6, \"subset\": 600,"
                   " \"layers\": [64, 32]}, " PROGRAM_SPACE ", " BUDGET "}");
    ck_assert_int_eq(job.trainer_kind, CV_TRAINER_EXTERNAL);
    ck_assert_str_eq(job.trainer, "torch-fmnist");
    ck_assert_int_eq((int)job.space.n_params, 4);
    ck_assert_int_eq(job.space.params[1].type, CV_PARAM_INT);
    ck_assert_int_eq(job.space.params[2].type, CV_PARAM_CATEGORICAL);
    ck_assert_int_eq(job.space.params[2].is_bool, 0);
    ck_assert_int_eq(job.space.params[3].is_bool, 1);
    ck_assert_int_eq(cv_job_spec_max_epochs(&job), 6);
    cv_job_spec_finish(&job);
    parse_ok(&job, "{\"trainer\": \"ask\", \"trial\": {}, " PROGRAM_SPACE ", " BUDGET "}");
    ck_assert_int_eq(job.trainer_kind, CV_TRAINER_ASK);
    ck_assert_int_eq(cv_job_spec_max_epochs(&job), 1); /* a program reports one epoch by default */
    cv_job_spec_finish(&job);
}
END_TEST

START_TEST(a_builtin_job_still_refuses_names_the_trainer_does_not_know) {
    parse_fails("{" TRIAL ", " PROGRAM_SPACE ", " BUDGET "}", "space.lr: unknown parameter", NULL);
}
END_TEST

START_TEST(bad_trainers_and_program_fields_are_refused_by_name) {
    parse_fails("{\"trainer\": \"my trainer\", \"trial\": {}, " BUDGET "}", "trainer: ", "letters");
    parse_fails("{\"trainer\": \"\", \"trial\": {}, " BUDGET "}", "trainer: ", NULL);
    parse_fails("{\"trainer\": 7, \"trial\": {}, " BUDGET "}", "trainer: ", "string");
    parse_fails("{\"trainer\": \"t\", \"trial\": {\"trainer\": \"sh\"}, " BUDGET "}",
                "trial.trainer: reserved", NULL);
    parse_fails("{\"trainer\": \"t\", \"trial\": {}, \"space\": {\"trainer\": {\"type\": "
                "\"categorical\", \"values\": [\"a\"]}}, " BUDGET "}",
                "space.trainer: reserved", NULL);
    parse_fails("{\"trainer\": \"t\", \"trial\": {}, \"space\": {\"-x\": {\"type\": "
                "\"categorical\", \"values\": [\"a\"]}}, " BUDGET "}",
                "space.-x: a parameter name", NULL);
    parse_fails("{\"trainer\": \"t\", \"trial\": {\"epochs\": 0}, " BUDGET "}",
                "trial.epochs: ", NULL);
    parse_fails("{\"trainer\": \"t\", \"trial\": {\"epochs\": \"ten\"}, " BUDGET "}",
                "trial.epochs: ", NULL);
    parse_fails("{\"trainer\": \"t\", \"trial\": {}, \"space\": {\"epochs\": {\"type\": "
                "\"float\", \"scale\": \"linear\", \"min\": 1, \"max\": 5}}, " BUDGET "}",
                "space.epochs.type", NULL);
}
END_TEST

static Suite *job_spec_suite(void) {
    Suite *s = suite_create("job_spec");
    TCase *valid = tcase_create("valid");
    tcase_add_test(valid, minimal_job_gets_the_documented_defaults);
    tcase_add_test(valid, every_field_is_read);
    tcase_add_test(valid, default_rounds_drop_empty_rounds_for_tiny_budgets);
    tcase_add_test(valid, rounds_as_fractions_scale_with_max_trials);
    tcase_add_test(valid, the_example_job_takes_a_larger_budget);
    tcase_add_test(valid, a_job_with_nothing_to_search_is_accepted);
    tcase_add_test(valid, the_job_human_error_reaches_every_trial);
    tcase_add_test(valid, fashion_mnist_examples_parse);
    tcase_add_test(valid, small_example_parses);
    tcase_add_test(valid, fixed_per_layer_arrays_are_accepted_beside_a_sampled_scalar);
    tcase_add_test(valid, search_defaults_to_random_sampling_without_pruning);
    tcase_add_test(valid, search_names_its_sampler_and_pruner_with_their_settings);
    tcase_add_test(valid, max_epochs_come_from_the_fixed_trial_the_space_or_the_default);
    tcase_add_test(valid, search_refuses_unknown_strategies_and_misplaced_settings);
    suite_add_tcase(s, valid);

    TCase *reject = tcase_create("reject");
    tcase_add_test(reject, wrong_type_of_max_trials_is_refused);
    tcase_add_test(reject, wrong_type_of_a_bound_is_refused);
    tcase_add_test(reject, trial_that_is_not_an_object_is_refused);
    tcase_add_test(reject, min_not_below_max_is_refused);
    tcase_add_test(reject, log_scale_with_min_zero_is_refused);
    tcase_add_test(reject, log_scale_with_negative_min_is_refused);
    tcase_add_test(reject, unknown_parameter_is_refused);
    tcase_add_test(reject, zero_max_trials_is_refused);
    tcase_add_test(reject, absurd_max_trials_is_refused);
    tcase_add_test(reject, rounds_not_summing_to_max_trials_are_refused);
    tcase_add_test(reject, fractions_not_summing_to_one_are_refused);
    tcase_add_test(reject, empty_round_is_refused);
    tcase_add_test(reject, unknown_top_level_field_is_refused);
    tcase_add_test(reject, unknown_budget_field_is_refused);
    tcase_add_test(reject, misspelt_fields_get_a_suggestion);
    tcase_add_test(reject, duplicate_top_level_field_is_refused);
    tcase_add_test(reject, keep_fraction_zero_is_refused);
    tcase_add_test(reject, unknown_objective_is_refused);
    tcase_add_test(reject, negative_seed_is_refused);
    tcase_add_test(reject, parameter_both_fixed_and_searched_is_refused);
    tcase_add_test(reject, missing_budget_is_refused);
    tcase_add_test(reject, malformed_text_is_refused_as_a_format_error);
    tcase_add_test(reject, nesting_beyond_the_depth_limit_is_refused);
    suite_add_tcase(s, reject);

    TCase *trainers = tcase_create("trainers");
    tcase_add_test(trainers, builtin_is_the_default_trainer);
    tcase_add_test(trainers, a_program_job_searches_any_names_and_needs_no_dataset);
    tcase_add_test(trainers, a_builtin_job_still_refuses_names_the_trainer_does_not_know);
    tcase_add_test(trainers, bad_trainers_and_program_fields_are_refused_by_name);
    suite_add_tcase(s, trainers);

    TCase *trial = tcase_create("trial");
    tcase_add_test(trial, bad_fixed_value_is_reported_under_trial);
    tcase_add_test(trial, bad_dataset_field_is_reported_under_trial);
    tcase_add_test(trial, missing_dataset_is_reported_under_trial);
    tcase_add_test(trial, bound_the_trial_spec_refuses_is_reported_under_space);
    tcase_add_test(trial, categorical_value_the_trial_spec_refuses_is_reported_under_space);
    tcase_add_test(trial, label_smoothing_and_cosine_decay_are_searchable);
    tcase_add_test(trial, label_smoothing_of_one_half_is_reported_under_space);
    tcase_add_test(trial, fixed_array_that_a_layer_count_breaks_is_refused);
    tcase_add_test(trial, compose_adds_the_configuration_to_the_fixed_fields);
    tcase_add_test(trial, compose_refuses_a_value_that_is_fixed);
    tcase_add_test(trial, finish_accepts_null_and_an_initialized_job);
    suite_add_tcase(s, trial);

    TCase *faults = tcase_create("faults");
    tcase_add_test(faults, every_failed_allocation_is_refused_without_a_leak);
    suite_add_tcase(s, faults);
    return s;
}

CV_TEST_MAIN(job_spec_suite)
