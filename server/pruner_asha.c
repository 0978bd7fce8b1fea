/* ASHA, asynchronous successive halving (Li et al., "A System for Massively Parallel
 * Hyperparameter Tuning", MLSys 2020), in its pruning form: every trial starts at the bottom and
 * trains on; at each rung it is judged against the results recorded at that rung so far, and
 * goes on only if it is in their top 1/η.
 *
 * Settings, the job spec's search.asha object (absent: every default):
 *     min_epochs  r, the first rung's epoch: an integer in [1, 100000], default 1
 *     eta         η, the reduction factor: an integer in [2, 10], default 3
 * The rungs of a trial of E epochs are the epochs r·η^k (k = 0, 1, ...) below E; its last epoch
 * is never one (the trial ends there anyway). With r ≥ 1, η ≥ 2 and E ≤ 100,000 there are at most
 * 17 rungs (1, 2, 4, ..., 65536), within CV_SEARCH_MAX_RUNGS, so no max_rungs setting is needed:
 * a trial's epochs bound its rungs, as the maximum resource R does in the paper.
 *
 * The rule at a rung holding k results once this one is recorded: the trial goes on iff its rank
 * among them (1-based, lowest value first; an equal value recorded earlier ranks ahead) is at
 * most ceil(k/η). The first trial at a rung always goes on, so the search never stalls waiting
 * for a rung to fill, as the paper's asynchronous promotion never waits. A trial's result at a
 * rung is judged once: a repeated decision returns the first outcome, and replay restores
 * decisions made before a restart in their original order, after which every later decision is
 * the one that would have been made without the restart.
 *
 * describe() writes
 *     {"min_epochs": 1, "eta": 3, "rung_count": 2,
 *      "rungs": [{"epoch": 1, "results": 9, "promoted_count": 3, "promoted": [0, 1, 3],
 *                 "stopped_count": 6, "stopped": [2, 4, 5, 6, 7, 8]},
 *                {"epoch": 3, ...}]}
 * with the rungs holding results by ascending epoch; "promoted" and "stopped" list the first 100
 * trial numbers of each outcome in the order they were judged, the counts give the totals
 * (cv_rungs_describe). */
#include "server/search.h"

#include <math.h>
#include <stdlib.h>

#include "common/err.h"
#include "common/json.h"
#include "server/pruner_rungs.h"

#define ASHA_ETA_MAX 10

typedef struct {
    int min_epochs;   /* r: the first rung's epoch */
    int eta;          /* η: 1/η of a rung's results go on */
    cv_rungs_t rungs; /* every result recorded, by rung */
} asha_t;

/* Validates settings and makes the pruner's state, which the caller frees with asha_destroy.
 * On failure *state is NULL and err names the field. */
static int asha_create(void **state, const cJSON *settings, char *err) {
    static const char *const fields[] = {"min_epochs", "eta"};
    *state = NULL;
    int min_epochs = 1, eta = 3;
    int rc = settings ? cv_json_check_fields(settings, "search.asha", fields, 2, err) : 0;
    if (rc == 0)
        rc = cv_rungs_setting(settings, "search.asha", "min_epochs", 1, CV_RUNGS_MAX_EPOCHS,
                              &min_epochs, err);
    if (rc == 0) rc = cv_rungs_setting(settings, "search.asha", "eta", 2, ASHA_ETA_MAX, &eta, err);
    if (rc != 0) return rc;
    asha_t *a = malloc(sizeof *a);
    if (!a) return cv_errf(err, CV_ENOMEM, "search.asha: out of memory");
    a->min_epochs = min_epochs;
    a->eta = eta;
    cv_rungs_init(&a->rungs);
    *state = a;
    return 0;
}

static void asha_destroy(void *state) {
    asha_t *a = state;
    if (!a) return;
    cv_rungs_finish(&a->rungs);
    free(a);
}

static size_t asha_decision_epochs(const void *state, int epochs, int *out, size_t cap) {
    const asha_t *a = state;
    size_t n = 0;
    for (int64_t e = a->min_epochs; e < epochs && n < cap; e *= a->eta)
        out[n++] = (int)e;
    return n;
}

/* 1 when epoch is r·η^k for some k ≥ 0. */
static int is_rung(const asha_t *a, int epoch) {
    int64_t e = a->min_epochs;
    while (e < epoch)
        e *= a->eta;
    return e == epoch;
}

static int asha_decide(void *state, int number, int epoch, double value) {
    asha_t *a = state;
    if (!is_rung(a, epoch)) return 0;
    cv_rung_t *rung = cv_rungs_at(&a->rungs, epoch);
    if (!rung) return CV_ENOMEM;
    const cv_rung_result_t *seen = cv_rung_lookup(rung, number);
    if (seen) return seen->stopped;
    size_t k = rung->n + 1; /* results with this one */
    size_t rank = cv_rung_count_at_most(rung, isnan(value) ? HUGE_VAL : value) + 1;
    int stopped = rank > (k + (size_t)a->eta - 1) / (size_t)a->eta;
    int rc = cv_rung_add(rung, number, value, stopped);
    return rc != 0 ? rc : stopped;
}

static int asha_replay(void *state, int number, int epoch, double value, int stopped) {
    asha_t *a = state;
    if (!is_rung(a, epoch)) return 0;
    return cv_rungs_replay(&a->rungs, number, epoch, value, stopped);
}

static int asha_describe(const void *state, cJSON *out) {
    const asha_t *a = state;
    if (!cJSON_AddNumberToObject(out, "min_epochs", a->min_epochs) ||
        !cJSON_AddNumberToObject(out, "eta", a->eta))
        return CV_ENOMEM;
    return cv_rungs_describe(&a->rungs, out);
}

const cv_pruner_ops_t cv_pruner_asha = {
    .name = "asha",
    .create = asha_create,
    .destroy = asha_destroy,
    .decision_epochs = asha_decision_epochs,
    .decide = asha_decide,
    .replay = asha_replay,
    .describe = asha_describe,
};
