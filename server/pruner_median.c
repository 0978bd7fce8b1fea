/* The median stopping rule (Golovin et al., "Google Vizier: A Service for Black-Box
 * Optimization", KDD 2017): a trial is stopped at a decision epoch when its best objective so far
 * is strictly worse than the median of the other trials' at the same epoch. The simple
 * alternative to ASHA: no rungs to tune, only how soon and how often to judge.
 *
 * Settings, the job spec's search.median object (absent: every default), each an integer in
 * [1, 100000] (epochs, and trials in a job, at most):
 *     warmup_epochs  the first decision epoch: nothing is judged before it; default 1
 *     min_trials     other trials' results needed at an epoch before it judges; default 5
 *     interval       epochs between decisions from warmup_epochs on; default 1
 * The decision epochs of a trial of E epochs are warmup_epochs + j·interval (j = 0, 1, ...) below
 * E. When there are more than CV_SEARCH_MAX_RUNGS of them, the stride is doubled until they fit
 * (interval·2, interval·4, ...): still evenly spaced from warmup_epochs, and nested: a longer
 * trial's decision epochs are among a shorter one's as far as the shorter one goes, so the two
 * are compared at the same epochs.
 *
 * Vizier's statistic is a trial's running average of its objective; here it is the value the
 * scheduler passes, the trial's best objective so far. The median is over every other trial that
 * reached the epoch, including trials stopped there or later: dropping stopped trials would
 * leave only the survivors, whose median falls with each stop, and the rule would tighten as the
 * job went on, stopping trials that the same evidence let go on earlier. A trial's result at an
 * epoch never changes once recorded, so the median there depends only on which trials reached it
 * and when, and replaying the recorded decisions after a restart restores it exactly. A trial
 * stopped at an epoch reaches no later one, so it drops out of later medians by itself.
 *
 * The median of an even count is the mean of the two middle values. A value equal to the median
 * goes on (strictly worse is needed to stop). Each trial's result at an epoch is judged once: a
 * repeated decision returns the first outcome.
 *
 * describe() writes the settings and the decision epochs that have results, in the shape of
 * pruner_asha.c's (cv_rungs_describe: at most 100 epochs, the lowest, and 100 trial numbers per
 * list):
 *     {"warmup_epochs": 1, "min_trials": 5, "interval": 1, "rung_count": 1,
 *      "rungs": [{"epoch": 1, "results": 7, "promoted_count": 6, "promoted": [0, 1, 2, 3, 4, 5],
 *                 "stopped_count": 1, "stopped": [6]}]} */
#include "server/search.h"

#include <math.h>
#include <stdlib.h>

#include "common/err.h"
#include "common/json.h"
#include "server/job_spec.h"
#include "server/pruner_rungs.h"

typedef struct {
    int warmup_epochs; /* the first decision epoch */
    int min_trials;    /* other trials' results needed at an epoch to judge */
    int interval;      /* epochs between decision epochs, before any thinning */
    cv_rungs_t rungs;  /* every result recorded, by decision epoch */
} median_t;

/* Validates settings and makes the pruner's state, which the caller frees with median_destroy.
 * On failure *state is NULL and err names the field. */
static int median_create(void **state, const cJSON *settings, char *err) {
    static const char *const fields[] = {"warmup_epochs", "min_trials", "interval"};
    static const char *const where = "search.median";
    *state = NULL;
    int warmup = 1, min_trials = 5, interval = 1;
    int rc = settings ? cv_json_check_fields(settings, where, fields, 3, err) : 0;
    if (rc == 0)
        rc = cv_rungs_setting(settings, where, "warmup_epochs", 1, CV_RUNGS_MAX_EPOCHS, &warmup,
                              err);
    if (rc == 0)
        rc =
            cv_rungs_setting(settings, where, "min_trials", 1, CV_JOB_MAX_TRIALS, &min_trials, err);
    if (rc == 0)
        rc = cv_rungs_setting(settings, where, "interval", 1, CV_RUNGS_MAX_EPOCHS, &interval, err);
    if (rc != 0) return rc;
    median_t *m = malloc(sizeof *m);
    if (!m) return cv_errf(err, CV_ENOMEM, "%s: out of memory", where);
    m->warmup_epochs = warmup;
    m->min_trials = min_trials;
    m->interval = interval;
    cv_rungs_init(&m->rungs);
    *state = m;
    return 0;
}

static void median_destroy(void *state) {
    median_t *m = state;
    if (!m) return;
    cv_rungs_finish(&m->rungs);
    free(m);
}

static size_t median_decision_epochs(const void *state, int epochs, int *out, size_t cap) {
    const median_t *m = state;
    if (epochs <= m->warmup_epochs) return 0;
    int64_t span = (int64_t)epochs - 1 - m->warmup_epochs; /* last possible minus first */
    int64_t stride = m->interval;
    while (span / stride + 1 > CV_SEARCH_MAX_RUNGS)
        stride *= 2;
    size_t n = 0;
    for (int64_t e = m->warmup_epochs; e < epochs && n < cap; e += stride)
        out[n++] = (int)e;
    return n;
}

/* 1 when epoch is warmup_epochs + j·interval for some j ≥ 0. */
static int is_decision_epoch(const median_t *m, int epoch) {
    return epoch >= m->warmup_epochs && (epoch - m->warmup_epochs) % m->interval == 0;
}

static int median_decide(void *state, int number, int epoch, double value) {
    median_t *m = state;
    if (!is_decision_epoch(m, epoch)) return 0;
    cv_rung_t *rung = cv_rungs_at(&m->rungs, epoch);
    if (!rung) return CV_ENOMEM;
    const cv_rung_result_t *seen = cv_rung_lookup(rung, number);
    if (seen) return seen->stopped;
    /* Every result there is another trial's: this one has none yet. A NaN is the worst value;
     * a NaN median (only +inf and -inf in the middle) stops nothing. */
    int stopped = rung->n >= (size_t)m->min_trials &&
                  (isnan(value) ? HUGE_VAL : value) > cv_rung_median(rung);
    int rc = cv_rung_add(rung, number, value, stopped);
    return rc != 0 ? rc : stopped;
}

static int median_replay(void *state, int number, int epoch, double value, int stopped) {
    median_t *m = state;
    if (!is_decision_epoch(m, epoch)) return 0;
    return cv_rungs_replay(&m->rungs, number, epoch, value, stopped);
}

static int median_describe(const void *state, cJSON *out) {
    const median_t *m = state;
    if (!cJSON_AddNumberToObject(out, "warmup_epochs", m->warmup_epochs) ||
        !cJSON_AddNumberToObject(out, "min_trials", m->min_trials) ||
        !cJSON_AddNumberToObject(out, "interval", m->interval))
        return CV_ENOMEM;
    return cv_rungs_describe(&m->rungs, out);
}

const cv_pruner_ops_t cv_pruner_median = {
    .name = "median",
    .create = median_create,
    .destroy = median_destroy,
    .decision_epochs = median_decision_epochs,
    .decide = median_decide,
    .replay = median_replay,
    .describe = median_describe,
};
