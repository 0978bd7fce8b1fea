/* Ask/tell: the trials of jobs whose trainer is "ask", leased to HTTP clients instead of
 * workers (see scheduler.h). Each lease is a slot of its own (a cv_sched_worker_t with ask set,
 * on s->asks), so that a report and a tell take the paths of a worker's progress and result
 * (cv_sched_on_progress, cv_sched_on_result): the lease rule, the pruner, the curve, the best
 * epoch and the job's end are theirs. What is particular to clients lives here: handing out a
 * trial on request, the lease's expiry without a report (cv_sched_tick), the answers that wait
 * for the commit, and the lease held again after a restart. */

#include "server/scheduler_internal.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "common/json.h"

/* A new slot named "ask:<client>" ("ask" for an anonymous client), linked on s->asks, or NULL
 * when out of memory. */
static cv_sched_worker_t *slot_new(cv_sched_t *s, const char *client) {
    cv_sched_worker_t *w = calloc(1, sizeof *w);
    if (!w) return NULL;
    w->ask = 1;
    snprintf(w->id, sizeof w->id, "%s%s", client && *client ? "ask:" : "ask", client ? client : "");
    w->next = s->asks;
    if (s->asks) s->asks->prev = w;
    s->asks = w;
    return w;
}

static void slot_free(cv_sched_t *s, cv_sched_worker_t *w) {
    sched_forget_worker(s, w); /* its tell's acknowledgement may still wait for a sync */
    if (w->prev)
        w->prev->next = w->next;
    else
        s->asks = w->next;
    if (w->next) w->next->prev = w->prev;
    free(w);
}

void sched_ask_free_all(cv_sched_t *s) {
    while (s->asks)
        slot_free(s, s->asks);
    free(s->ask_replies);
    s->ask_replies = NULL;
    s->n_ask_replies = s->ask_replies_cap = 0;
}

int sched_ask_restore(cv_sched_t *s, trial_t *t, const char *lease, const char *worker_id,
                      double now) {
    const char *client = worker_id && !strncmp(worker_id, "ask:", 4) ? worker_id + 4 : NULL;
    cv_sched_worker_t *w = slot_new(s, client);
    if (!w) return CV_ENOMEM;
    snprintf(t->lease, sizeof t->lease, "%s", lease ? lease : "");
    w->trial = t;
    w->expires = now + s->cfg.ask_lease_seconds;
    t->worker = w;
    t->job->running++;
    if (s->cfg.log)
        cv_log(s->cfg.log, CV_LOG_INFO,
               "trial %lld keeps its ask lease (%s) for %g s after the restart",
               (long long)t->id, w->id, s->cfg.ask_lease_seconds);
    return 0;
}

void sched_ask_expire(cv_sched_t *s, double now) {
    int lost = 0;
    for (cv_sched_worker_t *w = s->asks; w; w = w->next) {
        trial_t *t = w->trial;
        if (!t || now < w->expires) continue;
        if (!lost++) sched_account(s, now);
        cv_log(s->cfg.log, CV_LOG_WARN,
               "trial %lld: %s sent no report for %g s; its lease is lost",
               (long long)t->id, w->id, s->cfg.ask_lease_seconds);
        w->trial = NULL;
        sched_trial_release(s, t, now);
    }
}

void sched_ask_flush(cv_sched_t *s, int committed, uint64_t upto) {
    /* The answers may call back into the scheduler: those due are counted first, and what the
     * calls add stays after them. */
    size_t k = 0;
    while (k < s->n_ask_replies && (!committed || (s->ask_replies[k].seq &&
                                                   s->ask_replies[k].seq <= upto)))
        k++;
    for (size_t i = 0; i < k; i++) {
        ask_reply_t r = s->ask_replies[i];
        r.done(r.ctx, committed, r.stop);
    }
    if (k)
        memmove(s->ask_replies, s->ask_replies + k,
                (s->n_ask_replies - k) * sizeof *s->ask_replies);
    s->n_ask_replies -= k;
    cv_sched_worker_t *next;
    for (cv_sched_worker_t *w = s->asks; w; w = next) {
        next = w->next;
        if (!w->trial) slot_free(s, w); /* told, lost or cancelled: nothing refers to it now */
    }
}

int cv_sched_ask_leases(const cv_sched_t *s) {
    int n = 0;
    for (const cv_sched_worker_t *w = s->asks; w; w = w->next)
        n += w->trial != NULL;
    return n;
}

double cv_sched_ask_lease_seconds(const cv_sched_t *s) {
    return s->cfg.ask_lease_seconds;
}

/* A job that is not in memory: ended (its ask is answered done) or never there. */
static int ask_unloaded(cv_sched_t *s, int64_t job_id, cv_sched_asked_t *out, char *err) {
    cJSON *job = NULL;
    int rc = cv_store_job_get(s->cfg.store, job_id, &job, err);
    if (rc) return rc;
    const cJSON *spec = cJSON_GetObjectItemCaseSensitive(job, "spec");
    const char *trainer = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(spec, "trainer"));
    if (trainer && !strcmp(trainer, "ask"))
        out->done = 1;
    else
        rc = cv_errf(err, CV_STORE_STALE,
                     "job %lld is not an ask job: its trainer is \"%s\"; "
                     "its trials go to workers",
                     (long long)job_id, trainer ? trainer : "builtin");
    cJSON_Delete(job);
    return rc;
}

/* The params of an ask trial: its trial text without the "trainer" member (malloc'd). */
static char *ask_params(const job_t *job, const trial_t *t) {
    char *text = sched_trial_spec_text(job, t->params), *out = NULL;
    cJSON *obj = text ? cJSON_Parse(text) : NULL;
    free(text);
    if (!obj) return NULL;
    cJSON_DeleteItemFromObjectCaseSensitive(obj, CV_JOB_TRAINER_FIELD);
    char *printed = cJSON_PrintUnformatted(obj);
    if (printed) out = strdup(printed);
    cJSON_free(printed);
    cJSON_Delete(obj);
    return out;
}

int cv_sched_ask(cv_sched_t *s, int64_t job_id, const char *client, double now,
                 cv_sched_asked_t *out, cv_sched_ask_done_fn done, void *ctx, char *err) {
    *out = (cv_sched_asked_t){.job_id = job_id, .lease_seconds = s->cfg.ask_lease_seconds};
    job_t *job = sched_job_find(s, job_id);
    if (!job) return ask_unloaded(s, job_id, out, err);
    if (job->spec.trainer_kind != CV_TRAINER_ASK)
        return cv_errf(err, CV_STORE_STALE,
                       "job %lld is not an ask job: its trainer is \"%s\"; "
                       "its trials go to workers",
                       (long long)job_id, job->spec.trainer);
    if (job->status != CV_STORE_JOB_RUNNING) {
        out->done = 1;
        return 0;
    }
    if (s->broken) return cv_errf(err, CV_EIO, "an earlier store write failed");
    if (job->checking || (uint32_t)job->running >= job->spec.max_parallel) return 0;
    sched_account(s, now);
    int rc = sched_job_fill(s, job, now, err);
    if (rc <= 0) {
        out->done = job->status != CV_STORE_JOB_RUNNING;
        return rc;
    }
    trial_t *t = sched_queue_pop(job);
    char *params = ask_params(job, t);
    cv_sched_worker_t *w = params ? slot_new(s, client) : NULL;
    if (!w) {
        free(params);
        sched_queue_push(job, t, 1);
        return cv_errf(err, CV_ENOMEM, "out of memory");
    }
    if ((rc = sched_lease(s, w, t, now, err)) == 0 && (rc = sched_push_reply(s, done, ctx, 0)) != 0) {
        cv_errf(err, rc, "out of memory"); /* leased but unanswered: the lease will expire */
    }
    if (rc) {
        free(params);
        return rc; /* a slot left without a trial goes at the next flush */
    }
    w->expires = now + s->cfg.ask_lease_seconds;
    out->trial_id = t->id;
    out->number = t->number;
    out->epochs = t->epochs;
    out->params = params;
    memcpy(out->lease, t->lease, sizeof out->lease);
    cv_log(s->cfg.log, CV_LOG_INFO, "trial %lld of job %lld leased to %s", (long long)t->id,
           (long long)job_id, w->id);
    return 0;
}

/* The slot holding trial_id under lease, or NULL with the reason in err: CV_STORE_NOT_FOUND for
 * no such trial, else CV_STORE_STALE (the lease's attempt, if it had one, becomes stale). */
static cv_sched_worker_t *holder(cv_sched_t *s, int64_t trial_id, const char *lease, int *rc,
                                 char *err) {
    trial_t *t = sched_map_get(s, trial_id);
    if (t && t->worker && t->worker->ask && t->status == CV_STORE_TRIAL_RUNNING &&
        !strcmp(t->lease, lease))
        return t->worker;
    cv_store_trial_status_t status = CV_STORE_TRIAL_QUEUED;
    if (!t) {
        *rc = cv_store_trial_status(s->cfg.store, trial_id, &status, err);
        if (*rc) return NULL; /* CV_STORE_NOT_FOUND, or the store failed */
    } else {
        status = t->status;
    }
    char why[CV_ERRLEN];
    if (sched_group(s, why) == 0 &&
        sched_checked(s, cv_store_attempt_stale(s->cfg.store, trial_id, lease, why)) < 0)
        cv_log(s->cfg.log, CV_LOG_ERROR, "trial %lld: %s", (long long)trial_id, why);
    if (t && t->worker && !t->worker->ask)
        *rc = cv_errf(err, CV_STORE_STALE, "trial %lld is not an ask trial: a worker trains it",
                      (long long)trial_id);
    else
        *rc = cv_errf(err, CV_STORE_STALE,
                      "stale lease: trial %lld is %s%s and this lease is not "
                      "its current one",
                      (long long)trial_id, cv_store_trial_status_name(status),
                      t ? "" : " (its job has ended)");
    return NULL;
}

int cv_sched_ask_report(cv_sched_t *s, int64_t trial_id, const char *lease, const cv_epoch_t *epoch,
                        double now, cv_sched_ask_done_fn done, void *ctx, char *err) {
    int rc = 0;
    cv_sched_worker_t *w = holder(s, trial_id, lease, &rc, err);
    if (!w) return rc;
    trial_t *t = w->trial;
    if (epoch->epoch > t->epochs)
        return cv_errf(err, CV_EINVAL, "epoch: must be at most %d (the trial's epochs), got %lld",
                       t->epochs, (long long)epoch->epoch);
    double before = t->best_value;
    if ((rc = cv_sched_on_progress(s, w, trial_id, lease, epoch, err))) return rc;
    w->expires = now + s->cfg.ask_lease_seconds;
    if (epoch->epoch > w->last_epoch) w->last_epoch = (int)epoch->epoch;
    if (!(t->best_value >= before) || !w->best_epoch) w->best_epoch = (int)epoch->epoch;
    if ((rc = sched_push_reply(s, done, ctx, t->stopped))) return cv_errf(err, rc, "out of memory");
    return 0;
}

int cv_sched_ask_tell(cv_sched_t *s, int64_t trial_id, const char *lease, const cv_epoch_t *best,
                      const char *error, double now, cv_sched_ask_done_fn done, void *ctx,
                      char *err) {
    int rc = 0;
    cv_sched_worker_t *w = holder(s, trial_id, lease, &rc, err);
    if (!w) return rc;
    trial_t *t = w->trial;
    cv_trial_result_t *r = calloc(1, sizeof *r); /* large: its error and diagnosis buffers */
    if (!r) return cv_errf(err, CV_ENOMEM, "out of memory");
    r->status = error ? CV_TRIAL_FAILED : t->stopped ? CV_TRIAL_PRUNED : CV_TRIAL_COMPLETED;
    r->best = *best;
    r->best_epoch = best->epoch > 0 ? (int)best->epoch : w->best_epoch ? w->best_epoch : t->epochs;
    if (error) r->best_epoch = 0;
    r->epochs_run = w->last_epoch > r->best_epoch ? w->last_epoch : r->best_epoch;
    r->examples_per_second = NAN;
    r->seconds = NAN;
    if (r->best_epoch > t->epochs) {
        int e = r->best_epoch;
        free(r);
        return cv_errf(err, CV_EINVAL, "epoch: must be at most %d (the trial's epochs), got %d",
                       t->epochs, e);
    }
    if (error) snprintf(r->error, sizeof r->error, "%s", error);
    rc = cv_sched_on_result(s, w, trial_id, lease, r, NULL, now, err);
    free(r);
    if (rc) return rc;
    if ((rc = sched_push_reply(s, done, ctx, 0))) return cv_errf(err, rc, "out of memory");
    cv_log(s->cfg.log, CV_LOG_INFO, "trial %lld told %s by %s", (long long)trial_id,
           error        ? "failed"
           : t->stopped ? "pruned"
                        : "completed",
           w->id);
    return 0;
}
