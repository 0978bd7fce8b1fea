/* The coordinator's durable state: one SQLite database file holding jobs, their sampling rounds,
 * trials with their results and learning curves, and the workers seen.
 *
 * The coordinator is the only writer. It opens one read-write store with cv_store_open; the HTTP
 * API may open further read-only stores on the same file with cv_store_open_readonly (WAL mode
 * lets them read while the writer writes). Every SQL statement is prepared once at open and
 * reused; caller values are always bound, never formatted into SQL.
 *
 * Threads: a store object is used by one thread at a time. The connection is opened with
 * SQLITE_OPEN_NOMUTEX, so SQLite does no locking of its own for it; give each thread its own store.
 *
 * Transactions: every write function is atomic on its own (a multi-statement write runs inside a
 * savepoint and is undone entirely when any part fails). To group many writes into one durable
 * commit - the way the coordinator should store results - call cv_store_begin, the writes, then
 * cv_store_commit. Nothing written inside the group is durable, and nothing may be acknowledged
 * to a worker, until cv_store_commit returns 0. After any write in the group fails, call
 * cv_store_rollback: SQLite may already have rolled the whole group back on its own (disk full,
 * I/O error), and cv_store_commit refuses to commit a group that lost its transaction.
 *
 * Times are REAL unix seconds supplied by the caller (`now`), so tests are deterministic.
 * JSON arguments are text; the database refuses text that is not valid JSON (CV_EINVAL).
 *
 * Return values: 0 on success, a negative CV_E* code from common/err.h with a reason in err, or
 * one of the two positive outcomes below. SQLite's errors map to CV_EIO (disk full, I/O error,
 * read-only file, busy after busy_timeout; sqlite3_errmsg is in the reason), CV_EINVAL (a
 * constraint: duplicate key, unknown job, invalid JSON), CV_EFORMAT (not a database, corrupt,
 * schema too new) and CV_ENOMEM. */
#ifndef CV_STORE_H
#define CV_STORE_H

#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "common/epoch.h"

/* Positive outcomes: the call worked but did not change anything. err is not written. */
#define CV_STORE_STALE                                                                             \
    1                        /* a guarded write did not apply: the trial is no longer running      \
                                under that lease token, or the job is no longer running */
#define CV_STORE_NOT_FOUND 2 /* a query named a job, trial or number that does not exist */

#define CV_STORE_SCHEMA_VERSION 9          /* PRAGMA user_version written by the newest migration */
#define CV_STORE_APPLICATION_ID 0x43415652 /* PRAGMA application_id: "CAVR" */

typedef struct cv_store cv_store_t;

typedef struct {
    int synchronous_normal; /* 0: synchronous=FULL, every commit is fsynced (default);
                               1: NORMAL, a power loss may drop the last commits, never corrupts */
    int busy_timeout_ms;    /* how long a locked database is retried; 0 means 5000 */
    int64_t max_bytes;      /* cap on the database size (PRAGMA max_page_count); 0 = none.
                               Writes beyond it fail with CV_EIO ("database or disk is full") */
    const char *vfs;        /* name of a registered SQLite VFS, NULL for the default one */
    int deferred_sync;      /* 1: a commit writes the WAL without waiting for the disk and makes
                               no checkpoint; cv_store_sync and cv_store_checkpoint do both, off
                               the writer's thread. Read-write stores only */
} cv_store_options_t;

/* A job's lifecycle: running until the search ends (completed), the user cancels it, or the
 * coordinator gives up on it (failed). finished_at is set on leaving running. */
typedef enum {
    CV_STORE_JOB_RUNNING,
    CV_STORE_JOB_COMPLETED,
    CV_STORE_JOB_CANCELLED,
    CV_STORE_JOB_FAILED,
} cv_store_job_status_t;

/* A trial's lifecycle as the store records it (the scheduler decides when; the store refuses
 * transitions from the wrong state by returning CV_STORE_STALE):
 *
 *   queued    --cv_store_trial_start-->     running    (worker_id, lease_token, started_at set,
 *                                                       attempts + 1, previous curve deleted)
 *   running   --cv_store_put_result-->      completed | failed | diverged | pruned
 *                                           (finished_at set; only under the current lease
 *                                           token)
 *   running   --cv_store_trial_requeue-->   queued  (lease expired, worker gone; attempts left)
 *                                           failed  (attempts exhausted: error "lost N leases";
 *                                                    lost, kept for older callers; finished_at)
 *   running   --cv_store_trial_interrupt--> queued  (the coordinator restarted and no worker
 *                                           re-attached to the lease in time)
 *   running   --cv_store_recover-->         queued  (the same for every running trial at once)
 *   queued, running --cv_store_job_cancel--> cancelled (finished_at set)
 *   failed    --cv_store_trial_retry-->     queued  (the failure was its worker's fault: the
 *                                           worker was quarantined; attempts and history kept)
 *
 * completed, failed, diverged, pruned, lost and cancelled are final; the one exception is a
 * failed trial that the scheduler retries because the worker it failed on was quarantined.
 * pruned (since schema version 6): the coordinator's pruner stopped the trial early; it holds
 * its best epoch's metrics, curve and model like a completed trial, but only completed trials
 * rank (the job's best trials and its ensemble).
 *
 * A coordinator restart by itself changes nothing: a running trial stays running under its lease
 * so that its worker, which kept training, can re-attach to it.
 *
 * Every transition out of running also writes one row of the trial's attempt history
 * (table trial_attempts, since schema version 2): attempt number, worker, lease token, start
 * and end times, and the outcome of that lease:
 *
 *   completed | failed | diverged | pruned   the result arrived under the lease
 *               (cv_store_put_result)
 *   lost        the lease ended without a result: worker gone or silent (cv_store_trial_requeue)
 *   interrupted the coordinator restarted and the lease was not re-attached in time
 *               (cv_store_trial_interrupt, cv_store_recover; since schema version 3, error
 *               "the coordinator restarted"). It is not the trial's fault: it does not count
 *               toward the attempts limit, and "lost N leases" counts only the other attempts
 *   stale       a lost lease whose worker came back with it later and was refused
 *               (cv_store_attempt_stale)
 *   cancelled   the job was cancelled while the trial ran (cv_store_job_cancel)
 *
 * The trial's attempts column counts every lease it held, interrupted ones included (it numbers
 * the history's rows). */
typedef enum {
    CV_STORE_TRIAL_QUEUED,
    CV_STORE_TRIAL_RUNNING,
    CV_STORE_TRIAL_COMPLETED,
    CV_STORE_TRIAL_FAILED,
    CV_STORE_TRIAL_DIVERGED,
    CV_STORE_TRIAL_LOST,
    CV_STORE_TRIAL_CANCELLED,
    CV_STORE_TRIAL_PRUNED, /* stopped by the pruner: best epoch's metrics and model, no rank */
} cv_store_trial_status_t;

#define CV_STORE_TRIAL_STATUSES 8 /* number of cv_store_trial_status_t values */

/* What a job minimises. Only completed trials with a non-NULL value rank. */
typedef enum {
    CV_STORE_OBJ_JOB,       /* queries only: the objective the job was created with */
    CV_STORE_OBJ_DEV_ERROR, /* dev-set error rate */
    CV_STORE_OBJ_DEV_COST,  /* dev-set cost */
} cv_store_objective_t;

/* Names used in the database and in JSON ("running", "diverged", "dev_cost"), and back. The
 * parsers return 0, or CV_EINVAL for an unknown name. */
const char *cv_store_job_status_name(cv_store_job_status_t status);
const char *cv_store_trial_status_name(cv_store_trial_status_t status);
const char *cv_store_objective_name(cv_store_objective_t objective);
int cv_store_job_status_parse(const char *name, cv_store_job_status_t *out);
int cv_store_trial_status_parse(const char *name, cv_store_trial_status_t *out);

/* ---- Opening and closing ---------------------------------------------------------------- */

/* Opens (creating if absent) the database at path for reading and writing with default options,
 * brings its schema to CV_STORE_SCHEMA_VERSION by applying each missing migration in its own
 * transaction, and prepares every statement. Refuses (CV_EFORMAT) a file that is not SQLite, a
 * SQLite database of another application, and a schema newer than this code. On success *out is
 * a new store the caller releases with cv_store_close; on failure *out is NULL. */
int cv_store_open(const char *path, cv_store_t **out, char *err);

/* Same with options (NULL = defaults). */
int cv_store_open_with(const char *path, const cv_store_options_t *options, cv_store_t **out,
                       char *err);

/* Opens an existing store read-only for queries. The schema must be exactly the current version
 * (open it read-write once to migrate). Write functions on it fail with CV_EIO. */
int cv_store_open_readonly(const char *path, cv_store_t **out, char *err);

/* Rolls back an unfinished cv_store_begin group, finalizes the statements and closes the
 * database. Accepts NULL. */
void cv_store_close(cv_store_t *store);

/* ---- Transactions ----------------------------------------------------------------------- */

/* Starts a write group (BEGIN IMMEDIATE). Groups do not nest: CV_EINVAL inside one. */
int cv_store_begin(cv_store_t *store, char *err);

/* Commits the group; 0 means every write in it is durable (to the synchronous setting). On
 * failure the whole group is rolled back and nothing in it may be acknowledged. */
int cv_store_commit(cv_store_t *store, char *err);

/* Abandons the group. Safe to call when SQLite has already rolled it back after an error, and
 * when no group is open (then it does nothing). */
int cv_store_rollback(cv_store_t *store, char *err);

/* Abandons the open group, if any, and makes this connection read-only for good: every later
 * write fails (SQLITE_READONLY) instead of committing on its own. For a writer whose memory no
 * longer matches the disk after a failed write: SQLite may have rolled the group back already,
 * and a write issued after that would run in autocommit mode and store a part of the group. */
int cv_store_freeze(cv_store_t *store, char *err);

/* ---- Deferred durability (options.deferred_sync) ---------------------------------------- */

/* Makes every commit that returned before this call durable: fdatasync of the WAL file (its
 * directory entry was synced at open). It uses a file descriptor of its own, not the connection, so
 * any thread may call it, also while another thread writes through the store. CV_EINVAL when
 * the store was not opened with deferred_sync; CV_EIO when the disk refused (commits since the
 * last good sync may be lost: acknowledge none of them). */
int cv_store_sync(cv_store_t *store, char *err);

/* Once the WAL holds 1,000 frames or more, copies them into the database file (a passive
 * checkpoint: it never waits for the writer or readers) through a connection of its own, syncing
 * the WAL before and the database after; the writer restarts the WAL after a complete copy (and
 * SQLite syncs the new WAL's header then, on the writer's thread). Runs on any thread, concurrently with the store's writer, but never twice at
 * once. CV_EINVAL without deferred_sync. */
int cv_store_checkpoint(cv_store_t *store, char *err);

/* 1 when cv_store_checkpoint would copy (the WAL holds 1,000 frames or more). Any thread. */
int cv_store_checkpoint_due(const cv_store_t *store);

/* ---- Jobs and rounds -------------------------------------------------------------------- */

/* What a job's search plans, as the job spec module resolved its spec (defaults filled in):
 * stored beside the spec, in the jobs table's sampler, pruner and rounds_planned columns, so that
 * the jobs list reads them rather than knowing the spec's defaults. */
typedef struct {
    const char *sampler; /* search.sampler's name ("random", "tpe") */
    const char *pruner;  /* search.pruner's name ("none", "asha", "median") */
    int rounds;          /* rounds of the schedule (refine.rounds or the default), >= 1 */
} cv_store_job_plan_t;

/* Stores a new running job. name: display name; objective: DEV_ERROR or DEV_COST; spec: the job
 * spec as JSON text; plan: what the spec plans; region: the initial search region as JSON text,
 * or NULL. All borrowed. Writes the new id into *job_id. */
int cv_store_job_create(cv_store_t *store, const char *name, cv_store_objective_t objective,
                        const char *spec, const cv_store_job_plan_t *plan, const char *region,
                        double now, int64_t *job_id, char *err);

/* Sets a job's status and error text (NULL clears it). finished_at becomes now for any status
 * other than running, NULL for running. CV_EINVAL for an unknown job. */
int cv_store_job_set_status(cv_store_t *store, int64_t job_id, cv_store_job_status_t status,
                            const char *error, double now, char *err);

/* Sets a job's current round and the region (JSON text, or NULL) it samples from. */
int cv_store_job_set_round(cv_store_t *store, int64_t job_id, int round, const char *region,
                           char *err);

/* Replaces a job's spec (JSON text, borrowed) and what it plans (borrowed): its budget was
 * extended. CV_EINVAL when the job does not exist or the text is not JSON. */
int cv_store_job_set_spec(cv_store_t *store, int64_t job_id, const char *spec,
                          const cv_store_job_plan_t *plan, char *err);

/* Sets what a job's spec plans (borrowed), for a job stored before schema version 9, whose plan
 * columns are NULL until the coordinator derives them from its spec at start-up (the store does
 * not parse job specs). CV_EINVAL when the job does not exist. */
int cv_store_job_set_plan(cv_store_t *store, int64_t job_id, const cv_store_job_plan_t *plan,
                          char *err);

/* Stores the held-out test evaluation of the job's best model (JSON text). */
int cv_store_job_set_test_result(cv_store_t *store, int64_t job_id, const char *test_result,
                                 char *err);

/* Cancels a running job and every queued or running trial of it (status cancelled, leases
 * cleared), as one unit. Writes the number of trials cancelled into *trials_cancelled when not
 * NULL. CV_STORE_STALE when the job is no longer running, CV_EINVAL when it does not exist. */
int cv_store_job_cancel(cv_store_t *store, int64_t job_id, double now, int64_t *trials_cancelled,
                        char *err);

/* Deletes a job that is not running and everything of it: its trials, their curves and attempt
 * histories, its rounds and the job row, as one unit (model files are the caller's). Writes the
 * number of trials deleted into *trials_deleted when not NULL. CV_STORE_STALE when the job is
 * running (nothing changes), CV_STORE_NOT_FOUND when it does not exist. */
int cv_store_job_delete(cv_store_t *store, int64_t job_id, int64_t *trials_deleted, char *err);

/* Records that round `round` of a job draws `size` trials from region (JSON text). A round is
 * stored once: CV_EINVAL when it exists. */
int cv_store_round_add(cv_store_t *store, int64_t job_id, int round, int size, const char *region,
                       double now, char *err);

/* ---- Trials ----------------------------------------------------------------------------- */

/* One trial to enqueue. The strings are borrowed for the call. */
typedef struct {
    int number;             /* position in the job's submission order, unique in the job, >= 0 */
    int round;              /* the round that sampled it */
    const char *params;     /* JSON object of the sampled hyperparameter values */
    const char *config_key; /* canonical text of the configuration, unique within the job */
    const char *spec;       /* JSON of the full trial spec sent to workers */
} cv_store_new_trial_t;

/* Stores n queued trials of a job, all or none: a duplicate config_key or number within the job,
 * invalid JSON or an unknown job refuses the whole batch (CV_EINVAL naming the trial). When ids
 * is not NULL it receives the n new trial ids (caller-owned array of n). */
int cv_store_trials_add(cv_store_t *store, int64_t job_id, const cv_store_new_trial_t *trials,
                        size_t n, double now, int64_t *ids, char *err);

/* Marks a queued trial running under a lease: worker_id and lease_token (borrowed) are stored,
 * started_at = now, attempts + 1, and any curve of an earlier attempt is deleted.
 * CV_STORE_STALE when the trial is not queued, CV_EINVAL when it does not exist. */
int cv_store_trial_start(cv_store_t *store, int64_t trial_id, const char *worker_id,
                         const char *lease_token, double now, char *err);

/* A finished trial's outcome. Non-finite doubles and negative integers are stored as NULL. */
typedef struct {
    cv_store_trial_status_t status; /* COMPLETED, FAILED, DIVERGED or PRUNED */
    double dev_error;               /* fraction misclassified on the dev set at best_epoch */
    double dev_cost;                /* dev-set cost at best_epoch */
    double train_error;             /* training error at best_epoch */
    double train_cost;              /* training cost without regularization */
    double train_cost_reg;          /* training cost with the regularization term */
    int best_epoch;                 /* epoch of the kept model, as the worker numbers it (1-based) */
    int epochs_run;                 /* epochs actually trained (early stopping may cut) */
    const char *diagnosis;          /* bias/variance diagnosis text, or NULL */
    double examples_per_second;     /* training throughput */
    const char *error;              /* why it failed or diverged, or NULL */
    const char *model_path;         /* where the worker saved the model, or NULL */
    int64_t n_params;               /* the network's weights and biases (the worker's n_params);
                                       0 when unknown, stored as NULL */
} cv_store_result_t;

/* Records a trial's result and final status, but only while the trial is running under
 * lease_token: otherwise nothing changes and CV_STORE_STALE is returned (a late or duplicate
 * report; the stored row is untouched). CV_EINVAL for an unknown trial or a non-final status.
 * The lease token is cleared once the result is stored. */
int cv_store_put_result(cv_store_t *store, int64_t trial_id, const char *lease_token,
                        const cv_store_result_t *result, double now, char *err);

/* Appends n epochs of a trial's learning curve, all or none (examples_per_second is not kept;
 * non-finite values are stored as NULL). When lease_token is not NULL the points are
 * stored only while the trial runs under it (else CV_STORE_STALE). A point for an epoch already
 * stored replaces it. */
int cv_store_curve_add(cv_store_t *store, int64_t trial_id, const char *lease_token,
                       const cv_epoch_t *points, size_t n, char *err);

/* Takes a running trial off its worker and records the attempt as lost: to_status QUEUED puts it
 * back in line (worker and started_at cleared, queued_at kept so it keeps its place), FAILED
 * retires it with error "lost N leases" (N = attempts that were not interrupted), LOST retires
 * it without an error; a retired trial has finished_at = now and keeps its worker for the
 * record. The lease is cleared either way. When lease_token is not NULL the trial must run under it. CV_STORE_STALE when the
 * trial is not running (under that token), CV_EINVAL when it does not exist or to_status is not
 * QUEUED, FAILED or LOST. */
int cv_store_trial_requeue(cv_store_t *store, int64_t trial_id, const char *lease_token,
                           cv_store_trial_status_t to_status, double now, char *err);

/* Marks the lost attempt that ran trial_id under lease_token as stale: its worker came back
 * with the lease (a late result, or a claim in hello) and was refused. CV_STORE_NOT_FOUND when
 * no lost attempt holds that token (NULL token included). */
int cv_store_attempt_stale(cv_store_t *store, int64_t trial_id, const char *lease_token,
                           char *err);

/* Puts a failed trial back in the queue because its failure was blamed on the worker (the
 * scheduler quarantined it): worker, lease, started_at, finished_at and every result column
 * (metrics, error, model path) are cleared; attempts, queued_at (its place in line) and the
 * attempt history, which keeps the failed attempt, are kept. The curve of the failed attempt
 * stays until the next cv_store_trial_start deletes it. The caller keeps its own count of open
 * trials right. CV_STORE_STALE when the trial is not failed, CV_EINVAL when it does not exist. */
int cv_store_trial_retry(cv_store_t *store, int64_t trial_id, char *err);

/* Puts a trial running under lease_token back in the queue without a result and without using one
 * of its attempts: no worker re-attached to that lease in time after a coordinator restart (why
 * NULL: error "the coordinator restarted"), or its worker was stopped and handed it back (why says
 * so). Like a requeue to QUEUED, but its attempt is recorded as interrupted with error why, which
 * does not count toward the attempts limit. CV_STORE_STALE when the trial is not running under
 * that token, CV_EINVAL when it does not exist or lease_token is NULL. */
int cv_store_trial_interrupt(cv_store_t *store, int64_t trial_id, const char *lease_token,
                             const char *why, double now, char *err);

/* Crash recovery without re-attachment, called at coordinator start-up: every running trial of
 * every job goes back to queued with its lease and worker cleared (its attempts count is kept),
 * and its attempt is recorded as interrupted with ended_at the current clock time. Writes how
 * many into *requeued when not NULL. */
int cv_store_recover(cv_store_t *store, int64_t *requeued, char *err);

/* Reads a trial's status. CV_STORE_NOT_FOUND when there is no such trial. */
int cv_store_trial_status(cv_store_t *store, int64_t trial_id, cv_store_trial_status_t *status,
                          char *err);

/* Finds the id of trial `number` of a job. CV_STORE_NOT_FOUND when there is none. */
int cv_store_trial_id(cv_store_t *store, int64_t job_id, int number, int64_t *trial_id, char *err);

/* ---- Workers ---------------------------------------------------------------------------- */

/* Records that a worker is alive: created on first sight (first_seen = now), otherwise its
 * version, threads and host are refreshed. last_seen = now. Strings borrowed; version and host
 * may be NULL. */
int cv_store_worker_seen(cv_store_t *store, const char *worker_id, const char *version, int threads,
                         const char *host, double now, char *err);

/* Counts a finished trial against a worker: trials_done + 1, and consecutive_failures reset to 0
 * when succeeded, otherwise increased by one; its new value goes into *consecutive_failures when
 * not NULL. CV_STORE_NOT_FOUND for an unknown worker. */
int cv_store_worker_outcome(cv_store_t *store, const char *worker_id, int succeeded,
                            int *consecutive_failures, char *err);

/* The worker's current streak of failed results: the trials of its newest results (attempts
 * that ended completed, failed or diverged, newest first), at most n of them, up to the first
 * that was not failed. Writes their ids into trial_ids (caller-owned, room for n) and their
 * number into *count; a trial that failed twice on the worker appears twice. Lost and stale
 * attempts carry no result and neither extend nor end the streak. */
int cv_store_worker_failed_streak(cv_store_t *store, const char *worker_id, int n,
                                  int64_t *trial_ids, int *count, char *err);

/* Reads a worker's quarantine flag, its count of consecutive failures and when its quarantine
 * ends (*until NaN: no end was set, as in a database of schema version 3 or older); any pointer
 * may be NULL. CV_STORE_NOT_FOUND for an unknown worker. */
int cv_store_worker_get(cv_store_t *store, const char *worker_id, int *quarantined,
                        int *consecutive_failures, double *until, char *err);

/* Moves a worker's last_seen forward to when (never back), without touching anything else:
 * the time of its last message, written when it disconnects. CV_STORE_NOT_FOUND for an unknown
 * worker. */
int cv_store_worker_last_seen(cv_store_t *store, const char *worker_id, double when, char *err);

/* Counts a finished trial against a worker without touching its streak of failures: the result
 * failed through the job's fault (result.fault "job"), which says nothing about the worker.
 * CV_STORE_NOT_FOUND for an unknown worker. */
int cv_store_worker_count(cv_store_t *store, const char *worker_id, char *err);

/* Quarantines a worker: the flag, why (reason, borrowed, may be NULL), since when (now) and
 * until when (until; NaN: until released). CV_STORE_NOT_FOUND for an unknown worker. */
int cv_store_worker_quarantine(cv_store_t *store, const char *worker_id, const char *reason,
                               double now, double until, char *err);

/* Lifts a worker's quarantine (expired, or released by an operator): the flag, its reason and
 * times are cleared and its count of consecutive failures starts again from 0.
 * CV_STORE_NOT_FOUND for an unknown worker. */
int cv_store_worker_release(cv_store_t *store, const char *worker_id, char *err);

/* The first trial of a job to end failed or diverged (by finish time, then number): its id,
 * status and error (copied into error, cap bytes; "no reason given" when it has none).
 * CV_STORE_NOT_FOUND when no trial of the job failed or diverged. */
int cv_store_job_first_failure(cv_store_t *store, int64_t job_id, int64_t *trial_id,
                               cv_store_trial_status_t *status, char *error, size_t cap,
                               char *err);

/* ---- Queries for the HTTP API (cJSON trees the caller frees with cJSON_Delete) ------------ */

/* Queries that list return one page: at most `limit` rows (limit <= 0: all) that come after a
 * key, the key of the last row of the previous page (keyset pagination: each page is an index
 * range scan, however deep into the list it starts). */

/* Jobs with an id greater than after_id (0: from the first), oldest first: [{id, name,
 * objective, status, round, created_at, finished_at, error, max_trials, finished, running,
 * best_value, sampler, pruner, rounds_planned}], the last three the job's stored plan
 * (cv_store_job_plan_t; null while a job stored before schema version 9 has none). On success
 * *out is a new array owned by the caller; on failure NULL. */
int cv_store_jobs_list(cv_store_t *store, int64_t after_id, int64_t limit, cJSON **out, char *err);

/* One job: its columns (spec, region and test_result as JSON values), "counts" (an object with
 * every trial status name mapped to a count), "rounds" ([{round, size, region, created_at}]),
 * "quarantined_workers" ([{worker_id, reason, quarantined_at, quarantined_until}] of the workers
 * that ran any of its trials and are quarantined now: flagged, and until NULL or in the future) and
 * "best" (the first of cv_store_trials_top by the job's objective, or null).
 * CV_STORE_NOT_FOUND for an unknown job. *out is caller-owned. */
int cv_store_job_get(cv_store_t *store, int64_t job_id, cJSON **out, char *err);

/* A job's trials with a number greater than after_number (-1: from the first) in submission
 * order, at most `limit` of them (limit <= 0: all). Each element: {id, job_id, number, round,
 * status, attempts, params, worker_id, queued_at, started_at, finished_at, dev_error, dev_cost,
 * train_error, train_cost, train_cost_reg, best_epoch, epochs_run, diagnosis, examples_per_second,
 * error, model_path, n_params}; absent values are null. CV_STORE_NOT_FOUND for an unknown job. *out is
 * caller-owned. */
int cv_store_trials_list(cv_store_t *store, int64_t job_id, int64_t after_number, int64_t limit,
                         cJSON **out, char *err);

/* The k best completed trials of a job by objective, smallest first. Ties on the objective go
 * to the lower value of the other dev-set measure (dev cost for dev_error, dev error for
 * dev_cost), then to the smaller network (n_params; unknown sizes last), then to the lower
 * number. Elements as cv_store_trials_list's. CV_STORE_NOT_FOUND for an unknown job. */
int cv_store_trials_top(cv_store_t *store, int64_t job_id, cv_store_objective_t objective,
                        int64_t k, cJSON **out, char *err);

/* Where a ranking by objective resumes: the whole ranking key of the last trial of the previous
 * page (see cv_store_trials_top for the order). */
typedef struct {
    double value;     /* the trial's dev_error or dev_cost, whichever the job minimises */
    double second;    /* the other of the two; INFINITY when the trial has none */
    int64_t n_params; /* the network's size; INT64_MAX when unknown */
    int64_t number;   /* the trial's number, which breaks the last ties */
} cv_store_rank_key_t;

/* A job's completed trials ranked by the job's objective as cv_store_trials_top ranks them,
 * starting after the key `after` (NULL: from the best), at most `limit` of them (limit <= 0:
 * all). The job's objective (DEV_ERROR or DEV_COST) goes into *objective when not NULL, so the
 * caller knows which value keys the next page. CV_STORE_NOT_FOUND for an unknown job. *out is
 * caller-owned. */
int cv_store_trials_ranked(cv_store_t *store, int64_t job_id, const cv_store_rank_key_t *after,
                           int64_t limit, cv_store_objective_t *objective, cJSON **out, char *err);

/* One trial as in cv_store_trials_list plus config_key, spec, "curve" ([{epoch, train_cost,
 * train_cost_reg, dev_cost, train_error, dev_error, learning_rate, seconds}] by epoch, the
 * points of epochs >= curve_from only: 0 for the whole curve) and "attempts_history"
 * ([{attempt, worker_id, started_at, ended_at, outcome, error}] by attempt).
 * CV_STORE_NOT_FOUND for an unknown trial. *out is caller-owned. */
int cv_store_trial_get(cv_store_t *store, int64_t trial_id, int64_t curve_from, cJSON **out,
                       char *err);

/* The number of trials of every job in each status, indexed by cv_store_trial_status_t. */
int cv_store_trial_counts(cv_store_t *store, int64_t counts[CV_STORE_TRIAL_STATUSES], char *err);

/* Workers whose id sorts after after_id (NULL: from the first; borrowed), by id: [{id,
 * version, threads, host, first_seen, last_seen, trials_done, consecutive_failures,
 * quarantined, quarantine_reason, quarantined_until}]. *out is caller-owned. */
int cv_store_workers_list(cv_store_t *store, const char *after_id, int64_t limit, cJSON **out,
                          char *err);

/* ---- Iterators for resuming after a restart --------------------------------------------- */
/* The callback receives rows whose strings are borrowed until it returns. It returns 0 to go on;
 * any other value stops the iteration and is returned by the iterator (use a CV_E* code). The
 * callback must not call into the same store. */

typedef struct {
    int64_t id;
    const char *name;
    cv_store_objective_t objective;
    const char *spec; /* JSON text */
    cv_store_job_status_t status;
    int round;          /* current round */
    const char *region; /* JSON text of the current region, or NULL */
    double created_at;
    double busy_seconds, available_seconds; /* worker usage so far (cv_store_job_set_usage) */
} cv_store_job_row_t;

typedef int (*cv_store_on_job_t)(void *ctx, const cv_store_job_row_t *row);

/* Which jobs cv_store_jobs_each visits. */
typedef enum {
    CV_STORE_JOBS_ALL,       /* every job */
    CV_STORE_JOBS_RUNNING,   /* the running ones */
    CV_STORE_JOBS_UNPLANNED, /* the ones with no stored plan (stored before schema version 9) */
} cv_store_jobs_t;

/* Visits the jobs which selects, by id. */
int cv_store_jobs_each(cv_store_t *store, cv_store_jobs_t which, cv_store_on_job_t on_job,
                       void *ctx, char *err);

/* Visits the one job job_id, whatever its status. CV_STORE_NOT_FOUND when it does not exist. */
int cv_store_job_visit(cv_store_t *store, int64_t job_id, cv_store_on_job_t on_job, void *ctx,
                       char *err);

typedef struct {
    int round;
    int size;           /* trials the round draws */
    const char *region; /* JSON text */
} cv_store_round_row_t;

typedef int (*cv_store_on_round_t)(void *ctx, const cv_store_round_row_t *row);

/* Counts one more trial in a round (rounds grow as their trials are proposed). */
int cv_store_round_grow(cv_store_t *store, int64_t job_id, int round, char *err);

/* Sets a job's worker usage so far: busy worker-seconds (its trials running) and available
 * worker-seconds (workers it could have used), see scheduler.h. */
int cv_store_job_set_usage(cv_store_t *store, int64_t job_id, double busy_seconds,
                           double available_seconds, char *err);

/* One decision of a job's pruner: trial (id and number) judged at epoch with value (its best
 * objective so far; NaN stored as NULL), stopped or let go on. */
typedef struct {
    int64_t trial_id;
    int number;
    int epoch;
    double value;
    int stopped;
} cv_store_decision_t;

typedef int (*cv_store_on_decision_t)(void *ctx, const cv_store_decision_t *d);

/* Records a decision; a second one for the same trial and epoch is refused (the pruner decides
 * each once). */
int cv_store_decision_add(cv_store_t *store, int64_t job_id, const cv_store_decision_t *d,
                          double now, char *err);

/* Visits a job's decisions in the order they were made. */
int cv_store_decisions_each(cv_store_t *store, int64_t job_id, cv_store_on_decision_t on_decision,
                            void *ctx, char *err);

/* One nudge of a trial (panda mode, schemas/protocol.md): its number, its new values as JSON
 * text, and the epoch it took effect at (0 while its worker has not said). */
typedef struct {
    int64_t trial_id;
    int64_t seq;             /* 1.. in the order the trial's nudges were made */
    const char *values_json; /* borrowed from the statement during the visit */
    int epoch;               /* 0: not yet applied */
    double created_at;       /* wall seconds */
    double applied_at;       /* wall seconds; NaN while not applied */
} cv_store_nudge_t;

typedef int (*cv_store_on_nudge_t)(void *ctx, const cv_store_nudge_t *n);

/* Records nudge n->seq of n->trial_id with its values (epoch and applied_at are ignored). */
int cv_store_nudge_add(cv_store_t *store, const cv_store_nudge_t *n, char *err);

/* Records that nudge seq of trial_id took effect at epoch, unless an epoch is recorded already
 * (a repeated answer changes nothing). */
int cv_store_nudge_applied(cv_store_t *store, int64_t trial_id, int64_t seq, int epoch, double now,
                           char *err);

/* Visits a trial's nudges in seq order. *last_seq (may be NULL) gets the highest seq, 0 for
 * none. on_nudge may be NULL. */
int cv_store_nudges_each(cv_store_t *store, int64_t trial_id, cv_store_on_nudge_t on_nudge,
                         void *ctx, int64_t *last_seq, char *err);

/* The lowest dev error and dev cost over the curve of a trial's current attempt (NaN when it
 * has no epoch yet). */
int cv_store_trial_curve_best(cv_store_t *store, int64_t trial_id, double *dev_error,
                              double *dev_cost, char *err);

/* Visits a job's rounds in order. */
int cv_store_rounds_each(cv_store_t *store, int64_t job_id, cv_store_on_round_t on_round, void *ctx,
                         char *err);

typedef struct {
    int64_t id;
    int number;
    int round;
    cv_store_trial_status_t status;
    int attempts;
    const char *params; /* JSON text of the sampled values */
    const char *config_key;
    const char *spec; /* JSON text of the full trial spec (needed to re-send queued ones) */
    double objective; /* the job's objective value; NaN when not recorded */
    const char *lease;     /* lease token while running, else NULL */
    const char *worker_id; /* the worker that holds or last held it, or NULL */
    int interrupted;       /* attempts that ended interrupted (not counted toward the limit) */
} cv_store_trial_row_t;

typedef int (*cv_store_on_trial_t)(void *ctx, const cv_store_trial_row_t *row);

/* Visits a job's trials in submission order. */
int cv_store_trials_each(cv_store_t *store, int64_t job_id, cv_store_on_trial_t on_trial, void *ctx,
                         char *err);

#endif
