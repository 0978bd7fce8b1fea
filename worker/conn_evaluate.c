/* A test-set evaluation the coordinator hands this worker (worker/evaluate.h does the scoring):
 * its files resolve like a trial's, a local file of the right size and SHA-256, or the cache, or
 * a fetch from the coordinator (one transfer at a time, shared with trials); the answer goes out
 * when the scoring thread is done. An evaluation is dropped with its session: the coordinator
 * gives it to another worker. */
#include <stdio.h>
#include <string.h>

#include "worker/connection_internal.h"

static int eval_advance(worker_t *w) {
    cv_wk_eval_file_t *f;
    char path[WPATH], err[CV_ERRLEN];
    while (w->eval && (f = cv_wk_eval_next(w->eval)) != NULL) {
        if (cv_dcache_find(&w->cache, f->hash, f->bytes, f->spec_path ? f->spec_path : "", path)) {
            cv_wk_eval_resolved(w->eval, path);
            continue;
        }
        if (w->opt->cache_dir == NULL) {
            snprintf(err, sizeof err,
                     "%s is not here and there is no cache directory to fetch it into", f->what);
            cv_wk_eval_fail(w->eval, err, 0);
            break;
        }
        if (!w->welcomed || w->fetch.state != FETCH_IDLE) return 0; /* asked again later */
        LOG(w, CV_LOG_INFO, "job %lld evaluation: fetching %s (%s, %lld bytes)",
            (long long)cv_wk_eval_job(w->eval), f->what, f->hash, (long long)f->bytes);
        w->fetch.state = FETCH_ASKED;
        memcpy(w->fetch.hash, f->hash, sizeof w->fetch.hash);
        return cv_conn_send_msg(w, cv_msg_dataset_get(f->hash, err), err);
    }
    if (w->eval) cv_wk_eval_start(w->eval, w->wake[1]);
    return 0;
}

int cv_conn_eval_fetched(worker_t *w, const fetch_t *t) {
    cv_wk_eval_file_t *f = w->eval ? cv_wk_eval_next(w->eval) : NULL;
    if (f && t->fill.failed[0] && strcmp(f->hash, t->hash) == 0)
        cv_wk_eval_fail(w->eval, t->fill.failed, t->fill.failed_job);
    return eval_advance(w);
}

int cv_conn_on_evaluate(worker_t *w, cv_msg_t *msg) {
    char err[CV_ERRLEN];
    if (w->eval) {
        LOG(w, CV_LOG_ERROR,
            "coordinator sent an evaluation of job %lld while one of job %lld is still held",
            (long long)msg->evaluate.job_id, (long long)cv_wk_eval_job(w->eval));
        return CV_EFORMAT;
    }
    if (cv_wk_eval_create(&w->eval, msg, w->opt->cache_dir, err) != 0) return CV_ENOMEM;
    LOG(w, CV_LOG_INFO, "job %lld: evaluating %zu model(s) on the test set",
        (long long)msg->evaluate.job_id, msg->evaluate.n_models);
    return eval_advance(w);
}

int cv_conn_eval_service(worker_t *w) {
    char err[CV_ERRLEN];
    if (!w->eval || !cv_wk_eval_done(w->eval)) return 0;
    cJSON *answer = cv_wk_eval_answer(w->eval, err);
    const cJSON *e = cJSON_GetObjectItemCaseSensitive(answer, "error");
    if (e)
        LOG(w, CV_LOG_WARN, "job %lld evaluation failed: %s", (long long)cv_wk_eval_job(w->eval),
            cJSON_GetStringValue(e));
    else if (answer)
        LOG(w, CV_LOG_INFO, "job %lld evaluated: test accuracy %g",
            (long long)cv_wk_eval_job(w->eval),
            cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(answer, "test_accuracy")));
    cv_wk_eval_destroy(w->eval);
    w->eval = NULL;
    return cv_conn_send_msg(w, answer, err);
}
