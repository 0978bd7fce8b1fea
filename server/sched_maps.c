/* The scheduler's containers: the map of in-memory trials by id and each job's set of
 * configuration keys (open addressing, linear probing), and each job's FIFO of queued trials. */

#include "server/scheduler_internal.h"

#include <stdlib.h>

#include "common/err.h"

int sched_map_put(cv_sched_t *s, trial_t *t) {
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

trial_t *sched_map_get(const cv_sched_t *s, int64_t id) {
    if (!s->map_cap) return NULL;
    size_t j = mix64((uint64_t)id) & (s->map_cap - 1);
    for (; s->map[j]; j = (j + 1) & (s->map_cap - 1))
        if (s->map[j]->id == id) return s->map[j];
    return NULL;
}

/* Removes t from the map (absent: nothing happens). Linear probing: the entries after the hole
 * that the hole would hide from their home slot move back into it. */
void sched_map_del(cv_sched_t *s, const trial_t *t) {
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
int sched_keys_add(job_t *job, uint64_t h) {
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

void sched_queue_push(job_t *job, trial_t *t, int front) {
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

trial_t *sched_queue_pop(job_t *job) {
    trial_t *t = job->qhead;
    if (t) {
        job->qhead = t->qnext;
        if (!job->qhead) job->qtail = NULL;
        t->qnext = NULL;
    }
    return t;
}

/* Takes the trials of a job that never made it into the job list out of the trial map. */
void sched_job_unmap(cv_sched_t *s, job_t *job) {
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
            sched_map_put(s, x);
        }
    }
}
