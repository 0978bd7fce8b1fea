/* A test-set evaluation on the worker: the coordinator's evaluate message, the files it needs
 * (the spec's dataset files and the models, resolved by the connection as a trial's are), and
 * the thread that loads them and scores the ensemble with the existing model code
 * (worker/model_file.h) on the test set of the spec's split (worker/trial_data.h).
 *
 * Life: cv_wk_eval_create from the message; the connection walks cv_wk_eval_next, finding each
 * file locally or fetching it into its cache, and reports cv_wk_eval_resolved (or
 * cv_wk_eval_fail); once every file is resolved, cv_wk_eval_start runs the scoring thread, which
 * writes into the connection's wake pipe when it is done; then cv_wk_eval_answer builds the
 * evaluation message and cv_wk_eval_destroy frees it all. Everything but the thread runs on the
 * connection's thread. */
#ifndef CV_WORKER_EVALUATE_H
#define CV_WORKER_EVALUATE_H

#include <stdint.h>

#include <cjson/cJSON.h>

#include "common/message.h"

#define CV_WK_EVAL_PATH 4096 /* bytes of a resolved file path */

typedef struct cv_wk_eval cv_wk_eval_t;

/* One file the evaluation needs: a dataset file of the spec or a model. */
typedef struct {
    char hash[CV_MSG_HASH_HEX + 1]; /* SHA-256 of its bytes, lowercase hex */
    int64_t bytes;                  /* its size */
    const char *spec_path;          /* a dataset file: the path the spec names (borrowed from the
                                       evaluation); a model: NULL */
    char what[48];                  /* how logs name it: "dataset.csv", "the model of trial 7" */
    char path[CV_WK_EVAL_PATH];     /* where it is on this host, once resolved */
} cv_wk_eval_file_t;

/* Creates the evaluation of msg (an evaluate message from cv_msg_parse): takes its spec tree
 * (cv_msg_take_object) and copies the rest. cache_dir (borrowed, may be NULL; it must outlive
 * e) is where fetched files land: the models found there are removed with e, since a model is
 * scored once. The caller owns the result (cv_wk_eval_destroy). CV_ENOMEM when out of memory. */
int cv_wk_eval_create(cv_wk_eval_t **out, cv_msg_t *msg, const char *cache_dir, char *err);
/* Frees e, removing its models from the cache directory; joins its thread first when one runs.
 * Accepts NULL. */
void cv_wk_eval_destroy(cv_wk_eval_t *e);

int64_t cv_wk_eval_job(const cv_wk_eval_t *e);

/* The next file to resolve (borrowed from e), or NULL when all are resolved or e failed. */
cv_wk_eval_file_t *cv_wk_eval_next(cv_wk_eval_t *e);
/* The file cv_wk_eval_next returned is at path (copied) on this host. */
void cv_wk_eval_resolved(cv_wk_eval_t *e, const char *path);
/* Ends e without scoring: its answer will be this failure. job_fault 1: the job's data or
 * models are at fault (any worker would fail the same way); 0: this worker. */
void cv_wk_eval_fail(cv_wk_eval_t *e, const char *reason, int job_fault);
/* Starts scoring once every file is resolved: rewrites the spec's dataset paths to the resolved
 * ones, parses it, and runs the scoring thread, which writes a byte into wake_fd when done. A
 * failure to start ends e as cv_wk_eval_fail does. */
void cv_wk_eval_start(cv_wk_eval_t *e, int wake_fd);
/* 1 when e has an answer: its thread finished, or it failed before one started. */
int cv_wk_eval_done(cv_wk_eval_t *e);
/* Joins the thread and builds the evaluation message (cv_msg_evaluation), or NULL with err set
 * when out of memory. The caller owns the message. Call once cv_wk_eval_done says so. */
cJSON *cv_wk_eval_answer(cv_wk_eval_t *e, char *err);

#endif
