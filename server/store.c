/* The coordinator's SQLite store (see store.h for the contract and the trial lifecycle): opening
 * and closing, transactions and the savepoint of each write, the names of statuses and
 * objectives, and the error, binding and stepping helpers the other store files share. The
 * schema is in store_schema.c, the statements in store_sql.c, the operations in store_jobs.c,
 * store_trials.c and store_workers.c, the JSON queries of the API in store_queries.c. */

#include "server/store_internal.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

#include "common/err.h"

#define DEFAULT_BUSY_TIMEOUT_MS 5000

const char *const store_job_status_names[] = {"running", "completed", "cancelled", "failed"};
const char *const store_trial_status_names[] = {"queued",   "running", "completed", "failed",
                                             "diverged", "lost",    "cancelled", "pruned"};
const char *const store_objective_names[] = {"job", "dev_error", "dev_cost"};

_Static_assert(sizeof store_job_status_names / sizeof store_job_status_names[0] ==
                   CV_STORE_JOB_FAILED + 1,
               "a name per job status");
_Static_assert(sizeof store_trial_status_names / sizeof store_trial_status_names[0] ==
                   CV_STORE_TRIAL_STATUSES,
               "a name per trial status");

const char *cv_store_job_status_name(cv_store_job_status_t status) {
    return (unsigned)status <= CV_STORE_JOB_FAILED ? store_job_status_names[status] : "unknown";
}

const char *cv_store_trial_status_name(cv_store_trial_status_t status) {
    return (unsigned)status < CV_STORE_TRIAL_STATUSES ? store_trial_status_names[status]
                                                      : "unknown";
}

const char *cv_store_objective_name(cv_store_objective_t objective) {
    return (unsigned)objective <= CV_STORE_OBJ_DEV_COST ? store_objective_names[objective]
                                                        : "unknown";
}

static int find_name(const char *const *names, int count, const char *name) {
    for (int i = 0; name && i < count; i++) {
        if (strcmp(names[i], name) == 0) return i;
    }
    return -1;
}

int cv_store_job_status_parse(const char *name, cv_store_job_status_t *out) {
    int i = find_name(store_job_status_names, CV_STORE_JOB_FAILED + 1, name);
    if (i < 0) return CV_EINVAL;
    *out = (cv_store_job_status_t)i;
    return 0;
}

int cv_store_trial_status_parse(const char *name, cv_store_trial_status_t *out) {
    int i = find_name(store_trial_status_names, CV_STORE_TRIAL_STATUSES, name);
    if (i < 0) return CV_EINVAL;
    *out = (cv_store_trial_status_t)i;
    return 0;
}

/* Parses a stored objective ("dev_error" or "dev_cost"); -1 for anything else. */
int store_objective_parse(const char *name) {
    int i = find_name(store_objective_names, CV_STORE_OBJ_DEV_COST + 1, name);
    return i > CV_STORE_OBJ_JOB ? i : -1;
}

/* Maps a SQLite result code (primary or extended) to a CV_E* code. */
int store_sql_code(int rc) {
    switch (rc & 0xff) {
    case SQLITE_CONSTRAINT:
    case SQLITE_MISMATCH:
    case SQLITE_RANGE:
    case SQLITE_TOOBIG:
        return CV_EINVAL;
    case SQLITE_NOMEM:
        return CV_ENOMEM;
    case SQLITE_NOTADB:
    case SQLITE_CORRUPT:
        return CV_EFORMAT;
    default:
        return CV_EIO; /* FULL, IOERR, READONLY, BUSY, LOCKED, CANTOPEN, ... */
    }
}

int store_failf(cv_store_t *s, int rc, char *err, const char *fmt, ...) {
    if (!err) return store_sql_code(rc);
    char what[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    return cv_errf(err, store_sql_code(rc), "store: %s: %s", what, sqlite3_errmsg(s->db));
}

/* Steps a statement that returns no rows (or whose rows are ignored) to completion and ends its
 * use. 0 or the mapped error with "what" in the reason. */
int store_run(cv_store_t *s, int id, char *err, const char *what) {
    sqlite3_stmt *q = s->st[id];
    int rc = sqlite3_step(q);
    int ret = 0;
    if (rc != SQLITE_DONE && rc != SQLITE_ROW) ret = store_failf(s, rc, err, "%s", what);
    done(q);
    return ret;
}

/* run, for an update of one row named by its key: CV_STORE_NOT_FOUND when no row matched. */
int store_run_found(cv_store_t *s, int id, char *err, const char *what) {
    int ret = store_run(s, id, err, what);
    if (ret == 0 && sqlite3_changes(s->db) == 0) ret = CV_STORE_NOT_FOUND;
    return ret;
}

/* Steps a cleanup statement whose failure has nothing to add to the error being reported. */
static void run_quiet(cv_store_t *s, int id) {
    sqlite3_step(s->st[id]);
    done(s->st[id]);
}

/* Reports a failure to bind (only out of memory or a too-long value in practice). */
int store_bind_failed(cv_store_t *s, int id, char *err, const char *what) {
    int ret = store_failf(s, sqlite3_errcode(s->db), err, "%s: binding values", what);
    done(s->st[id]);
    return ret;
}

/* Starts the savepoint that makes a multi-statement write atomic. Outside a group it also opens
 * the transaction that its release commits. */
int store_op_begin(cv_store_t *s, char *err) {
    return store_run(s, ST_SAVEPOINT, err, "savepoint");
}

/* Ends the savepoint of store_op_begin: released (committed, outside a group) when ret >= 0, undone
 * otherwise or when the release fails. Returns ret or the release's error. */
int store_op_end(cv_store_t *s, int ret, char *err) {
    if (ret >= 0) {
        int rc = store_run(s, ST_RELEASE, err, "commit");
        if (rc == 0) return ret;
        ret = rc;
    }
    if (!sqlite3_get_autocommit(s->db)) { /* SQLite may have rolled back everything already */
        if (s->in_group) {
            run_quiet(s, ST_ROLLBACK_TO);
            run_quiet(s, ST_RELEASE);
        } else {
            run_quiet(s, ST_ROLLBACK);
        }
    }
    return ret;
}

/* Reads a job's objective and status (status may be NULL); CV_STORE_NOT_FOUND when the job does
 * not exist. */
int store_job_head(cv_store_t *s, int64_t job_id, int *objective, cv_store_job_status_t *status,
                   char *err) {
    sqlite3_stmt *q = s->st[ST_JOB_OBJECTIVE];
    int ret = 0;
    if (sqlite3_bind_int64(q, 1, job_id) != SQLITE_OK)
        return store_bind_failed(s, ST_JOB_OBJECTIVE, err, "read job");
    int rc = sqlite3_step(q);
    if (rc == SQLITE_ROW) {
        *objective = store_objective_parse((const char *)sqlite3_column_text(q, 0));
        if (*objective < 0)
            ret = cv_errf(err, CV_EFORMAT, "store: job %lld has an unknown objective",
                          (long long)job_id);
        else if (status &&
                 cv_store_job_status_parse((const char *)sqlite3_column_text(q, 1), status))
            ret = cv_errf(err, CV_EFORMAT, "store: job %lld has an unknown status",
                          (long long)job_id);
    } else if (rc == SQLITE_DONE) {
        ret = CV_STORE_NOT_FOUND;
    } else {
        ret = store_failf(s, rc, err, "read job %lld", (long long)job_id);
    }
    done(q);
    return ret;
}

/* Opens, checks, configures and migrates (read-write) or checks the version (read-only), then
 * prepares the catalogue. */
static int store_open(const char *path, const cv_store_options_t *options, int readonly,
                      cv_store_t **out, char *err) {
    cv_store_options_t opt = {0};
    int64_t version = 0;
    int ret = 0;
    if (!out) return cv_errf(err, CV_EINVAL, "store: no place for the store");
    *out = NULL;
    if (!path || !*path) return cv_errf(err, CV_EINVAL, "store: empty database path");
    if (options) opt = *options;

    cv_store_t *s = calloc(1, sizeof *s);
    if (!s) return cv_errf(err, CV_ENOMEM, "store: out of memory");
    s->wal_fd = -1;
    int flags = SQLITE_OPEN_NOMUTEX |
                (readonly ? SQLITE_OPEN_READONLY : SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE);
    int rc = sqlite3_open_v2(path, &s->db, flags, opt.vfs);
    if (rc != SQLITE_OK) {
        ret = cv_errf(err, s->db ? store_sql_code(rc) : CV_ENOMEM, "store: cannot open %s: %s",
                      path, s->db ? sqlite3_errmsg(s->db) : "out of memory");
        goto fail;
    }
    sqlite3_extended_result_codes(s->db, 1);
    sqlite3_busy_timeout(s->db,
                         opt.busy_timeout_ms > 0 ? opt.busy_timeout_ms : DEFAULT_BUSY_TIMEOUT_MS);
    sqlite3_db_config(s->db, SQLITE_DBCONFIG_DEFENSIVE, 1, (int *)NULL);
    sqlite3_db_config(s->db, SQLITE_DBCONFIG_DQS_DML, 0, (int *)NULL);
    sqlite3_db_config(s->db, SQLITE_DBCONFIG_DQS_DDL, 0, (int *)NULL);

    ret = store_check_identity(s->db, path, &version, err);
    if (ret != 0) goto fail;
    if (readonly) {
        if (version != CV_STORE_SCHEMA_VERSION) {
            ret = cv_errf(err, CV_EFORMAT,
                          "store: %s has schema version %lld, not %d; open it read-write once "
                          "to migrate it",
                          path, (long long)version, CV_STORE_SCHEMA_VERSION);
            goto fail;
        }
    } else {
        ret = store_configure(s->db, &opt, path, err);
        if (ret == 0) ret = store_migrate(s->db, version, path, err);
        if (ret == 0 && opt.deferred_sync) ret = store_sync_open(s, path, &opt, err);
        if (ret != 0) goto fail;
    }
    for (int i = 0; i < ST_COUNT; i++) {
        rc = sqlite3_prepare_v3(s->db, store_statements[i], -1, SQLITE_PREPARE_PERSISTENT,
                                &s->st[i], NULL);
        if (rc != SQLITE_OK) {
            ret = cv_errf(err, store_sql_code(rc) == CV_EIO ? CV_EFORMAT : store_sql_code(rc),
                          "store: %s: preparing statement %d: %s", path, i, sqlite3_errmsg(s->db));
            goto fail;
        }
    }
    *out = s;
    return 0;

fail:
    cv_store_close(s);
    return ret;
}

int cv_store_open(const char *path, cv_store_t **out, char *err) {
    return store_open(path, NULL, 0, out, err);
}

int cv_store_open_with(const char *path, const cv_store_options_t *options, cv_store_t **out,
                       char *err) {
    return store_open(path, options, 0, out, err);
}

int cv_store_open_readonly(const char *path, cv_store_t **out, char *err) {
    return store_open(path, NULL, 1, out, err);
}

void cv_store_close(cv_store_t *store) {
    if (!store) return;
    if (store->db && !sqlite3_get_autocommit(store->db) && store->st[ST_ROLLBACK])
        run_quiet(store, ST_ROLLBACK);
    for (int i = 0; i < ST_COUNT; i++)
        sqlite3_finalize(store->st[i]);
    store_sync_close(store);
    sqlite3_close(store->db);
    free(store);
}

int cv_store_begin(cv_store_t *store, char *err) {
    if (store->in_group) return cv_errf(err, CV_EINVAL, "store: a transaction is already open");
    int ret = store_run(store, ST_BEGIN, err, "begin");
    if (ret == 0) store->in_group = 1;
    return ret;
}

int cv_store_commit(cv_store_t *store, char *err) {
    if (!store->in_group) return cv_errf(err, CV_EINVAL, "store: commit without begin");
    store->in_group = 0;
    if (sqlite3_get_autocommit(store->db))
        return cv_errf(err, CV_EIO,
                       "store: commit: the transaction was rolled back after an earlier error; "
                       "nothing in it was stored");
    int ret = store_run(store, ST_COMMIT, err, "commit");
    if (ret != 0 && !sqlite3_get_autocommit(store->db)) run_quiet(store, ST_ROLLBACK);
    return ret;
}

int cv_store_rollback(cv_store_t *store, char *err) {
    if (!store->in_group) return 0;
    store->in_group = 0;
    if (sqlite3_get_autocommit(store->db)) return 0;
    return store_run(store, ST_ROLLBACK, err, "rollback");
}

int cv_store_freeze(cv_store_t *store, char *err) {
    int ret = cv_store_rollback(store, err);
    int rc = sqlite3_exec(store->db, "PRAGMA query_only = ON", NULL, NULL, NULL);
    if (rc != SQLITE_OK && ret == 0) ret = store_failf(store, rc, err, "read-only");
    return ret;
}
