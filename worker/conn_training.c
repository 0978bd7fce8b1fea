/* caviar-worker's training thread: a trial trains in one thread (cv_train_run), which puts each
 * epoch's metrics in a mutex-protected outbox, wakes the main loop through a pipe, waits for the
 * coordinator's decision at the trial's decide_at epochs, and polls the stop and prune flags
 * after every epoch. The main thread drains the outbox into progress messages and, when the
 * thread is done, turns its end into a result. */
#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/err.h"
#include "worker/connection_internal.h"

static void wake_main(int fd) {
    const char byte = 1;
    ssize_t n = write(fd, &byte, 1); /* a full pipe already holds a wake-up */
    (void)n;
}

/* Removes the run's model file, when it has one. */
static void drop_model(const run_t *r) {
    if (r->model_path[0]) unlink(r->model_path);
}

static int is_decision_epoch(const run_t *r, int epoch) {
    for (size_t i = 0; i < r->n_decide_at; i++)
        if (r->decide_at[i] == epoch) return 1;
    return 0;
}

/* Training thread: after epoch's progress went to the outbox, waits until a decision names
 * epoch (or a later one), a stop or prune is asked, the worker is not (or no longer) welcomed,
 * or decision_wait seconds have passed; the last two train on. */
static void await_decision(run_t *r, int epoch) {
    struct timespec deadline;
    clock_gettime(CLOCK_MONOTONIC, &deadline);
    double whole = floor(r->decision_wait);
    deadline.tv_sec += (time_t)whole;
    deadline.tv_nsec += (long)((r->decision_wait - whole) * 1e9);
    if (deadline.tv_nsec >= 1000000000L) {
        deadline.tv_sec++;
        deadline.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&r->lock);
    while (r->online && r->decided_epoch < epoch && !atomic_load(&r->stop) &&
           !atomic_load(&r->prune)) {
        if (pthread_cond_timedwait(&r->decided, &r->lock, &deadline) == ETIMEDOUT) {
            if (r->decided_epoch < epoch) r->unanswered_epoch = epoch;
            break;
        }
    }
    pthread_mutex_unlock(&r->lock);
}

/* Training thread: puts an epoch's metrics in the outbox and wakes the main thread. The outbox
 * grows as needed (the main thread may be behind, or the worker disconnected for a while); only
 * when it cannot is the epoch dropped, and counted. */
static void outbox_push(run_t *r, const cv_epoch_t *m) {
    pthread_mutex_lock(&r->lock);
    if (r->n_outbox == r->cap_outbox) {
        size_t cap = r->cap_outbox ? 2 * r->cap_outbox : 64;
        cv_epoch_t *grown = realloc(r->outbox, cap * sizeof *grown);
        if (grown) r->outbox = grown, r->cap_outbox = cap;
    }
    if (r->n_outbox < r->cap_outbox)
        r->outbox[r->n_outbox++] = *m;
    else
        r->outbox_lost++;
    pthread_mutex_unlock(&r->lock);
    wake_main(r->wake_fd);
}

/* Training thread: what the stop and prune flags ask of the trainer. */
static int epoch_verdict(run_t *r) {
    if (atomic_load(&r->stop)) return CV_EPOCH_STOP;
    return atomic_load(&r->prune) ? CV_EPOCH_PRUNE : CV_EPOCH_GO_ON;
}

static int on_epoch(const cv_epoch_t *m, void *userdata) {
    run_t *r = userdata;
    outbox_push(r, m);
    /* The trial's last epoch is decided by its end: no wait there or past it. */
    if (m->epoch < r->live_epochs && is_decision_epoch(r, (int)m->epoch))
        await_decision(r, (int)m->epoch);
    return epoch_verdict(r);
}

/* Training thread, before each epoch: applies the nudges waiting for this boundary. */
static int before_epoch(cv_trial_spec_t *live, int epoch, void *userdata) {
    run_t *r = userdata;
    int nudged = cv_conn_nudges_apply(r->nudges, r->trial_id, live, epoch);
    r->live_epochs = live->epochs;
    if (!nudged) return 0;
    wake_main(r->wake_fd); /* the main thread answers nudged */
    return 1;
}

/* Training thread, an external trainer's report: into the outbox like a built-in epoch. The
 * program runs at its own pace, so no decision is waited for: a prune arrives through the flag
 * and stops it. */
static int on_external_epoch(const cv_epoch_t *m, void *userdata) {
    run_t *r = userdata;
    outbox_push(r, m);
    return epoch_verdict(r);
}

/* Training thread, while an external program runs: the stop and prune flags. */
static int poll_flags(void *userdata) {
    return epoch_verdict(userdata);
}

static void *train_main(void *arg) {
    run_t *r = arg;
    if (r->trainer) {
        cv_external_options_t ext = {.command = r->trainer->command,
                                     .runs_dir = r->runs_dir,
                                     .grace = r->grace,
                                     .timeout = r->timeout,
                                     .by_dev_cost = r->by_dev_cost,
                                     .trial_id = r->trial_id,
                                     .job_id = r->job_id,
                                     .on_epoch = on_external_epoch,
                                     .poll = poll_flags,
                                     .userdata = r};
        r->rc = cv_external_run(r->ext_spec, &ext, &r->res, r->err);
        pthread_mutex_lock(&r->lock);
        r->done = 1;
        pthread_mutex_unlock(&r->lock);
        wake_main(r->wake_fd);
        return NULL;
    }
    cv_train_options_t opts = {.on_epoch = on_epoch,
                               .before_epoch = before_epoch,
                               .userdata = r,
                               .save_model = r->model_path};
    r->rc = cv_train_run(&r->spec, &opts, &r->res, r->err);
    if (r->rc == 0 && cv_conn_model_digest(r->model_path, &r->model_bytes, &r->model_crc32) != 0)
        r->model_bytes = 0;
    pthread_mutex_lock(&r->lock);
    r->done = 1;
    pthread_mutex_unlock(&r->lock);
    wake_main(r->wake_fd);
    return NULL;
}

/* Main thread: tells the training thread whether decisions can reach it (online: welcomed). */
void cv_conn_train_set_online(run_t *r, int online) {
    pthread_mutex_lock(&r->lock);
    r->online = online;
    pthread_cond_broadcast(&r->decided);
    pthread_mutex_unlock(&r->lock);
}

/* Creates r's mutex and condition variable (on the monotonic clock). Returns 0 or -1. */
static int run_sync_init(run_t *r) {
    pthread_condattr_t attr;
    if (pthread_condattr_init(&attr) != 0) return -1;
    int ok = pthread_condattr_setclock(&attr, CLOCK_MONOTONIC) == 0 &&
             pthread_cond_init(&r->decided, &attr) == 0;
    pthread_condattr_destroy(&attr);
    if (!ok) return -1;
    if (pthread_mutex_init(&r->lock, NULL) != 0) {
        pthread_cond_destroy(&r->decided);
        return -1;
    }
    return 0;
}

static void run_sync_finish(run_t *r) {
    pthread_cond_destroy(&r->decided);
    pthread_mutex_destroy(&r->lock);
}

/* Starts the prepared trial in a training thread. Signals stay with the main thread. A thread
 * that cannot start fails the trial. Consumes w->prep. */
void cv_conn_train_start(worker_t *w) {
    char reason[CV_ERRLEN];
    prep_t *p = &w->prep;
    if (w->opt->fail_trials) { /* the test hook of a broken worker (connection.h) */
        snprintf(reason, sizeof reason, "CAVIAR_WORKER_FAIL_TRIALS is set: failing on purpose");
        LOG(w, CV_LOG_WARN, "trial %lld: %s", (long long)p->trial_id, reason);
        cv_conn_add_failure(w, p->trial_id, p->lease, CV_TRIAL_FAILED, reason, 0, FAULT_WORKER);
        cv_conn_prep_clear(w);
        return;
    }
    run_t *r = calloc(1, sizeof *r);
    if (r == NULL) {
        snprintf(reason, sizeof reason, "out of memory starting the trial");
        goto failed;
    }
    r->trial_id = p->trial_id;
    memcpy(r->lease, p->lease, sizeof r->lease);
    r->spec = p->parsed;
    r->wake_fd = w->wake[1];
    r->nudges = &w->nudges;
    atomic_init(&r->stop, 0);
    atomic_init(&r->prune, 0);
    memcpy(r->decide_at, p->decide_at, sizeof r->decide_at);
    r->n_decide_at = p->n_decide_at;
    r->decision_wait = w->opt->decision_wait > 0 ? w->opt->decision_wait : CV_DECISION_WAIT;
    r->online = w->welcomed;
    r->job_id = p->job_id;
    if (p->trainer) { /* an external program: no model file; it gets the trial text */
        r->trainer = p->trainer;
        r->ext_spec = p->spec;
        p->spec = NULL;
        r->runs_dir = w->opt->runs_dir;
        r->grace = w->opt->trainer_grace > 0 ? w->opt->trainer_grace : CV_TRAINER_GRACE_DEFAULT;
        r->timeout = w->opt->trainer_timeout;
        r->by_dev_cost = p->by_dev_cost;
    } else {
        snprintf(r->model_path, sizeof r->model_path, "%s/caviar-model-%lld-XXXXXX",
                 w->opt->tmp_dir, (long long)r->trial_id);
        int fd = mkstemp(r->model_path);
        if (fd < 0) {
            snprintf(reason, sizeof reason, "cannot create a model file in %s: %s",
                     w->opt->tmp_dir, strerror(errno));
            goto failed;
        }
        close(fd);
    }
    if (run_sync_init(r) != 0) {
        drop_model(r);
        snprintf(reason, sizeof reason, "cannot create a mutex or condition variable");
        goto failed;
    }
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, &old);
    int rc = pthread_create(&r->thread, NULL, train_main, r);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (rc != 0) {
        run_sync_finish(r);
        drop_model(r);
        snprintf(reason, sizeof reason, "cannot start a training thread: %s", strerror(rc));
        goto failed;
    }
    if (r->trainer)
        LOG(w, CV_LOG_INFO, "trial %lld: running trainer %s", (long long)r->trial_id,
            r->trainer->name);
    else
        LOG(w, CV_LOG_INFO, "trial %lld: training", (long long)r->trial_id);
    w->run = r;
    cv_conn_prep_clear(w);
    return;
failed:
    if (r) cJSON_Delete(r->ext_spec);
    free(r);
    cv_conn_add_failure(w, p->trial_id, p->lease, CV_TRIAL_FAILED, reason, 0, FAULT_WORKER);
    cv_conn_prep_clear(w);
}

/* Drains the training thread's outbox: progress messages while the trial is wanted and the
 * connection welcomed, and at its end the result (or nothing, for a discarded trial). Then
 * starts a prepared trial that was waiting for the thread. */
int cv_conn_train_service(worker_t *w) {
    run_t *r = w->run;
    if (r) {
        /* The epochs go while the connection is welcomed; until then they wait (a coordinator
         * restart: the lease is re-attached and the curve goes on with no gap), unless the
         * trial is discarded. */
        cv_epoch_t *batch = NULL;
        size_t n = 0, lost;
        pthread_mutex_lock(&r->lock);
        if (w->welcomed || r->discard) {
            batch = r->outbox, n = r->n_outbox;
            r->outbox = NULL, r->n_outbox = r->cap_outbox = 0;
        }
        lost = r->outbox_lost;
        r->outbox_lost = 0;
        int done = r->done, unanswered = r->unanswered_epoch, waiting = r->n_outbox > 0;
        pthread_mutex_unlock(&r->lock);
        if (lost)
            LOG(w, CV_LOG_ERROR, "trial %lld: %zu epochs of its curve dropped: out of memory",
                (long long)r->trial_id, lost);
        if (unanswered > r->unanswered_logged) {
            LOG(w, CV_LOG_WARN, "trial %lld: no decision on epoch %d within %g s; training on",
                (long long)r->trial_id, unanswered, r->decision_wait);
            r->unanswered_logged = unanswered;
        }
        for (size_t i = 0; i < n && !r->discard && w->welcomed; i++) {
            char err[CV_ERRLEN];
            int rc =
                cv_conn_send_msg(w, cv_msg_progress(r->trial_id, r->lease, &batch[i], err), err);
            if (rc) {
                free(batch);
                return rc;
            }
        }
        free(batch);
        int rc = cv_conn_nudges_answer(w, r);
        if (rc) return rc;
        if (!done || waiting) return 0; /* the result goes after the curve */
        pthread_join(r->thread, NULL);
        run_sync_finish(r);
        w->run = NULL;
        if (r->discard || r->res.status == CV_TRIAL_STOPPED) {
            LOG(w, CV_LOG_INFO, "trial %lld: stopped after %d epochs", (long long)r->trial_id,
                r->res.epochs_run);
            drop_model(r);
        } else {
            LOG(w, CV_LOG_INFO, "trial %lld: %s after %d epochs", (long long)r->trial_id,
                cv_trial_status_name(r->res.status), r->res.epochs_run);
            if (r->model_bytes == 0) drop_model(r);
            if (r->rc != 0 || r->res.status == CV_TRIAL_FAILED)
                cv_conn_add_failure(w, r->trial_id, r->lease, CV_TRIAL_FAILED,
                                    r->res.error[0] ? r->res.error : r->err, r->res.seconds,
                                    r->res.job_fault ? FAULT_JOB : FAULT_WORKER);
            else
                cv_conn_add_result(w, r->trial_id, r->lease, &r->res,
                                   r->model_bytes > 0 ? r->model_path : "", r->model_bytes,
                                   r->model_crc32);
        }
        cJSON_Delete(r->ext_spec);
        free(r->outbox);
        free(r);
    }
    if (w->run == NULL && w->prep.active && w->prep.ready) cv_conn_train_start(w);
    return 0;
}

/* Asks the running thread to stop at its next epoch end (at once when it waits for a decision);
 * nothing more is sent for it. */
void cv_conn_train_discard(worker_t *w) {
    run_t *r = w->run;
    if (r == NULL || r->discard) return;
    r->discard = 1;
    pthread_mutex_lock(&r->lock);
    atomic_store(&r->stop, 1);
    pthread_cond_broadcast(&r->decided);
    pthread_mutex_unlock(&r->lock);
}

/* The pruner's verdict at epoch: stop prunes the trial (at once when the thread waits at that
 * epoch, else at its next epoch end); either way a wait for that epoch ends. */
void cv_conn_train_decide(run_t *r, int epoch, int stop) {
    pthread_mutex_lock(&r->lock);
    if (epoch > r->decided_epoch) r->decided_epoch = epoch;
    if (stop) atomic_store(&r->prune, 1);
    pthread_cond_broadcast(&r->decided);
    pthread_mutex_unlock(&r->lock);
}

void cv_conn_train_shutdown(worker_t *w) {
    if (w->run == NULL) return;
    cv_conn_train_discard(w);
    pthread_join(w->run->thread, NULL);
    run_sync_finish(w->run);
    drop_model(w->run);
    cJSON_Delete(w->run->ext_spec);
    free(w->run->outbox);
    free(w->run);
    w->run = NULL;
}
