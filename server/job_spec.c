/* Job spec parsing and validation, including the submission-time check of the fixed trial fields
 * against the trial spec. See job_spec.h for the contracts and schemas/job.schema.json for the
 * format. */
#include "server/job_spec.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "common/err.h"
#include "common/json.h"
#include "common/message.h"
#include "common/rng.h"
#include "common/trial_spec.h"

#define CHECK_STREAM 0x6a6f62u /* rng stream of the submission-time sample ("job" in ASCII) */

void cv_job_spec_init(cv_job_spec_t *job) {
    memset(job, 0, sizeof *job);
    job->objective = CV_OBJECTIVE_DEV_ERROR;
    job->max_parallel = 4;
    job->keep_fraction = 0.25;
    job->margin = 0.1;
    job->seed = 1;
    job->human_error = -1.0;
    job->sampler = &cv_sampler_random;
    job->pruner = &cv_pruner_none;
    job->trainer_kind = CV_TRAINER_BUILTIN;
    strcpy(job->trainer, "builtin");
}

void cv_job_spec_finish(cv_job_spec_t *job) {
    if (job == NULL) return;
    cJSON_Delete(job->trial);
    cJSON_Delete(job->sampler_settings);
    cJSON_Delete(job->pruner_settings);
    cv_job_spec_init(job);
}

const char *cv_objective_name(cv_objective_t objective) {
    return objective == CV_OBJECTIVE_DEV_COST ? "dev_cost" : "dev_error";
}

/* Reads v, an integer in [lo, hi], into *out. */
static int read_u32(const cJSON *v, const char *path, int64_t lo, int64_t hi, uint32_t *out,
                    char *err) {
    int64_t x;
    int rc = cv_json_get_int(v, path, lo, hi, &x, err);
    if (rc == 0) *out = (uint32_t)x;
    return rc;
}

static int parse_name(cv_job_spec_t *job, const cJSON *v, char *err) {
    if (v == NULL) return CV_OK;
    int rc = cv_json_get_string(v, "name", job->name, sizeof job->name, err);
    for (const char *c = job->name; rc == 0 && *c; c++)
        if ((unsigned char)*c < 0x20 || *c == 0x7f)
            rc = cv_errf(err, CV_EINVAL, "name: must not contain control characters");
    if (rc != 0) job->name[0] = '\0';
    return rc;
}

/* Reads "trainer": "builtin" (the default), "ask" or a program's name, [A-Za-z0-9_.-]{1,64}. */
static int parse_trainer(cv_job_spec_t *job, const cJSON *v, char *err) {
    if (v == NULL) return CV_OK;
    int rc = cv_json_get_string(v, "trainer", job->trainer, sizeof job->trainer, err);
    if (rc == 0 && !cv_msg_trainer_name_ok(job->trainer))
        rc = cv_errf(err, CV_EINVAL, "trainer: \"builtin\", \"ask\" or the name of a program "
                     "workers offer: 1 to %d letters, digits, '_', '.' or '-'",
                     CV_JOB_TRAINER_MAX);
    if (rc != 0) {
        strcpy(job->trainer, "builtin");
        return rc;
    }
    job->trainer_kind = !strcmp(job->trainer, "builtin") ? CV_TRAINER_BUILTIN
                        : !strcmp(job->trainer, "ask")   ? CV_TRAINER_ASK
                                                         : CV_TRAINER_EXTERNAL;
    return CV_OK;
}

/* Copies the fixed trial fields, parses the space (absent or {} is a space of no parameters,
 * whose one configuration is the fixed trial) and refuses a parameter that is both. */
static int parse_trial_and_space(cv_job_spec_t *job, const cJSON *obj, char *err) {
    const cJSON *trial = cJSON_GetObjectItemCaseSensitive(obj, "trial");
    const cJSON *space = cJSON_GetObjectItemCaseSensitive(obj, "space");
    if (trial == NULL) return cv_errf(err, CV_EINVAL, "trial: required");
    if (!cJSON_IsObject(trial))
        return cv_errf(err, CV_EINVAL, "trial: must be an object, got %s",
                       cv_json_type_name(trial));
    /* No space, or an empty one, searches nothing: the job runs its one fixed configuration. */
    int rc = CV_OK;
    memset(&job->space, 0, sizeof job->space);
    int open = job->trainer_kind != CV_TRAINER_BUILTIN;
    if (space != NULL && !(cJSON_IsObject(space) && space->child == NULL))
        rc = open ? cv_space_from_json_open(&job->space, space, err)
                  : cv_space_from_json(&job->space, space, err);
    if (rc != 0) return rc;
    if (open && cJSON_GetObjectItemCaseSensitive(trial, CV_JOB_TRAINER_FIELD))
        return cv_errf(err, CV_EINVAL, "trial.trainer: reserved: the trainer is named by the "
                       "job's own \"trainer\" field");
    if (open && cv_space_find(&job->space, CV_JOB_TRAINER_FIELD))
        return cv_errf(err, CV_EINVAL, "space.trainer: reserved: the trainer is named by the "
                       "job's own \"trainer\" field");
    for (size_t i = 0; i < job->space.n_params; i++) {
        const char *name = job->space.params[i].name;
        if (cJSON_GetObjectItemCaseSensitive(trial, name) != NULL)
            return cv_errf(err, CV_EINVAL,
                           "space.%s: also fixed in trial; a parameter is searched or fixed, "
                           "not both",
                           name);
    }
    job->trial = cJSON_Duplicate(trial, 1);
    if (job->trial == NULL) return cv_errf(err, CV_ENOMEM, "trial: out of memory");
    return CV_OK;
}

static int parse_objective(cv_job_spec_t *job, const cJSON *v, char *err) {
    static const char *const names[] = {"dev_error", "dev_cost"};
    int which = 0;
    if (v == NULL) return CV_OK;
    int rc = cv_json_get_enum(v, "objective", names, 2, &which, err);
    if (rc == 0) job->objective = which == 1 ? CV_OBJECTIVE_DEV_COST : CV_OBJECTIVE_DEV_ERROR;
    return rc;
}

static int parse_budget(cv_job_spec_t *job, const cJSON *obj, char *err) {
    static const char *const fields[] = {"max_trials", "max_parallel", "max_seconds"};
    static const cv_json_range_t positive = {0, HUGE_VAL, 1, 0};
    if (obj == NULL) return cv_errf(err, CV_EINVAL, "budget: required");
    int rc = cv_json_check_fields(obj, "budget", fields, 3, err);
    if (rc != 0) return rc;
    const cJSON *trials = cJSON_GetObjectItemCaseSensitive(obj, "max_trials");
    const cJSON *parallel = cJSON_GetObjectItemCaseSensitive(obj, "max_parallel");
    const cJSON *seconds = cJSON_GetObjectItemCaseSensitive(obj, "max_seconds");
    if (trials == NULL) return cv_errf(err, CV_EINVAL, "budget.max_trials: required");
    rc = read_u32(trials, "budget.max_trials", 1, CV_JOB_MAX_TRIALS, &job->max_trials, err);
    if (rc == 0 && parallel != NULL)
        rc = read_u32(parallel, "budget.max_parallel", 1, CV_JOB_MAX_PARALLEL, &job->max_parallel,
                      err);
    if (rc == 0 && seconds != NULL)
        rc = cv_json_get_number(seconds, "budget.max_seconds", positive, &job->max_seconds, err);
    return rc;
}

/* The default schedule described in job_spec.h. */
static void default_rounds(cv_job_spec_t *job) {
    uint32_t coarse = (uint32_t)lround(0.4 * job->max_trials);
    if (coarse < 1) coarse = 1;
    uint32_t rest = job->max_trials - coarse;
    job->n_rounds = 0;
    job->rounds[job->n_rounds++] = coarse;
    if (rest - rest / 2 > 0) job->rounds[job->n_rounds++] = rest - rest / 2;
    if (rest / 2 > 0) job->rounds[job->n_rounds++] = rest / 2;
}

/* Turns round fractions f[0..n) (summing to 1) into counts summing to max_trials by the largest
 * remainder: each round gets floor(f · max_trials), and the trials left over go one each to the
 * rounds with the largest fractional parts (the earlier round on a tie). Rounds of 0 are dropped,
 * as in the default schedule. */
static void rounds_from_fractions(cv_job_spec_t *job, const double *f, size_t n) {
    double rem[CV_JOB_MAX_ROUNDS];
    uint32_t count[CV_JOB_MAX_ROUNDS], given = 0;
    for (size_t i = 0; i < n; i++) {
        double quota = f[i] * job->max_trials;
        count[i] = (uint32_t)floor(quota);
        if (count[i] > job->max_trials) count[i] = job->max_trials;
        rem[i] = quota - count[i];
        given += count[i];
    }
    while (given < job->max_trials) {
        size_t best = 0;
        for (size_t i = 1; i < n; i++)
            if (rem[i] > rem[best]) best = i;
        count[best]++;
        rem[best] = -1; /* each round gets at most one of the leftovers */
        given++;
    }
    while (given > job->max_trials) { /* fractions summing a hair above 1 */
        size_t last = n;
        while (last > 0 && count[last - 1] == 0)
            last--;
        count[last - 1]--;
        given--;
    }
    job->n_rounds = 0;
    for (size_t i = 0; i < n; i++)
        if (count[i] > 0) job->rounds[job->n_rounds++] = count[i];
}

/* refine.rounds: either trial counts summing to budget.max_trials, or fractions of it in (0, 1)
 * summing to 1, rounded by rounds_from_fractions. An entry that is not an integer makes the
 * whole array fractions. */
static int parse_rounds(cv_job_spec_t *job, const cJSON *v, char *err) {
    static const cv_json_range_t fraction = {0, 1, 1, 1};
    if (!cJSON_IsArray(v))
        return cv_errf(err, CV_EINVAL, "refine.rounds: must be an array, got %s",
                       cv_json_type_name(v));
    int n = cJSON_GetArraySize(v);
    if (n < 1 || n > CV_JOB_MAX_ROUNDS)
        return cv_errf(err, CV_EINVAL, "refine.rounds: needs 1 to %d rounds, got %d",
                       CV_JOB_MAX_ROUNDS, n);
    int fractions = 0;
    for (const cJSON *r = v->child; r != NULL; r = r->next)
        if (cJSON_IsNumber(r) && isfinite(r->valuedouble) &&
            r->valuedouble != floor(r->valuedouble))
            fractions = 1;
    uint64_t sum = 0;
    double f[CV_JOB_MAX_ROUNDS], fsum = 0;
    job->n_rounds = 0;
    for (const cJSON *r = v->child; r != NULL; r = r->next) {
        char path[48];
        snprintf(path, sizeof path, "refine.rounds[%zu]", job->n_rounds);
        int rc = fractions
                     ? cv_json_get_number(r, path, fraction, &f[job->n_rounds], err)
                     : read_u32(r, path, 1, CV_JOB_MAX_TRIALS, &job->rounds[job->n_rounds], err);
        if (rc != 0 && fractions && err != NULL) {
            char why[CV_ERRLEN];
            snprintf(why, sizeof why, "%s", err);
            return cv_errf(err, rc,
                           "%s (the rounds are fractions of budget.max_trials, since "
                           "one is not an integer)",
                           why);
        }
        if (rc != 0) return rc;
        if (fractions)
            fsum += f[job->n_rounds];
        else
            sum += job->rounds[job->n_rounds];
        job->n_rounds++;
    }
    if (fractions) {
        if (fabs(fsum - 1) > 1e-6)
            return cv_errf(err, CV_EINVAL, "refine.rounds: fractions must sum to 1, got %.6g",
                           fsum);
        rounds_from_fractions(job, f, job->n_rounds);
        return CV_OK;
    }
    if (sum != job->max_trials)
        return cv_errf(err, CV_EINVAL,
                       "refine.rounds: must sum to budget.max_trials (%u), got %llu; or give "
                       "fractions of it, such as [0.4, 0.3, 0.3]",
                       (unsigned)job->max_trials, (unsigned long long)sum);
    return CV_OK;
}

static int parse_refine(cv_job_spec_t *job, const cJSON *obj, char *err) {
    static const char *const fields[] = {"rounds", "keep_fraction", "margin"};
    static const cv_json_range_t keep_range = {0, 1, 1, 0}, margin_range = {0, 1, 0, 0};
    const cJSON *rounds = cJSON_GetObjectItemCaseSensitive(obj, "rounds");
    const cJSON *keep = cJSON_GetObjectItemCaseSensitive(obj, "keep_fraction");
    const cJSON *margin = cJSON_GetObjectItemCaseSensitive(obj, "margin");
    int rc = obj == NULL ? 0 : cv_json_check_fields(obj, "refine", fields, 3, err);
    if (rc == 0 && rounds != NULL) rc = parse_rounds(job, rounds, err);
    if (rc == 0 && rounds == NULL) default_rounds(job);
    if (rc == 0 && keep != NULL)
        rc = cv_json_get_number(keep, "refine.keep_fraction", keep_range, &job->keep_fraction, err);
    if (rc == 0 && margin != NULL)
        rc = cv_json_get_number(margin, "refine.margin", margin_range, &job->margin, err);
    return rc;
}

/* search: {"sampler": name, "pruner": name, <name>: settings...}. Each strategy validates its
 * own settings (its create), so the job is refused at submission, not when a trial needs it. */
static int parse_search(cv_job_spec_t *job, const cJSON *obj, char *err) {
    if (obj == NULL) return CV_OK;
    if (!cJSON_IsObject(obj))
        return cv_errf(err, CV_EINVAL, "search: must be an object, got %s",
                       cv_json_type_name(obj));
    char name[32];
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, "sampler");
    int rc = 0;
    if (v != NULL) {
        if ((rc = cv_json_get_string(v, "search.sampler", name, sizeof name, err))) return rc;
        if (!(job->sampler = cv_search_sampler(name)))
            return cv_errf(err, CV_EINVAL, "search.sampler: must be \"random\" or \"tpe\", got "
                           "\"%s\"", name);
    }
    if ((v = cJSON_GetObjectItemCaseSensitive(obj, "pruner")) != NULL) {
        if ((rc = cv_json_get_string(v, "search.pruner", name, sizeof name, err))) return rc;
        if (!(job->pruner = cv_search_pruner(name)))
            return cv_errf(err, CV_EINVAL, "search.pruner: must be \"none\", \"asha\" or "
                           "\"median\", got \"%s\"", name);
    }
    for (const cJSON *c = obj->child; c != NULL; c = c->next) {
        if (!strcmp(c->string, "sampler") || !strcmp(c->string, "pruner")) continue;
        int is_sampler = cv_search_sampler(c->string) != NULL;
        if (!is_sampler && cv_search_pruner(c->string) == NULL)
            return cv_errf(err, CV_EINVAL, "search: unknown field \"%s\" (sampler, pruner, or the "
                           "settings of the chosen ones: random, tpe, none, asha, median)",
                           c->string);
        const char *chosen = is_sampler ? job->sampler->name : job->pruner->name;
        if (strcmp(chosen, c->string))
            return cv_errf(err, CV_EINVAL, "search.%s: settings of a %s the job does not use "
                           "(search.%s is \"%s\")", c->string, is_sampler ? "sampler" : "pruner",
                           is_sampler ? "sampler" : "pruner", chosen);
        cJSON **slot = is_sampler ? &job->sampler_settings : &job->pruner_settings;
        if (*slot) return cv_errf(err, CV_EINVAL, "search.%s: given twice", c->string);
        if (!(*slot = cJSON_Duplicate(c, 1)))
            return cv_errf(err, CV_ENOMEM, "search: out of memory");
    }
    void *state = NULL;
    if ((rc = job->sampler->create(&state, job->sampler_settings, err))) return rc;
    job->sampler->destroy(state);
    state = NULL;
    if ((rc = job->pruner->create(&state, job->pruner_settings, err))) return rc;
    job->pruner->destroy(state);
    return CV_OK;
}

static int parse_seed_and_human_error(cv_job_spec_t *job, const cJSON *obj, char *err) {
    static const cv_json_range_t unit = {0, 1, 0, 0};
    const cJSON *seed = cJSON_GetObjectItemCaseSensitive(obj, "seed");
    const cJSON *human = cJSON_GetObjectItemCaseSensitive(obj, "human_error");
    int64_t x;
    int rc = 0;
    if (seed != NULL && (rc = cv_json_get_int(seed, "seed", 0, CV_JSON_INT_MAX, &x, err)) == 0)
        job->seed = (uint64_t)x;
    if (rc == 0 && human != NULL)
        rc = cv_json_get_number(human, "human_error", unit, &job->human_error, err);
    if (rc != 0 || human == NULL) return rc;
    /* Every trial's diagnosis measures avoidable bias against it: it becomes a fixed field. */
    const cJSON *fixed = cJSON_GetObjectItemCaseSensitive(job->trial, "human_error");
    if (fixed != NULL && !(cJSON_IsNumber(fixed) && fixed->valuedouble == job->human_error))
        return cv_errf(err, CV_EINVAL,
                       "human_error: also in trial.human_error with another "
                       "value; give it once");
    if (fixed == NULL && !cJSON_AddNumberToObject(job->trial, "human_error", job->human_error))
        return cv_errf(err, CV_ENOMEM, "human_error: out of memory");
    return rc;
}

/* The space parameter a trial-spec reason starts with ("keep_prob: ...", "keep_prob[1]: ..."),
 * or NULL when the reason is about a fixed field. */
static const cv_space_param_t *param_named_in(const cv_space_t *space, const char *why) {
    for (size_t i = 0; i < space->n_params; i++) {
        size_t len = strlen(space->params[i].name);
        if (strncmp(why, space->params[i].name, len) == 0 && strchr(":[. ", why[len]) != NULL &&
            why[len] != '\0')
            return &space->params[i];
    }
    return NULL;
}

/* The separator between "trial" and a trial-spec reason: "." when the reason starts with a field
 * path ("dataset.csv: ..." becomes "trial.dataset.csv: ..."), ": " when it speaks of the whole
 * spec ("unknown field ..." becomes "trial: unknown field ..."). */
static const char *trial_sep(const char *why) {
    size_t n = strspn(why, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.[]");
    return n > 0 && why[n] == ':' ? "." : ": ";
}

/* Writes a configuration value for a message: 0.001, "relu", true. */
static void format_value(const cJSON *v, char *out, size_t size) {
    if (cJSON_IsNumber(v))
        snprintf(out, size, "%.15g", v->valuedouble);
    else if (cJSON_IsString(v))
        snprintf(out, size, "\"%.40s\"", v->valuestring);
    else
        snprintf(out, size, "%s", cJSON_IsTrue(v) ? "true" : "false");
}

/* Composes the fixed fields with values and runs the trial spec's validator on the result.
 * corner is the parameter whose extreme (label) values holds, or NULL for a plain sample. The
 * reason blames the space when the trial spec names a searched parameter, else the fixed fields,
 * mentioning the corner that exposed the problem. */
static int check_composition(const cv_job_spec_t *job, const cJSON *values,
                             const cv_space_param_t *corner, const char *label, char *err) {
    cJSON *trial = NULL;
    cv_trial_spec_t spec;
    char why[CV_ERRLEN], value[64];
    int rc = cv_job_spec_compose(job, values, &trial, err);
    if (rc != 0) return rc;
    rc = cv_trial_spec_from_json(&spec, trial, why);
    cJSON_Delete(trial);
    if (rc == 0) return CV_OK;
    if (rc == CV_ENOMEM) return cv_errf(err, rc, "%s", why);
    const cv_space_param_t *named = param_named_in(&job->space, why);
    if (named != NULL && named == corner)
        return cv_errf(err, rc, "space.%s.%s: rejected by the trial spec: %s", corner->name, label,
                       why);
    if (named != NULL) {
        format_value(cJSON_GetObjectItemCaseSensitive(values, named->name), value, sizeof value);
        return cv_errf(err, rc, "space.%s: sampled value %s rejected by the trial spec: %s",
                       named->name, value, why);
    }
    if (corner != NULL) {
        format_value(cJSON_GetObjectItemCaseSensitive(values, corner->name), value, sizeof value);
        return cv_errf(err, rc, "trial%s%s (with space.%s.%s = %s)", trial_sep(why), why,
                       corner->name, label, value);
    }
    return cv_errf(err, rc, "trial%s%s", trial_sep(why), why);
}

/* A program caviar does not know gets any parameters; only its epochs are read, for the rungs. */
static int check_program_trial(const cv_job_spec_t *job, char *err) {
    const cJSON *fixed = cJSON_GetObjectItemCaseSensitive(job->trial, "epochs");
    const cv_space_param_t *searched = cv_space_find(&job->space, "epochs");
    int64_t epochs;
    if (fixed != NULL)
        return cv_json_get_int(fixed, "trial.epochs", 1, CV_JOB_MAX_EPOCHS, &epochs, err);
    if (searched != NULL && searched->type != CV_PARAM_INT)
        return cv_errf(err, CV_EINVAL, "space.epochs.type: epochs takes \"int\"");
    if (searched != NULL && (searched->min < 1 || searched->max > CV_JOB_MAX_EPOCHS))
        return cv_errf(err, CV_EINVAL, "space.epochs: must lie in [1, %d]", CV_JOB_MAX_EPOCHS);
    return CV_OK;
}

/* Checks the fixed fields with one sampled configuration, then with each corner of the space
 * substituted into it, one parameter at a time. */
static int check_trial(const cv_job_spec_t *job, char *err) {
    if (job->trainer_kind != CV_TRAINER_BUILTIN) return check_program_trial(job, err);
    cv_rng_t rng;
    cJSON *base = NULL;
    cv_rng_seed(&rng, cv_rng_derive(job->seed, CHECK_STREAM));
    int rc = cv_space_sample(&job->space, &rng, &base, NULL, 0, err);
    if (rc == 0) rc = check_composition(job, base, NULL, NULL, err);
    for (size_t i = 0; i < job->space.n_params && rc == 0; i++) {
        const cv_space_param_t *p = &job->space.params[i];
        for (size_t c = 0; c < cv_space_corner_count(p) && rc == 0; c++) {
            char label[CV_SPACE_NAME_MAX];
            cJSON *values = cJSON_Duplicate(base, 1);
            cJSON *corner = cv_space_corner(p, c, label);
            if (values == NULL || corner == NULL ||
                !cJSON_ReplaceItemInObjectCaseSensitive(values, p->name, corner)) {
                cJSON_Delete(corner);
                rc = cv_errf(err, CV_ENOMEM, "checking the space: out of memory");
            } else {
                rc = check_composition(job, values, p, label, err);
            }
            cJSON_Delete(values);
        }
    }
    cJSON_Delete(base);
    return rc;
}

int cv_job_spec_from_json(cv_job_spec_t *job, const cJSON *obj, char *err) {
    static const char *const fields[] = {"name",   "trial",  "space", "objective",   "budget",
                                         "refine", "search", "seed",  "human_error", "trainer"};
    cv_job_spec_init(job);
    if (!cJSON_IsObject(obj))
        return cv_errf(err, CV_EINVAL, "job: must be an object, got %s", cv_json_type_name(obj));
    int rc = cv_json_check_fields(obj, NULL, fields, 10, err);
    if (rc == 0) rc = parse_name(job, cJSON_GetObjectItemCaseSensitive(obj, "name"), err);
    if (rc == 0) rc = parse_trainer(job, cJSON_GetObjectItemCaseSensitive(obj, "trainer"), err);
    if (rc == 0) rc = parse_trial_and_space(job, obj, err);
    if (rc == 0) rc = parse_objective(job, cJSON_GetObjectItemCaseSensitive(obj, "objective"), err);
    if (rc == 0) rc = parse_budget(job, cJSON_GetObjectItemCaseSensitive(obj, "budget"), err);
    if (rc == 0) rc = parse_refine(job, cJSON_GetObjectItemCaseSensitive(obj, "refine"), err);
    if (rc == 0) rc = parse_search(job, cJSON_GetObjectItemCaseSensitive(obj, "search"), err);
    if (rc == 0) rc = parse_seed_and_human_error(job, obj, err);
    if (rc == 0) rc = check_trial(job, err);
    if (rc != 0) cv_job_spec_finish(job);
    return rc;
}

int cv_job_spec_parse(cv_job_spec_t *job, const char *text, size_t len, char *err) {
    cJSON *root = NULL;
    cv_job_spec_init(job);
    int rc = cv_json_decode(text, len, &root, err);
    if (rc != 0) return rc;
    rc = cv_job_spec_from_json(job, root, err);
    cJSON_Delete(root);
    return rc;
}

int cv_job_spec_compose(const cv_job_spec_t *job, const cJSON *values, cJSON **trial, char *err) {
    *trial = NULL;
    if (!cJSON_IsObject(values))
        return cv_errf(err, CV_EINVAL, "configuration: must be an object, got %s",
                       cv_json_type_name(values));
    cJSON *t = job->trial != NULL ? cJSON_Duplicate(job->trial, 1) : cJSON_CreateObject();
    if (t == NULL) goto nomem;
    for (const cJSON *c = values->child; c != NULL; c = c->next) {
        if (cJSON_GetObjectItemCaseSensitive(t, c->string) != NULL) {
            cJSON_Delete(t);
            return cv_errf(err, CV_EINVAL, "configuration.%s: already fixed in trial", c->string);
        }
        cJSON *dup = cJSON_Duplicate(c, 1);
        if (dup == NULL || !cJSON_AddItemToObject(t, c->string, dup)) {
            cJSON_Delete(dup);
            goto nomem;
        }
    }
    *trial = t;
    return CV_OK;
nomem:
    cJSON_Delete(t);
    return cv_errf(err, CV_ENOMEM, "composing a trial: out of memory");
}

#define DEFAULT_EPOCHS 10 /* the trial spec's default (common/trial_spec.c) */

int cv_job_spec_max_epochs(const cv_job_spec_t *job) {
    const cJSON *fixed = cJSON_GetObjectItemCaseSensitive(job->trial, "epochs");
    if (cJSON_IsNumber(fixed)) return (int)fixed->valuedouble;
    const cv_space_param_t *p = cv_space_find(&job->space, "epochs");
    return p ? (int)p->max : job->trainer_kind == CV_TRAINER_BUILTIN ? DEFAULT_EPOCHS : 1;
}

int cv_job_spec_trial_epochs(const cv_job_spec_t *job, const char *params) {
    if (cv_space_find(&job->space, "epochs") == NULL) return cv_job_spec_max_epochs(job);
    cJSON *values = cJSON_Parse(params);
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(values, "epochs");
    int epochs = cJSON_IsNumber(v) ? (int)v->valuedouble : cv_job_spec_max_epochs(job);
    cJSON_Delete(values);
    return epochs;
}
