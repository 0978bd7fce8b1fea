/* A job's trial history for the dashboard: the finished trials in the order they finished, read
 * after a cursor, and the trials running now.
 *
 * These queries run on a read-only store (store.h) borrowed by a thread-pool thread; they read
 * and never write. Rows are handed to a callback one at a time, so that a reply of 100,000 trials
 * is built column by column without an intermediate copy. */
#ifndef CV_STORE_HISTORY_H
#define CV_STORE_HISTORY_H

#include <stdint.h>

#include "server/store.h"

/* Where a history read resumes: after the trial that finished at finished_at with this id (the
 * order is finished_at, then id). {-INFINITY, 0} reads from the start. */
typedef struct {
    double finished_at; /* unix seconds */
    int64_t id;         /* trial id */
} cv_store_history_key_t;

#define CV_STORE_HISTORY_PARAMS_MAX 64 /* parameters a finished-trials read extracts */

/* One trial of the history, borrowed by the callback for the duration of the call. The *_json
 * fields are SQLite's JSON texts of the values (json_quote: numbers with 15 significant digits,
 * strings quoted and escaped, "null" when absent), so that a reply can carry them as they are,
 * without building and printing a JSON node per value. */
typedef struct {
    int64_t id, number;
    const char *status;    /* a finished trial's status: completed, pruned, failed, ... */
    double finished_at;    /* unix seconds */
    int64_t epochs_run;    /* -1 when unknown */
    const char *params;    /* JSON object text of the sampled parameters */
    const char *worker_id; /* last worker that held it; NULL when none */
    const char *id_json, *number_json, *status_json, *epochs_json, *worker_json;
    const char *value_json; /* the job's objective (dev_error or dev_cost) */
    const char *param_json[CV_STORE_HISTORY_PARAMS_MAX]; /* finished reads: the value of each
                                name asked for, "null" when the trial has none */
} cv_store_history_row_t;

/* Called per row; returns 0 to go on, or a negative CV_E* code (with err set) to stop. */
typedef int (*cv_store_history_fn_t)(void *userdata, const cv_store_history_row_t *row, char *err);

/* The job's objective column name ("dev_error" or "dev_cost"), its status and its spec text,
 * copied into caller buffers (spec: *spec malloc'd, owned by the caller). Returns 0,
 * CV_STORE_NOT_FOUND, or a CV_E* code with err. */
int cv_store_history_job(cv_store_t *store, int64_t job_id, char objective[16], char status[16],
                         char **spec, char *err);

/* Calls fn for each finished trial of job job_id after `after` (in the order (finished_at,
 * id)), at most limit of them: in number order when all of them fit, else the first limit in
 * (finished_at, id) order, with the values of the n_names (at most CV_STORE_HISTORY_PARAMS_MAX)
 * parameters names (borrowed) extracted in param_json; *more is set to 1 when trials remain
 * after the last one given. Returns 0 or the first error (fn's or the store's). */
int cv_store_history_finished(cv_store_t *store, int64_t job_id, int dev_cost,
                              const char *const *names, int n_names,
                              const cv_store_history_key_t *after, int64_t limit,
                              cv_store_history_fn_t fn, void *userdata, int *more, char *err);

/* Calls fn for each trial of the job running now (finished_at 0; no *_json texts), in number
 * order, at most limit of them. Returns 0 or the first error. */
int cv_store_history_running(cv_store_t *store, int64_t job_id, int64_t limit,
                             cv_store_history_fn_t fn, void *userdata, char *err);

#endif
