/* JSON reports of metrics and results; see report.h. */
#include "worker/report.h"

#include <math.h>

/* Adds a number, or null when it is not finite (JSON has no NaN). Returns 0 on success. */
static int add_number(cJSON *obj, const char *name, double v) {
    cJSON *item = isfinite(v) ? cJSON_CreateNumber(v) : cJSON_CreateNull();
    if (!item) return -1;
    if (!cJSON_AddItemToObject(obj, name, item)) {
        cJSON_Delete(item);
        return -1;
    }
    return 0;
}

cJSON *cv_report_epoch(const cv_epoch_t *m) {
    cJSON *o = cJSON_CreateObject();
    if (!o) return NULL;
    if (add_number(o, "epoch", m->epoch) || add_number(o, "train_cost", m->train_cost) ||
        add_number(o, "train_cost_reg", m->train_cost_reg) ||
        add_number(o, "dev_cost", m->dev_cost) || add_number(o, "train_error", m->train_error) ||
        add_number(o, "dev_error", m->dev_error) ||
        add_number(o, "learning_rate", m->learning_rate) || add_number(o, "seconds", m->seconds) ||
        add_number(o, "examples_per_second", m->examples_per_second)) {
        cJSON_Delete(o);
        return NULL;
    }
    return o;
}

cJSON *cv_report_result(const cv_train_result_t *res, cJSON *curve) {
    cJSON *o = cJSON_CreateObject(), *d = NULL;
    if (!o) goto oom;
    const cv_epoch_t *b = &res->best;
    if (!cJSON_AddStringToObject(o, "status", cv_trial_status_name(res->status))) goto oom;
    if (add_number(o, "best_epoch", res->best_epoch) ||
        add_number(o, "epochs_run", res->epochs_run) ||
        add_number(o, "train_error", b->train_error) || add_number(o, "dev_error", b->dev_error) ||
        add_number(o, "train_cost", b->train_cost) ||
        add_number(o, "train_cost_reg", b->train_cost_reg) ||
        add_number(o, "dev_cost", b->dev_cost) ||
        add_number(o, "examples_per_second", res->examples_per_second) ||
        add_number(o, "seconds", res->seconds) || add_number(o, "m_train", (double)res->m_train) ||
        add_number(o, "m_dev", (double)res->m_dev) || add_number(o, "m_test", (double)res->m_test) ||
        add_number(o, "n_params", (double)res->n_params))
        goto oom;
    if (res->best_epoch > 0) {
        d = cJSON_AddObjectToObject(o, "diagnosis");
        if (!d || !cJSON_AddStringToObject(d, "name", res->diagnosis.name) ||
            add_number(d, "avoidable_bias", res->diagnosis.avoidable_bias) ||
            add_number(d, "variance", res->diagnosis.variance) ||
            !cJSON_AddStringToObject(d, "remedy", res->diagnosis.remedy) ||
            add_number(d, "human_error_assumed", res->diagnosis.human_error) ||
            !cJSON_AddBoolToObject(d, "human_error_given", res->diagnosis.human_error_given) ||
            !cJSON_AddStringToObject(d, "explanation", res->diagnosis.explanation))
            goto oom;
    } else if (!cJSON_AddNullToObject(o, "diagnosis")) {
        goto oom;
    }
    if (res->tested &&
        (add_number(o, "test_error", res->test_error) || add_number(o, "test_cost", res->test_cost)))
        goto oom;
    if (res->diverged_epoch && add_number(o, "diverged_epoch", res->diverged_epoch)) goto oom;
    if (res->error[0] && !cJSON_AddStringToObject(o, "error", res->error)) goto oom;
    if (curve) {
        cJSON_AddItemToObject(o, "curve", curve);
        curve = NULL;
    }
    return o;
oom:
    cJSON_Delete(o);
    cJSON_Delete(curve);
    return NULL;
}
