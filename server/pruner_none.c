/* The pruner that never stops a trial: every trial trains to its last epoch or its own early
 * stopping. The default. */
#include "server/search.h"

#include "common/err.h"

static int none_create(void **state, const cJSON *settings, char *err) {
    *state = NULL;
    if (settings && (!cJSON_IsObject(settings) || settings->child))
        return cv_errf(err, CV_EINVAL, "search.none: takes no settings");
    return 0;
}

static void none_destroy(void *state) {
    (void)state;
}

static size_t none_decision_epochs(const void *state, int epochs, int *out, size_t cap) {
    (void)state, (void)epochs, (void)out, (void)cap;
    return 0;
}

static int none_decide(void *state, int number, int epoch, double value) {
    (void)state, (void)number, (void)epoch, (void)value;
    return 0;
}

static int none_replay(void *state, int number, int epoch, double value, int stopped) {
    (void)state, (void)number, (void)epoch, (void)value, (void)stopped;
    return 0;
}

static int none_describe(const void *state, cJSON *out) {
    (void)state, (void)out;
    return 0;
}

const cv_pruner_ops_t cv_pruner_none = {
    .name = "none",
    .create = none_create,
    .destroy = none_destroy,
    .decision_epochs = none_decision_epochs,
    .decide = none_decide,
    .replay = none_replay,
    .describe = none_describe,
};
