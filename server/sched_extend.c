/* Extending a completed job (cv_sched_extend): its budget grows, a new round is added to its
 * stored spec, and it is loaded back from the store to run again. */

#include "server/scheduler_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/clock.h"
#include "common/err.h"
#include "server/job_spec.h"
#include "common/space.h"

/* What cv_sched_extend reads of the job from the store. */
typedef struct {
    int64_t id;
    cv_store_job_status_t status;
    int round;
    double created_at;
    double finished_at;
    char *spec;             /* owned */
    char *region;           /* owned, may be NULL */
    cJSON *sizes;           /* the sizes of its rounds, in order (owned) */
    int64_t n_trials;       /* their sum: every trial the job has */
    int exhausted;          /* 1: a round found no new configuration */
    double busy_seconds, available_seconds; /* its worker usage so far */
    char *err;
} extend_row_t;

static int extend_on_job(void *ctx, const cv_store_job_row_t *row) {
    extend_row_t *e = ctx;
    e->status = row->status, e->round = row->round, e->created_at = row->created_at;
    e->busy_seconds = row->busy_seconds, e->available_seconds = row->available_seconds;
    if (!(e->spec = strdup(row->spec)) || (row->region && !(e->region = strdup(row->region))))
        return cv_errf(e->err, CV_ENOMEM, "out of memory");
    return 0;
}

static int extend_on_round(void *ctx, const cv_store_round_row_t *row) {
    extend_row_t *e = ctx;
    if (!cJSON_AddItemToArray(e->sizes, cJSON_CreateNumber(row->size)))
        return cv_errf(e->err, CV_ENOMEM, "out of memory");
    e->n_trials += row->size;
    e->exhausted |= row->size == 0;
    return 0;
}

/* The spec the extended job runs: budget.max_trials is max_trials, refine.rounds the trial
 * counts of the rounds it ran followed by the new round, and a time budget, if any, gives the
 * job as much time again from now. Caller frees the text. */
static int extend_spec(const extend_row_t *e, int64_t max_trials, double now, char **out,
                       char *err) {
    cJSON *spec = cJSON_Parse(e->spec), *sizes = cJSON_Duplicate(e->sizes, 1);
    int rc = 0;
    if (!spec || !sizes) {
        rc = cv_errf(err, CV_EFORMAT, "job %lld: its stored spec cannot be read", (long long)e->id);
        goto done;
    }
    cJSON *budget = cJSON_GetObjectItemCaseSensitive(spec, "budget");
    cJSON *refine = cJSON_GetObjectItemCaseSensitive(spec, "refine");
    if (!cJSON_IsObject(budget)) budget = cJSON_AddObjectToObject(spec, "budget");
    if (!cJSON_IsObject(refine)) refine = cJSON_AddObjectToObject(spec, "refine");
    cJSON *seconds = budget ? cJSON_GetObjectItemCaseSensitive(budget, "max_seconds") : NULL;
    if (!budget || !refine ||
        !cJSON_AddItemToArray(sizes, cJSON_CreateNumber((double)(max_trials - e->n_trials)))) {
        rc = cv_errf(err, CV_ENOMEM, "out of memory");
        goto done;
    }
    cJSON_DeleteItemFromObjectCaseSensitive(refine, "rounds");
    cJSON_DeleteItemFromObjectCaseSensitive(budget, "max_trials");
    cJSON_AddItemToObject(refine, "rounds", sizes);
    sizes = NULL;
    if (!cJSON_AddNumberToObject(budget, "max_trials", (double)max_trials)) {
        rc = cv_errf(err, CV_ENOMEM, "out of memory");
        goto done;
    }
    if (cJSON_IsNumber(seconds) && seconds->valuedouble > 0)
        cJSON_SetNumberValue(seconds, now - e->created_at + seconds->valuedouble);
    if (!(*out = cJSON_PrintUnformatted(spec))) rc = cv_errf(err, CV_ENOMEM, "out of memory");
done:
    cJSON_Delete(sizes);
    cJSON_Delete(spec);
    return rc;
}

/* Builds the in-memory job of an extended spec and its finished trials, as resume_job does. */
static int extend_load(cv_sched_t *s, const extend_row_t *e, const char *spec, job_t **out,
                       char *err) {
    job_t *job = calloc(1, sizeof *job);
    if (!job) return cv_errf(err, CV_ENOMEM, "out of memory");
    cv_job_spec_init(&job->spec);
    job->id = e->id;
    int rc = cv_job_spec_parse(&job->spec, spec, strlen(spec), err);
    if (rc == 0) rc = sched_job_init_search(job, err);
    if (rc == 0) rc = sched_job_fixed_text(job, err);
    cJSON *region = e->region ? cJSON_Parse(e->region) : NULL;
    job->region = job->spec.space;
    if (rc == 0 && region)
        rc = cv_space_region_from_json(&job->spec.space, region, &job->region, err);
    cJSON_Delete(region);
    job->status = CV_STORE_JOB_RUNNING;
    job->round = e->round;
    job->created_at = e->created_at;
    job->busy_seconds = e->busy_seconds;
    job->available_seconds = e->available_seconds;
    job->accounted_at = cv_clock_wall();
    resume_ctx_t ctx = {s, job, err, 0}; /* a completed job has no trial running */
    if (rc == 0) rc = sched_job_load(&ctx);
    if (rc == 0 && (job->open || job->running || job->qhead))
        rc = cv_errf(err, CV_EFORMAT, "job %lld has unfinished trials", (long long)job->id);
    if (rc) {
        sched_job_unmap(s, job);
        sched_job_free(job);
        return rc;
    }
    *out = job;
    return 0;
}

int cv_sched_extend(cv_sched_t *s, int64_t job_id, int64_t max_trials, double now, int *round,
                    char *err) {
    job_t *job = sched_job_find(s, job_id);
    if (job && job->status == CV_STORE_JOB_RUNNING)
        return cv_errf(err, CV_STORE_STALE, "job %lld is running", (long long)job_id);
    extend_row_t e = {.id = job_id, .sizes = cJSON_CreateArray(), .err = err};
    char *spec = NULL;
    int rc = e.sizes ? 0 : cv_errf(err, CV_ENOMEM, "out of memory");
    /* Earlier writes first (their acks wait for the flush); then a job that ended since the
     * last flush leaves memory, to come back from the store like any other. */
    if (rc == 0) rc = sched_commit(s, err);
    if (rc) goto done;
    sched_unload_finished(s);
    rc = cv_store_job_visit(s->cfg.store, job_id, extend_on_job, &e, err);
    if (rc) goto done;
    if (e.status != CV_STORE_JOB_COMPLETED) {
        rc = cv_errf(err, CV_STORE_STALE, "job %lld %s; only a completed job can be extended",
                     (long long)job_id, e.status == CV_STORE_JOB_CANCELLED ? "was cancelled"
                                        : e.status == CV_STORE_JOB_FAILED ? "failed"
                                                                          : "is running");
        goto done;
    }
    if ((rc = cv_store_rounds_each(s->cfg.store, job_id, extend_on_round, &e, err))) goto done;
    if (max_trials <= e.n_trials) {
        rc = cv_errf(err, CV_EINVAL, "max_trials: must be greater than the %lld trials job %lld "
                     "has, got %lld", (long long)e.n_trials, (long long)job_id,
                     (long long)max_trials);
        goto done;
    }
    if (e.exhausted) {
        rc = cv_errf(err, CV_STORE_STALE, "job %lld has exhausted its search space",
                     (long long)job_id);
        goto done;
    }
    if (cJSON_GetArraySize(e.sizes) >= CV_JOB_MAX_ROUNDS) {
        rc = cv_errf(err, CV_STORE_STALE, "job %lld already ran %d rounds, the most a job may "
                     "have", (long long)job_id, CV_JOB_MAX_ROUNDS);
        goto done;
    }
    if ((rc = extend_spec(&e, max_trials, now, &spec, err))) goto done;
    job = NULL;
    if ((rc = extend_load(s, &e, spec, &job, err))) goto done;
    cv_store_job_plan_t plan = sched_job_plan(&job->spec); /* one round more */
    if ((rc = sched_group(s, err)) ||
        (rc = sched_checked(s, cv_store_job_set_spec(s->cfg.store, job_id, spec, &plan, err))) ||
        (rc = sched_checked(s, cv_store_job_set_status(s->cfg.store, job_id, CV_STORE_JOB_RUNNING,
                                                       NULL, now, err))))
        goto unload;
    sched_job_link(s, job);
    /* Its next proposal begins the new round, refined around the best of all finished trials. */
    if ((rc = sched_commit(s, err))) goto done; /* broken */
    *round = (int)job->spec.n_rounds - 1;
    cv_log(s->cfg.log, CV_LOG_INFO, "job %lld extended to %lld trials: round %d samples %u",
           (long long)job_id, (long long)max_trials, *round + 1,
           job->spec.rounds[job->spec.n_rounds - 1]);
    /* Its datasets are checked again, as after a restart: no trial is leased until then. */
    if (job->status == CV_STORE_JOB_RUNNING) {
        char why[CV_ERRLEN];
        int check = sched_resume_check_files(s, job, why);
        if (check == 0 && job->checking) {
            resume_check_t *c = s->checks;
            if (cv_dataset_check_start(c->check, s->cfg.loop, sched_after_resume_check, c) != 0) {
                cv_dataset_check_run(c->check);
                sched_after_resume_check(c->check, c);
            }
        } else if (check) {
            char text[CV_ERRLEN + 64];
            snprintf(text, sizeof text, "its datasets cannot be used: %s", why);
            if (sched_job_fail(s, job, text, now, err) || sched_commit(s, err))
                cv_log(s->cfg.log, CV_LOG_ERROR, "job %lld: %s", (long long)job_id, err);
        }
    }
    goto done;
unload:
    s->group_open = 0;
    cv_store_rollback(s->cfg.store, NULL);
    sched_job_unmap(s, job);
    sched_job_free(job);
done:
    cJSON_free(spec);
    cJSON_Delete(e.sizes);
    free(e.spec);
    free(e.region);
    return rc;
}
