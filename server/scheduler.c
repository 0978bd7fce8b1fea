/* The scheduler's jobs (see scheduler.h for the model): a job's lifecycle from submission to its
 * end (completed, cancelled, failed, deleted), its time budget and worker usage, and the best
 * models of a finished job for its test-set evaluation. Everything here runs on the loop thread;
 * the other concerns live in server/sched_*.c around server/scheduler_internal.h. */

#include "server/scheduler_internal.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "common/json.h"
#include "server/job_spec.h"
#include "server/paths.h"
#include "common/space.h"

void sched_job_free(job_t *job) {
    if (!job) return;
    for (size_t i = 0; i < job->n_trials; i++) {
        if (!job->trials[i]) continue;
        free(job->trials[i]->params);
        free(job->trials[i]->rung_value);
        free(job->trials[i]);
    }
    if (job->spec.sampler) job->spec.sampler->destroy(job->sampler);
    if (job->spec.pruner) job->spec.pruner->destroy(job->pruner);
    free(job->trials);
    free(job->keys);
    free(job->fixed);
    cv_job_spec_finish(&job->spec);
    free(job);
}

trial_t *sched_trial_new(cv_sched_t *s, job_t *job, int64_t id, int number, int round,
                         const char *params) {
    if (job->n_trials == job->cap) {
        size_t cap = job->cap ? 2 * job->cap : 64;
        trial_t **t = realloc(job->trials, cap * sizeof *t);
        if (!t) return NULL;
        job->trials = t;
        job->cap = cap;
    }
    trial_t *t = calloc(1, sizeof *t);
    if (!t || !(t->params = strdup(params))) {
        free(t);
        return NULL;
    }
    t->id = id, t->job = job, t->number = number, t->round = round;
    t->status = CV_STORE_TRIAL_QUEUED;
    t->objective = NAN;
    t->best_value = NAN;
    t->epochs = cv_job_spec_trial_epochs(&job->spec, params);
    if (job->n_rungs && !(t->rung_value = calloc(job->n_rungs, sizeof *t->rung_value))) {
        free(t->params);
        free(t);
        return NULL;
    }
    if (sched_map_put(s, t)) {
        free(t->params);
        free(t->rung_value);
        free(t);
        return NULL;
    }
    job->trials[job->n_trials++] = t;
    return t;
}

static int job_finish(cv_sched_t *s, job_t *job, cv_store_job_status_t status, const char *why,
                      double now, char *err) {
    sched_account(s, now);
    int rc = sched_group(s, err);
    if (rc == 0) rc = sched_job_save_usage(s, job, 1, err);
    if (rc == 0)
        rc =
            sched_checked(s, cv_store_job_set_status(s->cfg.store, job->id, status, why, now, err));
    if (rc == 0) {
        job->status = status;
        s->n_finished++; /* unloaded at the next flush */
    }
    if (rc == 0 && s->cfg.log)
        cv_log(s->cfg.log, CV_LOG_INFO, "job %lld %s after %zu trials%s%s", (long long)job->id,
               cv_store_job_status_name(status), job->n_trials, why ? ": " : "", why ? why : "");
    return rc;
}

/* Ends a job whose search is over: completed, or failed when not one trial completed (then its
 * error is the first failure's, so that the reason is where the user looks). */
static int job_end(cv_sched_t *s, job_t *job, const char *why, double now, char *err) {
    size_t completed = 0, failed = 0, diverged = 0;
    for (size_t i = 0; i < job->n_trials; i++) {
        cv_store_trial_status_t st = job->trials[i]->status;
        completed += st == CV_STORE_TRIAL_COMPLETED;
        failed += st == CV_STORE_TRIAL_FAILED;
        diverged += st == CV_STORE_TRIAL_DIVERGED;
    }
    if (completed || !(failed + diverged))
        return job_finish(s, job, CV_STORE_JOB_COMPLETED, why, now, err);
    char first[CV_ERRLEN / 2], text[CV_ERRLEN];
    int64_t trial_id = 0;
    cv_store_trial_status_t st = CV_STORE_TRIAL_FAILED;
    int rc = cv_store_job_first_failure(s->cfg.store, job->id, &trial_id, &st, first,
                                        sizeof first, err);
    if (rc < 0) return rc;
    if (rc) snprintf(first, sizeof first, "no reason recorded");
    snprintf(text, sizeof text, "no trial completed (%zu failed, %zu diverged); the first: trial "
             "%lld %s: %s", failed, diverged, (long long)trial_id,
             st == CV_STORE_TRIAL_DIVERGED ? "diverged" : "failed", first);
    return job_finish(s, job, CV_STORE_JOB_FAILED, text, now, err);
}

/* Ends a job whose search is over: every trial it will have is final (its budget is spent or its
 * space exhausted). Otherwise the job waits for its running trials and proposes more as workers
 * come free (cv_sched_dispatch). */
int sched_job_settle(cv_sched_t *s, job_t *job, double now, char *err) {
    if (job->status != CV_STORE_JOB_RUNNING || job->open > 0) return 0;
    if (job->exhausted) return job_end(s, job, "the search space is exhausted", now, err);
    if (job->n_trials >= job->spec.max_trials) return job_end(s, job, NULL, now, err);
    return 0;
}

job_t *sched_job_find(const cv_sched_t *s, int64_t id) {
    for (job_t *j = s->jobs; j; j = j->next)
        if (j->id == id) return j;
    return NULL;
}

void sched_job_link(cv_sched_t *s, job_t *job) {
    job_t **p = &s->jobs;
    while (*p) p = &(*p)->next;
    *p = job;
}

/* Frees the in-memory state of the jobs that ended (job->status not running): their trials
 * leave the map and the job list, and their spec, key set and files go. Everything the API
 * shows of them is in the store; a late result for one of their trials is refused as stale
 * (on_unloaded_result). Called where no job pointer is held: after a commit. */
void sched_unload_finished(cv_sched_t *s) {
    if (!s->n_finished) return;
    s->n_finished = 0;
    for (job_t **p = &s->jobs; *p;) {
        job_t *job = *p;
        if (job->status == CV_STORE_JOB_RUNNING) {
            p = &job->next;
            continue;
        }
        *p = job->next;
        if (s->rr == job) s->rr = NULL;
        for (size_t i = 0; i < job->n_trials; i++) {
            trial_t *t = job->trials[i];
            if (t->worker) t->worker->trial = NULL; /* none is running; kept safe regardless */
            else if (t->status == CV_STORE_TRIAL_RUNNING)
                sched_orphan_forget(s, t);
            sched_map_del(s, t);
        }
        sched_job_free(job);
    }
}

cv_store_job_plan_t sched_job_plan(const cv_job_spec_t *spec) {
    return (cv_store_job_plan_t){spec->sampler->name, spec->pruner->name, (int)spec->n_rounds};
}

int cv_sched_submit(cv_sched_t *s, const char *text, size_t len, double now, int64_t *job_id,
                    char *err) {
    cv_dataset_check_t *check = NULL;
    int rc = cv_sched_new_check(s, text, len, &check, err);
    if (rc) return rc;
    cv_dataset_check_run(check);
    rc = cv_dataset_check_status(check, err);
    if (rc == 0) rc = cv_sched_submit_checked(s, text, len, check, now, job_id, err);
    cv_dataset_check_destroy(check);
    return rc;
}

int cv_sched_submit_checked(cv_sched_t *s, const char *text, size_t len,
                            const cv_dataset_check_t *check, double now, int64_t *job_id,
                            char *err) {
    job_t *job = calloc(1, sizeof *job);
    char *spec_text = NULL, *region_text = NULL;
    cJSON *spec_json = NULL, *region_json = NULL;
    if (!job) return cv_errf(err, CV_ENOMEM, "out of memory");
    cv_job_spec_init(&job->spec);
    int rc = cv_job_spec_parse(&job->spec, text, len, err);
    if (rc) goto fail;
    if ((rc = cv_paths_check_job_trial(job->spec.trial, err)) ||
        (rc = sched_job_apply_files(s, job, check, err)) || (rc = sched_job_fixed_text(job, err)))
        goto fail;
    /* The stored spec is the one the job runs: with absolute dataset paths. */
    if ((rc = cv_json_decode(text, len, &spec_json, err))) goto fail;
    if (!cJSON_ReplaceItemInObjectCaseSensitive(spec_json, "trial",
                                                cJSON_Duplicate(job->spec.trial, 1)) ||
        !(spec_text = cJSON_PrintUnformatted(spec_json)) ||
        cv_space_region_to_json(&job->spec.space, &region_json, err) ||
        !(region_text = cJSON_PrintUnformatted(region_json))) {
        rc = cv_errf(err, CV_ENOMEM, "out of memory");
        goto fail;
    }
    if ((rc = sched_commit(s, err))) goto fail; /* earlier writes first: acks wait for flush */
    if ((rc = sched_group(s, err))) goto fail;
    cv_store_objective_t obj = job->spec.objective == CV_OBJECTIVE_DEV_COST
                                   ? CV_STORE_OBJ_DEV_COST
                                   : CV_STORE_OBJ_DEV_ERROR;
    cv_store_job_plan_t plan = sched_job_plan(&job->spec);
    if ((rc = sched_checked(s, cv_store_job_create(s->cfg.store, job->spec.name, obj, spec_text,
                                                   &plan, region_text, now, &job->id, err))))
        goto rollback;
    job->status = CV_STORE_JOB_RUNNING;
    job->created_at = job->accounted_at = now;
    if ((rc = sched_job_init_search(job, err)) || (rc = sched_round_begin(s, job, 0, now, err)))
        goto rollback;
    if ((rc = sched_commit(s, err))) goto fail;
    sched_job_link(s, job);
    *job_id = job->id;
    if (s->cfg.log)
        cv_log(s->cfg.log, CV_LOG_INFO, "job %lld \"%s\" submitted: %u trials in %zu rounds",
               (long long)job->id, job->spec.name, job->spec.max_trials, job->spec.n_rounds);
    cJSON_free(spec_text);
    cJSON_free(region_text);
    cJSON_Delete(spec_json);
    cJSON_Delete(region_json);
    return 0;
rollback:
    s->group_open = 0;
    cv_store_rollback(s->cfg.store, NULL);
fail:
    sched_job_unmap(s, job); /* trials of a failed submission were mapped */
    sched_job_free(job);
    cJSON_free(spec_text);
    cJSON_free(region_text);
    cJSON_Delete(spec_json);
    cJSON_Delete(region_json);
    return rc;
}

/* Ends a running trial without a result (cancel, time budget). */
static void trial_cancel(cv_sched_t *s, trial_t *t) {
    job_t *job = t->job;
    if (t->status == CV_STORE_TRIAL_RUNNING && t->worker) {
        /* An ask client learns it from its next report or tell, refused as stale. */
        if (!t->worker->ask) s->cfg.ops.send_stop(t->worker->conn, t->id);
        t->worker->trial = NULL;
        t->worker = NULL;
        job->running--;
    } else if (t->status == CV_STORE_TRIAL_RUNNING) { /* an orphan: no worker to stop yet */
        sched_orphan_forget(s, t);
        job->running--;
    }
    if (!is_final(t->status)) job->open--;
    t->status = CV_STORE_TRIAL_CANCELLED;
}

/* Cancels every queued and running trial of a job in memory and in the store. */
static int job_cancel_trials(cv_sched_t *s, job_t *job, double now, int64_t *n, char *err) {
    sched_account(s, now);
    int rc = sched_group(s, err);
    if (rc == 0) rc = sched_job_save_usage(s, job, 1, err);
    if (rc == 0) rc = sched_checked(s, cv_store_job_cancel(s->cfg.store, job->id, now, n, err));
    if (rc) return rc;
    for (size_t i = 0; i < job->n_trials; i++)
        if (!is_final(job->trials[i]->status)) trial_cancel(s, job->trials[i]);
    job->qhead = job->qtail = NULL;
    job->status = CV_STORE_JOB_CANCELLED;
    s->n_finished++; /* unloaded at the next flush */
    return 0;
}

/* Fails a running job for why (copied): queued trials are cancelled, running ones stopped. */
int sched_job_fail(cv_sched_t *s, job_t *job, const char *why, double now, char *err) {
    int64_t n = 0;
    int rc = job_cancel_trials(s, job, now, &n, err);
    if (rc == 0) rc = job_finish(s, job, CV_STORE_JOB_FAILED, why, now, err);
    if (rc == 0 && n)
        cv_log(s->cfg.log, CV_LOG_INFO, "job %lld: %lld trials that were queued or running are "
               "cancelled", (long long)job->id, (long long)n);
    return rc;
}

int cv_sched_cancel(cv_sched_t *s, int64_t job_id, double now, int64_t *cancelled, char *err) {
    job_t *job = sched_job_find(s, job_id);
    if (!job) {
        /* A finished job is no longer in memory; the store knows whether it exists. */
        cJSON *j = NULL;
        int rc = cv_store_job_get(s->cfg.store, job_id, &j, err);
        cJSON_Delete(j);
        return rc == CV_STORE_NOT_FOUND ? CV_STORE_NOT_FOUND : rc ? rc : CV_STORE_STALE;
    }
    if (job->status != CV_STORE_JOB_RUNNING) return CV_STORE_STALE;
    int rc = job_cancel_trials(s, job, now, cancelled, err);
    if (rc == 0) rc = sched_commit(s, err);
    if (rc == 0 && s->cfg.log)
        cv_log(s->cfg.log, CV_LOG_INFO, "job %lld cancelled", (long long)job_id);
    return rc;
}

int cv_sched_delete(cv_sched_t *s, int64_t job_id, int64_t *trials_deleted, char *err) {
    job_t *job = sched_job_find(s, job_id);
    if (job && job->status == CV_STORE_JOB_RUNNING) return CV_STORE_STALE;
    int rc = sched_group(s, err);
    if (rc == 0)
        rc = sched_checked(s, cv_store_job_delete(s->cfg.store, job_id, trials_deleted, err));
    if (rc == CV_STORE_STALE) rc = cv_errf(err, CV_EIO, "store: job %lld is running there but "
                                           "not here", (long long)job_id);
    int commit_rc = sched_commit(s, err); /* whatever else the group held goes to disk as well */
    if (rc == 0) rc = commit_rc;
    if (rc) return rc;
    sched_unload_finished(s); /* the job, ended since the last flush, may still be in memory */
    cv_log(s->cfg.log, CV_LOG_INFO, "job %lld deleted (%lld trials)", (long long)job_id,
           (long long)(trials_deleted ? *trials_deleted : -1));
    sched_remove_models(s, job_id);
    return 0;
}

int cv_sched_running(const cv_sched_t *s, int64_t job_id) {
    const job_t *job = sched_job_find(s, job_id);
    return job ? job->running : 0;
}

void cv_sched_tick(cv_sched_t *s, double now) {
    char err[CV_ERRLEN];
    if (s->n_orphans && now >= s->reattach_until) sched_orphans_expire(s, now);
    sched_ask_expire(s, now);
    for (job_t *job = s->jobs; job; job = job->next) {
        if (job->status != CV_STORE_JOB_RUNNING || job->spec.max_seconds <= 0 ||
            now - job->created_at < job->spec.max_seconds)
            continue;
        int64_t n = 0;
        char why[128];
        snprintf(why, sizeof why, "stopped at its time budget of %g s", job->spec.max_seconds);
        if (job_cancel_trials(s, job, now, &n, err) ||
            job_finish(s, job, CV_STORE_JOB_COMPLETED, why, now, err))
            cv_log(s->cfg.log, CV_LOG_ERROR, "job %lld: %s", (long long)job->id, err);
    }
}

/* Counts worker usage up to now for every running job: busy worker-seconds (its trials holding a
 * worker) and available ones (min(max_parallel, its running trials + idle workers)), the
 * utilization GET /v1/jobs/{id} reports. Called before every change of who runs what. */
void sched_account(cv_sched_t *s, double now) {
    int idle = 0;
    for (const cv_sched_worker_t *w = s->workers; w; w = w->next)
        idle += !w->trial && !w->quarantined && !w->leaving;
    for (job_t *j = s->jobs; j; j = j->next) {
        if (j->status != CV_STORE_JOB_RUNNING || j->checking || now <= j->accounted_at) {
            if (now > j->accounted_at) j->accounted_at = now;
            continue;
        }
        double dt = now - j->accounted_at;
        int avail = j->running + idle;
        if ((uint32_t)avail > j->spec.max_parallel) avail = (int)j->spec.max_parallel;
        j->busy_seconds += dt * j->running;
        j->available_seconds += dt * (avail > j->running ? avail : j->running);
        j->accounted_at = now;
    }
}

#define USAGE_SAVE_SECONDS 1.0 /* a running job's usage is written at most this often */

/* Writes a job's usage into the open group: when it ends (final), or while it runs at most
 * every USAGE_SAVE_SECONDS, so that a job of many short trials does not pay a write each. */
int sched_job_save_usage(cv_sched_t *s, job_t *job, int final, char *err) {
    if (!final && job->accounted_at < job->usage_saved_at + USAGE_SAVE_SECONDS) return 0;
    job->usage_saved_at = job->accounted_at;
    return sched_checked(s, cv_store_job_set_usage(s->cfg.store, job->id, job->busy_seconds,
                                                   job->available_seconds, err));
}

int cv_sched_best_models(cv_sched_t *s, int64_t job_id, int k, char (*paths)[1024],
                         int64_t *trial_ids, char **trial_spec_json, char *err) {
    cJSON *top = NULL, *best = NULL;
    *trial_spec_json = NULL;
    int rc = cv_store_trials_top(s->cfg.store, job_id, CV_STORE_OBJ_JOB, k, &top, err);
    if (rc) return rc == CV_STORE_NOT_FOUND ? cv_errf(err, CV_EINVAL, "no job %lld",
                                                      (long long)job_id) : rc;
    int n = 0;
    const cJSON *item;
    cJSON_ArrayForEach(item, top) {
        const char *p = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(item, "model_path"));
        const cJSON *id = cJSON_GetObjectItemCaseSensitive(item, "id");
        if (!p || !cJSON_IsNumber(id) || n >= k) continue;
        snprintf(paths[n], 1024, "%s", p);
        trial_ids[n++] = (int64_t)id->valuedouble;
    }
    cJSON_Delete(top);
    if (n == 0) return 0;
    rc = cv_store_trial_get(s->cfg.store, trial_ids[0], 0, &best, err);
    if (rc) return rc < 0 ? rc : 0;
    const cJSON *spec = cJSON_GetObjectItemCaseSensitive(best, "spec");
    *trial_spec_json = spec ? cJSON_PrintUnformatted(spec) : NULL;
    cJSON_Delete(best);
    return *trial_spec_json ? n : cv_errf(err, CV_ENOMEM, "out of memory");
}

int cv_sched_store_test_result(cv_sched_t *s, int64_t job_id, const char *json, char *err) {
    int rc = sched_group(s, err);
    if (rc == 0)
        rc = sched_checked(s, cv_store_job_set_test_result(s->cfg.store, job_id, json, err));
    if (rc == 0) rc = sched_commit(s, err);
    return rc;
}
