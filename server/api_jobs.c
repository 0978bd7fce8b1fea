/* The API's job and trial writes: POST /v1/jobs (its spec checked on the loop, its datasets on
 * the thread pool, its trainer against the connected workers), cancel, delete and extend of a
 * job, a nudge of a running trial, and the release of a quarantined worker. See
 * api_internal.h and schemas/api.md. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/clock.h"
#include "common/err.h"
#include "common/json.h"
#include "server/api_internal.h"
#include "server/job_spec.h"

/* Stores a job whose datasets passed their check and answers 201 with it (or the error). */
static void create_job(cv_api_t *api, const char *text, size_t len,
                       const cv_dataset_check_t *check, cv_http_response_t *res) {
    char err[CV_ERRLEN];
    int64_t id = 0;
    int rc = cv_sched_submit_checked(api->sched, text, len, check, cv_clock_wall(), &id, err);
    if (rc == CV_EIO || rc == CV_ENOMEM) REPLY(cv_http_json_error(res, 500, "%s", err));
    if (rc) REPLY(cv_http_json_error(res, 400, "%s", err));
    cJSON *job = NULL;
    cJSON *out = cJSON_CreateObject();
    if (cv_store_job_get(api->ro, id, &job, err) == 0 && out) {
        api_job_rounds_to_user(job);
        if (!cJSON_AddNumberToObject(out, "id", (double)id) ||
            !cJSON_AddItemToObject(out, "job", job)) {
            cJSON_Delete(job);
            cJSON_Delete(out);
            REPLY(cv_http_json_error(res, 500, "job %lld was stored; out of memory answering",
                                     (long long)id));
        }
        REPLY(cv_http_respond_json(res, 201, out));
    }
    cJSON_Delete(job);
    cJSON_Delete(out);
    cv_http_json_error(res, 500, "job %lld was stored but cannot be read back: %s", (long long)id,
                       err);
}

/* A submission's datasets were checked (loop thread): the job is created, or refused with the
 * check's reason. */
static void after_check(cv_dataset_check_t *check, void *userdata) {
    submission_t *sub = userdata;
    cv_api_t *api = sub->api;
    for (submission_t **p = &api->submissions; *p; p = &(*p)->next)
        if (*p == sub) {
            *p = sub->next;
            break;
        }
    char err[CV_ERRLEN];
    cv_http_response_t res = {0};
    int rc = cv_dataset_check_status(check, err);
    if (rc == CV_ESTOPPED || api->stopping)
        cv_http_json_error(&res, 503, "the coordinator is stopping; submit the job again later");
    else if (rc == CV_ENOMEM)
        cv_http_json_error(&res, 500, "%s", err);
    else if (rc)
        cv_http_json_error(&res, 400, "%s", err);
    else
        create_job(api, sub->text, sub->len, check, &res);
    api_answer_durable(api, sub->answer, &res);
    cv_dataset_check_destroy(check);
    free(sub->text);
    free(sub);
}

/* POST /v1/jobs: the spec is validated here, and its trainer checked against the connected
 * workers (cv_sched_new_check: 422 when none offers it); its dataset files are checked (resolved,
 * read, hashed, their CSV labels scanned) on the thread pool, and the answer comes after. */
void api_post_job(cv_api_t *api, const route_args_t *a, const cv_http_request_t *req,
                  cv_http_response_t *res) {
    (void)a;
    char err[CV_ERRLEN];
    if (api->stopping)
        REPLY(cv_http_json_error(res, 503, "the coordinator is stopping; submit the job again "
                                 "later"));
    cv_dataset_check_t *check = NULL;
    int rc = cv_sched_new_check(api->sched, req->body, req->body_len, &check, err);
    if (rc == CV_ENOMEM) REPLY(cv_http_json_error(res, 500, "%s", err));
    if (rc == CV_EUNAVAIL) REPLY(cv_http_json_error(res, 422, "%s", err)); /* nobody can train it */
    if (rc) REPLY(cv_http_json_error(res, 400, "%s", err));
    submission_t *sub = calloc(1, sizeof *sub);
    if (sub) sub->text = malloc(req->body_len + 1);
    if (!sub || !sub->text) {
        if (sub) free(sub);
        cv_dataset_check_destroy(check);
        REPLY(cv_http_json_error(res, 500, "out of memory"));
    }
    memcpy(sub->text, req->body, req->body_len);
    sub->text[req->body_len] = '\0';
    sub->len = req->body_len;
    sub->api = api;
    sub->check = check;
    if (!(sub->answer = cv_http_defer(res))) {
        free(sub->text);
        free(sub);
        cv_dataset_check_destroy(check);
        REPLY(cv_http_json_error(res, 500, "out of memory"));
    }
    if (cv_dataset_check_start(check, api->loop, after_check, sub)) {
        cv_http_response_t now = {0};
        cv_http_json_error(&now, 500, "cannot start checking the datasets");
        cv_http_deferred_finish(sub->answer, &now);
        free(sub->text);
        free(sub);
        cv_dataset_check_destroy(check);
        return;
    }
    sub->next = api->submissions;
    api->submissions = sub;
}

/* POST /v1/workers/{id}/release: lifts the worker's quarantine. */
void api_release_worker(cv_api_t *api, const route_args_t *a, const cv_http_request_t *req,
                        cv_http_response_t *res) {
    (void)req;
    const char *worker_id = a->worker;
    char err[CV_ERRLEN];
    int was = 0;
    int rc = cv_sched_worker_release(api->sched, worker_id, cv_clock_wall(), &was, err);
    if (rc == CV_STORE_NOT_FOUND)
        REPLY(cv_http_json_error(res, 404, "worker %s not found", worker_id));
    if (rc) REPLY(cv_http_json_error(res, 500, "%s", err));
    cJSON *o = cJSON_CreateObject();
    if (o && (!cJSON_AddStringToObject(o, "id", worker_id) ||
              !cJSON_AddBoolToObject(o, "was_quarantined", was) ||
              !cJSON_AddBoolToObject(o, "quarantined", 0))) {
        cJSON_Delete(o);
        o = NULL;
    }
    cv_http_respond_json(res, 200, o);
}

void api_cancel_job(cv_api_t *api, const route_args_t *a, const cv_http_request_t *req,
                    cv_http_response_t *res) {
    (void)req;
    int64_t id = a->id;
    char err[CV_ERRLEN];
    int64_t n = 0;
    int rc = cv_sched_cancel(api->sched, id, cv_clock_wall(), &n, err);
    if (rc == CV_STORE_NOT_FOUND) REPLY(cv_http_json_error(res, 404, "job not found"));
    if (rc == CV_STORE_STALE)
        REPLY(cv_http_json_error(res, 409, "job %lld is no longer running", (long long)id));
    if (rc) REPLY(cv_http_json_error(res, 500, "%s", err));
    cJSON *o = cJSON_CreateObject();
    if (o && (!cJSON_AddNumberToObject(o, "id", (double)id) ||
              !cJSON_AddStringToObject(o, "status", "cancelled") ||
              !cJSON_AddNumberToObject(o, "trials_cancelled", (double)n))) {
        cJSON_Delete(o);
        o = NULL;
    }
    cv_http_respond_json(res, 200, o);
}

/* POST /v1/trials/{id}/nudge {field: value, ...}: new values for the hyperparameters of a
 * running trial, applied by its worker at the next epoch boundary (cv_sched_nudge). */
void api_nudge_trial(cv_api_t *api, const route_args_t *a, const cv_http_request_t *req,
                     cv_http_response_t *res) {
    char err[CV_ERRLEN];
    cJSON *body = NULL;
    int64_t seq = 0;
    int rc = req->body_len ? cv_json_decode(req->body, req->body_len, &body, err)
                           : cv_errf(err, CV_EINVAL,
                                     "nudge: the body must be a JSON object of "
                                     "new values");
    if (rc) REPLY(cv_http_json_error(res, 400, "%s", err));
    rc = cv_sched_nudge(api->sched, a->id, body, cv_clock_wall(), &seq, err);
    if (rc == CV_STORE_NOT_FOUND) {
        cJSON_Delete(body);
        REPLY(cv_http_json_error(res, 404, "trial not found"));
    }
    if (rc) {
        cJSON_Delete(body);
        REPLY(cv_http_json_error(res,
                                 rc == CV_STORE_STALE                 ? 409
                                 : rc == CV_EINVAL || rc == CV_ERANGE ? 400
                                                                      : 500,
                                 "%s", err));
    }
    cJSON *o = cJSON_CreateObject();
    if (o && (!cJSON_AddNumberToObject(o, "trial_id", (double)a->id) ||
              !cJSON_AddNumberToObject(o, "seq", (double)seq) ||
              !cJSON_AddItemToObject(o, "values", body))) {
        if (!cJSON_GetObjectItemCaseSensitive(o, "values")) cJSON_Delete(body);
        cJSON_Delete(o);
        o = NULL;
    } else if (!o) {
        cJSON_Delete(body);
    }
    cv_http_respond_json(res, 200, o);
}

/* DELETE /v1/jobs/{id}: the job's rows go in one transaction, then its models on the thread
 * pool (cv_sched_delete). */
void api_delete_job(cv_api_t *api, const route_args_t *a, const cv_http_request_t *req,
                    cv_http_response_t *res) {
    (void)req;
    int64_t id = a->id;
    char err[CV_ERRLEN];
    int64_t n = 0;
    /* Its test result is about to be stored on the job. */
    int evaluating = cv_evals_pending(cv_sched_evals(api->sched), id) > 0;
    for (const eval_t *e = api->evals; e; e = e->next) evaluating |= e->task.job_id == id;
    if (evaluating)
        REPLY(cv_http_json_error(res, 409, "job %lld is being evaluated; delete it when the "
                                 "evaluation ends", (long long)id));
    int rc = cv_sched_delete(api->sched, id, &n, err);
    if (rc == CV_STORE_NOT_FOUND) REPLY(cv_http_json_error(res, 404, "job not found"));
    if (rc == CV_STORE_STALE)
        REPLY(cv_http_json_error(res, 409, "job %lld is running; cancel it first",
                                 (long long)id));
    if (rc) REPLY(cv_http_json_error(res, 500, "%s", err));
    cv_evals_forget_importance(cv_sched_evals(api->sched), id);
    cJSON *o = cJSON_CreateObject();
    if (o && (!cJSON_AddNumberToObject(o, "id", (double)id) ||
              !cJSON_AddBoolToObject(o, "deleted", 1) ||
              !cJSON_AddNumberToObject(o, "trials_deleted", (double)n))) {
        cJSON_Delete(o);
        o = NULL;
    }
    cv_http_respond_json(res, 200, o);
}

/* POST /v1/jobs/{id}/extend {"max_trials": N}: a completed job runs again with a larger budget
 * (cv_sched_extend). */
void api_extend_job(cv_api_t *api, const route_args_t *a, const cv_http_request_t *req,
                    cv_http_response_t *res) {
    int64_t id = a->id;
    static const char *const fields[] = {"max_trials"};
    char err[CV_ERRLEN];
    cJSON *body = NULL;
    int64_t n = 0;
    int rc = req->body_len ? cv_json_decode(req->body, req->body_len, &body, err)
                           : cv_errf(err, CV_EINVAL, "max_trials: is required");
    if (rc == 0 && !cJSON_IsObject(body))
        rc = cv_errf(err, CV_EINVAL, "the body must be a JSON object {\"max_trials\": N}");
    if (rc == 0) rc = cv_json_check_fields(body, NULL, fields, 1, err);
    const cJSON *m = rc == 0 ? cJSON_GetObjectItemCaseSensitive(body, "max_trials") : NULL;
    if (rc == 0 && !m) rc = cv_errf(err, CV_EINVAL, "max_trials: is required");
    if (rc == 0) rc = cv_json_get_int(m, "max_trials", 1, CV_JOB_MAX_TRIALS, &n, err);
    cJSON_Delete(body);
    if (rc) REPLY(cv_http_json_error(res, 400, "%s", err));
    int round = 0;
    rc = cv_sched_extend(api->sched, id, n, cv_clock_wall(), &round, err);
    if (rc == CV_STORE_NOT_FOUND) REPLY(cv_http_json_error(res, 404, "job not found"));
    if (rc == CV_STORE_STALE) REPLY(cv_http_json_error(res, 409, "%s", err));
    if (rc == CV_EINVAL) REPLY(cv_http_json_error(res, 400, "%s", err));
    if (rc) REPLY(cv_http_json_error(res, 500, "%s", err));
    cJSON *o = cJSON_CreateObject();
    if (o && (!cJSON_AddNumberToObject(o, "id", (double)id) ||
              !cJSON_AddStringToObject(o, "status", "running") ||
              !cJSON_AddNumberToObject(o, "max_trials", (double)n) ||
              !cJSON_AddNumberToObject(o, "round", round + 1))) {
        cJSON_Delete(o);
        o = NULL;
    }
    cv_http_respond_json(res, 200, o);
}
