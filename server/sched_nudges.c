/* The scheduler's nudges (panda mode, schemas/protocol.md "Nudges"): a nudge of a running trial
 * is checked against the trial's spec by the trial spec's rules, stored under the trial's next
 * seq and committed, then sent to the worker holding the trial; the worker's nudged answer
 * records the epoch it took effect at, once. The nudges go again to a worker that re-attaches
 * (the unapplied ones: it answers a repeated seq with its epoch) and to a re-run of the trial
 * (all of them, the applied ones with the epoch to take effect at again). */
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "common/trial_spec.h"
#include "server/scheduler_internal.h"

/* Checks values against trial t's spec. Returns 0 or CV_EINVAL/CV_ERANGE naming the field. */
static int check_values(const trial_t *t, const cJSON *values, char *err) {
    char *text = sched_trial_spec_text(t->job, t->params);
    if (text == NULL) return cv_errf(err, CV_ENOMEM, "out of memory");
    cv_trial_spec_t *spec = malloc(sizeof *spec);
    int rc = spec ? cv_trial_spec_parse(spec, text, strlen(text), err)
                  : cv_errf(err, CV_ENOMEM, "out of memory");
    if (rc == 0) rc = cv_trial_spec_nudge(spec, values, err);
    free(spec);
    free(text);
    return rc;
}

int cv_sched_nudge(cv_sched_t *s, int64_t trial_id, const cJSON *values, double now, int64_t *seq,
                   char *err) {
    trial_t *t = sched_map_get(s, trial_id);
    if (t == NULL || t->status != CV_STORE_TRIAL_RUNNING) {
        cv_store_trial_status_t st = CV_STORE_TRIAL_QUEUED;
        int rc = t ? 0 : cv_store_trial_status(s->cfg.store, trial_id, &st, err);
        if (rc == CV_STORE_NOT_FOUND)
            return cv_errf(err, CV_STORE_NOT_FOUND, "trial %lld does not exist",
                           (long long)trial_id);
        if (rc) return rc;
        if (t) st = t->status;
        return cv_errf(err, CV_STORE_STALE, "trial %lld is %s: only a running trial can be nudged",
                       (long long)trial_id, cv_store_trial_status_name(st));
    }
    if (t->job->spec.trainer_kind != CV_TRAINER_BUILTIN)
        return cv_errf(err, CV_EINVAL, "trial %lld is trained by \"%s\": only the builtin "
                       "trainer takes nudges", (long long)trial_id, t->job->spec.trainer);
    int rc = check_values(t, values, err);
    if (rc) return rc;
    char *text = cJSON_PrintUnformatted(values);
    if (text == NULL) return cv_errf(err, CV_ENOMEM, "out of memory");
    int64_t last = 0;
    rc = sched_group(s, err);
    if (rc == 0)
        rc = sched_checked(s, cv_store_nudges_each(s->cfg.store, t->id, NULL, NULL, &last, err));
    cv_store_nudge_t n = {
        .trial_id = t->id, .seq = last + 1, .values_json = text, .created_at = now};
    if (rc == 0) rc = sched_checked(s, cv_store_nudge_add(s->cfg.store, &n, err));
    if (rc == 0) rc = sched_commit(s, err);
    free(text);
    if (rc) return rc;
    *seq = n.seq;
    /* The pruner judges the rungs below the trial's epochs, nudged ones included. */
    const cJSON *epochs = cJSON_GetObjectItemCaseSensitive(values, "epochs");
    if (cJSON_IsNumber(epochs)) t->epochs = (int)epochs->valuedouble;
    cv_log(s->cfg.log, CV_LOG_INFO, "trial %lld: nudge %lld stored", (long long)t->id,
           (long long)n.seq);
    if (t->worker && !t->worker->ask && s->cfg.ops.send_nudge &&
        s->cfg.ops.send_nudge(t->worker->conn, t->id, n.seq, values, 0))
        cv_log(s->cfg.log, CV_LOG_WARN,
               "trial %lld: nudge %lld not sent; it goes again when its "
               "worker re-attaches",
               (long long)t->id, (long long)n.seq);
    return 0;
}

int cv_sched_on_nudged(cv_sched_t *s, cv_sched_worker_t *w, int64_t trial_id, const char *lease,
                       int64_t seq, int epoch, double now, char *err) {
    trial_t *t = w ? w->trial : NULL;
    if (!t || t->id != trial_id || strcmp(t->lease, lease)) return CV_STORE_STALE;
    int rc = sched_group(s, err);
    if (rc == 0)
        rc = sched_checked(s, cv_store_nudge_applied(s->cfg.store, trial_id, seq, epoch, now, err));
    if (rc == 0)
        cv_log(s->cfg.log, CV_LOG_INFO, "trial %lld: nudge %lld took effect at epoch %d",
               (long long)trial_id, (long long)seq, epoch);
    return rc;
}

typedef struct {
    cv_sched_t *s;
    void *conn;
    int all; /* 1: every nudge, the applied ones with at_epoch; 0: the unapplied ones */
    int failed;
} resend_t;

static int resend_one(void *ctx, const cv_store_nudge_t *n) {
    resend_t *r = ctx;
    if (!r->all && n->epoch > 0) return 0;
    cJSON *values = cJSON_Parse(n->values_json);
    if (values == NULL ||
        r->s->cfg.ops.send_nudge(r->conn, n->trial_id, n->seq, values, r->all ? n->epoch : 0))
        r->failed = 1;
    cJSON_Delete(values);
    return 0;
}

/* Sends trial t's nudges to its worker: all of them (a fresh lease: the trial trains from
 * epoch 1) or the unapplied ones (a re-attached worker). */
void sched_nudges_send(cv_sched_t *s, const trial_t *t, int all) {
    char err[CV_ERRLEN];
    if (!t->worker || t->worker->ask || !s->cfg.ops.send_nudge) return;
    resend_t r = {s, t->worker->conn, all, 0};
    if (cv_store_nudges_each(s->cfg.store, t->id, resend_one, &r, NULL, err))
        cv_log(s->cfg.log, CV_LOG_ERROR, "trial %lld: nudges: %s", (long long)t->id, err);
    else if (r.failed)
        cv_log(s->cfg.log, CV_LOG_ERROR, "trial %lld: a nudge could not be sent", (long long)t->id);
}

void cv_sched_worker_welcomed(cv_sched_t *s, cv_sched_worker_t *w) {
    if (w && w->trial) sched_nudges_send(s, w->trial, 0);
}
