/* The private state of caviar-worker's connection, shared by the files that implement
 * connection.h and included by them only:
 *
 *     connection.c     the socket, the poll loop and the session (hello, reconnection, stop)
 *     conn_dispatch.c  the handling of every coordinator message
 *     conn_dataset.c   resolving a trial's dataset files: local copies, the cache, dataset_get
 *     conn_evaluate.c  a test-set evaluation: its files and models, its answer
 *     conn_importance.c  a hyperparameter-importance task: its thread, its answer
 *     conn_training.c  the training thread and its outbox
 *     conn_results.c   unacknowledged results and the model upload that follows each
 *     conn_nudges.c    the nudges of the trial held: kept, applied by the thread, answered
 *
 * with the byte queue (byte_queue.h) and the dataset cache (dataset_cache.h) underneath. Every
 * function here runs on the main thread unless its comment says otherwise. */
#ifndef CV_WORKER_CONNECTION_INTERNAL_H
#define CV_WORKER_CONNECTION_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>

#include "common/frame.h"
#include "common/message.h"
#include "common/rng.h"
#include "common/trial_spec.h"
#include "worker/evaluate.h"
#include "worker/byte_queue.h"
#include "worker/connection.h"
#include "worker/dataset_cache.h"
#include "worker/trainer.h"

typedef struct cv_wk_importance cv_wk_importance_t; /* conn_importance.c */

#define BACKOFF_FIRST   0.1            /* seconds before the first reconnection attempt */
#define BACKOFF_CAP     10.0           /* seconds, the longest wait between attempts */
#define CONNECT_TIMEOUT 10.0           /* seconds one connect() may take */
#define TICK_MS         250            /* longest poll() sleep: how soon the stop flag is seen */
#define READ_CHUNK      65536          /* bytes read from the socket per recv() */
#define UPLOAD_CHUNK    (1u << 20)     /* model bytes per data frame (at most CV_FRAME_MAX) */
#define OUT_HIGH_WATER  (2u << 20)     /* queued bytes above which the model upload pauses */
#define PENDING_MAX     8              /* unacknowledged results kept; beyond, the oldest go */
#define WPATH           CV_DCACHE_PATH /* bytes of a file path */
#define STOP_GRACE      3.0 /* seconds a stopping worker waits for its acknowledgements */
#define NUDGES_MAX      256 /* nudges kept for one trial; beyond, new ones are ignored */

_Static_assert(UPLOAD_CHUNK <= CV_FRAME_MAX, "a model chunk fits in one frame");
_Static_assert(PENDING_MAX + 2 <= CV_MSG_LEASES_MAX, "hello.leases holds every lease");
_Static_assert(CV_MSG_HASH_HEX + 1 == CV_SHA256_HEX, "a file's hash is a SHA-256 in hex");

#define LOG(w, level, ...) cv_log((w)->opt->log, (level), __VA_ARGS__)

/* One nudge of the trial held (protocol.md, "Nudges"). */
typedef struct {
    int64_t seq;   /* the trial's nudge number, from 1 */
    int at_epoch;  /* 0: at the next boundary; else the epoch to take effect at again */
    cJSON *values; /* owned: the new values */
    int epoch;     /* the epoch it took effect at; 0 while waiting, -1 when refused */
    int answered;  /* main thread only: nudged was sent for it */
} nudge_t;

/* The nudges of one trial, shared by the main thread (which adds and answers them) and the
 * training thread (which applies them before each epoch). */
typedef struct {
    pthread_mutex_t lock; /* guards every field */
    int64_t trial_id;     /* whose nudges these are; 0 for none */
    nudge_t *items;       /* owned, n of cap, in seq order of arrival */
    size_t n, cap;
} nudge_box_t;

/* One trial training in its own thread. Created and freed by the main thread. */
typedef struct {
    pthread_t thread;
    int64_t trial_id;
    char lease[CV_MSG_LEASE_HEX + 1];
    cv_trial_spec_t spec;             /* read by the thread */
    char model_path[WPATH];           /* where the trainer saves the best model */
    int wake_fd;                      /* write end of the main loop's wake pipe */
    atomic_int stop;                  /* main → thread: stop after the current epoch */
    atomic_int prune;                 /* main → thread: prune after the current epoch */
    int decide_at[CV_MSG_DECIDE_MAX]; /* the job's rungs: after those below live_epochs the
                                         thread waits for a decision */
    size_t n_decide_at;
    int live_epochs;                  /* thread only: the trial's epochs, as nudged so far */
    double decision_wait;              /* seconds one such wait lasts at most */
    pthread_mutex_t lock;              /* guards the outbox, done and the decision fields
                                          below */
    pthread_cond_t decided;            /* broadcast when online, decided_epoch, stop or prune
                                          change */
    int online;                        /* welcomed: progress reaches the coordinator, decisions
                                          can come */
    int decided_epoch;                 /* the latest epoch a decision named, 0 for none */
    int unanswered_epoch;              /* the latest epoch whose wait ran out, 0 for none */
    int unanswered_logged;             /* main thread only: unanswered_epoch already logged */
    cv_epoch_t *outbox;                /* epochs not yet sent, oldest first (malloc'd, grows:
                                          kept while the worker is not welcomed) */
    size_t n_outbox, cap_outbox;
    size_t outbox_lost;                /* epochs dropped because the outbox could not grow */
    int done; /* the thread has finished; the fields below are final */
    int rc;   /* cv_train_run's return */
    cv_trial_result_t res;
    char err[CV_ERRLEN];
    int64_t model_bytes;  /* size of the saved model, 0 when none */
    uint32_t model_crc32; /* zlib crc32 of the model file */
    int discard;          /* main thread only: stopped, send nothing more */
    nudge_box_t *nudges;  /* the worker's nudge box, borrowed (it outlives the thread) */
    int64_t job_id;
    const cv_trainer_def_t *trainer; /* an external trainer's trial: its program (borrowed from
                                        the options); NULL for a built-in one */
    cJSON *ext_spec;      /* owned, external trials only: the trial text the program gets */
    const char *runs_dir; /* external trials: where the program's working directory goes */
    double grace, timeout; /* external trials: --trainer-grace and --trainer-timeout, seconds */
    int by_dev_cost;      /* external trials: the best report is the lowest dev_cost */
} run_t;

/* A result sent (or to send) and not yet acknowledged. */
typedef struct {
    int64_t trial_id;
    char lease[CV_MSG_LEASE_HEX + 1];
    unsigned char *frame; /* owned: the encoded result message */
    size_t frame_len;
    char model_path[WPATH]; /* the model file, "" when model_bytes is 0 */
    int64_t model_bytes;
    int to_send; /* 1: send at the next chance (welcomed, no upload running) */
} pending_t;

/* A model file being streamed as data frames after its result message. */
typedef struct {
    FILE *f;          /* open while an upload runs, else NULL */
    int64_t left;     /* bytes still to send */
    int64_t trial_id; /* whose model it is */
} upload_t;

typedef enum {
    FETCH_IDLE,      /* no dataset transfer */
    FETCH_ASKED,     /* dataset_get sent, waiting for the dataset message */
    FETCH_RECEIVING, /* data frames are arriving */
} fetch_state_t;

/* A dataset file coming from the coordinator into the cache. */
typedef struct {
    fetch_state_t state;
    char hash[CV_MSG_HASH_HEX + 1]; /* the file asked for */
    int64_t want;                   /* bytes the dataset message declared */
    cv_dcache_fill_t fill;          /* the file being written, while RECEIVING */
} fetch_t;

/* A trial whose files are being resolved before it trains. */
typedef struct {
    int active;
    int64_t trial_id;
    char lease[CV_MSG_LEASE_HEX + 1];
    cJSON *spec; /* owned; dataset paths are rewritten in place as files resolve */
    cv_msg_file_t files[CV_MSG_FILES_MAX];
    size_t n_files, next;             /* files[0..next) are resolved */
    int decide_at[CV_MSG_DECIDE_MAX]; /* the trial's decision epochs */
    size_t n_decide_at;
    int ready; /* spec parsed into parsed (or, with trainer, checked); waiting for the previous
                  thread */
    cv_trial_spec_t parsed;
    int64_t job_id;
    const cv_trainer_def_t *trainer; /* the offered program of a trial naming one, else NULL */
    int by_dev_cost;                 /* trial.objective is dev_cost */
} prep_t;

typedef struct {
    const cv_conn_options_t *opt;
    cv_rng_t rng;             /* reconnection jitter */
    double backoff;           /* seconds of the next wait before jitter */
    int wake[2];              /* pipe: training threads wake the poll loop */
    int fd;                   /* the socket, -1 when disconnected */
    int welcomed;             /* 1 once this connection's welcome arrived */
    double hb_every, hb_next; /* heartbeat period and next deadline, seconds */
    cv_frame_decoder_t dec;
    cv_bytes_t out;      /* frames waiting for the socket */
    cv_bytes_t deferred; /* JSON frames held back while a model upload runs */
    upload_t up;
    fetch_t fetch;
    prep_t prep;
    run_t *run; /* the training thread, or NULL */
    pending_t pending[PENDING_MAX];
    size_t n_pending;
    cv_dcache_t cache; /* dataset files: hashes of spec paths, the cache directory */
    cv_wk_eval_t *eval; /* the test-set evaluation held (worker/evaluate.h), or NULL */
    nudge_box_t nudges; /* the nudges of the trial held */
    cv_wk_importance_t *importance; /* the importance task held (conn_importance.c), or NULL */
} worker_t;

/* Whose fault a failed trial is, as result.fault says: the job's (its data, its spec, its size:
 * every worker would fail it the same way) or this worker's (anything else). The coordinator
 * fails the job for the first, and counts only the second against the worker. */
typedef enum { FAULT_WORKER, FAULT_JOB } fault_t;

/* ---- connection.c ---- */

/* Queues msg (consumed; NULL means its builder failed with reason why) as one JSON frame. While
 * a model upload runs the frame waits in deferred, so nothing comes between a result and its
 * data frames. Without a connection the message is dropped. */
int cv_conn_send_msg(worker_t *w, cJSON *msg, const char *why);

/* ---- conn_dispatch.c ---- */

/* Handles one frame from the coordinator. Returns 0, or the code that ends the connection:
 * CV_EFORMAT for a protocol violation, CV_ESTOPPED for an error message, CV_ENOMEM. */
int cv_conn_on_frame(worker_t *w, const cv_frame_t *f);

/* ---- conn_dataset.c ---- */

/* Forgets the trial being prepared (its spec is freed). */
void cv_conn_prep_clear(worker_t *w);

/* Fails the trial being prepared with a result saying why and whose fault it is. */
void cv_conn_prep_fail(worker_t *w, const char *reason, fault_t fault);

/* Moves the trial being prepared forward: resolves its files in order, asking the coordinator
 * for a missing one (one transfer at a time), then parses the spec and starts training, or
 * fails the trial with the reason. */
int cv_conn_prep_advance(worker_t *w);

/* The dataset message announcing the bytes of the file asked for; CV_EFORMAT when it was not. */
int cv_conn_on_dataset(worker_t *w, const char *hash, int64_t bytes);

/* A data frame of the dataset being received; CV_EFORMAT when none was announced. */
int cv_conn_on_data(worker_t *w, const cv_frame_t *f);

/* Abandons a transfer (the connection is gone); the partial file is removed. */
void cv_conn_fetch_reset(worker_t *w);

/* ---- conn_evaluate.c: test-set evaluation ---- */

/* Takes an evaluate message: resolves its files (local, cached or fetched) and starts scoring. */
int cv_conn_on_evaluate(worker_t *w, cv_msg_t *msg);

/* A dataset transfer ended (t is the transfer, fill its file): a failed one for the evaluation's
 * file ends the evaluation; then the evaluation goes on resolving. */
int cv_conn_eval_fetched(worker_t *w, const fetch_t *t);

/* Sends the evaluation's answer once its scoring thread is done. */
int cv_conn_eval_service(worker_t *w);

/* ---- conn_importance.c: hyperparameter importance ---- */

/* Takes an importance message: copies its rows and starts the computing thread. CV_EFORMAT
 * when a task is already held, CV_ENOMEM; a thread that cannot start is answered as an error. */
int cv_conn_on_importance(worker_t *w, cv_msg_t *msg);

/* Sends the importance_result once the computing thread is done. */
int cv_conn_importance_service(worker_t *w);

/* Joins the task's thread if one runs and frees it (the session ended). Accepts NULL. */
void cv_conn_importance_destroy(cv_wk_importance_t *t);

/* ---- conn_training.c ---- */

/* Starts the prepared trial in a training thread. Signals stay with the main thread. A thread
 * that cannot start fails the trial. Consumes w->prep. */
void cv_conn_train_start(worker_t *w);

/* Drains the training thread's outbox: progress messages while the trial is wanted and the
 * connection welcomed, and at its end the result (or nothing, for a discarded trial). Then
 * starts a prepared trial that was waiting for the thread. */
int cv_conn_train_service(worker_t *w);

/* Asks the running thread to stop at its next epoch end (at once when it waits for a decision);
 * nothing more is sent for it. */
void cv_conn_train_discard(worker_t *w);

/* Tells the training thread whether decisions can reach it (online: welcomed). */
void cv_conn_train_set_online(run_t *r, int online);

/* The pruner's verdict at epoch, for the thread: stop prunes it, and a wait for that epoch ends. */
void cv_conn_train_decide(run_t *r, int epoch, int stop);

/* Stops and joins the training thread, if any, and frees it; its model file is removed. */
void cv_conn_train_shutdown(worker_t *w);

/* ---- conn_nudges.c ---- */

/* Sets up an empty box. Returns 0 or -1. */
int cv_conn_nudges_init(nudge_box_t *b);

/* Frees what the box holds. */
void cv_conn_nudges_finish(nudge_box_t *b);

/* Empties the box for trial_id, which starts from epoch 1 (a trial message): whatever this
 * worker applied in an earlier attempt of it is applied again as the coordinator resends it. */
void cv_conn_nudges_reset(nudge_box_t *b, int64_t trial_id);

/* A nudge message: kept for the trial held (being prepared or training), answered at once when
 * its seq took effect already, ignored for another trial. */
int cv_conn_on_nudge(worker_t *w, const cv_msg_nudge_t *m);

/* Training thread, before epoch (1-based) of trial_id: applies to live, in order, the nudges
 * that wait for this boundary (no at_epoch, or an at_epoch not after epoch) and records the
 * epoch. Returns 1 when live changed. */
int cv_conn_nudges_apply(nudge_box_t *b, int64_t trial_id, cv_trial_spec_t *live, int epoch);

/* Sends nudged for each nudge of run r that took effect and was not answered yet, while the
 * connection is welcomed. */
int cv_conn_nudges_answer(worker_t *w, const run_t *r);

/* ---- conn_results.c ---- */

/* The unacknowledged result of trial_id, or NULL. */
pending_t *cv_conn_find_pending(worker_t *w, int64_t trial_id);

/* Forgets pending result p: its frame, and its model file. An upload of that model in progress
 * goes on from its open stream. */
void cv_conn_drop_pending(worker_t *w, pending_t *p);

/* Turns a trial's end into an unacknowledged result to send. result is borrowed; model_path
 * (may be "") is the model file, which the pending result then owns. A result the validator
 * refuses is replaced by a failed result giving the reason. */
void cv_conn_add_result(worker_t *w, int64_t trial_id, const char *lease,
                        const cv_trial_result_t *result, const char *model_path,
                        int64_t model_bytes, uint32_t crc);

/* Sends the end of a trial that has no metrics to report: status FAILED (reason and whose fault
 * it is) or STOPPED (handed back unfinished), after seconds of wall time. */
void cv_conn_add_failure(worker_t *w, int64_t trial_id, const char *lease, cv_trial_status_t status,
                         const char *reason, double seconds, fault_t fault);

/* Keeps an encoded result frame (taken over) until its acknowledgement, and marks it to send. */
void cv_conn_queue_result(worker_t *w, int64_t trial_id, const char *lease, unsigned char *frame,
                          size_t frame_len, const char *model_path, int64_t model_bytes);

/* Sends the first pending result marked to_send, when the connection is welcomed and no other
 * upload runs: its frame, then its model as data frames (cv_conn_pump_upload). */
int cv_conn_send_next_pending(worker_t *w);

/* Moves model bytes into data frames while the output queue is short. When the upload ends the
 * deferred JSON frames follow. A model file that ends early breaks the promise made by
 * model_bytes: the result is dropped and the connection closed (CV_EIO). */
int cv_conn_pump_upload(worker_t *w);

/* Size and zlib crc32 of the file at path. Returns 0 or -1. Any thread. */
int cv_conn_model_digest(const char *path, int64_t *bytes, uint32_t *crc);

#endif
