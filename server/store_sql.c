/* The store's statement catalogue: the text of every SQL statement, prepared once when a store
 * opens (store_statements, indexed by the ST_* names of store_internal.h). Caller values are
 * always bound, never formatted into SQL. */

#include "server/store_internal.h"

/* Unix seconds in SQL, for the one write whose caller supplies no time (cv_store_recover). */
#define SQL_NOW "((julianday('now') - 2440587.5) * 86400.0)"

/* The leases of trial ?1 that count toward its attempts limit: all but the interrupted ones. */
#define COUNTED_ATTEMPTS                                                                           \
    "(attempts - (SELECT count(*) FROM trial_attempts AS a WHERE a.trial_id = ?1 "                 \
    "AND a.outcome = 'interrupted'))"

/* Records the end of a running trial's current lease as an attempt, before the statement that
 * ends it clears the lease: ?1 trial, ?2 lease token or NULL (any), ?3 time, ?4 outcome,
 * ?5 error. The row of an attempt is written once; a second end of the same attempt replaces it. */
#define ATTEMPT_END_SQL                                                                            \
    "INSERT OR REPLACE INTO trial_attempts (trial_id, attempt, worker_id, lease, started_at, "     \
    "ended_at, outcome, error) SELECT id, attempts, worker_id, lease_token, started_at, ?3, ?4, "  \
    "?5 FROM trials WHERE id = ?1 AND status = 'running' AND attempts >= 1 "                       \
    "AND (?2 IS NULL OR lease_token = ?2)"

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

const char *const store_statements[ST_COUNT] = {
    [ST_BEGIN] = "BEGIN IMMEDIATE",
    [ST_COMMIT] = "COMMIT",
    [ST_ROLLBACK] = "ROLLBACK",
    [ST_SAVEPOINT] = "SAVEPOINT cv_op",
    [ST_RELEASE] = "RELEASE cv_op",
    [ST_ROLLBACK_TO] = "ROLLBACK TO cv_op",
    [ST_JOB_INSERT] = "INSERT INTO jobs (name, objective, spec, region, created_at, sampler, "
                      "pruner, rounds_planned) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
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
    [ST_TRIAL_REQUEUE] =
        "UPDATE trials SET status = ?3, lease_token = NULL, "
        "worker_id = CASE WHEN ?3 = 'queued' THEN NULL ELSE worker_id END, "
        "started_at = CASE WHEN ?3 = 'queued' THEN NULL ELSE started_at END, "
        "finished_at = CASE WHEN ?3 = 'queued' THEN NULL ELSE ?4 END, "
        "error = CASE WHEN ?3 = 'failed' THEN 'lost ' || " COUNTED_ATTEMPTS " || ' leases' "
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
    /* With each job what the dashboard's jobs page shows: its budget, its finished and
     * running trials (counted on trials_by_status), its best objective value (the first row
     * of the objective's index), and its stored plan: its strategy and the rounds it plans
     * (cv_store_job_plan_t, written from the parsed spec). */
    [ST_JOBS_LIST] =
        "SELECT id, name, objective, status, round, created_at, finished_at, error, "
        "json_extract(spec, '$.budget.max_trials') AS max_trials, "
        "(SELECT count(*) FROM trials t WHERE t.job_id = jobs.id AND t.status NOT IN "
        "('queued', 'running')) AS finished, "
        "(SELECT count(*) FROM trials t WHERE t.job_id = jobs.id AND t.status = 'running') "
        "AS running, "
        "CASE objective WHEN 'dev_cost' THEN (SELECT dev_cost FROM trials t "
        "WHERE t.job_id = jobs.id AND t.dev_cost IS NOT NULL AND t.status = 'completed' "
        "ORDER BY dev_cost LIMIT 1) ELSE (SELECT dev_error FROM trials t "
        "WHERE t.job_id = jobs.id AND t.dev_error IS NOT NULL AND t.status = 'completed' "
        "ORDER BY dev_error LIMIT 1) END AS best_value, "
        "sampler, pruner, rounds_planned FROM jobs WHERE id > ?1 ORDER BY id LIMIT ?2",
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
                     "AND epoch >= ?2 ORDER BY epoch",
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
    [ST_JOBS_EACH] =
        "SELECT id, name, objective, spec, status, round, region, created_at, "
        "busy_seconds, available_seconds FROM jobs WHERE ?1 = 0 OR (?1 = 1 AND status = "
        "'running') OR (?1 = 2 AND rounds_planned IS NULL) ORDER BY id",
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
    [ST_NUDGE_INSERT] = "INSERT INTO nudges (trial_id, seq, values_json, created_at) "
                        "VALUES (?1, ?2, ?3, ?4)",
    [ST_NUDGE_APPLIED] = "UPDATE nudges SET epoch = ?3, applied_at = ?4 "
                         "WHERE trial_id = ?1 AND seq = ?2 AND epoch IS NULL",
    [ST_NUDGES_EACH] = "SELECT seq, values_json, epoch, created_at, applied_at FROM nudges "
                       "WHERE trial_id = ?1 ORDER BY seq",
    [ST_JOB_DELETE_NUDGES] = "DELETE FROM nudges WHERE trial_id IN "
                             "(SELECT id FROM trials WHERE job_id = ?1)",
    [ST_JOB_ROW] = "SELECT id, name, objective, spec, status, round, region, created_at, "
                   "busy_seconds, available_seconds FROM jobs WHERE id = ?1",
    [ST_JOB_SET_SPEC] = "UPDATE jobs SET spec = ?2, sampler = ?3, pruner = ?4, "
                        "rounds_planned = ?5 WHERE id = ?1",
    [ST_JOB_SET_PLAN] = "UPDATE jobs SET sampler = ?2, pruner = ?3, rounds_planned = ?4 "
                        "WHERE id = ?1",
};
