/* Fuzz target: cv_trial_spec_parse on arbitrary text (a trial spec is JSON from a job file or
 * the coordinator). Every input must be accepted or refused with a reason, never crash. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "common/trial_spec.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    cv_trial_spec_t spec;
    char err[CV_ERRLEN];
    err[0] = '\0';
    cv_trial_spec_defaults(&spec);
    int rc = cv_trial_spec_parse(&spec, (const char *)data, size, err);
    if (rc != 0 && err[0] == '\0') abort(); /* every refusal names its reason */
    if (rc > 0 || memchr(err, '\0', sizeof err) == NULL) abort();
    return 0;
}
