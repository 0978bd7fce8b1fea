/* JSON forms of a trial's epoch metrics and final result: what `train --json` prints and what a
 * worker sends to the coordinator. */
#ifndef CV_REPORT_H
#define CV_REPORT_H

#include <cjson/cJSON.h>

#include "worker/trainer.h"

/* New object {"epoch", "train_cost", "train_cost_reg", "dev_cost", "train_error", "dev_error",
 * "learning_rate", "seconds", "examples_per_second"}; caller frees; NULL when out of memory. */
cJSON *cv_report_epoch(const cv_epoch_t *m);

/* New object with "status", "best_epoch", "epochs_run", "train_error", "dev_error",
 * "train_cost", "train_cost_reg", "dev_cost", "diagnosis" {name, avoidable_bias, variance,
 * remedy, human_error_assumed, human_error_given, explanation} (null without a best epoch),
 * "examples_per_second", "seconds", sizes ("m_train", "m_dev", "m_test", "n_params": the
 * network's weights and biases), and "test_error"/"test_cost" when tested,
 * "diverged_epoch" and "error" when set. curve (may be NULL) is attached as "curve" and then
 * owned by the result. Caller frees; NULL when out of memory (curve is then freed too). */
cJSON *cv_report_result(const cv_train_result_t *res, cJSON *curve);

#endif
