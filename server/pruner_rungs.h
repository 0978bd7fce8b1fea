/* What the ASHA and median pruners share: the results recorded at each decision epoch (a rung),
 * the bookkeeping that makes a decision once per (trial, epoch) and replays it after a restart,
 * their settings reader and the rungs' JSON for describe.
 *
 * A rung keeps its results three ways: in the order they were recorded (for describe), their
 * values sorted (a rank or a median in O(log n)) and their trial numbers sorted (a repeated
 * decision found in O(log n)); adding one is a binary search and a memmove. A result costs 28
 * bytes, so 100,000 trials at every one of a few rungs take a few megabytes. */
#ifndef CV_PRUNER_RUNGS_H
#define CV_PRUNER_RUNGS_H

#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#define CV_RUNGS_MAX_EPOCHS 100000 /* a trial's epochs at most (the trial spec's limit) */
#define CV_RUNGS_LIST_MAX   100    /* trial numbers, or rungs, that describe lists at most */

/* One trial's result at a rung. */
typedef struct {
    int number;   /* the trial */
    int stopped;  /* 1: the pruner stopped it here; 0: it went on */
    double value; /* its best objective so far at this epoch (lower is better); a NaN is kept
                     as +inf, the worst */
} cv_rung_result_t;

/* The results at one decision epoch. */
typedef struct {
    int epoch;                 /* the decision epoch, ≥ 1 */
    cv_rung_result_t *results; /* in the order recorded; n of them */
    double *sorted;            /* their values, ascending; n of them */
    uint32_t *by_number;       /* indices into results, by ascending trial number; n of them */
    size_t n, cap;             /* results recorded; room in each of the three arrays */
    size_t n_stopped;          /* results with stopped 1 */
} cv_rung_t;

/* Every rung of one pruner, by ascending epoch. Caller-allocated: cv_rungs_init / finish. */
typedef struct {
    cv_rung_t *rungs; /* owned, with each rung's arrays */
    size_t n, cap;
} cv_rungs_t;

void cv_rungs_init(cv_rungs_t *set);
void cv_rungs_finish(cv_rungs_t *set); /* frees every rung; accepts a set just initialized */

/* The rung at epoch, made empty when there is none yet; NULL when that allocation fails. The
 * pointer is borrowed and valid until the next call that adds a rung. */
cv_rung_t *cv_rungs_at(cv_rungs_t *set, int epoch);

/* The result of trial number at rung, or NULL when it has none there (borrowed). */
const cv_rung_result_t *cv_rung_lookup(const cv_rung_t *rung, int number);

/* How many recorded values are ≤ value (value not NaN). */
size_t cv_rung_count_at_most(const cv_rung_t *rung, double value);

/* The median of the recorded values: the middle one, or the mean of the two middle ones for an
 * even count. NaN when the rung is empty. */
double cv_rung_median(const cv_rung_t *rung);

/* Records trial number's result, which it must not have yet (cv_rung_lookup). A NaN value is
 * recorded as +inf. Returns 0 or CV_ENOMEM, with nothing recorded. */
int cv_rung_add(cv_rung_t *rung, int number, double value, int stopped);

/* The replay half of cv_pruner_ops_t.replay for a valid decision epoch: records the result and
 * its outcome as given, unless the trial already has one at that rung (the first is kept). 0 or
 * CV_ENOMEM. */
int cv_rungs_replay(cv_rungs_t *set, int number, int epoch, double value, int stopped);

/* Reads settings member `name` as an integer in [lo, hi] into *out, leaving *out (its default)
 * when settings is NULL or lacks the member. where is the settings' path for the message
 * ("search.asha" gives "search.asha.eta: must be an integer in [2, 10], got 1"). */
int cv_rungs_setting(const cJSON *settings, const char *where, const char *name, int lo, int hi,
                     int *out, char *err);

/* Adds to out "rung_count" (rungs with a result) and "rungs", an array of the first
 * CV_RUNGS_LIST_MAX of them by ascending epoch, each
 *     {"epoch": 3, "results": 9, "promoted_count": 3, "stopped_count": 6,
 *      "promoted": [0, 4, 7], "stopped": [1, 2, 3, 5, 6, 8]}
 * where promoted lists the trials that went on at that epoch and stopped those stopped there,
 * each the first CV_RUNGS_LIST_MAX in the order they were judged (the counts give the totals).
 * 0 or CV_ENOMEM (out may then hold part of it). */
int cv_rungs_describe(const cv_rungs_t *set, cJSON *out);

#endif
