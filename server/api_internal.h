/* What the files of the coordinator's HTTP API share (api.c, api_reads.c, api_jobs.c,
 * api_evaluate.c, api_importance.c): the API's state, a read on the thread pool, what a route
 * captured, and the handlers the route table in api.c names. Private to those files: nothing
 * else includes it (the API's interface is api.h). */
#ifndef CV_API_INTERNAL_H
#define CV_API_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>
#include <uv.h>

#include "common/err.h"
#include "common/message.h"
#include "server/api.h"
#include "server/api_history.h"
#include "server/dataset_check.h"
#include "server/evaluation.h"
#include "server/http.h"
#include "server/metrics.h"
#include "server/read_pool.h"
#include "server/scheduler.h"
#include "server/store.h"

#define MAX_ENSEMBLE CV_MSG_MODELS_MAX

/* Answers with a void responder and leaves the handler. */
#define REPLY(call) \
    do {        \
        call;   \
        return; \
    } while (0)

/* What a matched pattern captured. */
typedef struct {
    int64_t id;                           /* {id} */
    char worker[CV_MSG_WORKER_ID_MAX + 1]; /* {worker} */
} route_args_t;

/* A test-set evaluation being prepared on the thread pool: its model and dataset files are
 * hashed there, then it goes to a worker (server/evaluation.h). */
typedef struct eval {
    uv_work_t work;
    cv_api_t *api;
    cv_eval_task_t task;               /* job_id, k, spec_json (owned), and the files the work
                                          fills in */
    int count;                         /* models */
    char paths[MAX_ENSEMBLE][1024];    /* the model files on this host */
    int64_t trial_ids[MAX_ENSEMBLE];
    char data_paths[CV_MSG_FILES_MAX][1024]; /* the spec's dataset files, as files[] */
    int rc;                            /* outcome of the work: non-zero, the job's data or models
                                          cannot be read (err says which) */
    char err[CV_ERRLEN];
    struct eval *next;
} eval_t;

/* A job submission whose datasets are being checked on the thread pool. */
typedef struct submission {
    cv_api_t *api;
    cv_http_deferred_t *answer;       /* the POST /v1/jobs waiting for the check */
    char *text;                       /* the job spec (owned) */
    size_t len;
    cv_dataset_check_t *check;        /* owned */
    struct submission *next;
} submission_t;
/* Pagination of the list routes (schemas/api.md). */
#define PAGE_DEFAULT 100  /* rows of a page when the request names no limit */
#define PAGE_MAX     1000 /* largest limit a request may ask for */
#define CURSOR_MAX   256  /* bytes of a cursor, with its terminator */

/* Which page of a list a request asks for; read on the loop from the query string. */
typedef struct {
    int64_t limit;           /* rows, 1..PAGE_MAX */
    int has_cursor;          /* 1 when the request continues a list */
    char cursor[CURSOR_MAX]; /* the next_cursor of the previous page, as given */
} page_t;

typedef struct read_op read_op_t;

/* A route's query: runs on a thread-pool thread with a borrowed read-only store, and returns the
 * HTTP status with the reply in *reply (owned by the caller), or an error status with the
 * reason in err and *reply NULL. */
typedef int (*read_fn_t)(const read_op_t *op, cv_store_t *store, cJSON **reply, char *err);

/* One GET route's store read, run and rendered on the thread pool, answered by a deferred
 * response on the loop. */
struct read_op {
    uv_work_t work;
    cv_api_t *api;
    cv_http_deferred_t *deferred; /* NULL when the answer had to be given at once */
    read_fn_t run;
    int64_t id;      /* the job or trial the route names */
    int64_t running; /* GET job: trials running now (the scheduler's, read on the loop) */
    int64_t curve_from; /* GET trial: the first epoch of the curve answered; 0: all of it */
    int best;        /* trials: 1 for order=best, 0 for order=number */
    page_t page;     /* list routes */
    cv_sched_worker_view_t *views; /* workers: the scheduler's live view, copied on the loop;
                                      owned, one block with the ids it points to */
    size_t n_views;
    cv_metrics_snapshot_t *metrics; /* GET /metrics: the figures taken on the loop, owned */
    cv_importance_task_t *imp; /* GET importance: the task the read built, owned (its frame
                                  too) */
    void (*settle)(read_op_t *op); /* loop: may change status and answer after the read */
    const char *answer;            /* settle's answer instead of text (borrowed), or NULL */
    int status;      /* HTTP status of the answer */
    char *text;      /* the answer rendered (cJSON's allocator), NULL when out of memory */
    char *plain;     /* a text route's answer (malloc'd) instead of text, with its type */
    const char *content_type;
    char err[CV_ERRLEN];
    read_op_t *next; /* the next read waiting for a turn */
};

struct cv_api {
    uv_loop_t *loop;
    cv_sched_t *sched;
    cv_store_t *ro;
    cv_read_pool_t *readers; /* connections of the thread-pool reads */
    cv_history_t *history;   /* GET /v1/jobs/{id}/history: its own reads (api_history.h) */
    char *token;
    const cv_log_t *log;
    eval_t *evals;                    /* in flight */
    int model_reads;                  /* model files being read on the thread pool */
    submission_t *submissions;        /* dataset checks in flight */
    int stopping;                     /* cv_api_stop was called: no more jobs are accepted */
    unsigned reads;                   /* read_op_t in flight, waiting ones included */
    int active;                       /* of them, on the thread pool: at most max_active */
    int max_active;                   /* one per reader connection */
    read_op_t *waiting;               /* reads waiting for a turn, oldest first */
    read_op_t **waiting_end;          /* where the next waiting read goes */
    cv_metrics_http_table_t answered; /* HTTP answers by route, method and status (/metrics) */
};

/* ---- helpers (api.c) -------------------------------------------------------------------- */

/* Reads an unsigned integer path segment starting at s, with *rest set just after it; returns
 * -1 when it is not one. */
int64_t api_parse_id(const char *s, const char **rest);

/* The store numbers a job's rounds from 0 and the API from 1: these convert a reply's tree in
 * place, just before it is sent. api_round_to_user: obj's "round"; api_rounds_to_user: that of
 * every element of an array; api_job_rounds_to_user: a job as cv_store_job_get builds it (its
 * round, its rounds and its best trial's round). */
void api_round_to_user(cJSON *obj);
void api_rounds_to_user(cJSON *array);
void api_job_rounds_to_user(cJSON *job);

/* Gives res once everything written so far is committed and on disk (at once when it is): to the
 * deferred answer `answer`, or, when answer is NULL, to the request res is being filled for
 * (res is then deferred, its body taken over). A store that fails first turns it into a 500. */
void api_answer_durable(cv_api_t *api, cv_http_deferred_t *answer, cv_http_response_t *res);

/* ---- reads on the thread pool (api_reads.c) --------------------------------------------- */

/* A new read of route `run` (the caller owns it until it hands it to api_start_read), or NULL
 * (then res holds a 500). */
read_op_t *api_read_new(read_fn_t run, cv_http_response_t *res);
/* Runs op (taken over) on the thread pool, now or when its turn comes, and answers res from its
 * result later. */
void api_start_read(cv_api_t *api, read_op_t *op, cv_http_response_t *res);
/* Thread pool: the status of a failed store query (404 with "<what> not found" in err for an
 * unknown job or trial, else 500 with the store's reason left in err). */
int api_read_error(int rc, const char *what, char *err);
/* The tell's answer once its result is committed (cv_asktell_tell's callback; userdata is the
 * API): the stored trial, read on the thread pool as GET /v1/trials/{id} reads it. Takes d
 * over. */
void api_answer_trial(void *userdata, int64_t trial_id, cv_http_deferred_t *d);

/* ---- route handlers (the table in api.c) ------------------------------------------------
 * Each answers req in res, at once or later through a deferred answer (cv_http_defer); a holds
 * what the route's pattern captured. schemas/api.md describes each route. */

/* GET /v1/jobs: a page of jobs (api_reads.c). */
void api_get_jobs(cv_api_t *api, const route_args_t *a, const cv_http_request_t *req,
                  cv_http_response_t *res);
/* GET /v1/jobs/{id}: one job with its schedule and running trials (api_reads.c). */
void api_get_job(cv_api_t *api, const route_args_t *a, const cv_http_request_t *req,
                 cv_http_response_t *res);
/* GET /v1/jobs/{id}/trials: a page of a job's trials, by number or best first (api_reads.c). */
void api_get_trials(cv_api_t *api, const route_args_t *a, const cv_http_request_t *req,
                    cv_http_response_t *res);
/* GET /v1/trials/{id}: one trial with its nudges, its curve after epoch curve_after when the
 * query names one (api_reads.c). */
void api_get_trial(cv_api_t *api, const route_args_t *a, const cv_http_request_t *req,
                   cv_http_response_t *res);
/* GET /v1/workers: a page of workers, stored rows merged with the scheduler's live view
 * (api_reads.c). */
void api_get_workers(cv_api_t *api, const route_args_t *a, const cv_http_request_t *req,
                     cv_http_response_t *res);
/* GET /metrics: the exposition text of the coordinator's figures (api_reads.c). */
void api_get_metrics(cv_api_t *api, const route_args_t *a, const cv_http_request_t *req,
                     cv_http_response_t *res);
/* GET /v1/jobs/{id}/importance: the importance of the job's parameters, or 202 while a worker
 * computes it (api_importance.c). */
void api_get_importance(cv_api_t *api, const route_args_t *a, const cv_http_request_t *req,
                        cv_http_response_t *res);
/* POST /v1/jobs: submits a job once its datasets pass their check (api_jobs.c). */
void api_post_job(cv_api_t *api, const route_args_t *a, const cv_http_request_t *req,
                  cv_http_response_t *res);
/* POST /v1/workers/{worker}/release: lifts the worker's quarantine (api_jobs.c). */
void api_release_worker(cv_api_t *api, const route_args_t *a, const cv_http_request_t *req,
                        cv_http_response_t *res);
/* POST /v1/jobs/{id}/cancel: cancels a running job and its open trials (api_jobs.c). */
void api_cancel_job(cv_api_t *api, const route_args_t *a, const cv_http_request_t *req,
                    cv_http_response_t *res);
/* POST /v1/trials/{id}/nudge: new hyperparameter values for a running trial (api_jobs.c). */
void api_nudge_trial(cv_api_t *api, const route_args_t *a, const cv_http_request_t *req,
                     cv_http_response_t *res);
/* DELETE /v1/jobs/{id}: deletes a job that is not running nor being evaluated (api_jobs.c). */
void api_delete_job(cv_api_t *api, const route_args_t *a, const cv_http_request_t *req,
                    cv_http_response_t *res);
/* POST /v1/jobs/{id}/extend: runs a completed job again with a larger budget (api_jobs.c). */
void api_extend_job(cv_api_t *api, const route_args_t *a, const cv_http_request_t *req,
                    cv_http_response_t *res);
/* POST /v1/jobs/{id}/evaluate: scores the job's best trial (or an ensemble) on its test set,
 * once per job (api_evaluate.c). */
void api_evaluate_job(cv_api_t *api, const route_args_t *a, const cv_http_request_t *req,
                      cv_http_response_t *res);
/* GET /v1/trials/{id}/model: the model file of a finished trial (api_evaluate.c). */
void api_get_trial_model(cv_api_t *api, const route_args_t *a, const cv_http_request_t *req,
                         cv_http_response_t *res);

#endif
