/* The dashboard's reads of a job's trial history; see store_history.h. */
#include "server/store_history.h"
#include "server/store_internal.h"

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
    sqlite3 *db = store->db;
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

/* Steps q (already bound) and hands each row to fn. The columns are, in order: id, number,
 * status, finished_at, epochs_run, params, worker_id; with json set, then the JSON texts of id,
 * number, status, epochs_run, worker_id and the objective value, and n_params parameter values
 * (integer columns as SQLite's decimal text, which is their JSON).
 * Stops after limit rows and sets *more (when not NULL) to 1 when another row follows.
 * Finalizes q. */
static int each_row(sqlite3 *db, sqlite3_stmt *q, int json, int n_params, int64_t limit,
                    cv_store_history_fn_t fn, void *userdata, int *more, char *err) {
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
            .finished_at = sqlite3_column_double(q, 3),
            .epochs_run =
                sqlite3_column_type(q, 4) == SQLITE_NULL ? -1 : sqlite3_column_int64(q, 4),
            .params = text_or_empty(q, 5),
            .worker_id = (const char *)sqlite3_column_text(q, 6),
        };
        if (json) {
            const char **texts[] = {&row.id_json,     &row.number_json, &row.status_json,
                                    &row.epochs_json, &row.worker_json, &row.value_json};
            for (int i = 0; i < 6; i++)
                *texts[i] = text_or_empty(q, 7 + i);
            for (int i = 0; i < n_params; i++)
                row.param_json[i] = text_or_empty(q, 13 + i);
        }
        if ((ret = fn(userdata, &row, err))) break;
        n++;
    }
    if (ret == 0 && rc != SQLITE_ROW && rc != SQLITE_DONE) ret = sql_failed(db, rc, "history", err);
    sqlite3_finalize(q);
    return ret;
}

/* The trials of the job that finished after (at, id): the WHERE clause both reads share. */
#define AFTER_CURSOR                                                                               \
    " FROM trials WHERE job_id = ?1 AND finished_at IS NOT NULL"                                   \
    " AND status NOT IN ('queued', 'running')"                                                     \
    " AND (finished_at > ?3 OR (finished_at = ?3 AND id > ?4))"

/* Binds the job, the objective and the cursor (parameters 1 to 4) of a history statement. */
static void bind_after(sqlite3_stmt *q, int64_t job_id, int dev_cost,
                       const cv_store_history_key_t *after) {
    sqlite3_bind_int64(q, 1, job_id);
    sqlite3_bind_int(q, 2, dev_cost);
    sqlite3_bind_double(q, 3, isfinite(after->finished_at) ? after->finished_at : -1e300);
    sqlite3_bind_int64(q, 4, after->id);
}

/* How many trials of the job finished after the cursor, into *n. */
static int count_after(sqlite3 *db, int64_t job_id, const cv_store_history_key_t *after, int64_t *n,
                       char *err) {
    sqlite3_stmt *q = NULL;
    int rc = sqlite3_prepare_v2(db, "SELECT count(*), ?2" AFTER_CURSOR, -1, &q, NULL);
    if (rc != SQLITE_OK) return sql_failed(db, rc, "history count", err);
    bind_after(q, job_id, 0, after);
    rc = sqlite3_step(q);
    int ret = rc == SQLITE_ROW ? 0 : sql_failed(db, rc, "history count", err);
    if (ret == 0) *n = sqlite3_column_int64(q, 0);
    sqlite3_finalize(q);
    return ret;
}

int cv_store_history_finished(cv_store_t *store, int64_t job_id, int dev_cost,
                              const char *const *names, int n_names,
                              const cv_store_history_key_t *after, int64_t limit,
                              cv_store_history_fn_t fn, void *userdata, int *more, char *err) {
    sqlite3 *db = store->db;
    sqlite3_stmt *q = NULL;
    int64_t n = 0;
    if (n_names < 0 || n_names > CV_STORE_HISTORY_PARAMS_MAX)
        return cv_errf(err, CV_EINVAL, "store: history: %d parameters, at most %d", n_names,
                       CV_STORE_HISTORY_PARAMS_MAX);
    /* One read transaction, so that the count and the rows are of the same snapshot. */
    int rc = sqlite3_exec(db, "BEGIN", NULL, NULL, NULL);
    if (rc != SQLITE_OK) return sql_failed(db, rc, "history", err);
    int ret = count_after(db, job_id, after, &n, err);
    if (ret) goto cleanup;
    /* The statement: fixed text and one "params -> ?k" per name (the JSON path bound, never
     * formatted in), about 400 + 64 * 40 bytes. When every trial after the cursor fits in the
     * reply, they are read in number order along the (job_id, number) index, which needs no
     * sort of the whole job; otherwise in finishing order, up to limit. */
    char sql[4096];
    size_t len = (size_t)snprintf(
        sql, sizeof sql, "%s",
        "SELECT id, number, status, finished_at, epochs_run, params, worker_id, id, number,"
        " json_quote(status), coalesce(epochs_run, 'null'), json_quote(worker_id),"
        " json_quote(CASE WHEN ?2 THEN dev_cost ELSE dev_error END)");
    for (int i = 0; i < n_names; i++)
        len += (size_t)snprintf(sql + len, sizeof sql - len, ", coalesce(params -> ?%d, 'null')",
                                6 + i);
    snprintf(sql + len, sizeof sql - len, "%s%s", AFTER_CURSOR,
             n <= limit ? " ORDER BY number LIMIT ?5" : " ORDER BY finished_at, id LIMIT ?5");
    if ((rc = sqlite3_prepare_v2(db, sql, -1, &q, NULL)) != SQLITE_OK) {
        ret = sql_failed(db, rc, "history", err);
        goto cleanup;
    }
    bind_after(q, job_id, dev_cost, after);
    sqlite3_bind_int64(q, 5, limit + 1);
    for (int i = 0; i < n_names; i++) {
        char path[300];
        snprintf(path, sizeof path, "$.\"%s\"", names[i]);
        if ((rc = sqlite3_bind_text(q, 6 + i, path, -1, SQLITE_TRANSIENT)) != SQLITE_OK) {
            ret = sql_failed(db, rc, "history", err);
            sqlite3_finalize(q);
            goto cleanup;
        }
    }
    ret = each_row(db, q, 1, n_names, limit, fn, userdata, more, err);
cleanup:
    sqlite3_exec(db, "COMMIT", NULL, NULL, NULL);
    return ret;
}

int cv_store_history_running(cv_store_t *store, int64_t job_id, int64_t limit,
                             cv_store_history_fn_t fn, void *userdata, char *err) {
    sqlite3 *db = store->db;
    sqlite3_stmt *q = NULL;
    int rc = sqlite3_prepare_v2(db,
                                "SELECT id, number, status, 0, epochs_run, params, worker_id"
                                " FROM trials WHERE job_id = ?1 AND status = 'running'"
                                " ORDER BY number LIMIT ?2",
                                -1, &q, NULL);
    if (rc != SQLITE_OK) return sql_failed(db, rc, "history running", err);
    sqlite3_bind_int64(q, 1, job_id);
    sqlite3_bind_int64(q, 2, limit);
    return each_row(db, q, 0, 0, limit, fn, userdata, NULL, err);
}
