/* GET /v1/jobs/{id}/importance: the job's completed trials read on the thread pool into an
 * importance task for a worker, or the figures already computed for that many trials. See
 * api_internal.h and schemas/api.md. */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "common/err.h"
#include "common/importance.h"
#include "common/importance_rows.h"
#include "common/message.h"
#include "common/space.h"
#include "server/api_internal.h"
#include "server/evaluation.h"

/* Thread pool: the job's completed trials as rows (op->imp) and the 202 reply that goes out
 * unless the loop finds figures for that many trials. 404 for an unknown job, 409 for fewer
 * than 2 completed trials. Jobs with more completed trials than the forest uses
 * (CV_IMPORTANCE_MAX_TRIALS) send that many rows, evenly spaced in trial order, so that the
 * task fits a frame. */
static int read_importance(const read_op_t *op, cv_store_t *store, cJSON **reply, char *err) {
    read_op_t *rw = (read_op_t *)op; /* the read owns its task; nothing else sees it yet */
    cJSON *job = NULL, *trials = NULL, *msg = NULL;
    double *x = NULL, *y = NULL, lo[CV_MSG_IMP_DIMS_MAX], hi[CV_MSG_IMP_DIMS_MAX];
    unsigned char bits[CV_MSG_LEASE_HEX / 2];
    cv_space_t space;
    int status = 500, rc = cv_store_job_get(store, op->id, &job, err);
    if (rc) return api_read_error(rc, "job", err);
    const cJSON *spec = cJSON_GetObjectItemCaseSensitive(job, "spec");
    const cJSON *obj = cJSON_GetObjectItemCaseSensitive(job, "objective");
    const cJSON *space_json = cJSON_GetObjectItemCaseSensitive(spec, "space");
    if (!cJSON_IsObject(space_json) || cJSON_GetArraySize(space_json) == 0) {
        cv_errf(err, CV_EINVAL, "job %lld searches no parameter", (long long)op->id);
        status = 409;
        goto out;
    }
    if (cv_space_from_json_open(&space, space_json, err) ||
        cv_store_trials_list(store, op->id, -1, 0, &trials, err))
        goto out;
    size_t rows = (size_t)cJSON_GetArraySize(trials), p = space.n_params, n;
    cv_importance_task_t *t = rw->imp = calloc(1, sizeof *t);
    if (!t || !(x = malloc((rows ? rows : 1) * p * sizeof *x)) ||
        !(y = malloc((rows ? rows : 1) * sizeof *y))) {
        cv_errf(err, CV_ENOMEM, "out of memory for %zu trials", rows);
        goto out;
    }
    n = cv_importance_rows(&space, trials, cJSON_IsString(obj) ? obj->valuestring : "dev_error", x,
                           y);
    if (n < 2) {
        cv_errf(err, CV_EINVAL, "importance needs at least 2 completed trials; job %lld has %zu",
                (long long)op->id, n);
        status = 409;
        goto out;
    }
    t->job_id = op->id, t->n = n, t->p = p;
    t->rows = n < CV_IMPORTANCE_MAX_TRIALS ? n : CV_IMPORTANCE_MAX_TRIALS;
    if (n > CV_IMPORTANCE_MAX_TRIALS) { /* evenly spaced rows, in place (i >= k) */
        for (size_t k = 0; k < CV_IMPORTANCE_MAX_TRIALS; k++) {
            size_t i = k * n / CV_IMPORTANCE_MAX_TRIALS;
            memmove(x + k * p, x + i * p, p * sizeof *x);
            y[k] = y[i];
        }
    }
    cv_importance_bounds(&space, lo, hi);
    for (size_t d = 0; d < p; d++) {
        snprintf(t->names[d], sizeof t->names[d], "%s", space.params[d].name);
        t->scales[d] = cv_importance_scale_name(&space.params[d]);
    }
    if (getrandom(bits, sizeof bits, 0) != (ssize_t)sizeof bits) {
        cv_errf(err, CV_EIO, "cannot draw a lease: %s", strerror(errno));
        goto out;
    }
    for (size_t i = 0; i < sizeof bits; i++)
        snprintf(t->lease + 2 * i, 3, "%02x", bits[i]);
    msg = cv_msg_importance(op->id, t->lease, op->id, x, y, t->rows, p, lo, hi, err);
    if (!msg || cv_msg_encode(msg, &t->frame, &t->frame_len, err)) goto out;
    cJSON *o = cJSON_CreateObject();
    if (o && cJSON_AddStringToObject(o, "status", "computing") &&
        cJSON_AddNumberToObject(o, "trials", (double)n)) {
        *reply = o;
        status = 202;
    } else {
        cJSON_Delete(o);
        cv_errf(err, CV_ENOMEM, "out of memory");
    }
out:
    cJSON_Delete(msg);
    free(y);
    free(x);
    cJSON_Delete(trials);
    cJSON_Delete(job);
    return status;
}

/* Loop: the figures kept for that many trials answer 200; otherwise the rows are queued for a
 * worker (once per count: cv_evals_add_importance) and the 202 stands. */
static void settle_importance(read_op_t *op) {
    cv_importance_task_t *t = op->imp;
    if (op->status != 202 || !t) return;
    cv_evals_t *ev = cv_sched_evals(op->api->sched);
    const char *kept = cv_evals_importance(ev, t->job_id, t->n);
    if (kept) {
        op->answer = kept;
        op->status = 200;
        return;
    }
    int rc = cv_evals_add_importance(ev, t, op->err);
    if (rc < 0) {
        op->answer = NULL;
        cJSON_free(op->text);
        op->text = NULL; /* answered 500: out of memory */
    }
}

void api_get_importance(cv_api_t *api, const route_args_t *a, const cv_http_request_t *req,
                        cv_http_response_t *res) {
    (void)req;
    read_op_t *op = api_read_new(read_importance, res);
    if (!op) return;
    op->id = a->id;
    op->settle = settle_importance;
    api_start_read(api, op, res);
}
