/* Fuzz target: cv_trial_spec_parse on arbitrary text (a trial spec is JSON from a job file or
 * the coordinator), and the same text as a nudge (cv_trial_spec_nudge) of a fixed valid spec.
 * Every input must be accepted or refused with a reason, never crash; a refused nudge leaves
 * the spec as it was, and an accepted one leaves it within the spec's rules. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "common/json.h"
#include "common/trial_spec.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The input as a nudge of a two-layer spec with dropout and a warmup. */
static void fuzz_nudge(const uint8_t *data, size_t size) {
    static const char base[] = "{\"dataset\": {\"format\": \"csv\", \"csv\": \"d.csv\"}, "
                               "\"hidden_units\": [8, 4], \"keep_prob\": 0.8, "
                               "\"warmup_epochs\": 2, \"epochs\": 5}";
    cv_trial_spec_t spec, before;
    char err[CV_ERRLEN] = "";
    cJSON *nudge = NULL;
    if (cv_trial_spec_parse(&spec, base, sizeof base - 1, err) != 0) abort();
    if (cv_json_decode((const char *)data, size, &nudge, err) != 0) return;
    before = spec;
    err[0] = '\0';
    int rc = cv_trial_spec_nudge(&spec, nudge, err);
    cJSON_Delete(nudge);
    if (rc != 0 && (err[0] == '\0' || memcmp(&before, &spec, sizeof spec) != 0)) abort();
    if (rc == 0 && (!(spec.learning_rate > 0 && spec.learning_rate <= 10) ||
                    !(spec.keep_prob[0] > 0 && spec.keep_prob[0] <= 1) ||
                    spec.epochs <= spec.warmup_epochs || spec.hidden_units[0] != 8))
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    cv_trial_spec_t spec;
    char err[CV_ERRLEN];
    err[0] = '\0';
    cv_trial_spec_defaults(&spec);
    int rc = cv_trial_spec_parse(&spec, (const char *)data, size, err);
    if (rc != 0 && err[0] == '\0') abort(); /* every refusal names its reason */
    if (rc > 0 || memchr(err, '\0', sizeof err) == NULL) abort();
    fuzz_nudge(data, size);
    return 0;
}
