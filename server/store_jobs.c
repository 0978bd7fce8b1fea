/* The store's jobs: creating a job, its status, round, spec, test result and worker usage,
 * cancelling and deleting it, its rounds and its pruner's decisions, and visiting job rows. */

#include "server/store_internal.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include <sqlite3.h>

#include "common/err.h"

/* Binds plan to parameters first..first+2 of statement id (sampler, pruner, rounds). */
static int bind_plan(cv_store_t *store, int id, int first, const cv_store_job_plan_t *plan) {
    sqlite3_stmt *q = store->st[id];
    return bind_text(q, first, plan->sampler) || bind_text(q, first + 1, plan->pruner) ||
           sqlite3_bind_int(q, first + 2, plan->rounds);
}

/* CV_EINVAL naming what for a plan that is missing or incomplete. */
static int plan_check(const cv_store_job_plan_t *plan, const char *what, char *err) {
    if (!plan || !plan->sampler || !plan->pruner || plan->rounds < 1)
        return cv_errf(err, CV_EINVAL, "store: %s: the plan needs a sampler, a pruner and at "
                       "least 1 round", what);
    return 0;
}

int cv_store_job_create(cv_store_t *store, const char *name, cv_store_objective_t objective,
                        const char *spec, const cv_store_job_plan_t *plan, const char *region,
                        double now, int64_t *job_id, char *err) {
    if (!name || !spec)
        return cv_errf(err, CV_EINVAL, "store: create job: name and spec are required");
    int ret = plan_check(plan, "create job", err);
    if (ret) return ret;
    if (objective != CV_STORE_OBJ_DEV_ERROR && objective != CV_STORE_OBJ_DEV_COST)
        return cv_errf(err, CV_EINVAL,
                       "store: create job: objective must be dev_error or "
                       "dev_cost");
    sqlite3_stmt *q = store->st[ST_JOB_INSERT];
    if (bind_text(q, 1, name) || bind_text(q, 2, store_objective_names[objective]) ||
        bind_text(q, 3, spec) || bind_text(q, 4, region) || bind_real(q, 5, now) ||
        bind_plan(store, ST_JOB_INSERT, 6, plan))
        return store_bind_failed(store, ST_JOB_INSERT, err, "create job");
    ret = store_run(store, ST_JOB_INSERT, err, "create job");
    if (ret == 0 && job_id) *job_id = sqlite3_last_insert_rowid(store->db);
    return ret;
}

/* Runs a job update already bound and reports an unknown job as CV_EINVAL. */
static int job_update(cv_store_t *store, int id, int64_t job_id, const char *what, char *err) {
    int ret = store_run(store, id, err, what);
    if (ret == 0 && sqlite3_changes(store->db) == 0)
        ret = cv_errf(err, CV_EINVAL, "store: %s: no job %lld", what, (long long)job_id);
    return ret;
}

int cv_store_job_set_status(cv_store_t *store, int64_t job_id, cv_store_job_status_t status,
                            const char *error, double now, char *err) {
    if ((unsigned)status > CV_STORE_JOB_FAILED)
        return cv_errf(err, CV_EINVAL, "store: set job status: unknown status %d", (int)status);
    sqlite3_stmt *q = store->st[ST_JOB_SET_STATUS];
    if (sqlite3_bind_int64(q, 1, job_id) || bind_text(q, 2, store_job_status_names[status]) ||
        bind_text(q, 3, error) || bind_real(q, 4, now))
        return store_bind_failed(store, ST_JOB_SET_STATUS, err, "set job status");
    return job_update(store, ST_JOB_SET_STATUS, job_id, "set job status", err);
}

int cv_store_job_set_round(cv_store_t *store, int64_t job_id, int round, const char *region,
                           char *err) {
    sqlite3_stmt *q = store->st[ST_JOB_SET_ROUND];
    if (sqlite3_bind_int64(q, 1, job_id) || sqlite3_bind_int(q, 2, round) ||
        bind_text(q, 3, region))
        return store_bind_failed(store, ST_JOB_SET_ROUND, err, "set job round");
    return job_update(store, ST_JOB_SET_ROUND, job_id, "set job round", err);
}

int cv_store_job_set_spec(cv_store_t *store, int64_t job_id, const char *spec,
                          const cv_store_job_plan_t *plan, char *err) {
    if (!spec) return cv_errf(err, CV_EINVAL, "store: set job spec: spec is required");
    int ret = plan_check(plan, "set job spec", err);
    if (ret) return ret;
    sqlite3_stmt *q = store->st[ST_JOB_SET_SPEC];
    if (sqlite3_bind_int64(q, 1, job_id) || bind_text(q, 2, spec) ||
        bind_plan(store, ST_JOB_SET_SPEC, 3, plan))
        return store_bind_failed(store, ST_JOB_SET_SPEC, err, "set job spec");
    return job_update(store, ST_JOB_SET_SPEC, job_id, "set job spec", err);
}

int cv_store_job_set_plan(cv_store_t *store, int64_t job_id, const cv_store_job_plan_t *plan,
                          char *err) {
    int ret = plan_check(plan, "set job plan", err);
    if (ret) return ret;
    if (sqlite3_bind_int64(store->st[ST_JOB_SET_PLAN], 1, job_id) ||
        bind_plan(store, ST_JOB_SET_PLAN, 2, plan))
        return store_bind_failed(store, ST_JOB_SET_PLAN, err, "set job plan");
    return job_update(store, ST_JOB_SET_PLAN, job_id, "set job plan", err);
}

int cv_store_job_set_test_result(cv_store_t *store, int64_t job_id, const char *test_result,
                                 char *err) {
    sqlite3_stmt *q = store->st[ST_JOB_SET_TEST];
    if (sqlite3_bind_int64(q, 1, job_id) || bind_text(q, 2, test_result))
        return store_bind_failed(store, ST_JOB_SET_TEST, err, "set test result");
    return job_update(store, ST_JOB_SET_TEST, job_id, "set test result", err);
}

int cv_store_job_cancel(cv_store_t *store, int64_t job_id, double now, int64_t *trials_cancelled,
                        char *err) {
    int objective = 0;
    int ret = store_op_begin(store, err);
    if (ret != 0) return ret;

    sqlite3_stmt *q = store->st[ST_JOB_CANCEL];
    if (sqlite3_bind_int64(q, 1, job_id) || bind_real(q, 2, now)) {
        ret = store_bind_failed(store, ST_JOB_CANCEL, err, "cancel job");
        goto end;
    }
    ret = store_run(store, ST_JOB_CANCEL, err, "cancel job");
    if (ret != 0) goto end;
    if (sqlite3_changes(store->db) == 0) {
        ret = store_job_head(store, job_id, &objective, NULL, err);
        if (ret == 0) ret = CV_STORE_STALE;
        if (ret == CV_STORE_NOT_FOUND)
            ret = cv_errf(err, CV_EINVAL, "store: cancel job: no job %lld", (long long)job_id);
        goto end;
    }
    q = store->st[ST_ATTEMPTS_CANCEL];
    if (sqlite3_bind_int64(q, 1, job_id) || bind_real(q, 2, now)) {
        ret = store_bind_failed(store, ST_ATTEMPTS_CANCEL, err, "cancel job");
        goto end;
    }
    ret = store_run(store, ST_ATTEMPTS_CANCEL, err, "record the attempts of cancelled trials");
    if (ret != 0) goto end;
    q = store->st[ST_JOB_CANCEL_TRIALS];
    if (sqlite3_bind_int64(q, 1, job_id) || bind_real(q, 2, now)) {
        ret = store_bind_failed(store, ST_JOB_CANCEL_TRIALS, err, "cancel job");
        goto end;
    }
    ret = store_run(store, ST_JOB_CANCEL_TRIALS, err, "cancel trials of job");
    if (ret == 0 && trials_cancelled) *trials_cancelled = sqlite3_changes(store->db);
end:
    return store_op_end(store, ret, err);
}

int cv_store_job_delete(cv_store_t *store, int64_t job_id, int64_t *trials_deleted, char *err) {
    /* Children before parents: the foreign keys are enforced. */
    static const int steps[] = {
        ST_JOB_DELETE_CURVES, ST_JOB_DELETE_ATTEMPTS, ST_JOB_DELETE_DECISIONS,
        ST_JOB_DELETE_NUDGES, ST_JOB_DELETE_TRIALS,   ST_JOB_DELETE_ROUNDS,
        ST_JOB_DELETE};
    cv_store_job_status_t status = CV_STORE_JOB_RUNNING;
    int objective = 0;
    int ret = store_op_begin(store, err);
    if (ret != 0) return ret;
    ret = store_job_head(store, job_id, &objective, &status, err);
    if (ret == 0 && status == CV_STORE_JOB_RUNNING) ret = CV_STORE_STALE;
    for (size_t i = 0; ret == 0 && i < sizeof steps / sizeof steps[0]; i++) {
        if (sqlite3_bind_int64(store->st[steps[i]], 1, job_id) != SQLITE_OK) {
            ret = store_bind_failed(store, steps[i], err, "delete job");
            break;
        }
        ret = store_run(store, steps[i], err, "delete job");
        if (ret == 0 && steps[i] == ST_JOB_DELETE_TRIALS && trials_deleted)
            *trials_deleted = sqlite3_changes(store->db);
    }
    return store_op_end(store, ret, err);
}

int cv_store_round_add(cv_store_t *store, int64_t job_id, int round, int size, const char *region,
                       double now, char *err) {
    if (!region) return cv_errf(err, CV_EINVAL, "store: add round: region is required");
    sqlite3_stmt *q = store->st[ST_ROUND_INSERT];
    if (sqlite3_bind_int64(q, 1, job_id) || sqlite3_bind_int(q, 2, round) ||
        sqlite3_bind_int(q, 3, size) || bind_text(q, 4, region) || bind_real(q, 5, now))
        return store_bind_failed(store, ST_ROUND_INSERT, err, "add round");
    int ret = store_run(store, ST_ROUND_INSERT, err, "add round");
    return ret;
}

int cv_store_round_grow(cv_store_t *store, int64_t job_id, int round, char *err) {
    sqlite3_stmt *q = store->st[ST_ROUND_GROW];
    if (sqlite3_bind_int64(q, 1, job_id) || sqlite3_bind_int(q, 2, round))
        return store_bind_failed(store, ST_ROUND_GROW, err, "grow round");
    return store_run(store, ST_ROUND_GROW, err, "grow round");
}

int cv_store_job_set_usage(cv_store_t *store, int64_t job_id, double busy_seconds,
                           double available_seconds, char *err) {
    sqlite3_stmt *q = store->st[ST_JOB_SET_USAGE];
    if (sqlite3_bind_int64(q, 1, job_id) || bind_real(q, 2, busy_seconds) ||
        bind_real(q, 3, available_seconds))
        return store_bind_failed(store, ST_JOB_SET_USAGE, err, "job usage");
    return store_run(store, ST_JOB_SET_USAGE, err, "job usage");
}

int cv_store_decision_add(cv_store_t *store, int64_t job_id, const cv_store_decision_t *d,
                          double now, char *err) {
    sqlite3_stmt *q = store->st[ST_DECISION_INSERT];
    if (sqlite3_bind_int64(q, 1, job_id) || sqlite3_bind_int64(q, 2, d->trial_id) ||
        sqlite3_bind_int(q, 3, d->number) || sqlite3_bind_int(q, 4, d->epoch) ||
        bind_real(q, 5, d->value) || sqlite3_bind_int(q, 6, d->stopped != 0) ||
        bind_real(q, 7, now))
        return store_bind_failed(store, ST_DECISION_INSERT, err, "add decision");
    return store_run(store, ST_DECISION_INSERT, err, "add decision");
}

int cv_store_decisions_each(cv_store_t *store, int64_t job_id, cv_store_on_decision_t on_decision,
                            void *ctx, char *err) {
    sqlite3_stmt *q = store->st[ST_DECISIONS_EACH];
    if (sqlite3_bind_int64(q, 1, job_id))
        return store_bind_failed(store, ST_DECISIONS_EACH, err, "visit decisions");
    int ret = 0, rc = SQLITE_DONE;
    while (ret == 0 && (rc = sqlite3_step(q)) == SQLITE_ROW) {
        cv_store_decision_t d = {
            .trial_id = sqlite3_column_int64(q, 0),
            .number = sqlite3_column_int(q, 1),
            .epoch = sqlite3_column_int(q, 2),
            .value = sqlite3_column_type(q, 3) == SQLITE_NULL ? NAN : sqlite3_column_double(q, 3),
            .stopped = sqlite3_column_int(q, 4),
        };
        ret = on_decision(ctx, &d);
    }
    if (ret == 0 && rc != SQLITE_DONE) ret = store_failf(store, rc, err, "visit decisions");
    done(q);
    return ret;
}

int cv_store_nudge_add(cv_store_t *store, const cv_store_nudge_t *n, char *err) {
    sqlite3_stmt *q = store->st[ST_NUDGE_INSERT];
    if (sqlite3_bind_int64(q, 1, n->trial_id) || sqlite3_bind_int64(q, 2, n->seq) ||
        bind_text(q, 3, n->values_json) || bind_real(q, 4, n->created_at))
        return store_bind_failed(store, ST_NUDGE_INSERT, err, "add nudge");
    return store_run(store, ST_NUDGE_INSERT, err, "add nudge");
}

int cv_store_nudge_applied(cv_store_t *store, int64_t trial_id, int64_t seq, int epoch, double now,
                           char *err) {
    sqlite3_stmt *q = store->st[ST_NUDGE_APPLIED];
    if (sqlite3_bind_int64(q, 1, trial_id) || sqlite3_bind_int64(q, 2, seq) ||
        sqlite3_bind_int(q, 3, epoch) || bind_real(q, 4, now))
        return store_bind_failed(store, ST_NUDGE_APPLIED, err, "record nudge");
    return store_run(store, ST_NUDGE_APPLIED, err, "record nudge");
}

int cv_store_nudges_each(cv_store_t *store, int64_t trial_id, cv_store_on_nudge_t on_nudge,
                         void *ctx, int64_t *last_seq, char *err) {
    sqlite3_stmt *q = store->st[ST_NUDGES_EACH];
    if (last_seq) *last_seq = 0;
    if (sqlite3_bind_int64(q, 1, trial_id))
        return store_bind_failed(store, ST_NUDGES_EACH, err, "visit nudges");
    int ret = 0, rc = SQLITE_DONE;
    while (ret == 0 && (rc = sqlite3_step(q)) == SQLITE_ROW) {
        cv_store_nudge_t n = {
            .trial_id = trial_id,
            .seq = sqlite3_column_int64(q, 0),
            .values_json = (const char *)sqlite3_column_text(q, 1),
            .epoch = sqlite3_column_type(q, 2) == SQLITE_NULL ? 0 : sqlite3_column_int(q, 2),
            .created_at = sqlite3_column_double(q, 3),
            .applied_at =
                sqlite3_column_type(q, 4) == SQLITE_NULL ? NAN : sqlite3_column_double(q, 4),
        };
        if (last_seq) *last_seq = n.seq;
        if (on_nudge && n.values_json) ret = on_nudge(ctx, &n);
    }
    if (ret == 0 && rc != SQLITE_DONE) ret = store_failf(store, rc, err, "visit nudges");
    done(q);
    return ret;
}

int cv_store_job_first_failure(cv_store_t *store, int64_t job_id, int64_t *trial_id,
                               cv_store_trial_status_t *status, char *error, size_t cap,
                               char *err) {
    sqlite3_stmt *q = store->st[ST_JOB_FIRST_FAILURE];
    if (sqlite3_bind_int64(q, 1, job_id))
        return store_bind_failed(store, ST_JOB_FIRST_FAILURE, err, "first failure");
    int rc = sqlite3_step(q), ret = 0;
    if (rc == SQLITE_ROW) {
        const char *st = (const char *)sqlite3_column_text(q, 1);
        const char *e = (const char *)sqlite3_column_text(q, 2);
        *trial_id = sqlite3_column_int64(q, 0);
        *status = st && strcmp(st, "diverged") == 0 ? CV_STORE_TRIAL_DIVERGED
                                                    : CV_STORE_TRIAL_FAILED;
        snprintf(error, cap, "%s", e ? e : "no reason given");
    } else if (rc == SQLITE_DONE) {
        ret = CV_STORE_NOT_FOUND;
    } else {
        ret = store_failf(store, rc, err, "first failure of job %lld", (long long)job_id);
    }
    done(q);
    return ret;
}

/* Visits the rows of statement id (bound by the caller), counting them into *count. */
static int jobs_visit(cv_store_t *store, int id, cv_store_on_job_t on_job, void *ctx,
                      int64_t *count, char *err) {
    sqlite3_stmt *q = store->st[id];
    int ret = 0, rc = SQLITE_DONE;
    while (ret == 0 && (rc = sqlite3_step(q)) == SQLITE_ROW) {
        cv_store_job_row_t row = {
            .id = sqlite3_column_int64(q, 0),
            .name = (const char *)sqlite3_column_text(q, 1),
            .spec = (const char *)sqlite3_column_text(q, 3),
            .round = sqlite3_column_int(q, 5),
            .region = (const char *)sqlite3_column_text(q, 6),
            .created_at = sqlite3_column_double(q, 7),
            .busy_seconds = sqlite3_column_double(q, 8),
            .available_seconds = sqlite3_column_double(q, 9),
        };
        int objective = store_objective_parse((const char *)sqlite3_column_text(q, 2));
        if (!row.name || !row.spec || objective < 0 ||
            cv_store_job_status_parse((const char *)sqlite3_column_text(q, 4), &row.status)) {
            ret = cv_errf(err, CV_EFORMAT, "store: job %lld: unreadable row", (long long)row.id);
            break;
        }
        row.objective = (cv_store_objective_t)objective;
        (*count)++;
        ret = on_job(ctx, &row);
    }
    if (ret == 0 && rc != SQLITE_DONE) ret = store_failf(store, rc, err, "visit jobs");
    done(q);
    return ret;
}

int cv_store_jobs_each(cv_store_t *store, cv_store_jobs_t which, cv_store_on_job_t on_job,
                       void *ctx, char *err) {
    int64_t count = 0;
    if ((unsigned)which > CV_STORE_JOBS_UNPLANNED)
        return cv_errf(err, CV_EINVAL, "store: visit jobs: unknown selection %d", (int)which);
    if (sqlite3_bind_int(store->st[ST_JOBS_EACH], 1, (int)which))
        return store_bind_failed(store, ST_JOBS_EACH, err, "visit jobs");
    return jobs_visit(store, ST_JOBS_EACH, on_job, ctx, &count, err);
}

int cv_store_job_visit(cv_store_t *store, int64_t job_id, cv_store_on_job_t on_job, void *ctx,
                       char *err) {
    int64_t count = 0;
    if (sqlite3_bind_int64(store->st[ST_JOB_ROW], 1, job_id))
        return store_bind_failed(store, ST_JOB_ROW, err, "read job");
    int ret = jobs_visit(store, ST_JOB_ROW, on_job, ctx, &count, err);
    return ret == 0 && count == 0 ? CV_STORE_NOT_FOUND : ret;
}

int cv_store_rounds_each(cv_store_t *store, int64_t job_id, cv_store_on_round_t on_round, void *ctx,
                         char *err) {
    sqlite3_stmt *q = store->st[ST_ROUNDS];
    if (sqlite3_bind_int64(q, 1, job_id))
        return store_bind_failed(store, ST_ROUNDS, err, "visit rounds");
    int ret = 0, rc = SQLITE_DONE;
    while (ret == 0 && (rc = sqlite3_step(q)) == SQLITE_ROW) {
        cv_store_round_row_t row = {
            .round = sqlite3_column_int(q, 0),
            .size = sqlite3_column_int(q, 1),
            .region = (const char *)sqlite3_column_text(q, 2),
        };
        if (!row.region) {
            ret = cv_errf(err, CV_ENOMEM, "store: out of memory");
            break;
        }
        ret = on_round(ctx, &row);
    }
    if (ret == 0 && rc != SQLITE_DONE) ret = store_failf(store, rc, err, "visit rounds");
    done(q);
    return ret;
}
