/* Rows for hyperparameter importance from a job's trials; see importance_rows.h. */
#include "common/importance_rows.h"

#include <math.h>
#include <string.h>

const char *cv_importance_scale_name(const cv_space_param_t *p) {
    static const char *const names[] = {"linear", "log", "one_minus_log", "power_of_two"};
    return p->type == CV_PARAM_CATEGORICAL ? "categorical" : names[p->scale];
}

void cv_importance_bounds(const cv_space_t *space, double *lo, double *hi) {
    for (size_t d = 0; d < space->n_params; d++) {
        const cv_space_param_t *p = &space->params[d];
        if (p->type == CV_PARAM_CATEGORICAL) {
            lo[d] = -0.5;
            hi[d] = (double)p->n_values - 0.5;
        } else {
            cv_space_coord_range(p, &lo[d], &hi[d]);
        }
    }
}

/* A trial's value of p in its coordinate; NAN when it has none the space knows. */
static double coord_of(const cv_space_param_t *p, const cJSON *v) {
    if (p->type == CV_PARAM_CATEGORICAL) {
        int i = cv_space_value_index(p, v);
        return i < 0 ? NAN : i;
    }
    return cJSON_IsNumber(v) ? cv_space_to_coord(p, v->valuedouble) : NAN;
}

size_t cv_importance_rows(const cv_space_t *space, const cJSON *trials, const char *objective,
                          double *x, double *y) {
    size_t n = 0, p = space->n_params;
    const cJSON *t;
    cJSON_ArrayForEach(t, trials) {
        const cJSON *status = cJSON_GetObjectItemCaseSensitive(t, "status");
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(t, "objective");
        if (!cJSON_IsNumber(v)) v = cJSON_GetObjectItemCaseSensitive(t, objective);
        if (!cJSON_IsString(status) || strcmp(status->valuestring, "completed") != 0 ||
            !cJSON_IsNumber(v) || !isfinite(v->valuedouble))
            continue;
        const cJSON *params = cJSON_GetObjectItemCaseSensitive(t, "params");
        size_t d;
        for (d = 0; d < p; d++) {
            double u = coord_of(&space->params[d],
                                cJSON_GetObjectItemCaseSensitive(params, space->params[d].name));
            if (!isfinite(u)) break;
            x[n * p + d] = u;
        }
        if (d < p) continue;
        y[n++] = v->valuedouble;
    }
    return n;
}
