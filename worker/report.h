/* JSON forms of a trial's epoch metrics and final result: what `train --json` prints and what a
 * worker sends to the coordinator. */
#ifndef CV_REPORT_H
#define CV_REPORT_H

#include <cjson/cJSON.h>

#include "worker/trainer.h"

/* New object {"epoch", "train_cost", "train_cost_reg", "dev_cost", "train_error", "dev_error",
 * "learning_rate", "seconds", "examples_per_second"}; caller frees; NULL when out of memory. */
cJSON *cv_report_epoch(const cv_epoch_t *m);

/* New object: the trial's result as a worker reports it (cv_msg_result_object), with curve (may
 * be NULL) attached as "curve" and then owned by the result. Caller frees; NULL when out of
 * memory (curve is then freed too). */
cJSON *cv_report_result(const cv_trial_result_t *res, cJSON *curve);

#endif
