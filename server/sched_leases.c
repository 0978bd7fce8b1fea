/* Workers and their leases: a worker joining (re-attaching to the trials it still holds) and
 * leaving, the lease of a queued trial to an idle worker (cv_sched_dispatch), a lease that ends
 * without a result (lost, or interrupted by a restart or a stopping worker), and the trials that
 * wait for their workers after a restart (orphans). */

#include "server/scheduler_internal.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "common/rng.h"

/* Forgets t as an orphan (it was re-attached, put back in the queue or cancelled). */
void sched_orphan_forget(cv_sched_t *s, const trial_t *t) {
    for (size_t i = 0; i < s->n_orphans; i++)
        if (s->orphans[i].t == t) s->orphans[i].t = NULL;
}

/* Puts a running trial back at the front of its job's queue without a result and without using
 * one of its attempts: no worker re-attached to its lease after a restart (why NULL: "the
 * coordinator restarted"), or its worker was stopped and gave it back. The attempt ends
 * interrupted. */
void sched_trial_interrupt(cv_sched_t *s, trial_t *t, double now, const char *why) {
    char err[CV_ERRLEN];
    int rc = sched_group(s, err);
    if (rc == 0)
        rc = sched_checked(s,
                           cv_store_trial_interrupt(s->cfg.store, t->id, t->lease, why, now, err));
    if (rc < 0) cv_log(s->cfg.log, CV_LOG_ERROR, "trial %lld: %s", (long long)t->id, err);
    sched_orphan_forget(s, t);
    if (t->worker) t->worker->trial = NULL;
    t->worker = NULL;
    t->lease[0] = '\0';
    t->status = CV_STORE_TRIAL_QUEUED;
    t->interrupted++;
    t->job->running--;
    sched_queue_push(t->job, t, 1);
}

/* The end of the re-attachment grace: every orphan left goes back to the queue. */
void sched_orphans_expire(cv_sched_t *s, double now) {
    size_t n = 0;
    for (size_t i = 0; i < s->n_orphans; i++) {
        trial_t *t = s->orphans[i].t;
        if (!t) continue;
        cv_log(s->cfg.log, CV_LOG_INFO, "trial %lld: worker %s did not re-attach within the "
               "grace after the restart; it is queued again (interrupted, not counted as an "
               "attempt)", (long long)t->id, s->orphans[i].worker);
        sched_trial_interrupt(s, t, now, NULL);
        n++;
    }
    free(s->orphans);
    s->orphans = NULL;
    s->n_orphans = 0;
    if (n)
        cv_log(s->cfg.log, CV_LOG_INFO, "%zu trials that were running are queued again", n);
}

static void new_lease(cv_sched_t *s, char out[33]) {
    static const char digits[] = "0123456789abcdef";
    uint64_t a = cv_rng_next(&s->lease_rng), b = cv_rng_next(&s->lease_rng);
    for (int i = 0; i < 16; i++) {
        out[i] = digits[(a >> (4 * i)) & 15];
        out[16 + i] = digits[(b >> (4 * i)) & 15];
    }
    out[32] = '\0';
}

/* A worker that held trials before the restart said hello without re-attaching to them: it
 * lost them (it restarted too, or dropped them), so they go back to the queue now rather than
 * at the end of the grace. */
static void orphans_of_returning_worker(cv_sched_t *s, const cv_sched_worker_t *w, double now) {
    for (size_t i = 0; i < s->n_orphans; i++) {
        trial_t *t = s->orphans[i].t;
        if (!t || strcmp(s->orphans[i].worker, w->id)) continue;
        cv_log(s->cfg.log, CV_LOG_INFO, "worker %s came back without trial %lld, which it ran "
               "before the restart; it is queued again (interrupted, not counted as an attempt)",
               w->id, (long long)t->id);
        sched_trial_interrupt(s, t, now, NULL);
    }
}

cv_sched_worker_t *cv_sched_worker_join(cv_sched_t *s, void *conn, const char *worker_id,
                                        const char *version, int threads, const char *host,
                                        const int64_t *lease_trials, const char (*leases)[33],
                                        int n_leases, int64_t *reattached, int *n_reattached,
                                        double now) {
    char err[CV_ERRLEN];
    *n_reattached = 0;
    sched_account(s, now);
    cv_sched_worker_t *w = calloc(1, sizeof *w);
    if (!w) return NULL;
    w->conn = conn;
    w->last_seen = now;
    snprintf(w->id, sizeof w->id, "%s", worker_id);
    w->next = s->workers;
    if (s->workers) s->workers->prev = w;
    s->workers = w;
    if (sched_group(s, err) ||
        sched_checked(
            s, cv_store_worker_seen(s->cfg.store, worker_id, version, threads, host, now, err)))
        cv_log(s->cfg.log, CV_LOG_WARN, "worker %s: %s", worker_id, err);
    sched_worker_load_quarantine(s, w, now);
    for (int i = 0; i < n_leases; i++) {
        trial_t *t = sched_map_get(s, lease_trials[i]);
        if (!t || t->status != CV_STORE_TRIAL_RUNNING || strcmp(t->lease, leases[i]) || w->trial) {
            /* A lease lost while the worker was away: refused (not in the welcome's list). */
            if (sched_checked(
                    s, cv_store_attempt_stale(s->cfg.store, lease_trials[i], leases[i], err)) == 0)
                cv_log(s->cfg.log, CV_LOG_INFO, "worker %s claimed trial %lld under a lease it "
                       "lost; refused", w->id, (long long)lease_trials[i]);
            continue;
        }
        if (t->worker) t->worker->trial = NULL; /* its old connection is not closed yet */
        if (!t->worker) sched_orphan_forget(s, t);
        t->worker = w;
        w->trial = t;
        reattached[(*n_reattached)++] = t->id;
        /* A stop decided before the restart may not have reached it: it is sent again. */
        if (t->stopped && sched_push_decision(s, w, t->id, t->job->rungs[t->n_decided - 1], 1))
            cv_log(s->cfg.log, CV_LOG_ERROR, "trial %lld: out of memory", (long long)t->id);
        cv_log(s->cfg.log, CV_LOG_INFO, "worker %s re-attached to trial %lld", w->id,
               (long long)t->id);
    }
    orphans_of_returning_worker(s, w, now);
    return w;
}

/* Takes a running trial off its worker (or ask lease), recording the attempt as lost: back to
 * the front of the queue, or failed once it used its attempts. The holder's trial is the
 * caller's to clear. */
void sched_trial_release(cv_sched_t *s, trial_t *t, double now) {
    char err[CV_ERRLEN];
    job_t *job = t->job;
    int lost = t->attempts - t->interrupted >= s->cfg.max_attempts;
    cv_store_trial_status_t to = lost ? CV_STORE_TRIAL_FAILED : CV_STORE_TRIAL_QUEUED;
    int rc = sched_group(s, err);
    if (rc == 0)
        rc = sched_checked(s, cv_store_trial_requeue(s->cfg.store, t->id, t->lease, to, now, err));
    if (rc < 0) cv_log(s->cfg.log, CV_LOG_ERROR, "trial %lld: %s", (long long)t->id, err);
    t->worker = NULL;
    t->lease[0] = '\0';
    job->running--;
    t->status = to;
    if (lost) {
        job->open--;
        cv_log(s->cfg.log, CV_LOG_WARN, "trial %lld failed: lost %d leases", (long long)t->id,
               t->attempts - t->interrupted);
        if (sched_job_settle(s, job, now, err))
            cv_log(s->cfg.log, CV_LOG_ERROR, "job %lld: %s", (long long)job->id, err);
    } else {
        sched_queue_push(job, t, 1);
    }
}

void cv_sched_worker_leave(cv_sched_t *s, cv_sched_worker_t *w, double now) {
    char err[CV_ERRLEN];
    if (!w) return;
    sched_account(s, now);
    /* The store's last_seen was its hello: it becomes the time of its last message. */
    if (sched_group(s, err) ||
        sched_checked(s, cv_store_worker_last_seen(s->cfg.store, w->id, w->last_seen, err)) < 0)
        cv_log(s->cfg.log, CV_LOG_WARN, "worker %s: %s", w->id, err);
    sched_forget_worker(s, w);
    if (w->trial && s->detached) {
        /* The coordinator stops: the trial stays running under its lease in the store, for the
         * worker to re-attach to after the restart. */
        cv_log(s->cfg.log, CV_LOG_INFO, "worker %s disconnected at shutdown; trial %lld keeps "
               "its lease for a restart", w->id, (long long)w->trial->id);
        w->trial->worker = NULL;
        w->trial = NULL;
    } else if (w->trial) {
        cv_log(s->cfg.log, CV_LOG_WARN, "worker %s left while running trial %lld", w->id,
               (long long)w->trial->id);
        sched_trial_release(s, w->trial, now);
    }
    if (w->prev) w->prev->next = w->next;
    else s->workers = w->next;
    if (w->next) w->next->prev = w->prev;
    if (s->rr && s->rr->running < 0) s->rr->running = 0;
    cv_evals_worker_left(s->evals, s, w); /* its evaluation, if any, goes to another worker */
    free(w);
}

void cv_sched_detach(cv_sched_t *s) {
    if (s) s->detached = 1;
}

/* Whether worker w can train the trials of job: builtin trials go to every worker; those of
 * "ask" jobs to none (clients ask for them over HTTP). */
static int offers(const cv_sched_worker_t *w, const char *trainer) {
    for (size_t i = 0; i < w->n_trainers; i++)
        if (strcmp(w->trainers[i], trainer) == 0) return 1;
    return 0;
}

/* A worker trains built-in trials, and the trials of an external trainer it offers; ask jobs
 * are handed out over HTTP only. */
static int worker_takes(const cv_sched_worker_t *w, const job_t *job) {
    switch (job->spec.trainer_kind) {
    case CV_TRAINER_BUILTIN: return 1;
    case CV_TRAINER_EXTERNAL: return offers(w, job->spec.trainer);
    default: return 0;
    }
}

void cv_sched_worker_set_trainers(cv_sched_worker_t *w, const char (*names)[CV_MSG_TRAINER_MAX + 1],
                                  size_t n) {
    w->n_trainers = n < CV_MSG_TRAINERS_MAX ? n : CV_MSG_TRAINERS_MAX;
    memcpy(w->trainers, names, w->n_trainers * sizeof *w->trainers);
}

int cv_sched_trainer_offered(const cv_sched_t *s, const char *name, char *offered, size_t cap) {
    size_t used = 0;
    if (cap) offered[0] = '\0';
    for (const cv_sched_worker_t *w = s->workers; w; w = w->next) {
        if (offers(w, name)) return 1;
        for (size_t i = 0; i < w->n_trainers; i++) {
            int seen = 0; /* named by a worker listed before, or earlier in this one's list */
            for (const cv_sched_worker_t *v = s->workers; v != w && !seen; v = v->next)
                seen = offers(v, w->trainers[i]);
            for (size_t k = 0; k < i && !seen; k++) seen = !strcmp(w->trainers[k], w->trainers[i]);
            if (seen || used >= cap) continue;
            int k = snprintf(offered + used, cap - used, "%s%s", used ? ", " : "", w->trainers[i]);
            used += k > 0 ? (size_t)k : 0;
        }
    }
    if (used == 0 && cap) snprintf(offered, cap, "none");
    return 0;
}

/* The next job worker w can train with a queued trial or one more to propose, and room under
 * max_parallel, round-robin over jobs. */
static job_t *next_job(cv_sched_t *s, const cv_sched_worker_t *w) {
    job_t *start = s->rr && s->rr->next ? s->rr->next : s->jobs, *j = start;
    if (!j) return NULL;
    do {
        int more = j->qhead || (!j->exhausted && j->n_trials < j->spec.max_trials);
        if (j->status == CV_STORE_JOB_RUNNING && more && !j->checking && worker_takes(w, j) &&
            (uint32_t)j->running < j->spec.max_parallel) {
            s->rr = j;
            return j;
        }
        j = j->next ? j->next : s->jobs;
    } while (j != start);
    return NULL;
}

/* Sends trial t, leased to worker w under t->lease, as a trial message whose spec is text. */
static int send_trial(cv_sched_t *s, cv_sched_worker_t *w, const trial_t *t, const char *text,
                      char *err) {
    const job_t *job = t->job;
    cv_msg_trial_t m = {.trial_id = t->id, .job_id = job->id, .n_files = job->n_files};
    if (job->spec.trainer_kind == CV_TRAINER_EXTERNAL) /* its worker picks the best epoch */
        m.objective = job->spec.objective == CV_OBJECTIVE_DEV_COST ? CV_MSG_OBJECTIVE_DEV_COST
                                                                   : CV_MSG_OBJECTIVE_DEV_ERROR;
    memcpy(m.lease, t->lease, sizeof m.lease);
    memcpy(m.files, job->files, job->n_files * sizeof *m.files);
    /* Every rung of the job: the worker waits only at those below its epochs, which a nudge
     * may raise past the ones it started with. */
    while (m.n_decide_at < job->n_rungs && m.n_decide_at < CV_MSG_DECIDE_MAX) {
        m.decide_at[m.n_decide_at] = job->rungs[m.n_decide_at];
        m.n_decide_at++;
    }
    cJSON *spec = cJSON_Parse(text);
    m.spec = spec;
    int rc = spec && s->cfg.ops.send_trial(w->conn, &m) == 0
                 ? 0
                 : cv_errf(err, CV_EIO, "cannot send to worker %s", w->id);
    cJSON_Delete(spec);
    return rc;
}

/* Leases t, just taken off the front of its job's queue, to w (a worker or an ask lease) under a
 * fresh token, in the open group: t is then running on w. On failure t is back at the front of
 * the queue, err says why, and a store that no longer has it queued is frozen (memory and disk
 * disagree). */
int sched_lease(cv_sched_t *s, cv_sched_worker_t *w, trial_t *t, double now, char *err) {
    char token[33];
    new_lease(s, token);
    int rc = sched_group(s, err);
    if (rc == 0)
        rc = sched_checked(s, cv_store_trial_start(s->cfg.store, t->id, w->id, token, now, err));
    if (rc) {
        sched_queue_push(t->job, t, 1);
        if (rc > 0) {
            cv_errf(err, CV_EIO, "the store no longer has it queued");
            sched_break(s);
        }
        return rc;
    }
    memcpy(t->lease, token, sizeof token);
    t->status = CV_STORE_TRIAL_RUNNING;
    t->attempts++;
    t->worker = w;
    w->trial = t;
    t->job->running++;
    t->best_value = NAN;
    return 0;
}

/* Makes sure job has a queued trial, proposing one when its queue is empty. Returns 1 when it
 * has one, 0 when none can be proposed (the job is settled: it ends once its open trials are
 * final), or a negative code with err. */
int sched_job_fill(cv_sched_t *s, job_t *job, double now, char *err) {
    if (job->qhead) return 1;
    int made = sched_job_propose(s, job, now, err);
    if (made != 0) return made;
    char why[CV_ERRLEN];
    if (sched_job_settle(s, job, now, why)) /* exhausted: next_job passes it by now */
        cv_log(s->cfg.log, CV_LOG_ERROR, "job %lld: %s", (long long)job->id, why);
    return 0;
}

void cv_sched_dispatch(cv_sched_t *s, double now) {
    char err[CV_ERRLEN];
    sched_account(s, now);
    for (cv_sched_worker_t *w = s->workers; w; w = w->next) {
        if (w->quarantined && now >= w->quarantined_until) sched_worker_unquarantine(s, w, "ended");
        if (w->trial || w->quarantined || w->leaving) continue;
        /* A test-set evaluation goes before trials: a user waits for it (evaluation.h). */
        if (cv_evals_busy(s->evals, w) ||
            cv_evals_assign(s->evals, w, w->conn, w->id, s->cfg.ops.send_evaluate))
            continue;
        job_t *job;
        int made = 0;
        while ((job = next_job(s, w)) && (made = sched_job_fill(s, job, now, err)) == 0) {}
        if (made < 0) {
            cv_log(s->cfg.log, CV_LOG_ERROR, "job %lld: cannot propose a trial: %s",
                   (long long)job->id, err);
            return;
        }
        if (!job) continue; /* another worker may take what this one cannot */
        trial_t *t = sched_queue_pop(job);
        char *text = sched_trial_spec_text(job, t->params);
        int rc = text ? sched_lease(s, w, t, now, err) : cv_errf(err, CV_ENOMEM, "out of memory");
        if (!text) sched_queue_push(job, t, 1);
        if (rc == 0) rc = send_trial(s, w, t, text, err);
        if (rc == 0) sched_nudges_send(s, t, 1); /* a re-run gets its nudges again */
        free(text);
        if (rc) {
            cv_log(s->cfg.log, CV_LOG_ERROR, "trial %lld cannot be leased: %s", (long long)t->id,
                   err);
            return;
        }
    }
}

void cv_sched_worker_seen(cv_sched_worker_t *w, double now) {
    if (w && now > w->last_seen) w->last_seen = now;
}

size_t cv_sched_workers_view(const cv_sched_t *s, cv_sched_worker_view_t *out, size_t cap) {
    size_t n = 0;
    for (const cv_sched_worker_t *w = s->workers; w; w = w->next, n++) {
        if (n >= cap) continue;
        out[n] = (cv_sched_worker_view_t){
            .id = w->id,
            .quarantined = w->quarantined,
            .trial_id = w->trial ? w->trial->id : 0,
            .job_id = w->trial ? w->trial->job->id : 0,
            .last_seen = w->last_seen,
            .n_trainers = w->n_trainers,
        };
        memcpy(out[n].trainers, w->trainers, w->n_trainers * sizeof *w->trainers);
    }
    return n;
}

int cv_sched_busy(const cv_sched_t *s) {
    int n = 0;
    for (const cv_sched_worker_t *w = s->workers; w; w = w->next) n += w->trial != NULL;
    return n;
}

int cv_sched_holds_lease(const cv_sched_t *s, const cv_sched_worker_t *w, int64_t trial_id,
                         const char *lease) {
    const trial_t *t = sched_map_get(s, trial_id);
    return t && w && w->trial == t && t->status == CV_STORE_TRIAL_RUNNING &&
           strcmp(t->lease, lease) == 0;
}
