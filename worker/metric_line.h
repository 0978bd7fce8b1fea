/* The metric lines an external trainer prints on its standard output (README, "External
 * trainers"): one line of text in, one epoch report (or the final result) out. Any line that
 * does not start with "caviar:" is the program's own and is not ours to read.
 *
 *     caviar: epoch=3 dev_error=0.12 dev_cost=0.31 train_error=0.10 train_cost=0.25
 *     caviar: {"epoch": 3, "dev_error": 0.12, "dev_cost": 0.31}
 *     caviar: final dev_error=0.11 dev_cost=0.30
 *     caviar: {"final": true, "dev_error": 0.11, "dev_cost": 0.30}
 *
 * Keys are the fields of cv_epoch_t: epoch (an integer in [1, CV_METRIC_EPOCH_MAX], required
 * in a report, optional in a final line), dev_error and dev_cost (at least one), and optionally
 * train_error, train_cost, train_cost_reg, learning_rate, seconds, examples_per_second. Errors
 * are fractions in [0, 1], costs finite numbers, learning_rate > 0, seconds and examples per
 * second >= 0. A key may appear once. The parser is pure: no I/O, no allocation but cJSON's
 * for the JSON form of a line of at most CV_METRIC_LINE_MAX bytes. */
#ifndef CV_WORKER_METRIC_LINE_H
#define CV_WORKER_METRIC_LINE_H

#include <stddef.h>

#include "common/epoch.h"

#define CV_METRIC_LINE_MAX  4096    /* bytes of a metric line, without its newline */
#define CV_METRIC_EPOCH_MAX 1000000 /* the largest epoch number */
#define CV_METRIC_PREFIX    "caviar:"

typedef enum {
    CV_METRIC_NONE = 0,   /* not a metric line: the program's own output */
    CV_METRIC_EPOCH = 1,  /* one epoch's report */
    CV_METRIC_FINAL = 2,  /* the final result: overrides the best epoch's metrics */
} cv_metric_kind_t;

/* Reads line (len bytes, no newline; a trailing '\r' is ignored; need not be NUL-terminated).
 * Returns a cv_metric_kind_t with *out filled (metrics not given are NAN; out->epoch is 0 for a
 * final line without one), or CV_EINVAL / CV_ERANGE with err naming the key and the rule it
 * broke. A line longer than CV_METRIC_LINE_MAX that starts with the prefix is refused. */
int cv_metric_line_parse(const char *line, size_t len, cv_epoch_t *out, char *err);

#endif
