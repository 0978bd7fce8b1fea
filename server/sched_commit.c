/* The scheduler's durable write path: the open write group every state change goes into, the
 * group commit (cv_sched_flush) and the acknowledgements and pruner decisions that wait for it,
 * the histogram of result-to-commit latencies and the counters and state cv_sched_stats reports. */

#include "server/scheduler_internal.h"

#include <math.h>
#include <stdlib.h>

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

int sched_commit(cv_sched_t *s, char *err) {
    if (!s->group_open) return 0;
    s->group_open = 0;
    int rc = cv_store_commit(s->cfg.store, err);
    if (rc) cv_store_rollback(s->cfg.store, NULL);
    return rc;
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

int sched_push_decision(cv_sched_t *s, cv_sched_worker_t *w, int64_t trial_id, int epoch,
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

int sched_push_ack(cv_sched_t *s, cv_sched_worker_t *w, int64_t trial_id) {
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

int cv_sched_flush(cv_sched_t *s, double now) {
    (void)now;
    char err[CV_ERRLEN];
    if (s->broken) {
        if (s->n_acks || s->group_lost)
            cv_log(s->cfg.log, CV_LOG_ERROR, "a store write failed; %zu results not "
                   "acknowledged, nothing more is committed", s->n_acks);
        s->n_acks = 0;
        s->n_decisions = 0;
        s->group_lost = 0;
        sched_ask_flush(s, 0);
        return CV_EIO;
    }
    if (sched_commit(s, err)) {
        /* Crash-only: the group is gone, so its acknowledgements are too, and every later flush
         * fails as well (nothing may be acknowledged against a disk that lost a commit). */
        cv_log(s->cfg.log, CV_LOG_ERROR, "commit failed: %s; %zu results not acknowledged", err,
               s->n_acks);
        s->n_acks = 0;
        s->n_decisions = 0;
        sched_break(s);
        sched_ask_flush(s, 0);
        return CV_EIO;
    }
    for (size_t i = 0; i < s->n_decisions; i++) {
        const pending_decision_t *d = &s->decisions[i];
        if (d->w && !d->w->ask && d->w->trial && d->w->trial->id == d->trial_id)
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
        s->latency_sum += lat;
        if (s->acks[i].w && !s->acks[i].w->ask) /* an ask client's answer is sched_ask_flush's */
            s->cfg.ops.send_ack(s->acks[i].w->conn, s->acks[i].trial_id, 1);
    }
    s->results += n;
    s->commits += n > 0;
    sched_ask_flush(s, 1); /* ask clients' answers, and the ask leases that ended go */
    sched_unload_finished(s);
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
