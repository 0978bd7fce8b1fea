/* The scheduler; see scheduler.h for the model. Everything here runs on the loop thread. */
#include "server/scheduler.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common/clock.h"
#include "common/err.h"
#include "common/hash.h"
#include "common/json.h"
#include "common/rng.h"
#include "server/evaluation.h"
#include "server/job_spec.h"
#include "server/paths.h"
#include "server/search.h"
#include "server/space.h"

#define SAMPLE_TRIES 1000  /* proposals per wanted configuration before the job's space counts
                              as exhausted */

typedef struct job job_t;

typedef struct trial {
    int64_t id;
    job_t *job;
    int number, round;
    cv_store_trial_status_t status;
    int attempts;              /* leases held, as the store counts them */
    int interrupted;           /* of which ended by a coordinator restart: not counted toward
                                  max_attempts */
    double objective;          /* the job's objective once completed, NaN otherwise */
    char lease[33];            /* current lease token while running */
    cv_sched_worker_t *worker; /* holder while running; NULL for an orphan (running since before
                                  a restart, waiting for its worker to re-attach) */
    char *params;              /* JSON text of the sampled values (owned) */
    struct trial *qnext;       /* next in the job's queue */
    int epochs;                /* epochs the trial trains at most */
    double best_value;         /* lowest objective over the epochs of its current attempt; NaN
                                  before the first */
    int n_decided;             /* decision epochs the pruner judged it at (job->rungs order) */
    double *rung_value;        /* its best value at each of them: job->n_rungs entries when the
                                  job prunes (owned), else NULL */
    int stopped;               /* 1: the pruner stopped it; its result will say pruned */
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
    int checking;            /* 1 while its dataset files are being checked (a resumed job):
                                no trial is leased until they are */
    void *sampler;           /* the sampler's config (spec.sampler), owned */
    void *pruner;            /* the pruner's state (spec.pruner), owned */
    int rungs[CV_SEARCH_MAX_RUNGS]; /* the pruner's decision epochs for the longest trial */
    size_t n_rungs;
    int exhausted;           /* 1: no new configuration could be found; nothing more is proposed */
    double busy_seconds;     /* worker-seconds its trials held workers */
    double available_seconds; /* worker-seconds it could have used: min(max_parallel, its
                                 running trials + idle workers) over time */
    double accounted_at;     /* wall seconds up to which the two above are counted */
    double usage_saved_at;   /* accounted_at when they were last written to the store */
    job_t *next;
};

struct cv_sched_worker {
    void *conn;
    char id[65];
    trial_t *trial;          /* the trial it runs, or NULL when idle */
    int quarantined;         /* 1: gets no trials (too many failures in a row) */
    double last_seen;        /* wall-clock seconds of its last message (hello included) */
    double quarantined_until; /* wall-clock seconds when the quarantine ends; INFINITY: when
                                 released */
    int leaving;             /* 1: gave its trial back with a `stopped` result; gets no trials */
    cv_sched_worker_t *next, *prev;
};

typedef struct {
    cv_sched_worker_t *w;    /* NULL once the worker left */
    int64_t trial_id;
    double arrived;          /* cv_clock_monotonic() when the result arrived */
} pending_ack_t;

/* A pruner's decision, sent to the trial's worker once it is committed. */
typedef struct {
    cv_sched_worker_t *w;    /* NULL once the worker left */
    int64_t trial_id;
    int epoch;
    int stop;
} pending_decision_t;

/* A trial that was running when the coordinator stopped, waiting for its worker's claim. */
typedef struct {
    trial_t *t;              /* NULL once re-attached, put back in the queue or cancelled */
    char worker[65];         /* the worker that held it before the restart */
} orphan_t;

#define LATENCY_BUCKETS 128  /* quarter octaves from 1 µs */

typedef struct {
    char hash[CV_SHA256_HEX];
    char *path;
} dataset_entry_t;

/* The dataset check of a resumed job, in flight on the thread pool. */
typedef struct resume_check {
    cv_sched_t *s;
    int64_t job_id;
    cv_dataset_check_t *check; /* owned */
    struct resume_check *next;
} resume_check_t;

struct cv_sched {
    cv_sched_config_t cfg;
    job_t *jobs;
    cv_sched_worker_t *workers;
    trial_t **map;           /* open addressing by trial id */
    size_t map_cap, map_used;
    int group_open;
    pending_ack_t *acks;
    size_t n_acks, acks_cap;
    pending_decision_t *decisions;
    size_t n_decisions, decisions_cap;
    dataset_entry_t *datasets;
    size_t n_datasets;
    cv_rng_t lease_rng;      /* lease tokens */
    uint64_t results, commits;
    uint64_t latency[LATENCY_BUCKETS]; /* result-to-commit latency histogram */
    double latency_max;
    job_t *rr;               /* round-robin cursor for dispatch */
    resume_check_t *checks;  /* dataset checks of resumed jobs in flight */
    int broken;              /* 1 after a failed commit: nothing is acknowledged any more */
    orphan_t *orphans;       /* trials running since before start-up, without a worker */
    size_t n_orphans;        /* entries (some NULL); the array goes once the grace is over */
    double reattach_until;   /* wall seconds: orphans wait for their workers until then */
    int detached;            /* cv_sched_detach: leaving workers keep their leases */
    size_t n_finished;       /* jobs that ended and wait for unload_finished */
    int removals;            /* model directories of deleted jobs being removed */
    cv_evals_t *evals;       /* test-set evaluations waiting for or run by workers */
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

/* Removes t from the map (absent: nothing happens). Linear probing: the entries after the hole
 * that the hole would hide from their home slot move back into it. */
static void map_del(cv_sched_t *s, const trial_t *t) {
    if (!s->map_cap) return;
    size_t mask = s->map_cap - 1, hole = mix64((uint64_t)t->id) & mask;
    for (; s->map[hole] != t; hole = (hole + 1) & mask)
        if (!s->map[hole]) return;
    for (size_t j = (hole + 1) & mask; s->map[j]; j = (j + 1) & mask) {
        size_t home = mix64((uint64_t)s->map[j]->id) & mask;
        int stays = hole < j ? hole < home && home <= j : hole < home || home <= j;
        if (stays) continue;
        s->map[hole] = s->map[j];
        hole = j;
    }
    s->map[hole] = NULL;
    s->map_used--;
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

static void worker_unquarantine(cv_sched_t *s, cv_sched_worker_t *w, const char *how);
static void worker_load_quarantine(cv_sched_t *s, cv_sched_worker_t *w, double now);

/* ---- jobs ------------------------------------------------------------------------------- */

static void job_free(job_t *job) {
    if (!job) return;
    for (size_t i = 0; i < job->n_trials; i++) {
        if (!job->trials[i]) continue;
        free(job->trials[i]->params);
        free(job->trials[i]->rung_value);
        free(job->trials[i]);
    }
    if (job->spec.sampler) job->spec.sampler->destroy(job->sampler);
    if (job->spec.pruner) job->spec.pruner->destroy(job->pruner);
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
    t->best_value = NAN;
    t->epochs = cv_job_spec_trial_epochs(&job->spec, params);
    if (job->n_rungs && !(t->rung_value = calloc(job->n_rungs, sizeof *t->rung_value))) {
        free(t->params);
        free(t);
        return NULL;
    }
    if (map_put(s, t)) {
        free(t->params);
        free(t->rung_value);
        free(t);
        return NULL;
    }
    job->trials[job->n_trials++] = t;
    return t;
}

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
static int job_apply_files(cv_sched_t *s, job_t *job, const cv_dataset_check_t *check,
                           char *err) {
    cJSON *ds = cJSON_GetObjectItemCaseSensitive(job->spec.trial, "dataset");
    const cv_dataset_file_t *files;
    size_t n = cv_dataset_check_files(check, &files);
    cJSON_Delete(job->files);
    if (!(job->files = cJSON_CreateObject())) return cv_errf(err, CV_ENOMEM, "out of memory");
    for (size_t i = 0; i < n; i++) {
        const cv_dataset_file_t *f = &files[i];
        if (register_dataset(s, f->hash, f->path)) return cv_errf(err, CV_ENOMEM, "out of memory");
        cJSON *entry = cJSON_AddObjectToObject(job->files, f->field);
        if (!entry || !cJSON_AddStringToObject(entry, "hash", f->hash) ||
            !cJSON_AddNumberToObject(entry, "bytes", (double)f->bytes) ||
            !cJSON_ReplaceItemInObjectCaseSensitive(ds, f->field, cJSON_CreateString(f->path)))
            return cv_errf(err, CV_ENOMEM, "out of memory");
    }
    return 0;
}

/* A dataset check of a job's trial object under the scheduler's rules. */
static int job_new_check(const cv_sched_t *s, const cJSON *trial, cv_dataset_check_t **check,
                         char *err) {
    int rc = cv_paths_check_job_trial(trial, err);
    if (rc) return rc;
    return cv_dataset_check_create(check, trial, s->cfg.dataset_roots, s->cfg.n_dataset_roots,
                                   s->cfg.max_dataset_bytes, err);
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

/* The round trial number n belongs to: rounds[0] trials in round 0, the next rounds[1] in round
 * 1, and so on. */
static int round_of(const job_t *job, size_t n) {
    size_t end = 0;
    for (size_t r = 0; r < job->spec.n_rounds; r++)
        if (n < (end += job->spec.rounds[r])) return (int)r;
    return (int)job->spec.n_rounds - 1;
}

/* Begins round r of a job: its region is refined from every trial finished so far (round 0
 * searches the whole space) and recorded. Rounds never wait for each other: the trials of round
 * r − 1 still running go on, and their results count in the regions of later rounds. */
static int round_begin(cv_sched_t *s, job_t *job, int r, double now, char *err) {
    cv_space_t region;
    int rc = r == 0 ? (region = job->spec.space, 0) : refine_region(job, &region, err);
    cJSON *region_json = NULL;
    char *region_text = NULL;
    if (rc == 0) rc = cv_space_region_to_json(&region, &region_json, err);
    if (rc == 0 && !(region_text = cJSON_PrintUnformatted(region_json)))
        rc = cv_errf(err, CV_ENOMEM, "out of memory");
    if (rc == 0) rc = group(s, err);
    if (rc == 0)
        rc = checked(s, cv_store_round_add(s->cfg.store, job->id, r, 0, region_text, now, err));
    if (rc == 0)
        rc = checked(s, cv_store_job_set_round(s->cfg.store, job->id, r, region_text, err));
    if (rc == 0) {
        job->round = r;
        job->region = region;
        size_t finished = 0;
        for (size_t i = 0; i < job->n_trials; i++)
            finished += job->trials[i]->status == CV_STORE_TRIAL_COMPLETED;
        if (r > 0 && s->cfg.log)
            cv_log(s->cfg.log, CV_LOG_INFO, "job %lld: round %d of %zu samples %u trials from "
                   "the region refined on the %zu completed so far (%d still running)",
                   (long long)job->id, r + 1, job->spec.n_rounds, job->spec.rounds[r], finished,
                   job->running);
    }
    cJSON_Delete(region_json);
    cJSON_free(region_text);
    return rc;
}

/* The history a sampler proposes from: the job's trials from number first on. vals (n entries)
 * receive the parsed values, which the caller frees. */
static int job_history(const job_t *job, cv_search_trial_t *h, cJSON **vals, size_t first,
                       char *err) {
    for (size_t i = first; i < job->n_trials; i++) {
        const trial_t *t = job->trials[i];
        cv_search_trial_t *x = &h[i - first];
        if (!(vals[i - first] = cJSON_Parse(t->params)))
            return cv_errf(err, CV_ENOMEM, "out of memory for the search history");
        cv_search_state_t st = t->status == CV_STORE_TRIAL_COMPLETED ? CV_SEARCH_COMPLETED
                               : t->status == CV_STORE_TRIAL_PRUNED  ? CV_SEARCH_PRUNED
                               : is_final(t->status)                 ? CV_SEARCH_FAILED
                                                                     : CV_SEARCH_RUNNING;
        *x = (cv_search_trial_t){.values = vals[i - first], .state = st,
                                 .objective = st == CV_SEARCH_COMPLETED ? t->objective : NAN,
                                 .rung_value = t->rung_value, .n_rung = (size_t)t->n_decided};
        if (!t->rung_value) x->n_rung = 0;
    }
    return 0;
}

/* Asks the job's sampler for one configuration the job has not tried and queues it as a new
 * trial. Returns 1 when a trial was queued, 0 when the budget is spent or no new configuration
 * was found (job->exhausted), or a negative code. */
static int job_propose(cv_sched_t *s, job_t *job, double now, char *err) {
    if (job->exhausted || job->n_trials >= job->spec.max_trials) return 0;
    int r = round_of(job, job->n_trials);
    int rc = r != job->round ? round_begin(s, job, r, now, err) : 0;
    if (rc) return rc;
    size_t keep = job->spec.sampler->max_history;
    size_t first = job->n_trials > keep ? job->n_trials - keep : 0;
    size_t n = job->n_trials - first;
    cv_search_trial_t *h = calloc(n ? n : 1, sizeof *h);
    cJSON **vals = calloc(n ? n : 1, sizeof *vals);
    cv_search_history_t history = {.space = &job->spec.space, .region = &job->region,
                                   .trials = h, .n_trials = n, .rung_epochs = job->rungs,
                                   .n_rungs = job->n_rungs};
    char canon[CV_SPACE_CANON_MAX], *texts[3] = {NULL, NULL, NULL};
    cJSON *values = NULL;
    if (!h || !vals) {
        rc = cv_errf(err, CV_ENOMEM, "out of memory for the search history");
        goto done;
    }
    if ((rc = job_history(job, h, vals, first, err))) goto done;
    /* Proposals are reproducible: the draws of trial number n come from the job's seed and n. */
    cv_rng_t rng;
    cv_rng_seed(&rng, cv_rng_derive(job->spec.seed, 1000000 + (uint64_t)job->n_trials));
    int fresh = 0;
    for (int tries = 0; !fresh && tries < SAMPLE_TRIES; tries++) {
        cJSON_Delete(values);
        values = NULL;
        /* A model-based sampler may keep proposing what the job has (TPE in a small discrete
         * space): after SAMPLE_TRIES / 10 repeats the draws are uniform in the region. */
        const cv_sampler_ops_t *sampler = tries < SAMPLE_TRIES / 10 ? job->spec.sampler
                                                                     : &cv_sampler_random;
        if ((rc = sampler->propose(sampler == job->spec.sampler ? job->sampler : NULL, &history,
                                   &rng, &values, err)) ||
            (rc = cv_space_canonical(values, canon, sizeof canon, err)))
            goto done;
        if ((fresh = keys_add(job, fnv1a(canon))) < 0) {
            rc = cv_errf(err, CV_ENOMEM, "out of memory");
            goto done;
        }
    }
    if (!fresh) {
        job->exhausted = 1;
        cv_log(s->cfg.log, CV_LOG_INFO, "job %lld: no new configuration in %d proposals; the "
               "search space is exhausted", (long long)job->id, SAMPLE_TRIES);
        goto done;
    }
    texts[0] = cJSON_PrintUnformatted(values);
    texts[1] = strdup(canon);
    texts[2] = texts[0] ? trial_spec_text(job, texts[0]) : NULL;
    if (!texts[0] || !texts[1] || !texts[2]) {
        rc = cv_errf(err, CV_ENOMEM, "out of memory");
        goto done;
    }
    cv_store_new_trial_t nt = {.number = (int)job->n_trials, .round = r, .params = texts[0],
                               .config_key = texts[1], .spec = texts[2]};
    int64_t id;
    if ((rc = group(s, err)) ||
        (rc = checked(s, cv_store_trials_add(s->cfg.store, job->id, &nt, 1, now, &id, err))) ||
        (rc = checked(s, cv_store_round_grow(s->cfg.store, job->id, r, err))))
        goto done;
    trial_t *t = trial_new(s, job, id, nt.number, r, texts[0]);
    if (!t) {
        rc = cv_errf(err, CV_ENOMEM, "out of memory");
        goto done;
    }
    queue_push(job, t, 0);
    job->open++;
    rc = 1;
done:
    for (size_t i = 0; vals && i < n; i++) cJSON_Delete(vals[i]);
    free(vals);
    free(h);
    cJSON_Delete(values);
    for (int i = 0; i < 3; i++) free(texts[i]);
    return rc;
}

/* Makes the job's sampler config and pruner state from its spec, and the pruner's decision
 * epochs for its longest trial. */
static int job_init_search(job_t *job, char *err) {
    int rc = job->spec.sampler->create(&job->sampler, job->spec.sampler_settings, err);
    if (rc == 0) rc = job->spec.pruner->create(&job->pruner, job->spec.pruner_settings, err);
    if (rc == 0)
        job->n_rungs = job->spec.pruner->decision_epochs(
            job->pruner, cv_job_spec_max_epochs(&job->spec), job->rungs, CV_SEARCH_MAX_RUNGS);
    return rc;
}

static void account(cv_sched_t *s, double now);
static int job_save_usage(cv_sched_t *s, job_t *job, int final, char *err);

static int job_finish(cv_sched_t *s, job_t *job, cv_store_job_status_t status, const char *why,
                      double now, char *err) {
    account(s, now);
    int rc = group(s, err);
    if (rc == 0) rc = job_save_usage(s, job, 1, err);
    if (rc == 0) rc = checked(s, cv_store_job_set_status(s->cfg.store, job->id, status, why, now, err));
    if (rc == 0) {
        job->status = status;
        s->n_finished++; /* unloaded at the next flush */
    }
    if (rc == 0 && s->cfg.log)
        cv_log(s->cfg.log, CV_LOG_INFO, "job %lld %s after %zu trials%s%s", (long long)job->id,
               cv_store_job_status_name(status), job->n_trials, why ? ": " : "", why ? why : "");
    return rc;
}

/* Ends a job whose search is over: completed, or failed when not one trial completed (then its
 * error is the first failure's, so that the reason is where the user looks). */
static int job_end(cv_sched_t *s, job_t *job, const char *why, double now, char *err) {
    size_t completed = 0, failed = 0, diverged = 0;
    for (size_t i = 0; i < job->n_trials; i++) {
        cv_store_trial_status_t st = job->trials[i]->status;
        completed += st == CV_STORE_TRIAL_COMPLETED;
        failed += st == CV_STORE_TRIAL_FAILED;
        diverged += st == CV_STORE_TRIAL_DIVERGED;
    }
    if (completed || !(failed + diverged))
        return job_finish(s, job, CV_STORE_JOB_COMPLETED, why, now, err);
    char first[CV_ERRLEN / 2], text[CV_ERRLEN];
    int64_t trial_id = 0;
    cv_store_trial_status_t st = CV_STORE_TRIAL_FAILED;
    int rc = cv_store_job_first_failure(s->cfg.store, job->id, &trial_id, &st, first,
                                        sizeof first, err);
    if (rc < 0) return rc;
    if (rc) snprintf(first, sizeof first, "no reason recorded");
    snprintf(text, sizeof text, "no trial completed (%zu failed, %zu diverged); the first: trial "
             "%lld %s: %s", failed, diverged, (long long)trial_id,
             st == CV_STORE_TRIAL_DIVERGED ? "diverged" : "failed", first);
    return job_finish(s, job, CV_STORE_JOB_FAILED, text, now, err);
}

/* Ends a job whose search is over: every trial it will have is final (its budget is spent or its
 * space exhausted). Otherwise the job waits for its running trials and proposes more as workers
 * come free (cv_sched_dispatch). */
static int job_settle(cv_sched_t *s, job_t *job, double now, char *err) {
    if (job->status != CV_STORE_JOB_RUNNING || job->open > 0) return 0;
    if (job->exhausted) return job_end(s, job, "the search space is exhausted", now, err);
    if (job->n_trials >= job->spec.max_trials) return job_end(s, job, NULL, now, err);
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

/* Takes the trials of a job that never made it into the job list out of the trial map. */
static void job_unmap(cv_sched_t *s, job_t *job) {
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
}

int cv_sched_new_check(cv_sched_t *s, const char *text, size_t len,
                       cv_dataset_check_t **check, char *err) {
    cv_job_spec_t spec;
    *check = NULL;
    cv_job_spec_init(&spec);
    int rc = cv_job_spec_parse(&spec, text, len, err);
    if (rc == 0) rc = job_new_check(s, spec.trial, check, err);
    cv_job_spec_finish(&spec);
    return rc;
}

/* Forgets t as an orphan (it was re-attached, put back in the queue or cancelled). */
static void orphan_forget(cv_sched_t *s, const trial_t *t) {
    for (size_t i = 0; i < s->n_orphans; i++)
        if (s->orphans[i].t == t) s->orphans[i].t = NULL;
}

/* Frees the in-memory state of the jobs that ended (job->status not running): their trials
 * leave the map and the job list, and their spec, key set and files go. Everything the API
 * shows of them is in the store; a late result for one of their trials is refused as stale
 * (on_unloaded_result). Called where no job pointer is held: after a commit. */
static void unload_finished(cv_sched_t *s) {
    if (!s->n_finished) return;
    s->n_finished = 0;
    for (job_t **p = &s->jobs; *p;) {
        job_t *job = *p;
        if (job->status == CV_STORE_JOB_RUNNING) {
            p = &job->next;
            continue;
        }
        *p = job->next;
        if (s->rr == job) s->rr = NULL;
        for (size_t i = 0; i < job->n_trials; i++) {
            trial_t *t = job->trials[i];
            if (t->worker) t->worker->trial = NULL; /* none is running; kept safe regardless */
            else if (t->status == CV_STORE_TRIAL_RUNNING) orphan_forget(s, t);
            map_del(s, t);
        }
        job_free(job);
    }
}

int cv_sched_submit(cv_sched_t *s, const char *text, size_t len, double now, int64_t *job_id,
                    char *err) {
    cv_dataset_check_t *check = NULL;
    int rc = cv_sched_new_check(s, text, len, &check, err);
    if (rc) return rc;
    cv_dataset_check_run(check);
    rc = cv_dataset_check_status(check, err);
    if (rc == 0) rc = cv_sched_submit_checked(s, text, len, check, now, job_id, err);
    cv_dataset_check_destroy(check);
    return rc;
}

int cv_sched_submit_checked(cv_sched_t *s, const char *text, size_t len,
                            const cv_dataset_check_t *check, double now, int64_t *job_id,
                            char *err) {
    job_t *job = calloc(1, sizeof *job);
    char *spec_text = NULL, *region_text = NULL;
    cJSON *spec_json = NULL, *region_json = NULL;
    if (!job) return cv_errf(err, CV_ENOMEM, "out of memory");
    cv_job_spec_init(&job->spec);
    int rc = cv_job_spec_parse(&job->spec, text, len, err);
    if (rc) goto fail;
    if ((rc = cv_paths_check_job_trial(job->spec.trial, err)) ||
        (rc = job_apply_files(s, job, check, err)) || (rc = job_fixed_text(job, err)))
        goto fail;
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
    job->created_at = job->accounted_at = now;
    if ((rc = job_init_search(job, err)) || (rc = round_begin(s, job, 0, now, err)))
        goto rollback;
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
    job_unmap(s, job); /* trials of a failed submission were mapped */
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
    } else if (t->status == CV_STORE_TRIAL_RUNNING) { /* an orphan: no worker to stop yet */
        orphan_forget(s, t);
        job->running--;
    }
    if (!is_final(t->status)) job->open--;
    t->status = CV_STORE_TRIAL_CANCELLED;
}

/* Cancels every queued and running trial of a job in memory and in the store. */
static int job_cancel_trials(cv_sched_t *s, job_t *job, double now, int64_t *n, char *err) {
    account(s, now);
    int rc = group(s, err);
    if (rc == 0) rc = job_save_usage(s, job, 1, err);
    if (rc == 0) rc = checked(s, cv_store_job_cancel(s->cfg.store, job->id, now, n, err));
    if (rc) return rc;
    for (size_t i = 0; i < job->n_trials; i++)
        if (!is_final(job->trials[i]->status)) trial_cancel(s, job->trials[i]);
    job->qhead = job->qtail = NULL;
    job->status = CV_STORE_JOB_CANCELLED;
    s->n_finished++; /* unloaded at the next flush */
    return 0;
}

/* Fails a running job for why (copied): queued trials are cancelled, running ones stopped. */
static int job_fail(cv_sched_t *s, job_t *job, const char *why, double now, char *err) {
    int64_t n = 0;
    int rc = job_cancel_trials(s, job, now, &n, err);
    if (rc == 0) rc = job_finish(s, job, CV_STORE_JOB_FAILED, why, now, err);
    if (rc == 0 && n)
        cv_log(s->cfg.log, CV_LOG_INFO, "job %lld: %lld trials that were queued or running are "
               "cancelled", (long long)job->id, (long long)n);
    return rc;
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

/* Starts the removal of a deleted job's model directory on the thread pool (at once, blocking,
 * without a loop or when the pool refuses the work). */
static void remove_models(cv_sched_t *s, int64_t job_id) {
    removal_t *r = calloc(1, sizeof *r);
    if (!r) {
        cv_log(s->cfg.log, CV_LOG_ERROR, "job %lld deleted; its models were not removed: out "
               "of memory", (long long)job_id);
        return;
    }
    r->sched = s, r->job_id = job_id, r->work.data = r;
    snprintf(r->dir, sizeof r->dir, "%s/models/%lld", s->cfg.data_dir, (long long)job_id);
    s->removals++;
    if (!s->cfg.loop || uv_queue_work(s->cfg.loop, &r->work, removal_work, after_removal)) {
        removal_work(&r->work);
        after_removal(&r->work, 0);
    }
}

int cv_sched_delete(cv_sched_t *s, int64_t job_id, int64_t *trials_deleted, char *err) {
    job_t *job = job_find(s, job_id);
    if (job && job->status == CV_STORE_JOB_RUNNING) return CV_STORE_STALE;
    int rc = group(s, err);
    if (rc == 0)
        rc = checked(s, cv_store_job_delete(s->cfg.store, job_id, trials_deleted, err));
    if (rc == CV_STORE_STALE) rc = cv_errf(err, CV_EIO, "store: job %lld is running there but "
                                           "not here", (long long)job_id);
    int commit_rc = commit(s, err); /* whatever else the group held goes to disk as well */
    if (rc == 0) rc = commit_rc;
    if (rc) return rc;
    unload_finished(s); /* the job, ended since the last flush, may still be in memory */
    cv_log(s->cfg.log, CV_LOG_INFO, "job %lld deleted (%lld trials)", (long long)job_id,
           (long long)(trials_deleted ? *trials_deleted : -1));
    remove_models(s, job_id);
    return 0;
}

int cv_sched_running(const cv_sched_t *s, int64_t job_id) {
    const job_t *job = job_find(s, job_id);
    return job ? job->running : 0;
}

/* Puts a running trial back at the front of its job's queue without a result and without using
 * one of its attempts: no worker re-attached to its lease after a restart (why NULL: "the
 * coordinator restarted"), or its worker was stopped and gave it back. The attempt ends
 * interrupted. */
static void trial_interrupt(cv_sched_t *s, trial_t *t, double now, const char *why) {
    char err[CV_ERRLEN];
    int rc = group(s, err);
    if (rc == 0)
        rc = checked(s, cv_store_trial_interrupt(s->cfg.store, t->id, t->lease, why, now, err));
    if (rc < 0) cv_log(s->cfg.log, CV_LOG_ERROR, "trial %lld: %s", (long long)t->id, err);
    orphan_forget(s, t);
    if (t->worker) t->worker->trial = NULL;
    t->worker = NULL;
    t->lease[0] = '\0';
    t->status = CV_STORE_TRIAL_QUEUED;
    t->interrupted++;
    t->job->running--;
    queue_push(t->job, t, 1);
}

/* The end of the re-attachment grace: every orphan left goes back to the queue. */
static void orphans_expire(cv_sched_t *s, double now) {
    size_t n = 0;
    for (size_t i = 0; i < s->n_orphans; i++) {
        trial_t *t = s->orphans[i].t;
        if (!t) continue;
        cv_log(s->cfg.log, CV_LOG_INFO, "trial %lld: worker %s did not re-attach within the "
               "grace after the restart; it is queued again (interrupted, not counted as an "
               "attempt)", (long long)t->id, s->orphans[i].worker);
        trial_interrupt(s, t, now, NULL);
        n++;
    }
    free(s->orphans);
    s->orphans = NULL;
    s->n_orphans = 0;
    if (n)
        cv_log(s->cfg.log, CV_LOG_INFO, "%zu trials that were running are queued again", n);
}

void cv_sched_tick(cv_sched_t *s, double now) {
    char err[CV_ERRLEN];
    if (s->n_orphans && now >= s->reattach_until) orphans_expire(s, now);
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

/* Counts worker usage up to now for every running job: busy worker-seconds (its trials holding a
 * worker) and available ones (min(max_parallel, its running trials + idle workers)), the
 * utilization GET /v1/jobs/{id} reports. Called before every change of who runs what. */
static void account(cv_sched_t *s, double now) {
    int idle = 0;
    for (const cv_sched_worker_t *w = s->workers; w; w = w->next)
        idle += !w->trial && !w->quarantined && !w->leaving;
    for (job_t *j = s->jobs; j; j = j->next) {
        if (j->status != CV_STORE_JOB_RUNNING || j->checking || now <= j->accounted_at) {
            if (now > j->accounted_at) j->accounted_at = now;
            continue;
        }
        double dt = now - j->accounted_at;
        int avail = j->running + idle;
        if ((uint32_t)avail > j->spec.max_parallel) avail = (int)j->spec.max_parallel;
        j->busy_seconds += dt * j->running;
        j->available_seconds += dt * (avail > j->running ? avail : j->running);
        j->accounted_at = now;
    }
}

#define USAGE_SAVE_SECONDS 1.0 /* a running job's usage is written at most this often */

/* Writes a job's usage into the open group: when it ends (final), or while it runs at most
 * every USAGE_SAVE_SECONDS, so that a job of many short trials does not pay a write each. */
static int job_save_usage(cv_sched_t *s, job_t *job, int final, char *err) {
    if (!final && job->accounted_at < job->usage_saved_at + USAGE_SAVE_SECONDS) return 0;
    job->usage_saved_at = job->accounted_at;
    return checked(s, cv_store_job_set_usage(s->cfg.store, job->id, job->busy_seconds,
                                             job->available_seconds, err));
}

static int push_decision(cv_sched_t *s, cv_sched_worker_t *w, int64_t trial_id, int epoch,
                         int stop) {
    if (s->n_decisions == s->decisions_cap) {
        size_t cap = s->decisions_cap ? 2 * s->decisions_cap : 16;
        pending_decision_t *d = realloc(s->decisions, cap * sizeof *d);
        if (!d) return CV_ENOMEM;
        s->decisions = d;
        s->decisions_cap = cap;
    }
    s->decisions[s->n_decisions++] = (pending_decision_t){w, trial_id, epoch, stop};
    return 0;
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

/* A worker that held trials before the restart said hello without re-attaching to them: it
 * lost them (it restarted too, or dropped them), so they go back to the queue now rather than
 * at the end of the grace. */
static void orphans_of_returning_worker(cv_sched_t *s, const cv_sched_worker_t *w, double now) {
    for (size_t i = 0; i < s->n_orphans; i++) {
        trial_t *t = s->orphans[i].t;
        if (!t || strcmp(s->orphans[i].worker, w->id)) continue;
        cv_log(s->cfg.log, CV_LOG_INFO, "worker %s came back without trial %lld, which it ran "
               "before the restart; it is queued again (interrupted, not counted as an attempt)",
               w->id, (long long)t->id);
        trial_interrupt(s, t, now, NULL);
    }
}

cv_sched_worker_t *cv_sched_worker_join(cv_sched_t *s, void *conn, const char *worker_id,
                                        const char *version, int threads, const char *host,
                                        const int64_t *lease_trials, const char (*leases)[33],
                                        int n_leases, int64_t *reattached, int *n_reattached,
                                        double now) {
    char err[CV_ERRLEN];
    *n_reattached = 0;
    account(s, now);
    cv_sched_worker_t *w = calloc(1, sizeof *w);
    if (!w) return NULL;
    w->conn = conn;
    w->last_seen = now;
    snprintf(w->id, sizeof w->id, "%s", worker_id);
    w->next = s->workers;
    if (s->workers) s->workers->prev = w;
    s->workers = w;
    if (group(s, err) ||
        checked(s, cv_store_worker_seen(s->cfg.store, worker_id, version, threads, host, now, err)))
        cv_log(s->cfg.log, CV_LOG_WARN, "worker %s: %s", worker_id, err);
    worker_load_quarantine(s, w, now);
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
        if (!t->worker) orphan_forget(s, t);
        t->worker = w;
        w->trial = t;
        reattached[(*n_reattached)++] = t->id;
        /* A stop decided before the restart may not have reached it: it is sent again. */
        if (t->stopped && push_decision(s, w, t->id, t->job->rungs[t->n_decided - 1], 1))
            cv_log(s->cfg.log, CV_LOG_ERROR, "trial %lld: out of memory", (long long)t->id);
        cv_log(s->cfg.log, CV_LOG_INFO, "worker %s re-attached to trial %lld", w->id,
               (long long)t->id);
    }
    orphans_of_returning_worker(s, w, now);
    return w;
}

/* Takes a running trial off its worker, recording the attempt as lost: back to the front of the
 * queue, or failed once it used its attempts. */
static void trial_release(cv_sched_t *s, trial_t *t, double now) {
    char err[CV_ERRLEN];
    job_t *job = t->job;
    int lost = t->attempts - t->interrupted >= s->cfg.max_attempts;
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
               t->attempts - t->interrupted);
        if (job_settle(s, job, now, err))
            cv_log(s->cfg.log, CV_LOG_ERROR, "job %lld: %s", (long long)job->id, err);
    } else {
        queue_push(job, t, 1);
    }
}

void cv_sched_worker_leave(cv_sched_t *s, cv_sched_worker_t *w, double now) {
    char err[CV_ERRLEN];
    if (!w) return;
    account(s, now);
    /* The store's last_seen was its hello: it becomes the time of its last message. */
    if (group(s, err) || checked(s, cv_store_worker_last_seen(s->cfg.store, w->id, w->last_seen,
                                                               err)) < 0)
        cv_log(s->cfg.log, CV_LOG_WARN, "worker %s: %s", w->id, err);
    for (size_t i = 0; i < s->n_acks; i++)
        if (s->acks[i].w == w) s->acks[i].w = NULL;
    for (size_t i = 0; i < s->n_decisions; i++)
        if (s->decisions[i].w == w) s->decisions[i].w = NULL;
    if (w->trial && s->detached) {
        /* The coordinator stops: the trial stays running under its lease in the store, for the
         * worker to re-attach to after the restart. */
        cv_log(s->cfg.log, CV_LOG_INFO, "worker %s disconnected at shutdown; trial %lld keeps "
               "its lease for a restart", w->id, (long long)w->trial->id);
        w->trial->worker = NULL;
        w->trial = NULL;
    } else if (w->trial) {
        cv_log(s->cfg.log, CV_LOG_WARN, "worker %s left while running trial %lld", w->id,
               (long long)w->trial->id);
        trial_release(s, w->trial, now);
    }
    if (w->prev) w->prev->next = w->next;
    else s->workers = w->next;
    if (w->next) w->next->prev = w->prev;
    if (s->rr && s->rr->running < 0) s->rr->running = 0;
    cv_evals_worker_left(s->evals, s, w); /* its evaluation, if any, goes to another worker */
    free(w);
}

void cv_sched_detach(cv_sched_t *s) {
    if (s) s->detached = 1;
}

/* The next job with a queued trial or one more to propose, and room under max_parallel,
 * round-robin over jobs. */
static job_t *next_job(cv_sched_t *s) {
    job_t *start = s->rr && s->rr->next ? s->rr->next : s->jobs, *j = start;
    if (!j) return NULL;
    do {
        int more = j->qhead || (!j->exhausted && j->n_trials < j->spec.max_trials);
        if (j->status == CV_STORE_JOB_RUNNING && more && !j->checking &&
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
        t->best_value = NAN;
        size_t n_at = 0;
        while (n_at < job->n_rungs && job->rungs[n_at] < t->epochs) n_at++;
        if (s->cfg.ops.send_trial(w->conn, t->id, job->id, token, text, job->files, job->rungs,
                                  n_at))
            rc = cv_errf(err, CV_EIO, "cannot send to worker %s", w->id);
    }
    free(text);
    return rc;
}

void cv_sched_dispatch(cv_sched_t *s, double now) {
    char err[CV_ERRLEN];
    account(s, now);
    for (cv_sched_worker_t *w = s->workers; w; w = w->next) {
        if (w->quarantined && now >= w->quarantined_until) worker_unquarantine(s, w, "ended");
        if (w->trial || w->quarantined || w->leaving) continue;
        /* A test-set evaluation goes before trials: a user waits for it (evaluation.h). */
        if (cv_evals_busy(s->evals, w) ||
            cv_evals_assign(s->evals, w, w->conn, w->id, s->cfg.ops.send_evaluate))
            continue;
        job_t *job;
        while ((job = next_job(s)) && !job->qhead) {
            int made = job_propose(s, job, now, err);
            if (made > 0) break;
            if (made < 0) {
                cv_log(s->cfg.log, CV_LOG_ERROR, "job %lld: cannot propose a trial: %s",
                       (long long)job->id, err);
                return;
            }
            if (job_settle(s, job, now, err)) /* exhausted: next_job passes it by now */
                cv_log(s->cfg.log, CV_LOG_ERROR, "job %lld: %s", (long long)job->id, err);
        }
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

void cv_sched_worker_seen(cv_sched_worker_t *w, double now) {
    if (w && now > w->last_seen) w->last_seen = now;
}

size_t cv_sched_workers_view(const cv_sched_t *s, cv_sched_worker_view_t *out, size_t cap) {
    size_t n = 0;
    for (const cv_sched_worker_t *w = s->workers; w; w = w->next, n++) {
        if (n >= cap) continue;
        out[n] = (cv_sched_worker_view_t){
            .id = w->id,
            .quarantined = w->quarantined,
            .trial_id = w->trial ? w->trial->id : 0,
            .job_id = w->trial ? w->trial->job->id : 0,
            .last_seen = w->last_seen,
        };
    }
    return n;
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

/* The pruner's turn after epoch p of running trial t: at a decision epoch the trial is judged
 * once (a trial that runs again after a lost lease gets the decision made the first time) and
 * the decision is stored in the open group, then sent to the worker after the commit. */
static int trial_judge(cv_sched_t *s, trial_t *t, int epoch, double value, double now,
                       char *err) {
    job_t *job = t->job;
    int k = 0;
    while ((size_t)k < job->n_rungs && job->rungs[k] < epoch) k++;
    if ((size_t)k >= job->n_rungs || job->rungs[k] != epoch || epoch >= t->epochs) return 0;
    int stop;
    if (k < t->n_decided) {
        stop = t->stopped && k == t->n_decided - 1;
    } else {
        if (k > t->n_decided) { /* an epoch went missing: the rungs it skipped go unjudged */
            for (int i = t->n_decided; i < k; i++) t->rung_value[i] = NAN;
        }
        stop = job->spec.pruner->decide(job->pruner, t->number, epoch, value);
        if (stop < 0) return cv_errf(err, stop, "pruner %s: out of memory",
                                     job->spec.pruner->name);
        cv_store_decision_t d = {t->id, t->number, epoch, value, stop};
        int rc = checked(s, cv_store_decision_add(s->cfg.store, job->id, &d, now, err));
        if (rc) return rc;
        t->rung_value[k] = value;
        t->n_decided = k + 1;
        t->stopped = stop;
        if (stop)
            cv_log(s->cfg.log, CV_LOG_INFO, "trial %lld pruned at epoch %d (%s %.4g)",
                   (long long)t->id, epoch, cv_objective_name(job->spec.objective), value);
    }
    return push_decision(s, t->worker, t->id, epoch, stop) ? cv_errf(err, CV_ENOMEM,
                                                                      "out of memory") : 0;
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
    if (rc == 0) rc = checked(s, cv_store_curve_add(s->cfg.store, t->id, lease, &p, 1, err));
    double v = t->job->spec.objective == CV_OBJECTIVE_DEV_COST ? p.dev_cost : p.dev_error;
    if (rc == 0 && isfinite(v) && !(v >= t->best_value)) t->best_value = v;
    if (rc == 0 && t->rung_value && isfinite(t->best_value))
        rc = trial_judge(s, t, p.epoch, t->best_value, cv_clock_wall(), err);
    return rc;
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

/* Quarantines worker w after failures failed trials of its own fault in a row, the last t with
 * error, for the configured time. Runs inside the open group. */
static int worker_quarantine(cv_sched_t *s, cv_sched_worker_t *w, int failures, const trial_t *t,
                             const char *error, double now, char *err) {
    char reason[CV_ERRLEN], until_text[64] = "until released";
    snprintf(reason, sizeof reason, "%d failed trials in a row; the last: trial %lld of job %lld: "
             "%s", failures, (long long)t->id, (long long)t->job->id,
             error ? error : "no reason given");
    double until = s->cfg.quarantine_seconds > 0 ? now + s->cfg.quarantine_seconds : INFINITY;
    int rc = checked(s, cv_store_worker_quarantine(s->cfg.store, w->id, reason, now,
                                                   isfinite(until) ? until : NAN, err));
    if (rc) return rc;
    w->quarantined = 1;
    w->quarantined_until = until;
    if (isfinite(until)) snprintf(until_text, sizeof until_text, "for %g s",
                                  s->cfg.quarantine_seconds);
    cv_log(s->cfg.log, CV_LOG_WARN, "worker %s quarantined %s after %s; it gets no trials "
           "meanwhile", w->id, until_text, reason);
    return 0;
}

/* Ends the quarantine of a connected worker (its time is up): it gets trials again and its count
 * of failures starts from 0. A store error is logged and leaves it quarantined. */
static void worker_unquarantine(cv_sched_t *s, cv_sched_worker_t *w, const char *how) {
    char err[CV_ERRLEN];
    int rc = group(s, err);
    if (rc == 0) rc = checked(s, cv_store_worker_release(s->cfg.store, w->id, err));
    if (rc < 0) {
        cv_log(s->cfg.log, CV_LOG_ERROR, "worker %s: %s", w->id, err);
        return;
    }
    w->quarantined = 0;
    w->quarantined_until = 0;
    cv_log(s->cfg.log, CV_LOG_INFO, "worker %s: quarantine %s; it gets trials again", w->id, how);
}

/* Loads a joining worker's quarantine from the store; one whose time ran out while the worker
 * was away is lifted. */
static void worker_load_quarantine(cv_sched_t *s, cv_sched_worker_t *w, double now) {
    char err[CV_ERRLEN];
    int quarantined = 0;
    double until = NAN;
    if (cv_store_worker_get(s->cfg.store, w->id, &quarantined, NULL, &until, err) < 0) {
        cv_log(s->cfg.log, CV_LOG_WARN, "worker %s: %s", w->id, err);
        return;
    }
    if (!quarantined) return;
    w->quarantined = 1;
    w->quarantined_until = isnan(until) ? INFINITY : until;
    if (now >= w->quarantined_until)
        worker_unquarantine(s, w, "ended while it was away");
    else
        cv_log(s->cfg.log, CV_LOG_WARN, "worker %s is quarantined: it gets no trials", w->id);
}

int cv_sched_worker_release(cv_sched_t *s, const char *worker_id, double now,
                            int *was_quarantined, char *err) {
    (void)now;
    int quarantined = 0;
    double until;
    int rc = cv_store_worker_get(s->cfg.store, worker_id, &quarantined, NULL, &until, err);
    if (rc) return rc;
    if (was_quarantined) *was_quarantined = quarantined;
    if ((rc = group(s, err)) || (rc = checked(s, cv_store_worker_release(s->cfg.store, worker_id,
                                                                        err))) ||
        (rc = commit(s, err)))
        return rc;
    for (cv_sched_worker_t *w = s->workers; w; w = w->next)
        if (!strcmp(w->id, worker_id)) {
            w->quarantined = 0;
            w->quarantined_until = 0;
        }
    if (quarantined)
        cv_log(s->cfg.log, CV_LOG_INFO, "worker %s released from quarantine; it gets trials "
               "again", worker_id);
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

int cv_sched_holds_lease(const cv_sched_t *s, const cv_sched_worker_t *w, int64_t trial_id,
                         const char *lease) {
    const trial_t *t = map_get(s, trial_id);
    return t && w && w->trial == t && t->status == CV_STORE_TRIAL_RUNNING &&
           strcmp(t->lease, lease) == 0;
}

/* A result for a trial not in memory: either a trial of a job that has ended and was unloaded
 * (a late or repeated result, refused as stale like any result under a lease that is no longer
 * current; the connection stays), or no trial at all (CV_EINVAL: a protocol violation). */
static int on_unloaded_result(cv_sched_t *s, cv_sched_worker_t *w, int64_t trial_id,
                              const char *lease, const char *model_path, char *err) {
    cv_store_trial_status_t status;
    int rc = cv_store_trial_status(s->cfg.store, trial_id, &status, err);
    if (rc == CV_STORE_NOT_FOUND)
        return cv_errf(err, CV_EINVAL, "result for unknown trial %lld", (long long)trial_id);
    if (rc) return rc;
    if (model_path) unlink(model_path);
    if (group(s, err) == 0 &&
        checked(s, cv_store_attempt_stale(s->cfg.store, trial_id, lease, err)) < 0)
        cv_log(s->cfg.log, CV_LOG_ERROR, "trial %lld: %s", (long long)trial_id, err);
    cv_log(s->cfg.log, CV_LOG_INFO, "worker %s: result of trial %lld refused: the trial is %s "
           "and its job has ended", w->id, (long long)trial_id,
           cv_store_trial_status_name(status));
    return s->cfg.ops.send_ack(w->conn, trial_id, 0) ? CV_EIO : 0;
}

int cv_sched_on_result(cv_sched_t *s, cv_sched_worker_t *w, int64_t trial_id,
                       const char *lease, const cJSON *result, const char *model_path,
                       double now, char *err) {
    trial_t *t = map_get(s, trial_id);
    if (!t) return on_unloaded_result(s, w, trial_id, lease, model_path, err);
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
         * the trial back: to the front of the queue, its attempt recorded as interrupted (which
         * uses none of its attempts, also after a restart), and that worker gets no more
         * trials. */
        if (model_path) unlink(model_path);
        cv_log(s->cfg.log, CV_LOG_INFO, "worker %s is stopping and gave trial %lld back", w->id,
               (long long)trial_id);
        trial_interrupt(s, t, now, "the worker was stopped before the trial ended");
        w->leaving = 1;
        return push_ack(s, w, trial_id) ? cv_errf(err, CV_ENOMEM, "out of memory") : 0;
    }
    cv_store_result_t r = {
        .status = !status || !strcmp(status, "completed") ? CV_STORE_TRIAL_COMPLETED
                  : !strcmp(status, "diverged")           ? CV_STORE_TRIAL_DIVERGED
                  : !strcmp(status, "pruned")             ? CV_STORE_TRIAL_PRUNED
                                                          : CV_STORE_TRIAL_FAILED,
        .dev_error = number_or_nan(result, "dev_error"),
        .dev_cost = number_or_nan(result, "dev_cost"),
        .train_error = number_or_nan(result, "train_error"),
        .train_cost = number_or_nan(result, "train_cost"),
        .train_cost_reg = number_or_nan(result, "train_cost_reg"),
        .best_epoch = int_or(result, "best_epoch", -1),
        .epochs_run = int_or(result, "epochs_run", -1),
        .examples_per_second = number_or_nan(result, "examples_per_second"),
        .n_params = int_or(result, "n_params", 0),
        .error = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(result, "error")),
    };
    /* A failure of the job's own making (result.fault "job") fails the job, not the worker. */
    const char *fault = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(result, "fault"));
    int job_fault = r.status == CV_STORE_TRIAL_FAILED && fault && !strcmp(fault, "job");
    const cJSON *diag = cJSON_GetObjectItemCaseSensitive(result, "diagnosis");
    r.diagnosis = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(diag, "name"));
    static const char *const verdicts[] = {"fine", "high_bias", "high_variance",
                                            "high_bias_and_variance", "learning_rate_too_high",
                                            "collapsed"};
    int known = 0;
    for (size_t i = 0; r.diagnosis && i < sizeof verdicts / sizeof *verdicts; i++)
        known |= !strcmp(r.diagnosis, verdicts[i]);
    if (!known) r.diagnosis = NULL; /* only the known verdicts are stored */
    char dest[PATH_MAX];
    int rc = 0;
    if (model_path) {
        if ((rc = keep_model(s, t, model_path, dest, sizeof dest, err))) return rc;
        r.model_path = dest;
    }
    if ((rc = group(s, err))) return rc;
    account(s, now);
    rc = checked(s, cv_store_put_result(s->cfg.store, t->id, lease, &r, now, err));
    if (rc < 0) return rc;
    /* A diverged trial is the hyperparameters' fault, and a job's fault the job's: neither
     * counts against the worker. */
    int failures = 0, quarantine = 0;
    if (job_fault)
        checked(s, cv_store_worker_count(s->cfg.store, w->id, NULL));
    else if (checked(s, cv_store_worker_outcome(s->cfg.store, w->id,
                                                r.status != CV_STORE_TRIAL_FAILED, &failures,
                                                NULL)) == 0 &&
             s->cfg.quarantine_after > 0 && failures >= s->cfg.quarantine_after &&
             !w->quarantined && worker_quarantine(s, w, failures, t, r.error, now, err) == 0)
        quarantine = 1;
    t->status = r.status;
    t->objective = r.status != CV_STORE_TRIAL_COMPLETED ? NAN
                   : job->spec.objective == CV_OBJECTIVE_DEV_COST ? r.dev_cost
                                                                  : r.dev_error;
    t->worker = NULL;
    t->lease[0] = '\0';
    w->trial = NULL;
    job->running--;
    job->open--;
    if ((rc = job_save_usage(s, job, 0, err))) return rc;
    if ((rc = push_ack(s, w, trial_id))) return cv_errf(err, rc, "out of memory");
    /* Before job_advance: the streak includes this trial, whose retry keeps its round open. */
    if (quarantine) retry_failed_streak(s, w);
    if (job_fault && job->status == CV_STORE_JOB_RUNNING) {
        char why[CV_ERRLEN];
        snprintf(why, sizeof why, "trial %lld failed: %s", (long long)t->id,
                 r.error ? r.error : "no reason given");
        cv_log(s->cfg.log, CV_LOG_WARN, "job %lld fails: the failure of trial %lld on worker %s "
               "is the job's own (its data, its spec or its size), not the worker's",
               (long long)job->id, (long long)t->id, w->id);
        return job_fail(s, job, why, now, err);
    }
    return job_settle(s, job, now, err);
}

int cv_sched_flush(cv_sched_t *s, double now) {
    (void)now;
    char err[CV_ERRLEN];
    if (s->broken) {
        if (s->n_acks || s->group_open)
            cv_log(s->cfg.log, CV_LOG_ERROR, "a store write failed; %zu results not "
                   "acknowledged, nothing more is committed", s->n_acks);
        s->n_acks = 0;
        s->n_decisions = 0;
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
        s->n_decisions = 0;
        s->broken = 1;
        return CV_EIO;
    }
    for (size_t i = 0; i < s->n_decisions; i++) {
        const pending_decision_t *d = &s->decisions[i];
        if (d->w && d->w->trial && d->w->trial->id == d->trial_id)
            s->cfg.ops.send_decision(d->w->conn, d->trial_id, d->epoch, d->stop);
    }
    s->n_decisions = 0;
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
    unload_finished(s);
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

/* ---- creation and recovery -------------------------------------------------------------- */

typedef struct {
    cv_sched_t *s;
    job_t *job;
    char *err;
} resume_ctx_t;

/* A trial the store has running since before the restart waits for its worker (by worker_id)
 * to claim its lease. */
static int orphan_add(cv_sched_t *s, trial_t *t, const char *lease, const char *worker_id) {
    orphan_t *o = realloc(s->orphans, (s->n_orphans + 1) * sizeof *o);
    if (!o) return CV_ENOMEM;
    s->orphans = o;
    o[s->n_orphans].t = t;
    snprintf(o[s->n_orphans].worker, sizeof o->worker, "%s", worker_id ? worker_id : "");
    s->n_orphans++;
    snprintf(t->lease, sizeof t->lease, "%s", lease ? lease : "");
    t->job->running++;
    return 0;
}

static int resume_trial(void *ctx, const cv_store_trial_row_t *row) {
    resume_ctx_t *c = ctx;
    job_t *job = c->job;
    trial_t *t = trial_new(c->s, job, row->id, row->number, row->round, row->params);
    if (!t || keys_add(job, fnv1a(row->config_key)) < 0) return CV_ENOMEM;
    t->status = row->status;
    t->attempts = row->attempts;
    t->interrupted = row->interrupted;
    t->objective = row->status == CV_STORE_TRIAL_COMPLETED ? row->objective : NAN;
    if (row->status == CV_STORE_TRIAL_RUNNING && job->n_rungs) {
        double dev_error, dev_cost;
        int rc = cv_store_trial_curve_best(c->s->cfg.store, t->id, &dev_error, &dev_cost, c->err);
        if (rc) return rc;
        t->best_value = job->spec.objective == CV_OBJECTIVE_DEV_COST ? dev_cost : dev_error;
    }
    if (row->status == CV_STORE_TRIAL_QUEUED) queue_push(job, t, 0);
    if (row->status == CV_STORE_TRIAL_RUNNING && orphan_add(c->s, t, row->lease, row->worker_id))
        return cv_errf(c->err, CV_ENOMEM, "out of memory for trial %lld, which was running",
                       (long long)row->id);
    if (!is_final(row->status)) job->open++;
    return 0;
}

/* Gives a resumed job's pruner the decisions it made before, in their order, and each trial
 * what was decided about it: nothing is judged twice. */
static int resume_decision(void *ctx, const cv_store_decision_t *d) {
    resume_ctx_t *c = ctx;
    job_t *job = c->job;
    int rc = job->spec.pruner->replay(job->pruner, d->number, d->epoch, d->value, d->stopped);
    if (rc) return cv_errf(c->err, rc, "job %lld: pruner %s cannot replay its decisions",
                           (long long)job->id, job->spec.pruner->name);
    trial_t *t = map_get(c->s, d->trial_id);
    int k = 0;
    while ((size_t)k < job->n_rungs && job->rungs[k] != d->epoch) k++;
    if (!t || !t->rung_value || (size_t)k >= job->n_rungs) return 0;
    for (int i = t->n_decided; i < k; i++) t->rung_value[i] = NAN;
    t->rung_value[k] = d->value;
    if (k + 1 > t->n_decided) t->n_decided = k + 1;
    t->stopped |= d->stopped;
    return 0;
}

/* Loads a job's trials and its pruner's decisions from the store. */
static int job_load(resume_ctx_t *ctx) {
    int rc = cv_store_trials_each(ctx->s->cfg.store, ctx->job->id, resume_trial, ctx, ctx->err);
    if (rc == 0 && ctx->job->n_rungs)
        rc = cv_store_decisions_each(ctx->s->cfg.store, ctx->job->id, resume_decision, ctx,
                                     ctx->err);
    return rc;
}

/* A resumed job's files were checked: it gets them and may run, or fails when they are gone or
 * changed into something unusable. */
static void after_resume_check(cv_dataset_check_t *check, void *userdata) {
    resume_check_t *rc_ = userdata;
    cv_sched_t *s = rc_->s;
    for (resume_check_t **p = &s->checks; *p; p = &(*p)->next)
        if (*p == rc_) {
            *p = rc_->next;
            break;
        }
    job_t *job = job_find(s, rc_->job_id);
    char err[CV_ERRLEN], why[CV_ERRLEN], text[CV_ERRLEN + 64];
    int rc = cv_dataset_check_status(check, why);
    if (job && job->status == CV_STORE_JOB_RUNNING && rc != CV_ESTOPPED) {
        if (rc == 0 && (rc = job_apply_files(s, job, check, why)) == 0) {
            free(job->fixed);
            job->fixed = NULL;
            rc = job_fixed_text(job, why);
        }
        if (rc == 0) {
            job->checking = 0;
            cv_log(s->cfg.log, CV_LOG_INFO, "job %lld: datasets checked; it runs",
                   (long long)job->id);
        } else {
            snprintf(text, sizeof text, "its datasets cannot be used after a restart: %s", why);
            cv_log(s->cfg.log, CV_LOG_ERROR, "job %lld: %s", (long long)job->id, text);
            if (job_fail(s, job, text, cv_clock_wall(), err) || commit(s, err))
                cv_log(s->cfg.log, CV_LOG_ERROR, "job %lld: %s", (long long)job->id, err);
        }
    }
    cv_dataset_check_destroy(check);
    free(rc_);
}

/* Checks a resumed job's dataset files: on the thread pool when the scheduler has a loop (the
 * job waits, job->checking, until the check started by start_resume_checks ends), else here. */
static int resume_check_files(cv_sched_t *s, job_t *job, char *err) {
    cv_dataset_check_t *check = NULL;
    int rc = job_new_check(s, job->spec.trial, &check, err);
    if (rc) return rc;
    resume_check_t *rc_ = s->cfg.loop ? calloc(1, sizeof *rc_) : NULL;
    if (rc_) {
        *rc_ = (resume_check_t){.s = s, .job_id = job->id, .check = check, .next = s->checks};
        s->checks = rc_;
        job->checking = 1;
        return 0;
    }
    cv_dataset_check_run(check);
    rc = cv_dataset_check_status(check, err);
    if (rc == 0) rc = job_apply_files(s, job, check, err);
    cv_dataset_check_destroy(check);
    return rc;
}

/* Starts the checks resume_check_files prepared, once the scheduler exists for good; one that
 * cannot be queued runs here. */
static void start_resume_checks(cv_sched_t *s) {
    resume_check_t *next;
    for (resume_check_t *c = s->checks; c; c = next) {
        next = c->next;
        if (cv_dataset_check_start(c->check, s->cfg.loop, after_resume_check, c) != 0) {
            cv_dataset_check_run(c->check);
            after_resume_check(c->check, c);
        }
    }
}

int cv_sched_idle(const cv_sched_t *s) {
    return s->checks == NULL && s->removals == 0;
}

void cv_sched_stop_checks(cv_sched_t *s) {
    for (resume_check_t *c = s->checks; c; c = c->next) cv_dataset_check_cancel(c->check);
}

static int resume_job(void *ctx, const cv_store_job_row_t *row) {
    resume_ctx_t *c = ctx;
    cv_sched_t *s = c->s;
    job_t *job = calloc(1, sizeof *job);
    if (!job) return cv_errf(c->err, CV_ENOMEM, "out of memory");
    cv_job_spec_init(&job->spec);
    job->id = row->id;
    int rc = cv_job_spec_parse(&job->spec, row->spec, strlen(row->spec), c->err);
    if (rc == 0) rc = job_init_search(job, c->err);
    if (rc == 0) rc = resume_check_files(s, job, c->err);
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
    job->busy_seconds = row->busy_seconds;
    job->available_seconds = row->available_seconds;
    job->accounted_at = cv_clock_wall();
    job_link(s, job);
    return 0;
}

/* ---- extending a finished job ----------------------------------------------------------- */

/* What cv_sched_extend reads of the job from the store. */
typedef struct {
    int64_t id;
    cv_store_job_status_t status;
    int round;
    double created_at;
    double finished_at;
    char *spec;             /* owned */
    char *region;           /* owned, may be NULL */
    cJSON *sizes;           /* the sizes of its rounds, in order (owned) */
    int64_t n_trials;       /* their sum: every trial the job has */
    int exhausted;          /* 1: a round found no new configuration */
    double busy_seconds, available_seconds; /* its worker usage so far */
    char *err;
} extend_row_t;

static int extend_on_job(void *ctx, const cv_store_job_row_t *row) {
    extend_row_t *e = ctx;
    e->status = row->status, e->round = row->round, e->created_at = row->created_at;
    e->busy_seconds = row->busy_seconds, e->available_seconds = row->available_seconds;
    if (!(e->spec = strdup(row->spec)) || (row->region && !(e->region = strdup(row->region))))
        return cv_errf(e->err, CV_ENOMEM, "out of memory");
    return 0;
}

static int extend_on_round(void *ctx, const cv_store_round_row_t *row) {
    extend_row_t *e = ctx;
    if (!cJSON_AddItemToArray(e->sizes, cJSON_CreateNumber(row->size)))
        return cv_errf(e->err, CV_ENOMEM, "out of memory");
    e->n_trials += row->size;
    e->exhausted |= row->size == 0;
    return 0;
}

/* The spec the extended job runs: budget.max_trials is max_trials, refine.rounds the trial
 * counts of the rounds it ran followed by the new round, and a time budget, if any, gives the
 * job as much time again from now. Caller frees the text. */
static int extend_spec(const extend_row_t *e, int64_t max_trials, double now, char **out,
                       char *err) {
    cJSON *spec = cJSON_Parse(e->spec), *sizes = cJSON_Duplicate(e->sizes, 1);
    int rc = 0;
    if (!spec || !sizes) {
        rc = cv_errf(err, CV_EFORMAT, "job %lld: its stored spec cannot be read", (long long)e->id);
        goto done;
    }
    cJSON *budget = cJSON_GetObjectItemCaseSensitive(spec, "budget");
    cJSON *refine = cJSON_GetObjectItemCaseSensitive(spec, "refine");
    if (!cJSON_IsObject(budget)) budget = cJSON_AddObjectToObject(spec, "budget");
    if (!cJSON_IsObject(refine)) refine = cJSON_AddObjectToObject(spec, "refine");
    cJSON *seconds = budget ? cJSON_GetObjectItemCaseSensitive(budget, "max_seconds") : NULL;
    if (!budget || !refine ||
        !cJSON_AddItemToArray(sizes, cJSON_CreateNumber((double)(max_trials - e->n_trials)))) {
        rc = cv_errf(err, CV_ENOMEM, "out of memory");
        goto done;
    }
    cJSON_DeleteItemFromObjectCaseSensitive(refine, "rounds");
    cJSON_DeleteItemFromObjectCaseSensitive(budget, "max_trials");
    cJSON_AddItemToObject(refine, "rounds", sizes);
    sizes = NULL;
    if (!cJSON_AddNumberToObject(budget, "max_trials", (double)max_trials)) {
        rc = cv_errf(err, CV_ENOMEM, "out of memory");
        goto done;
    }
    if (cJSON_IsNumber(seconds) && seconds->valuedouble > 0)
        cJSON_SetNumberValue(seconds, now - e->created_at + seconds->valuedouble);
    if (!(*out = cJSON_PrintUnformatted(spec))) rc = cv_errf(err, CV_ENOMEM, "out of memory");
done:
    cJSON_Delete(sizes);
    cJSON_Delete(spec);
    return rc;
}

/* Builds the in-memory job of an extended spec and its finished trials, as resume_job does. */
static int extend_load(cv_sched_t *s, const extend_row_t *e, const char *spec, job_t **out,
                       char *err) {
    job_t *job = calloc(1, sizeof *job);
    if (!job) return cv_errf(err, CV_ENOMEM, "out of memory");
    cv_job_spec_init(&job->spec);
    job->id = e->id;
    int rc = cv_job_spec_parse(&job->spec, spec, strlen(spec), err);
    if (rc == 0) rc = job_init_search(job, err);
    if (rc == 0) rc = job_fixed_text(job, err);
    cJSON *region = e->region ? cJSON_Parse(e->region) : NULL;
    job->region = job->spec.space;
    if (rc == 0 && region)
        rc = cv_space_region_from_json(&job->spec.space, region, &job->region, err);
    cJSON_Delete(region);
    job->status = CV_STORE_JOB_RUNNING;
    job->round = e->round;
    job->created_at = e->created_at;
    job->busy_seconds = e->busy_seconds;
    job->available_seconds = e->available_seconds;
    job->accounted_at = cv_clock_wall();
    resume_ctx_t ctx = {s, job, err};
    if (rc == 0) rc = job_load(&ctx);
    if (rc == 0 && (job->open || job->running || job->qhead))
        rc = cv_errf(err, CV_EFORMAT, "job %lld has unfinished trials", (long long)job->id);
    if (rc) {
        job_unmap(s, job);
        job_free(job);
        return rc;
    }
    *out = job;
    return 0;
}

int cv_sched_extend(cv_sched_t *s, int64_t job_id, int64_t max_trials, double now, int *round,
                    char *err) {
    job_t *job = job_find(s, job_id);
    if (job && job->status == CV_STORE_JOB_RUNNING)
        return cv_errf(err, CV_STORE_STALE, "job %lld is running", (long long)job_id);
    extend_row_t e = {.id = job_id, .sizes = cJSON_CreateArray(), .err = err};
    char *spec = NULL;
    int rc = e.sizes ? 0 : cv_errf(err, CV_ENOMEM, "out of memory");
    /* Earlier writes first (their acks wait for the flush); then a job that ended since the
     * last flush leaves memory, to come back from the store like any other. */
    if (rc == 0) rc = commit(s, err);
    if (rc) goto done;
    unload_finished(s);
    rc = cv_store_job_visit(s->cfg.store, job_id, extend_on_job, &e, err);
    if (rc) goto done;
    if (e.status != CV_STORE_JOB_COMPLETED) {
        rc = cv_errf(err, CV_STORE_STALE, "job %lld %s; only a completed job can be extended",
                     (long long)job_id, e.status == CV_STORE_JOB_CANCELLED ? "was cancelled"
                                        : e.status == CV_STORE_JOB_FAILED ? "failed"
                                                                          : "is running");
        goto done;
    }
    if ((rc = cv_store_rounds_each(s->cfg.store, job_id, extend_on_round, &e, err))) goto done;
    if (max_trials <= e.n_trials) {
        rc = cv_errf(err, CV_EINVAL, "max_trials: must be greater than the %lld trials job %lld "
                     "has, got %lld", (long long)e.n_trials, (long long)job_id,
                     (long long)max_trials);
        goto done;
    }
    if (e.exhausted) {
        rc = cv_errf(err, CV_STORE_STALE, "job %lld has exhausted its search space",
                     (long long)job_id);
        goto done;
    }
    if (cJSON_GetArraySize(e.sizes) >= CV_JOB_MAX_ROUNDS) {
        rc = cv_errf(err, CV_STORE_STALE, "job %lld already ran %d rounds, the most a job may "
                     "have", (long long)job_id, CV_JOB_MAX_ROUNDS);
        goto done;
    }
    if ((rc = extend_spec(&e, max_trials, now, &spec, err))) goto done;
    job = NULL;
    if ((rc = extend_load(s, &e, spec, &job, err))) goto done;
    if ((rc = group(s, err)) ||
        (rc = checked(s, cv_store_job_set_spec(s->cfg.store, job_id, spec, err))) ||
        (rc = checked(s, cv_store_job_set_status(s->cfg.store, job_id, CV_STORE_JOB_RUNNING,
                                                 NULL, now, err))))
        goto unload;
    job_link(s, job);
    /* Its next proposal begins the new round, refined around the best of all finished trials. */
    if ((rc = commit(s, err))) goto done; /* broken */
    *round = (int)job->spec.n_rounds - 1;
    cv_log(s->cfg.log, CV_LOG_INFO, "job %lld extended to %lld trials: round %d samples %u",
           (long long)job_id, (long long)max_trials, *round + 1,
           job->spec.rounds[job->spec.n_rounds - 1]);
    /* Its datasets are checked again, as after a restart: no trial is leased until then. */
    if (job->status == CV_STORE_JOB_RUNNING) {
        char why[CV_ERRLEN];
        int check = resume_check_files(s, job, why);
        if (check == 0 && job->checking) {
            resume_check_t *c = s->checks;
            if (cv_dataset_check_start(c->check, s->cfg.loop, after_resume_check, c) != 0) {
                cv_dataset_check_run(c->check);
                after_resume_check(c->check, c);
            }
        } else if (check) {
            char text[CV_ERRLEN + 64];
            snprintf(text, sizeof text, "its datasets cannot be used: %s", why);
            if (job_fail(s, job, text, now, err) || commit(s, err))
                cv_log(s->cfg.log, CV_LOG_ERROR, "job %lld: %s", (long long)job_id, err);
        }
    }
    goto done;
unload:
    s->group_open = 0;
    cv_store_rollback(s->cfg.store, NULL);
    job_unmap(s, job);
    job_free(job);
done:
    cJSON_free(spec);
    cJSON_Delete(e.sizes);
    free(e.spec);
    free(e.region);
    return rc;
}

int cv_sched_create(cv_sched_t **out, const cv_sched_config_t *config, double now, char *err) {
    *out = NULL;
    cv_sched_t *s = calloc(1, sizeof *s);
    if (!s) return cv_errf(err, CV_ENOMEM, "out of memory");
    s->cfg = *config;
    if (cv_evals_create(&s->evals, s->cfg.log, err)) {
        free(s);
        return CV_ENOMEM;
    }
    if (s->cfg.max_attempts < 1) s->cfg.max_attempts = 3;
    if (s->cfg.quarantine_after == 0) s->cfg.quarantine_after = 3;
    uint64_t seed;
    if (getrandom(&seed, sizeof seed, 0) != (ssize_t)sizeof seed) seed = (uint64_t)getpid() ^ (uint64_t)now;
    cv_rng_seed(&s->lease_rng, seed);
    /* Without a grace, the trials that were running go back to the queue before loading. */
    int64_t requeued = 0;
    int rc = s->cfg.reattach_seconds > 0 ? 0 : cv_store_recover(s->cfg.store, &requeued, err);
    s->reattach_until = now + (s->cfg.reattach_seconds > 0 ? s->cfg.reattach_seconds : 0);
    resume_ctx_t ctx = {s, NULL, err};
    if (rc == 0) rc = cv_store_jobs_each(s->cfg.store, 1, resume_job, &ctx, err);
    /* A job that ends here stays in the list until unload_finished, after the commit. */
    for (job_t *job = s->jobs; rc == 0 && job; job = job->next) {
        ctx.job = job;
        rc = job_load(&ctx);
        job->accounted_at = now;
        if (rc == 0) rc = job_settle(s, job, now, err);
        if (rc == 0 && s->cfg.log)
            cv_log(s->cfg.log, CV_LOG_INFO, "job %lld resumed in round %d of %zu: %zu trials, "
                   "%d open, %d running", (long long)job->id, job->round + 1, job->spec.n_rounds,
                   job->n_trials, job->open, job->running);
    }
    if (rc == 0) rc = commit(s, err);
    if (rc) {
        cv_sched_destroy(s);
        return rc;
    }
    unload_finished(s);
    if (requeued && s->cfg.log)
        cv_log(s->cfg.log, CV_LOG_INFO, "%lld trials that were running are queued again "
               "(interrupted, not counted as attempts)", (long long)requeued);
    if (s->n_orphans && s->cfg.log)
        cv_log(s->cfg.log, CV_LOG_INFO, "%zu trials that were running keep their leases for "
               "%g s, waiting for their workers to re-attach", s->n_orphans,
               s->cfg.reattach_seconds);
    start_resume_checks(s);
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
    while (s->checks) { /* only checks never started: the caller waits for cv_sched_idle */
        resume_check_t *next = s->checks->next;
        cv_dataset_check_destroy(s->checks->check);
        free(s->checks);
        s->checks = next;
    }
    for (size_t i = 0; i < s->n_datasets; i++) free(s->datasets[i].path);
    free(s->datasets);
    free(s->orphans);
    free(s->map);
    free(s->acks);
    free(s->decisions);
    cv_evals_destroy(s->evals);
    free(s);
}
