/* The job spec: what a user submits to the coordinator. It fixes some trial-spec fields, names a
 * search space over others, and sets the objective, the budget and the coarse-to-fine schedule.
 *
 * schemas/job.schema.json states the same rules; cv_job_spec_from_json enforces them and names
 * the offending field and the rule ("budget.max_trials: must be an integer in [1, 100000], got 0").
 * A job is also checked against the trial spec before it is accepted: its fixed fields are
 * composed with one sampled configuration and with every corner of the space (the smallest and
 * largest value of each numeric parameter, each categorical value), and each composition must be
 * a valid trial spec, so a bad dataset path or a bad fixed value is refused at submission.
 *
 * A job whose "trainer" is not builtin ("ask", or the name of a program workers offer) trains a
 * program caviar does not know: its space may name any parameter (cv_space_from_json_open),
 * its trial holds any fixed parameters, and only "epochs" (an integer in [1, CV_JOB_MAX_EPOCHS],
 * default 1: how many epochs the program reports, from which the pruner's rungs are computed)
 * and the reserved name "trainer" are checked. */
#ifndef CV_JOB_SPEC_H
#define CV_JOB_SPEC_H

#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "server/search.h"
#include "common/space.h"

#define CV_JOB_NAME_MAX     128    /* bytes of a job name, without the NUL */
#define CV_JOB_MAX_TRIALS   100000 /* budget.max_trials at most */
#define CV_JOB_MAX_PARALLEL 1024   /* budget.max_parallel at most */
#define CV_JOB_MAX_ROUNDS   64     /* entries of refine.rounds at most */
#define CV_JOB_TRAINER_MAX  64     /* bytes of a trainer name, without the NUL */
#define CV_JOB_MAX_EPOCHS   1000000 /* epochs of a trial of a program caviar does not know */

/* Who trains a job's trials (the job's "trainer" field). */
typedef enum {
    CV_TRAINER_BUILTIN,  /* absent or "builtin": caviar's trainer; trial is a trial spec */
    CV_TRAINER_ASK,      /* "ask": handed out over HTTP only (ask/tell), never to workers */
    CV_TRAINER_EXTERNAL, /* another name: the program a worker offers under that name */
} cv_trainer_kind_t;

/* The quantity the search minimizes; both are measured on the dev set by the worker. */
typedef enum { CV_OBJECTIVE_DEV_ERROR, CV_OBJECTIVE_DEV_COST } cv_objective_t;

typedef struct {
    char name[CV_JOB_NAME_MAX + 1];     /* "" when not given */
    cv_trainer_kind_t trainer_kind;     /* default builtin */
    char trainer[CV_JOB_TRAINER_MAX + 1]; /* the trainer's name; "builtin" by default */
    cJSON *trial;                       /* fixed trial-spec fields (any parameters for a trainer
                                           that is not builtin), merged under every sampled
                                           configuration; owned, freed by cv_job_spec_finish */
    cv_space_t space;                   /* the searched parameters, none of them also in trial;
                                           n_params 0 when nothing is searched */
    cv_objective_t objective;           /* default dev_error */
    uint32_t max_trials;                /* trials in the whole job, 1..CV_JOB_MAX_TRIALS */
    uint32_t max_parallel;              /* trials running at once, 1..CV_JOB_MAX_PARALLEL (4) */
    double max_seconds;                 /* wall-clock budget of the job in seconds; 0 = none */
    size_t n_rounds;                    /* entries of rounds, 1..CV_JOB_MAX_ROUNDS */
    uint32_t rounds[CV_JOB_MAX_ROUNDS]; /* trials per round, each ≥ 1, summing to max_trials;
                                           round 0 samples the whole space, round r > 0 the
                                           region refined from every trial of rounds < r */
    double keep_fraction; /* share of finished trials refinement keeps, (0, 1] (0.25) */
    double margin;        /* refinement widening, fraction of the original width in
                             the parameter's coordinate, [0, 1] (0.1) */
    uint64_t seed;        /* seeds the sampler, 0..2^53 (1) */
    double human_error;   /* human-level error for reports, [0, 1]; −1 = not given. When
                             given it is also added to trial, so every trial's diagnosis
                             measures avoidable bias against it */
    /* search: how configurations are proposed inside each round's region and which running
     * trials are stopped early (server/search.h). */
    const cv_sampler_ops_t *sampler; /* search.sampler, default random */
    cJSON *sampler_settings;         /* search.<sampler> or NULL; owned */
    const cv_pruner_ops_t *pruner;   /* search.pruner, default none */
    cJSON *pruner_settings;          /* search.<pruner> or NULL; owned */
} cv_job_spec_t;

/* Fills job with every default and no trial, space or budget. */
void cv_job_spec_init(cv_job_spec_t *job);

/* Releases what job owns (its trial object) and re-initializes it. Accepts a job that
 * cv_job_spec_init or a failed parse left behind. */
void cv_job_spec_finish(cv_job_spec_t *job);

/* Parses and validates a job spec object into job (caller-allocated; initialized here). Unknown
 * fields, wrong types and broken rules are refused with err naming the field; errors in the fixed
 * trial fields come from cv_trial_spec_from_json prefixed with "trial." ("trial: " for a reason
 * about the whole trial spec, such as an unknown field). refine.rounds holds counts summing to
 * max_trials or fractions summing to 1, rounded to counts by the largest remainder ([0.4, 0.3,
 * 0.3] of 8 → 3, 3, 2). When refine.rounds is absent the schedule is one coarse round of
 * round(0.4 · max_trials) trials (at least 1), then two rounds splitting the rest, the larger
 * first (24 → 10, 7, 7; rounds of 0 are dropped). An absent or empty space searches nothing:
 * its one configuration is the fixed trial.
 * On success job owns a copy of the trial object; on failure it owns nothing. obj is borrowed. */
int cv_job_spec_from_json(cv_job_spec_t *job, const cJSON *obj, char *err);

/* Same from JSON text of len bytes (not necessarily NUL-terminated), decoded by cv_json_decode,
 * which refuses nesting deeper than CV_JSON_MAX_DEPTH (CV_ERANGE) and malformed text
 * (CV_EFORMAT). */
int cv_job_spec_parse(cv_job_spec_t *job, const char *text, size_t len, char *err);

/* Builds the trial spec object of one configuration: a copy of job->trial with every member of
 * values (as cv_space_sample makes it) added. A value whose name is already fixed is refused.
 * On success *trial is new and the caller frees it with cJSON_Delete; on failure it is NULL.
 * values is borrowed. */
int cv_job_spec_compose(const cv_job_spec_t *job, const cJSON *values, cJSON **trial, char *err);

/* The epochs of the longest trial the job can run: its fixed epochs, the top of a searched
 * epochs range, or the trial spec's default. The pruner's decision epochs are computed from it;
 * those of a shorter trial are the ones below its own epochs. */
int cv_job_spec_max_epochs(const cv_job_spec_t *job);

/* The epochs of one trial of the job whose sampled values are params (JSON text). */
int cv_job_spec_trial_epochs(const cv_job_spec_t *job, const char *params);

/* The member every trial text of a job of a trainer that is not builtin carries: "trainer". */
#define CV_JOB_TRAINER_FIELD "trainer"

/* "dev_error" or "dev_cost". */
const char *cv_objective_name(cv_objective_t objective);

#endif
