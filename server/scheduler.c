/* The scheduler; see scheduler.h for the model. Everything here runs on the loop thread. */
#include "server/scheduler.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common/clock.h"
#include "common/err.h"
#include "common/hash.h"
#include "common/json.h"
#include "common/rng.h"
#include "server/job_spec.h"
#include "server/paths.h"
#include "server/space.h"

#define SAMPLE_TRIES 1000 /* draws per wanted configuration before a round gives up */

typedef struct job job_t;

typedef struct trial {
    int64_t id;
    job_t *job;
    int number, round;
    cv_store_trial_status_t status;
    int attempts;
    double objective;          /* the job's objective once completed, NaN otherwise */
    char lease[33];            /* current lease token while running */
    cv_sched_worker_t *worker; /* holder while running */
    char *params;              /* JSON text of the sampled values (owned) */
    struct trial *qnext;       /* next in the job's queue */
} trial_t;

struct job {
    int64_t id;
    cv_job_spec_t spec;
    cv_store_job_status_t status;
    int round;               /* current round */
    cv_space_t region;       /* region the current round samples from */
    trial_t **trials;        /* by number */
    size_t n_trials, cap;
    trial_t *qhead, *qtail;  /* queued trials, FIFO */
    int running;             /* trials running now */
    int open;                /* trials of the current round not yet final */
    uint64_t *keys;          /* hash set of configuration keys (0 = empty slot) */
    size_t keys_cap, keys_used;
    double created_at;
    cJSON *files;            /* {dataset field: {hash, bytes}} sent with every trial */
    char *fixed;             /* the fixed trial fields as JSON text without the closing brace,
                                with "seed" added when the job does not fix it */
    job_t *next;
};

struct cv_sched_worker {
    void *conn;
    char id[65];
    trial_t *trial;          /* the trial it runs, or NULL when idle */
    int quarantined;         /* 1: gets no trials (too many failures in a row) */
    int leaving;             /* 1: gave its trial back with a `stopped` result; gets no trials */
    cv_sched_worker_t *next, *prev;
};

typedef struct {
    cv_sched_worker_t *w;    /* NULL once the worker left */
    int64_t trial_id;
    double arrived;          /* cv_clock_monotonic() when the result arrived */
} pending_ack_t;

#define LATENCY_BUCKETS 128  /* quarter octaves from 1 µs */

typedef struct {
    char hash[CV_SHA256_HEX];
    char *path;
} dataset_entry_t;

struct cv_sched {
    cv_sched_config_t cfg;
    job_t *jobs;
    cv_sched_worker_t *workers;
    trial_t **map;           /* open addressing by trial id */
    size_t map_cap, map_used;
    int group_open;
    pending_ack_t *acks;
    size_t n_acks, acks_cap;
    dataset_entry_t *datasets;
    size_t n_datasets;
    cv_rng_t lease_rng;      /* lease tokens */
    uint64_t results, commits;
    uint64_t latency[LATENCY_BUCKETS]; /* result-to-commit latency histogram */
    double latency_max;
    job_t *rr;               /* round-robin cursor for dispatch */
    int broken;              /* 1 after a failed commit: nothing is acknowledged any more */
};

/* ---- small containers --------------------------------------------------------------- */

static uint64_t mix64(uint64_t x) {
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdULL;
    x ^= x >> 33;
    x *= 0xc4ceb9fe1a85ec53ULL;
    return x ^ (x >> 33);
}

static uint64_t fnv1a(const char *s) {
    uint64_t h = 0xcbf29ce484222325ULL;
    for (; *s; s++) h = (h ^ (unsigned char)*s) * 0x100000001b3ULL;
    return h ? h : 1; /* 0 marks an empty slot */
}

static int map_put(cv_sched_t *s, trial_t *t) {
    if (2 * (s->map_used + 1) > s->map_cap) {
        size_t cap = s->map_cap ? 2 * s->map_cap : 1024;
        trial_t **m = calloc(cap, sizeof *m);
        if (!m) return CV_ENOMEM;
        for (size_t i = 0; i < s->map_cap; i++) {
            trial_t *x = s->map[i];
            if (!x) continue;
            size_t j = mix64((uint64_t)x->id) & (cap - 1);
            while (m[j]) j = (j + 1) & (cap - 1);
            m[j] = x;
        }
        free(s->map);
        s->map = m;
        s->map_cap = cap;
    }
    size_t j = mix64((uint64_t)t->id) & (s->map_cap - 1);
    while (s->map[j]) j = (j + 1) & (s->map_cap - 1);
    s->map[j] = t;
    s->map_used++;
    return 0;
}

static trial_t *map_get(const cv_sched_t *s, int64_t id) {
    if (!s->map_cap) return NULL;
    size_t j = mix64((uint64_t)id) & (s->map_cap - 1);
    for (; s->map[j]; j = (j + 1) & (s->map_cap - 1))
        if (s->map[j]->id == id) return s->map[j];
    return NULL;
}

/* Adds a configuration key's hash; returns 1 when it was new, 0 when present, <0 on ENOMEM. */
static int keys_add(job_t *job, uint64_t h) {
    if (2 * (job->keys_used + 1) > job->keys_cap) {
        size_t cap = job->keys_cap ? 2 * job->keys_cap : 256;
        uint64_t *k = calloc(cap, sizeof *k);
        if (!k) return CV_ENOMEM;
        for (size_t i = 0; i < job->keys_cap; i++) {
            if (!job->keys[i]) continue;
            size_t j = mix64(job->keys[i]) & (cap - 1);
            while (k[j]) j = (j + 1) & (cap - 1);
            k[j] = job->keys[i];
        }
        free(job->keys);
        job->keys = k;
        job->keys_cap = cap;
    }
    size_t j = mix64(h) & (job->keys_cap - 1);
    for (; job->keys[j]; j = (j + 1) & (job->keys_cap - 1))
        if (job->keys[j] == h) return 0;
    job->keys[j] = h;
    job->keys_used++;
    return 1;
}

static void queue_push(job_t *job, trial_t *t, int front) {
    t->qnext = NULL;
    if (!job->qhead) {
        job->qhead = job->qtail = t;
    } else if (front) {
        t->qnext = job->qhead;
        job->qhead = t;
    } else {
        job->qtail->qnext = t;
        job->qtail = t;
    }
}

static trial_t *queue_pop(job_t *job) {
    trial_t *t = job->qhead;
    if (t) {
        job->qhead = t->qnext;
        if (!job->qhead) job->qtail = NULL;
        t->qnext = NULL;
    }
    return t;
}

static int is_final(cv_store_trial_status_t st) {
    return st != CV_STORE_TRIAL_QUEUED && st != CV_STORE_TRIAL_RUNNING;
}

/* ---- store group ------------------------------------------------------------------------ */

static int group(cv_sched_t *s, char *err) {
    if (s->group_open) return 0;
    int rc = cv_store_begin(s->cfg.store, err);
    if (rc == 0) s->group_open = 1;
    return rc;
}

static int commit(cv_sched_t *s, char *err) {
    if (!s->group_open) return 0;
    s->group_open = 0;
    int rc = cv_store_commit(s->cfg.store, err);
    if (rc) cv_store_rollback(s->cfg.store, NULL);
    return rc;
}

/* Every store write goes through here. A write that failed inside the open group leaves the
 * disk behind the memory (the store undoes only that statement, or SQLite the whole group), so
 * the scheduler refuses to commit or acknowledge anything more: the next flush fails and the
 * daemon restarts from the store (crash-only). */
static int checked(cv_sched_t *s, int rc) {
    if (rc < 0) s->broken = 1;
    return rc;
}

/* ---- jobs ------------------------------------------------------------------------------- */

static void job_free(job_t *job) {
    if (!job) return;
    for (size_t i = 0; i < job->n_trials; i++) {
        if (!job->trials[i]) continue;
        free(job->trials[i]->params);
        free(job->trials[i]);
    }
    free(job->trials);
    free(job->keys);
    free(job->fixed);
    cJSON_Delete(job->files);
    cv_job_spec_finish(&job->spec);
    free(job);
}

static trial_t *trial_new(cv_sched_t *s, job_t *job, int64_t id, int number, int round,
                          const char *params) {
    if (job->n_trials == job->cap) {
        size_t cap = job->cap ? 2 * job->cap : 64;
        trial_t **t = realloc(job->trials, cap * sizeof *t);
        if (!t) return NULL;
        job->trials = t;
        job->cap = cap;
    }
    trial_t *t = calloc(1, sizeof *t);
    if (!t || !(t->params = strdup(params))) {
        free(t);
        return NULL;
    }
    t->id = id, t->job = job, t->number = number, t->round = round;
    t->status = CV_STORE_TRIAL_QUEUED;
    t->objective = NAN;
    if (map_put(s, t)) {
        free(t->params);
        free(t);
        return NULL;
    }
    job->trials[job->n_trials++] = t;
    return t;
}

/* The dataset fields of a trial spec whose files workers need. */
static const char *const FILE_FIELDS[] = {"images", "labels", "test_images", "test_labels", "csv",
                                          "test_csv"};

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

/* Makes the job's dataset paths absolute and hashes every file, so workers can fetch them by
 * content. Fills job->files. What a job may name is decided by server/paths.h: no output file,
 * and with dataset roots only files inside them. */
static int job_hash_files(cv_sched_t *s, job_t *job, char *err) {
    cJSON *ds = cJSON_GetObjectItemCaseSensitive(job->spec.trial, "dataset");
    int rc = cv_paths_check_job_trial(job->spec.trial, err);
    if (rc) return rc;
    if (!(job->files = cJSON_CreateObject())) return cv_errf(err, CV_ENOMEM, "out of memory");
    for (size_t i = 0; i < sizeof FILE_FIELDS / sizeof *FILE_FIELDS; i++) {
        cJSON *item = cJSON_GetObjectItemCaseSensitive(ds, FILE_FIELDS[i]);
        if (!cJSON_IsString(item)) continue;
        char abs[PATH_MAX], hash[CV_SHA256_HEX], field[64];
        uint64_t bytes;
        snprintf(field, sizeof field, "trial.dataset.%s", FILE_FIELDS[i]);
        if ((rc = cv_path_resolve_dataset(field, item->valuestring, s->cfg.dataset_roots,
                                          s->cfg.n_dataset_roots, abs, sizeof abs, err)))
            return rc;
        rc = cv_sha256_file(abs, hash, &bytes, err);
        if (rc) return rc;
        if (register_dataset(s, hash, abs)) return cv_errf(err, CV_ENOMEM, "out of memory");
        cJSON *entry = cJSON_AddObjectToObject(job->files, FILE_FIELDS[i]);
        if (!entry || !cJSON_AddStringToObject(entry, "hash", hash) ||
            !cJSON_AddNumberToObject(entry, "bytes", (double)bytes) ||
            !cJSON_ReplaceItemInObjectCaseSensitive(ds, FILE_FIELDS[i], cJSON_CreateString(abs)))
            return cv_errf(err, CV_ENOMEM, "out of memory");
    }
    return 0;
}

/* Prepares job->fixed, the text every trial spec starts with. */
static int job_fixed_text(job_t *job, char *err) {
    cJSON *fixed = cJSON_Duplicate(job->spec.trial, 1);
    char *text = NULL;
    if (fixed && !cJSON_GetObjectItemCaseSensitive(fixed, "seed") &&
        !cJSON_AddNumberToObject(fixed, "seed", (double)job->spec.seed)) {
        cJSON_Delete(fixed);
        fixed = NULL;
    }
    if (fixed) text = cJSON_PrintUnformatted(fixed);
    cJSON_Delete(fixed);
    if (!text) return cv_errf(err, CV_ENOMEM, "out of memory");
    size_t len = strlen(text);
    text[len - 1] = '\0'; /* drop the closing brace: the sampled values follow */
    job->fixed = strdup(text);
    cJSON_free(text);
    return job->fixed ? 0 : cv_errf(err, CV_ENOMEM, "out of memory");
}

/* The trial spec of a configuration as text: the fixed fields followed by the sampled values.
 * Both are JSON objects with disjoint keys (the job spec refuses a parameter that is also
 * fixed), so splicing the texts equals cv_job_spec_compose without building a tree. The caller
 * frees the result; NULL when out of memory. */
static char *trial_spec_text(const job_t *job, const char *params) {
    size_t a = strlen(job->fixed), b = strlen(params);
    char *out = malloc(a + b + 2);
    if (!out) return NULL;
    memcpy(out, job->fixed, a);
    if (b > 2) { /* params is "{...}": join with a comma */
        out[a] = ',';
        memcpy(out + a + 1, params + 1, b);
    } else {
        memcpy(out + a, "}", 2);
    }
    return out;
}

/* Loads the parameter values and objectives of every finished trial for refinement. */
static int refine_region(job_t *job, cv_space_t *region, char *err) {
    size_t n = 0;
    cv_space_trial_t *tr = calloc(job->n_trials ? job->n_trials : 1, sizeof *tr);
    cJSON **vals = calloc(job->n_trials ? job->n_trials : 1, sizeof *vals);
    int rc = 0;
    if (!tr || !vals) {
        rc = cv_errf(err, CV_ENOMEM, "out of memory for refinement");
        goto done;
    }
    for (size_t i = 0; i < job->n_trials; i++) {
        trial_t *t = job->trials[i];
        if (t->status != CV_STORE_TRIAL_COMPLETED || !isfinite(t->objective)) continue;
        if (!(vals[n] = cJSON_Parse(t->params))) continue;
        tr[n].values = vals[n];
        tr[n].objective = t->objective;
        n++;
    }
    rc = cv_space_refine(&job->spec.space, tr, n, job->spec.keep_fraction, job->spec.margin,
                         region, err);
done:
    for (size_t i = 0; i < n; i++) cJSON_Delete(vals[i]);
    free(vals);
    free(tr);
    return rc;
}

/* Stores one chunk of sampled trials and queues them in memory. */
static int store_chunk(cv_sched_t *s, job_t *job, cv_store_new_trial_t *nt, int64_t *ids,
                       size_t n, double now, char *err) {
    int rc = checked(s, cv_store_trials_add(s->cfg.store, job->id, nt, n, now, ids, err));
    for (size_t i = 0; rc == 0 && i < n; i++) {
        trial_t *t = trial_new(s, job, ids[i], nt[i].number, nt[i].round, nt[i].params);
        if (!t) return cv_errf(err, CV_ENOMEM, "out of memory");
        queue_push(job, t, 0);
    }
    return rc;
}

#define ROUND_CHUNK 1024 /* trials sampled and stored at a time, bounding a round's memory */

/* Samples and stores round r of a job: up to rounds[r] configurations never seen in this job.
 * Returns the number of trials created (0 when the space is exhausted), or a negative code. */
static int start_round(cv_sched_t *s, job_t *job, int r, double now, char *err) {
    cv_space_t region;
    int rc = r == 0 ? (region = job->spec.space, 0) : refine_region(job, &region, err);
    if (rc) return rc;
    uint32_t want = job->spec.rounds[r];
    cv_store_new_trial_t nt[ROUND_CHUNK];
    char *texts[3 * ROUND_CHUNK];
    int64_t ids[ROUND_CHUNK];
    cJSON *region_json = NULL;
    char *region_text = NULL;
    size_t made = 0, chunk = 0; /* trials made in all; trials in the current chunk */
    if ((rc = group(s, err))) return rc;
    cv_rng_t rng;
    cv_rng_seed(&rng, cv_rng_derive(job->spec.seed, 1000 + (uint64_t)r));
    for (uint32_t tries = 0; made < want && tries < want * SAMPLE_TRIES; tries++) {
        cJSON *values = NULL;
        char canon[CV_SPACE_CANON_MAX];
        if ((rc = cv_space_sample(&region, &rng, &values, canon, sizeof canon, err))) goto done;
        /* A configuration enters the job's key set as soon as it is drawn, so later draws of
         * this round see it too. (If storing the round then fails, its keys stay behind: those
         * configurations are merely never drawn again.) */
        int fresh = keys_add(job, fnv1a(canon));
        if (fresh <= 0) {
            cJSON_Delete(values);
            if (fresh < 0) {
                rc = cv_errf(err, CV_ENOMEM, "out of memory");
                goto done;
            }
            continue;
        }
        char **t = &texts[3 * chunk];
        t[0] = cJSON_PrintUnformatted(values);
        t[1] = strdup(canon);
        t[2] = t[0] ? trial_spec_text(job, t[0]) : NULL;
        cJSON_Delete(values);
        nt[chunk] = (cv_store_new_trial_t){.number = (int)(job->n_trials + chunk), .round = r,
                                           .params = t[0], .config_key = t[1], .spec = t[2]};
        chunk++;
        if (!t[0] || !t[1] || !t[2]) {
            rc = cv_errf(err, CV_ENOMEM, "out of memory");
            goto done;
        }
        made++;
        if (chunk == ROUND_CHUNK || made == want) {
            rc = store_chunk(s, job, nt, ids, chunk, now, err);
            for (size_t i = 0; i < 3 * chunk; i++) free(texts[i]);
            chunk = 0;
            if (rc) goto done;
        }
    }
    if (chunk) { /* the draws ran out before the round was full */
        rc = store_chunk(s, job, nt, ids, chunk, now, err);
        for (size_t i = 0; i < 3 * chunk; i++) free(texts[i]);
        chunk = 0;
        if (rc) goto done;
    }
    if ((rc = cv_space_region_to_json(&region, &region_json, err))) goto done;
    if (!(region_text = cJSON_PrintUnformatted(region_json))) {
        rc = cv_errf(err, CV_ENOMEM, "out of memory");
        goto done;
    }
    if ((rc = checked(s, cv_store_round_add(s->cfg.store, job->id, r, (int)made, region_text, now, err))) ||
        (rc = checked(s, cv_store_job_set_round(s->cfg.store, job->id, r, region_text, err))))
        goto done;
    job->round = r;
    job->region = region;
    job->open = (int)made;
    rc = (int)made;
done:
    for (size_t i = 0; i < 3 * chunk; i++) free(texts[i]);
    cJSON_Delete(region_json);
    cJSON_free(region_text);
    return rc;
}

static int job_finish(cv_sched_t *s, job_t *job, cv_store_job_status_t status, const char *why,
                      double now, char *err) {
    int rc = group(s, err);
    if (rc == 0) rc = checked(s, cv_store_job_set_status(s->cfg.store, job->id, status, why, now, err));
    if (rc == 0) job->status = status;
    if (rc == 0 && s->cfg.log)
        cv_log(s->cfg.log, CV_LOG_INFO, "job %lld %s after %zu trials%s%s", (long long)job->id,
               cv_store_job_status_name(status), job->n_trials, why ? ": " : "", why ? why : "");
    return rc;
}

/* Moves a job on when its round has no open trial: the next round, or the end of the job. */
static int job_advance(cv_sched_t *s, job_t *job, double now, char *err) {
    while (job->status == CV_STORE_JOB_RUNNING && job->open == 0) {
        int next = job->round + 1;
        if ((size_t)next >= job->spec.n_rounds) return job_finish(s, job, CV_STORE_JOB_COMPLETED,
                                                                  NULL, now, err);
        int made = start_round(s, job, next, now, err);
        if (made < 0) return made;
        if (made == 0)
            return job_finish(s, job, CV_STORE_JOB_COMPLETED, "the search space is exhausted",
                              now, err);
        if (s->cfg.log)
            cv_log(s->cfg.log, CV_LOG_INFO, "job %lld: round %d samples %d trials",
                   (long long)job->id, next, made);
    }
    return 0;
}

static job_t *job_find(const cv_sched_t *s, int64_t id) {
    for (job_t *j = s->jobs; j; j = j->next)
        if (j->id == id) return j;
    return NULL;
}

static void job_link(cv_sched_t *s, job_t *job) {
    job_t **p = &s->jobs;
    while (*p) p = &(*p)->next;
    *p = job;
}

int cv_sched_submit(cv_sched_t *s, const char *text, size_t len, double now, int64_t *job_id,
                    char *err) {
    job_t *job = calloc(1, sizeof *job);
    char *spec_text = NULL, *region_text = NULL;
    cJSON *spec_json = NULL, *region_json = NULL;
    if (!job) return cv_errf(err, CV_ENOMEM, "out of memory");
    cv_job_spec_init(&job->spec);
    int rc = cv_job_spec_parse(&job->spec, text, len, err);
    if (rc) goto fail;
    if ((rc = job_hash_files(s, job, err)) || (rc = job_fixed_text(job, err))) goto fail;
    /* The stored spec is the one the job runs: with absolute dataset paths. */
    if ((rc = cv_json_decode(text, len, &spec_json, err))) goto fail;
    if (!cJSON_ReplaceItemInObjectCaseSensitive(spec_json, "trial",
                                                cJSON_Duplicate(job->spec.trial, 1)) ||
        !(spec_text = cJSON_PrintUnformatted(spec_json)) ||
        cv_space_region_to_json(&job->spec.space, &region_json, err) ||
        !(region_text = cJSON_PrintUnformatted(region_json))) {
        rc = cv_errf(err, CV_ENOMEM, "out of memory");
        goto fail;
    }
    if ((rc = commit(s, err))) goto fail; /* earlier writes first: acks wait for flush */
    if ((rc = group(s, err))) goto fail;
    cv_store_objective_t obj = job->spec.objective == CV_OBJECTIVE_DEV_COST
                                   ? CV_STORE_OBJ_DEV_COST
                                   : CV_STORE_OBJ_DEV_ERROR;
    if ((rc = checked(s, cv_store_job_create(s->cfg.store, job->spec.name, obj, spec_text, region_text, now,
                                  &job->id, err))))
        goto rollback;
    job->status = CV_STORE_JOB_RUNNING;
    job->created_at = now;
    int made = start_round(s, job, 0, now, err);
    if (made < 0) {
        rc = made;
        goto rollback;
    }
    if ((rc = commit(s, err))) goto fail;
    job_link(s, job);
    *job_id = job->id;
    if (s->cfg.log)
        cv_log(s->cfg.log, CV_LOG_INFO, "job %lld \"%s\" submitted: %u trials in %zu rounds",
               (long long)job->id, job->spec.name, job->spec.max_trials, job->spec.n_rounds);
    cJSON_free(spec_text);
    cJSON_free(region_text);
    cJSON_Delete(spec_json);
    cJSON_Delete(region_json);
    return 0;
rollback:
    s->group_open = 0;
    cv_store_rollback(s->cfg.store, NULL);
fail:
    /* Trials of a failed submission were mapped; unmap them before freeing. */
    for (size_t i = 0; i < job->n_trials; i++) {
        trial_t *t = job->trials[i];
        size_t j = mix64((uint64_t)t->id) & (s->map_cap - 1);
        while (s->map[j] != t) j = (j + 1) & (s->map_cap - 1);
        /* Re-insert the rest of the cluster after removing t (linear probing deletion). */
        s->map[j] = NULL;
        s->map_used--;
        for (size_t k = (j + 1) & (s->map_cap - 1); s->map[k]; k = (k + 1) & (s->map_cap - 1)) {
            trial_t *x = s->map[k];
            s->map[k] = NULL;
            s->map_used--;
            map_put(s, x);
        }
    }
    job_free(job);
    cJSON_free(spec_text);
    cJSON_free(region_text);
    cJSON_Delete(spec_json);
    cJSON_Delete(region_json);
    return rc;
}

/* Ends a running trial without a result (cancel, time budget). */
static void trial_cancel(cv_sched_t *s, trial_t *t) {
    job_t *job = t->job;
    if (t->status == CV_STORE_TRIAL_RUNNING && t->worker) {
        s->cfg.ops.send_stop(t->worker->conn, t->id);
        t->worker->trial = NULL;
        t->worker = NULL;
        job->running--;
    }
    if (!is_final(t->status)) job->open--;
    t->status = CV_STORE_TRIAL_CANCELLED;
}

/* Cancels every queued and running trial of a job in memory and in the store. */
static int job_cancel_trials(cv_sched_t *s, job_t *job, double now, int64_t *n, char *err) {
    int rc = group(s, err);
    if (rc == 0) rc = checked(s, cv_store_job_cancel(s->cfg.store, job->id, now, n, err));
    if (rc) return rc;
    for (size_t i = 0; i < job->n_trials; i++)
        if (!is_final(job->trials[i]->status)) trial_cancel(s, job->trials[i]);
    job->qhead = job->qtail = NULL;
    job->status = CV_STORE_JOB_CANCELLED;
    return 0;
}

int cv_sched_cancel(cv_sched_t *s, int64_t job_id, double now, int64_t *cancelled, char *err) {
    job_t *job = job_find(s, job_id);
    if (!job) {
        /* A finished job is no longer in memory; the store knows whether it exists. */
        cJSON *j = NULL;
        int rc = cv_store_job_get(s->cfg.store, job_id, &j, err);
        cJSON_Delete(j);
        return rc == CV_STORE_NOT_FOUND ? CV_STORE_NOT_FOUND : rc ? rc : CV_STORE_STALE;
    }
    if (job->status != CV_STORE_JOB_RUNNING) return CV_STORE_STALE;
    int rc = job_cancel_trials(s, job, now, cancelled, err);
    if (rc == 0) rc = commit(s, err);
    if (rc == 0 && s->cfg.log)
        cv_log(s->cfg.log, CV_LOG_INFO, "job %lld cancelled", (long long)job_id);
    return rc;
}

int cv_sched_running(const cv_sched_t *s, int64_t job_id) {
    const job_t *job = job_find(s, job_id);
    return job ? job->running : 0;
}

void cv_sched_tick(cv_sched_t *s, double now) {
    char err[CV_ERRLEN];
    for (job_t *job = s->jobs; job; job = job->next) {
        if (job->status != CV_STORE_JOB_RUNNING || job->spec.max_seconds <= 0 ||
            now - job->created_at < job->spec.max_seconds)
            continue;
        int64_t n = 0;
        char why[128];
        snprintf(why, sizeof why, "stopped at its time budget of %g s", job->spec.max_seconds);
        if (job_cancel_trials(s, job, now, &n, err) ||
            job_finish(s, job, CV_STORE_JOB_COMPLETED, why, now, err))
            cv_log(s->cfg.log, CV_LOG_ERROR, "job %lld: %s", (long long)job->id, err);
    }
}

/* ---- workers ---------------------------------------------------------------------------- */

static void new_lease(cv_sched_t *s, char out[33]) {
    static const char digits[] = "0123456789abcdef";
    uint64_t a = cv_rng_next(&s->lease_rng), b = cv_rng_next(&s->lease_rng);
    for (int i = 0; i < 16; i++) {
        out[i] = digits[(a >> (4 * i)) & 15];
        out[16 + i] = digits[(b >> (4 * i)) & 15];
    }
    out[32] = '\0';
}

cv_sched_worker_t *cv_sched_worker_join(cv_sched_t *s, void *conn, const char *worker_id,
                                        const char *version, int threads, const char *host,
                                        const int64_t *lease_trials, const char (*leases)[33],
                                        int n_leases, int64_t *reattached, int *n_reattached,
                                        double now) {
    char err[CV_ERRLEN];
    *n_reattached = 0;
    cv_sched_worker_t *w = calloc(1, sizeof *w);
    if (!w) return NULL;
    w->conn = conn;
    snprintf(w->id, sizeof w->id, "%s", worker_id);
    w->next = s->workers;
    if (s->workers) s->workers->prev = w;
    s->workers = w;
    if (group(s, err) ||
        checked(s, cv_store_worker_seen(s->cfg.store, worker_id, version, threads, host, now, err)))
        cv_log(s->cfg.log, CV_LOG_WARN, "worker %s: %s", worker_id, err);
    int quarantined = 0;
    if (cv_store_worker_get(s->cfg.store, worker_id, &quarantined, NULL, err) < 0)
        cv_log(s->cfg.log, CV_LOG_WARN, "worker %s: %s", worker_id, err);
    if (quarantined) {
        w->quarantined = 1;
        cv_log(s->cfg.log, CV_LOG_WARN, "worker %s is quarantined: it gets no trials", w->id);
    }
    for (int i = 0; i < n_leases; i++) {
        trial_t *t = map_get(s, lease_trials[i]);
        if (!t || t->status != CV_STORE_TRIAL_RUNNING || strcmp(t->lease, leases[i]) || w->trial) {
            /* A lease lost while the worker was away: refused (not in the welcome's list). */
            if (checked(s, cv_store_attempt_stale(s->cfg.store, lease_trials[i], leases[i], err)) == 0)
                cv_log(s->cfg.log, CV_LOG_INFO, "worker %s claimed trial %lld under a lease it "
                       "lost; refused", w->id, (long long)lease_trials[i]);
            continue;
        }
        if (t->worker) t->worker->trial = NULL; /* its old connection is not closed yet */
        t->worker = w;
        w->trial = t;
        reattached[(*n_reattached)++] = t->id;
        cv_log(s->cfg.log, CV_LOG_INFO, "worker %s re-attached to trial %lld", w->id,
               (long long)t->id);
    }
    return w;
}

/* Takes a running trial off its worker, recording the attempt as lost: back to the front of the
 * queue, or failed once it used its attempts. */
static void trial_release(cv_sched_t *s, trial_t *t, double now) {
    char err[CV_ERRLEN];
    job_t *job = t->job;
    int lost = t->attempts >= s->cfg.max_attempts;
    cv_store_trial_status_t to = lost ? CV_STORE_TRIAL_FAILED : CV_STORE_TRIAL_QUEUED;
    int rc = group(s, err);
    if (rc == 0) rc = checked(s, cv_store_trial_requeue(s->cfg.store, t->id, t->lease, to, now, err));
    if (rc < 0) cv_log(s->cfg.log, CV_LOG_ERROR, "trial %lld: %s", (long long)t->id, err);
    t->worker = NULL;
    t->lease[0] = '\0';
    job->running--;
    t->status = to;
    if (lost) {
        job->open--;
        cv_log(s->cfg.log, CV_LOG_WARN, "trial %lld failed: lost %d leases", (long long)t->id,
               t->attempts);
        if (job_advance(s, job, now, err))
            cv_log(s->cfg.log, CV_LOG_ERROR, "job %lld: %s", (long long)job->id, err);
    } else {
        queue_push(job, t, 1);
    }
}

void cv_sched_worker_leave(cv_sched_t *s, cv_sched_worker_t *w, double now) {
    if (!w) return;
    for (size_t i = 0; i < s->n_acks; i++)
        if (s->acks[i].w == w) s->acks[i].w = NULL;
    if (w->trial) {
        cv_log(s->cfg.log, CV_LOG_WARN, "worker %s left while running trial %lld", w->id,
               (long long)w->trial->id);
        trial_release(s, w->trial, now);
    }
    if (w->prev) w->prev->next = w->next;
    else s->workers = w->next;
    if (w->next) w->next->prev = w->prev;
    if (s->rr && s->rr->running < 0) s->rr->running = 0;
    free(w);
}

/* The next job with a queued trial and room under max_parallel, round-robin over jobs. */
static job_t *next_job(cv_sched_t *s) {
    job_t *start = s->rr && s->rr->next ? s->rr->next : s->jobs, *j = start;
    if (!j) return NULL;
    do {
        if (j->status == CV_STORE_JOB_RUNNING && j->qhead &&
            (uint32_t)j->running < j->spec.max_parallel) {
            s->rr = j;
            return j;
        }
        j = j->next ? j->next : s->jobs;
    } while (j != start);
    return NULL;
}

/* Leases trial t to worker w and sends it. */
static int lease(cv_sched_t *s, cv_sched_worker_t *w, trial_t *t, double now, char *err) {
    job_t *job = t->job;
    char *text = trial_spec_text(job, t->params);
    int rc = text ? 0 : cv_errf(err, CV_ENOMEM, "out of memory");
    char token[33];
    new_lease(s, token);
    if (rc == 0) rc = group(s, err);
    if (rc == 0) rc = checked(s, cv_store_trial_start(s->cfg.store, t->id, w->id, token, now, err));
    if (rc == 0) {
        memcpy(t->lease, token, sizeof token);
        t->status = CV_STORE_TRIAL_RUNNING;
        t->attempts++;
        t->worker = w;
        w->trial = t;
        job->running++;
        if (s->cfg.ops.send_trial(w->conn, t->id, job->id, token, text, job->files))
            rc = cv_errf(err, CV_EIO, "cannot send to worker %s", w->id);
    }
    free(text);
    return rc;
}

void cv_sched_dispatch(cv_sched_t *s, double now) {
    char err[CV_ERRLEN];
    for (cv_sched_worker_t *w = s->workers; w; w = w->next) {
        if (w->trial || w->quarantined || w->leaving) continue;
        job_t *job = next_job(s);
        if (!job) return;
        trial_t *t = queue_pop(job);
        int rc = lease(s, w, t, now, err);
        if (rc && t->status == CV_STORE_TRIAL_QUEUED) {
            queue_push(job, t, 1);
            if (rc > 0) { /* the store says the trial is not queued: memory and disk disagree */
                snprintf(err, sizeof err, "the store no longer has it queued");
                s->broken = 1;
            }
            cv_log(s->cfg.log, CV_LOG_ERROR, "trial %lld cannot be leased: %s", (long long)t->id,
                   err);
            return;
        }
    }
}

int cv_sched_busy(const cv_sched_t *s) {
    int n = 0;
    for (const cv_sched_worker_t *w = s->workers; w; w = w->next) n += w->trial != NULL;
    return n;
}

/* An integer field, or def when it is absent or not a number in int range. */
static int int_or(const cJSON *obj, const char *name, int def) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, name);
    if (!cJSON_IsNumber(v) || !(v->valuedouble >= INT_MIN && v->valuedouble <= INT_MAX))
        return def;
    return (int)v->valuedouble;
}

static double number_or_nan(const cJSON *obj, const char *name) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, name);
    return cJSON_IsNumber(v) ? v->valuedouble : NAN;
}

int cv_sched_on_progress(cv_sched_t *s, cv_sched_worker_t *w, int64_t trial_id,
                         const char *lease, const cJSON *epoch, char *err) {
    trial_t *t = w->trial;
    if (!t || t->id != trial_id || strcmp(t->lease, lease)) return CV_STORE_STALE;
    cv_store_curve_point_t p = {
        .epoch = (int)number_or_nan(epoch, "epoch"),
        .train_cost = number_or_nan(epoch, "train_cost"),
        .train_cost_reg = number_or_nan(epoch, "train_cost_reg"),
        .dev_cost = number_or_nan(epoch, "dev_cost"),
        .train_error = number_or_nan(epoch, "train_error"),
        .dev_error = number_or_nan(epoch, "dev_error"),
        .learning_rate = number_or_nan(epoch, "learning_rate"),
        .seconds = number_or_nan(epoch, "seconds"),
    };
    int rc = group(s, err);
    return rc ? rc : checked(s, cv_store_curve_add(s->cfg.store, t->id, lease, &p, 1, err));
}

static int push_ack(cv_sched_t *s, cv_sched_worker_t *w, int64_t trial_id) {
    if (s->n_acks == s->acks_cap) {
        size_t cap = s->acks_cap ? 2 * s->acks_cap : 64;
        pending_ack_t *a = realloc(s->acks, cap * sizeof *a);
        if (!a) return CV_ENOMEM;
        s->acks = a;
        s->acks_cap = cap;
    }
    s->acks[s->n_acks++] = (pending_ack_t){w, trial_id, cv_clock_monotonic()};
    return 0;
}

/* Moves a received model file to <data_dir>/models/<job>/<trial>.model. */
static int keep_model(cv_sched_t *s, const trial_t *t, const char *tmp, char *dest, size_t cap,
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

/* Puts one trial that failed on a quarantined worker back in its job's queue, when that is
 * still safe: the job runs and the trial belongs to its current round. A trial of a round that
 * already ended stays failed, since the round's completion (and the next round's region) were
 * decided with it final. Returns 1 when requeued, 0 when left as it is. */
static int retry_trial(cv_sched_t *s, const cv_sched_worker_t *w, int64_t trial_id) {
    char err[CV_ERRLEN];
    trial_t *t = map_get(s, trial_id);
    const char *why = NULL;
    if (!t)
        why = "its job is no longer loaded";
    else if (t->status != CV_STORE_TRIAL_FAILED)
        return 0; /* already retried (it failed twice in the streak) or otherwise moved on */
    else if (t->job->status != CV_STORE_JOB_RUNNING)
        why = "its job is no longer running";
    else if (t->round != t->job->round)
        why = "its round already ended and the job moved on to the next one";
    if (why) {
        cv_log(s->cfg.log, CV_LOG_INFO, "trial %lld failed on quarantined worker %s but stays "
               "failed: %s", (long long)trial_id, w->id, why);
        return 0;
    }
    int rc = checked(s, cv_store_trial_retry(s->cfg.store, t->id, err));
    if (rc) {
        if (rc < 0)
            cv_log(s->cfg.log, CV_LOG_ERROR, "trial %lld: %s", (long long)t->id, err);
        return 0;
    }
    job_t *job = t->job;
    t->status = CV_STORE_TRIAL_QUEUED;
    t->objective = NAN;
    job->open++;
    queue_push(job, t, 1);
    return 1;
}

/* A worker was just quarantined: the trials of its failure streak (its last quarantine_after
 * results, all failed) failed because of the worker, not their configuration, so each goes
 * back to the queue for another worker where retry_trial allows. Runs inside the open group;
 * a store error is logged and leaves that trial failed. */
static void retry_failed_streak(cv_sched_t *s, const cv_sched_worker_t *w) {
    char err[CV_ERRLEN];
    int n = s->cfg.quarantine_after, count = 0, requeued = 0;
    int64_t *ids = malloc((size_t)n * sizeof *ids);
    if (!ids) {
        cv_log(s->cfg.log, CV_LOG_ERROR, "worker %s: out of memory; its failed trials stay "
               "failed", w->id);
        return;
    }
    if (cv_store_worker_failed_streak(s->cfg.store, w->id, n, ids, &count, err) < 0) {
        cv_log(s->cfg.log, CV_LOG_ERROR, "worker %s: %s", w->id, err);
        count = 0;
    }
    /* Newest first, each to the front of its queue: the oldest failure ends up first in line. */
    for (int i = 0; i < count; i++)
        requeued += retry_trial(s, w, ids[i]);
    free(ids);
    if (requeued)
        cv_log(s->cfg.log, CV_LOG_INFO, "%d trials that failed on quarantined worker %s are "
               "queued again", requeued, w->id);
}

int cv_sched_on_result(cv_sched_t *s, cv_sched_worker_t *w, int64_t trial_id,
                       const char *lease, const cJSON *result, const char *model_path,
                       double now, char *err) {
    trial_t *t = map_get(s, trial_id);
    if (!t) return cv_errf(err, CV_EINVAL, "result for unknown trial %lld", (long long)trial_id);
    if (w->trial != t || strcmp(t->lease, lease)) {
        /* A result overtaken by a stop or a lost lease: refuse it, keep the connection. */
        if (model_path) unlink(model_path);
        if (group(s, err) == 0 && checked(s, cv_store_attempt_stale(s->cfg.store, trial_id, lease, err)) == 0)
            cv_log(s->cfg.log, CV_LOG_INFO, "worker %s: result of trial %lld under a lost lease "
                   "refused", w->id, (long long)trial_id);
        return s->cfg.ops.send_ack(w->conn, trial_id, 0) ? CV_EIO : 0;
    }
    job_t *job = t->job;
    const char *status = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(result, "status"));
    if (status && !strcmp(status, "stopped")) {
        /* The worker was told to stop (SIGTERM: preemption, a time limit, scaling down) and gives
         * the trial back: to the front of the queue without using one of its attempts, and that
         * worker gets no more trials. The attempt history records the lease as lost. */
        if (model_path) unlink(model_path);
        cv_log(s->cfg.log, CV_LOG_INFO, "worker %s is stopping and gave trial %lld back", w->id,
               (long long)trial_id);
        t->attempts--;
        trial_release(s, t, now);
        w->trial = NULL;
        w->leaving = 1;
        return push_ack(s, w, trial_id) ? cv_errf(err, CV_ENOMEM, "out of memory") : 0;
    }
    cv_store_result_t r = {
        .status = !status || !strcmp(status, "completed") ? CV_STORE_TRIAL_COMPLETED
                  : !strcmp(status, "diverged")           ? CV_STORE_TRIAL_DIVERGED
                                                          : CV_STORE_TRIAL_FAILED,
        .dev_error = number_or_nan(result, "dev_error"),
        .dev_cost = number_or_nan(result, "dev_cost"),
        .train_error = number_or_nan(result, "train_error"),
        .train_cost = number_or_nan(result, "train_cost"),
        .train_cost_reg = number_or_nan(result, "train_cost_reg"),
        .best_epoch = int_or(result, "best_epoch", -1),
        .epochs_run = int_or(result, "epochs_run", -1),
        .examples_per_second = number_or_nan(result, "examples_per_second"),
        .error = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(result, "error")),
    };
    const cJSON *diag = cJSON_GetObjectItemCaseSensitive(result, "diagnosis");
    r.diagnosis = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(diag, "name"));
    if (r.diagnosis && strcmp(r.diagnosis, "fine") && strcmp(r.diagnosis, "high_bias") &&
        strcmp(r.diagnosis, "high_variance") && strcmp(r.diagnosis, "high_bias_and_variance"))
        r.diagnosis = NULL; /* only the four verdicts are stored */
    char dest[PATH_MAX];
    int rc = 0;
    if (model_path) {
        if ((rc = keep_model(s, t, model_path, dest, sizeof dest, err))) return rc;
        r.model_path = dest;
    }
    if ((rc = group(s, err))) return rc;
    rc = checked(s, cv_store_put_result(s->cfg.store, t->id, lease, &r, now, err));
    if (rc < 0) return rc;
    /* A diverged trial is the hyperparameters' fault, not the worker's. */
    int failures = 0, quarantine = 0;
    if (checked(s, cv_store_worker_outcome(s->cfg.store, w->id, r.status != CV_STORE_TRIAL_FAILED, &failures,
                                NULL)) == 0 &&
        s->cfg.quarantine_after > 0 && failures >= s->cfg.quarantine_after && !w->quarantined &&
        checked(s, cv_store_worker_set_quarantined(s->cfg.store, w->id, 1, err)) == 0) {
        w->quarantined = 1;
        quarantine = 1;
        cv_log(s->cfg.log, CV_LOG_WARN, "worker %s quarantined after %d failed trials in a row "
               "(last: trial %lld of job %lld: %s); it gets no more trials", w->id, failures,
               (long long)t->id, (long long)job->id, r.error ? r.error : "no reason given");
    }
    t->status = r.status;
    t->objective = r.status != CV_STORE_TRIAL_COMPLETED ? NAN
                   : job->spec.objective == CV_OBJECTIVE_DEV_COST ? r.dev_cost
                                                                  : r.dev_error;
    t->worker = NULL;
    t->lease[0] = '\0';
    w->trial = NULL;
    job->running--;
    job->open--;
    if ((rc = push_ack(s, w, trial_id))) return cv_errf(err, rc, "out of memory");
    /* Before job_advance: the streak includes this trial, whose retry keeps its round open. */
    if (quarantine) retry_failed_streak(s, w);
    return job_advance(s, job, now, err);
}

int cv_sched_flush(cv_sched_t *s, double now) {
    (void)now;
    char err[CV_ERRLEN];
    if (s->broken) {
        if (s->n_acks || s->group_open)
            cv_log(s->cfg.log, CV_LOG_ERROR, "a store write failed; %zu results not "
                   "acknowledged, nothing more is committed", s->n_acks);
        s->n_acks = 0;
        if (s->group_open) {
            s->group_open = 0;
            cv_store_rollback(s->cfg.store, NULL);
        }
        return CV_EIO;
    }
    if (commit(s, err)) {
        /* Crash-only: the group is gone, so its acknowledgements are too, and every later flush
         * fails as well (nothing may be acknowledged against a disk that lost a commit). */
        cv_log(s->cfg.log, CV_LOG_ERROR, "commit failed: %s; %zu results not acknowledged", err,
               s->n_acks);
        s->n_acks = 0;
        s->broken = 1;
        return CV_EIO;
    }
    size_t n = s->n_acks;
    s->n_acks = 0;
    double done = n ? cv_clock_monotonic() : 0;
    for (size_t i = 0; i < n; i++) {
        double lat = done - s->acks[i].arrived;
        int b = lat > 1e-6 ? (int)(4 * log2(lat * 1e6)) : 0;
        s->latency[b < LATENCY_BUCKETS ? b : LATENCY_BUCKETS - 1]++;
        if (lat > s->latency_max) s->latency_max = lat;
        if (s->acks[i].w) s->cfg.ops.send_ack(s->acks[i].w->conn, s->acks[i].trial_id, 1);
    }
    s->results += n;
    s->commits += n > 0;
    return 0;
}

size_t cv_sched_pending(const cv_sched_t *s) {
    return s->n_acks;
}

/* Upper edge, in seconds, of the histogram bucket holding quantile q. */
static double latency_quantile(const cv_sched_t *s, double q) {
    uint64_t total = 0, seen = 0;
    for (int b = 0; b < LATENCY_BUCKETS; b++) total += s->latency[b];
    if (!total) return 0;
    for (int b = 0; b < LATENCY_BUCKETS; b++) {
        seen += s->latency[b];
        if ((double)seen >= q * (double)total) return 1e-6 * exp2((b + 1) / 4.0);
    }
    return s->latency_max;
}

void cv_sched_stats(const cv_sched_t *s, cv_sched_stats_t *out) {
    out->results = s->results;
    out->commits = s->commits;
    out->latency_p50 = latency_quantile(s, 0.5);
    out->latency_p99 = latency_quantile(s, 0.99);
    out->latency_max = s->latency_max;
}

/* ---- evaluation and datasets ------------------------------------------------------------ */

int cv_sched_best_models(cv_sched_t *s, int64_t job_id, int k, char (*paths)[1024],
                         int64_t *trial_ids, char **trial_spec_json, char *err) {
    cJSON *top = NULL, *best = NULL;
    *trial_spec_json = NULL;
    int rc = cv_store_trials_top(s->cfg.store, job_id, CV_STORE_OBJ_JOB, k, &top, err);
    if (rc) return rc == CV_STORE_NOT_FOUND ? cv_errf(err, CV_EINVAL, "no job %lld",
                                                      (long long)job_id) : rc;
    int n = 0;
    const cJSON *item;
    cJSON_ArrayForEach(item, top) {
        const char *p = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(item, "model_path"));
        const cJSON *id = cJSON_GetObjectItemCaseSensitive(item, "id");
        if (!p || !cJSON_IsNumber(id) || n >= k) continue;
        snprintf(paths[n], 1024, "%s", p);
        trial_ids[n++] = (int64_t)id->valuedouble;
    }
    cJSON_Delete(top);
    if (n == 0) return 0;
    if ((rc = cv_store_trial_get(s->cfg.store, trial_ids[0], &best, err))) return rc < 0 ? rc : 0;
    const cJSON *spec = cJSON_GetObjectItemCaseSensitive(best, "spec");
    *trial_spec_json = spec ? cJSON_PrintUnformatted(spec) : NULL;
    cJSON_Delete(best);
    return *trial_spec_json ? n : cv_errf(err, CV_ENOMEM, "out of memory");
}

int cv_sched_store_test_result(cv_sched_t *s, int64_t job_id, const char *json, char *err) {
    int rc = group(s, err);
    if (rc == 0) rc = checked(s, cv_store_job_set_test_result(s->cfg.store, job_id, json, err));
    if (rc == 0) rc = commit(s, err);
    return rc;
}

const char *cv_sched_dataset_path(const cv_sched_t *s, const char *hash) {
    for (size_t i = 0; i < s->n_datasets; i++)
        if (!strcmp(s->datasets[i].hash, hash)) return s->datasets[i].path;
    return NULL;
}

/* ---- creation and recovery -------------------------------------------------------------- */

typedef struct {
    cv_sched_t *s;
    job_t *job;
    char *err;
} resume_ctx_t;

static int resume_trial(void *ctx, const cv_store_trial_row_t *row) {
    resume_ctx_t *c = ctx;
    job_t *job = c->job;
    trial_t *t = trial_new(c->s, job, row->id, row->number, row->round, row->params);
    if (!t || keys_add(job, fnv1a(row->config_key)) < 0) return CV_ENOMEM;
    t->status = row->status;
    t->attempts = row->attempts;
    t->objective = row->status == CV_STORE_TRIAL_COMPLETED ? row->objective : NAN;
    if (row->status == CV_STORE_TRIAL_QUEUED) queue_push(job, t, 0);
    if (row->round == job->round && !is_final(row->status)) job->open++;
    return 0;
}

static int resume_job(void *ctx, const cv_store_job_row_t *row) {
    resume_ctx_t *c = ctx;
    cv_sched_t *s = c->s;
    job_t *job = calloc(1, sizeof *job);
    if (!job) return cv_errf(c->err, CV_ENOMEM, "out of memory");
    cv_job_spec_init(&job->spec);
    int rc = cv_job_spec_parse(&job->spec, row->spec, strlen(row->spec), c->err);
    if (rc == 0) rc = job_hash_files(s, job, c->err);
    if (rc == 0) rc = job_fixed_text(job, c->err);
    cJSON *region = row->region ? cJSON_Parse(row->region) : NULL;
    job->region = job->spec.space;
    if (rc == 0 && region)
        rc = cv_space_region_from_json(&job->spec.space, region, &job->region, c->err);
    cJSON_Delete(region);
    if (rc) {
        cv_log(s->cfg.log, CV_LOG_ERROR, "job %lld cannot resume: %s", (long long)row->id,
               c->err);
        job_free(job);
        return 0; /* the other jobs still resume; this one is marked failed below */
    }
    job->id = row->id;
    job->status = CV_STORE_JOB_RUNNING;
    job->round = row->round;
    job->created_at = row->created_at;
    job_link(s, job);
    return 0;
}

int cv_sched_create(cv_sched_t **out, const cv_sched_config_t *config, double now, char *err) {
    *out = NULL;
    cv_sched_t *s = calloc(1, sizeof *s);
    if (!s) return cv_errf(err, CV_ENOMEM, "out of memory");
    s->cfg = *config;
    if (s->cfg.max_attempts < 1) s->cfg.max_attempts = 3;
    if (s->cfg.quarantine_after == 0) s->cfg.quarantine_after = 3;
    uint64_t seed;
    if (getrandom(&seed, sizeof seed, 0) != (ssize_t)sizeof seed) seed = (uint64_t)getpid() ^ (uint64_t)now;
    cv_rng_seed(&s->lease_rng, seed);
    int64_t requeued = 0;
    int rc = cv_store_recover(s->cfg.store, &requeued, err);
    resume_ctx_t ctx = {s, NULL, err};
    if (rc == 0) rc = cv_store_jobs_each(s->cfg.store, 1, resume_job, &ctx, err);
    for (job_t *job = s->jobs; rc == 0 && job; job = job->next) {
        ctx.job = job;
        rc = cv_store_trials_each(s->cfg.store, job->id, resume_trial, &ctx, err);
        if (rc == 0) rc = job_advance(s, job, now, err);
        if (rc == 0 && s->cfg.log)
            cv_log(s->cfg.log, CV_LOG_INFO, "job %lld resumed in round %d: %zu trials, %d open",
                   (long long)job->id, job->round, job->n_trials, job->open);
    }
    if (rc == 0) rc = commit(s, err);
    if (rc) {
        cv_sched_destroy(s);
        return rc;
    }
    if (requeued && s->cfg.log)
        cv_log(s->cfg.log, CV_LOG_INFO, "%lld trials that were running are queued again",
               (long long)requeued);
    *out = s;
    return 0;
}

void cv_sched_destroy(cv_sched_t *s) {
    if (!s) return;
    if (s->group_open) cv_store_rollback(s->cfg.store, NULL);
    while (s->jobs) {
        job_t *next = s->jobs->next;
        job_free(s->jobs);
        s->jobs = next;
    }
    while (s->workers) {
        cv_sched_worker_t *next = s->workers->next;
        free(s->workers);
        s->workers = next;
    }
    for (size_t i = 0; i < s->n_datasets; i++) free(s->datasets[i].path);
    free(s->datasets);
    free(s->map);
    free(s->acks);
    free(s);
}
