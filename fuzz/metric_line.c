/* Fuzz target: cv_metric_line_parse on arbitrary bytes (one line an external trainer printed on
 * its stdout, which may be anything). Every input is either not a metric line, a report or a
 * final line whose values keep their rules, or refused with a reason; never a crash. */
#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "common/err.h"
#include "worker/metric_line.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_fraction(double x) {
    if (!isnan(x) && !(x >= 0 && x <= 1)) abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char err[CV_ERRLEN];
    err[0] = '\0';
    cv_epoch_t m;
    int rc = cv_metric_line_parse((const char *)data, size, &m, err);
    if (rc < 0) {
        if (err[0] == '\0') abort(); /* every refusal names its reason */
        return 0;
    }
    if (rc == CV_METRIC_NONE) return 0;
    if (rc != CV_METRIC_EPOCH && rc != CV_METRIC_FINAL) abort();
    if (rc == CV_METRIC_EPOCH && (m.epoch < 1 || m.epoch > CV_METRIC_EPOCH_MAX)) abort();
    if (isnan(m.dev_error) && isnan(m.dev_cost)) abort();
    check_fraction(m.dev_error);
    check_fraction(m.train_error);
    if (!isnan(m.learning_rate) && !(m.learning_rate > 0)) abort();
    if (!isnan(m.seconds) && !(m.seconds >= 0)) abort();
    return 0;
}
