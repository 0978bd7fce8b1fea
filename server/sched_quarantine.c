/* Worker quarantine: a worker that fails quarantine_after trials in a row through its own fault
 * gets no trials for quarantine_seconds (or until released), and the trials of its failure
 * streak go back to the queue for other workers where their round is still open. */

#include "server/scheduler_internal.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"

/* Quarantines worker w after failures failed trials of its own fault in a row, the last t with
 * error, for the configured time. Runs inside the open group. */
int sched_worker_quarantine(cv_sched_t *s, cv_sched_worker_t *w, int failures, const trial_t *t,
                            const char *error, double now, char *err) {
    char reason[CV_ERRLEN], until_text[64] = "until released";
    snprintf(reason, sizeof reason, "%d failed trials in a row; the last: trial %lld of job %lld: "
             "%s", failures, (long long)t->id, (long long)t->job->id,
             error ? error : "no reason given");
    double until = s->cfg.quarantine_seconds > 0 ? now + s->cfg.quarantine_seconds : INFINITY;
    int rc = sched_checked(s, cv_store_worker_quarantine(s->cfg.store, w->id, reason, now,
                                                         isfinite(until) ? until : NAN, err));
    if (rc) return rc;
    w->quarantined = 1;
    w->quarantined_until = until;
    if (isfinite(until)) snprintf(until_text, sizeof until_text, "for %g s",
                                  s->cfg.quarantine_seconds);
    cv_log(s->cfg.log, CV_LOG_WARN, "worker %s quarantined %s after %s; it gets no trials "
           "meanwhile", w->id, until_text, reason);
    return 0;
}

/* Ends the quarantine of a connected worker (its time is up): it gets trials again and its count
 * of failures starts from 0. A store error is logged and leaves it quarantined. */
void sched_worker_unquarantine(cv_sched_t *s, cv_sched_worker_t *w, const char *how) {
    char err[CV_ERRLEN];
    int rc = sched_group(s, err);
    if (rc == 0) rc = sched_checked(s, cv_store_worker_release(s->cfg.store, w->id, err));
    if (rc < 0) {
        cv_log(s->cfg.log, CV_LOG_ERROR, "worker %s: %s", w->id, err);
        return;
    }
    w->quarantined = 0;
    w->quarantined_until = 0;
    cv_log(s->cfg.log, CV_LOG_INFO, "worker %s: quarantine %s; it gets trials again", w->id, how);
}

/* Loads a joining worker's quarantine from the store; one whose time ran out while the worker
 * was away is lifted. */
void sched_worker_load_quarantine(cv_sched_t *s, cv_sched_worker_t *w, double now) {
    char err[CV_ERRLEN];
    int quarantined = 0;
    double until = NAN;
    if (cv_store_worker_get(s->cfg.store, w->id, &quarantined, NULL, &until, err) < 0) {
        cv_log(s->cfg.log, CV_LOG_WARN, "worker %s: %s", w->id, err);
        return;
    }
    if (!quarantined) return;
    w->quarantined = 1;
    w->quarantined_until = isnan(until) ? INFINITY : until;
    if (now >= w->quarantined_until)
        sched_worker_unquarantine(s, w, "ended while it was away");
    else
        cv_log(s->cfg.log, CV_LOG_WARN, "worker %s is quarantined: it gets no trials", w->id);
}

int cv_sched_worker_release(cv_sched_t *s, const char *worker_id, double now,
                            int *was_quarantined, char *err) {
    (void)now;
    int quarantined = 0;
    double until;
    int rc = cv_store_worker_get(s->cfg.store, worker_id, &quarantined, NULL, &until, err);
    if (rc) return rc;
    if (was_quarantined) *was_quarantined = quarantined;
    if ((rc = sched_group(s, err)) ||
        (rc = sched_checked(s, cv_store_worker_release(s->cfg.store, worker_id, err))) ||
        (rc = sched_commit(s, err)))
        return rc;
    for (cv_sched_worker_t *w = s->workers; w; w = w->next)
        if (!strcmp(w->id, worker_id)) {
            w->quarantined = 0;
            w->quarantined_until = 0;
        }
    if (quarantined)
        cv_log(s->cfg.log, CV_LOG_INFO, "worker %s released from quarantine; it gets trials "
               "again", worker_id);
    return 0;
}

/* Puts one trial that failed on a quarantined worker back in its job's queue, when that is
 * still safe: the job runs and the trial belongs to its current round. A trial of a round that
 * already ended stays failed, since the round's completion (and the next round's region) were
 * decided with it final. Returns 1 when requeued, 0 when left as it is. */
static int retry_trial(cv_sched_t *s, const cv_sched_worker_t *w, int64_t trial_id) {
    char err[CV_ERRLEN];
    trial_t *t = sched_map_get(s, trial_id);
    const char *why = NULL;
    if (!t)
        why = "its job is no longer loaded";
    else if (t->status != CV_STORE_TRIAL_FAILED)
        return 0; /* already retried (it failed twice in the streak) or otherwise moved on */
    else if (t->job->status != CV_STORE_JOB_RUNNING)
        why = "its job is no longer running";
    else if (t->round != t->job->round)
        why = "its round already ended and the job moved on to the next one";
    if (why) {
        cv_log(s->cfg.log, CV_LOG_INFO, "trial %lld failed on quarantined worker %s but stays "
               "failed: %s", (long long)trial_id, w->id, why);
        return 0;
    }
    int rc = sched_checked(s, cv_store_trial_retry(s->cfg.store, t->id, err));
    if (rc) {
        if (rc < 0)
            cv_log(s->cfg.log, CV_LOG_ERROR, "trial %lld: %s", (long long)t->id, err);
        return 0;
    }
    job_t *job = t->job;
    t->status = CV_STORE_TRIAL_QUEUED;
    t->objective = NAN;
    job->open++;
    sched_queue_push(job, t, 1);
    return 1;
}

/* A worker was just quarantined: the trials of its failure streak (its last quarantine_after
 * results, all failed) failed because of the worker, not their configuration, so each goes
 * back to the queue for another worker where retry_trial allows. Runs inside the open group;
 * a store error is logged and leaves that trial failed. */
void sched_retry_failed_streak(cv_sched_t *s, const cv_sched_worker_t *w) {
    char err[CV_ERRLEN];
    int n = s->cfg.quarantine_after, count = 0, requeued = 0;
    int64_t *ids = malloc((size_t)n * sizeof *ids);
    if (!ids) {
        cv_log(s->cfg.log, CV_LOG_ERROR, "worker %s: out of memory; its failed trials stay "
               "failed", w->id);
        return;
    }
    if (cv_store_worker_failed_streak(s->cfg.store, w->id, n, ids, &count, err) < 0) {
        cv_log(s->cfg.log, CV_LOG_ERROR, "worker %s: %s", w->id, err);
        count = 0;
    }
    /* Newest first, each to the front of its queue: the oldest failure ends up first in line. */
    for (int i = 0; i < count; i++)
        requeued += retry_trial(s, w, ids[i]);
    free(ids);
    if (requeued)
        cv_log(s->cfg.log, CV_LOG_INFO, "%d trials that failed on quarantined worker %s are "
               "queued again", requeued, w->id);
}
