/* JSON reports of metrics and results; see report.h. */
#include "worker/report.h"

#include <math.h>

#include "common/message.h"

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

cJSON *cv_report_result(const cv_trial_result_t *res, cJSON *curve) {
    cJSON *o = cv_msg_result_object(res);
    if (o && curve && cJSON_AddItemToObject(o, "curve", curve)) return o;
    cJSON_Delete(curve);
    if (o && curve) {
        cJSON_Delete(o);
        return NULL;
    }
    return o;
}
