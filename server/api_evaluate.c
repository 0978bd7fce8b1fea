/* The API's test-set evaluation (POST /v1/jobs/{id}/evaluate: the files hashed on the thread
 * pool, then the task handed to a worker) and model file downloads (GET /v1/trials/{id}/model,
 * read on the thread pool). See api_internal.h and schemas/api.md. */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "common/err.h"
#include "common/hash.h"
#include "common/json.h"
#include "server/api_internal.h"
#include "server/evaluation.h"

/* The answer to a failed store query: 404 naming what was not found, else 500 with the
 * reason. */
static void store_error(cv_http_response_t *res, int rc, const char *what, const char *err) {
    if (rc == CV_STORE_NOT_FOUND) cv_http_json_error(res, 404, "%s not found", what);
    else cv_http_json_error(res, 500, "%s", err);
}

/* ---- evaluation ------------------------------------------------------------------------- */

/* The dataset path fields of a trial spec (the keys of a files object). */
static const char *const data_fields[] = {"images", "labels", "test_images",
                                          "test_labels", "csv", "test_csv"};

/* Thread pool: the SHA-256 and size of every dataset file the best trial's spec names and of
 * every model, for the worker to fetch them by hash. */
static void eval_work(uv_work_t *work) {
    eval_t *e = work->data;
    cv_eval_task_t *t = &e->task;
    cJSON *spec = cJSON_Parse(t->spec_json);
    const cJSON *ds = cJSON_GetObjectItemCaseSensitive(spec, "dataset");
    char err[CV_ERRLEN];
    uint64_t bytes = 0;
    if (!cJSON_IsObject(ds)) {
        e->rc = cv_errf(e->err, CV_EINVAL, "the best trial's spec has no dataset object");
        goto cleanup;
    }
    for (size_t i = 0; i < sizeof data_fields / sizeof *data_fields; i++) {
        const char *path = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(ds,
                                                                                 data_fields[i]));
        if (!path) continue;
        cv_msg_file_t *f = &t->files[t->n_files];
        if ((e->rc = cv_sha256_file(path, f->hash, &bytes, err))) {
            (void)cv_errf(e->err, e->rc, "dataset.%s: %s", data_fields[i], err);
            goto cleanup;
        }
        snprintf(f->field, sizeof f->field, "%s", data_fields[i]);
        snprintf(e->data_paths[t->n_files], sizeof e->data_paths[0], "%s", path);
        f->bytes = (int64_t)bytes;
        t->n_files++;
    }
    for (int i = 0; i < e->count; i++) {
        cv_msg_model_t *m = &t->models[i];
        if ((e->rc = cv_sha256_file(e->paths[i], m->hash, &bytes, err))) {
            (void)cv_errf(e->err, e->rc, "the model of trial %lld: %s",
                          (long long)e->trial_ids[i], err);
            goto cleanup;
        }
        m->trial_id = e->trial_ids[i];
        m->bytes = (int64_t)bytes;
    }
    t->n_models = (size_t)e->count;
cleanup:
    cJSON_Delete(spec);
}

/* Loop thread: the prepared evaluation waits for a worker; one whose files cannot be read has
 * its failure stored against the job at once. */
static void after_eval(uv_work_t *work, int status) {
    eval_t *e = work->data;
    cv_api_t *api = e->api;
    char err[CV_ERRLEN];
    for (eval_t **p = &api->evals; *p; p = &(*p)->next)
        if (*p == e) {
            *p = e->next;
            break;
        }
    int rc = status ? cv_errf(e->err, CV_EIO, "evaluation cancelled") : e->rc;
    for (size_t i = 0; rc == 0 && i < e->task.n_files; i++)
        rc = cv_sched_serve_file(api->sched, e->task.files[i].hash, e->data_paths[i], e->err);
    for (size_t i = 0; rc == 0 && i < e->task.n_models; i++)
        rc = cv_sched_serve_file(api->sched, e->task.models[i].hash, e->paths[i], e->err);
    if (rc == 0) rc = cv_evals_add(cv_sched_evals(api->sched), &e->task, e->err);
    if (rc) {
        char *text = cv_eval_result_json(e->err, 0, 0, 0, e->task.k, e->trial_ids,
                                         (size_t)e->count);
        if (!text || cv_sched_store_test_result(api->sched, e->task.job_id, text, err))
            cv_log(api->log, CV_LOG_ERROR, "job %lld: cannot store the test result: %s",
                   (long long)e->task.job_id, text ? err : "out of memory");
        else
            cv_log(api->log, CV_LOG_INFO, "job %lld test evaluation: %s",
                   (long long)e->task.job_id, text);
        cJSON_free(text);
    }
    cJSON_free(e->task.spec_json); /* NULL when the queue took it */
    free(e);
}

/* The ensemble size a stored test result was asked for: its "ensemble", or the number of its
 * models for a result stored before that field existed. */
static int stored_ensemble(const cJSON *test) {
    const cJSON *k = cJSON_GetObjectItemCaseSensitive(test, "ensemble");
    if (cJSON_IsNumber(k)) return k->valueint;
    return cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(test, "trials"));
}

/* The 409 for asking a job's test set again with another ensemble size than the one it was (or
 * is being) scored with: the test set is scored once per job. */
static void scored_once(cv_http_response_t *res, int64_t id, const char *verb, int k) {
    char with[64];
    if (k == 1) snprintf(with, sizeof with, "the best trial alone");
    else snprintf(with, sizeof with, "an ensemble of %d", k);
    cv_http_json_error(res, 409, "the test set of job %lld %s scored with %s; it is scored once "
                       "per job so that it stays an unbiased estimate", (long long)id, verb, with);
}

/* 202 {"status": "evaluating"}, or 500 when out of memory. */
static void reply_evaluating(cv_http_response_t *res) {
    cJSON *o = cJSON_CreateObject();
    if (o && !cJSON_AddStringToObject(o, "status", "evaluating")) {
        cJSON_Delete(o);
        o = NULL;
    }
    cv_http_respond_json(res, 202, o);
}

void api_evaluate_job(cv_api_t *api, const route_args_t *a, const cv_http_request_t *req,
                      cv_http_response_t *res) {
    int64_t id = a->id;
    char err[CV_ERRLEN];
    int k = 1, k_given = 0;
    if (req->body_len) {
        cJSON *body = NULL;
        int rc = cv_json_decode(req->body, req->body_len, &body, err);
        if (rc) REPLY(cv_http_json_error(res, 400, "%s", err));
        const cJSON *e = cJSON_GetObjectItemCaseSensitive(body, "ensemble");
        int64_t v = 1;
        rc = e ? cv_json_get_int(e, "ensemble", 1, MAX_ENSEMBLE, &v, err) : 0;
        cJSON_Delete(body);
        if (rc) REPLY(cv_http_json_error(res, 400, "%s", err));
        k = (int)v;
        k_given = e != NULL;
    }
    cJSON *job = NULL;
    int rc = cv_store_job_get(api->ro, id, &job, err);
    if (rc) REPLY(store_error(res, rc, "job", err));
    const char *status = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(job, "status"));
    cJSON *test = cJSON_DetachItemFromObjectCaseSensitive(job, "test_result");
    int running = status && !strcmp(status, "running");
    cJSON_Delete(job);
    /* Once: a stored result is the answer. A stored failure (the test set could not be read,
     * the daemon stopped mid-way) is not a result, so asking again starts a new evaluation. */
    if (test && cJSON_IsObject(test) && !cJSON_GetObjectItemCaseSensitive(test, "error")) {
        int stored = stored_ensemble(test);
        if (k_given && k != stored) {
            cJSON_Delete(test);
            REPLY(scored_once(res, id, "was already", stored));
        }
        if (!cJSON_AddBoolToObject(test, "cached", 1)) {
            cJSON_Delete(test);
            test = NULL;
        }
        REPLY(cv_http_respond_json(res, 200, test));
    }
    cJSON_Delete(test);
    if (running)
        REPLY(cv_http_json_error(res, 409, "job %lld is still running; evaluate it when it ends",
                                  (long long)id));
    int pending = cv_evals_pending(cv_sched_evals(api->sched), id);
    for (eval_t *e = api->evals; e && !pending; e = e->next)
        if (e->task.job_id == id) pending = e->task.k;
    if (pending) {
        if (k_given && k != pending) REPLY(scored_once(res, id, "is being", pending));
        REPLY(reply_evaluating(res));
    }
    eval_t *e = calloc(1, sizeof *e);
    if (!e) REPLY(cv_http_json_error(res, 500, "out of memory"));
    e->api = api, e->task.job_id = id, e->task.k = k;
    e->count = cv_sched_best_models(api->sched, id, k, e->paths, e->trial_ids,
                                    &e->task.spec_json, err);
    if (e->count <= 0) {
        int failed = e->count < 0;
        free(e);
        if (failed) REPLY(cv_http_json_error(res, 500, "%s", err));
        REPLY(cv_http_json_error(res, 409, "job %lld has no completed trial with a model",
                                  (long long)id));
    }
    e->work.data = e;
    if (uv_queue_work(api->loop, &e->work, eval_work, after_eval)) {
        cJSON_free(e->task.spec_json);
        free(e);
        REPLY(cv_http_json_error(res, 500, "cannot start the evaluation"));
    }
    e->next = api->evals;
    api->evals = e;
    reply_evaluating(res);
}

/* ---- model files ------------------------------------------------------------------------ */

#define MODEL_MAX_BYTES (64u << 20) /* a model larger than this is not served (the CLI's limit) */

/* One model file read on the thread pool for GET /v1/trials/{id}/model. */
typedef struct {
    uv_work_t work;
    cv_api_t *api;
    cv_http_deferred_t *deferred; /* the answer owed */
    int64_t trial_id;
    char path[1024];              /* the stored model_path */
    char *data;                   /* the file's bytes (owned), NULL until read */
    size_t len;
    int missing;                  /* 1: the file does not exist */
    char err[CV_ERRLEN];          /* why it could not be read */
} model_read_t;

/* Thread pool: reads the whole model file into r->data. */
static void model_read_work(uv_work_t *work) {
    model_read_t *r = work->data;
    struct stat st;
    FILE *f = fopen(r->path, "rb");
    if (!f) {
        r->missing = errno == ENOENT;
        (void)cv_errf(r->err, CV_EIO, "%s: %s", r->path, strerror(errno));
        return;
    }
    if (fstat(fileno(f), &st) || !S_ISREG(st.st_mode) || st.st_size > MODEL_MAX_BYTES) {
        (void)cv_errf(r->err, CV_EIO, "%s: not a regular file of at most %u bytes", r->path,
                      MODEL_MAX_BYTES);
    } else if (!(r->data = malloc((size_t)st.st_size + 1))) {
        (void)cv_errf(r->err, CV_EIO, "out of memory reading %s", r->path);
    } else if ((r->len = fread(r->data, 1, (size_t)st.st_size, f)) != (size_t)st.st_size) {
        (void)cv_errf(r->err, CV_EIO, "%s: read failed", r->path);
        free(r->data);
        r->data = NULL;
    }
    fclose(f);
}

/* Loop thread: answers with the bytes, or says why there are none. No answer is owed when
 * cv_http_defer failed (the request was answered with a 500 at once). */
static void after_model_read(uv_work_t *work, int status) {
    model_read_t *r = work->data;
    r->api->model_reads--;
    if (r->deferred) {
        cv_http_response_t res;
        memset(&res, 0, sizeof res);
        if (status == 0 && r->data)
            cv_http_respond_text(&res, 200, "application/octet-stream", r->data, r->len);
        else if (status == 0 && r->missing)
            cv_http_json_error(&res, 404, "the model file of trial %lld is gone from the data "
                               "directory (%s)", (long long)r->trial_id, r->path);
        else
            cv_http_json_error(&res, 500, "cannot read the model of trial %lld: %s",
                               (long long)r->trial_id, status ? "cancelled" : r->err);
        cv_http_deferred_finish(r->deferred, &res);
    }
    free(r->data);
    free(r);
}

/* GET /v1/trials/{id}/model: the model file of a finished trial, read off the loop thread. */
void api_get_trial_model(cv_api_t *api, const route_args_t *a, const cv_http_request_t *req,
                         cv_http_response_t *res) {
    (void)req;
    int64_t id = a->id;
    char err[CV_ERRLEN];
    cJSON *t = NULL;
    int rc = cv_store_trial_get(api->ro, id, 0, &t, err);
    if (rc == CV_STORE_NOT_FOUND) REPLY(cv_http_json_error(res, 404, "trial %lld not found",
                                                           (long long)id));
    if (rc) REPLY(cv_http_json_error(res, 500, "%s", err));
    const char *path = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(t, "model_path"));
    const char *status = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(t, "status"));
    if (!path || !*path) {
        int open = status && (!strcmp(status, "queued") || !strcmp(status, "running"));
        cv_http_json_error(res, 404, "trial %lld has no model: %s", (long long)id,
                           open ? "it has not finished yet"
                                : "it did not complete (only completed and pruned trials "
                                  "keep one)");
        cJSON_Delete(t);
        return;
    }
    model_read_t *r = calloc(1, sizeof *r);
    if (!r || strlen(path) >= sizeof r->path) {
        cv_http_json_error(res, 500, "%s", r ? "the model path is too long" : "out of memory");
        free(r);
        cJSON_Delete(t);
        return;
    }
    snprintf(r->path, sizeof r->path, "%s", path);
    cJSON_Delete(t);
    r->api = api, r->trial_id = id, r->work.data = r;
    if (uv_queue_work(api->loop, &r->work, model_read_work, after_model_read)) {
        free(r);
        REPLY(cv_http_json_error(res, 500, "cannot start reading the model of trial %lld",
                                 (long long)id));
    }
    api->model_reads++;
    /* The work only touches the file's fields; the answer is owed from here on. */
    if (!(r->deferred = cv_http_defer(res)))
        cv_http_json_error(res, 500, "out of memory"); /* after_model_read then answers nobody */
}
