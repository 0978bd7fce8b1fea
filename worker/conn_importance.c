/* A hyperparameter-importance task the coordinator hands this worker: the importance message's
 * rows are copied out, cv_importance_fanova (common/importance.h) runs on a thread of its own so
 * that the connection keeps its heartbeats, and the importance_result goes out when the thread
 * is done. A task is dropped with its session: the coordinator gives it to another worker. */
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/importance.h"
#include "worker/connection_internal.h"

struct cv_wk_importance {
    cv_msg_importance_result_t answer; /* job_id and lease; the figures or error once done */
    size_t n, p;                       /* rows and parameters */
    double *x, *y;                     /* n × p coordinates and n objectives; owned */
    double lo[CV_MSG_IMP_DIMS_MAX], hi[CV_MSG_IMP_DIMS_MAX];
    uint64_t seed;
    int wake_fd; /* written once when the thread is done */
    pthread_t thread;
    int started;          /* the thread was created and not yet joined */
    pthread_mutex_t lock; /* guards done */
    int done;
    char err[CV_ERRLEN]; /* the answer's error, when rc was not 0 */
};

/* Joins the thread if one runs and frees t. Accepts NULL. */
void cv_conn_importance_destroy(cv_wk_importance_t *t) {
    if (!t) return;
    if (t->started) pthread_join(t->thread, NULL);
    pthread_mutex_destroy(&t->lock);
    free(t->x);
    free(t->y);
    free(t);
}

/* The thread: fits the forest and decomposes its variance. */
static void *importance_main(void *arg) {
    cv_wk_importance_t *t = arg;
    cv_importance_config_t config = cv_importance_defaults(t->seed);
    int rc = cv_importance_fanova(t->x, t->y, t->n, t->p, t->lo, t->hi, &config, t->answer.fraction,
                                  t->answer.importance, t->err);
    pthread_mutex_lock(&t->lock);
    if (rc)
        t->answer.error = t->err;
    else
        t->answer.p = t->p;
    t->done = 1;
    pthread_mutex_unlock(&t->lock);
    const char byte = 1;
    ssize_t n = write(t->wake_fd, &byte, 1); /* a full pipe already holds a wake-up */
    (void)n;
    return NULL;
}

int cv_conn_on_importance(worker_t *w, cv_msg_t *msg) {
    const cv_msg_importance_t *m = &msg->importance;
    if (w->importance) {
        LOG(w, CV_LOG_ERROR, "coordinator sent an importance task of job %lld while one is held",
            (long long)m->job_id);
        return CV_EFORMAT;
    }
    cv_wk_importance_t *t = calloc(1, sizeof *t);
    if (!t || pthread_mutex_init(&t->lock, NULL) != 0) {
        free(t);
        return CV_ENOMEM;
    }
    t->answer.job_id = m->job_id;
    memcpy(t->answer.lease, m->lease, sizeof t->answer.lease);
    t->n = m->n, t->p = m->p, t->seed = (uint64_t)m->seed, t->wake_fd = w->wake[1];
    t->x = malloc(m->n * m->p * sizeof *t->x);
    t->y = malloc(m->n * sizeof *t->y);
    w->importance = t;
    if (!t->x || !t->y) {
        snprintf(t->err, sizeof t->err, "out of memory for %zu rows", m->n);
        t->answer.error = t->err;
        t->done = 1;
        return 0;
    }
    cv_msg_importance_rows(m, t->x, t->y, t->lo, t->hi);
    LOG(w, CV_LOG_INFO, "job %lld: computing the importance of %zu parameters over %zu trials",
        (long long)m->job_id, m->p, m->n);
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, &old);
    int rc = pthread_create(&t->thread, NULL, importance_main, t);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (rc != 0) {
        snprintf(t->err, sizeof t->err, "cannot start an importance thread: %s", strerror(rc));
        t->answer.error = t->err;
        t->done = 1;
        return 0;
    }
    t->started = 1;
    return 0;
}

int cv_conn_importance_service(worker_t *w) {
    char err[CV_ERRLEN];
    cv_wk_importance_t *t = w->importance;
    if (!t) return 0;
    pthread_mutex_lock(&t->lock);
    int done = t->done;
    pthread_mutex_unlock(&t->lock);
    if (!done) return 0;
    if (t->started) pthread_join(t->thread, NULL);
    t->started = 0;
    if (t->answer.error)
        LOG(w, CV_LOG_WARN, "job %lld importance failed: %s", (long long)t->answer.job_id,
            t->answer.error);
    else
        LOG(w, CV_LOG_INFO, "job %lld: importance computed", (long long)t->answer.job_id);
    cJSON *answer = cv_msg_importance_result(&t->answer, err);
    cv_conn_importance_destroy(t);
    w->importance = NULL;
    return cv_conn_send_msg(w, answer, err);
}
