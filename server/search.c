/* The registry of search strategies: every sampler and pruner caviard knows, by name. A new
 * strategy is one new file with its table, listed here once. */
#include "server/search.h"

#include <string.h>

static const cv_sampler_ops_t *const samplers[] = {&cv_sampler_random, &cv_sampler_tpe};
static const cv_pruner_ops_t *const pruners[] = {&cv_pruner_none, &cv_pruner_asha,
                                                 &cv_pruner_median};

const cv_sampler_ops_t *cv_search_sampler(const char *name) {
    for (size_t i = 0; name && i < sizeof samplers / sizeof *samplers; i++)
        if (!strcmp(samplers[i]->name, name)) return samplers[i];
    return NULL;
}

const cv_pruner_ops_t *cv_search_pruner(const char *name) {
    for (size_t i = 0; name && i < sizeof pruners / sizeof *pruners; i++)
        if (!strcmp(pruners[i]->name, name)) return pruners[i];
    return NULL;
}
