/* The scheduler's private state, shared by its files (server/scheduler.c and server/sched_*.c)
 * and included by them only: the in-memory job, trial and worker records, the scheduler itself,
 * and the functions one of its files offers the others. See scheduler.h for the model; every
 * function here runs on the loop thread. */

#ifndef CV_SCHEDULER_INTERNAL_H
#define CV_SCHEDULER_INTERNAL_H

#include "common/hash.h"
#include "common/rng.h"
#include "server/evaluation.h"
#include "server/job_spec.h"
#include "server/scheduler.h"
#include "server/search.h"
#include "common/space.h"

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
    cv_msg_file_t files[CV_MSG_FILES_MAX]; /* the dataset files sent with every trial */
    size_t n_files;
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
    void *conn;              /* the transport's handle; NULL for an ask lease */
    char id[72];             /* the worker's id (at most 64 bytes), or "ask:<client>" */
    trial_t *trial;          /* the trial it runs, or NULL when idle */
    int quarantined;         /* 1: gets no trials (too many failures in a row) */
    double last_seen;        /* wall-clock seconds of its last message (hello included) */
    double quarantined_until; /* wall-clock seconds when the quarantine ends; INFINITY: when
                                 released */
    int leaving;             /* 1: gave its trial back with a `stopped` result; gets no trials */
    char trainers[CV_MSG_TRAINERS_MAX][CV_MSG_TRAINER_MAX + 1]; /* hello.trainers: the external
                                                                   trainers it offers */
    size_t n_trainers;
    /* An ask lease (sched_ask.c) is a slot of its own, on s->asks, never on s->workers: the
     * HTTP client holding trial under its lease. Nothing is sent to it (no ops); its answers
     * wait for the commit in s->ask_replies. Freed at the flush after its trial is gone. */
    int ask;                 /* 1: an ask lease, not a connected worker */
    double expires;          /* ask: wall seconds at which the lease is lost unless renewed */
    int last_epoch;          /* ask: the highest epoch reported under the lease */
    int best_epoch;          /* ask: the reported epoch of the best objective, 0 before one */
    cv_sched_worker_t *next, *prev;
};

/* An answer to an ask client, given once what it acknowledges is committed. */
/* What waits for a commit carries the commit's number (seq) once that commit is made (0 until
 * then), and goes once that commit is durable (sched_commit.c). */
typedef struct {
    cv_sched_ask_done_fn done;
    void *ctx;
    int stop;                /* a report's decision */
    uint64_t seq;
} ask_reply_t;

typedef struct {
    cv_sched_worker_t *w;    /* NULL once the worker left */
    int64_t trial_id;
    double arrived;          /* cv_clock_monotonic() when the result arrived */
    uint64_t seq;
} pending_ack_t;

/* A pruner's decision, sent to the trial's worker once it is committed. */
typedef struct {
    cv_sched_worker_t *w;    /* NULL once the worker left */
    int64_t trial_id;
    int epoch;
    int stop;
    uint64_t seq;
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
    /* Commits are numbered from 2 (1 stands for what the store held at start-up). With
     * cfg.deferred_sync a commit is durable once a cv_store_sync that started after it ended
     * (sync_work); without, at once. */
    uint64_t commit_seq;     /* the number of the last commit */
    uint64_t durable_seq;    /* the number of the last commit known to be on disk */
    int syncs;               /* syncs of the WAL in flight on the loop's thread pool */
    uint64_t sync_upto;      /* the last commit a sync started so far covers */
    struct sched_sync *checkpoint; /* the checkpoint in flight there, or NULL */
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
    double latency_sum;      /* seconds, over every committed result */
    uint64_t bytes_served;   /* dataset and model bytes sent to workers */
    job_t *rr;               /* round-robin cursor for dispatch */
    resume_check_t *checks;  /* dataset checks of resumed jobs in flight */
    int broken;              /* 1 after a failed write or commit: nothing is written or
                              * acknowledged any more (sched_break) */
    int group_lost;          /* 1: the group open when it broke is not yet reported */
    orphan_t *orphans;       /* trials running since before start-up, without a worker */
    size_t n_orphans;        /* entries (some NULL); the array goes once the grace is over */
    double reattach_until;   /* wall seconds: orphans wait for their workers until then */
    int detached;            /* cv_sched_detach: leaving workers keep their leases */
    size_t n_finished;       /* jobs that ended and wait for sched_unload_finished */
    int removals;            /* model directories of deleted jobs being removed */
    cv_evals_t *evals;       /* test-set evaluations waiting for or run by workers */
    cv_sched_worker_t *asks; /* ask leases (sched_ask.c), newest first */
    ask_reply_t *ask_replies; /* answers waiting for the next commit */
    size_t n_ask_replies, ask_replies_cap;
};

/* Spreads a key over the slots of an open-addressing table (a 64-bit finalizer). */
static inline uint64_t mix64(uint64_t x) {
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdULL;
    x ^= x >> 33;
    x *= 0xc4ceb9fe1a85ec53ULL;
    return x ^ (x >> 33);
}

/* The hash of a configuration key in a job's key set (FNV-1a); never 0. */
static inline uint64_t fnv1a(const char *s) {
    uint64_t h = 0xcbf29ce484222325ULL;
    for (; *s; s++) h = (h ^ (unsigned char)*s) * 0x100000001b3ULL;
    return h ? h : 1; /* 0 marks an empty slot */
}

/* 1 for a final status: neither queued nor running. */
static inline int is_final(cv_store_trial_status_t st) {
    return st != CV_STORE_TRIAL_QUEUED && st != CV_STORE_TRIAL_RUNNING;
}

/* What the store visitors that load a job (sched_job_load) work with. */
typedef struct {
    cv_sched_t *s;
    job_t *job; /* the job being loaded */
    char *err;  /* the caller's reason buffer */
    double now; /* wall seconds of the load: an ask lease found running lasts from then */
} resume_ctx_t;

/* ---- shared between the scheduler files ------------------------------------------------------ */

/* sched_maps.c: the trial map, the key set and the job queue */
int sched_map_put(cv_sched_t *s, trial_t *t);
trial_t *sched_map_get(const cv_sched_t *s, int64_t id);
void sched_map_del(cv_sched_t *s, const trial_t *t);
int sched_keys_add(job_t *job, uint64_t h);
void sched_queue_push(job_t *job, trial_t *t, int front);
trial_t *sched_queue_pop(job_t *job);
void sched_job_unmap(cv_sched_t *s, job_t *job);

/* sched_commit.c: the write group, group commit, pending acks and decisions */
int sched_group(cv_sched_t *s, char *err);
int sched_commit(cv_sched_t *s, char *err);
int sched_checked(cv_sched_t *s, int rc);
void sched_break(cv_sched_t *s); /* memory and disk disagree: freeze the store, write no more */
void sched_forget_worker(cv_sched_t *s, const cv_sched_worker_t *w); /* in what waits for a
                                                                        commit: w is gone */
int sched_push_decision(cv_sched_t *s, cv_sched_worker_t *w, int64_t trial_id, int epoch, int stop);
int sched_push_ack(cv_sched_t *s, cv_sched_worker_t *w, int64_t trial_id);
int sched_push_reply(cv_sched_t *s, cv_sched_ask_done_fn done, void *ctx, int stop); /* an
                                                        answer for after the commit's sync */

/* sched_nudges.c: sends trial t's nudges to its worker, all of them (with the epochs the
 * applied ones took effect at) for a fresh lease, else the unapplied ones */
void sched_nudges_send(cv_sched_t *s, const trial_t *t, int all);

/* scheduler.c: what a parsed spec plans, as the store keeps it (the names are static strings
 * of the sampler's and pruner's tables, valid after spec is finished) */
cv_store_job_plan_t sched_job_plan(const cv_job_spec_t *spec);

/* sched_rounds.c: rounds, trial specs and proposals */
int sched_job_fixed_text(job_t *job, char *err);
char *sched_trial_spec_text(const job_t *job, const char *params);
int sched_round_begin(cv_sched_t *s, job_t *job, int r, double now, char *err);
int sched_job_propose(cv_sched_t *s, job_t *job, double now, char *err);
int sched_job_init_search(job_t *job, char *err);

/* sched_leases.c: workers, leases and orphans */
void sched_orphan_forget(cv_sched_t *s, const trial_t *t);
void sched_trial_interrupt(cv_sched_t *s, trial_t *t, double now, const char *why);
void sched_orphans_expire(cv_sched_t *s, double now);
void sched_trial_release(cv_sched_t *s, trial_t *t, double now);
int sched_job_fill(cv_sched_t *s, job_t *job, double now, char *err);
int sched_lease(cv_sched_t *s, cv_sched_worker_t *w, trial_t *t, double now, char *err);

/* sched_ask.c: ask leases of HTTP clients */
int sched_ask_restore(cv_sched_t *s, trial_t *t, const char *lease, const char *worker_id,
                      double now);
void sched_ask_expire(cv_sched_t *s, double now);
void sched_ask_flush(cv_sched_t *s, int committed, uint64_t upto); /* answers up to commit
                                                                      upto, or all as failed */
void sched_ask_free_all(cv_sched_t *s);

/* sched_files.c: dataset files and model files */
int sched_job_apply_files(cv_sched_t *s, job_t *job, const cv_dataset_check_t *check, char *err);
int sched_job_new_check(const cv_sched_t *s, const cv_job_spec_t *spec, cv_dataset_check_t **check,
                        char *err);
void sched_remove_models(cv_sched_t *s, int64_t job_id);
int sched_keep_model(cv_sched_t *s, const trial_t *t, const char *tmp, char *dest, size_t cap,
                     char *err);

/* sched_quarantine.c: quarantine of failing workers */
int sched_worker_quarantine(cv_sched_t *s, cv_sched_worker_t *w, int failures, const trial_t *t,
                            const char *error, double now, char *err);
void sched_worker_unquarantine(cv_sched_t *s, cv_sched_worker_t *w, const char *how);
void sched_worker_load_quarantine(cv_sched_t *s, cv_sched_worker_t *w, double now);
void sched_retry_failed_streak(cv_sched_t *s, const cv_sched_worker_t *w);

/* sched_recovery.c: creation, restart recovery and resumed jobs' dataset checks */
int sched_job_load(resume_ctx_t *ctx);
void sched_after_resume_check(cv_dataset_check_t *check, void *userdata);
int sched_resume_check_files(cv_sched_t *s, job_t *job, char *err);

/* scheduler.c: job lifecycle and worker usage */
void sched_job_free(job_t *job);
trial_t *sched_trial_new(cv_sched_t *s, job_t *job, int64_t id, int number, int round,
                         const char *params);
int sched_job_settle(cv_sched_t *s, job_t *job, double now, char *err);
job_t *sched_job_find(const cv_sched_t *s, int64_t id);
void sched_job_link(cv_sched_t *s, job_t *job);
void sched_unload_finished(cv_sched_t *s);
int sched_job_fail(cv_sched_t *s, job_t *job, const char *why, double now, char *err);
void sched_account(cv_sched_t *s, double now);
int sched_job_save_usage(cv_sched_t *s, job_t *job, int final, char *err);

#endif
