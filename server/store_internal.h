/* The store's private state, shared by its files (server/store.c and server/store_*.c) and
 * included by them only: the connection with its catalogue of prepared statements, the
 * statements' names, and the helpers to bind, step and report that every operation uses. */

#ifndef CV_STORE_INTERNAL_H
#define CV_STORE_INTERNAL_H

#include <math.h>

#include <sqlite3.h>

#include "server/store.h"

/* The reason written with every interrupted attempt. */
#define RESTART_REASON "the coordinator restarted"

/* The statements of the catalogue (store_sql.c), prepared once per store. */
enum {
    ST_BEGIN,
    ST_COMMIT,
    ST_ROLLBACK,
    ST_SAVEPOINT,
    ST_RELEASE,
    ST_ROLLBACK_TO,
    ST_JOB_INSERT,
    ST_JOB_SET_STATUS,
    ST_JOB_SET_ROUND,
    ST_JOB_SET_TEST,
    ST_JOB_CANCEL,
    ST_JOB_CANCEL_TRIALS,
    ST_JOB_OBJECTIVE,
    ST_ROUND_INSERT,
    ST_TRIAL_INSERT,
    ST_TRIAL_START,
    ST_CURVE_CLEAR,
    ST_TRIAL_RESULT,
    ST_TRIAL_STATUS,
    ST_TRIAL_LEASED,
    ST_CURVE_INSERT,
    ST_TRIAL_REQUEUE,
    ST_TRIAL_RETRY,
    ST_RECOVER,
    ST_TRIAL_ID,
    ST_WORKER_SEEN,
    ST_WORKER_OUTCOME,
    ST_WORKER_QUARANTINED,
    ST_WORKER_LAST_SEEN,
    ST_JOBS_LIST,
    ST_JOB_GET,
    ST_JOB_COUNTS,
    ST_ROUNDS,
    ST_TRIALS_LIST,
    ST_TOP_DEV_ERROR,
    ST_TOP_DEV_COST,
    ST_RANKED_DEV_ERROR,
    ST_RANKED_DEV_COST,
    ST_TRIAL_GET,
    ST_CURVE_GET,
    ST_WORKERS_LIST,
    ST_ATTEMPT_END,
    ST_ATTEMPT_STALE,
    ST_ATTEMPTS_RECOVER,
    ST_ATTEMPTS_CANCEL,
    ST_ATTEMPTS_GET,
    ST_WORKER_RESULTS,
    ST_JOB_QUARANTINED,
    ST_JOBS_EACH,
    ST_TRIALS_EACH,
    ST_WORKER_COUNT,
    ST_WORKER_QUARANTINE_SET,
    ST_WORKER_RELEASE,
    ST_JOB_FIRST_FAILURE,
    ST_JOB_DELETE_CURVES,
    ST_JOB_DELETE_ATTEMPTS,
    ST_JOB_DELETE_TRIALS,
    ST_JOB_DELETE_ROUNDS,
    ST_JOB_DELETE_DECISIONS,
    ST_DECISION_INSERT,
    ST_DECISIONS_EACH,
    ST_ROUND_GROW,
    ST_JOB_SET_USAGE,
    ST_JOB_USAGE,
    ST_TRIAL_CURVE_BEST,
    ST_JOB_DELETE,
    ST_JOB_ROW,
    ST_JOB_SET_SPEC,
    ST_JOB_SET_PLAN,
    ST_NUDGE_INSERT,
    ST_NUDGE_APPLIED,
    ST_NUDGES_EACH,
    ST_JOB_DELETE_NUDGES,
    ST_COUNT
};

/* A store: one SQLite connection and the statements prepared on it. */
struct cv_store {
    sqlite3 *db;
    sqlite3_stmt *st[ST_COUNT]; /* prepared at open, finalized at close */
    int in_group;               /* 1 between cv_store_begin and its commit or rollback */
    /* deferred_sync (store_sync.c): set at open, then only read */
    int wal_fd;                 /* the WAL file, for cv_store_sync; -1 without deferred_sync */
    sqlite3 *checkpointer;      /* cv_store_checkpoint's connection, NULL without deferred_sync */
    int wal_frames;             /* frames in the WAL after the last commit (atomic: the writer
                                   sets it, cv_store_checkpoint reads it on another thread) */
};

/* store_sync.c: opens the WAL descriptors and the checkpointing connection of a read-write store
 * opened with deferred_sync (after its schema is migrated), and closes them. */
int store_sync_open(cv_store_t *s, const char *path, const cv_store_options_t *opt, char *err);
void store_sync_close(cv_store_t *s);

/* Ends a use of a statement: resets it (closing its read snapshot) and drops the borrowed
 * bindings so no dangling pointer outlives the call. */
static inline void done(sqlite3_stmt *q) {
    sqlite3_reset(q);
    sqlite3_clear_bindings(q);
}

/* Binds text, or NULL for a NULL pointer (borrowed until done). */
static inline int bind_text(sqlite3_stmt *q, int i, const char *v) {
    return v ? sqlite3_bind_text(q, i, v, -1, SQLITE_STATIC) : sqlite3_bind_null(q, i);
}

/* Binds a number, or NULL for NaN and infinities. */
static inline int bind_real(sqlite3_stmt *q, int i, double v) {
    return isfinite(v) ? sqlite3_bind_double(q, i, v) : sqlite3_bind_null(q, i);
}

/* Binds a count, or NULL for a negative one (unknown). */
static inline int bind_count(sqlite3_stmt *q, int i, int v) {
    return v >= 0 ? sqlite3_bind_int(q, i, v) : sqlite3_bind_null(q, i);
}

/* store_sql.c: the text of each statement, by its ST_* name */
extern const char *const store_statements[ST_COUNT];

/* store.c: the names of job statuses, trial statuses and objectives, by their enum values */
extern const char *const store_job_status_names[];
extern const char *const store_trial_status_names[];
extern const char *const store_objective_names[];

/* ---- shared between the store files ---------------------------------------------------------- */

/* store_schema.c: identity, settings and migrations */
int store_check_identity(sqlite3 *db, const char *path, int64_t *version, char *err);
int store_configure(sqlite3 *db, const cv_store_options_t *opt, const char *path, char *err);
int store_migrate(sqlite3 *db, int64_t from, const char *path, char *err);

/* store.c: opening, transactions, names and helpers */
int store_objective_parse(const char *name);
int store_sql_code(int rc);
/* Formats "store: <what>: <sqlite3_errmsg>" into err and returns the mapped code. Call it before
 * resetting the failed statement, while the message is still the statement's. */
int store_failf(cv_store_t *s, int rc, char *err, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 4, 5)))
#endif
    ;
int store_run(cv_store_t *s, int id, char *err, const char *what);
int store_run_found(cv_store_t *s, int id, char *err, const char *what);
int store_bind_failed(cv_store_t *s, int id, char *err, const char *what);
int store_op_begin(cv_store_t *s, char *err);
int store_op_end(cv_store_t *s, int ret, char *err);
int store_job_head(cv_store_t *s, int64_t job_id, int *objective, cv_store_job_status_t *status,
                   char *err);

#endif
