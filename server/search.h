/* Search strategies: what a job tries next (a sampler) and which running trials it stops early
 * (a pruner). The split is Optuna's: the sampler proposes, the pruner stops, the scheduler
 * records. Each sampler and each pruner lives in its own file behind one of the two tables below
 * and is listed once in search.c; the scheduler knows only these tables.
 *
 * Neither kind keeps anything that the store does not: a sampler is a pure function of the job's
 * history (every trial so far, running ones included), and a pruner's state is the sequence of
 * decisions it made, which the scheduler stores with each decision and replays after a restart
 * (cv_pruner_ops_t.replay), so a coordinator killed at any instant decides nothing twice.
 *
 * Both run on the coordinator's loop thread: their work per call is bounded by the job's trial
 * count (a few milliseconds for thousands of trials). Every random draw comes from the caller's
 * RNG. */
#ifndef CV_SEARCH_H
#define CV_SEARCH_H

#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "common/rng.h"
#include "common/space.h"

#define CV_SEARCH_MAX_RUNGS 32 /* decision epochs of one trial at most */

/* A trial as a sampler sees it. */
typedef enum {
    CV_SEARCH_RUNNING,   /* queued or running: no result yet (a pending point for TPE) */
    CV_SEARCH_COMPLETED, /* trained to its end (or its early stopping); objective is set */
    CV_SEARCH_PRUNED,    /* stopped by the pruner at its last rung */
    CV_SEARCH_FAILED,    /* failed, diverged or cancelled: no usable objective */
} cv_search_state_t;

typedef struct {
    const cJSON *values;     /* object param → value, as cv_space_sample makes it; borrowed */
    cv_search_state_t state;
    double objective;        /* COMPLETED: the job's objective (lower is better); else NaN */
    const double *rung_value; /* the trial's best objective so far at each decision epoch it
                                 reached, in the order of cv_search_history_t.rung_epochs;
                                 n_rung entries (borrowed; NULL when n_rung is 0) */
    size_t n_rung;
} cv_search_trial_t;

/* Everything a sampler may use to propose the next configuration. */
typedef struct {
    const cv_space_t *space;        /* the job's whole space */
    const cv_space_t *region;       /* where to propose: the current coarse-to-fine region (the
                                       space itself in round 0 or without refinement) */
    const cv_search_trial_t *trials; /* every trial of the job so far, by number */
    size_t n_trials;
    const int *rung_epochs;         /* the pruner's decision epochs, ascending; none without a
                                       pruner */
    size_t n_rungs;
} cv_search_history_t;

/* A sampler. config is the sampler's own settings, made by create from the job spec's
 * search.<name> object. */
typedef struct {
    const char *name; /* as in the job spec's search.sampler: "random", "tpe" */
    size_t max_history; /* the most recent trials it reads at most (history->n_trials ≤ this);
                           0: it reads none, and the history is not built */
    /* Validates settings (the job spec's search.<name> object; NULL: every default) and makes the
     * sampler's config. On failure err names the field, starting with "search.<name>.", and
     * *config is NULL. The caller frees *config with destroy. */
    int (*create)(void **config, const cJSON *settings, char *err);
    void (*destroy)(void *config); /* accepts NULL */
    /* Proposes one configuration inside history->region. On success *values is a new object
     * param → value, as cv_space_sample makes it (rounded the same way, inside the region), that
     * the caller frees with cJSON_Delete. The caller rejects a configuration the job already
     * has and asks again with the same RNG, so a sampler need not avoid duplicates itself. */
    int (*propose)(const void *config, const cv_search_history_t *history, cv_rng_t *rng,
                   cJSON **values, char *err);
    /* Writes the settings in effect (defaults filled in) into out, an object. */
    int (*describe)(const void *config, cJSON *out);
} cv_sampler_ops_t;

/* A pruner. A trial is judged only at its decision epochs, once each; value is the trial's best
 * objective over its epochs so far (lower is better). */
typedef struct {
    const char *name; /* as in the job spec's search.pruner: "none", "asha", "median" */
    /* As cv_sampler_ops_t.create, with settings the job spec's search.<name> object. */
    int (*create)(void **state, const cJSON *settings, char *err);
    void (*destroy)(void *state); /* accepts NULL */
    /* The epochs at which a trial of `epochs` epochs is judged: ascending, each < epochs (the
     * last epoch is never judged: the trial ends there anyway). Writes at most cap of them to
     * out and returns how many. */
    size_t (*decision_epochs)(const void *state, int epochs, int *out, size_t cap);
    /* Judges trial `number` at decision epoch `epoch` with value, and remembers the
     * observation. Returns 1: stop it (pruned), 0: let it go on, or a negative code. */
    int (*decide)(void *state, int number, int epoch, double value);
    /* Remembers a decision made before a restart (the same arguments and its outcome) without
     * judging again. Returns 0 or a negative code. */
    int (*replay)(void *state, int number, int epoch, double value, int stopped);
    /* Writes the settings in effect and what it has seen (for ASHA: each rung with its epoch,
     * its results and who was promoted) into out, an object, for GET /v1/jobs/{id}. */
    int (*describe)(const void *state, cJSON *out);
} cv_pruner_ops_t;

/* The registered strategies, by name; NULL when there is none of that name. */
const cv_sampler_ops_t *cv_search_sampler(const char *name);
const cv_pruner_ops_t *cv_search_pruner(const char *name);

/* The tables, one per file. */
extern const cv_sampler_ops_t cv_sampler_random;
extern const cv_sampler_ops_t cv_sampler_tpe;
extern const cv_pruner_ops_t cv_pruner_none;
extern const cv_pruner_ops_t cv_pruner_asha;
extern const cv_pruner_ops_t cv_pruner_median;

#endif
