/* The coordinator's SQLite store: schema migrations, the prepared-statement catalogue, write
 * operations (each atomic, grouped by cv_store_begin/commit) and the JSON queries of the API.
 * See store.h for the contract and the trial lifecycle. */
#include "server/store.h"
#include "server/store_history.h" /* cv_store_sqlite, defined here */

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

#include "common/err.h"

#define DEFAULT_BUSY_TIMEOUT_MS 5000

/* ---- Schema ------------------------------------------------------------------------------ */

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
};

_Static_assert(sizeof k_migrations / sizeof k_migrations[0] == CV_STORE_SCHEMA_VERSION,
               "one migration per schema version");
_Static_assert(CV_STORE_APPLICATION_ID == 1128355410, "application_id in migration 1");

/* Unix seconds in SQL, for the one write whose caller supplies no time (cv_store_recover). */
#define SQL_NOW "((julianday('now') - 2440587.5) * 86400.0)"

/* The reason written with every interrupted attempt. */
#define RESTART_REASON "the coordinator restarted"

/* The leases of trial ?1 that count toward its attempts limit: all but the interrupted ones. */
#define COUNTED_ATTEMPTS                                                                           \
    "(attempts - (SELECT count(*) FROM trial_attempts AS a WHERE a.trial_id = ?1 "                 \
    "AND a.outcome = 'interrupted'))"

/* Records the end of a running trial's current lease as an attempt, before the statement that
 * ends it clears the lease: ?1 trial, ?2 lease token or NULL (any), ?3 time, ?4 outcome,
 * ?5 error. The row of an attempt is written once; a second end of the same attempt replaces it. */
#define ATTEMPT_END_SQL                                                                            \
    "INSERT OR REPLACE INTO trial_attempts (trial_id, attempt, worker_id, lease, started_at, "      \
    "ended_at, outcome, error) SELECT id, attempts, worker_id, lease_token, started_at, ?3, ?4, "  \
    "?5 FROM trials WHERE id = ?1 AND status = 'running' AND attempts >= 1 "                      \
    "AND (?2 IS NULL OR lease_token = ?2)"

/* ---- Statement catalogue ------------------------------------------------------------------ */

/* The columns of a trial in API replies (never the lease token). */
#define TRIAL_COLS                                                                                 \
    "id, job_id, number, round, status, attempts, params, worker_id, queued_at, started_at, "      \
    "finished_at, dev_error, dev_cost, train_error, train_cost, train_cost_reg, best_epoch, "      \
    "epochs_run, diagnosis, examples_per_second, error, model_path, n_params"

/* The order of "best": the objective, then the other dev-set measure (many trials tie on the
 * dev error of a small dev set, and the lower dev cost is the more confident model), then the
 * smaller network (n_params; unknown sizes last), then the earlier trial. */
/* The ranking of completed trials: the objective, then the other dev measure, then the smaller
 * network, then the earlier trial. A missing second measure or size ranks last (ifnull to the
 * largest value), so that the whole key compares as one row value for keyset pages. */
#define RANK_KEY_DEV_ERROR                                                                        \
    "(dev_error, ifnull(dev_cost, 9e999), ifnull(n_params, 9223372036854775807), number)"
#define RANK_KEY_DEV_COST                                                                         \
    "(dev_cost, ifnull(dev_error, 9e999), ifnull(n_params, 9223372036854775807), number)"
#define RANK_BY_DEV_ERROR                                                                         \
    "dev_error, ifnull(dev_cost, 9e999), ifnull(n_params, 9223372036854775807), number"
#define RANK_BY_DEV_COST                                                                          \
    "dev_cost, ifnull(dev_error, 9e999), ifnull(n_params, 9223372036854775807), number"

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
    ST_COUNT
};

static const char *const k_sql[ST_COUNT] = {
    [ST_BEGIN] = "BEGIN IMMEDIATE",
    [ST_COMMIT] = "COMMIT",
    [ST_ROLLBACK] = "ROLLBACK",
    [ST_SAVEPOINT] = "SAVEPOINT cv_op",
    [ST_RELEASE] = "RELEASE cv_op",
    [ST_ROLLBACK_TO] = "ROLLBACK TO cv_op",
    [ST_JOB_INSERT] = "INSERT INTO jobs (name, objective, spec, region, created_at) "
                      "VALUES (?1, ?2, ?3, ?4, ?5)",
    [ST_JOB_SET_STATUS] = "UPDATE jobs SET status = ?2, error = ?3, "
                          "finished_at = CASE WHEN ?2 = 'running' THEN NULL ELSE ?4 END "
                          "WHERE id = ?1",
    [ST_JOB_SET_ROUND] = "UPDATE jobs SET round = ?2, region = ?3 WHERE id = ?1",
    [ST_JOB_SET_TEST] = "UPDATE jobs SET test_result = ?2 WHERE id = ?1",
    [ST_JOB_CANCEL] = "UPDATE jobs SET status = 'cancelled', finished_at = ?2 "
                      "WHERE id = ?1 AND status = 'running'",
    [ST_JOB_CANCEL_TRIALS] = "UPDATE trials SET status = 'cancelled', lease_token = NULL, "
                             "finished_at = ?2 "
                             "WHERE job_id = ?1 AND status IN ('queued', 'running')",
    [ST_JOB_OBJECTIVE] = "SELECT objective, status FROM jobs WHERE id = ?1",
    [ST_ROUND_INSERT] = "INSERT INTO rounds (job_id, round, size, region, created_at) "
                        "VALUES (?1, ?2, ?3, ?4, ?5)",
    [ST_TRIAL_INSERT] = "INSERT INTO trials (job_id, number, round, params, config_key, spec, "
                        "queued_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    [ST_TRIAL_START] = "UPDATE trials SET status = 'running', worker_id = ?2, lease_token = ?3, "
                       "started_at = ?4, finished_at = NULL, attempts = attempts + 1 "
                       "WHERE id = ?1 AND status = 'queued'",
    [ST_CURVE_CLEAR] = "DELETE FROM curves WHERE trial_id = ?1",
    [ST_TRIAL_RESULT] = "UPDATE trials SET status = ?3, finished_at = ?4, dev_error = ?5, "
                        "dev_cost = ?6, train_error = ?7, train_cost = ?8, train_cost_reg = ?9, "
                        "best_epoch = ?10, epochs_run = ?11, diagnosis = ?12, "
                        "examples_per_second = ?13, error = ?14, model_path = ?15, "
                        "n_params = ?16, lease_token = NULL "
                        "WHERE id = ?1 AND status = 'running' AND lease_token = ?2",
    [ST_TRIAL_STATUS] = "SELECT status FROM trials WHERE id = ?1",
    [ST_TRIAL_LEASED] = "SELECT 1 FROM trials WHERE id = ?1 AND status = 'running' "
                        "AND lease_token = ?2",
    [ST_CURVE_INSERT] = "INSERT OR REPLACE INTO curves (trial_id, epoch, train_cost, "
                        "train_cost_reg, dev_cost, train_error, dev_error, learning_rate, "
                        "seconds) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
    [ST_TRIAL_REQUEUE] = "UPDATE trials SET status = ?3, lease_token = NULL, "
                         "worker_id = CASE WHEN ?3 = 'queued' THEN NULL ELSE worker_id END, "
                         "started_at = CASE WHEN ?3 = 'queued' THEN NULL ELSE started_at END, "
                         "finished_at = CASE WHEN ?3 = 'queued' THEN NULL ELSE ?4 END, "
                         "error = CASE WHEN ?3 = 'failed' THEN 'lost ' || " COUNTED_ATTEMPTS
                         " || ' leases' "
                         "ELSE error END "
                         "WHERE id = ?1 AND status = 'running' "
                         "AND (?2 IS NULL OR lease_token = ?2)",
    [ST_TRIAL_RETRY] = "UPDATE trials SET status = 'queued', worker_id = NULL, lease_token = NULL, "
                       "started_at = NULL, finished_at = NULL, dev_error = NULL, dev_cost = NULL, "
                       "train_error = NULL, train_cost = NULL, train_cost_reg = NULL, "
                       "best_epoch = NULL, epochs_run = NULL, diagnosis = NULL, "
                       "examples_per_second = NULL, error = NULL, model_path = NULL, "
                       "n_params = NULL WHERE id = ?1 AND status = 'failed'",
    [ST_RECOVER] = "UPDATE trials SET status = 'queued', worker_id = NULL, lease_token = NULL, "
                   "started_at = NULL WHERE status = 'running'",
    [ST_TRIAL_ID] = "SELECT id FROM trials WHERE job_id = ?1 AND number = ?2",
    [ST_WORKER_SEEN] = "INSERT INTO workers (id, version, threads, host, first_seen, last_seen) "
                       "VALUES (?1, ?2, ?3, ?4, ?5, ?5) ON CONFLICT (id) DO UPDATE SET "
                       "version = excluded.version, threads = excluded.threads, "
                       "host = excluded.host, last_seen = excluded.last_seen",
    [ST_WORKER_OUTCOME] = "UPDATE workers SET trials_done = trials_done + 1, "
                          "consecutive_failures = CASE WHEN ?2 THEN 0 "
                          "ELSE consecutive_failures + 1 END "
                          "WHERE id = ?1 RETURNING consecutive_failures",
    [ST_WORKER_QUARANTINED] = "SELECT quarantined, consecutive_failures, quarantined_until "
                              "FROM workers WHERE id = ?1",
    [ST_WORKER_LAST_SEEN] = "UPDATE workers SET last_seen = max(last_seen, ?2) WHERE id = ?1",
    [ST_JOBS_LIST] = "SELECT id, name, objective, status, round, created_at, finished_at, error "
                     "FROM jobs WHERE id > ?1 ORDER BY id LIMIT ?2",
    [ST_JOB_GET] = "SELECT id, name, objective, spec, status, round, region, created_at, "
                   "finished_at, error, test_result FROM jobs WHERE id = ?1",
    [ST_JOB_COUNTS] = "SELECT status, count(*) FROM trials WHERE job_id = ?1 GROUP BY status",
    [ST_ROUNDS] = "SELECT round, size, region, created_at FROM rounds WHERE job_id = ?1 "
                  "ORDER BY round",
    [ST_TRIALS_LIST] = "SELECT " TRIAL_COLS " FROM trials WHERE job_id = ?1 AND number > ?2 "
                       "ORDER BY number LIMIT ?3",
    [ST_TOP_DEV_ERROR] = "SELECT " TRIAL_COLS " FROM trials WHERE job_id = ?1 "
                         "AND status = 'completed' AND dev_error IS NOT NULL "
                         "ORDER BY " RANK_BY_DEV_ERROR " LIMIT ?2",
    [ST_TOP_DEV_COST] = "SELECT " TRIAL_COLS " FROM trials WHERE job_id = ?1 "
                        "AND status = 'completed' AND dev_cost IS NOT NULL "
                        "ORDER BY " RANK_BY_DEV_COST " LIMIT ?2",
    /* The ranking resumed after the key (?2, ?3, ?4, ?5) of the last row of the previous page. */
    [ST_RANKED_DEV_ERROR] = "SELECT " TRIAL_COLS " FROM trials WHERE job_id = ?1 "
                            "AND status = 'completed' AND dev_error IS NOT NULL "
                            "AND " RANK_KEY_DEV_ERROR " > (?2, ?3, ?4, ?5) "
                            "ORDER BY " RANK_BY_DEV_ERROR " LIMIT ?6",
    [ST_RANKED_DEV_COST] = "SELECT " TRIAL_COLS " FROM trials WHERE job_id = ?1 "
                           "AND status = 'completed' AND dev_cost IS NOT NULL "
                           "AND " RANK_KEY_DEV_COST " > (?2, ?3, ?4, ?5) "
                           "ORDER BY " RANK_BY_DEV_COST " LIMIT ?6",
    [ST_TRIAL_GET] = "SELECT " TRIAL_COLS ", config_key, spec FROM trials WHERE id = ?1",
    [ST_CURVE_GET] = "SELECT epoch, train_cost, train_cost_reg, dev_cost, train_error, "
                     "dev_error, learning_rate, seconds FROM curves WHERE trial_id = ?1 "
                     "ORDER BY epoch",
    [ST_WORKERS_LIST] = "SELECT id, version, threads, host, first_seen, last_seen, trials_done, "
                        "consecutive_failures, quarantined, quarantine_reason, "
                        "quarantined_until FROM workers "
                        "WHERE ?1 IS NULL OR id > ?1 ORDER BY id LIMIT ?2",
    [ST_ATTEMPT_END] = ATTEMPT_END_SQL,
    [ST_ATTEMPT_STALE] = "UPDATE trial_attempts SET outcome = 'stale' "
                         "WHERE trial_id = ?1 AND lease = ?2 AND outcome = 'lost'",
    [ST_ATTEMPTS_RECOVER] = "INSERT OR REPLACE INTO trial_attempts (trial_id, attempt, worker_id, "
                            "lease, started_at, ended_at, outcome, error) SELECT id, attempts, "
                            "worker_id, lease_token, started_at, " SQL_NOW ", 'interrupted', "
                            "'" RESTART_REASON "' FROM trials "
                            "WHERE status = 'running' AND attempts >= 1",
    [ST_ATTEMPTS_CANCEL] = "INSERT OR REPLACE INTO trial_attempts (trial_id, attempt, worker_id, "
                           "lease, started_at, ended_at, outcome, error) SELECT id, attempts, "
                           "worker_id, lease_token, started_at, ?2, 'cancelled', NULL FROM trials "
                           "WHERE job_id = ?1 AND status = 'running' AND attempts >= 1",
    [ST_ATTEMPTS_GET] = "SELECT attempt, worker_id, started_at, ended_at, outcome, error "
                        "FROM trial_attempts WHERE trial_id = ?1 ORDER BY attempt",
    [ST_WORKER_RESULTS] = "SELECT trial_id, outcome FROM trial_attempts WHERE worker_id = ?1 "
                          "AND outcome IN ('completed', 'failed', 'diverged', 'pruned') "
                          "ORDER BY ended_at DESC, trial_id DESC, attempt DESC LIMIT ?2",
    [ST_JOB_QUARANTINED] = "SELECT DISTINCT a.worker_id AS worker_id, "
                           "w.quarantine_reason AS reason, w.quarantined_at AS quarantined_at, "
                           "w.quarantined_until AS quarantined_until FROM trial_attempts AS a "
                           "JOIN trials AS t ON t.id = a.trial_id "
                           "JOIN workers AS w ON w.id = a.worker_id "
                           "WHERE t.job_id = ?1 AND w.quarantined = 1 "
                           "AND (w.quarantined_until IS NULL OR w.quarantined_until > " SQL_NOW ") "
                           "ORDER BY a.worker_id",
    [ST_JOBS_EACH] = "SELECT id, name, objective, spec, status, round, region, created_at, "
                     "busy_seconds, available_seconds FROM jobs WHERE ?1 = 0 OR status = 'running' ORDER BY id",
    [ST_TRIALS_EACH] = "SELECT t.id, t.number, t.round, t.status, t.attempts, t.params, "
                       "t.config_key, t.spec, "
                       "CASE j.objective WHEN 'dev_cost' THEN t.dev_cost ELSE t.dev_error END, "
                       "t.lease_token, t.worker_id, (SELECT count(*) FROM trial_attempts AS a "
                       "WHERE a.trial_id = t.id AND a.outcome = 'interrupted') "
                       "FROM trials AS t JOIN jobs AS j ON j.id = t.job_id "
                       "WHERE t.job_id = ?1 ORDER BY t.number",
    [ST_WORKER_COUNT] = "UPDATE workers SET trials_done = trials_done + 1 WHERE id = ?1",
    [ST_WORKER_QUARANTINE_SET] = "UPDATE workers SET quarantined = 1, quarantine_reason = ?2, "
                                 "quarantined_at = ?3, quarantined_until = ?4 WHERE id = ?1",
    [ST_WORKER_RELEASE] = "UPDATE workers SET quarantined = 0, consecutive_failures = 0, "
                          "quarantine_reason = NULL, quarantined_at = NULL, "
                          "quarantined_until = NULL WHERE id = ?1 RETURNING 1",
    [ST_JOB_FIRST_FAILURE] = "SELECT id, status, error FROM trials WHERE job_id = ?1 "
                             "AND status IN ('failed', 'diverged') "
                             "ORDER BY finished_at, number LIMIT 1",
    [ST_JOB_DELETE_CURVES] = "DELETE FROM curves WHERE trial_id IN "
                             "(SELECT id FROM trials WHERE job_id = ?1)",
    [ST_JOB_DELETE_ATTEMPTS] = "DELETE FROM trial_attempts WHERE trial_id IN "
                               "(SELECT id FROM trials WHERE job_id = ?1)",
    [ST_JOB_DELETE_TRIALS] = "DELETE FROM trials WHERE job_id = ?1",
    [ST_JOB_DELETE_ROUNDS] = "DELETE FROM rounds WHERE job_id = ?1",
    [ST_JOB_DELETE_DECISIONS] = "DELETE FROM decisions WHERE job_id = ?1",
    [ST_DECISION_INSERT] = "INSERT INTO decisions (job_id, trial_id, number, epoch, value, "
                           "stopped, decided_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    [ST_DECISIONS_EACH] = "SELECT trial_id, number, epoch, value, stopped FROM decisions "
                          "WHERE job_id = ?1 ORDER BY seq",
    [ST_ROUND_GROW] = "UPDATE rounds SET size = size + 1 WHERE job_id = ?1 AND round = ?2",
    [ST_JOB_SET_USAGE] = "UPDATE jobs SET busy_seconds = ?2, available_seconds = ?3 "
                         "WHERE id = ?1",
    [ST_JOB_USAGE] = "SELECT busy_seconds, available_seconds FROM jobs WHERE id = ?1",
    [ST_TRIAL_CURVE_BEST] = "SELECT min(dev_error), min(dev_cost) FROM curves "
                            "WHERE trial_id = ?1",
    [ST_JOB_DELETE] = "DELETE FROM jobs WHERE id = ?1",
    [ST_JOB_ROW] = "SELECT id, name, objective, spec, status, round, region, created_at, "
                   "busy_seconds, available_seconds FROM jobs WHERE id = ?1",
    [ST_JOB_SET_SPEC] = "UPDATE jobs SET spec = ?2 WHERE id = ?1",
};

struct cv_store {
    sqlite3 *db;
    sqlite3_stmt *st[ST_COUNT]; /* prepared at open, finalized at close */
    int in_group;               /* 1 between cv_store_begin and its commit or rollback */
};

/* ---- Names ------------------------------------------------------------------------------- */

static const char *const k_job_status[] = {"running", "completed", "cancelled", "failed"};
static const char *const k_trial_status[] = {"queued",   "running", "completed", "failed",
                                             "diverged", "lost",    "cancelled", "pruned"};
static const char *const k_objective[] = {"job", "dev_error", "dev_cost"};

_Static_assert(sizeof k_job_status / sizeof k_job_status[0] == CV_STORE_JOB_FAILED + 1,
               "a name per job status");
_Static_assert(sizeof k_trial_status / sizeof k_trial_status[0] == CV_STORE_TRIAL_STATUSES,
               "a name per trial status");

const char *cv_store_job_status_name(cv_store_job_status_t status) {
    return (unsigned)status <= CV_STORE_JOB_FAILED ? k_job_status[status] : "unknown";
}

const char *cv_store_trial_status_name(cv_store_trial_status_t status) {
    return (unsigned)status < CV_STORE_TRIAL_STATUSES ? k_trial_status[status] : "unknown";
}

const char *cv_store_objective_name(cv_store_objective_t objective) {
    return (unsigned)objective <= CV_STORE_OBJ_DEV_COST ? k_objective[objective] : "unknown";
}

static int find_name(const char *const *names, int count, const char *name) {
    for (int i = 0; name && i < count; i++) {
        if (strcmp(names[i], name) == 0) return i;
    }
    return -1;
}

int cv_store_job_status_parse(const char *name, cv_store_job_status_t *out) {
    int i = find_name(k_job_status, CV_STORE_JOB_FAILED + 1, name);
    if (i < 0) return CV_EINVAL;
    *out = (cv_store_job_status_t)i;
    return 0;
}

int cv_store_trial_status_parse(const char *name, cv_store_trial_status_t *out) {
    int i = find_name(k_trial_status, CV_STORE_TRIAL_STATUSES, name);
    if (i < 0) return CV_EINVAL;
    *out = (cv_store_trial_status_t)i;
    return 0;
}

/* Parses a stored objective ("dev_error" or "dev_cost"); -1 for anything else. */
static int objective_parse(const char *name) {
    int i = find_name(k_objective, CV_STORE_OBJ_DEV_COST + 1, name);
    return i > CV_STORE_OBJ_JOB ? i : -1;
}

/* ---- Errors, binding, stepping ----------------------------------------------------------- */

/* Maps a SQLite result code (primary or extended) to a CV_E* code. */
static int sql_code(int rc) {
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

/* Formats "store: <what>: <sqlite3_errmsg>" into err and returns the mapped code. Call it before
 * resetting the failed statement, while the message is still the statement's. */
static int failf(cv_store_t *s, int rc, char *err, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 4, 5)))
#endif
    ;

static int failf(cv_store_t *s, int rc, char *err, const char *fmt, ...) {
    if (!err) return sql_code(rc);
    char what[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    return cv_errf(err, sql_code(rc), "store: %s: %s", what, sqlite3_errmsg(s->db));
}

/* ---- hook for the store_*.c query files (store_history.h) ---- */
struct sqlite3 *cv_store_sqlite(cv_store_t *store) { return store->db; }
/* ---- end of hook ---- */

/* Ends a use of a statement: resets it (closing its read snapshot) and drops the borrowed
 * bindings so no dangling pointer outlives the call. */
static void done(sqlite3_stmt *q) {
    sqlite3_reset(q);
    sqlite3_clear_bindings(q);
}

static int bind_text(sqlite3_stmt *q, int i, const char *v) {
    return v ? sqlite3_bind_text(q, i, v, -1, SQLITE_STATIC) : sqlite3_bind_null(q, i);
}

static int bind_real(sqlite3_stmt *q, int i, double v) {
    return isfinite(v) ? sqlite3_bind_double(q, i, v) : sqlite3_bind_null(q, i);
}

static int bind_count(sqlite3_stmt *q, int i, int v) {
    return v >= 0 ? sqlite3_bind_int(q, i, v) : sqlite3_bind_null(q, i);
}

/* Steps a statement that returns no rows (or whose rows are ignored) to completion and ends its
 * use. 0 or the mapped error with "what" in the reason. */
static int run(cv_store_t *s, int id, char *err, const char *what) {
    sqlite3_stmt *q = s->st[id];
    int rc = sqlite3_step(q);
    int ret = 0;
    if (rc != SQLITE_DONE && rc != SQLITE_ROW) ret = failf(s, rc, err, "%s", what);
    done(q);
    return ret;
}

/* run, for an update of one row named by its key: CV_STORE_NOT_FOUND when no row matched. */
static int run_found(cv_store_t *s, int id, char *err, const char *what) {
    int ret = run(s, id, err, what);
    if (ret == 0 && sqlite3_changes(s->db) == 0) ret = CV_STORE_NOT_FOUND;
    return ret;
}

/* Steps a cleanup statement whose failure has nothing to add to the error being reported. */
static void run_quiet(cv_store_t *s, int id) {
    sqlite3_step(s->st[id]);
    done(s->st[id]);
}

/* Reports a failure to bind (only out of memory or a too-long value in practice). */
static int bind_failed(cv_store_t *s, int id, char *err, const char *what) {
    int ret = failf(s, sqlite3_errcode(s->db), err, "%s: binding values", what);
    done(s->st[id]);
    return ret;
}

/* Starts the savepoint that makes a multi-statement write atomic. Outside a group it also opens
 * the transaction that its release commits. */
static int op_begin(cv_store_t *s, char *err) {
    return run(s, ST_SAVEPOINT, err, "savepoint");
}

/* Ends the savepoint of op_begin: released (committed, outside a group) when ret >= 0, undone
 * otherwise or when the release fails. Returns ret or the release's error. */
static int op_end(cv_store_t *s, int ret, char *err) {
    if (ret >= 0) {
        int rc = run(s, ST_RELEASE, err, "commit");
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

/* Tells CV_STORE_STALE from CV_EINVAL after a guarded update of a trial changed nothing. */
static int trial_missing_or_stale(cv_store_t *s, int64_t trial_id, char *err, const char *what) {
    sqlite3_stmt *q = s->st[ST_TRIAL_STATUS];
    int ret;
    if (sqlite3_bind_int64(q, 1, trial_id) != SQLITE_OK)
        return bind_failed(s, ST_TRIAL_STATUS, err, what);
    int rc = sqlite3_step(q);
    if (rc == SQLITE_ROW) {
        ret = CV_STORE_STALE;
    } else if (rc == SQLITE_DONE) {
        ret = cv_errf(err, CV_EINVAL, "store: %s: no trial %lld", what, (long long)trial_id);
    } else {
        ret = failf(s, rc, err, "%s", what);
    }
    done(q);
    return ret;
}

/* Reads a job's objective and status (status may be NULL); CV_STORE_NOT_FOUND when the job does
 * not exist. */
static int job_head(cv_store_t *s, int64_t job_id, int *objective,
                    cv_store_job_status_t *status, char *err) {
    sqlite3_stmt *q = s->st[ST_JOB_OBJECTIVE];
    int ret = 0;
    if (sqlite3_bind_int64(q, 1, job_id) != SQLITE_OK)
        return bind_failed(s, ST_JOB_OBJECTIVE, err, "read job");
    int rc = sqlite3_step(q);
    if (rc == SQLITE_ROW) {
        *objective = objective_parse((const char *)sqlite3_column_text(q, 0));
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
        ret = failf(s, rc, err, "read job %lld", (long long)job_id);
    }
    done(q);
    return ret;
}

/* ---- Opening ----------------------------------------------------------------------------- */

/* Runs a one-shot statement at open time that returns one integer (a pragma). */
static int pragma_int(sqlite3 *db, const char *sql, int64_t *out, const char *path, char *err) {
    sqlite3_stmt *q = NULL;
    int rc = sqlite3_prepare_v2(db, sql, -1, &q, NULL);
    if (rc == SQLITE_OK) rc = sqlite3_step(q);
    int ret = 0;
    if (rc == SQLITE_ROW) {
        *out = sqlite3_column_int64(q, 0);
    } else {
        ret = cv_errf(err, sql_code(rc), "store: %s: %s", path, sqlite3_errmsg(db));
        if ((rc & 0xff) == SQLITE_NOTADB)
            ret = cv_errf(err, CV_EFORMAT, "store: %s is not a SQLite database (%s)", path,
                          sqlite3_errmsg(db));
    }
    sqlite3_finalize(q);
    return ret;
}

/* Refuses files that are not caviar stores and schemas newer than this code; writes the
 * schema's current version into *version. */
static int check_identity(sqlite3 *db, const char *path, int64_t *version, char *err) {
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
static int configure(sqlite3 *db, const cv_store_options_t *opt, const char *path, char *err) {
    sqlite3_stmt *q = NULL;
    int rc = sqlite3_prepare_v2(db, "PRAGMA journal_mode = WAL", -1, &q, NULL);
    if (rc == SQLITE_OK) rc = sqlite3_step(q);
    int wal =
        rc == SQLITE_ROW && sqlite3_stricmp((const char *)sqlite3_column_text(q, 0), "wal") == 0;
    int ret = 0;
    if (rc != SQLITE_ROW)
        ret =
            cv_errf(err, sql_code(rc), "store: %s: setting WAL mode: %s", path, sqlite3_errmsg(db));
    else if (!wal)
        ret = cv_errf(err, CV_EIO, "store: %s: the file system refused WAL mode", path);
    sqlite3_finalize(q);
    if (ret != 0) return ret;

    const char *sync =
        opt->synchronous_normal ? "PRAGMA synchronous = NORMAL" : "PRAGMA synchronous = FULL";
    rc = sqlite3_exec(db, sync, NULL, NULL, NULL);
    if (rc == SQLITE_OK) rc = sqlite3_exec(db, "PRAGMA foreign_keys = ON", NULL, NULL, NULL);
    if (rc != SQLITE_OK)
        return cv_errf(err, sql_code(rc), "store: %s: %s", path, sqlite3_errmsg(db));

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
static int migrate(sqlite3 *db, int64_t from, const char *path, char *err) {
    if (from >= CV_STORE_SCHEMA_VERSION) return 0;
    int rc = sqlite3_exec(db, "PRAGMA foreign_keys = OFF", NULL, NULL, NULL);
    if (rc != SQLITE_OK)
        return cv_errf(err, sql_code(rc), "store: %s: %s", path, sqlite3_errmsg(db));
    int ret = migrate_steps(db, from, path, err);
    rc = sqlite3_exec(db, "PRAGMA foreign_keys = ON", NULL, NULL, NULL);
    if (ret == 0 && rc != SQLITE_OK)
        ret = cv_errf(err, sql_code(rc), "store: %s: %s", path, sqlite3_errmsg(db));
    return ret;
}

static int migrate_steps(sqlite3 *db, int64_t from, const char *path, char *err) {
    for (int64_t v = from + 1; v <= CV_STORE_SCHEMA_VERSION; v++) {
        int rc = sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL);
        if (rc != SQLITE_OK)
            return cv_errf(err, sql_code(rc), "store: %s: migration to version %lld: %s", path,
                           (long long)v, sqlite3_errmsg(db));
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
                ret = cv_errf(err, sql_code(rc), "store: %s: migration to version %lld: %s", path,
                              (long long)v, sqlite3_errmsg(db));
        } else if (ret == 0) {
            rc = sqlite3_exec(db, "COMMIT", NULL, NULL, NULL);
            if (rc != SQLITE_OK)
                ret = cv_errf(err, sql_code(rc), "store: %s: %s", path, sqlite3_errmsg(db));
        }
        if (ret != 0) {
            if (!sqlite3_get_autocommit(db)) sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
            return ret;
        }
    }
    return 0;
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
    int flags = SQLITE_OPEN_NOMUTEX |
                (readonly ? SQLITE_OPEN_READONLY : SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE);
    int rc = sqlite3_open_v2(path, &s->db, flags, opt.vfs);
    if (rc != SQLITE_OK) {
        ret = cv_errf(err, s->db ? sql_code(rc) : CV_ENOMEM, "store: cannot open %s: %s", path,
                      s->db ? sqlite3_errmsg(s->db) : "out of memory");
        goto fail;
    }
    sqlite3_extended_result_codes(s->db, 1);
    sqlite3_busy_timeout(s->db,
                         opt.busy_timeout_ms > 0 ? opt.busy_timeout_ms : DEFAULT_BUSY_TIMEOUT_MS);
    sqlite3_db_config(s->db, SQLITE_DBCONFIG_DEFENSIVE, 1, (int *)NULL);
    sqlite3_db_config(s->db, SQLITE_DBCONFIG_DQS_DML, 0, (int *)NULL);
    sqlite3_db_config(s->db, SQLITE_DBCONFIG_DQS_DDL, 0, (int *)NULL);

    ret = check_identity(s->db, path, &version, err);
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
        ret = configure(s->db, &opt, path, err);
        if (ret == 0) ret = migrate(s->db, version, path, err);
        if (ret != 0) goto fail;
    }
    for (int i = 0; i < ST_COUNT; i++) {
        rc = sqlite3_prepare_v3(s->db, k_sql[i], -1, SQLITE_PREPARE_PERSISTENT, &s->st[i], NULL);
        if (rc != SQLITE_OK) {
            ret = cv_errf(err, sql_code(rc) == CV_EIO ? CV_EFORMAT : sql_code(rc),
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
    sqlite3_close(store->db);
    free(store);
}

/* ---- Transactions ------------------------------------------------------------------------ */

int cv_store_begin(cv_store_t *store, char *err) {
    if (store->in_group) return cv_errf(err, CV_EINVAL, "store: a transaction is already open");
    int ret = run(store, ST_BEGIN, err, "begin");
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
    int ret = run(store, ST_COMMIT, err, "commit");
    if (ret != 0 && !sqlite3_get_autocommit(store->db)) run_quiet(store, ST_ROLLBACK);
    return ret;
}

int cv_store_rollback(cv_store_t *store, char *err) {
    if (!store->in_group) return 0;
    store->in_group = 0;
    if (sqlite3_get_autocommit(store->db)) return 0;
    return run(store, ST_ROLLBACK, err, "rollback");
}

/* ---- Jobs and rounds --------------------------------------------------------------------- */

int cv_store_job_create(cv_store_t *store, const char *name, cv_store_objective_t objective,
                        const char *spec, const char *region, double now, int64_t *job_id,
                        char *err) {
    if (!name || !spec)
        return cv_errf(err, CV_EINVAL, "store: create job: name and spec are required");
    if (objective != CV_STORE_OBJ_DEV_ERROR && objective != CV_STORE_OBJ_DEV_COST)
        return cv_errf(err, CV_EINVAL,
                       "store: create job: objective must be dev_error or "
                       "dev_cost");
    sqlite3_stmt *q = store->st[ST_JOB_INSERT];
    if (bind_text(q, 1, name) || bind_text(q, 2, k_objective[objective]) || bind_text(q, 3, spec) ||
        bind_text(q, 4, region) || bind_real(q, 5, now))
        return bind_failed(store, ST_JOB_INSERT, err, "create job");
    int ret = run(store, ST_JOB_INSERT, err, "create job");
    if (ret == 0 && job_id) *job_id = sqlite3_last_insert_rowid(store->db);
    return ret;
}

/* Runs a job update already bound and reports an unknown job as CV_EINVAL. */
static int job_update(cv_store_t *store, int id, int64_t job_id, const char *what, char *err) {
    int ret = run(store, id, err, what);
    if (ret == 0 && sqlite3_changes(store->db) == 0)
        ret = cv_errf(err, CV_EINVAL, "store: %s: no job %lld", what, (long long)job_id);
    return ret;
}

int cv_store_job_set_status(cv_store_t *store, int64_t job_id, cv_store_job_status_t status,
                            const char *error, double now, char *err) {
    if ((unsigned)status > CV_STORE_JOB_FAILED)
        return cv_errf(err, CV_EINVAL, "store: set job status: unknown status %d", (int)status);
    sqlite3_stmt *q = store->st[ST_JOB_SET_STATUS];
    if (sqlite3_bind_int64(q, 1, job_id) || bind_text(q, 2, k_job_status[status]) ||
        bind_text(q, 3, error) || bind_real(q, 4, now))
        return bind_failed(store, ST_JOB_SET_STATUS, err, "set job status");
    return job_update(store, ST_JOB_SET_STATUS, job_id, "set job status", err);
}

int cv_store_job_set_round(cv_store_t *store, int64_t job_id, int round, const char *region,
                           char *err) {
    sqlite3_stmt *q = store->st[ST_JOB_SET_ROUND];
    if (sqlite3_bind_int64(q, 1, job_id) || sqlite3_bind_int(q, 2, round) ||
        bind_text(q, 3, region))
        return bind_failed(store, ST_JOB_SET_ROUND, err, "set job round");
    return job_update(store, ST_JOB_SET_ROUND, job_id, "set job round", err);
}

int cv_store_job_set_spec(cv_store_t *store, int64_t job_id, const char *spec, char *err) {
    if (!spec) return cv_errf(err, CV_EINVAL, "store: set job spec: spec is required");
    sqlite3_stmt *q = store->st[ST_JOB_SET_SPEC];
    if (sqlite3_bind_int64(q, 1, job_id) || bind_text(q, 2, spec))
        return bind_failed(store, ST_JOB_SET_SPEC, err, "set job spec");
    return job_update(store, ST_JOB_SET_SPEC, job_id, "set job spec", err);
}

int cv_store_job_set_test_result(cv_store_t *store, int64_t job_id, const char *test_result,
                                 char *err) {
    sqlite3_stmt *q = store->st[ST_JOB_SET_TEST];
    if (sqlite3_bind_int64(q, 1, job_id) || bind_text(q, 2, test_result))
        return bind_failed(store, ST_JOB_SET_TEST, err, "set test result");
    return job_update(store, ST_JOB_SET_TEST, job_id, "set test result", err);
}

int cv_store_job_cancel(cv_store_t *store, int64_t job_id, double now, int64_t *trials_cancelled,
                        char *err) {
    int objective = 0;
    int ret = op_begin(store, err);
    if (ret != 0) return ret;

    sqlite3_stmt *q = store->st[ST_JOB_CANCEL];
    if (sqlite3_bind_int64(q, 1, job_id) || bind_real(q, 2, now)) {
        ret = bind_failed(store, ST_JOB_CANCEL, err, "cancel job");
        goto end;
    }
    ret = run(store, ST_JOB_CANCEL, err, "cancel job");
    if (ret != 0) goto end;
    if (sqlite3_changes(store->db) == 0) {
        ret = job_head(store, job_id, &objective, NULL, err);
        if (ret == 0) ret = CV_STORE_STALE;
        if (ret == CV_STORE_NOT_FOUND)
            ret = cv_errf(err, CV_EINVAL, "store: cancel job: no job %lld", (long long)job_id);
        goto end;
    }
    q = store->st[ST_ATTEMPTS_CANCEL];
    if (sqlite3_bind_int64(q, 1, job_id) || bind_real(q, 2, now)) {
        ret = bind_failed(store, ST_ATTEMPTS_CANCEL, err, "cancel job");
        goto end;
    }
    ret = run(store, ST_ATTEMPTS_CANCEL, err, "record the attempts of cancelled trials");
    if (ret != 0) goto end;
    q = store->st[ST_JOB_CANCEL_TRIALS];
    if (sqlite3_bind_int64(q, 1, job_id) || bind_real(q, 2, now)) {
        ret = bind_failed(store, ST_JOB_CANCEL_TRIALS, err, "cancel job");
        goto end;
    }
    ret = run(store, ST_JOB_CANCEL_TRIALS, err, "cancel trials of job");
    if (ret == 0 && trials_cancelled) *trials_cancelled = sqlite3_changes(store->db);
end:
    return op_end(store, ret, err);
}

int cv_store_job_delete(cv_store_t *store, int64_t job_id, int64_t *trials_deleted, char *err) {
    /* Children before parents: the foreign keys are enforced. */
    static const int steps[] = {ST_JOB_DELETE_CURVES,    ST_JOB_DELETE_ATTEMPTS,
                                ST_JOB_DELETE_DECISIONS, ST_JOB_DELETE_TRIALS,
                                ST_JOB_DELETE_ROUNDS,    ST_JOB_DELETE};
    cv_store_job_status_t status = CV_STORE_JOB_RUNNING;
    int objective = 0;
    int ret = op_begin(store, err);
    if (ret != 0) return ret;
    ret = job_head(store, job_id, &objective, &status, err);
    if (ret == 0 && status == CV_STORE_JOB_RUNNING) ret = CV_STORE_STALE;
    for (size_t i = 0; ret == 0 && i < sizeof steps / sizeof steps[0]; i++) {
        if (sqlite3_bind_int64(store->st[steps[i]], 1, job_id) != SQLITE_OK) {
            ret = bind_failed(store, steps[i], err, "delete job");
            break;
        }
        ret = run(store, steps[i], err, "delete job");
        if (ret == 0 && steps[i] == ST_JOB_DELETE_TRIALS && trials_deleted)
            *trials_deleted = sqlite3_changes(store->db);
    }
    return op_end(store, ret, err);
}

int cv_store_round_add(cv_store_t *store, int64_t job_id, int round, int size, const char *region,
                       double now, char *err) {
    if (!region) return cv_errf(err, CV_EINVAL, "store: add round: region is required");
    sqlite3_stmt *q = store->st[ST_ROUND_INSERT];
    if (sqlite3_bind_int64(q, 1, job_id) || sqlite3_bind_int(q, 2, round) ||
        sqlite3_bind_int(q, 3, size) || bind_text(q, 4, region) || bind_real(q, 5, now))
        return bind_failed(store, ST_ROUND_INSERT, err, "add round");
    int ret = run(store, ST_ROUND_INSERT, err, "add round");
    return ret;
}

int cv_store_round_grow(cv_store_t *store, int64_t job_id, int round, char *err) {
    sqlite3_stmt *q = store->st[ST_ROUND_GROW];
    if (sqlite3_bind_int64(q, 1, job_id) || sqlite3_bind_int(q, 2, round))
        return bind_failed(store, ST_ROUND_GROW, err, "grow round");
    return run(store, ST_ROUND_GROW, err, "grow round");
}

int cv_store_job_set_usage(cv_store_t *store, int64_t job_id, double busy_seconds,
                           double available_seconds, char *err) {
    sqlite3_stmt *q = store->st[ST_JOB_SET_USAGE];
    if (sqlite3_bind_int64(q, 1, job_id) || bind_real(q, 2, busy_seconds) ||
        bind_real(q, 3, available_seconds))
        return bind_failed(store, ST_JOB_SET_USAGE, err, "job usage");
    return run(store, ST_JOB_SET_USAGE, err, "job usage");
}

/* ---- The pruner's decisions ------------------------------------------------------------- */

int cv_store_decision_add(cv_store_t *store, int64_t job_id, const cv_store_decision_t *d,
                          double now, char *err) {
    sqlite3_stmt *q = store->st[ST_DECISION_INSERT];
    if (sqlite3_bind_int64(q, 1, job_id) || sqlite3_bind_int64(q, 2, d->trial_id) ||
        sqlite3_bind_int(q, 3, d->number) || sqlite3_bind_int(q, 4, d->epoch) ||
        bind_real(q, 5, d->value) || sqlite3_bind_int(q, 6, d->stopped != 0) ||
        bind_real(q, 7, now))
        return bind_failed(store, ST_DECISION_INSERT, err, "add decision");
    return run(store, ST_DECISION_INSERT, err, "add decision");
}

int cv_store_decisions_each(cv_store_t *store, int64_t job_id, cv_store_on_decision_t on_decision,
                            void *ctx, char *err) {
    sqlite3_stmt *q = store->st[ST_DECISIONS_EACH];
    if (sqlite3_bind_int64(q, 1, job_id))
        return bind_failed(store, ST_DECISIONS_EACH, err, "visit decisions");
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
    if (ret == 0 && rc != SQLITE_DONE) ret = failf(store, rc, err, "visit decisions");
    done(q);
    return ret;
}

int cv_store_trial_curve_best(cv_store_t *store, int64_t trial_id, double *dev_error,
                              double *dev_cost, char *err) {
    sqlite3_stmt *q = store->st[ST_TRIAL_CURVE_BEST];
    *dev_error = *dev_cost = NAN;
    if (sqlite3_bind_int64(q, 1, trial_id))
        return bind_failed(store, ST_TRIAL_CURVE_BEST, err, "trial curve");
    int rc = sqlite3_step(q), ret = 0;
    if (rc == SQLITE_ROW) {
        if (sqlite3_column_type(q, 0) != SQLITE_NULL) *dev_error = sqlite3_column_double(q, 0);
        if (sqlite3_column_type(q, 1) != SQLITE_NULL) *dev_cost = sqlite3_column_double(q, 1);
    } else {
        ret = failf(store, rc, err, "trial curve");
    }
    done(q);
    return ret;
}

/* ---- Trials ------------------------------------------------------------------------------ */

int cv_store_trials_add(cv_store_t *store, int64_t job_id, const cv_store_new_trial_t *trials,
                        size_t n, double now, int64_t *ids, char *err) {
    if (n == 0) return 0;
    if (!trials) return cv_errf(err, CV_EINVAL, "store: add trials: no trials given");
    for (size_t i = 0; i < n; i++) {
        if (!trials[i].params || !trials[i].config_key || !trials[i].spec)
            return cv_errf(err, CV_EINVAL,
                           "store: add trials: trial %zu lacks params, config_key or spec", i);
    }
    int ret = op_begin(store, err);
    if (ret != 0) return ret;
    sqlite3_stmt *q = store->st[ST_TRIAL_INSERT];
    for (size_t i = 0; i < n && ret == 0; i++) {
        const cv_store_new_trial_t *t = &trials[i];
        if (sqlite3_bind_int64(q, 1, job_id) || sqlite3_bind_int(q, 2, t->number) ||
            sqlite3_bind_int(q, 3, t->round) || bind_text(q, 4, t->params) ||
            bind_text(q, 5, t->config_key) || bind_text(q, 6, t->spec) || bind_real(q, 7, now)) {
            ret = bind_failed(store, ST_TRIAL_INSERT, err, "add trials");
            break;
        }
        int rc = sqlite3_step(q);
        if (rc == SQLITE_DONE) {
            if (ids) ids[i] = sqlite3_last_insert_rowid(store->db);
        } else {
            ret = failf(store, rc, err,
                        "add trials: trial %zu of %zu (number %d, config_key \"%.64s\") of job "
                        "%lld",
                        i, n, t->number, t->config_key, (long long)job_id);
        }
        done(q);
    }
    return op_end(store, ret, err);
}

int cv_store_trial_start(cv_store_t *store, int64_t trial_id, const char *worker_id,
                         const char *lease_token, double now, char *err) {
    if (!worker_id || !lease_token)
        return cv_errf(err, CV_EINVAL, "store: start trial: worker and lease token required");
    int ret = op_begin(store, err);
    if (ret != 0) return ret;
    sqlite3_stmt *q = store->st[ST_TRIAL_START];
    if (sqlite3_bind_int64(q, 1, trial_id) || bind_text(q, 2, worker_id) ||
        bind_text(q, 3, lease_token) || bind_real(q, 4, now)) {
        ret = bind_failed(store, ST_TRIAL_START, err, "start trial");
        goto end;
    }
    ret = run(store, ST_TRIAL_START, err, "start trial");
    if (ret != 0) goto end;
    if (sqlite3_changes(store->db) == 0) {
        ret = trial_missing_or_stale(store, trial_id, err, "start trial");
        goto end;
    }
    q = store->st[ST_CURVE_CLEAR];
    if (sqlite3_bind_int64(q, 1, trial_id)) {
        ret = bind_failed(store, ST_CURVE_CLEAR, err, "start trial");
        goto end;
    }
    ret = run(store, ST_CURVE_CLEAR, err, "start trial: clearing the old curve");
end:
    return op_end(store, ret, err);
}

/* Writes the attempt row of a running trial's lease (see ATTEMPT_END_SQL); call it inside the
 * savepoint of the write that ends the lease. A trial that is not running under the token
 * writes nothing. */
static int attempt_end(cv_store_t *s, int64_t trial_id, const char *lease_token, double now,
                       const char *outcome, const char *error, char *err) {
    sqlite3_stmt *q = s->st[ST_ATTEMPT_END];
    if (sqlite3_bind_int64(q, 1, trial_id) || bind_text(q, 2, lease_token) ||
        bind_real(q, 3, now) || bind_text(q, 4, outcome) || bind_text(q, 5, error))
        return bind_failed(s, ST_ATTEMPT_END, err, "end attempt");
    return run(s, ST_ATTEMPT_END, err, "end attempt");
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
    int ret = op_begin(store, err);
    if (ret != 0) return ret;
    ret = attempt_end(store, trial_id, lease_token, now, k_trial_status[st], result->error, err);
    if (ret != 0) return op_end(store, ret, err);
    sqlite3_stmt *q = store->st[ST_TRIAL_RESULT];
    if (sqlite3_bind_int64(q, 1, trial_id) || bind_text(q, 2, lease_token) ||
        bind_text(q, 3, k_trial_status[st]) || bind_real(q, 4, now) ||
        bind_real(q, 5, result->dev_error) || bind_real(q, 6, result->dev_cost) ||
        bind_real(q, 7, result->train_error) || bind_real(q, 8, result->train_cost) ||
        bind_real(q, 9, result->train_cost_reg) || bind_count(q, 10, result->best_epoch) ||
        bind_count(q, 11, result->epochs_run) || bind_text(q, 12, result->diagnosis) ||
        bind_real(q, 13, result->examples_per_second) || bind_text(q, 14, result->error) ||
        bind_text(q, 15, result->model_path) ||
        (result->n_params > 0 ? sqlite3_bind_int64(q, 16, result->n_params)
                              : sqlite3_bind_null(q, 16)))
        return op_end(store, bind_failed(store, ST_TRIAL_RESULT, err, "put result"), err);
    int rc = sqlite3_step(q);
    if (rc != SQLITE_DONE)
        ret = failf(store, rc, err, "put result of trial %lld", (long long)trial_id);
    done(q);
    if (ret == 0 && sqlite3_changes(store->db) == 0)
        ret = trial_missing_or_stale(store, trial_id, err, "put result");
    return op_end(store, ret, err);
}

int cv_store_curve_add(cv_store_t *store, int64_t trial_id, const char *lease_token,
                       const cv_store_curve_point_t *points, size_t n, char *err) {
    if (n == 0) return 0;
    if (!points) return cv_errf(err, CV_EINVAL, "store: add curve: no points given");
    int ret = op_begin(store, err);
    if (ret != 0) return ret;
    sqlite3_stmt *q;
    if (lease_token) {
        q = store->st[ST_TRIAL_LEASED];
        if (sqlite3_bind_int64(q, 1, trial_id) || bind_text(q, 2, lease_token)) {
            ret = bind_failed(store, ST_TRIAL_LEASED, err, "add curve");
            goto end;
        }
        int rc = sqlite3_step(q);
        if (rc == SQLITE_DONE)
            ret = CV_STORE_STALE;
        else if (rc != SQLITE_ROW)
            ret = failf(store, rc, err, "add curve: checking the lease");
        done(q);
        if (ret != 0) goto end;
    }
    q = store->st[ST_CURVE_INSERT];
    for (size_t i = 0; i < n && ret == 0; i++) {
        const cv_store_curve_point_t *p = &points[i];
        if (sqlite3_bind_int64(q, 1, trial_id) || sqlite3_bind_int(q, 2, p->epoch) ||
            bind_real(q, 3, p->train_cost) || bind_real(q, 4, p->train_cost_reg) ||
            bind_real(q, 5, p->dev_cost) || bind_real(q, 6, p->train_error) ||
            bind_real(q, 7, p->dev_error) || bind_real(q, 8, p->learning_rate) ||
            bind_real(q, 9, p->seconds)) {
            ret = bind_failed(store, ST_CURVE_INSERT, err, "add curve");
            break;
        }
        int rc = sqlite3_step(q);
        if (rc != SQLITE_DONE)
            ret = failf(store, rc, err, "add curve: trial %lld epoch %d", (long long)trial_id,
                        p->epoch);
        done(q);
    }
end:
    return op_end(store, ret, err);
}

int cv_store_trial_requeue(cv_store_t *store, int64_t trial_id, const char *lease_token,
                           cv_store_trial_status_t to_status, double now, char *err) {
    if (to_status != CV_STORE_TRIAL_QUEUED && to_status != CV_STORE_TRIAL_LOST &&
        to_status != CV_STORE_TRIAL_FAILED)
        return cv_errf(err, CV_EINVAL,
                       "store: requeue trial: status must be queued, lost or failed");
    int ret = op_begin(store, err);
    if (ret != 0) return ret;
    ret = attempt_end(store, trial_id, lease_token, now, "lost", NULL, err);
    if (ret != 0) return op_end(store, ret, err);
    sqlite3_stmt *q = store->st[ST_TRIAL_REQUEUE];
    if (sqlite3_bind_int64(q, 1, trial_id) || bind_text(q, 2, lease_token) ||
        bind_text(q, 3, k_trial_status[to_status]) || bind_real(q, 4, now))
        return op_end(store, bind_failed(store, ST_TRIAL_REQUEUE, err, "requeue trial"), err);
    ret = run(store, ST_TRIAL_REQUEUE, err, "requeue trial");
    if (ret == 0 && sqlite3_changes(store->db) == 0)
        ret = trial_missing_or_stale(store, trial_id, err, "requeue trial");
    return op_end(store, ret, err);
}

int cv_store_attempt_stale(cv_store_t *store, int64_t trial_id, const char *lease_token,
                           char *err) {
    if (!lease_token) return CV_STORE_NOT_FOUND;
    sqlite3_stmt *q = store->st[ST_ATTEMPT_STALE];
    if (sqlite3_bind_int64(q, 1, trial_id) || bind_text(q, 2, lease_token))
        return bind_failed(store, ST_ATTEMPT_STALE, err, "mark attempt stale");
    return run_found(store, ST_ATTEMPT_STALE, err, "mark attempt stale");
}

int cv_store_trial_retry(cv_store_t *store, int64_t trial_id, char *err) {
    sqlite3_stmt *q = store->st[ST_TRIAL_RETRY];
    if (sqlite3_bind_int64(q, 1, trial_id))
        return bind_failed(store, ST_TRIAL_RETRY, err, "retry trial");
    int ret = run(store, ST_TRIAL_RETRY, err, "retry trial");
    if (ret == 0 && sqlite3_changes(store->db) == 0)
        ret = trial_missing_or_stale(store, trial_id, err, "retry trial");
    return ret;
}

int cv_store_trial_interrupt(cv_store_t *store, int64_t trial_id, const char *lease_token,
                             const char *why, double now, char *err) {
    if (!lease_token)
        return cv_errf(err, CV_EINVAL, "store: interrupt trial: lease token required");
    int ret = op_begin(store, err);
    if (ret != 0) return ret;
    ret = attempt_end(store, trial_id, lease_token, now, "interrupted", why ? why : RESTART_REASON,
                      err);
    if (ret != 0) return op_end(store, ret, err);
    sqlite3_stmt *q = store->st[ST_TRIAL_REQUEUE];
    if (sqlite3_bind_int64(q, 1, trial_id) || bind_text(q, 2, lease_token) ||
        bind_text(q, 3, k_trial_status[CV_STORE_TRIAL_QUEUED]) || bind_real(q, 4, now))
        return op_end(store, bind_failed(store, ST_TRIAL_REQUEUE, err, "interrupt trial"), err);
    ret = run(store, ST_TRIAL_REQUEUE, err, "interrupt trial");
    if (ret == 0 && sqlite3_changes(store->db) == 0)
        ret = trial_missing_or_stale(store, trial_id, err, "interrupt trial");
    return op_end(store, ret, err);
}

int cv_store_trial_status(cv_store_t *store, int64_t trial_id, cv_store_trial_status_t *status,
                          char *err) {
    sqlite3_stmt *q = store->st[ST_TRIAL_STATUS];
    if (sqlite3_bind_int64(q, 1, trial_id) != SQLITE_OK)
        return bind_failed(store, ST_TRIAL_STATUS, err, "trial status");
    int rc = sqlite3_step(q), ret = 0;
    if (rc == SQLITE_ROW) {
        if (cv_store_trial_status_parse((const char *)sqlite3_column_text(q, 0), status))
            ret = cv_errf(err, CV_EFORMAT, "store: trial %lld: unreadable status",
                          (long long)trial_id);
    } else if (rc == SQLITE_DONE) {
        ret = CV_STORE_NOT_FOUND;
    } else {
        ret = failf(store, rc, err, "status of trial %lld", (long long)trial_id);
    }
    done(q);
    return ret;
}

int cv_store_recover(cv_store_t *store, int64_t *requeued, char *err) {
    int ret = op_begin(store, err);
    if (ret != 0) return ret;
    ret = run(store, ST_ATTEMPTS_RECOVER, err, "record the attempts of running trials");
    if (ret == 0) ret = run(store, ST_RECOVER, err, "recover running trials");
    if (ret == 0 && requeued) *requeued = sqlite3_changes(store->db);
    return op_end(store, ret, err);
}

int cv_store_trial_id(cv_store_t *store, int64_t job_id, int number, int64_t *trial_id, char *err) {
    sqlite3_stmt *q = store->st[ST_TRIAL_ID];
    if (sqlite3_bind_int64(q, 1, job_id) || sqlite3_bind_int(q, 2, number))
        return bind_failed(store, ST_TRIAL_ID, err, "find trial");
    int rc = sqlite3_step(q);
    int ret = 0;
    if (rc == SQLITE_ROW)
        *trial_id = sqlite3_column_int64(q, 0);
    else if (rc == SQLITE_DONE)
        ret = CV_STORE_NOT_FOUND;
    else
        ret = failf(store, rc, err, "find trial %d of job %lld", number, (long long)job_id);
    done(q);
    return ret;
}

/* ---- Workers ----------------------------------------------------------------------------- */

int cv_store_worker_seen(cv_store_t *store, const char *worker_id, const char *version, int threads,
                         const char *host, double now, char *err) {
    if (!worker_id) return cv_errf(err, CV_EINVAL, "store: worker seen: worker id required");
    sqlite3_stmt *q = store->st[ST_WORKER_SEEN];
    if (bind_text(q, 1, worker_id) || bind_text(q, 2, version) || bind_count(q, 3, threads) ||
        bind_text(q, 4, host) || bind_real(q, 5, now))
        return bind_failed(store, ST_WORKER_SEEN, err, "worker seen");
    return run(store, ST_WORKER_SEEN, err, "worker seen");
}

int cv_store_worker_outcome(cv_store_t *store, const char *worker_id, int succeeded,
                            int *consecutive_failures, char *err) {
    if (!worker_id) return cv_errf(err, CV_EINVAL, "store: worker outcome: worker id required");
    sqlite3_stmt *q = store->st[ST_WORKER_OUTCOME];
    if (bind_text(q, 1, worker_id) || sqlite3_bind_int(q, 2, succeeded != 0))
        return bind_failed(store, ST_WORKER_OUTCOME, err, "worker outcome");
    int ret = CV_STORE_NOT_FOUND;
    int rc = sqlite3_step(q);
    if (rc == SQLITE_ROW) {
        if (consecutive_failures) *consecutive_failures = sqlite3_column_int(q, 0);
        ret = 0;
        rc = sqlite3_step(q); /* finish the statement: the update is complete only at DONE */
    }
    if (rc != SQLITE_DONE) ret = failf(store, rc, err, "worker outcome of %.64s", worker_id);
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
        return bind_failed(store, ST_WORKER_RESULTS, err, "failed streak");
    int rc;
    while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
        const char *outcome = (const char *)sqlite3_column_text(q, 1);
        if (!outcome || strcmp(outcome, "failed") != 0) {
            rc = SQLITE_DONE; /* the streak ends at the newest result that was not a failure */
            break;
        }
        trial_ids[(*count)++] = sqlite3_column_int64(q, 0);
    }
    int ret = rc == SQLITE_DONE ? 0 : failf(store, rc, err, "failed streak of %.64s", worker_id);
    done(q);
    return ret;
}

int cv_store_worker_get(cv_store_t *store, const char *worker_id, int *quarantined,
                        int *consecutive_failures, double *until, char *err) {
    sqlite3_stmt *q = store->st[ST_WORKER_QUARANTINED];
    if (bind_text(q, 1, worker_id))
        return bind_failed(store, ST_WORKER_QUARANTINED, err, "get worker");
    int rc = sqlite3_step(q), ret = 0;
    if (rc == SQLITE_ROW) {
        if (quarantined) *quarantined = sqlite3_column_int(q, 0);
        if (consecutive_failures) *consecutive_failures = sqlite3_column_int(q, 1);
        if (until)
            *until = sqlite3_column_type(q, 2) == SQLITE_NULL ? NAN : sqlite3_column_double(q, 2);
    } else if (rc == SQLITE_DONE) {
        ret = CV_STORE_NOT_FOUND;
    } else {
        ret = failf(store, rc, err, "get worker %s", worker_id);
    }
    done(q);
    return ret;
}

int cv_store_worker_last_seen(cv_store_t *store, const char *worker_id, double when, char *err) {
    if (!worker_id) return cv_errf(err, CV_EINVAL, "store: last seen: worker id required");
    sqlite3_stmt *q = store->st[ST_WORKER_LAST_SEEN];
    if (bind_text(q, 1, worker_id) || sqlite3_bind_double(q, 2, when))
        return bind_failed(store, ST_WORKER_LAST_SEEN, err, "last seen");
    return run_found(store, ST_WORKER_LAST_SEEN, err, "last seen");
}

int cv_store_worker_count(cv_store_t *store, const char *worker_id, char *err) {
    if (!worker_id) return cv_errf(err, CV_EINVAL, "store: worker count: worker id required");
    sqlite3_stmt *q = store->st[ST_WORKER_COUNT];
    if (bind_text(q, 1, worker_id)) return bind_failed(store, ST_WORKER_COUNT, err, "worker count");
    return run_found(store, ST_WORKER_COUNT, err, "worker count");
}

int cv_store_worker_quarantine(cv_store_t *store, const char *worker_id, const char *reason,
                               double now, double until, char *err) {
    if (!worker_id) return cv_errf(err, CV_EINVAL, "store: quarantine: worker id required");
    sqlite3_stmt *q = store->st[ST_WORKER_QUARANTINE_SET];
    if (bind_text(q, 1, worker_id) || bind_text(q, 2, reason) || bind_real(q, 3, now) ||
        bind_real(q, 4, until))
        return bind_failed(store, ST_WORKER_QUARANTINE_SET, err, "quarantine");
    return run_found(store, ST_WORKER_QUARANTINE_SET, err, "quarantine");
}

int cv_store_worker_release(cv_store_t *store, const char *worker_id, char *err) {
    if (!worker_id) return cv_errf(err, CV_EINVAL, "store: release: worker id required");
    sqlite3_stmt *q = store->st[ST_WORKER_RELEASE];
    if (bind_text(q, 1, worker_id)) return bind_failed(store, ST_WORKER_RELEASE, err, "release");
    int rc = sqlite3_step(q), ret = CV_STORE_NOT_FOUND;
    if (rc == SQLITE_ROW) {
        ret = 0;
        rc = sqlite3_step(q); /* the update is complete only at DONE */
    }
    if (rc != SQLITE_DONE) ret = failf(store, rc, err, "release worker %.64s", worker_id);
    done(q);
    return ret;
}

int cv_store_job_first_failure(cv_store_t *store, int64_t job_id, int64_t *trial_id,
                               cv_store_trial_status_t *status, char *error, size_t cap,
                               char *err) {
    sqlite3_stmt *q = store->st[ST_JOB_FIRST_FAILURE];
    if (sqlite3_bind_int64(q, 1, job_id))
        return bind_failed(store, ST_JOB_FIRST_FAILURE, err, "first failure");
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
        ret = failf(store, rc, err, "first failure of job %lld", (long long)job_id);
    }
    done(q);
    return ret;
}

/* ---- JSON queries ------------------------------------------------------------------------ */

/* Columns holding JSON text, returned as JSON values rather than strings. */
static int is_json_column(const char *name) {
    return strcmp(name, "spec") == 0 || strcmp(name, "params") == 0 ||
           strcmp(name, "region") == 0 || strcmp(name, "test_result") == 0;
}

/* Adds every column of the statement's current row to obj under its column name. */
static int row_to_json(sqlite3_stmt *q, cJSON *obj, char *err) {
    int n = sqlite3_column_count(q);
    for (int i = 0; i < n; i++) {
        const char *name = sqlite3_column_name(q, i);
        cJSON *v = NULL;
        if (!name) return cv_errf(err, CV_ENOMEM, "store: out of memory");
        switch (sqlite3_column_type(q, i)) {
        case SQLITE_INTEGER:
            v = cJSON_CreateNumber((double)sqlite3_column_int64(q, i));
            break;
        case SQLITE_FLOAT:
            v = cJSON_CreateNumber(sqlite3_column_double(q, i));
            break;
        case SQLITE_TEXT: {
            const char *text = (const char *)sqlite3_column_text(q, i);
            size_t len = (size_t)sqlite3_column_bytes(q, i);
            if (!text) return cv_errf(err, CV_ENOMEM, "store: out of memory");
            if (is_json_column(name)) {
                v = cJSON_ParseWithLength(text, len);
                if (!v)
                    return cv_errf(err, CV_EFORMAT,
                                   "store: column %s holds text that cJSON "
                                   "cannot parse (or memory ran out)",
                                   name);
            } else {
                v = cJSON_CreateString(text);
            }
            break;
        }
        default:
            v = cJSON_CreateNull();
            break;
        }
        if (!v || !cJSON_AddItemToObject(obj, name, v)) {
            cJSON_Delete(v);
            return cv_errf(err, CV_ENOMEM, "store: out of memory");
        }
    }
    return 0;
}

/* Steps q to the end, appending each row to arr as an object. Does not reset q. */
static int rows_to_array(cv_store_t *s, sqlite3_stmt *q, cJSON *arr, const char *what, char *err) {
    int rc;
    while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
        cJSON *o = cJSON_CreateObject();
        if (!o || !cJSON_AddItemToArray(arr, o)) {
            cJSON_Delete(o);
            return cv_errf(err, CV_ENOMEM, "store: out of memory");
        }
        int ret = row_to_json(q, o, err);
        if (ret != 0) return ret;
    }
    return rc == SQLITE_DONE ? 0 : failf(s, rc, err, "%s", what);
}

/* Runs statement id (already bound) into a new array in *out. */
static int query_array(cv_store_t *s, int id, cJSON **out, const char *what, char *err) {
    cJSON *arr = cJSON_CreateArray();
    int ret = arr ? rows_to_array(s, s->st[id], arr, what, err)
                  : cv_errf(err, CV_ENOMEM, "store: out of memory");
    done(s->st[id]);
    if (ret != 0) {
        cJSON_Delete(arr);
        arr = NULL;
    }
    *out = arr;
    return ret;
}

int cv_store_jobs_list(cv_store_t *store, int64_t after_id, int64_t limit, cJSON **out, char *err) {
    sqlite3_stmt *q = store->st[ST_JOBS_LIST];
    *out = NULL;
    if (sqlite3_bind_int64(q, 1, after_id) || sqlite3_bind_int64(q, 2, limit > 0 ? limit : -1))
        return bind_failed(store, ST_JOBS_LIST, err, "list jobs");
    return query_array(store, ST_JOBS_LIST, out, "list jobs", err);
}

/* The k best completed trials by a resolved objective (DEV_ERROR or DEV_COST). */
static int query_top(cv_store_t *s, int64_t job_id, int objective, int64_t k, cJSON **out,
                     char *err) {
    int id = objective == CV_STORE_OBJ_DEV_COST ? ST_TOP_DEV_COST : ST_TOP_DEV_ERROR;
    sqlite3_stmt *q = s->st[id];
    if (sqlite3_bind_int64(q, 1, job_id) || sqlite3_bind_int64(q, 2, k)) {
        *out = NULL;
        return bind_failed(s, id, err, "top trials");
    }
    return query_array(s, id, out, "top trials", err);
}

#define RUNG_LIST_MAX 100 /* trial numbers listed per rung and outcome in a job reply */

/* Adds "utilization" (worker usage) and "rungs" (the pruner's decisions by epoch: how many
 * trials were judged there, and the first RUNG_LIST_MAX numbers promoted and stopped). */
static int job_search_details(cv_store_t *s, int64_t job_id, cJSON *job, char *err) {
    sqlite3_stmt *q = s->st[ST_JOB_USAGE];
    if (sqlite3_bind_int64(q, 1, job_id)) return bind_failed(s, ST_JOB_USAGE, err, "job usage");
    int rc = sqlite3_step(q);
    double busy = rc == SQLITE_ROW ? sqlite3_column_double(q, 0) : 0;
    double avail = rc == SQLITE_ROW ? sqlite3_column_double(q, 1) : 0;
    done(q);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE) return failf(s, rc, err, "job usage");
    cJSON *u = cJSON_AddObjectToObject(job, "utilization");
    if (!u || !cJSON_AddNumberToObject(u, "busy_seconds", busy) ||
        !cJSON_AddNumberToObject(u, "available_seconds", avail) ||
        !cJSON_AddItemToObject(u, "fraction", avail > 0 ? cJSON_CreateNumber(busy / avail)
                                                        : cJSON_CreateNull()))
        return cv_errf(err, CV_ENOMEM, "store: out of memory");
    cJSON *rungs = cJSON_AddArrayToObject(job, "rungs");
    if (!rungs) return cv_errf(err, CV_ENOMEM, "store: out of memory");
    q = s->st[ST_DECISIONS_EACH];
    if (sqlite3_bind_int64(q, 1, job_id))
        return bind_failed(s, ST_DECISIONS_EACH, err, "job decisions");
    int ret = 0;
    while (ret == 0 && (rc = sqlite3_step(q)) == SQLITE_ROW) {
        int epoch = sqlite3_column_int(q, 2), stopped = sqlite3_column_int(q, 4);
        cJSON *rung = NULL, *r;
        cJSON_ArrayForEach(r, rungs)
            if (cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(r, "epoch")) == epoch)
                rung = r;
        if (!rung && (!(rung = cJSON_CreateObject()) || !cJSON_AddItemToArray(rungs, rung) ||
                      !cJSON_AddNumberToObject(rung, "epoch", epoch) ||
                      !cJSON_AddNumberToObject(rung, "results", 0) ||
                      !cJSON_AddNumberToObject(rung, "stopped", 0) ||
                      !cJSON_AddArrayToObject(rung, "promoted_trials") ||
                      !cJSON_AddArrayToObject(rung, "stopped_trials"))) {
            ret = cv_errf(err, CV_ENOMEM, "store: out of memory");
            break;
        }
        cJSON *results = cJSON_GetObjectItemCaseSensitive(rung, "results");
        cJSON *nstop = cJSON_GetObjectItemCaseSensitive(rung, "stopped");
        cJSON_SetNumberValue(results, results->valuedouble + 1);
        if (stopped) cJSON_SetNumberValue(nstop, nstop->valuedouble + 1);
        cJSON *list = cJSON_GetObjectItemCaseSensitive(rung, stopped ? "stopped_trials"
                                                                     : "promoted_trials");
        if (cJSON_GetArraySize(list) < RUNG_LIST_MAX &&
            !cJSON_AddItemToArray(list, cJSON_CreateNumber(sqlite3_column_int(q, 1))))
            ret = cv_errf(err, CV_ENOMEM, "store: out of memory");
    }
    if (ret == 0 && rc != SQLITE_DONE) ret = failf(s, rc, err, "job decisions");
    done(q);
    return ret;
}

/* Adds "counts", "rounds" and "best" to a job object. */
static int job_details(cv_store_t *s, int64_t job_id, int objective, cJSON *job, char *err) {
    cJSON *counts = cJSON_AddObjectToObject(job, "counts");
    if (!counts) return cv_errf(err, CV_ENOMEM, "store: out of memory");
    for (int i = 0; i < CV_STORE_TRIAL_STATUSES; i++) {
        if (!cJSON_AddNumberToObject(counts, k_trial_status[i], 0))
            return cv_errf(err, CV_ENOMEM, "store: out of memory");
    }
    sqlite3_stmt *q = s->st[ST_JOB_COUNTS];
    if (sqlite3_bind_int64(q, 1, job_id)) return bind_failed(s, ST_JOB_COUNTS, err, "job counts");
    int rc;
    while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
        const char *status = (const char *)sqlite3_column_text(q, 0);
        cJSON *c = status ? cJSON_GetObjectItemCaseSensitive(counts, status) : NULL;
        if (c) cJSON_SetNumberValue(c, (double)sqlite3_column_int64(q, 1));
    }
    int ret = rc == SQLITE_DONE ? 0 : failf(s, rc, err, "job counts");
    done(q);
    if (ret != 0) return ret;

    cJSON *rounds = NULL;
    q = s->st[ST_ROUNDS];
    if (sqlite3_bind_int64(q, 1, job_id)) return bind_failed(s, ST_ROUNDS, err, "job rounds");
    ret = query_array(s, ST_ROUNDS, &rounds, "job rounds", err);
    if (ret != 0) return ret;
    if (!cJSON_AddItemToObject(job, "rounds", rounds)) {
        cJSON_Delete(rounds);
        return cv_errf(err, CV_ENOMEM, "store: out of memory");
    }

    cJSON *quarantined = NULL;
    q = s->st[ST_JOB_QUARANTINED];
    if (sqlite3_bind_int64(q, 1, job_id))
        return bind_failed(s, ST_JOB_QUARANTINED, err, "job quarantined workers");
    ret = query_array(s, ST_JOB_QUARANTINED, &quarantined, "job quarantined workers", err);
    if (ret != 0) return ret;
    if (!cJSON_AddItemToObject(job, "quarantined_workers", quarantined)) {
        cJSON_Delete(quarantined);
        return cv_errf(err, CV_ENOMEM, "store: out of memory");
    }

    if ((ret = job_search_details(s, job_id, job, err)) != 0) return ret;

    cJSON *top = NULL;
    ret = query_top(s, job_id, objective, 1, &top, err);
    if (ret != 0) return ret;
    cJSON *best = cJSON_DetachItemFromArray(top, 0);
    cJSON_Delete(top);
    if (!best) best = cJSON_CreateNull();
    if (!best || !cJSON_AddItemToObject(job, "best", best)) {
        cJSON_Delete(best);
        return cv_errf(err, CV_ENOMEM, "store: out of memory");
    }
    return 0;
}

int cv_store_job_get(cv_store_t *store, int64_t job_id, cJSON **out, char *err) {
    cJSON *job = NULL;
    int objective = 0;
    *out = NULL;
    sqlite3_stmt *q = store->st[ST_JOB_GET];
    if (sqlite3_bind_int64(q, 1, job_id)) return bind_failed(store, ST_JOB_GET, err, "get job");
    int rc = sqlite3_step(q);
    int ret = 0;
    if (rc == SQLITE_ROW) {
        objective = objective_parse((const char *)sqlite3_column_text(q, 2));
        job = cJSON_CreateObject();
        ret = job ? row_to_json(q, job, err) : cv_errf(err, CV_ENOMEM, "store: out of memory");
    } else if (rc == SQLITE_DONE) {
        ret = CV_STORE_NOT_FOUND;
    } else {
        ret = failf(store, rc, err, "get job %lld", (long long)job_id);
    }
    done(q);
    if (ret == 0 && objective < 0)
        ret =
            cv_errf(err, CV_EFORMAT, "store: job %lld has an unknown objective", (long long)job_id);
    if (ret == 0) ret = job_details(store, job_id, objective, job, err);
    if (ret != 0) {
        cJSON_Delete(job);
        return ret;
    }
    *out = job;
    return 0;
}

int cv_store_trials_list(cv_store_t *store, int64_t job_id, int64_t after_number, int64_t limit,
                         cJSON **out, char *err) {
    int objective = 0;
    *out = NULL;
    int ret = job_head(store, job_id, &objective, NULL, err);
    if (ret != 0) return ret;
    sqlite3_stmt *q = store->st[ST_TRIALS_LIST];
    if (sqlite3_bind_int64(q, 1, job_id) || sqlite3_bind_int64(q, 2, after_number) ||
        sqlite3_bind_int64(q, 3, limit > 0 ? limit : -1))
        return bind_failed(store, ST_TRIALS_LIST, err, "list trials");
    return query_array(store, ST_TRIALS_LIST, out, "list trials", err);
}

int cv_store_trials_top(cv_store_t *store, int64_t job_id, cv_store_objective_t objective,
                        int64_t k, cJSON **out, char *err) {
    int job_obj = 0;
    *out = NULL;
    if ((unsigned)objective > CV_STORE_OBJ_DEV_COST)
        return cv_errf(err, CV_EINVAL, "store: top trials: unknown objective %d", (int)objective);
    int ret = job_head(store, job_id, &job_obj, NULL, err);
    if (ret != 0) return ret;
    return query_top(store, job_id, objective == CV_STORE_OBJ_JOB ? job_obj : (int)objective,
                     k > 0 ? k : 0, out, err);
}

int cv_store_trials_ranked(cv_store_t *store, int64_t job_id, const cv_store_rank_key_t *after,
                           int64_t limit, cv_store_objective_t *objective, cJSON **out, char *err) {
    int job_obj = 0;
    *out = NULL;
    int ret = job_head(store, job_id, &job_obj, NULL, err);
    if (ret != 0) return ret;
    if (objective) *objective = (cv_store_objective_t)job_obj;
    if (!after) return query_top(store, job_id, job_obj, limit > 0 ? limit : -1, out, err);
    int id = job_obj == CV_STORE_OBJ_DEV_COST ? ST_RANKED_DEV_COST : ST_RANKED_DEV_ERROR;
    sqlite3_stmt *q = store->st[id];
    if (sqlite3_bind_int64(q, 1, job_id) || sqlite3_bind_double(q, 2, after->value) ||
        sqlite3_bind_double(q, 3, after->second) || sqlite3_bind_int64(q, 4, after->n_params) ||
        sqlite3_bind_int64(q, 5, after->number) || sqlite3_bind_int64(q, 6, limit > 0 ? limit : -1))
        return bind_failed(store, id, err, "ranked trials");
    return query_array(store, id, out, "ranked trials", err);
}

int cv_store_trial_get(cv_store_t *store, int64_t trial_id, cJSON **out, char *err) {
    cJSON *trial = NULL, *curve = NULL;
    *out = NULL;
    sqlite3_stmt *q = store->st[ST_TRIAL_GET];
    if (sqlite3_bind_int64(q, 1, trial_id))
        return bind_failed(store, ST_TRIAL_GET, err, "get trial");
    int rc = sqlite3_step(q);
    int ret = 0;
    if (rc == SQLITE_ROW) {
        trial = cJSON_CreateObject();
        ret = trial ? row_to_json(q, trial, err) : cv_errf(err, CV_ENOMEM, "store: out of memory");
    } else if (rc == SQLITE_DONE) {
        ret = CV_STORE_NOT_FOUND;
    } else {
        ret = failf(store, rc, err, "get trial %lld", (long long)trial_id);
    }
    done(q);
    if (ret != 0) goto fail;

    q = store->st[ST_CURVE_GET];
    if (sqlite3_bind_int64(q, 1, trial_id)) {
        ret = bind_failed(store, ST_CURVE_GET, err, "get curve");
        goto fail;
    }
    ret = query_array(store, ST_CURVE_GET, &curve, "get curve", err);
    if (ret != 0) goto fail;
    if (!cJSON_AddItemToObject(trial, "curve", curve)) {
        cJSON_Delete(curve);
        ret = cv_errf(err, CV_ENOMEM, "store: out of memory");
        goto fail;
    }
    cJSON *history = NULL;
    q = store->st[ST_ATTEMPTS_GET];
    if (sqlite3_bind_int64(q, 1, trial_id)) {
        ret = bind_failed(store, ST_ATTEMPTS_GET, err, "get attempts");
        goto fail;
    }
    ret = query_array(store, ST_ATTEMPTS_GET, &history, "get attempts", err);
    if (ret != 0) goto fail;
    if (!cJSON_AddItemToObject(trial, "attempts_history", history)) {
        cJSON_Delete(history);
        ret = cv_errf(err, CV_ENOMEM, "store: out of memory");
        goto fail;
    }
    *out = trial;
    return 0;

fail:
    cJSON_Delete(trial);
    return ret;
}

int cv_store_workers_list(cv_store_t *store, const char *after_id, int64_t limit, cJSON **out,
                          char *err) {
    sqlite3_stmt *q = store->st[ST_WORKERS_LIST];
    *out = NULL;
    if (bind_text(q, 1, after_id) || sqlite3_bind_int64(q, 2, limit > 0 ? limit : -1))
        return bind_failed(store, ST_WORKERS_LIST, err, "list workers");
    return query_array(store, ST_WORKERS_LIST, out, "list workers", err);
}

/* ---- Iterators --------------------------------------------------------------------------- */

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
        int objective = objective_parse((const char *)sqlite3_column_text(q, 2));
        if (!row.name || !row.spec || objective < 0 ||
            cv_store_job_status_parse((const char *)sqlite3_column_text(q, 4), &row.status)) {
            ret = cv_errf(err, CV_EFORMAT, "store: job %lld: unreadable row", (long long)row.id);
            break;
        }
        row.objective = (cv_store_objective_t)objective;
        (*count)++;
        ret = on_job(ctx, &row);
    }
    if (ret == 0 && rc != SQLITE_DONE) ret = failf(store, rc, err, "visit jobs");
    done(q);
    return ret;
}

int cv_store_jobs_each(cv_store_t *store, int running_only, cv_store_on_job_t on_job, void *ctx,
                       char *err) {
    int64_t count = 0;
    if (sqlite3_bind_int(store->st[ST_JOBS_EACH], 1, running_only != 0))
        return bind_failed(store, ST_JOBS_EACH, err, "visit jobs");
    return jobs_visit(store, ST_JOBS_EACH, on_job, ctx, &count, err);
}

int cv_store_job_visit(cv_store_t *store, int64_t job_id, cv_store_on_job_t on_job, void *ctx,
                       char *err) {
    int64_t count = 0;
    if (sqlite3_bind_int64(store->st[ST_JOB_ROW], 1, job_id))
        return bind_failed(store, ST_JOB_ROW, err, "read job");
    int ret = jobs_visit(store, ST_JOB_ROW, on_job, ctx, &count, err);
    return ret == 0 && count == 0 ? CV_STORE_NOT_FOUND : ret;
}

int cv_store_rounds_each(cv_store_t *store, int64_t job_id, cv_store_on_round_t on_round, void *ctx,
                         char *err) {
    sqlite3_stmt *q = store->st[ST_ROUNDS];
    if (sqlite3_bind_int64(q, 1, job_id)) return bind_failed(store, ST_ROUNDS, err, "visit rounds");
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
    if (ret == 0 && rc != SQLITE_DONE) ret = failf(store, rc, err, "visit rounds");
    done(q);
    return ret;
}

int cv_store_trials_each(cv_store_t *store, int64_t job_id, cv_store_on_trial_t on_trial, void *ctx,
                         char *err) {
    sqlite3_stmt *q = store->st[ST_TRIALS_EACH];
    if (sqlite3_bind_int64(q, 1, job_id))
        return bind_failed(store, ST_TRIALS_EACH, err, "visit trials");
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
    if (ret == 0 && rc != SQLITE_DONE) ret = failf(store, rc, err, "visit trials");
    done(q);
    return ret;
}
