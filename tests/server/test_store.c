/* Unit tests of server/store: each test opens a real database file in a fresh mkdtemp directory,
 * drives one behaviour through the store API and checks the rows with independent raw SQLite
 * queries. The fault tests fill the disk (max_page_count), write through a read-only handle, and
 * fail every write and sync of a group commit in turn through a fault-injecting VFS. */
#include <check.h>
#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <sqlite3.h>

#include "common/err.h"
#include "server/store.h"
#include "testutil.h"

/* ---- Fixture: a temporary directory holding store.db ------------------------------------- */

typedef struct {
    char dir[CV_TEST_PATH];       /* the mkdtemp directory */
    char path[CV_TEST_PATH + 16]; /* dir/store.db */
    cv_store_t *store;            /* open read-write, or NULL */
    char err[CV_ERRLEN];
} fx_t;

static void fx_init_closed(fx_t *fx) {
    memset(fx, 0, sizeof *fx);
    const char *tmp = getenv("TMPDIR");
    snprintf(fx->dir, sizeof fx->dir, "%s/caviar-store-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    ck_assert_msg(mkdtemp(fx->dir) != NULL, "mkdtemp %s", fx->dir);
    snprintf(fx->path, sizeof fx->path, "%s/store.db", fx->dir);
}

static void fx_init(fx_t *fx) {
    fx_init_closed(fx);
    ck_assert_msg(cv_store_open(fx->path, &fx->store, fx->err) == 0, "%s", fx->err);
}

/* Closes the store and removes the directory with every file in it. */
static void fx_finish(fx_t *fx) {
    cv_store_close(fx->store);
    fx->store = NULL;
    DIR *d = opendir(fx->dir);
    ck_assert_ptr_nonnull(d);
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) continue;
        char p[CV_TEST_PATH * 2];
        snprintf(p, sizeof p, "%s/%s", fx->dir, e->d_name);
        ck_assert_int_eq(unlink(p), 0);
    }
    closedir(d);
    ck_assert_int_eq(rmdir(fx->dir), 0);
}

static void fx_reopen(fx_t *fx) {
    cv_store_close(fx->store);
    fx->store = NULL;
    ck_assert_msg(cv_store_open(fx->path, &fx->store, fx->err) == 0, "%s", fx->err);
}

/* ---- Raw SQLite access, independent of the store ----------------------------------------- */

/* Runs a query returning one integer on its own connection (NULL reads as -1). */
static int64_t raw_int(const char *path, const char *sql) {
    sqlite3 *db = NULL;
    sqlite3_stmt *q = NULL;
    ck_assert_int_eq(sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL), SQLITE_OK);
    ck_assert_msg(sqlite3_prepare_v2(db, sql, -1, &q, NULL) == SQLITE_OK, "%s: %s", sql,
                  sqlite3_errmsg(db));
    ck_assert_int_eq(sqlite3_step(q), SQLITE_ROW);
    int64_t v = sqlite3_column_type(q, 0) == SQLITE_NULL ? -1 : sqlite3_column_int64(q, 0);
    sqlite3_finalize(q);
    sqlite3_close(db);
    return v;
}

/* Same for a real value (NULL reads as NaN). */
static double raw_real(const char *path, const char *sql) {
    sqlite3 *db = NULL;
    sqlite3_stmt *q = NULL;
    ck_assert_int_eq(sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL), SQLITE_OK);
    ck_assert_msg(sqlite3_prepare_v2(db, sql, -1, &q, NULL) == SQLITE_OK, "%s: %s", sql,
                  sqlite3_errmsg(db));
    ck_assert_int_eq(sqlite3_step(q), SQLITE_ROW);
    double v = sqlite3_column_type(q, 0) == SQLITE_NULL ? NAN : sqlite3_column_double(q, 0);
    sqlite3_finalize(q);
    sqlite3_close(db);
    return v;
}

/* Same for text, copied into out (NULL reads as "(null)"). */
static void raw_text(const char *path, const char *sql, char *out, size_t cap) {
    sqlite3 *db = NULL;
    sqlite3_stmt *q = NULL;
    ck_assert_int_eq(sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL), SQLITE_OK);
    ck_assert_msg(sqlite3_prepare_v2(db, sql, -1, &q, NULL) == SQLITE_OK, "%s: %s", sql,
                  sqlite3_errmsg(db));
    ck_assert_int_eq(sqlite3_step(q), SQLITE_ROW);
    const char *t = (const char *)sqlite3_column_text(q, 0);
    snprintf(out, cap, "%s", t ? t : "(null)");
    sqlite3_finalize(q);
    sqlite3_close(db);
}

/* Runs statements on a raw connection that may create the file. */
static void raw_exec(const char *path, const char *sql) {
    sqlite3 *db = NULL;
    ck_assert_int_eq(sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL),
                     SQLITE_OK);
    ck_assert_msg(sqlite3_exec(db, sql, NULL, NULL, NULL) == SQLITE_OK, "%s: %s", sql,
                  sqlite3_errmsg(db));
    sqlite3_close(db);
}

/* SQL that takes a current file back to schema version 2: what migration 3 added goes, and the
 * version-2 ranking indexes come back. */
#define UNDO_MIGRATION_3                                                                           \
    "DROP INDEX trials_by_dev_error; DROP INDEX trials_by_dev_cost; "                              \
    "ALTER TABLE trials DROP COLUMN n_params; "                                                    \
    "CREATE INDEX trials_by_dev_error ON trials (job_id, dev_error, number) "                      \
    "WHERE status = 'completed'; "                                                                 \
    "CREATE INDEX trials_by_dev_cost ON trials (job_id, dev_cost, number) "                        \
    "WHERE status = 'completed'; "

#define UNDO_MIGRATION_9                                                                           \
    "ALTER TABLE jobs DROP COLUMN sampler; ALTER TABLE jobs DROP COLUMN pruner; "                  \
    "ALTER TABLE jobs DROP COLUMN rounds_planned; "

#define UNDO_MIGRATION_8 "DROP TABLE nudges; "

#define UNDO_MIGRATION_7                                                                           \
    "DROP INDEX decisions_by_job; DROP TABLE decisions; "                                          \
    "ALTER TABLE jobs DROP COLUMN busy_seconds; ALTER TABLE jobs DROP COLUMN available_seconds; "

#define UNDO_MIGRATION_4                                                                           \
    "ALTER TABLE workers DROP COLUMN quarantine_reason; "                                          \
    "ALTER TABLE workers DROP COLUMN quarantined_at; "                                             \
    "ALTER TABLE workers DROP COLUMN quarantined_until; "

/* Takes the fixture's file back to an older schema with undo (SQL that ends by setting its
 * user_version) and opens it again, which migrates it to the current version. */
static void fx_migrate_from(fx_t *fx, const char *undo) {
    cv_store_close(fx->store);
    fx->store = NULL;
    raw_exec(fx->path, undo);
    ck_assert_msg(cv_store_open(fx->path, &fx->store, fx->err) == 0, "%s", fx->err);
    ck_assert_int_eq(raw_int(fx->path, "PRAGMA user_version"), CV_STORE_SCHEMA_VERSION);
}

/* ---- Helpers over the store API ---------------------------------------------------------- */

#define NOW 1700000000.0 /* a fixed clock: times in the rows are exact */

/* The plan the helpers store with every job: a sampler, a pruner and rounds, as names. */
static const cv_store_job_plan_t k_plan = {"random", "none", 3};

static int64_t add_job(fx_t *fx, const char *name, cv_store_objective_t objective) {
    int64_t id = 0;
    ck_assert_msg(cv_store_job_create(fx->store, name, objective, "{\"trials\":10}", &k_plan,
                                      "{\"lr\":[0.001,0.1]}", NOW, &id, fx->err) == 0,
                  "%s", fx->err);
    ck_assert_int_gt(id, 0);
    return id;
}

/* Adds n queued trials numbered first..first+n-1 with config keys "k<number>"; ids may be NULL. */
static void add_trials(fx_t *fx, int64_t job, int first, int n, int64_t *ids) {
    cv_store_new_trial_t *t = calloc((size_t)n, sizeof *t);
    char(*keys)[32] = calloc((size_t)n, sizeof *keys);
    char(*params)[64] = calloc((size_t)n, sizeof *params);
    ck_assert(t && keys && params);
    for (int i = 0; i < n; i++) {
        snprintf(keys[i], sizeof keys[i], "k%d", first + i);
        snprintf(params[i], sizeof params[i], "{\"lr\":%d}", first + i);
        t[i] = (cv_store_new_trial_t){.number = first + i,
                                      .round = 0,
                                      .params = params[i],
                                      .config_key = keys[i],
                                      .spec = params[i]};
    }
    ck_assert_msg(cv_store_trials_add(fx->store, job, t, (size_t)n, NOW, ids, fx->err) == 0, "%s",
                  fx->err);
    free(params);
    free(keys);
    free(t);
}

static void start(fx_t *fx, int64_t trial, const char *lease) {
    ck_assert_msg(cv_store_trial_start(fx->store, trial, "w1", lease, NOW + 1, fx->err) == 0, "%s",
                  fx->err);
}

/* A job "j" with n trials, every one running under lease "L"; their ids into ids. Returns the
 * job's id. */
static int64_t add_running_trials(fx_t *fx, int n, int64_t *ids) {
    int64_t job = add_job(fx, "j", CV_STORE_OBJ_DEV_ERROR);
    add_trials(fx, job, 0, n, ids);
    for (int i = 0; i < n; i++)
        start(fx, ids[i], "L");
    return job;
}

static cv_store_result_t completed(double dev_error, double dev_cost) {
    return (cv_store_result_t){.status = CV_STORE_TRIAL_COMPLETED,
                               .dev_error = dev_error,
                               .dev_cost = dev_cost,
                               .train_error = 0.01,
                               .train_cost = 0.05,
                               .train_cost_reg = 0.06,
                               .best_epoch = 7,
                               .epochs_run = 10,
                               .diagnosis = "variance",
                               .examples_per_second = 12345.5,
                               .error = NULL,
                               .model_path = "/models/t.bin"};
}

static void finish(fx_t *fx, int64_t trial, const char *lease, double dev_error, double dev_cost) {
    cv_store_result_t r = completed(dev_error, dev_cost);
    ck_assert_msg(cv_store_put_result(fx->store, trial, lease, &r, NOW + 2, fx->err) == 0, "%s",
                  fx->err);
}

/* Formats a query about one trial into buf. */
static const char *sqlf(char *buf, size_t cap, const char *fmt, int64_t id) {
    snprintf(buf, cap, fmt, (long long)id);
    return buf;
}

/* One row of trial_attempts, read back with raw SQL. Text columns that are NULL read as "(null)",
 * real ones as NaN. */
typedef struct {
    int attempt;
    char worker[32], lease[32], outcome[16], error[64];
    double started, ended;
} attempt_row_t;

static void column_text(sqlite3_stmt *q, int i, char *out, size_t cap) {
    const char *t = (const char *)sqlite3_column_text(q, i);
    snprintf(out, cap, "%s", t ? t : "(null)");
}

/* Reads up to max attempt rows of a trial in attempt order; returns how many there are. */
static int attempt_rows(const char *path, int64_t trial, attempt_row_t *rows, int max) {
    sqlite3 *db = NULL;
    sqlite3_stmt *q = NULL;
    ck_assert_int_eq(sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL), SQLITE_OK);
    ck_assert_int_eq(sqlite3_prepare_v2(db,
                                        "SELECT attempt, worker_id, lease, started_at, ended_at, "
                                        "outcome, error FROM trial_attempts WHERE trial_id = ?1 "
                                        "ORDER BY attempt",
                                        -1, &q, NULL),
                     SQLITE_OK);
    ck_assert_int_eq(sqlite3_bind_int64(q, 1, trial), SQLITE_OK);
    int n = 0;
    while (sqlite3_step(q) == SQLITE_ROW) {
        if (n < max) {
            attempt_row_t *r = &rows[n];
            r->attempt = sqlite3_column_int(q, 0);
            column_text(q, 1, r->worker, sizeof r->worker);
            column_text(q, 2, r->lease, sizeof r->lease);
            r->started = sqlite3_column_type(q, 3) == SQLITE_NULL ? NAN : sqlite3_column_double(q, 3);
            r->ended = sqlite3_column_type(q, 4) == SQLITE_NULL ? NAN : sqlite3_column_double(q, 4);
            column_text(q, 5, r->outcome, sizeof r->outcome);
            column_text(q, 6, r->error, sizeof r->error);
        }
        n++;
    }
    sqlite3_finalize(q);
    sqlite3_close(db);
    return n;
}

/* Stores a result of the given status and error under lease at time now. */
static void put(fx_t *fx, int64_t trial, const char *lease, cv_store_trial_status_t status,
                const char *error, double now) {
    cv_store_result_t r = completed(0.2, 0.4);
    r.status = status;
    r.error = error;
    ck_assert_msg(cv_store_put_result(fx->store, trial, lease, &r, now, fx->err) == 0, "%s",
                  fx->err);
}

/* ---- Schema and opening ------------------------------------------------------------------ */

START_TEST(test_fresh_file_migrates_to_current_version) {
    fx_t fx;
    fx_init(&fx);
    cv_store_close(fx.store);
    fx.store = NULL;
    char mode[32];
    ck_assert_int_eq(raw_int(fx.path, "PRAGMA user_version"), CV_STORE_SCHEMA_VERSION);
    ck_assert_int_eq(raw_int(fx.path, "PRAGMA application_id"), CV_STORE_APPLICATION_ID);
    raw_text(fx.path, "PRAGMA journal_mode", mode, sizeof mode);
    ck_assert_str_eq(mode, "wal");
    ck_assert_int_eq(raw_int(fx.path, "SELECT count(*) FROM sqlite_schema WHERE type = 'table' "
                                      "AND name IN ('jobs', 'rounds', 'trials', 'curves', "
                                      "'workers')"),
                     5);
    ck_assert_int_eq(raw_int(fx.path, "SELECT count(*) FROM sqlite_schema WHERE type = 'index' "
                                      "AND name IN ('trials_by_status', 'trials_by_dev_error', "
                                      "'trials_by_dev_cost')"),
                     3);
    fx_finish(&fx);
}
END_TEST

START_TEST(test_reopen_is_idempotent) {
    fx_t fx;
    fx_init(&fx);
    int64_t job = add_job(&fx, "first", CV_STORE_OBJ_DEV_ERROR);
    cv_store_close(fx.store);
    fx.store = NULL;
    int64_t objects = raw_int(fx.path, "SELECT count(*) FROM sqlite_schema");

    for (int i = 0; i < 2; i++)
        fx_reopen(&fx);
    cv_store_close(fx.store);
    fx.store = NULL;
    ck_assert_int_eq(raw_int(fx.path, "PRAGMA user_version"), CV_STORE_SCHEMA_VERSION);
    ck_assert_int_eq(raw_int(fx.path, "SELECT count(*) FROM sqlite_schema"), objects);
    ck_assert_int_eq(raw_int(fx.path, "SELECT count(*) FROM jobs"), 1);
    ck_assert_int_eq(raw_int(fx.path, "SELECT id FROM jobs"), job);
    fx_finish(&fx);
}
END_TEST

START_TEST(test_newer_schema_version_is_refused) {
    fx_t fx;
    fx_init_closed(&fx);
    char sql[128];
    snprintf(sql, sizeof sql, "PRAGMA application_id = %d; PRAGMA user_version = %d;",
             CV_STORE_APPLICATION_ID, CV_STORE_SCHEMA_VERSION + 1);
    raw_exec(fx.path, sql);

    ck_assert_int_eq(cv_store_open(fx.path, &fx.store, fx.err), CV_EFORMAT);
    ck_assert_ptr_null(fx.store);
    ck_assert_msg(strstr(fx.err, "newer") != NULL, "%s", fx.err);
    ck_assert_int_eq(raw_int(fx.path, "PRAGMA user_version"), CV_STORE_SCHEMA_VERSION + 1);
    ck_assert_int_eq(raw_int(fx.path, "SELECT count(*) FROM sqlite_schema"), 0);
    fx_finish(&fx);
}
END_TEST

START_TEST(test_garbage_file_is_refused) {
    fx_t fx;
    fx_init_closed(&fx);
    char garbage[8192];
    for (size_t i = 0; i < sizeof garbage; i++)
        garbage[i] = (char)("not a database\n"[i % 15]);
    FILE *f = fopen(fx.path, "wb");
    ck_assert_ptr_nonnull(f);
    ck_assert_uint_eq(fwrite(garbage, 1, sizeof garbage, f), sizeof garbage);
    ck_assert_int_eq(fclose(f), 0);

    ck_assert_int_eq(cv_store_open(fx.path, &fx.store, fx.err), CV_EFORMAT);
    ck_assert_ptr_null(fx.store);
    ck_assert_msg(strstr(fx.err, "not a SQLite database") != NULL, "%s", fx.err);
    ck_assert_int_eq(cv_store_open_readonly(fx.path, &fx.store, fx.err), CV_EFORMAT);

    char back[sizeof garbage];
    f = fopen(fx.path, "rb");
    ck_assert_ptr_nonnull(f);
    ck_assert_uint_eq(fread(back, 1, sizeof back, f), sizeof back);
    ck_assert_int_eq(fgetc(f), EOF);
    fclose(f);
    ck_assert_int_eq(memcmp(back, garbage, sizeof back), 0);
    fx_finish(&fx);
}
END_TEST

START_TEST(test_database_of_another_application_is_refused) {
    fx_t fx;
    fx_init_closed(&fx);
    raw_exec(fx.path, "CREATE TABLE photos (id INTEGER PRIMARY KEY)");
    ck_assert_int_eq(cv_store_open(fx.path, &fx.store, fx.err), CV_EFORMAT);
    ck_assert_msg(strstr(fx.err, "not a caviar store") != NULL, "%s", fx.err);
    raw_exec(fx.path, "PRAGMA application_id = 7");
    ck_assert_int_eq(cv_store_open(fx.path, &fx.store, fx.err), CV_EFORMAT);
    ck_assert_msg(strstr(fx.err, "another application") != NULL, "%s", fx.err);
    ck_assert_int_eq(raw_int(fx.path, "PRAGMA user_version"), 0);
    fx_finish(&fx);
}
END_TEST

START_TEST(test_missing_directory_is_an_io_error) {
    cv_store_t *s = (cv_store_t *)&s; /* must be reset to NULL */
    char err[CV_ERRLEN] = "";
    ck_assert_int_eq(cv_store_open("/nonexistent-caviar-dir/x/store.db", &s, err), CV_EIO);
    ck_assert_ptr_null(s);
    ck_assert_msg(strstr(err, "/nonexistent-caviar-dir/x/store.db") != NULL, "%s", err);
}
END_TEST

START_TEST(test_close_accepts_null) {
    cv_store_close(NULL);
}
END_TEST

/* ---- Leases and results ------------------------------------------------------------------ */

START_TEST(test_result_under_stale_lease_is_not_applied) {
    fx_t fx;
    fx_init(&fx);
    int64_t job = add_job(&fx, "j", CV_STORE_OBJ_DEV_ERROR), id = 0;
    add_trials(&fx, job, 0, 1, &id);
    start(&fx, id, "lease-A");

    cv_store_result_t r = completed(0.1, 0.2);
    fx.err[0] = '\0';
    ck_assert_int_eq(cv_store_put_result(fx.store, id, "lease-B", &r, NOW + 2, fx.err),
                     CV_STORE_STALE);
    ck_assert_str_eq(fx.err, "");

    char q[256], text[64];
    raw_text(fx.path, sqlf(q, sizeof q, "SELECT status FROM trials WHERE id = %lld", id), text,
             sizeof text);
    ck_assert_str_eq(text, "running");
    raw_text(fx.path, sqlf(q, sizeof q, "SELECT lease_token FROM trials WHERE id = %lld", id), text,
             sizeof text);
    ck_assert_str_eq(text, "lease-A");
    ck_assert(isnan(raw_real(fx.path, sqlf(q, sizeof q,
                                           "SELECT dev_error FROM trials "
                                           "WHERE id = %lld",
                                           id))));
    ck_assert_int_eq(
        raw_int(fx.path, sqlf(q, sizeof q, "SELECT finished_at FROM trials WHERE id = %lld", id)),
        -1);
    fx_finish(&fx);
}
END_TEST

START_TEST(test_result_under_current_lease_is_applied_once) {
    fx_t fx;
    fx_init(&fx);
    int64_t job = add_job(&fx, "j", CV_STORE_OBJ_DEV_ERROR), id = 0;
    add_trials(&fx, job, 0, 1, &id);
    start(&fx, id, "lease-A");
    finish(&fx, id, "lease-A", 0.125, 0.5);

    cv_store_result_t again = completed(0.9, 0.9);
    ck_assert_int_eq(cv_store_put_result(fx.store, id, "lease-A", &again, NOW + 3, fx.err),
                     CV_STORE_STALE);

    char q[256], text[64];
    raw_text(fx.path, sqlf(q, sizeof q, "SELECT status FROM trials WHERE id = %lld", id), text,
             sizeof text);
    ck_assert_str_eq(text, "completed");
    ck_assert_double_eq(
        raw_real(fx.path, sqlf(q, sizeof q, "SELECT dev_error FROM trials WHERE id = %lld", id)),
        0.125);
    ck_assert_double_eq(
        raw_real(fx.path, sqlf(q, sizeof q, "SELECT finished_at FROM trials WHERE id = %lld", id)),
        NOW + 2);
    ck_assert_int_eq(
        raw_int(fx.path, sqlf(q, sizeof q, "SELECT best_epoch FROM trials WHERE id = %lld", id)),
        7);
    ck_assert_int_eq(
        raw_int(fx.path,
                sqlf(q, sizeof q, "SELECT lease_token IS NULL FROM trials WHERE id = %lld", id)),
        1);
    fx_finish(&fx);
}
END_TEST

START_TEST(test_result_for_unknown_trial_or_bad_status_is_invalid) {
    fx_t fx;
    fx_init(&fx);
    cv_store_result_t r = completed(0.1, 0.1);
    ck_assert_int_eq(cv_store_put_result(fx.store, 999, "x", &r, NOW, fx.err), CV_EINVAL);
    ck_assert_msg(strstr(fx.err, "no trial 999") != NULL, "%s", fx.err);
    r.status = CV_STORE_TRIAL_QUEUED;
    ck_assert_int_eq(cv_store_put_result(fx.store, 999, "x", &r, NOW, fx.err), CV_EINVAL);
    fx_finish(&fx);
}
END_TEST

START_TEST(test_requeue_voids_the_old_lease) {
    fx_t fx;
    fx_init(&fx);
    int64_t job = add_job(&fx, "j", CV_STORE_OBJ_DEV_ERROR), id = 0;
    add_trials(&fx, job, 0, 1, &id);
    start(&fx, id, "lease-A");
    ck_assert_int_eq(
        cv_store_trial_requeue(fx.store, id, "lease-B", CV_STORE_TRIAL_QUEUED, NOW, fx.err),
        CV_STORE_STALE);
    ck_assert_int_eq(
        cv_store_trial_requeue(fx.store, id, "lease-A", CV_STORE_TRIAL_QUEUED, NOW, fx.err), 0);
    cv_store_result_t r = completed(0.1, 0.1);
    ck_assert_int_eq(cv_store_put_result(fx.store, id, "lease-A", &r, NOW, fx.err), CV_STORE_STALE);
    start(&fx, id, "lease-C");
    finish(&fx, id, "lease-C", 0.25, 0.5);

    char q[256];
    ck_assert_int_eq(
        raw_int(fx.path, sqlf(q, sizeof q, "SELECT attempts FROM trials WHERE id = %lld", id)), 2);
    ck_assert_double_eq(
        raw_real(fx.path, sqlf(q, sizeof q, "SELECT dev_error FROM trials WHERE id = %lld", id)),
        0.25);
    fx_finish(&fx);
}
END_TEST

START_TEST(test_lost_trial_is_final_and_keeps_its_worker) {
    fx_t fx;
    fx_init(&fx);
    int64_t job = add_job(&fx, "j", CV_STORE_OBJ_DEV_ERROR), id = 0;
    add_trials(&fx, job, 0, 1, &id);
    start(&fx, id, "lease-A");
    ck_assert_int_eq(
        cv_store_trial_requeue(fx.store, id, NULL, CV_STORE_TRIAL_LOST, NOW + 9, fx.err), 0);
    ck_assert_int_eq(cv_store_trial_start(fx.store, id, "w2", "lease-B", NOW, fx.err),
                     CV_STORE_STALE);

    char q[256], text[64];
    raw_text(fx.path,
             sqlf(q, sizeof q,
                  "SELECT status || ' ' || worker_id FROM trials "
                  "WHERE id = %lld",
                  id),
             text, sizeof text);
    ck_assert_str_eq(text, "lost w1");
    ck_assert_double_eq(
        raw_real(fx.path, sqlf(q, sizeof q, "SELECT finished_at FROM trials WHERE id = %lld", id)),
        NOW + 9);
    fx_finish(&fx);
}
END_TEST

START_TEST(test_start_requires_a_queued_trial) {
    fx_t fx;
    fx_init(&fx);
    int64_t job = add_job(&fx, "j", CV_STORE_OBJ_DEV_ERROR), id = 0;
    add_trials(&fx, job, 0, 1, &id);
    start(&fx, id, "lease-A");
    ck_assert_int_eq(cv_store_trial_start(fx.store, id, "w2", "lease-B", NOW, fx.err),
                     CV_STORE_STALE);
    ck_assert_int_eq(cv_store_trial_start(fx.store, id + 100, "w2", "lease-B", NOW, fx.err),
                     CV_EINVAL);

    char q[256], text[64];
    raw_text(fx.path,
             sqlf(q, sizeof q,
                  "SELECT worker_id || ' ' || lease_token || ' ' || "
                  "attempts FROM trials WHERE id = %lld",
                  id),
             text, sizeof text);
    ck_assert_str_eq(text, "w1 lease-A 1");
    fx_finish(&fx);
}
END_TEST

START_TEST(test_nonfinite_metrics_are_stored_as_null) {
    fx_t fx;
    fx_init(&fx);
    int64_t job = add_job(&fx, "j", CV_STORE_OBJ_DEV_ERROR), id = 0;
    add_trials(&fx, job, 0, 1, &id);
    start(&fx, id, "L");
    cv_store_result_t r = {.status = CV_STORE_TRIAL_DIVERGED,
                           .dev_error = NAN,
                           .dev_cost = INFINITY,
                           .train_error = NAN,
                           .train_cost = -INFINITY,
                           .train_cost_reg = NAN,
                           .best_epoch = -1,
                           .epochs_run = 3,
                           .examples_per_second = 10.0,
                           .error = "cost became NaN at epoch 3"};
    ck_assert_int_eq(cv_store_put_result(fx.store, id, "L", &r, NOW, fx.err), 0);

    cJSON *t = NULL;
    ck_assert_int_eq(cv_store_trial_get(fx.store, id, 0, &t, fx.err), 0);
    ck_assert(cJSON_IsNull(cJSON_GetObjectItem(t, "dev_error")));
    ck_assert(cJSON_IsNull(cJSON_GetObjectItem(t, "dev_cost")));
    ck_assert(cJSON_IsNull(cJSON_GetObjectItem(t, "train_cost")));
    ck_assert(cJSON_IsNull(cJSON_GetObjectItem(t, "best_epoch")));
    ck_assert_int_eq(cJSON_GetObjectItem(t, "epochs_run")->valueint, 3);
    ck_assert_str_eq(cJSON_GetObjectItem(t, "status")->valuestring, "diverged");
    ck_assert_str_eq(cJSON_GetObjectItem(t, "error")->valuestring, "cost became NaN at epoch 3");
    cJSON_Delete(t);
    fx_finish(&fx);
}
END_TEST

/* ---- Trials: uniqueness, ranking, recovery ----------------------------------------------- */

START_TEST(test_duplicate_config_key_in_a_job_refuses_the_batch) {
    fx_t fx;
    fx_init(&fx);
    int64_t job = add_job(&fx, "j", CV_STORE_OBJ_DEV_ERROR);
    add_trials(&fx, job, 0, 2, NULL); /* k0, k1 */

    cv_store_new_trial_t batch[] = {
        {.number = 2, .params = "{}", .config_key = "k2", .spec = "{}"},
        {.number = 3, .params = "{}", .config_key = "k1", .spec = "{}"},
    };
    ck_assert_int_eq(cv_store_trials_add(fx.store, job, batch, 2, NOW, NULL, fx.err), CV_EINVAL);
    ck_assert_msg(strstr(fx.err, "\"k1\"") != NULL && strstr(fx.err, "UNIQUE") != NULL, "%s",
                  fx.err);
    ck_assert_int_eq(raw_int(fx.path, "SELECT count(*) FROM trials"), 2);
    ck_assert_int_eq(raw_int(fx.path, "SELECT count(*) FROM trials WHERE config_key = 'k2'"), 0);
    fx_finish(&fx);
}
END_TEST

START_TEST(test_same_config_key_is_allowed_in_another_job) {
    fx_t fx;
    fx_init(&fx);
    int64_t a = add_job(&fx, "a", CV_STORE_OBJ_DEV_ERROR);
    int64_t b = add_job(&fx, "b", CV_STORE_OBJ_DEV_ERROR);
    add_trials(&fx, a, 0, 3, NULL);
    add_trials(&fx, b, 0, 3, NULL);
    ck_assert_int_eq(raw_int(fx.path, "SELECT count(*) FROM trials WHERE config_key = 'k1'"), 2);
    fx_finish(&fx);
}
END_TEST

START_TEST(test_trials_for_an_unknown_job_are_refused) {
    fx_t fx;
    fx_init(&fx);
    cv_store_new_trial_t t = {.number = 0, .params = "{}", .config_key = "k", .spec = "{}"};
    ck_assert_int_eq(cv_store_trials_add(fx.store, 42, &t, 1, NOW, NULL, fx.err), CV_EINVAL);
    ck_assert_msg(strstr(fx.err, "FOREIGN KEY") != NULL, "%s", fx.err);
    fx_finish(&fx);
}
END_TEST

START_TEST(test_invalid_json_is_refused) {
    fx_t fx;
    fx_init(&fx);
    int64_t id = 0;
    ck_assert_int_eq(cv_store_job_create(fx.store, "j", CV_STORE_OBJ_DEV_ERROR, "{\"a\":", &k_plan,
                                         NULL, NOW, &id, fx.err),
                     CV_EINVAL);
    int64_t job = add_job(&fx, "j", CV_STORE_OBJ_DEV_ERROR);
    cv_store_new_trial_t t = {.number = 0, .params = "[1,", .config_key = "k", .spec = "{}"};
    ck_assert_int_eq(cv_store_trials_add(fx.store, job, &t, 1, NOW, NULL, fx.err), CV_EINVAL);
    ck_assert_int_eq(cv_store_job_set_test_result(fx.store, job, "nope", fx.err), CV_EINVAL);
    ck_assert_int_eq(raw_int(fx.path, "SELECT count(*) FROM trials"), 0);
    fx_finish(&fx);
}
END_TEST

/* Completes trials numbered 0..5 with dev errors in a fixed order, plus a failed trial with the
 * lowest dev error of all and one still running: neither may rank. */
static int64_t ranked_job(fx_t *fx, cv_store_objective_t objective) {
    static const double dev_error[] = {0.30, 0.12, 0.45, 0.07, 0.12, 0.25};
    static const double dev_cost[] = {0.9, 0.2, 0.1, 0.8, 0.3, 0.4};
    int64_t job = add_job(fx, "ranked", objective), ids[8];
    add_trials(fx, job, 0, 8, ids);
    for (int i = 0; i < 8; i++)
        start(fx, ids[i], "L");
    for (int i = 0; i < 6; i++)
        finish(fx, ids[i], "L", dev_error[i], dev_cost[i]);
    cv_store_result_t failed = completed(0.01, 0.01);
    failed.status = CV_STORE_TRIAL_FAILED;
    ck_assert_int_eq(cv_store_put_result(fx->store, ids[6], "L", &failed, NOW, fx->err), 0);
    return job;
}

static int number_at(cJSON *arr, int i) {
    return cJSON_GetObjectItem(cJSON_GetArrayItem(arr, i), "number")->valueint;
}

START_TEST(test_top_k_returns_the_true_minimum_first) {
    fx_t fx;
    fx_init(&fx);
    int64_t job = ranked_job(&fx, CV_STORE_OBJ_DEV_ERROR);
    cJSON *top = NULL;
    ck_assert_int_eq(cv_store_trials_top(fx.store, job, CV_STORE_OBJ_JOB, 3, &top, fx.err), 0);
    ck_assert_int_eq(cJSON_GetArraySize(top), 3);
    ck_assert_int_eq(number_at(top, 0), 3); /* 0.07 */
    ck_assert_int_eq(number_at(top, 1), 1); /* 0.12, lower number first */
    ck_assert_int_eq(number_at(top, 2), 4); /* 0.12 */
    ck_assert_double_eq(cJSON_GetObjectItem(cJSON_GetArrayItem(top, 0), "dev_error")->valuedouble,
                        0.07);
    cJSON_Delete(top);

    ck_assert_int_eq(cv_store_trials_top(fx.store, job, CV_STORE_OBJ_JOB, 100, &top, fx.err), 0);
    ck_assert_int_eq(cJSON_GetArraySize(top), 6); /* failed and running trials never rank */
    ck_assert_int_eq(number_at(top, 5), 2);       /* 0.45 */
    cJSON_Delete(top);
    fx_finish(&fx);
}
END_TEST

START_TEST(test_top_k_follows_the_objective) {
    fx_t fx;
    fx_init(&fx);
    int64_t job = ranked_job(&fx, CV_STORE_OBJ_DEV_COST);
    cJSON *top = NULL;
    ck_assert_int_eq(cv_store_trials_top(fx.store, job, CV_STORE_OBJ_JOB, 2, &top, fx.err), 0);
    ck_assert_int_eq(number_at(top, 0), 2); /* dev_cost 0.1 */
    ck_assert_int_eq(number_at(top, 1), 1); /* 0.2 */
    cJSON_Delete(top);
    ck_assert_int_eq(cv_store_trials_top(fx.store, job, CV_STORE_OBJ_DEV_ERROR, 1, &top, fx.err),
                     0);
    ck_assert_int_eq(number_at(top, 0), 3);
    cJSON_Delete(top);
    fx_finish(&fx);
}
END_TEST

/* Six trials of which five tie on dev error 0, as on a small dev set: one with a 20 times
 * higher dev cost, and four with the same low dev cost but networks of 5000, 300, unknown and
 * again 300 weights. The sixth has the lowest dev cost but a higher dev error. */
static int64_t tied_job(fx_t *fx, cv_store_objective_t objective) {
    static const double dev_error[] = {0.0, 0.0, 0.0, 0.0, 0.0, 0.05};
    static const double dev_cost[] = {0.40, 0.02, 0.02, 0.02, 0.02, 0.01};
    static const int64_t n_params[] = {1000, 5000, 300, 0, 300, 10};
    int64_t job = add_job(fx, "tied", objective), ids[6];
    add_trials(fx, job, 0, 6, ids);
    for (int i = 0; i < 6; i++) {
        start(fx, ids[i], "L");
        cv_store_result_t r = completed(dev_error[i], dev_cost[i]);
        r.n_params = n_params[i];
        ck_assert_msg(cv_store_put_result(fx->store, ids[i], "L", &r, NOW + 2, fx->err) == 0, "%s",
                      fx->err);
    }
    return job;
}

static void assert_order(cJSON *arr, const int *want, int n) {
    ck_assert_int_eq(cJSON_GetArraySize(arr), n);
    for (int i = 0; i < n; i++)
        ck_assert_msg(number_at(arr, i) == want[i], "place %d: trial %d, want %d", i,
                      number_at(arr, i), want[i]);
}

START_TEST(test_ties_go_to_the_lower_dev_cost_then_the_smaller_network) {
    fx_t fx;
    fx_init(&fx);
    int64_t job = tied_job(&fx, CV_STORE_OBJ_DEV_ERROR);
    cJSON *top = NULL;
    /* Dev error 0 first; among those dev cost 0.02 before 0.40; among those 300 weights (trials
     * 2 and 4, by number), 5000, then the unknown size; trial 5 (dev error 0.05) last. */
    static const int by_error[] = {2, 4, 1, 3, 0, 5};
    ck_assert_int_eq(cv_store_trials_top(fx.store, job, CV_STORE_OBJ_JOB, 10, &top, fx.err), 0);
    assert_order(top, by_error, 6);
    ck_assert_int_eq(cJSON_GetObjectItem(cJSON_GetArrayItem(top, 0), "n_params")->valueint, 300);
    ck_assert(cJSON_IsNull(cJSON_GetObjectItem(cJSON_GetArrayItem(top, 3), "n_params")));
    cJSON_Delete(top);
    /* By dev cost: trial 5 (0.01) first, then the 0.02 ties by dev error (all 0) and size. */
    static const int by_cost[] = {5, 2, 4, 1, 3, 0};
    ck_assert_int_eq(cv_store_trials_top(fx.store, job, CV_STORE_OBJ_DEV_COST, 10, &top, fx.err),
                     0);
    assert_order(top, by_cost, 6);
    cJSON_Delete(top);
    /* The job's "best" is the first of the same order. */
    cJSON *j = NULL;
    ck_assert_int_eq(cv_store_job_get(fx.store, job, &j, fx.err), 0);
    ck_assert_int_eq(cJSON_GetObjectItem(cJSON_GetObjectItem(j, "best"), "number")->valueint, 2);
    cJSON_Delete(j);
    fx_finish(&fx);
}
END_TEST

/* Pages of two, each resuming after the key of the previous page's last row, visit the ranking
 * in order: ties (0.12 for numbers 1 and 4) split across a page boundary are not lost. */
START_TEST(test_ranked_pages_resume_after_the_last_key) {
    fx_t fx;
    fx_init(&fx);
    int64_t job = ranked_job(&fx, CV_STORE_OBJ_DEV_ERROR);
    static const int order[] = {3, 1, 4, 5, 0, 2};
    cv_store_objective_t objective = CV_STORE_OBJ_JOB;
    cv_store_rank_key_t key;
    int seen = 0;
    for (int page = 0; page < 4; page++) {
        cJSON *arr = NULL;
        ck_assert_int_eq(
            cv_store_trials_ranked(fx.store, job, page ? &key : NULL, 2, &objective, &arr, fx.err),
            0);
        ck_assert_int_eq(objective, CV_STORE_OBJ_DEV_ERROR);
        int n = cJSON_GetArraySize(arr);
        ck_assert_int_eq(n, page < 3 ? 2 : 0);
        for (int i = 0; i < n; i++)
            ck_assert_int_eq(number_at(arr, i), order[seen++]);
        if (n) {
            cJSON *last = cJSON_GetArrayItem(arr, n - 1);
            key.value = cJSON_GetObjectItem(last, "dev_error")->valuedouble;
            key.second = cJSON_GetObjectItem(last, "dev_cost")->valuedouble;
            key.n_params = INT64_MAX; /* these results name no size */
            key.number = cJSON_GetObjectItem(last, "number")->valueint;
        }
        cJSON_Delete(arr);
    }
    ck_assert_int_eq(seen, 6);
    cJSON *arr = NULL;
    ck_assert_int_eq(cv_store_trials_ranked(fx.store, 99, NULL, 2, NULL, &arr, fx.err),
                     CV_STORE_NOT_FOUND);
    fx_finish(&fx);
}
END_TEST

/* A version-2 file (before n_params) keeps its results, which rank with an unknown size. */
START_TEST(test_version_2_file_gains_n_params_and_keeps_its_results) {
    fx_t fx;
    fx_init(&fx);
    int64_t job = add_job(&fx, "old", CV_STORE_OBJ_DEV_ERROR), t[2];
    add_trials(&fx, job, 0, 2, t);
    start(&fx, t[0], "L");
    finish(&fx, t[0], "L", 0.1, 0.5);
    fx_migrate_from(&fx, UNDO_MIGRATION_9 UNDO_MIGRATION_8 UNDO_MIGRATION_7 UNDO_MIGRATION_4
                             UNDO_MIGRATION_3 "PRAGMA user_version = 2;");
    start(&fx, t[1], "M");
    cv_store_result_t r = completed(0.1, 0.5);
    r.n_params = 42;
    ck_assert_int_eq(cv_store_put_result(fx.store, t[1], "M", &r, NOW + 2, fx.err), 0);
    cJSON *top = NULL;
    ck_assert_int_eq(cv_store_trials_top(fx.store, job, CV_STORE_OBJ_JOB, 10, &top, fx.err), 0);
    static const int want[] = {1, 0}; /* the same metrics: the known size wins */
    assert_order(top, want, 2);
    cJSON_Delete(top);
    fx_finish(&fx);
}
END_TEST

/* The number field name of a list row, or -1 when it is null. */
static double row_number(const cJSON *row, const char *name) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(row, name);
    ck_assert_msg(v != NULL, "no field %s", name);
    return cJSON_IsNull(v) ? -1 : cJSON_GetNumberValue(v);
}

START_TEST(test_jobs_list_carries_progress_best_and_strategy) {
    fx_t fx;
    fx_init(&fx);
    int64_t a = 0, b = 0, ids[4];
    const cv_store_job_plan_t plan_a = {"tpe", "median", 2}, plan_b = {"tpe", "asha", 4};
    ck_assert_int_eq(cv_store_job_create(fx.store, "a", CV_STORE_OBJ_DEV_COST,
                                         "{\"budget\":{\"max_trials\":5},\"search\":{\"sampler\":"
                                         "\"tpe\",\"pruner\":\"median\"},\"refine\":{\"rounds\":"
                                         "[2,3]}}",
                                         &plan_a, "{}", NOW, &a, fx.err),
                     0);
    /* The plan is what the caller resolved; the store does not read it from the spec. */
    ck_assert_int_eq(cv_store_job_create(fx.store, "b", CV_STORE_OBJ_DEV_ERROR,
                                         "{\"budget\":{\"max_trials\":2}}", &plan_b, "{}", NOW, &b,
                                         fx.err),
                     0);
    const cv_store_job_plan_t no_rounds = {"random", "none", 0};
    int64_t c = 0;
    ck_assert_int_eq(cv_store_job_create(fx.store, "c", CV_STORE_OBJ_DEV_ERROR, "{}", NULL, "{}",
                                         NOW, &c, fx.err),
                     CV_EINVAL);
    ck_assert_int_eq(cv_store_job_create(fx.store, "c", CV_STORE_OBJ_DEV_ERROR, "{}", &no_rounds,
                                         "{}", NOW, &c, fx.err),
                     CV_EINVAL);
    ck_assert_str_eq(fx.err, "store: create job: the plan needs a sampler, a pruner and at least "
                             "1 round");
    add_trials(&fx, a, 0, 4, ids);
    start(&fx, ids[0], "L0");
    start(&fx, ids[1], "L1");
    start(&fx, ids[2], "L2");
    finish(&fx, ids[0], "L0", 0.2, 0.9);
    finish(&fx, ids[1], "L1", 0.3, 0.4); /* the best by dev_cost, not by dev_error */
    cJSON *arr = NULL;
    ck_assert_int_eq(cv_store_jobs_list(fx.store, 0, 0, &arr, fx.err), 0);
    ck_assert_int_eq(cJSON_GetArraySize(arr), 2);
    const cJSON *ra = cJSON_GetArrayItem(arr, 0), *rb = cJSON_GetArrayItem(arr, 1);
    ck_assert_double_eq(row_number(ra, "max_trials"), 5);
    ck_assert_double_eq(row_number(ra, "finished"), 2);
    ck_assert_double_eq(row_number(ra, "running"), 1);
    ck_assert_double_eq(row_number(ra, "best_value"), 0.4);
    ck_assert_str_eq(cJSON_GetObjectItem(ra, "sampler")->valuestring, "tpe");
    ck_assert_str_eq(cJSON_GetObjectItem(ra, "pruner")->valuestring, "median");
    ck_assert_double_eq(row_number(ra, "rounds_planned"), 2);
    /* No trials: no best; the plan it was stored with. */
    ck_assert_double_eq(row_number(rb, "finished"), 0);
    ck_assert_double_eq(row_number(rb, "running"), 0);
    ck_assert_double_eq(row_number(rb, "best_value"), -1);
    ck_assert_str_eq(cJSON_GetObjectItem(rb, "sampler")->valuestring, "tpe");
    ck_assert_str_eq(cJSON_GetObjectItem(rb, "pruner")->valuestring, "asha");
    ck_assert_double_eq(row_number(rb, "rounds_planned"), 4);
    cJSON_Delete(arr);
    fx_finish(&fx);
}
END_TEST

START_TEST(test_jobs_and_workers_pages_start_after_a_key) {
    fx_t fx;
    fx_init(&fx);
    int64_t a = add_job(&fx, "a", CV_STORE_OBJ_DEV_ERROR);
    int64_t b = add_job(&fx, "b", CV_STORE_OBJ_DEV_ERROR);
    int64_t c = add_job(&fx, "c", CV_STORE_OBJ_DEV_ERROR);
    cJSON *arr = NULL;
    ck_assert_int_eq(cv_store_jobs_list(fx.store, a, 1, &arr, fx.err), 0);
    ck_assert_int_eq(cJSON_GetArraySize(arr), 1);
    ck_assert_int_eq(cJSON_GetObjectItem(cJSON_GetArrayItem(arr, 0), "id")->valueint, b);
    cJSON_Delete(arr);
    ck_assert_int_eq(cv_store_jobs_list(fx.store, c, 10, &arr, fx.err), 0);
    ck_assert_int_eq(cJSON_GetArraySize(arr), 0);
    cJSON_Delete(arr);
    static const char *const ids[] = {"w-c", "w-a", "w-b"};
    for (int i = 0; i < 3; i++)
        ck_assert_int_eq(cv_store_worker_seen(fx.store, ids[i], "1", 1, "h", NOW, fx.err), 0);
    ck_assert_int_eq(cv_store_workers_list(fx.store, "w-a", 5, &arr, fx.err), 0);
    ck_assert_int_eq(cJSON_GetArraySize(arr), 2);
    ck_assert_str_eq(cJSON_GetObjectItem(cJSON_GetArrayItem(arr, 0), "id")->valuestring, "w-b");
    ck_assert_str_eq(cJSON_GetObjectItem(cJSON_GetArrayItem(arr, 1), "id")->valuestring, "w-c");
    cJSON_Delete(arr);
    fx_finish(&fx);
}
END_TEST

START_TEST(test_recover_requeues_exactly_the_running_trials) {
    fx_t fx;
    fx_init(&fx);
    int64_t a = add_job(&fx, "a", CV_STORE_OBJ_DEV_ERROR), ta[5];
    int64_t b = add_job(&fx, "b", CV_STORE_OBJ_DEV_ERROR), tb[2];
    add_trials(&fx, a, 0, 5, ta);
    add_trials(&fx, b, 0, 2, tb);
    for (int i = 0; i < 5; i++)
        start(&fx, ta[i], "L");
    start(&fx, tb[0], "L");
    finish(&fx, ta[2], "L", 0.2, 0.2);
    cv_store_result_t failed = completed(0.3, 0.3);
    failed.status = CV_STORE_TRIAL_FAILED;
    ck_assert_int_eq(cv_store_put_result(fx.store, ta[4], "L", &failed, NOW, fx.err), 0);
    ck_assert_int_eq(
        cv_store_trial_requeue(fx.store, ta[3], "L", CV_STORE_TRIAL_QUEUED, NOW, fx.err), 0);
    /* now running: ta[0], ta[1], tb[0]; queued: ta[3], tb[1]; final: ta[2], ta[4] */
    fx_reopen(&fx); /* the coordinator restarts */

    int64_t n = -1;
    ck_assert_int_eq(cv_store_recover(fx.store, &n, fx.err), 0);
    ck_assert_int_eq(n, 3);
    ck_assert_int_eq(raw_int(fx.path, "SELECT count(*) FROM trials WHERE status = 'running'"), 0);
    ck_assert_int_eq(raw_int(fx.path, "SELECT count(*) FROM trials WHERE status = 'queued'"), 5);
    ck_assert_int_eq(raw_int(fx.path, "SELECT count(*) FROM trials WHERE status = 'queued' "
                                      "AND lease_token IS NULL AND worker_id IS NULL"),
                     5);
    ck_assert_int_eq(raw_int(fx.path, "SELECT count(*) FROM trials WHERE status = 'completed' "
                                      "AND dev_error = 0.2"),
                     1);
    ck_assert_int_eq(raw_int(fx.path, "SELECT count(*) FROM trials WHERE status = 'failed'"), 1);
    char q[256];
    ck_assert_int_eq(
        raw_int(fx.path, sqlf(q, sizeof q, "SELECT attempts FROM trials WHERE id = %lld", ta[0])),
        1);
    ck_assert_int_eq(cv_store_recover(fx.store, &n, fx.err), 0);
    ck_assert_int_eq(n, 0);
    fx_finish(&fx);
}
END_TEST

START_TEST(test_cancel_job_cancels_only_unfinished_trials) {
    fx_t fx;
    fx_init(&fx);
    int64_t job = add_job(&fx, "j", CV_STORE_OBJ_DEV_ERROR), t[4];
    add_trials(&fx, job, 0, 4, t);
    start(&fx, t[1], "L");
    start(&fx, t[2], "L");
    finish(&fx, t[2], "L", 0.1, 0.1);
    /* queued: t0, t3; running: t1; completed: t2 */
    int64_t n = -1;
    ck_assert_int_eq(cv_store_job_cancel(fx.store, job, NOW + 5, &n, fx.err), 0);
    ck_assert_int_eq(n, 3);
    ck_assert_int_eq(raw_int(fx.path, "SELECT count(*) FROM trials WHERE status = 'cancelled' "
                                      "AND finished_at IS NOT NULL AND lease_token IS NULL"),
                     3);
    ck_assert_int_eq(raw_int(fx.path, "SELECT count(*) FROM trials WHERE status = 'completed'"), 1);
    char status[32];
    raw_text(fx.path, "SELECT status FROM jobs", status, sizeof status);
    ck_assert_str_eq(status, "cancelled");
    ck_assert_double_eq(raw_real(fx.path, "SELECT finished_at FROM jobs"), NOW + 5);

    cv_store_result_t late = completed(0.05, 0.05);
    ck_assert_int_eq(cv_store_put_result(fx.store, t[1], "L", &late, NOW, fx.err), CV_STORE_STALE);
    ck_assert_int_eq(cv_store_job_cancel(fx.store, job, NOW, NULL, fx.err), CV_STORE_STALE);
    ck_assert_int_eq(cv_store_job_cancel(fx.store, job + 1, NOW, NULL, fx.err), CV_EINVAL);
    fx_finish(&fx);
}
END_TEST

/* Gives job a round, four trials (one completed with a curve and an attempt, one failed, one
 * lost to a requeue, one queued); their ids go into t. */
static void populate_job(fx_t *fx, int64_t job, int64_t *t) {
    ck_assert_msg(cv_store_round_add(fx->store, job, 0, 4, "{}", NOW, fx->err) == 0, "%s",
                  fx->err);
    add_trials(fx, job, 0, 4, t);
    start(fx, t[0], "A");
    cv_epoch_t pts[2] = {{.epoch = 1, .dev_error = 0.3}, {.epoch = 2, .dev_error = 0.2}};
    ck_assert_msg(cv_store_curve_add(fx->store, t[0], "A", pts, 2, fx->err) == 0, "%s", fx->err);
    finish(fx, t[0], "A", 0.2, 0.4);
    start(fx, t[1], "B");
    put(fx, t[1], "B", CV_STORE_TRIAL_FAILED, "bad", NOW + 2);
    start(fx, t[2], "C");
    ck_assert_msg(cv_store_trial_requeue(fx->store, t[2], "C", CV_STORE_TRIAL_QUEUED, NOW + 3,
                                         fx->err) == 0, "%s", fx->err);
}

/* Rows anywhere in the store that belong to job: the job, its rounds, trials, curves and
 * attempts. */
static int64_t rows_of_job(fx_t *fx, int64_t job) {
    char sql[512];
    long long j = (long long)job;
    snprintf(sql, sizeof sql,
             "SELECT (SELECT count(*) FROM jobs WHERE id = %lld)"
             " + (SELECT count(*) FROM rounds WHERE job_id = %lld)"
             " + (SELECT count(*) FROM trials WHERE job_id = %lld)"
             " + (SELECT count(*) FROM curves WHERE trial_id IN"
             "    (SELECT id FROM trials WHERE job_id = %lld))"
             " + (SELECT count(*) FROM trial_attempts WHERE trial_id IN"
             "    (SELECT id FROM trials WHERE job_id = %lld))",
             j, j, j, j, j);
    return raw_int(fx->path, sql);
}

START_TEST(test_delete_job_removes_every_row_of_it_and_nothing_else) {
    fx_t fx;
    fx_init(&fx);
    int64_t a = add_job(&fx, "a", CV_STORE_OBJ_DEV_ERROR), b = add_job(&fx, "b",
                                                                         CV_STORE_OBJ_DEV_ERROR);
    int64_t ta[4], tb[4];
    populate_job(&fx, a, ta);
    populate_job(&fx, b, tb);
    /* 1 job + 1 round + 4 trials + 2 curve points + 3 attempts (completed, failed, lost) */
    ck_assert_int_eq(rows_of_job(&fx, a), 11);
    ck_assert_int_eq(rows_of_job(&fx, b), 11);

    /* A running job is refused and keeps everything; an unknown one is not found. */
    int64_t n = -1;
    ck_assert_int_eq(cv_store_job_delete(fx.store, a, &n, fx.err), CV_STORE_STALE);
    ck_assert_int_eq(rows_of_job(&fx, a), 11);
    ck_assert_int_eq(n, -1);
    ck_assert_int_eq(cv_store_job_delete(fx.store, b + 1, &n, fx.err), CV_STORE_NOT_FOUND);

    ck_assert_msg(cv_store_job_set_status(fx.store, a, CV_STORE_JOB_COMPLETED, NULL, NOW + 9,
                                          fx.err) == 0, "%s", fx.err);
    ck_assert_msg(cv_store_job_delete(fx.store, a, &n, fx.err) == 0, "%s", fx.err);
    ck_assert_int_eq(n, 4);
    ck_assert_int_eq(rows_of_job(&fx, a), 0);
    ck_assert_int_eq(rows_of_job(&fx, b), 11);
    cJSON *j = NULL;
    ck_assert_int_eq(cv_store_job_get(fx.store, a, &j, fx.err), CV_STORE_NOT_FOUND);
    ck_assert_int_eq(cv_store_job_delete(fx.store, a, NULL, fx.err), CV_STORE_NOT_FOUND);

    /* Within a group the deletion is undone with the group. */
    ck_assert_msg(cv_store_job_set_status(fx.store, b, CV_STORE_JOB_FAILED, "x", NOW + 9,
                                          fx.err) == 0, "%s", fx.err);
    ck_assert_int_eq(cv_store_begin(fx.store, fx.err), 0);
    ck_assert_int_eq(cv_store_job_delete(fx.store, b, NULL, fx.err), 0);
    cv_store_rollback(fx.store, NULL);
    ck_assert_int_eq(rows_of_job(&fx, b), 11);
    fx_finish(&fx);
}
END_TEST

/* Copies the visited job's status and spec. */
typedef struct {
    int calls;
    cv_store_job_status_t status;
    char spec[256];
} visited_t;

static int on_visited_job(void *ctx, const cv_store_job_row_t *row) {
    visited_t *v = ctx;
    v->calls++;
    v->status = row->status;
    snprintf(v->spec, sizeof v->spec, "%s", row->spec);
    return 0;
}

START_TEST(test_one_job_is_visited_whatever_its_status_and_its_spec_replaced) {
    fx_t fx;
    fx_init(&fx);
    int64_t a = add_job(&fx, "a", CV_STORE_OBJ_DEV_ERROR), b = add_job(&fx, "b",
                                                                         CV_STORE_OBJ_DEV_COST);
    ck_assert_int_eq(cv_store_job_set_status(fx.store, b, CV_STORE_JOB_COMPLETED, NULL, NOW,
                                             fx.err), 0);
    const cv_store_job_plan_t grown = {"tpe", "median", 4};
    ck_assert_int_eq(cv_store_job_set_spec(fx.store, b, "{\"trials\":12}", &grown, fx.err), 0);
    visited_t v = {0};
    ck_assert_msg(cv_store_job_visit(fx.store, b, on_visited_job, &v, fx.err) == 0, "%s", fx.err);
    ck_assert_int_eq(v.calls, 1);
    ck_assert_int_eq(v.status, CV_STORE_JOB_COMPLETED);
    ck_assert_str_eq(v.spec, "{\"trials\":12}");
    char plan[64];
    raw_text(fx.path, "SELECT sampler || ' ' || pruner || ' ' || rounds_planned FROM jobs "
             "WHERE name = 'b'", plan, sizeof plan);
    ck_assert_str_eq(plan, "tpe median 4"); /* the plan goes with the spec */
    ck_assert_int_eq(cv_store_job_visit(fx.store, b + 1, on_visited_job, &v, fx.err),
                     CV_STORE_NOT_FOUND);
    ck_assert_int_eq(v.calls, 1);
    char spec[64];
    raw_text(fx.path, "SELECT spec FROM jobs WHERE name = 'a'", spec, sizeof spec);
    ck_assert_str_eq(spec, "{\"trials\":10}"); /* the other job keeps its spec */
    ck_assert_int_ne(cv_store_job_set_spec(fx.store, a, "{not json", &grown, fx.err), 0);
    raw_text(fx.path, "SELECT spec || ' ' || rounds_planned FROM jobs WHERE name = 'a'", spec,
             sizeof spec);
    ck_assert_str_eq(spec, "{\"trials\":10} 3");
    ck_assert_int_eq(cv_store_job_set_spec(fx.store, a, "{}", NULL, fx.err), CV_EINVAL);
    ck_assert_int_eq(cv_store_job_set_spec(fx.store, b + 1, "{}", &grown, fx.err), CV_EINVAL);
    fx_finish(&fx);
}
END_TEST

/* ---- Attempt history (schema version 2) -------------------------------------------------- */

START_TEST(test_fresh_file_has_the_current_schema_with_the_attempts_table) {
    fx_t fx;
    fx_init(&fx);
    cv_store_close(fx.store);
    fx.store = NULL;
    ck_assert_int_eq(raw_int(fx.path, "PRAGMA user_version"), CV_STORE_SCHEMA_VERSION);
    ck_assert_int_eq(raw_int(fx.path, "SELECT count(*) FROM sqlite_schema WHERE type = 'table' "
                                      "AND name = 'trial_attempts'"),
                     1);
    ck_assert_int_eq(raw_int(fx.path, "SELECT count(*) FROM sqlite_schema WHERE type = 'index' "
                                      "AND name = 'trial_attempts_by_worker'"),
                     1);
    ck_assert_int_eq(raw_int(fx.path, "SELECT count(*) FROM trial_attempts"), 0);
    fx_finish(&fx);
}
END_TEST

/* A version-1 file is made the way one existed in the field: the version-1 code wrote only the
 * schema of migration 1, so the test writes rows, then removes what migration 2 added and sets
 * user_version back to 1. */
START_TEST(test_version_1_file_migrates_and_keeps_its_rows) {
    fx_t fx;
    fx_init(&fx);
    int64_t job = add_job(&fx, "old", CV_STORE_OBJ_DEV_COST), t[2];
    add_trials(&fx, job, 0, 2, t);
    start(&fx, t[0], "L");
    finish(&fx, t[0], "L", 0.25, 0.5);
    ck_assert_int_eq(cv_store_worker_seen(fx.store, "w1", "0.1.0", 4, "host", NOW, fx.err), 0);
    cv_store_close(fx.store);
    fx.store = NULL;
    raw_exec(fx.path,
             UNDO_MIGRATION_9 UNDO_MIGRATION_8 UNDO_MIGRATION_7 UNDO_MIGRATION_4 UNDO_MIGRATION_3
             "DROP INDEX trial_attempts_by_worker; "
             "DROP TABLE trial_attempts; PRAGMA user_version = 1;");
    ck_assert_int_eq(raw_int(fx.path, "SELECT count(*) FROM sqlite_schema "
                                      "WHERE name LIKE 'trial_attempts%'"),
                     0);

    ck_assert_msg(cv_store_open(fx.path, &fx.store, fx.err) == 0, "%s", fx.err);
    cv_store_close(fx.store);
    fx.store = NULL;
    ck_assert_int_eq(raw_int(fx.path, "PRAGMA user_version"), CV_STORE_SCHEMA_VERSION);
    ck_assert_int_eq(raw_int(fx.path, "SELECT count(*) FROM trial_attempts"), 0);
    ck_assert_int_eq(raw_int(fx.path, "SELECT count(*) FROM jobs"), 1);
    ck_assert_int_eq(raw_int(fx.path, "SELECT count(*) FROM workers WHERE id = 'w1' "
                                      "AND threads = 4"),
                     1);
    char q[256], text[64];
    raw_text(fx.path,
             sqlf(q, sizeof q, "SELECT status || ' ' || attempts FROM trials WHERE id = %lld",
                  t[0]),
             text, sizeof text);
    ck_assert_str_eq(text, "completed 1");
    ck_assert_double_eq(
        raw_real(fx.path, sqlf(q, sizeof q, "SELECT dev_cost FROM trials WHERE id = %lld", t[0])),
        0.5);
    raw_text(fx.path, sqlf(q, sizeof q, "SELECT status FROM trials WHERE id = %lld", t[1]), text,
             sizeof text);
    ck_assert_str_eq(text, "queued");
    fx_finish(&fx);
}
END_TEST

/* A version-2 file: the attempts table as migration 2 created it (its CHECK has no
 * 'interrupted'), holding a lease lost to a worker and one lost to a restart, as version 2
 * recorded them. */
START_TEST(test_version_2_file_migrates_and_restart_losses_become_interrupted) {
    fx_t fx;
    fx_init(&fx);
    int64_t job = add_job(&fx, "old", CV_STORE_OBJ_DEV_ERROR), t[2];
    add_trials(&fx, job, 0, 2, t);
    cv_store_close(fx.store);
    fx.store = NULL;
    char sql[4096];
    snprintf(sql, sizeof sql,
             UNDO_MIGRATION_9 UNDO_MIGRATION_8 UNDO_MIGRATION_7 UNDO_MIGRATION_4 UNDO_MIGRATION_3
             "DROP INDEX trial_attempts_by_worker; DROP TABLE trial_attempts;"
             "CREATE TABLE trial_attempts ("
             "  trial_id   INTEGER NOT NULL REFERENCES trials (id),"
             "  attempt    INTEGER NOT NULL CHECK (attempt >= 1),"
             "  worker_id  TEXT,"
             "  lease      TEXT,"
             "  started_at REAL,"
             "  ended_at   REAL NOT NULL,"
             "  outcome    TEXT NOT NULL CHECK (outcome IN ('completed', 'failed', 'diverged', "
             "             'lost', 'stale', 'cancelled')),"
             "  error      TEXT,"
             "  PRIMARY KEY (trial_id, attempt)"
             ") WITHOUT ROWID;"
             "CREATE INDEX trial_attempts_by_worker ON trial_attempts (worker_id);"
             "INSERT INTO trial_attempts VALUES (%lld, 1, 'w1', 'L1', 1.0, 2.0, 'lost', NULL);"
             "INSERT INTO trial_attempts VALUES (%lld, 2, 'w1', 'L2', 3.0, 4.0, 'lost', "
             "  'the coordinator restarted');"
             "INSERT INTO trial_attempts VALUES (%lld, 1, 'w2', 'L3', 5.0, 6.0, 'stale', "
             "  'the coordinator restarted');"
             "UPDATE trials SET attempts = 2 WHERE id = %lld;"
             "UPDATE trials SET attempts = 1 WHERE id = %lld;"
             "PRAGMA user_version = 2;",
             (long long)t[0], (long long)t[0], (long long)t[1], (long long)t[0], (long long)t[1]);
    raw_exec(fx.path, sql);

    ck_assert_msg(cv_store_open(fx.path, &fx.store, fx.err) == 0, "%s", fx.err);
    ck_assert_int_eq(raw_int(fx.path, "PRAGMA user_version"), CV_STORE_SCHEMA_VERSION);
    attempt_row_t r[3];
    ck_assert_int_eq(attempt_rows(fx.path, t[0], r, 3), 2);
    ck_assert_str_eq(r[0].outcome, "lost");
    ck_assert_str_eq(r[0].lease, "L1");
    ck_assert_str_eq(r[1].outcome, "interrupted");
    ck_assert_str_eq(r[1].error, "the coordinator restarted");
    ck_assert_double_eq(r[1].started, 3.0);
    ck_assert_double_eq(r[1].ended, 4.0);
    ck_assert_int_eq(attempt_rows(fx.path, t[1], r, 3), 1);
    ck_assert_str_eq(r[0].outcome, "stale"); /* refused claims stay what they were */
    ck_assert_int_eq(raw_int(fx.path, "SELECT count(*) FROM sqlite_schema WHERE type = 'index' "
                                      "AND name = 'trial_attempts_by_worker'"),
                     1);
    /* Only the lost lease counts toward "lost N leases". */
    start(&fx, t[0], "L4");
    ck_assert_int_eq(
        cv_store_trial_requeue(fx.store, t[0], "L4", CV_STORE_TRIAL_FAILED, NOW + 9, fx.err), 0);
    char q[256], text[64];
    raw_text(fx.path, sqlf(q, sizeof q, "SELECT error FROM trials WHERE id = %lld", t[0]), text,
             sizeof text);
    ck_assert_str_eq(text, "lost 2 leases");
    fx_finish(&fx);
}
END_TEST

/* A pruned result is stored like a completed one (metrics, model, attempt outcome), counts
 * under its own status, and does not rank: a better pruned trial is not the job's best. */
START_TEST(test_pruned_result_is_stored_like_a_completed_one_but_does_not_rank) {
    fx_t fx;
    fx_init(&fx);
    int64_t job = add_job(&fx, "j", CV_STORE_OBJ_DEV_ERROR), t[3];
    add_trials(&fx, job, 0, 3, t);
    start(&fx, t[0], "lease-A");
    finish(&fx, t[0], "lease-A", 0.3, 0.6);
    start(&fx, t[1], "lease-B");
    cv_store_result_t r = completed(0.1, 0.2);
    r.status = CV_STORE_TRIAL_PRUNED;
    r.best_epoch = 2;
    r.epochs_run = 3;
    r.n_params = 354;
    r.model_path = "/models/pruned.model";
    ck_assert_msg(cv_store_put_result(fx.store, t[1], "lease-B", &r, NOW + 4, fx.err) == 0, "%s",
                  fx.err);

    char q[256], text[128];
    raw_text(fx.path,
             sqlf(q, sizeof q,
                  "SELECT status || ' ' || best_epoch || ' ' || epochs_run || ' ' || n_params || "
                  "' ' || model_path || ' ' || (lease_token IS NULL) FROM trials WHERE id = %lld",
                  t[1]),
             text, sizeof text);
    ck_assert_str_eq(text, "pruned 2 3 354 /models/pruned.model 1");
    ck_assert_double_eq(
        raw_real(fx.path, sqlf(q, sizeof q, "SELECT dev_error FROM trials WHERE id = %lld", t[1])),
        0.1);
    attempt_row_t a[2];
    ck_assert_int_eq(attempt_rows(fx.path, t[1], a, 2), 1);
    ck_assert_str_eq(a[0].outcome, "pruned");
    ck_assert_double_eq(a[0].ended, NOW + 4);

    cv_store_trial_status_t st;
    ck_assert_int_eq(cv_store_trial_status(fx.store, t[1], &st, fx.err), 0);
    ck_assert_int_eq(st, CV_STORE_TRIAL_PRUNED);
    ck_assert_str_eq(cv_store_trial_status_name(CV_STORE_TRIAL_PRUNED), "pruned");
    ck_assert_int_eq(cv_store_trial_status_parse("pruned", &st), 0);
    ck_assert_int_eq(st, CV_STORE_TRIAL_PRUNED);

    cJSON *top = NULL;
    ck_assert_int_eq(cv_store_trials_top(fx.store, job, CV_STORE_OBJ_JOB, 10, &top, fx.err), 0);
    static const int only_completed[] = {0};
    assert_order(top, only_completed, 1);
    cJSON_Delete(top);
    cJSON *j = NULL;
    ck_assert_int_eq(cv_store_job_get(fx.store, job, &j, fx.err), 0);
    cJSON *counts = cJSON_GetObjectItem(j, "counts");
    ck_assert_int_eq(cJSON_GetArraySize(counts), CV_STORE_TRIAL_STATUSES);
    ck_assert_int_eq(cJSON_GetObjectItem(counts, "pruned")->valueint, 1);
    ck_assert_int_eq(cJSON_GetObjectItem(counts, "completed")->valueint, 1);
    ck_assert_int_eq(cJSON_GetObjectItem(counts, "queued")->valueint, 1);
    ck_assert_int_eq(cJSON_GetObjectItem(cJSON_GetObjectItem(j, "best"), "id")->valueint,
                     (int)t[0]);
    cJSON_Delete(j);
    /* A pruned trial is final: its lease is spent. */
    ck_assert_int_eq(cv_store_put_result(fx.store, t[1], "lease-B", &r, NOW + 5, fx.err),
                     CV_STORE_STALE);
    fx_finish(&fx);
}
END_TEST

/* SQL that takes a current file back to schema version 5: the trials and attempts tables are
 * rebuilt with the CHECK constraints they had before 'pruned' (foreign keys are off in a raw
 * connection). */
#define UNDO_MIGRATION_6                                                                           \
    "CREATE TABLE old_trials (id INTEGER PRIMARY KEY, job_id INTEGER NOT NULL REFERENCES jobs "    \
    "(id), number INTEGER NOT NULL CHECK (number >= 0), round INTEGER NOT NULL, params TEXT NOT "  \
    "NULL, config_key TEXT NOT NULL, spec TEXT NOT NULL, status TEXT NOT NULL DEFAULT 'queued' "   \
    "CHECK (status IN ('queued', 'running', 'completed', 'failed', 'diverged', 'lost', "           \
    "'cancelled')), attempts INTEGER NOT NULL DEFAULT 0, worker_id TEXT, lease_token TEXT, "       \
    "queued_at REAL NOT NULL, started_at REAL, finished_at REAL, dev_error REAL, dev_cost REAL, "  \
    "train_error REAL, train_cost REAL, train_cost_reg REAL, best_epoch INTEGER, epochs_run "      \
    "INTEGER, diagnosis TEXT, examples_per_second REAL, error TEXT, model_path TEXT, n_params "    \
    "INTEGER, UNIQUE (job_id, config_key), UNIQUE (job_id, number)); "                             \
    "INSERT INTO old_trials SELECT * FROM trials; DROP TABLE trials; "                             \
    "ALTER TABLE old_trials RENAME TO trials; "                                                    \
    "CREATE INDEX trials_by_status ON trials (job_id, status); "                                   \
    "CREATE INDEX trials_by_dev_error ON trials (job_id, dev_error, dev_cost, n_params, number) "  \
    "WHERE status = 'completed'; "                                                                 \
    "CREATE INDEX trials_by_dev_cost ON trials (job_id, dev_cost, dev_error, n_params, number) "   \
    "WHERE status = 'completed'; "                                                                 \
    "CREATE TABLE old_attempts (trial_id INTEGER NOT NULL REFERENCES trials (id), attempt "        \
    "INTEGER NOT NULL, worker_id TEXT, lease TEXT, started_at REAL, ended_at REAL NOT NULL, "      \
    "outcome TEXT NOT NULL CHECK (outcome IN ('completed', 'failed', 'diverged', 'lost', "         \
    "'stale', 'cancelled', 'interrupted')), error TEXT, PRIMARY KEY (trial_id, attempt)) "         \
    "WITHOUT ROWID; INSERT INTO old_attempts SELECT * FROM trial_attempts; "                       \
    "DROP TABLE trial_attempts; ALTER TABLE old_attempts RENAME TO trial_attempts; "               \
    "CREATE INDEX trial_attempts_by_worker ON trial_attempts (worker_id); "                        \
    "PRAGMA user_version = 5;"

/* A version-5 file (no 'pruned') migrates keeping its trials, curves and attempts, still joined
 * by their foreign keys, and then takes pruned results. */
START_TEST(test_version_5_file_migrates_and_takes_pruned_results) {
    fx_t fx;
    fx_init(&fx);
    int64_t job = add_job(&fx, "old", CV_STORE_OBJ_DEV_ERROR), t[2];
    add_trials(&fx, job, 0, 2, t);
    start(&fx, t[0], "L");
    cv_epoch_t p = {.epoch = 1, .dev_error = 0.25, .dev_cost = 0.5};
    ck_assert_int_eq(cv_store_curve_add(fx.store, t[0], "L", &p, 1, fx.err), 0);
    finish(&fx, t[0], "L", 0.25, 0.5);
    fx_migrate_from(&fx, UNDO_MIGRATION_9 UNDO_MIGRATION_8 UNDO_MIGRATION_7 UNDO_MIGRATION_6);
    cv_store_result_t r = completed(0.2, 0.4);
    r.status = CV_STORE_TRIAL_PRUNED;
    ck_assert_int_eq(raw_int(fx.path, "SELECT count(*) FROM trials"), 2);
    ck_assert_int_eq(raw_int(fx.path, "SELECT count(*) FROM curves AS c JOIN trials AS t "
                                      "ON t.id = c.trial_id WHERE t.status = 'completed'"),
                     1);
    ck_assert_int_eq(raw_int(fx.path, "SELECT count(*) FROM trial_attempts "
                                      "WHERE outcome = 'completed'"),
                     1);
    ck_assert_int_eq(raw_int(fx.path, "SELECT count(*) FROM pragma_foreign_key_check"), 0);
    ck_assert_int_eq(raw_int(fx.path, "SELECT count(*) FROM sqlite_schema WHERE type = 'index' "
                                      "AND name IN ('trials_by_status', 'trials_by_dev_error', "
                                      "'trials_by_dev_cost', 'trial_attempts_by_worker')"),
                     4);
    ck_assert_int_eq(raw_int(fx.path, "SELECT count(*) FROM sqlite_schema "
                                      "WHERE name LIKE '%_v6' OR name LIKE 'old_%'"),
                     0);
    start(&fx, t[1], "M");
    ck_assert_msg(cv_store_put_result(fx.store, t[1], "M", &r, NOW + 3, fx.err) == 0, "%s", fx.err);
    /* Foreign keys are enforced again after the migration. */
    ck_assert_int_eq(cv_store_curve_add(fx.store, 999, NULL, &p, 1, fx.err) != 0, 1);
    fx_finish(&fx);
}
END_TEST

/* Collects a trial's nudges as "seq:epoch:values;" text. */
static int nudge_text(void *ctx, const cv_store_nudge_t *n) {
    char *out = ctx;
    size_t len = strlen(out);
    snprintf(out + len, 512 - len, "%lld:%d:%s;", (long long)n->seq, n->epoch, n->values_json);
    return 0;
}

/* A version-7 file migrates to nudges; a nudge is stored without an epoch, gets the first one
 * its worker reports and keeps it, and goes with its job. */
START_TEST(test_version_7_file_migrates_and_nudges_keep_their_first_epoch) {
    fx_t fx;
    fx_init(&fx);
    int64_t job = add_job(&fx, "panda", CV_STORE_OBJ_DEV_ERROR), t = 0, last = -1;
    add_trials(&fx, job, 0, 1, &t);
    fx_migrate_from(&fx, UNDO_MIGRATION_9 UNDO_MIGRATION_8 "PRAGMA user_version = 7;");
    char text[512] = "";
    ck_assert_int_eq(cv_store_nudges_each(fx.store, t, nudge_text, text, &last, fx.err), 0);
    ck_assert_int_eq(last, 0);
    cv_store_nudge_t n = {
        .trial_id = t, .seq = 1, .values_json = "{\"learning_rate\":0.0003}", .created_at = NOW};
    ck_assert_msg(cv_store_nudge_add(fx.store, &n, fx.err) == 0, "%s", fx.err);
    n.seq = 2, n.values_json = "{\"keep_prob\":0.9}";
    ck_assert_msg(cv_store_nudge_add(fx.store, &n, fx.err) == 0, "%s", fx.err);
    ck_assert_int_ne(cv_store_nudge_add(fx.store, &n, fx.err), 0); /* seq 2 again */
    ck_assert_int_eq(cv_store_nudge_applied(fx.store, t, 1, 12, NOW + 1, fx.err), 0);
    ck_assert_int_eq(cv_store_nudge_applied(fx.store, t, 1, 30, NOW + 2, fx.err), 0); /* kept */
    ck_assert_int_eq(cv_store_nudges_each(fx.store, t, nudge_text, text, &last, fx.err), 0);
    ck_assert_str_eq(text, "1:12:{\"learning_rate\":0.0003};2:0:{\"keep_prob\":0.9};");
    ck_assert_int_eq(last, 2);
    ck_assert_msg(
        cv_store_job_set_status(fx.store, job, CV_STORE_JOB_COMPLETED, NULL, NOW + 9, fx.err) == 0,
        "%s", fx.err);
    ck_assert_msg(cv_store_job_delete(fx.store, job, NULL, fx.err) == 0, "%s", fx.err);
    ck_assert_int_eq(raw_int(fx.path, "SELECT count(*) FROM nudges"), 0);
    fx_finish(&fx);
}
END_TEST

START_TEST(test_completed_result_writes_one_completed_attempt) {
    fx_t fx;
    fx_init(&fx);
    int64_t job = add_job(&fx, "j", CV_STORE_OBJ_DEV_ERROR), id = 0;
    add_trials(&fx, job, 0, 1, &id);
    start(&fx, id, "lease-A"); /* worker w1 at NOW + 1 */
    put(&fx, id, "lease-A", CV_STORE_TRIAL_COMPLETED, NULL, NOW + 7);

    attempt_row_t r[2];
    ck_assert_int_eq(attempt_rows(fx.path, id, r, 2), 1);
    ck_assert_int_eq(r[0].attempt, 1);
    ck_assert_str_eq(r[0].worker, "w1");
    ck_assert_str_eq(r[0].lease, "lease-A");
    ck_assert_double_eq(r[0].started, NOW + 1);
    ck_assert_double_eq(r[0].ended, NOW + 7);
    ck_assert_str_eq(r[0].outcome, "completed");
    ck_assert_str_eq(r[0].error, "(null)");
    fx_finish(&fx);
}
END_TEST

START_TEST(test_failed_result_writes_a_failed_attempt_with_its_error) {
    fx_t fx;
    fx_init(&fx);
    int64_t job = add_job(&fx, "j", CV_STORE_OBJ_DEV_ERROR), id = 0;
    add_trials(&fx, job, 0, 1, &id);
    start(&fx, id, "lease-A");
    put(&fx, id, "lease-A", CV_STORE_TRIAL_FAILED, "out of memory on the worker", NOW + 3);

    attempt_row_t r[2];
    ck_assert_int_eq(attempt_rows(fx.path, id, r, 2), 1);
    ck_assert_str_eq(r[0].outcome, "failed");
    ck_assert_str_eq(r[0].error, "out of memory on the worker");
    ck_assert_double_eq(r[0].ended, NOW + 3);
    fx_finish(&fx);
}
END_TEST

START_TEST(test_diverged_result_writes_a_diverged_attempt) {
    fx_t fx;
    fx_init(&fx);
    int64_t job = add_job(&fx, "j", CV_STORE_OBJ_DEV_ERROR), id = 0;
    add_trials(&fx, job, 0, 1, &id);
    start(&fx, id, "lease-A");
    put(&fx, id, "lease-A", CV_STORE_TRIAL_DIVERGED, "cost is NaN at epoch 3", NOW + 3);

    attempt_row_t r[2];
    ck_assert_int_eq(attempt_rows(fx.path, id, r, 2), 1);
    ck_assert_str_eq(r[0].outcome, "diverged");
    ck_assert_str_eq(r[0].error, "cost is NaN at epoch 3");
    fx_finish(&fx);
}
END_TEST

START_TEST(test_stale_result_writes_no_attempt) {
    fx_t fx;
    fx_init(&fx);
    int64_t job = add_job(&fx, "j", CV_STORE_OBJ_DEV_ERROR), id = 0;
    add_trials(&fx, job, 0, 1, &id);
    start(&fx, id, "lease-A");
    cv_store_result_t r = completed(0.1, 0.1);
    ck_assert_int_eq(cv_store_put_result(fx.store, id, "lease-B", &r, NOW, fx.err),
                     CV_STORE_STALE);
    put(&fx, id, "lease-A", CV_STORE_TRIAL_COMPLETED, NULL, NOW + 2);
    ck_assert_int_eq(cv_store_put_result(fx.store, id, "lease-A", &r, NOW + 3, fx.err),
                     CV_STORE_STALE);

    attempt_row_t rows[3];
    ck_assert_int_eq(attempt_rows(fx.path, id, rows, 3), 1);
    ck_assert_double_eq(rows[0].ended, NOW + 2);
    fx_finish(&fx);
}
END_TEST

START_TEST(test_requeue_writes_a_lost_attempt_and_the_next_lease_a_new_one) {
    fx_t fx;
    fx_init(&fx);
    int64_t job = add_job(&fx, "j", CV_STORE_OBJ_DEV_ERROR), id = 0;
    add_trials(&fx, job, 0, 1, &id);
    start(&fx, id, "lease-A");
    ck_assert_int_eq(
        cv_store_trial_requeue(fx.store, id, "lease-A", CV_STORE_TRIAL_QUEUED, NOW + 5, fx.err), 0);
    ck_assert_int_eq(cv_store_trial_start(fx.store, id, "w2", "lease-B", NOW + 6, fx.err), 0);
    put(&fx, id, "lease-B", CV_STORE_TRIAL_COMPLETED, NULL, NOW + 9);

    attempt_row_t r[3];
    ck_assert_int_eq(attempt_rows(fx.path, id, r, 3), 2);
    ck_assert_int_eq(r[0].attempt, 1);
    ck_assert_str_eq(r[0].worker, "w1");
    ck_assert_str_eq(r[0].lease, "lease-A");
    ck_assert_str_eq(r[0].outcome, "lost");
    ck_assert_str_eq(r[0].error, "(null)");
    ck_assert_double_eq(r[0].ended, NOW + 5);
    ck_assert_int_eq(r[1].attempt, 2);
    ck_assert_str_eq(r[1].worker, "w2");
    ck_assert_double_eq(r[1].started, NOW + 6);
    ck_assert_str_eq(r[1].outcome, "completed");
    fx_finish(&fx);
}
END_TEST

START_TEST(test_requeue_under_a_stale_lease_writes_no_attempt) {
    fx_t fx;
    fx_init(&fx);
    int64_t job = add_job(&fx, "j", CV_STORE_OBJ_DEV_ERROR), id = 0;
    add_trials(&fx, job, 0, 1, &id);
    start(&fx, id, "lease-A");
    ck_assert_int_eq(
        cv_store_trial_requeue(fx.store, id, "lease-B", CV_STORE_TRIAL_QUEUED, NOW, fx.err),
        CV_STORE_STALE);
    attempt_row_t r[1];
    ck_assert_int_eq(attempt_rows(fx.path, id, r, 1), 0);
    fx_finish(&fx);
}
END_TEST

START_TEST(test_requeue_to_failed_records_lost_n_leases) {
    fx_t fx;
    fx_init(&fx);
    int64_t job = add_job(&fx, "j", CV_STORE_OBJ_DEV_ERROR), id = 0;
    add_trials(&fx, job, 0, 1, &id);
    start(&fx, id, "lease-A");
    ck_assert_int_eq(
        cv_store_trial_requeue(fx.store, id, "lease-A", CV_STORE_TRIAL_QUEUED, NOW + 2, fx.err), 0);
    start(&fx, id, "lease-B");
    ck_assert_int_eq(
        cv_store_trial_requeue(fx.store, id, "lease-B", CV_STORE_TRIAL_FAILED, NOW + 9, fx.err), 0);

    char q[256], text[64];
    raw_text(fx.path,
             sqlf(q, sizeof q, "SELECT status || ': ' || error FROM trials WHERE id = %lld", id),
             text, sizeof text);
    ck_assert_str_eq(text, "failed: lost 2 leases");
    ck_assert_double_eq(
        raw_real(fx.path, sqlf(q, sizeof q, "SELECT finished_at FROM trials WHERE id = %lld", id)),
        NOW + 9);
    attempt_row_t r[3];
    ck_assert_int_eq(attempt_rows(fx.path, id, r, 3), 2);
    ck_assert_str_eq(r[0].outcome, "lost");
    ck_assert_str_eq(r[1].outcome, "lost");
    ck_assert_str_eq(r[1].lease, "lease-B");
    ck_assert_double_eq(r[1].ended, NOW + 9);
    fx_finish(&fx);
}
END_TEST

START_TEST(test_recover_writes_an_interrupted_attempt_with_the_restart_reason) {
    fx_t fx;
    fx_init(&fx);
    int64_t job = add_job(&fx, "j", CV_STORE_OBJ_DEV_ERROR), t[3];
    add_trials(&fx, job, 0, 3, t);
    start(&fx, t[0], "lease-A");
    start(&fx, t[1], "lease-B");
    finish(&fx, t[1], "lease-B", 0.1, 0.1);
    /* running: t0; completed: t1; queued: t2 */
    fx_reopen(&fx);
    double before = (double)time(NULL);
    ck_assert_int_eq(cv_store_recover(fx.store, NULL, fx.err), 0);
    double after = (double)time(NULL) + 1;

    attempt_row_t r[2];
    ck_assert_int_eq(attempt_rows(fx.path, t[0], r, 2), 1);
    ck_assert_str_eq(r[0].worker, "w1");
    ck_assert_str_eq(r[0].lease, "lease-A");
    ck_assert_str_eq(r[0].outcome, "interrupted");
    ck_assert_str_eq(r[0].error, "the coordinator restarted");
    ck_assert_msg(r[0].ended >= before && r[0].ended <= after, "ended_at %f not in [%f, %f]",
                  r[0].ended, before, after);
    ck_assert_int_eq(attempt_rows(fx.path, t[1], r, 2), 1);
    ck_assert_str_eq(r[0].outcome, "completed");
    ck_assert_int_eq(attempt_rows(fx.path, t[2], r, 2), 0);
    fx_finish(&fx);
}
END_TEST

START_TEST(test_interrupt_requeues_without_counting_the_attempt) {
    fx_t fx;
    fx_init(&fx);
    int64_t job = add_job(&fx, "j", CV_STORE_OBJ_DEV_ERROR), id = 0;
    add_trials(&fx, job, 0, 1, &id);
    start(&fx, id, "lease-A"); /* worker w1 at NOW + 1 */
    ck_assert_int_eq(cv_store_trial_interrupt(fx.store, id, "lease-B", NULL, NOW + 3, fx.err),
                     CV_STORE_STALE);
    ck_assert_int_eq(cv_store_trial_interrupt(fx.store, id, "lease-A", NULL, NOW + 3, fx.err), 0);
    char q[256], text[128];
    raw_text(fx.path,
             sqlf(q, sizeof q,
                  "SELECT status || ' ' || attempts || ' ' || ifnull(worker_id, '-') || ' ' || "
                  "ifnull(lease_token, '-') || ' ' || ifnull(started_at, '-') FROM trials "
                  "WHERE id = %lld",
                  id),
             text, sizeof text);
    ck_assert_str_eq(text, "queued 1 - - -");
    attempt_row_t r[3];
    ck_assert_int_eq(attempt_rows(fx.path, id, r, 3), 1);
    ck_assert_int_eq(r[0].attempt, 1);
    ck_assert_str_eq(r[0].worker, "w1");
    ck_assert_str_eq(r[0].lease, "lease-A");
    ck_assert_str_eq(r[0].outcome, "interrupted");
    ck_assert_str_eq(r[0].error, "the coordinator restarted");
    ck_assert_double_eq(r[0].started, NOW + 1);
    ck_assert_double_eq(r[0].ended, NOW + 3);
    ck_assert_int_eq(cv_store_trial_interrupt(fx.store, id, "lease-A", NULL, NOW + 4, fx.err),
                     CV_STORE_STALE); /* no longer running */
    /* The next two leases are lost: "lost 2 leases", though the trial held three. */
    start(&fx, id, "lease-B");
    ck_assert_int_eq(
        cv_store_trial_requeue(fx.store, id, "lease-B", CV_STORE_TRIAL_QUEUED, NOW + 5, fx.err), 0);
    start(&fx, id, "lease-C");
    ck_assert_int_eq(
        cv_store_trial_requeue(fx.store, id, "lease-C", CV_STORE_TRIAL_FAILED, NOW + 6, fx.err), 0);
    raw_text(fx.path,
             sqlf(q, sizeof q, "SELECT status || ' ' || attempts || ': ' || error FROM trials "
                               "WHERE id = %lld", id),
             text, sizeof text);
    ck_assert_str_eq(text, "failed 3: lost 2 leases");
    ck_assert_int_eq(cv_store_trial_interrupt(fx.store, id + 1, "lease-A", NULL, NOW, fx.err), CV_EINVAL);
    ck_assert_int_eq(cv_store_trial_interrupt(fx.store, id, NULL, NULL, NOW, fx.err), CV_EINVAL);
    fx_finish(&fx);
}
END_TEST

START_TEST(test_trial_status_reads_one_trial) {
    fx_t fx;
    fx_init(&fx);
    int64_t job = add_job(&fx, "j", CV_STORE_OBJ_DEV_ERROR), t[2];
    add_trials(&fx, job, 0, 2, t);
    start(&fx, t[1], "L");
    finish(&fx, t[1], "L", 0.1, 0.1);
    cv_store_trial_status_t st = CV_STORE_TRIAL_LOST;
    ck_assert_int_eq(cv_store_trial_status(fx.store, t[0], &st, fx.err), 0);
    ck_assert_int_eq(st, CV_STORE_TRIAL_QUEUED);
    ck_assert_int_eq(cv_store_trial_status(fx.store, t[1], &st, fx.err), 0);
    ck_assert_int_eq(st, CV_STORE_TRIAL_COMPLETED);
    ck_assert_int_eq(cv_store_trial_status(fx.store, t[1] + 1, &st, fx.err), CV_STORE_NOT_FOUND);
    fx_finish(&fx);
}
END_TEST

START_TEST(test_cancel_writes_a_cancelled_attempt_for_running_trials_only) {
    fx_t fx;
    fx_init(&fx);
    int64_t job = add_job(&fx, "j", CV_STORE_OBJ_DEV_ERROR), t[3];
    add_trials(&fx, job, 0, 3, t);
    start(&fx, t[1], "lease-B");
    start(&fx, t[2], "lease-C");
    finish(&fx, t[2], "lease-C", 0.1, 0.1);
    /* queued: t0; running: t1; completed: t2 */
    ck_assert_int_eq(cv_store_job_cancel(fx.store, job, NOW + 5, NULL, fx.err), 0);

    attempt_row_t r[2];
    ck_assert_int_eq(attempt_rows(fx.path, t[0], r, 2), 0);
    ck_assert_int_eq(attempt_rows(fx.path, t[1], r, 2), 1);
    ck_assert_str_eq(r[0].lease, "lease-B");
    ck_assert_str_eq(r[0].outcome, "cancelled");
    ck_assert_double_eq(r[0].ended, NOW + 5);
    ck_assert_int_eq(attempt_rows(fx.path, t[2], r, 2), 1);
    ck_assert_str_eq(r[0].outcome, "completed");
    fx_finish(&fx);
}
END_TEST

START_TEST(test_attempt_stale_turns_only_a_lost_attempt_stale) {
    fx_t fx;
    fx_init(&fx);
    int64_t job = add_job(&fx, "j", CV_STORE_OBJ_DEV_ERROR), id = 0;
    add_trials(&fx, job, 0, 1, &id);
    start(&fx, id, "lease-A");
    ck_assert_int_eq(
        cv_store_trial_requeue(fx.store, id, "lease-A", CV_STORE_TRIAL_QUEUED, NOW + 2, fx.err), 0);
    start(&fx, id, "lease-B");
    put(&fx, id, "lease-B", CV_STORE_TRIAL_COMPLETED, NULL, NOW + 4);

    ck_assert_int_eq(cv_store_attempt_stale(fx.store, id, "lease-A", fx.err), 0);
    ck_assert_int_eq(cv_store_attempt_stale(fx.store, id, "lease-A", fx.err), CV_STORE_NOT_FOUND);
    ck_assert_int_eq(cv_store_attempt_stale(fx.store, id, "lease-B", fx.err), CV_STORE_NOT_FOUND);
    ck_assert_int_eq(cv_store_attempt_stale(fx.store, id, NULL, fx.err), CV_STORE_NOT_FOUND);
    ck_assert_int_eq(cv_store_attempt_stale(fx.store, id + 1, "lease-A", fx.err),
                     CV_STORE_NOT_FOUND);

    attempt_row_t r[3];
    ck_assert_int_eq(attempt_rows(fx.path, id, r, 3), 2);
    ck_assert_str_eq(r[0].outcome, "stale");
    ck_assert_double_eq(r[0].ended, NOW + 2);
    ck_assert_str_eq(r[1].outcome, "completed");
    fx_finish(&fx);
}
END_TEST

START_TEST(test_retry_requeues_a_failed_trial_and_keeps_its_history) {
    fx_t fx;
    fx_init(&fx);
    int64_t job = add_job(&fx, "j", CV_STORE_OBJ_DEV_ERROR), id = 0;
    add_trials(&fx, job, 0, 1, &id);
    start(&fx, id, "lease-A");
    put(&fx, id, "lease-A", CV_STORE_TRIAL_FAILED, "broken worker", NOW + 2);
    ck_assert_int_eq(cv_store_trial_retry(fx.store, id, fx.err), 0);

    char q[512], text[128];
    raw_text(fx.path,
             sqlf(q, sizeof q,
                  "SELECT status || ' ' || attempts || ' ' || queued_at || ' ' || "
                  "(worker_id IS NULL AND lease_token IS NULL AND started_at IS NULL AND "
                  "finished_at IS NULL AND error IS NULL AND dev_error IS NULL AND "
                  "model_path IS NULL) FROM trials WHERE id = %lld",
                  id),
             text, sizeof text);
    ck_assert_str_eq(text, "queued 1 1700000000.0 1");
    ck_assert_int_eq(cv_store_trial_start(fx.store, id, "w2", "lease-B", NOW + 3, fx.err), 0);
    put(&fx, id, "lease-B", CV_STORE_TRIAL_COMPLETED, NULL, NOW + 5);

    attempt_row_t r[3];
    ck_assert_int_eq(attempt_rows(fx.path, id, r, 3), 2);
    ck_assert_str_eq(r[0].worker, "w1");
    ck_assert_str_eq(r[0].outcome, "failed");
    ck_assert_str_eq(r[0].error, "broken worker");
    ck_assert_int_eq(r[1].attempt, 2);
    ck_assert_str_eq(r[1].worker, "w2");
    ck_assert_str_eq(r[1].outcome, "completed");
    fx_finish(&fx);
}
END_TEST

START_TEST(test_retry_refuses_a_trial_that_is_not_failed) {
    fx_t fx;
    fx_init(&fx);
    int64_t job = add_job(&fx, "j", CV_STORE_OBJ_DEV_ERROR), t[3];
    add_trials(&fx, job, 0, 3, t);
    start(&fx, t[1], "L");
    start(&fx, t[2], "L");
    finish(&fx, t[2], "L", 0.1, 0.1);
    /* queued: t0; running: t1; completed: t2 */
    for (int i = 0; i < 3; i++)
        ck_assert_int_eq(cv_store_trial_retry(fx.store, t[i], fx.err), CV_STORE_STALE);
    ck_assert_int_eq(cv_store_trial_retry(fx.store, t[2] + 100, fx.err), CV_EINVAL);
    ck_assert_int_eq(raw_int(fx.path, "SELECT count(*) FROM trials WHERE status = 'queued'"), 1);
    fx_finish(&fx);
}
END_TEST

/* Runs trial id on worker under lease at time now and stores a result of the given status. */
static void run_on(fx_t *fx, int64_t id, const char *worker, const char *lease,
                   cv_store_trial_status_t status, double now) {
    ck_assert_msg(cv_store_trial_start(fx->store, id, worker, lease, now, fx->err) == 0, "%s",
                  fx->err);
    put(fx, id, lease, status, status == CV_STORE_TRIAL_COMPLETED ? NULL : "e", now + 1);
}

START_TEST(test_failed_streak_ends_at_the_newest_result_that_did_not_fail) {
    fx_t fx;
    fx_init(&fx);
    int64_t job = add_job(&fx, "j", CV_STORE_OBJ_DEV_ERROR), t[6];
    add_trials(&fx, job, 0, 6, t);
    run_on(&fx, t[0], "w1", "a", CV_STORE_TRIAL_FAILED, NOW + 10);
    run_on(&fx, t[1], "w1", "b", CV_STORE_TRIAL_DIVERGED, NOW + 20);
    run_on(&fx, t[2], "w1", "c", CV_STORE_TRIAL_FAILED, NOW + 30);
    start(&fx, t[3], "d"); /* w1 loses this lease: no result, the streak goes on */
    ck_assert_int_eq(
        cv_store_trial_requeue(fx.store, t[3], "d", CV_STORE_TRIAL_QUEUED, NOW + 41, fx.err), 0);
    run_on(&fx, t[4], "w2", "e", CV_STORE_TRIAL_COMPLETED, NOW + 45); /* another worker */
    run_on(&fx, t[5], "w1", "f", CV_STORE_TRIAL_FAILED, NOW + 50);

    int64_t ids[5] = {0};
    int n = -1;
    ck_assert_int_eq(cv_store_worker_failed_streak(fx.store, "w1", 5, ids, &n, fx.err), 0);
    ck_assert_int_eq(n, 2);
    ck_assert_int_eq(ids[0], t[5]);
    ck_assert_int_eq(ids[1], t[2]);
    ck_assert_int_eq(cv_store_worker_failed_streak(fx.store, "w1", 1, ids, &n, fx.err), 0);
    ck_assert_int_eq(n, 1);
    ck_assert_int_eq(ids[0], t[5]);
    ck_assert_int_eq(cv_store_worker_failed_streak(fx.store, "w2", 5, ids, &n, fx.err), 0);
    ck_assert_int_eq(n, 0);
    ck_assert_int_eq(cv_store_worker_failed_streak(fx.store, "nobody", 5, ids, &n, fx.err), 0);
    ck_assert_int_eq(n, 0);
    fx_finish(&fx);
}
END_TEST

/* ---- Transactions ------------------------------------------------------------------------ */

START_TEST(test_rollback_leaves_nothing_behind) {
    fx_t fx;
    fx_init(&fx);
    ck_assert_int_eq(cv_store_begin(fx.store, fx.err), 0);
    int64_t job = add_job(&fx, "doomed", CV_STORE_OBJ_DEV_ERROR), ids[3];
    ck_assert_int_eq(cv_store_round_add(fx.store, job, 0, 3, "{}", NOW, fx.err), 0);
    add_trials(&fx, job, 0, 3, ids);
    start(&fx, ids[0], "L");
    finish(&fx, ids[0], "L", 0.1, 0.1);
    ck_assert_int_eq(cv_store_rollback(fx.store, fx.err), 0);

    ck_assert_int_eq(raw_int(fx.path, "SELECT count(*) FROM jobs"), 0);
    ck_assert_int_eq(raw_int(fx.path, "SELECT count(*) FROM rounds"), 0);
    ck_assert_int_eq(raw_int(fx.path, "SELECT count(*) FROM trials"), 0);
    cJSON *jobs = NULL;
    ck_assert_int_eq(cv_store_jobs_list(fx.store, 0, 0, &jobs, fx.err), 0);
    ck_assert_int_eq(cJSON_GetArraySize(jobs), 0);
    cJSON_Delete(jobs);
    add_job(&fx, "after", CV_STORE_OBJ_DEV_ERROR); /* the store is usable again */
    fx_finish(&fx);
}
END_TEST

START_TEST(test_group_commit_stores_every_result) {
    fx_t fx;
    fx_init(&fx);
    int64_t ids[100];
    add_running_trials(&fx, 100, ids);
    ck_assert_int_eq(cv_store_begin(fx.store, fx.err), 0);
    for (int i = 0; i < 100; i++)
        finish(&fx, ids[i], "L", i / 1000.0, 1.0);
    ck_assert_int_eq(raw_int(fx.path, "SELECT count(*) FROM trials WHERE status = 'completed'"),
                     0); /* not visible before commit */
    ck_assert_int_eq(cv_store_commit(fx.store, fx.err), 0);
    cv_store_close(fx.store);
    fx.store = NULL;
    ck_assert_int_eq(raw_int(fx.path, "SELECT count(*) FROM trials WHERE status = 'completed'"),
                     100);
    ck_assert_double_eq_tol(raw_real(fx.path, "SELECT sum(dev_error) FROM trials"), 4.95, 1e-12);
    fx_finish(&fx);
}
END_TEST

START_TEST(test_failed_operation_in_a_group_undoes_only_itself) {
    fx_t fx;
    fx_init(&fx);
    int64_t ids[3], job = add_running_trials(&fx, 3, ids);
    ck_assert_int_eq(cv_store_begin(fx.store, fx.err), 0);
    finish(&fx, ids[0], "L", 0.1, 0.1);
    cv_store_new_trial_t batch[] = {
        {.number = 3, .params = "{}", .config_key = "new", .spec = "{}"},
        {.number = 4, .params = "{}", .config_key = "k0", .spec = "{}"},
    };
    ck_assert_int_eq(cv_store_trials_add(fx.store, job, batch, 2, NOW, NULL, fx.err), CV_EINVAL);
    finish(&fx, ids[1], "L", 0.2, 0.2);
    ck_assert_int_eq(cv_store_commit(fx.store, fx.err), 0);

    ck_assert_int_eq(raw_int(fx.path, "SELECT count(*) FROM trials"), 3);
    ck_assert_int_eq(raw_int(fx.path, "SELECT count(*) FROM trials WHERE status = 'completed'"), 2);
    fx_finish(&fx);
}
END_TEST

START_TEST(test_groups_do_not_nest) {
    fx_t fx;
    fx_init(&fx);
    ck_assert_int_eq(cv_store_commit(fx.store, fx.err), CV_EINVAL);
    ck_assert_int_eq(cv_store_rollback(fx.store, fx.err), 0);
    ck_assert_int_eq(cv_store_begin(fx.store, fx.err), 0);
    ck_assert_int_eq(cv_store_begin(fx.store, fx.err), CV_EINVAL);
    ck_assert_int_eq(cv_store_commit(fx.store, fx.err), 0);
    fx_finish(&fx);
}
END_TEST

/* ---- Faults ------------------------------------------------------------------------------ */

START_TEST(test_write_through_a_readonly_store_fails) {
    fx_t fx;
    fx_init(&fx);
    int64_t job = add_job(&fx, "j", CV_STORE_OBJ_DEV_ERROR), id = 0;
    add_trials(&fx, job, 0, 1, &id);
    start(&fx, id, "L");

    cv_store_t *ro = NULL;
    ck_assert_msg(cv_store_open_readonly(fx.path, &ro, fx.err) == 0, "%s", fx.err);
    cv_store_result_t r = completed(0.1, 0.1);
    ck_assert_int_eq(cv_store_put_result(ro, id, "L", &r, NOW, fx.err), CV_EIO);
    ck_assert_msg(strstr(fx.err, "readonly") != NULL, "%s", fx.err);
    ck_assert_int_eq(
        cv_store_trials_add(
            ro, job,
            &(cv_store_new_trial_t){.number = 1, .params = "{}", .config_key = "x", .spec = "{}"},
            1, NOW, NULL, fx.err),
        CV_EIO);
    cv_store_close(ro);

    char status[32];
    raw_text(fx.path, "SELECT status FROM trials", status, sizeof status);
    ck_assert_str_eq(status, "running");
    ck_assert_int_eq(raw_int(fx.path, "SELECT count(*) FROM trials"), 1);
    fx_finish(&fx);
}
END_TEST

START_TEST(test_readonly_store_sees_committed_rows) {
    fx_t fx;
    fx_init(&fx);
    cv_store_t *ro = NULL;
    ck_assert_int_eq(cv_store_open_readonly(fx.path, &ro, fx.err), 0);
    int64_t job = add_job(&fx, "visible", CV_STORE_OBJ_DEV_ERROR);
    ck_assert_int_eq(cv_store_begin(fx.store, fx.err), 0);
    add_trials(&fx, job, 0, 2, NULL);
    cJSON *j = NULL;
    ck_assert_int_eq(cv_store_job_get(ro, job, &j, fx.err), 0);
    ck_assert_int_eq(cJSON_GetObjectItem(cJSON_GetObjectItem(j, "counts"), "queued")->valueint, 0);
    cJSON_Delete(j);
    ck_assert_int_eq(cv_store_commit(fx.store, fx.err), 0);
    ck_assert_int_eq(cv_store_job_get(ro, job, &j, fx.err), 0);
    ck_assert_int_eq(cJSON_GetObjectItem(cJSON_GetObjectItem(j, "counts"), "queued")->valueint, 2);
    cJSON_Delete(j);
    cv_store_close(ro);
    fx_finish(&fx);
}
END_TEST

/* BIG_N new trials (numbers 100 on) with 4 kB specs: more than such a store can take. */
enum { BIG_SPEC = 4000, BIG_N = 64 };
typedef struct {
    char *spec;
    char (*keys)[16];
    cv_store_new_trial_t *trials;
} big_batch_t;

static void big_batch_init(big_batch_t *b) {
    b->spec = malloc(BIG_SPEC + 16);
    b->keys = calloc(BIG_N, sizeof *b->keys);
    b->trials = calloc(BIG_N, sizeof *b->trials);
    ck_assert(b->spec && b->keys && b->trials);
    snprintf(b->spec, BIG_SPEC + 16, "{\"pad\":\"%0*d\"}", BIG_SPEC, 0);
    for (int i = 0; i < BIG_N; i++) {
        snprintf(b->keys[i], sizeof b->keys[i], "big%d", i);
        b->trials[i] = (cv_store_new_trial_t){
            .number = 100 + i, .params = "{}", .config_key = b->keys[i], .spec = b->spec};
    }
}

static void big_batch_free(big_batch_t *b) {
    free(b->trials);
    free(b->keys);
    free(b->spec);
}

/* A store capped at 128 KiB holding one job with 10 trials (numbers 0..9), and a batch too big
 * for it. */
static int64_t open_nearly_full(fx_t *fx, big_batch_t *big) {
    big_batch_init(big);
    fx_init_closed(fx);
    cv_store_options_t opt = {.max_bytes = 128 * 1024};
    ck_assert_msg(cv_store_open_with(fx->path, &opt, &fx->store, fx->err) == 0, "%s", fx->err);
    int64_t job = add_job(fx, "j", CV_STORE_OBJ_DEV_ERROR);
    add_trials(fx, job, 0, 10, NULL);
    return job;
}

/* Opens a group, adds trial number 10 in it, then fails to add the big batch: disk full. */
static void overflow_in_a_group(fx_t *fx, int64_t job, big_batch_t *big) {
    ck_assert_int_eq(cv_store_begin(fx->store, fx->err), 0);
    add_trials(fx, job, 10, 1, NULL);
    ck_assert_int_eq(cv_store_trials_add(fx->store, job, big->trials, BIG_N, NOW, NULL, fx->err),
                     CV_EIO);
    ck_assert_msg(strstr(fx->err, "full") != NULL, "%s", fx->err);
}

START_TEST(test_disk_full_is_reported_and_committed_rows_survive) {
    fx_t fx;
    big_batch_t big;
    int64_t job = open_nearly_full(&fx, &big);
    overflow_in_a_group(&fx, job, &big);
    ck_assert_int_eq(cv_store_rollback(fx.store, fx.err), 0);
    /* outside a group the same batch fails the same way and leaves nothing */
    ck_assert_int_eq(cv_store_trials_add(fx.store, job, big.trials, BIG_N, NOW, NULL, fx.err),
                     CV_EIO);
    add_trials(&fx, job, 10, 1, NULL); /* small writes still fit */
    cv_store_close(fx.store);
    fx.store = NULL;

    ck_assert_int_eq(raw_int(fx.path, "SELECT count(*) FROM trials"), 11);
    ck_assert_int_eq(raw_int(fx.path, "SELECT count(*) FROM trials WHERE number >= 100"), 0);
    char ok[16];
    raw_text(fx.path, "PRAGMA integrity_check", ok, sizeof ok);
    ck_assert_str_eq(ok, "ok");
    big_batch_free(&big);
    fx_finish(&fx);
}
END_TEST

/* After a write in a group fails, the writer freezes the store: the group is gone, no later
 * write stores anything (not even a small one that would fit and would otherwise commit on its
 * own in autocommit mode), and the committed rows can still be read. */
START_TEST(test_frozen_store_after_a_failed_group_writes_nothing_more) {
    fx_t fx;
    big_batch_t big;
    int64_t job = open_nearly_full(&fx, &big);
    overflow_in_a_group(&fx, job, &big); /* trial 10, added in the group, is lost with it */
    ck_assert_int_eq(cv_store_freeze(fx.store, fx.err), 0);
    cv_store_new_trial_t small = {.number = 11, .params = "{}", .config_key = "small",
                                  .spec = "{}"};
    ck_assert_int_lt(cv_store_trials_add(fx.store, job, &small, 1, NOW, NULL, fx.err), 0);
    cv_store_begin(fx.store, NULL); /* a new group may open, but nothing is written in it */
    ck_assert_int_lt(cv_store_trials_add(fx.store, job, &small, 1, NOW, NULL, fx.err), 0);
    ck_assert_msg(strstr(fx.err, "readonly") != NULL, "%s", fx.err);
    cv_store_rollback(fx.store, NULL);
    cJSON *jobs = NULL;
    ck_assert_int_eq(cv_store_jobs_list(fx.store, 0, 0, &jobs, fx.err), 0);
    ck_assert_int_eq(cJSON_GetArraySize(jobs), 1);
    cJSON_Delete(jobs);
    cv_store_close(fx.store);
    fx.store = NULL;

    ck_assert_int_eq(raw_int(fx.path, "SELECT count(*) FROM trials"), 10);
    ck_assert_int_eq(raw_int(fx.path, "SELECT max(number) FROM trials"), 9);
    big_batch_free(&big);
    fx_finish(&fx);
}
END_TEST

START_TEST(test_second_writer_gets_busy_after_the_timeout) {
    fx_t fx;
    fx_init(&fx);
    cv_store_t *other = NULL;
    cv_store_options_t opt = {.busy_timeout_ms = 50};
    ck_assert_int_eq(cv_store_open_with(fx.path, &opt, &other, fx.err), 0);
    ck_assert_int_eq(cv_store_begin(fx.store, fx.err), 0);
    add_job(&fx, "held", CV_STORE_OBJ_DEV_ERROR);
    ck_assert_int_eq(cv_store_begin(other, fx.err), CV_EIO);
    ck_assert_msg(strstr(fx.err, "locked") != NULL, "%s", fx.err);
    ck_assert_int_eq(cv_store_commit(fx.store, fx.err), 0);
    ck_assert_int_eq(cv_store_begin(other, fx.err), 0);
    ck_assert_int_eq(cv_store_commit(other, fx.err), 0);
    cv_store_close(other);
    fx_finish(&fx);
}
END_TEST

START_TEST(test_readonly_open_needs_a_migrated_store) {
    fx_t fx;
    fx_init_closed(&fx);
    raw_exec(fx.path, "PRAGMA user_version = 0");
    ck_assert_int_eq(cv_store_open_readonly(fx.path, &fx.store, fx.err), CV_EFORMAT);
    ck_assert_ptr_null(fx.store);
    ck_assert_msg(strstr(fx.err, "read-write once") != NULL, "%s", fx.err);
    fx_finish(&fx);
}
END_TEST

/* A VFS over the default one that fails the fail_at-th write or sync after arming, once or (when
 * persist is set) from then on, the way SQLite's own I/O-error tests do. */
typedef struct {
    sqlite3_vfs *real; /* the VFS every call is forwarded to */
    long fail_at;      /* 1-based index of the write or sync to fail; 0 = disarmed */
    long calls;        /* writes and syncs seen since arming */
    long injected;     /* failures returned */
    int persist;       /* 1: every call after the first failure fails too */
    long syncs;        /* syncs seen, armed or not */
} fault_state_t;

typedef struct {
    sqlite3_file base;    /* pMethods: k_fault_io */
    fault_state_t *state; /* shared with the VFS */
    sqlite3_file *real;   /* the real file, allocated right after this struct */
} fault_file_t;

static int fault_hit(fault_state_t *st) {
    if (st->fail_at <= 0) return 0;
    st->calls++;
    if (st->calls == st->fail_at || (st->persist && st->calls > st->fail_at)) {
        st->injected++;
        return 1;
    }
    return 0;
}

static sqlite3_file *real_file(sqlite3_file *f) {
    return ((fault_file_t *)f)->real;
}

static int f_close(sqlite3_file *f) {
    return real_file(f)->pMethods->xClose(real_file(f));
}
static int f_read(sqlite3_file *f, void *buf, int n, sqlite3_int64 off) {
    return real_file(f)->pMethods->xRead(real_file(f), buf, n, off);
}
static int f_write(sqlite3_file *f, const void *buf, int n, sqlite3_int64 off) {
    if (fault_hit(((fault_file_t *)f)->state)) return SQLITE_IOERR_WRITE;
    return real_file(f)->pMethods->xWrite(real_file(f), buf, n, off);
}
static int f_truncate(sqlite3_file *f, sqlite3_int64 size) {
    return real_file(f)->pMethods->xTruncate(real_file(f), size);
}
static int f_sync(sqlite3_file *f, int flags) {
    ((fault_file_t *)f)->state->syncs++;
    if (fault_hit(((fault_file_t *)f)->state)) return SQLITE_IOERR_FSYNC;
    return real_file(f)->pMethods->xSync(real_file(f), flags);
}
static int f_file_size(sqlite3_file *f, sqlite3_int64 *size) {
    return real_file(f)->pMethods->xFileSize(real_file(f), size);
}
static int f_lock(sqlite3_file *f, int level) {
    return real_file(f)->pMethods->xLock(real_file(f), level);
}
static int f_unlock(sqlite3_file *f, int level) {
    return real_file(f)->pMethods->xUnlock(real_file(f), level);
}
static int f_check_reserved(sqlite3_file *f, int *out) {
    return real_file(f)->pMethods->xCheckReservedLock(real_file(f), out);
}
static int f_file_control(sqlite3_file *f, int op, void *arg) {
    return real_file(f)->pMethods->xFileControl(real_file(f), op, arg);
}
static int f_sector_size(sqlite3_file *f) {
    return real_file(f)->pMethods->xSectorSize(real_file(f));
}
static int f_device(sqlite3_file *f) {
    return real_file(f)->pMethods->xDeviceCharacteristics(real_file(f));
}
static int f_shm_map(sqlite3_file *f, int page, int size, int extend, void volatile **out) {
    return real_file(f)->pMethods->xShmMap(real_file(f), page, size, extend, out);
}
static int f_shm_lock(sqlite3_file *f, int offset, int n, int flags) {
    return real_file(f)->pMethods->xShmLock(real_file(f), offset, n, flags);
}
static void f_shm_barrier(sqlite3_file *f) {
    real_file(f)->pMethods->xShmBarrier(real_file(f));
}
static int f_shm_unmap(sqlite3_file *f, int delete_flag) {
    return real_file(f)->pMethods->xShmUnmap(real_file(f), delete_flag);
}

static const sqlite3_io_methods k_fault_io = {
    .iVersion = 2, /* no memory-mapped I/O: every write goes through xWrite */
    .xClose = f_close,
    .xRead = f_read,
    .xWrite = f_write,
    .xTruncate = f_truncate,
    .xSync = f_sync,
    .xFileSize = f_file_size,
    .xLock = f_lock,
    .xUnlock = f_unlock,
    .xCheckReservedLock = f_check_reserved,
    .xFileControl = f_file_control,
    .xSectorSize = f_sector_size,
    .xDeviceCharacteristics = f_device,
    .xShmMap = f_shm_map,
    .xShmLock = f_shm_lock,
    .xShmBarrier = f_shm_barrier,
    .xShmUnmap = f_shm_unmap,
};

static sqlite3_vfs *real_vfs(sqlite3_vfs *v) {
    return ((fault_state_t *)v->pAppData)->real;
}

static int v_open(sqlite3_vfs *v, const char *name, sqlite3_file *file, int flags, int *out) {
    fault_file_t *ff = (fault_file_t *)file;
    ff->state = v->pAppData;
    ff->real = (sqlite3_file *)(ff + 1);
    int rc = real_vfs(v)->xOpen(real_vfs(v), name, ff->real, flags, out);
    ff->base.pMethods = ff->real->pMethods ? &k_fault_io : NULL;
    return rc;
}
static int v_delete(sqlite3_vfs *v, const char *name, int sync_dir) {
    return real_vfs(v)->xDelete(real_vfs(v), name, sync_dir);
}
static int v_access(sqlite3_vfs *v, const char *name, int flags, int *out) {
    return real_vfs(v)->xAccess(real_vfs(v), name, flags, out);
}
static int v_full_pathname(sqlite3_vfs *v, const char *name, int n, char *out) {
    return real_vfs(v)->xFullPathname(real_vfs(v), name, n, out);
}
static int v_randomness(sqlite3_vfs *v, int n, char *out) {
    return real_vfs(v)->xRandomness(real_vfs(v), n, out);
}
static int v_sleep(sqlite3_vfs *v, int us) {
    return real_vfs(v)->xSleep(real_vfs(v), us);
}
static int v_current_time(sqlite3_vfs *v, double *out) {
    return real_vfs(v)->xCurrentTime(real_vfs(v), out);
}
static int v_last_error(sqlite3_vfs *v, int n, char *out) {
    return real_vfs(v)->xGetLastError(real_vfs(v), n, out);
}
static int v_current_time64(sqlite3_vfs *v, sqlite3_int64 *out) {
    return real_vfs(v)->xCurrentTimeInt64(real_vfs(v), out);
}

/* Fills vfs as "cv_fault" over the default VFS and registers it. */
static void fault_vfs_register(sqlite3_vfs *vfs, fault_state_t *st) {
    memset(st, 0, sizeof *st);
    st->real = sqlite3_vfs_find(NULL);
    ck_assert_ptr_nonnull(st->real);
    ck_assert_int_ge(st->real->iVersion, 2);
    *vfs = (sqlite3_vfs){
        .iVersion = 2,
        .szOsFile = (int)sizeof(fault_file_t) + st->real->szOsFile,
        .mxPathname = st->real->mxPathname,
        .zName = "cv_fault",
        .pAppData = st,
        .xOpen = v_open,
        .xDelete = v_delete,
        .xAccess = v_access,
        .xFullPathname = v_full_pathname,
        .xRandomness = v_randomness,
        .xSleep = v_sleep,
        .xCurrentTime = v_current_time,
        .xGetLastError = v_last_error,
        .xCurrentTimeInt64 = v_current_time64,
    };
    ck_assert_int_eq(sqlite3_vfs_register(vfs, 0), SQLITE_OK);
}

static void copy_file(const char *from, const char *to) {
    FILE *in = fopen(from, "rb"), *out = fopen(to, "wb");
    ck_assert(in && out);
    char buf[8192];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, in)) > 0)
        ck_assert_uint_eq(fwrite(buf, 1, n, out), n);
    fclose(in);
    ck_assert_int_eq(fclose(out), 0);
}

/* Commits results of trials [first, first + n) in one group; returns the first failure. */
static int commit_results(cv_store_t *s, const int64_t *ids, int first, int n, char *err) {
    int rc = cv_store_begin(s, err);
    for (int i = first; rc == 0 && i < first + n; i++) {
        cv_store_result_t r = completed(i / 1000.0, 1.0);
        rc = cv_store_put_result(s, ids[i], "L", &r, NOW, err);
    }
    if (rc == 0) return cv_store_commit(s, err);
    cv_store_rollback(s, NULL);
    return rc;
}

START_TEST(test_io_faults_never_half_apply_a_group) {
    fx_t fx;
    fx_init(&fx);
    int64_t ids[200];
    add_running_trials(&fx, 200, ids);
    ck_assert_int_eq(commit_results(fx.store, ids, 0, 100, fx.err), 0);
    cv_store_close(fx.store); /* checkpoints: store.db alone holds the baseline */
    fx.store = NULL;

    sqlite3_vfs vfs;
    fault_state_t st;
    fault_vfs_register(&vfs, &st);
    char work[CV_TEST_PATH + 16], side[CV_TEST_PATH + 32];
    snprintf(work, sizeof work, "%s/work.db", fx.dir);
    cv_store_options_t opt = {.vfs = "cv_fault"};
    for (int persist = 0; persist <= 1; persist++) {
        long k;
        for (k = 1; k < 1000; k++) {
            copy_file(fx.path, work);
            snprintf(side, sizeof side, "%s-wal", work);
            unlink(side);
            snprintf(side, sizeof side, "%s-shm", work);
            unlink(side);
            cv_store_t *s = NULL;
            ck_assert_msg(cv_store_open_with(work, &opt, &s, fx.err) == 0, "%s", fx.err);
            st = (fault_state_t){.real = st.real, .fail_at = k, .persist = persist};
            fx.err[0] = '\0';
            int rc = commit_results(s, ids, 100, 100, fx.err);
            long injected = st.injected;
            st.fail_at = 0;
            cv_store_close(s);

            if (rc != 0) {
                ck_assert_msg(rc == CV_EIO, "k=%ld persist=%d: %d %s", k, persist, rc, fx.err);
                ck_assert_msg(strstr(fx.err, "I/O") != NULL, "%s", fx.err);
            }
            int64_t done = raw_int(work, "SELECT count(*) FROM trials WHERE status = 'completed'");
            /* all of the group or none; the group may be durable yet unacknowledged when the
               failure hit after its commit record was written */
            ck_assert_msg(done == 100 || done == 200, "k=%ld persist=%d: %lld completed", k,
                          persist, (long long)done);
            if (rc == 0) ck_assert_int_eq(done, 200);
            ck_assert_double_eq_tol(
                raw_real(work, "SELECT sum(dev_error) FROM trials WHERE number < 100"), 4.95,
                1e-12);
            char ok[16];
            raw_text(work, "PRAGMA integrity_check", ok, sizeof ok);
            ck_assert_str_eq(ok, "ok");
            if (injected == 0) break;
        }
        ck_assert_msg(k > 2 && k < 1000, "faults injected at %ld points", k - 1);
    }
    ck_assert_int_eq(sqlite3_vfs_unregister(&vfs), SQLITE_OK);
    fx_finish(&fx);
}
END_TEST

/* With deferred_sync a commit waits for no disk sync (the first one into a new WAL syncs its
 * header): cv_store_sync makes it durable through a descriptor of its own, and
 * cv_store_checkpoint copies the WAL into the database (syncing both) once it holds 1,000
 * frames. The same groups on a store without it sync at every commit, and there cv_store_sync
 * and cv_store_checkpoint are refused. */
START_TEST(test_deferred_sync_leaves_the_disk_to_sync_and_checkpoint) {
    fx_t fx;
    fx_init(&fx);
    int64_t ids[1200];
    add_running_trials(&fx, 1200, ids);
    cv_store_close(fx.store);
    fx.store = NULL;

    sqlite3_vfs vfs;
    fault_state_t st = {0};
    fault_vfs_register(&vfs, &st);
    cv_store_t *plain = NULL, *deferred = NULL;
    cv_store_options_t opt = {.vfs = "cv_fault"};
    ck_assert_msg(cv_store_open_with(fx.path, &opt, &plain, fx.err) == 0, "%s", fx.err);
    ck_assert_int_eq(commit_results(plain, ids, 0, 10, fx.err), 0);
    st.syncs = 0;
    ck_assert_int_eq(commit_results(plain, ids, 10, 10, fx.err), 0);
    ck_assert_int_gt(st.syncs, 0);
    ck_assert_int_eq(cv_store_sync(plain, fx.err), CV_EINVAL);
    ck_assert_int_eq(cv_store_checkpoint(plain, fx.err), CV_EINVAL);
    cv_store_close(plain);

    opt.deferred_sync = 1;
    ck_assert_msg(cv_store_open_with(fx.path, &opt, &deferred, fx.err) == 0, "%s", fx.err);
    ck_assert_int_eq(commit_results(deferred, ids, 20, 10, fx.err), 0);
    st.syncs = 0;
    ck_assert_int_eq(commit_results(deferred, ids, 30, 10, fx.err), 0);
    ck_assert_int_eq(st.syncs, 0);
    ck_assert_msg(cv_store_sync(deferred, fx.err) == 0, "%s", fx.err);
    ck_assert_int_eq(st.syncs, 0); /* its own descriptor, not the connection's */
    ck_assert_int_eq(raw_int(fx.path, "SELECT count(*) FROM trials WHERE status = 'completed'"),
                     40);
    ck_assert_msg(cv_store_checkpoint(deferred, fx.err) == 0, "%s", fx.err);
    ck_assert_int_eq(st.syncs, 0); /* too few frames to copy yet */
    for (int first = 40; first < 1200; first += 10) /* a group a commit: >= 1,000 frames */
        ck_assert_int_eq(commit_results(deferred, ids, first, 10, fx.err), 0);
    ck_assert_int_eq(st.syncs, 0);
    ck_assert_msg(cv_store_checkpoint(deferred, fx.err) == 0, "%s", fx.err);
    ck_assert_int_ge(st.syncs, 2); /* the WAL before the copy, the database after */
    cv_store_close(deferred);
    ck_assert_int_eq(sqlite3_vfs_unregister(&vfs), SQLITE_OK);
    fx_finish(&fx);
}
END_TEST

/* ---- Queries ----------------------------------------------------------------------------- */

START_TEST(test_job_get_reports_counts_rounds_and_best) {
    fx_t fx;
    fx_init(&fx);
    int64_t job = ranked_job(&fx, CV_STORE_OBJ_DEV_ERROR);
    ck_assert_int_eq(cv_store_round_add(fx.store, job, 0, 8, "{\"lr\":[0.001,0.1]}", NOW, fx.err),
                     0);
    ck_assert_int_eq(cv_store_round_add(fx.store, job, 0, 8, "{}", NOW, fx.err), CV_EINVAL);
    ck_assert_int_eq(cv_store_job_set_round(fx.store, job, 1, "{\"lr\":[0.01,0.05]}", fx.err), 0);
    ck_assert_int_eq(cv_store_job_set_test_result(fx.store, job, "{\"test_error\":0.08}", fx.err),
                     0);

    cJSON *j = NULL;
    ck_assert_int_eq(cv_store_job_get(fx.store, job, &j, fx.err), 0);
    ck_assert_str_eq(cJSON_GetObjectItem(j, "name")->valuestring, "ranked");
    ck_assert_str_eq(cJSON_GetObjectItem(j, "status")->valuestring, "running");
    ck_assert_str_eq(cJSON_GetObjectItem(j, "objective")->valuestring, "dev_error");
    ck_assert_int_eq(cJSON_GetObjectItem(j, "round")->valueint, 1);
    ck_assert_int_eq(cJSON_GetObjectItem(cJSON_GetObjectItem(j, "spec"), "trials")->valueint, 10);
    cJSON *lr = cJSON_GetObjectItem(cJSON_GetObjectItem(j, "region"), "lr");
    ck_assert_double_eq(cJSON_GetArrayItem(lr, 0)->valuedouble, 0.01);
    ck_assert_double_eq(
        cJSON_GetObjectItem(cJSON_GetObjectItem(j, "test_result"), "test_error")->valuedouble,
        0.08);
    cJSON *counts = cJSON_GetObjectItem(j, "counts");
    ck_assert_int_eq(cJSON_GetArraySize(counts), CV_STORE_TRIAL_STATUSES);
    ck_assert_int_eq(cJSON_GetObjectItem(counts, "completed")->valueint, 6);
    ck_assert_int_eq(cJSON_GetObjectItem(counts, "failed")->valueint, 1);
    ck_assert_int_eq(cJSON_GetObjectItem(counts, "running")->valueint, 1);
    ck_assert_int_eq(cJSON_GetObjectItem(counts, "queued")->valueint, 0);
    cJSON *rounds = cJSON_GetObjectItem(j, "rounds");
    ck_assert_int_eq(cJSON_GetArraySize(rounds), 1);
    ck_assert_int_eq(cJSON_GetObjectItem(cJSON_GetArrayItem(rounds, 0), "size")->valueint, 8);
    cJSON *best = cJSON_GetObjectItem(j, "best");
    ck_assert_int_eq(cJSON_GetObjectItem(best, "number")->valueint, 3);
    ck_assert_double_eq(cJSON_GetObjectItem(best, "dev_error")->valuedouble, 0.07);
    ck_assert_ptr_null(cJSON_GetObjectItem(best, "lease_token"));
    ck_assert(cJSON_IsNull(cJSON_GetObjectItem(j, "finished_at")));
    cJSON_Delete(j);

    ck_assert_int_eq(
        cv_store_job_set_status(fx.store, job, CV_STORE_JOB_COMPLETED, NULL, NOW + 50, fx.err), 0);
    ck_assert_int_eq(cv_store_job_get(fx.store, job, &j, fx.err), 0);
    ck_assert_str_eq(cJSON_GetObjectItem(j, "status")->valuestring, "completed");
    ck_assert_double_eq(cJSON_GetObjectItem(j, "finished_at")->valuedouble, NOW + 50);
    cJSON_Delete(j);
    fx_finish(&fx);
}
END_TEST

START_TEST(test_job_without_results_has_null_best) {
    fx_t fx;
    fx_init(&fx);
    int64_t job = add_job(&fx, "empty", CV_STORE_OBJ_DEV_COST);
    cJSON *j = NULL;
    ck_assert_int_eq(cv_store_job_get(fx.store, job, &j, fx.err), 0);
    ck_assert(cJSON_IsNull(cJSON_GetObjectItem(j, "best")));
    ck_assert_int_eq(cJSON_GetArraySize(cJSON_GetObjectItem(j, "rounds")), 0);
    cJSON_Delete(j);
    fx_finish(&fx);
}
END_TEST

START_TEST(test_unknown_ids_are_not_found) {
    fx_t fx;
    fx_init(&fx);
    cJSON *out = (cJSON *)&out;
    int64_t id = -5;
    ck_assert_int_eq(cv_store_job_get(fx.store, 7, &out, fx.err), CV_STORE_NOT_FOUND);
    ck_assert_ptr_null(out);
    ck_assert_int_eq(cv_store_trial_get(fx.store, 7, 0, &out, fx.err), CV_STORE_NOT_FOUND);
    ck_assert_int_eq(cv_store_trials_list(fx.store, 7, -1, 0, &out, fx.err), CV_STORE_NOT_FOUND);
    ck_assert_int_eq(cv_store_trials_top(fx.store, 7, CV_STORE_OBJ_JOB, 5, &out, fx.err),
                     CV_STORE_NOT_FOUND);
    ck_assert_int_eq(cv_store_trial_id(fx.store, 7, 0, &id, fx.err), CV_STORE_NOT_FOUND);
    ck_assert_int_eq(id, -5);
    ck_assert_int_eq(cv_store_job_set_status(fx.store, 7, CV_STORE_JOB_FAILED, "x", NOW, fx.err),
                     CV_EINVAL);
    fx_finish(&fx);
}
END_TEST

START_TEST(test_trials_list_is_in_submission_order_and_pages) {
    fx_t fx;
    fx_init(&fx);
    int64_t job = add_job(&fx, "j", CV_STORE_OBJ_DEV_ERROR);
    add_trials(&fx, job, 5, 5, NULL); /* 5..9 first */
    add_trials(&fx, job, 0, 5, NULL); /* then 0..4 */
    cJSON *arr = NULL;
    ck_assert_int_eq(cv_store_trials_list(fx.store, job, -1, 0, &arr, fx.err), 0);
    ck_assert_int_eq(cJSON_GetArraySize(arr), 10);
    for (int i = 0; i < 10; i++)
        ck_assert_int_eq(number_at(arr, i), i);
    ck_assert_int_eq(
        cJSON_GetObjectItem(cJSON_GetObjectItem(cJSON_GetArrayItem(arr, 4), "params"), "lr")
            ->valueint,
        4);
    cJSON_Delete(arr);
    ck_assert_int_eq(cv_store_trials_list(fx.store, job, 2, 4, &arr, fx.err), 0);
    ck_assert_int_eq(cJSON_GetArraySize(arr), 4);
    ck_assert_int_eq(number_at(arr, 0), 3);
    ck_assert_int_eq(number_at(arr, 3), 6);
    cJSON_Delete(arr);
    int64_t id = 0;
    ck_assert_int_eq(cv_store_trial_id(fx.store, job, 7, &id, fx.err), 0);
    ck_assert_int_eq(id, 3); /* the third row inserted */
    fx_finish(&fx);
}
END_TEST

START_TEST(test_trial_get_returns_the_curve_in_epoch_order) {
    fx_t fx;
    fx_init(&fx);
    int64_t job = add_job(&fx, "j", CV_STORE_OBJ_DEV_ERROR), id = 0;
    add_trials(&fx, job, 0, 1, &id);
    start(&fx, id, "L");
    cv_epoch_t pts[3] = {
        {.epoch = 2, .train_cost = 0.2, .dev_cost = 0.3, .learning_rate = 0.01, .seconds = 1.5},
        {.epoch = 0, .train_cost = 0.9, .dev_cost = 1.0, .learning_rate = 0.01, .seconds = 1.25},
        {.epoch = 1, .train_cost = 0.5, .dev_cost = NAN, .learning_rate = 0.01, .seconds = 1.0},
    };
    ck_assert_int_eq(cv_store_curve_add(fx.store, id, "L", pts, 3, fx.err), 0);
    ck_assert_int_eq(cv_store_curve_add(fx.store, id, "other", pts, 1, fx.err), CV_STORE_STALE);

    cJSON *t = NULL;
    ck_assert_int_eq(cv_store_trial_get(fx.store, id, 0, &t, fx.err), 0);
    ck_assert_str_eq(cJSON_GetObjectItem(t, "config_key")->valuestring, "k0");
    ck_assert_int_eq(cJSON_GetObjectItem(cJSON_GetObjectItem(t, "spec"), "lr")->valueint, 0);
    cJSON *curve = cJSON_GetObjectItem(t, "curve");
    ck_assert_int_eq(cJSON_GetArraySize(curve), 3);
    for (int e = 0; e < 3; e++)
        ck_assert_int_eq(cJSON_GetObjectItem(cJSON_GetArrayItem(curve, e), "epoch")->valueint, e);
    ck_assert_double_eq(
        cJSON_GetObjectItem(cJSON_GetArrayItem(curve, 0), "train_cost")->valuedouble, 0.9);
    ck_assert_double_eq(cJSON_GetObjectItem(cJSON_GetArrayItem(curve, 0), "seconds")->valuedouble,
                        1.25);
    ck_assert(cJSON_IsNull(cJSON_GetObjectItem(cJSON_GetArrayItem(curve, 1), "dev_cost")));
    cJSON_Delete(t);

    /* from epoch 1: the later points only, the rest of the trial as before */
    ck_assert_int_eq(cv_store_trial_get(fx.store, id, 1, &t, fx.err), 0);
    curve = cJSON_GetObjectItem(t, "curve");
    ck_assert_int_eq(cJSON_GetArraySize(curve), 2);
    for (int e = 1; e < 3; e++)
        ck_assert_int_eq(cJSON_GetObjectItem(cJSON_GetArrayItem(curve, e - 1), "epoch")->valueint,
                         e);
    ck_assert_str_eq(cJSON_GetObjectItem(t, "config_key")->valuestring, "k0");
    cJSON_Delete(t);
    ck_assert_int_eq(cv_store_trial_get(fx.store, id, 3, &t, fx.err), 0);
    ck_assert_int_eq(cJSON_GetArraySize(cJSON_GetObjectItem(t, "curve")), 0);
    cJSON_Delete(t);

    /* a new attempt starts a new curve */
    ck_assert_int_eq(cv_store_trial_requeue(fx.store, id, "L", CV_STORE_TRIAL_QUEUED, NOW, fx.err),
                     0);
    start(&fx, id, "L2");
    ck_assert_int_eq(raw_int(fx.path, "SELECT count(*) FROM curves"), 0);
    fx_finish(&fx);
}
END_TEST

typedef struct {
    int count;
    int numbers[8];
    double objective[8];
    cv_store_trial_status_t status[8];
    char lease[8][16], worker[8][16]; /* "-" for NULL */
    int interrupted[8];
    char first_key[16];
    int stop_after; /* 0 = never */
} visit_t;

static int on_trial(void *ctx, const cv_store_trial_row_t *row) {
    visit_t *v = ctx;
    if (v->count == 0) snprintf(v->first_key, sizeof v->first_key, "%s", row->config_key);
    v->numbers[v->count] = row->number;
    v->objective[v->count] = row->objective;
    v->status[v->count] = row->status;
    snprintf(v->lease[v->count], sizeof v->lease[0], "%s", row->lease ? row->lease : "-");
    snprintf(v->worker[v->count], sizeof v->worker[0], "%s", row->worker_id ? row->worker_id : "-");
    v->interrupted[v->count] = row->interrupted;
    v->count++;
    return v->stop_after && v->count == v->stop_after ? CV_ESTOPPED : 0;
}

START_TEST(test_trials_each_visits_in_submission_order_with_the_objective) {
    fx_t fx;
    fx_init(&fx);
    int64_t job = add_job(&fx, "j", CV_STORE_OBJ_DEV_COST), ids[3];
    add_trials(&fx, job, 2, 1, &ids[2]);
    add_trials(&fx, job, 0, 2, ids);
    start(&fx, ids[1], "L");
    finish(&fx, ids[1], "L", 0.25, 0.75);

    visit_t v = {0};
    ck_assert_int_eq(cv_store_trials_each(fx.store, job, on_trial, &v, fx.err), 0);
    ck_assert_int_eq(v.count, 3);
    for (int i = 0; i < 3; i++)
        ck_assert_int_eq(v.numbers[i], i);
    ck_assert_str_eq(v.first_key, "k0");
    ck_assert(isnan(v.objective[0]));
    ck_assert_double_eq(v.objective[1], 0.75); /* dev_cost: the job's objective */
    ck_assert_int_eq(v.status[1], CV_STORE_TRIAL_COMPLETED);
    ck_assert_int_eq(v.status[2], CV_STORE_TRIAL_QUEUED);

    ck_assert_str_eq(v.lease[1], "-"); /* cleared with the result */
    ck_assert_str_eq(v.worker[1], "w1");
    ck_assert_str_eq(v.lease[2], "-");
    ck_assert_str_eq(v.worker[2], "-");

    visit_t stop = {.stop_after = 2};
    ck_assert_int_eq(cv_store_trials_each(fx.store, job, on_trial, &stop, fx.err), CV_ESTOPPED);
    ck_assert_int_eq(stop.count, 2);
    fx_finish(&fx);
}
END_TEST

static int on_job(void *ctx, const cv_store_job_row_t *row) {
    int64_t *seen = ctx;
    seen[seen[0] + 1] = row->id;
    seen[0]++;
    return row->objective == CV_STORE_OBJ_DEV_ERROR && row->spec[0] == '{' ? 0 : CV_EFORMAT;
}

/* What a restart needs to keep a running trial running: its lease, its worker, and how many of
 * its attempts were interrupted. */
START_TEST(test_trials_each_gives_running_trials_their_lease_and_interruptions) {
    fx_t fx;
    fx_init(&fx);
    int64_t job = add_job(&fx, "j", CV_STORE_OBJ_DEV_ERROR), id = 0;
    add_trials(&fx, job, 0, 1, &id);
    start(&fx, id, "lease-A");
    ck_assert_int_eq(cv_store_trial_interrupt(fx.store, id, "lease-A", NULL, NOW + 2, fx.err), 0);
    start(&fx, id, "lease-B");
    visit_t v = {0};
    ck_assert_int_eq(cv_store_trials_each(fx.store, job, on_trial, &v, fx.err), 0);
    ck_assert_int_eq(v.count, 1);
    ck_assert_int_eq(v.status[0], CV_STORE_TRIAL_RUNNING);
    ck_assert_str_eq(v.lease[0], "lease-B");
    ck_assert_str_eq(v.worker[0], "w1");
    ck_assert_int_eq(v.interrupted[0], 1);
    fx_finish(&fx);
}
END_TEST

START_TEST(test_jobs_each_can_skip_finished_jobs) {
    fx_t fx;
    fx_init(&fx);
    int64_t a = add_job(&fx, "a", CV_STORE_OBJ_DEV_ERROR);
    int64_t b = add_job(&fx, "b", CV_STORE_OBJ_DEV_ERROR);
    int64_t c = add_job(&fx, "c", CV_STORE_OBJ_DEV_ERROR);
    ck_assert_int_eq(
        cv_store_job_set_status(fx.store, b, CV_STORE_JOB_FAILED, "no workers", NOW, fx.err), 0);
    int64_t seen[5] = {0};
    ck_assert_int_eq(cv_store_jobs_each(fx.store, CV_STORE_JOBS_RUNNING, on_job, seen, fx.err), 0);
    ck_assert_int_eq(seen[0], 2);
    ck_assert_int_eq(seen[1], a);
    ck_assert_int_eq(seen[2], c);
    memset(seen, 0, sizeof seen);
    ck_assert_int_eq(cv_store_jobs_each(fx.store, CV_STORE_JOBS_ALL, on_job, seen, fx.err), 0);
    ck_assert_int_eq(seen[0], 3);
    fx_finish(&fx);
}
END_TEST

/* The plan columns of job id as "sampler pruner rounds" ("(null)" when the plan is unknown). */
static void plan_of(const fx_t *fx, int64_t id, char *out, size_t cap) {
    char sql[160];
    snprintf(sql, sizeof sql, "SELECT sampler || ' ' || pruner || ' ' || rounds_planned FROM jobs "
             "WHERE id = %lld", (long long)id);
    raw_text(fx->path, sql, out, cap);
}

/* A version-8 file migrates with no plan for the jobs it holds (the store does not parse specs;
 * the coordinator derives them at start-up): the jobs list shows null for them, they alone are
 * visited as unplanned, and the plan set for each is then listed. */
START_TEST(test_version_8_file_migrates_with_its_jobs_unplanned) {
    fx_t fx;
    fx_init(&fx);
    int64_t old = add_job(&fx, "old", CV_STORE_OBJ_DEV_ERROR);
    fx_migrate_from(&fx, UNDO_MIGRATION_9 "PRAGMA user_version = 8;");
    int64_t fresh = add_job(&fx, "new", CV_STORE_OBJ_DEV_ERROR);
    char plan[64];
    plan_of(&fx, old, plan, sizeof plan);
    ck_assert_str_eq(plan, "(null)");
    cJSON *arr = NULL;
    ck_assert_int_eq(cv_store_jobs_list(fx.store, 0, 0, &arr, fx.err), 0);
    ck_assert_int_eq(cJSON_GetArraySize(arr), 2);
    ck_assert(cJSON_IsNull(cJSON_GetObjectItem(cJSON_GetArrayItem(arr, 0), "sampler")));
    ck_assert(cJSON_IsNull(cJSON_GetObjectItem(cJSON_GetArrayItem(arr, 0), "pruner")));
    ck_assert_double_eq(row_number(cJSON_GetArrayItem(arr, 0), "rounds_planned"), -1);
    ck_assert_str_eq(cJSON_GetObjectItem(cJSON_GetArrayItem(arr, 1), "sampler")->valuestring,
                     "random");
    cJSON_Delete(arr);

    int64_t seen[4] = {0};
    ck_assert_int_eq(cv_store_jobs_each(fx.store, CV_STORE_JOBS_UNPLANNED, on_job, seen, fx.err),
                     0);
    ck_assert_int_eq(seen[0], 1);
    ck_assert_int_eq(seen[1], old);
    const cv_store_job_plan_t derived = {"tpe", "median", 2};
    ck_assert_msg(cv_store_job_set_plan(fx.store, old, &derived, fx.err) == 0, "%s", fx.err);
    ck_assert_int_eq(cv_store_job_set_plan(fx.store, fresh + 1, &derived, fx.err), CV_EINVAL);
    memset(seen, 0, sizeof seen);
    ck_assert_int_eq(cv_store_jobs_each(fx.store, CV_STORE_JOBS_UNPLANNED, on_job, seen, fx.err),
                     0);
    ck_assert_int_eq(seen[0], 0);
    ck_assert_int_eq(cv_store_jobs_list(fx.store, 0, 0, &arr, fx.err), 0);
    const cJSON *row = cJSON_GetArrayItem(arr, 0);
    ck_assert_str_eq(cJSON_GetObjectItem(row, "sampler")->valuestring, "tpe");
    ck_assert_str_eq(cJSON_GetObjectItem(row, "pruner")->valuestring, "median");
    ck_assert_double_eq(row_number(row, "rounds_planned"), 2);
    cJSON_Delete(arr);
    plan_of(&fx, fresh, plan, sizeof plan);
    ck_assert_str_eq(plan, "random none 3");
    fx_finish(&fx);
}
END_TEST

START_TEST(test_workers_track_outcomes_and_quarantine) {
    fx_t fx;
    fx_init(&fx);
    int failures = -1;
    ck_assert_int_eq(cv_store_worker_seen(fx.store, "w1", "0.1.0", 4, "hostA", NOW, fx.err), 0);
    ck_assert_int_eq(cv_store_worker_seen(fx.store, "w1", "0.1.1", 8, "hostA", NOW + 10, fx.err),
                     0);
    ck_assert_int_eq(cv_store_worker_outcome(fx.store, "w1", 0, &failures, fx.err), 0);
    ck_assert_int_eq(cv_store_worker_outcome(fx.store, "w1", 0, &failures, fx.err), 0);
    ck_assert_int_eq(failures, 2);
    ck_assert_int_eq(cv_store_worker_quarantine(fx.store, "w1", "test", NOW, NOW + 600, fx.err),
                     0);
    ck_assert_int_eq(cv_store_worker_outcome(fx.store, "w1", 1, &failures, fx.err), 0);
    ck_assert_int_eq(failures, 0);
    ck_assert_int_eq(cv_store_worker_outcome(fx.store, "ghost", 1, &failures, fx.err),
                     CV_STORE_NOT_FOUND);
    ck_assert_int_eq(cv_store_worker_quarantine(fx.store, "ghost", "test", NOW, NOW + 600, fx.err),
                     CV_STORE_NOT_FOUND);
    /* last_seen only moves forward, and leaves the rest of the row alone. */
    ck_assert_int_eq(cv_store_worker_last_seen(fx.store, "w1", NOW + 30, fx.err), 0);
    ck_assert_int_eq(cv_store_worker_last_seen(fx.store, "w1", NOW + 20, fx.err), 0);
    ck_assert_int_eq(cv_store_worker_last_seen(fx.store, "ghost", NOW, fx.err),
                     CV_STORE_NOT_FOUND);

    cJSON *arr = NULL;
    ck_assert_int_eq(cv_store_workers_list(fx.store, NULL, 0, &arr, fx.err), 0);
    ck_assert_int_eq(cJSON_GetArraySize(arr), 1);
    cJSON *w = cJSON_GetArrayItem(arr, 0);
    ck_assert_str_eq(cJSON_GetObjectItem(w, "version")->valuestring, "0.1.1");
    ck_assert_int_eq(cJSON_GetObjectItem(w, "threads")->valueint, 8);
    ck_assert_double_eq(cJSON_GetObjectItem(w, "first_seen")->valuedouble, NOW);
    ck_assert_double_eq(cJSON_GetObjectItem(w, "last_seen")->valuedouble, NOW + 30);
    ck_assert_int_eq(cJSON_GetObjectItem(w, "trials_done")->valueint, 3);
    ck_assert_int_eq(cJSON_GetObjectItem(w, "quarantined")->valueint, 1);
    cJSON_Delete(arr);
    fx_finish(&fx);
}
END_TEST

START_TEST(test_quarantine_has_a_reason_an_end_and_a_release) {
    fx_t fx;
    fx_init(&fx);
    int failures = -1, flag = -1;
    double until = 0;
    ck_assert_int_eq(cv_store_worker_seen(fx.store, "w1", "0.1.0", 4, "hostA", NOW, fx.err), 0);
    ck_assert_int_eq(cv_store_worker_outcome(fx.store, "w1", 0, &failures, fx.err), 0);
    /* A job's fault counts the trial but leaves the streak alone. */
    ck_assert_int_eq(cv_store_worker_count(fx.store, "w1", fx.err), 0);
    ck_assert_int_eq(cv_store_worker_get(fx.store, "w1", &flag, &failures, NULL, fx.err), 0);
    ck_assert_int_eq(failures, 1);
    ck_assert_int_eq(cv_store_worker_count(fx.store, "ghost", fx.err), CV_STORE_NOT_FOUND);

    ck_assert_int_eq(
        cv_store_worker_quarantine(fx.store, "w1", "disk full", NOW, NOW + 600, fx.err), 0);
    ck_assert_int_eq(cv_store_worker_get(fx.store, "w1", &flag, NULL, &until, fx.err), 0);
    ck_assert_int_eq(flag, 1);
    ck_assert_double_eq(until, NOW + 600);
    cJSON *arr = NULL;
    ck_assert_int_eq(cv_store_workers_list(fx.store, NULL, 0, &arr, fx.err), 0);
    cJSON *w = cJSON_GetArrayItem(arr, 0);
    ck_assert_str_eq(cJSON_GetObjectItem(w, "quarantine_reason")->valuestring, "disk full");
    ck_assert_double_eq(cJSON_GetObjectItem(w, "quarantined_until")->valuedouble, NOW + 600);
    ck_assert_int_eq(cJSON_GetObjectItem(w, "trials_done")->valueint, 2);
    cJSON_Delete(arr);

    ck_assert_int_eq(cv_store_worker_release(fx.store, "w1", fx.err), 0);
    ck_assert_int_eq(cv_store_worker_get(fx.store, "w1", &flag, NULL, &until, fx.err), 0);
    ck_assert_int_eq(flag, 0);
    ck_assert(isnan(until));
    ck_assert_int_eq(cv_store_worker_get(fx.store, "w1", &flag, &failures, NULL, fx.err), 0);
    ck_assert_int_eq(failures, 0);
    ck_assert_int_eq(cv_store_worker_release(fx.store, "ghost", fx.err), CV_STORE_NOT_FOUND);
    ck_assert_int_eq(cv_store_worker_quarantine(fx.store, "ghost", NULL, NOW, NAN, fx.err),
                     CV_STORE_NOT_FOUND);
    fx_finish(&fx);
}
END_TEST

START_TEST(test_first_failure_of_a_job_is_the_earliest_to_end) {
    fx_t fx;
    fx_init(&fx);
    int64_t job = add_job(&fx, "j", CV_STORE_OBJ_DEV_ERROR), t[3];
    int64_t number = -1;
    cv_store_trial_status_t st;
    char text[128];
    add_trials(&fx, job, 0, 3, t);
    ck_assert_int_eq(
        cv_store_job_first_failure(fx.store, job, &number, &st, text, sizeof text, fx.err),
        CV_STORE_NOT_FOUND);
    start(&fx, t[2], "L2");
    put(&fx, t[2], "L2", CV_STORE_TRIAL_FAILED, "line 2: bad label", NOW + 5);
    start(&fx, t[1], "L1");
    put(&fx, t[1], "L1", CV_STORE_TRIAL_FAILED, "later", NOW + 9);
    ck_assert_int_eq(
        cv_store_job_first_failure(fx.store, job, &number, &st, text, sizeof text, fx.err), 0);
    ck_assert_int_eq(number, t[2]);
    ck_assert_int_eq(st, CV_STORE_TRIAL_FAILED);
    ck_assert_str_eq(text, "line 2: bad label");
    fx_finish(&fx);
}
END_TEST

START_TEST(test_status_names_round_trip) {
    for (int i = 0; i < CV_STORE_TRIAL_STATUSES; i++) {
        cv_store_trial_status_t s;
        ck_assert_int_eq(cv_store_trial_status_parse(cv_store_trial_status_name(i), &s), 0);
        ck_assert_int_eq(s, i);
    }
    for (int i = 0; i <= CV_STORE_JOB_FAILED; i++) {
        cv_store_job_status_t s;
        ck_assert_int_eq(cv_store_job_status_parse(cv_store_job_status_name(i), &s), 0);
        ck_assert_int_eq(s, i);
    }
    cv_store_trial_status_t s;
    ck_assert_int_eq(cv_store_trial_status_parse("paused", &s), CV_EINVAL);
    ck_assert_str_eq(cv_store_objective_name(CV_STORE_OBJ_DEV_COST), "dev_cost");
}
END_TEST

static Suite *store_suite(void) {
    Suite *s = suite_create("store");
    TCase *open = tcase_create("open");
    tcase_add_test(open, test_fresh_file_migrates_to_current_version);
    tcase_add_test(open, test_reopen_is_idempotent);
    tcase_add_test(open, test_newer_schema_version_is_refused);
    tcase_add_test(open, test_garbage_file_is_refused);
    tcase_add_test(open, test_database_of_another_application_is_refused);
    tcase_add_test(open, test_missing_directory_is_an_io_error);
    tcase_add_test(open, test_close_accepts_null);
    suite_add_tcase(s, open);

    TCase *lease = tcase_create("lease");
    tcase_add_test(lease, test_result_under_stale_lease_is_not_applied);
    tcase_add_test(lease, test_result_under_current_lease_is_applied_once);
    tcase_add_test(lease, test_result_for_unknown_trial_or_bad_status_is_invalid);
    tcase_add_test(lease, test_requeue_voids_the_old_lease);
    tcase_add_test(lease, test_lost_trial_is_final_and_keeps_its_worker);
    tcase_add_test(lease, test_start_requires_a_queued_trial);
    tcase_add_test(lease, test_nonfinite_metrics_are_stored_as_null);
    suite_add_tcase(s, lease);

    TCase *trials = tcase_create("trials");
    tcase_add_test(trials, test_duplicate_config_key_in_a_job_refuses_the_batch);
    tcase_add_test(trials, test_same_config_key_is_allowed_in_another_job);
    tcase_add_test(trials, test_trials_for_an_unknown_job_are_refused);
    tcase_add_test(trials, test_invalid_json_is_refused);
    tcase_add_test(trials, test_top_k_returns_the_true_minimum_first);
    tcase_add_test(trials, test_top_k_follows_the_objective);
    tcase_add_test(trials, test_ties_go_to_the_lower_dev_cost_then_the_smaller_network);
    tcase_add_test(trials, test_recover_requeues_exactly_the_running_trials);
    tcase_add_test(trials, test_cancel_job_cancels_only_unfinished_trials);
    suite_add_tcase(s, trials);

    TCase *history = tcase_create("attempts");
    tcase_add_test(history, test_fresh_file_has_the_current_schema_with_the_attempts_table);
    tcase_add_test(history, test_version_1_file_migrates_and_keeps_its_rows);
    tcase_add_test(history, test_version_5_file_migrates_and_takes_pruned_results);
    tcase_add_test(history, test_version_7_file_migrates_and_nudges_keep_their_first_epoch);
    tcase_add_test(history, test_pruned_result_is_stored_like_a_completed_one_but_does_not_rank);
    tcase_add_test(history, test_version_2_file_gains_n_params_and_keeps_its_results);
    tcase_add_test(history,
                   test_version_2_file_migrates_and_restart_losses_become_interrupted);
    tcase_add_test(history, test_completed_result_writes_one_completed_attempt);
    tcase_add_test(history, test_failed_result_writes_a_failed_attempt_with_its_error);
    tcase_add_test(history, test_diverged_result_writes_a_diverged_attempt);
    tcase_add_test(history, test_stale_result_writes_no_attempt);
    tcase_add_test(history, test_requeue_writes_a_lost_attempt_and_the_next_lease_a_new_one);
    tcase_add_test(history, test_requeue_under_a_stale_lease_writes_no_attempt);
    tcase_add_test(history, test_requeue_to_failed_records_lost_n_leases);
    tcase_add_test(history, test_recover_writes_an_interrupted_attempt_with_the_restart_reason);
    tcase_add_test(history, test_interrupt_requeues_without_counting_the_attempt);
    tcase_add_test(history, test_trial_status_reads_one_trial);
    tcase_add_test(history, test_cancel_writes_a_cancelled_attempt_for_running_trials_only);
    tcase_add_test(history, test_attempt_stale_turns_only_a_lost_attempt_stale);
    tcase_add_test(history, test_retry_requeues_a_failed_trial_and_keeps_its_history);
    tcase_add_test(history, test_retry_refuses_a_trial_that_is_not_failed);
    tcase_add_test(history, test_failed_streak_ends_at_the_newest_result_that_did_not_fail);
    suite_add_tcase(s, history);

    TCase *txn = tcase_create("transactions");
    tcase_add_test(txn, test_rollback_leaves_nothing_behind);
    tcase_add_test(txn, test_frozen_store_after_a_failed_group_writes_nothing_more);
    tcase_add_test(txn, test_group_commit_stores_every_result);
    tcase_add_test(txn, test_failed_operation_in_a_group_undoes_only_itself);
    tcase_add_test(txn, test_groups_do_not_nest);
    suite_add_tcase(s, txn);

    TCase *faults = tcase_create("faults");
    tcase_set_timeout(faults, 60);
    tcase_add_test(faults, test_write_through_a_readonly_store_fails);
    tcase_add_test(faults, test_readonly_store_sees_committed_rows);
    tcase_add_test(faults, test_disk_full_is_reported_and_committed_rows_survive);
    tcase_add_test(faults, test_io_faults_never_half_apply_a_group);
    tcase_add_test(faults, test_deferred_sync_leaves_the_disk_to_sync_and_checkpoint);
    tcase_add_test(faults, test_second_writer_gets_busy_after_the_timeout);
    tcase_add_test(faults, test_readonly_open_needs_a_migrated_store);
    suite_add_tcase(s, faults);

    TCase *queries = tcase_create("queries");
    tcase_add_test(queries, test_job_get_reports_counts_rounds_and_best);
    tcase_add_test(queries, test_job_without_results_has_null_best);
    tcase_add_test(queries, test_unknown_ids_are_not_found);
    tcase_add_test(queries, test_trials_list_is_in_submission_order_and_pages);
    tcase_add_test(queries, test_ranked_pages_resume_after_the_last_key);
    tcase_add_test(queries, test_jobs_and_workers_pages_start_after_a_key);
    tcase_add_test(queries, test_jobs_list_carries_progress_best_and_strategy);
    tcase_add_test(queries, test_trial_get_returns_the_curve_in_epoch_order);
    tcase_add_test(queries, test_trials_each_visits_in_submission_order_with_the_objective);
    tcase_add_test(queries, test_trials_each_gives_running_trials_their_lease_and_interruptions);
    tcase_add_test(queries, test_jobs_each_can_skip_finished_jobs);
    tcase_add_test(queries, test_version_8_file_migrates_with_its_jobs_unplanned);
    tcase_add_test(queries, test_workers_track_outcomes_and_quarantine);
    tcase_add_test(queries, test_quarantine_has_a_reason_an_end_and_a_release);
    tcase_add_test(queries, test_first_failure_of_a_job_is_the_earliest_to_end);
    tcase_add_test(queries, test_status_names_round_trip);
    tcase_add_test(queries, test_delete_job_removes_every_row_of_it_and_nothing_else);
    tcase_add_test(queries, test_one_job_is_visited_whatever_its_status_and_its_spec_replaced);
    suite_add_tcase(s, queries);
    return s;
}

CV_TEST_MAIN(store_suite)
