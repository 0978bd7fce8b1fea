/* The store's workers: when each was seen, its count of trials and of failures in a row, and
 * its quarantine. */

#include "server/store_internal.h"

#include <math.h>
#include <string.h>

#include <sqlite3.h>

#include "common/err.h"

int cv_store_worker_seen(cv_store_t *store, const char *worker_id, const char *version, int threads,
                         const char *host, double now, char *err) {
    if (!worker_id) return cv_errf(err, CV_EINVAL, "store: worker seen: worker id required");
    sqlite3_stmt *q = store->st[ST_WORKER_SEEN];
    if (bind_text(q, 1, worker_id) || bind_text(q, 2, version) || bind_count(q, 3, threads) ||
        bind_text(q, 4, host) || bind_real(q, 5, now))
        return store_bind_failed(store, ST_WORKER_SEEN, err, "worker seen");
    return store_run(store, ST_WORKER_SEEN, err, "worker seen");
}

int cv_store_worker_outcome(cv_store_t *store, const char *worker_id, int succeeded,
                            int *consecutive_failures, char *err) {
    if (!worker_id) return cv_errf(err, CV_EINVAL, "store: worker outcome: worker id required");
    sqlite3_stmt *q = store->st[ST_WORKER_OUTCOME];
    if (bind_text(q, 1, worker_id) || sqlite3_bind_int(q, 2, succeeded != 0))
        return store_bind_failed(store, ST_WORKER_OUTCOME, err, "worker outcome");
    int ret = CV_STORE_NOT_FOUND;
    int rc = sqlite3_step(q);
    if (rc == SQLITE_ROW) {
        if (consecutive_failures) *consecutive_failures = sqlite3_column_int(q, 0);
        ret = 0;
        rc = sqlite3_step(q); /* finish the statement: the update is complete only at DONE */
    }
    if (rc != SQLITE_DONE) ret = store_failf(store, rc, err, "worker outcome of %.64s", worker_id);
    done(q);
    return ret;
}

int cv_store_worker_failed_streak(cv_store_t *store, const char *worker_id, int n,
                                  int64_t *trial_ids, int *count, char *err) {
    *count = 0;
    if (!worker_id || n < 0 || (n > 0 && !trial_ids))
        return cv_errf(err, CV_EINVAL, "store: failed streak: worker id and room required");
    sqlite3_stmt *q = store->st[ST_WORKER_RESULTS];
    if (bind_text(q, 1, worker_id) || sqlite3_bind_int(q, 2, n))
        return store_bind_failed(store, ST_WORKER_RESULTS, err, "failed streak");
    int rc;
    while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
        const char *outcome = (const char *)sqlite3_column_text(q, 1);
        if (!outcome || strcmp(outcome, "failed") != 0) {
            rc = SQLITE_DONE; /* the streak ends at the newest result that was not a failure */
            break;
        }
        trial_ids[(*count)++] = sqlite3_column_int64(q, 0);
    }
    int ret =
        rc == SQLITE_DONE ? 0 : store_failf(store, rc, err, "failed streak of %.64s", worker_id);
    done(q);
    return ret;
}

int cv_store_worker_get(cv_store_t *store, const char *worker_id, int *quarantined,
                        int *consecutive_failures, double *until, char *err) {
    sqlite3_stmt *q = store->st[ST_WORKER_QUARANTINED];
    if (bind_text(q, 1, worker_id))
        return store_bind_failed(store, ST_WORKER_QUARANTINED, err, "get worker");
    int rc = sqlite3_step(q), ret = 0;
    if (rc == SQLITE_ROW) {
        if (quarantined) *quarantined = sqlite3_column_int(q, 0);
        if (consecutive_failures) *consecutive_failures = sqlite3_column_int(q, 1);
        if (until)
            *until = sqlite3_column_type(q, 2) == SQLITE_NULL ? NAN : sqlite3_column_double(q, 2);
    } else if (rc == SQLITE_DONE) {
        ret = CV_STORE_NOT_FOUND;
    } else {
        ret = store_failf(store, rc, err, "get worker %s", worker_id);
    }
    done(q);
    return ret;
}

int cv_store_worker_last_seen(cv_store_t *store, const char *worker_id, double when, char *err) {
    if (!worker_id) return cv_errf(err, CV_EINVAL, "store: last seen: worker id required");
    sqlite3_stmt *q = store->st[ST_WORKER_LAST_SEEN];
    if (bind_text(q, 1, worker_id) || sqlite3_bind_double(q, 2, when))
        return store_bind_failed(store, ST_WORKER_LAST_SEEN, err, "last seen");
    return store_run_found(store, ST_WORKER_LAST_SEEN, err, "last seen");
}

int cv_store_worker_count(cv_store_t *store, const char *worker_id, char *err) {
    if (!worker_id) return cv_errf(err, CV_EINVAL, "store: worker count: worker id required");
    sqlite3_stmt *q = store->st[ST_WORKER_COUNT];
    if (bind_text(q, 1, worker_id))
        return store_bind_failed(store, ST_WORKER_COUNT, err, "worker count");
    return store_run_found(store, ST_WORKER_COUNT, err, "worker count");
}

int cv_store_worker_quarantine(cv_store_t *store, const char *worker_id, const char *reason,
                               double now, double until, char *err) {
    if (!worker_id) return cv_errf(err, CV_EINVAL, "store: quarantine: worker id required");
    sqlite3_stmt *q = store->st[ST_WORKER_QUARANTINE_SET];
    if (bind_text(q, 1, worker_id) || bind_text(q, 2, reason) || bind_real(q, 3, now) ||
        bind_real(q, 4, until))
        return store_bind_failed(store, ST_WORKER_QUARANTINE_SET, err, "quarantine");
    return store_run_found(store, ST_WORKER_QUARANTINE_SET, err, "quarantine");
}

int cv_store_worker_release(cv_store_t *store, const char *worker_id, char *err) {
    if (!worker_id) return cv_errf(err, CV_EINVAL, "store: release: worker id required");
    sqlite3_stmt *q = store->st[ST_WORKER_RELEASE];
    if (bind_text(q, 1, worker_id))
        return store_bind_failed(store, ST_WORKER_RELEASE, err, "release");
    int rc = sqlite3_step(q), ret = CV_STORE_NOT_FOUND;
    if (rc == SQLITE_ROW) {
        ret = 0;
        rc = sqlite3_step(q); /* the update is complete only at DONE */
    }
    if (rc != SQLITE_DONE) ret = store_failf(store, rc, err, "release worker %.64s", worker_id);
    done(q);
    return ret;
}
