/* The scheduler: the coordinator's in-memory state of jobs, trials and workers, and the rules
 * that move them, on the loop thread. It samples each round of a job, leases queued trials to
 * idle workers, applies results under their lease tokens, refines the search region between
 * rounds, and enforces the budget, all in one place.
 *
 * Durability: every state change is written to the store inside an open write group; the group
 * is committed by cv_sched_flush, which the loop calls once per iteration (group commit). Only
 * after that commit is on disk are results acknowledged to workers, so an acknowledged result is
 * always on disk; with cfg.deferred_sync the loop does not wait for the disk: the commit's sync
 * runs on the thread pool and the acknowledgements go when it ends. A job submission, a cancel
 * and the other operator's writes commit before they return; their answers wait for the sync
 * through cv_sched_after_commit.
 *
 * Trial lifecycle (times in seconds):
 *
 *   queued ──lease──▶ running ──result──▶ completed | failed | diverged
 *      ▲                 │ worker gone or silent for lease_seconds (the attempt is lost):
 *      └── attempts left ┤
 *      │                 └─ no attempts left (max_attempts) ─▶ failed ("lost N leases")
 *      │          running ──coordinator restart──▶ running, waiting for its worker (orphan)
 *      │                                             │ the worker's hello claims the lease
 *      │                                             │ within reattach_seconds: running again
 *      └──────── not claimed in time, or its worker came back without it (interrupted) ┘
 *   queued | running ──job cancelled or over its time budget──▶ cancelled
 *   running ──result `stopped` (the worker got SIGTERM)──▶ queued, the attempt not counted
 *   An ask job's trial runs on an HTTP client's lease instead (see "ask/tell" below): its report
 *   or tell is the worker's progress or result, and a client silent for ask_lease_seconds is a
 *   worker gone (the attempt is lost); across a restart its lease is kept, not orphaned.
 *
 * Restarts: the store keeps a running trial running under its lease across a coordinator
 * restart (or a SIGTERM stop, see cv_sched_detach), and its worker, which keeps training while
 * disconnected, claims the lease in its next hello and goes on as if nothing happened: same
 * attempt, same lease, its result stored as usual. A trial nobody re-attaches to within
 * reattach_seconds of start-up goes back to the front of the queue; its attempt ends
 * interrupted, which is not the trial's fault and does not count toward max_attempts.
 *
 * Memory: a job lives in memory while it runs. Once it ends (completed, cancelled, failed) its
 * trials, key set, spec and files are freed at the next cv_sched_flush; the API reads finished
 * jobs from the store. A late result for a trial of a finished job is refused as stale.
 *
 * Each lease that ends leaves a row in the trial's attempt history (store.h): its outcome is
 * the result's status, lost, or interrupted (a restart); a lost lease whose worker comes back
 * with it (a late result, or a claim in hello after reconnecting) is refused and its row
 * becomes stale. A trial is thus
 * never counted twice: only the current lease can store a result.
 *
 * Whose fault a failure is: a worker says so in its result (result.fault). A failure of the
 * job's own making (its data cannot be loaded or parsed, its spec does not fit the data, its
 * dataset changed after submission, its network cannot be allocated) would happen on any worker,
 * so it ends the job at once: the job is failed with that trial's error, its queued trials are
 * cancelled and its running ones stopped, and the worker is not blamed. A job that ends with no
 * completed trial at all is failed too, with the first trial's error.
 *
 * Quarantine is for a worker that fails where others succeed: a worker whose results are failed
 * through its own fault quarantine_after times in a row (the count is kept in the store across
 * reconnections; a completed or diverged result resets it, a job's fault leaves it as it is) is
 * quarantined for quarantine_seconds: it stays connected but gets no trials, and the jobs it ran
 * trials of list it with the reason. The trials of its failure streak go back to the queue for
 * other workers when their round is still open; a trial whose round already ended stays failed,
 * and the log says why. A quarantine ends when its time is up or an operator releases the worker
 * (cv_sched_worker_release); its count of failures then starts again from 0.
 *
 * Dataset files are read and hashed off the loop thread (server/dataset_check.h): before a job
 * is accepted (cv_sched_new_check, then cv_sched_submit_checked), and again when a job resumes
 * after a restart; a resumed job gets no worker until its files are checked, and fails when they
 * are gone or unusable.
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

#include <uv.h>

#include "common/log.h"
#include "common/message.h"
#include "common/result.h"
#include "server/dataset_check.h"
#include "server/evaluation.h"
#include "server/store.h"

typedef struct cv_sched cv_sched_t;
typedef struct cv_sched_worker cv_sched_worker_t;

/* What the scheduler asks of the transport. conn is the transport's handle of the worker. Each
 * returns 0, or non-zero when the message could not be queued (the transport then drops the
 * worker itself). */
typedef struct {
    /* A trial to train (borrowed): its decide_at are the epochs (ascending) after which the
     * worker waits for a decision on the trial before it trains on (the pruner's decision
     * epochs); may be none. */
    int (*send_trial)(void *conn, const cv_msg_trial_t *trial);
    int (*send_ack)(void *conn, int64_t trial_id, int stored);
    int (*send_stop)(void *conn, int64_t trial_id);
    /* The pruner's decision on a trial at an epoch: stop 1 ends it as pruned at its next epoch
     * boundary (at once when the worker waits at that epoch), 0 lets it go on. */
    int (*send_decision)(void *conn, int64_t trial_id, int epoch, int stop);
    /* A test-set evaluation (server/evaluation.h); NULL: workers get none. */
    cv_eval_send_fn send_evaluate;
    /* Nudge seq of a running trial: values (borrowed) to apply at the next epoch boundary, or
     * at at_epoch (a re-run re-applying it where it took effect before); NULL: none are sent. */
    int (*send_nudge)(void *conn, int64_t trial_id, int64_t seq, const cJSON *values, int at_epoch);
    /* An importance task (server/evaluation.h); NULL: workers get none. */
    cv_importance_send_fn send_importance;
} cv_sched_ops_t;

typedef struct {
    cv_store_t *store;           /* read-write store, borrowed; the scheduler is its only user */
    const char *data_dir;        /* models are kept under <data_dir>/models/<job>/<trial>.model */
    int max_attempts;            /* leases a trial may hold before it is retired as failed (3);
                                    interrupted ones do not count */
    double reattach_seconds;     /* after start-up, how long a trial that was running waits for
                                    its worker to re-attach before it goes back to the queue, in
                                    seconds; 0 or less: at once (caviard's default is 30) */
    int quarantine_after;        /* consecutive failed results that quarantine a worker (3);
                                    negative: never */
    const cv_log_t *log;
    cv_sched_ops_t ops;
    /* Dataset confinement (server/paths.h): with roots, every dataset path of a job must resolve
     * inside one of them; none keeps paths relative to the working directory. Borrowed. */
    const char *const *dataset_roots;
    size_t n_dataset_roots;
    uint64_t max_dataset_bytes;  /* size cap of one dataset file; 0: none */
    double quarantine_seconds;   /* how long a quarantine lasts; 0: until released */
    uv_loop_t *loop;             /* the loop whose thread pool checks the datasets of resumed
                                    jobs; NULL: they are checked at once, blocking */
    double ask_lease_seconds;    /* an ask lease (cv_sched_ask) not renewed by a report for this
                                    long is lost, in seconds; 0 or less: 60 */
    int deferred_sync;           /* 1: the store was opened with deferred_sync (store.h): the
                                    group commit does not wait for the disk; the WAL is synced
                                    on the loop's thread pool (loop required) and what waits for
                                    a commit goes once that sync ends. A commit made outside the
                                    group commit (a submission, a cancel...) is synced at once */
} cv_sched_config_t;

/* Creates a scheduler and resumes every running job found in the store: trials that were running
 * when the coordinator stopped stay running under their leases for reattach_seconds, waiting for
 * their workers to re-attach (cv_sched_worker_join); cv_sched_tick puts back in the queue those
 * still unclaimed after that, recording the attempt as interrupted. A job whose round had
 * finished samples its next one. The caller owns the result (cv_sched_destroy). */
int cv_sched_create(cv_sched_t **out, const cv_sched_config_t *config, double now, char *err);
/* Frees the scheduler, rolling back an uncommitted group (nothing in it was acknowledged). The
 * loop must have run until cv_sched_idle (no dataset check in flight). Accepts NULL. */
void cv_sched_destroy(cv_sched_t *sched);

/* Commits the open write group, then sends the acknowledgements that waited for it. Returns 0,
 * or CV_EIO when the commit failed (then and at every later call): nothing in the group was
 * acknowledged, its acknowledgements are dropped, and the in-memory
 * state no longer matches the disk, so the coordinator must stop (crash-only: a restart recovers
 * from the store, and workers resend what was not acknowledged). */
int cv_sched_flush(cv_sched_t *sched, double now);

/* Called once what a request (an ask, a report, a tell, an operator's write) wrote is committed
 * and on disk (committed 1), or when the commit failed (0: it may be lost); stop is the
 * pruner's decision on a reported trial (1: stop training), else 0. ctx is the caller's. */
typedef void (*cv_sched_ask_done_fn)(void *ctx, int committed, int stop);

/* 1 when everything written so far is committed and on disk: an answer about it may go now. */
int cv_sched_all_durable(const cv_sched_t *sched);

/* Calls done(ctx, committed, 0) once what was written before this call is committed and on disk
 * (committed 1), or when the store failed first (committed 0); never from within this call.
 * For the answer to a request that wrote. 0, or CV_ENOMEM (done will not be called). */
int cv_sched_after_commit(cv_sched_t *sched, cv_sched_ask_done_fn done, void *ctx);

/* With cfg.deferred_sync: syncs the commits not yet durable here, blocking, and sends what
 * waited for them (for the last flush before the coordinator stops). 0, or CV_EIO as
 * cv_sched_flush. Without deferred_sync: does nothing. */
int cv_sched_sync_now(cv_sched_t *sched);

/* Results waiting for the next commit (not those committed and waiting for their sync). */
size_t cv_sched_pending(const cv_sched_t *sched);

/* ---- jobs (HTTP API) ------------------------------------------------------------------- */

/* Validates a job spec (JSON text), checks its datasets here and now (blocking: for tools and
 * tests; the coordinator uses the two calls below), stores the job and its first round, and
 * commits. On success *job_id is the new job's id. CV_EINVAL (or CV_EFORMAT, CV_ERANGE) with the
 * field and rule in err for a bad spec or dataset; CV_EUNAVAIL for a job naming an external
 * trainer that no connected worker offers (err: 'trainer: no connected worker offers "NAME"
 * (workers offer: a, b)', or "none"); CV_EIO when the store failed. */
int cv_sched_submit(cv_sched_t *sched, const char *text, size_t len, double now, int64_t *job_id,
                    char *err);
/* The first half of a submission, on the loop thread: validates the job spec (JSON text),
 * refuses an external trainer no connected worker offers (cv_sched_trainer_offered), and
 * prepares the check of its datasets under the scheduler's dataset roots and size cap, to run
 * on the thread pool (cv_dataset_check_start). On success *check is the caller's
 * (cv_dataset_check_destroy). Errors as cv_sched_submit's. */
int cv_sched_new_check(cv_sched_t *sched, const char *text, size_t len,
                       cv_dataset_check_t **check, char *err);
/* The second half, once check (borrowed) passed: stores the job of the same spec text with the
 * checked files, and its first round, and commits. Errors as cv_sched_submit's. */
int cv_sched_submit_checked(cv_sched_t *sched, const char *text, size_t len,
                            const cv_dataset_check_t *check, double now, int64_t *job_id,
                            char *err);
/* 1 when no dataset check of a resumed job, no removal of a deleted job's models and no sync of
 * the store is in flight (the scheduler may be destroyed). */
int cv_sched_idle(const cv_sched_t *sched);
/* Asks the dataset checks in flight to stop (the coordinator is stopping). */
void cv_sched_stop_checks(cv_sched_t *sched);
/* Cancels a running job: queued trials are cancelled, running ones are stopped on their workers
 * and cancelled. Commits. CV_STORE_STALE when the job is not running, CV_STORE_NOT_FOUND when
 * it does not exist. */
int cv_sched_cancel(cv_sched_t *sched, int64_t job_id, double now, int64_t *cancelled, char *err);
/* Deletes a job that is not running: its rows (trials, curves, attempts, rounds, the job) in one
 * transaction, committed here; then its model files (<data_dir>/models/<job>/) are removed on
 * the loop's thread pool (cv_sched_idle is 0 until that is done). *trials_deleted (may be NULL)
 * gets how many trials went. CV_STORE_STALE when the job is running, CV_STORE_NOT_FOUND when it
 * does not exist, CV_EIO when the store failed. */
int cv_sched_delete(cv_sched_t *s, int64_t job_id, int64_t *trials_deleted, char *err);
/* Extends a completed job (one that stopped at its time budget included) to max_trials trials
 * and runs it again: its finished trials and their configuration keys stay, the stored spec gets
 * the new budget.max_trials (and refine.rounds the counts of its rounds followed by the new
 * one; a time budget gives it as much time again from now), and a new round of max_trials minus
 * the trials it has is sampled around the best of all its finished trials. Its datasets are
 * checked again on the thread pool before any trial is leased. Commits; *round gets the new
 * round (0-based). CV_STORE_NOT_FOUND for an unknown job; CV_STORE_STALE with the reason in err
 * when the job is running, cancelled or failed, or can have no new round; CV_EINVAL naming
 * max_trials when it is not above the trials the job has; CV_EIO when the store failed. */
int cv_sched_extend(cv_sched_t *s, int64_t job_id, int64_t max_trials, double now, int *round,
                    char *err);
/* Number of trials of a job running right now (0 for an unknown job). */
int cv_sched_running(const cv_sched_t *sched, int64_t job_id);
/* Time-based work: jobs past their wall-clock budget stop, and once the re-attachment grace of
 * start-up is over, the trials no worker re-attached to go back to the queue (interrupted).
 * Call about once a second. */
void cv_sched_tick(cv_sched_t *sched, double now);

/* ---- workers (transport) --------------------------------------------------------------- */

/* A worker said hello on connection conn. leases lists the (trial_id, lease) pairs it claims;
 * the ones still its own are re-attached and written into reattached (up to max entries), their
 * count into *n_reattached. A trial waiting since start-up for this worker (by worker_id) that
 * it does not re-attach to goes back to the queue at once (interrupted): the worker lost it.
 * Returns the worker's slot (owned by the scheduler) or NULL when out of memory. */
cv_sched_worker_t *cv_sched_worker_join(cv_sched_t *sched, void *conn, const char *worker_id,
                                        const char *version, int threads, const char *host,
                                        const int64_t *lease_trials, const char (*leases)[33],
                                        int n_leases, int64_t *reattached, int *n_reattached,
                                        double now);
/* Records the external trainers worker w offers (hello.trainers: n distinct names, n <=
 * CV_MSG_TRAINERS_MAX, copied). It is then given the trials of jobs naming one of them, besides
 * built-in ones. Call before the worker is welcomed. */
void cv_sched_worker_set_trainers(cv_sched_worker_t *w, const char (*names)[CV_MSG_TRAINER_MAX + 1],
                                  size_t n);
/* Read-only: 1 when a connected worker offers the external trainer name, else 0 with the names
 * connected workers do offer written into offered (cap bytes: "a, b", or "none"), each once. */
int cv_sched_trainer_offered(const cv_sched_t *sched, const char *name, char *offered, size_t cap);
/* The worker's connection closed or went silent: its running trial returns to the queue (or is
 * retired as failed), the attempt is recorded as lost, and the slot is freed. After
 * cv_sched_detach the trial instead keeps its lease (nothing is written). */
void cv_sched_worker_leave(cv_sched_t *sched, cv_sched_worker_t *w, double now);
/* The coordinator is stopping while workers may still train: from now on a worker that leaves
 * keeps its trial running under its lease in the store, so that it can re-attach to it after a
 * restart instead of losing an attempt. Accepts NULL. */
void cv_sched_detach(cv_sched_t *sched);
/* Lifts the quarantine of worker_id (connected or not) and commits; *was_quarantined (may be
 * NULL) says whether it was. CV_STORE_NOT_FOUND for a worker never seen, CV_EIO when the store
 * failed. */
int cv_sched_worker_release(cv_sched_t *sched, const char *worker_id, double now,
                            int *was_quarantined, char *err);
/* Gives idle workers that are not quarantined queued trials while jobs have budget (and ends
 * the quarantines whose time is up). */
void cv_sched_dispatch(cv_sched_t *sched, double now);
/* Number of workers holding a trial right now (results may still come). */
int cv_sched_busy(const cv_sched_t *sched);
/* A message of any kind arrived from worker w at wall-clock time now: its last_seen moves on.
 * Accepts NULL (a connection that has not said hello has no slot). */
void cv_sched_worker_seen(cv_sched_worker_t *w, double now);

/* What one connected worker is doing, as the scheduler sees it right now. */
typedef struct {
    const char *id;    /* borrowed from the scheduler; valid until its next non-const call */
    int quarantined;   /* 1: it gets no trials */
    int64_t trial_id;  /* the trial it runs, 0 when idle */
    int64_t job_id;    /* that trial's job, 0 when idle */
    double last_seen;  /* wall-clock seconds of its last message */
    char trainers[CV_MSG_TRAINERS_MAX][CV_MSG_TRAINER_MAX + 1]; /* the external trainers it
                                                                   offers (hello.trainers) */
    size_t n_trainers;
} cv_sched_worker_view_t;

/* Read-only: writes the connected workers, newest connection first, into out[0..cap) and returns
 * how many are connected (more than cap when out is too small; call with cap 0 to count). A
 * worker id appears twice while an old connection of a reconnected worker is being closed. */
size_t cv_sched_workers_view(const cv_sched_t *sched, cv_sched_worker_view_t *out, size_t cap);

/* Nudges a running trial (panda mode): values (borrowed) is checked against the trial's spec by
 * the trial spec's rules, stored as its next nudge (*seq) and committed, then sent to its worker
 * when one holds it. CV_STORE_NOT_FOUND for an unknown trial, CV_STORE_STALE (err: its status)
 * when it is not running, CV_EINVAL/CV_ERANGE naming the field, CV_EIO when the store failed. */
int cv_sched_nudge(cv_sched_t *sched, int64_t trial_id, const cJSON *values, double now,
                   int64_t *seq, char *err);
/* A nudged message: nudge seq of trial_id under lease took effect at epoch; recorded once.
 * CV_STORE_STALE when the lease is not worker w's current one. */
int cv_sched_on_nudged(cv_sched_t *sched, cv_sched_worker_t *w, int64_t trial_id, const char *lease,
                       int64_t seq, int epoch, double now, char *err);
/* The transport sent worker w its welcome: the nudges of a trial it re-attached to that did not
 * take effect yet go to it again. */
void cv_sched_worker_welcomed(cv_sched_t *sched, cv_sched_worker_t *w);

/* A progress message: one epoch of trial_id under lease. Returns 0 when applied, CV_STORE_STALE
 * when the lease is not current, CV_EINVAL when the worker does not hold that trial. */
int cv_sched_on_progress(cv_sched_t *sched, cv_sched_worker_t *w, int64_t trial_id,
                         const char *lease, const cv_epoch_t *epoch, char *err);
/* 1 when worker w holds trial_id running under exactly this lease token, 0 otherwise. Read-only:
 * the transport asks it when a result arrives, before it accepts a byte of the model file that
 * follows, so that a stale result's upload is never written to disk. */
int cv_sched_holds_lease(const cv_sched_t *sched, const cv_sched_worker_t *w, int64_t trial_id,
                         const char *lease);
/* A result message. model_path (may be NULL) is a file the transport received the model into;
 * the scheduler moves it into the data directory. The acknowledgement is sent after the next
 * commit (stored) or at once when the lease is stale (not stored; a lost attempt of that lease
 * becomes stale in the history), which includes a result for a trial of a job that has ended
 * (no longer in memory; the store says the trial exists). Returns 0 or CV_EINVAL when no such
 * trial exists (a protocol violation: drop the worker). */
int cv_sched_on_result(cv_sched_t *sched, cv_sched_worker_t *w, int64_t trial_id, const char *lease,
                       const cv_trial_result_t *result, const char *model_path, double now,
                       char *err);

/* ---- ask/tell (HTTP clients) ----------------------------------------------------------
 * The trials of a job whose trainer is "ask" go to no worker: HTTP clients ask for them one at a
 * time (cv_sched_ask), report each epoch (cv_sched_ask_report: the curve, the pruner's turn, and
 * the lease renewed for ask_lease_seconds) and tell the result (cv_sched_ask_tell). Each lease is
 * held by a slot of its own named "ask:<client>" (the attempt's worker_id in the store) that
 * takes the paths a worker's trial takes: the same lease rule (a stale token is refused, its
 * attempt recorded as stale), the same pruning, max_parallel, budgets and attempts. A lease not
 * renewed for ask_lease_seconds is lost (cv_sched_tick): the trial goes back to the front of the
 * queue, as for a worker that went silent. Each answer waits for the commit of what it
 * acknowledges: done is called after the next cv_sched_flush.
 *
 * A coordinator restart (a SIGKILL included) between an ask and its tell keeps the lease: the
 * store has the trial running under it, and at start-up the lease is held again for
 * ask_lease_seconds, so the client's next report or tell is accepted as if nothing happened;
 * not renewed by then, it is lost as above. (With reattach_seconds 0 every running trial is
 * queued again at start-up, these too: the client's report or tell is then refused as stale.) */

/* A trial cv_sched_ask handed out; trial_id 0 when there is none now. */
typedef struct {
    int64_t trial_id, job_id;
    int number;
    int epochs;                  /* epochs the trial trains at most (its reports' bound) */
    char lease[33];
    char *params;                /* JSON object text of every parameter: fixed, sampled and
                                    seed (malloc'd, the caller's) */
    double lease_seconds;        /* how long the lease lasts without a report */
    int done;                    /* no trial: 1 when the job will never have another one */
} cv_sched_asked_t;

/* Leases the next trial of ask job job_id (its queue's head, or a new proposal) to client (""
 * for an anonymous one) under a fresh token. Returns 0: out->trial_id is the trial, answered
 * once done is called after the commit; or out->trial_id 0 (done not called), when there is
 * none now: the job is at max_parallel, or every trial it will have is out (then out->done is
 * 0, ask again later) or it has ended (out->done 1). CV_STORE_NOT_FOUND for no such job,
 * CV_STORE_STALE with the reason in err for a job whose trainer is not "ask", CV_EIO (or
 * CV_ENOMEM) with err when the store failed. */
int cv_sched_ask(cv_sched_t *sched, int64_t job_id, const char *client, double now,
                 cv_sched_asked_t *out, cv_sched_ask_done_fn done, void *ctx, char *err);
/* One epoch of ask trial trial_id under lease: stored as a point of its curve, judged by the
 * job's pruner at a decision epoch, and the lease renewed. Returns 0 (done gets the decision
 * after the commit), CV_STORE_NOT_FOUND for no such trial, CV_STORE_STALE with the reason in
 * err ("stale lease: ...") when lease is not the trial's current ask lease, CV_EINVAL naming
 * epoch when it is above the trial's epochs, CV_EIO with err when the store failed. */
int cv_sched_ask_report(cv_sched_t *sched, int64_t trial_id, const char *lease,
                        const cv_epoch_t *epoch, double now, cv_sched_ask_done_fn done, void *ctx,
                        char *err);
/* The end of ask trial trial_id under lease: completed with the final metrics best (a trial the
 * pruner stopped is stored pruned), or failed with error (non-NULL). best->epoch (0: not given)
 * is the epoch they are of; the best reported epoch otherwise. Errors as cv_sched_ask_report's;
 * on 0 the result is stored and done is called after it is committed. */
int cv_sched_ask_tell(cv_sched_t *sched, int64_t trial_id, const char *lease,
                      const cv_epoch_t *best, const char *error, double now,
                      cv_sched_ask_done_fn done, void *ctx, char *err);
/* Ask leases held now (each a trial running on an HTTP client). */
int cv_sched_ask_leases(const cv_sched_t *sched);
/* How long an ask lease lasts without a report, in seconds. */
double cv_sched_ask_lease_seconds(const cv_sched_t *sched);

/* ---- evaluation ------------------------------------------------------------------------ */

/* Paths of the model files of a finished job's best k trials by its objective (k ≤ 16) and the
 * job's spec of the best one, for a test-set evaluation. Returns the number of models found. */
int cv_sched_best_models(cv_sched_t *sched, int64_t job_id, int k, char (*paths)[1024],
                         int64_t *trial_ids, char **trial_spec_json, char *err);

#define CV_SCHED_LATENCY_EDGES 12

/* Counters of the durable write path since start-up, and the scheduler's state now. */
typedef struct {
    uint64_t results;          /* results committed */
    uint64_t commits;          /* non-empty commits */
    double latency_p50;        /* seconds from a result's arrival to its commit: median */
    double latency_p99;        /* ... 99th percentile (quarter-octave histogram resolution) */
    double latency_max;        /* ... largest */
    double latency_sum;        /* ... summed over every result, seconds */
    /* Results committed within each of CV_SCHED_LATENCY_EDGES seconds (cumulative, at the
     * histogram's quarter-octave resolution: a bucket counts under the first edge at or above
     * its upper end). */
    uint64_t latency_within[CV_SCHED_LATENCY_EDGES];
    uint64_t queued;              /* trials of running jobs waiting for a worker */
    unsigned workers_connected;   /* workers holding a connection */
    unsigned workers_busy;        /* of them, running a trial */
    unsigned workers_quarantined; /* of them, quarantined */
    uint64_t bytes_served;        /* dataset and model bytes sent to workers since start-up */
} cv_sched_stats_t;

/* The latency edges of cv_sched_stats_t.latency_within, in seconds. */
extern const double cv_sched_latency_edges[];

/* Counts bytes of a file sent to a worker (worker_server.c, as each data frame is written). */
void cv_sched_count_served(cv_sched_t *sched, uint64_t bytes);

void cv_sched_stats(const cv_sched_t *sched, cv_sched_stats_t *out);

/* The test-set evaluations waiting for or run by workers (owned by the scheduler). */
cv_evals_t *cv_sched_evals(cv_sched_t *sched);

/* Serves the file at path (borrowed, copied) to workers that ask for hash with dataset_get, as
 * it serves datasets; for an evaluation's models and data. CV_ENOMEM when out of memory. */
int cv_sched_serve_file(cv_sched_t *sched, const char *hash, const char *path, char *err);

/* Stores a job's test-set evaluation (JSON text) and commits. */
int cv_sched_store_test_result(cv_sched_t *sched, int64_t job_id, const char *json, char *err);

/* The SHA-256 registry of dataset files this coordinator serves: the path of a file by its hash,
 * or NULL. */
const char *cv_sched_dataset_path(const cv_sched_t *sched, const char *hash);

#endif
