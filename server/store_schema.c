/* The store's schema and its migrations: the identity checks of a database file (a caviar store
 * of a version this code understands), the connection's settings (WAL, durability, size cap),
 * and the migrations, applied in order, each in its own transaction. */

#include "server/store_internal.h"

#include <stdio.h>

#include <sqlite3.h>

#include "common/err.h"

/* Migration i (0-based) takes the schema from user_version i to i + 1. Append only: a released
 * migration is never edited, since databases in the field already ran it. */
static const char *const k_migrations[] = {
    /* 1: the initial schema. */
    "CREATE TABLE jobs ("
    "  id          INTEGER PRIMARY KEY,"
    "  name        TEXT NOT NULL,"
    "  objective   TEXT NOT NULL CHECK (objective IN ('dev_error', 'dev_cost')),"
    "  spec        TEXT NOT NULL CHECK (json_valid(spec)),"
    "  status      TEXT NOT NULL DEFAULT 'running'"
    "              CHECK (status IN ('running', 'completed', 'cancelled', 'failed')),"
    "  round       INTEGER NOT NULL DEFAULT 0,"
    "  region      TEXT CHECK (region IS NULL OR json_valid(region)),"
    "  created_at  REAL NOT NULL,"
    "  finished_at REAL,"
    "  error       TEXT,"
    "  test_result TEXT CHECK (test_result IS NULL OR json_valid(test_result))"
    ");"
    "CREATE TABLE rounds ("
    "  job_id     INTEGER NOT NULL REFERENCES jobs (id),"
    "  round      INTEGER NOT NULL,"
    "  size       INTEGER NOT NULL CHECK (size >= 0),"
    "  region     TEXT NOT NULL CHECK (json_valid(region)),"
    "  created_at REAL NOT NULL,"
    "  PRIMARY KEY (job_id, round)"
    ") WITHOUT ROWID;"
    "CREATE TABLE trials ("
    "  id                  INTEGER PRIMARY KEY,"
    "  job_id              INTEGER NOT NULL REFERENCES jobs (id),"
    "  number              INTEGER NOT NULL CHECK (number >= 0),"
    "  round               INTEGER NOT NULL,"
    "  params              TEXT NOT NULL CHECK (json_valid(params)),"
    "  config_key          TEXT NOT NULL,"
    "  spec                TEXT NOT NULL CHECK (json_valid(spec)),"
    "  status              TEXT NOT NULL DEFAULT 'queued' CHECK (status IN ('queued', 'running',"
    "                      'completed', 'failed', 'diverged', 'lost', 'cancelled')),"
    "  attempts            INTEGER NOT NULL DEFAULT 0,"
    "  worker_id           TEXT,"
    "  lease_token         TEXT,"
    "  queued_at           REAL NOT NULL,"
    "  started_at          REAL,"
    "  finished_at         REAL,"
    "  dev_error           REAL,"
    "  dev_cost            REAL,"
    "  train_error         REAL,"
    "  train_cost          REAL,"
    "  train_cost_reg      REAL,"
    "  best_epoch          INTEGER,"
    "  epochs_run          INTEGER,"
    "  diagnosis           TEXT,"
    "  examples_per_second REAL,"
    "  error               TEXT,"
    "  model_path          TEXT,"
    "  UNIQUE (job_id, config_key),"
    "  UNIQUE (job_id, number)" /* its index also serves submission order */
    ");"
    "CREATE INDEX trials_by_status ON trials (job_id, status);"
    "CREATE INDEX trials_by_dev_error ON trials (job_id, dev_error, number)"
    "  WHERE status = 'completed';"
    "CREATE INDEX trials_by_dev_cost ON trials (job_id, dev_cost, number)"
    "  WHERE status = 'completed';"
    "CREATE TABLE curves (" /* the primary key is the by-trial index */
    "  trial_id       INTEGER NOT NULL REFERENCES trials (id),"
    "  epoch          INTEGER NOT NULL CHECK (epoch >= 0),"
    "  train_cost     REAL,"
    "  train_cost_reg REAL,"
    "  dev_cost       REAL,"
    "  train_error    REAL,"
    "  dev_error      REAL,"
    "  learning_rate  REAL,"
    "  seconds        REAL,"
    "  PRIMARY KEY (trial_id, epoch)"
    ") WITHOUT ROWID;"
    "CREATE TABLE workers ("
    "  id                   TEXT PRIMARY KEY,"
    "  version              TEXT,"
    "  threads              INTEGER,"
    "  host                 TEXT,"
    "  first_seen           REAL NOT NULL,"
    "  last_seen            REAL NOT NULL,"
    "  trials_done          INTEGER NOT NULL DEFAULT 0,"
    "  consecutive_failures INTEGER NOT NULL DEFAULT 0,"
    "  quarantined          INTEGER NOT NULL DEFAULT 0 CHECK (quarantined IN (0, 1))"
    ") WITHOUT ROWID;"
    "PRAGMA application_id = 1128355410;", /* CV_STORE_APPLICATION_ID in decimal */
    /* 2: one row per lease a trial held, written when the lease ends. */
    "CREATE TABLE trial_attempts ("
    "  trial_id   INTEGER NOT NULL REFERENCES trials (id),"
    "  attempt    INTEGER NOT NULL CHECK (attempt >= 1),"
    "  worker_id  TEXT,"
    "  lease      TEXT,"
    "  started_at REAL,"
    "  ended_at   REAL NOT NULL,"
    "  outcome    TEXT NOT NULL CHECK (outcome IN ('completed', 'failed', 'diverged', 'lost',"
    "             'stale', 'cancelled')),"
    "  error      TEXT,"
    "  PRIMARY KEY (trial_id, attempt)"
    ") WITHOUT ROWID;"
    "CREATE INDEX trial_attempts_by_worker ON trial_attempts (worker_id);",
    /* 3: the size of a trial's network, the last tie-breaker between equally good trials, and
     * ranking indexes that hold every key of the order. */
    "ALTER TABLE trials ADD COLUMN n_params INTEGER CHECK (n_params IS NULL OR n_params > 0);"
    "DROP INDEX trials_by_dev_error;"
    "CREATE INDEX trials_by_dev_error ON trials (job_id, dev_error, dev_cost, n_params, number)"
    "  WHERE status = 'completed';"
    "DROP INDEX trials_by_dev_cost;"
    "CREATE INDEX trials_by_dev_cost ON trials (job_id, dev_cost, dev_error, n_params, number)"
    "  WHERE status = 'completed';",
    /* 4: why and until when a worker is quarantined (NULL until: until released). */
    "ALTER TABLE workers ADD COLUMN quarantine_reason TEXT;"
    "ALTER TABLE workers ADD COLUMN quarantined_at REAL;"
    "ALTER TABLE workers ADD COLUMN quarantined_until REAL;"
    /* Older versions counted the failures a job caused against the workers that ran it, so
     * their quarantines are lifted rather than made permanent. */
    "UPDATE workers SET quarantined = 0, consecutive_failures = 0 WHERE quarantined = 1;",
    /* 5: the outcome 'interrupted', a lease ended by a coordinator restart (it does not count
     * toward the trial's attempts limit). SQLite cannot change a CHECK constraint in place, so
     * the table is rebuilt; attempts that earlier versions recorded as lost to a restart become
     * interrupted. */
    "CREATE TABLE trial_attempts_v5 ("
    "  trial_id   INTEGER NOT NULL REFERENCES trials (id),"
    "  attempt    INTEGER NOT NULL CHECK (attempt >= 1),"
    "  worker_id  TEXT,"
    "  lease      TEXT,"
    "  started_at REAL,"
    "  ended_at   REAL NOT NULL,"
    "  outcome    TEXT NOT NULL CHECK (outcome IN ('completed', 'failed', 'diverged', 'lost',"
    "             'stale', 'cancelled', 'interrupted')),"
    "  error      TEXT,"
    "  PRIMARY KEY (trial_id, attempt)"
    ") WITHOUT ROWID;"
    "INSERT INTO trial_attempts_v5 (trial_id, attempt, worker_id, lease, started_at, ended_at,"
    "  outcome, error) SELECT trial_id, attempt, worker_id, lease, started_at, ended_at,"
    "  CASE WHEN outcome = 'lost' AND error = 'the coordinator restarted' THEN 'interrupted'"
    "  ELSE outcome END, error FROM trial_attempts;"
    "DROP TABLE trial_attempts;"
    "ALTER TABLE trial_attempts_v5 RENAME TO trial_attempts;"
    "CREATE INDEX trial_attempts_by_worker ON trial_attempts (worker_id);",
    /* 6: the final trial status and attempt outcome 'pruned' (the pruner stopped the trial; it
     * reports its best epoch so far, like a completed one). Both tables are rebuilt for their
     * CHECK constraints, with the same columns, rows and indexes; migrate() runs this with
     * foreign keys off, so that curves and attempts keep pointing at the trials they had. */
    "CREATE TABLE trials_v6 ("
    "  id                  INTEGER PRIMARY KEY,"
    "  job_id              INTEGER NOT NULL REFERENCES jobs (id),"
    "  number              INTEGER NOT NULL CHECK (number >= 0),"
    "  round               INTEGER NOT NULL,"
    "  params              TEXT NOT NULL CHECK (json_valid(params)),"
    "  config_key          TEXT NOT NULL,"
    "  spec                TEXT NOT NULL CHECK (json_valid(spec)),"
    "  status              TEXT NOT NULL DEFAULT 'queued' CHECK (status IN ('queued', 'running',"
    "                      'completed', 'failed', 'diverged', 'lost', 'cancelled', 'pruned')),"
    "  attempts            INTEGER NOT NULL DEFAULT 0,"
    "  worker_id           TEXT,"
    "  lease_token         TEXT,"
    "  queued_at           REAL NOT NULL,"
    "  started_at          REAL,"
    "  finished_at         REAL,"
    "  dev_error           REAL,"
    "  dev_cost            REAL,"
    "  train_error         REAL,"
    "  train_cost          REAL,"
    "  train_cost_reg      REAL,"
    "  best_epoch          INTEGER,"
    "  epochs_run          INTEGER,"
    "  diagnosis           TEXT,"
    "  examples_per_second REAL,"
    "  error               TEXT,"
    "  model_path          TEXT,"
    "  n_params            INTEGER CHECK (n_params IS NULL OR n_params > 0),"
    "  UNIQUE (job_id, config_key),"
    "  UNIQUE (job_id, number)"
    ");"
    "INSERT INTO trials_v6 (id, job_id, number, round, params, config_key, spec, status,"
    "  attempts, worker_id, lease_token, queued_at, started_at, finished_at, dev_error, dev_cost,"
    "  train_error, train_cost, train_cost_reg, best_epoch, epochs_run, diagnosis,"
    "  examples_per_second, error, model_path, n_params)"
    "  SELECT id, job_id, number, round, params, config_key, spec, status, attempts, worker_id,"
    "  lease_token, queued_at, started_at, finished_at, dev_error, dev_cost, train_error,"
    "  train_cost, train_cost_reg, best_epoch, epochs_run, diagnosis, examples_per_second, error,"
    "  model_path, n_params FROM trials;"
    "DROP TABLE trials;"
    "ALTER TABLE trials_v6 RENAME TO trials;"
    "CREATE INDEX trials_by_status ON trials (job_id, status);"
    "CREATE INDEX trials_by_dev_error ON trials (job_id, dev_error, dev_cost, n_params, number)"
    "  WHERE status = 'completed';"
    "CREATE INDEX trials_by_dev_cost ON trials (job_id, dev_cost, dev_error, n_params, number)"
    "  WHERE status = 'completed';"
    "CREATE TABLE trial_attempts_v6 ("
    "  trial_id   INTEGER NOT NULL REFERENCES trials (id),"
    "  attempt    INTEGER NOT NULL CHECK (attempt >= 1),"
    "  worker_id  TEXT,"
    "  lease      TEXT,"
    "  started_at REAL,"
    "  ended_at   REAL NOT NULL,"
    "  outcome    TEXT NOT NULL CHECK (outcome IN ('completed', 'failed', 'diverged', 'lost',"
    "             'stale', 'cancelled', 'interrupted', 'pruned')),"
    "  error      TEXT,"
    "  PRIMARY KEY (trial_id, attempt)"
    ") WITHOUT ROWID;"
    "INSERT INTO trial_attempts_v6 (trial_id, attempt, worker_id, lease, started_at, ended_at,"
    "  outcome, error) SELECT trial_id, attempt, worker_id, lease, started_at, ended_at, outcome,"
    "  error FROM trial_attempts;"
    "DROP TABLE trial_attempts;"
    "ALTER TABLE trial_attempts_v6 RENAME TO trial_attempts;"
    "CREATE INDEX trial_attempts_by_worker ON trial_attempts (worker_id);",
    /* 7: the pruner's decisions, in the order it made them (seq), so that a restarted
     * coordinator replays them and decides nothing twice; and each job's worker usage. */
    "CREATE TABLE decisions ("
    "  seq        INTEGER PRIMARY KEY,"
    "  job_id     INTEGER NOT NULL REFERENCES jobs (id),"
    "  trial_id   INTEGER NOT NULL REFERENCES trials (id),"
    "  number     INTEGER NOT NULL CHECK (number >= 0),"
    "  epoch      INTEGER NOT NULL CHECK (epoch >= 1),"
    "  value      REAL,"
    "  stopped    INTEGER NOT NULL CHECK (stopped IN (0, 1)),"
    "  decided_at REAL NOT NULL,"
    "  UNIQUE (trial_id, epoch)"
    ");"
    "CREATE INDEX decisions_by_job ON decisions (job_id, seq);"
    "ALTER TABLE jobs ADD COLUMN busy_seconds REAL NOT NULL DEFAULT 0;"
    "ALTER TABLE jobs ADD COLUMN available_seconds REAL NOT NULL DEFAULT 0;",
    /* 8: nudges (panda mode): new hyperparameter values for a running trial, numbered from 1
     * per trial in the order they were made, with the epoch they took effect at once its worker
     * said so (NULL before). */
    "CREATE TABLE nudges ("
    "  trial_id    INTEGER NOT NULL REFERENCES trials (id),"
    "  seq         INTEGER NOT NULL CHECK (seq >= 1),"
    "  values_json TEXT NOT NULL,"
    "  epoch       INTEGER CHECK (epoch >= 1),"
    "  created_at  REAL NOT NULL,"
    "  applied_at  REAL,"
    "  PRIMARY KEY (trial_id, seq)"
    ");",
    /* 9: what each job's spec plans (cv_store_job_plan_t), written with the spec from the parsed
     * spec, so that the jobs list does not need the spec's defaults. The store does not parse
     * specs (the defaults belong to the job spec module), so the jobs stored before this version
     * keep NULL here until the coordinator fills them in from their specs at start-up
     * (sched_recovery.c, cv_store_job_set_plan). */
    "ALTER TABLE jobs ADD COLUMN sampler TEXT;"
    "ALTER TABLE jobs ADD COLUMN pruner TEXT;"
    "ALTER TABLE jobs ADD COLUMN rounds_planned INTEGER CHECK (rounds_planned >= 1);",
};

_Static_assert(sizeof k_migrations / sizeof k_migrations[0] == CV_STORE_SCHEMA_VERSION,
               "one migration per schema version");
_Static_assert(CV_STORE_APPLICATION_ID == 1128355410, "application_id in migration 1");

/* Runs a one-shot statement at open time that returns one integer (a pragma). */
static int pragma_int(sqlite3 *db, const char *sql, int64_t *out, const char *path, char *err) {
    sqlite3_stmt *q = NULL;
    int rc = sqlite3_prepare_v2(db, sql, -1, &q, NULL);
    if (rc == SQLITE_OK) rc = sqlite3_step(q);
    int ret = 0;
    if (rc == SQLITE_ROW) {
        *out = sqlite3_column_int64(q, 0);
    } else {
        ret = cv_errf(err, store_sql_code(rc), "store: %s: %s", path, sqlite3_errmsg(db));
        if ((rc & 0xff) == SQLITE_NOTADB)
            ret = cv_errf(err, CV_EFORMAT, "store: %s is not a SQLite database (%s)", path,
                          sqlite3_errmsg(db));
    }
    sqlite3_finalize(q);
    return ret;
}

/* Refuses files that are not caviar stores and schemas newer than this code; writes the
 * schema's current version into *version. */
int store_check_identity(sqlite3 *db, const char *path, int64_t *version, char *err) {
    int64_t app_id = 0, objects = 0;
    int ret = pragma_int(db, "PRAGMA application_id", &app_id, path, err);
    if (ret == 0) ret = pragma_int(db, "PRAGMA user_version", version, path, err);
    if (ret == 0) ret = pragma_int(db, "SELECT count(*) FROM sqlite_schema", &objects, path, err);
    if (ret != 0) return ret;
    if (app_id != 0 && app_id != CV_STORE_APPLICATION_ID)
        return cv_errf(err, CV_EFORMAT,
                       "store: %s belongs to another application (application_id %lld)", path,
                       (long long)app_id);
    if (app_id == 0 && *version == 0 && objects > 0)
        return cv_errf(err, CV_EFORMAT,
                       "store: %s is a SQLite database with tables but not a caviar store", path);
    if (*version > CV_STORE_SCHEMA_VERSION)
        return cv_errf(err, CV_EFORMAT,
                       "store: %s has schema version %lld, newer than the %d this program "
                       "understands; use a newer caviard or another file",
                       path, (long long)*version, CV_STORE_SCHEMA_VERSION);
    return 0;
}

/* Sets the connection's journal, durability, integrity and size settings. */
int store_configure(sqlite3 *db, const cv_store_options_t *opt, const char *path, char *err) {
    sqlite3_stmt *q = NULL;
    int rc = sqlite3_prepare_v2(db, "PRAGMA journal_mode = WAL", -1, &q, NULL);
    if (rc == SQLITE_OK) rc = sqlite3_step(q);
    int wal =
        rc == SQLITE_ROW && sqlite3_stricmp((const char *)sqlite3_column_text(q, 0), "wal") == 0;
    int ret = 0;
    if (rc != SQLITE_ROW)
        ret = cv_errf(err, store_sql_code(rc), "store: %s: setting WAL mode: %s", path,
                      sqlite3_errmsg(db));
    else if (!wal)
        ret = cv_errf(err, CV_EIO, "store: %s: the file system refused WAL mode", path);
    sqlite3_finalize(q);
    if (ret != 0) return ret;

    /* With deferred_sync the commit leaves the disk sync and the checkpoints to store_sync.c. */
    const char *sync = opt->synchronous_normal || opt->deferred_sync
                           ? "PRAGMA synchronous = NORMAL"
                           : "PRAGMA synchronous = FULL";
    rc = sqlite3_exec(db, sync, NULL, NULL, NULL);
    if (rc == SQLITE_OK && opt->deferred_sync)
        rc = sqlite3_exec(db, "PRAGMA wal_autocheckpoint = 0", NULL, NULL, NULL);
    if (rc == SQLITE_OK) rc = sqlite3_exec(db, "PRAGMA foreign_keys = ON", NULL, NULL, NULL);
    if (rc != SQLITE_OK)
        return cv_errf(err, store_sql_code(rc), "store: %s: %s", path, sqlite3_errmsg(db));

    if (opt->max_bytes > 0) {
        int64_t page_size = 0, pages = 0;
        ret = pragma_int(db, "PRAGMA page_size", &page_size, path, err);
        if (ret != 0) return ret;
        if (page_size <= 0) return cv_errf(err, CV_EFORMAT, "store: %s: page size 0", path);
        char sql[64];
        snprintf(sql, sizeof sql, "PRAGMA max_page_count = %lld",
                 (long long)((opt->max_bytes + page_size - 1) / page_size));
        ret = pragma_int(db, sql, &pages, path, err);
        if (ret != 0) return ret;
    }
    return 0;
}

/* 1 when the database holds a row whose foreign key points nowhere (or the check failed). */
static int foreign_keys_broken(sqlite3 *db) {
    sqlite3_stmt *q = NULL;
    int rc = sqlite3_prepare_v2(db, "PRAGMA foreign_key_check", -1, &q, NULL);
    if (rc == SQLITE_OK) rc = sqlite3_step(q);
    sqlite3_finalize(q);
    return rc != SQLITE_DONE;
}

static int migrate_steps(sqlite3 *db, int64_t from, const char *path, char *err);

/* Applies migrations from version `from` on, each in its own immediate transaction. The version
 * is read again inside the transaction so that a concurrent opener's migration is not redone.
 * Foreign keys are off meanwhile (SQLite's way to rebuild a table that others refer to: it
 * cannot be switched inside a transaction), and each migration commits only when every foreign
 * key still points at a row. */
int store_migrate(sqlite3 *db, int64_t from, const char *path, char *err) {
    if (from >= CV_STORE_SCHEMA_VERSION) return 0;
    int rc = sqlite3_exec(db, "PRAGMA foreign_keys = OFF", NULL, NULL, NULL);
    if (rc != SQLITE_OK)
        return cv_errf(err, store_sql_code(rc), "store: %s: %s", path, sqlite3_errmsg(db));
    int ret = migrate_steps(db, from, path, err);
    rc = sqlite3_exec(db, "PRAGMA foreign_keys = ON", NULL, NULL, NULL);
    if (ret == 0 && rc != SQLITE_OK)
        ret = cv_errf(err, store_sql_code(rc), "store: %s: %s", path, sqlite3_errmsg(db));
    return ret;
}

static int migrate_steps(sqlite3 *db, int64_t from, const char *path, char *err) {
    for (int64_t v = from + 1; v <= CV_STORE_SCHEMA_VERSION; v++) {
        int rc = sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL);
        if (rc != SQLITE_OK)
            return cv_errf(err, store_sql_code(rc), "store: %s: migration to version %lld: %s",
                           path, (long long)v, sqlite3_errmsg(db));
        int64_t now_at = 0;
        int ret = pragma_int(db, "PRAGMA user_version", &now_at, path, err);
        if (ret == 0 && now_at < v) {
            char bump[64];
            snprintf(bump, sizeof bump, "PRAGMA user_version = %lld", (long long)v);
            rc = sqlite3_exec(db, k_migrations[v - 1], NULL, NULL, NULL);
            if (rc == SQLITE_OK && foreign_keys_broken(db)) rc = SQLITE_CONSTRAINT_FOREIGNKEY;
            if (rc == SQLITE_OK) rc = sqlite3_exec(db, bump, NULL, NULL, NULL);
            if (rc == SQLITE_OK) rc = sqlite3_exec(db, "COMMIT", NULL, NULL, NULL);
            if (rc != SQLITE_OK)
                ret = cv_errf(err, store_sql_code(rc), "store: %s: migration to version %lld: %s",
                              path, (long long)v, sqlite3_errmsg(db));
        } else if (ret == 0) {
            rc = sqlite3_exec(db, "COMMIT", NULL, NULL, NULL);
            if (rc != SQLITE_OK)
                ret = cv_errf(err, store_sql_code(rc), "store: %s: %s", path, sqlite3_errmsg(db));
        }
        if (ret != 0) {
            if (!sqlite3_get_autocommit(db)) sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
            return ret;
        }
    }
    return 0;
}
