/* The scheduler's creation and recovery after a restart: every running job is loaded from the
 * store with its trials and its pruner's decisions, trials that were running wait for their
 * workers (orphans), and the dataset files of resumed jobs are checked again on the thread pool
 * before any trial is leased. */

#include "server/scheduler_internal.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/random.h>

#include "common/clock.h"
#include "common/err.h"
#include "common/rng.h"
#include "server/job_spec.h"
#include "common/space.h"

/* A trial the store has running since before the restart waits for its worker (by worker_id)
 * to claim its lease. */
static int orphan_add(cv_sched_t *s, trial_t *t, const char *lease, const char *worker_id) {
    orphan_t *o = realloc(s->orphans, (s->n_orphans + 1) * sizeof *o);
    if (!o) return CV_ENOMEM;
    s->orphans = o;
    o[s->n_orphans].t = t;
    snprintf(o[s->n_orphans].worker, sizeof o->worker, "%s", worker_id ? worker_id : "");
    s->n_orphans++;
    snprintf(t->lease, sizeof t->lease, "%s", lease ? lease : "");
    t->job->running++;
    return 0;
}

static int resume_trial(void *ctx, const cv_store_trial_row_t *row) {
    resume_ctx_t *c = ctx;
    job_t *job = c->job;
    trial_t *t = sched_trial_new(c->s, job, row->id, row->number, row->round, row->params);
    if (!t || sched_keys_add(job, fnv1a(row->config_key)) < 0) return CV_ENOMEM;
    t->status = row->status;
    t->attempts = row->attempts;
    t->interrupted = row->interrupted;
    t->objective = row->status == CV_STORE_TRIAL_COMPLETED ? row->objective : NAN;
    if (row->status == CV_STORE_TRIAL_RUNNING && job->n_rungs) {
        double dev_error, dev_cost;
        int rc = cv_store_trial_curve_best(c->s->cfg.store, t->id, &dev_error, &dev_cost, c->err);
        if (rc) return rc;
        t->best_value = job->spec.objective == CV_OBJECTIVE_DEV_COST ? dev_cost : dev_error;
    }
    if (row->status == CV_STORE_TRIAL_QUEUED) sched_queue_push(job, t, 0);
    if (row->status == CV_STORE_TRIAL_RUNNING && job->spec.trainer_kind == CV_TRAINER_ASK) {
        /* An ask client's lease survives the restart: held again for ask_lease_seconds. */
        if (sched_ask_restore(c->s, t, row->lease, row->worker_id, c->now))
            return cv_errf(c->err, CV_ENOMEM, "out of memory for trial %lld, which was running",
                           (long long)row->id);
    } else if (row->status == CV_STORE_TRIAL_RUNNING &&
               orphan_add(c->s, t, row->lease, row->worker_id))
        return cv_errf(c->err, CV_ENOMEM, "out of memory for trial %lld, which was running",
                       (long long)row->id);
    if (!is_final(row->status)) job->open++;
    return 0;
}

/* Gives a resumed job's pruner the decisions it made before, in their order, and each trial
 * what was decided about it: nothing is judged twice. */
static int resume_decision(void *ctx, const cv_store_decision_t *d) {
    resume_ctx_t *c = ctx;
    job_t *job = c->job;
    int rc = job->spec.pruner->replay(job->pruner, d->number, d->epoch, d->value, d->stopped);
    if (rc) return cv_errf(c->err, rc, "job %lld: pruner %s cannot replay its decisions",
                           (long long)job->id, job->spec.pruner->name);
    trial_t *t = sched_map_get(c->s, d->trial_id);
    int k = 0;
    while ((size_t)k < job->n_rungs && job->rungs[k] != d->epoch) k++;
    if (!t || !t->rung_value || (size_t)k >= job->n_rungs) return 0;
    for (int i = t->n_decided; i < k; i++) t->rung_value[i] = NAN;
    t->rung_value[k] = d->value;
    if (k + 1 > t->n_decided) t->n_decided = k + 1;
    t->stopped |= d->stopped;
    return 0;
}

/* Loads a job's trials and its pruner's decisions from the store. */
int sched_job_load(resume_ctx_t *ctx) {
    int rc = cv_store_trials_each(ctx->s->cfg.store, ctx->job->id, resume_trial, ctx, ctx->err);
    if (rc == 0 && ctx->job->n_rungs)
        rc = cv_store_decisions_each(ctx->s->cfg.store, ctx->job->id, resume_decision, ctx,
                                     ctx->err);
    return rc;
}

/* A resumed job's files were checked: it gets them and may run, or fails when they are gone or
 * changed into something unusable. */
void sched_after_resume_check(cv_dataset_check_t *check, void *userdata) {
    resume_check_t *rc_ = userdata;
    cv_sched_t *s = rc_->s;
    for (resume_check_t **p = &s->checks; *p; p = &(*p)->next)
        if (*p == rc_) {
            *p = rc_->next;
            break;
        }
    job_t *job = sched_job_find(s, rc_->job_id);
    char err[CV_ERRLEN], why[CV_ERRLEN], text[CV_ERRLEN + 64];
    int rc = cv_dataset_check_status(check, why);
    if (job && job->status == CV_STORE_JOB_RUNNING && rc != CV_ESTOPPED) {
        if (rc == 0 && (rc = sched_job_apply_files(s, job, check, why)) == 0) {
            free(job->fixed);
            job->fixed = NULL;
            rc = sched_job_fixed_text(job, why);
        }
        if (rc == 0) {
            job->checking = 0;
            cv_log(s->cfg.log, CV_LOG_INFO, "job %lld: datasets checked; it runs",
                   (long long)job->id);
        } else {
            snprintf(text, sizeof text, "its datasets cannot be used after a restart: %s", why);
            cv_log(s->cfg.log, CV_LOG_ERROR, "job %lld: %s", (long long)job->id, text);
            if (sched_job_fail(s, job, text, cv_clock_wall(), err) || sched_commit(s, err))
                cv_log(s->cfg.log, CV_LOG_ERROR, "job %lld: %s", (long long)job->id, err);
        }
    }
    cv_dataset_check_destroy(check);
    free(rc_);
}

/* Checks a resumed job's dataset files: on the thread pool when the scheduler has a loop (the
 * job waits, job->checking, until the check started by start_resume_checks ends), else here. */
int sched_resume_check_files(cv_sched_t *s, job_t *job, char *err) {
    cv_dataset_check_t *check = NULL;
    int rc = sched_job_new_check(s, &job->spec, &check, err);
    if (rc) return rc;
    resume_check_t *rc_ = s->cfg.loop ? calloc(1, sizeof *rc_) : NULL;
    if (rc_) {
        *rc_ = (resume_check_t){.s = s, .job_id = job->id, .check = check, .next = s->checks};
        s->checks = rc_;
        job->checking = 1;
        return 0;
    }
    cv_dataset_check_run(check);
    rc = cv_dataset_check_status(check, err);
    if (rc == 0) rc = sched_job_apply_files(s, job, check, err);
    cv_dataset_check_destroy(check);
    return rc;
}

/* Starts the checks sched_resume_check_files prepared, once the scheduler exists for good; one that
 * cannot be queued runs here. */
static void start_resume_checks(cv_sched_t *s) {
    resume_check_t *next;
    for (resume_check_t *c = s->checks; c; c = next) {
        next = c->next;
        if (cv_dataset_check_start(c->check, s->cfg.loop, sched_after_resume_check, c) != 0) {
            cv_dataset_check_run(c->check);
            sched_after_resume_check(c->check, c);
        }
    }
}

int cv_sched_idle(const cv_sched_t *s) {
    return s->checks == NULL && s->removals == 0 && s->syncs == 0 &&
           s->checkpoint == NULL;
}

void cv_sched_stop_checks(cv_sched_t *s) {
    for (resume_check_t *c = s->checks; c; c = c->next) cv_dataset_check_cancel(c->check);
}

static int resume_job(void *ctx, const cv_store_job_row_t *row) {
    resume_ctx_t *c = ctx;
    cv_sched_t *s = c->s;
    job_t *job = calloc(1, sizeof *job);
    if (!job) return cv_errf(c->err, CV_ENOMEM, "out of memory");
    cv_job_spec_init(&job->spec);
    job->id = row->id;
    int rc = cv_job_spec_parse(&job->spec, row->spec, strlen(row->spec), c->err);
    if (rc == 0) rc = sched_job_init_search(job, c->err);
    if (rc == 0) rc = sched_resume_check_files(s, job, c->err);
    if (rc == 0) rc = sched_job_fixed_text(job, c->err);
    cJSON *region = row->region ? cJSON_Parse(row->region) : NULL;
    job->region = job->spec.space;
    if (rc == 0 && region)
        rc = cv_space_region_from_json(&job->spec.space, region, &job->region, c->err);
    cJSON_Delete(region);
    if (rc) {
        cv_log(s->cfg.log, CV_LOG_ERROR, "job %lld cannot resume: %s", (long long)row->id,
               c->err);
        sched_job_free(job);
        return 0; /* the other jobs still resume; this one is marked failed below */
    }
    job->id = row->id;
    job->status = CV_STORE_JOB_RUNNING;
    job->round = row->round;
    job->created_at = row->created_at;
    job->busy_seconds = row->busy_seconds;
    job->available_seconds = row->available_seconds;
    job->accounted_at = cv_clock_wall();
    sched_job_link(s, job);
    return 0;
}

/* The plans of jobs stored before schema version 9, derived from their specs. */
typedef struct {
    cv_sched_t *s;
    struct planned {
        int64_t job_id;
        cv_store_job_plan_t plan;
    } *rows;
    size_t n;
    char *err;
} backfill_t;

static int collect_plan(void *ctx, const cv_store_job_row_t *row) {
    backfill_t *b = ctx;
    cv_job_spec_t spec;
    char why[CV_ERRLEN];
    if (cv_job_spec_parse(&spec, row->spec, strlen(row->spec), why)) {
        cv_log(b->s->cfg.log, CV_LOG_WARN, "job %lld: its spec no longer parses, so the jobs "
               "list shows no sampler, pruner or rounds for it: %s", (long long)row->id, why);
        return 0;
    }
    struct planned *rows = realloc(b->rows, (b->n + 1) * sizeof *rows);
    if (rows) {
        b->rows = rows;
        rows[b->n++] = (struct planned){row->id, sched_job_plan(&spec)};
    }
    cv_job_spec_finish(&spec);
    return rows ? 0 : cv_errf(b->err, CV_ENOMEM, "out of memory");
}

/* Jobs stored before schema version 9 have no stored plan (their columns are NULL): each gets
 * the one its spec plans, derived here through the job spec parser, the one place that knows
 * the defaults (the store does not parse specs, so its migration cannot). Once per job: a job
 * whose spec no longer parses keeps NULL and is tried again at the next start. Writes into the
 * open group; the caller commits. */
static int backfill_plans(cv_sched_t *s, char *err) {
    backfill_t b = {.s = s, .err = err};
    int rc = cv_store_jobs_each(s->cfg.store, CV_STORE_JOBS_UNPLANNED, collect_plan, &b, err);
    if (rc == 0 && b.n) rc = sched_group(s, err);
    for (size_t i = 0; rc == 0 && i < b.n; i++)
        rc = sched_checked(s, cv_store_job_set_plan(s->cfg.store, b.rows[i].job_id,
                                                     &b.rows[i].plan, err));
    if (rc == 0 && b.n && s->cfg.log)
        cv_log(s->cfg.log, CV_LOG_INFO, "%zu jobs stored by an older version got their plans "
               "(sampler, pruner, rounds) from their specs", b.n);
    free(b.rows);
    return rc;
}

int cv_sched_create(cv_sched_t **out, const cv_sched_config_t *config, double now, char *err) {
    *out = NULL;
    cv_sched_t *s = calloc(1, sizeof *s);
    if (!s) return cv_errf(err, CV_ENOMEM, "out of memory");
    s->cfg = *config;
    s->commit_seq = s->durable_seq = 1; /* what the store holds at start-up is on disk */
    if (cv_evals_create(&s->evals, s->cfg.log, err)) {
        free(s);
        return CV_ENOMEM;
    }
    cv_evals_set_importance_send(s->evals, s->cfg.ops.send_importance);
    if (s->cfg.max_attempts < 1) s->cfg.max_attempts = 3;
    if (!(s->cfg.ask_lease_seconds > 0)) s->cfg.ask_lease_seconds = 60;
    if (s->cfg.quarantine_after == 0) s->cfg.quarantine_after = 3;
    uint64_t seed;
    if (getrandom(&seed, sizeof seed, 0) != (ssize_t)sizeof seed)
        seed = (uint64_t)getpid() ^ (uint64_t)now;
    cv_rng_seed(&s->lease_rng, seed);
    /* Without a grace, the trials that were running go back to the queue before loading. */
    int64_t requeued = 0;
    int rc = s->cfg.reattach_seconds > 0 ? 0 : cv_store_recover(s->cfg.store, &requeued, err);
    s->reattach_until = now + (s->cfg.reattach_seconds > 0 ? s->cfg.reattach_seconds : 0);
    resume_ctx_t ctx = {s, NULL, err, now};
    if (rc == 0) rc = backfill_plans(s, err);
    if (rc == 0)
        rc = cv_store_jobs_each(s->cfg.store, CV_STORE_JOBS_RUNNING, resume_job, &ctx, err);
    /* A job that ends here stays in the list until sched_unload_finished, after the commit. */
    for (job_t *job = s->jobs; rc == 0 && job; job = job->next) {
        ctx.job = job;
        rc = sched_job_load(&ctx);
        job->accounted_at = now;
        if (rc == 0) rc = sched_job_settle(s, job, now, err);
        if (rc == 0 && s->cfg.log)
            cv_log(s->cfg.log, CV_LOG_INFO, "job %lld resumed in round %d of %zu: %zu trials, "
                   "%d open, %d running", (long long)job->id, job->round + 1, job->spec.n_rounds,
                   job->n_trials, job->open, job->running);
    }
    if (rc == 0) rc = sched_commit(s, err);
    if (rc) {
        cv_sched_destroy(s);
        return rc;
    }
    sched_unload_finished(s);
    if (requeued && s->cfg.log)
        cv_log(s->cfg.log, CV_LOG_INFO, "%lld trials that were running are queued again "
               "(interrupted, not counted as attempts)", (long long)requeued);
    if (s->n_orphans && s->cfg.log)
        cv_log(s->cfg.log, CV_LOG_INFO, "%zu trials that were running keep their leases for "
               "%g s, waiting for their workers to re-attach", s->n_orphans,
               s->cfg.reattach_seconds);
    start_resume_checks(s);
    *out = s;
    return 0;
}

void cv_sched_destroy(cv_sched_t *s) {
    if (!s) return;
    if (s->group_open) cv_store_rollback(s->cfg.store, NULL);
    while (s->jobs) {
        job_t *next = s->jobs->next;
        sched_job_free(s->jobs);
        s->jobs = next;
    }
    while (s->workers) {
        cv_sched_worker_t *next = s->workers->next;
        free(s->workers);
        s->workers = next;
    }
    while (s->checks) { /* only checks never started: the caller waits for cv_sched_idle */
        resume_check_t *next = s->checks->next;
        cv_dataset_check_destroy(s->checks->check);
        free(s->checks);
        s->checks = next;
    }
    sched_ask_free_all(s);
    for (size_t i = 0; i < s->n_datasets; i++) free(s->datasets[i].path);
    free(s->datasets);
    free(s->orphans);
    free(s->map);
    free(s->acks);
    free(s->decisions);
    cv_evals_destroy(s->evals);
    free(s);
}
