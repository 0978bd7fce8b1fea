/* Tasks for workers, test-set evaluations and importance; see evaluation.h. */
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

typedef enum { TASK_EVALUATE, TASK_IMPORTANCE } task_kind_t;

/* One task, waiting (worker NULL) or running on a worker. */
typedef struct eval_task {
    task_kind_t kind;
    cv_eval_task_t t;                 /* TASK_EVALUATE: spec_json owned */
    cv_importance_task_t imp;         /* TASK_IMPORTANCE: frame owned */
    const cv_sched_worker_t *worker;  /* the worker running it, NULL while it waits */
    char lease[CV_MSG_LEASE_HEX + 1]; /* the current lease, "" while it waits */
    int attempts;                     /* workers it was given to */
    struct eval_task *next;
} eval_task_t;

/* The importance reply kept for one job. */
typedef struct kept {
    int64_t job_id;
    size_t n;   /* completed trials it used */
    char *text; /* the API's reply (cJSON's allocator) */
    struct kept *next;
} kept_t;

struct cv_evals {
    const cv_log_t *log;
    cv_rng_t rng;       /* lease tokens */
    eval_task_t *tasks; /* waiting and running, in queue order (oldest first) */
    cv_importance_send_fn send_importance;
    kept_t *kept; /* importance replies, one per job */
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
    free(e->imp.frame);
    free(e);
}

static void task_remove(cv_evals_t *ev, eval_task_t *e);

/* The job's task (of the kind) waiting (running 0) or running (running 1), or NULL. */
static eval_task_t *task_find(const cv_evals_t *ev, task_kind_t kind, int64_t job_id, int running) {
    for (eval_task_t *e = ev->tasks; e; e = e->next)
        if (e->kind == kind && e->t.job_id == job_id && (e->worker != NULL) == running) return e;
    return NULL;
}

void cv_evals_destroy(cv_evals_t *ev) {
    if (!ev) return;
    while (ev->tasks) {
        eval_task_t *next = ev->tasks->next;
        task_free(ev->tasks);
        ev->tasks = next;
    }
    while (ev->kept) {
        kept_t *next = ev->kept->next;
        cJSON_free(ev->kept->text);
        free(ev->kept);
        ev->kept = next;
    }
    free(ev);
}

void cv_evals_set_importance_send(cv_evals_t *ev, cv_importance_send_fn send) {
    ev->send_importance = send;
}

/* Appends e to the queue. */
static void task_append(cv_evals_t *ev, eval_task_t *e) {
    eval_task_t **end = &ev->tasks;
    while (*end)
        end = &(*end)->next;
    *end = e;
}

int cv_evals_add(cv_evals_t *ev, cv_eval_task_t *task, char *err) {
    eval_task_t *e = calloc(1, sizeof *e);
    if (!e) return cv_errf(err, CV_ENOMEM, "out of memory");
    e->kind = TASK_EVALUATE;
    e->t = *task;
    task->spec_json = NULL;
    task_append(ev, e);
    return 0;
}

int cv_evals_add_importance(cv_evals_t *ev, cv_importance_task_t *task, char *err) {
    eval_task_t *running = task_find(ev, TASK_IMPORTANCE, task->job_id, 1);
    eval_task_t *waiting = task_find(ev, TASK_IMPORTANCE, task->job_id, 0);
    if ((running && running->imp.n == task->n) || (waiting && waiting->imp.n == task->n)) return 1;
    eval_task_t *e = waiting;
    if (e) { /* a newer count replaces the rows that still wait */
        free(e->imp.frame);
    } else if (!(e = calloc(1, sizeof *e))) {
        return cv_errf(err, CV_ENOMEM, "out of memory");
    }
    e->kind = TASK_IMPORTANCE;
    e->t.job_id = task->job_id;
    e->imp = *task;
    task->frame = NULL;
    if (!waiting) task_append(ev, e);
    return 0;
}

void cv_evals_forget_importance(cv_evals_t *ev, int64_t job_id) {
    for (kept_t **k = &ev->kept; *k; k = &(*k)->next)
        if ((*k)->job_id == job_id) {
            kept_t *gone = *k;
            *k = gone->next;
            cJSON_free(gone->text);
            free(gone);
            break;
        }
    eval_task_t *e = task_find(ev, TASK_IMPORTANCE, job_id, 0);
    if (e) task_remove(ev, e);
    if ((e = task_find(ev, TASK_IMPORTANCE, job_id, 1))) e->imp.n = 0; /* its answer is dropped */
}

const char *cv_evals_importance(const cv_evals_t *ev, int64_t job_id, size_t n) {
    for (const kept_t *k = ev->kept; k; k = k->next)
        if (k->job_id == job_id) return k->n == n ? k->text : NULL;
    return NULL;
}

int cv_evals_pending(const cv_evals_t *ev, int64_t job_id) {
    for (const eval_task_t *e = ev->tasks; e; e = e->next)
        if (e->kind == TASK_EVALUATE && e->t.job_id == job_id) return e->t.k;
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
    if (!e || !(e->kind == TASK_EVALUATE ? send != NULL : ev->send_importance != NULL)) return 0;
    int failed;
    if (e->kind == TASK_EVALUATE) {
        uint64_t a = cv_rng_next(&ev->rng), b = cv_rng_next(&ev->rng);
        snprintf(e->lease, sizeof e->lease, "%016llx%016llx", (unsigned long long)a,
                 (unsigned long long)b);
        failed = send(conn, e->t.job_id, e->lease, e->t.spec_json, e->t.files, e->t.n_files,
                      e->t.models, e->t.n_models);
    } else { /* the lease was drawn with the frame; an answer must also come from e->worker */
        memcpy(e->lease, e->imp.lease, sizeof e->lease);
        failed = ev->send_importance(conn, e->imp.frame, e->imp.frame_len);
    }
    if (failed && e->kind == TASK_IMPORTANCE) { /* too large to send, or no memory: drop it */
        cv_log(ev->log, CV_LOG_ERROR, "job %lld: cannot send its importance task; dropped",
               (long long)e->t.job_id);
        task_remove(ev, e);
        return 0;
    }
    if (failed) {
        e->lease[0] = '\0';
        return 0;
    }
    e->worker = w;
    e->attempts++;
    cv_log(ev->log, CV_LOG_INFO, "job %lld: %s sent to worker %s (attempt %d)",
           (long long)e->t.job_id,
           e->kind == TASK_EVALUATE ? "test-set evaluation" : "importance task", worker_id,
           e->attempts);
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
    if (e->kind == TASK_IMPORTANCE) {
        cv_log(ev->log, CV_LOG_ERROR,
               "job %lld: the importance task failed on %d workers; "
               "the last: %s",
               (long long)e->t.job_id, e->attempts, why);
        task_remove(ev, e);
        return;
    }
    snprintf(error, sizeof error, "the evaluation failed on %d workers; the last: %s", e->attempts,
             why);
    (void)task_store(ev, s, e, error, NULL, err);
}

void cv_evals_worker_left(cv_evals_t *ev, cv_sched_t *s, const cv_sched_worker_t *w) {
    for (eval_task_t *e = ev->tasks; e; e = e->next)
        if (e->worker == w) {
            cv_log(ev->log, CV_LOG_WARN, "job %lld: %s", (long long)e->t.job_id,
                   e->kind == TASK_EVALUATE ? "the worker evaluating its test set left; the "
                                              "evaluation goes to another worker"
                                            : "the worker computing its importance left; the "
                                              "task goes to another worker");
            task_retry(ev, s, e, "the worker left");
            return;
        }
}

int cv_evals_on_answer(cv_evals_t *ev, cv_sched_t *s, const cv_sched_worker_t *w,
                       const char *worker_id, const cv_msg_evaluation_t *a, char *err) {
    eval_task_t *e = ev->tasks;
    while (e && !(e->kind == TASK_EVALUATE && e->worker == w && e->t.job_id == a->job_id &&
                  !strcmp(e->lease, a->lease)))
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

/* ---- importance ------------------------------------------------------------------------- */

/* One parameter's figures, for sorting. */
typedef struct {
    size_t d;
    double importance, fraction;
} ranked_t;

static int by_importance(const void *a, const void *b) {
    const ranked_t *u = a, *v = b;
    if (u->importance != v->importance)
        return (u->importance < v->importance) - (u->importance > v->importance);
    return (u->d > v->d) - (u->d < v->d);
}

/* The API's reply for task m answered by a (JSON text, cJSON's allocator), or NULL when out of
 * memory: the shape of `caviar --json importance`, parameters by importance, plus computed_at. */
static char *importance_reply(const cv_importance_task_t *m, const cv_msg_importance_result_t *a,
                              double now) {
    ranked_t r[CV_MSG_IMP_DIMS_MAX];
    double explained = 0;
    for (size_t d = 0; d < m->p; d++) {
        r[d] = (ranked_t){d, a->importance[d], a->fraction[d]};
        explained += a->fraction[d];
    }
    qsort(r, m->p, sizeof *r, by_importance);
    cJSON *o = cJSON_CreateObject(), *params = NULL;
    int ok = o && cJSON_AddNumberToObject(o, "job", (double)m->job_id) &&
             cJSON_AddNumberToObject(o, "trials", (double)m->n) &&
             (params = cJSON_AddArrayToObject(o, "parameters")) != NULL;
    for (size_t i = 0; ok && i < m->p; i++) {
        cJSON *p = cJSON_CreateObject();
        ok = p && cJSON_AddItemToArray(params, p);
        if (!ok) cJSON_Delete(p);
        ok = ok && cJSON_AddStringToObject(p, "name", m->names[r[i].d]) &&
             cJSON_AddStringToObject(p, "scale", m->scales[r[i].d]) &&
             cJSON_AddNumberToObject(p, "importance", r[i].importance) &&
             cJSON_AddNumberToObject(p, "fraction", r[i].fraction);
    }
    ok = ok && cJSON_AddNumberToObject(o, "interactions", explained < 1 ? 1 - explained : 0) &&
         cJSON_AddNumberToObject(o, "computed_at", now);
    char *text = ok ? cJSON_PrintUnformatted(o) : NULL;
    cJSON_Delete(o);
    return text;
}

int cv_evals_on_importance(cv_evals_t *ev, const cv_sched_worker_t *w, const char *worker_id,
                           const cv_msg_importance_result_t *a, double now, char *err) {
    eval_task_t *e = ev->tasks;
    while (e && !(e->kind == TASK_IMPORTANCE && e->worker == w && e->t.job_id == a->job_id &&
                  !strcmp(e->lease, a->lease)))
        e = e->next;
    if (!e) {
        cv_errf(err, CV_STORE_STALE,
                "worker %s answered an importance task of job %lld it does not hold under that "
                "lease; refused",
                worker_id, (long long)a->job_id);
        cv_log(ev->log, CV_LOG_WARN, "%s", err);
        return CV_STORE_STALE;
    }
    if (a->error || a->p != e->imp.p) {
        const char *why = a->error ? a->error : "figures for another number of parameters";
        cv_log(ev->log, CV_LOG_WARN, "job %lld: worker %s could not compute the importance: %s",
               (long long)a->job_id, worker_id, why);
        task_retry(ev, NULL, e, why);
        return 0;
    }
    if (e->imp.n == 0) { /* the job was deleted meanwhile */
        task_remove(ev, e);
        return 0;
    }
    char *text = importance_reply(&e->imp, a, now);
    kept_t *k = ev->kept;
    while (k && k->job_id != a->job_id)
        k = k->next;
    if (!text || (!k && !(k = calloc(1, sizeof *k)))) {
        cJSON_free(text);
        task_retry(ev, NULL, e, "out of memory");
        return cv_errf(err, CV_ENOMEM, "out of memory keeping the importance of job %lld",
                       (long long)a->job_id);
    }
    if (k->text) {
        cJSON_free(k->text);
    } else {
        k->job_id = a->job_id;
        k->next = ev->kept;
        ev->kept = k;
    }
    k->text = text;
    k->n = e->imp.n;
    cv_log(ev->log, CV_LOG_INFO, "job %lld: importance over %zu trials computed by worker %s",
           (long long)a->job_id, e->imp.n, worker_id);
    task_remove(ev, e);
    return 0;
}
