/* The rungs shared by the ASHA and median pruners: each decision epoch's results, kept in
 * recording order, by value and by trial number (see pruner_rungs.h). */
#include "server/pruner_rungs.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "common/json.h"

void cv_rungs_init(cv_rungs_t *set) {
    memset(set, 0, sizeof *set);
}

void cv_rungs_finish(cv_rungs_t *set) {
    for (size_t i = 0; i < set->n; i++) {
        free(set->rungs[i].results);
        free(set->rungs[i].sorted);
        free(set->rungs[i].by_number);
    }
    free(set->rungs);
    memset(set, 0, sizeof *set);
}

/* The index of the first rung whose epoch is ≥ epoch (set->n when none). */
static size_t rung_index(const cv_rungs_t *set, int epoch) {
    size_t lo = 0, hi = set->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (set->rungs[mid].epoch < epoch)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

cv_rung_t *cv_rungs_at(cv_rungs_t *set, int epoch) {
    size_t i = rung_index(set, epoch);
    if (i < set->n && set->rungs[i].epoch == epoch) return &set->rungs[i];
    if (set->n == set->cap) {
        size_t cap = set->cap ? 2 * set->cap : 8;
        cv_rung_t *grown = realloc(set->rungs, cap * sizeof *grown);
        if (!grown) return NULL;
        set->rungs = grown;
        set->cap = cap;
    }
    memmove(&set->rungs[i + 1], &set->rungs[i], (set->n - i) * sizeof *set->rungs);
    set->n++;
    memset(&set->rungs[i], 0, sizeof set->rungs[i]);
    set->rungs[i].epoch = epoch;
    return &set->rungs[i];
}

/* The position in rung->by_number of the first result whose trial number is ≥ number. */
static size_t number_index(const cv_rung_t *rung, int number) {
    size_t lo = 0, hi = rung->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (rung->results[rung->by_number[mid]].number < number)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

const cv_rung_result_t *cv_rung_lookup(const cv_rung_t *rung, int number) {
    size_t i = number_index(rung, number);
    if (i < rung->n && rung->results[rung->by_number[i]].number == number)
        return &rung->results[rung->by_number[i]];
    return NULL;
}

size_t cv_rung_count_at_most(const cv_rung_t *rung, double value) {
    size_t lo = 0, hi = rung->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (rung->sorted[mid] <= value)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

double cv_rung_median(const cv_rung_t *rung) {
    if (rung->n == 0) return NAN;
    double lo = rung->sorted[(rung->n - 1) / 2], hi = rung->sorted[rung->n / 2];
    return lo == hi ? lo : 0.5 * lo + 0.5 * hi; /* halves first: no overflow near DBL_MAX */
}

/* Makes room for one more result in each of rung's arrays. A pointer that grew is kept even when
 * a later one fails; cap counts only what all three have. 0 or CV_ENOMEM. */
static int rung_reserve(cv_rung_t *rung) {
    if (rung->n < rung->cap) return 0;
    if (rung->cap >= UINT32_MAX / 2) return CV_ENOMEM; /* by_number holds 32-bit indices */
    size_t cap = rung->cap ? 2 * rung->cap : 16;
    cv_rung_result_t *results = realloc(rung->results, cap * sizeof *results);
    if (!results) return CV_ENOMEM;
    rung->results = results;
    double *sorted = realloc(rung->sorted, cap * sizeof *sorted);
    if (!sorted) return CV_ENOMEM;
    rung->sorted = sorted;
    uint32_t *by_number = realloc(rung->by_number, cap * sizeof *by_number);
    if (!by_number) return CV_ENOMEM;
    rung->by_number = by_number;
    rung->cap = cap;
    return 0;
}

int cv_rung_add(cv_rung_t *rung, int number, double value, int stopped) {
    if (rung_reserve(rung) != 0) return CV_ENOMEM;
    if (isnan(value)) value = HUGE_VAL;
    /* After every equal value: the order of equal values does not matter to a rank or a median,
     * and a newcomer's rank counts the earlier equal ones ahead of it. */
    size_t at = cv_rung_count_at_most(rung, value);
    memmove(&rung->sorted[at + 1], &rung->sorted[at], (rung->n - at) * sizeof *rung->sorted);
    rung->sorted[at] = value;
    size_t by = number_index(rung, number);
    memmove(&rung->by_number[by + 1], &rung->by_number[by],
            (rung->n - by) * sizeof *rung->by_number);
    rung->by_number[by] = (uint32_t)rung->n;
    rung->results[rung->n] = (cv_rung_result_t){number, stopped ? 1 : 0, value};
    rung->n++;
    rung->n_stopped += stopped ? 1 : 0;
    return 0;
}

int cv_rungs_replay(cv_rungs_t *set, int number, int epoch, double value, int stopped) {
    cv_rung_t *rung = cv_rungs_at(set, epoch);
    if (!rung) return CV_ENOMEM;
    if (cv_rung_lookup(rung, number)) return 0;
    return cv_rung_add(rung, number, value, stopped);
}

int cv_rungs_setting(const cJSON *settings, const char *where, const char *name, int lo, int hi,
                     int *out, char *err) {
    const cJSON *item = settings ? cJSON_GetObjectItemCaseSensitive(settings, name) : NULL;
    if (!item) return 0;
    char path[128];
    snprintf(path, sizeof path, "%s.%s", where, name);
    int64_t v;
    int rc = cv_json_get_int(item, path, lo, hi, &v, err);
    if (rc == 0) *out = (int)v;
    return rc;
}

/* Adds to rung_obj the count and the first CV_RUNGS_LIST_MAX numbers of the trials whose
 * outcome is `stopped`, under count_name and list_name. 0 or CV_ENOMEM. */
static int describe_outcome(const cv_rung_t *rung, int stopped, const char *count_name,
                            const char *list_name, cJSON *rung_obj) {
    size_t count = stopped ? rung->n_stopped : rung->n - rung->n_stopped;
    if (!cJSON_AddNumberToObject(rung_obj, count_name, (double)count)) return CV_ENOMEM;
    cJSON *list = cJSON_AddArrayToObject(rung_obj, list_name);
    if (!list) return CV_ENOMEM;
    size_t listed = 0;
    for (size_t i = 0; i < rung->n && listed < CV_RUNGS_LIST_MAX; i++) {
        if (rung->results[i].stopped != stopped) continue;
        cJSON *number = cJSON_CreateNumber(rung->results[i].number);
        if (!number || !cJSON_AddItemToArray(list, number)) {
            cJSON_Delete(number);
            return CV_ENOMEM;
        }
        listed++;
    }
    return 0;
}

int cv_rungs_describe(const cv_rungs_t *set, cJSON *out) {
    size_t with_results = 0;
    for (size_t i = 0; i < set->n; i++)
        with_results += set->rungs[i].n > 0;
    if (!cJSON_AddNumberToObject(out, "rung_count", (double)with_results)) return CV_ENOMEM;
    cJSON *rungs = cJSON_AddArrayToObject(out, "rungs");
    if (!rungs) return CV_ENOMEM;
    size_t listed = 0;
    for (size_t i = 0; i < set->n && listed < CV_RUNGS_LIST_MAX; i++) {
        const cv_rung_t *rung = &set->rungs[i];
        if (rung->n == 0) continue; /* made by a decision whose recording ran out of memory */
        cJSON *obj = cJSON_CreateObject();
        if (!obj || !cJSON_AddItemToArray(rungs, obj)) {
            cJSON_Delete(obj);
            return CV_ENOMEM;
        }
        listed++;
        if (!cJSON_AddNumberToObject(obj, "epoch", rung->epoch) ||
            !cJSON_AddNumberToObject(obj, "results", (double)rung->n))
            return CV_ENOMEM;
        int rc = describe_outcome(rung, 0, "promoted_count", "promoted", obj);
        if (rc == 0) rc = describe_outcome(rung, 1, "stopped_count", "stopped", obj);
        if (rc != 0) return rc;
    }
    return 0;
}
