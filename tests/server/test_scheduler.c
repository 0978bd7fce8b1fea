/* Unit tests of server/scheduler: the scheduler is driven through its public cv_sched_* calls
 * with a fake transport (cv_sched_ops_t that records what the scheduler asks to send: no sockets,
 * no loop) over a real SQLite store in a fresh mkdtemp directory. Each test follows one rule of
 * scheduler.h (leases, stale results, quarantine, the budget, recovery after a restart) and
 * checks what the workers were sent and what the store holds, the rows read back with raw SQLite
 * queries independent of the store's API. */
#include <check.h>
#include <dirent.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sqlite3.h>
#include <uv.h>

#include "common/err.h"
#include "server/scheduler.h"
#include "server/store.h"
#include "testutil.h"

#ifndef CV_SOURCE_ROOT
#define CV_SOURCE_ROOT "."
#endif

/* ---- The fake transport: every message the scheduler asks to send, in order ---------------- */

typedef enum { EV_TRIAL, EV_ACK, EV_STOP, EV_DECISION } ev_kind_t;

typedef struct recorder recorder_t;

/* A worker's connection as the transport knows it: the scheduler's conn handle. */
typedef struct {
    recorder_t *rec;
    const char *name; /* for messages */
} fake_conn_t;

typedef struct {
    ev_kind_t kind;
    const fake_conn_t *conn;
    int64_t trial_id;
    int64_t job_id;  /* EV_TRIAL */
    char lease[33];  /* EV_TRIAL */
    int stored;      /* EV_ACK: 1 stored, 0 refused */
    int epoch, stop; /* EV_DECISION */
    int epochs;      /* EV_TRIAL: the spec's epochs */
    size_t n_decide_at;
    int decide_at[CV_MSG_DECIDE_MAX]; /* EV_TRIAL */
} event_t;

#define MAX_EVENTS 256

struct recorder {
    event_t ev[MAX_EVENTS];
    size_t n;
};

static event_t *record(void *conn, ev_kind_t kind, int64_t trial_id) {
    fake_conn_t *c = conn;
    ck_assert_uint_lt(c->rec->n, MAX_EVENTS);
    event_t *e = &c->rec->ev[c->rec->n++];
    memset(e, 0, sizeof *e);
    e->kind = kind, e->conn = c, e->trial_id = trial_id;
    return e;
}

static int fake_send_trial(void *conn, const cv_msg_trial_t *trial) {
    event_t *e = record(conn, EV_TRIAL, trial->trial_id);
    e->job_id = trial->job_id;
    ck_assert_uint_eq(strlen(trial->lease), 32);
    memcpy(e->lease, trial->lease, 33);
    e->epochs = (int)cJSON_GetNumberValue(cJSON_GetObjectItem(trial->spec, "epochs"));
    e->n_decide_at = trial->n_decide_at;
    memcpy(e->decide_at, trial->decide_at, sizeof e->decide_at);
    /* What the worker needs to train it: the composed spec and the job's checked files. */
    ck_assert(cJSON_IsObject(trial->spec));
    ck_assert(cJSON_IsNumber(cJSON_GetObjectItem(trial->spec, "learning_rate")));
    ck_assert_uint_ge(trial->n_files, 1);
    for (size_t i = 0; i < trial->n_files; i++)
        ck_assert_uint_eq(strlen(trial->files[i].hash), 64);
    return 0;
}

static int fake_send_ack(void *conn, int64_t trial_id, int stored) {
    record(conn, EV_ACK, trial_id)->stored = stored;
    return 0;
}

static int fake_send_stop(void *conn, int64_t trial_id) {
    record(conn, EV_STOP, trial_id);
    return 0;
}

static int fake_send_decision(void *conn, int64_t trial_id, int epoch, int stop) {
    event_t *e = record(conn, EV_DECISION, trial_id);
    e->epoch = epoch, e->stop = stop;
    return 0;
}

/* How many messages of kind went to conn (NULL: to anyone). */
static size_t count(const recorder_t *rec, ev_kind_t kind, const fake_conn_t *conn) {
    size_t n = 0;
    for (size_t i = 0; i < rec->n; i++)
        n += rec->ev[i].kind == kind && (!conn || rec->ev[i].conn == conn);
    return n;
}

/* The last message of kind to conn; fails the test when there is none. */
static const event_t *last(const recorder_t *rec, ev_kind_t kind, const fake_conn_t *conn) {
    for (size_t i = rec->n; i-- > 0;)
        if (rec->ev[i].kind == kind && rec->ev[i].conn == conn) return &rec->ev[i];
    ck_abort_msg("no message of kind %d to %s", (int)kind, conn->name);
    return NULL;
}

/* How many trials were sent with this id, to anyone. */
static size_t sent_trial(const recorder_t *rec, int64_t trial_id) {
    size_t n = 0;
    for (size_t i = 0; i < rec->n; i++)
        n += rec->ev[i].kind == EV_TRIAL && rec->ev[i].trial_id == trial_id;
    return n;
}

/* ---- Fixture: a store in a temporary directory and a scheduler over it -------------------- */

typedef struct {
    char dir[CV_TEST_PATH];
    char path[CV_TEST_PATH + 16]; /* dir/caviar.db */
    cv_store_t *store;
    cv_sched_t *sched;
    cv_sched_config_t cfg;
    recorder_t rec;
    fake_conn_t a, b, c, d; /* connections of workers (a second connection reuses one) */
    double now;             /* wall-clock seconds handed to the scheduler */
    char err[CV_ERRLEN];
} fx_t;

/* Defaults of the tests: 3 attempts, no re-attachment grace, quarantine after 3 failures in a
 * row until released; no loop (dataset checks run at once); change fx->cfg before fx_start. */
static void fx_init(fx_t *fx) {
    memset(fx, 0, sizeof *fx);
    const char *tmp = getenv("TMPDIR");
    snprintf(fx->dir, sizeof fx->dir, "%s/caviar-sched-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    ck_assert_msg(mkdtemp(fx->dir) != NULL, "mkdtemp %s", fx->dir);
    snprintf(fx->path, sizeof fx->path, "%s/caviar.db", fx->dir);
    ck_assert_msg(cv_store_open(fx->path, &fx->store, fx->err) == 0, "%s", fx->err);
    fx->cfg = (cv_sched_config_t){
        .store = fx->store,
        .data_dir = fx->dir,
        .max_attempts = 3,
        .reattach_seconds = 0,
        .quarantine_after = 3,
        .ops = {fake_send_trial, fake_send_ack, fake_send_stop, fake_send_decision},
    };
    fx->a = (fake_conn_t){&fx->rec, "a"};
    fx->b = (fake_conn_t){&fx->rec, "b"};
    fx->c = (fake_conn_t){&fx->rec, "c"};
    fx->d = (fake_conn_t){&fx->rec, "d"};
    fx->now = 1000;
}

static void fx_start(fx_t *fx) {
    ck_assert_msg(cv_sched_create(&fx->sched, &fx->cfg, fx->now, fx->err) == 0, "%s", fx->err);
}

/* A coordinator restart: the scheduler goes (what it committed stays) and a new one resumes
 * from the same store. */
static void fx_restart(fx_t *fx) {
    ck_assert_int_eq(cv_sched_flush(fx->sched, fx->now), 0);
    cv_sched_destroy(fx->sched);
    fx->sched = NULL;
    fx_start(fx);
}

/* Removes a directory and every file in it, recursively. */
static void remove_tree(const char *dir) {
    DIR *d = opendir(dir);
    ck_assert_ptr_nonnull(d);
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) continue;
        char p[CV_TEST_PATH * 2];
        snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
        if (unlink(p) != 0) remove_tree(p);
    }
    closedir(d);
    ck_assert_int_eq(rmdir(dir), 0);
}

static void fx_finish(fx_t *fx) {
    ck_assert(cv_sched_idle(fx->sched));
    cv_sched_destroy(fx->sched);
    cv_store_close(fx->store);
    remove_tree(fx->dir);
}

/* The spec of a job over the moons CSV: trials of 4 epochs searching the learning rate,
 * max_trials in one round, extra (may be "") appended to the spec's top-level members. */
static void moons_job(char *text, size_t cap, int max_trials, int max_parallel,
                      const char *extra) {
    int n = snprintf(text, cap,
                     "{\"name\": \"unit\", \"trial\": {\"dataset\": {\"format\": \"csv\", "
                     "\"csv\": \"%s/examples/data/moons.csv\", \"header\": true, "
                     "\"label_column\": \"label\", \"classes\": 2}, \"epochs\": 4}, \"space\": "
                     "{\"learning_rate\": {\"type\": \"float\", \"scale\": \"log\", \"min\": "
                     "0.001, \"max\": 0.1}}, \"budget\": {\"max_trials\": %d, \"max_parallel\": "
                     "%d}, \"refine\": {\"rounds\": [%d]}, \"seed\": 7%s}",
                     CV_SOURCE_ROOT, max_trials, max_parallel, max_trials, extra);
    ck_assert(n > 0 && (size_t)n < cap);
}

/* Submits moons_job(max_trials, max_parallel, extra); returns its id. */
static int64_t submit(fx_t *fx, int max_trials, int max_parallel, const char *extra) {
    char text[2048];
    moons_job(text, sizeof text, max_trials, max_parallel, extra);
    int64_t job_id = 0;
    ck_assert_msg(cv_sched_submit(fx->sched, text, strlen(text), fx->now, &job_id, fx->err) == 0,
                  "%s", fx->err);
    ck_assert_int_gt(job_id, 0);
    return job_id;
}

/* Worker worker_id says hello on conn, claiming the lease of claim_trial (0: claims nothing).
 * Returns its slot; *n_reattached gets how many claims were granted. */
static cv_sched_worker_t *join_claiming(fx_t *fx, fake_conn_t *conn, const char *worker_id,
                                        int64_t claim_trial, const char *claim_lease,
                                        int *n_reattached) {
    int64_t trials[1] = {claim_trial}, reattached[1] = {0};
    char leases[1][33] = {""};
    if (claim_lease) snprintf(leases[0], sizeof leases[0], "%s", claim_lease);
    cv_sched_worker_t *w = cv_sched_worker_join(
        fx->sched, conn, worker_id, "test", 1, "localhost", trials, (const char(*)[33])leases,
        claim_trial ? 1 : 0, reattached, n_reattached, fx->now);
    ck_assert_ptr_nonnull(w);
    if (*n_reattached) ck_assert_int_eq(reattached[0], claim_trial);
    return w;
}

static cv_sched_worker_t *join(fx_t *fx, fake_conn_t *conn, const char *worker_id) {
    int n = -1;
    cv_sched_worker_t *w = join_claiming(fx, conn, worker_id, 0, NULL, &n);
    ck_assert_int_eq(n, 0);
    return w;
}

/* Worker worker_id joins on conn and the scheduler dispatches: it must get exactly one trial,
 * whose message is copied into *got. */
static cv_sched_worker_t *join_and_lease(fx_t *fx, fake_conn_t *conn, const char *worker_id,
                                         event_t *got) {
    cv_sched_worker_t *w = join(fx, conn, worker_id);
    size_t before = count(&fx->rec, EV_TRIAL, conn);
    cv_sched_dispatch(fx->sched, fx->now);
    ck_assert_uint_eq(count(&fx->rec, EV_TRIAL, conn), before + 1);
    *got = *last(&fx->rec, EV_TRIAL, conn);
    return w;
}

/* A member of obj as a number, NAN when it is absent. */
static double number_in(const cJSON *obj, const char *name) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, name);
    return cJSON_IsNumber(v) ? v->valuedouble : NAN;
}

/* Sends worker w's result for trial_id under lease: the result object given as JSON text, the
 * numbers it leaves out not a number and the integers 0. */
static int result(fx_t *fx, cv_sched_worker_t *w, int64_t trial_id, const char *lease,
                  const char *json) {
    static const char *const statuses[] = {"completed", "diverged", "failed", "stopped", "pruned"};
    cJSON *o = cJSON_Parse(json);
    ck_assert_ptr_nonnull(o);
    const char *status = cJSON_GetStringValue(cJSON_GetObjectItem(o, "status"));
    const char *error = cJSON_GetStringValue(cJSON_GetObjectItem(o, "error"));
    const char *fault = cJSON_GetStringValue(cJSON_GetObjectItem(o, "fault"));
    cJSON *diagnosis = cJSON_GetObjectItem(o, "diagnosis");
    cv_trial_result_t r = {.best = {.train_cost = number_in(o, "train_cost"),
                                    .train_cost_reg = number_in(o, "train_cost_reg"),
                                    .dev_cost = number_in(o, "dev_cost"),
                                    .train_error = number_in(o, "train_error"),
                                    .dev_error = number_in(o, "dev_error")},
                           .examples_per_second = number_in(o, "examples_per_second"),
                           .job_fault = fault && !strcmp(fault, "job")};
    for (size_t i = 0; status && i < sizeof statuses / sizeof *statuses; i++)
        if (!strcmp(status, statuses[i])) r.status = (cv_trial_status_t)i;
    if (isfinite(number_in(o, "best_epoch"))) r.best_epoch = (int)number_in(o, "best_epoch");
    if (isfinite(number_in(o, "epochs_run"))) r.epochs_run = (int)number_in(o, "epochs_run");
    if (isfinite(number_in(o, "n_params"))) r.n_params = (size_t)number_in(o, "n_params");
    if (error) snprintf(r.error, sizeof r.error, "%s", error);
    for (int k = CV_DIAG_FINE; k <= CV_DIAG_COLLAPSED; k++) {
        const char *name = cJSON_GetStringValue(cJSON_GetObjectItem(diagnosis, "name"));
        if (name && !strcmp(name, cv_diagnosis_name((cv_diagnosis_kind_t)k)))
            r.diagnosis.kind = (cv_diagnosis_kind_t)k, r.diagnosis.name = name;
    }
    int rc = cv_sched_on_result(fx->sched, w, trial_id, lease, &r, NULL, fx->now, fx->err);
    cJSON_Delete(o);
    return rc;
}

/* Sends worker w's progress for trial_id under lease: one epoch given as JSON text, the metrics
 * it leaves out not a number. */
static int progress(fx_t *fx, cv_sched_worker_t *w, int64_t trial_id, const char *lease,
                    const char *json) {
    cJSON *e = cJSON_Parse(json);
    ck_assert_ptr_nonnull(e);
    cv_epoch_t m = {.epoch = (int64_t)number_in(e, "epoch"),
                    .train_cost = number_in(e, "train_cost"),
                    .train_cost_reg = number_in(e, "train_cost_reg"),
                    .dev_cost = number_in(e, "dev_cost"),
                    .train_error = number_in(e, "train_error"),
                    .dev_error = number_in(e, "dev_error"),
                    .learning_rate = number_in(e, "learning_rate"),
                    .seconds = number_in(e, "seconds"),
                    .examples_per_second = number_in(e, "examples_per_second")};
    cJSON_Delete(e);
    return cv_sched_on_progress(fx->sched, w, trial_id, lease, &m, fx->err);
}

#define COMPLETED(dev_error)                                                                       \
    "{\"status\": \"completed\", \"dev_error\": " #dev_error ", \"dev_cost\": 0.5, "               \
    "\"epochs_run\": 4, \"best_epoch\": 4}"

/* ---- Raw SQLite access, independent of the store ------------------------------------------ */

static sqlite3_stmt *raw_query(sqlite3 **db, const char *path, const char *sql) {
    sqlite3_stmt *q = NULL;
    ck_assert_int_eq(sqlite3_open_v2(path, db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    ck_assert_msg(sqlite3_prepare_v2(*db, sql, -1, &q, NULL) == SQLITE_OK, "%s: %s", sql,
                  sqlite3_errmsg(*db));
    ck_assert_int_eq(sqlite3_step(q), SQLITE_ROW);
    return q;
}

static void raw_sql(char *sql, size_t cap, const char *fmt, va_list ap) {
    int n = vsnprintf(sql, cap, fmt, ap);
    ck_assert(n > 0 && (size_t)n < cap);
}

/* One integer of the query fmt, ... (NULL reads as -1). */
static int64_t raw_int(const fx_t *fx, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int64_t raw_int(const fx_t *fx, const char *fmt, ...) {
    char sql[512];
    va_list ap;
    va_start(ap, fmt);
    raw_sql(sql, sizeof sql, fmt, ap);
    va_end(ap);
    sqlite3 *db = NULL;
    sqlite3_stmt *q = raw_query(&db, fx->path, sql);
    int64_t v = sqlite3_column_type(q, 0) == SQLITE_NULL ? -1 : sqlite3_column_int64(q, 0);
    sqlite3_finalize(q);
    sqlite3_close(db);
    return v;
}

/* One text of the query fmt, ... into out (NULL reads as "NULL"). */
static void raw_text(const fx_t *fx, char *out, size_t cap, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void raw_text(const fx_t *fx, char *out, size_t cap, const char *fmt, ...) {
    char sql[512];
    va_list ap;
    va_start(ap, fmt);
    raw_sql(sql, sizeof sql, fmt, ap);
    va_end(ap);
    sqlite3 *db = NULL;
    sqlite3_stmt *q = raw_query(&db, fx->path, sql);
    const char *t = (const char *)sqlite3_column_text(q, 0);
    snprintf(out, cap, "%s", t ? t : "NULL");
    sqlite3_finalize(q);
    sqlite3_close(db);
}

/* Runs sql on the store's file over a write connection of its own. */
static void raw_exec(const fx_t *fx, const char *sql) {
    sqlite3 *db = NULL;
    ck_assert_int_eq(sqlite3_open_v2(fx->path, &db, SQLITE_OPEN_READWRITE, NULL), SQLITE_OK);
    ck_assert_msg(sqlite3_exec(db, sql, NULL, NULL, NULL) == SQLITE_OK, "%s: %s", sql,
                  sqlite3_errmsg(db));
    sqlite3_close(db);
}

static void assert_trial_status(const fx_t *fx, int64_t trial_id, const char *want) {
    char got[64];
    raw_text(fx, got, sizeof got, "SELECT status FROM trials WHERE id = %lld", (long long)trial_id);
    ck_assert_str_eq(got, want);
}

static void assert_job_status(const fx_t *fx, int64_t job_id, const char *want) {
    char got[64];
    raw_text(fx, got, sizeof got, "SELECT status FROM jobs WHERE id = %lld", (long long)job_id);
    ck_assert_str_eq(got, want);
}

static void assert_attempt_outcome(const fx_t *fx, int64_t trial_id, int attempt,
                                   const char *want) {
    char got[64];
    raw_text(fx, got, sizeof got,
             "SELECT outcome FROM trial_attempts WHERE trial_id = %lld AND attempt = %d",
             (long long)trial_id, attempt);
    ck_assert_str_eq(got, want);
}

/* The attempt ended interrupted, for the reason why. */
static void assert_attempt_interrupted(const fx_t *fx, int64_t trial_id, int attempt,
                                       const char *why) {
    assert_attempt_outcome(fx, trial_id, attempt, "interrupted");
    char got[256];
    raw_text(fx, got, sizeof got,
             "SELECT error FROM trial_attempts WHERE trial_id = %lld AND attempt = %d",
             (long long)trial_id, attempt);
    ck_assert_str_eq(got, why);
}

/* ---- Leases ---------------------------------------------------------------------------------- */

/* A worker that leaves while running a trial loses the lease: the trial goes back to the queue,
 * the next worker gets it under a new token, and the old token claimed again in a hello is
 * refused (its attempt row becomes stale). */
START_TEST(test_lost_lease_requeues_the_trial_under_a_new_token) {
    fx_t fx;
    fx_init(&fx);
    fx_start(&fx);
    submit(&fx, 1, 1, "");
    cv_sched_worker_t *a = join(&fx, &fx.a, "worker-a");
    cv_sched_dispatch(fx.sched, fx.now);
    ck_assert_uint_eq(count(&fx.rec, EV_TRIAL, NULL), 1);
    event_t first = *last(&fx.rec, EV_TRIAL, &fx.a);
    ck_assert(cv_sched_holds_lease(fx.sched, a, first.trial_id, first.lease));

    fx.now += 1;
    cv_sched_worker_leave(fx.sched, a, fx.now);
    ck_assert_int_eq(cv_sched_flush(fx.sched, fx.now), 0);
    assert_trial_status(&fx, first.trial_id, "queued");
    assert_attempt_outcome(&fx, first.trial_id, 1, "lost");

    cv_sched_worker_t *b = join(&fx, &fx.b, "worker-b");
    cv_sched_dispatch(fx.sched, fx.now);
    ck_assert_uint_eq(count(&fx.rec, EV_TRIAL, &fx.b), 1);
    const event_t *second = last(&fx.rec, EV_TRIAL, &fx.b);
    ck_assert_int_eq(second->trial_id, first.trial_id);
    ck_assert_str_ne(second->lease, first.lease);
    ck_assert(cv_sched_holds_lease(fx.sched, b, first.trial_id, second->lease));
    ck_assert(!cv_sched_holds_lease(fx.sched, b, first.trial_id, first.lease));

    /* worker-a reconnects claiming its old lease: refused, and it gets nothing else (the
     * budget of one trial is spent). */
    int n = -1;
    join_claiming(&fx, &fx.c, "worker-a", first.trial_id, first.lease, &n);
    ck_assert_int_eq(n, 0);
    cv_sched_dispatch(fx.sched, fx.now);
    ck_assert_uint_eq(count(&fx.rec, EV_TRIAL, &fx.c), 0);
    ck_assert_int_eq(cv_sched_flush(fx.sched, fx.now), 0);
    assert_attempt_outcome(&fx, first.trial_id, 1, "stale");
    assert_trial_status(&fx, first.trial_id, "running");
    ck_assert_int_eq(
        raw_int(&fx, "SELECT attempts FROM trials WHERE id = %lld", (long long)first.trial_id), 2);
    char token[64];
    raw_text(&fx, token, sizeof token, "SELECT lease_token FROM trials WHERE id = %lld",
             (long long)first.trial_id);
    ck_assert_str_eq(token, second->lease);
    fx_finish(&fx);
}
END_TEST

/* A trial that lost max_attempts leases is retired as failed, and a job whose only trial failed
 * fails with that trial's reason. */
START_TEST(test_trial_fails_after_losing_max_attempts_leases) {
    fx_t fx;
    fx_init(&fx);
    fx.cfg.max_attempts = 2;
    fx_start(&fx);
    int64_t job = submit(&fx, 1, 1, "");
    fake_conn_t *conns[2] = {&fx.a, &fx.b};
    int64_t trial = 0;
    for (int i = 0; i < 2; i++) {
        cv_sched_worker_t *w = join(&fx, conns[i], i ? "worker-b" : "worker-a");
        cv_sched_dispatch(fx.sched, fx.now);
        trial = last(&fx.rec, EV_TRIAL, conns[i])->trial_id;
        fx.now += 1;
        cv_sched_worker_leave(fx.sched, w, fx.now);
    }
    ck_assert_int_eq(cv_sched_flush(fx.sched, fx.now), 0);
    ck_assert_uint_eq(count(&fx.rec, EV_TRIAL, NULL), 2);
    assert_trial_status(&fx, trial, "failed");
    char text[512], want[512];
    raw_text(&fx, text, sizeof text, "SELECT error FROM trials WHERE id = %lld", (long long)trial);
    ck_assert_str_eq(text, "lost 2 leases");
    assert_job_status(&fx, job, "failed");
    raw_text(&fx, text, sizeof text, "SELECT error FROM jobs WHERE id = %lld", (long long)job);
    snprintf(want, sizeof want,
             "no trial completed (1 failed, 0 diverged); the first: trial %lld failed: lost 2 "
             "leases",
             (long long)trial);
    ck_assert_str_eq(text, want);
    fx_finish(&fx);
}
END_TEST

/* ---- Stale results --------------------------------------------------------------------------- */

/* A result (or progress) under a lease that is no longer current is refused at once, stores
 * nothing, and leaves the trial to its current holder, whose result is acknowledged only after
 * the commit. */
START_TEST(test_result_under_a_stale_lease_stores_nothing) {
    fx_t fx;
    fx_init(&fx);
    fx_start(&fx);
    int64_t job = submit(&fx, 1, 1, "");
    event_t old;
    cv_sched_worker_t *a = join_and_lease(&fx, &fx.a, "worker-a", &old);
    cv_sched_worker_leave(fx.sched, a, fx.now);
    event_t cur;
    cv_sched_worker_t *b = join_and_lease(&fx, &fx.b, "worker-b", &cur);
    ck_assert_int_eq(cur.trial_id, old.trial_id);
    ck_assert_int_eq(cv_sched_flush(fx.sched, fx.now), 0);

    cv_sched_worker_t *a2 = join(&fx, &fx.c, "worker-a");
    ck_assert_int_eq(
        progress(&fx, a2, old.trial_id, old.lease, "{\"epoch\": 1, \"dev_error\": 0.1}"),
        CV_STORE_STALE);
    ck_assert_int_eq(result(&fx, a2, old.trial_id, old.lease, COMPLETED(0.1)), 0);
    ck_assert_uint_eq(count(&fx.rec, EV_ACK, &fx.c), 1); /* at once, not after a commit */
    ck_assert_int_eq(last(&fx.rec, EV_ACK, &fx.c)->stored, 0);
    ck_assert_uint_eq(cv_sched_pending(fx.sched), 0);
    ck_assert_int_eq(cv_sched_flush(fx.sched, fx.now), 0);
    assert_trial_status(&fx, old.trial_id, "running");
    ck_assert_int_eq(
        raw_int(&fx, "SELECT dev_error FROM trials WHERE id = %lld", (long long)old.trial_id), -1);
    ck_assert_int_eq(
        raw_int(&fx, "SELECT count(*) FROM curves WHERE trial_id = %lld", (long long)old.trial_id),
        0);
    assert_attempt_outcome(&fx, old.trial_id, 1, "stale");
    ck_assert(cv_sched_holds_lease(fx.sched, b, cur.trial_id, cur.lease));

    ck_assert_int_eq(result(&fx, b, cur.trial_id, cur.lease, COMPLETED(0.25)), 0);
    ck_assert_uint_eq(count(&fx.rec, EV_ACK, &fx.b), 0); /* waits for the commit */
    ck_assert_uint_eq(cv_sched_pending(fx.sched), 1);
    ck_assert_int_eq(cv_sched_flush(fx.sched, fx.now), 0);
    ck_assert_uint_eq(count(&fx.rec, EV_ACK, &fx.b), 1);
    ck_assert_int_eq(last(&fx.rec, EV_ACK, &fx.b)->stored, 1);
    assert_trial_status(&fx, cur.trial_id, "completed");
    ck_assert_int_eq(
        raw_int(&fx, "SELECT dev_error * 100 FROM trials WHERE id = %lld", (long long)cur.trial_id),
        25);
    assert_attempt_outcome(&fx, cur.trial_id, 2, "completed");
    assert_job_status(&fx, job, "completed");
    fx_finish(&fx);
}
END_TEST

/* With a store that defers its syncs (caviard's default), a result is acknowledged only once
 * the sync the flush started on the loop's thread pool has ended: the flush commits and sends
 * nothing, the loop's run sends the acknowledgement, and the scheduler is not idle (may not be
 * destroyed) while the sync is in flight. */
START_TEST(test_deferred_sync_acknowledges_once_the_sync_ends) {
    fx_t fx;
    fx_init(&fx);
    cv_store_close(fx.store);
    cv_store_options_t opt = {.deferred_sync = 1};
    ck_assert_msg(cv_store_open_with(fx.path, &opt, &fx.store, fx.err) == 0, "%s", fx.err);
    uv_loop_t loop;
    ck_assert_int_eq(uv_loop_init(&loop), 0);
    fx.cfg.store = fx.store;
    fx.cfg.loop = &loop;
    fx.cfg.deferred_sync = 1;
    fx_start(&fx);
    submit(&fx, 4, 1, "");
    event_t got;
    cv_sched_worker_t *w = join_and_lease(&fx, &fx.a, "wa", &got);
    ck_assert_int_eq(result(&fx, w, got.trial_id, got.lease, COMPLETED(0.2)), 0);
    ck_assert_int_eq(cv_sched_flush(fx.sched, fx.now), 0);
    ck_assert_uint_eq(count(&fx.rec, EV_ACK, &fx.a), 0);
    ck_assert_int_eq(raw_int(&fx, "SELECT count(*) FROM trials WHERE status = 'completed'"),
                     1); /* committed: readers see it */
    ck_assert(!cv_sched_idle(fx.sched));
    ck_assert_int_eq(uv_run(&loop, UV_RUN_DEFAULT), 0);
    ck_assert_uint_eq(count(&fx.rec, EV_ACK, &fx.a), 1);
    ck_assert_int_eq(last(&fx.rec, EV_ACK, &fx.a)->stored, 1);
    ck_assert(cv_sched_idle(fx.sched));
    fx_finish(&fx);
    ck_assert_int_eq(uv_loop_close(&loop), 0);
}
END_TEST

/* A worker that is stopping gives its trial back with a `stopped` result: the trial goes back to
 * the front of the queue, the attempt ends interrupted (it uses none of the trial's attempts),
 * the result is acknowledged after the commit, and that worker gets no more trials. */
START_TEST(test_stopped_result_gives_the_trial_back) {
    fx_t fx;
    fx_init(&fx);
    fx.cfg.max_attempts = 1;
    fx_start(&fx);
    submit(&fx, 2, 2, "");
    event_t t;
    cv_sched_worker_t *a = join_and_lease(&fx, &fx.a, "worker-a", &t);
    ck_assert_int_eq(result(&fx, a, t.trial_id, t.lease, "{\"status\": \"stopped\"}"), 0);
    ck_assert_uint_eq(count(&fx.rec, EV_ACK, &fx.a), 0);
    ck_assert_int_eq(cv_sched_flush(fx.sched, fx.now), 0);
    ck_assert_int_eq(last(&fx.rec, EV_ACK, &fx.a)->stored, 1);
    assert_trial_status(&fx, t.trial_id, "queued");
    assert_attempt_interrupted(&fx, t.trial_id, 1, "the worker was stopped before the trial ended");
    cv_sched_dispatch(fx.sched, fx.now);
    ck_assert_uint_eq(count(&fx.rec, EV_TRIAL, &fx.a), 1); /* it is leaving */

    /* With max_attempts 1 a counted attempt would have retired the trial: it runs again. */
    event_t again;
    cv_sched_worker_t *b = join_and_lease(&fx, &fx.b, "worker-b", &again);
    ck_assert_int_eq(again.trial_id, t.trial_id);
    ck_assert_str_ne(again.lease, t.lease);
    cv_sched_worker_leave(fx.sched, b, fx.now);
    ck_assert_int_eq(cv_sched_flush(fx.sched, fx.now), 0);
    assert_trial_status(&fx, t.trial_id, "failed"); /* this lost lease was its one attempt */
    fx_finish(&fx);
}
END_TEST

/* Cancelling a job stops its running trials on their workers and cancels every trial that is
 * not final; a result that arrives afterwards is refused as stale, also once the ended job left
 * memory, and a result for a trial that does not exist is a protocol violation (CV_EINVAL). */
START_TEST(test_cancel_stops_running_trials) {
    fx_t fx;
    fx_init(&fx);
    fx_start(&fx);
    int64_t job = submit(&fx, 3, 1, "");
    event_t t;
    cv_sched_worker_t *a = join_and_lease(&fx, &fx.a, "worker-a", &t);
    int64_t cancelled = -1;
    ck_assert_int_eq(cv_sched_cancel(fx.sched, job, fx.now, &cancelled, fx.err), 0);
    ck_assert_int_eq(cancelled, 1);
    ck_assert_uint_eq(count(&fx.rec, EV_STOP, &fx.a), 1);
    ck_assert_int_eq(last(&fx.rec, EV_STOP, &fx.a)->trial_id, t.trial_id);
    assert_job_status(&fx, job, "cancelled");
    assert_trial_status(&fx, t.trial_id, "cancelled");
    assert_attempt_outcome(&fx, t.trial_id, 1, "cancelled");
    ck_assert_int_eq(cv_sched_cancel(fx.sched, job, fx.now, &cancelled, fx.err), CV_STORE_STALE);

    ck_assert_int_eq(result(&fx, a, t.trial_id, t.lease, COMPLETED(0.1)), 0);
    ck_assert_int_eq(last(&fx.rec, EV_ACK, &fx.a)->stored, 0);
    ck_assert_int_eq(cv_sched_flush(fx.sched, fx.now), 0);
    assert_trial_status(&fx, t.trial_id, "cancelled");
    /* The flush unloaded the ended job: a late result is refused from what the store says. */
    ck_assert_int_eq(result(&fx, a, t.trial_id, t.lease, COMPLETED(0.1)), 0);
    ck_assert_uint_eq(count(&fx.rec, EV_ACK, &fx.a), 2);
    ck_assert_int_eq(last(&fx.rec, EV_ACK, &fx.a)->stored, 0);
    ck_assert_int_eq(result(&fx, a, t.trial_id + 100, t.lease, COMPLETED(0.1)), CV_EINVAL);
    cv_sched_dispatch(fx.sched, fx.now);
    ck_assert_uint_eq(count(&fx.rec, EV_TRIAL, NULL), 1);
    fx_finish(&fx);
}
END_TEST

/* ---- Quarantine ------------------------------------------------------------------------------ */

/* quarantine_after failed results in a row quarantine the worker until released: it gets no
 * trial, the trials of its streak go back to the queue (the oldest first in line) for another
 * worker, and once released it gets trials again. */
START_TEST(test_failures_in_a_row_quarantine_the_worker) {
    fx_t fx;
    fx_init(&fx);
    fx.cfg.quarantine_after = 2;
    fx_start(&fx);
    int64_t job = submit(&fx, 4, 2, "");
    cv_sched_worker_t *w = join(&fx, &fx.a, "worker-w");
    int64_t failed[2];
    for (int i = 0; i < 2; i++) {
        cv_sched_dispatch(fx.sched, fx.now);
        ck_assert_uint_eq(count(&fx.rec, EV_TRIAL, &fx.a), (size_t)i + 1);
        const event_t *t = last(&fx.rec, EV_TRIAL, &fx.a);
        failed[i] = t->trial_id;
        ck_assert_int_eq(result(&fx, w, t->trial_id, t->lease,
                                "{\"status\": \"failed\", \"error\": \"device lost\"}"),
                         0);
        ck_assert_int_eq(cv_sched_flush(fx.sched, fx.now), 0);
        ck_assert_int_eq(last(&fx.rec, EV_ACK, &fx.a)->stored, 1);
        fx.now += 1;
    }
    ck_assert_int_eq(raw_int(&fx, "SELECT quarantined FROM workers WHERE id = 'worker-w'"), 1);
    char reason[512], want[512];
    raw_text(&fx, reason, sizeof reason,
             "SELECT quarantine_reason FROM workers WHERE id = 'worker-w'");
    snprintf(want, sizeof want,
             "2 failed trials in a row; the last: trial %lld of job %lld: device lost",
             (long long)failed[1], (long long)job);
    ck_assert_str_eq(reason, want);
    cv_sched_worker_view_t view[4];
    ck_assert_uint_eq(cv_sched_workers_view(fx.sched, view, 4), 1);
    ck_assert_int_eq(view[0].quarantined, 1);

    cv_sched_dispatch(fx.sched, fx.now);
    ck_assert_uint_eq(count(&fx.rec, EV_TRIAL, &fx.a), 2); /* nothing more for it */
    assert_trial_status(&fx, failed[0], "queued");
    assert_trial_status(&fx, failed[1], "queued");

    cv_sched_worker_t *v = join(&fx, &fx.b, "worker-v");
    cv_sched_dispatch(fx.sched, fx.now);
    ck_assert_uint_eq(count(&fx.rec, EV_TRIAL, &fx.b), 1);
    ck_assert_int_eq(last(&fx.rec, EV_TRIAL, &fx.b)->trial_id, failed[0]);
    ck_assert_uint_eq(count(&fx.rec, EV_TRIAL, &fx.a), 2);
    (void)v;

    int was = -1;
    ck_assert_int_eq(cv_sched_worker_release(fx.sched, "worker-w", fx.now, &was, fx.err), 0);
    ck_assert_int_eq(was, 1);
    cv_sched_dispatch(fx.sched, fx.now);
    ck_assert_uint_eq(count(&fx.rec, EV_TRIAL, &fx.a), 3);
    ck_assert_int_eq(last(&fx.rec, EV_TRIAL, &fx.a)->trial_id, failed[1]);
    ck_assert_int_eq(raw_int(&fx, "SELECT quarantined FROM workers WHERE id = 'worker-w'"), 0);
    fx_finish(&fx);
}
END_TEST

/* A quarantine for quarantine_seconds ends when its time is up, not a second before. */
START_TEST(test_quarantine_ends_when_its_time_is_up) {
    fx_t fx;
    fx_init(&fx);
    fx.cfg.quarantine_after = 1;
    fx.cfg.quarantine_seconds = 60;
    fx_start(&fx);
    submit(&fx, 3, 1, "");
    event_t lease;
    cv_sched_worker_t *w = join_and_lease(&fx, &fx.a, "worker-w", &lease);
    const event_t *t = &lease;
    ck_assert_int_eq(result(&fx, w, t->trial_id, t->lease, "{\"status\": \"failed\"}"), 0);
    ck_assert_int_eq(cv_sched_flush(fx.sched, fx.now), 0);
    double quarantined_at = fx.now;
    cv_sched_dispatch(fx.sched, quarantined_at + 59.5);
    ck_assert_uint_eq(count(&fx.rec, EV_TRIAL, &fx.a), 1);
    cv_sched_dispatch(fx.sched, quarantined_at + 60);
    ck_assert_uint_eq(count(&fx.rec, EV_TRIAL, &fx.a), 2);
    fx_finish(&fx);
}
END_TEST

/* A failure the worker reports as the job's own (its data, its spec) fails the job and does
 * not count against the worker. */
START_TEST(test_a_jobs_own_failure_fails_the_job_not_the_worker) {
    fx_t fx;
    fx_init(&fx);
    fx.cfg.quarantine_after = 1;
    fx_start(&fx);
    int64_t job = submit(&fx, 3, 1, "");
    event_t lease;
    cv_sched_worker_t *w = join_and_lease(&fx, &fx.a, "worker-w", &lease);
    const event_t *t = &lease;
    ck_assert_int_eq(result(&fx, w, t->trial_id, t->lease,
                            "{\"status\": \"failed\", \"fault\": \"job\", \"error\": \"bad csv\"}"),
                     0);
    ck_assert_int_eq(cv_sched_flush(fx.sched, fx.now), 0);
    char text[512], want[512];
    assert_job_status(&fx, job, "failed");
    raw_text(&fx, text, sizeof text, "SELECT error FROM jobs WHERE id = %lld", (long long)job);
    snprintf(want, sizeof want, "trial %lld failed: bad csv", (long long)t->trial_id);
    ck_assert_str_eq(text, want);
    ck_assert_int_eq(raw_int(&fx, "SELECT quarantined FROM workers WHERE id = 'worker-w'"), 0);
    ck_assert_int_eq(raw_int(&fx, "SELECT consecutive_failures FROM workers WHERE id = 'worker-w'"),
                     0);
    fx_finish(&fx);
}
END_TEST

/* ---- Budget ---------------------------------------------------------------------------------- */

/* max_trials bounds the trials ever proposed, whatever the number of idle workers; the job
 * completes when the last of them is final. */
START_TEST(test_max_trials_bounds_the_trials_proposed) {
    fx_t fx;
    fx_init(&fx);
    fx_start(&fx);
    int64_t job = submit(&fx, 3, 4, "");
    fake_conn_t *conns[4] = {&fx.a, &fx.b, &fx.c, &fx.d};
    const char *ids[4] = {"w0", "w1", "w2", "w3"};
    cv_sched_worker_t *w[4];
    for (int i = 0; i < 4; i++)
        w[i] = join(&fx, conns[i], ids[i]);
    cv_sched_dispatch(fx.sched, fx.now);
    ck_assert_uint_eq(count(&fx.rec, EV_TRIAL, NULL), 3);
    ck_assert_int_eq(cv_sched_running(fx.sched, job), 3);
    ck_assert_int_eq(cv_sched_busy(fx.sched), 3);
    ck_assert_int_eq(cv_sched_flush(fx.sched, fx.now), 0);
    ck_assert_int_eq(
        raw_int(&fx, "SELECT count(*) FROM trials WHERE job_id = %lld", (long long)job), 3);
    int finished = 0;
    for (int i = 0; i < 4; i++) {
        if (!count(&fx.rec, EV_TRIAL, conns[i])) continue;
        const event_t *t = last(&fx.rec, EV_TRIAL, conns[i]);
        ck_assert_uint_eq(sent_trial(&fx.rec, t->trial_id), 1); /* three distinct trials */
        assert_job_status(&fx, job, "running");
        ck_assert_int_eq(result(&fx, w[i], t->trial_id, t->lease, COMPLETED(0.3)), 0);
        ck_assert_int_eq(cv_sched_flush(fx.sched, fx.now), 0);
        cv_sched_dispatch(fx.sched, fx.now);
        finished++;
    }
    ck_assert_int_eq(finished, 3);
    ck_assert_uint_eq(count(&fx.rec, EV_TRIAL, NULL), 3);
    ck_assert_int_eq(
        raw_int(&fx, "SELECT count(*) FROM trials WHERE job_id = %lld", (long long)job), 3);
    assert_job_status(&fx, job, "completed");
    ck_assert_int_ne(raw_int(&fx, "SELECT finished_at FROM jobs WHERE id = %lld", (long long)job),
                     -1);
    ck_assert_int_eq(cv_sched_running(fx.sched, job), 0);
    ck_assert_int_eq(cv_sched_busy(fx.sched), 0);
    fx_finish(&fx);
}
END_TEST

/* ---- Recovery after a restart ---------------------------------------------------------------- */

/* A trial running across a restart keeps its lease: its worker re-attaches in its hello and its
 * result is stored as usual, under the same attempt. A finished trial is not run again, and the
 * job's budget counts the trials it had before the restart. */
START_TEST(test_restart_reattaches_running_trials_and_skips_finished_ones) {
    fx_t fx;
    fx_init(&fx);
    fx.cfg.reattach_seconds = 30;
    fx_start(&fx);
    int64_t job = submit(&fx, 3, 2, "");
    cv_sched_worker_t *a = join(&fx, &fx.a, "worker-a");
    join(&fx, &fx.b, "worker-b");
    cv_sched_dispatch(fx.sched, fx.now);
    event_t ta = *last(&fx.rec, EV_TRIAL, &fx.a), tb = *last(&fx.rec, EV_TRIAL, &fx.b);
    ck_assert_int_eq(result(&fx, a, ta.trial_id, ta.lease, COMPLETED(0.2)), 0);
    fx.now += 5;
    fx_restart(&fx);
    assert_trial_status(&fx, ta.trial_id, "completed");
    assert_trial_status(&fx, tb.trial_id, "running");
    ck_assert_int_eq(cv_sched_running(fx.sched, job), 1);

    int n = -1;
    cv_sched_worker_t *b2 = join_claiming(&fx, &fx.c, "worker-b", tb.trial_id, tb.lease, &n);
    ck_assert_int_eq(n, 1);
    ck_assert(cv_sched_holds_lease(fx.sched, b2, tb.trial_id, tb.lease));
    cv_sched_worker_t *d = join(&fx, &fx.d, "worker-d");
    cv_sched_dispatch(fx.sched, fx.now);
    ck_assert_uint_eq(count(&fx.rec, EV_TRIAL, &fx.d), 1);
    event_t td = *last(&fx.rec, EV_TRIAL, &fx.d);
    int64_t third = 0;
    ck_assert_int_eq(cv_store_trial_id(fx.store, job, 2, &third, fx.err), 0);
    ck_assert_int_eq(td.trial_id, third);
    ck_assert_uint_eq(sent_trial(&fx.rec, ta.trial_id), 1);
    ck_assert_uint_eq(count(&fx.rec, EV_TRIAL, &fx.c), 0); /* it runs its trial still */

    ck_assert_int_eq(result(&fx, b2, tb.trial_id, tb.lease, COMPLETED(0.4)), 0);
    ck_assert_int_eq(result(&fx, d, td.trial_id, td.lease, COMPLETED(0.3)), 0);
    ck_assert_int_eq(cv_sched_flush(fx.sched, fx.now), 0);
    ck_assert_int_eq(last(&fx.rec, EV_ACK, &fx.c)->stored, 1);
    assert_trial_status(&fx, tb.trial_id, "completed");
    ck_assert_int_eq(
        raw_int(&fx, "SELECT attempts FROM trials WHERE id = %lld", (long long)tb.trial_id), 1);
    ck_assert_int_eq(raw_int(&fx, "SELECT count(*) FROM trial_attempts WHERE trial_id = %lld",
                             (long long)tb.trial_id),
                     1);
    assert_attempt_outcome(&fx, tb.trial_id, 1, "completed");
    ck_assert_int_eq(
        raw_int(&fx, "SELECT count(*) FROM trials WHERE job_id = %lld", (long long)job), 3);
    assert_job_status(&fx, job, "completed");
    fx_finish(&fx);
}
END_TEST

/* A trial nobody re-attaches to within reattach_seconds goes back to the front of the queue
 * (interrupted, which uses none of its attempts); its old lease is refused afterwards. */
START_TEST(test_restart_requeues_a_trial_nobody_reattaches_to) {
    fx_t fx;
    fx_init(&fx);
    fx.cfg.reattach_seconds = 30;
    fx.cfg.max_attempts = 2;
    fx_start(&fx);
    submit(&fx, 1, 1, "");
    event_t old;
    join_and_lease(&fx, &fx.a, "worker-a", &old);
    fx.now += 10;
    fx_restart(&fx);
    double started = fx.now;

    cv_sched_tick(fx.sched, started + 29);
    ck_assert_int_eq(cv_sched_flush(fx.sched, fx.now), 0);
    assert_trial_status(&fx, old.trial_id, "running");
    cv_sched_tick(fx.sched, started + 30);
    ck_assert_int_eq(cv_sched_flush(fx.sched, fx.now), 0);
    assert_trial_status(&fx, old.trial_id, "queued");
    assert_attempt_interrupted(&fx, old.trial_id, 1, "the coordinator restarted");

    fx.now = started + 31;
    cv_sched_worker_t *c = join(&fx, &fx.c, "worker-c");
    cv_sched_dispatch(fx.sched, fx.now);
    const event_t *again = last(&fx.rec, EV_TRIAL, &fx.c);
    ck_assert_int_eq(again->trial_id, old.trial_id);
    ck_assert_str_ne(again->lease, old.lease);
    int n = -1;
    join_claiming(&fx, &fx.b, "worker-a", old.trial_id, old.lease, &n);
    ck_assert_int_eq(n, 0);

    /* The interrupted attempt does not count: losing this lease leaves 1 of 2 used. */
    cv_sched_worker_leave(fx.sched, c, fx.now);
    ck_assert_int_eq(cv_sched_flush(fx.sched, fx.now), 0);
    assert_trial_status(&fx, old.trial_id, "queued");
    fx_finish(&fx);
}
END_TEST

/* Without a grace (reattach_seconds 0) the trials that were running are queued again as the
 * scheduler starts, their attempts interrupted. */
START_TEST(test_restart_without_grace_requeues_at_once) {
    fx_t fx;
    fx_init(&fx);
    fx_start(&fx);
    int64_t job = submit(&fx, 1, 1, "");
    event_t old;
    join_and_lease(&fx, &fx.a, "worker-a", &old);
    ck_assert_int_eq(cv_sched_running(fx.sched, job), 1);
    fx_restart(&fx);
    assert_trial_status(&fx, old.trial_id, "queued");
    assert_attempt_outcome(&fx, old.trial_id, 1, "interrupted");
    ck_assert_int_eq(cv_sched_running(fx.sched, job), 0);
    join(&fx, &fx.b, "worker-b");
    cv_sched_dispatch(fx.sched, fx.now);
    ck_assert_int_eq(last(&fx.rec, EV_TRIAL, &fx.b)->trial_id, old.trial_id);
    fx_finish(&fx);
}
END_TEST

#define ASHA ", \"search\": {\"pruner\": \"asha\", \"asha\": {\"min_epochs\": 1, \"eta\": 2}}"

/* The pruner's decisions are stored and replayed after a restart: a decision is never made (or
 * stored) twice, a stop that may not have reached its worker is sent again when it re-attaches,
 * and later decisions rank against the results judged before the restart. With eta 2 a trial
 * goes on at a rung when its rank among the k results there is at most ceil(k / 2). */
START_TEST(test_restart_does_not_make_asha_decisions_twice) {
    fx_t fx;
    fx_init(&fx);
    fx.cfg.reattach_seconds = 30;
    fx_start(&fx);
    int64_t job = submit(&fx, 3, 3, ASHA);
    cv_sched_worker_t *a = join(&fx, &fx.a, "worker-a");
    cv_sched_worker_t *b = join(&fx, &fx.b, "worker-b");
    cv_sched_dispatch(fx.sched, fx.now);
    event_t ta = *last(&fx.rec, EV_TRIAL, &fx.a), tb = *last(&fx.rec, EV_TRIAL, &fx.b);
    ck_assert_int_eq(progress(&fx, a, ta.trial_id, ta.lease, "{\"epoch\": 1, \"dev_error\": 0.2}"),
                     0);
    ck_assert_int_eq(progress(&fx, b, tb.trial_id, tb.lease, "{\"epoch\": 1, \"dev_error\": 0.5}"),
                     0);
    ck_assert_uint_eq(count(&fx.rec, EV_DECISION, NULL), 0); /* sent after the commit */
    ck_assert_int_eq(cv_sched_flush(fx.sched, fx.now), 0);
    const event_t *da = last(&fx.rec, EV_DECISION, &fx.a), *db = last(&fx.rec, EV_DECISION, &fx.b);
    ck_assert_int_eq(da->trial_id, ta.trial_id);
    ck_assert_int_eq(da->epoch, 1);
    ck_assert_int_eq(da->stop, 0); /* rank 1 of 1 */
    ck_assert_int_eq(db->trial_id, tb.trial_id);
    ck_assert_int_eq(db->epoch, 1);
    ck_assert_int_eq(db->stop, 1); /* rank 2 of 2 > ceil(2 / 2) */
    ck_assert_int_eq(
        raw_int(&fx, "SELECT count(*) FROM decisions WHERE job_id = %lld", (long long)job), 2);

    fx.now += 5;
    fx_restart(&fx);
    int n = -1;
    cv_sched_worker_t *a2 = join_claiming(&fx, &fx.c, "worker-a", ta.trial_id, ta.lease, &n);
    ck_assert_int_eq(n, 1);
    join_claiming(&fx, &fx.d, "worker-b", tb.trial_id, tb.lease, &n);
    ck_assert_int_eq(n, 1);
    ck_assert_int_eq(cv_sched_flush(fx.sched, fx.now), 0);
    ck_assert_uint_eq(count(&fx.rec, EV_DECISION, &fx.d), 1); /* the stop, sent again */
    db = last(&fx.rec, EV_DECISION, &fx.d);
    ck_assert_int_eq(db->trial_id, tb.trial_id);
    ck_assert_int_eq(db->epoch, 1);
    ck_assert_int_eq(db->stop, 1);
    ck_assert_uint_eq(count(&fx.rec, EV_DECISION, &fx.c), 0);

    /* worker-a sends its epoch 1 again: the decision made before the restart is repeated, not
     * made (and stored) a second time. */
    ck_assert_int_eq(progress(&fx, a2, ta.trial_id, ta.lease, "{\"epoch\": 1, \"dev_error\": 0.2}"),
                     0);
    ck_assert_int_eq(cv_sched_flush(fx.sched, fx.now), 0);
    da = last(&fx.rec, EV_DECISION, &fx.c);
    ck_assert_int_eq(da->trial_id, ta.trial_id);
    ck_assert_int_eq(da->stop, 0);
    ck_assert_int_eq(
        raw_int(&fx, "SELECT count(*) FROM decisions WHERE job_id = %lld", (long long)job), 2);

    /* A new trial at rung 1 ranks against the two results judged before the restart: 0.6 is
     * third of three, beyond ceil(3 / 2) = 2, so it stops (alone at the rung it would go on). */
    event_t te;
    cv_sched_worker_t *e = join_and_lease(&fx, &fx.a, "worker-e", &te);
    ck_assert_int_ne(te.trial_id, ta.trial_id);
    ck_assert_int_ne(te.trial_id, tb.trial_id);
    ck_assert_int_eq(progress(&fx, e, te.trial_id, te.lease, "{\"epoch\": 1, \"dev_error\": 0.6}"),
                     0);
    ck_assert_int_eq(cv_sched_flush(fx.sched, fx.now), 0);
    const event_t *de = last(&fx.rec, EV_DECISION, &fx.a);
    ck_assert_int_eq(de->trial_id, te.trial_id);
    ck_assert_int_eq(de->stop, 1);
    ck_assert_int_eq(
        raw_int(&fx, "SELECT count(*) FROM decisions WHERE job_id = %lld", (long long)job), 3);
    fx_finish(&fx);
}
END_TEST


/* A trial gets every rung of its job: one nudged to more epochs than it started with is judged
 * at the rungs it now reaches. Epochs are searched over 2, 4 and 8, so the rungs are 2 and 4. */
START_TEST(test_a_trial_nudged_to_more_epochs_is_judged_at_the_rungs_it_now_reaches) {
    fx_t fx;
    fx_init(&fx);
    fx_start(&fx);
    char text[2048];
    snprintf(text, sizeof text,
             "{\"trial\": {\"dataset\": {\"format\": \"csv\", \"csv\": "
             "\"%s/examples/data/moons.csv\", \"header\": true, \"label_column\": \"label\", "
             "\"classes\": 2}}, \"space\": {\"epochs\": {\"type\": \"int\", \"scale\": "
             "\"power_of_two\", \"min\": 2, \"max\": 8}, \"learning_rate\": {\"type\": "
             "\"float\", \"scale\": \"log\", \"min\": 0.001, \"max\": 0.1}}, \"budget\": "
             "{\"max_trials\": 4, \"max_parallel\": 4}, \"refine\": {\"rounds\": [4]}, "
             "\"search\": {\"pruner\": \"asha\", \"asha\": {\"min_epochs\": 2, \"eta\": 2}}, "
             "\"seed\": 7}",
             CV_SOURCE_ROOT);
    int64_t job = 0;
    ck_assert_msg(cv_sched_submit(fx.sched, text, strlen(text), fx.now, &job, fx.err) == 0, "%s",
                  fx.err);
    fake_conn_t *conns[4] = {&fx.a, &fx.b, &fx.c, &fx.d};
    cv_sched_worker_t *ws[4];
    for (int i = 0; i < 4; i++) ws[i] = join(&fx, conns[i], conns[i]->name);
    cv_sched_dispatch(fx.sched, fx.now);
    int pick = -1;
    event_t t[4];
    for (int i = 0; i < 4; i++) {
        t[i] = *last(&fx.rec, EV_TRIAL, conns[i]);
        ck_assert_uint_eq(t[i].n_decide_at, 2); /* every rung, whatever the trial's epochs */
        ck_assert_int_eq(t[i].decide_at[0], 2);
        ck_assert_int_eq(t[i].decide_at[1], 4);
        if (t[i].epochs == 2) pick = i;
    }
    ck_assert_msg(pick >= 0, "no trial of 2 epochs among the 4 sampled with seed 7");
    cJSON *values = cJSON_Parse("{\"epochs\": 8}");
    int64_t seq = 0;
    ck_assert_msg(cv_sched_nudge(fx.sched, t[pick].trial_id, values, fx.now, &seq, fx.err) == 0,
                  "%s", fx.err);
    cJSON_Delete(values);
    cv_sched_worker_t *w = ws[pick];
    ck_assert_int_eq(progress(&fx, w, t[pick].trial_id, t[pick].lease,
                              "{\"epoch\": 2, \"dev_error\": 0.3}"), 0);
    ck_assert_int_eq(progress(&fx, w, t[pick].trial_id, t[pick].lease,
                              "{\"epoch\": 4, \"dev_error\": 0.2}"), 0);
    ck_assert_int_eq(cv_sched_flush(fx.sched, fx.now), 0);
    const event_t *d = last(&fx.rec, EV_DECISION, conns[pick]);
    ck_assert_int_eq(d->trial_id, t[pick].trial_id);
    ck_assert_int_eq(d->epoch, 4);
    ck_assert_int_eq(d->stop, 0); /* alone at the rung */
    fx_finish(&fx);
}
END_TEST

/* ---- ask/tell ------------------------------------------------------------------------- */

/* Answers the scheduler gave an ask client: counted, with the last one's flags. */
typedef struct {
    int calls, committed, stop;
} answers_t;

static void on_answer(void *ctx, int committed, int stop) {
    answers_t *a = ctx;
    a->calls++;
    a->committed = committed, a->stop = stop;
}

/* Submits an ask job of max_trials trials of 3 epochs (max_parallel of them out at once). */
static int64_t submit_ask(fx_t *fx, int max_trials, int max_parallel) {
    char text[512];
    snprintf(text, sizeof text,
             "{\"trainer\": \"ask\", \"trial\": {\"epochs\": 3}, \"space\": {\"lr\": {\"type\": "
             "\"float\", \"scale\": \"log\", \"min\": 0.001, \"max\": 0.1}}, \"budget\": "
             "{\"max_trials\": %d, \"max_parallel\": %d}, \"seed\": 7}",
             max_trials, max_parallel);
    int64_t job_id = 0;
    ck_assert_msg(cv_sched_submit(fx->sched, text, strlen(text), fx->now, &job_id, fx->err) == 0,
                  "%s", fx->err);
    return job_id;
}

static cv_sched_asked_t ask(fx_t *fx, int64_t job_id, const char *client, answers_t *answers) {
    cv_sched_asked_t got;
    ck_assert_msg(cv_sched_ask(fx->sched, job_id, client, fx->now, &got, on_answer, answers,
                               fx->err) == 0, "%s", fx->err);
    return got;
}

static int report(fx_t *fx, const cv_sched_asked_t *t, const char *lease, int epoch,
                  double dev_error, answers_t *answers) {
    cv_epoch_t e = {epoch, NAN, NAN, 2 * dev_error, NAN, dev_error, NAN, NAN, NAN};
    return cv_sched_ask_report(fx->sched, t->trial_id, lease, &e, fx->now, on_answer, answers,
                               fx->err);
}

/* An ask job's trials go to clients, never to workers; a lease is answered only once committed;
 * a lease not renewed for ask_lease_seconds is lost, to the second, and a report renews it. */
START_TEST(test_an_ask_lease_is_answered_after_its_commit_and_expires_unless_renewed) {
    fx_t fx;
    fx_init(&fx);
    fx.cfg.ask_lease_seconds = 10;
    fx_start(&fx);
    int64_t job = submit_ask(&fx, 1, 1);
    join(&fx, &fx.a, "worker-a");
    cv_sched_dispatch(fx.sched, fx.now);
    ck_assert_uint_eq(count(&fx.rec, EV_TRIAL, NULL), 0);

    answers_t answers = {0};
    cv_sched_asked_t t = ask(&fx, job, "c1", &answers);
    ck_assert_int_gt(t.trial_id, 0);
    ck_assert_int_eq(t.epochs, 3);
    ck_assert_double_eq(t.lease_seconds, 10);
    ck_assert_ptr_nonnull(strstr(t.params, "\"lr\":"));
    ck_assert_ptr_null(strstr(t.params, "trainer"));
    ck_assert_int_eq(answers.calls, 0); /* not committed yet */
    ck_assert_int_eq(cv_sched_flush(fx.sched, fx.now), 0);
    ck_assert_int_eq(answers.calls, 1);
    ck_assert_int_eq(answers.committed, 1);
    char who[64];
    raw_text(&fx, who, sizeof who, "SELECT worker_id FROM trials WHERE id = %lld",
             (long long)t.trial_id);
    ck_assert_str_eq(who, "ask:c1");
    ck_assert_int_eq(cv_sched_ask_leases(fx.sched), 1);

    /* At max_parallel: the next asker gets nothing now, and is told to come back. */
    answers_t none = {0};
    cv_sched_asked_t nothing = ask(&fx, job, NULL, &none);
    ck_assert_int_eq(nothing.trial_id, 0);
    ck_assert_int_eq(nothing.done, 0);

    fx.now += 9;
    ck_assert_int_eq(report(&fx, &t, t.lease, 1, 0.3, &answers), 0);
    fx.now += 9.9; /* 18.9 s after the ask, 9.9 s after the report */
    cv_sched_tick(fx.sched, fx.now);
    ck_assert_int_eq(cv_sched_flush(fx.sched, fx.now), 0);
    ck_assert_int_eq(answers.calls, 2);
    assert_trial_status(&fx, t.trial_id, "running");
    fx.now += 0.2;
    cv_sched_tick(fx.sched, fx.now);
    ck_assert_int_eq(cv_sched_flush(fx.sched, fx.now), 0);
    assert_trial_status(&fx, t.trial_id, "queued");
    assert_attempt_outcome(&fx, t.trial_id, 1, "lost");
    ck_assert_int_eq(cv_sched_ask_leases(fx.sched), 0);
    ck_assert_int_eq(report(&fx, &t, t.lease, 2, 0.2, &answers), CV_STORE_STALE);
    ck_assert_ptr_nonnull(strstr(fx.err, "stale lease"));

    answers_t again = {0};
    cv_sched_asked_t second = ask(&fx, job, "c2", &again);
    ck_assert_int_eq(second.trial_id, t.trial_id);
    ck_assert_str_ne(second.lease, t.lease);
    ck_assert_int_eq(cv_sched_flush(fx.sched, fx.now), 0);
    cv_epoch_t best = {2, NAN, NAN, 0.4, NAN, 0.2, NAN, NAN, NAN};
    ck_assert_int_eq(cv_sched_ask_tell(fx.sched, t.trial_id, second.lease, &best, NULL, fx.now,
                                       on_answer, &again, fx.err), 0);
    ck_assert_int_eq(again.calls, 1);
    ck_assert_int_eq(cv_sched_flush(fx.sched, fx.now), 0);
    ck_assert_int_eq(again.calls, 2);
    assert_trial_status(&fx, t.trial_id, "completed");
    assert_job_status(&fx, job, "completed");
    free(t.params);
    free(second.params);
    fx_finish(&fx);
}
END_TEST

/* A lease survives a restart (held again for ask_lease_seconds from start-up); without a
 * re-attachment grace the trial is queued again at start-up and the old lease is stale. */
START_TEST(test_an_ask_lease_survives_a_restart) {
    fx_t fx;
    fx_init(&fx);
    fx.cfg.ask_lease_seconds = 10;
    fx.cfg.reattach_seconds = 30;
    fx_start(&fx);
    int64_t job = submit_ask(&fx, 2, 2);
    answers_t answers = {0};
    cv_sched_asked_t kept = ask(&fx, job, "kept", &answers);
    cv_sched_asked_t lost = ask(&fx, job, "lost", &answers);
    ck_assert_int_eq(report(&fx, &kept, kept.lease, 1, 0.3, &answers), 0);
    fx_restart(&fx);
    ck_assert_int_eq(cv_sched_ask_leases(fx.sched), 2);
    fx.now += 9;
    ck_assert_int_eq(report(&fx, &kept, kept.lease, 2, 0.2, &answers), 0);
    fx.now += 1.5;
    cv_sched_tick(fx.sched, fx.now); /* 10.5 s after the restart: the silent one is lost */
    ck_assert_int_eq(cv_sched_flush(fx.sched, fx.now), 0);
    assert_trial_status(&fx, kept.trial_id, "running");
    assert_trial_status(&fx, lost.trial_id, "queued");
    cv_epoch_t best = {0, NAN, NAN, 0.4, NAN, 0.2, NAN, NAN, NAN};
    ck_assert_int_eq(cv_sched_ask_tell(fx.sched, kept.trial_id, kept.lease, &best, NULL, fx.now,
                                       on_answer, &answers, fx.err), 0);
    ck_assert_int_eq(cv_sched_flush(fx.sched, fx.now), 0);
    assert_trial_status(&fx, kept.trial_id, "completed");
    ck_assert_int_eq(raw_int(&fx, "SELECT best_epoch FROM trials WHERE id = %lld",
                             (long long)kept.trial_id), 2);

    cv_sched_asked_t again = ask(&fx, job, NULL, &answers);
    ck_assert_int_eq(again.trial_id, lost.trial_id);
    ck_assert_int_eq(cv_sched_flush(fx.sched, fx.now), 0);
    fx.cfg.reattach_seconds = 0;
    fx_restart(&fx);
    ck_assert_int_eq(cv_sched_ask_leases(fx.sched), 0);
    ck_assert_int_eq(report(&fx, &again, again.lease, 1, 0.1, &answers), CV_STORE_STALE);
    assert_trial_status(&fx, lost.trial_id, "queued");
    free(kept.params);
    free(lost.params);
    free(again.params);
    fx_finish(&fx);
}
END_TEST

/* A builtin job is not asked for; an unknown one is not found. */
START_TEST(test_only_ask_jobs_are_asked_for) {
    fx_t fx;
    fx_init(&fx);
    fx_start(&fx);
    int64_t job = submit(&fx, 1, 1, "");
    cv_sched_asked_t got;
    answers_t answers = {0};
    ck_assert_int_eq(cv_sched_ask(fx.sched, job, NULL, fx.now, &got, on_answer, &answers, fx.err),
                     CV_STORE_STALE);
    ck_assert_ptr_nonnull(strstr(fx.err, "is not an ask job: its trainer is \"builtin\""));
    ck_assert_int_eq(cv_sched_ask(fx.sched, 999, NULL, fx.now, &got, on_answer, &answers, fx.err),
                     CV_STORE_NOT_FOUND);
    ck_assert_int_eq(answers.calls, 0);
    fx_finish(&fx);
}
END_TEST

/* ---- submission ------------------------------------------------------------------------ */

/* cv_sched_new_check on text: its code, with the check it prepared destroyed. */
static int new_check(fx_t *fx, const char *text) {
    cv_dataset_check_t *check = NULL;
    fx->err[0] = '\0';
    int rc = cv_sched_new_check(fx->sched, text, strlen(text), &check, fx->err);
    if (rc) ck_assert_ptr_null(check);
    else ck_assert_ptr_nonnull(check);
    cv_dataset_check_destroy(check);
    return rc;
}

/* A worker joins on conn offering the external trainers names (n of them). */
static void join_offering(fx_t *fx, fake_conn_t *conn, const char *worker_id,
                          const char *const *names, size_t n) {
    char offered[CV_MSG_TRAINERS_MAX][CV_MSG_TRAINER_MAX + 1] = {{0}};
    ck_assert_uint_le(n, CV_MSG_TRAINERS_MAX);
    for (size_t i = 0; i < n; i++) snprintf(offered[i], sizeof offered[i], "%s", names[i]);
    cv_sched_worker_t *w = join(fx, conn, worker_id);
    cv_sched_worker_set_trainers(w, (const char(*)[CV_MSG_TRAINER_MAX + 1])offered, n);
}

#define TORCH_JOB                                                                                  \
    "{\"trainer\": \"torch\", \"trial\": {\"epochs\": 2}, \"space\": {\"lr\": "                    \
    "{\"type\": \"float\", \"scale\": \"log\", \"min\": 0.001, \"max\": 0.1}}, "                   \
    "\"budget\": {\"max_trials\": 2}}"

/* A job naming an external trainer is refused at submission while no connected worker offers
 * it, with the names the workers do offer; builtin and ask jobs are not refused for it, and the
 * external one passes once a worker offers its trainer. */
START_TEST(test_a_job_whose_trainer_no_worker_offers_is_refused_at_submission) {
    fx_t fx;
    fx_init(&fx);
    fx_start(&fx);
    char builtin[2048];
    moons_job(builtin, sizeof builtin, 2, 1, "");
    const char *ask_job = "{\"trainer\": \"ask\", \"trial\": {\"epochs\": 2}, \"budget\": "
                          "{\"max_trials\": 2}}";

    ck_assert_msg(new_check(&fx, TORCH_JOB) == CV_EUNAVAIL, "%s", fx.err);
    ck_assert_str_eq(fx.err, "trainer: no connected worker offers \"torch\" (workers offer: none)");
    ck_assert_msg(new_check(&fx, builtin) == 0, "%s", fx.err);
    ck_assert_msg(new_check(&fx, ask_job) == 0, "%s", fx.err);
    int64_t id = 0;
    ck_assert_int_eq(cv_sched_submit(fx.sched, TORCH_JOB, strlen(TORCH_JOB), fx.now, &id, fx.err),
                     CV_EUNAVAIL);
    ck_assert_int_eq(raw_int(&fx, "SELECT count(*) FROM jobs"), 0);

    /* Workers that offer other trainers: each name once, the newest worker's first. */
    join_offering(&fx, &fx.a, "worker-a", (const char *const[]){"sklearn", "xgb"}, 2);
    join_offering(&fx, &fx.b, "worker-b", (const char *const[]){"xgb", "jax"}, 2);
    ck_assert_int_eq(new_check(&fx, TORCH_JOB), CV_EUNAVAIL);
    ck_assert_str_eq(fx.err, "trainer: no connected worker offers \"torch\" (workers offer: xgb, "
                             "jax, sklearn)");

    join_offering(&fx, &fx.c, "worker-c", (const char *const[]){"torch"}, 1);
    ck_assert_msg(new_check(&fx, TORCH_JOB) == 0, "%s", fx.err);
    ck_assert_msg(cv_sched_submit(fx.sched, TORCH_JOB, strlen(TORCH_JOB), fx.now, &id, fx.err) == 0,
                  "%s", fx.err);
    ck_assert_int_eq(raw_int(&fx, "SELECT count(*) FROM jobs"), 1);
    fx_finish(&fx);
}
END_TEST

/* The plan stored with job_id: "sampler pruner rounds", or "NULL" when it has none. */
static void assert_plan(const fx_t *fx, int64_t job_id, const char *want) {
    char got[64];
    raw_text(fx, got, sizeof got, "SELECT sampler || ' ' || pruner || ' ' || rounds_planned "
             "FROM jobs WHERE id = %lld", (long long)job_id);
    ck_assert_str_eq(got, want);
}

/* A submitted job is stored with its plan, the job spec's defaults filled in. A store written
 * before plans were stored (schema 8) gets each job's plan from its spec when the scheduler
 * starts on it, whether the job runs or not; a job whose spec no longer parses keeps none, and
 * the start goes on. */
START_TEST(test_jobs_get_their_plans_at_submission_and_from_a_schema_8_store_at_start_up) {
    fx_t fx;
    fx_init(&fx);
    fx_start(&fx);
    int64_t plain = submit_ask(&fx, 5, 1); /* default schedule of 5 trials: 2, 2, 1 */
    int64_t named =
        submit(&fx, 2, 1, ", \"search\": {\"sampler\": \"tpe\", \"pruner\": \"median\"}");
    int64_t broken = submit_ask(&fx, 1, 1), n = 0;
    ck_assert_int_eq(cv_sched_cancel(fx.sched, broken, fx.now, &n, fx.err), 0);
    assert_plan(&fx, plain, "random none 3");
    assert_plan(&fx, named, "tpe median 1");
    ck_assert_int_eq(cv_sched_cancel(fx.sched, plain, fx.now, &n, fx.err), 0);

    ck_assert_int_eq(cv_sched_flush(fx.sched, fx.now), 0);
    cv_sched_destroy(fx.sched);
    cv_store_close(fx.store);
    raw_exec(&fx, "ALTER TABLE jobs DROP COLUMN sampler; ALTER TABLE jobs DROP COLUMN pruner; "
                  "ALTER TABLE jobs DROP COLUMN rounds_planned; PRAGMA user_version = 8;");
    char sql[128];
    snprintf(sql, sizeof sql, "UPDATE jobs SET spec = '{\"budget\": {}}' WHERE id = %lld",
             (long long)broken);
    raw_exec(&fx, sql);
    ck_assert_msg(cv_store_open(fx.path, &fx.store, fx.err) == 0, "%s", fx.err);
    assert_plan(&fx, named, "NULL");
    fx.cfg.store = fx.store;
    fx_start(&fx);
    assert_plan(&fx, plain, "random none 3"); /* cancelled: not resumed, planned all the same */
    assert_plan(&fx, named, "tpe median 1");
    assert_plan(&fx, broken, "NULL");
    fx_restart(&fx); /* tried again, and again no harm */
    assert_plan(&fx, broken, "NULL");
    assert_job_status(&fx, named, "running");
    fx_finish(&fx);
}
END_TEST

static Suite *scheduler_suite(void) {
    Suite *s = suite_create("scheduler");
    TCase *leases = tcase_create("leases");
    tcase_add_test(leases, test_lost_lease_requeues_the_trial_under_a_new_token);
    tcase_add_test(leases, test_trial_fails_after_losing_max_attempts_leases);
    tcase_add_test(leases, test_result_under_a_stale_lease_stores_nothing);
    tcase_add_test(leases, test_stopped_result_gives_the_trial_back);
    tcase_add_test(leases, test_deferred_sync_acknowledges_once_the_sync_ends);
    tcase_add_test(leases, test_cancel_stops_running_trials);
    suite_add_tcase(s, leases);
    TCase *quarantine = tcase_create("quarantine");
    tcase_add_test(quarantine, test_failures_in_a_row_quarantine_the_worker);
    tcase_add_test(quarantine, test_quarantine_ends_when_its_time_is_up);
    tcase_add_test(quarantine, test_a_jobs_own_failure_fails_the_job_not_the_worker);
    suite_add_tcase(s, quarantine);
    TCase *budget = tcase_create("budget");
    tcase_add_test(budget, test_max_trials_bounds_the_trials_proposed);
    suite_add_tcase(s, budget);
    TCase *restart = tcase_create("restart");
    tcase_add_test(restart, test_restart_reattaches_running_trials_and_skips_finished_ones);
    tcase_add_test(restart, test_restart_requeues_a_trial_nobody_reattaches_to);
    tcase_add_test(restart, test_restart_without_grace_requeues_at_once);
    tcase_add_test(restart, test_restart_does_not_make_asha_decisions_twice);
    tcase_add_test(restart, test_a_trial_nudged_to_more_epochs_is_judged_at_the_rungs_it_now_reaches);
    suite_add_tcase(s, restart);
    TCase *asks = tcase_create("ask/tell");
    tcase_add_test(asks, test_an_ask_lease_is_answered_after_its_commit_and_expires_unless_renewed);
    tcase_add_test(asks, test_an_ask_lease_survives_a_restart);
    tcase_add_test(asks, test_only_ask_jobs_are_asked_for);
    suite_add_tcase(s, asks);
    TCase *submission = tcase_create("submission");
    tcase_add_test(submission, test_a_job_whose_trainer_no_worker_offers_is_refused_at_submission);
    tcase_add_test(submission,
                   test_jobs_get_their_plans_at_submission_and_from_a_schema_8_store_at_start_up);
    suite_add_tcase(s, submission);
    return s;
}

CV_TEST_MAIN(scheduler_suite)
