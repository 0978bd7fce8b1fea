/* caviar-worker's nudges (panda mode): the coordinator's nudge messages for the trial held are
 * kept in a box shared with the training thread, which applies them to the trial's live spec at
 * its next epoch boundary (or, for a re-run trial, at the epoch they took effect at before) and
 * records the epoch; the main thread then answers each with nudged. A seq is applied once: a
 * repeated one is answered with its epoch. */
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "worker/connection_internal.h"

int cv_conn_nudges_init(nudge_box_t *b) {
    memset(b, 0, sizeof *b);
    return pthread_mutex_init(&b->lock, NULL) == 0 ? 0 : -1;
}

/* Forgets every nudge; the caller holds the lock. */
static void clear_locked(nudge_box_t *b) {
    for (size_t i = 0; i < b->n; i++)
        cJSON_Delete(b->items[i].values);
    b->n = 0;
    b->trial_id = 0;
}

void cv_conn_nudges_reset(nudge_box_t *b, int64_t trial_id) {
    pthread_mutex_lock(&b->lock);
    clear_locked(b);
    b->trial_id = trial_id;
    pthread_mutex_unlock(&b->lock);
}

void cv_conn_nudges_finish(nudge_box_t *b) {
    clear_locked(b);
    free(b->items);
    b->items = NULL;
    b->cap = 0;
    pthread_mutex_destroy(&b->lock);
}

/* The lease of trial_id when it is held here (prepared or training), else NULL. */
static const char *held_lease(const worker_t *w, int64_t trial_id) {
    if (w->run && !w->run->discard && w->run->trial_id == trial_id) return w->run->lease;
    if (w->prep.active && w->prep.trial_id == trial_id) return w->prep.lease;
    return NULL;
}

/* Adds nudge m to the box (the caller holds the lock). Returns 0, or -1 when full or out of
 * memory. */
static int add_locked(nudge_box_t *b, const cv_msg_nudge_t *m) {
    if (b->n == NUDGES_MAX) return -1;
    if (b->n == b->cap) {
        size_t cap = b->cap ? 2 * b->cap : 8;
        nudge_t *items = realloc(b->items, cap * sizeof *items);
        if (items == NULL) return -1;
        b->items = items;
        b->cap = cap;
    }
    cJSON *values = cJSON_Duplicate(m->values, 1);
    if (values == NULL) return -1;
    b->items[b->n++] = (nudge_t){.seq = m->seq, .at_epoch = m->at_epoch, .values = values};
    return 0;
}

int cv_conn_on_nudge(worker_t *w, const cv_msg_nudge_t *m) {
    const char *lease = held_lease(w, m->trial_id);
    if (lease == NULL) {
        LOG(w, CV_LOG_DEBUG, "nudge for trial %lld, which is not here", (long long)m->trial_id);
        return 0;
    }
    nudge_box_t *b = &w->nudges;
    int epoch = 0, known = 0, rc = 0;
    pthread_mutex_lock(&b->lock);
    if (b->trial_id != m->trial_id) {
        clear_locked(b);
        b->trial_id = m->trial_id;
    }
    for (size_t i = 0; i < b->n && !known; i++)
        if (b->items[i].seq == m->seq) known = 1, epoch = b->items[i].epoch;
    if (!known) rc = add_locked(b, m);
    pthread_mutex_unlock(&b->lock);
    if (rc != 0) {
        LOG(w, CV_LOG_WARN, "trial %lld: nudge %lld ignored: out of memory or over %d nudges",
            (long long)m->trial_id, (long long)m->seq, NUDGES_MAX);
        return 0;
    }
    if (!known) {
        LOG(w, CV_LOG_INFO, "trial %lld: nudge %lld received", (long long)m->trial_id,
            (long long)m->seq);
        return 0;
    }
    if (epoch <= 0) return 0; /* waiting for its boundary: the answer comes then */
    char err[CV_ERRLEN];
    return cv_conn_send_msg(w, cv_msg_nudged(m->trial_id, lease, m->seq, epoch, err), err);
}

int cv_conn_nudges_apply(nudge_box_t *b, int64_t trial_id, cv_trial_spec_t *live, int epoch) {
    char err[CV_ERRLEN];
    int changed = 0;
    pthread_mutex_lock(&b->lock);
    for (size_t i = 0; b->trial_id == trial_id && i < b->n; i++) {
        nudge_t *n = &b->items[i];
        if (n->epoch != 0 || (n->at_epoch != 0 && n->at_epoch > epoch)) continue;
        if (cv_trial_spec_nudge(live, n->values, err) == 0) {
            n->epoch = epoch;
            changed = 1;
        } else {
            n->epoch = -1; /* the coordinator checked it against this spec: not expected */
        }
    }
    pthread_mutex_unlock(&b->lock);
    return changed;
}

int cv_conn_nudges_answer(worker_t *w, const run_t *r) {
    nudge_box_t *b = &w->nudges;
    if (!w->welcomed || r->discard) return 0;
    int64_t seqs[NUDGES_MAX];
    int epochs[NUDGES_MAX];
    size_t k = 0;
    pthread_mutex_lock(&b->lock);
    for (size_t i = 0; b->trial_id == r->trial_id && i < b->n; i++) {
        nudge_t *n = &b->items[i];
        if (n->epoch == 0 || n->answered) continue;
        n->answered = 1;
        seqs[k] = n->seq;
        epochs[k++] = n->epoch;
    }
    pthread_mutex_unlock(&b->lock);
    for (size_t i = 0; i < k; i++) {
        char err[CV_ERRLEN];
        if (epochs[i] < 0) { /* the coordinator checked it against this spec: not expected */
            LOG(w, CV_LOG_WARN, "trial %lld: nudge %lld does not fit the trial; not applied",
                (long long)r->trial_id, (long long)seqs[i]);
            continue;
        }
        LOG(w, CV_LOG_INFO, "trial %lld: nudge %lld took effect at epoch %d",
            (long long)r->trial_id, (long long)seqs[i], epochs[i]);
        int rc =
            cv_conn_send_msg(w, cv_msg_nudged(r->trial_id, r->lease, seqs[i], epochs[i], err), err);
        if (rc) return rc;
    }
    return 0;
}
