/* The scheduler's durable write path: the open write group every state change goes into, the
 * group commit (cv_sched_flush), the sync that makes it durable off the loop thread when the
 * store defers it, and the acknowledgements and pruner decisions that wait for it,
 * the histogram of result-to-commit latencies and the counters and state cv_sched_stats reports. */

#include "server/scheduler_internal.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <uv.h>

#include "common/clock.h"
#include "common/err.h"

int sched_group(cv_sched_t *s, char *err) {
    if (s->broken)
        return cv_errf(err, CV_EIO, "an earlier store write failed; nothing more is written "
                       "until the coordinator restarts");
    if (s->group_open) return 0;
    int rc = cv_store_begin(s->cfg.store, err);
    if (rc == 0) s->group_open = 1;
    return rc;
}

/* Gives what waits for a commit and has no commit number yet (the tail of each list) seq. */
static void number_waiting(cv_sched_t *s, uint64_t seq) {
    for (size_t i = s->n_acks; i > 0 && !s->acks[i - 1].seq; i--) s->acks[i - 1].seq = seq;
    for (size_t i = s->n_decisions; i > 0 && !s->decisions[i - 1].seq; i--)
        s->decisions[i - 1].seq = seq;
    for (size_t i = s->n_ask_replies; i > 0 && !s->ask_replies[i - 1].seq; i--)
        s->ask_replies[i - 1].seq = seq;
}

/* Commits the open group without waiting for the disk when cfg.deferred_sync; what waited for
 * it now waits for commit number s->commit_seq. */
static int group_commit(cv_sched_t *s, char *err) {
    if (!s->group_open) return 0;
    s->group_open = 0;
    int rc = cv_store_commit(s->cfg.store, err);
    if (rc) {
        cv_store_rollback(s->cfg.store, NULL);
        return rc;
    }
    number_waiting(s, ++s->commit_seq);
    if (!s->cfg.deferred_sync) s->durable_seq = s->commit_seq;
    return 0;
}

/* A commit outside the group commit (a submission, a cancel): its sync, with deferred_sync,
 * starts at the next flush, and its caller's answer waits for it (cv_sched_after_commit). */
int sched_commit(cv_sched_t *s, char *err) {
    return group_commit(s, err);
}

int sched_push_reply(cv_sched_t *s, cv_sched_ask_done_fn done, void *ctx, int stop) {
    if (s->n_ask_replies == s->ask_replies_cap) {
        size_t cap = s->ask_replies_cap ? 2 * s->ask_replies_cap : 16;
        ask_reply_t *r = realloc(s->ask_replies, cap * sizeof *r);
        if (!r) return CV_ENOMEM;
        s->ask_replies = r;
        s->ask_replies_cap = cap;
    }
    s->ask_replies[s->n_ask_replies++] = (ask_reply_t){done, ctx, stop, 0};
    return 0;
}

int cv_sched_after_commit(cv_sched_t *s, cv_sched_ask_done_fn done, void *ctx) {
    return sched_push_reply(s, done, ctx, 0);
}

int cv_sched_all_durable(const cv_sched_t *s) {
    return !s->broken && !s->group_open && s->commit_seq <= s->durable_seq;
}

/* Every store write goes through here. A write that failed inside the open group leaves the
 * disk behind the memory (the store undoes only that statement, or SQLite the whole group), so
 * the group is abandoned at once and the store frozen: no later write can commit on its own
 * (after SQLite's own rollback it would run in autocommit mode), nothing more is acknowledged,
 * the next flush fails and the daemon restarts from the store (crash-only). */
int sched_checked(cv_sched_t *s, int rc) {
    if (rc < 0) sched_break(s);
    return rc;
}

void sched_break(cv_sched_t *s) {
    if (s->broken) return;
    s->broken = 1;
    s->group_lost = s->group_open;
    s->group_open = 0;
    cv_store_freeze(s->cfg.store, NULL);
}

void sched_forget_worker(cv_sched_t *s, const cv_sched_worker_t *w) {
    for (size_t i = 0; i < s->n_acks; i++)
        if (s->acks[i].w == w) s->acks[i].w = NULL;
    for (size_t i = 0; i < s->n_decisions; i++)
        if (s->decisions[i].w == w) s->decisions[i].w = NULL;
}

int sched_push_decision(cv_sched_t *s, cv_sched_worker_t *w, int64_t trial_id, int epoch,
                        int stop) {
    if (s->n_decisions == s->decisions_cap) {
        size_t cap = s->decisions_cap ? 2 * s->decisions_cap : 16;
        pending_decision_t *d = realloc(s->decisions, cap * sizeof *d);
        if (!d) return CV_ENOMEM;
        s->decisions = d;
        s->decisions_cap = cap;
    }
    s->decisions[s->n_decisions++] = (pending_decision_t){w, trial_id, epoch, stop, 0};
    return 0;
}

int sched_push_ack(cv_sched_t *s, cv_sched_worker_t *w, int64_t trial_id) {
    if (s->n_acks == s->acks_cap) {
        size_t cap = s->acks_cap ? 2 * s->acks_cap : 64;
        pending_ack_t *a = realloc(s->acks, cap * sizeof *a);
        if (!a) return CV_ENOMEM;
        s->acks = a;
        s->acks_cap = cap;
    }
    s->acks[s->n_acks++] = (pending_ack_t){w, trial_id, cv_clock_monotonic(), 0};
    return 0;
}

/* Sends what waited for commits up to number upto (all of it once they are durable): the
 * pruner's decisions, the acknowledgements (timed from the result's arrival) and the ask
 * clients' answers. */
static void release(cv_sched_t *s, uint64_t upto) {
    size_t k = 0;
    for (; k < s->n_decisions && s->decisions[k].seq && s->decisions[k].seq <= upto; k++) {
        const pending_decision_t *d = &s->decisions[k];
        if (d->w && !d->w->ask && d->w->trial && d->w->trial->id == d->trial_id)
            s->cfg.ops.send_decision(d->w->conn, d->trial_id, d->epoch, d->stop);
    }
    if (k) memmove(s->decisions, s->decisions + k, (s->n_decisions - k) * sizeof *s->decisions);
    s->n_decisions -= k;
    size_t n = 0;
    while (n < s->n_acks && s->acks[n].seq && s->acks[n].seq <= upto) n++;
    double done = n ? cv_clock_monotonic() : 0;
    for (size_t i = 0; i < n; i++) {
        double lat = done - s->acks[i].arrived;
        int b = lat > 1e-6 ? (int)(4 * log2(lat * 1e6)) : 0;
        s->latency[b < LATENCY_BUCKETS ? b : LATENCY_BUCKETS - 1]++;
        if (lat > s->latency_max) s->latency_max = lat;
        s->latency_sum += lat;
        if (s->acks[i].w && !s->acks[i].w->ask) /* an ask client's answer is sched_ask_flush's */
            s->cfg.ops.send_ack(s->acks[i].w->conn, s->acks[i].trial_id, 1);
    }
    if (n) memmove(s->acks, s->acks + n, (s->n_acks - n) * sizeof *s->acks);
    s->n_acks -= n;
    s->results += n;
    s->commits += n > 0;
    sched_ask_flush(s, 1, upto); /* ask clients' answers */
}

/* Drops everything that waited for a commit: the store failed, nothing of it may be told. */
static void drop_waiting(cv_sched_t *s) {
    s->n_acks = 0;
    s->n_decisions = 0;
    s->group_lost = 0;
    sched_ask_flush(s, 0, UINT64_MAX);
}

/* ---- deferred sync: the WAL synced on the loop's thread pool ---------------------------- */

#define SYNCS_IN_FLIGHT 2 /* of the WAL on the thread pool at once (libuv's pool has 4 threads) */

typedef struct sched_sync {
    uv_work_t work;
    cv_sched_t *s;
    int checkpoint;        /* 1: a checkpoint; 0: a sync of the WAL */
    uint64_t upto;         /* a sync: the last commit made before it started */
    int rc;
    char err[CV_ERRLEN];
} sched_sync_t;

static void sync_work(uv_work_t *work) {
    sched_sync_t *y = work->data;
    y->rc = y->checkpoint ? cv_store_checkpoint(y->s->cfg.store, y->err)
                          : cv_store_sync(y->s->cfg.store, y->err);
}

static void sync_start(cv_sched_t *s);
static void checkpoint_done(uv_work_t *work, int status);

/* Starts a checkpoint on the thread pool when the WAL has grown enough and none is in flight;
 * it runs beside the syncs, so acknowledgements never wait for one. */
static void checkpoint_start(cv_sched_t *s) {
    if (s->checkpoint || !s->cfg.loop || !cv_store_checkpoint_due(s->cfg.store)) return;
    sched_sync_t *y = calloc(1, sizeof *y);
    if (!y) return; /* the next sync tries again */
    *y = (sched_sync_t){.s = s, .checkpoint = 1};
    y->work.data = y;
    s->checkpoint = y;
    if (uv_queue_work(s->cfg.loop, &y->work, sync_work, checkpoint_done)) {
        s->checkpoint = NULL;
        free(y);
    }
}

static void checkpoint_done(uv_work_t *work, int status) {
    sched_sync_t *y = work->data;
    y->s->checkpoint = NULL;
    /* A failed checkpoint loses nothing (the WAL holds it all): the next one tries again. */
    if (status == 0 && y->rc) cv_log(y->s->cfg.log, CV_LOG_WARN, "%s", y->err);
    free(y);
}

static void sync_done(uv_work_t *work, int status) {
    sched_sync_t *y = work->data;
    cv_sched_t *s = y->s;
    s->syncs--;
    if (status == 0 && y->rc == 0) {
        if (y->upto > s->durable_seq) s->durable_seq = y->upto;
        if (!s->broken) {
            release(s, s->durable_seq);
            sync_start(s);
            checkpoint_start(s);
        }
    } else if (!s->broken) {
        /* Crash-only, as for a failed commit: the next flush reports it and the daemon stops. */
        cv_log(s->cfg.log, CV_LOG_ERROR, "%s; %zu results not acknowledged",
               status ? "the WAL sync could not run" : y->err, s->n_acks);
        sched_break(s);
        drop_waiting(s);
    }
    free(y);
}

/* Starts a sync of the commits that no sync in flight covers, up to SYNCS_IN_FLIGHT at once
 * (one that ends starts the next): a commit made while a sync runs waits for one sync of its
 * own, not for that one to end first. Without a thread pool, or when the sync cannot be queued, it runs here (and,
 * without a thread pool, a checkpoint that is due too). */
static void sync_start(cv_sched_t *s) {
    if (s->syncs >= SYNCS_IN_FLIGHT || s->broken || s->commit_seq <= s->durable_seq ||
        s->commit_seq <= s->sync_upto)
        return;
    sched_sync_t *y = calloc(1, sizeof *y);
    if (y) {
        *y = (sched_sync_t){.s = s, .upto = s->commit_seq};
        y->work.data = y;
        if (s->cfg.loop && uv_queue_work(s->cfg.loop, &y->work, sync_work, sync_done) == 0) {
            s->syncs++;
            s->sync_upto = y->upto;
            return;
        }
    }
    sched_sync_t local = {.s = s, .upto = s->commit_seq};
    free(y);
    local.work.data = &local;
    sync_work(&local.work);
    if (local.rc == 0 && local.upto > s->durable_seq) s->durable_seq = local.upto;
    if (local.rc == 0 && !s->cfg.loop && cv_store_checkpoint_due(s->cfg.store) &&
        cv_store_checkpoint(s->cfg.store, local.err))
        cv_log(s->cfg.log, CV_LOG_WARN, "%s", local.err);
    if (local.rc) {
        cv_log(s->cfg.log, CV_LOG_ERROR, "%s; %zu results not acknowledged", local.err,
               s->n_acks);
        sched_break(s);
        drop_waiting(s);
    }
}

int cv_sched_flush(cv_sched_t *s, double now) {
    (void)now;
    char err[CV_ERRLEN];
    if (s->broken) {
        if (s->n_acks || s->group_lost)
            cv_log(s->cfg.log, CV_LOG_ERROR, "a store write failed; %zu results not "
                   "acknowledged, nothing more is committed", s->n_acks);
        drop_waiting(s);
        return CV_EIO;
    }
    if (group_commit(s, err)) {
        /* Crash-only: the group is gone, so its acknowledgements are too, and every later flush
         * fails as well (nothing may be acknowledged against a disk that lost a commit). */
        cv_log(s->cfg.log, CV_LOG_ERROR, "commit failed: %s; %zu results not acknowledged", err,
               s->n_acks);
        sched_break(s);
        drop_waiting(s);
        return CV_EIO;
    }
    /* What waits without having written anything waits for the commits before it. */
    number_waiting(s, s->commit_seq);
    if (s->cfg.deferred_sync) sync_start(s);
    if (s->broken) return CV_EIO;
    release(s, s->durable_seq);
    sched_unload_finished(s);
    return 0;
}

int cv_sched_sync_now(cv_sched_t *s) {
    if (s->broken) return CV_EIO;
    if (!s->cfg.deferred_sync || s->commit_seq <= s->durable_seq) return 0;
    char err[CV_ERRLEN];
    uint64_t seq = s->commit_seq;
    if (cv_store_sync(s->cfg.store, err)) {
        cv_log(s->cfg.log, CV_LOG_ERROR, "%s; %zu results not acknowledged", err, s->n_acks);
        sched_break(s);
        drop_waiting(s);
        return CV_EIO;
    }
    s->durable_seq = seq;
    release(s, seq);
    return 0;
}

size_t cv_sched_pending(const cv_sched_t *s) {
    size_t n = 0;
    for (size_t i = s->n_acks; i > 0 && !s->acks[i - 1].seq; i--) n++;
    return n;
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

const double cv_sched_latency_edges[CV_SCHED_LATENCY_EDGES] = {
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5};

void cv_sched_count_served(cv_sched_t *s, uint64_t bytes) {
    s->bytes_served += bytes;
}

void cv_sched_stats(const cv_sched_t *s, cv_sched_stats_t *out) {
    *out = (cv_sched_stats_t){.results = s->results,
                              .commits = s->commits,
                              .latency_p50 = latency_quantile(s, 0.5),
                              .latency_p99 = latency_quantile(s, 0.99),
                              .latency_max = s->latency_max,
                              .latency_sum = s->latency_sum,
                              .bytes_served = s->bytes_served};
    for (int b = 0; b < LATENCY_BUCKETS; b++) {
        double upper = 1e-6 * exp2((b + 1) / 4.0);
        for (int e = 0; e < CV_SCHED_LATENCY_EDGES; e++)
            if (upper <= cv_sched_latency_edges[e] * (1 + 1e-9))
                out->latency_within[e] += s->latency[b];
    }
    for (const job_t *job = s->jobs; job; job = job->next)
        for (const trial_t *t = job->qhead; t; t = t->qnext) out->queued++;
    for (const cv_sched_worker_t *w = s->workers; w; w = w->next) {
        out->workers_connected++;
        out->workers_busy += w->trial != NULL;
        out->workers_quarantined += w->quarantined != 0;
    }
}
