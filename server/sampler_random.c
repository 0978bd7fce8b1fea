/* Random search: each configuration drawn independently and uniformly on each parameter's
 * scale inside the current region (the course's advice: random, never a grid). Coarse to fine
 * narrows the region between rounds; this sampler only draws inside it. It has no settings. */
#include "server/search.h"

#include "common/err.h"

static int random_create(void **config, const cJSON *settings, char *err) {
    *config = NULL;
    if (settings && (!cJSON_IsObject(settings) || settings->child))
        return cv_errf(err, CV_EINVAL, "search.random: takes no settings");
    return 0;
}

static void random_destroy(void *config) {
    (void)config;
}

static int random_propose(const void *config, const cv_search_history_t *history, cv_rng_t *rng,
                          cJSON **values, char *err) {
    (void)config;
    return cv_space_sample(history->region, rng, values, NULL, 0, err);
}

static int random_describe(const void *config, cJSON *out) {
    (void)config, (void)out;
    return 0;
}

const cv_sampler_ops_t cv_sampler_random = {
    .name = "random",
    .max_history = 0,
    .create = random_create,
    .destroy = random_destroy,
    .propose = random_propose,
    .describe = random_describe,
};
