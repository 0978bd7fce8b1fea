/* Tasks for workers: test-set evaluations and hyperparameter importance, the coordinator's side.
 * Both kinds wait in one queue and share its lifecycle (below); importance is described after
 * evaluations.
 *
 * POST /v1/jobs/{id}/evaluate (server/api.c) prepares a task: the job's best K models and the
 * dataset files of the best trial's spec, each with its SHA-256 and size, registered with the
 * scheduler so that workers can fetch them with dataset_get. The task then waits here for a
 * worker. The scheduler offers every idle worker the oldest waiting evaluation before any trial
 * (cv_sched_dispatch calls cv_evals_assign): a user is waiting for it, and it is short. The
 * worker gets an evaluate message under a fresh lease token and answers with evaluation.
 *
 * Task lifecycle:
 *
 *   waiting ──assign──▶ running ──evaluation (score, or the job's fault)──▶ stored, done
 *      ▲                  │ worker gone, or its own fault, with attempts left
 *      └──────────────────┘ (back to the front of the queue)
 *                         └─ no attempts left (CV_EVAL_ATTEMPTS) ──▶ the failure is stored
 *
 * The result is stored once, on the job (cv_sched_store_test_result), in the shape the API has
 * always served: test_accuracy, test_error, test_cost, examples, ensemble, trials; or error,
 * ensemble, trials. A failure of the job's own making (its data cannot be read, its split has no
 * test set) is stored against the job at once and never counts against the worker. An answer
 * under a lease that is not the current one of that worker's task is refused and logged. All
 * calls run on the loop thread.
 *
 * Importance (GET /v1/jobs/{id}/importance): the API turns a job's completed trials into rows
 * (cv_importance_task_t) and adds them with cv_evals_add_importance; a worker gets them as an
 * importance message (seeded with the job's id) and answers importance_result. The answer is
 * kept here in memory, one per job with the number of trials it used, as the reply text the API
 * serves (cv_evals_importance). A task for a job whose task with the same number of trials waits
 * or runs is not queued again; a newer number replaces the rows of a task that still waits. A
 * worker lost, or one that answers an error, passes the task on while attempts are left; then
 * it is dropped (a later request queues it again). */
#ifndef CV_EVALUATION_H
#define CV_EVALUATION_H

#include <stddef.h>
#include <stdint.h>

#include "common/log.h"
#include "common/message.h"

#define CV_EVAL_ATTEMPTS 3 /* workers a task may be given before its failure is stored */

typedef struct cv_evals cv_evals_t;
typedef struct cv_sched cv_sched_t;
typedef struct cv_sched_worker cv_sched_worker_t;

/* What the API hands over: one evaluation ready to send. */
typedef struct {
    int64_t job_id;
    int k;                                 /* the ensemble size asked for */
    char *spec_json;                       /* the best trial's spec (owned by the task;
                                              cJSON's allocator) */
    cv_msg_file_t files[CV_MSG_FILES_MAX]; /* the spec's dataset files */
    size_t n_files;
    cv_msg_model_t models[CV_MSG_MODELS_MAX]; /* best first; their trial ids are the result's */
    size_t n_models;
} cv_eval_task_t;

/* What the API hands over for an importance computation: n completed trials of a job, and the
 * importance message built from them on the thread pool (building it is too long for the loop
 * thread when a job has thousands of trials). */
typedef struct {
    int64_t job_id;
    size_t n, p;    /* completed trials and parameters */
    size_t rows;    /* rows the message carries: n, or CV_IMPORTANCE_MAX_TRIALS of them evenly
                       spaced when n is larger (the forest would subsample to that many anyway) */
    unsigned char *frame; /* the importance message as one encoded frame (malloc'd; owned by
                             the task once added) */
    size_t frame_len;
    char lease[CV_MSG_LEASE_HEX + 1]; /* the lease the message carries, on every attempt */
    char names[CV_MSG_IMP_DIMS_MAX][32];     /* the parameters, in the space's order */
    const char *scales[CV_MSG_IMP_DIMS_MAX]; /* "log", "categorical"...; static storage */
} cv_importance_task_t;

/* How the scheduler's transport sends an importance frame (borrowed: the transport copies it).
 * Returns 0, or non-zero when it could not be queued. */
typedef int (*cv_importance_send_fn)(void *conn, const unsigned char *frame, size_t len);

/* How the scheduler's transport sends an evaluate message to the worker on conn: the message is
 * built by cv_msg_evaluate from these fields. Returns 0, or non-zero when it could not be
 * queued. */
typedef int (*cv_eval_send_fn)(void *conn, int64_t job_id, const char *lease, const char *spec_json,
                               const cv_msg_file_t *files, size_t n_files,
                               const cv_msg_model_t *models, size_t n_models);

/* Creates the queue; the caller owns it (cv_evals_destroy). log is borrowed. */
int cv_evals_create(cv_evals_t **out, const cv_log_t *log, char *err);
/* Frees the queue and every task in it (none is stored). Accepts NULL. */
void cv_evals_destroy(cv_evals_t *ev);

/* The transport's importance sender (NULL: importance tasks wait and are never sent). */
void cv_evals_set_importance_send(cv_evals_t *ev, cv_importance_send_fn send);

/* Queues an importance task: returns 0 when it was queued (the queue takes task->frame and
 * NULLs it), 1 when a task of that job with that many trials already waits or runs (task
 * untouched), CV_ENOMEM. A task of the job with another count that still waits gets the new
 * rows instead. */
int cv_evals_add_importance(cv_evals_t *ev, cv_importance_task_t *task, char *err);
/* The job was deleted: its kept reply and waiting importance task go, and the answer of a
 * running one will not be kept (a new job may get the same id). */
void cv_evals_forget_importance(cv_evals_t *ev, int64_t job_id);
/* The reply text kept for job_id computed from n trials (borrowed; valid until the next
 * answer), or NULL. */
const char *cv_evals_importance(const cv_evals_t *ev, int64_t job_id, size_t n);
/* An importance_result from worker w: keeps the figures as the job's reply (computed_at: now,
 * wall-clock seconds) or passes the task on. Returns 0, CV_STORE_STALE when w holds no such task
 * under that lease, CV_ENOMEM. */
int cv_evals_on_importance(cv_evals_t *ev, const cv_sched_worker_t *w, const char *worker_id,
                           const cv_msg_importance_result_t *a, double now, char *err);

/* Queues task for the next idle worker; on success the queue takes task->spec_json (the rest
 * is copied). CV_ENOMEM when out of memory (task untouched). */
int cv_evals_add(cv_evals_t *ev, cv_eval_task_t *task, char *err);
/* The ensemble size of the evaluation of job_id waiting or running, 0 when there is none
 * (importance tasks do not count). */
int cv_evals_pending(const cv_evals_t *ev, int64_t job_id);
/* 1 when worker w runs a task of either kind. */
int cv_evals_busy(const cv_evals_t *ev, const cv_sched_worker_t *w);
/* Gives the oldest waiting task (an importance task with the sender set aside by
 * cv_evals_set_importance_send) to idle worker w (its transport handle conn and id,
 * borrowed) and sends it with send. Returns 1 when w got one, 0 when none waits or the send
 * failed (the task then stays first in the queue). */
int cv_evals_assign(cv_evals_t *ev, cv_sched_worker_t *w, void *conn, const char *worker_id,
                    cv_eval_send_fn send);
/* Worker w left: its evaluation goes back to the front of the queue, or, with no attempts left,
 * its failure is stored through s. */
void cv_evals_worker_left(cv_evals_t *ev, cv_sched_t *s, const cv_sched_worker_t *w);
/* An evaluation message from worker w (worker_id its id). Stores the score or the job's failure
 * through s; a worker's own failure goes to another worker while attempts are left. Returns 0,
 * CV_STORE_STALE (err says why) when w holds no evaluation under that job and lease, or the
 * store's error. */
int cv_evals_on_answer(cv_evals_t *ev, cv_sched_t *s, const cv_sched_worker_t *w,
                       const char *worker_id, const cv_msg_evaluation_t *a, char *err);

/* The stored form of a test result (JSON text, cJSON's allocator; the caller frees it with
 * cJSON_free): the score when error is NULL, else the error. trial_ids[0..n) are the models'
 * trials. NULL when out of memory: nothing partial is ever returned. */
char *cv_eval_result_json(const char *error, double accuracy, double cost, int64_t examples, int k,
                          const int64_t *trial_ids, size_t n);

#endif
