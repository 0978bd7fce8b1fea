/* caviar-worker's dataset resolution: before a trial trains, each dataset file it names is found
 * locally (the spec's path or the cache) or fetched from the coordinator with dataset_get into
 * the cache, one transfer at a time; the spec's paths are rewritten to the files found. */
#include <string.h>
#include <sys/stat.h>

#include "common/err.h"
#include "worker/connection_internal.h"

void cv_conn_prep_clear(worker_t *w) {
    cJSON_Delete(w->prep.spec);
    memset(&w->prep, 0, sizeof w->prep);
}

/* Fails the trial being prepared with a result saying why and whose fault it is. */
void cv_conn_prep_fail(worker_t *w, const char *reason, fault_t fault) {
    LOG(w, CV_LOG_WARN, "trial %lld: failed: %s", (long long)w->prep.trial_id, reason);
    cv_conn_add_failure(w, w->prep.trial_id, w->prep.lease, CV_TRIAL_FAILED, reason, 0, fault);
    cv_conn_prep_clear(w);
}

/* The offered trainer a trial's "trainer" member names, or NULL with the reason: any worker
 * that does not offer it would refuse the trial the same way, so it is the job's fault. */
static const cv_trainer_def_t *find_trainer(const worker_t *w, const cJSON *name, char *reason) {
    char offered[CV_ERRLEN / 2] = "";
    size_t used = 0;
    if (!cJSON_IsString(name)) {
        snprintf(reason, CV_ERRLEN, "trainer: must be a trainer's name");
        return NULL;
    }
    for (size_t i = 0; i < w->opt->n_trainers; i++) {
        if (!strcmp(w->opt->trainers[i].name, name->valuestring)) return &w->opt->trainers[i];
        int n = snprintf(offered + used, sizeof offered - used, "%s%s", i ? ", " : "",
                         w->opt->trainers[i].name);
        if (n > 0 && used + (size_t)n < sizeof offered) used += (size_t)n;
    }
    snprintf(reason, CV_ERRLEN, "trainer: this worker does not offer \"%.64s\" (it offers: %s)",
             name->valuestring, used ? offered : "none");
    return NULL;
}

/* Moves the trial being prepared forward: resolves its files in order, asking the coordinator
 * for a missing one (one transfer at a time), then parses the spec and starts training, or
 * fails the trial with the reason. */
int cv_conn_prep_advance(worker_t *w) {
    prep_t *p = &w->prep;
    char reason[CV_ERRLEN], path[WPATH];
    while (p->active && !p->ready && p->next < p->n_files) {
        const cv_msg_file_t *f = &p->files[p->next];
        cJSON *ds = cJSON_GetObjectItemCaseSensitive(p->spec, "dataset");
        cJSON *item = cJSON_IsObject(ds) ? cJSON_GetObjectItemCaseSensitive(ds, f->field) : NULL;
        if (!cJSON_IsString(item)) {
            snprintf(reason, sizeof reason, "files.%s: the spec has no dataset.%s path to resolve",
                     f->field, f->field);
            cv_conn_prep_fail(w, reason, FAULT_JOB);
            return 0;
        }
        if (cv_dcache_find(&w->cache, f->hash, f->bytes, item->valuestring, path)) {
            if (strcmp(path, item->valuestring) != 0) {
                LOG(w, CV_LOG_INFO, "trial %lld: dataset.%s is %s", (long long)p->trial_id,
                    f->field, path);
                cJSON *s = cJSON_CreateString(path);
                if (s == NULL || !cJSON_ReplaceItemInObjectCaseSensitive(ds, f->field, s)) {
                    cJSON_Delete(s);
                    cv_conn_prep_fail(w, "out of memory rewriting the spec", FAULT_WORKER);
                    return 0;
                }
            }
            p->next++;
            continue;
        }
        if (w->opt->cache_dir == NULL) {
            /* The file is at the path the job named but is not the one it was submitted with:
             * on a worker sharing the coordinator's files, it changed since. */
            struct stat st;
            if (stat(item->valuestring, &st) == 0 && S_ISREG(st.st_mode)) {
                snprintf(reason, sizeof reason,
                         "files.%s: %s is not the file the job was submitted with (%lld bytes "
                         "now, %lld bytes with SHA-256 %s then): it changed after submission",
                         f->field, item->valuestring, (long long)st.st_size, (long long)f->bytes,
                         f->hash);
                cv_conn_prep_fail(w, reason, FAULT_JOB);
                return 0;
            }
            snprintf(reason, sizeof reason,
                     "files.%s: %s is not here and there is no cache directory to fetch it into",
                     f->field, item->valuestring);
            cv_conn_prep_fail(w, reason, FAULT_WORKER);
            return 0;
        }
        if (!w->welcomed || w->fetch.state != FETCH_IDLE) return 0; /* asked again later */
        char err[CV_ERRLEN];
        LOG(w, CV_LOG_INFO, "trial %lld: fetching dataset.%s (%s, %lld bytes)",
            (long long)p->trial_id, f->field, f->hash, (long long)f->bytes);
        w->fetch.state = FETCH_ASKED;
        memcpy(w->fetch.hash, f->hash, sizeof w->fetch.hash);
        return cv_conn_send_msg(w, cv_msg_dataset_get(f->hash, err), err);
    }
    if (!p->active || p->ready) return 0;
    const cJSON *trainer = cJSON_GetObjectItemCaseSensitive(p->spec, "trainer");
    if (trainer) { /* an external trainer's trial: its program must be one offered here */
        if ((p->trainer = find_trainer(w, trainer, reason)) == NULL) {
            cv_conn_prep_fail(w, reason, FAULT_JOB);
            return 0;
        }
        p->ready = 1;
        if (w->run == NULL) cv_conn_train_start(w);
        return 0;
    }
    if (cv_trial_spec_from_json(&p->parsed, p->spec, reason) != 0) {
        cv_conn_prep_fail(w, reason, FAULT_JOB);
        return 0;
    }
    p->ready = 1;
    if (w->run == NULL) cv_conn_train_start(w);
    return 0;
}

/* Ends a transfer: the cache checks the file's SHA-256 against the hash asked for and keeps it
 * under that hash; then the trial waiting for it goes on (or fails). */
static int fetch_complete(worker_t *w) {
    fetch_t *t = &w->fetch;
    cv_dcache_fill_t *fill = &t->fill;
    t->state = FETCH_IDLE;
    cv_dcache_fill_end(&w->cache, fill);

    prep_t *p = &w->prep;
    if (p->active && !p->ready && p->next < p->n_files &&
        strcmp(p->files[p->next].hash, t->hash) == 0) {
        if (fill->failed[0]) {
            cv_conn_prep_fail(w, fill->failed, fill->failed_job ? FAULT_JOB : FAULT_WORKER);
            return 0;
        }
        if (fill->have != p->files[p->next].bytes) {
            char reason[CV_ERRLEN];
            snprintf(reason, sizeof reason,
                     "files.%s: the trial says %lld bytes, the coordinator "
                     "sent %lld",
                     p->files[p->next].field, (long long)p->files[p->next].bytes,
                     (long long)fill->have);
            cv_conn_prep_fail(w, reason, FAULT_JOB);
            return 0;
        }
    } else if (fill->failed[0]) {
        LOG(w, CV_LOG_WARN, "%s", fill->failed);
    }
    int rc = cv_conn_eval_fetched(w, t);
    return rc ? rc : cv_conn_prep_advance(w);
}

void cv_conn_fetch_reset(worker_t *w) {
    fetch_t *t = &w->fetch;
    if (t->state == FETCH_RECEIVING) cv_dcache_fill_abandon(&t->fill);
    memset(t, 0, sizeof *t);
}

int cv_conn_on_dataset(worker_t *w, const char *hash, int64_t bytes) {
    fetch_t *t = &w->fetch;
    if (t->state != FETCH_ASKED || strcmp(t->hash, hash) != 0) {
        LOG(w, CV_LOG_ERROR, "coordinator sent dataset %s, which was not asked for", hash);
        return CV_EFORMAT;
    }
    t->state = FETCH_RECEIVING;
    t->want = bytes;
    cv_dcache_fill_begin(&w->cache, &t->fill, hash);
    return bytes == 0 ? fetch_complete(w) : 0;
}

int cv_conn_on_data(worker_t *w, const cv_frame_t *f) {
    fetch_t *t = &w->fetch;
    if (t->state != FETCH_RECEIVING || (int64_t)f->len > t->want - t->fill.have) {
        LOG(w, CV_LOG_ERROR,
            "coordinator sent a data frame of %zu bytes that no dataset "
            "message announced",
            f->len);
        return CV_EFORMAT;
    }
    cv_dcache_fill_write(&t->fill, f->payload, f->len);
    return t->fill.have == t->want ? fetch_complete(w) : 0;
}
