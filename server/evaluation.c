/* Test-set evaluations as tasks for workers; see evaluation.h. */
#include "server/evaluation.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

#include "common/err.h"
#include "common/rng.h"
#include "server/scheduler.h"
#include "server/store.h"

/* One evaluation, waiting (worker NULL) or running on a worker. */
typedef struct eval_task {
    cv_eval_task_t t;                 /* spec_json owned */
    const cv_sched_worker_t *worker;  /* the worker running it, NULL while it waits */
    char lease[CV_MSG_LEASE_HEX + 1]; /* the current lease, "" while it waits */
    int attempts;                     /* workers it was given to */
    struct eval_task *next;
} eval_task_t;

struct cv_evals {
    const cv_log_t *log;
    cv_rng_t rng;       /* lease tokens */
    eval_task_t *tasks; /* waiting and running, in queue order (oldest first) */
};

int cv_evals_create(cv_evals_t **out, const cv_log_t *log, char *err) {
    cv_evals_t *ev = calloc(1, sizeof *ev);
    if (!ev) return cv_errf(err, CV_ENOMEM, "out of memory");
    uint64_t seed;
    if (getrandom(&seed, sizeof seed, 0) != (ssize_t)sizeof seed)
        seed = (uint64_t)getpid() ^ (uint64_t)(uintptr_t)ev;
    cv_rng_seed(&ev->rng, seed);
    ev->log = log;
    *out = ev;
    return 0;
}

static void task_free(eval_task_t *e) {
    cJSON_free(e->t.spec_json);
    free(e);
}

void cv_evals_destroy(cv_evals_t *ev) {
    if (!ev) return;
    while (ev->tasks) {
        eval_task_t *next = ev->tasks->next;
        task_free(ev->tasks);
        ev->tasks = next;
    }
    free(ev);
}

int cv_evals_add(cv_evals_t *ev, cv_eval_task_t *task, char *err) {
    eval_task_t *e = calloc(1, sizeof *e), **end = &ev->tasks;
    if (!e) return cv_errf(err, CV_ENOMEM, "out of memory");
    e->t = *task;
    task->spec_json = NULL;
    while (*end)
        end = &(*end)->next;
    *end = e;
    return 0;
}

int cv_evals_pending(const cv_evals_t *ev, int64_t job_id) {
    for (const eval_task_t *e = ev->tasks; e; e = e->next)
        if (e->t.job_id == job_id) return e->t.k;
    return 0;
}

int cv_evals_busy(const cv_evals_t *ev, const cv_sched_worker_t *w) {
    for (const eval_task_t *e = ev->tasks; e; e = e->next)
        if (e->worker == w) return 1;
    return 0;
}

int cv_evals_assign(cv_evals_t *ev, cv_sched_worker_t *w, void *conn, const char *worker_id,
                    cv_eval_send_fn send) {
    eval_task_t *e = ev->tasks;
    while (e && e->worker)
        e = e->next;
    if (!e || !send) return 0;
    uint64_t a = cv_rng_next(&ev->rng), b = cv_rng_next(&ev->rng);
    snprintf(e->lease, sizeof e->lease, "%016llx%016llx", (unsigned long long)a,
             (unsigned long long)b);
    if (send(conn, e->t.job_id, e->lease, e->t.spec_json, e->t.files, e->t.n_files, e->t.models,
             e->t.n_models)) {
        e->lease[0] = '\0';
        return 0;
    }
    e->worker = w;
    e->attempts++;
    cv_log(ev->log, CV_LOG_INFO, "job %lld: test-set evaluation sent to worker %s (attempt %d)",
           (long long)e->t.job_id, worker_id, e->attempts);
    return 1;
}

/* Unlinks e from the queue and frees it. */
static void task_remove(cv_evals_t *ev, eval_task_t *e) {
    for (eval_task_t **p = &ev->tasks; *p; p = &(*p)->next)
        if (*p == e) {
            *p = e->next;
            break;
        }
    task_free(e);
}

/* Moves e to the front of the queue, waiting for a worker again. */
static void task_requeue(cv_evals_t *ev, eval_task_t *e) {
    for (eval_task_t **p = &ev->tasks; *p; p = &(*p)->next)
        if (*p == e) {
            *p = e->next;
            break;
        }
    e->worker = NULL;
    e->lease[0] = '\0';
    e->next = ev->tasks;
    ev->tasks = e;
}

char *cv_eval_result_json(const char *error, double accuracy, double cost, int64_t examples, int k,
                          const int64_t *trial_ids, size_t n) {
    cJSON *o = cJSON_CreateObject(), *ids = NULL;
    int ok = o != NULL;
    if (ok && error) {
        ok = cJSON_AddStringToObject(o, "error", error) != NULL;
    } else if (ok) {
        ok = cJSON_AddNumberToObject(o, "test_accuracy", accuracy) &&
             cJSON_AddNumberToObject(o, "test_error", 1 - accuracy) &&
             cJSON_AddNumberToObject(o, "test_cost", cost) &&
             cJSON_AddNumberToObject(o, "examples", (double)examples);
    }
    ok = ok && cJSON_AddNumberToObject(o, "ensemble", k) &&
         (ids = cJSON_AddArrayToObject(o, "trials")) != NULL;
    for (size_t i = 0; ok && i < n; i++) {
        cJSON *id = cJSON_CreateNumber((double)trial_ids[i]);
        ok = id && cJSON_AddItemToArray(ids, id);
        if (!ok) cJSON_Delete(id);
    }
    char *text = ok ? cJSON_PrintUnformatted(o) : NULL;
    cJSON_Delete(o);
    return text;
}

/* Stores e's outcome on its job (error NULL: the score) and frees e. */
static int task_store(cv_evals_t *ev, cv_sched_t *s, eval_task_t *e, const char *error,
                      const cv_msg_evaluation_t *a, char *err) {
    int64_t ids[CV_MSG_MODELS_MAX];
    for (size_t i = 0; i < e->t.n_models; i++)
        ids[i] = e->t.models[i].trial_id;
    char *text = cv_eval_result_json(error, a ? a->test_accuracy : 0, a ? a->test_cost : 0,
                                     a ? a->examples : 0, e->t.k, ids, e->t.n_models);
    int64_t job = e->t.job_id;
    task_remove(ev, e);
    int rc = text ? cv_sched_store_test_result(s, job, text, err)
                  : cv_errf(err, CV_ENOMEM, "out of memory");
    if (rc)
        cv_log(ev->log, CV_LOG_ERROR, "job %lld: cannot store the test result: %s", (long long)job,
               err);
    else
        cv_log(ev->log, CV_LOG_INFO, "job %lld test evaluation: %s", (long long)job, text);
    cJSON_free(text);
    return rc;
}

/* A worker's own failure or loss: another worker tries, or the failure is stored. */
static void task_retry(cv_evals_t *ev, cv_sched_t *s, eval_task_t *e, const char *why) {
    char err[CV_ERRLEN], error[CV_ERRLEN];
    if (e->attempts < CV_EVAL_ATTEMPTS) {
        task_requeue(ev, e);
        return;
    }
    snprintf(error, sizeof error, "the evaluation failed on %d workers; the last: %s", e->attempts,
             why);
    (void)task_store(ev, s, e, error, NULL, err);
}

void cv_evals_worker_left(cv_evals_t *ev, cv_sched_t *s, const cv_sched_worker_t *w) {
    for (eval_task_t *e = ev->tasks; e; e = e->next)
        if (e->worker == w) {
            cv_log(ev->log, CV_LOG_WARN,
                   "job %lld: the worker evaluating its test set left; "
                   "the evaluation goes to another worker",
                   (long long)e->t.job_id);
            task_retry(ev, s, e, "the worker left");
            return;
        }
}

int cv_evals_on_answer(cv_evals_t *ev, cv_sched_t *s, const cv_sched_worker_t *w,
                       const char *worker_id, const cv_msg_evaluation_t *a, char *err) {
    eval_task_t *e = ev->tasks;
    while (e && !(e->worker == w && e->t.job_id == a->job_id && !strcmp(e->lease, a->lease)))
        e = e->next;
    if (!e) {
        cv_errf(err, CV_STORE_STALE,
                "worker %s answered an evaluation of job %lld it does not "
                "hold under that lease; refused",
                worker_id, (long long)a->job_id);
        cv_log(ev->log, CV_LOG_WARN, "%s", err);
        return CV_STORE_STALE;
    }
    if (a->error && !a->job_fault) {
        cv_log(ev->log, CV_LOG_WARN, "job %lld: worker %s could not evaluate the test set: %s",
               (long long)a->job_id, worker_id, a->error);
        task_retry(ev, s, e, a->error);
        return 0;
    }
    cv_log(ev->log, CV_LOG_INFO, "job %lld: test set evaluated by worker %s", (long long)a->job_id,
           worker_id);
    return task_store(ev, s, e, a->error, a->error ? NULL : a, err);
}
