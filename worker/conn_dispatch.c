/* caviar-worker's message dispatch: every frame from the coordinator is validated with
 * cv_msg_parse and handed to the handler of its type (welcome, trial, ack, stop, decision,
 * nudge, dataset and its data, error). */
#include <stdlib.h>
#include <string.h>

#include "common/clock.h"
#include "common/err.h"
#include "worker/connection_internal.h"

static int in_ids(const int64_t *ids, size_t n, int64_t id) {
    for (size_t i = 0; i < n; i++)
        if (ids[i] == id) return 1;
    return 0;
}

static int on_welcome(worker_t *w, const cv_msg_welcome_t *m) {
    w->welcomed = 1;
    w->backoff = BACKOFF_FIRST;
    w->hb_every = m->heartbeat_seconds;
    w->hb_next = cv_clock_monotonic() + m->heartbeat_seconds;
    LOG(w, CV_LOG_INFO, "welcomed: heartbeat every %g s, %zu lease(s) reattached",
        m->heartbeat_seconds, m->n_reattached);
    for (size_t i = 0; i < w->n_pending;) {
        pending_t *p = &w->pending[i];
        if (in_ids(m->reattached, m->n_reattached, p->trial_id)) {
            p->to_send = 1;
            i++;
        } else {
            LOG(w, CV_LOG_INFO, "trial %lld: not reattached; its result is dropped",
                (long long)p->trial_id);
            cv_conn_drop_pending(w, p);
        }
    }
    if (w->run && !w->run->discard && !in_ids(m->reattached, m->n_reattached, w->run->trial_id)) {
        LOG(w, CV_LOG_INFO, "trial %lld: not reattached; stopping it", (long long)w->run->trial_id);
        cv_conn_train_discard(w);
    } else if (w->run && !w->run->discard) {
        cv_conn_train_set_online(w->run, 1);
    }
    if (w->prep.active && !in_ids(m->reattached, m->n_reattached, w->prep.trial_id)) {
        LOG(w, CV_LOG_INFO, "trial %lld: not reattached; abandoned", (long long)w->prep.trial_id);
        cv_conn_prep_clear(w);
    }
    return cv_conn_prep_advance(w);
}

/* The --noop answer: a completed result computed from the spec's learning rate alone, with no
 * model (this mode exists to measure the coordinator). */
static void noop_trial(worker_t *w, const cv_msg_trial_t *t) {
    const cJSON *lr = cJSON_GetObjectItemCaseSensitive(t->spec, "learning_rate");
    double d = cv_conn_noop_dev_error(cJSON_IsNumber(lr) ? lr->valuedouble : 1e-3, t->trial_id);
    cv_trial_result_t r = {.status = CV_TRIAL_COMPLETED,
                           .epochs_run = 1,
                           .best_epoch = 1,
                           .best = {.epoch = 1,
                                    .train_error = 0.9 * d,
                                    .dev_error = d,
                                    .train_cost = 1.8 * d,
                                    .train_cost_reg = 1.8 * d,
                                    .dev_cost = 2 * d}};
    cv_conn_add_result(w, t->trial_id, t->lease, &r, "", 0, 0);
}

static int on_trial(worker_t *w, cv_msg_t *msg) {
    const cv_msg_trial_t *t = &msg->trial;
    if (w->prep.active || (w->run && !w->run->discard)) {
        LOG(w, CV_LOG_ERROR, "coordinator sent trial %lld while trial %lld is still held",
            (long long)t->trial_id,
            (long long)(w->prep.active ? w->prep.trial_id : w->run->trial_id));
        return CV_EFORMAT;
    }
    LOG(w, CV_LOG_DEBUG, "trial %lld (job %lld): received", (long long)t->trial_id,
        (long long)t->job_id);
    if (w->opt->noop) {
        noop_trial(w, t);
        return 0;
    }
    prep_t *p = &w->prep;
    cv_conn_nudges_reset(&w->nudges, t->trial_id);
    p->active = 1;
    p->trial_id = t->trial_id;
    p->job_id = t->job_id;
    p->by_dev_cost = t->objective == CV_MSG_OBJECTIVE_DEV_COST;
    memcpy(p->lease, t->lease, sizeof p->lease);
    memcpy(p->files, t->files, sizeof p->files);
    p->n_files = t->n_files;
    memcpy(p->decide_at, t->decide_at, sizeof p->decide_at);
    p->n_decide_at = t->n_decide_at;
    p->spec = cv_msg_take_object(msg);
    if (p->spec == NULL) {
        cv_conn_prep_fail(w, "out of memory taking the spec", FAULT_WORKER);
        return 0;
    }
    return cv_conn_prep_advance(w);
}

static int on_ack(worker_t *w, int64_t trial_id, int stored) {
    pending_t *p = cv_conn_find_pending(w, trial_id);
    if (p == NULL) {
        LOG(w, CV_LOG_DEBUG, "ack for trial %lld, which has no result here", (long long)trial_id);
        return 0;
    }
    LOG(w, CV_LOG_DEBUG, "trial %lld: result %s", (long long)trial_id,
        stored ? "stored" : "refused as stale");
    cv_conn_drop_pending(w, p);
    return 0;
}

/* Abandons the trial wherever it is; the coordinator expects nothing more for it. */
static int on_stop(worker_t *w, int64_t trial_id) {
    pending_t *p = cv_conn_find_pending(w, trial_id);
    if (w->run && !w->run->discard && w->run->trial_id == trial_id) {
        LOG(w, CV_LOG_INFO, "trial %lld: stop requested", (long long)trial_id);
        cv_conn_train_discard(w);
    } else if (w->prep.active && w->prep.trial_id == trial_id) {
        LOG(w, CV_LOG_INFO, "trial %lld: stopped before training", (long long)trial_id);
        cv_conn_prep_clear(w);
    } else if (p) {
        cv_conn_drop_pending(w, p);
    } else {
        LOG(w, CV_LOG_DEBUG, "stop for trial %lld, which is not here", (long long)trial_id);
    }
    return 0;
}

/* The pruner's verdict on the trial in training at epoch: stop prunes it (at once when the
 * thread waits at that epoch, else at its next epoch end); go-on ends a wait for that epoch. A
 * decision for a trial not in training here is ignored. */
static int on_decision(worker_t *w, int64_t trial_id, int epoch, int stop) {
    run_t *r = w->run;
    if (r == NULL || r->discard || r->trial_id != trial_id) {
        LOG(w, CV_LOG_DEBUG, "decision for trial %lld, which is not training here",
            (long long)trial_id);
        return 0;
    }
    LOG(w, CV_LOG_INFO, "trial %lld: %s at epoch %d", (long long)trial_id,
        stop ? "pruned" : "goes on", epoch);
    cv_conn_train_decide(r, epoch, stop);
    return 0;
}

/* An error message that answers dataset_get means the coordinator cannot serve that file:
 * asking again after reconnecting would only repeat the refusal, so the trial fails. */
static void on_refusal(worker_t *w, const char *message) {
    prep_t *p = &w->prep;
    char reason[CV_ERRLEN];
    if (w->fetch.state != FETCH_ASKED || !p->active || p->ready || p->next >= p->n_files ||
        strcmp(p->files[p->next].hash, w->fetch.hash) != 0)
        return;
    cv_errf(reason, CV_EIO, "files.%s: the coordinator cannot serve dataset %s: %s",
            p->files[p->next].field, w->fetch.hash, message);
    cv_conn_prep_fail(w, reason, FAULT_JOB);
}

/* Handles one frame from the coordinator. Returns 0, or the code that ends the connection:
 * CV_EFORMAT for a protocol violation, CV_ESTOPPED for an error message, CV_ENOMEM. */
int cv_conn_on_frame(worker_t *w, const cv_frame_t *f) {
    char err[CV_ERRLEN];
    if (f->kind == CV_FRAME_DATA) return cv_conn_on_data(w, f);
    if (w->fetch.state == FETCH_RECEIVING) {
        LOG(w, CV_LOG_ERROR, "coordinator sent a message in the middle of dataset %s's data",
            w->fetch.hash);
        return CV_EFORMAT;
    }
    cv_msg_t msg;
    if (cv_msg_parse((const char *)f->payload, f->len, &msg, err) != 0) {
        LOG(w, CV_LOG_ERROR, "malformed message from the coordinator: %s", err);
        return CV_EFORMAT;
    }
    int rc = 0;
    if (!w->welcomed && msg.type != CV_MSG_WELCOME && msg.type != CV_MSG_ERROR) {
        LOG(w, CV_LOG_ERROR, "coordinator sent %s before welcome", cv_msg_type_name(msg.type));
        rc = CV_EFORMAT;
    } else {
        switch (msg.type) {
        case CV_MSG_WELCOME:
            if (w->welcomed) {
                LOG(w, CV_LOG_ERROR, "coordinator sent a second welcome");
                rc = CV_EFORMAT;
            } else {
                rc = on_welcome(w, &msg.welcome);
            }
            break;
        case CV_MSG_TRIAL:
            rc = on_trial(w, &msg);
            break;
        case CV_MSG_ACK:
            rc = on_ack(w, msg.ack.trial_id, msg.ack.stored);
            break;
        case CV_MSG_STOP:
            rc = on_stop(w, msg.stop.trial_id);
            break;
        case CV_MSG_DATASET:
            rc = cv_conn_on_dataset(w, msg.dataset.hash, msg.dataset.bytes);
            break;
        case CV_MSG_DECISION:
            rc = on_decision(w, msg.decision.trial_id, msg.decision.epoch, msg.decision.stop);
            break;
        case CV_MSG_EVALUATE:
            rc = cv_conn_on_evaluate(w, &msg);
            break;
        case CV_MSG_NUDGE:
            rc = cv_conn_on_nudge(w, &msg.nudge);
            break;
        case CV_MSG_IMPORTANCE:
            rc = cv_conn_on_importance(w, &msg);
            break;
        case CV_MSG_ERROR:
            LOG(w, CV_LOG_ERROR, "coordinator refused this worker: %s", msg.error.message);
            on_refusal(w, msg.error.message);
            rc = CV_ESTOPPED;
            break;
        default:
            LOG(w, CV_LOG_ERROR, "coordinator sent %s, which only workers send",
                cv_msg_type_name(msg.type));
            rc = CV_EFORMAT;
            break;
        }
    }
    cv_msg_finish(&msg);
    return rc;
}

