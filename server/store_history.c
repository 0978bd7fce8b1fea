/* The dashboard's reads of a job's trial history; see store_history.h. */
#include "server/store_history.h"

#include <math.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"

/* Formats "store: <what>: <sqlite's message>" and returns CV_ENOMEM or CV_EIO. */
static int sql_failed(sqlite3 *db, int rc, const char *what, char *err) {
    return cv_errf(err, rc == SQLITE_NOMEM ? CV_ENOMEM : CV_EIO, "store: %s: %s", what,
                   sqlite3_errmsg(db));
}

/* Text of column i, "" for NULL. */
static const char *text_or_empty(sqlite3_stmt *q, int i) {
    const unsigned char *t = sqlite3_column_text(q, i);
    return t ? (const char *)t : "";
}

int cv_store_history_job(cv_store_t *store, int64_t job_id, char objective[16], char status[16],
                         char **spec, char *err) {
    sqlite3 *db = cv_store_sqlite(store);
    sqlite3_stmt *q = NULL;
    *spec = NULL;
    int rc = sqlite3_prepare_v2(db, "SELECT objective, status, spec FROM jobs WHERE id = ?1", -1,
                                &q, NULL);
    if (rc != SQLITE_OK) return sql_failed(db, rc, "history job", err);
    int ret = 0;
    sqlite3_bind_int64(q, 1, job_id);
    rc = sqlite3_step(q);
    if (rc == SQLITE_ROW) {
        snprintf(objective, 16, "%s", text_or_empty(q, 0));
        snprintf(status, 16, "%s", text_or_empty(q, 1));
        if (!(*spec = strdup(text_or_empty(q, 2))))
            ret = cv_errf(err, CV_ENOMEM, "store: out of memory");
    } else if (rc == SQLITE_DONE) {
        ret = CV_STORE_NOT_FOUND;
    } else {
        ret = sql_failed(db, rc, "history job", err);
    }
    sqlite3_finalize(q);
    return ret;
}

/* Steps q (already bound) and hands each row to fn; the columns are, in order: id, number,
 * status, value, finished_at, epochs_run, params, worker_id. Stops after limit rows and sets
 * *more (when not NULL) to 1 when another row follows. Finalizes q. */
static int each_row(sqlite3 *db, sqlite3_stmt *q, int64_t limit, cv_store_history_fn_t fn,
                    void *userdata, int *more, char *err) {
    int ret = 0, rc;
    int64_t n = 0;
    if (more) *more = 0;
    while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
        if (n == limit) {
            if (more) *more = 1;
            break;
        }
        cv_store_history_row_t row = {
            .id = sqlite3_column_int64(q, 0),
            .number = sqlite3_column_int64(q, 1),
            .status = text_or_empty(q, 2),
            .value = sqlite3_column_type(q, 3) == SQLITE_NULL ? NAN : sqlite3_column_double(q, 3),
            .finished_at = sqlite3_column_double(q, 4),
            .epochs_run = sqlite3_column_type(q, 5) == SQLITE_NULL ? -1
                                                                   : sqlite3_column_int64(q, 5),
            .params = text_or_empty(q, 6),
            .worker_id = (const char *)sqlite3_column_text(q, 7),
        };
        if ((ret = fn(userdata, &row, err))) break;
        n++;
    }
    if (ret == 0 && rc != SQLITE_ROW && rc != SQLITE_DONE)
        ret = sql_failed(db, rc, "history", err);
    sqlite3_finalize(q);
    return ret;
}

int cv_store_history_finished(cv_store_t *store, int64_t job_id, int dev_cost,
                              const cv_store_history_key_t *after, int64_t limit,
                              cv_store_history_fn_t fn, void *userdata, int *more, char *err) {
    sqlite3 *db = cv_store_sqlite(store);
    sqlite3_stmt *q = NULL;
    /* Every trial that left queued and running has finished_at set. */
    int rc = sqlite3_prepare_v2(
        db,
        "SELECT id, number, status, CASE WHEN ?2 THEN dev_cost ELSE dev_error END, finished_at,"
        " epochs_run, params, worker_id FROM trials"
        " WHERE job_id = ?1 AND finished_at IS NOT NULL AND status NOT IN ('queued', 'running')"
        " AND (finished_at > ?3 OR (finished_at = ?3 AND id > ?4))"
        " ORDER BY finished_at, id LIMIT ?5",
        -1, &q, NULL);
    if (rc != SQLITE_OK) return sql_failed(db, rc, "history", err);
    sqlite3_bind_int64(q, 1, job_id);
    sqlite3_bind_int(q, 2, dev_cost);
    if (isfinite(after->finished_at)) sqlite3_bind_double(q, 3, after->finished_at);
    else sqlite3_bind_double(q, 3, -1e300);
    sqlite3_bind_int64(q, 4, after->id);
    sqlite3_bind_int64(q, 5, limit + 1);
    return each_row(db, q, limit, fn, userdata, more, err);
}

int cv_store_history_running(cv_store_t *store, int64_t job_id, int64_t limit,
                             cv_store_history_fn_t fn, void *userdata, char *err) {
    sqlite3 *db = cv_store_sqlite(store);
    sqlite3_stmt *q = NULL;
    int rc = sqlite3_prepare_v2(db,
                                "SELECT id, number, status, NULL, 0, epochs_run, params, worker_id"
                                " FROM trials WHERE job_id = ?1 AND status = 'running'"
                                " ORDER BY number LIMIT ?2",
                                -1, &q, NULL);
    if (rc != SQLITE_OK) return sql_failed(db, rc, "history running", err);
    sqlite3_bind_int64(q, 1, job_id);
    sqlite3_bind_int64(q, 2, limit);
    return each_row(db, q, limit, fn, userdata, NULL, err);
}
