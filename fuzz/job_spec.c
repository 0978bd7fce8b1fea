/* Fuzz target: cv_job_spec_parse on arbitrary text (the body of POST /v1/jobs). Parsing does not
 * touch the dataset paths; an accepted job is also composed into a trial with no sampled
 * values, as the scheduler would. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include <cjson/cJSON.h>

#include "common/err.h"
#include "server/job_spec.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    cv_job_spec_t job;
    char err[CV_ERRLEN];
    err[0] = '\0';
    cv_job_spec_init(&job);
    int rc = cv_job_spec_parse(&job, (const char *)data, size, err);
    if (rc != 0 && err[0] == '\0') abort(); /* every refusal names its reason */
    if (rc == 0) {
        cJSON *values = cJSON_CreateObject();
        cJSON *trial = NULL;
        if (values && cv_job_spec_compose(&job, values, &trial, err) == 0 && !trial) abort();
        cJSON_Delete(trial);
        cJSON_Delete(values);
    }
    cv_job_spec_finish(&job);
    return 0;
}
