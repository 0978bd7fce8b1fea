/* The scheduler: the coordinator's in-memory state of jobs, trials and workers, and the rules
 * that move them, on the loop thread. It samples each round of a job, leases queued trials to
 * idle workers, applies results under their lease tokens, refines the search region between
 * rounds, and enforces the budget, all in one place.
 *
 * Durability: every state change is written to the store inside an open write group; the group
 * is committed by cv_sched_flush, which the loop calls once per iteration (group commit). Only
 * after that commit are results acknowledged to workers, so an acknowledged result is always
 * on disk. A job submission commits before it returns.
 *
 * Trial lifecycle (times in seconds):
 *
 *   queued ──lease──▶ running ──result──▶ completed | failed | diverged
 *      ▲                 │ worker gone or silent for lease_seconds (the attempt is lost):
 *      └── attempts left ┤
 *                        └─ no attempts left (max_attempts) ─▶ failed ("lost N leases")
 *   queued | running ──job cancelled or over its time budget──▶ cancelled
 *   running ──result `stopped` (the worker got SIGTERM)──▶ queued, the attempt not counted
 *
 * Each lease that ends leaves a row in the trial's attempt history (store.h): its outcome is
 * the result's status, or lost; a lost lease whose worker comes back with it (a late result, or
 * a claim in hello after reconnecting) is refused and its row becomes stale. A trial is thus
 * never counted twice: only the current lease can store a result.
 *
 * Quarantine: a worker whose results are failed quarantine_after times in a row (the count is
 * kept in the store across reconnections; a completed or diverged result resets it) is
 * quarantined: it stays connected but gets no more trials, and the store lists it on the jobs
 * it ran trials of. The trials of its failure streak go back to the queue for other workers when
 * their round is still open (the failures were the worker's, not the configuration's); a trial
 * whose round already ended stays failed, and the log says why. Only an operator clears the flag
 * (in the store).
 *
 * A running trial belongs to one worker under a 128-bit random lease token; a result or progress
 * message is applied only under the current token (a stale one is refused and acknowledged as
 * not stored). The transport (worker_server.c) tells the scheduler about workers and messages
 * and carries out what the scheduler asks through cv_sched_ops_t. */
#ifndef CV_SCHEDULER_H
#define CV_SCHEDULER_H

#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "common/log.h"
#include "server/store.h"

typedef struct cv_sched cv_sched_t;
typedef struct cv_sched_worker cv_sched_worker_t;

/* What the scheduler asks of the transport. conn is the transport's handle of the worker. Each
 * returns 0, or non-zero when the message could not be queued (the transport then drops the
 * worker itself). */
typedef struct {
    int (*send_trial)(void *conn, int64_t trial_id, int64_t job_id, const char *lease,
                      const char *spec_json, const cJSON *files);
    int (*send_ack)(void *conn, int64_t trial_id, int stored);
    int (*send_stop)(void *conn, int64_t trial_id);
} cv_sched_ops_t;

typedef struct {
    cv_store_t *store;           /* read-write store, borrowed; the scheduler is its only user */
    const char *data_dir;        /* models are kept under <data_dir>/models/<job>/<trial>.model */
    int max_attempts;            /* leases a trial may hold before it is retired as failed (3) */
    int quarantine_after;        /* consecutive failed results that quarantine a worker (3);
                                    negative: never */
    const cv_log_t *log;
    cv_sched_ops_t ops;
    /* Dataset confinement (server/paths.h): with roots, every dataset path of a job must resolve
     * inside one of them; none keeps paths relative to the working directory. Borrowed. */
    const char *const *dataset_roots;
    size_t n_dataset_roots;
} cv_sched_config_t;

/* Creates a scheduler and resumes every running job found in the store: trials that were running
 * when the coordinator stopped go back to the queue (their leases are void), and a job whose
 * round had finished samples its next one. The caller owns the result (cv_sched_destroy). */
int cv_sched_create(cv_sched_t **out, const cv_sched_config_t *config, double now, char *err);
/* Frees the scheduler, rolling back an uncommitted group (nothing in it was acknowledged).
 * Accepts NULL. */
void cv_sched_destroy(cv_sched_t *sched);

/* Commits the open write group, then sends the acknowledgements that waited for it. Returns 0,
 * or CV_EIO when the commit failed (then and at every later call): nothing in the group was
 * acknowledged, its acknowledgements are dropped, and the in-memory
 * state no longer matches the disk, so the coordinator must stop (crash-only: a restart recovers
 * from the store, and workers resend what was not acknowledged). */
int cv_sched_flush(cv_sched_t *sched, double now);

/* Results waiting for the next commit. */
size_t cv_sched_pending(const cv_sched_t *sched);

/* ---- jobs (HTTP API) ------------------------------------------------------------------- */

/* Validates a job spec (JSON text), stores the job and its first round, and commits. On success
 * *job_id is the new job's id. CV_EINVAL (or CV_EFORMAT, CV_ERANGE) with the field and rule in
 * err for a bad spec; CV_EIO when the store failed. */
int cv_sched_submit(cv_sched_t *sched, const char *text, size_t len, double now, int64_t *job_id,
                    char *err);
/* Cancels a running job: queued trials are cancelled, running ones are stopped on their workers
 * and cancelled. Commits. CV_STORE_STALE when the job is not running, CV_STORE_NOT_FOUND when
 * it does not exist. */
int cv_sched_cancel(cv_sched_t *sched, int64_t job_id, double now, int64_t *cancelled, char *err);
/* Number of trials of a job running right now (0 for an unknown job). */
int cv_sched_running(const cv_sched_t *sched, int64_t job_id);
/* Time-based work: jobs past their wall-clock budget stop. Call about once a second. */
void cv_sched_tick(cv_sched_t *sched, double now);

/* ---- workers (transport) --------------------------------------------------------------- */

/* A worker said hello on connection conn. leases lists the (trial_id, lease) pairs it claims;
 * the ones still its own are re-attached and written into reattached (up to max entries), their
 * count into *n_reattached. Returns the worker's slot (owned by the scheduler) or NULL when out
 * of memory. */
cv_sched_worker_t *cv_sched_worker_join(cv_sched_t *sched, void *conn, const char *worker_id,
                                        const char *version, int threads, const char *host,
                                        const int64_t *lease_trials, const char (*leases)[33],
                                        int n_leases, int64_t *reattached, int *n_reattached,
                                        double now);
/* The worker's connection closed or went silent: its running trial returns to the queue (or is
 * retired as failed), the attempt is recorded as lost, and the slot is freed. */
void cv_sched_worker_leave(cv_sched_t *sched, cv_sched_worker_t *w, double now);
/* Gives idle workers that are not quarantined queued trials while jobs have budget. */
void cv_sched_dispatch(cv_sched_t *sched, double now);
/* Number of workers holding a trial right now (results may still come). */
int cv_sched_busy(const cv_sched_t *sched);

/* A progress message: one epoch of trial_id under lease. Returns 0 when applied, CV_STORE_STALE
 * when the lease is not current, CV_EINVAL when the worker does not hold that trial. */
int cv_sched_on_progress(cv_sched_t *sched, cv_sched_worker_t *w, int64_t trial_id,
                         const char *lease, const cJSON *epoch, char *err);
/* A result message. model_path (may be NULL) is a file the transport received the model into;
 * the scheduler moves it into the data directory. The acknowledgement is sent after the next
 * commit (stored) or at once when the lease is stale (not stored; a lost attempt of that lease
 * becomes stale in the history). Returns 0 or CV_EINVAL when
 * the worker does not hold that trial (a protocol violation: drop the worker). */
int cv_sched_on_result(cv_sched_t *sched, cv_sched_worker_t *w, int64_t trial_id,
                       const char *lease, const cJSON *result, const char *model_path,
                       double now, char *err);

/* ---- evaluation ------------------------------------------------------------------------ */

/* Paths of the model files of a finished job's best k trials by its objective (k ≤ 16) and the
 * job's spec of the best one, for a test-set evaluation. Returns the number of models found. */
int cv_sched_best_models(cv_sched_t *sched, int64_t job_id, int k, char (*paths)[1024],
                         int64_t *trial_ids, char **trial_spec_json, char *err);

/* Counters of the durable write path since start-up. */
typedef struct {
    uint64_t results;          /* results committed */
    uint64_t commits;          /* non-empty commits */
    double latency_p50;        /* seconds from a result's arrival to its commit: median */
    double latency_p99;        /* ... 99th percentile (quarter-octave histogram resolution) */
    double latency_max;        /* ... largest */
} cv_sched_stats_t;

void cv_sched_stats(const cv_sched_t *sched, cv_sched_stats_t *out);

/* Stores a job's test-set evaluation (JSON text) and commits. */
int cv_sched_store_test_result(cv_sched_t *sched, int64_t job_id, const char *json, char *err);

/* The SHA-256 registry of dataset files this coordinator serves: the path of a file by its hash,
 * or NULL. */
const char *cv_sched_dataset_path(const cv_sched_t *sched, const char *hash);

#endif
