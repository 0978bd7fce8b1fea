/* A test-set evaluation on the worker; see evaluate.h. */
#include "worker/evaluate.h"

#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/err.h"
#include "common/trial_spec.h"
#include "worker/model_file.h"
#include "worker/trial_data.h"

#define FILES_MAX (CV_MSG_FILES_MAX + CV_MSG_MODELS_MAX)

struct cv_wk_eval {
    int64_t job_id;
    char lease[CV_MSG_LEASE_HEX + 1];
    const char *cache_dir;              /* borrowed; NULL: none */
    cJSON *spec;                        /* owned; dataset paths rewritten as files resolve */
    cv_trial_spec_t parsed;             /* read by the thread */
    cv_wk_eval_file_t files[FILES_MAX]; /* dataset files, then models (best first) */
    size_t n_files, n_models, next;     /* files[0..next) are resolved */
    pthread_t thread;
    int started; /* the thread was created (and not yet joined) */
    int wake_fd;
    pthread_mutex_t lock; /* guards done */
    int done;             /* 1 once the answer below is final */
    int rc;               /* 0: scored */
    int job_fault;        /* with rc: whose fault */
    double accuracy, cost;
    int64_t examples;
    char err[CV_ERRLEN];
};

int cv_wk_eval_create(cv_wk_eval_t **out, cv_msg_t *msg, const char *cache_dir, char *err) {
    const cv_msg_evaluate_t *m = &msg->evaluate;
    cv_wk_eval_t *e = calloc(1, sizeof *e);
    if (!e || pthread_mutex_init(&e->lock, NULL) != 0) {
        free(e);
        return cv_errf(err, CV_ENOMEM, "out of memory");
    }
    e->job_id = m->job_id;
    e->cache_dir = cache_dir;
    memcpy(e->lease, m->lease, sizeof e->lease);
    for (size_t i = 0; i < m->n_files; i++) {
        cv_wk_eval_file_t *f = &e->files[e->n_files++];
        memcpy(f->hash, m->files[i].hash, sizeof f->hash);
        f->bytes = m->files[i].bytes;
        snprintf(f->what, sizeof f->what, "dataset.%s", m->files[i].field);
    }
    for (size_t i = 0; i < m->n_models; i++, e->n_models++) {
        cv_wk_eval_file_t *f = &e->files[e->n_files++];
        memcpy(f->hash, m->models[i].hash, sizeof f->hash);
        f->bytes = m->models[i].bytes;
        snprintf(f->what, sizeof f->what, "the model of trial %lld",
                 (long long)m->models[i].trial_id);
    }
    e->spec = cv_msg_take_object(msg);
    const cJSON *ds = cJSON_GetObjectItemCaseSensitive(e->spec, "dataset");
    for (size_t i = 0; i < m->n_files; i++) {
        const cJSON *p = cJSON_GetObjectItemCaseSensitive(ds, m->files[i].field);
        e->files[i].spec_path = cJSON_IsString(p) ? p->valuestring : "";
    }
    *out = e;
    return 0;
}

void cv_wk_eval_destroy(cv_wk_eval_t *e) {
    if (!e) return;
    if (e->started) pthread_join(e->thread, NULL);
    size_t n = e->cache_dir ? strlen(e->cache_dir) : 0;
    for (size_t i = e->n_files - e->n_models; n && i < e->n_files; i++) {
        const char *path = e->files[i].path;
        if (!strncmp(path, e->cache_dir, n) && path[n] == '/') unlink(path);
    }
    pthread_mutex_destroy(&e->lock);
    cJSON_Delete(e->spec);
    free(e);
}

int64_t cv_wk_eval_job(const cv_wk_eval_t *e) {
    return e->job_id;
}

/* Sets the final answer: rc 0 with the score, else the reason in err. */
static void finish(cv_wk_eval_t *e) {
    pthread_mutex_lock(&e->lock);
    e->done = 1;
    pthread_mutex_unlock(&e->lock);
}

cv_wk_eval_file_t *cv_wk_eval_next(cv_wk_eval_t *e) {
    if (e->done || e->next >= e->n_files) return NULL;
    return &e->files[e->next];
}

void cv_wk_eval_resolved(cv_wk_eval_t *e, const char *path) {
    if (e->next >= e->n_files) return;
    snprintf(e->files[e->next].path, CV_WK_EVAL_PATH, "%s", path);
    e->next++;
}

void cv_wk_eval_fail(cv_wk_eval_t *e, const char *reason, int job_fault) {
    if (e->done) return;
    e->rc = CV_EINVAL;
    e->job_fault = job_fault;
    snprintf(e->err, sizeof e->err, "%s", reason);
    finish(e);
}

/* The thread: loads the spec's data and the models, scores the ensemble on the test set. A
 * failure here is the job's (its data, its models), unless memory ran out. */
static void *eval_main(void *arg) {
    cv_wk_eval_t *e = arg;
    cv_trial_data_t data;
    cv_ensemble_t ens = {0};
    const char *paths[CV_MSG_MODELS_MAX];
    for (size_t i = 0; i < e->n_models; i++)
        paths[i] = e->files[e->n_files - e->n_models + i].path;
    int loaded = 0;
    e->rc = cv_trial_data_load_raw(&data, &e->parsed, e->err);
    loaded = e->rc == 0;
    if (e->rc == 0 && data.test.m == 0)
        e->rc = cv_errf(e->err, CV_EINVAL, "the job's split has no test set");
    if (e->rc == 0) e->rc = cv_ensemble_load(&ens, paths, (int)e->n_models, e->err);
    if (e->rc == 0) {
        e->rc = cv_ensemble_evaluate(&ens, &data.test, &e->accuracy, &e->cost, e->err);
        e->examples = (int64_t)data.test.m;
    }
    e->job_fault = e->rc != CV_ENOMEM;
    cv_ensemble_finish(&ens);
    if (loaded) cv_trial_data_finish(&data);
    finish(e);
    const char byte = 1;
    ssize_t n = write(e->wake_fd, &byte, 1); /* a full pipe already holds a wake-up */
    (void)n;
    return NULL;
}

void cv_wk_eval_start(cv_wk_eval_t *e, int wake_fd) {
    char reason[CV_ERRLEN];
    if (e->done || e->started || e->next < e->n_files) return;
    cJSON *ds = cJSON_GetObjectItemCaseSensitive(e->spec, "dataset");
    for (size_t i = 0; i < e->n_files - e->n_models; i++) {
        const char *field = e->files[i].what + strlen("dataset.");
        cJSON *s = cJSON_CreateString(e->files[i].path);
        e->files[i].spec_path = NULL; /* the item it pointed into is replaced */
        if (s == NULL || !cJSON_IsObject(ds) ||
            !cJSON_ReplaceItemInObjectCaseSensitive(ds, field, s)) {
            cJSON_Delete(s);
            cv_wk_eval_fail(e, "out of memory rewriting the spec", 0);
            return;
        }
    }
    if (cv_trial_spec_from_json(&e->parsed, e->spec, reason) != 0) {
        cv_wk_eval_fail(e, reason, 1);
        return;
    }
    e->wake_fd = wake_fd;
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, &old);
    int rc = pthread_create(&e->thread, NULL, eval_main, e);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (rc != 0) {
        snprintf(reason, sizeof reason, "cannot start an evaluation thread: %s", strerror(rc));
        cv_wk_eval_fail(e, reason, 0);
        return;
    }
    e->started = 1;
}

int cv_wk_eval_done(cv_wk_eval_t *e) {
    pthread_mutex_lock(&e->lock);
    int done = e->done;
    pthread_mutex_unlock(&e->lock);
    return done;
}

cJSON *cv_wk_eval_answer(cv_wk_eval_t *e, char *err) {
    if (e->started) {
        pthread_join(e->thread, NULL);
        e->started = 0;
    }
    cv_msg_evaluation_t a = {.job_id = e->job_id,
                             .test_accuracy = e->accuracy,
                             .test_cost = e->cost,
                             .examples = e->examples,
                             .error = e->rc ? e->err : NULL,
                             .job_fault = e->job_fault};
    memcpy(a.lease, e->lease, sizeof a.lease);
    return cv_msg_evaluation(&a, err);
}
