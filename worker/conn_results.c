/* caviar-worker's results: each trial's end becomes an encoded result frame kept until the
 * coordinator acknowledges it (at most PENDING_MAX of them), sent when the connection is
 * welcomed, and followed by its model file as data frames. */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

#include "common/err.h"
#include "worker/connection_internal.h"

pending_t *cv_conn_find_pending(worker_t *w, int64_t trial_id) {
    for (size_t i = 0; i < w->n_pending; i++)
        if (w->pending[i].trial_id == trial_id) return &w->pending[i];
    return NULL;
}

/* Forgets pending result p: its frame, and its model file. An upload of that model in progress
 * goes on from its open stream. */
void cv_conn_drop_pending(worker_t *w, pending_t *p) {
    free(p->frame);
    if (p->model_path[0]) unlink(p->model_path);
    size_t i = (size_t)(p - w->pending);
    memmove(p, p + 1, (w->n_pending - i - 1) * sizeof *p);
    w->n_pending--;
}

/* The result of a trial that ended without metrics: status, the reason in error, whose fault. */
static cv_trial_result_t failure(cv_trial_status_t status, const char *reason, double seconds,
                                 fault_t fault) {
    cv_trial_result_t r = {.status = status,
                           .examples_per_second = NAN,
                           .seconds = isfinite(seconds) ? seconds : 0,
                           .job_fault = fault == FAULT_JOB};
    snprintf(r.error, sizeof r.error, "%s", reason);
    return r;
}

void cv_conn_add_failure(worker_t *w, int64_t trial_id, const char *lease, cv_trial_status_t status,
                         const char *reason, double seconds, fault_t fault) {
    cv_trial_result_t r = failure(status, reason, seconds, fault);
    cv_conn_add_result(w, trial_id, lease, &r, "", 0, 0);
}

void cv_conn_add_result(worker_t *w, int64_t trial_id, const char *lease,
                        const cv_trial_result_t *result, const char *model_path,
                        int64_t model_bytes, uint32_t crc) {
    char err[CV_ERRLEN];
    cJSON *msg = cv_msg_result(trial_id, lease, result, model_bytes, crc, err);
    if (msg == NULL) {
        LOG(w, CV_LOG_ERROR, "trial %lld: %s; reporting it as failed", (long long)trial_id, err);
        if (model_path[0]) unlink(model_path);
        model_path = "";
        model_bytes = 0;
        cv_trial_result_t failed = failure(CV_TRIAL_FAILED, err, 0, FAULT_WORKER);
        msg = cv_msg_result(trial_id, lease, &failed, 0, 0, err);
        if (msg == NULL) {
            LOG(w, CV_LOG_ERROR, "trial %lld: result dropped: %s", (long long)trial_id, err);
            return;
        }
    }
    unsigned char *frame = NULL;
    size_t frame_len = 0;
    int rc = cv_msg_encode(msg, &frame, &frame_len, err);
    cJSON_Delete(msg);
    if (rc) {
        LOG(w, CV_LOG_ERROR, "trial %lld: result dropped: %s", (long long)trial_id, err);
        if (model_path[0]) unlink(model_path);
        return;
    }
    cv_conn_queue_result(w, trial_id, lease, frame, frame_len, model_path, model_bytes);
}

/* Keeps an encoded result frame (taken over) until its acknowledgement, and marks it to send. */
void cv_conn_queue_result(worker_t *w, int64_t trial_id, const char *lease, unsigned char *frame,
                          size_t frame_len, const char *model_path, int64_t model_bytes) {
    pending_t p = {.trial_id = trial_id,
                   .model_bytes = model_bytes,
                   .to_send = 1,
                   .frame = frame,
                   .frame_len = frame_len};
    snprintf(p.lease, sizeof p.lease, "%s", lease);
    snprintf(p.model_path, sizeof p.model_path, "%s", model_path);
    if (w->n_pending == PENDING_MAX) {
        LOG(w, CV_LOG_WARN, "trial %lld: forgetting its unacknowledged result to make room",
            (long long)w->pending[0].trial_id);
        cv_conn_drop_pending(w, &w->pending[0]);
    }
    w->pending[w->n_pending++] = p;
}

/* Sends the first pending result marked to_send, when the connection is welcomed and no other
 * upload runs: its frame, then its model as data frames (cv_conn_pump_upload). */
int cv_conn_send_next_pending(worker_t *w) {
    if (!w->welcomed || w->up.f) return 0;
    for (size_t i = 0; i < w->n_pending; i++) {
        pending_t *p = &w->pending[i];
        if (!p->to_send) continue;
        p->to_send = 0;
        FILE *f = NULL;
        if (p->model_bytes > 0 && (f = fopen(p->model_path, "rb")) == NULL) {
            LOG(w, CV_LOG_ERROR, "trial %lld: result dropped: cannot open its model %s: %s",
                (long long)p->trial_id, p->model_path, strerror(errno));
            cv_conn_drop_pending(w, p);
            return 0;
        }
        int rc = cv_bytes_append(&w->out, p->frame, p->frame_len);
        if (rc) {
            if (f) fclose(f);
            return rc;
        }
        LOG(w, CV_LOG_DEBUG, "trial %lld: result sent (%lld model bytes follow)",
            (long long)p->trial_id, (long long)p->model_bytes);
        w->up = (upload_t){.f = f, .left = p->model_bytes, .trial_id = p->trial_id};
        return 0;
    }
    return 0;
}

/* Moves model bytes into data frames while the output queue is short. When the upload ends the
 * deferred JSON frames follow. A model file that ends early breaks the promise made by
 * model_bytes: the result is dropped and the connection closed (CV_EIO). */
int cv_conn_pump_upload(worker_t *w) {
    unsigned char header[CV_FRAME_HEADER_SIZE];
    while (w->up.f && cv_bytes_queued(&w->out) < OUT_HIGH_WATER) {
        size_t n = w->up.left < (int64_t)UPLOAD_CHUNK ? (size_t)w->up.left : UPLOAD_CHUNK;
        if (n > 0) {
            int rc = cv_frame_encode_header(CV_FRAME_DATA, n, header, NULL);
            unsigned char *dst = rc ? NULL : cv_bytes_reserve(&w->out, sizeof header + n);
            if (dst == NULL) return CV_ENOMEM;
            size_t got = fread(dst + sizeof header, 1, n, w->up.f);
            if (got != n) {
                LOG(w, CV_LOG_ERROR, "trial %lld: model file ended %lld bytes early",
                    (long long)w->up.trial_id, (long long)(w->up.left - (int64_t)got));
                pending_t *p = cv_conn_find_pending(w, w->up.trial_id);
                if (p) cv_conn_drop_pending(w, p);
                fclose(w->up.f);
                w->up.f = NULL;
                return CV_EIO;
            }
            memcpy(dst, header, sizeof header);
            cv_bytes_commit(&w->out, sizeof header + n);
            w->up.left -= (int64_t)n;
        }
        if (w->up.left == 0) {
            fclose(w->up.f);
            w->up.f = NULL;
            int rc = cv_bytes_append(&w->out, cv_bytes_head(&w->deferred),
                                     cv_bytes_queued(&w->deferred));
            if (rc) return rc;
            cv_bytes_consume(&w->deferred, cv_bytes_queued(&w->deferred));
        }
    }
    return 0;
}

/* Size and zlib crc32 of the file at path. Returns 0 or -1. */
int cv_conn_model_digest(const char *path, int64_t *bytes, uint32_t *crc) {
    unsigned char buf[65536];
    FILE *f = fopen(path, "rb");
    if (f == NULL) return -1;
    uLong c = crc32(0L, Z_NULL, 0);
    int64_t total = 0;
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, f)) > 0) {
        c = crc32(c, buf, (uInt)n);
        total += (int64_t)n;
    }
    int failed = ferror(f);
    fclose(f);
    if (failed) return -1;
    *bytes = total;
    *crc = (uint32_t)c;
    return 0;
}
