/* The files of jobs: the check of a job's dataset files and the registry of their hashes that
 * workers fetch them by, and the model files of trials (kept under the data directory, removed
 * on the thread pool when their job is deleted). */

#include "server/scheduler_internal.h"

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>

#include "common/err.h"
#include "common/hash.h"
#include "server/job_spec.h"
#include "server/paths.h"

static int register_dataset(cv_sched_t *s, const char *hash, const char *path) {
    for (size_t i = 0; i < s->n_datasets; i++)
        if (!strcmp(s->datasets[i].hash, hash)) return 0;
    dataset_entry_t *d = realloc(s->datasets, (s->n_datasets + 1) * sizeof *d);
    if (!d) return CV_ENOMEM;
    s->datasets = d;
    memcpy(d[s->n_datasets].hash, hash, CV_SHA256_HEX);
    if (!(d[s->n_datasets].path = strdup(path))) return CV_ENOMEM;
    s->n_datasets++;
    return 0;
}

/* Gives the job its checked dataset files: absolute paths in its spec, their hashes and sizes in
 * job->files (sent with every trial), each registered for workers to fetch. check (borrowed)
 * passed and was made from this job's trial object. */
int sched_job_apply_files(cv_sched_t *s, job_t *job, const cv_dataset_check_t *check, char *err) {
    cJSON *ds = cJSON_GetObjectItemCaseSensitive(job->spec.trial, "dataset");
    const cv_dataset_file_t *files;
    size_t n = cv_dataset_check_files(check, &files);
    if (n > CV_MSG_FILES_MAX)
        return cv_errf(err, CV_EINVAL, "%zu dataset files, at most %d fit a trial message", n,
                       CV_MSG_FILES_MAX);
    job->n_files = 0;
    for (size_t i = 0; i < n; i++) {
        const cv_dataset_file_t *f = &files[i];
        cv_msg_file_t *to = &job->files[job->n_files++];
        if (register_dataset(s, f->hash, f->path)) return cv_errf(err, CV_ENOMEM, "out of memory");
        snprintf(to->field, sizeof to->field, "%s", f->field);
        snprintf(to->hash, sizeof to->hash, "%s", f->hash);
        to->bytes = f->bytes;
        if (!cJSON_ReplaceItemInObjectCaseSensitive(ds, f->field, cJSON_CreateString(f->path)))
            return cv_errf(err, CV_ENOMEM, "out of memory");
    }
    return 0;
}

/* A dataset check of a job's trial object under the scheduler's rules. A program caviar does not
 * know (a trainer that is not builtin) reads its own data: its check has no file. */
int sched_job_new_check(const cv_sched_t *s, const cv_job_spec_t *spec, cv_dataset_check_t **check,
                        char *err) {
    const cJSON *trial = spec->trainer_kind == CV_TRAINER_BUILTIN ? spec->trial : NULL;
    int rc = trial ? cv_paths_check_job_trial(trial, err) : 0;
    if (rc) return rc;
    return cv_dataset_check_create(check, trial, s->cfg.dataset_roots, s->cfg.n_dataset_roots,
                                   s->cfg.max_dataset_bytes, err);
}

/* A job naming an external trainer that no connected worker offers is refused (CV_EUNAVAIL, the
 * names workers do offer in err): nobody could train it. Builtin and ask jobs always pass. A job
 * already stored whose trainer's workers all leave waits for one to come back. */
static int trainer_check(const cv_sched_t *s, const cv_job_spec_t *spec, char *err) {
    char offered[CV_ERRLEN / 2];
    if (spec->trainer_kind != CV_TRAINER_EXTERNAL ||
        cv_sched_trainer_offered(s, spec->trainer, offered, sizeof offered))
        return 0;
    return cv_errf(err, CV_EUNAVAIL,
                   "trainer: no connected worker offers \"%s\" (workers offer: %s)", spec->trainer,
                   offered);
}

int cv_sched_new_check(cv_sched_t *s, const char *text, size_t len,
                       cv_dataset_check_t **check, char *err) {
    cv_job_spec_t spec;
    *check = NULL;
    cv_job_spec_init(&spec);
    int rc = cv_job_spec_parse(&spec, text, len, err);
    if (rc == 0) rc = trainer_check(s, &spec, err);
    if (rc == 0) rc = sched_job_new_check(s, &spec, check, err);
    cv_job_spec_finish(&spec);
    return rc;
}

/* The removal of a deleted job's model directory, on the thread pool. */
typedef struct {
    uv_work_t work;
    cv_sched_t *sched;
    int64_t job_id;
    char dir[PATH_MAX];   /* <data_dir>/models/<job> */
    int rc;               /* outcome of the work */
    char err[CV_ERRLEN];
} removal_t;

/* Removes dir and the files in it (a job's model directory holds only files); a directory that
 * does not exist is already removed. Blocking: runs on the thread pool. */
static int remove_model_dir(const char *dir, char *err) {
    DIR *d = opendir(dir);
    if (!d) return errno == ENOENT ? 0 : cv_errf(err, CV_EIO, "%s: %s", dir, strerror(errno));
    int rc = 0;
    char path[PATH_MAX];
    for (struct dirent *e; (e = readdir(d));) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
        int n = snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        if (n < 0 || (size_t)n >= sizeof path) {
            rc = cv_errf(err, CV_ERANGE, "%s: path too long", dir);
            continue;
        }
        if (unlink(path) && errno != ENOENT && rc == 0)
            rc = cv_errf(err, CV_EIO, "%s: %s", path, strerror(errno));
    }
    closedir(d);
    if (rc == 0 && rmdir(dir) && errno != ENOENT)
        rc = cv_errf(err, CV_EIO, "%s: %s", dir, strerror(errno));
    return rc;
}

static void removal_work(uv_work_t *work) {
    removal_t *r = work->data;
    r->rc = remove_model_dir(r->dir, r->err);
}

static void after_removal(uv_work_t *work, int status) {
    removal_t *r = work->data;
    cv_sched_t *s = r->sched;
    if (status) cv_errf(r->err, CV_EIO, "%s: not removed (%s)", r->dir, uv_strerror(status));
    if (status || r->rc)
        cv_log(s->cfg.log, CV_LOG_WARN, "job %lld deleted, but its models were not all removed: "
               "%s", (long long)r->job_id, r->err);
    else
        cv_log(s->cfg.log, CV_LOG_INFO, "job %lld: models removed", (long long)r->job_id);
    s->removals--;
    free(r);
}

/* Starts a removal once the delete it follows is on disk: on the thread pool (at once,
 * blocking, without a loop or when the pool refuses the work). Not when the store failed: the
 * job's rows may come back at the restart, with their models. */
static void removal_when_durable(void *ctx, int committed, int stop) {
    (void)stop;
    removal_t *r = ctx;
    cv_sched_t *s = r->sched;
    if (!committed) {
        cv_log(s->cfg.log, CV_LOG_ERROR, "job %lld: the store failed before its delete was on "
               "disk; its models are kept", (long long)r->job_id);
        s->removals--;
        free(r);
        return;
    }
    if (!s->cfg.loop || uv_queue_work(s->cfg.loop, &r->work, removal_work, after_removal)) {
        removal_work(&r->work);
        after_removal(&r->work, 0);
    }
}

/* Removes a deleted job's model directory once the delete is durable (see above). */
void sched_remove_models(cv_sched_t *s, int64_t job_id) {
    removal_t *r = calloc(1, sizeof *r);
    if (!r) {
        cv_log(s->cfg.log, CV_LOG_ERROR, "job %lld deleted; its models were not removed: out "
               "of memory", (long long)job_id);
        return;
    }
    r->sched = s, r->job_id = job_id, r->work.data = r;
    snprintf(r->dir, sizeof r->dir, "%s/models/%lld", s->cfg.data_dir, (long long)job_id);
    s->removals++;
    if (cv_sched_after_commit(s, removal_when_durable, r)) {
        s->removals--;
        free(r);
        cv_log(s->cfg.log, CV_LOG_ERROR, "job %lld deleted; its models were not removed: out "
               "of memory", (long long)job_id);
    }
}

/* Moves a received model file to <data_dir>/models/<job>/<trial>.model. */
int sched_keep_model(cv_sched_t *s, const trial_t *t, const char *tmp, char *dest, size_t cap,
                     char *err) {
    char dir[PATH_MAX];
    snprintf(dir, sizeof dir, "%s/models", s->cfg.data_dir);
    mkdir(dir, 0755);
    snprintf(dir, sizeof dir, "%s/models/%lld", s->cfg.data_dir, (long long)t->job->id);
    if (mkdir(dir, 0755) && errno != EEXIST)
        return cv_errf(err, CV_EIO, "%s: %s", dir, strerror(errno));
    int n = snprintf(dest, cap, "%s/%lld.model", dir, (long long)t->id);
    if (n < 0 || (size_t)n >= cap) return cv_errf(err, CV_ERANGE, "data directory path too long");
    if (rename(tmp, dest)) return cv_errf(err, CV_EIO, "%s: %s", dest, strerror(errno));
    return 0;
}

cv_evals_t *cv_sched_evals(cv_sched_t *s) {
    return s->evals;
}

int cv_sched_serve_file(cv_sched_t *s, const char *hash, const char *path, char *err) {
    return register_dataset(s, hash, path) ? cv_errf(err, CV_ENOMEM, "out of memory") : 0;
}

const char *cv_sched_dataset_path(const cv_sched_t *s, const char *hash) {
    for (size_t i = 0; i < s->n_datasets; i++)
        if (!strcmp(s->datasets[i].hash, hash)) return s->datasets[i].path;
    return NULL;
}
