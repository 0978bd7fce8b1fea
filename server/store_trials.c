/* The store's trials: adding them, the writes that move a trial through its lifecycle under
 * its lease (start, result, requeue, interrupt, retry, recovery after a restart), the attempt
 * history each ended lease leaves, learning curves, and visiting trial rows. */

#include "server/store_internal.h"

#include <math.h>

#include <sqlite3.h>

#include "common/err.h"

/* Tells CV_STORE_STALE from CV_EINVAL after a guarded update of a trial changed nothing. */
static int trial_missing_or_stale(cv_store_t *s, int64_t trial_id, char *err, const char *what) {
    sqlite3_stmt *q = s->st[ST_TRIAL_STATUS];
    int ret;
    if (sqlite3_bind_int64(q, 1, trial_id) != SQLITE_OK)
        return store_bind_failed(s, ST_TRIAL_STATUS, err, what);
    int rc = sqlite3_step(q);
    if (rc == SQLITE_ROW) {
        ret = CV_STORE_STALE;
    } else if (rc == SQLITE_DONE) {
        ret = cv_errf(err, CV_EINVAL, "store: %s: no trial %lld", what, (long long)trial_id);
    } else {
        ret = store_failf(s, rc, err, "%s", what);
    }
    done(q);
    return ret;
}

int cv_store_trial_curve_best(cv_store_t *store, int64_t trial_id, double *dev_error,
                              double *dev_cost, char *err) {
    sqlite3_stmt *q = store->st[ST_TRIAL_CURVE_BEST];
    *dev_error = *dev_cost = NAN;
    if (sqlite3_bind_int64(q, 1, trial_id))
        return store_bind_failed(store, ST_TRIAL_CURVE_BEST, err, "trial curve");
    int rc = sqlite3_step(q), ret = 0;
    if (rc == SQLITE_ROW) {
        if (sqlite3_column_type(q, 0) != SQLITE_NULL) *dev_error = sqlite3_column_double(q, 0);
        if (sqlite3_column_type(q, 1) != SQLITE_NULL) *dev_cost = sqlite3_column_double(q, 1);
    } else {
        ret = store_failf(store, rc, err, "trial curve");
    }
    done(q);
    return ret;
}

int cv_store_trials_add(cv_store_t *store, int64_t job_id, const cv_store_new_trial_t *trials,
                        size_t n, double now, int64_t *ids, char *err) {
    if (n == 0) return 0;
    if (!trials) return cv_errf(err, CV_EINVAL, "store: add trials: no trials given");
    for (size_t i = 0; i < n; i++) {
        if (!trials[i].params || !trials[i].config_key || !trials[i].spec)
            return cv_errf(err, CV_EINVAL,
                           "store: add trials: trial %zu lacks params, config_key or spec", i);
    }
    int ret = store_op_begin(store, err);
    if (ret != 0) return ret;
    sqlite3_stmt *q = store->st[ST_TRIAL_INSERT];
    for (size_t i = 0; i < n && ret == 0; i++) {
        const cv_store_new_trial_t *t = &trials[i];
        if (sqlite3_bind_int64(q, 1, job_id) || sqlite3_bind_int(q, 2, t->number) ||
            sqlite3_bind_int(q, 3, t->round) || bind_text(q, 4, t->params) ||
            bind_text(q, 5, t->config_key) || bind_text(q, 6, t->spec) || bind_real(q, 7, now)) {
            ret = store_bind_failed(store, ST_TRIAL_INSERT, err, "add trials");
            break;
        }
        int rc = sqlite3_step(q);
        if (rc == SQLITE_DONE) {
            if (ids) ids[i] = sqlite3_last_insert_rowid(store->db);
        } else {
            ret =
                store_failf(store, rc, err,
                            "add trials: trial %zu of %zu (number %d, config_key \"%.64s\") of job "
                            "%lld",
                            i, n, t->number, t->config_key, (long long)job_id);
        }
        done(q);
    }
    return store_op_end(store, ret, err);
}

int cv_store_trial_start(cv_store_t *store, int64_t trial_id, const char *worker_id,
                         const char *lease_token, double now, char *err) {
    if (!worker_id || !lease_token)
        return cv_errf(err, CV_EINVAL, "store: start trial: worker and lease token required");
    int ret = store_op_begin(store, err);
    if (ret != 0) return ret;
    sqlite3_stmt *q = store->st[ST_TRIAL_START];
    if (sqlite3_bind_int64(q, 1, trial_id) || bind_text(q, 2, worker_id) ||
        bind_text(q, 3, lease_token) || bind_real(q, 4, now)) {
        ret = store_bind_failed(store, ST_TRIAL_START, err, "start trial");
        goto end;
    }
    ret = store_run(store, ST_TRIAL_START, err, "start trial");
    if (ret != 0) goto end;
    if (sqlite3_changes(store->db) == 0) {
        ret = trial_missing_or_stale(store, trial_id, err, "start trial");
        goto end;
    }
    q = store->st[ST_CURVE_CLEAR];
    if (sqlite3_bind_int64(q, 1, trial_id)) {
        ret = store_bind_failed(store, ST_CURVE_CLEAR, err, "start trial");
        goto end;
    }
    ret = store_run(store, ST_CURVE_CLEAR, err, "start trial: clearing the old curve");
end:
    return store_op_end(store, ret, err);
}

/* Writes the attempt row of a running trial's lease (see ATTEMPT_END_SQL); call it inside the
 * savepoint of the write that ends the lease. A trial that is not running under the token
 * writes nothing. */
static int attempt_end(cv_store_t *s, int64_t trial_id, const char *lease_token, double now,
                       const char *outcome, const char *error, char *err) {
    sqlite3_stmt *q = s->st[ST_ATTEMPT_END];
    if (sqlite3_bind_int64(q, 1, trial_id) || bind_text(q, 2, lease_token) ||
        bind_real(q, 3, now) || bind_text(q, 4, outcome) || bind_text(q, 5, error))
        return store_bind_failed(s, ST_ATTEMPT_END, err, "end attempt");
    return store_run(s, ST_ATTEMPT_END, err, "end attempt");
}

int cv_store_put_result(cv_store_t *store, int64_t trial_id, const char *lease_token,
                        const cv_store_result_t *result, double now, char *err) {
    if (!lease_token || !result)
        return cv_errf(err, CV_EINVAL, "store: put result: lease token and result required");
    cv_store_trial_status_t st = result->status;
    if (st != CV_STORE_TRIAL_COMPLETED && st != CV_STORE_TRIAL_FAILED &&
        st != CV_STORE_TRIAL_DIVERGED && st != CV_STORE_TRIAL_PRUNED)
        return cv_errf(err, CV_EINVAL,
                       "store: put result: status must be completed, failed, diverged or pruned, "
                       "got %s",
                       cv_store_trial_status_name(st));
    int ret = store_op_begin(store, err);
    if (ret != 0) return ret;
    ret = attempt_end(store, trial_id, lease_token, now, store_trial_status_names[st],
                      result->error, err);
    if (ret != 0) return store_op_end(store, ret, err);
    sqlite3_stmt *q = store->st[ST_TRIAL_RESULT];
    if (sqlite3_bind_int64(q, 1, trial_id) || bind_text(q, 2, lease_token) ||
        bind_text(q, 3, store_trial_status_names[st]) || bind_real(q, 4, now) ||
        bind_real(q, 5, result->dev_error) || bind_real(q, 6, result->dev_cost) ||
        bind_real(q, 7, result->train_error) || bind_real(q, 8, result->train_cost) ||
        bind_real(q, 9, result->train_cost_reg) || bind_count(q, 10, result->best_epoch) ||
        bind_count(q, 11, result->epochs_run) || bind_text(q, 12, result->diagnosis) ||
        bind_real(q, 13, result->examples_per_second) || bind_text(q, 14, result->error) ||
        bind_text(q, 15, result->model_path) ||
        (result->n_params > 0 ? sqlite3_bind_int64(q, 16, result->n_params)
                              : sqlite3_bind_null(q, 16)))
        return store_op_end(store, store_bind_failed(store, ST_TRIAL_RESULT, err, "put result"),
                            err);
    int rc = sqlite3_step(q);
    if (rc != SQLITE_DONE)
        ret = store_failf(store, rc, err, "put result of trial %lld", (long long)trial_id);
    done(q);
    if (ret == 0 && sqlite3_changes(store->db) == 0)
        ret = trial_missing_or_stale(store, trial_id, err, "put result");
    return store_op_end(store, ret, err);
}

int cv_store_curve_add(cv_store_t *store, int64_t trial_id, const char *lease_token,
                       const cv_epoch_t *points, size_t n, char *err) {
    if (n == 0) return 0;
    if (!points) return cv_errf(err, CV_EINVAL, "store: add curve: no points given");
    int ret = store_op_begin(store, err);
    if (ret != 0) return ret;
    sqlite3_stmt *q;
    if (lease_token) {
        q = store->st[ST_TRIAL_LEASED];
        if (sqlite3_bind_int64(q, 1, trial_id) || bind_text(q, 2, lease_token)) {
            ret = store_bind_failed(store, ST_TRIAL_LEASED, err, "add curve");
            goto end;
        }
        int rc = sqlite3_step(q);
        if (rc == SQLITE_DONE)
            ret = CV_STORE_STALE;
        else if (rc != SQLITE_ROW)
            ret = store_failf(store, rc, err, "add curve: checking the lease");
        done(q);
        if (ret != 0) goto end;
    }
    q = store->st[ST_CURVE_INSERT];
    for (size_t i = 0; i < n && ret == 0; i++) {
        const cv_epoch_t *p = &points[i];
        if (sqlite3_bind_int64(q, 1, trial_id) || sqlite3_bind_int64(q, 2, p->epoch) ||
            bind_real(q, 3, p->train_cost) || bind_real(q, 4, p->train_cost_reg) ||
            bind_real(q, 5, p->dev_cost) || bind_real(q, 6, p->train_error) ||
            bind_real(q, 7, p->dev_error) || bind_real(q, 8, p->learning_rate) ||
            bind_real(q, 9, p->seconds)) {
            ret = store_bind_failed(store, ST_CURVE_INSERT, err, "add curve");
            break;
        }
        int rc = sqlite3_step(q);
        if (rc != SQLITE_DONE)
            ret = store_failf(store, rc, err, "add curve: trial %lld epoch %lld",
                              (long long)trial_id, (long long)p->epoch);
        done(q);
    }
end:
    return store_op_end(store, ret, err);
}

int cv_store_trial_requeue(cv_store_t *store, int64_t trial_id, const char *lease_token,
                           cv_store_trial_status_t to_status, double now, char *err) {
    if (to_status != CV_STORE_TRIAL_QUEUED && to_status != CV_STORE_TRIAL_LOST &&
        to_status != CV_STORE_TRIAL_FAILED)
        return cv_errf(err, CV_EINVAL,
                       "store: requeue trial: status must be queued, lost or failed");
    int ret = store_op_begin(store, err);
    if (ret != 0) return ret;
    ret = attempt_end(store, trial_id, lease_token, now, "lost", NULL, err);
    if (ret != 0) return store_op_end(store, ret, err);
    sqlite3_stmt *q = store->st[ST_TRIAL_REQUEUE];
    if (sqlite3_bind_int64(q, 1, trial_id) || bind_text(q, 2, lease_token) ||
        bind_text(q, 3, store_trial_status_names[to_status]) || bind_real(q, 4, now))
        return store_op_end(store, store_bind_failed(store, ST_TRIAL_REQUEUE, err, "requeue trial"),
                            err);
    ret = store_run(store, ST_TRIAL_REQUEUE, err, "requeue trial");
    if (ret == 0 && sqlite3_changes(store->db) == 0)
        ret = trial_missing_or_stale(store, trial_id, err, "requeue trial");
    return store_op_end(store, ret, err);
}

int cv_store_attempt_stale(cv_store_t *store, int64_t trial_id, const char *lease_token,
                           char *err) {
    if (!lease_token) return CV_STORE_NOT_FOUND;
    sqlite3_stmt *q = store->st[ST_ATTEMPT_STALE];
    if (sqlite3_bind_int64(q, 1, trial_id) || bind_text(q, 2, lease_token))
        return store_bind_failed(store, ST_ATTEMPT_STALE, err, "mark attempt stale");
    return store_run_found(store, ST_ATTEMPT_STALE, err, "mark attempt stale");
}

int cv_store_trial_retry(cv_store_t *store, int64_t trial_id, char *err) {
    sqlite3_stmt *q = store->st[ST_TRIAL_RETRY];
    if (sqlite3_bind_int64(q, 1, trial_id))
        return store_bind_failed(store, ST_TRIAL_RETRY, err, "retry trial");
    int ret = store_run(store, ST_TRIAL_RETRY, err, "retry trial");
    if (ret == 0 && sqlite3_changes(store->db) == 0)
        ret = trial_missing_or_stale(store, trial_id, err, "retry trial");
    return ret;
}

int cv_store_trial_interrupt(cv_store_t *store, int64_t trial_id, const char *lease_token,
                             const char *why, double now, char *err) {
    if (!lease_token)
        return cv_errf(err, CV_EINVAL, "store: interrupt trial: lease token required");
    int ret = store_op_begin(store, err);
    if (ret != 0) return ret;
    ret = attempt_end(store, trial_id, lease_token, now, "interrupted", why ? why : RESTART_REASON,
                      err);
    if (ret != 0) return store_op_end(store, ret, err);
    sqlite3_stmt *q = store->st[ST_TRIAL_REQUEUE];
    if (sqlite3_bind_int64(q, 1, trial_id) || bind_text(q, 2, lease_token) ||
        bind_text(q, 3, store_trial_status_names[CV_STORE_TRIAL_QUEUED]) || bind_real(q, 4, now))
        return store_op_end(
            store, store_bind_failed(store, ST_TRIAL_REQUEUE, err, "interrupt trial"), err);
    ret = store_run(store, ST_TRIAL_REQUEUE, err, "interrupt trial");
    if (ret == 0 && sqlite3_changes(store->db) == 0)
        ret = trial_missing_or_stale(store, trial_id, err, "interrupt trial");
    return store_op_end(store, ret, err);
}

int cv_store_trial_status(cv_store_t *store, int64_t trial_id, cv_store_trial_status_t *status,
                          char *err) {
    sqlite3_stmt *q = store->st[ST_TRIAL_STATUS];
    if (sqlite3_bind_int64(q, 1, trial_id) != SQLITE_OK)
        return store_bind_failed(store, ST_TRIAL_STATUS, err, "trial status");
    int rc = sqlite3_step(q), ret = 0;
    if (rc == SQLITE_ROW) {
        if (cv_store_trial_status_parse((const char *)sqlite3_column_text(q, 0), status))
            ret = cv_errf(err, CV_EFORMAT, "store: trial %lld: unreadable status",
                          (long long)trial_id);
    } else if (rc == SQLITE_DONE) {
        ret = CV_STORE_NOT_FOUND;
    } else {
        ret = store_failf(store, rc, err, "status of trial %lld", (long long)trial_id);
    }
    done(q);
    return ret;
}

int cv_store_recover(cv_store_t *store, int64_t *requeued, char *err) {
    int ret = store_op_begin(store, err);
    if (ret != 0) return ret;
    ret = store_run(store, ST_ATTEMPTS_RECOVER, err, "record the attempts of running trials");
    if (ret == 0) ret = store_run(store, ST_RECOVER, err, "recover running trials");
    if (ret == 0 && requeued) *requeued = sqlite3_changes(store->db);
    return store_op_end(store, ret, err);
}

int cv_store_trial_id(cv_store_t *store, int64_t job_id, int number, int64_t *trial_id, char *err) {
    sqlite3_stmt *q = store->st[ST_TRIAL_ID];
    if (sqlite3_bind_int64(q, 1, job_id) || sqlite3_bind_int(q, 2, number))
        return store_bind_failed(store, ST_TRIAL_ID, err, "find trial");
    int rc = sqlite3_step(q);
    int ret = 0;
    if (rc == SQLITE_ROW)
        *trial_id = sqlite3_column_int64(q, 0);
    else if (rc == SQLITE_DONE)
        ret = CV_STORE_NOT_FOUND;
    else
        ret = store_failf(store, rc, err, "find trial %d of job %lld", number, (long long)job_id);
    done(q);
    return ret;
}

int cv_store_trials_each(cv_store_t *store, int64_t job_id, cv_store_on_trial_t on_trial, void *ctx,
                         char *err) {
    sqlite3_stmt *q = store->st[ST_TRIALS_EACH];
    if (sqlite3_bind_int64(q, 1, job_id))
        return store_bind_failed(store, ST_TRIALS_EACH, err, "visit trials");
    int ret = 0, rc = SQLITE_DONE;
    while (ret == 0 && (rc = sqlite3_step(q)) == SQLITE_ROW) {
        cv_store_trial_row_t row = {
            .id = sqlite3_column_int64(q, 0),
            .number = sqlite3_column_int(q, 1),
            .round = sqlite3_column_int(q, 2),
            .attempts = sqlite3_column_int(q, 4),
            .params = (const char *)sqlite3_column_text(q, 5),
            .config_key = (const char *)sqlite3_column_text(q, 6),
            .spec = (const char *)sqlite3_column_text(q, 7),
            .objective =
                sqlite3_column_type(q, 8) == SQLITE_NULL ? NAN : sqlite3_column_double(q, 8),
            .lease = (const char *)sqlite3_column_text(q, 9),
            .worker_id = (const char *)sqlite3_column_text(q, 10),
            .interrupted = sqlite3_column_int(q, 11),
        };
        if (!row.params || !row.config_key || !row.spec ||
            cv_store_trial_status_parse((const char *)sqlite3_column_text(q, 3), &row.status)) {
            ret = cv_errf(err, CV_EFORMAT, "store: trial %lld: unreadable row", (long long)row.id);
            break;
        }
        ret = on_trial(ctx, &row);
    }
    if (ret == 0 && rc != SQLITE_DONE) ret = store_failf(store, rc, err, "visit trials");
    done(q);
    return ret;
}
