/* What workers report about their trials: a progress message (one epoch of the learning curve,
 * and the pruner's turn at a decision epoch) and a result (stored under its lease, or refused as
 * stale), with what a result means for the worker and the job. */

#include "server/scheduler_internal.h"

#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "common/clock.h"
#include "common/err.h"
#include "server/job_spec.h"

/* The pruner's turn after epoch p of running trial t: at a decision epoch the trial is judged
 * once (a trial that runs again after a lost lease gets the decision made the first time) and
 * the decision is stored in the open group, then sent to the worker after the commit. */
static int trial_judge(cv_sched_t *s, trial_t *t, int epoch, double value, double now,
                       char *err) {
    job_t *job = t->job;
    int k = 0;
    while ((size_t)k < job->n_rungs && job->rungs[k] < epoch) k++;
    if ((size_t)k >= job->n_rungs || job->rungs[k] != epoch || epoch >= t->epochs) return 0;
    int stop;
    if (k < t->n_decided) {
        stop = t->stopped && k == t->n_decided - 1;
    } else {
        if (k > t->n_decided) { /* an epoch went missing: the rungs it skipped go unjudged */
            for (int i = t->n_decided; i < k; i++) t->rung_value[i] = NAN;
        }
        stop = job->spec.pruner->decide(job->pruner, t->number, epoch, value);
        if (stop < 0) return cv_errf(err, stop, "pruner %s: out of memory",
                                     job->spec.pruner->name);
        cv_store_decision_t d = {t->id, t->number, epoch, value, stop};
        int rc = sched_checked(s, cv_store_decision_add(s->cfg.store, job->id, &d, now, err));
        if (rc) return rc;
        t->rung_value[k] = value;
        t->n_decided = k + 1;
        t->stopped = stop;
        if (stop)
            cv_log(s->cfg.log, CV_LOG_INFO, "trial %lld pruned at epoch %d (%s %.4g)",
                   (long long)t->id, epoch, cv_objective_name(job->spec.objective), value);
    }
    return sched_push_decision(s, t->worker, t->id, epoch, stop)
               ? cv_errf(err, CV_ENOMEM, "out of memory")
               : 0;
}

int cv_sched_on_progress(cv_sched_t *s, cv_sched_worker_t *w, int64_t trial_id, const char *lease,
                         const cv_epoch_t *epoch, char *err) {
    trial_t *t = w->trial;
    if (!t || t->id != trial_id || strcmp(t->lease, lease)) return CV_STORE_STALE;
    int rc = sched_group(s, err);
    if (rc == 0)
        rc = sched_checked(s, cv_store_curve_add(s->cfg.store, t->id, lease, epoch, 1, err));
    double v = t->job->spec.objective == CV_OBJECTIVE_DEV_COST ? epoch->dev_cost : epoch->dev_error;
    if (rc == 0 && isfinite(v) && !(v >= t->best_value)) t->best_value = v;
    if (rc == 0 && t->rung_value && isfinite(t->best_value))
        rc = trial_judge(s, t, (int)epoch->epoch, t->best_value, cv_clock_wall(), err);
    return rc;
}

/* A result for a trial not in memory: either a trial of a job that has ended and was unloaded
 * (a late or repeated result, refused as stale like any result under a lease that is no longer
 * current; the connection stays), or no trial at all (CV_EINVAL: a protocol violation). */
static int on_unloaded_result(cv_sched_t *s, cv_sched_worker_t *w, int64_t trial_id,
                              const char *lease, const char *model_path, char *err) {
    cv_store_trial_status_t status;
    int rc = cv_store_trial_status(s->cfg.store, trial_id, &status, err);
    if (rc == CV_STORE_NOT_FOUND)
        return cv_errf(err, CV_EINVAL, "result for unknown trial %lld", (long long)trial_id);
    if (rc) return rc;
    if (model_path) unlink(model_path);
    if (sched_group(s, err) == 0 &&
        sched_checked(s, cv_store_attempt_stale(s->cfg.store, trial_id, lease, err)) < 0)
        cv_log(s->cfg.log, CV_LOG_ERROR, "trial %lld: %s", (long long)trial_id, err);
    cv_log(s->cfg.log, CV_LOG_INFO, "worker %s: result of trial %lld refused: the trial is %s "
           "and its job has ended", w->id, (long long)trial_id,
           cv_store_trial_status_name(status));
    return s->cfg.ops.send_ack(w->conn, trial_id, 0) ? CV_EIO : 0;
}

int cv_sched_on_result(cv_sched_t *s, cv_sched_worker_t *w, int64_t trial_id, const char *lease,
                       const cv_trial_result_t *result, const char *model_path, double now,
                       char *err) {
    trial_t *t = sched_map_get(s, trial_id);
    if (!t) return on_unloaded_result(s, w, trial_id, lease, model_path, err);
    if (w->trial != t || strcmp(t->lease, lease)) {
        /* A result overtaken by a stop or a lost lease: refuse it, keep the connection. */
        if (model_path) unlink(model_path);
        if (sched_group(s, err) == 0 &&
            sched_checked(s, cv_store_attempt_stale(s->cfg.store, trial_id, lease, err)) == 0)
            cv_log(s->cfg.log, CV_LOG_INFO, "worker %s: result of trial %lld under a lost lease "
                   "refused", w->id, (long long)trial_id);
        return s->cfg.ops.send_ack(w->conn, trial_id, 0) ? CV_EIO : 0;
    }
    job_t *job = t->job;
    if (result->status == CV_TRIAL_STOPPED) {
        /* The worker was told to stop (SIGTERM: preemption, a time limit, scaling down) and gives
         * the trial back: to the front of the queue, its attempt recorded as interrupted (which
         * uses none of its attempts, also after a restart), and that worker gets no more
         * trials. */
        if (model_path) unlink(model_path);
        cv_log(s->cfg.log, CV_LOG_INFO, "worker %s is stopping and gave trial %lld back", w->id,
               (long long)trial_id);
        sched_trial_interrupt(s, t, now, "the worker was stopped before the trial ended");
        w->leaving = 1;
        return sched_push_ack(s, w, trial_id) ? cv_errf(err, CV_ENOMEM, "out of memory") : 0;
    }
    const cv_epoch_t *best = &result->best;
    cv_store_result_t r = {
        .status = result->status == CV_TRIAL_COMPLETED  ? CV_STORE_TRIAL_COMPLETED
                  : result->status == CV_TRIAL_DIVERGED ? CV_STORE_TRIAL_DIVERGED
                  : result->status == CV_TRIAL_PRUNED   ? CV_STORE_TRIAL_PRUNED
                                                        : CV_STORE_TRIAL_FAILED,
        .dev_error = best->dev_error,
        .dev_cost = best->dev_cost,
        .train_error = best->train_error,
        .train_cost = best->train_cost,
        .train_cost_reg = best->train_cost_reg,
        .best_epoch = result->best_epoch,
        .epochs_run = result->epochs_run,
        .examples_per_second = result->examples_per_second,
        .n_params = (int64_t)result->n_params,
        .error = result->error[0] ? result->error : NULL,
        .diagnosis = result->diagnosis.name,
    };
    /* A failure of the job's own making (result.fault "job") fails the job, not the worker. */
    int job_fault = r.status == CV_STORE_TRIAL_FAILED && result->job_fault;
    char dest[PATH_MAX];
    int rc = 0;
    if (model_path) {
        if ((rc = sched_keep_model(s, t, model_path, dest, sizeof dest, err))) return rc;
        r.model_path = dest;
    }
    if ((rc = sched_group(s, err))) return rc;
    sched_account(s, now);
    rc = sched_checked(s, cv_store_put_result(s->cfg.store, t->id, lease, &r, now, err));
    if (rc < 0) return rc;
    /* A diverged trial is the hyperparameters' fault, and a job's fault the job's: neither
     * counts against the worker. */
    int failures = 0, quarantine = 0;
    if (w->ask) {
        /* An HTTP client is no worker: it is neither counted nor quarantined. */
    } else if (job_fault)
        sched_checked(s, cv_store_worker_count(s->cfg.store, w->id, NULL));
    else if (sched_checked(s, cv_store_worker_outcome(s->cfg.store, w->id,
                                                      r.status != CV_STORE_TRIAL_FAILED, &failures,
                                                      NULL)) == 0 &&
             s->cfg.quarantine_after > 0 && failures >= s->cfg.quarantine_after &&
             !w->quarantined && sched_worker_quarantine(s, w, failures, t, r.error, now, err) == 0)
        quarantine = 1;
    t->status = r.status;
    t->objective = r.status != CV_STORE_TRIAL_COMPLETED ? NAN
                   : job->spec.objective == CV_OBJECTIVE_DEV_COST ? r.dev_cost
                                                                  : r.dev_error;
    t->worker = NULL;
    t->lease[0] = '\0';
    w->trial = NULL;
    job->running--;
    job->open--;
    if ((rc = sched_job_save_usage(s, job, 0, err))) return rc;
    if ((rc = sched_push_ack(s, w, trial_id))) return cv_errf(err, rc, "out of memory");
    /* Before job_advance: the streak includes this trial, whose retry keeps its round open. */
    if (quarantine) sched_retry_failed_streak(s, w);
    if (job_fault && job->status == CV_STORE_JOB_RUNNING) {
        char why[CV_ERRLEN];
        snprintf(why, sizeof why, "trial %lld failed: %s", (long long)t->id,
                 r.error ? r.error : "no reason given");
        cv_log(s->cfg.log, CV_LOG_WARN, "job %lld fails: the failure of trial %lld on worker %s "
               "is the job's own (its data, its spec or its size), not the worker's",
               (long long)job->id, (long long)t->id, w->id);
        return sched_job_fail(s, job, why, now, err);
    }
    return sched_job_settle(s, job, now, err);
}
