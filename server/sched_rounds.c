/* A job's rounds and proposals: the trial spec text every trial starts from, the region each
 * round samples (refined from the trials finished so far), and the sampler's proposal of one new
 * configuration the job has not tried. */

#include "server/scheduler_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "common/rng.h"
#include "server/job_spec.h"
#include "server/search.h"
#include "common/space.h"

#define SAMPLE_TRIES 1000  /* proposals per wanted configuration before the job's space counts
                              as exhausted */

/* Prepares job->fixed, the text every trial spec starts with: the fixed fields, the seed and,
 * for a trainer that is not builtin, its name (CV_JOB_TRAINER_FIELD). */
int sched_job_fixed_text(job_t *job, char *err) {
    cJSON *fixed = cJSON_Duplicate(job->spec.trial, 1);
    char *text = NULL;
    if (fixed && ((!cJSON_GetObjectItemCaseSensitive(fixed, "seed") &&
                   !cJSON_AddNumberToObject(fixed, "seed", (double)job->spec.seed)) ||
                  (job->spec.trainer_kind != CV_TRAINER_BUILTIN &&
                   !cJSON_AddStringToObject(fixed, CV_JOB_TRAINER_FIELD, job->spec.trainer)))) {
        cJSON_Delete(fixed);
        fixed = NULL;
    }
    if (fixed) text = cJSON_PrintUnformatted(fixed);
    cJSON_Delete(fixed);
    if (!text) return cv_errf(err, CV_ENOMEM, "out of memory");
    size_t len = strlen(text);
    text[len - 1] = '\0'; /* drop the closing brace: the sampled values follow */
    job->fixed = strdup(text);
    cJSON_free(text);
    return job->fixed ? 0 : cv_errf(err, CV_ENOMEM, "out of memory");
}

/* The trial spec of a configuration as text: the fixed fields followed by the sampled values.
 * Both are JSON objects with disjoint keys (the job spec refuses a parameter that is also
 * fixed), so splicing the texts equals cv_job_spec_compose without building a tree. The caller
 * frees the result; NULL when out of memory. */
char *sched_trial_spec_text(const job_t *job, const char *params) {
    size_t a = strlen(job->fixed), b = strlen(params);
    char *out = malloc(a + b + 2);
    if (!out) return NULL;
    memcpy(out, job->fixed, a);
    if (b > 2) { /* params is "{...}": join with a comma */
        out[a] = ',';
        memcpy(out + a + 1, params + 1, b);
    } else {
        memcpy(out + a, "}", 2);
    }
    return out;
}

/* Loads the parameter values and objectives of every finished trial for refinement. */
static int refine_region(job_t *job, cv_space_t *region, char *err) {
    size_t n = 0;
    cv_space_trial_t *tr = calloc(job->n_trials ? job->n_trials : 1, sizeof *tr);
    cJSON **vals = calloc(job->n_trials ? job->n_trials : 1, sizeof *vals);
    int rc = 0;
    if (!tr || !vals) {
        rc = cv_errf(err, CV_ENOMEM, "out of memory for refinement");
        goto done;
    }
    for (size_t i = 0; i < job->n_trials; i++) {
        trial_t *t = job->trials[i];
        if (t->status != CV_STORE_TRIAL_COMPLETED || !isfinite(t->objective)) continue;
        if (!(vals[n] = cJSON_Parse(t->params))) continue;
        tr[n].values = vals[n];
        tr[n].objective = t->objective;
        n++;
    }
    rc = cv_space_refine(&job->spec.space, tr, n, job->spec.keep_fraction, job->spec.margin,
                         region, err);
done:
    for (size_t i = 0; i < n; i++) cJSON_Delete(vals[i]);
    free(vals);
    free(tr);
    return rc;
}

/* The round trial number n belongs to: rounds[0] trials in round 0, the next rounds[1] in round
 * 1, and so on. */
static int round_of(const job_t *job, size_t n) {
    size_t end = 0;
    for (size_t r = 0; r < job->spec.n_rounds; r++)
        if (n < (end += job->spec.rounds[r])) return (int)r;
    return (int)job->spec.n_rounds - 1;
}

/* Begins round r of a job: its region is refined from every trial finished so far (round 0
 * searches the whole space) and recorded. Rounds never wait for each other: the trials of round
 * r − 1 still running go on, and their results count in the regions of later rounds. */
int sched_round_begin(cv_sched_t *s, job_t *job, int r, double now, char *err) {
    cv_space_t region;
    int rc = r == 0 ? (region = job->spec.space, 0) : refine_region(job, &region, err);
    cJSON *region_json = NULL;
    char *region_text = NULL;
    if (rc == 0) rc = cv_space_region_to_json(&region, &region_json, err);
    if (rc == 0 && !(region_text = cJSON_PrintUnformatted(region_json)))
        rc = cv_errf(err, CV_ENOMEM, "out of memory");
    if (rc == 0) rc = sched_group(s, err);
    if (rc == 0)
        rc = sched_checked(s,
                           cv_store_round_add(s->cfg.store, job->id, r, 0, region_text, now, err));
    if (rc == 0)
        rc = sched_checked(s, cv_store_job_set_round(s->cfg.store, job->id, r, region_text, err));
    if (rc == 0) {
        job->round = r;
        job->region = region;
        size_t finished = 0;
        for (size_t i = 0; i < job->n_trials; i++)
            finished += job->trials[i]->status == CV_STORE_TRIAL_COMPLETED;
        if (r > 0 && s->cfg.log)
            cv_log(s->cfg.log, CV_LOG_INFO, "job %lld: round %d of %zu samples %u trials from "
                   "the region refined on the %zu completed so far (%d still running)",
                   (long long)job->id, r + 1, job->spec.n_rounds, job->spec.rounds[r], finished,
                   job->running);
    }
    cJSON_Delete(region_json);
    cJSON_free(region_text);
    return rc;
}

/* The history a sampler proposes from: the job's trials from number first on. vals (n entries)
 * receive the parsed values, which the caller frees. */
static int job_history(const job_t *job, cv_search_trial_t *h, cJSON **vals, size_t first,
                       char *err) {
    for (size_t i = first; i < job->n_trials; i++) {
        const trial_t *t = job->trials[i];
        cv_search_trial_t *x = &h[i - first];
        if (!(vals[i - first] = cJSON_Parse(t->params)))
            return cv_errf(err, CV_ENOMEM, "out of memory for the search history");
        cv_search_state_t st = t->status == CV_STORE_TRIAL_COMPLETED ? CV_SEARCH_COMPLETED
                               : t->status == CV_STORE_TRIAL_PRUNED  ? CV_SEARCH_PRUNED
                               : is_final(t->status)                 ? CV_SEARCH_FAILED
                                                                     : CV_SEARCH_RUNNING;
        *x = (cv_search_trial_t){.values = vals[i - first], .state = st,
                                 .objective = st == CV_SEARCH_COMPLETED ? t->objective : NAN,
                                 .rung_value = t->rung_value, .n_rung = (size_t)t->n_decided};
        if (!t->rung_value) x->n_rung = 0;
    }
    return 0;
}

/* Asks the job's sampler for one configuration the job has not tried and queues it as a new
 * trial. Returns 1 when a trial was queued, 0 when the budget is spent or no new configuration
 * was found (job->exhausted), or a negative code. */
int sched_job_propose(cv_sched_t *s, job_t *job, double now, char *err) {
    if (job->exhausted || job->n_trials >= job->spec.max_trials) return 0;
    int r = round_of(job, job->n_trials);
    int rc = r != job->round ? sched_round_begin(s, job, r, now, err) : 0;
    if (rc) return rc;
    size_t keep = job->spec.sampler->max_history;
    size_t first = job->n_trials > keep ? job->n_trials - keep : 0;
    size_t n = job->n_trials - first;
    cv_search_trial_t *h = calloc(n ? n : 1, sizeof *h);
    cJSON **vals = calloc(n ? n : 1, sizeof *vals);
    cv_search_history_t history = {.space = &job->spec.space, .region = &job->region,
                                   .trials = h, .n_trials = n, .rung_epochs = job->rungs,
                                   .n_rungs = job->n_rungs};
    char canon[CV_SPACE_CANON_MAX], *texts[3] = {NULL, NULL, NULL};
    cJSON *values = NULL;
    if (!h || !vals) {
        rc = cv_errf(err, CV_ENOMEM, "out of memory for the search history");
        goto done;
    }
    if ((rc = job_history(job, h, vals, first, err))) goto done;
    /* Proposals are reproducible: the draws of trial number n come from the job's seed and n. */
    cv_rng_t rng;
    cv_rng_seed(&rng, cv_rng_derive(job->spec.seed, 1000000 + (uint64_t)job->n_trials));
    int fresh = 0;
    for (int tries = 0; !fresh && tries < SAMPLE_TRIES; tries++) {
        cJSON_Delete(values);
        values = NULL;
        /* A model-based sampler may keep proposing what the job has (TPE in a small discrete
         * space): after SAMPLE_TRIES / 10 repeats the draws are uniform in the region. */
        const cv_sampler_ops_t *sampler = tries < SAMPLE_TRIES / 10 ? job->spec.sampler
                                                                     : &cv_sampler_random;
        if ((rc = sampler->propose(sampler == job->spec.sampler ? job->sampler : NULL, &history,
                                   &rng, &values, err)) ||
            (rc = cv_space_canonical(values, canon, sizeof canon, err)))
            goto done;
        if ((fresh = sched_keys_add(job, fnv1a(canon))) < 0) {
            rc = cv_errf(err, CV_ENOMEM, "out of memory");
            goto done;
        }
    }
    if (!fresh) {
        job->exhausted = 1;
        cv_log(s->cfg.log, CV_LOG_INFO, "job %lld: no new configuration in %d proposals; the "
               "search space is exhausted", (long long)job->id, SAMPLE_TRIES);
        goto done;
    }
    texts[0] = cJSON_PrintUnformatted(values);
    texts[1] = strdup(canon);
    texts[2] = texts[0] ? sched_trial_spec_text(job, texts[0]) : NULL;
    if (!texts[0] || !texts[1] || !texts[2]) {
        rc = cv_errf(err, CV_ENOMEM, "out of memory");
        goto done;
    }
    cv_store_new_trial_t nt = {.number = (int)job->n_trials, .round = r, .params = texts[0],
                               .config_key = texts[1], .spec = texts[2]};
    int64_t id;
    if ((rc = sched_group(s, err)) ||
        (rc =
             sched_checked(s, cv_store_trials_add(s->cfg.store, job->id, &nt, 1, now, &id, err))) ||
        (rc = sched_checked(s, cv_store_round_grow(s->cfg.store, job->id, r, err))))
        goto done;
    trial_t *t = sched_trial_new(s, job, id, nt.number, r, texts[0]);
    if (!t) {
        rc = cv_errf(err, CV_ENOMEM, "out of memory");
        goto done;
    }
    sched_queue_push(job, t, 0);
    job->open++;
    rc = 1;
done:
    for (size_t i = 0; vals && i < n; i++) cJSON_Delete(vals[i]);
    free(vals);
    free(h);
    cJSON_Delete(values);
    for (int i = 0; i < 3; i++) free(texts[i]);
    return rc;
}

/* Makes the job's sampler config and pruner state from its spec, and the pruner's decision
 * epochs for its longest trial. */
int sched_job_init_search(job_t *job, char *err) {
    int rc = job->spec.sampler->create(&job->sampler, job->spec.sampler_settings, err);
    if (rc == 0) rc = job->spec.pruner->create(&job->pruner, job->spec.pruner_settings, err);
    if (rc == 0)
        job->n_rungs = job->spec.pruner->decision_epochs(
            job->pruner, cv_job_spec_max_epochs(&job->spec), job->rungs, CV_SEARCH_MAX_RUNGS);
    return rc;
}
